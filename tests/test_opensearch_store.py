"""The OpenSearch store's pure parts, which need no server: the events URL, the setting's checks,
and the documents of real captures against the strict mapping of the index template. What the
server answers is the conformance suite's (test_event_store_conformance.py, with a live URL)."""

import datetime as dt
import ipaddress

import pytest

from packettotal.errors import ConfigError
from packettotal.query import fields as catalog
from packettotal.query.backends.opensearch import iso
from packettotal.store.events import open_events
from packettotal.store.events import opensearch_requests as req
from packettotal.store.events.opensearch import connection
from packettotal.store.events.opensearch_mapping import template

from .conftest import PCAPS, analyse, settings


def test_the_events_url_gives_the_client_its_hosts_credentials_tls_and_index():
    kw, index = connection("https://ops:p%40ss@search.internal:9201/pt-events?ca_certs=/etc/ca.pem&verify_certs=yes")
    assert index == "pt-events"
    assert kw == {"hosts": [{"host": "search.internal", "port": 9201}], "use_ssl": True,
                  "http_auth": ("ops", "p@ss"), "ca_certs": "/etc/ca.pem", "verify_certs": True}
    kw, index = connection("http://127.0.0.1")
    assert index == "packettotal-events" and kw == {"hosts": [{"host": "127.0.0.1", "port": 9200}], "use_ssl": False}
    for bad, fragment in [("ftp://x", "http(s)://"), ("http://", "http(s)://"), ("http://h/?timeout=3", "timeout")]:
        with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
            connection(bad)


def test_the_opensearch_backend_needs_a_url(tmp_path):
    with pytest.raises(ConfigError, match="events_url"):
        open_events(settings(tmp_path, events_backend="opensearch"))


def _mapped(props: dict, name: str) -> dict:
    *parents, leaf = name.split(".")
    for p in parents:
        props = props[p]["properties"]
    return props[leaf]


def test_documents_of_real_captures_fit_the_strict_mapping(service):
    cap = analyse(service, PCAPS / "cs-http_espn.pcapng")
    mapping = template("packettotal-events")["template"]["mappings"]
    top, catalogued = mapping["properties"], mapping["properties"]["c"]["properties"]
    seen = set()
    for n, rec in enumerate(service.export_events(cap["id"]), 1):
        doc = req.document(cap["id"], n, rec)
        assert set(doc) <= set(top) and doc["event"] == rec and req.doc_id(cap["id"], n) == f"{cap['id']}:{n}"
        for name, vals in doc["c"].items():
            kind = _mapped(catalogued, name)["type"]
            seen.add(kind)
            for v in vals:
                if kind == "ip":
                    assert str(ipaddress.ip_address(v)) == v
                elif kind == "long":
                    assert type(v) is int
                elif kind == "date":
                    assert v.endswith("Z") and len(v) == 24
                else:
                    assert isinstance(v, str)
    assert seen == {"ip", "long", "date", "keyword"}
    assert all(_mapped(catalogued, n)["type"] for n in catalog.BY_NAME)  # every catalogue field is mapped


def test_times_keep_their_millisecond():
    t = dt.datetime(2020, 2, 5, 12, 29, 11, 123456)
    assert iso(t) == "2020-02-05T12:29:11.123Z" and iso(t, up=True) == "2020-02-05T12:29:11.124Z"
    assert iso(t.replace(microsecond=123000), up=True) == "2020-02-05T12:29:11.123Z"
