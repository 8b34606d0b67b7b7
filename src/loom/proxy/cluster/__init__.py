"""Cluster algorithms of the proxy: load balancing, outlier detection, retry budgets.

All of it is pure and socket-free: the server feeds in responses, latencies and the time.
"""

from loom.proxy.cluster.budget import RetryBudget
from loom.proxy.cluster.endpoint import DEFAULT_RTT_S, EWMA_TAU_S, EndpointState
from loom.proxy.cluster.hashing import hash_key, new_hash_cookie
from loom.proxy.cluster.lb import Balancer, make_balancer
from loom.proxy.cluster.outlier import CONSECUTIVE_5XX, CONSECUTIVE_GATEWAY_ERRORS, OutlierDetector

__all__ = [
    "CONSECUTIVE_5XX",
    "CONSECUTIVE_GATEWAY_ERRORS",
    "DEFAULT_RTT_S",
    "EWMA_TAU_S",
    "Balancer",
    "EndpointState",
    "OutlierDetector",
    "RetryBudget",
    "hash_key",
    "make_balancer",
    "new_hash_cookie",
]
