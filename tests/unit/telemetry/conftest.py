"""Fixtures for telemetry tests: a node, its metrics, and render() parsed back by prometheus_client."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from loom.proxy.telemetry import MeshMetrics, PeerInfo
from loom.snapshot.model import Node

Parsed = dict[str, list[Sample]]


@pytest.fixture
def node() -> Node:
    return Node(
        workload="frontend-v1",
        namespace="shop",
        service_account="frontend",
        labels={"app": "frontend", "version": "v1"},
    )


@pytest.fixture
def metrics(node: Node) -> MeshMetrics:
    return MeshMetrics(node)


@pytest.fixture
def catalog() -> PeerInfo:
    return PeerInfo.from_labels("catalog-v2", "shop", {"app": "catalog", "version": "v2"})


def _parse(metrics: MeshMetrics) -> Parsed:
    """Samples by sample name (``istio_requests_total``, ``..._bucket``), across all families."""
    text = metrics.render().decode()
    samples: Parsed = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


@pytest.fixture
def parse() -> Callable[[MeshMetrics], Parsed]:
    return _parse
