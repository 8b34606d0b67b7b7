"""Gateway API HTTPRoutes attached to a Service (GAMMA) → the routes of one service port's virtual host.

Every (rule, match) of every attached route becomes a route, ordered by the Gateway API's precedence
(as Istio orders them): Exact paths, then PathPrefix by length, then RegularExpression; then a
method match; then more header matches; then more query matches; ties keep source order, then rule
and match order. A rule without matches matches ``PathPrefix /``.

- ``PathPrefix /foo`` matches ``/foo`` and ``/foo/...`` but not ``/foobar`` (path elements): it
  becomes an exact ``/foo`` match and a prefix ``/foo/`` match.
- Headers (names case-insensitive) and query parameters: ``Exact`` (default) or
  ``RegularExpression``; ``method``: exact.
- Filters: RequestHeaderModifier, ResponseHeaderModifier, RequestRedirect (scheme, hostname, port,
  path, statusCode — 302 by default; without a port, the scheme's port), URLRewrite (hostname, path
  ReplaceFullPath / ReplacePrefixMatch), RequestMirror (the first one; ``percent`` or
  ``fraction``). ExtensionRef, CORS and per-backend filters are dropped with a warning.
- ``backendRefs``: Services of the route's namespace (a reference to another namespace would
  need a ReferenceGrant, which Loom does not read: dropped with a warning), ``port`` required
  (unless the service has one port), ``weight`` default 1. No usable backend, or all weights 0:
  the route answers 500, as the Gateway API requires.
- ``timeouts.request`` → the route timeout; ``timeouts.backendRequest`` → the per-try timeout;
  ``retry`` (attempts, codes, backoff) → the retry policy. Without ``retry`` the route sets none and
  the destination cluster's default applies.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from loom.api import Resource, defaults
from loom.api.resources.gateway import (
    HTTPHeaderFilter,
    HTTPPathMatch,
    HTTPPathModifier,
    HTTPRequestMirrorFilter,
    HTTPRouteMatch,
    HTTPRouteRule,
)
from loom.controlplane.compiler.checks import authority_problem, path_problem
from loom.controlplane.compiler.context import Compilation
from loom.controlplane.compiler.inputs import RouteAttachment
from loom.controlplane.compiler.names import service_fqdn
from loom.controlplane.compiler.retries import default_retry_policy
from loom.controlplane.compiler.route_parts import (
    Dropped,
    check_header_names,
    header_ops,
    merge_header_ops,
    string_match,
)
from loom.snapshot.durations import Duration
from loom.snapshot.model import (
    DirectResponse,
    HeaderMatch,
    HeaderOps,
    Mirror,
    Redirect,
    RetryPolicy,
    Rewrite,
    Route,
    RouteAction,
    RouteMatch,
    StringMatch,
    WeightedCluster,
)

_RANK = {"Exact": 3, "PathPrefix": 2, "RegularExpression": 1}
_DEFAULT_MATCH = HTTPRouteMatch(path=HTTPPathMatch(type="PathPrefix", value="/"))
_RETRY_ON_CODES = ("connect-failure", "refused-stream", "unavailable", "cancelled")


@dataclass(frozen=True, slots=True)
class _PathMatch:
    match: RouteMatch
    kind: str
    """``exact`` (a whole path), ``prefix`` (``/foo/`` of PathPrefix /foo), ``root`` (PathPrefix /),
    ``regex``."""
    prefix: str = ""


@dataclass(frozen=True, slots=True)
class _Rule:
    """What a rule does, whatever its match: the parts every one of its routes shares."""

    name: str
    request_headers: HeaderOps | None
    response_headers: HeaderOps | None
    redirect: Redirect | None
    redirect_path: HTTPPathModifier | None
    rewrite_authority: str | None
    rewrite_path: HTTPPathModifier | None
    destinations: tuple[WeightedCluster, ...]
    mirror: Mirror | None
    timeout: Duration | None
    retry: RetryPolicy | None


def gateway_routes(comp: Compilation, attachments: Sequence[RouteAttachment], port: int) -> list[Route]:
    entries = []
    for a, attachment in enumerate(attachments):
        resource = attachment.resource
        for i, rule in enumerate(attachment.spec.rules):
            path = f"spec.rules[{i}]"
            parts = _rule(comp, resource, rule, i, port)
            for k, m in enumerate(rule.matches or (_DEFAULT_MATCH,)):
                entries.append((_precedence(m), a, i, k, resource, parts, m, f"{path}.matches[{k}]"))
    entries.sort(key=lambda e: e[:4])
    routes: list[Route] = []
    for *_, resource, parts, m, path in entries:
        try:
            routes.extend(_routes(comp, resource, parts, m, path))
        except Dropped:
            continue
    return routes


def _precedence(m: HTTPRouteMatch) -> tuple[int, int, bool, int, int]:
    p = m.path or _DEFAULT_MATCH.path
    assert p is not None
    kind = p.type or defaults.PATH_MATCH_TYPE
    value = p.value if p.value is not None else defaults.PATH_MATCH_VALUE
    if kind == "PathPrefix":
        value = value.rstrip("/") or "/"  # a trailing / is ignored
    return (-_RANK[kind], -len(value), m.method is None, -len(m.headers), -len(m.query_params))


# --- one rule ---------------------------------------------------------------------------------


def _rule(comp: Compilation, resource: Resource, rule: HTTPRouteRule, index: int, port: int) -> _Rule:
    warnings = comp.warnings
    path = f"spec.rules[{index}]"
    request_headers = response_headers = None
    redirect: Redirect | None = None
    redirect_path = rewrite_path = None
    rewrite_authority: str | None = None
    mirror: Mirror | None = None
    for f, flt in enumerate(rule.filters):
        where = f"{path}.filters[{f}]"
        if flt.request_header_modifier is not None:
            ops = _header_filter(
                flt.request_header_modifier, resource, f"{where}.requestHeaderModifier", comp
            )
            request_headers = merge_header_ops(request_headers, ops)
        elif flt.response_header_modifier is not None:
            ops = _header_filter(
                flt.response_header_modifier, resource, f"{where}.responseHeaderModifier", comp
            )
            response_headers = merge_header_ops(response_headers, ops)
        elif flt.request_redirect is not None:
            rd = flt.request_redirect
            hostname = rd.hostname
            if hostname is not None and authority_problem(hostname) is not None:
                warnings.add(
                    f"{authority_problem(hostname)}; ignored", resource, f"{where}.requestRedirect.hostname"
                )
                hostname = None
            port_ = rd.port
            if port_ is None and rd.scheme is not None:
                port_ = 443 if rd.scheme == "https" else 80
            redirect = Redirect(
                authority=hostname,
                scheme=rd.scheme,
                port=port_,
                code=rd.status_code or defaults.REQUEST_REDIRECT_STATUS_CODE,
            )
            redirect_path = rd.path
        elif flt.url_rewrite is not None:
            rw = flt.url_rewrite
            if rw.hostname is not None:
                problem = authority_problem(rw.hostname)
                if problem is not None:
                    warnings.add(f"{problem}; ignored", resource, f"{where}.urlRewrite.hostname")
                else:
                    rewrite_authority = rw.hostname
            rewrite_path = rw.path
        elif flt.request_mirror is not None:
            if mirror is not None:
                warnings.add(
                    "only the first RequestMirror is supported; this one is dropped", resource, where
                )
                continue
            mirror = _mirror(comp, resource, flt.request_mirror, f"{where}.requestMirror", port)
        else:
            warnings.add(f"the {flt.type} filter is not supported; ignored", resource, where)
    if rule.session_persistence is not None:
        warnings.add("sessionPersistence is not supported; ignored", resource, f"{path}.sessionPersistence")
    destinations = () if redirect is not None else _backends(comp, resource, rule, path, port)
    timeout = None
    per_try = None
    if rule.timeouts is not None:
        timeout = rule.timeouts.request or None
        per_try = rule.timeouts.backend_request or None
    return _Rule(
        name=rule.name or f"{resource.namespace}.{resource.name}.{index}",
        request_headers=request_headers,
        response_headers=response_headers,
        redirect=redirect,
        redirect_path=redirect_path,
        rewrite_authority=rewrite_authority,
        rewrite_path=rewrite_path,
        destinations=tuple(destinations),
        mirror=mirror,
        timeout=timeout,
        retry=_retry(rule, per_try),
    )


def _retry(rule: HTTPRouteRule, per_try: Duration | None) -> RetryPolicy | None:
    retry = rule.retry
    if retry is None:
        return default_retry_policy(per_try) if per_try is not None else None
    attempts = retry.attempts if retry.attempts is not None else defaults.RETRY_ATTEMPTS
    if attempts <= 0:
        return RetryPolicy(attempts=0)
    retry_on = [*_RETRY_ON_CODES, *(str(code) for code in retry.codes)] if retry.codes else None
    values: dict[str, object] = {"attempts": attempts, "per_try_timeout": per_try}
    if retry_on is not None:
        values["retry_on"] = retry_on
    if retry.backoff:
        values["backoff_base"] = retry.backoff
        values["backoff_max"] = Duration(float(retry.backoff) * 10)
    return RetryPolicy(**values)  # type: ignore[arg-type]


def _header_filter(
    flt: HTTPHeaderFilter, resource: Resource, path: str, comp: Compilation
) -> HeaderOps | None:
    return header_ops(
        {h.name: h.value for h in flt.set},
        {h.name: h.value for h in flt.add},
        flt.remove,
        resource,
        path,
        comp.warnings,
    )


def _backend_port(comp: Compilation, fqdn: str, port: int | None) -> int | None:
    if port is not None:
        return port
    service = comp.service(fqdn)
    if service is not None and len(service.ports) == 1:
        return service.ports[0].number
    return None


def _service_ref(
    comp: Compilation,
    resource: Resource,
    group: str | None,
    kind: str | None,
    name: str,
    namespace: str | None,
    port: int | None,
    path: str,
) -> tuple[str, int] | None:
    """The (FQDN, port) a backend reference names, or None (reported) when it cannot be used."""
    if (kind or defaults.BACKEND_REF_KIND) != "Service" or (group or "") not in ("", "core"):
        comp.warnings.add(
            f"only Service backends are supported, not {kind} ({group}); dropped", resource, path
        )
        return None
    if namespace is not None and namespace != resource.namespace:
        comp.warnings.add(
            f"a backend in another namespace ({namespace}) needs a ReferenceGrant, which Loom does not "
            "read; dropped",
            resource,
            path,
        )
        return None
    fqdn = service_fqdn(name, resource.namespace, comp.inputs.mesh.cluster_domain)
    number = _backend_port(comp, fqdn, port)
    if number is None:
        comp.warnings.add("a Service backend needs a `port`; dropped", resource, path)
        return None
    return fqdn, number


def _backends(
    comp: Compilation, resource: Resource, rule: HTTPRouteRule, path: str, port: int
) -> list[WeightedCluster]:
    destinations = []
    for j, ref in enumerate(rule.backend_refs):
        where = f"{path}.backendRefs[{j}]"
        found = _service_ref(comp, resource, ref.group, ref.kind, ref.name, ref.namespace, ref.port, where)
        if found is None:
            continue
        if ref.filters:
            comp.warnings.add(
                "filters on one backend are not supported; ignored", resource, f"{where}.filters"
            )
        fqdn, number = found
        cluster = comp.cluster(fqdn, number, None, fallback_port=port, resource=resource, path=where)
        weight = ref.weight if ref.weight is not None else defaults.BACKEND_REF_WEIGHT
        destinations.append(WeightedCluster(cluster=cluster, weight=weight))
    return destinations


def _mirror(
    comp: Compilation, resource: Resource, flt: HTTPRequestMirrorFilter, path: str, port: int
) -> Mirror | None:
    ref = flt.backend_ref
    found = _service_ref(
        comp, resource, ref.group, ref.kind, ref.name, ref.namespace, ref.port, f"{path}.backendRef"
    )
    if found is None:
        return None
    percentage = 100.0
    if flt.percent is not None:
        percentage = float(flt.percent)
    elif flt.fraction is not None:
        denominator = flt.fraction.denominator or defaults.MIRROR_FRACTION_DENOMINATOR
        percentage = 100.0 * flt.fraction.numerator / denominator
    fqdn, number = found
    cluster = comp.cluster(
        fqdn, number, None, fallback_port=port, resource=resource, path=f"{path}.backendRef"
    )
    return Mirror(cluster=cluster, percentage=percentage)


# --- one match --------------------------------------------------------------------------------


def _routes(comp: Compilation, resource: Resource, rule: _Rule, m: HTTPRouteMatch, path: str) -> list[Route]:
    paths = _path_matches(comp, resource, m, path)
    modifies_path = rule.redirect_path is not None or rule.rewrite_path is not None
    groups = [[p] for p in paths] if modifies_path else [paths]
    routes = []
    for group in groups:
        matches = [p.match for p in group]
        common = {
            "name": rule.name,
            "request_headers": rule.request_headers,
            "response_headers": rule.response_headers,
        }
        if rule.redirect is not None:
            redirect = rule.redirect
            if rule.redirect_path is not None:
                uri = _redirect_path(comp, resource, rule.redirect_path, group[0], path)
                if uri is not None:
                    redirect = Redirect(
                        uri=uri,
                        authority=redirect.authority,
                        scheme=redirect.scheme,
                        port=redirect.port,
                        code=redirect.code,
                    )
            routes.append(Route(matches=matches, redirect=redirect, **common))
            continue
        if not rule.destinations or sum(d.weight for d in rule.destinations) <= 0:
            routes.append(Route(matches=matches, direct_response=DirectResponse(status=500), **common))
            continue
        rewrite = None
        if rule.rewrite_path is not None or rule.rewrite_authority is not None:
            uri = None
            if rule.rewrite_path is not None:
                matches, uri = _rewrite_path(comp, resource, rule.rewrite_path, group[0], path)
            if uri is not None or rule.rewrite_authority is not None:
                rewrite = Rewrite(uri_prefix=uri, authority=rule.rewrite_authority)
        action = RouteAction(
            destinations=list(rule.destinations),
            timeout=rule.timeout,
            retry=rule.retry,
            rewrite=rewrite,
            mirror=rule.mirror,
        )
        routes.append(Route(matches=matches, route=action, **common))
    return routes


def _path_matches(comp: Compilation, resource: Resource, m: HTTPRouteMatch, path: str) -> list[_PathMatch]:
    warnings = comp.warnings
    headers: dict[str, HeaderMatch] = {}
    for h, header in enumerate(m.headers):
        name = header.name.lower()
        if name in headers:
            continue  # the Gateway API: the first match of a name counts
        sm = _typed(header.type, header.value, resource, f"{path}.headers[{h}]", comp)
        headers[name] = HeaderMatch(exact=sm.exact, regex=sm.regex)
    check_header_names(headers, resource, path, warnings)
    query: dict[str, StringMatch] = {}
    for q, param in enumerate(m.query_params):
        if param.name not in query:
            query[param.name] = _typed(param.type, param.value, resource, f"{path}.queryParams[{q}]", comp)
    method = StringMatch(exact=m.method) if m.method is not None else None
    p = m.path or _DEFAULT_MATCH.path
    assert p is not None
    kind = p.type or defaults.PATH_MATCH_TYPE
    value = p.value if p.value is not None else defaults.PATH_MATCH_VALUE

    def make(sm: StringMatch) -> RouteMatch:
        return RouteMatch(path=sm, method=method, headers=headers, query_params=query)

    if kind == "Exact":
        return [_PathMatch(make(StringMatch(exact=value)), "exact")]
    if kind == "RegularExpression":
        sm = string_match(None, None, value, resource, f"{path}.path.value", warnings)
        assert sm is not None
        return [_PathMatch(make(sm), "regex")]
    trimmed = value.rstrip("/")
    if not trimmed:
        return [_PathMatch(make(StringMatch(prefix="/")), "root", "/")]
    return [
        _PathMatch(make(StringMatch(exact=trimmed)), "exact"),
        _PathMatch(make(StringMatch(prefix=f"{trimmed}/")), "prefix", f"{trimmed}/"),
    ]


def _typed(kind: str | None, value: str, resource: Resource, path: str, comp: Compilation) -> StringMatch:
    if kind == "RegularExpression":
        sm = string_match(None, None, value, resource, f"{path}.value", comp.warnings)
        assert sm is not None
        return sm
    return StringMatch(exact=value)


def _checked_path(comp: Compilation, resource: Resource, value: str, path: str) -> str | None:
    problem = path_problem(value)
    if problem is not None:
        comp.warnings.add(f"{problem}; ignored", resource, path)
        return None
    return value


def _rewrite_path(
    comp: Compilation, resource: Resource, modifier: HTTPPathModifier, match: _PathMatch, path: str
) -> tuple[list[RouteMatch], str | None]:
    """The matches to use and the snapshot's ``uri_prefix`` for a URLRewrite path modifier."""
    where = path.rsplit(".matches", 1)[0] + ".filters"
    if modifier.type == "ReplaceFullPath":
        full = _checked_path(comp, resource, modifier.replace_full_path or "/", where)
        if full is None or match.kind in ("exact", "regex"):
            return [match.match], full
        # A prefix rewrite would replace only the prefix: match the same paths by a regex instead,
        # for which the snapshot replaces the whole path.
        regex = StringMatch(regex=re.escape(match.prefix) + ".*")
        rm = match.match
        replaced = RouteMatch(path=regex, method=rm.method, headers=rm.headers, query_params=rm.query_params)
        return [replaced], full
    replacement = modifier.replace_prefix_match or "/"
    if match.kind == "regex":
        comp.warnings.add(
            "ReplacePrefixMatch needs a PathPrefix match; the path is not rewritten", resource, where
        )
        return [match.match], None
    if match.kind == "exact":
        return [match.match], _checked_path(comp, resource, replacement, where)
    return [match.match], _checked_path(comp, resource, replacement.rstrip("/") + "/", where)


def _redirect_path(
    comp: Compilation, resource: Resource, modifier: HTTPPathModifier, match: _PathMatch, path: str
) -> str | None:
    where = path.rsplit(".matches", 1)[0] + ".filters"
    if modifier.type == "ReplaceFullPath":
        return _checked_path(comp, resource, modifier.replace_full_path or "/", where)
    if match.kind == "exact":
        return _checked_path(comp, resource, modifier.replace_prefix_match or "/", where)
    comp.warnings.add(
        "a redirect with ReplacePrefixMatch under a path prefix is not supported; the path is kept",
        resource,
        where,
    )
    return None
