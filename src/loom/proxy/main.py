"""``loom proxy --config SNAPSHOT``: run one sidecar from a snapshot file until SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from loom.proxy.server import ProxyServer
from loom.snapshot import load_snapshot

log = logging.getLogger("loom.proxy")


async def serve(snapshot_path: Path) -> None:
    snapshot = load_snapshot(snapshot_path)
    server = ProxyServer(snapshot, snapshot_path)
    await server.start()
    loop = asyncio.get_running_loop()
    background: set[asyncio.Task[object]] = set()

    def spawn(coro: object) -> None:
        task = loop.create_task(coro)  # type: ignore[arg-type]
        background.add(task)
        task.add_done_callback(background.discard)

    loop.add_signal_handler(signal.SIGHUP, lambda: spawn(server.reload_from_file()))
    loop.add_signal_handler(signal.SIGTERM, lambda: spawn(server.shutdown()))
    loop.add_signal_handler(signal.SIGINT, lambda: spawn(server.shutdown()))
    await server.wait_stopped()
    log.info("stopped")


def run(snapshot_path: Path) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(serve(snapshot_path))
    else:
        uvloop.run(serve(snapshot_path))
