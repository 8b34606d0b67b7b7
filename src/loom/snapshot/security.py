"""The security part of a snapshot: identity files, inbound mTLS modes, authorization, JWT rules.

The control plane resolves Istio's PeerAuthentication, AuthorizationPolicy and
RequestAuthentication for one workload into these; the proxy compiles them into matchers when
the snapshot loads. Names follow Istio's fields, with ``not_`` forms spelled out.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

from msgspec import Meta

from loom.snapshot.base import FieldError, Model, NonEmptyStr

SPIFFE_SCHEME = "spiffe://"


def spiffe_id(trust_domain: str, namespace: str, service_account: str) -> str:
    """A workload's identity: ``spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>``."""
    return f"{SPIFFE_SCHEME}{trust_domain}/ns/{namespace}/sa/{service_account}"


def principal_namespace(principal: str) -> str | None:
    """The namespace a SPIFFE ID or principal names (``.../ns/shop/sa/web`` → ``shop``), or None."""
    _, found, rest = principal.partition("/ns/")
    namespace, slash, _ = rest.partition("/")
    return namespace if found and slash and namespace else None


class MtlsMode(StrEnum):
    """How an inbound listener treats plaintext (Istio's PeerAuthentication modes, resolved)."""

    STRICT = "STRICT"
    """mutual TLS only: a plaintext connection is closed before a byte reaches the app."""
    PERMISSIVE = "PERMISSIVE"
    """mutual TLS or plaintext on the same port, told apart by the first bytes."""
    DISABLE = "DISABLE"
    """plaintext only."""


class Identity(Model, kw_only=True):
    """Where a proxy run from a file finds its workload certificate (PEM files).

    A proxy under a control plane gets its certificate from the control plane instead.
    """

    cert_file: NonEmptyStr
    """The workload certificate, then any intermediates."""
    key_file: NonEmptyStr
    trust_bundle_file: NonEmptyStr
    """One or more root certificates (two during a root rotation)."""


class UpstreamTls(Model, kw_only=True):
    """Mutual TLS towards a cluster's endpoints that have ``mtls: true``."""

    server_identities: Annotated[list[NonEmptyStr], Meta(min_length=1)]
    """The SPIFFE IDs allowed to serve this destination; a server proving another is refused."""


# --- authorization --------------------------------------------------------------------------


class AuthzAction(StrEnum):
    """Decided in Istio's order: AUDIT policies only mark a request, any matching DENY policy
    denies it, then — if the workload has ALLOW policies — one of them must match."""

    ALLOW = "ALLOW"
    DENY = "DENY"
    AUDIT = "AUDIT"


class AuthzSource(Model, kw_only=True):
    """All set fields must match (AND); within a field any value (OR), and no value of its ``not_``
    twin. Values use Istio's string matching: exact, ``prefix*``, ``*suffix``, ``*`` (present and not
    empty). Principals are written without ``spiffe://`` (``cluster.local/ns/N/sa/S``), as in Istio;
    the namespace is the one in the peer's principal. A plaintext peer has no principal and no
    namespace: it matches no ``principals``/``namespaces`` value and every ``not_`` one."""

    principals: list[str] = []
    not_principals: list[str] = []
    request_principals: list[str] = []
    """``iss/sub`` of the request's verified JWT (HTTP only)."""
    not_request_principals: list[str] = []
    namespaces: list[str] = []
    not_namespaces: list[str] = []
    ip_blocks: list[str] = []
    """Addresses or CIDRs of the peer (the connection's source address)."""
    not_ip_blocks: list[str] = []
    remote_ip_blocks: list[str] = []
    """Addresses or CIDRs of the original client (X-Forwarded-For's first entry, else the peer)."""
    not_remote_ip_blocks: list[str] = []


class AuthzOperation(Model, kw_only=True):
    """Like a source: set fields AND, values OR. ``hosts``, ``methods`` and ``paths`` are HTTP only."""

    hosts: list[str] = []
    """The Host as sent (with its port when the client gave one), case-insensitive."""
    not_hosts: list[str] = []
    ports: list[Annotated[int, Meta(ge=1, le=65535)]] = []
    """The port the connection arrived on (the listener's, or the original destination's when
    intercepted); the control plane writes the sidecar port that fronts the workload port named."""
    not_ports: list[Annotated[int, Meta(ge=1, le=65535)]] = []
    methods: list[str] = []
    not_methods: list[str] = []
    paths: list[str] = []
    """Exact, ``prefix*``, ``*suffix``, ``*``, or a template with ``{*}`` (one segment) and
    ``{**}`` (any number of segments, last), matched against the path without its query,
    normalized (``\\`` → ``/``, unreserved ``%XX`` decoded, dot segments resolved)."""
    not_paths: list[str] = []


class AuthzCondition(Model, kw_only=True):
    """``key`` is one of Istio's: ``request.headers[NAME]``, ``source.ip``, ``remote.ip``,
    ``source.namespace``, ``source.principal``, ``request.auth.principal``,
    ``request.auth.audiences``, ``request.auth.presenter``, ``request.auth.claims[NAME]``
    (nested: ``[a][b]``), ``destination.ip``, ``destination.port``, ``connection.sni``; the
    ``request.*`` ones are HTTP only. Any value must match, and no ``not_values`` one."""

    key: NonEmptyStr
    values: list[str] = []
    not_values: list[str] = []


def bracketed(text: str) -> tuple[str, ...] | None:
    """The names in a condition key's brackets (``request.headers[NAME]``, ``request.auth.claims[a][b]``):
    ``[a]`` → ``("a",)``, ``[a][b]`` → ``("a", "b")``; None if malformed or a name is empty."""
    if not text.startswith("[") or not text.endswith("]"):
        return None
    names = tuple(text[1:-1].split("]["))
    if any(not name or "[" in name or "]" in name for name in names):
        return None
    return names


class AuthzRule(Model, kw_only=True):
    """Matches when any source, any operation and every condition match (empty lists match all).
    On a TCP connection the HTTP-only fields cannot be evaluated: an ALLOW rule using any never
    matches it, a DENY or AUDIT rule is evaluated without them (Istio's rule)."""

    sources: list[AuthzSource] = []
    operations: list[AuthzOperation] = []
    conditions: list[AuthzCondition] = []


class AuthzPolicy(Model, kw_only=True):
    name: NonEmptyStr
    """``namespace/name`` of the AuthorizationPolicy, for logs and the access log."""
    action: AuthzAction = AuthzAction.ALLOW
    rules: list[AuthzRule] = []
    """No rules: the policy matches nothing (an ALLOW policy without rules denies everything);
    one empty rule matches every request."""


# --- request authentication -----------------------------------------------------------------


class JwtHeader(Model, kw_only=True):
    name: NonEmptyStr
    prefix: str = ""


class JwtRule(Model, kw_only=True):
    """One trusted issuer (Istio's RequestAuthentication jwtRules entry, with its keys resolved)."""

    issuer: NonEmptyStr
    audiences: list[str] = []
    """Empty: any audience."""
    jwks: NonEmptyStr
    """The issuer's JSON Web Key Set, as JSON text (the control plane fetches jwksUri). A set with no
    usable key (``{"keys": []}``) refuses every token of this issuer."""
    from_headers: list[JwtHeader] = []
    """Empty together with from_params: ``Authorization: Bearer <token>`` and the ``access_token``
    query parameter (Envoy's defaults)."""
    from_params: list[str] = []
    forward_original_token: bool = False
    output_claim_to_headers: dict[str, str] = {}
    """Header name → claim name, copied onto the request after the token is verified."""

    def __post_init__(self) -> None:
        try:
            keys = json.loads(self.jwks)
        except ValueError as exc:
            raise FieldError("jwks", f"not JSON: {exc}") from None
        if not isinstance(keys, dict) or not isinstance(keys.get("keys"), list):
            raise FieldError("jwks", 'a JSON Web Key Set is an object with a "keys" array')


class Security(Model, kw_only=True):
    authorization: list[AuthzPolicy] = []
    """The policies that apply to this workload, in any order (DENY is evaluated first)."""
    jwt_rules: list[JwtRule] = []
    """A request carrying a token must carry a valid one from one of these issuers (else 401)."""
