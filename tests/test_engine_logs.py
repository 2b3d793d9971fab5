"""Suricata's own words reach the job and the service's log; its log files stay bounded."""

import logging
import os
import signal
import struct
import threading
import time

import pytest

from packettotal.errors import EngineError
from packettotal.ingest import suricata
from packettotal.service import PacketTotal

from .captures import pcap_bytes
from .conftest import PCAPS, analyse, settings

ENGINE_LOGGER = "packettotal.engine"


def archaic_pcap(tmp_path, name="archaic.pcap"):
    """A classic pcap whose header says version 1.0: our walker finds its packets, libpcap (and so
    Suricata) refuses the file outright."""
    data = bytearray(pcap_bytes(2))
    data[4:6] = struct.pack("<H", 1)
    path = tmp_path / name
    path.write_bytes(bytes(data))
    return path


def test_a_failed_capture_carries_suricatas_lines_without_our_paths(tmp_path):
    pt = PacketTotal(settings(tmp_path / "home"))
    try:
        row = analyse(pt, archaic_pcap(tmp_path))
        assert row["status"] == "failed" and row["attempts"] == 1  # the capture's fault: not retried
        error = row["error"]
        assert error.startswith("Suricata could not read the capture: pcap: archaic pcap savefile format")
        # the log's error and warning lines, the capture named as uploaded
        assert "Warning: pcap: Failed to init pcap file archaic.pcap, skipping" in error
        assert "Error: pcap: pcap file reader thread failed to initialize" in error
        assert "/tmp" not in error and str(tmp_path) not in error and "engine-0" not in error
    finally:
        pt.close()


def test_a_daemon_killed_mid_capture_is_logged_with_its_reason_and_restarted(tmp_path, caplog):
    pt = PacketTotal(settings(tmp_path / "home"))
    try:
        engine = pt._pool._serving().engines[0]
        analyse(pt, PCAPS / "sv-dns-udp-txt.pcap")  # started and warm
        first_pid = engine.proc.pid
        eve = engine.run_dir / "eve.json"

        def kill_once_reading():
            deadline = time.monotonic() + 30
            while not eve.exists() and time.monotonic() < deadline:
                time.sleep(0.001)
            os.killpg(first_pid, signal.SIGKILL)

        killer = threading.Thread(target=kill_once_reading)
        caplog.set_level(logging.INFO, logger=ENGINE_LOGGER)
        killer.start()
        row = analyse(pt, PCAPS / "sv-dhcp-flood.pcap")
        killer.join()
        assert row["status"] == "done" and row["attempts"] == 2  # the daemon's fault: tried again
        messages = [r.getMessage() for r in caplog.records if r.name == ENGINE_LOGGER]
        died = [m for m in messages if "Suricata died (exit code -9) while reading the capture" in m]
        assert died and died[0].startswith("engine-0: ")
        restarted = [m for m in messages if "Suricata restarted" in m]
        assert restarted and "restart 1): Suricata died (exit code -9)" in restarted[0]
        assert engine.proc.pid != first_pid and engine.alive()
    finally:
        pt.close()
    assert any("killing Suricata" in r.getMessage() and "shutting down" in r.getMessage()
               for r in caplog.records if r.name == ENGINE_LOGGER)


def test_suricatas_logs_stay_under_their_bound(tmp_path):
    cap = 8 << 10
    pt = PacketTotal(settings(tmp_path / "home", engine_log_bytes=cap))
    try:
        engine = pt._pool._serving().engines[0]
        analyse(pt, PCAPS / "sv-dns-udp-txt.pcap")
        with open(engine.stderr_path, "ab") as noisy:  # what a noisy daemon leaves on its stderr
            noisy.write(b"noise from the daemon\n" * 50_000)
        for i in range(24):  # each run adds ~1.3 KB to suricata.log: 4 times the bound
            pcap = tmp_path / f"c{i}.pcap"
            pcap.write_bytes(pcap_bytes(1 + i % 3)[:-1] + bytes([i]))  # distinct captures
            assert analyse(pt, pcap)["status"] == "done"
            assert engine.stderr_path.stat().st_size <= cap
            assert engine.log_path.stat().st_size <= 2 * cap
        engine.stop("test restart")
        assert analyse(pt, PCAPS / "sv-dns-nxdomain-soa.pcap")["status"] == "done"  # after a restart too
        kept = {p.name: p.stat().st_size for p in engine.base_dir.glob("*.log.1")}
        assert set(kept) == {"suricata.log.1", "stderr.log.1"} and max(kept.values()) <= cap
        # cut in place, Suricata carries on at the start (it appends): no hole, lines still read
        assert not engine.log_path.read_bytes().startswith(b"\0")
        row = analyse(pt, archaic_pcap(tmp_path))
        assert "Failed to init pcap file archaic.pcap" in row["error"]
    finally:
        pt.close()


def test_a_daemon_that_cannot_start_says_why_from_its_stderr(tmp_path, caplog):
    pool = suricata.EnginePool(settings(tmp_path / "home"))
    try:
        pool.config_path.write_text("%YAML 1.1\n---\nthis: [is broken\n")  # a config Suricata cannot load
        with pytest.raises(EngineError) as exc, pool.engine():
            pass
        assert exc.value.message.startswith("Suricata exited with code 1 at start-up: Error: conf-yaml-loader: "
                                            "Failed to parse configuration file at line 3")
        assert any(r.name == ENGINE_LOGGER and r.levelno == logging.ERROR and "conf-yaml-loader" in r.getMessage()
                   for r in caplog.records)
    finally:
        pool.close()
