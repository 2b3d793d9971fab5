"""The OpenSearch index template: explicit mappings from the field catalogue (query/fields.py).

- `capture` (keyword) and `seq` (long): a document's id is `capture:seq`, so indexing a capture
  again overwrites the same documents.
- `event`: the EVE record as Suricata wrote it, kept in `_source` only (`enabled: false`: never
  indexed, so attacker-chosen keys cannot grow the mapping).
- `c.<catalogue name>`: each catalogue field typed by its kind: keyword (lower-cased by a
  normalizer; values over KEYWORD_CHARS characters are kept but not indexed, as OpenSearch refuses
  terms over 32,766 bytes), long, ip (so a CIDR is one term query), date (millisecond precision).
  Values that do not fit the type are dropped by the writer; `ignore_malformed` is the safety net.
- `text`: the record less its bulky members, as words: letters and digits, lower-cased, at most 40
  characters: what the embedded index's default tokenizer keeps, so free text matches alike.
- `f`: the record less its bulky members again, lower-cased, as a `flat_object`: every member
  outside the catalogue searchable by its path with one term query, every leaf a keyword, and the
  mapping never grows with new EVE members (dynamic mapping is `strict` everywhere else).
`c`, `text` and `f` are left out of `_source`: they are derived from `event`."""

from __future__ import annotations

from ...query import fields as catalog

KEYWORD_CHARS = 8191  # 4 bytes a character at most: under Lucene's 32,766-byte term limit
WORDS = {"type": "custom", "tokenizer": "words", "filter": ["lowercase", "words_40"]}
_KINDS = {
    "keyword": {"type": "keyword", "normalizer": "lower", "ignore_above": KEYWORD_CHARS},
    "int": {"type": "long", "ignore_malformed": True},
    "ip": {"type": "ip", "ignore_malformed": True},
    "date": {"type": "date", "format": "strict_date_optional_time||epoch_millis", "ignore_malformed": True},
}


def catalogue_properties() -> dict:
    """Nested object properties for the dotted catalogue names (dns.rrname -> dns: {rrname})."""
    root: dict = {}
    for f in catalog.CATALOG:
        *parents, leaf = f.name.split(".")
        node = root
        for p in parents:
            node = node.setdefault(p, {"properties": {}})["properties"]
        node[leaf] = dict(_KINDS[f.kind])
    return root


def template(index: str, shards: int = 1) -> dict:
    """The body of the index template for `index` (and `index-*`). One shard by default: terms
    aggregations (top values, hits by capture) are then exact, as the embedded index's are."""
    return {
        "index_patterns": [index, f"{index}-*"],
        "template": {
            "settings": {
                "number_of_shards": shards,
                "analysis": {
                    "tokenizer": {"words": {"type": "pattern", "pattern": "[\\W_]+",
                                            "flags": "UNICODE_CHARACTER_CLASS"}},
                    "filter": {"words_40": {"type": "length", "max": 40}},
                    "analyzer": {"words": WORDS},
                    "normalizer": {"lower": {"type": "custom", "filter": ["lowercase"]}},
                },
            },
            "mappings": {
                "dynamic": "strict",
                "_source": {"excludes": ["c", "text", "f"]},
                "properties": {
                    "capture": {"type": "keyword"},
                    "seq": {"type": "long"},
                    "event": {"type": "object", "enabled": False},
                    "text": {"type": "text", "analyzer": "words", "norms": False},
                    "f": {"type": "flat_object"},
                    "c": {"properties": catalogue_properties()},
                },
            },
        },
    }
