"""The seed examples load as written; pasted flat, as the seed pages printed them, they are refused."""

from __future__ import annotations

import pytest

from loom.api import load_paths, load_text
from loom.api.resources.istio_networking import DestinationRuleSpec
from tests.unit.api.fixtures import SEED_EXAMPLES, SHARED_SEED_EXAMPLES, read_yaml

EXPECTED = read_yaml("seed_examples.yaml")
assert isinstance(EXPECTED, dict)
FILES = sorted(EXPECTED)


def test_the_fixture_copies_are_the_shared_seed_examples() -> None:
    if not SHARED_SEED_EXAMPLES.is_dir():
        pytest.skip("the shared seed examples are not on this machine")
    shared = {path.name: path.read_text() for path in SHARED_SEED_EXAMPLES.glob("*.yaml")}
    copies = {path.name: path.read_text() for path in SEED_EXAMPLES.glob("*.yaml")}
    assert copies == shared
    assert sorted(shared) == FILES


@pytest.mark.parametrize("name", FILES)
def test_seed_example_loads_with_no_problem(name: str) -> None:
    result = load_paths([SEED_EXAMPLES / name])

    assert [str(problem) for problem in result.problems] == []
    got = [
        {
            "kind": r.kind,
            "namespace": r.namespace,
            "name": r.name,
            "namespace_given": r.namespace_given,
            **({"extensions": list(r.extensions)} if r.extensions else {}),
        }
        for r in result.resources
    ]
    assert got == EXPECTED[name]


def test_the_destination_rule_records_its_non_istio_fields_with_their_lines() -> None:
    (rule,) = load_paths([SEED_EXAMPLES / "002-orders-destinationrule.yaml"]).resources

    assert rule.extensions == (
        "spec.trafficPolicy.connectionPool.http.pendingRequests",
        "spec.trafficPolicy.retryPolicy",
    )
    assert rule.line_of("spec.trafficPolicy.connectionPool.http.pendingRequests") == 20
    assert rule.line_of("spec.trafficPolicy.retryPolicy") == 28
    assert (
        "http1MaxPendingRequests"
        in rule.extension_notes["spec.trafficPolicy.connectionPool.http.pendingRequests"]
    )
    assert "VirtualService" in rule.extension_notes["spec.trafficPolicy.retryPolicy"]
    spec = rule.spec
    assert isinstance(spec, DestinationRuleSpec)
    policy = spec.traffic_policy
    assert policy is not None and policy.retry_policy is not None and policy.connection_pool is not None
    assert policy.retry_policy.attempts == 3
    assert policy.retry_policy.per_try_timeout == 5.0
    assert policy.retry_policy.retry_on == "5xx,reset,connect-failure"
    assert policy.connection_pool.http is not None
    assert policy.connection_pool.http.pending_requests == 100
    assert policy.connection_pool.http.http1_max_pending_requests is None  # absent stays absent


def test_resources_without_extensions_record_none() -> None:
    result = load_paths([SEED_EXAMPLES])
    assert len(result.resources) == 11
    assert [r.ref for r in result.resources if r.extensions] == ["DestinationRule production/orders-api"]


def flat(text: str) -> str:
    """The YAML as the seed pages printed it: every line's leading whitespace stripped."""
    return "\n".join(line.lstrip() for line in text.splitlines()) + "\n"


@pytest.mark.parametrize("name", FILES)
def test_a_flat_copy_is_refused_because_the_indentation_looks_lost(name: str) -> None:
    result = load_text(flat((SEED_EXAMPLES / name).read_text()), name)

    assert result.resources == []
    assert len(result.problems) == len(EXPECTED[name])  # one problem per document, not a cascade
    for problem, expected in zip(result.problems, EXPECTED[name], strict=True):
        assert "the indentation looks lost" in problem.message
        assert "indent each nested field under its parent" in problem.hint
        assert problem.resource_ref is not None and problem.resource_ref.startswith(expected["kind"] + " ")


def test_the_flat_problem_points_at_the_empty_parent_and_names_its_lost_fields() -> None:
    text = flat((SEED_EXAMPLES / "002-strict-mtls.yaml").read_text())
    (problem,) = load_text(text, "pasted.yaml").problems

    assert str(problem) == (
        "pasted.yaml:5: PeerAuthentication production/strict-mtls: the indentation looks lost: "
        "`metadata:` is empty and fields that belong under it (`name`, `namespace`) are at the top level "
        "(hint: indent each nested field under its parent (two spaces per level), as in the original; "
        "web pages often print YAML with its leading spaces stripped)"
    )


def test_the_flat_seed_page_text_is_refused_too() -> None:
    # Seed 002 printed the PeerAuthentication like this (its comment included).
    text = (
        "apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\nmetadata:\nname: strict-mtls\n"
        "namespace: production\nspec:\nmtls:\nmode: STRICT # Reject all plaintext connections\n"
    )
    (problem,) = load_text(text, "seed.yaml").problems
    assert problem.line == 3
    assert "the indentation looks lost" in problem.message
