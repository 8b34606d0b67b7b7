"""A compiled route: what the proxy does with a request once the router has picked it.

``kind`` says which action applies: ROUTE (forward to a cluster), REDIRECT or DIRECT (answer
locally). Everything is precomputed; the per-request methods are a few attribute reads, at most
a random draw and a bisect.

One CompiledRoute exists per RouteMatch of a snapshot Route (they share every action object),
because a path rewrite depends on which match matched; see rewrite.py.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable
from enum import IntEnum

from loom.proxy.codec.head import RequestHead
from loom.proxy.router.fault import CompiledFault
from loom.proxy.router.header_ops import CompiledHeaderOps
from loom.proxy.router.redirect import CompiledRedirect
from loom.proxy.router.retry_policy import CompiledRetryPolicy
from loom.proxy.router.rewrite import CompiledRewrite


class RouteKind(IntEnum):
    ROUTE = 0
    REDIRECT = 1
    DIRECT = 2


ROUTE = RouteKind.ROUTE
REDIRECT = RouteKind.REDIRECT
DIRECT = RouteKind.DIRECT


class WeightedClusters:
    """Destinations as a cumulative weight table; weight-0 destinations are left out of it."""

    __slots__ = ("clusters", "cumulative", "names", "only", "total")

    def __init__(self, destinations: list[tuple[str, int]]) -> None:
        clusters: list[str] = []
        for name, _ in destinations:
            if name not in clusters:
                clusters.append(name)
        self.clusters: tuple[str, ...] = tuple(clusters)
        """Every destination cluster named, in order, including weight-0 ones."""
        names: list[str] = []
        cumulative: list[int] = []
        total = 0
        for name, weight in destinations:
            if weight > 0:
                total += weight
                names.append(name)
                cumulative.append(total)
        if not names:
            raise ValueError("no destination has a positive weight")
        self.names = tuple(names)
        self.cumulative = tuple(cumulative)
        self.total = total
        self.only: str | None = names[0] if len(set(names)) == 1 else None


class CompiledRoute:
    __slots__ = (
        "_cumulative",
        "_names",
        "_only",
        "_random",
        "_total",
        "clusters",
        "direct_response",
        "fault",
        "kind",
        "mirror_cluster",
        "mirror_fraction",
        "name",
        "redirect",
        "request_headers",
        "response_headers",
        "retry",
        "rewrite",
        "timeout",
    )

    def __init__(
        self,
        *,
        name: str,
        kind: RouteKind,
        destinations: WeightedClusters | None = None,
        timeout: float | None = None,
        retry: CompiledRetryPolicy | None = None,
        rewrite: CompiledRewrite | None = None,
        mirror_cluster: str | None = None,
        mirror_fraction: float = 0.0,
        redirect: CompiledRedirect | None = None,
        direct_response: tuple[int, bytes] | None = None,
        fault: CompiledFault | None = None,
        request_headers: CompiledHeaderOps | None = None,
        response_headers: CompiledHeaderOps | None = None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.name = name
        self.kind = kind
        if destinations is not None:
            self.clusters: tuple[str, ...] = destinations.clusters
            self._names: tuple[str, ...] = destinations.names
            self._cumulative: tuple[int, ...] = destinations.cumulative
            self._total = destinations.total
            self._only = destinations.only
        else:
            self.clusters = self._names = self._cumulative = ()
            self._total = 0
            self._only = None
        self.timeout = timeout or None
        self.retry = retry
        """None: the route sets no retries (the cluster's default_retry applies)."""
        self.rewrite = rewrite
        self.mirror_cluster = mirror_cluster
        self.mirror_fraction = mirror_fraction if mirror_cluster is not None else 0.0
        self.redirect = redirect
        self.direct_response = direct_response
        """(status, body) for DIRECT routes."""
        self.fault = fault
        self.request_headers = request_headers
        self.response_headers = response_headers
        self._random = rand

    def pick_cluster(self) -> str:
        only = self._only
        if only is not None:
            return only
        if not self._names:
            raise RuntimeError(f"route {self.name!r} is a {self.kind.name} route and has no clusters")
        return self._names[bisect_right(self._cumulative, self._random() * self._total)]

    def should_mirror(self) -> bool:
        f = self.mirror_fraction
        return f > 0.0 and (f >= 1.0 or self._random() < f)

    def rewrite_path(self, path: bytes) -> bytes:
        rewrite = self.rewrite
        return path if rewrite is None else rewrite.path(path)

    def apply_rewrite(self, head: RequestHead) -> None:
        rewrite = self.rewrite
        if rewrite is not None:
            rewrite.apply(head)

    def redirect_location(self, head: RequestHead) -> tuple[int, bytes]:
        """(status, absolute Location) for a REDIRECT route."""
        redirect = self.redirect
        if redirect is None:
            raise RuntimeError(f"route {self.name!r} is a {self.kind.name} route, not a redirect")
        return redirect.location(head)

    def __repr__(self) -> str:
        return f"<CompiledRoute {self.name!r} {self.kind.name} clusters={self.clusters}>"
