"""Where a pivot's value was seen, as the filter of a console tab: `field:"value"` terms in the
query language (query/lucene.py), quoted and escaped, OR-ed over the fields that held it. Pure."""

from __future__ import annotations

from urllib.parse import urlsplit

# fields every record type carries (an address seen as a source is looked for as either end)
EVERY_TYPE = {"src_ip": ("src_ip", "dest_ip"), "dest_ip": ("src_ip", "dest_ip"), "community_id": ("community_id",)}
# fields an observable is noted under that no record field holds as such (a certificate's
# fingerprint, subject or issuer, from the base64 chain: ingest/certs.py): the tab, unfiltered
NOT_A_RECORD_FIELD = frozenset({"tls.chain", "tls.client_chain"})


def quoted(value: str) -> str:
    """A phrase holding exactly `value`: backslashes and double quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def term(field: str, value: str) -> str:
    return f"{field}:{quoted(value)}"


def _url_terms(field: str, value: str) -> list[str]:
    """A URL observable is the record's URL made absolute with its host (ingest/observables.py):
    the record holds either that, or the host and the path apart."""
    out = [term(field, value)]
    parts = urlsplit(value)
    root = field.rsplit(".", 1)[0]
    if parts.scheme == "http" and parts.hostname and value.startswith(f"http://{parts.netloc}/"):
        path = value[len(f"http://{parts.netloc}"):]
        out.append(f"({term(root + '.hostname', parts.hostname)} AND {term(field, path)})")
    return out


def tab_filter(fields: list[dict], event_type: str) -> str:
    """The filter of `event_type`'s tab that keeps the records holding the value: `fields` are the
    pivot's rows for one capture ({field, kind, value}); those of the tab's own type, and the
    addresses and community ids every type carries."""
    terms: list[str] = []
    for f in fields:
        name = f["field"]
        if name in NOT_A_RECORD_FIELD:
            continue
        if name in EVERY_TYPE:
            terms += [term(n, f["value"]) for n in EVERY_TYPE[name]]
        elif name.split(".", 1)[0] == event_type:
            terms += _url_terms(name, f["value"]) if f["kind"] == "url" else [term(name, f["value"])]
    return " OR ".join(dict.fromkeys(terms))
