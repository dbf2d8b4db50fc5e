"""Backups of a repository as an OCI image layout archive: export streams one, import loads one.

Export plans the whole archive from the metadata first: every tag's manifest, the children of
indexes, the configs and layers they need, and the archive's exact length. A missing tag or a
blob lost from storage is refused before the first byte. Then it writes tar headers and streams
each blob from storage a chunk at a time, so memory stays flat whatever the repository's size.

Import reads the tar front to back. Blobs may come before index.json, so every blob is staged
as a storage upload while its digest is checked. When the archive ends, the manifests are read
back from their uploads and validated, the uploads of configs and layers become blobs, and the
repository, its blob links, manifests and tags are written in one transaction. A damaged or
malformed archive stops the import before anything is linked into a repository.
"""

from __future__ import annotations

import tarfile
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import IO, Final

from anyio import to_thread
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from moorage.accounts.quotas import QuotaService
from moorage.clock import utc_now
from moorage.content.manifests import ManifestService
from moorage.content.repositories import (
    claim_blob,
    ensure_repository,
    find_repository_id,
    link_blob,
)
from moorage.errors import (
    ArchiveInvalidError,
    BlobUnknownError,
    DigestInvalidError,
    InvalidInputError,
    ManifestUnknownError,
    NameInvalidError,
    NameUnknownError,
    ResourceUnknownError,
    UnsupportedError,
)
from moorage.log import get_logger
from moorage.metadata.database import Database
from moorage.metadata.tables import (
    blobs,
    manifests,
    namespaces,
    repository_blobs,
    tags,
    upload_sessions,
)
from moorage.oci import layout
from moorage.oci.digest import Digest, digest_of_hasher, new_hasher
from moorage.oci.manifest import MAX_MANIFEST_BYTES, Descriptor, ParsedManifest, parse_manifest
from moorage.oci.reference import validate_repository_name
from moorage.storage.base import IO_CHUNK_BYTES, BlobMissingError, BlobStore

log = get_logger(__name__)

# Indexes of indexes are legal; deeper nesting than this is taken for a hostile archive.
MAX_INDEX_DEPTH: Final = 8

DOCUMENT, MANIFEST, BLOB, DIRECTORY = "document", "manifest", "blob", "directory"


@dataclass(frozen=True, slots=True)
class ArchiveMember:
    """One member of an export: a document built in memory, a manifest, a blob, or a folder."""

    name: str
    kind: str
    size: int = 0
    digest: Digest | None = None
    content: bytes | None = None

    def header(self) -> bytes:
        """The member's tar header."""
        if self.kind == DIRECTORY:
            return layout.directory_header(self.name)
        return layout.file_header(self.name, self.size)


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """Everything an export writes, settled before its first byte."""

    repository: str
    repository_id: int
    tag: str | None
    members: tuple[ArchiveMember, ...]

    @property
    def length(self) -> int:
        """The archive's size in bytes."""
        return sum(
            len(member.header()) + member.size + len(layout.padding(member.size))
            for member in self.members
        ) + len(layout.TAR_END)

    @property
    def filename(self) -> str:
        """A file name for the archive: the repository's, with the tag if only one is in it."""
        name = self.repository.replace("/", "_")
        return f"{name}_{self.tag}.tar" if self.tag else f"{name}.tar"


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import stored."""

    repository: str
    tags: tuple[str, ...]
    manifests: int
    blobs: int
    blob_bytes: int


@dataclass
class _ImportPlan:
    """The manifests (children before parents), blobs and tags an archive holds."""

    manifests: dict[Digest, str] = field(default_factory=dict)
    blobs: dict[Digest, int] = field(default_factory=dict)
    tags: list[tuple[str, Digest]] = field(default_factory=list)


class ArchiveService:
    """Exports repositories as OCI image layout archives and imports them back."""

    def __init__(
        self,
        database: Database,
        store: BlobStore,
        manifest_service: ManifestService,
        quotas: QuotaService,
    ) -> None:
        self._database = database
        self._store = store
        self._manifests = manifest_service
        self._quotas = quotas

    async def plan_export(self, repository: str, tag: str | None = None) -> ExportPlan:
        """The archive of every tag of `repository` (or of one tag), checked to be complete."""
        async with self._database.reading() as connection:
            repository_id = await find_repository_id(connection, repository)
            if repository_id is None:
                raise NameUnknownError(f"repository {repository} is unknown")
            tagged = await _tagged(connection, repository_id, tag)
            if tag is not None and not tagged:
                raise ManifestUnknownError(f"tag {tag} is unknown to repository {repository}")
            # TODO: follow referrers (signatures, SBOMs whose subject is an exported manifest)
            # - an archive restored elsewhere lacks them.
            walk = _Walk(connection, repository, repository_id)
            for _tag, descriptor in tagged:
                await walk.visit(descriptor.digest, depth=0)
            blob_sizes = await walk.blob_sizes()
        for digest in blob_sizes:
            if await self._store.blob_size(digest) is None:
                raise BlobUnknownError(f"blob {digest} of {repository} is missing from storage")
        entries = [layout.LayoutEntry(name, descriptor) for name, descriptor in tagged]
        return ExportPlan(
            repository,
            repository_id,
            tag,
            _members(layout.build_index(entries), walk.manifest_sizes, blob_sizes),
        )

    async def stream(self, plan: ExportPlan) -> AsyncIterator[bytes]:
        """The archive's bytes, a header or a chunk of content at a time."""
        for member in plan.members:
            yield member.header()
            async for chunk in self._content(plan, member):
                yield chunk
            if padding := layout.padding(member.size):
                yield padding
        yield layout.TAR_END
        log.info("repository exported", repository=plan.repository, size=plan.length)

    async def import_archive(self, repository: str, source: IO[bytes]) -> ImportResult:
        """Load an archive into `repository`: every blob verified, all of it or nothing."""
        await self._check_namespace(validate_repository_name(repository))
        await self._quotas.refuse_if_repository_would_exceed(repository)

        staging = _Staging(self._store, self._database, repository)
        try:
            entries = await _read_archive(source, staging)
            plan = await _plan_import(entries, staging)
            # TODO: check the tag quota before blobs become permanent - an import it refuses
            # leaves them in storage, unlinked, until garbage collection removes them.
            await staging.flush(plan.blobs)
            await self._record(repository, plan, staging)
        finally:
            await staging.discard()
        log.info("archive imported", repository=repository, tags=len(plan.tags))
        return ImportResult(
            repository,
            tuple(tag for tag, _digest in plan.tags),
            len(plan.manifests),
            len(plan.blobs),
            sum(plan.blobs.values()),
        )

    async def _check_namespace(self, repository: str) -> None:
        namespace, slash, _name = repository.partition("/")
        if not slash:
            raise NameInvalidError(f"give the repository as NAMESPACE/NAME, not {repository!r}")
        async with self._database.reading() as connection:
            query = select(namespaces.c.id).where(namespaces.c.name == namespace)
            if (await connection.execute(query)).first() is None:
                raise ResourceUnknownError(f"there is no namespace {namespace}; create it first")

    async def _content(self, plan: ExportPlan, member: ArchiveMember) -> AsyncIterator[bytes]:
        if member.content is not None:
            yield member.content
        elif member.kind == MANIFEST:
            assert member.digest is not None
            yield await _manifest_content(self._database, plan.repository_id, member.digest)
        elif member.kind == BLOB:
            assert member.digest is not None
            sent = 0
            try:
                async for chunk in self._store.read_blob(member.digest):
                    sent += len(chunk)
                    yield chunk
            except BlobMissingError:
                raise BlobUnknownError(f"blob {member.digest} went missing from storage") from None
            if sent != member.size:
                raise BlobUnknownError(
                    f"blob {member.digest} is {sent} bytes in storage, not {member.size}"
                )

    async def _record(self, repository: str, plan: _ImportPlan, staging: _Staging) -> None:
        async with self._database.writing() as connection:
            repository_id = await ensure_repository(
                self._database, connection, repository, self._quotas
            )
            for digest, size in plan.blobs.items():
                # The file goes into place with the blob's row locked, in the transaction that
                # links it: garbage collection cannot delete it in between (see repositories).
                await claim_blob(self._database, connection, digest, size)
                await staging.commit(digest)
                await link_blob(self._database, connection, repository_id, digest)
            # Every manifest, children before the indexes that list them; then the tags.
            untagged: list[tuple[Digest, str | None]] = [
                (digest, None) for digest in plan.manifests
            ]
            for digest, tag in untagged + [(digest, tag) for tag, digest in plan.tags]:
                await self._manifests.put_in(
                    connection,
                    repository_id,
                    repository,
                    digest,
                    await staging.read(digest),
                    plan.manifests[digest],
                    tag,
                )


class _Walk:
    """Follows manifests from the tagged ones down to their children and blobs."""

    def __init__(self, connection: AsyncConnection, repository: str, repository_id: int) -> None:
        self._connection = connection
        self._repository = repository
        self._repository_id = repository_id
        self.manifest_sizes: dict[Digest, int] = {}
        self._blobs: dict[Digest, Digest] = {}

    async def visit(self, digest: Digest, depth: int) -> None:
        if digest in self.manifest_sizes:
            return
        query = select(manifests.c.media_type, manifests.c.content).where(
            manifests.c.repository_id == self._repository_id, manifests.c.digest == str(digest)
        )
        row = (await self._connection.execute(query)).one_or_none()
        if row is None:
            raise ManifestUnknownError(
                f"manifest {digest} is no longer in {self._repository}, but an index lists it"
            )
        if depth > MAX_INDEX_DEPTH:
            raise UnsupportedError(f"indexes in {self._repository} are nested too deep to export")
        self.manifest_sizes[digest] = len(row.content)
        parsed = parse_manifest(row.content, row.media_type)
        for blob in parsed.required_blobs:
            self._blobs.setdefault(blob.digest, digest)
        for child in parsed.manifest_references:
            await self.visit(child.digest, depth + 1)

    async def blob_sizes(self) -> dict[Digest, int]:
        """The size of every blob visited, each of which the repository must hold."""
        query = (
            select(blobs.c.digest, blobs.c.size)
            .join(repository_blobs, repository_blobs.c.digest == blobs.c.digest)
            .where(repository_blobs.c.repository_id == self._repository_id)
        )
        linked = {row.digest: row.size for row in await self._connection.execute(query)}
        sizes = {}
        for digest, manifest in self._blobs.items():
            if str(digest) not in linked:
                raise BlobUnknownError(
                    f"blob {digest} of manifest {manifest} is no longer in {self._repository}"
                )
            sizes[digest] = int(linked[str(digest)])
        return sizes


class _Staging:
    """Blobs of an archive being imported, each held in a storage upload until the end.

    The uploads are registered as upload sessions, so that if the import dies half-way, the
    expiry of idle uploads removes what it left.
    """

    def __init__(self, store: BlobStore, database: Database, repository: str) -> None:
        self._store = store
        self._database = database
        self._repository = repository
        self._uploads: dict[Digest, tuple[str, int]] = {}
        self._committed: set[Digest] = set()

    async def stage(self, digest: Digest, chunks: AsyncIterator[bytes]) -> None:
        """Store one blob's bytes as an upload, checking them against their digest."""
        if digest in self._uploads:
            return
        upload_id = str(uuid.uuid4())
        await self._store.create_upload(upload_id)
        self._uploads[digest] = (upload_id, 0)
        now = utc_now()
        async with self._database.writing() as connection:
            await connection.execute(
                upload_sessions.insert().values(
                    id=upload_id,
                    repository_name=self._repository,
                    size=0,
                    created_at=now,
                    updated_at=now,
                )
            )
        hasher = new_hasher(digest.algorithm)
        # Made empty just above, and known to no one else.
        size = await self._store.append_upload(upload_id, chunks, hasher.update, known_size=0)
        actual = digest_of_hasher(digest.algorithm, hasher)
        if actual != digest:
            raise DigestInvalidError(
                f"archive member {layout.blob_member(digest)} has digest {actual}:"
                " the archive is damaged"
            )
        self._uploads[digest] = (upload_id, size)

    def size_of(self, digest: Digest, what: str) -> int:
        """The size of a staged blob; ArchiveInvalidError naming `what` if the archive lacks it."""
        staged = self._uploads.get(digest)
        if staged is None:
            raise ArchiveInvalidError(
                f"the archive lacks {what}: it is incomplete, truncated or damaged"
            )
        return staged[1]

    async def read(self, digest: Digest) -> bytes:
        """The content of a small staged blob (a manifest)."""
        content = bytearray()
        async for chunk in self._store.read_upload(self._uploads[digest][0]):
            content += chunk
        return bytes(content)

    async def flush(self, chosen: Iterable[Digest]) -> None:
        """Make the chosen uploads durable, before the write transaction that commits them."""
        for digest in chosen:
            await self._store.flush_upload(self._uploads[digest][0])

    async def commit(self, digest: Digest) -> None:
        """Make one chosen upload a blob of the store."""
        await self._store.commit_upload(self._uploads[digest][0], digest)
        self._committed.add(digest)

    async def discard(self) -> None:
        """Drop every upload not committed, and the sessions of all."""
        for digest, (upload_id, _size) in self._uploads.items():
            if digest not in self._committed:
                await self._store.delete_upload(upload_id)
        ids = [upload_id for upload_id, _size in self._uploads.values()]
        if ids:
            async with self._database.writing() as connection:
                await connection.execute(
                    delete(upload_sessions).where(upload_sessions.c.id.in_(ids))
                )


async def _tagged(
    connection: AsyncConnection, repository_id: int, tag: str | None
) -> list[tuple[str, Descriptor]]:
    query = (
        select(tags.c.name, manifests.c.digest, manifests.c.media_type, manifests.c.size)
        .join(manifests, manifests.c.id == tags.c.manifest_id)
        .where(tags.c.repository_id == repository_id)
        .order_by(tags.c.name)
    )
    if tag is not None:
        query = query.where(tags.c.name == tag)
    return [
        (row.name, Descriptor(row.media_type, Digest.parse(row.digest), row.size))
        for row in await connection.execute(query)
    ]


def _members(
    index: bytes, manifest_sizes: dict[Digest, int], blob_sizes: dict[Digest, int]
) -> tuple[ArchiveMember, ...]:
    document = layout.layout_document()
    members = [
        ArchiveMember(layout.LAYOUT_FILE, DOCUMENT, len(document), content=document),
        ArchiveMember(layout.INDEX_FILE, DOCUMENT, len(index), content=index),
        ArchiveMember(layout.BLOBS_DIRECTORY, DIRECTORY),
    ]
    algorithms = sorted({digest.algorithm for digest in [*manifest_sizes, *blob_sizes]})
    members += [
        ArchiveMember(f"{layout.BLOBS_DIRECTORY}/{algorithm}", DIRECTORY)
        for algorithm in algorithms
    ]
    members += [
        ArchiveMember(layout.blob_member(digest), MANIFEST, size, digest)
        for digest, size in manifest_sizes.items()
    ]
    members += [
        ArchiveMember(layout.blob_member(digest), BLOB, size, digest)
        for digest, size in blob_sizes.items()
        if digest not in manifest_sizes
    ]
    return tuple(members)


async def _manifest_content(database: Database, repository_id: int, digest: Digest) -> bytes:
    query = select(manifests.c.content).where(
        manifests.c.repository_id == repository_id, manifests.c.digest == str(digest)
    )
    async with database.reading() as connection:
        content = (await connection.execute(query)).scalar_one_or_none()
    if content is None:
        raise ManifestUnknownError(f"manifest {digest} was deleted during the export")
    return bytes(content)


async def _read_archive(source: IO[bytes], staging: _Staging) -> list[layout.LayoutEntry]:
    """Stage every blob of the tar stream; the entries of its index.json."""
    archive = await to_thread.run_sync(_open, source)
    documents: dict[str, bytes] = {}
    while (member := await to_thread.run_sync(_next, archive)) is not None:
        if member.isdir():
            continue
        name = layout.member_name(member.name)
        digest = layout.blob_digest(name)
        if digest is None and name not in (layout.LAYOUT_FILE, layout.INDEX_FILE):
            continue  # files other tools add beside the layout
        if not member.isfile():
            raise ArchiveInvalidError(f"archive member {name} is a link, not a regular file")
        if digest is not None:
            await staging.stage(digest, _chunks(archive, member))
        else:
            documents[name] = await _read_small(archive, member, MAX_MANIFEST_BYTES)
    if layout.LAYOUT_FILE not in documents:
        raise ArchiveInvalidError(
            "the archive has no oci-layout file: it is not an OCI image layout archive"
        )
    layout.check_layout_document(documents[layout.LAYOUT_FILE])
    if layout.INDEX_FILE not in documents:
        raise ArchiveInvalidError(
            "the archive has no index.json: it is incomplete, truncated or damaged"
        )
    return layout.parse_index(documents[layout.INDEX_FILE])


async def _plan_import(entries: list[layout.LayoutEntry], staging: _Staging) -> _ImportPlan:
    """Check that the staged blobs hold every manifest, child and blob the index names."""
    plan = _ImportPlan()

    async def visit(descriptor: Descriptor, depth: int) -> None:
        digest = descriptor.digest
        if digest in plan.manifests:
            return
        if depth > MAX_INDEX_DEPTH:
            raise ArchiveInvalidError(f"indexes are nested over {MAX_INDEX_DEPTH} deep")
        size = staging.size_of(digest, f"manifest {digest}")
        _check_size(descriptor, size, "manifest")
        if size > MAX_MANIFEST_BYTES:
            raise ArchiveInvalidError(f"manifest {digest} is {size} bytes; the limit is 4 MiB")
        parsed = _parse_staged(digest, await staging.read(digest), descriptor.media_type)
        for child in parsed.manifest_references:
            await visit(child, depth + 1)
        for blob in parsed.required_blobs:
            size = staging.size_of(blob.digest, f"blob {blob.digest} of manifest {digest}")
            _check_size(blob, size, "blob")
            plan.blobs[blob.digest] = size
        plan.manifests[digest] = parsed.media_type

    for entry in entries:
        await visit(entry.descriptor, 0)
        if entry.tag is not None:
            plan.tags.append((entry.tag, entry.descriptor.digest))
    return plan


def _check_size(descriptor: Descriptor, size: int, what: str) -> None:
    if descriptor.size != size:
        raise ArchiveInvalidError(
            f"{what} {descriptor.digest} is {size} bytes in the archive, but its descriptor"
            f" says {descriptor.size}"
        )


def _parse_staged(digest: Digest, payload: bytes, media_type: str) -> ParsedManifest:
    try:
        return parse_manifest(payload, media_type)
    except InvalidInputError as exc:
        raise ArchiveInvalidError(f"manifest {digest} in the archive: {exc.message}") from None


def _open(source: IO[bytes]) -> tarfile.TarFile:
    try:
        return tarfile.open(fileobj=source, mode="r|")
    except tarfile.TarError as exc:
        raise ArchiveInvalidError(f"the file is not a tar archive: {exc}") from None


def _next(archive: tarfile.TarFile) -> tarfile.TarInfo | None:
    try:
        return archive.next()
    except tarfile.TarError as exc:
        raise ArchiveInvalidError(f"the archive is damaged or truncated: {exc}") from None


def _read(handle: IO[bytes], size: int) -> bytes:
    try:
        return handle.read(size)
    except tarfile.TarError as exc:
        raise ArchiveInvalidError(f"the archive is damaged or truncated: {exc}") from None


async def _chunks(archive: tarfile.TarFile, member: tarfile.TarInfo) -> AsyncIterator[bytes]:
    handle = archive.extractfile(member)
    assert handle is not None, "a regular file has content"
    while chunk := await to_thread.run_sync(_read, handle, IO_CHUNK_BYTES):
        yield chunk


async def _read_small(archive: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    if member.size > limit:
        raise ArchiveInvalidError(f"{member.name} is {member.size} bytes; the limit is {limit}")
    content = bytearray()
    async for chunk in _chunks(archive, member):
        content += chunk
    return bytes(content)
