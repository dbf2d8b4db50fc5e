"""The real registry clients, each driven as a subprocess with its state in a test's tmp dir.

skopeo, buildah and podman get their own storage root, run root, temp dir, auth file and
signature policy, so a test never reads or changes the machine's global container state.
containerd runs as a daemon of the test's own, listening on a socket in the tmp dir.
Credentials always come from the server fixture (`creds_args`, `http_auth`), in the form each
client takes them.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import oras.client

if TYPE_CHECKING:
    from tests.conftest import RunningServer

# Generous: a client that hangs on a registry bug should fail the test, not the whole run.
COMMAND_TIMEOUT_SECONDS = 120
ACCEPTED_MANIFESTS = ", ".join(
    [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]
)
ACCEPT_ANYTHING_POLICY = '{"default": [{"type": "insecureAcceptAnything"}]}'


def run(command: list[str], env: dict[str, str] | None = None) -> str:
    """Run a command to completion; its stdout as text (see `run_bytes`)."""
    return run_bytes(command, env).decode()


def run_bytes(command: list[str], env: dict[str, str] | None = None) -> bytes:
    """Run a command to completion; its stdout, or an assertion error with everything it said."""
    completed = subprocess.run(
        command, capture_output=True, env=env, timeout=COMMAND_TIMEOUT_SECONDS, check=False
    )
    if completed.returncode != 0:
        raise AssertionError(
            f"{shlex.join(command)} exited with {completed.returncode}\n"
            f"stdout:\n{completed.stdout.decode(errors='replace')}\n"
            f"stderr:\n{completed.stderr.decode(errors='replace')}"
        )
    return completed.stdout


@contextmanager
def short_directory() -> Iterator[Path]:
    """A temporary directory with a short path: podman refuses a run root of over 50 characters."""
    with tempfile.TemporaryDirectory(prefix="moorage-e2e-", dir="/tmp") as directory:
        yield Path(directory)


def isolated_environment(home: Path) -> dict[str, str]:
    """Environment variables that keep a client's temp files and credentials under `home`."""
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    # buildah and podman insist that an auth file they are pointed at exists.
    (home / "auth.json").write_text('{"auths": {}}')
    return {
        **os.environ,
        "TMPDIR": str(home / "tmp"),
        "REGISTRY_AUTH_FILE": str(home / "auth.json"),
        "BUILDAH_ISOLATION": "chroot",
    }


def write_policy(home: Path) -> Path:
    """A signature policy that accepts any image, so the system's policy does not matter."""
    policy = home / "policy.json"
    policy.write_text(ACCEPT_ANYTHING_POLICY)
    return policy


class Skopeo:
    """skopeo, with TLS off and the server's credentials on whichever side is the registry."""

    def __init__(self, server: RunningServer, home: Path) -> None:
        self.server = server
        home.mkdir(parents=True, exist_ok=True)
        self.env = isolated_environment(home)
        self.policy = write_policy(home)

    def copy(
        self, source: str, destination: str, *options: str, architecture: str | None = None
    ) -> None:
        """`skopeo copy [options] source destination`, choosing `architecture` from an index."""
        command = ["skopeo", "--policy", str(self.policy)]
        if architecture is not None:
            command += ["--override-os", "linux", "--override-arch", architecture]
        command += ["copy", *options]
        if source.startswith("docker://"):
            command += ["--src-tls-verify=false", *self.server.creds_args("--src-creds")]
        if destination.startswith("docker://"):
            command += ["--dest-tls-verify=false", *self.server.creds_args("--dest-creds")]
        run([*command, source, destination], self.env)

    def on_registry(self, subcommand: str, *arguments: str) -> str:
        """A subcommand that only talks to the registry (inspect, list-tags, delete)."""
        command = ["skopeo", "--policy", str(self.policy), subcommand, "--tls-verify=false"]
        return run([*command, *self.server.creds_args(), *arguments], self.env)

    def inspect_raw(self, reference: str) -> bytes:
        """The manifest bytes `skopeo inspect --raw` fetches from the registry."""
        return self.on_registry("inspect", "--raw", reference).encode()


class ContainerTool:
    """buildah or podman with a private vfs storage under `home` and run root in `runroot`."""

    def __init__(self, program: str, server: RunningServer, home: Path, runroot: Path) -> None:
        self.program = program
        self.server = server
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.runroot = runroot
        self.env = isolated_environment(home)
        self.policy = write_policy(home)

    def __call__(self, *arguments: str) -> str:
        """Run one subcommand against the private storage; its stdout."""
        command = [
            self.program,
            "--root",
            str(self.home / "storage"),
            "--runroot",
            str(self.runroot),
            "--storage-driver",
            "vfs",
        ]
        if self.program == "podman":
            command += ["--tmpdir", str(self.home / "libpod"), "--events-backend", "none"]
        return run([*command, *arguments], self.env)

    def registry_options(self) -> list[str]:
        """What a pull or push against the test server needs: plain HTTP and credentials."""
        return [
            "--tls-verify=false",
            "--signature-policy",
            str(self.policy),
            *self.server.creds_args("--creds"),
        ]

    def push(self, image: str, destination: str) -> str:
        """Push a local image to `destination` (host/repo:tag); the manifest digest it wrote."""
        digest_file = self.home / "pushed-digest"
        self(
            "push",
            *self.registry_options(),
            "--digestfile",
            str(digest_file),
            image,
            f"docker://{destination}",
        )
        return digest_file.read_text().strip()

    def pull(self, reference: str) -> None:
        """Pull `reference` (host/repo:tag) into the private storage."""
        self("pull", *self.registry_options(), reference)


class Containerd:
    """A containerd daemon of the test's own, and `ctr` pointed at it."""

    NAMESPACE = "moorage-e2e"
    # Plugins that need kernel features, a CRI setup or /opt; pulls and pushes need none.
    DISABLED_PLUGINS = (
        "io.containerd.grpc.v1.cri",
        "io.containerd.internal.v1.opt",
        "io.containerd.internal.v1.tracing",
        "io.containerd.tracing.processor.v1.otlp",
        "io.containerd.snapshotter.v1.aufs",
        "io.containerd.snapshotter.v1.btrfs",
        "io.containerd.snapshotter.v1.devmapper",
        "io.containerd.snapshotter.v1.zfs",
    )

    def __init__(self, server: RunningServer, home: Path, socket_dir: Path) -> None:
        self.server = server
        self.home = home
        # Unix socket paths are limited to about 100 bytes, which a test's tmp dir can exceed.
        self.socket = socket_dir / "containerd.sock"
        self.process: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        """The daemon's config: every path under `home` but the sockets, no debug or metrics."""
        disabled = ", ".join(f'"{plugin}"' for plugin in self.DISABLED_PLUGINS)
        return "\n".join(
            [
                "version = 2",
                f'root = "{self.home / "root"}"',
                f'state = "{self.home / "state"}"',
                f"disabled_plugins = [{disabled}]",
                "[grpc]",
                f'  address = "{self.socket}"',
                "[ttrpc]",
                f'  address = "{self.socket}.ttrpc"',
                "[debug]",
                '  address = ""',
                "[metrics]",
                '  address = ""',
                "",
            ]
        )

    @contextmanager
    def running(self) -> Iterator[Containerd]:
        """Start the daemon, wait for its socket, and stop it afterwards."""
        self.home.mkdir(parents=True, exist_ok=True)
        config = self.home / "config.toml"
        config.write_text(self.config())
        with (self.home / "containerd.log").open("wb") as log:
            self.process = subprocess.Popen(
                ["containerd", "--config", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        try:
            self._wait_until_serving()
            yield self
        finally:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def ctr(self, *arguments: str) -> str:
        """Run `ctr` against this daemon, in the test namespace; its stdout."""
        return run(self._ctr_command(*arguments))

    def registry_options(self) -> list[str]:
        """What a pull or push against the test server needs: plain HTTP and credentials."""
        return ["--plain-http", *self.server.creds_args("--user")]

    def content(self, digest: str) -> bytes:
        """A blob from containerd's content store, as bytes."""
        return run_bytes(self._ctr_command("content", "get", digest))

    def _ctr_command(self, *arguments: str) -> list[str]:
        return ["ctr", "--address", str(self.socket), "--namespace", self.NAMESPACE, *arguments]

    def _wait_until_serving(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.home / "containerd.log").read_text()
                raise AssertionError(f"containerd exited early:\n{log}")
            if self.socket.exists():
                try:
                    self.ctr("version")
                    return
                except AssertionError:
                    pass
            time.sleep(0.1)
        raise AssertionError("containerd did not start serving within 30 seconds")


def oras_client(server: RunningServer) -> oras.client.OrasClient:
    """oras-py over plain HTTP, with the server's credentials when it has accounts."""
    client = oras.client.OrasClient(hostname=server.host, insecure=True)
    if server.http_auth is not None:
        client.auth.set_basic_auth(*server.http_auth)
    return client


def registry_manifest(client: httpx.Client, repository: str, reference: str) -> bytes:
    """The manifest bytes moorage serves for `reference`, asking for every manifest type."""
    response = client.get(
        f"/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPTED_MANIFESTS}
    )
    assert response.status_code == 200, response.text
    return response.content


def registry_blob(client: httpx.Client, repository: str, digest: str) -> bytes:
    """The blob bytes moorage serves for `digest`."""
    response = client.get(f"/v2/{repository}/blobs/{digest}")
    assert response.status_code == 200, response.text
    return response.content


def access_log(server: RunningServer) -> list[dict[str, object]]:
    """The server's access lines so far, one per request, as structured records."""
    records = []
    for line in server.log_text().splitlines():
        if not line.startswith("{"):
            continue  # uvicorn's own lines are plain text
        record = json.loads(line)
        if record.get("logger_name") == "moorage.access":
            records.append(record)
    return records
