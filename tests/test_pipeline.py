"""The whole pipeline with real Suricata on real captures from ../shared/pcaps."""

import gzip
import os
import signal
import time
from pathlib import Path

import pytest

from packettotal import demo
from packettotal.errors import RefusedCapture
from packettotal.query import lucene
from packettotal.service import PacketTotal


from .conftest import PCAPS, analyse, manifest, settings

SPECIAL = ("CORRUPT", "TRUNCATED", "MALFORMED", "UNSUPPORTED LINK TYPE", "EMPTY")
EICAR_SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"


def test_every_special_capture_ends_with_a_reason_and_harms_no_other(service):
    rows = [r for r in manifest() if r["description"].startswith(SPECIAL)]
    assert len(rows) >= 10
    good = analyse(service, PCAPS / "sv-dns-udp-txt.pcap")
    for r in rows:
        try:
            result = analyse(service, PCAPS / r["file"])
        except RefusedCapture as exc:
            assert exc.message, r["file"]
            if r["description"].startswith("UNSUPPORTED LINK TYPE"):
                assert "unsupported link type" in exc.message
            continue
        if result["status"] == "failed":
            assert result["error"], r["file"]
        else:
            assert result["status"] == "done", r["file"]
            if r["description"].startswith(("CORRUPT", "TRUNCATED")):
                assert any("cut short" in w or "damaged" in w for w in result["warnings"]), r["file"]
    # the good capture's results are untouched, and the engine still works
    assert service.capture(good["id"])["status"] == "done"
    assert analyse(service, PCAPS / "sv-icmp-echo.pcap")["status"] == "done"


def test_packet_counts_and_summary(service):
    row = analyse(service, PCAPS / "cs-http_espn.pcapng")
    s = row["summary"]
    assert row["status"] == "done" and row["error"] is None
    assert (s["packets"], s["format"], s["linktypes"]) == (956, "pcapng", {"Ethernet": 956})
    assert s["suricata"]["packets_read"] == 956
    assert s["counts"]["http"] == 61 and s["counts"]["dns"] == 28  # as Suricata 7.0.10 logs them
    assert s["duration"] > 0 and s["first_ts"] < s["last_ts"]
    assert sum(s["counts"].values()) == s["events"] == s["indexed"]
    assert service._events.count_by_type(row["id"]) == s["counts"] | {"stats": 1}


def test_dedup_returns_the_existing_analysis(service, tmp_path):
    first = analyse(service, PCAPS / "sv-dns-udp-txt.pcap")
    again = service.submit(PCAPS / "sv-dns-udp-txt.pcap")
    assert not again.created and again.capture["id"] == first["id"]
    gz = tmp_path / "same.pcap.gz"
    gz.write_bytes(gzip.compress((PCAPS / "sv-dns-udp-txt.pcap").read_bytes()))
    assert service.submit(gz).capture["id"] == first["id"]  # same capture, compressed
    assert service.capture(first["md5"])["id"] == first["id"]  # md5 ids still work


def test_reindexing_is_idempotent(service):
    row = analyse(service, PCAPS / "sv-http-4files.pcap")
    before = service._events.count_by_type(row["id"])
    again = service.analyse(row["id"])
    assert again["status"] == "done" and again["attempts"] == row["attempts"] + 1
    assert service._events.count_by_type(row["id"]) == before


def test_project_rule_fires_on_the_demo_and_the_alert_is_indexed(service, tmp_path):
    row = analyse(service, demo.write(tmp_path / "demo.pcap"))
    assert row["status"] == "done" and row["summary"]["alerts"] >= 2
    groups = service.search("alert.signature_id:9100001").groups
    assert row["id"] in {g["capture_id"] for g in groups}
    page = service.capture_events(row["id"], "alert")
    sigs = {e["event"]["alert"]["signature_id"] for e in page.events}
    assert {9100001, 9100011} <= sigs
    # the EICAR download was carved, hashed and stored
    files = service.capture_files(row["id"])
    assert [f["sha256"] for f in files] == [EICAR_SHA256]
    assert files[0]["stored"] and not files[0]["truncated"]
    assert service.stored_files(row["id"])[EICAR_SHA256].read_bytes() == demo.EICAR
    assert service.stored_files(row["id"])[EICAR_SHA256].stat().st_uid == os.geteuid()  # not Suricata's account
    engines = service._pool.base  # their reused output folders are emptied
    assert not list(engines.glob("engine-*/run/filestore/*/*")) and not list(engines.glob("engine-*/run/eve.json"))
    kinds = {(o["kind"], o["value"]) for o in service._db.capture_observables(row["id"])}
    assert {("domain", "downloads.example.com"), ("domain", "secure.example.org"), ("sha256", EICAR_SHA256),
            ("url", "http://downloads.example.com/tools/eicar.com"), ("user_agent", "curl/8.5.0"),
            ("ip", "203.0.113.80")} <= kinds
    assert {"ja3", "ja3s", "ja4", "cert_sha1", "cert_subject", "community_id"} <= {k for k, _ in kinds}


def test_suricata_never_runs_as_root(service):
    with service._pool.engine() as e:
        status = Path(f"/proc/{e.proc.pid}/status").read_text().splitlines()
    uids = next(line.split()[1:] for line in status if line.startswith("Uid:"))  # real, effective, saved, fs
    assert "0" not in uids, uids
    if os.geteuid() == 0:
        assert service._pool.run_as and uids == [str(service._pool.run_as.uid)] * 4


def test_engine_folders_left_by_a_dead_process_are_removed(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("engines get a temp folder of their own only when PacketTotal runs as root")
    import tempfile
    from packettotal.ingest.suricata import ENGINES_PREFIX, EnginePool
    stale = Path(tempfile.gettempdir()) / f"{ENGINES_PREFIX}999999999-test"  # no such process
    (stale / "engine-0" / "run" / "filestore" / "ab").mkdir(parents=True, exist_ok=True)
    (stale / "engine-0" / "run" / "filestore" / "ab" / ("ab" * 32)).write_bytes(b"carved")
    pool = EnginePool(settings(tmp_path / "home"))
    try:
        assert not stale.exists() and pool.base.exists() and f"{os.getpid()}-" in pool.base.name
    finally:
        pool.close()
    assert not pool.base.exists()


def test_carved_files_from_the_daemons_account_are_copied_never_followed(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("only root takes files from another account")
    import pwd
    from packettotal.store.blobs import Blobs
    acct = pwd.getpwnam(settings(tmp_path).suricata_user)
    blobs = Blobs(tmp_path / "blobs")
    carved = tmp_path / "carved"
    carved.write_bytes(b"carved data")
    os.chown(carved, acct.pw_uid, acct.pw_gid)
    kept = blobs.put_move("files", "a" * 64, carved)
    assert kept.read_bytes() == b"carved data" and kept.stat().st_uid == 0 and not carved.exists()
    secret = tmp_path / "secret"
    secret.write_bytes(b"root only")
    secret.chmod(0o600)
    link = tmp_path / "link"
    link.symlink_to(secret)
    os.lchown(link, acct.pw_uid, acct.pw_gid)
    with pytest.raises(OSError):
        blobs.put_move("files", "b" * 64, link)
    assert not blobs.has("files", "b" * 64)
    fifo = tmp_path / "fifo"  # would block a reader that opened it: refused at once
    os.mkfifo(fifo)
    os.chown(fifo, acct.pw_uid, acct.pw_gid)
    with pytest.raises(OSError):
        blobs.put_move("files", "c" * 64, fifo)
    assert not blobs.has("files", "c" * 64)


def test_project_rule_fires_on_a_real_capture(service):
    row = analyse(service, PCAPS / "sv-smb-eicar-sll.pcap")
    alerts = service.capture_events(row["id"], "alert").events
    assert [a["event"]["alert"]["signature_id"] for a in alerts] == [9100002]


def test_killed_engine_is_restarted(service):
    analyse(service, PCAPS / "sv-dns-nxdomain-soa.pcap")
    with service._pool.engine() as engine:
        os.killpg(engine.proc.pid, signal.SIGKILL)
        engine.proc.wait()
    assert analyse(service, PCAPS / "sv-sip.pcap")["status"] == "done"


def test_capture_over_its_time_limit_fails_with_the_reason_once_and_the_engine_recovers(tmp_path):
    pt = PacketTotal(settings(tmp_path / "home", engine_timeout=0.001))
    try:
        row = analyse(pt, PCAPS / "sv-dhcp-flood.pcap")
        # the daemon still answered: the capture is the cause, so it is not tried again
        assert row["status"] == "failed" and row["attempts"] == 1
        assert "still being analysed after 0.001 s (setting engine_timeout)" in row["error"]
        with pt._pool.engine() as engine:
            assert engine.alive() and engine.restarts >= 1
        # other jobs continue once the limit allows them
        pt.settings.__dict__["engine_timeout"] = 60.0
        assert analyse(pt, PCAPS / "sv-dns-udp-txt.pcap")["status"] == "done"
    finally:
        pt.close()


def test_hostile_strings_are_bounded(tmp_path):
    pt = PacketTotal(settings(tmp_path / "home", max_string_bytes=256))
    try:
        ua = "<script>alert(1)</script>" + "A" * 1000
        row = analyse(pt, demo.write(tmp_path / "hostile.pcap", {"user_agent": ua}))
        http = pt.capture_events(row["id"], "http").events[0]["event"]["http"]
        assert len(http["http_user_agent"].encode()) <= 256 + 3 and http["http_user_agent"].endswith("…")
        assert any("cut to 256 bytes" in w for w in row["warnings"])
    finally:
        pt.close()


@pytest.mark.parametrize("query,expect,tree", [
    ("dns.rrname:*.example.com", {"dns"}, "Wildcard"),
    ("tls.sni:secure.example.org", {"tls"}, "Term"),
    ("src_ip:10.13.37.0/24 AND event_type:http", {"http"}, "And(Cidr, Term)"),
    ("hash:" + EICAR_SHA256, {"fileinfo"}, "Term"),
])
def test_search_finds_the_demo(service, tmp_path, query, expect, tree):
    row = analyse(service, demo.write(tmp_path / "demo.pcap"))
    groups = {g["capture_id"]: g for g in service.search(query).groups}
    assert set(groups[row["id"]]["found_in"]) == expect
    node = lucene.parse(query)  # parsed once into a typed tree, translated by the backend
    shape = type(node).__name__
    if hasattr(node, "children"):
        shape += "(" + ", ".join(type(c).__name__ for c in node.children) + ")"
    assert shape == tree


def test_capture_stays_queued_until_both_stores_commit(service, tmp_path):
    sub = service.submit(demo.write(tmp_path / "d2.pcap", {"dns": "other.example.net"}))
    assert sub.capture["status"] == "queued" and sub.capture["summary"]["packets"] > 0
    assert service._events.count_by_type(sub.capture["id"]) == {}
    done = service.analyse(sub.capture["id"])
    assert done["status"] == "done" and service._events.count_by_type(done["id"])


def test_recover_requeues_unfinished_captures(service, tmp_path):
    from packettotal.jobs.local import LocalJobs
    sub = service.submit(demo.write(tmp_path / "d3.pcap", {"dns": "third.example.net"}))
    service._db.update_capture(sub.capture["id"], status="running")  # as a crash would leave it
    jobs = LocalJobs(service)
    try:
        results = [f.result() for f in jobs.recover()]
    finally:
        jobs.close()
    assert sub.capture["id"] in {r["id"] for r in results if r["status"] == "done"}


def test_missing_capture_blob_fails_the_job_not_the_service(service, tmp_path):
    sub = service.submit(demo.write(tmp_path / "d4.pcap", {"dns": "fourth.example.net"}))
    service.capture_path(sub.capture["id"]).unlink()
    row = service.analyse(sub.capture["id"])
    assert row["status"] == "failed" and row["error"]


def test_parallel_engines_keep_captures_apart(tmp_path):
    """Two daemons, two workers, one batch: every capture gets exactly its own EVE."""
    from packettotal.jobs.local import LocalJobs
    pt = PacketTotal(settings(tmp_path / "home", engines=2))
    jobs = LocalJobs(pt)
    try:
        names = ["cs-aurora.pcapng", "cs-cryptowall4_c2.pcapng", "sv-http-4files.pcap", "sv-dns-udp-txt.pcap",
                 "sv-smb-eicar-sll.pcap", "cs-dns_axfr.pcapng", "sv-icmp-echo.pcap", "sv-tls-cert-chain.pcap"]
        ids = [pt.submit(PCAPS / n, n).capture["id"] for n in names]
        rows = jobs.run(ids)
        assert len(rows) == len(names) and {r["status"] for r in rows} == {"done"}
        for r in rows:
            assert r["summary"]["suricata"]["packets_read"] == r["summary"]["packets"], r["name"]
            assert not r["warnings"], r["name"]
        assert len(pt._pool._serving().engines) == 2
    finally:
        jobs.close()
        pt.close()


def test_batch_commits_while_ids_still_arrive(service, tmp_path):
    """A capture analysed early in a long batch is `done` before the last file is even checked."""
    from packettotal.jobs.local import LocalJobs
    first = service.submit(demo.write(tmp_path / "e1.pcap", {"dns": "early.example.net"})).capture["id"]
    later = service.submit(demo.write(tmp_path / "e2.pcap", {"dns": "later.example.net"})).capture["id"]
    finished: list[str] = []
    done_while_arriving: list[str] = []

    def ids():
        yield first
        deadline = time.monotonic() + 60
        while not service._pending and time.monotonic() < deadline:  # `first` indexed, not committed
            time.sleep(0.01)
        yield later
        finished.append("ids")

    def on_done(row):
        if not finished:
            done_while_arriving.append(row["id"])

    jobs = LocalJobs(service)
    try:
        rows = jobs.run(ids(), on_done=on_done, commit_every=0)
    finally:
        jobs.close()
    assert {r["id"]: r["status"] for r in rows} == {first: "done", later: "done"}
    assert first in done_while_arriving


def test_a_link_in_place_of_suricatas_log_is_a_reason_not_a_crash(tmp_path):
    from packettotal.ingest.suricata import _errors_since
    log = tmp_path / "suricata.log"
    log.symlink_to("/etc/shadow")  # what the daemon's account could put there
    errors = _errors_since(log, 0)
    assert len(errors) == 1 and "could not be read" in errors[0] and "root:" not in errors[0]
    log.unlink()
    os.mkfifo(log)  # a FIFO would block a reader that opened it: refused at once
    assert "could not be read" in _errors_since(log, 0)[0]
