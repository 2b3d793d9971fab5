"""Deleting a capture: nothing of it stays findable (search, pivots and their totals, value counts,
similar captures, the capture list, downloads, the event index), a carved file another capture
holds survives until that one goes too, a capture being analysed is refused, and the deletion is
audited. Real Suricata on real captures; the twin capture is built here (one packet more)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import dpkt
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from packettotal import cli
from packettotal.auth.rights import LOCAL, ROLES
from packettotal.errors import Conflict, NotFound
from packettotal.service import PacketTotal
from packettotal.store import purge
from packettotal.store.db import metadata

from .conftest import PCAPS, analyse, settings, use_home
from .web import client

PDF = PCAPS / "sv-http-pdf-download.pcap"  # one carved PDF
ESPN = PCAPS / "cs-http_espn.pcapng"
ADMIN = ROLES["admin"]


def twin(src: Path, dest: Path) -> Path:
    """The same packets under another header (snaplen): another capture, another sha256, carving the same file."""
    with open(src, "rb") as f, open(dest, "wb") as out:
        reader = dpkt.pcap.Reader(f)
        writer = dpkt.pcap.Writer(out, snaplen=reader.snaplen + 1, linktype=reader.datalink())
        for ts, buf in reader:
            writer.writepkt(buf, ts)
    return dest


def rows_of(pt: PacketTotal, capture_id: str) -> dict[str, int]:
    """Every table with a capture_id column: its rows of this capture (none may be left)."""
    out = {}
    with pt._db.engine.connect() as conn:
        for name, table in metadata.tables.items():
            if "capture_id" in table.c:
                mine = sa.select(sa.func.count()).where(table.c.capture_id == capture_id)
                out[name] = conn.execute(mine).scalar_one()
    return out


def found(pt: PacketTotal, text: str) -> set[str]:
    return {g["capture_id"] for g in pt.search(text, limit=1000).groups}


def value_counts_agree(pt: PacketTotal) -> None:
    """value_counts holds, for every value, exactly the captures the observables hold it in."""
    with pt._db.engine.connect() as conn:
        counted = dict(conn.execute(sa.text("SELECT value, captures FROM value_counts")).all())
        held = dict(conn.execute(sa.text(
            "SELECT value, count(DISTINCT capture_id) FROM observables GROUP BY value")).all())
    assert counted == held


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    pt = PacketTotal(settings(home))
    a = analyse(pt, PDF)
    b = analyse(pt, twin(PDF, tmp_path_factory.mktemp("twin") / "pdf-twin.pcap"))
    c = analyse(pt, ESPN)
    assert [x["status"] for x in (a, b, c)] == ["done"] * 3 and a["id"] != b["id"]
    yield pt, a, b, c
    pt.close()


def test_deletion_leaves_nothing_findable_and_a_shared_file_survives(three):
    pt, a, b, c = three
    pt.add_label(a["id"], "family", "DeleteMeFamily")
    domain = next(o["value"] for o in pt._db.capture_observables(a["id"], "domain"))
    pt.import_feed(f"value,type\n{domain},domain\n".encode(), "deletefeed", "csv", "feed.csv")
    hunt = pt.new_hunt('alert http any any -> any any (msg:"any http"; flow:established; sid:9912001; rev:1;)')
    pt.run_hunt(hunt["id"])
    held = rows_of(pt, a["id"])
    assert all(held[t] > 0 for t in ("observables", "files", "file_seen", "labels", "capture_stats",
                                     "capture_domains", "intel_hits", "hunt_hits")), held
    assert pt.search("intel:deletefeed").groups and pt.search(f"hunt:{hunt['id']}").groups
    carved = pt.capture_files(a["id"])
    assert carved and carved[0]["stored"] and carved[0]["sha256"] in {f["sha256"] for f in pt.capture_files(b["id"])}
    sha = carved[0]["sha256"]
    assert found(pt, f'"{domain}"') == found(pt, f'*:"{domain}" OR http.hostname:"{domain}"') == {a["id"], b["id"]}
    assert pt.ioc(domain)["total_captures"] == 2
    assert pt._db.value_counts([domain])[domain] == 2
    assert a["id"] in {s["capture_id"] for s in pt.similar(b["id"])}
    assert pt.search("family:DeleteMeFamily").groups
    assert pt._events.documents([a["id"]])[a["id"]] > 0
    capture_blob, index_blob = pt.capture_path(a["id"]), pt._blobs.path("flowindex", a["id"])
    assert capture_blob.exists() and index_blob.exists()
    before = pt.count_captures()

    gone = pt.delete_capture(a["id"], LOCAL, ADMIN)

    assert gone["id"] == a["id"]
    with pytest.raises(NotFound):
        pt.capture(a["id"])
    assert set(rows_of(pt, a["id"]).values()) == {0}
    assert pt._events.documents([a["id"]]) == {}
    assert found(pt, f'"{domain}"') == found(pt, f'*:"{domain}" OR http.hostname:"{domain}"') == {b["id"]}
    assert not pt.search("family:DeleteMeFamily").groups
    assert found(pt, "intel:deletefeed") == {b["id"]} and found(pt, f"hunt:{hunt['id']}") == {b["id"], c["id"]}
    assert a["id"] not in {h["capture_id"] for h in pt.hunt(hunt["id"])["captures"]}
    assert a["id"] not in found(pt, "*") and found(pt, "*") == {b["id"], c["id"]}
    pivot = pt.ioc(domain)
    assert pivot["total_captures"] == 1 and [x["capture_id"] for x in pivot["captures"]] == [b["id"]]
    assert pt._db.value_counts([domain])[domain] == 1
    value_counts_agree(pt)
    assert a["id"] not in {s["capture_id"] for s in pt.similar(b["id"])}
    assert a["id"] not in {r["id"] for r in pt.list_captures(limit=1000)} and pt.count_captures() == before - 1
    assert not capture_blob.exists() and not index_blob.exists()
    with pytest.raises(NotFound):
        pt.open_capture(a["id"])
    assert pt._blobs.has("files", sha)  # b still holds it
    assert pt.carved_file(b["id"], sha)["stored"]
    assert [f["capture_id"] for f in pt.file_context(sha)["captures"]] == [b["id"]]

    pt.delete_capture(b["id"], LOCAL, ADMIN)
    assert not pt._blobs.has("files", sha) and pt.file_context(sha) is None and pt._db.yara_of([sha]) == {}
    assert pt.ioc(domain)["total_captures"] == 0 and pt._db.value_counts([domain]) == {}
    value_counts_agree(pt)
    assert pt.capture(c["id"])["status"] == "done" and pt._events.documents([c["id"]])[c["id"]] > 0
    events = [r["event"] for r in pt.accounts.audit(10)]
    assert events[:2] == ["capture_deleted", "capture_deleted"]


def test_a_capture_queued_or_being_analysed_is_refused(tmp_path):
    pt = PacketTotal(settings(tmp_path / "home"))
    try:
        queued = pt.submit(ESPN, ESPN.name).capture
        with pytest.raises(Conflict, match="queued"):
            pt.delete_capture(queued["id"], LOCAL, ADMIN)
        assert pt.capture(queued["id"])["status"] == "queued" and pt.capture_path(queued["id"]).exists()
    finally:
        pt.close()


def test_a_deletion_cut_short_is_finished_at_the_next_start(tmp_path):
    home = tmp_path / "home"
    pt = PacketTotal(settings(home))
    cap = analyse(pt, ESPN)
    assert pt._events.documents([cap["id"]])[cap["id"]] > 0
    purge.mark_deleting(pt._db, cap["id"])  # then the process stops, before the index commit
    assert pt.capture(cap["id"])["status"] == "deleting"
    assert pt._db.requeue([cap["id"]]) == []  # nor re-analysed meanwhile
    pt.close()
    pt = PacketTotal(settings(home))
    try:
        with pytest.raises(NotFound):
            pt.capture(cap["id"])
        assert set(rows_of(pt, cap["id"]).values()) == {0} and pt._events.documents([cap["id"]]) == {}
        assert not pt.capture_path(cap["id"]).exists()
        assert found(pt, "*") == set() and pt.ioc("espn.go.com")["total_captures"] == 0
        value_counts_agree(pt)
        assert (pt.accounts.audit(1)[0]["event"], pt.accounts.audit(1)[0]["actor"]) == ("capture_deleted", "restart")
    finally:
        pt.close()


def test_api_page_and_cli_delete_with_rights_and_audit(tmp_path, monkeypatch):
    home = tmp_path / "home"
    use_home(monkeypatch, home)
    with client(home, mode="team") as c:
        accounts = c.app.state.instance.service.accounts
        for name, role in (("root", "admin"), ("ann", "analyst"), ("vic", "viewer")):
            accounts.add_user(name, role, "correct horse battery")
        keys = {n: {"x-api-key": accounts.create_key(n, user=n)[1]} for n in ("root", "ann", "vic")}
        cap = analysed_with(c, keys["root"], ESPN)
        url = f"/api/v1/captures/{cap['id']}"
        assert c.delete(url, headers=keys["vic"]).status_code == 403  # no upload right
        assert c.delete(url, headers=keys["ann"]).status_code == 404  # root's private upload: not even seen
        vis = c.post(f"{url}/visibility", json={"visibility": "public"}, headers=keys["root"])
        assert vis.status_code == 200, vis.text
        r = c.delete(url, headers=keys["ann"])  # seen now, but neither its owner nor an admin
        assert r.status_code == 403 and "owner or an admin" in r.json()["detail"]
        assert c.delete(url).status_code == 401
        assert c.delete(url, headers=keys["root"]).status_code == 204
        assert c.get(url, headers=keys["root"]).status_code == 404
        assert c.get(f"{url}/download", headers=keys["root"]).status_code == 404
        assert c.delete(url, headers=keys["root"]).status_code == 404
        found = [e for e in accounts.audit(50) if e["event"] == "capture_deleted"]
        assert len(found) == 1 and found[0]["subject"] == cap["id"] and found[0]["actor"].startswith("key:")
        assert found[0]["detail"]["name"] == ESPN.name

        # the console's form, as an admin's session: shown with the session's token, posted with it
        cap = analysed_with(c, keys["root"], ESPN)
        r = c.post("/login", data={"name": "root", "password": "correct horse battery", "next": "/"})
        assert r.status_code == 303
        page = c.get(f"/captures/{cap['id']}").text
        form = re.search(rf'<form method="post" action="/captures/{cap["id"]}/delete"[^>]*>(.*?)</form>', page, re.S)
        token = accounts.by_session(c.cookies["pt_session"]).csrf
        assert form and f'name="csrf_token" value="{token}"' in form.group(1)
        assert c.post(f"/captures/{cap['id']}/delete", data={"confirm": "yes"}).status_code == 403  # no token
        r = c.post(f"/captures/{cap['id']}/delete", data={"confirm": "yes", "csrf_token": token})
        assert r.status_code == 303 and r.headers["location"] == "/captures"
        assert c.get(f"/captures/{cap['id']}").status_code == 404
        assert [e["actor"] for e in accounts.audit(5) if e["event"] == "capture_deleted"][0] == "root"
        c.post("/logout", data={"csrf_token": token})
        c.post("/login", data={"name": "ann", "password": "correct horse battery", "next": "/"})
        other = analysed_with(c, keys["root"], PDF)
        assert "/delete" not in c.get(f"/captures/{other['id']}").text  # an analyst who does not own it: no form
    run = CliRunner().invoke
    r = run(cli.cli, ["--home", str(home), "delete", other["id"][:12]], input="n\n")
    assert r.exit_code != 0 and "Aborted" in r.output
    r = run(cli.cli, ["--home", str(home), "delete", other["id"][:12], "--yes"])
    assert r.exit_code == 0 and f"capture {other['id']} deleted" in r.output
    r = run(cli.cli, ["--home", str(home), "audit", "--limit", "1"])
    assert "capture_deleted" in r.output and "cli" in r.output


def analysed_with(c, headers: dict, path: Path) -> dict:
    r = c.post("/api/v1/captures", headers=headers, files={"file": (path.name, path.read_bytes())})
    assert r.status_code in (202, 303), r.text
    cid = r.json()["id"]
    for _ in range(1200):  # its own key: wait_done's requests carry none
        row = c.get(f"/api/v1/captures/{cid}", headers=headers).json()
        if row["status"] in ("done", "failed"):
            return row
        time.sleep(0.05)
    raise AssertionError("not analysed")


def test_an_owner_deletes_their_own_capture_not_one_another_user_uploaded_too(tmp_path):
    with client(tmp_path / "home", mode="team") as c:
        accounts = c.app.state.instance.service.accounts
        for name in ("ann", "ben"):
            accounts.add_user(name, "analyst", "correct horse battery")
        keys = {n: {"x-api-key": accounts.create_key(n, user=n)[1]} for n in ("ann", "ben")}
        cap = analysed_with(c, keys["ann"], PDF)
        url = f"/api/v1/captures/{cap['id']}"
        assert analysed_with(c, keys["ben"], PDF)["id"] == cap["id"]  # the same file: stored once, two uploads
        r = c.delete(url, headers=keys["ann"])
        assert r.status_code == 403 and "owner or an admin" in r.json()["detail"]  # ben's upload too
        own = analysed_with(c, keys["ann"], ESPN)
        assert c.delete(f"/api/v1/captures/{own['id']}", headers=keys["ann"]).status_code == 204
        assert c.get(f"/api/v1/captures/{own['id']}", headers=keys["ann"]).status_code == 404
