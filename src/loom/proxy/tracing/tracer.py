"""Sampling, span start (a request stage) and span end (when the exchange completes).

Decide first: an unsampled request makes no span object. It keeps the headers it came with, or,
when it came with none, gets a ``traceparent`` saying "not sampled" so the next hops agree.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

from loom.proxy.telemetry.peers import PeerInfo
from loom.proxy.tracing import propagation
from loom.proxy.tracing.span import CLIENT, SERVER, Span
from loom.snapshot.model import Direction, Snapshot, Tracing
from loom.snapshot.security import spiffe_id

if TYPE_CHECKING:
    from loom.proxy.http.exchange import Exchange
    from loom.proxy.tracing.export import SpanExporter


SPAN_ID_MASK = (1 << 64) - 1


def new_id(bits: int) -> str:
    """A random non-zero id of ``bits`` bits, as lower-case hex."""
    value = 0
    while not value:
        value = random.getrandbits(bits)
    return f"{value:0{bits // 4}x}"


def service_name(snapshot: Snapshot) -> str:
    """``<app label or workload>.<namespace>``: the resource's ``service.name``, as Istio reports it."""
    node = snapshot.node
    app = node.labels.get("app") or node.labels.get("app.kubernetes.io/name") or node.workload
    return f"{app}.{node.namespace}"


class Tracer:
    """One snapshot's tracing settings, compiled; ``ProxyConfig.tracer`` (None: tracing off)."""

    __slots__ = (
        "_local",
        "_offset",
        "_threshold",
        "exporter",
        "inbound",
        "node_id",
        "report",
        "settings",
        "snapshot",
    )

    def __init__(self, snapshot: Snapshot, settings: Tracing, exporter: SpanExporter) -> None:
        self.snapshot = snapshot
        self.settings = settings
        self.exporter = exporter
        self.report = settings.report
        self._threshold = settings.sampling / 100.0
        node = snapshot.node
        self._local = PeerInfo.from_node(node)
        address = snapshot.listeners[0].address if snapshot.listeners else "127.0.0.1"
        self.node_id = (
            f"sidecar~{address}~{node.workload}.{node.namespace}~{node.namespace}.svc.{node.cluster_domain}"
        )
        self.inbound = frozenset(
            item.name for item in snapshot.listeners if item.direction is Direction.INBOUND
        )
        self._offset = time.time() - time.monotonic()
        """Monotonic → wall clock, fixed once: span times are monotonic differences."""

    # --- start (a request stage) -----------------------------------------------------------------

    def start(self, ex: Exchange) -> None:
        head = ex.head
        hmap = head.hmap
        if (
            b"traceparent" not in hmap
            and b"b3" not in hmap
            and b"x-b3-traceid" not in hmap
            and b"x-b3-sampled" not in hmap
            and random.random() >= self._threshold
        ):
            # The common case, kept to a few dictionary lookups: a request with no trace context,
            # not sampled here. It gets a "not sampled" traceparent so the next hops agree.
            ids = random.getrandbits(192)
            value = b"00-%032x-%016x-00" % ((ids >> 64) or 1, (ids & SPAN_ID_MASK) or 1)
            head.headers.append((b"traceparent", value))
            hmap[b"traceparent"] = value
            return
        incoming = propagation.extract(hmap)
        if incoming is None:
            decided = propagation.sampled_only(hmap)
            sampled = (random.random() < self._threshold) if decided is None else decided
            if not sampled:
                headers = [(b"traceparent", b"00-%s-%s-00" % (new_id(128).encode(), new_id(64).encode()))]
                propagation.replace_headers(head.headers, hmap, headers)
                return
            trace_id, parent_id, formats, short = new_id(128), None, propagation.W3C, False
        else:
            sampled = incoming.sampled if incoming.sampled is not None else random.random() < self._threshold
            if not sampled:
                return  # the caller's "not sampled" goes on as it came
            trace_id, parent_id = incoming.trace_id, incoming.parent_id
            formats, short = incoming.formats, incoming.b3_short
        kind = SERVER if ex.conn.listener.name in self.inbound else CLIENT
        span = Span(trace_id, new_id(64), parent_id, kind)
        ex.span = span
        headers = propagation.outgoing(trace_id, span.span_id, parent_id, True, formats, short)
        propagation.replace_headers(head.headers, hmap, headers)

    # --- end (when the exchange completes) -----------------------------------------------------

    def finish(self, ex: Exchange, span: Span) -> None:
        span.start_ns = int((ex.start + self._offset) * 1e9)
        span.end_ns = int((time.monotonic() + self._offset) * 1e9)
        if not self.report:
            return
        head = ex.head
        cluster = ex.cluster
        endpoint = ex.endpoint
        status = ex.status
        service = cluster.config.service if cluster is not None and cluster.config.service else None
        host = service or head.authority.decode(errors="replace") or "unknown"
        port = endpoint.port if span.kind == SERVER and endpoint is not None else head.port or 80
        span.name = f"{host}:{port}/*"
        span.error = status >= 500 or status == 0
        local = self._local
        authority = head.authority.decode(errors="replace")
        attrs = {
            "node_id": self.node_id,
            "component": "proxy",
            "guid:x-request-id": ex.request_id.decode(errors="replace"),
            "http.method": head.method.decode(),
            "http.url": f"http://{authority}{head.target.decode(errors='replace')}",
            "http.protocol": "HTTP/" + head.version.decode(),
            "http.status_code": str(status),
            "response_flags": ex.flags or "-",
            "upstream_cluster": cluster.name if cluster is not None else "-",
            "upstream_cluster.name": cluster.name if cluster is not None else "-",
            "downstream_cluster": "-",
            "user_agent": head.hmap.get(b"user-agent", b"-").decode(errors="replace"),
            "request_size": str(ex.body.total),
            "response_size": str(ex.response_bytes),
            "peer.address": ex.conn.peer_ip,
            "istio.canonical_service": local.canonical_service,
            "istio.canonical_revision": local.canonical_revision,
            "istio.namespace": local.namespace,
            "istio.workload": local.workload,
        }
        if endpoint is not None:
            attrs["upstream_host"] = f"{endpoint.address}:{endpoint.port}"
        principal = ex.conn.peer_principal if span.kind == SERVER else self._upstream_principal(ex)
        if principal:
            attrs["peer.principal"] = principal
        if span.error:
            attrs["error"] = "true"
        span.attributes = attrs
        self.exporter.add(span, self)

    def _upstream_principal(self, ex: Exchange) -> str | None:
        """The SPIFFE ID the upstream endpoint proves over mutual TLS, if it is dialled with it."""
        cluster, endpoint = ex.cluster, ex.endpoint
        if cluster is None or endpoint is None:
            return None
        for candidate in cluster.config.endpoints:
            if (candidate.address, candidate.port) == endpoint.key:
                if not candidate.mtls:
                    return None
                return spiffe_id(ex.config.node.trust_domain, candidate.namespace, candidate.service_account)
        return None


def start_trace(ex: Exchange) -> bool:
    """The tracing stage: start or continue the trace (one branch when tracing is off)."""
    tracer = ex.config.tracer
    if tracer is not None:
        tracer.start(ex)
    return False
