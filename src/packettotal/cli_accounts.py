"""`packettotal user`, `group`, `apikey`, `audit` and `visibility`: accounts kept through the
service (auth/accounts.py), and who may read a capture (service.set_visibility)."""

from __future__ import annotations

import sys

import click
import orjson

from .auth.rights import ROLES
from .auth.visibility import SHARED, VISIBILITIES


def _service(ctx: click.Context):
    from .instance import open_service
    pt = open_service(ctx.obj["settings"])
    ctx.call_on_close(pt.close)
    return pt


def _accounts(ctx: click.Context):
    return _service(ctx).accounts


def _json(obj) -> None:
    click.echo(orjson.dumps(obj, option=orjson.OPT_INDENT_2, default=str).decode())


def _when(value) -> str:
    return value.isoformat(sep=" ", timespec="seconds") if value else "–"


@click.group()
def user() -> None:
    """Web accounts: admin, analyst or viewer (README: Accounts and modes)."""


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(list(ROLES)), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.pass_context
def user_add(ctx: click.Context, name: str, role: str, password_stdin: bool) -> None:
    """Add a user; the password is asked twice (or read from stdin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    row = _accounts(ctx).add_user(name, role, password)
    click.echo(f"user {row['name']} added ({row['role']})")


@user.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def user_list(ctx: click.Context, as_json: bool) -> None:
    """The users, their roles and whether they are disabled."""
    rows = _accounts(ctx).users()
    if as_json:
        _json(rows)
        return
    for r in rows:
        click.echo(f"{r['name']:<24} {r['role']:<8} {'disabled' if r['disabled'] else 'enabled':<8} "
                   f"{_when(r['created_at'])}")


@user.command("disable")
@click.argument("name")
@click.pass_context
def user_disable(ctx: click.Context, name: str) -> None:
    """Disable a user: their sessions end and their keys stop working at once."""
    _accounts(ctx).disable_user(name)
    click.echo(f"user {name} disabled")


@click.group()
def apikey() -> None:
    """API keys, sent as `Authorization: Bearer KEY` or `x-api-key: KEY`."""


@apikey.command("create")
@click.argument("name")
@click.option("--user", "owner", help="The user the key acts as (default: a key of its own, with --role).")
@click.option("--role", type=click.Choice(list(ROLES)), default="analyst", show_default=True,
              help="The role of a key of its own.")
@click.pass_context
def apikey_create(ctx: click.Context, name: str, owner: str | None, role: str) -> None:
    """Create a key and print it, once: only its digest is kept."""
    row, key = _accounts(ctx).create_key(name, owner, role)
    click.echo(f"API key {row['id']} ({row['name']}, {row['role']}"
               f"{', user ' + row['user'] if row['user'] else ''}); it is shown only now:", err=True)
    click.echo(key)


@apikey.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def apikey_list(ctx: click.Context, as_json: bool) -> None:
    """The keys (their public ids, never the keys), uses and state."""
    rows = _accounts(ctx).keys()
    if as_json:
        _json(rows)
        return
    for r in rows:
        state = f"revoked {_when(r['revoked_at'])}" if r["revoked_at"] else "live"
        click.echo(f"{r['id']}  {r['name'][:30]:<30} {r['role'] or '':<8} {r['user'] or '-':<16} "
                   f"{r['requests']:>7} requests {r['uploads']:>5} uploads  last {_when(r['last_used'])}  {state}")


@apikey.command("revoke")
@click.argument("key_id")
@click.pass_context
def apikey_revoke(ctx: click.Context, key_id: str) -> None:
    """Revoke a key by its id: refused from the next request on."""
    _accounts(ctx).revoke_key(key_id)
    click.echo(f"API key {key_id} revoked")


@click.command()
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def audit(ctx: click.Context, limit: int, as_json: bool) -> None:
    """The audit log, newest first: logins, key use, key and user changes."""
    rows = _accounts(ctx).audit(limit)
    if as_json:
        _json(rows)
        return
    for r in rows:
        click.echo(f"{_when(r['at'])}  {r['event']:<16} {r['actor'] or '-':<20} {r['subject'] or '-':<20} "
                   f"{r['address'] or ''}")


@click.group()
def group() -> None:
    """Groups of users: share a capture with `group:NAME` (README: Accounts and modes)."""


@group.command("add")
@click.argument("name")
@click.pass_context
def group_add(ctx: click.Context, name: str) -> None:
    """Add a group."""
    _accounts(ctx).add_group(name)
    click.echo(f"group {name} added")


@group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def group_list(ctx: click.Context, as_json: bool) -> None:
    """The groups and their members."""
    rows = _accounts(ctx).groups()
    if as_json:
        _json(rows)
        return
    for r in rows:
        click.echo(f"{r['name']:<24} {', '.join(r['members']) or '-'}")


@group.group("member")
def member() -> None:
    """Add users to a group or remove them (a removed member loses sight at once)."""


@member.command("add")
@click.argument("group_name", metavar="GROUP")
@click.argument("user_name", metavar="USER")
@click.pass_context
def member_add(ctx: click.Context, group_name: str, user_name: str) -> None:
    added = _accounts(ctx).add_member(group_name, user_name)
    click.echo(f"{user_name} {'added to' if added else 'already in'} group {group_name}")


@member.command("remove")
@click.argument("group_name", metavar="GROUP")
@click.argument("user_name", metavar="USER")
@click.pass_context
def member_remove(ctx: click.Context, group_name: str, user_name: str) -> None:
    removed = _accounts(ctx).remove_member(group_name, user_name)
    click.echo(f"{user_name} {'removed from' if removed else 'was not in'} group {group_name}")


@click.command()
@click.argument("capture")
@click.argument("level", required=False, type=click.Choice(list(VISIBILITIES)))
@click.option("--with", "share_with", default="",
              help="With shared: comma-separated user names and group:NAME groups.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def visibility(ctx: click.Context, capture: str, level: str | None, share_with: str, as_json: bool) -> None:
    """Show who may read a capture, or set it (private, shared --with NAMES, public); audited."""
    pt = _service(ctx)
    if level is None:
        if share_with:
            raise click.UsageError("--with goes with a visibility to set")
        row = pt.capture_visibility(capture)
    else:
        names = [n for n in share_with.split(",") if n.strip()]
        row = pt.set_visibility(capture, level, names)
    if as_json:
        _json(row)
        return
    shared = f" with {', '.join(row['share_with'])}" if row["visibility"] == SHARED else ""
    click.echo(f"{row['capture_id']}  {row['visibility']}{shared}  owner {row['owner'] or '-'}")
