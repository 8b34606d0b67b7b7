"""Tap: one record per finished request, kept only while the control plane asks for it.

While a ``loom tap`` (or ``loom top``) session wants this proxy, the control plane answers its
telemetry push with ``"tap": true`` and ``TAP.active`` is set; ``ProxyConfig.record`` then hands
every finished exchange to ``TAP.record``. With tap off the request path pays one attribute test.
Events wait in a bounded ring (the oldest are dropped) until the next push takes them.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from loom.proxy.telemetry.peers import UNKNOWN
from loom.snapshot.model import Node
from loom.snapshot.security import principal_namespace, spiffe_id

RING_SIZE = 1000
"""The most events held between two pushes (0.5 s apart while tapping)."""


def _text(value: bytes | None) -> str:
    return value.decode("latin-1") if value else ""


def trace_id(hmap: dict[bytes, bytes]) -> str:
    """The trace a request belongs to: W3C ``traceparent``'s trace id, else B3's; empty if none."""
    parent = hmap.get(b"traceparent")
    if parent:
        parts = parent.split(b"-")
        if len(parts) >= 2:
            return _text(parts[1])
    return _text(hmap.get(b"x-b3-traceid"))


class TapRecorder:
    __slots__ = ("active", "dropped", "events")

    def __init__(self, size: int = RING_SIZE) -> None:
        self.active = False
        self.events: deque[dict[str, object]] = deque(maxlen=size)
        self.dropped = 0

    def set_active(self, active: bool) -> None:
        if not active:
            self.events.clear()
        self.active = active

    def take(self) -> list[dict[str, object]]:
        """The events recorded since the last call."""
        events = list(self.events)
        self.events.clear()
        return events

    def record(self, node: Node, inbound: bool, ex: Any, flags: str, duration_ms: float) -> None:
        """One finished exchange (``loom.proxy.http.exchange.Exchange``: not imported, the agent
        imports this module) as a tap event; never raises into the request path."""
        try:
            self.events.append(_event(node, inbound, ex, flags, duration_ms))
        except Exception:
            self.dropped += 1


def _event(node: Node, inbound: bool, ex: Any, flags: str, duration_ms: float) -> dict[str, object]:
    head = ex.head
    cluster = ex.cluster
    service = cluster.config.service if cluster is not None else UNKNOWN
    own_principal = spiffe_id(node.trust_domain, node.namespace, node.service_account)
    if inbound:
        peer = ex.conn.peer_principal
        source = (UNKNOWN, (principal_namespace(peer) if peer else None) or UNKNOWN, peer or UNKNOWN)
        destination = (node.workload, node.namespace, own_principal if peer else UNKNOWN)
    else:
        endpoint = ex.endpoint
        mtls = endpoint is not None and endpoint.mtls
        source = (node.workload, node.namespace, own_principal if mtls else UNKNOWN)
        if endpoint is None:
            destination = (UNKNOWN, UNKNOWN, UNKNOWN)
        else:
            principal = (
                spiffe_id(node.trust_domain, endpoint.namespace, endpoint.service_account)
                if mtls and endpoint.service_account != UNKNOWN
                else UNKNOWN
            )
            destination = (endpoint.workload, endpoint.namespace, principal)
    return {
        "time": round(time.time() - duration_ms / 1000.0, 3),
        "direction": "inbound" if inbound else "outbound",
        "reporter": "destination" if inbound else "source",
        "source_workload": source[0],
        "source_namespace": source[1],
        "source_principal": source[2],
        "destination_workload": destination[0],
        "destination_namespace": destination[1],
        "destination_principal": destination[2],
        "destination_service": service,
        "method": _text(head.method),
        "authority": _text(head.authority),
        "path": _text(head.path + (b"?" + head.query if head.query else b"")),  # origin-form, always
        "status": ex.status,
        "latency_ms": round(duration_ms, 3),
        "response_flags": flags,
        "request_id": _text(ex.request_id),
        "trace_id": trace_id(head.hmap),
    }


TAP = TapRecorder()
"""The process's one recorder (its state outlives every ``ProxyConfig``)."""
