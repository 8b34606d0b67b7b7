"""Request authentication: JWTs checked against the snapshot's ``security.jwt_rules`` (Istio's
RequestAuthentication), with the semantics of Envoy's ``jwt_authn`` filter as Istio configures it.

| module | |
| --- | --- |
| ``errors`` | ``JwtError`` and Envoy's failure texts (the 401/403 body) |
| ``token`` | splitting and decoding a compact JWS, checking its claims' types — no cryptography |
| ``keys`` | a JWKS → public keys (RSA, EC) and signature checks: the only module importing ``cryptography`` |
| ``locations`` | where tokens are read from (headers with a prefix, query parameters) and removed |
| ``claims`` | ``output_claim_to_headers``: a claim's value as a header value |
| ``cache`` | verified tokens by their bytes (bounded LRU) |
| ``authenticator`` | ``JwtAuthenticator``: the rules compiled once per snapshot; one call per request |
| ``stage`` | the inbound stage ``authenticate_jwt`` |

``cryptography`` costs several MB of a sidecar's RSS and most sidecars have no JWT rules, so
``keys`` is imported when a snapshot with rules is compiled, never before.
"""

from loom.proxy.authn.authenticator import JwtAuthenticator, compile_jwt_rules
from loom.proxy.authn.errors import JwtError

__all__ = ["JwtAuthenticator", "JwtError", "compile_jwt_rules"]
