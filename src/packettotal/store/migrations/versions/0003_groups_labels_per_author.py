"""Groups of users (a capture shared with `group:NAME`), and labels unique per author: the unique
key (capture_id, kind, value_lower) becomes the index uq_labels_author over (capture_id, kind,
value_lower, coalesce(author, '')), so a label another user holds is theirs, their note included.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

OLD_KEY = ["capture_id", "kind", "value_lower"]


def upgrade() -> None:
    bind = op.get_bind()
    have = sa.inspect(bind)
    if not have.has_table("groups"):  # a pre-Alembic file's upkeep made them already
        op.create_table(
            "groups",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("name", sa.String(64), nullable=False, unique=True),
            sa.Column("created_at", sa.DateTime, nullable=False),
            sqlite_autoincrement=True)
    if not have.has_table("group_members"):
        op.create_table(
            "group_members",
            sa.Column("group_id", sa.Integer, sa.ForeignKey("groups.id", ondelete="CASCADE"), nullable=False),
            sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
            sa.PrimaryKeyConstraint("group_id", "user_id"))
        op.create_index("ix_group_members_user", "group_members", ["user_id"])
    if bind.dialect.name == "sqlite":
        _sqlite_labels(bind)
    else:
        for key in have.get_unique_constraints("labels"):
            if key["column_names"] == OLD_KEY and key["name"]:
                op.drop_constraint(key["name"], "labels", type_="unique")
    op.execute("CREATE UNIQUE INDEX IF NOT EXISTS uq_labels_author ON labels "
                "(capture_id, kind, value_lower, coalesce(author, ''))")


def _sqlite_labels(bind) -> None:
    """SQLite cannot drop a table's UNIQUE: the table is made again without it, its rows and ids
    kept (labels are few, written by hand)."""
    ddl = bind.execute(sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'labels'")).scalar()
    if "UNIQUE (capture_id, kind, value_lower)" not in (ddl or ""):
        return
    op.execute("ALTER TABLE labels RENAME TO labels_old")
    op.execute("DROP INDEX IF EXISTS ix_labels_capture")
    op.execute("DROP INDEX IF EXISTS ix_labels_value")
    op.execute("DROP INDEX IF EXISTS uq_labels_author")
    op.create_table(
        "labels",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("capture_id", sa.String(64), sa.ForeignKey("captures.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("value_lower", sa.String(200), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("author", sa.String(200)),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False))
    columns = "id, capture_id, kind, value, value_lower, note, author, source, created_at"
    op.execute(f"INSERT INTO labels ({columns}) SELECT {columns} FROM labels_old")
    op.execute("DROP TABLE labels_old")
    op.create_index("ix_labels_capture", "labels", ["capture_id"])
    op.create_index("ix_labels_value", "labels", ["value_lower", "kind"])


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS uq_labels_author")
    op.drop_table("group_members")
    op.drop_table("groups")
