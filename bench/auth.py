"""Accounts benchmark: what the rights layer costs a request, side by side in one run.

On a fresh home with one capture (the demo capture, analysed by Suricata), median of --rounds
requests each (in-process TestClient, no network):
  single     GET /api/v1/captures and GET / in mode single (no credentials: no lookup)
  team key   the same in mode team with an API key (sha256, one row read; its use counted in memory,
             written every usage_flush_seconds)
  team sess  the same in mode team with a session cookie (sha256, one row read)
and, apart from requests, one argon2id hash check (a login) vs one key digest check, and counting
one key request: one SQLite write (as every key request did before) vs the in-memory meter.
Usage: python bench/auth.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from fastapi.testclient import TestClient  # noqa: E402

from packettotal import config, demo  # noqa: E402
from packettotal.auth import secrets  # noqa: E402
from packettotal.store.db import now  # noqa: E402
from packettotal.web.app import create_app  # noqa: E402

PASSWORD = "bench password"


def timed(call, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def app(home: Path, mode: str) -> TestClient:
    s = config.load(env={}, home=home, engines=1, mode=mode, allowed_hosts="testserver")
    return TestClient(create_app(s, seed_demo=False), follow_redirects=False)


def demo_capture(c: TestClient, home: Path) -> None:
    """The project's demo capture uploaded and analysed."""
    capture = home / "demo.pcap"
    demo.write(capture)
    cid = c.post("/api/v1/captures", files={"file": (capture.name, capture.read_bytes())}).json()["id"]
    while c.get(f"/api/v1/captures/{cid}").json()["status"] not in ("done", "failed"):
        time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=300)
    rounds = ap.parse_args().rounds
    home = Path(tempfile.mkdtemp(prefix="pt-bench-auth-"))
    with app(home, "single") as c:
        demo_capture(c, home)
        accounts = c.app.state.instance.service.accounts
        accounts.add_user("bench", "analyst", PASSWORD)
        key = accounts.create_key("bench", user="bench")[1]
        rows = {"single": {p: timed(lambda p=p: c.get(p), rounds) for p in ("/api/v1/captures", "/")}}
    with app(home, "team") as c:
        h = {"x-api-key": key}
        accounts = c.app.state.instance.service.accounts
        who = accounts.by_key(key)
        assert who is not None and who.key_id is not None
        write = timed(lambda: accounts._store.add_use({who.key_id: (1, 0, now())}, {}), rounds)
        meter = timed(lambda: accounts.admit(who, None, None), rounds)
        rows["team key"] = {p: timed(lambda p=p: c.get(p, headers=h), rounds) for p in ("/api/v1/captures", "/")}
        c.post("/login", data={"name": "bench", "password": PASSWORD})
        rows["team sess"] = {p: timed(lambda p=p: c.get(p), rounds) for p in ("/api/v1/captures", "/")}
    print(f"{'':<10} {'GET /api/v1/captures':>22} {'ratio':>6} {'GET /':>10} {'ratio':>6}"
          f"   (median ms, {rounds} rounds)")
    base = rows["single"]
    for name, r in rows.items():
        a, p = r["/api/v1/captures"], r["/"]
        print(f"{name:<10} {a:>22.2f} {a / base['/api/v1/captures']:>6.2f} {p:>10.2f} {p / base['/']:>6.2f}")
    stored = secrets.hash_password(PASSWORD)
    login = timed(lambda: secrets.check_password(stored, PASSWORD), 20)
    digest = secrets.digest(key)
    check = timed(lambda: secrets.same(secrets.digest(key), digest), 1000)
    print(f"counting a key request: one SQLite write {write * 1000:.0f} µs vs in memory {meter * 1000:.1f} µs: "
          f"{write / meter:,.0f}x")
    print(f"argon2id check {login:.1f} ms vs key digest check {check * 1000:.1f} µs: {login / check:,.0f}x")


if __name__ == "__main__":
    main()
