"""A JWKS as public keys, and signature checks per algorithm: each key verifies its own family only."""

from __future__ import annotations

import json

import pytest

from loom.proxy.authn.keys import load_jwks, parse_jwk
from loom.proxy.authn.token import parse_jwt
from tests.support.jwt import SigningKey, claims


def verifies(key: SigningKey, token: str, jwk: dict[str, str] | None = None) -> bool:
    public = parse_jwk(jwk or key.jwk())
    assert public is not None
    jwt = parse_jwt(token.encode())
    return public.verify(jwt.alg, jwt.signing_input, jwt.signature)


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"])
def test_rsa_algorithms(alg: str) -> None:
    key = SigningKey.rsa()
    assert verifies(key, key.sign(claims(), alg=alg))


@pytest.mark.parametrize("crv", ["P-256", "P-384", "P-521"])
def test_ec_curves(crv: str) -> None:
    key = SigningKey.ec(crv=crv)
    assert verifies(key, key.sign(claims()))


def test_a_changed_payload_or_another_key_fails() -> None:
    key = SigningKey.rsa()
    token = key.sign(claims())
    header, _, signature = token.split(".")
    forged = key.sign(claims(sub="mallory")).split(".")[1]
    assert not verifies(key, f"{header}.{forged}.{signature}")
    assert not verifies(SigningKey.rsa("other"), token)
    ec_key = SigningKey.ec()
    assert not verifies(SigningKey.ec("other-ec"), ec_key.sign(claims()))


def test_a_key_never_verifies_another_family() -> None:
    rsa_key = SigningKey.rsa()
    ec_key = SigningKey.ec()
    public_rsa = parse_jwk(rsa_key.jwk())
    public_ec = parse_jwk(ec_key.jwk())
    assert public_rsa is not None and public_ec is not None
    ec_token = parse_jwt(ec_key.sign(claims()).encode())
    assert not public_rsa.verify("ES256", ec_token.signing_input, ec_token.signature)
    rsa_token = parse_jwt(rsa_key.sign(claims()).encode())
    assert not public_ec.verify("RS256", rsa_token.signing_input, rsa_token.signature)
    # An EC key verifies the one algorithm of its curve.
    assert not public_ec.verify("ES384", ec_token.signing_input, ec_token.signature)
    assert not public_rsa.verify("HS256", rsa_token.signing_input, rsa_token.signature)


def test_a_truncated_ec_signature_fails() -> None:
    key = SigningKey.ec()
    jwt = parse_jwt(key.sign(claims()).encode())
    public = parse_jwk(key.jwk())
    assert public is not None
    assert not public.verify("ES256", jwt.signing_input, jwt.signature[:-1])


def test_load_jwks_keeps_usable_keys_and_skips_the_rest(caplog: pytest.LogCaptureFixture) -> None:
    rsa_key, ec_key = SigningKey.rsa(), SigningKey.ec()
    text = json.dumps(
        {
            "keys": [
                rsa_key.jwk(alg=True),
                {"kty": "oct", "k": "c2VjcmV0"},
                {"kty": "OKP", "crv": "Ed25519", "x": "AA"},
                {**ec_key.jwk(), "use": "enc"},
                {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
                {"kty": "RSA", "n": "AQAB"},
                {"kty": "RSA", "alg": "ES256", "n": "AQAB", "e": "AQAB"},
                "not a key",
                ec_key.jwk(),
            ]
        }
    )
    keys = load_jwks(text, "rule")
    assert [(k.kty, k.kid, k.alg) for k in keys] == [("RSA", "rsa-1", "RS256"), ("EC", "ec-1", "")]
    skipped = [r.getMessage() for r in caplog.records]
    assert len(skipped) == 6 and all(m.startswith("rule: keys[") for m in skipped)
    assert "kty 'oct' is not supported" in skipped[0]


@pytest.mark.parametrize("text", ["nope", "[]", '{"keys": {}}', "{}"])
def test_load_jwks_refuses_what_is_not_a_key_set(text: str) -> None:
    with pytest.raises(ValueError, match="rule"):
        load_jwks(text, "rule")


def test_an_empty_key_set_has_no_keys() -> None:
    assert load_jwks('{"keys": []}') == []
