"""Queries that are wrong, hostile or huge get a 400 naming what is wrong and where; parsing is
safe from many threads; the work one query may ask for is bounded."""

import threading

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from packettotal import demo
from packettotal.errors import QueryError
from packettotal.query import lucene

from .web import client

BAD_QUERIES = [
    "(" * 1000 + "a" + ")" * 1000,
    " ".join(["-a"] * 2000),
    "-" * 2000 + "a",
    " AND ".join(f"t{i}" for i in range(700)),
    "(" + " OR ".join(f"t{i}" for i in range(300)) + ")",
    "*?????????????????????????",
    "*a*a*a*a*a*a*a*a*a*a*a*a*a",
    "(" + " OR ".join(f"*{chr(97 + i)}{i}*" for i in range(20)) + ")",
    "timestamp:9999",
    "timestamp:9999-12",
    "timestamp:[0001 TO 9999]",
    "timestamp:0000",
    "timestamp:[* TO 0001-01-01]",
    "flow.bytes_toserver:[0 TO 99999999999999999999]",
    "dest_port:99999999999999999999",
    "dest_port:[-99999999999999999999 TO *]",
    'src_ip:"fe80::1%eth0"',
    "src_ip:fe80::1%eth0/64",
    "src_ip:fe80::1%eth0",
    "dest_port:*8*",
    "dns.rrname:[a TO b]",
    "dest_port:[1 TO (a)]",
    "a^.",
    "0^1.2.3",
]
BAD_CURSORS = ["czo5OTk5OTk5OTk5OTk5OTk5OTk5", "bzo1", "!!!", "czotMQ"]


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    home = tmp_path_factory.mktemp("limits")
    with client(home) as c:
        service = c.app.state.instance.service
        sub = service.submit(demo.write(home / "demo.pcap"), "demo.pcap")
        service.analyse(sub.capture["id"])
        yield c, sub.capture["id"]


def _bad_request(r, where: str):
    assert r.status_code == 400, (where, r.status_code, r.text[:300])


@pytest.mark.parametrize("q", BAD_QUERIES, ids=lambda q: q[:30])
def test_bad_query_is_a_400_naming_what_and_where(web, q):
    c, cid = web
    r = c.get("/api/v1/search", params={"q": q})
    _bad_request(r, "api search")
    body = r.json()
    assert body["error"] == "bad_query" and body["detail"]
    assert body["position"] is not None and 0 <= body["position"] <= len(q)
    _bad_request(c.get("/api/v1/search/events", params={"q": q}), "api search/events")
    _bad_request(c.get(f"/api/v1/captures/{cid}/events", params={"q": q}), "api events")
    page = c.get("/search", params={"q": q})
    assert page.status_code == 400 and "text/html" in page.headers["content-type"], page.text[:300]


@pytest.mark.parametrize("cursor", BAD_CURSORS)
def test_bad_cursor_is_a_400(web, cursor):
    c, cid = web
    for url, params in ((f"/api/v1/captures/{cid}/events", {}),
                        (f"/api/v1/captures/{cid}/events", {"sort": "timestamp"}),
                        ("/api/v1/search", {"q": "*"}), ("/api/v1/search/events", {"q": "*"})):
        r = c.get(url, params={**params, "cursor": cursor})
        assert r.status_code in (200, 400), (url, cursor, r.status_code, r.text[:200])
        if r.status_code == 400:
            assert r.json()["error"] == "bad_query"
    r = c.get(f"/api/v1/captures/{cid}/events", params={"cursor": cursor})
    _bad_request(r, "events cursor")


def test_error_position_after_an_ipv6_value_points_at_the_operator():
    q = "src_ip:2001:db8::/32 AND b OR c"
    with pytest.raises(QueryError) as info:
        lucene.parse(q)
    assert info.value.position == q.index("OR c")
    q = 'src_ip:fe80::1 AND dest_port:99999999999999999999'
    with pytest.raises(QueryError) as info:
        lucene.parse(q)
    assert info.value.position == q.index("9999")


def test_bare_ipv6_values_and_networks_still_parse():
    node = lucene.parse("src_ip:2001:db8::/32 AND dest_ip:fe80::1")
    assert str(node.children[0].network) == "2001:db8::/32"
    assert node.children[1].value == "fe80::1"


def test_parsing_from_many_threads_gives_the_single_threaded_trees():
    queries = ["dns.rrname:*.evil.com AND src_ip:10.0.0.5",
               "(http.hostname:a.com OR tls.sni:b.org) AND NOT dest_port:443",
               'alert.signature:"ET POLICY" AND timestamp:[2020-01-01 TO 2020-02-01] AND ip:2001:db8::/32']
    expected = [lucene.parse(q) for q in queries]
    errors: list[BaseException] = []
    wrong: list[str] = []

    def work():
        for _ in range(300):
            for q, want in zip(queries, expected, strict=True):
                try:
                    if lucene.parse(q) != want:
                        wrong.append(q)
                except BaseException as exc:  # noqa: BLE001 - every failure is counted
                    errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and wrong == []


FIELDS = ["", "src_ip:", "dest_port:", "timestamp:", "dns.rrname:", "ip:", "flow.bytes_toserver:", "tag:", "x.y:"]
ATOMS = st.one_of(
    st.text(alphabet="abc019*?:.-/%\\\"[]{}()^~!+&| ", min_size=1, max_size=12),
    st.sampled_from(["TO", "AND", "OR", "NOT", "*", "[1 TO *]", "[* TO 2020]", "fe80::1%x", "99999999999999999999",
                     "2001:db8::/200", "\"\"", "\\", "[", "(", ")", "0000", "9999-99", "-5"]),
)
QUERY = st.lists(st.tuples(st.sampled_from(FIELDS), ATOMS), min_size=1, max_size=8).map(
    lambda parts: " ".join(f + a for f, a in parts))


@given(q=QUERY)
@hsettings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_generated_queries_answer_or_refuse_never_crash(web, q):
    c, _ = web
    r = c.get("/api/v1/search", params={"q": q})
    assert r.status_code in (200, 400), (q, r.status_code, r.text[:300])
    if r.status_code == 400:
        assert r.json()["error"] == "bad_query"
