"""Accounts: users, namespaces, access tokens, login failures; repositories join namespaces.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("registry_password_hash", sa.String(255), nullable=True),
        sa.Column("registry_password_generation", sa.Integer, nullable=False),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "namespaces",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(30), nullable=False, unique=True),
        sa.Column(
            "owner_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_namespaces_owner", "namespaces", ["owner_id"])
    op.create_table(
        "access_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("actions", sa.String(32), nullable=False),
        sa.Column("namespace", sa.String(30), nullable=True),
        sa.Column("expires_at", TIMESTAMP, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("last_used_at", TIMESTAMP, nullable=True),
        sa.UniqueConstraint("user_id", "name", name="uq_access_tokens_user_name"),
    )
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(128), primary_key=True),
        sa.Column("window_start", TIMESTAMP, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )
    with op.batch_alter_table("repositories") as batch:
        batch.add_column(sa.Column("namespace_id", sa.Integer, nullable=True))
        batch.create_foreign_key(
            "fk_repositories_namespace", "namespaces", ["namespace_id"], ["id"]
        )
        batch.create_index("ix_repositories_namespace", ["namespace_id"])


def downgrade() -> None:
    with op.batch_alter_table("repositories") as batch:
        batch.drop_index("ix_repositories_namespace")
        batch.drop_constraint("fk_repositories_namespace", type_="foreignkey")
        batch.drop_column("namespace_id")
    for table in ("login_failures", "access_tokens", "namespaces", "users"):
        op.drop_table(table)
