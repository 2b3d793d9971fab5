"""The project's own demo capture, built with scapy: DNS, an HTTP download of the EICAR test file
(fires one of the project's rules), a scripted user agent, and a TLS ClientHello with SNI."""

from __future__ import annotations

from pathlib import Path

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.tls.extensions import ServerName, TLS_Ext_ServerName, TLS_Ext_SupportedGroups
from scapy.layers.tls.cert import Cert
from scapy.layers.tls.handshake import TLSCertificate, TLSClientHello, TLSServerHello, TLSServerHelloDone
from scapy.layers.tls.record import TLS
from scapy.utils import wrpcap

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
CLIENT, RESOLVER, WEB, TLS_HOST = "10.13.37.5", "10.13.37.1", "203.0.113.80", "198.51.100.43"
T0 = 1_700_000_000.0


class _Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self, step: float = 0.01) -> float:
        self.t += step
        return self.t


def _tcp_session(clock, src, dst, sport, dport, request: bytes, response: bytes) -> list:
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    ser = Ether(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
    c, s = 1000, 5000
    pkts = [eth / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="S", seq=c),
            ser / IP(src=dst, dst=src) / TCP(sport=dport, dport=sport, flags="SA", seq=s, ack=c + 1),
            eth / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="A", seq=c + 1, ack=s + 1)]
    c += 1
    s += 1
    for i in range(0, len(request), 1400):
        chunk = request[i:i + 1400]
        pkts.append(eth / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="PA", seq=c, ack=s) / chunk)
        c += len(chunk)
    pkts.append(ser / IP(src=dst, dst=src) / TCP(sport=dport, dport=sport, flags="A", seq=s, ack=c))
    for i in range(0, len(response), 1400):
        chunk = response[i:i + 1400]
        pkts.append(ser / IP(src=dst, dst=src) / TCP(sport=dport, dport=sport, flags="PA", seq=s, ack=c) / chunk)
        s += len(chunk)
    pkts += [eth / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="A", seq=c, ack=s),
             eth / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="FA", seq=c, ack=s),
             ser / IP(src=dst, dst=src) / TCP(sport=dport, dport=sport, flags="FA", seq=s, ack=c + 1),
             eth / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags="A", seq=c + 1, ack=s + 1)]
    for p in pkts:
        p.time = clock()
    return pkts


def _dns(clock, name: str, answer: str, txid: int) -> list:
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:03")
    q = eth / IP(src=CLIENT, dst=RESOLVER) / UDP(sport=40000 + txid, dport=53) / \
        DNS(id=txid, rd=1, qd=DNSQR(qname=name))
    r = Ether(src="02:00:00:00:00:03", dst="02:00:00:00:00:01") / IP(src=RESOLVER, dst=CLIENT) / \
        UDP(sport=53, dport=40000 + txid) / DNS(id=txid, qr=1, rd=1, ra=1, qd=DNSQR(qname=name),
                                               an=DNSRR(rrname=name, rdata=answer, ttl=300))
    q.time, r.time = clock(), clock()
    return [q, r]


def _certificate(name: str) -> bytes:
    """A fixed self-signed certificate (deterministic key and dates, so the capture's hash is stable)."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.derive_private_key(0x5EED, ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name[:64] or "demo"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PacketTotal demo")])
    start = dt.datetime(2023, 11, 1, tzinfo=dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(0x1337)
            .not_valid_before(start).not_valid_after(start + dt.timedelta(days=365))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def packets(hostile: dict[str, str] | None = None) -> list:
    """The demo's packets. `hostile` overrides names (host, uri, user_agent, filename, dns, sni)
    so tests can build a capture whose strings carry markup."""
    h = {"host": "downloads.example.com", "uri": "/tools/eicar.com", "user_agent": "curl/8.5.0",
         "filename": "eicar.com", "dns": "downloads.example.com", "sni": "secure.example.org",
         **(hostile or {})}
    clock = _Clock()
    pkts = _dns(clock, h["dns"], WEB, 1) + _dns(clock, h["sni"], TLS_HOST, 2)
    request = (f"GET {h['uri']} HTTP/1.1\r\nHost: {h['host']}\r\nUser-Agent: {h['user_agent']}\r\n"
               "Accept: */*\r\n\r\n").encode(errors="replace")
    response = (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                + f'Content-Disposition: attachment; filename="{h["filename"]}"\r\n'.encode(errors="replace")
                + f"Content-Length: {len(EICAR)}\r\n\r\n".encode() + EICAR)
    pkts += _tcp_session(clock, CLIENT, WEB, 49152, 80, request, response)
    hello = TLS(msg=[TLSClientHello(ciphers=[0x1301, 0x1302, 0xC02F], ext=[
        TLS_Ext_ServerName(servernames=[ServerName(servername=h["sni"].encode(errors="replace"))]),
        TLS_Ext_SupportedGroups(groups=[29, 23])])])
    # scapy makes a Cert in its metaclass's __call__(cert_path), which mypy does not see
    cert = Cert(_certificate(h["sni"]))  # type: ignore[call-arg]
    server = TLS(msg=[TLSServerHello(cipher=0xC02F), TLSCertificate(certs=[cert]), TLSServerHelloDone()])
    pkts += _tcp_session(clock, CLIENT, TLS_HOST, 49153, 443, bytes(hello), bytes(server))
    return pkts


def write(path: Path, hostile: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    wrpcap(str(path), packets(hostile))
    return path
