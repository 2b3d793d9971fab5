"""Helpers for the web tests: an app on a fresh home, uploads, waiting for jobs."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from pathlib import Path

import uvicorn
from fastapi.testclient import TestClient

from packettotal.config import Settings
from packettotal.web import server
from packettotal.web.app import create_app

from .conftest import settings

DEMO_DOMAIN = "downloads.example.com"


def client(home: Path, **kw) -> TestClient:
    kw.setdefault("allowed_hosts", "testserver")  # the test client's Host
    return TestClient(create_app(settings(home, **kw), seed_demo=False), follow_redirects=False)


def upload(c: TestClient, path: Path | None = None, data: bytes | None = None, name: str | None = None):
    body = data if data is not None else path.read_bytes()
    return c.post("/api/v1/captures", files={"file": (name or (path.name if path else "x.pcap"), body)})


def wait_done(c: TestClient, capture_id: str, timeout: float = 60) -> dict:
    return wait_finished(c, f"/api/v1/captures/{capture_id}", f"capture {capture_id}", timeout)


def wait_finished(c: TestClient, url: str, what: str, timeout: float = 60) -> dict:
    """The job at `url` (a capture, a hunt) once it is done or failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = c.get(url).json()
        if row["status"] in ("done", "failed"):
            return row
        time.sleep(0.05)
    raise AssertionError(f"{what} not finished after {timeout} s")


def analysed(c: TestClient, path: Path | None = None, data: bytes | None = None, name: str | None = None) -> dict:
    r = upload(c, path, data, name)
    assert r.status_code in (202, 303), r.text
    return wait_done(c, r.json()["id"])


def app_routes(app) -> list:
    """Every route of the app, the included routers' too (FastAPI nests them)."""
    out = []
    for r in app.routes:
        if hasattr(r, "original_router"):
            out += app_routes(r.original_router)
        elif hasattr(r, "methods"):
            out.append(r)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_app(app, as_served: Settings | None = None) -> Iterator[str]:
    """A real uvicorn server of `app` on a free loopback port, in a thread: its base URL. With
    `as_served`, configured as `packettotal serve` configures it (web/server.py)."""
    port = free_port()
    srv = uvicorn.Server(server.config(app, as_served, "127.0.0.1", port, log_level="warning") if as_served
                         else uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(30)


@contextlib.contextmanager
def serve_with_users(home: Path, mode: str, users: dict[str, str], password: str) -> Iterator[tuple[str, Any]]:
    """A real server of an instance in `mode` with these users (name -> role), all of `password`:
    its base URL and its accounts."""
    app = create_app(settings(home, mode=mode), seed_demo=False)
    accounts = app.state.instance.service.accounts
    for name, role in users.items():
        accounts.add_user(name, role, password)
    with serve_app(app) as url:
        yield url, accounts
