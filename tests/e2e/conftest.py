"""Fixtures for end-to-end tests: real clients, each with private state in the test's tmp dir."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tests.e2e.clients import Containerd, ContainerTool, Skopeo, short_directory

if TYPE_CHECKING:
    from tests.conftest import RunningServer


@pytest.fixture
def skopeo(server: RunningServer, tmp_path: Path) -> Skopeo:
    """skopeo pointed at the shared server."""
    return Skopeo(server, tmp_path / "skopeo")


@pytest.fixture
def buildah(server: RunningServer, tmp_path: Path) -> Iterator[ContainerTool]:
    """buildah with its own image storage."""
    with short_directory() as runroot:
        yield ContainerTool("buildah", server, tmp_path / "buildah", runroot)


@pytest.fixture
def podman(server: RunningServer, tmp_path: Path) -> Iterator[ContainerTool]:
    """podman with its own image storage, separate from buildah's."""
    with short_directory() as runroot:
        yield ContainerTool("podman", server, tmp_path / "podman", runroot)


@pytest.fixture
def containerd(server: RunningServer, tmp_path: Path) -> Iterator[Containerd]:
    """A containerd daemon of this test's own."""
    with (
        short_directory() as sockets,
        Containerd(server, tmp_path / "containerd", sockets).running() as daemon,
    ):
        yield daemon
