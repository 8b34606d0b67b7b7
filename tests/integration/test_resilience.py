"""Resilience under load: a killed backend, a failing backend and the retry budget,
snapshot reloads and SIGTERM — all with real processes and real clients."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import aiohttp

from tests.support.load import run_load
from tests.support.proxy import BackendProcess, wait_until
from tests.support.snapshots import cluster, route_to, sidecar


async def test_backend_killed_mid_load_keeps_success_above_99_9(tmp_path: Path, proxy) -> None:
    survivor = await BackendProcess(tmp_path, "a").start()
    victim = await BackendProcess(tmp_path, "b").start()
    try:
        outlier = {
            "consecutive_5xx": 3,
            "interval": "1s",
            "base_ejection_time": "30s",
            "max_ejection_percent": 50,
        }
        doc = sidecar(
            [
                route_to(
                    ("catalog", 1), retry={"attempts": 2, "retry_on": ["5xx", "reset", "connect-failure"]}
                )
            ],
            [cluster("catalog", [survivor.port, victim.port], outlier_detection=outlier)],
        )
        sidecar_proxy = await proxy(doc)
        load = asyncio.create_task(run_load(sidecar_proxy.url("/"), 3000, concurrency=16))

        async def mid_load() -> bool:
            clusters = await sidecar_proxy.admin_json("/clusters")
            return clusters[0]["stats"]["requests"] >= 800

        await wait_until(mid_load, 30, "load to be under way")
        victim.kill()
        result = await load

        assert result.total == 3000
        assert result.ok / result.total >= 0.999, (result.statuses, result.errors[:5])
        assert result.bodies["b"] > 0  # the victim did serve before it died
        clusters = await sidecar_proxy.admin_json("/clusters")
        assert clusters[0]["ejected"] == [f"127.0.0.1:{victim.port}"]
    finally:
        survivor.kill()
        victim.kill()


async def test_retry_budget_bounds_load_on_a_failing_backend(backend, proxy) -> None:
    broken = await backend("broken")
    broken.force_status = 503
    budget = {"percent": 20, "min_retries_per_second": 10, "window": "2s"}
    doc = sidecar(
        [route_to(("catalog", 1), retry={"attempts": 3, "retry_on": ["5xx"], "backoff_base": "1ms"})],
        [cluster("catalog", [broken.port], retry_budget=budget)],
    )
    sidecar_proxy = await proxy(doc)

    # The budget's reserve (min_retries_per_second x window) is spent once: run for several windows.
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(5.0, stop.set)
    started = time.monotonic()
    result = await run_load(sidecar_proxy.url("/"), 50_000, concurrency=8, stop=stop)
    elapsed = time.monotonic() - started

    client_requests = result.total
    assert result.statuses == {503: client_requests}
    # Without a budget, attempts=3 would send 4x the client's requests.
    assert broken.requests > client_requests, "retries did happen"
    # 20% of requests plus 10 retries/s, plus the one-off reserve of 10/s over one 2 s window.
    bound = 1.2 * client_requests + 10 * (elapsed + 2)
    assert broken.requests <= bound, (broken.requests, client_requests, elapsed)
    clusters = await sidecar_proxy.admin_json("/clusters")
    assert clusters[0]["stats"]["retry_budget_exhausted"] > 0


async def test_snapshot_reload_under_load_fails_no_request(backend, proxy) -> None:
    v1, v2 = await backend("v1"), await backend("v2")
    clusters = [cluster("catalog-v1", [v1.port]), cluster("catalog-v2", [v2.port], "v2")]

    def weights(v1_weight: int, version: int) -> dict:
        return sidecar(
            [route_to(("catalog-v1", v1_weight), ("catalog-v2", 100 - v1_weight))],
            clusters,
            version=str(version),
        )

    sidecar_proxy = await proxy(weights(100, 1))
    load = asyncio.create_task(run_load(sidecar_proxy.url("/"), 4000, concurrency=16))
    for version, v1_weight in enumerate((50, 0, 100, 10), start=2):
        served_before = 600 * (version - 1)
        await wait_until(lambda: v1.requests + v2.requests >= served_before, 30, "traffic between reloads")  # noqa: B023
        await sidecar_proxy.reload(weights(v1_weight, version))
    result = await load

    assert result.statuses == {200: 4000}, (result.statuses, result.errors[:5])
    assert result.bodies["v1"] > 0 and result.bodies["v2"] > 0


async def test_sigterm_under_load_fails_no_request_in_flight(backend, proxy) -> None:
    app = await backend("app")
    doc = sidecar([route_to(("catalog", 1))], [cluster("catalog", [app.port])])
    sidecar_proxy = await proxy(doc)
    started_before_term: list[tuple[float, int | str]] = []
    term_at = 0.0
    stop = asyncio.Event()

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as session:

        async def worker() -> None:
            while not stop.is_set():
                sent = time.monotonic()
                try:
                    async with session.get(sidecar_proxy.url("/delay/0.2")) as response:
                        await response.read()
                        outcome: int | str = response.status
                except aiohttp.ClientError as exc:
                    outcome = repr(exc)
                if term_at == 0.0 or sent < term_at:
                    started_before_term.append((sent, outcome))
                if term_at:
                    return

        workers = [asyncio.create_task(worker()) for _ in range(16)]
        await wait_until(lambda: app.requests >= 50, 30, "load to be under way")
        term_at = time.monotonic()
        os.kill(sidecar_proxy.pid, signal.SIGTERM)
        await asyncio.gather(*workers)
        stop.set()

    in_flight = [outcome for sent, outcome in started_before_term if sent < term_at]
    assert len(in_flight) >= 50
    assert all(outcome == 200 for outcome in in_flight), [o for o in in_flight if o != 200]
    assert await sidecar_proxy.wait_exit() == 0
