"""Country and AS of addresses, for real: the offline data scripts/setup-geo.sh installs (the
default geo_data_dir), real Suricata on dev captures.

Addresses of the captures here (looked up in @ip-location-db 2.3.2026061719):
- cs-ek_to_cryptowall4.pcapng: 192.168.122.145 (private) and public 213.186.33.18 (FR, AS16276 OVH
  SAS), 45.32.238.202 (NL, AS20473), 184.170.149.44 (US, AS46337), 113.20.11.49 (AU, AS35916)
- sv-smb-eicar-sll.pcap: only private ones, 192.168.1.100 and 192.168.1.3
"""

from pathlib import Path

import pytest

from packettotal import config
from packettotal.errors import QueryError
from packettotal.ingest import geo
from packettotal.service import PacketTotal

from .conftest import PCAPS, analyse, settings
from .web import client

CW, PRIVATE = "cs-ek_to_cryptowall4.pcapng", "sv-smb-eicar-sll.pcap"


@pytest.fixture(scope="module")
def locator():
    loc = geo.Locator(config.load(env={}).geo_data_dir)
    yield loc
    loc.close()


@pytest.mark.parametrize("ip, country, asn, org", [
    ("8.8.8.8", "US", 15169, "Google LLC"),
    ("2001:4860:4860::8888", "US", 15169, "Google LLC"),
    ("::ffff:8.8.4.4", "US", 15169, "Google LLC"),  # IPv4-mapped: as the IPv4 address
    ("1.1.1.1", "AU", 13335, "Cloudflare, Inc."),
])
def test_well_known_public_addresses(locator, ip, country, asn, org):
    assert locator.lookup(ip) == geo.Geo(country=country, asn=asn, as_org=org)


@pytest.mark.parametrize("ip, name", [
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("192.168.1.3", "private"), ("fd00::1", "private"),
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("169.254.1.1", "link-local"), ("fe80::1", "link-local"),
    ("224.0.0.251", "multicast"), ("ff02::fb", "multicast"), ("100.64.1.1", "cgnat"),
    ("192.0.2.9", "documentation"), ("198.51.100.1", "documentation"), ("203.0.113.7", "documentation"),
    ("2001:db8::1", "documentation"), ("0.0.0.0", "reserved"), ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"), ("::ffff:10.0.0.1", "private"),
])
def test_special_ranges_are_named_without_a_lookup(tmp_path, ip, name):
    nowhere = geo.Locator(tmp_path / "no-data")  # no data: a lookup would fail
    assert nowhere.lookup(ip) == geo.Geo(range=name)


def test_without_the_data_a_public_lookup_names_the_folder_and_the_setup_script(tmp_path):
    with pytest.raises(geo.GeoDataMissing, match=r"@ip-location-db/asn is not installed in .*no-data "
                                                 r"\(setting geo_data_dir; scripts/setup-geo.sh installs it\)"):
        geo.Locator(tmp_path / "no-data").lookup("8.8.8.8")
    assert geo.Locator(tmp_path).lookup("not an address") is None


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("geo-home")


@pytest.fixture(scope="module")
def pt(home):
    service = PacketTotal(settings(home))
    yield service
    service.close()


@pytest.fixture(scope="module")
def analysed(pt) -> dict[str, str]:
    return {name: analyse(pt, PCAPS / name)["id"] for name in (CW, PRIVATE)}


def test_ingest_stores_the_geo_of_each_ip_of_a_capture(pt, analysed):
    rows = pt.geo_of(["213.186.33.18", "45.32.238.202", "192.168.122.145", "192.168.1.3", "8.8.8.8"])
    assert rows["213.186.33.18"] | {"value": None} == {
        "value": None, "country": "FR", "country_name": "France", "asn": 16276, "as_org": "OVH SAS", "range": None}
    assert (rows["45.32.238.202"]["country"], rows["45.32.238.202"]["asn"]) == ("NL", 20473)
    assert rows["192.168.122.145"]["range"] == rows["192.168.1.3"]["range"] == "private"
    assert rows["192.168.1.3"]["country"] is None and rows["192.168.1.3"]["asn"] is None
    assert "8.8.8.8" not in rows  # in no capture: never stored
    ips = {o["value"] for o in pt._db.capture_observables(analysed[CW], "ip")}
    assert ips == {"192.168.122.145", "213.186.33.18", "45.32.238.202", "184.170.149.44", "113.20.11.49"}
    assert set(pt.geo_of(ips)) == ips


def test_geo_searches_find_the_captures_holding_such_an_ip(pt, analysed):
    cw, private = analysed[CW], analysed[PRIVATE]
    for q in ("geo.country:FR", "geo.country:fr", "geo.country:N?", "asn:16276", "asn:AS16276", "asn:1627?", "asn:162*",
              "geo.country:FR AND asn:20473", "geo.country:* AND NOT geo.range:loopback AND http"):
        assert [g["capture_id"] for g in pt.search(q).groups] == [cw], q
    assert {g["capture_id"] for g in pt.search("geo.range:private").groups} == {cw, private}
    assert [g["capture_id"] for g in pt.search("geo.range:private AND NOT geo.country:*").groups] == [private]
    for q in ("geo.country:RU", "asn:13335", "geo.range:multicast"):
        assert pt.search(q).groups == [], q
    with pytest.raises(QueryError, match="asn takes an AS number such as asn:13335, not 'google'"):
        pt.search("asn:google")
    with pytest.raises(QueryError, match="geo.range takes one of private, loopback, link-local, multicast, cgnat"):
        pt.search("geo.range:internal")


def test_pages_show_country_and_as_next_to_ips_and_escape_the_org(pt, analysed, home):
    cw = analysed[CW]
    c = client(home)
    try:
        pivot = c.get("/ioc/213.186.33.18").text
        assert 'id="geo"' in pivot and "France</strong> (FR)" in pivot and "AS16276</strong>" in pivot
        assert '(FR)</a> · AS: <a' in pivot and '<span class="as-org">OVH SAS</span>' in pivot
        assert 'href="/search?q=asn%3A16276"' in pivot and 'href="/search?q=geo.country%3AFR"' in pivot
        assert ('Range: <a href="/search?q=geo.range%3Aprivate"><strong>private</strong></a> (not looked up)'
                in c.get("/ioc/192.168.1.3").text)
        # an org name with '&', from the data (in no capture: looked up for the page), escaped by autoescape
        att = c.get("/ioc/12.34.56.78").text
        assert "AT&amp;T Enterprises, LLC" in att and "AT&T" not in att and "AS7018" in att
        assert c.get("/api/v1/ioc/12.34.56.78").json()["geo"] == {
            "country": "US", "country_name": "United States", "asn": 7018, "as_org": "AT&T Enterprises, LLC",
            "range": None}
        assert c.get("/api/v1/ioc/example.com").json()["geo"] is None
        summary = c.get(f"/captures/{cw}").text  # top talkers
        assert 'title="France · OVH SAS">FR AS16276</span>' in summary
        assert 'title="private">private</span>' in summary
        flows = c.get(f"/captures/{cw}/tab/flow").text  # Connections
        assert flows.count('<span class="geo"') >= 2 and "NL AS20473</span>" in flows
    finally:
        c.app.state.instance.stop()
