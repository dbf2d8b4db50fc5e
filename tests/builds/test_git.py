"""Git sources against real repositories, over file:// and over HTTP from a loopback server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.builds.gitrepos import commit, git, new_repository, serving

from moorage.builds.failures import BuildFailedError
from moorage.builds.git import Checkout, GitCredentials, GitSource
from moorage.builds.rules import ResolvedRef


def source(
    url: str,
    tmp_path: Path,
    lines: list[str],
    credentials: GitCredentials | None = None,
    allow_file: bool = True,
) -> GitSource:
    return GitSource(url, credentials, allow_file, tmp_path / "home", lines.append)


def resolve_and_checkout(source: GitSource, wanted: str, destination: Path) -> Checkout:
    async def run() -> Checkout:
        ref, _ = await source.resolve(wanted)
        return await source.checkout(ref, destination)

    return asyncio.run(run())


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    """main with two commits, tags v1.9 (annotated) and v1.10, branch feature/x."""
    repo = new_repository(tmp_path / "repo", {"Dockerfile": "FROM scratch\n", "v": "1"})
    git(repo, "tag", "-a", "v1.9", "-m", "v1.9")
    commit(repo, {"v": "2"})
    git(repo, "tag", "v1.10")
    git(repo, "checkout", "-q", "-b", "feature/x")
    commit(repo, {"v": "feature"})
    git(repo, "checkout", "-q", "main")
    return repo


def test_branches_tags_and_patterns_resolve(repository: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    git_source = source(f"file://{repository}", tmp_path, lines)

    main, main_commit = asyncio.run(git_source.resolve("main"))
    tag, tag_commit = asyncio.run(git_source.resolve("v1.9"))
    newest, _ = asyncio.run(git_source.resolve("v*"))
    qualified, _ = asyncio.run(git_source.resolve("refs/heads/feature/*"))

    assert main == ResolvedRef("branch", "main")
    assert main_commit == git(repository, "rev-parse", "main")
    assert tag == ResolvedRef("tag", "v1.9")
    assert tag_commit == git(repository, "rev-parse", "v1.9^{commit}"), "annotated tags peel"
    assert newest == ResolvedRef("tag", "v1.10"), "v1.10 sorts after v1.9"
    assert qualified == ResolvedRef("branch", "feature/x")


def test_checkout_is_shallow_at_the_ref(repository: Path, tmp_path: Path) -> None:
    lines: list[str] = []

    checkout = resolve_and_checkout(
        source(f"file://{repository}", tmp_path, lines), "v1.9", tmp_path / "out"
    )

    assert checkout.commit == git(repository, "rev-parse", "v1.9^{commit}")
    assert (checkout.directory / "v").read_text() == "1"
    assert git(checkout.directory, "rev-list", "--count", "HEAD") == "1"
    assert any("checked out refs/tags/v1.9" in line for line in lines)


def test_unknown_refs_and_unreachable_repositories_say_so(repository: Path, tmp_path: Path) -> None:
    lines: list[str] = []
    with pytest.raises(BuildFailedError, match="ref nope is neither a branch nor a tag"):
        asyncio.run(source(f"file://{repository}", tmp_path, lines).resolve("nope"))
    with pytest.raises(BuildFailedError, match=r"no branch or tag .* matches release/"):
        asyncio.run(source(f"file://{repository}", tmp_path, lines).resolve("release/*"))
    with pytest.raises(BuildFailedError, match="cannot read the repository"):
        asyncio.run(source("http://127.0.0.1:9/none.git", tmp_path, lines).resolve("main"))


def test_file_urls_are_refused_unless_allowed(repository: Path, tmp_path: Path) -> None:
    lines: list[str] = []

    with pytest.raises(BuildFailedError, match="transport 'file' not allowed"):
        asyncio.run(
            source(f"file://{repository}", tmp_path, lines, allow_file=False).resolve("main")
        )


def test_submodules_are_checked_out_at_their_pinned_commit(tmp_path: Path) -> None:
    library = new_repository(tmp_path / "library", {"version.txt": "one"})
    pinned = git(library, "rev-parse", "HEAD")
    commit(library, {"version.txt": "two"})
    app = new_repository(tmp_path / "app", {"Dockerfile": "FROM scratch\n"})
    git(app, "submodule", "add", "-q", f"file://{library}", "lib")
    git(app / "lib", "checkout", "-q", pinned)
    commit(app, {}, "pin lib at one")
    git(app, "tag", "v1")
    lines: list[str] = []

    checkout = resolve_and_checkout(
        source(f"file://{app}", tmp_path, lines), "v1", tmp_path / "out"
    )

    assert (checkout.directory / "lib" / "version.txt").read_text() == "one"


def test_submodules_obey_the_url_rules(tmp_path: Path) -> None:
    library = new_repository(tmp_path / "repos" / "library", {"f": "x"})
    app = new_repository(tmp_path / "repos" / "app", {"Dockerfile": "FROM scratch\n"})
    git(app, "submodule", "add", "-q", f"file://{library}", "lib")
    commit(app, {}, "add lib")
    lines: list[str] = []

    with serving(tmp_path / "repos") as http, pytest.raises(BuildFailedError, match="submodule"):
        resolve_and_checkout(
            source(f"{http.url}/app", tmp_path, lines, allow_file=False), "main", tmp_path / "o"
        )

    assert any("transport 'file' not allowed" in line for line in lines)


def test_private_repositories_over_http(tmp_path: Path) -> None:
    new_repository(tmp_path / "repos" / "private", {"Dockerfile": "FROM scratch\n"})
    token = "glpat-very-secret-token-123"
    lines: list[str] = []

    with serving(tmp_path / "repos", ("builder", token)) as http:
        url = f"{http.url}/private"
        right = GitCredentials(username="builder", token=token)
        wrong = GitCredentials(username="builder", token="not-the-token")
        checkout = resolve_and_checkout(
            source(url, tmp_path / "a", lines, right), "main", tmp_path / "out"
        )
        with pytest.raises(BuildFailedError, match="Authentication failed"):
            asyncio.run(source(url, tmp_path / "b", lines, wrong).resolve("main"))
        with pytest.raises(BuildFailedError, match="cannot read the repository"):
            asyncio.run(source(url, tmp_path / "c", lines).resolve("main"))

    assert (checkout.directory / "Dockerfile").exists()
    assert not any(token in line for line in lines)
