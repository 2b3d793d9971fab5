"""The console's tabs: which event types get one, their titles, and the columns of their tables.
Pure data and pure functions; templates render what these return."""

from __future__ import annotations

from dataclasses import dataclass

from ..records import values_at

MAX_CELL = 300  # characters shown in a cell; the row's JSON view holds the rest


@dataclass(frozen=True)
class Column:
    label: str
    paths: tuple[str, ...]      # values of all these paths, joined
    ioc: bool = False           # values link to /ioc/<value>
    sort: str | None = None     # fast field the table can sort by


@dataclass(frozen=True)
class Tab:
    key: str        # URL segment: the EVE event type, or "summary"
    title: str
    columns: tuple[Column, ...] = ()


def _c(label: str, *paths: str, ioc: bool = False, sort: str | None = None) -> Column:
    return Column(label, paths, ioc, sort)


TIME = _c("Time", "timestamp", sort="timestamp")
SRC = _c("Source", "src_ip", ioc=True)
SPORT = _c("Port", "src_port", sort="src_port")
DST = _c("Destination", "dest_ip", ioc=True)
DPORT = _c("Port", "dest_port", sort="dest_port")
PROTO = _c("Proto", "proto", sort="proto")
ENDS = (SRC, SPORT, DST, DPORT)

_KNOWN: tuple[Tab, ...] = (
    Tab("alert", "Malicious activity", (
        TIME, _c("Severity", "alert.severity"), _c("Signature", "alert.signature"),
        _c("SID", "alert.signature_id"), _c("Category", "alert.category"), *ENDS,
        _c("App", "app_proto", sort="app_proto"))),
    Tab("anomaly", "Strange activity", (
        TIME, _c("Type", "anomaly.type"), _c("Event", "anomaly.event"), _c("Layer", "anomaly.layer"),
        *ENDS, _c("App", "app_proto", sort="app_proto"))),
    Tab("flow", "Connections", (
        _c("Start", "flow.start"), *ENDS, PROTO, _c("App", "app_proto", sort="app_proto"),
        _c("Pkts out", "flow.pkts_toserver"), _c("Pkts in", "flow.pkts_toclient"),
        _c("Bytes out", "flow.bytes_toserver", sort="flow.bytes_toserver"),
        _c("Bytes in", "flow.bytes_toclient", sort="flow.bytes_toclient"),
        _c("Age (s)", "flow.age"), _c("State", "flow.state"), _c("Community ID", "community_id", ioc=True))),
    Tab("dns", "DNS", (
        TIME, _c("Kind", "dns.type"), _c("Name", "dns.rrname", "dns.queries.rrname", ioc=True),
        _c("Type", "dns.rrtype", "dns.queries.rrtype"), _c("Rcode", "dns.rcode"),
        _c("Answers", "dns.answers.rdata", "dns.grouped.A", "dns.grouped.AAAA", "dns.grouped.CNAME", ioc=True),
        *ENDS)),
    Tab("http", "HTTP", (
        TIME, _c("Method", "http.http_method"), _c("Host", "http.hostname", ioc=True), _c("URL", "http.url"),
        _c("Status", "http.status"), _c("User agent", "http.http_user_agent", ioc=True),
        _c("Content type", "http.http_content_type"), _c("Length", "http.length"), *ENDS)),
    Tab("tls", "TLS", (
        TIME, _c("SNI", "tls.sni", ioc=True), _c("Version", "tls.version"),
        _c("Subject", "tls.subject", ioc=True), _c("Issuer", "tls.issuerdn", ioc=True),
        _c("Fingerprint", "tls.fingerprint", ioc=True), _c("Not after", "tls.notafter"),
        _c("JA3", "tls.ja3.hash", ioc=True), _c("JA3S", "tls.ja3s.hash", ioc=True),
        _c("JA4", "tls.ja4", ioc=True), *ENDS)),
    Tab("fileinfo", "Files", (
        TIME, _c("Name", "fileinfo.filename"), _c("Type", "fileinfo.magic"), _c("Size", "fileinfo.size"),
        _c("MD5", "fileinfo.md5", ioc=True), _c("SHA1", "fileinfo.sha1", ioc=True),
        _c("SHA256", "fileinfo.sha256", ioc=True), _c("State", "fileinfo.state"),
        _c("App", "app_proto", sort="app_proto"), *ENDS)),
    Tab("smtp", "SMTP", (
        TIME, _c("HELO", "smtp.helo", ioc=True), _c("From", "smtp.mail_from", "email.from", ioc=True),
        _c("To", "smtp.rcpt_to", "email.to", ioc=True), _c("Subject", "email.subject"),
        _c("Attachments", "email.attachment"), *ENDS)),
    Tab("ftp", "FTP", (TIME, _c("Command", "ftp.command"), _c("Argument", "ftp.command_data"),
                       _c("Reply", "ftp.reply"), *ENDS)),
    Tab("ssh", "SSH", (
        TIME, _c("Client", "ssh.client.software_version"), _c("Server", "ssh.server.software_version"),
        _c("HASSH", "ssh.client.hassh.hash", ioc=True), _c("HASSH server", "ssh.server.hassh.hash", ioc=True),
        *ENDS)),
    Tab("smb", "SMB", (TIME, _c("Command", "smb.command"), _c("Status", "smb.status"),
                       _c("Share", "smb.share"), _c("File", "smb.filename"), *ENDS)),
    Tab("dhcp", "DHCP", (TIME, _c("Type", "dhcp.dhcp_type", "dhcp.type"), _c("Client MAC", "dhcp.client_mac"),
                         _c("Assigned", "dhcp.assigned_ip", ioc=True), _c("Hostname", "dhcp.hostname"), *ENDS)),
    Tab("krb5", "Kerberos", (TIME, _c("Message", "krb5.msg_type"), _c("Client", "krb5.cname"),
                             _c("Service", "krb5.sname"), _c("Realm", "krb5.realm"),
                             _c("Encryption", "krb5.encryption"), *ENDS)),
    Tab("sip", "SIP", (TIME, _c("Method", "sip.method"), _c("URI", "sip.uri"), _c("Code", "sip.code"), *ENDS)),
    Tab("rdp", "RDP", (TIME, _c("Event", "rdp.event_type"), _c("Client", "rdp.client.client_name"), *ENDS)),
    Tab("snmp", "SNMP", (TIME, _c("Version", "snmp.version"), _c("PDU", "snmp.pdu_type"),
                         _c("Community", "snmp.community"), *ENDS)),
    Tab("quic", "QUIC", (TIME, _c("SNI", "quic.sni", ioc=True), _c("Version", "quic.version"),
                         _c("JA4", "quic.ja4", ioc=True), *ENDS)),
    Tab("mqtt", "MQTT", (TIME, _c("Topic", "mqtt.publish.topic"), *ENDS)),
    Tab("dnp3", "DNP3", (TIME, _c("Type", "dnp3.type"), *ENDS)),
    Tab("modbus", "Modbus", (TIME, _c("Function", "modbus.request.function_code"), *ENDS)),
)
KNOWN = {t.key: t for t in _KNOWN}
SUMMARY = Tab("summary", "Summary")
HIDDEN = frozenset({"stats"})  # Suricata's counters: shown in the summary, not as a tab


def generic(event_type: str) -> Tab:
    """A tab for an event type without its own columns: the endpoints and the app-layer record."""
    return Tab(event_type, event_type.upper() if len(event_type) <= 4 else event_type.capitalize(),
               (TIME, *ENDS, _c("Details", event_type)))


def tabs_for(counts: dict[str, int]) -> list[tuple[Tab, int]]:
    """Summary first, then the well-known tabs in PacketTotal's order, then the rest by name;
    only the event types the capture has."""
    present = {t: n for t, n in counts.items() if n and t not in HIDDEN}
    out = [(SUMMARY, 0)]
    out += [(t, present[t.key]) for t in _KNOWN if t.key in present]
    out += [(generic(t), present[t]) for t in sorted(present) if t not in KNOWN]
    return out


def tab(event_type: str) -> Tab:
    return KNOWN.get(event_type) or generic(event_type)


def cell(rec: dict, column: Column) -> list[str]:
    """The values of one cell as display strings (each bounded)."""
    out: list[str] = []
    for path in column.paths:
        for v in values_at(rec, path, scalars=False):
            if isinstance(v, dict):
                out.append(_brief(v))
            elif v is not None:
                out.append(str(v))
    return [v if len(v) <= MAX_CELL else v[:MAX_CELL] + "…" for v in out[:20]]


def _brief(obj: dict) -> str:
    parts = []
    for k, v in obj.items():
        if isinstance(v, (dict, list)):
            continue
        parts.append(f"{k}={v}")
    return " ".join(parts)
