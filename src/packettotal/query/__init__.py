"""Query: Lucene text -> typed node tree (lucene.py) -> field mapping (fields.py) -> backends."""
