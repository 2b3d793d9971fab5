import csv
import os
from pathlib import Path

import pytest

from packettotal import config
from packettotal.service import PacketTotal

ROOT = Path(__file__).resolve().parents[1]
PCAPS = (ROOT / ".." / "shared" / "pcaps").resolve()


def manifest() -> list[dict]:
    with open(PCAPS / "MANIFEST.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def settings(home: Path, **kw) -> config.Settings:
    return config.load(env={}, home=home, **{"engines": 1, **kw})


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
