"""`packettotal analyze` for batch work: folders walked (captures told by content), labels given
at submission, a running instance as the target (--server), and a home a `serve` holds."""

import gzip
import json
import shutil
import time
from pathlib import Path

import httpx
import pytest


from .conftest import PCAPS, home_env
from .test_cli import run
from .test_web_limits import serving

CAPTURES = ("sv-icmp-echo.pcap", "dpkt-http.pcap", "scapy-http_chunk.pcap.gz")


@pytest.fixture
def folder(tmp_path) -> Path:
    """Real captures under misleading names, nested, beside files that are not captures."""
    d = tmp_path / "batch"
    (d / "nested" / "deeper").mkdir(parents=True)
    shutil.copy(PCAPS / CAPTURES[0], d / "first.pcap")
    shutil.copy(PCAPS / CAPTURES[1], d / "nested" / "no-extension")
    shutil.copy(PCAPS / CAPTURES[2], d / "nested" / "deeper" / "looks-like.txt")  # gzip of a pcap
    (d / "notes.pcap").write_text("<!DOCTYPE html><html><body>not a capture</body></html>\n")
    (d / "nested" / "readme.gz").write_bytes(gzip.compress(b"plain words, compressed\n" * 20))
    (d / "nested" / "empty.pcapng").write_bytes(b"")
    return d


def _names(rows: list[dict]) -> list[str]:
    return [r["name"] for r in rows]


def test_a_folder_is_walked_and_what_is_not_a_capture_is_skipped_with_why(folder, tmp_path):
    p = run(tmp_path / "home", "analyze", "--json", str(folder), check=0)
    rows = json.loads(p.stdout)
    assert _names(rows) == ["first.pcap", "no-extension", "looks-like.txt"]  # walked in name order
    assert {r["status"] for r in rows} == {"done"} and all(r["packets"] > 0 for r in rows)
    skipped = p.stderr.decode().splitlines()
    assert skipped == [  # walked folder by folder, names sorted
        f"skipped {folder / 'notes.pcap'}: HTML document, not a packet capture",
        f"skipped {folder / 'nested' / 'empty.pcapng'}: the file is empty",
        f"skipped {folder / 'nested' / 'readme.gz'}: gzip-compressed ASCII text, not a packet capture",
    ]
    # the same captures given one by one are the same analyses
    single = json.loads(run(tmp_path / "home", "analyze", "--json", str(PCAPS / CAPTURES[1]), check=0).stdout)
    assert single[0]["id"] == rows[1]["id"]


def test_a_file_given_by_name_is_still_refused_not_skipped(folder, tmp_path):
    p = run(tmp_path / "home", "analyze", "--json", str(folder / "notes.pcap"), check=1)
    rows = json.loads(p.stdout)
    assert rows[0]["status"] == "refused" and rows[0]["error"].startswith("HTML document, not a packet capture")


def test_a_folder_without_captures_exits_1(tmp_path):
    d = tmp_path / "none"
    d.mkdir()
    (d / "a.txt").write_text("text\n")
    p = run(tmp_path / "home", "analyze", str(d), check=1)
    assert p.stdout == b"" and "no packet capture to analyse" in p.stderr.decode()


def test_labels_at_submission(folder, tmp_path):
    home = tmp_path / "home"
    rows = json.loads(run(home, "analyze", "--json", "--label", "family:Batch Family", "--label", "tag:run-7",
                          str(folder / "first.pcap"), check=0).stdout)
    labels = json.loads(run(home, "label", rows[0]["id"], "--json", check=0).stdout)
    assert sorted((x["kind"], x["value"], x["source"]) for x in labels) == [
        ("family", "Batch Family", "cli"), ("tag", "run-7", "cli")]
    found = json.loads(run(home, "search", 'family:"batch family" AND tag:run-7', "--json", check=0).stdout)
    assert [g["capture_id"] for g in found["groups"]] == [rows[0]["id"]]
    # a known capture given again gets the new label too
    run(home, "analyze", "--label", "campaign:second look", str(folder / "first.pcap"), check=0)
    kinds = {x["kind"] for x in json.loads(run(home, "label", rows[0]["id"], "--json", check=0).stdout)}
    assert kinds == {"family", "tag", "campaign"}


@pytest.mark.parametrize("bad", ["Emotet", "colour:red", "family:", "tag:" + "x" * 101])
def test_a_bad_label_is_a_usage_error_before_anything_is_done(bad, folder, tmp_path):
    home = tmp_path / "home"
    p = run(home, "analyze", "--label", bad, str(folder), check=2)
    assert p.stdout == b"" and len(p.stderr.decode().splitlines()) == 1
    assert not (home / "packettotal.sqlite").exists()


def test_server_gives_the_same_rows_as_here(folder, tmp_path):
    here = json.loads(run(tmp_path / "local", "analyze", "--json", str(folder), str(folder / "notes.pcap"),
                          check=1).stdout)
    with serving(tmp_path / "served", allowed_hosts="127.0.0.1") as live:
        p = run(tmp_path / "unused", "analyze", "--json", "--server", live.base, "--label", "actor:Remote Actor",
                str(folder), str(folder / "notes.pcap"), check=1)
        there = json.loads(p.stdout)
        assert there == here  # ids, statuses, packets, counts, alerts, findings; the refusal's reason
        labels = httpx.get(f"{live.base}/api/v1/captures/{there[0]['id']}/labels", timeout=10).json()
        assert [(x["kind"], x["value"], x["source"]) for x in labels] == [("actor", "Remote Actor", "api")]
        again = json.loads(run(tmp_path / "unused", "analyze", "--json", "--server", live.base,
                               str(folder / "first.pcap"), check=0).stdout)  # known there: its row at once
        assert again == here[:1]
    assert "skipped" in p.stderr.decode()
    assert not (tmp_path / "unused").exists()  # nothing analysed or stored here


def test_server_that_does_not_answer_is_one_line(folder, tmp_path):
    p = run(tmp_path / "home", "analyze", "--server", "http://127.0.0.1:9", str(folder / "first.pcap"), check=1)
    lines = p.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("packettotal: http://127.0.0.1:9 did not answer")
    assert "Traceback" not in p.stderr.decode()


def test_analyze_beside_serve_is_done_and_its_events_searchable_through_serve(folder, tmp_path):
    """`analyze` on a home a `serve` holds analyses here, spools, and the serve's indexer indexes:
    the same rows as alone, and the serve finds the events."""
    home = tmp_path / "home"
    alone = json.loads(run(tmp_path / "alone", "analyze", "--json", str(folder / "first.pcap"), check=0).stdout)
    with serving(home, allowed_hosts="127.0.0.1") as live:
        p = run(home, "analyze", "--json", str(folder / "first.pcap"), check=0)
        rows = json.loads(p.stdout)
        assert "holds this home's event index" in p.stderr.decode() and "Traceback" not in p.stderr.decode()
        cid = rows[0]["id"]
        got = httpx.get(f"{live.base}/api/v1/captures/{cid}", timeout=10).json()
        events = httpx.get(f"{live.base}/api/v1/captures/{cid}/events", params={"limit": 1}, timeout=10).json()
        found = httpx.get(f"{live.base}/api/v1/search", params={"q": "event_type:flow"}, timeout=10).json()
    assert [r["status"] for r in rows] == ["done"] and got["status"] == "done"
    assert {k: v for k, v in rows[0].items() if k != "seconds"} == {k: v for k, v in alone[0].items() if k != "seconds"}
    assert events["total"] > 0
    assert [g["capture_id"] for g in found["groups"]] == [cid] and found["total_hits"] > 0
    assert not list((home / "spool").iterdir())  # the entry went once indexed


def test_the_serve_command_holds_its_home_from_its_start(folder, tmp_path):
    """`packettotal serve` itself (a process of its own, nothing uploaded yet): `analyze` on its
    home is done through its indexer; a second `serve` stops with one line."""
    import os
    import socket
    import subprocess

    from .test_cli import EXE
    home = tmp_path / "home"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, **home_env(home), "PACKETTOTAL_ENGINES": "1"}
    served = subprocess.Popen([str(EXE), "serve", "--port", str(port), "--no-demo"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/captures", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert served.poll() is None and time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        p = run(home, "analyze", "--json", str(folder))
        assert p.returncode == 0 and "Traceback" not in p.stderr.decode(), p.stderr.decode()
        rows = json.loads(p.stdout)
        assert [r["status"] for r in rows] == ["done"] * 3
        second = run(home, "serve", "--port", str(port), "--no-demo")  # stops before it would listen
        assert second.returncode == 2 and "another PacketTotal process" in second.stderr.decode()
        listed = httpx.get(f"http://127.0.0.1:{port}/api/v1/captures", timeout=5).json()
        assert sorted(c["id"] for c in listed) == sorted(r["id"] for r in rows)
        assert all(c["status"] == "done" for c in listed)
    finally:
        served.terminate()
        served.wait(30)
