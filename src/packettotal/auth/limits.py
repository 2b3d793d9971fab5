"""Per-key rate limits and per-user upload quotas (settings requests_per_minute, uploads_per_day,
upload_bytes_per_day): the judging, given the counts. Pure but for the rate limiter's memory."""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections import deque
from collections.abc import Callable

from ..errors import OverLimit
from .rights import Principal

WINDOW = 60.0  # seconds of the rate limit


class RateLimiter:
    """At most `per_minute` requests of a key in any 60 s: a log of the last `per_minute` request
    times per key (so its memory is bounded by the limit). In memory: one process's requests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._log: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, per_minute: int) -> None:
        """Count one request, or raise OverLimit (429, Retry-After) without counting it."""
        if per_minute <= 0:
            return
        t = self._clock()
        with self._lock:
            log = self._log.get(key)
            if log is None or log.maxlen != per_minute:
                log = self._log[key] = deque(log or (), maxlen=per_minute)
            if len(log) == per_minute and t - log[0] < WINDOW:
                wait = max(1, math.ceil(WINDOW - (t - log[0])))
                raise OverLimit(f"this API key made {per_minute} requests in the last minute "
                                f"(setting requests_per_minute): try again in {wait} s", retry_after=wait)
            log.append(t)

    def left(self, key: str, per_minute: int) -> int | None:
        """Requests the key may still make now (None: no limit)."""
        if per_minute <= 0:
            return None
        t = self._clock()
        with self._lock:
            recent = sum(1 for x in self._log.get(key, ()) if t - x < WINDOW)
        return max(0, per_minute - recent)


def subject_of(who: Principal) -> str | None:
    """Whom an upload quota counts: the user (over their sessions and keys), else the key; None:
    not counted (single mode's local principal, anonymous uploads of public mode)."""
    if who.name and who.kind in ("user", "key"):
        return f"user:{who.name}"
    return f"key:{who.key_id}" if who.key_id else None


def until_tomorrow(now: dt.datetime) -> int:
    """Seconds to the next UTC midnight (a quota's Retry-After)."""
    tomorrow = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time())
    return max(1, math.ceil((tomorrow - now).total_seconds()))


def check_upload(used: tuple[int, int], size: int, per_day: int, bytes_per_day: int, now: dt.datetime) -> None:
    """Raise OverLimit when an upload of `size` bytes would pass a quota, given today's (uploads, bytes)."""
    uploads, sent = used
    wait = until_tomorrow(now)
    if per_day and uploads >= per_day:
        raise OverLimit(f"upload quota reached: {uploads} of {per_day} captures today (setting uploads_per_day); "
                        f"it renews at 00:00 UTC", retry_after=wait)
    if bytes_per_day:
        left = bytes_per_day - sent
        if left <= 0:
            raise OverLimit(f"upload quota reached: {sent:,} of {bytes_per_day:,} bytes today (setting "
                            f"upload_bytes_per_day); it renews at 00:00 UTC", retry_after=wait)
        if size > left:
            raise OverLimit(f"this upload of {size:,} bytes is larger than the {left:,} bytes left of today's "
                            f"quota (setting upload_bytes_per_day)", status=413)
