"""Blob storage: one interface, drivers chosen by name from the settings."""

from __future__ import annotations

from moorage.errors import ConfigurationError
from moorage.settings import Settings
from moorage.storage.base import BlobStore
from moorage.storage.filesystem import FilesystemBlobStore
from moorage.storage.memory import MemoryBlobStore

__all__ = ["BlobStore", "create_blob_store"]


def create_blob_store(settings: Settings) -> BlobStore:
    """The blob store the settings name."""
    if settings.storage.driver == "filesystem":
        return FilesystemBlobStore(settings.blob_path)
    if settings.storage.driver == "memory":
        return MemoryBlobStore()
    if settings.storage.driver == "s3" and settings.storage.s3 is not None:
        # Imported here: boto3 is slow to load, and only deployments on S3 need it.
        from moorage.storage.s3 import S3BlobStore

        return S3BlobStore(settings.storage.s3)
    raise ConfigurationError(f"unknown storage driver {settings.storage.driver!r}")
