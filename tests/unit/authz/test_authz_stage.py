"""The ``authorize`` stage on an exchange, and policies the proxy refuses to load.

The exchange and its connection are stand-ins carrying what the stage reads, so the principal of
a mutual-TLS peer and the JWT stage's results can be set directly.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import msgspec
import pytest

from loom.proxy.authz.engine import Authorizer
from loom.proxy.http.authorize import authorize
from loom.proxy.http.chain import INBOUND, OUTBOUND
from loom.proxy.http.stages import assign_request_id, select_route
from loom.snapshot import SnapshotError
from loom.snapshot.model import Listener
from tests.support.heads import build_head
from tests.unit.authz.support import WEB, authorizer, policy


class FakeExchange:
    def __init__(
        self, auth: Authorizer, path: bytes = b"/", principal: str | None = None, **extra: Any
    ) -> None:
        config = msgspec.convert(
            {
                "name": "inbound",
                "direction": "inbound",
                "address": "10.1.0.1",
                "port": 15006,
                "route_config": "r",
            },
            Listener,
        )
        self.config = SimpleNamespace(authorizer=auth)
        self.conn = SimpleNamespace(
            listener=SimpleNamespace(config=config),
            original_dst=None,
            transport=None,
            peer_ip="10.1.0.7",
            peer_principal=principal,
        )
        self.head = build_head(path=path)
        self.request_principal = extra.get("request_principal")
        self.jwt_claims = extra.get("jwt_claims")
        self.authz = None
        self.replies: list[tuple[int, bytes, str]] = []

    def reply(self, status: int, body: bytes, flag: str = "", extra: Any = None) -> bool:
        self.replies.append((status, body, flag))
        return True


def run(ex: FakeExchange) -> bool:
    return authorize(ex)  # type: ignore[arg-type]


def test_a_denied_request_gets_403_rbac_access_denied_and_no_flag() -> None:
    ex = FakeExchange(authorizer(policy("shop/deny-all")))
    assert run(ex) is True
    assert ex.replies == [(403, b"RBAC: access denied", "")]
    # No ALLOW policy matched: Envoy's details name no policy.
    assert ex.authz is not None and ex.authz.details == "rbac_access_denied_matched_policy[none]"


def test_a_request_a_deny_policy_matched_names_it_in_the_details() -> None:
    ex = FakeExchange(authorizer(policy("shop/allow-all", rules=[{}]), policy("shop/no-x", "DENY", [{}])))
    assert run(ex) is True
    assert ex.authz is not None
    assert ex.authz.details == "rbac_access_denied_matched_policy[shop/no-x]"
    assert ex.authz.audit_policy is None


def test_an_allowed_request_goes_on() -> None:
    ex = FakeExchange(authorizer(policy(rules=[{}])))
    assert run(ex) is False
    assert ex.replies == []
    assert ex.authz is not None and ex.authz.details is None and ex.authz.audit_policy is None


def test_no_policies_no_work() -> None:
    ex = FakeExchange(Authorizer([]))
    assert run(ex) is False
    assert ex.authz is None  # nothing decided: nothing for the access log either


def test_the_peer_principal_of_the_connection_is_used() -> None:
    only_web = authorizer(policy(rules=[{"sources": [{"principals": ["cluster.local/ns/shop/sa/web"]}]}]))
    assert run(FakeExchange(only_web, principal=WEB)) is False
    assert run(FakeExchange(only_web, principal=None)) is True


def test_the_jwt_stages_results_are_used() -> None:
    admins = authorizer(
        policy(rules=[{"conditions": [{"key": "request.auth.claims[groups]", "values": ["admin"]}]}])
    )
    claims = {"iss": "https://idp", "sub": "alice", "groups": ["admin"]}
    assert run(FakeExchange(admins, request_principal="https://idp/alice", jwt_claims=claims)) is False
    assert run(FakeExchange(admins)) is True


def test_audit_marks_the_exchange() -> None:
    ex = FakeExchange(authorizer(policy("shop/audit", "AUDIT", [{}])))
    assert run(ex) is False
    assert ex.authz is not None and ex.authz.audited and ex.authz.audit_policy == "shop/audit"


def test_the_inbound_chain_authorizes_before_routing_and_the_outbound_does_not() -> None:
    assert INBOUND.index(assign_request_id) < INBOUND.index(authorize) < INBOUND.index(select_route)
    assert authorize not in OUTBOUND


# --- policies the proxy cannot use: refused with every problem and its field path ------------


def test_unusable_values_are_refused_with_their_field_paths() -> None:
    bad = policy(
        rules=[
            {
                "sources": [{"ip_blocks": ["10.0.0.0/8", "ten"], "not_remote_ip_blocks": ["1.2.3.4/99"]}],
                "operations": [{"paths": ["/a/{*}.txt"]}],
                "conditions": [
                    {"key": "request.header[x]", "values": ["1"]},
                    {"key": "request.headers[]", "values": ["1"]},
                    {"key": "request.auth.claims", "values": ["1"]},
                    {"key": "destination.port", "values": ["http"]},
                    {"key": "source.ip", "values": []},
                ],
            }
        ]
    )
    with pytest.raises(SnapshotError) as caught:
        Authorizer([policy("shop/fine", rules=[{}]), bad])
    fields = [p.field for p in caught.value.problems]
    where = "security.authorization[1].rules[0]"
    assert fields == [
        f"{where}.sources[0].ip_blocks[1]",
        f"{where}.sources[0].not_remote_ip_blocks[0]",
        f"{where}.operations[0].paths",
        f"{where}.conditions[0].key",
        f"{where}.conditions[1].key",
        f"{where}.conditions[2].key",
        f"{where}.conditions[3].values[0]",
        f"{where}.conditions[4]",
    ]
    text = str(caught.value)
    assert "'ten' is not an IP address" in text
    assert "unknown condition key 'request.header[x]'" in text
    assert "must be a whole segment" in text
