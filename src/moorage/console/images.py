"""What a tag's image looks like to a person: its size and the platforms it runs on."""

from __future__ import annotations

import json
from dataclasses import dataclass

from moorage.content.catalog import TagSummary
from moorage.errors import MoorageError
from moorage.oci.digest import Digest
from moorage.oci.manifest import ParsedManifest, parse_manifest
from moorage.services import Services

# Image configs are a few kB; one larger than this is not read for its platform.
CONFIG_READ_LIMIT = 1024 * 1024
# Index entries for attestations and signatures, not for a platform one can run.
UNKNOWN_PLATFORM = "unknown/unknown"


@dataclass(frozen=True, slots=True)
class TagDetails:
    """A tag as the repository page shows it."""

    name: str
    digest: str
    size: int | None
    platforms: list[str]
    summary: TagSummary


async def describe_tag(services: Services, repository: str, tag: TagSummary) -> TagDetails:
    """The tag's compressed image size (all platforms) and its platforms, as far as known."""
    try:
        parsed = await _manifest(services, repository, tag.digest)
        if parsed.is_index:
            size, platforms = await _describe_index(services, repository, parsed)
        else:
            size = _image_size(parsed)
            platforms = await _config_platform(services, repository, parsed)
    except MoorageError:
        # An artifact or a manifest whose parts are missing: show what the listing knows.
        size, platforms = None, []
    return TagDetails(tag.name, tag.digest, size, platforms, tag)


async def _manifest(services: Services, repository: str, digest: str) -> ParsedManifest:
    stored = await services.manifests.get(repository, Digest.parse(digest))
    return parse_manifest(stored.content, stored.media_type)


def _image_size(parsed: ParsedManifest) -> int:
    return sum(blob.size for blob in parsed.blob_references)


async def _describe_index(
    services: Services, repository: str, index: ParsedManifest
) -> tuple[int, list[str]]:
    size, platforms = 0, []
    for child in index.manifests:
        platform = _platform_name(child.platform or {})
        if platform == UNKNOWN_PLATFORM:
            continue
        if platform:
            platforms.append(platform)
        try:
            size += _image_size(await _manifest(services, repository, str(child.digest)))
        except MoorageError:
            size += child.size
    return size, platforms


async def _config_platform(
    services: Services, repository: str, parsed: ParsedManifest
) -> list[str]:
    config = parsed.config
    if config is None or not 0 < config.size <= CONFIG_READ_LIMIT:
        return []
    blob = await services.blobs.stat(repository, config.digest)
    content = b"".join([chunk async for chunk in services.blobs.read(blob, 0, blob.size - 1)])
    try:
        document = json.loads(content)
    except ValueError:
        return []
    platform = _platform_name(document) if isinstance(document, dict) else ""
    return [platform] if platform else []


def _platform_name(platform: dict[str, object]) -> str:
    """`linux/arm64/v8`, from an index entry's platform or an image config."""
    parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
    return "/".join(str(part) for part in parts if isinstance(part, str) and part)
