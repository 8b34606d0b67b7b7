"""``loom explain --from WORKLOAD URL``: what the mesh would do with one request, decided by the
same code the sidecar runs.

The calling workload's snapshot is compiled as the control plane compiles it
(``compile_snapshot``); its outbound route config is compiled by the proxy's router
(``compile_route_config``); the request head is parsed by the proxy's codec (``RequestParser``);
and ``RouteTable.find`` then ``VirtualHostRoutes.match`` pick the virtual host and the route, as
the sidecar's ``select_route`` stage does. What follows the choice — destinations and weights,
endpoints, timeout, retries, the clusters' balancer, limits, outlier detection and retry budget —
is read off the snapshot, and the rule is traced back to the resource and line it was written at
(route names are ``<namespace>.<name>.<rule index>`` for VirtualService and HTTPRoute rules,
``<namespace>.<name>`` for a TrafficSplit, ``default`` for a service's own route).

Configuration comes from a folder (``--config-dir``: the resources, WorkloadEntries and the
workloads given with ``--workload``) or from a running control plane (``--control-plane``: its
resources and registered workloads).
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from loom.cli.resources import (
    DEFAULT_CONTROL_PLANE,
    STATE_DIR_OPTION,
    ApiError,
    ControlPlaneAccess,
    api_failure,
    err,
    fail,
    fetch_resources,
    fetch_workloads,
)

if TYPE_CHECKING:
    from loom.api import Resource
    from loom.controlplane.compiler import MeshInputs
    from loom.controlplane.compiler.context import Compilation
    from loom.controlplane.workloads import Workload
    from loom.proxy.codec.head import RequestHead
    from loom.snapshot.model import Cluster, RetryPolicy, RouteMatch

OUTBOUND_PORT = 15001
"""The outbound port given to the --from workload's sidecar (nothing is bound: it only has to exist)."""
UNLIMITED = 1 << 32


def explain(
    url: str = typer.Argument(
        ..., help="The request's URL, as the app sends it: http://HOST[:PORT]/PATH[?QUERY]."
    ),
    source: str = typer.Option(..., "--from", help="The calling workload: NAME or NAMESPACE/NAME."),
    method: str = typer.Option("GET", "-X", "--request", help="The request method."),
    header: list[str] = typer.Option(
        [], "-H", "--header", help="A request header 'Name: value'; repeatable."
    ),
    config_dir: Path | None = typer.Option(
        None,
        "--config-dir",
        help="Explain offline, from this folder of YAML (as `loom controlplane` reads it).",
    ),
    control_plane: str = typer.Option(
        DEFAULT_CONTROL_PLANE,
        "--control-plane",
        envvar="LOOM_CONTROL_PLANE",
        help="Explain with this control plane's resources and registered workloads (without --config-dir).",
    ),
    state_dir: str = STATE_DIR_OPTION,
    namespace: str = typer.Option("default", "-n", "--namespace", help="The --from workload's namespace."),
    label: list[str] = typer.Option(
        [],
        "--label",
        "-l",
        help="KEY=VALUE: a label of the --from workload (repeatable); needed when it is unknown.",
    ),
    workload: list[str] = typer.Option(
        [],
        "--workload",
        help="[NS/]NAME=KEY=VALUE[,KEY=VALUE...]\\[@ADDRESS]: a running workload (an endpoint); repeatable.",
    ),
    output: str = typer.Option("text", "-o", "--output", help="text or json."),
) -> None:
    """Explain what the mesh does with a request from a workload: the rule that matches (its resource
    and file:line), the destinations and weights, their endpoints, timeout, retries, and each
    cluster's balancer, limits, outlier detection and retry budget; or that no route matches (404 NR).
    The route is chosen by the proxy's own router, on the snapshot the control plane would push."""
    if output not in ("text", "json"):
        raise fail(f"--output must be text or json, not {output!r}", 2)
    try:
        headers = [_header(item) for item in header]
        labels = _labels(label, "--label")
        extra = [parse_workload(item) for item in workload]
    except ValueError as exc:
        raise fail(str(exc), 2) from None
    name, ns = source, namespace
    if "/" in source:
        ns, _, name = source.partition("/")
    if config_dir is not None:
        resources, workloads = _offline(config_dir)
    else:
        access = ControlPlaneAccess.of(control_plane, state_dir)
        try:
            resources, complete = fetch_resources(access)
            workloads = fetch_workloads(access)
        except ApiError as exc:
            raise api_failure(exc) from None
        if not complete:
            raise fail(f"the control plane at {control_plane} does not give its resources' YAML")
    workloads = _merge(workloads, extra)
    try:
        proxy, known_as = calling_workload(name, ns, labels, workloads, resources)
    except LookupError as exc:
        raise fail(str(exc)) from None
    result = explain_request(resources, workloads, proxy, method.upper(), url, headers)
    result["from"]["known_as"] = known_as
    if output == "json":
        typer.echo(json.dumps(result, indent=2))
    else:
        render(result, Console(highlight=False, soft_wrap=True))
    raise typer.Exit(0 if result["result"] in ("route", "redirect", "direct_response") else 1)


# --- inputs -----------------------------------------------------------------------------------


def _offline(config_dir: Path) -> tuple[list[Resource], list[Workload]]:
    from loom.api import load_paths

    if not config_dir.is_dir():
        raise fail(f"no such folder: {config_dir}", 2)
    loaded = load_paths([config_dir])
    if loaded.problems:
        for problem in loaded.problems:
            err.print(f"[red]✘[/] {escape(str(problem))}")
        raise fail(f"{config_dir} does not load (the control plane would refuse it)")
    return list(loaded.resources), []


def _header(item: str) -> tuple[str, str]:
    name, sep, value = item.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"-H {item!r}: write a header as 'Name: value'")
    return name.strip(), value.strip()


def _labels(items: Sequence[str], option: str) -> dict[str, str]:
    labels = {}
    for item in items:
        for part in item.split(","):
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"{option} {item!r}: write labels as KEY=VALUE")
            labels[key.strip()] = value.strip()
    return labels


def parse_workload(text: str) -> Workload:
    """``[NS/]NAME=KEY=VALUE[,KEY=VALUE...][@ADDRESS]`` → a workload without a sidecar."""
    from loom.controlplane.workloads import Workload

    ref, sep, rest = text.partition("=")
    if not sep or not ref:
        raise ValueError(f"--workload {text!r}: write [NAMESPACE/]NAME=KEY=VALUE[,KEY=VALUE...][@ADDRESS]")
    namespace, _, name = ref.rpartition("/")
    rest, _, address = rest.partition("@")
    labels = _labels([rest], "--workload") if rest else {}
    return Workload(
        name=name,
        namespace=namespace or "default",
        service_account=labels.get("app", "default"),
        labels=MappingProxyType(labels),
        address=address or "127.0.0.1",
    )


def _merge(workloads: Sequence[Workload], extra: Sequence[Workload]) -> list[Workload]:
    found = {w.key: w for w in workloads}
    for w in extra:
        found[w.key] = w
    return [found[key] for key in sorted(found)]


def calling_workload(
    name: str,
    namespace: str,
    labels: Mapping[str, str],
    workloads: Sequence[Workload],
    resources: Sequence[Resource],
) -> tuple[Workload, str]:
    """The --from workload, with a sidecar: a registered workload, else a WorkloadEntry, else one
    with the given labels. ``--label`` adds to (or overrides) the labels of a known one."""
    from dataclasses import replace

    from loom.api.resources.istio_networking import WorkloadEntrySpec
    from loom.controlplane.workloads import SidecarPorts, Workload

    sidecar = SidecarPorts(outbound=OUTBOUND_PORT)
    for w in workloads:
        if w.key == (namespace, name):
            merged = MappingProxyType({**w.labels, **labels})
            return replace(w, labels=merged, sidecar=w.sidecar or sidecar), "registered workload"
    for r in resources:
        spec = r.spec
        if isinstance(spec, WorkloadEntrySpec) and (r.namespace, r.name) == (namespace, name):
            found = Workload(
                name=name,
                namespace=namespace,
                service_account=spec.service_account or "default",
                labels=MappingProxyType({**spec.labels, **labels}),
                address=spec.address or "127.0.0.1",
                sidecar=sidecar,
            )
            return found, f"WorkloadEntry at {r.source}"
    if labels:
        found = Workload(
            name=name,
            namespace=namespace,
            service_account=labels.get("app", "default"),
            labels=MappingProxyType(dict(labels)),
            address="127.0.0.1",
            sidecar=sidecar,
        )
        return found, "not known: labels from --label"
    known = sorted(f"{w.namespace}/{w.name}" for w in workloads)
    known += sorted(f"{r.namespace}/{r.name}" for r in resources if isinstance(r.spec, WorkloadEntrySpec))
    listed = ", ".join(dict.fromkeys(known)) or "none"
    raise LookupError(
        f"no workload {namespace}/{name} is known (workloads: {listed}); give its labels with "
        "--label KEY=VALUE (e.g. --label app=sleep) to explain as if it were running"
    )


# --- the explanation ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Sink:
    heads: list[RequestHead]

    def on_request(self, head: RequestHead) -> None:
        self.heads.append(head)

    def on_body(self, chunk: bytes) -> None:
        return None

    def on_request_complete(self) -> None:
        return None


def request_head(method: str, url: str, headers: Sequence[tuple[str, str]]) -> RequestHead:
    """The head the sidecar would parse from the app's request (``ProtocolError`` if it would not)."""
    from loom.proxy.codec.errors import ProtocolError
    from loom.proxy.codec.request_parser import ParserLimits, RequestParser

    parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProtocolError(400, f"{url!r} is not an http:// URL with a host")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    lines = [f"{method} {target} HTTP/1.1"]
    if not any(name.lower() == "host" for name, _ in headers):
        lines.append(f"Host: {parts.netloc.rpartition('@')[2]}")
    lines += [f"{name}: {value}" for name, value in headers]
    sink = _Sink([])
    RequestParser(sink, ParserLimits()).feed(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"))
    if not sink.heads:
        raise ProtocolError(400, "the request is incomplete")
    return sink.heads[0]


def explain_request(
    resources: Sequence[Resource],
    workloads: Sequence[Workload],
    proxy: Workload,
    method: str,
    url: str,
    headers: Sequence[tuple[str, str]],
) -> dict[str, Any]:
    """The explanation as JSON-ready data (``render`` prints it)."""
    from loom.controlplane.compiler import MeshInputs, compile_snapshot
    from loom.controlplane.compiler.context import Compilation
    from loom.proxy.codec.errors import ProtocolError
    from loom.proxy.router import compile_route_config, parse_query
    from loom.proxy.router.match import compile_route_match, source_labels_hold
    from loom.snapshot.model import Direction

    result: dict[str, Any] = {
        "request": {"method": method, "url": url, "headers": dict(headers)},
        "from": {
            "workload": proxy.name,
            "namespace": proxy.namespace,
            "service_account": proxy.service_account,
            "labels": dict(proxy.labels),
        },
    }
    # As the control plane compiles it: with mutual TLS on (it issues every sidecar a certificate).
    inputs = MeshInputs.build(resources, workloads, mtls_enabled=True)
    compiled = compile_snapshot(inputs, proxy, version="explain")
    snapshot = compiled.snapshot
    listener = next(li for li in snapshot.listeners if li.direction is Direction.OUTBOUND)
    route_config = next(rc for rc in snapshot.route_configs if rc.name == listener.route_config)
    table = compile_route_config(route_config, snapshot.node)
    try:
        head = request_head(method, url, headers)
    except ProtocolError as exc:
        result.update(result="invalid", status=exc.status, reason=f"the sidecar refuses the request: {exc}")
        return result
    authority = head.authority.decode()
    result["request"].update(authority=authority, port=head.port, path=head.path.decode())
    vhost = table.find(head.authority, head.port)
    if vhost is None:
        on = f"{authority}:{head.port}" if head.port is not None else authority
        names = sorted(vh.name for vh in route_config.virtual_hosts)
        result.update(
            result="NR",
            status=404,
            flag="NR",
            reason=f"no virtual host of {proxy.namespace}/{proxy.name}'s sidecar answers {on}",
            virtual_hosts=names,
        )
        return result
    port = head.port if head.port is not None else vhost.port
    result["virtual_host"] = {"name": vhost.name, "port": port}
    route = vhost.match(head, port)
    snap_vhost = next(vh for vh in route_config.virtual_hosts if vh.name == vhost.name)
    if route is None:
        result.update(
            result="NR",
            status=404,
            flag="NR",
            reason=f"no route of virtual host {vhost.name} matches the request",
            rules=[
                {
                    "name": r.name,
                    "source": rule_source(inputs, proxy.namespace, vhost.name, r.name),
                    "matches": [describe_match(m) for m in r.matches] or ["every request"],
                }
                for r in snap_vhost.routes
            ],
        )
        return result

    # The snapshot route the router chose: the first, in order, one of whose matches holds.
    query = parse_query(head.query)
    chosen, matched = None, None
    for candidate in snap_vhost.routes:
        if not candidate.matches:
            chosen, matched = candidate, "every request"
            break
        for rm in candidate.matches:
            if not source_labels_hold(rm, snapshot.node.labels):
                continue
            if compile_route_match(rm, "").matches(head, port, query):
                chosen, matched = candidate, describe_match(rm)
                break
        if chosen is not None:
            break
    assert chosen is not None and chosen.name == route.name, "the router and the snapshot disagree"
    source = rule_source(inputs, proxy.namespace, vhost.name, route.name)
    result["route"] = {
        "name": route.name,
        "source": source,
        "matched": matched,
        "matches": [describe_match(m) for m in chosen.matches] or ["every request"],
    }
    if chosen.fault is not None:
        result["fault"] = _builtins(chosen.fault)
    for side in ("request_headers", "response_headers"):
        ops = getattr(chosen, side)
        if ops is not None:
            result[side] = _builtins(ops)
    if chosen.redirect is not None:
        result.update(result="redirect", redirect=_builtins(chosen.redirect))
        return _with_warnings(result, compiled.warnings, source, [])
    if chosen.direct_response is not None:
        result.update(result="direct_response", direct_response=_builtins(chosen.direct_response))
        return _with_warnings(result, compiled.warnings, source, [])
    action = chosen.route
    assert action is not None
    clusters = {c.name: c for c in snapshot.clusters}
    total = sum(d.weight for d in action.destinations) or 1
    comp = Compilation(inputs, proxy.namespace, proxy.labels)
    destinations = []
    for dest in action.destinations:
        entry: dict[str, Any] = {
            "cluster": dest.cluster,
            "weight": dest.weight,
            "percent": round(100.0 * dest.weight / total, 2),
        }
        entry.update(_cluster_name(dest.cluster))
        cluster = clusters.get(dest.cluster)
        if cluster is None:
            entry["missing"] = True
        else:
            entry.update(describe_cluster(cluster))
            retry = action.retry or cluster.default_retry
            entry["retry"] = describe_retry(retry) if retry is not None else None
            entry["retry_from"] = (
                "route" if action.retry is not None else "cluster default" if retry is not None else None
            )
            entry["policy"] = _policy_sources(comp, inputs, entry)
        destinations.append(entry)
    result.update(
        result="route",
        destinations=destinations,
        timeout=_duration(action.timeout),
        retry=describe_retry(action.retry) if action.retry is not None else None,
    )
    if action.rewrite is not None:
        result["rewrite"] = _builtins(action.rewrite)
    if action.mirror is not None:
        result["mirror"] = _builtins(action.mirror)
    hosts = [d["host"] for d in destinations if d.get("host")]
    return _with_warnings(result, compiled.warnings, source, hosts)


def rule_source(
    inputs: MeshInputs, namespace: str, vhost_name: str, route_name: str
) -> dict[str, Any] | None:
    """The resource and rule a route of the outbound virtual host ``vhost_name`` was compiled from."""
    from loom.controlplane.compiler.names import exported_to

    fqdn = vhost_name.rpartition(":")[0]
    claims = [
        c
        for c in inputs.virtual_services.get(fqdn, ())
        if exported_to(c.entry.spec.export_to, c.entry.resource.namespace, namespace)
    ]
    if claims:  # the first claim wins the host: every route comes from it
        resource = claims[0].entry.resource
        for i, rule in enumerate(claims[0].entry.spec.http):
            if (rule.name or f"{resource.namespace}.{resource.name}.{i}") == route_name:
                return _where(resource, i, f"spec.http[{i}]", rule.name)
        return None
    for attachment in inputs.http_routes.get(fqdn, ()):
        resource = attachment.resource
        for i, gw_rule in enumerate(attachment.spec.rules):
            if (gw_rule.name or f"{resource.namespace}.{resource.name}.{i}") == route_name:
                return _where(resource, i, f"spec.rules[{i}]", gw_rule.name)
    for resource in inputs.traffic_splits.get(fqdn, ()):
        if f"{resource.namespace}.{resource.name}" == route_name:
            return _where(resource, None, "spec", None)
    return None


def _where(resource: Resource, rule: int | None, path: str, rule_name: str | None) -> dict[str, Any]:
    return {
        "kind": resource.kind,
        "namespace": resource.namespace,
        "name": resource.name,
        "rule": rule,
        "rule_name": rule_name,
        "path": path,
        "file": resource.source.file,
        "line": resource.line_of(path),
    }


def _cluster_name(name: str) -> dict[str, Any]:
    """``outbound|8080|v1|orders-api.production.svc.cluster.local`` → port, subset, host."""
    parts = name.split("|")
    if len(parts) != 4:
        return {}
    return {
        "port": int(parts[1]) if parts[1].isdigit() else None,
        "subset": parts[2] or None,
        "host": parts[3],
    }


def describe_cluster(cluster: Cluster) -> dict[str, Any]:
    limits = cluster.limits
    od = cluster.outlier_detection
    budget = cluster.retry_budget
    return {
        "service": cluster.service,
        "endpoints": [
            {
                "address": e.address,
                "port": e.port,
                "workload": e.workload,
                "namespace": e.namespace,
                "weight": e.weight,
                "labels": dict(e.labels),
            }
            for e in cluster.endpoints
        ],
        "lb_policy": str(cluster.lb_policy),
        "consistent_hash": _builtins(cluster.consistent_hash) if cluster.consistent_hash else None,
        "limits": {
            "max_connections": _limit(limits.max_connections),
            "max_pending_requests": _limit(limits.max_pending_requests),
            "max_requests": _limit(limits.max_requests),
            "max_requests_per_connection": limits.max_requests_per_connection or None,
            "connect_timeout": _duration(limits.connect_timeout),
            "idle_timeout": _duration(limits.idle_timeout),
        },
        "outlier_detection": None
        if od is None
        else {
            "consecutive_5xx": od.consecutive_5xx,
            "consecutive_gateway_errors": od.consecutive_gateway_errors,
            "interval": _duration(od.interval),
            "base_ejection_time": _duration(od.base_ejection_time),
            "max_ejection_percent": od.max_ejection_percent,
        },
        "retry_budget": {
            "percent": budget.percent,
            "min_retries_per_second": budget.min_retries_per_second,
            "window": _duration(budget.window),
        },
    }


def describe_retry(policy: RetryPolicy) -> dict[str, Any]:
    return {
        "attempts": policy.attempts,
        "per_try_timeout": _duration(policy.per_try_timeout),
        "retry_on": list(policy.retry_on),
        "retriable_status_codes": list(policy.retriable_status_codes),
        "backoff_base": _duration(policy.backoff_base),
        "backoff_max": _duration(policy.backoff_max),
    }


def describe_match(rm: RouteMatch) -> str:
    parts = []
    if rm.path is not None:
        parts.append(f"path {_string(rm.path)}" + (" (any case)" if rm.ignore_uri_case else ""))
    if rm.method is not None:
        parts.append(f"method {_string(rm.method)}")
    if rm.authority is not None:
        parts.append(f"authority {_string(rm.authority)}")
    for name, hm in rm.headers.items():
        parts.append(f"header {name} {_string(hm)}")
    for name, hm in rm.without_headers.items():
        parts.append(f"no header {name} {_string(hm)}")
    for name, sm in rm.query_params.items():
        parts.append(f"query {name} {_string(sm)}")
    if rm.source_labels:
        parts.append("caller labels " + ",".join(f"{k}={v}" for k, v in rm.source_labels.items()))
    if rm.port is not None:
        parts.append(f"port {rm.port}")
    return " and ".join(parts) or "every request"


def _string(sm: Any) -> str:
    if sm.exact is not None:
        return f"= {sm.exact!r}"
    if sm.prefix is not None:
        return f"starts with {sm.prefix!r}"
    if sm.regex is not None:
        return f"matches /{sm.regex}/"
    return "present"


def _policy_sources(comp: Compilation, inputs: MeshInputs, entry: Mapping[str, Any]) -> dict[str, str]:
    """Where the destination's policy was written: the DestinationRule field of each part (file:line)."""
    service = inputs.services_by_host.get(entry.get("host") or "")
    port = entry.get("port")
    if service is None or port is None:
        return {}
    rule = comp.rule(service)
    if rule is None:
        return {}
    found = {}
    subset = entry.get("subset")
    if subset is not None and subset in rule.subsets:
        located = rule.subsets[subset]
        found["subset"] = f"{located.resource.ref} {located.path} ({_line(located.resource, located.path)})"
    policy = rule.policy(port, subset)
    for part in ("load_balancer", "connection_pool", "outlier_detection", "retry_budget", "retry_policy"):
        located = getattr(policy, part)
        if located is not None:
            found[part] = f"{located.resource.ref} {located.path} ({_line(located.resource, located.path)})"
    return found


def _line(resource: Resource, path: str) -> str:
    return f"{resource.source.file}:{resource.line_of(path)}"


def _with_warnings(
    result: dict[str, Any], warnings: Sequence[Any], source: Mapping[str, Any] | None, hosts: Sequence[str]
) -> dict[str, Any]:
    ref = f"{source['kind']} {source['namespace']}/{source['name']}" if source else None
    related = [
        str(w)
        for w in warnings
        if (ref is not None and w.resource == ref) or any(h in w.message for h in hosts)
    ]
    if related:
        result["warnings"] = related
    return result


def _limit(value: int) -> int | None:
    return None if value >= UNLIMITED else value


def _duration(value: float | None) -> str | None:
    from loom.snapshot.durations import format_duration

    return format_duration(value) if value else None


def _builtins(value: Any) -> Any:
    import msgspec

    from loom.snapshot.durations import encode

    return msgspec.to_builtins(value, enc_hook=encode)


# --- text output --------------------------------------------------------------------------------


def render(result: Mapping[str, Any], console: Console) -> None:
    """The explanation as a readable block of text."""

    def row(label: str, text: str, indent: int = 2) -> None:
        console.print(f"{' ' * indent}[dim]{label:<18}[/]{escape(text)}")

    request, caller = result["request"], result["from"]
    console.print(
        f"[bold]{escape(request['method'])} {escape(request['url'])}[/] from "
        f"[bold]{escape(caller['namespace'])}/{escape(caller['workload'])}[/] "
        f"({escape(caller.get('known_as', ''))}, labels {escape(_labels_text(caller['labels']))})"
    )
    for name, value in request["headers"].items():
        console.print(f"  {escape(name)}: {escape(value)}")
    kind = result["result"]
    if kind == "invalid":
        console.print(f"[red]{result['status']}[/] {escape(result['reason'])}")
        return
    if kind == "NR":
        console.print(f"[red]404 NR[/]: {escape(result['reason'])}")
        for rule in result.get("rules", []):
            row("rule", f"{_source_text(rule['source'], rule['name'])}: {' or '.join(rule['matches'])}")
        hosts = result.get("virtual_hosts", [])
        if hosts:
            more = f" and {len(hosts) - 12} more" if len(hosts) > 12 else ""
            row("hosts it routes", ", ".join(hosts[:12]) + more)
        return
    route = result["route"]
    row("virtual host", result["virtual_host"]["name"])
    console.print(f"  [dim]{'rule':<18}[/][bold]{escape(_source_text(route['source'], route['name']))}[/]")
    row("matched", route["matched"])
    if "fault" in result:
        row("fault", _compact(result["fault"]))
    for side in ("request_headers", "response_headers"):
        if side in result:
            row(side.replace("_", " "), _compact(result[side]))
    if kind in ("redirect", "direct_response"):
        row(kind.replace("_", " "), _compact(result[kind]))
    else:
        row("timeout", result["timeout"] or "none")
        retry = result["retry"]
        row(
            "retries", _retry_text(retry) if retry else "none set by the route: the cluster's default applies"
        )
        for part in ("rewrite", "mirror"):
            if part in result:
                row(part, _compact(result[part]))
        console.print("  [dim]destinations[/]")
        for dest in result["destinations"]:
            _render_destination(dest, retry is None, console, row)
    for warning in result.get("warnings", []):
        console.print(f"  [yellow]warning[/] {escape(warning)}")


def _render_destination(dest: Mapping[str, Any], show_retry: bool, console: Console, row: Any) -> None:
    subset = f" (subset {dest['subset']})" if dest.get("subset") else ""
    share = f"{dest['percent']:g}%"
    console.print(
        f"    [bold]{share:>5}[/] {escape(dest['cluster'])}{escape(subset)}, weight {dest['weight']}"
    )
    if dest.get("missing"):
        console.print("          [red]no such cluster[/]: requests sent here get 503 NC")
        return
    if not dest["endpoints"]:
        console.print("          [red]no endpoints[/]: requests sent here get 503 UH")
    for e in dest["endpoints"]:
        weight = f" (weight {e['weight']})" if e["weight"] != 1 else ""
        row("endpoint", f"{e['address']}:{e['port']}  {e['namespace']}/{e['workload']}{weight}", 10)
    lb = dest["lb_policy"] + (f" {_compact(dest['consistent_hash'])}" if dest.get("consistent_hash") else "")
    row("load balancer", lb, 10)
    limits = dest["limits"]
    text = (
        f"connections {_or_unlimited(limits['max_connections'])}, "
        f"pending {_or_unlimited(limits['max_pending_requests'])}, "
        f"requests {_or_unlimited(limits['max_requests'])}"
    )
    if limits["max_requests_per_connection"]:
        text += f", per connection {limits['max_requests_per_connection']}"
    row("limits", f"{text}; connect timeout {limits['connect_timeout']}", 10)
    row("outlier detection", _outlier_text(dest["outlier_detection"]), 10)
    if show_retry:
        retry = dest.get("retry")
        origin = f" ({dest['retry_from']})" if dest.get("retry_from") else ""
        row("retries", (_retry_text(retry) if retry else "none") + origin, 10)
    budget = dest["retry_budget"]
    per_second = budget["min_retries_per_second"]
    row("retry budget", f"{budget['percent']:g}% of requests + {per_second:g}/s over {budget['window']}", 10)
    for part, where in dest.get("policy", {}).items():
        row(part.replace("_", " "), f"from {where}", 10)


def _outlier_text(od: Mapping[str, Any] | None) -> str:
    if od is None:
        return "off"
    triggers = []
    if od["consecutive_gateway_errors"] is not None:
        triggers.append(f"{od['consecutive_gateway_errors']} consecutive gateway errors")
    if od["consecutive_5xx"] is not None:
        triggers.append(f"{od['consecutive_5xx']} consecutive 5xx")
    return (
        f"eject after {' or '.join(triggers) or 'never'}, checked every {od['interval']}, "
        f"for {od['base_ejection_time']} × ejections, at most {od['max_ejection_percent']}% of endpoints"
    )


def _source_text(source: Mapping[str, Any] | None, name: str) -> str:
    if source is None:
        return "the service's default route" if name == "default" else f"route {name!r}"
    rule = f", rule {source['rule']}" if source["rule"] is not None else ""
    named = f" ({source['rule_name']!r})" if source.get("rule_name") else ""
    where = f"{source['file']}:{source['line']}"
    return f"{source['kind']} {source['namespace']}/{source['name']}{rule}{named} at {where}"


def _retry_text(retry: Mapping[str, Any]) -> str:
    if retry["attempts"] == 0:
        return "none (attempts 0)"
    on = ",".join(retry["retry_on"] + [str(c) for c in retry["retriable_status_codes"]])
    per_try = retry["per_try_timeout"] or "none"
    tries = retry["attempts"] + 1
    return f"{retry['attempts']} attempts (up to {tries} tries), per try timeout {per_try}, retry on {on}"


def _or_unlimited(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


def _labels_text(labels: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or "none"


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "))
