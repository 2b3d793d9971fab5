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


# 5. JSON (and form) bodies have a cap, checked up front and while reading

def test_an_over_size_json_body_is_refused_from_its_content_length(live):
    with live.connect() as sock:
        sock.sendall(b"POST /api/v1/ioc/bulk HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 419430400\r\n\r\n")
        data, closed = read_response(sock, 5)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ") and b"connection: close" in head.lower() and closed
    got = json.loads(body)
    assert got["error"] == "too_large" and "400.0 MiB" in got["detail"] and "3.0 MiB" in got["detail"]


def test_a_chunked_json_body_is_refused_once_it_passes_the_cap(live):
    cap = live.app.state.instance.service.settings.max_body_bytes
    chunk = b"a" * (256 << 10)
    sent = 0
    with live.connect() as sock:
        sock.sendall(b"POST /api/v1/ioc/bulk HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b'Transfer-Encoding: chunked\r\n\r\nd\r\n{"values": ["\r\n')
        while sent < 4 * cap:
            ready, _, _ = select.select([sock], [], [], 0.05)
            if ready:  # the answer came: stop sending
                break
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
        data, closed = read_response(sock, 5)
    assert cap <= sent <= cap + 4 * len(chunk), sent  # (plus the 13 bytes opening the JSON)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ") and closed, head
    assert json.loads(body)["error"] == "too_large"


def test_a_json_body_under_the_cap_is_read(live):
    r = httpx.post(live.base + "/api/v1/ioc/bulk", json={"values": ["x" * 2048] * 1000}, timeout=30)
    assert r.status_code == 200 and len(r.json()) == 1


# 7. slow clients: the request head and the body have deadlines

def _drip(socks: list[socket.socket], byte: bytes, until: float) -> list[bool]:
    """Send one byte on each open socket every 0.25 s until `until` or until all are closed."""
    closed = [False] * len(socks)
    while not all(closed) and time.monotonic() < until:
        for i, s in enumerate(socks):
            if closed[i]:
                continue
            try:
                s.sendall(byte)
            except (BrokenPipeError, ConnectionResetError):
                closed[i] = True
                continue
            ready, _, _ = select.select([s], [], [], 0)
            if ready:
                with contextlib.suppress(ConnectionResetError):
                    if s.recv(65536, socket.MSG_PEEK) == b"":
                        closed[i] = True
        time.sleep(0.25)
    return closed


def test_connections_dripping_their_headers_are_closed(live):
    socks = [live.connect() for _ in range(45)]
    try:
        for s in socks:
            s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        silent = live.connect()  # says nothing at all
        start = time.monotonic()
        closed = _drip(socks, b"a", start + 10 * HEADER_TIMEOUT)
        elapsed = time.monotonic() - start
        assert all(closed) and elapsed < 4 * HEADER_TIMEOUT, (sum(closed), elapsed)
        assert read_response(silent, 2 * HEADER_TIMEOUT) == (b"", True)
    finally:
        for s in socks:
            s.close()
    assert httpx.get(live.base + "/", timeout=10).status_code == 200  # and the server is fine


def _post_head(path: str, ctype: str, length: int) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {length}\r\n\r\n").encode()


def test_uploads_dripping_their_body_get_408_and_leave_nothing(live):
    boundary = "xyz"
    start_of_body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"slow.pcap\"\r\n"
                     f"Content-Type: application/octet-stream\r\n\r\n").encode()
    socks = [live.connect() for _ in range(45)]
    try:
        for s in socks:
            s.sendall(_post_head("/api/v1/captures", f"multipart/form-data; boundary={boundary}", 100_000)
                      + start_of_body + b"\xd4\xc3\xb2\xa1")
        deadline = time.monotonic() + 10 * BODY_TIMEOUT
        _drip(socks, b"\x00", deadline)
        answers = [read_response(s, 2) for s in socks]
    finally:
        for s in socks:
            s.close()
    for data, closed in answers:
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 ") and closed, data[:200]
        got = json.loads(body)
        assert got["error"] == "timeout" and "too slowly" in got["detail"]
        assert "script-src 'self'" in head.decode()
    assert not list(live.work_dir.glob("upload-*"))


def test_a_json_body_dripping_gets_408(live):
    with live.connect() as sock:
        sock.sendall(_post_head("/api/v1/ioc/bulk", "application/json", 1000) + b'{"values": ["')
        start = time.monotonic()
        _drip([sock], b"a", start + 10 * BODY_TIMEOUT)
        data, closed = read_response(sock, 2)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ") and closed and json.loads(body)["error"] == "timeout"
    assert time.monotonic() - start < 5 * BODY_TIMEOUT


# 8. every error has the shape: {error, detail} JSON with the security headers under /api, the
# HTML error page with them elsewhere; a 500 keeps the connection usable

def test_the_host_guard_answers_in_the_error_shape(live):
    r = httpx.get(live.base + "/api/v1/fields", headers={"host": "rebound.evil.example"}, timeout=10)
    assert "host" in assert_api_error(r, 400)["detail"].lower()
    page = httpx.get(live.base + "/", headers={"host": "rebound.evil.example"}, timeout=10)
    assert page.status_code == 400 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"] == SECURITY_HEADERS["content-security-policy"]
    assert 'id="error-message"' in page.text


@pytest.mark.parametrize("range_,status", [("bytes=99999999-", 416), ("bytes=9-1", 400), ("nonsense", 400)])
def test_range_errors_answer_in_the_error_shape(live, capture, range_, status):
    r = httpx.get(f"{live.base}/api/v1/captures/{capture['id']}/download", headers={"range": range_}, timeout=10)
    assert "range" in assert_api_error(r, status)["detail"].lower()
    if status == 416:
        assert r.headers["content-range"] == f"bytes */{capture['size']}"


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/api/v1/nowhere", 404),
    ("DELETE", "/api/v1/fields", 405),
    ("GET", "/api/v1/captures?limit=0", 422),
    ("GET", "/api/v1/search?q=a%20AND%20(", 400),
    ("GET", "/api/v1/captures/0123456789abcdef", 404),
])
def test_api_errors_have_one_shape(live, method, path, status):
    assert_api_error(httpx.request(method, live.base + path, timeout=10), status)


def test_a_server_error_keeps_the_connection_alive(live, capture):
    service = live.app.state.instance.service
    blob = service.capture_path(capture["id"])
    aside = blob.with_name("aside")
    conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
    blob.rename(aside)
    try:
        conn.request("GET", f"/api/v1/captures/{capture['id']}/export?format=zip")
        r = conn.getresponse()
        assert assert_api_error(r, 500)["error"] == "internal" and r.getheader("connection") != "close"
    finally:
        aside.rename(blob)
    sock = conn.sock
    conn.request("GET", "/api/v1/fields")
    again = conn.getresponse()
    assert again.status == 200 and json.loads(again.read()) and conn.sock is sock  # the same connection
    conn.close()


def test_uploads_are_not_held_to_the_json_cap(live):
    cap = live.app.state.instance.service.settings.max_body_bytes
    r = httpx.post(live.base + "/api/v1/captures", files={"file": ("big.pcap", b"not a capture " * (cap // 10))},
                   timeout=30)
    assert assert_api_error(r, 415)["error"] == "refused"  # read to the end, then judged by uploads
