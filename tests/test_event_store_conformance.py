"""One conformance suite for the event-index interface (store/events/base.py: EventStore), run
against every backend: tantivy always, OpenSearch whenever PACKETTOTAL_TEST_OPENSEARCH_URL names a
real server (tests/event_backends.py). The corpus is real: captures from ../shared/pcaps analysed
by real Suricata through the service; each query's answer is worked out from the records
themselves by a plain predicate, and every backend must give exactly that answer."""

import datetime as dt
import ipaddress
from collections import Counter

import orjson
import pytest

from packettotal.query import fields as catalog, lucene
from packettotal.query.backends.tantivy import tokens
from packettotal.records import values_at
from packettotal.store.events import BACKENDS
from packettotal.store.events.base import parse_ts, searchable

from .conftest import PCAPS, analyse
from .event_backends import event_store

CAPTURES = ("dpkt-http.pcap", "cs-dns_axfr.pcapng", "scapy-tls_new-session-ticket.pcap", "cs-http_espn.pcapng")


@pytest.fixture(scope="module")
def corpus(service) -> dict[str, list[dict]]:
    """capture id -> its EVE records, as Suricata wrote them for these real captures."""
    out = {}
    for name in CAPTURES:
        cap = analyse(service, PCAPS / name)
        assert cap["status"] == "done", cap
        out[f"cap-{len(out)}"] = list(service.export_events(cap["id"]))
    assert all(out.values()), {c: len(r) for c, r in out.items()}
    return out


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def store(request, corpus, tmp_path_factory):
    with event_store(request.param, tmp_path_factory.mktemp("events")) as s:
        for cap, recs in corpus.items():
            assert s.index_capture(cap, recs) == len(recs)
        s.commit()
        yield s


def _all(corpus):
    return [(c, n, r) for c, recs in corpus.items() for n, r in enumerate(recs, 1)]


def _first(corpus, name: str, pred=lambda v: True):
    for _c, _n, r in _all(corpus):
        for v in values_at(r, name):
            if isinstance(v, (str, int)) and pred(v):
                return v
    raise AssertionError(f"the corpus has no {name}")


def _ips(r, name):
    out = []
    for v in values_at(r, name):
        try:
            out.append(ipaddress.ip_address(v))
        except ValueError:
            pass
    return out


def _words(r) -> set[str]:
    return set(tokens(orjson.dumps(searchable(r)).decode()))


def rows(corpus):
    """(query, predicate over a record): the table every backend answers."""
    rrname = _first(corpus, "dns.rrname", lambda v: "." in v)
    host = _first(corpus, "http.hostname", lambda v: "." in v)
    suffix = host[host.index("."):]
    src = _first(corpus, "src_ip", lambda v: ":" not in v)
    net = ipaddress.ip_network(f"{src}/16", strict=False)
    times = sorted(t for _c, _n, r in _all(corpus) if (t := parse_ts(r.get("timestamp"))) is not None)
    mid = times[len(times) // 2].replace(microsecond=0)  # the embedded index keeps times to the second
    word = sorted(_words(next(r for _c, _n, r in _all(corpus) if r["event_type"] == "http")))[0]
    outside = "tcp.tcp_flags"
    assert outside not in catalog.BY_NAME
    flags = _first(corpus, outside)

    def low(r, name):
        return {str(v).lower() for v in values_at(r, name) if isinstance(v, (str, int))}

    return [
        ("*", lambda r: True),
        ("event_type:dns", lambda r: r["event_type"] == "dns"),
        ("event_type:(dns OR http)", lambda r: r["event_type"] in ("dns", "http")),
        ("NOT event_type:flow", lambda r: r["event_type"] != "flow"),
        ("event_type:flow AND -proto:TCP", lambda r: r["event_type"] == "flow" and r.get("proto") != "TCP"),
        (f'dns.rrname:"{rrname.upper()}"', lambda r: rrname.lower() in low(r, "dns.rrname")),
        (f"http.hostname:*{suffix}", lambda r: any(v.endswith(suffix.lower()) for v in low(r, "http.hostname"))),
        ("http.hostname:*", lambda r: bool(low(r, "http.hostname"))),
        (f"domain:{host}", lambda r: any(host.lower() in low(r, n) for n in catalog.ALIASES["domain"])),
        (f"src_ip:{net}", lambda r: any(ip in net for ip in _ips(r, "src_ip"))),
        (f"ip:{src}", lambda r: any(str(ip) == src for n in ("src_ip", "dest_ip") for ip in _ips(r, n))),
        ("dest_port:[1 TO 1024]", lambda r: isinstance(r.get("dest_port"), int) and 1 <= r["dest_port"] <= 1024),
        ("dest_port:>1024", lambda r: isinstance(r.get("dest_port"), int) and r["dest_port"] > 1024),
        (f"timestamp:[* TO {mid.isoformat()}Z}}",
         lambda r: (t := parse_ts(r.get("timestamp"))) is not None and t < mid),
        (f"timestamp:{times[0]:%Y-%m-%d}", lambda r: (t := parse_ts(r.get("timestamp"))) is not None
         and t.date() == times[0].date()),
        (word, lambda r: word in _words(r)),
        (f"{outside}:{str(flags).upper()}", lambda r: str(flags).lower() in low(r, outside)),
    ]


def _found(store, q) -> set[tuple[str, int]]:
    page = store.search(lucene.parse(q), limit=10_000)
    assert page.total == len(page.events)
    return {(e["capture"], e["seq"]) for e in page.events}


def test_every_query_answers_as_the_records_say(store, corpus):
    assert len(rows(corpus)) == 17
    for q, pred in rows(corpus):
        expected = {(c, n) for c, n, r in _all(corpus) if pred(r)}
        assert _found(store, q) == expected, q
        by_cap = Counter(c for c, _n in expected)
        assert dict(store.hits_by_capture(lucene.parse(q))) == dict(by_cap), q
    assert _found(store, "http.hostname:*") and _found(store, "event_type:dns")  # the corpus exercises them


def test_counts_groups_and_top_values(store, corpus):
    for cap, recs in corpus.items():
        assert store.count_by_type(cap) == dict(Counter(r["event_type"] for r in recs))
    assert store.documents(list(corpus) + ["absent"]) == {c: len(r) for c, r in corpus.items()}
    grouped = {h.capture: (h.hits, h.found_in) for h in store.search_by_capture(lucene.parse("*"))}
    assert grouped == {c: (len(r), dict(Counter(x["event_type"] for x in r))) for c, r in corpus.items()}
    cap, recs = max(corpus.items(), key=lambda kv: len(kv[1]))
    types, ports = store.top_values(None, ("event_type", "dest_port"), capture_id=cap, limit=100)
    assert types.matched == len(recs) and types.missing == 0
    assert {b.value: b.count for b in types.buckets} == dict(Counter(r["event_type"] for r in recs))
    with_port = [r["dest_port"] for r in recs if isinstance(r.get("dest_port"), int)]
    assert {b.value: b.count for b in ports.buckets} == dict(Counter(with_port))
    assert ports.missing == len(recs) - len(with_port)


def test_capture_pages_cursor_sort_and_export(store, corpus):
    cap, recs = max(corpus.items(), key=lambda kv: len(kv[1]))
    first = store.events(cap, limit=5)
    assert first.total == len(recs) and [e["seq"] for e in first.events] == [1, 2, 3, 4, 5]
    assert [e["event"] for e in first.events] == recs[:5]
    later = store.events(cap, limit=5, after=5)
    assert later.total == len(recs) and [e["seq"] for e in later.events] == list(range(6, min(11, len(recs) + 1)))
    dns = store.events(cap, event_type="dns", limit=10_000)
    assert dns.total == sum(r["event_type"] == "dns" for r in recs)
    by_time = store.events(cap, limit=10_000, sort="timestamp", descending=True)
    stamps = [(parse_ts(e["event"]["timestamp"]) or dt.datetime.min).replace(microsecond=0)  # to the second
              for e in by_time.events]
    assert stamps == sorted(stamps, reverse=True)
    assert list(store.export(cap)) == recs


def test_reindex_hide_and_delete(store, corpus):
    cap, recs = next(iter(corpus.items()))
    others = {c: len(r) for c, r in corpus.items() if c != cap}
    assert store.index_capture(cap, recs) == len(recs)  # a job run again: the same documents, none twice
    store.commit()
    assert store.documents([cap]) == {cap: len(recs)}
    assert store.index_capture(cap, recs[:2]) == 2  # run again with fewer events: the former tail goes
    store.commit()
    assert store.documents([cap]) == {cap: 2}
    store.hide([cap])
    try:
        assert {c for c, _n in _found(store, "*")} == set(others)
        assert store.count_by_type(cap) == {}
        assert store.documents([cap]) == {cap: 2}  # hidden, still held
    finally:
        store.reveal([cap])
    assert {c for c, _n in _found(store, "*")} == set(corpus)
    store.delete_captures([cap])
    store.commit()
    assert store.documents(list(corpus)) == others
    assert store.index_capture(cap, recs) == len(recs)
    store.commit()
    assert store.documents([cap]) == {cap: len(recs)}
