"""Ingest: validate an upload, run Suricata on it, normalise its EVE output, extract observables."""
