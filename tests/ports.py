"""Free loopback ports for the servers tests start, and waiting until one answers.

Under pytest-xdist each test process takes ports from a block of its own, below the range the
kernel hands out for `bind(("127.0.0.1", 0))`: two processes never pick the same port, and a
port a process just released is not picked again until its block wraps around.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx

FIRST_PORT = 10_000
PORTS_PER_PROCESS = 2_500
# gw0, gw1, ... under pytest-xdist; a plain pytest run is process 0.
_PROCESS = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
_BLOCK_START = FIRST_PORT + PORTS_PER_PROCESS * (_PROCESS % 8)
# Starting at an offset of the process id, so that two test runs at once rarely meet.
_OFFSET = os.getpid() % PORTS_PER_PROCESS
_CANDIDATES = itertools.cycle(
    [_BLOCK_START + (_OFFSET + step) % PORTS_PER_PROCESS for step in range(PORTS_PER_PROCESS)]
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    for _ in range(PORTS_PER_PROCESS):
        port = next(_CANDIDATES)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free loopback port left in this test process's block")


def wait_until_answering(
    url: str, process: subprocess.Popen[bytes], name: str, log_path: Path
) -> None:
    """Return once `url` answers any HTTP request; raise, with the log, if `process` exits first
    or 30 s pass."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{log_path.read_text()}")
        try:
            httpx.get(url, timeout=1, verify=False)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} did not start:\n{log_path.read_text()}")
