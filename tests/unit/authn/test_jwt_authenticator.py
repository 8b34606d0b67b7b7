"""``JwtAuthenticator``: Istio's RequestAuthentication semantics on request heads, without sockets."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from loom.proxy.authn import JwtAuthenticator, JwtError, compile_jwt_rules, errors
from loom.proxy.authn.keys import PublicKey
from loom.proxy.codec.head import RequestHead
from loom.snapshot.security import JwtHeader, JwtRule
from tests.support.heads import build_head
from tests.support.jwt import SigningKey, claims

ISSUER = "https://idp.example"
OTHER = "https://other.example"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def rule(key: SigningKey | None = None, issuer: str = ISSUER, **fields: Any) -> JwtRule:
    jwks = (key or SigningKey.rsa()).jwks_text()
    return JwtRule(issuer=issuer, jwks=fields.pop("jwks", jwks), **fields)


def bearer(token: str, *extra: tuple[bytes, bytes]) -> RequestHead:
    return build_head(headers=[(b"Authorization", b"Bearer " + token.encode()), *extra])


def refused(authn: JwtAuthenticator, head: RequestHead) -> JwtError:
    with pytest.raises(JwtError) as caught:
        authn.authenticate(head)
    return caught.value


def test_no_rules_compile_to_nothing() -> None:
    assert compile_jwt_rules([]) is None


def test_a_request_without_a_token_passes_without_a_principal() -> None:
    authn = JwtAuthenticator([rule()])
    head = build_head(headers=[(b"Authorization", b"Basic dXNlcjpwdw==")])
    assert authn.authenticate(head) is None
    assert head.hmap[b"authorization"] == b"Basic dXNlcjpwdw=="


def test_a_valid_token_gives_the_principal_and_claims_and_is_removed() -> None:
    key = SigningKey.rsa()
    authn = JwtAuthenticator([rule(key, output_claim_to_headers={"X-Jwt-Sub": "sub", "x-group": "group"})])
    head = bearer(key.sign(claims(group="admins")), (b"x-keep", b"1"))
    verified = authn.authenticate(head)
    assert verified is not None
    assert verified.principal == f"{ISSUER}/alice"
    assert verified.payload["group"] == "admins"
    assert b"authorization" not in head.hmap
    assert all(name.lower() != b"authorization" for name, _ in head.headers)
    assert head.hmap[b"x-jwt-sub"] == b"alice" and head.hmap[b"x-group"] == b"admins"
    assert (b"x-jwt-sub", b"alice") in head.headers and head.hmap[b"x-keep"] == b"1"


def test_forward_original_token_keeps_it() -> None:
    key = SigningKey.rsa()
    authn = JwtAuthenticator([rule(key, forward_original_token=True)])
    token = key.sign(claims())
    head = bearer(token)
    assert authn.authenticate(head) is not None
    assert head.hmap[b"authorization"] == b"Bearer " + token.encode()


def test_claim_headers_sent_by_the_client_are_removed_first() -> None:
    key = SigningKey.rsa()
    authn = JwtAuthenticator([rule(key, output_claim_to_headers={"x-jwt-sub": "sub"})])
    spoofed = build_head(headers=[(b"X-Jwt-Sub", b"admin")])
    assert authn.authenticate(spoofed) is None
    assert b"x-jwt-sub" not in spoofed.hmap and len(spoofed.headers) == 1
    head = bearer(key.sign(claims()), (b"x-jwt-sub", b"admin"))
    authn.authenticate(head)
    assert head.hmap[b"x-jwt-sub"] == b"alice"
    assert [v for n, v in head.headers if n.lower() == b"x-jwt-sub"] == [b"alice"]


def test_expired_and_not_yet_valid_with_a_minute_of_skew() -> None:
    key = SigningKey.rsa()
    clock = Clock()
    authn = JwtAuthenticator([rule(key)], clock=clock)
    now = int(clock.now)
    assert authn.authenticate(bearer(key.sign(claims(exp=now - 50)))) is not None
    expired = refused(authn, bearer(key.sign(claims(exp=now - 61))))
    assert (expired.status, expired.message) == (401, errors.EXPIRED)
    assert authn.authenticate(bearer(key.sign(claims(nbf=now + 50)))) is not None
    early = refused(authn, bearer(key.sign(claims(nbf=now + 61))))
    assert early.message == errors.NOT_YET_VALID


def test_a_token_without_exp_never_expires() -> None:
    key = SigningKey.rsa()
    assert JwtAuthenticator([rule(key)]).authenticate(bearer(key.sign({"iss": ISSUER, "sub": "x"})))


def test_a_bad_signature_is_refused() -> None:
    key = SigningKey.rsa()
    impostor = SigningKey("rsa-1", SigningKey.rsa("impostor").private, "RS256")
    refusal = refused(JwtAuthenticator([rule(key)]), bearer(impostor.sign(claims())))
    assert (refusal.status, refusal.message) == (401, errors.VERIFICATION_FAILS)


def test_an_issuer_no_rule_names_is_refused() -> None:
    key = SigningKey.rsa()
    refusal = refused(JwtAuthenticator([rule(key)]), bearer(key.sign(claims(iss=OTHER))))
    assert (refusal.status, refusal.message) == (401, errors.UNKNOWN_ISSUER)
    no_iss = refused(JwtAuthenticator([rule(key)]), bearer(key.sign({"sub": "x"})))
    assert no_iss.message == errors.UNKNOWN_ISSUER


def test_a_malformed_token_is_refused() -> None:
    refusal = refused(JwtAuthenticator([rule()]), bearer("not-a-jwt"))
    assert (refusal.status, refusal.message) == (401, errors.BAD_FORMAT)


def test_audiences_any_of_them_and_as_envoy_compares_them() -> None:
    key = SigningKey.rsa()
    authn = JwtAuthenticator([rule(key, audiences=["https://orders.example/", "billing"])])
    assert authn.authenticate(bearer(key.sign(claims(aud=["x", "orders.example"])))) is not None
    assert authn.authenticate(bearer(key.sign(claims(aud="http://billing")))) is not None
    wrong = refused(authn, bearer(key.sign(claims(aud="payments"))))
    assert (wrong.status, wrong.message) == (403, errors.AUDIENCE_NOT_ALLOWED)
    assert refused(authn, bearer(key.sign(claims()))).status == 403  # no aud at all
    anyone = JwtAuthenticator([rule(key)])
    assert anyone.authenticate(bearer(key.sign(claims(aud="payments")))) is not None


def test_none_and_hmac_tokens_are_refused_before_any_key() -> None:
    key = SigningKey.rsa()
    authn = JwtAuthenticator([rule(key)])
    header = {"alg": "none"}
    unsigned = _unsigned(header, claims()) + "."
    assert refused(authn, bearer(unsigned)).message == errors.BAD_FORMAT
    assert refused(authn, bearer(_unsigned(header, claims()) + ".c2ln")).message == errors.ALG_NOT_SUPPORTED
    # The classic confusion: HS256 "signed" with the public key's bytes as the secret.
    hmac_token = _unsigned({"alg": "HS256", "kid": key.kid}, claims()) + ".c2ln"
    assert refused(authn, bearer(hmac_token)).message == errors.ALG_NOT_SUPPORTED


def test_kid_selects_the_key_and_keys_without_kid_are_tried() -> None:
    k1, k2 = SigningKey.rsa("k1"), SigningKey.rsa("k2")
    both = JwtAuthenticator([rule(jwks=k1.jwks_text(k2))])
    assert both.authenticate(bearer(k2.sign(claims()))) is not None
    unknown_kid = SigningKey("k9", k2.private, "RS256")
    assert refused(both, bearer(unknown_kid.sign(claims()))).message == errors.KID_ALG_MISMATCH
    anonymous = json.dumps({"keys": [k1.jwk(kid=False), k2.jwk(kid=False)]})
    assert JwtAuthenticator([rule(jwks=anonymous)]).authenticate(bearer(unknown_kid.sign(claims())))
    no_kid = k2.sign(claims(), header={"kid": ""})
    assert both.authenticate(bearer(no_kid)) is not None


def test_a_key_whose_alg_differs_is_not_used() -> None:
    key = SigningKey.rsa()
    authn = JwtAuthenticator([rule(jwks=json.dumps({"keys": [key.jwk(alg=True)]}))])
    assert authn.authenticate(bearer(key.sign(claims(), alg="RS256"))) is not None
    assert refused(authn, bearer(key.sign(claims(), alg="PS256"))).message == errors.KID_ALG_MISMATCH


def test_ec_tokens_and_a_token_for_the_wrong_key_type() -> None:
    ec_key = SigningKey.ec("shared")
    rsa_key = SigningKey.rsa("shared")
    assert JwtAuthenticator([rule(ec_key)]).authenticate(bearer(ec_key.sign(claims()))) is not None
    # An ES256 token whose kid names an RSA key: the RSA key never verifies ES256.
    refusal = refused(JwtAuthenticator([rule(rsa_key)]), bearer(ec_key.sign(claims())))
    assert refusal.message == errors.VERIFICATION_FAILS


def test_an_empty_key_set_refuses_every_token_of_its_issuer() -> None:
    key = SigningKey.rsa()
    authn = JwtAuthenticator([rule(jwks='{"keys": []}')])
    assert refused(authn, bearer(key.sign(claims()))).message == errors.VERIFICATION_FAILS
    assert authn.authenticate(build_head()) is None


def test_custom_header_with_prefix_and_query_parameters() -> None:
    key = SigningKey.rsa()
    authn = JwtAuthenticator(
        [rule(key, from_headers=[JwtHeader(name="X-Token", prefix="Jwt ")], from_params=["token"])]
    )
    token = key.sign(claims())
    head = build_head(headers=[(b"x-token", b"Jwt  " + token.encode())])
    assert authn.authenticate(head) is not None and b"x-token" not in head.hmap
    head = build_head(path=b"/a", query=b"x=1&token=" + token.encode() + b"&y=2")
    assert authn.authenticate(head) is not None
    assert head.query == b"x=1&y=2"
    # Authorization is not read by a rule that names its own locations.
    assert authn.authenticate(bearer("garbage")) is None


def test_the_default_access_token_parameter() -> None:
    key = SigningKey.rsa()
    authn = JwtAuthenticator([rule(key)])
    head = build_head(query=b"access%5Ftoken=" + key.sign(claims()).encode())
    assert authn.authenticate(head) is not None
    assert head.query == b""
    assert refused(authn, build_head(query=b"access_token=bad")).message == errors.BAD_FORMAT


def test_a_token_found_where_its_issuer_does_not_look_is_from_an_unknown_issuer() -> None:
    a, b = SigningKey.rsa("a"), SigningKey.rsa("b")
    authn = JwtAuthenticator(
        [
            rule(a, ISSUER, from_headers=[JwtHeader(name="x-a")]),
            rule(b, OTHER, from_headers=[JwtHeader(name="x-b")]),
        ]
    )
    good = build_head(headers=[(b"x-b", b.sign(claims(iss=OTHER)).encode())])
    verified = authn.authenticate(good)
    assert verified is not None and verified.principal == f"{OTHER}/alice"
    misplaced = build_head(headers=[(b"x-a", b.sign(claims(iss=OTHER)).encode())])
    assert refused(authn, misplaced).message == errors.UNKNOWN_ISSUER


def test_two_issuers_sharing_the_default_location() -> None:
    a, b = SigningKey.rsa("a"), SigningKey.ec("b")
    authn = JwtAuthenticator([rule(a, ISSUER), rule(b, OTHER)])
    assert authn.authenticate(bearer(a.sign(claims()))) is not None
    verified = authn.authenticate(bearer(b.sign(claims(iss=OTHER, sub="bob"))))
    assert verified is not None and verified.principal == f"{OTHER}/bob"


def test_two_rules_for_one_issuer_either_key_set_verifies() -> None:
    old, new = SigningKey.rsa("old"), SigningKey.rsa("new")
    authn = JwtAuthenticator([rule(old), rule(new)])
    assert authn.authenticate(bearer(old.sign(claims()))) is not None
    assert authn.authenticate(bearer(new.sign(claims()))) is not None


def test_every_token_must_be_valid() -> None:
    key = SigningKey.rsa()
    authn = JwtAuthenticator([rule(key, from_headers=[JwtHeader(name="x-a"), JwtHeader(name="x-b")])])
    good = key.sign(claims()).encode()
    head = build_head(headers=[(b"x-a", good), (b"x-b", b"bad.token.here")])
    assert refused(authn, head).status == 401
    head = build_head(headers=[(b"x-a", good), (b"x-a", key.sign(claims(sub="bob")).encode())])
    verified = authn.authenticate(head)
    assert verified is not None and verified.principal == f"{ISSUER}/alice"
    assert b"x-a" not in head.hmap


def test_a_repeated_token_costs_no_signature_check(monkeypatch: pytest.MonkeyPatch) -> None:
    key = SigningKey.rsa()
    clock = Clock()
    authn = JwtAuthenticator([rule(key)], clock=clock)
    checks = []
    real = PublicKey.verify

    def counting(self: PublicKey, alg: str, signing_input: bytes, signature: bytes) -> bool:
        checks.append(alg)
        return real(self, alg, signing_input, signature)

    monkeypatch.setattr(PublicKey, "verify", counting)
    token = key.sign(claims(ttl=120))
    for _ in range(5):
        verified = authn.authenticate(bearer(token))
        assert verified is not None and verified.principal == f"{ISSUER}/alice"
    assert len(checks) == 1 and len(authn.cache) == 1
    clock.now += 200  # past exp + skew: the cached token is refused and forgotten
    assert refused(authn, bearer(token)).message == errors.EXPIRED
    assert len(authn.cache) == 0


def test_refused_tokens_are_not_cached_and_the_cache_is_bounded() -> None:
    key = SigningKey.ec()
    authn = JwtAuthenticator([rule(key)])
    authn.cache.capacity = 3
    refused(authn, bearer(key.sign(claims(iss=OTHER))))
    assert len(authn.cache) == 0
    for i in range(5):
        authn.authenticate(bearer(key.sign(claims(sub=f"user-{i}"))))
    assert len(authn.cache) == 3


def test_claim_values_as_header_values() -> None:
    key = SigningKey.rsa()
    outputs = {"x-n": "n", "x-f": "f", "x-b": "b", "x-o": "o", "x-nested": "org.team", "x-evil": "evil"}
    authn = JwtAuthenticator([rule(key, output_claim_to_headers=outputs)])
    payload = claims(n=42, f=1.5, b=True, o={"k": 1}, org={"team": "core"}, evil="a\r\nx-admin: 1")
    head = bearer(key.sign(payload))
    authn.authenticate(head)
    got = {k: v for k, v in head.hmap.items() if k.startswith(b"x-")}
    assert got == {b"x-n": b"42", b"x-f": b"1.5", b"x-b": b"true", b"x-nested": b"core"}


def _unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    from tests.support.jwt import b64url

    return b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(payload).encode())
