"""The EVE types declared once: what is derived from the declaration stays what it was.

The frozen lists below are the catalogue, the tabs and the observable rules as they were before
they were derived from src/packettotal/evetypes.py; they are kept here on purpose."""

from packettotal import evetypes
from packettotal.ingest import observables
from packettotal.query import fields
from packettotal.records import values_at
from packettotal.web import tabs

from .conftest import PCAPS, analyse

# The tantivy schema numbers its fields in this order (tests/golden/tantivy.txt, indexes on disk):
# new fields may only come after these.
FROZEN_CATALOG = [
    ("timestamp", "date", True), ("event_type", "keyword", True), ("src_ip", "ip", True),
    ("dest_ip", "ip", True), ("src_port", "int", True), ("dest_port", "int", True),
    ("proto", "keyword", True), ("app_proto", "keyword", True), ("community_id", "keyword", False),
    ("flow_id", "keyword", False), ("flow.bytes_toserver", "int", True), ("flow.bytes_toclient", "int", True),
    ("flow.pkts_toserver", "int", False), ("flow.pkts_toclient", "int", False), ("flow.age", "int", False),
    ("flow.state", "keyword", False), ("flow.reason", "keyword", False), ("dns.type", "keyword", False),
    ("dns.rrname", "keyword", False), ("dns.rrtype", "keyword", False), ("dns.rcode", "keyword", False),
    ("dns.answers.rdata", "keyword", False), ("http.hostname", "keyword", False), ("http.url", "keyword", False),
    ("http.http_user_agent", "keyword", False), ("http.http_method", "keyword", False),
    ("http.status", "int", False), ("http.http_content_type", "keyword", False),
    ("http.http_refer", "keyword", False), ("http.protocol", "keyword", False), ("http.length", "int", False),
    ("tls.sni", "keyword", False), ("tls.subject", "keyword", False), ("tls.issuerdn", "keyword", False),
    ("tls.fingerprint", "keyword", False), ("tls.serial", "keyword", False), ("tls.version", "keyword", False),
    ("tls.ja3.hash", "keyword", False), ("tls.ja3s.hash", "keyword", False), ("tls.ja4", "keyword", False),
    ("tls.notbefore", "keyword", False), ("tls.notafter", "keyword", False), ("quic.sni", "keyword", False),
    ("quic.ja4", "keyword", False), ("fileinfo.filename", "keyword", False), ("fileinfo.magic", "keyword", False),
    ("fileinfo.md5", "keyword", False), ("fileinfo.sha1", "keyword", False), ("fileinfo.sha256", "keyword", False),
    ("fileinfo.size", "int", False), ("fileinfo.state", "keyword", False), ("alert.signature", "keyword", False),
    ("alert.signature_id", "int", False), ("alert.category", "keyword", False), ("alert.severity", "int", False),
    ("anomaly.type", "keyword", False), ("anomaly.event", "keyword", False), ("anomaly.layer", "keyword", False),
    ("smtp.helo", "keyword", False), ("smtp.mail_from", "keyword", False), ("smtp.rcpt_to", "keyword", False),
    ("email.from", "keyword", False), ("email.to", "keyword", False), ("email.subject", "keyword", False),
    ("email.attachment", "keyword", False), ("ssh.client.software_version", "keyword", False),
    ("ssh.server.software_version", "keyword", False), ("ssh.client.hassh.hash", "keyword", False),
    ("smb.command", "keyword", False), ("smb.filename", "keyword", False), ("smb.share", "keyword", False),
    ("ftp.command", "keyword", False), ("ftp.command_data", "keyword", False), ("dhcp.hostname", "keyword", False),
    ("dhcp.client_mac", "keyword", False), ("krb5.cname", "keyword", False), ("krb5.sname", "keyword", False),
    ("krb5.realm", "keyword", False), ("snmp.community", "keyword", False), ("sip.method", "keyword", False),
    ("sip.uri", "keyword", False), ("rdp.client.client_name", "keyword", False),
    ("mqtt.publish.topic", "keyword", False),
]

FROZEN_TABS = [
    ("alert", "Malicious activity"), ("anomaly", "Strange activity"), ("flow", "Connections"), ("dns", "DNS"),
    ("http", "HTTP"), ("tls", "TLS"), ("fileinfo", "Files"), ("smtp", "SMTP"), ("ftp", "FTP"), ("ssh", "SSH"),
    ("smb", "SMB"), ("dhcp", "DHCP"), ("krb5", "Kerberos"), ("sip", "SIP"), ("rdp", "RDP"), ("snmp", "SNMP"),
    ("quic", "QUIC"), ("mqtt", "MQTT"), ("dnp3", "DNP3"), ("modbus", "Modbus"),
]

# today's observable rules, and the extraction they drive
IP_FIELDS = ("src_ip", "dest_ip", "dns.answers.rdata", "dns.grouped.A", "dns.grouped.AAAA",
             "dhcp.assigned_ip", "dhcp.client_ip", "smtp.x_originating_ip", "http.xff")
DOMAIN_FIELDS = ("dns.rrname", "dns.queries.rrname", "dns.answers.rrname", "dns.grouped.CNAME",
                 "dns.answers.rdata", "http.hostname", "tls.sni", "quic.sni", "smtp.helo",
                 "krb5.sname", "http2.request_headers.authority")
TEXT_FIELDS = {"http.http_user_agent": "user_agent", "tls.subject": "cert_subject",
               "tls.issuerdn": "cert_issuer", "community_id": "community_id",
               "tls.ja3.hash": "ja3", "tls.ja3s.hash": "ja3s", "tls.ja4": "ja4", "quic.ja4": "ja4",
               "ssh.client.hassh.hash": "hassh", "ssh.server.hassh.hash": "hassh",
               "tls.fingerprint": "cert_sha1"}
HASH_FIELDS = ("fileinfo.md5", "fileinfo.sha1", "fileinfo.sha256", "smtp.body_md5", "email.body_md5")
EMAIL_FIELDS = ("smtp.mail_from", "smtp.rcpt_to", "email.from", "email.to", "email.cc", "email.reply_to")
LOWERED = {"cert_sha1", "ja3", "ja3s", "hassh"}


def frozen_extract(rec: dict) -> set[tuple[str, str, str]]:
    out = set()
    for rule, fs in (("ip", IP_FIELDS), ("domain", DOMAIN_FIELDS), ("text", tuple(TEXT_FIELDS)),
                     ("hash", HASH_FIELDS), ("email", EMAIL_FIELDS)):
        for f in fs:
            for s in values_at(rec, f):
                if not isinstance(s, str):
                    continue
                if rule == "ip" and (ip := observables.norm_ip(s)):
                    out.add(("ip", ip, f))
                elif rule == "domain" and (d := observables.norm_domain(s)):
                    out.add(("domain", d, f))
                elif rule == "hash" and (h := observables.norm_hash(s)):
                    out.add((h[0], h[1], f))
                elif rule == "email":
                    out.update(("email", m.group(0).lower(), f) for m in observables._EMAIL.finditer(s))
                elif rule == "text" and s:
                    kind = TEXT_FIELDS[f]
                    out.add((kind, (s.lower() if kind in LOWERED else s)[:observables.MAX_VALUE], f))
    http = rec.get("http")
    if isinstance(http, dict) and isinstance(http.get("url"), str):
        host = http.get("hostname") if isinstance(http.get("hostname"), str) else None
        url = http["url"]
        if host and url.startswith("/"):
            port = http.get("http_port")
            url = f"http://{f'{host}:{port}' if port and port not in (80,) else host}{url}"
        out.add(("url", url[:observables.MAX_VALUE], "http.url"))
    return out


def test_catalogue_order_is_unchanged():
    now = [(f.name, f.kind, f.fast) for f in fields.CATALOG]
    assert now[:len(FROZEN_CATALOG)] == FROZEN_CATALOG
    assert len(fields.BY_NAME) == len(fields.CATALOG)  # no name declared twice


def test_tab_order_is_unchanged():
    shown = tabs.tabs_for({key: 1 for key, _ in reversed(FROZEN_TABS)} | {"stats": 1, "nfs": 1})
    assert [(t.key, t.title) for t, _ in shown] == [("summary", "Summary"), *FROZEN_TABS, ("nfs", "NFS")]


SAMPLES = ["10.1.2.3", "2001:DB8::1", "Evil.Example.COM.", "www.example.org:8080", "D41D8CD98F00B204E9800998ECF8427E",
           "DA:39:A3:EE:5E:6B:4B:0D:32:55:BF:EF:95:60:18:90:AF:D8:07:09", "Bob <Bob@Example.com>, eve@evil.example",
           "/index.php?a=1", "", "x" * 2000, "CN=localhost", 7, None]


def _nest(paths, leaf) -> dict:
    rec: dict = {}
    for p in paths:
        *parents, last = p.split(".")
        cur = rec
        for part in parents:
            cur = cur.setdefault(part, {})
        cur[last] = leaf(p)
    return rec


def test_extraction_over_every_declared_field_is_unchanged():
    paths = {*IP_FIELDS, *DOMAIN_FIELDS, *TEXT_FIELDS, *HASH_FIELDS, *EMAIL_FIELDS, "http.url", "http.http_port"}
    paths |= {f for t in evetypes.ALL for fs in t.observables.values() for f in fs}
    cases = [_nest(paths, lambda p: list(SAMPLES)), *(_nest(paths, lambda p, s=s: s) for s in SAMPLES)]
    cases.append({"http": [{"url": "/a", "hostname": "h.example"}], "dns": {"answers": [{"rdata": "10.0.0.9"},
                  {"rdata": "cname.example"}], "queries": [{"rrname": "q.example"}]}})
    cases.append({"http": {"url": "/b", "hostname": "h.example", "http_port": 8080}, "src_ip": ["10.0.0.1", 3]})
    for rec in cases:
        assert observables.extract(rec) == frozen_extract(rec)


CAPTURES = ["dpkt-http.pcap", "sv-tls-cert-chain.pcap", "cs-ek_to_cryptowall4.pcapng", "sv-smtp-attachment.pcap",
            "sv-smtp-rfc2231.pcap", "sv-ssh-hassh.pcap", "sv-dhcp-option60.pcap", "sv-krb5-frag.pcap",
            "sv-quic-retry.pcap", "sv-http2-range.pcap", "sv-tls-ipv6-communityid.pcap", "cs-http_espn.pcapng",
            "sv-dns-nxdomain-soa.pcap"]


def test_extraction_over_real_captures_is_unchanged(service):
    kinds: set[str] = set()
    records = 0
    for name in CAPTURES:
        if not (PCAPS / name).exists():
            continue
        cap = analyse(service, PCAPS / name)
        assert cap["status"] == "done", (name, cap.get("error"))
        for rec in service.export_events(cap["id"]):
            records += 1
            got = observables.extract(rec)
            assert got == frozen_extract(rec), (name, rec.get("event_type"))
            kinds.update(k for k, _, _ in got)
    assert records > 300
    assert {"ip", "domain", "url", "user_agent", "ja3", "cert_subject", "md5", "email", "hassh"} <= kinds, kinds


def test_declared_observables_are_todays():
    declared = {(f, k) for t in evetypes.ALL for k, fs in t.observables.items() for f in fs}
    frozen = {(f, "ip") for f in IP_FIELDS} | {(f, "domain") for f in DOMAIN_FIELDS} | set(TEXT_FIELDS.items())
    frozen |= {(f, "hash") for f in HASH_FIELDS} | {(f, "email") for f in EMAIL_FIELDS} | {("http.url", "url")}
    assert declared == frozen


def test_every_linked_column_holds_observables():
    declared = {f for t in evetypes.ALL for fs in t.observables.values() for f in fs}
    for t in tabs.KNOWN.values():
        for col in t.columns:
            assert not col.ioc or set(col.paths) & declared, (t.key, col.label)
            assert col.sort is None or fields.BY_NAME[col.sort].fast, (t.key, col.label)


def test_every_alias_names_catalogue_fields():
    for alias, names in fields.ALIASES.items():
        assert all(n in fields.BY_NAME for n in names), alias
        assert alias not in fields.BY_NAME


def test_a_tab_not_in_the_order_comes_after_the_listed_ones(monkeypatch):
    extra = evetypes.EveType("pgsql", title="PostgreSQL", columns=(evetypes.TIME, *evetypes.ENDS))
    monkeypatch.setattr(evetypes, "TYPES", (*evetypes.TYPES, extra))
    assert [t.name for t in evetypes.tabbed()] == [*evetypes.TAB_ORDER, "pgsql"]
