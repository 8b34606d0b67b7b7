"""``loom controlplane --config-dir DIR``: serve the mesh API and push snapshots to sidecars."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from pathlib import Path

from aiohttp import web

from loom.controlplane.push import PushEngine
from loom.controlplane.registry import WorkloadRegistry
from loom.controlplane.server import ControlPlane
from loom.controlplane.store import FileStore

log = logging.getLogger("loom.controlplane")


class ConfigRefused(Exception):
    """The configuration folder does not load; nothing to serve."""


async def serve(config_dir: Path, address: str, port: int, ready_file: Path | None = None) -> None:
    registry = WorkloadRegistry()
    push = PushEngine(registry)
    store = FileStore(config_dir, push.set_resources)
    if not store.load():
        raise ConfigRefused(store.last_error or "the configuration does not load")
    plane = ControlPlane(store, registry, push)
    runner = web.AppRunner(plane.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, address, port, reuse_address=True)
    await site.start()
    bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    log.info("control plane serving %d resources on %s:%d", len(store.resources), address, bound)
    if ready_file is not None:
        tmp = ready_file.with_name(ready_file.name + ".tmp")
        tmp.write_text(json.dumps({"port": bound}))
        tmp.replace(ready_file)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    background = [loop.create_task(store.watch()), loop.create_task(plane.expire_workloads())]
    await stop.wait()
    for task in background:
        task.cancel()
    await runner.cleanup()


def run(config_dir: Path, address: str, port: int, ready_file: Path | None = None) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(serve(config_dir, address, port, ready_file))
    else:
        uvloop.run(serve(config_dir, address, port, ready_file))
