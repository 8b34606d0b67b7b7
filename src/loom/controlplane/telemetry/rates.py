"""Increases over a time window from cumulative reports, and histogram quantiles.

A window's increase is the newest report at or before its end minus the report nearest its
start (the latest at or before it, else the oldest kept). A process that started inside the
window counts from zero; a restart in between (the report's ``start`` id changes: a counter
reset) adds what the new process counted, as Prometheus's ``increase`` does on a reset — never a
negative number.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from loom.controlplane.telemetry.report import Report, RequestKey, RequestValue, TcpKey


@dataclass(slots=True)
class Increase:
    """What one proxy counted in a window."""

    seconds: float
    """How long the counting covered: from the base report (or the process's start) to the end
    report — about the window, less for a proxy seen for less."""
    requests: dict[RequestKey, RequestValue] = field(default_factory=dict)
    tcp_opened: dict[TcpKey, int] = field(default_factory=dict)
    end: Report | None = None


def _sub_requests(new: RequestValue, old: RequestValue | None) -> RequestValue:
    if old is None:
        return new
    count = new[0] - old[0]
    if count < 0:  # cannot happen within one process; treat as a reset
        return new
    buckets = tuple(max(0, a - b) for a, b in zip(new[2], old[2], strict=False))
    return (count, max(0.0, new[1] - old[1]), buckets)


def _add_requests(a: RequestValue | None, b: RequestValue) -> RequestValue:
    if a is None:
        return b
    return (a[0] + b[0], a[1] + b[1], tuple(x + y for x, y in zip(a[2], b[2], strict=False)))


def increase(reports: Sequence[Report], start: float, end: float) -> Increase | None:
    """The increase of every series of one proxy over ``[start, end]`` (None: no report by ``end``)."""
    times = [r.time for r in reports]
    last = bisect.bisect_right(times, end) - 1
    if last < 0:
        return None
    first = bisect.bisect_right(times, start) - 1
    first = max(first, 0)
    base_report = reports[first]
    from_zero = base_report.started > start  # the process began inside the window
    # Split into runs of one process: each run adds its last report minus its baseline.
    runs: list[tuple[Report | None, Report]] = []
    baseline: Report | None = None if from_zero else base_report
    for i in range(first, last + 1):
        report = reports[i]
        if i > first and report.start != reports[i - 1].start:
            runs.append((baseline, reports[i - 1]))
            baseline = None  # a restart: the new process counted from zero
        if i == last:
            runs.append((baseline, report))
    began = base_report.started if from_zero else base_report.time
    result = Increase(seconds=max(0.0, reports[last].time - began), end=reports[last])
    for old, new in runs:
        if old is new:
            continue
        old_requests = old.requests if old is not None else {}
        for key, value in new.requests.items():
            delta = _sub_requests(value, old_requests.get(key))
            result.requests[key] = _add_requests(result.requests.get(key), delta)
        old_tcp = old.tcp if old is not None else {}
        for tcp_key, tcp_value in new.tcp.items():
            before = old_tcp.get(tcp_key)
            opened = tcp_value[0] - (before[0] if before is not None else 0)
            if opened < 0:
                opened = tcp_value[0]
            result.tcp_opened[tcp_key] = result.tcp_opened.get(tcp_key, 0) + opened
    return result


def histogram_quantile(q: float, bounds: Sequence[float], buckets: Sequence[int]) -> float | None:
    """The ``q`` quantile of a histogram as Prometheus's ``histogram_quantile`` computes it:
    ``buckets`` are per-bucket counts for the upper ``bounds`` plus a last +Inf bucket; the value
    is interpolated linearly within the bucket the rank falls in (from 0 for the first bucket);
    a rank in the +Inf bucket gives the highest finite bound. None when there are no observations."""
    total = sum(buckets)
    if total <= 0 or not bounds or math.isnan(q):
        return None
    if q <= 0:
        q = 0.0
    if q >= 1:
        q = 1.0
    rank = q * total
    cumulative = 0
    for i, count in enumerate(buckets):
        previous = cumulative
        cumulative += count
        if cumulative >= rank and count > 0:
            if i >= len(bounds):
                return float(bounds[-1])
            upper = float(bounds[i])
            lower = float(bounds[i - 1]) if i > 0 else 0.0
            if i == 0 and upper <= 0:
                return upper
            return lower + (upper - lower) * (rank - previous) / count
    return float(bounds[-1])
