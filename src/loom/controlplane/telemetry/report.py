"""One sidecar's telemetry push, decoded: the cumulative istio_* series at one moment.

The wire form is the sidecar's (``loom/proxy/telemetry/report.py``, documented in
docs/proxy.md); here each series is keyed by its labels as a tuple in ``HEAD_LABELS`` order
(head tuples interned per proxy, so reports of the same proxy share them) and its values are
tuples, shared with the previous report when unchanged.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

from loom.snapshot.istio_labels import HEAD_LABELS

LABEL = {name: i for i, name in enumerate(HEAD_LABELS)}
REPORTER = LABEL["reporter"]
SRC_WORKLOAD = LABEL["source_workload"]
SRC_NAMESPACE = LABEL["source_workload_namespace"]
SRC_PRINCIPAL = LABEL["source_principal"]
DST_WORKLOAD = LABEL["destination_workload"]
DST_NAMESPACE = LABEL["destination_workload_namespace"]
DST_PRINCIPAL = LABEL["destination_principal"]
DST_SERVICE = LABEL["destination_service"]
DST_SERVICE_NAME = LABEL["destination_service_name"]
DST_SERVICE_NAMESPACE = LABEL["destination_service_namespace"]
DST_APP = LABEL["destination_app"]

UNKNOWN = "unknown"
MAX_BODY = 16 * 2**20
"""The most a (decoded) push may hold."""

Head = tuple[str, ...]
RequestKey = tuple[Head, str, int, str, str]
"""(head labels, connection_security_policy, response_code, response_flags, grpc_response_status)."""
RequestValue = tuple[int, float, tuple[int, ...]]
"""(count, duration sum in ms, per-bucket duration counts, +Inf last)."""
TcpKey = tuple[Head, str, str]
"""(head labels, response_flags, connection_security_policy)."""
TcpValue = tuple[int, int, int, int]
"""(opened, closed, sent bytes, received bytes)."""


class ReportError(ValueError):
    """The push is not a telemetry report."""


@dataclass(slots=True)
class Report:
    time: float
    """When it was received (the control plane's clock, unix seconds)."""
    start: str
    """Changes when the proxy's process restarts (its counters start again at zero)."""
    started: float
    """When the proxy's process started (unix seconds, its own clock)."""
    bounds: tuple[float, ...]
    requests: dict[RequestKey, RequestValue] = field(default_factory=dict)
    tcp: dict[TcpKey, TcpValue] = field(default_factory=dict)


def decode_body(body: bytes) -> bytes:
    """The JSON of a push, gunzipped if it is gzip (at most ``MAX_BODY`` bytes)."""
    if body[:2] != b"\x1f\x8b":
        return body
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflate.decompress(body, MAX_BODY + 1)
    except zlib.error as exc:
        raise ReportError(f"not valid gzip: {exc}") from None
    if len(out) > MAX_BODY or not inflate.eof:
        raise ReportError("the gzip body is too large or cut short")
    return out


def parse_report(
    data: Any, received: float, heads: dict[Head, Head], previous: Report | None
) -> tuple[Report, list[dict[str, Any]]]:
    """The report and its tap events. ``heads`` interns label tuples; values equal to those of
    ``previous`` are shared with it."""
    try:
        labels = [str(name) for name in data["labels"]]
        where = [labels.index(name) if name in labels else -1 for name in HEAD_LABELS]
        bounds = tuple(float(b) for b in data["buckets"])
        n_buckets = len(bounds) + 1
        table: list[Head] = []
        for values in data["heads"]:
            head = tuple(str(values[i]) if i >= 0 else UNKNOWN for i in where)
            table.append(heads.setdefault(head, head))
        report = Report(received, str(data["start"]), float(data["started"]), bounds)
        old_requests = previous.requests if previous is not None else {}
        for h, policy, code, flags, grpc, count, total, buckets in data["requests"]:
            cells = [int(b) for b in buckets[:n_buckets]]
            cells += [0] * (n_buckets - len(cells))
            key = (table[h], str(policy), int(code), str(flags), str(grpc))
            value = (int(count), float(total), tuple(cells))
            old = old_requests.get(key)
            report.requests[key] = old if old == value else value
        old_tcp = previous.tcp if previous is not None else {}
        for h, flags, policy, opened, closed, sent, received_bytes in data.get("tcp") or ():
            tcp_key = (table[h], str(flags), str(policy))
            tcp_value = (int(opened), int(closed), int(sent), int(received_bytes))
            old_value = old_tcp.get(tcp_key)
            report.tcp[tcp_key] = old_value if old_value == tcp_value else tcp_value
        events = [e for e in data.get("tap") or () if isinstance(e, dict)]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise ReportError(f"invalid telemetry report: {exc!r}") from None
    return report, events
