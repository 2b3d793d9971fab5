"""`packettotal analyze --server URL` with an API key (--api-key or PACKETTOTAL_API_KEY), against a
real instance in team mode on loopback: refused without it, done with it, the key never printed."""

import json

from .conftest import PCAPS
from .test_cli import run
from .test_web_limits import serving

ICMP = PCAPS / "sv-icmp-echo.pcap"


def test_analyze_server_sends_the_key_and_never_prints_it(tmp_path, monkeypatch):
    with serving(tmp_path / "served", mode="team", allowed_hosts="127.0.0.1") as live:
        accounts = live.app.state.instance.service.accounts
        accounts.add_user("ci", "analyst", "correct horse battery")
        row, key = accounts.create_key("ci", user="ci")
        monkeypatch.delenv("PACKETTOTAL_API_KEY", raising=False)
        refused = run(tmp_path / "unused", "analyze", "--json", "--server", live.base, str(ICMP), check=1)
        assert json.loads(refused.stdout)[0]["status"] == "refused"
        assert "API key" in json.loads(refused.stdout)[0]["error"]
        bad = run(tmp_path / "unused", "analyze", "--server", live.base, "--api-key", key[:-2] + "xx", str(ICMP),
                  check=1)
        given = run(tmp_path / "unused", "analyze", "--json", "--server", live.base, "--api-key", key, str(ICMP),
                    check=0)
        assert json.loads(given.stdout)[0]["status"] == "done"
        monkeypatch.setenv("PACKETTOTAL_API_KEY", key)
        from_env = run(tmp_path / "unused", "analyze", "--json", "--server", live.base, str(ICMP), check=0)
        assert json.loads(from_env.stdout) == json.loads(given.stdout)
        u = accounts.usage(accounts.by_key(key))
        assert u["uploads"] == 2 and u["requests"] >= 4  # two uploads, and their status requests
        for p in (refused, bad, given, from_env):
            out = p.stdout.decode() + p.stderr.decode()
            assert key not in out and key[12:] not in out
    assert not (tmp_path / "unused").exists()
