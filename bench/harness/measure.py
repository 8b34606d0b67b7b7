"""Measuring the started targets: fixed-rate latency with CPU and RSS, then maximum throughput,
then new TLS connections per second on the inbound side of the TLS pairs.

Rounds are interleaved (round 1 of every target, then round 2 of every target, …) so that a
burst of unrelated activity on the machine spreads over all targets instead of skewing one.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.certs import Certs
from harness.loadgen import HandshakeRun, LatencyRun, ThroughputRun, run_openloop, run_s_time, run_wrk
from harness.processes import BenchError, ResourceSampler, core_ticks, cpu_seconds
from harness.targets import Running

MB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    duration: float
    """Seconds of each wrk run and of each fixed-rate run."""
    repeat: int
    rate: float
    open_connections: int
    wrk_connections: int
    warmup: float
    proxy_cpu: int
    load_cpu: int
    handshake_duration: float
    """Seconds of each new-connection (handshake) run."""


@dataclass(frozen=True)
class LatencySample:
    run: LatencyRun
    proxy_cpu_s: float
    """CPU seconds of all the target's proxies during the run."""
    rss_bytes: list[int]
    """Max RSS of each proxy during the run."""


@dataclass(frozen=True)
class ThroughputSample:
    run: ThroughputRun
    proxy_core_util: float
    """CPU seconds of the proxies per wall second (1.0 = one core busy)."""
    core_busy: float
    """Busy fraction of the proxy core, whoever used it (kernel softirq work included)."""
    load_core_busy: float
    """The same for the core of wrk and nginx."""
    rss_bytes: list[int]


@dataclass(frozen=True)
class HandshakeSample:
    run: HandshakeRun
    proxy_cpu_s: float
    """CPU seconds of the target's proxies during the run (the outbound one has nothing to do)."""
    core_busy: float
    """Busy fraction of the proxy core."""


@dataclass(frozen=True)
class Summary:
    """Medians over the runs (errors are summed)."""

    rps: float
    throughput_errors: int
    proxy_core_util: float | None
    core_busy: float
    load_core_busy: float
    p50_us: float
    p90_us: float
    p99_us: float
    p999_us: float
    max_us: float
    latency_errors: int
    cpu_per_1k: float | None
    """Proxy CPU seconds per 1,000 requests, all proxies together = CPU cores per 1,000 rps."""
    cpu_per_1k_per_proxy: float | None
    rss_mb: float | None
    """The largest proxy's max RSS during the fixed-rate run."""
    rss_peak_mb: float | None
    """The same during the wrk run."""
    handshake_rate: float | None = None
    """New mutual-TLS connections per second from one client (TLS pairs only)."""
    handshake_cpu_ms: float | None = None
    """Proxy CPU milliseconds per new connection."""
    handshake_core_busy: float | None = None


@dataclass
class TargetResult:
    name: str
    label: str
    proxies: int
    latency: list[LatencySample] = field(default_factory=list)
    throughput: list[ThroughputSample] = field(default_factory=list)
    handshakes: list[HandshakeSample] = field(default_factory=list)
    summary: Summary | None = None
    error: str | None = None
    """Why the target was not (fully) measured."""
    handshake_error: str | None = None
    """Why the new-connection runs failed (the other measurements stand)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def summarize(result: TargetResult) -> Summary:
    lat = [s.run for s in result.latency]
    per_1k = [s.proxy_cpu_s / (s.run.completed / 1000) for s in result.latency if s.run.completed]
    proxies = result.proxies
    cpu = _median(per_1k) if proxies and per_1k else None
    shakes = [s for s in result.handshakes if s.run.connections]
    per_connection_ms = [s.proxy_cpu_s * 1000 / s.run.connections for s in shakes]
    return Summary(
        rps=_median([s.run.rps for s in result.throughput]),
        throughput_errors=sum(s.run.errors for s in result.throughput),
        proxy_core_util=_median([s.proxy_core_util for s in result.throughput]) if proxies else None,
        core_busy=_median([s.core_busy for s in result.throughput]),
        load_core_busy=_median([s.load_core_busy for s in result.throughput]),
        p50_us=_median([x.p50_us for x in lat]),
        p90_us=_median([x.p90_us for x in lat]),
        p99_us=_median([x.p99_us for x in lat]),
        p999_us=_median([x.p999_us for x in lat]),
        max_us=_median([x.max_us for x in lat]),
        latency_errors=sum(x.errors + x.timeouts for x in lat),
        cpu_per_1k=cpu,
        cpu_per_1k_per_proxy=cpu / proxies if cpu is not None else None,
        rss_mb=_median([max(s.rss_bytes) / MB for s in result.latency]) if proxies else None,
        rss_peak_mb=_median([max(s.rss_bytes) / MB for s in result.throughput]) if proxies else None,
        handshake_rate=_median([s.run.rate for s in shakes]) if shakes else None,
        handshake_cpu_ms=_median(per_connection_ms) if shakes else None,
        handshake_core_busy=_median([s.core_busy for s in shakes]) if shakes else None,
    )


def _pids(running: Running) -> list[int]:
    return [p.pid for p in running.proxies]


def _check_alive(running: Running) -> None:
    for proxy in running.proxies:
        proxy.check_alive()


def latency_sample(binary: Path, running: Running, settings: Settings) -> LatencySample:
    pids = _pids(running)
    before = cpu_seconds(pids)
    with ResourceSampler(pids) as sampler:
        run = run_openloop(
            binary,
            running.port,
            settings.rate,
            settings.duration,
            settings.open_connections,
            settings.load_cpu,
        )
    used = cpu_seconds(pids) - before
    _check_alive(running)
    return LatencySample(run, used, [sampler.max_rss.get(pid, 0) for pid in pids])


def _busy_since(ticks: list[tuple[int, int]], cores: tuple[int, ...]) -> list[float]:
    """How busy each core was since ``ticks`` were read (0.0 idle … 1.0 saturated)."""
    return [
        (busy1 - busy0) / max(1, total1 - total0)
        for (busy0, total0), (busy1, total1) in zip(ticks, [core_ticks(cpu) for cpu in cores], strict=True)
    ]


def throughput_sample(running: Running, settings: Settings) -> ThroughputSample:
    pids = _pids(running)
    cores = (settings.proxy_cpu, settings.load_cpu)
    before, start, ticks = cpu_seconds(pids), time.monotonic(), [core_ticks(cpu) for cpu in cores]
    with ResourceSampler(pids) as sampler:
        run = run_wrk(running.port, settings.duration, settings.wrk_connections, settings.load_cpu)
    util = (cpu_seconds(pids) - before) / (time.monotonic() - start)
    proxy_core, load_core = _busy_since(ticks, cores)
    _check_alive(running)
    return ThroughputSample(run, util, proxy_core, load_core, [sampler.max_rss.get(pid, 0) for pid in pids])


def handshake_run(port: int, certs: Certs, seconds: float, settings: Settings) -> HandshakeRun:
    """One single-threaded client opening new mutual-TLS connections, on the load core."""
    client = certs.client
    return run_s_time(port, seconds, client.cert, client.key, certs.root, settings.load_cpu)


def handshake_sample(port: int, running: Running, certs: Certs, settings: Settings) -> HandshakeSample:
    """New connections to ``port`` (the inbound proxy's), with the proxies' CPU and the proxy core."""
    pids = _pids(running)
    before, ticks = cpu_seconds(pids), [core_ticks(settings.proxy_cpu)]
    run = handshake_run(port, certs, settings.handshake_duration, settings)
    used = cpu_seconds(pids) - before
    (core,) = _busy_since(ticks, (settings.proxy_cpu,))
    _check_alive(running)
    return HandshakeSample(run, used, core)


Step = Callable[[TargetResult, Running], None]


def measure_all(
    binary: Path,
    live: list[tuple[TargetResult, Running]],
    settings: Settings,
    progress: Callable[[str], None],
    certs: Certs,
) -> None:
    """All fixed-rate runs first, so none follows a saturation, then all the wrk runs, then the
    new-connection runs against the TLS pairs' inbound proxies (``certs``: the client's).

    Each phase starts with an uncounted warm-up at the same load, which opens the proxies'
    upstream connections and lets them settle. A target that fails is marked and skipped.
    """

    def each(step: Step) -> None:
        for result, running in live:
            if result.error is not None:
                continue
            try:
                step(result, running)
            except BenchError as exc:
                result.error = str(exc)

    s = settings

    def warm_latency(_: TargetResult, running: Running) -> None:
        run_openloop(binary, running.port, s.rate, s.warmup, s.open_connections, s.load_cpu)

    def warm_throughput(_: TargetResult, running: Running) -> None:
        run_wrk(running.port, s.warmup, s.wrk_connections, s.load_cpu)

    def latency(result: TargetResult, running: Running) -> None:
        result.latency.append(latency_sample(binary, running, s))

    def throughput(result: TargetResult, running: Running) -> None:
        result.throughput.append(throughput_sample(running, s))

    def new_connections(counted: bool) -> Step:
        """A failure here is the handshake runs' own: the target's other figures stand."""

        def step(result: TargetResult, running: Running) -> None:
            port = running.handshake_port
            if port is None or result.handshake_error is not None:
                return
            try:
                if counted:
                    result.handshakes.append(handshake_sample(port, running, certs, s))
                else:
                    handshake_run(port, certs, s.warmup, s)
            except BenchError as exc:
                result.handshake_error = str(exc)

        return step

    phases: list[tuple[str, Step, Step]] = [
        ("fixed rate", warm_latency, latency),
        ("maximum throughput", warm_throughput, throughput),
    ]
    if any(running.handshake_port is not None for _, running in live):
        phases.append(("new TLS connections", new_connections(False), new_connections(True)))
    for name, warm, step in phases:
        if s.warmup > 0:
            progress(f"{name}: warming up")
            each(warm)
        for i in range(s.repeat):
            progress(f"{name}: round {i + 1}/{s.repeat}")
            each(step)
    for result, _ in live:
        if result.error is None:
            result.summary = summarize(result)
