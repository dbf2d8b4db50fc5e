"""Fixtures for build tests: a server that builds, base images pushed into it, real clients."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import RunningServer
from tests.e2e.clients import ContainerTool, Skopeo, run, short_directory

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
DEBIAN_CACHE = Path(tempfile.gettempdir()) / "moorage-test-cache" / "debian-bookworm-minbase.tar"


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


def _debian_mirror() -> str:
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        found = re.search(r"^URIs:\s*(\S+)", sources.read_text(), re.MULTILINE)
        if found:
            return found.group(1)
    return "http://deb.debian.org/debian"


def _debian_rootfs_tar() -> Path:
    """A minimal Debian bookworm root file system as a tar, made once and kept in /tmp."""
    if DEBIAN_CACHE.exists():
        return DEBIAN_CACHE
    DEBIAN_CACHE.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=DEBIAN_CACHE.parent) as work:
        rootfs = Path(work) / "rootfs"
        run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), _debian_mirror()])
        partial = Path(work) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
        partial.rename(DEBIAN_CACHE)
    return DEBIAN_CACHE


@pytest.fixture(scope="session")
def debian_image(build_server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real Debian bookworm base image in the build server; its reference."""
    context = tmp_path_factory.mktemp("debian")
    shutil.copy(_debian_rootfs_tar(), context / "rootfs.tar")
    (context / "Dockerfile").write_text('FROM scratch\nADD rootfs.tar /\nCMD ["bash"]\n')
    bud = ["bud", "--isolation", "chroot", "-t", "localhost/fixture:latest"]
    _push_image(build_server, context / "home", context, DEBIAN_IMAGE, *bud)
    return f"{build_server.host}/{DEBIAN_IMAGE}"
