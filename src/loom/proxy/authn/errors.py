"""Why a token was refused, in Envoy's words (``jwt_verify_lib`` status strings).

Envoy answers a refused token with the status text as the body, 401, and a ``WWW-Authenticate``
challenge; only an audience mismatch is 403. Clients and tests that match on these texts keep
working against Loom.
"""

from __future__ import annotations

UNAUTHORIZED = 401
FORBIDDEN = 403

BAD_FORMAT = "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections"
HEADER_BAD_BASE64 = "Jwt header is an invalid Base64url encoded"
HEADER_BAD_JSON = "Jwt header is an invalid JSON"
HEADER_BAD_ALG = "Jwt header [alg] field is required and must be a string"
ALG_NOT_SUPPORTED = "Jwt header [alg] is not supported"
HEADER_BAD_KID = "Jwt header [kid] field is not a string"
PAYLOAD_BAD_BASE64 = "Jwt payload is an invalid Base64url encoded"
PAYLOAD_BAD_JSON = "Jwt payload is an invalid JSON"
SIGNATURE_BAD_BASE64 = "Jwt signature is an invalid Base64url encoded"
AUD_NOT_STRING = "Jwt payload [aud] field is not a string or string list"
UNKNOWN_ISSUER = "Jwt issuer is not configured"
NOT_YET_VALID = "Jwt not yet valid"
EXPIRED = "Jwt is expired"
AUDIENCE_NOT_ALLOWED = "Audiences in Jwt are not allowed"
VERIFICATION_FAILS = "Jwt verification fails"
KID_ALG_MISMATCH = "Jwks doesn't have key to match kid or alg from Jwt"


def not_string(claim: str) -> str:
    return f"Jwt payload [{claim}] field is not a string"


def not_integer(claim: str) -> str:
    return f"Jwt payload [{claim}] field is not an integer"


def out_of_range(claim: str) -> str:
    return f"Jwt payload [{claim}] field is not a positive 64 bit integer"


class JwtError(Exception):
    """A token that is present and not acceptable: the request is answered ``status`` with ``message``."""

    def __init__(self, message: str, status: int = UNAUTHORIZED) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    @property
    def body(self) -> bytes:
        return self.message.encode()
