"""All of a proxy's metrics, and their Prometheus exposition."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from loom.proxy.telemetry.exposition import check_label_names, check_metric_name
from loom.proxy.telemetry.peers import PeerInfo
from loom.proxy.telemetry.registry import Counter, Gauge
from loom.proxy.telemetry.standard import IstioMetrics
from loom.snapshot.model import Node

PREFIX = "loom_"

_Family = TypeVar("_Family", Counter, Gauge)


class MeshMetrics(IstioMetrics):
    """Istio's standard metrics for traffic plus ``loom_*`` counters and gauges for internals.

    Not thread-safe by design: record and render on the event loop's thread.
    """

    __slots__ = ("_families", "_local", "_local_mtls", "node")

    def __init__(self, node: Node) -> None:
        super().__init__()
        self.node = node
        self._local = PeerInfo.from_node(node)
        self._local_mtls = PeerInfo.from_node(node, mtls=True)
        self._families: dict[str, Counter | Gauge] = {}

    def local_peer(self, *, mtls: bool = False) -> PeerInfo:
        """This proxy's workload as a metrics peer; with ``mtls`` its SPIFFE ID is the principal."""
        return self._local_mtls if mtls else self._local

    # --- the proxy's own metrics -------------------------------------------------------------

    def counter(self, name: str, help: str, labels: tuple[str, ...] = ()) -> Counter:
        """A ``loom_``-prefixed counter; registering the same name and labels again returns it."""
        return self._register(Counter, name, help, labels)

    def gauge(self, name: str, help: str, labels: tuple[str, ...] = ()) -> Gauge:
        """A ``loom_``-prefixed gauge; children may ``set_function`` to be read at scrape time."""
        return self._register(Gauge, name, help, labels)

    def gauge_fn(self, name: str, help: str, fn: Callable[[], float]) -> Gauge:
        """An unlabelled gauge whose value is ``fn()`` at scrape time."""
        gauge = self.gauge(name, help)
        gauge.set_function(fn)
        return gauge

    def _register(self, kind: type[_Family], name: str, help_text: str, labels: tuple[str, ...]) -> _Family:
        full = name if name.startswith(PREFIX) else PREFIX + name
        check_metric_name(full)
        label_names = check_label_names(labels)
        existing = self._families.get(full)
        if existing is not None:
            if not isinstance(existing, kind) or existing.label_names != label_names:
                raise ValueError(
                    f"{full} is already registered as a {existing.kind} with labels {existing.label_names}"
                )
            return existing
        family = kind(full, help_text, label_names)
        self._families[full] = family
        return family

    # --- exposition --------------------------------------------------------------------------

    def render(self) -> bytes:
        """Every metric in Prometheus text format 0.0.4 (see ``exposition.CONTENT_TYPE``)."""
        out: list[str] = []
        self.render_into(out)
        for family in self._families.values():
            family.render_into(out)
        return "".join(out).encode()
