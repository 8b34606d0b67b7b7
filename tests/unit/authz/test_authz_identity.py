"""Who is calling: the peer's principal from mutual TLS, and the request's JWT.

The connection gives its peer as a full SPIFFE ID (or None for plaintext); policies name it
without ``spiffe://``. The JWT stage leaves ``iss/sub`` and the claims on the exchange.
"""

from __future__ import annotations

import pytest

from tests.unit.authz.support import WEB, allowed, authorizer, http, policy, tcp


@pytest.mark.parametrize(
    ("principals", "expected"),
    [
        (["cluster.local/ns/shop/sa/web"], True),
        (["spiffe://cluster.local/ns/shop/sa/web"], True),  # written with the scheme: the same
        (["cluster.local/ns/shop/sa/other"], False),
        (["cluster.local/ns/shop/*"], True),
        (["*/sa/web"], True),
        (["*"], True),
    ],
)
def test_principals_match_the_peer_identity(principals: list[str], expected: bool) -> None:
    auth = authorizer(policy(rules=[{"sources": [{"principals": principals}]}]))
    assert allowed(auth, http(principal=WEB)) is expected


@pytest.mark.parametrize("field", ["principals", "namespaces"])
def test_a_plaintext_peer_never_matches_principals_or_namespaces(field: str) -> None:
    auth = authorizer(policy(rules=[{"sources": [{field: ["*"]}]}]))
    assert allowed(auth, http(principal=WEB))
    assert not allowed(auth, http(principal=None))  # how a caller outside the mesh is kept out


def test_namespaces_come_from_the_principal() -> None:
    auth = authorizer(policy(rules=[{"sources": [{"namespaces": ["shop", "ops-*"]}]}]))
    assert allowed(auth, http(principal=WEB))
    assert allowed(auth, http(principal="spiffe://cluster.local/ns/ops-tools/sa/cron"))
    assert not allowed(auth, http(principal="spiffe://cluster.local/ns/other/sa/web"))
    assert not allowed(auth, http(principal="spiffe://cluster.local/workload/no-namespace"))


def test_not_principals_star_picks_out_plaintext_peers() -> None:
    # Istio's idiom to refuse non-mesh callers with a DENY policy.
    auth = authorizer(policy("shop/require-mtls", "DENY", [{"sources": [{"not_principals": ["*"]}]}]))
    assert allowed(auth, http(principal=WEB))
    decision = auth.check(http(principal=None))
    assert not decision.allowed and decision.policy == "shop/require-mtls"


def test_not_namespaces_matches_a_plaintext_peer() -> None:
    # A plaintext peer has no namespace, so "not from foo" holds for it (ISTIO-SECURITY-2021-004).
    auth = authorizer(policy(rules=[{"sources": [{"not_namespaces": ["foo"]}]}]))
    assert allowed(auth, http(principal=None))
    assert not allowed(auth, http(principal="spiffe://cluster.local/ns/foo/sa/x"))


def test_source_conditions() -> None:
    auth = authorizer(
        policy(
            rules=[
                {
                    "conditions": [
                        {"key": "source.namespace", "values": ["shop"]},
                        {"key": "source.principal", "not_values": ["cluster.local/ns/shop/sa/batch"]},
                    ]
                }
            ]
        )
    )
    assert allowed(auth, http(principal=WEB))
    assert not allowed(auth, http(principal="spiffe://cluster.local/ns/shop/sa/batch"))
    assert not allowed(auth, http(principal=None))


def test_principals_on_a_tcp_connection() -> None:
    auth = authorizer(policy(rules=[{"sources": [{"principals": ["cluster.local/ns/shop/sa/web"]}]}]))
    assert allowed(auth, tcp(principal=WEB))
    assert not allowed(auth, tcp(principal=None))


ISSUER = "https://issuer.example.com"


@pytest.mark.parametrize(
    ("patterns", "expected"),
    [
        ([f"{ISSUER}/alice"], True),
        ([f"{ISSUER}/bob"], False),
        ([f"{ISSUER}/*"], True),
        (["*/alice"], True),
        (["*example.com/alice"], True),
        ([f"{ISSUER}/al*"], True),
        (["*"], True),
        (["https://other/*"], False),
    ],
)
def test_request_principals_match_issuer_and_subject(patterns: list[str], expected: bool) -> None:
    auth = authorizer(policy(rules=[{"sources": [{"request_principals": patterns}]}]))
    jwt = http(request_principal=f"{ISSUER}/alice", claims={"iss": ISSUER, "sub": "alice"})
    assert allowed(auth, jwt) is expected


def test_a_request_without_a_token_has_no_request_principal() -> None:
    auth = authorizer(policy(rules=[{"sources": [{"request_principals": ["*"]}]}]))
    assert not allowed(auth, http())
    negated = authorizer(policy("shop/need-jwt", "DENY", [{"sources": [{"not_request_principals": ["*"]}]}]))
    assert not allowed(negated, http())
    assert allowed(negated, http(request_principal=f"{ISSUER}/alice"))


def test_claims_audiences_and_presenter() -> None:
    claims = {
        "iss": ISSUER,
        "sub": "alice",
        "aud": ["orders", "billing"],
        "azp": "web-app",
        "groups": ["dev", "admin"],
        "org": {"team": "payments"},
        "admin": True,
    }
    token = http(request_principal=f"{ISSUER}/alice", claims=claims)

    def when(key: str, values: list[str]) -> bool:
        auth = authorizer(policy(rules=[{"conditions": [{"key": key, "values": values}]}]))
        return allowed(auth, token)

    assert when("request.auth.claims[groups]", ["admin"])
    assert not when("request.auth.claims[groups]", ["ops"])
    assert when("request.auth.claims[org][team]", ["pay*"])
    assert when("request.auth.claims[iss]", [ISSUER])
    assert not when("request.auth.claims[admin]", ["true"])  # strings and lists of strings only
    assert when("request.auth.audiences", ["billing"])
    assert when("request.auth.presenter", ["web-app"])
    assert when("request.auth.principal", [f"{ISSUER}/alice"])
    assert not when("request.auth.claims[missing]", ["*"])
