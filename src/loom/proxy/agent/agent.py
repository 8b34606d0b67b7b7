"""Keeps a sidecar's snapshot in step with the control plane.

certificate (certificates.py) → register → watch (a blocking query carrying the version we
have) → apply → ACK, or NACK with the reason when the snapshot is refused. When the control
plane is unreachable the sidecar keeps serving what it has and tries again with jittered
exponential backoff; a control plane that restarted (and forgot us) gets a fresh registration.
Every call after the first certificate is mutual TLS with it, on one kept-alive connection.

The registration says whether the app is ready (``readiness.py`` probes it): a sidecar whose app
does not answer yet registers not ready, and registers again (the same upsert) whenever that
changes, so peers route to it only while its app answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from loom.proxy.agent.certificates import Bootstrap, WorkloadCertificates
from loom.proxy.agent.http import ControlPlaneClient, HttpError
from loom.proxy.agent.readiness import Readiness
from loom.proxy.agent.telemetry import DEFAULT_INTERVAL, TelemetryPusher
from loom.proxy.identity.store import IdentityError, IdentityStore
from loom.proxy.router import RouteCompileError
from loom.proxy.telemetry.standard import IstioMetrics
from loom.snapshot import Snapshot, SnapshotError, parse_snapshot

log = logging.getLogger("loom.proxy.agent")

WATCH_SECONDS = 20.0
BACKOFF_START = 0.1
BACKOFF_MAX = 5.0


@dataclass(frozen=True)
class Registration:
    """What this sidecar tells the control plane about itself and its workload."""

    name: str
    namespace: str = "default"
    service_account: str = "default"
    labels: dict[str, str] = field(default_factory=dict)
    address: str = "127.0.0.1"
    outbound_port: int = 0
    inbound: dict[int, int] = field(default_factory=dict)
    """App port → the sidecar's inbound listener port in front of it."""
    admin_port: int = 0
    transparent: bool = False
    """The app's traffic is redirected here by iptables (``loom up --transparent``)."""

    def to_json(self, ready: bool = True) -> bytes:
        """The registration, saying whether the app is ``ready`` (peers route to it only then)."""
        return json.dumps(
            {
                "name": self.name,
                "namespace": self.namespace,
                "service_account": self.service_account,
                "labels": self.labels,
                "address": self.address,
                "ready": ready,
                "app_ports": sorted(self.inbound),
                "sidecar": {
                    "outbound": self.outbound_port,
                    "inbound": {str(k): v for k, v in self.inbound.items()},
                    "admin": self.admin_port,
                    "transparent": self.transparent,
                },
            }
        ).encode()


Apply = Callable[[Snapshot], Awaitable[None]]


class Agent:
    def __init__(
        self,
        control_plane: str,
        registration: Registration,
        identity: IdentityStore,
        bootstrap: Bootstrap,
        readiness: Readiness | None = None,
        telemetry_interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.url = control_plane.rstrip("/")
        self.registration = registration
        self.readiness = readiness
        """Probes the app (None: always ready, e.g. a sidecar with no inbound port)."""
        self.version = ""
        self.client = ControlPlaneClient(self.url)
        self.certificates = WorkloadCertificates(
            self.client, identity, bootstrap, registration.namespace, registration.service_account
        )
        self._path = f"/v1/proxies/{registration.namespace}/{registration.name}"
        self._backoff = BACKOFF_START
        self.connected = False
        self.stopping = False
        """Deregistered for shutdown: registering again would put the workload back."""
        self.telemetry_interval = telemetry_interval
        """The most seconds between two telemetry pushes (``telemetry.py``)."""

    async def obtain_certificate(self) -> None:
        """The workload certificate, before anything else (retrying while the control plane cannot
        be reached); CertificateRefused when it refuses the join token or the identity."""
        while True:
            try:
                await self.certificates.obtain()
            except (HttpError, IdentityError, OSError, ValueError) as exc:
                log.warning("no workload certificate yet (%s); retrying", exc)
                await self._wait_before_retry(exc)
                continue
            return

    def telemetry_pusher(self, metrics: Callable[[], IstioMetrics | None]) -> TelemetryPusher:
        """Pushes the proxy's golden metrics (``metrics()``) on this agent's connection."""
        reg = self.registration
        return TelemetryPusher(self.client, reg.namespace, reg.name, metrics, self.telemetry_interval)

    async def keep_certificate_fresh(self) -> None:
        await self.certificates.keep_renewed()

    @property
    def ready(self) -> bool:
        return self.readiness is None or self.readiness.ready

    async def register(self) -> None:
        """Register (or register again: the control plane replaces what it had) with the app's
        readiness as it is now."""
        body = self.registration.to_json(self.ready)
        status, answer = await self.client.call("POST", "/v1/workloads", body)
        if status != 200:
            raise HttpError(f"registration refused ({status}): {answer.decode(errors='replace')}")

    async def keep_readiness_reported(self) -> None:
        """Probe the app forever; register again whenever its readiness changes (and, when that
        registration fails, at every round after until one succeeds)."""
        readiness = self.readiness
        if readiness is None:
            return
        unreported = False
        while True:
            await asyncio.sleep(readiness.interval())
            if await readiness.probe():
                unreported = True
            if self.stopping:
                return
            if not unreported:
                continue
            try:
                await self.register()
            except HttpError as exc:
                log.warning("could not report readiness (%s); retrying", exc)
                continue
            unreported = False

    async def deregister(self) -> None:
        self.stopping = True
        reg = self.registration
        try:
            await self.client.call("DELETE", f"/v1/workloads/{reg.namespace}/{reg.name}", timeout=2.0)
        except HttpError:
            pass

    async def first_snapshot(self) -> Snapshot:
        """Register and wait for a snapshot this proxy can run (retrying until there is one). The
        app is probed once first: one already answering is registered ready from the start."""
        if self.readiness is not None:
            await self.readiness.probe()
        while True:
            try:
                await self.register()
                snapshot = await self._watch_once()
            except HttpError as exc:
                await self._wait_before_retry(exc)
                continue
            if snapshot is not None:
                return snapshot

    async def run(self, apply: Apply) -> None:
        """Watch forever; every new snapshot goes to ``apply`` and is ACKed or NACKed."""
        while True:
            try:
                await self._watch_once(apply)
            except HttpError as exc:
                await self._wait_before_retry(exc)

    async def _watch_once(self, apply: Apply | None = None) -> Snapshot | None:
        query = f"?version={self.version}&wait={WATCH_SECONDS:g}"
        status, body = await self.client.call(
            "GET", self._path + "/snapshot" + query, timeout=WATCH_SECONDS + 10
        )
        if status == 304:
            self._connected()
            return None
        if status == 404:
            self._connected()
            if not self.stopping:
                await self.register()  # the control plane restarted and no longer knows us
            return None
        if status != 200:
            raise HttpError(f"watch failed ({status}): {body.decode(errors='replace')[:200]}")
        self._connected()
        message = json.loads(body)
        version = str(message["version"])
        try:
            snapshot = parse_snapshot(message["snapshot"], f"control plane version {version}")
            if apply is not None:
                await apply(snapshot)
        except (SnapshotError, RouteCompileError, OSError, ValueError) as exc:
            log.error("refusing snapshot version %s: %s", version, exc)
            await self._acknowledge(version, str(exc))
            self.version = version  # do not fetch the same refused version again
            return None
        self.version = version
        await self._acknowledge(version, None)
        return snapshot

    async def _acknowledge(self, version: str, error: str | None) -> None:
        body = json.dumps({"version": version, "error": error}).encode()
        await self.client.call("POST", self._path + "/ack", body)

    def _connected(self) -> None:
        if not self.connected:
            log.info("connected to the control plane at %s", self.url)
        self.connected = True
        self._backoff = BACKOFF_START

    async def _wait_before_retry(self, exc: Exception) -> None:
        if self.connected:
            log.warning("lost the control plane (%s); serving the last good snapshot", exc)
        self.connected = False
        delay = self._backoff * (0.5 + random.random())
        self._backoff = min(self._backoff * 2, BACKOFF_MAX)
        await asyncio.sleep(delay)
