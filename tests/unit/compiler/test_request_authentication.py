"""RequestAuthentication → ``security.jwt_rules``: which policies apply to a workload (namespace,
root namespace, selector), the field mapping, and keys that fail closed."""

from __future__ import annotations

import json

from loom.controlplane.compiler import MeshInputs, compile_snapshot
from loom.controlplane.compiler.request_authentication import NO_KEYS, jwks_uris
from loom.snapshot.security import JwtHeader, JwtRule
from tests.support.jwt import SigningKey
from tests.unit.compiler.support import (
    SEED_WORKLOADS,
    by_name,
    compile_for,
    messages,
    proxy_config,
    round_trip,
    workload,
)
from tests.unit.compiler.support import resources as load

JWKS = SigningKey.rsa("idp").jwks_text()


def policy(
    name: str,
    namespace: str = "default",
    *,
    selector: dict[str, str] | None = None,
    rules: list[dict[str, object]] | None = None,
    extra: dict[str, object] | None = None,
) -> str:
    spec: dict[str, object] = {
        "jwtRules": rules if rules is not None else [{"issuer": f"https://{name}.example", "jwks": JWKS}],
        **(extra or {}),
    }
    if selector is not None:
        spec["selector"] = {"matchLabels": selector}
    return json.dumps(
        {
            "apiVersion": "security.istio.io/v1",
            "kind": "RequestAuthentication",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def issuers(found: list, name: str, namespace: str = "default") -> list[str]:
    snapshot = compile_for(found, by_name(name, namespace)).snapshot
    return [rule.issuer for rule in snapshot.security.jwt_rules]


def test_the_fields_map_onto_the_snapshot_and_the_proxy_loads_it() -> None:
    rule = {
        "issuer": "https://idp.example",
        "audiences": ["orders", "billing"],
        "jwks": JWKS,
        "fromHeaders": [{"name": "x-token", "prefix": "Jwt "}, {"name": "x-raw"}],
        "fromParams": ["token"],
        "forwardOriginalToken": True,
        "outputClaimToHeaders": [
            {"header": "X-Jwt-Sub", "claim": "sub"},
            {"header": "x-org", "claim": "org.id"},
        ],
    }
    compiled = compile_for(load(policy("idp", rules=[rule])), by_name("sleep"))
    assert compiled.snapshot.security.jwt_rules == [
        JwtRule(
            issuer="https://idp.example",
            audiences=["orders", "billing"],
            jwks=JWKS,
            from_headers=[JwtHeader(name="x-token", prefix="Jwt "), JwtHeader(name="x-raw")],
            from_params=["token"],
            forward_original_token=True,
            output_claim_to_headers={"x-jwt-sub": "sub", "x-org": "org.id"},
        )
    ]
    assert not [m for m in messages(compiled) if "RequestAuthentication" in m or "jwt" in m.lower()]
    snapshot = round_trip(compiled.snapshot)
    authn = proxy_config(snapshot).jwt_authn
    assert authn is not None and authn.rules[0].keys[0].kid == "idp"


def test_a_namespace_policy_applies_to_its_namespace_only() -> None:
    found = load(policy("ns-wide"))
    assert issuers(found, "sleep") == ["https://ns-wide.example"]
    assert issuers(found, "orders-api-v1") == ["https://ns-wide.example"]
    assert issuers(found, "orders-api-v1", "production") == []


def test_a_selector_picks_workloads_by_labels() -> None:
    found = load(policy("reviews-only", selector={"app": "reviews"}))
    assert issuers(found, "reviews-v1") == issuers(found, "reviews-v2") == ["https://reviews-only.example"]
    assert issuers(found, "sleep") == []
    narrow = load(policy("v2-only", selector={"app": "reviews", "version": "v2"}))
    assert (issuers(narrow, "reviews-v1"), issuers(narrow, "reviews-v2")) == ([], ["https://v2-only.example"])


def test_the_root_namespace_applies_mesh_wide_and_its_selector_in_every_namespace() -> None:
    found = load(
        policy("mesh", "loom-system"),
        policy("orders-everywhere", "loom-system", selector={"app": "orders-api"}),
    )
    assert issuers(found, "sleep") == ["https://mesh.example"]
    for namespace in ("default", "production"):
        assert issuers(found, "orders-api-v1", namespace) == [
            "https://mesh.example",
            "https://orders-everywhere.example",
        ]
    # A workload of the root namespace itself gets its policies once.
    root = workload("gate", "loom-system", {"app": "orders-api"}, "10.9.0.1")
    snapshot = compile_for(found, root, [*SEED_WORKLOADS, root]).snapshot
    assert len(snapshot.security.jwt_rules) == 2


def test_a_custom_root_namespace() -> None:
    mesh = """
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: {name: mesh, namespace: istio-system}
spec: {meshConfig: {rootNamespace: istio-system}}
"""
    found = load(mesh, policy("istio-root", "istio-system"), policy("loom-root", "loom-system"))
    assert issuers(found, "sleep") == ["https://istio-root.example"]


def test_rules_of_every_policy_that_applies_in_source_order() -> None:
    found = load(
        policy(
            "second", rules=[{"issuer": "https://b", "jwks": JWKS}, {"issuer": "https://c", "jwks": JWKS}]
        ),
        policy("first", "loom-system", rules=[{"issuer": "https://a", "jwks": JWKS}]),
    )
    # t0.yaml (default/second) before t1.yaml (loom-system/first): where they were written decides.
    assert issuers(found, "sleep") == ["https://b", "https://c", "https://a"]


def test_jwks_uri_uses_the_fetched_key_set() -> None:
    uri = "https://idp.example/.well-known/jwks.json"
    found = load(policy("remote", rules=[{"issuer": "https://idp.example", "jwksUri": uri, "timeout": "2s"}]))
    inputs = MeshInputs.build(found, list(SEED_WORKLOADS), jwks={uri: JWKS})
    compiled = compile_snapshot(inputs, by_name("sleep"), version="1")
    assert compiled.snapshot.security.jwt_rules[0].jwks == JWKS
    assert not [m for m in messages(compiled) if uri in m]
    assert jwks_uris(found) == {uri: 2.0}


def test_keys_not_at_hand_fail_closed_with_a_warning() -> None:
    uri = "https://idp.example/jwks"
    found = load(policy("remote", rules=[{"issuer": "https://idp.example", "jwksUri": uri}]))
    pending = compile_for(found, by_name("sleep"))
    assert pending.snapshot.security.jwt_rules[0].jwks == NO_KEYS
    assert any(
        f"the keys at {uri} are not available (not fetched yet)" in m
        and "https://idp.example is refused" in m
        for m in messages(pending)
    )
    inputs = MeshInputs.build(found, list(SEED_WORKLOADS), jwks_errors={uri: "HTTP 503"})
    failed = compile_snapshot(inputs, by_name("sleep"), version="1")
    assert failed.snapshot.security.jwt_rules[0].jwks == NO_KEYS
    warning = next(w for w in failed.warnings if uri in w.message)
    assert "(HTTP 503)" in warning.message and warning.path == "spec.jwtRules[0].jwksUri"
    assert warning.file == "t0.yaml" and warning.line
    # A fetched key set survives a later failed refresh.
    kept = MeshInputs.build(found, list(SEED_WORKLOADS), jwks={uri: JWKS}, jwks_errors={uri: "HTTP 503"})
    assert compile_snapshot(kept, by_name("sleep"), version="1").snapshot.security.jwt_rules[0].jwks == JWKS


def test_an_inline_jwks_that_is_not_a_key_set_fails_closed() -> None:
    found = load(policy("bad", rules=[{"issuer": "https://idp", "jwks": '{"kty": "RSA"}'}]))
    compiled = compile_for(found, by_name("sleep"))
    assert compiled.snapshot.security.jwt_rules[0].jwks == NO_KEYS
    assert any("`jwks` is not a JSON Web Key Set" in m for m in messages(compiled))
    round_trip(compiled.snapshot)


def test_what_loom_does_not_support_is_reported() -> None:
    rules = [
        {"issuer": "https://cookies", "jwks": JWKS, "fromCookies": ["session"]},
        {
            "issuer": "https://mixed",
            "jwks": JWKS,
            "fromCookies": ["session"],
            "fromParams": ["token"],
            "outputPayloadToHeader": "x-payload",
            "outputClaimToHeaders": [{"header": "x-a", "claim": "a"}, {"header": "X-A", "claim": "b"}],
        },
        {"issuer": "https://nokeys"},
    ]
    compiled = compile_for(load(policy("odd", rules=rules)), by_name("sleep"))
    got = compiled.snapshot.security.jwt_rules
    assert [r.issuer for r in got] == ["https://mixed", "https://nokeys"]
    assert got[0].output_claim_to_headers == {"x-a": "a"} and got[1].jwks == NO_KEYS
    found = messages(compiled)
    assert any("this rule reads only cookies, so it is not applied" in m for m in found)
    assert any("`fromCookies` ignored" in m for m in found)
    assert any("`outputPayloadToHeader` is not supported" in m for m in found)
    assert any("header 'X-A' is already filled from claim 'a'" in m for m in found)
    assert any("neither `jwks` nor `jwksUri` is set" in m for m in found)


def test_a_policy_attached_by_target_ref_is_not_for_sidecars() -> None:
    target = {"targetRef": {"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "ingress"}}
    compiled = compile_for(load(policy("gw", extra=target)), by_name("sleep"))
    assert compiled.snapshot.security.jwt_rules == []
    assert any("applies to gateways and waypoints, not to sidecars" in m for m in messages(compiled))


def test_request_authentication_is_no_longer_reported_as_unenforced() -> None:
    compiled = compile_for(load(policy("ns-wide")), by_name("sleep"))
    assert not [m for m in messages(compiled) if "not enforced" in m and "RequestAuthentication" in m]
    assert compile_for([], by_name("sleep")).snapshot.security.jwt_rules == []
