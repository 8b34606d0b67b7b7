"""What the load is sent to: the upstream directly, one proxy in front of it, or two in a chain."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from harness import haproxy, loom
from harness.processes import Service


@dataclass(frozen=True)
class Running:
    """A started target: the port the load goes to and the proxy processes it measures."""

    port: int
    proxies: list[Service]


@dataclass(frozen=True)
class Context:
    workdir: Path
    upstream_port: int
    proxy_cpu: int | None
    loom_command: list[str]


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
def _haproxy_pair(ctx: Context) -> Iterator[Running]:
    """client → haproxy-out → haproxy-in → nginx: both proxies share the proxy core."""
    with (
        haproxy.proxy("haproxy-in", ctx.workdir, ctx.upstream_port, ctx.proxy_cpu) as (inbound, in_port),
        haproxy.proxy("haproxy-out", ctx.workdir, in_port, ctx.proxy_cpu) as (outbound, out_port),
    ):
        yield Running(port=out_port, proxies=[outbound, inbound])


@contextlib.contextmanager
def _loom(ctx: Context) -> Iterator[Running]:
    with loom.proxy("loom", ctx.workdir, ctx.loom_command, ctx.upstream_port, ctx.proxy_cpu) as (svc, port):
        yield Running(port=port, proxies=[svc])


@contextlib.contextmanager
def _loom_pair(ctx: Context) -> Iterator[Running]:
    """client → outbound listener → inbound listener → nginx: the mesh hop, on the proxy core."""
    base, cpu = ctx.loom_command, ctx.proxy_cpu
    with (
        loom.proxy("loom-in", ctx.workdir, base, ctx.upstream_port, cpu, direction="inbound") as (
            inbound,
            in_port,
        ),
        loom.proxy("loom-out", ctx.workdir, base, in_port, cpu, direction="outbound") as (outbound, out_port),
    ):
        yield Running(port=out_port, proxies=[outbound, inbound])


TARGETS: list[Target] = [
    Target("direct", "direct", 0, _direct),
    Target("haproxy", "HAProxy", 1, _haproxy),
    Target("loom", "Loom", 1, _loom, needs_loom=True),
    Target("haproxy-pair", "HAProxy → HAProxy", 2, _haproxy_pair),
    Target("loom-pair", "Loom → Loom", 2, _loom_pair, needs_loom=True),
]
