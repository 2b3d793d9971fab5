"""In-process jobs: a thread per Suricata engine. Job state lives in the database, so captures
left `queued` or `running` by a crash are picked up again by `recover()`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor, as_completed

from ..service import PacketTotal


class LocalJobs:
    def __init__(self, service: PacketTotal, workers: int | None = None):
        self.service = service
        self.executor = ThreadPoolExecutor(max_workers=workers or service.settings.engines,
                                           thread_name_prefix="analyse")

    def enqueue(self, capture_id: str) -> Future:
        return self.executor.submit(self.service.analyse, capture_id)

    def run(self, capture_ids: Iterable[str], on_done: Callable[[dict], None] | None = None) -> list[dict]:
        futures = [self.enqueue(cid) for cid in capture_ids]
        results = []
        for fut in as_completed(futures):
            row = fut.result()
            results.append(row)
            if on_done:
                on_done(row)
        return results

    def recover(self) -> list[Future]:
        """Queue again what a previous process left unfinished."""
        pending = [c["id"] for status in ("running", "queued")
                   for c in self.service.db.list_captures(status=status, limit=100_000)]
        return [self.enqueue(cid) for cid in pending]

    def close(self) -> None:
        self.executor.shutdown(wait=True)
