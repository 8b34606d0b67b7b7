"""Decoding a compact JWS and checking its claims' types, with Envoy's messages for what is wrong."""

from __future__ import annotations

import json

import pytest

from loom.proxy.authn import errors
from loom.proxy.authn.errors import JwtError
from loom.proxy.authn.token import b64url_decode, parse_jwt
from tests.support.jwt import SigningKey, b64url, claims


def raw(header: object, payload: object, signature: bytes = b"sig") -> bytes:
    encode = lambda part: b64url(json.dumps(part).encode())  # noqa: E731
    return f"{encode(header)}.{encode(payload)}.{b64url(signature)}".encode()


def refused(token: bytes) -> str:
    with pytest.raises(JwtError) as caught:
        parse_jwt(token)
    assert caught.value.status == 401
    return caught.value.message


def test_a_signed_token_decodes() -> None:
    key = SigningKey.rsa()
    token = key.sign(claims(aud=["orders", "billing"], nbf=5)).encode()
    jwt = parse_jwt(token)
    assert (jwt.alg, jwt.kid, jwt.iss, jwt.sub) == ("RS256", key.kid, "https://idp.example", "alice")
    assert jwt.audiences == ("orders", "billing") and jwt.nbf == 5 and jwt.exp > 0
    assert jwt.signing_input == token.rsplit(b".", 1)[0]
    assert len(jwt.signature) == 256
    assert jwt.payload["sub"] == "alice"


def test_a_single_audience_and_absent_claims() -> None:
    jwt = parse_jwt(raw({"alg": "ES256"}, {"aud": "orders"}))
    assert jwt.audiences == ("orders",)
    assert (jwt.iss, jwt.sub, jwt.kid, jwt.exp, jwt.nbf) == ("", "", "", 0, 0)


@pytest.mark.parametrize(
    "token",
    [b"abc", b"a.b", b"a.b.c.d", b"a..c", b".b.c", b""],
)
def test_not_three_sections(token: bytes) -> None:
    assert refused(token) == errors.BAD_FORMAT


def test_sections_that_do_not_decode() -> None:
    good = raw({"alg": "RS256"}, {}).split(b".")
    assert refused(b"%%%." + good[1] + b"." + good[2]) == errors.HEADER_BAD_BASE64
    assert refused(b64url(b"[1]").encode() + b"." + good[1] + b"." + good[2]) == errors.HEADER_BAD_JSON
    assert refused(b64url(b"{nope").encode() + b"." + good[1] + b"." + good[2]) == errors.HEADER_BAD_JSON
    assert refused(good[0] + b".!!." + good[2]) == errors.PAYLOAD_BAD_BASE64
    assert refused(good[0] + b"." + b64url(b'"str"').encode() + b"." + good[2]) == errors.PAYLOAD_BAD_JSON
    assert refused(good[0] + b"." + good[1] + b".a+b/") == errors.SIGNATURE_BAD_BASE64


@pytest.mark.parametrize("alg", ["none", "HS256", "HS512", "EdDSA", "rs256"])
def test_algorithms_loom_does_not_accept(alg: str) -> None:
    assert refused(raw({"alg": alg}, {})) == errors.ALG_NOT_SUPPORTED


def test_header_fields_of_the_wrong_type() -> None:
    assert refused(raw({}, {})) == errors.HEADER_BAD_ALG
    assert refused(raw({"alg": 256}, {})) == errors.HEADER_BAD_ALG
    assert refused(raw({"alg": "RS256", "kid": 7}, {})) == errors.HEADER_BAD_KID


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"iss": 1}, "Jwt payload [iss] field is not a string"),
        ({"sub": ["a"]}, "Jwt payload [sub] field is not a string"),
        ({"exp": "tomorrow"}, "Jwt payload [exp] field is not an integer"),
        ({"exp": True}, "Jwt payload [exp] field is not an integer"),
        ({"nbf": -1}, "Jwt payload [nbf] field is not a positive 64 bit integer"),
        ({"iat": {}}, "Jwt payload [iat] field is not an integer"),
        ({"jti": 3}, "Jwt payload [jti] field is not a string"),
        ({"aud": 3}, errors.AUD_NOT_STRING),
        ({"aud": ["a", 3]}, errors.AUD_NOT_STRING),
    ],
)
def test_claims_of_the_wrong_type(payload: dict[str, object], message: str) -> None:
    assert refused(raw({"alg": "RS256"}, payload)) == message


def test_base64url_with_and_without_padding() -> None:
    assert b64url_decode(b"YWI") == b64url_decode(b"YWI=") == b"ab"
    assert b64url_decode(b"-_8") == b"\xfb\xff"
    for bad in (b"a", b"a+b", b"a/b", b"a b"):
        with pytest.raises(ValueError):
            b64url_decode(bad)
