"""One error hierarchy: every stage raises a subclass carrying a message a person understands."""

from __future__ import annotations

import errno
import sqlite3


PG_DISK_FULL = "53100"  # PostgreSQL's SQLSTATE disk_full


class PacketTotalError(Exception):
    """Root of all errors shown to users. `code` is a stable machine-readable kind."""

    code = "error"

    def __init__(self, message: str, *, detail: str | None = None):
        super().__init__(message)
        self.message = message
        self.detail = detail

    def as_dict(self) -> dict:
        return {"error": self.code, "detail": self.message}


class ConfigError(PacketTotalError):
    code = "config"


class RefusedCapture(PacketTotalError):
    """The upload is not an acceptable packet capture; nothing was analysed."""

    code = "refused"

    def __init__(self, message: str, *, status: int = 415, detail: str | None = None):
        super().__init__(message, detail=detail)
        self.status = status


class StorageFull(RefusedCapture):
    """The server has no disk space left to take an upload (HTTP 507); nothing was kept."""

    code = "storage_full"

    def __init__(self, message: str = "the server has no disk space left to store the upload; nothing "
                 "was kept: try again once space has been freed"):
        super().__init__(message, status=507)


def disk_full(exc: BaseException) -> bool:
    """Did a write fail for want of disk space? An OSError, SQLite's SQLITE_FULL or PostgreSQL's
    disk_full (as themselves or wrapped by SQLAlchemy), or tantivy's error text (it keeps only the
    OS error's message)."""
    for e in (exc, getattr(exc, "orig", None)):
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(e, sqlite3.Error) and getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            return True
        if getattr(e, "sqlstate", None) == PG_DISK_FULL:  # psycopg's errors carry their SQLSTATE
            return True
    return isinstance(exc, ValueError) and f"(os error {errno.ENOSPC})" in str(exc)


class AnalysisFailed(PacketTotalError):
    """Suricata could not analyse a capture (or died doing it). `detail`: Suricata's own lines
    about it; `retry`: the daemon, not the capture, was at fault (it died or stopped answering)."""

    code = "analysis_failed"

    def __init__(self, message: str, *, detail: str | None = None, retry: bool = False):
        super().__init__(message, detail=detail)
        self.retry = retry


class EngineError(PacketTotalError):
    """The Suricata engine itself misbehaved (would not start, stopped answering)."""

    code = "engine"


class RulesetError(PacketTotalError):
    """A ruleset change that could not be made (suricata-update failed, or Suricata refused the
    merged rules); the installed ruleset is unchanged."""

    code = "ruleset"


class RulesRefused(PacketTotalError):
    """Rules a hunt cannot run: too many, too large, without a sid, or refused by Suricata (its
    own lines); nothing was stored."""

    code = "bad_rules"
class YaraError(PacketTotalError):
    """YARA rules that could not be read or compiled (the library's message names the file and
    line); the last good rules stay in use."""

    code = "yara"


class IntelError(PacketTotalError):
    """An IOC feed that cannot be imported (a bad line, named; an unreadable file or URL); the
    feed's indicators stay as they were."""

    code = "bad_feed"


class IndexBusy(PacketTotalError):
    """Another process holds the event index's writer."""

    code = "index_busy"


class MigrationError(PacketTotalError):
    """`packettotal migrate` cannot go on: a target that is not empty, not reachable, or that
    refused what was copied; what was copied stays, and the same command resumes."""

    code = "migration"


class QueryError(PacketTotalError):
    """A search query that cannot be parsed or run; `position` is a 0-based offset when known."""

    code = "bad_query"

    def __init__(self, message: str, *, position: int | None = None, expected: str | None = None,
                 field: str | None = None, suggestions: list[str] | None = None):
        super().__init__(message)
        self.position = position
        self.expected = expected
        self.field = field  # an unknown field the query names, and the known ones nearest to it
        self.suggestions = suggestions

    def as_dict(self) -> dict:
        return {"error": self.code, "detail": self.message, "position": self.position,
                "expected": self.expected, **({} if self.field is None else {"suggestions": self.suggestions or []})}


class NotFound(PacketTotalError):
    code = "not_found"


class Forbidden(PacketTotalError):
    code = "forbidden"


class Conflict(PacketTotalError):
    """What was asked cannot be done in the state the thing is in (a capture being analysed)."""

    code = "conflict"


class OverLimit(PacketTotalError):
    """A key's rate limit or an upload quota (settings requests_per_minute, uploads_per_day,
    upload_bytes_per_day): 429 with Retry-After, or 413 for one upload larger than what is left."""

    code = "over_limit"

    def __init__(self, message: str, *, status: int = 429, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


class QueryTimeout(PacketTotalError):
    """A costly query ran past its time budget and was stopped (setting query_seconds)."""

    code = "query_timeout"


class Busy(PacketTotalError):
    """The instance has as much of this work queued as it takes; worth asking again later."""

    code = "busy"

    def __init__(self, message: str, *, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class RemoteError(PacketTotalError):
    """A running instance given by URL could not be reached or did not answer as its API does."""

    code = "remote"


class AccountError(PacketTotalError):
    """A user or key that cannot be made or changed as asked (a taken name, an unknown role, ...)."""

    code = "account"


class Unauthorized(PacketTotalError):
    """No valid session or key, on an instance that needs one (setting mode)."""

    code = "unauthorized"


class TooManyLogins(PacketTotalError):
    """Too many failed logins for this account or from this address (setting login_max_failures)."""

    code = "too_many_logins"
