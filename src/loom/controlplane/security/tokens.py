"""Join tokens: what lets a new sidecar get its first certificate.

A token is self-contained and signed with HMAC-SHA256 under a key the control plane keeps in its
state directory (``token-key``, 0600), so tokens survive a restart and need no database:

    v1.<base64url(JSON payload)>.<base64url(HMAC-SHA256(key, "v1." + payload))>

The payload grants one identity — namespace, service account, trust domain — until an expiry,
and carries a random id (for the logs). A token is reusable until it expires: every replica of
one workload can share it. It is not secret from its holder (the payload is readable), only
unforgeable.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from loom.controlplane.security.spiffe import SpiffeId, check_name

VERSION = "v1"
KEY_BYTES = 32
DEFAULT_TTL = 24 * 3600.0


class TokenRefused(Exception):
    """The token is malformed, was not signed with this control plane's key, or has expired."""


@dataclass(frozen=True, slots=True)
class Grant:
    """What a valid token allows: certificates for one identity until ``expires_at``."""

    identity: SpiffeId
    expires_at: float
    token_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class JoinTokens:
    def __init__(self, key: bytes, trust_domain: str, clock: Callable[[], float] = time.time) -> None:
        if len(key) < 16:
            raise ValueError("the token key must be at least 16 bytes")
        self._key = key
        self.trust_domain = trust_domain
        self.clock = clock

    def mint(self, namespace: str, service_account: str, ttl: float = DEFAULT_TTL) -> tuple[str, Grant]:
        """A token for ``namespace``/``service_account`` valid for ``ttl`` seconds."""
        check_name(namespace, "namespace")
        check_name(service_account, "service account")
        if not ttl > 0:
            raise ValueError("a token's time to live must be positive")
        grant = Grant(
            SpiffeId(self.trust_domain, namespace, service_account),
            float(int(self.clock() + ttl)),
            secrets.token_hex(8),
        )
        payload = {
            "ns": namespace,
            "sa": service_account,
            "td": self.trust_domain,
            "exp": int(grant.expires_at),
            "id": grant.token_id,
        }
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return f"{VERSION}.{body}.{_b64(self._mac(body))}", grant

    def verify(self, token: str) -> Grant:
        """The grant of a token this control plane signed and that has not expired; else
        TokenRefused saying why."""
        parts = token.strip().split(".")
        if len(parts) != 3 or parts[0] != VERSION:
            raise TokenRefused("malformed join token (expected v1.<payload>.<signature>)")
        _, body, signature = parts
        try:
            given = _unb64(signature)
        except ValueError:
            raise TokenRefused("malformed join token signature") from None
        if not hmac.compare_digest(given, self._mac(body)):
            raise TokenRefused("the join token's signature does not verify: not issued by this control plane")
        try:
            payload = json.loads(_unb64(body))
            identity = SpiffeId(str(payload["td"]), str(payload["ns"]), str(payload["sa"]))
            expires_at, token_id = float(payload["exp"]), str(payload["id"])
        except (ValueError, KeyError, TypeError):
            raise TokenRefused("malformed join token payload") from None
        if identity.trust_domain != self.trust_domain:
            raise TokenRefused(
                f"the join token is for trust domain {identity.trust_domain}, this control plane "
                f"issues {self.trust_domain}"
            )
        if expires_at <= self.clock():
            when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(expires_at))
            raise TokenRefused(f"the join token (id {token_id}) expired at {when}")
        return Grant(identity, expires_at, token_id)

    def _mac(self, body: str) -> bytes:
        return hmac.new(self._key, f"{VERSION}.{body}".encode(), hashlib.sha256).digest()


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)
