"""The sidecar process: listeners, admin, snapshot reloads and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Coroutine
from pathlib import Path

from loom.proxy.admin import AdminServer
from loom.proxy.config import ProxyConfig
from loom.proxy.http import mirror
from loom.proxy.http.listener import HttpListener
from loom.proxy.identity.files import IdentityFiles
from loom.proxy.identity.store import IdentityError, IdentityStore
from loom.proxy.router import RouteCompileError
from loom.proxy.tcp import TcpListener
from loom.proxy.telemetry import AccessLogger, MeshMetrics
from loom.proxy.tracing.export import SpanExporter
from loom.snapshot import Problem, Snapshot, SnapshotError, load_snapshot
from loom.snapshot.model import Listener, Protocol

log = logging.getLogger("loom.proxy")

HOUSEKEEPING_INTERVAL = 0.25
FILE_CHECK_INTERVAL = 1.0

AnyListener = HttpListener | TcpListener


class ProxyServer:
    def __init__(
        self, snapshot: Snapshot, snapshot_path: Path | None = None, identity: IdentityStore | None = None
    ) -> None:
        self.snapshot_path = snapshot_path
        self.identity = identity if identity is not None else IdentityStore()
        """The workload certificate: loaded from the snapshot's identity files, or kept current by
        the control-plane agent."""
        self.identity_files = IdentityFiles(self.identity)
        self.identity_files.apply(snapshot)
        self.metrics = MeshMetrics(snapshot.node)
        self.access_log = (
            AccessLogger(snapshot.telemetry.access_log) if snapshot.telemetry.access_log else None
        )
        self.spans = SpanExporter(self.metrics)
        """Sampled spans on their way to the collectors (and the control plane, when connected)."""
        self.config = ProxyConfig(snapshot, None, self.metrics, self.access_log, self.identity, self.spans)
        self.listeners: dict[str, AnyListener] = {}
        self.admin = AdminServer(self)
        self.draining = False
        self.started_at = time.time()
        self.reloads_applied = 0
        self.reloads_rejected = 0
        self.last_reload_error: str | None = None
        self._file_stamp = self._stamp()
        self._next_file_check = 0.0
        self._housekeeping: asyncio.TimerHandle | None = None
        self._stopped = asyncio.Event()
        self._tasks: set[asyncio.Task[object]] = set()
        self._register_gauges()

    # lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        for config in self.config.snapshot.listeners:
            listener = _make_listener(self, config)
            await listener.start()
            self.listeners[config.name] = listener
        await self.admin.start(self.config.snapshot.admin)
        if self.access_log is not None:
            self.access_log.start(asyncio.get_running_loop())
        self._schedule_housekeeping()
        log.info("proxy ready: snapshot version %s, %d listeners", self.config.version, len(self.listeners))

    @property
    def ready(self) -> bool:
        return not self.draining and all(lst.asyncio_server is not None for lst in self.listeners.values())

    async def shutdown(self) -> None:
        """Stop accepting, finish in-flight requests up to each listener's drain timeout, stop."""
        if self.draining:
            await self._stopped.wait()
            return
        self.draining = True
        log.info("draining")
        await asyncio.gather(*(lst.drain(lst.limits.drain_timeout) for lst in self.listeners.values()))
        if self._housekeeping is not None:
            self._housekeeping.cancel()
        for cluster in self.config.clusters.values():
            cluster.retire()
        await self.admin.stop()
        if self.access_log is not None:
            self.access_log.close()
        await self.spans.close()
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    # reloads -------------------------------------------------------------------------------

    async def apply(self, snapshot: Snapshot) -> None:
        """Swap in a new snapshot. Raises (and changes nothing) if it cannot be used."""
        self.identity_files.apply(snapshot)
        config = ProxyConfig(snapshot, self.config, self.metrics, self.access_log, self.identity, self.spans)
        wanted = {item.name: item for item in snapshot.listeners}
        started: list[AnyListener] = []
        retiring: list[AnyListener] = []
        try:
            for name, item in wanted.items():
                current = self.listeners.get(name)
                if current is not None and _same_socket(current.config, item):
                    continue
                if current is not None:
                    retiring.append(current)
                    if (current.config.address, current.config.port) == (item.address, item.port):
                        await current.drain(0)  # the new listener needs this very port
                listener = _make_listener(self, item)
                await listener.start()
                started.append(listener)
        except OSError as exc:
            for listener in started:
                await listener.drain(0)
            raise SnapshotError("snapshot", [Problem("listeners", f"cannot listen: {exc}")]) from None
        self.config = config
        retiring += [lst for name, lst in self.listeners.items() if name not in wanted]
        for listener in retiring:
            if self.listeners.get(listener.name) is listener:
                del self.listeners[listener.name]
        for listener in started:
            self.listeners[listener.name] = listener
        for name, item in wanted.items():
            listener = self.listeners[name]
            if listener not in started:
                listener.update(item)  # type: ignore[arg-type]
        for cluster in config.retired:
            cluster.retire()
        self.reloads_applied += 1
        self.last_reload_error = None
        log.info("applied snapshot version %s", snapshot.version)
        for listener in retiring:
            if not listener.draining:
                self._spawn(listener.drain(listener.limits.drain_timeout))

    async def reload_from_file(self) -> bool:
        """Load the snapshot file again; an invalid one is refused and the current one stays."""
        if self.snapshot_path is None:
            return False
        self._file_stamp = self._stamp()
        try:
            snapshot = load_snapshot(self.snapshot_path)
            if snapshot == self.config.snapshot:
                return True
            await self.apply(snapshot)
        except (SnapshotError, RouteCompileError, OSError, ValueError) as exc:
            self.reloads_rejected += 1
            self.last_reload_error = str(exc)
            log.error("snapshot refused, still serving version %s: %s", self.config.version, exc)
            return False
        return True

    def _spawn(self, coro: Coroutine[object, object, object]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # housekeeping --------------------------------------------------------------------------

    def _schedule_housekeeping(self) -> None:
        loop = asyncio.get_running_loop()
        self._housekeeping = loop.call_later(HOUSEKEEPING_INTERVAL, self._tick)

    def _tick(self) -> None:
        now = time.monotonic()
        for listener in self.listeners.values():
            listener.housekeeping(now)
        for cluster in self.config.clusters.values():
            cluster.housekeeping(now)
        if self.snapshot_path is not None and now >= self._next_file_check:
            self._next_file_check = now + FILE_CHECK_INTERVAL
            if self._stamp() != self._file_stamp:
                self._spawn(self.reload_from_file())
            if self.identity_files.changed():
                self._reload_identity_files()
        if not self._stopped.is_set():
            self._schedule_housekeeping()

    def _reload_identity_files(self) -> None:
        try:
            self.identity_files.reload()
        except IdentityError as exc:
            log.error("new certificate files refused, keeping the current certificate: %s", exc)

    def _stamp(self) -> tuple[int, int, int] | None:
        if self.snapshot_path is None:
            return None
        try:
            st = os.stat(self.snapshot_path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _register_gauges(self) -> None:
        metrics = self.metrics
        metrics.gauge_fn(
            "loom_downstream_connections",
            "Open downstream connections across listeners.",
            lambda: sum(len(lst.connections) for lst in self.listeners.values()),
        )
        metrics.gauge_fn(
            "loom_snapshot_reloads_rejected", "Snapshots refused since start.", lambda: self.reloads_rejected
        )
        metrics.gauge_fn(
            "loom_identity_cert_expiration_timestamp_seconds",
            "When the workload certificate expires (Unix time); NaN without one.",
            lambda: self.identity.expires_at or math.nan,
        )
        metrics.gauge_fn(
            "loom_mirror_skipped",
            "Mirror copies not sent: body over the retry buffer, or too many copies in flight.",
            lambda: mirror.skipped,
        )


def _make_listener(server: ProxyServer, config: Listener) -> AnyListener:
    if config.protocol is Protocol.TCP:
        return TcpListener(server, config)
    return HttpListener(server, config)


def _same_socket(a: Listener, b: Listener) -> bool:
    return (a.address, a.port, a.protocol, a.direction, a.original_dst) == (
        b.address,
        b.port,
        b.protocol,
        b.direction,
        b.original_dst,
    )
