"""Backends: one translator per event store, one method per node kind."""
