"""The spool: where a process that analyses but does not hold the event index's writer leaves a
capture's finished results for the one that does (jobs/indexer.py).

An entry is a folder `<capture>.<token>.part/` holding `events.jsonl.zst` (the EVE records,
one orjson line each, zstandard-compressed) and `result.json` (the capture's `done` row and how
many events it has), renamed to `<capture>.<token>/` once both are complete: a `.part` folder is
never read. The rename is atomic on one file system, so a reader sees a whole entry or none."""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import zstandard

log = logging.getLogger("packettotal")
EVENTS = "events.jsonl.zst"
RESULT = "result.json"
PART = ".part"
_NAME = re.compile(r"^(?P<capture>[0-9a-f]{64})\.(?P<token>[0-9a-f]{16})(?P<part>\.part)?$")
_TIMES = ("finished_at", "started_at", "submitted_at")  # the row's datetimes (orjson writes them as text)
LEVEL = 3  # zstandard: fast, and a few times smaller than the JSON lines


class SpoolError(Exception):
    """A finished entry that cannot be read (its capture fails with the reason)."""


class Part:
    """An entry being written: its events, then its result; `publish` makes it visible."""

    def __init__(self, root: Path, capture_id: str):
        self.capture_id = capture_id
        self.path = root / f"{capture_id}.{secrets.token_hex(8)}{PART}"
        self.path.mkdir(parents=True)

    def events(self, records: Iterable[dict]) -> int:
        """Write the capture's records (read while Suricata writes them); how many."""
        n = 0
        with open(self.path / EVENTS, "wb") as raw, zstandard.ZstdCompressor(level=LEVEL).stream_writer(raw) as out:
            for rec in records:
                out.write(orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE))
                n += 1
        return n

    def publish(self, row: dict, documents: int) -> Path:
        """Write the result, make everything durable, then rename the entry to its final name."""
        data = orjson.dumps({"row": row, "documents": documents}, option=orjson.OPT_NAIVE_UTC)
        with open(self.path / RESULT, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        with open(self.path / EVENTS, "rb") as f:
            os.fsync(f.fileno())
        final = self.path.with_name(self.path.name.removesuffix(PART))
        os.rename(self.path, final)
        return final

    def abandon(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


@dataclass(frozen=True)
class Entry:
    """A finished entry, to be indexed then removed."""
    capture_id: str
    path: Path

    def result(self) -> tuple[dict, int]:
        """The capture's `done` row and its number of events (raises SpoolError)."""
        try:
            data = orjson.loads((self.path / RESULT).read_bytes())
            row, documents = data["row"], data["documents"]
            for key in _TIMES:
                if isinstance(row.get(key), str):
                    row[key] = dt.datetime.fromisoformat(row[key]).replace(tzinfo=None)
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise SpoolError(f"its spooled result could not be read: {exc}") from None
        if not isinstance(row, dict) or row.get("id") != self.capture_id or type(documents) is not int:
            raise SpoolError("its spooled result is not this capture's")
        return row, documents

    def records(self) -> Iterator[dict]:
        """The capture's events, in order (raises SpoolError on a damaged file)."""
        try:
            with open(self.path / EVENTS, "rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as text:
                for line in _lines(text):
                    yield orjson.loads(line)
        except (OSError, zstandard.ZstdError, orjson.JSONDecodeError) as exc:
            raise SpoolError(f"its spooled events could not be read: {exc}") from None

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _lines(stream) -> Iterator[bytes]:
    rest = b""
    while chunk := stream.read(1 << 20):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from (line for line in lines if line)
    if rest:
        yield rest


class Spool:
    def __init__(self, root: Path):
        self.root = root

    def begin(self, capture_id: str) -> Part:
        if not _NAME.match(f"{capture_id}.{'0' * 16}"):
            raise ValueError(f"not a capture id: {capture_id[:80]!r}")
        return Part(self.root, capture_id)

    def ready(self, limit: int) -> list[Entry]:
        """Up to `limit` finished entries, oldest first, one per capture: a capture spooled twice
        (analysed again) keeps its newest entry, the older ones are removed."""
        newest: dict[str, tuple[float, Path]] = {}
        for path, m, mtime in self._listing():
            if m["part"]:
                continue
            cid = m["capture"]
            kept = newest.get(cid)
            if kept is None or mtime >= kept[0]:
                if kept is not None:
                    shutil.rmtree(kept[1], ignore_errors=True)
                newest[cid] = (mtime, path)
            else:
                shutil.rmtree(path, ignore_errors=True)
        ordered = sorted(newest.items(), key=lambda item: item[1][0])[:limit]
        return [Entry(cid, path) for cid, (_, path) in ordered]

    def captures(self) -> set[str]:
        """The captures with an entry, finished or being written."""
        return {m["capture"] for _, m, _ in self._listing()}

    def sweep(self, older_than: float, known: Callable[[set[str]], Iterable[str]]) -> int:
        """Remove `.part` folders left for `older_than` seconds (their writer died) and the entries
        of captures not `known` (deleted meanwhile: `known` is asked of the captures of the same
        listing, so an entry begun since is never taken for an orphan); how many were removed."""
        listing = list(self._listing())
        keep, cutoff, removed = set(known({m["capture"] for _, m, _ in listing})), time.time() - older_than, 0
        for path, m, mtime in listing:
            if (m["part"] and mtime < cutoff) or m["capture"] not in keep:
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
        if removed:
            log.info("spool: removed %d abandoned or orphaned entries", removed)
        return removed

    def _listing(self) -> Iterator[tuple[Path, re.Match, float]]:
        try:
            children = list(os.scandir(self.root))
        except FileNotFoundError:
            return
        for child in children:
            m = _NAME.match(child.name)
            if m is None or not child.is_dir(follow_symlinks=False):
                continue
            try:
                mtime = child.stat(follow_symlinks=False).st_mtime
            except FileNotFoundError:  # removed meanwhile (indexed, swept)
                continue
            yield Path(child.path), m, mtime
