"""Who may delete a capture: an admin, or its owner: the user every upload of it is theirs (a
capture others uploaded too is not one user's to delete; store/db.py `uploads`)."""

from __future__ import annotations

from .rights import ADMIN, Principal
from .visibility import identity


def is_owner(who: Principal | None, uploads: list[dict]) -> bool:
    """Whether `who` made every upload of a capture (none: a capture from the CLI or from before
    accounts, which only an admin deletes)."""
    me = identity(who)
    return me is not None and bool(uploads) and all(u["owner"] == me for u in uploads)


def may_delete(who: Principal | None, held: frozenset[str], uploads: list[dict]) -> bool:
    return ADMIN in held or is_owner(who, uploads)


def actor_of(who: Principal) -> str:
    """How the audit log names who acted."""
    if who.key_id:
        return f"key:{who.key_id}"
    return who.name or who.kind
