"""The field catalogue: one schema for the event index, the query language, the UI and the API.

Field names are Suricata's EVE names, declared with their event types in evetypes.py. Kinds:
keyword (exact and wildcard, case-insensitive), int, ip (CIDR aware), date. Fields not listed
still match exactly through the generic JSON index.
"""

from __future__ import annotations

from ..evetypes import ALL, Field
from ..ingest.findings import NAMES as FINDINGS
from ..ingest.geo import RANGES

CATALOG: tuple[Field, ...] = tuple(f for t in ALL for f in t.fields)  # in declaration order (evetypes.py)
BY_NAME = {f.name: f for f in CATALOG}

# alias -> fields searched (any of them)
ALIASES: dict[str, tuple[str, ...]] = {
    "ip": ("src_ip", "dest_ip"),
    "port": ("src_port", "dest_port"),
    "domain": ("dns.rrname", "http.hostname", "tls.sni", "quic.sni"),
    "hash": ("fileinfo.md5", "fileinfo.sha1", "fileinfo.sha256"),
    "ja3": ("tls.ja3.hash", "tls.ja3s.hash"),
    "ja4": ("tls.ja4", "quic.ja4"),
    "sid": ("alert.signature_id",),
    "ua": ("http.http_user_agent",),
}
SPECIAL = {"capture": "the capture's id (sha256)"}
# label fields: searched in the labels people attach to captures, not in the events
LABELS: dict[str, tuple[str, ...] | None] = {
    "tag": None,  # any kind of label
    "family": ("family",), "campaign": ("campaign",), "actor": ("actor",),
}
LABEL_KINDS = ("tag", "family", "campaign", "actor")
# fields of the captures rather than of their events: name -> (what it is, an example value)
CAPTURE_FIELDS: dict[str, tuple[str, str]] = {
    **{n: ("label", "emotet") for n in LABELS},
    "finding": ("finding", "beacon"),  # ingest/findings.py
    "hunt": ("hunt", "1"),  # hunt:<id>: the captures holding hits of that hunt (ingest/hunts.py)
    "yara": ("YARA rule name", "EICAR*"),  # captures holding a carved file that matched it (ingest/yarascan.py)
    # captures holding an IP of that country, AS or special range (ingest/geo.py)
    "geo.country": ("country code", "RU"), "asn": ("AS number", "13335"), "geo.range": ("range name", "private"),
    "intel": ("IOC feed name", "abusech"),  # captures holding an indicator of that feed (ingest/intel.py)
    # nDPI (ingest/ndpi/): captures holding a flow nDPI saw so
    "ndpi.app": ("nDPI application", "TLS.Telegram"),
    "ndpi.category": ("nDPI category", "Chat"),
    "ndpi.risk": ("nDPI risk", "self_signed_certificate"),
    "name": ("capture name", "*.pcapng"),  # the name it was submitted under (the capture list's too)
}
NDPI_FIELDS = {"ndpi.app": "app", "ndpi.category": "category", "ndpi.risk": "risks"}  # -> ndpi_flows column
# certificates of the TLS chains, intermediates and roots too (ingest/certs.py) -> certs column
CERT_FIELDS = {"cert.subject": "subject", "cert.issuer": "issuer", "cert.san": "sans", "cert.sha256": "sha256",
               "cert.sha1": "sha1", "cert.serial": "serial_key"}
CAPTURE_FIELDS |= {
    "cert.subject": ("certificate subject", '"CN=www.example.com, O=Example"'),
    "cert.issuer": ("certificate issuer", "*Let's Encrypt*"), "cert.san": ("certificate name", "*.example.com"),
    "cert.sha256": ("certificate SHA-256", "3f1c..."), "cert.sha1": ("certificate SHA-1", "5abd..."),
    "cert.serial": ("certificate serial", "00:A1:B2"),
    "netbios.name": ("NetBIOS name", "WORKGROUP"),  # decoded from NBNS (ingest/netbios.py)
}


def resolve(name: str) -> tuple[Field, ...] | None:
    """Catalogue fields for a query field name or alias; None for a field outside the catalogue."""
    if name in ALIASES:
        return tuple(BY_NAME[n] for n in ALIASES[name])
    f = BY_NAME.get(name)
    return (f,) if f else None


def catalogue() -> list[dict]:
    rows = [{"name": f.name, "type": f.kind, "example": f"{f.name}:{f.example}", "help": f.help}
            for f in CATALOG]
    rows += [{"name": a, "type": "alias", "example": f"{a}:...", "help": "any of " + ", ".join(fs)}
             for a, fs in ALIASES.items()]
    rows += [{"name": n, "type": "keyword", "example": f"{n}:...", "help": h} for n, h in SPECIAL.items()]
    rows += [{"name": n, "type": "label", "example": f'{n}:"spring 2024"' if n == "campaign" else f"{n}:emotet",
              "help": "captures carrying a label of any kind" if kinds is None else f"captures labelled with a {n}"}
             for n, kinds in LABELS.items()]
    rows.append({"name": "finding", "type": "finding", "example": "finding:beacon",
                 "help": "captures with a finding of this detector: " + ", ".join(FINDINGS)})
    rows.append({"name": "hunt", "type": "hunt", "example": "hunt:1",
                 "help": "captures a hunt's rules fired on (packettotal hunts)"})
    rows.append({"name": "yara", "type": "yara", "example": "yara:EICAR*",
                 "help": "captures holding a carved file that matched this YARA rule (setting yara_rules_dir)"})
    rows += [{"name": "geo.country", "type": "geo", "example": "geo.country:RU",
              "help": "captures holding an IP of this country (ISO 3166 code; offline data, setting geo_data_dir)"},
             {"name": "asn", "type": "geo", "example": "asn:13335",
              "help": "captures holding an IP of this autonomous system (AS number)"},
             {"name": "geo.range", "type": "geo", "example": "geo.range:private",
              "help": "captures holding an IP of this special range: " + ", ".join(RANGES)}]
    rows.append({"name": "intel", "type": "intel", "example": "intel:abusech",
                 "help": "captures holding an indicator of this IOC feed (intel:* any feed; packettotal intel)"})
    rows += [{"name": n, "type": "ndpi", "example": f"{n}:{CAPTURE_FIELDS[n][1]}",
              "help": f"captures holding a flow of this {CAPTURE_FIELDS[n][0]} (setting ndpi)"} for n in NDPI_FIELDS]
    rows += [{"name": n, "type": "cert", "example": f"{n}:{CAPTURE_FIELDS[n][1]}",
              "help": f"captures holding a TLS certificate (of any chain, intermediates too) of this "
                      f"{CAPTURE_FIELDS[n][0].removeprefix('certificate ')}"} for n in CERT_FIELDS]
    rows.append({"name": "netbios.name", "type": "netbios", "example": "netbios.name:WORKGROUP",
                 "help": "captures holding this NetBIOS name (name service, UDP 137; its suffix aside)"})
    rows.append({"name": "name", "type": "capture", "example": "name:*.pcapng",
                 "help": "captures submitted under this name (case-insensitive; wildcards)"})
    return rows
