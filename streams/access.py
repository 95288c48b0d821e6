"""Who may see what on the worker's pages: a unit token sees its unit, a supervisor token ("*") all."""

from __future__ import annotations

from collections.abc import Mapping

SUPERVISOR = "*"


class Denied(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def bearer(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The token from ``Authorization: Bearer …`` or, for EventSource which cannot set headers, ``?token=``."""
    auth = headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth.removeprefix("Bearer ").strip()
    return query.get("token")


def scope(tokens: Mapping[str, str], token: str | None) -> str:
    """The unit id a token opens, or ``*``; 401 for none or an unknown one."""
    if not token or token not in tokens:
        raise Denied(401, "a valid token is required (Authorization: Bearer <token> or ?token=)")
    return tokens[token]


def require_unit(tokens: Mapping[str, str], token: str | None, unit_id: str) -> str:
    granted = scope(tokens, token)
    if granted not in (SUPERVISOR, unit_id):
        raise Denied(403, f"this token is for unit {granted!r}, not {unit_id!r}")
    return granted


def require_supervisor(tokens: Mapping[str, str], token: str | None) -> None:
    """Office-wide pages (the bulletin, sink status): a supervisor token, once tokens are configured.

    With no tokens configured (a single-machine install, the demo) these pages stay open,
    as the local CLI needs them; the live monitor and alert streams always need a token.
    """
    if tokens and scope(tokens, token) != SUPERVISOR:
        raise Denied(403, "this page needs a supervisor token")
