"""Costly queries run in a child process stopped at the time budget (setting query_seconds): the
request answers 503 within the budget, the service keeps answering, and the next query works."""

import random
import string
import threading
import time

import pytest

from packettotal.errors import QueryTimeout
from packettotal.query import lucene
from packettotal.store.events.budget import costly
from packettotal.store.events.tantivy import TantivyEventStore

# eight free-text wildcards over a large dictionary: the most the parser lets through
SLOW = "(" + " OR ".join(f"*{c}*" for c in "abcdefgh") + ")"


def noisy_events(n: int, seed: int = 3):
    rng = random.Random(seed)
    for i in range(n):
        words = " ".join("".join(rng.choices(string.ascii_lowercase, k=9)) for _ in range(40))
        yield {"timestamp": "2024-01-01T00:00:00.000000+0000", "event_type": "http", "n": i,
               "http": {"hostname": f"h{i}.example.com", "url": "/" + words}}


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("budget")
    store = TantivyEventStore(path)
    store.index_capture("c" * 64, noisy_events(20_000))
    store.commit()
    store.close()
    return path


def test_only_dictionary_walks_are_costly():
    assert costly(lucene.parse("http.hostname:*.com"))
    assert costly(lucene.parse("dns.rrname:* AND NOT x"))
    assert costly(lucene.parse("NOT (a OR *b*)"))
    assert not costly(lucene.parse("src_ip:10.0.0.0/8 AND dest_port:[1 TO 1024] AND evil.com"))


def test_a_query_past_its_budget_is_stopped_and_the_next_one_runs(index_dir):
    unlimited = TantivyEventStore(index_dir)
    t = time.monotonic()
    unlimited.search(lucene.parse(SLOW), limit=1)
    full = time.monotonic() - t
    unlimited.close()
    budget = 0.3
    assert full > 3 * budget, f"the slow query took only {full:.2f} s here: the corpus is too small to test a budget"
    store = TantivyEventStore(index_dir, query_seconds=budget)
    try:
        store.search(lucene.parse("h1.example.com"), limit=1)  # cheap: in-process
        costly = lucene.parse("http.hostname:h1*.example.com")
        assert store.search(costly, limit=100).total == 11_111  # costly, answered
        t = time.monotonic()
        with pytest.raises(QueryTimeout) as info:
            store.search(lucene.parse(SLOW), limit=1)
        assert time.monotonic() - t < budget + 2  # killing and joining the child is quick
        assert "budget" in info.value.message
        # the stopped child is replaced: the next costly query is answered
        assert store.search(lucene.parse("http.hostname:h19999.*"), limit=5).total == 1
    finally:
        store.close()


def test_the_service_answers_while_a_costly_query_runs(tmp_path, index_dir):
    from .web import client

    home = tmp_path / "home"
    home.mkdir()
    # the web test instance gets the noisy index as its event index
    import shutil
    shutil.copytree(index_dir, home / "events")
    with client(home, query_seconds=1.0) as c:
        results: dict = {}

        def slow():
            t = time.monotonic()
            r = c.get("/api/v1/search/events", params={"q": SLOW})
            results["slow"] = (r.status_code, r.json()["error"], time.monotonic() - t)

        thread = threading.Thread(target=slow)
        thread.start()
        time.sleep(0.2)
        t = time.monotonic()
        assert c.get("/").status_code == 200
        assert c.get("/api/v1/search/events", params={"q": "h1.example.com"}).status_code == 200
        served = time.monotonic() - t
        thread.join(30)
        assert results["slow"][:2] == (503, "query_timeout")
        assert results["slow"][2] < 1.0 + 3
        assert served < 1.0  # answered while the costly query was still running


def test_captures_hidden_by_the_service_stay_hidden_in_the_query_process(tmp_path):
    store = TantivyEventStore(tmp_path / "idx", query_seconds=30)
    try:
        for cid in ("a" * 64, "b" * 64):
            store.index_capture(cid, [{"event_type": "dns", "dns": {"rrname": f"{cid[0]}.example.com"}}])
        store.commit()
        wildcard = lucene.parse("dns.rrname:*.example.com")
        assert {c for c, _ in store.hits_by_capture(wildcard)} == {"a" * 64, "b" * 64}
        store.hide(["a" * 64])  # being indexed again: not visible until recorded done
        assert {c for c, _ in store.hits_by_capture(wildcard)} == {"b" * 64}
        assert store.search(wildcard).total == 1
        store.reveal(["a" * 64])
        assert store.search(wildcard).total == 2
    finally:
        store.close()
