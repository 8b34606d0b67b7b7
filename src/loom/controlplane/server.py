"""The control plane's HTTP API (JSON), served with aiohttp.

POST   /v1/workloads                          register a workload (its sidecar), JSON body
DELETE /v1/workloads/{namespace}/{name}       deregister
GET    /v1/proxies/{namespace}/{name}/snapshot?version=V&wait=S
       the proxy's snapshot: at once if its version differs from V, else when it changes,
       else 304 after S seconds (a blocking query: the watch)
POST   /v1/proxies/{namespace}/{name}/ack     {"version": N, "error": null | "why"}: ACK / NACK
GET    /v1/proxy-status                       every proxy: version, SYNCED / STALE / NACKED
GET    /v1/resources, POST /v1/resources, DELETE /v1/resources/{kind}/{namespace}/{name},
GET    /v1/workloads                          the store's resources and the registry: resources_api
POST   /v1/certificates, POST /v1/tokens      workload certificates and join tokens: identity_api
GET    /v1/identities                         what the CA issued, per identity: identity_api
POST   /v1/traces, GET /v1/traces[/{trace_id}] spans sidecars send, recent traces: traces
POST   /v1/telemetry/{namespace}/{name}, GET /v1/stats, /v1/edges, /v1/series, /v1/top, /v1/tap
                                       the sidecars' golden metrics and tap: telemetry/api.py
GET    /healthz

Served over HTTPS. Registering, watching, acknowledging and deregistering need a workload client
certificate whose SPIFFE ID is the workload's namespace and service account (401 without one, 403
for another identity); writes need the operator token (``auth.py``); reads need neither.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from types import MappingProxyType

from aiohttp import web

from loom.controlplane.auth import forbidden, operator_only, peer_identity, unauthorized
from loom.controlplane.compression import accepts_gzip
from loom.controlplane.identity_api import add_identity_routes
from loom.controlplane.payloads import Payload
from loom.controlplane.push import PushEngine
from loom.controlplane.registry import WorkloadRegistry
from loom.controlplane.resources_api import add_resource_routes
from loom.controlplane.security.setup import Security
from loom.controlplane.store import Store
from loom.controlplane.telemetry import TelemetryStore
from loom.controlplane.telemetry.api import add_telemetry_routes
from loom.controlplane.traces import add_trace_routes
from loom.controlplane.workloads import SidecarPorts, Workload

MAX_WAIT = 60.0
EXPIRY_SECONDS = 1.0


class ControlPlane:
    def __init__(
        self, store: Store | None, registry: WorkloadRegistry, push: PushEngine, security: Security
    ) -> None:
        self.store = store
        self.registry = registry
        self.push = push
        self.security = security
        self.telemetry = TelemetryStore()
        """The sidecars' pushed golden metrics and tap sessions (``loom stat``, ``tap``, ...)."""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/workloads", self.register)
        app.router.add_delete("/v1/workloads/{namespace}/{name}", self.deregister)
        app.router.add_get("/v1/proxies/{namespace}/{name}/snapshot", self.snapshot)
        app.router.add_post("/v1/proxies/{namespace}/{name}/ack", self.ack)
        app.router.add_get("/v1/proxy-status", self.proxy_status)
        add_resource_routes(app, self, lambda handler: operator_only(self.security.operator_token, handler))
        add_identity_routes(app, self.security, self.registry)
        add_telemetry_routes(
            app, self.telemetry, self.registry, self._refuse_caller, self.security.operator_token
        )
        self.traces = add_trace_routes(app)
        app.router.add_get("/healthz", self.healthz)
        return app

    async def expire_workloads(self) -> None:
        while True:
            await asyncio.sleep(EXPIRY_SECONDS)
            if self.registry.expire():
                self.push.schedule()

    # handlers ----------------------------------------------------------------------------

    async def register(self, request: web.Request) -> web.Response:
        try:
            workload = workload_from_json(await request.json())
        except (ValueError, KeyError, TypeError) as exc:
            return _error(400, f"invalid registration: {exc}")
        refused = self._refuse_caller(request, workload.key, workload.service_account)
        if refused is not None:
            return refused
        if self.registry.register(workload):
            self.push.schedule()
        return web.json_response({"id": f"{workload.namespace}/{workload.name}"})

    async def deregister(self, request: web.Request) -> web.Response:
        key = _key(request)
        refused = self._refuse_caller(request, key)
        if refused is not None:
            return refused
        self.telemetry.forget(key)
        if self.registry.deregister(key):
            self.push.schedule()
            return web.json_response({"deregistered": True})
        return _error(404, "no such workload")

    async def snapshot(self, request: web.Request) -> web.StreamResponse:
        key = _key(request)
        refused = self._refuse_caller(request, key)
        if refused is not None:
            return refused
        if not self.registry.seen(key):
            return _error(404, "unknown workload: register first")
        known = request.query.get("version", "")
        wait = min(float(request.query.get("wait", "0") or 0), MAX_WAIT)
        state = await self.push.wait_for_change(key, known, wait)
        if state is None:
            self.registry.seen(key)
            return web.Response(status=304)
        self.registry.seen(key)
        return await _send_payload(request, state.payload)

    async def ack(self, request: web.Request) -> web.Response:
        key = _key(request)
        refused = self._refuse_caller(request, key)
        if refused is not None:
            return refused
        self.registry.seen(key)
        try:
            body = await request.json()
            version = str(body["version"])
        except (ValueError, KeyError, TypeError) as exc:
            return _error(400, f"invalid acknowledgement: {exc}")
        if not self.push.acknowledge(key, version, body.get("error")):
            return _error(404, "unknown proxy")
        return web.json_response({"ok": True})

    async def proxy_status(self, request: web.Request) -> web.Response:
        return web.json_response(self.push.status())

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    def _refuse_caller(
        self, request: web.Request, key: tuple[str, str], service_account: str | None = None
    ) -> web.Response | None:
        """401 unless the client certificate is a workload's; 403 unless it is the identity of the
        workload ``key`` (its namespace, and the service account it registers or registered with)."""
        peer = peer_identity(request)
        if peer is None:
            return unauthorized("a workload client certificate is needed (get one with a join token)")
        namespace, name = key
        registered = self.registry.get(key)
        wanted = service_account or (registered.service_account if registered is not None else None)
        trust_domain = self.security.trust_domain
        if (
            peer.trust_domain != trust_domain
            or peer.namespace != namespace
            or (wanted is not None and peer.service_account != wanted)
        ):
            wanted_id = f"spiffe://{trust_domain}/ns/{namespace}/sa/{wanted or '*'}"
            return forbidden(f"{peer} may not act for workload {namespace}/{name} ({wanted_id})")
        if registered is not None and registered.service_account != peer.service_account:
            return forbidden(
                f"workload {namespace}/{name} is registered with service account "
                f"{registered.service_account}, not {peer.service_account}"
            )
        return None


def workload_from_json(data: dict[str, object]) -> Workload:
    sidecar = data.get("sidecar")
    ports = None
    if isinstance(sidecar, dict):
        inbound = {int(k): int(v) for k, v in dict(sidecar.get("inbound") or {}).items()}
        ports = SidecarPorts(
            outbound=int(sidecar["outbound"]),
            inbound=MappingProxyType(inbound),
            admin=int(sidecar.get("admin") or 0),
            transparent=bool(sidecar.get("transparent", False)),
        )
    labels = {str(k): str(v) for k, v in dict(data.get("labels") or {}).items()}  # type: ignore[call-overload]
    return Workload(
        name=str(data["name"]),
        namespace=str(data.get("namespace") or "default"),
        service_account=str(data.get("service_account") or "default"),
        labels=MappingProxyType(labels),
        address=str(data.get("address") or "127.0.0.1"),
        app_ports=tuple(int(p) for p in data.get("app_ports") or ()),  # type: ignore[attr-defined]
        sidecar=ports,
        ready=_flag(data.get("ready", True), "ready"),
    )


def _flag(value: object, name: str) -> bool:
    """A JSON boolean (null: the default, true)."""
    if value is None:
        return True
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, not {value!r}")
    return value


WRITE_SLICE = 16 * 1024
"""Snapshots are written a TLS record (16 KB) at a time, waiting for the connection to drain in
between: TLS encrypts whatever it is handed at once, so a whole 2 MB snapshot written in one go
would hold 2 MB of ciphertext per connection, 2 GB when a thousand watches are answered together
(bench/controlplane_scale.py: a peak RSS of 2.5 GB written whole, 370 MB in 64 KB slices, 280 MB
in 16 KB ones). Compressed (``compression.py``), the same snapshot is about a twentieth of that."""


async def _send_payload(request: web.Request, payload: Payload) -> web.StreamResponse:
    """Write a snapshot's chunks one after the other, a slice at a time: the big ones are shared by
    many proxies' payloads, and a thousand watches answered at once must not each make a copy of
    them (in plaintext or, for TLS, encrypted). gzip-encoded when the client accepts it (the
    sidecar's agent does): the shared chunks are then compressed once, not once per proxy."""
    headers = {"Content-Type": "application/json", "Vary": "Accept-Encoding"}
    if accepts_gzip(request.headers.get("Accept-Encoding", "")):
        pieces = payload.gzipped()
        headers["Content-Encoding"] = "gzip"
    else:
        pieces = payload.plain()
    size = sum(len(p) for p in pieces)
    if size <= WRITE_SLICE:
        return web.Response(body=b"".join(pieces), headers=headers)
    response = web.StreamResponse(headers=headers)
    response.content_length = size
    await response.prepare(request)
    for piece in slices(pieces, WRITE_SLICE):
        await response.write(piece)
    await response.write_eof()
    return response


def slices(pieces: list[bytes], size: int) -> Iterator[bytes | memoryview]:
    """The pieces' bytes in order, ``size`` at a time (the last one shorter): the big pieces are
    sliced without copies, the small ones joined to their neighbours."""
    pending = bytearray()
    for piece in pieces:
        view = memoryview(piece)
        if pending:
            room = size - len(pending)
            pending += view[:room]
            view = view[room:]
            if len(pending) < size:
                continue
            yield bytes(pending)
            pending = bytearray()
        whole = len(view) - len(view) % size
        for start in range(0, whole, size):
            yield view[start : start + size]
        pending += view[whole:]
    if pending:
        yield bytes(pending)


def _key(request: web.Request) -> tuple[str, str]:
    return (request.match_info["namespace"], request.match_info["name"])


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=json.dumps({"error": message}), content_type="application/json")
