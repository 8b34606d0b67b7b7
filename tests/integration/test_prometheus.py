"""A real Prometheus scraping a Loom mesh: the control plane's ``--prometheus-sd-file`` names every
sidecar's metrics endpoint, Prometheus finds them through ``file_sd_configs`` (the configuration of
``examples/prometheus/prometheus.yml``, with a 1 s scrape), and the two queries users run — the
success rate and the p99 latency per destination service — come out as the traffic sent says.

The queries are evaluated as written, except for their range: ``[5m]`` becomes the time since the
traffic started (in milliseconds). Prometheus's ``rate()`` takes a counter's increase between the
first and the last sample in its window, and extrapolates to the window's edges. A series created
during the test has its first sample inside a ``[5m]`` window: what it had counted by then is not
an increase, and how far its start is extrapolated depends on that first value, so the successes'
and failures' rates would be skewed differently, by a few percent (after five minutes of traffic,
negligibly). So a warm-up batch creates every series first, and once Prometheus has scraped it the
window opens: every series then has a sample near the window's start and one near its end, taken
at the same instants for every series of a sidecar, and ``rate()`` scales them all by the same
factor. All the traffic goes to catalog v1 (a VirtualService), so both reporting sidecars (the
client's and v1's) see the same mix, 8 successes to 2 failures: the success rate is (N-M)/N = 0.8
up to rounding, and the p99 falls in the bucket of the successes' latency (80 % of the requests).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from tests.support.mesh import (
    Mesh,
    config_dir_plane,
    destination_rule,
    free_port,
    running_mesh,
    service,
    virtual_service,
)
from tests.support.proxy import wait_until

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="no `prometheus` binary on PATH (Debian: apt-get install prometheus)",
)

EXAMPLE = Path(__file__).parents[2] / "examples" / "prometheus" / "prometheus.yml"

SUCCESS_RATE = (
    'sum(rate(istio_requests_total{response_code!~"5.*"}[5m])) by (destination_service_name)'
    " / sum(rate(istio_requests_total[5m])) by (destination_service_name)"
)
P99 = (
    "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket[5m]))"
    " by (destination_service_name, le))"
)

BATCHES = 4
OK_PER_BATCH = 8  # GET /delay/0.15: 150 ms, in the histogram's (100, 250] bucket
FAILED_PER_BATCH = 2  # GET /status/500: a few milliseconds (500 is not retried)
DELAY_SECONDS = 0.15
BUCKET = (100.0, 250.0)
SIDECARS = 3  # catalog v1, catalog v2, the client


def prometheus_config(targets: Path) -> dict[str, Any]:
    """The example's configuration, on ``targets``, scraping every second."""
    config = yaml.safe_load(EXAMPLE.read_text())
    config["global"]["scrape_interval"] = "1s"
    config["global"]["evaluation_interval"] = "1s"
    (job,) = config["scrape_configs"]
    (sd,) = job["file_sd_configs"]
    sd["files"] = [str(targets)]
    sd["refresh_interval"] = "1s"
    return config


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    targets = tmp_path / "prometheus" / "targets.json"
    plane = config_dir_plane(
        lambda app_port: yaml.safe_dump_all([service(app_port), destination_rule(), virtual_service(100)]),
        "--prometheus-sd-file",
        str(targets),
    )
    async with running_mesh(tmp_path, plane) as running:
        yield running


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[str]:
    """A Prometheus on a free port, its storage in the test's folder; its URL."""
    assert PROMETHEUS is not None
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(tmp_path / "prometheus" / "targets.json")))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait()
        log.close()


async def query(url: str, promql: str) -> list[dict[str, Any]]:
    """An instant query's result vector ([] while Prometheus is not up yet)."""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{url}/api/v1/query", params={"query": promql}) as response,
        ):
            body = await response.json()
    except aiohttp.ClientError:
        return []
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


async def scalar(url: str, promql: str) -> float | None:
    result = await query(url, promql)
    return float(result[0]["value"][1]) if result else None


async def by_service(url: str, promql: str) -> dict[str, float]:
    """The query's value per ``destination_service_name``."""
    rows = await query(url, promql)
    return {row["metric"]["destination_service_name"]: float(row["value"][1]) for row in rows}


async def wait_scraped(url: str, sent: int, what: str) -> None:
    """Until Prometheus has scraped every request sent: both ends report each one."""
    for reporter in ("source", "destination"):

        async def scraped(reporter: str = reporter) -> bool:
            total = await scalar(url, f'sum(istio_requests_total{{reporter="{reporter}"}})')
            return total == sent

        await wait_until(scraped, 10, f"{what} scraped ({reporter} reporter)", interval=0.2)


async def send_batch(mesh: Mesh) -> None:
    """The batch's requests at once, to the catalog through the client's sidecar."""
    headers = {"Host": "catalog"}
    paths = [f"delay/{DELAY_SECONDS}"] * OK_PER_BATCH + ["status/500"] * FAILED_PER_BATCH
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def get(path: str) -> int:
            async with session.get(mesh.client + path, headers=headers) as response:
                await response.read()
                return response.status

        statuses = await asyncio.gather(*(get(path) for path in paths))
    assert sorted(statuses) == [200] * OK_PER_BATCH + [500] * FAILED_PER_BATCH


async def test_prometheus_finds_every_sidecar_and_the_seed_queries_match_the_traffic(
    mesh: Mesh, prometheus: str, tmp_path: Path
) -> None:
    targets = tmp_path / "prometheus" / "targets.json"

    def listed() -> list[str]:
        if not targets.exists():
            return []
        return sorted(g["labels"]["workload"] for g in json.loads(targets.read_text()))

    await wait_until(lambda: len(listed()) == SIDECARS, 5, "every sidecar in the targets file")
    assert listed() == ["catalog-v1", "catalog-v2", "client"]
    groups = json.loads(targets.read_text())
    assert all(g["labels"]["__metrics_path__"] == "/metrics" for g in groups)

    async def every_target_up() -> bool:
        return await scalar(prometheus, 'count(up{job="loom-sidecars"} == 1)') == SIDECARS

    await wait_until(every_target_up, 20, "Prometheus to scrape every sidecar", interval=0.2)
    labels = {row["metric"]["workload"]: row["metric"] for row in await query(prometheus, "up")}
    assert labels["catalog-v1"]["app"] == "catalog" and labels["catalog-v1"]["version"] == "v1"
    assert labels["client"]["namespace"] == "default"

    await send_batch(mesh)  # the warm-up: every series exists before the window opens
    await wait_scraped(prometheus, OK_PER_BATCH + FAILED_PER_BATCH, "the warm-up")
    window_start = time.time()

    async def every_target_scraped_since() -> bool:
        scraped = f'count(timestamp(up{{job="loom-sidecars"}}) > {window_start})'
        return await scalar(prometheus, scraped) == SIDECARS

    await wait_until(every_target_scraped_since, 10, "a scrape inside the window", interval=0.2)

    for batch in range(1, BATCHES + 1):
        await send_batch(mesh)
        await wait_scraped(prometheus, (batch + 1) * (OK_PER_BATCH + FAILED_PER_BATCH), f"batch {batch}")

    window = f"[{int((time.time() - window_start) * 1000)}ms]"
    rates = await by_service(prometheus, SUCCESS_RATE.replace("[5m]", window))
    assert rates["catalog"] == pytest.approx(OK_PER_BATCH / (OK_PER_BATCH + FAILED_PER_BATCH), abs=0.01)

    p99 = await by_service(prometheus, P99.replace("[5m]", window))
    low, high = BUCKET
    assert low < p99["catalog"] <= high, p99
