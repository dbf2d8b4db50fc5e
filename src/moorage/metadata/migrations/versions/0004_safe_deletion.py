"""Safe deletion: restorable tags, repositories and manifests; blob links remember use.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("repositories") as batch:
        batch.add_column(sa.Column("deleted_name", sa.String(255), nullable=True))
        batch.add_column(sa.Column("deleted_namespace_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("deleted_at", TIMESTAMP, nullable=True))
        batch.add_column(sa.Column("deleted_by", sa.String(64), nullable=True))
    with op.batch_alter_table("manifests") as batch:
        batch.add_column(sa.Column("deleted_at", TIMESTAMP, nullable=True))
    with op.batch_alter_table("repository_blobs") as batch:
        batch.alter_column("created_at", new_column_name="touched_at")
    op.create_table(
        "deleted_tags",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "repository_id",
            sa.Integer,
            sa.ForeignKey("repositories.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column(
            "manifest_id",
            sa.Integer,
            sa.ForeignKey("manifests.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("deleted_at", TIMESTAMP, nullable=False),
        sa.Column("deleted_by", sa.String(64), nullable=True),
    )
    op.create_index("ix_deleted_tags_repository", "deleted_tags", ["repository_id"])
    op.create_index("ix_deleted_tags_manifest", "deleted_tags", ["manifest_id"])


def downgrade() -> None:
    op.drop_table("deleted_tags")
    with op.batch_alter_table("repository_blobs") as batch:
        batch.alter_column("touched_at", new_column_name="created_at")
    with op.batch_alter_table("manifests") as batch:
        batch.drop_column("deleted_at")
    with op.batch_alter_table("repositories") as batch:
        for column in ("deleted_by", "deleted_at", "deleted_namespace_id", "deleted_name"):
            batch.drop_column(column)
