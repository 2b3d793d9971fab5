"""The web application: one PacketTotal instance, its job workers, the routes of the API and the
pages, security headers on every response."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__, config as config_mod, demo
from ..errors import Forbidden, NotFound, PacketTotalError, QueryError, QueryTimeout, RefusedCapture
from ..jobs.local import LocalJobs
from ..service import PacketTotal, Submission
from . import api, downloads, pages

log = logging.getLogger("packettotal.web")

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",  # nothing leaves for other sites; our own forms keep their Origin
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}


class Instance:
    """The service and its workers, shared by every request."""

    def __init__(self, settings: config_mod.Settings):
        self.service = PacketTotal(settings)
        self.jobs = LocalJobs(self.service)

    def start(self, seed_demo: bool) -> None:
        downloads.clean(self.service)
        self.jobs.warm()  # the first upload should not wait for Suricata to load its rules
        self.jobs.recover()
        if seed_demo and self.service.db.count_captures() == 0:
            path = self.service.settings.home / "demo" / "packettotal-demo.pcap"
            if not path.exists():
                demo.write(path)
            self.submit(path, path.name)

    def submit(self, path: Path, name: str) -> Submission:
        sub = self.service.submit(path, name)
        if sub.created:
            self.jobs.enqueue(sub.capture["id"])
        return sub

    def stop(self) -> None:
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
                  docs_url=None, redoc_url=None, openapi_url="/api/v1/openapi.json")
    app.state.instance = instance

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        if request.method not in ("GET", "HEAD", "OPTIONS") and _cross_site(request):
            # no accounts, so no cookies: a page elsewhere must still not post to this instance
            return JSONResponse({"error": "forbidden", "detail": "cross-site request refused"}, status_code=403,
                                headers=SECURITY_HEADERS)
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        return response

    def wants_json(request: Request) -> bool:
        return request.url.path.startswith("/api/")

    @app.exception_handler(PacketTotalError)
    async def on_error(request: Request, exc: PacketTotalError):
        status = _status(exc)
        if wants_json(request):
            return JSONResponse(exc.as_dict(), status_code=status)
        return pages.error_page(request, status, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException):
        if wants_json(request):
            return JSONResponse({"error": "http", "detail": str(exc.detail)}, status_code=exc.status_code,
                                headers=exc.headers)
        return pages.error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def on_bug(request: Request, exc: Exception):
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        detail = f"internal error: {type(exc).__name__}"
        if wants_json(request):
            return JSONResponse({"error": "internal", "detail": detail}, status_code=500, headers=SECURITY_HEADERS)
        response = pages.error_page(request, 500, detail)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.exception_handler(RequestValidationError)
    async def on_bad_request(request: Request, exc: RequestValidationError):
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())[:1000]
        if wants_json(request):
            return JSONResponse({"error": "bad_request", "detail": detail}, status_code=422)
        return pages.error_page(request, 422, detail)

    hosts = [h.strip() for h in instance.service.settings.allowed_hosts.split(",") if h.strip()]
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=hosts or ["localhost", "127.0.0.1"])
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    return app


def _cross_site(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin:  # scripts and command-line clients; browsers send Fetch metadata
        return request.headers.get("sec-fetch-site") in ("cross-site", "same-site")
    if origin == "null":  # an opaque origin (sandboxed frame, privacy redirect): only if same-origin
        return request.headers.get("sec-fetch-site") != "same-origin"
    return urlsplit(origin).netloc != request.headers.get("host", "")


def _status(exc: PacketTotalError) -> int:
    if isinstance(exc, RefusedCapture):
        return exc.status
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, QueryError):
        return 400
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, QueryTimeout):
        return 503
    return 500
