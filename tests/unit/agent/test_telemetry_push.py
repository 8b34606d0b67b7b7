"""The agent's telemetry push: gzip when large, and the answer sets the next interval and tap."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from loom.controlplane.telemetry.report import decode_body
from loom.proxy.agent.telemetry import TelemetryPusher
from loom.proxy.telemetry import PeerInfo
from loom.proxy.telemetry.standard import IstioMetrics
from loom.proxy.telemetry.tap import TapRecorder


class FakeClient:
    def __init__(self, answer: bytes, status: int = 200) -> None:
        self.answer = answer
        self.status = status
        self.calls: list[tuple[str, str, bytes, list[tuple[bytes, bytes]]]] = []

    async def call(
        self, method: str, path: str, body: bytes = b"", timeout: float = 10.0,
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> tuple[int, bytes]:  # fmt: skip
        self.calls.append((method, path, body, list(headers)))
        return self.status, self.answer


def busy_metrics(workloads: int) -> IstioMetrics:
    metrics = IstioMetrics()
    for i in range(workloads):
        series = metrics.request_series(
            reporter="source",
            source=PeerInfo(workload="client", namespace="default"),
            destination=PeerInfo(workload=f"catalog-{i}", namespace="default"),
            destination_service=f"catalog-{i}.default.svc.cluster.local",
        )
        metrics.record_request(series, 200, "-", 3.0, 0, 10)
    return metrics


def test_a_large_report_is_gzipped_and_the_answer_turns_tap_on() -> None:
    client = FakeClient(b'{"interval": 0.5, "tap": true}')
    tap = TapRecorder()
    metrics = busy_metrics(40)
    pusher = TelemetryPusher(client, "default", "client", lambda: metrics, interval=5.0, tap=tap)  # type: ignore[arg-type]
    delay = asyncio.run(pusher.push_once())
    assert delay == 0.5 and tap.active
    method, path, body, headers = client.calls[0]
    assert (method, path) == ("POST", "/v1/telemetry/default/client")
    assert (b"content-encoding", b"gzip") in headers
    report = json.loads(decode_body(body))
    assert len(report["requests"]) == 40 and report["start"] == pusher.start


def test_a_refused_push_keeps_the_own_interval_and_a_small_report_is_plain() -> None:
    client = FakeClient(b"{}", status=404)
    tap = TapRecorder()
    metrics = busy_metrics(1)
    pusher = TelemetryPusher(client, "default", "client", lambda: metrics, interval=2.0, tap=tap)  # type: ignore[arg-type]
    assert asyncio.run(pusher.push_once()) == 2.0
    assert not tap.active
    assert client.calls[0][3] == []
    assert json.loads(client.calls[0][2])["v"] == 1
