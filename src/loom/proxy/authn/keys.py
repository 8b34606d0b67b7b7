"""A JSON Web Key Set as public keys, and JWS signature checks (RFC 7517, RFC 7518).

RSA keys verify ``RS256``/``RS384``/``RS512`` (PKCS #1 v1.5) and ``PS256``/``PS384``/``PS512``
(PSS, salt as long as the hash); EC keys verify the one ``ES*`` algorithm of their curve (P-256
``ES256``, P-384 ``ES384``, P-521 ``ES512``). A key never verifies an algorithm of another family,
so an RSA key cannot be used for an ``ES*`` token nor any key as an HMAC secret.

This is the only module of the proxy that imports ``cryptography``; the authenticator imports it
when a snapshot with JWT rules is compiled.
"""

from __future__ import annotations

import json
import logging

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from loom.proxy.authn.token import b64url_decode

log = logging.getLogger("loom.proxy")

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_CURVES: dict[str, tuple[ec.EllipticCurve, str]] = {
    "P-256": (ec.SECP256R1(), "ES256"),
    "P-384": (ec.SECP384R1(), "ES384"),
    "P-521": (ec.SECP521R1(), "ES512"),
}


class PublicKey:
    """One JWK that can verify signatures. ``kid`` and ``alg`` are empty when the JWK has none."""

    __slots__ = ("_ec_alg", "_ec_size", "_key", "alg", "kid", "kty")

    def __init__(
        self,
        kty: str,
        key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
        *,
        kid: str = "",
        alg: str = "",
        ec_alg: str = "",
    ) -> None:
        self.kty = kty
        self.kid = kid
        self.alg = alg
        self._key = key
        self._ec_alg = ec_alg
        self._ec_size = (key.curve.key_size + 7) // 8 if isinstance(key, ec.EllipticCurvePublicKey) else 0

    def verify(self, alg: str, signing_input: bytes, signature: bytes) -> bool:
        """Whether ``signature`` over ``signing_input`` is valid for ``alg`` with this key."""
        try:
            if self.kty == "RSA":
                return self._verify_rsa(alg, signing_input, signature)
            return self._verify_ec(alg, signing_input, signature)
        except (InvalidSignature, ValueError):
            return False

    def _verify_rsa(self, alg: str, signing_input: bytes, signature: bytes) -> bool:
        family = alg[:2]
        if family not in ("RS", "PS"):
            return False
        digest = _HASHES[alg[2:]]()
        key = self._key
        assert isinstance(key, rsa.RSAPublicKey)
        if family == "RS":
            key.verify(signature, signing_input, padding.PKCS1v15(), digest)
        else:
            pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
            key.verify(signature, signing_input, pss, digest)
        return True

    def _verify_ec(self, alg: str, signing_input: bytes, signature: bytes) -> bool:
        size = self._ec_size
        if alg != self._ec_alg or len(signature) != 2 * size:
            return False
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        key = self._key
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(_HASHES[alg[2:]]()))
        return True

    def __repr__(self) -> str:
        return f"<PublicKey {self.kty} kid={self.kid!r} alg={self.alg!r}>"


def load_jwks(text: str, where: str = "jwks") -> list[PublicKey]:
    """The usable keys of a JWKS. Keys Loom cannot use (other types, encryption keys, bad numbers)
    are skipped with a warning in the log; a text that is not a key set raises ValueError."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{where}: not JSON ({exc})") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError(f'{where}: a JSON Web Key Set is an object with a "keys" array')
    found: list[PublicKey] = []
    for i, jwk in enumerate(document["keys"]):
        try:
            key = parse_jwk(jwk)
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("%s: keys[%d] skipped: %s", where, i, exc)
            continue
        if key is not None:
            found.append(key)
    return found


def parse_jwk(jwk: object) -> PublicKey | None:
    """One JWK as a PublicKey; None for a key meant for encryption (``use: enc``)."""
    if not isinstance(jwk, dict):
        raise ValueError("a key is a JSON object")
    if jwk.get("use", "sig") != "sig":
        return None
    kty = jwk.get("kty")
    kid = _optional_str(jwk, "kid")
    alg = _optional_str(jwk, "alg")
    if kty == "RSA":
        if alg and alg[:2] not in ("RS", "PS"):
            raise ValueError(f"alg {alg!r} is not an RSA algorithm")
        n = _b64_int(jwk, "n")
        e = _b64_int(jwk, "e")
        return PublicKey("RSA", rsa.RSAPublicNumbers(e, n).public_key(), kid=kid, alg=alg)
    if kty == "EC":
        crv = jwk.get("crv")
        if crv not in _CURVES:
            raise ValueError(f"curve {crv!r} is not supported (P-256, P-384, P-521)")
        curve, ec_alg = _CURVES[crv]
        if alg and alg != ec_alg:
            raise ValueError(f"alg {alg!r} does not go with curve {crv}")
        numbers = ec.EllipticCurvePublicNumbers(_b64_int(jwk, "x"), _b64_int(jwk, "y"), curve)
        return PublicKey("EC", numbers.public_key(), kid=kid, alg=alg, ec_alg=ec_alg)
    raise ValueError(f"kty {kty!r} is not supported (RSA, EC)")


def _optional_str(jwk: dict[str, object], field: str) -> str:
    value = jwk.get(field, "")
    if not isinstance(value, str):
        raise ValueError(f"{field} is not a string")
    return value


def _b64_int(jwk: dict[str, object], field: str) -> int:
    value = jwk.get(field)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field} is missing")
    return int.from_bytes(b64url_decode(value.encode()), "big")
