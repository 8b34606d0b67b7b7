"""A snapshot compiled for serving: route tables, live clusters, telemetry — swapped in one assignment.

Requests keep the ProxyConfig they started with, so a swap never changes a request mid-way.
A cluster whose configuration is unchanged carries its runtime (pools, outlier state, retry
budget) over to the new ProxyConfig.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from loom.proxy.authn import JwtAuthenticator, compile_jwt_rules
from loom.proxy.authz.lazy import compile_authorizer
from loom.proxy.router import CompiledRetryPolicy, RouteTable, compile_route_config
from loom.proxy.telemetry import REPORTER_DESTINATION, REPORTER_SOURCE, AccessLogEntry, PeerInfo
from loom.proxy.telemetry.peers import MUTUAL_TLS
from loom.proxy.telemetry.tap import TAP
from loom.proxy.tracing.tracer import Tracer
from loom.proxy.upstream.cluster import ClusterRuntime
from loom.snapshot.model import Direction, Snapshot

if TYPE_CHECKING:
    from loom.proxy.codec.errors import ProtocolError
    from loom.proxy.http.downstream import DownstreamConnection
    from loom.proxy.http.exchange import Exchange
    from loom.proxy.http.listener import HttpListener
    from loom.proxy.identity.store import IdentityStore
    from loom.proxy.telemetry import AccessLogger, MeshMetrics, SeriesHandle
    from loom.proxy.tracing.export import SpanExporter

NO_FLAGS = "-"


class ProxyConfig:
    def __init__(
        self,
        snapshot: Snapshot,
        previous: ProxyConfig | None,
        metrics: MeshMetrics,
        access_log: AccessLogger | None,
        identity: IdentityStore | None = None,
        spans: SpanExporter | None = None,
    ) -> None:
        self.snapshot = snapshot
        self.version = snapshot.version
        self.node = snapshot.node
        self.metrics = metrics if snapshot.telemetry.metrics else None
        self.access_log = access_log
        tracing = snapshot.telemetry.tracing
        self.tracer = Tracer(snapshot, tracing, spans) if tracing is not None and spans is not None else None
        """Distributed tracing (None: off, and trace headers pass through untouched)."""
        self.route_tables: dict[str, RouteTable] = {
            rc.name: compile_route_config(rc, snapshot.node) for rc in snapshot.route_configs
        }
        self.jwt_authn: JwtAuthenticator | None = compile_jwt_rules(snapshot.security.jwt_rules)
        """RequestAuthentication (None without JWT rules); verified tokens are cached per config."""
        self.authorizer = compile_authorizer(snapshot.security.authorization)
        """AuthorizationPolicy, compiled; inbound listeners ask it about every request and connection."""
        old = previous.clusters if previous is not None else {}
        self.clusters: dict[str, ClusterRuntime] = {}
        for cluster in snapshot.clusters:
            kept = old.get(cluster.name)
            self.clusters[cluster.name] = (
                kept
                if kept is not None and kept.config == cluster
                else ClusterRuntime(cluster, identity=identity)
            )
        self.retired = [c for name, c in old.items() if self.clusters.get(name) is not c]
        self._default_retries = {
            c.name: CompiledRetryPolicy(c.default_retry) for c in snapshot.clusters if c.default_retry
        }
        self._local = PeerInfo.from_node(snapshot.node)
        self._local_mtls = PeerInfo.from_node(snapshot.node, mtls=True)
        self._local_series: dict[tuple[str, str], SeriesHandle] = {}
        self._inbound_listeners = {
            item.name for item in snapshot.listeners if item.direction is Direction.INBOUND
        }

    def default_retry(self, cluster: ClusterRuntime) -> CompiledRetryPolicy | None:
        return self._default_retries.get(cluster.name)

    # telemetry ---------------------------------------------------------------------------

    def record(self, ex: Exchange) -> None:
        """Golden metrics and the access log for one finished exchange (and a tap event while
        the control plane taps this proxy), and its span when it is sampled."""
        span = ex.span
        if span is not None:
            self.tracer.finish(ex, span)  # type: ignore[union-attr]
        metrics = self.metrics
        access_log = self.access_log
        tapped = TAP.active
        if metrics is None and access_log is None and not tapped:
            return
        duration_ms = (time.monotonic() - ex.start) * 1000.0
        flags = ex.flags or NO_FLAGS
        if tapped:
            TAP.record(self.node, ex.conn.listener.name in self._inbound_listeners, ex, flags, duration_ms)
        if metrics is not None:
            series = self._series(ex)
            metrics.record_request(series, ex.status, flags, duration_ms, ex.body.total, ex.response_bytes)
        if access_log is not None:
            access_log.log(self._entry(ex, flags, duration_ms))

    def record_protocol_error(
        self, listener: HttpListener, conn: DownstreamConnection, error: ProtocolError
    ) -> None:
        if self.metrics is not None:
            series = self._local_series_for(listener.name in self._inbound_listeners, "unknown")
            self.metrics.record_request(series, error.status, "DPE", 0.0, 0, 0)
        if self.access_log is not None:
            self.access_log.log(
                AccessLogEntry(
                    start_time=time.time(),
                    response_code=error.status,
                    response_flags="DPE",
                    response_code_details=error.reason,
                    downstream_remote_address=f"{conn.peer_ip}:{conn.peer_port}",
                )
            )

    def _series(self, ex: Exchange) -> SeriesHandle:
        inbound = ex.conn.listener.name in self._inbound_listeners
        cluster = ex.cluster
        if cluster is None:
            return self._local_series_for(inbound, "unknown")
        endpoint = ex.endpoint
        if inbound:
            key: object = ex.conn.peer_principal  # one series per calling identity (None: plaintext)
        else:
            key = endpoint.key if endpoint is not None else None
        series = cluster.series.get(key)
        if series is None:
            series = self._new_series(inbound, cluster, key)
            cluster.series[key] = series
        return series  # type: ignore[return-value]

    def _new_series(self, inbound: bool, cluster: ClusterRuntime, key: object) -> SeriesHandle:
        assert self.metrics is not None
        service = cluster.config.service
        if inbound:
            principal = key if isinstance(key, str) else None
            return self.metrics.request_series(
                reporter=REPORTER_DESTINATION,
                source=PeerInfo.from_principal(principal) if principal else PeerInfo(),
                destination=self._local_mtls if principal else self._local,
                destination_service=service,
                connection_security_policy=MUTUAL_TLS if principal else None,
            )
        endpoint = next((e for e in cluster.config.endpoints if (e.address, e.port) == key), None)
        mtls = endpoint is not None and endpoint.mtls
        destination = (
            PeerInfo.from_endpoint(endpoint, trust_domain=self.node.trust_domain, mtls=mtls)
            if endpoint is not None
            else PeerInfo()
        )
        return self.metrics.request_series(
            reporter=REPORTER_SOURCE,
            source=self._local_mtls if mtls else self._local,
            destination=destination,
            destination_service=service,
        )

    def _local_series_for(self, inbound: bool, service: str) -> SeriesHandle:
        key = ("destination" if inbound else "source", service)
        series = self._local_series.get(key)
        if series is None:
            assert self.metrics is not None
            series = self.metrics.request_series(
                reporter=REPORTER_DESTINATION if inbound else REPORTER_SOURCE,
                source=PeerInfo() if inbound else self._local,
                destination=self._local if inbound else PeerInfo(),
                destination_service=service,
            )
            self._local_series[key] = series
        return series

    def _entry(self, ex: Exchange, flags: str, duration_ms: float) -> AccessLogEntry:
        head = ex.head
        endpoint = ex.endpoint
        route = ex.route
        entry = AccessLogEntry(
            start_time=time.time() - duration_ms / 1000.0,
            method=head.method,
            path=head.target,
            protocol=b"HTTP/" + head.version,
            response_code=ex.status,
            response_flags=flags,
            bytes_received=ex.body.total,
            bytes_sent=ex.response_bytes,
            duration_ms=duration_ms,
            upstream_service_time_ms=(time.monotonic() - ex.try_started) * 1000.0 if ex.try_started else None,
            x_forwarded_for=head.hmap.get(b"x-forwarded-for"),
            user_agent=head.hmap.get(b"user-agent"),
            request_id=ex.request_id or None,
            authority=head.authority,
            upstream_host=f"{endpoint.address}:{endpoint.port}" if endpoint is not None else None,
            upstream_cluster=ex.cluster.name if ex.cluster is not None else None,
            route_name=route.name if route is not None else None,
            downstream_remote_address=f"{ex.conn.peer_ip}:{ex.conn.peer_port}",
        )
        authz = ex.authz
        if authz is not None:  # inbound, with authorization policies
            entry.response_code_details = authz.details
            entry.audit_policy = authz.audit_policy
        return entry
