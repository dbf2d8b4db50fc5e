"""A build's log lines reach the database, even when the build ends while a batch waits."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.builds.test_jobs import run_with

from moorage.builds.logs import FLUSH_SECONDS, LogWriter, Masker
from moorage.builds.rule_store import BuildRule
from moorage.metadata.tables import build_log_lines
from moorage.services import Services


def test_lines_in_a_batch_still_being_stored_when_the_build_ends_are_kept(
    tmp_path: Path,
) -> None:
    async def test(services: Services, rule: BuildRule) -> None:
        build = await services.build_jobs.enqueue(rule, None, "manual")
        # Another writer holds the log table, so the writer's batch waits for it, as when
        # another worker's build is storing its own lines.
        holder = await services.database.engine.connect()
        transaction = await holder.begin()
        await holder.execute(build_log_lines.delete().where(build_log_lines.c.build_id == "-"))
        if not services.database.is_sqlite:
            await holder.execute(build_log_lines.select().with_for_update())

        async def release_later() -> None:
            await asyncio.sleep(3 * FLUSH_SECONDS)
            await transaction.commit()
            await holder.close()

        async with LogWriter(services.build_logs, build.id, Masker([])) as output:
            output("first line")
            output("second line")
            await asyncio.sleep(2 * FLUSH_SECONDS)  # a flush has begun and is waiting
            releasing = asyncio.create_task(release_later())
        await releasing

        stored = [line.line for line in await services.build_logs.read(build.id)]
        assert stored == ["first line", "second line"]

    run_with(tmp_path, test)
