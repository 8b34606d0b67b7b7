"""The decision, in Istio's order (AUDIT marks, DENY first, then ALLOW), and the rule semantics."""

from __future__ import annotations

import pytest

from loom.proxy.authz.engine import Authorizer
from tests.unit.authz.support import allowed, authorizer, http, policy


def test_without_policies_everything_is_allowed_without_looking() -> None:
    auth = Authorizer([])
    assert not auth.enabled
    decision = auth.check(http(b"/admin"))
    assert decision.allowed and not decision.audited


def test_an_allow_policy_without_rules_denies_everything() -> None:
    # `spec: {}` — Istio's deny-all idiom.
    auth = authorizer(policy("shop/deny-all"))
    decision = auth.check(http())
    assert not decision.allowed
    assert decision.policy is None  # no DENY policy matched: no ALLOW policy did


def test_an_allow_policy_with_one_empty_rule_allows_everything() -> None:
    assert allowed(authorizer(policy("shop/allow-all", rules=[{}])), http(b"/anything", b"DELETE"))


def test_a_deny_policy_without_rules_denies_nothing_and_one_empty_rule_denies_everything() -> None:
    assert allowed(authorizer(policy("shop/none", "DENY")), http())
    decision = authorizer(policy("shop/all", "DENY", [{}])).check(http())
    assert not decision.allowed and decision.policy == "shop/all"


def test_deny_is_evaluated_before_allow() -> None:
    auth = authorizer(
        policy("shop/allow-all", rules=[{}]),
        policy("shop/no-admin", "DENY", [{"operations": [{"paths": ["/admin*"]}]}]),
    )
    assert allowed(auth, http(b"/public"))
    denied = auth.check(http(b"/admin/users"))
    assert not denied.allowed and denied.policy == "shop/no-admin"


def test_with_allow_policies_a_request_must_match_one_of_them() -> None:
    auth = authorizer(
        policy("shop/reads", rules=[{"operations": [{"methods": ["GET", "HEAD"]}]}]),
        policy("shop/health", rules=[{"operations": [{"paths": ["/healthz"]}]}]),
    )
    assert allowed(auth, http(b"/items", b"GET"))
    assert allowed(auth, http(b"/healthz", b"POST"))
    assert not allowed(auth, http(b"/items", b"POST"))


def test_audit_marks_the_request_and_changes_no_decision() -> None:
    auth = authorizer(
        policy("shop/audit", "AUDIT", [{"operations": [{"paths": ["/secret*"]}]}]),
        policy("shop/deny", "DENY", [{"operations": [{"methods": ["DELETE"]}]}]),
    )
    plain = auth.check(http(b"/public"))
    assert plain.allowed and not plain.audited
    marked = auth.check(http(b"/secret/1"))
    assert marked.allowed and marked.audited
    both = auth.check(http(b"/secret/1", b"DELETE"))
    assert not both.allowed and both.audited and both.policy == "shop/deny"
    assert both.audit_policy == "shop/audit"
    assert both.details == "rbac_access_denied_matched_policy[shop/deny]"


def test_the_first_audit_policy_that_matches_is_the_one_named() -> None:
    auth = authorizer(
        policy("shop/audit-all", "AUDIT", [{}]),
        policy("shop/audit-secret", "AUDIT", [{"operations": [{"paths": ["/secret*"]}]}]),
        policy("shop/reads", rules=[{"operations": [{"methods": ["GET"]}]}]),
    )
    read = auth.check(http(b"/secret/1"))
    assert read.allowed and read.audit_policy == "shop/audit-all" and read.details is None
    write = auth.check(http(b"/secret/1", b"POST"))
    assert not write.allowed and write.audit_policy == "shop/audit-all"
    assert write.details == "rbac_access_denied_matched_policy[none]"


def test_decisions_are_made_once_per_outcome() -> None:
    auth = authorizer(
        policy("shop/audit", "AUDIT", [{"operations": [{"paths": ["/secret*"]}]}]),
        policy("shop/deny", "DENY", [{"operations": [{"methods": ["DELETE"]}]}]),
    )
    assert auth.check(http(b"/a", b"DELETE")) is auth.check(http(b"/b", b"DELETE"))
    assert auth.check(http(b"/secret/1")) is auth.check(http(b"/secret/2"))


def test_rule_semantics_any_source_any_operation_every_condition() -> None:
    rule = {
        "sources": [{"ip_blocks": ["10.1.0.0/16"]}, {"ip_blocks": ["192.168.0.0/16"]}],
        "operations": [{"methods": ["GET"], "paths": ["/a"]}, {"methods": ["POST"], "paths": ["/b"]}],
        "conditions": [
            {"key": "request.headers[x-env]", "values": ["prod"]},
            {"key": "request.headers[x-team]", "not_values": ["blocked"]},
        ],
    }
    auth = authorizer(policy(rules=[rule]))
    env = [(b"X-Env", b"prod")]
    assert allowed(auth, http(b"/a", b"GET", headers=env))
    assert allowed(auth, http(b"/b", b"POST", headers=env, peer_ip="192.168.3.3"))
    assert not allowed(auth, http(b"/a", b"POST", headers=env))  # fields of one operation: AND
    assert not allowed(auth, http(b"/a", b"GET", headers=env, peer_ip="172.16.0.1"))
    assert not allowed(auth, http(b"/a", b"GET"))  # a condition fails
    assert not allowed(auth, http(b"/a", b"GET", headers=[*env, (b"x-team", b"blocked")]))


def test_not_fields_exclude() -> None:
    operation = {"paths": ["/api/*"], "not_paths": ["/api/internal/*"], "not_methods": ["DELETE"]}
    auth = authorizer(policy(rules=[{"operations": [operation]}]))
    assert allowed(auth, http(b"/api/items"))
    assert not allowed(auth, http(b"/api/internal/x"))
    assert not allowed(auth, http(b"/api/items", b"DELETE"))


def test_paths_are_matched_normalized_and_without_the_query() -> None:
    auth = authorizer(
        policy("shop/allow", rules=[{}]),
        policy("shop/deny", "DENY", [{"operations": [{"paths": ["/admin", "/admin/*"]}]}]),
    )
    assert not allowed(auth, http(b"/public/../admin"))
    assert not allowed(auth, http(b"/%61dmin/x"))
    assert not allowed(auth, http(b"/./admin"))
    assert allowed(auth, http(b"/administrator"))


def test_path_templates() -> None:
    auth = authorizer(policy(rules=[{"operations": [{"paths": ["/users/{*}/orders", "/files/{**}"]}]}]))
    assert allowed(auth, http(b"/users/42/orders"))
    assert allowed(auth, http(b"/files/a/b/c.txt"))
    assert not allowed(auth, http(b"/users/42/7/orders"))


@pytest.mark.parametrize(
    ("hosts", "authority", "port", "expected"),
    [
        (["web.shop"], b"web.shop", None, True),
        (["WEB.Shop"], b"web.shop", None, True),  # case-insensitive
        (["web.shop"], b"web.shop", 8080, False),  # Istio matches the Host as sent, port included
        (["web.shop:8080"], b"web.shop", 8080, True),
        (["web.shop*"], b"web.shop", 8080, True),
        (["*.shop"], b"web.shop", None, True),
        (["*"], b"web.shop", 8080, True),
    ],
)
def test_hosts(hosts: list[str], authority: bytes, port: int | None, expected: bool) -> None:
    auth = authorizer(policy(rules=[{"operations": [{"hosts": hosts}]}]))
    assert allowed(auth, http(authority=authority, port=port)) is expected


def test_ports_are_the_port_the_connection_arrived_on() -> None:
    auth = authorizer(policy(rules=[{"operations": [{"ports": [8080]}]}]))
    assert allowed(auth, http(dest_port=8080))
    assert not allowed(auth, http(dest_port=9090))


def test_headers_match_case_insensitively_by_name_and_any_joined_value() -> None:
    auth = authorizer(
        policy(rules=[{"conditions": [{"key": "request.headers[X-Version]", "values": ["v2*"]}]}])
    )
    assert allowed(auth, http(headers=[(b"x-version", b"v2.1")]))
    assert allowed(auth, http(headers=[(b"X-Version", b"v1"), (b"X-Version", b"v2")]))  # joined: v1,v2
    assert not allowed(auth, http(headers=[(b"x-version", b"v1")]))
    assert not allowed(auth, http())


def test_header_presence() -> None:
    auth = authorizer(policy(rules=[{"conditions": [{"key": "request.headers[x-debug]", "values": ["*"]}]}]))
    assert allowed(auth, http(headers=[(b"x-debug", b"")]))
    assert not allowed(auth, http())


def test_ip_blocks_the_peer_and_remote_ip_blocks_the_original_client() -> None:
    auth = authorizer(
        policy("shop/allow", rules=[{}]),
        policy("shop/deny-peer", "DENY", [{"sources": [{"ip_blocks": ["10.9.0.0/16"]}]}]),
        policy("shop/deny-client", "DENY", [{"sources": [{"remote_ip_blocks": ["203.0.113.0/24"]}]}]),
    )
    assert not allowed(auth, http(peer_ip="10.9.1.1"))
    assert allowed(auth, http(peer_ip="10.8.1.1"))
    forwarded = [(b"x-forwarded-for", b"203.0.113.9, 10.8.1.1")]
    assert auth.check(http(peer_ip="10.8.1.1", headers=forwarded)).policy == "shop/deny-client"
    # Without X-Forwarded-For the remote address is the peer.
    assert auth.check(http(peer_ip="203.0.113.5")).policy == "shop/deny-client"
    assert allowed(auth, http(peer_ip="10.8.1.1", headers=[(b"x-forwarded-for", b"garbage")]))


def test_ip_conditions() -> None:
    auth = authorizer(
        policy(
            rules=[
                {
                    "conditions": [
                        {"key": "source.ip", "values": ["10.1.0.0/16"]},
                        {"key": "remote.ip", "not_values": ["10.1.0.99"]},
                        {"key": "destination.ip", "values": ["10.1.0.1"]},
                        {"key": "destination.port", "values": ["8080", "8443"]},
                    ]
                }
            ]
        )
    )
    assert allowed(auth, http())
    assert not allowed(auth, http(peer_ip="10.1.0.99"))
    assert not allowed(auth, http(dest_ip="10.1.0.2"))
    assert not allowed(auth, http(dest_port=9000))
    assert auth.needs_dest_ip


def test_sni_condition() -> None:
    auth = authorizer(policy(rules=[{"conditions": [{"key": "connection.sni", "values": ["*.shop.svc"]}]}]))
    assert allowed(auth, http(sni="web.shop.svc"))
    assert not allowed(auth, http())  # plaintext: no SNI
