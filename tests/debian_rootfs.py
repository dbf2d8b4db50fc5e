"""A minimal Debian bookworm root file system made with debootstrap, for real base images.

Build tests and the image test turn it into a base image (`FROM scratch` + `ADD`), so no
test needs a registry on the internet. It is made once and kept in the temp dir.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from tests.e2e.clients import run

DEBIAN_CACHE = Path(tempfile.gettempdir()) / "moorage-test-cache" / "debian-bookworm-minbase.tar"


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses, so debootstrap goes where apt is allowed."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        found = re.search(r"^URIs:\s*(\S+)", sources.read_text(), re.MULTILINE)
        if found:
            return found.group(1)
    return "http://deb.debian.org/debian"


def debian_rootfs_tar() -> Path:
    """A minimal Debian bookworm root file system as a tar, made once and kept in /tmp."""
    if DEBIAN_CACHE.exists():
        return DEBIAN_CACHE
    DEBIAN_CACHE.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=DEBIAN_CACHE.parent) as work:
        rootfs = Path(work) / "rootfs"
        run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), debian_mirror()])
        partial = Path(work) / "rootfs.tar"
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], check=True)
        partial.rename(DEBIAN_CACHE)
    return DEBIAN_CACHE
