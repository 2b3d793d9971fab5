"""The /captures page's context: every capture, filtered and paged (its filters are the API's)."""

from __future__ import annotations

from urllib.parse import urlencode

from ..errors import QueryError
from ..listing import STATUSES
from .listing_params import Filters


def context(service, filters: Filters, limit: int, offset: int) -> dict:
    """What captures.html shows; `error` is a filter's refusal (the page answers 400 then)."""
    error = page = None
    try:
        page = service.find_captures(filters.make(), limit, offset)
    except QueryError as exc:
        error = exc.message
    given = {k: ("true" if v is True else "false" if v is False else v)
             for k, v in filters.model_dump().items() if v is not None}

    def link(**kw) -> str:
        return "/captures?" + urlencode({**given, "limit": limit, "offset": offset, **kw})

    total = page.total if page else 0
    return {"page": page, "error": error, "given": given, "statuses": STATUSES, "limit": limit, "offset": offset,
            "total": total, "link": link, "prev_offset": max(0, offset - limit) if offset > 0 else None,
            "next_offset": offset + limit if offset + limit < total else None}
