"""The istio_* series in the compact form a sidecar pushes to the control plane.

Cumulative values, as ``/metrics`` shows them; the control plane takes differences between
reports. Each distinct head label set (``HEAD_LABELS``) is sent once in ``heads`` and referred
to by index::

    {"v": 1, "start": ID, "started": UNIX, "time": UNIX,
     "labels": [HEAD_LABELS...], "buckets": [DURATION_BUCKETS...],
     "heads": [[value, ...], ...],
     "requests": [[head, policy, code, flags, grpc, count, duration_sum_ms, [per-bucket counts]]],
     "tcp": [[head, flags, policy, opened, closed, sent_bytes, received_bytes]],
     "tap": [event, ...]}

Duration buckets are per bucket (not cumulative), the last one +Inf, trailing zeros dropped.
``start`` changes when the process restarts: the control plane then knows the counters reset.
"""

from __future__ import annotations

from loom.proxy.telemetry.standard import (
    _D,
    _N_DUR,
    DURATION_BUCKETS,
    HEAD_LABELS,
    IstioMetrics,
    _default_policy,
    _head_values,
)

VERSION = 1


def build_report(
    metrics: IstioMetrics, start: str, started: float, now: float, tap: list[dict[str, object]]
) -> dict[str, object]:
    heads: list[tuple[str, ...]] = []
    index: dict[tuple[str, ...], int] = {}

    def head(values: tuple[str, ...]) -> int:
        found = index.get(values)
        if found is None:
            found = index[values] = len(heads)
            heads.append(values)
        return found

    requests: list[list[object]] = []
    for key, series in metrics._request_series.items():
        if not series.children:
            continue
        reporter, source, destination, service, protocol, policy = key
        h = head(_head_values(reporter, source, destination, service, protocol))
        policy = _default_policy(reporter, policy)
        for (code, flags, grpc), v in series.children.items():
            buckets = v[_D : _D + _N_DUR]
            while buckets and not buckets[-1]:
                buckets.pop()
            requests.append([h, policy, code, flags, grpc, v[0], round(v[1], 3), buckets])
    tcp: list[list[object]] = []
    for key, series in metrics._tcp_series.items():
        reporter, source, destination, service, policy, flags = key
        h = head(_head_values(reporter, source, destination, service, "tcp"))
        tcp.append([h, flags or "-", _default_policy(reporter, policy), *series.v])
    return {
        "v": VERSION,
        "start": start,
        "started": round(started, 3),
        "time": round(now, 3),
        "labels": list(HEAD_LABELS),
        "buckets": list(DURATION_BUCKETS),
        "heads": [list(h) for h in heads],
        "requests": requests,
        "tcp": tcp,
        "tap": tap,
    }
