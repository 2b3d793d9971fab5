"""Upload validation with real libmagic: formats, compression, bombs, and clear refusals."""

import bz2
import gzip
import lzma
from pathlib import Path

import pytest
import zstandard

from packettotal.errors import RefusedCapture
from packettotal.ingest import capfile, validate

from .captures import pcap_bytes, pcapng_bytes
from .conftest import PCAPS, manifest

LIMIT = 10 << 20


def stage(tmp_path: Path, data: bytes, name: str = "upload", limit: int = LIMIT):
    p = tmp_path / name
    p.write_bytes(data)
    return validate.stage(p, tmp_path / "work", limit)


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nsec", [False, True])
def test_classic_pcap_variants(tmp_path, order, nsec):
    s = stage(tmp_path, pcap_bytes(3, order=order, nsec=nsec))
    assert s.info.format == "pcap" and s.info.packets == 3
    assert s.info.first_ts == pytest.approx(1_600_000_000 + (500e-9 if nsec else 500e-6))
    assert "pcap capture file" in s.description  # libmagic names every classic variant
    assert s.warnings == ()


def test_pcapng(tmp_path):
    s = stage(tmp_path, pcapng_bytes(4))
    assert (s.info.format, s.info.packets, s.info.linktypes) == ("pcapng", 4, {1: 4})


@pytest.mark.parametrize("kind,compress", [("gzip", gzip.compress), ("bzip2", bz2.compress),
                                           ("xz", lzma.compress), ("zstd", zstandard.compress)])
def test_compressed_captures_are_decompressed_and_hashed(tmp_path, kind, compress):
    raw = pcap_bytes(5)
    s = stage(tmp_path, compress(raw))
    assert s.compression == kind and s.info.packets == 5
    assert s.path.read_bytes() == raw
    import hashlib
    assert s.digests.sha256 == hashlib.sha256(raw).hexdigest()
    assert s.digests.md5 == hashlib.md5(raw).hexdigest()


@pytest.mark.parametrize("compress", [gzip.compress, zstandard.compress])
def test_decompression_bomb_is_refused_and_leaves_nothing(tmp_path, compress):
    bomb = compress(pcap_bytes(1) + b"\x00" * (50 << 20))
    assert len(bomb) < 1 << 20
    with pytest.raises(RefusedCapture, match="decompression bomb") as exc:
        stage(tmp_path, bomb)
    assert exc.value.status == 413
    assert list((tmp_path / "work").iterdir()) == []


def test_oversized_plain_capture_is_refused(tmp_path):
    with pytest.raises(RefusedCapture, match="over the limit") as exc:
        stage(tmp_path, pcap_bytes(100), limit=1000)
    assert exc.value.status == 413


@pytest.mark.parametrize("data,reason", [
    (b"<!DOCTYPE html><html><head><title>x</title></head><body>hi</body></html>\n",
     "HTML document, not a packet capture"),
    (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "PDF document"),
    (b"MZ" + b"\x00" * 200, "not a packet capture"),
    (b"", "the file is empty"),
    (pcap_bytes(0), "no packets (header only)"),
    (pcapng_bytes(0), "no packets (header only)"),
    (pcap_bytes(1)[:20], "cut short"),
    (gzip.compress(b"just some text\n" * 10), "gzip-compressed ASCII text, not a packet capture"),
    (gzip.compress(pcap_bytes(2))[:-30], "gzip data is damaged"),
    (pcap_bytes(2, linktype=127), "unsupported link type: IEEE 802.11 radiotap (DLT 127)"),
], ids=["html", "pdf", "exe", "empty", "pcap-header-only", "pcapng-header-only", "cut-header",
        "gzip-text", "gzip-damaged", "radiotap"])
def test_refusals_say_why(tmp_path, data, reason):
    with pytest.raises(RefusedCapture) as exc:
        stage(tmp_path, data)
    assert reason in exc.value.message


def test_damaged_capture_is_kept_with_a_warning(tmp_path):
    s = stage(tmp_path, pcap_bytes(3) + b"\x01\x02\x03")
    assert s.info.packets == 3
    assert "cut short in the header of packet 4" in s.warnings[0]


def test_walker_counts_match_the_manifest():
    """Our record walker agrees with capinfos' packet counts on every readable public capture."""
    checked = 0
    for row in manifest():
        if not row["packets"].split()[0].isdigit() or "raw record count" in row["packets"]:
            continue
        path = PCAPS / row["file"]
        if capfile.sniff_compression(path.read_bytes()[:8]):
            continue
        info = capfile.inspect(path)
        if "before error" in row["packets"] and row["file"] == "sv-corrupt-fuzz-6875.pcap":
            assert info.packets == 1 and "damaged after packet 1" in info.problem  # as libpcap reads it
        else:
            assert info.packets == int(row["packets"].split()[0]), row["file"]
        checked += 1
    assert checked > 70
