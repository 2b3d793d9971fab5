"""Settings: every bad value is refused naming the setting and its source; sources are recorded."""

import dataclasses
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from packettotal import cli, config
from packettotal.errors import ConfigError

from .conftest import ROOT

EXE = Path(sys.executable).parent / "packettotal"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    """No PACKETTOTAL_* variable of the caller's leaks into a test."""
    for key in list(os.environ):
        if key.upper().startswith(config.ENV_PREFIX):
            monkeypatch.delenv(key)
    monkeypatch.setenv("PACKETTOTAL_HOME", str(tmp_path / "home"))


def refused(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as exc:
        config.load(env=env)
    return exc.value.message


def test_the_reported_bad_values_are_refused_naming_the_setting():
    assert refused({"PACKETTOTAL_ENGINES": "0"}) == (
        "setting engines (from environment PACKETTOTAL_ENGINES): must be at least 1 (0 only on a web node with "
        "broker_url set), not 0")
    assert refused({"PACKETTOTAL_ENGINE_TIMEOUT": "-5"}) == (
        "setting engine_timeout (from environment PACKETTOTAL_ENGINE_TIMEOUT): must be a number above 0, not -5.0")
    assert refused({"PACKETTOTAL_HOME": ""}) == (
        "setting home (from environment PACKETTOTAL_HOME): must be a non-empty path, not ''")
    assert refused({"PACKETTOTAL_MAX_UPLOAD_BYTES": "-1"}) == (
        "setting max_upload_bytes (from environment PACKETTOTAL_MAX_UPLOAD_BYTES): must be at least 1, not -1")


@pytest.mark.parametrize("name, raw, problem", [
    ("engines", "two", "must be a whole number, not 'two'"),
    ("engines", "2.5", "must be a whole number, not '2.5'"),
    ("engines", "", "must be a whole number, not ''"),
    ("max_events_per_capture", "-1", "must be at least 0, not -1"),
    ("max_string_bytes", "10", "must be at least 64, not 10"),
    ("engine_timeout", "0", "must be a number above 0, not 0.0"),
    ("engine_timeout", "nan", "must be a number above 0, not nan"),
    ("engine_timeout", "inf", "must be a number above 0, not inf"),
    ("engine_timeout", "soon", "must be a number, not 'soon'"),
    ("suricata", " ", "must not be empty"),
    ("suricata_user", "pt user", "must be an account name or empty, not 'pt user'"),
    ("suricata_rules_dir", "  ", "must be a non-empty path, not '  '"),
    ("labelling", "everyone", "must be anyone or nobody, not 'everyone'"),
    ("allowed_hosts", "", "not ''"),
    ("allowed_hosts", "localhost,,example.com", "not ''"),
    ("allowed_hosts", "https://example.com", "not 'https://example.com'"),
    ("allowed_hosts", "example.com:8000", "not 'example.com:8000'"),
    ("allowed_hosts", "example.com evil.com", "not 'example.com evil.com'"),
    ("allowed_hosts", "-bad.example", "not '-bad.example'"),
    ("allowed_hosts", "pt..lan", "not 'pt..lan'"),
    ("allowed_hosts", "x" * 64 + ".lan", "not '" + "x" * 64 + ".lan'"),
])
def test_every_bad_value_names_its_setting_and_source(name, raw, problem):
    message = refused({"PACKETTOTAL_" + name.upper(): raw})
    assert message.startswith(f"setting {name} (from environment PACKETTOTAL_{name.upper()}): ")
    assert message.endswith(problem)


def test_good_values_are_accepted_and_converted():
    s = config.load(env={"PACKETTOTAL_HOME": "~/pt",
                         "PACKETTOTAL_ALLOWED_HOSTS": "*.example.com, 10.0.0.1,::1,pt.lan",
                         "PACKETTOTAL_SURICATA_USER": "", "PACKETTOTAL_USER_RULES_DIR": "",
                         "PACKETTOTAL_MAX_EVENTS_PER_CAPTURE": "0", "PACKETTOTAL_ENGINE_TIMEOUT": "2.5",
                         "PACKETTOTAL_ENGINES": " 3 ", "PACKETTOTAL_LABELLING": "nobody"})
    assert s.home == Path("~/pt").expanduser() and s.user_rules_dir is None and s.suricata_user == ""
    assert (s.max_events_per_capture, s.engine_timeout, s.engines, s.labelling) == (0, 2.5, 3, "nobody")
    assert config.load(env={"PACKETTOTAL_ALLOWED_HOSTS": "*"}).allowed_hosts == "*"


def test_every_problem_is_reported_at_once():
    message = refused({"PACKETTOTAL_ENGINES": "0", "PACKETTOTAL_LABELLING": "all"})
    assert message.count("setting ") == 2 and "engines" in message and "labelling" in message


def test_file_values_are_checked_by_type(tmp_path):
    f = tmp_path / "pt.toml"
    for body, problem in [("engines = 2.5", "must be a whole number, not 2.5"),
                          ("engines = true", "must be a whole number, not True"),
                          ("suricata = 5", "must be text, not 5"),
                          ("home = 7", "must be a non-empty path, not 7"),
                          ("engine_timeout = -1", "must be a number above 0, not -1.0"),
                          ("[labelling]\nwho = 'anyone'", "must be text, not {'who': 'anyone'}")]:
        f.write_text(body + "\n")
        with pytest.raises(ConfigError) as exc:
            config.load(f, env={})
        assert exc.value.message.startswith(f"setting {body.strip('[').split()[0].rstrip(']')} (from file {f}): ")
        assert exc.value.message.endswith(problem)


def test_file_errors_name_the_file_and_the_nearest_setting(tmp_path):
    f = tmp_path / "pt.toml"
    f.write_text("engnies = 2\n")
    with pytest.raises(ConfigError, match=re.escape(f"config file {f}: 'engnies' is not a setting "
                                                    "(did you mean engines?)")):
        config.load(f, env={})
    f.write_text("engines = \n")
    with pytest.raises(ConfigError, match=re.escape(f"cannot read config file {f} (from environment "
                                                    "PACKETTOTAL_CONFIG): ")):
        config.load(env={"PACKETTOTAL_CONFIG": str(f)})
    with pytest.raises(ConfigError, match="PACKETTOTAL_CONFIG is empty"):
        config.load(env={"PACKETTOTAL_CONFIG": ""})


def test_sources_are_recorded_for_default_file_environment_and_override(tmp_path):
    f = tmp_path / "pt.toml"
    f.write_text('engines = 3\nlabelling = "nobody"\nengine_timeout = 60\n')
    s = config.load(env={"PACKETTOTAL_CONFIG": str(f), "PACKETTOTAL_ENGINES": "4", "PACKETTOTAL_SURICATA": "/x"},
                    home=tmp_path / "h", suricata_user=None)
    assert (s.engines, s.labelling, s.engine_timeout, s.suricata, s.home) == (4, "nobody", 60.0, "/x", tmp_path / "h")
    assert dict(s.sources) == dict.fromkeys(config.SETTINGS_HELP, "default") | {
        "engines": "environment PACKETTOTAL_ENGINES", "suricata": "environment PACKETTOTAL_SURICATA",
        "labelling": f"file {f}", "engine_timeout": f"file {f}", "home": "override"}
    assert config.load(env={}, origin="command line", home="/srv/pt").sources["home"] == "command line"


def test_overrides_and_direct_construction_are_checked():
    web_only = r"\(0 only on a web node with broker_url set\)"
    with pytest.raises(ConfigError, match=rf"^setting engines \(from override\): must be at least 1 {web_only}, not 0"):
        config.load(env={}, engines=0)
    with pytest.raises(ConfigError, match="'engnes' is not a setting"):
        config.load(env={}, engnes=1)
    with pytest.raises(ConfigError, match=r"^setting max_upload_bytes: must be at least 1, not 0$"):
        config.Settings(max_upload_bytes=0)
    s = config.load(env={})
    with pytest.raises(ConfigError, match=r"^setting labelling \(default\): must be anyone or nobody"):
        dataclasses.replace(s, labelling="some")


def test_environment_typos_warn_naming_the_nearest_setting(caplog):
    with caplog.at_level(logging.WARNING, logger="packettotal"):
        s = config.load(env={"PACKETTOTAL_ENGNES": "0", "packettotal_engines": "3", "PACKETTOTAL_CONFG": "x",
                             "PACKETTOTAL_WORKERS": "4", "PACKETTOTAL_ENGINES": "1"})
    assert s.engines == 1
    assert sorted(caplog.messages) == [
        "environment variable PACKETTOTAL_CONFG is not a setting (did you mean PACKETTOTAL_CONFIG?); ignored",
        "environment variable PACKETTOTAL_ENGNES is not a setting (did you mean PACKETTOTAL_ENGINES?); ignored",
        "environment variable PACKETTOTAL_WORKERS is not a setting (`packettotal config` lists them); ignored",
        "environment variable packettotal_engines is not a setting (did you mean PACKETTOTAL_ENGINES?); ignored"]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="packettotal"):
        config.load(env={"PACKETTOTAL_ENGINES": "1", "PACKETTOTAL_CONFIG_DIR_OTHER": "", "PATH": "/bin"})
    assert caplog.messages == [("environment variable PACKETTOTAL_CONFIG_DIR_OTHER is not a setting "
                                "(`packettotal config` lists them); ignored")]


def test_config_command_lists_every_setting_with_its_source(tmp_path):
    f = tmp_path / "pt.toml"
    f.write_text('labelling = "nobody"\n')
    result = CliRunner().invoke(cli.cli, ["--home", str(tmp_path / "h"), "--config", str(f), "config", "--json"],
                                env={"PACKETTOTAL_ENGINES": "1", "PACKETTOTAL_SURICATA_USER": ""})
    assert result.exit_code == 0, result.output
    rows = {r["setting"]: r for r in json.loads(result.stdout)}
    assert list(rows) == list(config.SETTINGS_HELP)
    assert rows["home"] | {"help": ""} == {"setting": "home", "value": str(tmp_path / "h"), "source": "command line",
                                           "help": ""}
    assert (rows["engines"]["value"], rows["engines"]["source"]) == (1, "environment PACKETTOTAL_ENGINES")
    assert (rows["labelling"]["value"], rows["labelling"]["source"]) == ("nobody", f"file {f}")
    assert (rows["engine_timeout"]["value"], rows["engine_timeout"]["source"]) == (900.0, "default")
    assert rows["user_rules_dir"]["value"] is None and rows["max_string_bytes"]["help"].startswith("Longest string")

    text = CliRunner().invoke(cli.cli, ["config"], env={"PACKETTOTAL_SURICATA_USER": "", "PACKETTOTAL_ENGINES": "1"})
    lines = text.stdout.splitlines()
    assert text.exit_code == 0 and lines[0].split() == ["setting", "value", "source", "help"]
    assert len(lines) == 1 + len(config.SETTINGS_HELP)
    row = {ln.split()[0]: ln for ln in lines[1:]}
    assert row["suricata_user"].split()[1:4] == ["(empty)", "environment", "PACKETTOTAL_SURICATA_USER"]
    assert row["user_rules_dir"].split()[1:3] == ["(none)", "default"]
    assert row["engines"].split()[1:4] == ["1", "environment", "PACKETTOTAL_ENGINES"]
    assert "Long-lived Suricata daemons" in row["engines"]


def test_a_bad_setting_is_one_line_and_exit_2(capsys, monkeypatch):
    monkeypatch.setenv("PACKETTOTAL_ENGINES", "0")
    assert cli.run(["config"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err == (
        "packettotal: setting engines (from environment PACKETTOTAL_ENGINES): must be at least 1 (0 only on a web "
        "node with broker_url set), not 0\n")
    monkeypatch.setenv("PACKETTOTAL_ENGINES", "1")
    assert cli.run(["--home", "", "fields"]) == 2
    assert capsys.readouterr().err == (
        "packettotal: setting home (from command line): must be a non-empty path, not ''\n")


@pytest.mark.parametrize("args", [["serve", "--port", "1"], ["config"], ["analyze", "x.pcap"]])
def test_the_script_refuses_bad_settings_before_starting(args, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(config.ENV_PREFIX)}
    env |= {"PACKETTOTAL_HOME": str(tmp_path / "h"), "PACKETTOTAL_ENGINE_TIMEOUT": "-1",
            "PACKETTOTAL_ENGINS": "1"}
    p = subprocess.run([str(EXE), *args], capture_output=True, text=True, env=env, timeout=60, cwd=ROOT,
                       check=False)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.splitlines() == [
        "environment variable PACKETTOTAL_ENGINS is not a setting (did you mean PACKETTOTAL_ENGINES?); ignored",
        ("packettotal: setting engine_timeout (from environment PACKETTOTAL_ENGINE_TIMEOUT): "
         "must be a number above 0, not -1.0")]
    assert not (tmp_path / "h").exists()  # nothing was started or created


def test_serve_refuses_a_listening_address_that_is_no_host_name(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(config.ENV_PREFIX)}
    env["PACKETTOTAL_HOME"] = str(tmp_path / "h")
    p = subprocess.run([str(EXE), "serve", "--host", "bad host", "--port", "1", "--no-demo"], capture_output=True,
                       text=True, env=env, timeout=60, cwd=ROOT, check=False)
    assert p.returncode == 2 and p.stderr.startswith(
        "packettotal: setting allowed_hosts (from serve --host, added to the default): must be host names")
    assert p.stderr.endswith(", not 'bad host'\n") and len(p.stderr.splitlines()) == 1


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE)
    assert documented == list(config.SETTINGS_HELP)
    assert "packettotal config" in section


def test_blob_root_holds_the_stored_captures_instead_of_the_home(tmp_path):
    from packettotal.service import PacketTotal

    from .conftest import PCAPS, settings
    shared = tmp_path / "shared-blobs"
    pt = PacketTotal(settings(tmp_path / "home", blob_root=shared))
    try:
        sub = pt.submit(PCAPS / "sv-icmp-echo.pcap", "echo.pcap")
        cid = sub.capture["id"]
        assert (shared / "captures" / cid[:2] / cid).is_file()
        assert not (tmp_path / "home" / "blobs" / "captures").exists()
    finally:
        pt.close()


def test_engines_0_is_a_web_only_node_with_a_broker_and_a_worker_refuses_it(capsys, monkeypatch):
    assert config.load(env={}, engines=0, broker_url="redis://127.0.0.1:6379/0").engines == 0
    monkeypatch.setenv("PACKETTOTAL_ENGINES", "0")
    monkeypatch.setenv("PACKETTOTAL_BROKER_URL", "redis://127.0.0.1:6379/0")
    assert cli.run(["worker"]) == 2
    assert capsys.readouterr().err == (
        "packettotal: packettotal worker runs Suricata: engines must be at least 1 here (0 is for web nodes)\n")
