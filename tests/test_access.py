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
               "DELETE /api/v1/captures/{ref}", "POST /captures/{ref}/delete"},
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
