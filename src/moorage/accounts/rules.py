"""Pure rules for account and namespace names and passwords."""

from __future__ import annotations

import re

from moorage.errors import FieldInvalidError

USER_NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# A namespace is the first component of repository names, so it follows that grammar too.
NAMESPACE_PATTERN = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
NAMESPACE_MIN, NAMESPACE_MAX = 2, 30
PASSWORD_MIN, PASSWORD_MAX = 8, 256
TOKEN_NAME_MAX = 64
TOKEN_ACTION_SETS = {"pull": frozenset({"pull"}), "pull,push": frozenset({"pull", "push"})}


def validate_user_name(name: str) -> str:
    """An account name: 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit."""
    if USER_NAME_PATTERN.fullmatch(name) is None:
        raise FieldInvalidError(
            "name",
            "account names are 1 to 64 lower-case letters, digits, '.', '_' or '-',"
            " starting with a letter or digit",
        )
    return name


def validate_namespace_name(name: str, field: str = "name") -> str:
    """A namespace name: 2 to 30 characters of the repository name grammar."""
    if not NAMESPACE_MIN <= len(name) <= NAMESPACE_MAX:
        raise FieldInvalidError(
            field,
            f"namespace names are {NAMESPACE_MIN} to {NAMESPACE_MAX} characters; "
            f"{name[:40]!r} has {len(name)}",
        )
    if NAMESPACE_PATTERN.fullmatch(name) is None:
        raise FieldInvalidError(
            field,
            "namespace names use lower-case letters and digits, separated by single '.',"
            " one or two '_', or '-'; they start and end with a letter or digit",
        )
    return name


def validate_password(password: str, field: str = "password") -> str:
    """A password long enough to resist guessing."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise FieldInvalidError(
            field, f"passwords are {PASSWORD_MIN} to {PASSWORD_MAX} characters long"
        )
    return password


def parse_token_actions(actions: str) -> frozenset[str]:
    """The actions an access token may grant: `pull` or `pull,push`."""
    normalized = ",".join(sorted(part.strip() for part in actions.split(",") if part.strip()))
    allowed = TOKEN_ACTION_SETS.get(normalized)
    if allowed is None:
        raise FieldInvalidError("scope", "an access token's scope is 'pull' or 'pull,push'")
    return allowed


def validate_token_name(name: str) -> str:
    """A label for an access token: 1 to 64 printable characters."""
    if not 1 <= len(name) <= TOKEN_NAME_MAX or not name.isprintable():
        raise FieldInvalidError("name", "token names are 1 to 64 printable characters")
    return name
