"""What counts as personal data in text we cannot parse, and how it is masked.

The contract keeps a caller's phone and name in ``caller`` (see ``events.Caller``),
which the audit copy drops. But a record that fails validation can carry them
anywhere (a garbled ``caller``, a phone in ``type`` or ``unit_id``), and a
validation message quotes the input back. Such text is masked here before it is
stored or logged: phone-like digit runs, and ``caller``/``phone``/``name`` members.
"""

from __future__ import annotations

import re

# A run of 7 or more digits, spaces and hyphens allowed between them (a phone number, with
# or without area code or +86), unless it is an ISO date or timestamp (kept: group 1).
_DIGITS = re.compile(r"(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?)|(\+?\d(?:[\s-]?\d){6,})")
# The value of a "caller", "phone" or "name" member, in JSON that may not parse.
_PERSONAL_MEMBER = re.compile(r'"(caller|phone|name)"\s*:\s*(\{[^{}]*\}|"(?:[^"\\]|\\.)*"|[^,}\]]*)', re.IGNORECASE)


def mask_personal(text: str) -> str:
    """``text`` with phone-like digit runs and caller members masked; storable UTF-8 (no lone surrogates)."""
    text = _PERSONAL_MEMBER.sub(lambda m: f'"{m.group(1)}":"***"', text)
    text = _DIGITS.sub(lambda m: m.group(1) or "*" * len(m.group(0)), text)
    return text.encode("utf-8", errors="replace").decode("utf-8")
