"""The login and logout pages, and what a key has used (GET /api/v1/usage)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel

from ..errors import AccountError, TooManyLogins, Unauthorized
from . import access
from .api import Error
from .pages import render

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["accounts"])
MAX_FIELD = 1024


class Usage(BaseModel):
    key: str
    name: str
    user: str | None
    role: str | None
    created_at: dt.datetime
    last_used: dt.datetime | None
    requests: int
    uploads: int
    limits: dict[str, int | None]  # requests_per_minute, uploads_per_day, upload_bytes_per_day (None: no limit)
    today: dict[str, int | str | None]  # uploads, bytes (UTC day) and whom they count for (user:NAME | key:ID)
    left: dict[str, int | None]  # requests_this_minute, uploads_today, bytes_today (None: no limit)


def _next(value: object) -> str:
    """Where to go after logging in: a path of this site, never another site's address."""
    text = value if isinstance(value, str) else ""
    plain = text.isprintable() and not any(c.isspace() or c == "\\" for c in text)  # browsers drop tabs: "/\t/x"
    return text if plain and text.startswith("/") and not text.startswith("//") and len(text) < 2000 else "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/"):
    mode = request.app.state.instance.service.settings.mode
    return render(request, "login.html", next=_next(next), mode=mode, failed=None)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request):
    service = request.app.state.instance.service
    form = await request.form()
    name, password = (str(form.get(k) or "")[:MAX_FIELD] for k in ("name", "password"))
    target = _next(form.get("next"))
    old = access.principal(request)
    try:
        token, who = await run_in_threadpool(service.accounts.login, name, password, access.client_address(request))
    except (AccountError, TooManyLogins) as exc:
        status = 429 if isinstance(exc, TooManyLogins) else 401
        return render(request, "login.html", status=status, next=target, mode=service.settings.mode,
                      failed=exc.message)
    if old is not None and old.session:  # a new session id at every login: a planted cookie is worth nothing
        await run_in_threadpool(service.accounts.logout, old, access.client_address(request))
    response = RedirectResponse(target, status_code=303)
    secure = request.url.scheme == "https" or service.settings.secure_cookies == "always"
    response.set_cookie(access.COOKIE, token, max_age=int(service.settings.session_hours * 3600), path="/",
                        httponly=True, samesite="lax", secure=secure)
    return response


@router.post("/logout", response_class=HTMLResponse)
async def logout(request: Request):
    service = request.app.state.instance.service
    who = access.principal(request)
    if who is not None:
        await run_in_threadpool(service.accounts.logout, who, access.client_address(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(access.COOKIE, path="/")
    return response


@api.get("/usage", response_model=Usage, responses={401: {"model": Error}},
         summary="The calling API key's requests and uploads, its limits and what is left of them")
def usage(request: Request) -> dict:
    who = access.principal(request)
    if who is None or who.key_id is None:
        raise Unauthorized("usage is counted per API key: send one (Authorization: Bearer KEY)")
    return request.app.state.instance.service.accounts.usage(who)
