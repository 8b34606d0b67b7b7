"""What telemetry costs the proxy: CPU per 1,000 requests at a fixed open-loop rate, with Istio's
metrics and tracing at 1 % (spans exported to a local OTLP collector), against telemetry off; and
what a dead collector costs requests: latency with every request traced (100 %) to a collector
that answers, against one that accepts connections and never answers.

    python bench/telemetry_bench.py [--rate 1000] [--duration 10] [--repeat 3]

One outbound Loom proxy in front of nginx, pinned to its own core; openloop (bench/loadgen) sends a
fixed rate through it. Each mode runs ``--repeat`` times, alternating, and the medians are
compared. Also prints the proxy's RSS in each mode and with Zipkin export (which imports no
protobuf). The whole run is bounded: about ``4 × repeat × (duration + 3)`` seconds plus starts.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from harness import loom, nginx
from harness.loadgen import build_openloop, run_openloop
from harness.processes import BenchError, cpu_seconds, free_port, pin_self, rss_bytes, service, wait_http

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out"
GOAL = 0.15


class _Collector(BaseHTTPRequestHandler):
    posts = 0
    received = 0

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        type(self).posts += 1
        type(self).received += length
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def collector() -> Iterator[int]:
    """An HTTP server that takes every POST (the spans) and answers 200."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()


@contextlib.contextmanager
def dead_collector() -> Iterator[int]:
    """A port that takes connections into its backlog and never answers: the worst collector."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def telemetry(mode: str, collector_port: int, dead_port: int) -> dict[str, Any]:
    if mode == "off":
        return {"metrics": False}
    protocol, path = ("zipkin", "/api/v2/spans") if mode == "zipkin" else ("otlp", "/v1/traces")
    port = dead_port if mode == "dead" else collector_port
    sampling = 100.0 if mode in ("live", "dead") else 1.0
    url = f"http://127.0.0.1:{port}{path}"
    return {
        "metrics": True,
        "tracing": {"sampling": sampling, "collectors": [{"protocol": protocol, "url": url}]},
    }


@contextlib.contextmanager
def proxy(
    mode: str, workdir: Path, base: list[str], upstream: int, cpu: int, ports: tuple[int, int]
) -> Iterator[Any]:
    port, admin = free_port(), free_port()
    doc = loom.snapshot(f"bench-{mode}", "outbound", port, admin, upstream)
    doc["telemetry"] = telemetry(mode, *ports)
    config = workdir / f"{mode}.yaml"
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    with service(f"loom-{mode}", [*base, "proxy", "--config", str(config)], workdir, cpu) as svc:
        wait_http(svc, f"http://127.0.0.1:{admin}/ready", timeout=30.0)
        wait_http(svc, f"http://127.0.0.1:{port}/")
        yield svc, port


def measure(
    mode: str,
    args: argparse.Namespace,
    workdir: Path,
    base: list[str],
    upstream: int,
    openloop: Path,
    ports: tuple[int, int],
) -> tuple[float, int, int, Any]:
    """(CPU ms per 1,000 requests, RSS bytes after the run, errors, the run) of one fixed-rate run."""
    with proxy(mode, workdir, base, upstream, args.proxy_cpu, ports) as (svc, port):
        run_openloop(openloop, port, args.rate, 1.0, args.connections, args.load_cpu)  # warm up
        before = cpu_seconds([svc.pid])
        run = run_openloop(openloop, port, args.rate, args.duration, args.connections, args.load_cpu)
        used = cpu_seconds([svc.pid]) - before
        rss = rss_bytes(svc.pid)
    return used * 1000.0 / max(run.completed, 1) * 1000.0, rss, run.errors + run.timeouts, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="requests/s (default 1000)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each run (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each mode (default 3)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--proxy-cpu", type=int, default=1)
    parser.add_argument("--load-cpu", type=int, default=0)
    parser.add_argument(
        "--cost-only", action="store_true", help="only telemetry off vs on (no 100 %% latency modes)"
    )
    args = parser.parse_args(argv)
    pin_self(args.load_cpu)
    base = loom.command()
    reason = loom.unavailable_reason(base)
    if reason is not None:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    openloop = build_openloop(OUT / "build")
    modes = ("off", "on") if args.cost_only else ("off", "on", "live", "dead")
    results: dict[str, list[float]] = {mode: [] for mode in modes}
    p50: dict[str, list[float]] = {mode: [] for mode in modes}
    p99: dict[str, list[float]] = {mode: [] for mode in modes}
    rss: dict[str, int] = {}
    errors = 0
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="loom-telemetry-bench-") as tmp,
        collector() as cport,
        dead_collector() as dport,
    ):
        workdir = Path(tmp)
        ports = (cport, dport)
        with nginx.upstream(workdir, args.load_cpu) as (_, upstream):
            for _ in range(max(1, args.repeat)):
                for mode in modes:
                    cpu, rss[mode], errs, run = measure(mode, args, workdir, base, upstream, openloop, ports)
                    results[mode].append(cpu)
                    p50[mode].append(run.p50_us)
                    p99[mode].append(run.p99_us)
                    errors += errs
                    print(
                        f"  {mode:>4}: {cpu:7.1f} ms CPU / 1,000 requests, "
                        f"p50 {run.p50_us:.0f} µs, p99 {run.p99_us:.0f} µs",
                        flush=True,
                    )
            _, rss["zipkin"], errs, _ = measure("zipkin", args, workdir, base, upstream, openloop, ports)
            errors += errs
    off, on = statistics.median(results["off"]), statistics.median(results["on"])
    ratio = on / off
    print()
    print(f"fixed rate {args.rate:.0f} req/s, {args.duration:.0f} s a run, median of {args.repeat}:")
    print(f"  telemetry off (metrics: false, no tracing)      {off:7.1f} ms CPU / 1,000 requests")
    print(f"  metrics + tracing 1 % (OTLP to a local collector) {on:5.1f} ms CPU / 1,000 requests")
    print(f"  ratio on/off {ratio:.3f} ({(ratio - 1) * 100:+.1f} %; goal under {GOAL * 100:.0f} %)")
    print(
        f"  RSS: off {rss['off'] / 2**20:.1f} MB, tracing with OTLP {rss['on'] / 2**20:.1f} MB, "
        f"tracing with Zipkin {rss['zipkin'] / 2**20:.1f} MB"
    )
    med = {mode: (statistics.median(p50[mode]), statistics.median(p99[mode])) for mode in modes}
    if args.cost_only:
        return 0 if ratio - 1 < GOAL else 1
    print("  latency through the proxy with every request traced (100 %), p50 / p99:")
    print(f"    collector answering     {med['live'][0]:6.0f} / {med['live'][1]:6.0f} µs")
    print(f"    collector never answers {med['dead'][0]:6.0f} / {med['dead'][1]:6.0f} µs")
    print(f"    (telemetry off          {med['off'][0]:6.0f} / {med['off'][1]:6.0f} µs)")
    print(f"  collector: {_Collector.posts} POSTs; request errors: {errors}")
    print(f"  took {time.monotonic() - started:.0f} s")
    return 0 if ratio - 1 < GOAL else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
