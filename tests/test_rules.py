"""Rulesets managed with suricata-update (ingest/rules.py), on small local sources the tests write:
real suricata-update, real `suricata -T`, one small daemon. ET Open's run is test_rules_etopen.py."""

import hashlib
import io
import json
import tarfile
import time

import pytest

from packettotal import cli
from packettotal.errors import RulesetError
from packettotal.ingest import rules
from packettotal.service import PacketTotal

from .conftest import PCAPS, analyse, settings, use_home

ONE = 'alert http any any -> any any (msg:"PT test one"; content:"zzqq"; sid:9300001; rev:1;)'
TWO = 'alert dns any any -> any any (msg:"PT test google"; dns.query; content:"google.com"; sid:9300002; rev:1;)'
OFF = '#alert tcp any any -> any any (msg:"PT test off"; content:"qqzz"; sid:9300003; rev:1;)'
BROKEN = 'alert http any any -> any any (msg:"PT test broken"; content:"x"; nosuchkeyword; sid:9300009; rev:1;)'
ESCAPES = 'alert http any any -> any any (msg:"PT test \x1b[31mred"; content:"x"; sid:9300008; rev:1;)'


def folder(path, files: dict[str, list[str]]):
    path.mkdir(parents=True, exist_ok=True)
    for name, lines in files.items():
        (path / name).write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def tiny(tmp_path):
    """Settings and a home with the folder source `tiny` installed: ONE, TWO enabled, OFF not."""
    s = settings(tmp_path / "home")
    src = folder(tmp_path / "tiny", {"a.rules": [ONE, TWO], "b.rules": [OFF]})
    return s, src, rules.add(s, str(src))


def merged_text(s) -> str:
    return (s.rules_dir / "suricata.rules").read_text()


def test_a_folder_source_is_merged_under_the_home_with_a_version(tiny):
    s, src, ruleset = tiny
    text = merged_text(s)
    assert ONE in text and TWO in text and "# alert tcp any any -> any any (msg:\"PT test off\"" in text
    assert (ruleset.enabled, ruleset.disabled) == (2, 1)
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert ruleset.sha256 == digest
    assert ruleset.version == f"{time.strftime('%Y-%m-%d', time.gmtime())}.{digest[:12]}"
    assert rules.installed(s) == ruleset
    [source] = rules.sources(s)
    assert (source.name, source.folder) == ("tiny", src)
    assert source.url == (s.rules_dir / "folders" / "tiny.tar").as_uri()
    # suricata-update's own files are in its data dir under the home
    assert (s.rules_dir / "data" / "update" / "sources" / "tiny.yaml").is_file()
    assert list((s.rules_dir / "data" / "update" / "cache").glob("*-tiny.tar"))


def test_enable_and_disable_write_suricata_update_filters_and_re_merge(tiny):
    s, _, first = tiny
    off = rules.set_filter(s, "disable", "9300001")
    assert (s.rules_dir / "disable.conf").read_text() == "9300001\n"
    assert (off.enabled, off.disabled) == (1, 2) and off.version != first.version
    assert f"# {ONE}" in merged_text(s)
    on = rules.set_filter(s, "enable", "9300001")  # the same spec leaves disable.conf
    assert (s.rules_dir / "disable.conf").read_text() == ""
    assert (s.rules_dir / "enable.conf").read_text() == "9300001\n"
    assert on.version == first.version  # the same content: the same version
    assert rules.set_filter(s, "enable", "re:PT test off").enabled == 3
    assert rules.set_filter(s, "disable", "group:a").enabled == 2  # a.rules less ONE (enable.conf wins)
    assert f"# {TWO}" in merged_text(s) and f"\n{ONE}" in "\n" + merged_text(s)
    assert rules.filters(s) == {"enable": ["9300001", "re:PT test off"], "disable": ["group:a"]}


@pytest.mark.parametrize("spec, says", [
    ("nonsense", "does not name rules"), ("group:", "does not name rules"),
    ("re:(", "not a regular expression"), ("1\n2", "does not name rules")])
def test_a_bad_filter_is_refused_and_changes_nothing(tiny, spec, says):
    s, _, ruleset = tiny
    (s.rules_dir / "disable.conf").write_text("# mine\n2019401\n")
    with pytest.raises(RulesetError, match=says):
        rules.set_filter(s, "disable", spec)
    assert (s.rules_dir / "disable.conf").read_text() == "# mine\n2019401\n"
    assert not (s.rules_dir / "enable.conf").exists() and rules.installed(s) == ruleset


@pytest.mark.parametrize("rule, says", [
    (BROKEN, "Error: detect-parse: unknown rule keyword 'nosuchkeyword'."),
    (ESCAPES, "Error: detect-parse: rule contains invalid (control) characters")])
def test_a_broken_rule_is_refused_with_suricatas_words_and_the_old_ruleset_stays(tiny, tmp_path, rule, says):
    s, _, ruleset = tiny
    before = merged_text(s)
    bad = folder(tmp_path / "bad", {"x.rules": [rule]})
    with pytest.raises(RulesetError) as caught:
        rules.add(s, str(bad))
    message = caught.value.message
    assert message.startswith("Suricata refused the merged ruleset (suricata -T); the installed one is unchanged")
    assert says in message
    shown = rule.replace("\x1b", "?")  # the rule's text as Suricata quotes it, made printable
    assert f'error parsing signature "{shown}" from file the merged rules' in message and "\x1b" not in message
    assert str(s.rules_dir) not in message  # no temporary paths
    assert rules.installed(s) == ruleset and merged_text(s) == before
    assert [x.name for x in rules.sources(s)] == ["tiny"]  # the refused source is not kept
    assert not (s.rules_dir / "folders" / "bad.tar").exists()


def test_a_filter_whose_merge_is_refused_puts_the_filter_files_back(tiny, tmp_path):
    s = tiny[0]
    rules.add(s, str(folder(tmp_path / "later", {"c.rules": ["#" + BROKEN]})))
    installed = rules.installed(s)
    with pytest.raises(RulesetError, match="unknown rule keyword 'nosuchkeyword'"):
        rules.set_filter(s, "enable", "9300009")
    assert not (s.rules_dir / "enable.conf").exists() and rules.installed(s) == installed


def test_a_remove_whose_merge_is_refused_keeps_the_source(tiny, tmp_path):
    s, _, _ = tiny
    rules.add(s, str(folder(tmp_path / "later", {"c.rules": [TWO.replace("9300002", "9300005")]})))
    before = rules.installed(s)
    # since then the user's own rules folder has taken one of tiny's sids
    mine = folder(tmp_path / "mine", {"m.rules": [ONE]})
    s = settings(s.home, user_rules_dir=mine)
    with pytest.raises(RulesetError, match="Duplicate signature"):
        rules.remove(s, "later")
    assert [x.name for x in rules.sources(s)] == ["later", "tiny"] and rules.installed(s) == before
    assert (s.rules_dir / "folders" / "later.tar").is_file()


def test_tar_gz_file_url_and_rules_file_sources(tmp_path):
    s = settings(tmp_path / "home")
    archive = tmp_path / "set.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        data = (ONE + "\n").encode()
        info = tarfile.TarInfo("rules/one.rules")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    single = tmp_path / "two.rules"
    single.write_text(TWO + "\n")
    rules.add(s, str(archive))
    assert rules.add(s, single.as_uri(), name="from-url").enabled == 2
    assert {(x.name, x.url, x.folder) for x in rules.sources(s)} == {
        ("set", archive.as_uri(), None), ("from-url", single.as_uri(), None)}
    assert ONE in merged_text(s) and TWO in merged_text(s)
    assert rules.remove(s, "set").enabled == 1
    assert rules.remove(s, "from-url") is None and rules.installed(s) is None


def test_rules_update_reads_a_folder_source_again(tiny):
    s, src, _ = tiny
    extra = 'alert tls any any -> any any (msg:"PT test tls"; tls.sni; content:"qq"; sid:9300004; rev:1;)'
    (src / "c.rules").write_text(extra + "\n")
    assert rules.update(s).enabled == 3 and extra in merged_text(s)


@pytest.mark.parametrize("source, says", [
    ("/nonexistent/rules", "no such file or folder"),
    ("https://example.invalid/x.tar.gz", "`rules add` takes a folder"),
    ("file:///nonexistent/x.tar.gz", "no such file"),
])
def test_a_bad_source_is_named(tmp_path, source, says):
    s = settings(tmp_path / "home")
    with pytest.raises(RulesetError, match=says):
        rules.add(s, source)
    assert rules.sources(s) == [] and rules.installed(s) is None


def test_a_folder_without_rules_a_non_archive_and_a_taken_name_are_refused(tiny, tmp_path):
    s, src, ruleset = tiny
    with pytest.raises(RulesetError, match="holds no .rules files"):
        rules.add(s, str(folder(tmp_path / "empty", {"notes.txt": ["x"]})))
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(RulesetError, match="neither a tar archive"):
        rules.add(s, str(text))
    with pytest.raises(RulesetError, match="already a source named 'tiny'"):
        rules.add(s, str(src))
    assert rules.installed(s) == ruleset


def test_the_engines_load_the_ruleset_and_each_capture_records_its_version(tiny, tmp_path, capsys, monkeypatch):
    s, _, ruleset = tiny
    use_home(monkeypatch, s.home)
    pt = PacketTotal(s)
    try:
        row = analyse(pt, PCAPS / "sv-dns-udp-txt.pcap")
        assert row["status"] == "done" and row["summary"]["suricata"]["ruleset"] == ruleset.version
        alerts = [e["event"]["alert"] for e in pt.capture_events(row["id"], "alert", limit=10).events]
        assert {(a["signature_id"], a["signature"]) for a in alerts} == {(9300002, "PT test google")}
    finally:
        pt.close()
    assert cli.run(["--home", str(s.home), "show", row["id"]]) == 0
    assert f"  ruleset {ruleset.version}\n" in capsys.readouterr().out


def test_the_rules_commands(tmp_path, capsys):
    home = str(tmp_path / "home")
    src = folder(tmp_path / "mine", {"a.rules": [ONE, TWO]})
    assert cli.run(["--home", home, "rules", "list"]) == 0
    assert "no sources" in capsys.readouterr().out
    assert cli.run(["--home", home, "rules", "add", str(src), "--name", "mine"]) == 0
    assert capsys.readouterr().out.startswith("ruleset ")
    assert cli.run(["--home", home, "rules", "disable", "re:google"]) == 0
    assert ": 1 rules enabled, 1 disabled" in capsys.readouterr().out
    assert cli.run(["--home", home, "rules", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["ruleset"]["enabled"] == 1 and status["disable"] == ["re:google"]
    assert [x["name"] for x in status["sources"]] == ["mine"]
    assert cli.run(["--home", home, "rules", "enable", "bogus"]) == 1
    assert "'bogus' does not name rules" in capsys.readouterr().err
