"""Compiling a snapshot RouteConfig into a RouteTable, once per snapshot load.

Regexes, header names, weights, percentages and host lookups are all prepared here; a
configuration that cannot be prepared raises RouteCompileError naming the field, so the
snapshot can be NACKed while the previous one keeps serving.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial

from loom.proxy.router.authority import split_authority
from loom.proxy.router.errors import RouteCompileError
from loom.proxy.router.fault import compile_fault
from loom.proxy.router.header_ops import compile_header_ops, compile_header_value
from loom.proxy.router.hosts import HostIndexBuilder, RouteTable
from loom.proxy.router.match import CompiledMatch, compile_route_match, source_labels_hold
from loom.proxy.router.redirect import CompiledRedirect
from loom.proxy.router.retry_policy import compile_retry_policy
from loom.proxy.router.rewrite import CompiledRewrite
from loom.proxy.router.route import DIRECT, REDIRECT, ROUTE, CompiledRoute, WeightedClusters
from loom.proxy.router.virtual_host import VirtualHostRoutes
from loom.snapshot.model import Node, Redirect, Rewrite, Route, RouteConfig


def compile_route_config(rc: RouteConfig, node: Node, *, rng: random.Random | None = None) -> RouteTable:
    """Compile ``rc`` for the proxy of ``node``. ``rng`` seeds every random choice (tests)."""
    rand = rng.random if rng is not None else random.random
    try:
        builder = HostIndexBuilder(node.namespace, node.cluster_domain)
        virtual_hosts = []
        for i, vhost in enumerate(rc.virtual_hosts):
            field_path = f"virtual_hosts[{i}]"
            entries: list[tuple[CompiledMatch | None, CompiledRoute]] = []
            for j, route in enumerate(vhost.routes):
                entries.extend(_compile_route(route, node, f"{field_path}.routes[{j}]", rand))
            compiled = VirtualHostRoutes(vhost.name, tuple(entries), vhost.port)
            builder.add(compiled, vhost.domains, vhost.port, field_path)
            virtual_hosts.append(compiled)
        return builder.build(rc.name, tuple(virtual_hosts))
    except RouteCompileError as exc:
        raise RouteCompileError(exc.field_path, exc.message, route_config=rc.name) from None


def _compile_route(
    route: Route, node: Node, field_path: str, rand: Callable[[], float]
) -> list[tuple[CompiledMatch | None, CompiledRoute]]:
    """One (match, CompiledRoute) per RouteMatch that can hold for this node; none if none can."""
    matches: list[tuple[CompiledMatch | None, int | None]] = []
    if not route.matches:
        matches.append((None, 1))
    for k, rm in enumerate(route.matches):
        # Compiled even when dropped, so every proxy given this config rejects the same errors.
        compiled = compile_route_match(rm, f"{field_path}.matches[{k}]")
        if not source_labels_hold(rm, node.labels):
            continue
        matches.append((None if compiled.is_catch_all else compiled, compiled.rewrite_prefix_len))

    make = partial(
        CompiledRoute,
        name=route.name,
        fault=compile_fault(route.fault, rand),
        request_headers=compile_header_ops(route.request_headers, f"{field_path}.request_headers"),
        response_headers=compile_header_ops(route.response_headers, f"{field_path}.response_headers"),
        rand=rand,
    )
    if route.redirect is not None:
        one = make(kind=REDIRECT, redirect=_compile_redirect(route.redirect, f"{field_path}.redirect"))
        return [(m, one) for m, _ in matches]
    if route.direct_response is not None:
        dr = route.direct_response
        one = make(kind=DIRECT, direct_response=(dr.status, dr.body.encode()))
        return [(m, one) for m, _ in matches]

    action = route.route
    assert action is not None  # the schema requires exactly one action
    ap = f"{field_path}.route"
    destinations = WeightedClusters([(d.cluster, d.weight) for d in action.destinations])
    retry = compile_retry_policy(action.retry, rand)
    mirror = action.mirror
    rewrite = _compile_rewrite(action.rewrite, f"{ap}.rewrite")
    rewrites_path = rewrite is not None and rewrite.uri is not None
    by_prefix: dict[int | None, CompiledRoute] = {}
    entries = []
    for m, prefix_len in matches:
        # The per-match routes differ only in how much of the path a rewrite replaces.
        key = prefix_len if rewrites_path else 0
        compiled = by_prefix.get(key)
        if compiled is None:
            compiled = make(
                kind=ROUTE,
                destinations=destinations,
                timeout=action.timeout,
                retry=retry,
                rewrite=rewrite.for_prefix_len(prefix_len) if rewrite is not None else None,
                mirror_cluster=mirror.cluster if mirror is not None else None,
                mirror_fraction=mirror.percentage / 100.0 if mirror is not None else 0.0,
            )
            by_prefix[key] = compiled
        entries.append((m, compiled))
    return entries


def _compile_rewrite(rw: Rewrite | None, field_path: str) -> CompiledRewrite | None:
    if rw is None or (rw.uri_prefix is None and rw.authority is None):
        return None
    uri = None
    if rw.uri_prefix is not None:
        uri = _compile_path(rw.uri_prefix, f"{field_path}.uri_prefix")
    host = host_port = None
    if rw.authority is not None:
        host, host_port = split_authority(rw.authority, f"{field_path}.authority")
    return CompiledRewrite(uri=uri, host=host, host_port=host_port)


def _compile_redirect(rd: Redirect, field_path: str) -> CompiledRedirect:
    scheme = None
    if rd.scheme is not None:
        scheme = rd.scheme.lower().encode()
        if scheme not in (b"http", b"https"):
            raise RouteCompileError(f"{field_path}.scheme", f"{rd.scheme!r}: use http or https")
    host = host_port = None
    if rd.authority is not None:
        host, host_port = split_authority(rd.authority, f"{field_path}.authority")
    if rd.port is not None and not 0 < rd.port < 65536:
        raise RouteCompileError(f"{field_path}.port", f"port {rd.port} is out of range (1-65535)")
    uri = None
    if rd.uri is not None:
        uri = _compile_path(rd.uri, f"{field_path}.uri")
    return CompiledRedirect(
        code=rd.code, scheme=scheme, host=host, host_port=host_port, port=rd.port, uri=uri
    )


def _compile_path(value: str, field_path: str) -> bytes:
    raw = compile_header_value(value, field_path)
    if not raw.startswith(b"/") or b" " in raw or b"\t" in raw:
        raise RouteCompileError(field_path, f"{value!r} must be a path starting with / and without spaces")
    return raw
