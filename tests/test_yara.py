"""YARA on carved files, for real: yara-x, real Suricata on dev captures, the files it carves.

Carved from the captures here (Suricata 7.0.10, this project's config):
- sv-smb-eicar-sll.pcap: `\\eicar`, 68 bytes, EICAR_SHA256 (the EICAR test file)
- sv-http-4files.pcap: f015179d… (truncated), 4e604bcd…, 0e3663a5…
- sv-http-pdf-download.pcap: suricata-update.pdf, 48d179a2…
- sv-ftp-multi-files.pcap: notepad.exe fefeac4c…, test.pdf 7d400735…
"""

import logging
import os
import time
from pathlib import Path

import pytest

from packettotal import cli
from packettotal.errors import QueryError, YaraError
from packettotal.ingest import yarascan
from packettotal.service import PacketTotal

from .conftest import PCAPS, analyse, settings, use_home
from .web import client

EICAR_SHA256 = "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"
OTHERS = {
    "sv-http-4files.pcap": {"f015179de8654b5f93d5ffbc13262aea34a0d29049a2991c105168e4aa67ade6",
                            "4e604bcd1c50d377790fd8304252ea8b0847f38ff7b5410a56a19e1add4f0eee",
                            "0e3663a5edace7c6082332946401484a52b8fe732aa54ff40ca60cb65c7cf2ef"},
    "sv-http-pdf-download.pcap": {"48d179a2f8d17331446c7a75a082851eee9ad841705ed5fbce730f51a0598d62"},
    "sv-ftp-multi-files.pcap": {"fefeac4c10bbe237cc6c861229ecaacbd2a366ac4fbd04a3862b62bd7a778093",
                                "7d400735ff3054837da5d92a10ad2faa8b6825f100dc167a6b008e753015b382"},
}
PDFS = {"48d179a2f8d17331446c7a75a082851eee9ad841705ed5fbce730f51a0598d62",
        "7d400735ff3054837da5d92a10ad2faa8b6825f100dc167a6b008e753015b382"}
SCRIPT = "<script>alert(1)</script>"
EICAR_RULE = f"""
rule PT_EICAR_test : eicar testfile {{
  meta:
    description = "the EICAR test file {SCRIPT}"
    score = 5
  strings:
    $eicar = "EICAR-STANDARD-ANTIVIRUS-TEST-FILE!"
    $start = {{ 58 35 4F 21 50 25 }}
  condition:
    $eicar and $start at 0
}}
"""
PDF_RULE = 'rule PT_pdf_header { strings: $pdf = "%PDF-1." condition: $pdf at 0 }'


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("yara-home")


@pytest.fixture(scope="module")
def rules_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("yara-rules")
    (folder / "eicar.yar").write_text(EICAR_RULE)
    return folder


@pytest.fixture(scope="module")
def pt(home, rules_dir):
    service = PacketTotal(settings(home, yara_rules_dir=rules_dir))
    yield service
    service.close()


@pytest.fixture(scope="module")
def analysed(pt) -> dict[str, dict]:
    return {name: analyse(pt, PCAPS / name) for name in ("sv-smb-eicar-sll.pcap", *OTHERS)}


def test_own_rule_matches_the_eicar_file_carved_from_smb_and_nothing_else(pt, analysed):
    version = pt.yara_status()["version"]
    files = pt.capture_files(analysed["sv-smb-eicar-sll.pcap"]["id"])
    assert [(f["sha256"], f["stored"]) for f in files] == [(EICAR_SHA256, True)]
    scan = files[0]["yara"]
    assert scan["version"] == version and scan["error"] is None
    assert scan["matches"] == [{
        "rule": "PT_EICAR_test", "namespace": "eicar.yar", "tags": ["eicar", "testfile"],
        "meta": {"description": f"the EICAR test file {SCRIPT}", "score": 5},
        "strings": [{"id": "$eicar", "offsets": [28]}, {"id": "$start", "offsets": [0]}]}]
    for name, shas in OTHERS.items():
        files = pt.capture_files(analysed[name]["id"])
        assert {f["sha256"] for f in files if f["stored"]} == shas, name
        assert all(f["yara"]["version"] == version and f["yara"]["matches"] == [] for f in files), name


def test_yara_search_returns_exactly_the_eicar_capture(pt, analysed):
    eicar = analysed["sv-smb-eicar-sll.pcap"]["id"]
    for q in ("yara:PT_EICAR_test", "yara:pt_eicar*", "yara:*EICAR?test", "yara:*", "yara:PT_EICAR_test AND smb"):
        assert [g["capture_id"] for g in pt.search(q).groups] == [eicar], q
    assert pt.search("yara:PT_EICAR").groups == []
    assert eicar not in {g["capture_id"] for g in pt.search("NOT yara:PT_EICAR_test").groups}
    with pytest.raises(QueryError, match="YARA rule name"):
        pt.search("yara:[a TO b]")


def test_a_broken_rule_file_is_refused_with_the_librarys_message_and_the_old_rules_stay(pt, analysed, home,
                                                                                      rules_dir, caplog):
    before = pt.yara_status()
    bad = rules_dir / "broken.yar"
    bad.write_text('rule ok { condition: true }\nrule broken { strings: $a = "x" condition: $a and }\n')
    try:
        with caplog.at_level(logging.ERROR, logger="packettotal"):
            status = pt.yara_status()
        assert status["error"].startswith("YARA refused broken.yar: error[E001]: syntax error")
        assert f"{bad}:2:" in status["error"]  # the library names the file and the line
        assert any("broken.yar" in r.getMessage() and "last good YARA rules stay" in r.getMessage()
                   for r in caplog.records)
        assert (status["version"], status["rules"], status["files"]) == (before["version"], 1, ["eicar.yar"])
        # and in a process started now, from the compiled copy in the home folder
        cached = yarascan.Watcher(rules_dir, home / "yara" / "rules.bin")
        assert cached.current.version == before["version"] and cached.error == status["error"]
        other = yarascan.Watcher(home / "no-such-folder", home / "yara" / "rules.bin")
        assert other.current is None and "is not a folder" in other.error  # another folder's rules are not used
        # still in use: a scan now gives the old rules' match
        scans = pt.yara_rescan()
        assert scans["error"] == status["error"] and scans["version"] == before["version"] and scans["matched"] == 1
    finally:
        bad.unlink()
    assert pt.yara_status()["error"] is None


def test_compile_names_an_unreadable_folder(tmp_path):
    with pytest.raises(YaraError, match="is not a folder"):
        yarascan.compile(tmp_path / "missing")
    (tmp_path / "latin1.yar").write_bytes(b"rule r { meta: a = \"\xe9\" condition: true }")
    with pytest.raises(YaraError, match="cannot read YARA rule file .*latin1.yar"):
        yarascan.compile(tmp_path)


def test_scan_bounds_and_timeout(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    tags = " ".join(f"t{j}" for j in range(30))
    meta = " ".join(f'm{j} = "{"v" * 300}"' for j in range(30))
    strings = " ".join(f'$s{j} = "a{j:02}"' for j in range(15))
    many = "\n".join(f"rule r{i} : {tags} {{ meta: {meta} strings: {strings} condition: any of them }}"
                     for i in range(60))
    (folder / "many.yar").write_text(many)
    (folder / "slow.yara").write_text("rule slow { condition: filesize > 5000 and "
                                      "for all i in (0..filesize) : (for all j in (0..filesize) : (uint8(i) >= 0)) }")
    rules = yarascan.compile(folder)
    assert rules.count == 61 and rules.files == ("many.yar", "slow.yara")
    sample = tmp_path / "sample"
    sample.write_bytes(b"".join(b"a%02d" % j for j in range(15)) * 20)  # every string, 20 times
    found = yarascan.scan(rules, sample, timeout=5, max_bytes=1 << 20)
    assert len(found.matches) == yarascan.MAX_RULES and found.error == "60 rules matched: the first 50 kept"
    m = found.matches[0]
    assert len(m["tags"]) == len(m["meta"]) == yarascan.MAX_ITEMS
    assert all(len(v) == yarascan.MAX_TEXT + 1 and v.endswith("…") for v in m["meta"].values())
    assert len(m["strings"]) == yarascan.MAX_STRINGS
    assert all(len(s["offsets"]) == yarascan.MAX_OFFSETS for s in m["strings"])
    assert yarascan.scan(rules, sample, timeout=5, max_bytes=100).error == \
        "not scanned: 900 bytes, above yara_max_bytes (100)"
    sample.write_bytes(b"x" * 100_000)
    started = time.monotonic()
    assert yarascan.scan(rules, sample, timeout=1, max_bytes=1 << 20) == \
        yarascan.Scan([], "timed out after 1 s (setting yara_timeout)")
    assert time.monotonic() - started < 3


def test_cli_retro_scan_finds_a_new_rule_in_files_stored_before(pt, analysed, home, rules_dir, tmp_path, capsys,
                                                                monkeypatch):
    use_home(monkeypatch, home)
    rows = {name: pt.capture(row["id"]) for name, row in analysed.items()}
    (rules_dir / "pdf.yara").write_text(PDF_RULE)
    config = tmp_path / "config.toml"
    config.write_text(f'home = "{home}"\nyara_rules_dir = "{rules_dir}"\nengines = 1\n')
    try:
        assert cli.run(["--config", str(config), "yara", "scan", "--json"]) == 0
        out = capsys.readouterr().out
        assert '"files": 7' in out and '"matched": 3' in out and '"matches": 3' in out and '"rules": 2' in out
        assert cli.run(["--config", str(config), "yara", "status"]) == 0
        out = capsys.readouterr().out
        assert "rules   2 from 2 files" in out and "7 stored, 0 not scanned by these rules" in out
    finally:
        (rules_dir / "pdf.yara").unlink()
    matched = {f["sha256"]: [m["rule"] for m in f["yara"]["matches"]]
               for row in rows.values() for f in pt.capture_files(row["id"]) if f["yara"]["matches"]}
    assert matched == {EICAR_SHA256: ["PT_EICAR_test"]} | dict.fromkeys(PDFS, ["PT_pdf_header"])
    assert {g["capture_id"] for g in pt.search("yara:pt_pdf_header").groups} == \
        {analysed["sv-http-pdf-download.pcap"]["id"], analysed["sv-ftp-multi-files.pcap"]["id"]}
    for name, row in rows.items():  # no re-analysis
        assert pt.capture(row["id"])["finished_at"] == row["finished_at"], name


def test_files_tab_pivot_and_api_show_the_matches_escaped(pt, analysed, home, rules_dir):
    cid = analysed["sv-smb-eicar-sll.pcap"]["id"]
    c = client(home, yara_rules_dir=rules_dir)
    try:
        for url in (f"/captures/{cid}/tab/fileinfo", f"/ioc/{EICAR_SHA256}"):
            page = c.get(url)
            assert page.status_code == 200, url
            assert "PT_EICAR_test" in page.text and "eicar.yar" in page.text and "$eicar" in page.text, url
            assert "the EICAR test file &lt;script&gt;alert(1)&lt;/script&gt;" in page.text, url
            assert SCRIPT not in page.text, url
        assert 'href="/search?q=yara%3A%22PT_EICAR_test%22"' in c.get(f"/captures/{cid}/tab/fileinfo").text
        files = c.get(f"/api/v1/captures/{cid}/files").json()
        status = c.get("/api/v1/yara").json()
        # (the rules changed since the retro-scan test: this status call starts the background re-scan
        # the next test waits for)
        assert status["rules"] == 1 and status["stored_files"] == 7 and len(files[0]["yara"]["version"]) == 64
        assert files[0]["yara"]["matches"][0] | {"meta": None} == {
            "rule": "PT_EICAR_test", "namespace": "eicar.yar", "tags": ["eicar", "testfile"], "meta": None,
            "strings": [{"id": "$eicar", "offsets": [28]}, {"id": "$start", "offsets": [0]}]}
        assert files[0]["yara"]["matches"][0]["meta"]["description"].endswith(SCRIPT)  # JSON: as written
        assert c.get(f"/api/v1/ioc/{EICAR_SHA256}").json()["yara"][0]["matches"][0]["rule"] == "PT_EICAR_test"
        hits = c.get("/api/v1/search", params={"q": "yara:PT_EICAR_test"}).json()
        assert [g["capture_id"] for g in hits["groups"]] == [cid]
    finally:
        c.app.state.instance.stop()


def test_serve_rescans_in_the_background_after_the_rules_change(pt, analysed, home, rules_dir):
    c = client(home, yara_rules_dir=rules_dir)
    try:
        assert c.post("/api/v1/yara/scan").status_code == 202
        (rules_dir / "pdf.yara").write_text(PDF_RULE)
        os.utime(rules_dir / "pdf.yara")
        status = c.get("/api/v1/yara").json()  # the folder is checked here: changed, a re-scan is queued
        assert status["rules"] == 2
        deadline = time.monotonic() + 20
        while status["stale_files"] or status["rescan"]["running"]:
            assert time.monotonic() < deadline, status
            time.sleep(0.05)
            status = c.get("/api/v1/yara").json()
        assert status["rescan"]["error"] is None and status["rescan"]["last"]["version"] == status["version"]
        pdf = analysed["sv-http-pdf-download.pcap"]["id"]
        assert [m["rule"] for m in c.get(f"/api/v1/captures/{pdf}/files").json()[0]["yara"]["matches"]] == \
            ["PT_pdf_header"]
    finally:
        c.app.state.instance.stop()
        (rules_dir / "pdf.yara").unlink(missing_ok=True)


def test_rescan_without_rules_is_refused(tmp_path):
    c = client(tmp_path)
    try:
        r = c.post("/api/v1/yara/scan")
        assert r.status_code == 409 and r.json() == {
            "error": "yara", "detail": "no YARA rules: set yara_rules_dir to a folder of *.yar files"}
        assert c.get("/api/v1/yara").json()["folder"] is None
    finally:
        c.app.state.instance.stop()
