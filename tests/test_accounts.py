"""Accounts: passwords and keys stored as hashes, keys refused once revoked, sessions rotated at
login, CSRF tokens on forms, the login rate limit, the audit log, and no secret in any log or
answer. The web parts run the real app (TestClient); the CLI runs the real command."""

from __future__ import annotations

import logging
import re
import time

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from packettotal import cli
from packettotal.errors import AccountError, TooManyLogins
from packettotal.store.db import make_engine, metadata
from packettotal.web.access import COOKIE

from .conftest import ON_PG, PCAPS, settings, use_home
from .web import client

PASSWORD = "correct horse battery"
ESPN = PCAPS / "cs-http_espn.pcapng"


@pytest.fixture
def team(tmp_path):
    with client(tmp_path / "home", mode="team") as c:
        accounts = c.app.state.instance.service.accounts
        accounts.add_user("ann", "analyst", PASSWORD)
        accounts.add_user("vic", "viewer", PASSWORD)
        yield c


def login(c, name="ann", password=PASSWORD, **extra):
    return c.post("/login", data={"name": name, "password": password, "next": "/", **extra})


def csrf_of(c) -> str:
    return c.app.state.instance.service.accounts.by_session(c.cookies[COOKIE]).csrf


def stored(home: Path) -> bytes:
    """What the database holds: the SQLite file (and its log), or every row of PostgreSQL's tables."""
    if not ON_PG:
        wal = home / "packettotal.sqlite-wal"
        return (home / "packettotal.sqlite").read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    engine = make_engine(settings(home).database)
    with engine.connect() as conn:
        rows = [r for t in metadata.sorted_tables for r in conn.execute(t.select())]
    engine.dispose()
    return repr(rows).encode()


def test_passwords_and_keys_are_stored_as_hashes_only(team, tmp_path):
    accounts = team.app.state.instance.service.accounts
    row, key = accounts.create_key("bot", user="ann")
    assert key.startswith(f"pt_{row['id']}_") and len(key) > 50
    raw = stored(tmp_path / "home")
    assert PASSWORD.encode() not in raw and key.encode() not in raw
    assert b"$argon2id$" in raw
    assert all(key not in str(r) for r in accounts.keys()) and "digest" not in accounts.keys()[0]


def test_a_key_works_either_header_and_is_refused_once_revoked(team):
    accounts = team.app.state.instance.service.accounts
    row, key = accounts.create_key("bot", user="vic")
    assert team.get("/api/v1/captures", headers={"authorization": f"Bearer {key}"}).status_code == 200
    assert team.get("/api/v1/captures", headers={"x-api-key": key}).status_code == 200
    wrong = key[:-1] + ("A" if key[-1] != "A" else "B")
    r = team.get("/api/v1/captures", headers={"x-api-key": wrong})
    assert r.status_code == 401 and wrong not in r.text and r.headers["www-authenticate"] == "Bearer"
    accounts.revoke_key(row["id"])
    r = team.get("/api/v1/captures", headers={"x-api-key": key})
    assert r.status_code == 401 and r.json()["error"] == "unauthorized"
    events = [a["event"] for a in accounts.audit()]
    assert events[:3] == ["key_revoked", "key_used", "key_created"]  # used twice within the hour: once


def test_a_disabled_user_loses_sessions_and_keys_at_once(team):
    accounts = team.app.state.instance.service.accounts
    _, key = accounts.create_key("bot", user="ann")
    assert login(team).status_code == 303 and team.get("/").status_code == 200
    accounts.disable_user("ann")
    assert team.get("/").headers["location"] == "/login?next=%2F"
    assert team.get("/api/v1/captures", headers={"x-api-key": key}).status_code == 401
    team.cookies.clear()
    assert login(team).status_code == 401


def test_login_sets_a_new_session_and_ends_the_one_presented(team):
    team.cookies.set(COOKIE, "planted-by-an-attacker", domain="testserver.local")
    r = login(team)
    assert r.status_code == 303 and r.headers["location"] == "/"
    first = team.cookies[COOKIE]
    assert first != "planted-by-an-attacker"
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    assert login(team).status_code == 403  # logging in again while logged in is a form post of a session
    assert login(team, csrf_token=csrf_of(team)).status_code == 303  # a new id, the old one ended
    second = team.cookies[COOKIE]
    assert second != first
    team.cookies.set(COOKIE, first, domain="testserver.local")
    assert team.get("/").status_code == 303
    team.cookies.set(COOKIE, second, domain="testserver.local")
    assert team.get("/").status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/", "/\t/evil.example/", "/\\evil.example", "https://evil.example/",
                                    "/ok\n", "javascript:alert(1)"])
def test_login_goes_back_only_to_a_path_of_this_site(team, target):
    r = login(team, next=target)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_login_goes_back_to_the_page_asked_for(team):
    assert login(team, next="/hunts?x=1").headers["location"] == "/hunts?x=1"


def test_a_session_ends_after_session_hours(tmp_path):
    with client(tmp_path / "h", mode="team", session_hours=0.0003) as c:  # about a second
        c.app.state.instance.service.accounts.add_user("ann", "analyst", PASSWORD)
        assert login(c).status_code == 303 and c.get("/").status_code == 200
        time.sleep(1.5)
        assert c.get("/").headers["location"] == "/login?next=%2F"


def test_cookies_are_secure_over_tls_or_when_told(tmp_path):
    with client(tmp_path / "a", mode="team", allowed_hosts="testserver") as c:
        c.app.state.instance.service.accounts.add_user("ann", "analyst", PASSWORD)
        c.base_url = "https://testserver"
        assert "Secure" in login(c).headers["set-cookie"]
    with client(tmp_path / "b", mode="team", secure_cookies="always") as c:
        c.app.state.instance.service.accounts.add_user("ann", "analyst", PASSWORD)
        assert "Secure" in login(c).headers["set-cookie"]


def test_every_form_post_of_a_session_needs_its_token(team):
    assert login(team).status_code == 303
    home = team.get("/").text
    token = csrf_of(team)
    assert f'name="csrf_token" value="{token}"' in home and f'content="{token}"' in home
    assert team.post("/logout").status_code == 403                          # no token
    assert team.post("/logout", data={"csrf_token": "x" * 43}).status_code == 403   # a wrong one
    r = team.post("/api/v1/captures", files={"file": ("a.pcap", b"x")})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]            # the script's upload too
    r = team.post("/logout", data={"csrf_token": token}, headers={"origin": "http://elsewhere.example"})
    assert r.status_code == 403                                             # the right token, from elsewhere
    r = team.post("/logout", data={"csrf_token": token}, headers={"referer": "http://elsewhere.example/x"})
    assert r.status_code == 403                                             # no Origin: the Referer is read
    assert team.post("/logout", data={"csrf_token": token}).status_code == 303
    assert team.get("/").status_code == 303


def test_login_is_rate_limited_per_account_and_per_address(team):
    accounts = team.app.state.instance.service.accounts
    for _ in range(5):
        with pytest.raises(AccountError):
            accounts.login("ann", "wrong password", "192.0.2.1")
    with pytest.raises(TooManyLogins):  # the right password, the same account, another address
        accounts.login("ann", PASSWORD, "192.0.2.2")
    for i in range(5):
        with pytest.raises(AccountError):
            accounts.login(f"nobody{i}", "wrong password", "192.0.2.9")
    with pytest.raises(TooManyLogins):  # another account, the same address
        accounts.login("vic", PASSWORD, "192.0.2.9")
    token, who = accounts.login("vic", PASSWORD, "192.0.2.3")  # neither: fine
    assert who.role == "viewer" and accounts.by_session(token) == who
    for _ in range(5):
        login(team, "vic", "wrong password")
    r = login(team, "vic", PASSWORD)
    assert r.status_code == 429 and "too many failed logins" in r.text


def test_no_password_or_key_in_logs_answers_or_the_audit(team, caplog):
    caplog.set_level(logging.DEBUG)
    accounts = team.app.state.instance.service.accounts
    row, key = accounts.create_key("bot", user="ann")
    answers = [login(team, "ann", "my-wrong-secret-pw"), login(team, "nobody", "my-wrong-secret-pw"),
               team.get("/api/v1/usage", headers={"x-api-key": key}),
               team.get("/api/v1/nothing-here", headers={"authorization": f"Bearer {key}x"})]
    accounts.revoke_key(row["id"])
    answers.append(team.get("/api/v1/captures", headers={"x-api-key": key}))
    text = caplog.text + "".join(a.text + str(a.headers) for a in answers) + str(accounts.audit())
    assert answers[0].status_code == answers[1].status_code == 401  # the same answer, known name or not
    assert "wrong user name or password" in answers[0].text
    for secret in ("my-wrong-secret-pw", key, key[12:]):
        assert secret not in text


def test_usage_counts_a_keys_requests_and_uploads(team):
    accounts = team.app.state.instance.service.accounts
    _, key = accounts.create_key("uploader", user="ann")
    h = {"authorization": f"Bearer {key}"}
    team.get("/api/v1/captures", headers=h)
    r = team.post("/api/v1/captures", headers=h, files={"file": (ESPN.name, ESPN.read_bytes())})
    assert r.status_code == 202
    u = team.get("/api/v1/usage", headers=h).json()
    assert (u["requests"], u["uploads"], u["user"], u["role"]) == (3, 1, "ann", "analyst")
    assert team.get("/api/v1/usage").status_code == 401
    assert login(team).status_code == 303
    assert team.get("/api/v1/usage").status_code == 401  # a session has no key to count


def test_a_viewer_cannot_label_and_labelling_nobody_takes_the_right_from_every_role(tmp_path):
    with client(tmp_path / "h", mode="team", labelling="nobody") as c:
        accounts = c.app.state.instance.service.accounts
        accounts.add_user("root", "admin", PASSWORD)
        _, key = accounts.create_key("k", user="root")
        r = c.post("/api/v1/captures/" + "0" * 64 + "/labels", headers={"x-api-key": key}, json={"value": "x"})
        assert r.status_code == 403 and "label right" in r.json()["detail"]


def test_cli_users_keys_and_audit(tmp_path, monkeypatch):
    home = str(tmp_path / "home")
    use_home(monkeypatch, Path(home))
    run = CliRunner().invoke
    r = run(cli.cli, ["--home", home, "user", "add", "ann", "--role", "analyst"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert r.exit_code == 0 and "user ann added (analyst)" in r.output and PASSWORD not in r.output
    r = run(cli.cli, ["--home", home, "user", "add", "bob", "--role", "viewer"], input="one-password\nanother-one\n")
    assert r.exit_code != 0  # the two entries differ: asked again, then no more input
    r = run(cli.cli, ["--home", home, "user", "add", "bob", "--role", "viewer", "--password-stdin"],
            input=f"{PASSWORD}\n")
    assert r.exit_code == 0
    r = run(cli.cli, ["--home", home, "apikey", "create", "ci", "--user", "ann"])
    key = r.stdout.strip()
    assert r.exit_code == 0 and key.startswith("pt_") and len(key.splitlines()) == 1
    key_id = key.split("_")[1]
    listed = run(cli.cli, ["--home", home, "apikey", "list"]).output
    assert key_id in listed and key not in listed
    assert run(cli.cli, ["--home", home, "apikey", "revoke", key_id]).exit_code == 0
    assert "revoked" in run(cli.cli, ["--home", home, "apikey", "list"]).output
    assert run(cli.cli, ["--home", home, "user", "disable", "bob"]).exit_code == 0
    users = run(cli.cli, ["--home", home, "user", "list"]).output.splitlines()
    assert [u.split()[:3] for u in users] == [["ann", "analyst", "enabled"], ["bob", "viewer", "disabled"]]

    rows = orjson.loads(run(cli.cli, ["--home", home, "audit", "--json", "--limit", "3"]).output)
    assert [r["event"] for r in rows] == ["user_disabled", "key_revoked", "key_created"]
    r = run(cli.cli, ["--home", home, "user", "add", "ann", "--role", "analyst", "--password-stdin"],
            input=f"{PASSWORD}\n")
    assert r.exit_code != 0 and "user 'ann' exists" in str(r.exception)


def test_serve_refuses_single_mode_off_loopback(tmp_path):
    r = CliRunner().invoke(cli.cli, ["--home", str(tmp_path), "serve", "--host", "0.0.0.0"])
    assert r.exit_code == 2
    assert r.stderr.strip().splitlines() == ["packettotal: mode single has no login; refusing to listen on 0.0.0.0: "
                                             "set mode to team or public (README: Accounts and modes), or pass "
                                             "--allow-single"]


def test_every_post_form_a_session_is_shown_carries_its_token(team):
    """The forms of the pages (labels, hunts, intel, bulk search and its export, log out): each
    posts the session's token, so none is refused for want of it."""
    assert login(team).status_code == 303
    token = csrf_of(team)
    page = team.post("/bulk", data={"values": "espn.go.com, 192.0.2.1", "csrf_token": token}).text
    forms = re.findall(r'<form method="post"[^>]*>(.*?)</form>', page, re.S)
    assert len(forms) >= 2 and all(f'name="csrf_token" value="{token}"' in f for f in forms)
    r = team.post("/bulk/export?format=json", data={"values": "espn.go.com", "csrf_token": token})
    assert r.status_code == 200 and r.json()[0]["input"] == "espn.go.com"


def test_cli_groups_and_visibility(tmp_path):
    home = str(tmp_path / "home")
    run = CliRunner().invoke
    for name in ("ann", "gus"):
        assert run(cli.cli, ["--home", home, "user", "add", name, "--role", "analyst", "--password-stdin"],
                   input=f"{PASSWORD}\n").exit_code == 0
    assert run(cli.cli, ["--home", home, "group", "add", "team"]).exit_code == 0
    assert "group 'team' exists" in str(run(cli.cli, ["--home", home, "group", "add", "team"]).exception)
    assert "added to" in run(cli.cli, ["--home", home, "group", "member", "add", "team", "gus"]).output
    assert "no user 'nobody'" in str(run(cli.cli, ["--home", home, "group", "member", "add", "team", "nobody"])
                                     .exception)
    assert run(cli.cli, ["--home", home, "group", "list"]).output.split() == ["team", "gus"]
    r = run(cli.cli, ["--home", home, "analyze", "--json", str(PCAPS / "sv-vlan-qinq-flow.pcap")])
    assert r.exit_code == 0, r.output
    cid = orjson.loads(r.stdout)[0]["id"]
    shown = orjson.loads(run(cli.cli, ["--home", home, "visibility", cid, "--json"]).output)
    assert shown["visibility"] == "public"
    r = run(cli.cli, ["--home", home, "visibility", cid, "shared", "--with", "ann,group:team"])
    assert r.exit_code == 0 and "shared with ann, group:team" in r.output, r.output
    r = run(cli.cli, ["--home", home, "visibility", cid, "private", "--with", "ann"])
    assert r.exit_code != 0 and "share_with goes with visibility shared" in str(r.exception)
    assert "removed from" in run(cli.cli, ["--home", home, "group", "member", "remove", "team", "gus"]).output
    events = [a["event"] for a in orjson.loads(run(cli.cli, ["--home", home, "audit", "--json"]).output)]
    assert events[:3] == ["group_member_removed", "visibility_changed", "group_member_added"]


def test_the_audit_log_keeps_audit_days(tmp_path):
    import datetime as dt

    from packettotal.store.accounts import audit
    with client(tmp_path / "home", mode="team", audit_days=30) as c:
        accounts = c.app.state.instance.service.accounts
        accounts.record("old", "cli")
        accounts.record("recent", "cli")
        db = accounts._store.db
        db._exec(audit.update().where(audit.c.event == "old").values(at=dt.datetime.now() - dt.timedelta(days=31)))
        assert accounts.prune_audit() == 1
        kept = {a["event"] for a in accounts.audit()}
        assert "recent" in kept and "old" not in kept
    with client(tmp_path / "keep", mode="team", audit_days=0) as c:
        accounts = c.app.state.instance.service.accounts
        accounts.record("old", "cli")
        accounts._store.db._exec(audit.update().values(at=dt.datetime(2000, 1, 1)))
        assert accounts.prune_audit() == 0 and [a["event"] for a in accounts.audit()] == ["old"]


def test_an_old_sqlite_file_gets_labels_unique_per_author(tmp_path):
    import sqlalchemy as sa

    from packettotal.store.db import Database
    path = tmp_path / "old.db"
    db = Database.sqlite(path)
    with db.engine.begin() as conn:  # the table as it was: unique over (capture, kind, value)
        conn.execute(sa.text("DROP TABLE labels"))
        conn.execute(sa.text(
            "CREATE TABLE labels (id INTEGER NOT NULL, capture_id VARCHAR(64) NOT NULL, kind VARCHAR(16) NOT NULL, "
            "value VARCHAR(200) NOT NULL, value_lower VARCHAR(200) NOT NULL, note TEXT, author VARCHAR(200), "
            "source VARCHAR(16) NOT NULL, created_at DATETIME NOT NULL, PRIMARY KEY (id), "
            "UNIQUE (capture_id, kind, value_lower), FOREIGN KEY(capture_id) REFERENCES captures (id) "
            "ON DELETE CASCADE)"))
        conn.execute(sa.text("INSERT INTO captures (id, md5, sha1, name, size, status, warnings, submitted_at, "
                             "attempts) VALUES ('c1', 'm', 's', 'x.pcap', 1, 'done', '[]', '2026-01-01', 0)"))
        conn.execute(sa.text("INSERT INTO labels VALUES (7, 'c1', 'tag', 'Emotet', 'emotet', 'n', NULL, 'cli', "
                             "'2026-01-01')"))
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0002'"))  # the revision before
    db.close()
    db = Database.sqlite(path)  # upgraded at open (store/migrations/versions/0003_...)
    with db.engine.connect() as conn:
        ddl = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'labels'")).scalar()
        index = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'uq_labels_author'")).scalar()
        rows = conn.execute(sa.text("SELECT id, value, note FROM labels")).all()
        version = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    db.close()
    assert "UNIQUE" not in ddl and "coalesce(author, '')" in index
    assert rows == [(7, "Emotet", "n")] and version == "0003"


def test_the_upload_forms_token_is_in_its_body_never_in_a_logged_request_line(tmp_path, caplog):
    """The no-script upload form posts its CSRF token as a part before the file: a real server's
    access log of the upload holds no token; a wrong or missing token is refused before the file
    is written."""
    import threading

    import httpx
    import uvicorn

    from packettotal.web.app import create_app

    from .conftest import settings
    from .web import free_port
    app = create_app(settings(tmp_path / "home", mode="team"), seed_demo=False)
    app.state.instance.service.accounts.add_user("ann", "analyst", PASSWORD)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, log_level="info"))
    thread = threading.Thread(target=srv.run, daemon=True)
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=False, timeout=60) as c:
            assert c.post("/login", data={"name": "ann", "password": PASSWORD, "next": "/"}).status_code == 303
            home = c.get("/").text
            form = re.search(r'<form id="upload-form" action="([^"]+)"[^>]*><input type="hidden" '
                             r'name="csrf_token" value="([^"]+)">', home)
            assert form is not None, home[:2000]
            action, token = form.groups()
            assert token not in action
            body = (PCAPS / "sv-vlan-qinq-flow.pcap").read_bytes()
            for sent, status in ((None, 403), ("x" * 43, 403), (token, 303)):
                data = {} if sent is None else {"csrf_token": sent}
                r = c.post(action, data=data, files={"file": ("q.pcap", body)})
                assert r.status_code == status, (sent, r.status_code, r.text[:300])
    finally:
        srv.should_exit = True
        thread.join(30)
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert any("POST /upload" in line for line in lines), lines
    assert not any(token in line for line in lines)
    assert not list((tmp_path / "home").rglob("upload-*"))  # the refused ones wrote nothing that stayed
