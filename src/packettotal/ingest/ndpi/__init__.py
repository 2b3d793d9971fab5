"""nDPI, the second engine (ntop's libndpi 4.2, Debian's libndpi4.2): per flow the application
protocol, its category and nDPI's flow risks. This package owns nDPI: `lib.py` is its binding
(ctypes), `helper.py` the process that runs it, `decode.py` the packet decoding it needs; here,
the parent's side: the helpers, their limits and the results. It runs beside Suricata on the
same capture:

    run = helpers.run(pcap)                            # before the daemon reads the capture
    ...                                                # Suricata analyses it meanwhile
    result = run.result()                              # flows, or why there are none

nDPI parses attacker-controlled packets, so it never runs in PacketTotal's process: each engine
worker has a helper process (started on its first capture and kept, so Python and libndpi are
loaded once per worker; nDPI's detection module is fresh for each capture), as the unprivileged
account when PacketTotal runs as root, killed with PacketTotal, under limits. A capture is given
to it as an open file descriptor; a helper that crashes, is killed, is past its time or answers
out of shape gives that capture a warning and is replaced.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import resource
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...records import eve_time
from ..observables import norm_ip
from ..suricata import RunAs, _die_with_parent
from . import lib

TIMEOUT = 300.0            # seconds one capture may take
START_TIMEOUT = 30.0       # seconds a helper may take to start and initialise nDPI
MAX_OUTPUT = 256 << 20     # bytes of one capture's answer
MAX_MEMORY = 2 << 30       # bytes of data a helper may allocate (RLIMIT_DATA)
MAX_FLOWS = 200_000        # flows kept per capture; the rest are counted
MAX_NAME = 64              # characters kept of an application or category name
MAX_STDERR = 2048          # bytes kept of a helper's stderr (its last ones), shown when it dies
_LENGTH = struct.Struct("!Q")
_PROTOS = {"TCP": 6, "UDP": 17, "ICMP": 1, "ICMPV6": 58, "IPV6-ICMP": 58}


def risk_name(text: str) -> str:
    """nDPI's risk text -> its search name: `Self-signed Certificate` -> `self_signed_certificate`."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


@dataclass
class Result:
    flows: list[dict] = field(default_factory=list)  # rows for the ndpi_flows table, capture_id apart
    error: str | None = None                          # why nDPI gave nothing
    seconds: float = 0.0
    dropped: int = 0                                  # flows past MAX_FLOWS
    dropped_more: bool = False                        # and more than that (the helper stopped counting)
    version: str | None = None                        # nDPI's, as the helper's library says


def available() -> bool:
    return lib.find() is not None


class HelperFailed(Exception):
    """Why a helper gave no answer (its message is the capture's warning)."""


class HelperLate(HelperFailed):
    pass


class Helper:
    """One helper process (helper.py), libndpi loaded in it once; one capture at a time."""

    def __init__(self, run_as: RunAs | None):
        self.version: str | None = None
        self._stderr = b""  # its last MAX_STDERR bytes
        self._started = time.monotonic()
        self._sock, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv = [sys.executable, "-m", "packettotal.ingest.ndpi.helper", str(child.fileno()), lib.SONAME,
                str(os.getpid())]
        if run_as is not None:  # it drops to the account itself, once its imports are done
            argv += [str(run_as.uid), str(run_as.gid)]
        # this very package, whatever the current folder (the helper's is /)
        path = os.pathsep.join(filter(None, [_SOURCE, os.environ.get("PYTHONPATH")]))
        try:
            self.proc = subprocess.Popen(argv, pass_fds=[child.fileno()], stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd="/",
                                         env={**os.environ, "PYTHONPATH": path}, preexec_fn=_limits)
        except BaseException:
            self._sock.close()
            raise
        finally:
            child.close()
        assert self.proc.stderr is not None
        os.set_blocking(self.proc.stderr.fileno(), False)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, pcap: Path, max_flows: int) -> None:
        fd = os.open(pcap, os.O_RDONLY)
        try:
            socket.send_fds(self._sock, [json.dumps({"max_flows": max_flows}).encode()], [fd])
        finally:
            os.close(fd)

    def receive(self, started: float, timeout: float, limit: int) -> object:
        """The answer to a request sent at `started` (time.monotonic()), within `timeout` seconds
        of then or of the helper being ready, whichever is later; HelperFailed if it does not come
        (its shape: `checked`)."""
        if self.version is None:  # its hello first: it had START_TIMEOUT to start and initialise nDPI
            try:
                hello = self._message(self._started + START_TIMEOUT, 4096)
            except HelperLate:
                raise HelperFailed(f"nDPI's helper did not start in {START_TIMEOUT:g} s") from None
            if not isinstance(hello, dict):
                raise HelperFailed("nDPI's helper: its hello was not an object")
            if hello.get("error"):
                raise HelperFailed(f"nDPI's helper could not start nDPI: {_shown(str(hello['error']))}")
            self.version = str(hello.get("version") or "?")[:20]
            started = max(started, time.monotonic())
        return self._message(started + timeout, limit)

    def _message(self, deadline: float, limit: int) -> object:
        (size,) = _LENGTH.unpack(self._read(_LENGTH.size, deadline))
        if size > limit:
            raise HelperFailed(f"nDPI's helper: its answer passed {limit:,} bytes")
        try:
            return json.loads(self._read(size, deadline))
        except ValueError as exc:
            raise HelperFailed(f"nDPI's helper: its answer could not be read: {exc}") from None

    def _read(self, n: int, deadline: float) -> bytes:
        parts, got = [], 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._sock], [], [], left)[0]:
                raise HelperLate()
            try:
                part = self._sock.recv(min(n - got, 1 << 20))
            except OSError:  # a reset: it died with our request unread
                part = b""
            if not part:
                raise HelperFailed(self.death())
            parts.append(part)
            got += len(part)
        return b"".join(parts)

    def death(self) -> str:
        try:
            rc = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "nDPI's helper closed its socket"
        why = f"nDPI's helper was killed (signal {-rc})" if rc < 0 else f"nDPI's helper exited with code {rc}"
        said = stderr_shown(self.drain())
        return f"{why}: {said}" if said else why

    def drain(self) -> bytes:
        """What the helper wrote to stderr so far (its last MAX_STDERR bytes): read now and then,
        so that the pipe never fills and blocks it."""
        assert self.proc.stderr is not None
        with contextlib.suppress(OSError):  # BlockingIOError: nothing more for now
            while part := os.read(self.proc.stderr.fileno(), 1 << 16):
                self._stderr = (self._stderr + part)[-MAX_STDERR:]
        return self._stderr

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        assert self.proc.stderr is not None
        self.proc.stderr.close()


_SOURCE = str(Path(__file__).resolve().parents[3])  # the folder holding this package


def stderr_shown(raw: bytes) -> str:
    """A helper's stderr for a warning: its lines on one, our folders not shown, bounded."""
    text = raw.decode("utf-8", "replace")
    for folder in sorted({_SOURCE, sys.prefix, sys.base_prefix}, key=len, reverse=True):
        text = text.replace(folder, "…")
    return _shown(" | ".join(line.strip() for line in text.splitlines() if line.strip()), MAX_STDERR)


def _limits() -> None:
    """In the helper before exec: bounded memory, no files written, no core; killed with PacketTotal."""
    resource.setrlimit(resource.RLIMIT_DATA, (MAX_MEMORY, MAX_MEMORY))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _die_with_parent()


class Run:
    """One capture given to a helper; `result()` waits for its answer (bounded) and gives the
    helper back, or ends it when it failed."""

    def __init__(self, pool: Helpers, helper: Helper, pcap: Path):
        self.timeout, self.max_flows, self.max_output = TIMEOUT, MAX_FLOWS, MAX_OUTPUT  # read now: tests lower them
        self.pool, self.helper = pool, helper
        self.started = time.monotonic()
        self.failure: str | None = None
        try:
            helper.send(pcap, self.max_flows)
        except ConnectionError:  # a broken pipe: it died (before or while starting)
            self.failure = helper.death()
        except OSError as exc:
            self.failure = f"could not give the capture to nDPI's helper: {exc.strerror or exc}"

    def kill(self) -> None:
        """End its helper (the capture is abandoned; the next one gets a new helper)."""
        self.failure = self.failure or "stopped"
        self.helper.close()

    def result(self) -> Result:
        if self.failure is not None:
            self.helper.close()
            return Result(error=self.failure)
        try:
            answer = checked(self.helper.receive(self.started, self.timeout, self.max_output))
        except HelperFailed as exc:
            self.helper.close()
            error = f"stopped after {self.timeout:g} s" if isinstance(exc, HelperLate) else str(exc)
            return Result(error=error, seconds=round(time.monotonic() - self.started, 3), version=self.helper.version)
        seconds = round(time.monotonic() - self.started, 3)
        self.helper.drain()
        self.pool.give_back(self.helper)  # only now: one that sent no answer is never used again
        if answer.error:
            return Result(error=answer.error, seconds=seconds, version=self.helper.version)
        flows, bad = rows(answer.flows, self.max_flows)
        return Result(flows, f"{bad:,} flows could not be read" if bad else None, seconds,
                      answer.dropped, answer.dropped_more, self.helper.version)


class Helpers:
    """The helpers of the engine workers: one kept per worker (`keep`), each taken for a capture
    and given back when it answered; a dead one is never used again."""

    def __init__(self, run_as: RunAs | None, keep: int):
        self.run_as, self.keep = run_as, keep
        self._idle: list[Helper] = []
        self._lock = threading.Lock()

    def run(self, pcap: Path) -> Run:
        """Start nDPI on this capture, in an idle helper or a new one (started from this thread,
        which should be long-lived: the helper is killed when it ends)."""
        with self._lock:
            dead = [h for h in self._idle if not h.alive()]
            ready = [h for h in self._idle if h not in dead]
            helper = ready.pop() if ready else None
            self._idle = ready
        for h in dead:
            h.close()
        return Run(self, helper or Helper(self.run_as), pcap)

    def warm(self) -> None:
        """Start a helper now, from this (long-lived) thread, if fewer than `keep` are idle."""
        with self._lock:
            if len(self._idle) >= self.keep:
                return
        helper = Helper(self.run_as)
        self.give_back(helper)

    def give_back(self, helper: Helper) -> None:
        with self._lock:
            keep = helper.alive() and len(self._idle) < self.keep
            if keep:
                self._idle.append(helper)
        if not keep:
            helper.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for h in idle:
            h.close()


@dataclass
class Answer:
    flows: list
    dropped: int = 0
    dropped_more: bool = False
    error: str | None = None


def checked(answer: object) -> Answer:
    """The helper's answer, its shape checked (it parsed the capture: it is trusted no more than
    the capture); HelperFailed if it is not an answer."""
    if not isinstance(answer, dict):
        raise HelperFailed("nDPI's helper: its answer was not an object")
    if answer.get("error"):
        return Answer([], error=_shown(str(answer["error"])))
    flows, dropped, more = answer.get("flows", []), answer.get("dropped", 0), answer.get("dropped_more", False)
    if not isinstance(flows, list) or type(dropped) is not int or dropped < 0 or not isinstance(more, bool):
        raise HelperFailed("nDPI's helper: its answer was not one")
    return Answer(flows, dropped, more)


def rows(flows: list, max_flows: int) -> tuple[list[dict], int]:
    """The helper's flows as ndpi_flows rows, checked and bounded (it parsed the capture: its
    answer is trusted no more than the capture); the count of those that were not rows."""
    out, bad = [], 0
    for f in flows[:max_flows]:
        try:
            if not isinstance(f, dict) or not isinstance(f["risks"], list):
                raise TypeError
            proto, src_port, dest_port, score = (int(f[k]) for k in ("proto", "src_port", "dest_port", "risk_score"))
            if not all(0 <= n < 1 << 16 for n in (proto, src_port, dest_port, score)):
                raise ValueError  # SQLite's integers and the columns' sense
            out.append({"proto": proto, "first_seen": float(f["first_seen"]),
                        "src_ip": str(f["src_ip"])[:45], "src_port": src_port,
                        "dest_ip": str(f["dest_ip"])[:45], "dest_port": dest_port,
                        "app": str(f["app"])[:MAX_NAME] or "Unknown",
                        "category": str(f["category"])[:MAX_NAME] or "Unspecified",
                        "risks": sorted({risk_name(str(r))[:MAX_NAME] for r in f["risks"][:64]}),
                        "risk_score": score})
        except (KeyError, TypeError, ValueError):
            bad += 1
    return out, bad


def _shown(line: str, limit: int = 300) -> str:
    line = "".join(ch if ch.isprintable() else "?" for ch in line)
    return line if len(line) <= limit else line[:limit] + "…"


def _key(proto: int, a: tuple[str, int], b: tuple[str, int]) -> tuple:
    """A flow's five-tuple in either direction; addresses in one form (Suricata writes IPv6 long)."""
    return (proto, *sorted(((norm_ip(a[0]) or a[0], a[1]), (norm_ip(b[0]) or b[0], b[1]))))


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
             "count": n, "first_seen": eve_time(first), "last_seen": eve_time(last)}
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
