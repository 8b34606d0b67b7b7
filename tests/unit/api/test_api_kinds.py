"""The kind registry, and where extension fields are found."""

from __future__ import annotations

import pytest

from loom.api import defaults, load_text, supported
from loom.api.kinds import UnknownKind, lookup


def test_lookup_by_group_version_and_kind() -> None:
    assert lookup("networking.istio.io/v1alpha3", "VirtualService").kind == "VirtualService"
    assert lookup("v1", "Service").group == ""
    assert lookup("split.smi-spec.io/v1alpha1", "TrafficSplit").versions[-1] == "v1alpha4"


@pytest.mark.parametrize(
    ("api_version", "kind", "path", "hint"),
    [
        ("networking.istio.io/v1", "virtualservice", "kind", "did you mean `VirtualService`?"),
        ("networking.istio.io/v1", "Gateway", "kind", "supported kinds: AuthorizationPolicy"),
        ("networking.istio.io/v2", "DestinationRule", "apiVersion", "networking.istio.io/v1beta1"),
        ("apps/v1", "Service", "apiVersion", "use one of: v1"),
    ],
)
def test_lookup_failures_say_what_to_write(api_version: str, kind: str, path: str, hint: str) -> None:
    with pytest.raises(UnknownKind) as failure:
        lookup(api_version, kind)
    assert failure.value.path == path
    assert hint in failure.value.hint


def test_supported_lists_every_kind_with_its_api_versions() -> None:
    listed = supported()
    assert "TrafficSplit (split.smi-spec.io/v1alpha1, split.smi-spec.io/v1alpha2, " in listed[8]
    assert "Service (v1)" in listed


def test_extensions_are_found_in_subsets_too() -> None:
    text = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r}
spec:
  host: r
  subsets:
  - name: v1
    trafficPolicy:
      retryPolicy: {attempts: 1}
"""
    (rule,) = load_text(text).resources
    assert rule.extensions == ("spec.subsets[0].trafficPolicy.retryPolicy",)
    assert rule.line_of(rule.extensions[0]) == 9


def test_istio_and_loom_limit_names_cannot_both_be_given() -> None:
    text = """\
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: r}
spec:
  host: r
  trafficPolicy:
    connectionPool:
      http: {http1MaxPendingRequests: 10, pendingRequests: 20}
"""
    (problem,) = load_text(text).problems
    assert problem.message == "`http1MaxPendingRequests`, `pendingRequests` cannot be used together"


def test_documented_defaults() -> None:
    assert (defaults.RETRY_ATTEMPTS, defaults.RETRY_ON) == (
        2,
        "connect-failure,refused-stream,unavailable,cancelled,503",
    )
    assert defaults.HTTP_TIMEOUT is None
    assert (defaults.ROOT_NAMESPACE, defaults.TRUST_DOMAIN) == ("loom-system", "cluster.local")
