"""Baseline: the schema when Alembic took over (every table of store/db.py and store/accounts.py).

A database made before then is stamped here after the old upkeep (store/schema.py); an empty one
is made from the metadata and stamped at the head. Later revisions change it from here.

Revision ID: 0001
Revises:
"""

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing: no database is ever upgraded to the baseline, only stamped at it."""


def downgrade() -> None:
    """Nothing below the baseline."""
