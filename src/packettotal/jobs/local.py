"""In-process jobs: a thread per Suricata engine. Job state lives in the database, so captures
left `queued` or `running` by a crash are picked up again by `recover()`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed

from ..errors import YaraError
from ..service import PacketTotal
from .indexer import Indexer

log = logging.getLogger("packettotal")


class _Stopped(Exception):
    pass


class LocalJobs:
    def __init__(self, service: PacketTotal, workers: int | None = None,
                 executor: ThreadPoolExecutor | None = None, spool: bool = False):
        """`executor`: threads the caller started already (they may be warming the engines up).
        `spool`: analyses go to the spool, for the process holding the event index (they end
        `indexing`; flushes then commit nothing)."""
        self.service = service
        self.spools = spool
        self._indexer: Indexer | None = None
        self.executor = executor or ThreadPoolExecutor(max_workers=workers or service.settings.engines,
                                                       thread_name_prefix="analyse")
        self._rescans = ThreadPoolExecutor(1, thread_name_prefix="yara")
        self._rescan_lock = threading.Lock()
        self._rescan_waiting = False  # one re-scan queued: another request joins it
        self._stopping = threading.Event()
        # the background YARA re-scan: running, done/total files, the last one's result or error
        self.rescan_state: dict = {"running": False, "done": 0, "total": 0, "last": None, "error": None}

    def rescan_yara(self, stale_only: bool = True) -> bool:
        """Re-scan the stored carved files with the current YARA rules in a background thread
        (stale_only: those their scans are not current for). Asked while one runs, one more runs
        after it; False: one was waiting to run already."""
        with self._rescan_lock:
            if self._rescan_waiting or self._stopping.is_set():
                return False
            self._rescan_waiting = True
        self._rescans.submit(self._rescan, stale_only)
        return True

    def _rescan(self, stale_only: bool) -> None:
        state = self.rescan_state
        with self._rescan_lock:
            self._rescan_waiting = False
        state.update(running=True, done=0, total=0)

        def progress(done: int, total: int) -> None:
            if self._stopping.is_set():
                raise _Stopped()
            state.update(done=done, total=total)
        try:
            state.update(last=self.service.yara_rescan(stale_only, progress), error=None)
            log.info("YARA re-scan: %s", state["last"])
        except _Stopped:
            pass
        except YaraError as exc:
            state["error"] = exc.message
        except Exception as exc:  # a bug must not end the thread silently
            log.exception("YARA re-scan failed")
            state["error"] = f"internal error: {type(exc).__name__}: {str(exc)[:300]}"
        finally:
            state["running"] = False

    def warm(self) -> None:
        """Start the Suricata daemons in the workers now (they load the rules in parallel while
        the caller validates captures)."""
        self.service.warm_engines(self.executor)

    def start_indexer(self) -> None:
        """Index what other processes spool (this process holds the event index's writer)."""
        if self._indexer is None:
            self._indexer = Indexer(self.service)
            self._indexer.start()

    def enqueue(self, capture_id: str) -> Future:
        return self.executor.submit(self.service.analyse, capture_id, False, self.spools)

    def run(self, capture_ids: Iterable[str], on_done: Callable[[dict], None] | None = None,
            commit_every: float = 2.0) -> list[dict]:
        """Analyse a batch. Each capture starts as soon as its id arrives (the caller may still be
        checking the next files: give the largest first, so the small ones fill in beside it);
        the index commits every `commit_every` seconds and at the end, not once per capture."""
        futures = {}
        results = []
        reported: set[str] = set()  # a commit may mark a capture done before its job returns
        last = time.monotonic()

        def report_row(row: dict) -> None:
            if row["id"] not in reported:
                reported.add(row["id"])
                results.append(row)
                if on_done:
                    on_done(row)

        def report(ids: list[str]) -> None:
            rows = self.service.rows(ids)
            for cid in ids:
                report_row(rows[cid])

        def commit(due: float) -> None:  # also while ids still arrive: a long batch shows progress
            nonlocal last
            if time.monotonic() - last >= due:
                report(self.service.flush())
                last = time.monotonic()

        for cid in capture_ids:
            if cid not in futures:
                futures[cid] = self.executor.submit(self.service.analyse, cid, True, self.spools)
            commit(commit_every)
        for fut in as_completed(futures.values()):
            row = fut.result()
            if row["status"] != "running":  # failed (or committed already): final
                report_row(row)
            commit(commit_every)
        commit(0)
        return results

    def recover(self) -> list[Future]:
        """Queue again what a previous process left unfinished."""
        pending = [c["id"] for status in ("running", "queued")
                   for c in self.service.list_captures(status=status, limit=100_000)]
        return [self.enqueue(cid) for cid in pending]

    def close(self) -> None:
        self._stopping.set()
        self._rescans.shutdown(wait=True, cancel_futures=True)
        self.executor.shutdown(wait=True)
        if self._indexer is not None:
            self._indexer.stop()
