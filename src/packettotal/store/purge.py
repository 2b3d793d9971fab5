"""Deleting a capture from the relational store: its row and everything that cascades from it
(observables, files, sightings, findings, labels, hunt hits, nDPI flows, certificates, NetBIOS
names, registered domains, stats, intel hits), its values' document frequency, and the YARA scans
of carved files no other capture holds. One transaction, under the database's one writer."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from ..errors import Conflict, NotFound
from .db import Database, captures, files, yara_matches, yara_scans

FINISHED = ("done", "failed")  # a capture queued or being analysed is refused, not cancelled


@dataclass(frozen=True)
class Purged:
    capture: dict          # the row as it was
    files_gone: list[str]  # sha256 of the carved files no capture holds any more (their blobs go)


def purge_capture(db: Database, capture_id: str) -> Purged:
    """Raises NotFound, or Conflict while the capture is queued or being analysed (checked in the
    transaction that deletes it, so a job cannot start on it between the check and the delete)."""
    c, f = captures.c, files.c
    with db._write, db.engine.begin() as conn:
        row = conn.execute(sa.select(captures).where(c.id == capture_id)).mappings().first()
        if row is None:
            raise NotFound(f"no capture {capture_id}")
        if row["status"] not in FINISHED:
            raise Conflict(f"capture {capture_id[:12]} is {row['status']}: it can be deleted once its "
                           "analysis has finished")
        mine = set(conn.execute(sa.select(f.sha256).where(f.capture_id == capture_id)).scalars())
        db._count_values(conn, [capture_id], -1)
        conn.execute(sa.delete(captures).where(c.id == capture_id))  # the rest: ON DELETE CASCADE
        held = set(conn.execute(sa.select(f.sha256).distinct().where(f.sha256.in_(list(mine)))).scalars()) \
            if mine else set()
        gone = sorted(mine - held)
        if gone:
            conn.execute(sa.delete(yara_matches).where(yara_matches.c.sha256.in_(gone)))
            conn.execute(sa.delete(yara_scans).where(yara_scans.c.sha256.in_(gone)))
    return Purged(dict(row), gone)
