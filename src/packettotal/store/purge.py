"""Deleting a capture from the relational store: its row and everything that cascades from it
(observables, files, sightings, findings, labels, hunt hits, nDPI flows, certificates, NetBIOS
names, registered domains, stats, intel hits), its values' document frequency, and the YARA scans
of carved files no other capture holds. In two steps around the deletion of its events: marked
`deleting` (then nothing reads or analyses it), then its rows in one transaction."""

from __future__ import annotations

import sqlalchemy as sa

from ..errors import Conflict, NotFound
from .db import Database, captures, files, yara_matches, yara_scans

FINISHED = ("done", "failed")  # a capture queued or being analysed is refused, not cancelled
DELETING = "deleting"  # marked: its events are being deleted; its rows go once they are


def mark_deleting(db: Database, capture_id: str) -> dict:
    """The capture marked `deleting` (its row as it was). Raises NotFound, or Conflict while it is
    queued or being analysed: checked in the same transaction, so no job starts on it in between,
    and none will (jobs take `queued` captures; re-analysis only `done` or `failed` ones)."""
    c = captures.c
    with db._write, db.engine.begin() as conn:
        row = conn.execute(sa.select(captures).where(c.id == capture_id)).mappings().first()
        if row is None:
            raise NotFound(f"no capture {capture_id}")
        if row["status"] not in (*FINISHED, DELETING):
            raise Conflict(f"capture {capture_id[:12]} is {row['status']}: it can be deleted once its "
                           "analysis has finished")
        conn.execute(sa.update(captures).where(c.id == capture_id).values(status=DELETING))
    return dict(row)


def marked(db: Database) -> list[str]:
    """Captures whose deletion was cut short (the process stopped before their rows went)."""
    with db.engine.connect() as conn:
        return list(conn.execute(sa.select(captures.c.id).where(captures.c.status == DELETING)).scalars())


def purge_capture(db: Database, capture_id: str) -> list[str] | None:
    """Delete a capture marked `deleting` and its rows; the sha256 of the carved files no capture
    holds any more (their blobs are the caller's to remove). None: no such capture is marked (another
    process starting up finished it)."""
    c, f = captures.c, files.c
    with db._write, db.engine.begin() as conn:
        if conn.execute(sa.select(c.status).where(c.id == capture_id)).scalar() != DELETING:
            return None
        mine = set(conn.execute(sa.select(f.sha256).where(f.capture_id == capture_id)).scalars())
        db._count_values(conn, [capture_id], -1)
        conn.execute(sa.delete(captures).where(c.id == capture_id))  # the rest: ON DELETE CASCADE
        held = set(conn.execute(sa.select(f.sha256).distinct().where(f.sha256.in_(list(mine)))).scalars()) \
            if mine else set()
        gone = sorted(mine - held)
        if gone:
            conn.execute(sa.delete(yara_matches).where(yara_matches.c.sha256.in_(gone)))
            conn.execute(sa.delete(yara_scans).where(yara_scans.c.sha256.in_(gone)))
    return gone
