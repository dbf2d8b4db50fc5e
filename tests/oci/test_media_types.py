"""Tests of moorage.oci.media_types."""

from __future__ import annotations

import pytest

from moorage.oci import media_types


def test_manifest_sets_hold_the_four_manifest_kinds() -> None:
    manifests = {
        media_types.OCI_MANIFEST,
        media_types.OCI_INDEX,
        media_types.DOCKER_MANIFEST,
        media_types.DOCKER_MANIFEST_LIST,
    }
    indexes = {media_types.OCI_INDEX, media_types.DOCKER_MANIFEST_LIST}

    assert manifests == media_types.MANIFEST_MEDIA_TYPES
    assert indexes == media_types.INDEX_MEDIA_TYPES
    assert media_types.INDEX_MEDIA_TYPES < media_types.MANIFEST_MEDIA_TYPES
    assert not media_types.DOCKER_SCHEMA1_TYPES & media_types.MANIFEST_MEDIA_TYPES


def test_schema1_types_cover_signed_and_unsigned() -> None:
    schema1 = {
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    }

    assert schema1 == media_types.DOCKER_SCHEMA1_TYPES


@pytest.mark.parametrize(
    ("content_type", "essence"),
    [
        (
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.oci.image.manifest.v1+json",
        ),
        ("application/JSON; charset=utf-8", "application/json"),
        ("  text/plain ;q=1", "text/plain"),
        ("", ""),
    ],
)
def test_media_type_essence_drops_parameters(content_type: str, essence: str) -> None:
    assert media_types.media_type_essence(content_type) == essence


@pytest.mark.parametrize(
    ("media_type", "expected"),
    [
        (media_types.OCI_LAYER_ZSTD, True),
        (media_types.DOCKER_FOREIGN_LAYER, True),
        ("application/vnd.example.thing+type", True),
        ("application", False),
        ("application/", False),
        ("/json", False),
        ("application/json; charset=utf-8", False),
        ("application/json/x", False),
        ("appli cation/json", False),
        ("a/" + "b" * 128, False),
    ],
)
def test_is_valid_media_type(media_type: str, expected: bool) -> None:
    assert media_types.is_valid_media_type(media_type) is expected
