"""A compact JWS (``header.payload.signature``) decoded and its claims' types checked — no cryptography.

The checks and their order are Envoy's (``jwt_verify_lib`` ``Jwt::parseFromString``): three
non-empty base64url sections, a JSON object header with a string ``alg`` Loom implements and an
optional string ``kid``, a JSON object payload whose registered claims have the right types.
Signature, issuer, time and audience are checked by the authenticator.
"""

from __future__ import annotations

import base64
import re

import msgspec

from loom.proxy.authn import errors
from loom.proxy.authn.errors import JwtError

SUPPORTED_ALGS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})
"""Public-key algorithms only: ``none`` and the HMAC family (``HS*``) are refused before any key is
looked at, so a public key is never used as an HMAC secret."""

_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*")
_MAX_UINT64 = 2**64 - 1
_decode_json = msgspec.json.Decoder().decode


def b64url_decode(data: bytes) -> bytes:
    """Base64url with or without padding; ValueError for anything else."""
    data = data.rstrip(b"=")
    if _BASE64URL.fullmatch(data) is None or len(data) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


class ParsedJwt:
    __slots__ = (
        "alg",
        "audiences",
        "exp",
        "iss",
        "kid",
        "nbf",
        "payload",
        "signature",
        "signing_input",
        "sub",
    )

    def __init__(self) -> None:
        self.alg = ""
        self.kid = ""
        self.payload: dict[str, object] = {}
        self.iss = ""
        self.sub = ""
        self.audiences: tuple[str, ...] = ()
        self.exp = 0
        """0: no ``exp`` (never expires)."""
        self.nbf = 0
        self.signing_input = b""
        """``header.payload`` as received: what the signature covers."""
        self.signature = b""


def parse_jwt(token: bytes) -> ParsedJwt:
    """The token decoded; JwtError with Envoy's message when it is malformed."""
    parts = token.split(b".")
    if len(parts) != 3 or not all(parts):
        raise JwtError(errors.BAD_FORMAT)
    jwt = ParsedJwt()
    header = _json_object(parts[0], errors.HEADER_BAD_BASE64, errors.HEADER_BAD_JSON)
    alg = header.get("alg")
    if not isinstance(alg, str):
        raise JwtError(errors.HEADER_BAD_ALG)
    if alg not in SUPPORTED_ALGS:
        raise JwtError(errors.ALG_NOT_SUPPORTED)
    kid = header.get("kid", "")
    if not isinstance(kid, str):
        raise JwtError(errors.HEADER_BAD_KID)
    payload = _json_object(parts[1], errors.PAYLOAD_BAD_BASE64, errors.PAYLOAD_BAD_JSON)
    jwt.alg = alg
    jwt.kid = kid
    jwt.payload = payload
    jwt.iss = _string(payload, "iss")
    jwt.sub = _string(payload, "sub")
    _uint(payload, "iat")
    jwt.nbf = _uint(payload, "nbf")
    jwt.exp = _uint(payload, "exp")
    _string(payload, "jti")
    jwt.audiences = _audiences(payload)
    try:
        jwt.signature = b64url_decode(parts[2])
    except ValueError:
        raise JwtError(errors.SIGNATURE_BAD_BASE64) from None
    jwt.signing_input = parts[0] + b"." + parts[1]
    return jwt


def _json_object(section: bytes, bad_base64: str, bad_json: str) -> dict[str, object]:
    try:
        raw = b64url_decode(section)
    except ValueError:
        raise JwtError(bad_base64) from None
    try:
        value = _decode_json(raw)
    except msgspec.DecodeError:
        raise JwtError(bad_json) from None
    if not isinstance(value, dict):
        raise JwtError(bad_json)
    return value


def _string(payload: dict[str, object], claim: str) -> str:
    value = payload.get(claim, "")
    if not isinstance(value, str):
        raise JwtError(errors.not_string(claim))
    return value


def _uint(payload: dict[str, object], claim: str) -> int:
    value = payload.get(claim)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise JwtError(errors.not_integer(claim))
    if not 0 <= value <= _MAX_UINT64:
        raise JwtError(errors.out_of_range(claim))
    return int(value)


def _audiences(payload: dict[str, object]) -> tuple[str, ...]:
    value = payload.get("aud")
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)  # type: ignore[arg-type]
    raise JwtError(errors.AUD_NOT_STRING)
