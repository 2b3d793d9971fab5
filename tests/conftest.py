import csv
import hashlib
import os
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from packettotal import config
from packettotal.service import PacketTotal

ROOT = Path(__file__).resolve().parents[1]
PCAPS = (ROOT / ".." / "shared" / "pcaps").resolve()
# set: every test's database is a PostgreSQL database of its own on this server (make test's
# second run), made for each home and dropped after the test module
TEST_DATABASE_URL = os.environ.get("PACKETTOTAL_TEST_DATABASE_URL", "")
ON_PG = TEST_DATABASE_URL.startswith("postgres")
# a test of the embedded database's own disk (a full home filesystem): PostgreSQL's is elsewhere
sqlite_only = pytest.mark.skipif(ON_PG, reason="fills the home's disk, where the database is only with SQLite")
_made: set[str] = set()  # the databases made for the module running


def manifest() -> list[dict]:
    with open(PCAPS / "MANIFEST.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _admin():
    import psycopg
    return psycopg.connect(TEST_DATABASE_URL, autocommit=True)


def database_url(home: Path) -> str:
    """The database of the instance in `home`: its SQLite file, or (on PostgreSQL) a database of
    its own named after the home, made the first time."""
    if not ON_PG:
        return ""
    name = "pt_test_" + hashlib.sha256(str(Path(home).resolve()).encode()).hexdigest()[:16]
    if name not in _made:
        with _admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        _made.add(name)
    return make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)


def home_env(home: Path) -> dict[str, str]:
    """The variables a `packettotal` subprocess needs to open the instance in `home`."""
    url = database_url(home)
    return {"PACKETTOTAL_HOME": str(home), **({"PACKETTOTAL_DATABASE_URL": url} if url else {})}


def use_home(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    """The `packettotal` commands this process runs (cli.run, CliRunner) open the instance in `home`."""
    for key, value in home_env(home).items():
        monkeypatch.setenv(key, value)


def settings(home: Path, **kw) -> config.Settings:
    return config.load(env={}, home=home, **{"engines": 1, "database_url": database_url(home) or None, **kw})


@pytest.fixture(scope="module", autouse=True)
def _drop_databases():
    """The module's PostgreSQL databases dropped once it is done."""
    yield
    if _made:
        with _admin() as conn:
            for name in sorted(_made):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _made.clear()


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    pt = PacketTotal(settings(tmp_path_factory.mktemp("home")))
    yield pt
    pt.close()


def analyse(pt: PacketTotal, path: Path) -> dict:
    sub = pt.submit(path, path.name)
    return sub.capture if sub.capture["status"] == "done" else pt.analyse(sub.capture["id"])


@pytest.fixture(scope="session")
def broker_url() -> str:
    """A real Redis for Celery tests: PACKETTOTAL_TEST_BROKER_URL (the second CI run), else the
    loopback one; skipped with the reason when none answers."""
    import redis
    url = os.environ.get("PACKETTOTAL_TEST_BROKER_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis answers at {url} (set PACKETTOTAL_TEST_BROKER_URL): {exc}")
    return url
