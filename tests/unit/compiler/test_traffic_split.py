"""SMI TrafficSplits: quantities → integer weights, backends → clusters."""

from __future__ import annotations

from decimal import Decimal

import pytest

from loom.controlplane.compiler.traffic_split import integer_weights
from tests.unit.compiler.support import (
    by_name,
    compile_for,
    messages,
    resources,
    routes,
    seed_mesh,
    svc,
    weights,
)

MY_APP = svc("my-app")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (["90m", "10m"], [90, 10]),
        (["900m", "100m"], [90, 10]),
        (["1", "1"], [50, 50]),
        (["1", "2"], [1, 2]),
        (["3", "0"], [100, 0]),
        (["0.333", "0.667"], [3330, 6670]),
        (["1", "1", "1"], [1, 1, 1]),
        (["1", "0.0001", "7"], [1250, 1, 8750]),  # exact would total 80001: shares of 10000
        (["123456789", "1"], [10000, 1]),
        (["0", "0"], None),
    ],
)
def test_integer_weights_keep_the_ratio(given: list[str], expected: list[int] | None) -> None:
    from loom.api.resources.values import parse_quantity

    assert integer_weights([parse_quantity(q) for q in given]) == expected
    assert integer_weights([Decimal(1)]) == [100]


def split(backends: str, *, extra: str = "") -> str:
    return f"""
apiVersion: split.smi-spec.io/v1alpha2
kind: TrafficSplit
metadata: {{name: my-app, namespace: default}}
spec:
  service: my-app
  backends:
{backends}
{extra}"""


def test_backends_include_the_apex_itself() -> None:
    compiled = compile_for(
        [
            *seed_mesh(),
            *resources(split("  - {service: my-app, weight: 3}\n  - {service: my-app-v2, weight: 1}")),
        ],
        by_name("sleep"),
    )
    [route] = routes(compiled.snapshot, MY_APP)
    assert weights(route) == {f"outbound|80||{MY_APP}": 75, f"outbound|80||{svc('my-app-v2')}": 25}
    assert route.route is not None and route.route.retry is None


def test_matches_are_not_supported() -> None:
    text = split(
        "  - {service: my-app-v1, weight: 1}",
        extra="  matches: [{kind: HTTPRouteGroup, name: canary}]\n",
    )
    compiled = compile_for([*seed_mesh(), *resources(text)], by_name("sleep"))
    assert weights(routes(compiled.snapshot, MY_APP)[0]) == {f"outbound|80||{svc('my-app-v1')}": 100}
    assert any("HTTPRouteGroups" in m for m in messages(compiled))


def test_all_zero_weights_leave_the_default_route() -> None:
    text = split("  - {service: my-app-v1, weight: 0}\n  - {service: my-app-v2, weight: 0}")
    compiled = compile_for([*seed_mesh(), *resources(text)], by_name("sleep"))
    assert routes(compiled.snapshot, MY_APP)[0].name == "default"
    assert any("weight 0" in m for m in messages(compiled))
