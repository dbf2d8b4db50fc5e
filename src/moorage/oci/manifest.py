"""Manifest validation: image manifests and indexes, OCI and Docker, and referrers indexes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from moorage.errors import (
    DigestInvalidError,
    ManifestInvalidError,
    ManifestTooLargeError,
    UnsupportedError,
)
from moorage.oci.digest import Digest
from moorage.oci.media_types import (
    DOCKER_SCHEMA1_TYPES,
    INDEX_MEDIA_TYPES,
    MANIFEST_MEDIA_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    is_nondistributable,
    is_valid_media_type,
    media_type_essence,
)
from moorage.oci.quoting import shown

MAX_MANIFEST_BYTES: Final = 4 * 1024 * 1024
SIZE_MAX: Final = 2**63 - 1
"""The largest descriptor size: clients decode sizes as signed 64-bit integers."""
"""The largest manifest accepted, in bytes."""


@dataclass(frozen=True)
class Descriptor:
    """A reference to content by media type, digest and size, as manifests hold them."""

    media_type: str
    digest: Digest
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    platform: dict[str, object] | None = None

    def to_json(self) -> dict[str, object]:
        """Return the descriptor as a JSON object with OCI field names, leaving out empty fields."""
        document: dict[str, object] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.artifact_type is not None:
            document["artifactType"] = self.artifact_type
        if self.annotations is not None:
            document["annotations"] = dict(self.annotations)
        if self.platform is not None:
            document["platform"] = dict(self.platform)
        return document


@dataclass(frozen=True)
class ParsedManifest:
    """The parts of a validated manifest or index that the registry acts on."""

    media_type: str
    config: Descriptor | None
    layers: tuple[Descriptor, ...]
    manifests: tuple[Descriptor, ...]
    subject: Descriptor | None
    artifact_type: str | None
    annotations: dict[str, str] | None

    @property
    def is_index(self) -> bool:
        """Tell whether this lists other manifests (an OCI index or a Docker manifest list)."""
        return self.media_type in INDEX_MEDIA_TYPES

    @property
    def blob_references(self) -> tuple[Descriptor, ...]:
        """Return the blobs this manifest needs: its config, then its layers."""
        if self.config is None:
            return self.layers
        return (self.config, *self.layers)

    @property
    def required_blobs(self) -> tuple[Descriptor, ...]:
        """Return the blobs the registry must hold: all but non-distributable layers."""
        return tuple(
            blob for blob in self.blob_references if not is_nondistributable(blob.media_type)
        )

    @property
    def manifest_references(self) -> tuple[Descriptor, ...]:
        """Return the child manifests this index needs."""
        return self.manifests


def parse_manifest(payload: bytes, content_type: str | None) -> ParsedManifest:
    """Validate a manifest body sent with `content_type`, or raise ManifestInvalidError.

    Docker schema 1 manifests raise UnsupportedError instead.
    """
    document = _load(payload)
    media_type = _media_type(document, content_type)
    subject = _optional_descriptor(document, "subject")
    artifact_type = _optional_media_type(document, "artifactType", "artifactType")
    annotations = _annotations(document.get("annotations"), "annotations")
    if media_type in INDEX_MEDIA_TYPES:
        return ParsedManifest(
            media_type=media_type,
            config=None,
            layers=(),
            manifests=_descriptor_list(document, "manifests"),
            subject=subject,
            artifact_type=artifact_type,
            annotations=annotations,
        )
    if "config" not in document:
        raise ManifestInvalidError("image manifest has no config descriptor")
    return ParsedManifest(
        media_type=media_type,
        config=_descriptor(document["config"], "config"),
        layers=_descriptor_list(document, "layers"),
        manifests=(),
        subject=subject,
        artifact_type=artifact_type,
        annotations=annotations,
    )


def referrer_descriptor(digest: Digest, size: int, parsed: ParsedManifest) -> Descriptor:
    """Return the descriptor that lists a manifest in the referrers index of its subject."""
    artifact_type = parsed.artifact_type
    if artifact_type is None and parsed.config is not None:
        artifact_type = parsed.config.media_type
    annotations = None if parsed.annotations is None else dict(parsed.annotations)
    return Descriptor(
        media_type=parsed.media_type,
        digest=digest,
        size=size,
        artifact_type=artifact_type,
        annotations=annotations,
    )


def build_referrers_index(descriptors: Sequence[Descriptor]) -> bytes:
    """Return the compact JSON of an OCI index listing `descriptors`."""
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor.to_json() for descriptor in descriptors],
    }
    return json.dumps(index, separators=(",", ":")).encode("utf-8")


def _load(payload: bytes) -> dict[str, object]:
    """Decode the payload as a JSON object within the size limit."""
    if len(payload) > MAX_MANIFEST_BYTES:
        raise ManifestTooLargeError(f"manifest is {len(payload)} bytes; the limit is 4 MiB")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ManifestInvalidError(f"manifest is not valid UTF-8: {error.reason}") from error
    try:
        document: object = json.loads(text)
    except ValueError as error:
        raise ManifestInvalidError(f"manifest is not valid JSON: {error}") from error
    except RecursionError as error:
        raise ManifestInvalidError("manifest is not valid JSON: nested too deeply") from error
    if not isinstance(document, dict):
        raise ManifestInvalidError("manifest must be a JSON object")
    return document


def _media_type(document: dict[str, object], content_type: str | None) -> str:
    """Settle the manifest's media type from its body, its Content-Type, or its shape."""
    declared = document.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalidError("manifest mediaType must be a string")
    header = media_type_essence(content_type) if content_type else ""
    if declared is not None and header and declared != header:
        raise ManifestInvalidError(
            f"manifest mediaType {shown(declared)} differs from Content-Type {shown(header)}"
        )
    media_type = declared if declared is not None else header or None
    schema_version = document.get("schemaVersion")
    if media_type in DOCKER_SCHEMA1_TYPES or _is_int(schema_version, 1):
        raise UnsupportedError("Docker schema 1 manifests are not supported")
    if not _is_int(schema_version, 2):
        raise ManifestInvalidError(
            f"manifest schemaVersion must be 2; got {shown(json.dumps(schema_version))}"
        )
    if media_type is None:
        return _inferred_media_type(document)
    if media_type not in MANIFEST_MEDIA_TYPES:
        raise ManifestInvalidError(f"manifest media type {shown(media_type)} is not known")
    return media_type


def _inferred_media_type(document: dict[str, object]) -> str:
    """Guess the media type of a manifest that declares none, from the fields it has."""
    if "manifests" in document:
        return OCI_INDEX
    if "config" in document:
        return OCI_MANIFEST
    raise ManifestInvalidError(
        "manifest has no mediaType and neither 'manifests' nor 'config' to tell its kind"
    )


def _is_int(value: object, expected: int) -> bool:
    """Tell whether a JSON value is the integer `expected`; true and false do not count."""
    return isinstance(value, int) and not isinstance(value, bool) and value == expected


def _descriptor_list(document: dict[str, object], key: str) -> tuple[Descriptor, ...]:
    """Validate the required list of descriptors under `key`."""
    items = document.get(key)
    if not isinstance(items, list):
        raise ManifestInvalidError(f"manifest {key} must be a list of descriptors")
    return tuple(_descriptor(item, f"{key}[{position}]") for position, item in enumerate(items))


def _optional_descriptor(document: dict[str, object], key: str) -> Descriptor | None:
    """Validate the descriptor under `key` if there is one."""
    value = document.get(key)
    return None if value is None else _descriptor(value, key)


def _descriptor(value: object, where: str) -> Descriptor:
    """Validate one descriptor found at `where` in the manifest."""
    if not isinstance(value, dict):
        raise ManifestInvalidError(f"manifest {where} must be a descriptor object")
    media_type = _optional_media_type(value, "mediaType", f"{where}.mediaType")
    if media_type is None:
        raise ManifestInvalidError(f"manifest {where}.mediaType is missing")
    platform = value.get("platform")
    if platform is not None and not isinstance(platform, dict):
        raise ManifestInvalidError(f"manifest {where}.platform must be an object")
    for key in ("os", "architecture", "variant", "os.version"):
        if platform is not None and key in platform and not isinstance(platform[key], str):
            raise ManifestInvalidError(f"manifest {where}.platform.{key} must be a string")
    return Descriptor(
        media_type=media_type,
        digest=_digest(value.get("digest"), f"{where}.digest"),
        size=_size(value.get("size"), f"{where}.size"),
        artifact_type=_optional_media_type(value, "artifactType", f"{where}.artifactType"),
        annotations=_annotations(value.get("annotations"), f"{where}.annotations"),
        platform=platform,
    )


def _optional_media_type(document: dict[str, object], key: str, where: str) -> str | None:
    """Validate the media type under `key` if there is one."""
    value = document.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not is_valid_media_type(value):
        raise ManifestInvalidError(
            f"manifest {where} must be a media type such as 'application/octet-stream'"
        )
    return value


def _digest(value: object, where: str) -> Digest:
    """Validate the digest of a descriptor."""
    if not isinstance(value, str):
        raise ManifestInvalidError(f"manifest {where} must be a digest string")
    try:
        return Digest.parse(value)
    except DigestInvalidError as error:
        raise ManifestInvalidError(f"manifest {where} is invalid: {error.message}") from error


def _size(value: object, where: str) -> int:
    """Validate the size of a descriptor: what a signed 64-bit integer holds, as clients need."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= SIZE_MAX:
        raise ManifestInvalidError(
            f"manifest {where} must be a non-negative integer of at most {SIZE_MAX}"
        )
    return value


def _annotations(value: object, where: str) -> dict[str, str] | None:
    """Validate an annotations object: string keys to string values."""
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise ManifestInvalidError(f"manifest {where} must be an object of strings")
    return dict(value)
