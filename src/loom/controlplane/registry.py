"""Workloads that registered with the control plane, and when each was last heard from.

A sidecar registers once and then keeps watching for snapshots; every watch request and
acknowledgement counts as a heartbeat. A workload not heard from for ``grace`` seconds is
dropped, so its endpoints leave every other proxy's snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from loom.controlplane.workloads import Workload

DEFAULT_GRACE = 45.0


@dataclass(slots=True)
class Registration:
    workload: Workload
    last_seen: float


class WorkloadRegistry:
    def __init__(self, grace: float = DEFAULT_GRACE, clock: Callable[[], float] = time.monotonic) -> None:
        self.grace = grace
        self.clock = clock
        self._entries: dict[tuple[str, str], Registration] = {}
        self.generation = 0
        """Bumped whenever the set of workloads changes."""

    def register(self, workload: Workload) -> bool:
        """Add or replace a workload; True if that changed anything."""
        previous = self._entries.get(workload.key)
        self._entries[workload.key] = Registration(workload, self.clock())
        changed = previous is None or previous.workload != workload
        if changed:
            self.generation += 1
        return changed

    def deregister(self, key: tuple[str, str]) -> bool:
        if self._entries.pop(key, None) is None:
            return False
        self.generation += 1
        return True

    def seen(self, key: tuple[str, str]) -> bool:
        entry = self._entries.get(key)
        if entry is None:
            return False
        entry.last_seen = self.clock()
        return True

    def get(self, key: tuple[str, str]) -> Workload | None:
        entry = self._entries.get(key)
        return entry.workload if entry is not None else None

    def last_seen(self, key: tuple[str, str]) -> float | None:
        entry = self._entries.get(key)
        return entry.last_seen if entry is not None else None

    def expire(self) -> list[Workload]:
        """Drop the workloads not heard from within the grace period; return them."""
        deadline = self.clock() - self.grace
        gone = [e.workload for e in self._entries.values() if e.last_seen < deadline]
        for workload in gone:
            del self._entries[workload.key]
        if gone:
            self.generation += 1
        return gone

    def workloads(self) -> list[Workload]:
        return sorted((e.workload for e in self._entries.values()), key=lambda w: w.key)
