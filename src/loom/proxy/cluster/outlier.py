"""Outlier detection: eject endpoints that keep failing, bring them back after a while.

Semantics follow Envoy's (and so Istio's ``outlierDetection``):

- Each response updates two run counters of the endpoint. A 5xx extends the 5xx run; a 502,
  503 or 504 also extends the gateway-error run, other 5xx end it; anything else ends both.
  A failure of our own (connect failure, reset, timeout) counts as a 503.
- A run reaching its threshold (None or 0: check off) ejects the endpoint at once and
  restarts that run. The ejection is skipped when it would take the ejected share of the
  cluster over ``max_ejection_percent``, except that one endpoint may always be ejected.
- An ejection lasts ``base_ejection_time`` × the endpoint's multiplier, capped at
  max(300 s, base_ejection_time). The multiplier rises by one per ejection and falls by one
  for every ``interval`` the endpoint then stays healthy, so flapping endpoints stay out longer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from loom.proxy.cluster.endpoint import EndpointState
from loom.snapshot.model import OutlierDetection

CONSECUTIVE_5XX = "consecutive_5xx"
CONSECUTIVE_GATEWAY_ERRORS = "consecutive_gateway_errors"
DEFAULT_MAX_EJECTION_TIME_S = 300.0


class OutlierDetector:
    __slots__ = (
        "_base",
        "_gateway_threshold",
        "_interval",
        "_max_multiplier",
        "_max_percent",
        "_max_time",
        "_threshold_5xx",
        "ejections_overflow",
        "ejections_total",
    )

    def __init__(self, cfg: OutlierDetection) -> None:
        self._threshold_5xx = cfg.consecutive_5xx or 0
        self._gateway_threshold = cfg.consecutive_gateway_errors or 0
        self._interval = cfg.interval
        self._base = cfg.base_ejection_time
        self._max_percent = cfg.max_ejection_percent
        self._max_time = max(DEFAULT_MAX_EJECTION_TIME_S, self._base)
        # Past this multiplier the cap decides the duration; stopping there lets a
        # recovered endpoint's multiplier come down in a bounded number of intervals.
        self._max_multiplier = max(1, math.ceil(self._max_time / self._base)) if self._base > 0 else 1
        self.ejections_total = 0
        self.ejections_overflow = 0
        """Ejections skipped because of max_ejection_percent."""

    def record(
        self, ep: EndpointState, status: int | None, now: float, endpoints: Sequence[EndpointState]
    ) -> None:
        """Account one response from ``ep``: its HTTP status, or None for a local failure."""
        if status is not None and not 500 <= status <= 599:
            ep.consecutive_5xx = 0
            ep.consecutive_gateway_errors = 0
            return
        if status is None or 502 <= status <= 504:
            ep.consecutive_gateway_errors += 1
            threshold = self._gateway_threshold
            if threshold and ep.consecutive_gateway_errors >= threshold:
                ep.consecutive_gateway_errors = 0
                self._eject(ep, CONSECUTIVE_GATEWAY_ERRORS, now, endpoints)
        else:
            ep.consecutive_gateway_errors = 0
        ep.consecutive_5xx += 1
        threshold = self._threshold_5xx
        if threshold and ep.consecutive_5xx >= threshold:
            ep.consecutive_5xx = 0
            self._eject(ep, CONSECUTIVE_5XX, now, endpoints)

    def tick(self, now: float, endpoints: Sequence[EndpointState]) -> None:
        """The periodic sweep, every ``interval``: return endpoints whose ejection is over and
        lower the multiplier of those that have stayed healthy for an interval."""
        for ep in endpoints:
            ejected_at = ep.ejected_at
            if ejected_at is not None:
                if now - ejected_at >= self.ejection_duration(ep):
                    self._uneject(ep, now)
            elif (
                ep.ejection_multiplier > 0
                and ep.unejected_at is not None
                and now - ep.unejected_at >= self._interval
            ):
                ep.ejection_multiplier -= 1

    def ejected(self, endpoints: Sequence[EndpointState]) -> list[EndpointState]:
        return [ep for ep in endpoints if ep.ejected_at is not None]

    def ejection_duration(self, ep: EndpointState) -> float:
        return min(self._base * max(ep.ejection_multiplier, 1), self._max_time)

    def _eject(self, ep: EndpointState, reason: str, now: float, endpoints: Sequence[EndpointState]) -> None:
        if ep.ejected_at is not None:
            return
        ejected = sum(1 for other in endpoints if other.ejected_at is not None)
        if ejected and 100.0 * (ejected + 1) > self._max_percent * max(len(endpoints), 1):
            self.ejections_overflow += 1
            return
        if ep.ejection_multiplier < self._max_multiplier:
            ep.ejection_multiplier += 1
        ep.ejections_total += 1
        ep.ejected_at = now
        ep.ejection_reason = reason
        ep.unejected_at = None
        ep.healthy = False
        self.ejections_total += 1

    def _uneject(self, ep: EndpointState, now: float) -> None:
        ep.ejected_at = None
        ep.ejection_reason = None
        ep.unejected_at = now
        ep.consecutive_5xx = 0
        ep.consecutive_gateway_errors = 0
        ep.healthy = True
