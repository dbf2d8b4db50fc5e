"""`.dockerignore` patterns as docker reads them: anchored at the context root, last match wins.

Pure: no I/O. A pattern also excludes everything below a directory it matches; `!` takes a
path back in; `**` spans any number of directories; `*` and `?` stay within one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from posixpath import normpath


@dataclass(frozen=True, slots=True)
class IgnorePattern:
    """One line of a `.dockerignore`."""

    text: str
    exception: bool
    regex: re.Pattern[str]


def _translate(pattern: str) -> re.Pattern[str]:
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        character = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):
                parts.append("(?:.*/)?")
                index += 1
            else:
                parts.append(".*")
            continue
        if character == "*":
            parts.append("[^/]*")
        elif character == "?":
            parts.append("[^/]")
        elif character == "\\" and index + 1 < len(pattern):
            index += 1
            parts.append(re.escape(pattern[index]))
        elif character == "[" and "]" in pattern[index + 1 :]:
            end = pattern.index("]", index + 1)
            body = pattern[index + 1 : end]
            if body.startswith("^"):
                body = "!" + body[1:]
            negate = body.startswith("!")
            body = re.sub(r"([\\\]\[])", r"\\\1", body[1:] if negate else body)
            parts.append("[" + ("^" if negate else "") + body + "]")
            index = end
        else:
            parts.append(re.escape(character))
        index += 1
    return re.compile("".join(parts))


def parse_dockerignore(text: str) -> list[IgnorePattern]:
    """The patterns of a `.dockerignore`, in order; comments and blank lines dropped."""
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        if exception:
            line = line[1:].strip()
        if not line:
            continue
        cleaned = normpath(line).lstrip("/") or "."
        patterns.append(IgnorePattern(cleaned, exception, _translate(cleaned)))
    return patterns


def is_excluded(patterns: list[IgnorePattern], path: str) -> bool:
    """Whether `path` (relative, '/'-separated) is left out of the context."""
    parts = path.split("/")
    # A pattern that matches a directory covers everything below it.
    candidates = ["/".join(parts[:length]) for length in range(1, len(parts) + 1)]
    excluded = False
    for pattern in patterns:
        if any(pattern.regex.fullmatch(candidate) for candidate in candidates):
            excluded = not pattern.exception
    return excluded
