"""Fixtures for build tests: a server that builds, base images pushed into it, real clients."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import RunningServer
from tests.debian_rootfs import debian_rootfs_tar
from tests.e2e.clients import ContainerTool, Skopeo, short_directory

# Builds here are fast; workers look for them and prove they are alive often.
BUILD_ENVIRONMENT = {
    "MOORAGE_BUILDS__ALLOW_FILE_URLS": "true",
    "MOORAGE_BUILDS__MAX_CONCURRENT": "2",
    "MOORAGE_BUILDS__POLL_SECONDS": "0.2",
    "MOORAGE_BUILDS__HEARTBEAT_SECONDS": "0.5",
    "MOORAGE_BUILDS__HEARTBEAT_TIMEOUT_SECONDS": "5",
}
BUSYBOX_IMAGE = "test/base/busybox:1"
DEBIAN_IMAGE = "test/base/debian:bookworm"


@pytest.fixture(scope="session")
def build_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with its in-process build worker, allowed to clone file:// URLs."""
    running = RunningServer(tmp_path_factory.mktemp("builds") / "data", env=BUILD_ENVIRONMENT)
    running.username, running.password = running.create_account("tester", ("test",))
    running.start()
    yield running
    running.stop()
    assert "Traceback" not in running.log_text(), "the server logged a traceback"


@pytest.fixture
def api(build_server: RunningServer) -> Iterator[httpx.Client]:
    """The management API of the build server, as the test account."""
    with httpx.Client(
        base_url=f"{build_server.url}/api/v1",
        auth=("tester", "account-tester-secret"),
        timeout=60,
    ) as client:
        yield client


@pytest.fixture
def skopeo(build_server: RunningServer, tmp_path: Path) -> Skopeo:
    """skopeo pointed at the build server."""
    return Skopeo(build_server, tmp_path / "skopeo")


def _push_image(
    server: RunningServer, home: Path, context: Path, destination: str, *build: str
) -> None:
    with short_directory() as runroot:
        buildah = ContainerTool("buildah", server, home, runroot)
        try:
            buildah(*build, str(context))
            buildah.push("localhost/fixture:latest", f"{server.host}/{destination}")
        finally:
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def busybox_image(build_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A busybox image in the build server, for Dockerfiles that RUN a shell; its reference."""
    context = tmp_path_factory.mktemp("busybox")
    (context / "bin").mkdir()
    shutil.copy("/bin/busybox", context / "bin" / "busybox")
    (context / "Dockerfile").write_text(
        'FROM scratch\nCOPY bin/busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s"]\n'
    )
    bud = ["bud", "--isolation", "chroot", "-t", "localhost/fixture:latest"]
    _push_image(build_server, context / "home", context, BUSYBOX_IMAGE, *bud)
    return f"{build_server.host}/{BUSYBOX_IMAGE}"


@pytest.fixture(scope="session")
def debian_image(build_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real Debian bookworm base image in the build server; its reference."""
    context = tmp_path_factory.mktemp("debian")
    shutil.copy(debian_rootfs_tar(), context / "rootfs.tar")
    (context / "Dockerfile").write_text('FROM scratch\nADD rootfs.tar /\nCMD ["bash"]\n')
    bud = ["bud", "--isolation", "chroot", "-t", "localhost/fixture:latest"]
    _push_image(build_server, context / "home", context, DEBIAN_IMAGE, *bud)
    return f"{build_server.host}/{DEBIAN_IMAGE}"
