"""Builds: rules per repository, build jobs, and their log lines.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "build_rules",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("git_url", sa.String(2048), nullable=False),
        sa.Column("ref", sa.String(255), nullable=False),
        sa.Column("dockerfile", sa.String(1024), nullable=False),
        sa.Column("build_dir", sa.String(1024), nullable=False),
        sa.Column("tag_template", sa.String(255), nullable=True),
        sa.Column("build_args", sa.Text, nullable=False),
        sa.Column("credentials", sa.LargeBinary, nullable=True),
        sa.Column("webhook_secret", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
    )
    op.create_index("ix_build_rules_user", "build_rules", ["user_id"])
    op.create_table(
        "builds",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "rule_id",
            sa.String(32),
            sa.ForeignKey("build_rules.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("ref", sa.String(255), nullable=True),
        sa.Column("resolved_ref", sa.String(255), nullable=True),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("commit", sa.String(64), nullable=True),
        sa.Column("image", sa.String(512), nullable=True),
        sa.Column("image_digest", sa.String(140), nullable=True),
        sa.Column("reason", sa.String(1000), nullable=True),
        sa.Column("worker_id", sa.String(64), nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("heartbeat_at", TIMESTAMP, nullable=True),
    )
    op.create_index("ix_builds_state", "builds", ["state", "created_at"])
    op.create_index("ix_builds_rule", "builds", ["rule_id", "created_at"])
    op.create_index("ix_builds_user", "builds", ["user_id", "created_at"])
    op.create_table(
        "build_log_lines",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "build_id",
            sa.String(32),
            sa.ForeignKey("builds.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("at", TIMESTAMP, nullable=False),
        sa.Column("line", sa.Text, nullable=False),
    )
    op.create_index("ix_build_log_lines_build", "build_log_lines", ["build_id", "id"])


def downgrade() -> None:
    op.drop_table("build_log_lines")
    op.drop_table("builds")
    op.drop_table("build_rules")
