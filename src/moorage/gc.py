"""Garbage collection: removes what nothing references any more, while the registry serves.

What keeps each kind of thing:

    manifest     a tag; a deleted tag or a deletion still in its restore window; an index of
                 its repository that lists it, or the manifest it refers to (its subject), if
                 that one is kept; a push of it, or a tag moving away from it, within the grace
                 period
    blob link    a kept manifest of the same repository that names the blob; a push or a
                 lookup of the blob in that repository within the grace period
    blob         any link, or any manifest in any repository that names it
    stored file  a blob row, or being younger than the grace period (a crash leftover else)
    upload file  its upload session, or being younger than the grace period

A run purges what has passed its restore window, plans from what it reads, then removes each
planned item in a write transaction of its own that locks the row and checks again that nothing
keeps it. A blob's row and file go in one such transaction; pushes lock the same rows before
they rely on them (see `moorage.content.repositories`), so a concurrent push either keeps an
item or finds it gone and uploads it again. Replicas sharing the database take turns through a
lease.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from moorage.clock import utc_now
from moorage.content.deletion import DeletionService
from moorage.content.manifests import BLOB_REFERENCE, MANIFEST_REFERENCE
from moorage.log import get_logger
from moorage.metadata.database import Database
from moorage.metadata.leases import Lease
from moorage.metadata.tables import (
    blobs,
    deleted_tags,
    manifest_references,
    manifests,
    repositories,
    repository_blobs,
    tags,
    upload_sessions,
)
from moorage.oci.digest import Digest
from moorage.storage.base import BlobStore

log = get_logger(__name__)

# Rows looked up per query when checking many digests or files at once.
BATCH = 500
# How long a collector may go silent before another replica may take over.
LEASE_DURATION = timedelta(minutes=5)

Item = TypeVar("Item")
KeepLease = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RemovedManifest:
    """An untagged manifest nothing refers to."""

    repository: str
    digest: str
    manifest_id: int


@dataclass(frozen=True, slots=True)
class RemovedLink:
    """A repository's link to a blob that none of its manifests names."""

    repository: str
    digest: str
    repository_id: int


@dataclass(frozen=True, slots=True)
class RemovedBlob:
    """A stored blob (or a file no blob row knows) and the bytes it took."""

    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class RemovedUpload:
    """An upload file without a session."""

    upload_id: str
    size: int


@dataclass
class GcReport:
    """What a run removed, or with `dry_run` what it would remove."""

    dry_run: bool
    # The grace period was counted back from this moment: nothing touched later goes.
    cutoff: datetime = field(default_factory=utc_now)
    # Rows of deleted tags, manifests and repositories past their restore window.
    purged: int = 0
    manifests: list[RemovedManifest] = field(default_factory=list)
    links: list[RemovedLink] = field(default_factory=list)
    blobs: list[RemovedBlob] = field(default_factory=list)
    orphan_files: list[RemovedBlob] = field(default_factory=list)
    stray_uploads: list[RemovedUpload] = field(default_factory=list)
    # Planned removals that a concurrent push or lookup made wrong, so they were not done.
    spared: int = 0

    @property
    def blob_count(self) -> int:
        """Blobs whose bytes went: those with a row, and files no row knew."""
        return len(self.blobs) + len(self.orphan_files)

    @property
    def bytes_reclaimed(self) -> int:
        """Bytes of storage freed: blobs, orphan files and stray uploads."""
        return (
            sum(blob.size for blob in self.blobs)
            + sum(blob.size for blob in self.orphan_files)
            + sum(upload.size for upload in self.stray_uploads)
        )


@dataclass
class _Plan:
    """What the planner found, with what the blob decision needs to know."""

    report: GcReport
    # Repositories past their restore window, and manifests that go, by id.
    gone_repositories: set[int] = field(default_factory=set)
    gone_manifests: set[int] = field(default_factory=set)
    # Digests that may have lost their last link or reference.
    candidates: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _Manifest:
    id: int
    digest: str
    subject: str | None
    deleted_at: datetime | None
    touched_at: datetime
    tagged: bool
    restorable_tag: bool
    repository_id: int


class GarbageCollector:
    """Plans and carries out garbage collection runs."""

    def __init__(
        self,
        database: Database,
        store: BlobStore,
        deletion: DeletionService,
        grace_period: timedelta,
    ) -> None:
        self._database = database
        self._store = store
        self._deletion = deletion
        self._grace_period = grace_period

    async def run(self, dry_run: bool = False) -> GcReport:
        """One collection; `ConflictError` if another process is collecting."""
        if dry_run:
            report = await self.plan()
            report.purged = await self._deletion.count_expired()
            return report
        lease = Lease(self._database, "gc", LEASE_DURATION)
        await lease.acquire()
        try:
            purged = await self._deletion.purge_expired()
            plan = await self._plan(utc_now() - self._grace_period, lease.keep)
            report = await self._remove(plan.report, lease.keep)
            report.purged = purged
        finally:
            await lease.release()
        log.info(
            "garbage collected",
            purged=report.purged,
            manifests=len(report.manifests),
            links=len(report.links),
            blobs=report.blob_count,
            uploads=len(report.stray_uploads),
            bytes=report.bytes_reclaimed,
            spared=report.spared,
        )
        return report

    async def plan(self) -> GcReport:
        """What a run would remove now, as if what passed its restore window were purged."""
        plan = await self._plan(utc_now() - self._grace_period, _no_lease)
        return plan.report

    async def remove(self, planned: GcReport) -> GcReport:
        """Remove what a plan found, each item only if nothing keeps it by now."""
        lease = Lease(self._database, "gc", LEASE_DURATION)
        await lease.acquire()
        try:
            return await self._remove(planned, lease.keep)
        finally:
            await lease.release()

    async def _plan(self, cutoff: datetime, keep_lease: KeepLease) -> _Plan:
        plan = _Plan(GcReport(dry_run=True, cutoff=cutoff))
        purge_cutoff = self._deletion.purge_cutoff()
        async with self._database.reading() as connection:
            query = select(repositories.c.id, repositories.c.name, repositories.c.deleted_at)
            found = (await connection.execute(query)).all()
        for repository in found:
            await keep_lease()
            expired = repository.deleted_at is not None and repository.deleted_at <= purge_cutoff
            async with self._database.reading() as connection:
                await _plan_repository(
                    connection, plan, repository.id, repository.name, expired, cutoff, purge_cutoff
                )
        await keep_lease()
        await self._plan_blobs(plan)
        await self._plan_files(plan, cutoff)
        return plan

    async def _plan_blobs(self, plan: _Plan) -> None:
        """Blob rows with no link or reference left once the planned removals are done."""
        gone_links = {(link.repository_id, link.digest) for link in plan.report.links}
        async with self._database.reading() as connection:
            plan.candidates.update((await connection.execute(_unlinked_blobs())).scalars())
            for batch in _batches(sorted(plan.candidates)):
                kept = set()
                for repository_id, digest in await connection.execute(
                    select(repository_blobs.c.repository_id, repository_blobs.c.digest).where(
                        repository_blobs.c.digest.in_(batch)
                    )
                ):
                    if (
                        repository_id not in plan.gone_repositories
                        and (repository_id, digest) not in gone_links
                    ):
                        kept.add(digest)
                for digest, manifest_id, repository_id in await connection.execute(
                    _naming_manifests(batch)
                ):
                    if (
                        repository_id not in plan.gone_repositories
                        and manifest_id not in plan.gone_manifests
                    ):
                        kept.add(digest)
                sizes = select(blobs.c.digest, blobs.c.size).where(blobs.c.digest.in_(batch))
                plan.report.blobs += [
                    RemovedBlob(digest, size)
                    for digest, size in await connection.execute(sizes.order_by(blobs.c.digest))
                    if digest not in kept
                ]

    async def _plan_files(self, plan: _Plan, cutoff: datetime) -> None:
        """Old files in storage that no blob row knows, and old uploads without a session."""
        async for batch in _old_batches(self._store.list_blobs(), cutoff):
            known = await self._existing(blobs.c.digest, [str(blob.digest) for blob in batch])
            plan.report.orphan_files += [
                RemovedBlob(str(blob.digest), blob.size)
                for blob in batch
                if str(blob.digest) not in known
            ]
        async for uploads in _old_batches(self._store.list_uploads(), cutoff):
            known = await self._existing(upload_sessions.c.id, [up.upload_id for up in uploads])
            plan.report.stray_uploads += [
                RemovedUpload(upload.upload_id, upload.size)
                for upload in uploads
                if upload.upload_id not in known
            ]

    async def _existing(self, column: Any, values: list[str]) -> set[str]:
        async with self._database.reading() as connection:
            return set(
                (await connection.execute(select(column).where(column.in_(values)))).scalars()
            )

    async def _remove(self, plan: GcReport, keep_lease: KeepLease) -> GcReport:
        """Remove each planned item that is still garbage; report what went."""
        cutoff = plan.cutoff
        done = GcReport(dry_run=False, cutoff=cutoff)
        steps: list[tuple[Sequence[Any], Callable[[Any], Awaitable[bool]], list[Any]]] = [
            (plan.manifests, lambda item: self._remove_manifest(item, cutoff), done.manifests),
            (plan.links, lambda item: self._remove_link(item, cutoff), done.links),
            (plan.blobs, self._remove_blob, done.blobs),
            (plan.orphan_files, self._remove_orphan_file, done.orphan_files),
            (plan.stray_uploads, self._remove_stray_upload, done.stray_uploads),
        ]
        for planned, remove, removed in steps:
            for item in planned:
                await keep_lease()
                if await remove(item):
                    log.debug("garbage removed", item=repr(item))
                    removed.append(item)
                else:
                    done.spared += 1
        return done

    async def _remove_manifest(self, item: RemovedManifest, cutoff: datetime) -> bool:
        async with self._database.writing() as connection:
            query = (
                _manifest_rows()
                .where(manifests.c.id == item.manifest_id)
                .with_for_update(of=manifests)
            )
            row = (await connection.execute(query)).one_or_none()
            if row is None or not await _manifest_is_garbage(connection, _Manifest(*row), cutoff):
                return False
            await connection.execute(delete(manifests).where(manifests.c.id == item.manifest_id))
        return True

    async def _remove_link(self, item: RemovedLink, cutoff: datetime) -> bool:
        this_link = (
            repository_blobs.c.repository_id == item.repository_id,
            repository_blobs.c.digest == item.digest,
        )
        async with self._database.writing() as connection:
            query = select(repository_blobs.c.touched_at).where(*this_link).with_for_update()
            touched_at = (await connection.execute(query)).scalar_one_or_none()
            if touched_at is None or touched_at > cutoff:
                return False
            named = _naming_manifests([item.digest]).where(
                manifests.c.repository_id == item.repository_id
            )
            if (await connection.execute(named.limit(1))).first() is not None:
                return False
            await connection.execute(delete(repository_blobs).where(*this_link))
        return True

    async def _remove_blob(self, item: RemovedBlob) -> bool:
        async with self._database.writing() as connection:
            query = select(blobs.c.digest).where(blobs.c.digest == item.digest).with_for_update()
            if (await connection.execute(query)).first() is None:
                return False
            linked = select(repository_blobs.c.digest).where(
                repository_blobs.c.digest == item.digest
            )
            for keeper in (linked, _naming_manifests([item.digest])):
                if (await connection.execute(keeper.limit(1))).first() is not None:
                    return False
            await connection.execute(delete(blobs).where(blobs.c.digest == item.digest))
            # The file goes inside the transaction, with the row locked: a push that stores the
            # same content waits for the lock, then finds neither and puts the file back. If
            # the commit fails after this, a row without links or file is left, which the next
            # run removes and which a new upload of the content repairs.
            await self._store.delete_blob(Digest.parse(item.digest))
        return True

    async def _remove_orphan_file(self, item: RemovedBlob) -> bool:
        async with self._database.writing() as connection:
            # A row inserted and deleted in this transaction claims the digest: an upload of
            # the same content meanwhile either committed first (no claim: its file now) or
            # waits for this transaction and then puts its file back.
            claim = (
                self._database.insert_ignoring_duplicates(blobs)
                .values(digest=item.digest, size=item.size, created_at=utc_now())
                .returning(blobs.c.digest)
            )
            if (await connection.execute(claim)).first() is None:
                return False
            await self._store.delete_blob(Digest.parse(item.digest))
            await connection.execute(delete(blobs).where(blobs.c.digest == item.digest))
        return True

    async def _remove_stray_upload(self, item: RemovedUpload) -> bool:
        if await self._existing(upload_sessions.c.id, [item.upload_id]):
            return False
        await self._store.delete_upload(item.upload_id)
        return True


async def _plan_repository(
    connection: AsyncConnection,
    plan: _Plan,
    repository_id: int,
    name: str,
    expired: bool,
    cutoff: datetime,
    purge_cutoff: datetime,
) -> None:
    """Plan one repository: its manifests and links that go, and the digests they free."""
    rows = [
        _Manifest(*row)
        for row in await connection.execute(
            _manifest_rows(purge_cutoff).where(manifests.c.repository_id == repository_id)
        )
    ]
    children = await _references(connection, repository_id, MANIFEST_REFERENCE)
    named_blobs = await _references(connection, repository_id, BLOB_REFERENCE)
    link_query = select(repository_blobs.c.digest, repository_blobs.c.touched_at).where(
        repository_blobs.c.repository_id == repository_id
    )
    links = (await connection.execute(link_query)).all()
    if expired:
        # The purge removes the whole repository: links, manifests and all.
        plan.gone_repositories.add(repository_id)
        plan.candidates.update(digest for digest, _ in links)
        plan.candidates.update(d for digests in named_blobs.values() for d in digests)
        return

    purged = {
        row.id
        for row in rows
        if row.deleted_at is not None and row.deleted_at <= purge_cutoff and not row.restorable_tag
    }
    live = _live_manifests(rows, children, purged, cutoff)
    garbage = [row for row in rows if row.id not in live and row.id not in purged]
    plan.gone_manifests.update(purged, (row.id for row in garbage))
    plan.report.manifests += [
        RemovedManifest(name, row.digest, row.id) for row in _parents_first(garbage, children)
    ]

    kept_blobs = {digest for manifest_id in live for digest in named_blobs.get(manifest_id, ())}
    for digest, touched_at in links:
        if digest not in kept_blobs and touched_at <= cutoff:
            plan.report.links.append(RemovedLink(name, digest, repository_id))
            plan.candidates.add(digest)
    for manifest_id, digests in named_blobs.items():
        if manifest_id not in live:
            plan.candidates.update(digests)


def _live_manifests(
    rows: list[_Manifest], children: dict[int, list[str]], purged: set[int], cutoff: datetime
) -> set[int]:
    """Ids of the manifests something keeps, following indexes to children and subjects to
    their referrers."""
    by_digest = {row.digest: row for row in rows}
    referrers: dict[str, list[_Manifest]] = defaultdict(list)
    for row in rows:
        if row.subject is not None:
            referrers[row.subject].append(row)
    pending = [
        row
        for row in rows
        if row.tagged or row.restorable_tag or row.deleted_at is not None or row.touched_at > cutoff
    ]
    live: set[int] = set()
    while pending:
        row = pending.pop()
        if row.id in live or row.id in purged:
            continue
        live.add(row.id)
        pending += [by_digest[d] for d in children.get(row.id, ()) if d in by_digest]
        pending += referrers.get(row.digest, [])
    return live


def _parents_first(garbage: list[_Manifest], children: dict[int, list[str]]) -> list[_Manifest]:
    """Garbage manifests ordered so that an index comes before the manifests it lists and a
    subject before its referrers: each then passes the 'nothing refers to it' check in turn."""
    by_digest = {row.digest: row for row in garbage}
    dependents: dict[int, list[_Manifest]] = defaultdict(list)
    waiting: dict[int, int] = defaultdict(int)
    for row in garbage:
        for child in (by_digest[d] for d in children.get(row.id, ()) if d in by_digest):
            dependents[row.id].append(child)
            waiting[child.id] += 1
        subject = by_digest.get(row.subject) if row.subject is not None else None
        if subject is not None:
            dependents[subject.id].append(row)
            waiting[row.id] += 1
    ready = [row for row in garbage if not waiting[row.id]]
    ordered: list[_Manifest] = []
    while ready:
        row = ready.pop()
        ordered.append(row)
        for dependent in dependents[row.id]:
            waiting[dependent.id] -= 1
            if not waiting[dependent.id]:
                ready.append(dependent)
    return ordered


async def _manifest_is_garbage(
    connection: AsyncConnection, row: _Manifest, cutoff: datetime
) -> bool:
    """Whether nothing keeps a manifest now, checked directly on the rows that would."""
    if row.deleted_at is not None or row.touched_at > cutoff:
        return False
    same_repository = manifests.c.repository_id == row.repository_id
    keepers: list[Select[Any]] = [
        select(tags.c.name).where(tags.c.manifest_id == row.id),
        select(deleted_tags.c.id).where(deleted_tags.c.manifest_id == row.id),
        select(manifest_references.c.manifest_id)
        .join(manifests, manifests.c.id == manifest_references.c.manifest_id)
        .where(
            same_repository,
            manifest_references.c.kind == MANIFEST_REFERENCE,
            manifest_references.c.digest == row.digest,
        ),
    ]
    if row.subject is not None:
        keepers.append(
            select(manifests.c.id).where(same_repository, manifests.c.digest == row.subject)
        )
    for keeper in keepers:
        if (await connection.execute(keeper.limit(1))).first() is not None:
            return False
    return True


def _manifest_rows(purge_cutoff: datetime | None = None) -> Select[Any]:
    """A manifest as the collector judges it, in the field order of `_Manifest`."""
    restorable_tag = select(deleted_tags.c.id).where(deleted_tags.c.manifest_id == manifests.c.id)
    if purge_cutoff is not None:
        restorable_tag = restorable_tag.where(deleted_tags.c.deleted_at > purge_cutoff)
    return select(
        manifests.c.id,
        manifests.c.digest,
        manifests.c.subject_digest.label("subject"),
        manifests.c.deleted_at,
        func.coalesce(manifests.c.touched_at, manifests.c.created_at).label("touched_at"),
        select(tags.c.name).where(tags.c.manifest_id == manifests.c.id).exists().label("tagged"),
        restorable_tag.exists().label("restorable_tag"),
        manifests.c.repository_id,
    )


async def _references(
    connection: AsyncConnection, repository_id: int, kind: str
) -> dict[int, list[str]]:
    """The digests each manifest of a repository names, of one kind, by manifest id."""
    query = (
        select(manifest_references.c.manifest_id, manifest_references.c.digest)
        .join(manifests, manifests.c.id == manifest_references.c.manifest_id)
        .where(manifests.c.repository_id == repository_id, manifest_references.c.kind == kind)
    )
    named: dict[int, list[str]] = defaultdict(list)
    for manifest_id, digest in await connection.execute(query):
        named[manifest_id].append(digest)
    return named


def _naming_manifests(digests: Iterable[str]) -> Select[Any]:
    """(digest, manifest id, repository id) of every manifest that names one of the blobs."""
    return (
        select(manifest_references.c.digest, manifests.c.id, manifests.c.repository_id)
        .join(manifests, manifests.c.id == manifest_references.c.manifest_id)
        .where(
            manifest_references.c.kind == BLOB_REFERENCE,
            manifest_references.c.digest.in_(list(digests)),
        )
    )


def _unlinked_blobs() -> Select[Any]:
    """Digests of blob rows that no link and no manifest names at all."""
    linked = select(repository_blobs.c.digest).where(repository_blobs.c.digest == blobs.c.digest)
    named = select(manifest_references.c.digest).where(
        manifest_references.c.digest == blobs.c.digest,
        manifest_references.c.kind == BLOB_REFERENCE,
    )
    return select(blobs.c.digest).where(~linked.exists(), ~named.exists())


def _batches(items: Sequence[Item]) -> Iterable[list[Item]]:
    for start in range(0, len(items), BATCH):
        yield list(items[start : start + BATCH])


async def _old_batches(found: AsyncIterator[Any], cutoff: datetime) -> AsyncIterator[list[Any]]:
    """What storage lists, older than `cutoff`, in batches."""
    batch: list[Any] = []
    async for item in found:
        if item.modified_at <= cutoff:
            batch.append(item)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def _no_lease() -> None:
    """A dry run changes nothing, so it holds no lease."""
