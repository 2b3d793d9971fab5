"""The per-record ingest pipeline, pure: EVE lines in; the records to index, the observables, the
carved-file records, the rules that fired and a typed summary out. No Suricata, no stores: the
service feeds it what a daemon writes and stores what comes out, and tests feed it lines.

    acc = Accumulator(Limits(...))
    store.index_capture(cid, acc.records(lines))   # normalised, counted, collected as they pass
    outcome = acc.finish(cid, indexed=..., run=RunFacts(...), rules=..., rule_class=..., prefixes=...)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field

from ..records import values_at
from . import (broadcasts, certs as certs_mod, eve, findings as findings_mod, observables, summary as summary_mod,
               threats as threats_mod)

MAX_RULE_TEXTS = 500
MAX_RULE_CHARS = 4096


@dataclass(frozen=True)
class Limits:
    max_string: int = 4096
    max_events: int = 2_000_000       # records indexed; the rest are counted
    max_observables: int = 250_000    # distinct observables recorded


@dataclass(frozen=True)
class RunFacts:
    """What the engine said of its run over the capture."""
    packets_read: int
    expected_packets: int | None = None  # from the file walk at upload
    errors: tuple[str, ...] = ()


@dataclass
class Summary:
    counts: dict[str, int]
    events: int           # records counted (Suricata's stats records apart)
    indexed: int          # of those, records the index holds
    alerts: int           # threat rules' alerts: Malicious activity
    anomalies: int        # anomaly records and protocol-event rules' alerts: Strange activity
    threats: dict         # ingest/threats.py: the ruleset's classes, alerts grouped by signature
    findings: list[dict]  # ingest/findings.py: the detectors' findings, most severe first
    top_talkers: list[dict]
    protocols: dict[str, int]
    timeline: dict
    rules: dict[str, str]  # sid -> the text of each rule that fired, as loaded for this analysis
    broadcasts: list[str] = field(default_factory=list)  # subnet broadcasts its DHCP answers tell (broadcasts.py)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Outcome:
    summary: Summary
    observables: list[dict]
    warnings: list[str] = field(default_factory=list)
    certs: dict = field(default_factory=dict)  # rows of the certs and cert_chains tables (ingest/certs.py)


class Accumulator:
    def __init__(self, limits: Limits):
        self.limits = limits
        self.report = eve.NormaliseReport()
        self.counts: Counter[str] = Counter()
        self.collector = observables.Collector(limits.max_observables)
        self.aggregates = summary_mod.Aggregates()
        self.fileinfo: list[dict] = []  # carved-file records, for the service to keep the files
        self.originators: dict[object, tuple[object, object] | None] = {}  # file flows: who opened each
        self.fired: set[int] = set()
        self.signatures = threats_mod.Signatures()
        self.detectors = findings_mod.Detectors()
        self.broadcasts = broadcasts.Broadcasts()

    def records(self, lines: Iterable[bytes]) -> Iterator[dict]:
        """The records to index: every one normalised and counted, at most max_events of them
        yielded (Suricata's stats records always: they are stored, not counted)."""
        eve_limits = eve.Limits(max_string=self.limits.max_string)
        events = 0
        for rec in eve.records(lines, eve_limits, self.report):
            etype = rec["event_type"]
            self.counts[etype] += 1
            if etype == "stats":
                yield rec
                continue
            events += 1
            self.collector.add(rec)
            self.aggregates.add(rec)
            self.detectors.add(rec)
            self.broadcasts.add(rec)
            if etype == "fileinfo":
                self.fileinfo.append(rec)
                self.originators.setdefault(rec.get("flow_id"), None)
            elif etype == "flow" and rec.get("flow_id") in self.originators:  # who opened it: a file's direction
                self.originators[rec["flow_id"]] = (rec.get("src_ip"), rec.get("src_port"))
            elif etype == "alert":
                self.fired.update(s for s in values_at(rec, "alert.signature_id") if isinstance(s, int))
                self.signatures.add(rec)
            if events <= self.limits.max_events:
                yield rec

    def finish(self, capture_id: str, stored: int, run: RunFacts, rules: Mapping[int, str],
               rule_class: Mapping[int, str], prefixes: Mapping[str, str]) -> Outcome:
        """`stored`: documents the index took for this capture (stats records included);
        `rule_class`: sid -> protocol | own | threat; `prefixes`: reference system -> URL prefix."""
        counts = Counter(self.counts)
        stats_records = counts.pop("stats", 0)
        total, indexed = sum(counts.values()), stored - stats_records
        certs = self._certificates()
        threats = self.signatures.result(counts.get("alert", 0), rule_class, rules, prefixes)
        listed = [g["sid"] for g in threats["signatures"]]  # their rules' texts first
        found = list(dict.fromkeys(listed + sorted(s for s in self.fired if s in rules)))
        found = [s for s in found if s in rules][:MAX_RULE_TEXTS]
        summary = Summary(
            counts=dict(sorted(counts.items())), events=total, indexed=indexed, alerts=threats["alerts"],
            anomalies=counts.get("anomaly", 0) + threats["protocol_alerts"], threats=threats,
            findings=self.detectors.result(),
            **self.aggregates.result(), rules={str(s): rules[s][:MAX_RULE_CHARS] for s in found},
            broadcasts=self.broadcasts.result())
        obs = [{"capture_id": capture_id, "kind": k, "value": v, "field": f, "count": seen.count,
                "first_seen": seen.first, "last_seen": seen.last}
               for (k, v, f), seen in self.collector.seen.items()]
        return Outcome(summary, obs, self._warnings(run, total, indexed), certs)

    def _certificates(self) -> dict:
        """The certificates of the records' chains, and each chain's rows; their fingerprints,
        subjects and issuers become observables (intermediates and roots too)."""
        chains = self.detectors.chains
        for row in chains.seen:
            c, ts = chains.certs[row["sha256"]], row["timestamp"] or None
            where = "tls.chain" if row["side"] == "server" else "tls.client_chain"
            colons = ":".join(c["sha1"][i:i + 2] for i in range(0, 40, 2))
            for kind, value in (("cert_sha256", c["sha256"]), ("cert_sha1", colons),
                                ("cert_subject", c["subject"]), ("cert_issuer", c["issuer"])):
                if value:
                    self.collector.note(kind, value, where, ts)
        return {"certs": [c | {"serial_key": certs_mod.serial_key(c["serial"])} for c in chains.certs.values()],
                "cert_chains": list(chains.seen)}

    def _warnings(self, run: RunFacts, total: int, indexed: int) -> list[str]:
        lim, report, out = self.limits, self.report, []
        if run.expected_packets and run.packets_read < run.expected_packets:
            out.append(f"Suricata read {run.packets_read:,} of the {run.expected_packets:,} packets in the file")
        out += [f"Suricata: {e}" for e in run.errors[:5]]
        if indexed < total:
            out.append(f"{total - indexed:,} of {total:,} events were counted but not indexed "
                       f"(limit {lim.max_events:,} per capture)")
        if report.bad_lines:
            out.append(f"{report.bad_lines} EVE lines could not be read: {'; '.join(report.examples)}")
        if self.collector.dropped:
            out.append(f"{self.collector.dropped:,} occurrences of observables past the first "
                       f"{lim.max_observables:,} distinct ones were not recorded "
                       "(setting max_observables_per_capture)")
        if self.detectors.chains.dropped:
            out.append(f"{self.detectors.chains.dropped:,} certificates of TLS chains were not read "
                       "(not base64, over-long, or past the bounds of ingest/certs.py)")
        if report.cut_values:
            out.append(f"{report.cut_values:,} over-long values were cut to {lim.max_string:,} bytes")
        return out
