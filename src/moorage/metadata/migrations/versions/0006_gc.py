"""Garbage collection: a lease table, when manifests were last pushed, blob links by digest.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "locks",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", TIMESTAMP, nullable=False),
    )
    with op.batch_alter_table("manifests") as batch:
        batch.add_column(sa.Column("touched_at", TIMESTAMP, nullable=True))
    # Manifests stored before this revision count as touched when they were created.
    op.execute("UPDATE manifests SET touched_at = created_at")
    op.create_index("ix_repository_blobs_digest", "repository_blobs", ["digest"])


def downgrade() -> None:
    op.drop_index("ix_repository_blobs_digest", "repository_blobs")
    with op.batch_alter_table("manifests") as batch:
        batch.drop_column("touched_at")
    op.drop_table("locks")
