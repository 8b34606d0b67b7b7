"""Authorization policies on a real proxy's inbound listeners (HTTP and TCP), run from a snapshot file.

Principal-based rules need mutual TLS between two proxies; they are covered with stand-in
connections in tests/unit/authz. Here the caller is a plaintext client on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.prom import total
from tests.support.proxy import ProxyProcess, wait_until
from tests.support.rawhttp import RawConnection
from tests.support.snapshots import Doc, cluster, endpoint, route_to, sidecar
from tests.support.tcp_echo import FAREWELL, EchoServer

DENIED = b"RBAC: access denied"


def inbound(app_port: int, policies: list[dict[str, Any]], *, version: str = "1", echo_port: int = 0) -> Doc:
    """An inbound HTTP listener in front of the app, and an inbound TCP one in front of ``echo_port``."""
    doc = sidecar([route_to(("app", 1))], [cluster("app", [app_port])], direction="inbound", version=version)
    if echo_port:
        doc["listeners"].append(
            {
                "name": "inbound-tcp",
                "direction": "inbound",
                "protocol": "tcp",
                "port": 0,
                "tcp": {"destinations": [{"cluster": "echo"}]},
            }
        )
        doc["clusters"].append(
            {
                "name": "echo",
                "service": "echo.default.svc.cluster.local",
                "protocol": "tcp",
                "endpoints": [endpoint(echo_port, "v1", app="echo")],
            }
        )
    doc["security"] = {"authorization": policies}
    return doc


def allow(name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "action": "ALLOW", "rules": list(rules)}


def deny(name: str, *rules: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "action": "DENY", "rules": list(rules)}


async def call(
    proxy: ProxyProcess, path: str = "/", method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, proxy.url(path, "inbound"), headers=headers) as response,
    ):
        return response.status, await response.read()


async def test_paths_methods_and_headers(backend, proxy) -> None:
    app = await backend("app")
    policies = [
        allow(
            "shop/api-readers",
            {
                "operations": [{"methods": ["GET", "HEAD"], "paths": ["/api/*", "/items/{*}/reviews"]}],
                "conditions": [{"key": "request.headers[x-tenant]", "values": ["acme", "beta-*"]}],
            },
        ),
        allow("shop/health", {"operations": [{"paths": ["/healthz"]}]}),
        deny("shop/no-admin", {"operations": [{"paths": ["/api/admin", "/api/admin/*"]}]}),
    ]
    sidecar_proxy = await proxy(inbound(app.port, policies))
    tenant = {"x-tenant": "acme"}

    assert await call(sidecar_proxy, "/api/books", headers=tenant) == (200, b"app")
    assert (await call(sidecar_proxy, "/items/7/reviews", headers={"x-tenant": "beta-2"}))[0] == 200
    assert (await call(sidecar_proxy, "/healthz", "POST"))[0] == 200
    served = app.requests

    assert await call(sidecar_proxy, "/api/books") == (403, DENIED)  # no tenant header
    assert await call(sidecar_proxy, "/api/books", headers={"x-tenant": "other"}) == (403, DENIED)
    assert await call(sidecar_proxy, "/api/books", "POST", headers=tenant) == (403, DENIED)
    assert await call(sidecar_proxy, "/items/7/8/reviews", headers=tenant) == (403, DENIED)
    assert await call(sidecar_proxy, "/api/admin", headers=tenant) == (403, DENIED)
    assert await call(sidecar_proxy, "/other", headers=tenant) == (403, DENIED)
    # Checked as normalized, though sent as written (a client library would tidy the path first).
    conn = await RawConnection.open(sidecar_proxy.port("inbound"))
    try:
        await conn.send(b"GET /api/x/../admin/users HTTP/1.1\r\nHost: web\r\nx-tenant: acme\r\n\r\n")
        raw = await conn.read_response()
        assert (raw.status, raw.body) == (403, DENIED)
    finally:
        await conn.close()
    assert app.requests == served, "a denied request reached the app"

    metrics = await sidecar_proxy.metrics()
    assert total(metrics, "istio_requests_total", response_code="403", response_flags="-") == 7


async def test_a_denied_request_keeps_the_connection(backend, proxy) -> None:
    app = await backend("app")
    sidecar_proxy = await proxy(
        inbound(app.port, [deny("shop/no-delete", {"operations": [{"methods": ["DELETE"]}]})])
    )
    conn = await RawConnection.open(sidecar_proxy.port("inbound"))
    try:
        await conn.send(b"DELETE /x HTTP/1.1\r\nHost: web\r\n\r\nGET /x HTTP/1.1\r\nHost: web\r\n\r\n")
        denied = await conn.read_response()
        assert (denied.status, denied.body) == (403, DENIED)
        assert denied.header("content-type") == "text/plain"
        assert (await conn.read_response()).status == 200
    finally:
        await conn.close()


async def test_deny_comes_before_allow_all(backend, proxy) -> None:
    app = await backend("app")
    policies = [allow("shop/allow-all", {}), deny("shop/no-admin", {"operations": [{"paths": ["/admin*"]}]})]
    sidecar_proxy = await proxy(inbound(app.port, policies))

    assert (await call(sidecar_proxy, "/anything", "PUT"))[0] == 200
    assert await call(sidecar_proxy, "/admin/users") == (403, DENIED)


async def test_deny_all_then_allow_all_then_nothing(backend, proxy) -> None:
    app = await backend("app")
    sidecar_proxy = await proxy(inbound(app.port, [allow("shop/deny-all")]))  # spec: {}

    for path in ("/", "/api", "/healthz"):
        assert await call(sidecar_proxy, path) == (403, DENIED)
    assert app.requests == 0

    await sidecar_proxy.reload(
        inbound(app.port, [allow("shop/deny-all"), allow("shop/allow-all", {})], version="2")
    )
    assert (await call(sidecar_proxy, "/api"))[0] == 200

    await sidecar_proxy.reload(inbound(app.port, [], version="3"))
    assert (await call(sidecar_proxy, "/api"))[0] == 200


async def test_the_access_log_says_which_policy_denied_or_audited(backend, proxy, tmp_path: Path) -> None:
    app = await backend("app")
    log_path = tmp_path / "access.log"
    policies = [
        {"name": "shop/audit-admin", "action": "AUDIT", "rules": [{"operations": [{"paths": ["/admin*"]}]}]},
        deny("shop/no-delete", {"operations": [{"methods": ["DELETE"]}]}),
        allow("shop/reads", {"operations": [{"methods": ["GET", "DELETE"]}]}),
    ]
    doc = inbound(app.port, policies)
    doc["telemetry"] = {"access_log": {"path": str(log_path), "encoding": "JSON"}}
    sidecar_proxy = await proxy(doc)

    sent = [("GET", "/items"), ("GET", "/admin/users"), ("DELETE", "/admin/users"), ("POST", "/items")]
    assert [(await call(sidecar_proxy, path, method))[0] for method, path in sent] == [200, 200, 403, 403]

    def lines() -> list[str]:
        return log_path.read_text().splitlines() if log_path.exists() else []

    await wait_until(lambda: len(lines()) >= 4, 5.0, "four access log lines")
    entries = [json.loads(line) for line in lines()]
    logged = [
        (e["method"], e["path"], e["response_code"], e["response_flags"], e["response_code_details"])
        for e in entries
    ]
    assert logged == [
        ("GET", "/items", 200, "-", None),
        ("GET", "/admin/users", 200, "-", None),
        ("DELETE", "/admin/users", 403, "-", "rbac_access_denied_matched_policy[shop/no-delete]"),
        ("POST", "/items", 403, "-", "rbac_access_denied_matched_policy[none]"),
    ]
    assert [e.get("audit_policy") for e in entries] == [None, "shop/audit-admin", "shop/audit-admin", None]
    assert "audit_policy" not in entries[0]


async def test_ip_blocks_and_remote_ip_blocks(backend, proxy) -> None:
    app = await backend("app")
    policies = [
        allow("shop/local-callers", {"sources": [{"ip_blocks": ["127.0.0.0/8"]}]}),
        deny("shop/blocked-clients", {"sources": [{"remote_ip_blocks": ["203.0.113.0/24"]}]}),
    ]
    sidecar_proxy = await proxy(inbound(app.port, policies))

    assert (await call(sidecar_proxy, "/"))[0] == 200
    assert (await call(sidecar_proxy, "/", headers={"x-forwarded-for": "198.51.100.1"}))[0] == 200
    assert await call(sidecar_proxy, "/", headers={"x-forwarded-for": "203.0.113.9, 10.0.0.1"}) == (
        403,
        DENIED,
    )

    elsewhere = [allow("shop/pod-network", {"sources": [{"ip_blocks": ["10.0.0.0/8"]}]})]
    await sidecar_proxy.reload(inbound(app.port, elsewhere, version="2"))
    assert await call(sidecar_proxy, "/") == (403, DENIED)


@pytest.fixture
async def echo_server():
    server = await EchoServer().start()
    yield server
    await server.stop()


async def tcp_exchange(port: int, payload: bytes) -> bytes | None:
    """Send ``payload`` and half-close; everything that comes back, or None if the proxy reset the
    connection (or had closed it before the half-close)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
        async with asyncio.timeout(10):
            return await reader.read(-1)
    except OSError:  # reset, broken pipe, or ENOTCONN for the half-close of a closed socket
        return None
    finally:
        writer.close()


async def test_a_denied_tcp_connection_is_closed_before_it_reaches_the_app(
    backend, proxy, echo_server
) -> None:
    app = await backend("app")
    # The only ALLOW rule names a method: it can never match a TCP connection (Istio's rule), so the
    # TCP listener refuses everything while HTTP GETs pass.
    http_only = allow("shop/reads", {"operations": [{"methods": ["GET"]}]})
    sidecar_proxy = await proxy(inbound(app.port, [http_only], echo_port=echo_server.port))
    tcp_port = sidecar_proxy.port("inbound-tcp")

    assert (await call(sidecar_proxy, "/"))[0] == 200
    assert await tcp_exchange(tcp_port, b"ping") in (b"", None)
    await asyncio.sleep(0.2)
    assert echo_server.connections == 0, "a denied connection reached the app"

    local = allow("shop/local", {"sources": [{"ip_blocks": ["127.0.0.1"]}]})
    await sidecar_proxy.reload(inbound(app.port, [http_only, local], version="2", echo_port=echo_server.port))
    assert await tcp_exchange(tcp_port, b"ping") == b"ping" + FAREWELL

    no_local = deny(
        "shop/no-local", {"sources": [{"ip_blocks": ["127.0.0.0/8"]}], "operations": [{"paths": ["/x"]}]}
    )
    await sidecar_proxy.reload(inbound(app.port, [local, no_local], version="3", echo_port=echo_server.port))
    # A DENY rule is evaluated without its HTTP-only fields on TCP: it denies every local connection.
    assert await tcp_exchange(tcp_port, b"ping") in (b"", None)
    assert (await call(sidecar_proxy, "/y"))[0] == 200
    assert await call(sidecar_proxy, "/x") == (403, DENIED)


async def test_policies_the_proxy_cannot_use_are_refused(backend, proxy) -> None:
    app = await backend("app")
    sidecar_proxy = await proxy(inbound(app.port, [allow("shop/allow-all", {})]))

    bad = inbound(app.port, [allow("shop/bad", {"sources": [{"ip_blocks": ["not-an-ip"]}]})], version="2")
    sidecar_proxy.write(bad)
    os.kill(sidecar_proxy.pid, signal.SIGHUP)

    async def refused() -> bool:
        dump = await sidecar_proxy.admin_json("/config_dump")
        return "security.authorization[0].rules[0].sources[0].ip_blocks[0]" in (
            dump["last_reload_error"] or ""
        )

    await wait_until(refused, 10.0, "the snapshot with an unusable policy to be refused")
    assert await sidecar_proxy.version() == "1"
    assert (await call(sidecar_proxy, "/"))[0] == 200
