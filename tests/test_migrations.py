"""The schema's migrations (store/schema.py, store/migrations/) on both dialects: a database they
make is the metadata exactly, an old SQLite file is brought up to it, a PostgreSQL database behind
the code refuses to open, and `db upgrade` brings it up."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import uuid
from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from packettotal.service import PacketTotal
from packettotal.store import schema
from packettotal.store.db import Database, capture_stats, make_engine, metadata, value_counts

from .conftest import ON_PG, TEST_DATABASE_URL, settings

ADMIN = TEST_DATABASE_URL if ON_PG else "postgresql://pt:pt@127.0.0.1:5432/postgres"


def _pg_up() -> bool:
    try:
        psycopg.connect(ADMIN, connect_timeout=3).close()
    except psycopg.OperationalError:
        return False
    return True


needs_pg = pytest.mark.skipif(not _pg_up(), reason=f"no PostgreSQL at {ADMIN} (scripts/setup-services.sh)")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database of its own, dropped after."""
    name = f"pt_migrations_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield sa.engine.make_url(ADMIN).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def differences(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()


def test_the_code_s_head_is_the_newest_migration():
    from alembic.script import ScriptDirectory
    assert ScriptDirectory(str(schema.MIGRATIONS)).get_current_head() == schema.HEAD


def test_an_empty_sqlite_database_is_the_metadata_at_the_head(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    Database.from_url(url).close()
    assert differences(url) == []
    assert schema.revision(url) == (schema.head(), schema.head())


@needs_pg
def test_an_empty_postgresql_database_is_the_metadata_at_the_head(pg_url):
    Database.from_url(pg_url).close()
    assert differences(pg_url) == []
    assert schema.revision(pg_url) == (schema.head(), schema.head())


@needs_pg
def test_two_nodes_opening_an_empty_postgresql_database_together_make_it_once(pg_url):
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            Database.from_url(pg_url).close()
        except BaseException as exc:  # noqa: B036  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and differences(pg_url) == []


def old_sqlite_file(path) -> None:
    """A database as the version before the migrations left it: no alembic_version, and the
    tables added last (value counts, alert counts) missing, with a capture analysed."""
    Database.from_url(f"sqlite:///{path}").close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO captures (id, md5, sha1, name, size, status, warnings, attempts, submitted_at, summary) "
               "VALUES ('c1', 'm', 's', 'old.pcap', 1, 'done', '[]', 1, '2024-01-01 00:00:00', '{\"alerts\": 3}')")
    db.execute("INSERT INTO observables VALUES ('c1', 'domain', 'old.example', 'dns.rrname', 2, NULL, NULL)")
    for table in ("alembic_version", "value_counts", "capture_stats"):
        db.execute(f"DROP TABLE {table}")
    db.execute("DROP INDEX ix_captures_name")  # an index added since
    db.commit()
    db.close()


def test_a_sqlite_file_from_before_the_migrations_is_upgraded_and_stamped(tmp_path):
    path = tmp_path / "old.sqlite"
    old_sqlite_file(path)
    url = f"sqlite:///{path}"
    assert schema.revision(url) == (None, schema.head())
    db = Database.from_url(url)
    try:
        with db.engine.connect() as conn:
            assert dict(conn.execute(value_counts.select()).all()) == {"old.example": 1}
            assert conn.execute(capture_stats.select()).all() == [("c1", 3)]
    finally:
        db.close()
    assert differences(url) == []
    assert schema.revision(url) == (schema.head(), schema.head())  # stamped at the baseline, then upgraded


NOW, LATER = schema.HEAD, "9999"  # the code's revision, and one after it made by the test
SECOND = f'''"""A later revision, as the next one will be."""
import sqlalchemy as sa
from alembic import op

revision = "{LATER}"
down_revision = "{NOW}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("later", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("later")
'''


@pytest.fixture
def newer_code(tmp_path, monkeypatch):
    """The code one revision on: the package's migrations and one more adding a table."""
    folder = tmp_path / "migrations"
    shutil.copytree(schema.MIGRATIONS, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "versions" / f"{LATER}_later.py").write_text(SECOND)
    monkeypatch.setattr(schema, "MIGRATIONS", folder)
    monkeypatch.setattr(schema, "HEAD", LATER)


def has_later(url: str) -> bool:
    engine = make_engine(url)
    try:
        return sa.inspect(engine).has_table("later")
    finally:
        engine.dispose()


@needs_pg
def test_a_postgresql_database_behind_the_code_refuses_to_open_until_db_upgrade(pg_url, tmp_path, request):
    Database.from_url(pg_url).close()  # at the code's revision
    request.getfixturevalue("newer_code")
    behind = fr"at revision {NOW}, the code needs {LATER}: run `packettotal db upgrade`"
    with pytest.raises(schema.BehindHead, match=behind):
        Database.from_url(pg_url)
    assert not has_later(pg_url)
    s = settings(tmp_path / "home", database_url=pg_url)
    assert PacketTotal.database_revision(s) == (NOW, LATER)
    assert PacketTotal.upgrade_database(s) == (NOW, LATER)
    assert has_later(pg_url) and PacketTotal.database_revision(s) == (LATER, LATER)
    Database.from_url(pg_url).close()  # opens now


def test_a_sqlite_database_behind_the_code_upgrades_itself_at_open(tmp_path, request):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    Database.from_url(url).close()  # at the code's revision
    request.getfixturevalue("newer_code")
    Database.from_url(url).close()
    assert has_later(url) and schema.revision(url) == (LATER, LATER)


def test_the_database_url_setting_names_bad_urls_and_masks_passwords(tmp_path):
    from packettotal import config
    with pytest.raises(config.ConfigError, match="database_url.*must be sqlite:///PATH or postgresql://"):
        settings(tmp_path, database_url="mysql://x@y/z")
    s = settings(tmp_path, database_url="postgresql://pt:s3cr@t@db.internal:5432/pt",
                 events_url="https://u:pw@search:9200/ix")
    shown = {r["setting"]: r["value"] for r in config.describe(s)}
    assert shown["database_url"] == "postgresql://pt:***@db.internal:5432/pt"
    assert shown["events_url"] == "https://u:***@search:9200/ix"
    assert PacketTotal.database_revision(settings(tmp_path))[1] == schema.head()


@needs_pg
def test_postgresql_takes_strings_with_nul_and_finds_them_again(pg_url):
    """A capture may put NUL in any string; PostgreSQL's text refuses it: it is stored as U+FFFD,
    and a look-up of the same string finds it."""
    from packettotal.store.db import now
    db = Database.from_url(pg_url)
    try:
        db.insert_capture({"id": "c1", "md5": "m", "sha1": "s", "name": "a\x00b.pcap", "size": 1, "status": "queued",
                           "warnings": ["cut\x00"], "attempts": 0, "submitted_at": now()})
        db.finish_captures([{"id": "c1", "status": "done", "files": [], "observables": [
            {"capture_id": "c1", "kind": "domain", "value": "x\x00.example", "field": "dns.rrname", "count": 1}]}])
        assert db.get_capture("c1")["name"] == "a\ufffdb.pcap" and db.named("a\x00b.pcap", False) == {"c1"}
        assert db.holders(["x\x00.example"]) == [("c1", "x\ufffd.example")]
    finally:
        db.close()
