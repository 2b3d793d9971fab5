"""In-process jobs: a thread per Suricata engine. Job state lives in the database, so captures
left `queued` or `running` by a crash are picked up again by `recover()`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed

from ..service import PacketTotal


class LocalJobs:
    def __init__(self, service: PacketTotal, workers: int | None = None):
        self.service = service
        self.executor = ThreadPoolExecutor(max_workers=workers or service.settings.engines,
                                           thread_name_prefix="analyse")

    def warm(self) -> None:
        """Start the Suricata daemons in the workers now (they load the rules in parallel while
        the caller validates captures)."""
        for _ in range(self.service.settings.engines):
            self.executor.submit(self.service.pool.warm_one)

    def enqueue(self, capture_id: str) -> Future:
        return self.executor.submit(self.service.analyse, capture_id)

    def run(self, capture_ids: Iterable[str], on_done: Callable[[dict], None] | None = None,
            commit_every: float = 2.0) -> list[dict]:
        """Analyse a batch, largest captures first (so the small ones fill in beside them); the
        index commits every `commit_every` seconds and at the end, rather than once per capture."""
        sizes = {cid: row["size"] for cid, row in self.service.db.captures_in(capture_ids).items()}
        order = sorted(dict.fromkeys(capture_ids), key=lambda cid: -sizes.get(cid, 0))
        futures = [self.executor.submit(self.service.analyse, cid, True) for cid in order]
        results = []
        last = time.monotonic()

        def report(ids: list[str]) -> None:
            for cid in ids:
                row = self.service.db.get_capture(cid)
                results.append(row)
                if on_done:
                    on_done(row)

        for fut in as_completed(futures):
            row = fut.result()
            if row["status"] != "running":  # failed: final already
                results.append(row)
                if on_done:
                    on_done(row)
            if time.monotonic() - last > commit_every:
                report(self.service.flush())
                last = time.monotonic()
        report(self.service.flush())
        return results

    def recover(self) -> list[Future]:
        """Queue again what a previous process left unfinished."""
        pending = [c["id"] for status in ("running", "queued")
                   for c in self.service.db.list_captures(status=status, limit=100_000)]
        return [self.enqueue(cid) for cid in pending]

    def close(self) -> None:
        self.executor.shutdown(wait=True)
