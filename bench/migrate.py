"""Migration benchmark: `packettotal migrate` of a corpus of ~5 million events.

The corpus is bench/search.py's (the dev captures analysed once by real Suricata, remapped into
thousands of synthetic captures through the ingest pipeline and the stores), built once under
--home (default /tmp/pt-bench-migrate-home) and reused. Measured, each into fresh targets:
  rows    SQLite -> SQLite and SQLite -> PostgreSQL (every table, `batch` rows a transaction)
  events  tantivy -> tantivy (every capture exported from the source and indexed into the target)
and printed as rows/s, events/s and the ratios. The PostgreSQL run needs --pg (an admin URL of a
server where a database may be created; skipped without it).

Usage: python bench/migrate.py [--captures 5000] [--min-events 5000000] [--batch 5000]
                               [--pg postgresql://pt:pt@127.0.0.1:5432/postgres] [--home DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search import build  # noqa: E402

from packettotal.store import migrate  # noqa: E402
from packettotal.store.db import Database  # noqa: E402
from packettotal.store.events.tantivy import TantivyEventStore  # noqa: E402


def source(home: Path) -> migrate.Ends:
    return migrate.Ends(Database.sqlite(home / "packettotal.sqlite"), TantivyEventStore(home / "events"),
                        home / "blobs", str(home / "events"))


def rows_only(home: Path, db_url: str, work: Path, batch: int) -> tuple[float, int]:
    """Seconds and rows of copying the tables alone into `db_url`."""
    src = source(home)
    dst = migrate.open_ends(db_url, str(work / "events"), work / "blobs")
    try:
        m = migrate.Migration(src, dst, batch)
        marker, _ = m._start()
        t = time.perf_counter()
        m._copy_tables(marker)
        seconds = time.perf_counter() - t
        return seconds, sum(migrate._row_counts(dst.db).values())
    finally:
        src.close()
        dst.close()


def everything(home: Path, work: Path, batch: int) -> migrate.Summary:
    src = source(home)
    dst = migrate.open_ends(f"sqlite:///{work / 'packettotal.sqlite'}", str(work / "events"), work / "blobs")
    try:
        return migrate.Migration(src, dst, batch, progress=lambda line: None).run()
    finally:
        src.close()
        dst.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path, default=Path(tempfile.gettempdir()) / "pt-bench-migrate-home")
    ap.add_argument("--captures", type=int, default=5000)
    ap.add_argument("--events-per-capture", type=int, default=1000)
    ap.add_argument("--min-events", type=int, default=5_000_000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--pg", default="", help="admin URL of a PostgreSQL server (a database is created and dropped)")
    args = ap.parse_args()
    t = time.perf_counter()
    build(args.home, args.captures, args.events_per_capture, args.min_events)
    print(f"corpus ready in {time.perf_counter() - t:.0f} s: {args.home}")

    with tempfile.TemporaryDirectory(prefix="pt-bench-migrate-") as tmp:
        work = Path(tmp)
        full = everything(args.home, work / "sqlite", args.batch)
        rows = sum(full.tables.values())
        print(f"\ncorpus: {full.captures:,} captures, {full.events:,} events, {rows:,} rows in "
              f"{sum(1 for n in full.tables.values() if n)} tables (checked after each copy)")
        print(f"SQLite -> SQLite, all of it: rows {full.seconds['rows']:.1f} s, events {full.seconds['events']:.1f} s")
        lite_s, lite_rows = rows_only(args.home, f"sqlite:///{work / 'rows.sqlite'}", work / "rows", args.batch)
        print(f"rows     SQLite -> SQLite      {lite_s:8.1f} s  {lite_rows / lite_s:10,.0f} rows/s")
        if args.pg:
            name = f"pt_bench_{uuid.uuid4().hex[:10]}"
            admin = sa.create_engine(migrate.engine_url(args.pg), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f"CREATE DATABASE {name}"))
            try:
                url = sa.engine.make_url(args.pg).set(database=name).render_as_string(hide_password=False)
                pg_s, pg_rows = rows_only(args.home, url, work / "pg", args.batch)
                print(f"rows     SQLite -> PostgreSQL  {pg_s:8.1f} s  {pg_rows / pg_s:10,.0f} rows/s   "
                      f"ratio PostgreSQL/SQLite time {pg_s / lite_s:.2f}x")
            finally:
                with admin.connect() as conn:
                    conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                admin.dispose()
        ev_s = full.seconds["events"]
        print(f"events   tantivy -> tantivy    {ev_s:8.1f} s  {full.events / ev_s:10,.0f} events/s   "
              f"ratio events/s to rows/s (SQLite) {full.events / ev_s / (lite_rows / lite_s):.2f}")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
