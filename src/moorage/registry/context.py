"""What the /v2 handlers reach through `request.app.state.registry`."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from moorage.auth.access import AccessController
from moorage.content.blobs import BlobService
from moorage.content.deletion import DeletionService
from moorage.content.manifests import ManifestService
from moorage.content.uploads import UploadService


@dataclass(frozen=True, slots=True)
class RegistryContext:
    """The services behind the registry API."""

    uploads: UploadService
    blobs: BlobService
    manifests: ManifestService
    deletion: DeletionService
    access: AccessController


def registry_of(request: Request) -> RegistryContext:
    """The registry services of the app serving `request`."""
    context: RegistryContext = request.app.state.registry
    return context
