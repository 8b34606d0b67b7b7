"""The reference proxy: Debian's HAProxy, one thread, HTTP mode, keep-alive on both sides.

Either side can speak TLS 1.3 with the bench's certificates: the listener requiring and
verifying a client certificate, the server connection presenting one and verifying the server's.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from harness.certs import Certs, listener_url
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
    bind 127.0.0.1:{listen_port}{bind_tls}
    default_backend upstream

backend upstream
    server s1 127.0.0.1:{server_port}{server_tls}
"""


def config(
    listen_port: int, server_port: int, listen_tls: Certs | None = None, server_tls: Certs | None = None
) -> str:
    """``listen_tls``: the listener speaks TLS as the server side (client certificate required);
    ``server_tls``: the connections to the server speak TLS as the client side."""
    bind = server = ""
    if listen_tls is not None:
        c = listen_tls
        bind = f" ssl crt {c.server.combined} ca-file {c.root} verify required ssl-min-ver TLSv1.3"
    if server_tls is not None:
        c = server_tls
        server = f" ssl verify required ca-file {c.root} crt {c.client.combined} ssl-min-ver TLSv1.3"
    return CONFIG.format(listen_port=listen_port, server_port=server_port, bind_tls=bind, server_tls=server)


@contextlib.contextmanager
def proxy(
    name: str,
    workdir: Path,
    server_port: int,
    cpu: int | None,
    *,
    listen_tls: Certs | None = None,
    server_tls: Certs | None = None,
) -> Iterator[tuple[Service, int]]:
    """Start one HAProxy forwarding a free port to ``server_port``; yields it and its port."""
    port = free_port()
    conf = workdir / f"{name}.cfg"
    conf.write_text(config(port, server_port, listen_tls, server_tls))
    # -db: stay in the foreground, so the pid we hold is the one doing the work.
    with service(name, ["haproxy", "-db", "-f", str(conf)], workdir, cpu) as svc:
        url, context = listener_url(port, listen_tls)
        wait_http(svc, url, context=context)
        yield svc, port


def version() -> str:
    """HAProxy's version, and the OpenSSL it runs on (its TLS)."""
    done = subprocess.run(["haproxy", "-vv"], capture_output=True, text=True, check=False)
    lines = done.stdout.splitlines()
    words = lines[0].removeprefix("HAProxy version ").split() if lines else []
    openssl = [line.split(":", 1)[1].strip() for line in lines if line.startswith("Running on OpenSSL")]
    return (words[0] if words else "unknown") + (f" ({openssl[0]})" if openssl else "")
