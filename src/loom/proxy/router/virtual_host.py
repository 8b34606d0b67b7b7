"""A virtual host's routes in order: the first whose match holds wins."""

from __future__ import annotations

from loom.proxy.codec.head import RequestHead
from loom.proxy.router.match import CompiledMatch, parse_query
from loom.proxy.router.route import CompiledRoute


class VirtualHostRoutes:
    __slots__ = ("entries", "name", "port")

    def __init__(
        self,
        name: str,
        entries: tuple[tuple[CompiledMatch | None, CompiledRoute], ...],
        port: int | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.entries = entries
        """(match, route) per RouteMatch, in configuration order; a None match matches everything."""

    def match(self, head: RequestHead, port: int | None) -> CompiledRoute | None:
        """The route for ``head`` arriving for service port ``port``, or None (a 404)."""
        query: dict[bytes, bytes] | None = None
        for m, route in self.entries:
            if m is None:
                return route
            if m.needs_query and query is None:
                # Parsed once per request, and only when a route that needs it is reached.
                query = parse_query(head.query)
            if m.matches(head, port, query):
                return route
        return None

    def __repr__(self) -> str:
        return f"<VirtualHostRoutes {self.name!r} entries={len(self.entries)}>"
