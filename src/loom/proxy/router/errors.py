"""The error a route configuration raises when it cannot be compiled."""

from __future__ import annotations


class RouteCompileError(ValueError):
    """A route configuration the schema accepted but the router cannot use.

    ``field_path`` names the offending field inside the route configuration, e.g.
    ``virtual_hosts[0].routes[2].matches[0].path.regex``, so a NACK can point at it.
    """

    def __init__(self, field_path: str, message: str, *, route_config: str = "") -> None:
        self.field_path = field_path
        self.message = message
        self.route_config = route_config
        where = f"route config {route_config!r}: {field_path}" if route_config else field_path
        super().__init__(f"{where}: {message}")
