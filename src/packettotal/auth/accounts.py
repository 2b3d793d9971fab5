"""Users, API keys, web sessions and the audit log, as the service offers them: every check of a
password, key or session token is here, and nothing secret is ever logged or returned twice."""

from __future__ import annotations

import datetime as dt
import re
import threading

from ..config import Settings
from ..errors import AccountError, NotFound, TooManyLogins
from ..store.accounts import AccountStore
from ..store.db import Database, now
from . import limits, secrets
from .rights import ROLES, Principal
from .usage import Meter

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
MIN_PASSWORD, MAX_PASSWORD = 8, 1024  # bounded: argon2 hashes what it is given
KEY_USE_EVERY = dt.timedelta(hours=1)  # a key's use is audited at most once an hour
PRUNE_EVERY = dt.timedelta(days=1)     # audit rows older than audit_days go this often


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
        self._meter = Meter(self._store, settings.usage_flush_seconds)  # counts, written in batches
        self._rate = limits.RateLimiter()
        self._audited: dict[str, dt.datetime] = {}  # key -> when its use was last audited
        self._audited_lock = threading.Lock()
        self._pruned_at = now()
        self.prune_audit()  # at start, then at the first write of each day (_audit)

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
        self._audit("user_added", actor, name, detail={"role": role})
        return row

    def users(self) -> list[dict]:
        return self._store.list_users()

    def disable_user(self, name: str, actor: str = "cli") -> None:
        self._store.disable_user(name)
        self._audit("user_disabled", actor, name)

    # groups: capture shares name them as `group:NAME`
    def add_group(self, name: str, actor: str = "cli") -> None:
        _check_name(name, "group")
        try:
            self._store.add_group(name)
        except ValueError as exc:
            raise AccountError(str(exc)) from None
        self._audit("group_added", actor, name)

    def groups(self) -> list[dict]:
        return self._store.list_groups()

    def add_member(self, group: str, user: str, actor: str = "cli") -> bool:
        added = self._store.add_member(group, user)
        self._audit("group_member_added", actor, user, detail={"group": group})
        return added

    def remove_member(self, group: str, user: str, actor: str = "cli") -> bool:
        """The user loses sight of what the group was shared at once (every view reads membership)."""
        removed = self._store.remove_member(group, user)
        self._audit("group_member_removed", actor, user, detail={"group": group})
        return removed

    def groups_of(self, user: str | None) -> frozenset[str]:
        return self._store.groups_of(user) if user else frozenset()

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
        self._audit("key_created", actor, f"key:{key_id}", detail={"name": name, "user": user})
        row = self._store.key(key_id)
        assert row is not None
        row.pop("digest")
        return row, key

    def keys(self) -> list[dict]:
        return self._store.list_keys()

    def revoke_key(self, key_id: str, actor: str = "cli") -> None:
        if self._store.revoke_key(key_id):
            self._audit("key_revoked", actor, f"key:{key_id}")

    def by_key(self, key: str) -> Principal | None:
        """The principal of a live key (its user enabled), else None."""
        key_id = secrets.key_id_of(key)
        row = self._store.key(key_id) if key_id else None
        if row is None or not secrets.same(row["digest"], secrets.digest(key)):
            return None
        if row["revoked_at"] is not None or row["disabled"]:
            return None
        return Principal("key", role=row["role"], name=row["user"], key_id=row["id"])

    def admit(self, who: Principal, upload_bytes: int | None, address: str | None) -> None:
        """Count a request of a key, and an upload (of `upload_bytes`) of a key or a user; or raise
        OverLimit: the key's rate limit (429), its user's (or its own) upload quota (429, or 413
        for one upload larger than what is left). A key's use is audited at most once an hour."""
        s = self.settings
        if who.key_id:
            self._rate.take(who.key_id, s.requests_per_minute)
        subject = limits.subject_of(who)
        if upload_bytes is not None and subject and (s.uploads_per_day or s.upload_bytes_per_day):
            limits.check_upload(self._meter.uploads_today(subject), upload_bytes, s.uploads_per_day,
                                s.upload_bytes_per_day, now())
        if who.key_id:
            self._audit_use(who, address)
        self._meter.count(who.key_id, subject, upload_bytes)

    def _audit_use(self, who: Principal, address: str | None) -> None:
        assert who.key_id is not None
        with self._audited_lock:
            last = self._audited.get(who.key_id)
        if last is None:  # first seen by this process: its last use, as written
            row = self._store.key(who.key_id)
            last = row["last_used"] if row else None
        at = now()
        if last is not None and at - last < KEY_USE_EVERY:
            with self._audited_lock:
                self._audited[who.key_id] = last
            return
        with self._audited_lock:
            self._audited[who.key_id] = at
        self._audit("key_used", f"key:{who.key_id}", who.name, address)

    def flush(self) -> None:
        """Write the counts kept in memory (the service's close does)."""
        self._meter.flush()

    def usage(self, who: Principal) -> dict:
        """A key's requests and uploads (written and not yet), the limits and what is left of them."""
        row = self._store.key(who.key_id or "")
        if row is None:
            raise NotFound(f"no API key {who.key_id!r}")
        s = self.settings
        requests, uploads, last = self._meter.pending(row["id"])
        subject = limits.subject_of(who)
        sent = self._meter.uploads_today(subject) if subject else (0, 0)
        return {"key": row["id"], "name": row["name"], "user": row["user"], "role": row["role"],
                "created_at": row["created_at"], "last_used": last or row["last_used"],
                "requests": row["requests"] + requests, "uploads": row["uploads"] + uploads,
                "limits": {"requests_per_minute": s.requests_per_minute or None,
                           "uploads_per_day": s.uploads_per_day or None,
                           "upload_bytes_per_day": s.upload_bytes_per_day or None},
                "today": {"uploads": sent[0], "bytes": sent[1], "counted_for": subject},
                "left": {"requests_this_minute": self._rate.left(row["id"], s.requests_per_minute),
                         "uploads_today": max(0, s.uploads_per_day - sent[0]) if s.uploads_per_day else None,
                         "bytes_today": max(0, s.upload_bytes_per_day - sent[1]) if s.upload_bytes_per_day else None}}

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
            self._audit("login_throttled", None, name, address)
            raise TooManyLogins("too many failed logins: try again later")
        found = self._store.password_of(name)
        user, stored = found if found else (None, None)
        if not secrets.check_password(stored, password[:MAX_PASSWORD]) or user is None or user["disabled"]:
            self._audit("login_failed", None, name, address)
            raise AccountError("wrong user name or password")
        assert stored is not None
        if secrets.needs_rehash(stored):
            self._store.set_password(user["id"], secrets.hash_password(password))
        token, csrf = secrets.new_token(), secrets.new_token()
        self._store.end_expired_sessions()
        self._store.add_session(secrets.digest(token), user["id"], csrf,
                                now() + dt.timedelta(hours=s.session_hours))
        self._audit("login_ok", name, name, address)
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
            self._audit("logout", who.name, who.name, address)

    def record(self, event: str, actor: str | None, subject: str | None = None, address: str | None = None,
               detail: dict | None = None) -> None:
        """An event of the service's to the audit log (a capture deleted, ...)."""
        self._audit(event, actor, subject, address, detail)

    def _audit(self, event: str, actor: str | None, subject: str | None = None, address: str | None = None,
               detail: dict | None = None) -> None:
        self._store.record(event, actor, subject, address, detail)
        if now() - self._pruned_at >= PRUNE_EVERY:
            self._pruned_at = now()
            self.prune_audit()

    def prune_audit(self) -> int:
        """Forget audit rows older than `audit_days` (0: keep them for ever); how many went."""
        if not self.settings.audit_days:
            return 0
        return self._store.prune_audit(now() - dt.timedelta(days=self.settings.audit_days))

    def audit(self, limit: int = 100) -> list[dict]:
        return self._store.audit_log(max(1, min(limit, 10_000)))
