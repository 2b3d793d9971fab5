"""The indexer: in the one process holding the event index's writer (`serve`, or `analyze` when
no `serve` runs), a thread that takes the analyses other processes left in the spool (workers,
`analyze` beside `serve`: store/events/spool.py) and indexes them in groups, one commit each."""

from __future__ import annotations

import logging
import threading
import time

from ..service import PacketTotal

log = logging.getLogger("packettotal")
POLL = 0.5  # seconds between looks at the spool
GROUP = 50  # spool entries indexed with one commit
SWEEP_EVERY = 300.0  # seconds between sweeps of abandoned and orphaned entries


class Indexer:
    def __init__(self, service: PacketTotal, poll: float = POLL, group: int = GROUP):
        self.service = service
        self._poll = poll
        self._group = group
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="indexer", daemon=True)

    def start(self) -> None:
        """Index what the spool holds now (left by a crash, or by processes that ran while none
        held the writer), then keep polling."""
        self._thread.start()

    def _loop(self) -> None:
        swept = 0.0
        while not self._stopping.is_set():
            try:
                if time.monotonic() - swept >= SWEEP_EVERY:
                    self.service.sweep_spool()
                    swept = time.monotonic()
                while self.service.index_spooled(self._group) and not self._stopping.is_set():
                    pass  # a full group: there may be more at once
            except Exception:  # a bug (or a full disk) must not end the thread: the next poll tries again
                log.exception("indexer: could not index the spool")
            self._stopping.wait(self._poll)

    def stop(self) -> None:
        """Stop after the group being indexed (entries left are indexed at the next start)."""
        self._stopping.set()
        if self._thread.ident is not None:
            self._thread.join()
