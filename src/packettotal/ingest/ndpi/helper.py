"""The nDPI helper: a long-lived process of ours (one per engine worker) that loads libndpi once
and analyses the captures it is given, one at a time. Started by `ndpi.Helper`:

    python -m packettotal.ingest.ndpi.helper SOCKET_FD LIBRARY PARENT_PID [UID GID]

It imports all it needs, then (when given an account) drops to it and asks again to be killed
with its parent (a change of user clears that request), then initialises nDPI and says hello.
Over the socket it then receives a request (JSON: max_flows) carrying an open file descriptor
of the capture (SCM_RIGHTS: it opens no file of PacketTotal's), and answers with one message,
an 8-byte length then JSON: {flows, dropped, dropped_more} or {error}; then it replaces nDPI's
detection module with a fresh one, so that nothing of one capture is kept for the next (lib.py).
A crash ends only the process; the parent reports it for that capture and starts another helper.
"""

from __future__ import annotations

import array  # noqa: F401 (socket.recv_fds imports it when first called: here, before the drop)
import ctypes
import json
import os
import socket
import struct
import sys
from typing import BinaryIO

from ..flowpackets import walk_file
from .decode import five_tuple, ip_offset
from .lib import Library

# as ndpiReader 4.2 (reader_util.c): packets of a flow given to nDPI before it gives up on it
MAX_PACKETS = {6: 80, 17: 16}
MAX_SKIPPED = 1_000_000  # distinct flows past max_flows counted (~240 B each); past that, "at least"
_LENGTH = struct.Struct("!Q")


class Flow:
    __slots__ = ("ends", "first_seen", "state", "packets", "found")

    def __init__(self, ends: tuple[int, bytes, int, bytes, int], first_seen: float, state: ctypes.Array):
        self.ends, self.first_seen, self.state = ends, first_seen, state
        self.packets = 0
        self.found: tuple[str, str, list[str], int] | None = None  # app, category, risks, score


def analyse(ndpi: Library, capture: BinaryIO, max_flows: int, max_skipped: int = MAX_SKIPPED) -> dict:
    """Each flow of the capture with nDPI's app, category, risks and score (first max_flows flows;
    the others counted, up to max_skipped distinct ones: past that, dropped_more says there were
    more). A flow's packets go to nDPI until it has named the flow and needs no more (or after
    MAX_PACKETS), as ndpiReader does; flows still open at the end are given up."""
    flows: dict[tuple, Flow] = {}
    skipped: set[tuple] = set()
    more = False
    for p in walk_file(capture):
        if isinstance(p, tuple):
            continue
        at = ip_offset(p.linktype, p.data)
        ends = five_tuple(p.data, at) if at >= 0 else None
        if ends is None:
            continue
        proto, a, a_port, b, b_port = ends
        key = (proto, a, a_port, b, b_port) if (a, a_port) <= (b, b_port) else (proto, b, b_port, a, a_port)
        flow = flows.get(key)
        if flow is None:
            if len(flows) >= max_flows:
                if len(skipped) < max_skipped:
                    skipped.add(key)
                else:
                    more = more or key not in skipped
                continue
            flow = flows[key] = Flow(ends, p.ts, ndpi.new_flow())
        if flow.found is not None:
            continue
        flow.packets += 1
        found = ndpi.process(flow.state, p.data[at:], int(p.ts * 1000))
        enough = flow.packets > MAX_PACKETS.get(proto, 1 << 30)
        if enough or found.app:
            if not enough and ndpi.more_possible(flow.state):
                continue  # a certificate after the hello, ...
            flow.found = ndpi.describe(flow.state, found if found.app else ndpi.give_up(flow.state))
    out = []
    for flow in flows.values():
        if flow.found is None:
            flow.found = ndpi.describe(flow.state, ndpi.give_up(flow.state))
        proto, a, a_port, b, b_port = flow.ends
        app, category, risks, score = flow.found
        out.append({"proto": proto, "first_seen": flow.first_seen, "src_ip": _ip(a), "src_port": a_port,
                    "dest_ip": _ip(b), "dest_port": b_port, "app": app, "category": category, "risks": risks,
                    "risk_score": score})
    return {"flows": out, "dropped": len(skipped), "dropped_more": more}


def _ip(raw: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)


def send(sock: socket.socket, message: dict) -> None:
    body = json.dumps(message, separators=(",", ":")).encode()
    sock.sendall(_LENGTH.pack(len(body)) + body)


def _drop_to(uid: int, gid: int, parent: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, 9) == -1:  # PR_SET_PDEATHSIG, SIGKILL: set again
        os._exit(1)  # it would outlive PacketTotal
    if os.getppid() != parent:  # the parent died before that
        os._exit(1)


def main(argv: list[str]) -> None:
    sock = socket.socket(fileno=int(argv[0]))
    if len(argv) == 5:
        _drop_to(int(argv[3]), int(argv[4]), int(argv[2]))
    try:
        ndpi = Library(argv[1])
    except (OSError, RuntimeError, AttributeError) as exc:  # not loadable, another version, a symbol missing
        send(sock, {"error": str(exc)[:300]})
        return
    send(sock, {"version": ndpi.version})
    while True:
        msg, fds, _, _ = socket.recv_fds(sock, 4096, 1)
        if not msg:
            return  # the parent closed its end
        try:
            request = json.loads(msg)
            if len(fds) != 1:
                raise ValueError("no capture given")
            with os.fdopen(fds.pop(), "rb") as capture:
                answer = analyse(ndpi, capture, int(request["max_flows"]))
        except (OSError, ValueError, KeyError) as exc:  # an unreadable file, an empty one (mmap), ...
            answer = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
        finally:
            for fd in fds:
                os.close(fd)
        send(sock, answer)
        try:
            ndpi.renew()  # while the parent reads the answer: the next capture starts from nothing
        except RuntimeError:
            return  # dead: the parent finds it so and starts another


if __name__ == "__main__":
    main(sys.argv[1:])
