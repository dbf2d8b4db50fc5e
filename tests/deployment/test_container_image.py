"""moorage's own image: the repository's Containerfile built with real buildah, then run.

The base is a Debian bookworm made with debootstrap (`tests/debian_rootfs.py`) and handed in
as `BASE_IMAGE`, so only pip reaches the internet (PyPI). The container runs with buildah's
chroot isolation, which shares the host's network: the server inside answers on a loopback
port of the host.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import free_port
from tests.debian_rootfs import debian_rootfs_tar
from tests.e2e.clients import short_directory

# The image build installs Debian packages and every Python dependency: minutes, not seconds.
pytestmark = pytest.mark.timeout(1500)

REPOSITORY = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/moorage-test/debian:bookworm"
IMAGE = "localhost/moorage-test/moorage:latest"
BUILD_TIMEOUT_SECONDS = 1200
COMMAND_TIMEOUT_SECONDS = 120
SERVER_START_SECONDS = 60
# The machine's CA bundle, handed to pip in the build: a TLS-inspecting proxy on the way to
# PyPI signs with a CA that only the host trusts.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass
class Buildah:
    """buildah as root with a private vfs storage, running containers with chroot isolation."""

    home: Path
    runroot: Path

    def command(self, *arguments: str) -> list[str]:
        """The full command line of one subcommand against the private storage."""
        storage = ["--root", str(self.home / "storage"), "--runroot", str(self.runroot)]
        return ["buildah", *storage, "--storage-driver", "vfs", *arguments]

    def __call__(self, *arguments: str, timeout: float = COMMAND_TIMEOUT_SECONDS) -> str:
        """Run one subcommand to completion; its stdout, or an error with all it said."""
        command = self.command(*arguments)
        completed = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        if completed.returncode != 0:
            raise AssertionError(
                f"{shlex.join(command)} exited with {completed.returncode}\n"
                f"stdout:\n{completed.stdout.decode(errors='replace')[-5000:]}\n"
                f"stderr:\n{completed.stderr.decode(errors='replace')[-5000:]}"
            )
        return completed.stdout.decode()

    def run_in(self, container: str, *command: str) -> str:
        """A command inside `container`, as the image's user; its stdout."""
        return self("run", "--isolation", "chroot", container, "--", *command)


@pytest.fixture(scope="module")
def buildah(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Buildah]:
    """A buildah whose storage is removed at the end: vfs keeps a whole copy of every layer."""
    home = tmp_path_factory.mktemp("image")
    with short_directory() as runroot:
        tool = Buildah(home, runroot)
        yield tool
        tool("rm", "--all")
        shutil.rmtree(home / "storage", ignore_errors=True)


def _pip_trusting_host_ca(buildah: Buildah) -> list[str]:
    if not HOST_CA_BUNDLE.exists():
        return []
    pip_config = buildah.home / "pip.conf"
    pip_config.write_text("[global]\ncert = /etc/moorage-test-ca.pem\n")
    return [
        "--volume",
        f"{HOST_CA_BUNDLE}:/etc/moorage-test-ca.pem:ro",
        "--volume",
        f"{pip_config}:/etc/pip.conf:ro",
    ]


@pytest.fixture(scope="module")
def image_config(buildah: Buildah) -> dict[str, Any]:
    """Build the Containerfile over the local Debian base; the image's OCI config."""
    base = buildah("from", "scratch").strip()
    buildah("add", base, str(debian_rootfs_tar()), "/")
    buildah("commit", "--rm", base, BASE_IMAGE)

    buildah(
        "bud",
        "--isolation",
        "chroot",
        "--pull-never",
        "--build-arg",
        f"BASE_IMAGE={BASE_IMAGE}",
        *_pip_trusting_host_ca(buildah),
        "-f",
        str(REPOSITORY / "Containerfile"),
        "-t",
        IMAGE,
        str(REPOSITORY),
        timeout=BUILD_TIMEOUT_SECONDS,
    )
    config: dict[str, Any] = json.loads(buildah("inspect", "--type", "image", IMAGE))["OCIv1"]
    return config


@pytest.fixture(scope="module")
def container(buildah: Buildah, image_config: dict[str, Any]) -> str:
    """A working container of the built image."""
    return buildah("from", "--pull-never", IMAGE).strip()


def test_image_serves_as_a_user_from_a_data_dir_volume(image_config: dict[str, Any]) -> None:
    config = image_config["config"]
    assert config["Entrypoint"] == ["moorage"]
    assert config["Cmd"] == ["serve"]
    assert config["User"] == "10001:10001"
    assert "5000/tcp" in config["ExposedPorts"]
    assert "/var/lib/moorage" in config["Volumes"]
    assert "MOORAGE_LISTEN=0.0.0.0:5000" in config["Env"]
    assert "MOORAGE_DATA_DIR=/var/lib/moorage" in config["Env"]
    # No build engine in this image, so the server must not try to build.
    assert "MOORAGE_BUILDS__IN_PROCESS_WORKER=false" in config["Env"]


def test_image_holds_moorage_installed_on_debian_python(buildah: Buildah, container: str) -> None:
    found = buildah.run_in(
        container,
        "python3",
        "-c",
        "import sys, moorage; print(sys.version); print(moorage.__file__)",
    )

    version, module = found.split()[0], found.splitlines()[-1]
    assert version.startswith("3.11.")
    assert module == "/opt/moorage/lib/python3.11/site-packages/moorage/__init__.py"
    assert buildah.run_in(container, "id", "-u").strip() == "10001"
    # Only the venv comes from the install stage: no sources, no pip cache.
    assert "src" not in buildah.run_in(container, "ls", "/").split()


def test_image_default_command_serves_the_registry(
    buildah: Buildah, container: str, image_config: dict[str, Any], tmp_path: Path
) -> None:
    config = image_config["config"]
    port = free_port()
    log_path = tmp_path / "serve.log"
    # The image's own entrypoint and command; only the address moves to a free loopback port.
    command = buildah.command(
        "run",
        "--isolation",
        "chroot",
        "--env",
        f"MOORAGE_LISTEN=127.0.0.1:{port}",
        container,
        "--",
        *config["Entrypoint"],
        *config["Cmd"],
    )
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        answer = _first_answer(f"http://127.0.0.1:{port}/v2/", server, log_path)
    finally:
        server.terminate()
        server.wait(timeout=30)

    assert answer.status_code == 401
    challenge = answer.headers["WWW-Authenticate"]
    assert challenge.startswith(f'Bearer realm="http://127.0.0.1:{port}/auth/token"'), challenge
    assert answer.json()["errors"][0]["code"] == "UNAUTHORIZED"
    log_text = log_path.read_text()
    assert '"data_dir": "/var/lib/moorage"' in log_text
    assert "Traceback" not in log_text
    assert "moorage.db" in buildah.run_in(container, "ls", "/var/lib/moorage").split()


def _first_answer(url: str, server: subprocess.Popen[bytes], log_path: Path) -> httpx.Response:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(
                f"the container exited with {server.returncode}:\n{log_path.read_text()}"
            )
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            time.sleep(0.3)
    raise AssertionError(f"no answer at {url} in {SERVER_START_SECONDS}s:\n{log_path.read_text()}")
