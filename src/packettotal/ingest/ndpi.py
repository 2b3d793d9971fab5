"""nDPI, the second engine (ntop's ndpiReader, Debian's libndpi-bin): per flow the application
protocol, its category and nDPI's flow risks. This module owns the binary: discovery, argv, the
unprivileged account, limits and parsing. It runs beside Suricata on the same capture:

    run = spares.run(pcap)                             # before the daemon reads the capture
    ...                                                # Suricata analyses it meanwhile
    result = run.result()                              # flows, or why there are none

The capture is given on standard input (the child needs no access to PacketTotal's files). Of
ndpiReader's output, the CSV's first eleven columns (numbers, addresses, the protocol: nothing a
capture chooses) give each flow's start, and its flow listing (`-v 2`) the category and risks.
That listing prints host names, URLs and certificate names unescaped, so a line is read from its
fixed start (tuple, `[proto: ]`, `[cat: ]`, all before any such text) and risk names are taken only
from nDPI's own list (RISKS): a capture can add a false risk name to its own flow, never hide one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import resource
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .observables import norm_ip
from .suricata import RunAs, _die_with_parent

BINARY = "ndpiReader"
TIMEOUT = 300.0            # seconds one capture may take
MAX_OUTPUT = 256 << 20     # bytes of each output file (RLIMIT_FSIZE: past it the child is stopped)
MAX_FLOWS = 200_000        # flows kept per capture; the rest are counted
MAX_NAME = 64              # characters kept of an application or category name
# nDPI 4.2's risks as ndpiReader prints them (`ndpiReader -a 2`), and their search names
RISKS = ("XSS Attack", "SQL Injection", "RCE Injection", "Binary Application Transfer",
         "Known Protocol on Non Standard Port", "Self-signed Certificate", "Obsolete TLS Version (1.1 or older)",
         "Weak TLS Cipher", "TLS Expired Certificate", "TLS Certificate Mismatch", "HTTP Suspicious User-Agent",
         "HTTP Numeric IP Address", "HTTP Suspicious URL", "HTTP Suspicious Header",
         "TLS (probably) Not Carrying HTTPS", "Suspicious DGA Domain name", "Malformed Packet",
         "SSH Obsolete Client Version/Cipher", "SSH Obsolete Server Version/Cipher", "SMB Insecure Version",
         "TLS Suspicious ESNI Usage", "Unsafe Protocol", "Suspicious DNS Traffic", "Missing SNI TLS Extension",
         "HTTP Suspicious Content", "Risky ASN", "Risky Domain Name", "Possibly Malicious JA3 Fingerprint",
         "Possibly Malicious SSL Cert. SHA1 Fingerprint", "Desktop/File Sharing Session", "Uncommon TLS ALPN",
         "TLS Certificate Validity Too Long", "TLS Suspicious Extension", "TLS Fatal Alert", "Suspicious Entropy",
         "Clear-Text Credentials", "DNS Packet Larger Than 512 bytes", "Fragmented DNS Message",
         "Text Contains Non-Printable Characters", "Possible Exploit Detected", "TLS Certificate About To Expire")


def risk_name(text: str) -> str:
    """nDPI's risk text -> its search name: `Self-signed Certificate` -> `self_signed_certificate`."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


RISK_NAMES = {text: risk_name(text) for text in RISKS}
_LINE = re.compile(r"\t\d+\t(TCP|UDP|ICMP|ICMPV6|[0-9]+) (\S+) <?-> (\S+) \[proto: [0-9.]+/([^\]]{1,200})\]"
                   r"(?:\[[A-Za-z]+\]|\[Confidence: [^\]]{0,40}\]|\[DoH\])*(?:\[cat: ([^\]/]{1,80})/\d+\])?")
_RISK = re.compile(r"\[Risk: ((?:\*\* [^*\]]{1,80} \*\*)+)\]\[Risk Score: (\d{1,6})\]")
_ERROR = re.compile(r"(error|unsupported|cannot|could not|invalid|skip)", re.I)
_PROTOS = {"TCP": 6, "UDP": 17, "ICMP": 1, "ICMPV6": 58, "IPV6-ICMP": 58}


@dataclass
class Result:
    flows: list[dict] = field(default_factory=list)  # rows for the ndpi_flows table, capture_id apart
    error: str | None = None                          # why nDPI gave nothing, or less than all
    seconds: float = 0.0
    dropped: int = 0                                  # flows past MAX_FLOWS


def available(binary: str = BINARY) -> bool:
    return shutil.which(binary) is not None


def version(binary: str = BINARY, run_as: RunAs | None = None) -> str | None:
    """`4.2.0`, from the first line of ndpiReader's help (it has no version option). Run as the
    unprivileged account too: ndpiReader opens files of its own in /tmp (ses_result.csv, ...)."""
    try:
        out = subprocess.run([binary, "-h"], capture_output=True, timeout=10, check=False, cwd="/",
                             user=run_as.uid if run_as else None, group=run_as.gid if run_as else None,
                             extra_groups=[] if run_as else None).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(rb"nDPI ([0-9][0-9.]*)", out[:200])
    return m.group(1).decode() if m else None


class Run:
    """One ndpiReader process, started at once and waiting for a capture on standard input (it
    initialises nDPI meanwhile); `feed(pcap)` gives it one, `result()` waits for it (bounded)."""

    def __init__(self, binary: str, work_dir: Path, run_as: RunAs | None):
        self.timeout, self.max_flows, self.max_output = TIMEOUT, MAX_FLOWS, MAX_OUTPUT  # read now: tests lower them
        max_output = self.max_output
        self.started = time.monotonic()
        if run_as is None:
            work_dir.mkdir(parents=True, exist_ok=True)
        # the account's own folder where it can reach one (PacketTotal's home may be closed to it)
        self.dir = Path(tempfile.mkdtemp(prefix="packettotal-ndpi-", dir=work_dir if run_as is None else None))
        if run_as is not None:
            os.chown(self.dir, run_as.uid, run_as.gid)
        self.csv, self.listing = self.dir / "flows.csv", self.dir / "flows.txt"
        argv = [binary, "-i", "-", "-v", "2", "-C", str(self.csv)]

        def child() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (max_output, max_output))
            _die_with_parent()

        self.proc: subprocess.Popen | None = None
        self.failure: str | None = None
        self._feeder: threading.Thread | None = None
        try:
            with open(self.listing, "wb") as stdout:
                self.proc = subprocess.Popen(
                    argv, stdin=subprocess.PIPE, stdout=stdout, stderr=subprocess.STDOUT, cwd=self.dir,
                    preexec_fn=child, user=run_as.uid if run_as else None, group=run_as.gid if run_as else None,
                    extra_groups=[] if run_as else None)
        except OSError as exc:
            self.failure = f"could not start {binary}: {exc.strerror or exc}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def feed(self, pcap: Path) -> Run:
        """Give it the capture (copied into its standard input by a thread); its time runs from now."""
        self.started = time.monotonic()
        if self.proc is not None:
            self._feeder = threading.Thread(target=_copy, args=(pcap, self.proc), daemon=True, name="ndpi-feed")
            self._feeder.start()
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def result(self) -> Result:
        try:
            return self._result()
        finally:
            self.kill()
            if self._feeder is not None:
                self._feeder.join(1.0)  # it ends when the pipe breaks (a capture that never ends: later)
            shutil.rmtree(self.dir, ignore_errors=True)

    def _result(self) -> Result:
        if self.proc is None:
            return Result(error=self.failure)
        left = max(0.0, self.timeout - (time.monotonic() - self.started))
        try:
            rc = self.proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            return Result(error=f"stopped after {self.timeout:g} s", seconds=self.timeout)
        seconds = time.monotonic() - self.started
        text = self.listing.read_text("utf-8", "replace") if self.listing.exists() else ""
        flows, dropped = pair(read_csv(self.csv), read_listing(text), self.max_flows)
        error = None
        if rc < 0:
            error = f"ndpiReader was killed (signal {-rc})" + (
                f": its output passed {self.max_output:,} bytes" if -rc == signal.SIGXFSZ else "")
        elif rc != 0:
            error = f"ndpiReader exited with code {rc}"
        complaint = next((line.strip() for line in text[:65536].splitlines()[:40]
                          if not line.startswith("\t") and _ERROR.search(line)), None)
        if complaint:  # ndpiReader's own word on the file (it exits 0 on unreadable ones)
            error = (error + ": " if error else "") + _shown(complaint)
        return Result(flows, error, round(seconds, 3), dropped)


def _copy(pcap: Path, proc: subprocess.Popen) -> None:
    """The capture into the child's standard input, then its end; a child that stops reading
    (done, dead, killed) ends the copy."""
    assert proc.stdin is not None
    try:
        with open(pcap, "rb") as src:
            info = os.fstat(src.fileno())
            if not stat.S_ISREG(info.st_mode):  # a FIFO: copied in Python
                shutil.copyfileobj(src, proc.stdin)
                return
            sent = 0
            while sent < info.st_size:  # in the kernel
                n = os.sendfile(proc.stdin.fileno(), src.fileno(), sent, info.st_size - sent)
                if n == 0:
                    break
                sent += n
    except OSError:  # a broken pipe: the child stopped reading
        pass
    finally:
        with contextlib.suppress(OSError):
            proc.stdin.close()


class Spares:
    """ndpiReader processes started ahead, each past its first initialisation of nDPI and
    waiting for a capture: a capture then costs about half of a cold run. `keep` are kept idle
    (one per worker); each taken is replaced at once, from the taking (long-lived) thread."""

    def __init__(self, binary: str, work_dir: Path, run_as: RunAs | None, keep: int):
        self.binary, self.work_dir, self.run_as, self.keep = binary, work_dir, run_as, keep
        self._idle: list[Run] = []
        self._lock = threading.Lock()

    def run(self, pcap: Path) -> Run:
        """A run of ndpiReader over this capture, started (a spare's, or a new one)."""
        with self._lock:
            ready = [r for r in self._idle if r.alive()]
            dead = [r for r in self._idle if not r.alive()]
            self._idle = ready[1:]
        for r in dead:  # its thread ended, or it was killed: never used
            r.result()
        run = ready[0] if ready else Run(self.binary, self.work_dir, self.run_as)
        run.feed(pcap)
        spare = Run(self.binary, self.work_dir, self.run_as)
        with self._lock:
            keep = len(self._idle) < self.keep
            if keep:
                self._idle.append(spare)
        if not keep:
            spare.kill()
            spare.result()
        return run

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for r in idle:
            r.kill()
            r.result()


def start(binary: str, pcap: Path, work_dir: Path, run_as: RunAs | None = None) -> Run:
    """A cold run over one capture."""
    return Run(binary, work_dir, run_as).feed(pcap)


def _shown(line: str, limit: int = 300) -> str:
    line = "".join(ch if ch.isprintable() else "?" for ch in line)
    return line if len(line) <= limit else line[:limit] + "…"


def _key(proto: int, a: tuple[str, int], b: tuple[str, int]) -> tuple:
    """A flow's five-tuple in either direction; addresses in one form (Suricata writes IPv6 long)."""
    return (proto, *sorted(((norm_ip(a[0]) or a[0], a[1]), (norm_ip(b[0]) or b[0], b[1]))))


def read_csv(path: Path) -> Iterator[dict]:
    """Each flow's tuple and start from ndpiReader's CSV; only its first, fixed columns are read
    (later ones hold unescaped names that may carry commas)."""
    if not path.exists():
        return
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            cols = line.split(",", 11)
            if len(cols) < 11 or not cols[0].isdigit():
                continue
            try:
                yield {"proto": int(cols[1]), "first_seen": float(cols[2]), "src_ip": cols[5],
                       "src_port": int(cols[6]), "dest_ip": cols[7], "dest_port": int(cols[8])}
            except ValueError:
                continue


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port) if port.isdigit() else 0


def read_listing(text: str) -> Iterator[dict]:
    """App, category and risks of each flow line of `ndpiReader -v 2`."""
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        proto = _PROTOS.get(m.group(1)) or (int(m.group(1)) if m.group(1).isdigit() else 0)
        risks: set[str] = set()
        score = 0
        for r in _RISK.finditer(line):
            names = {RISK_NAMES[t] for t in re.findall(r"\*\* (.+?) \*\*", r.group(1)) if t in RISK_NAMES}
            if names:
                risks |= names
                score = max(score, int(r.group(2)), 1)  # a flow with risks has a score
        yield {"key": _key(proto, _endpoint(m.group(2)), _endpoint(m.group(3))), "proto": proto,
               "app": m.group(4)[:MAX_NAME], "category": (m.group(5) or "Unspecified")[:MAX_NAME],
               "risks": sorted(risks), "risk_score": score}


def pair(starts: Iterator[dict], listed: Iterator[dict], max_flows: int) -> tuple[list[dict], int]:
    """The CSV's flows (tuple, start) with the listing's (app, category, risks), matched by
    five-tuple (several flows of one tuple: in order)."""
    by_key: dict[tuple, list[dict]] = {}
    for flow in listed:
        by_key.setdefault(flow["key"], []).append(flow)
    out: list[dict] = []
    dropped = 0
    for s in starts:
        found = by_key.get(_key(s["proto"], (s["src_ip"], s["src_port"]), (s["dest_ip"], s["dest_port"])))
        if not found:
            continue
        if len(out) >= max_flows:
            dropped += 1
            continue
        f = found.pop(0)
        out.append({**s, "app": f["app"], "category": f["category"], "risks": f["risks"],
                    "risk_score": f["risk_score"]})
    return out, dropped


def _eve_time(ts: float) -> str | None:
    try:
        return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
    except (OverflowError, OSError, ValueError):
        return None


def observables(capture_id: str, flows: list[dict]) -> list[dict]:
    """The distinct applications (kind ndpi_app, Unknown apart) and risks (ndpi_risk) of a
    capture's flows, with their flow counts, as observables: pivots and value counts take them."""
    seen: dict[tuple[str, str], list] = {}
    for f in flows:
        values = [("ndpi_app", f["app"])] if f["app"] != "Unknown" else []
        for kind, value in values + [("ndpi_risk", r) for r in f["risks"]]:
            s = seen.setdefault((kind, value), [0, f["first_seen"], f["first_seen"]])
            s[0] += 1
            s[1], s[2] = min(s[1], f["first_seen"]), max(s[2], f["first_seen"])
    return [{"capture_id": capture_id, "kind": kind, "value": value, "field": kind.replace("_", "."),
             "count": n, "first_seen": _eve_time(first), "last_seen": _eve_time(last)}
            for (kind, value), (n, first, last) in seen.items()]


def by_tuple(flows: list[dict]) -> dict[tuple, list[dict]]:
    out: dict[tuple, list[dict]] = {}
    for f in flows:
        out.setdefault(_key(f["proto"], (f["src_ip"], f["src_port"]), (f["dest_ip"], f["dest_port"])), []).append(f)
    return out


def nearest(flows: dict[tuple, list[dict]], rec: dict) -> dict | None:
    """The nDPI flow of a Suricata flow record (`flows`: by_tuple's): same five-tuple, either
    direction, nearest start."""
    try:
        key = _key(_PROTOS.get(str(rec.get("proto", "")).upper(), 0),
                   (str(rec.get("src_ip")), int(rec.get("src_port") or 0)),
                   (str(rec.get("dest_ip")), int(rec.get("dest_port") or 0)))
    except (TypeError, ValueError):
        return None
    start = _epoch((rec.get("flow") or {}).get("start"))
    best, gap = None, float("inf")
    for f in flows.get(key, ()):
        d = abs(f["first_seen"] - start) if start is not None else 0.0
        if d < gap:
            best, gap = f, d
    return best


def _epoch(value: object) -> float | None:
    try:
        return dt.datetime.strptime(str(value), "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
    except ValueError:
        return None
