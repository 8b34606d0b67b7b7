"""``--prometheus-sd-file PATH``: every registered sidecar's metrics endpoint, as a Prometheus
``file_sd_configs`` file kept current by the control plane.

One target group per sidecar: ``127.0.0.1:<admin port>`` (the admin endpoint binds loopback),
labelled ``namespace``, ``workload``, ``app`` and ``version`` (those two when the workload has
them), with ``__metrics_path__`` set to the admin endpoint's ``/metrics``. The file is written
whole (a temporary file, then a rename: Prometheus never reads half of one) when its content
changes, never on the push path: a background task looks at the registry's generation, which
moves whenever a workload registers, re-registers differently, deregisters or expires.

Left out: workloads without a sidecar, sidecars that did not say their admin port, and
transparent-mode sidecars, whose admin endpoint is the loopback of the replica's own network
namespace, which a Prometheus on this host cannot reach.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from loom.controlplane.registry import WorkloadRegistry
from loom.controlplane.workloads import Workload

log = logging.getLogger("loom.controlplane")

METRICS_PATH = "/metrics"
"""Where a sidecar's admin endpoint serves its metrics (Prometheus text format)."""
CHECK_SECONDS = 0.5
"""How often the registry's generation is looked at."""

TargetGroup = dict[str, object]


def scrapeable(workload: Workload) -> bool:
    """Whether a Prometheus on the control plane's host can scrape this workload's sidecar."""
    sidecar = workload.sidecar
    return sidecar is not None and sidecar.admin > 0 and not sidecar.transparent


def target_groups(workloads: Iterable[Workload]) -> list[TargetGroup]:
    """The ``file_sd_configs`` target groups, one per scrapeable sidecar, by namespace and name."""
    groups: list[TargetGroup] = []
    for workload in sorted(workloads, key=lambda w: w.key):
        if not scrapeable(workload):
            continue
        assert workload.sidecar is not None
        labels = {"namespace": workload.namespace, "workload": workload.name}
        for name in ("app", "version"):
            if workload.labels.get(name):
                labels[name] = workload.labels[name]
        labels["__metrics_path__"] = METRICS_PATH
        groups.append({"targets": [f"127.0.0.1:{workload.sidecar.admin}"], "labels": labels})
    return groups


def render(workloads: Iterable[Workload]) -> str:
    return json.dumps(target_groups(workloads), indent=2) + "\n"


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


class TargetsFile:
    """The file at ``path``, following ``registry``."""

    def __init__(self, path: Path, registry: WorkloadRegistry) -> None:
        self.path = path
        self.registry = registry
        self.written: str | None = None
        self.generation = -1

    def update(self) -> bool:
        """Write the file if the registry changed and the content with it; True if written."""
        if self.registry.generation == self.generation:
            return False
        self.generation = self.registry.generation
        text = render(self.registry.workloads())
        if text == self.written:
            return False
        write_atomically(self.path, text)
        self.written = text
        return True

    async def keep_current(self, interval: float = CHECK_SECONDS) -> None:
        """Write the file now (an empty list at first), then whenever it changes, until cancelled;
        once more then (the sidecars of a mesh being stopped deregister just before)."""
        try:
            while True:
                self._update_logged()
                await asyncio.sleep(interval)
        finally:
            self._update_logged()

    def _update_logged(self) -> None:
        try:
            if self.update():
                log.debug("wrote %s", self.path)
        except OSError as exc:  # a full disk must not stop the control plane; retry later
            log.warning("cannot write the Prometheus targets file %s: %s", self.path, exc)
            self.generation = -1
