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

from loom.proxy.agent.agent import Agent, Registration
from loom.proxy.router import RouteCompileError
from loom.proxy.server import ProxyServer
from loom.snapshot import SnapshotError, load_snapshot

log = logging.getLogger("loom.proxy")


async def serve(snapshot_path: Path | None, agent: Agent | None, ready_file: Path | None = None) -> None:
    """Run until SIGTERM, from a snapshot file or (with ``agent``) from the control plane."""
    if agent is not None:
        server = ProxyServer(await agent.first_snapshot())
    else:
        assert snapshot_path is not None
        server = ProxyServer(load_snapshot(snapshot_path), snapshot_path)
    await server.start()
    if ready_file is not None:
        write_ready_file(server, ready_file)
    loop = asyncio.get_running_loop()
    background: set[asyncio.Task[object]] = set()

    def spawn(coro: object) -> asyncio.Task[object]:
        task = loop.create_task(coro)  # type: ignore[arg-type]
        background.add(task)
        task.add_done_callback(background.discard)
        return task

    def terminate() -> None:
        if agent is not None:
            spawn(agent.deregister())  # peers stop routing here while we drain
        spawn(server.shutdown())

    watch = spawn(agent.run(server.apply)) if agent is not None else None
    loop.add_signal_handler(signal.SIGHUP, lambda: spawn(server.reload_from_file()))
    loop.add_signal_handler(signal.SIGTERM, terminate)
    loop.add_signal_handler(signal.SIGINT, terminate)
    await server.wait_stopped()
    if watch is not None:
        watch.cancel()
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
    parser.add_argument("--config", type=Path, help="snapshot file (YAML or JSON)")
    parser.add_argument("--ready-file", type=Path, help="write the bound ports here (JSON) once serving")
    parser.add_argument("--log-level", default="info", help="debug, info, warning or error")
    connected = parser.add_argument_group("connected to a control plane (instead of --config)")
    connected.add_argument("--control-plane", help="the control plane's URL, e.g. http://127.0.0.1:15010")
    connected.add_argument("--workload", help="this workload's name (unique in its namespace)")
    connected.add_argument("--namespace", default="default")
    connected.add_argument("--service-account", default="default")
    connected.add_argument("--label", action="append", default=[], metavar="KEY=VALUE")
    connected.add_argument("--address", default="127.0.0.1", help="where peers reach this sidecar")
    connected.add_argument("--outbound-port", type=int, default=0, help="the app's outbound listener")
    connected.add_argument(
        "--inbound", action="append", default=[], metavar="APP_PORT:SIDECAR_PORT", help="inbound listeners"
    )
    connected.add_argument("--admin-port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if (args.config is None) == (args.control_plane is None):
        parser.error("give either --config or --control-plane")
    agent = None
    if args.control_plane is not None:
        if not args.workload or not args.outbound_port:
            parser.error("--control-plane needs --workload and --outbound-port")
        try:
            registration = Registration(
                name=args.workload,
                namespace=args.namespace,
                service_account=args.service_account,
                labels=dict(item.split("=", 1) for item in args.label),
                address=args.address,
                outbound_port=args.outbound_port,
                inbound={int(a): int(b) for a, b in (item.split(":", 1) for item in args.inbound)},
                admin_port=args.admin_port,
            )
        except ValueError:
            parser.error("--label takes KEY=VALUE and --inbound APP_PORT:SIDECAR_PORT")
        agent = Agent(args.control_plane, registration)
    try:
        run(args.config, agent, args.ready_file)
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


def run(snapshot_path: Path | None, agent: Agent | None = None, ready_file: Path | None = None) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(serve(snapshot_path, agent, ready_file))
    else:
        uvloop.run(serve(snapshot_path, agent, ready_file))
