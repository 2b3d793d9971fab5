"""Carved files: fileinfo records -> file rows, with truncation judged as DESIGN.md says, and
where each was seen (`sighting`): name, host, URL, the response's Content-Type, direction."""

from __future__ import annotations

from ..records import values_at

MAX_SIGHTINGS = 20  # per file and capture: the names, hosts and URLs it came under
CUT = {"filename": 1024, "host": 255, "url": 2048, "content_type": 200}


def content_length(rec: dict) -> int | None:
    for h in values_at(rec, "http.response_headers", scalars=False):
        if isinstance(h, dict) and str(h.get("name", "")).lower() == "content-length":
            try:
                return int(str(h.get("value", "")).strip())
            except ValueError:
                return None
    return None


def file_row(capture_id: str, rec: dict, stored: bool) -> dict | None:
    fi = rec.get("fileinfo")
    if not isinstance(fi, dict) or not isinstance(fi.get("sha256"), str):
        return None
    size = fi.get("size") if isinstance(fi.get("size"), int) else None
    expected = content_length(rec)
    truncated = (fi.get("state") != "CLOSED" or bool(fi.get("gaps"))
                 or (expected is not None and size is not None and size < expected))
    return {
        "capture_id": capture_id, "sha256": fi["sha256"].lower(), "md5": fi.get("md5"),
        "sha1": fi.get("sha1"), "filename": str(fi.get("filename", ""))[:1024], "magic": fi.get("magic"),
        "size": size, "state": fi.get("state"), "stored": stored, "truncated": truncated,
        "app_proto": rec.get("app_proto") or rec.get("event_type"),
    }


def direction(rec: dict, originator: tuple[object, object] | None) -> str | None:
    """`to_server` or `to_client`: Suricata writes a fileinfo record from the file's sender to its
    receiver, so the file goes to the server when its sender opened the flow (None: flow unknown)."""
    if originator is None:
        return None
    return "to_server" if (rec.get("src_ip"), rec.get("src_port")) == originator else "to_client"


def _text(value: object, key: str) -> str | None:
    return str(value)[:CUT[key]] if isinstance(value, (str, int)) and str(value) else None


def sighting(capture_id: str, rec: dict, originator: tuple[object, object] | None) -> dict | None:
    """One fileinfo record's context: its name, and where it came over HTTP, the host, URL and the
    Content-Type it was sent under (`http.http_content_type`: the response's, or the request's for
    an upload)."""
    fi, http = rec.get("fileinfo"), rec.get("http")
    if not isinstance(fi, dict) or not isinstance(fi.get("sha256"), str):
        return None
    http = http if isinstance(http, dict) else {}
    return {"capture_id": capture_id, "sha256": fi["sha256"].lower(), "filename": _text(fi.get("filename"), "filename"),
            "host": _text(http.get("hostname"), "host"), "url": _text(http.get("url"), "url"),
            "content_type": _text(http.get("http_content_type"), "content_type"),
            "direction": direction(rec, originator), "app_proto": _text(rec.get("app_proto"), "content_type"),
            "flow_id": rec.get("flow_id") if isinstance(rec.get("flow_id"), int) else None,
            "timestamp": _text(rec.get("timestamp"), "content_type")}


def merge(rows: dict[str, dict], row: dict, seen: dict | None) -> None:
    """Add a capture's file row (the least truncated record of a file wins) and its sighting (the
    distinct ones, at most MAX_SIGHTINGS a file) to `rows`, by sha256; sightings under `seen`."""
    old = rows.get(row["sha256"])
    sightings: list[dict] = old["seen"] if old else []
    if old is None or row["truncated"] < old["truncated"]:
        rows[row["sha256"]] = {**row, "seen": sightings}
    what = lambda s: tuple(s[k] for k in ("filename", "host", "url", "content_type", "direction"))  # noqa: E731
    if seen and len(sightings) < MAX_SIGHTINGS and all(what(s) != what(seen) for s in sightings):
        sightings.append(seen)


CONTEXT = ("host", "url", "content_type", "direction")


def _names(sightings: list[dict], first: str | None = None) -> list[str]:
    return list(dict.fromkeys(n for n in [first, *(s["filename"] for s in sightings)] if n))


def with_sightings(rows: list[dict], sightings: list[dict]) -> list[dict]:
    """A capture's file rows with where each was seen: `seen` (all), `names` (distinct), and the
    first sighting's host, URL, Content-Type and direction on the row itself."""
    by_sha: dict[str, list[dict]] = {}
    for s in sightings:
        by_sha.setdefault(s["sha256"], []).append(s)
    out = []
    for r in rows:
        seen = by_sha.get(r["sha256"], [])
        first = seen[0] if seen else {}
        out.append({**r, **{k: first.get(k) for k in CONTEXT}, "names": _names(seen, r["filename"]), "seen": seen})
    return out


def context(rows: list[dict], sightings: list[dict]) -> dict:
    """One file across the captures it was carved from (`rows`: its file rows, with the capture's
    `name`, newest first): what it is, its names, and every sighting with its capture's name."""
    first, names = rows[0], {r["capture_id"]: r["name"] for r in rows}
    return {"sha256": first["sha256"], "md5": first["md5"], "sha1": first["sha1"], "magic": first["magic"],
            "size": max((r["size"] for r in rows if r["size"] is not None), default=None),
            "names": _names(sightings, first["filename"]),
            "captures": [{k: r[k] for k in ("capture_id", "name", "filename", "stored", "truncated", "app_proto")}
                         for r in rows],
            "seen": [{**s, "capture_name": names.get(s["capture_id"])} for s in sightings]}
