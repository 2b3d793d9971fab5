"""What keys and users use, counted in memory and written to the database in one transaction
every usage_flush_seconds (and at shutdown), instead of one write per request."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

from ..store.accounts import AccountStore
from ..store.db import now


class Meter:
    def __init__(self, store: AccountStore, flush_seconds: float, clock: Callable[[], float] = time.monotonic):
        self._store, self._every, self._clock = store, flush_seconds, clock
        self._keys: dict[str, tuple[int, int, dt.datetime]] = {}       # key -> requests, uploads, last used
        self._days: dict[tuple[str, dt.date], tuple[int, int]] = {}   # (subject, day) -> uploads, bytes
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._flushed = clock()

    def count(self, key_id: str | None, subject: str | None, upload_bytes: int | None) -> None:
        """One request of a key (None: a session's) and, when it uploads, the upload for its subject."""
        at = now()
        with self._lock:
            if key_id is not None:
                requests, uploads, _ = self._keys.get(key_id, (0, 0, at))
                self._keys[key_id] = (requests + 1, uploads + (upload_bytes is not None), at)
            if subject is not None and upload_bytes is not None:
                n, size = self._days.get((subject, at.date()), (0, 0))
                self._days[(subject, at.date())] = (n + 1, size + upload_bytes)
            due = self._clock() - self._flushed >= self._every
        if due:
            self.flush()

    def pending(self, key_id: str) -> tuple[int, int, dt.datetime | None]:
        with self._lock:
            return self._keys.get(key_id, (0, 0, None))

    def uploads_today(self, subject: str) -> tuple[int, int]:
        """(uploads, bytes) of today (UTC): written and not yet written."""
        day = now().date()
        with self._flush_lock:  # not while a flush has taken the counts and not yet written them
            stored = self._store.uploads_on(subject, day)
            with self._lock:
                n, size = self._days.get((subject, day), (0, 0))
        return stored[0] + n, stored[1] + size

    def flush(self) -> None:
        """Write what was counted; kept in memory again when the database cannot take it now."""
        with self._flush_lock:
            with self._lock:
                keys, days, self._keys, self._days = self._keys, self._days, {}, {}
                self._flushed = self._clock()
            if not keys and not days:
                return
            try:
                self._store.add_use(keys, days)
            except Exception:
                with self._lock:
                    for k, (r, u, at) in keys.items():
                        r2, u2, at2 = self._keys.get(k, (0, 0, at))
                        self._keys[k] = (r + r2, u + u2, max(at, at2))
                    for d, (n, size) in days.items():
                        n2, s2 = self._days.get(d, (0, 0))
                        self._days[d] = (n + n2, size + s2)
                raise
