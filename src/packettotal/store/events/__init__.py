"""Event stores behind the EventStore interface (base.py), chosen by the setting events_backend (its
check in config.py lists them): the embedded tantivy index is the default. A backend registers its
store class here."""

from __future__ import annotations

from collections.abc import Callable

from ...config import Settings
from .base import EventStore
from .tantivy import TantivyEventStore


def _tantivy(s: Settings) -> EventStore:
    return TantivyEventStore(s.index_dir, query_seconds=s.query_seconds or None)


BACKENDS: dict[str, Callable[[Settings], EventStore]] = {"tantivy": _tantivy}


def open_events(settings: Settings) -> EventStore:
    return BACKENDS[settings.events_backend](settings)  # the setting's check names the choices
