"""A filter narrowed to one value of a field (a click on a top value): `field:"value"`, quoted
for the query language whatever the value holds, added to the filter typed so far."""

from __future__ import annotations

from ..errors import QueryError
from . import lucene


def phrase(value: str | int) -> str:
    """A value as a quoted phrase: backslashes and double quotes escaped, nothing else needed."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def clause(field: str, value: str | int) -> str:
    return f"{field}:{phrase(value)}"


def prefix(text: str) -> str | None:
    """What goes before a clause added to the filter `text`: nothing, `text AND ` or `(text) AND `
    (parentheses only when needed: `a OR b AND c` mixes operators); None when the filter is not
    a query the parser takes."""
    text = text.strip()
    if not text or text == "*":
        return ""
    for candidate in (f"{text} AND ", f"({text}) AND "):
        try:
            lucene.parse(candidate + 'event_type:"x"')
        except QueryError:
            continue
        return candidate
    return None


def narrowed(text: str, field: str, value: str | int) -> str | None:
    """The filter `text` narrowed to `field:"value"`; None when that would be no query (the
    filter is not one, or the result is longer than the parser takes)."""
    start = prefix(text)
    return joined(start, field, value) if start is not None else None


def joined(start: str, field: str, value: str | int) -> str | None:
    query = start + clause(field, value)
    return query if len(query) <= lucene.MAX_QUERY else None
