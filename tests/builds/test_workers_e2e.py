"""`moorage worker` processes beside a server that runs none: one run per job, lost workers."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from tests.builds.buildsupport import create_rule, log_text, run_build, wait_build
from tests.builds.conftest import BUILD_ENVIRONMENT
from tests.builds.gitrepos import new_repository
from tests.conftest import RunningServer

SERVER_ENVIRONMENT = {**BUILD_ENVIRONMENT, "MOORAGE_BUILDS__IN_PROCESS_WORKER": "false"}


@pytest.fixture(scope="module")
def worker_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server whose builds only `moorage worker` processes run."""
    running = RunningServer(tmp_path_factory.mktemp("workers") / "data", env=SERVER_ENVIRONMENT)
    running.username, running.password = running.create_account("tester", ("test",))
    running.start()
    yield running
    running.stop()
    assert "Traceback" not in running.log_text()


@pytest.fixture
def api(worker_server: RunningServer) -> Iterator[httpx.Client]:
    auth = ("tester", "account-tester-secret")
    with httpx.Client(base_url=f"{worker_server.url}/api/v1", auth=auth, timeout=60) as client:
        yield client


@contextmanager
def worker(server: RunningServer, log: Path, **settings: str) -> Iterator[subprocess.Popen[bytes]]:
    """A `moorage worker` process for the server's deployment."""
    environment = {
        **server.environment,
        "MOORAGE_LISTEN": server.host,
        **{f"MOORAGE_BUILDS__{name.upper()}": value for name, value in settings.items()},
    }
    command = [sys.executable, "-m", "moorage", "worker", "--data-dir", str(server.data_dir)]
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=environment
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


@pytest.fixture
def hanging_git_url() -> Iterator[str]:
    """A git URL whose server accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/slow.git"
    stop.set()
    thread.join()
    for connection in accepted:
        connection.close()
    listener.close()


def test_two_workers_never_run_the_same_job(
    worker_server: RunningServer, api: httpx.Client, tmp_path: Path
) -> None:
    repo = new_repository(tmp_path / "repo", {"Dockerfile": "FROM scratch\nCOPY f /f\n", "f": "x"})
    rules = [create_rule(api, git_url=f"file://{repo}", ref="main") for _ in range(2)]
    queued = [
        api.post(f"/builds/rules/{rule['id']}/runs").json()["id"] for rule in rules for _ in (1, 2)
    ]

    with worker(worker_server, tmp_path / "a.log"), worker(worker_server, tmp_path / "b.log"):
        builds = [wait_build(api, build_id) for build_id in queued]

    assert [build["state"] for build in builds] == ["succeeded"] * len(queued)
    assert len({build["worker_id"] for build in builds}) == 2, "both workers took builds"
    for build in builds:
        log = log_text(api, build["id"])
        assert log.count(f"[moorage] build {build['id']} of") == 1, log
        assert log.count("Cloning into") == 1


def test_a_killed_worker_leaves_its_build_failed_not_running(
    worker_server: RunningServer, api: httpx.Client, tmp_path: Path, hanging_git_url: str
) -> None:
    rule = create_rule(api, git_url=hanging_git_url, ref="main")
    build_id = api.post(f"/builds/rules/{rule['id']}/runs").json()["id"]

    with worker(worker_server, tmp_path / "doomed.log") as doomed:
        deadline = time.monotonic() + 60
        while api.get(f"/builds/{build_id}").json()["state"] != "running":
            assert time.monotonic() < deadline, "the worker never claimed the build"
            time.sleep(0.3)
        doomed.kill()
        doomed.wait()
    assert api.get(f"/builds/{build_id}").json()["state"] == "running"
    with worker(worker_server, tmp_path / "survivor.log"):
        build = wait_build(api, build_id)

    assert build["state"] == "failed"
    assert "stopped answering" in build["reason"]


def test_the_time_limit_kills_the_build(
    worker_server: RunningServer, api: httpx.Client, tmp_path: Path, hanging_git_url: str
) -> None:
    rule = create_rule(api, git_url=hanging_git_url, ref="main")

    with worker(worker_server, tmp_path / "worker.log", timeout_seconds="3"):
        build = run_build(api, rule["id"])

    assert build["state"] == "timed_out"
    assert build["reason"] == "the build ran over its time limit of 3 s"
    assert 3 <= build["duration_seconds"] < 15
    assert "timed_out: the build ran over its time limit" in log_text(api, build["id"])


def test_a_worker_runs_at_most_its_limit_of_builds_at_once(
    worker_server: RunningServer, api: httpx.Client, tmp_path: Path, hanging_git_url: str
) -> None:
    rule = create_rule(api, git_url=hanging_git_url, ref="main")
    queued = [api.post(f"/builds/rules/{rule['id']}/runs").json()["id"] for _ in range(3)]

    def states() -> list[str]:
        listed = api.get("/builds", params={"rule_id": rule["id"]}).json()
        return sorted(build["state"] for build in listed)

    with worker(worker_server, tmp_path / "worker.log", max_concurrent="2"):
        deadline = time.monotonic() + 60
        while states() != ["queued", "running", "running"]:
            assert time.monotonic() < deadline, states()
            time.sleep(0.3)
        time.sleep(1.5)
        assert states() == ["queued", "running", "running"], "the third waits for a free slot"
        for build_id in queued:
            assert api.post(f"/builds/{build_id}/cancel").status_code == 200
        finished = [wait_build(api, build_id) for build_id in queued]

    assert [build["state"] for build in finished] == ["cancelled"] * 3
