"""Builders of crafted captures for tests (real public captures come from ../shared/pcaps)."""

import struct

ETH_IP_UDP = bytes.fromhex("020000000002020000000001080045000020000100004011f97a0a0000010a000002"
                           "3039003500080000") + b"abcd"


def pcap_bytes(packets: int = 2, order: str = "<", nsec: bool = False, linktype: int = 1,
               frame: bytes = ETH_IP_UDP) -> bytes:
    magic = 0xA1B23C4D if nsec else 0xA1B2C3D4
    out = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)
    for i in range(packets):
        out += struct.pack(order + "IIII", 1_600_000_000 + i, 500, len(frame), len(frame)) + frame
    return out


def pcapng_bytes(packets: int = 2, linktype: int = 1, frame: bytes = ETH_IP_UDP) -> bytes:
    def block(btype: int, body: bytes) -> bytes:
        body += b"\x00" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", linktype, 0, 65535))
    for i in range(packets):
        ts = (1_600_000_000 + i) * 1_000_000
        out += block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(frame), len(frame)) + frame)
    return out
