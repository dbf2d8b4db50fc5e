"""The source of a build: a git repository, read with the rule's credentials and URL rules.

Credentials reach git only through the environment: an https token through a credential
helper scoped to the repository's origin, an SSH key through a key file and GIT_SSH_COMMAND.
They never appear in a command line; the log masks them besides.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from moorage.builds.failures import BuildFailedError
from moorage.builds.process import LineSink, base_environment, run_logged
from moorage.builds.rules import ResolvedRef, git_url_origin, is_pattern, ref_matches

NETWORK_PROTOCOLS = ("https", "http", "ssh", "git")
# Answers git's credential requests from two variables; `store` and `erase` are ignored.
_CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || exit 0;'
    ' printf "username=%s\\npassword=%s\\n" "$MOORAGE_GIT_USERNAME" "$MOORAGE_GIT_TOKEN"; }; f'
)
_VERSION_PART = re.compile(r"(\d+)")


@dataclass(frozen=True, slots=True)
class GitCredentials:
    """A username and token (https), or an SSH private key (ssh)."""

    username: str | None = None
    token: str | None = None
    ssh_key: str | None = None

    def secrets(self) -> list[str]:
        """What must never appear in a log line."""
        secrets = [value for value in (self.token, self.ssh_key) if value]
        if self.ssh_key:
            secrets += [line for line in self.ssh_key.splitlines() if len(line) > 16]
        return secrets


@dataclass(frozen=True, slots=True)
class Checkout:
    """A checked-out tree, the ref it came from and its commit."""

    directory: Path
    ref: ResolvedRef
    commit: str


class GitSource:
    """Resolves refs of one repository and checks them out shallowly, submodules included."""

    def __init__(
        self,
        url: str,
        credentials: GitCredentials | None,
        allow_file: bool,
        home: Path,
        output: LineSink,
    ) -> None:
        self.url = url
        self._output = output
        self._environment = self._make_environment(credentials, allow_file, home)

    def _make_environment(
        self, credentials: GitCredentials | None, allow_file: bool, home: Path
    ) -> dict[str, str]:
        environment = base_environment(home)
        protocols = (*NETWORK_PROTOCOLS, "file") if allow_file else NETWORK_PROTOCOLS
        config: list[tuple[str, str]] = [("credential.helper", "")]
        environment.update(
            GIT_TERMINAL_PROMPT="0",
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL="/dev/null",
            # Submodules obey the same list: no file:// unless allowed, never ext::.
            GIT_ALLOW_PROTOCOL=":".join(protocols),
        )
        # TODO: a known_hosts setting per rule - until then each build trusts the first SSH
        # host key it sees, so an attacker on that first connection could pose as the host.
        known_hosts = home / "known_hosts"
        ssh = [
            "ssh",
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=accept-new",
            "-o",
            f"UserKnownHostsFile={known_hosts}",
        ]
        if credentials and credentials.ssh_key:
            key_file = home / "ssh-key"
            key_file.touch(mode=0o600)
            key_file.write_text(credentials.ssh_key.strip() + "\n")
            ssh += ["-o", "IdentitiesOnly=yes", "-i", str(key_file)]
        environment["GIT_SSH_COMMAND"] = shlex.join(ssh)
        origin = git_url_origin(self.url)
        if credentials and credentials.token and origin:
            # Scoped to the repository's origin: a submodule elsewhere never gets the token.
            config.append((f"credential.{origin}.helper", _CREDENTIAL_HELPER))
            environment["MOORAGE_GIT_USERNAME"] = credentials.username or "git"
            environment["MOORAGE_GIT_TOKEN"] = credentials.token
        environment["GIT_CONFIG_COUNT"] = str(len(config))
        for index, (key, value) in enumerate(config):
            environment[f"GIT_CONFIG_KEY_{index}"] = key
            environment[f"GIT_CONFIG_VALUE_{index}"] = value
        return environment

    async def resolve(self, wanted: str) -> tuple[ResolvedRef, str]:
        """The branch or tag `wanted` names (for a pattern, the highest matching version)."""
        refs = await self._ls_remote()
        if is_pattern(wanted) or wanted.startswith(("refs/heads/", "refs/tags/")):
            matching = [ref for ref in refs if ref_matches(wanted, ref)]
            if not matching:
                raise BuildFailedError(f"no branch or tag of {self.url} matches {wanted}")
            chosen = max(matching, key=lambda ref: (_version_key(ref.name), ref.kind == "tag"))
            return chosen, refs[chosen]
        for kind in ("branch", "tag"):
            ref = ResolvedRef(kind, wanted)
            if ref in refs:
                return ref, refs[ref]
        raise BuildFailedError(f"ref {wanted} is neither a branch nor a tag of {self.url}")

    async def _ls_remote(self) -> dict[ResolvedRef, str]:
        lines: list[str] = []
        result = await run_logged(
            ["git", "ls-remote", "--heads", "--tags", "--", self.url],
            self._environment,
            lines.append,
        )
        if result.returncode != 0:
            for line in lines:
                self._output(line)
            raise BuildFailedError(f"cannot read the repository {self.url}: {result.last_error()}")
        refs: dict[ResolvedRef, str] = {}
        for line in lines:
            commit, _, name = line.strip().partition("\t")
            peeled = name.endswith("^{}")
            ref = ResolvedRef.parse(name.removesuffix("^{}"))
            # An annotated tag is listed twice; the peeled line names the commit.
            if ref is not None and (peeled or ref not in refs):
                refs[ref] = commit
        self._output(f"{len(refs)} branches and tags in {self.url}")
        return refs

    async def checkout(self, ref: ResolvedRef, destination: Path) -> Checkout:
        """A shallow clone of `ref` in `destination`, with its submodules at their commits."""
        clone = [
            "git",
            "clone",
            "--depth",
            "1",
            "--single-branch",
            "--no-tags",
            "--branch",
            ref.name,
            "--",
            self.url,
            str(destination),
        ]
        result = await run_logged(clone, self._environment, self._output)
        if result.returncode != 0:
            raise BuildFailedError(
                f"cannot clone {ref.name} from {self.url}: {result.last_error()}"
            )
        if (destination / ".gitmodules").exists():
            await self._update_submodules(destination)
        commit = await self._head(destination)
        self._output(f"checked out {ref.full_name} at {commit}")
        return Checkout(destination, ref, commit)

    async def _update_submodules(self, directory: Path) -> None:
        update = ["git", "submodule", "update", "--init", "--recursive"]
        result = await run_logged(
            [*update, "--depth", "1"], self._environment, self._output, cwd=directory
        )
        if result.returncode == 0:
            return
        # A submodule pinned below its branch tip cannot always be fetched at depth 1.
        self._output("shallow submodule fetch failed; fetching submodules in full")
        result = await run_logged(update, self._environment, self._output, cwd=directory)
        if result.returncode != 0:
            raise BuildFailedError(f"cannot check out the submodules: {result.last_error()}")

    async def _head(self, directory: Path) -> str:
        lines: list[str] = []
        result = await run_logged(
            ["git", "rev-parse", "HEAD"], self._environment, lines.append, cwd=directory
        )
        if result.returncode != 0 or not lines:
            raise BuildFailedError("cannot read the commit of the checkout")
        return lines[-1].strip()


def _version_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """Sorts v1.10 after v1.9, as `git tag --sort=version:refname` does."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part)
        for part in _VERSION_PART.split(name)
        if part
    )
