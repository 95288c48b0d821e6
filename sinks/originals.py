"""A dead letter's original record, sealed for redrive: AES-GCM under the office's key.

The dead-letter table keeps a redacted copy for reading; the original bytes (which may hold a
caller's phone and name) are needed only to send the record again once its cause is fixed.
They are kept sealed: AES-256-GCM (``cryptography``), authenticated, bound to the dead
letter's coordinates (a ciphertext copied onto another row does not open), with the id of
the key that sealed them stored beside them. Without a key nothing is kept; with the key
rotated or removed the stored originals can never be opened again (crypto-shredding).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import SecretStr

from hotline.settings import SEALING_KEY_BYTES, sealing_key

NONCE_BYTES = 12  # AES-GCM's standard nonce: random per seal, never reused under one key in practice
KEY_BYTES = SEALING_KEY_BYTES  # AES-256


class Unreadable(ValueError):
    """A sealed original that cannot be opened here: why, in words an operator acts on."""


@dataclass(frozen=True)
class Original:
    """The record as it was read: what a redrive sends again."""

    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class Sealed:
    """What the table keeps: the ciphertext (base64 text) and the id of the key that sealed it."""

    ciphertext: str
    key_id: str


def key_id_of(key: bytes) -> str:
    """A key's public name: the first 16 hex digits of its SHA-256 (names it, reveals nothing)."""
    return hashlib.sha256(b"hotline-deadletter-key\x00" + key).hexdigest()[:16]


def parse_key(text: str) -> bytes:
    """The configured key (base64 of 32 bytes); a clear error for anything else (the value is never echoed)."""
    return sealing_key(text)


def key_of(secret: SecretStr | None) -> bytes | None:
    """The configured key's bytes, or None when none is configured (then no original is kept)."""
    return None if secret is None else parse_key(secret.get_secret_value())


def new_key() -> str:
    """A fresh key, base64: what an office puts in HOTLINE_DEADLETTER_KEY."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def coordinates(topic: str, partition: int, offset: int) -> bytes:
    """The associated data: the dead letter's identity, so a ciphertext opens only on its own row."""
    return f"{topic}\x00{partition}\x00{offset}".encode()


def seal(original: Original, key: bytes, where: bytes) -> Sealed:
    """The original encrypted and authenticated under ``key``, bound to ``where``."""
    plain = json.dumps(
        {
            "key": None if original.key is None else base64.b64encode(original.key).decode(),
            "value": base64.b64encode(original.value).decode(),
        },
        separators=(",", ":"),
    ).encode()
    nonce = os.urandom(NONCE_BYTES)
    body = AESGCM(key).encrypt(nonce, plain, where)
    return Sealed(base64.b64encode(nonce + body).decode(), key_id_of(key))


def unseal(sealed: Sealed, key: bytes | None, where: bytes) -> Original:
    """The original back; :class:`Unreadable` when there is none, the key differs or it was altered."""
    if not sealed.ciphertext:
        raise Unreadable("no original was kept (no HOTLINE_DEADLETTER_KEY when it was dead-lettered, or purged)")
    if key is None:
        raise Unreadable(
            f"the original is sealed with key {sealed.key_id} and no HOTLINE_DEADLETTER_KEY is configured: unreadable"
        )
    if key_id_of(key) != sealed.key_id:
        raise Unreadable(
            f"the original is sealed with key {sealed.key_id}, the configured key is {key_id_of(key)} "
            "(rotated or replaced): unreadable"
        )
    try:
        raw = base64.b64decode(sealed.ciphertext, validate=True)
        plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], where)
        data = json.loads(plain)
    except (InvalidTag, binascii.Error, ValueError):
        raise Unreadable("the sealed original does not authenticate (altered, or not this dead letter's)") from None
    record_key = data["key"]
    return Original(None if record_key is None else base64.b64decode(record_key), base64.b64decode(data["value"]))
