"""The relational schema's revision (Alembic, store/migrations/): made whole in an empty database,
brought up to the code's revision in one made before."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex

from ..errors import ConfigError
from . import accounts  # noqa: F401  (its tables are part of the metadata)
from .db import _alerts, capture_stats, captures, chunks, make_engine, metadata, observables, value_counts

if TYPE_CHECKING:
    from alembic.config import Config

BASELINE = "0001"  # the schema as it was when Alembic took over
# the newest revision in migrations/versions (tests/test_migrations.py checks): a database at it
# opens without importing Alembic (~0.2 s of every command)
HEAD = "0003"
LOCK_KEY = 0x5041_4354  # "PACT": PostgreSQL's advisory lock on the schema (two nodes starting together)
MIGRATIONS = Path(__file__).with_name("migrations")


class BehindHead(ConfigError):
    """A PostgreSQL database of an older revision: upgrading is the operator's step."""

    code = "database_behind"


def alembic_config(conn: sa.Connection) -> Config:
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    return cfg


def head() -> str:
    return HEAD


def current(conn: sa.Connection) -> str | None:
    """The database's revision; None: never stamped (empty, or from before Alembic)."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _command(name: str, conn: sa.Connection, revision: str) -> None:
    """alembic.command's stamp or upgrade, on this connection."""
    from alembic import command
    getattr(command, name)(alembic_config(conn), revision)


@contextlib.contextmanager
def locked(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection holding the schema's lock (PostgreSQL: an advisory lock, released after)."""
    with engine.connect() as conn:
        pg = engine.dialect.name == "postgresql"
        if pg:
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
            conn.commit()
        try:
            yield conn
            conn.commit()
        finally:
            if pg:
                conn.rollback()
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                conn.commit()


def prepare(engine: sa.Engine, upgrade: bool = False) -> None:
    """An empty database: every table, stamped at the head. One from before Alembic: the old
    upkeep (tables and indexes added since, counts backfilled), stamped at the baseline, then
    upgraded (nobody chose its revision). One behind the head: SQLite upgrades itself; PostgreSQL refuses (`db upgrade`)
    unless `upgrade`."""
    with locked(engine) as conn:
        revision = current(conn)
        if revision is None:
            if not sa.inspect(conn).has_table(captures.name):
                metadata.create_all(conn)
                _command("stamp", conn, "head")
                return
            _old_upkeep(conn)  # from before the migrations: brought to the head at once, either dialect
            _command("stamp", conn, BASELINE)
            _command("upgrade", conn, "head")
            return
        if revision == head():
            return
        if engine.dialect.name != "sqlite" and not upgrade:
            raise BehindHead(f"the database is at revision {revision}, the code needs {head()}: "
                             "run `packettotal db upgrade` (once, from one node) and start again")
        _command("upgrade", conn, "head")


def upgrade(url: str) -> tuple[str | None, str]:
    """Bring the database at `url` to the head, PostgreSQL's too: (its revision before, after)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            before = current(conn)
        prepare(engine, upgrade=True)
        return before, head()
    finally:
        engine.dispose()


def revision(url: str) -> tuple[str | None, str]:
    """(the revision of the database at `url`, the code's)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return current(conn), head()
    finally:
        engine.dispose()


def _old_upkeep(conn: sa.Connection) -> None:
    """What every open did before Alembic: tables and indexes added since a database was made,
    and the counts of tables added later filled once."""
    metadata.create_all(conn)
    for table in metadata.sorted_tables:
        for index in table.indexes:  # IF NOT EXISTS: an index on an expression cannot be looked up first
            conn.execute(CreateIndex(index, if_not_exists=True))
    if conn.execute(sa.select(value_counts.c.value).limit(1)).first() is None:
        o = observables.c
        conn.execute(sa.insert(value_counts).from_select(
            ["value", "captures"], sa.select(o.value, sa.func.count(sa.distinct(o.capture_id))).group_by(o.value)))
    c = captures.c
    if conn.execute(sa.select(capture_stats.c.capture_id).limit(1)).first() is None:
        rows = conn.execute(sa.select(c.id, c.summary).where(c.summary.is_not(None))).all()
        for part in chunks(rows, 5000):
            conn.execute(sa.insert(capture_stats), [{"capture_id": cid, "alerts": _alerts(summary)}
                                                    for cid, summary in part])
