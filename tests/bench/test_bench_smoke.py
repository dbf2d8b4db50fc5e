"""The benchmark script still runs: its smallest mode, on moorage alone, gives every figure."""

from __future__ import annotations

import json
import math
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
