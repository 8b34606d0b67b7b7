"""The dashboard's HTTP server: plain HTTP on 127.0.0.1 only, like an admin endpoint.

GET /                  the UI (static/index.html); /static/... its scripts and styles
GET /api/v1/<path>     forwarded to the control plane's ``GET /v1/<path>`` (``forward.py``)
GET /api/config        the resources that apply to each Service (``config_view.py``)

Anything but GET (or HEAD) is refused with 405: the dashboard only reads. A request whose
``Host`` is not this loopback address is refused with 403, so a web page cannot reach the
dashboard through a DNS name rebound to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from loom.dashboard.config_view import config_view
from loom.dashboard.forward import ApiError, Forwarder, json_error

log = logging.getLogger("loom.dashboard")

ADDRESS = "127.0.0.1"
STATIC = Path(__file__).parent / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
READ_METHODS = ("GET", "HEAD")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Dashboard:
    def __init__(self, forwarder: Forwarder) -> None:
        self.forwarder = forwarder
        self.allowed_hosts: frozenset[str] = frozenset()
        """``Host`` values accepted (set once the port is bound); empty: any."""

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/", self.index)
        app.router.add_static("/static/", STATIC, append_version=False)
        app.router.add_get("/api/config", self.config)
        app.router.add_route("*", "/api/v1/{tail:.*}", self.forwarder.forward)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.allowed_hosts and request.host.lower() not in self.allowed_hosts:
            return json_error(403, f"the dashboard answers as {ADDRESS} only, not as {request.host!r}")
        if request.method not in READ_METHODS:
            response = json_error(405, "the dashboard only reads: GET")
            response.headers["Allow"] = "GET, HEAD"
            return response
        response = await handler(request)
        if not response.prepared:
            response.headers.update(SECURITY_HEADERS)
        return response

    async def index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def config(self, request: web.Request) -> web.Response:
        try:
            resources, workloads = await asyncio.gather(
                self.forwarder.get_json("resources", {"documents": "1"}),
                self.forwarder.get_json("workloads"),
            )
        except ApiError as exc:
            return json_error(exc.status if exc.status >= 400 else 502, str(exc))
        return web.json_response(config_view(resources, workloads), headers={"Cache-Control": "no-store"})


@dataclass
class RunningDashboard:
    runner: web.AppRunner
    forwarder: Forwarder
    port: int

    @property
    def url(self) -> str:
        return f"http://{ADDRESS}:{self.port}/"

    async def close(self) -> None:
        await self.runner.cleanup()
        await self.forwarder.close()


def api_host(address: str) -> str:
    """Where the dashboard reaches the API the control plane serves on ``address``."""
    if address in ("", "0.0.0.0", "::"):
        return ADDRESS
    return f"[{address}]" if ":" in address else address


async def start_dashboard(
    api_address: str, api_port: int, state_dir: Path, port: int = 0
) -> RunningDashboard:
    """Serve the dashboard on 127.0.0.1:``port`` (0: any free port) for the control plane's API at
    ``https://<api_address>:<api_port>``, verified and authorized from ``state_dir``."""
    forwarder = Forwarder(f"https://{api_host(api_address)}:{api_port}", state_dir)
    dashboard = Dashboard(forwarder)
    runner = web.AppRunner(dashboard.app(), access_log=None, handle_signals=False, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, ADDRESS, port, reuse_address=True)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        await forwarder.close()
        raise
    bound = int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    dashboard.allowed_hosts = frozenset({f"{ADDRESS}:{bound}", f"localhost:{bound}"})
    log.info("dashboard on http://%s:%d/", ADDRESS, bound)
    return RunningDashboard(runner, forwarder, bound)
