"""Build engines: turn a context and a Dockerfile into an image, and push it to the registry.

buildah is the default: `buildah bud --isolation chroot --storage-driver vfs` needs no daemon.
podman takes the same options; docker needs a running engine. Each build gets its own image
storage, auth file and registries.conf under its work directory, so builds share nothing.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from moorage.builds.failures import BuildFailedError
from moorage.builds.process import LineSink, base_environment, run_logged

ACCEPT_ANYTHING_POLICY = {"default": [{"type": "insecureAcceptAnything"}]}


@dataclass(frozen=True, slots=True)
class EngineJob:
    """Everything an engine needs for one build and push."""

    context: Path
    dockerfile: Path
    destination: str
    registry_host: str
    registry_insecure: bool
    username: str
    credential: str
    work_dir: Path
    run_dir: Path
    build_args: dict[str, str] = field(default_factory=dict)


class BuildEngine(Protocol):
    """Builds an image from a prepared context and pushes it; returns the manifest digest."""

    name: str

    async def build_and_push(self, job: EngineJob, output: LineSink) -> str:
        """Build `job.dockerfile` over `job.context`, push to `job.destination`."""


def write_registry_files(job: EngineJob) -> dict[str, Path]:
    """The auth file, registries.conf and signature policy of one build, private to it."""
    job.work_dir.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{job.username}:{job.credential}".encode()).decode()
    files = {
        "auth": job.work_dir / "auth.json",
        "registries": job.work_dir / "registries.conf",
        "policy": job.work_dir / "policy.json",
    }
    files["auth"].touch(mode=0o600)
    files["auth"].write_text(json.dumps({"auths": {job.registry_host: {"auth": auth}}}))
    registries = [
        'unqualified-search-registries = ["docker.io"]',
        'short-name-mode = "permissive"',
    ]
    if job.registry_insecure:
        registries += ["[[registry]]", f'location = "{job.registry_host}"', "insecure = true"]
    files["registries"].write_text("\n".join(registries) + "\n")
    files["policy"].write_text(json.dumps(ACCEPT_ANYTHING_POLICY))
    return files


class BuildahEngine:
    """buildah with chroot isolation and vfs storage: no daemon, no kernel overlay needed."""

    # TODO: rootless or VM isolation of RUN steps - under chroot a step runs with the worker's
    # rights on the build host, so only repositories the operator trusts should be built.

    name = "buildah"
    program = "buildah"

    def global_options(self, job: EngineJob) -> list[str]:
        """Options before the subcommand: the build's own storage."""
        return [
            "--root",
            str(job.work_dir / "storage"),
            "--runroot",
            str(job.run_dir),
            "--storage-driver",
            "vfs",
        ]

    def build_command(self, job: EngineJob, files: dict[str, Path]) -> list[str]:
        """The build step, as `docker build -f DOCKERFILE CONTEXT` would run it."""
        command = [
            self.program,
            *self.global_options(job),
            "bud",
            "--isolation",
            "chroot",
            "--authfile",
            str(files["auth"]),
            "--signature-policy",
            str(files["policy"]),
            "--format",
            "oci",
            "-f",
            str(job.dockerfile),
            "-t",
            job.destination,
        ]
        for name, value in sorted(job.build_args.items()):
            command += ["--build-arg", f"{name}={value}"]
        return [*command, str(job.context)]

    def push_command(self, job: EngineJob, files: dict[str, Path], digest_file: Path) -> list[str]:
        """The push step, through the registry's /v2 API like any client's."""
        return [
            self.program,
            *self.global_options(job),
            "push",
            "--authfile",
            str(files["auth"]),
            "--signature-policy",
            str(files["policy"]),
            f"--tls-verify={'false' if job.registry_insecure else 'true'}",
            "--digestfile",
            str(digest_file),
            job.destination,
            f"docker://{job.destination}",
        ]

    def environment(self, job: EngineJob, files: dict[str, Path]) -> dict[str, str]:
        """The commands' environment: the build's registries.conf, no outside settings."""
        environment = base_environment(job.work_dir / "home")
        environment["CONTAINERS_REGISTRIES_CONF"] = str(files["registries"])
        environment["REGISTRY_AUTH_FILE"] = str(files["auth"])
        environment["BUILDAH_ISOLATION"] = "chroot"
        return environment

    async def build_and_push(self, job: EngineJob, output: LineSink) -> str:
        """Build, then push; the pushed manifest's digest."""
        files = write_registry_files(job)
        environment = self.environment(job, files)
        built = await run_logged(self.build_command(job, files), environment, output)
        if built.returncode != 0:
            raise BuildFailedError(f"the build failed: {built.last_error()}")

        output(f"[moorage] pushing {job.destination}")
        digest_file = job.work_dir / "digest"
        pushed = await run_logged(self.push_command(job, files, digest_file), environment, output)
        if pushed.returncode != 0 or not digest_file.exists():
            raise BuildFailedError(f"pushing {job.destination} was refused: {pushed.last_error()}")
        return digest_file.read_text().strip()


class PodmanEngine(BuildahEngine):
    """podman build: the same engine as buildah behind podman's command line."""

    name = "podman"
    program = "podman"

    def global_options(self, job: EngineJob) -> list[str]:
        """podman's storage options, plus no event log and no systemd."""
        return [
            *super().global_options(job),
            "--tmpdir",
            str(job.run_dir / "libpod"),
            "--events-backend",
            "none",
            "--cgroup-manager",
            "cgroupfs",
        ]

    def build_command(self, job: EngineJob, files: dict[str, Path]) -> list[str]:
        """`podman build`, with the options `buildah bud` takes."""
        command = super().build_command(job, files)
        command[command.index("bud")] = "build"
        return command


class DockerEngine:
    """A docker CLI talking to a running engine; the engine must trust the registry."""

    name = "docker"

    async def build_and_push(self, job: EngineJob, output: LineSink) -> str:
        """`docker build`, `docker push`, then the digest the engine recorded."""
        config_dir = job.work_dir / "docker-config"
        config_dir.mkdir(parents=True, exist_ok=True)
        auth = base64.b64encode(f"{job.username}:{job.credential}".encode()).decode()
        (config_dir / "config.json").write_text(
            json.dumps({"auths": {job.registry_host: {"auth": auth}}})
        )
        environment = base_environment(job.work_dir / "home")
        environment["DOCKER_CONFIG"] = str(config_dir)
        build = ["docker", "build", "-f", str(job.dockerfile), "-t", job.destination]
        for name, value in sorted(job.build_args.items()):
            build += ["--build-arg", f"{name}={value}"]
        built = await run_logged([*build, str(job.context)], environment, output)
        if built.returncode != 0:
            raise BuildFailedError(f"the build failed: {built.last_error()}")
        pushed = await run_logged(["docker", "push", job.destination], environment, output)
        if pushed.returncode != 0:
            raise BuildFailedError(f"pushing {job.destination} was refused: {pushed.last_error()}")
        digests: list[str] = []
        inspect = ["docker", "image", "inspect", "--format", "{{json .RepoDigests}}"]
        await run_logged([*inspect, job.destination], environment, digests.append)
        found = [item for line in digests for item in json.loads(line or "[]")]
        return str(found[0]).rpartition("@")[2] if found else ""


def create_engine(name: str) -> BuildEngine:
    """The engine the settings name."""
    engines: dict[str, BuildEngine] = {
        "buildah": BuildahEngine(),
        "podman": PodmanEngine(),
        "docker": DockerEngine(),
    }
    return engines[name]
