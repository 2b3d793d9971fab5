"""Storage: relational metadata (store.db), event index (store.events), blobs (store.blobs)."""
