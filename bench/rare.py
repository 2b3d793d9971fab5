"""What the rare_domain finding (ingest/rare.py) costs and how often it speaks.

1. The small dev captures, analysed one after another into a fresh home (one daemon): each
   analysis end to end, and within it the judging (`service._judge_domains`: registered domains,
   the store's history, the decision), side by side; and on how many captures the finding fired.
2. The store's history query alone on a large synthetic instance (--captures captures holding
   --domains registered domains each, drawn so that a few are common and most are rare) for a
   capture of 50 and of 2,000 registered domains, against the dev captures' median analysis.
Usage: python bench/rare.py [--captures 5000] [--domains 40] [--rounds 20] [--baseline 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import small_captures  # noqa: E402

from packettotal import config  # noqa: E402
from packettotal.ingest import rare  # noqa: E402
from packettotal.service import PacketTotal  # noqa: E402
from packettotal.store import db as db_mod  # noqa: E402


def dev_run(home: Path, baseline: int) -> tuple[list[float], list[float], int, int, int, int]:
    """(analysis seconds, judging seconds, captures analysed, those holding registered domains,
    those with rare_domain, those of them where it is `info`)."""
    pt = PacketTotal(config.load(env={}, home=home, engines=1, rare_domain_baseline=baseline))
    judging: list[float] = []
    judge = pt._judge_domains

    def timed(results: list[dict]) -> None:
        t = time.perf_counter()
        judge(results)
        judging.append(time.perf_counter() - t)
    pt._judge_domains = timed  # type: ignore[method-assign]
    total, fired, info, done, holding = [], 0, 0, 0, 0
    try:
        for path in small_captures():
            try:
                sub = pt.submit(path, path.name)
            except Exception:  # refused: not part of the figure
                continue
            t = time.perf_counter()
            row = pt.analyse(sub.capture["id"])
            total.append(time.perf_counter() - t)
            if row["status"] == "done":
                done += 1
                found = [f["severity"] for f in row["summary"]["findings"] if f["name"] == "rare_domain"]
                fired += bool(found)
                info += found == ["info"]
                holding += bool(rare.domains_of(pt._db.capture_observables(row["id"], "domain")))
    finally:
        pt.close()
    return total, judging, done, holding, fired, info


def counted_in_full(db: db_mod.Database, capture_id: str, domains: list[str]) -> tuple[int, dict[str, int]]:
    """The same answer without the bounds: every earlier capture counted (a GROUP BY over all
    the rows of these domains), the reference the bounded counts are set beside."""
    c, d = db_mod.captures.c, db_mod.capture_domains.c
    with db.engine.connect() as conn:
        at = conn.execute(sa.select(c.submitted_at).where(c.id == capture_id)).scalar()
        earlier = sa.and_(sa.or_(c.submitted_at < at, sa.and_(c.submitted_at == at, c.id < capture_id)),
                          c.id != capture_id)
        baseline = conn.execute(sa.select(sa.func.count()).select_from(db_mod.captures).where(
            earlier, sa.exists().where(d.capture_id == c.id))).scalar_one()
        held: dict[str, int] = {}
        for chunk in db_mod.chunks(domains):
            held.update((dom, n) for dom, n in conn.execute(
                sa.select(d.domain, sa.func.count()).join(db_mod.captures, c.id == d.capture_id)
                .where(d.domain.in_(chunk), earlier).group_by(d.domain)))
    return baseline, held


def synthetic(home: Path, n: int, per: int, rounds: int) -> dict[int, tuple[float, float]]:
    """Median seconds of `domain_history` and of counting in full, for captures of 50 and 2,000
    registered domains."""
    rng = random.Random(7)
    db = db_mod.Database.sqlite(home / "synthetic.sqlite")
    t0 = dt.datetime(2026, 1, 1)
    common = [f"common{i}.com" for i in range(200)]
    caps, rows = [], []
    for i in range(n + 1):
        cid = f"{i:064x}"
        caps.append({"id": cid, "md5": cid[:32], "sha1": cid[:40], "name": f"c{i}", "size": 1, "status": "done",
                     "warnings": [], "attempts": 0, "submitted_at": t0 + dt.timedelta(seconds=i)})
        mine = {rng.choice(common) for _ in range(per // 2)}
        mine |= {f"r{rng.randrange(n * per)}.net" for _ in range(per // 2)}
        rows += [{"capture_id": cid, "domain": d} for d in mine]
    with db.engine.begin() as conn:
        conn.execute(db_mod.captures.insert(), caps)
        for part in db_mod.chunks(rows, 5000):
            conn.execute(db_mod.capture_domains.insert(), part)
    last = caps[-1]["id"]
    out = {}
    for size in (50, 2000):
        domains = common[:size // 5] + [f"r{rng.randrange(n * per)}.net" for _ in range(size - size // 5)]
        bounded, full = [], []
        for _ in range(rounds):  # alternately
            t = time.perf_counter()
            got = db.domain_history(last, domains, [last], 20, 1)
            bounded.append(time.perf_counter() - t)
            t = time.perf_counter()
            ref = counted_in_full(db, last, domains)
            full.append(time.perf_counter() - t)
        assert got[1] == {k: min(v, 1) for k, v in ref[1].items()} and got[0] == min(ref[0], 20)
        out[size] = (statistics.median(bounded), statistics.median(full))
    db.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--captures", type=int, default=5000)
    ap.add_argument("--domains", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--baseline", type=int, default=20, help="rare_domain_baseline for the dev captures")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        total, judging, done, holding, fired, info = dev_run(Path(tmp) / "dev", a.baseline)
        print(f"{done} dev captures analysed one after another, {holding} holding registered domains "
              f"(rare_domain_baseline {a.baseline}): rare_domain on {fired} ({info} of them info)")
        share = sum(judging) / sum(total)
        print(f"  analysis median {statistics.median(total) * 1000:,.1f} ms   judging median "
              f"{statistics.median(judging) * 1000:,.2f} ms   judging's share of all analysis {share:.2%}")
        hist = synthetic(Path(tmp), a.captures, a.domains, a.rounds)
        med = statistics.median(total)
        print(f"synthetic instance: {a.captures:,} earlier captures, {a.domains} registered domains each")
        for size, (s, full) in hist.items():
            print(f"  history of a capture of {size:,} domains: bounded {s * 1000:,.1f} ms   counted in full "
                  f"{full * 1000:,.1f} ms   full/bounded {full / s:.1f}x   bounded = {s / med:.2%} of a dev "
                  f"capture's median analysis ({med * 1000:,.0f} ms)")


if __name__ == "__main__":
    main()
