"""Garbage collection under fire: pushes, deletions, pulls and collections at once, for a while.

Pushers send images that share base layers (skipping blobs the registry has, or mounting them
from another repository, as real clients do), a deleter removes tags, manifests and whole
repositories, readers pull what should exist, and collections run both on the server's own
schedule and from `moorage gc` processes on the same data dir, so they contend for the lease.
Afterwards every image that should exist is pulled and checked by digest, storage holds
exactly the blobs those images need, fsck is clean, and the server never answered 5xx.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from tests.conftest import RunningServer
from tests.e2e.clients import Skopeo
from tests.support import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    sha256,
)

# How long the clients hammer the registry at least (longer while too little has happened);
# the checks afterwards take a while more.
SECONDS = float(os.environ.get("MOORAGE_STRESS_SECONDS", "25"))
GRACE_SECONDS = 2.0
REPOSITORIES = [f"test/stress-{number}" for number in range(6)]
PUSHERS = 4
READERS = 2
ACCEPT = f"{OCI_MANIFEST}, {OCI_INDEX}"
TOTAL = re.compile(r"^(\d+) blobs, (\d+) bytes reclaimed$", re.MULTILINE)
SERVER_ERROR = re.compile(r'"status": 5\d\d')


class PushFailedError(Exception):
    """The registry refused a step of a push."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.request.method} {response.request.url.path}: {response.text}")
        codes = response.json().get("errors", []) if response.content else []
        self.code = codes[0]["code"] if codes else str(response.status_code)


@dataclass(frozen=True, slots=True)
class Pushed:
    """An image (or index) that should exist: its tag, digest and everything it needs."""

    repository: str
    tag: str
    digest: str
    blobs: frozenset[str]
    children: tuple[str, ...] = ()


@dataclass
class Stress:
    """What the threads share: what should exist, what went wrong, what happened."""

    server: RunningServer
    expected: dict[tuple[str, str], Pushed] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Held by a push into a repository, and by the deletion of the whole repository.
    repository_locks: dict[str, threading.Lock] = field(
        default_factory=lambda: {name: threading.Lock() for name in REPOSITORIES}
    )
    errors: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)
    bases: list[bytes] = field(default_factory=lambda: [os.urandom(48 * 1024) for _ in range(6)])
    tags: itertools.count[int] = field(default_factory=itertools.count)

    def count(self, what: str, by: int = 1) -> None:
        with self.lock:
            self.counts[what] += by

    def fail(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, auth=self.server.http_auth, timeout=120)

    def api(self) -> httpx.Client:
        account = (self.server.username or "", f"account-{self.server.username}-secret")
        return httpx.Client(base_url=f"{self.server.url}/api/v1", auth=account, timeout=120)


def run_until_stopped(stress: Stress, work: Callable[[], None]) -> Callable[[], None]:
    """A thread body: `work` again and again until the stop, any exception recorded."""

    def body() -> None:
        while not stress.stop.is_set():
            try:
                work()
            except Exception as exc:
                stress.fail(f"{threading.current_thread().name}: {exc!r}")

    return body


def push_blob(stress: Stress, client: httpx.Client, repository: str, blob: bytes) -> None:
    """Skip a blob the repository has, mount a shared one from elsewhere, else upload it."""
    digest = sha256(blob)
    if client.head(f"/v2/{repository}/blobs/{digest}").status_code == 200:
        stress.count("blobs skipped as present")
        return
    params = {}
    if blob in stress.bases and random.random() < 0.5:
        params = {"mount": digest, "from": random.choice(REPOSITORIES)}
    started = client.post(f"/v2/{repository}/blobs/uploads/", params=params)
    if started.status_code == 201:
        stress.count("blobs mounted")
        return
    if started.status_code != 202:
        raise PushFailedError(started)
    done = client.put(started.headers["location"], params={"digest": digest}, content=blob)
    if done.status_code != 201:
        raise PushFailedError(done)
    stress.count("blobs uploaded")


def push_manifest(client: httpx.Client, repository: str, reference: str, body: bytes) -> None:
    media_type = json.loads(body)["mediaType"]
    response = client.put(
        f"/v2/{repository}/manifests/{reference}",
        content=body,
        headers={"Content-Type": media_type},
    )
    if response.status_code != 201:
        raise PushFailedError(response)


def push_image(
    stress: Stress, client: httpx.Client, repository: str, reference: str | None
) -> tuple[str, bytes, frozenset[str]]:
    """Shared base layers, a unique layer and config; by digest when `reference` is None."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "id": os.urandom(8).hex()})
    layers = [*random.sample(stress.bases, random.randint(1, 2))]
    layers.append(os.urandom(random.randint(2, 32) * 1024))
    for blob in [config.encode(), *layers]:
        push_blob(stress, client, repository, blob)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config.encode()),
            "layers": [descriptor(OCI_LAYER, layer) for layer in layers],
        }
    ).encode()
    push_manifest(client, repository, reference or sha256(manifest), manifest)
    return sha256(manifest), manifest, frozenset(map(sha256, [config.encode(), *layers]))


def push_one(stress: Stress, client: httpx.Client, repository: str) -> Pushed:
    """An image under a new tag, or one time in five a two-platform index of images."""
    tag = f"t{next(stress.tags)}"
    if random.random() >= 0.2:
        digest, _, blobs = push_image(stress, client, repository, tag)
        return Pushed(repository, tag, digest, blobs)
    children = [push_image(stress, client, repository, None) for _ in range(2)]
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [descriptor(OCI_MANIFEST, manifest) for _, manifest, _ in children],
        }
    ).encode()
    push_manifest(client, repository, tag, index)
    blobs = frozenset().union(*(child_blobs for _, _, child_blobs in children))
    return Pushed(repository, tag, sha256(index), blobs, tuple(d for d, _, _ in children))


def pusher(stress: Stress) -> Callable[[], None]:
    client = stress.client()

    def push() -> None:
        repository = random.choice(REPOSITORIES)
        with stress.repository_locks[repository]:
            started = time.monotonic()
            try:
                pushed = push_one(stress, client, repository)
            except PushFailedError as exc:
                # A client that takes longer than the grace period between finding a blob and
                # pushing the manifest may find it collected: the contract, not a bug. (After
                # a HEAD the link is refreshed only once half the grace period has passed.)
                slow = time.monotonic() - started >= GRACE_SECONDS / 2
                if exc.code == "MANIFEST_BLOB_UNKNOWN" and slow:
                    stress.count("pushes slower than the grace period")
                    return
                raise
            with stress.lock:
                stress.expected[(repository, pushed.tag)] = pushed
        stress.count("images pushed" if not pushed.children else "indexes pushed")

    return push


def deleter(stress: Stress) -> Callable[[], None]:
    client, api = stress.client(), stress.api()

    def delete() -> None:
        time.sleep(random.uniform(0.05, 0.3))
        roll = random.random()
        if roll < 0.08:
            repository = random.choice(REPOSITORIES)
            with stress.repository_locks[repository]:
                with stress.lock:
                    for key in [key for key in stress.expected if key[0] == repository]:
                        del stress.expected[key]
                deleted = api.delete(f"/repositories/{repository}", params={"confirm": repository})
            assert deleted.status_code in (204, 404), deleted.text
            stress.count("repositories deleted" if deleted.status_code == 204 else "no-op")
            return
        with stress.lock:
            if not stress.expected:
                return
            key = random.choice(list(stress.expected))
            pushed = stress.expected.pop(key)
        if roll < 0.55:
            deleted = api.delete(f"/repositories/{pushed.repository}/tags/{pushed.tag}")
            assert deleted.status_code == 204, deleted.text
            stress.count("tags deleted")
        else:
            deleted = client.delete(f"/v2/{pushed.repository}/manifests/{pushed.digest}")
            assert deleted.status_code == 202, deleted.text
            stress.count("manifests deleted by digest")

    return delete


def reader(stress: Stress) -> Callable[[], None]:
    client = stress.client()

    def read() -> None:
        with stress.lock:
            if not stress.expected:
                return
            key, pushed = random.choice(list(stress.expected.items()))
        problem = check_image(client, pushed)
        with stress.lock:
            # A failed pull of something deleted meanwhile is no loss.
            lost = problem is not None and key in stress.expected
        if lost:
            stress.fail(f"lost during the run: {problem}")
        stress.count("pulls during the run")

    return read


def collector(stress: Stress) -> Callable[[], None]:
    def collect() -> None:
        result = stress.server.cli("gc")
        if result.returncode == 0:
            total = TOTAL.search(result.stdout)
            assert total is not None, result.stdout
            stress.count("moorage gc runs")
            stress.count("bytes reclaimed by moorage gc", int(total[2]))
        elif "gc is held by" in result.stderr:
            stress.count("moorage gc runs refused: the other collector held the lease")
        else:
            raise AssertionError(f"moorage gc failed: {result.stderr}")

    return collect


def check_image(client: httpx.Client, pushed: Pushed) -> str | None:
    """Pull an image (every child and blob), checking digests; what is wrong, or None."""
    name = f"{pushed.repository}:{pushed.tag}"
    manifest = client.get(
        f"/v2/{pushed.repository}/manifests/{pushed.tag}", headers={"Accept": ACCEPT}
    )
    if manifest.status_code != 200 or sha256(manifest.content) != pushed.digest:
        return f"{name}: manifest {manifest.status_code}"
    for child in pushed.children:
        fetched = client.get(
            f"/v2/{pushed.repository}/manifests/{child}", headers={"Accept": ACCEPT}
        )
        if fetched.status_code != 200 or sha256(fetched.content) != child:
            return f"{name}: child {child} {fetched.status_code}"
    for digest in sorted(pushed.blobs):
        fetched = client.get(f"/v2/{pushed.repository}/blobs/{digest}")
        if fetched.status_code != 200 or sha256(fetched.content) != digest:
            return f"{name}: blob {digest} {fetched.status_code}"
    return None


def hammer(stress: Stress) -> None:
    """Let the threads run for SECONDS, longer on a loaded machine until enough has happened."""
    started = time.monotonic()
    while time.monotonic() - started < SECONDS or not enough_happened(stress):
        if time.monotonic() - started > 4 * SECONDS or stress.errors:
            return
        time.sleep(0.2)


def enough_happened(stress: Stress) -> bool:
    """Whether pushes and deletions overlapped often enough for the run to prove anything."""
    with stress.lock:
        return stress.counts["images pushed"] >= 8 and stress.counts["tags deleted"] >= 3


def stored_digests(server: RunningServer) -> set[str]:
    root = server.data_dir / "blobs" / "blobs" / "sha256"
    return {f"sha256:{path.name}" for path in root.rglob("*") if path.is_file()}


def final_collection(server: RunningServer) -> str:
    """One `moorage gc` run to completion, waiting for the server's own run to let go."""
    deadline = time.monotonic() + 60
    while True:
        result = server.cli("gc")
        if result.returncode == 0:
            return result.stdout
        assert "gc is held by" in result.stderr and time.monotonic() < deadline, result.stderr
        time.sleep(0.5)


def test_nothing_referenced_is_lost_while_pushes_deletes_and_gc_race(tmp_path: Path) -> None:
    server = RunningServer(
        tmp_path / "data",
        env={
            "MOORAGE_DELETED_RETENTION": "0",
            "MOORAGE_GC_GRACE_PERIOD": str(int(GRACE_SECONDS)),
            "MOORAGE_GC_INTERVAL": "1",
        },
    )
    server.username, server.password = server.create_account("tester", ("test",))
    server.start()
    stress = Stress(server)
    try:
        workers = [
            *(("pusher", pusher(stress)) for _ in range(PUSHERS)),
            ("deleter", deleter(stress)),
            *(("reader", reader(stress)) for _ in range(READERS)),
            ("collector", collector(stress)),
        ]
        threads = [
            threading.Thread(target=run_until_stopped(stress, work), name=f"{name}-{number}")
            for number, (name, work) in enumerate(workers)
        ]
        for thread in threads:
            thread.start()
        hammer(stress)
        stress.stop.set()
        for thread in threads:
            thread.join(timeout=180)
        assert not stress.errors, "\n".join(stress.errors[:20])

        # Past the grace period nothing is in flight: one more run leaves only what is needed.
        time.sleep(GRACE_SECONDS)
        final_collection(server)
        with stress.client() as client:
            problems = [check_image(client, pushed) for pushed in stress.expected.values()]
        assert [problem for problem in problems if problem] == []
        needed = set().union(*(pushed.blobs for pushed in stress.expected.values()))
        stored = stored_digests(server)
        assert stored - needed == set(), "garbage left after the final collection"
        assert needed - stored == set(), "blobs lost"
        checked = server.cli("fsck")
        assert checked.returncode == 0 and "0 problems, 0 garbage" in checked.stdout, checked.stdout
        pull_some_with_skopeo(server, tmp_path, list(stress.expected.values()))
    finally:
        stress.stop.set()
        server.stop()

    log = server.log_text()
    assert "Traceback" not in log
    assert SERVER_ERROR.search(log) is None, SERVER_ERROR.search(log)
    server_runs = [json.loads(line) for line in log.splitlines() if '"garbage collected"' in line]
    stress.count("server gc runs", len(server_runs))
    stress.count("bytes reclaimed by the server's runs", sum(run["bytes"] for run in server_runs))
    stress.count("images that should exist, all pulled and checked", len(stress.expected))
    stress.count("blobs stored at the end", len(stored))
    print("\n".join(f"{what}: {number}" for what, number in sorted(stress.counts.items())))
    # What matters is that it all happened at once, however slowly on a loaded machine.
    assert enough_happened(stress)
    assert len(server_runs) >= 3 and stress.counts["moorage gc runs"] >= 1


def pull_some_with_skopeo(server: RunningServer, tmp_path: Path, survivors: list[Pushed]) -> None:
    """A real client pulls a few survivors and gets the exact manifest digests back."""
    skopeo = Skopeo(server, tmp_path / "skopeo")
    for number, pushed in enumerate(random.sample(survivors, min(3, len(survivors)))):
        layout = tmp_path / f"pulled-{number}"
        skopeo.copy(
            f"docker://{server.host}/{pushed.repository}:{pushed.tag}",
            f"oci:{layout}:{pushed.tag}",
            "--all",
            "--preserve-digests",
        )
        index = json.loads((layout / "index.json").read_text())
        assert index["manifests"][0]["digest"] == pushed.digest
