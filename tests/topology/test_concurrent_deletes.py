"""Deletes of one tag or manifest sent at the same moment, as from two replicas, on PostgreSQL:
one succeeds, the others find nothing, and the restore window holds one entry."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tests.conftest import RunningServer
from tests.databases import postgresql_database_url
from tests.support import push_image, unique_repository

ROUNDS = 3
SENDERS = 8


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = RunningServer(
        tmp_path_factory.mktemp("deletes") / "data",
        env={"MOORAGE_DELETED_RETENTION": "7d"},
        database_env={"MOORAGE_DATABASE_URL": postgresql_database_url()},
    )
    running.username, running.password = running.create_account("tester", ("test",))
    running.start()
    yield running
    running.stop()


def _all_at_once(replica: RunningServer, path: str) -> list[httpx.Response]:
    clients = [
        httpx.Client(base_url=replica.url, auth=replica.http_auth, timeout=30)
        for _ in range(SENDERS)
    ]
    for client in clients:
        client.get("/v2/")  # logged in and connected before the race starts
    start = threading.Barrier(SENDERS)
    answers: list[httpx.Response] = []

    def send(client: httpx.Client) -> None:
        start.wait()
        answers.append(client.delete(path))

    threads = [threading.Thread(target=send, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for client in clients:
        client.close()
    return answers


@pytest.mark.parametrize("by", ["tag", "digest"])
def test_one_of_concurrent_deletes_succeeds(
    replica: RunningServer, tmp_path: Path, by: str
) -> None:
    repository = unique_repository(f"delete-{by}")
    with httpx.Client(base_url=replica.url, auth=replica.http_auth, timeout=30) as client:
        digests = [push_image(client, repository, f"t{round}") for round in range(ROUNDS)]

    for round, digest in enumerate(digests):
        reference = f"t{round}" if by == "tag" else digest
        answers = _all_at_once(replica, f"/v2/{repository}/manifests/{reference}")

        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [202] + [404] * (SENDERS - 1), statuses
        for answer in answers:
            if answer.status_code == 404:
                assert answer.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"

    listed = replica.cli("deleted", "list", "test")
    assert listed.returncode == 0, listed.stderr
    restorable = [line for line in listed.stdout.splitlines() if repository in line]
    assert len(restorable) == ROUNDS, listed.stdout
