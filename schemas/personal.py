"""What counts as personal data in text, and how it is masked.

The contract keeps a caller's phone and name in ``caller`` (see ``events.Caller``),
which the audit copy drops. But a record that fails validation can carry them
anywhere (a garbled ``caller``, a phone in ``type`` or ``unit_id``, the caller's name
as the type tag), a validation message quotes the input back, and a free-text field
of a valid event (a return's ``reason``, a check's ``note``) can hold a number an
operator typed. Such text is masked here before it is stored or logged.

A phone is recognised by its shape, not by being a long number: a Chinese mobile
(``1[3-9]`` and 9 more digits) or a landline (area code ``0xx``/``0xxx``, a separator or
parentheses, 7 or 8 digits), in the forms people write them: with spaces, hyphens or
dots between groups, full-width digits, JSON ``\\u`` escapes, a ``+86`` prefix. Offsets,
byte counts, dates, decimals and ids are other numbers and stay as they are.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

MASK = "***"  # what a personal value becomes when its length does not matter

# Between two digit groups: a space, or a hyphen or dot (a dash of any width) with an
# optional space either side. Never a comma, colon or slash: those join ordinary numbers.
_SEP = r"(?:[ \t]?[-.\u2010-\u2015][ \t]?|[ \t])"
# A separator inside a number, where groups of at least two digits meet: "139 1234 5678",
# not the list "1 3 9 …" (the lookarounds keep lists of small numbers out).
_GAP = rf"(?:(?<=\d\d){_SEP}(?=\d\d))"
# Not an IPv4 address (four groups of 1-3 digits joined by dots), nor a decimal with one point,
# nor a list of five or more numbers ("13 14 15 16 17 18"): people write a phone in 2 to 4 groups.
_NOT_IP_DECIMAL_OR_LIST = (
    r"(?!\d{1,3}(?:\.\d{1,3}){3}(?!\.?\d))"  # 172.18.100.100
    r"(?!\d+\.\d+(?!\.?\d))"  # 13.912345678
    rf"(?!(?:\d+{_SEP}){{4}}\d)"  # 13 14 15 16 17 18
)
# A mobile: 1[3-9] and 9 more digits, 11 in all, optionally grouped; a grouped one may carry
# one digit more (a typed extension or slip) and is still a phone. Optional +86/0086/86.
_MOBILE = (
    rf"{_NOT_IP_DECIMAL_OR_LIST}(?:(?:\+|00)?86{_SEP}?)?"
    rf"(?:1[3-9](?:{_GAP}?\d){{9}}(?!\d)|(?=\d{{2,10}}{_SEP}\d\d)1[3-9](?:{_GAP}?\d){{10}}(?!\d))"
)
# A landline: area code 0[1-9]x or 0[1-9]xx in parentheses or followed by a separator, then a
# local number of 7 or 8 digits that does not start with 0. Without the separator a run of
# digits starting with 0 is not taken for a phone.
_LANDLINE = rf"(?:\(0[1-9]\d{{1,2}}\)[ \t]?|0[1-9]\d{{1,2}}{_SEP})[1-9](?:{_GAP}?\d){{6,7}}(?!\d)"
# Run on the folded text (see _fold): ASCII digits only, a digit run is never entered midway.
_PHONE = re.compile(rf"(?<!\d)(?<!\d\.)(?:{_MOBILE}|{_LANDLINE})", re.ASCII)
_ANY_DIGIT = re.compile(r"\d", re.ASCII)  # on the folded text

# The value of a "caller", "phone" or "name" member, in JSON that may not parse.
_PERSONAL_MEMBER = re.compile(r'"(caller|phone|name)"\s*:\s*(\{[^{}]*\}|"(?:[^"\\]|\\.)*"|[^,}\]]*)', re.IGNORECASE)
# A scalar value of such a member at any depth (inside a caller object too); a string cut
# short by a truncated record has no closing quote.
_PERSONAL_SCALAR = re.compile(r'"(?:caller|phone|name)"\s*:\s*("(?:[^"\\]|\\.)*"?|[0-9+][0-9 .+-]*)', re.IGNORECASE)
_LONGEST_PERSONAL = 64  # characters: a longer value is not a phone or a name, and is not searched for
# JSON escapes of what a phone is written with (digits, space, - . ( ), their full-width forms),
# not preceded by an escaped backslash: "\u0031\u0033\u0039" is "139" to any JSON reader.
_NUMBER_ESCAPE = re.compile(r"(?<!\\)((?:\\\\)*)\\u(003[0-9]|002[0dDeE89]|[fF]{2}1[0-9]|[fF]{2}0[89dDeE]|3000)")


@lru_cache(maxsize=4096)
def _fold(char: str) -> str:
    """One character as the phone patterns read it: a digit of any script as its ASCII digit,
    a compatibility form (full-width, ideographic space) as its NFKC character when that is
    one character; otherwise itself. One for one, so a match's span is the original's span."""
    digit = unicodedata.decimal(char, None)
    if digit is not None:
        return str(digit)
    folded = unicodedata.normalize("NFKC", char)
    return folded if len(folded) == 1 else char


def _folded(text: str) -> str:
    """``text`` with every character folded (see :func:`_fold`), the same length as ``text``."""
    return text if text.isascii() else "".join(_fold(c) for c in text)


def _mask_phones(text: str) -> str:
    """``text`` with every phone-shaped number (see the module docstring) replaced by as many
    ``*`` as it had characters; every other number, and everything else, kept as it was."""
    folded = _folded(text)
    if not _ANY_DIGIT.search(folded):
        return text
    spans = [m.span() for m in _PHONE.finditer(folded)]
    if not spans:
        return text
    parts: list[str] = []
    end = 0
    for start, stop in spans:
        parts += [text[end:start], "*" * (stop - start)]
        end = stop
    parts.append(text[end:])
    return "".join(parts)


def mask_free_text(text: str) -> str:
    """A free-text field of a valid event (a return's reason, a check's note) as it is stored:
    phone numbers masked, the words and every other number kept.

    Used as the contract's validator of those fields, so the event every path builds (the
    stream, an import, a restatement) holds the masked text. Only phones: a name in free
    text has no shape to find it by. Idempotent: ``*`` is no digit.
    """
    return _mask_phones(text)


def _unescape_numbers(text: str) -> str:
    """``text`` with the JSON ``\\u`` escapes of digits and phone separators written out, so that
    a phone spelled ``\\u0031\\u0033\\u0039…`` in a record that does not parse is seen (and masked)."""
    return _NUMBER_ESCAPE.sub(lambda m: m.group(1) + chr(int(m.group(2), 16)), text)


def _worth_searching(value: str) -> bool:
    """A value is searched for elsewhere in the text only if it cannot be a common fragment:
    two or more characters with a letter in them (a name), or at least 7 digits (a phone, or
    most of one); not a JSON literal."""
    stripped = value.strip()
    if not 2 <= len(stripped) <= _LONGEST_PERSONAL or stripped.lower() in ("null", "true", "false"):
        return False
    return any(c.isalpha() for c in stripped) or sum(c.isdigit() for c in stripped) >= 7


def personal_values(text: str) -> frozenset[str]:
    """The values of the ``caller``, ``phone`` and ``name`` members ``text`` (a record, parsed or
    not) holds, as written (with their JSON escapes) and as decoded.

    A caller's name has no shape to recognise it by; but if the record carries it under
    ``caller``, every other place it appears (the type tag, a unit id, a member name, the
    validation message quoting them) is known to be personal, and :func:`mask_personal`
    masks it there too.
    """
    values: set[str] = set()
    for match in _PERSONAL_SCALAR.finditer(text):
        literal = match.group(1)
        if literal.startswith('"'):
            inner = literal[1:-1] if len(literal) > 1 and literal.endswith('"') else literal[1:]
            values.add(inner)
            try:
                decoded = json.loads(f'"{inner}"')
            except ValueError:
                decoded = None
            if isinstance(decoded, str):
                values.add(decoded)
        else:
            values.add(literal.strip())
    return frozenset(v for v in values if _worth_searching(v))


def mask_personal(text: str, personal: Iterable[str] = ()) -> str:
    """``text`` with caller members, the personal values it or ``personal`` names, and phones
    masked; storable UTF-8 (no lone surrogates).

    For text that may quote a record: a dead letter's copy, its key, a validation reason, a
    log line. ``personal`` are the values of the record the text came from (see
    :func:`personal_values`), which the text may quote without their member.
    """
    known = personal_values(text) | frozenset(v for v in personal if _worth_searching(v))
    text = _PERSONAL_MEMBER.sub(lambda m: f'"{m.group(1)}":"{MASK}"', text)
    for value in sorted(known, key=len, reverse=True):  # a name before the shorter value inside it
        text = text.replace(value, MASK)
    text = _mask_phones(_unescape_numbers(text))
    return text.encode("utf-8", errors="replace").decode("utf-8")
