"""What the load is sent to: the upstream directly, one proxy in front of it, or two in a chain
(plaintext, or TLS with client certificates between the two)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from harness import haproxy, loom
from harness.certs import Certs
from harness.processes import Service


@dataclass(frozen=True)
class Running:
    """A started target: the port the load goes to and the proxy processes it measures."""

    port: int
    proxies: list[Service]
    handshake_port: int | None = None
    """The inbound proxy's TLS port (mutual TLS), where new-connection handshakes are measured."""


@dataclass(frozen=True)
class Context:
    workdir: Path
    upstream_port: int
    proxy_cpu: int | None
    loom_command: list[str]
    certs: Certs
    """The root and the two sides' certificates, for the TLS pairs."""


Starter = Callable[[Context], AbstractContextManager[Running]]


@dataclass(frozen=True)
class Target:
    name: str
    label: str
    proxies: int
    start: Starter
    needs_loom: bool = False


@contextlib.contextmanager
def _direct(ctx: Context) -> Iterator[Running]:
    yield Running(port=ctx.upstream_port, proxies=[])


@contextlib.contextmanager
def _haproxy(ctx: Context) -> Iterator[Running]:
    with haproxy.proxy("haproxy", ctx.workdir, ctx.upstream_port, ctx.proxy_cpu) as (svc, port):
        yield Running(port=port, proxies=[svc])


@contextlib.contextmanager
def _haproxy_pair(ctx: Context, tls: bool = False) -> Iterator[Running]:
    """client → haproxy-out → haproxy-in → nginx: both proxies share the proxy core; ``tls``: the
    hop between them is TLS with client certificates."""
    certs, cpu = ctx.certs if tls else None, ctx.proxy_cpu
    prefix = "haproxy-tls" if tls else "haproxy"
    with (
        haproxy.proxy(f"{prefix}-in", ctx.workdir, ctx.upstream_port, cpu, listen_tls=certs) as (
            inbound,
            in_port,
        ),
        haproxy.proxy(f"{prefix}-out", ctx.workdir, in_port, cpu, server_tls=certs) as (outbound, out_port),
    ):
        yield Running(port=out_port, proxies=[outbound, inbound], handshake_port=in_port if tls else None)


@contextlib.contextmanager
def _loom(ctx: Context) -> Iterator[Running]:
    with loom.proxy("loom", ctx.workdir, ctx.loom_command, ctx.upstream_port, ctx.proxy_cpu) as (svc, port):
        yield Running(port=port, proxies=[svc])


@contextlib.contextmanager
def _loom_pair(ctx: Context, mtls: bool = False) -> Iterator[Running]:
    """client → outbound listener → inbound listener → nginx: the mesh hop, on the proxy core;
    ``mtls``: the hop is mutual TLS and the inbound listener STRICT."""
    base, cpu, certs = ctx.loom_command, ctx.proxy_cpu, ctx.certs if mtls else None
    prefix = "loom-mtls" if mtls else "loom"
    with (
        loom.proxy(f"{prefix}-in", ctx.workdir, base, ctx.upstream_port, cpu, "inbound", certs) as (
            inbound,
            in_port,
        ),
        loom.proxy(f"{prefix}-out", ctx.workdir, base, in_port, cpu, "outbound", certs) as (
            outbound,
            out_port,
        ),
    ):
        yield Running(port=out_port, proxies=[outbound, inbound], handshake_port=in_port if mtls else None)


TARGETS: list[Target] = [
    Target("direct", "direct", 0, _direct),
    Target("haproxy", "HAProxy", 1, _haproxy),
    Target("loom", "Loom", 1, _loom, needs_loom=True),
    Target("haproxy-pair", "HAProxy → HAProxy", 2, _haproxy_pair),
    Target("loom-pair", "Loom → Loom", 2, _loom_pair, needs_loom=True),
    Target("haproxy-tls-pair", "HAProxy → HAProxy, TLS", 2, partial(_haproxy_pair, tls=True)),
    Target("loom-mtls-pair", "Loom → Loom, mTLS", 2, partial(_loom_pair, mtls=True), needs_loom=True),
]
