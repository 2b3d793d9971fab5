"""The packettotal command as a script would use it: exit codes, JSON, exports."""

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ON_PG, PCAPS, ROOT, home_env

EXE = Path(sys.executable).parent / "packettotal"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("clihome")


def run(home, *args, check=None):
    env = {**os.environ, **home_env(home), "PACKETTOTAL_ENGINES": "1"}
    p = subprocess.run([str(EXE), *args], capture_output=True, env=env, timeout=300, cwd=ROOT)
    if check is not None:
        assert p.returncode == check, p.stderr.decode()
    return p


def test_analyze_json_and_exit_codes(home, tmp_path):
    html = tmp_path / "page.html"
    html.write_text("<!DOCTYPE html><html><body>not a capture</body></html>\n")
    p = run(home, "analyze", "--json", str(PCAPS / "sv-http-4files.pcap"), str(PCAPS / "td-edsa.pcap"),
            str(html), check=1)
    rows = json.loads(p.stdout)
    assert [r["status"] for r in rows] == ["done", "refused", "refused"]
    done = rows[0]
    assert len(done["id"]) == 64 and len(done["md5"]) == 32 and done["error"] is None
    assert done["packets"] == 158 and done["counts"]["fileinfo"] >= 3 and done["alerts"] == 0
    assert "Marvell EDSA" in rows[1]["error"]
    assert rows[2]["error"].startswith("HTML document, not a packet capture")
    # all done -> 0, and a known capture is not analysed again
    again = json.loads(run(home, "analyze", "--json", str(PCAPS / "sv-http-4files.pcap"), check=0).stdout)
    assert again[0]["id"] == done["id"] and again[0]["status"] == "done"


def test_usage_errors_exit_2(home):
    assert run(home, "analyze").returncode == 2
    assert run(home, "search", "a AND (").returncode == 2


def test_show_search_export(home, tmp_path):
    row = json.loads(run(home, "analyze", "--json", str(PCAPS / "sv-http-4files.pcap"), check=0).stdout)[0]
    summary = json.loads(run(home, "show", row["md5"], "--json", check=0).stdout)
    assert summary["id"] == row["id"] and len(summary["files"]) >= 3
    tab = json.loads(run(home, "show", row["id"][:12], "--tab", "http", "--json", check=0).stdout)
    assert tab["total"] == 2 and tab["events"][0]["event_type"] == "http"
    assert "sv-http-4files.pcap" in run(home, "show", row["id"], check=0).stdout.decode()

    found = json.loads(run(home, "search", "event_type:fileinfo", "--json", check=0).stdout)
    assert row["id"] in {g["capture_id"] for g in found["groups"]} and found["total_captures"] >= 1

    run(home, "label", row["id"], "Test Family", "--kind", "family", "--note", "from the CLI test", check=0)
    assert row["id"][:16] in run(home, "search", 'family:"test family"', check=0).stdout.decode()
    labels = json.loads(run(home, "label", row["id"], "--json", check=0).stdout)
    assert [(x["kind"], x["value"], x["source"]) for x in labels] == [("family", "Test Family", "cli")]
    sha = summary["files"][0]["sha256"]
    pivot = json.loads(run(home, "ioc", sha, "--json", check=0).stdout)
    assert [c["capture_id"] for c in pivot["captures"]] == [row["id"]]
    assert pivot["captures"][0]["labels"][0]["value"] == "Test Family"
    assert "no other capture" in run(home, "similar", row["id"], check=0).stdout.decode()

    out = tmp_path / "orig.pcap"
    run(home, "export", row["id"], "--format", "pcap", "-o", str(out), check=0)
    assert out.read_bytes() == (PCAPS / "sv-http-4files.pcap").read_bytes()
    eve = run(home, "export", row["id"], "--format", "eve", check=0).stdout.decode().splitlines()
    assert len(eve) == sum(row["counts"].values()) + 1  # + Suricata's stats record
    table = list(csv.DictReader(io.StringIO(
        run(home, "export", row["id"], "--format", "csv", "--type", "http", check=0).stdout.decode())))
    assert len(table) == 2 and "http.hostname" in table[0]


def test_unknown_capture_is_a_clear_error(home):
    p = run(home, "show", "0" * 64, check=1)
    assert b"no capture" in p.stderr


def test_fields_lists_the_catalogue(home):
    names = {r["name"] for r in json.loads(run(home, "fields", "--json", check=0).stdout)}
    assert {"dns.rrname", "src_ip", "ip", "domain", "hash", "capture", "finding", "hunt", "yara"} <= names


def test_python_dash_m_is_the_same_command(home):
    env = {**os.environ, **home_env(home)}
    p = subprocess.run([sys.executable, "-m", "packettotal", "fields", "--json"], capture_output=True, env=env,
                       timeout=60, cwd=ROOT)
    assert p.returncode == 0 and p.stdout == run(home, "fields", "--json", check=0).stdout
    assert subprocess.run([sys.executable, "-m", "packettotal", "show"], capture_output=True, env=env,
                          timeout=60, cwd=ROOT).returncode == 2


def test_one_capture_under_two_names_and_the_database_closed(tmp_path):
    home = tmp_path / "home"
    copy = tmp_path / "same-bytes.pcap"
    copy.write_bytes((PCAPS / "sv-icmp-echo.pcap").read_bytes())
    rows = json.loads(run(home, "analyze", "--json", str(PCAPS / "sv-icmp-echo.pcap"), str(copy), check=0).stdout)
    assert [r["name"] for r in rows] == ["sv-icmp-echo.pcap", "same-bytes.pcap"]
    assert rows[0]["id"] == rows[1]["id"] and {r["status"] for r in rows} == {"done"}
    # the command closed its connections: SQLite folded its write-ahead log into the database
    if not ON_PG:
        assert (home / "packettotal.sqlite").exists() and not (home / "packettotal.sqlite-wal").exists()


def test_output_that_cannot_be_written_is_not_a_success(home):
    env = {**os.environ, **home_env(home)}
    with open("/dev/full", "w") as full:
        p = subprocess.run([str(EXE), "search", "--help"], stdout=full, stderr=subprocess.PIPE, env=env, timeout=60)
    assert p.returncode != 0 and b"No space left on device" in p.stderr
