"""Tiny uploads that would cost a great deal: decompression bombs, record floods, validation
floods, and a capture that takes Suricata too long. Each is stopped early with a stated reason."""

import bz2
import gzip
import threading
import time
import zlib

import pytest

from packettotal import config
from packettotal.errors import RefusedCapture
from packettotal.ingest import validate
from packettotal.service import PacketTotal

from .captures import pcap_bytes
from .conftest import PCAPS, analyse, settings

PCAP_HEADER = pcap_bytes(0)
ZERO_RECORD = bytes(16)  # a record that holds no packet bytes (and no time)
MAX_WRITTEN = 128 << 20


def bz2_bomb() -> bytes:
    """A pcap header and 4 GiB of zeros in ~4 KB of bzip2 (one stream of 64 MiB, 64 times)."""
    zeros = bz2.compress(bytes(64 << 20), 9)
    return bz2.compress(PCAP_HEADER) + zeros * 64


def gzip_of_zero_length_records(records: int = 4 << 20) -> bytes:
    """~65 KB of gzip that is 4 M records holding nothing (each costs Suricata two events)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = ZERO_RECORD * (1 << 16)
    return z.compress(PCAP_HEADER) + b"".join(z.compress(chunk) for _ in range(records >> 16)) + z.flush()


def written_bytes() -> int:
    """Bytes this process has handed to write() so far."""
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("wchar:")).split()[1])


def validator(tmp_path, **kw) -> validate.Validator:
    return validate.Validator(config.load(env={}, home=tmp_path / "home", **kw))


@pytest.mark.parametrize("make,kind", [(bz2_bomb, "bzip2"), (gzip_of_zero_length_records, "gzip")],
                         ids=["bz2-zeros-4GiB", "gzip-zero-length-records"])
def test_a_bomb_is_refused_in_seconds_writing_little(tmp_path, make, kind):
    upload = tmp_path / "bomb"
    upload.write_bytes(make())
    assert upload.stat().st_size < 70_000
    v = validator(tmp_path)  # the default limits: 1 GiB after decompression, ratio 500
    before, t0 = written_bytes(), time.monotonic()
    with pytest.raises(RefusedCapture) as exc:
        v.stage(upload)
    seconds, written = time.monotonic() - t0, written_bytes() - before
    assert seconds < 5 and written <= MAX_WRITTEN, (seconds, written)
    assert exc.value.status == 413
    assert exc.value.message.startswith(f"the {kind} data expands more than 500 times (")
    assert "refused as a decompression bomb (setting max_decompression_ratio)" in exc.value.message
    assert list((tmp_path / "home" / "work").iterdir()) == []


def test_five_bombs_at_once_take_turns_and_little_disk(tmp_path):
    upload = tmp_path / "bomb.bz2"
    upload.write_bytes(bz2_bomb())
    v = validator(tmp_path, max_validations=2)
    work = tmp_path / "home" / "work"
    seen = {"files": 0, "bytes": 0}
    done = threading.Event()

    def sample():
        while not done.is_set():
            files = list(work.glob("incoming-*")) if work.exists() else []
            sizes = []
            for f in files:
                try:
                    sizes.append(f.stat().st_size)
                except FileNotFoundError:
                    pass
            seen["files"] = max(seen["files"], len(sizes))
            seen["bytes"] = max(seen["bytes"], sum(sizes))
            time.sleep(0.002)

    refusals = []

    def submit():
        try:
            v.stage(upload)
        except RefusedCapture as exc:
            refusals.append(exc.message)

    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.monotonic()
    workers = [threading.Thread(target=submit) for _ in range(5)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    seconds = time.monotonic() - t0
    done.set()
    sampler.join()
    assert len(refusals) == 5 and all("decompression bomb" in r for r in refusals)
    assert 1 <= seen["files"] <= 2  # never more than max_validations at once
    assert seen["bytes"] <= 2 * (32 << 20), seen
    assert seconds < 15


def test_an_upload_waits_for_a_validation_slot_then_is_turned_away(tmp_path, monkeypatch):
    monkeypatch.setattr(validate, "SLOT_WAIT", 0.2)
    v = validator(tmp_path, max_validations=1)
    upload = tmp_path / "ok.pcap"
    upload.write_bytes(pcap_bytes(2))
    assert v._slots.acquire(timeout=1)  # another upload is being checked
    with pytest.raises(RefusedCapture) as exc:
        v.stage(upload)
    assert exc.value.status == 503
    assert exc.value.message == "1 uploads are being checked already (setting max_validations); try again shortly"
    v._slots.release()
    assert v.stage(upload).info.packets == 2


def test_a_capture_over_the_packet_limit_is_refused_with_the_setting_named(tmp_path):
    v = validator(tmp_path, max_packets_per_capture=1000)
    upload = tmp_path / "flood.pcap"
    upload.write_bytes(PCAP_HEADER + ZERO_RECORD * 1001)
    with pytest.raises(RefusedCapture) as exc:
        v.stage(upload)
    assert exc.value.status == 413
    assert exc.value.message == ("the capture holds more than 1,000 packets, the limit per capture "
                                 "(setting max_packets_per_capture)")
    upload.write_bytes(PCAP_HEADER + ZERO_RECORD * 1000)
    assert v.stage(upload).info.packets == 1000


def test_a_large_compressible_real_capture_is_not_taken_for_a_bomb(tmp_path):
    flood = (PCAPS / "sv-dhcp-flood.pcap").read_bytes()
    big = flood + flood[24:] * 6  # 21 MB of repetitive DHCP: past the 16 MiB the ratio is judged at
    upload = tmp_path / "flood.pcap.gz"
    upload.write_bytes(gzip.compress(big))
    staged = validator(tmp_path).stage(upload)
    assert staged.info.packets == 70_000 and staged.digests.size == len(big)


def test_a_capture_still_being_analysed_at_the_time_limit_fails_once_with_the_reason(tmp_path):
    flood = tmp_path / "zero-records.pcap"  # 200k empty records: ~5 s of Suricata
    flood.write_bytes(PCAP_HEADER + ZERO_RECORD * 200_000)
    pt = PacketTotal(settings(tmp_path / "home", engine_timeout=1.0))
    try:
        t0 = time.monotonic()
        row = analyse(pt, flood)
        assert time.monotonic() - t0 < 8  # stopped at the limit, not tried a second time
        assert row["status"] == "failed" and row["attempts"] == 1
        assert row["error"].startswith("the analysis was stopped: the capture was still being analysed "
                                       "after 1 s (setting engine_timeout)")
        assert analyse(pt, PCAPS / "sv-dns-udp-txt.pcap")["status"] == "done"  # the engine was restarted
    finally:
        pt.close()
