"""The upstream: Debian's nginx, one worker, answering ``200 ok`` from memory."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from harness.processes import Service, free_port, service, wait_http

CONFIG = """\
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server_tokens off;
    default_type text/plain;

    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            return 200 "ok\\n";
        }}
    }}
}}
"""


def config(workdir: Path, port: int) -> str:
    return CONFIG.format(dir=workdir, port=port)


@contextlib.contextmanager
def upstream(workdir: Path, cpu: int | None) -> Iterator[tuple[Service, int]]:
    """Start nginx on a free port with its config, pid and logs under ``workdir``."""
    port = free_port()
    nginx_dir = workdir / "nginx"
    nginx_dir.mkdir(parents=True, exist_ok=True)
    conf = nginx_dir / "nginx.conf"
    conf.write_text(config(nginx_dir, port))
    # -e: the startup error log goes here too, never to the system's /var/log/nginx.
    argv = ["nginx", "-p", str(nginx_dir), "-e", str(nginx_dir / "nginx-error.log"), "-c", str(conf)]
    with service("nginx", argv, workdir, cpu) as svc:
        wait_http(svc, f"http://127.0.0.1:{port}/")
        yield svc, port


def version() -> str:
    done = subprocess.run(["nginx", "-v"], capture_output=True, text=True, check=False)
    return (done.stderr or done.stdout).strip().removeprefix("nginx version: ")
