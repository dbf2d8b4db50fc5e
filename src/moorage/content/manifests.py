"""Manifests and tags: storing with reference checks, fetching, deleting, listing, referrers."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from moorage.accounts.quotas import QuotaService
from moorage.clock import utc_now
from moorage.content.repositories import ensure_repository, find_repository_id
from moorage.errors import (
    ConflictError,
    DeniedError,
    DigestInvalidError,
    ManifestBlobUnknownError,
    ManifestInvalidError,
    ManifestUnknownError,
    NameUnknownError,
)
from moorage.log import get_logger
from moorage.metadata.database import Database
from moorage.metadata.tables import (
    blobs,
    manifest_references,
    manifests,
    namespaces,
    repositories,
    repository_blobs,
    tags,
)
from moorage.oci.digest import Digest, digest_bytes
from moorage.oci.manifest import (
    Descriptor,
    ParsedManifest,
    parse_manifest,
    referrer_descriptor,
)

log = get_logger(__name__)

BLOB_REFERENCE = "blob"
MANIFEST_REFERENCE = "manifest"


@dataclass(frozen=True, slots=True)
class StoredManifest:
    """A manifest as the registry serves it."""

    digest: str
    media_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class PutResult:
    """What storing a manifest produced."""

    digest: Digest
    subject: Digest | None


class ManifestService:
    """Stores, serves and deletes manifests and tags."""

    def __init__(self, database: Database, quotas: QuotaService) -> None:
        self._database = database
        self._quotas = quotas

    async def put(
        self, repository: str, reference: str | Digest, payload: bytes, content_type: str | None
    ) -> PutResult:
        """Store a manifest under a tag or its digest, once everything it references is here."""
        parsed = parse_manifest(payload, content_type)
        digest = _digest_for(reference, payload)

        async with self._database.writing() as connection:
            repository_id = await ensure_repository(
                self._database, connection, repository, self._quotas
            )
            await self._store(
                connection, repository_id, repository, reference, digest, parsed, payload
            )
        log.info("manifest stored", repository=repository, digest=str(digest), tag=reference)
        return PutResult(digest, parsed.subject.digest if parsed.subject else None)

    async def put_in(
        self,
        connection: AsyncConnection,
        repository_id: int,
        repository: str,
        digest: Digest,
        payload: bytes,
        content_type: str | None,
        tag: str | None = None,
    ) -> None:
        """Store a manifest under `digest`, and tag it, in the caller's transaction."""
        parsed = parse_manifest(payload, content_type)
        _digest_for(digest, payload)
        await self._store(connection, repository_id, repository, tag, digest, parsed, payload)

    async def get(self, repository: str, reference: str | Digest) -> StoredManifest:
        """The manifest a tag or digest names in the repository."""
        query = select(manifests.c.digest, manifests.c.media_type, manifests.c.content).join(
            repositories, repositories.c.id == manifests.c.repository_id
        )
        if isinstance(reference, Digest):
            query = query.where(
                manifests.c.digest == str(reference), manifests.c.deleted_at.is_(None)
            )
        else:
            query = query.join(tags, tags.c.manifest_id == manifests.c.id).where(
                tags.c.name == reference
            )
        query = query.where(repositories.c.name == repository)
        async with self._database.reading() as connection:
            row = (await connection.execute(query)).one_or_none()
        if row is None:
            raise ManifestUnknownError(
                f"manifest {reference} is unknown to repository {repository}"
            )
        return StoredManifest(row.digest, row.media_type, row.content)

    async def list_tags(self, repository: str, limit: int | None, last: str | None) -> list[str]:
        """Tag names in lexical order after `last`, at most `limit` of them."""
        async with self._database.reading() as connection:
            repository_id = await find_repository_id(connection, repository)
            if repository_id is None:
                raise NameUnknownError(f"repository {repository} is unknown")
            query = select(tags.c.name).where(tags.c.repository_id == repository_id)
            if last:
                query = query.where(tags.c.name > last)
            query = query.order_by(tags.c.name).limit(limit)
            return list((await connection.execute(query)).scalars())

    async def list_repositories(
        self, limit: int | None, last: str | None, owner_id: int, namespace: str | None = None
    ) -> list[str]:
        """Names of the repositories in `owner_id`'s namespaces (or in one), after `last`."""
        query = (
            select(repositories.c.name)
            .join(namespaces, namespaces.c.id == repositories.c.namespace_id)
            .where(namespaces.c.owner_id == owner_id)
        )
        if namespace is not None:
            query = query.where(namespaces.c.name == namespace)
        if last:
            query = query.where(repositories.c.name > last)
        query = query.order_by(repositories.c.name).limit(limit)
        async with self._database.reading() as connection:
            return list((await connection.execute(query)).scalars())

    async def referrers(
        self, repository: str, subject: Digest, artifact_type: str | None
    ) -> list[Descriptor]:
        """Descriptors of the manifests whose subject is `subject`, optionally of one type."""
        query = (
            select(manifests.c.digest, manifests.c.size, manifests.c.content)
            .join(repositories, repositories.c.id == manifests.c.repository_id)
            .where(
                repositories.c.name == repository,
                manifests.c.subject_digest == str(subject),
                manifests.c.deleted_at.is_(None),
            )
            .order_by(manifests.c.id)
        )
        if artifact_type is not None:
            query = query.where(manifests.c.artifact_type == artifact_type)
        async with self._database.reading() as connection:
            rows = (await connection.execute(query)).all()
        return [
            referrer_descriptor(
                Digest.parse(row.digest), row.size, parse_manifest(row.content, None)
            )
            for row in rows
        ]

    async def _store(
        self,
        connection: AsyncConnection,
        repository_id: int,
        repository: str,
        tag: str | Digest | None,
        digest: Digest,
        parsed: ParsedManifest,
        payload: bytes,
    ) -> None:
        await _check_references(connection, repository_id, parsed)
        manifest_id = await self._insert_manifest(
            connection, repository_id, digest, parsed, payload
        )
        if isinstance(tag, str):
            await self._set_tag(connection, repository_id, repository, tag, manifest_id)

    async def _insert_manifest(
        self,
        connection: AsyncConnection,
        repository_id: int,
        digest: Digest,
        parsed: ParsedManifest,
        payload: bytes,
    ) -> int:
        now = utc_now()
        existing = await _manifest_id(connection, repository_id, str(digest))
        if existing is not None:
            # Pushing a manifest again brings it back if it had been deleted, and restarts the
            # grace period garbage collection gives it (an index may follow that needs it).
            revived = await connection.execute(
                manifests.update()
                .where(manifests.c.id == existing)
                .values(deleted_at=None, touched_at=now)
            )
            if revived.rowcount:
                return existing
            # Garbage collection removed it after it was read (PostgreSQL): store it anew.
        artifact_type = parsed.artifact_type or (
            parsed.config.media_type if parsed.config else None
        )
        inserted = await connection.execute(
            self._database.insert_ignoring_duplicates(manifests)
            .values(
                repository_id=repository_id,
                digest=str(digest),
                media_type=parsed.media_type,
                artifact_type=artifact_type,
                subject_digest=str(parsed.subject.digest) if parsed.subject else None,
                size=len(payload),
                content=payload,
                created_at=now,
                touched_at=now,
            )
            .returning(manifests.c.id)
        )
        manifest_id: int | None = inserted.scalar_one_or_none()
        if manifest_id is None:
            # A push of the same manifest committed it meanwhile (PostgreSQL): that one counts.
            stored = await _manifest_id(connection, repository_id, str(digest))
            if stored is None:
                raise ConflictError(f"manifest {digest} changed while it was pushed; push again")
            return stored
        references = {(str(d.digest), BLOB_REFERENCE) for d in parsed.required_blobs} | {
            (str(d.digest), MANIFEST_REFERENCE) for d in parsed.manifest_references
        }
        if references:
            await connection.execute(
                manifest_references.insert(),
                [
                    {"manifest_id": manifest_id, "digest": child, "kind": kind}
                    for child, kind in sorted(references)
                ],
            )
        return manifest_id

    async def _set_tag(
        self,
        connection: AsyncConnection,
        repository_id: int,
        repository: str,
        tag: str,
        manifest_id: int,
    ) -> None:
        """Point a tag at a manifest; only a new tag counts against the quota."""
        # A pull of the manifest the tag leaves may be under way: garbage collection gives the
        # manifest its grace period from now, not from when it was pushed.
        previous = select(tags.c.manifest_id).where(
            tags.c.repository_id == repository_id, tags.c.name == tag
        )
        await connection.execute(
            manifests.update()
            .where(manifests.c.id == previous.scalar_subquery(), manifests.c.id != manifest_id)
            .values(touched_at=utc_now())
        )
        retag = (
            tags.update()
            .where(tags.c.repository_id == repository_id, tags.c.name == tag)
            .values(manifest_id=manifest_id, updated_at=utc_now())
        )
        if (await connection.execute(retag)).rowcount:
            return
        try:
            await self._quotas.check_new_tag(connection, repository_id, repository)
        except DeniedError:
            # On PostgreSQL, a concurrent push of the same tag may have created it while this
            # one waited for the repository lock the check takes: then this push is a retag.
            if (await connection.execute(retag)).rowcount:
                return
            raise
        inserted = await connection.execute(
            self._database.insert_ignoring_duplicates(tags)
            .values(
                repository_id=repository_id, name=tag, manifest_id=manifest_id, updated_at=utc_now()
            )
            .returning(tags.c.name)
        )
        # RETURNING, not rowcount: PostgreSQL reports no rowcount for ON CONFLICT DO NOTHING.
        if inserted.first() is None:
            # A concurrent push created the same tag between our update and insert.
            await connection.execute(retag)


def _digest_for(reference: str | Digest, payload: bytes) -> Digest:
    """The manifest's digest; when it is pushed by digest, that digest must match the bytes."""
    if isinstance(reference, str):
        return digest_bytes(payload)
    actual = digest_bytes(payload, reference.algorithm)
    if actual != reference:
        raise DigestInvalidError(f"manifest has digest {actual}, not the {reference} in the URL")
    return actual


async def _manifest_id(connection: AsyncConnection, repository_id: int, digest: str) -> int | None:
    query = select(manifests.c.id).where(
        manifests.c.repository_id == repository_id, manifests.c.digest == digest
    )
    return (await connection.execute(query)).scalar_one_or_none()


async def _check_references(
    connection: AsyncConnection, repository_id: int, parsed: ParsedManifest
) -> None:
    """Refuse a manifest whose blobs or child manifests the repository does not hold.

    The rows found stay locked until the manifest is stored, so that garbage collection, which
    locks a row before removing it, cannot remove one in between (SQLite serializes writers).
    """
    wanted_blobs = {str(descriptor.digest) for descriptor in parsed.required_blobs}
    if wanted_blobs:
        query = (
            select(repository_blobs.c.digest, blobs.c.size)
            .join(blobs, blobs.c.digest == repository_blobs.c.digest)
            .where(
                repository_blobs.c.repository_id == repository_id,
                repository_blobs.c.digest.in_(wanted_blobs),
            )
            .with_for_update(read=True, of=repository_blobs)
        )
        stored = {row.digest: row.size for row in (await connection.execute(query)).all()}
        _check_sizes(parsed.required_blobs, stored)
        missing = wanted_blobs - set(stored)
        if missing:
            raise ManifestBlobUnknownError(
                f"manifest references blob {sorted(missing)[0]}, which is not in the repository",
                detail={"digest": sorted(missing)[0]},
            )
    wanted_manifests = {str(descriptor.digest) for descriptor in parsed.manifest_references}
    if wanted_manifests:
        query = (
            select(manifests.c.digest, manifests.c.size)
            .where(
                manifests.c.repository_id == repository_id,
                manifests.c.digest.in_(wanted_manifests),
                manifests.c.deleted_at.is_(None),
            )
            .with_for_update(read=True)
        )
        stored = {row.digest: row.size for row in (await connection.execute(query)).all()}
        _check_sizes(parsed.manifest_references, stored)
        missing = wanted_manifests - set(stored)
        if missing:
            raise ManifestBlobUnknownError(
                f"index references manifest {sorted(missing)[0]}, which is not in the repository",
                detail={"digest": sorted(missing)[0]},
            )


def _check_sizes(descriptors: tuple[Descriptor, ...], stored: dict[str, int]) -> None:
    """Refuse a descriptor whose size is not the size of the content it names."""
    for descriptor in descriptors:
        size = stored.get(str(descriptor.digest))
        if size is not None and size != descriptor.size:
            raise ManifestInvalidError(
                f"the descriptor of {descriptor.digest} says {descriptor.size} bytes,"
                f" but it is {size} bytes"
            )
