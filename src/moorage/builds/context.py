"""The build context: the build directory as checked out, without `.git`, filtered by its
`.dockerignore`; and the Dockerfile, both proven to lie inside the repository."""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from moorage.builds.dockerignore import IgnorePattern, is_excluded, parse_dockerignore
from moorage.builds.failures import BuildFailedError

DOCKERIGNORE = ".dockerignore"


@dataclass(frozen=True, slots=True)
class PreparedContext:
    """Where the engine finds the context and the Dockerfile."""

    directory: Path
    dockerfile: Path
    files: int
    excluded: int


def resolve_inside(root: Path, relative: str, what: str) -> Path:
    """`root/relative` with symlinks resolved, if it exists and stays inside `root`."""
    root = root.resolve()
    candidate = root / relative
    if not os.path.lexists(candidate):
        raise BuildFailedError(f"{what} {relative} does not exist in the repository")
    resolved = candidate.resolve()
    if not resolved.is_relative_to(root):
        raise BuildFailedError(
            f"{what} {relative} is a symlink that leads outside the repository; refused"
        )
    if not resolved.exists():
        raise BuildFailedError(f"{what} {relative} is a broken symlink")
    return resolved


def prepare_context(
    repository: Path, dockerfile: str, build_dir: str, destination: Path
) -> PreparedContext:
    """Copy the build directory to `destination/context` and the Dockerfile beside it."""
    source = resolve_inside(repository, build_dir, "the build directory")
    if not source.is_dir():
        raise BuildFailedError(f"the build directory {build_dir} is not a directory")
    dockerfile_path = resolve_inside(repository, dockerfile, "the Dockerfile")
    if not dockerfile_path.is_file():
        raise BuildFailedError(f"the Dockerfile {dockerfile} is not a file")

    patterns = _ignore_patterns(repository, source)
    context = destination / "context"
    context.mkdir(parents=True)
    files, excluded = _copy_tree(source, context, patterns)
    copied_dockerfile = destination / "Dockerfile"
    shutil.copyfile(dockerfile_path, copied_dockerfile)
    return PreparedContext(context, copied_dockerfile, files, excluded)


def _ignore_patterns(repository: Path, source: Path) -> list[IgnorePattern]:
    ignore_file = source / DOCKERIGNORE
    if not os.path.lexists(ignore_file):
        return []
    resolved = ignore_file.resolve()
    if not resolved.is_relative_to(repository.resolve()) or not resolved.is_file():
        raise BuildFailedError(".dockerignore is a symlink that leads outside the repository")
    return parse_dockerignore(resolved.read_text(errors="replace"))


def _copy_tree(source: Path, target: Path, patterns: list[IgnorePattern]) -> tuple[int, int]:
    files = excluded = 0
    for directory, subdirectories, names in os.walk(source):
        relative_directory = Path(directory).relative_to(source)
        # `.git` is a directory in the repository and a file in a submodule checkout.
        subdirectories[:] = [name for name in subdirectories if name != ".git"]
        for name in [*subdirectories, *names]:
            if name == ".git":
                continue
            relative = (relative_directory / name).as_posix()
            if is_excluded(patterns, relative):
                excluded += 1
                continue
            if _copy_entry(Path(directory) / name, target / relative):
                files += 1
    return files, excluded


def _copy_entry(path: Path, destination: Path) -> bool:
    """Copy one entry without following symlinks; special files are left out."""
    mode = path.lstat().st_mode
    destination.parent.mkdir(parents=True, exist_ok=True)
    if stat.S_ISLNK(mode):
        # The link is copied as a link: only its text enters the context, never its target.
        os.symlink(os.readlink(path), destination)
        return True
    if stat.S_ISDIR(mode):
        destination.mkdir(exist_ok=True)
        shutil.copystat(path, destination)
        return False
    if stat.S_ISREG(mode):
        shutil.copy2(path, destination, follow_symlinks=False)
        return True
    return False
