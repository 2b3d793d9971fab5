"""Schema benchmark: opening a database through store/schema.py, on the embedded SQLite file and
on PostgreSQL: an empty one (every table made, stamped at the head) and a current one (the
revision read and compared), each the median of several runs.

Usage: python bench/schema.py [--runs 5] [--admin postgresql://pt:pt@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import psycopg  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from packettotal.store.db import Database  # noqa: E402


def timed(url: str) -> float:
    start = time.perf_counter()
    db = Database.from_url(url)
    took = time.perf_counter() - start
    db.close()
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--admin", default="postgresql://pt:pt@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    Database.from_url("sqlite://").close()  # imports and the first engine out of the way
    results: dict[str, dict[str, list[float]]] = {"SQLite": {"create": [], "reopen": []},
                                                  "PostgreSQL": {"create": [], "reopen": []}}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'db.sqlite'}"
            results["SQLite"]["create"].append(timed(url))
            results["SQLite"]["reopen"].append(timed(url))
        name = f"pt_bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(args.admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            url = sa.engine.make_url(args.admin).set(database=name).render_as_string(hide_password=False)
            results["PostgreSQL"]["create"].append(timed(url))
            results["PostgreSQL"]["reopen"].append(timed(url))
        finally:
            with psycopg.connect(args.admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    print(f"median of {args.runs} runs, milliseconds (an open includes the engine's first connection)")
    print(f"{'':12} {'create':>8} {'reopen':>8}")
    med = {d: {k: statistics.median(v) * 1000 for k, v in r.items()} for d, r in results.items()}
    for dialect, row in med.items():
        print(f"{dialect:12} {row['create']:8.1f} {row['reopen']:8.1f}")
    print(f"{'PG / SQLite':12} {med['PostgreSQL']['create'] / med['SQLite']['create']:7.1f}x "
          f"{med['PostgreSQL']['reopen'] / med['SQLite']['reopen']:7.1f}x")


if __name__ == "__main__":
    main()
