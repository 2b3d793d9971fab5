"""The spool (store/events/spool.py): analyses by a process without the event index's writer,
indexed by the one holding it (service.index_spooled, jobs/indexer.py), on real Suricata."""

import os
import shutil
import time

import pytest

from packettotal.service import PacketTotal

from .conftest import PCAPS, settings

CAPTURES = ("sv-http-range-file.pcap", "sv-dns-udp-txt.pcap", "sv-ftp-multi-files.pcap")


@pytest.fixture(scope="module")
def direct(tmp_path_factory):
    """The same captures analysed straight into the index: what the spool must give."""
    pt = PacketTotal(settings(tmp_path_factory.mktemp("direct")))
    ids = [pt.analyse(pt.submit(PCAPS / n, n).capture["id"])["id"] for n in CAPTURES]
    yield {cid: _facts(pt, cid) for cid in ids}
    pt.close()


def _facts(pt: PacketTotal, cid: str) -> dict:
    row = pt.capture(cid)
    return {"status": row["status"], "events": pt._events.count_by_type(cid), "summary": row["summary"],
            "search": pt.search(f"capture:{cid} AND event_type:flow").total_hits}


def _spooled(pt: PacketTotal, names=CAPTURES) -> list[str]:
    ids = []
    for n in names:
        row = pt.analyse_to_spool(pt.submit(PCAPS / n, n).capture["id"])
        assert row["status"] == "indexing", row["error"]
        ids.append(row["id"])
    return ids


def _entries(pt: PacketTotal) -> list[str]:
    return sorted(p.name for p in pt.settings.spool_dir.iterdir())


def _comparable(facts: dict) -> dict:
    summary = {k: sorted(v, key=repr) if isinstance(v, list) else v  # top lists: ties come in any order
               for k, v in facts["summary"].items() if k not in ("suricata", "ndpi")}  # their seconds differ
    return {**facts, "summary": summary}


def test_spool_then_index_is_the_same_as_direct(direct, tmp_path):
    pt = PacketTotal(settings(tmp_path / "home"))
    try:
        ids = _spooled(pt)
        assert all(pt._events.count_by_type(cid) == {} for cid in ids)  # nothing in the index yet
        assert len(_entries(pt)) == len(ids) and not any(e.endswith(".part") for e in _entries(pt))
        assert sorted(pt.index_spooled()) == sorted(ids)
        spooled = {cid: _comparable(_facts(pt, cid)) for cid in ids}
        expected = {cid: _comparable(f) for cid, f in direct.items()}
        assert spooled == expected, {cid: {k: (v, expected[cid]["summary"].get(k)) for k, v in
                                           spooled[cid]["summary"].items() if expected[cid]["summary"].get(k) != v}
                                     for cid in ids}
        assert all(f["status"] == "done" and f["search"] > 0 for f in direct.values())
        assert _entries(pt) == []  # removed once indexed
    finally:
        pt.close()


def test_a_part_entry_is_never_indexed_and_an_old_one_is_swept(tmp_path):
    pt = PacketTotal(settings(tmp_path / "home"))
    try:
        [cid] = _spooled(pt, CAPTURES[1:2])
        [entry] = pt.settings.spool_dir.iterdir()
        half = entry.rename(entry.with_name(entry.name + ".part"))  # as if its writer were still at it
        assert pt.index_spooled() == [] and pt.capture(cid)["status"] == "indexing"
        assert pt._events.count_by_type(cid) == {}
        assert pt.sweep_spool() == 0  # a fresh .part stays: its writer may be alive
        old = time.time() - 7200
        os.utime(half, (old, old))
        assert pt.sweep_spool() == 1 and _entries(pt) == []
        row = pt.capture(cid)  # its results gone: it fails rather than wait forever
        assert row["status"] == "failed" and "lost before they were indexed" in row["error"]
    finally:
        pt.close()


def test_an_entry_left_by_a_crash_is_indexed_at_the_next_start(tmp_path):
    """The spooling process is gone; the next process holding the writer (its Indexer) indexes it."""
    from packettotal.jobs.local import LocalJobs
    home = tmp_path / "home"
    first = PacketTotal(settings(home))
    ids = _spooled(first, CAPTURES[:2])
    first.close()  # gone before any indexing
    jobs = LocalJobs(PacketTotal(settings(home)))
    try:
        jobs.service.claim_index()
        jobs.start_indexer()
        deadline = time.monotonic() + 60
        while any(jobs.service.capture(cid)["status"] != "done" for cid in ids):
            assert time.monotonic() < deadline, "the indexer did not index the spool"
            time.sleep(0.1)
        assert all(jobs.service._events.count_by_type(cid) for cid in ids)
    finally:
        jobs.close()
        jobs.service.close()
    assert _entries_of(home) == []


def _entries_of(home) -> list[str]:
    return sorted(p.name for p in (home / "spool").iterdir())


def test_indexing_twice_does_not_duplicate(tmp_path):
    """A crash after the commit but before the entry was removed: the entry is indexed again, and
    the capture still has one copy of its events."""
    pt = PacketTotal(settings(tmp_path / "home"))
    try:
        [cid] = _spooled(pt, CAPTURES[:1])
        [entry] = pt.settings.spool_dir.iterdir()
        kept = tmp_path / "kept"
        shutil.copytree(entry, kept)
        pt.index_spooled()
        once = pt._events.count_by_type(cid)
        shutil.copytree(kept, entry)  # as if the removal had not happened
        assert pt.index_spooled() == [cid]
        assert pt._events.count_by_type(cid) == once and sum(once.values()) > 0
        assert pt.capture(cid)["status"] == "done" and _entries(pt) == []
    finally:
        pt.close()


def test_a_damaged_entry_fails_its_capture_with_the_reason(tmp_path):
    pt = PacketTotal(settings(tmp_path / "home"))
    try:
        [cid] = _spooled(pt, CAPTURES[:1])
        [entry] = pt.settings.spool_dir.iterdir()
        events = entry / "events.jsonl.zst"
        events.write_bytes(events.read_bytes()[: events.stat().st_size // 2])  # truncated
        assert pt.index_spooled() == [cid]
        row = pt.capture(cid)
        assert row["status"] == "failed" and "spool" in row["error"] and "analyse it again" in row["error"]
        assert pt._events.count_by_type(cid) == {} and _entries(pt) == []
    finally:
        pt.close()


def test_an_entry_begun_while_the_sweep_runs_is_not_taken_for_an_orphan(tmp_path):
    """The sweep asks which captures still exist of the entries it listed, and acts on that same
    listing: a worker beginning an entry meanwhile keeps it."""
    from packettotal.store.events.spool import Spool
    spool = Spool(tmp_path / "spool")
    first = spool.begin("a" * 64)
    late: list = []

    def known(captures: set[str]) -> set[str]:  # as the database answers, while another worker begins
        late.append(spool.begin("b" * 64))
        return set()  # neither is a capture yet (the first: deleted meanwhile)
    assert spool.sweep(3600, known) == 1
    assert not first.path.exists() and late[0].path.exists()
