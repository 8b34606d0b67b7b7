"""What the CA issued: the latest workload certificate per SPIFFE ID, kept in memory.

``GET /v1/identities`` serves it (with the registered workloads that use each identity) and
``loom check`` judges it: a workload certificate should be renewed by 60% of its lifetime, so one
older than that, or expired, means a sidecar is not renewing. The record starts empty at every
start of the control plane (``since``): a certificate issued before then is not known here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from loom.controlplane.security.authority import Issued


@dataclass(frozen=True, slots=True)
class IssuedRecord:
    spiffe_id: str
    serial: int
    not_before: float
    not_after: float
    issued_at: float
    count: int
    """Certificates issued to this identity since the control plane started (first and renewals)."""

    def to_json(self) -> dict[str, object]:
        return {
            "serial": f"{self.serial:x}",
            "not_before": self.not_before,
            "not_after": self.not_after,
            "issued_at": self.issued_at,
            "issued_since_start": self.count,
        }


class IssuedCertificates:
    """The latest certificate issued per SPIFFE ID. Replicas of a workload share their identity, so
    this is the newest among them."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.since = clock()
        """When the record started (the control plane's start)."""
        self._latest: dict[str, IssuedRecord] = {}

    def record(self, spiffe_id: str, issued: Issued) -> None:
        previous = self._latest.get(spiffe_id)
        self._latest[spiffe_id] = IssuedRecord(
            spiffe_id,
            issued.serial,
            issued.not_before,
            issued.not_after,
            issued.issued_at,
            1 if previous is None else previous.count + 1,
        )

    def latest(self, spiffe_id: str) -> IssuedRecord | None:
        return self._latest.get(spiffe_id)

    def spiffe_ids(self) -> list[str]:
        return sorted(self._latest)
