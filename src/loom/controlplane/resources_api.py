"""The control plane's resource and workload endpoints: what ``loom apply``, ``loom get``,
``loom delete`` and ``loom explain`` talk to.

GET    /v1/resources[?kind=K&namespace=NS&name=N][&documents=1][&sources=1]
       the resources in force (kind, namespace, name, file, line), the last refused change
       (``last_error``) and the store; ``documents=1`` adds each resource's YAML document,
       ``sources=1`` the text of every source the resources were read from (file or key → YAML),
       enough for a client to load exactly the same resources, file:line included
POST   /v1/resources                          YAML (one or more documents): create or replace each
                                              resource in the store; 400 with the problems (file:line)
                                              when it does not load, 409 when the store refuses;
                                              401 without the operator token
DELETE /v1/resources/{kind}/{namespace}/{name}  remove one resource; 404 when there is none; 401
                                              without the operator token
GET    /v1/workloads                          the registered workloads, as they registered
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from aiohttp import web

from loom.api import KINDS, Resource
from loom.api.documents import split
from loom.controlplane.store import ApplyRefused, StoreConflict
from loom.controlplane.workloads import Workload

if TYPE_CHECKING:
    from loom.controlplane.server import ControlPlane

log = logging.getLogger("loom.controlplane")

MAX_APPLY_BYTES = 4 * 1024 * 1024
_TRUE = ("1", "true", "yes")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_resource_routes(
    app: web.Application, plane: ControlPlane, writer: Callable[[Handler], Handler] = lambda h: h
) -> None:
    """The routes; the writes (apply, delete) go through ``writer`` (the operator check)."""
    api = ResourcesApi(plane)
    app.router.add_get("/v1/resources", api.list_resources)
    app.router.add_post("/v1/resources", writer(api.apply))
    app.router.add_delete("/v1/resources/{kind}/{namespace}/{name}", writer(api.delete))
    app.router.add_get("/v1/workloads", api.list_workloads)


class ResourcesApi:
    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane

    async def list_resources(self, request: web.Request) -> web.Response:
        query = request.query
        kind = query.get("kind", "").lower()
        namespace = query.get("namespace", "")
        name = query.get("name", "")
        sources = self._sources()
        rows = []
        for resource in self.plane.push.resources:
            if kind and resource.kind.lower() != kind:
                continue
            if (namespace and resource.namespace != namespace) or (name and resource.name != name):
                continue
            row: dict[str, Any] = {
                "kind": resource.kind,
                "api_version": resource.api_version,
                "namespace": resource.namespace,
                "name": resource.name,
                "file": resource.source.file,
                "line": resource.source.line,
            }
            if query.get("documents", "").lower() in _TRUE:
                text = sources.get(resource.source.file)
                row["yaml"] = document_text(text, resource.source.line) if text is not None else None
            rows.append(row)
        store = self.plane.store
        body: dict[str, Any] = {
            "resources": rows,
            "last_error": store.last_error if store is not None else None,
            "store": store.describe() if store is not None and hasattr(store, "describe") else None,
        }
        if query.get("sources", "").lower() in _TRUE:
            used = dict.fromkeys(r.source.file for r in self.plane.push.resources)
            body["sources"] = [{"name": file, "text": sources[file]} for file in used if file in sources]
            body["sources_complete"] = all(file in sources for file in used)
        return web.json_response(body)

    async def apply(self, request: web.Request) -> web.Response:
        store = self.plane.store
        if store is None:
            return _error(503, "this control plane has no store to write to")
        if request.content_length is not None and request.content_length > MAX_APPLY_BYTES:
            return _error(413, f"the YAML is larger than {MAX_APPLY_BYTES} bytes: apply it in parts")
        try:
            text = await request.text()
        except UnicodeDecodeError:
            return _error(400, "the body is not UTF-8 text")
        try:
            applied: Sequence[Resource] = await store.apply(text)
        except ApplyRefused as exc:
            return _error(400, "the YAML does not load; nothing was applied", [str(p) for p in exc.problems])
        except StoreConflict as exc:
            return _error(409, str(exc))
        except NotImplementedError as exc:
            return _error(405, str(exc))
        return web.json_response({"applied": [_ref(r) for r in applied]})

    async def delete(self, request: web.Request) -> web.Response:
        store = self.plane.store
        if store is None:
            return _error(503, "this control plane has no store to write to")
        info = request.match_info
        kind = _canonical_kind(info["kind"])
        namespace, name = info["namespace"], info["name"]
        try:
            deleted = await store.delete(kind, namespace, name)
        except StoreConflict as exc:
            return _error(409, str(exc))
        except NotImplementedError as exc:
            return _error(405, str(exc))
        if not deleted:
            return _error(404, f"no {kind} {namespace}/{name} in the store")
        return web.json_response({"deleted": {"kind": kind, "namespace": namespace, "name": name}})

    async def list_workloads(self, request: web.Request) -> web.Response:
        return web.json_response([workload_to_json(w) for w in self.plane.registry.workloads()])

    def _sources(self) -> Mapping[str, str]:
        found = getattr(self.plane.store, "sources", None)
        return found if isinstance(found, Mapping) else {}


def workload_to_json(workload: Workload) -> dict[str, Any]:
    """A workload as it registered (``server.workload_from_json`` reads it back)."""
    sidecar = workload.sidecar
    return {
        "name": workload.name,
        "namespace": workload.namespace,
        "service_account": workload.service_account,
        "labels": dict(workload.labels),
        "address": workload.address,
        "app_ports": list(workload.app_ports),
        "ready": workload.ready,
        "sidecar": None
        if sidecar is None
        else {
            "outbound": sidecar.outbound,
            "inbound": {str(app): port for app, port in sidecar.inbound.items()},
            "admin": sidecar.admin,
            "transparent": sidecar.transparent,
        },
    }


def document_text(text: str, line: int) -> str | None:
    """The YAML document of ``text`` that starts at ``line`` (1-based), without its ``---`` line."""
    for chunk in split(text):
        if chunk.first_line <= line < chunk.first_line + len(chunk.lines):
            lines = list(chunk.lines)
            if lines and lines[0].strip() == "---":
                lines = lines[1:]
            while lines and not lines[-1].strip():
                lines.pop()
            return "\n".join(lines) + "\n"
    return None


def _canonical_kind(kind: str) -> str:
    """``virtualservice`` → ``VirtualService`` (the store's keys use the kind as the loader names it)."""
    for info in KINDS:
        if info.kind.lower() == kind.lower():
            return info.kind
    return kind


def _ref(resource: Resource) -> dict[str, str]:
    return {"kind": resource.kind, "namespace": resource.namespace, "name": resource.name}


def _error(status: int, message: str, problems: list[str] | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if problems is not None:
        body["problems"] = problems
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")
