"""The one table from domain exceptions to OCI error codes and HTTP statuses."""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.responses import Response

from moorage import errors


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """An OCI error code with its default message and HTTP status."""

    code: str
    message: str
    status: int


# Keyed by exception class; the most specific class that matches wins (see `error_code_for`).
ERROR_CODES: dict[type[errors.MoorageError], ErrorCode] = {
    errors.NameInvalidError: ErrorCode("NAME_INVALID", "invalid repository name", 400),
    errors.ReferenceInvalidError: ErrorCode("MANIFEST_INVALID", "invalid reference", 400),
    errors.DigestInvalidError: ErrorCode("DIGEST_INVALID", "provided digest did not match", 400),
    errors.SizeInvalidError: ErrorCode("SIZE_INVALID", "provided length did not match", 400),
    errors.ManifestInvalidError: ErrorCode("MANIFEST_INVALID", "manifest invalid", 400),
    errors.ManifestTooLargeError: ErrorCode("MANIFEST_INVALID", "manifest too large", 413),
    errors.UploadInvalidError: ErrorCode("BLOB_UPLOAD_INVALID", "blob upload invalid", 400),
    errors.RangeInvalidError: ErrorCode("BLOB_UPLOAD_INVALID", "range not satisfiable", 416),
    errors.UnsupportedError: ErrorCode("UNSUPPORTED", "the operation is unsupported", 415),
    errors.BlobInUseError: ErrorCode("UNSUPPORTED", "the blob is in use", 405),
    errors.FieldInvalidError: ErrorCode("INVALID_FIELD", "a field is invalid", 400),
    errors.ArchiveInvalidError: ErrorCode("ARCHIVE_INVALID", "the archive is invalid", 400),
    errors.InvalidInputError: ErrorCode("UNSUPPORTED", "invalid request", 400),
    errors.NameUnknownError: ErrorCode("NAME_UNKNOWN", "repository name not known", 404),
    errors.BlobUnknownError: ErrorCode("BLOB_UNKNOWN", "blob unknown to registry", 404),
    errors.ManifestUnknownError: ErrorCode("MANIFEST_UNKNOWN", "manifest unknown", 404),
    errors.ManifestBlobUnknownError: ErrorCode(
        "MANIFEST_BLOB_UNKNOWN", "manifest references a blob unknown to the repository", 400
    ),
    errors.UploadUnknownError: ErrorCode("BLOB_UPLOAD_UNKNOWN", "blob upload unknown", 404),
    errors.ResourceUnknownError: ErrorCode("NOT_FOUND", "not found", 404),
    errors.NotFoundError: ErrorCode("NAME_UNKNOWN", "not found", 404),
    errors.UnauthorizedError: ErrorCode("UNAUTHORIZED", "authentication required", 401),
    errors.DeniedError: ErrorCode("DENIED", "requested access to the resource is denied", 403),
    errors.TooManyRequestsError: ErrorCode("TOOMANYREQUESTS", "too many requests", 429),
    errors.AccessError: ErrorCode("DENIED", "requested access to the resource is denied", 403),
    errors.ConflictError: ErrorCode("CONFLICT", "conflicts with what is stored", 409),
    errors.StorageUnavailableError: ErrorCode("UNAVAILABLE", "blob storage is unavailable", 503),
    errors.DatabaseUnavailableError: ErrorCode(
        "UNAVAILABLE", "metadata database is unavailable", 503
    ),
}

INTERNAL_ERROR = ErrorCode("UNKNOWN", "internal server error", 500)
METHOD_NOT_ALLOWED = ErrorCode("UNSUPPORTED", "the operation is unsupported", 405)
ROUTE_NOT_FOUND = ErrorCode("NAME_UNKNOWN", "no such route in the registry API", 404)


def error_code_for(exc: errors.MoorageError) -> ErrorCode:
    """The error code of `exc`: that of its nearest class in the table."""
    for cls in type(exc).__mro__:
        code = ERROR_CODES.get(cls)
        if code is not None:
            return code
    return INTERNAL_ERROR


def error_body(code: ErrorCode, message: str | None = None, detail: object = None) -> bytes:
    """The spec's `{"errors": [...]}` body for one error."""
    entry: dict[str, object] = {"code": code.code, "message": message or code.message}
    if detail is not None:
        entry["detail"] = detail
    return json.dumps({"errors": [entry]}, separators=(",", ":")).encode()


def error_response(exc: errors.MoorageError) -> Response:
    """The response for a domain exception: its code's status, the JSON body, auth headers."""
    code = error_code_for(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, errors.AccessError) and exc.challenge:
        headers["WWW-Authenticate"] = exc.challenge
    if isinstance(exc, errors.TooManyRequestsError):
        headers["Retry-After"] = str(exc.retry_after)
    return Response(
        error_body(code, exc.message, exc.detail),
        status_code=code.status,
        headers=headers,
        media_type="application/json",
    )
