"""Weighted splits and header routing through a real proxy to real backends."""

from __future__ import annotations

from tests.support.load import run_load
from tests.support.snapshots import cluster, route_to, sidecar


async def test_ninety_ten_split_within_three_points(backend, proxy) -> None:
    v1, v2 = await backend("v1"), await backend("v2")
    doc = sidecar(
        [route_to(("catalog-v1", 90), ("catalog-v2", 10))],
        [cluster("catalog-v1", [v1.port]), cluster("catalog-v2", [v2.port], "v2")],
    )
    sidecar_proxy = await proxy(doc)

    result = await run_load(sidecar_proxy.url("/books"), 2000, concurrency=16)

    assert result.ok == 2000, result
    assert abs(result.share("v2") - 0.10) <= 0.03, result.bodies
    assert v1.requests + v2.requests == 2000


async def test_header_match_routes_to_v2(backend, proxy) -> None:
    v1, v2 = await backend("v1"), await backend("v2")
    canary = {
        "matches": [{"headers": {"x-version": {"exact": "canary"}}}],
        **route_to(("catalog-v2", 1)),
    }
    doc = sidecar(
        [canary, route_to(("catalog-v1", 1))],
        [cluster("catalog-v1", [v1.port]), cluster("catalog-v2", [v2.port], "v2")],
    )
    sidecar_proxy = await proxy(doc)

    tagged = await run_load(sidecar_proxy.url("/"), 200, headers={"x-version": "canary"})
    plain = await run_load(sidecar_proxy.url("/"), 200, headers={"x-version": "stable"})

    assert tagged.bodies == {"v2": 200}
    assert plain.bodies == {"v1": 200}
