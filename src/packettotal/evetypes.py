"""The EVE types, declared once: for each, its catalogue fields, which fields hold observables
(IOCs) and of what kind, and its console tab. query/fields.py (the catalogue), ingest/observables.py
(the extraction rules) and web/tabs.py (the tabs) are derived from this table.

Order matters twice. The catalogue is COMMON's fields then each type's, in declaration order, and
the tantivy schema numbers its fields in that order: declare new types, and new fields, last.
Tabs follow TAB_ORDER; a type with a tab not listed there comes after the listed ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # keyword | int | ip | date
    example: str
    help: str = ""
    fast: bool = False  # kept column-wise too, for sorting and top-N aggregations


@dataclass(frozen=True)
class Column:
    label: str
    paths: tuple[str, ...]      # values of all these paths, joined
    ioc: bool = False           # values link to /ioc/<value>
    sort: str | None = None     # fast field the table can sort by


@dataclass(frozen=True)
class EveType:
    name: str  # the EVE event_type
    fields: tuple[Field, ...] = ()  # catalogue fields
    # observable kind -> the fields holding it. Kinds ip, domain, hash (md5/sha1/sha256 by length),
    # email and url are parsed and normalised (ingest/observables.py); any other kind is kept as text.
    observables: dict[str, tuple[str, ...]] = field(default_factory=dict)
    title: str | None = None  # its console tab; None: the generic tab (endpoints and the record)
    columns: tuple[Column, ...] = ()


def _k(name: str, example: str, help: str = "") -> Field:
    return Field(name, "keyword", example, help)


def _i(name: str, example: str, help: str = "") -> Field:
    return Field(name, "int", example, help)


def _c(label: str, *paths: str, ioc: bool = False, sort: str | None = None) -> Column:
    return Column(label, paths, ioc, sort)


TIME = _c("Time", "timestamp", sort="timestamp")
SRC = _c("Source", "src_ip", ioc=True)
SPORT = _c("Port", "src_port", sort="src_port")
DST = _c("Destination", "dest_ip", ioc=True)
DPORT = _c("Port", "dest_port", sort="dest_port")
PROTO = _c("Proto", "proto", sort="proto")
APP = _c("App", "app_proto", sort="app_proto")
ENDS = (SRC, SPORT, DST, DPORT)

# the fields every record may carry
COMMON = EveType(
    "", (
        Field("timestamp", "date", "[2020-01-01 TO 2020-02-01]", "time of the event (UTC)", fast=True),
        Field("event_type", "keyword", "dns",
              "EVE record type: alert, anomaly, flow, dns, http, tls, fileinfo, ...", fast=True),
        Field("src_ip", "ip", "10.0.0.0/8", "source address; CIDR accepted", fast=True),
        Field("dest_ip", "ip", "2001:db8::/32", "destination address; CIDR accepted", fast=True),
        Field("src_port", "int", "[1024 TO *]", fast=True), Field("dest_port", "int", "443", fast=True),
        Field("proto", "keyword", "TCP", fast=True), Field("app_proto", "keyword", "http", fast=True),
        _k("community_id", '"1:abcd...="'), _k("flow_id", "1209992739716149")),
    {"ip": ("src_ip", "dest_ip"), "community_id": ("community_id",)})

TYPES: tuple[EveType, ...] = (
    EveType("flow", (
        Field("flow.bytes_toserver", "int", "[100000 TO *]", fast=True),
        Field("flow.bytes_toclient", "int", "[100000 TO *]", fast=True),
        _i("flow.pkts_toserver", "[10 TO *]"), _i("flow.pkts_toclient", "[10 TO *]"),
        _i("flow.age", "[60 TO *]"), _k("flow.state", "established"), _k("flow.reason", "timeout")),
        title="Connections", columns=(
            _c("Start", "flow.start"), *ENDS, PROTO, APP,
            _c("Pkts out", "flow.pkts_toserver"), _c("Pkts in", "flow.pkts_toclient"),
            _c("Bytes out", "flow.bytes_toserver", sort="flow.bytes_toserver"),
            _c("Bytes in", "flow.bytes_toclient", sort="flow.bytes_toclient"),
            _c("Age (s)", "flow.age"), _c("State", "flow.state"), _c("Community ID", "community_id", ioc=True))),
    EveType("dns", (
        _k("dns.type", "answer"), _k("dns.rrname", "*.evil.com"), _k("dns.rrtype", "TXT"),
        _k("dns.rcode", "NXDOMAIN"), _k("dns.answers.rdata", "93.184.216.34")),
        {"ip": ("dns.answers.rdata", "dns.grouped.A", "dns.grouped.AAAA"),
         "domain": ("dns.rrname", "dns.queries.rrname", "dns.answers.rrname", "dns.grouped.CNAME",
                    "dns.answers.rdata")},
        "DNS", (
            TIME, _c("Kind", "dns.type"), _c("Name", "dns.rrname", "dns.queries.rrname", ioc=True),
            _c("Type", "dns.rrtype", "dns.queries.rrtype"), _c("Rcode", "dns.rcode"),
            _c("Answers", "dns.answers.rdata", "dns.grouped.A", "dns.grouped.AAAA", "dns.grouped.CNAME",
               ioc=True),
            *ENDS)),
    EveType("http", (
        _k("http.hostname", "*.example.com"), _k("http.url", "*/wp-login.php"),
        _k("http.http_user_agent", "curl*"), _k("http.http_method", "POST"), _i("http.status", "[400 TO 599]"),
        _k("http.http_content_type", "application/x-dosexec"), _k("http.http_refer", "*google*"),
        _k("http.protocol", "HTTP/1.1"), _i("http.length", "[1000000 TO *]")),
        {"ip": ("http.xff",), "domain": ("http.hostname",), "url": ("http.url",),
         "user_agent": ("http.http_user_agent",)},
        "HTTP", (
            TIME, _c("Method", "http.http_method"), _c("Host", "http.hostname", ioc=True), _c("URL", "http.url"),
            _c("Status", "http.status"), _c("User agent", "http.http_user_agent", ioc=True),
            _c("Referer", "http.http_refer"),
            _c("Content type", "http.http_content_type"), _c("Length", "http.length"), *ENDS)),
    EveType("tls", (
        _k("tls.sni", "*.onion.to"), _k("tls.subject", "*CN=localhost*"), _k("tls.issuerdn", "*Let's Encrypt*"),
        _k("tls.fingerprint", "5a:bd:..."), _k("tls.serial", "00:A1:..."), _k("tls.version", "TLS 1.2"),
        _k("tls.ja3.hash", "e7d705a3286e19ea42f587b344ee6865"),
        _k("tls.ja3s.hash", "15af977ce25de452b96affa2addb1036"),
        _k("tls.ja4", "t13d1516h2_8daaf6152771_02713d6af862"), _k("tls.notbefore", "2019*"),
        _k("tls.notafter", "2030*")),
        {"domain": ("tls.sni",), "cert_subject": ("tls.subject",), "cert_issuer": ("tls.issuerdn",),
         "ja3": ("tls.ja3.hash",), "ja3s": ("tls.ja3s.hash",), "ja4": ("tls.ja4",),
         "cert_sha1": ("tls.fingerprint",)},
        "TLS", (
            TIME, _c("SNI", "tls.sni", ioc=True), _c("Version", "tls.version"),
            _c("Subject", "tls.subject", ioc=True), _c("Issuer", "tls.issuerdn", ioc=True),
            _c("Fingerprint", "tls.fingerprint", ioc=True), _c("Not after", "tls.notafter"),
            _c("JA3", "tls.ja3.hash", ioc=True), _c("JA3S", "tls.ja3s.hash", ioc=True),
            _c("JA4", "tls.ja4", ioc=True), *ENDS)),
    EveType("quic", (_k("quic.sni", "*.google.com"), _k("quic.ja4", "q13d0310h3_55b375c5d22e_cd85d2d88918")),
            {"domain": ("quic.sni",), "ja4": ("quic.ja4",)},
            "QUIC", (TIME, _c("SNI", "quic.sni", ioc=True), _c("Version", "quic.version"),
                     _c("JA4", "quic.ja4", ioc=True), *ENDS)),
    EveType("fileinfo", (
        _k("fileinfo.filename", "*.exe"), _k("fileinfo.magic", "PE32*"),
        _k("fileinfo.md5", "44d88612fea8a8f36de82e1278abb02f"),
        _k("fileinfo.sha1", "3395856ce81f2b7382dee72602f798b642f14140"),
        _k("fileinfo.sha256", "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"),
        _i("fileinfo.size", "[1000000 TO *]"), _k("fileinfo.state", "CLOSED")),
        {"hash": ("fileinfo.md5", "fileinfo.sha1", "fileinfo.sha256")},
        "Files", (
            TIME, _c("Name", "fileinfo.filename"), _c("Type", "fileinfo.magic"), _c("Size", "fileinfo.size"),
            _c("MD5", "fileinfo.md5", ioc=True), _c("SHA1", "fileinfo.sha1", ioc=True),
            _c("SHA256", "fileinfo.sha256", ioc=True), _c("State", "fileinfo.state"), APP, *ENDS)),
    EveType("alert", (
        _k("alert.signature", "*EICAR*"), _i("alert.signature_id", "9100001"),
        _k("alert.category", "Misc activity"), _i("alert.severity", "[1 TO 2]")),
        title="Malicious activity", columns=(
            TIME, _c("Severity", "alert.severity"), _c("Signature", "alert.signature"),
            _c("SID", "alert.signature_id"), _c("Category", "alert.category"), *ENDS, APP)),
    EveType("anomaly", (
        _k("anomaly.type", "applayer"), _k("anomaly.event", "*invalid*"), _k("anomaly.layer", "proto_detect")),
        title="Strange activity", columns=(  # anomalies, and the alerts of protocol-event rules
            TIME, _c("Type", "anomaly.type", "alert.category"), _c("Event", "anomaly.event", "alert.signature"),
            _c("Layer", "anomaly.layer"), _c("SID", "alert.signature_id"), *ENDS, APP)),
    EveType("smtp", (  # Suricata logs the message itself under `email` in the smtp record
        _k("smtp.helo", "*"), _k("smtp.mail_from", "*@example.com*"), _k("smtp.rcpt_to", "*@example.com*"),
        _k("email.from", "*@example.com*"), _k("email.to", "*@example.com*"), _k("email.subject", "*invoice*"),
        _k("email.attachment", "*.zip")),
        {"ip": ("smtp.x_originating_ip",), "domain": ("smtp.helo",), "hash": ("smtp.body_md5", "email.body_md5"),
         "email": ("smtp.mail_from", "smtp.rcpt_to", "email.from", "email.to", "email.cc", "email.reply_to")},
        "SMTP", (
            TIME, _c("HELO", "smtp.helo", ioc=True), _c("From", "smtp.mail_from", "email.from", ioc=True),
            _c("To", "smtp.rcpt_to", "email.to", ioc=True), _c("Subject", "email.subject"),
            _c("Attachments", "email.attachment"), *ENDS)),
    EveType("ssh", (
        _k("ssh.client.software_version", "OpenSSH*"), _k("ssh.server.software_version", "OpenSSH*"),
        _k("ssh.client.hassh.hash", "ec7378c1a92f5a8dde7e8b7a1ddf33d1")),
        {"hassh": ("ssh.client.hassh.hash", "ssh.server.hassh.hash")},
        "SSH", (
            TIME, _c("Client", "ssh.client.software_version"), _c("Server", "ssh.server.software_version"),
            _c("HASSH", "ssh.client.hassh.hash", ioc=True),
            _c("HASSH server", "ssh.server.hassh.hash", ioc=True), *ENDS)),
    EveType("smb", (_k("smb.command", "SMB2_COMMAND_READ"), _k("smb.filename", "*.exe"), _k("smb.share", "*ADMIN$*")),
            title="SMB", columns=(TIME, _c("Command", "smb.command"), _c("Status", "smb.status"),
                                  _c("Share", "smb.share"), _c("File", "smb.filename"), *ENDS)),
    EveType("ftp", (_k("ftp.command", "RETR"), _k("ftp.command_data", "*.zip")),
            title="FTP", columns=(TIME, _c("Command", "ftp.command"), _c("Argument", "ftp.command_data"),
                                  _c("Reply", "ftp.reply"), *ENDS)),
    EveType("dhcp", (_k("dhcp.hostname", "*"), _k("dhcp.client_mac", "00:11:22:33:44:55")),
            {"ip": ("dhcp.assigned_ip", "dhcp.client_ip")},
            "DHCP", (TIME, _c("Type", "dhcp.dhcp_type", "dhcp.type"), _c("Client MAC", "dhcp.client_mac"),
                     _c("Assigned", "dhcp.assigned_ip", ioc=True), _c("Hostname", "dhcp.hostname"), *ENDS)),
    EveType("krb5", (_k("krb5.cname", "*"), _k("krb5.sname", "*"), _k("krb5.realm", "*")),
            {"domain": ("krb5.sname",)},
            "Kerberos", (TIME, _c("Message", "krb5.msg_type"), _c("Client", "krb5.cname"),
                         _c("Service", "krb5.sname"), _c("Realm", "krb5.realm"),
                         _c("Encryption", "krb5.encryption"), *ENDS)),
    EveType("snmp", (_k("snmp.community", "public"),),
            title="SNMP", columns=(TIME, _c("Version", "snmp.version"), _c("PDU", "snmp.pdu_type"),
                                   _c("Community", "snmp.community"), *ENDS)),
    EveType("sip", (_k("sip.method", "INVITE"), _k("sip.uri", "*")),
            title="SIP", columns=(TIME, _c("Method", "sip.method"), _c("URI", "sip.uri"), _c("Code", "sip.code"),
                                  *ENDS)),
    EveType("rdp", (_k("rdp.client.client_name", "*"),),
            title="RDP", columns=(TIME, _c("Event", "rdp.event_type"), _c("Client", "rdp.client.client_name"),
                                  *ENDS)),
    EveType("mqtt", (_k("mqtt.publish.topic", "*"),),
            title="MQTT", columns=(TIME, _c("Topic", "mqtt.publish.topic"), *ENDS)),
    EveType("dnp3", title="DNP3", columns=(TIME, _c("Type", "dnp3.type"), *ENDS)),
    EveType("modbus", title="Modbus", columns=(TIME, _c("Function", "modbus.request.function_code"), *ENDS)),
    EveType("http2", observables={"domain": ("http2.request_headers.authority",)}),
)
ALL = (COMMON, *TYPES)

TAB_ORDER = ("alert", "anomaly", "flow", "dns", "http", "tls", "fileinfo", "smtp", "ftp", "ssh", "smb", "dhcp",
             "krb5", "sip", "rdp", "snmp", "quic", "mqtt", "dnp3", "modbus")


def tabbed() -> list[EveType]:
    """The types with a tab of their own, in the console's order."""
    by_name = {t.name: t for t in TYPES if t.title}
    listed = [by_name[n] for n in TAB_ORDER]
    return listed + [t for t in by_name.values() if t.name not in TAB_ORDER]
