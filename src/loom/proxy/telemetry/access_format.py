"""One access log line per request, in Istio's default JSON or TEXT format.

The fields are those of Istio's default JSON access log; TEXT is Istio's default text format
(Envoy's default with the response details and addresses added). Unset values print as ``null``
in JSON and ``-`` in TEXT, as Envoy does. One addition: a request an AUDIT authorization policy
matched carries ``audit_policy`` in JSON (the key is left out otherwise, so every other line is
Istio's exactly); the TEXT line stays Istio's.
"""

from __future__ import annotations

import time
from json.encoder import encode_basestring  # the C encoder when available
from operator import attrgetter
from typing import NamedTuple

Text = str | bytes | None


class AccessLogEntry:
    """What the server knows about one finished request (or TCP connection).

    Header-derived fields take bytes as parsed, so nothing is decoded unless a line is written.
    """

    __slots__ = (
        "audit_policy",
        "authority",
        "bytes_received",
        "bytes_sent",
        "connection_termination_details",
        "downstream_local_address",
        "downstream_remote_address",
        "duration_ms",
        "method",
        "path",
        "protocol",
        "request_id",
        "requested_server_name",
        "response_code",
        "response_code_details",
        "response_flags",
        "route_name",
        "start_time",
        "upstream_cluster",
        "upstream_host",
        "upstream_local_address",
        "upstream_service_time_ms",
        "upstream_transport_failure_reason",
        "user_agent",
        "x_forwarded_for",
    )

    def __init__(
        self,
        *,
        start_time: float = 0.0,
        method: Text = None,
        path: Text = None,
        protocol: Text = None,
        response_code: int = 0,
        response_flags: str = "-",
        response_code_details: Text = None,
        connection_termination_details: Text = None,
        bytes_received: int = 0,
        bytes_sent: int = 0,
        duration_ms: float = 0.0,
        upstream_service_time_ms: float | None = None,
        x_forwarded_for: Text = None,
        user_agent: Text = None,
        request_id: Text = None,
        authority: Text = None,
        upstream_host: Text = None,
        upstream_cluster: Text = None,
        upstream_local_address: Text = None,
        downstream_local_address: Text = None,
        downstream_remote_address: Text = None,
        requested_server_name: Text = None,
        upstream_transport_failure_reason: Text = None,
        route_name: Text = None,
        audit_policy: str | None = None,
    ) -> None:
        self.start_time = start_time
        """Wall-clock time the request started, seconds since the epoch (``time.time()``)."""
        self.method = method
        self.path = path
        """As received (Envoy logs x-envoy-original-path when a rewrite happened)."""
        self.protocol = protocol
        """``HTTP/1.1``, ``HTTP/2``; None for TCP."""
        self.response_code = response_code
        """0 when no response was sent (e.g. the client went away)."""
        self.response_flags = response_flags
        self.response_code_details = response_code_details
        """Why this status, e.g. ``via_upstream``, ``route_not_found``."""
        self.connection_termination_details = connection_termination_details
        self.bytes_received = bytes_received
        """Body bytes received from the downstream peer."""
        self.bytes_sent = bytes_sent
        """Body bytes sent to the downstream peer."""
        self.duration_ms = duration_ms
        """From the start of the request to its last byte out."""
        self.upstream_service_time_ms = upstream_service_time_ms
        """The upstream's time to respond (Envoy's x-envoy-upstream-service-time)."""
        self.x_forwarded_for = x_forwarded_for
        self.user_agent = user_agent
        self.request_id = request_id
        self.authority = authority
        self.upstream_host = upstream_host
        """``ip:port`` of the endpoint the request went to."""
        self.upstream_cluster = upstream_cluster
        self.upstream_local_address = upstream_local_address
        self.downstream_local_address = downstream_local_address
        self.downstream_remote_address = downstream_remote_address
        self.requested_server_name = requested_server_name
        """TLS SNI."""
        self.upstream_transport_failure_reason = upstream_transport_failure_reason
        self.route_name = route_name
        self.audit_policy = audit_policy
        """The AUDIT authorization policy that matched (``namespace/name``), if one did."""

    def __repr__(self) -> str:
        return f"<AccessLogEntry {self.method!r} {self.path!r} {self.response_code}>"


# One spare entry: a float a hair under the next second can round up to 1000 ms.
_MILLIS = (*(f".{ms:03d}Z" for ms in range(1000)), ".999Z")


class _UtcClock:
    """ISO 8601 with milliseconds (Envoy's ``%START_TIME%``); the seconds part is cached."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def iso(self, t: float) -> str:
        second = int(t)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return self._prefix + _MILLIS[int((t - second) * 1000)]


_clock = _UtcClock()


def _json(value: Text) -> str:
    if not value:
        return "null"
    if type(value) is bytes:
        value = value.decode("utf-8", "replace")
    return encode_basestring(value)


def _text(value: Text) -> str:
    if not value:
        return "-"
    if type(value) is bytes:
        return value.decode("utf-8", "replace")
    return value


def _service_time(value: float | None) -> str | None:
    return None if value is None else str(int(value))


class _Texts(NamedTuple):
    """The entry's text fields, each already rendered for one format (JSON or TEXT)."""

    authority: str
    termination: str
    local: str
    remote: str
    method: str
    path: str
    protocol: str
    request_id: str
    sni: str
    details: str
    route: str
    cluster: str
    upstream: str
    upstream_local: str
    failure: str
    user_agent: str
    xff: str


_TEXT_FIELDS = attrgetter(
    "authority",
    "connection_termination_details",
    "downstream_local_address",
    "downstream_remote_address",
    "method",
    "path",
    "protocol",
    "request_id",
    "requested_server_name",
    "response_code_details",
    "route_name",
    "upstream_cluster",
    "upstream_host",
    "upstream_local_address",
    "upstream_transport_failure_reason",
    "user_agent",
    "x_forwarded_for",
)

# One f-string per format: with two dozen fields, %-formatting or a dict costs several times more.


def format_json(e: AccessLogEntry) -> str:
    """Istio's default JSON fields, keys sorted as Envoy prints them."""
    t = _Texts._make(map(_json, _TEXT_FIELDS(e)))
    service_time = _json(_service_time(e.upstream_service_time_ms))
    audit = e.audit_policy
    start = f'{{"audit_policy":{encode_basestring(audit)},' if audit else "{"
    return (
        f'{start}"authority":{t.authority},"bytes_received":{int(e.bytes_received)},'
        f'"bytes_sent":{int(e.bytes_sent)},"connection_termination_details":{t.termination},'
        f'"downstream_local_address":{t.local},"downstream_remote_address":{t.remote},'
        f'"duration":{int(e.duration_ms)},"method":{t.method},"path":{t.path},"protocol":{t.protocol},'
        f'"request_id":{t.request_id},"requested_server_name":{t.sni},"response_code":{int(e.response_code)},'
        f'"response_code_details":{t.details},"response_flags":{encode_basestring(e.response_flags or "-")},'
        f'"route_name":{t.route},"start_time":"{_clock.iso(e.start_time)}","upstream_cluster":{t.cluster},'
        f'"upstream_host":{t.upstream},"upstream_local_address":{t.upstream_local},'
        f'"upstream_service_time":{service_time},"upstream_transport_failure_reason":{t.failure},'
        f'"user_agent":{t.user_agent},"x_forwarded_for":{t.xff}}}\n'
    )


def format_text(e: AccessLogEntry) -> str:
    """Istio's default TEXT format."""
    t = _Texts._make(map(_text, _TEXT_FIELDS(e)))
    service_time = _text(_service_time(e.upstream_service_time_ms))
    return (
        f'[{_clock.iso(e.start_time)}] "{t.method} {t.path} {t.protocol}" {int(e.response_code)} '
        f'{e.response_flags or "-"} {t.details} {t.termination} "{t.failure}" {int(e.bytes_received)} '
        f"{int(e.bytes_sent)} {int(e.duration_ms)} {service_time} "
        f'"{t.xff}" "{t.user_agent}" "{t.request_id}" "{t.authority}" "{t.upstream}" '
        f"{t.cluster} {t.upstream_local} {t.local} {t.remote} {t.sni} {t.route}\n"
    )
