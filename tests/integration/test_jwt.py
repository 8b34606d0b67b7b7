"""RequestAuthentication through a real proxy: JWT rules on the inbound side of a sidecar run from a
snapshot file, tokens signed in the test, the app a real backend that echoes what it received."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.backend import echo
from tests.support.jwt import SigningKey, claims
from tests.support.snapshots import cluster, route_to, sidecar

ISSUER = "https://idp.example"


@pytest.fixture
async def protected(backend, proxy):
    """An inbound sidecar in front of the echo backend, trusting ISSUER's RSA key."""
    app = await backend("app")
    doc = sidecar([route_to(("app", 1))], [cluster("app", [app.port])], direction="inbound")
    key = SigningKey.rsa("idp-1")
    doc["security"] = {
        "jwt_rules": [
            {
                "issuer": ISSUER,
                "audiences": ["orders"],
                "jwks": key.jwks_text(SigningKey.ec("idp-2")),
                "output_claim_to_headers": {"x-jwt-sub": "sub", "x-jwt-group": "group"},
            }
        ]
    }
    sidecar_proxy = await proxy(doc)
    async with httpx.AsyncClient(base_url=sidecar_proxy.url("/", "inbound"), timeout=10) as client:
        yield key, client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_valid_token_reaches_the_app_as_claim_headers_without_the_token(protected) -> None:
    key, client = protected
    token = key.sign(claims(aud="orders", group="admins"))
    response = await client.get("/echo", headers={**bearer(token), "x-jwt-group": "spoofed"})
    assert response.status_code == 200, response.text
    seen = {k.lower(): v for k, v in echo(response.content)["headers"].items()}
    assert seen["x-jwt-sub"] == "alice" and seen["x-jwt-group"] == "admins"
    assert "authorization" not in seen
    # The same token again is served from the verified-token cache.
    again = await client.get("/echo", headers=bearer(token))
    assert again.status_code == 200


async def test_an_ec_key_of_the_same_set_verifies_too(protected) -> None:
    _, client = protected
    ec_key = SigningKey.ec("idp-2")
    response = await client.get("/echo", headers=bearer(ec_key.sign(claims(aud="orders"))))
    assert response.status_code == 200, response.text


async def test_no_token_passes(protected) -> None:
    _, client = protected
    response = await client.get("/echo")
    assert response.status_code == 200
    assert "x-jwt-sub" not in {k.lower() for k in echo(response.content)["headers"]}


@pytest.mark.parametrize(
    ("case", "status", "body"),
    [
        ("expired", 401, "Jwt is expired"),
        ("wrong signature", 401, "Jwt verification fails"),
        ("unknown issuer", 401, "Jwt issuer is not configured"),
        ("wrong audience", 403, "Audiences in Jwt are not allowed"),
        ("malformed", 401, "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"),
    ],
)
async def test_a_bad_token_is_refused_with_envoys_answer(
    protected, case: str, status: int, body: str
) -> None:
    key, client = protected
    tokens = {
        "expired": lambda: key.sign(claims(aud="orders", exp=int(time.time()) - 120)),
        "wrong signature": lambda: SigningKey("idp-1", SigningKey.rsa("forger").private, "RS256").sign(
            claims(aud="orders")
        ),
        "unknown issuer": lambda: key.sign(claims(iss="https://evil.example", aud="orders")),
        "wrong audience": lambda: key.sign(claims(aud="payments")),
        "malformed": lambda: "not-a-token",
    }
    response = await client.get("/echo?q=1", headers=bearer(tokens[case]()))
    assert (response.status_code, response.text) == (status, body)
    realm = response.headers["www-authenticate"]
    assert realm.startswith('Bearer realm="http://') and realm.endswith('/echo?q=1", error="invalid_token"')
