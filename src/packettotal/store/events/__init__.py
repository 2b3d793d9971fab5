"""Event stores: the embedded tantivy index (default) behind the EventStore interface."""
