"""Receive an uploaded capture: the multipart body streams to a file in the work folder, counted
as it comes, so an over-size upload is refused early and never held in memory."""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from ..auth import secrets
from ..errors import RefusedCapture, StorageFull, disk_full
from ..ingest.validate import human_size

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

FIELD = "file"
CSRF_FIELD = "csrf_token"  # a signed-in form's token: a part before `file` (web/access.check_csrf)
MAX_TOKEN = 256
SLACK = 64 * 1024  # multipart framing allowed on top of the file itself
CSRF_REFUSED = "the form's CSRF token is missing or wrong: reload the page and try again"


@dataclass
class Received:
    path: Path
    filename: str  # as sent by the client: shown, never used as a path
    size: int


class _Receiver:
    def __init__(self, dest: Path, limit: int, csrf: str | None = None):
        self.dest, self.limit, self.csrf = dest, limit, csrf  # csrf: the token the body must carry
        self.token: bytearray | None = None  # the csrf_token part's, while it is read
        self.sent_token = b""
        self.out: BinaryIO | None = None
        self.size = 0
        self.filename = ""
        self.done = False
        self._field = self._value = b""
        self._headers: dict[bytes, bytes] = {}

    def callbacks(self) -> MultipartCallbacks:
        return {"on_part_begin": self._begin, "on_header_field": self._hfield, "on_header_value": self._hvalue,
                "on_header_end": self._hend, "on_headers_finished": self._headers_done,
                "on_part_data": self._data, "on_part_end": self._end}

    def _begin(self) -> None:
        self._headers = {}

    def _hfield(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _hvalue(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _hend(self) -> None:
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field = self._value = b""

    def _headers_done(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        if params.get(b"name") == CSRF_FIELD.encode() and self.out is None and not self.done:
            self.token = bytearray()
        if params.get(b"name") == FIELD.encode() and self.out is None and not self.done:
            if self.csrf is not None and not secrets.same(self.sent_token.decode("utf-8", "replace"), self.csrf):
                raise RefusedCapture(CSRF_REFUSED, status=403)  # before a byte of the file is written
            self.filename = params.get(b"filename", b"").decode("utf-8", "replace")
            self.out = open(self.dest, "wb")

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self.token is not None:
            self.token += data[start:end]
            if len(self.token) > MAX_TOKEN:
                raise RefusedCapture(CSRF_REFUSED, status=403)
            return
        if self.out is None:
            return
        self.size += end - start
        if self.size > self.limit:
            raise RefusedCapture(f"the upload is over the limit of {human_size(self.limit)}", status=413)
        self.out.write(data[start:end])

    def _end(self) -> None:
        if self.token is not None:
            self.sent_token, self.token = bytes(self.token), None
        if self.out is not None:
            self.out.close()
            self.out = None
            self.done = True


async def receive(request: Request, work_dir: Path, limit: int) -> Received:
    """Stream the `file` part of a multipart upload to disk. A signed-in form posted without the
    CSRF header carries its token in a `csrf_token` part before the file (access.check_csrf
    leaves it to this: `request.state.csrf_pending`). Raises RefusedCapture (400/403/413; 507,
    StorageFull, when the disk is full)."""
    ctype, params = parse_options_header(request.headers.get("content-type"))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise RefusedCapture("send the capture as multipart/form-data in a part named 'file'", status=415)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + SLACK:
        raise RefusedCapture(f"the upload is {human_size(int(declared))}, over the limit of "
                             f"{human_size(limit)}", status=413)
    work_dir.mkdir(parents=True, exist_ok=True)
    dest = work_dir / f"upload-{uuid.uuid4().hex}"
    receiver = _Receiver(dest, limit, getattr(request.state, "csrf_pending", None))
    try:
        parser = MultipartParser(params[b"boundary"], receiver.callbacks())
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except RefusedCapture:
        _discard(receiver, dest)
        raise
    except ClientDisconnect:
        _discard(receiver, dest)
        raise RefusedCapture("the upload was interrupted", status=400) from None
    except Exception as exc:  # the parser's own errors: a malformed body
        _discard(receiver, dest)
        if disk_full(exc):
            raise StorageFull() from None
        raise RefusedCapture(f"the multipart body could not be read: {str(exc)[:200]}", status=400) from None
    if not receiver.done:
        _discard(receiver, dest)
        raise RefusedCapture("no file was sent: the form needs a part named 'file'", status=400)
    return Received(dest, receiver.filename, receiver.size)


def _discard(receiver: _Receiver, dest: Path) -> None:
    if receiver.out is not None:
        with contextlib.suppress(OSError):
            receiver.out.close()
    dest.unlink(missing_ok=True)
