"""Signing keys, their JWKS, and signed JWTs for tests — with ``cryptography``, no JWT library.

```python
issuer = SigningKey.rsa("k1")                 # or SigningKey.ec("k2", "P-256")
jwks = issuer.jwks_text()                     # {"keys": [<public JWK>]}
token = issuer.sign({"iss": "https://idp", "sub": "alice", "exp": time.time() + 60})
```
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

_HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_CURVES = {
    "P-256": (ec.SECP256R1, "ES256"),
    "P-384": (ec.SECP384R1, "ES384"),
    "P-521": (ec.SECP521R1, "ES512"),
}

# Key generation is slow (RSA especially): one key per (kind, kid) for the whole test run.
_KEYS: dict[tuple[str, str], Any] = {}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(value: int, size: int | None = None) -> str:
    return b64url(value.to_bytes(size or (value.bit_length() + 7) // 8, "big"))


class SigningKey:
    def __init__(self, kid: str, private: Any, alg: str, crv: str = "") -> None:
        self.kid = kid
        self.private = private
        self.alg = alg
        self.crv = crv

    @classmethod
    def rsa(cls, kid: str = "rsa-1", alg: str = "RS256", bits: int = 2048) -> SigningKey:
        key = _KEYS.get(("rsa", kid))
        if key is None:
            key = _KEYS[("rsa", kid)] = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        return cls(kid, key, alg)

    @classmethod
    def ec(cls, kid: str = "ec-1", crv: str = "P-256") -> SigningKey:
        curve, alg = _CURVES[crv]
        key = _KEYS.get(("ec", kid + crv))
        if key is None:
            key = _KEYS[("ec", kid + crv)] = ec.generate_private_key(curve())
        return cls(kid, key, alg, crv)

    def jwk(self, *, kid: bool = True, alg: bool = False) -> dict[str, str]:
        """The public half as a JWK (with ``kid``; with ``alg`` when asked)."""
        numbers = self.private.public_key().public_numbers()
        if self.crv:
            size = (self.private.curve.key_size + 7) // 8
            jwk = {"kty": "EC", "crv": self.crv, "x": _int(numbers.x, size), "y": _int(numbers.y, size)}
        else:
            jwk = {"kty": "RSA", "n": _int(numbers.n), "e": _int(numbers.e)}
        if kid:
            jwk["kid"] = self.kid
        if alg:
            jwk["alg"] = self.alg
        return jwk

    def jwks_text(self, *others: SigningKey) -> str:
        return json.dumps({"keys": [self.jwk(), *(o.jwk() for o in others)]})

    def sign(
        self, claims: dict[str, Any], *, alg: str | None = None, header: dict[str, Any] | None = None
    ) -> str:
        alg = alg or self.alg
        head = {"alg": alg, "typ": "JWT", "kid": self.kid, **(header or {})}
        signing_input = (
            b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(claims).encode())
        ).encode()
        digest = _HASHES[alg[2:]]()
        if alg.startswith("ES"):
            der = self.private.sign(signing_input, ec.ECDSA(digest))
            r, s = decode_dss_signature(der)
            size = (self.private.curve.key_size + 7) // 8
            signature = r.to_bytes(size, "big") + s.to_bytes(size, "big")
        elif alg.startswith("PS"):
            pss = padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
            signature = self.private.sign(signing_input, pss, digest)
        else:
            signature = self.private.sign(signing_input, padding.PKCS1v15(), digest)
        return signing_input.decode() + "." + b64url(signature)


def claims(
    iss: str = "https://idp.example", sub: str = "alice", ttl: float = 300, **extra: Any
) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": iss, "sub": sub, "iat": now, "exp": now + int(ttl), **extra}
