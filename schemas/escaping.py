"""Text from outside made safe to print: one line, no control characters.

A validation message quoting a record's raw input carried a newline and forged a line in the
worker log (NUL bytes got through too): whatever came from outside is escaped before it reaches
a log line, a Kafka header, an HTTP answer or a terminal. It lives with the contract, the lowest
layer, because the contract's own refusals quote input; logging, the pages and the reports use it.
"""

from __future__ import annotations

# Control characters a log line must not carry raw: C0 (newline, carriage return, NUL,
# tab, escape…), DEL, C1 (NEL U+0085 among them), and the Unicode line and paragraph
# separators; each ends a line or drives a terminal for some reader (a pager, ``str.splitlines``,
# an editor); and the bidirectional controls, which make a line display other than it reads.
# A backslash is left alone, so escaping twice changes nothing.
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_BIDI = [0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029, *_BIDI]
_ESCAPES: dict[int, str] = {c: _NAMED.get(chr(c), f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}") for c in _CONTROLS}


def printable(text: str, limit: int | None = None) -> str:
    """``text`` with every control character escaped (``\\n``, ``\\x00``, ``\\u2028``…), on one line.

    For anything that came from outside (a record's raw bytes, a validation message
    quoting them) before it reaches a log line or a header. With ``limit``, the result
    is at most that many characters, cut between escapes and ending in ``…`` when cut.
    """
    escaped = text.translate(_ESCAPES)
    if limit is None or len(escaped) <= limit:
        return escaped
    if limit < 1:
        return ""
    kept: list[str] = []
    room = limit - 1  # the ellipsis
    for char in text:
        piece = _ESCAPES.get(ord(char), char)
        if len(piece) > room:
            break
        kept.append(piece)
        room -= len(piece)
    return "".join(kept) + "…"
