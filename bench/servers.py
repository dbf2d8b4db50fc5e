"""The two servers under test, each started on its own loopback port with its own data dir."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from registry_client import BenchError, Credentials

READY_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 20

# The reference registry as Debian configures it (in-memory blob descriptor cache, deletes
# enabled), on a loopback port, logging only warnings: moorage runs with its access log off too.
# `{storage}` is the driver's entries, filesystem unless the run stores blobs in S3.
REFERENCE_CONFIG = """\
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  cache:
    blobdescriptor: inmemory
{storage}  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: moorage-bench
"""
REFERENCE_FILESYSTEM = "  filesystem:\n    rootdirectory: {root}\n"
# The AWS SDK of the reference refuses to start with a custom CA bundle set, and it talks to a
# loopback endpoint over plain HTTP anyway.
REFERENCE_DROPPED_ENV = frozenset({"AWS_CA_BUNDLE"})


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A registry process the benchmark started, and owns until `stop`."""

    name: str
    command: list[str]
    workdir: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)
    data_dir: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    # Variables of the benchmark's own environment the process must not inherit.
    dropped_env: frozenset[str] = frozenset()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def start(self) -> None:
        """Start the process and wait until /v2/ answers (any status: 401 counts as up)."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**self._inherited_env(), **self.env},
            )
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited at start:\n{self.log_tail()}")
            try:
                httpx.get(f"{self.url}/v2/", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise BenchError(f"{self.name} did not answer within {READY_TIMEOUT_SECONDS}s")

    def _inherited_env(self) -> dict[str, str]:
        return {name: value for name, value in os.environ.items() if name not in self.dropped_env}

    def stop(self) -> None:
        """Terminate the process (kill it if it lingers)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def peak_rss_bytes(self) -> int:
        """The peak resident set (VmHWM) of the process plus that of any children it has."""
        assert self.process is not None
        return sum(_peak_rss(pid) for pid in _process_tree(self.process.pid))

    def cpu_seconds(self) -> float:
        """User plus system CPU time the process and its children have used so far."""
        assert self.process is not None
        return sum(_cpu_seconds(pid) for pid in _process_tree(self.process.pid))

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def moorage_server(workdir: Path, extra_env: dict[str, str]) -> Server:
    """`moorage serve` from this interpreter's environment, logging warnings only."""
    port = free_port()
    data_dir = workdir / "moorage-data"
    command = [sys.executable, "-m", "moorage", "serve", "--listen", f"127.0.0.1:{port}"]
    command += ["--data-dir", str(data_dir)]
    env = {
        "MOORAGE_LOG_LEVEL": "warning",
        # An operator raises the default tag quota (100) for a repository of 5,000 tags.
        "MOORAGE_QUOTAS__TAGS_PER_REPOSITORY": "1000000",
        **extra_env,
    }
    return Server("moorage", command, workdir, port, env, data_dir)


def create_moorage_account(server: Server, namespace: str) -> Credentials:
    """An activated account owning `namespace`, made with the CLI in the server's data dir."""
    assert server.data_dir is not None
    name = "bench"
    password, registry_password = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    steps: list[tuple[list[str], str | None]] = [
        (["user", "create", name], f"{password}\n"),
        (["user", "activate", name], f"{registry_password}\n"),
        (["namespace", "create", namespace, "--owner", name], None),
    ]
    for arguments, stdin in steps:
        finished = subprocess.run(
            [sys.executable, "-m", "moorage", *arguments, "--data-dir", str(server.data_dir)],
            input=stdin,
            capture_output=True,
            text=True,
            env={**os.environ, **server.env},
            timeout=120,
            check=False,
        )
        if finished.returncode != 0:
            raise BenchError(
                f"could not make the benchmark an account: moorage {' '.join(arguments)}"
                f" answered {finished.returncode}: {finished.stderr.strip()[-300:]}"
            )
    return Credentials(name, registry_password)


def reference_server(workdir: Path, storage: str | None = None) -> Server:
    """`docker-registry serve CONFIG` with a config written for this run.

    `storage` is the config's storage driver entries; by default a filesystem dir of the run.
    """
    executable = shutil.which("docker-registry")
    if executable is None:
        raise BenchError(
            "the reference registry is not installed: apt-get install docker-registry"
            " (or run with --moorage-only)"
        )
    port = free_port()
    config = workdir / "reference-config.yml"
    if storage is None:
        storage = REFERENCE_FILESYSTEM.format(root=workdir / "reference-data")
    config.write_text(REFERENCE_CONFIG.format(storage=storage, port=port))
    command = [executable, "serve", str(config)]
    return Server("reference", command, workdir, port, dropped_env=REFERENCE_DROPPED_ENV)


def _process_tree(pid: int) -> list[int]:
    tree = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:  # the thread ended since it was listed
            continue
        for child in children:
            tree += _process_tree(int(child))
    return tree


def _cpu_seconds(pid: int) -> float:
    # Fields after the command name, which is in parentheses and may hold spaces.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    user_ticks, system_ticks = int(fields[11]), int(fields[12])
    return (user_ticks + system_ticks) / os.sysconf("SC_CLK_TCK")


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0
