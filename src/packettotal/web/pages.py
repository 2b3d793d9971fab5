"""Server-rendered pages. Every value shown comes from packets: templates autoescape everything,
and nothing from a capture is ever marked safe."""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path as FilePath
from typing import Annotated
from urllib.parse import quote, urlencode

import jinja2
import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from .. import flows
from ..auth import ownership
from ..auth.rights import rights
from ..errors import IntelError, QueryError, RefusedCapture, RulesRefused
from ..ingest.hunts import MAX_RULES, MAX_RULES_BYTES
from ..ingest.intel import default_name as intel_default_name
from ..ingest.threats import severity_label
from ..ingest.validate import human_size
from ..query import correlate, fields as catalog, indicators
from ..query.lucene import QUERY_BYTES
from ..service import MAX_OFFSET, searchable
from . import access, bulkexport, captures_list, charts, counts as panels, listing_params, tabs, uploads

router = APIRouter(include_in_schema=False)
PAGE_SIZES = (25, 50, 100, 500)
MAX_JSON = 16_000  # characters of a row's JSON view
MAX_PAGES = 10_000
HUNT_EVENTS_SHOWN = 20  # of a capture's alerts on a hunt's page (the API gives all those kept)

_env = jinja2.Environment(loader=jinja2.FileSystemLoader(FilePath(__file__).parent / "templates"),
                          autoescape=True, trim_blocks=True, lstrip_blocks=True,
                          undefined=jinja2.StrictUndefined)
_env.filters["urlpath"] = lambda v: quote(str(v), safe="")
_env.filters["size"] = lambda n: human_size(n) if isinstance(n, int) else "–"
_env.filters["phrase"] = lambda v: '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'
_env.filters["severity"] = severity_label
_env.filters["num"] = lambda n: f"{n:,}" if isinstance(n, (int, float)) else "–"
_env.globals["may_delete"] = ownership.may_delete  # the console's delete form
templates = Jinja2Templates(env=_env)


def _instance(request: Request):
    return access.instance_of(request)  # the service as the request's principal sees it


def render(request: Request, name: str, status: int = 200, **context) -> HTMLResponse:
    who = getattr(request.state, "principal", None)  # set by web/access.py before every route
    s = request.app.state.instance.service.settings
    context |= {"principal": who, "csrf_token": (who.csrf if who else None) or "",
                "may": rights(s.mode, who, s.labelling, s.public_uploads) if who else frozenset()}
    return templates.TemplateResponse(request, name, context, status_code=status)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status=status, status_code=status, message=message)


@router.get("/", response_class=HTMLResponse)
def home(request: Request):
    service = _instance(request).service
    return render(request, "home.html", recent=service.list_captures(limit=30),
                  max_bytes=service.settings.max_upload_bytes, refused=None)


@router.get("/captures", response_class=HTMLResponse)
def captures_page(request: Request, filters: Annotated[listing_params.Filters, Query()],
                  limit: Annotated[int, Query(ge=1, le=PAGE_SIZES[-1])] = PAGE_SIZES[1],
                  offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0):
    found = captures_list.context(_instance(request).service, filters, limit, offset)
    return render(request, "captures.html", status=400 if found["error"] else 200, sizes=PAGE_SIZES, **found)


@router.post("/upload", response_class=HTMLResponse)
async def upload(request: Request):
    """The form's no-script path; the page's script posts to the API instead."""
    instance = _instance(request)
    settings = instance.service.settings
    try:
        received = await uploads.receive(request, settings.work_dir, settings.max_upload_bytes)
        try:
            sub = await run_in_threadpool(instance.submit, received.path, received.filename or "capture")
        finally:
            received.path.unlink(missing_ok=True)
    except RefusedCapture as exc:
        recent = await run_in_threadpool(partial(instance.service.list_captures, limit=30))
        return render(request, "home.html", status=exc.status, recent=recent,
                      max_bytes=settings.max_upload_bytes, refused=exc.message)
    return RedirectResponse(f"/captures/{sub.capture['id']}", status_code=303)


@router.get("/captures/{ref}", response_class=HTMLResponse)
def capture_page(request: Request, ref: str):
    service = _instance(request).service
    cap = service.capture(ref)
    if cap["status"] != "done":
        return render(request, "status.html", cap=cap, engines=service.engines())
    summary = cap["summary"] or {}
    return render(request, "summary.html", cap=cap, s=summary, **_console(service, cap), current="summary",
                  geo=service.geo_of(t["ip"] for t in summary.get("top_talkers") or []),
                  timeline=charts.timeline(summary.get("timeline") or {}), chart=charts,
                  talkers=charts.shares([(t["ip"], t["bytes"]) for t in summary.get("top_talkers") or []]),
                  protocols=charts.shares(summary.get("protocols") or {}),
                  indicators=service.top_indicators(cap["id"]), ndpi=service.ndpi_overview(cap["id"]),
                  netbios=service.netbios_names(cap["id"]),
                  files=service.capture_files(cap["id"]))


def _console(service, cap: dict) -> dict:
    """What every tab of the console shows around its content: the tabs and the labels."""
    return {"tabs": tabs.tabs_for(tabs.counts_of(cap["summary"] or {})),
            "labels": service.labels(cap["id"]), "hunts": service.capture_hunts(cap["id"]),
            "label_kinds": catalog.LABEL_KINDS, "can_label": service.settings.labelling == "anyone",
            "intel_count": len(service.capture_intel(cap["id"])),
            "visibility": service.capture_visibility(cap["id"]), "uploads": service.uploads_of(cap["id"])}


def _analysed(service, ref: str) -> tuple[dict, RedirectResponse | None]:
    """A capture, and where a page of its console sends the browser while it is not analysed yet."""
    cap = service.capture(ref)
    return cap, None if cap["status"] == "done" else RedirectResponse(f"/captures/{cap['id']}", status_code=303)


@router.get("/captures/{ref}/tab/{event_type}", response_class=HTMLResponse)
def tab_page(request: Request, ref: str, event_type: str,
             q: Annotated[str, Query(max_length=QUERY_BYTES)] = "",
             sort: Annotated[str | None, Query(max_length=64)] = None,
             order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
             page: Annotated[int, Query(ge=1, le=100_000)] = 1,
             size: Annotated[int, Query(ge=1, le=500)] = 50,
             top: Annotated[str, Query(max_length=64)] = ""):
    service = _instance(request).service
    cap, wait = _analysed(service, ref)
    if wait:
        return wait
    counts = tabs.counts_of(cap["summary"] or {})
    if (not counts.get(event_type) and event_type not in tabs.ALWAYS) or event_type in tabs.HIDDEN:
        return error_page(request, 404, f"this capture has no {event_type[:40]!r} events")
    tab = tabs.tab(event_type)
    size = size if size in PAGE_SIZES else 50
    error = None
    try:
        result = service.tab_events(cap, event_type, q, limit=size, offset=(page - 1) * size,
                                    sort=sort, descending=order == "desc")
    except QueryError as exc:
        error, result = exc, None
    total = result.total if result else 0
    rows = [{"seq": e["seq"], "event": e["event"], "cells": [tabs.cell(e["event"], c) for c in tab.columns],
             "json": _json_view(e["event"])} for e in (result.events if result else [])]
    if event_type == "flow":  # nDPI's view of each connection (ingest/ndpi/)
        for r, seen in zip(rows, service.ndpi_of(cap["id"], [r["event"] for r in rows]), strict=True):
            r["ndpi"] = seen
    top = top if top in panels.choices(event_type) else ""
    base = {"q": q, "size": size, "top": top}
    top_panel = None if error else panels.panel(partial(service.tab_counts, cap, event_type, text=q),
                                                (top,) if top else panels.defaults(event_type), q)
    files = service.capture_files(cap["id"]) if event_type == "fileinfo" else []
    return render(request, "tab.html", status=400 if error else 200, cap=cap, **_console(service, cap),
                  current=event_type, tab=tab, rows=rows, total=total, page=page, size=size,
                  geo=service.geo_of(v for r in rows for c, vs in zip(tab.columns, r["cells"], strict=True)
                                     if c.ioc for v in vs),
                  pages=max(1, min(math.ceil(total / size), MAX_OFFSET // size)), q=q, sort=sort, order=order,
                  error=error,
                  sizes=PAGE_SIZES, rules=(cap["summary"] or {}).get("rules") or {},
                  threats=(cap["summary"] or {}).get("threats"),
                  findings=(cap["summary"] or {}).get("findings") if event_type == "anomaly" else None,
                  stored={f["sha256"] for f in files if f["stored"]}, files=files,
                  certs=service.capture_certs(cap["id"]) if event_type == "tls" else [],
                  top_panel=top_panel, top=top, top_choices=panels.choices(event_type),
                  link=lambda **kw: "?" + urlencode({k: v for k, v in {**base, "sort": sort, "order": order,
                                                                       **kw}.items() if v not in (None, "")}))


@router.get("/captures/{ref}/flows/{flow}", response_class=HTMLResponse)
def flow_page(request: Request, ref: str, flow: Annotated[str, Path(pattern=flows.FLOW_REF)],
              view: Annotated[str, Query(pattern="^(records|packets|payload)$")] = "records",
              offset: Annotated[int, Query(ge=0, le=2 ** 40)] = 0):
    """One connection: its five-tuple and counters, every record of it, its packets or payload."""
    service = _instance(request).service
    cap, wait = _analysed(service, ref)
    if wait:
        return wait
    f = service.flow(cap["id"], flow)
    s = f.summary()
    return render(request, "flow.html", cap=cap, **_console(service, cap), current="flow", ref=flow, s=s,
                  events=f.events, json_view=_json_view, view=view, offset=offset,
                  size=flows.PACKETS_PAGE, psize=flows.PAYLOAD_PAGE,
                  geo=service.geo_of(v for v in (s["src_ip"], s["dest_ip"]) if v),
                  certs=service.capture_certs(cap["id"], [str(s["flow_id"])]) if s.get("flow_id") else [],
                  packets=service.flow_packets(f, offset, layers=True) if view == "packets" else None,
                  payload=service.flow_payload(f, offset) if view == "payload" else None)


@router.get("/captures/{ref}/similar", response_class=HTMLResponse)
def similar_page(request: Request, ref: str):
    service = _instance(request).service
    cap, wait = _analysed(service, ref)
    if wait:
        return wait
    return render(request, "similar.html", cap=cap, current="similar", similar=service.similar(cap["id"], 25),
                  **_console(service, cap))


@router.post("/captures/{ref}/labels", response_class=HTMLResponse)
async def add_label(request: Request, ref: str):
    form = await request.form(max_files=0, max_fields=4, max_part_size=4096)
    service = _instance(request).service
    cap = await run_in_threadpool(service.capture, ref)
    await run_in_threadpool(service.add_label, cap["id"], str(form.get("kind") or "tag"),
                            str(form.get("value") or ""), str(form.get("note") or ""), "web")
    return RedirectResponse(f"/captures/{cap['id']}", status_code=303)


@router.post("/captures/{ref}/labels/{label_id}/delete", response_class=HTMLResponse)
def delete_label(request: Request, ref: str, label_id: Annotated[int, Path(ge=1, le=2 ** 31 - 1)]):
    service = _instance(request).service
    cap = service.capture(ref)
    service.remove_label(cap["id"], label_id)
    return RedirectResponse(f"/captures/{cap['id']}", status_code=303)


@router.post("/captures/{ref}/visibility", response_class=HTMLResponse)
async def set_visibility(request: Request, ref: str):
    form = await request.form(max_files=0, max_fields=3, max_part_size=4096)
    service = _instance(request).service
    names = str(form.get("share_with") or "").replace(",", " ").split()
    found = await run_in_threadpool(service.set_visibility, ref, str(form.get("visibility") or ""), names)
    return RedirectResponse(f"/captures/{found['capture_id']}", status_code=303)


@router.post("/captures/{ref}/reanalyse", response_class=HTMLResponse)
def reanalyse(request: Request, ref: str):
    """The console's button: analyse the capture again with the current rules."""
    row = _instance(request).reanalyse(ref)
    return RedirectResponse(f"/captures/{row['id']}", status_code=303)


@router.post("/captures/{ref}/delete", response_class=HTMLResponse)
def delete_capture(request: Request, ref: str):
    """The console's delete form (its owner or an admin)."""
    who, held = access.held(request)
    _instance(request).service.delete_capture(ref, who, held, access.client_address(request))
    return RedirectResponse("/captures", status_code=303)


@router.get("/hunts", response_class=HTMLResponse)
def hunts_page(request: Request):
    return _hunts(request, 200)


def _hunts(request: Request, status: int, refused: str | None = None, form: dict | None = None) -> HTMLResponse:
    return render(request, "hunts.html", status=status, hunts=_instance(request).service.list_hunts(100),
                  refused=refused, form=form or {}, max_rules=MAX_RULES, max_bytes=MAX_RULES_BYTES)


@router.post("/hunts", response_class=HTMLResponse)
async def new_hunt(request: Request):
    """The form: pasted rules, an optional query and name; refused rules come back with the reason."""
    form = await request.form(max_files=0, max_fields=3, max_part_size=MAX_RULES_BYTES + 4096)
    fields = {k: str(form.get(k) or "") for k in ("rules", "query", "name")}
    try:
        row = await run_in_threadpool(_instance(request).hunt, fields["rules"], fields["query"], fields["name"])
    except (RulesRefused, QueryError) as exc:
        return await run_in_threadpool(_hunts, request, 400, exc.message, fields)
    return RedirectResponse(f"/hunts/{row['id']}", status_code=303)


@router.get("/hunts/{hunt_id}", response_class=HTMLResponse)
def hunt_page(request: Request, hunt_id: Annotated[int, Path(ge=1, le=2 ** 31 - 1)],
              page: Annotated[int, Query(ge=1, le=10_000)] = 1):
    size = 50
    hunt = _instance(request).service.hunt(hunt_id, size, (page - 1) * size)
    total = hunt["hit_captures"] + hunt["failed_captures"]
    return render(request, "hunt.html", hunt=hunt, page=page, pages=max(1, math.ceil(total / size)),
                  shown=HUNT_EVENTS_SHOWN, msgs={str(r["sid"]): r["msg"] for r in hunt["rules"]})


@router.post("/hunts/{hunt_id}/delete", response_class=HTMLResponse)
def delete_hunt(request: Request, hunt_id: Annotated[int, Path(ge=1, le=2 ** 31 - 1)]):
    _instance(request).service.delete_hunt(hunt_id)
    return RedirectResponse("/hunts", status_code=303)


# IOC feeds
@router.get("/captures/{ref}/intel", response_class=HTMLResponse)
def intel_tab(request: Request, ref: str):
    service = _instance(request).service
    cap, wait = _analysed(service, ref)
    if wait:
        return wait
    return render(request, "intel_tab.html", cap=cap, current="intel", hits=service.capture_intel(cap["id"]),
                  **_console(service, cap))


@router.get("/intel", response_class=HTMLResponse)
def intel_page(request: Request):
    return _intel(request, 200)


def _intel(request: Request, status: int, refused: str | None = None, imported: dict | None = None) -> HTMLResponse:
    service = _instance(request).service
    return render(request, "intel.html", status=status, feeds=service.list_feeds(), refused=refused,
                  imported=imported, max_bytes=min(service.settings.intel_max_bytes, service.settings.max_body_bytes))


@router.post("/intel", response_class=HTMLResponse)
async def add_feed(request: Request):
    """The form: a feed file, an optional name and format; a refused feed comes back with the reason."""
    form = await request.form(max_files=1, max_fields=3, max_part_size=4096)
    upload = form.get("file")
    if upload is None or isinstance(upload, str) or not upload.filename:
        return await run_in_threadpool(_intel, request, 400, "choose a feed file to import")
    data = await upload.read()
    fmt = str(form.get("format") or "") or None
    name = str(form.get("name") or "").strip() or intel_default_name(upload.filename)
    try:
        row = await run_in_threadpool(_instance(request).service.import_feed, data, name, fmt, upload.filename)
    except IntelError as exc:
        return await run_in_threadpool(_intel, request, 400, exc.message)
    return await run_in_threadpool(_intel, request, 200, None, row)


@router.post("/intel/{name}/delete", response_class=HTMLResponse)
def delete_feed(request: Request, name: Annotated[str, Path(min_length=1, max_length=64)]):
    _instance(request).service.remove_feed(name)
    return RedirectResponse("/intel", status_code=303)


def _json_view(rec: dict) -> str:
    text = orjson.dumps(searchable(rec), option=orjson.OPT_INDENT_2).decode()
    return text if len(text) <= MAX_JSON else text[:MAX_JSON] + "\n… (cut: the full record is in the EVE export)"


@router.get("/ioc/{value:path}", response_class=HTMLResponse)
def ioc_page(request: Request, value: str):
    if not value or len(value) > 2048:
        return error_page(request, 400, "give an indicator of 1 to 2048 characters")
    return render(request, "ioc.html", p=_instance(request).service.ioc(value))


@router.get("/bulk", response_class=HTMLResponse)
def bulk_form(request: Request):
    return render(request, "bulk.html", results=None, text="", max_values=correlate.MAX_BULK)


async def _bulk_values(request: Request) -> list[str]:
    """Pasted indicators (separated by newlines, commas or semicolons; query/indicators.py), then
    those of an uploaded text file."""
    form = await request.form(max_files=1, max_fields=4, max_part_size=1 << 20)
    text = str(form.get("values") or "")
    upload = form.get("file")
    if upload is not None and hasattr(upload, "read"):
        text += "\n" + (await upload.read(1 << 20)).decode("utf-8", "replace")
    return indicators.split_bulk(text, correlate.MAX_BULK)


@router.post("/bulk", response_class=HTMLResponse)
async def bulk_page(request: Request):
    values = await _bulk_values(request)
    results = await run_in_threadpool(_instance(request).service.bulk_ioc, values) if values else []
    return render(request, "bulk.html", results=results, text=indicators.join_bulk(values),
                  max_values=correlate.MAX_BULK)


@router.post("/bulk/export")
async def bulk_export(request: Request, format: Annotated[str, Query(pattern="^(csv|json)$")] = "csv"):
    """The bulk results as CSV or JSON (the form on the results posts the values again)."""
    values = await _bulk_values(request)
    results = await run_in_threadpool(_instance(request).service.bulk_ioc, values) if values else []
    return bulkexport.download(results, format)


@router.get("/search", response_class=HTMLResponse)
def search_page(request: Request, q: Annotated[str, Query(max_length=QUERY_BYTES)] = "",
                sort: Annotated[str, Query(pattern="^(hits|newest|oldest)$")] = "hits",
                view: Annotated[str, Query(pattern="^(captures|events)$")] = "captures",
                page: Annotated[int, Query(ge=1, le=10_000)] = 1,
                top: Annotated[str, Query(max_length=64)] = ""):
    service = _instance(request).service
    if (found := service.indicator(q)) is not None:  # a lone indicator: its pivot
        return RedirectResponse("/ioc/" + quote(found.value, safe=""), status_code=303)
    size = 50
    top = top if top in panels.choices(None) else ""
    result = events = error = None
    if q.strip():
        try:
            if view == "events":
                events = service.search_events(q, limit=size, offset=(page - 1) * size)
            else:
                result = service.search(q, limit=size, offset=(page - 1) * size, sort=sort)
        except QueryError as exc:
            error = exc
    top_panel = panels.panel(partial(service.search_counts, q), (top,) if top else panels.SEARCH_DEFAULTS, q) \
        if q.strip() and not error else None
    total = (result.total_captures if result else events.total if events else 0)
    link = lambda **kw: "?" + urlencode({k: v for k, v in {"q": q, "sort": sort, "view": view, "page": page,  # noqa: E731
                                                          "top": top, **kw}.items() if v not in (None, "")})
    return render(request, "search.html", status=400 if error else 200, q=q, sort=sort, view=view, page=page,
                  top_panel=top_panel, top=top, top_choices=panels.choices(None),
                  pages=max(1, min(math.ceil(total / size), MAX_PAGES)), result=result, events=events,
                  error=error, link=link, json_view=_json_view, hidden=tabs.HIDDEN)


@router.get("/fields", response_class=HTMLResponse)
def fields_page(request: Request):
    return render(request, "fields.html", fields=catalog.catalogue())


@router.get("/api", response_class=HTMLResponse)
def api_page(request: Request):
    spec = request.app.openapi()
    ops = [{"method": m.upper(), "path": p, "summary": op.get("summary", ""),
            "params": [(x["name"], x["in"], (x.get("schema") or {}).get("description") or x.get("description") or "")
                       for x in op.get("parameters", [])],
            "responses": sorted(op.get("responses", {}))}
           for p, methods in spec["paths"].items() for m, op in methods.items()]
    return render(request, "api.html", ops=ops, version=spec["info"]["version"])
