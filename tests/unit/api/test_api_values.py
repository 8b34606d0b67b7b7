"""Shared values: Kubernetes quantities, durations, field paths."""

from __future__ import annotations

from decimal import Decimal

import pytest

from loom.api import paths
from loom.api.resources.values import parse_quantity


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("90m", Decimal("0.09")),
        ("10m", Decimal("0.01")),
        ("100m", Decimal("0.1")),
        ("500m", Decimal("0.5")),
        ("1", Decimal(1)),
        (1, Decimal(1)),
        (90, Decimal(90)),
        ("0.5", Decimal("0.5")),
        (0.5, Decimal("0.5")),
        (".5", Decimal("0.5")),
        ("1k", Decimal(1000)),
        ("1.5k", Decimal(1500)),
        ("2M", Decimal(2_000_000)),
        ("3G", Decimal(3 * 10**9)),
        ("1Ki", Decimal(1024)),
        ("1Mi", Decimal(1024**2)),
        ("2Gi", Decimal(2 * 1024**3)),
        ("1Ei", Decimal(2**60)),
        ("100u", Decimal("0.0001")),
        ("5n", Decimal("5E-9")),
        ("1e3", Decimal(1000)),
        ("12E-1", Decimal("1.2")),
        ("+3", Decimal(3)),
        ("-2", Decimal(-2)),
    ],
)
def test_quantities(text: object, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["ten", "90mm", "1KI", "m", "", "1 k", "1.2.3", True, None, [1]])
def test_bad_quantities(text: object) -> None:
    with pytest.raises(ValueError):
        parse_quantity(text)


def test_quantity_weights_keep_their_ratio() -> None:
    assert parse_quantity("90m") / parse_quantity("10m") == 9


@pytest.mark.parametrize(
    ("prefix", "key", "path"),
    [
        ("", "spec", "spec"),
        ("spec", "http", "spec.http"),
        ("spec.http", 0, "spec.http[0]"),
        ("spec.match[0].headers", "x-version", "spec.match[0].headers.x-version"),
        ("metadata.labels", "app.kubernetes.io/name", 'metadata.labels["app.kubernetes.io/name"]'),
        ("spec.portLevelMtls", 8080, "spec.portLevelMtls[8080]"),
        ("spec.portLevelMtls", "8080", 'spec.portLevelMtls["8080"]'),
    ],
)
def test_paths_join(prefix: str, key: object, path: str) -> None:
    assert paths.join(prefix, key) == path


@pytest.mark.parametrize(
    ("path", "parent"),
    [
        ("spec.http[0].route[1].weight", "spec.http[0].route[1]"),
        ("spec.http[0].route[1]", "spec.http[0].route"),
        ("spec.http[0]", "spec.http"),
        ('metadata.labels["a.b/c"]', "metadata.labels"),
        ("spec", ""),
    ],
)
def test_paths_parent(path: str, parent: str) -> None:
    assert paths.parent(path) == parent


def test_paths_from_pydantic_locations() -> None:
    assert paths.from_loc(("spec", "http", 0, "route", 1, "weight")) == "spec.http[0].route[1].weight"
    assert paths.from_loc(("spec", "portLevelMtls", "x", "[key]")) == "spec.portLevelMtls.x"
