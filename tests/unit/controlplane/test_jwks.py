"""``JwksCache`` against a real JWKS endpoint on 127.0.0.1: fetching, refreshing, keeping the last good
copy, failing with a reason, and the push engine recompiling when keys arrive."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import MappingProxyType

import pytest
from aiohttp import web

from loom.api import load_text
from loom.controlplane.compiler import compile_snapshot
from loom.controlplane.compiler.request_authentication import NO_KEYS
from loom.controlplane.jwks import JwksCache
from loom.controlplane.push import PushEngine
from loom.controlplane.registry import WorkloadRegistry
from loom.controlplane.workloads import SidecarPorts, Workload
from tests.support.jwt import SigningKey
from tests.support.proxy import wait_until

KEYS = SigningKey.rsa("first").jwks_text()
ROTATED = SigningKey.rsa("second").jwks_text()


@dataclass
class Idp:
    """An identity provider's JWKS endpoint whose answer the test changes."""

    body: str = KEYS
    status: int = 200
    delay: float = 0.0
    hits: int = 0
    port: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.Response(status=self.status, text=self.body, content_type="application/json")

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"


@pytest.fixture
async def idp() -> AsyncIterator[Idp]:
    server = Idp()
    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", server.handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield server
    await runner.cleanup()


@pytest.fixture
async def cache() -> AsyncIterator[JwksCache]:
    jwks = JwksCache(refresh=0.05, retry=0.02)
    yield jwks
    await jwks.close()


async def test_fetch_then_refresh_and_rotation(idp: Idp, cache: JwksCache) -> None:
    changes: list[str] = []
    cache.on_change = lambda: changes.append(cache.documents[idp.uri])
    cache.want({idp.uri: 1.0})
    await wait_until(lambda: changes, 5, "the first fetch")
    assert cache.documents == {idp.uri: KEYS} and cache.errors == {}
    hits = idp.hits
    await wait_until(lambda: idp.hits >= hits + 2, 5, "refreshes")
    assert changes == [KEYS], "an unchanged key set makes no recompile"
    idp.body = ROTATED
    await wait_until(lambda: len(changes) == 2, 5, "the rotated keys")
    assert changes[-1] == ROTATED


async def test_a_failed_refresh_keeps_the_last_good_copy(idp: Idp, cache: JwksCache) -> None:
    cache.want({idp.uri: 1.0})
    await wait_until(lambda: idp.uri in cache.documents, 5, "the first fetch")
    idp.status = 503
    await wait_until(lambda: idp.uri in cache.errors, 5, "a failed refresh")
    assert cache.errors[idp.uri] == "HTTP 503" and cache.documents[idp.uri] == KEYS
    idp.status = 200
    await wait_until(lambda: idp.uri not in cache.errors, 5, "a good refresh again")


@pytest.mark.parametrize(
    ("status", "body", "delay", "reason"),
    [
        (404, "{}", 0.0, "HTTP 404"),
        (200, "<html>", 0.0, "the answer is not JSON"),
        (200, '{"kty": "RSA"}', 0.0, "the answer is not a JSON Web Key Set"),
        (200, KEYS, 1.0, "no answer within 0.2s"),
    ],
)
async def test_a_fetch_that_fails_says_why(
    idp: Idp, cache: JwksCache, status: int, body: str, delay: float, reason: str
) -> None:
    idp.status, idp.body, idp.delay = status, body, delay
    cache.want({idp.uri: 0.2})
    await wait_until(lambda: idp.uri in cache.errors, 5, "the failure")
    assert cache.errors[idp.uri].startswith(reason) and idp.uri not in cache.documents


async def test_an_unreachable_uri(cache: JwksCache) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    uri = f"http://127.0.0.1:{port}/jwks"
    cache.want({uri: 1.0})
    await wait_until(lambda: uri in cache.errors, 5, "the failure")
    assert cache.errors[uri]


async def test_a_uri_no_longer_named_is_forgotten(idp: Idp, cache: JwksCache) -> None:
    cache.want({idp.uri: 1.0})
    await wait_until(lambda: idp.uri in cache.documents, 5, "the first fetch")
    cache.want({})
    assert cache.documents == {} and cache._tasks == {}
    hits = idp.hits
    await asyncio.sleep(0.15)
    assert idp.hits == hits, "no more fetches"


def _policy(uri: str) -> list:
    text = json.dumps(
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "RequestAuthentication",
            "metadata": {"name": "idp", "namespace": "default"},
            "spec": {"jwtRules": [{"issuer": "https://idp.example", "jwksUri": uri}]},
        }
    )
    result = load_text(text, "ra.yaml")
    assert result.ok
    return list(result.resources)


async def test_new_keys_make_the_push_engine_recompile(idp: Idp) -> None:
    registry = WorkloadRegistry()
    registry.register(
        Workload(
            name="orders",
            namespace="default",
            service_account="orders",
            labels=MappingProxyType({"app": "orders"}),
            address="127.0.0.2",
            app_ports=(9080,),
            sidecar=SidecarPorts(outbound=15001, inbound=MappingProxyType({9080: 15006})),
        )
    )
    compiled: list[tuple[str, list[str]]] = []

    def compile_and_keep(*args: object, **kwargs: object) -> object:
        result = compile_snapshot(*args, **kwargs)  # type: ignore[arg-type]
        compiled.append((result.snapshot.security.jwt_rules[0].jwks, [str(w) for w in result.warnings]))
        return result

    idp.delay = 0.3  # the first compile comes before the keys
    jwks = JwksCache(refresh=60, retry=60)
    push = PushEngine(registry, warmup=0, debounce=0.01, compile_fn=compile_and_keep, jwks=jwks)
    try:
        push.set_resources(_policy(idp.uri))
        await wait_until(lambda: compiled, 5, "the first compile")
        keys, warnings = compiled[0]
        assert keys == NO_KEYS
        assert any(idp.uri in w and "not fetched yet" in w for w in warnings)
        await wait_until(lambda: compiled[-1][0] == KEYS, 5, "a recompile with the fetched keys")
        assert not [w for w in compiled[-1][1] if idp.uri in w]
        assert idp.hits == 1
    finally:
        await jwks.close()
