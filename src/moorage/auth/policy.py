"""Who may do what: owners act on their namespaces, nobody else does, tokens narrow it."""

from __future__ import annotations

from dataclasses import dataclass

from moorage.accounts.namespaces import NamespaceService
from moorage.auth.access import DELETE, PULL, PUSH, Scope

OWNER_ACTIONS = frozenset({PULL, PUSH, DELETE})


@dataclass(frozen=True, slots=True)
class Grantee:
    """An authenticated caller and the limits of the credential they used."""

    user_id: int
    user_name: str
    generation: int
    # An access token's allowed actions and namespace; None for the registry password.
    actions_limit: frozenset[str] | None = None
    namespace_limit: str | None = None
    token_id: str | None = None


class AccessPolicy:
    """Grants the part of a requested scope that the caller may have."""

    def __init__(self, namespaces: NamespaceService) -> None:
        self._namespaces = namespaces

    async def grant(self, grantee: Grantee, scope: Scope) -> frozenset[str]:
        """The requested actions the caller may take; empty when none (never an error)."""
        if scope.resource_type == "registry" and scope.name == "catalog":
            return scope.actions & {"*"}
        if scope.resource_type != "repository" or "/" not in scope.name:
            return frozenset()
        namespace = scope.name.split("/", 1)[0]
        if grantee.namespace_limit is not None and namespace != grantee.namespace_limit:
            return frozenset()
        if await self._namespaces.owner_id(namespace) != grantee.user_id:
            return frozenset()
        allowed = OWNER_ACTIONS
        if grantee.actions_limit is not None:
            allowed = allowed & grantee.actions_limit
        requested = allowed if "*" in scope.actions else scope.actions
        return requested & allowed
