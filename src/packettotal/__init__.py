"""PacketTotal: analyse packet captures with Suricata, then search and pivot across all of them."""

__version__ = "0.1.0"
