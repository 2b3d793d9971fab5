"""Rules change under long-lived daemons: new ones load beside the serving ones, then take over.
Small rulesets (a daemon starts in well under a second) so the swaps run in every test run."""

import threading
import time

from packettotal.ingest import rules, suricata
from packettotal.jobs.local import LocalJobs
from packettotal.service import PacketTotal

from .conftest import PCAPS, analyse, settings
from .test_rules import folder

MARK = 'alert ip any any -> any any (msg:"PT swap marker"; sid:9800001; rev:1;)'
BROKEN = 'alert ip any any -> any any (msg:"PT swap broken"; nosuchkeyword; sid:9800002; rev:1;)'
SMALL = ["sv-dns-udp-txt.pcap", "sv-icmp-echo.pcap", "sv-http-4files.pcap", "sv-tls-cert-chain.pcap",
         "cs-dns_axfr.pcapng", "cs-aurora.pcapng", "cs-cryptowall4_c2.pcapng", "sv-smb-eicar-sll.pcap",
         "cs-http_dvwa_sqlinjection.pcapng", "sv-smb2-psexec.pcap", "cs-mail_sender_attachment.pcapng",
         "cs-ek_to_cryptowall4.pcapng"]


def sids(pt: PacketTotal, cid: str) -> set[int]:
    return {e["event"]["alert"]["signature_id"] for e in pt.capture_events(cid, "alert", limit=500).events}


def test_a_capture_in_flight_finishes_under_the_old_rules_and_later_ones_get_the_new(tmp_path):
    s = settings(tmp_path / "home", engines=2)
    pool = suricata.EnginePool(s)
    pcap = PCAPS / "sv-dns-udp-txt.pcap"
    lent, finish, result = threading.Event(), threading.Event(), {}

    def in_flight():  # holds one daemon through the swap
        with pool.engine() as e, e.analyze(pcap) as run:
            lent.set()
            finish.wait(60)
            result.update(loaded=e.loaded, lines=list(run.lines()), engine=e)

    try:
        old = pool.loaded
        t = threading.Thread(target=in_flight)
        t.start()
        assert lent.wait(30)
        new_ruleset = rules.add(s, str(folder(tmp_path / "marker", {"m.rules": [MARK]})))
        assert pool.reload() is True  # with one daemon busy: its twin is stopped now, it when given back
        status = pool.status()
        assert status["serving"]["ruleset"] == new_ruleset.version and status["serving"]["ready"] == 2
        assert status["loading"] is None and status["refused"] is None
        finish.set()
        t.join(60)
        assert result["loaded"] is old and old.ruleset is None
        assert not any(b"9800001" in line for line in result["lines"])  # wholly under the old rules
        assert not result["engine"].alive() and not old.config_path.parent.exists()  # stopped, folder gone
        with pool.engine() as e, e.analyze(pcap) as run:
            lines = list(run.lines())
            assert e.loaded.ruleset == new_ruleset.version and e.loaded.rule_class[9800001] == "threat"
        assert any(b'"signature_id":9800001' in line for line in lines)
    finally:
        finish.set()
        pool.close()


def test_a_swap_while_a_batch_runs_loses_and_duplicates_nothing(tmp_path):
    s = settings(tmp_path / "home", engines=2)
    pt = PacketTotal(s)
    jobs = LocalJobs(pt)
    swapped = threading.Event()
    try:
        ids = [pt.submit(PCAPS / n, n).capture["id"] for n in SMALL]
        half = len(ids) // 2

        def arriving():  # the second half is given once the new rules serve
            yield from ids[:half]
            assert swapped.wait(120)
            yield from ids[half:]

        rows: list[dict] = []
        batch = threading.Thread(target=lambda: rows.extend(jobs.run(arriving(), commit_every=0.2)))
        batch.start()
        new_ruleset = rules.add(s, str(folder(tmp_path / "marker", {"m.rules": [MARK]})))
        assert pt._pool.reload() is True
        swapped.set()
        batch.join(300)
        assert sorted(r["id"] for r in rows) == sorted(ids)  # each reported once
        for cid in ids:
            row = pt.capture(cid)
            assert row["status"] == "done" and row["attempts"] == 1, (row["name"], row["error"])
            held = pt._events.documents([cid])[cid]
            assert held == row["summary"]["indexed"] + 1, row["name"]  # its records and its stats, once
            ruleset = row["summary"]["suricata"]["ruleset"]
            assert ruleset in (None, new_ruleset.version)
            assert (9800001 in sids(pt, cid)) == (ruleset is not None), row["name"]  # the rules it records
        assert all(pt.capture(c)["summary"]["suricata"]["ruleset"] == new_ruleset.version for c in ids[half:])
    finally:
        swapped.set()
        jobs.close()
        pt.close()


def test_rules_suricata_refuses_leave_the_old_daemons_serving_with_its_words(tmp_path):
    mine = folder(tmp_path / "mine", {"a.rules": [MARK]})
    s = settings(tmp_path / "home", user_rules_dir=mine)
    pt = PacketTotal(s)
    try:
        assert 9800001 in sids(pt, analyse(pt, PCAPS / "sv-icmp-echo.pcap")["id"])
        (mine / "b.rules").write_text(BROKEN + "\n")
        assert pt._pool.reload() is False
        refused = pt.engines()["refused"]
        assert refused["rules"] == pt.engines()["serving"]["rules"] + 1
        assert "detect-parse: unknown rule keyword 'nosuchkeyword'." in refused["errors"]
        assert not any(str(tmp_path) in line for line in refused["errors"])  # "the merged rules"
        assert pt.engines()["serving"]["ready"] == 1
        row = analyse(pt, PCAPS / "sv-dns-udp-txt.pcap")  # the old daemon serves on
        assert row["status"] == "done" and 9800001 in sids(pt, row["id"])
        (mine / "b.rules").unlink()
        (mine / "a.rules").write_text(MARK.replace("9800001", "9800003") + "\n")
        assert pt._pool.reload() is True and pt.engines()["refused"] is None
        row = pt.analyse(pt.reanalyse(row["id"]).capture["id"])
        assert sids(pt, row["id"]) == {9800003}
    finally:
        pt.close()


def test_serve_notices_changed_rules_by_itself(tmp_path):
    mine = folder(tmp_path / "mine", {"a.rules": [MARK]})
    pt = PacketTotal(settings(tmp_path / "home", user_rules_dir=mine, rules_reload_seconds=0.2))
    try:
        before = pt.engines()  # not started yet: nothing serving
        assert before["serving"] is None
        threading.Thread(target=pt.watch_rules).start()  # its own thread lives on: the pool's
        row = analyse(pt, PCAPS / "sv-icmp-echo.pcap")
        assert sids(pt, row["id"]) == {9800001}
        rules_before = pt.engines()["serving"]["rules"]
        (mine / "b.rules").write_text(MARK.replace("9800001", "9800004") + "\n")
        deadline = time.monotonic() + 60
        while pt.engines()["serving"]["rules"] == rules_before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert pt.engines()["serving"]["rules"] == rules_before + 1
        row = pt.analyse(pt.reanalyse(row["id"]).capture["id"])
        assert sids(pt, row["id"]) == {9800001, 9800004}
    finally:
        pt.close()
