"""The scope grammar of the Docker token auth spec, and the WWW-Authenticate challenge."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from moorage.auth.access import Scope
from moorage.errors import InvalidInputError

_RESOURCE_TYPE = re.compile(r"([a-z0-9]+)(?:\([a-z0-9]+\))?")
_ACTION = re.compile(r"[a-z*]*")


def parse_scope(text: str) -> Scope:
    """`type:name:action,action`; the name may hold ':' (a registry host with a port)."""
    resource_type, first, rest = text.partition(":")
    name, last, actions = rest.rpartition(":")
    type_match = _RESOURCE_TYPE.fullmatch(resource_type)
    if not first or not last or not name or type_match is None:
        raise InvalidInputError(f"scope {text[:100]!r} is not TYPE:NAME:ACTIONS")
    action_set = frozenset(action for action in actions.split(",") if action)
    if not all(_ACTION.fullmatch(action) for action in action_set):
        raise InvalidInputError(f"scope {text[:100]!r} has a malformed action")
    return Scope(type_match.group(1), name, action_set)


def parse_scopes(values: Iterable[str]) -> list[Scope]:
    """Every scope in repeated `scope` parameters, each of which may hold several."""
    return [parse_scope(part) for value in values for part in value.split() if part]


def merge_scopes(scopes: Sequence[Scope]) -> list[Scope]:
    """One scope per resource, its actions united."""
    merged: dict[tuple[str, str], set[str]] = {}
    for scope in scopes:
        merged.setdefault((scope.resource_type, scope.name), set()).update(scope.actions)
    return [Scope(kind, name, frozenset(actions)) for (kind, name), actions in merged.items()]


def challenge(realm: str, service: str, scopes: Sequence[Scope], error: str | None = None) -> str:
    """A Bearer challenge naming where to get a token and for which scopes."""
    parts = [f'realm="{realm}"', f'service="{service}"']
    if scopes:
        parts.append(f'scope="{" ".join(str(scope) for scope in scopes)}"')
    if error:
        parts.append(f'error="{error}"')
    return "Bearer " + ",".join(parts)
