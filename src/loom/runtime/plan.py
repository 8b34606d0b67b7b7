"""A mesh folder read for ``loom up``: every resource in it, and one replica per Workload replica."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from loom.api import LoadProblem, Resource, load_paths
from loom.api.resources.runtime import WorkloadSpec


class PlanError(Exception):
    """The folder cannot be run; ``problems`` are the file:line errors (may be empty)."""

    def __init__(self, message: str, problems: list[LoadProblem] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class Replica:
    """One process of a Workload (``<workload>-<index>``) as it should run."""

    name: str
    workload: str
    namespace: str
    service_account: str
    labels: Mapping[str, str]
    port: int
    command: tuple[str, ...]
    working_dir: Path
    env: Mapping[str, str]
    readiness_path: str | None


@dataclass(frozen=True)
class MeshPlan:
    directory: Path
    resources: list[Resource]
    replicas: list[Replica] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.directory.name


def read_plan(directory: Path) -> MeshPlan:
    """Load every YAML file of ``directory``; ``PlanError`` with every problem if any does not load."""
    directory = directory.resolve()
    if not directory.is_dir():
        raise PlanError(f"{directory} is not a folder of mesh YAML")
    result = load_paths([directory])
    if result.problems:
        raise PlanError(f"{directory} does not load", list(result.problems))
    replicas: list[Replica] = []
    for resource in result.resources:
        if isinstance(resource.spec, WorkloadSpec):
            replicas.extend(_replicas(resource, resource.spec))
    if not replicas:
        raise PlanError(
            f"{directory} has no Workload to run (kind: Workload, apiVersion: runtime.loom.dev/v1alpha1)"
        )
    names = [(r.namespace, r.name) for r in replicas]
    twice = sorted({f"{ns}/{name}" for ns, name in names if names.count((ns, name)) > 1})
    if twice:
        raise PlanError(f"replica names collide: {', '.join(twice)}; rename one of the Workloads")
    return MeshPlan(directory, list(result.resources), replicas)


def _replicas(resource: Resource, spec: WorkloadSpec) -> list[Replica]:
    folder = Path(resource.source.file).resolve().parent
    working_dir = (folder / spec.working_dir).resolve()
    return [
        Replica(
            name=f"{resource.name}-{index}",
            workload=resource.name,
            namespace=resource.namespace,
            service_account=spec.service_account,
            labels=dict(spec.labels),
            port=spec.port,
            command=spec.command,
            working_dir=working_dir,
            env=dict(spec.env),
            readiness_path=spec.readiness.path if spec.readiness else None,
        )
        for index in range(spec.replicas)
    ]
