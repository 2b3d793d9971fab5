"""`packettotal migrate`: an instance of real captures (real Suricata) moved into PostgreSQL and a new
tantivy index and blob folder, and back into embedded stores, keeps every row, event and blob;
a non-empty target is refused; a migration killed midway resumes with the same command."""

import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from packettotal.errors import MigrationError
from packettotal.service import PacketTotal
from packettotal.store import migrate
from packettotal.store.db import Database, metadata, value_counts
from packettotal.store.events.tantivy import TantivyEventStore

from .conftest import PCAPS, ROOT, analyse, settings
from .event_backends import OPENSEARCH_URL

PG_ADMIN = "postgresql+psycopg://pt:pt@127.0.0.1:5432/postgres"
EXE = Path(sys.executable).parent / "packettotal"
CAPTURES = ["cs-aurora.pcapng", "sv-dns-udp-txt.pcap", "sv-http-range-file.pcap", "cs-http_espn.pcapng",
            "sv-tls-cert-chain.pcap", "sv-smb1-file.pcap"]
QUERIES = ["event_type:http", "dns.rrname:*", "tls.sni:*", "fileinfo.sha256:*", "alert.signature:*",
           "event_type:flow AND NOT event_type:dns", "src_ip:10.0.0.0/8"]


def embedded(home, **kw):
    """This file moves an embedded instance (its SQLite file), whatever database the run's others use."""
    return settings(home, database_url="", **kw)


def _admin() -> sa.Engine:
    return sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})


@pytest.fixture
def pg():
    """A fresh PostgreSQL database: its URL (dropped afterwards)."""
    name = f"pt_migrate_{uuid.uuid4().hex[:12]}"
    admin = _admin()
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"no PostgreSQL server answers at 127.0.0.1:5432: {str(exc).splitlines()[0]}")
    yield f"postgresql://pt:pt@127.0.0.1:5432/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """An embedded instance: real captures analysed, a label, an account (closed: nothing holds it)."""
    home = tmp_path_factory.mktemp("source")
    pt = PacketTotal(embedded(home))
    try:
        rows = [analyse(pt, PCAPS / name) for name in CAPTURES]
        assert [r["status"] for r in rows] == ["done"] * len(CAPTURES)
        ids = [r["id"] for r in rows]
        pt.add_label(ids[0], "tag", "moved", note="kept across stores", source="cli")
        pt.accounts.add_user("alice", "analyst", "a long enough password")
    finally:
        pt.close()
    return home


def _rows(db: Database) -> dict[str, list[tuple]]:
    """Every table's rows as stored (JSON as its text), sorted."""
    with db.engine.connect() as conn:
        return {t.name: sorted((tuple(r) for r in conn.execute(migrate._select(t))), key=repr)
                for t in metadata.sorted_tables}


def _events(pt: PacketTotal) -> dict[str, list[dict]]:
    """Every capture's events, in capture order."""
    return {cid: list(pt._events.export(cid)) for cid in _ids(pt._db)}


def _ids(db: Database) -> list[str]:
    return [c["id"] for c in db.list_captures(limit=100)]


def _searches(pt: PacketTotal) -> dict[str, tuple]:
    out = {}
    for q in QUERIES:
        r = pt.search(q, limit=100)
        out[q] = (r.total_captures, r.total_hits, sorted((g["capture_id"], g["hits"], sorted(g["found_in"].items()))
                                                         for g in r.groups))
    return out


def _blobs(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file() and p.name != migrate.MARKER}


def _counts(db_url: str) -> dict[str, int]:
    db = migrate.open_target(db_url)
    try:
        return migrate._row_counts(db)
    finally:
        db.close()


def test_embedded_to_postgresql_and_back_keeps_every_row_and_event(home, pg, tmp_path):
    pt = PacketTotal(embedded(home))
    try:
        before_rows, before_events, before_search = _rows(pt._db), _events(pt), _searches(pt)
        lines: list[str] = []
        summary = pt.migrate(pg, str(tmp_path / "mid-events"), tmp_path / "mid-blobs", batch=50, progress=lines.append)
    finally:
        pt.close()
    assert sum(len(v) for v in before_events.values()) == summary.events > 250
    assert summary.tables["captures"] == len(CAPTURES) and summary.tables["certs"] > 0 \
        and summary.tables["labels"] == 1 and summary.tables["users"] == 1
    assert summary.blobs_copied == len(_blobs(home / "blobs")) and not summary.blobs_corrupt
    assert any(line.startswith("rows: observables") for line in lines) and lines[-1].startswith("blobs:")
    assert not (tmp_path / "mid-blobs" / migrate.MARKER).exists()

    # back, from PostgreSQL, into the layout of an embedded home
    back = tmp_path / "back"
    source = migrate.Ends(migrate.open_target(pg), TantivyEventStore(tmp_path / "mid-events"),
                          tmp_path / "mid-blobs", str(tmp_path / "mid-events"))
    target = migrate.open_ends(f"sqlite:///{back / 'packettotal.sqlite'}", str(back / "events"), back / "blobs")
    try:
        assert _rows(source.db) == before_rows  # PostgreSQL holds what SQLite held, JSON nulls too
        again = migrate.Migration(source, target, batch=1000).run()
    finally:
        source.close()
        target.close()
    assert (again.tables, again.events) == (summary.tables, summary.events)

    pt = PacketTotal(embedded(back))
    try:
        assert _rows(pt._db) == before_rows
        assert _events(pt) == before_events
        assert _searches(pt) == before_search
        assert pt.add_label(next(iter(before_events)), "tag", "after", source="cli")["id"] == 2
    finally:
        pt.close()
    assert _blobs(back / "blobs") == _blobs(home / "blobs")


def test_postgresql_ids_go_on_after_the_copied_ones(home, pg, tmp_path):
    pt = PacketTotal(embedded(home))
    try:
        pt.migrate(pg, str(tmp_path / "events"), tmp_path / "blobs")
    finally:
        pt.close()
    db = migrate.open_target(pg)
    try:
        cid = db.list_captures(limit=1)[0]["id"]
        row = db.add_label({"capture_id": cid, "kind": "tag", "value": "second", "note": None, "author": None,
                            "source": "cli"})
        assert row["id"] == 2  # the sequence follows the copied label (id 1), no collision
    finally:
        db.close()


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PACKETTOTAL_HOME": str(home), "PACKETTOTAL_ENGINES": "1"}
    return subprocess.run([str(EXE), "migrate", *args], capture_output=True, text=True, env=env, timeout=300,
                          cwd=ROOT)


def test_the_cli_copies_then_refuses_a_target_that_is_not_empty(home, tmp_path):
    args = ["--to-database", f"sqlite:///{tmp_path / 'db.sqlite'}", "--to-events", str(tmp_path / "events"),
            "--to-blobs", str(tmp_path / "blobs")]
    done = _cli(home, *args)
    assert done.returncode == 0, done.stderr
    assert "checked: " in done.stdout and f"of {len(CAPTURES)} captures" in done.stdout
    again = _cli(home, *args)
    assert again.returncode == 2 and again.stdout == ""
    assert again.stderr.count("\n") == 1 and "the target is not empty" in again.stderr, again.stderr
    # a target with only blobs is not empty either
    only = _cli(home, "--to-database", f"sqlite:///{tmp_path / 'other.sqlite'}", "--to-events",
                str(tmp_path / "other-events"), "--to-blobs", str(tmp_path / "blobs"))
    assert only.returncode == 2 and "blob folder" in only.stderr, only.stderr
    bad = _cli(home, "--to-database", "mysql://x@127.0.0.1/db", "--to-events", str(tmp_path / "e"),
               "--to-blobs", str(tmp_path / "b"))
    assert bad.returncode == 2 and "sqlite:///PATH or postgresql://" in bad.stderr, bad.stderr
    down = _cli(home, "--to-database", "postgresql://pt:secret@127.0.0.1:1/pt", "--to-events", str(tmp_path / "e"),
                "--to-blobs", str(tmp_path / "b"))
    assert down.returncode == 2 and down.stderr.count("\n") == 1, down.stderr
    assert "cannot open the target database postgresql://pt:***@127.0.0.1:1/pt" in down.stderr \
        and "secret" not in down.stderr


def _kill_at(home: Path, args: list[str], wanted: str) -> list[str]:
    """Run the command; SIGKILL it when a line starting `wanted` comes: the lines it printed."""
    env = {**os.environ, "PACKETTOTAL_HOME": str(home), "PACKETTOTAL_ENGINES": "1", "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([str(EXE), "migrate", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=env, cwd=ROOT)
    lines = []
    try:
        assert p.stdout is not None
        for line in p.stdout:
            lines.append(line)
            if line.startswith(wanted):
                p.send_signal(signal.SIGKILL)
                break
    finally:
        p.wait(timeout=60)
    assert p.returncode == -signal.SIGKILL, (lines, p.stderr.read() if p.stderr else "")
    return lines


def test_a_migration_killed_midway_resumes_with_the_same_command(home, pg, tmp_path):
    args = ["--to-database", pg, "--to-events", str(tmp_path / "events"), "--to-blobs", str(tmp_path / "blobs"),
            "--batch", "1"]  # a transaction a row, a commit every 20 events: slow enough to stop midway
    lines = _kill_at(home, args, "rows: capture_stats")
    assert not any(line.startswith("checked") for line in lines)
    marker = migrate.Marker.from_json((tmp_path / "blobs" / migrate.MARKER).read_text())
    assert "captures" in marker.tables and "observables" not in marker.tables and not marker.events

    lines = _kill_at(home, args, "events: ")  # resumed, then stopped again among the events
    assert lines[0].startswith("resuming: ")
    marker = migrate.Marker.from_json((tmp_path / "blobs" / migrate.MARKER).read_text())
    assert "observables" in marker.tables and 0 < len(marker.events) < len(CAPTURES) and not marker.blobs

    done = _cli(home, *args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("resuming: ") and "resumed and checked: " in done.stdout
    assert not (tmp_path / "blobs" / migrate.MARKER).exists()
    assert _counts(pg) == _counts(f"sqlite:///{home / 'packettotal.sqlite'}")
    moved = TantivyEventStore(tmp_path / "events")
    source = TantivyEventStore(home / "events")
    db = Database.sqlite(home / "packettotal.sqlite")
    try:
        ids = _ids(db)
        assert len(source.documents(ids)) == len(CAPTURES) and moved.documents(ids) == source.documents(ids)
    finally:
        db.close()
        moved.close()
        source.close()


def test_an_opensearch_target_without_a_server_is_a_bounded_clear_error(home, tmp_path):
    pt = PacketTotal(embedded(home))
    try:
        t = time.monotonic()
        with pytest.raises(MigrationError, match=r"cannot reach the OpenSearch target http://u:\*\*\*@127\.0\.0\.1:9/"):
            pt.migrate(f"sqlite:///{tmp_path / 'db.sqlite'}", "http://u:secret@127.0.0.1:9/", tmp_path / "blobs")
        assert time.monotonic() - t < 2 * migrate.CONNECT_SECONDS * 2
    finally:
        pt.close()
    assert not (tmp_path / "blobs").exists()  # nothing copied


def test_plans_are_pure():
    names = [t.name for t in migrate.plan_tables(["captures"])]
    assert "captures" not in names and names.index("users") < names.index("api_keys") \
        and names.index("hunts") < names.index("hunt_hits")
    assert migrate.plan_events({"a": 3, "b": 0, "c": 1}, ["c"]) == ["a"]
    assert migrate.compare({"x": 1, "y": 2}, {"x": 1, "y": 3, "z": 1}) == [
        "y: 2 in the source, 3 in the target", "z: 0 in the source, 1 in the target"]
    assert migrate.hidden("postgresql://pt:pw@h:5432/db") == "postgresql://pt:***@h:5432/db"


def test_a_blob_whose_content_is_not_its_name_is_not_copied(tmp_path):
    good, bad = b"a capture", b"tampered"
    name = hashlib.sha256(good).hexdigest()
    for content, root in ((good, tmp_path / "src-good"), (bad, tmp_path / "src-bad")):
        (root / "captures" / name[:2]).mkdir(parents=True)
        (root / "captures" / name[:2] / name).write_bytes(content)
        (root / "captures" / name[:2] / f"{name}.tmp-1").write_bytes(b"left over")  # not a blob
    assert [k for k, _, _ in migrate._blob_files(tmp_path / "src-bad")] == ["captures"]
    dest = tmp_path / "dst" / "captures" / name[:2] / name
    assert not migrate._copy_file(tmp_path / "src-bad" / "captures" / name[:2] / name, dest, check=name)
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    assert migrate._copy_file(tmp_path / "src-good" / "captures" / name[:2] / name, dest, check=name)
    assert dest.read_bytes() == good


def test_tantivy_to_opensearch_when_a_server_is_given(home, tmp_path):
    """Into a real OpenSearch (PACKETTOTAL_TEST_OPENSEARCH_URL; skipped without one), then back."""
    if not OPENSEARCH_URL:
        pytest.skip("no OpenSearch server: set PACKETTOTAL_TEST_OPENSEARCH_URL=http://host:9200 to run this")
    base, _, query = OPENSEARCH_URL.partition("?")
    url = f"{base.rstrip('/')}/packettotal-test-{uuid.uuid4().hex[:12]}" + (f"?{query}" if query else "")
    pt = PacketTotal(embedded(home))
    try:
        before = _events(pt)
        summary = pt.migrate(f"sqlite:///{tmp_path / 'db.sqlite'}", url, tmp_path / "blobs")
    finally:
        pt.close()
    moved = PacketTotal(embedded(tmp_path / "os-home", events_backend="opensearch", events_url=url))
    try:
        assert summary.events == sum(map(len, before.values()))
        assert {cid: list(moved._events.export(cid)) for cid in before} == before
    finally:
        moved._events.client.indices.delete(index=moved._events.index)  # type: ignore[attr-defined]
        moved.close()


LONG = "".join(chr(0x10000 + i * 7919 % 60000) for i in range(1000))  # 4,000 bytes, not compressible


def test_a_row_postgresql_cannot_hold_is_named_in_one_line(pg, tmp_path):
    """Attacker-controlled text reaches the tables: PostgreSQL refuses an indexed text over ~2,700
    bytes (a value SQLite holds); a NUL is stored as U+FFFD there (store/db.py), not refused."""
    src = Database.sqlite(tmp_path / "src" / "packettotal.sqlite")
    with src.engine.begin() as conn:
        conn.execute(sa.insert(value_counts), [{"value": "fine", "captures": 1}, {"value": LONG, "captures": 2},
                                              {"value": "a\x00b", "captures": 3}])
    source = migrate.Ends(src, TantivyEventStore(tmp_path / "src" / "events"), tmp_path / "src" / "blobs", "src")
    target = migrate.open_ends(pg, str(tmp_path / "events"), tmp_path / "blobs")
    try:
        with pytest.raises(MigrationError, match=r"refused a row of table value_counts \(value='.*index row size"):
            migrate.Migration(source, target).run()
    finally:
        source.close()
        target.close()
    assert (tmp_path / "blobs" / migrate.MARKER).exists()  # the same command resumes, once the row is dealt with
