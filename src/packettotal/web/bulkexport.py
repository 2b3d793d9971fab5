"""Bulk IOC results as a download: CSV (one row per indicator and capture holding it; an
indicator no capture holds has one row without a capture) or JSON (the API's answer)."""

from __future__ import annotations

import csv
import io

import orjson
from fastapi.responses import Response

from ..export import csv_safe

COLUMNS = ("input", "value", "kind", "total_captures", "capture_id", "capture_name")
FORMATS = {"csv": "text/csv", "json": "application/json"}


def csv_text(results: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    for r in results:
        head = [r["input"], r["value"], r["kind"], r["total_captures"]]
        for c in r["captures"] or [{"capture_id": "", "name": ""}]:
            writer.writerow([csv_safe(v) for v in (*head, c["capture_id"], c["name"] or "")])
    return buf.getvalue()


def download(results: list[dict], fmt: str) -> Response:
    body = csv_text(results).encode() if fmt == "csv" else orjson.dumps(results)
    return Response(body, media_type=FORMATS[fmt],
                    headers={"content-disposition": f'attachment; filename="bulk-iocs.{fmt}"'})
