"""A VirtualService's ``http`` rules → the routes of one service port's virtual host.

Rules keep their order (the first match wins). Per rule:

- ``match`` entries (OR) become RouteMatches. Conditions that depend on the caller are decided
  here, for this proxy: ``sourceLabels`` and ``sourceNamespace`` (against the proxy), ``gateways``
  (must include ``mesh``), ``port`` (against the virtual host's port) and ``scheme`` (the app
  speaks plain ``http`` to its sidecar). An entry that cannot hold is left out; a rule with no
  entry left is left out.
- ``route`` destinations → clusters ``outbound|<port>|<subset>|<host>`` with weights (one
  destination gets 100; otherwise weights are relative shares), ``timeout`` (0 = none),
  ``retries`` (see ``retries``; without it the route sets none, so the destination cluster's
  ``default_retry`` — the DestinationRule's retryPolicy or Istio's default — applies),
  ``rewrite``, ``mirror``/``mirrors`` + ``mirrorPercentage`` (the first mirror only).
- ``redirect``, ``directResponse``, ``fault``, ``headers`` (and one destination's own ``headers``).

Unsupported parts (``delegate``, ``corsPolicy``, ``uriRegexRewrite``, gRPC/HTTP2 aborts,
exponential delays, per-destination headers on a split) are dropped with a warning.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable

from loom.api import Resource, defaults
from loom.api.resources.istio_networking import (
    Destination,
    HeaderOperations,
    Headers,
    HTTPMatchRequest,
    HTTPRoute,
)
from loom.api.resources.values import Percent
from loom.api.resources.values import StringMatch as IstioStringMatch
from loom.controlplane.compiler.checks import authority_problem, path_problem
from loom.controlplane.compiler.context import Compilation
from loom.controlplane.compiler.inputs import VirtualServiceEntry
from loom.controlplane.compiler.names import MESH_GATEWAY, labels_match, resolve_host
from loom.controlplane.compiler.retries import retry_policy
from loom.controlplane.compiler.route_parts import (
    Dropped,
    check_header_names,
    header_ops,
    merge_header_ops,
    relative_weights,
    string_match,
)
from loom.snapshot.model import (
    DirectResponse,
    Fault,
    FaultAbort,
    FaultDelay,
    HeaderMatch,
    HeaderOps,
    Mirror,
    Redirect,
    Rewrite,
    Route,
    RouteAction,
    RouteMatch,
    StringMatch,
    WeightedCluster,
)

PROXY_SCHEME = "http"
"""What ``scheme`` matches are decided against: apps talk plain HTTP to their sidecar."""


def virtual_service_routes(comp: Compilation, entry: VirtualServiceEntry, port: int) -> list[Route]:
    routes = []
    for i, rule in enumerate(entry.spec.http):
        route = _rule(comp, entry.resource, rule, f"spec.http[{i}]", port, i)
        if route is not None:
            routes.append(route)
    return routes


def _rule(
    comp: Compilation, resource: Resource, rule: HTTPRoute, path: str, port: int, index: int
) -> Route | None:
    warnings = comp.warnings
    if rule.delegate is not None:
        warnings.add(
            "delegate VirtualServices are not supported; this rule is skipped", resource, f"{path}.delegate"
        )
        return None
    matches = _matches(comp, resource, rule.match, path, port)
    if matches is None:
        return None
    if rule.cors_policy is not None:
        warnings.add("corsPolicy is not supported; ignored", resource, f"{path}.corsPolicy")
    request_headers, response_headers = _headers(rule.headers, resource, f"{path}.headers", comp)
    common = {
        # Unnamed rules are named like HTTPRoute rules (``<namespace>.<name>.<rule index>``), so an
        # access log line or ``loom explain`` can point at the rule.
        "name": rule.name or f"{resource.namespace}.{resource.name}.{index}",
        "matches": matches,
        "fault": _fault(comp, resource, rule, f"{path}.fault"),
    }
    if rule.redirect is not None:
        return Route(
            redirect=_redirect(comp, resource, rule, f"{path}.redirect"),
            request_headers=request_headers,
            response_headers=response_headers,
            **common,
        )
    if rule.direct_response is not None:
        return Route(
            direct_response=_direct_response(comp, resource, rule, f"{path}.directResponse"),
            request_headers=request_headers,
            response_headers=response_headers,
            **common,
        )
    destinations = []
    for j, rd in enumerate(rule.route):
        cluster = _cluster(comp, resource, rd.destination, port, f"{path}.route[{j}].destination")
        destinations.append(WeightedCluster(cluster=cluster, weight=rd.weight or 0))
    weights = relative_weights([d.weight for d in destinations], resource, f"{path}.route", comp.warnings)
    destinations = [
        WeightedCluster(cluster=d.cluster, weight=w) for d, w in zip(destinations, weights, strict=True)
    ]
    with_headers = [j for j, rd in enumerate(rule.route) if rd.headers is not None]
    if len(rule.route) == 1 and with_headers:
        own_request, own_response = _headers(
            rule.route[0].headers, resource, f"{path}.route[0].headers", comp
        )
        request_headers = merge_header_ops(request_headers, own_request)
        response_headers = merge_header_ops(response_headers, own_response)
    elif with_headers:
        warnings.add(
            "headers on one destination of a split are not supported; move them to the rule's `headers`",
            resource,
            f"{path}.route[{with_headers[0]}].headers",
        )
    action = RouteAction(
        destinations=destinations,
        timeout=rule.timeout if rule.timeout else None,
        retry=retry_policy(rule.retries, resource, f"{path}.retries", warnings)
        if rule.retries is not None
        else None,
        rewrite=_rewrite(comp, resource, rule, f"{path}.rewrite"),
        mirror=_mirror(comp, resource, rule, path, port),
    )
    return Route(route=action, request_headers=request_headers, response_headers=response_headers, **common)


def _cluster(comp: Compilation, resource: Resource, dest: Destination, port: int, path: str) -> str:
    known = comp.inputs.services_by_host
    host = resolve_host(dest.host, resource.namespace, comp.inputs.mesh.cluster_domain, known)
    number = dest.port.number if dest.port is not None else None
    return comp.cluster(host, number, dest.subset, fallback_port=port, resource=resource, path=path)


# --- matches ----------------------------------------------------------------------------------


def _matches(
    comp: Compilation, resource: Resource, given: tuple[HTTPMatchRequest, ...], path: str, port: int
) -> list[RouteMatch] | None:
    """The RouteMatches that can hold for this proxy: [] matches everything, None nothing."""
    if not given:
        return []
    found = []
    for k, m in enumerate(given):
        try:
            rm = _match(comp, resource, m, f"{path}.match[{k}]", port)
        except Dropped:
            continue
        if rm is not None:
            found.append(rm)
    return found or None


def _match(
    comp: Compilation, resource: Resource, m: HTTPMatchRequest, path: str, port: int
) -> RouteMatch | None:
    if m.gateways and MESH_GATEWAY not in m.gateways:
        return None
    if m.source_labels and not labels_match(m.source_labels, comp.labels):
        return None
    if m.source_namespace is not None and m.source_namespace != comp.namespace:
        return None
    if m.port is not None and m.port != port:
        return None
    if m.scheme is not None and not _holds(m.scheme, PROXY_SCHEME, resource, f"{path}.scheme", comp):
        return None
    warnings = comp.warnings
    headers = {name: _header(sm, resource, f"{path}.headers.{name}", comp) for name, sm in m.headers.items()}
    without = {
        name: _header(sm, resource, f"{path}.withoutHeaders.{name}", comp)
        for name, sm in m.without_headers.items()
    }
    for name in (*headers, *without):
        if name.startswith(":"):
            warnings.add(
                f"matching the pseudo-header {name!r} is not supported; this match is dropped", resource, path
            )
            raise Dropped
    check_header_names((*headers, *without), resource, path, warnings)
    query = {}
    for name, sm in m.query_params.items():
        value = _string(sm, resource, f"{path}.queryParams.{name}", comp)
        query[name] = value if value is not None else StringMatch(regex=".*")
    return RouteMatch(
        path=_string(m.uri, resource, f"{path}.uri", comp),
        ignore_uri_case=bool(m.ignore_uri_case),
        method=_string(m.method, resource, f"{path}.method", comp),
        authority=_string(m.authority, resource, f"{path}.authority", comp),
        headers=headers,
        without_headers=without,
        query_params=query,
    )


def _string(
    sm: IstioStringMatch | None, resource: Resource, path: str, comp: Compilation
) -> StringMatch | None:
    if sm is None:
        return None
    return string_match(sm.exact, sm.prefix, sm.regex, resource, path, comp.warnings)


def _header(sm: IstioStringMatch, resource: Resource, path: str, comp: Compilation) -> HeaderMatch:
    value = _string(sm, resource, path, comp)
    if value is None:
        return HeaderMatch()
    return HeaderMatch(exact=value.exact, prefix=value.prefix, regex=value.regex)


def _holds(sm: IstioStringMatch, value: str, resource: Resource, path: str, comp: Compilation) -> bool:
    if sm.exact is not None:
        return sm.exact == value
    if sm.prefix is not None:
        return value.startswith(sm.prefix)
    if sm.regex is not None:
        string_match(
            None, None, sm.regex, resource, path, comp.warnings
        )  # raises Dropped if the proxy would refuse it
        return re.fullmatch(sm.regex, value) is not None
    return True


# --- actions ----------------------------------------------------------------------------------


def _headers(
    given: Headers | None, resource: Resource, path: str, comp: Compilation
) -> tuple[HeaderOps | None, HeaderOps | None]:
    if given is None:
        return None, None

    def ops(found: HeaderOperations | None, where: str) -> HeaderOps | None:
        if found is None:
            return None
        return header_ops(found.set, found.add, found.remove, resource, where, comp.warnings)

    return ops(given.request, f"{path}.request"), ops(given.response, f"{path}.response")


def _rewrite(comp: Compilation, resource: Resource, rule: HTTPRoute, path: str) -> Rewrite | None:
    rw = rule.rewrite
    if rw is None:
        return None
    if rw.uri_regex_rewrite is not None:
        comp.warnings.add(
            "uriRegexRewrite is not supported; the path is not rewritten", resource, f"{path}.uriRegexRewrite"
        )
    uri = _checked(rw.uri, path_problem, resource, f"{path}.uri", comp)
    authority = _checked(rw.authority, authority_problem, resource, f"{path}.authority", comp)
    if uri is None and authority is None:
        return None
    return Rewrite(uri_prefix=uri, authority=authority)


def _checked(
    value: str | None, check: Callable[[str], str | None], resource: Resource, path: str, comp: Compilation
) -> str | None:
    if value is None or value == "":
        return None
    problem = check(value)
    if problem is not None:
        comp.warnings.add(f"{problem}; ignored", resource, path)
        return None
    return value


def _mirror(comp: Compilation, resource: Resource, rule: HTTPRoute, path: str, port: int) -> Mirror | None:
    if rule.mirror is not None:
        percentage = defaults.MIRROR_PERCENTAGE
        if rule.mirror_percentage is not None:
            percentage = rule.mirror_percentage.value or 0.0
        elif rule.mirror_percent is not None:
            percentage = float(rule.mirror_percent)
        cluster = _cluster(comp, resource, rule.mirror, port, f"{path}.mirror")
        return Mirror(cluster=cluster, percentage=percentage)
    if rule.mirrors:
        if len(rule.mirrors) > 1:
            comp.warnings.add(
                "only the first mirror is supported; the others are dropped", resource, f"{path}.mirrors[1]"
            )
        first = rule.mirrors[0]
        percentage = defaults.MIRROR_PERCENTAGE
        if first.percentage is not None:
            percentage = first.percentage.value or 0.0
        cluster = _cluster(comp, resource, first.destination, port, f"{path}.mirrors[0].destination")
        return Mirror(cluster=cluster, percentage=percentage)
    return None


def _fault(comp: Compilation, resource: Resource, rule: HTTPRoute, path: str) -> Fault | None:
    fault = rule.fault
    if fault is None:
        return None
    warnings = comp.warnings
    delay = abort = None
    if fault.delay is not None:
        d = fault.delay
        if d.fixed_delay is None:
            warnings.add("only fixedDelay is supported; this delay is dropped", resource, f"{path}.delay")
        else:
            percentage = _fault_percentage(
                d.percentage, d.percent, resource, f"{path}.delay", comp, "delayed"
            )
            delay = FaultDelay(fixed=d.fixed_delay, percentage=percentage)
    if fault.abort is not None:
        a = fault.abort
        if a.http_status is None:
            warnings.add(
                "only httpStatus aborts are supported; this abort is dropped", resource, f"{path}.abort"
            )
        elif a.http_status < 200:
            warnings.add(
                f"abort status {a.http_status} is not a final status (200-599); dropped",
                resource,
                f"{path}.abort.httpStatus",
            )
        else:
            percentage = _fault_percentage(a.percentage, None, resource, f"{path}.abort", comp, "aborted")
            abort = FaultAbort(http_status=a.http_status, percentage=percentage)
    if delay is None and abort is None:
        return None
    return Fault(delay=delay, abort=abort)


def _fault_percentage(
    percentage: Percent | None,
    percent: int | None,
    resource: Resource,
    path: str,
    comp: Compilation,
    what: str,
) -> float:
    if percentage is not None:
        return float(percentage.value or 0.0)
    if percent is not None:
        return float(percent)
    comp.warnings.add(
        f"no percentage is set, so no request is {what} (Istio's rule); set `percentage: {{value: 100}}` "
        "to affect every request",
        resource,
        path,
    )
    return 0.0


def _redirect(comp: Compilation, resource: Resource, rule: HTTPRoute, path: str) -> Redirect:
    rd = rule.redirect
    assert rd is not None
    scheme = rd.scheme.lower() if rd.scheme else None
    if scheme is not None and scheme not in ("http", "https"):
        comp.warnings.add(
            f"redirect scheme {rd.scheme!r} is not http or https; ignored", resource, f"{path}.scheme"
        )
        scheme = None
    port = rd.port
    if rd.derive_port == "FROM_PROTOCOL_DEFAULT":
        port = 443 if scheme == "https" else 80
    return Redirect(
        uri=_checked(rd.uri, path_problem, resource, f"{path}.uri", comp),
        authority=_checked(rd.authority, authority_problem, resource, f"{path}.authority", comp),
        scheme=scheme,
        port=port,
        code=rd.redirect_code or defaults.REDIRECT_CODE,
    )


def _direct_response(comp: Compilation, resource: Resource, rule: HTTPRoute, path: str) -> DirectResponse:
    dr = rule.direct_response
    assert dr is not None
    body = ""
    if dr.body is not None:
        if dr.body.string is not None:
            body = dr.body.string
        elif dr.body.bytes is not None:
            try:
                body = base64.b64decode(dr.body.bytes, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                comp.warnings.add(
                    "only UTF-8 text bodies are supported (base64 of UTF-8); the body is left empty",
                    resource,
                    f"{path}.body.bytes",
                )
    return DirectResponse(status=dr.status, body=body)
