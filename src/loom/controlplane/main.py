"""``loom controlplane --config-dir DIR`` (or ``--store etcd://HOST:PORT``): serve the mesh API
over HTTPS, push snapshots to sidecars and issue their certificates."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from loom.controlplane.compiler.virtual_ips import parse_service_cidr
from loom.controlplane.etcd_client import EtcdError
from loom.controlplane.etcd_store import EtcdStore
from loom.controlplane.jwks import JwksCache
from loom.controlplane.prometheus_sd import TargetsFile
from loom.controlplane.push import PushEngine
from loom.controlplane.registry import WorkloadRegistry
from loom.controlplane.security.setup import Security, SecurityOptions, open_security
from loom.controlplane.server import ControlPlane
from loom.controlplane.store import FileStore, Store

log = logging.getLogger("loom.controlplane")

LISTEN_BACKLOG = 4096

SHUTDOWN_SECONDS = 2.0
"""How long a stopping control plane lets requests in flight finish: a sidecar's watch (a long
poll) is cut after that, and the sidecar finds another replica or retries."""


class ConfigRefused(Exception):
    """The store's configuration does not load; nothing to serve."""


class StoreUnavailable(Exception):
    """The store cannot be read (e.g. etcd cannot be reached)."""


def make_store(config_dir: Path | None, store_url: str | None, push: PushEngine) -> Store:
    """The folder store, or the one a ``--store`` URL names (``etcd://...``)."""
    if store_url is not None:
        return EtcdStore(store_url, push.set_resources)
    if config_dir is None:
        raise ValueError("either a configuration folder or a store URL is needed")
    return FileStore(config_dir, push.set_resources)


async def serve(
    config_dir: Path | None,
    address: str,
    port: int,
    ready_file: Path | None,
    store_url: str | None,
    security_options: SecurityOptions,
    service_cidr: str | None = None,
    prometheus_sd_file: Path | None = None,
    dashboard_port: int | None = None,
) -> None:
    if service_cidr is not None:
        parse_service_cidr(service_cidr)  # a ValueError that says why, before anything starts
    security = open_security(replace(security_options, hosts=(address, *security_options.hosts)))
    registry = WorkloadRegistry()
    jwks = JwksCache()
    # The CA issues every sidecar its certificate before its first snapshot: mutual TLS is on, and
    # the snapshots' SPIFFE IDs are in the trust domain the CA signs in.
    push = PushEngine(
        registry,
        jwks=jwks,
        mtls_enabled=True,
        trust_domain=security.trust_domain,
        service_cidr=service_cidr,
    )
    store = make_store(config_dir, store_url, push)
    try:
        await _serve_store(
            store, registry, push, security, address, port, ready_file, prometheus_sd_file, dashboard_port
        )
    finally:
        await store.close()
        await jwks.close()


async def _serve_store(
    store: Store,
    registry: WorkloadRegistry,
    push: PushEngine,
    security: Security,
    address: str,
    port: int,
    ready_file: Path | None,
    prometheus_sd_file: Path | None = None,
    dashboard_port: int | None = None,
) -> None:
    try:
        loaded = await store.open()
    except (EtcdError, OSError) as exc:
        raise StoreUnavailable(f"{store.describe()}: {exc}") from exc
    if not loaded:
        raise ConfigRefused(store.last_error or "the configuration does not load")
    plane = ControlPlane(store, registry, push, security)
    runner = web.AppRunner(
        plane.app(), access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_SECONDS
    )
    await runner.setup()
    # Every sidecar re-watches right after a push: the default backlog (128) would drop most of
    # a thousand simultaneous connects, each then waiting a full second to retry its SYN.
    site = web.TCPSite(
        runner,
        address,
        port,
        reuse_address=True,
        backlog=LISTEN_BACKLOG,
        ssl_context=security.server_context,
    )
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    log.info(
        "control plane serving %d resources from %s on https://%s:%d",
        len(store.resources),
        store.describe(),
        address,
        bound,
    )
    ready: dict[str, object] = {"port": bound, "trust_bundle": str(security.state.bundle)}
    dashboard = None
    if dashboard_port is not None:
        # The one place the control plane knows of the dashboard: it reads the API like any client.
        from loom.dashboard.server import start_dashboard

        dashboard = await start_dashboard(address, bound, security.options.state_dir, dashboard_port)
        ready["dashboard_port"] = dashboard.port
    if ready_file is not None:
        tmp = ready_file.with_name(ready_file.name + ".tmp")
        tmp.write_text(json.dumps(ready))
        tmp.replace(ready_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    background = [
        loop.create_task(store.watch()),
        loop.create_task(plane.expire_workloads()),
        loop.create_task(security.keep_serving_certificate_fresh()),
    ]
    if prometheus_sd_file is not None:
        background.append(loop.create_task(TargetsFile(prometheus_sd_file, registry).keep_current()))
    await stop.wait()
    for task in background:
        task.cancel()
    await asyncio.gather(*background, return_exceptions=True)
    if dashboard is not None:
        await dashboard.close()
    await runner.cleanup()


def run(
    config_dir: Path | None,
    address: str,
    port: int,
    ready_file: Path | None,
    store_url: str | None,
    security: SecurityOptions,
    service_cidr: str | None = None,
    prometheus_sd_file: Path | None = None,
    dashboard_port: int | None = None,
) -> None:
    main = serve(
        config_dir,
        address,
        port,
        ready_file,
        store_url,
        security,
        service_cidr,
        prometheus_sd_file,
        dashboard_port,
    )
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(main)
    else:
        uvloop.run(main)
