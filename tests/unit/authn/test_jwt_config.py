"""JWT rules in a snapshot: schema checks, compiling them into a ProxyConfig, the challenge a refused
token gets, and ``cryptography`` staying out of sidecars without rules."""

from __future__ import annotations

import subprocess
import sys

import pytest

from loom.proxy.authn.stage import challenge
from loom.proxy.config import ProxyConfig
from loom.proxy.telemetry import MeshMetrics
from loom.snapshot import SnapshotError, parse_snapshot
from loom.snapshot.security import JwtRule
from tests.support.heads import build_head
from tests.support.jwt import SigningKey


def snapshot_doc(jwt_rules: list[dict[str, object]]) -> dict[str, object]:
    return {
        "node": {"workload": "orders", "namespace": "default"},
        "security": {"jwt_rules": jwt_rules},
    }


def test_a_jwks_that_is_not_a_key_set_is_refused_at_its_field() -> None:
    for jwks in ("not json", '{"keys": "x"}', "[]"):
        with pytest.raises(SnapshotError) as caught:
            parse_snapshot(snapshot_doc([{"issuer": "https://idp", "jwks": jwks}]))
        assert "security.jwt_rules[0].jwks" in str(caught.value)
    with pytest.raises(ValueError, match="keys"):
        JwtRule(issuer="https://idp", jwks="{}")


def test_proxy_config_compiles_rules_only_when_there_are_some() -> None:
    empty = parse_snapshot(snapshot_doc([]))
    assert ProxyConfig(empty, None, MeshMetrics(empty.node), None).jwt_authn is None
    key = SigningKey.rsa()
    snapshot = parse_snapshot(snapshot_doc([{"issuer": "https://idp", "jwks": key.jwks_text()}]))
    authn = ProxyConfig(snapshot, None, MeshMetrics(snapshot.node), None).jwt_authn
    assert authn is not None and [r.issuer for r in authn.rules] == ["https://idp"]
    assert [k.kid for k in authn.rules[0].keys] == [key.kid]


def test_the_challenge_names_the_original_uri() -> None:
    head = build_head(path=b"/orders/7", query=b"x=1", authority=b"orders", port=8080)
    assert challenge(head) == b'Bearer realm="http://orders:8080/orders/7?x=1", error="invalid_token"'
    head.hmap[b"x-forwarded-proto"] = b"https"
    head.target = b"/" + b"a" * 400
    value = challenge(head)
    assert value.startswith(b'Bearer realm="https://orders:8080/aaa') and len(value) < 320


def test_a_sidecar_without_rules_does_not_import_cryptography() -> None:
    code = (
        "import sys, loom.proxy.server, loom.proxy.http.chain;"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('cryptography', '_cffi_backend'));"
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
