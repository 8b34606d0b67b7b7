"""Envoy's response flags: why a request or connection ended the way it did.

The short names appear in the access log (``%RESPONSE_FLAGS%``) and in the ``response_flags``
label of Istio's metrics. Several flags join with ``,`` in Envoy's own order (``ORDER``); no flag
is ``-``. Build the joined string once per outcome (e.g. at module import in the router), not per
request: it is a label value and a dict key on the metrics hot path.
"""

from __future__ import annotations

from collections.abc import Iterable

NONE = "-"

# HTTP and TCP
NO_HEALTHY_UPSTREAM = "UH"
UPSTREAM_CONNECTION_FAILURE = "UF"
UPSTREAM_OVERFLOW = "UO"
"""Circuit breaker open (cluster limits reached)."""
NO_ROUTE_FOUND = "NR"
UPSTREAM_RETRY_LIMIT_EXCEEDED = "URX"
NO_CLUSTER_FOUND = "NC"
DURATION_TIMEOUT = "DT"

# HTTP only
DOWNSTREAM_CONNECTION_TERMINATION = "DC"
FAILED_LOCAL_HEALTH_CHECK = "LH"
UPSTREAM_REQUEST_TIMEOUT = "UT"
LOCAL_RESET = "LR"
UPSTREAM_REMOTE_RESET = "UR"
UPSTREAM_CONNECTION_TERMINATION = "UC"
DELAY_INJECTED = "DI"
FAULT_INJECTED = "FI"
RATE_LIMITED = "RL"
UNAUTHORIZED_EXTERNAL_SERVICE = "UAEX"
RATELIMIT_SERVICE_ERROR = "RLSE"
STREAM_IDLE_TIMEOUT = "SI"
INVALID_ENVOY_REQUEST_HEADERS = "IH"
DOWNSTREAM_PROTOCOL_ERROR = "DPE"
UPSTREAM_PROTOCOL_ERROR = "UPE"
UPSTREAM_MAX_STREAM_DURATION_REACHED = "UMSDR"
RESPONSE_FROM_CACHE_FILTER = "RFCF"
NO_FILTER_CONFIG_FOUND = "NFCF"
OVERLOAD_MANAGER = "OM"
DNS_RESOLUTION_FAILED = "DF"
DROP_OVERLOAD = "DO"

LONG_NAMES: dict[str, str] = {
    FAILED_LOCAL_HEALTH_CHECK: "FailedLocalHealthCheck",
    NO_HEALTHY_UPSTREAM: "NoHealthyUpstream",
    UPSTREAM_REQUEST_TIMEOUT: "UpstreamRequestTimeout",
    LOCAL_RESET: "LocalReset",
    UPSTREAM_REMOTE_RESET: "UpstreamRemoteReset",
    UPSTREAM_CONNECTION_FAILURE: "UpstreamConnectionFailure",
    UPSTREAM_CONNECTION_TERMINATION: "UpstreamConnectionTermination",
    UPSTREAM_OVERFLOW: "UpstreamOverflow",
    NO_ROUTE_FOUND: "NoRouteFound",
    DELAY_INJECTED: "DelayInjected",
    FAULT_INJECTED: "FaultInjected",
    RATE_LIMITED: "RateLimited",
    UNAUTHORIZED_EXTERNAL_SERVICE: "UnauthorizedExternalService",
    RATELIMIT_SERVICE_ERROR: "RateLimitServiceError",
    DOWNSTREAM_CONNECTION_TERMINATION: "DownstreamConnectionTermination",
    UPSTREAM_RETRY_LIMIT_EXCEEDED: "UpstreamRetryLimitExceeded",
    STREAM_IDLE_TIMEOUT: "StreamIdleTimeout",
    INVALID_ENVOY_REQUEST_HEADERS: "InvalidEnvoyRequestHeaders",
    DOWNSTREAM_PROTOCOL_ERROR: "DownstreamProtocolError",
    UPSTREAM_MAX_STREAM_DURATION_REACHED: "UpstreamMaxStreamDurationReached",
    RESPONSE_FROM_CACHE_FILTER: "ResponseFromCacheFilter",
    NO_FILTER_CONFIG_FOUND: "NoFilterConfigFound",
    DURATION_TIMEOUT: "DurationTimeout",
    UPSTREAM_PROTOCOL_ERROR: "UpstreamProtocolError",
    NO_CLUSTER_FOUND: "NoClusterFound",
    OVERLOAD_MANAGER: "OverloadManagerTerminated",
    DNS_RESOLUTION_FAILED: "DnsResolutionFailed",
    DROP_OVERLOAD: "DropOverload",
}
"""Short name → Envoy's long (PascalCase) name, in Envoy's enum order."""

ORDER: tuple[str, ...] = tuple(LONG_NAMES)
_RANK = {flag: i for i, flag in enumerate(ORDER)}


def join(flags: Iterable[str]) -> str:
    """Join flags the way Envoy prints them: Envoy's order, ``,``-separated, ``-`` when none.

    Duplicates and empty strings are ignored; unknown flags sort last in the order given.
    """
    unique = list(dict.fromkeys(f for f in flags if f and f != NONE))
    if not unique:
        return NONE
    return ",".join(sorted(unique, key=lambda f: _RANK.get(f, len(ORDER))))


def split(value: str) -> tuple[str, ...]:
    """The flags in a joined string; ``-`` and ``""`` give ()."""
    if not value or value == NONE:
        return ()
    return tuple(value.split(","))
