"""fsck: checks that stored blobs and the metadata agree, re-hashing blobs as it reads them.

Problems, which make the store unsound:

    missing      a blob row whose file storage does not hold
    corrupt      a file whose size or content does not match its digest
    dangling     a manifest naming a blob that is not stored, or that its repository no longer
                 links, or an index listing a manifest its repository does not hold
    orphan       an old file that no blob row knows: a crash leftover, or something wrote into
                 the storage folder (garbage collection removes it)

Garbage, which is no problem: what `moorage gc` would remove now. Deleting images leaves some
until the next collection; fsck lists it so that an operator sees what is waiting.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from moorage.content.manifests import BLOB_REFERENCE, MANIFEST_REFERENCE
from moorage.gc import GarbageCollector
from moorage.log import get_logger
from moorage.metadata.database import Database
from moorage.metadata.tables import (
    blobs,
    manifest_references,
    manifests,
    repositories,
    repository_blobs,
)
from moorage.oci.digest import Digest, digest_of_hasher, new_hasher
from moorage.storage.base import BlobMissingError, BlobStore

log = get_logger(__name__)

# Blob rows read per query while walking them all.
PAGE = 500


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing fsck reports: its kind, what it is about, and what is wrong with it."""

    kind: str
    subject: str
    detail: str


@dataclass
class FsckReport:
    """What one check found."""

    blobs_checked: int = 0
    blobs_hashed: int = 0
    problems: list[Finding] = field(default_factory=list)
    garbage: list[Finding] = field(default_factory=list)

    @property
    def sound(self) -> bool:
        """Whether nothing is missing, corrupt, dangling or orphaned."""
        return not self.problems


class StoreChecker:
    """Compares storage with the metadata database."""

    def __init__(self, database: Database, store: BlobStore, collector: GarbageCollector) -> None:
        self._database = database
        self._store = store
        self._collector = collector

    async def check(self, sample: int | None = None) -> FsckReport:
        """Check every blob, re-hashing all of them or `sample` chosen at random."""
        report = FsckReport()
        to_hash = None if sample is None else await self._sample(sample)
        missing: set[str] = set()
        async for digest, size in self._blob_rows():
            report.blobs_checked += 1
            rehash = to_hash is None or digest in to_hash
            finding = await self._check_blob(report, digest, size, rehash)
            if finding is not None and await self._still_stored(digest):
                report.problems.append(finding)
                if finding.kind == "missing":
                    missing.add(digest)
        report.problems += await self._dangling_references(missing)
        await self._add_garbage(report)
        log.info(
            "store checked",
            blobs=report.blobs_checked,
            hashed=report.blobs_hashed,
            problems=len(report.problems),
            garbage=len(report.garbage),
        )
        return report

    async def _check_blob(
        self, report: FsckReport, digest: str, size: int, rehash: bool
    ) -> Finding | None:
        stored_size = await self._store.blob_size(Digest.parse(digest))
        if stored_size is None:
            return Finding("missing", digest, f"{size} bytes: storage holds no file for it")
        if stored_size != size:
            return Finding("corrupt", digest, f"the file has {stored_size} bytes, not {size}")
        if not rehash:
            return None
        parsed = Digest.parse(digest)
        hasher = new_hasher(parsed.algorithm)
        try:
            async for chunk in self._store.read_blob(parsed):
                hasher.update(chunk)
        except BlobMissingError:
            return Finding("missing", digest, f"{size} bytes: the file went while it was read")
        report.blobs_hashed += 1
        actual = digest_of_hasher(parsed.algorithm, hasher)
        if actual != parsed:
            return Finding("corrupt", digest, f"the content hashes to {actual}")
        return None

    async def _blob_rows(self) -> AsyncIterator[tuple[str, int]]:
        """Every blob row as (digest, size), a page at a time."""
        last = ""
        while True:
            query = (
                select(blobs.c.digest, blobs.c.size)
                .where(blobs.c.digest > last)
                .order_by(blobs.c.digest)
                .limit(PAGE)
            )
            async with self._database.reading() as connection:
                page = (await connection.execute(query)).all()
            for digest, size in page:
                yield str(digest), int(size)
            if len(page) < PAGE:
                return
            last = page[-1].digest

    async def _sample(self, count: int) -> set[str]:
        query = select(blobs.c.digest).order_by(func.random()).limit(count)
        async with self._database.reading() as connection:
            return set((await connection.execute(query)).scalars())

    async def _still_stored(self, digest: str) -> bool:
        """Whether a blob still has its row: garbage collection may have removed it meanwhile."""
        async with self._database.reading() as connection:
            query = select(blobs.c.digest).where(blobs.c.digest == digest)
            return (await connection.execute(query)).first() is not None

    async def _dangling_references(self, missing: Iterable[str]) -> list[Finding]:
        """Manifests that name what is not there."""
        found: list[Finding] = []
        async with self._database.reading() as connection:
            for name, manifest_digest, digest in await connection.execute(_unstored_blobs()):
                found.append(_dangling(name, manifest_digest, f"names blob {digest}, not stored"))
            for name, manifest_digest, digest in await connection.execute(_unlinked_blobs()):
                found.append(
                    _dangling(name, manifest_digest, f"names blob {digest}, which it does not link")
                )
            for name, manifest_digest, digest in await connection.execute(_missing_children()):
                found.append(
                    _dangling(name, manifest_digest, f"lists manifest {digest}, which is not there")
                )
            missing_list = sorted(missing)
            if missing_list:
                query = _references_to(missing_list)
                for name, manifest_digest, digest in await connection.execute(query):
                    found.append(
                        _dangling(
                            name, manifest_digest, f"names blob {digest}, whose file is missing"
                        )
                    )
        return found

    async def _add_garbage(self, report: FsckReport) -> None:
        plan = await self._collector.plan()
        report.problems += [
            Finding("orphan", blob.digest, f"{blob.size} bytes: a file no blob row knows")
            for blob in plan.orphan_files
        ]
        report.garbage += [
            Finding("manifest", f"{item.repository}@{item.digest}", "untagged, unreferenced")
            for item in plan.manifests
        ]
        report.garbage += [
            Finding("link", f"{item.repository} {item.digest}", "no manifest names it")
            for item in plan.links
        ]
        report.garbage += [
            Finding("blob", item.digest, f"{item.size} bytes, unreferenced") for item in plan.blobs
        ]
        report.garbage += [
            Finding("upload", item.upload_id, f"{item.size} bytes, no upload session")
            for item in plan.stray_uploads
        ]


def _dangling(repository: str, manifest_digest: str, detail: str) -> Finding:
    return Finding("dangling", f"{repository}@{manifest_digest}", detail)


def _named(kind: str) -> Any:
    """(repository name, manifest digest, named digest) for every reference of one kind."""
    return (
        select(repositories.c.name, manifests.c.digest, manifest_references.c.digest)
        .select_from(manifest_references)
        .join(manifests, manifests.c.id == manifest_references.c.manifest_id)
        .join(repositories, repositories.c.id == manifests.c.repository_id)
        .where(manifest_references.c.kind == kind)
    )


def _unstored_blobs() -> Any:
    stored = select(blobs.c.digest).where(blobs.c.digest == manifest_references.c.digest)
    return _named(BLOB_REFERENCE).where(~stored.exists())


def _unlinked_blobs() -> Any:
    stored = select(blobs.c.digest).where(blobs.c.digest == manifest_references.c.digest)
    linked = select(repository_blobs.c.digest).where(
        repository_blobs.c.repository_id == manifests.c.repository_id,
        repository_blobs.c.digest == manifest_references.c.digest,
    )
    return _named(BLOB_REFERENCE).where(stored.exists(), ~linked.exists())


def _missing_children() -> Any:
    child = aliased(manifests)
    present = select(child.c.id).where(
        child.c.repository_id == manifests.c.repository_id,
        child.c.digest == manifest_references.c.digest,
    )
    return _named(MANIFEST_REFERENCE).where(~present.exists())


def _references_to(digests: list[str]) -> Any:
    return _named(BLOB_REFERENCE).where(manifest_references.c.digest.in_(digests))
