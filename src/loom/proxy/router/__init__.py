"""The sidecar's HTTP router: a snapshot RouteConfig compiled into fast matchers.

``compile_route_config`` runs once per snapshot load and returns a RouteTable. Per request the
proxy calls ``table.find(head.authority, head.port)`` for the virtual host, then
``vhost.match(head, port)`` for the CompiledRoute, whose methods and attributes carry the
actions (cluster pick, timeout, retries, mirror, fault, header operations, rewrite, redirect,
direct response). Nothing here does I/O.

Rewrite design: a path rewrite replaces what the matching RouteMatch matched, so the router
compiles one CompiledRoute per RouteMatch (sharing all other action objects) and each carries
its own rewrite. ``match`` returns that route and no per-request state is needed;
``route.apply_rewrite(head)`` or ``route.rewrite_path(path)`` then does the right thing.
"""

from loom.proxy.router.compile import compile_route_config
from loom.proxy.router.errors import RouteCompileError
from loom.proxy.router.fault import CompiledFault
from loom.proxy.router.header_ops import CompiledHeaderOps
from loom.proxy.router.hosts import RouteTable
from loom.proxy.router.match import parse_query
from loom.proxy.router.redirect import CompiledRedirect
from loom.proxy.router.retry_policy import CompiledRetryPolicy
from loom.proxy.router.rewrite import CompiledRewrite
from loom.proxy.router.route import DIRECT, REDIRECT, ROUTE, CompiledRoute, RouteKind
from loom.proxy.router.virtual_host import VirtualHostRoutes

__all__ = [
    "DIRECT",
    "REDIRECT",
    "ROUTE",
    "CompiledFault",
    "CompiledHeaderOps",
    "CompiledRedirect",
    "CompiledRetryPolicy",
    "CompiledRewrite",
    "CompiledRoute",
    "RouteCompileError",
    "RouteKind",
    "RouteTable",
    "VirtualHostRoutes",
    "compile_route_config",
    "parse_query",
]
