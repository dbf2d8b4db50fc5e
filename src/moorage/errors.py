"""The domain exceptions of moorage, grouped by what the caller can do about them.

    MoorageError
    ├── InvalidInputError            the request is malformed: fix it and send it again
    │   ├── NameInvalidError             a repository or namespace name breaks the grammar
    │   ├── ReferenceInvalidError        a tag or digest reference breaks the grammar
    │   ├── DigestInvalidError           a digest is malformed, unsupported or does not match
    │   ├── SizeInvalidError             a declared length does not match the content
    │   ├── ManifestInvalidError         a manifest is not valid JSON of a known kind
    │   │   └── ManifestTooLargeError        a manifest is over the size limit
    │   ├── UploadInvalidError           an upload request is malformed
    │   ├── RangeInvalidError            a chunk does not start where the upload ends
    │   ├── UnsupportedError             the operation or media type is not supported
    │   ├── BlobInUseError               a blob a manifest still uses cannot be deleted
    │   ├── FieldInvalidError            a management API field is wrong (`detail` names it)
    │   └── ArchiveInvalidError          an imported archive is not a valid OCI image layout
    ├── NotFoundError                the thing asked for does not exist (or is not the caller's)
    │   ├── NameUnknownError             no such repository
    │   ├── BlobUnknownError             no such blob in the repository
    │   ├── ManifestUnknownError         no such manifest or tag in the repository
    │   ├── ManifestBlobUnknownError     a manifest refers to a blob or manifest not present
    │   ├── UploadUnknownError           no such upload session, or it expired
    │   └── ResourceUnknownError         no such user, namespace or token (management API)
    ├── AccessError                  the caller may not do this: authenticate or ask for rights
    │   ├── UnauthorizedError            no or bad credentials
    │   ├── DeniedError                  authenticated, but not allowed (quotas included)
    │   └── TooManyRequestsError         rate limited: wait and retry
    ├── ConflictError                what is stored forbids it: it exists already, or is not empty
    ├── StorageUnavailableError      the blob storage service failed or refused: retry later
    ├── DatabaseUnavailableError     the metadata database cannot be reached: retry later
    └── ConfigurationError           the operator's settings are wrong: fix them and restart

Every class below is mapped to its OCI error code and HTTP status in exactly one table,
`moorage.registry.errcodes`; nothing else chooses a status.
"""

from __future__ import annotations

from typing import Any


class MoorageError(Exception):
    """Base of every error moorage raises on purpose."""

    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class InvalidInputError(MoorageError):
    """The request is malformed."""


class NameInvalidError(InvalidInputError):
    """A repository or namespace name breaks the grammar."""


class ReferenceInvalidError(InvalidInputError):
    """A tag or digest reference breaks the grammar."""


class DigestInvalidError(InvalidInputError):
    """A digest is malformed, of an unsupported algorithm, or does not match the content."""


class SizeInvalidError(InvalidInputError):
    """A declared length does not match the content."""


class ManifestInvalidError(InvalidInputError):
    """A manifest is malformed, of an unknown kind, or too large."""


class ManifestTooLargeError(ManifestInvalidError):
    """A manifest is larger than the registry accepts."""


class UploadInvalidError(InvalidInputError):
    """An upload request is malformed."""


class RangeInvalidError(InvalidInputError):
    """A chunk does not continue the upload where it ends, or a range cannot be satisfied."""


class UnsupportedError(InvalidInputError):
    """The operation or the media type is not supported."""


class FieldInvalidError(InvalidInputError):
    """A field of a management request is wrong; `detail` is `{"field": name}`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, {"field": field})
        self.field = field


class ArchiveInvalidError(InvalidInputError):
    """An archive to import is damaged, truncated, or not an OCI image layout."""


class BlobInUseError(InvalidInputError):
    """A manifest of the repository, live or restorable, still uses the blob."""


class NotFoundError(MoorageError):
    """The thing asked for does not exist, or is not visible to the caller."""


class NameUnknownError(NotFoundError):
    """No such repository."""


class BlobUnknownError(NotFoundError):
    """No such blob in the repository."""


class ManifestUnknownError(NotFoundError):
    """No such manifest or tag in the repository."""


class ManifestBlobUnknownError(NotFoundError):
    """A manifest refers to a blob or a child manifest that the repository does not hold."""


class UploadUnknownError(NotFoundError):
    """No such upload session, or it expired."""


class ResourceUnknownError(NotFoundError):
    """No such user, namespace, token or other management resource."""


class AccessError(MoorageError):
    """The caller may not do this; `challenge` is the WWW-Authenticate value to answer with."""

    def __init__(self, message: str, challenge: str | None = None, detail: Any = None) -> None:
        super().__init__(message, detail)
        self.challenge = challenge


class UnauthorizedError(AccessError):
    """No credentials, or bad ones."""


class DeniedError(AccessError):
    """Authenticated, but not allowed, including a quota refusal."""


class TooManyRequestsError(AccessError):
    """Rate limited; `retry_after` says how many seconds to wait."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConflictError(MoorageError):
    """What is stored forbids the request: the thing exists already, or is not empty."""


class StorageUnavailableError(MoorageError):
    """The blob storage service (S3) could not be reached, failed, or refused the request."""


class DatabaseUnavailableError(MoorageError):
    """The metadata database could not be reached, or dropped the connection mid-request."""


class ConfigurationError(MoorageError):
    """The operator's settings are wrong."""
