"""REST API under /api/v1. Handlers are thin: they call the service and shape JSON."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field, ValidationError, model_validator

from .. import flows
from ..errors import NotFound, QueryError
from ..ingest.intel import default_name as intel_default_name
from ..query import fields as catalog
from ..query.lucene import QUERY_BYTES
from ..query.values import INT_MAX
from ..query import topvalues
from . import access, bulkexport, counts as panels, downloads, listing_params, uploads

router = APIRouter(prefix="/api/v1", tags=["api"])

Ref = Annotated[str, PathParam(min_length=8, max_length=64, pattern=r"^[0-9A-Fa-f]+$",
                               description="sha256 (the id), md5, sha1, or a unique sha256 prefix")]


class Error(BaseModel):
    error: str
    detail: str


class Submitted(BaseModel):
    id: str
    status: str
    status_url: str
    page_url: str
    reanalyse_url: str | None = Field(default=None, description="a known capture, done: POST here to analyse "
                                                                 "it again with the current rules")


class ReanalyseMany(BaseModel):
    query: str | None = Field(default=None, min_length=1, max_length=QUERY_BYTES,
                              description="Lucene query: the captures with a matching event")
    all: bool = Field(default=False, description="every capture")

    @model_validator(mode="after")
    def one_choice(self) -> ReanalyseMany:
        if (self.query is not None) == self.all:
            raise ValueError('give either "query" or "all": true')
        return self


class Rules(BaseModel):
    ruleset: str | None = Field(description="the merged threat ruleset's version; null: none installed")
    rules: int | None


class ServingRules(Rules):
    daemons: int
    ready: int = Field(description="daemons that have loaded them and answer")
    since: str


class LoadingRules(Rules):
    since: str


class RefusedRules(Rules):
    at: str
    errors: list[str] = Field(description="Suricata's own lines")


class Engines(BaseModel):
    suricata: str = Field(description="Suricata's version")
    serving: ServingRules | None = Field(description="null until the daemons first start")
    loading: LoadingRules | None = Field(description="changed rules being loaded into new daemons")
    refused: RefusedRules | None = Field(description="the last changed rules Suricata refused")


class Requeued(BaseModel):
    queued: int
    status_url: str


class Capture(BaseModel):
    id: str
    md5: str
    sha1: str
    name: str
    size: int
    compression: str | None
    status: Literal["queued", "running", "indexing", "done", "failed"]
    error: str | None
    warnings: list[str]
    submitted_at: str
    finished_at: str | None
    summary: dict[str, Any] | None
    links: dict[str, str]


class Event(BaseModel):
    seq: int
    event: dict[str, Any]


class Events(BaseModel):
    total: int
    events: list[Event]
    next_cursor: str | None


class YaraString(BaseModel):
    id: str
    offsets: list[int]


class YaraMatch(BaseModel):
    rule: str
    namespace: str = Field(description="the rule file")
    tags: list[str]
    meta: dict[str, str | int | float | bool]
    strings: list[YaraString] = Field(description="a few matched string identifiers, each with a few offsets")


class YaraScan(BaseModel):
    version: str = Field(description="content hash of the rules that scanned the file")
    error: str | None = Field(description="why the file was not (fully) scanned: too large, timed out, ...")
    scanned_at: str
    matches: list[YaraMatch]


class CarvedFile(BaseModel):
    sha256: str
    md5: str | None
    sha1: str | None
    filename: str | None
    magic: str | None
    size: int | None
    state: str | None
    stored: bool
    truncated: bool
    app_proto: str | None
    host: str | None = Field(description="where it came over HTTP: the host (first sighting)")
    url: str | None = Field(description="the HTTP request's URL (first sighting)")
    content_type: str | None = Field(description="the Content-Type it was sent under over HTTP (first sighting)")
    direction: Literal["to_server", "to_client"] | None = Field(description="null: its flow was not seen")
    names: list[str] = Field(description="every name it was seen under in this capture")
    seen: list[dict[str, Any]] = Field(description="each sighting (at most 20): filename, host, url, content_type, "
                                                   "direction, app_proto, flow_id, timestamp")
    download_url: str | None
    yara: YaraScan | None = Field(description="the file's YARA scan; null: never scanned")


class Label(BaseModel):
    id: int
    kind: Literal["tag", "family", "campaign", "actor"]
    value: str
    note: str | None
    author: str | None
    source: str
    created_at: str


class NewLabel(BaseModel):
    kind: Literal["tag", "family", "campaign", "actor"] = "tag"
    value: str = Field(min_length=1, max_length=100)
    note: str | None = Field(default=None, max_length=1000)


class Visibility(BaseModel):
    capture_id: str
    owner: str | None
    visibility: Literal["private", "shared", "public"]
    share_with: list[str]


class NewVisibility(BaseModel):
    visibility: Literal["private", "shared", "public"]
    share_with: list[str] = Field(default_factory=list, max_length=100)


class PivotCapture(BaseModel):
    capture_id: str
    name: str
    count: int
    first_seen: str | None
    last_seen: str | None
    fields: list[dict[str, Any]]
    found_in: dict[str, int]
    where: dict[str, str] = Field(default_factory=dict, description=(
        "event type -> the filter (`q`) of its tab that keeps exactly the records holding the value"))
    labels: list[Label]


class Geo(BaseModel):
    country: str | None = Field(description="ISO 3166 alpha-2 code (offline data, ingest/geo.py)")
    country_name: str | None
    asn: int | None
    as_org: str | None
    range: str | None = Field(description="a special range (private, loopback, link-local, multicast, cgnat, "
                                          "documentation, reserved): such an address is not looked up")


class Ioc(BaseModel):
    value: str
    kind: str
    matched: list[str]
    total_captures: int
    truncated: bool
    captures: list[PivotCapture]
    co_occurring: list[dict[str, Any]]
    yara: list[dict[str, Any]] = Field(description="YARA scans of the carved files this value names (a hash)")
    files: list[dict[str, Any]] = Field(default_factory=list, description=(
        "the carved files this value names (a hash): magic, size, names, the captures they were carved from "
        "(stored or not) and each sighting (host, url, content_type, direction)"))
    geo: Geo | None = Field(None, description="an IP's country and AS; null for other kinds or without the data")
    intel: list[dict[str, Any]] = Field(default_factory=list,
                                        description="the IOC feeds' indicators this value is (feed, expired, ...)")


class BulkIn(BaseModel):
    values: list[Annotated[str, Field(max_length=2048)]] = Field(
        max_length=1000, description="up to 1,000 indicators of any kind")


class BulkHit(BaseModel):
    input: str = Field(description="the value as given (defanged ones are refanged into `value`)")
    value: str
    kind: str
    total_captures: int
    captures: list[dict[str, Any]]


class SearchGroup(BaseModel):
    capture_id: str
    name: str | None
    submitted_at: str | None
    hits: int
    found_in: dict[str, int]
    labels: list[Label]
    intel: list[str] = Field(default_factory=list, description="the IOC feeds it holds indicators of")


class Pivot(BaseModel):
    value: str = Field(description="the indicator, refanged")
    kind: str
    defanged: bool
    url: str = Field(description="its pivot: GET this for the whole of it")


class SearchResult(BaseModel):
    total_captures: int
    total_hits: int
    truncated: bool
    groups: list[SearchGroup]
    next_cursor: str | None
    pivot: Pivot | None = Field(None, description="set when q is one indicator alone: the groups are then the "
                                                  "captures holding it (its pivot; hits: its occurrences)")


class SearchEvent(BaseModel):
    capture_id: str
    seq: int
    event: dict[str, Any]


class SearchEvents(BaseModel):
    total: int
    events: list[SearchEvent]
    next_cursor: str | None


class SimilarCapture(BaseModel):
    capture_id: str
    name: str
    score: float
    submitted_at: str | None
    shared: list[dict[str, Any]]
    labels: list[Label]


class NewHunt(BaseModel):
    rules: str = Field(description="Suricata rules, one a line, each with its own sid (at most 1,000 rules, 1 MB)")
    query: str | None = Field(default=None, max_length=QUERY_BYTES,
                              description="Lucene query: hunt only the captures with a matching event")
    name: str | None = Field(default=None, max_length=200, description="default: the first rule's msg")


class HuntSubmitted(BaseModel):
    id: int
    status: str
    status_url: str
    page_url: str


class HuntRule(BaseModel):
    sid: int
    msg: str
    text: str
    alerts: int | None = None
    captures: int | None = None


class HuntCapture(BaseModel):
    capture_id: str
    name: str | None
    alerts: int
    by_sid: dict[str, int]
    events: list[dict[str, Any]]
    error: str | None


class Hunt(BaseModel):
    id: int
    name: str
    query: str | None
    status: Literal["queued", "running", "indexing", "done", "failed"]
    error: str | None
    progress: dict[str, int | None]
    created_at: str
    started_at: str | None
    finished_at: str | None
    rules: list[HuntRule]
    hit_captures: int
    failed_captures: int | None = None
    captures: list[HuntCapture] | None = None
    links: dict[str, str]


class TopValue(BaseModel):
    value: str | int
    count: int = Field(description="matching events with this value (of those read)")
    share: float = Field(description="count / counted")
    cut: bool = Field(description="the value is longer than shown (and so not a filter)")
    filter: str | None = Field(description="the query narrowed to this value (q AND field:\"value\")")


class TopValues(BaseModel):
    field: str
    matched: int = Field(description="events the query matched")
    counted: int = Field(description="events read: all unless capped")
    capped: bool = Field(description="more events matched than are read for a field without a column: "
                                     "the counts are of the first `counted` (a capture's, in capture order; "
                                     "a search's, newest first)")
    missing: int = Field(description="events read without a value")
    others: int = Field(description="counts of the values not listed, summed")
    error_bound: int = Field(description="a count may be this much short (0 but for huge numbers of values)")
    exact: bool = Field(description="every count is exact: not capped, no error bound")
    values: list[TopValue]


ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": Error}, 404: {"model": Error}, 422: {"model": Error}}
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary",
                            "description": "pcap, pcapng, or either compressed with gzip/bzip2/xz/zstd"}}}}}}}


def _instance(request: Request):
    return access.instance_of(request)  # the service as the request's principal sees it


def capture_json(row: dict) -> dict:
    cid = row["id"]
    base = f"/api/v1/captures/{cid}"
    return {
        **{k: row[k] for k in ("id", "md5", "sha1", "name", "size", "compression", "status", "error", "summary")},
        "warnings": row["warnings"] or [],
        "submitted_at": _iso(row["submitted_at"]), "finished_at": _iso(row["finished_at"]),
        "links": {"self": base, "events": f"{base}/events", "files": f"{base}/files",
                  "download": f"{base}/download", "export": f"{base}/export?format=zip",
                  "page": f"/captures/{cid}"},
    }


def _iso(value) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


@router.post("/captures", status_code=202, response_model=Submitted, openapi_extra=UPLOAD_BODY,
             responses={303: {"model": Submitted, "description": "known capture: see its analysis"},
                        413: {"model": Error}, 415: {"model": Error}, **ERRORS},
             summary="Upload a capture for analysis")
async def submit(request: Request):
    instance = _instance(request)
    settings = instance.service.settings
    received = await uploads.receive(request, settings.work_dir, settings.max_upload_bytes)
    try:
        sub = await run_in_threadpool(instance.submit, received.path, received.filename or "capture")
    finally:
        received.path.unlink(missing_ok=True)
    cid = sub.capture["id"]
    body = {"id": cid, "status": sub.capture["status"], "status_url": f"/api/v1/captures/{cid}",
            "page_url": f"/captures/{cid}"}
    if not sub.created:
        if sub.capture["status"] == "done":
            body["reanalyse_url"] = f"/api/v1/captures/{cid}/reanalyse"
        return JSONResponse(body, status_code=303, headers={"location": body["status_url"]})
    return JSONResponse(body, status_code=202)


@router.delete("/captures/{ref}", status_code=204, responses={403: {"model": Error}, 409: {"model": Error}, **ERRORS},
               summary="Delete a capture and everything of it (its owner or an admin; 409 while it is analysed)")
def delete_capture(request: Request, ref: Ref):
    who, held = access.held(request)
    _instance(request).service.delete_capture(ref, who, held, access.client_address(request))
    return Response(status_code=204)


@router.post("/captures/{ref}/reanalyse", status_code=202, response_model=Submitted, responses=ERRORS,
             summary="Analyse a capture again with the current rules (labels stay; events are replaced)")
def reanalyse(request: Request, ref: Ref):
    row = _instance(request).reanalyse(ref)
    cid = row["id"]
    return JSONResponse({"id": cid, "status": row["status"], "status_url": f"/api/v1/captures/{cid}",
                         "page_url": f"/captures/{cid}"}, status_code=202)


@router.post("/reanalyse", status_code=202, response_model=Requeued, responses=ERRORS,
             summary="Analyse again the captures a query matches, or every capture")
def reanalyse_many(request: Request, body: ReanalyseMany):
    queued = _instance(request).reanalyse_matching(body.query)
    return JSONResponse({"queued": queued, "status_url": "/api/v1/captures?status=queued"}, status_code=202)


@router.get("/captures", response_model=list[Capture], responses=ERRORS,
            summary="Captures, newest first, filtered; x-total-count: how many match")
def list_captures(request: Request, response: Response, filters: Annotated[listing_params.Filters, Query()],
                  limit: Annotated[int, Query(ge=1, le=500)] = 50,
                  offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0):
    page = _instance(request).service.find_captures(filters.make(), limit, offset)
    response.headers["x-total-count"] = str(page.total)
    return [capture_json(r) for r in page.rows]


@router.get("/captures/{ref}", response_model=Capture, responses=ERRORS,
            summary="A capture: metadata, status, summary")
def get_capture(request: Request, ref: Ref):
    return capture_json(_instance(request).service.capture(ref))


def _cursor(token: str | None, kind: str) -> int | None:
    """A cursor is the last sequence number seen ("s") or an offset ("o") for sorted pages."""
    if not token:
        return None
    try:
        got, _, n = base64.urlsafe_b64decode(token.encode() + b"==").decode().partition(":")
        if got == kind and n.isdigit() and len(n) < 20 and int(n) <= INT_MAX:
            return int(n)  # offsets beyond what the store serves are refused there, with a reason
    except (ValueError, UnicodeDecodeError):
        pass
    raise QueryError("the cursor is not one this API gave out for this sort order")


def _token(kind: str, n: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{n}".encode()).decode().rstrip("=")


@router.get("/captures/{ref}/events", response_model=Events, responses=ERRORS,
            summary="A capture's events, one page at a time")
def get_events(request: Request, ref: Ref,
               type: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z0-9_\-]+$",
                                                 description="EVE event type: alert, dns, http, ...")] = None,
               q: Annotated[str, Query(max_length=QUERY_BYTES, description="Lucene filter (see /api/v1/fields)")] = "",
               limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               cursor: Annotated[str | None, Query(max_length=100,
                                                   description="next_cursor of the previous page")] = None,
               sort: Annotated[str | None, Query(max_length=64,
                                                 description="a sortable field; default capture order")] = None,
               order: Literal["asc", "desc"] = "asc"):
    service = _instance(request).service
    cid = service.capture(ref)["id"]
    by_seq = sort in (None, "seq") and order == "asc"  # capture order: a true cursor, cheap at any depth
    position = _cursor(cursor, "s" if by_seq else "o")
    offset = 0 if by_seq else position or 0
    page = service.capture_events(cid, type, q, limit, offset=offset, sort=None if sort == "seq" else sort,
                                  descending=order == "desc", after=position if by_seq else None)
    events = [{"seq": e["seq"], "event": e["event"]} for e in page.events]
    next_cursor = None
    if len(events) == limit:
        next_cursor = _token("s", events[-1]["seq"]) if by_seq else _token("o", offset + limit)
    return {"total": page.total, "events": events, "next_cursor": next_cursor}


def file_json(row: dict) -> dict:
    url = (f"/api/v1/captures/{row['capture_id']}/files/{row['sha256']}" if row["stored"] else None)
    return {**{k: row[k] for k in downloads.FILE_COLUMNS}, "download_url": url, "yara": yara_json(row["yara"]),
            "seen": [{k: v for k, v in s.items() if k not in ("capture_id", "sha256")} for s in row["seen"]]}


def yara_json(scan: dict | None) -> dict | None:
    return scan and scan | {"scanned_at": _iso(scan["scanned_at"])}


@router.get("/captures/{ref}/files", response_model=list[CarvedFile], responses=ERRORS,
            summary="Files carved from a capture")
def get_files(request: Request, ref: Ref):
    service = _instance(request).service
    return [file_json(r) for r in service.capture_files(service.capture(ref)["id"])]


async def built(request: Request, build: Callable[[], Path], media_type: str, filename: str) -> StreamingResponse:
    """A file built for this response on the export builders (waiting there holds no request
    worker): streamed, and gone from disk from the first byte."""
    future = _instance(request).builds.submit(lambda: downloads.opened(build()))
    try:
        f, size = await asyncio.wrap_future(future)
    except asyncio.CancelledError:  # the request is gone: a build still running is closed when done
        future.add_done_callback(_close_unclaimed)
        raise
    return StreamingResponse(downloads.chunks(f), media_type=media_type, headers={
        "content-disposition": f'attachment; filename="{filename}"', "content-length": str(size)})


def _close_unclaimed(future: Future) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result()[0].close()


@router.get("/captures/{ref}/files/{sha256}", responses={200: {"content": {"application/zip": {}}}, **ERRORS},
            response_class=FileResponse,
            summary="One carved file, in a zip encrypted with the password 'infected'")
async def get_file(request: Request, ref: Ref,
                   sha256: Annotated[str, PathParam(pattern=r"^[0-9a-fA-F]{64}$")]):
    service = _instance(request).service
    sha256 = sha256.lower()
    cid = (await run_in_threadpool(service.carved_file, ref, sha256))["capture_id"]
    return await built(request, partial(downloads.files_zip, service, cid, sha256), "application/zip", f"{sha256}.zip")


@router.get("/captures/{ref}/download", responses={200: {"content": {"application/vnd.tcpdump.pcap": {}}}, **ERRORS},
            response_class=FileResponse, summary="The original capture (decompressed), "
                                                  "named .pcap or .pcapng by its format")
def download(request: Request, ref: Ref):
    service = _instance(request).service
    cid = service.capture(ref)["id"]
    return FileResponse(service.capture_path(cid), media_type="application/vnd.tcpdump.pcap",
                        filename=downloads.capture_name(service, cid))


FlowRef = Annotated[str, PathParam(pattern=flows.FLOW_REF, description="the flow's flow_id, or its community id "
                                   "(with - and _ for + and /, as in URL-safe base64, to keep it one path segment)")]


def _flow(request: Request, ref: str, flow: str) -> flows.Flow:
    service = _instance(request).service
    cap = service.capture(ref)
    if cap["status"] != "done":
        raise NotFound(f"capture {cap['id'][:12]} is {cap['status']}: it has no flows yet")
    return service.flow(cap["id"], flow)


@router.get("/captures/{ref}/flows/{flow}", responses=ERRORS,
            summary="One flow: its five-tuple, counters and every EVE record of it in time order")
def get_flow(request: Request, ref: Ref, flow: FlowRef) -> dict:
    f = _flow(request, ref, flow)
    return {**f.summary(), "records": f.events}


@router.get("/captures/{ref}/flows/{flow}/packets", responses=ERRORS,
            summary="One page of a flow's packets: time, direction, TCP flags, length, summary")
def get_flow_packets(request: Request, ref: Ref, flow: FlowRef,
                     offset: Annotated[int, Query(ge=0, le=2 ** 40)] = 0,
                     limit: Annotated[int, Query(ge=1, le=flows.PACKETS_PAGE)] = flows.PACKETS_PAGE,
                     layers: Annotated[bool, Query(description="each packet's decoded layers too")] = False) -> dict:
    f = _flow(request, ref, flow)
    return _instance(request).service.flow_packets(f, offset, limit, layers)


@router.get("/captures/{ref}/flows/{flow}/payload", responses=ERRORS,
            summary="A flow's payload of each direction from an offset, as text and hex (TCP in sequence order)")
def get_flow_payload(request: Request, ref: Ref, flow: FlowRef,
                     offset: Annotated[int, Query(ge=0, le=2 ** 40)] = 0,
                     limit: Annotated[int, Query(ge=1, le=flows.PAYLOAD_PAGE)] = flows.PAYLOAD_PAGE) -> dict:
    f = _flow(request, ref, flow)
    return _instance(request).service.flow_payload(f, offset, limit)


@router.get("/captures/{ref}/flows/{flow}/pcap", responses={200: {"content": {"application/vnd.tcpdump.pcap": {}}},
                                                           **ERRORS}, response_class=FileResponse,
            summary="A capture of just this flow, in the capture's own format (pcap or pcapng) and link type")
def get_flow_pcap(request: Request, ref: Ref, flow: FlowRef):
    f = _flow(request, ref, flow)
    chunks = _instance(request).service.flow_pcap(f)
    ext = ((_instance(request).service.capture(f.capture_id)["summary"] or {}).get("format") or "pcap")
    name = f"{f.capture_id[:16]}-flow-{flow.replace('/', '_').replace('+', '-').replace(':', '_')}.{ext}"
    return StreamingResponse(chunks, media_type="application/vnd.tcpdump.pcap",
                             headers={"content-disposition": f'attachment; filename="{name}"'})


TopFields = Annotated[list[str] | None, Query(max_length=topvalues.MAX_FIELDS, description=(
    "a catalogue field to count by (repeat for more); default: the tab's own (or event_type, dest_ip, "
    "dest_port for a search)"))]
TopLimit = Annotated[int, Query(ge=1, le=100, description="values listed per field")]


@router.get("/captures/{ref}/tabs/{tab}/counts", response_model=list[TopValues], responses=ERRORS,
            summary="A console tab's top values of a field, with its filter: counts and shares")
def tab_counts(request: Request, ref: Ref,
               tab: Annotated[str, PathParam(max_length=40, pattern=r"^[a-z0-9_\-]+$",
                                             description="a console tab: its event type, alert or anomaly")],
               field: TopFields = None, limit: TopLimit = 10,
               q: Annotated[str, Query(max_length=QUERY_BYTES, description="the tab's Lucene filter")] = ""):
    service = _instance(request).service
    cap = service.capture(ref)
    if cap["status"] != "done":
        raise NotFound(f"capture {cap['id'][:12]} is {cap['status']}: it has no events yet")
    found = service.tab_counts(cap, tab, field or panels.defaults(tab), q, limit)
    return [panels.shaped(t, q) for t in found]


@router.get("/captures/{ref}/flows.pcap", responses={200: {"content": {"application/vnd.tcpdump.pcap": {}}},
                                                     **ERRORS}, response_class=FileResponse,
            summary=f"The packets of the flows of the events matching a filter (at most {flows.MAX_CUT_FLOWS:,} "
                    "flows), as one capture of the capture's own format")
def get_flows_pcap(request: Request, ref: Ref,
                   type: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z0-9_\-]+$",
                                                     description="a console tab's event type")] = None,
                   q: Annotated[str, Query(max_length=QUERY_BYTES, description="Lucene filter")] = ""):
    service = _instance(request).service
    cap = service.capture(ref)
    if cap["status"] != "done":
        raise NotFound(f"capture {cap['id'][:12]} is {cap['status']}: it has no flows yet")
    count, more, chunks = service.flows_pcap(cap, type, q)
    ext = (cap["summary"] or {}).get("format") or "pcap"
    return StreamingResponse(chunks, media_type="application/vnd.tcpdump.pcap", headers={
        "content-disposition": f'attachment; filename="{cap["id"][:16]}-flows.{ext}"',
        "x-flows": str(count), "x-flows-truncated": "true" if more else "false"})


@router.get("/captures/{ref}/export", responses={
    200: {"content": {"application/x-ndjson": {}, "text/csv": {}, "application/zip": {}, "application/json": {}}},
    **ERRORS}, response_class=FileResponse,
    summary="EVE NDJSON, CSV of one event type, a zip of everything, or its indicators and alerts as a STIX 2.1 "
            "bundle or a MISP event")
async def export(request: Request, ref: Ref, format: Literal["eve", "csv", "zip", "stix", "misp"] = "eve",
                 type: Annotated[str | None, Query(max_length=40, pattern=r"^[a-z0-9_\-]+$",
                                                   description="event type, for format=csv")] = None,
                 q: Annotated[str, Query(max_length=QUERY_BYTES, description="Lucene filter, for format=csv")] = "",
                 tab: Annotated[Literal["alert", "anomaly"] | None, Query(
                     description="for format=csv, instead of type: what a console tab lists: alert (Malicious "
                                 "activity: threat alerts only), anomaly (Strange activity: anomalies and "
                                 "protocol-event alerts)")] = None):
    service = _instance(request).service
    cap = await run_in_threadpool(service.capture, ref)
    cid = cap["id"]
    if cap["status"] != "done":
        raise NotFound(f"capture {cid[:12]} is {cap['status']}: nothing to export yet")
    if format in ("stix", "misp"):
        text = await run_in_threadpool(service.export_intel, cid, format)
        return Response(text, media_type="application/json",
                        headers={"content-disposition": f'attachment; filename="{cid[:16]}.{format}.json"'})
    if format == "eve":
        return StreamingResponse(downloads.eve_lines(service, cid), media_type="application/x-ndjson",
                                 headers={"content-disposition": f'attachment; filename="{cid}.eve.json"'})
    if format == "csv" and tab is not None:
        return await built(request, partial(downloads.tab_csv, service, cap, tab, q), "text/csv",
                           f"{cid[:16]}-{tab}.csv")
    if format == "csv":
        counts = (cap["summary"] or {}).get("counts") or {}
        if type is None or type not in counts:
            raise QueryError(f"format=csv needs type=, one of: {', '.join(sorted(counts)) or 'none'}")
        return await built(request, partial(downloads.csv_file, service, cid, type, q), "text/csv",
                           f"{cid[:16]}-{type}.csv")
    return await built(request, partial(downloads.bundle_zip, service, cap), "application/zip", f"{cid}.zip")


def label_json(row: dict) -> dict:
    return {k: row[k] for k in ("id", "kind", "value", "note", "author", "source")} | {
        "created_at": _iso(row["created_at"])}


Q = Annotated[str, Query(min_length=1, max_length=QUERY_BYTES, description="Lucene query (see /api/v1/fields)")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[str | None, Query(max_length=100, description="next_cursor of the previous page")]


@router.get("/search", response_model=SearchResult, responses=ERRORS,
            summary="Lucene search over all events, grouped by capture")
def search(request: Request, q: Q, limit: Limit = 50, cursor: Cursor = None,
           sort: Literal["hits", "newest", "oldest"] = "hits"):
    offset = _cursor(cursor, "o") or 0
    result = _instance(request).service.search(q, limit=limit, offset=offset, sort=sort)
    groups = [{**g, "submitted_at": _iso(g["submitted_at"]), "labels": [label_json(x) for x in g.get("labels", [])]}
              for g in result.groups]
    more = offset + len(groups) < result.total_captures
    found = result.pivot
    return {"total_captures": result.total_captures, "total_hits": result.total_hits, "truncated": result.truncated,
            "groups": groups, "next_cursor": _token("o", offset + limit) if more else None,
            "pivot": None if found is None else {"value": found.value, "kind": found.kind, "defanged": found.defanged,
                                                 "url": "/api/v1/ioc/" + quote(found.value, safe="")}}


@router.get("/search/counts", response_model=list[TopValues], responses=ERRORS,
            summary="The top values of a field over the events a search matches, across captures")
def search_counts(request: Request, q: Q, field: TopFields = None, limit: TopLimit = 10):
    found = _instance(request).service.search_counts(q, field or panels.SEARCH_DEFAULTS, limit)
    return [panels.shaped(t, q) for t in found]


@router.get("/search/events", response_model=SearchEvents, responses=ERRORS,
            summary="The events matching a query, across captures, best first")
def search_events(request: Request, q: Q, limit: Limit = 100, cursor: Cursor = None):
    offset = _cursor(cursor, "o") or 0
    page = _instance(request).service.search_events(q, limit=limit, offset=offset)
    more = offset + len(page.events) < page.total and len(page.events) == limit
    return {"total": page.total, "next_cursor": _token("o", offset + limit) if more else None,
            "events": [{"capture_id": e["capture"], "seq": e["seq"], "event": e["event"]} for e in page.events]}


@router.get("/search/export", response_class=FileResponse, responses={
    200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}, **ERRORS},
    summary="Export the events matching a query (at most 100,000)")
async def search_export(request: Request, q: Q, format: Literal["ndjson", "csv"] = "ndjson"):
    service = _instance(request).service
    return await built(request, partial(downloads.search_file, service, q, format),
                       "application/x-ndjson" if format == "ndjson" else "text/csv", f"search.{format}")


@router.get("/ioc/{value:path}", response_model=Ioc, responses=ERRORS,
            summary="Pivot on an indicator: every capture holding it, where, how often, and what co-occurs")
def ioc(request: Request, value: Annotated[str, PathParam(min_length=1, max_length=2048)],
        co_occurring: Annotated[bool, Query(description="also the indicators seen with it most often")] = True):
    found = _instance(request).service.ioc(value, co_occurring)
    for c in found["captures"]:
        c["labels"] = [label_json(x) for x in c["labels"]]
    found["yara"] = [yara_json(x) for x in found["yara"]]
    return found


@router.post("/ioc/bulk", response_model=list[BulkHit], responses=ERRORS,
             summary="Up to 1,000 indicators at once: the captures holding each")
def ioc_bulk(request: Request, body: BulkIn):
    return _instance(request).service.bulk_ioc(body.values)


@router.post("/ioc/bulk/export", response_class=Response, responses={
    200: {"content": {"text/csv": {}, "application/json": {}}}, **ERRORS},
    summary="Bulk results as a download: CSV (a row per indicator and capture) or JSON")
def ioc_bulk_export(request: Request, body: BulkIn, format: Literal["csv", "json"] = "csv"):
    return bulkexport.download(_instance(request).service.bulk_ioc(body.values), format)


@router.get("/captures/{ref}/similar", response_model=list[SimilarCapture], responses=ERRORS,
            summary="Captures sharing rare indicators with this one, best first, with the shared indicators")
def similar(request: Request, ref: Ref, limit: Annotated[int, Query(ge=1, le=100)] = 20):
    return [{**s, "submitted_at": _iso(s["submitted_at"]), "labels": [label_json(x) for x in s["labels"]]}
            for s in _instance(request).service.similar(ref, limit)]


@router.get("/captures/{ref}/labels", response_model=list[Label], responses=ERRORS, summary="A capture's labels")
def get_labels(request: Request, ref: Ref):
    return [label_json(x) for x in _instance(request).service.labels(ref)]


@router.post("/captures/{ref}/labels", response_model=Label, status_code=201,
             responses={403: {"model": Error}, **ERRORS},
             summary="Label a capture (family, campaign, actor or free tag), with an optional note")
def add_label(request: Request, ref: Ref, body: NewLabel):
    return label_json(_instance(request).service.add_label(ref, body.kind, body.value, body.note, source="api"))


@router.delete("/captures/{ref}/labels/{label_id}", status_code=204, responses={403: {"model": Error}, **ERRORS},
               summary="Remove a label")
def delete_label(request: Request, ref: Ref, label_id: Annotated[int, PathParam(ge=1, le=2 ** 31 - 1)]):
    _instance(request).service.remove_label(ref, label_id)
    return Response(status_code=204)


@router.get("/captures/{ref}/visibility", response_model=Visibility, responses=ERRORS,
            summary="Who may read a capture: its owner, private, shared (with whom) or public")
def get_visibility(request: Request, ref: Ref):
    return _instance(request).service.capture_visibility(ref)


@router.post("/captures/{ref}/visibility", response_model=Visibility, responses={403: {"model": Error}, **ERRORS},
             summary="Change who may read a capture (its owner, or an admin)")
def set_visibility(request: Request, ref: Ref, body: NewVisibility):
    return _instance(request).service.set_visibility(ref, body.visibility, body.share_with)


@router.get("/engines", response_model=Engines,
            summary="The Suricata daemons' rules: those serving, those being loaded, the last refused")
def engines(request: Request):
    return _instance(request).service.engines()


@router.get("/fields", summary="The searchable fields: name, type, example")
def fields() -> list[dict[str, str]]:
    return catalog.catalogue()


def hunt_json(row: dict) -> dict:
    base = f"/api/v1/hunts/{row['id']}"
    out = {**{k: row[k] for k in ("id", "name", "query", "status", "error", "rules", "hit_captures")},
           "progress": {"done": row["done"], "total": row["total"]},
           "created_at": _iso(row["created_at"]), "started_at": _iso(row["started_at"]),
           "finished_at": _iso(row["finished_at"]), "links": {"self": base, "page": f"/hunts/{row['id']}"}}
    if "captures" in row:
        out |= {"failed_captures": row["failed_captures"], "captures": [
            {k: c[k] for k in ("capture_id", "name", "alerts", "by_sid", "events", "error")} for c in row["captures"]]}
    return out


HuntId = Annotated[int, PathParam(ge=1, le=2 ** 31 - 1)]


@router.post("/hunts", status_code=202, response_model=HuntSubmitted, responses=ERRORS,
             summary="Hunt: run Suricata rules of your own over stored captures (all, or a query's), "
                     "leaving their analyses as they are")
def new_hunt(request: Request, body: NewHunt):
    row = _instance(request).hunt(body.rules, body.query, body.name)
    return JSONResponse({"id": row["id"], "status": row["status"], "status_url": f"/api/v1/hunts/{row['id']}",
                         "page_url": f"/hunts/{row['id']}"}, status_code=202)


@router.get("/hunts", response_model=list[Hunt], summary="Hunts, newest first (without their captures)")
def list_hunts(request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50,
               offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0):
    return [hunt_json(r) for r in _instance(request).service.list_hunts(limit, offset)]


@router.get("/hunts/{hunt_id}", response_model=Hunt, responses=ERRORS,
            summary="A hunt: status, progress, per-rule counts, the captures with their hits and alerts")
def get_hunt(request: Request, hunt_id: HuntId, limit: Annotated[int, Query(ge=1, le=500)] = 100,
             offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0):
    return hunt_json(_instance(request).service.hunt(hunt_id, limit, offset))


@router.delete("/hunts/{hunt_id}", status_code=204, responses=ERRORS, summary="Delete a hunt and its hits")
def delete_hunt(request: Request, hunt_id: HuntId):
    _instance(request).service.delete_hunt(hunt_id)
    return Response(status_code=204)


class YaraRescan(BaseModel):
    running: bool
    done: int
    total: int
    last: dict[str, Any] | None = Field(description="the last re-scan's result: files, matched, matches, errors, "
                                                    "seconds")
    error: str | None


class YaraStatus(BaseModel):
    folder: str | None
    version: str | None = Field(description="content hash of the rules in use")
    rules: int
    files: list[str]
    error: str | None = Field(description="why the folder's current content was refused (the last good rules "
                                          "stay in use)")
    stored_files: int
    stale_files: int = Field(description="stored carved files not scanned by the rules in use yet")
    rescan: YaraRescan


@router.get("/yara", response_model=YaraStatus, responses=ERRORS,
            summary="YARA: the rules folder, the rules in use, the last refusal, the background re-scan")
def yara_status(request: Request):
    return _instance(request).yara_status()


@router.post("/yara/scan", response_model=YaraStatus, status_code=202, responses={409: {"model": Error}, **ERRORS},
             summary="Read the YARA rules again and re-scan every stored carved file with them, in the background")
def yara_scan(request: Request):
    return _instance(request).rescan_yara()


# IOC feeds (ingest/intel.py)
FeedName = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]


class NewFeed(BaseModel):
    name: str = Field(min_length=1, max_length=64, description="the feed's name (searched as intel:NAME); a feed "
                                                               "of that name has its indicators replaced")
    format: Literal["csv", "stix", "misp"] | None = Field(default=None, description="default: told from the content")
    content: str = Field(min_length=1, description="the feed itself: CSV text, a STIX 2.1 bundle or a MISP event "
                                                   "(JSON as text)")


class IntelFeed(BaseModel):
    name: str
    format: str
    origin: str
    indicators: int
    expired: int
    captures: int = Field(description="captures holding one of its indicators")
    skipped: dict[str, int] = Field(description="what its last import left out, and why")
    imported_at: str


class IntelHit(BaseModel):
    kind: str
    value: str
    feed: str
    source: str | None
    confidence: int | None
    description: str | None
    expires: str | None
    expired: bool
    count: int
    fields: list[dict[str, Any]]


FEED_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "CSV, STIX 2.1 bundle or MISP event JSON"}}}},
    "application/json": {"schema": NewFeed.model_json_schema()}}}}


def feed_json(row: dict) -> dict:
    return {k: row[k] for k in ("name", "format", "origin", "indicators", "expired", "captures", "skipped")} | {
        "imported_at": _iso(row["imported_at"])}


@router.post("/intel", status_code=201, response_model=IntelFeed, openapi_extra=FEED_BODY,
             responses={413: {"model": Error}, 415: {"model": Error}, **ERRORS},
             summary="Import an IOC feed (an upload in a part named 'file', with ?name= and ?format=, or JSON): "
                     "its indicators replace a same-named feed's and retro-hunt every stored capture")
async def add_feed(request: Request,
                   name: Annotated[str | None, Query(max_length=64, description="for an upload")] = None,
                   format: Annotated[Literal["csv", "stix", "misp"] | None, Query(description="for an upload")] = None):
    service = _instance(request).service
    if request.headers.get("content-type", "").split(";")[0].strip() == "application/json":
        try:
            body = NewFeed.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from None
        row = await run_in_threadpool(service.import_feed, body.content.encode(), body.name, body.format, "api")
        return JSONResponse(feed_json(row), status_code=201)
    received = await uploads.receive(request, service.settings.work_dir, service.settings.intel_max_bytes)
    try:
        data = await run_in_threadpool(received.path.read_bytes)
    finally:
        received.path.unlink(missing_ok=True)
    origin = received.filename or "upload"
    row = await run_in_threadpool(service.import_feed, data, name or intel_default_name(origin), format, origin)
    return JSONResponse(feed_json(row), status_code=201)


@router.get("/intel", response_model=list[IntelFeed], summary="The IOC feeds: indicators, expired, captures hit")
def list_feeds(request: Request):
    return [feed_json(r) for r in _instance(request).service.list_feeds()]


@router.delete("/intel/{name}", status_code=204, responses=ERRORS,
               summary="Remove an IOC feed, its indicators and their hits")
def delete_feed(request: Request, name: FeedName):
    _instance(request).service.remove_feed(name)
    return Response(status_code=204)


@router.get("/captures/{ref}/intel", response_model=list[IntelHit], responses=ERRORS,
            summary="A capture's indicators of the IOC feeds: feed, confidence, description, expiry, where seen")
def capture_intel(request: Request, ref: Ref):
    service = _instance(request).service
    return [{k: v for k, v in h.items() if k != "imported_at"} | {"expires": _iso(h["expires"])}
            for h in service.capture_intel(service.capture(ref)["id"])]


@router.get("/captures/{ref}/certs", responses=ERRORS,
            summary="A capture's TLS certificates parsed from the logged chains, each with the sessions it was in")
def capture_certs(request: Request, ref: Ref):
    service = _instance(request).service
    return service.capture_certs(service.capture(ref)["id"])


@router.get("/captures/{ref}/netbios", responses=ERRORS,
            summary="A capture's NetBIOS names (name service, UDP 137): name, suffix, kind, sender, count")
def capture_netbios(request: Request, ref: Ref):
    service = _instance(request).service
    return service.netbios_names(service.capture(ref)["id"])
