"""job_leases: which Celery worker holds a capture's analysis, and when it last beat (jobs/celery.py).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("job_leases"):  # a pre-Alembic file: its upkeep made it
        return
    op.create_table(
        "job_leases",
        sa.Column("capture_id", sa.String(64), sa.ForeignKey("captures.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("worker", sa.String(200), nullable=False),
        sa.Column("beat_at", sa.DateTime, nullable=False))


def downgrade() -> None:
    op.drop_table("job_leases")
