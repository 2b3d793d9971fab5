"""Debian's libndpi 4.2 (package libndpi4.2) through ctypes: the only code that calls nDPI. Loaded
in the helper process only (helper.py), never in PacketTotal's own.

One `Library` holds one detection module (all protocols enabled, as ndpiReader does) for the flows
of one capture: `renew()` replaces it with a fresh one before the next (~0.012 s of CPU), since
nDPI keeps caches inside it keyed by address and port (ookla_cache, tls_cert_cache, stun_cache,
...) that would let one capture change how another's flows are named. A flow's state is a zeroed
buffer of `ndpi_detection_get_sizeof_ndpi_flow_struct()` bytes that nDPI fills; what it found is
read through the API alone: `ndpi_protocol2name`, `ndpi_category_get_name`, and the risks from
`ndpi_dpi2json` (its JSON serializer), whose output starts with the flow's risks by number
(`{"ndpi": {"flow_risk": {"6":"Self-signed Certificate",...}`) before any text a capture chose:
only those numbers are read, the names and score then come from `ndpi_risk2str` and
`ndpi_risk2score`. No struct offset is assumed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import re

NAME, SONAME = "ndpi", "libndpi.so.4.2"  # this binding is for nDPI 4.2's ABI (ndpi_protocol, ...)
JSON = 2                  # ndpi_serialization_format_json
_BITMASK_WORDS = 16       # NDPI_PROTOCOL_BITMASK: 512 bits in u_int32_t words
_SERIALIZER_BYTES = 256   # sizeof(ndpi_serializer) is 72 in 4.2: room to spare
_NAME_BYTES = 64
_RISKS = re.compile(rb'\{"ndpi": \{"flow_risk": \{((?:"\d{1,2}":"(?:[^"\\]|\\.){0,120}",?){1,64})\}')
_RISK_ID = re.compile(rb'"(\d{1,2})":')

_p, _u8, _u16, _u32, _u64 = ctypes.c_void_p, ctypes.c_uint8, ctypes.c_uint16, ctypes.c_uint32, ctypes.c_uint64


class Protocol(ctypes.Structure):
    """ndpi_protocol (returned by value)."""
    _fields_ = [("master", ctypes.c_uint16), ("app", ctypes.c_uint16), ("category", ctypes.c_int)]


_SIGNATURES: dict[str, tuple[object, list]] = {
    "ndpi_revision": (ctypes.c_char_p, []),
    "ndpi_init_detection_module": (_p, [ctypes.c_int]),
    "ndpi_set_protocol_detection_bitmask2": (None, [_p, _p]),
    "ndpi_finalize_initialization": (None, [_p]),
    "ndpi_exit_detection_module": (None, [_p]),
    "ndpi_detection_get_sizeof_ndpi_flow_struct": (_u32, []),
    "ndpi_detection_process_packet": (Protocol, [_p, _p, ctypes.c_char_p, ctypes.c_ushort, _u64]),
    "ndpi_extra_dissection_possible": (_u8, [_p, _p]),
    "ndpi_detection_giveup": (Protocol, [_p, _p, _u8, ctypes.POINTER(_u8)]),
    "ndpi_free_flow_data": (None, [_p]),
    "ndpi_protocol2name": (ctypes.c_char_p, [_p, Protocol, ctypes.c_char_p, ctypes.c_uint]),
    "ndpi_category_get_name": (ctypes.c_char_p, [_p, ctypes.c_int]),
    "ndpi_init_serializer": (ctypes.c_int, [_p, ctypes.c_int]),
    "ndpi_reset_serializer": (None, [_p]),
    "ndpi_term_serializer": (None, [_p]),
    "ndpi_serializer_get_buffer": (_p, [_p, ctypes.POINTER(_u32)]),
    "ndpi_dpi2json": (ctypes.c_int, [_p, _p, Protocol, _p]),
    "ndpi_risk2str": (ctypes.c_char_p, [ctypes.c_int]),
    "ndpi_risk2score": (_u16, [_u64, ctypes.POINTER(_u16), ctypes.POINTER(_u16)]),
}


@functools.cache
def find() -> str | None:
    """`libndpi.so.4.2` if the dynamic linker knows it (and no other libndpi before it)."""
    return SONAME if ctypes.util.find_library(NAME) == SONAME else None


class Library:
    def __init__(self, path: str):
        self._c = c = ctypes.CDLL(path)
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(c, name)
            fn.restype, fn.argtypes = restype, argtypes
        self.version = (c.ndpi_revision() or b"?").decode("ascii", "replace")
        if not self.version.startswith("4.2"):
            raise RuntimeError(f"nDPI {self.version[:20]}: this binding is for 4.2")
        self._mod = self._module()
        self.flow_size = c.ndpi_detection_get_sizeof_ndpi_flow_struct()
        self._ser = ctypes.create_string_buffer(_SERIALIZER_BYTES)
        if c.ndpi_init_serializer(self._ser, JSON) != 0:
            raise RuntimeError("ndpi_init_serializer failed")
        self._process, self._extra = c.ndpi_detection_process_packet, c.ndpi_extra_dissection_possible

    def _module(self) -> int:
        c = self._c
        mod = c.ndpi_init_detection_module(0)  # ndpi_no_prefs
        if not mod:
            raise RuntimeError("ndpi_init_detection_module failed")
        c.ndpi_set_protocol_detection_bitmask2(mod, (_u32 * _BITMASK_WORDS)(*[0xFFFFFFFF] * _BITMASK_WORDS))
        c.ndpi_finalize_initialization(mod)
        return mod

    def renew(self) -> None:
        """A fresh detection module, nothing of the flows before it kept (every flow state of the
        old one must have been described, i.e. freed, first)."""
        self._c.ndpi_exit_detection_module(self._mod)
        self._mod = self._module()

    def process(self, flow: ctypes.Array, packet: bytes, ms: int) -> Protocol:
        """One IP packet of the flow (ms: its time) -> what nDPI makes of the flow so far."""
        return self._process(self._mod, flow, packet, min(len(packet), 0xFFFF), ms)

    def new_flow(self) -> ctypes.Array:
        return ctypes.create_string_buffer(self.flow_size)

    def more_possible(self, flow: ctypes.Array) -> bool:
        """Whether nDPI would read more of a detected flow (a TLS certificate after its hello)."""
        return bool(self._extra(self._mod, flow))

    def give_up(self, flow: ctypes.Array) -> Protocol:
        guessed = _u8()
        return self._c.ndpi_detection_giveup(self._mod, flow, 1, ctypes.byref(guessed))

    def describe(self, flow: ctypes.Array, proto: Protocol) -> tuple[str, str, list[str], int]:
        """(app, category, risks as nDPI names them, risk score) of a flow; then frees its state."""
        c = self._c
        buf = ctypes.create_string_buffer(_NAME_BYTES)
        app = (c.ndpi_protocol2name(self._mod, proto, buf, _NAME_BYTES) or b"Unknown").decode("utf-8", "replace")
        category = (c.ndpi_category_get_name(self._mod, proto.category) or b"Unspecified").decode("utf-8", "replace")
        c.ndpi_reset_serializer(self._ser)
        c.ndpi_dpi2json(self._mod, flow, proto, self._ser)
        size = _u32()
        out = c.ndpi_serializer_get_buffer(self._ser, ctypes.byref(size))
        ids = sorted({int(i) for i in _RISK_ID.findall(m.group(1))}) \
            if out and (m := _RISKS.match(ctypes.string_at(out, min(size.value, 16384)))) else []
        c.ndpi_free_flow_data(flow)
        risks = [(c.ndpi_risk2str(i) or b"").decode("utf-8", "replace") for i in ids if i < 64]
        bits = sum(1 << i for i in ids if i < 64)
        client, server = _u16(), _u16()
        score = c.ndpi_risk2score(bits, ctypes.byref(client), ctypes.byref(server)) if bits else 0
        return app, category, [r for r in risks if r], int(score)

    def close(self) -> None:
        self._c.ndpi_term_serializer(self._ser)
        self._c.ndpi_exit_detection_module(self._mod)

