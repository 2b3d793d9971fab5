"""The layer every request and response passes through: security headers on every response, the
one error shape (`{error, detail}` JSON under /api, the HTML error page elsewhere), cross-site
refusal, and bounds on request bodies (size, and how slowly they may arrive)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Settings
from ..ingest.validate import human_size
from . import pages

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
UPLOADS = {("POST", "/api/v1/captures"), ("POST", "/upload")}  # captures: their own cap, counted in uploads.py
MAX_DETAIL = 300  # characters of a framework's plain-text error kept as the detail


def is_api(scope: Scope) -> bool:
    return scope["path"].startswith("/api/")


def error_response(scope: Scope, status: int, error: str, detail: str,
                   headers: Mapping[str, str] | None = None, **extra: Any) -> Response:
    """The one error answer: JSON `{error, detail, ...}` under /api, the HTML error page elsewhere,
    with the security headers either way."""
    headers = {**SECURITY_HEADERS, **(headers or {})}
    if is_api(scope):
        return JSONResponse({"error": error, "detail": detail, **extra}, status_code=status, headers=headers)
    response = pages.error_page(Request(scope), status, detail)
    response.headers.update(headers)
    return response


class _Refused(Exception):
    """Raised into the application when its request body broke a bound; the guard answers."""


class _Exchange:
    """One request and its response, as the guard sees them."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, settings: Settings):
        self.scope, self._receive, self._send = scope, receive, send
        self.settings = settings
        self.limit = None if (scope["method"], scope["path"]) in UPLOADS else settings.max_body_bytes
        headers = Headers(scope=scope)
        self.declared = headers.get("content-length")
        self.body_done = not (self.declared not in (None, "0") or "transfer-encoding" in headers)
        self.received = 0
        self.started = False  # a response start went out
        self.refusal: tuple[int, str, str] | None = None
        self.skip = False  # the application's own response is being replaced
        self.plain: tuple[int, list[tuple[str, str]]] | None = None  # an error of the wrong shape, being replaced
        self.plain_body = b""
        loop = asyncio.get_running_loop()
        self.clock = loop.time
        self.deadline = self.clock() + settings.body_timeout

    def early_refusal(self) -> tuple[int, str, str] | None:
        if self.limit is not None and self.declared and self.declared.isdigit() and int(self.declared) > self.limit:
            return 413, "too_large", (f"the request body is {human_size(int(self.declared))}, over the limit "
                                      f"of {human_size(self.limit)}")
        if self.scope["method"] not in ("GET", "HEAD", "OPTIONS") and cross_site(Headers(scope=self.scope)):
            # a page elsewhere must not post to this instance (sessions: web/access.py checks a CSRF token too)
            return 403, "forbidden", "cross-site request refused"
        return None

    async def receive(self) -> Message:
        if self.body_done:  # no bound on waiting for a disconnect while a response streams
            return await self._receive()
        now = self.clock()
        try:
            # the body may pause for body_timeout, and must average body_min_rate after that grace
            async with asyncio.timeout(max(0.0, min(self.deadline, now + self.settings.body_timeout) - now)):
                message = await self._receive()
        except TimeoutError:
            self.refuse(408, "timeout", f"the request body came too slowly ({self.received} bytes so far): "
                                        f"send at least {self.settings.body_min_rate} bytes a second")
            raise _Refused from None
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            self.deadline += len(message.get("body", b"")) / self.settings.body_min_rate
            if self.limit is not None and self.received > self.limit:
                self.refuse(413, "too_large", f"the request body is over the limit of {human_size(self.limit)}")
                raise _Refused
            self.body_done = not message.get("more_body", False)
        return message

    def refuse(self, status: int, error: str, detail: str) -> None:
        self.refusal = (status, error, detail)

    async def answer(self, status: int, error: str, detail: str, headers: dict[str, str] | None = None) -> None:
        headers = dict(headers or {})
        if not self.body_done:  # what is left of the body is not read: the connection cannot carry another request
            headers["connection"] = "close"
        self.started = True
        await error_response(self.scope, status, error, detail, headers)(self.scope, self._receive, self._send)

    async def send(self, message: Message) -> None:
        if self.skip:
            return
        if message["type"] == "http.response.start":
            if self.refusal:  # the application answered a body it could not read: say why
                self.skip = True
                await self.answer(*self.refusal)
                return
            headers = MutableHeaders(scope=message)
            for k, v in SECURITY_HEADERS.items():
                headers.setdefault(k, v)
            if message["status"] >= 400 and not _shaped(self.scope, headers):
                self.plain = (message["status"], [(k, v) for k, v in headers.items()
                                                  if k not in ("content-type", "content-length")])
                return
            if not self.body_done:
                headers["connection"] = "close"
            self.started = True
        elif message["type"] == "http.response.body" and self.plain:
            self.plain_body = (self.plain_body + message.get("body", b""))[:MAX_DETAIL * 4]
            if not message.get("more_body", False):
                self.skip = True
                status, kept = self.plain
                detail = self.plain_body.decode("utf-8", "replace").strip()[:MAX_DETAIL]
                await self.answer(status, "http", detail or HTTPStatus(status).phrase, dict(kept))
            return
        await self._send(message)


def _shaped(scope: Scope, headers: MutableHeaders) -> bool:
    kind = headers.get("content-type", "")
    return kind.startswith("application/json" if is_api(scope) else "text/html")


class Guard:
    """Outermost application layer (inside uvicorn, outside the routes and Starlette's own
    middleware): nothing leaves without the security headers and the error shape."""

    def __init__(self, app: ASGIApp, settings: Settings):
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(scope, receive, send, self.settings)
        if refusal := exchange.early_refusal():
            await exchange.answer(*refusal)
            return
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except Exception as exc:
            if exchange.started:  # a response is half sent: only closing the connection can tell the client
                raise
            if exchange.refusal:
                await exchange.answer(*exchange.refusal)
                return
            log.error("%s %s failed", scope["method"], scope["path"], exc_info=exc)
            # answered, not re-raised: the server would close the connection after the answer
            await exchange.answer(500, "internal", f"internal error: {type(exc).__name__}")


def cross_site(headers: Headers) -> bool:
    origin = headers.get("origin")
    if not origin:  # scripts and command-line clients; browsers send Fetch metadata, or at least a Referer
        referer = headers.get("referer")
        return headers.get("sec-fetch-site") in ("cross-site", "same-site") or \
            bool(referer and urlsplit(referer).netloc != headers.get("host", ""))
    if origin == "null":  # an opaque origin (sandboxed frame, privacy redirect): only if same-origin
        return headers.get("sec-fetch-site") != "same-origin"
    return urlsplit(origin).netloc != headers.get("host", "")
