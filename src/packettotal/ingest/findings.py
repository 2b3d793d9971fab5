"""Findings: the project's own detectors of strange activity over a capture's records, each a small
class with a name, a severity, a title and a sentence of why, fed records as they stream by (state
bounded) and asked for its findings at the end. Pure: no Suricata, no stores.

    detectors = Detectors()
    for rec in records: detectors.add(rec)
    findings = detectors.result()   # [{name, severity, title, why, key, evidence}, ...]

What each looks for is in its docstring; the thresholds are the class's constants. They judge a
capture alone (no history across captures); domains new to the instance (`rare_domain`) are
judged by ingest/rare.py once the capture's observables are known.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from . import certs

MAX_KEYS = 10_000       # groups one detector follows at once (flows by destination, domains, ...)
MAX_EVIDENCE = 20       # records named per finding
MAX_FINDINGS = 20       # per detector and capture
MAX_TEXT = 200          # characters of a capture's string quoted in a finding


@dataclass(frozen=True)
class Finding:
    name: str
    severity: str  # high | medium | low | info, as alerts
    title: str
    why: str  # one sentence, with the figures
    key: str  # what it is about: "10.0.0.5 -> 1.2.3.4:443/TCP", a domain, ...
    evidence: tuple[dict, ...]  # the records it rests on: {timestamp, flow_id, event_type, ...}

    def as_dict(self) -> dict:
        return asdict(self) | {"evidence": list(self.evidence)}


def cut(value: object) -> str:
    text = str(value)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def _ts(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _public(ip: object) -> bool:
    try:
        return ipaddress.ip_address(str(ip)).is_global
    except ValueError:
        return False


def _unicast(ip: object) -> bool:
    try:
        addr = ipaddress.ip_address(str(ip))
    except ValueError:
        return False
    return not (addr.is_multicast or addr.is_unspecified or str(addr) == "255.255.255.255")


def _evidence(rec: dict, **extra) -> dict:
    keep = {k: rec[k] for k in ("timestamp", "flow_id", "event_type", "src_ip", "src_port", "dest_ip",
                                "dest_port", "proto") if k in rec}
    if rec.get("event_type") == "flow" and isinstance(start := _flow(rec).get("start"), str):
        keep["timestamp"] = start  # a flow record's own is its end
    return keep | {k: cut(v) for k, v in extra.items()}


def _in_order(evidence: Iterable[dict]) -> tuple[dict, ...]:
    """By time (records of one capture arrive in no fixed order), the first MAX_EVIDENCE."""
    return tuple(sorted(evidence, key=lambda e: str(e.get("timestamp", "")))[:MAX_EVIDENCE])


def _flow(rec: dict) -> dict:
    return f if isinstance(f := rec.get("flow"), dict) else {}


def _conn(rec: dict) -> tuple:
    return (rec.get("src_ip"), rec.get("dest_ip"), rec.get("dest_port"), rec.get("proto"))


def _conn_key(conn: tuple) -> str:
    src, dest, port, proto = conn
    return cut(f"{src} -> {dest}:{port}/{proto}")


class Detector:
    name = ""
    severity = "low"
    title = ""

    def add(self, rec: dict) -> None:
        raise NotImplementedError

    def findings(self) -> list[Finding]:
        raise NotImplementedError

    def found(self, key: str, why: str, evidence: Iterable[dict]) -> Finding:
        return Finding(self.name, self.severity, self.title, why, key, _in_order(evidence))


class _Grouped(Detector):
    """Records kept by a group key, at most MAX_KEYS groups and `per_key` records each."""

    per_key = 200

    def __init__(self) -> None:
        self.groups: dict[tuple, list[dict]] = defaultdict(list)

    def keep(self, key: tuple, item: dict) -> None:
        if key not in self.groups and len(self.groups) >= MAX_KEYS:
            return
        items = self.groups[key]
        if len(items) < self.per_key:
            items.append(item)


# DNS, DHCP, NTP, NetBIOS, SSDP, mDNS, LLMNR: regular by design (a beacon shows in what it asks)
PERIODIC_BY_DESIGN = frozenset({53, 67, 68, 123, 137, 138, 1900, 5353, 5355})


class Beacon(_Grouped):
    """Periodic connections: flows from one source to one destination and port whose starts
    are, for at least MIN_REGULAR gaps and half of all gaps, within TOLERANCE of the median gap
    (of MIN_GAP seconds or more): a program checking in, not a person browsing. Services
    regular by design (PERIODIC_BY_DESIGN ports) are left out."""

    name, severity, title = "beacon", "medium", "Periodic connections (beaconing)"
    MIN_REGULAR = 4
    TOLERANCE = 0.2  # of the median gap
    MIN_GAP = 1.0    # seconds: faster than this is a burst, not a beacon

    def add(self, rec: dict) -> None:
        if rec.get("event_type") != "flow" or rec.get("dest_port") in PERIODIC_BY_DESIGN:
            return
        start = _ts(_flow(rec).get("start"))
        if start is not None:
            self.keep(_conn(rec), {"start": start, "bytes": _int(_flow(rec).get("bytes_toserver")), "rec": rec})

    def findings(self) -> list[Finding]:
        out = []
        for conn, flows in self.groups.items():
            if len(flows) <= self.MIN_REGULAR:
                continue
            flows = sorted(flows, key=lambda f: f["start"])
            gaps = [b["start"] - a["start"] for a, b in zip(flows, flows[1:], strict=False)]
            median = statistics.median(gaps)
            regular = sum(abs(g - median) <= self.TOLERANCE * median for g in gaps)
            if median < self.MIN_GAP or regular < self.MIN_REGULAR or regular < len(gaps) / 2:
                continue
            sent = statistics.median(f["bytes"] for f in flows)
            out.append(self.found(_conn_key(conn), (
                f"{len(flows)} connections; {regular} of the {len(gaps)} gaps between them are "
                f"{median:,.1f} s (±{self.TOLERANCE:.0%}); a median of {sent:,.0f} bytes sent each"),
                (_evidence(f["rec"]) for f in flows)))
        return out


class UploadHeavy(_Grouped):
    """Much more sent than received, from one source to one destination: MIN_BYTES or more sent
    and RATIO times what came back (exfiltration, screenshots, an upload to a C2)."""

    name, severity, title = "upload_heavy", "medium", "Uploads much larger than downloads"
    MIN_BYTES = 100_000
    RATIO = 10
    per_key = MAX_EVIDENCE

    def __init__(self) -> None:
        super().__init__()
        self.sent: Counter[tuple] = Counter()
        self.received: Counter[tuple] = Counter()

    def add(self, rec: dict) -> None:
        # FTP data connections go either way (active mode); broadcast and multicast are not uploads
        if rec.get("event_type") != "flow" or rec.get("app_proto") == "ftp-data" or not _unicast(rec.get("dest_ip")):
            return
        key = (rec.get("src_ip"), rec.get("dest_ip"), rec.get("dest_port"), rec.get("proto"))
        if key not in self.sent and len(self.sent) >= MAX_KEYS:
            return
        self.sent[key] += _int(_flow(rec).get("bytes_toserver"))
        self.received[key] += _int(_flow(rec).get("bytes_toclient"))
        self.keep(key, _evidence(rec))

    def findings(self) -> list[Finding]:
        return [self.found(_conn_key(key), (
            f"{sent:,} bytes sent and {self.received[key]:,} received over {len(self.groups[key])} "
            f"connection(s): {sent / max(self.received[key], 1):,.0f} times more out than in"), self.groups[key])
            for key, sent in self.sent.items()
            if sent >= self.MIN_BYTES and sent >= self.RATIO * self.received[key]]


class LongLowVolume(Detector):
    """One connection open MIN_SECONDS or more that carried under MAX_RATE bytes a second: a
    long-held control channel rather than a download."""

    name, severity, title = "long_low_volume", "low", "Long-lived, low-volume connection"
    MIN_SECONDS = 600
    MAX_RATE = 50  # bytes a second, both ways

    def __init__(self) -> None:
        self.hits: list[tuple[dict, int, int]] = []

    def add(self, rec: dict) -> None:
        if rec.get("event_type") != "flow" or rec.get("proto") != "TCP":
            return
        flow = _flow(rec)
        age = _int(flow.get("age"))
        size = _int(flow.get("bytes_toserver")) + _int(flow.get("bytes_toclient"))
        if age >= self.MIN_SECONDS and size < self.MAX_RATE * age and len(self.hits) < MAX_FINDINGS:
            self.hits.append((rec, age, size))

    def findings(self) -> list[Finding]:
        return [self.found(_conn_key(_conn(rec)), f"open {age:,} s and carried {size:,} bytes "
                           f"({size / age:.1f} bytes a second)", [_evidence(rec)]) for rec, age, size in self.hits]


class Scan(Detector):
    """One source trying many ports of one host (MIN_PORTS) or one port of many hosts (MIN_HOSTS),
    most of them without an answer (flows with nothing from the other side)."""

    name, severity, title = "scan", "medium", "Scanning"
    MIN_PORTS = 30
    MIN_HOSTS = 30
    UNANSWERED = 0.5

    def __init__(self) -> None:
        self.ports: dict[tuple, set] = defaultdict(set)   # (src, dest) -> ports
        self.hosts: dict[tuple, set] = defaultdict(set)   # (src, port) -> hosts
        self.tries: Counter[tuple] = Counter()            # (src, dest|port) -> flows
        self.silent: Counter[tuple] = Counter()
        self.examples: dict[tuple, list[dict]] = defaultdict(list)

    def add(self, rec: dict) -> None:
        if rec.get("event_type") != "flow" or rec.get("proto") not in ("TCP", "UDP"):
            return
        src, dest, port = rec.get("src_ip"), rec.get("dest_ip"), rec.get("dest_port")
        silent = _int(_flow(rec).get("pkts_toclient")) == 0
        for key, bucket, value in ((("ports", src, dest), self.ports, port), (("hosts", src, port), self.hosts, dest)):
            if key[1:] not in bucket and len(bucket) >= MAX_KEYS:
                continue
            seen = bucket[key[1:]]
            if len(seen) <= 4 * max(self.MIN_PORTS, self.MIN_HOSTS):
                seen.add(value)
            self.tries[key] += 1
            self.silent[key] += silent
            if len(self.examples[key]) < MAX_EVIDENCE:
                self.examples[key].append(_evidence(rec))

    def findings(self) -> list[Finding]:
        out = []
        for (kind, src, other), tries in self.tries.items():
            many = len((self.ports if kind == "ports" else self.hosts)[(src, other)])
            if many < (self.MIN_PORTS if kind == "ports" else self.MIN_HOSTS):
                continue
            share = self.silent[(kind, src, other)] / tries
            if share < self.UNANSWERED:
                continue
            many_ = f"{many}{'+' if many > 4 * max(self.MIN_PORTS, self.MIN_HOSTS) else ''}"
            what = f"{many_} ports of {other}" if kind == "ports" else f"port {other} of {many_} hosts"
            key = cut(f"{src} -> {other}" if kind == "ports" else f"{src} -> *:{other}")
            out.append(self.found(key, f"{src} tried {what} in {tries:,} flows, {share:.0%} of them unanswered",
                                  self.examples[(kind, src, other)]))
        return out


def entropy(text: str) -> float:
    """Shannon entropy of the characters, in bits per character."""
    if not text:
        return 0.0
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def parent_domain(name: str) -> str:
    """The last two labels (three under a two-letter country code's second level such as co.uk):
    what the subdomains of a tunnel hang off. No public-suffix list: good enough to group."""
    labels = name.lower().rstrip(".").split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and len(labels[-2]) <= 3 else 2
    return ".".join(labels[-keep:])


class DnsTunnel(Detector):
    """DNS used as a channel: under one parent domain, MIN_NAMES or more distinct query names
    with a long (LONG_LABEL characters) or high-entropy (ENTROPY bits) first label, or MIN_TXT
    TXT/NULL queries."""

    name, severity, title = "dns_tunnel", "medium", "Signs of DNS tunnelling"
    MIN_NAMES = 20
    LONG_LABEL = 30
    ENTROPY = 3.8
    MIN_TXT = 20

    def __init__(self) -> None:
        self.odd: dict[str, set[str]] = defaultdict(set)
        self.txt: Counter[str] = Counter()
        self.examples: dict[str, list[dict]] = defaultdict(list)

    def add(self, rec: dict) -> None:
        dns = rec.get("dns")
        if rec.get("event_type") != "dns" or not isinstance(dns, dict) or dns.get("type") != "query":
            return
        name = dns.get("rrname")
        if not isinstance(name, str) or "." not in name:
            return
        parent = parent_domain(name)
        if parent not in self.txt and parent not in self.odd and len(self.txt) + len(self.odd) >= MAX_KEYS:
            return
        first = name.split(".", 1)[0]
        odd = len(first) >= self.LONG_LABEL or (len(first) >= 12 and entropy(first) >= self.ENTROPY)
        if odd and len(self.odd[parent]) <= 4 * self.MIN_NAMES:
            self.odd[parent].add(name.lower())
        if dns.get("rrtype") in ("TXT", "NULL"):
            self.txt[parent] += 1
        if (odd or dns.get("rrtype") in ("TXT", "NULL")) and len(self.examples[parent]) < MAX_EVIDENCE:
            self.examples[parent].append(_evidence(rec, rrname=name, rrtype=dns.get("rrtype")))

    def findings(self) -> list[Finding]:
        out = []
        for parent in dict.fromkeys([*self.odd, *self.txt]):
            names, txt = len(self.odd.get(parent, ())), self.txt.get(parent, 0)
            if names < self.MIN_NAMES and txt < self.MIN_TXT:
                continue
            said = []
            if names >= self.MIN_NAMES:
                said.append(f"{names}+ distinct long or random-looking names")
            if txt >= self.MIN_TXT:
                said.append(f"{txt:,} TXT/NULL queries")
            out.append(self.found(cut(parent), f"queries under {cut(parent)}: {' and '.join(said)}",
                                  self.examples[parent]))
        return out


STARTTLS_PORTS = (21, 25, 110, 143, 587, 5222)  # mail, FTP and XMPP clients seldom send a server name


def random_looking(label: str) -> bool:
    """A domain label a generator could have made: long, few vowels or digits mixed in, and
    high entropy (`kq3vz8wplx`, not `facebook` or `weather-today`)."""
    if len(label) < 8 or "-" in label:
        return False
    vowels = sum(c in "aeiouy" for c in label) / len(label)
    digits = sum(c.isdigit() for c in label)
    return entropy(label) >= 3.0 and (vowels < 0.3 or 0 < digits < len(label) - 2)


class Dga(Detector):
    """Names a domain-generation algorithm would make: one client asking for MIN_DOMAINS or more
    distinct random-looking domains (`random_looking` second-level label), most of them
    answered NXDOMAIN: malware looking for its command server."""

    name, severity, title = "dga", "medium", "Domain-generation-like lookups"
    MIN_DOMAINS = 10
    NXDOMAIN_SHARE = 0.5

    def __init__(self) -> None:
        self.asked: dict[str, set[str]] = defaultdict(set)  # client -> random-looking domains
        self.missing: dict[str, set[str]] = defaultdict(set)  # client -> those answered NXDOMAIN
        self.examples: dict[str, list[dict]] = defaultdict(list)

    def add(self, rec: dict) -> None:
        dns = rec.get("dns")
        if rec.get("event_type") != "dns" or not isinstance(dns, dict) or not isinstance(dns.get("rrname"), str):
            return
        domain = parent_domain(dns["rrname"])
        if not random_looking(domain.split(".")[0]):
            return
        client = str(rec.get("src_ip"))  # Suricata names the client first in answers too
        if client not in self.asked and len(self.asked) >= MAX_KEYS:
            return
        if len(self.asked[client]) <= 4 * self.MIN_DOMAINS:
            self.asked[client].add(domain)
            if dns.get("type") == "answer" and dns.get("rcode") == "NXDOMAIN":
                self.missing[client].add(domain)
        if len(self.examples[client]) < MAX_EVIDENCE:
            self.examples[client].append(_evidence(rec, rrname=dns["rrname"], rcode=dns.get("rcode") or ""))

    def findings(self) -> list[Finding]:
        out = []
        for client, domains in self.asked.items():
            missing = len(self.missing.get(client, ()))
            if len(domains) >= self.MIN_DOMAINS and missing >= self.NXDOMAIN_SHARE * len(domains):
                out.append(self.found(cut(client), f"{client} looked up {len(domains)} random-looking domains "
                                      f"({', '.join(sorted(domains)[:3])}, ...), {missing} of them NXDOMAIN",
                                      self.examples[client]))
        return out


class TlsOdd(Detector):
    """TLS worth a look, judged from the server's certificates as parsed (ingest/certs.py) at the
    time of the session: a self-signed leaf, a certificate of the chain expired or not yet valid,
    a leaf that does not name the SNI (RFC 6125); and a session to a public address with no
    server name. A record without a readable chain is judged from Suricata's subject, issuer and
    dates of its leaf."""

    name, severity, title = "tls", "low", "Unusual TLS"
    KINDS = {"tls_self_signed": ("low", "Self-signed TLS certificate"),
             "tls_expired": ("medium", "Expired TLS certificate"),
             "tls_not_yet_valid": ("medium", "TLS certificate not yet valid"),
             "tls_name_mismatch": ("low", "TLS certificate for another name than the SNI"),
             "tls_bare_ip": ("low", "TLS to a bare IP address (no server name)")}

    def __init__(self) -> None:
        self.seen: dict[tuple[str, str], list[dict]] = {}
        self.chains = certs.Chains()

    def add(self, rec: dict) -> None:
        tls = rec.get("tls")
        if rec.get("event_type") != "tls" or not isinstance(tls, dict):
            return
        chain = [c for c in self.chains.add(rec) if not c["error"]]
        leaf = next((c for c in chain if c["position"] == 0), None)  # an unreadable leaf: no other stands in
        if leaf is not None:
            self._judge_leaf(rec, leaf)
        else:
            self._judge_subject(rec, tls)
        if chain:
            self._judge_dates(rec, chain)
        else:
            self._judge_field_dates(rec, tls)
        if not tls.get("sni") and _public(rec.get("dest_ip")) and rec.get("dest_port") not in STARTTLS_PORTS:
            self._note("tls_bare_ip", f"{rec.get('dest_ip')}:{rec.get('dest_port')}", rec)

    def _judge_leaf(self, rec: dict, leaf: dict) -> None:
        sni = (rec.get("tls") or {}).get("sni")
        if leaf["self_signed"]:
            self._note("tls_self_signed", leaf["subject"], rec)
        if isinstance(sni, str) and sni and not certs.name_matches(sni, leaf):
            names = ", ".join(leaf["sans"][:3]) or leaf["subject"]
            self._note("tls_name_mismatch", f"{sni} ≠ {names}", rec)

    def _judge_dates(self, rec: dict, chain: list[dict]) -> None:
        for c in chain:
            if c["status"] in ("expired", "not_yet_valid"):
                self._note(f"tls_{c['status']}", f"{c['subject']} (valid {c['not_before']} to {c['not_after']})", rec)

    def _judge_subject(self, rec: dict, tls: dict) -> None:
        """Suricata's own fields, for a record whose leaf could not be read."""
        subject, issuer = tls.get("subject"), tls.get("issuerdn")
        if isinstance(subject, str) and subject and subject == issuer:
            self._note("tls_self_signed", subject, rec)

    def _judge_field_dates(self, rec: dict, tls: dict) -> None:
        subject = tls.get("subject")
        seen, after, before = _ts(rec.get("timestamp")), _ts(_utc(tls.get("notafter"))), _ts(_utc(tls.get("notbefore")))
        if seen is not None and after is not None and seen > after:
            self._note("tls_expired", f"{subject} (valid {tls.get('notbefore')} to {tls.get('notafter')})", rec)
        elif seen is not None and before is not None and seen < before:
            self._note("tls_not_yet_valid", f"{subject} (valid {tls.get('notbefore')} to {tls.get('notafter')})", rec)

    def _note(self, kind: str, key: str, rec: dict) -> None:
        k = (kind, cut(key))
        if k not in self.seen and len(self.seen) >= MAX_KEYS:
            return
        items = self.seen.setdefault(k, [])
        if len(items) < MAX_EVIDENCE:
            items.append(_evidence(rec, sni=(rec.get("tls") or {}).get("sni") or ""))

    def findings(self) -> list[Finding]:
        out = []
        for (kind, key), evidence in self.seen.items():
            why = {"tls_self_signed": f"the certificate {key} is issued by itself",
                   "tls_expired": f"the certificate {key} had expired when it was seen",
                   "tls_not_yet_valid": f"the certificate {key} was not yet valid when it was seen",
                   "tls_name_mismatch": f"the server name and the certificate's names differ: {key}",
                   "tls_bare_ip": f"TLS to {key} without a server name"}[kind]
            severity, title = self.KINDS[kind]
            out.append(Finding(kind, severity, title,
                               f"{why} ({len(evidence)}{'+' if len(evidence) >= MAX_EVIDENCE else ''} session(s))",
                               key, _in_order(evidence)))
        return out


def _utc(value: object) -> str | None:
    """Suricata writes certificate dates without a zone; they are UTC."""
    return f"{value}+00:00" if isinstance(value, str) and value and "+" not in value else None


EXECUTABLE_MAGIC = ("PE32", "MS-DOS executable", "ELF ", "Mach-O")
EXECUTABLE_TYPES = ("application/octet-stream", "application/x-msdownload", "application/x-msdos-program",
                    "application/x-dosexec", "application/vnd.microsoft.portable-executable",
                    "application/x-executable", "application/x-elf", "application/x-sharedlib",
                    "application/x-mach-binary", "binary/octet-stream", "application/download",
                    "application/force-download", "application/x-download")


# names that promise data, not a program: an executable under one of these is dressed up
DATA_EXTENSIONS = frozenset(("jpg", "jpeg", "gif", "png", "bmp", "ico", "webp", "svg", "tif", "tiff", "txt", "log",
                             "csv", "htm", "html", "css", "js", "json", "xml", "pdf", "doc", "docx", "xls", "xlsx",
                             "ppt", "pptx", "rtf", "odt", "mp3", "mp4", "avi", "wav", "zip", "rar", "7z", "gz"))


def extension(filename: str) -> str:
    """A file name's extension, lower-case ('' when none): the last path part, query cut off."""
    base = filename.split("?", 1)[0].replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[1].lower()[:10] if "." in base.strip(".") else ""


class DisguisedExecutable(Detector):
    """A file whose content is an executable (libmagic, in Suricata) sent under a content type that
    is not an executable's (image/gif, text/html, ...), or named as data (`logo.jpg`, `invoice.pdf`),
    over any protocol: a payload dressed up as something harmless."""

    name, severity, title = "disguised_executable", "high", "Executable served as another type"

    def __init__(self) -> None:
        self.hits: list[tuple[dict, str, str, str]] = []

    def add(self, rec: dict) -> None:
        info, http = rec.get("fileinfo"), rec.get("http")
        if rec.get("event_type") != "fileinfo" or not isinstance(info, dict) or len(self.hits) >= MAX_FINDINGS:
            return
        magic = str(info.get("magic") or "")
        if not magic.startswith(EXECUTABLE_MAGIC):
            return
        ctype = str(http.get("http_content_type") or "") if isinstance(http, dict) else ""
        base = ctype.split(";")[0].strip().lower()
        ext = extension(str(info.get("filename") or ""))
        if (base and base not in EXECUTABLE_TYPES) or ext in DATA_EXTENSIONS:
            self.hits.append((rec, magic, ctype if base and base not in EXECUTABLE_TYPES else "", ext))

    def findings(self) -> list[Finding]:
        out = []
        for rec, magic, ctype, ext in self.hits:
            info = rec["fileinfo"]
            http: dict = rec["http"] if isinstance(rec.get("http"), dict) else {}
            where = (f"{http.get('hostname') or rec.get('dest_ip')}{http.get('url') or ''}" if http
                     else f"{info.get('filename') or '?'} ({rec.get('app_proto') or rec.get('proto')})")
            dressed = " and ".join(filter(None, (f"served as {cut(ctype)}" if ctype else "",
                                                 f"named .{ext}" if ext in DATA_EXTENSIONS else "")))
            out.append(self.found(cut(info.get("sha256") or where), f"{cut(where)} was {dressed} but is {cut(magic)}",
                                  [_evidence(rec, filename=info.get("filename", ""), magic=magic,
                                             content_type=ctype or (http.get("http_content_type") or ""))]))
        return out


DETECTORS: tuple[type[Detector], ...] = (Beacon, UploadHeavy, LongLowVolume, Scan, DnsTunnel, Dga, TlsOdd,
                                         DisguisedExecutable)
# what `finding:` takes
NAMES = ("beacon", "upload_heavy", "long_low_volume", "scan", "dns_tunnel", "dga", "tls_self_signed",
         "tls_expired", "tls_bare_ip", "disguised_executable", "rare_domain", "tls_not_yet_valid",
         "tls_name_mismatch")  # rare_domain: judged across captures (ingest/rare.py)
SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2, "info": 3}


class Detectors:
    def __init__(self) -> None:
        self.detectors = [d() for d in DETECTORS]
        # the certificates TlsOdd parsed, for the capture's certs tables
        self.chains = next(d.chains for d in self.detectors if isinstance(d, TlsOdd))

    def add(self, rec: dict) -> None:
        for d in self.detectors:
            d.add(rec)

    def result(self) -> list[dict]:
        found = [f for d in self.detectors for f in d.findings()[:MAX_FINDINGS]]
        found.sort(key=lambda f: (SEVERITY_ORDER.get(f.severity, 9), f.name, f.key))
        return [f.as_dict() for f in found]
