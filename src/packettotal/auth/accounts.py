"""Users, API keys, web sessions and the audit log, as the service offers them: every check of a
password, key or session token is here, and nothing secret is ever logged or returned twice."""

from __future__ import annotations

import datetime as dt
import re

from ..config import Settings
from ..errors import AccountError, NotFound, TooManyLogins
from ..store.accounts import AccountStore
from ..store.db import Database, now
from . import secrets
from .rights import ROLES, Principal

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
MIN_PASSWORD, MAX_PASSWORD = 8, 1024  # bounded: argon2 hashes what it is given
KEY_USE_EVERY = dt.timedelta(hours=1)  # a key's use is audited once an hour


def _check_name(name: str, what: str) -> None:
    if not NAME.fullmatch(name):
        raise AccountError(f"a {what} name is 1-64 letters, digits and _.@- (starting with a letter or digit)")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"role must be {' or '.join(ROLES)}, not {role[:32]!r}")


class Accounts:
    def __init__(self, db: Database, settings: Settings):
        self._store = AccountStore(db)
        self.settings = settings

    # users
    def add_user(self, name: str, role: str, password: str, actor: str = "cli") -> dict:
        _check_name(name, "user")
        _check_role(role)
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise AccountError(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters")
        try:
            row = self._store.add_user(name, role, secrets.hash_password(password))
        except ValueError as exc:
            raise AccountError(str(exc)) from None
        self._store.record("user_added", actor, name, detail={"role": role})
        return row

    def users(self) -> list[dict]:
        return self._store.list_users()

    def disable_user(self, name: str, actor: str = "cli") -> None:
        self._store.disable_user(name)
        self._store.record("user_disabled", actor, name)

    # API keys
    def create_key(self, name: str, user: str | None = None, role: str = "analyst",
                   actor: str = "cli") -> tuple[dict, str]:
        """A new key: (its row, the key itself, to be shown once and never again)."""
        if not name.strip() or len(name) > 200:
            raise AccountError("a key's name is 1-200 characters")
        owner = self._store.user(user) if user else None
        if owner is None:
            _check_role(role)
        key_id, key = secrets.new_key()
        self._store.add_key(key_id, name, secrets.digest(key), owner["id"] if owner else None,
                            None if owner else role)
        self._store.record("key_created", actor, f"key:{key_id}", detail={"name": name, "user": user})
        row = self._store.key(key_id)
        assert row is not None
        row.pop("digest")
        return row, key

    def keys(self) -> list[dict]:
        return self._store.list_keys()

    def revoke_key(self, key_id: str, actor: str = "cli") -> None:
        if self._store.revoke_key(key_id):
            self._store.record("key_revoked", actor, f"key:{key_id}")

    def by_key(self, key: str) -> Principal | None:
        """The principal of a live key (its user enabled), else None."""
        key_id = secrets.key_id_of(key)
        row = self._store.key(key_id) if key_id else None
        if row is None or not secrets.same(row["digest"], secrets.digest(key)):
            return None
        if row["revoked_at"] is not None or row["disabled"]:
            return None
        return Principal("key", role=row["role"], name=row["user"], key_id=row["id"])

    def count_use(self, who: Principal, upload: bool, address: str | None) -> None:
        """Count a key's request; the first in an hour goes to the audit log."""
        if who.key_id is None:
            return
        before = self._store.count_key_use(who.key_id, upload)
        if before is None or now() - before >= KEY_USE_EVERY:
            self._store.record("key_used", f"key:{who.key_id}", who.name, address)

    def usage(self, key_id: str) -> dict:
        row = self._store.key(key_id)
        if row is None:
            raise NotFound(f"no API key {key_id!r}")
        return {"key": row["id"], "name": row["name"], "user": row["user"], "role": row["role"],
                "created_at": row["created_at"], "last_used": row["last_used"],
                "requests": row["requests"], "uploads": row["uploads"]}

    # web sessions
    def login(self, name: str, password: str, address: str | None) -> tuple[str, Principal]:
        """A new session's token (for the cookie) and principal; raises TooManyLogins while this
        account or address has failed login_max_failures times within login_window_seconds, and
        AccountError for a wrong name or password (the same message for either)."""
        s = self.settings
        since = now() - dt.timedelta(seconds=s.login_window_seconds)
        name = name[:64]
        by_account, by_address = self._store.failures_since(since, name, address)
        if max(by_account, by_address) >= s.login_max_failures:
            self._store.record("login_throttled", None, name, address)
            raise TooManyLogins("too many failed logins: try again later")
        found = self._store.password_of(name)
        user, stored = found if found else (None, None)
        if not secrets.check_password(stored, password[:MAX_PASSWORD]) or user is None or user["disabled"]:
            self._store.record("login_failed", None, name, address)
            raise AccountError("wrong user name or password")
        assert stored is not None
        if secrets.needs_rehash(stored):
            self._store.set_password(user["id"], secrets.hash_password(password))
        token, csrf = secrets.new_token(), secrets.new_token()
        self._store.end_expired_sessions()
        self._store.add_session(secrets.digest(token), user["id"], csrf,
                                now() + dt.timedelta(hours=s.session_hours))
        self._store.record("login_ok", name, name, address)
        return token, Principal("user", role=user["role"], name=name, session=secrets.digest(token), csrf=csrf)

    def by_session(self, token: str) -> Principal | None:
        if not token or len(token) > 100:
            return None
        row = self._store.session(secrets.digest(token))
        if row is None:
            return None
        return Principal("user", role=row["role"], name=row["name"], session=row["digest"], csrf=row["csrf"])

    def logout(self, who: Principal, address: str | None) -> None:
        if who.session:
            self._store.end_session(who.session)
            self._store.record("logout", who.name, who.name, address)

    def record(self, event: str, actor: str | None, subject: str | None, detail: dict | None = None) -> None:
        """An entry of the audit log (a visibility change, ...)."""
        self._store.record(event, actor, subject, detail=detail)

    def audit(self, limit: int = 100) -> list[dict]:
        return self._store.audit_log(max(1, min(limit, 10_000)))
