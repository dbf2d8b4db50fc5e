"""Media types of OCI and Docker manifests, configs and layers, and the sets the registry uses."""

from __future__ import annotations

import re
from typing import Final

OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
"""An OCI image manifest."""
OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
"""An OCI image index."""
OCI_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
"""An OCI image configuration."""
OCI_EMPTY: Final = "application/vnd.oci.empty.v1+json"
"""The OCI empty descriptor's content, `{}`."""
OCI_LAYER_TAR: Final = "application/vnd.oci.image.layer.v1.tar"
"""An uncompressed OCI layer."""
OCI_LAYER_GZIP: Final = "application/vnd.oci.image.layer.v1.tar+gzip"
"""A gzip-compressed OCI layer."""
OCI_LAYER_ZSTD: Final = "application/vnd.oci.image.layer.v1.tar+zstd"
"""A zstd-compressed OCI layer."""

DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
"""A Docker image manifest, schema 2."""
DOCKER_MANIFEST_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
"""A Docker manifest list, the Docker counterpart of an OCI index."""
DOCKER_CONFIG: Final = "application/vnd.docker.container.image.v1+json"
"""A Docker image configuration."""
DOCKER_LAYER_GZIP: Final = "application/vnd.docker.image.rootfs.diff.tar.gzip"
"""A gzip-compressed Docker layer."""
DOCKER_FOREIGN_LAYER: Final = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
"""A Docker layer that lives outside the registry (Windows base layers)."""

MANIFEST_MEDIA_TYPES: Final = frozenset(
    {OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST}
)
"""Every manifest media type the registry stores."""
INDEX_MEDIA_TYPES: Final = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
"""The manifest media types that list other manifests."""
DOCKER_SCHEMA1_TYPES: Final = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }
)
"""Docker schema 1 manifest types, unsigned and signed; the registry refuses them."""

# RFC 6838 section 4.2: type "/" subtype, each a restricted-name of at most 127 characters.
_RESTRICTED_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MEDIA_TYPE = re.compile(rf"{_RESTRICTED_NAME}/{_RESTRICTED_NAME}")


def is_nondistributable(media_type: str) -> bool:
    """Tell whether a layer type may be left out of registries (its bytes live elsewhere)."""
    return media_type == DOCKER_FOREIGN_LAYER or ".nondistributable." in media_type


def media_type_essence(content_type: str) -> str:
    """Return a Content-Type value without its parameters, trimmed and lower-cased."""
    return content_type.partition(";")[0].strip().lower()


def is_valid_media_type(media_type: str) -> bool:
    """Tell whether `media_type` is a parameterless `type/subtype` as RFC 6838 allows."""
    return _MEDIA_TYPE.fullmatch(media_type) is not None
