"""Registry core: repositories, blobs, manifests, tags, upload sessions.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

DIGEST = sa.String(140)


def _bytewise(length: int) -> sa.types.TypeEngine:  # type: ignore[type-arg]
    """Names sort by byte, as the spec's lexical order wants, on PostgreSQL too."""
    return sa.String(length).with_variant(sa.String(length, collation="C"), "postgresql")


TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "repositories",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", _bytewise(255), nullable=False, unique=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "blobs",
        sa.Column("digest", DIGEST, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "repository_blobs",
        sa.Column(
            "repository_id",
            sa.Integer,
            sa.ForeignKey("repositories.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("digest", DIGEST, sa.ForeignKey("blobs.digest"), primary_key=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
    )
    op.create_table(
        "manifests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "repository_id",
            sa.Integer,
            sa.ForeignKey("repositories.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("media_type", sa.String(255), nullable=False),
        sa.Column("artifact_type", sa.String(255), nullable=True),
        sa.Column("subject_digest", DIGEST, nullable=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.UniqueConstraint("repository_id", "digest", name="uq_manifests_repository_digest"),
    )
    op.create_index("ix_manifests_subject", "manifests", ["repository_id", "subject_digest"])
    op.create_table(
        "manifest_references",
        sa.Column(
            "manifest_id",
            sa.Integer,
            sa.ForeignKey("manifests.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("digest", DIGEST, primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),
    )
    op.create_index("ix_manifest_references_digest", "manifest_references", ["digest"])
    op.create_table(
        "tags",
        sa.Column(
            "repository_id",
            sa.Integer,
            sa.ForeignKey("repositories.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", _bytewise(128), primary_key=True),
        sa.Column(
            "manifest_id",
            sa.Integer,
            sa.ForeignKey("manifests.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_tags_manifest", "tags", ["manifest_id"])
    op.create_table(
        "upload_sessions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("repository_name", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_upload_sessions_updated_at", "upload_sessions", ["updated_at"])


def downgrade() -> None:
    for table in (
        "upload_sessions",
        "tags",
        "manifest_references",
        "manifests",
        "repository_blobs",
        "blobs",
        "repositories",
    ):
        op.drop_table(table)
