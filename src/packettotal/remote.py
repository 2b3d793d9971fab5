"""`packettotal analyze --server URL`: captures submitted to a running instance over its REST API
(upload, labels, then its status until each is done or failed), as the local command does them."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

import httpx

from .errors import RefusedCapture, RemoteError

POLL = (0.1, 1.0)  # seconds between status requests: first, and at most
TIMEOUT = 120.0  # seconds one request may take (an upload is checked before it is answered)


class Remote:
    def __init__(self, base: str, timeout: float = TIMEOUT, api_key: str | None = None):
        if not base.startswith(("http://", "https://")):
            raise RemoteError(f"--server takes an http(s) URL, not {base[:80]!r}")
        self.base = base.rstrip("/")
        headers = {"authorization": f"Bearer {api_key.strip()}"} if api_key and api_key.strip() else None
        self._http = httpx.Client(base_url=self.base, timeout=timeout, follow_redirects=False, headers=headers)

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, url: str, **kw) -> httpx.Response:
        try:
            return self._http.request(method, url, **kw)
        except httpx.HTTPError as exc:
            raise RemoteError(f"{self.base} did not answer {method} {url}: {exc}") from None

    def submit(self, path: Path) -> str:
        """The capture's id on the server (new or known); raises RefusedCapture with the server's
        reason, RemoteError when it cannot be asked."""
        with open(path, "rb") as f:
            r = self._call("POST", "/api/v1/captures", files={"file": (path.name, f)})
        if r.status_code in (202, 303):
            return str(_json(r)["id"])
        raise RefusedCapture(_detail(r), status=r.status_code)

    def label(self, capture_id: str, kind: str, value: str) -> None:
        r = self._call("POST", f"/api/v1/captures/{capture_id}/labels", json={"kind": kind, "value": value})
        if r.status_code >= 400:
            raise RemoteError(f"{self.base} refused the label {kind}:{value}: {_detail(r)}")

    def capture(self, capture_id: str) -> dict:
        r = self._call("GET", f"/api/v1/captures/{capture_id}")
        if r.status_code != 200:
            raise RemoteError(f"{self.base} could not give capture {capture_id[:16]}: {_detail(r)}")
        return _json(r)

    def wait(self, ids: Iterable[str], on_done: Callable[[dict], None] | None = None) -> dict[str, dict]:
        """Each capture once it is done or failed, asked in turn."""
        left, out, pause = list(dict.fromkeys(ids)), {}, POLL[0]
        while left:
            for cid in list(left):
                row = self.capture(cid)
                if row["status"] in ("done", "failed"):
                    out[cid] = row
                    left.remove(cid)
                    if on_done:
                        on_done(row)
            if left:
                time.sleep(pause)
                pause = min(pause * 2, POLL[1])
        return out


def _json(r: httpx.Response) -> dict:
    try:
        body = r.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise RemoteError(f"the server answered {r.status_code} without a JSON object: is it PacketTotal?")
    return body


def _detail(r: httpx.Response) -> str:
    """The server's `{error, detail}` as one line."""
    try:
        body = r.json()
    except ValueError:
        return f"HTTP {r.status_code}"
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail)[:1000] if detail else f"HTTP {r.status_code}"
