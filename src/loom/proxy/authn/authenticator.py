"""``JwtAuthenticator``: a snapshot's JWT rules compiled once, and the per-request check.

Semantics (Istio's RequestAuthentication, enforced as Envoy's ``jwt_authn`` filter does it):

- Headers that rules fill from claims (``output_claim_to_headers``) are first removed from the
  request, so a client cannot send them itself.
- A request without a token passes, with no request principal (an AuthorizationPolicy decides
  whether that is enough).
- Every token found must be valid — a good token next to a bad one is refused, so the app never
  sees an unverified token beside a verified one. Checks, in Envoy's order: well formed, ``iss``
  is a rule's issuer that reads tokens from where this one was found (else ``Jwt issuer is not
  configured``), ``nbf``/``exp`` with 60 s of clock skew, ``aud`` meets the rule's audiences (if
  any; else 403), then the signature: the key whose ``kid`` is the token's (keys without a
  ``kid`` are tried too), of the token's algorithm family.
- A verified token gives the request principal ``iss/sub`` and its claims, copies the claims the
  rule names into headers, and is removed from the request unless ``forward_original_token``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from loom.proxy.authn import errors
from loom.proxy.authn.cache import Verified, VerifiedTokens
from loom.proxy.authn.claims import claim_value, header_value
from loom.proxy.authn.errors import JwtError
from loom.proxy.authn.locations import Location, add_header, build_locations, remove_header
from loom.proxy.authn.token import ParsedJwt, parse_jwt
from loom.proxy.codec.head import RequestHead
from loom.snapshot.security import JwtRule

if TYPE_CHECKING:
    from loom.proxy.authn.keys import PublicKey

CLOCK_SKEW = 60
"""Seconds of leeway on ``exp`` and ``nbf`` (Envoy's default)."""


class CompiledRule:
    __slots__ = ("audiences", "claim_headers", "forward", "index", "issuer", "keys")

    def __init__(self, index: int, rule: JwtRule, keys: list[PublicKey]) -> None:
        self.index = index
        self.issuer = rule.issuer
        self.audiences = frozenset(_plain_audience(a) for a in rule.audiences)
        self.keys = keys
        self.forward = rule.forward_original_token
        self.claim_headers = [
            (header.lower().encode(), claim) for header, claim in rule.output_claim_to_headers.items()
        ]

    def check(self, jwt: ParsedJwt) -> JwtError | None:
        """Audience, then signature; None when the token passes this rule."""
        if self.audiences and not any(_plain_audience(a) in self.audiences for a in jwt.audiences):
            return JwtError(errors.AUDIENCE_NOT_ALLOWED, errors.FORBIDDEN)
        matched = False
        for key in self.keys:
            if jwt.kid and key.kid and key.kid != jwt.kid:
                continue
            if key.alg and key.alg != jwt.alg:
                continue
            matched = True
            if key.verify(jwt.alg, jwt.signing_input, jwt.signature):
                return None
        if matched or not self.keys:
            return JwtError(errors.VERIFICATION_FAILS)
        return JwtError(errors.KID_ALG_MISMATCH)


class JwtAuthenticator:
    def __init__(self, rules: list[JwtRule], clock: Callable[[], float] = time.time) -> None:
        from loom.proxy.authn.keys import load_jwks  # cryptography: only for snapshots with rules

        self.rules = [
            CompiledRule(i, rule, load_jwks(rule.jwks, f"security.jwt_rules[{i}].jwks"))
            for i, rule in enumerate(rules)
        ]
        self.by_issuer: dict[str, list[CompiledRule]] = {}
        for rule in self.rules:
            self.by_issuer.setdefault(rule.issuer, []).append(rule)
        self.locations: list[Location] = build_locations(rules)
        self.output_headers = sorted({name for rule in self.rules for name, _ in rule.claim_headers})
        self.cache = VerifiedTokens()
        self.clock = clock

    def authenticate(self, head: RequestHead) -> Verified | None:
        """The first verified token's result (None: the request has no token); JwtError when a token
        is not acceptable. Changes ``head``: claim headers, token removal."""
        for name in self.output_headers:
            remove_header(head, name)
        first: Verified | None = None
        consumed: list[Location] = []
        for location in self.locations:
            if not location.present(head):
                continue
            forward = True
            for token in location.extract(head):
                verified = self.verify(token, location)
                rule = self.rules[verified.rule]
                self._copy_claims(head, rule, verified.payload)
                forward = forward and rule.forward
                if first is None:
                    first = verified
            if not forward:
                consumed.append(location)
        for location in consumed:
            location.remove(head)
        return first

    def verify(self, token: bytes, location: Location) -> Verified:
        now = self.clock()
        cached = self.cache.get(token)
        if cached is not None and cached.rule in location.rules:
            try:
                _check_time(cached.exp, cached.nbf, now)
            except JwtError:
                self.cache.discard(token)
                raise
            return cached
        jwt = parse_jwt(token)
        candidates = [r for r in self.by_issuer.get(jwt.iss, ()) if r.index in location.rules]
        if not candidates:
            raise JwtError(errors.UNKNOWN_ISSUER)
        _check_time(jwt.exp, jwt.nbf, now)
        failure: JwtError | None = None
        for rule in candidates:
            problem = rule.check(jwt)
            if problem is None:
                verified = Verified(rule.index, f"{jwt.iss}/{jwt.sub}", jwt.payload, jwt.exp, jwt.nbf)
                self.cache.put(token, verified)
                return verified
            failure = failure or problem
        assert failure is not None
        raise failure

    def _copy_claims(self, head: RequestHead, rule: CompiledRule, payload: dict[str, object]) -> None:
        for name, claim in rule.claim_headers:
            value = header_value(claim_value(payload, claim))
            if value is not None:
                add_header(head, name, value)


def compile_jwt_rules(rules: list[JwtRule]) -> JwtAuthenticator | None:
    """None without rules: the inbound stage then costs one attribute check per request."""
    return JwtAuthenticator(rules) if rules else None


def _check_time(exp: int, nbf: int, now: float) -> None:
    if now + CLOCK_SKEW < nbf:
        raise JwtError(errors.NOT_YET_VALID)
    if exp and now > exp + CLOCK_SKEW:
        raise JwtError(errors.EXPIRED)


def _plain_audience(audience: str) -> str:
    """As Envoy compares audiences: without an ``http://``/``https://`` scheme or a trailing slash."""
    if audience.startswith("http://"):
        audience = audience[7:]
    elif audience.startswith("https://"):
        audience = audience[8:]
    return audience[:-1] if audience.endswith("/") else audience
