"""Carved files: fileinfo records -> file rows, with truncation judged as DESIGN.md says."""

from __future__ import annotations

from ..records import values_at


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
