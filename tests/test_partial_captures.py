"""A capture readable up to a damaged record is analysed up to there, with a warning that names
the damage and where it is. The fuzzed shape: a good packet 1, then a record claiming 0x7fffffff
bytes, in classic pcap (either byte order) and pcapng (in the block length or the packet's)."""

import hashlib
import struct

import pytest

from packettotal.ingest import validate
from packettotal.service import PacketTotal

from .captures import ETH_IP_UDP, pcap_bytes, pcapng_bytes
from .conftest import analyse, settings

ABSURD = 0x7FFFFFFF
PCAPNG_HEAD = 28 + 20  # section header + interface description blocks of pcapng_bytes()


def pcap_then_absurd(order: str) -> bytes:
    return pcap_bytes(1, order=order) + struct.pack(order + "IIII", 1_600_000_001, 0, ABSURD, ABSURD) + ETH_IP_UDP


def pcapng_block_then_absurd() -> bytes:  # the block itself claims 2 GiB (rounded to a multiple of 4)
    return pcapng_bytes(1) + struct.pack("<IIIIIII", 6, ABSURD & ~3, 0, 0, 0, ABSURD, ABSURD) + ETH_IP_UDP


def pcapng_packet_then_absurd() -> bytes:  # a well-formed block whose packet claims 2 GiB
    body = ETH_IP_UDP + b"\0" * (-len(ETH_IP_UDP) % 4)
    n = 32 + len(body)
    return (pcapng_bytes(1) + struct.pack("<IIIIIII", 6, n, 0, 0, 0, ABSURD, len(ETH_IP_UDP)) + body
            + struct.pack("<I", n))


FIRST_RECORD_END = {"pcap": 24 + 16 + len(ETH_IP_UDP), "pcapng": PCAPNG_HEAD + 32 + 48}
VARIANTS = {
    "pcap-le": (lambda: pcap_then_absurd("<"), "pcap",
                "the record at byte 86 claims 2,147,483,647 bytes (snapshot length 65,535)"),
    "pcap-be": (lambda: pcap_then_absurd(">"), "pcap",
                "the record at byte 86 claims 2,147,483,647 bytes (snapshot length 65,535)"),
    "pcapng-block": (pcapng_block_then_absurd, "pcapng", "the block at byte 128 claims 2,147,483,644 bytes"),
    "pcapng-packet": (pcapng_packet_then_absurd, "pcapng",
                      "the packet block at byte 128 claims 2,147,483,647 bytes of packet in a block of 80"),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_walker_keeps_packet_1_and_names_the_damage_and_its_offset(tmp_path, variant):
    make, kind, damage = VARIANTS[variant]
    upload = tmp_path / f"fuzzed.{kind}"
    upload.write_bytes(make())
    staged = validate.stage(upload, tmp_path / "work", 10 << 20)
    assert staged.info.packets == 1 and str(FIRST_RECORD_END[kind]) in damage
    assert staged.warnings == (f"the capture is damaged after packet 1: {damage}; "
                               "the 1 packets before that were analysed",)


@pytest.fixture(scope="module")
def pt(tmp_path_factory):
    service = PacketTotal(settings(tmp_path_factory.mktemp("home")))
    yield service
    service.close()


@pytest.mark.parametrize("variant", VARIANTS)
def test_suricata_analyses_packet_1_of_the_fuzzed_capture(pt, tmp_path, variant):
    make, kind, damage = VARIANTS[variant]
    data = make()
    upload = tmp_path / f"fuzzed-{variant}.{kind}"
    upload.write_bytes(data)
    row = analyse(pt, upload)
    assert row["status"] == "done" and row["error"] is None
    assert row["summary"]["suricata"]["packets_read"] == row["summary"]["packets"] == 1
    assert row["warnings"][0] == (f"the capture is damaged after packet 1: {damage}; "
                                  "the 1 packets before that were analysed")
    assert not any(w.startswith("Suricata read") for w in row["warnings"])  # walker and Suricata agree
    assert pt._events.count_by_type(row["id"]).get("flow") == 1  # packet 1's flow
    # the stored capture is the upload, byte for byte
    assert hashlib.sha256(pt.capture_path(row["id"]).read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
