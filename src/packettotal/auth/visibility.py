"""Which captures a principal may read: pure decisions over upload rows (store/db.py `uploads`).
A capture is visible when one of its uploads is: public, the viewer's own, or shared with them
(by name, or with `group:NAME` for a group they are a member of: `groups`, read afresh for every
view, so a member removed loses sight at once);
a capture with no upload row (analysed before accounts, or by the CLI) is public. Admins and
single mode see everything. The service applies the answer to every read (store/scoped.py)."""

from __future__ import annotations

from collections.abc import Iterable

from ..errors import Forbidden, QueryError
from .rights import Principal

PRIVATE, SHARED, PUBLIC = "private", "shared", "public"
VISIBILITIES = (PRIVATE, SHARED, PUBLIC)
MAX_SHARES = 100


def identity(who: Principal | None) -> str | None:
    """The name an upload is owned under: the user's, else a user-less key's id, else None."""
    if who is None:
        return None
    return who.name or (f"key:{who.key_id}" if who.key_id else None)


def sees_everything(mode: str, who: Principal | None) -> bool:
    """Single mode, the CLI and workers (None), and admins read every capture."""
    return mode == "single" or who is None or who.kind == "local" or who.role == "admin"


def default_visibility(who: Principal | None) -> str:
    """A signed-in upload starts private; an anonymous one (public mode, single mode) public."""
    return PRIVATE if identity(who) is not None else PUBLIC


GROUP = "group:"
NO_GROUPS: frozenset[str] = frozenset()


def row_visible(row: dict, me: str | None, groups: frozenset[str] = NO_GROUPS) -> bool:
    """Whether `me` (a member of `groups`) may see one upload."""
    if row["visibility"] == PUBLIC or (me is not None and row["owner"] == me):
        return True
    if row["visibility"] != SHARED or me is None:
        return False
    shared = set(row["share_with"] or [])
    return me in shared or any(GROUP + g in shared for g in groups)


def hidden(restricted: Iterable[dict], me: str | None, groups: frozenset[str] = NO_GROUPS) -> frozenset[str]:
    """The captures none of whose uploads `me` may see, from the uploads that are not public
    (each row with `public`: whether another upload of its capture is)."""
    closed: set[str] = set()
    opened: set[str] = set()
    for r in restricted:
        (opened if r["public"] or row_visible(r, me, groups) else closed).add(r["capture_id"])
    return frozenset(closed - opened)


def shown_upload(uploads: list[dict], me: str | None, groups: frozenset[str] = NO_GROUPS) -> dict | None:
    """The upload whose name and date a viewer sees of a capture: the first, unless it is hidden
    from them (then the viewer's own, else the first they may see); None: the capture's own."""
    if not uploads or row_visible(uploads[0], me, groups):
        return None
    seen = [u for u in uploads if u["owner"] == me and me is not None] or \
        [u for u in uploads if row_visible(u, me, groups)]
    return seen[0] if seen else None


def seen_names(uploads: list[dict], me: str | None, groups: frozenset[str] = NO_GROUPS) -> list[str]:
    """The names of the uploads of a capture that `me` may see (what the name filter matches)."""
    return [u["name"] for u in uploads if u["name"] and row_visible(u, me, groups)]


def check_change(visibility: str, share_with: Iterable[str]) -> list[str]:
    """The users (and `group:NAME` groups) a change shares with (sorted, each once); raises
    QueryError for a bad request."""
    if visibility not in VISIBILITIES:
        raise QueryError(f"visibility is one of {', '.join(VISIBILITIES)}, not {str(visibility)[:20]!r}")
    names = sorted({n.strip() for n in share_with if n.strip()})
    if len(names) > MAX_SHARES or any(len(n) > 200 or not n.isprintable() for n in names):
        raise QueryError(f"share_with is at most {MAX_SHARES} user names of at most 200 printable characters")
    if visibility != SHARED and names:
        raise QueryError("share_with goes with visibility shared")
    return names


def uploads_to_change(rows: list[dict], who: Principal | None, mode: str) -> list[dict]:
    """The upload rows a principal's change applies to: their own upload; an admin (or single
    mode) every upload of the capture. Raises Forbidden for anyone else."""
    me = identity(who)
    own = [r for r in rows if me is not None and r["owner"] == me]
    if own:
        return own
    if sees_everything(mode, who) and rows:
        return rows
    raise Forbidden("only the capture's owner or an admin changes its visibility")


def label_visible(label: dict, uploads: list[dict], me: str | None, groups: frozenset[str] = NO_GROUPS) -> bool:
    """A label follows its author's upload: hidden when its author holds an upload of the capture
    that the viewer may not see (a public upload of the file reveals nothing of a private one)."""
    author = label.get("author")
    if author is None or author == me:
        return True
    theirs = [u for u in uploads if u["owner"] == author]
    return not theirs or any(row_visible(u, me, groups) for u in theirs)


def may_remove_label(label: dict, who: Principal | None, mode: str) -> bool:
    """An admin (and single mode) removes any label; anyone else only their own."""
    return sees_everything(mode, who) or (label.get("author") is not None and label["author"] == identity(who))
