"""Relational rows of accounts: users, groups, API keys, web sessions and the audit log. Only digests of
keys and session tokens are stored (auth/secrets.py says why a digest is enough)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from ..errors import NotFound
from .db import Database, metadata, now

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False),           # admin | analyst | viewer
    sa.Column("password", sa.Text, nullable=False),              # argon2id hash
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sqlite_autoincrement=True,
)

api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.String(8), primary_key=True),             # public: in the key itself, lists, the audit
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),          # sha256 of the whole key
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id")),  # None: a key of its own, with `role`
    sa.Column("role", sa.String(16)),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime),
    sa.Column("last_used", sa.DateTime),
    sa.Column("requests", sa.Integer, nullable=False, default=0),
    sa.Column("uploads", sa.Integer, nullable=False, default=0),
)

sessions = sa.Table(
    "sessions", metadata,
    sa.Column("digest", sa.String(64), primary_key=True),        # sha256 of the cookie's token
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),            # the session's form token
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("expires_at", sa.DateTime, nullable=False),
    sa.Index("ix_sessions_user", "user_id"),
)

audit = sa.Table(
    "audit", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.Column("event", sa.String(32), nullable=False),           # login_ok, login_failed, key_used, ...
    sa.Column("actor", sa.String(200)),                          # a user's name, key:<id>, cli
    sa.Column("subject", sa.String(200)),                        # the account or key acted on
    sa.Column("address", sa.String(64)),                         # the client's, for web events
    sa.Column("detail", sa.JSON),
    sa.Index("ix_audit_event_at", "event", "at"),
    sqlite_autoincrement=True,
)

# uploads per user (or key of its own) and UTC day: what uploads_per_day and upload_bytes_per_day count
upload_days = sa.Table(
    "upload_days", metadata,
    sa.Column("subject", sa.String(80), nullable=False),         # user:<name> | key:<id>
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("uploads", sa.Integer, nullable=False),
    sa.Column("bytes", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("subject", "day"),
)

# groups of users: a capture shared with `group:NAME` is shared with its members (auth/visibility.py)
groups = sa.Table(
    "groups", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sqlite_autoincrement=True,
)

group_members = sa.Table(
    "group_members", metadata,
    sa.Column("group_id", sa.Integer, sa.ForeignKey("groups.id", ondelete="CASCADE"), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.PrimaryKeyConstraint("group_id", "user_id"),
    sa.Index("ix_group_members_user", "user_id"),
)
_USER = [users.c.id, users.c.name, users.c.role, users.c.disabled, users.c.created_at]  # never the hash


class AccountStore:
    """The accounts' rows, through the database's one writer."""

    def __init__(self, db: Database):
        self.db = db  # its tables are made with the others (store/schema.py)

    # users
    def add_user(self, name: str, role: str, password: str) -> dict:
        with self.db._write, self.db.engine.begin() as conn:
            if conn.execute(sa.select(users.c.id).where(users.c.name == name)).first():
                raise ValueError(f"user {name!r} exists")
            conn.execute(sa.insert(users).values(name=name, role=role, password=password, disabled=False,
                                                 created_at=now()))
        return self.user(name)

    def user(self, name: str) -> dict:
        rows = self.db._rows(sa.select(*_USER).where(users.c.name == name))
        if not rows:
            raise NotFound(f"no user {name!r}")
        return rows[0]

    def password_of(self, name: str) -> tuple[dict, str] | None:
        rows = self.db._rows(sa.select(*_USER, users.c.password).where(users.c.name == name))
        return (rows[0], rows[0].pop("password")) if rows else None

    def set_password(self, user_id: int, password: str) -> None:
        self.db._exec(sa.update(users).where(users.c.id == user_id).values(password=password))

    def list_users(self) -> list[dict]:
        return self.db._rows(sa.select(*_USER).order_by(users.c.name))

    def disable_user(self, name: str) -> None:
        with self.db._write, self.db.engine.begin() as conn:
            found = conn.execute(sa.update(users).where(users.c.name == name).values(disabled=True)).rowcount
            if not found:
                raise NotFound(f"no user {name!r}")
            uid = sa.select(users.c.id).where(users.c.name == name).scalar_subquery()
            conn.execute(sa.delete(sessions).where(sessions.c.user_id == uid))  # signed out at once

    # groups
    def add_group(self, name: str) -> None:
        with self.db._write, self.db.engine.begin() as conn:
            if conn.execute(sa.select(groups.c.id).where(groups.c.name == name)).first():
                raise ValueError(f"group {name!r} exists")
            conn.execute(sa.insert(groups).values(name=name, created_at=now()))

    def list_groups(self) -> list[dict]:
        """Each group with its members' names (sorted)."""
        g, m, u = groups.c, group_members.c, users.c
        rows = self.db._rows(sa.select(g.name, g.created_at).order_by(g.name))
        pairs = self.db._rows(sa.select(g.name.label("group"), u.name.label("user"))
                              .select_from(groups.join(group_members, m.group_id == g.id)
                                           .join(users, m.user_id == u.id)).order_by(u.name))
        for r in rows:
            r["members"] = [p["user"] for p in pairs if p["group"] == r["name"]]
        return rows

    def _ids(self, conn, group: str, user: str) -> tuple[int, int]:
        gid = conn.execute(sa.select(groups.c.id).where(groups.c.name == group)).scalar()
        if gid is None:
            raise NotFound(f"no group {group!r}")
        uid = conn.execute(sa.select(users.c.id).where(users.c.name == user)).scalar()
        if uid is None:
            raise NotFound(f"no user {user!r}")
        return gid, uid

    def add_member(self, group: str, user: str) -> bool:
        """Whether the user was not a member yet; NotFound for an unknown group or user."""
        m = group_members.c
        with self.db._write, self.db.engine.begin() as conn:
            gid, uid = self._ids(conn, group, user)
            if conn.execute(sa.select(m.user_id).where(m.group_id == gid, m.user_id == uid)).first():
                return False
            conn.execute(sa.insert(group_members).values(group_id=gid, user_id=uid))
            return True

    def remove_member(self, group: str, user: str) -> bool:
        m = group_members.c
        with self.db._write, self.db.engine.begin() as conn:
            gid, uid = self._ids(conn, group, user)
            return bool(conn.execute(sa.delete(group_members).where(m.group_id == gid, m.user_id == uid)).rowcount)

    def groups_of(self, user: str) -> frozenset[str]:
        g, m, u = groups.c, group_members.c, users.c
        with self.db.engine.connect() as conn:
            return frozenset(conn.execute(
                sa.select(g.name).select_from(groups.join(group_members, m.group_id == g.id)
                                              .join(users, m.user_id == u.id)).where(u.name == user)).scalars())

    # API keys
    def add_key(self, key_id: str, name: str, key_digest: str, user_id: int | None, role: str | None) -> None:
        self.db._exec(sa.insert(api_keys).values(id=key_id, name=name, digest=key_digest, user_id=user_id,
                                                 role=role, created_at=now(), requests=0, uploads=0))

    def key(self, key_id: str) -> dict | None:
        """A key with its owner's name, role and state (a key of its own: its role)."""
        k, u = api_keys.c, users.c
        rows = self.db._rows(
            sa.select(k.id, k.name, k.digest, k.created_at, k.revoked_at, k.last_used, k.requests, k.uploads,
                      sa.func.coalesce(u.role, k.role).label("role"), u.name.label("user"),
                      sa.func.coalesce(u.disabled, False).label("disabled"))
            .select_from(api_keys.outerjoin(users, k.user_id == u.id)).where(k.id == key_id))
        return rows[0] if rows else None

    def list_keys(self) -> list[dict]:
        k, u = api_keys.c, users.c
        return self.db._rows(
            sa.select(k.id, k.name, sa.func.coalesce(u.role, k.role).label("role"), u.name.label("user"),
                      k.created_at, k.revoked_at, k.last_used, k.requests, k.uploads)
            .select_from(api_keys.outerjoin(users, k.user_id == u.id)).order_by(k.created_at))

    def revoke_key(self, key_id: str) -> bool:
        """Whether a key not yet revoked was revoked; NotFound if there is no such key."""
        with self.db._write, self.db.engine.begin() as conn:
            if not conn.execute(sa.select(api_keys.c.id).where(api_keys.c.id == key_id)).first():
                raise NotFound(f"no API key {key_id!r}")
            return bool(conn.execute(sa.update(api_keys).where(api_keys.c.id == key_id,
                                                               api_keys.c.revoked_at.is_(None))
                                     .values(revoked_at=now())).rowcount)

    def add_use(self, keys: dict[str, tuple[int, int, dt.datetime]],
                days: dict[tuple[str, dt.date], tuple[int, int]]) -> None:
        """Counts gathered in memory (auth/usage.py), in one transaction: per key (requests,
        uploads, last used), per subject and day (uploads, bytes)."""
        k, d = api_keys.c, upload_days.c
        with self.db._write, self.db.engine.begin() as conn:
            for key_id, (requests, uploads, last) in keys.items():
                conn.execute(sa.update(api_keys).where(k.id == key_id).values(
                    requests=k.requests + requests, uploads=k.uploads + uploads, last_used=last))
            for (subject, day), (uploads, size) in days.items():
                where = sa.and_(d.subject == subject, d.day == day)
                if not conn.execute(sa.update(upload_days).where(where).values(
                        uploads=d.uploads + uploads, bytes=d.bytes + size)).rowcount:
                    conn.execute(sa.insert(upload_days).values(subject=subject, day=day, uploads=uploads, bytes=size))

    def uploads_on(self, subject: str, day: dt.date) -> tuple[int, int]:
        """(uploads, bytes) recorded for a subject on a day."""
        d = upload_days.c
        rows = self.db._rows(sa.select(d.uploads, d.bytes).where(d.subject == subject, d.day == day))
        return (rows[0]["uploads"], rows[0]["bytes"]) if rows else (0, 0)

    # sessions
    def add_session(self, token_digest: str, user_id: int, csrf: str, expires_at: dt.datetime) -> None:
        self.db._exec(sa.insert(sessions).values(digest=token_digest, user_id=user_id, csrf=csrf,
                                                 created_at=now(), expires_at=expires_at))

    def session(self, token_digest: str) -> dict | None:
        """A live session of an enabled user, with the user's name and role."""
        s, u = sessions.c, users.c
        rows = self.db._rows(
            sa.select(s.digest, s.csrf, s.expires_at, u.name, u.role)
            .select_from(sessions.join(users, s.user_id == u.id))
            .where(s.digest == token_digest, s.expires_at > now(), u.disabled.is_(False)))
        return rows[0] if rows else None

    def end_session(self, token_digest: str) -> None:
        self.db._exec(sa.delete(sessions).where(sessions.c.digest == token_digest))

    def end_expired_sessions(self) -> None:
        self.db._exec(sa.delete(sessions).where(sessions.c.expires_at <= now()))

    # audit
    def record(self, event: str, actor: str | None, subject: str | None = None, address: str | None = None,
               detail: dict | None = None) -> None:
        self.db._exec(sa.insert(audit).values(at=now(), event=event, actor=actor, subject=subject,
                                              address=address, detail=detail))

    def failures_since(self, since: dt.datetime, subject: str, address: str | None) -> tuple[int, int]:
        """Failed logins since then: (for this account, from this address)."""
        a = audit.c
        recent = sa.and_(a.event == "login_failed", a.at > since)
        by_account = self.db._rows(sa.select(sa.func.count()).where(recent, a.subject == subject))[0]
        by_address = self.db._rows(sa.select(sa.func.count()).where(recent, a.address == address))[0] \
            if address else {"count": 0}
        return next(iter(by_account.values())), next(iter(by_address.values()))

    def prune_audit(self, before: dt.datetime) -> int:
        """Delete the audit rows older than `before`; how many."""
        return self.db._exec(sa.delete(audit).where(audit.c.at < before)).rowcount

    def audit_log(self, limit: int) -> list[dict]:
        return self.db._rows(sa.select(audit).order_by(audit.c.id.desc()).limit(limit))
