"""ET Open from the local snapshot (../shared/rules/etopen, read where it is), added with
`packettotal rules add` and loaded by one real daemon: ~21 s of CPU to merge-check and as much to
load, so everything that needs it is here, behind one module-scoped fixture."""

import pytest

from packettotal import cli
from packettotal.ingest import rules
from packettotal.service import PacketTotal

from .conftest import PCAPS, ROOT, analyse, settings

ETOPEN = ROOT / ".." / "shared" / "rules" / "etopen"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def etopen(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    assert cli.run(["--home", str(home), "rules", "add", str(ETOPEN)]) == 0
    pt = PacketTotal(settings(home))
    yield pt
    pt.close()


def fired(pt: PacketTotal, name: str) -> tuple[dict, set[tuple[int, str]]]:
    row = analyse(pt, PCAPS / name)
    assert row["status"] == "done", row["error"]
    events = pt.capture_events(row["id"], "alert", limit=500).events
    return row, {(e["event"]["alert"]["signature_id"], e["event"]["alert"]["signature"]) for e in events}


def test_the_snapshot_merges_with_suricata_updates_counts(etopen):
    ruleset = rules.installed(etopen.settings)
    # 21,203 enabled category rules + 1,242 IP-reputation rules + 130 enabled for flowbits;
    # emerging-deleted.rules is ignored, as suricata-update does by default
    assert (ruleset.enabled, ruleset.disabled) == (22575, 7228)
    assert [s.name for s in rules.sources(etopen.settings)] == ["etopen"]


def test_the_exploit_kit_capture_gets_et_alerts_under_the_ruleset_version(etopen):
    row, alerts = fired(etopen, "cs-ek_to_cryptowall4.pcapng")
    assert {
        (2014726, "ET INFO Outdated Flash Version M1"),
        (2022290, "ET EXPLOIT_KIT Evil Redirector Leading to EK Mon Dec 21 2015 5"),
        (2022894, ("ET HUNTING SUSPICIOUS Firesale gTLD IE Flash request to set non-standard filename "
                   "(some overlap with 2021752)")),
        (2023882, "ET INFO HTTP Request to a *.top domain"),
    } <= alerts
    assert row["summary"]["suricata"]["ruleset"] == rules.installed(etopen.settings).version
    assert row["summary"]["suricata"]["rules"] > 22575


def test_sql_injection_and_psexec_captures_get_et_alerts(etopen):
    assert {(2011037, "ET WEB_SERVER Possible Attempt to Get SQL Server Version in URI using SELECT VERSION"),
            (2016672, "ET WEB_SERVER SQL Errors in HTTP 200 Response (error in your SQL syntax)")} <= \
        fired(etopen, "cs-http_dvwa_sqlinjection.pcapng")[1]
    assert {(2010781, "ET INFO PsExec service created"),
            (2027237, "ET RPC DCERPC SVCCTL - Remote Service Control Manager Access")} <= \
        fired(etopen, "sv-smb2-psexec.pcap")[1]


def test_serve_answers_pages_while_its_daemon_loads_et_open(etopen, tmp_path):
    import shutil
    import time

    from .web import client, wait_done
    home = tmp_path / "home"  # the fixture's service holds its home's index: a home of its own, same ruleset
    shutil.copytree(etopen.settings.rules_dir, home / "rules")
    with client(home) as c:  # its own daemon: ~20 s of loading ET Open
        assert c.get("/").status_code == 200
        serving = c.get("/api/v1/engines").json()["serving"]
        assert serving is None or serving["ready"] == 0  # answered before the daemon could be ready
        r = c.post("/api/v1/captures", files={"file": ("aurora.pcapng", (PCAPS / "cs-aurora.pcapng").read_bytes())})
        assert r.status_code == 202  # new to this home: it waits for the daemon, queued
        page = c.get(f"/captures/{r.json()['id']}")
        assert page.status_code == 200 and "Suricata is loading its rules" in page.text, page.text[-1500:]
        row = wait_done(c, r.json()["id"], timeout=300)
        assert row["status"] == "done" and row["summary"]["suricata"]["ruleset"] == rules.installed(
            etopen.settings).version
        deadline = time.monotonic() + 60
        while (c.get("/api/v1/engines").json()["serving"] or {}).get("ready") != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        serving = c.get("/api/v1/engines").json()["serving"]
        assert serving["ready"] == 1 and serving["rules"] > 22575
