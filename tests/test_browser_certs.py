"""Certificates and NetBIOS names in Chromium (the fixtures of tests/test_browser.py): the TLS tab's
Certificates section and a flow's chain, a certificate carrying markup shown as text, the
Summary's NetBIOS names and their search link."""

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from scapy.utils import wrpcap

from packettotal.demo import _Clock

from .test_browser import _uploaded, browser, page, pytestmark, server  # noqa: F401  (fixtures)
from .test_certs import _cert, chain, session
from .test_netbios import nbns_capture

EVIL_CN = "<img src=x onerror=window.__pwned=1>"


def _opened(pg, base: str, cid: str, path: str = "") -> None:
    pg.goto(f"{base}/captures/{cid}")
    pg.locator("nav.tabs").wait_for(timeout=60_000)  # the status page reloads itself when done
    if path:
        pg.goto(f"{base}/captures/{cid}{path}")


def test_certificates_on_the_tls_tab_and_the_flow_page(page, server, tmp_path):  # noqa: F811
    clock = _Clock()
    good = chain("www.good.example", ("*.good.example",), dt.datetime(2025, 1, 1, tzinfo=dt.UTC), 365)
    key = ec.generate_private_key(ec.SECP256R1())
    evil = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, EVIL_CN)])
    hostile = _cert(evil, evil, key, key, dt.datetime(2020, 1, 1, tzinfo=dt.UTC), 30, 3, sans=(EVIL_CN,))
    path = tmp_path / "browser-chains.pcap"
    wrpcap(str(path), session(clock, 50011, "api.good.example", good) + session(clock, 50012, "x.example", [hostile]))
    cid = _uploaded(server, path)
    _opened(page, server, cid, "/tab/tls")
    rows = page.locator("table#certificates tr.cert")
    assert rows.count() == 4
    shown = page.locator("table#certificates").inner_text()
    assert "CN=PT Test Intermediate CA, O=PacketTotal tests" in shown and "*.good.example" in shown
    assert f"CN={EVIL_CN}" in shown and "expired when seen" in shown and "self-signed" in shown
    assert page.evaluate("() => window.__pwned") is None and page.dialogs == []
    # the leaf's sessions link to their flow, whose page shows that chain only
    page.locator("table#certificates tr.cert", has_text="CN=www.good.example").locator("td").last \
        .locator("a").first.click()
    page.wait_for_url("**/flows/**")
    flow = page.locator("table#certificates").inner_text()
    assert "CN=www.good.example" in flow and "PT Test Root CA" in flow and EVIL_CN not in flow
    # an issuer's link searches the captures holding it
    page.locator("table#certificates a.cert-issuer").first.click()
    page.wait_for_url("**/search?*")
    assert page.locator(f'a[href="/captures/{cid}"]').count() >= 1


def test_netbios_names_on_the_summary(page, server, tmp_path):  # noqa: F811
    path = tmp_path / "browser-nbns.pcap"
    nbns_capture(path)
    cid = _uploaded(server, path)
    _opened(page, server, cid)
    names = page.locator("#netbios-names").inner_text()
    assert "WORKGROUP<1d>" in names and "FILESRV01<20>" in names
    page.locator("#netbios-names a", has_text="search").first.click()
    page.wait_for_url("**/search?*")
    assert "netbios.name:" in page.locator("input[type=search][name=q]").input_value()
    assert page.locator(f'a[href="/captures/{cid}"]').count() >= 1
