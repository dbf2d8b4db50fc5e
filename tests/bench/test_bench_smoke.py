"""The benchmark script still runs: its smallest mode, on moorage alone, gives every figure."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "run.py"
WORKLOADS = {
    "push_monolithic",
    "push_chunked",
    "pull",
    "manifest_head_16",
    "manifest_head_64",
    "manifest_get_16",
    "manifest_get_64",
    "tag_list",
    "peak_rss",
}


@pytest.mark.parametrize("generator", ["raw", "httpx"])
def test_quick_run_measures_every_workload(tmp_path: Path, generator: str) -> None:
    report = tmp_path / "bench.json"
    finished = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--quick",
            "--moorage-only",
            "--load-generator",
            generator,
            "--json",
            str(report),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr

    results = json.loads(report.read_text())["results"]
    assert set(results) == WORKLOADS
    for key, result in results.items():
        figure = result["median"]["moorage"]
        assert isinstance(figure, float) and math.isfinite(figure) and figure > 0, key
        assert "reference" not in result["median"], key
    assert "| blob pull | MB/s |" in finished.stdout


@pytest.mark.parametrize("redirect", [False, True], ids=["streamed", "redirected"])
def test_quick_run_on_s3_stores_in_the_buckets(tmp_path: Path, redirect: bool) -> None:
    # Both registries when the reference is installed (make test installs it), else moorage.
    servers = ["moorage", "reference"] if shutil.which("docker-registry") else ["moorage"]
    report = tmp_path / "bench.json"
    command = [sys.executable, str(BENCH), "--quick", "--storage", "s3", "--json", str(report)]
    command += ["--workloads", "push_monolithic,push_chunked,pull,manifest_get_16"]
    if redirect:
        command.append("--s3-redirect")
    if servers == ["moorage"]:
        command.append("--moorage-only")
    finished = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert finished.returncode == 0, finished.stdout + finished.stderr

    document = json.loads(report.read_text())
    assert document["versions"]["storage"] == ("s3 with redirects" if redirect else "s3")
    results = document["results"]
    for server in servers:
        assert f"{server}: bucket {server}-bench holds" in finished.stdout
        for key in ("push_monolithic", "push_chunked", "pull"):
            assert results[key]["median"][server] > 0, (key, server)
            requests = results[key]["s3_requests"][server]
            assert requests and all(sum(counted.values()) > 0 for counted in requests), key
        # Pushes write objects; a pull reads the blob from S3, through the registry or not.
        assert any(
            "put" in operation for operation in results["push_monolithic"]["s3_requests"][server][0]
        )
        assert "get" in results["pull"]["s3_requests"][server][0]
