"""Which resources apply to each Service: the dashboard's ``/api/config``.

Computed from two reads of the control plane's API, ``GET /v1/resources?documents=1`` (every
resource in force, its file:line and YAML) and ``GET /v1/workloads`` (the registered workloads and
their labels). The rule, deliberately simple (docs/dashboard.md):

- by host — VirtualService (``spec.hosts``), DestinationRule (``spec.host``), TrafficSplit
  (``spec.service`` or a backend's ``service``), HTTPRoute (a ``parentRefs`` or ``backendRefs``
  name): the name is the Service's short name (in the resource's own namespace), or
  ``name.namespace``, ``name.namespace.svc``, ``name.namespace.svc.<domain>``, or a ``*`` wildcard;
- by selector — PeerAuthentication, AuthorizationPolicy, RequestAuthentication: in the Service's
  namespace or the root namespace ``istio-system``; no ``selector`` selects every Service there,
  else each ``matchLabels`` pair must be in the Service's selector or on a workload it selects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

ROOT_NAMESPACE = "istio-system"
HOST_KINDS = ("VirtualService", "DestinationRule", "TrafficSplit", "HTTPRoute")
SELECTOR_KINDS = ("PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication")
SHOWN_KINDS = (*HOST_KINDS, *SELECTOR_KINDS)


@dataclass
class Service:
    namespace: str
    name: str
    selector: dict[str, str]
    workloads: list[dict[str, Any]] = field(default_factory=list)
    resources: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "selector": self.selector,
            "workloads": [w["name"] for w in self.workloads],
            "resources": self.resources,
        }


def spec_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """The ``spec`` of a resource row's YAML document ({} when it has none or does not parse)."""
    text = row.get("yaml")
    if not isinstance(text, str):
        return {}
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    spec = document.get("spec") if isinstance(document, dict) else None
    return spec if isinstance(spec, dict) else {}


def host_matches(host: str, service: Service, resource_namespace: str) -> bool:
    host = str(host).strip().lower()
    name, namespace = service.name.lower(), service.namespace
    if host == "*":
        return True
    fqdn = f"{name}.{namespace}.svc.cluster.local"
    if host.startswith("*."):
        return fqdn.endswith(host[1:])
    if host == name:
        return resource_namespace == namespace
    return host in (f"{name}.{namespace}", f"{name}.{namespace}.svc") or (
        host.startswith(f"{name}.{namespace}.svc.")
    )


def _hosts(kind: str, spec: Mapping[str, Any]) -> list[str]:
    if kind == "VirtualService":
        return [str(h) for h in spec.get("hosts") or []]
    if kind == "DestinationRule":
        return [str(spec["host"])] if spec.get("host") else []
    if kind == "TrafficSplit":
        found = [str(spec["service"])] if spec.get("service") else []
        return found + [
            str(b["service"]) for b in spec.get("backends") or [] if isinstance(b, dict) and b.get("service")
        ]
    if kind == "HTTPRoute":
        found = [
            str(p["name"]) for p in spec.get("parentRefs") or [] if isinstance(p, dict) and p.get("name")
        ]
        for rule in spec.get("rules") or []:
            if isinstance(rule, dict):
                refs = rule.get("backendRefs") or []
                found += [str(b["name"]) for b in refs if isinstance(b, dict) and b.get("name")]
        return found
    return []


def _match_labels(spec: Mapping[str, Any]) -> dict[str, str] | None:
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        return None
    labels = selector.get("matchLabels")
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else None


def selector_matches(labels: Mapping[str, str] | None, service: Service) -> bool:
    if not labels:
        return True
    for key, value in labels.items():
        if service.selector.get(key) == value:
            continue
        if not any(dict(w.get("labels") or {}).get(key) == value for w in service.workloads):
            return False
    return True


def _details(kind: str, spec: Mapping[str, Any]) -> dict[str, Any]:
    """What the UI shows of a resource beyond its name: subsets, mode, action."""
    if kind == "DestinationRule":
        subsets = [
            {"name": str(s.get("name")), "labels": dict(s.get("labels") or {})}
            for s in spec.get("subsets") or []
            if isinstance(s, dict)
        ]
        return {"subsets": subsets}
    if kind == "PeerAuthentication":
        mtls = spec.get("mtls")
        return {"mode": str(mtls.get("mode", "")) if isinstance(mtls, dict) else ""}
    if kind == "AuthorizationPolicy":
        return {"action": str(spec.get("action") or "ALLOW")}
    return {}


def services_of(rows: Iterable[Mapping[str, Any]], workloads: Iterable[Mapping[str, Any]]) -> list[Service]:
    found = []
    for row in rows:
        if row.get("kind") != "Service":
            continue
        spec = spec_of(row)
        selector = spec.get("selector") if isinstance(spec.get("selector"), dict) else {}
        service = Service(
            str(row["namespace"]), str(row["name"]), {str(k): str(v) for k, v in selector.items()}
        )
        service.workloads = [
            dict(w)
            for w in workloads
            if w.get("namespace") == service.namespace
            and service.selector
            and all(dict(w.get("labels") or {}).get(k) == v for k, v in service.selector.items())
        ]
        found.append(service)
    return sorted(found, key=lambda s: (s.namespace, s.name))


def config_view(resources: Mapping[str, Any], workloads: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """``{"services": [{namespace, name, selector, workloads, resources: [...]}], "unmatched": [...],
    "last_error", "store"}``; each resource ``{kind, namespace, name, file, line, why, ...details}``."""
    rows = [r for r in resources.get("resources") or [] if isinstance(r, dict)]
    services = services_of(rows, list(workloads))
    unmatched = []
    for row in rows:
        kind = str(row.get("kind"))
        if kind not in SHOWN_KINDS:
            continue
        spec = spec_of(row)
        namespace = str(row.get("namespace"))
        base = {k: row.get(k) for k in ("kind", "namespace", "name", "file", "line")} | _details(kind, spec)
        matched = False
        for service in services:
            why = _why(kind, spec, namespace, service)
            if why is not None:
                service.resources.append({**base, "why": why})
                matched = True
        if not matched:
            unmatched.append(base)
    return {
        "services": [s.to_json() for s in services],
        "unmatched": unmatched,
        "last_error": resources.get("last_error"),
        "store": resources.get("store"),
    }


def _why(kind: str, spec: Mapping[str, Any], namespace: str, service: Service) -> str | None:
    """Why the resource applies to the service (None: it does not)."""
    if kind in HOST_KINDS:
        for host in _hosts(kind, spec):
            if host_matches(host, service, namespace):
                return f"host {host}"
        return None
    if namespace not in (service.namespace, ROOT_NAMESPACE):
        return None
    labels = _match_labels(spec)
    if not selector_matches(labels, service):
        return None
    scope = "mesh-wide" if namespace == ROOT_NAMESPACE else f"namespace {namespace}"
    if not labels:
        return f"{scope} (no selector)"
    return "selector " + ",".join(f"{k}={v}" for k, v in labels.items())
