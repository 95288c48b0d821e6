"""Event text made safe for each publication format, and nothing else.

What an event supplies is free text: a test call's item, a data-monitoring indicator, a call's
category, and the ``unit_id`` that names a unit the registry does not know. The figures and the
sentences are the project's own; that text is not. Each format hands its own :data:`EventText`
function to :func:`hotline.reports.prose.compose`, :func:`~hotline.reports.prose.table_cells` and
:func:`~hotline.reports.prose.change_table`, which apply it to that text and to nothing else. The
functions live apart from the formats so that each rule — what XML refuses, what Markdown would
read as markup — is written once and tested on its own (the terminal's is
:func:`hotline.schemas.escaping.printable`).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable

EventText = Callable[[str], str]

# The complement of XML 1.0's ``Char``: what no part of a .docx or .xlsx package may hold.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

# CommonMark lets a backslash make any ASCII punctuation literal, and every construct text could
# open starts with some: a heading (#), quote (>), list (- + * 1.), fence (` ~), a table cell's
# edge (|), emphasis (* _ ~), a link or image ([ ] ( ) !), raw HTML or an entity (< > &), an
# autolink (: @ .). Escaping all of it needs no list of contexts. Line breaks (whatever
# ``str.splitlines`` ends a line at) become spaces.
_MD_TEXT = {
    **{ord(c): "\\" + c for c in string.punctuation},
    **dict.fromkeys(map(ord, "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"), " "),
}


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 does not allow: C0 controls other than tab, line
    feed and carriage return, lone surrogates, U+FFFE and U+FFFF (for docx and xlsx).

    A NUL in a test call's item made python-docx refuse the whole Word bulletin ("All strings
    must be XML compatible", a 500); openpyxl raises IllegalCharacterError on the same text.
    The characters are dropped, not replaced: none of them shows anything to a reader.
    """
    return _NOT_XML.sub("", text)


def md_text(text: str) -> str:
    """``text`` as literal Markdown on one line: ASCII punctuation backslash-escaped, line breaks
    turned into spaces (in table cells as well: no ``<br>``, a name or an item has no lines to keep),
    the other control characters dropped as :func:`xml_text` drops them (an ESC would drive any
    terminal the file is shown in).

    An item ``# 伪造标题\\n\\n| x | y |`` forged a heading and a table row in the Markdown
    bulletin. Without a line break the text cannot start a line, so it opens no block (heading,
    list, quote, fence, table row); escaped, it opens no inline construct and ends no cell.
    """
    return xml_text(text.translate(_MD_TEXT))
