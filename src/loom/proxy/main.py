"""``loom proxy --config SNAPSHOT``: run one sidecar from a snapshot file until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

from loom.proxy.router import RouteCompileError
from loom.proxy.server import ProxyServer
from loom.snapshot import SnapshotError, load_snapshot

log = logging.getLogger("loom.proxy")


async def serve(snapshot_path: Path, ready_file: Path | None = None) -> None:
    snapshot = load_snapshot(snapshot_path)
    server = ProxyServer(snapshot, snapshot_path)
    await server.start()
    if ready_file is not None:
        write_ready_file(server, ready_file)
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
    # Shutdown is done; a repeated SIGTERM while the interpreter exits must not kill us mid-way.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.remove_signal_handler(signum)
        signal.signal(signum, signal.SIG_IGN)
    log.info("stopped")


def write_ready_file(server: ProxyServer, path: Path) -> None:
    """Tell whoever started us where we listen (ports may have been 0): JSON, written atomically."""
    info = {
        "pid": os.getpid(),
        "version": server.config.version,
        "admin_port": server.admin.port,
        "listeners": {name: lst.bound_port for name, lst in server.listeners.items()},
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loom.proxy", description="Run one Loom sidecar.")
    parser.add_argument("--config", required=True, type=Path, help="snapshot file (YAML or JSON)")
    parser.add_argument("--ready-file", type=Path, help="write the bound ports here (JSON) once serving")
    parser.add_argument("--log-level", default="info", help="debug, info, warning or error")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        run(args.config, args.ready_file)
    except SnapshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RouteCompileError as exc:
        print(f"error: invalid snapshot {args.config}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot listen: {exc}", file=sys.stderr)
        return 2
    return 0


def run(snapshot_path: Path, ready_file: Path | None = None) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(serve(snapshot_path, ready_file))
    else:
        uvloop.run(serve(snapshot_path, ready_file))
