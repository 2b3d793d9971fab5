"""Indicators typed alone (query/indicators.py) and unknown fields (query/suggest.py): pure, no
service. Every Lucene query must stay a query; only a lone indicator goes to its pivot."""

import pytest

from packettotal.query import fields as catalog, lucene, suggest
from packettotal.query.indicators import MAX_INDICATOR, classify, join_bulk, kind_of, pivot_value, public_suffixes, \
    refang, split_bulk

TLDS = public_suffixes()
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
SHA1 = "3395856ce81f2b7382dee72602f798b642f14140"
MD5 = "44d88612fea8a8f36de82e1278abb02f"
JA4 = "t13d1516h2_8daaf6152771_b186095e22b6"
CERT = "d6:ee:50:3c:62:7f:0e:8c:7b:a9:49:53:fc:88:ab:2a:00:f5:d7:1f"


@pytest.mark.parametrize("typed,value,kind,defanged", [
    (SHA256, SHA256, "sha256", False),
    (SHA256.upper(), SHA256, "sha256", False),
    (SHA1, SHA1, "sha1", False),
    (MD5, MD5, "md5", False),
    ("  " + MD5 + "\n", MD5, "md5", False),
    (JA4, JA4, "ja4", False),
    (CERT, CERT, "cert_sha1", False),
    (CERT.upper(), CERT, "cert_sha1", False),
    ("1.2.3.4", "1.2.3.4", "ip", False),
    ("1.2.3[.]4", "1.2.3.4", "ip", True),
    ("1[.]2[.]3[.]4", "1.2.3.4", "ip", True),
    ("2001:db8::1", "2001:db8::1", "ip", False),
    ("::ffff:10.0.0.1", "::ffff:10.0.0.1", "ip", False),
    ("2001:db8[:]:1", "2001:db8::1", "ip", True),
    ("www.ethereal.com", "www.ethereal.com", "domain", False),
    ("WWW.Ethereal.COM.", "www.ethereal.com", "domain", False),
    ("evil[.]com", "evil.com", "domain", True),
    ("evil(.)com", "evil.com", "domain", True),
    ("evil{.}com", "evil.com", "domain", True),
    ("evil[dot]com", "evil.com", "domain", True),
    ("evil[DOT]co(dot)uk", "evil.co.uk", "domain", True),
    ("dns.google", "dns.google", "domain", False),
    ("xn--bcher-kva.de", "xn--bcher-kva.de", "domain", False),
    ("http://www.ethereal.com/download.html", "http://www.ethereal.com/download.html", "url", False),
    ("hxxp://host[.]tld/path", "http://host.tld/path", "url", True),
    ("hxxps://evil[.]com/a?b=C", "https://evil.com/a?b=C", "url", True),
    ("hXXp[:]//Evil[.]COM/Path", "http://evil.com/Path", "url", True),
    ("hxxp[://]evil[.]com", "http://evil.com", "url", True),
    ("HTTP://WWW.X.COM/CaseKept", "http://www.x.com/CaseKept", "url", False),
    ("http://10.0.0.1:8080/x.exe", "http://10.0.0.1:8080/x.exe", "url", False),
    ("http://[2001:db8::1]/x", "http://[2001:db8::1]/x", "url", False),
    ("fxp://ftp[.]example[.]org/f", "ftp://ftp.example.org/f", "url", True),
    ("user@example.com", "user@example.com", "email", False),
    ("User[@]Example[.]com", "user@example.com", "email", True),
    ("user[at]example[dot]com", "user@example.com", "email", True),
    ("user(at)example(.)com", "user@example.com", "email", True),
])
def test_lone_indicators_are_told_and_refanged(typed, value, kind, defanged):
    found = classify(typed, TLDS)
    assert found is not None, typed
    assert (found.value, found.kind, found.defanged) == (value, kind, defanged)


@pytest.mark.parametrize("query", [
    "src_ip:1.2.3.4", "dest_ip:2001:db8::1", "ip:10.0.0.0/8", "10.0.0.0/8", "http.hostname:evil.com",
    "domain:evil.com", f"hash:{SHA1}", f"fileinfo.sha256:{SHA256}", "evil.com AND x", "evil.com x",
    "evil.com OR 1.2.3.4", "NOT evil.com", "-evil.com", "+evil.com", "(evil.com)", '"evil.com"', f'"{SHA1}"',
    "*.evil.com", "evil.*", "evil.co?", "evil.com~", "evil.com^2", "/evil.com/", "[1.2.3.4 TO 1.2.3.5]",
    "dns", "event_type:dns", "tag:emotet", "finding:beacon", "ndpi.app", "ndpi.app:TLS", "geo.country:RU",
    "tls.sni", "dns.rrname", "http.hostname", "invoice.pdf", "setup.exe", "a.b", "printer.local",
    "1.2.3", "1.2.3.4.5", "999.1.1.1", "fe80::1%eth0", "deadbeef", SHA1[:39], SHA1 + "0", "g" * 40,
    "http://", "http://a b", "http://evil.com:99999/", "javascript://evil.com/%0aalert(1)", "file:///etc/passwd",
    "mailto:user@example.com", "user@", "@example.com", "user@@example.com", "a@b", "<script>@x.com",
    "еvil.com",  # a Cyrillic е
    "evil.com\x00", "evil\u200b.com", "x" * (MAX_INDICATOR + 1), "a." * 1500 + "com", "", "   ", "*",
    "t13d1516h2_8daaf6152771", "aa:bb:cc", CERT + ":00", "hxxp evil.com", "http.url:http://evil.com/x",
    "ip:1.2.3.4", "01.02.03.04",
])
def test_queries_and_odd_inputs_stay_queries(query):
    assert classify(query, TLDS) is None


def test_a_domain_needs_a_real_top_level_domain_unless_none_is_installed(tmp_path):
    assert TLDS is not None and {"com", "uk", "google", "zip"} <= TLDS and not {"pdf", "exe", "local"} & TLDS
    assert classify("invoice.pdf", TLDS) is None and classify("archive.zip", TLDS).kind == "domain"
    assert classify("invoice.pdf", None).kind == "domain"  # no list: any alphabetic one
    assert public_suffixes(tmp_path / "missing.dat") is None
    psl = tmp_path / "psl.dat"
    psl.write_text("// comment\ncom\n*.ck\n!www.ck\n公司\n\nco.uk   trailing\n", encoding="utf-8")
    assert public_suffixes(psl) == {"com", "ck", "xn--55qx5d", "uk"}


def test_refang_changes_only_the_defangings():
    assert refang("hxxp://a[.]b(.)c{.}d[dot]e/p[at]q[:]r") == "http://a.b.c.d.e/p@q:r"
    assert refang("hxxps[://]x") == "https://x" and refang("h**p://x") == "http://x"
    for text in ("dns.rrname:*.evil.com AND src_ip:10.0.0.0/8", "hxxpd://x", "thxxp://x", "[a TO b]",
                 "x[.", "(dot", "Mozilla/5.0 (X11; Linux x86_64)", ""):
        assert refang(text) == text
    assert refang("[.]" * 10_000) == "." * 10_000  # linear, bounded


def test_pivot_value_refangs_only_indicators():
    assert pivot_value("hxxp://evil[.]com/x") == "http://evil.com/x"
    assert pivot_value("evil[.]com") == "evil.com"
    assert pivot_value("Mozilla/5.0 [at] home") == "Mozilla/5.0 [at] home"  # a user agent stays as typed
    assert pivot_value("www.ethereal.com") == "www.ethereal.com"


def test_kind_of_bounds_its_input():
    assert kind_of("a" * 40) == kind_of("A" * 40) == "sha1" and kind_of("g" * 40) is None and kind_of("") is None
    assert kind_of("0" * 64) == "sha256" and kind_of("1.1.1.1\n") is None


def test_bulk_splits_on_newlines_commas_and_semicolons_not_spaces():
    text = ('evil[.]com, 1.2.3.4;user[at]x[.]org\r\n\n  hxxp://a[.]b/c d ;; ,\n'
            '"Mozilla/5.0 (X11; Linux x86_64; rv:1.0)"\nevil.com\nEVIL[.]com\n"unterminated; here')
    assert split_bulk(text, 1000) == ["evil[.]com", "1.2.3.4", "user[at]x[.]org", "hxxp://a[.]b/c d",
                                      "Mozilla/5.0 (X11; Linux x86_64; rv:1.0)", "EVIL[.]com", '"unterminated',
                                      "here"]
    assert split_bulk(",".join(f"10.0.0.{i}" for i in range(200)), 50) == [f"10.0.0.{i}" for i in range(50)]
    assert split_bulk(" ,;\n\n", 10) == []
    values = split_bulk(text, 1000)
    assert split_bulk(join_bulk(values), 1000) == values  # what the results page posts again to export


@pytest.mark.parametrize("name,near", [
    ("dns.rrnam", ["dns.rrname"]), ("http.hostnam", ["http.hostname"]), ("dns.rrname", None),
    ("src_ip", None), ("ip", None), ("capture", None), ("tag", None), ("family", None), ("finding", None),
    ("hunt", None), ("yara", None), ("intel", None), ("asn", None), ("geo.country", None), ("geo.range", None),
    ("ndpi.app", None), ("ndpi.category", None), ("ndpi.risk", None),
    ("dns.opcode", None), ("tcp.tcp_flags", None), ("metadata.flowbits", None), ("tx_id", None),
])
def test_unknown_fields_and_their_nearest(name, near):
    got = suggest.unknown(name)
    assert got == near if near is None else got[:len(near)] == near


def test_every_field_the_catalogue_lists_is_known():
    assert all(suggest.unknown(r["name"]) is None for r in catalog.catalogue())


def test_a_field_under_no_eve_key_is_unknown_with_suggestions_or_none():
    assert suggest.unknown("dnss.rrname") == ["dns.rrname"]
    assert suggest.unknown("zzzz") == []
    assert suggest.message("zzzz", []) == "unknown field 'zzzz'; see the field list (/fields)"
    assert suggest.message("dns.rrnam", ["dns.rrname"]) == "unknown field 'dns.rrnam'; did you mean dns.rrname?"
    found = suggest.first_unknown(lucene.parse("event_type:dns AND (NOT dns.rrnam:x OR http.hostnam:y)"))
    assert found is not None and found[0] == "dns.rrnam" and found[1][0] == "dns.rrname"
    assert suggest.first_unknown(lucene.parse("evil.com AND tag:x AND ndpi.risk:*")) is None


def test_the_public_suffix_list_is_the_bundled_one():
    suffixes = public_suffixes()
    assert suffixes is not None and {"com", "net", "uk", "xn--p1ai"} <= suffixes and "local" not in suffixes
