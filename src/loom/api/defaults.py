"""The values Istio, the Gateway API and Kubernetes use when a field is absent.

The loader keeps absent fields absent (``None`` or empty); the compiler applies these, so an
analyzer can still tell "left out" from "written". Each constant says where it comes from:
Istio's reference (``networking/v1alpha3/*.proto``, ``mesh/v1alpha1/config.proto`` and
``proxy.proto``), the Gateway API's ``httproute_types.go``, or the Kubernetes API. Durations are
seconds; "unlimited" limits are Envoy's 2^32-1.
"""

from __future__ import annotations

from typing import Final

UNLIMITED: Final = 2**32 - 1

# --- Kubernetes --------------------------------------------------------------------------------

NAMESPACE: Final = "default"  # kubectl: an object without metadata.namespace goes to `default`
SERVICE_PORT_PROTOCOL: Final = "TCP"  # Service ports; targetPort defaults to the port itself

# --- Mesh (IstioOperator meshConfig) ------------------------------------------------------------

ROOT_NAMESPACE: Final = "loom-system"  # Istio's is istio-system; Loom's own control-plane namespace
ISTIO_ROOT_NAMESPACE: Final = "istio-system"
TRUST_DOMAIN: Final = "cluster.local"  # MeshConfig.trustDomain
ENABLE_TRACING: Final = True  # MeshConfig.enableTracing (Istio's default mesh config)
TRACING_SAMPLING_PERCENT: Final = 1.0  # ProxyConfig.tracing.sampling: "Default is 1.0" (percent)
ISTIO_ZIPKIN_ADDRESS: Final = "zipkin.istio-system:9411"  # ProxyConfig.tracing.zipkin.address
ACCESS_LOG_FILE: Final = ""  # MeshConfig.accessLogFile: empty disables access logging
ACCESS_LOG_ENCODING: Final = "TEXT"  # MeshConfig.accessLogEncoding
CONNECT_TIMEOUT: Final = 10.0  # MeshConfig.connectTimeout
MESH_MTLS_MODE: Final = "PERMISSIVE"  # PeerAuthentication: UNSET inherits; the mesh-wide default

# --- VirtualService ----------------------------------------------------------------------------

HTTP_TIMEOUT: Final = None  # HTTPRoute.timeout: "default is disabled" (no timeout)
RETRY_ATTEMPTS: Final = 2  # MeshConfig.defaultHttpRetryPolicy: "set at 2"
# Istio's default retryOn is "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
# with 503 as the retriable status code; in VirtualService syntax a status code is written directly.
RETRY_ON: Final = "connect-failure,refused-stream,unavailable,cancelled,503"
RETRY_PER_TRY_TIMEOUT: Final = None  # HTTPRetry.perTryTimeout: the route's timeout, i.e. none
RETRY_REMOTE_LOCALITIES: Final = False
SINGLE_DESTINATION_WEIGHT: Final = 100  # one destination gets all traffic whatever its weight
REDIRECT_CODE: Final = 301  # HTTPRedirect.redirectCode: MOVED_PERMANENTLY
MIRROR_PERCENTAGE: Final = 100.0  # HTTPRoute.mirrorPercentage: "absent: all traffic is mirrored"

# --- DestinationRule ---------------------------------------------------------------------------

LOAD_BALANCER: Final = "LEAST_REQUEST"  # LoadBalancerSettings: UNSPECIFIED → Istio picks LEAST_REQUEST
RING_HASH_MINIMUM_RING_SIZE: Final = 1024  # ConsistentHashLB.RingHash.minimumRingSize
MAGLEV_TABLE_SIZE: Final = 65537  # ConsistentHashLB.MagLev.tableSize

TCP_MAX_CONNECTIONS: Final = UNLIMITED  # ConnectionPoolSettings.tcp.maxConnections
TCP_CONNECT_TIMEOUT: Final = 10.0  # ConnectionPoolSettings.tcp.connectTimeout
HTTP1_MAX_PENDING_REQUESTS: Final = UNLIMITED  # ...http.http1MaxPendingRequests
HTTP2_MAX_REQUESTS: Final = UNLIMITED  # ...http.http2MaxRequests
MAX_REQUESTS_PER_CONNECTION: Final = 0  # ...http.maxRequestsPerConnection: 0 = unlimited
MAX_RETRIES: Final = UNLIMITED  # ...http.maxRetries (outstanding retries to the cluster)
HTTP_IDLE_TIMEOUT: Final = 3600.0  # ...http.idleTimeout: "If not set, the default is 1 hour"
MAX_CONCURRENT_STREAMS: Final = 2**31 - 1  # ...http.maxConcurrentStreams
H2_UPGRADE_POLICY: Final = "DEFAULT"  # ...http.h2UpgradePolicy: follow the mesh setting

# OutlierDetection applies only when the field is present; then absent sub-fields take these.
OUTLIER_CONSECUTIVE_5XX_ERRORS: Final = 5
OUTLIER_CONSECUTIVE_GATEWAY_ERRORS: Final = 0  # 0 = disabled
OUTLIER_CONSECUTIVE_LOCAL_ORIGIN_FAILURES: Final = 5
OUTLIER_INTERVAL: Final = 10.0
OUTLIER_BASE_EJECTION_TIME: Final = 30.0
OUTLIER_MAX_EJECTION_PERCENT: Final = 10
OUTLIER_MIN_HEALTH_PERCENT: Final = 0

RETRY_BUDGET_PERCENT: Final = 20.0  # TrafficPolicy.retryBudget.percent (Istio 1.27+)
RETRY_BUDGET_MIN_RETRY_CONCURRENCY: Final = 3  # TrafficPolicy.retryBudget.minRetryConcurrency

# --- Security ----------------------------------------------------------------------------------

AUTHORIZATION_ACTION: Final = "ALLOW"  # AuthorizationPolicy.action
JWT_FROM_HEADER: Final = "Authorization"  # JWTRule: token read from `Authorization: Bearer <token>`
JWT_FROM_HEADER_PREFIX: Final = "Bearer "
JWT_FROM_PARAM: Final = "access_token"  # ... or from the `access_token` query parameter
JWKS_FETCH_TIMEOUT: Final = 5.0  # JWTRule.timeout

# --- Gateway API HTTPRoute ---------------------------------------------------------------------

PARENT_REF_GROUP: Final = "gateway.networking.k8s.io"  # ParentReference.group (GAMMA writes "")
PARENT_REF_KIND: Final = "Gateway"  # ParentReference.kind (GAMMA writes Service)
BACKEND_REF_GROUP: Final = ""  # core
BACKEND_REF_KIND: Final = "Service"
BACKEND_REF_WEIGHT: Final = 1
PATH_MATCH_TYPE: Final = "PathPrefix"
PATH_MATCH_VALUE: Final = "/"  # a rule without matches matches every request (PathPrefix /)
HEADER_MATCH_TYPE: Final = "Exact"
QUERY_PARAM_MATCH_TYPE: Final = "Exact"
REQUEST_REDIRECT_STATUS_CODE: Final = 302
MIRROR_FRACTION_DENOMINATOR: Final = 100
