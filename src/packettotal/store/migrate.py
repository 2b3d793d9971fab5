"""Move an instance's data into other stores (`packettotal migrate`): every table of the relational
store, every capture's events through the EventStore interface, and the blobs by content.

Planning is pure (`Marker`, `plan_tables`, `plan_events`, `compare`); the copying is at the edges.
A `.migrating` marker in the target's blob folder records what is done: a crash is resumed by the
same command. A table not done is emptied in the target and copied again (resumes are per table;
rows are streamed `batch` at a time, each batch one transaction); captures whose events were
committed are not indexed again; blobs already present are kept (they are named by content)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from ..errors import MigrationError
from . import accounts as _accounts  # noqa: F401  (its tables join the metadata walked here)
from .blobs import open_regular
from .db import Database, captures, chunks, metadata
from .events.base import EventStore

MARKER = ".migrating"
BLOB_KINDS = ("captures", "files", "flowindex")
HASHED_KINDS = frozenset({"captures", "files"})  # named by their content's sha256: checked while copied
EVENTS_PER_ROW = 20  # events indexed into the target between two commits (and marker updates): 20 x batch
PROGRESS_SECONDS = 2.0  # a table's progress line at most this often
CONNECT_SECONDS = 10  # a target server that does not answer: how long before the error
_SHA256 = re.compile(r"[0-9a-f]{64}")

Progress = Callable[[str], None]
T = TypeVar("T")


# the target's stores, from the command's arguments
def engine_url(url: str) -> str:
    """A target's database URL, checked, with a connect timeout for PostgreSQL (a server that
    does not answer is one line within CONNECT_SECONDS); store/db.make_engine does the rest."""
    u = sa.engine.make_url(url)
    if u.get_backend_name() not in ("sqlite", "postgresql"):
        raise MigrationError(f"--to-database: a sqlite:///PATH or postgresql://... URL, not {u.drivername!r}")
    if u.get_backend_name() == "postgresql" and "connect_timeout" not in u.query:
        u = u.update_query_dict({"connect_timeout": str(CONNECT_SECONDS)})
    return u.render_as_string(hide_password=False)


def open_target(url: str) -> Database:
    """The target's relational store (its schema made if it is new)."""
    try:
        u = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise MigrationError(f"--to-database: not a database URL: {hidden(url)[:80]!r}") from None
    if u.get_backend_name() == "sqlite" and u.database:
        Path(u.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        return Database.from_url(engine_url(url))  # its schema made through Alembic (store/schema.py)
    except sa.exc.DBAPIError as exc:
        raise MigrationError(f"cannot open the target database {hidden(url)}: {_first_line(exc)}") from None


def open_target_events(spec: str) -> EventStore:
    """An http(s) URL: OpenSearch (its client bounded to CONNECT_SECONDS a request, one retry);
    else the path of a tantivy index."""
    if re.match(r"https?://", spec):
        try:
            from opensearchpy import OpenSearch
            from opensearchpy.exceptions import OpenSearchException

            from .events.opensearch import OpenSearchEventStore, OrjsonSerializer, connection
        except ImportError:
            raise MigrationError("an OpenSearch target needs opensearch-py: pip install 'packettotal[opensearch]'") \
                from None
        kw, _index = connection(spec)
        client = OpenSearch(**kw, timeout=CONNECT_SECONDS, max_retries=1, serializer=OrjsonSerializer())
        try:
            return OpenSearchEventStore(spec, client=client)
        except OpenSearchException as exc:
            raise MigrationError(f"cannot reach the OpenSearch target {hidden(spec)}: {_first_line(exc)}") from None
    from .events.tantivy import TantivyEventStore
    try:
        store = TantivyEventStore(Path(spec))
        store.claim()
        return store
    except (OSError, ValueError) as exc:
        raise MigrationError(f"cannot open the target event index {spec}: {_first_line(exc)}") from None


def hidden(url: str) -> str:
    """A URL as it may be printed and recorded: no password."""
    return re.sub(r"(//[^/:@]*:)[^/@]*@", r"\1***@", url)


def _first_line(exc: BaseException) -> str:
    e = getattr(exc, "orig", None) or exc
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]


@dataclass
class Ends:
    """One side of a migration: its three stores, and how the marker names them."""

    db: Database
    events: EventStore
    blobs: Path
    events_name: str

    def described(self) -> dict[str, str]:
        return {"database": hidden(str(self.db.url)), "events": hidden(self.events_name),
                "blobs": str(self.blobs.resolve())}

    def close(self) -> None:
        self.events.close()
        self.db.close()


def open_ends(database_url: str, events: str, blobs: Path) -> Ends:
    db = open_target(database_url)
    try:
        return Ends(db, open_target_events(events), blobs, events)
    except BaseException:
        db.close()
        raise


# planning (pure)
@dataclass
class Marker:
    """What a migration under way has done, kept in the target (`<blobs>/.migrating`)."""

    source: dict[str, str]
    target: dict[str, str]
    tables: list[str] = field(default_factory=list)      # copied in full
    events: list[str] = field(default_factory=list)      # captures whose events the target committed
    blobs: bool = False

    @classmethod
    def from_json(cls, text: str) -> Marker:
        d = json.loads(text)
        return cls(d["source"], d["target"], list(d["tables"]), list(d["events"]), bool(d["blobs"]))


def plan_tables(done: Iterable[str]) -> list[sa.Table]:
    """The tables left to copy, parents before children (foreign-key order)."""
    skip = set(done)
    return [t for t in metadata.sorted_tables if t.name not in skip]


def plan_events(counts: dict[str, int], done: Iterable[str]) -> list[str]:
    """Captures whose events are left to copy, in the order given."""
    skip = set(done)
    return [cid for cid, n in counts.items() if n and cid not in skip]


def compare(source: dict[str, int], target: dict[str, int]) -> list[str]:
    """What differs between two tallies (table rows, events per capture), each as a short line."""
    return [f"{k}: {source.get(k, 0)} in the source, {target.get(k, 0)} in the target"
            for k in sorted(source.keys() | target.keys()) if source.get(k, 0) != target.get(k, 0)]


@dataclass
class Summary:
    tables: dict[str, int]            # rows per table (equal in both, checked)
    captures: int                     # captures with events
    events: int                       # events (equal per capture in both, checked)
    blobs_copied: int
    blobs_present: int                # already in the target (skipped)
    blobs_corrupt: list[str]          # source blobs whose content is not their name: not copied
    resumed: bool
    seconds: dict[str, float]

    def lines(self) -> list[str]:
        out = [f"{'resumed and ' if self.resumed else ''}checked: "
               f"{sum(self.tables.values()):,} rows in {len(self.tables)} tables, "
               f"{self.events:,} events of {self.captures:,} captures, "
               f"{self.blobs_copied:,} blobs copied ({self.blobs_present:,} already there)"]
        out += [f"  {name:18} {n:>12,} rows" for name, n in self.tables.items() if n]
        out += [f"  {phase:18} {s:>12.1f} s" for phase, s in self.seconds.items()]
        out += [f"  not copied (content is not its name): {p}" for p in self.blobs_corrupt]
        return out

    def as_dict(self) -> dict:
        return asdict(self)


# I/O
class Migration:
    def __init__(self, source: Ends, target: Ends, batch: int = 5000, progress: Progress | None = None):
        if batch < 1:
            raise MigrationError(f"--batch must be at least 1, not {batch}")
        self.source, self.target, self.batch = source, target, batch
        self.say: Progress = progress or (lambda _line: None)
        self.events_commit = batch * EVENTS_PER_ROW
        self.marker_path = target.blobs / MARKER
        self.same_blobs = source.blobs.resolve() == target.blobs.resolve()

    def run(self) -> Summary:
        marker, resumed = self._start()
        seconds: dict[str, float] = {}
        t = time.perf_counter()
        self._copy_tables(marker)
        seconds["rows"], t = time.perf_counter() - t, time.perf_counter()
        counts = self._event_counts()
        self._copy_events(marker, counts)
        seconds["events"], t = time.perf_counter() - t, time.perf_counter()
        copied, present, corrupt = self._copy_blobs(marker)
        seconds["blobs"] = time.perf_counter() - t
        summary = self._check(counts, copied, present, corrupt, resumed, seconds)
        self.marker_path.unlink(missing_ok=True)
        return summary

    # start or resume
    def _start(self) -> tuple[Marker, bool]:
        me = Marker(self.source.described(), self.target.described())
        if self.marker_path.exists():
            try:
                found = Marker.from_json(self.marker_path.read_text())
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise MigrationError(f"the target's {self.marker_path} cannot be read ({exc}): "
                                     "empty the target and start again") from None
            if (found.source, found.target) != (me.source, me.target):
                raise MigrationError(f"the target holds a migration from another source or into other stores "
                                     f"({self.marker_path}: {found.source}): finish that one, or empty the target")
            self.say(f"resuming: {len(found.tables)} tables, {len(found.events)} captures' events"
                     f"{', the blobs' if found.blobs else ''} were copied")
            return found, True
        if why := self._not_empty():
            raise MigrationError(f"the target is not empty ({why}): migrate only into empty stores")
        self._save(me)
        return me, False

    def _not_empty(self) -> str | None:
        with self.target.db.engine.connect() as conn:
            for t in metadata.sorted_tables:
                if conn.execute(sa.select(sa.literal(1)).select_from(t).limit(1)).first() is not None:
                    return f"table {t.name} of {hidden(str(self.target.db.url))} has rows"
        if self.target.events.search(None, limit=1).total:
            return f"the event index {hidden(self.target.events_name)} has events"
        if not self.same_blobs and self.target.blobs.exists() and \
                next((p for p in self.target.blobs.rglob("*") if p.is_file()), None) is not None:
            return f"the blob folder {self.target.blobs} has files"
        return None

    def _save(self, marker: Marker) -> None:
        self.target.blobs.mkdir(parents=True, exist_ok=True)
        tmp = self.marker_path.with_name(f"{MARKER}.tmp-{uuid.uuid4().hex}")
        tmp.write_text(json.dumps(asdict(marker)))
        os.replace(tmp, self.marker_path)

    # rows
    def _copy_tables(self, marker: Marker) -> None:
        todo = plan_tables(marker.tables)
        with self.target.db.engine.begin() as conn:  # what a crash (or the target's own start) left
            for t in reversed(todo):
                conn.execute(t.delete())
        for table in todo:
            n = self._copy_table(table)
            marker.tables.append(table.name)
            self._save(marker)
            if n:
                self.say(f"rows: {table.name} {n:,}")

    def _copy_table(self, table: sa.Table) -> int:
        pg = self.target.db.engine.dialect.name == "postgresql"
        insert = _insert(table, pg)
        n, shown = 0, time.monotonic()
        with self.source.db.engine.connect() as src:
            rows = src.execution_options(stream_results=True, yield_per=self.batch).execute(_select(table))
            for part in rows.partitions(self.batch):
                batch = [dict(r._mapping) for r in part]
                try:
                    with self.target.db.engine.begin() as dst:
                        dst.execute(insert, batch)
                except sa.exc.DBAPIError as exc:
                    raise MigrationError(f"the target database refused a row of table {table.name}"
                                         f"{self._culprit(table, insert, batch)}: {_first_line(exc)}") from None
                n += len(batch)
                if time.monotonic() - shown >= PROGRESS_SECONDS:
                    self.say(f"rows: {table.name} {n:,} ...")
                    shown = time.monotonic()
        if pg and (col := table.autoincrement_column) is not None:
            with self.target.db.engine.begin() as dst:  # ids made later follow the copied ones
                dst.execute(sa.text(f"SELECT setval(pg_get_serial_sequence(:t, :c), MAX({col.name})) "
                                    f"FROM {table.name} HAVING MAX({col.name}) IS NOT NULL"),
                            {"t": table.name, "c": col.name})
        return n

    def _culprit(self, table: sa.Table, insert: sa.Insert, batch: list[dict]) -> str:
        """Which row of a refused batch the target refuses, by its key (bounded), tried one at a
        time (the table is copied again on the next run anyway)."""
        key = [c.name for c in table.primary_key.columns] or [c.name for c in table.columns][:2]
        for row in batch:
            try:
                with self.target.db.engine.begin() as dst:
                    dst.execute(insert, [row])
            except sa.exc.DBAPIError:
                return " (" + ", ".join(f"{k}={str(row[k])[:60]!r}" for k in key) + ")"
        return ""

    # events
    def _capture_ids(self) -> list[str]:
        with self.source.db.engine.connect() as conn:
            return list(conn.execute(sa.select(captures.c.id).order_by(captures.c.submitted_at, captures.c.id))
                        .scalars())

    def _event_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for part in chunks(self._capture_ids(), 1000):
            found = self.source.events.documents(part)
            counts.update({cid: found.get(cid, 0) for cid in part})
        return counts

    def _copy_events(self, marker: Marker, counts: dict[str, int]) -> None:
        todo = plan_events(counts, marker.events)
        pending: list[str] = []
        waiting = 0
        total, done = sum(counts.values()), sum(counts[c] for c in marker.events if c in counts)
        for i, cid in enumerate(todo, 1):
            waiting += _events_step(cid, partial(self.target.events.index_capture, cid, self.source.events.export(cid)))
            pending.append(cid)
            if waiting >= self.events_commit or i == len(todo):
                _events_step(cid, self.target.events.commit)
                marker.events += pending
                self._save(marker)
                done += waiting
                pending, waiting = [], 0
                self.say(f"events: {done:,}/{total:,} ({len(marker.events):,} captures)")

    # blobs
    def _copy_blobs(self, marker: Marker) -> tuple[int, int, list[str]]:
        copied, present, corrupt = 0, 0, []
        if marker.blobs or self.same_blobs:
            return 0, 0, []
        for kind, name, path in _blob_files(self.source.blobs):
            dest = self.target.blobs / kind / name[:2] / name
            if dest.exists():
                present += 1
                continue
            try:
                ok = _copy_file(path, dest, check=name if kind in HASHED_KINDS else None)
            except OSError as exc:
                raise MigrationError(f"cannot copy blob {kind}/{name}: {exc.strerror or exc}") from None
            if ok:
                copied += 1
            else:
                corrupt.append(f"{kind}/{name}")
            if (copied + present) % 500 == 0:
                self.say(f"blobs: {copied + present:,} ...")
        marker.blobs = True
        self._save(marker)
        self.say(f"blobs: {copied:,} copied, {present:,} already there")
        return copied, present, corrupt

    # the check
    def _check(self, counts: dict[str, int], copied: int, present: int, corrupt: list[str],
               resumed: bool, seconds: dict[str, float]) -> Summary:
        rows_s, rows_t = _row_counts(self.source.db), _row_counts(self.target.db)
        wrong = compare(rows_s, rows_t)
        theirs: dict[str, int] = {}
        for part in chunks(counts, 1000):
            theirs.update(self.target.events.documents(part))
        wrong += compare({k: v for k, v in counts.items() if v}, theirs)
        if wrong:
            raise MigrationError(f"the copy differs from the source in {len(wrong)} places (first: "
                                 f"{'; '.join(wrong[:3])}); run the command again to redo what is not done")
        return Summary(rows_s, sum(1 for n in counts.values() if n), sum(counts.values()), copied, present,
                       corrupt, resumed, {k: round(v, 2) for k, v in seconds.items()})


def _events_step(cid: str, step: Callable[[], T]) -> T:
    """A step of copying a capture's events; either index failing (a full disk, a server gone) is one line."""
    try:
        return step()
    except Exception as exc:
        raise MigrationError(f"copying the events of capture {cid} failed: {_first_line(exc)}") from None


def _select(table: sa.Table) -> sa.Select:
    """Every column; JSON as its stored text, so SQL NULL and JSON null stay apart."""
    return sa.select(*(sa.cast(c, sa.Text).label(c.name) if isinstance(c.type, sa.JSON) else c
                       for c in table.columns))


def _insert(table: sa.Table, pg: bool) -> sa.Insert:
    """An insert taking JSON columns as text (PostgreSQL casts it; SQLite keeps it)."""
    def value(c: sa.Column):
        param = sa.bindparam(c.name, type_=sa.Text if isinstance(c.type, sa.JSON) else c.type)
        return sa.cast(param, postgresql.JSON) if pg and isinstance(c.type, sa.JSON) else param
    return table.insert().values({c.name: value(c) for c in table.columns})


def _row_counts(db: Database) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in metadata.sorted_tables}


def _blob_files(root: Path) -> Iterator[tuple[str, str, Path]]:
    """(kind, name, path) of every blob: <root>/<kind>/<name[:2]>/<name>, names a sha256 (left-over
    temporary files and anything else are not blobs)."""
    for kind in BLOB_KINDS:
        base = root / kind
        if not base.is_dir():
            continue
        for sub in sorted(base.iterdir()):
            if sub.is_dir() and not sub.is_symlink():
                for p in sorted(sub.iterdir()):
                    if _SHA256.fullmatch(p.name) and p.name[:2] == sub.name:
                        yield kind, p.name, p


def _copy_file(src: Path, dest: Path, check: str | None) -> bool:
    """Copy into place through a temporary file (a crash never leaves half a blob); with `check`,
    only if the content's sha256 is it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.tmp-{uuid.uuid4().hex}")
    digest = hashlib.sha256()
    try:
        with open_regular(src) as f, open(tmp, "xb") as out:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        if check is not None and digest.hexdigest() != check:
            tmp.unlink()
            return False
        os.replace(tmp, dest)
        return True
    finally:
        tmp.unlink(missing_ok=True)
