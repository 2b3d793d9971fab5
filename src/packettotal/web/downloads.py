"""Files a capture's console offers for download. Carved files only ever leave inside a zip
encrypted with the password `infected` (AES, the convention for malware samples), named by their
sha256: a name taken from the packets never becomes a path, on our disk or in an archive.

Built files are temporary: a response opens one and unlinks it at once, so nothing is left on
disk whatever the client does. Builds run on their own threads (Builds), never the request pool's."""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import orjson
import pyzipper

from .. import export
from ..errors import Busy
from ..ingest.capfile import capture_format
from ..service import PacketTotal

PASSWORD = b"infected"
RUNNING = 2  # zips and CSVs cost a core each: the console stays responsive
WAITING = 16  # builds queued behind those; more are refused (503) rather than piling up
RETRY_AFTER = 10  # seconds, told to a refused client
T = TypeVar("T")
MAX_SEARCH_EXPORT = 100_000
FILE_COLUMNS = ["sha256", "md5", "sha1", "filename", "magic", "size", "state", "stored", "truncated", "app_proto",
                "host", "url", "content_type", "direction", "names", "yara"]  # the last six: service.capture_files


def capture_name(service: PacketTotal, capture_id: str) -> str:
    """The stored capture's file name: its sha256 and its format's extension, read from the file
    itself (stored decompressed), so a pcapng stays .pcapng, gzipped on upload or not."""
    with open(service.capture_path(capture_id), "rb") as f:
        return f"{capture_id}.{capture_format(f.read(4)) or 'pcap'}"


def folder(service: PacketTotal) -> Path:
    return service.settings.work_dir / "downloads"


def clean(service: PacketTotal) -> None:
    """Leftovers of a previous process (killed while building)."""
    shutil.rmtree(folder(service), ignore_errors=True)


class Builds:
    """Where exports are built: RUNNING at a time on threads of their own, so an export waiting
    for its turn holds none of the workers that serve the other requests; at most WAITING more
    queue behind them, and beyond that an export is refused (Busy) at once."""

    def __init__(self, running: int = RUNNING, waiting: int = WAITING):
        self._threads = ThreadPoolExecutor(running, thread_name_prefix="packettotal-build")
        self._slots = threading.BoundedSemaphore(running + waiting)

    def submit(self, build: Callable[[], T]) -> Future[T]:
        if not self._slots.acquire(blocking=False):
            raise Busy("as many exports as this instance takes are being built: try again shortly",
                       retry_after=RETRY_AFTER)
        future = self._threads.submit(build)
        future.add_done_callback(lambda _: self._slots.release())
        return future

    def close(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)


@contextlib.contextmanager
def building(service: PacketTotal, suffix: str):
    """A temporary path to build into; removed if the build fails."""
    folder(service).mkdir(parents=True, exist_ok=True)
    dest = folder(service) / f"{uuid.uuid4().hex}{suffix}"
    try:
        yield dest
    except BaseException:
        dest.unlink(missing_ok=True)
        raise


def opened(path: Path) -> tuple[io.BufferedReader, int]:
    """Open a built file and unlink it: the data lives as long as the open file, no longer."""
    f = open(path, "rb")
    path.unlink()
    return f, os.fstat(f.fileno()).st_size


def chunks(f: io.BufferedReader) -> Iterator[bytes]:
    with f:
        while chunk := f.read(1 << 20):
            yield chunk


def eve_lines(service: PacketTotal, capture_id: str) -> Iterator[bytes]:
    batch: list[bytes] = []
    for rec in service.export_events(capture_id):
        batch.append(orjson.dumps(rec))
        if len(batch) >= 1000:
            yield b"\n".join(batch) + b"\n"
            batch = []
    if batch:
        yield b"\n".join(batch) + b"\n"


def csv_file(service: PacketTotal, capture_id: str, event_type: str, query: str = "") -> Path:
    return _csv(service, lambda: service.export_events(capture_id, event_type, query))


def tab_csv(service: PacketTotal, cap: dict, tab: str, query: str = "") -> Path:
    """The CSV of a console tab: what it lists (Malicious activity: the threat alerts only)."""
    return _csv(service, lambda: service.export_tab(cap, tab, query))


def _csv(service: PacketTotal, records: Callable[[], Iterable[dict]]) -> Path:
    with building(service, ".csv") as dest, open(dest, "w", newline="", encoding="utf-8") as out:
        export.write_csv(records, out)
    return dest


def _manifest(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FILE_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        cells = {**r, "names": " | ".join(r.get("names") or ()), "yara": yara_cell(r.get("yara"))}
        writer.writerow({k: export.csv_safe(cells.get(k)) for k in FILE_COLUMNS})
    return buf.getvalue()


def yara_cell(scan: dict | None) -> str:
    """A file's YARA scan in one cell: the matching rules (`file:rule`), or why it was not scanned."""
    if not scan:
        return ""
    if scan.get("error"):
        return f"not scanned: {scan['error']}"
    return " ".join(f"{m['namespace']}:{m['rule']}" for m in scan.get("matches") or ())


def _zip(dest: Path) -> pyzipper.AESZipFile:
    z = pyzipper.AESZipFile(dest, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES)
    z.setpassword(PASSWORD)
    return z


def _add_files(z: pyzipper.AESZipFile, service: PacketTotal, capture_id: str, rows: list[dict],
               prefix: str = "") -> None:
    stored = service.stored_files(capture_id)
    for r in rows:
        if r["sha256"] in stored:
            z.write(stored[r["sha256"]], f"{prefix}{r['sha256']}.bin")
    z.writestr(f"{prefix}files.csv", _manifest(rows))


def files_zip(service: PacketTotal, capture_id: str, sha256: str | None = None) -> Path:
    """One carved file, or all of a capture's, with a manifest of their original names."""
    rows = service.capture_files(capture_id)
    if sha256:
        rows = [r for r in rows if r["sha256"] == sha256]
    with building(service, ".zip") as dest, _zip(dest) as z:
        _add_files(z, service, capture_id, rows)
    return dest


def bundle_zip(service: PacketTotal, capture: dict) -> Path:
    """Everything, as PacketTotal offered: capture, EVE, summary, a CSV per event type, carved files."""
    cid = capture["id"]
    with building(service, ".zip") as dest, _zip(dest) as z:
        z.write(service.capture_path(cid), capture_name(service, cid))
        with z.open("eve.json", "w", force_zip64=True) as out:
            for chunk in eve_lines(service, cid):
                out.write(chunk)
        z.writestr("summary.json", orjson.dumps(
            {k: capture[k] for k in ("id", "md5", "sha1", "name", "size", "status", "warnings", "summary")},
            option=orjson.OPT_INDENT_2, default=str))
        for etype in sorted((capture.get("summary") or {}).get("counts") or {}):
            with z.open(f"csv/{_safe(etype)}.csv", "w", force_zip64=True) as raw, \
                    io.TextIOWrapper(raw, encoding="utf-8", newline="") as out:
                export.write_csv(functools.partial(service.export_events, cid, etype), out)
        _add_files(z, service, cid, service.capture_files(cid), "files/")
    return dest


def _safe(name: str) -> str:
    return "".join(ch for ch in name if ch.isalnum() or ch in "-_")[:40] or "events"


def search_file(service: PacketTotal, query: str, fmt: str) -> Path:
    """The events matching a query (best first, at most MAX_SEARCH_EXPORT), NDJSON or CSV."""
    def matching() -> Iterator[dict]:
        return ({"capture_id": e["capture"], **e["event"]}
                for e in service.export_search(query, MAX_SEARCH_EXPORT))

    with building(service, "." + fmt) as dest:
        if fmt == "ndjson":
            with open(dest, "wb") as out:
                export.write_ndjson(matching(), out)
        else:
            with open(dest, "w", newline="", encoding="utf-8") as text:
                export.write_csv(matching, text)
    return dest
