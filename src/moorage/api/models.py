"""Request and response bodies of the management API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class UserOut(BaseModel):
    """An account as the API shows it: never a password."""

    name: str
    is_admin: bool
    is_activated: bool


class SignUp(BaseModel):
    """A new account's name and account password."""

    name: str
    password: str


class NewUser(SignUp):
    """An account an admin creates."""

    is_admin: bool = False


class PasswordChange(BaseModel):
    """The current account password and the new one."""

    current_password: str
    new_password: str


class NewPassword(BaseModel):
    """A password to set."""

    password: str


class Activation(BaseModel):
    """The registry is active; how to log in to it."""

    account: str
    login_commands: list[str]


class NewToken(BaseModel):
    """An access token to create."""

    name: str
    scope: Literal["pull", "pull,push"] = "pull"
    namespace: str | None = None
    expires_in_days: int | None = Field(default=None, ge=1, le=3650, strict=True)


class TokenOut(BaseModel):
    """An access token as listed."""

    id: str
    name: str
    scope: str
    namespace: str | None
    expires_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None


class CreatedToken(TokenOut):
    """A new token, with its secret: shown this once."""

    secret: str


class NewNamespace(BaseModel):
    """A namespace to create."""

    name: str


class NamespaceOut(BaseModel):
    """A namespace and how much it holds."""

    name: str
    repository_count: int
    created_at: datetime


class NewRepository(BaseModel):
    """A repository to create before its first push: the part after the namespace."""

    name: str


class RepositoryOut(BaseModel):
    """A repository in a listing."""

    name: str
    tag_count: int
    created_at: datetime


class RepositoryPage(BaseModel):
    """A page of repositories; `next_last` continues the listing."""

    repositories: list[RepositoryOut]
    next_last: str | None


class TagOut(BaseModel):
    """A tag, what it points at, and the command to pull it."""

    name: str
    digest: str
    media_type: str
    manifest_size: int
    pushed_at: datetime
    pull_command: str


class TagPage(BaseModel):
    """A page of tags; `next_last` continues the listing."""

    tags: list[TagOut]
    next_last: str | None


# Strict: `true` or "7" for a limit is a mistake to point out, not a number to guess.
LimitValue = Field(default=None, ge=0, le=1_000_000, strict=True)


class LimitsIn(BaseModel):
    """Limits to set or ask for; a missing one stays as it is, a misspelt one is refused."""

    model_config = ConfigDict(extra="forbid")

    repositories: int | None = LimitValue
    tags_per_repository: int | None = LimitValue
    namespaces: int | None = LimitValue

    def wanted(self) -> dict[str, int | None]:
        """Only the limits that were given."""
        return self.model_dump(exclude_unset=True)


class LimitsOut(BaseModel):
    """An account's limits."""

    repositories: int
    tags_per_repository: int
    namespaces: int


class QuotaOut(BaseModel):
    """What an account uses of its limits."""

    account: str
    limits: LimitsOut
    repositories: int
    namespaces: int
    tags_per_repository: dict[str, int]


class NewQuotaRequest(LimitsIn):
    """A request for higher limits, for the caller's own account."""

    reason: str
    account: str | None = None


class QuotaDecision(LimitsIn):
    """An administrator's answer; an approval may grant other numbers than asked."""

    comment: str | None = Field(default=None, max_length=2000)


class QuotaRequestOut(BaseModel):
    """A quota request and its answer."""

    id: int
    account: str
    wanted: dict[str, int | None]
    reason: str
    status: str
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    comment: str | None


class DeletedItemOut(BaseModel):
    """Something deleted that can still be restored."""

    id: str
    kind: str
    repository: str
    tag: str | None
    digest: str | None
    deleted_at: datetime
    deleted_by: str | None
    restorable_until: datetime
