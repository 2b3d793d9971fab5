"""Secrets made and checked: passwords (argon2id), API keys and session tokens.

An API key or a session token is 256 random bits, so a fast sha256 of it is as good as a slow
password hash: there is no dictionary to try and 2^256 guesses to make. The stored hash is what a
stolen database gives away, and it cannot be turned back into the key; a slow hash would cost
every request tens of milliseconds for nothing. Passwords are chosen by people, so they get
argon2id, which makes each guess expensive."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

KEY_PREFIX = "pt"
KEY_SHAPE = re.compile(r"pt_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")
_hasher = PasswordHasher()  # argon2id, the library's current parameters
_DUMMY = _hasher.hash("no such account")  # verified against when the name is unknown: the same time


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password(stored: str | None, password: str) -> bool:
    """Whether the password matches; an unknown account (None) costs the same time and fails."""
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def new_key() -> tuple[str, str]:
    """(public id, the whole key): `pt_<id>_<secret>`; the id is shown in lists and the audit."""
    key_id = secrets.token_hex(4)
    return key_id, f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(key: str) -> str | None:
    """The public id of something shaped as a key, else None (nothing else about it is read)."""
    m = KEY_SHAPE.fullmatch(key)
    return m.group(1) if m else None


def new_token() -> str:
    return secrets.token_urlsafe(32)
