"""A capture's indicators (its hits of the IOC feeds) and its alerts, for other tools: a STIX 2.1
bundle built with the stix2 library, and a MISP event (plain JSON, as MISP imports it).

STIX: the capture is an ObservedData of a File (its name and hashes); each indicator it holds is
an Indicator with a Sighting of it in that ObservedData (count, fields); each alert signature is
a Note on the ObservedData (the rule text is not kept with a capture, so it is not a pattern);
one Grouping names the capture and holds them all. MISP: one event, an attribute per indicator
(to_ids) and per alert signature (text, not for detection)."""

from __future__ import annotations

import datetime as dt
import uuid

import stix2

NAMESPACE = uuid.UUID("6f1c7a8e-1f55-4a4e-9a83-5d1c2a7b9e10")  # PacketTotal's: stable ids per capture
STIX_PATHS = {"domain": "domain-name:value", "url": "url:value", "email": "email-addr:value",
              "md5": "file:hashes.MD5", "sha1": "file:hashes.'SHA-1'", "sha256": "file:hashes.'SHA-256'"}
MISP_TYPES = {"ip": "ip-dst", "domain": "domain", "url": "url", "email": "email", "md5": "md5", "sha1": "sha1",
              "sha256": "sha256", "ja3": "ja3-fingerprint-md5"}


def _pattern(kind: str, value: str) -> tuple[str, str]:
    """(pattern_type, pattern): STIX patterns where STIX has the object; a JA3 hash as itself."""
    if kind == "ja3":
        return "ja3", value
    path = STIX_PATHS.get(kind) or ("ipv6-addr:value" if ":" in value else "ipv4-addr:value")
    return "stix", "[" + path + " = '" + value.replace("\\", "\\\\").replace("'", "\\'") + "']"


def _when(summary: dict, key: str, fallback: dt.datetime) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(summary[key]) if summary.get(key) else fallback
    except (TypeError, ValueError):
        return fallback


def _signatures(cap: dict) -> list[dict]:
    return list(((cap.get("summary") or {}).get("threats") or {}).get("signatures") or [])


def _where(hit: dict) -> str:
    return ", ".join(f"{f['field']} ({f['count']})" for f in hit["fields"])


def stix_bundle(cap: dict, hits: list[dict]) -> str:
    """The bundle as JSON text. `hits`: the service's capture_intel rows."""
    summary = cap.get("summary") or {}
    done = cap.get("finished_at") or cap["submitted_at"]
    first, last = _when(summary, "first_ts", done), _when(summary, "last_ts", done)
    me = stix2.Identity(id=f"identity--{uuid.uuid5(NAMESPACE, 'PacketTotal')}", name="PacketTotal",
                        identity_class="system")
    capture = stix2.File(name=cap["name"], size=cap["size"],
                         hashes={"SHA-256": cap["id"], "SHA-1": cap["sha1"], "MD5": cap["md5"]})
    seen = stix2.ObservedData(id=f"observed-data--{uuid.uuid5(NAMESPACE, cap['id'])}", created_by_ref=me.id,
                              first_observed=first, last_observed=max(first, last), number_observed=1,
                              object_refs=[capture.id])
    objects: list = [me, capture, seen]
    for h in hits:
        kind, pattern = _pattern(h["kind"], h["value"])
        imported = h["imported_at"]
        ind = stix2.Indicator(
            name=f"{h['kind']} {h['value']}"[:300], pattern_type=kind, pattern=pattern, valid_from=imported,
            valid_until=h["expires"] if h["expires"] and h["expires"] > imported else None,
            confidence=h["confidence"], description=h["description"],
            external_references=[{"source_name": h["feed"], "description": h["source"] or f"IOC feed {h['feed']}"}])
        objects += [ind, stix2.Sighting(sighting_of_ref=ind.id, observed_data_refs=[seen.id], created_by_ref=me.id,
                                        where_sighted_refs=[me.id], count=min(h["count"], 999_999_999),
                                        description=f"in {_where(h)}"[:2000])]
    for s in _signatures(cap):
        objects.append(stix2.Note(
            abstract=f"Suricata alert: {s['signature']}"[:300], object_refs=[seen.id], created_by_ref=me.id,
            content=f"signature {s['sid']} ({s['category'] or 'no class'}, severity {s['severity_name']}): "
                    f"{s['count']} alerts, {s['first_seen'] or '?'} to {s['last_seen'] or '?'}"))
    objects.append(stix2.Grouping(name=f"PacketTotal capture {cap['name']}"[:300], context="suspicious-activity",
                                  description=f"capture sha256 {cap['id']}: {len(hits)} indicators of IOC feeds, "
                                              f"{len(_signatures(cap))} alert signatures",
                                  created_by_ref=me.id, object_refs=[o.id for o in objects]))
    return stix2.Bundle(objects=objects).serialize()


def misp_event(cap: dict, hits: list[dict]) -> dict:
    summary = cap.get("summary") or {}
    done = cap.get("finished_at") or cap["submitted_at"]
    attrs = [{"uuid": str(uuid.uuid5(NAMESPACE, f"{cap['id']}/{h['feed']}/{h['kind']}/{h['value']}")),
              "type": MISP_TYPES[h["kind"]], "value": h["value"], "to_ids": True,
              "category": "Payload delivery" if h["kind"] in ("md5", "sha1", "sha256") else "Network activity",
              "comment": f"feed {h['feed']}" + (f": {h['description']}" if h["description"] else "")
                         + f"; seen in {_where(h)}"} for h in hits]
    attrs += [{"uuid": str(uuid.uuid5(NAMESPACE, f"{cap['id']}/sid/{s['sid']}")), "type": "text",
               "category": "Other", "to_ids": False, "value": f"Suricata alert {s['sid']}: {s['signature']}",
               "comment": f"{s['category'] or 'no class'}, severity {s['severity_name']}, {s['count']} alerts"}
              for s in _signatures(cap)]
    return {"Event": {
        "uuid": str(uuid.uuid5(NAMESPACE, cap["id"])), "info": f"PacketTotal capture {cap['name']} ({cap['id']})",
        "date": _when(summary, "first_ts", done).date().isoformat(), "analysis": "2", "distribution": "0",
        "threat_level_id": "4", "published": False, "Orgc": {"name": "PacketTotal"}, "Attribute": attrs}}
