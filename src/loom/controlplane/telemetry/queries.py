"""The golden metrics the API serves, computed from the store's reports: per workload, service
or route (``stats``), per caller and callee (``edges``), over time (``series``), and the busiest
requests from tap events (``top``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loom.controlplane.telemetry.rates import Increase, histogram_quantile, increase
from loom.controlplane.telemetry.report import (
    DST_APP,
    DST_NAMESPACE,
    DST_PRINCIPAL,
    DST_SERVICE,
    DST_SERVICE_NAME,
    DST_SERVICE_NAMESPACE,
    DST_WORKLOAD,
    REPORTER,
    SRC_NAMESPACE,
    SRC_PRINCIPAL,
    SRC_WORKLOAD,
    UNKNOWN,
    Head,
)
from loom.controlplane.telemetry.store import OLD_SPACING, RECENT, SPACING, Key, TelemetryStore

BY = ("deploy", "svc", "route")
MUTUAL_TLS = "mutual_tls"
_REPLICA = re.compile(r"^(.+)-\d+$")


def deploy_name(workload: str) -> str:
    """The Workload a replica belongs to: ``catalog-v1-0`` → ``catalog-v1`` (``loom up`` names
    replicas ``WORKLOAD-N``); a name without a ``-N`` suffix is its own."""
    match = _REPLICA.match(workload)
    return match.group(1) if match else workload


def is_mtls(head: Head, policy: str) -> bool:
    if head[REPORTER] == "destination":
        return policy == MUTUAL_TLS
    return head[SRC_PRINCIPAL] != UNKNOWN and head[DST_PRINCIPAL] != UNKNOWN


@dataclass
class Totals:
    requests: int = 0
    rps: float = 0.0
    errors: int = 0
    mtls: int = 0
    buckets: list[int] = field(default_factory=list)
    tcp_open: int = 0
    proxies: set[Key] = field(default_factory=set)

    def add(self, count: int, seconds: float, status: int, buckets: tuple[int, ...], mtls: bool) -> None:
        self.requests += count
        if seconds > 0:
            self.rps += count / seconds
        if status >= 500:
            self.errors += count
        if mtls:
            self.mtls += count
        if not self.buckets:
            self.buckets = [0] * len(buckets)
        for i, n in enumerate(buckets):
            self.buckets[i] += n

    def success_rate(self) -> float | None:
        return None if not self.requests else round(1.0 - self.errors / self.requests, 4)

    def quantile(self, q: float, bounds: tuple[float, ...]) -> float | None:
        value = histogram_quantile(q, bounds, self.buckets) if self.buckets else None
        return None if value is None else round(value, 3)


def _increases(store: TelemetryStore, start: float, end: float) -> list[tuple[Key, Increase]]:
    found = []
    for key, reports in store.reports():
        got = increase(reports, start, end)
        if got is not None:
            found.append((key, got))
    return found


def _bounds(increases: list[tuple[Key, Increase]]) -> tuple[float, ...]:
    for _, inc in increases:
        if inc.end is not None:
            return inc.end.bounds
    return ()


GroupKey = tuple[str, str]


def _grouping(by: str) -> tuple[str, Callable[[Head], GroupKey | None]]:
    """Which reporter's series a row comes from first, and the row a series belongs to."""
    if by == "deploy":

        def deploy(head: Head) -> GroupKey | None:
            workload = head[DST_WORKLOAD]
            return None if workload == UNKNOWN else (head[DST_NAMESPACE], deploy_name(workload))

        return "destination", deploy
    if by == "svc":

        def svc(head: Head) -> GroupKey | None:
            name = head[DST_SERVICE_NAME]
            return None if name == UNKNOWN else (head[DST_SERVICE_NAMESPACE], name)

        return "destination", svc

    def route(head: Head) -> GroupKey | None:
        service = head[DST_SERVICE]
        return None if service == UNKNOWN else (head[DST_SERVICE_NAMESPACE], service)

    return "source", route


def stats(
    store: TelemetryStore, by: str, now: float, window: float, namespace: str = "", name: str = ""
) -> dict[str, Any]:
    preferred, group = _grouping(by)
    increases = _increases(store, now - window, now)
    bounds = _bounds(increases)
    rows: dict[str, dict[GroupKey, Totals]] = {"source": {}, "destination": {}}
    for key, inc in increases:
        for (head, policy, status, _flags, _grpc), (count, _sum, buckets) in inc.requests.items():
            reporter = head[REPORTER]
            row = group(head)
            if row is None or reporter not in rows:
                continue
            totals = rows[reporter].setdefault(row, Totals())
            totals.add(count, inc.seconds, status, buckets, is_mtls(head, policy))
            totals.proxies.add(key)
        if inc.end is None:
            continue
        for (head, _flags, _policy), (opened, closed, _sent, _received) in inc.end.tcp.items():
            reporter = head[REPORTER]
            row = group(head)
            if row is None or reporter not in rows:
                continue
            totals = rows[reporter].setdefault(row, Totals())
            totals.tcp_open += max(0, opened - closed)
            totals.proxies.add(key)
    chosen = dict(rows[preferred])
    fallback = "source" if preferred == "destination" else "destination"
    for row, totals in rows[fallback].items():
        if row not in chosen:  # e.g. a service without sidecars: only its callers report it
            totals.proxies = set()
            chosen[row] = totals
    out = []
    for (row_namespace, row_name), totals in sorted(chosen.items()):
        if namespace and row_namespace != namespace:
            continue
        if name and row_name != name and not (by == "route" and row_name.split(".")[0] == name):
            continue
        out.append(
            {
                "namespace": row_namespace,
                "name": row_name,
                "requests": totals.requests,
                "rps": round(totals.rps, 3),
                "success_rate": totals.success_rate(),
                "p50_ms": totals.quantile(0.5, bounds),
                "p95_ms": totals.quantile(0.95, bounds),
                "p99_ms": totals.quantile(0.99, bounds),
                "tcp_connections": totals.tcp_open,
                "mtls_share": None if not totals.requests else round(totals.mtls / totals.requests, 4),
                "meshed": len(totals.proxies),
            }
        )
    return {"window": window, "by": by, "rows": out}


def edges(store: TelemetryStore, now: float, window: float, namespace: str = "") -> dict[str, Any]:
    """Who calls whom: from the callers' sidecars (reporter=source), plus the calls a sidecar
    received from callers without one (reporter=destination, no client certificate)."""
    increases = _increases(store, now - window, now)
    bounds = _bounds(increases)
    found: dict[tuple[str, ...], Totals] = {}
    for _key, inc in increases:
        for (head, policy, status, _flags, _grpc), (count, _sum, buckets) in inc.requests.items():
            reporter = head[REPORTER]
            if reporter == "destination" and head[SRC_PRINCIPAL] != UNKNOWN:
                continue  # the caller has a sidecar: its own report has this edge
            if reporter not in ("source", "destination") or not count:
                continue
            service = head[DST_SERVICE_NAME] if head[DST_SERVICE_NAME] != UNKNOWN else head[DST_APP]
            edge = (
                head[SRC_NAMESPACE],
                head[SRC_WORKLOAD],
                head[SRC_PRINCIPAL],
                head[DST_NAMESPACE],
                head[DST_WORKLOAD],
                service,
                head[DST_PRINCIPAL],
            )
            if namespace and namespace not in (edge[0], edge[3]):
                continue
            found.setdefault(edge, Totals()).add(count, inc.seconds, status, buckets, is_mtls(head, policy))
    rows = []
    for edge, totals in sorted(found.items()):
        rows.append(
            {
                "source": {"namespace": edge[0], "workload": edge[1], "principal": edge[2]},
                "destination": {
                    "namespace": edge[3],
                    "workload": edge[4],
                    "service": edge[5],
                    "principal": edge[6],
                },
                "rps": round(totals.rps, 3),
                "success_rate": totals.success_rate(),
                "p99_ms": totals.quantile(0.99, bounds),
                "mtls": totals.mtls == totals.requests,
            }
        )
    return {"edges": rows}


def series(
    store: TelemetryStore, now: float, namespace: str, service: str, minutes: float, step: float
) -> dict[str, Any]:
    """One service's rate, success rate and p99 per ``step`` seconds over the last ``minutes``."""
    points = []
    count = max(1, int(minutes * 60 // step))
    for i in range(count - 1, -1, -1):
        end = now - i * step
        # Older reports are kept about one per OLD_SPACING (+ SPACING) seconds: look back that far.
        lookback = step if end > now - RECENT else max(step, OLD_SPACING + SPACING)
        result = stats(store, "svc", end, lookback, namespace, service)
        row = result["rows"][0] if result["rows"] else None
        points.append(
            {
                "t": round(end, 3),
                "rps": row["rps"] if row else 0.0,
                "success_rate": row["success_rate"] if row else None,
                "p99_ms": row["p99_ms"] if row else None,
            }
        )
    return {"points": points}


def top(events: list[dict[str, Any]], namespace: str = "") -> dict[str, Any]:
    """The busiest (source, destination, method, path) among tap events, each request once (by
    its ``x-request-id``: the caller's sidecar's event, which knows the source, is kept)."""
    seen: dict[str, dict[str, Any]] = {}
    unnamed: list[dict[str, Any]] = []
    for event in events:
        if namespace and namespace not in (event.get("source_namespace"), event.get("destination_namespace")):
            continue
        request_id = str(event.get("request_id") or "")
        if not request_id:
            unnamed.append(event)
            continue
        kept = seen.get(request_id)
        if kept is None or (kept.get("reporter") != "source" and event.get("reporter") == "source"):
            seen[request_id] = event
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for event in [*seen.values(), *unnamed]:
        row = (
            str(event.get("source")),
            str(event.get("destination")),
            str(event.get("method")),
            str(event.get("path")),
        )
        groups.setdefault(row, []).append(event)
    rows = []
    for (source, destination, method, path), group in groups.items():
        latencies = sorted(float(e.get("latency_ms") or 0.0) for e in group)
        ok = sum(1 for e in group if int(e.get("status") or 0) < 500)
        rows.append(
            {
                "source": source,
                "destination": destination,
                "method": method,
                "path": path,
                "count": len(group),
                "p50_ms": round(latencies[(len(latencies) - 1) // 2], 3),
                "success_rate": round(ok / len(group), 4),
            }
        )
    rows.sort(key=lambda r: (-r["count"], r["source"], r["destination"], r["path"]))
    return {"rows": rows}
