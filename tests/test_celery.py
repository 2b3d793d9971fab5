"""Celery workers on a real Redis: a `packettotal worker` subprocess analyses what CeleryJobs
sends, with the same results as in-process; a worker SIGKILLed mid-analysis loses nothing."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from packettotal.instance import open_jobs
from packettotal.jobs.celery import DEAD_AFTER_BEATS, HEARTBEAT_SECONDS, CeleryJobs, queue_name
from packettotal.service import PacketTotal

from .conftest import PCAPS, ROOT, home_env, settings

BATCH = ["sv-smb2-async-read.pcap", "sv-rfb-vnc.pcap", "cs-http_espn.pcapng", "sv-smtp-rfc2231.pcap",
         "sv-http-pipeline-files-gap.pcap", "sv-tls-ipv6-communityid.pcap", "dpkt-http.pcap"]


@pytest.fixture(scope="module")
def broker(broker_url: str) -> str:
    return broker_url


def _worker(home: Path, broker: str, log: Path) -> subprocess.Popen:
    env = {**os.environ, **home_env(home), "PACKETTOTAL_BROKER_URL": broker, "PACKETTOTAL_ENGINES": "1",
           "PYTHONPATH": str(ROOT / "src")}
    return subprocess.Popen([sys.executable, "-m", "packettotal", "--home", str(home), "worker", "--concurrency", "1"],
                            env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _counts(rows) -> dict[str, dict]:
    return {r["name"]: r["summary"]["counts"] for r in rows}


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory) -> dict[str, dict]:
    """The batch analysed in-process: the counts every other run must give."""
    pt = PacketTotal(settings(tmp_path_factory.mktemp("local")))
    try:
        rows = []
        for name in BATCH:
            sub = pt.submit(PCAPS / name, name)
            rows.append(pt.analyse(sub.capture["id"]))
        assert all(r["status"] == "done" for r in rows), [r["error"] for r in rows]
        return _counts(rows)
    finally:
        pt.close()


def _submit(jobs: CeleryJobs) -> list[str]:
    return [jobs.service.submit(PCAPS / name, name).capture["id"] for name in BATCH]


def _wait_final(pt: PacketTotal, ids: list[str], timeout: float) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = pt.rows(ids)
        if all(r["status"] in ("done", "failed") for r in rows.values()):
            return rows
        time.sleep(0.5)
    raise AssertionError(f"not final after {timeout} s: {[(r['name'], r['status']) for r in pt.rows(ids).values()]}")


def test_queue_per_instance(tmp_path, broker):
    a, b = settings(tmp_path / "a", broker_url=broker), settings(tmp_path / "b", broker_url=broker)
    assert queue_name(a) != queue_name(b)
    assert queue_name(a) == queue_name(settings(tmp_path / "a", broker_url=broker))


def test_worker_matches_in_process(tmp_path, broker, clean_run):
    s = settings(tmp_path / "home", broker_url=broker)
    jobs = open_jobs(s)
    assert isinstance(jobs, CeleryJobs)
    proc = _worker(s.home, broker, tmp_path / "worker.log")
    try:
        rows = jobs.run(_submit(jobs))
        assert [r["status"] for r in rows] == ["done"] * len(BATCH), (tmp_path / "worker.log").read_text()[-3000:]
        assert _counts(rows) == clean_run
        again = jobs.service.rows([rows[0]["id"]])[rows[0]["id"]]
        jobs.enqueue(again["id"])  # a redelivered task for a capture already done does nothing
        time.sleep(2)
        assert jobs.service.rows([again["id"]])[again["id"]]["finished_at"] == again["finished_at"]
    finally:
        _stop(proc)
        jobs.close()
        jobs.service.close()
    assert proc.returncode == 0, (tmp_path / "worker.log").read_text()[-3000:]


def test_sigkill_mid_analysis(tmp_path, broker, clean_run):
    """Two workers; the one running a capture dies (SIGKILL); a new worker starts; once the dead
    lease has expired, recover() queues what the dead one held: every capture done, once, with
    the clean run's counts."""
    s = settings(tmp_path / "home", broker_url=broker)
    jobs = open_jobs(s)
    assert isinstance(jobs, CeleryJobs)
    log = tmp_path / "worker.log"
    workers = [_worker(s.home, broker, log), _worker(s.home, broker, log)]
    time.sleep(3)  # both up: the second spools, the first indexes
    try:
        ids = _submit(jobs)
        for cid in ids:
            jobs.enqueue(cid)
        deadline = time.monotonic() + 120
        while not (held := jobs.service.leases()):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.02)
        cid, holder = next(iter(held.items()))
        victim = next(w for w in workers if holder.endswith(f".{w.pid}"))
        os.killpg(victim.pid, signal.SIGKILL)  # the worker and its Suricata daemons, mid-analysis
        victim.wait(10)
        held = {cid}
        assert not held & set(jobs.recover()), "a fresh lease is a live worker's: not queued again"
        workers.append(_worker(s.home, broker, log))
        time.sleep(HEARTBEAT_SECONDS * DEAD_AFTER_BEATS + 1)
        assert set(jobs.recover()) >= held - {cid for cid, r in jobs.service.rows(held).items()
                                                if r["status"] == "done"}
        rows = _wait_final(jobs.service, ids, 300)
        assert [rows[c]["status"] for c in ids] == ["done"] * len(BATCH), log.read_text()[-3000:]
        assert _counts(rows.values()) == clean_run
        assert jobs.service.leased(3600) == set()
    finally:
        for w in workers:
            _stop(w)
        jobs.close()
        jobs.service.close()


def _redis(port: int, folder: Path) -> subprocess.Popen:
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                             "--appendonly", "yes", "--save", ""], stdout=subprocess.DEVNULL)
    import redis
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis(port=port, socket_connect_timeout=0.5).ping()
            return proc
        except redis.RedisError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_redis_restart_mid_batch(tmp_path, broker, clean_run):
    """A Redis of the test's own (append-only file) restarts while two workers run the batch:
    every capture still ends done, with the clean run's counts."""
    import shutil
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    port = _free_port()
    server = _redis(port, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    s = settings(tmp_path / "home", broker_url=url)
    jobs = open_jobs(s)
    log = tmp_path / "worker.log"
    workers = [_worker(s.home, url, log), _worker(s.home, url, log)]
    try:
        ids = _submit(jobs)
        for cid in ids:
            jobs.enqueue(cid)
        deadline = time.monotonic() + 120
        while not jobs.service.leases():
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.02)
        server.terminate()
        server.wait(10)
        time.sleep(2)
        server = _redis(port, tmp_path)
        time.sleep(HEARTBEAT_SECONDS * DEAD_AFTER_BEATS + 1)
        jobs.recover()  # what a web node does at its start; a capture done meanwhile is not analysed again
        rows = _wait_final(jobs.service, ids, 300)
        assert [rows[c]["status"] for c in ids] == ["done"] * len(BATCH), log.read_text()[-3000:]
        assert _counts(rows.values()) == clean_run
    finally:
        for w in workers:
            _stop(w)
        jobs.close()
        jobs.service.close()
        server.terminate()
        server.wait(10)


def _serve(home: Path, broker: str, port: int, log: Path) -> subprocess.Popen:
    import httpx
    env = {**os.environ, **home_env(home), "PACKETTOTAL_BROKER_URL": broker,
           "PACKETTOTAL_ENGINES": "0",  # a web-only node: no Suricata daemon here, the workers analyse
           "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "packettotal", "--home", str(home), "serve", "--no-demo",
                             "--port", str(port)], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/api/v1/captures", timeout=2)
            return proc
        except httpx.HTTPError:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)


def test_web_node_restart_mid_batch(tmp_path, broker, clean_run):
    """Captures uploaded to a web node (serve, engines = 0) with two workers; the web node is SIGKILLed
    mid-batch and started again: every capture done once, with the clean run's counts, as the
    new web node shows them."""
    import httpx
    home, port, log = tmp_path / "home", _free_port(), tmp_path / "serve.log"
    workers = [_worker(home, broker, tmp_path / "worker.log"), _worker(home, broker, tmp_path / "worker.log")]
    web = _serve(home, broker, port, log)
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        ids = []
        for name in BATCH:
            with (PCAPS / name).open("rb") as f:
                r = httpx.post(f"{base}/captures", files={"file": (name, f)}, timeout=60)
            assert r.status_code in (202, 303), r.text
            ids.append(r.json()["id"])
        os.killpg(web.pid, signal.SIGKILL)
        web.wait(10)
        web = _serve(home, broker, port, log)
        deadline, rows = time.monotonic() + 300, {}
        while time.monotonic() < deadline:
            rows = {cid: httpx.get(f"{base}/captures/{cid}", timeout=10).json() for cid in ids}
            if all(r["status"] in ("done", "failed") for r in rows.values()):
                break
            time.sleep(0.5)
        assert [rows[c]["status"] for c in ids] == ["done"] * len(BATCH), [r.get("error") for r in rows.values()]
        pt = PacketTotal(settings(home))
        try:
            assert _counts(pt.rows(ids).values()) == clean_run
        finally:
            pt.close()
    finally:
        _stop(web)
        for w in workers:
            _stop(w)


def test_a_lease_is_one_workers_until_it_goes_stale(tmp_path):
    """Two workers handed the same capture at once: one statement decides, one runs it; a lease
    not beaten for LEASE_SECONDS (a dead worker's) is taken over."""
    import datetime as dt

    from packettotal.service import LEASE_SECONDS
    from packettotal.store.db import job_leases
    pt = PacketTotal(settings(tmp_path / "home"))
    try:
        cid = pt.submit(PCAPS / BATCH[0]).capture["id"]
        assert pt.take_lease(cid, "a") and not pt.take_lease(cid, "b") and pt.leases() == {cid: "a"}
        stale = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(seconds=LEASE_SECONDS + 1)
        pt._db._exec(job_leases.update().values(beat_at=stale))
        assert pt.take_lease(cid, "b") and pt.leases() == {cid: "b"}
    finally:
        pt.close()
