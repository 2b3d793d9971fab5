"""The `packettotal` command: thin, it parses arguments and calls the service."""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson

from . import config as config_mod, export as export_mod, flows as flows_mod
from .errors import ConfigError, Forbidden, IndexBusy, PacketTotalError, QueryError, RefusedCapture, RulesRefused
from .query import fields as catalog

if TYPE_CHECKING:
    from .service import PacketTotal

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
INDEX_WAIT = 600.0  # seconds `analyze` beside a `serve` waits for it to index what it spooled


def _service(ctx: click.Context):
    from .instance import open_service
    pt = open_service(ctx.obj["settings"])
    ctx.call_on_close(pt.close)
    return pt


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError:
        return 0  # refused with the reason when its turn comes


def _json(obj) -> None:
    click.echo(orjson.dumps(obj, option=orjson.OPT_INDENT_2, default=str).decode())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", type=click.Path(), help="Data folder (env PACKETTOTAL_HOME).")
@click.option("--config", "config_file", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="TOML settings file (env PACKETTOTAL_CONFIG).")
@click.pass_context
def cli(ctx: click.Context, home: str | None, config_file: Path | None) -> None:
    """PacketTotal: analyse packet captures with Suricata; search and pivot across all of them."""
    ctx.ensure_object(dict)
    ctx.obj["settings"] = config_mod.load(config_file, origin="command line", home=home)


def result_row(row: dict) -> dict:
    s = row.get("summary") or {}
    return {"id": row["id"], "md5": row["md5"], "sha1": row["sha1"], "name": row["name"],
            "status": row["status"], "error": row.get("error"), "warnings": row.get("warnings") or [],
            "packets": s.get("packets"), "counts": s.get("counts", {}), "alerts": s.get("alerts", 0),
            "findings": sorted({f["name"] for f in s.get("findings", [])})}


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True))
@click.option("--label", "labels", multiple=True, metavar="KIND:VALUE",
              help=f"Label every capture ({', '.join(catalog.LABEL_KINDS)}); repeatable.")
@click.option("--server", metavar="URL", help="Submit to a running instance over its REST API instead.")
@click.option("--api-key", envvar="PACKETTOTAL_API_KEY", metavar="KEY", show_envvar=True,
              help="The API key --server takes (sent as Authorization: Bearer; never printed).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of results.")
@click.pass_context
def analyze(ctx: click.Context, paths: tuple[Path, ...], labels: tuple[str, ...], server: str | None,
            api_key: str | None, as_json: bool) -> None:
    """Analyse captures (pcap, pcapng, or gzip/bzip2/xz/zstd-compressed), and the captures in
    folders (recursive; other files are skipped, with the reason). Exit 0: all done, 1: some
    failed or were refused, 2: usage, or the home is held by another process (a `serve`)."""
    from . import batch
    wanted = [batch.parse_label(text) for text in labels]
    found = batch.expand(paths)
    for p, why in found.skipped:
        click.echo(f"skipped {p}: {why}", err=True)
    if not found.files:
        click.echo("no packet capture to analyse", err=True)
        ctx.exit(EXIT_FAILED)
    if server:
        ordered = _analyze_remote(server, found.files, wanted, as_json, api_key)
    else:
        ordered = _analyze_here(ctx, found.files, wanted, as_json)
    _print_results(ordered, as_json)
    ctx.exit(EXIT_OK if all(r["status"] == "done" for r in ordered) else EXIT_FAILED)


def _refused(p: Path, exc: RefusedCapture | OSError) -> dict:
    reason = (exc.message if isinstance(exc, RefusedCapture)
              else f"could not be read or stored: {exc.strerror or exc}")
    return result_row({"id": None, "md5": None, "sha1": None, "name": p.name, "status": "refused", "error": reason})


def _analyze_here(ctx: click.Context, paths: list[Path], labels: list[tuple[str, str]], as_json: bool) -> list[dict]:
    from .instance import open_jobs
    settings = ctx.obj["settings"]
    if labels and settings.labelling != "anyone":
        raise Forbidden("labels are read-only on this instance (setting labelling)")
    # the event index's writer first (a `serve` holding it: analyses go to the spool and it
    # indexes them), then the daemons warm up while the captures are checked
    try:
        jobs = open_jobs(settings, spawn=True, claim=True)
    except IndexBusy:
        click.echo("another PacketTotal process (a `packettotal serve`?) holds this home's event index: "
                   "the captures are analysed here and indexed by it", err=True)
        jobs = open_jobs(settings, spawn=True, spool=True)
    pt = jobs.service
    ctx.call_on_close(jobs.close)
    ctx.call_on_close(pt.close)  # first: the daemons stop, then the workers
    from rich.progress import Progress

    results: dict[Path, dict] = {}
    ids: dict[str, list[Path]] = {}

    def accepted() -> Iterator[str]:
        """Ids of the captures to analyse, largest file first, each as soon as it is checked."""
        for p in sorted(dict.fromkeys(paths), key=_size, reverse=True):
            try:
                sub = pt.submit(p, p.name)
            except (RefusedCapture, OSError) as exc:
                results[p] = _refused(p, exc)
                continue
            for kind, value in labels:
                pt.add_label(sub.capture["id"], kind, value, source="cli")
            if sub.capture["status"] == "done":
                results[p] = result_row(sub.capture) | {"name": p.name}
            else:
                ids.setdefault(sub.capture["id"], []).append(p)
                yield sub.capture["id"]
        progress.update(task, total=len(ids))

    with Progress(disable=as_json or len(paths) < 2, transient=True) as progress:
        task = progress.add_task("analysing", total=None)

        finished: dict[str, dict] = {}

        def done(row: dict) -> None:
            finished[row["id"]] = row
            progress.advance(task)

        try:
            jobs.run(accepted(), on_done=done)
        finally:
            jobs.close()
        if jobs.spools:
            finished.update(_indexed_by_holder(pt, [cid for cid, row in finished.items()
                                                    if row["status"] == "indexing"]))
    for cid, ps in ids.items():  # one capture under several names: every name gets its row
        row = finished.get(cid) or pt.capture(cid)
        for p in ps:
            results[p] = result_row(row) | {"name": p.name}
    return [results[p] for p in paths]


def _indexed_by_holder(pt: PacketTotal, ids: list[str]) -> dict[str, dict]:
    """Wait (INDEX_WAIT seconds at most) until the process holding the event index has indexed
    these spooled captures; their rows then (those still `indexing` when it did not)."""
    rows = pt.rows(ids)
    deadline = time.monotonic() + INDEX_WAIT
    while waiting := [cid for cid, row in rows.items() if row["status"] == "indexing"]:
        if time.monotonic() >= deadline:
            click.echo(f"{len(waiting)} captures are analysed but not indexed yet after {INDEX_WAIT:.0f} s: the "
                       "process holding the event index will index them (is it busy, or stopped?)", err=True)
            break
        time.sleep(0.25)
        rows.update(pt.rows(waiting))
    return rows


def _analyze_remote(server: str, paths: list[Path], labels: list[tuple[str, str]], as_json: bool,
                    api_key: str | None) -> list[dict]:
    """The same rows, from a running instance: each file uploaded, labelled, then waited for."""
    from rich.progress import Progress

    from .remote import Remote
    remote = Remote(server, api_key=api_key)
    try:
        results: dict[Path, dict] = {}
        ids: dict[Path, str] = {}
        for p in dict.fromkeys(paths):
            try:
                ids[p] = remote.submit(p)
            except (RefusedCapture, OSError) as exc:
                results[p] = _refused(p, exc)
                continue
            for kind, value in labels:
                remote.label(ids[p], kind, value)
        with Progress(disable=as_json or len(paths) < 2, transient=True) as progress:
            task = progress.add_task("analysing", total=len(set(ids.values())))
            rows = remote.wait(ids.values(), on_done=lambda _row: progress.advance(task))
    finally:
        remote.close()
    for p, cid in ids.items():
        results[p] = result_row(rows[cid]) | {"name": p.name}
    return [results[p] for p in paths]


def _print_results(rows: list[dict], as_json: bool) -> None:
    """`result_row`s: one JSON array, or a line each with its error and warnings under it."""
    if as_json:
        _json(rows)
        return
    for r in rows:
        counts = ", ".join(f"{k} {v}" for k, v in r["counts"].items())
        line = f"{r['status']:8} {r['name']}"
        if r["id"]:
            line += f"  {r['id'][:16]}  {r['packets'] or 0} packets, {r['alerts']} alerts"
            line += f"  [{counts}]" if counts else ""
        click.echo(line)
        for msg in ([r["error"]] if r["error"] else []) + r["warnings"]:
            click.echo(f"         {msg}")


@cli.command()
@click.argument("ref", required=False)
@click.option("--query", help="The captures with an event matching this Lucene query.")
@click.option("--all", "every", is_flag=True, help="Every capture.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array of results, as `analyze` does.")
@click.pass_context
def reanalyse(ctx: click.Context, ref: str | None, query: str | None, every: bool, as_json: bool) -> None:
    """Analyse stored captures again with the current rules: one (REF), those a search matches
    (--query), or all (--all). Events are replaced, labels stay. Exit 0: all done, 1: some failed."""
    if sum((ref is not None, query is not None, every)) != 1:
        raise click.UsageError("give one of REF, --query QUERY or --all")
    from .instance import open_jobs
    # the writer first, then the daemons warm up while the captures are chosen
    jobs = open_jobs(ctx.obj["settings"], spawn=True, claim=True)
    pt = jobs.service
    ctx.call_on_close(jobs.close)
    ctx.call_on_close(pt.close)
    if ref is not None:
        ids = [pt.reanalyse(ref).capture["id"]]  # queued now, or left queued/running: run here
    else:
        ids = pt.reanalyse_matching(None if every else query)
    from rich.progress import Progress

    finished: dict[str, dict] = {}
    with Progress(disable=as_json or len(ids) < 2, transient=True) as progress:
        task = progress.add_task("re-analysing", total=len(ids))

        def done(row: dict) -> None:
            finished[row["id"]] = row
            progress.advance(task)

        try:
            jobs.run(ids, on_done=done)
        finally:
            jobs.close()
    rows = [result_row(finished.get(cid) or pt.capture(cid)) for cid in ids]
    _print_results(rows, as_json)
    if not rows and not as_json:
        click.echo("no capture to re-analyse", err=True)
    ctx.exit(EXIT_OK if all(r["status"] == "done" for r in rows) else EXIT_FAILED)


def _summary_lines(row: dict) -> list[str]:
    s = row.get("summary") or {}
    lines = [f"{row['name']}  ({row['status']})", f"  sha256  {row['id']}", f"  md5     {row['md5']}",
             f"  sha1    {row['sha1']}",
             f"  packets {s.get('packets')}  bytes {s.get('bytes')}  duration {s.get('duration')} s",
             f"  first   {s.get('first_ts')}  last {s.get('last_ts')}",
             f"  link types {', '.join(f'{k} ({v})' for k, v in (s.get('linktypes') or {}).items())}"]
    lines.append(f"  ruleset {(s.get('suricata') or {}).get('ruleset') or '(no threat ruleset)'}")
    if row.get("error"):
        lines.append(f"  error   {row['error']}")
    lines += [f"  warning {w}" for w in row.get("warnings") or []]
    if s.get("counts"):
        lines.append(f"  alerts {s.get('alerts', 0)}  events {s.get('events', 0)}")
        lines += [f"    {k:12} {v}" for k, v in s["counts"].items()]
    lines += [f"  finding {f['severity']:6} {f['title']}: {f['key']} ({f['why']})" for f in s.get("findings", [])]
    return lines


@cli.command()
@click.argument("ref")
@click.option("--tab", "event_type", help="Show this event type's rows (dns, http, tls, alert, ...).")
@click.option("--limit", default=50, show_default=True)
@click.option("--offset", default=0)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def show(ctx: click.Context, ref: str, event_type: str | None, limit: int, offset: int, as_json: bool) -> None:
    """A capture's summary (by sha256, md5, sha1 or unique prefix), or one event type's rows."""
    pt = _service(ctx)
    row = pt.capture(ref)
    if event_type:
        page = pt.capture_events(row["id"], event_type, limit=limit, offset=offset)
        if as_json:
            _json({"total": page.total, "events": [e["event"] for e in page.events]})
        else:
            click.echo(f"{page.total} {event_type} events; {offset + 1}-{offset + len(page.events)}:")
            for e in page.events:
                click.echo(orjson.dumps(e["event"]).decode())
        return
    if as_json:
        _json(row | {"files": pt.capture_files(row["id"])})
    else:
        click.echo("\n".join(_summary_lines(row)))


@cli.command()
@click.argument("query")
@click.option("--limit", default=50, show_default=True, help="Captures (grouped) or events (--events).")
@click.option("--sort", type=click.Choice(["hits", "newest", "oldest"]), default="hits", show_default=True)
@click.option("--events", "raw", is_flag=True, help="List matching events instead of captures.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def search(ctx: click.Context, query: str, limit: int, sort: str, raw: bool, as_json: bool) -> None:
    """Lucene search over every capture's events, e.g. 'dns.rrname:*.evil.com AND src_ip:10.0.0.0/8'
    or 'tag:emotet'."""
    pt = _service(ctx)
    if raw:
        page = pt.search_events(query, limit=limit)
        if as_json:
            _json({"total": page.total, "events": page.events})
        else:
            click.echo(f"{page.total} events")
            for e in page.events:
                click.echo(f"{e['capture'][:16]} {orjson.dumps(e['event']).decode()[:300]}")
        return
    result = pt.search(query, limit=limit, sort=sort)
    found = result.pivot  # a lone indicator: its pivot's captures
    if as_json:
        _json({"total_captures": result.total_captures, "total_hits": result.total_hits, "groups": result.groups,
               "pivot": None if found is None else dataclasses.asdict(found)})
        return
    if found is not None:
        click.echo(f"{found.value} ({found.kind}{', refanged' if found.defanged else ''}): its pivot")
    click.echo(f"{result.total_captures} captures, {result.total_hits} {'occurrences' if found else 'events'}")
    for g in result.groups:
        found = ", ".join(f"{k} {v}" for k, v in g["found_in"].items())
        tags = " ".join(f"[{lb['kind']}:{lb['value']}]" for lb in g.get("labels", []))
        click.echo(f"{g['capture_id'][:16]}  {g['hits']:6} hits  {g['name']}  {tags}  ({found})")


@cli.command()
@click.argument("value")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def ioc(ctx: click.Context, value: str, as_json: bool) -> None:
    """Pivot on an indicator (IP, domain, URL, hash, JA3/JA4, certificate, e-mail, user agent):
    every capture holding it, and what co-occurs with it."""
    found = _service(ctx).ioc(value)
    if as_json:
        _json(found)
        return
    click.echo(f"{value} ({found['kind']}): {found['total_captures']} captures")
    for c in found["captures"]:
        fields = ", ".join(f"{f['field']}" for f in c["fields"])
        tags = " ".join(f"[{lb['kind']}:{lb['value']}]" for lb in c["labels"])
        click.echo(f"  {c['capture_id'][:16]}  {c['count']:6}x  {c['name']}  {tags}  in {fields}  "
                   f"{c['first_seen'] or ''} .. {c['last_seen'] or ''}")
    if found["co_occurring"]:
        click.echo("seen with it most often:")
        for r in found["co_occurring"][:10]:
            click.echo(f"  {r['captures']:4} of its captures ({r['df']} in all)  {r['kind']:12} {r['value']}")


@cli.command()
@click.argument("ref")
@click.option("--yes", is_flag=True, help="Delete without asking.")
@click.pass_context
def delete(ctx: click.Context, ref: str, yes: bool) -> None:
    """Delete a capture for good: its events, indicators, labels, findings and files (a carved file
    another capture holds stays). Refused while it is queued or being analysed; audited."""
    from .auth.rights import LOCAL, ROLES
    pt = _service(ctx)
    cap = pt.capture(ref)
    if not yes:
        click.confirm(f"delete capture {cap['id'][:16]} ({cap['name']}) and everything of it?", abort=True)
    pt.delete_capture(cap["id"], dataclasses.replace(LOCAL, name="cli"), ROLES["admin"])
    click.echo(f"capture {cap['id']} deleted")


@cli.command()
@click.argument("ref")
@click.option("--limit", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def similar(ctx: click.Context, ref: str, limit: int, as_json: bool) -> None:
    """Captures sharing rare indicators with this one, best first, with the shared indicators."""
    found = _service(ctx).similar(ref, limit)
    if as_json:
        _json(found)
        return
    for s in found:
        shared = ", ".join(f"{x['kind']}:{x['value']}" for x in s["shared"][:4])
        click.echo(f"{s['score']:.3f}  {s['capture_id'][:16]}  {s['name']}  shares {shared}")
    if not found:
        click.echo("no other capture shares an indicator with it")


@cli.command()
@click.argument("ref")
@click.argument("value", required=False)
@click.option("--kind", type=click.Choice(list(catalog.LABEL_KINDS)), default="tag", show_default=True)
@click.option("--note", help="A short note (why, source, ...).")
@click.option("--remove", "remove_id", type=int, help="Remove the label with this id instead.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def label(ctx: click.Context, ref: str, value: str | None, kind: str, note: str | None,
          remove_id: int | None, as_json: bool) -> None:
    """Label a capture (searchable as tag:/family:/campaign:/actor:), remove a label, or list them."""
    pt = _service(ctx)
    if remove_id is not None:
        pt.remove_label(ref, remove_id)
    elif value:
        pt.add_label(ref, kind, value, note, source="cli")
    rows = pt.labels(ref)
    if as_json:
        _json(rows)
        return
    for r in rows:
        click.echo(f"{r['id']:5}  {r['kind']}:{r['value']}" + (f"  ({r['note']})" if r["note"] else ""))


@cli.command()
@click.argument("ref")
@click.option("--format", "fmt", type=click.Choice(["eve", "csv", "pcap", "stix", "misp"]), required=True)
@click.option("--type", "event_type", help="Event type for CSV (default: every type, one table).")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), help="File (default stdout).")
@click.pass_context
def export(ctx: click.Context, ref: str, fmt: str, event_type: str | None, output: Path | None) -> None:
    """Export a capture: EVE NDJSON as stored, CSV of one event type, the original capture, or its
    indicators (IOC feeds' hits) and alerts as a STIX 2.1 bundle or a MISP event."""
    pt = _service(ctx)
    row = pt.capture(ref)
    if fmt in ("stix", "misp"):
        text = pt.export_intel(row["id"], fmt)
        if output:
            output.write_text(text)
        else:
            click.echo(text)
        return
    if fmt == "pcap":
        with pt.open_capture(row["id"]) as src:
            if output:
                with open(output, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            else:
                shutil.copyfileobj(src, sys.stdout.buffer)
        return
    if fmt == "eve":
        with (open(output, "wb") if output else _stdout_bytes()) as out:
            export_mod.write_ndjson(pt.export_events(row["id"]), out)
    else:
        with (open(output, "w", newline="") if output else _stdout_text()) as out:
            export_mod.write_csv(lambda: pt.export_events(row["id"], event_type), out)


@cli.command()
@click.argument("ref")
@click.argument("flow")
@click.option("--packets", "show_packets", is_flag=True, help="List its packets (--offset, --limit).")
@click.option("--payload", "show_payload", is_flag=True, help="Print each direction's payload as text (--hex: as hex).")
@click.option("--hex", "as_hex", is_flag=True)
@click.option("--pcap", "cut", is_flag=True, help="Write a capture of just this flow (-o FILE).")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--offset", default=0, help="First packet (--packets) or payload byte (--payload).")
@click.option("--limit", default=None, type=int, help=f"Packets (at most {flows_mod.PACKETS_PAGE}) or payload "
              f"bytes (at most {flows_mod.PAYLOAD_PAGE:,}).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def flow(ctx: click.Context, ref: str, flow: str, show_packets: bool, show_payload: bool, as_hex: bool, cut: bool,
         output: Path | None, offset: int, limit: int | None, as_json: bool) -> None:
    """One flow of a capture (FLOW: its flow_id or community id): its records, packets, payload or pcap."""
    pt = _service(ctx)
    f = pt.flow(ref, flow)
    if cut:
        if output is None:
            raise click.UsageError("--pcap needs -o FILE")
        with open(output, "wb") as out:
            for chunk in pt.flow_pcap(f):
                out.write(chunk)
        click.echo(f"wrote {output}")
    elif show_packets:
        page = pt.flow_packets(f, offset, min(limit or flows_mod.PACKETS_PAGE, flows_mod.PACKETS_PAGE))
        if as_json:
            _json(page)
            return
        click.echo(f"{page['total']} packets; {offset + 1}-{offset + len(page['packets'])}:")
        for p in page["packets"]:
            click.echo(f"{p['n']:>6} {p['time']} {p['direction']:<9} {p['flags']:<4} {p['length']:>6} {p['summary']}")
    elif show_payload:
        data = pt.flow_payload(f, offset, min(limit or flows_mod.PAYLOAD_PAGE, flows_mod.PAYLOAD_PAGE))
        if as_json:
            _json(data)
            return
        for side, d in data["directions"].items():
            click.echo(f"== {side}: {d['bytes']:,} bytes, {d['length']:,} from {d['offset']:,}")
            click.echo(d["hex"] if as_hex else d["text"])
    elif as_json:
        _json({**f.summary(), "records": f.events})
    else:
        s = f.summary()
        click.echo(f"{s['proto']} {s['src_ip']}:{s['src_port']} -> {s['dest_ip']}:{s['dest_port']} "
                   f"{s['app_proto'] or ''} {s['duration']} s; to server {s['to_server']['packets']} packets "
                   f"{s['to_server']['bytes']} bytes, to client {s['to_client']['packets']} packets "
                   f"{s['to_client']['bytes']} bytes")
        for e in f.events:
            click.echo(orjson.dumps(e).decode())


class _NoClose:
    def __init__(self, stream):
        self.stream = stream

    def __enter__(self):
        return self.stream

    def __exit__(self, *exc):
        self.stream.flush()


def _stdout_bytes():
    return _NoClose(sys.stdout.buffer)


def _stdout_text():
    return _NoClose(sys.stdout)


@cli.command()
@click.option("--json", "as_json", is_flag=True)
def fields(as_json: bool) -> None:
    """The searchable fields: EVE names, aliases, types and examples."""
    rows = catalog.catalogue()
    if as_json:
        _json(rows)
    else:
        for r in rows:
            click.echo(f"{r['name']:32} {r['type']:8} {r['example']}")


@cli.command("config")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def config_cmd(ctx: click.Context, as_json: bool) -> None:
    """The settings in effect: value, where it came from (default, file, environment, command line), help."""
    rows = config_mod.describe(ctx.obj["settings"])
    if as_json:
        _json(rows)
        return
    cells = [(r["setting"], _shown(r["value"]), r["source"], r["help"]) for r in rows]
    widths = [max(len(c[i]) for c in [("setting", "value", "source"), *cells]) for i in range(3)]
    for c in [("setting", "value", "source", "help"), *cells]:
        click.echo("  ".join(x.ljust(w) for x, w in zip(c[:3], widths, strict=True)) + "  " + c[3])


def _shown(value: object) -> str:
    text = "(none)" if value is None else "(empty)" if value == "" else str(value)
    return text if text.isprintable() else repr(text)


@cli.command()
@click.pass_context
def demo(ctx: click.Context) -> None:
    """Build the project's demo capture, analyse it, print its summary."""
    from . import demo as demo_mod
    pt = _service(ctx)
    path = pt.settings.home / "demo" / "packettotal-demo.pcap"
    if not path.exists():
        demo_mod.write(path)
    sub = pt.submit(path, path.name)
    row = sub.capture if sub.capture["status"] == "done" else pt.analyse(sub.capture["id"])
    click.echo("\n".join(_summary_lines(row)))
    click.echo(f"\nTry: packettotal show {row['id'][:12]} --tab alert   |   "
               "packettotal search 'alert.signature:*EICAR*'")
    ctx.exit(EXIT_OK if row["status"] == "done" else EXIT_FAILED)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--no-demo", is_flag=True, help="Do not analyse the demo capture on an empty instance.")
@click.option("--allow-single", is_flag=True, help="Serve mode single (no login) on a non-loopback address.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, no_demo: bool, allow_single: bool) -> None:
    """Run the web console and REST API (one process: the event index has one writer)."""
    import uvicorn

    from .web import server
    from .web.app import create_app
    settings = ctx.obj["settings"]
    hosts = settings.allowed_hosts.split(",")
    notice = None
    if host in ("0.0.0.0", "::"):
        if settings.allowed_hosts == config_mod.Settings.allowed_hosts:
            notice = ("listening on every address: set PACKETTOTAL_ALLOWED_HOSTS to the names clients use "
                      "(answering any Host header for now)")
            hosts = ["*"]
    elif host not in hosts:
        hosts.append(host)
    before = settings.sources["allowed_hosts"]
    sources = {**settings.sources, "allowed_hosts": "serve --host, added to "
               + ("the default" if before == "default" else before)}
    settings = dataclasses.replace(settings, allowed_hosts=",".join(hosts), sources=sources)
    if settings.mode == "single" and not allow_single and not _loopback(host):
        click.echo(f"packettotal: mode single has no login; refusing to listen on {host}: set mode to team or "
                   "public (README: Accounts and modes), or pass --allow-single", err=True)
        ctx.exit(EXIT_USAGE)
    if notice:
        click.echo(notice, err=True)
    app = create_app(settings, seed_demo=not no_demo)
    if not settings.broker_url:
        app.state.instance.service.claim_index()  # another process writing this home: one line, exit 2
    click.echo(f"PacketTotal on http://{host}:{port}/  (API: http://{host}:{port}/api)")
    uvicorn.Server(server.config(app, settings, host, port, log_level="info")).run()


@cli.command()
@click.option("--concurrency", type=click.IntRange(1, 64), default=None,
              help="Captures analysed at once (threads sharing the daemons; default: setting engines).")
@click.pass_context
def worker(ctx: click.Context, concurrency: int | None) -> None:
    """Run a Celery worker: analyse the captures queued on broker_url (SIGTERM: finish, then stop)."""
    settings = ctx.obj["settings"]
    if not settings.broker_url:
        raise ConfigError("packettotal worker needs the setting broker_url (PACKETTOTAL_BROKER_URL=redis://...)")
    if settings.engines < 1:
        raise ConfigError("packettotal worker runs Suricata: engines must be at least 1 here (0 is for web nodes)")
    from .jobs.celery import Worker
    Worker(settings, concurrency).run()


def _loopback(host: str) -> bool:
    import ipaddress
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: list[str] | None = None) -> int:
    """The command line as a function: the exit code (for callers in another program)."""
    try:
        rc = cli.main(args, standalone_mode=False)
        return rc if isinstance(rc, int) else EXIT_OK
    except click.ClickException as exc:
        exc.show()
        return EXIT_USAGE
    except click.Abort:
        return EXIT_FAILED
    except PacketTotalError as exc:
        click.echo(f"packettotal: {exc.message}", err=True)
        return EXIT_USAGE if isinstance(exc, QueryError | ConfigError | RulesRefused | IndexBusy) else EXIT_FAILED


def main() -> None:
    """The `packettotal` script. It exits without Python's module-by-module teardown (~0.1 s of
    every command): the commands close what they open and exit handlers still run; a normal
    exit while another thread would be waited for."""
    code = run()
    if any(t is not threading.main_thread() and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
    except (OSError, ValueError) as exc:  # output lost (a full disk, a closed pipe): not a success
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"packettotal: could not write the output: {exc}\n")
        code = code or 120
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(code)


@cli.group()
def rules() -> None:
    """Threat rulesets, managed with suricata-update under <home>/rules/ (a running `serve`
    loads a change into new daemons within rules_reload_seconds, then swaps them in)."""


def _ruleset_line(ruleset) -> str:
    if ruleset is None:
        return "no threat ruleset: `packettotal rules add SOURCE` (offline) or `packettotal rules update` (online)"
    return (f"ruleset {ruleset.version}: {ruleset.enabled} rules enabled, {ruleset.disabled} disabled "
            f"(sha256 {ruleset.sha256})")


@rules.command("update")
@click.pass_context
def rules_update(ctx: click.Context) -> None:
    """Fetch every source again and merge (no source: ET Open, which suricata-update fetches)."""
    from .ingest import rules as rules_mod
    click.echo(_ruleset_line(rules_mod.update(ctx.obj["settings"])))


@rules.command("add")
@click.argument("source")
@click.option("--name", help="The source's name (default: from SOURCE).")
@click.pass_context
def rules_add(ctx: click.Context, source: str, name: str | None) -> None:
    """Add a local source and merge: a folder of .rules files, a .tar.gz (or .rules) file, or a
    file:// URL. Its rules must pass `suricata -T`, else it is not added."""
    from .ingest import rules as rules_mod
    click.echo(_ruleset_line(rules_mod.add(ctx.obj["settings"], source, name)))


@rules.command("remove")
@click.argument("name")
@click.pass_context
def rules_remove(ctx: click.Context, name: str) -> None:
    """Take a source out and merge the others."""
    from .ingest import rules as rules_mod
    click.echo(_ruleset_line(rules_mod.remove(ctx.obj["settings"], name)))


@rules.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def rules_list(ctx: click.Context, as_json: bool) -> None:
    """The sources: name, URL, and the folder a folder source is packed from."""
    from .ingest import rules as rules_mod
    found = rules_mod.sources(ctx.obj["settings"])
    if as_json:
        _json([s.as_dict() for s in found])
        return
    for s in found:
        click.echo(f"{s.name:24} {s.url}" + (f"  (folder {s.folder})" if s.folder else ""))
    if not found:
        click.echo("no sources: `packettotal rules update` uses ET Open (online)")


@rules.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def rules_status(ctx: click.Context, as_json: bool) -> None:
    """The installed ruleset: version (date and content hash), enabled and disabled rules, sources, filters."""
    from .ingest import rules as rules_mod
    settings = ctx.obj["settings"]
    ruleset, found, filters = (rules_mod.installed(settings), rules_mod.sources(settings),
                               rules_mod.filters(settings))
    if as_json:
        _json({"ruleset": ruleset and ruleset.as_dict(), "sources": [s.as_dict() for s in found]} | filters)
        return
    click.echo(_ruleset_line(ruleset))
    click.echo(f"sources: {', '.join(s.name for s in found) or '(none)'}")
    for kind, specs in filters.items():
        click.echo(f"{kind}.conf: {', '.join(specs) or '(empty)'}")


@rules.command("enable")
@click.argument("spec")
@click.pass_context
def rules_enable(ctx: click.Context, spec: str) -> None:
    """Enable rules (enable.conf): SID, GID:SID, group:NAME (a rules file) or re:REGEX; then re-merge."""
    from .ingest import rules as rules_mod
    click.echo(_ruleset_line(rules_mod.set_filter(ctx.obj["settings"], "enable", spec)))


@rules.command("disable")
@click.argument("spec")
@click.pass_context
def rules_disable(ctx: click.Context, spec: str) -> None:
    """Disable rules (disable.conf), as `enable` names them; enable.conf wins where both match."""
    from .ingest import rules as rules_mod
    click.echo(_ruleset_line(rules_mod.set_filter(ctx.obj["settings"], "disable", spec)))


@cli.command()
@click.argument("rules_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--query", help="Only the captures with an event matching this Lucene query.")
@click.option("--name", help="The hunt's name (default: its first rule's msg).")
@click.option("--json", "as_json", is_flag=True, help="Print the hunt as the API gives it.")
@click.pass_context
def hunt(ctx: click.Context, rules_file: Path, query: str | None, name: str | None, as_json: bool) -> None:
    """Run Suricata rules of your own (one a line, each with a sid) over the stored captures, or
    those a search matches, leaving their analyses as they are; the results stay (`hunts`,
    searchable as hunt:ID). Exit 0: the hunt ran, 1: it failed, 2: rules or query refused."""
    from .ingest.hunts import MAX_RULES_BYTES
    size = rules_file.stat().st_size
    if size > MAX_RULES_BYTES:
        raise RulesRefused(f"{rules_file.name} is {size:,} bytes: a hunt takes at most {MAX_RULES_BYTES:,}")
    try:
        text = rules_file.read_bytes().decode()
    except UnicodeDecodeError as exc:
        raise RulesRefused(f"{rules_file.name} is not UTF-8 text (byte {exc.start})") from None
    pt = _service(ctx)
    row = pt.new_hunt(text, query, name)
    found = _with_progress(f"hunt {row['id']}", as_json, lambda report: pt.run_hunt(row["id"], progress=report))
    if as_json:
        _json(pt.hunt(row["id"], limit=100_000))
    else:
        _print_hunt(found)
    ctx.exit(EXIT_OK if found["status"] == "done" else EXIT_FAILED)


def _with_progress(label: str, quiet: bool, work: Callable[[Callable[[int, int | None], None]], dict]) -> dict:
    """`work(report)` under a progress bar (none when `quiet`); `report(done, total)` moves it."""
    from rich.progress import Progress
    with Progress(disable=quiet, transient=True) as progress:
        task = progress.add_task(label, total=None)
        return work(lambda done, total: progress.update(task, completed=done, total=total))


def _print_hunt(h: dict) -> None:
    click.echo(f"hunt {h['id']}  {h['name']}  {h['status']}  {h['done']} of {h['total'] or 0} captures read, "
               f"{h['hit_captures']} hit  (search: hunt:{h['id']})")
    if h["error"]:
        click.echo(f"  error: {h['error']}")
    for r in h["rules"]:
        click.echo(f"  sid {r['sid']:<10} {r['alerts']:6} alerts in {r['captures']:4} captures  {r['msg']}")
    msgs = {str(r["sid"]): r["msg"] for r in h["rules"]}
    for c in h["captures"]:
        if c["error"]:
            click.echo(f"  {c['capture_id'][:16]}  failed  {c['name']}: {c['error']}")
            continue
        fired = ", ".join(f"{msgs.get(sid, sid)} ({n})" for sid, n in c["by_sid"].items())
        click.echo(f"  {c['capture_id'][:16]}  {c['alerts']:6} alerts  {c['name']}: {fired}")


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def hunts(ctx: click.Context, as_json: bool) -> None:
    """The hunts, newest first (`hunts show ID`, `hunts delete ID`)."""
    if ctx.invoked_subcommand is not None:
        return
    rows = _service(ctx).list_hunts()
    if as_json:
        _json(rows)
        return
    for h in rows:
        click.echo(f"{h['id']:5}  {h['status']:8} {h['done']} of {h['total'] or 0} read, {h['hit_captures']} hit  "
                   f"{h['name']}" + (f"  (query: {h['query']})" if h["query"] else ""))
    if not rows:
        click.echo("no hunts: `packettotal hunt RULES_FILE`")


@hunts.command("show")
@click.argument("hunt_id", type=click.IntRange(1, 2 ** 31 - 1))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def hunts_show(ctx: click.Context, hunt_id: int, as_json: bool) -> None:
    """One hunt: per-rule counts, the captures with their hits (--json: and their alerts)."""
    found = _service(ctx).hunt(hunt_id, limit=100_000)
    if as_json:
        _json(found)
    else:
        _print_hunt(found)


@hunts.command("delete")
@click.argument("hunt_id", type=click.IntRange(1, 2 ** 31 - 1))
@click.pass_context
def hunts_delete(ctx: click.Context, hunt_id: int) -> None:
    """Delete a hunt and its hits (hunt:ID then matches nothing)."""
    _service(ctx).delete_hunt(hunt_id)
    click.echo(f"hunt {hunt_id} deleted")


@cli.group()
def yara() -> None:
    """YARA rules run on every carved file (setting yara_rules_dir): status and retro-scans."""


@yara.command("status")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def yara_status(ctx: click.Context, as_json: bool) -> None:
    """The rules folder, the rules in use (version, count, files), the last refusal, and how many
    stored carved files are not scanned by these rules yet."""
    found = _service(ctx).yara_status()
    if as_json:
        _json(found)
        return
    click.echo(f"folder  {found['folder'] or '(none: set yara_rules_dir)'}")
    click.echo(f"rules   {found['rules']} from {len(found['files'])} files, version {found['version'] or '(none)'}")
    click.echo(f"files   {found['stored_files']} stored, {found['stale_files']} not scanned by these rules")
    if found["error"]:
        click.echo(f"error   {found['error']}")


@yara.command("scan")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def yara_scan(ctx: click.Context, as_json: bool) -> None:
    """Scan every stored carved file again with the current rules, replacing their old matches
    (no re-analysis). Exit 1: the rules folder was refused (the last good rules were used)."""
    pt = _service(ctx)
    found = _with_progress("scanning", as_json, lambda report: pt.yara_rescan(progress=report))
    if as_json:
        _json(found)
    else:
        click.echo(f"{found['files']} files scanned with {found['rules']} rules ({found['version'][:16]}) in "
                   f"{found['seconds']} s: {found['matched']} matched ({found['matches']} matches), "
                   f"{found['errors']} not fully scanned")
        if found["error"]:
            click.echo(f"error   {found['error']}", err=True)
    ctx.exit(EXIT_FAILED if found["error"] else EXIT_OK)


@cli.group()
def intel() -> None:
    """IOC feeds: indicators matched against every capture (`intel add`, `intel list`, `intel remove`)."""


@intel.command("add")
@click.argument("source")
@click.option("--name", help="The feed's name, searched as intel:NAME (default: the file's name); a feed of "
                             "that name has its indicators replaced.")
@click.option("--format", "fmt", type=click.Choice(["csv", "stix", "misp"]), help="Default: told from the content.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def intel_add(ctx: click.Context, source: str, name: str | None, fmt: str | None, as_json: bool) -> None:
    """Import a feed from FILE_OR_URL (an http(s) URL is fetched, only then) and retro-hunt every stored
    capture through its observables (no re-analysis)."""
    row = _service(ctx).add_feed(source, name, fmt)
    if as_json:
        _json(row)
        return
    click.echo(f"{row['name']}: {row['indicators']} indicators ({row['expired']} expired) from {row['format']}, "
               f"in {row['captures']} captures (search: intel:{row['name']})")
    for why, n in row["skipped"].items():
        click.echo(f"  skipped {n}: {why}")


@intel.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def intel_list(ctx: click.Context, as_json: bool) -> None:
    """The feeds: indicators, expired, captures holding one."""
    rows = _service(ctx).list_feeds()
    if as_json:
        _json(rows)
        return
    for r in rows:
        click.echo(f"{r['name']:24} {r['format']:5} {r['indicators']:7} indicators {r['expired']:6} expired "
                   f"{r['captures']:6} captures  {r['origin']}")
    if not rows:
        click.echo("no feeds: `packettotal intel add FILE_OR_URL`")


@intel.command("remove")
@click.argument("name")
@click.pass_context
def intel_remove(ctx: click.Context, name: str) -> None:
    """Remove a feed, its indicators and their hits."""
    _service(ctx).remove_feed(name)
    click.echo(f"feed {name} removed")


@cli.command()
@click.option("--to-database", required=True, metavar="URL",
              help="The target relational store: postgresql://USER:PASSWORD@HOST[:PORT]/DB or sqlite:///PATH.")
@click.option("--to-events", required=True, metavar="URL_OR_PATH",
              help="The target event index: an OpenSearch http(s):// URL (as events_url takes), or a tantivy folder.")
@click.option("--to-blobs", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="The target blob folder (captures, carved files, flow indexes).")
@click.option("--batch", default=5000, show_default=True, type=click.IntRange(1, 1_000_000),
              help="Rows read and inserted at a time (one transaction each); events are committed every 20 x N.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_context
def migrate(ctx: click.Context, to_database: str, to_events: str, to_blobs: Path, batch: int, as_json: bool) -> None:
    """Copy this instance (its settings' stores) into empty ones, both ways between the embedded
    stores and PostgreSQL / OpenSearch, then check every table's rows and every capture's events.
    Stopped midway, the same command resumes. Exit 0: copied and checked; 2: an error (one line)."""
    try:
        summary = _service(ctx).migrate(to_database, to_events, to_blobs, batch,
                                        progress=None if as_json else click.echo)
    except PacketTotalError as exc:
        click.echo(f"packettotal: {exc.message}", err=True)
        ctx.exit(EXIT_USAGE)
    if as_json:
        _json(summary.as_dict())
        return
    for line in summary.lines():
        click.echo(line)


@cli.group()
def db() -> None:
    """The relational database's schema revision (`db current`, `db upgrade`)."""


@db.command("current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """The database's schema revision and the one this version of PacketTotal needs."""
    from .service import PacketTotal
    revision, head = PacketTotal.database_revision(ctx.obj["settings"])
    state = "not made yet" if revision is None else "current" if revision == head else "behind: `db upgrade`"
    click.echo(f"database {revision or '(none)'}, code {head}: {state}")


@db.command("upgrade")
@click.pass_context
def db_upgrade(ctx: click.Context) -> None:
    """Bring the database to this version's schema (PostgreSQL: once, from one node, before the others
    start; an embedded SQLite file upgrades itself when opened)."""
    from .service import PacketTotal
    before, after = PacketTotal.upgrade_database(ctx.obj["settings"])
    click.echo(f"database at {after}" + ("" if before == after else f" (was {before or 'not made'})"))


from .cli_accounts import apikey, audit, group, user, visibility  # noqa: E402  (after cli: they are added to it)

for _command in (user, group, apikey, audit, visibility):
    cli.add_command(_command)
