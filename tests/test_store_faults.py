"""The store under faults: a full disk (a real small tmpfs as the home) and a crash mid-analysis.
A capture ends `done` with every event it counts searchable, or `failed` with a reason; never
`done` with an empty index, never stuck `running`, never half visible."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from packettotal.errors import StorageFull
from packettotal.query.nodes import MatchAll
from packettotal.service import PacketTotal

from .conftest import PCAPS, settings, sqlite_only
from .web import client, upload

BIG = PCAPS / "sv-dhcp-flood.pcap"     # 10,000 DHCP events: its index commit needs megabytes
SMALL = PCAPS / "sv-smb2-psexec.pcap"  # 120 events of eight types


@pytest.fixture
def small_home(tmp_path):
    """A 20 MB filesystem of its own as the home, so filling it fills nothing else."""
    home = tmp_path / "home"
    home.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(home)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"mounting a small tmpfs is not permitted here: {mounted.stderr.strip()[:200]}")
    yield home
    subprocess.run(["umount", "-l", str(home)], check=True)


def fill(home: Path) -> Path:
    """Write a file until the filesystem is full, to the last block."""
    filler = home / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 512):
            try:
                while True:
                    os.write(fd, bytes(size))
            except OSError as exc:
                assert exc.errno == 28, exc
    finally:
        os.close(fd)
    return filler


def indexed(pt: PacketTotal, capture_id: str) -> int:
    """The capture's events any reader sees (Suricata's stats record is stored, not counted)."""
    return sum(n for etype, n in pt._events.count_by_type(capture_id).items() if etype != "stats")


def assert_done_and_searchable(pt: PacketTotal, capture_id: str) -> None:
    row = pt.capture(capture_id)
    assert row["status"] == "done", row["error"]
    assert row["summary"]["events"] > 0
    assert indexed(pt, capture_id) == row["summary"]["indexed"] == row["summary"]["events"]
    hits = dict(pt._events.hits_by_capture(MatchAll()))
    assert hits[capture_id] == pt._events.documents([capture_id])[capture_id]  # all it holds is seen


@sqlite_only
def test_a_full_disk_fails_the_captures_with_a_reason_and_later_ones_are_indexed(small_home):
    pt = PacketTotal(settings(small_home))
    try:
        big = pt.submit(BIG, BIG.name).capture["id"]
        small = pt.submit(SMALL, SMALL.name).capture["id"]
        assert pt.analyse(big, defer_commit=True)["status"] == "running"  # indexed, commit pending
        filler = fill(small_home)
        assert pt.flush() == [big]  # the index commit fails: ENOSPC; so does recording the failure
        row = pt.capture(big)
        assert row["status"] == "failed" and "ran out of disk space" in row["error"], row
        assert pt._events.documents([big]) == {}
        row = pt.analyse(small)  # still full: fails at once, with the reason, not stuck
        assert row["status"] == "failed" and "disk space" in row["error"], row
        assert pt._db.get_capture(big)["status"] == "running"  # the database could not take it yet

        filler.unlink()
        row = pt.analyse(small)  # the writer was rebuilt: this commit holds the events
        assert_done_and_searchable(pt, small)
        assert pt._db.get_capture(big)["status"] == "failed"  # written with that analysis
        assert "disk space" in pt._db.get_capture(big)["error"]
        again = pt.submit(BIG, BIG.name)  # a re-upload of the failed capture queues it again
        assert again.created and again.capture["status"] == "queued"
        pt.analyse(big)
        assert_done_and_searchable(pt, big)
    finally:
        pt.close()
    pt = PacketTotal(settings(small_home))  # a restart keeps all of it
    try:
        for cid in (small, big):
            assert_done_and_searchable(pt, cid)
        assert pt.search("event_type:dhcp").groups[0]["capture_id"] == big
    finally:
        pt.close()


@sqlite_only
def test_a_failed_database_write_after_the_commit_leaves_nothing_visible(small_home):
    """The index committed but the database could not record the capture `done`: it fails with
    the reason (recorded later), its events are not seen, and a restart deletes them."""
    pt = PacketTotal(settings(small_home))
    try:
        big = pt.submit(BIG, BIG.name).capture["id"]
        assert pt.analyse(big, defer_commit=True)["status"] == "running"
        pt._events.commit()  # the index holds it; then the disk fills before the database writes
        filler = fill(small_home)
        pt.flush()
        row = pt.capture(big)
        assert row["status"] == "failed" and "could not be recorded" in row["error"], row
        assert indexed(pt, big) == 0 and pt.search("event_type:dhcp").total_hits == 0
        filler.unlink()
    finally:
        pt.close()  # a failure never written: the database still says `running`
    pt = PacketTotal(settings(small_home))
    try:
        assert pt._events.documents([big]) == {}  # the restart deleted what the index held
        assert pt.analyse(big)["status"] == "done"
        assert_done_and_searchable(pt, big)
    finally:
        pt.close()


def test_a_capture_whose_documents_a_failed_commit_lost_is_not_done(small_home):
    """Another commit (another batch's flush) failed while this capture waited for its own:
    its documents went with the dropped writer. Its own flush then has nothing to commit, and
    the capture must fail with the reason rather than be `done` with an empty index."""
    pt = PacketTotal(settings(small_home))
    try:
        big = pt.submit(BIG, BIG.name).capture["id"]
        assert pt.analyse(big, defer_commit=True)["status"] == "running"
        filler = fill(small_home)
        with pytest.raises(ValueError, match="No space left"):
            pt._events.commit()
        filler.unlink()
        pt.flush()
        row = pt.capture(big)
        assert row["status"] == "failed", row
        assert re.search(r"index holds 0 of the capture's [\d,]{5,} documents", row["error"]), row["error"]
        pt.analyse(big)  # analysed again: all of it
        assert_done_and_searchable(pt, big)
    finally:
        pt.close()


def test_uploads_on_a_full_disk_are_refused_with_507_and_leave_nothing(small_home):
    work = small_home / "work"
    pt = PacketTotal(settings(small_home))
    try:
        fill(small_home)
        with pytest.raises(StorageFull) as refused:
            pt.submit(SMALL, SMALL.name)
        assert refused.value.status == 507 and "no disk space" in refused.value.message
        assert pt.count_captures() == 0 and not list(work.glob("*"))
    finally:
        pt.close()
    c = client(small_home)
    r = upload(c, SMALL)
    assert r.status_code == 507, r.text
    assert r.json() == {"error": "storage_full", "detail": refused.value.message}
    assert not list(work.glob("*"))


def test_partial_results_are_never_searchable(tmp_path):
    """A capture indexed but not done (another capture's commit made its events durable: here a
    commit of the writer while it waits for its own group commit) is not seen by any read; after
    a crash its events are deleted, and analysing it again shows them once."""
    home = tmp_path / "home"
    pt = PacketTotal(settings(home))
    try:
        other = pt.submit(SMALL, SMALL.name).capture["id"]
        assert pt.analyse(other)["status"] == "done"
        partial = pt.submit(BIG, BIG.name).capture["id"]
        assert pt.analyse(partial, defer_commit=True)["status"] == "running"
        pt._events.commit()  # what another capture's flush does: every document so far is durable

        def seen() -> list:
            return [pt.search("event_type:dhcp").total_hits, pt.search_events("event_type:dhcp").total,
                    indexed(pt, partial), partial in dict(pt._events.hits_by_capture(MatchAll())),
                    len(pt._events.search_by_capture(MatchAll()))]

        assert seen() == [0, 0, 0, False, 1]
        assert pt._events.documents([partial])[partial] > 10_000  # durable all the same
        assert_done_and_searchable(pt, other)
    finally:
        pt.close()  # a crash: closed without finishing
    pt = PacketTotal(settings(home))
    try:
        assert pt.capture(partial)["status"] == "running"
        assert pt._events.documents([partial]) == {}  # the restart deleted them
        assert seen() == [0, 0, 0, False, 1]
        row = pt.analyse(partial)
        assert_done_and_searchable(pt, partial)  # once: the summary's count, not more
        assert pt.search("event_type:dhcp").total_hits == row["summary"]["counts"]["dhcp"] == 10_000
        assert_done_and_searchable(pt, other)
    finally:
        pt.close()
