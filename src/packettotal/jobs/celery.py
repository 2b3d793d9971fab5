"""Celery jobs on Redis (setting broker_url): web nodes and the CLI send `analyse(capture_id)`
tasks; `packettotal worker` processes run them. Job state stays in the database (the captures'
status), so any web node shows it; a worker records a lease (worker id + heartbeat) on the capture
it runs, so `recover()` does not queue again what a live worker holds.

Delivery is at least once (acks late, rejected when the worker is lost): a redelivered task
analyses its capture again from the start (re-analysis deletes the capture's documents first), and
one for a capture already `done` does nothing, so each capture finishes once."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from celery import Celery

from ..config import Settings
from ..errors import IndexBusy
from ..service import LEASE_SECONDS, PacketTotal
from .local import LocalJobs

log = logging.getLogger("packettotal")

TASK = "packettotal.analyse"
HEARTBEAT_SECONDS = 5.0
DEAD_AFTER_BEATS = round(LEASE_SECONDS / HEARTBEAT_SECONDS)  # a lease not renewed for this many beats: a dead worker
SPOOL_POLL_SECONDS = 1.0
FINAL = ("done", "failed")


def queue_name(settings: Settings) -> str:
    """One queue per instance, so instances sharing one Redis never take each other's jobs: named
    after its database_url (the same on every node of a scaled instance, whatever their homes),
    or its home for the embedded database."""
    instance = settings.database_url or str(settings.home.resolve())
    return "packettotal-" + hashlib.sha256(instance.encode()).hexdigest()[:16]


def make_app(settings: Settings) -> Celery:
    """A Celery app for this instance (no module-global state: each caller makes its own)."""
    if not settings.broker_url:
        raise ValueError("broker_url is not set")
    app = Celery("packettotal", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        task_ignore_result=True, task_default_queue=queue_name(settings),
        # Redis redelivers an unacknowledged task only past the longest analysis: a large capture is never
        # started a second time while its first run still goes on
        broker_transport_options={"visibility_timeout": settings.longest_analysis},
        broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
        worker_send_task_events=False, task_send_sent_event=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


class CeleryJobs(LocalJobs):
    """LocalJobs' surface for serve and the CLI, sending tasks instead of running threads (the
    YARA re-scan stays in this process's thread)."""

    def __init__(self, service: PacketTotal):
        super().__init__(service, workers=1)
        self.app = make_app(service.settings)
        self.queue = queue_name(service.settings)

    def warm(self) -> None:  # the workers own the engines
        pass

    def enqueue(self, capture_id: str) -> None:  # type: ignore[override]
        self.app.send_task(TASK, args=[capture_id], queue=self.queue)

    def run(self, capture_ids: Iterable[str], on_done: Callable[[dict], None] | None = None,
            commit_every: float = 2.0) -> list[dict]:
        """Send a batch and wait until every capture is final (read from the database)."""
        waiting: list[str] = []
        for cid in capture_ids:
            if cid not in waiting:
                waiting.append(cid)
                self.enqueue(cid)
        results = []
        while waiting:
            rows = self.service.rows(waiting)
            for cid in [c for c in waiting if rows[c]["status"] in FINAL]:
                waiting.remove(cid)
                results.append(rows[cid])
                if on_done:
                    on_done(rows[cid])
            if waiting:
                time.sleep(min(commit_every, 0.5))
        return results

    def recover(self) -> list[str]:  # type: ignore[override]
        """Queue again what is unfinished and no live worker holds (a dead worker's task also
        comes back from Redis after the visibility timeout: the second run does nothing)."""
        held = self.service.leased(LEASE_SECONDS)
        pending = [c["id"] for status in ("running", "queued")
                   for c in self.service.list_captures(status=status, limit=100_000) if c["id"] not in held]
        for cid in pending:
            self.enqueue(cid)
        return pending

    def close(self) -> None:
        super().close()
        self.app.close()


def worker_id() -> str:
    return f"{socket.gethostname()}.{os.getpid()}"


class Worker:
    """`packettotal worker`: one service and one long-lived Suricata pool (warmed at start) shared
    by `concurrency` Celery threads. SIGTERM: Celery's warm shutdown (no new tasks, the current
    ones finish), then the daemons stop."""

    def __init__(self, settings: Settings, concurrency: int | None = None):
        self.settings = settings
        self.concurrency = concurrency or settings.engines
        self.id = worker_id()
        from ..instance import open_service
        self.service = open_service(settings)
        try:  # the first worker on a home with no serve holds the writer and indexes directly
            self.service.claim_index()
            self.writer = True
        except IndexBusy:  # a serve or another worker holds it: analyse into the spool it indexes
            self.writer = False
        self._threads = ThreadPoolExecutor(settings.engines, thread_name_prefix="engine")  # the daemons' owners
        self._stop = threading.Event()
        self.app = make_app(settings)
        self.app.task(name=TASK, bind=False)(self.analyse)

    def analyse(self, capture_id: str) -> str:
        try:
            row = self.service.rows([capture_id]).get(capture_id)
        except Exception:
            row = None
        if row is None:  # deleted since it was queued
            return "gone"
        if row["status"] in ("done", "indexing"):  # a redelivery of a finished job (or one spooled)
            return row["status"]
        if not self.service.take_lease(capture_id, self.id):
            return "held"  # a live worker runs it (a capture queued twice)
        try:
            if self.writer:
                return self.service.analyse(capture_id)["status"]
            return self.service.analyse_to_spool(capture_id)["status"]
        finally:
            self.service.drop_lease(capture_id, self.id)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                self.service.beat_leases(self.id)
            except Exception as exc:
                log.warning("worker %s: heartbeat failed: %s", self.id, exc)

    def _index_spool(self) -> None:
        """The writer's indexer: what the other workers spooled, into the index. A worker without
        the writer takes it over once its holder is gone (a worker killed)."""
        while not self._stop.wait(SPOOL_POLL_SECONDS):
            try:
                if not self.writer:
                    try:
                        self.service.claim_index()
                    except IndexBusy:
                        continue
                    self.writer = True
                    log.info("worker %s: now the event index's writer", self.id)
                self.service.sweep_spool()
                while self.service.index_spooled():
                    pass
            except Exception:
                log.exception("worker %s: indexing the spool failed", self.id)

    def run(self) -> None:
        self.service.warm_engines(self._threads)
        beat = threading.Thread(target=self._beat, name="lease-beat", daemon=True)
        beat.start()
        threading.Thread(target=self._index_spool, name="spool-indexer", daemon=True).start()
        try:
            worker = self.app.Worker(pool="threads", concurrency=self.concurrency, hostname=f"pt@{self.id}",
                                     queues=[queue_name(self.settings)], loglevel="INFO",
                                     without_mingle=True, without_gossip=True, without_heartbeat=True,
                                     optimization="fair")
            worker.start()
        finally:
            self._stop.set()
            self.service.close()
            self._threads.shutdown(wait=False, cancel_futures=True)
            self.app.close()
