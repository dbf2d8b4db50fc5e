"""Side-by-side benchmark of moorage and the reference registry (`docker-registry`).

Starts both on loopback ports with fresh data dirs, runs every workload against each in
turn (alternating which goes first, for several rounds), prints every figure as it is
measured, then a table of medians with the ratio moorage/reference.

    .venv/bin/python bench/run.py             # the full run: 5-10 minutes on 2 cores
    .venv/bin/python bench/run.py --quick     # a smoke run, under a minute
    .venv/bin/python bench/run.py --storage s3 # both registries keep blobs in one moto S3
    .venv/bin/python bench/run.py --help      # sizes, durations, credentials
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from registry_client import BenchError, Credentials, CredentialsNeededError, Target, open_target
from s3 import (
    S3Traffic,
    check_stored,
    create_bucket,
    moorage_environment,
    moto_server,
    reference_storage,
)
from servers import Server, create_moorage_account, moorage_server, reference_server
from workloads import (
    MIB,
    NAMESPACE,
    SCOPES,
    Figure,
    Seeded,
    Sizes,
    describe,
    manifest_rate,
    pull_rate,
    push_chunked_rate,
    push_monolithic_rate,
    seed,
    tag_list_latency,
    warm_up,
)


@dataclass(frozen=True)
class Defaults:
    """The sizes and durations a run uses unless an option says otherwise."""

    rounds: int
    blob_mib: float
    blobs: int
    chunk_mib: float
    pulls: int
    rate_seconds: float
    warmup_seconds: float
    concurrency: str
    tags: int
    tag_list_requests: int


FULL = Defaults(3, 32.0, 4, 4.0, 8, 5.0, 1.0, "16,64", 5000, 20)
QUICK = Defaults(1, 1.0, 2, 0.25, 2, 0.5, 0.0, "16,64", 20, 3)

Measure = Callable[[Target, Seeded], Figure]
# The servers a run compares, in the order of the table's columns.
SERVER_NAMES = ("moorage", "reference")


@dataclass(frozen=True)
class Workload:
    """One row of the table: what is measured, in which unit, and which direction is better."""

    key: str
    label: str
    unit: str
    higher_is_better: bool
    measure: Measure
    # What the server's CPU time is put per: "MB" or "request"; empty for no CPU figure.
    work_unit: str = ""


@dataclass(frozen=True)
class S3Side:
    """The S3 server of an `--storage s3` run, and the bucket of each registry."""

    server: Server
    traffic: S3Traffic
    buckets: dict[str, str]


@dataclass
class Row:
    """The figures measured for one workload, per server, with server CPU ms per work unit.

    On S3 also the S3 server's CPU ms per work unit, and the requests it answered, for each
    registry's measurements.
    """

    workload: Workload
    samples: dict[str, list[float]] = field(default_factory=dict)
    cpu: dict[str, list[float]] = field(default_factory=dict)
    s3_cpu: dict[str, list[float]] = field(default_factory=dict)
    s3_requests: dict[str, list[dict[str, int]]] = field(default_factory=dict)

    def median(self, server: str) -> float | None:
        return _median(self.samples.get(server))

    def ratio(self) -> float | None:
        return _ratio(self.median("moorage"), self.median("reference"))

    def cpu_median(self, server: str) -> float | None:
        return _median(self.cpu.get(server))

    def cpu_ratio(self) -> float | None:
        return _ratio(self.cpu_median("moorage"), self.cpu_median("reference"))

    def s3_cpu_median(self, server: str) -> float | None:
        return _median(self.s3_cpu.get(server))


def _median(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def _ratio(moorage: float | None, reference: float | None) -> float | None:
    if moorage is None or reference is None or reference == 0:
        return None
    return moorage / reference


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--moorage-only", action="store_true", help="benchmark moorage alone (no reference)"
    )
    sizes = parser.add_argument_group("sizes and durations (defaults: full run / --quick)")

    def sized(name: str, kind: type, help_text: str) -> None:
        sizes.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            type=kind,
            default=None,
            help=f"{help_text} (default {getattr(FULL, name)} / {getattr(QUICK, name)})",
        )

    sized("rounds", int, "rounds per workload; each round runs both servers, order alternating")
    sized("blob_mib", float, "size of each pushed and pulled blob, MiB")
    sized("blobs", int, "blobs pushed per round and per push workload")
    sized("chunk_mib", float, "PATCH size of the chunked push, MiB")
    sized("pulls", int, "blob GETs per round")
    sized("rate_seconds", float, "duration of each request-rate run, seconds")
    sized("warmup_seconds", float, "untimed load before the request-rate runs, seconds")
    sized("concurrency", str, "concurrent clients of the request-rate runs, comma-separated")
    sized("tags", int, "tags in the repository whose tag list is timed")
    sized("tag_list_requests", int, "tag list requests per round (the median is kept)")
    parser.add_argument(
        "--workloads",
        help="only these workloads, comma-separated keys (push_monolithic, pull, tag_list, ...)",
    )
    parser.add_argument(
        "--storage",
        choices=("filesystem", "s3"),
        default="filesystem",
        help="where both registries keep blobs: a data dir each, or a bucket each in one moto"
        " S3 server on loopback (default filesystem)",
    )
    parser.add_argument(
        "--s3-redirect",
        action="store_true",
        help="with --storage s3: blob GETs answer 307 to a presigned S3 URL, on both registries",
    )
    parser.add_argument(
        "--load-generator",
        choices=("raw", "httpx"),
        default="raw",
        help="client for the request-rate runs (see bench/load.py; default raw)",
    )
    access = parser.add_argument_group("moorage access")
    access.add_argument("--username", default=os.environ.get("MOORAGE_BENCH_USERNAME"))
    access.add_argument("--password", default=os.environ.get("MOORAGE_BENCH_PASSWORD"))
    access.add_argument(
        "--moorage-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="environment variable for the moorage server (repeatable), e.g. to set up accounts",
    )
    output = parser.add_argument_group("output")
    output.add_argument("--json", type=Path, help="also write every sample and median here")
    output.add_argument("--keep", action="store_true", help="keep the data dirs and logs")
    return parser.parse_args(argv)


def sizes_of(arguments: argparse.Namespace) -> tuple[Sizes, int]:
    """The workload sizes and the number of rounds, with --quick and explicit options applied."""
    base = QUICK if arguments.quick else FULL
    given = {
        option.name: getattr(arguments, option.name)
        for option in fields(Defaults)
        if getattr(arguments, option.name) is not None
    }
    chosen = replace(base, **given)
    sizes = Sizes(
        blob_bytes=int(chosen.blob_mib * MIB),
        blobs_per_round=chosen.blobs,
        chunk_bytes=int(chosen.chunk_mib * MIB),
        pulls_per_round=chosen.pulls,
        rate_seconds=chosen.rate_seconds,
        warmup_seconds=chosen.warmup_seconds,
        concurrency=tuple(int(part) for part in chosen.concurrency.split(",")),
        tag_count=chosen.tags,
        tag_list_requests=chosen.tag_list_requests,
        load_generator=arguments.load_generator,
    )
    return sizes, chosen.rounds


def workloads_for(sizes: Sizes) -> list[Workload]:
    """Every measured workload, in the order they run."""
    listed = [
        Workload(
            "push_monolithic",
            "blob push, monolithic",
            "MB/s",
            True,
            lambda target, _: push_monolithic_rate(target, sizes),
            "MB",
        ),
        Workload(
            "push_chunked",
            "blob push, chunked",
            "MB/s",
            True,
            lambda target, _: push_chunked_rate(target, sizes),
            "MB",
        ),
        Workload("pull", "blob pull", "MB/s", True, lambda t, s: pull_rate(t, sizes, s), "MB"),
    ]
    for method in ("HEAD", "GET"):
        for connections in sizes.concurrency:
            listed.append(
                Workload(
                    f"manifest_{method.lower()}_{connections}",
                    f"manifest {method}, {connections} clients",
                    "req/s",
                    True,
                    _manifest_measure(sizes, method, connections),
                    "request",
                )
            )
    listed.append(
        Workload(
            "tag_list",
            f"tag list, {sizes.tag_count} tags",
            "ms",
            False,
            lambda target, _: tag_list_latency(target, sizes),
            "request",
        )
    )
    return listed


def _manifest_measure(sizes: Sizes, method: str, connections: int) -> Measure:
    return lambda target, _: manifest_rate(target, sizes, method, connections)


def versions(storage: str) -> dict[str, str]:
    """What ran: software versions and the machine."""
    found = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "moorage": f"{metadata.version('moorage')} from {_moorage_source()}",
        "python": platform.python_version(),
        "uvicorn": metadata.version("uvicorn"),
        "storage": storage,
        "kernel": platform.release(),
        "cpus": str(os.cpu_count()),
        "cpu": _cpu_model(),
        "load average before the run": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    try:
        found["reference"] = subprocess.run(
            ["docker-registry", "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except FileNotFoundError:
        found["reference"] = "not installed"
    if storage.startswith("s3"):
        found["moto"] = metadata.version("moto")
        found["boto3"] = metadata.version("boto3")
    return found


def _moorage_source() -> str:
    """Where the server's `moorage` package comes from, with its git revision if it has one."""
    located = subprocess.run(
        [sys.executable, "-c", "import moorage; print(moorage.__file__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    package = Path(located.stdout.strip()).parent
    revision = subprocess.run(
        ["git", "-C", str(package), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return f"{package} ({revision or 'not a git checkout'})"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


@contextmanager
def running(servers: list[Server]) -> Iterator[None]:
    """Start every server; stop them all however the block ends."""
    try:
        for server in servers:
            server.start()
        yield
    finally:
        for server in servers:
            server.stop()


def open_server(server: Server, credentials: Credentials | None) -> Target:
    """The server as a target; moorage with the given account, or one made for the run."""
    if server.name != "moorage":
        return open_target(server.name, server.url, None, SCOPES)
    try:
        return open_target(server.name, server.url, credentials, SCOPES)
    except CredentialsNeededError:
        # The benchmark owns this server and its data dir, so it can make itself an account.
        account = create_moorage_account(server, NAMESPACE)
        return open_target(server.name, server.url, account, SCOPES)


def measure_all(
    targets: list[Target],
    servers: dict[str, Server],
    seeded: dict[str, Seeded],
    workloads: list[Workload],
    rounds: int,
    s3: S3Side | None = None,
) -> list[Row]:
    """Run each workload for `rounds` rounds, alternating which server goes first."""
    rows = []
    for workload in workloads:
        row = Row(workload)
        for round_number in range(rounds):
            order = targets if round_number % 2 == 0 else list(reversed(targets))
            for target in order:
                measure_once(workload, target, servers[target.name], seeded[target.name], row, s3)
                print(
                    f"  {workload.label:<28} round {round_number + 1}/{rounds}"
                    f"  {target.name:<9} {row.samples[target.name][-1]:10.1f} {workload.unit:<5}"
                    f"  server CPU {row.cpu[target.name][-1]:6.2f} ms/{workload.work_unit}"
                    + _s3_note(row, target.name),
                    flush=True,
                )
        rows.append(row)
    return rows


def measure_once(
    workload: Workload, target: Target, server: Server, seeded: Seeded, row: Row, s3: S3Side | None
) -> None:
    """Measure the workload once against one server; add the figures to `row`."""
    cpu_before = server.cpu_seconds()
    s3_cpu_before = s3.server.cpu_seconds() if s3 else 0.0
    s3_mark = s3.traffic.mark() if s3 else 0
    figure = workload.measure(target, seeded)
    cpu_ms = 1000 * (server.cpu_seconds() - cpu_before) / figure.work
    row.samples.setdefault(target.name, []).append(figure.value)
    row.cpu.setdefault(target.name, []).append(cpu_ms)
    if s3 is not None:
        # The registries take turns, so what moto did meanwhile was done for this one.
        s3_cpu_ms = 1000 * (s3.server.cpu_seconds() - s3_cpu_before) / figure.work
        requests = s3.traffic.since(s3_mark, s3.buckets[target.name])
        row.s3_cpu.setdefault(target.name, []).append(s3_cpu_ms)
        row.s3_requests.setdefault(target.name, []).append(dict(sorted(requests.items())))


def _s3_note(row: Row, server: str) -> str:
    if server not in row.s3_cpu:
        return ""
    requests = row.s3_requests[server][-1]
    listed = ", ".join(f"{count} {operation}" for operation, count in requests.items())
    return (
        f"  S3 CPU {row.s3_cpu[server][-1]:6.2f} ms/{row.workload.work_unit}"
        f"  S3 requests: {listed or 'none'}"
    )


def s3_requests_table(rows: list[Row]) -> str:
    """The S3 requests each registry made per round of each workload (medians per operation)."""
    lines = [
        "| workload | S3 requests per round, moorage | S3 requests per round, reference |",
        "| --- | --- | --- |",
    ]
    for row in rows:
        if not row.s3_requests:
            continue
        cells = [_median_requests(row.s3_requests.get(name, [])) for name in SERVER_NAMES]
        lines.append(f"| {row.workload.label} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def _median_requests(rounds: list[dict[str, int]]) -> str:
    if not rounds:
        return "-"
    operations = sorted({operation for counted in rounds for operation in counted})
    medians = Counter(
        {
            operation: statistics.median(counted.get(operation, 0) for counted in rounds)
            for operation in operations
        }
    )
    total = sum(medians.values())
    listed = ", ".join(f"{_count(count)} {operation}" for operation, count in medians.items())
    return f"{_count(total)}: {listed}"


def _count(value: float) -> str:
    return f"{value:g}"


def peak_rss_row(servers: list[Server]) -> Row:
    """Peak resident memory of each server over the whole run, in MiB."""
    workload = Workload("peak_rss", "server peak RSS", "MiB", False, lambda *_: Figure(0, 0))
    row = Row(workload)
    for server in servers:
        row.samples[server.name] = [server.peak_rss_bytes() / MIB]
    return row


def table(rows: list[Row]) -> str:
    """The medians as a Markdown table: the figures, then the server CPU per unit of work.

    On S3, two more columns: the S3 server's CPU per unit of work for each registry.
    """
    with_s3 = any(row.s3_cpu for row in rows)
    s3_header = " S3 CPU, moorage | S3 CPU, reference |" if with_s3 else ""
    lines = [
        "| workload | unit | moorage | reference | moorage/reference | better"
        f" | server CPU, moorage | server CPU, reference | CPU moorage/reference |{s3_header}",
        "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |"
        + (" ---: | ---: |" if with_s3 else ""),
    ]
    for row in rows:
        better = "higher" if row.workload.higher_is_better else "lower"
        cpu_unit = f" ms/{row.workload.work_unit}" if row.workload.work_unit else ""
        line = (
            f"| {row.workload.label} | {row.workload.unit} | {_figure(row.median('moorage'))}"
            f" | {_figure(row.median('reference'))} | {_times(row.ratio())} | {better}"
            f" | {_figure(row.cpu_median('moorage'), cpu_unit)}"
            f" | {_figure(row.cpu_median('reference'), cpu_unit)} | {_times(row.cpu_ratio())} |"
        )
        if with_s3:
            line += "".join(
                f" {_figure(row.s3_cpu_median(name), cpu_unit)} |" for name in SERVER_NAMES
            )
        lines.append(line)
    return "\n".join(lines)


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def _figure(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.2f}{unit}"
    return f"{value:.1f}{unit}" if value < 100 else f"{value:.0f}{unit}"


def report_json(
    path: Path, rows: list[Row], found: dict[str, str], sizes: Sizes, rounds: int
) -> None:
    results = {
        row.workload.key: {
            "label": row.workload.label,
            "unit": row.workload.unit,
            "higher_is_better": row.workload.higher_is_better,
            "samples": row.samples,
            "median": {name: row.median(name) for name in row.samples},
            "ratio": row.ratio(),
            "server_cpu_ms_per_unit": row.cpu,
            "server_cpu_unit": row.workload.work_unit,
            "cpu_ratio": row.cpu_ratio(),
            "s3_cpu_ms_per_unit": row.s3_cpu,
            "s3_requests": row.s3_requests,
        }
        for row in rows
    }
    document = {"versions": found, "sizes": describe(sizes), "rounds": rounds, "results": results}
    path.write_text(json.dumps(document, indent=2) + "\n")


def benchmark(arguments: argparse.Namespace, workdir: Path) -> None:
    sizes, rounds = sizes_of(arguments)
    storage = arguments.storage
    if arguments.s3_redirect:
        if storage != "s3":
            raise BenchError("--s3-redirect needs --storage s3")
        storage = "s3 with redirects"
    selected = workloads_for(sizes)
    if arguments.workloads:
        wanted = set(arguments.workloads.split(","))
        unknown = wanted - {workload.key for workload in selected}
        if unknown:
            raise BenchError(f"no such workloads: {', '.join(sorted(unknown))}")
        selected = [workload for workload in selected if workload.key in wanted]
    if "tag_list" not in {workload.key for workload in selected}:
        # Nothing reads the many tags then; on S3 filling them is most of the setup.
        sizes = replace(sizes, tag_count=0)

    found = versions(storage)
    for name, value in found.items():
        print(f"{name}: {value}")
    print(f"sizes: {describe(sizes)}, rounds: {rounds}", flush=True)
    if os.getloadavg()[0] > (os.cpu_count() or 1) / 2:
        print("warning: the machine is busy; rates will be noisy, CPU per unit less so")

    with s3_storage(arguments, workdir) as s3:
        rows = measure_servers(arguments, workdir, sizes, selected, rounds, s3)
        s3_peak_rss = s3.server.peak_rss_bytes() if s3 is not None else 0

    found["load average after the run"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"\nload average after the run: {found['load average after the run']}")
    print(table(rows))
    if s3 is not None:
        print(f"\n{s3_requests_table(rows)}")
        print(f"\nS3 server (moto) peak RSS: {s3_peak_rss / MIB:.0f} MiB")
    if arguments.json is not None:
        report_json(arguments.json, rows, found, sizes, rounds)


@contextmanager
def s3_storage(arguments: argparse.Namespace, workdir: Path) -> Iterator[S3Side | None]:
    """With `--storage s3`, a running moto server and a bucket per registry; else None."""
    if arguments.storage != "s3":
        yield None
        return
    server = moto_server(workdir)
    with running([server]):
        buckets = {name: f"{name}-bench" for name in SERVER_NAMES}
        for bucket in buckets.values():
            create_bucket(server.url, bucket)
        yield S3Side(server, S3Traffic(server.log_path), buckets)


def measure_servers(
    arguments: argparse.Namespace,
    workdir: Path,
    sizes: Sizes,
    selected: list[Workload],
    rounds: int,
    s3: S3Side | None,
) -> list[Row]:
    """Start the registries, seed them, measure every selected workload, stop them."""
    extra_env = dict(item.split("=", 1) for item in arguments.moorage_env)
    reference_driver = None
    if s3 is not None:
        s3_env = moorage_environment(s3.server.url, s3.buckets["moorage"], arguments.s3_redirect)
        extra_env = {**s3_env, **extra_env}
        reference_driver = reference_storage(
            s3.server.url, s3.buckets["reference"], arguments.s3_redirect
        )
    servers = [moorage_server(workdir, extra_env)]
    if not arguments.moorage_only:
        servers.append(reference_server(workdir, reference_driver))
    credentials = None
    if arguments.username is not None and arguments.password is not None:
        credentials = Credentials(arguments.username, arguments.password)

    with running(servers):
        targets = [open_server(server, credentials) for server in servers]
        seeded = {}
        for target in targets:
            started = time.perf_counter()
            seeded[target.name] = seed(target, sizes)
            warm_up(target, sizes)
            print(f"{target.name}: seeded in {time.perf_counter() - started:.1f}s", flush=True)
        by_name = {server.name: server for server in servers}
        rows = measure_all(targets, by_name, seeded, selected, rounds, s3)
        rows.append(peak_rss_row(servers))
    if s3 is not None:
        stored = {server.name: s3.buckets[server.name] for server in servers}
        seeded_bytes = sizes.blob_bytes * sizes.blobs_per_round
        for line in check_stored(s3.server.url, stored, seeded_bytes):
            print(line)
    return rows


def main(argv: list[str]) -> int:
    arguments = parse_arguments(argv)
    workdir = Path(tempfile.mkdtemp(prefix="moorage-bench-"))
    try:
        benchmark(arguments, workdir)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        for log in sorted(workdir.glob("*.log")):
            print(f"--- {log} (last lines) ---\n{_tail(log)}", file=sys.stderr)
        return 2
    finally:
        if arguments.keep:
            print(f"data dirs and logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
