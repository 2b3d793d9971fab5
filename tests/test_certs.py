"""TLS certificates in full (ingest/certs.py): parsed from the chains the real Suricata logs, judged
at the time of the session, stored, searchable by intermediates' fields too, pivoted, shown on the
TLS tab and the flow page; and findings made from them, once each."""

import base64
import datetime as dt
import html as htmllib
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from scapy.layers.tls.cert import Cert
from scapy.layers.tls.extensions import ServerName, TLS_Ext_ServerName
from scapy.layers.tls.handshake import TLSCertificate, TLSClientHello, TLSServerHello, TLSServerHelloDone
from scapy.layers.tls.record import TLS
from scapy.utils import wrpcap

from packettotal.demo import _Clock, _tcp_session
from packettotal.ingest import certs

from .conftest import PCAPS, analyse
from .test_pages import assert_inert
from .web import analysed, client, wait_done

SEEN_AT = 1_750_000_000  # 2025-06-15: when the built sessions happen
DAY = dt.timedelta(days=1)


def _name(cn: str, org: str = "PacketTotal tests") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)])


def _cert(subject: x509.Name, issuer: x509.Name, key, signer, start: dt.datetime, days: int, serial: int,
          sans: tuple[str, ...] = (), ca: bool = False) -> bytes:
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
         .serial_number(serial).not_valid_before(start).not_valid_after(start + days * DAY)
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in sans]), critical=False)
    return b.sign(signer, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


def chain(leaf_cn: str, sans: tuple[str, ...], start: dt.datetime, days: int) -> list[bytes]:
    """leaf <- intermediate <- root, all fresh keys: the leaf valid from `start` for `days`."""
    root_key, mid_key = ec.generate_private_key(ec.SECP384R1()), rsa.generate_private_key(65537, 2048)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    root, mid = _name("PT Test Root CA"), _name("PT Test Intermediate CA")
    long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    return [_cert(_name(leaf_cn), mid, leaf_key, mid_key, start, days, 0xA1B2C3, sans),
            _cert(mid, root, mid_key, root_key, long_ago, 3650, 0x0102, ca=True),
            _cert(root, root, root_key, root_key, long_ago, 7300, 0x01, ca=True)]


def session(clock, sport: int, sni: str, ders: list[bytes]) -> list:
    clock.t = SEEN_AT + sport
    hello = TLS(msg=[TLSClientHello(ciphers=[0xC02F], ext=[
        TLS_Ext_ServerName(servernames=[ServerName(servername=sni.encode())])])])
    server = TLS(msg=[TLSServerHello(cipher=0xC02F), TLSCertificate(certs=[Cert(d) for d in ders]),  # type: ignore[call-arg]
                      TLSServerHelloDone()])
    return _tcp_session(clock, "10.30.0.5", "198.51.100.30", sport, 443, bytes(hello), bytes(server))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Three sessions: a leaf expired in 2024, one not valid before 2026 whose names are not the
    SNI, one valid and matched by a wildcard."""
    clock = _Clock()
    expired = chain("old.shop.example", ("old.shop.example",), dt.datetime(2023, 1, 1, tzinfo=dt.UTC), 365)
    early = chain("future.example", ("future.example", "*.future.example"), dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 90)
    good = chain("www.good.example", ("*.good.example",), dt.datetime(2025, 1, 1, tzinfo=dt.UTC), 365)
    pkts = (session(clock, 50001, "old.shop.example", expired) + session(clock, 50002, "elsewhere.example", early)
            + session(clock, 50003, "api.good.example", good))
    path = tmp_path_factory.mktemp("certs") / "chains.pcap"
    wrpcap(str(path), pkts)
    return path, {"expired": expired, "early": early, "good": good}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with client(tmp_path_factory.mktemp("home")) as c:
        yield c


def sha256(der: bytes) -> str:
    return certs.parse(der)["sha256"]


def search(site, q: str) -> set[str]:
    r = site.get("/api/v1/search", params={"q": q})
    assert r.status_code == 200, r.text
    return {g["capture_id"] for g in r.json()["groups"]}


# pure
def test_a_certificate_in_full():
    ders = chain("a.example", ("a.example", "*.b.example"), dt.datetime(2025, 1, 1, tzinfo=dt.UTC), 30)
    leaf, mid, root = (certs.parse(d) for d in ders)
    assert leaf["subject"] == "CN=a.example, O=PacketTotal tests" and leaf["issuer"] == mid["subject"]
    assert leaf["sans"] == ["a.example", "*.b.example"] and leaf["serial"] == "00:A1:B2:C3"
    assert (leaf["key_type"], leaf["key_bits"], leaf["signature"]) == ("EC secp256r1", 256, "sha256WithRSAEncryption")
    assert (mid["key_type"], mid["key_bits"], mid["signature"]) == ("RSA", 2048, "ecdsa-with-SHA256")
    assert not leaf["self_signed"] and not mid["self_signed"] and root["self_signed"]
    x = x509.load_der_x509_certificate(ders[0])
    assert leaf["sha1"] == x.fingerprint(hashes.SHA1()).hex() and leaf["sha256"] == x.fingerprint(hashes.SHA256()).hex()
    assert leaf["not_before"] == "2025-01-01T00:00:00+00:00" and leaf["error"] is None
    at = dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    assert certs.validity(leaf, at) == "expired" and certs.validity(leaf, at - 60 * DAY) == "not_yet_valid"
    assert certs.validity(leaf, at - 50 * DAY) == "valid" and certs.validity(leaf, None) is None


def test_a_forged_self_signed_name_is_not_self_signed():
    """Issuer = subject but signed by another key: not issued by itself."""
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    n = _name("forged")
    forged = certs.parse(_cert(n, n, key, other, dt.datetime(2025, 1, 1, tzinfo=dt.UTC), 10, 5))
    assert forged["subject"] == forged["issuer"] and not forged["self_signed"]


@pytest.mark.parametrize(("host", "names", "cn", "match"), [
    ("www.example.com", ["www.example.com"], "", True),
    ("WWW.Example.COM.", ["www.example.com"], "", True),
    ("www.example.com", ["*.example.com"], "", True),
    ("a.b.example.com", ["*.example.com"], "", False),   # one label only
    ("example.com", ["*.example.com"], "", False),
    ("foo.com", ["*.com"], "", False),                   # not directly under a TLD
    ("www.example.com", ["w*.example.com"], "", True),   # partial left-most label
    ("www.example.com", ["www.*.com"], "", False),       # only in the left-most label
    ("xn--bcher-kva.example", ["*.example"], "", False),  # not an A-label
    ("cn.example", [], "CN=cn.example, O=x", True),      # no DNS SAN: the CN
    ("cn.example", ["other.example"], "CN=cn.example", False),  # SANs present: the CN is not used
    ("192.0.2.7", ["192.0.2.7"], "", True),
    ("192.0.2.7", ["*.example"], "CN=192.0.2.7", False),
])
def test_rfc6125_name_matching(host, names, cn, match):
    assert certs.name_matches(host, {"sans": names, "subject": cn}) is match


@pytest.mark.parametrize("item", ["", "not base64!", base64.b64encode(b"\x30\x82\xff\xff" + b"\0" * 40).decode(),
                                  base64.b64encode(b"\x30\x03\x02\x01\x00").decode(), "A" * 200_000, 7, None,
                                  "MIIB…"])
def test_hostile_chain_entries_never_raise(item):
    chains = certs.Chains()
    out = chains.add({"event_type": "tls", "timestamp": "2025-01-01T00:00:00+00:00", "flow_id": 1,
                      "tls": {"chain": [item]}})
    for c in chains.certs.values():
        assert c["error"] and c["sha256"] and c["subject"] == ""
    assert len(out) == len(chains.certs) and (chains.dropped == 1) is (not chains.certs)


def test_chains_are_bounded():
    der = base64.b64encode(chain("x.example", (), dt.datetime(2025, 1, 1, tzinfo=dt.UTC), 9)[0]).decode()
    chains = certs.Chains()
    for i in range(3):
        chains.add({"event_type": "tls", "flow_id": i, "tls": {"chain": [der] * (certs.MAX_CHAIN + 5)}})
    assert len(chains.certs) == 1 and len(chains.seen) == 3 * certs.MAX_CHAIN and chains.dropped == 15


# the real Suricata
@pytest.mark.parametrize("name", ["sv-tls-cert-chain.pcap", "sv-tls-pre1970-cert.pcap", "sv-sslv2-upgrade.pcap"])
def test_the_real_chain_lists_each_certificate_as_suricata_names_it(site, name):
    """The dev captures whose sessions carry certificates (one a chain each, as tshark counts)."""
    row = analysed(site, PCAPS / name)
    assert row["status"] == "done"
    cid = row["id"]
    tls = site.get(f"/api/v1/captures/{cid}/events", params={"type": "tls", "limit": 100}).json()["events"]
    tls = [e for e in tls if "chain" in e["event"]["tls"]]  # resumed sessions send none
    assert tls
    listed = {(c["subject"], c["issuer"]) for c in _certs(site, cid)}
    # every certificate of every logged chain, subject and issuer as Suricata wrote the leaf's
    leaves = {(e["event"]["tls"]["subject"], e["event"]["tls"]["issuerdn"]) for e in tls}
    assert leaves <= listed
    every = {certs.parse(base64.b64decode(b))["sha256"] for e in tls for b in e["event"]["tls"]["chain"]}
    assert {c["sha256"] for c in _certs(site, cid)} == every
    subject, issuer = next(iter(leaves))
    assert cid in search(site, f"cert.subject:{_phrase(subject)}")
    assert cid in search(site, f"cert.issuer:{_phrase(issuer)}")
    html = site.get(f"/captures/{cid}/tab/tls").text
    assert 'id="certificates"' in html and "issued by" in html
    assert ("self-signed" in html) is any(s == i for s, i in leaves)  # as Suricata's names say


def _phrase(v: str) -> str:
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _certs(site, cid: str) -> list[dict]:
    """The TLS tab's certificate rows, as the page lists them (data-sha256, subject, issuer)."""
    html = site.get(f"/captures/{cid}/tab/tls").text
    out = []
    for m in re.finditer(r'<tr class="cert" data-sha256="([0-9a-f]{64})">.*?class="cert-subject"[^>]*>(.*?)</a>'
                         r'.*?class="cert-issuer"[^>]*>(.*?)</a>', html, re.S):
        out.append({"sha256": m[1], "subject": htmllib.unescape(m[2]), "issuer": htmllib.unescape(m[3])})
    return out


def test_built_chains_findings_search_and_pivots(site, built):
    path, ders = built
    row = analysed(site, path)
    assert row["status"] == "done", row
    cid = row["id"]
    found = {(f["name"], f["key"]) for f in row["summary"]["findings"]}
    names = [f["name"] for f in row["summary"]["findings"]]
    assert sorted(names) == ["tls_expired", "tls_name_mismatch", "tls_not_yet_valid"], found  # once each
    assert ("tls_name_mismatch", "elsewhere.example ≠ future.example, *.future.example") in found
    assert any(n == "tls_expired" and k.startswith("CN=old.shop.example") for n, k in found)
    # every certificate of the chains, the intermediates' and roots' too
    listed = {c["sha256"]: c for c in _certs(site, cid)}
    assert set(listed) == {sha256(d) for ds in ders.values() for d in ds}
    for q in ('cert.issuer:"CN=PT Test Root CA, O=PacketTotal tests"',    # the intermediates' issuer
              'cert.subject:"CN=PT Test Intermediate CA, O=PacketTotal tests"', "cert.san:*.good.example",
              "cert.san:old.shop.example", f"cert.sha256:{sha256(ders['good'][1])}",
              f"cert.sha1:{certs.parse(ders['early'][2])['sha1']}", 'cert.serial:"00:a1:b2:c3"', "cert.serial:A1B2C3",
              r"cert.serial:a1\:b2*",
              "cert.issuer:*intermediate*", "finding:tls_name_mismatch", "finding:tls_not_yet_valid"):
        assert cid in search(site, q), q
    assert cid not in search(site, "cert.san:nothing.example")
    # a certificate's fingerprints pivot (the intermediate's, not only the leaf's)
    mid = certs.parse(ders["expired"][1])
    for value in (mid["sha256"], mid["sha1"]):
        pivot = site.get(f"/api/v1/ioc/{value}").json()
        assert cid in {c["capture_id"] for c in pivot["captures"]}, pivot
        mine = next(c for c in pivot["captures"] if c["capture_id"] == cid)
        assert "tls" in mine["found_in"] and "tls.chain" not in mine["where"].get("tls", "")  # no field holds it
    # shown: the TLS tab, and the records of the flow the chain came in
    html = site.get(f"/captures/{cid}/tab/tls").text
    assert "expired when seen" in html and "not yet valid when seen" in html and "*.good.example" in html
    flow_id = site.get(f"/api/v1/captures/{cid}/events",
                       params={"type": "tls", "q": "tls.sni:old.shop.example"}).json()["events"][0]["event"]["flow_id"]
    page = site.get(f"/captures/{cid}/flows/{flow_id}").text
    assert 'id="certificates"' in page and "CN=old.shop.example" in page and "CN=www.good.example" not in page
    assert mid["sha256"] in page
    api = site.get(f"/api/v1/captures/{cid}/certs").json()
    assert len(api) == 9 and {c["sha256"] for c in api} == set(listed)
    old = next(c for c in api if c["subject"].startswith("CN=old.shop.example"))
    assert old["statuses"] == ["expired"]
    assert (old["seen"][0]["position"], old["seen"][0]["sni"]) == (0, "old.shop.example")


def test_a_reanalysis_replaces_the_certificates(site, built):
    path, ders = built
    row = analysed(site, path)
    before = _certs(site, row["id"])
    r = site.post(f"/api/v1/captures/{row['id']}/reanalyse")
    assert r.status_code in (200, 202), r.text
    again = wait_done(site, row["id"])
    assert again["status"] == "done"
    assert sorted(names(again)) == ["tls_expired", "tls_name_mismatch", "tls_not_yet_valid"]
    assert sorted(c["sha256"] for c in _certs(site, row["id"])) == sorted(c["sha256"] for c in before)


def names(row: dict) -> list[str]:
    return [f["name"] for f in row["summary"]["findings"]]


def test_hostile_certificate_text_is_shown_escaped(site, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    evil = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "<script>alert(1)</script>"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, '"><img src=x onerror=alert(2)>')])
    der = _cert(evil, evil, key, key, dt.datetime(2025, 1, 1, tzinfo=dt.UTC), 365, 9,
                sans=("<svg onload=alert(3)>.example",))
    path = tmp_path / "evil-cert.pcap"
    wrpcap(str(path), session(_Clock(), 50009, "evil.example", [der]))
    row = analysed(site, path)
    cid = row["id"]
    for page in (f"/captures/{cid}/tab/tls", f"/captures/{cid}/tab/anomaly"):
        html = site.get(page).text
        assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html, page
        assert_inert(html, page)


def test_built_capture_through_the_service(service, built):
    """The service alone (no web): the summary counts the certificates."""
    row = analyse(service, built[0])
    assert row["summary"]["certs"] == 9


def test_an_unreadable_leaf_is_not_replaced_by_the_next_certificate():
    """A leaf that cannot be read (or is past the size bound) leaves the self-signed and name
    checks to Suricata's own fields: the root behind it is not judged as the leaf."""
    from packettotal.ingest.findings import TlsOdd
    root = base64.b64encode(chain("www.example.com", ("www.example.com",), dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
                                  365)[2]).decode()
    tls = {"sni": "www.example.com", "subject": "CN=www.example.com", "issuerdn": "CN=PT Test Intermediate CA",
           "chain": ["!!notbase64!!", root]}
    detector = TlsOdd()
    detector.add({"event_type": "tls", "timestamp": "2025-06-15T00:00:00.000000+0000", "flow_id": 1,
                  "src_ip": "10.0.0.1", "dest_ip": "192.0.2.1", "dest_port": 443, "tls": tls})
    assert [f.name for f in detector.findings()] == []
    tls["subject"] = tls["issuerdn"] = "CN=www.example.com"  # Suricata says the leaf issued itself
    detector = TlsOdd()
    detector.add({"event_type": "tls", "timestamp": "2025-06-15T00:00:00.000000+0000", "flow_id": 1,
                  "src_ip": "10.0.0.1", "dest_ip": "192.0.2.1", "dest_port": 443, "tls": tls})
    assert [f.name for f in detector.findings()] == ["tls_self_signed"]
