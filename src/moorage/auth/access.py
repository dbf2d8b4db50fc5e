"""Scopes that routes declare, and the one place that decides whether a request may proceed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request

PULL = "pull"
PUSH = "push"
DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Scope:
    """Access to one resource: `repository:alice/web:pull,push` or `registry:catalog:*`."""

    resource_type: str
    name: str
    actions: frozenset[str]

    def __str__(self) -> str:
        return f"{self.resource_type}:{self.name}:{','.join(sorted(self.actions))}"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as far as authentication established it; `name` is None when anonymous."""

    name: str | None
    user_id: int | None = None
    # The one namespace an access token is limited to, if it is.
    namespace_limit: str | None = None


ANONYMOUS = Principal(None)


class AccessController(Protocol):
    """Decides, once per request, whether the caller holds every scope the route needs."""

    async def authorize(self, request: Request, scopes: Sequence[Scope]) -> Principal:
        """The caller, if allowed; raises `UnauthorizedError` or `DeniedError` if not."""

    async def permits(self, request: Request, scope: Scope) -> bool:
        """Whether the caller already authorized for this request also holds `scope`."""


class AllowEverything:
    """Lets every request through: the registry core before accounts exist."""

    async def authorize(self, request: Request, scopes: Sequence[Scope]) -> Principal:
        """Everyone is allowed everything."""
        return ANONYMOUS

    async def permits(self, request: Request, scope: Scope) -> bool:
        """Everyone is allowed everything."""
        return True
