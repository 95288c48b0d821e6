"""Who may see what on the worker's pages: a unit token sees its unit, a supervisor token ("*") all.

A request presents either a token (``Authorization: Bearer …``, or ``?token=`` for scripts
and old links) or a sign-in *ticket*: the HttpOnly cookie the monitor page sets once it
has seen a valid token, so that tokens do not stay in addresses, browser history, logs
or the ``Referer`` of the page's own requests. A ticket is ``v1.<scope>.<expiry>.<mac>``,
an HMAC-SHA256 over scope and expiry with a key that every worker of the same
configuration derives alike (see :func:`ticket_key`), so a ticket works on any worker and
across restarts, and changing the tokens revokes every ticket issued before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

SUPERVISOR = "*"
TICKET_COOKIE = "hotline_ticket"
TICKET_VERSION = "v1"
DEFAULT_TICKET_TTL_S = 12 * 3600.0
CLOCK_SKEW_S = 60.0  # workers' clocks may differ a little; a ticket from the future beyond that is forged

NO_TOKEN = "a valid token is required (Authorization: Bearer <token>, ?token=, or the monitor's sign-in cookie)"


class Denied(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Credential:
    """What a request presents: a token (header or ``?token=``) and/or a ticket (cookie)."""

    token: str | None = None
    ticket: str | None = None


class Presenting(Protocol):
    """A web request, as aiohttp's and Faust's both are: what it carries that may prove who asks."""

    @property
    def headers(self) -> Any: ...
    @property
    def query(self) -> Any: ...
    @property
    def cookies(self) -> Any: ...


def credential(request: Presenting) -> Credential:
    """What a request presents: a token (header or ``?token=``) or the sign-in cookie."""
    return bearer(request.headers, request.query, request.cookies)


def bearer(
    headers: Mapping[str, str], query: Mapping[str, str], cookies: Mapping[str, str] | None = None
) -> Credential:
    """The token from ``Authorization: Bearer …`` or ``?token=``, and the sign-in ticket from its cookie.

    An explicit token wins over the cookie (see :meth:`Access.scope`), so opening a link
    with another token switches the browser to that token.
    """
    auth = headers.get("Authorization", "")
    token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else query.get("token")
    ticket = (cookies or {}).get(TICKET_COOKIE)
    return Credential(token=token or None, ticket=ticket or None)


def _digest(value: str) -> bytes:
    """Fixed-length input for ``compare_digest``: comparing digests leaks not even the token's length."""
    return hashlib.sha256(value.encode("utf-8")).digest()


def token_scope(tokens: Mapping[str, str], token: str) -> str | None:
    """The scope a token opens, or None; compared in constant time against *every* configured token.

    No dict lookup on the secret and no early exit: the time taken does not tell how
    much of a guess matched, nor which token it was close to.
    """
    presented = _digest(token)
    granted: str | None = None
    for candidate, scope in tokens.items():
        if hmac.compare_digest(presented, _digest(candidate)):
            granted = scope
    return granted


def ticket_key(tokens: Mapping[str, str], secret: str | None) -> bytes:
    """The HMAC key of tickets: the same on every worker of one configuration, new when tokens change.

    It is keyed by ``HOTLINE_TICKET_SECRET`` when set (then the token list alone does not
    let anyone forge a ticket), else by a fixed label; either way the message is the whole
    token map, so rotating or revoking any token invalidates every outstanding ticket.
    """
    material = json.dumps(dict(sorted(tokens.items())), ensure_ascii=False, separators=(",", ":"))
    label = (secret or "hotline.ticket.v1").encode("utf-8")
    return hmac.new(label, material.encode("utf-8"), hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Access:
    """The configured tokens and how tickets are signed: everything a page needs to decide who asks."""

    tokens: Mapping[str, str]
    key: bytes
    ttl_s: float = DEFAULT_TICKET_TTL_S
    clock: Callable[[], float] = field(default=time.time, compare=False)

    @classmethod
    def configure(
        cls,
        tokens: Mapping[str, str],
        secret: str | None = None,
        ttl_s: float = DEFAULT_TICKET_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> Access:
        return cls(dict(tokens), ticket_key(tokens, secret), ttl_s, clock)

    def scope(self, presented: Credential) -> str:
        """The unit id the credential opens, or ``*``; 401 for none, an unknown token or a bad ticket."""
        if presented.token is not None:
            granted = token_scope(self.tokens, presented.token)
            if granted is None:
                raise Denied(401, NO_TOKEN)
            return granted
        if presented.ticket is not None:
            return self.ticket_scope(presented.ticket)
        raise Denied(401, NO_TOKEN)

    def require_unit(self, presented: Credential, unit_id: str) -> str:
        granted = self.scope(presented)
        if granted not in (SUPERVISOR, unit_id):
            raise Denied(403, f"this token is for unit {granted!r}, not {unit_id!r}")
        return granted

    def require_supervisor(self, presented: Credential) -> None:
        """Office-wide pages (the bulletin, store status): a supervisor, once tokens are configured.

        With no tokens configured (a single-machine install, the demo) these pages stay open,
        as the local CLI needs them; the live monitor and alert streams always need a token.
        """
        if self.tokens and self.scope(presented) != SUPERVISOR:
            raise Denied(403, "this page is office-wide (every unit): it needs a supervisor token")

    # -- tickets ------------------------------------------------------------------------------
    def _mac(self, scope_b64: str, expiry: int) -> str:
        message = f"{TICKET_VERSION}.{scope_b64}.{expiry}".encode("ascii")
        return _b64(hmac.new(self.key, message, hashlib.sha256).digest())

    def issue(self, granted: str) -> str:
        """A ticket for ``granted`` (a scope a token opened), valid for ``ttl_s`` from now."""
        scope_b64 = _b64(granted.encode("utf-8"))
        expiry = int(self.clock() + self.ttl_s)
        return f"{TICKET_VERSION}.{scope_b64}.{expiry}.{self._mac(scope_b64, expiry)}"

    def ticket_scope(self, ticket: str) -> str:
        """The scope a ticket carries, if this configuration signed it and it has not expired; else 401.

        A ticket further in the future than ``ttl_s`` is refused too, so shortening the
        lifetime shortens tickets already out.
        """
        parts = ticket.split(".")
        # ASCII digits only: str.isdigit() accepts superscripts ("²³"), which int() refuses.
        well_formed = len(parts) == 4 and parts[0] == TICKET_VERSION and parts[2].isascii() and parts[2].isdigit()
        if not well_formed or not self.tokens:
            raise Denied(401, "the sign-in ticket is not valid; open the monitor link with ?token= again")
        _, scope_b64, expiry_text, mac = parts
        expiry = int(expiry_text)
        if not hmac.compare_digest(mac.encode("ascii", "replace"), self._mac(scope_b64, expiry).encode("ascii")):
            raise Denied(401, "the sign-in ticket is not valid; open the monitor link with ?token= again")
        now = self.clock()
        if expiry <= now:
            raise Denied(401, "the sign-in ticket has expired; open the monitor link with ?token= again")
        if expiry > now + self.ttl_s + CLOCK_SKEW_S:
            raise Denied(401, "the sign-in ticket outlives the configured lifetime; open the monitor link again")
        try:
            granted = _unb64(scope_b64).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Denied(401, "the sign-in ticket is not valid; open the monitor link with ?token= again") from None
        if granted not in set(self.tokens.values()):
            raise Denied(401, "the sign-in ticket's scope has no token any more; open the monitor link again")
        return granted
