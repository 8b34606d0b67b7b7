"""``loom proxy --config SNAPSHOT``: run one sidecar from a snapshot file until SIGTERM; or
``--control-plane URL``: get a workload certificate, then the snapshots, from a control plane."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from loom.proxy.agent.agent import Agent, Registration
from loom.proxy.agent.certificates import Bootstrap, CertificateRefused
from loom.proxy.agent.readiness import Readiness, parse_readiness_path
from loom.proxy.agent.telemetry import interval_from_env
from loom.proxy.identity.store import IdentityStore
from loom.proxy.router import RouteCompileError
from loom.proxy.server import ProxyServer
from loom.snapshot import SnapshotError, load_snapshot

log = logging.getLogger("loom.proxy")

DEREGISTER_WAIT = 2.0


async def serve(snapshot_path: Path | None, agent: Agent | None, ready_file: Path | None = None) -> None:
    """Run until SIGTERM, from a snapshot file or (with ``agent``) from the control plane: the
    workload certificate first, so the proxy has it before it serves its first snapshot."""
    if agent is not None:
        await agent.obtain_certificate()
        server = ProxyServer(await agent.first_snapshot(), identity=agent.certificates.identity)
        server.spans.control_plane = agent.client  # sampled spans go to the control plane too
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

    leaving: list[asyncio.Task[object]] = []

    def terminate() -> None:
        if agent is not None and not leaving:
            leaving.append(spawn(agent.deregister()))  # peers stop routing here while we drain
        spawn(server.shutdown())

    watch = spawn(agent.run(server.apply)) if agent is not None else None
    renew = spawn(agent.keep_certificate_fresh()) if agent is not None else None
    probe = spawn(agent.keep_readiness_reported()) if agent is not None else None
    telemetry = spawn(agent.telemetry_pusher(lambda: server.metrics).run()) if agent is not None else None
    loop.add_signal_handler(signal.SIGHUP, lambda: spawn(server.reload_from_file()))
    loop.add_signal_handler(signal.SIGTERM, terminate)
    loop.add_signal_handler(signal.SIGINT, terminate)
    await server.wait_stopped()
    if leaving:  # a proxy with nothing to drain stops at once: let the control plane hear first
        await asyncio.wait(leaving, timeout=DEREGISTER_WAIT)
    for task in (watch, renew, probe, telemetry):
        if task is not None:
            task.cancel()
    # Shutdown is done; a repeated SIGTERM while the interpreter exits must not kill us mid-way.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.remove_signal_handler(signum)
        signal.signal(signum, signal.SIG_IGN)
    log.info("stopped")


def free_admin_port() -> int:
    """A free loopback port for the admin endpoint, chosen before registering: the registration
    says where the metrics are (the control plane's ``--prometheus-sd-file`` lists it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    connected.add_argument("--control-plane", help="the control plane's URL, e.g. https://127.0.0.1:15010")
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
    connected.add_argument(
        "--transparent",
        action="store_true",
        help="the app's traffic is redirected to the outbound listener by iptables: route it by its "
        "original destination, pass traffic outside the mesh through",
    )
    connected.add_argument(
        "--readiness-path",
        metavar="[APP_PORT:]PATH",
        help="the app is ready when GET PATH answers 2xx (on every app port, or APP_PORT only); "
        "without it, when every app port accepts a connection. Peers route here only once it is ready",
    )
    connected.add_argument(
        "--ca-file", type=Path, help="the control plane's trust bundle (its state directory's root-cert.pem)"
    )
    connected.add_argument(
        "--join-token-file",
        type=Path,
        help="a file holding the join token (else $LOOM_JOIN_TOKEN): not a flag, which ps would show",
    )
    connected.add_argument(
        "--identity-dir",
        type=Path,
        help="where the certificate and key are written (default: a private temporary directory)",
    )
    connected.add_argument(
        "--telemetry-interval",
        type=float,
        default=interval_from_env(),
        metavar="SECONDS",
        help="push the golden metrics to the control plane at least this often "
        "(default $LOOM_TELEMETRY_INTERVAL, else 5)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if (args.config is None) == (args.control_plane is None):
        parser.error("give either --config or --control-plane")
    agent = None
    identity_dir: Path | None = None
    if args.control_plane is not None:
        if not args.workload or not args.outbound_port:
            parser.error("--control-plane needs --workload and --outbound-port")
        if not args.control_plane.startswith("https://"):
            parser.error("the control plane serves https://: give --control-plane https://HOST:PORT")
        if args.ca_file is None:
            parser.error("--control-plane needs --ca-file (the control plane's root-cert.pem)")
        token = _join_token(parser, args.join_token_file)
        try:
            registration = Registration(
                name=args.workload,
                namespace=args.namespace,
                service_account=args.service_account,
                labels=dict(item.split("=", 1) for item in args.label),
                address=args.address,
                outbound_port=args.outbound_port,
                inbound={int(a): int(b) for a, b in (item.split(":", 1) for item in args.inbound)},
                admin_port=args.admin_port or free_admin_port(),
                transparent=args.transparent,
            )
        except ValueError:
            parser.error("--label takes KEY=VALUE and --inbound APP_PORT:SIDECAR_PORT")
        readiness = None
        if registration.inbound:
            path, path_port = None, None
            if args.readiness_path is not None:
                try:
                    path, path_port = parse_readiness_path(args.readiness_path)
                except ValueError as exc:
                    parser.error(f"--readiness-path: {exc}")
                if path_port is not None and path_port not in registration.inbound:
                    parser.error(f"--readiness-path: {path_port} is not an app port of --inbound")
            readiness = Readiness(args.address, registration.inbound, path, path_port=path_port)
        identity_dir = _identity_dir(args.identity_dir)
        bootstrap = Bootstrap(args.ca_file, token, identity_dir)
        agent = Agent(
            args.control_plane,
            registration,
            IdentityStore(),
            bootstrap,
            readiness,
            telemetry_interval=args.telemetry_interval,
        )
    try:
        run(args.config, agent, args.ready_file)
    except CertificateRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except SnapshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RouteCompileError as exc:
        print(f"error: invalid snapshot {args.config}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot listen: {exc}", file=sys.stderr)
        return 2
    finally:
        if identity_dir is not None and args.identity_dir is None:
            _remove_identity_dir(identity_dir)
    return 0


def _join_token(parser: argparse.ArgumentParser, path: Path | None) -> str:
    """The join token, from ``--join-token-file`` or ``$LOOM_JOIN_TOKEN`` (taken out of the
    environment, so that no child process inherits it)."""
    from_env = os.environ.pop("LOOM_JOIN_TOKEN", "").strip()
    if path is not None:
        try:
            token = path.read_text().strip()
        except OSError as exc:
            parser.error(f"cannot read --join-token-file {path}: {exc.strerror or exc}")
    else:
        token = from_env
    if not token:
        parser.error("--control-plane needs a join token: set $LOOM_JOIN_TOKEN or give --join-token-file")
    return token


def _identity_dir(given: Path | None) -> Path:
    """The private directory for the key and certificates (0700): ``--identity-dir``, or a new
    temporary one that is removed on exit."""
    if given is None:
        # Not tempfile/shutil: they would cost the sidecar about 1 MB of memory for one call each.
        while True:
            path = Path(os.environ.get("TMPDIR") or "/tmp") / f"loom-identity-{os.urandom(6).hex()}"
            try:
                path.mkdir(mode=0o700)
            except FileExistsError:
                continue
            return path
    given.mkdir(mode=0o700, parents=True, exist_ok=True)
    given.chmod(0o700)
    return given


def _remove_identity_dir(path: Path) -> None:
    """The temporary identity directory holds files only (keys, certificates, the bundle)."""
    try:
        for entry in os.scandir(path):
            os.unlink(entry.path)
        path.rmdir()
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)


def run(snapshot_path: Path | None, agent: Agent | None = None, ready_file: Path | None = None) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - platforms without uvloop
        asyncio.run(serve(snapshot_path, agent, ready_file))
    else:
        uvloop.run(serve(snapshot_path, agent, ready_file))
