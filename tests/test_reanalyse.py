"""Re-analysis: stored captures run again through real Suricata with the rules loaded now; their
events are replaced, their labels stay (service, CLI, API and console)."""

import json
import time

import httpx
import pytest

from packettotal import demo
from packettotal.ingest import rules
from packettotal.service import PacketTotal

from .conftest import PCAPS, analyse, settings
from . import test_browser
from .test_cli import run
from .web import client, upload, wait_done

browser, page, server = test_browser.browser, test_browser.page, test_browser.server  # its fixtures, for one test
HTTP = PCAPS / "sv-http-4files.pcap"
DNS = PCAPS / "sv-dns-udp-txt.pcap"
POST = "PT reanalyse test: an HTTP POST"
RULE = f'alert http any any -> any any (msg:"{POST}"; http.method; content:"POST"; sid:9400001; rev:1;)'


def rules_folder(path, *lines: str):
    path.mkdir(parents=True)
    (path / "mine.rules").write_text("\n".join(lines) + "\n")
    return path


def signatures(pt: PacketTotal, cid: str) -> list[str]:
    return [e["event"]["alert"]["signature"] for e in pt.capture_events(cid, "alert", limit=1000).events]


def without_alerts(counts: dict) -> dict:
    return {k: v for k, v in counts.items() if k not in ("alert", "stats")}


def all_value_counts(pt: PacketTotal, cid: str) -> dict[str, int]:
    return pt._db.value_counts(o["value"] for o in pt._db.capture_observables(cid))


def test_a_capture_gains_a_new_rules_alerts_and_keeps_its_labels(tmp_path):
    home = tmp_path / "home"
    pt = PacketTotal(settings(home))
    try:
        before = analyse(pt, HTTP)
        cid = before["id"]
        assert before["status"] == "done" and POST not in signatures(pt, cid)
        label = pt.add_label(cid, "family", "Testfamily", note="from the sandbox")
        other = analyse(pt, DNS)  # shares no event with the rule: untouched
        values = all_value_counts(pt, cid)
        http_events = pt.capture_events(cid, "http").total
    finally:
        pt.close()
    assert values and set(values.values()) == {1}  # one capture holds each (the DNS one shares none)

    # the engines load their rules when they start: a new service on the same home
    pt = PacketTotal(settings(home, user_rules_dir=rules_folder(tmp_path / "rules", RULE)))
    try:
        again = pt.reanalyse(cid[:12])
        assert again.queued and again.capture["status"] == "queued" and again.capture["error"] is None
        assert not pt.reanalyse(cid).queued  # queued already: one job, not two
        after = pt.analyse(cid)
        assert after["status"] == "done", after["error"]
        assert signatures(pt, cid) == [POST] * http_events  # one alert per POST, none twice
        assert after["summary"]["alerts"] == http_events
        assert after["summary"]["suricata"]["rules"] == before["summary"]["suricata"]["rules"] + 1
        # everything else replaced, not added to: the same events, observables and value counts
        assert without_alerts(after["summary"]["counts"]) == without_alerts(before["summary"]["counts"])
        assert after["summary"]["events"] == before["summary"]["events"] + http_events
        assert all_value_counts(pt, cid) == values
        assert after["finished_at"] > before["finished_at"] and after["submitted_at"] == before["submitted_at"]
        assert [(x["id"], x["kind"], x["value"], x["note"]) for x in pt.labels(cid)] == [
            (label["id"], "family", "Testfamily", "from the sandbox")]
        found = pt.search(f'alert.signature:"{POST}" AND family:testfamily')
        assert [g["capture_id"] for g in found.groups] == [cid]
        assert pt.capture(other["id"])["finished_at"] == other["finished_at"]
    finally:
        pt.close()


def test_values_shared_with_other_captures_keep_their_counts(tmp_path):
    pt = PacketTotal(settings(tmp_path / "home"))
    try:
        one = analyse(pt, demo.write(tmp_path / "one.pcap"))
        two = analyse(pt, demo.write(tmp_path / "two.pcap", {"host": "other.example", "dns": "other.example"}))
        values = {**all_value_counts(pt, one["id"]), **all_value_counts(pt, two["id"])}
        assert values[demo.CLIENT] == 2 and values["other.example"] == 1  # shared, and not
        for _ in range(2):
            pt.reanalyse(one["id"])
            assert pt.analyse(one["id"])["status"] == "done"
            assert {**all_value_counts(pt, one["id"]), **all_value_counts(pt, two["id"])} == values
        assert pt.ioc(demo.CLIENT)["total_captures"] == 2
    finally:
        pt.close()


def test_warnings_of_the_earlier_analysis_are_not_repeated(tmp_path):
    # 64-byte strings: Suricata's longer values are cut, and the analysis says so
    pt = PacketTotal(settings(tmp_path / "home", max_string_bytes=64))
    try:
        first = analyse(pt, HTTP)
        assert any("over-long values were cut" in w for w in first["warnings"]), first["warnings"]
        pt.reanalyse(first["id"])
        assert pt.analyse(first["id"])["warnings"] == first["warnings"]
    finally:
        pt.close()


def test_the_capture_records_the_ruleset_that_analysed_it(tmp_path):
    s = settings(tmp_path / "home")
    pt = PacketTotal(s)
    try:
        before = analyse(pt, HTTP)
    finally:
        pt.close()
    assert before["summary"]["suricata"]["ruleset"] is None
    ruleset = rules.add(s, str(rules_folder(tmp_path / "set", RULE)), name="mine")
    pt = PacketTotal(s)
    try:
        pt.reanalyse(before["id"])
        after = pt.analyse(before["id"])
        assert after["summary"]["suricata"]["ruleset"] == ruleset.version and POST in signatures(pt, after["id"])
    finally:
        pt.close()


def test_a_query_matching_too_many_or_a_bad_query_queues_nothing(tmp_path, monkeypatch):
    from packettotal import service as service_mod
    pt = PacketTotal(settings(tmp_path / "home"))
    try:
        a, b = analyse(pt, HTTP), analyse(pt, DNS)
        monkeypatch.setattr(service_mod, "MAX_GROUPS", 1)
        with pytest.raises(service_mod.QueryError, match="matches more than 1 captures: narrow it"):
            pt.reanalyse_matching("event_type:flow")
        with pytest.raises(service_mod.QueryError):
            pt.reanalyse_matching("a AND (")
        assert {pt.capture(x["id"])["status"] for x in (a, b)} == {"done"}
        monkeypatch.setattr(service_mod, "MAX_GROUPS", 10_000)
        assert pt.reanalyse_matching("event_type:dns") == [b["id"]]
        assert sorted(pt.reanalyse_matching(None)) == [a["id"]]  # every one not queued already
    finally:
        pt.close()


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("reanalyse-cli")
    rows = json.loads(run(home, "analyze", "--json", str(HTTP), str(DNS), check=0).stdout)
    assert run(home, "label", rows[0]["id"], "kept", check=0)
    return home, {r["name"]: r for r in rows}


def finished(home, cid: str) -> str:
    return json.loads(run(home, "show", cid, "--json", check=0).stdout)["finished_at"]


def test_cli_reanalyses_one_the_matching_or_all(cli_home):
    home, rows = cli_home
    http, dns = rows[HTTP.name]["id"], rows[DNS.name]["id"]
    times = {cid: finished(home, cid) for cid in (http, dns)}
    one = json.loads(run(home, "reanalyse", "--json", http[:16], check=0).stdout)
    assert [(r["id"], r["status"], r["counts"]) for r in one] == [(http, "done", rows[HTTP.name]["counts"])]
    assert finished(home, http) > times[http] and finished(home, dns) == times[dns]
    matched = json.loads(run(home, "reanalyse", "--json", "--query", "event_type:dns", check=0).stdout)
    assert [r["id"] for r in matched] == [dns] and finished(home, dns) > times[dns]
    times = {cid: finished(home, cid) for cid in (http, dns)}
    every = run(home, "reanalyse", "--all", check=0).stdout.decode()
    assert every.count("done ") == 2 and "sv-http-4files.pcap" in every and "sv-dns-udp-txt.pcap" in every
    assert all(finished(home, cid) > t for cid, t in times.items())
    assert "kept" in run(home, "label", http, check=0).stdout.decode()


@pytest.mark.parametrize("args, says", [
    ((), "give one of REF, --query QUERY or --all"),
    (("abcdef0123", "--all"), "give one of REF, --query QUERY or --all"),
    (("--query", "a AND ("), "packettotal: "),
])
def test_cli_usage_errors_exit_2(cli_home, args, says):
    p = run(cli_home[0], "reanalyse", *args, check=2)
    assert says in p.stderr.decode()


def test_cli_unknown_capture_exits_1(cli_home):
    assert "no capture 'abcdef0123'" in run(cli_home[0], "reanalyse", "abcdef0123", check=1).stderr.decode()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with client(tmp_path_factory.mktemp("reanalyse-web")) as c:
        yield c


@pytest.fixture(scope="module")
def two(site):
    return [wait_done(site, upload(site, p).json()["id"]) for p in (HTTP, DNS)]


def test_api_reanalyses_one_capture(site, two):
    cap = two[0]
    r = site.post(f"/api/v1/captures/{cap['id'][:12]}/reanalyse")
    assert r.status_code == 202, r.text
    assert r.json() == {"id": cap["id"], "status": "queued", "status_url": f"/api/v1/captures/{cap['id']}",
                        "page_url": f"/captures/{cap['id']}"}
    after = wait_done(site, cap["id"])
    assert after["status"] == "done" and after["finished_at"] > cap["finished_at"]
    assert after["summary"]["counts"] == cap["summary"]["counts"]


def test_api_reanalyses_the_matching_or_all(site, two):
    r = site.post("/api/v1/reanalyse", json={"query": "event_type:dns"})
    assert r.status_code == 202 and r.json() == {"queued": 1, "status_url": "/api/v1/captures?status=queued"}
    assert wait_done(site, two[1]["id"])["finished_at"] > two[1]["finished_at"]
    r = site.post("/api/v1/reanalyse", json={"all": True})
    assert r.status_code == 202 and r.json()["queued"] == 2
    assert all(wait_done(site, c["id"])["status"] == "done" for c in two)


@pytest.mark.parametrize("body, status, says", [
    ({}, 422, 'give either "query" or "all": true'),
    ({"all": False}, 422, 'give either "query" or "all": true'),
    ({"query": "event_type:dns", "all": True}, 422, 'give either "query" or "all": true'),
    ({"query": "a AND ("}, 400, "position"),
])
def test_api_refuses_an_unclear_request(site, two, body, status, says):
    r = site.post("/api/v1/reanalyse", json=body)
    assert r.status_code == status and says in r.json()["detail"], r.text
    assert site.get("/api/v1/captures", params={"status": "queued"}).json() == []


def test_api_unknown_capture_is_404(site):
    r = site.post(f"/api/v1/captures/{'ab' * 32}/reanalyse")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_a_reupload_of_a_done_capture_points_to_reanalysis(site, two):
    cap = wait_done(site, two[0]["id"])
    r = upload(site, HTTP)
    assert r.status_code == 303 and r.headers["location"] == f"/api/v1/captures/{cap['id']}"
    assert r.json()["reanalyse_url"] == f"/api/v1/captures/{cap['id']}/reanalyse"
    assert site.post(r.json()["reanalyse_url"]).status_code == 202
    wait_done(site, cap["id"])


def test_the_console_button_reanalyses(site, two):
    cap = wait_done(site, two[0]["id"])
    html = site.get(f"/captures/{cap['id']}").text
    assert f'<form method="post" action="/captures/{cap["id"]}/reanalyse"' in html
    assert "with no threat ruleset" in html and "Re-analyse with the current rules</button>" in html
    r = site.post(f"/captures/{cap['id']}/reanalyse")
    assert r.status_code == 303 and r.headers["location"] == f"/captures/{cap['id']}"
    assert wait_done(site, cap["id"])["finished_at"] > cap["finished_at"]
    # another site's page cannot press it
    r = site.post(f"/captures/{cap['id']}/reanalyse", headers={"origin": "http://evil.example"})
    assert r.status_code == 403
    time.sleep(0.2)
    assert site.get(f"/api/v1/captures/{cap['id']}").json()["status"] == "done"


def test_a_failed_reanalysis_says_why_keeps_the_labels_and_can_be_run_again(site, tmp_path):
    cap = wait_done(site, upload(site, demo.write(tmp_path / "demo.pcap")).json()["id"])
    cid = cap["id"]
    assert site.post(f"/api/v1/captures/{cid}/labels", json={"kind": "tag", "value": "keep me"}).status_code == 201
    stored = site.app.state.instance.service.capture_path(cid)
    good = stored.read_bytes()
    stored.write_bytes(good[:24] + b"\xff" * (len(good) - 24))  # the stored copy damaged after its header
    try:
        assert site.post(f"/api/v1/captures/{cid}/reanalyse").status_code == 202
        failed = wait_done(site, cid)
        assert failed["status"] == "failed" and "Suricata could not read the capture" in failed["error"], failed
        html = site.get(f"/captures/{cid}").text
        assert "The analysis failed: " in html and f'action="/captures/{cid}/reanalyse"' in html
    finally:
        stored.write_bytes(good)
    assert site.post(f"/captures/{cid}/reanalyse").status_code == 303
    again = wait_done(site, cid)
    assert again["status"] == "done" and again["summary"]["counts"] == cap["summary"]["counts"]
    assert [x["value"] for x in site.get(f"/api/v1/captures/{cid}/labels").json()] == ["keep me"]


@pytest.mark.skipif(not test_browser.CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_the_button_in_a_browser(page, server, tmp_path):
    with open(demo.write(tmp_path / "demo.pcap"), "rb") as f:
        r = httpx.post(server + "/api/v1/captures", files={"file": ("demo.pcap", f)})
    cid = r.json()["id"]
    first = wait_http(server, cid)
    page.goto(f"{server}/captures/{cid}")
    page.get_by_role("button", name="Re-analyse with the current rules").click()
    # the status page while queued or running, reloaded by its script once done: the console again
    page.locator("nav.tabs").wait_for(timeout=60_000)
    assert page.url == f"{server}/captures/{cid}" and page.dialogs == []
    assert httpx.get(f"{server}/api/v1/captures/{cid}").json()["finished_at"] > first["finished_at"]
    assert "Analysed " in page.locator("#reanalyse").inner_text()


def wait_http(base: str, cid: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        row = httpx.get(f"{base}/api/v1/captures/{cid}").json()
        if row["status"] == "done":
            return row
        time.sleep(0.05)
    raise AssertionError(f"capture {cid} not done")
