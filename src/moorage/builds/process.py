"""Running a build's commands: every output line to the log as it comes, killed on cancel."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

LineSink = Callable[[str], None]

# The child dies with the worker: a killed worker must not leave a build pushing on its own.
_SETPRIV = shutil.which("setpriv")
_READ_SIZE = 65536
_TAIL_LINES = 40
# Variables a build's commands see from the worker; nothing else leaks into them.
PASSED_VARIABLES = ("PATH", "LANG", "LC_ALL", "TZ")


@dataclass(frozen=True, slots=True)
class Completed:
    """How a command ended, and its last lines for the failure reason."""

    returncode: int
    tail: list[str]

    def last_error(self, markers: Sequence[str] = ("fatal:", "error:", "Error:")) -> str:
        """The last line that reads like an error, else the last line printed."""
        for line in reversed(self.tail):
            if any(marker in line for marker in markers):
                return line.strip()
        return self.tail[-1].strip() if self.tail else f"exit status {self.returncode}"


def base_environment(home: Path) -> dict[str, str]:
    """A clean environment for a build command, with `home` as its HOME and TMPDIR."""
    environment = {name: os.environ[name] for name in PASSED_VARIABLES if name in os.environ}
    environment.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    temporary = home / "tmp"
    temporary.mkdir(parents=True, exist_ok=True)
    environment.update(HOME=str(home), TMPDIR=str(temporary))
    return environment


async def run_logged(
    argv: Sequence[str],
    environment: Mapping[str, str],
    output: LineSink,
    cwd: Path | None = None,
) -> Completed:
    """Run `argv`, passing each line of its stdout and stderr to `output` as it arrives."""
    command = [_SETPRIV, "--pdeathsig", "KILL", "--", *argv] if _SETPRIV else list(argv)
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=dict(environment),
        cwd=cwd,
        start_new_session=True,
    )
    tail: deque[str] = deque(maxlen=_TAIL_LINES)

    def emit(line: str) -> None:
        if line.strip():
            tail.append(line)
            output(line)

    try:
        assert process.stdout is not None
        await _pump(process.stdout, emit)
        returncode = await process.wait()
    except BaseException:
        _kill_group(process.pid)
        with contextlib.suppress(Exception):
            await asyncio.shield(process.wait())
        raise
    return Completed(returncode, list(tail))


async def _pump(stream: asyncio.StreamReader, emit: LineSink) -> None:
    pending = ""
    while chunk := await stream.read(_READ_SIZE):
        pending += chunk.decode(errors="replace").replace("\r\n", "\n").replace("\r", "\n")
        *lines, pending = pending.split("\n")
        for line in lines:
            emit(line)
    if pending:
        emit(pending)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
