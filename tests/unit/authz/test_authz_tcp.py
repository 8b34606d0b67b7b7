"""TCP connections: Istio's rule for the HTTP-only fields, and the TCP listener's check.

On a TCP connection methods, paths, hosts, request principals and the ``request.*`` conditions
cannot be evaluated. An ALLOW rule using any of them never matches (allow less); a DENY or AUDIT
rule is evaluated without them (deny more).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import msgspec

from loom.proxy.authz.connection import allow_tcp
from loom.snapshot.model import Listener
from tests.unit.authz.support import WEB, allowed, authorizer, http, policy, tcp


def test_allow_by_port_on_tcp() -> None:
    auth = authorizer(policy(rules=[{"operations": [{"ports": [5432]}]}]))
    assert allowed(auth, tcp(dest_port=5432))
    assert not allowed(auth, tcp(dest_port=5433))


def test_an_allow_rule_with_an_http_only_field_never_matches_a_tcp_connection() -> None:
    auth = authorizer(policy(rules=[{"operations": [{"ports": [5432], "methods": ["GET"]}]}]))
    assert not allowed(auth, tcp(dest_port=5432))
    assert allowed(auth, http(dest_port=5432))  # the same rule still works for HTTP


def test_the_whole_allow_rule_is_left_out_even_if_another_operation_is_tcp_only() -> None:
    auth = authorizer(policy(rules=[{"operations": [{"ports": [5432]}, {"paths": ["/x"]}]}]))
    assert not allowed(auth, tcp(dest_port=5432))


def test_other_allow_rules_still_apply() -> None:
    auth = authorizer(
        policy(rules=[{"operations": [{"methods": ["GET"]}]}, {"sources": [{"principals": ["*"]}]}])
    )
    assert allowed(auth, tcp(principal=WEB))
    assert not allowed(auth, tcp())


def test_request_principals_and_request_conditions_are_http_only_too() -> None:
    for rule in (
        {"sources": [{"request_principals": ["*"]}]},
        {"conditions": [{"key": "request.headers[x-a]", "values": ["1"]}]},
        {"conditions": [{"key": "request.auth.claims[groups]", "values": ["admin"]}]},
        {"operations": [{"hosts": ["*"]}]},
    ):
        assert not allowed(authorizer(policy(rules=[rule])), tcp()), rule


def test_a_deny_rule_is_evaluated_without_its_http_only_fields() -> None:
    auth = authorizer(policy("shop/no-get", "DENY", [{"operations": [{"methods": ["GET"]}]}]))
    assert allowed(auth, http(method=b"POST"))
    decision = auth.check(tcp())
    assert not decision.allowed and decision.policy == "shop/no-get"  # denies every connection


def test_a_deny_rule_keeps_its_tcp_fields() -> None:
    auth = authorizer(
        policy(
            "shop/deny",
            "DENY",
            [
                {
                    "sources": [{"ip_blocks": ["10.9.0.0/16"]}],
                    "operations": [{"paths": ["/admin"]}],
                    "conditions": [{"key": "request.headers[x-a]", "values": ["1"]}],
                }
            ],
        )
    )
    assert not allowed(auth, tcp(peer_ip="10.9.0.1"))
    assert allowed(auth, tcp(peer_ip="10.8.0.1"))


def test_audit_errs_towards_auditing_more() -> None:
    auth = authorizer(policy("shop/audit", "AUDIT", [{"operations": [{"paths": ["/secret"]}]}]))
    decision = auth.check(tcp())
    assert decision.allowed and decision.audited


# --- the TCP listener's check ---------------------------------------------------------------


class FakeTransport:
    def __init__(self, **extra: Any) -> None:
        self.extra = extra

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.extra.get(name, default)


def listener(direction: str, port: int = 15006, address: str = "10.1.0.1") -> Listener:
    doc = {
        "name": f"{direction}-tcp",
        "direction": direction,
        "protocol": "tcp",
        "address": address,
        "port": port,
        "tcp": {"destinations": [{"cluster": "db"}]},
    }
    return msgspec.convert(doc, Listener)


def connection(principal: str | None = None, peer: str = "10.1.0.7", **extra: Any) -> Any:
    transport = FakeTransport(peername=(peer, 40000), **extra)
    return SimpleNamespace(transport=transport, peer_principal=principal)


def test_an_inbound_tcp_connection_is_decided_with_its_peer_and_port() -> None:
    rule = {"sources": [{"principals": ["cluster.local/ns/shop/sa/web"]}], "operations": [{"ports": [15006]}]}
    auth = authorizer(policy(rules=[rule]))
    assert allow_tcp(connection(WEB), listener("inbound"), auth)
    assert not allow_tcp(connection(None), listener("inbound"), auth)
    assert not allow_tcp(connection(WEB), listener("inbound", port=15007), auth)


def test_port_zero_and_wildcard_listeners_read_the_socket() -> None:
    local_ip = {"key": "destination.ip", "values": ["10.1.0.1"]}
    auth = authorizer(policy(rules=[{"operations": [{"ports": [41000]}], "conditions": [local_ip]}]))
    local = connection(sockname=("10.1.0.1", 41000))
    assert allow_tcp(local, listener("inbound", port=0, address="0.0.0.0"), auth)
    elsewhere = connection(sockname=("10.1.0.2", 41000))
    assert not allow_tcp(elsewhere, listener("inbound", port=0, address="0.0.0.0"), auth)


def test_outbound_listeners_do_not_enforce() -> None:
    deny_all = authorizer(policy("shop/deny-all"))
    assert not allow_tcp(connection(), listener("inbound"), deny_all)
    assert allow_tcp(connection(), listener("outbound", address="127.0.0.1"), deny_all)
