"""nginx (Debian's package) round-robin in front of moorage replicas, as in docs/deployment.md."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.ports import wait_until_answering

# Each answer names the replica that gave it, so tests can see where requests went.
UPSTREAM_HEADER = "x-upstream"

CONFIG = """\
{user}
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log info;
daemon off;

events {{
    worker_connections 512;
}}

http {{
    access_log {root}/access.log;
    client_body_temp_path {root}/client-body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;

    upstream moorage {{
{servers}
    }}

    server {{
        listen 127.0.0.1:{port};

        # Layers can be gigabytes: no size limit, and bodies stream through unbuffered.
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;
        proxy_http_version 1.1;
        proxy_read_timeout 900s;
        proxy_send_timeout 900s;
        proxy_next_upstream error timeout;
        proxy_next_upstream_tries 2;

        location / {{
            proxy_pass http://moorage;
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            add_header {header} $upstream_addr always;
        }}
    }}
}}
"""


@contextmanager
def nginx_round_robin(root: Path, port: int, upstreams: list[str]) -> Iterator[str]:
    """nginx on 127.0.0.1:`port` spreading requests over `upstreams` (host:port) in turn."""
    root.mkdir(parents=True, exist_ok=True)
    servers = "\n".join(f"        server {upstream};" for upstream in upstreams)
    # Run as root, nginx would switch its workers to nobody, who cannot write in `root`.
    user = "user root;" if os.geteuid() == 0 else ""
    config = root / "nginx.conf"
    config.write_text(
        CONFIG.format(
            user=user, root=root, servers=servers, port=port, header=UPSTREAM_HEADER.title()
        )
    )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    process = subprocess.Popen(
        [nginx, "-c", str(config), "-p", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=(root / "stderr.log").open("ab"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{url}/v2/", process, "nginx", root / "stderr.log")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
