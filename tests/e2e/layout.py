"""Images built in Python, without network: layers, configs, manifests and OCI layout dirs.

An OCI image layout (https://github.com/opencontainers/image-spec/blob/main/image-layout.md)
is what `skopeo copy oci:DIR:TAG ...` reads and writes, so a test can make a source image and
read back what a client pulled, byte for byte.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
REF_NAME = "org.opencontainers.image.ref.name"


def sha256(content: bytes) -> str:
    """The sha256 digest string of `content`."""
    return "sha256:" + hashlib.sha256(content).hexdigest()


def descriptor(media_type: str, content: bytes, **extra: object) -> dict[str, object]:
    """An OCI descriptor of `content`, with any extra fields (platform, annotations)."""
    return {"mediaType": media_type, "digest": sha256(content), "size": len(content), **extra}


def canonical_json(document: object) -> bytes:
    """JSON bytes as the tests write them: compact, keys sorted."""
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def tar_gz(files: dict[str, bytes]) -> tuple[bytes, bytes]:
    """A gzipped tar of `files` (path to content), and the uncompressed tar for its diff_id."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path, content in sorted(files.items()):
            member = tarfile.TarInfo(path)
            member.size, member.mode, member.mtime = len(content), 0o644, 0
            archive.addfile(member, io.BytesIO(content))
    tar = buffer.getvalue()
    # mtime=0 keeps the gzip header free of the clock, so the same files give the same digest.
    return gzip.compress(tar, mtime=0), tar


def files_of_layer(layer: bytes) -> dict[str, bytes]:
    """The regular files in a layer blob, gzipped or not, by path without a leading `./` or `/`."""
    if layer[:2] == b"\x1f\x8b":
        layer = gzip.decompress(layer)
    files = {}
    with tarfile.open(fileobj=io.BytesIO(layer)) as archive:
        for member in archive:
            extracted = archive.extractfile(member) if member.isfile() else None
            if extracted is not None:
                files[member.name.removeprefix("./").lstrip("/")] = extracted.read()
    return files


def random_files(prefix: str, count: int = 3, size: int = 64 * 1024) -> dict[str, bytes]:
    """`count` files of random bytes under directory `prefix`."""
    return {f"{prefix}/file-{number}.bin": os.urandom(size) for number in range(count)}


@dataclass
class Image:
    """A single-platform OCI image: its manifest, config and layers as bytes."""

    manifest: bytes
    config: bytes
    layers: list[bytes]
    # The files of each layer, in order, as they were written into the tar.
    files: list[dict[str, bytes]] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return sha256(self.manifest)

    def blobs(self) -> dict[str, bytes]:
        """Every blob the manifest names (config and layers), by digest."""
        return {sha256(blob): blob for blob in [self.config, *self.layers]}


def build_image(
    layer_files: list[dict[str, bytes]], architecture: str = "amd64", os_name: str = "linux"
) -> Image:
    """An image with one gzipped layer per entry of `layer_files`."""
    compressed, diff_ids = [], []
    for files in layer_files:
        gzipped, tar = tar_gz(files)
        compressed.append(gzipped)
        diff_ids.append(sha256(tar))
    config = canonical_json(
        {
            "architecture": architecture,
            "os": os_name,
            "config": {"Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    )
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, layer) for layer in compressed],
        }
    )
    return Image(manifest, config, compressed, layer_files)


def random_image(layers: int = 3, architecture: str = "amd64") -> Image:
    """An image of `layers` layers, each with a few random files."""
    return build_image(
        [random_files(f"{architecture}/layer-{number}") for number in range(layers)], architecture
    )


def build_index(images: list[Image]) -> bytes:
    """An OCI index of single-platform images, each with the platform from its config."""
    entries = []
    for image in images:
        config = json.loads(image.config)
        platform = {"architecture": config["architecture"], "os": config["os"]}
        entries.append(descriptor(OCI_MANIFEST, image.manifest, platform=platform))
    return canonical_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})


class OciLayout:
    """An OCI image layout directory: `oci-layout`, `index.json` and `blobs/sha256/`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def create(self) -> OciLayout:
        """Write an empty layout."""
        (self.path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (self.path / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        self._write_index([])
        return self

    def add_blob(self, content: bytes) -> str:
        """Store a blob; return its digest."""
        digest = sha256(content)
        (self.path / "blobs" / "sha256" / digest.removeprefix("sha256:")).write_bytes(content)
        return digest

    def add_image(self, image: Image, tag: str) -> None:
        """Store an image's blobs and manifest, and tag it in index.json."""
        for blob in image.blobs().values():
            self.add_blob(blob)
        self.add_blob(image.manifest)
        self._tag(descriptor(OCI_MANIFEST, image.manifest), tag)

    def add_index(self, images: list[Image], tag: str) -> bytes:
        """Store a multi-platform index of `images`, tag it; return the index bytes."""
        for image in images:
            for blob in image.blobs().values():
                self.add_blob(blob)
            self.add_blob(image.manifest)
        index = build_index(images)
        self.add_blob(index)
        self._tag(descriptor(OCI_INDEX, index), tag)
        return index

    def archive(self, destination: Path) -> Path:
        """The layout as one tar (an OCI archive, as `ctr images import` reads it)."""
        with tarfile.open(destination, "w") as archive:
            for path in sorted(self.path.rglob("*")):
                archive.add(path, arcname=str(path.relative_to(self.path)), recursive=False)
        return destination

    def blob(self, digest: str) -> bytes:
        """The bytes of a stored blob."""
        return (self.path / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()

    def files(self, manifest_digest: str) -> dict[str, bytes]:
        """The files of an image in this layout, every layer applied in order (no whiteouts)."""
        manifest = json.loads(self.blob(manifest_digest))
        files: dict[str, bytes] = {}
        for layer in manifest["layers"]:
            files.update(files_of_layer(self.blob(layer["digest"])))
        return files

    def tagged(self, tag: str) -> dict[str, object]:
        """The descriptor that index.json holds for `tag`."""
        for entry in self._index()["manifests"]:
            if entry.get("annotations", {}).get(REF_NAME) == tag:
                return dict(entry)
        raise KeyError(f"no tag {tag!r} in {self.path}/index.json")

    def _tag(self, entry: dict[str, object], tag: str) -> None:
        manifests = [
            existing
            for existing in self._index()["manifests"]
            if existing.get("annotations", {}).get(REF_NAME) != tag
        ]
        self._write_index([*manifests, {**entry, "annotations": {REF_NAME: tag}}])

    def _index(self) -> dict[str, list[dict[str, object]]]:
        index: dict[str, list[dict[str, object]]] = json.loads(
            (self.path / "index.json").read_text()
        )
        return index

    def _write_index(self, manifests: list[dict[str, object]]) -> None:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        (self.path / "index.json").write_bytes(canonical_json(index))
