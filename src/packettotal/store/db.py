"""Relational metadata: captures, their observables and carved files. SQLAlchemy Core, so the same
schema runs on SQLite (embedded default, WAL) and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect

from ..errors import NotFound

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql

    from ..listing import CaptureFilter

IN_CHUNK = 500  # values per IN (...) list: far below every database's bound-parameter limit
T = TypeVar("T")


def chunks(items: Iterable, size: int = IN_CHUNK) -> Iterator[list]:
    items = list(items)
    for i in range(0, len(items), size):
        yield items[i:i + size]


metadata = sa.MetaData()

captures = sa.Table(
    "captures", metadata,
    sa.Column("id", sa.String(64), primary_key=True),           # sha256 of the capture
    sa.Column("md5", sa.String(32), nullable=False, index=True),
    sa.Column("sha1", sa.String(40), nullable=False, index=True),
    sa.Column("upload_sha256", sa.String(64), index=True),      # of the compressed upload, if any
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("compression", sa.String(16)),
    sa.Column("status", sa.String(16), nullable=False, index=True),  # queued|running|indexing|done|failed
    sa.Column("error", sa.Text),
    sa.Column("warnings", sa.JSON, nullable=False, default=list),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("submitted_at", sa.DateTime, nullable=False),
    sa.Column("started_at", sa.DateTime),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("summary", sa.JSON),
    # the capture list (store/listing.py): newest first, by status, by date, by name
    sa.Index("ix_captures_submitted", "submitted_at"),
    sa.Index("ix_captures_status_submitted", "status", "submitted_at"),
    sa.Index("ix_captures_finished", "finished_at"),
    sa.Index("ix_captures_name", "name"),  # name filters scan it, not the table (rows hold summaries)
)

# what the capture list filters on that is inside a capture's summary: written with its results
capture_stats = sa.Table(
    "capture_stats", metadata,
    sa.Column("capture_id", sa.String(64), sa.ForeignKey("captures.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("alerts", sa.Integer, nullable=False),  # summary.alerts: the threat rules' alerts
    sqlite_with_rowid=False,  # a capture's row is found in one b-tree (the list probes it per capture)
)

observables = sa.Table(
    "observables", metadata,
    sa.Column("capture_id", sa.String(64), sa.ForeignKey("captures.id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("field", sa.String(64), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Column("first_seen", sa.String(40)),
    sa.Column("last_seen", sa.String(40)),
    sa.PrimaryKeyConstraint("capture_id", "kind", "value", "field"),
    sa.Index("ix_observables_value_capture", "value", "capture_id"),  # covers "who holds it"
)

# how many captures hold each value (document frequency), kept up to date by finish_captures:
# rarity weights, pivot totals and co-occurrence never count over the observables table
value_counts = sa.Table(
    "value_counts", metadata,
    sa.Column("value", sa.Text, primary_key=True),
    sa.Column("captures", sa.Integer, nullable=False),
)

files = sa.Table(
    "files", metadata,
    sa.Column("capture_id", sa.String(64), sa.ForeignKey("captures.id", ondelete="CASCADE"), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("md5", sa.String(32)),
    sa.Column("sha1", sa.String(40)),
    sa.Column("filename", sa.Text),
    sa.Column("magic", sa.Text),
    sa.Column("size", sa.BigInteger),
    sa.Column("state", sa.String(16)),
    sa.Column("stored", sa.Boolean, nullable=False),
    sa.Column("truncated", sa.Boolean, nullable=False),
    sa.Column("app_proto", sa.String(24)),
    sa.PrimaryKeyConstraint("capture_id", "sha256"),
    sa.Index("ix_files_sha256", "sha256"),
)

# where each carved file was seen in a capture (ingest/files.py: at most MAX_SIGHTINGS a file): its
# name, and over HTTP the host, URL and Content-Type; the direction it went
file_seen = sa.Table(
    "file_seen", metadata,
    sa.Column("capture_id", sa.String(64), sa.ForeignKey("captures.id", ondelete="CASCADE"), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("filename", sa.Text),
    sa.Column("host", sa.Text),
    sa.Column("url", sa.Text),
    sa.Column("content_type", sa.Text),
    sa.Column("direction", sa.String(16)),  # to_server | to_client | None (flow not seen)
    sa.Column("app_proto", sa.String(24)),
    sa.Column("flow_id", sa.BigInteger),
    sa.Column("timestamp", sa.String(40)),
    sa.Index("ix_file_seen_sha256", "sha256", "capture_id"),
    sa.Index("ix_file_seen_capture", "capture_id"),
)

# the detectors' findings of each capture (ingest/findings.py), as `finding:` searches them; the
# findings themselves, with their evidence, are in the capture's summary
findings = sa.Table(
    "findings", metadata,
    sa.Column("capture_id", sa.String(64), sa.ForeignKey("captures.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(32), nullable=False),
    sa.Column("severity", sa.String(8), nullable=False),
    sa.Column("key", sa.Text, nullable=False),
    sa.Index("ix_findings_name", "name", "capture_id"),
    sa.Index("ix_findings_capture", "capture_id"),
)

# YARA on carved files, by content (a file carved from several captures is scanned once per rules
# version): the scan of each file, and one row per matching rule
yara_scans = sa.Table(
    "yara_scans", metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("version", sa.String(64), nullable=False),  # of the rules that scanned it (their content hash)
    sa.Column("error", sa.Text),                          # not scanned (too large), timed out, ...
    sa.Column("scanned_at", sa.DateTime, nullable=False),
)

yara_matches = sa.Table(
    "yara_matches", metadata,
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("namespace", sa.String(200), nullable=False),  # the rule file
    sa.Column("rule", sa.String(200), nullable=False),
    sa.Column("rule_lower", sa.String(200), nullable=False),  # what searches compare
    sa.Column("detail", sa.JSON, nullable=False),             # tags, meta, strings (ingest/yarascan.py)
    sa.PrimaryKeyConstraint("sha256", "namespace", "rule"),
    sa.Index("ix_yara_matches_rule", "rule_lower"),
)

labels = sa.Table(
    "labels", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("capture_id", sa.String(64), sa.ForeignKey("captures.id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),       # tag | family | campaign | actor
    sa.Column("value", sa.String(200), nullable=False),
    sa.Column("value_lower", sa.String(200), nullable=False),  # what searches compare
    sa.Column("note", sa.Text),
    sa.Column("author", sa.String(200)),                     # None until accounts exist
    sa.Column("source", sa.String(16), nullable=False),      # web | api | cli
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Index("ix_labels_capture", "capture_id"),
    sa.Index("ix_labels_value", "value_lower", "kind"),
)
# one label per capture, kind, value and author (a label another user holds is theirs, their note
# included); NULL authors (single mode, the CLI) are one author: coalesced, so either dialect
sa.Index("uq_labels_author", labels.c.capture_id, labels.c.kind, labels.c.value_lower,
         sa.func.coalesce(labels.c.author, ""), unique=True)

# who uploaded each capture and who may read it (auth/visibility.py): one row per upload, since a
# file stored once may be uploaded by several users; a capture without any row is public
uploads = sa.Table(
    "uploads", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("capture_id", sa.String(64), sa.ForeignKey("captures.id", ondelete="CASCADE"), nullable=False),
    sa.Column("owner", sa.String(200)),                      # None: anonymous, or single mode
    sa.Column("visibility", sa.String(8), nullable=False),   # private | shared | public
    sa.Column("share_with", sa.JSON, nullable=False, default=list),  # user names (shared)
    sa.Column("name", sa.Text),                              # the name this upload was given
    sa.Column("submitted_at", sa.DateTime, nullable=False),
    sa.Index("ix_uploads_capture", "capture_id"),
    sa.Index("ix_uploads_visibility", "visibility", "owner"),
)

# hunts: a hunt's own rules run over stored captures (service.py: hunting); ids are never reused
hunts = sa.Table(
    "hunts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("query", sa.Text),                              # None: every capture
    sa.Column("rules", sa.JSON, nullable=False),              # [{sid, msg, text}]
    sa.Column("status", sa.String(16), nullable=False, index=True),  # queued|running|done|failed
    sa.Column("error", sa.Text),
    sa.Column("total", sa.Integer),                           # captures to read, once known
    sa.Column("done", sa.Integer, nullable=False, default=0),  # captures read so far
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("started_at", sa.DateTime),
    sa.Column("finished_at", sa.DateTime),
    sqlite_autoincrement=True,
)

# a capture a hunt's rules fired on (alerts > 0), or could not read (error)
hunt_hits = sa.Table(
    "hunt_hits", metadata,
    sa.Column("hunt_id", sa.Integer, sa.ForeignKey("hunts.id", ondelete="CASCADE"), nullable=False),
    sa.Column("capture_id", sa.String(64), sa.ForeignKey("captures.id", ondelete="CASCADE"), nullable=False),
    sa.Column("alerts", sa.Integer, nullable=False),          # every alert, counted
    sa.Column("by_sid", sa.JSON, nullable=False),             # {"sid": alerts}
    sa.Column("events", sa.JSON, nullable=False),             # the first alert records, bounded
    sa.Column("error", sa.Text),
    sa.PrimaryKeyConstraint("hunt_id", "capture_id"),
    sa.Index("ix_hunt_hits_capture", "capture_id"),
)

# the country and AS of each IP value held by a capture (ingest/geo.py), filled at ingest for new
# values: pages show them and geo.country:, asn:, geo.range: search them without looking up
ip_geo = sa.Table(
    "ip_geo", metadata,
    sa.Column("value", sa.Text, primary_key=True),
    sa.Column("country", sa.String(2)),     # ISO 3166 alpha-2, upper-case
    sa.Column("asn", sa.BigInteger),
    sa.Column("as_org", sa.Text),
    sa.Column("range", sa.String(16)),      # a special range's name (geo.RANGES): not looked up
    sa.Index("ix_ip_geo_country", "country"),
    sa.Index("ix_ip_geo_asn", "asn"),
    sa.Index("ix_ip_geo_range", "range"),
)


# IOC feeds (ingest/intel.py): a feed's indicators, replaced whole when it is imported again, and
# the captures holding each (found through the observables: at import for every stored capture,
# at ingest for a new one)
intel_feeds = sa.Table(
    "intel_feeds", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("name_lower", sa.String(64), nullable=False, unique=True),  # what intel:NAME compares
    sa.Column("format", sa.String(8), nullable=False),                    # csv | stix | misp
    sa.Column("origin", sa.Text, nullable=False),                          # the file's name or the URL
    sa.Column("skipped", sa.JSON, nullable=False),                         # {why: how many} of the last import
    sa.Column("imported_at", sa.DateTime, nullable=False),
    sqlite_autoincrement=True,
)

indicators = sa.Table(
    "indicators", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("feed_id", sa.Integer, sa.ForeignKey("intel_feeds.id", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(24), nullable=False),  # an observable kind (ingest/intel.py KINDS)
    sa.Column("value", sa.Text, nullable=False),       # normalised as observables are
    sa.Column("source", sa.Text),
    sa.Column("confidence", sa.Integer),
    sa.Column("description", sa.Text),
    sa.Column("expires", sa.DateTime),                  # None: never; past: matches no new capture
    sa.UniqueConstraint("feed_id", "kind", "value"),
    sa.Index("ix_indicators_value", "value", "kind"),
    sqlite_autoincrement=True,
)

intel_hits = sa.Table(
    "intel_hits", metadata,
    sa.Column("capture_id", sa.String(64), sa.ForeignKey("captures.id", ondelete="CASCADE"), nullable=False),
    sa.Column("indicator_id", sa.Integer, sa.ForeignKey("indicators.id", ondelete="CASCADE"), nullable=False),
    sa.Column("field", sa.String(64), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("capture_id", "indicator_id", "field"),
    sa.Index("ix_intel_hits_indicator", "indicator_id"),
)

# nDPI's view of each flow (ingest/ndpi/), written with the capture; joined to Suricata's flow
# records by five-tuple (either direction) and nearest start when shown
ndpi_flows = sa.Table(
    "ndpi_flows", metadata,
    sa.Column("capture_id", sa.String(64), sa.ForeignKey("captures.id", ondelete="CASCADE"), nullable=False),
    sa.Column("src_ip", sa.String(45), nullable=False),
    sa.Column("src_port", sa.Integer, nullable=False),
    sa.Column("dest_ip", sa.String(45), nullable=False),
    sa.Column("dest_port", sa.Integer, nullable=False),
    sa.Column("proto", sa.Integer, nullable=False),       # IP protocol number
    sa.Column("first_seen", sa.Float, nullable=False),    # epoch seconds
    sa.Column("app", sa.String(64), nullable=False),      # TLS.Telegram, DNS, Unknown
    sa.Column("category", sa.String(64), nullable=False),
    sa.Column("risks", sa.JSON, nullable=False),          # search names (ingest/ndpi/ risk_name)
    sa.Column("risk_score", sa.Integer, nullable=False),
    sa.Index("ix_ndpi_flows_capture", "capture_id"),
    sa.Index("ix_ndpi_flows_app", "app"),
)

# the registered domains each capture held (ingest/rare.py), written with the capture: how many
# earlier captures hold a domain, for the rare_domain finding
capture_domains = sa.Table(
    "capture_domains", metadata,
    sa.Column("capture_id", sa.String(64), sa.ForeignKey("captures.id", ondelete="CASCADE"), nullable=False),
    sa.Column("domain", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("capture_id", "domain"),
    sa.Index("ix_capture_domains_domain", "domain", "capture_id"),
)

# TLS certificates parsed from the logged chains (ingest/certs.py), written with the capture: each
# distinct certificate once, and where it was seen (a record's chain, its position)
certs = sa.Table(
    "certs", metadata,
    sa.Column("capture_id", sa.String(64), sa.ForeignKey("captures.id", ondelete="CASCADE"), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("sha1", sa.String(40), nullable=False),
    sa.Column("serial", sa.Text, nullable=False),       # as Suricata writes it: 00:A1:...
    sa.Column("serial_key", sa.Text, nullable=False),   # certs.serial_key: how it is searched
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("issuer", sa.Text, nullable=False),
    sa.Column("sans", sa.JSON, nullable=False),
    sa.Column("not_before", sa.String(32)),
    sa.Column("not_after", sa.String(32)),
    sa.Column("self_signed", sa.Boolean, nullable=False),
    sa.Column("key_type", sa.String(32), nullable=False),
    sa.Column("key_bits", sa.Integer),
    sa.Column("signature", sa.String(64), nullable=False),
    sa.Column("error", sa.Text),                         # why it could not be read
    sa.PrimaryKeyConstraint("capture_id", "sha256"),
    sa.Index("ix_certs_sha256", "sha256"),
    sa.Index("ix_certs_sha1", "sha1"),
)
cert_chains = sa.Table(
    "cert_chains", metadata,
    sa.Column("capture_id", sa.String(64), sa.ForeignKey("captures.id", ondelete="CASCADE"), nullable=False),
    sa.Column("flow_id", sa.String(24), nullable=False),
    sa.Column("timestamp", sa.String(40), nullable=False),
    sa.Column("side", sa.String(8), nullable=False),     # server | client
    sa.Column("position", sa.Integer, nullable=False),   # 0: the leaf
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("sni", sa.Text, nullable=False),
    sa.Column("status", sa.String(16)),                  # valid | expired | not_yet_valid at `timestamp`
    sa.Index("ix_cert_chains_capture", "capture_id", "flow_id"),
)

# NetBIOS names decoded from the capture's name-service packets (ingest/netbios.py)
netbios_names = sa.Table(
    "netbios_names", metadata,
    sa.Column("capture_id", sa.String(64), sa.ForeignKey("captures.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("suffix", sa.Integer, nullable=False),     # the 16th byte: 0x00 workstation, 0x1d master browser, ...
    sa.Column("kind", sa.String(16), nullable=False),    # query | registration | release | refresh | answer | status
    sa.Column("ip", sa.String(45), nullable=False),      # the sender
    sa.Column("first_seen", sa.String(40), nullable=False),
    sa.Column("count", sa.Integer, nullable=False),
    sa.Index("ix_netbios_names_capture", "capture_id"),
    sa.Index("ix_netbios_names_name", "name"),
)

job_leases = sa.Table(  # which Celery worker holds a capture's analysis, and when it last beat
    "job_leases", metadata,
    sa.Column("capture_id", sa.String(64), sa.ForeignKey("captures.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("worker", sa.String(200), nullable=False),
    sa.Column("beat_at", sa.DateTime, nullable=False),
)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Database:
    """The one way to the relational store: SQLite (embedded) or PostgreSQL, by URL. Writes are
    serialised within a process (SQLite has one writer)."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._write = threading.Lock()
        from . import schema  # the tables made, or brought to the code's revision (store/migrations/)
        schema.prepare(self.engine)

    @classmethod
    def from_url(cls, url: str) -> Database:
        """sqlite:///PATH (its folder made) or postgresql://user:password@host[:port]/name."""
        return cls(url)

    @classmethod
    def sqlite(cls, path: Path) -> Database:
        return cls.from_url(f"sqlite:///{path}")

    def insert(self, table: sa.Table) -> sqlite_dialect.Insert | postgresql.Insert:
        """The dialect's INSERT, which has on_conflict_do_nothing and on_conflict_do_update."""
        if self.engine.dialect.name == "sqlite":
            return sqlite_dialect.insert(table)
        from sqlalchemy.dialects import postgresql  # its dialect module costs ~0.5 s to import: only when used
        return postgresql.insert(table)

    def close(self) -> None:
        """Close the pooled connections (SQLite folds its write-ahead log back into the file)."""
        self.engine.dispose()

    def _exec(self, stmt, params=None):
        with self._write, self.engine.begin() as conn:
            return conn.execute(stmt, params) if params is not None else conn.execute(stmt)

    def _rows(self, stmt) -> list[dict]:
        with self.engine.connect() as conn:
            return [{str(k): v for k, v in r._mapping.items()} for r in conn.execute(stmt)]

    # captures
    def get_capture(self, capture_id: str) -> dict:
        rows = self._rows(sa.select(captures).where(captures.c.id == capture_id))
        if not rows:
            raise NotFound(f"no capture {capture_id}")
        return rows[0]

    def resolve(self, ref: str) -> dict:
        """A capture by sha256, md5, sha1, upload sha256, or a unique sha256 prefix (>= 8 chars)."""
        ref = ref.strip().lower()
        c = captures.c
        rows = self._rows(sa.select(captures).where(sa.or_(
            c.id == ref, c.md5 == ref, c.sha1 == ref, c.upload_sha256 == ref)))
        if not rows and len(ref) >= 8 and ref.isalnum():
            rows = self._rows(sa.select(captures).where(c.id.startswith(ref)).limit(2))
            if len(rows) > 1:
                raise NotFound(f"{ref!r} names more than one capture: give more characters")
        if not rows:
            raise NotFound(f"no capture {ref[:80]!r}")
        return rows[0]

    def insert_capture(self, row: dict) -> bool:
        """False when the capture exists already (a concurrent submission won)."""
        try:
            self._exec(sa.insert(captures).values(**row))
        except sa.exc.IntegrityError:
            return False
        return True

    def update_capture(self, capture_id: str, **values) -> None:
        self._exec(sa.update(captures).where(captures.c.id == capture_id).values(**values))

    def mark_indexing(self, capture_id: str) -> None:
        """An analysis spooled: `indexing` until the indexer records it, unless it did already."""
        c = captures.c
        self._exec(sa.update(captures).where(c.id == capture_id, c.status == "running").values(status="indexing"))

    def indexing(self) -> list[str]:
        """Captures analysed into the spool, waiting for the indexer."""
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(captures.c.id).where(captures.c.status == "indexing")).scalars())

    def fail_indexing(self, capture_id: str, reason: str) -> bool:
        """Fail a capture still `indexing` (not one indexed or analysed again meanwhile)."""
        c = captures.c
        return bool(self._exec(sa.update(captures).where(c.id == capture_id, c.status == "indexing")
                               .values(status="failed", error=reason, finished_at=now())).rowcount)

    def requeue(self, ids: Iterable[str] | None = None) -> list[str]:
        """Mark these captures (None: every one) `queued` for another analysis, those `done` or
        `failed` only (one queued or running already is left to its job); the ids marked."""
        c = captures.c
        finished = c.status.in_(("done", "failed"))
        marked: list[str] = []
        with self._write, self.engine.begin() as conn:
            for chunk in ([None] if ids is None else chunks(dict.fromkeys(ids))):
                where = finished if chunk is None else sa.and_(finished, c.id.in_(chunk))
                found = list(conn.execute(sa.select(c.id).where(where).order_by(c.size.desc())).scalars())
                conn.execute(sa.update(captures).where(where).values(status="queued", error=None, attempts=0))
                marked += found
        return marked

    def list_captures(self, status: str | None = None, limit: int = 100, offset: int = 0) -> list[dict]:
        q = sa.select(captures).order_by(captures.c.submitted_at.desc()).limit(limit).offset(offset)
        if status:
            q = q.where(captures.c.status == status)
        return self._rows(q)

    def find_captures(self, f: CaptureFilter, limit: int = 50, offset: int = 0) -> tuple[int, list[dict]]:
        """(how many match, one page of them newest first) under the list's filters."""
        from .listing import conditions
        where = conditions(f)
        count = sa.select(sa.func.count()).select_from(captures).where(*where)
        page = (sa.select(captures).where(*where).order_by(captures.c.submitted_at.desc(), captures.c.id)
                .limit(limit).offset(offset))
        with self.engine.connect() as conn:  # one snapshot: the total is that of the page
            total = conn.execute(count).scalar_one()
            rows = [{str(k): v for k, v in r._mapping.items()} for r in conn.execute(page)]
        return total, rows

    def named(self, value: str, like: bool) -> set[str]:
        """Captures whose name is `value` (case-insensitive), or matches it as a LIKE pattern."""
        name = sa.func.lower(captures.c.name)
        cond = name.like(value, escape="\\") if like else name == value.lower()
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(captures.c.id).where(cond)).scalars())

    # job leases (Celery workers)
    def take_lease(self, capture_id: str, worker: str, live_seconds: float) -> bool:
        """The capture's lease for `worker`, unless another's was beaten within `live_seconds`
        (one statement decides: two workers handed the same capture at once, one runs it)."""
        dead = now() - dt.timedelta(seconds=live_seconds)
        with self._write, self.engine.begin() as conn:
            conn.execute(sa.delete(job_leases).where((job_leases.c.capture_id == capture_id)
                                                     & (job_leases.c.beat_at < dead)))
            taken = conn.execute(self.insert(job_leases).values(capture_id=capture_id, worker=worker, beat_at=now())
                                 .on_conflict_do_nothing(index_elements=["capture_id"]).returning(job_leases.c.worker))
            return taken.first() is not None  # (rowcount is not the rows inserted on every driver)

    def beat_leases(self, worker: str) -> None:
        self._exec(sa.update(job_leases).where(job_leases.c.worker == worker).values(beat_at=now()))

    def drop_lease(self, capture_id: str, worker: str) -> None:
        self._exec(sa.delete(job_leases).where((job_leases.c.capture_id == capture_id)
                                               & (job_leases.c.worker == worker)))

    def leases(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return {cid: w for cid, w in conn.execute(sa.select(job_leases.c.capture_id, job_leases.c.worker))}

    def live_leases(self, seconds: float) -> set[str]:
        """Captures a worker beat for within `seconds`."""
        since = now() - dt.timedelta(seconds=seconds)
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(job_leases.c.capture_id)
                                    .where(job_leases.c.beat_at >= since)).scalars())

    def named_by_any(self, value: str, like: bool) -> set[str]:
        """Captures whose name, or the name of any of their uploads, is `value` (or matches it as
        a LIKE pattern); the scoped view keeps those whose names the viewer may see."""
        cond = (lambda col: sa.func.lower(col).like(value, escape="\\")) if like else \
            (lambda col: sa.func.lower(col) == value.lower())
        with self.engine.connect() as conn:
            return (set(conn.execute(sa.select(captures.c.id).where(cond(captures.c.name))).scalars())
                    | set(conn.execute(sa.select(uploads.c.capture_id).where(cond(uploads.c.name))).scalars()))

    def unfinished(self) -> list[str]:
        """Captures not `done`: none of their events may be seen."""
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(captures.c.id).where(captures.c.status != "done")).scalars())

    def captures_in(self, ids: Iterable[str]) -> dict[str, dict]:
        return {r["id"]: r for chunk in chunks(ids)
                for r in self._rows(sa.select(captures).where(captures.c.id.in_(chunk)))}

    def _column_by_id(self, ids: Iterable[str], column: sa.Column[T]) -> dict[str, T]:
        out: dict[str, T] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(ids):
                out.update(dict(conn.execute(sa.select(captures.c.id, column)
                                             .where(captures.c.id.in_(chunk))).all()))
        return out

    def submitted(self, ids: Iterable[str]) -> dict[str, dt.datetime]:
        return self._column_by_id(ids, captures.c.submitted_at)

    def capture_names(self, ids: Iterable[str]) -> dict[str, str]:
        return self._column_by_id(ids, captures.c.name)

    def finish_captures(self, results: list[dict]) -> None:
        """Observables, files and the final status of analysed captures, in one transaction."""
        results = list({r["id"]: r for r in results}.values())  # analysed twice: the last one counts
        ids = [r["id"] for r in results]
        obs = [o for r in results for o in r["observables"]]
        carved = [{k: v for k, v in f.items() if k != "seen"} for r in results for f in r["files"]]
        seen = [s for r in results for f in r["files"] for s in f.get("seen", ())]
        found = [{"capture_id": r["id"], "name": f["name"], "severity": f["severity"], "key": f["key"]}
                 for r in results for f in (r.get("summary") or {}).get("findings", [])]
        with self._write, self.engine.begin() as conn:
            self._count_values(conn, ids, -1)  # a capture analysed again: its old values go
            conn.execute(sa.delete(observables).where(observables.c.capture_id.in_(ids)))
            conn.execute(sa.delete(files).where(files.c.capture_id.in_(ids)))
            conn.execute(sa.delete(file_seen).where(file_seen.c.capture_id.in_(ids)))
            conn.execute(sa.delete(findings).where(findings.c.capture_id.in_(ids)))
            if found:
                conn.execute(sa.insert(findings), found)
            if obs:
                conn.execute(sa.insert(observables), obs)
                self._count_values(conn, ids, +1)
            if carved:
                conn.execute(sa.insert(files), carved)
            if seen:
                conn.execute(sa.insert(file_seen), seen)
            self._replace_ndpi(conn, results)
            self._replace_domains(conn, results)
            self._replace_derived(conn, results)
            conn.execute(sa.delete(capture_stats).where(capture_stats.c.capture_id.in_(ids)))
            if results:
                conn.execute(sa.insert(capture_stats), [{"capture_id": r["id"], "alerts": _alerts(r.get("summary"))}
                                                        for r in results])
            for r in results:
                values = {k: v for k, v in r.items()
                          if k not in ("id", "observables", "files", "ndpi", "domains", *DERIVED)}
                conn.execute(sa.update(captures).where(captures.c.id == r["id"]).values(**values))

    def _count_values(self, conn, capture_ids: list[str], sign: int) -> None:
        o, v = observables.c, value_counts.c
        held = (sa.select(o.value, sa.func.count(sa.distinct(o.capture_id)).label("n"))
                .where(o.capture_id.in_(capture_ids)).group_by(o.value))
        if sign < 0:
            gone = (sa.select(sa.func.count(sa.distinct(o.capture_id))).where(
                o.capture_id.in_(capture_ids), o.value == v.value).scalar_subquery())
            mine = sa.select(o.value).where(o.capture_id.in_(capture_ids))
            conn.execute(sa.update(value_counts).where(v.value.in_(mine)).values(captures=v.captures - gone))
            conn.execute(sa.delete(value_counts).where(v.value.in_(mine), v.captures <= 0))
            return
        stmt = self.insert(value_counts).from_select(["value", "captures"], held)
        conn.execute(stmt.on_conflict_do_update(index_elements=["value"],
                                                set_={"captures": v.captures + stmt.excluded.captures}))

    def capture_observables(self, capture_id: str, kind: str | None = None) -> list[dict]:
        q = sa.select(observables).where(observables.c.capture_id == capture_id)
        if kind:
            q = q.where(observables.c.kind == kind)
        return self._rows(q.order_by(observables.c.count.desc()))

    def top_observables(self, capture_id: str, per_kind: int = 10) -> dict[str, list[dict]]:
        """The most frequent values of each kind in one capture (summed over fields)."""
        o = observables.c
        total = sa.func.sum(o.count).label("count")
        ranked = (sa.select(o.kind, o.value, total,
                            sa.func.row_number().over(partition_by=o.kind, order_by=total.desc()).label("rank"))
                  .where(o.capture_id == capture_id).group_by(o.kind, o.value).subquery())
        rows = self._rows(sa.select(ranked.c.kind, ranked.c.value, ranked.c["count"])
                          .where(ranked.c.rank <= per_kind).order_by(ranked.c.kind, ranked.c.rank))
        out: dict[str, list[dict]] = {}
        for r in rows:
            out.setdefault(r["kind"], []).append({"value": r["value"], "count": r["count"]})
        return out

    # observables across captures: pivots and similarity
    def value_counts(self, values: Iterable[str]) -> dict[str, int]:
        """value -> number of captures holding it (document frequency)."""
        v = value_counts.c
        out: dict[str, int] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(dict.fromkeys(values)):
                out.update({val: n for val, n in conn.execute(
                    sa.select(v.value, v.captures).where(v.value.in_(chunk)))})
        return out

    def holder_count(self, values: Iterable[str]) -> int:
        """Captures holding any of `values` (from the covering index)."""
        o = observables.c
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count(sa.distinct(o.capture_id)))
                                .where(o.value.in_(list(values)))).scalar_one()

    def holders(self, values: Iterable[str], exclude: str | None = None,
                per_value: int | None = None) -> list[tuple[str, str]]:
        """(capture_id, value) for the captures holding each of `values` (from the covering
        index); with per_value, at most that many per value (a stable sample: by capture id)."""
        o = observables.c
        out: list[tuple[str, str]] = []
        q: sa.Executable
        for chunk in chunks(dict.fromkeys(values)):
            if per_value:  # one index range per value, stopping after per_value captures
                q = sa.text(" UNION ALL ".join(
                    f"SELECT * FROM (SELECT DISTINCT capture_id, value FROM observables WHERE value = :v{j} "
                    f"ORDER BY capture_id DESC LIMIT {int(per_value)}) AS t{j}" for j in range(len(chunk))))
                params = {f"v{j}": v for j, v in enumerate(chunk)}
            else:
                q = sa.select(o.capture_id, o.value).distinct().where(o.value.in_(chunk))
                params = {}
            with self.engine.connect() as conn:
                out += [tuple(r) for r in conn.execute(q, params) if r[0] != exclude]
        return out

    def co_occurring(self, capture_ids: list[str], skip: Iterable[str], limit: int = 25,
                     kinds_out: Iterable[str] = (), ips_out: Iterable[str] = ()) -> list[dict]:
        """Values found in most of these captures (besides `skip`, values of `kinds_out` and IPs
        LIKE one of `ips_out`), with how many hold them."""
        if not capture_ids:
            return []
        o = observables.c
        n = sa.func.count(sa.distinct(o.capture_id)).label("captures")
        ips = [o.value.like(p) for p in ips_out]
        q = (sa.select(o.kind, o.value, n).where(o.capture_id.in_(capture_ids), o.value.not_in(list(skip)),
                                                 o.kind.not_in(list(kinds_out)),
                                                 sa.not_(sa.and_(o.kind == "ip", sa.or_(*ips))) if ips else sa.true())
             .group_by(o.kind, o.value).order_by(n.desc(), o.value).limit(limit))
        return self._rows(q)

    # labels
    def add_label(self, row: dict) -> dict:
        row = {**row, "value_lower": row["value"].lower(), "created_at": now()}
        with self._write, self.engine.begin() as conn:
            author = row.get("author")
            existing = conn.execute(sa.select(labels.c.id).where(  # the author's own: uq_labels_author
                labels.c.capture_id == row["capture_id"], labels.c.kind == row["kind"],
                labels.c.value_lower == row["value_lower"],
                labels.c.author.is_(None) if author is None else labels.c.author == author)).scalar()
            if existing is None:
                key = conn.execute(sa.insert(labels).values(**row)).inserted_primary_key
                assert key is not None  # a single-row insert always has its key
                existing = key[0]
            elif row.get("note"):
                conn.execute(sa.update(labels).where(labels.c.id == existing).values(note=row["note"]))
        return self._rows(sa.select(labels).where(labels.c.id == existing))[0]

    def delete_label(self, capture_id: str, label_id: int) -> None:
        with self._write, self.engine.begin() as conn:
            gone = conn.execute(sa.delete(labels).where(labels.c.id == label_id,
                                                        labels.c.capture_id == capture_id)).rowcount
        if not gone:
            raise NotFound(f"capture {capture_id[:12]} has no label {label_id}")

    def labels_of(self, capture_ids: Iterable[str]) -> dict[str, list[dict]]:
        ids = list(capture_ids)
        out: dict[str, list[dict]] = {i: [] for i in ids}
        for chunk in chunks(ids):
            for r in self._rows(sa.select(labels).where(labels.c.capture_id.in_(chunk))
                                .order_by(labels.c.kind, labels.c.value_lower)):
                out[r["capture_id"]].append(r)
        return out

    def labelled(self, kinds: Iterable[str] | None, value: str, like: bool) -> set[str]:
        """Captures with a label equal to `value` (case-insensitive), or matching it as a LIKE
        pattern (lower-case, `\\` escaping)."""
        c = labels.c
        cond = c.value_lower.like(value, escape="\\") if like else c.value_lower == value.lower()
        q = sa.select(c.capture_id).distinct().where(cond)
        if kinds:
            q = q.where(c.kind.in_(list(kinds)))
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(q)}

    def with_finding(self, name: str, like: bool) -> set[str]:
        """Captures with a finding of this detector (`like`: a LIKE pattern, lower-case)."""
        c = findings.c
        cond = c.name.like(name, escape="\\") if like else c.name == name.lower()
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(sa.select(c.capture_id).distinct().where(cond))}


    # addresses: country and AS (ingest/geo.py)
    def without_geo(self, values: Iterable[str]) -> list[str]:
        """The values that have no ip_geo row yet."""
        values = list(dict.fromkeys(values))
        known: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in chunks(values):
                known.update(conn.execute(sa.select(ip_geo.c.value).where(ip_geo.c.value.in_(chunk))).scalars())
        return [v for v in values if v not in known]

    def add_geo(self, rows: list[dict]) -> None:
        """ip_geo rows (value, country, asn, as_org, range); a value stored already is kept."""
        if not rows:
            return
        with self._write, self.engine.begin() as conn:
            for chunk in chunks(list({r["value"]: r for r in rows}.values())):
                conn.execute(self.insert(ip_geo).on_conflict_do_nothing(index_elements=["value"]), chunk)

    def geo_of(self, values: Iterable[str]) -> dict[str, dict]:
        """value -> its ip_geo row, for the values that have one (one query per 500 values)."""
        out: dict[str, dict] = {}
        for chunk in chunks(dict.fromkeys(v for v in values if v)):
            out.update((r["value"], r) for r in self._rows(sa.select(ip_geo).where(ip_geo.c.value.in_(chunk))))
        return out

    def _geo_captures(self, cond) -> set[str]:
        o = observables.c
        q = (sa.select(o.capture_id).distinct().join(ip_geo, ip_geo.c.value == o.value)
             .where(o.kind == "ip", cond))
        with self.engine.connect() as conn:
            return set(conn.execute(q).scalars())

    def geo_country(self, value: str, like: bool) -> set[str]:
        """Captures holding an IP of this country code (`like`: a LIKE pattern, lower-case)."""
        c = ip_geo.c.country
        return self._geo_captures(sa.func.lower(c).like(value, escape="\\") if like else c == value.upper())

    def geo_asn(self, number: str, like: bool) -> set[str]:
        """Captures holding an IP of this AS (a number; `like`: a LIKE pattern over the number)."""
        a = ip_geo.c.asn
        return self._geo_captures(sa.cast(a, sa.Text).like(number, escape="\\") if like else a == int(number))

    def geo_range(self, value: str, like: bool) -> set[str]:
        """Captures holding an IP of this special range (private, multicast, ...)."""
        r = ip_geo.c.range
        return self._geo_captures(r.like(value, escape="\\") if like else r == value.lower())

    # YARA
    def record_yara(self, scans: list[dict]) -> None:
        """Scans of carved files (sha256, version, error, matches as yarascan gives them), each
        replacing the file's earlier scan and matches."""
        shas = [r["sha256"] for r in scans]
        found = [{"sha256": r["sha256"], "namespace": m["namespace"], "rule": m["rule"],
                  "rule_lower": m["rule"].lower(), "detail": {k: m[k] for k in ("tags", "meta", "strings")}}
                 for r in scans for m in {(m["namespace"], m["rule"]): m for m in r["matches"]}.values()]
        with self._write, self.engine.begin() as conn:
            for chunk in chunks(shas):
                conn.execute(sa.delete(yara_matches).where(yara_matches.c.sha256.in_(chunk)))
                conn.execute(sa.delete(yara_scans).where(yara_scans.c.sha256.in_(chunk)))
            if scans:
                conn.execute(sa.insert(yara_scans), [{"sha256": r["sha256"], "version": r["version"],
                                                      "error": r["error"], "scanned_at": now()} for r in scans])
            if found:
                conn.execute(sa.insert(yara_matches), found)

    def yara_of(self, shas: Iterable[str]) -> dict[str, dict]:
        """sha256 -> its scan (version, error, scanned_at, matches); files never scanned are absent."""
        out: dict[str, dict] = {}
        for chunk in chunks(dict.fromkeys(shas)):
            for r in self._rows(sa.select(yara_scans).where(yara_scans.c.sha256.in_(chunk))):
                out[r["sha256"]] = {"version": r["version"], "error": r["error"],
                                    "scanned_at": r["scanned_at"], "matches": []}
            m = yara_matches.c
            for r in self._rows(sa.select(yara_matches).where(m.sha256.in_(chunk)).order_by(m.namespace, m.rule)):
                if r["sha256"] in out:
                    out[r["sha256"]]["matches"].append({"rule": r["rule"], "namespace": r["namespace"], **r["detail"]})
        return out

    def yara_matched(self, value: str, like: bool) -> set[str]:
        """Captures holding a carved file that matched a rule named `value` (case-insensitive),
        or matching it as a LIKE pattern (lower-case, `\\` escaping)."""
        m = yara_matches.c
        cond = m.rule_lower.like(value, escape="\\") if like else m.rule_lower == value.lower()
        q = sa.select(files.c.capture_id).distinct().join(yara_matches, m.sha256 == files.c.sha256).where(cond)
        with self.engine.connect() as conn:
            return set(conn.execute(q).scalars())

    def stored_file_hashes(self, not_version: str | None = None) -> list[str]:
        """The sha256 of every carved file kept here; with not_version, of those not scanned by
        the rules of that version."""
        f, y = files.c, yara_scans.c
        q = sa.select(f.sha256).distinct().where(f.stored)
        if not_version is not None:
            q = q.outerjoin(yara_scans, y.sha256 == f.sha256).where(
                sa.or_(y.version.is_(None), y.version != not_version))
        with self.engine.connect() as conn:
            return list(conn.execute(q.order_by(f.sha256)).scalars())

    def file_hashes(self, value: str) -> list[str]:
        """The sha256 of the carved files whose sha256, md5 or sha1 is `value`."""
        f, v = files.c, value.strip().lower()
        q = sa.select(f.sha256).distinct().where(sa.or_(f.sha256 == v, f.md5 == v, f.sha1 == v)).limit(10)
        with self.engine.connect() as conn:
            return list(conn.execute(q).scalars())

    def capture_files(self, capture_id: str) -> list[dict]:
        return self._rows(sa.select(files).where(files.c.capture_id == capture_id)
                          .order_by(files.c.filename, files.c.sha256))

    def file_sightings(self, capture_id: str | None = None, sha256: str | None = None,
                       limit: int = 10_000) -> list[dict]:
        """Where carved files were seen (file_seen rows), of one capture or one file, in time order."""
        s = file_seen.c
        q = sa.select(file_seen)
        if capture_id is not None:
            q = q.where(s.capture_id == capture_id)
        if sha256 is not None:
            q = q.where(s.sha256 == sha256)
        return self._rows(q.order_by(s.timestamp, s.capture_id).limit(limit))

    def files_by_hash(self, sha256: str, limit: int = 200) -> list[dict]:
        """The file rows of one carved file, in every capture it was carved from (newest first)."""
        c = captures.c
        return self._rows(sa.select(files, c.name).join(captures, c.id == files.c.capture_id)
                          .where(files.c.sha256 == sha256).order_by(c.submitted_at.desc()).limit(limit))

    def count_captures(self, status: str | None = None) -> int:
        q = sa.select(sa.func.count()).select_from(captures)
        if status:
            q = q.where(captures.c.status == status)
        with self.engine.connect() as conn:
            return conn.execute(q).scalar_one()

    def observable_hits(self, values: Iterable[str], captures_limit: int = 200) -> list[dict]:
        """Where any of `values` (already normalised) was seen, in the newest `captures_limit`
        captures holding one: one row per capture and field, with the capture's name and date."""
        o, c = observables.c, captures.c
        values = list(values)
        newest = (sa.select(o.capture_id).join(captures, c.id == o.capture_id).where(o.value.in_(values))
                  .group_by(o.capture_id).order_by(sa.func.max(c.submitted_at).desc()).limit(captures_limit))
        q = (sa.select(o.capture_id, o.kind, o.value, o.field, o.count, o.first_seen, o.last_seen,
                       c.name, c.submitted_at, c.status)
             .join(captures, c.id == o.capture_id)
             .where(o.value.in_(values), o.capture_id.in_(newest.scalar_subquery()))
             .order_by(c.submitted_at.desc(), o.capture_id, o.field))
        return self._rows(q)


    # uploads and their visibility (auth/visibility.py decides; these only read and write rows)
    def record_upload(self, capture_id: str, owner: str | None, visibility: str, name: str | None = None) -> dict:
        """The upload of `owner` (None: anonymous); an owner's earlier upload of it is kept as is."""
        u = uploads.c
        with self._write, self.engine.begin() as conn:
            same = u.owner.is_(None) if owner is None else u.owner == owner
            found = conn.execute(sa.select(uploads).where(u.capture_id == capture_id, same)).first()
            if found is None:
                conn.execute(sa.insert(uploads).values(capture_id=capture_id, owner=owner, visibility=visibility,
                                                       share_with=[], name=name, submitted_at=now()))
        return self.uploads_in([capture_id])[capture_id][-1 if found is None else 0]

    def uploads_in(self, capture_ids: Iterable[str]) -> dict[str, list[dict]]:
        ids = list(capture_ids)
        out: dict[str, list[dict]] = {i: [] for i in ids}
        for chunk in chunks(ids):
            for r in self._rows(sa.select(uploads).where(uploads.c.capture_id.in_(chunk)).order_by(uploads.c.id)):
                out[r["capture_id"]].append(r)
        return out

    def set_visibility(self, upload_id: int, visibility: str, share_with: list[str]) -> None:
        self._exec(sa.update(uploads).where(uploads.c.id == upload_id)
                   .values(visibility=visibility, share_with=share_with))

    def restricted_uploads(self) -> list[dict]:
        """capture_id, owner, visibility, share_with of every upload not public, and the ids of
        the captures some public upload opens (`public`)."""
        u = uploads.c
        with self.engine.connect() as conn:  # tuples, not mappings: this runs once per request
            opened = set(conn.execute(sa.select(u.capture_id).distinct().where(u.visibility == "public")).scalars())
            private = conn.execute(sa.select(u.capture_id, u.owner).where(u.visibility == "private")).all()
            shared = conn.execute(sa.select(u.capture_id, u.owner, u.share_with).where(u.visibility == "shared")).all()
        return ([{"capture_id": c, "owner": o, "visibility": "private", "share_with": [], "public": c in opened}
                 for c, o in private]
                + [{"capture_id": c, "owner": o, "visibility": "shared", "share_with": w, "public": c in opened}
                   for c, o, w in shared])

    def counted_in(self, values: Iterable[str], capture_ids: Iterable[str]) -> dict[str, int]:
        """value -> how many of these captures hold it."""
        o, out = observables.c, dict[str, int]()
        ids = list(capture_ids)
        with self.engine.connect() as conn:
            for chunk in chunks(dict.fromkeys(values)):
                for part in chunks(ids):
                    for val, n in conn.execute(sa.select(o.value, sa.func.count(sa.distinct(o.capture_id)))
                                               .where(o.value.in_(chunk), o.capture_id.in_(part)).group_by(o.value)):
                        out[val] = out.get(val, 0) + n
        return out

    def holders_among(self, values: Iterable[str], capture_ids: Iterable[str]) -> set[str]:
        """Which of these captures hold any of `values`."""
        o, out, values = observables.c, set[str](), list(values)
        with self.engine.connect() as conn:
            for part in chunks(capture_ids):
                out |= set(conn.execute(sa.select(o.capture_id).distinct()
                                        .where(o.value.in_(values), o.capture_id.in_(part))).scalars())
        return out

    # hunts
    def insert_hunt(self, row: dict) -> dict:
        with self._write, self.engine.begin() as conn:
            key = conn.execute(sa.insert(hunts).values(**row)).inserted_primary_key
        assert key is not None  # a single-row insert always has its key
        return self.get_hunt(key[0])

    def get_hunt(self, hunt_id: int) -> dict:
        rows = self._rows(sa.select(hunts).where(hunts.c.id == hunt_id))
        if not rows:
            raise NotFound(f"no hunt {hunt_id}")
        return rows[0]

    def list_hunts(self, limit: int = 100, offset: int = 0, hidden: Iterable[str] = ()) -> list[dict]:
        """Hunts, newest first, with how many captures (`hidden` apart) each has hits in."""
        h = hunt_hits.c
        hit = (sa.select(sa.func.count()).where(h.hunt_id == hunts.c.id, h.alerts > 0,
                                                h.capture_id.not_in(list(hidden)))
               .scalar_subquery().label("hit_captures"))
        return self._rows(sa.select(hunts, hit).order_by(hunts.c.id.desc()).limit(limit).offset(offset))

    def hunts_in(self, statuses: Iterable[str]) -> list[int]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(hunts.c.id).where(hunts.c.status.in_(list(statuses)))
                                     .order_by(hunts.c.id)).scalars())

    def update_hunt(self, hunt_id: int, **values) -> bool:
        """False: the hunt is gone (deleted meanwhile)."""
        return bool(self._exec(sa.update(hunts).where(hunts.c.id == hunt_id).values(**values)).rowcount)

    def start_hunt(self, hunt_id: int, total: int) -> bool:
        """Its earlier hits (a run cut short) deleted, the hunt `running`; False: it is gone."""
        with self._write, self.engine.begin() as conn:
            conn.execute(sa.delete(hunt_hits).where(hunt_hits.c.hunt_id == hunt_id))
            return bool(conn.execute(sa.update(hunts).where(hunts.c.id == hunt_id).values(
                status="running", error=None, total=total, done=0, started_at=now(), finished_at=None)).rowcount)

    def record_hunt_capture(self, hunt_id: int, done: int, hit: dict | None) -> bool:
        """One more capture read (its hits, if any); False: the hunt is gone."""
        with self._write, self.engine.begin() as conn:
            if not conn.execute(sa.update(hunts).where(hunts.c.id == hunt_id).values(done=done)).rowcount:
                return False
            if hit is not None:
                conn.execute(sa.insert(hunt_hits).values(hunt_id=hunt_id, **hit))
        return True

    def hunt_hits(self, hunt_id: int, limit: int | None = None, offset: int = 0) -> list[dict]:
        """A hunt's captures: most alerts first, then those that failed."""
        h = hunt_hits.c
        return self._rows(sa.select(hunt_hits).where(h.hunt_id == hunt_id)
                          .order_by(h.alerts.desc(), h.capture_id).limit(limit).offset(offset))

    def hunt_totals(self, hunt_id: int) -> list[dict]:
        """Every capture of a hunt without its events: what per-rule counts are summed from."""
        h = hunt_hits.c
        return self._rows(sa.select(h.capture_id, h.alerts, h.by_sid, h.error).where(h.hunt_id == hunt_id))

    def delete_hunt(self, hunt_id: int) -> None:
        with self._write, self.engine.begin() as conn:
            gone = conn.execute(sa.delete(hunts).where(hunts.c.id == hunt_id)).rowcount  # its hits: cascade
        if not gone:
            raise NotFound(f"no hunt {hunt_id}")

    def hunted(self, hunt_ids: str, like: bool) -> set[str]:
        """Captures a hunt's rules fired on: the hunt with this id, or (like) whose id matches the
        LIKE pattern."""
        h = hunt_hits.c
        cond: sa.ColumnElement[bool]
        if like:
            cond = sa.cast(h.hunt_id, sa.String).like(hunt_ids, escape="\\")
        elif hunt_ids.isdigit() and len(hunt_ids) < 12:
            cond = h.hunt_id == int(hunt_ids)
        else:
            return set()
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(h.capture_id).distinct().where(cond, h.alerts > 0)).scalars())

    def capture_hunts(self, capture_id: str, limit: int = 20) -> list[dict]:
        """The newest hunts whose rules fired on this capture: id, name, rules, counts by sid."""
        h, t = hunt_hits.c, hunts.c
        return self._rows(sa.select(t.id, t.name, t.rules, h.alerts, h.by_sid)
                          .join(hunts, t.id == h.hunt_id).where(h.capture_id == capture_id, h.alerts > 0)
                          .order_by(t.id.desc()).limit(limit))

    def done_captures(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(captures.c.id).where(captures.c.status == "done")
                                     .order_by(captures.c.submitted_at)).scalars())

    # nDPI (ingest/ndpi/)
    def _replace_ndpi(self, conn, results: list[dict]) -> None:
        """A capture's nDPI flows, replaced by those of its new analysis (`ndpi` absent: kept)."""
        given = [r for r in results if "ndpi" in r]
        conn.execute(sa.delete(ndpi_flows).where(ndpi_flows.c.capture_id.in_([r["id"] for r in given])))
        rows = [{"capture_id": r["id"], **f} for r in given for f in r["ndpi"]]
        for part in chunks(rows, 5000):
            conn.execute(sa.insert(ndpi_flows), part)

    def _replace_derived(self, conn, results: list[dict]) -> None:
        """A capture's certificates, chains and NetBIOS names, replaced by those of its new analysis."""
        for key, table in DERIVED.items():
            given = [r for r in results if key in r]
            conn.execute(sa.delete(table).where(table.c.capture_id.in_([r["id"] for r in given])))
            for part in chunks([{"capture_id": r["id"], **row} for r in given for row in r[key]], 5000):
                conn.execute(sa.insert(table), part)

    # certificates (ingest/certs.py) and NetBIOS names (ingest/netbios.py)
    def certs_of(self, capture_id: str) -> list[dict]:
        c = certs.c
        return self._rows(sa.select(certs).where(c.capture_id == capture_id).order_by(c.subject, c.sha256))

    def chains_of(self, capture_id: str, flow_ids: Iterable[str] | None = None, limit: int = 5000) -> list[dict]:
        """Where the certificates were seen: all of a capture's chains, or those of some flows."""
        c = cert_chains.c
        q = sa.select(cert_chains).where(c.capture_id == capture_id)
        if flow_ids is not None:
            q = q.where(c.flow_id.in_(list(flow_ids)[:IN_CHUNK]))
        return self._rows(q.order_by(c.timestamp, c.flow_id, c.side, c.position).limit(limit))

    def cert_matched(self, column: str, value: str, like: bool) -> set[str]:
        """Captures holding a certificate whose column (subject, issuer, sha256, sha1, serial_key;
        "sans": any of its names) is `value` (case-insensitive) or matches the LIKE pattern."""
        c = certs.c
        if column != "sans":
            col = sa.func.lower(c[column])
            cond = col.like(value, escape="\\") if like else col == value.lower()
            with self.engine.connect() as conn:
                return set(conn.execute(sa.select(c.capture_id).distinct().where(cond)).scalars())
        wanted = like_regex(value) if like else re.compile(re.escape(value.lower()))
        q = sa.select(c.capture_id, c.sans)
        with self.engine.connect() as conn:
            return {cid for cid, sans in conn.execute(q) if any(wanted.fullmatch(n.lower()) for n in sans or [])}

    def netbios_of(self, capture_id: str, limit: int = 1000) -> list[dict]:
        n = netbios_names.c
        return self._rows(sa.select(netbios_names).where(n.capture_id == capture_id)
                          .order_by(n.name, n.suffix, n.kind, n.ip).limit(limit))

    def netbios_matched(self, value: str, like: bool) -> set[str]:
        """Captures holding a NetBIOS name (case-insensitive, suffix aside)."""
        col = sa.func.lower(netbios_names.c.name)
        cond = col.like(value, escape="\\") if like else col == value.lower()
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(netbios_names.c.capture_id).distinct().where(cond)).scalars())

    def ndpi_flows_of(self, capture_id: str, ports: Iterable[int]) -> list[dict]:
        """A capture's nDPI flows between these ports (those of the connections on one page)."""
        n, ports = ndpi_flows.c, sorted(set(ports))  # a page's: at most 1,001
        return self._rows(sa.select(ndpi_flows).where(n.capture_id == capture_id, n.src_port.in_(ports),
                                                      n.dest_port.in_(ports)).order_by(n.first_seen))

    def ndpi_overview(self, capture_id: str, apps: int = 10, risky: int = 20) -> dict:
        """The Summary's nDPI section: flows, the top applications, the riskiest flows."""
        n = ndpi_flows.c
        mine = n.capture_id == capture_id
        count = sa.func.count().label("flows")
        with self.engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).where(mine)).scalar_one()
            top = [dict(r._mapping) for r in conn.execute(
                sa.select(n.app, n.category, count).where(mine).group_by(n.app, n.category)
                .order_by(count.desc(), n.app).limit(apps))]
        flows = self._rows(sa.select(ndpi_flows).where(mine, n.risk_score > 0)
                           .order_by(n.risk_score.desc(), n.first_seen).limit(risky))
        with_risks = 0 if not flows else self._count(sa.select(sa.func.count()).where(mine, n.risk_score > 0))
        return {"flows": total, "apps": top, "risky": flows, "with_risks": with_risks}

    def _count(self, stmt) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    def ndpi_matched(self, column: str, value: str, like: bool) -> set[str]:
        """Captures holding a flow whose nDPI app, category or (column "risks") risk is `value`
        (case-insensitive), or matches it as a LIKE pattern."""
        n = ndpi_flows.c
        if column != "risks":
            col = sa.func.lower(n[column])
            cond = col.like(value, escape="\\") if like else col == value.lower()
            with self.engine.connect() as conn:
                return set(conn.execute(sa.select(n.capture_id).distinct().where(cond)).scalars())
        wanted = like_regex(value) if like else re.compile(re.escape(value.lower()))
        q = sa.select(n.capture_id, n.risks).where(n.risk_score > 0)
        with self.engine.connect() as conn:
            return {cid for cid, risks in conn.execute(q) if any(wanted.fullmatch(r) for r in risks or [])}

    # registered domains across captures (ingest/rare.py)
    def _replace_domains(self, conn, results: list[dict]) -> None:
        """A capture's registered domains, replaced by those of its new analysis (`domains` absent: kept)."""
        given = [r for r in results if "domains" in r]
        for chunk in chunks(r["id"] for r in given):
            conn.execute(sa.delete(capture_domains).where(capture_domains.c.capture_id.in_(chunk)))
        rows = [{"capture_id": r["id"], "domain": d} for r in given for d in r["domains"]]
        for part in chunks(rows, 5000):
            conn.execute(sa.insert(capture_domains), part)

    def domain_history(self, capture_id: str, domains: Iterable[str], exclude: Iterable[str],
                       enough: int, rare_below: int, public_only: bool = False) -> tuple[int, dict[str, int]]:
        """Of the captures submitted before this one (by submitted_at, then id), `exclude` left
        out (and with `public_only`, those no public upload opens: see service._judge_domains):
        how many hold a registered domain, counted up to `enough`, and how many hold each of
        `domains`, counted up to `rare_below` (absent: none). Bounded so, the cost is that of
        `enough` + `rare_below` index steps a domain, however many captures the instance holds."""
        earlier = _EARLIER + (_PUBLIC if public_only else "")
        with self.engine.connect() as conn:
            at = conn.execute(sa.select(captures.c.submitted_at).where(captures.c.id == capture_id)).scalar()
            if at is None:
                raise NotFound(f"no capture {capture_id}")
            binds: tuple[sa.BindParameter, ...] = (sa.bindparam("at", type_=sa.DateTime),
                                                  sa.bindparam("ex", expanding=True))
            params: dict[str, object] = {"at": at, "me": capture_id, "ex": list(dict.fromkeys(exclude)) or [""],
                                         "enough": enough, "below": rare_below}
            baseline = conn.execute(sa.text(
                f"SELECT count(*) FROM (SELECT 1 FROM captures c WHERE {earlier} AND EXISTS "
                "(SELECT 1 FROM capture_domains d WHERE d.capture_id = c.id) LIMIT :enough) AS b").bindparams(*binds),
                params).scalar_one()
            held: dict[str, int] = {}
            d = capture_domains.c
            present = [v for chunk in chunks(dict.fromkeys(domains))  # by any capture: one covering-index look-up each
                       for v in conn.execute(sa.select(d.domain).distinct().where(d.domain.in_(chunk))).scalars()]
            for chunk in chunks(present, 200):  # SQLite: at most 500 terms a compound select
                q = " UNION ALL ".join(
                    f"SELECT :v{j}, (SELECT count(*) FROM (SELECT 1 FROM capture_domains d JOIN captures c ON "
                    f"c.id = d.capture_id WHERE d.domain = :v{j} AND {earlier} LIMIT :below) AS h{j})"
                    for j in range(len(chunk)))
                rows = conn.execute(sa.text(q).bindparams(*binds), params | {f"v{j}": v for j, v in enumerate(chunk)})
                held.update((domain, n) for domain, n in rows if n)
        return int(baseline), held

    # IOC feeds
    def replace_feed(self, name: str, fmt: str, origin: str, skipped: dict[str, int], rows: list[dict]) -> dict:
        """Import a feed (rows: kind, value, source, confidence, description, expires), replacing the
        indicators of a feed of that name (case-insensitive), then retro-hunt: every stored capture
        holding one of its unexpired indicators gets its hits, in the same transaction."""
        f = intel_feeds.c
        values = {"name": name, "name_lower": name.lower(), "format": fmt, "origin": origin,
                  "skipped": skipped, "imported_at": now()}
        with self._write, self.engine.begin() as conn:
            feed_id = conn.execute(sa.select(f.id).where(f.name_lower == name.lower())).scalar()
            if feed_id is None:
                key = conn.execute(sa.insert(intel_feeds).values(**values)).inserted_primary_key
                assert key is not None  # a single-row insert always has its key
                feed_id = key[0]
            else:
                conn.execute(sa.delete(indicators).where(indicators.c.feed_id == feed_id))  # their hits: cascade
                conn.execute(sa.update(intel_feeds).where(f.id == feed_id).values(**values))
            if rows:
                conn.execute(sa.insert(indicators), [{**r, "feed_id": feed_id} for r in rows])
            conn.execute(_hunt_intel(indicators.c.feed_id == feed_id))
        return next(r for r in self.list_feeds() if r["id"] == feed_id)

    def match_intel(self, capture_ids: Iterable[str]) -> None:
        """Match analysed captures against every unexpired indicator (their earlier hits replaced)."""
        with self._write, self.engine.begin() as conn:
            for chunk in chunks(dict.fromkeys(capture_ids)):
                conn.execute(sa.delete(intel_hits).where(intel_hits.c.capture_id.in_(chunk)))
                conn.execute(_hunt_intel(observables.c.capture_id.in_(chunk)))

    def list_feeds(self, hidden: Iterable[str] = ()) -> list[dict]:
        """Feeds by name, each with its indicators, those expired, and the captures (`hidden`
        apart) holding one."""
        f, i, h = intel_feeds.c, indicators.c, intel_hits.c
        n = sa.select(sa.func.count()).where(i.feed_id == f.id).scalar_subquery()
        expired = sa.select(sa.func.count()).where(i.feed_id == f.id, i.expires <= now()).scalar_subquery()
        hit = (sa.select(sa.func.count(sa.distinct(h.capture_id))).select_from(intel_hits)
               .join(indicators, i.id == h.indicator_id)
               .where(i.feed_id == f.id, h.capture_id.not_in(list(hidden))).scalar_subquery())
        return self._rows(sa.select(intel_feeds, n.label("indicators"), expired.label("expired"),
                                    hit.label("captures")).order_by(f.name_lower))

    def delete_feed(self, name: str) -> None:
        with self._write, self.engine.begin() as conn:
            gone = conn.execute(sa.delete(intel_feeds).where(intel_feeds.c.name_lower == name.lower())).rowcount
        if not gone:
            raise NotFound(f"no feed {name[:80]!r}")

    def capture_intel(self, capture_id: str) -> list[dict]:
        """A capture's hits: one row per indicator and field, with the indicator and its feed."""
        i, h, f = indicators.c, intel_hits.c, intel_feeds.c
        q = (sa.select(i.id, i.kind, i.value, i.source, i.confidence, i.description, i.expires,
                       f.name.label("feed"), f.imported_at, h.field, h.count)
             .join(indicators, i.id == h.indicator_id).join(intel_feeds, f.id == i.feed_id)
             .where(h.capture_id == capture_id).order_by(f.name_lower, i.kind, i.value, h.field))
        return self._rows(q)

    def indicators_of(self, values: Iterable[str]) -> list[dict]:
        """The indicators with one of these (normalised) values, with their feed's name."""
        i, f = indicators.c, intel_feeds.c
        return [r for chunk in chunks(dict.fromkeys(values)) for r in self._rows(
            sa.select(indicators, f.name.label("feed")).join(intel_feeds, f.id == i.feed_id)
            .where(i.value.in_(chunk)).order_by(f.name_lower, i.kind))]

    def intel_feeds_of(self, capture_ids: Iterable[str]) -> dict[str, list[str]]:
        """capture -> the names of the feeds it holds indicators of (captures without: absent)."""
        i, h, f = indicators.c, intel_hits.c, intel_feeds.c
        out: dict[str, list[str]] = {}
        for chunk in chunks(dict.fromkeys(capture_ids)):
            q = (sa.select(h.capture_id, f.name).distinct().join(indicators, i.id == h.indicator_id)
                 .join(intel_feeds, f.id == i.feed_id).where(h.capture_id.in_(chunk)).order_by(f.name))
            with self.engine.connect() as conn:
                for cid, feed in conn.execute(q):
                    out.setdefault(cid, []).append(feed)
        return out

    def with_intel(self, name: str, like: bool) -> set[str]:
        """Captures holding an indicator of the feed `name` (case-insensitive), or of the feeds
        whose name matches it as a LIKE pattern (lower-case, `\\` escaping)."""
        i, h, f = indicators.c, intel_hits.c, intel_feeds.c
        cond = f.name_lower.like(name, escape="\\") if like else f.name_lower == name.lower()
        q = (sa.select(h.capture_id).distinct().join(indicators, i.id == h.indicator_id)
             .join(intel_feeds, f.id == i.feed_id).where(cond))
        with self.engine.connect() as conn:
            return set(conn.execute(q).scalars())


# a capture submitted before :me (at :at), ties by id, outside :ex: "earlier" for the rare_domain finding
_EARLIER = "(c.submitted_at < :at OR (c.submitted_at = :at AND c.id < :me)) AND c.id NOT IN :ex"
# a capture every viewer may read: a public upload, or none at all (analysed before accounts, or by the CLI)
_PUBLIC = (" AND (EXISTS (SELECT 1 FROM uploads u WHERE u.capture_id = c.id AND u.visibility = 'public')"
           " OR NOT EXISTS (SELECT 1 FROM uploads u WHERE u.capture_id = c.id))")


def _hunt_intel(where: sa.ColumnElement[bool]) -> sa.Insert:
    """The hits of unexpired indicators in the observables, under `where` (one join on the
    observables' value index)."""
    i, o = indicators.c, observables.c
    found = (sa.select(o.capture_id, i.id, o.field, o.count)
             .select_from(indicators.join(observables, sa.and_(o.value == i.value, o.kind == i.kind)))
             .where(where, sa.or_(i.expires.is_(None), i.expires > now())))
    return sa.insert(intel_hits).from_select(["capture_id", "indicator_id", "field", "count"], found)


def _alerts(summary: dict | None) -> int:
    n = (summary or {}).get("alerts")
    return n if isinstance(n, int) else 0


def make_engine(url: str) -> sa.Engine:
    """The engine of a database_url: SQLite (its folder made, WAL) or PostgreSQL through psycopg 3."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", url), future=True)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    else:
        sa.event.listen(engine, "before_cursor_execute", _without_nul, retval=True)
    return engine


def _without_nul(conn, cursor, statement, parameters, context, executemany):
    """PostgreSQL's text holds no NUL, which captures may put in any string: each bound string
    has its NULs as U+FFFD, written and compared alike (JSON values go as escapes, unchanged)."""
    def clean(v):
        return v.replace("\x00", "\ufffd") if isinstance(v, str) and "\x00" in v else v

    def row(p):
        return {k: clean(v) for k, v in p.items()} if isinstance(p, dict) else type(p)(clean(v) for v in p)

    if not parameters:
        return statement, parameters
    return statement, [row(p) for p in parameters] if executemany else row(parameters)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


DERIVED = {"certs": certs, "cert_chains": cert_chains, "netbios": netbios_names}  # result key -> table


def like_regex(pattern: str) -> re.Pattern[str]:
    """A LIKE pattern (`%`, `_`, `\\` escapes) as a regular expression."""
    out, escaped = [], False
    for ch in pattern:
        if escaped:
            out.append(re.escape(ch))
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return re.compile("".join(out), re.S)
