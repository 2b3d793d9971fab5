"""Golden translations: every element of the query language, rendered by every backend's
translator, compared with what was reviewed and checked in (tests/golden/<backend>.txt).
After a deliberate change: PACKETTOTAL_UPDATE_GOLDEN=1 pytest tests/test_query_golden.py, then
read the diff of the golden file before committing it."""

import json
import os
import re
from pathlib import Path

import pytest

from packettotal.query import lucene
from packettotal.query import fields as catalog
from packettotal.query.backends.opensearch import OpenSearchTranslator
from packettotal.query.backends.tantivy import TantivyTranslator
from packettotal.query.nodes import And, Captures
from packettotal.store.events import opensearch_requests as os_req
from packettotal.store.events.opensearch_mapping import template
from packettotal.store.events.tantivy import build_schema

GOLDEN = Path(__file__).parent / "golden"
QUERIES = [
    "*", "evil", '"suspicious evil download"', "wp-login",
    "dns.rrname:www.evil.com", 'dns.rrname:"WWW.EVIL.COM"', "dns.rrname:*.evil.com", "dns.rrname:?dn.evil.*",
    "http.url:\\/admin\\*", "tls.sni:*", "custom.deep.thing:marker-42", "n:3", "x.y:true",
    "dest_port:443", "dest_port:>=443", "dest_port:<1024", "flow.bytes_toserver:[100000 TO *]",
    "http.status:[200 TO 299]", "http.length:{1000 TO 5000]", "dest_port:[-5 TO 5}",
    "timestamp:2020", "timestamp:2020-02", "timestamp:2020-02-03", "timestamp:2020-02-05T12",
    "timestamp:2020-02-05T12:29", "timestamp:2020-02-05T12:29:11Z", "timestamp:[2020-02-05 TO 2020-02-06]",
    "timestamp:[2020-02-05 TO *]", "timestamp:{* TO 2020-02-06}",
    "src_ip:10.0.0.5", "src_ip:10.0.0.0/8", "src_ip:2001:db8::/32", 'dest_ip:"2001:db8:1::1"',
    "src_ip:[10.0.0.1 TO 10.0.0.9]", "ip:203.0.113.9", "port:53",
    "domain:login.good.org", "domain:*evil.com", "hash:44d88612fea8a8f36de82e1278abb02f", "ja3:e7d7", "ja4:t13d*",
    "sid:2000001", "ua:curl*",
    "capture:cap-b", "a AND b", "a b", "a OR b", "NOT a", "-a", "+a", "a AND NOT b", "NOT a AND NOT b",
    "(a OR b) AND c", "event_type:(dns OR tls)", "a^2",
]
CAPTURE_SETS = {"labels resolved to captures": And((lucene.parse("evil"), Captures(frozenset({"c1", "c2"})))),
                "labels matching nothing": Captures(frozenset())}


def _tantivy(node) -> str:
    text = repr(TantivyTranslator(build_schema()).translate(node))
    # the compiled regex program that follows a pattern is tantivy's business: the pattern is enough
    return re.sub(r'(Regex\("(?:[^"\\]|\\.)*"\))[\s\S]*?(, field:)', r"\1\2", text)


def _json(value, indent: int | None = None) -> str:
    return json.dumps(value, sort_keys=True, indent=indent)


def _opensearch(node) -> str:
    return _json(OpenSearchTranslator().translate(node))


def _opensearch_requests() -> list[str]:
    """The mapping, and each request body of the store: scoped, paged, sorted, aggregated."""
    q = lucene.parse("dns.rrname:*.evil.com")
    hidden = frozenset({"h1"})
    scoped = os_req.query(q, hidden, "c1", "dns")
    tops = [catalog.BY_NAME[n] for n in ("dns.rrname", "src_ip", "dest_port")]
    bodies = {
        "document": os_req.document("c1", 7, {
            "timestamp": "2020-02-05T12:29:11.123456+0100", "event_type": "DNS", "src_ip": "::ffff:10.0.0.5",
            "dest_ip": "not an ip", "dest_port": 53, "dns": {"rrname": "WWW.Evil.com"},
            "custom": {"Deep": ["Marker-42", 3, True]}, "payload": "bulky"}),
        "query: none, nothing hidden": os_req.query(None),
        "query: scoped to a capture and type, hidden captures left out": scoped,
        "search page": os_req.page(os_req.query(q, hidden), 50, 100),
        "capture page sorted": os_req.page(scoped, 50, 0, "dest_port", descending=True),
        "capture page after a cursor": os_req.page(os_req.after(scoped, 500), 50, 0, "seq"),
        "grouped search (search_by_capture)": os_req.by_capture(os_req.query(q), 100, types=True),
        "hits by capture (pivots, documents)": os_req.by_capture(os_req.query(q), 25, types=False),
        "console counts (count_by_type)": os_req.count_by_type(os_req.query(None, hidden, "c1")),
        "top values": os_req.top_values(os_req.query(None, hidden, "c1"), tops, 10),
    }
    out = [f"[{name}]\n    {_json(body)}" for name, body in bodies.items()]
    return out + ["[index template]\n" + _json(template("packettotal-events"), indent=2)]  # one line a setting


RENDER = {"tantivy": _tantivy, "opensearch": _opensearch}
EXTRAS = {"opensearch": _opensearch_requests}


def rendered(backend: str) -> str:
    render = RENDER[backend]
    out = [f"{q}\n    {render(lucene.parse(q))}" for q in QUERIES]
    out += [f"[{name}]\n    {render(node)}" for name, node in CAPTURE_SETS.items()]
    out += EXTRAS[backend]() if backend in EXTRAS else []
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("backend", sorted(RENDER))
def test_translations_match_the_golden_file(backend):
    path = GOLDEN / f"{backend}.txt"
    text = rendered(backend)
    if os.environ.get("PACKETTOTAL_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"no golden file for {backend}: run with PACKETTOTAL_UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text()
