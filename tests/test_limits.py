"""Per-key rate limits and per-user upload quotas, with real requests to the real app: 429 with
Retry-After (413 for one upload larger than what is left), a clear reason, /api/v1/usage showing
the limits and what is left; and the counts kept in memory reach the database at shutdown."""

from __future__ import annotations

import sqlalchemy as sa

from packettotal.service import PacketTotal
from packettotal.store.accounts import api_keys, upload_days

from .conftest import PCAPS, settings
from .web import client

ICMP, HTTP, ESPN = PCAPS / "sv-icmp-echo.pcap", PCAPS / "dpkt-http.pcap", PCAPS / "cs-http_espn.pcapng"
PASSWORD = "correct horse battery"


def keyed(c, user: str, role: str = "analyst", key_name: str = "k") -> dict:
    accounts = c.app.state.instance.service.accounts
    if user not in {u["name"] for u in accounts.users()}:
        accounts.add_user(user, role, PASSWORD)
    return {"authorization": f"Bearer {accounts.create_key(key_name, user=user)[1]}"}


def send(c, headers: dict, path=None, data: bytes | None = None, name: str = "x.pcap"):
    body = data if data is not None else path.read_bytes()
    return c.post("/api/v1/captures", headers=headers, files={"file": (path.name if path else name, body)})


def test_a_key_over_its_rate_gets_429_with_retry_after(tmp_path):
    with client(tmp_path / "home", mode="team", requests_per_minute=4) as c:
        ann, bob = keyed(c, "ann"), keyed(c, "bob")
        assert [c.get("/api/v1/captures", headers=ann).status_code for _ in range(2)] == [200, 200]
        u = c.get("/api/v1/usage", headers=ann).json()
        assert u["limits"]["requests_per_minute"] == 4 and u["left"]["requests_this_minute"] == 1
        assert c.get("/api/v1/captures", headers=ann).status_code == 200
        r = c.get("/api/v1/captures", headers=ann)
        assert r.status_code == 429 and r.json()["error"] == "over_limit"
        assert "requests_per_minute" in r.json()["detail"] and 1 <= int(r.headers["retry-after"]) <= 60
        assert c.get("/api/v1/usage", headers=ann).status_code == 429  # usage is a request too
        assert c.get("/api/v1/captures", headers=bob).status_code == 200  # per key
        assert c.get("/api/v1/captures", headers={"x-api-key": "pt_nope_nope"}).status_code == 401


def test_upload_quotas_per_user_429_and_413(tmp_path):
    size = HTTP.stat().st_size
    with client(tmp_path / "home", mode="team", uploads_per_day=2, upload_bytes_per_day=size + 5000) as c:
        ann, ann2, bob = keyed(c, "ann"), keyed(c, "ann", key_name="second"), keyed(c, "bob")
        assert send(c, ann, HTTP).status_code == 202
        u = c.get("/api/v1/usage", headers=ann2).json()  # the other key of the same user: the same quota
        assert u["today"] == {"uploads": 1, "bytes": u["today"]["bytes"], "counted_for": "user:ann"}
        assert size <= u["today"]["bytes"] < size + 1000 and u["left"]["uploads_today"] == 1
        r = send(c, ann2, ESPN)  # 684 kB > the 5 kB or so left
        assert r.status_code == 413 and "larger than the" in r.json()["detail"]
        assert "upload_bytes_per_day" in r.json()["detail"]
        assert send(c, ann2, ICMP).status_code == 202  # small enough: the second of two
        r = send(c, ann, HTTP)
        assert r.status_code == 429 and "uploads_per_day" in r.json()["detail"]
        assert 1 <= int(r.headers["retry-after"]) <= 86400
        assert c.get("/api/v1/usage", headers=ann).json()["left"]["uploads_today"] == 0
        # a session of the same user is held to it too
        c.post("/login", data={"name": "ann", "password": PASSWORD, "next": "/"})
        csrf = c.app.state.instance.service.accounts.by_session(c.cookies["pt_session"]).csrf
        r = c.post("/api/v1/captures", headers={"x-csrf-token": csrf}, files={"file": (ICMP.name, ICMP.read_bytes())})
        assert r.status_code == 429
        c.cookies.clear()
        assert send(c, bob, ICMP).status_code in (202, 303)  # another user: a quota of their own


def test_usage_is_kept_in_memory_and_written_at_shutdown(tmp_path):
    home = tmp_path / "home"
    with client(home, mode="team", usage_flush_seconds=3600) as c:
        h = keyed(c, "ann")
        key_id = h["authorization"].split("_")[1]
        for _ in range(5):
            c.get("/api/v1/captures", headers=h)
        assert send(c, h, ICMP).status_code == 202
        db = c.app.state.instance.service._db
        with db.engine.connect() as conn:  # nothing written per request
            assert conn.execute(sa.select(api_keys.c.requests).where(api_keys.c.id == key_id)).scalar_one() == 0
        assert c.get("/api/v1/usage", headers=h).json()["requests"] == 7  # written and pending
    pt = PacketTotal(settings(home))
    try:
        with pt._db.engine.connect() as conn:
            row = conn.execute(sa.select(api_keys.c.requests, api_keys.c.uploads, api_keys.c.last_used)
                               .where(api_keys.c.id == key_id)).one()
            day = conn.execute(sa.select(upload_days.c.uploads).where(upload_days.c.subject == "user:ann")).scalar_one()
        assert (row.requests, row.uploads, day) == (7, 1, 1) and row.last_used is not None
        assert [e["event"] for e in pt.accounts.audit(20)].count("key_used") == 1  # once an hour, not per request
    finally:
        pt.close()
