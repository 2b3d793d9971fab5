"""The field catalogue: one schema for the event index, the query language, the UI and the API.

Field names are Suricata's EVE names. Kinds: keyword (exact and wildcard, case-insensitive),
int, ip (CIDR aware), date. Fields not listed still match exactly through the generic JSON index.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # keyword | int | ip | date
    example: str
    help: str = ""
    fast: bool = False  # kept column-wise too, for sorting and top-N aggregations


def _k(name: str, example: str, help: str = "") -> Field:
    return Field(name, "keyword", example, help)


def _i(name: str, example: str, help: str = "") -> Field:
    return Field(name, "int", example, help)


CATALOG: tuple[Field, ...] = (
    Field("timestamp", "date", "[2020-01-01 TO 2020-02-01]", "time of the event (UTC)", fast=True),
    Field("event_type", "keyword", "dns", "EVE record type: alert, anomaly, flow, dns, http, tls, fileinfo, ...",
          fast=True),
    Field("src_ip", "ip", "10.0.0.0/8", "source address; CIDR accepted", fast=True),
    Field("dest_ip", "ip", "2001:db8::/32", "destination address; CIDR accepted", fast=True),
    Field("src_port", "int", "[1024 TO *]", fast=True), Field("dest_port", "int", "443", fast=True),
    Field("proto", "keyword", "TCP", fast=True), Field("app_proto", "keyword", "http", fast=True),
    _k("community_id", '"1:abcd...="'),
    _k("flow_id", "1209992739716149"),
    Field("flow.bytes_toserver", "int", "[100000 TO *]", fast=True),
    Field("flow.bytes_toclient", "int", "[100000 TO *]", fast=True),
    _i("flow.pkts_toserver", "[10 TO *]"), _i("flow.pkts_toclient", "[10 TO *]"),
    _i("flow.age", "[60 TO *]"), _k("flow.state", "established"), _k("flow.reason", "timeout"),
    _k("dns.type", "answer"), _k("dns.rrname", "*.evil.com"), _k("dns.rrtype", "TXT"),
    _k("dns.rcode", "NXDOMAIN"), _k("dns.answers.rdata", "93.184.216.34"),
    _k("http.hostname", "*.example.com"), _k("http.url", "*/wp-login.php"),
    _k("http.http_user_agent", "curl*"), _k("http.http_method", "POST"), _i("http.status", "[400 TO 599]"),
    _k("http.http_content_type", "application/x-dosexec"), _k("http.http_refer", "*google*"),
    _k("http.protocol", "HTTP/1.1"), _i("http.length", "[1000000 TO *]"),
    _k("tls.sni", "*.onion.to"), _k("tls.subject", "*CN=localhost*"), _k("tls.issuerdn", "*Let's Encrypt*"),
    _k("tls.fingerprint", "5a:bd:..."), _k("tls.serial", "00:A1:..."), _k("tls.version", "TLS 1.2"),
    _k("tls.ja3.hash", "e7d705a3286e19ea42f587b344ee6865"), _k("tls.ja3s.hash", "15af977ce25de452b96affa2addb1036"),
    _k("tls.ja4", "t13d1516h2_8daaf6152771_02713d6af862"), _k("tls.notbefore", "2019*"), _k("tls.notafter", "2030*"),
    _k("quic.sni", "*.google.com"), _k("quic.ja4", "q13d0310h3_55b375c5d22e_cd85d2d88918"),
    _k("fileinfo.filename", "*.exe"), _k("fileinfo.magic", "PE32*"), _k("fileinfo.md5", "44d88612fea8a8f36de82e1278abb02f"),
    _k("fileinfo.sha1", "3395856ce81f2b7382dee72602f798b642f14140"),
    _k("fileinfo.sha256", "275a021bbfb6489e54d471899f7db9d1663fc695ec2fe2a2c4538aabf651fd0f"),
    _i("fileinfo.size", "[1000000 TO *]"), _k("fileinfo.state", "CLOSED"),
    _k("alert.signature", "*EICAR*"), _i("alert.signature_id", "9100001"), _k("alert.category", "Misc activity"),
    _i("alert.severity", "[1 TO 2]"),
    _k("anomaly.type", "applayer"), _k("anomaly.event", "*invalid*"), _k("anomaly.layer", "proto_detect"),
    _k("smtp.helo", "*"), _k("smtp.mail_from", "*@example.com*"), _k("smtp.rcpt_to", "*@example.com*"),
    _k("email.from", "*@example.com*"), _k("email.to", "*@example.com*"), _k("email.subject", "*invoice*"),
    _k("email.attachment", "*.zip"),
    _k("ssh.client.software_version", "OpenSSH*"), _k("ssh.server.software_version", "OpenSSH*"),
    _k("ssh.client.hassh.hash", "ec7378c1a92f5a8dde7e8b7a1ddf33d1"),
    _k("smb.command", "SMB2_COMMAND_READ"), _k("smb.filename", "*.exe"), _k("smb.share", "*ADMIN$*"),
    _k("ftp.command", "RETR"), _k("ftp.command_data", "*.zip"),
    _k("dhcp.hostname", "*"), _k("dhcp.client_mac", "00:11:22:33:44:55"),
    _k("krb5.cname", "*"), _k("krb5.sname", "*"), _k("krb5.realm", "*"),
    _k("snmp.community", "public"), _k("sip.method", "INVITE"), _k("sip.uri", "*"),
    _k("rdp.client.client_name", "*"), _k("mqtt.publish.topic", "*"),
)

BY_NAME = {f.name: f for f in CATALOG}

# alias -> fields searched (any of them)
ALIASES: dict[str, tuple[str, ...]] = {
    "ip": ("src_ip", "dest_ip"),
    "port": ("src_port", "dest_port"),
    "domain": ("dns.rrname", "http.hostname", "tls.sni", "quic.sni"),
    "hash": ("fileinfo.md5", "fileinfo.sha1", "fileinfo.sha256"),
    "ja3": ("tls.ja3.hash", "tls.ja3s.hash"),
    "ja4": ("tls.ja4", "quic.ja4"),
    "sid": ("alert.signature_id",),
    "ua": ("http.http_user_agent",),
}
SPECIAL = {"capture": "the capture's id (sha256)"}
# label fields: searched in the labels people attach to captures, not in the events
LABELS: dict[str, tuple[str, ...] | None] = {
    "tag": None,  # any kind of label
    "family": ("family",), "campaign": ("campaign",), "actor": ("actor",),
}
LABEL_KINDS = ("tag", "family", "campaign", "actor")


def resolve(name: str) -> tuple[Field, ...] | None:
    """Catalogue fields for a query field name or alias; None for a field outside the catalogue."""
    if name in ALIASES:
        return tuple(BY_NAME[n] for n in ALIASES[name])
    f = BY_NAME.get(name)
    return (f,) if f else None


def catalogue() -> list[dict]:
    rows = [{"name": f.name, "type": f.kind, "example": f"{f.name}:{f.example}", "help": f.help}
            for f in CATALOG]
    rows += [{"name": a, "type": "alias", "example": f"{a}:...", "help": "any of " + ", ".join(fs)}
             for a, fs in ALIASES.items()]
    rows += [{"name": n, "type": "keyword", "example": f"{n}:...", "help": h} for n, h in SPECIAL.items()]
    rows += [{"name": n, "type": "label", "example": f'{n}:{"emotet" if n != "campaign" else chr(34) + "spring 2024" + chr(34)}',
              "help": "captures carrying a label of any kind" if kinds is None else f"captures labelled with a {n}"}
             for n, kinds in LABELS.items()]
    return rows
