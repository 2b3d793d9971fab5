"""One service door: the web, the API, the CLI and the jobs read and write through PacketTotal's
methods, never its stores, and the application is put together in one place (instance.py)."""

import ast
import hashlib
from pathlib import Path

import pytest

from packettotal import service as service_mod
from packettotal.errors import NotFound, QueryError
from packettotal.ingest.suricata import EnginePool
from packettotal.service import PacketTotal
from packettotal.store.blobs import Blobs
from packettotal.store.db import Database
from packettotal.store.events.tantivy import TantivyEventStore

from .conftest import PCAPS, analyse, settings

SRC = Path(__file__).resolve().parents[1] / "src" / "packettotal"
PRIVATE = frozenset({"_db", "_events", "_blobs", "_pool"})  # the service's stores
BUILDERS = frozenset({"PacketTotal", "LocalJobs", "EnginePool"})  # made only in instance.py
# packettotal.store modules a caller may import, each with the reason: none needed (the service
# re-exports MAX_OFFSET and searchable)
ALLOWED_STORE_IMPORTS: dict[str, str] = {}


def callers() -> list[Path]:
    return sorted([*(SRC / "web").glob("*.py"), SRC / "cli.py", *(SRC / "jobs").glob("*.py"),
                   SRC / "instance.py"])


def _package(path: Path) -> list[str]:
    return ["packettotal", *path.parent.relative_to(SRC).parts]


def _imported(node: ast.ImportFrom, package: list[str]) -> list[str]:
    """The modules a `from ... import` names, absolute (`from .. import store` names store too)."""
    base = package[:len(package) - node.level + 1] if node.level else []
    module = [*base, *(node.module.split(".") if node.module else [])]
    return [".".join(module)] + [".".join([*module, a.name]) for a in node.names]


def reaching_past(source: str, package: list[str], builds: bool = False) -> list[str]:
    """What in this source reads a store past the service, or (unless it `builds`) puts the
    application together itself."""
    found = []
    for node in ast.walk(ast.parse(source)):
        where = f"line {getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute) and node.attr in PRIVATE:
            found.append(f"{where}: .{node.attr}")
        modules = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            _imported(node, package) if isinstance(node, ast.ImportFrom) else []
        found += [f"{where}: imports {m}" for m in modules
                  if (m == "packettotal.store" or m.startswith("packettotal.store."))
                  and m not in ALLOWED_STORE_IMPORTS]
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in BUILDERS and not builds:
                found.append(f"{where}: builds {name}")
    return found


def test_callers_go_through_the_service_door():
    checked = callers()
    assert len(checked) >= 10 and SRC / "web" / "pages.py" in checked
    found = {}
    for path in checked:
        if hits := reaching_past(path.read_text(), _package(path), builds=path == SRC / "instance.py"):
            found[str(path.relative_to(SRC))] = hits
    assert found == {}


@pytest.mark.parametrize("source, package, expected", [
    ("rows = service._db.capture_files(cid)", ["packettotal", "web"], ["line 1: ._db"]),
    ("x = self.service._pool.warm(t)", ["packettotal", "jobs"], ["line 1: ._pool"]),
    ("from ..store.events.tantivy import MAX_OFFSET", ["packettotal", "web"],
     ["line 1: imports packettotal.store.events.tantivy",
      "line 1: imports packettotal.store.events.tantivy.MAX_OFFSET"]),
    ("from .store import db", ["packettotal"],
     ["line 1: imports packettotal.store", "line 1: imports packettotal.store.db"]),
    ("from .. import store", ["packettotal", "web"], ["line 1: imports packettotal.store"]),
    ("import packettotal.store.blobs", ["packettotal"], ["line 1: imports packettotal.store.blobs"]),
    ("pt = PacketTotal(settings)", ["packettotal"], ["line 1: builds PacketTotal"]),
    ("jobs = local.LocalJobs(pt)", ["packettotal", "web"], ["line 1: builds LocalJobs"]),
    ("from ..service import MAX_OFFSET\nrows = service.capture_files(cid)\npage.events", ["packettotal", "web"], []),
])
def test_the_check_sees_each_way_past_the_door(source, package, expected):
    assert reaching_past(source, package) == expected


def test_the_service_keeps_its_stores_private(tmp_path):
    pt = PacketTotal(settings(tmp_path))
    try:
        public = {k: type(v).__name__ for k, v in vars(pt).items() if not k.startswith("_")
                  and isinstance(v, (Database, TantivyEventStore, Blobs, EnginePool))}
        properties = [k for k, v in vars(PacketTotal).items() if isinstance(v, property) and not k.startswith("_")]
        assert (public, properties) == ({}, [])
        assert isinstance(pt._db, Database) and isinstance(pt._blobs, Blobs)
    finally:
        pt.close()


@pytest.fixture(scope="module")
def files_capture(service):
    row = analyse(service, PCAPS / "sv-http-4files.pcap")
    assert row["status"] == "done", row["error"]
    return row


def test_stored_files_are_the_carved_files_kept(service, files_capture):
    cid = files_capture["id"]
    rows = service.capture_files(cid)
    stored = service.stored_files(cid)
    assert stored and set(stored) == {r["sha256"] for r in rows if r["stored"]}
    for sha, path in stored.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
        assert service.carved_file(cid[:12], sha)["capture_id"] == cid


def test_a_file_not_kept_for_that_capture_is_not_found(service, files_capture):
    sha = next(iter(service.stored_files(files_capture["id"])))
    with pytest.raises(NotFound, match=f"capture {files_capture['id'][:12]} has no stored file {'0' * 64}"):
        service.carved_file(files_capture["id"], "0" * 64)
    other = analyse(service, PCAPS / "sv-dns-udp-txt.pcap")
    with pytest.raises(NotFound, match="has no stored file"):  # kept, but carved from another capture
        service.carved_file(other["id"], sha)
    with pytest.raises(NotFound, match="no capture"):
        service.carved_file("f" * 64, sha)


def test_the_capture_is_read_as_stored(service, files_capture):
    cid = files_capture["id"]
    with service.open_capture(cid) as f:
        data = f.read()
    assert hashlib.sha256(data).hexdigest() == cid == hashlib.sha256(service.capture_path(cid).read_bytes()).hexdigest()
    with pytest.raises(NotFound, match=f"no captures blob {'e' * 64}"):
        service.open_capture("e" * 64)


def test_an_export_refuses_a_bad_query_before_its_first_event(service, files_capture):
    with pytest.raises(QueryError):
        service.export_events(files_capture["id"], "http", "http.hostname:(")
    with pytest.raises(QueryError):
        service.export_search("http.hostname:(", 10)
    everything = list(service.export_events(files_capture["id"]))
    http = list(service.export_events(files_capture["id"], "http", "http.status:200"))
    assert {r["event_type"] for r in http} == {"http"} and 0 < len(http) < len(everything)


def test_a_search_export_reads_page_after_page_up_to_its_limit(service, files_capture, monkeypatch):
    query = "event_type:(flow OR fileinfo OR http OR dns)"
    best = service.search_events(query, limit=1000)
    assert best.total >= 7
    monkeypatch.setattr(service_mod, "EXPORT_PAGE", 3)
    assert list(service.export_search(query, 7)) == best.events[:7]
    assert list(service.export_search(query, 10_000)) == best.events
