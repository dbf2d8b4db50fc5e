"""The pure rules of build rules: URLs, paths, refs, tag templates, build arguments."""

from __future__ import annotations

import pytest

from moorage.builds.rules import (
    ResolvedRef,
    check_relative_path,
    git_url_origin,
    is_pattern,
    parse_build_arg,
    ref_matches,
    render_tag,
    sanitize_tag,
    validate_build_args,
    validate_git_url,
    validate_ref_pattern,
    validate_tag_template,
)
from moorage.errors import FieldInvalidError

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/team/app.git",
        "http://127.0.0.1:8080/app.git",
        "ssh://git@example.com/team/app.git",
        "git://example.com/app.git",
        "git@example.com:team/app.git",
        "https://user@example.com/app.git",
    ],
)
def test_network_urls_are_accepted(url: str) -> None:
    assert validate_git_url(url, allow_file=False) == url


def test_file_urls_need_the_operator_setting() -> None:
    with pytest.raises(FieldInvalidError, match=r"builds\.allow_file_urls"):
        validate_git_url("file:///srv/app.git", allow_file=False)
    assert validate_git_url("file:///srv/app.git", allow_file=True) == "file:///srv/app.git"


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ext::sh -c touch% /tmp/pwned", "spaces"),
        ("ext::ssh", "URL"),
        ("/srv/app.git", "URL"),
        ("./app", "URL"),
        ("-uhttps://x", "'-'"),
        ("https://user:secret@example.com/app.git", "credentials"),
        ("ftp://example.com/app.git", "ftp"),
        ("https:///nohost.git", "no host"),
        ("", "URL"),
    ],
)
def test_other_urls_are_refused(url: str, words: str) -> None:
    with pytest.raises(FieldInvalidError, match=words) as refused:
        validate_git_url(url, allow_file=True)
    assert refused.value.field == "git_url"


def test_credentials_are_scoped_to_the_origin() -> None:
    assert git_url_origin("https://git.example.com:8443/a/b.git") == "https://git.example.com:8443"
    assert git_url_origin("http://bob@127.0.0.1:9/x.git") == "http://127.0.0.1:9"
    assert git_url_origin("ssh://git@example.com/x.git") is None


@pytest.mark.parametrize(
    ("path", "directory", "normalized"),
    [
        ("Dockerfile", False, "Dockerfile"),
        ("docker/Dockerfile.prod", False, "docker/Dockerfile.prod"),
        ("./", True, "."),
        ("app/./web/", True, "app/web"),
    ],
)
def test_relative_paths_are_normalized(path: str, directory: bool, normalized: str) -> None:
    assert check_relative_path("dockerfile", path, directory=directory) == normalized


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("/etc/passwd", "absolute"),
        ("../secrets/Dockerfile", "'..'"),
        ("app/../../x", "'..'"),
        ("a\\b", "'/'"),
        ("", "path"),
        ("docker/", "a file"),
    ],
)
def test_paths_that_leave_the_repository_are_refused(path: str, words: str) -> None:
    with pytest.raises(FieldInvalidError, match=words):
        check_relative_path("dockerfile", path, directory=False)


@pytest.mark.parametrize("ref", ["main", "release/1.x", "v*", "refs/tags/v[0-9]*", "feature/**"])
def test_refs_and_patterns_are_accepted(ref: str) -> None:
    assert validate_ref_pattern(ref) == ref


@pytest.mark.parametrize("ref", ["", "a b", "main~1", "-x", "a..b", "refs/remotes/x", "x.lock"])
def test_bad_refs_are_refused(ref: str) -> None:
    with pytest.raises(FieldInvalidError):
        validate_ref_pattern(ref)


def test_patterns_match_branches_and_tags() -> None:
    tag, branch = ResolvedRef("tag", "v1.2"), ResolvedRef("branch", "release/1.2")
    assert is_pattern("v*") and not is_pattern("main")
    assert ref_matches("v*", tag)
    assert ref_matches("refs/tags/v*", tag)
    assert not ref_matches("refs/heads/v*", tag)
    assert ref_matches("release/*", branch)
    assert not ref_matches("*", branch), "* stays within one path part"
    assert ref_matches("**", branch)
    assert ref_matches("v[0-9].[!a]", tag)
    assert not ref_matches("main", ResolvedRef("branch", "maintenance"))


def test_the_default_tag_is_the_ref_name_made_valid() -> None:
    assert render_tag(None, ResolvedRef("branch", "feature/login"), COMMIT) == "feature-login"
    assert render_tag(None, ResolvedRef("tag", "v1.0"), COMMIT) == "v1.0"
    assert sanitize_tag(".hidden/x") == "hidden-x"
    assert sanitize_tag("///") == ""


def test_templates_fill_their_placeholders() -> None:
    tag = ResolvedRef("tag", "v2")
    assert render_tag("{tag}-{short_commit}", tag, COMMIT) == "v2-0123456789ab"
    assert render_tag("{branch}{tag}", tag, COMMIT) == "v2"
    assert render_tag("build-{commit}", ResolvedRef("branch", "main"), COMMIT) == f"build-{COMMIT}"
    assert render_tag("{branch}", tag, COMMIT) == "", "a tag build has no branch"


@pytest.mark.parametrize("template", ["{nope}", "x{tag", "a b{tag}", "{tag}:latest"])
def test_bad_templates_are_refused(template: str) -> None:
    with pytest.raises(FieldInvalidError) as refused:
        validate_tag_template(template)
    assert refused.value.field == "tag_template"


def test_build_arguments() -> None:
    assert validate_build_args({"VERSION": "1", "_X": ""}) == {"VERSION": "1", "_X": ""}
    assert parse_build_arg("A=b=c") == ("A", "b=c")
    with pytest.raises(FieldInvalidError):
        validate_build_args({"1BAD": "x"})
    with pytest.raises(FieldInvalidError):
        parse_build_arg("NOVALUE")
