"""The OCI image layout as one tar archive: member names, `index.json`, and the tar framing.

An archive holds `oci-layout`, `index.json` (one descriptor per tag, the tag in the
`org.opencontainers.image.ref.name` annotation) and `blobs/<algorithm>/<encoded>` for every
manifest, config and layer. `skopeo copy oci-archive:FILE:TAG` and `ctr images import` read
it. Nothing here does I/O: headers and documents are built as bytes, blob content is streamed
by the caller between a header and its padding.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from typing import Final

from moorage.errors import ArchiveInvalidError, DigestInvalidError, InvalidInputError
from moorage.oci.digest import Digest
from moorage.oci.manifest import Descriptor, parse_manifest
from moorage.oci.media_types import OCI_INDEX
from moorage.oci.reference import validate_tag

LAYOUT_FILE: Final = "oci-layout"
"""The member that marks an image layout and names its version."""
INDEX_FILE: Final = "index.json"
"""The member that lists the layout's tagged manifests."""
BLOBS_DIRECTORY: Final = "blobs"
"""The folder of content-addressed blobs."""
LAYOUT_VERSION: Final = "1.0.0"
"""The image layout version written and accepted."""
REF_NAME: Final = "org.opencontainers.image.ref.name"
"""The index.json annotation that carries a tag."""

TAR_BLOCK: Final = 512
"""Tar pads every member to a multiple of this many bytes."""
TAR_END: Final = b"\0" * (2 * TAR_BLOCK)
"""Two zero blocks close a tar archive."""
# Small enough to read whole; an index.json is a manifest and shares the manifest limit.
MAX_LAYOUT_FILE_BYTES: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class LayoutEntry:
    """One descriptor of index.json and the tag it carries (None: untagged)."""

    tag: str | None
    descriptor: Descriptor


def blob_member(digest: Digest) -> str:
    """The archive member name of a blob: `blobs/<algorithm>/<encoded>`."""
    return f"{BLOBS_DIRECTORY}/{digest.algorithm}/{digest.encoded}"


def member_name(raw: str) -> str:
    """A member name as archives spell it, without a leading `./` or a trailing `/`."""
    name = raw.removeprefix("./").rstrip("/")
    return "" if name == "." else name


def blob_digest(name: str) -> Digest | None:
    """The digest a member under `blobs/` is named after; None for any other member."""
    parts = member_name(name).split("/")
    if parts[0] != BLOBS_DIRECTORY or len(parts) == 1:
        return None
    if len(parts) != 3:
        raise ArchiveInvalidError(
            f"archive member {name[:200]!r} is not named blobs/<algorithm>/<encoded>"
        )
    try:
        return Digest.parse(f"{parts[1]}:{parts[2]}")
    except DigestInvalidError as exc:
        raise ArchiveInvalidError(f"archive member {name[:200]!r}: {exc.message}") from None


def file_header(name: str, size: int) -> bytes:
    """The tar header of a regular file, read-only for everyone but its owner."""
    return _header(name, size, tarfile.REGTYPE, 0o644)


def directory_header(name: str) -> bytes:
    """The tar header of a folder."""
    return _header(f"{name}/", 0, tarfile.DIRTYPE, 0o755)


def padding(size: int) -> bytes:
    """The zero bytes that follow `size` bytes of content to fill its last block."""
    return b"\0" * (-size % TAR_BLOCK)


def file_length(name: str, size: int) -> int:
    """How many archive bytes a file of `size` bytes takes: header, content, padding."""
    return len(file_header(name, size)) + size + len(padding(size))


def layout_document() -> bytes:
    """The content of `oci-layout`."""
    return _compact({"imageLayoutVersion": LAYOUT_VERSION})


def check_layout_document(payload: bytes) -> None:
    """Refuse an `oci-layout` that is not JSON naming the layout version."""
    try:
        document = json.loads(payload)
    except ValueError:
        raise ArchiveInvalidError(f"{LAYOUT_FILE} is not valid JSON") from None
    if not isinstance(document, dict) or document.get("imageLayoutVersion") != LAYOUT_VERSION:
        raise ArchiveInvalidError(
            f"{LAYOUT_FILE} must say imageLayoutVersion {LAYOUT_VERSION!r}: this is not an OCI"
            " image layout moorage reads"
        )


def build_index(entries: list[LayoutEntry]) -> bytes:
    """The content of `index.json`: each entry's descriptor, its tag as an annotation."""
    manifests = []
    for entry in entries:
        document = entry.descriptor.to_json()
        if entry.tag is not None:
            annotations = {**(entry.descriptor.annotations or {}), REF_NAME: entry.tag}
            document["annotations"] = annotations
        manifests.append(document)
    return _compact({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})


def parse_index(payload: bytes) -> list[LayoutEntry]:
    """The entries of an `index.json`; ArchiveInvalidError if it is malformed."""
    try:
        parsed = parse_manifest(payload, None)
    except InvalidInputError as exc:
        raise ArchiveInvalidError(
            f"{INDEX_FILE} is not a valid image index: {exc.message}"
        ) from None
    if not parsed.is_index:
        raise ArchiveInvalidError(f"{INDEX_FILE} is a manifest, not an image index")
    entries, seen = [], set()
    for descriptor in parsed.manifests:
        tag = (descriptor.annotations or {}).get(REF_NAME)
        if tag is not None:
            try:
                validate_tag(tag)
            except InvalidInputError as exc:
                raise ArchiveInvalidError(f"{INDEX_FILE} names a bad tag: {exc.message}") from None
            if tag in seen:
                raise ArchiveInvalidError(f"{INDEX_FILE} names tag {tag} twice")
            seen.add(tag)
        entries.append(LayoutEntry(tag, descriptor))
    return entries


def _header(name: str, size: int, kind: bytes, mode: int) -> bytes:
    member = tarfile.TarInfo(name)
    member.size, member.type, member.mode = size, kind, mode
    # A fixed time and owner: the same repository always gives the same archive.
    member.mtime, member.uid, member.gid = 0, 0, 0
    # PAX, because sha512 member names are longer than the 100 characters of plain ustar.
    return member.tobuf(format=tarfile.PAX_FORMAT)


def _compact(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":")).encode()
