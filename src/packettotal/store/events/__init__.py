"""Event stores behind the EventStore interface (base.py), chosen by the setting events_backend:
the embedded tantivy index is the default. A backend registers its store class here."""

from __future__ import annotations

from collections.abc import Callable

from ...config import Settings
from ...errors import ConfigError
from .base import EventStore
from .tantivy import TantivyEventStore


def _tantivy(s: Settings) -> EventStore:
    return TantivyEventStore(s.index_dir, query_seconds=s.query_seconds or None)


BACKENDS: dict[str, Callable[[Settings], EventStore]] = {"tantivy": _tantivy}


def open_events(settings: Settings) -> EventStore:
    try:
        make = BACKENDS[settings.events_backend]
    except KeyError:
        raise ConfigError(f"setting events_backend: one of {', '.join(BACKENDS)}, "
                          f"not {settings.events_backend!r}") from None
    return make(settings)
