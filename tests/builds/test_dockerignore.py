"""`.dockerignore` patterns, as docker reads them."""

from __future__ import annotations

import pytest

from moorage.builds.dockerignore import is_excluded, parse_dockerignore


def excluded(text: str, path: str) -> bool:
    return is_excluded(parse_dockerignore(text), path)


@pytest.mark.parametrize(
    ("patterns", "path", "expected"),
    [
        ("secret.txt", "secret.txt", True),
        ("secret.txt", "sub/secret.txt", False),
        ("/secret.txt", "secret.txt", True),
        ("*/secret.txt", "sub/secret.txt", True),
        ("**/secret.txt", "a/b/secret.txt", True),
        ("**/secret.txt", "secret.txt", True),
        ("build", "build/out/app.bin", True),
        ("*.log", "debug.log", True),
        ("*.log", "logs/debug.log", False),
        ("node_modules\n!node_modules/keep.js", "node_modules/keep.js", False),
        ("node_modules\n!node_modules/keep.js", "node_modules/other.js", True),
        ("*.md\n!README.md", "README.md", False),
        ("!README.md\n*.md", "README.md", True),
        ("# comment\n\n  data?  ", "data1", True),
        ("[a-c].txt", "b.txt", True),
        ("[!a-c].txt", "b.txt", False),
        ("docs/**", "docs/a/b.md", True),
        ("./tmp", "tmp/x", True),
    ],
)
def test_patterns(patterns: str, path: str, expected: bool) -> None:
    assert excluded(patterns, path) is expected
