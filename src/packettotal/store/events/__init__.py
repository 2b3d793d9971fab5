"""Event stores behind the EventStore interface (base.py), chosen by the setting events_backend (its
check in config.py lists them): the embedded tantivy index is the default. A backend registers its
store class here."""

from __future__ import annotations

from collections.abc import Callable

from ...config import Settings
from ...errors import ConfigError
from .base import EventStore
from .tantivy import TantivyEventStore


def _tantivy(s: Settings) -> EventStore:
    return TantivyEventStore(s.index_dir, query_seconds=s.query_seconds or None)


def _opensearch(s: Settings) -> EventStore:
    if not s.events_url:
        raise ConfigError("events_backend opensearch needs events_url (PACKETTOTAL_EVENTS_URL): the server's URL")
    try:
        from .opensearch import OpenSearchEventStore  # the optional extra: pip install packettotal[opensearch]
    except ImportError:
        raise ConfigError("events_backend opensearch needs opensearch-py: "
                          "pip install 'packettotal[opensearch]'") from None
    return OpenSearchEventStore(s.events_url, query_seconds=s.query_seconds or None)


BACKENDS: dict[str, Callable[[Settings], EventStore]] = {"tantivy": _tantivy, "opensearch": _opensearch}


def open_events(settings: Settings) -> EventStore:
    return BACKENDS[settings.events_backend](settings)  # the setting's check names the choices
