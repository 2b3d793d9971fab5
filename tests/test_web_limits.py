"""The web layer's limits, on a real server: uvicorn on loopback in a thread (as `serve` runs it),
real HTTP clients and raw sockets, real Suricata behind it."""

from __future__ import annotations

import contextlib
import http.client
import json
import select
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from packettotal.web import downloads, server
from packettotal.web.app import create_app
from packettotal.web.guard import SECURITY_HEADERS

from .conftest import PCAPS, settings

HEADER_TIMEOUT = 1.0
BODY_TIMEOUT = 1.0


@dataclass
class Live:
    app: FastAPI
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    @property
    def work_dir(self) -> Path:
        return self.app.state.instance.service.settings.work_dir


@contextlib.contextmanager
def serving(home: Path, **kw):
    s = settings(home, **kw)
    app = create_app(s, seed_demo=False)
    srv = uvicorn.Server(server.config(app, s, "127.0.0.1", 0, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield Live(app, srv.servers[0].sockets[0].getsockname()[1])
    finally:
        srv.should_exit = True
        thread.join(30)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    with serving(tmp_path_factory.mktemp("home"), header_timeout=HEADER_TIMEOUT, body_timeout=BODY_TIMEOUT) as s:
        yield s


@pytest.fixture(scope="module")
def capture(live) -> dict:
    path = PCAPS / "sv-http-4files.pcap"
    r = httpx.post(live.base + "/api/v1/captures", files={"file": (path.name, path.read_bytes())}, timeout=30)
    assert r.status_code == 202, r.text
    for _ in range(600):
        row = httpx.get(live.base + r.json()["status_url"], timeout=10).json()
        if row["status"] in ("done", "failed"):
            assert row["status"] == "done", row
            return row
        time.sleep(0.1)
    raise AssertionError("the capture was not analysed in 60 s")


def assert_api_error(r: httpx.Response | http.client.HTTPResponse, status: int) -> dict:
    headers = {k.lower(): v for k, v in r.headers.items()}
    assert r.status == status if isinstance(r, http.client.HTTPResponse) else r.status_code == status
    assert headers["content-type"] == "application/json", headers
    for k, v in SECURITY_HEADERS.items():
        assert headers[k] == v, k
    body = r.read() if isinstance(r, http.client.HTTPResponse) else r.content
    got = json.loads(body)
    assert set(got) >= {"error", "detail"} and isinstance(got["detail"], str) and got["detail"]
    return got


def read_response(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """What the server sent before `timeout`, and whether it closed the connection."""
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


# 2. exports waiting for a build slot hold no request worker

def test_the_console_answers_while_forty_exports_wait(live, capture):
    builds = live.app.state.instance.builds
    gate = threading.Event()
    held = [builds.submit(gate.wait) for _ in range(downloads.RUNNING)]  # both builders busy
    url = f"{live.base}/api/v1/captures/{capture['id']}/export?format=zip"
    pool = ThreadPoolExecutor(40)
    try:
        exports = [pool.submit(httpx.get, url, timeout=60) for _ in range(40)]
        refused = 40 - downloads.WAITING  # the queue takes WAITING; the held builds are running
        deadline = time.monotonic() + 20
        while sum(f.done() for f in exports) < refused:
            assert time.monotonic() < deadline, "the exports over the queue were not refused"
            time.sleep(0.02)
        for path in ("/", "/api/v1/captures"):
            start = time.monotonic()
            r = httpx.get(live.base + path, timeout=30)
            elapsed = time.monotonic() - start
            assert r.status_code == 200 and elapsed < 1.0, (path, elapsed)
        assert sum(f.done() for f in exports) == refused  # the queued ones still wait
    finally:
        gate.set()
        pool.shutdown(wait=True)
    for f in held:
        f.result(timeout=10)
    answers = [f.result() for f in exports]
    ok = [r for r in answers if r.status_code == 200]
    busy = [r for r in answers if r.status_code == 503]
    assert len(ok) == downloads.WAITING and len(busy) == refused
    assert all(r.content[:2] == b"PK" for r in ok)
    for r in busy:
        assert assert_api_error(r, 503)["error"] == "busy" and int(r.headers["retry-after"]) > 0
    assert not list((live.work_dir / "downloads").glob("*"))
