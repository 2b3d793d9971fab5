"""The application: submit captures, analyse them, read results. Web, API and CLI all call this."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import re
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import BinaryIO

from . import config as config_mod, flows as flows_mod
from .auth import ownership, visibility
from .auth.accounts import Accounts
from .auth.rights import Principal
from .errors import (AnalysisFailed, EngineError, Forbidden, IntelError, NotFound, QueryError, RulesRefused,
                     StorageFull, YaraError, disk_full)
from .ingest import (capfile, certs, files as carved, flowpackets, geo, hunts, intel, ndpi, netbios, observables,
                     pipeline, rare, suricata, threats, validate, yarascan)
from .listing import CaptureFilter
from .query import (correlate, fields as catalog, indicators, labels as labels_mod, lucene, pivotsearch, suggest,
                    topvalues)
from .query.nodes import And, Captures, Not, Or, Term
from .store import migrate as migrate_mod, purge, schema
from .store.blobs import Blobs
from .store.db import Database, now
from .store.events import open_events
from .store.events.spool import Part, Spool, SpoolError
from .store.scoped import ScopedDatabase, ScopedEvents
from .store.events.base import searchable  # noqa: F401  (re-exported: what of a record is searched)
from .store.events.tantivy import MAX_OFFSET  # noqa: F401  (re-exported: the deepest offset served)

log = logging.getLogger("packettotal")
MAX_ATTEMPTS = 2
MAX_GROUPS = 10_000  # captures one search groups its hits into
EXPORT_PAGE = 10_000  # events read from the index at a time by an export
NO_SPACE = "the server ran out of disk space"
SPOOL_ABANDONED = 3600.0  # seconds after which a spool entry still being written is swept away
YARA_BATCH = 100  # scans of carved files recorded in one transaction


LEASE_SECONDS = 20.0  # a job lease beaten within this is a live worker's (jobs/celery.py: 4 beats of 5 s)


@dataclass
class Submission:
    capture: dict
    created: bool  # False: the capture was known already


@dataclass
class Reanalysis:
    capture: dict
    queued: bool  # False: it was queued or running already


class PacketTotal:
    def __init__(self, settings: config_mod.Settings | None = None, pool: suricata.EnginePool | None = None):
        self.settings = settings or config_mod.load()
        s = self.settings
        s.home.mkdir(parents=True, exist_ok=True)
        self._db = Database.from_url(s.database)
        self.accounts = Accounts(self._db, s)  # users, keys, sessions, audit (auth/accounts.py)
        self._events = open_events(s)
        self._blobs = Blobs(s.blob_dir)
        self._spool = Spool(s.spool_dir)  # analyses waiting for the process holding the index
        self.validator = validate.Validator(s)
        self._reference_prefixes = threats.reference_prefixes()  # a rule's references as links
        self._capture_fields: dict[str, labels_mod.Lookup] = {  # query fields resolved in the database
            **{name: partial(self._db.labelled, kinds) for name, kinds in catalog.LABELS.items()},
            "finding": self._db.with_finding, "hunt": self._db.hunted, "yara": self._db.yara_matched,
            "geo.country": self._db.geo_country, "geo.range": self._geo_range, "asn": self._asn,
            "intel": self._db.with_intel,
            **{name: partial(self._db.ndpi_matched, column) for name, column in catalog.NDPI_FIELDS.items()},
            **{name: partial(self._cert_matched, column) for name, column in catalog.CERT_FIELDS.items()},
            "netbios.name": self._db.netbios_matched,
            "name": self._db.named}
        self._geo = geo.Locator(s.geo_data_dir) if s.geo_data_dir else None  # country and AS of IPs
        self._ndpi_helpers: ndpi.Helpers | None = None  # nDPI's helper processes, made on first use
        self._made_pool = pool  # else made on first use
        self._pool_lock = threading.Lock()
        self._pending: list[_Indexed] = []  # indexed, waiting for a commit to be `done`
        self._unrecorded: dict[str, str] = {}  # capture -> why it failed: the database could not take it yet
        self._pending_lock = threading.Lock()
        self._yara = (yarascan.Watcher(s.yara_rules_dir, s.home / "yara" / "rules.bin", self._yara_changed)
                      if s.yara_rules_dir else None)
        # called when the YARA rules change (`serve` re-scans the stored files then)
        self.on_yara_change: Callable[[], object] | None = None
        self.viewer: Principal | None = None  # None: sees everything (the CLI, the workers)
        self._unscoped = self  # what every view (as_) stores through: dedupe sees every capture
        self._clean_index()
        self._finish_deletions()

    def as_(self, who: Principal) -> PacketTotal:
        """The service as `who` sees it: the same methods, reading through stores scoped to the
        captures `who` may see (store/scoped.py, auth/visibility.py), the one place reads are
        limited (an admin's view reads everything, but uploads and labels as the admin); itself
        in single mode."""
        if self.settings.mode == "single" or who.kind == "local":
            return self
        view = copy.copy(self)
        view.viewer = who
        if not visibility.sees_everything(self.settings.mode, who):
            me = visibility.identity(who)
            groups = self.accounts.groups_of(who.name)  # read afresh: a member removed loses sight at once
            hidden = visibility.hidden(self._db.restricted_uploads(), me, groups)
            view._db = ScopedDatabase(self._db, hidden, me, groups)  # type: ignore[assignment]
            view._events = ScopedEvents(self._events, hidden)
            view._capture_fields = {**self._capture_fields, **{  # label:, name: see what the viewer may only
                name: partial(view._db.labelled, kinds) for name, kinds in catalog.LABELS.items()},
                "name": view._db.named}
        return view

    def _clean_index(self) -> None:
        """Delete what the index holds of captures a previous process never finished (killed, or
        its disk full); hidden until then, and left hidden when another process holds the writer.
        A capture a live Celery worker holds (its lease beaten within LEASE_SECONDS) is its own."""
        unfinished = self._db.unfinished()
        owned = self._db.live_leases(LEASE_SECONDS) if unfinished else set()
        left = self._events.documents([cid for cid in unfinished if cid not in owned])
        if not left:
            return
        self._events.hide(left)
        log.warning("deleting the events of %d unfinished captures from the index", len(left))
        try:
            self._events.delete_captures(left)
            self._events.commit()
        except Exception as exc:
            log.warning("could not delete them now (they stay hidden): %s", exc)
        self._events.close()  # a process that only reads does not keep the writer

    @property
    def _pool(self) -> suricata.EnginePool:
        base = self._unscoped  # a view (as_) never makes a pool of its own
        with base._pool_lock:  # workers race here on first use: one pool, one set of daemons
            if base._made_pool is None:
                base._made_pool = suricata.EnginePool(self.settings)
        return base._made_pool

    def claim_index(self) -> None:
        """Hold the event index's writer from now on: a process that analyses takes it before any
        work (raises IndexBusy when another process, a `serve`, holds it)."""
        self._events.claim()

    def warm_engines(self, threads: Executor) -> None:
        """Start the Suricata daemons now, one in each of these (long-lived) threads, and nDPI's helpers."""
        self._pool.warm(threads)
        self.warm_ndpi(threads)

    def warm_ndpi(self, threads: Executor) -> None:
        """Start nDPI's helpers now, one in each of these (long-lived) threads: they die with it."""
        for _ in range(self.settings.engines):
            threads.submit(self._ndpi_warm_one)

    def _ndpi_warm_one(self) -> None:
        helpers = self._ndpi_helpers_for([])  # a reason it cannot run: the first capture says it
        if helpers is not None:
            helpers.warm()

    def watch_rules(self) -> None:
        """Load changed rules into new daemons as they change (`rules_reload_seconds`), the old
        ones serving meanwhile."""
        self._pool.watch(self.settings.rules_reload_seconds)

    def engines(self) -> dict:
        """The daemons' rules: those serving, those loading, the last refused."""
        return self._pool.status()

    @staticmethod
    def upgrade_database(settings: config_mod.Settings) -> tuple[str | None, str]:
        """`packettotal db upgrade`: the database brought to the code's schema revision, without
        opening a service (PostgreSQL behind refuses to open): (its revision before, after)."""
        return schema.upgrade(settings.database)

    @staticmethod
    def database_revision(settings: config_mod.Settings) -> tuple[str | None, str]:
        """`packettotal db current`: (the database's schema revision, None: not made; the code's)."""
        return schema.revision(settings.database)

    def close(self) -> None:
        if self._made_pool is not None:
            self._made_pool.close()
        if self._ndpi_helpers is not None:
            self._ndpi_helpers.close()
        self._events.close()
        self.accounts.flush()  # the counts of key use and uploads kept in memory
        self._db.close()
        if self._geo is not None:
            self._geo.close()

    # write side
    def submit(self, path: Path, name: str | None = None) -> Submission:
        """Validate and store a capture, uploaded by the viewer (private when signed in). Raises
        RefusedCapture (StorageFull on a full disk); a known capture is returned as is (the
        viewer's upload of it recorded)."""
        self._record_failures()
        staged = self.validator.stage(path)
        try:
            sub = self._unscoped._store(staged, path, name)
            who = self.viewer
            self._unscoped._db.record_upload(sub.capture["id"], visibility.identity(who),
                                             visibility.default_visibility(who), _display_name(name or path.name))
            return sub
        except Exception as exc:
            staged.path.unlink(missing_ok=True)
            if disk_full(exc):
                log.error("could not store an upload: %s", exc)
                raise StorageFull() from None
            raise

    def _store(self, staged: validate.StagedCapture, path: Path, name: str | None) -> Submission:
        d = staged.digests
        try:
            existing = self._row(d.sha256)
        except NotFound:
            existing = None
        if existing is not None:
            staged.path.unlink(missing_ok=True)
            if existing["status"] == "failed":
                self._db.update_capture(d.sha256, status="queued", error=None, attempts=0)
                self._superseded(d.sha256)
                return Submission(self._db.get_capture(d.sha256), True)
            return Submission(existing, False)
        self._blobs.put_move("captures", d.sha256, staged.path)
        info = staged.info
        inserted = self._db.insert_capture({
            "id": d.sha256, "md5": d.md5, "sha1": d.sha1, "size": d.size,
            "upload_sha256": _upload_sha256(path) if staged.compression else None,
            "name": _display_name(name or path.name), "compression": staged.compression,
            "status": "queued", "warnings": list(staged.warnings), "attempts": 0, "submitted_at": now(),
            "summary": capture_facts(info, staged.description) | {"upload_warnings": list(staged.warnings)},
        })
        # two uploads of one new capture at once: the second finds the first's row
        return Submission(self._db.get_capture(d.sha256), inserted)

    def analyse_to_spool(self, capture_id: str) -> dict:
        """Analyse one capture into the spool, for a process that does not hold the event index's
        writer (a worker, `analyze` beside `serve`): it ends `indexing` (or `failed`), and `done`
        once the holder's indexer has taken it (`index_spooled`). Never raises for a bad capture."""
        return self.analyse(capture_id, spool=True)

    def analyse(self, capture_id: str, defer_commit: bool = False, spool: bool = False) -> dict:
        """Run one capture through Suricata and into both stores. Never raises for a bad capture:
        the capture ends `failed` with its reason. With defer_commit, a successful capture stays
        `running` until `flush()` commits it together with others (batches). With spool, its
        results go to the spool instead of the index (analyse_to_spool)."""
        self._record_failures()
        row = self._db.get_capture(capture_id)
        while True:
            attempts = row["attempts"] + 1
            try:
                self._db.update_capture(capture_id, status="running", started_at=now(), attempts=attempts)
                self._superseded(capture_id)
                self._analyse(row, defer_commit, spool)
                return self._row(capture_id)
            except (AnalysisFailed, EngineError) as exc:
                retry = isinstance(exc, AnalysisFailed) and exc.retry and attempts < MAX_ATTEMPTS
                if retry:
                    log.warning("capture %s: %s; retrying", capture_id, exc.message)
                    row = self._db.get_capture(capture_id)
                    continue
                reason = exc.message + (f" (Suricata: {exc.detail[:2000]})" if exc.detail else "")
            except Exception as exc:  # a bug (or a full disk) must fail this capture, not the service
                if disk_full(exc):
                    log.error("capture %s: no disk space left: %s", capture_id, exc)
                    reason = f"{NO_SPACE} while analysing it: analyse it again once space has been freed"
                else:
                    log.error("capture %s: internal error\n%s", capture_id, traceback.format_exc())
                    reason = f"internal error while analysing: {type(exc).__name__}: {str(exc)[:300]}"
            self._discard({capture_id: reason}, index=not spool)  # a spooler never touches the index
            return self._row(capture_id)

    def _analyse(self, row: dict, defer_commit: bool, spool: bool = False) -> None:
        # the upload's own warnings, then this analysis's: not those of an earlier analysis (a capture
        # stored before upload_warnings was kept: its warnings, each once)
        warnings = list((row["summary"] or {}).get("upload_warnings", row["warnings"] or []))
        pcap = self._blobs.path("captures", row["id"])
        second = self._ndpi_start(pcap, warnings)  # beside Suricata, on the same file
        nbns = netbios.Names()  # NetBIOS names, decoded on the way (ingest/netbios.py)
        offsets = threading.Thread(target=self._index_flows, args=(row["id"], nbns), name="flow-index")
        part = self._spool.begin(row["id"]) if spool else None
        sink = part.events if part is not None else partial(self._index_events, row["id"])
        try:
            offsets.start()  # beside Suricata too: the packet offsets by flow (ingest/flowpackets.py)
            with self._pool.engine() as engine, engine.analyze(pcap, name=row["name"]) as run:
                assert engine.loaded is not None  # lent by the pool: its generation's rules
                summary, obs, files_, documents, derived = self._index(row, run, engine.loaded, warnings, sink)
        except BaseException:
            if part is not None:
                part.abandon()
            if second is not None:
                second.kill()
                second.result()
            raise
        finally:
            if offsets.ident is not None:  # started
                offsets.join()
        flows = self._ndpi_finish(row["id"], second, summary, obs, warnings)
        derived["netbios"] = netbios_rows = nbns.rows()
        obs += netbios.observables(row["id"], netbios_rows)
        summary["netbios"] = len(netbios_rows)
        self._scan_files([f["sha256"] for f in files_ if f["stored"]], skip_current=True)
        done = {"id": row["id"], "observables": obs, "files": files_, "status": "done", "error": None,
                "summary": summary, "warnings": list(dict.fromkeys(warnings)), "finished_at": now(),
                "ndpi": flows, **derived}
        if part is not None:
            self._spooled(part, done, documents)
            return
        with self._pending_lock:
            self._pending.append(_Indexed(done, documents))
        if not defer_commit:
            self.flush()

    def take_lease(self, capture_id: str, worker: str) -> bool:
        """Record that `worker` (a Celery worker) is analysing this capture now; False: a live
        worker holds it already."""
        return self._db.take_lease(capture_id, worker, LEASE_SECONDS)

    def beat_leases(self, worker: str) -> None:
        self._db.beat_leases(worker)

    def drop_lease(self, capture_id: str, worker: str) -> None:
        self._db.drop_lease(capture_id, worker)

    def leases(self) -> dict[str, str]:
        """Capture -> the worker holding it."""
        return self._db.leases()

    def leased(self, seconds: float) -> set[str]:
        """Captures a live worker holds (it beat within `seconds`): not to be queued again."""
        return self._db.live_leases(seconds)

    def _index_events(self, capture_id: str, records: Iterator[dict]) -> int:
        """The direct path: the capture's events into the index, hidden until it is `done`."""
        self._events.hide([capture_id])  # until it is recorded done, whatever commits meanwhile
        return self._events.index_capture(capture_id, records)

    def _spooled(self, part: Part, done: dict, documents: int) -> None:
        """The spool path: publish the entry, then the capture waits `indexing` (unless the
        indexer was quicker and it is `done` already)."""
        try:
            part.publish(done, documents)
        except BaseException:
            part.abandon()
            raise
        self._db.mark_indexing(done["id"])

    def index_spooled(self, limit: int = 50) -> list[str]:
        """The writer's side of the spool: index up to `limit` finished entries, then the same
        group commit as direct analyses (`flush`), then remove them; the captures flushed. A
        capture indexed twice (a crash before its entry was removed) ends with one copy of its
        events: the index replaces a capture's documents."""
        entries = self._spool.ready(limit)
        if not entries:
            return []
        rows = self._db.captures_in([e.capture_id for e in entries])
        taken, failures = [], {}
        for entry in entries:
            if entry.capture_id not in rows:  # deleted meanwhile
                entry.remove()
                continue
            try:
                done, documents = entry.result()
                indexed = self._index_events(entry.capture_id, entry.records())
            except SpoolError as exc:
                failures[entry.capture_id] = f"{exc} (analyse it again)"
                entry.remove()
                continue
            if indexed != documents:
                failures[entry.capture_id] = (f"its spool entry holds {indexed:,} of its {documents:,} events "
                                              "(analyse it again)")
                entry.remove()
                continue
            with self._pending_lock:
                self._pending.append(_Indexed(done, documents))
            taken.append(entry)
        if failures:
            self._discard(failures)
        flushed = self.flush()
        for entry in taken:  # after the commit: a crash before this indexes them again
            entry.remove()
        return flushed + list(failures)

    def sweep_spool(self, older_than: float = SPOOL_ABANDONED) -> int:
        """Remove spool entries left half-written (their process died: older than `older_than` and
        than any analysis may take) and those of deleted captures (asked of the entries of one
        listing, so one begun meanwhile is kept), then fail the captures `indexing` whose entry is
        gone: those are read before the entries, since an entry is published before its capture
        is marked `indexing` and removed only once it is `done`. How many entries were removed."""
        removed = self._spool.sweep(max(older_than, self.settings.longest_analysis), self._db.captures_in)
        waiting = self._db.indexing()
        present = self._spool.captures()
        for cid in waiting:
            if cid not in present and self._db.fail_indexing(cid, "its analysed results were lost before they "
                                                                  "were indexed (analyse it again)"):
                log.warning("capture %s: its spool entry is gone; failed", cid)
        return removed

    def flush(self) -> list[str]:
        """Commit the event index, then mark every capture indexed so far `done` (group commit:
        one index commit and one database transaction for all of them). A capture is `done`
        only once the index is seen to hold every document it was given; else it fails with
        the reason, its documents are deleted, and none of them were ever visible."""
        self._record_failures()
        with self._pending_lock:
            pending, self._pending = self._pending, []
        if not pending:
            return []
        ids = [p.row["id"] for p in pending]
        try:
            self._events.commit()
            held = self._events.documents(ids)
        except Exception as exc:
            log.error("could not commit the event index for %d analyses: %s", len(pending), exc)
            self._discard(dict.fromkeys(ids, f"the events could not be stored: {_store_error(exc)}"))
            return ids
        lost = {p.row["id"]: f"the event index holds {held.get(p.row['id'], 0):,} of the capture's "
                             f"{p.documents:,} documents after its commit (analyse it again)"
                for p in pending if held.get(p.row["id"], 0) != p.documents}
        for cid, reason in lost.items():
            log.error("capture %s: %s", cid, reason)
        good = [p.row for p in pending if p.row["id"] not in lost]
        self._judge_domains(good)
        try:
            self._db.finish_captures(good)
        except Exception as exc:
            log.error("could not record %d analyses: %s", len(good), exc)
            lost.update(dict.fromkeys((r["id"] for r in good),
                                      f"the results could not be recorded: {_store_error(exc)}"))
        else:
            self._events.reveal(r["id"] for r in good)
            self._locate(good)
            self._match_intel([r["id"] for r in good])
        if lost:
            self._discard(lost)
        return ids

    def _judge_domains(self, results: list[dict]) -> None:
        """Each capture's registered domains (recorded with it) and its `rare_domain` finding, judged
        against the captures submitted before it (ingest/rare.py). Best effort: on a store error
        the capture goes without the finding.

        The finding is part of the capture's summary, which everyone who may read the capture
        reads; "this domain is not new" would tell them that some capture they may not see holds
        it. So outside single mode the history is that of the public captures only (a public
        upload, or no upload row): those every viewer of any capture may read, whoever they are,
        whatever the capture's visibility becomes later. Its owner's own private captures are
        left out too: the capture may be shared or made public, and its readers would learn of
        them. In single mode everyone sees everything: every earlier capture counts."""
        s, seen = self.settings, {r["id"]: rare.domains_of(r["observables"]) for r in results}
        for r in results:
            r["domains"] = sorted(seen[r["id"]])
        try:
            order = self._db.submitted(seen)
            public_only = s.mode != "single"
            closed = visibility.hidden(self._db.restricted_uploads(), None) if public_only else frozenset()
            batch = [rare.Judged(cid, (order[cid], cid), regs, rare.History(*self._db.domain_history(
                cid, regs, seen, s.rare_domain_baseline, s.rare_domain_below, public_only)), cid not in closed)
                for cid, regs in seen.items()]
        except Exception as exc:
            log.warning("no rare_domain finding for %d captures: %s", len(results), _store_error(exc))
            return
        judged = rare.judge_batch(batch, s.rare_domain_baseline, s.rare_domain_below)
        for r in results:
            if (found := judged.get(r["id"])) is not None:
                r["summary"]["findings"] = rare.add_to(r["summary"].get("findings", []), found)

    def _discard(self, failures: dict[str, str], index: bool = True) -> None:
        """Fail captures with their reasons and delete their events with the next commit (hidden
        until then; not with `index` False: a process that spools). When the database cannot
        take the failure now (a full disk), it is kept and written with the next analysis or
        flush: the capture never stays `running`."""
        try:
            if index:
                self._events.delete_captures(failures)
        except Exception as exc:  # hidden, and deleted at the next start
            log.error("could not delete the events of %d failed analyses: %s", len(failures), exc)
        with self._pending_lock:
            self._unrecorded.update(failures)
        self._record_failures()

    def _record_failures(self) -> None:
        with self._pending_lock:
            failures = dict(self._unrecorded)
        for cid, reason in failures.items():
            try:
                self._db.update_capture(cid, status="failed", error=reason, finished_at=now())
            except Exception as exc:
                log.error("could not record that capture %s failed (%s): %s; trying again with the next "
                          "write", cid, reason, exc)
                return
            with self._pending_lock:
                if self._unrecorded.get(cid) == reason:
                    del self._unrecorded[cid]

    def _superseded(self, capture_id: str) -> None:
        """The capture's state was written since it failed: that failure is no longer to record."""
        with self._pending_lock:
            self._unrecorded.pop(capture_id, None)

    def _row(self, capture_id: str) -> dict:
        return self._as_known(self._db.get_capture(capture_id))

    def _as_known(self, row: dict) -> dict:
        """A capture as stored, or as it will be once its unrecorded failure is written."""
        with self._pending_lock:
            reason = self._unrecorded.get(row["id"])
        return row if reason is None else {**row, "status": "failed", "error": reason}

    def _index(self, row: dict, run: suricata.LiveRun, loaded: suricata.Loaded, warnings: list[str],
               sink: Callable[[Iterator[dict]], int]):
        """Normalise EVE records while Suricata writes them (ingest/pipeline.py) into `sink` (the
        index, or a spool entry); the index commits only once Suricata has finished and read the
        capture (else it rolls back)."""
        s = self.settings
        cid, facts = row["id"], row["summary"] or {}
        acc = pipeline.Accumulator(pipeline.Limits(s.max_string_bytes, s.max_events_per_capture,
                                                   s.max_observables_per_capture))

        def records() -> Iterator[dict]:
            yield from acc.records(run.lines())
            if not run.packets:
                reason = run.errors[0] if run.errors else "no packets were decoded"
                raise AnalysisFailed(f"Suricata could not read the capture: {reason}",
                                     detail=" | ".join(run.output()) or None)

        stored = sink(records())
        assert run.packets is not None  # records() raised, once read to the end, unless Suricata counted packets
        file_rows: dict[str, dict] = {}
        for rec in acc.fileinfo:
            self._keep_file(cid, rec, run.filestore, file_rows, acc.originators.get(rec.get("flow_id")))
        outcome = acc.finish(cid, stored, pipeline.RunFacts(run.packets, facts.get("packets"), tuple(run.errors)),
                             loaded.rules, loaded.rule_class, self._reference_prefixes)
        warnings += outcome.warnings
        summary = {**facts, **outcome.summary.as_dict(), "files": len(file_rows),
                   "suricata": {"version": self._pool.version, "packets_read": run.packets,
                                "seconds": round(run.seconds, 3), "rules": loaded.rule_count,
                                "ruleset": loaded.ruleset}}
        summary["certs"] = len(outcome.certs["certs"])
        return summary, outcome.observables, list(file_rows.values()), stored, outcome.certs

    # nDPI, the second engine (ingest/ndpi/): its failure is a warning, never a failed capture
    def _ndpi_start(self, pcap: Path, warnings: list[str]) -> ndpi.Run | None:
        helpers = self._ndpi_helpers_for(warnings)
        try:
            return helpers.run(pcap) if helpers is not None else None
        except OSError as exc:  # its helper could not be started (EAGAIN, ENOMEM, ...)
            warnings.append(f"nDPI: its helper could not be started: {exc.strerror or exc}")
            return None

    def _ndpi_helpers_for(self, warnings: list[str]) -> ndpi.Helpers | None:
        mode = self.settings.ndpi
        if mode == "off" or (mode == "auto" and not ndpi.available()):
            return None
        if not ndpi.available():
            warnings.append("nDPI: libndpi is not installed (Debian's libndpi4.2; setting ndpi)")
            return None
        try:
            account = suricata.run_as(self.settings)  # it parses the capture too: never as root
        except EngineError as exc:
            warnings.append(f"nDPI: {exc.message}")
            return None
        with self._pool_lock:
            if self._ndpi_helpers is None:
                self._ndpi_helpers = ndpi.Helpers(account, self.settings.engines)
            return self._ndpi_helpers

    def _ndpi_finish(self, cid: str, second: ndpi.Run | None, summary: dict, obs: list[dict],
                     warnings: list[str]) -> list[dict]:
        """nDPI's flows for the ndpi_flows table; its apps and risks join the observables."""
        if second is None:
            return []
        result = second.result()
        if result.error:
            warnings.append(f"nDPI: {result.error}")
        if result.dropped:
            least = "at least " if result.dropped_more else ""
            warnings.append(f"nDPI: {least}{result.dropped:,} flows past the first {ndpi.MAX_FLOWS:,} were not kept")
        summary["ndpi"] = {"version": result.version, "flows": len(result.flows), "seconds": result.seconds}
        found = ndpi.observables(cid, result.flows)
        room = max(0, self.settings.max_observables_per_capture - len(obs))  # the capture's bound holds them too
        if len(found) > room:
            warnings.append(f"nDPI: {len(found) - room:,} of its {len(found):,} apps and risks were not recorded as "
                            "observables (setting max_observables_per_capture)")
        obs += found[:room]
        return result.flows

    def ndpi_overview(self, capture_id: str) -> dict:
        return self._db.ndpi_overview(capture_id)

    def ndpi_of(self, capture_id: str, records: list[dict]) -> list[dict | None]:
        """nDPI's flow for each of these Suricata flow records (five-tuple, nearest start), or None."""
        ports = {p for r in records for p in (r.get("src_port"), r.get("dest_port")) if isinstance(p, int)}
        flows = ndpi.by_tuple(self._db.ndpi_flows_of(capture_id, ports | {0}))
        return [ndpi.nearest(flows, r) for r in records]

    def _keep_file(self, cid: str, rec: dict, filestore: Path, rows: dict[str, dict],
                   originator: tuple[object, object] | None) -> None:
        sha = str((rec.get("fileinfo") or {}).get("sha256", "")).lower()
        src = filestore / sha[:2] / sha if len(sha) == 64 else None
        stored = bool(src and (src.exists() or self._blobs.has("files", sha)))
        if src is not None and src.exists():
            self._blobs.put_move("files", sha, src)
        row = carved.file_row(cid, rec, stored)
        if row:
            carved.merge(rows, row, carved.sighting(cid, rec, originator))

    # read side
    def capture(self, ref: str) -> dict:
        return self._row(self._db.resolve(ref)["id"])

    def rows(self, ids: Iterable[str]) -> dict[str, dict]:
        """Captures by id, as `capture()` gives them."""
        return {cid: self._as_known(row) for cid, row in self._db.captures_in(ids).items()}

    def list_captures(self, status: str | None = None, limit: int = 100, offset: int = 0) -> list[dict]:
        """Captures, newest first."""
        return self._db.list_captures(status, limit, offset)

    def find_captures(self, f: CaptureFilter, limit: int = 50, offset: int = 0) -> CapturePage:
        """One page of the capture list under its filters (listing.py), newest first, with the
        captures' labels."""
        total, rows = self._db.find_captures(f, limit, offset)
        labels = self._db.labels_of(r["id"] for r in rows)
        return CapturePage(total, [{**self._as_known(r), "labels": labels[r["id"]]} for r in rows])

    def count_captures(self, status: str | None = None) -> int:
        return self._db.count_captures(status)

    def top_indicators(self, capture_id: str, per_kind: int = 10) -> dict[str, list[dict]]:
        """A capture's most frequent observables of each kind."""
        return self._db.top_observables(capture_id, per_kind)

    def capture_files(self, capture_id: str) -> list[dict]:
        """The files carved from a capture, as recorded (`stored`: a copy is kept here), each with
        its YARA scan (`yara`: version, error, scanned_at, matches; None: never scanned)."""
        rows = self._db.capture_files(capture_id)
        scans = self._db.yara_of(r["sha256"] for r in rows)
        return carved.with_sightings([{**r, "yara": scans.get(r["sha256"])} for r in rows],
                                     self._db.file_sightings(capture_id))

    def file_context(self, sha256: str) -> dict | None:
        """A carved file across captures (the pivot page of its hash): the captures it was carved
        from (with `stored`), its magic and size, and every name, host, URL, Content-Type and
        direction it was seen under (`seen`); None when no capture holds it."""
        rows = self._db.files_by_hash(sha256.strip().lower())
        return carved.context(rows, self._db.file_sightings(sha256=rows[0]["sha256"], limit=500)) if rows else None

    def carved_file(self, ref: str, sha256: str) -> dict:
        """A file carved from this capture whose copy is kept here (raises NotFound)."""
        cid = self.capture(ref)["id"]
        for row in self._db.capture_files(cid):
            if row["sha256"] == sha256 and row["stored"]:
                return row
        raise NotFound(f"capture {cid[:12]} has no stored file {sha256}")

    def stored_files(self, capture_id: str) -> dict[str, Path]:
        """The kept copies of a capture's carved files, by sha256."""
        paths = {r["sha256"]: self._blobs.path("files", r["sha256"])
                 for r in self._db.capture_files(capture_id) if r["stored"]}
        return {sha: p for sha, p in paths.items() if p.exists()}

    def capture_path(self, capture_id: str) -> Path:
        """Where the capture (decompressed) is stored."""
        return self._blobs.path("captures", capture_id)

    def open_capture(self, capture_id: str) -> BinaryIO:
        """The stored capture, opened for reading (raises NotFound)."""
        return self._blobs.open("captures", capture_id)

    def flow_index(self, capture_id: str, visit: Callable[[float, object], None] | None = None) -> Path:
        """The capture's packet offsets by flow (ingest/flowpackets.py): built at analysis, or now
        for a capture analysed before there was one. By content, like the capture."""
        index = self._blobs.path("flowindex", capture_id)
        if not index.exists():
            tmp = self.settings.work_dir / f"flowindex-{capture_id}-{threading.get_ident()}.sqlite"
            self.settings.work_dir.mkdir(parents=True, exist_ok=True)
            tmp.unlink(missing_ok=True)
            try:
                flowpackets.build_index(self.capture_path(capture_id), tmp, visit)
                self._blobs.put_move("flowindex", capture_id, tmp)
            finally:
                tmp.unlink(missing_ok=True)
        return index

    def _index_flows(self, capture_id: str, nbns: netbios.Names) -> None:
        try:
            if self._blobs.path("flowindex", capture_id).exists():  # analysed before: its names alone
                netbios.scan(self.capture_path(capture_id), nbns)
            else:
                self.flow_index(capture_id, nbns.packet)
        except Exception:  # its flows' packets are indexed on first use instead
            log.warning("capture %s: could not index its packets by flow\n%s", capture_id, traceback.format_exc())

    def flow(self, ref: str, flow: str) -> flows_mod.Flow:
        """Every record of one flow of a capture (`flow`: its flow_id or community id; raises
        QueryError for anything else, NotFound when the capture has no such flow)."""
        cid = self.capture(ref)["id"]
        page = self.capture_events(cid, None, flows_mod.query_for(flow), limit=flows_mod.MAX_EVENTS)
        return flows_mod.assemble(cid, flow, page)

    def flow_pcap(self, flow: flows_mod.Flow) -> Iterator[bytes]:
        """The flow's packets as a capture of the stored capture's own format and link types."""
        key = flow.key
        if key is None:
            raise NotFound(f"flow {flow.ref[:80]} has no five-tuple to find its packets by")
        return flowpackets.cut(self.capture_path(flow.capture_id), self.flow_index(flow.capture_id),
                               [(key, *flow.window)])

    def flows_pcap(self, cap: dict, tab: str | None, text: str) -> tuple[int, bool, Iterator[bytes]]:
        """The packets of the flows of a tab's (or all) events matching a query, as one capture:
        (flows, whether more than MAX_CUT_FLOWS matched, the pieces). Raises QueryError."""
        event_type, scope = _tab_scope(tab, cap["summary"] or {}) if tab else (None, None)
        node = self.parse(text) if text.strip() else None
        node = scope if node is None else node if scope is None else And((node, scope))
        keys: dict[str, None] = {}
        for rec in self._events.export(cap["id"], event_type, node):
            if (key := flowpackets.key_of_record(rec)) is not None:
                keys[key] = None
                if len(keys) > flows_mod.MAX_CUT_FLOWS:
                    break
        chosen = list(keys)[:flows_mod.MAX_CUT_FLOWS]
        return len(chosen), len(keys) > len(chosen), flowpackets.cut(
            self.capture_path(cap["id"]), self.flow_index(cap["id"]), [(k, None, None) for k in chosen])

    def flow_packets(self, flow: flows_mod.Flow, offset: int = 0, limit: int = flows_mod.PACKETS_PAGE,
                     layers: bool = False) -> dict:
        return flows_mod.packet_lines(flow, self.capture_path(flow.capture_id), self.flow_index(flow.capture_id),
                                      offset, limit, layers)

    def flow_payload(self, flow: flows_mod.Flow, offset: int = 0, limit: int = flows_mod.PAYLOAD_PAGE) -> dict:
        return flows_mod.payload(flow, self.capture_path(flow.capture_id), self.flow_index(flow.capture_id),
                                 offset, limit)

    def export_events(self, capture_id: str, event_type: str | None = None, text: str = "") -> Iterator[dict]:
        """A capture's events as stored, in capture order, optionally filtered by a query (parsed
        now: raises QueryError before the first event)."""
        node = self.parse(text) if text.strip() else None
        return self._events.export(capture_id, event_type, node)

    def export_tab(self, cap: dict, tab: str, text: str = "") -> Iterator[dict]:
        """What a console tab lists (`tab_events`), all of it, in capture order: the Malicious
        activity tab's CSV holds the threat alerts only, Strange activity's the protocol-event ones."""
        return self._events.export(cap["id"], *self._tab_query(cap, tab, text))

    def capture_events(self, capture_id: str, event_type: str | None = None, text: str = "",
                       limit: int = 50, offset: int = 0, sort: str | None = None,
                       descending: bool = False, after: int | None = None):
        """One page of a capture's events, filtered by a query (raises QueryError)."""
        node = self.parse(text) if text.strip() else None
        return self._events.events(capture_id, event_type, node, limit=limit, offset=offset, sort=sort,
                                  descending=descending, after=after)

    def tab_events(self, cap: dict, tab: str, text: str = "", limit: int = 50, offset: int = 0,
                   sort: str | None = None, descending: bool = False):
        """One page of a console tab (`tab`: its event type): as `capture_events`, except that the
        protocol-event rules' alerts are Strange activity (anomaly), not Malicious activity (alert)."""
        event_type, node = self._tab_query(cap, tab, text)
        return self._events.events(cap["id"], event_type, node, limit=limit, offset=offset, sort=sort,
                                  descending=descending)

    def _tab_query(self, cap: dict, tab: str, text: str):
        """(event type, node): a tab's scope with its filter (parsed: raises QueryError)."""
        event_type, scope = _tab_scope(tab, cap["summary"] or {})
        node = self.parse(text) if text.strip() else None
        return event_type, scope if node is None else node if scope is None else And((node, scope))

    def tab_counts(self, cap: dict, tab: str, fields: Iterable[str], text: str = "",
                   limit: int = 10) -> list[topvalues.TopValues]:
        """The top values of fields over what a console tab lists with its filter (store/events/topvalues.py)."""
        names = topvalues.checked(fields, limit)
        event_type, node = self._tab_query(cap, tab, text)
        return self._events.top_values(node, names, cap["id"], event_type, limit)

    def search_counts(self, text: str, fields: Iterable[str], limit: int = 10) -> list[topvalues.TopValues]:
        """The top values of fields over the events a search matches, across captures."""
        names = topvalues.checked(fields, limit)
        node = self.parse(text)
        with self._events.one_budget():
            return self._events.top_values(node, names, limit=limit)

    def parse(self, text: str):
        """Query text -> node tree with label fields resolved (raises QueryError)."""
        return labels_mod.resolve(lucene.parse(text), self._capture_fields)

    def indicator(self, text: str) -> indicators.Indicator | None:
        """`text` as one lone indicator (refanged; query/indicators.py), None for a query. A name
        shaped like a domain that no capture holds as one (`invoice.zip`, `app.py`: file names
        under top-level domains) is searched as text."""
        found = indicators.classify(text, indicators.public_suffixes())
        if found is not None and found.kind == "domain" and \
                not any(self._db.value_counts(observables.lookup_forms(found.value)).values()):
            return None
        return found

    def search(self, text: str, limit: int = 50, offset: int = 0, sort: str = "hits") -> SearchResult:
        """Events matching a query, grouped by capture: hits and event types per capture, with the
        capture's name, date and labels. sort: hits (most matching events first), newest, oldest.
        A lone indicator is answered by its pivot (`pivot` says which)."""
        if (found := self.indicator(text)) is not None:
            return self._pivot_search(found, limit, offset, sort)
        node = self.parse(text)
        try:
            with self._events.one_budget():
                result = self._search(node, limit, offset, sort)
        except QueryError:  # the backend refused it (a wildcard on an unknown field): say what is unknown
            _known_fields(text, node, True)
            raise
        _known_fields(text, node, result.total_captures == 0)
        return result

    def _pivot_search(self, found: indicators.Indicator, limit: int, offset: int, sort: str) -> SearchResult:
        pivot = correlate.pivot(self._db, self._events, found.value, co=False)
        out = pivotsearch.groups(pivot, sort)
        page = out[offset:offset + limit]
        intel = self._db.intel_feeds_of(g["capture_id"] for g in page)
        for g in page:
            g["intel"] = intel.get(g["capture_id"], [])
        return SearchResult(len(out), sum(g["hits"] for g in out), page, pivot["truncated"], found)

    def _search(self, node, limit: int, offset: int, sort: str) -> SearchResult:
        groups = self._events.hits_by_capture(node, size=MAX_GROUPS + 1)
        truncated = len(groups) > MAX_GROUPS
        groups = groups[:MAX_GROUPS]
        out: list[dict] = [{"capture_id": cid, "hits": n} for cid, n in groups]
        if sort in ("newest", "oldest"):
            dates = self._db.submitted(cid for cid, _ in groups)
            out.sort(key=lambda g: dates.get(g["capture_id"]) or dt.datetime.min, reverse=sort == "newest")
        elif sort != "hits":
            raise QueryError(f"sort must be hits, newest or oldest, not {sort[:20]!r}")
        page = out[offset:offset + limit]
        # the details (event types, names, dates, labels) only for the page shown
        ids = [g["capture_id"] for g in page]
        found = {h.capture: h.found_in for h in self._events.search_by_capture(
            And((node, Captures(frozenset(ids)))), size=len(ids))} if ids else {}
        rows = self._db.captures_in(ids)
        labels = self._db.labels_of(ids)
        intel = self._db.intel_feeds_of(ids)
        for g in page:
            row = rows.get(g["capture_id"], {})
            g.update(found_in=found.get(g["capture_id"], {}), name=row.get("name"),
                     submitted_at=row.get("submitted_at"), labels=labels.get(g["capture_id"], []),
                     intel=intel.get(g["capture_id"], []))
        return SearchResult(len(out), sum(g["hits"] for g in out), page, truncated)

    def search_events(self, text: str, limit: int = 50, offset: int = 0):
        """The matching events themselves, best first, across all captures."""
        node = self.parse(text)
        try:
            page = self._events.search(node, limit, offset)
        except QueryError:
            _known_fields(text, node, True)
            raise
        _known_fields(text, node, page.total == 0)
        return page

    def export_search(self, text: str, limit: int) -> Iterator[dict]:
        """The events matching a query, best first, at most `limit`, a page at a time (parsed now:
        raises QueryError before the first event)."""
        node = self.parse(text)

        def pages() -> Iterator[dict]:
            offset = 0
            while offset < limit:
                page = self._events.search(node, min(EXPORT_PAGE, limit - offset), offset)
                yield from page.events
                offset += len(page.events)
                if not page.events or offset >= page.total:
                    return
        return pages()

    def ioc(self, value: str, co_occurring: bool = True) -> dict:
        """A pivot (query/correlate.py), with the YARA scans of the carved files it names (`yara`)
        and those files' context (`files`: file_context)."""
        value = indicators.pivot_value(value)  # a defanged indicator: refanged
        found = correlate.pivot(self._db, self._events, value, co=co_occurring)
        shas = self._db.file_hashes(value)
        scans = self._db.yara_of(shas)
        return found | {"yara": [{"sha256": sha, **scan} for sha, scan in sorted(scans.items())],
                        "files": [f for f in map(self.file_context, shas[:3]) if f],
                        "geo": self._locate_one((found["matched"] or [value.strip()])[0])
                        if found.get("kind") == "ip" else None,
                        "intel": self.intel_for(value)}

    # certificates (ingest/certs.py) and NetBIOS names (ingest/netbios.py)
    def capture_certs(self, capture_id: str, flow_ids: Iterable[str] | None = None) -> list[dict]:
        """The certificates of a capture's chains (or of some flows'), each with where it was seen."""
        seen = self._db.chains_of(capture_id, flow_ids)
        return certs.with_sightings(self._db.certs_of(capture_id), seen, only_seen=flow_ids is not None)

    def _cert_matched(self, column: str, value: str, like: bool) -> set[str]:
        """Fingerprints and serials compared without their colons (a serial also without case or
        leading zeros, unless it is a pattern)."""
        if column == "serial_key" and not like:
            value = certs.serial_key(value)
        elif column in ("sha1", "sha256", "serial_key"):
            value = value.replace(":", "")
        return self._db.cert_matched(column, value, like)

    def netbios_names(self, capture_id: str) -> list[dict]:
        return [r | {"label": netbios.label(r["name"], r["suffix"])} for r in self._db.netbios_of(capture_id)]

    # addresses: country and AS (ingest/geo.py)
    def _locate(self, results: list[dict]) -> None:
        """ip_geo rows for the analysed captures' IP values that have none yet. Best effort: a
        capture is never failed for it (without the data, its IPs are shown without country)."""
        if self._geo is None:
            return
        try:
            values = self._db.without_geo(o["value"] for r in results for o in r["observables"] if o["kind"] == "ip")
            self._db.add_geo(self._geo.lookup_many(values))
        except Exception as exc:
            log.warning("no country and AS for the addresses of %d captures: %s", len(results), exc)

    def geo_of(self, values: Iterable[str]) -> dict[str, dict]:
        """value -> its stored country (and its name), AS and range, in one query."""
        return {v: r | {"country_name": geo.country_name(r["country"])} for v, r in self._db.geo_of(values).items()}

    def _locate_one(self, value: str) -> dict | None:
        found = self.geo_of([value]).get(value)
        if found is None and self._geo is not None:
            try:
                g = self._geo.lookup(value)
            except geo.GeoDataMissing as exc:
                log.warning("%s", exc)
                return None
            found = None if g is None else g.row(value) | {"country_name": geo.country_name(g.country)}
        return found

    def _asn(self, value: str, like: bool) -> set[str]:
        return self._db.geo_asn(geo.as_number(value), like)

    def _geo_range(self, value: str, like: bool) -> set[str]:
        return self._db.geo_range(value if like else geo.range_value(value), like)

    def bulk_ioc(self, values: list[str]) -> list[dict]:
        """Each value refanged first; `input` is the value as typed."""
        typed: dict[str, str] = {}
        for v in values:
            typed.setdefault(indicators.refang(v.strip()), v.strip())
        return [r | {"input": typed[r["value"]]} for r in correlate.bulk(self._db, list(typed))]

    def similar(self, ref: str, limit: int = 20) -> list[dict]:
        cid = self.capture(ref)["id"]
        found = correlate.similar(self._db, cid, limit)
        rows = self._db.captures_in(s.capture_id for s in found)
        labels = self._db.labels_of(s.capture_id for s in found)
        return [{"capture_id": s.capture_id, "name": rows[s.capture_id]["name"], "score": s.score,
                 "submitted_at": rows[s.capture_id]["submitted_at"], "shared": s.shared,
                 "labels": labels[s.capture_id]} for s in found]

    def delete_capture(self, ref: str, who: Principal, held: frozenset[str], address: str | None = None) -> dict:
        """Delete a capture and everything of it: marked `deleting`, its events deleted with an
        index commit, then its rows (store/purge.py), its file, flow index and the carved files no
        other capture holds; audited. Raises Forbidden (not its owner nor an admin), Conflict
        (queued or being analysed: refused, not cancelled), IndexBusy (another process holds the
        index: nothing is deleted). Cut short, it is finished at the next start."""
        cap = self.capture(ref)
        if not ownership.may_delete(who, held, self.uploads_of(cap["id"])):
            raise Forbidden("only the capture's owner or an admin may delete it")
        cid = cap["id"]
        self._events.claim()
        row = purge.mark_deleting(self._db, cid)
        self._events.hide([cid])
        self._events.delete_captures([cid])
        self._events.commit()
        files_gone = self._purge(cid)
        self.accounts.record("capture_deleted", ownership.actor_of(who), cid, address,
                             {"name": row["name"][:200], "size": row["size"], "files_removed": files_gone})
        return row

    def _purge(self, cid: str) -> int:
        """The rows and blobs of a capture marked `deleting` whose events are gone; how many
        carved files went with it."""
        files_gone = purge.purge_capture(self._db, cid)
        if files_gone is None:
            return 0
        for kind in ("captures", "flowindex"):
            self._blobs.remove(kind, cid)
        for sha in files_gone:
            self._blobs.remove("files", sha)
        return len(files_gone)

    def _finish_deletions(self) -> None:
        """Deletions cut short: their events were deleted by _clean_index (or never committed)."""
        for cid in purge.marked(self._db):
            if not self._events.documents([cid]):
                self._purge(cid)
                self.accounts.record("capture_deleted", "restart", cid, detail={"finished": True})

    # re-analysis
    def reanalyse(self, ref: str) -> Reanalysis:
        """Queue a stored capture to be analysed again with the engines' current rules: its events,
        observables and files are replaced once it is done, its labels stay. A capture queued or
        running already is left to its job (which runs with the current rules anyway)."""
        cid = self.capture(ref)["id"]
        queued = bool(self._requeued(self._db.requeue([cid])))
        return Reanalysis(self._row(cid), queued)

    def reanalyse_matching(self, text: str | None) -> list[str]:
        """Queue again the captures with events matching a query (None: every capture), largest
        first; the ids queued. Raises QueryError for a bad query or one matching too many."""
        if text is None:
            return self._requeued(self._db.requeue(None))
        node = self.parse(text)
        with self._events.one_budget():
            groups = self._events.hits_by_capture(node, size=MAX_GROUPS + 1)
        if len(groups) > MAX_GROUPS:
            raise QueryError(f"the query matches more than {MAX_GROUPS:,} captures: narrow it, or re-analyse all")
        return self._requeued(self._db.requeue(cid for cid, _ in groups))

    def _requeued(self, ids: list[str]) -> list[str]:
        for cid in ids:
            self._superseded(cid)
        return ids

    # YARA on carved files
    def _yara_changed(self, rules: yarascan.RuleSet) -> None:
        log.info("YARA rules %s: %d rules from %d files", rules.version[:16], rules.count, len(rules.files))
        if self.on_yara_change is not None:
            self.on_yara_change()

    def yara_rules(self) -> yarascan.RuleSet | None:
        """The YARA rules in use (the folder checked for changes first); None: none configured
        or none compiled yet."""
        return self._yara.current if self._yara else None

    def _scan_files(self, shas: list[str], skip_current: bool = False,
                    progress: Callable[[int, int], None] | None = None) -> list[dict]:
        """Scan these stored carved files with the current rules and record the results; with
        skip_current, not those scanned by these rules already. The scans recorded."""
        rules = self.yara_rules()
        if rules is None or not shas:
            return []
        if skip_current:
            known = self._db.yara_of(shas)
            shas = [sha for sha in shas if (known.get(sha) or {}).get("version") != rules.version]
        s, done, batch = self.settings, [], []
        for i, sha in enumerate(shas, 1):
            try:
                found = yarascan.scan(rules, self._blobs.path("files", sha), s.yara_timeout, s.yara_max_bytes)
            except OSError as exc:
                found = yarascan.Scan([], f"could not read the stored file: {exc.strerror or exc}")
            batch.append({"sha256": sha, "version": rules.version, "error": found.error, "matches": found.matches})
            if len(batch) == YARA_BATCH or i == len(shas):
                self._db.record_yara(batch)
                done += batch
                batch = []
            if progress:
                progress(i, len(shas))
        return done

    def yara_rescan(self, stale_only: bool = False, progress: Callable[[int, int], None] | None = None) -> dict:
        """Scan every stored carved file again with the current YARA rules (stale_only: those not
        scanned by them yet), replacing their old matches; no re-analysis. Raises YaraError when
        there are no rules to scan with."""
        rules = self.yara_rules()
        if rules is None:
            raise YaraError(self._yara.error if self._yara and self._yara.error
                            else "no YARA rules: set yara_rules_dir to a folder of *.yar files")
        started = dt.datetime.now(dt.UTC)
        shas = self._db.stored_file_hashes(rules.version if stale_only else None)
        scans = self._scan_files(shas, progress=progress)
        return {"version": rules.version, "rules": rules.count, "files": len(scans),
                "matched": sum(1 for x in scans if x["matches"]),
                "matches": sum(len(x["matches"]) for x in scans),
                "errors": sum(1 for x in scans if x["error"]),
                "seconds": round((dt.datetime.now(dt.UTC) - started).total_seconds(), 3),
                "error": self._yara.error if self._yara else None}

    def yara_status(self) -> dict:
        """The rules folder, the rules in use (version, rule count, files), the last refusal, and
        how many stored carved files their scans are current for."""
        rules = self.yara_rules()
        stored = len(self._db.stored_file_hashes())
        return {"folder": str(self.settings.yara_rules_dir) if self.settings.yara_rules_dir else None,
                "version": rules.version if rules else None, "rules": rules.count if rules else 0,
                "files": list(rules.files) if rules else [], "error": self._yara.error if self._yara else None,
                "stored_files": stored,
                "stale_files": len(self._db.stored_file_hashes(rules.version)) if rules else stored}

    # labels
    def add_label(self, ref: str, kind: str, value: str, note: str | None = None,
                  source: str = "api", author: str | None = None) -> dict:
        if self.settings.labelling != "anyone":
            raise Forbidden("labels are read-only on this instance (setting labelling)")
        if kind not in catalog.LABEL_KINDS:
            raise QueryError(f"a label's kind is one of {', '.join(catalog.LABEL_KINDS)}, not {kind[:20]!r}")
        value = " ".join(value.split())
        if not value or len(value) > 100 or not value.isprintable():
            raise QueryError("a label is 1 to 100 printable characters")
        note = (note or "").strip()[:1000] or None
        cid = self.capture(ref)["id"]
        return self._db.add_label({"capture_id": cid, "kind": kind, "value": value, "note": note,
                                  "author": author or visibility.identity(self.viewer), "source": source})

    def remove_label(self, ref: str, label_id: int) -> None:
        """An analyst removes only their own labels, an admin any (auth/visibility.py)."""
        if self.settings.labelling != "anyone":
            raise Forbidden("labels are read-only on this instance (setting labelling)")
        cid = self.capture(ref)["id"]
        label = next((lb for lb in self._db.labels_of([cid])[cid] if lb["id"] == label_id), None)
        if label is None:
            raise NotFound(f"capture {cid[:12]} has no label {label_id}")
        if not visibility.may_remove_label(label, self.viewer, self.settings.mode):
            raise Forbidden("only the label's author or an admin removes it")
        self._db.delete_label(cid, label_id)

    # who may read a capture (auth/visibility.py)
    def uploads_of(self, capture_id: str) -> list[dict]:
        return self._db.uploads_in([capture_id])[capture_id]

    def capture_visibility(self, ref: str) -> dict:
        """The viewer's upload of a capture (owner, visibility, share_with), else its first one
        the viewer may see; None for both when it has no upload row (public)."""
        cid = self.capture(ref)["id"]
        rows = self._db.uploads_in([cid])[cid]
        me = visibility.identity(self.viewer)
        groups = self.accounts.groups_of(self.viewer.name if self.viewer else None)
        mine = [r for r in rows if me is not None and r["owner"] == me]
        seen = mine or [r for r in rows if visibility.row_visible(r, me, groups)] or rows
        row = seen[0] if seen else {"owner": None, "visibility": visibility.PUBLIC, "share_with": []}
        return {"capture_id": cid, "owner": row["owner"], "visibility": row["visibility"],
                "share_with": row["share_with"] or []}

    def set_visibility(self, ref: str, level: str, share_with: Iterable[str] = ()) -> dict:
        """The owner (their upload) or an admin (every upload of it) changes who may read a
        capture; raises Forbidden, QueryError. Audited."""
        names = visibility.check_change(level, share_with)
        cid = self.capture(ref)["id"]
        rows = self._db.uploads_in([cid])[cid] or [self._db.record_upload(cid, None, visibility.PUBLIC)]
        for row in visibility.uploads_to_change(rows, self.viewer, self.settings.mode):
            self._db.set_visibility(row["id"], level, names)
        self.accounts.record("visibility_changed", visibility.identity(self.viewer) or "local", cid,
                             detail={"visibility": level, "share_with": names})
        return self.capture_visibility(cid)

    def labels(self, ref: str) -> list[dict]:
        cid = self.capture(ref)["id"]
        return self._db.labels_of([cid])[cid]

    # hunting: a hunt's own rules run over stored captures in a daemon of its own; the captures'
    # events, summary and ruleset stay as their analysis left them
    def new_hunt(self, rules: str, query: str | None = None, name: str | None = None) -> dict:
        """Check a hunt (its rules alone with `suricata -T`, its query) and record it `queued`:
        `run_hunt` runs it. Raises RulesRefused (with Suricata's own lines) or QueryError, storing
        nothing."""
        parsed = hunts.parse_rules(rules)
        query = (query or "").strip() or None
        if query is not None:
            self.parse(query)
        work = self.settings.work_dir / "hunts"
        work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=work, prefix="check-") as tmp:
            said = suricata.check_hunt_rules(self.settings, [r.text for r in parsed], Path(tmp))
        if said:
            raise RulesRefused("Suricata refused the hunt's rules: " + " | ".join(said))
        name = suricata.bounded(" ".join((name or "").split()))[:200] or parsed[0].msg[:200]
        return self._db.insert_hunt({"name": name, "query": query, "rules": [r.as_dict() for r in parsed],
                                     "status": "queued", "done": 0, "created_at": now()})

    def run_hunt(self, hunt_id: int, progress: Callable[[int, int], None] | None = None,
                 stopping: Callable[[], bool] = lambda: False) -> dict:
        """Run a hunt in this thread: a fresh daemon with only its rules (started here, stopped at
        the end) reads every capture done, or those its query matches. A capture it cannot read
        is recorded with the reason and the hunt goes on. When `stopping()` turns true the hunt is
        left `queued` (run again, it starts over). Raises NotFound; a hunt deleted meanwhile stops."""
        hunt = self._db.get_hunt(hunt_id)
        try:
            targets = self._db.done_captures() if hunt["query"] is None else self._matching(hunt["query"])
        except QueryError as exc:
            self._db.update_hunt(hunt_id, status="failed", error=exc.message, finished_at=now())
            return self.hunt(hunt_id)
        if not self._db.start_hunt(hunt_id, len(targets)):
            raise NotFound(f"no hunt {hunt_id}")
        names = self._db.capture_names(targets)
        outcome: dict = {"status": "done"}
        try:
            with suricata.hunt_engine(self.settings, [r["text"] for r in hunt["rules"]],
                                      self.settings.work_dir / "hunts" / str(hunt_id)) as engine:
                for n, cid in enumerate(targets, 1):
                    if stopping():
                        outcome = {"status": "queued"}
                        break
                    if not self._db.record_hunt_capture(hunt_id, n, self._hunt_one(engine, cid, names.get(cid))):
                        raise NotFound(f"hunt {hunt_id} was deleted while it ran")
                    if progress:
                        progress(n, len(targets))
        except EngineError as exc:
            outcome = {"status": "failed", "error": f"the hunt's Suricata could not run: {exc.message}"}
        except NotFound:
            raise
        except Exception as exc:  # a bug (or a full disk) fails the hunt, not the service
            log.error("hunt %s: internal error\n%s", hunt_id, traceback.format_exc())
            outcome = {"status": "failed", "error": f"internal error: {type(exc).__name__}: {str(exc)[:300]}"}
        self._db.update_hunt(hunt_id, finished_at=None if outcome["status"] == "queued" else now(), **outcome)
        return self.hunt(hunt_id)

    def _matching(self, text: str) -> list[str]:
        """The captures with an event matching a query (at most MAX_GROUPS; raises QueryError)."""
        node = self.parse(text)
        with self._events.one_budget():
            groups = self._events.hits_by_capture(node, size=MAX_GROUPS + 1)
        if len(groups) > MAX_GROUPS:
            raise QueryError(f"the query matches more than {MAX_GROUPS:,} captures: narrow it")
        return [cid for cid, _ in groups]

    def _hunt_one(self, engine: suricata.Engine, cid: str, name: str | None) -> dict | None:
        """One capture through a hunt's daemon: its hits, its failure, or None (no alert)."""
        try:
            with engine.analyze(self._blobs.path("captures", cid), name=name) as run:
                found = hunts.collect(run.lines())
        except (AnalysisFailed, EngineError) as exc:
            return {"capture_id": cid, "alerts": 0, "by_sid": {}, "events": [], "error": exc.message}
        if not run.packets:
            reason = run.errors[0] if run.errors else "no packets were decoded"
            return {"capture_id": cid, "alerts": 0, "by_sid": {}, "events": [],
                    "error": f"Suricata could not read the capture: {reason}"}
        if not found.alerts:
            return None
        return {"capture_id": cid, "alerts": found.alerts, "by_sid": found.by_sid, "events": found.events,
                "error": None}

    def hunt(self, hunt_id: int, limit: int = 100, offset: int = 0) -> dict:
        """A hunt: status and progress, its rules with the alerts and captures each fired on, and
        one page of its captures (most alerts first; those it could not read last) with their
        alerts (at most hunts.MAX_EVENTS each) and names."""
        row = self._db.get_hunt(hunt_id)
        totals = self._db.hunt_totals(hunt_id)
        row["rules"] = [{**r, "alerts": sum(t["by_sid"].get(str(r["sid"]), 0) for t in totals),
                         "captures": sum(1 for t in totals if str(r["sid"]) in t["by_sid"])} for r in row["rules"]]
        row["hit_captures"] = sum(1 for t in totals if t["alerts"])
        row["failed_captures"] = sum(1 for t in totals if t["error"])
        page = self._db.hunt_hits(hunt_id, limit, offset)
        names = self._db.capture_names(h["capture_id"] for h in page)
        row["captures"] = [{**h, "name": names.get(h["capture_id"])} for h in page]
        return row

    def list_hunts(self, limit: int = 100, offset: int = 0) -> list[dict]:
        """Hunts, newest first (rules and status, with `hit_captures`; no captures)."""
        return self._db.list_hunts(limit, offset)

    def delete_hunt(self, hunt_id: int) -> None:
        """Delete a hunt and its hits (a running one stops after its current capture)."""
        self._db.delete_hunt(hunt_id)

    def unfinished_hunts(self) -> list[int]:
        """Hunts queued, or left running by a process that stopped: to run (again)."""
        return self._db.hunts_in(("queued", "running"))

    def capture_hunts(self, capture_id: str) -> list[dict]:
        """The newest hunts whose rules fired on a capture: id, name, alerts, and each rule that
        fired with its msg and count (the console's Hunts panel)."""
        out = []
        for h in self._db.capture_hunts(capture_id):
            fired = [{"sid": r["sid"], "msg": r["msg"], "alerts": h["by_sid"][str(r["sid"])]}
                     for r in h["rules"] if str(r["sid"]) in h["by_sid"]]
            out.append({"id": h["id"], "name": h["name"], "alerts": h["alerts"], "rules": fired})
        return out

    # IOC feeds (ingest/intel.py)
    def _match_intel(self, ids: list[str]) -> None:
        """New captures against the feeds, once they are done; a failure is logged (the next
        import of a feed retro-hunts them)."""
        try:
            self._db.match_intel(ids)
        except Exception as exc:
            log.error("could not match %d captures against the IOC feeds: %s", len(ids), _store_error(exc))

    def add_feed(self, source: str, name: str | None = None, fmt: str | None = None) -> dict:
        """Import a feed from a file, or from an http(s) URL (fetched only then)."""
        s = self.settings
        data = intel.load(source, s.intel_max_bytes, s.intel_fetch_timeout)
        return self.import_feed(data, name or intel.default_name(source), fmt, source)

    def import_feed(self, data: bytes, name: str, fmt: str | None, origin: str) -> dict:
        """A feed's indicators replace those of the feed `name`, and retro-hunt every stored
        capture (raises IntelError, the feed unchanged then)."""
        if len(data) > self.settings.intel_max_bytes:
            raise IntelError(f"the feed is over the limit of {validate.human_size(self.settings.intel_max_bytes)} "
                             "(setting intel_max_bytes)")
        if fmt is not None and fmt not in intel.FORMATS:
            raise IntelError(f"format must be one of {', '.join(intel.FORMATS)}, not {fmt[:20]!r}")
        feed = intel.parse(data, fmt)
        if not feed.indicators:
            why = "; ".join(f"{n} {reason}" for reason, n in feed.skipped.items())
            raise IntelError("the feed holds no indicator PacketTotal can match"
                             + (f" (skipped: {why})" if why else ""))
        rows = [dataclasses.asdict(i) for i in feed.indicators]
        return self._db.replace_feed(intel.check_name(name), feed.format, origin[:2048], dict(feed.skipped), rows)

    def list_feeds(self) -> list[dict]:
        return self._db.list_feeds()

    def remove_feed(self, name: str) -> None:
        self._db.delete_feed(name)

    def capture_intel(self, capture_id: str) -> list[dict]:
        """A capture's indicators (the Intelligence tab): each with its feed, confidence,
        description, whether it has expired, and where it was seen (field, count)."""
        out: dict[int, dict] = {}
        at = now()
        for r in self._db.capture_intel(capture_id):
            hit = out.get(r["id"])
            if hit is None:
                hit = out[r["id"]] = {k: r[k] for k in ("kind", "value", "feed", "source", "confidence",
                                                        "description", "expires", "imported_at")}
                hit |= {"expired": r["expires"] is not None and r["expires"] <= at, "count": 0, "fields": []}
            hit["fields"].append({"field": r["field"], "count": r["count"]})
            hit["count"] += r["count"]
        return list(out.values())

    def export_intel(self, ref: str, fmt: str) -> str:
        """A capture's indicators and alerts as a STIX 2.1 bundle (fmt stix) or a MISP event (misp), JSON."""
        cap = self.capture(ref)
        if cap["status"] != "done":
            raise NotFound(f"capture {cap['id'][:12]} is {cap['status']}: nothing to export yet")
        from . import intel_export  # stix2 costs ~0.5 s to import: only when exporting
        hits = self.capture_intel(cap["id"])
        if fmt == "stix":
            return intel_export.stix_bundle(cap, hits)
        if fmt == "misp":
            return json.dumps(intel_export.misp_event(cap, hits), indent=1)
        raise QueryError(f"format must be stix or misp, not {fmt[:20]!r}")

    def intel_for(self, value: str) -> list[dict]:
        """The feeds' indicators a pasted value is (the pivot page's badges)."""
        at = now()
        return [{k: r[k] for k in ("feed", "kind", "value", "source", "confidence", "description", "expires")}
                | {"expired": r["expires"] is not None and r["expires"] <= at}
                for r in self._db.indicators_of(observables.lookup_forms(value))]

    # moving the instance into other stores (store/migrate.py)
    def migrate(self, to_database: str, to_events: str, to_blobs: Path, batch: int = 5000,
                progress: Callable[[str], None] | None = None) -> migrate_mod.Summary:
        """Copy this instance's rows, events and blobs into empty stores (or resume a copy that
        stopped), then check them. The event index's writer is held meanwhile: no other process
        (a `serve`, workers) writes to the instance while it is copied (raises IndexBusy)."""
        self._events.claim()
        s = self.settings
        source = migrate_mod.Ends(self._db, self._events, s.blob_dir,
                                  s.events_url if s.events_backend == "opensearch" else str(s.index_dir))
        target = migrate_mod.open_ends(to_database, to_events, to_blobs)
        try:
            return migrate_mod.Migration(source, target, batch, progress).run()
        finally:
            target.close()


@dataclass
class _Indexed:
    row: dict       # what the database records once the capture is committed
    documents: int  # how many documents the event index must then hold for it


def _tab_scope(tab: str, summary: dict):
    """(event type, node): what of a capture's index a console tab lists."""
    sids = (summary.get("threats") or {}).get("protocol_sids") or []
    if tab not in ("alert", "anomaly") or not sids:
        return tab, None
    protocol = Or(tuple(Term("alert.signature_id", str(s)) for s in sids))
    if tab == "alert":
        return "alert", Not(protocol)
    return None, Or((Term("event_type", "anomaly"), And((Term("event_type", "alert"), protocol))))


def _store_error(exc: Exception) -> str:
    if disk_full(exc):
        return f"{NO_SPACE} (analyse it again once space has been freed)"
    return f"{type(exc).__name__}: {str(exc)[:300]}"


@dataclass
class CapturePage:
    total: int  # captures matching the filters
    rows: list[dict]


@dataclass
class SearchResult:
    total_captures: int
    total_hits: int
    groups: list[dict]
    truncated: bool  # more captures matched than MAX_GROUPS
    pivot: indicators.Indicator | None = None  # the query was this lone indicator: groups are its pivot's


def _known_fields(text: str, node, empty: bool) -> None:
    """An empty answer to a query naming an unknown field is a QueryError naming the known fields
    nearest to it (query/suggest.py), not a silent nothing."""
    if empty and (unknown := suggest.first_unknown(node)) is not None:
        name, near = unknown
        at = re.search(rf"(?<![\w.]){re.escape(name)}\s*:", text)
        raise QueryError(suggest.message(name, near), position=at.start() if at else None,
                         expected="a field of the field list", field=name, suggestions=near)


def capture_facts(info: capfile.CaptureInfo, description: str) -> dict:
    duration = (info.last_ts - info.first_ts) if info.first_ts is not None and info.last_ts is not None else None
    return {
        "format": info.format, "description": description[:200], "packets": info.packets,
        "bytes": info.bytes, "first_ts": _iso(info.first_ts), "last_ts": _iso(info.last_ts),
        "duration": round(duration, 6) if duration is not None else None,
        "linktypes": {capfile.linktype_name(k): v for k, v in info.linktypes.items()},
        "snaplen": info.snaplen,
    }


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    try:
        return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None


def _display_name(name: str) -> str:
    """A capture's name is shown, never used as a path: keep it printable and short."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in name.replace("\\", "/").split("/")[-1])
    return cleaned[:255] or "capture"


def _upload_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
