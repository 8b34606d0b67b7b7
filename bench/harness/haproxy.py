"""The reference proxy: Debian's HAProxy, one thread, HTTP mode, keep-alive on both sides."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from harness.processes import Service, free_port, service, wait_http

CONFIG = """\
global
    nbthread 1
    maxconn 4000
    # no log lines: the benchmark measures forwarding, not logging

defaults
    mode http
    option http-keep-alive
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 60s

frontend bench
    bind 127.0.0.1:{listen_port}
    default_backend upstream

backend upstream
    server s1 127.0.0.1:{server_port}
"""


def config(listen_port: int, server_port: int) -> str:
    return CONFIG.format(listen_port=listen_port, server_port=server_port)


@contextlib.contextmanager
def proxy(name: str, workdir: Path, server_port: int, cpu: int | None) -> Iterator[tuple[Service, int]]:
    """Start one HAProxy forwarding a free port to ``server_port``; yields it and its port."""
    port = free_port()
    conf = workdir / f"{name}.cfg"
    conf.write_text(config(port, server_port))
    # -db: stay in the foreground, so the pid we hold is the one doing the work.
    with service(name, ["haproxy", "-db", "-f", str(conf)], workdir, cpu) as svc:
        wait_http(svc, f"http://127.0.0.1:{port}/")
        yield svc, port


def version() -> str:
    done = subprocess.run(["haproxy", "-v"], capture_output=True, text=True, check=False)
    first = done.stdout.splitlines()[0] if done.stdout else ""
    words = first.removeprefix("HAProxy version ").split()
    return words[0] if words else "unknown"
