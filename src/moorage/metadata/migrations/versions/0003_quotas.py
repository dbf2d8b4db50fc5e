"""Quotas: per-account overrides, their history, and requests for more.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"

TIMESTAMP = sa.DateTime(timezone=True)


def _user_column(primary_key: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(
        "user_id",
        sa.Integer,
        sa.ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "quota_overrides",
        _user_column(primary_key=True),
        sa.Column("repositories", sa.Integer, nullable=True),
        sa.Column("tags_per_repository", sa.Integer, nullable=True),
        sa.Column("namespaces", sa.Integer, nullable=True),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "quota_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _user_column(),
        sa.Column("changed_by", sa.String(64), nullable=False),
        sa.Column("changed_at", TIMESTAMP, nullable=False),
        sa.Column("old_limits", sa.String(255), nullable=False),
        sa.Column("new_limits", sa.String(255), nullable=False),
        sa.Column("request_id", sa.Integer, nullable=True),
    )
    op.create_index("ix_quota_changes_user", "quota_changes", ["user_id"])
    op.create_table(
        "quota_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _user_column(),
        sa.Column("repositories", sa.Integer, nullable=True),
        sa.Column("tags_per_repository", sa.Integer, nullable=True),
        sa.Column("namespaces", sa.Integer, nullable=True),
        sa.Column("reason", sa.String(2000), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("decided_at", TIMESTAMP, nullable=True),
        sa.Column("decided_by", sa.String(64), nullable=True),
        sa.Column("comment", sa.String(2000), nullable=True),
    )
    op.create_index("ix_quota_requests_status", "quota_requests", ["status"])


def downgrade() -> None:
    for table in ("quota_requests", "quota_changes", "quota_overrides"):
        op.drop_table(table)
