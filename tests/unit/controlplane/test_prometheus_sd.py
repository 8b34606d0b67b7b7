"""The Prometheus targets file: one target group per scrapeable sidecar, written atomically and only
when its content changes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from types import MappingProxyType

from loom.controlplane.prometheus_sd import METRICS_PATH, TargetsFile, target_groups
from loom.controlplane.registry import WorkloadRegistry
from loom.controlplane.workloads import SidecarPorts, Workload


def workload(
    name: str,
    admin: int = 15000,
    *,
    labels: dict[str, str] | None = None,
    transparent: bool = False,
    sidecar: bool = True,
    ready: bool = True,
) -> Workload:
    ports = SidecarPorts(outbound=15001, admin=admin, transparent=transparent) if sidecar else None
    return Workload(
        name=name,
        namespace="bookstore",
        service_account="default",
        labels=MappingProxyType(labels if labels is not None else {"app": "catalog", "version": "v1"}),
        address="127.0.0.2",
        sidecar=ports,
        ready=ready,
    )


def test_a_group_per_sidecar_with_its_labels_and_metrics_path() -> None:
    groups = target_groups(
        [workload("catalog-v1-0", 40001), workload("client-0", 40002, labels={"app": "client"})]
    )
    assert groups == [
        {
            "targets": ["127.0.0.1:40001"],
            "labels": {
                "namespace": "bookstore",
                "workload": "catalog-v1-0",
                "app": "catalog",
                "version": "v1",
                "__metrics_path__": METRICS_PATH,
            },
        },
        {
            "targets": ["127.0.0.1:40002"],
            "labels": {
                "namespace": "bookstore",
                "workload": "client-0",
                "app": "client",
                "__metrics_path__": METRICS_PATH,
            },
        },
    ]
    assert METRICS_PATH == "/metrics"


def test_unscrapeable_workloads_are_left_out() -> None:
    groups = target_groups(
        [
            workload("vm", sidecar=False),
            workload("no-admin-port", admin=0),
            workload("in-a-netns", transparent=True),
            workload("kept"),
        ]
    )
    assert [g["labels"]["workload"] for g in groups] == ["kept"]  # type: ignore[index]


def test_the_file_follows_registrations_and_is_written_only_on_change(tmp_path: Path) -> None:
    path = tmp_path / "prometheus" / "targets.json"
    registry = WorkloadRegistry()
    targets = TargetsFile(path, registry)
    assert targets.update()
    assert json.loads(path.read_text()) == []  # Prometheus gets a valid (empty) file at once

    registry.register(workload("catalog-v1-0", 40001, ready=False))
    assert targets.update()
    assert [g["targets"] for g in json.loads(path.read_text())] == [["127.0.0.1:40001"]]

    # A re-registration that changes nothing the file says (readiness) does not rewrite it.
    mtime = path.stat().st_mtime_ns
    registry.register(workload("catalog-v1-0", 40001, ready=True))
    assert not targets.update()
    assert path.stat().st_mtime_ns == mtime
    assert not targets.update()  # nothing registered since

    registry.deregister(("bookstore", "catalog-v1-0"))
    assert targets.update()
    assert json.loads(path.read_text()) == []
    assert [p.name for p in path.parent.iterdir()] == ["targets.json"]  # no temporary file left


async def test_keep_current_writes_in_the_background_and_once_more_when_stopped(tmp_path: Path) -> None:
    path = tmp_path / "targets.json"
    registry = WorkloadRegistry()
    task = asyncio.create_task(TargetsFile(path, registry).keep_current(interval=0.01))
    try:
        for _ in range(200):
            if path.exists():
                break
            await asyncio.sleep(0.01)
        registry.register(workload("catalog-v1-0", 40001))
        for _ in range(200):
            if json.loads(path.read_text()):
                break
            await asyncio.sleep(0.01)
        assert json.loads(path.read_text())[0]["labels"]["workload"] == "catalog-v1-0"
    finally:
        registry.deregister(("bookstore", "catalog-v1-0"))
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert json.loads(path.read_text()) == []  # written once more when stopped
