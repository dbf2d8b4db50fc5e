"""The scope grammar of the token auth spec and the WWW-Authenticate challenge: pure functions."""

from __future__ import annotations

import pytest

from moorage.auth.access import Scope
from moorage.auth.scopes import challenge, merge_scopes, parse_scope, parse_scopes
from moorage.errors import InvalidInputError


def scope(kind: str, name: str, *actions: str) -> Scope:
    return Scope(kind, name, frozenset(actions))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("repository:alice/web:pull", scope("repository", "alice/web", "pull")),
        ("repository:alice/web:pull,push", scope("repository", "alice/web", "pull", "push")),
        ("repository:a/b/c:delete", scope("repository", "a/b/c", "delete")),
        ("registry:catalog:*", scope("registry", "catalog", "*")),
        # A name may start with a registry host and port: only the first and last ':' split.
        (
            "repository:localhost:5000/alice/web:pull",
            scope("repository", "localhost:5000/alice/web", "pull"),
        ),
        # The deprecated resource class is accepted and ignored.
        ("repository(plugin):alice/web:pull", scope("repository", "alice/web", "pull")),
        # Empty actions and doubled commas ask for nothing more.
        ("repository:alice/web:", scope("repository", "alice/web")),
        ("repository:alice/web:pull,,push,", scope("repository", "alice/web", "pull", "push")),
    ],
)
def test_parse_scope(text: str, expected: Scope) -> None:
    assert parse_scope(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "garbage",
        "repository:alice/web",
        ":alice/web:pull",
        "repository::pull",
        "Repository:alice/web:pull",
        "repository:alice/web:PULL",
        "repository:alice/web:pull;push",
        "repo-sitory:alice/web:pull",
    ],
)
def test_malformed_scopes_are_refused_as_invalid_input(text: str) -> None:
    with pytest.raises(InvalidInputError, match="scope"):
        parse_scope(text)


def test_scopes_come_from_repeated_parameters_each_holding_several() -> None:
    values = [
        "repository:alice/web:pull repository:alice/api:pull,push",
        "registry:catalog:*",
        "",
        "  repository:alice/db:delete  ",
    ]

    assert parse_scopes(values) == [
        scope("repository", "alice/web", "pull"),
        scope("repository", "alice/api", "pull", "push"),
        scope("registry", "catalog", "*"),
        scope("repository", "alice/db", "delete"),
    ]


def test_merge_unites_the_actions_of_one_resource() -> None:
    merged = merge_scopes(
        [
            scope("repository", "alice/web", "pull"),
            scope("repository", "alice/api", "pull"),
            scope("repository", "alice/web", "push"),
        ]
    )

    assert merged == [
        scope("repository", "alice/web", "pull", "push"),
        scope("repository", "alice/api", "pull"),
    ]


def test_scope_prints_its_actions_sorted() -> None:
    assert str(scope("repository", "a/b", "push", "pull")) == "repository:a/b:pull,push"


def test_challenge_names_realm_service_scopes_and_error() -> None:
    scopes = [scope("repository", "a/b", "pull", "push"), scope("repository", "c/d", "pull")]

    assert challenge("https://r.example/auth/token", "moorage", scopes, "insufficient_scope") == (
        'Bearer realm="https://r.example/auth/token",service="moorage",'
        'scope="repository:a/b:pull,push repository:c/d:pull",error="insufficient_scope"'
    )
    assert challenge("http://r/auth/token", "moorage", []) == (
        'Bearer realm="http://r/auth/token",service="moorage"'
    )
