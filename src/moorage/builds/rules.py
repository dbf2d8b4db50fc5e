"""What a build rule may say: git URLs, paths in the repository, refs, tag templates, arguments.

Pure: no I/O. Every check raises `FieldInvalidError` naming the field, so the API and the CLI
answer with the same sentence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from posixpath import normpath
from typing import Final, Literal
from urllib.parse import urlsplit

from moorage.errors import FieldInvalidError
from moorage.oci.reference import TAG_MAX, TAG_PATTERN

DEFAULT_DOCKERFILE: Final = "Dockerfile"
DEFAULT_BUILD_DIR: Final = "./"
GIT_URL_MAX: Final = 2048
PATH_MAX: Final = 1024
REF_MAX: Final = 255
TEMPLATE_MAX: Final = 255
BUILD_ARGS_MAX: Final = 100
BUILD_ARG_VALUE_MAX: Final = 4096
TEMPLATE_FIELDS: Final = ("branch", "tag", "commit", "short_commit")
SHORT_COMMIT_LENGTH: Final = 12
BRANCH_PREFIX: Final = "refs/heads/"
TAG_PREFIX: Final = "refs/tags/"

_NETWORK_SCHEMES = ("https", "http", "ssh", "git")
# `user@host:path`, git's short form of an ssh URL.
_SCP_LIKE = re.compile(r"(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9.-]+:(?!//|:)[^\s]+")
_BUILD_ARG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
# Characters git refuses in ref names, besides control characters and space.
_REF_FORBIDDEN = set("~^:\\")
_NOT_TAG_CHARACTER = re.compile(r"[^A-Za-z0-9._-]+")

RefKind = Literal["branch", "tag"]


@dataclass(frozen=True, slots=True)
class ResolvedRef:
    """A branch or a tag of the repository, by its short name."""

    kind: RefKind
    name: str

    @property
    def full_name(self) -> str:
        """`refs/heads/NAME` or `refs/tags/NAME`."""
        return (BRANCH_PREFIX if self.kind == "branch" else TAG_PREFIX) + self.name

    @classmethod
    def parse(cls, full_name: str) -> ResolvedRef | None:
        """The branch or tag `refs/heads/...` or `refs/tags/...` names; None for other refs."""
        if full_name.startswith(BRANCH_PREFIX):
            return cls("branch", full_name.removeprefix(BRANCH_PREFIX))
        if full_name.startswith(TAG_PREFIX):
            return cls("tag", full_name.removeprefix(TAG_PREFIX))
        return None


def _has_control(text: str) -> bool:
    return any(ord(character) < 32 or ord(character) == 127 for character in text)


def validate_git_url(url: str, allow_file: bool) -> str:
    """`url` if builds may clone it: https, http, ssh, git, or file when the operator allows."""
    url = url.strip()
    if not url or len(url) > GIT_URL_MAX or _has_control(url) or " " in url:
        raise FieldInvalidError(
            "git_url", f"git_url must be a URL of at most {GIT_URL_MAX} characters, without spaces"
        )
    if url.startswith("-"):
        raise FieldInvalidError("git_url", "git_url must not start with '-'")
    if "://" not in url:
        if _SCP_LIKE.fullmatch(url) and not url.startswith(("/", ".")):
            return url
        raise FieldInvalidError(
            "git_url",
            "git_url must be an https://, http://, ssh:// or git:// URL, or user@host:path",
        )
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    allowed = (*_NETWORK_SCHEMES, "file") if allow_file else _NETWORK_SCHEMES
    if scheme not in allowed:
        if scheme == "file":
            raise FieldInvalidError(
                "git_url",
                "file:// URLs read the build host's disk; the operator must turn on"
                " builds.allow_file_urls to allow them",
            )
        raise FieldInvalidError(
            "git_url", f"git_url scheme {scheme!r} is not one of {', '.join(allowed)}"
        )
    if parts.password is not None:
        raise FieldInvalidError(
            "git_url", "put the password or token in the rule's credentials, not in git_url"
        )
    if scheme != "file" and not parts.hostname:
        raise FieldInvalidError("git_url", "git_url has no host")
    return url


def git_url_origin(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URL, the scope its credentials are sent to."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    netloc = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme.lower()}://{netloc}"


def check_relative_path(field: str, path: str, *, directory: bool) -> str:
    """`path` normalized, if it stays inside the repository: relative, without '..'."""
    if not path or len(path) > PATH_MAX or _has_control(path) or "\\" in path:
        raise FieldInvalidError(
            field, f"{field} must be a path of at most {PATH_MAX} characters, using '/'"
        )
    if path.startswith("/"):
        raise FieldInvalidError(
            field, f"{field} {path!r} is absolute; give it relative to the repository root"
        )
    if ".." in path.split("/"):
        raise FieldInvalidError(
            field, f"{field} {path!r} contains '..'; it must stay inside the repository"
        )
    normalized = normpath(path)
    if not directory and (normalized == "." or path.endswith("/")):
        raise FieldInvalidError(field, f"{field} {path!r} must name a file, not a directory")
    return normalized


def validate_ref_pattern(ref: str) -> str:
    """A branch or tag name, or a pattern (`v*`), optionally after refs/heads/ or refs/tags/."""
    ref = ref.strip()
    short = ref.removeprefix(BRANCH_PREFIX).removeprefix(TAG_PREFIX)
    problem = None
    if not short or len(ref) > REF_MAX:
        problem = f"must be a branch or tag name of 1 to {REF_MAX} characters"
    elif _has_control(ref) or " " in ref or _REF_FORBIDDEN & set(ref):
        problem = "must not hold spaces, control characters or any of ~ ^ : \\"
    elif ref.startswith(("-", "/")) or ref.endswith(("/", ".", ".lock")) or ".." in ref:
        problem = "is not a valid git ref name"
    elif ref.startswith("refs/") and short == ref:
        problem = "may only start with refs/heads/ or refs/tags/"
    if problem:
        raise FieldInvalidError("ref", f"ref {ref[:80]!r} {problem}")
    return ref


def is_pattern(ref: str) -> bool:
    """Whether `ref` is a pattern rather than one branch or tag name."""
    return any(character in ref for character in "*?[")


def ref_matches(pattern: str, ref: ResolvedRef) -> bool:
    """Whether a rule's ref (name or pattern, maybe qualified) covers the branch or tag `ref`."""
    if pattern.startswith(BRANCH_PREFIX):
        return (
            ref.kind == "branch"
            and _glob(pattern.removeprefix(BRANCH_PREFIX)).fullmatch(ref.name) is not None
        )
    if pattern.startswith(TAG_PREFIX):
        return (
            ref.kind == "tag"
            and _glob(pattern.removeprefix(TAG_PREFIX)).fullmatch(ref.name) is not None
        )
    return _glob(pattern).fullmatch(ref.name) is not None


@lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    """A glob as a regex: `*` within one path part, `**` across parts, `?`, `[...]`."""
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        character = pattern[index]
        if pattern.startswith("**", index):
            parts.append(".*")
            index += 2
            continue
        if character == "*":
            parts.append("[^/]*")
        elif character == "?":
            parts.append("[^/]")
        elif character == "[" and "]" in pattern[index + 2 :]:
            end = pattern.index("]", index + 2)
            body = pattern[index + 1 : end]
            negate = body.startswith(("!", "^"))
            body = body[1:] if negate else body
            parts.append("[" + ("^" if negate else "") + body.replace("\\", "\\\\") + "]")
            index = end
        else:
            parts.append(re.escape(character))
        index += 1
    return re.compile("".join(parts))


def validate_tag_template(template: str | None) -> str | None:
    """A tag template over {branch}, {tag}, {commit}, {short_commit}; None for the default."""
    if template is None or not template.strip():
        return None
    template = template.strip()
    if len(template) > TEMPLATE_MAX or _has_control(template):
        raise FieldInvalidError(
            "tag_template", f"tag_template must be at most {TEMPLATE_MAX} characters"
        )
    for name in _PLACEHOLDER.findall(template):
        if name not in TEMPLATE_FIELDS:
            known = ", ".join("{" + field + "}" for field in TEMPLATE_FIELDS)
            raise FieldInvalidError(
                "tag_template", f"tag_template names {{{name}}}; it may use only {known}"
            )
    literal = _PLACEHOLDER.sub("", template)
    if "{" in literal or "}" in literal:
        raise FieldInvalidError("tag_template", "tag_template has an unmatched brace")
    if _NOT_TAG_CHARACTER.search(literal):
        raise FieldInvalidError(
            "tag_template",
            "outside its placeholders, tag_template may hold only letters, digits, '.', '_', '-'",
        )
    return template


def sanitize_tag(text: str) -> str:
    """`text` as a valid tag: other characters (such as '/') become '-'; '' if nothing is left."""
    tag = _NOT_TAG_CHARACTER.sub("-", text).lstrip(".-")[:TAG_MAX]
    return tag if TAG_PATTERN.fullmatch(tag) else ""


def render_tag(template: str | None, ref: ResolvedRef, commit: str) -> str:
    """The tag a build of `ref` at `commit` pushes; '' when the template gives nothing valid."""
    if template is None:
        return sanitize_tag(ref.name)
    values = {
        "branch": ref.name if ref.kind == "branch" else "",
        "tag": ref.name if ref.kind == "tag" else "",
        "commit": commit,
        "short_commit": commit[:SHORT_COMMIT_LENGTH],
    }
    return sanitize_tag(_PLACEHOLDER.sub(lambda match: values[match.group(1)], template))


def validate_build_args(build_args: dict[str, str]) -> dict[str, str]:
    """Build arguments, if their names are identifiers and their values are plain text."""
    if len(build_args) > BUILD_ARGS_MAX:
        raise FieldInvalidError("build_args", f"at most {BUILD_ARGS_MAX} build arguments")
    for name, value in build_args.items():
        if not _BUILD_ARG_NAME.fullmatch(name):
            raise FieldInvalidError(
                "build_args", f"build argument name {name[:80]!r} is not an identifier"
            )
        if len(value) > BUILD_ARG_VALUE_MAX or "\x00" in value:
            raise FieldInvalidError(
                "build_args",
                f"build argument {name} must be text of at most {BUILD_ARG_VALUE_MAX} characters",
            )
    return dict(build_args)


def parse_build_arg(text: str) -> tuple[str, str]:
    """`KEY=VALUE` as a pair, as the command line gives build arguments."""
    name, equals, value = text.partition("=")
    if not equals:
        raise FieldInvalidError("build_args", f"build argument {text[:80]!r} is not KEY=VALUE")
    return name, value
