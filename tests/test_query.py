"""The query language: luqum parse -> nodes -> tantivy, on a small EVE corpus with known answers."""

import pytest

from packettotal.errors import QueryError
from packettotal.query import lucene
from packettotal.query.nodes import Cidr, Exists, MatchAll, Not, Or, Phrase, Term, Wildcard
from packettotal.store.events import BACKENDS

from .event_backends import event_store


def ev(i, etype, **kw):
    base = {"timestamp": f"2020-02-0{i % 9 + 1}T12:00:00.000000+0000", "event_type": etype,
            "src_ip": "10.0.0.5", "dest_ip": "8.8.8.8", "src_port": 40000 + i, "dest_port": 53,
            "proto": "UDP", "n": i}
    base.update(kw)
    return base


CORPUS = {
    "cap-a": [
        ev(1, "dns", dns={"type": "query", "rrname": "www.Evil.com", "rrtype": "A"}),
        ev(2, "dns", dns={"type": "answer", "rrname": "cdn.evil.com", "rrtype": "A",
                          "answers": [{"rrname": "cdn.evil.com", "rdata": "203.0.113.9"}]}),
        ev(3, "http", dest_port=80, http={"hostname": "evil.com", "url": "/wp-login.php?x=1",
                                          "http_user_agent": "curl/8.0", "status": 200, "length": 5000}),
    ],
    "cap-b": [
        ev(4, "dns", src_ip="192.168.1.7", dns={"type": "query", "rrname": "good.org", "rrtype": "TXT"}),
        ev(5, "tls", src_ip="2001:db8::7", dest_ip="2001:db8:1::1", dest_port=443,
           tls={"sni": "login.good.org", "ja3": {"hash": "e7d705a3286e19ea42f587b344ee6865"}}),
        ev(6, "flow", flow={"bytes_toserver": 150000, "bytes_toclient": 20}),
        ev(7, "alert", alert={"signature": "ET POLICY Suspicious evil download", "signature_id": 2000001,
                              "severity": 1}, custom={"deep": {"thing": "Marker-42"}}),
    ],
}
IDS = {(c, e["n"]) for c, evs in CORPUS.items() for e in evs}


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def store(request, tmp_path_factory):
    """The same corpus and answers for every event-store backend."""
    with event_store(request.param, tmp_path_factory.mktemp("idx")) as s:
        for cap, evs in CORPUS.items():
            s.index_capture(cap, evs)
        s.commit()
        yield s


def hits(store, q) -> set[int]:
    page = store.search(lucene.parse(q), limit=100)
    return {e["event"]["n"] for e in page.events}


@pytest.mark.parametrize("q,expected", [
    ("*", {1, 2, 3, 4, 5, 6, 7}),
    ("dns.rrname:www.evil.com", {1}),                       # exact, case-insensitive
    ('dns.rrname:"WWW.EVIL.COM"', {1}),                     # quoted phrase on a keyword field
    ("dns.rrname:*.evil.com", {1, 2}),                      # leading wildcard
    ("dns.rrname:?dn.evil.*", {2}),                         # single-char and trailing wildcards
    ("http.url:*wp-login*", {3}),
    ("event_type:dns AND NOT dns.rrtype:A", {4}),
    ("event_type:dns AND -dns.rrtype:A", {4}),
    ("event_type:dns OR event_type:tls", {1, 2, 4, 5}),
    ("(event_type:dns OR event_type:tls) AND src_ip:192.168.0.0/16", {4}),
    ("event_type:dns src_ip:10.0.0.5", {1, 2}),             # implicit AND
    ("NOT event_type:dns", {3, 5, 6, 7}),
    ("flow.bytes_toserver:[100000 TO *]", {6}),
    ("http.status:[200 TO 299] AND http.length:{1000 TO 5000]", {3}),
    ("dest_port:>=443", {5}),
    ("timestamp:[2020-02-05 TO 2020-02-06]", {4, 5}),
    ("timestamp:2020-02-03", {2}),
    ("src_ip:10.0.0.0/8", {1, 2, 3, 6, 7}),
    ("src_ip:2001:db8::/32", {5}),                          # bare IPv6 CIDR
    ('dest_ip:"2001:db8:1::1"', {5}),
    ("ip:203.0.113.9", set()),                              # aliases cover src/dest only
    ("dns.answers.rdata:203.0.113.9", {2}),                 # list of objects, flattened
    ("domain:login.good.org", {5}),                         # alias over dns/http/tls/quic names
    ("domain:*evil.com", {1, 2, 3}),
    ("ja3:e7d705a3286e19ea42f587b344ee6865", {5}),
    ("evil", {1, 2, 3, 7}),                                 # bare term: free text
    ('"suspicious evil download"', {7}),                    # free-text phrase
    ("wp-login", {3}),
    ("custom.deep.thing:marker-42", {7}),                   # a field outside the catalogue
    ("n:3", {3}),                                           # numbers outside the catalogue
    ("tls.sni:*", {5}),                                     # exists
    ("capture:cap-b AND event_type:dns", {4}),
    ("alert.severity:1 AND sid:2000001", {7}),
])
def test_query_answers(store, q, expected):
    assert hits(store, q) == expected


def test_grouped_by_capture(store):
    groups = {g.capture: g for g in store.search_by_capture(lucene.parse("evil"))}
    assert groups["cap-a"].hits == 3 and groups["cap-a"].found_in == {"dns": 2, "http": 1}
    assert groups["cap-b"].found_in == {"alert": 1}


def test_capture_pages_are_in_record_order(store):
    page = store.events("cap-b", limit=2, offset=1)
    assert page.total == 4 and [e["event"]["n"] for e in page.events] == [5, 6]
    assert [e["n"] for e in store.export("cap-a")] == [1, 2, 3]


def test_parse_tree_is_typed():
    assert lucene.parse("") == MatchAll()
    assert lucene.parse("a:b") == Term("a", "b")
    assert isinstance(lucene.parse("src_ip:10.1.0.0/16"), Cidr)
    assert lucene.parse("x:*") == Exists("x")
    assert isinstance(lucene.parse("x:a*b"), Wildcard)
    assert lucene.parse('"a b"') == Phrase(None, "a b")
    assert isinstance(lucene.parse("a OR b"), Or)
    assert isinstance(lucene.parse("NOT a"), Not)
    assert lucene.parse(r"http.url:\/admin\*") == Term("http.url", "/admin*")  # escapes are literal


@pytest.mark.parametrize("q,position,fragment", [
    ("dns.rrname:evil AND (", None, "cannot parse the query"),
    ("a AND b OR c", 8, "mixes AND and OR"),
    ("src_ip:10.0.0.0/99", None, "not a network in CIDR notation"),
    ("x:y:z", None, "nested inside field"),
    ("a~2", None, "not supported"),
])
def test_parse_errors_name_the_position(q, position, fragment):
    with pytest.raises(QueryError) as exc:
        lucene.parse(q)
    assert fragment in exc.value.message
    if position is not None:
        assert exc.value.position == position
    assert exc.value.as_dict()["error"] == "bad_query"


@pytest.mark.parametrize("q,fragment", [
    ("src_ip:10.0.*", "use a CIDR"),
    ("dest_port:abc", "expects a whole number"),
    ("dns.rrname:[a TO b]", "ranges work on number, time and IP fields"),
    ("nosuch.field:*x*", "wildcards need a field from the catalogue"),
    ("timestamp:yesterday", "expects a time"),
    ("custom.deep.thing:*", "needs a field from the catalogue"),
])
def test_translation_errors_are_clear(store, q, fragment):
    with pytest.raises(QueryError, match=fragment):
        store.search(lucene.parse(q))
