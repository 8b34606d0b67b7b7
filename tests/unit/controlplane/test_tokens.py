"""Join tokens: what they grant, and every way one is refused (expired, tampered, signed with
another key, malformed, for another trust domain)."""

from __future__ import annotations

import base64
import json

import pytest

from loom.controlplane.security.spiffe import SpiffeId
from loom.controlplane.security.tokens import JoinTokens, TokenRefused

KEY = b"k" * 32


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_token_grants_its_identity_until_it_expires() -> None:
    clock = Clock()
    tokens = JoinTokens(KEY, "cluster.local", clock)
    token, grant = tokens.mint("default", "catalog", ttl=3600)
    assert grant.identity == SpiffeId("cluster.local", "default", "catalog")
    assert grant.expires_at == clock.now + 3600
    assert tokens.verify(token) == grant
    assert tokens.verify(token) == grant  # reusable: every replica of the workload may use it
    clock.now += 3599
    assert tokens.verify(token).identity.service_account == "catalog"
    clock.now += 1
    with pytest.raises(TokenRefused, match=f"\\(id {grant.token_id}\\) expired at"):
        tokens.verify(token)


def test_every_token_is_different() -> None:
    tokens = JoinTokens(KEY, "cluster.local")
    assert tokens.mint("default", "catalog")[0] != tokens.mint("default", "catalog")[0]


def _payload(token: str) -> dict[str, object]:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def _with_payload(token: str, payload: dict[str, object]) -> str:
    version, _, signature = token.split(".")
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{version}.{body}.{signature}"


@pytest.mark.parametrize(
    "change", [{"sa": "admin"}, {"ns": "kube-system"}, {"exp": 4_000_000_000}, {"td": "evil.example"}]
)
def test_a_tampered_token_is_refused(change: dict[str, object]) -> None:
    tokens = JoinTokens(KEY, "cluster.local")
    token, _ = tokens.mint("default", "catalog")
    tampered = _with_payload(token, {**_payload(token), **change})
    with pytest.raises(TokenRefused, match="signature does not verify"):
        tokens.verify(tampered)


def test_a_token_signed_with_another_key_is_refused() -> None:
    token, _ = JoinTokens(b"x" * 32, "cluster.local").mint("default", "catalog")
    with pytest.raises(TokenRefused, match="not issued by this control plane"):
        JoinTokens(KEY, "cluster.local").verify(token)


def test_a_token_of_another_trust_domain_is_refused() -> None:
    token, _ = JoinTokens(KEY, "other.example").mint("default", "catalog")
    with pytest.raises(TokenRefused, match=r"trust domain other\.example"):
        JoinTokens(KEY, "cluster.local").verify(token)


@pytest.mark.parametrize("token", ["", "v1", "v1.a", "v2.a.b", "v1.a.b.c", "v1.!!!.???", "v1..", "garbage"])
def test_a_malformed_token_is_refused(token: str) -> None:
    with pytest.raises(TokenRefused):
        JoinTokens(KEY, "cluster.local").verify(token)


def test_a_signed_but_malformed_payload_is_refused() -> None:
    tokens = JoinTokens(KEY, "cluster.local")
    body = base64.urlsafe_b64encode(b'{"ns": "default"}').rstrip(b"=").decode()
    forged = f"v1.{body}.{base64.urlsafe_b64encode(tokens._mac(body)).rstrip(b'=').decode()}"
    with pytest.raises(TokenRefused, match="malformed join token payload"):
        tokens.verify(forged)


@pytest.mark.parametrize(
    ("namespace", "service_account", "ttl"),
    [("Default", "catalog", 60), ("default", "a/b", 60), ("", "catalog", 60), ("default", "catalog", 0)],
)
def test_minting_checks_names_and_ttl(namespace: str, service_account: str, ttl: float) -> None:
    with pytest.raises(ValueError):
        JoinTokens(KEY, "cluster.local").mint(namespace, service_account, ttl)
