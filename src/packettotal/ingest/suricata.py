"""The one module that owns the Suricata binary: version, config, rules, and long-lived daemons.

Each `Engine` is a Suricata 7 daemon in unix-socket mode (`--runmode single`), fed one
`pcap-file` command per capture so rules load once. Suricata exits 0 and says nothing on the
socket when it cannot read a file, so each run also reads the daemon's log and the packet count
of the final stats record in that capture's EVE file.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import json
import logging
import os
import pwd
import queue
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

from ..config import Settings
from ..errors import AnalysisFailed, EngineError
from ..store.blobs import open_regular

if TYPE_CHECKING:
    from .rules import Ruleset  # rules.py imports this module: checks rulesets with its Suricata

DEBIAN_RULE_FILES = (
    "app-layer-events.rules", "decoder-events.rules", "dhcp-events.rules", "dns-events.rules",
    "files.rules", "ftp-events.rules", "http-events.rules", "http2-events.rules",
    "ipsec-events.rules", "kerberos-events.rules", "modbus-events.rules", "dnp3-events.rules",
    "mqtt-events.rules", "nfs-events.rules", "ntp-events.rules", "quic-events.rules",
    "rfb-events.rules", "smb-events.rules", "smtp-events.rules", "ssh-events.rules",
    "stream-events.rules", "tls-events.rules",
)
# Invalid-checksum decoder events: uploads carry NIC-offloaded checksums, so these are noise.
DROPPED_SIDS = frozenset(range(2200073, 2200080))
_SID = re.compile(r"\bsid\s*:\s*(\d+)")
log = logging.getLogger("packettotal.engine")
MAX_OUTPUT_LINES = 20  # of Suricata's own lines carried by a failed job
MAX_OUTPUT_LINE = 300


def version(binary: str = "suricata") -> str:
    try:
        out = subprocess.run([binary, "-V"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineError(f"cannot run Suricata ({binary}): {exc}") from None
    m = re.search(r"version (\d+\.\d+\.\d+)", out)
    if not m:
        raise EngineError(f"cannot tell Suricata's version from: {out.strip()[:200]!r}")
    return m.group(1)


def rule_lines(text: str) -> list[str]:
    """Active rules of a rules file, less the dropped sids."""
    keep = []
    for line in text.splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        m = _SID.search(s)
        if m and int(m.group(1)) in DROPPED_SIDS:
            continue
        keep.append(s)
    return keep


def build_rules(settings: Settings, dest: Path, ruleset: Path | None = None) -> dict[int, str]:
    """Write the one rules file the engines load (with `ruleset`, the merged threat ruleset of
    ingest/rules.py, when given); returns sid -> rule text."""
    sources = [settings.suricata_rules_dir / name for name in DEBIAN_RULE_FILES]
    sources = [p for p in sources if p.exists()]
    own = resources.files("packettotal") / "rules" / "packettotal.rules"
    texts = [p.read_text(errors="replace") for p in sources] + [own.read_text()]
    if settings.user_rules_dir:
        if not settings.user_rules_dir.is_dir():
            raise EngineError(f"user rules folder {settings.user_rules_dir} does not exist")
        texts += [p.read_text(errors="replace") for p in sorted(settings.user_rules_dir.glob("*.rules"))]
    if ruleset is not None:
        texts.append(ruleset.read_text(errors="replace"))
    lines = [line for text in texts for line in rule_lines(text)]
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text("\n".join(lines) + "\n")
    return {int(m.group(1)): line for line in lines if (m := _SID.search(line))}


def rule_classes(settings: Settings, rules: Mapping[int, str]) -> dict[int, str]:
    """sid -> "protocol" for Suricata's protocol-event rules (the sids of the `*-events.rules` files
    in Suricata's folder and the user's, commented-out ones too, so a merged ruleset carrying them
    classifies the same), "own" for the project's, "threat" for the rest: what the console shows apart."""
    files = [*settings.suricata_rules_dir.glob("*-events.rules"),
             *(settings.user_rules_dir.glob("*-events.rules") if settings.user_rules_dir else ())]
    protocol = {int(m.group(1)) for p in files for m in _SID.finditer(p.read_text(errors="replace"))}
    own_text = (resources.files("packettotal") / "rules" / "packettotal.rules").read_text()
    own = {int(m.group(1)) for m in _SID.finditer(own_text)}
    return {sid: "protocol" if sid in protocol else "own" if sid in own else "threat" for sid in rules}


class _ConfigTemplate(Template):
    delimiter = "@"  # the YAML itself is full of $VARS


def render_config(settings: Settings, rules_file: Path, log_dir: Path) -> str:
    template = (resources.files("packettotal") / "ingest" / "suricata.yaml.tmpl").read_text()
    return _ConfigTemplate(template).substitute(
        log_dir=str(log_dir), rules_dir=str(settings.suricata_rules_dir), rules_file=str(rules_file))


def test_rules(settings: Settings, ruleset: Path, work: Path) -> list[str]:
    """`suricata -T` with PacketTotal's config and every rule the engines would load with this
    merged ruleset: Suricata's own error lines (bounded) when it refuses them, else []."""
    rules_file, log_dir = work / "combined.rules", work / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    build_rules(settings, rules_file, ruleset)
    config = work / "suricata.yaml"
    config.write_text(render_config(settings, rules_file, log_dir))
    return _check(settings, config, log_dir, {str(rules_file): "the merged rules"})


def _check(settings: Settings, config: Path, log_dir: Path, shown: Mapping[str, str]) -> list[str]:
    """`suricata -T` of a config: Suricata's own error lines (bounded, our paths replaced as
    `shown` says) when it refuses it, else []."""
    argv = [settings.suricata, "-T", "-c", str(config), "-k", "none", "-l", str(log_dir)]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, errors="replace",
                              timeout=settings.rules_timeout, env={**os.environ, "TZ": "UTC"})
    except subprocess.TimeoutExpired:
        took = f"{settings.rules_timeout:g} s (setting rules_timeout)"
        return [f"suricata -T was still checking the rules after {took}"]
    except OSError as exc:
        raise EngineError(f"cannot run Suricata ({settings.suricata}): {exc}") from None
    if proc.returncode == 0:
        return []
    said = ([f"{level}: {msg}" for level, msg in _log_lines(log_dir / "suricata.log", 0) if level == "Error"]
            or [line for line in (proc.stderr + proc.stdout).splitlines() if line.startswith("E: ")]
            or [f"suricata -T exited with code {proc.returncode}"])
    return [bounded(_replaced(line, shown)) for line in said[:MAX_OUTPUT_LINES]]


def _replaced(text: str, shown: Mapping[str, str]) -> str:
    for path, name in shown.items():
        text = text.replace(path, name)
    return text


def bounded(line: str) -> str:
    """One line of Suricata's (or suricata-update's) output as shown: printable, cut."""
    line = "".join(ch if ch.isprintable() else "?" for ch in line)
    return line if len(line) <= MAX_OUTPUT_LINE else line[:MAX_OUTPUT_LINE] + "…"


@dataclass(frozen=True)
class RunAs:
    """The unprivileged account the daemons run as when PacketTotal runs as root."""
    uid: int
    gid: int


def run_as(settings: Settings) -> RunAs | None:
    if os.geteuid() != 0 or not settings.suricata_user:
        return None
    try:
        pw = pwd.getpwnam(settings.suricata_user)
    except KeyError:
        raise EngineError(f"PacketTotal runs as root, so Suricata runs as {settings.suricata_user!r}, and "
                          "there is no such user: create it (scripts/setup-system.sh does) or name another "
                          "unprivileged account in the setting suricata_user") from None
    if pw.pw_uid == 0:
        raise EngineError(f"the setting suricata_user names {pw.pw_name!r}, which is root")
    return RunAs(pw.pw_uid, pw.pw_gid)


STATS_MARK = b'"event_type":"stats"'
FILEINFO_MARK = b'"event_type":"fileinfo"'
_STORED = re.compile(rb'"sha256":"([0-9a-f]{64})"')


class LiveRun:
    """One capture in a daemon. Iterate `lines()` to read EVE records while Suricata still writes
    them (analysis and indexing overlap); when they end, `packets` and `errors` are known."""

    def __init__(self, engine: Engine, pcap: Path, timeout: float, name: str | None = None):
        self.engine, self.pcap, self.timeout = engine, pcap, timeout
        self.name = name or pcap.name  # what Suricata's lines call the capture instead of our paths
        self.out_dir = engine.run_dir
        self.eve_path = self.out_dir / "eve.json"
        self.filestore = self.out_dir / "filestore"
        self.packets: int | None = None
        self.errors: list[str] = []
        self.seconds = 0.0
        self.complete = False
        self.killed = False
        self.carved: set[str] = set()  # sha256 of the files stored: emptied from the filestore after

    def __enter__(self) -> LiveRun:
        self.pcap = self.engine.readable(self.pcap)
        self.eve_path.unlink(missing_ok=True)
        self.engine.bound_logs()
        self._log_offset = _size(self.engine.log_path)
        self._err_offset = _size(self.engine.stderr_path)
        self._t0 = time.monotonic()
        reply = self.engine.command("pcap-file", filename=str(self.pcap), **{"output-dir": str(self.out_dir)})
        if reply.get("return") != "OK":
            raise AnalysisFailed(f"Suricata refused the capture: {str(reply.get('message'))[:300]}")
        return self

    def lines(self) -> Iterator[bytes]:
        try:
            yield from self._follow()
        except (OSError, TimeoutError) as exc:
            self.complete = self.killed = True  # nothing left to drain; its output is swept
            raise self.engine.failed(exc, self) from None

    def _follow(self) -> Iterator[bytes]:
        f = None
        buf = b""
        stats: bytes | None = None  # Suricata's closing record for the capture
        delay = 0.0005
        try:
            while True:
                if f is None and self.eve_path.exists():
                    f = open_regular(self.eve_path)
                chunk = f.read(1 << 20) if f is not None else b""
                if chunk:
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        if STATS_MARK in line:
                            stats = line
                        else:
                            self._note(line)
                            yield line
                if stats is not None and self._idle():
                    # the daemon has closed this capture's output: read what is left
                    rest = buf + (f.read() if f is not None else b"")
                    for line in rest.split(b"\n"):
                        if line.strip():
                            self._note(line)
                            yield line
                    yield stats
                    self._finish(stats)
                    return
                if time.monotonic() - self._t0 > self.timeout:  # also while EVE keeps coming
                    raise TimeoutError(f"no result after {self.timeout:g} s")
                if chunk:
                    delay = 0.0005
                    continue
                if not self.engine.alive():
                    raise OSError("the daemon exited")
                if delay >= 0.004:
                    # Suricata's command loop closes a finished file only when it wakes up, and
                    # a command wakes it at once (else it sleeps ~200 ms): ask it something.
                    self.engine.command("pcap-file-number")
                time.sleep(delay)
                delay = min(delay * 2, 0.005)
        finally:
            if f is not None:
                f.close()

    def _note(self, line: bytes) -> None:
        if FILEINFO_MARK in line and (m := _STORED.search(line)):
            self.carved.add(m.group(1).decode())

    def _idle(self) -> bool:
        """True once the daemon has finished the capture. Its command loop also resets the
        engine (closing the capture's EVE file), so a reply means that is done too."""
        return (self.engine.command("pcap-current").get("message") == "None"
                and self.engine.command("pcap-file-number").get("message") == 0)

    def _finish(self, stats_line: bytes) -> None:
        try:
            self.packets = int(json.loads(stats_line)["stats"]["decoder"]["pkts"])
        except (ValueError, KeyError, TypeError):
            self.packets = None
        self.errors = [self.clean(e) for e in _errors_since(self.engine.log_path, self._log_offset)]
        self.seconds = time.monotonic() - self._t0
        self.complete = True

    def output(self) -> list[str]:
        """Suricata's errors and warnings about this capture (its log) and whatever it printed
        (stderr), bounded, with our folders' names taken out."""
        lines = [f"{level}: {msg}" for level, msg in _log_lines(self.engine.log_path, self._log_offset)]
        lines += [f"stderr: {line}" for line in _tail_since(self.engine.stderr_path, self._err_offset)]
        return [self.clean(line) for line in lines[-MAX_OUTPUT_LINES:]]

    def clean(self, text: str) -> str:
        for path, shown in ((self.pcap, self.name), (self.engine.base_dir.parent, "<engines>")):
            text = text.replace(str(path), shown)
        return bounded(text)

    def __exit__(self, *exc) -> None:
        if not self.complete:  # the reader stopped early: let Suricata finish, or restart it
            try:
                for _ in self.lines():
                    pass
            except AnalysisFailed:
                pass
        self.engine.clean_run_dir(self.carved if self.complete and not self.killed else None)
        self.engine.input_path.unlink(missing_ok=True)


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when PacketTotal dies, so no daemon is orphaned.
    The signal follows the *thread* that started the child: start daemons from long-lived threads."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _warmup_pcap(path: Path) -> Path:
    """A one-packet Ethernet/IPv4/UDP capture: every fresh daemon reads it first (see 7.0.10 defect)."""
    if not path.exists():
        ip = bytes.fromhex("4500001c0001000040110000") + bytes([127, 0, 0, 1, 127, 0, 0, 1])
        frame = b"\x00" * 12 + b"\x08\x00" + ip + struct.pack(">HHHH", 9, 9, 8, 0)
        header = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
        record = struct.pack("<IIII", 1, 0, len(frame), len(frame)) + frame
        path.write_bytes(header + record)
    return path


@dataclass
class Engine:
    """One supervised Suricata daemon."""

    settings: Settings
    config_path: Path
    base_dir: Path
    run_as: RunAs | None = None
    proc: subprocess.Popen | None = None
    sock: socket.socket | None = None
    restarts: int = -1
    strict: bool = False  # --init-errors-fatal: a rule Suricata refuses stops the start
    loaded: Loaded | None = None  # the rules of its pool's generation
    _buf: bytes = field(default=b"", repr=False)

    @property
    def log_dir(self) -> Path:  # Suricata's own output besides a capture's: its log and socket
        return self.base_dir / "log"

    @property
    def socket_path(self) -> Path:
        return self.log_dir / "suricata.sock"

    @property
    def log_path(self) -> Path:
        return self.log_dir / "suricata.log"

    @property
    def stderr_path(self) -> Path:  # in the engine folder: root's alone
        return self.base_dir / "stderr.log"

    @property
    def name(self) -> str:
        return self.base_dir.name

    def spawn(self, reason: str = "first start") -> None:
        """Launch the daemon without waiting for it (it loads its rules meanwhile); `start()`
        then connects. It dies with the thread that spawned it: a long-lived one."""
        self.stop(reason)
        self.restarts += 1
        self._make_folders()
        self._bound(self.stderr_path, over=0)  # each daemon's starts empty: the last one's is stderr.log.1
        self._bound(self.log_path)
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        argv = [self.settings.suricata, "-c", str(self.config_path), "-k", "none", "--runmode", "single",
                f"--unix-socket={self.socket_path}", "-l", str(self.log_dir)]
        if self.strict:
            argv.append("--init-errors-fatal")
        account = self.run_as  # unprivileged from the start; the death signal is set after the switch
        stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr,
                                     start_new_session=True, env={**os.environ, "TZ": "UTC"},
                                     preexec_fn=_die_with_parent, user=account.uid if account else None,
                                     group=account.gid if account else None, extra_groups=[] if account else None)
        stderr.close()
        if self.restarts:
            log.warning("%s: Suricata restarted (pid %d, restart %d): %s", self.name, self.proc.pid,
                        self.restarts, reason)
        else:
            log.info("%s: Suricata started (pid %d)", self.name, self.proc.pid)

    def _make_folders(self) -> None:
        """The engine folder is root's (what root writes lives there: its log of Suricata's
        output, the warm-up and input captures); log/ and run/ are the daemon's account's, made
        once: afterwards that account may have put anything there."""
        if self.run_as is None:
            for d in (self.log_dir, self.run_dir):
                d.mkdir(parents=True, exist_ok=True)
            return
        if self.base_dir.exists():
            return
        self.base_dir.mkdir(parents=True)
        for d in (self.log_dir, self.run_dir):
            d.mkdir(mode=0o700)
            os.chown(d, self.run_as.uid, self.run_as.gid)
        os.chown(self.base_dir, 0, self.run_as.gid)
        os.chmod(self.base_dir, 0o750)

    def start(self, reason: str = "first start") -> None:
        """Make the daemon ready: spawned (unless it is already loading), connected, warmed up."""
        if self.proc is None or self.proc.poll() is not None or self.sock is not None:
            self.spawn(reason)
        assert self.proc is not None  # spawned just now, or still loading
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                said = " | ".join(x for x in (self._log_tail(), *_tail_since(self.stderr_path, 0)[-5:])
                                  if x != "(no log)") or "(no output)"
                log.error("%s: Suricata exited with code %s at start-up: %s", self.name, self.proc.returncode, said)
                raise EngineError(f"Suricata exited with code {self.proc.returncode} at start-up: {said}")
            if self.socket_path.exists():
                try:
                    self._connect()
                    break
                except OSError:
                    pass
            time.sleep(0.02)
        else:
            self.stop("no command socket within 120 s")
            raise EngineError("Suricata did not open its command socket within 120 s: " + self._log_tail())
        try:
            with LiveRun(self, _warmup_pcap(self.base_dir / "warmup.pcap"), 60) as run:
                for _ in run.lines():
                    pass
        except AnalysisFailed as exc:
            raise EngineError(f"Suricata failed its warm-up capture: {exc.message}") from None
        if run.packets != 1:
            raise EngineError(f"Suricata failed its warm-up capture: {run.errors or self._log_tail()}")

    def _connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(str(self.socket_path))
        self.sock, self._buf = s, b""
        if self._call({"version": "0.2"}).get("return") != "OK":
            raise OSError("Suricata refused the socket protocol version")

    def _call(self, message: dict) -> dict:
        assert self.sock is not None
        self.sock.sendall(json.dumps(message).encode() + b"\n")
        while True:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise OSError("Suricata closed its command socket")
            self._buf += chunk
            try:
                reply = json.loads(self._buf)
            except ValueError:
                continue
            self._buf = b""
            return reply

    def command(self, name: str, **arguments) -> dict:
        msg: dict[str, object] = {"command": name}
        if arguments:
            msg["arguments"] = arguments
        return self._call(msg)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and self.sock is not None

    @property
    def run_dir(self) -> Path:
        return self.base_dir / "run"

    @property
    def input_path(self) -> Path:
        return self.base_dir / "input.pcap"

    def readable(self, pcap: Path) -> Path:
        """The capture as the daemon's account can read it: as is, or linked (else copied) into
        the engine's folder (PacketTotal's own folder may be closed to that account)."""
        if self.run_as is None:
            return pcap
        self.input_path.unlink(missing_ok=True)
        try:
            os.link(pcap, self.input_path)
            readable = os.stat(self.input_path).st_mode & 0o004
        except OSError:  # another filesystem
            readable = False
        if not readable:  # a private blob (umask 077): a copy the account's group may read
            self.input_path.unlink(missing_ok=True)
            shutil.copyfile(pcap, self.input_path)
            os.chown(self.input_path, 0, self.run_as.gid)
            os.chmod(self.input_path, 0o640)
        return self.input_path

    def analyze(self, pcap: Path, timeout: float | None = None, name: str | None = None) -> LiveRun:
        """`with engine.analyze(pcap) as run: for line in run.lines(): ...`; `name` replaces the
        capture's path in Suricata's lines."""
        if not self.alive():
            self.start("it was not running")
        return LiveRun(self, pcap, timeout or self.settings.engine_timeout, name)

    def failed(self, exc: Exception, run: LiveRun) -> AnalysisFailed:
        """Kill and restart a daemon that died, hung or ran past the capture's time limit; the
        reason, with Suricata's own lines, for the job that saw it."""
        if self.proc is not None and not isinstance(exc, TimeoutError):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=2)  # a socket reset: the daemon is likely dying; reap it
        if self.proc is not None and self.proc.poll() is not None:
            reason, retry = f"Suricata died (exit code {self.proc.returncode}) while reading the capture", True
        elif isinstance(exc, TimeoutError) and self._answers():  # not hung: the capture costs too much
            reason, retry = (f"the analysis was stopped: the capture was still being analysed after "
                             f"{run.timeout:g} s (setting engine_timeout)"), False
        else:
            reason, retry = f"Suricata stopped answering ({exc}); it was killed", True
        lines = run.output() or [run.clean(self._log_tail())]
        log.warning("%s: %s; Suricata's last lines: %s", self.name, reason, " | ".join(lines))
        self.stop(reason)
        with contextlib.suppress(EngineError, OSError):
            self.start(reason)
        return AnalysisFailed(reason, detail=" | ".join(lines), retry=retry)

    def _answers(self) -> bool:
        try:
            return self.command("pcap-file-number").get("return") == "OK"
        except (OSError, ValueError):
            return False

    def bound_logs(self) -> None:
        """Keep Suricata's log and stderr under `engine_log_bytes` each (plus one capture's worth):
        past it, the last part moves to a `.1` file beside the engine's and the log starts again."""
        for path in (self.log_path, self.stderr_path):
            self._bound(path)

    def _bound(self, path: Path, over: int | None = None) -> None:
        cap = self.settings.engine_log_bytes
        _cut(path, self.base_dir / f"{path.name}.1", cap, cap if over is None else over)

    def clean_run_dir(self, carved: Iterable[str] | None = None) -> None:
        """Empty the reused output folder: the files named (by sha256), or all of them (Suricata's
        256 filestore folders are kept)."""
        (self.run_dir / "eve.json").unlink(missing_ok=True)
        store = self.run_dir / "filestore"
        if carved is not None:
            for sha in carved:
                (store / sha[:2] / sha).unlink(missing_ok=True)
        elif store.is_dir():
            for sub in os.scandir(store):
                if sub.is_dir(follow_symlinks=False):
                    for entry in os.scandir(sub.path):
                        with contextlib.suppress(OSError):
                            os.unlink(entry.path)

    def _log_tail(self, lines: int = 5) -> str:
        try:
            with open_regular(self.log_path) as f:
                text = f.read().decode(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(text[-lines:])

    def kill(self, reason: str, level: int = logging.WARNING) -> None:
        if self.proc is not None and self.proc.poll() is None:
            log.log(level, "%s: killing Suricata (pid %d): %s", self.name, self.proc.pid, reason)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)

    def stop(self, reason: str, level: int = logging.WARNING) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
            self.sock = None
        if self.proc is not None:
            self.kill(reason, level)
            self.proc.wait(timeout=30)
        self.proc = None


_LOG_LINE = re.compile(r"^\[\d+ - [^\]]*\] \S+ \S+ (Error|Warning): (.*)$")


def _read_since(path: Path, offset: int, limit: int = 1 << 20) -> str:
    """Text written to a log since `offset` (all of it if the log was cut meanwhile), bounded."""
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        start = offset if offset <= size else 0
        f.seek(max(start, size - limit))
        return f.read(limit).decode(errors="replace")


def _log_lines(log: Path, offset: int) -> list[tuple[str, str]]:
    """(Error|Warning, message) lines of Suricata's log since `offset`."""
    try:
        text = _read_since(log, offset)
    except FileNotFoundError:
        return []
    except OSError as exc:  # e.g. a link in its place (ELOOP): say so, as the log tail does
        return [("Error", f"Suricata's log could not be read: {exc.strerror or exc}")]
    return [(m.group(1), m.group(2)[:500]) for line in text.splitlines() if (m := _LOG_LINE.match(line))]


def _errors_since(log: Path, offset: int) -> list[str]:
    return [msg for level, msg in _log_lines(log, offset) if level == "Error"]


def _tail_since(path: Path, offset: int) -> list[str]:
    try:
        text = _read_since(path, offset, 64 << 10)
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-MAX_OUTPUT_LINES:]


def _size(path: Path) -> int:
    try:
        return path.lstat().st_size
    except FileNotFoundError:
        return 0


def _cut(path: Path, keep: Path, cap: int, over: int) -> None:
    """If the log at `path` is over `over` bytes, copy its last `cap` bytes to `keep` and empty it
    in place: Suricata, and the stderr we gave it, append (O_APPEND), so they carry on from the
    start. The daemon's account may have put a link or a hard link there: those are left alone."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_size <= over:
            return
        tmp = keep.with_name(keep.name + ".tmp")
        with open(tmp, "wb") as out:
            start, left = max(0, st.st_size - cap), min(cap, st.st_size)
            while left > 0 and (chunk := os.pread(fd, min(left, 1 << 20), start)):
                out.write(chunk)
                start, left = start + len(chunk), left - len(chunk)
        os.replace(tmp, keep)
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)


ENGINES_PREFIX = "packettotal-engines-"


def _clear_stale(tmp: Path, owner: RunAs) -> None:
    """Remove the engine folders of PacketTotal processes that died without closing their pool
    (they may hold carved files)."""
    for d in tmp.glob(f"{ENGINES_PREFIX}*-*"):
        pid = d.name[len(ENGINES_PREFIX):].split("-")[0]
        try:
            st = d.lstat()
        except OSError:
            continue
        if (pid.isdigit() and not Path(f"/proc/{pid}").exists() and stat.S_ISDIR(st.st_mode)
                and st.st_uid in (0, owner.uid)):
            shutil.rmtree(d, ignore_errors=True)


@dataclass(frozen=True)
class Loaded:
    """The rules one set of daemons loaded: what each capture they analyse records."""

    ruleset: str | None  # the merged threat ruleset's version (ingest/rules.py); None: none installed
    rules: Mapping[int, str]  # sid -> rule text
    rule_class: Mapping[int, str]  # sid -> protocol | own | threat
    mark: tuple  # what the rules were made from, as `rules_mark()` gives it
    config_path: Path

    @property
    def rule_count(self) -> int:
        return len(self.rules)


def rules_mark(settings: Settings, ruleset: Ruleset | None) -> tuple:
    """Cheap to read: changes when the installed ruleset or a file of user_rules_dir does."""
    files = sorted(settings.user_rules_dir.glob("*.rules")) if settings.user_rules_dir else []
    stats = [(p.name, st.st_mtime_ns, st.st_size) for p in files if (st := _stat(p)) is not None]
    return (ruleset.version if ruleset else None, *stats)


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None


@dataclass
class _Generation:
    """Daemons that loaded the same rules, in a folder of their own; lent from `idle`."""

    number: int
    folder: Path
    loaded: Loaded
    engines: list[Engine]
    idle: queue.Queue[Engine] = field(default_factory=queue.Queue)
    since: float = field(default_factory=time.time)
    retired: int = 0


class EnginePool:
    """N daemons, lent one at a time. Started lazily, stopped together.

    Rules change without downtime: `reload()` (called by `watch()`'s thread when the installed
    ruleset or user_rules_dir changes) makes a new generation of daemons ready beside the serving
    one, then swaps. A capture is analysed wholly by one daemon, so wholly under one ruleset, the
    one it records; daemons of the old generation finish their capture and are stopped. New
    daemons start with Suricata's --init-errors-fatal, as `suricata -T` checks: a rule it refuses
    keeps the old generation serving, and `status()` gives Suricata's lines."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.version = version(settings.suricata)
        if not self.version.startswith("7."):
            raise EngineError(f"PacketTotal needs Suricata 7; {settings.suricata} is {self.version}")
        self.run_as = run_as(settings)
        if self.run_as:  # a folder of their own: PacketTotal's home may be closed to their account
            _clear_stale(Path(tempfile.gettempdir()), self.run_as)
            self.base = Path(tempfile.mkdtemp(prefix=f"{ENGINES_PREFIX}{os.getpid()}-"))
            os.chmod(self.base, 0o711)  # the account reaches its engine folder; nobody lists them
        else:
            self.base = settings.work_dir / "engines"
        self._lock = threading.Lock()
        self._current: _Generation | None = None  # made on first use: reading ~20 k rules takes seconds
        self._generations: list[_Generation] = []  # every one with a daemon not yet stopped
        self._loading: dict | None = None
        self._refused: dict | None = None
        self._closed = threading.Event()
        self._reloading = threading.Lock()
        self._numbers = itertools.count(1)
        self._refused_mark: tuple | None = None

    def _make(self, number: int) -> _Generation:
        """Write a generation's rules and config (its daemons are not started); its mark is that
        of the ruleset it read."""
        from .rules import installed
        folder = self.base / f"rules-{number}"
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o711)
        ruleset = installed(self.settings)
        mark = rules_mark(self.settings, ruleset)
        rules_file = folder / "packettotal-combined.rules"
        rules = build_rules(self.settings, rules_file, ruleset.path if ruleset else None)
        config_path = folder / "suricata.yaml"
        config_path.write_text(render_config(self.settings, rules_file, folder / "log"))
        loaded = Loaded(ruleset.version if ruleset else None, rules, rule_classes(self.settings, rules),
                        mark, config_path)
        engines = [Engine(self.settings, config_path, folder / f"engine-{i}", self.run_as,
                          strict=number > 0, loaded=loaded) for i in range(self.settings.engines)]
        return _Generation(number, folder, loaded, engines)

    def _serving(self) -> _Generation:
        with self._lock:  # workers race here on first use: one generation, one set of daemons
            if self._current is None:
                gen = self._current = self._make(0)
                self._generations.append(gen)
                for e in gen.engines:
                    gen.idle.put(e)
            return self._current

    @property
    def loaded(self) -> Loaded:
        """The rules of the daemons now serving."""
        return self._serving().loaded

    @property
    def config_path(self) -> Path:
        return self.loaded.config_path

    @contextlib.contextmanager
    def engine(self) -> Iterator[Engine]:
        """Lend an idle daemon of the serving generation (its `loaded` says which rules it has)."""
        while True:
            if self._closed.is_set():
                raise EngineError("PacketTotal is shutting down")
            gen = self._serving()
            try:
                e = gen.idle.get(timeout=0.5)  # waiting: look again when the generation is swapped
            except queue.Empty:
                continue
            if self._keep(gen, e):
                break
            self._retire(gen, [e])  # swapped between the two
        try:
            if not e.alive():
                e.start("it was not running")
            yield e
        finally:
            if not self._keep(gen, e, give_back=True):
                self._retire(gen, [e])

    def _keep(self, gen: _Generation, e: Engine, give_back: bool = False) -> bool:
        """Whether `gen` still serves (under the lock, so a swap cannot strand `e`); with
        give_back, `e` is back in its idle queue if so."""
        with self._lock:
            if gen is not self._current:
                return False
            if give_back:
                gen.idle.put(e)
            return True

    def _retire(self, gen: _Generation, engines: list[Engine]) -> None:
        for e in engines:
            e.stop(f"its rules were replaced ({_named(self._current)})", logging.INFO)
        with self._lock:
            gen.retired += len(engines)
            done = gen.retired == len(gen.engines) and gen is not self._current
            if done and gen in self._generations:
                self._generations.remove(gen)
        if done:
            shutil.rmtree(gen.folder, ignore_errors=True)

    def spawn(self) -> None:
        """Launch every daemon now, from this (long-lived) thread; the first use connects."""
        for e in self._serving().engines:
            e.spawn("first start")

    def warm(self, threads: Executor) -> None:
        """Make every daemon ready now, one per worker thread (long-lived ones: a daemon those
        threads start again dies with the thread that started it, PR_SET_PDEATHSIG being per
        thread)."""
        for _ in range(self.settings.engines):
            threads.submit(self._warm_one)

    def _warm_one(self) -> None:
        try:
            with self.engine():
                pass
        except EngineError:
            pass  # the first analysis starts it again and reports why it cannot

    def watch(self, every: float) -> None:
        """Look for changed rules every `every` seconds (0: never) in a thread of its own, which
        lives as long as the pool (the daemons it starts die with it)."""
        if every > 0:
            threading.Thread(target=self._watch, args=(every,), name="engines-rules", daemon=True).start()

    def _watch(self, every: float) -> None:
        from .rules import installed
        while not self._closed.wait(every):
            mark = None
            try:
                mark = rules_mark(self.settings, installed(self.settings))
                if mark not in (self.loaded.mark, self._refused_mark):
                    self.reload()
            except Exception as exc:  # a bad ruleset record, a full disk: the old daemons serve on
                self._refuse(mark, None, [bounded(getattr(exc, "message", None) or str(exc))])

    def _refuse(self, mark: tuple | None, loaded: Loaded | None, errors: list[str]) -> None:
        if self._refused is None or self._refused["errors"] != errors:
            log.error("the changed rules were not loaded; %s serves on: %s", _named(self._current),
                      " | ".join(errors))
        self._refused_mark = mark
        self._refused = {"ruleset": loaded and loaded.ruleset, "rules": loaded and loaded.rule_count,
                         "at": time.time(), "errors": errors}

    def reload(self) -> bool:
        """Make daemons with the rules installed now ready beside the serving ones, then swap.
        False (and the old ones serve on) when Suricata refuses the rules (`status()` says why)
        or another reload is under way. The daemons die with the calling thread: call it from
        one that lives as long as the pool (`watch()` does)."""
        if not self._reloading.acquire(blocking=False):
            return False
        try:
            return self._reload()
        finally:
            self._reloading.release()

    def _reload(self) -> bool:
        old = self._serving()
        t0 = time.monotonic()
        gen = self._make(next(self._numbers))
        with self._lock:
            self._generations.append(gen)  # close() stops its daemons too
        self._loading = {"ruleset": gen.loaded.ruleset, "rules": gen.loaded.rule_count, "since": time.time()}
        log.info("loading %s into %d new daemons beside the serving ones", _named(gen), len(gen.engines))
        try:
            for e in gen.engines:
                e.spawn("new rules")
            for e in gen.engines:
                e.start("new rules")
        except EngineError as exc:
            if not self._closed.is_set():
                rules = str(gen.loaded.config_path.with_name("packettotal-combined.rules"))
                errors = [bounded(m.replace(rules, "the merged rules")) for e in gen.engines
                          for level, m in _log_lines(e.log_path, 0) if level == "Error"]
                self._refuse(gen.loaded.mark, gen.loaded, errors[:MAX_OUTPUT_LINES] or [exc.message])
            gen.retired = len(gen.engines)
            for e in gen.engines:
                e.stop("its rules were refused", logging.DEBUG)
            self._retire(gen, [])
            return False
        finally:
            self._loading = None
        with self._lock:
            if self._closed.is_set():
                return False  # close() stopped them
            self._current = gen
            for e in gen.engines:
                gen.idle.put(e)
            idle = []
            while not old.idle.empty():
                idle.append(old.idle.get_nowait())
        self._refused = self._refused_mark = None
        log.info("%s ready in %.1f s: it serves now, in place of %s", _named(gen), time.monotonic() - t0, _named(old))
        self._retire(old, idle)  # those lent out are stopped when given back
        return True

    def status(self) -> dict:
        """The serving generation (None until the first analysis or warm-up), one loading, and
        the last rules refused."""
        gen = self._current
        serving = gen and {"ruleset": gen.loaded.ruleset, "rules": gen.loaded.rule_count,
                           "daemons": len(gen.engines), "ready": sum(e.alive() for e in gen.engines),
                           "since": _iso(gen.since)}
        return {"suricata": self.version, "serving": serving,
                "loading": self._loading and {**self._loading, "since": _iso(self._loading["since"])},
                "refused": self._refused and {**self._refused, "at": _iso(self._refused["at"])}}

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            engines = [e for g in self._generations for e in g.engines]
        for e in engines:  # all killed first: their exits overlap
            e.kill("shutting down", logging.INFO)
        for e in engines:
            e.stop("shutting down", logging.DEBUG)
        if self.run_as:
            shutil.rmtree(self.base, ignore_errors=True)


def _named(gen: _Generation | None) -> str:
    if gen is None:
        return "no ruleset"
    return f"ruleset {gen.loaded.ruleset or '(none installed)'} ({gen.loaded.rule_count:,} rules)"


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


# hunting: a daemon that loads only a hunt's rules (~0.4 s to start), beside the pool's
def check_hunt_rules(settings: Settings, rules: Iterable[str], work: Path) -> list[str]:
    """`suricata -T` of a hunt's rules alone, with PacketTotal's config: Suricata's own error
    lines (bounded) when it refuses them, else []."""
    rules_file, config = _hunt_files(settings, rules, work)
    return _check(settings, config, work / "log", {str(rules_file): "the hunt's rules"})


def _hunt_files(settings: Settings, rules: Iterable[str], work: Path) -> tuple[Path, Path]:
    rules_file, config = work / "hunt.rules", work / "suricata.yaml"
    (work / "log").mkdir(parents=True, exist_ok=True)
    rules_file.write_text("\n".join(rules) + "\n")
    config.write_text(render_config(settings, rules_file, work / "log"))
    return rules_file, config


@contextlib.contextmanager
def hunt_engine(settings: Settings, rules: Iterable[str], folder: Path) -> Iterator[Engine]:
    """A fresh daemon loading only these rules, started in this thread and stopped on leaving,
    in `folder` (as root, in a folder under the temp dir, as the pool's: its account may not
    reach PacketTotal's home); the folder is removed afterwards."""
    account = run_as(settings)
    base = folder
    if account:
        base = Path(tempfile.mkdtemp(prefix=f"{ENGINES_PREFIX}{os.getpid()}-hunt-"))
        os.chmod(base, 0o711)
    try:
        _, config = _hunt_files(settings, rules, base)
        engine = Engine(settings, config, base / "engine", account)
        try:
            engine.start("a hunt")
            yield engine
        finally:
            engine.stop("the hunt is over", logging.INFO)
    finally:
        shutil.rmtree(base, ignore_errors=True)
