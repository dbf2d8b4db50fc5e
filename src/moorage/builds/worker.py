"""A build worker: claims queued builds, runs each from clone to push, and records the end.

`moorage serve` runs one in its own event loop; `moorage worker` runs more, each a process of
its own. Workers share nothing but the database: claims, heartbeats and cancel requests all go
through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shutil
import socket
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from moorage.auth.build_access import issue_build_credential
from moorage.auth.signing import TokenSigner
from moorage.builds.context import prepare_context
from moorage.builds.engine import BuildEngine, EngineJob, create_engine
from moorage.builds.failures import BuildFailedError
from moorage.builds.git import GitSource
from moorage.builds.jobs import CANCELLED, FAILED, SUCCEEDED, TIMED_OUT, Build, BuildJobService
from moorage.builds.logs import BuildLogService, LogWriter, Masker
from moorage.builds.rule_store import BuildRule, BuildRuleService
from moorage.builds.rules import render_tag
from moorage.errors import DatabaseUnavailableError
from moorage.log import get_logger
from moorage.settings import BuildSettings

if TYPE_CHECKING:
    from moorage.services import Services

log = get_logger(__name__)

NOTE = "[moorage]"
# How long a build credential outlives the build's time limit: the push comes last.
CREDENTIAL_MARGIN_SECONDS = 600


@dataclass(frozen=True, slots=True)
class WorkerParts:
    """What a worker uses: the build services, the credential signer, the engine."""

    rules: BuildRuleService
    jobs: BuildJobService
    logs: BuildLogService
    signer: TokenSigner
    engine: BuildEngine
    settings: BuildSettings
    work_dir: Path
    registry_url: str


class BuildWorker:
    """Runs up to `max_concurrent` builds at a time until it is cancelled."""

    def __init__(self, parts: WorkerParts) -> None:
        self._parts = parts
        self._settings = parts.settings
        self.worker_id = f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._running: dict[str, asyncio.Task[None]] = {}
        self._cancel_requested: set[str] = set()

    async def run_forever(self) -> None:
        """Claim and run builds; on cancellation, stop the running ones and record why."""
        log.info("build worker started", worker_id=self.worker_id, engine=self._parts.engine.name)
        heartbeat = asyncio.create_task(self._heartbeat_forever())
        try:
            while True:
                await self._poll_once()
                await asyncio.sleep(self._settings.poll_seconds)
        finally:
            heartbeat.cancel()
            await self._stop_running()
            log.info("build worker stopped", worker_id=self.worker_id)

    async def _poll_once(self) -> None:
        try:
            for build_id in await self._parts.jobs.reap(self._settings.heartbeat_timeout_seconds):
                await self._remove_work_dir(build_id)
            while len(self._running) < self._settings.max_concurrent:
                build = await self._parts.jobs.claim(self.worker_id)
                if build is None:
                    break
                task = asyncio.create_task(self._run(build))
                self._running[build.id] = task
                task.add_done_callback(functools.partial(self._forget, build.id))
        except DatabaseUnavailableError:
            # Logged where it happened; the next poll tries again.
            log.warning("build worker poll skipped", worker_id=self.worker_id)
        except Exception:
            log.exception("build worker poll failed", worker_id=self.worker_id)

    def _forget(self, build_id: str, _task: asyncio.Task[None]) -> None:
        self._running.pop(build_id, None)

    async def _heartbeat_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.heartbeat_seconds)
            try:
                cancelled = await self._parts.jobs.heartbeat(self.worker_id, list(self._running))
            except DatabaseUnavailableError:
                log.warning("build heartbeat skipped", worker_id=self.worker_id)
                continue
            except Exception:
                log.exception("build heartbeat failed", worker_id=self.worker_id)
                continue
            for build_id in cancelled - self._cancel_requested:
                self._cancel_requested.add(build_id)
                if task := self._running.get(build_id):
                    task.cancel()

    async def _stop_running(self) -> None:
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, build: Build) -> None:
        jobs = self._parts.jobs
        masker = Masker()
        state, reason, digest = FAILED, "", None
        async with LogWriter(self._parts.logs, build.id, masker) as output:
            try:
                async with asyncio.timeout(self._settings.timeout_seconds):
                    digest = await self._execute(build, output)
                state, reason = SUCCEEDED, ""
                output(f"{NOTE} pushed {digest}")
            except TimeoutError:
                state = TIMED_OUT
                reason = f"the build ran over its time limit of {self._settings.timeout_seconds} s"
            except BuildFailedError as exc:
                state, reason = exc.state, masker(exc.reason)
            except asyncio.CancelledError:
                if build.id in self._cancel_requested:
                    state, reason = CANCELLED, "cancelled while it ran"
                else:
                    state, reason = FAILED, "the worker stopped during the build; run it again"
            except Exception as exc:
                log.exception("build crashed", build_id=build.id)
                reason = masker(f"internal error in the build worker: {type(exc).__name__}")
            if reason:
                output(f"{NOTE} {state}: {reason}")
        await asyncio.shield(jobs.finish(build.id, self.worker_id, state, reason or None, digest))
        self._cancel_requested.discard(build.id)
        await self._remove_work_dir(build.id)

    async def _execute(self, build: Build, output: LogWriter) -> str:
        parts = self._parts
        rule = await parts.rules.get(build.rule_id, None)
        credentials = await parts.rules.credentials(rule.id)
        for secret in credentials.secrets() if credentials else []:
            output.masker.add(secret)
        work_dir = parts.work_dir / build.id
        work_dir.mkdir(parents=True, exist_ok=True)

        wanted = build.ref or rule.spec.ref
        output(f"{NOTE} build {build.id} of {rule.spec.repository} from {rule.spec.git_url}")
        source = GitSource(
            rule.spec.git_url,
            credentials,
            self._settings.allow_file_urls,
            work_dir / "git-home",
            output,
        )
        ref, _ = await source.resolve(wanted)
        checkout = await source.checkout(ref, work_dir / "source")
        tag = render_tag(rule.spec.tag_template, ref, checkout.commit)
        if not tag:
            raise BuildFailedError(
                f"the tag template {rule.spec.tag_template!r} gives no valid tag for {ref.name}"
            )
        destination = f"{rule.spec.repository}:{tag}"
        await parts.jobs.record_source(
            build.id, self.worker_id, ref.full_name, checkout.commit, destination
        )

        context = await asyncio.to_thread(
            prepare_context,
            checkout.directory,
            rule.spec.dockerfile,
            rule.spec.build_dir,
            work_dir / "prepared",
        )
        output(
            f"{NOTE} context {rule.spec.build_dir}: {context.files} entries,"
            f" {context.excluded} left out by .dockerignore"
        )
        return await self._build(rule, context.directory, context.dockerfile, destination, output)

    async def _build(
        self, rule: BuildRule, context: Path, dockerfile: Path, destination: str, output: LogWriter
    ) -> str:
        parts = self._parts
        credential = issue_build_credential(
            parts.signer, rule.owner, rule.user_id, rule.spec.repository
        )
        output.masker.add(credential)
        registry = urlsplit(parts.registry_url)
        host = registry.netloc
        output(f"{NOTE} building {host}/{destination} with {parts.engine.name}")
        # A short run root: container tools refuse long socket paths under it.
        with tempfile.TemporaryDirectory(prefix="moorage-run-") as run_dir:
            job = EngineJob(
                context=context,
                dockerfile=dockerfile,
                destination=f"{host}/{destination}",
                registry_host=host,
                registry_insecure=registry.scheme == "http",
                username=rule.owner,
                credential=credential,
                work_dir=context.parent / "engine",
                run_dir=Path(run_dir),
                build_args=rule.spec.build_args,
            )
            return await parts.engine.build_and_push(job, output)

    async def _remove_work_dir(self, build_id: str) -> None:
        # A build's image storage can hold many files: not removed on the event loop.
        directory = self._parts.work_dir / build_id
        with contextlib.suppress(OSError):
            await asyncio.to_thread(shutil.rmtree, directory, ignore_errors=True)


def create_worker(services: Services) -> BuildWorker:
    """A worker over the deployment's services, with the engine its settings name."""
    settings = services.settings
    # Build credentials must outlive the longest build: their own signer sets that lifetime.
    signer = TokenSigner(
        services.keys.token_signing_key,
        issuer=settings.auth.issuer,
        service=settings.auth.service,
        lifetime=settings.builds.timeout_seconds + CREDENTIAL_MARGIN_SECONDS,
    )
    return BuildWorker(
        WorkerParts(
            rules=services.build_rules,
            jobs=services.build_jobs,
            logs=services.build_logs,
            signer=signer,
            engine=create_engine(settings.builds.engine),
            settings=settings.builds,
            work_dir=settings.build_work_dir.resolve(),
            registry_url=settings.registry_url,
        )
    )
