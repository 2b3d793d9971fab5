"""The access-control matrix: every route of the app, read from the app itself, has a rule in
auth/rights.py; and for every mode and principal (anonymous, viewer, analyst, admin, a revoked
key) each route answers as the role and the mode allow, on a real capture analysed by Suricata.
The policy (which right each route needs, what each role and mode holds) is written out here,
apart from auth/rights.py: a rule changed there fails this test until the policy here agrees."""

from __future__ import annotations

import pytest
from starlette.routing import Mount

from packettotal.auth import rights as rights_mod
from packettotal.web.access import COOKIE, CSRF_HEADER

from . import visibility_world
from .conftest import PCAPS
from .web import analysed, app_routes, client

ESPN = PCAPS / "cs-http_espn.pcapng"
PASSWORD = "matrix password"
EVERYTHING = {"public", "read", "upload", "label", "admin"}
ROLE_RIGHTS = {"viewer": {"public", "read"}, "analyst": {"public", "read", "upload", "label"}, "admin": EVERYTHING}
ANONYMOUS_RIGHTS = {"single": EVERYTHING, "team": {"public"}, "public": {"public", "read"},
                    "public+uploads": {"public", "read", "upload"}}
MODES = {"single": {}, "team": {"mode": "team"}, "public": {"mode": "public"},
         "public+uploads": {"mode": "public", "public_uploads": "on"}}
PRINCIPALS = ("anonymous", "viewer", "analyst", "admin", "revoked", "analyst-session")
# the policy, written out apart from auth/rights.py: every GET reads; these are the other rights
POLICY = {
    "public": {"GET /login", "POST /login", "POST /logout"},
    "read": {"POST /api/v1/ioc/bulk", "POST /bulk",  # reads sent as a body
             "POST /api/v1/ioc/bulk/export", "POST /bulk/export"},
    "label": {"POST /api/v1/captures/{ref}/labels", "DELETE /api/v1/captures/{ref}/labels/{label_id}",
              "POST /captures/{ref}/labels", "POST /captures/{ref}/labels/{label_id}/delete"},
    "upload": {"POST /api/v1/captures", "POST /upload", "POST /api/v1/captures/{ref}/reanalyse",
               "POST /captures/{ref}/reanalyse", "POST /api/v1/hunts", "POST /hunts",
               # and then its owner or an admin (auth/ownership.py; test_deletion.py)
               "DELETE /api/v1/captures/{ref}", "POST /captures/{ref}/delete",
               "POST /api/v1/captures/{ref}/visibility", "POST /captures/{ref}/visibility"},
    "admin": {"POST /api/v1/reanalyse", "POST /api/v1/yara/scan", "POST /api/v1/intel", "POST /intel",
              "DELETE /api/v1/intel/{name}", "POST /intel/{name}/delete", "DELETE /api/v1/hunts/{hunt_id}",
              "POST /hunts/{hunt_id}/delete"},
}
MISSING = "f" * 64  # a capture that does not exist: mutations are checked for rights, and change nothing
PARAMS = {"/api/v1/search/export": {"format": "ndjson"}, "/api/v1/captures/{ref}/export": {"format": "eve"}}
ABSENT_IDS = {"label_id", "hunt_id", "name"}  # none exists here: an allowed request answers 404


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    with client(home) as c:
        cap = analysed(c, ESPN)
        http = c.get(f"/api/v1/captures/{cap['id']}/events", params={"type": "http", "limit": 1}).json()
        files = c.get(f"/api/v1/captures/{cap['id']}/files").json()
        accounts = c.app.state.instance.service.accounts
        keys = {}
        for role in ROLE_RIGHTS:
            accounts.add_user(role, role, PASSWORD)
            keys[role] = accounts.create_key(role, user=role)[1]
        row, keys["revoked"] = accounts.create_key("revoked", user="admin")
        accounts.revoke_key(row["id"])
    return {"home": home, "ref": cap["id"], "flow": str(http["events"][0]["event"]["flow_id"]),
            "sha256": files[0]["sha256"] if files else "0" * 64, "keys": keys}


def request_for(method: str, path: str, w: dict) -> tuple[str, dict]:
    """A concrete request to a route: real ids for reads, a missing capture or an empty body for
    writes (they pass or fail the check first, then change nothing)."""
    mutating = method != "GET"
    fill = {"ref": MISSING if mutating and "/labels" not in path else w["ref"], "flow": w["flow"],
            "sha256": w["sha256"], "event_type": "http", "tab": "http", "label_id": "999999", "hunt_id": "999999",
            "name": "no-such-feed", "value:path": "espn.go.com"}
    url = path
    for k, v in fill.items():
        url = url.replace("{" + k + "}", v)
    kw: dict = {} if mutating else {"params": {"q": "event_type:http", **PARAMS.get(path, {})}}
    if path in ("/api/v1/captures", "/upload"):
        kw["files"] = {"file": ("x.pcap", b"not a capture")}
    elif path == "/api/v1/reanalyse":
        kw["json"] = {"query": "dns.rrname:nothing.invalid"}
    elif path == "/login" and method == "POST":
        kw["data"] = {"name": "viewer", "password": PASSWORD, "next": "/"}
    elif path.endswith("/labels") and method == "POST":
        kw["json" if path.startswith("/api/") else "data"] = {"value": "matrix", "kind": "tag"}
    elif mutating:
        kw["json" if path.startswith("/api/") else "data"] = {}
    return url, kw


def policy(method: str, path: str) -> str:
    found = [right for right, routes in POLICY.items() if f"{method} {path}" in routes]
    assert len(found) <= 1 and (found or method == "GET"), f"{method} {path}: not in the test's POLICY"
    return found[0] if found else "read"


def expected(mode: str, who: str, method: str, path: str, right: str) -> str:
    """'allowed', or the refusal: '401', '403', 'login' (a page's redirect to /login)."""
    if who == "revoked":
        return "401"
    held = ANONYMOUS_RIGHTS[mode] if who == "anonymous" else ROLE_RIGHTS[who.removesuffix("-session")]
    if right in held:
        keyless = who == "anonymous" or who.endswith("-session")
        return "401" if path == "/api/v1/usage" and keyless else "allowed"  # usage is counted per key
    if who != "anonymous":
        return "403"
    return "login" if method == "GET" and not path.startswith("/api/") else "401"


def observed(r, path: str, method: str) -> str:
    if r.status_code == 303 and r.headers["location"].startswith("/login?next="):
        return "login"
    if r.status_code in (401, 403):
        return str(r.status_code)
    assert r.status_code < 500, f"{method} {path}: {r.status_code} {r.text[:200]}"
    if method == "GET" and not any("{" + k in path for k in ABSENT_IDS):
        assert r.status_code < 400, f"{method} {path}: {r.status_code} {r.text[:200]}"  # a real capture's
    return "allowed"


def test_every_route_has_a_rule_and_every_rule_a_route(tmp_path):
    with client(tmp_path / "h") as c:
        routes = {(m, r.path) for r in app_routes(c.app) for m in r.methods if m != "HEAD"}
        routes |= {("GET", r.path) for r in c.app.routes if isinstance(r, Mount)}
        guarded = {(m, r.path) for r in app_routes(c.app) if hasattr(r, "dependant") for m in r.methods}
    unruled = sorted(f"{m} {p}" for m, p in routes if rights_mod.right_of(m, p) is None)
    assert not unruled, f"routes without a rule in auth/rights.py: {unruled}"
    assert not set(rights_mod.ROUTES) - {f"{m} {p}" for m, p in routes}, "rules of routes that are gone"
    # a route the app's dependency does not run for (the schema, the static files) can only be public
    assert all(rights_mod.right_of(m, p) == "public" for m, p in routes - guarded)


def test_a_route_without_a_rule_is_refused(tmp_path):
    with client(tmp_path / "h") as c:
        c.app.router.add_api_route("/api/v1/unruled", lambda: {"ok": True})
        r = c.get("/api/v1/unruled")
        assert r.status_code == 403 and r.json()["detail"] == "this route has no access rule"


@pytest.mark.parametrize("mode", MODES)
def test_access_matrix(world, mode):
    wrong = []
    with client(world["home"], **MODES[mode]) as c:
        routes = sorted({(m, r.path) for r in app_routes(c.app) if hasattr(r, "dependant") for m in r.methods})
        assert len(routes) > 60
        accounts = c.app.state.instance.service.accounts
        for who in PRINCIPALS:
            session, stale = who.endswith("-session"), True
            headers = {} if who == "anonymous" or session else {"x-api-key": world["keys"][who]}
            for method, path in routes:
                assert rights_mod.right_of(method, path), f"{method} {path} has no rule"
                right = policy(method, path)
                url, kw = request_for(method, path, world)
                if session:  # logged in again after POST /logout and POST /login, which end the session
                    if stale:
                        token, me = accounts.login(who.removesuffix("-session"), PASSWORD, None)
                    stale = method == "POST" and path in ("/login", "/logout")
                    c.cookies.set(COOKIE, token, domain="testserver.local")
                    headers = {} if method == "GET" else {CSRF_HEADER: me.csrf}
                r = c.request(method, url, headers=headers, **kw)
                c.cookies.clear()  # POST /login sets one: the next request is anonymous again
                want, got = expected(mode, who, method, path, right), observed(r, path, method)
                if want != got:
                    wrong.append(f"{mode} {who} {method} {path}: expected {want}, got {got} ({r.status_code})")
    assert not wrong, "\n".join(wrong)


# visibility per capture: private, shared and public captures, each principal seeing exactly its own
@pytest.fixture(scope="module")
def seen(tmp_path_factory):
    return visibility_world.build(tmp_path_factory.mktemp("vis-home"), tmp_path_factory.mktemp("vis-pcaps"))


OTHER_IDS = ("{flow}", "{sha256}", "{label_id}")


def searched(c, q: str, h: dict) -> int:
    return c.get("/api/v1/search", params={"q": q}, headers=h).json()["total_captures"]


def capture_routes(app) -> list[str]:
    return sorted({r.path for r in app_routes(app) if "GET" in r.methods and "{ref}" in r.path})


def fill(path: str, ref: str) -> str:
    for k, v in {"{ref}": ref, "{flow}": "1", "{sha256}": "0" * 64, "{tab}": "dns", "{event_type}": "dns"}.items():
        path = path.replace(k, v)
    return path


@pytest.mark.parametrize("who", visibility_world.SEES)
def test_each_principal_reads_only_the_captures_it_may_see(seen, who):
    ids, keys, visible = seen["ids"], seen["keys"], visibility_world.SEES[who]
    h = visibility_world.headers(keys, who)
    wrong = []
    with client(seen["home"], mode="public") as c:
        listed = c.get("/api/v1/captures", params={"limit": 100}, headers=h)
        assert {r["id"] for r in listed.json()} == {ids[v] for v in visible}
        assert listed.headers["x-total-count"] == str(len(visible))
        for level, cid in ids.items():
            for path in capture_routes(c.app):
                r = c.get(fill(path, cid), params={"q": "event_type:dns", **PARAMS.get(path, {})}, headers=h)
                if level not in visible and r.status_code != 404:
                    wrong.append(f"{who} {level} {path}: {r.status_code}, not 404")
                if level in visible and not any(x in path for x in OTHER_IDS) and r.status_code >= 400:
                    wrong.append(f"{who} {level} {path}: {r.status_code} {r.text[:100]}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("who", visibility_world.SEES)
def test_counts_pivots_and_scores_count_only_visible_captures(seen, who):
    ids, keys, visible = seen["ids"], seen["keys"], visibility_world.SEES[who]
    h, mine = visibility_world.headers(keys, who), {ids[v] for v in visible}
    hidden_names = {visibility_world.OWN[v] for v in visibility_world.OWN if v not in visible}
    with client(seen["home"], mode="public") as c:
        # search, its counts and its events
        found = c.get("/api/v1/search", params={"q": "dns.rrname:*.example.net"}, headers=h).json()
        assert found["total_captures"] == len(visible) and {g["capture_id"] for g in found["groups"]} == mine
        events = c.get("/api/v1/search/events", params={"q": "event_type:dns", "limit": 100}, headers=h).json()
        assert {e["capture_id"] for e in events["events"]} == mine
        counts = c.get("/api/v1/search/counts", params={"q": "event_type:dns", "field": "dns.rrname"},
                       headers=h).json()
        shown = {v["value"] for f in counts for v in f["values"]}
        assert visibility_world.SHARED_IOC in shown and not shown & hidden_names, shown
        for name in hidden_names:  # a hidden capture's own indicator: nowhere
            assert searched(c, f'dns.rrname:"{name}"', h) == 0
            assert c.get(f"/api/v1/ioc/{name}", headers=h).json()["total_captures"] == 0
        # the pivot of the indicator they share, its total and its co-occurring values
        pivot = c.get(f"/api/v1/ioc/{visibility_world.SHARED_IOC}", headers=h).json()
        assert pivot["total_captures"] == len(visible) and {x["capture_id"] for x in pivot["captures"]} == mine
        co = {x["value"]: x for x in pivot["co_occurring"]}
        assert not set(co) & hidden_names and all(x["df"] <= len(visible) for x in co.values())
        asked = [visibility_world.SHARED_IOC, *visibility_world.OWN.values()]
        bulk = c.post("/api/v1/ioc/bulk", json={"values": asked}, headers=h).json()
        totals = {r["value"]: r["total_captures"] for r in bulk}
        assert totals[visibility_world.SHARED_IOC] == len(visible)
        assert all(totals[n] == (0 if n in hidden_names else 1) for n in visibility_world.OWN.values())
        # similar captures of the public one: only visible ones, the shared value counted over them
        similar = c.get(f"/api/v1/captures/{ids['public']}/similar", headers=h).json()
        assert {s["capture_id"] for s in similar} == mine - {ids["public"]}
        for s in similar:
            reason = next(r for r in s["shared"] if r["value"] == visibility_world.SHARED_IOC)
            assert reason["captures"] == len(visible)
        # a label of a hidden capture: not searchable, not a filter of the list
        assert searched(c, "family:alicesecret", h) == (1 if "private" in visible else 0)
        labelled = c.get("/api/v1/captures", params={"label": "alicesecret"}, headers=h)
        assert labelled.headers["x-total-count"] == ("1" if "private" in visible else "0")
        fields = c.get("/api/v1/fields", headers=h).text
        assert not any(n in fields for n in hidden_names)


def test_only_the_owner_or_an_admin_changes_visibility_and_removes_labels(seen):
    ids, keys = seen["ids"], seen["keys"]
    with client(seen["home"], mode="public") as c:
        h = {w: visibility_world.headers(keys, w) for w in visibility_world.SEES}
        body = {"visibility": "public"}
        assert c.post(f"/api/v1/captures/{ids['private']}/visibility", json=body, headers=h["bob"]).status_code == 404
        assert c.post(f"/api/v1/captures/{ids['shared']}/visibility", json=body, headers=h["carol"]).status_code == 403
        assert c.post(f"/api/v1/captures/{ids['shared']}/visibility", json=body, headers=h["vera"]).status_code == 403
        assert c.get(f"/api/v1/captures/{ids['shared']}/visibility", headers=h["carol"]).json() == {
            "capture_id": ids["shared"], "owner": "alice", "visibility": "shared",
            "share_with": ["carol", f"group:{visibility_world.GROUP}"]}
        # bob labels the public capture; alice cannot remove his label, an admin can; a viewer cannot label
        lb = c.post(f"/api/v1/captures/{ids['public']}/labels", json={"value": "bobs"}, headers=h["bob"]).json()
        assert lb["author"] == "bob"
        r = c.post(f"/api/v1/captures/{ids['public']}/labels", json={"value": "v"}, headers=h["vera"])
        assert r.status_code == 403
        url = f"/api/v1/captures/{ids['public']}/labels/{lb['id']}"
        assert c.delete(url, headers=h["alice"]).status_code == 403
        assert c.delete(url, headers=h["root"]).status_code == 204
        audit = c.app.state.instance.service.accounts.audit(50)
        assert any(e["event"] == "visibility_changed" and e["subject"] == ids["shared"] for e in audit)


def test_one_file_uploaded_by_two_users_is_each_ones_own_and_a_public_copy_reveals_no_private_label(tmp_path):
    with client(tmp_path / "h", mode="public") as c:
        accounts, keys = c.app.state.instance.service.accounts, {}
        for name, role in visibility_world.USERS.items():
            accounts.add_user(name, role, visibility_world.PASSWORD)
            keys[name] = accounts.create_key(name, user=name)[1]
        h = {w: visibility_world.headers(keys, w) for w in visibility_world.SEES}
        path = visibility_world.dns_capture(tmp_path / "twice.pcap", ["twice.example.net"], "10.9.1.1")
        cid = visibility_world.upload_as(c, keys, "alice", path, "acme-breach.pcap")["id"]
        c.post(f"/api/v1/captures/{cid}/labels", json={"kind": "actor", "value": "alicesactor"}, headers=h["alice"])
        assert c.get(f"/api/v1/captures/{cid}", headers=h["bob"]).status_code == 404
        assert visibility_world.upload_as(c, keys, "bob", path, "bobs.pcap")["id"] == cid  # stored once, his too
        assert c.get(f"/api/v1/captures/{cid}", headers=h["bob"]).json()["name"] == "bobs.pcap"  # not alice's name
        assert [r["name"] for r in c.get("/api/v1/captures", headers=h["bob"]).json()] == ["bobs.pcap"]
        assert c.get(f"/api/v1/captures/{cid}", headers=h["alice"]).json()["name"] == "acme-breach.pcap"
        assert c.get(f"/api/v1/captures/{cid}/labels", headers=h["bob"]).json() == []  # alice's upload stays hers
        assert c.get(f"/api/v1/captures/{cid}", headers=h["carol"]).status_code == 404
        assert c.get(f"/api/v1/captures/{cid}/visibility", headers=h["bob"]).json()["owner"] == "bob"
        # a public upload of it: everyone reads the capture, nobody but alice (and admins) her label
        assert c.post(f"/api/v1/captures/{cid}/visibility", json={"visibility": "public"}, headers=h["bob"]).json()
        assert c.get(f"/api/v1/captures/{cid}", headers=h["anonymous"]).json()["name"] == "bobs.pcap"
        found = c.get("/api/v1/search", params={"q": "dns.rrname:twice.example.net"}, headers=h["carol"]).json()
        assert [g["name"] for g in found["groups"]] == ["bobs.pcap"]
        for who in ("anonymous", "carol", "bob"):
            assert c.get(f"/api/v1/captures/{cid}/labels", headers=h[who]).json() == []
            assert searched(c, "actor:alicesactor", h[who]) == 0
        own = c.get(f"/api/v1/captures/{cid}/labels", headers=h["alice"]).json()
        assert [x["value"] for x in own] == ["alicesactor"]


def test_single_mode_sees_everything_as_before(seen):
    with client(seen["home"]) as c:
        assert c.get("/api/v1/captures").headers["x-total-count"] == "3"
        pivot = c.get(f"/api/v1/ioc/{visibility_world.SHARED_IOC}").json()
        assert pivot["total_captures"] == 3


def test_feed_hit_counts_count_only_visible_captures(tmp_path):
    """An IOC feed's "captures hit" on /api/v1/intel and /intel says nothing of a private capture."""
    world = visibility_world.build(tmp_path / "home", tmp_path)
    keys = world["keys"]
    with client(world["home"], mode="public") as c:
        feed = c.app.state.instance.service.import_feed(
            f"value,type\n{visibility_world.OWN['private']},domain\n{visibility_world.SHARED_IOC},domain\n".encode(),
            "leaktest", "csv", "leak.csv")
        assert feed["indicators"] == 2
        for who, visible in visibility_world.SEES.items():
            r = c.get("/api/v1/intel", headers=visibility_world.headers(keys, who))
            assert r.status_code == 200, (who, r.text)
            got = next(f for f in r.json() if f["name"] == "leaktest")
            assert got["captures"] == len(visible), (who, got)


def test_a_member_removed_from_a_group_loses_sight_at_once(seen):
    ids, keys = seen["ids"], seen["keys"]
    with client(seen["home"], mode="public") as c:
        accounts, h = c.app.state.instance.service.accounts, visibility_world.headers(keys, "gina")
        assert c.get(f"/api/v1/captures/{ids['shared']}", headers=h).status_code == 200
        assert accounts.remove_member(visibility_world.GROUP, "gina")
        try:
            assert c.get(f"/api/v1/captures/{ids['shared']}", headers=h).status_code == 404
            assert {r["id"] for r in c.get("/api/v1/captures", headers=h).json()} == {ids["public"]}
        finally:
            accounts.add_member(visibility_world.GROUP, "gina")
        assert c.get(f"/api/v1/captures/{ids['shared']}", headers=h).status_code == 200


def test_the_name_filter_matches_only_the_names_of_uploads_the_viewer_may_see(seen, tmp_path):
    """alice uploads a file privately under a secret name; bob uploads the same file publicly:
    others find it by bob's name only, alice by both."""
    keys = seen["keys"]
    path = visibility_world.dns_capture(tmp_path / "twice.pcap", ["twice.example.net"], "10.9.9.9")
    with client(seen["home"], mode="public") as c:
        cid = visibility_world.upload_as(c, keys, "alice", path, "alicesecretname.pcap")["id"]
        visibility_world.upload_as(c, keys, "bob", path, "bobsname.pcap")
        r = c.post(f"/api/v1/captures/{cid}/visibility", json={"visibility": "public"},
                   headers=visibility_world.headers(keys, "bob"))
        assert r.status_code == 200, r.text
        try:
            for who, secret in (("vera", 0), ("anonymous", 0), ("alice", 1)):
                h = visibility_world.headers(keys, who)
                for q, want in (("alicesecret", secret), ("bobsname", 1)):
                    listed = c.get("/api/v1/captures", params={"q": q}, headers=h)
                    assert listed.headers["x-total-count"] == str(want), (who, q)
                assert searched(c, 'name:"alicesecretname.pcap"', h) == secret, who
        finally:
            root = visibility_world.headers(keys, "root")
            assert c.delete(f"/api/v1/captures/{cid}", headers=root).status_code == 204


def test_hunt_counts_count_only_visible_captures(seen):
    """A hunt hitting only the private capture counts it for its owner and an admin, no one else."""
    keys = seen["keys"]
    rule = (f'alert dns any any -> any any (msg:"private hunt"; dns.query; '
            f'content:"{visibility_world.OWN["private"]}"; sid:9100001; rev:1;)')
    with client(seen["home"], mode="public") as c:
        service = c.app.state.instance.service
        hunt = service.new_hunt(rule, name="leak hunt")
        service.run_hunt(hunt["id"])
        try:
            for who, visible in visibility_world.SEES.items():
                r = c.get("/api/v1/hunts", headers=visibility_world.headers(keys, who))
                if r.status_code != 200:  # anonymous may not list hunts
                    assert who == "anonymous", (who, r.status_code)
                    continue
                got = next(x for x in r.json() if x["id"] == hunt["id"])
                assert got["hit_captures"] == (1 if "private" in visible else 0), (who, got)
        finally:
            service.delete_hunt(hunt["id"])


def test_a_label_another_user_holds_is_theirs_not_returned(seen, tmp_path):
    """bob adds the label alice's hidden upload already holds: he gets a row of his own, never
    hers (nor her note)."""
    keys = seen["keys"]
    path = visibility_world.dns_capture(tmp_path / "labelled.pcap", ["labelled.example.net"], "10.9.9.8")
    with client(seen["home"], mode="public") as c:
        h = {w: visibility_world.headers(keys, w) for w in ("alice", "bob", "root")}
        cid = visibility_world.upload_as(c, keys, "alice", path)["id"]
        try:
            body = {"kind": "family", "value": "Twinlabel", "note": "alice's secret note"}
            hers = c.post(f"/api/v1/captures/{cid}/labels", json=body, headers=h["alice"]).json()
            visibility_world.upload_as(c, keys, "bob", path)
            r = c.post(f"/api/v1/captures/{cid}/labels", json={"kind": "family", "value": "twinlabel"},
                       headers=h["bob"])
            assert r.status_code == 201, r.text
            his = r.json()
            assert his["id"] != hers["id"] and his["author"] == "bob" and not his.get("note"), his
            assert "secret note" not in c.get(f"/api/v1/captures/{cid}/labels", headers=h["bob"]).text
            again = c.post(f"/api/v1/captures/{cid}/labels", json={"kind": "family", "value": "TWINLABEL"},
                           headers=h["bob"]).json()
            assert again["id"] == his["id"]  # still one per author
        finally:
            assert c.delete(f"/api/v1/captures/{cid}", headers=h["root"]).status_code == 204
