"""TLS certificates in full, from the chains Suricata logs (`tls.chain`, `tls.client_chain`: base64
DER). Pure: each certificate parsed once per capture with `cryptography`, its facts bounded, an
unparsable one kept with its error (never a failed capture); whether it was valid is judged at the
time of the record that carried it. `name_matches` is RFC 6125's host-name check.

    chains = Chains()
    for rec in tls_records: chains.add(rec)    # -> that record's parsed server chain
    chains.certs (sha256 -> facts), chains.seen (one row per certificate of each record's chain)
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import fnmatch
import hashlib
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519
from cryptography.x509.oid import NameOID

MAX_DER = 48 * 1024      # bytes of one certificate (EVE keeps 64 KiB of base64)
MAX_CHAIN = 10           # certificates read from one record's chain; the rest counted
MAX_CERTS = 2_000        # distinct certificates kept per capture
MAX_SEEN = 10_000        # (record, position) rows kept per capture
MAX_SANS = 100           # names kept per certificate
MAX_NAME = 1024          # characters of a subject, issuer or name
SIDES = {"chain": "server", "client_chain": "client"}
SURICATA_NAMES = {NameOID.EMAIL_ADDRESS: "Email"}  # where Suricata's names differ from RFC 4514's


class Chains:
    def __init__(self) -> None:
        self.certs: dict[str, dict] = {}
        self.seen: list[dict] = []
        self.dropped = 0  # certificates not kept (past a bound)

    def add(self, rec: dict) -> list[dict]:
        """Parse a tls record's chains; the server chain's facts, each with `status` at the record's time
        and its `position` in the chain (0: the leaf; a position missing when its entry was not kept)."""
        tls = rec.get("tls")
        if rec.get("event_type") != "tls" or not isinstance(tls, dict):
            return []
        when = _when(rec.get("timestamp"))
        server: list[dict] = []
        for key, side in SIDES.items():
            chain = tls.get(key)
            if not isinstance(chain, list):
                continue
            self.dropped += max(0, len(chain) - MAX_CHAIN)
            for position, item in enumerate(chain[:MAX_CHAIN]):
                facts = self._facts(item)
                if facts is None:
                    self.dropped += 1
                    continue
                status = validity(facts, when)
                if len(self.seen) < MAX_SEEN:
                    self.seen.append({"flow_id": str(rec.get("flow_id", ""))[:24],
                                      "timestamp": _text(rec.get("timestamp"), 40), "side": side,
                                      "position": position, "sha256": facts["sha256"],
                                      "sni": _text(tls.get("sni"), 256), "status": status})
                else:
                    self.dropped += 1
                if side == "server":
                    server.append(facts | {"status": status, "position": position})
        return server

    def _facts(self, item: object) -> dict | None:
        der = decode(item)
        if der is None:
            return None
        sha256 = hashlib.sha256(der).hexdigest()
        known = self.certs.get(sha256)
        if known is None:
            if len(self.certs) >= MAX_CERTS:
                return None
            known = self.certs[sha256] = parse(der)
        return known


def with_sightings(rows: list[dict], seen: list[dict], only_seen: bool = False) -> list[dict]:
    """Certificates (rows of the certs table) each with `seen`: the chains it was in (flow, time,
    side, position, SNI, validity then) and `statuses`; leaves first, then by subject."""
    by_sha: dict[str, list[dict]] = {}
    for s in seen:
        by_sha.setdefault(s["sha256"], []).append(s)
    out = [r | {"seen": by_sha.get(r["sha256"], []),
                "statuses": sorted({s["status"] for s in by_sha.get(r["sha256"], []) if s["status"]})}
           for r in rows if not only_seen or r["sha256"] in by_sha]
    return sorted(out, key=lambda r: (min((s["position"] for s in r["seen"]), default=99), r["subject"], r["sha256"]))


def decode(item: object) -> bytes | None:
    """A chain entry's DER bytes, or None (not base64, empty, cut by EVE's bound or too big)."""
    if not isinstance(item, str) or not item or len(item) > MAX_DER * 4 // 3 + 4:
        return None
    try:
        der = base64.b64decode(item, validate=True)
    except (binascii.Error, ValueError):
        return None
    return der or None


def parse(der: bytes) -> dict:
    """A certificate's facts; when it cannot be read, its fingerprints and `error`."""
    facts: dict = {"sha256": hashlib.sha256(der).hexdigest(), "sha1": hashlib.sha1(der).hexdigest(),
                   "serial": "", "subject": "", "issuer": "", "sans": [], "not_before": None, "not_after": None,
                   "self_signed": False, "key_type": "", "key_bits": None, "signature": "", "error": None}
    try:
        cert = x509.load_der_x509_certificate(der)
        facts |= {"serial": serial_text(cert.serial_number), "subject": dn(cert.subject),
                  "issuer": dn(cert.issuer), "not_before": cert.not_valid_before_utc.isoformat(),
                  "not_after": cert.not_valid_after_utc.isoformat()}
    except Exception as exc:  # anything a hostile DER makes the parser raise
        return facts | {"error": _text(f"{type(exc).__name__}: {exc}", 300)}
    facts["sans"], facts["error"] = _sans(cert)
    facts["signature"] = _signature(cert)
    facts["key_type"], facts["key_bits"] = _key(cert)
    facts["self_signed"] = _self_signed(cert)
    return facts


def dn(name: x509.Name) -> str:
    """A distinguished name as Suricata writes it: its attributes in order, `CN=a, O=b`."""
    parts = []
    for attr in name:
        value = attr.value if isinstance(attr.value, str) else attr.value.hex()
        parts.append(f"{SURICATA_NAMES.get(attr.oid, attr.rfc4514_attribute_name)}={value}")
    return _text(", ".join(parts), MAX_NAME)


def serial_text(number: int) -> str:
    """`00:A1:...` as Suricata writes serials (a leading zero byte where the high bit is set)."""
    raw = number.to_bytes(max(1, (number.bit_length() + 8) // 8), "big", signed=False) if number >= 0 else b""
    return ":".join(f"{b:02X}" for b in raw)[:MAX_NAME]


def serial_key(text: str) -> str:
    """How serials are compared: hex digits only, lower-case, no leading zeros (`00:A1` = `a1`)."""
    digits = "".join(c for c in text.lower() if c in "0123456789abcdef")
    return digits.lstrip("0") or "0"


def _sans(cert: x509.Certificate) -> tuple[list[str], str | None]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], None
    except Exception as exc:  # a malformed extension: the rest of the certificate stands
        return [], _text(f"subjectAltName: {type(exc).__name__}: {exc}", 300)
    names = [str(v) for v in ext.get_values_for_type(x509.DNSName)]
    names += [str(v) for v in ext.get_values_for_type(x509.IPAddress)]
    names += [str(v) for v in ext.get_values_for_type(x509.RFC822Name)]
    names += [str(v) for v in ext.get_values_for_type(x509.UniformResourceIdentifier)]
    return [_text(n, 256) for n in names[:MAX_SANS]], None


def _signature(cert: x509.Certificate) -> str:
    oid = cert.signature_algorithm_oid
    return (oid._name if oid._name != "Unknown OID" else oid.dotted_string)[:64]  # an OID of the DER's choosing


def _key(cert: x509.Certificate) -> tuple[str, int | None]:
    try:
        key = cert.public_key()
    except Exception:  # an algorithm cryptography does not know
        return "unknown", None
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}", key.key_size
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    sizes = {ed25519.Ed25519PublicKey: ("Ed25519", 256), ed448.Ed448PublicKey: ("Ed448", 456),
             x25519.X25519PublicKey: ("X25519", 256), x448.X448PublicKey: ("X448", 448)}
    for kind, (name, bits) in sizes.items():
        if isinstance(key, kind):
            return name, bits
    return type(key).__name__, None


def _self_signed(cert: x509.Certificate) -> bool:
    """Issued by itself: its issuer is its subject and its own key verifies its signature (by name
    alone when the signature's algorithm cannot be checked)."""
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError):
        return True  # names alike, signature not checkable here (algorithm, parameters)
    except Exception:  # the signature does not verify: a forged "self-signed" certificate is another CA's
        return False
    return True


def validity(facts: dict, when: dt.datetime | None) -> str | None:
    """`valid`, `expired` or `not_yet_valid` at that time; None without a time or dates."""
    if when is None or not facts.get("not_before") or not facts.get("not_after"):
        return None
    if when > dt.datetime.fromisoformat(facts["not_after"]):
        return "expired"
    if when < dt.datetime.fromisoformat(facts["not_before"]):
        return "not_yet_valid"
    return "valid"


def name_matches(host: str, facts: dict) -> bool:
    """RFC 6125: does the certificate name `host`? DNS names of its SANs (the subject's CN only
    when it has none); a wildcard only in the left-most label, standing for exactly one label,
    never in an IDN A-label, and not directly under a top-level domain. An IP address matches
    an IP SAN."""
    host = host.strip().rstrip(".").lower()
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    sans = [s.lower() for s in facts.get("sans") or []]
    if ip is not None:
        return any(_same_ip(ip, s) for s in sans)
    dns = [s for s in sans if "@" not in s and ":" not in s and not _is_ip(s)]
    if not dns:
        dns = [part[3:].lower() for part in _cn(facts.get("subject") or "")]
    return any(_dns_match(host, name.rstrip(".")) for name in dns)


def _dns_match(host: str, pattern: str) -> bool:
    if "*" not in pattern:
        return host == pattern
    first, _, rest = pattern.partition(".")
    h_first, _, h_rest = host.partition(".")
    if "*" in rest or rest.count(".") < 1 or not h_first or h_rest != rest:
        return False
    if first.startswith("xn--") or h_first.startswith("xn--"):
        return False
    return fnmatch.fnmatchcase(h_first, first.replace("[", "[[]").replace("?", "[?]"))


def _cn(subject: str) -> list[str]:
    return [p.strip() for p in subject.split(", ") if p.strip().upper().startswith("CN=")]


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _same_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, text: str) -> bool:
    try:
        return ipaddress.ip_address(text) == ip
    except ValueError:
        return False


def _when(value: object) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _text(value: object, limit: int) -> str:
    text = value if isinstance(value, str) else "" if value is None else str(value)
    return text if len(text) <= limit else text[:limit] + "…"
