"""The metadata tables, in SQLAlchemy Core; the migrations create exactly these."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

from moorage.clock import as_utc

metadata = MetaData()


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored with its zone, and always read back timezone-aware in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)


def bytewise_string(length: int) -> TypeEngine[str]:
    """Text compared and sorted byte by byte (the spec's lexical order), on PostgreSQL too."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


# A digest is at most "sha512:" plus 128 hex characters.
DIGEST_LENGTH = 140

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    # Set by activation; None means `docker login` is refused with how to activate.
    Column("registry_password_hash", String(255), nullable=True),
    # Raised by every registry password reset; refresh tokens carry the value they were made at.
    Column("registry_password_generation", Integer, nullable=False, default=0),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

namespaces = Table(
    "namespaces",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(30), nullable=False, unique=True),
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Index("ix_namespaces_owner", "owner_id"),
)

access_tokens = Table(
    "access_tokens",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    # "pull" or "pull,push".
    Column("actions", String(32), nullable=False),
    Column("namespace", String(30), nullable=True),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_used_at", UtcDateTime(), nullable=True),
    UniqueConstraint("user_id", "name", name="uq_access_tokens_user_name"),
)

# Failed logins per key ("account:NAME" or "address:IP") in fixed windows, for rate limiting.
login_failures = Table(
    "login_failures",
    metadata,
    Column("key", String(128), primary_key=True),
    Column("window_start", UtcDateTime(), primary_key=True),
    Column("count", Integer, nullable=False),
)

# Limits an operator set for one account; a NULL column means the deployment's default.
quota_overrides = Table(
    "quota_overrides",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("repositories", Integer, nullable=True),
    Column("tags_per_repository", Integer, nullable=True),
    Column("namespaces", Integer, nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
)

# Every change of an account's limits: who, when, from what, to what.
quota_changes = Table(
    "quota_changes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("changed_by", String(64), nullable=False),
    Column("changed_at", UtcDateTime(), nullable=False),
    Column("old_limits", String(255), nullable=False),
    Column("new_limits", String(255), nullable=False),
    Column("request_id", Integer, nullable=True),
    Index("ix_quota_changes_user", "user_id"),
)

# Users asking for higher limits, and the administrators' answers.
quota_requests = Table(
    "quota_requests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("repositories", Integer, nullable=True),
    Column("tags_per_repository", Integer, nullable=True),
    Column("namespaces", Integer, nullable=True),
    Column("reason", String(2000), nullable=False),
    # pending, approved or rejected
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("decided_at", UtcDateTime(), nullable=True),
    Column("decided_by", String(64), nullable=True),
    Column("comment", String(2000), nullable=True),
    Index("ix_quota_requests_status", "status"),
)

repositories = Table(
    "repositories",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # A deleted repository keeps its row, renamed out of the way, until its restore window ends.
    Column("name", bytewise_string(255), nullable=False, unique=True),
    Column("namespace_id", Integer, ForeignKey("namespaces.id"), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("deleted_name", String(255), nullable=True),
    Column("deleted_namespace_id", Integer, nullable=True),
    Column("deleted_at", UtcDateTime(), nullable=True),
    Column("deleted_by", String(64), nullable=True),
    Index("ix_repositories_namespace", "namespace_id"),
)

blobs = Table(
    "blobs",
    metadata,
    Column("digest", String(DIGEST_LENGTH), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)

# Which blobs a repository may serve: those pushed or mounted into it.
repository_blobs = Table(
    "repository_blobs",
    metadata,
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("digest", String(DIGEST_LENGTH), ForeignKey("blobs.digest"), primary_key=True),
    # Refreshed whenever the blob is pushed or looked up: garbage collection spares links
    # touched within its grace period, so a push in progress keeps its blobs.
    Column("touched_at", UtcDateTime(), nullable=False),
    Index("ix_repository_blobs_digest", "digest"),
)

manifests = Table(
    "manifests",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("digest", String(DIGEST_LENGTH), nullable=False),
    Column("media_type", String(255), nullable=False),
    # The artifact type a referrers listing shows: artifactType, else the config's media type.
    Column("artifact_type", String(255), nullable=True),
    Column("subject_digest", String(DIGEST_LENGTH), nullable=True),
    Column("size", BigInteger, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    # Deleted by digest: invisible, restorable through its deleted tags until purged.
    Column("deleted_at", UtcDateTime(), nullable=True),
    # Set by every push of the manifest and when a push moves a tag away from it: garbage
    # collection spares an untagged manifest touched within its grace period. None (a row
    # from an older writer) means `created_at`.
    Column("touched_at", UtcDateTime(), nullable=True),
    UniqueConstraint("repository_id", "digest", name="uq_manifests_repository_digest"),
    Index("ix_manifests_subject", "repository_id", "subject_digest"),
)

# What a manifest points at: blobs (config, layers) and child manifests (of an index).
manifest_references = Table(
    "manifest_references",
    metadata,
    Column(
        "manifest_id",
        Integer,
        ForeignKey("manifests.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("digest", String(DIGEST_LENGTH), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Index("ix_manifest_references_digest", "digest"),
)

tags = Table(
    "tags",
    metadata,
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("name", bytewise_string(128), primary_key=True),
    Column(
        "manifest_id",
        Integer,
        ForeignKey("manifests.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_tags_manifest", "manifest_id"),
)

# Tags deleted within the restore window: what they pointed at, and who deleted them.
deleted_tags = Table(
    "deleted_tags",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "repository_id",
        Integer,
        ForeignKey("repositories.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", String(128), nullable=False),
    Column(
        "manifest_id",
        Integer,
        ForeignKey("manifests.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("deleted_at", UtcDateTime(), nullable=False),
    Column("deleted_by", String(64), nullable=True),
    Index("ix_deleted_tags_repository", "repository_id"),
    Index("ix_deleted_tags_manifest", "manifest_id"),
)

upload_sessions = Table(
    "upload_sessions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("repository_name", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False, index=True),
    # Set while a request writes to the upload, so that no request on another replica does.
    Column("claimed_until", UtcDateTime(), nullable=True),
)

# Named leases, so that of several replicas sharing the database only one runs a job at a time.
locks = Table(
    "locks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
)

# What to build from which git repository into which repository; secrets are encrypted.
build_rules = Table(
    "build_rules",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("repository", String(255), nullable=False),
    Column("git_url", String(2048), nullable=False),
    # A branch or tag name, or a pattern such as `v*`.
    Column("ref", String(255), nullable=False),
    Column("dockerfile", String(1024), nullable=False),
    Column("build_dir", String(1024), nullable=False),
    # None: the branch or tag name, made a valid tag.
    Column("tag_template", String(255), nullable=True),
    # A JSON object of build arguments.
    Column("build_args", Text, nullable=False),
    # Fernet tokens: the git credentials (JSON), the webhook secret.
    Column("credentials", LargeBinary, nullable=True),
    Column("webhook_secret", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_build_rules_user", "user_id"),
)

# Build jobs: queued by a run or a webhook, claimed by one worker, finished in one state.
builds = Table(
    "builds",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("rule_id", String(32), ForeignKey("build_rules.id", ondelete="CASCADE"), nullable=False),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    # The ref asked for (None: the rule's), and the full ref name it resolved to.
    Column("ref", String(255), nullable=True),
    Column("resolved_ref", String(255), nullable=True),
    Column("trigger", String(16), nullable=False),
    # queued, running, succeeded, failed, cancelled, timed_out.
    Column("state", String(16), nullable=False),
    Column("commit", String(64), nullable=True),
    Column("image", String(512), nullable=True),
    Column("image_digest", String(DIGEST_LENGTH), nullable=True),
    Column("reason", String(1000), nullable=True),
    Column("worker_id", String(64), nullable=True),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("started_at", UtcDateTime(), nullable=True),
    Column("finished_at", UtcDateTime(), nullable=True),
    # Refreshed by the worker while it runs the build; a stale one means the worker died.
    Column("heartbeat_at", UtcDateTime(), nullable=True),
    Index("ix_builds_state", "state", "created_at"),
    Index("ix_builds_rule", "rule_id", "created_at"),
    Index("ix_builds_user", "user_id", "created_at"),
)

# Every line a build printed, masked, in order.
build_log_lines = Table(
    "build_log_lines",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("build_id", String(32), ForeignKey("builds.id", ondelete="CASCADE"), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("line", Text, nullable=False),
    Index("ix_build_log_lines_build", "build_id", "id"),
)

# The deployment's secret keys (token signing, console sessions, build secrets): kept here so
# that every replica on this database signs and checks with the same ones.
secret_keys = Table(
    "secret_keys",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
)
