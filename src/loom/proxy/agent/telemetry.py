"""Pushing the proxy's golden metrics to the control plane.

The admin port is loopback-only (and, in transparent mode, inside the workload's network
namespace), so the control plane cannot scrape it: every few seconds the agent POSTs the
cumulative istio_* series (``telemetry/report.py``), gzip-encoded when large, over its mutual-TLS
connection to ``/v1/telemetry/{namespace}/{workload}``. The answer says when to push next and
whether to tap: ``{"interval": 5.0, "tap": false}``. While tapping, finished requests are
recorded (``telemetry/tap.py``) and sent with the next push.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import zlib
from collections.abc import Callable

from loom.proxy.agent.http import ControlPlaneClient, HttpError
from loom.proxy.telemetry.report import build_report
from loom.proxy.telemetry.standard import IstioMetrics
from loom.proxy.telemetry.tap import TAP, TapRecorder

log = logging.getLogger("loom.proxy.agent")

DEFAULT_INTERVAL = 5.0
MIN_INTERVAL = 0.05
GZIP_ABOVE = 4096
"""Bodies larger than this (bytes of JSON) are sent gzip-encoded."""


def interval_from_env(default: float = DEFAULT_INTERVAL) -> float:
    """``$LOOM_TELEMETRY_INTERVAL`` (seconds), else ``default``."""
    value = os.environ.get("LOOM_TELEMETRY_INTERVAL", "").strip()
    try:
        return max(MIN_INTERVAL, float(value)) if value else default
    except ValueError:
        return default


class TelemetryPusher:
    def __init__(
        self,
        client: ControlPlaneClient,
        namespace: str,
        workload: str,
        metrics: Callable[[], IstioMetrics | None],
        interval: float = DEFAULT_INTERVAL,
        tap: TapRecorder = TAP,
    ) -> None:
        self.client = client
        self.path = f"/v1/telemetry/{namespace}/{workload}"
        self.metrics = metrics
        self.interval = max(MIN_INTERVAL, interval)
        """The most time between two pushes (the control plane may ask for less, e.g. while tapping)."""
        self.tap = tap
        self.start = os.urandom(8).hex()
        self.started = time.time()
        self.pushed = 0

    async def run(self) -> None:
        delay = self.interval
        while True:
            await asyncio.sleep(delay)
            delay = await self.push_once()

    async def push_once(self) -> float:
        """One push; how long to wait before the next."""
        metrics = self.metrics()
        if metrics is None:
            return self.interval
        events = self.tap.take() if self.tap.active else []
        report = build_report(metrics, self.start, self.started, time.time(), events)
        body = json.dumps(report, separators=(",", ":")).encode()
        headers: list[tuple[bytes, bytes]] = []
        if len(body) > GZIP_ABOVE:
            compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            body = compressor.compress(body) + compressor.flush()
            headers.append((b"content-encoding", b"gzip"))
        try:
            status, answer = await self.client.call("POST", self.path, body, headers=headers)
        except HttpError as exc:
            log.debug("telemetry push failed: %s", exc)
            return self.interval
        if status != 200:
            log.debug("telemetry push refused (%s)", status)  # e.g. 404 before registering again
            return self.interval
        self.pushed += 1
        try:
            message = json.loads(answer)
            tap = bool(message.get("tap", False))
            wanted = float(message.get("interval", self.interval))
        except (ValueError, TypeError, AttributeError):
            return self.interval
        self.tap.set_active(tap)
        return max(MIN_INTERVAL, min(self.interval, wanted))
