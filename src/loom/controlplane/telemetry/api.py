"""The telemetry routes of the control plane's API.

POST /v1/telemetry/{namespace}/{workload}   a sidecar's push (its workload certificate) →
                                            {"interval": seconds, "tap": bool}
GET  /v1/stats?by=deploy|svc|route&namespace=&name=&window=60
GET  /v1/edges?namespace=&window=60
GET  /v1/series?namespace=&service=&minutes=15&step=10
GET  /v1/top?namespace=&window=60&seconds=5
GET  /v1/tap?namespace=&to=&path=&method=&deploy=&max=&seconds=   (operator token; NDJSON)

Shapes: docs/controlplane.md, "Golden metrics from the CLI".
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from loom.controlplane.auth import is_operator, unauthorized
from loom.controlplane.registry import WorkloadRegistry
from loom.controlplane.telemetry import queries
from loom.controlplane.telemetry.report import ReportError, decode_body
from loom.controlplane.telemetry.store import SESSION_QUEUE, TapSession, TelemetryStore

MAX_WINDOW = 15 * 60.0
TOP_SECONDS = 5.0
TOP_LEASE = 20.0
"""After a ``/v1/top``, proxies keep tapping this long: a refreshing ``loom top`` reads the ring."""
TAP_SECONDS = 60.0
TAP_MAX_SECONDS = 3600.0
TAP_MAX_EVENTS = 100_000
PRUNE_EVERY = 10.0


Refuse = Callable[[web.Request, tuple[str, str]], "web.Response | None"]
"""401/403 unless the caller's client certificate is the workload's (None: it is)."""


def add_telemetry_routes(
    app: web.Application,
    store: TelemetryStore,
    registry: WorkloadRegistry,
    refuse_caller: Refuse,
    operator_token: str,
) -> None:
    api = TelemetryApi(store, registry, refuse_caller, operator_token)
    app.router.add_post("/v1/telemetry/{namespace}/{name}", api.push)
    app.router.add_get("/v1/stats", api.stats)
    app.router.add_get("/v1/edges", api.edges)
    app.router.add_get("/v1/series", api.series)
    app.router.add_get("/v1/top", api.top)
    app.router.add_get("/v1/tap", api.tap)


class BadQuery(ValueError):
    pass


def _number(request: web.Request, name: str, default: float, low: float, high: float) -> float:
    text = request.query.get(name, "")
    if not text:
        return default
    try:
        value = float(text.removesuffix("s"))
    except ValueError:
        raise BadQuery(f"{name} must be a number, not {text!r}") from None
    if not low <= value <= high:
        raise BadQuery(f"{name} must be between {low:g} and {high:g}")
    return value


def _window(request: web.Request) -> float:
    return _number(request, "window", 60.0, 1.0, MAX_WINDOW)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _queries(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
    async def guarded(self: TelemetryApi, request: web.Request) -> web.StreamResponse:
        try:
            return await handler(self, request)  # type: ignore[call-arg, arg-type]
        except BadQuery as exc:
            return _error(400, str(exc))

    return guarded


class TelemetryApi:
    def __init__(
        self, store: TelemetryStore, registry: WorkloadRegistry, refuse_caller: Refuse, operator_token: str
    ) -> None:
        self.store = store
        self.registry = registry
        self.refuse_caller = refuse_caller
        self.operator_token = operator_token
        self._pruned = 0.0

    def _prune(self) -> None:
        registry = self.registry
        self.store.prune(lambda key: registry.get(key) is not None)
        self._pruned = time.monotonic()

    async def push(self, request: web.Request) -> web.Response:
        key = (request.match_info["namespace"], request.match_info["name"])
        refused = self.refuse_caller(request, key)
        if refused is not None:
            return refused
        if not self.registry.seen(key):
            return _error(404, "unknown workload: register first")
        try:
            data = json.loads(decode_body(await request.read()))
            answer = self.store.push(key, data)
        except (ReportError, ValueError) as exc:
            return _error(400, str(exc))
        if time.monotonic() - self._pruned > PRUNE_EVERY:
            self._prune()
        return web.json_response(answer)

    @_queries
    async def stats(self, request: web.Request) -> web.Response:
        by = request.query.get("by", "deploy")
        if by not in queries.BY:
            raise BadQuery(f"by must be one of {', '.join(queries.BY)}, not {by!r}")
        self._prune()
        query = request.query
        result = queries.stats(
            self.store, by, time.time(), _window(request), query.get("namespace", ""), query.get("name", "")
        )
        return web.json_response(result)

    @_queries
    async def edges(self, request: web.Request) -> web.Response:
        self._prune()
        result = queries.edges(self.store, time.time(), _window(request), request.query.get("namespace", ""))
        return web.json_response(result)

    @_queries
    async def series(self, request: web.Request) -> web.Response:
        service = request.query.get("service", "")
        if not service:
            raise BadQuery("series needs service=NAME")
        minutes = _number(request, "minutes", 15.0, 0.1, 15.0)
        step = _number(request, "step", 10.0, 1.0, 300.0)
        self._prune()
        namespace = request.query.get("namespace", "") or "default"
        return web.json_response(queries.series(self.store, time.time(), namespace, service, minutes, step))

    @_queries
    async def top(self, request: web.Request) -> web.Response:
        window = _window(request)
        seconds = _number(request, "seconds", TOP_SECONDS, 0.0, 60.0)
        store = self.store
        if store.tapping():
            # A tap is on: the ring holds recent events; keep it on for the next refresh.
            store.open_session(TapSession(lambda _e: False, time.monotonic() + TOP_LEASE))
        else:
            store.open_session(TapSession(lambda _e: False, time.monotonic() + seconds + TOP_LEASE))
            await asyncio.sleep(seconds)
        since = time.time() - window
        return web.json_response(queries.top(store.recent_events(since), request.query.get("namespace", "")))

    async def tap(self, request: web.Request) -> web.StreamResponse:
        if not is_operator(request, self.operator_token):
            return unauthorized("tap shows requests' paths and ids: it needs the operator's bearer token")
        try:
            limit = int(_number(request, "max", TAP_MAX_EVENTS, 1, TAP_MAX_EVENTS))
            seconds = _number(request, "seconds", TAP_SECONDS, 0.1, TAP_MAX_SECONDS)
        except BadQuery as exc:
            return _error(400, str(exc))
        accepts = tap_filter(dict(request.query))
        session = self.store.open_session(
            TapSession(accepts, time.monotonic() + seconds, queue=asyncio.Queue(SESSION_QUEUE))
        )
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        sent = 0
        deadline = time.monotonic() + seconds
        try:
            assert session.queue is not None
            while sent < limit:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    async with asyncio.timeout(left):
                        event = await session.queue.get()
                except TimeoutError:
                    break
                await response.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")
                sent += 1
        finally:  # also when the client goes away (the handler is cancelled)
            self.store.close_session(session)
        await response.write_eof()
        return response


def tap_filter(query: dict[str, str]) -> Callable[[dict[str, Any]], bool]:
    """Which events a tap session wants: ``namespace`` (either end's), ``to`` (the destination
    service's name or host), ``deploy`` (either end's Workload), ``path`` (a prefix), ``method``."""
    namespace = query.get("namespace", "")
    to = query.get("to", "")
    deploy = query.get("deploy", "")
    path = query.get("path", "")
    method = query.get("method", "").upper()

    def accepts(event: dict[str, Any]) -> bool:
        if namespace and namespace not in (event.get("source_namespace"), event.get("destination_namespace")):
            return False
        if to:
            service = str(event.get("destination_service", ""))
            if to != service and to != service.split(".")[0]:
                return False
        if deploy and deploy not in (
            queries.deploy_name(str(event.get("source_workload", ""))),
            queries.deploy_name(str(event.get("destination_workload", ""))),
        ):
            return False
        if path and not str(event.get("path", "")).startswith(path):
            return False
        return not (method and str(event.get("method", "")).upper() != method)

    return accepts
