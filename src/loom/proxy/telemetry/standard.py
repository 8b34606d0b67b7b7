"""Istio's standard metrics, recorded on the request path.

A label set is interned once into a handle (``request_series`` / ``tcp_series``); recording then
costs one dict lookup keyed by (status, flags, grpc status) and a few list increments. Each
label-set child is a flat list of cells laid out as::

    [count, duration_sum, request_bytes_sum, response_bytes_sum,
     duration buckets..., request_bytes buckets..., response_bytes buckets...]

Buckets are stored per bucket (not cumulative) with a final +Inf slot; ``render_into``
accumulates them. Everything runs on the event loop thread, so there are no locks.
"""

from __future__ import annotations

import math
from bisect import bisect_left

from loom.proxy.telemetry.exposition import (
    bucket_suffixes,
    escape_label_value,
    format_value,
    header,
    label_pairs,
)
from loom.proxy.telemetry.flags import NONE as NO_FLAGS
from loom.proxy.telemetry.peers import LATEST, UNKNOWN, PeerInfo, service_name_and_namespace
from loom.snapshot.istio_labels import HEAD_LABELS

REPORTER_SOURCE = "source"
"""The outbound (client-side) sidecar reports."""
REPORTER_DESTINATION = "destination"
"""The inbound (server-side) sidecar reports."""
REPORTER_WAYPOINT = "waypoint"
REPORTERS = frozenset({REPORTER_SOURCE, REPORTER_DESTINATION, REPORTER_WAYPOINT})

MUTUAL_TLS = "mutual_tls"
PLAINTEXT = "none"

# Envoy's default histogram buckets; Istio's bootstrap configures no others, so its byte-size
# histograms use them too.
DURATION_BUCKETS: tuple[float, ...] = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000,
    30000, 60000, 300000, 600000, 1800000, 3600000,
)  # fmt: skip
SIZE_BUCKETS: tuple[float, ...] = DURATION_BUCKETS

REQUEST_LABELS = (
    *HEAD_LABELS,
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
)
TCP_LABELS = (*HEAD_LABELS, "response_flags", "connection_security_policy")

REQUESTS_TOTAL = "istio_requests_total"
REQUEST_DURATION = "istio_request_duration_milliseconds"
REQUEST_BYTES = "istio_request_bytes"
RESPONSE_BYTES = "istio_response_bytes"
TCP_OPENED = "istio_tcp_connections_opened_total"
TCP_CLOSED = "istio_tcp_connections_closed_total"
TCP_SENT = "istio_tcp_sent_bytes_total"
TCP_RECEIVED = "istio_tcp_received_bytes_total"

# bisect compares faster when bound and value have the same type: durations are floats, sizes
# ints. For an int, ``n <= 0.5`` is ``n <= 0``, so the integer bounds place every size the same.
_DUR = tuple(float(b) for b in DURATION_BUCKETS)
_SIZE = tuple(math.floor(b) for b in SIZE_BUCKETS)
_N_DUR = len(_DUR) + 1
_N_SIZE = len(_SIZE) + 1
_D = 4  # first duration bucket cell
_Q = _D + _N_DUR  # first request-size bucket cell
_P = _Q + _N_SIZE  # first response-size bucket cell
_N_CELLS = _P + _N_SIZE
_DUR_SUFFIXES = bucket_suffixes(DURATION_BUCKETS)
_SIZE_SUFFIXES = bucket_suffixes(SIZE_BUCKETS)


class SeriesHandle:
    """An interned HTTP label set; children per (response code, flags, gRPC status)."""

    __slots__ = ("_head", "_policy", "cells", "children")

    def __init__(self, head: str, policy: str) -> None:
        self._head = head
        self._policy = escape_label_value(policy)
        self.children: dict[tuple[int, str, str], list] = {}
        self.cells: list[tuple[str, list]] = []
        """(rendered labels, cells) in creation order, for exposition."""

    def _add(self, status: int, flags: str, grpc_status: str) -> list:
        labels = (
            f'{self._head},response_code="{int(status)}",'
            f'grpc_response_status="{escape_label_value(grpc_status)}",'
            f'response_flags="{escape_label_value(flags)}",'
            f'connection_security_policy="{self._policy}"'
        )
        cells: list = [0] * _N_CELLS
        self.children[(status, flags, grpc_status)] = cells
        self.cells.append((labels, cells))
        return cells

    def __repr__(self) -> str:
        return f"<SeriesHandle {self._head}>"


class TcpSeriesHandle:
    """An interned TCP label set: ``v`` is [opened, closed, sent bytes, received bytes]."""

    __slots__ = ("labels", "v")

    def __init__(self, labels: str) -> None:
        self.labels = labels
        self.v: list[int] = [0, 0, 0, 0]

    def __repr__(self) -> str:
        return f"<TcpSeriesHandle {self.labels}>"


def _head_values(
    reporter: str, source: PeerInfo, destination: PeerInfo, destination_service: str, protocol: str
) -> tuple[str, ...]:
    if reporter not in REPORTERS:
        raise ValueError(f"reporter must be one of {sorted(REPORTERS)}, not {reporter!r}")
    service = destination_service or UNKNOWN
    service_name, service_namespace = service_name_and_namespace(service, destination.namespace)
    return (
        reporter,
        source.workload or UNKNOWN,
        source.namespace or UNKNOWN,
        source.principal or UNKNOWN,
        source.app or UNKNOWN,
        source.version or UNKNOWN,
        source.cluster or UNKNOWN,
        source.canonical_service or UNKNOWN,
        source.canonical_revision or LATEST,
        destination.workload or UNKNOWN,
        destination.namespace or UNKNOWN,
        destination.principal or UNKNOWN,
        destination.app or UNKNOWN,
        destination.version or UNKNOWN,
        service,
        service_name,
        service_namespace,
        destination.canonical_service or UNKNOWN,
        destination.canonical_revision or LATEST,
        destination.cluster or UNKNOWN,
        protocol or UNKNOWN,
    )


def _default_policy(reporter: str, policy: str | None) -> str:
    # Istio reports "unknown" from the client side, where it cannot see the server's policy.
    if policy:
        return policy
    return UNKNOWN if reporter == REPORTER_SOURCE else PLAINTEXT


class IstioMetrics:
    """The istio_* families. ``MeshMetrics`` adds the proxy's own counters and the exposition."""

    __slots__ = ("_request_series", "_tcp_series")

    def __init__(self) -> None:
        self._request_series: dict[tuple, SeriesHandle] = {}
        self._tcp_series: dict[tuple, TcpSeriesHandle] = {}

    # --- label sets (once per route / cluster / endpoint combination) ------------------------

    def request_series(
        self,
        *,
        reporter: str,
        source: PeerInfo,
        destination: PeerInfo,
        destination_service: str,
        request_protocol: str = "http",
        connection_security_policy: str | None = None,
    ) -> SeriesHandle:
        """The handle for one HTTP label set; equal arguments return the same handle.

        ``request_protocol`` is ``http`` or ``grpc``. ``connection_security_policy`` defaults to
        Istio's: ``unknown`` when the source reports, ``none`` when the destination does.
        """
        key = (
            reporter,
            source,
            destination,
            destination_service,
            request_protocol,
            connection_security_policy,
        )
        series = self._request_series.get(key)
        if series is None:
            values = _head_values(reporter, source, destination, destination_service, request_protocol)
            policy = _default_policy(reporter, connection_security_policy)
            series = SeriesHandle(label_pairs(HEAD_LABELS, values), policy)
            self._request_series[key] = series
        return series

    def tcp_series(
        self,
        *,
        reporter: str,
        source: PeerInfo,
        destination: PeerInfo,
        destination_service: str,
        connection_security_policy: str | None = None,
        response_flags: str = NO_FLAGS,
    ) -> TcpSeriesHandle:
        """The handle for one TCP label set (``request_protocol="tcp"``, no response code).

        ``response_flags`` is part of the label set, as in Istio: a connection that fails (``UF``)
        records its open and close on the handle for those flags.
        """
        key = (reporter, source, destination, destination_service, connection_security_policy, response_flags)
        series = self._tcp_series.get(key)
        if series is None:
            values = (
                *_head_values(reporter, source, destination, destination_service, "tcp"),
                response_flags or NO_FLAGS,
                _default_policy(reporter, connection_security_policy),
            )
            series = TcpSeriesHandle(label_pairs(TCP_LABELS, values))
            self._tcp_series[key] = series
        return series

    # --- the hot path ------------------------------------------------------------------------

    def record_request(
        self,
        series: SeriesHandle,
        status: int,
        flags: str,
        duration_ms: float,
        request_bytes: int,
        response_bytes: int,
        grpc_status: str = "",
    ) -> None:
        """Count one finished request. Values must be finite and non-negative; sizes are ints.

        ``flags`` is a joined flag string (``flags.NONE`` when none); pass interned constants so
        the child lookup compares by identity. ``grpc_status`` is empty for plain HTTP.
        """
        v = series.children.get((status, flags, grpc_status))
        if v is None:
            v = series._add(status, flags, grpc_status)
        v[0] += 1
        v[1] += duration_ms
        v[2] += request_bytes
        v[3] += response_bytes
        v[_D + bisect_left(_DUR, duration_ms)] += 1
        v[_Q + bisect_left(_SIZE, request_bytes)] += 1
        v[_P + bisect_left(_SIZE, response_bytes)] += 1

    def record_tcp_open(self, series: TcpSeriesHandle) -> None:
        series.v[0] += 1

    def record_tcp_close(self, series: TcpSeriesHandle) -> None:
        series.v[1] += 1

    def record_tcp_bytes(self, series: TcpSeriesHandle, sent: int, received: int) -> None:
        """Add bytes as they flow (sent: towards the downstream peer, received: from it)."""
        v = series.v
        v[2] += sent
        v[3] += received

    # --- exposition --------------------------------------------------------------------------

    def render_into(self, out: list[str]) -> None:
        http = [s for s in self._request_series.values() if s.cells]
        if http:
            header(out, REQUESTS_TOTAL, "Requests handled by the proxy.", "counter")
            for series in http:
                for labels, v in series.cells:
                    out.append(f"{REQUESTS_TOTAL}{{{labels}}} {v[0]}\n")
            _histogram(out, REQUEST_DURATION, "Request duration in milliseconds.", http, _D, 1, _DUR_SUFFIXES)
            _histogram(out, REQUEST_BYTES, "Request size in bytes.", http, _Q, 2, _SIZE_SUFFIXES)
            _histogram(out, RESPONSE_BYTES, "Response size in bytes.", http, _P, 3, _SIZE_SUFFIXES)
        tcp = list(self._tcp_series.values())
        if tcp:
            _tcp_counter(out, TCP_OPENED, "TCP connections opened.", tcp, 0)
            _tcp_counter(out, TCP_CLOSED, "TCP connections closed.", tcp, 1)
            _tcp_counter(out, TCP_SENT, "Bytes sent to the downstream peer on TCP connections.", tcp, 2)
            _tcp_counter(
                out, TCP_RECEIVED, "Bytes received from the downstream peer on TCP connections.", tcp, 3
            )


def _histogram(
    out: list[str],
    name: str,
    help_text: str,
    series_list: list[SeriesHandle],
    first: int,
    sum_cell: int,
    suffixes: tuple[str, ...],
) -> None:
    header(out, name, help_text, "histogram")
    bucket = f"{name}_bucket{{"
    total = f"{name}_sum{{"
    count = f"{name}_count{{"
    for series in series_list:
        for labels, v in series.cells:
            cumulative = 0
            for i, suffix in enumerate(suffixes):
                cumulative += v[first + i]
                out.append(f"{bucket}{labels}{suffix}{cumulative}\n")
            out.append(f"{total}{labels}}} {format_value(v[sum_cell])}\n")
            out.append(f"{count}{labels}}} {v[0]}\n")


def _tcp_counter(
    out: list[str], name: str, help_text: str, series_list: list[TcpSeriesHandle], i: int
) -> None:
    header(out, name, help_text, "counter")
    for series in series_list:
        out.append(f"{name}{{{series.labels}}} {series.v[i]}\n")
