"""Build contexts: the build directory without `.git`, filtered, never reaching outside."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.builds.gitrepos import write_files

from moorage.builds.context import prepare_context
from moorage.builds.failures import BuildFailedError


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    write_files(
        root,
        {
            "Dockerfile": "FROM scratch\nCOPY . /\n",
            "docker/Dockerfile": "FROM scratch\n",
            "app/main.py": "print('hi')\n",
            "app/.dockerignore": "secret.txt\n*.log\n!keep.log\nbuild\n",
            "app/secret.txt": "s3cr3t",
            "app/debug.log": "noise",
            "app/keep.log": "kept",
            "app/build/out.bin": "binary",
            "app/sub/secret.txt": "not at the root: kept",
            ".git/config": "[core]\n",
            "app/lib/.git": "gitdir: ../../.git/modules/lib\n",
        },
    )
    return root


def listing(directory: Path) -> set[str]:
    return {
        path.relative_to(directory).as_posix()
        for path in directory.rglob("*")
        if path.is_file() or path.is_symlink()
    }


def test_the_build_directory_filtered_by_its_dockerignore(checkout: Path, tmp_path: Path) -> None:
    prepared = prepare_context(checkout, "docker/Dockerfile", "app", tmp_path / "prepared")

    assert listing(prepared.directory) == {
        ".dockerignore",
        "main.py",
        "keep.log",
        "sub/secret.txt",
    }
    assert prepared.dockerfile.read_text() == "FROM scratch\n"
    assert prepared.dockerfile.parent != prepared.directory, "the Dockerfile stays out of COPY ."
    assert prepared.excluded == 4, "secret.txt, debug.log, build/ and what it holds"


def test_the_default_build_directory_is_the_root_without_git(
    checkout: Path, tmp_path: Path
) -> None:
    prepared = prepare_context(checkout, "Dockerfile", ".", tmp_path / "prepared")

    files = listing(prepared.directory)
    assert "Dockerfile" in files and "app/main.py" in files
    assert not any(".git" in name.split("/") for name in files)


def test_missing_paths_fail_with_their_name(checkout: Path, tmp_path: Path) -> None:
    with pytest.raises(BuildFailedError, match="the Dockerfile nope/Dockerfile does not exist"):
        prepare_context(checkout, "nope/Dockerfile", ".", tmp_path / "a")
    with pytest.raises(BuildFailedError, match="the build directory web does not exist"):
        prepare_context(checkout, "Dockerfile", "web", tmp_path / "b")
    with pytest.raises(BuildFailedError, match="is not a directory"):
        prepare_context(checkout, "Dockerfile", "app/main.py", tmp_path / "c")


def test_symlinks_that_leave_the_repository_fail_the_build(checkout: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write_files(outside, {"Dockerfile": "FROM scratch\n", "host-secret": "do not read"})
    os.symlink(outside / "Dockerfile", checkout / "Dockerfile.link")
    os.symlink(outside, checkout / "elsewhere")
    os.symlink("../..", checkout / "app" / "up")

    with pytest.raises(BuildFailedError, match="leads outside the repository"):
        prepare_context(checkout, "Dockerfile.link", ".", tmp_path / "a")
    with pytest.raises(BuildFailedError, match="leads outside the repository"):
        prepare_context(checkout, "Dockerfile", "elsewhere", tmp_path / "b")
    with pytest.raises(BuildFailedError, match="leads outside the repository"):
        prepare_context(checkout, "app/up/outside/Dockerfile", ".", tmp_path / "c")


def test_symlinks_inside_are_copied_as_links_not_followed(checkout: Path, tmp_path: Path) -> None:
    os.symlink("/etc/hostname", checkout / "app" / "host-file")
    os.symlink("main.py", checkout / "app" / "alias.py")

    prepared = prepare_context(checkout, "Dockerfile", "app", tmp_path / "prepared")

    assert os.readlink(prepared.directory / "host-file") == "/etc/hostname"
    assert (prepared.directory / "host-file").is_symlink()
    assert os.readlink(prepared.directory / "alias.py") == "main.py"
