"""Visibility benchmark: what scoping every read to the viewer's captures costs, side by side.

A fresh home with the demo capture (analysed by Suricata, public) and --private other captures
(rows only, each a private upload of one user), in mode public. Median of --rounds requests
(in-process TestClient) of the capture list, a search and an IOC pivot, each:
  single    mode single: no view (the service itself)
  admin     mode public, an admin's key: a view that reads everything (no hidden set)
  analyst   mode public, another analyst's key: every private capture hidden (the uploads query,
            NOT IN lists, counts less the hidden captures' holdings)
Usage: python bench/visibility.py [--rounds N] [--private N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from auth import app, demo_capture, timed  # noqa: E402

from packettotal.store.db import now  # noqa: E402

PASSWORD = "bench password"
PATHS = {"list": "/api/v1/captures", "search": "/api/v1/search?q=dns.rrname:*.example.com",
         "pivot": "/api/v1/ioc/downloads.example.com"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--private", type=int, default=2000)
    a = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="pt-bench-vis-"))
    with app(home, "single") as c:
        demo_capture(c, home)
        service = c.app.state.instance.service
        db = service._db  # the bench fills rows directly: thousands of analyses would take an hour
        for i in range(a.private):
            fake = f"{i:064x}"
            db.insert_capture({"id": fake, "md5": fake[:32], "sha1": fake[:40], "size": 1, "name": f"p{i}.pcap",
                               "status": "done", "warnings": [], "attempts": 0, "submitted_at": now()})
            db.record_upload(fake, "owner", "private")
        keys = {}
        for name, role in (("root", "admin"), ("other", "analyst")):
            service.accounts.add_user(name, role, PASSWORD)
            keys[name] = service.accounts.create_key(name, user=name)[1]
        rows = {"single": {k: timed(lambda p=p: c.get(p), a.rounds) for k, p in PATHS.items()}}
    with app(home, "public") as c:
        for label, name in (("admin", "root"), ("analyst", "other")):
            h = {"x-api-key": keys[name]}
            rows[label] = {k: timed(lambda p=p, h=h: c.get(p, headers=h), a.rounds) for k, p in PATHS.items()}
    print(f"{'':<9}" + "".join(f"{k:>10} {'ratio':>6}" for k in PATHS)
          + f"   (median ms, {a.rounds} rounds, {a.private} private captures)")
    for label, r in rows.items():
        print(f"{label:<9}" + "".join(f"{r[k]:>10.2f} {r[k] / rows['single'][k]:>6.2f}" for k in PATHS))


if __name__ == "__main__":
    main()
