"""Event stores of every registered backend for tests: tantivy always; OpenSearch only against a
real server named by PACKETTOTAL_TEST_OPENSEARCH_URL (each store in an index of its own, deleted
after), skipped otherwise. No stand-in plays OpenSearch."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from packettotal.store.events import BACKENDS
from packettotal.store.events.base import EventStore

from .conftest import settings

OPENSEARCH_URL = os.environ.get("PACKETTOTAL_TEST_OPENSEARCH_URL", "")


@contextmanager
def event_store(backend: str, home: Path) -> Iterator[EventStore]:
    if backend == "opensearch":
        if not OPENSEARCH_URL:
            pytest.skip("no OpenSearch server: set PACKETTOTAL_TEST_OPENSEARCH_URL=http://host:9200 to run these")
        base, _, query = OPENSEARCH_URL.partition("?")
        url = f"{base.rstrip('/')}/packettotal-test-{uuid.uuid4().hex[:12]}" + (f"?{query}" if query else "")
        s = BACKENDS[backend](settings(home, events_backend="opensearch", events_url=url))
    else:
        s = BACKENDS[backend](settings(home))
    try:
        yield s
    finally:
        if backend == "opensearch":
            s.client.indices.delete(index=s.index)  # type: ignore[attr-defined]
        s.close()
