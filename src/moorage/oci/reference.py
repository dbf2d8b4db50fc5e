"""Repository names, tags and the `<reference>` path part (a tag or a digest) of the OCI spec."""

from __future__ import annotations

import re
from typing import Final

from moorage.errors import NameInvalidError, ReferenceInvalidError
from moorage.oci.digest import Digest
from moorage.oci.quoting import shown

REPOSITORY_NAME_MAX: Final = 255
"""The longest repository name accepted, in characters."""

_NAME_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPOSITORY_NAME_PATTERN: Final = re.compile(rf"{_NAME_COMPONENT}(?:/{_NAME_COMPONENT})*")
"""The OCI grammar of a repository name; use with `fullmatch`."""
_COMPONENT_PATTERN = re.compile(_NAME_COMPONENT)

TAG_MAX: Final = 128
"""The longest tag accepted, in characters."""
TAG_PATTERN: Final = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
"""The OCI grammar of a tag; use with `fullmatch`."""

_COMPONENT_RULE = (
    "lower-case letters and digits, separated by '.', '_', '__' or a run of '-',"
    " starting and ending with a letter or digit"
)


def _name_fault(name: str) -> str:
    """Say which rule an invalid repository name breaks."""
    if not name:
        return "it is empty"
    for position, component in enumerate(name.split("/"), start=1):
        if not component:
            return f"path component {position} is empty (leading, trailing or doubled '/')"
        if _COMPONENT_PATTERN.fullmatch(component) is None:
            return f"path component {shown(component)} must be {_COMPONENT_RULE}"
    return f"it must be path components of {_COMPONENT_RULE}, joined by '/'"


def validate_repository_name(name: str) -> str:
    """Return `name` if it is a valid repository name, else raise NameInvalidError."""
    if len(name) > REPOSITORY_NAME_MAX:
        raise NameInvalidError(
            f"repository name {shown(name)} is {len(name)} characters;"
            f" the limit is {REPOSITORY_NAME_MAX}"
        )
    if REPOSITORY_NAME_PATTERN.fullmatch(name) is None:
        raise NameInvalidError(f"repository name {shown(name)} is invalid: {_name_fault(name)}")
    return name


def validate_tag(tag: str) -> str:
    """Return `tag` if it is a valid tag, else raise ReferenceInvalidError."""
    if len(tag) > TAG_MAX:
        raise ReferenceInvalidError(
            f"tag {shown(tag)} is {len(tag)} characters; the limit is {TAG_MAX}"
        )
    if TAG_PATTERN.fullmatch(tag) is None:
        raise ReferenceInvalidError(
            f"tag {shown(tag)} is invalid: it must start with a letter, digit or '_'"
            " and continue with letters, digits, '.', '_' or '-'"
        )
    return tag


def parse_reference(text: str) -> str | Digest:
    """Return the digest that `text` names if it contains ':', else `text` as a valid tag."""
    if ":" in text:
        return Digest.parse(text)
    return validate_tag(text)
