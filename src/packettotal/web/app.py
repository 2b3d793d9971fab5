"""The web application: one PacketTotal instance, its job workers and export builders, the routes
of the API and the pages, behind the guard (security headers, error shape, body bounds)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__, config as config_mod, demo
from ..errors import (AccountError, Busy, Conflict, Forbidden, IntelError, NotFound, OverLimit, PacketTotalError,
                      QueryError, QueryTimeout, RefusedCapture, RulesRefused, TooManyLogins, Unauthorized, YaraError)
from ..instance import open_jobs
from ..service import Submission
from . import access, api, downloads, login, pages
from .guard import Guard, error_response


class Instance:
    """The service and its workers, shared by every request."""

    def __init__(self, settings: config_mod.Settings):
        self.jobs = open_jobs(settings)
        self.service = self.jobs.service
        self.builds = downloads.Builds()
        self.hunts = ThreadPoolExecutor(1, thread_name_prefix="hunt")  # one hunt at a time, queued
        self._stopping = threading.Event()
        self.service.on_yara_change = self.jobs.rescan_yara  # stored files are scanned with new rules

    def start(self, seed_demo: bool) -> None:
        if not self.service.settings.broker_url:  # with Celery, the workers analyse (and write the index)
            self.service.claim_index()  # a running serve holds its home: `analyze` there spools
            self.jobs.start_indexer()  # what `analyze` beside it analyses, indexed here
        downloads.clean(self.service)
        self.jobs.warm()  # the first upload should not wait for Suricata to load its rules
        if not self.service.settings.broker_url:
            self.service.watch_rules()
        self.jobs.recover()
        for hunt_id in self.service.unfinished_hunts():
            self._run_hunt(hunt_id)
        if self.service.settings.yara_rules_dir:
            self.jobs.rescan_yara()  # files stored while the rules changed with no `serve` running
        if seed_demo and self.service.count_captures() == 0:
            path = self.service.settings.home / "demo" / "packettotal-demo.pcap"
            if not path.exists():
                demo.write(path)
            self.submit(path, path.name)

    def submit(self, path: Path, name: str) -> Submission:
        sub = self.service.submit(path, name)
        if sub.created:
            self.jobs.enqueue(sub.capture["id"])
        return sub

    def reanalyse(self, ref: str) -> dict:
        """Analyse a stored capture again with the current rules (one queued or running already
        keeps its job)."""
        again = self.service.reanalyse(ref)
        if again.queued:
            self.jobs.enqueue(again.capture["id"])
        return again.capture

    def reanalyse_matching(self, query: str | None) -> int:
        """Queue the captures a query matches (None: every one) for analysis again; how many."""
        ids = self.service.reanalyse_matching(query)
        for cid in ids:
            self.jobs.enqueue(cid)
        return len(ids)

    def hunt(self, rules: str, query: str | None, name: str | None) -> dict:
        """Check and queue a hunt (raises RulesRefused, QueryError): it runs in the hunt thread."""
        row = self.service.new_hunt(rules, query, name)
        self._run_hunt(row["id"])
        return row

    def _run_hunt(self, hunt_id: int) -> None:
        self.hunts.submit(self.service.run_hunt, hunt_id, stopping=self._stopping.is_set)

    def rescan_yara(self) -> dict:
        """Read the YARA rules again and re-scan every stored carved file with them, in the
        background; the status of the rules and of the re-scan."""
        if self.service.yara_rules() is None:  # a change found here queues a re-scan of the stale files
            status = self.service.yara_status()
            raise YaraError(status["error"] or "no YARA rules: set yara_rules_dir to a folder of *.yar files")
        self.jobs.rescan_yara(stale_only=False)
        return self.yara_status()

    def yara_status(self) -> dict:
        return self.service.yara_status() | {"rescan": dict(self.jobs.rescan_state)}

    def stop(self) -> None:
        self._stopping.set()  # a running hunt stops after its capture, left queued for the next start
        self.hunts.shutdown(cancel_futures=True)
        self.builds.close()
        self.jobs.close()
        self.service.close()


def create_app(settings: config_mod.Settings | None = None, seed_demo: bool = True) -> FastAPI:
    instance = Instance(settings or config_mod.load())

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        instance.start(seed_demo)
        yield
        instance.stop()

    app = FastAPI(title="PacketTotal", version=__version__, lifespan=lifespan,
                  description="Upload packet captures, analyse them with Suricata, read the results.",
                  docs_url=None, redoc_url=None, openapi_url="/api/v1/openapi.json",
                  dependencies=[Depends(access.authorize)])  # every route: who asks, and may they (access.py)
    app.state.instance = instance
    access.install(app)

    @app.exception_handler(PacketTotalError)
    async def on_error(request: Request, exc: PacketTotalError):
        retry = exc.retry_after if isinstance(exc, (Busy, OverLimit)) else None
        headers = {"retry-after": str(retry)} if retry is not None else None
        return error_response(request.scope, _status(exc), headers=headers, **exc.as_dict())

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException):
        return error_response(request.scope, exc.status_code, "http", str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def on_bad_request(request: Request, exc: RequestValidationError):
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())[:1000]
        return error_response(request.scope, 422, "bad_request", detail)

    hosts = [h.strip() for h in instance.service.settings.allowed_hosts.split(",") if h.strip()]
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts or ["localhost", "127.0.0.1"])
    app.include_router(api.router)
    app.include_router(login.api)
    app.include_router(login.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.add_middleware(Guard, settings=instance.service.settings)  # added last: the outermost
    return app


def _status(exc: PacketTotalError) -> int:
    if isinstance(exc, (RefusedCapture, OverLimit)):
        return exc.status
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, (QueryError, RulesRefused, IntelError, AccountError)):
        return 400
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, Unauthorized):
        return 401
    if isinstance(exc, TooManyLogins):
        return 429
    if isinstance(exc, YaraError):
        return 409
    if isinstance(exc, (Busy, QueryTimeout)):
        return 503
    return 500
