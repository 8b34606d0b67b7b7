"""``WorkloadInfo``: what the analyzers know about one running workload.

The control plane passes the workloads its registry holds; ``WorkloadEntry`` resources add
workloads without a sidecar. Analyzers that compare configuration with workloads (subset labels,
STRICT mTLS, service accounts in authorization rules) stay silent when none are known.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class WorkloadInfo:
    namespace: str
    name: str
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    service_account: str = "default"
    has_sidecar: bool = True

    @property
    def ref(self) -> str:
        """``namespace/name``, as messages write it."""
        return f"{self.namespace}/{self.name}"

    def has_labels(self, selector: Mapping[str, str]) -> bool:
        """Every ``key: value`` of ``selector`` is among the labels (an empty selector matches)."""
        return all(self.labels.get(key) == value for key, value in selector.items())
