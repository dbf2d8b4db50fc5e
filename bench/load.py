"""Request-rate load: N keep-alive connections sending one request after another for a while.

Runs in a process of its own (`python bench/load.py '<json spec>'`, answer as JSON on stdout)
so that the benchmark's own state never shares an interpreter with the load. Two generators:

- `raw` (the default): asyncio protocols that write a prepared request and parse only the
  status line and Content-Length of the answer. It costs a few percent of a core at the rates
  measured here, so the server, not the client, sets the pace.
- `httpx`: the same load through `httpx.AsyncClient`; handy as a cross-check, but at a few
  thousand requests per second it needs most of a core itself, which on a 2-core machine is
  taken from the server under test.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import cast
from urllib.parse import urlsplit

import httpx

GENERATORS = ("raw", "httpx")

# How long one request may take before the run is declared broken, in seconds.
REQUEST_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class LoadSpec:
    """What to send, over how many connections, for how long."""

    url: str
    method: str
    headers: dict[str, str]
    connections: int
    seconds: float
    generator: str = "raw"


@dataclass
class LoadResult:
    """What a run achieved; `failures` counts answers that were not 200 or broke the protocol."""

    requests: int = 0
    failures: int = 0
    seconds: float = 0.0
    # CPU time the generator itself used: near `seconds` means the client was the bottleneck.
    client_cpu_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_failure: str | None = None

    @property
    def rate(self) -> float:
        """Successful requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, object]:
        """The result without the per-request latencies, plus latency percentiles in ms."""
        ordered = sorted(self.latencies)
        summary = {k: v for k, v in asdict(self).items() if k != "latencies"}
        summary["rate"] = self.rate
        summary["p50_ms"] = 1000 * statistics.median(ordered) if ordered else None
        summary["p99_ms"] = 1000 * ordered[int(0.99 * (len(ordered) - 1))] if ordered else None
        return summary

    def fail(self, reason: str) -> None:
        self.failures += 1
        if self.first_failure is None:
            self.first_failure = reason


class _KeepAliveClient(asyncio.Protocol):
    """One connection: send the request, read one answer, repeat until the deadline."""

    def __init__(self, request: bytes, is_head: bool, deadline: float, result: LoadResult):
        self._request = request
        self._is_head = is_head
        self._deadline = deadline
        self._result = result
        self._buffer = bytearray()
        self._sent_at = 0.0
        self._transport: asyncio.Transport | None = None
        self.finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not derive from asyncio.Transport, but have its methods.
        self._transport = cast(asyncio.Transport, transport)
        self._send()

    def _send(self) -> None:
        assert self._transport is not None
        self._sent_at = time.perf_counter()
        self._transport.write(self._request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end_of_head = self._buffer.find(b"\r\n\r\n")
        if end_of_head < 0:
            return
        head = bytes(self._buffer[:end_of_head]).decode("latin-1")
        status_line, _, header_block = head.partition("\r\n")
        body_length = 0 if self._is_head else _content_length(header_block)
        if body_length is None:
            self._stop("an answer without Content-Length")
            return
        if len(self._buffer) < end_of_head + 4 + body_length:
            return
        del self._buffer[: end_of_head + 4 + body_length]
        now = time.perf_counter()
        if status_line.split(" ", 2)[1] == "200":
            self._result.requests += 1
            self._result.latencies.append(now - self._sent_at)
        else:
            self._result.fail(status_line)
        if now >= self._deadline:
            self._stop(None)
        else:
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.finished.done():
            self._result.fail(f"connection closed by the server: {exc}")
            self.finished.set_result(None)

    def _stop(self, failure: str | None) -> None:
        if failure is not None:
            self._result.fail(failure)
        if not self.finished.done():
            self.finished.set_result(None)
        assert self._transport is not None
        self._transport.close()


def _content_length(header_block: str) -> int | None:
    for line in header_block.split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            return int(value.strip())
    return None


def _request_bytes(spec: LoadSpec) -> bytes:
    parts = urlsplit(spec.url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{spec.method} {target} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{name}: {value}" for name, value in spec.headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def _run_raw(spec: LoadSpec) -> LoadResult:
    loop = asyncio.get_running_loop()
    parts = urlsplit(spec.url)
    result = LoadResult()
    request = _request_bytes(spec)
    started = time.perf_counter()
    deadline = started + spec.seconds
    is_head = spec.method == "HEAD"
    clients = []
    for _ in range(spec.connections):
        _, client = await loop.create_connection(
            lambda: _KeepAliveClient(request, is_head, deadline, result),
            parts.hostname or "127.0.0.1",
            parts.port or 80,
        )
        clients.append(client)
    await asyncio.wait_for(
        asyncio.gather(*(client.finished for client in clients)),
        spec.seconds + REQUEST_TIMEOUT_SECONDS,
    )
    result.seconds = time.perf_counter() - started
    return result


async def _run_httpx(spec: LoadSpec) -> LoadResult:
    result = LoadResult()
    limits = httpx.Limits(max_connections=spec.connections)
    async with httpx.AsyncClient(
        headers=spec.headers, limits=limits, timeout=REQUEST_TIMEOUT_SECONDS
    ) as client:
        started = time.perf_counter()
        deadline = started + spec.seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                sent_at = time.perf_counter()
                response = await client.request(spec.method, spec.url)
                if response.status_code == 200:
                    result.requests += 1
                    result.latencies.append(time.perf_counter() - sent_at)
                else:
                    result.fail(f"HTTP {response.status_code}")

        await asyncio.gather(*(worker() for _ in range(spec.connections)))
        result.seconds = time.perf_counter() - started
    return result


def run(spec: LoadSpec) -> LoadResult:
    """Apply the load in this process, on uvloop when it is installed."""
    runner = _run_raw if spec.generator == "raw" else _run_httpx
    cpu_started = time.process_time()
    try:
        import uvloop
    except ImportError:
        result = asyncio.run(runner(spec))
    else:
        result = uvloop.run(runner(spec))
    result.client_cpu_seconds = time.process_time() - cpu_started
    return result


def main() -> None:
    spec = LoadSpec(**json.loads(sys.argv[1]))
    json.dump(run(spec).summary(), sys.stdout)


if __name__ == "__main__":
    main()
