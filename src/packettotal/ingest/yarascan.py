"""YARA on carved files (yara-x): a folder of rule files compiled into one rule set, and scans of
one file at a time with bounded results. A carved file is attacker-controlled: its matches keep
no bytes of it, only rule facts (from the rules) and offsets, each list bounded."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import yara_x

from ..errors import YaraError

log = logging.getLogger("packettotal")
SUFFIXES = (".yar", ".yara")
MAX_RULES = 50         # matching rules kept per file
MAX_STRINGS = 10       # matched string identifiers kept per rule
MAX_OFFSETS = 5        # offsets kept per string
MAX_ITEMS = 20         # tags and meta entries kept per rule
MAX_TEXT = 200         # characters of a name, tag or meta value
MATCHES_PER_PATTERN = 10_000  # what the scanner records of one string (bounds its memory on a large file)

Fingerprint = tuple[tuple[str, int, int], ...]  # (relative path, mtime_ns, size) of each rule file


@dataclass(frozen=True)
class RuleSet:
    rules: yara_x.Rules
    version: str             # sha256 over the rule files' names and contents
    count: int               # rules compiled
    files: tuple[str, ...]   # rule files, relative to the folder (each one namespace)


@dataclass(frozen=True)
class Scan:
    matches: list[dict]      # bounded: rule, namespace, tags, meta, strings [{id, offsets}]
    error: str | None        # why the file was not (fully) scanned


def rule_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise YaraError(f"YARA rules folder {folder} is not a folder (setting yara_rules_dir)")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file())


def fingerprint(folder: Path) -> Fingerprint:
    """What changes when a rule file is added, removed or written: cheap (one stat per file)."""
    out = []
    for p in rule_files(folder):
        st = p.stat()
        out.append((p.relative_to(folder).as_posix(), st.st_mtime_ns, st.st_size))
    return tuple(out)


def compile(folder: Path) -> RuleSet:
    """Every rule file of the folder, each in a namespace named after it. Raises YaraError with
    the library's message (file, line, column) for the first file it refuses."""
    digest = hashlib.sha256()
    compiler = yara_x.Compiler()
    compiler.enable_includes(False)  # the folder is the rule set: its version hashes all of it
    names = []
    for path in rule_files(folder):
        name = path.relative_to(folder).as_posix()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise YaraError(f"cannot read YARA rule file {path}: {exc}") from None
        raw = text.encode()
        digest.update(b"%d:%s\0%d:" % (len(name.encode()), name.encode(), len(raw)) + raw)
        compiler.new_namespace(name)
        try:
            compiler.add_source(text, origin=str(path))
        except yara_x.CompileError as exc:
            raise YaraError(f"YARA refused {name}: {exc}") from None
        names.append(name)
    rules = compiler.build()
    return RuleSet(rules, digest.hexdigest(), sum(1 for _ in rules), tuple(names))


def scan(ruleset: RuleSet, path: Path, timeout: int, max_bytes: int) -> Scan:
    """The rules' matches on one file, bounded (a file over `max_bytes` is not scanned; one that
    takes over `timeout` seconds is marked, with no matches)."""
    size = path.stat().st_size
    if size > max_bytes:
        return Scan([], f"not scanned: {size:,} bytes, above yara_max_bytes ({max_bytes:,})")
    scanner = yara_x.Scanner(ruleset.rules)
    scanner.set_timeout(timeout)
    scanner.max_matches_per_pattern(MATCHES_PER_PATTERN)
    try:
        results = scanner.scan_file(str(path))
    except yara_x.TimeoutError:
        return Scan([], f"timed out after {timeout} s (setting yara_timeout)")
    except yara_x.ScanError as exc:
        return Scan([], f"scan failed: {_text(str(exc))}")
    found = list(results.matching_rules)
    matches = [_match(r) for r in found[:MAX_RULES]]
    return Scan(matches, f"{len(found):,} rules matched: the first {MAX_RULES} kept" if len(found) > MAX_RULES
                else None)


def _text(v: object) -> str:
    s = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
    return s if len(s) <= MAX_TEXT else s[:MAX_TEXT] + "…"


def _meta_value(v: object) -> str | int | float | bool:
    return v if isinstance(v, bool | int | float) else _text(v)


def _match(rule: yara_x.Rule) -> dict:
    strings = [{"id": _text(p.identifier), "offsets": [m.offset for m in list(p.matches)[:MAX_OFFSETS]]}
               for p in rule.patterns if p.matches]
    return {"rule": _text(rule.identifier), "namespace": _text(rule.namespace),
            "tags": [_text(t) for t in rule.tags[:MAX_ITEMS]],
            "meta": {_text(k): _meta_value(v) for k, v in rule.metadata[:MAX_ITEMS]},
            "strings": strings[:MAX_STRINGS]}


class Watcher:
    """A folder's rules, compiled again when its files change (their mtimes and sizes are checked
    each time the rules are asked for). A refused change is logged and kept as `error`; the last
    good rules stay in use, across processes too: they are kept compiled in the file `cache`."""

    def __init__(self, folder: Path, cache: Path, on_change: Callable[[RuleSet], None] | None = None):
        self.folder = folder
        self.cache = cache
        self.on_change = on_change  # called (outside the lock) when the rules' version changes
        self.error: str | None = None
        self._seen: Fingerprint | None = None
        self._lock = threading.Lock()
        self._current = self._load_cache()

    @property
    def current(self) -> RuleSet | None:
        """The rules in use (None: none compiled yet), after checking the folder."""
        changed = None
        with self._lock:
            try:
                seen = fingerprint(self.folder)
            except (OSError, YaraError) as exc:
                self._refused(exc.message if isinstance(exc, YaraError) else f"cannot read {self.folder}: {exc}")
                return self._current
            if seen != self._seen:
                self._seen = seen
                try:
                    new = compile(self.folder)
                except YaraError as exc:
                    self._refused(exc.message)
                    return self._current
                self.error = None
                if self._current is None or new.version != self._current.version:
                    self._current = changed = new
                    self._save_cache(new)
            current = self._current
        if changed is not None and self.on_change is not None:
            self.on_change(changed)
        return current

    def _refused(self, message: str) -> None:
        if message != self.error:
            log.error("%s; %s", message, "the last good YARA rules stay in use" if self._current
                      else "no YARA rules in use")
        self.error = message

    def _load_cache(self) -> RuleSet | None:
        try:
            with open(self.cache, "rb") as f:  # one line of JSON facts, then the compiled rules
                meta = orjson.loads(f.readline())
                rules = yara_x.Rules.deserialize_from(f)
            if meta["folder"] != str(self.folder):  # another folder's rules: not this one's last good
                return None
            return RuleSet(rules, meta["version"], meta["count"], tuple(meta["files"]))
        except (OSError, ValueError, KeyError, TypeError):  # none yet, or unreadable: compiled anew
            return None

    def _save_cache(self, ruleset: RuleSet) -> None:
        tmp = self.cache.with_name(f"{self.cache.name}.{os.getpid()}.tmp")
        try:
            self.cache.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(orjson.dumps({"folder": str(self.folder), "version": ruleset.version,
                                      "count": ruleset.count, "files": list(ruleset.files)}) + b"\n")
                ruleset.rules.serialize_into(f)
            tmp.replace(self.cache)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            log.warning("could not keep the compiled YARA rules in %s: %s", self.cache, exc)
