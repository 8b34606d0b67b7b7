"""The load generators: wrk (closed loop, for throughput), openloop (fixed rate, for latency) and
openssl s_time (new TLS connections, for handshakes)."""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness.processes import BenchError, run_pinned

SOURCE = Path(__file__).resolve().parent.parent / "loadgen" / "openloop.c"


def build_openloop(build_dir: Path) -> Path:
    """Compile bench/loadgen/openloop.c (when the binary is missing or older than the source)."""
    build_dir.mkdir(parents=True, exist_ok=True)
    binary = build_dir / "openloop"
    if binary.exists() and binary.stat().st_mtime >= SOURCE.stat().st_mtime:
        return binary
    argv = ["gcc", "-O2", "-Wall", "-Wextra", "-std=gnu11", "-o", str(binary), str(SOURCE), "-lm"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"compiling {SOURCE} failed:\n{done.stderr}")
    return binary


@dataclass(frozen=True)
class LatencyRun:
    """One fixed-rate run; latencies in microseconds from each request's scheduled instant."""

    rate: float
    duration_s: float
    count: int
    errors: int
    timeouts: int
    max_backlog: int
    mean_us: float
    p50_us: float
    p90_us: float
    p99_us: float
    p999_us: float
    max_us: float

    @property
    def completed(self) -> int:
        return self.count + self.errors


def run_openloop(
    binary: Path, port: int, rate: float, duration: float, connections: int, cpu: int | None
) -> LatencyRun:
    argv = [str(binary), "-p", str(port), "-r", str(rate), "-d", str(duration), "-c", str(connections)]
    out = json.loads(run_pinned(argv, cpu, timeout=duration + 30))
    return LatencyRun(
        rate=out["rate"],
        duration_s=out["duration_s"],
        count=out["count"],
        errors=out["errors"],
        timeouts=out["timeouts"],
        max_backlog=out["max_backlog"],
        mean_us=out["mean_us"],
        p50_us=out["p50_us"],
        p90_us=out["p90_us"],
        p99_us=out["p99_us"],
        p999_us=out["p999_us"],
        max_us=out["max_us"],
    )


@dataclass(frozen=True)
class ThroughputRun:
    rps: float
    requests: int
    errors: int


_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_REQUESTS = re.compile(r"(\d+) requests in")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def parse_wrk(output: str) -> ThroughputRun:
    rps = _RPS.search(output)
    requests = _REQUESTS.search(output)
    if rps is None or requests is None:
        raise BenchError(f"cannot read wrk's output:\n{output}")
    errors = sum(int(n) for n in _NON_2XX.findall(output))
    socket_errors = _SOCKET_ERRORS.search(output)
    if socket_errors is not None:
        errors += sum(int(n) for n in socket_errors.groups())
    return ThroughputRun(rps=float(rps.group(1)), requests=int(requests.group(1)), errors=errors)


def run_wrk(port: int, duration: float, connections: int, cpu: int | None) -> ThroughputRun:
    """Closed loop: ``connections`` keep-alive connections, one thread, as fast as answers come."""
    seconds = max(1, round(duration))
    argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", f"http://127.0.0.1:{port}/"]
    return parse_wrk(run_pinned(argv, cpu, timeout=seconds + 30))


@dataclass(frozen=True)
class HandshakeRun:
    """One ``openssl s_time -new`` run: every connection a new, full TLS handshake, one at a time."""

    connections: int
    seconds: float
    """Wall time of the run, from the start of the client to its exit."""

    @property
    def rate(self) -> float:
        return self.connections / self.seconds if self.seconds > 0 else 0.0


_CONNECTIONS = re.compile(r"(\d+) connections in [\d.]+s;")


def run_s_time(
    port: int, duration: float, cert: Path, key: Path, ca_file: Path, cpu: int | None
) -> HandshakeRun:
    """Full mutual-TLS handshakes against ``port`` for ``duration`` s, presenting ``cert``/``key``
    and verifying the server's chain against ``ca_file``; no request is sent on them.

    s_time stops at the first second boundary after ``duration`` and counts in whole seconds, so the
    rate is taken over the run's measured wall time instead."""
    seconds = max(1, round(duration))
    argv = [
        "openssl",
        "s_time",
        "-connect",
        f"127.0.0.1:{port}",
        "-new",
        "-time",
        str(seconds),
        "-cert",
        str(cert),
        "-key",
        str(key),
        "-CAfile",
        str(ca_file),
        "-verify",
        "2",
    ]
    start = time.monotonic()
    output = run_pinned(argv, cpu, timeout=seconds + 30)
    wall = time.monotonic() - start
    found = _CONNECTIONS.search(output)
    if found is None:
        raise BenchError(f"cannot read openssl s_time's output:\n{output}")
    return HandshakeRun(connections=int(found.group(1)), seconds=wall)
