"""Ruleset change benchmark: the two ways a long-lived Suricata 7 daemon (unix-socket mode) can
move to a new ruleset with the ET Open set loaded, while it analyses a stream of small captures.

(a) In place, over the daemon's socket: the daemon's rules file is rewritten, then
    `ruleset-reload-nonblocking`, then `ruleset-reload-rules` (blocking; once with the stream
    paused, once with it running), then a ruleset with one broken rule. For each: time until
    Suricata logs "rule reload complete", the daemon's peak RSS meanwhile (VmHWM, reset
    before), and every capture of the stream in flight: failed, delayed,
    or analysed under a MIX of rulesets. Each ruleset is ET Open plus one marker rule of its own
    (sid A, B, C, ...) that alerts on every packet of the stream's captures, so a capture's
    marker sids name the rulesets it met: two different ones is a mix.
(b) Beside it: a second daemon started with the new ruleset while the first keeps serving the
    stream; time until it is ready, the RSS of both, the captures analysed meanwhile; then the
    stream moves to the new daemon and the old one is stopped.

Daemons are PacketTotal's own (`Engine`, `render_config`, `build_rules`); the control commands
go over a second connection to the same socket (`Engine.command`), the stream uses the first.
The ruleset is the enabled rules of the ET Open folder as they are (default
../shared/rules/etopen; suricata-update's merge enables ~130 more for flowbits).
Usage: python bench/reload.py [--etopen PATH] [--packets 300]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
from scapy.all import IP, UDP, Ether, wrpcap

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import ETOPEN  # noqa: E402

from packettotal import config  # noqa: E402
from packettotal.errors import AnalysisFailed, EngineError  # noqa: E402
from packettotal.ingest.suricata import Engine, build_rules, render_config  # noqa: E402

MARK = b"ptbench-reload"
SIDS = {"A": 9_990_001, "B": 9_990_002, "C": 9_990_003, "D": 9_990_004}  # not among the own rules' sids
NAMES = {sid: name for name, sid in SIDS.items()}
BROKEN = 'alert udp any any -> any any (msg:"pt bench broken"; nosuchkeyword; sid:9990099; rev:1;)'
ALERT = b'"event_type":"alert"'


def marker(name: str) -> str:
    return (f'alert udp any any -> any any (msg:"pt bench ruleset {name}"; content:"{MARK.decode()}"; '
            f"sid:{SIDS[name]}; rev:1;)")


def stream_capture(path: Path, packets: int) -> Path:
    """One UDP flow of `packets` packets 1 ms apart, each carrying the marker content."""
    frames = []
    for i in range(packets):
        p = Ether() / IP(src="10.9.0.1", dst="10.9.0.2") / UDP(sport=40000, dport=9999) / (MARK + b"-%06d" % i)
        p.time = 1_700_000_000 + i / 1000
        frames.append(p)
    wrpcap(str(path), frames)
    return path


@dataclasses.dataclass
class Run:
    t0: float
    t1: float
    markers: Counter
    packets: int | None
    error: str | None

    @property
    def seconds(self) -> float:
        return self.t1 - self.t0


class Stream(threading.Thread):
    """Analyses the captures one after another on `self.engine` (switchable) until stopped."""

    def __init__(self, engine: Engine, pcaps: list[Path]):
        super().__init__(daemon=True)
        self.engine, self.pcaps = engine, pcaps
        self.runs: list[Run] = []
        self.stop = threading.Event()
        self.go, self.waiting = threading.Event(), threading.Event()
        self.go.set()

    def pause(self) -> None:
        """Returns once the capture in flight is done and no other is started."""
        self.waiting.clear()
        self.go.clear()
        self.waiting.wait()

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            if not self.go.is_set():
                self.waiting.set()
                self.go.wait()
            engine, pcap = self.engine, self.pcaps[i % len(self.pcaps)]
            i += 1
            seen: Counter = Counter()
            t0, error, packets = time.monotonic(), None, None
            try:
                with engine.analyze(pcap, timeout=120) as run:
                    for line in run.lines():
                        if ALERT in line:
                            sid = orjson.loads(line)["alert"]["signature_id"]
                            if sid in NAMES:
                                seen[NAMES[sid]] += 1
                packets = run.packets
            except (AnalysisFailed, EngineError) as exc:
                error = exc.message
            self.runs.append(Run(t0, time.monotonic(), seen, packets, error))

    def between(self, start: float, end: float) -> list[Run]:
        """The runs in flight at some moment of [start, end]."""
        return [r for r in list(self.runs) if r.t1 >= start and r.t0 <= end]


class Memory(threading.Thread):
    """Samples VmRSS of the given daemons every 20 ms: the peak of each and of their sum."""

    def __init__(self, engines: list[Engine]):
        super().__init__(daemon=True)
        self.engines = engines
        self.peak: dict[str, int] = {}
        self.peak_sum = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.02):
            total = 0
            for e in self.engines:
                rss = status(e).get("VmRSS", 0)
                self.peak[e.name] = max(self.peak.get(e.name, 0), rss)
                total += rss
            self.peak_sum = max(self.peak_sum, total)


def status(e: Engine) -> dict[str, int]:
    """VmRSS and VmHWM of the daemon, MiB."""
    try:
        text = Path(f"/proc/{e.proc.pid}/status").read_text() if e.proc else ""
    except OSError:
        return {}
    return {k: int(v.split()[0]) // 1024 for k, _, v in (line.partition(":") for line in text.splitlines())
            if k in ("VmRSS", "VmHWM")}


def reset_peak(e: Engine) -> None:
    Path(f"/proc/{e.proc.pid}/clear_refs").write_text("5")  # VmHWM back to VmRSS


def control(e: Engine) -> Engine:
    """A second connection to the daemon's socket, for commands beside the stream's."""
    ctl = dataclasses.replace(e, sock=None, _buf=b"")
    ctl._connect()
    ctl.sock.settimeout(600)  # a blocking reload answers when it is done
    return ctl


def log_size(e: Engine) -> int:
    return e.log_path.stat().st_size


def wait_logged(e: Engine, proc, offset: int, text: str, timeout: float = 300) -> float | None:
    """monotonic time at which `text` appeared in the daemon's log past `offset`; None if that
    daemon (`proc`) died or was replaced first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if e.proc is not proc or proc.poll() is not None:
            return None
        with open(e.log_path, "rb") as f:
            f.seek(offset)
            if text.encode() in f.read():
                return time.monotonic()
        time.sleep(0.02)
    raise TimeoutError(f"{text!r} not logged within {timeout:g} s")


def first_capture_after(stream: Stream, t: float, timeout: float = 300) -> float:
    """When the stream next finished a capture it started after `t`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ends = [r.t1 for r in list(stream.runs) if r.t0 > t and not r.error]
        if ends:
            return min(ends)
        time.sleep(0.05)
    raise TimeoutError(f"no capture analysed within {timeout:g} s")


def logged_since(e: Engine, offset: int, level: str) -> list[str]:
    with open(e.log_path, "rb") as f:
        f.seek(offset)
        return [line.split(f"{level}: ", 1)[1] for line in f.read().decode(errors="replace").splitlines()
                if f"{level}: " in line]


def met(runs: list[Run]) -> dict[str, int]:
    """How many captures met each set of rulesets (by their marker sids): "A", "A+B" (a mix), "none"."""
    return dict(Counter("+".join(sorted(r.markers)) or "none" for r in runs if not r.error))


def describe(runs: list[Run], baseline: float) -> str:
    if not runs:
        return "no capture in flight"
    failed = [r for r in runs if r.error]
    mixed = [r for r in runs if len(r.markers) > 1]
    short = [r for r in runs if not r.error and r.packets and sum(r.markers.values()) < r.packets]
    worst = max(r.seconds for r in runs)
    return (f"{len(runs)} captures in flight: {len(failed)} failed, {len(mixed)} under a mix of rulesets, "
            f"{len(short)} with packets unalerted; slowest {worst:.2f} s (delay {worst - baseline:+.2f} s "
            f"over the baseline); rulesets met: {met(runs)}"
            + (f"; failures: {sorted({r.error for r in failed})}" if failed else ""))


def write_rules(settings, dest: Path, et: str, name: str, extra: str = "") -> None:
    ruleset = dest.with_suffix(".ruleset")
    ruleset.write_text(f"{et}\n{marker(name)}\n{extra}\n")
    build_rules(settings, dest, ruleset)


def reload(stream: Stream, e: Engine, baseline: float, command: str, label: str, paused: bool = False) -> dict:
    """One ruleset change in place, the daemon's rules file already rewritten: what it cost and
    what the captures in flight met. {} when the daemon did not survive it."""
    if paused:
        stream.pause()
    ctl, proc = control(e), e.proc
    reset_peak(e)
    before = status(e)["VmRSS"]
    offset = log_size(e)
    t0 = time.monotonic()
    try:
        reply = ctl.command(command)
    except OSError as exc:  # the daemon went away meanwhile
        reply = {"error": str(exc)}
    answered = time.monotonic()
    done = None if "error" in reply else wait_logged(e, proc, offset, "rule reload complete")
    stream.go.set()
    if done is None:
        back = first_capture_after(stream, time.monotonic())
        gone = f"exit code {proc.poll()}"  # -9: killed by the service as hung; -11: it crashed
        print(f"\n  {label}: `{command}` answered {reply} after {answered - t0:.1f} s, and the daemon did not "
              f"complete the reload (old daemon: {gone}); the stream's next capture ended {back - t0:.1f} s after "
              "the command (the service's restart)")
        print(f"    {describe(stream.between(t0, back), baseline)}")
        return {}
    time.sleep(1.5)  # captures after the swap
    peak = status(e)["VmHWM"]
    stats, failed_rules = ctl.command("ruleset-stats"), ctl.command("ruleset-failed-rules")
    ctl.sock.close()
    print(f"\n  {label}: `{command}` answered {reply} after {answered - t0:.2f} s; "
          f"reload complete after {done - t0:.1f} s")
    print(f"    daemon RSS {before} MiB before, peak {peak} MiB during (VmHWM)")
    print(f"    {describe(stream.between(t0, done), baseline)}")
    after = [r for r in stream.runs if r.t0 > done and not r.error]
    print(f"    after it: {len(after)} captures, rulesets met {met(after)}")
    return {"stats": stats, "failed": failed_rules, "errors": logged_since(e, offset, "Error")}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--etopen", type=Path, default=ETOPEN, help="folder of .rules files (default: ET Open)")
    ap.add_argument("--packets", type=int, default=300, help="packets per capture of the stream")
    args = ap.parse_args()
    et = "\n".join(p.read_text(errors="replace") for p in sorted(args.etopen.glob("*.rules")))
    with tempfile.TemporaryDirectory(prefix="pt-bench-reload-") as tmp_:
        tmp = Path(tmp_)
        # the daemon log is not cut during the run: the bench reads it from an offset
        settings = config.load(env={}, home=tmp / "home", suricata_user="", engine_log_bytes=1 << 30)
        pcaps = [stream_capture(tmp / f"stream-{i}.pcap", args.packets) for i in range(2)]
        rules1 = tmp / "engine-1.rules"
        write_rules(settings, rules1, et, "A")
        conf1 = tmp / "engine-1.yaml"
        conf1.write_text(render_config(settings, rules1, tmp / "engine-1" / "log"))
        e1 = Engine(settings, conf1, tmp / "engine-1")
        memory = Memory([e1])
        memory.start()
        t0 = time.monotonic()
        e1.start()
        rules = sum(1 for line in rules1.read_text().splitlines() if line)
        print(f"daemon 1 ready with ET Open + marker A ({rules:,} rules) after {time.monotonic() - t0:.1f} s, "
              f"RSS {status(e1)['VmRSS']} MiB (peak {memory.peak.get(e1.name, 0)} MiB)")
        stream = Stream(e1, pcaps)
        stream.start()
        time.sleep(4)
        base_runs = [r for r in stream.runs if not r.error]
        baseline = statistics.median(r.seconds for r in base_runs)
        print(f"stream: {args.packets}-packet captures, one after another; baseline {baseline * 1000:.0f} ms each "
              f"(median of {len(base_runs)}), rulesets met {met(base_runs)}")

        print("\n(a) in place, over the socket")
        write_rules(settings, rules1, et, "B")
        reload(stream, e1, baseline, "ruleset-reload-nonblocking", "A -> B, non-blocking, stream running")
        write_rules(settings, rules1, et, "A")
        reload(stream, e1, baseline, "ruleset-reload-rules", "B -> A, blocking, stream paused (idle daemon)",
               paused=True)
        write_rules(settings, rules1, et, "B")
        reload(stream, e1, baseline, "ruleset-reload-rules", "A -> B, blocking, stream running")
        write_rules(settings, rules1, et, "C", BROKEN)
        broken = reload(stream, e1, baseline, "ruleset-reload-nonblocking",
                        "B -> C + one broken rule, non-blocking, stream paused (idle daemon)", paused=True)
        if broken:
            print(f"    ruleset-stats: {broken['stats']['message']}")
            print(f"    ruleset-failed-rules: {[r['rule'] for r in broken['failed']['message']]}")
            print(f"    Suricata's errors: {broken['errors']}")

        print("\n(b) a second daemon beside the first")
        rules2 = tmp / "engine-2.rules"
        write_rules(settings, rules2, et, "D")
        conf2 = tmp / "engine-2.yaml"
        conf2.write_text(render_config(settings, rules2, tmp / "engine-2" / "log"))
        e2 = Engine(settings, conf2, tmp / "engine-2")
        memory.engines, memory.peak, memory.peak_sum = [e1, e2], {}, 0
        t0 = time.monotonic()
        e2.start()
        ready = time.monotonic()
        stream.engine = e2
        switched = time.monotonic()
        print(f"  daemon 2 (ET Open + D) ready after {ready - t0:.1f} s; RSS of both together peak "
              f"{memory.peak_sum} MiB (daemon 1 {memory.peak[e1.name]}, daemon 2 {memory.peak[e2.name]})")
        print(f"  meanwhile on daemon 1: {describe(stream.between(t0, ready), baseline)}")
        time.sleep(2)
        e1.stop("replaced", 20)
        time.sleep(1.5)
        after = [r for r in stream.runs if r.t0 > switched]
        print(f"  after the switch: {describe(after, baseline)} (daemon 1 stopped 2 s after it)")
        stream.stop.set()
        stream.join(120)
        memory.stop.set()
        e2.stop("done", 20)
        lost = [r for r in stream.runs if r.error]
        print(f"\nstream total: {len(stream.runs)} captures, {len(lost)} failed")


if __name__ == "__main__":
    main()
