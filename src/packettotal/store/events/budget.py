"""Costly queries run in child processes that are killed when they pass their time budget.

tantivy cannot stop a search once started, and one wildcard over a large term dictionary can run
for minutes; a process can be stopped. Wildcards and existence checks (which walk term
dictionaries) go to a child; exact terms, ranges and CIDRs are cheap and stay in-process. A
child opens the same index read-only, reloads it before each query, and is started again after a
kill. Time spent starting a child is not counted against the query."""

from __future__ import annotations

import contextlib
import contextvars
import multiprocessing
import queue
import time
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path

from ...errors import PacketTotalError, QueryTimeout
from ...query.nodes import And, Exists, Not, Or, Wildcard

_START_SECONDS = 60
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("query_deadline", default=None)
_CONTEXT = multiprocessing.get_context("spawn")  # never fork a process that runs tantivy threads


def costly(node: object) -> bool:
    if isinstance(node, (Wildcard, Exists)):
        return True
    if isinstance(node, (And, Or)):
        return any(costly(c) for c in node.children)
    if isinstance(node, Not):
        return costly(node.child)
    return False


def _serve(path: str, conn: Connection) -> None:
    from .tantivy import TantivyEventStore

    store = TantivyEventStore(Path(path))  # no budget: a child runs what it is sent
    conn.send("ready")
    while True:
        try:
            name, args, kwargs, hidden = conn.recv()
        except (EOFError, OSError):
            return
        store.index.reload()
        store.hide_only(hidden)  # what the parent hides (captures being indexed) stays hidden here
        try:
            conn.send(("ok", getattr(store, name)(*args, **kwargs), None, None))
        except PacketTotalError as exc:
            conn.send(("error", type(exc), exc.message, vars(exc)))
        except Exception as exc:  # a bug answers the request, it does not end the child
            conn.send(("bug", f"{type(exc).__name__}: {str(exc)[:300]}", None, None))


class _Child:
    def __init__(self, path: Path):
        self.path = path
        self.proc: multiprocessing.process.BaseProcess | None = None
        self.conn: Connection | None = None

    def _start(self) -> None:
        ours, theirs = _CONTEXT.Pipe()
        self.proc = _CONTEXT.Process(target=_serve, args=(str(self.path), theirs), daemon=True,
                                     name="packettotal-query")
        self.proc.start()
        theirs.close()
        self.conn = ours
        if not ours.poll(_START_SECONDS) or ours.recv() != "ready":
            self.stop()
            raise QueryTimeout(f"the query process did not start within {_START_SECONDS} s")

    def call(self, seconds: float, name: str, args: tuple, kwargs: dict, hidden: frozenset[str]):
        if self.proc is None or not self.proc.is_alive():
            self.stop()
            self._start()
        assert self.conn is not None
        self.conn.send((name, args, kwargs, hidden))
        if not self.conn.poll(seconds):
            self.stop()
            raise QueryTimeout(f"the query ran past its {seconds:g} s budget and was stopped: narrow it "
                               "(fewer or longer wildcards, a field instead of free text, a capture or a time range)")
        try:
            kind, payload, message, state = self.conn.recv()
        except (EOFError, OSError):
            self.stop()
            raise QueryTimeout("the query process ended while running the query: narrow the query") from None
        if kind == "ok":
            return payload
        if kind == "error":
            exc = payload.__new__(payload)
            Exception.__init__(exc, message)
            exc.__dict__.update(state)
            raise exc
        raise RuntimeError(f"query process: {payload}")

    def stop(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.proc is not None:
            self.proc.kill()
            self.proc.join(5)
            self.proc = None


class Budget:
    """Up to `workers` costly queries at once, each stopped after `seconds`; a query that finds
    every child busy for as long as its budget is refused the same way."""

    def __init__(self, path: Path, seconds: float, workers: int = 2):
        self.seconds = seconds
        self._idle: queue.Queue[_Child] = queue.Queue()
        for _ in range(workers):
            self._idle.put(_Child(path))
        self._all = list(self._idle.queue)

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        """Calls made inside share one budget (a search that asks the index several questions)."""
        if _DEADLINE.get() is not None:
            yield
            return
        token = _DEADLINE.set(time.monotonic() + self.seconds)
        try:
            yield
        finally:
            _DEADLINE.reset(token)

    def call(self, hidden: frozenset[str], name: str, *args, **kwargs):
        """Run the store's method `name` in a child, with the parent's hidden captures."""
        deadline = _DEADLINE.get() or time.monotonic() + self.seconds
        try:
            child = self._idle.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            raise QueryTimeout(f"every query process was busy for {self.seconds:g} s: try again shortly") from None
        try:
            return child.call(max(0.01, deadline - time.monotonic()), name, args, kwargs, hidden)
        finally:
            self._idle.put(child)

    def close(self) -> None:
        for child in self._all:
            child.stop()
