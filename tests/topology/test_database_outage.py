"""PostgreSQL stopping under a running replica: requests fail with the spec's JSON error and 503,
and the replica serves again once the database is back, without a restart.

The test runs its own PostgreSQL cluster, so that stopping it disturbs no other test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import RunningServer
from tests.databases import PostgresCluster, _pg_bin
from tests.support import push_blob, sha256, unique_repository


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    running = PostgresCluster()
    running.start()
    yield running
    if (running.root / "data" / "postmaster.pid").exists():
        running.stop()


def _pg_ctl(cluster: PostgresCluster, *args: str) -> None:
    cluster._run(_pg_bin("pg_ctl"), "-D", str(cluster.root / "data"), *args)


def _restart(cluster: PostgresCluster) -> None:
    options = f"-k {cluster.socket_dir} -c listen_addresses='' -c fsync=off"
    _pg_ctl(cluster, "-l", str(cluster.root / "log"), "-w", "-o", options, "start")


def test_requests_get_503_while_postgresql_is_down_and_succeed_once_it_is_back(
    cluster: PostgresCluster, tmp_path: Path
) -> None:
    replica = RunningServer(
        tmp_path / "data", database_env={"MOORAGE_DATABASE_URL": cluster.create_database()}
    )
    replica.username, replica.password = replica.create_account("tester", ("test",))
    replica.start()
    repository = unique_repository("outage")
    try:
        with httpx.Client(base_url=replica.url, auth=replica.http_auth, timeout=30) as client:
            digest = push_blob(client, repository, b"stored before the outage")

            _pg_ctl(cluster, "-m", "immediate", "stop")
            refused = [
                client.get("/v2/"),
                client.post(f"/v2/{repository}/blobs/uploads/"),
                client.get(f"/v2/{repository}/blobs/{digest}"),
            ]
            _restart(cluster)
            fetched = _first_success(client, f"/v2/{repository}/blobs/{digest}")
    finally:
        replica.stop()

    for answer in refused:
        assert answer.status_code == 503, answer.text
        assert answer.json()["errors"][0]["code"] == "UNAVAILABLE"
    assert fetched.content == b"stored before the outage"
    assert sha256(fetched.content) == digest
    assert "Traceback" not in replica.log_text()


def _first_success(client: httpx.Client, path: str) -> httpx.Response:
    """The first 200 within a few seconds: pooled connections to the old server fail once."""
    deadline = time.monotonic() + 10
    while True:
        answer = client.get(path)
        if answer.status_code == 200 or time.monotonic() > deadline:
            return answer
        assert answer.status_code == 503, answer.text
        time.sleep(0.2)
