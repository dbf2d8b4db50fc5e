"""Tests of moorage.oci.manifest."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from moorage.errors import ManifestInvalidError, UnsupportedError
from moorage.oci.digest import Digest, digest_bytes
from moorage.oci.manifest import (
    MAX_MANIFEST_BYTES,
    Descriptor,
    ParsedManifest,
    build_referrers_index,
    parse_manifest,
    referrer_descriptor,
)
from moorage.oci.media_types import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
)

CONFIG_DIGEST = digest_bytes(b"config")
LAYER_DIGEST = digest_bytes(b"layer")
CHILD_DIGEST = digest_bytes(b"child")
SUBJECT_DIGEST = digest_bytes(b"subject")


def descriptor_json(media_type: str, digest: Digest, size: int = 10) -> dict[str, object]:
    """Return a descriptor as a manifest would hold it."""
    return {"mediaType": media_type, "digest": str(digest), "size": size}


def image_manifest(**fields: object) -> dict[str, object]:
    """Return a valid OCI image manifest document with `fields` replacing its defaults."""
    document: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor_json(OCI_CONFIG, CONFIG_DIGEST, 6),
        "layers": [descriptor_json(OCI_LAYER_GZIP, LAYER_DIGEST, 5)],
    }
    document.update(fields)
    return document


def image_index(**fields: object) -> dict[str, object]:
    """Return a valid OCI index document with `fields` replacing its defaults."""
    child = descriptor_json(OCI_MANIFEST, CHILD_DIGEST, 100)
    child["platform"] = {"architecture": "amd64", "os": "linux"}
    document: dict[str, object] = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child]}
    document.update(fields)
    return document


def encode(document: object) -> bytes:
    """Return `document` as JSON bytes."""
    return json.dumps(document).encode()


def drop(document: dict[str, object], key: str) -> dict[str, object]:
    """Return a copy of `document` without `key`."""
    return {name: value for name, value in document.items() if name != key}


def parse_invalid(document: object, content_type: str | None = None) -> str:
    """Parse a document that must be refused, returning the error message."""
    with pytest.raises(ManifestInvalidError) as caught:
        parse_manifest(encode(document), content_type)
    return caught.value.message


def test_image_manifest_parts_are_parsed() -> None:
    parsed = parse_manifest(encode(image_manifest()), OCI_MANIFEST)

    assert parsed.media_type == OCI_MANIFEST
    assert parsed.config == Descriptor(OCI_CONFIG, CONFIG_DIGEST, 6)
    assert parsed.layers == (Descriptor(OCI_LAYER_GZIP, LAYER_DIGEST, 5),)
    assert parsed.manifests == ()
    assert parsed.subject is None
    assert parsed.artifact_type is None
    assert parsed.annotations is None
    assert not parsed.is_index


def test_blob_references_are_config_then_layers() -> None:
    parsed = parse_manifest(encode(image_manifest()), None)

    assert [item.digest for item in parsed.blob_references] == [CONFIG_DIGEST, LAYER_DIGEST]
    assert parsed.manifest_references == ()


def test_index_parts_are_parsed_with_platform() -> None:
    parsed = parse_manifest(encode(image_index()), OCI_INDEX)

    assert parsed.is_index
    assert parsed.config is None
    assert parsed.blob_references == ()
    assert parsed.manifest_references == parsed.manifests
    (child,) = parsed.manifests
    assert child.digest == CHILD_DIGEST
    assert child.platform == {"architecture": "amd64", "os": "linux"}


def test_docker_manifest_and_list_are_accepted() -> None:
    docker_manifest = image_manifest(
        mediaType=DOCKER_MANIFEST,
        config=descriptor_json(DOCKER_CONFIG, CONFIG_DIGEST),
        layers=[descriptor_json(DOCKER_LAYER_GZIP, LAYER_DIGEST)],
    )
    docker_list = image_index(mediaType=DOCKER_MANIFEST_LIST)

    parsed_manifest = parse_manifest(encode(docker_manifest), DOCKER_MANIFEST)
    parsed_list = parse_manifest(encode(docker_list), DOCKER_MANIFEST_LIST)

    assert parsed_manifest.media_type == DOCKER_MANIFEST
    assert not parsed_manifest.is_index
    assert parsed_list.media_type == DOCKER_MANIFEST_LIST
    assert parsed_list.is_index


def test_artifact_fields_are_kept() -> None:
    document = image_manifest(
        artifactType="application/vnd.example.sbom",
        config=descriptor_json(OCI_EMPTY, digest_bytes(b"{}"), 2),
        layers=[],
        subject=descriptor_json(OCI_MANIFEST, SUBJECT_DIGEST, 500),
        annotations={"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
    )

    parsed = parse_manifest(encode(document), OCI_MANIFEST)

    assert parsed.artifact_type == "application/vnd.example.sbom"
    assert parsed.layers == ()
    assert parsed.subject == Descriptor(OCI_MANIFEST, SUBJECT_DIGEST, 500)
    assert parsed.annotations == {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"}


def test_descriptor_optional_fields_are_kept() -> None:
    layer = descriptor_json(OCI_LAYER_GZIP, LAYER_DIGEST)
    layer["annotations"] = {"org.opencontainers.image.title": "a.txt"}
    layer["artifactType"] = "application/vnd.example"

    parsed = parse_manifest(encode(image_manifest(layers=[layer])), None)

    assert parsed.layers[0].annotations == {"org.opencontainers.image.title": "a.txt"}
    assert parsed.layers[0].artifact_type == "application/vnd.example"


def test_content_type_parameters_are_ignored() -> None:
    parsed = parse_manifest(encode(image_manifest()), f"{OCI_MANIFEST}; charset=utf-8")

    assert parsed.media_type == OCI_MANIFEST


def test_content_type_names_the_kind_when_the_body_does_not() -> None:
    document = drop(image_manifest(mediaType=DOCKER_MANIFEST), "mediaType")

    assert parse_manifest(encode(document), DOCKER_MANIFEST).media_type == DOCKER_MANIFEST


@pytest.mark.parametrize(
    ("document", "media_type"),
    [
        (drop(image_manifest(), "mediaType"), OCI_MANIFEST),
        (drop(image_index(), "mediaType"), OCI_INDEX),
    ],
)
def test_media_type_is_inferred_from_the_shape(
    document: dict[str, object], media_type: str
) -> None:
    assert parse_manifest(encode(document), None).media_type == media_type
    assert parse_manifest(encode(document), "").media_type == media_type


def test_shape_without_config_or_manifests_cannot_be_inferred() -> None:
    message = parse_invalid({"schemaVersion": 2, "layers": []})

    assert "neither 'manifests' nor 'config'" in message


def test_body_and_content_type_must_agree() -> None:
    message = parse_invalid(image_manifest(), OCI_INDEX)

    assert "differs from Content-Type" in message


def test_unknown_media_type_is_refused() -> None:
    message = parse_invalid(image_manifest(mediaType="application/json"))

    assert "media type 'application/json' is not known" in message


def test_unknown_content_type_is_refused() -> None:
    message = parse_invalid(drop(image_manifest(), "mediaType"), "application/octet-stream")

    assert "is not known" in message


def test_oversized_manifest_is_refused() -> None:
    payload = b" " * (MAX_MANIFEST_BYTES + 1)

    with pytest.raises(ManifestInvalidError, match=r"is 4194305 bytes; the limit is 4 MiB"):
        parse_manifest(payload, OCI_MANIFEST)


def test_manifest_at_the_size_limit_is_accepted() -> None:
    payload = encode(image_manifest())
    payload += b" " * (MAX_MANIFEST_BYTES - len(payload))

    assert parse_manifest(payload, None).media_type == OCI_MANIFEST


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b"{", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b'"text"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
    ],
)
def test_non_object_payloads_are_refused(payload: bytes, fragment: str) -> None:
    with pytest.raises(ManifestInvalidError) as caught:
        parse_manifest(payload, OCI_MANIFEST)

    assert fragment in caught.value.message


@pytest.mark.parametrize("schema_version", [None, 3, "2", 2.5, True, [2]])
def test_schema_version_must_be_2(schema_version: object) -> None:
    document = image_manifest(schemaVersion=schema_version)

    assert "schemaVersion must be 2" in parse_invalid(document)


def test_missing_schema_version_is_refused() -> None:
    assert "schemaVersion must be 2" in parse_invalid(drop(image_manifest(), "schemaVersion"))


@pytest.mark.parametrize(
    ("document", "content_type"),
    [
        ({"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": []}, None),
        (
            {"schemaVersion": 1, "name": "x", "fsLayers": []},
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
        ),
        (
            {"schemaVersion": 2},
            "application/vnd.docker.distribution.manifest.v1+json",
        ),
    ],
)
def test_docker_schema1_is_unsupported(document: object, content_type: str | None) -> None:
    with pytest.raises(UnsupportedError, match="Docker schema 1 manifests are not supported"):
        parse_manifest(encode(document), content_type)


def test_media_type_must_be_a_string() -> None:
    assert "mediaType must be a string" in parse_invalid(image_manifest(mediaType=7))


def test_image_manifest_needs_a_config() -> None:
    assert "no config descriptor" in parse_invalid(drop(image_manifest(), "config"))


@pytest.mark.parametrize("layers", [None, {}, "layer"])
def test_layers_must_be_a_list(layers: object) -> None:
    document = drop(image_manifest(), "layers") if layers is None else image_manifest(layers=layers)

    assert "layers must be a list" in parse_invalid(document)


@pytest.mark.parametrize("manifests", [None, {}, 3])
def test_index_manifests_must_be_a_list(manifests: object) -> None:
    base = image_index()
    document = drop(base, "manifests") if manifests is None else image_index(manifests=manifests)

    assert "manifests must be a list" in parse_invalid(document, OCI_INDEX)


def layer_with(**fields: object) -> dict[str, object]:
    """Return an image manifest whose only layer has `fields` replacing its defaults."""
    layer = descriptor_json(OCI_LAYER_GZIP, LAYER_DIGEST)
    layer.update(fields)
    return image_manifest(layers=[descriptor_json(OCI_LAYER_GZIP, LAYER_DIGEST), layer])


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        (image_manifest(config="sha256:abc"), "config must be a descriptor object"),
        (image_manifest(layers=[[]]), "layers[0] must be a descriptor object"),
        (layer_with(mediaType=None), "layers[1].mediaType is missing"),
        (layer_with(mediaType=3), "layers[1].mediaType must be a media type"),
        (layer_with(mediaType="not a type"), "layers[1].mediaType must be a media type"),
        (layer_with(digest=None), "layers[1].digest must be a digest string"),
        (layer_with(digest=5), "layers[1].digest must be a digest string"),
        (layer_with(digest="sha256:abc"), "layers[1].digest is invalid: sha256 digest must be"),
        (layer_with(digest="md5:abc"), "layers[1].digest is invalid: digest algorithm 'md5'"),
        (layer_with(size=None), "layers[1].size must be a non-negative integer"),
        (layer_with(size=-1), "layers[1].size must be a non-negative integer"),
        (layer_with(size=1.5), "layers[1].size must be a non-negative integer"),
        (layer_with(size="10"), "layers[1].size must be a non-negative integer"),
        (layer_with(size=True), "layers[1].size must be a non-negative integer"),
        (layer_with(annotations=[]), "layers[1].annotations must be an object of strings"),
        (layer_with(annotations={"a": 1}), "layers[1].annotations must be an object of strings"),
        (layer_with(artifactType=1), "layers[1].artifactType must be a media type"),
        (layer_with(platform="linux"), "layers[1].platform must be an object"),
        (image_manifest(subject=[]), "subject must be a descriptor object"),
        (image_manifest(artifactType=""), "artifactType must be a media type"),
        (image_manifest(annotations={"a": None}), "annotations must be an object of strings"),
        (image_manifest(annotations="x"), "annotations must be an object of strings"),
        (image_index(manifests=[{"size": 1}]), "manifests[0].mediaType is missing"),
    ],
)
def test_bad_fields_are_refused_with_their_location(
    document: dict[str, object], fragment: str
) -> None:
    assert fragment in parse_invalid(document)


def test_bad_digest_is_reported_as_manifest_invalid_with_its_cause() -> None:
    with pytest.raises(ManifestInvalidError) as caught:
        parse_manifest(encode(layer_with(digest="sha256:abc")), None)

    assert type(caught.value) is ManifestInvalidError
    assert caught.value.__cause__ is not None


def test_size_zero_is_allowed() -> None:
    parsed = parse_manifest(encode(layer_with(size=0)), None)

    assert parsed.layers[1].size == 0


def test_descriptor_to_json_omits_empty_fields() -> None:
    descriptor = Descriptor(OCI_LAYER_GZIP, LAYER_DIGEST, 5)

    assert descriptor.to_json() == {
        "mediaType": OCI_LAYER_GZIP,
        "digest": str(LAYER_DIGEST),
        "size": 5,
    }


def test_descriptor_to_json_uses_oci_field_names() -> None:
    descriptor = Descriptor(
        OCI_MANIFEST,
        CHILD_DIGEST,
        9,
        artifact_type="application/vnd.example",
        annotations={"k": "v"},
        platform={"os": "linux"},
    )

    assert descriptor.to_json() == {
        "mediaType": OCI_MANIFEST,
        "digest": str(CHILD_DIGEST),
        "size": 9,
        "artifactType": "application/vnd.example",
        "annotations": {"k": "v"},
        "platform": {"os": "linux"},
    }


def test_parsed_descriptor_serialises_back_to_its_input() -> None:
    layer = descriptor_json(OCI_LAYER_GZIP, LAYER_DIGEST, 77)
    layer["annotations"] = {"title": "x"}

    parsed = parse_manifest(encode(image_manifest(layers=[layer])), None)

    assert parsed.layers[0].to_json() == layer


def artifact(**fields: object) -> ParsedManifest:
    """Return a parsed artifact manifest that refers to SUBJECT_DIGEST."""
    document = image_manifest(subject=descriptor_json(OCI_MANIFEST, SUBJECT_DIGEST), **fields)
    return parse_manifest(encode(document), None)


def test_referrer_descriptor_prefers_the_artifact_type() -> None:
    parsed = artifact(artifactType="application/vnd.example.sig", annotations={"k": "v"})
    digest = digest_bytes(b"artifact")

    descriptor = referrer_descriptor(digest, 321, parsed)

    assert descriptor == Descriptor(
        OCI_MANIFEST,
        digest,
        321,
        artifact_type="application/vnd.example.sig",
        annotations={"k": "v"},
    )


def test_referrer_descriptor_falls_back_to_the_config_media_type() -> None:
    parsed = artifact(config=descriptor_json("application/vnd.example.config", CONFIG_DIGEST))

    descriptor = referrer_descriptor(digest_bytes(b"artifact"), 1, parsed)

    assert descriptor.artifact_type == "application/vnd.example.config"
    assert descriptor.annotations is None


def test_referrer_descriptor_of_an_index_without_artifact_type_has_none() -> None:
    parsed = parse_manifest(encode(image_index()), None)

    descriptor = referrer_descriptor(digest_bytes(b"index"), 1, parsed)

    assert descriptor.media_type == OCI_INDEX
    assert descriptor.artifact_type is None


def test_build_referrers_index_is_compact_oci_index_json() -> None:
    descriptor = Descriptor(OCI_MANIFEST, CHILD_DIGEST, 5, artifact_type="application/vnd.example")

    payload = build_referrers_index([descriptor])

    assert b" " not in payload
    assert json.loads(payload) == {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [descriptor.to_json()],
    }


def test_build_referrers_index_of_nothing_lists_nothing() -> None:
    payload = build_referrers_index([])

    assert json.loads(payload)["manifests"] == []
    assert parse_manifest(payload, OCI_INDEX).manifests == ()


def test_referrers_index_parses_back_as_a_valid_index() -> None:
    descriptor = referrer_descriptor(
        digest_bytes(b"artifact"), 42, artifact(artifactType="application/vnd.example")
    )

    parsed = parse_manifest(build_referrers_index([descriptor]), OCI_INDEX)

    assert parsed.manifests == (descriptor,)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
_manifest_keys = st.sampled_from(
    [
        "schemaVersion",
        "mediaType",
        "config",
        "layers",
        "manifests",
        "subject",
        "artifactType",
        "annotations",
        "mediaType",
        "digest",
        "size",
        "platform",
    ]
)
_manifest_like = st.recursive(
    st.none()
    | st.integers(-2, 3)
    | st.sampled_from(
        [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, OCI_LAYER_GZIP, str(LAYER_DIGEST), "sha256:x"]
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(_manifest_keys, children, max_size=6)
    ),
    max_leaves=30,
)
_content_types = st.none() | st.sampled_from(
    [
        OCI_MANIFEST,
        OCI_INDEX,
        DOCKER_MANIFEST_LIST,
        "application/json",
        "",
        "application/vnd.docker.distribution.manifest.v1+json",
    ]
)


@given(payload=st.binary(max_size=200), content_type=_content_types)
def test_arbitrary_bytes_raise_only_manifest_errors(
    payload: bytes, content_type: str | None
) -> None:
    try:
        parsed = parse_manifest(payload, content_type)
    except (ManifestInvalidError, UnsupportedError) as error:
        assert error.message
    else:
        assert isinstance(parsed, ParsedManifest)


@given(document=_json_values | _manifest_like, content_type=_content_types)
def test_arbitrary_json_raises_only_manifest_errors(
    document: object, content_type: str | None
) -> None:
    try:
        parsed = parse_manifest(encode(document), content_type)
    except (ManifestInvalidError, UnsupportedError) as error:
        assert error.message
    else:
        assert parsed.media_type in {OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST}
        assert isinstance(document, dict)
