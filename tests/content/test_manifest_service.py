"""ManifestService over a real database: storing with reference checks, tags, referrers."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator

import pytest
from tests.content.conftest import Content

from moorage.content.uploads import Chunk
from moorage.errors import (
    DigestInvalidError,
    ManifestBlobUnknownError,
    ManifestUnknownError,
    NameUnknownError,
)
from moorage.oci.digest import Digest, digest_bytes
from moorage.oci.media_types import OCI_EMPTY, OCI_INDEX, OCI_MANIFEST

pytestmark = pytest.mark.anyio

REPOSITORY = "test/manifests"


async def body(content: bytes) -> AsyncIterator[bytes]:
    yield content


async def blob(content: Content, data: bytes) -> dict[str, object]:
    """Upload `data` to REPOSITORY; its descriptor as a layer."""
    digest = digest_bytes(data)
    await content.uploads.upload_whole(REPOSITORY, digest, Chunk(body(data), None, len(data)))
    return {"mediaType": OCI_EMPTY, "digest": str(digest), "size": len(data)}


async def image(content: Content, **fields: object) -> bytes:
    """The bytes of a manifest whose config and layer are uploaded."""
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": await blob(content, b"{}"),
        "layers": [await blob(content, os.urandom(32))],
        **fields,
    }
    return json.dumps(document).encode()


def descriptor_of(media_type: str, payload: bytes) -> dict[str, object]:
    return {"mediaType": media_type, "digest": str(digest_bytes(payload)), "size": len(payload)}


async def test_put_then_get_by_tag_and_digest(content: Content) -> None:
    payload = await image(content)

    result = await content.manifests.put(REPOSITORY, "v1", payload, OCI_MANIFEST)

    assert result.digest == digest_bytes(payload)
    assert result.subject is None
    for reference in ("v1", result.digest):
        stored = await content.manifests.get(REPOSITORY, reference)
        assert (stored.digest, stored.media_type, stored.content) == (
            str(result.digest),
            OCI_MANIFEST,
            payload,
        )


async def test_media_type_comes_from_the_header_when_the_body_has_none(content: Content) -> None:
    document = json.loads(await image(content))
    del document["mediaType"]
    payload = json.dumps(document).encode()

    await content.manifests.put(REPOSITORY, "bare", payload, f"{OCI_MANIFEST}; charset=utf-8")

    assert (await content.manifests.get(REPOSITORY, "bare")).media_type == OCI_MANIFEST


async def test_missing_blob_and_missing_child_are_refused(content: Content) -> None:
    absent = os.urandom(8)
    document = json.loads(await image(content))
    document["layers"].append(descriptor_of("application/octet-stream", absent))
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [descriptor_of(OCI_MANIFEST, absent)],
        }
    ).encode()

    with pytest.raises(ManifestBlobUnknownError) as blob_refusal:
        await content.manifests.put(REPOSITORY, "broken", json.dumps(document).encode(), None)
    with pytest.raises(ManifestBlobUnknownError) as child_refusal:
        await content.manifests.put(REPOSITORY, "index", index, OCI_INDEX)

    assert blob_refusal.value.detail == {"digest": str(digest_bytes(absent))}
    assert child_refusal.value.detail == {"digest": str(digest_bytes(absent))}
    with pytest.raises(ManifestUnknownError):
        await content.manifests.get(REPOSITORY, "broken")


async def test_put_by_a_digest_that_does_not_match(content: Content) -> None:
    payload = await image(content)

    with pytest.raises(DigestInvalidError):
        await content.manifests.put(REPOSITORY, digest_bytes(payload + b" "), payload, None)
    await content.manifests.put(REPOSITORY, digest_bytes(payload, "sha512"), payload, None)

    stored = await content.manifests.get(REPOSITORY, digest_bytes(payload, "sha512"))
    assert stored.content == payload


async def test_list_tags_in_order_after_last(content: Content) -> None:
    payload = await image(content)
    for tag in ["b", "a", "C", "a-1", "c"]:
        await content.manifests.put(REPOSITORY, tag, payload, None)

    assert await content.manifests.list_tags(REPOSITORY, None, None) == ["C", "a", "a-1", "b", "c"]
    assert await content.manifests.list_tags(REPOSITORY, 2, "a") == ["a-1", "b"]
    with pytest.raises(NameUnknownError):
        await content.manifests.list_tags("test/nothing", None, None)


async def test_referrers_describe_each_referrer(content: Content) -> None:
    subject = await image(content)
    subject_descriptor = descriptor_of(OCI_MANIFEST, subject)
    typed = await image(
        content,
        artifactType="application/vnd.example.sig",
        subject=subject_descriptor,
        annotations={"a": "1"},
    )
    untyped = await image(content, subject=subject_descriptor)
    await content.manifests.put(REPOSITORY, digest_bytes(typed), typed, None)
    await content.manifests.put(REPOSITORY, digest_bytes(untyped), untyped, None)

    listed = await content.manifests.referrers(REPOSITORY, digest_bytes(subject), None)
    filtered = await content.manifests.referrers(
        REPOSITORY, digest_bytes(subject), "application/vnd.example.sig"
    )

    assert [entry.to_json() for entry in listed] == [
        {
            **descriptor_of(OCI_MANIFEST, typed),
            "artifactType": "application/vnd.example.sig",
            "annotations": {"a": "1"},
        },
        {**descriptor_of(OCI_MANIFEST, untyped), "artifactType": OCI_EMPTY},
    ]
    assert [entry.digest for entry in filtered] == [digest_bytes(typed)]
    assert await content.manifests.referrers(REPOSITORY, Digest("sha256", "0" * 64), None) == []
