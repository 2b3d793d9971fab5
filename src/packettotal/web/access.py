"""Where rights are enforced: one dependency of the whole app (app.py) runs before every route.
It works out who is asking (an API key, else a session cookie, else anonymous), looks up the
right the route needs in auth/rights.py's one table, refuses what the mode and the role do not
allow, and checks the CSRF token of every unsafe request a session cookie authenticates."""

from __future__ import annotations

import copy
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from ..auth import rights as rights_mod, secrets
from ..auth.rights import ANONYMOUS, LOCAL, Principal
from .guard import UPLOADS, error_response, is_api

COOKIE = "pt_session"
CSRF_FIELD, CSRF_HEADER = "csrf_token", "x-csrf-token"
SAFE = ("GET", "HEAD", "OPTIONS")
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


class Denied(Exception):
    def __init__(self, status: int, detail: str, login: bool = False):
        super().__init__(detail)
        self.status, self.detail, self.login = status, detail, login


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def presented_key(request: Request) -> str | None:
    """An API key sent as `Authorization: Bearer KEY` or `x-api-key: KEY`."""
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def identify(accounts, request: Request, mode: str) -> Principal | None:
    """Who is asking; None: a key was sent and is not valid (revoked, unknown, its user disabled)."""
    key = presented_key(request)
    if key is not None:
        return accounts.by_key(key)
    token = request.cookies.get(COOKIE)
    who = accounts.by_session(token) if token else None
    return who or (LOCAL if mode == "single" else ANONYMOUS)


async def authorize(request: Request) -> None:
    """The app's one check, run before every route (app.py: FastAPI(dependencies=...))."""
    service = request.app.state.instance.service
    s = service.settings
    route = request.scope.get("route")
    right = rights_mod.right_of(request.method, getattr(route, "path", ""))
    if right is None:  # tests/test_access.py fails first
        raise Denied(403, "this route has no access rule")
    who = await run_in_threadpool(identify, service.accounts, request, s.mode)
    if who is None:
        raise Denied(401, "the API key is not valid (unknown or revoked, or its user is disabled)")
    request.state.principal = who
    if right not in rights_mod.rights(s.mode, who, s.labelling, s.public_uploads):
        if who.kind == "anonymous":
            raise Denied(401, "log in, or send an API key (Authorization: Bearer KEY)", login=True)
        raise Denied(403, f"the {who.role} role does not have the {right} right")
    if request.method not in SAFE and who.session:
        await check_csrf(request, who)
    upload = (request.method, request.url.path) in UPLOADS
    if who.key_id or (upload and who.signed_in):  # counted (/api/v1/usage), and limited (auth/limits.py)
        size = upload_size(request, s.max_upload_bytes) if upload else None
        await run_in_threadpool(service.accounts.admit, who, size, client_address(request))
    request.state.instance = await run_in_threadpool(viewing, request.app.state.instance, who)


def upload_size(request: Request, cap: int) -> int:
    """What an upload counts against a bytes quota: its Content-Length (the guard holds it to that),
    or the largest upload accepted when it is sent without one."""
    declared = request.headers.get("content-length", "")
    return min(int(declared), cap) if declared.isdigit() else cap


def viewing(instance, who: Principal):
    """The app's instance as `who` sees it: its service is the service's view for `who`
    (service.as_: every read scoped to the captures `who` may see), the routes' only service."""
    view = instance.service.as_(who)
    if view is instance.service:
        return instance
    scoped = copy.copy(instance)  # the same workers and threads; submit, reanalyse, hunt go through the view
    scoped.service = view
    return scoped


def instance_of(request: Request):
    """The request's instance (`viewing`), set by `authorize` before every route."""
    return request.state.instance


async def check_csrf(request: Request, who: Principal) -> None:
    """The session's token, from the x-csrf-token header (the page's script) or the form's hidden
    field. An upload's body streams to disk unread here: its form's token is a part before the
    file, checked by web/uploads.receive before the file is written (never in the URL, which
    lands in access logs)."""
    sent: object = request.headers.get(CSRF_HEADER)
    if sent is None:
        if (request.method, request.url.path) in UPLOADS and who.csrf:
            request.state.csrf_pending = who.csrf
            return
        if request.headers.get("content-type", "").startswith(FORMS):
            sent = (await request.form()).get(CSRF_FIELD)  # kept by the request: the route reads it again
    if not isinstance(sent, str) or not who.csrf or not secrets.same(sent, who.csrf):
        raise Denied(403, "the form's CSRF token is missing or wrong: reload the page and try again")


def principal(request: Request) -> Principal | None:
    return getattr(request.state, "principal", None)


def held(request: Request) -> tuple[Principal, frozenset[str]]:
    """Who is asking and every right they hold (what a service call checks beyond the route's)."""
    who = principal(request) or ANONYMOUS
    s = request.app.state.instance.service.settings
    return who, rights_mod.rights(s.mode, who, s.labelling, s.public_uploads)


def install(app: FastAPI) -> None:
    @app.exception_handler(Denied)
    async def on_denied(request: Request, exc: Denied) -> Response:
        if exc.login and not is_api(request.scope) and request.method in SAFE:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        headers = {"www-authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(request.scope, exc.status, "unauthorized" if exc.status == 401 else "forbidden",
                              exc.detail, headers)
