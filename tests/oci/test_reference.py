"""Tests of moorage.oci.reference."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moorage.errors import DigestInvalidError, NameInvalidError, ReferenceInvalidError
from moorage.oci.digest import Digest, digest_bytes
from moorage.oci.reference import (
    REPOSITORY_NAME_MAX,
    REPOSITORY_NAME_PATTERN,
    TAG_PATTERN,
    parse_reference,
    validate_repository_name,
    validate_tag,
)


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "library/ubuntu",
        "my-org/my--app/x_y/a__b/c.d",
        "0/1/2",
        "a---b",
        "team/project/sub/deep/image",
    ],
)
def test_valid_repository_names_are_returned(name: str) -> None:
    assert validate_repository_name(name) == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "it is empty"),
        ("Library/ubuntu", "path component 'Library' must be lower-case"),
        ("/ubuntu", "path component 1 is empty"),
        ("ubuntu/", "path component 2 is empty"),
        ("a//b", "path component 2 is empty"),
        ("a/-b", "path component '-b'"),
        ("a_", "path component 'a_'"),
        ("a___b", "path component 'a___b'"),
        ("a..b", "path component 'a..b'"),
        ("a._b", "path component 'a._b'"),
        ("caf\u00e9", "path component 'caf\u00e9'"),
        ("a b", "path component 'a b'"),
        ("a\n", "path component 'a\\n'"),
    ],
)
def test_invalid_repository_names_say_which_rule(name: str, fragment: str) -> None:
    with pytest.raises(NameInvalidError) as caught:
        validate_repository_name(name)

    assert caught.value.message.startswith(f"repository name {name!r} is invalid")
    assert fragment in caught.value.message


def test_repository_name_at_the_length_limit_is_accepted() -> None:
    name = "/".join(["a" * 127, "b" * 127])

    assert len(name) == REPOSITORY_NAME_MAX
    assert validate_repository_name(name) == name


def test_repository_name_past_the_length_limit_is_refused() -> None:
    name = "a" * (REPOSITORY_NAME_MAX + 1)

    with pytest.raises(NameInvalidError, match="is 256 characters; the limit is 255"):
        validate_repository_name(name)


_component = st.from_regex(r"[a-z0-9]{1,4}(?:(?:\.|_|__|-{1,3})[a-z0-9]{1,4}){0,2}", fullmatch=True)


@given(components=st.lists(_component, min_size=1, max_size=5))
def test_names_built_from_the_grammar_are_valid(components: list[str]) -> None:
    name = "/".join(components)

    assert validate_repository_name(name) == name


@given(name=st.text(alphabet="ab1._-/A ", max_size=40))
def test_validate_repository_name_agrees_with_the_pattern(name: str) -> None:
    matches = REPOSITORY_NAME_PATTERN.fullmatch(name) is not None
    try:
        validate_repository_name(name)
    except NameInvalidError:
        assert not matches
    else:
        assert matches


@pytest.mark.parametrize("tag", ["latest", "v1.2.3", "_hidden", "0", "A-b_c.D", "x" * 128])
def test_valid_tags_are_returned(tag: str) -> None:
    assert validate_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", ".hidden", "-x", "a/b", "a:b", "a b", "caf\u00e9", "a\n"])
def test_invalid_tags_are_refused(tag: str) -> None:
    with pytest.raises(ReferenceInvalidError, match="must start with a letter, digit or '_'"):
        validate_tag(tag)


def test_tag_past_the_length_limit_is_refused() -> None:
    with pytest.raises(ReferenceInvalidError, match="is 129 characters; the limit is 128"):
        validate_tag("x" * 129)


@given(tag=st.text(max_size=140))
def test_validate_tag_agrees_with_the_pattern(tag: str) -> None:
    matches = TAG_PATTERN.fullmatch(tag) is not None
    try:
        validate_tag(tag)
    except ReferenceInvalidError:
        assert not matches
    else:
        assert matches


def test_parse_reference_returns_a_tag() -> None:
    assert parse_reference("v1.0") == "v1.0"


def test_parse_reference_returns_a_digest() -> None:
    digest = digest_bytes(b"manifest")

    reference = parse_reference(str(digest))

    assert isinstance(reference, Digest)
    assert reference == digest


def test_parse_reference_refuses_a_bad_digest() -> None:
    with pytest.raises(DigestInvalidError, match="must be 64 hex characters"):
        parse_reference("sha256:abc")


def test_parse_reference_refuses_a_bad_tag() -> None:
    with pytest.raises(ReferenceInvalidError):
        parse_reference("-bad")
