"""What each role may do, what each route needs, and what each mode lets through: the one table
the web app consults for every request (web/access.py). A route missing here is refused, and
tests/test_access.py fails on it."""

from __future__ import annotations

from dataclasses import dataclass

PUBLIC, READ, UPLOAD, LABEL, ADMIN = "public", "read", "upload", "label", "admin"
ROLES = {
    "viewer": frozenset({READ}),
    "analyst": frozenset({READ, UPLOAD, LABEL}),
    "admin": frozenset({READ, UPLOAD, LABEL, ADMIN}),
}
MODES = ("single", "team", "public")

_API = "/api/v1"
# "METHOD path" (the path as the route declares it) -> the right it needs
ROUTES: dict[str, str] = {
    # accounts
    "GET /login": PUBLIC, "POST /login": PUBLIC, "POST /logout": PUBLIC,
    f"GET {_API}/usage": READ,
    # not behind the app's dependencies: the schema and the static files hold nothing of a capture
    f"GET {_API}/openapi.json": PUBLIC, "GET /static": PUBLIC,
    # API
    f"POST {_API}/captures": UPLOAD,
    f"POST {_API}/captures/{{ref}}/reanalyse": UPLOAD,
    f"POST {_API}/reanalyse": ADMIN,
    f"GET {_API}/captures": READ,
    f"GET {_API}/captures/{{ref}}": READ,
    f"DELETE {_API}/captures/{{ref}}": UPLOAD,  # and, in the service, its owner or an admin (auth/ownership.py)
    f"GET {_API}/captures/{{ref}}/events": READ,
    f"GET {_API}/captures/{{ref}}/files": READ,
    f"GET {_API}/captures/{{ref}}/files/{{sha256}}": READ,
    f"GET {_API}/captures/{{ref}}/download": READ,
    f"GET {_API}/captures/{{ref}}/flows/{{flow}}": READ,
    f"GET {_API}/captures/{{ref}}/flows/{{flow}}/packets": READ,
    f"GET {_API}/captures/{{ref}}/flows/{{flow}}/payload": READ,
    f"GET {_API}/captures/{{ref}}/flows/{{flow}}/pcap": READ,
    f"GET {_API}/captures/{{ref}}/flows.pcap": READ,
    f"GET {_API}/captures/{{ref}}/export": READ,
    f"GET {_API}/search": READ,
    f"GET {_API}/search/events": READ,
    f"GET {_API}/search/export": READ,
    f"GET {_API}/ioc/{{value:path}}": READ,
    f"POST {_API}/ioc/bulk": READ,  # a read sent as a body
    f"POST {_API}/ioc/bulk/export": READ,
    f"GET {_API}/captures/{{ref}}/certs": READ,
    f"GET {_API}/captures/{{ref}}/netbios": READ,
    f"GET {_API}/captures/{{ref}}/tabs/{{tab}}/counts": READ,
    f"GET {_API}/search/counts": READ,
    f"GET {_API}/captures/{{ref}}/similar": READ,
    f"GET {_API}/captures/{{ref}}/labels": READ,
    f"POST {_API}/captures/{{ref}}/labels": LABEL,
    f"DELETE {_API}/captures/{{ref}}/labels/{{label_id}}": LABEL,
    f"GET {_API}/captures/{{ref}}/visibility": READ,
    f"POST {_API}/captures/{{ref}}/visibility": UPLOAD,  # the owner's or an admin's: the service checks which
    f"GET {_API}/engines": READ,
    f"GET {_API}/fields": READ,
    f"POST {_API}/hunts": UPLOAD,  # runs rules over the stored captures: analysis work, as an upload is
    f"GET {_API}/hunts": READ,
    f"GET {_API}/hunts/{{hunt_id}}": READ,
    f"DELETE {_API}/hunts/{{hunt_id}}": ADMIN,
    f"GET {_API}/yara": READ,
    f"POST {_API}/yara/scan": ADMIN,
    f"POST {_API}/intel": ADMIN,
    f"GET {_API}/intel": READ,
    f"DELETE {_API}/intel/{{name}}": ADMIN,
    f"GET {_API}/captures/{{ref}}/intel": READ,
    # pages
    "GET /": READ,
    "POST /upload": UPLOAD,
    "GET /captures/{ref}": READ,
    "GET /captures/{ref}/tab/{event_type}": READ,
    "GET /captures/{ref}/flows/{flow}": READ,
    "GET /captures/{ref}/similar": READ,
    "POST /captures/{ref}/labels": LABEL,
    "POST /captures/{ref}/labels/{label_id}/delete": LABEL,
    "POST /captures/{ref}/reanalyse": UPLOAD,
    "POST /captures/{ref}/delete": UPLOAD,  # as its API route
    "POST /captures/{ref}/visibility": UPLOAD,
    "GET /hunts": READ,
    "POST /hunts": UPLOAD,
    "GET /hunts/{hunt_id}": READ,
    "POST /hunts/{hunt_id}/delete": ADMIN,
    "GET /captures/{ref}/intel": READ,
    "GET /intel": READ,
    "POST /intel": ADMIN,
    "POST /intel/{name}/delete": ADMIN,
    "GET /ioc/{value:path}": READ,
    "GET /bulk": READ,
    "POST /bulk": READ,
    "POST /bulk/export": READ,
    "GET /captures": READ,
    "GET /search": READ,
    "GET /fields": READ,
    "GET /api": READ,
}


@dataclass(frozen=True)
class Principal:
    """Who is asking. kind: anonymous | local (single mode: whoever reaches the instance) | user
    (a session) | key (an API key, on its own or a user's)."""
    kind: str
    role: str | None = None
    name: str | None = None      # the user's name, if any
    key_id: str | None = None    # the key's public id
    session: str | None = None   # the session token's digest
    csrf: str | None = None      # the session's form token

    @property
    def signed_in(self) -> bool:
        return self.kind in ("user", "key")


ANONYMOUS = Principal("anonymous")
LOCAL = Principal("local", role="admin")


def right_of(method: str, path: str) -> str | None:
    """The right a route needs (HEAD as GET), or None: no rule, refused."""
    return ROUTES.get(f"{'GET' if method == 'HEAD' else method} {path}")


def rights(mode: str, who: Principal, labelling: str, public_uploads: str) -> frozenset[str]:
    """What `who` may do on an instance in `mode`. `labelling` nobody takes the label right from
    every role; anonymous reads in public mode, and uploads there when public_uploads is on."""
    if who.kind == "local":
        held = ROLES["admin"] if mode == "single" else frozenset()
    elif who.kind == "anonymous":
        held = frozenset({READ, *([UPLOAD] if public_uploads == "on" else [])}) if mode == "public" else frozenset()
    else:
        held = ROLES.get(who.role or "", frozenset())
    if labelling != "anyone":
        held -= {LABEL}
    return held | {PUBLIC}
