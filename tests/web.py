"""Helpers for the web tests: an app on a fresh home, uploads, waiting for jobs."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

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
