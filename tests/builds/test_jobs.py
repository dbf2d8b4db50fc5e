"""Build jobs on a real metadata database: one claim per job, heartbeats, lost workers, cancel."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.databases import database_url

from moorage.builds.jobs import BuildJobService
from moorage.builds.rule_store import BuildRule, RuleSpec
from moorage.errors import ConflictError, ResourceUnknownError
from moorage.metadata.tables import metadata
from moorage.services import Services, build_services
from moorage.settings import Settings


def run_with(tmp_path: Path, test: Callable[[Services, BuildRule], Awaitable[None]]) -> None:
    """Run `test` against fresh services holding one account, namespace and rule."""

    async def main() -> None:
        data_dir = tmp_path / "data"
        services = build_services(Settings(data_dir=data_dir, database_url=database_url(data_dir)))
        await services.start()
        try:
            owner = await services.accounts.create("builder", "builder-password")
            await services.namespaces.create("team", "builder")
            spec = RuleSpec("team/app", "https://example.com/app.git", "main")
            rule = await services.build_rules.create(owner.id, spec, None)
            await test(services, rule)
        finally:
            await services.close()

    asyncio.run(main())


def test_two_claimers_never_take_the_same_job(tmp_path: Path) -> None:
    async def test(services: Services, rule: BuildRule) -> None:
        queued = [await services.build_jobs.enqueue(rule, None, "manual") for _ in range(30)]
        # A second service on its own connection pool, as a second worker process has.
        other = build_services(services.settings)
        claims: Counter[str] = Counter()

        async def claim_all(jobs: BuildJobService, worker: str) -> None:
            while (build := await jobs.claim(worker)) is not None:
                claims[build.id] += 1

        try:
            await asyncio.gather(
                claim_all(services.build_jobs, "a"),
                claim_all(other.build_jobs, "b"),
                claim_all(services.build_jobs, "c"),
            )
        finally:
            await other.close()
        assert set(claims) == {build.id for build in queued}
        assert set(claims.values()) == {1}

    run_with(tmp_path, test)


def test_a_silent_worker_loses_its_builds(tmp_path: Path) -> None:
    async def test(services: Services, rule: BuildRule) -> None:
        jobs = services.build_jobs
        queued = await jobs.enqueue(rule, "v1", "manual")
        claimed = await jobs.claim("worker-a")
        assert claimed is not None and claimed.id == queued.id and claimed.state == "running"
        assert await jobs.heartbeat("worker-a", [claimed.id]) == set()
        assert await jobs.reap(silent_for=60) == []

        await asyncio.sleep(0.05)
        assert await jobs.reap(silent_for=0.01) == [claimed.id]

        failed = await jobs.get(claimed.id)
        assert failed.state == "failed"
        assert "stopped answering" in (failed.reason or "")
        assert failed.finished_at is not None
        assert not await jobs.finish(claimed.id, "worker-a", "succeeded"), "too late to succeed"
        assert (await jobs.get(claimed.id)).state == "failed"

    run_with(tmp_path, test)


def test_cancel_a_queued_and_a_running_build(tmp_path: Path) -> None:
    async def test(services: Services, rule: BuildRule) -> None:
        jobs = services.build_jobs
        running = await jobs.enqueue(rule, None, "manual")
        await jobs.claim("worker-a")
        queued = await jobs.enqueue(rule, None, "manual")

        assert (await jobs.cancel(queued.id, rule.user_id)).state == "cancelled"
        assert (await jobs.cancel(running.id, rule.user_id)).cancel_requested
        assert await jobs.heartbeat("worker-a", [running.id]) == {running.id}
        assert await jobs.finish(running.id, "worker-a", "cancelled", "cancelled while it ran")
        with pytest.raises(ConflictError, match="already finished"):
            await jobs.cancel(running.id, rule.user_id)
        assert await jobs.claim("worker-a") is None, "a cancelled build is never claimed"

    run_with(tmp_path, test)


def test_builds_are_visible_to_their_owner_only(tmp_path: Path) -> None:
    async def test(services: Services, rule: BuildRule) -> None:
        build = await services.build_jobs.enqueue(rule, None, "webhook")
        stranger = await services.accounts.create("stranger", "stranger-password")

        with pytest.raises(ResourceUnknownError):
            await services.build_jobs.get(build.id, stranger.id)
        with pytest.raises(ResourceUnknownError):
            await services.build_rules.get(rule.id, stranger.id)
        assert await services.build_jobs.history(stranger.id) == []
        assert [b.id for b in await services.build_jobs.history(rule.user_id)] == [build.id]

    run_with(tmp_path, test)


def test_credentials_are_encrypted_at_rest(tmp_path: Path) -> None:
    async def test(services: Services, rule: BuildRule) -> None:
        from moorage.builds.git import GitCredentials

        token = "ghp_this-is-the-secret-token"
        spec = RuleSpec("team/private", "https://example.com/p.git", "main")
        private = await services.build_rules.create(
            rule.user_id, spec, GitCredentials("builder", token)
        )

        assert private.has_credentials
        assert await services.build_rules.credentials(private.id) == GitCredentials(
            "builder", token
        )
        async with services.database.reading() as connection:
            for table in metadata.sorted_tables:
                for row in await connection.execute(select(table)):
                    assert token not in repr(tuple(row)), f"the token is stored in {table.name}"

    run_with(tmp_path, test)
