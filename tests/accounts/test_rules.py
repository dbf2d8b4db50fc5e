"""Rules for account and namespace names, passwords and access tokens: pure functions."""

from __future__ import annotations

import pytest

from moorage.accounts.rules import (
    parse_token_actions,
    validate_namespace_name,
    validate_password,
    validate_token_name,
    validate_user_name,
)
from moorage.errors import FieldInvalidError


@pytest.mark.parametrize(
    "name", ["ab", "a1", "team", "my-team", "my--team", "my.team", "my_team", "my__team", "a" * 30]
)
def test_valid_namespace_names(name: str) -> None:
    assert validate_namespace_name(name) == name


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "2 to 30 characters; '' has 0"),
        ("a", "2 to 30 characters; 'a' has 1"),
        ("a" * 31, "has 31"),
        ("Team", "lower-case letters and digits"),
        ("-team", "start and end with a letter or digit"),
        ("team-", "start and end with a letter or digit"),
        ("my..team", "single '.'"),
        ("my___team", "one or two '_'"),
        ("my/team", "lower-case letters and digits"),
        ("my team", "lower-case letters and digits"),
        ("t\u00e9am", "lower-case letters and digits"),
    ],
)
def test_invalid_namespace_names_say_why(name: str, says: str) -> None:
    with pytest.raises(FieldInvalidError) as refused:
        validate_namespace_name(name)

    assert refused.value.field == "name"
    assert says in refused.value.message


def test_a_very_long_namespace_name_is_not_echoed_whole() -> None:
    with pytest.raises(FieldInvalidError) as refused:
        validate_namespace_name("x" * 10_000)

    assert len(refused.value.message) < 200


@pytest.mark.parametrize("name", ["a", "alice", "alice.smith", "a_b-c", "0day", "a" * 64])
def test_valid_user_names(name: str) -> None:
    assert validate_user_name(name) == name


@pytest.mark.parametrize("name", ["", "Alice", "-alice", ".alice", "a" * 65, "al ice", "al/ice"])
def test_invalid_user_names(name: str) -> None:
    with pytest.raises(FieldInvalidError, match="account names are 1 to 64") as refused:
        validate_user_name(name)

    assert refused.value.field == "name"


@pytest.mark.parametrize(
    ("password", "valid"),
    [("x" * 7, False), ("x" * 8, True), ("x" * 256, True), ("x" * 257, False)],
)
def test_password_length(password: str, valid: bool) -> None:
    if valid:
        assert validate_password(password) == password
        return
    with pytest.raises(FieldInvalidError, match="8 to 256 characters") as refused:
        validate_password(password, field="new_password")
    assert refused.value.field == "new_password"


@pytest.mark.parametrize(
    ("actions", "expected"),
    [("pull", {"pull"}), ("pull,push", {"pull", "push"}), ("push, pull", {"pull", "push"})],
)
def test_token_actions(actions: str, expected: set[str]) -> None:
    assert parse_token_actions(actions) == expected


@pytest.mark.parametrize("actions", ["", "push", "delete", "pull,delete", "*", "pull,push,delete"])
def test_tokens_grant_only_pull_or_pull_and_push(actions: str) -> None:
    with pytest.raises(FieldInvalidError) as refused:
        parse_token_actions(actions)

    assert refused.value.field == "scope"


@pytest.mark.parametrize(
    ("name", "valid"),
    [("ci", True), ("x" * 64, True), ("", False), ("x" * 65, False), ("tab\there", False)],
)
def test_token_names(name: str, valid: bool) -> None:
    if valid:
        assert validate_token_name(name) == name
        return
    with pytest.raises(FieldInvalidError, match="1 to 64 printable"):
        validate_token_name(name)
