"""PacketTotal put together, in one place for the web and the command line: the service over its
stores and, where this process analyses captures, its job workers (a thread per Suricata engine).

The service and the workers are imported only once the daemons were launched: they load their
rules while the rest of PacketTotal is imported."""

from __future__ import annotations

from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TYPE_CHECKING

from .config import Settings
from .errors import EngineError

if TYPE_CHECKING:
    from .ingest.suricata import EnginePool
    from .jobs.local import LocalJobs
    from .service import PacketTotal


def open_service(settings: Settings, pool: EnginePool | None = None) -> PacketTotal:
    """The service alone: it starts its Suricata daemons on the first analysis (or uses `pool`)."""
    from .service import PacketTotal
    return PacketTotal(settings, pool)


def open_jobs(settings: Settings, spawn: bool = False, claim: bool = False, spool: bool = False) -> LocalJobs:
    """The service (the workers' `service`) and its workers. With `spawn`, the daemons are
    launched now and made ready in the workers while the caller goes on; else `warm()` does it.
    With `claim`, the event index's writer is taken first, before any daemon starts (raises
    IndexBusy when another process holds it), and its indexer takes what others spool. With
    `spool`, the workers analyse into the spool for the process that holds the writer. With
    broker_url set, Celery workers analyse: the jobs only send tasks (and neither claim nor spawn
    here)."""
    if settings.broker_url:
        from .jobs.celery import CeleryJobs
        return CeleryJobs(open_service(settings))
    if claim:
        return _claimed(settings, spawn)
    executor = ThreadPoolExecutor(settings.engines, thread_name_prefix="analyse")
    pool = _spawned(settings, executor) if spawn else None
    try:
        from .jobs.local import LocalJobs
        jobs = LocalJobs(open_service(settings, pool), executor=executor, spool=spool)
        if pool is not None:
            jobs.service.warm_ndpi(executor)  # nDPI's helpers too, in the same threads
        return jobs
    except BaseException:
        if pool is not None:
            pool.close()
        executor.shutdown(cancel_futures=True)
        raise


def _claimed(settings: Settings, spawn: bool) -> LocalJobs:
    """open_jobs with the writer taken before the daemons are launched."""
    from .jobs.local import LocalJobs
    service = open_service(settings)
    try:
        service.claim_index()
    except BaseException:
        service.close()
        raise
    executor = ThreadPoolExecutor(settings.engines, thread_name_prefix="analyse")
    if spawn:
        service.warm_engines(executor)
    jobs = LocalJobs(service, executor=executor)
    jobs.start_indexer()
    return jobs


def _spawned(settings: Settings, threads: Executor) -> EnginePool | None:
    from .ingest.suricata import EnginePool
    pool = None
    try:
        pool = EnginePool(settings)
        pool.spawn()
        pool.warm(threads)
    except (EngineError, OSError):
        if pool is not None:
            pool.close()
        return None  # made again on first use: each capture then fails with the reason
    return pool
