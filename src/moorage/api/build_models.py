"""Request and response bodies of the build API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class GitCredentialsIn(BaseModel):
    """How to read a private repository: a username and token, or an SSH private key."""

    username: str | None = None
    token: str | None = None
    ssh_key: str | None = None


class NewBuildRule(BaseModel):
    """A rule: what to build from which repository, and the tag to push."""

    repository: str
    git_url: str
    ref: str
    dockerfile: str = "Dockerfile"
    build_dir: str = "./"
    tag_template: str | None = None
    build_args: dict[str, str] = Field(default_factory=dict)
    credentials: GitCredentialsIn | None = None


class BuildRuleChange(BaseModel):
    """The fields of a rule to change; `credentials: null` removes them."""

    repository: str | None = None
    git_url: str | None = None
    ref: str | None = None
    dockerfile: str | None = None
    build_dir: str | None = None
    tag_template: str | None = None
    build_args: dict[str, str] | None = None
    credentials: GitCredentialsIn | None = None


class BuildRuleOut(BaseModel):
    """A rule as its owner sees it: never its credentials, but its webhook."""

    id: str
    repository: str
    git_url: str
    ref: str
    dockerfile: str
    build_dir: str
    tag_template: str | None
    build_args: dict[str, str]
    has_credentials: bool
    webhook_url: str
    webhook_secret: str
    created_at: datetime
    updated_at: datetime


class BuildRun(BaseModel):
    """A manual run; `ref` builds another branch or tag than the rule's."""

    ref: str | None = None


class BuildOut(BaseModel):
    """One build and how it went."""

    id: str
    rule_id: str
    trigger: str
    state: str
    ref: str | None
    resolved_ref: str | None
    commit: str | None
    image: str | None
    image_digest: str | None
    reason: str | None
    worker_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None


class LogLineOut(BaseModel):
    """One line a build printed."""

    id: int
    at: datetime
    line: str


class BuildLog(BaseModel):
    """Lines of a build's log; ask again with `after=next_after` for more."""

    build_id: str
    state: str
    lines: list[LogLineOut]
    next_after: int


class WebhookResult(BaseModel):
    """What a webhook started: a build, or nothing and why."""

    build_id: str | None
    detail: str
