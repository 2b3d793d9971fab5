"""Who may delete a capture: an admin, or its owner. Uploads have no owner yet (visibility per
capture is the next part): `is_owner` is the one hook that part fills, from its uploads table."""

from __future__ import annotations

from .rights import ADMIN, Principal


def is_owner(who: Principal, capture: dict) -> bool:
    """Whether `who` uploaded `capture`. Nobody, until uploads record their owner."""
    return False


def may_delete(who: Principal, held: frozenset[str], capture: dict) -> bool:
    return ADMIN in held or is_owner(who, capture)


def actor_of(who: Principal) -> str:
    """How the audit log names who acted."""
    if who.key_id:
        return f"key:{who.key_id}"
    return who.name or who.kind
