"""Everything the secured API needs, opened once at start: the state directory, the CA, the join
tokens' key, the operator credential, and the TLS context the API is served with."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from loom.controlplane.security.authority import (
    DEFAULT_CERT_TTL,
    CaError,
    CertificateAuthority,
    key_pem,
    load_certificates,
    new_key,
)
from loom.controlplane.security.files import write_private, write_public
from loom.controlplane.security.spiffe import DEFAULT_TRUST_DOMAIN, check_trust_domain, control_plane_id
from loom.controlplane.security.state import StateDir
from loom.controlplane.security.tokens import JoinTokens

log = logging.getLogger("loom.controlplane.security")

SERVING_TTL = 30 * 24 * 3600.0
"""The API's serving certificate lives 30 days and is issued again halfway (and at every start)."""
SERVING_CERT = "serving-cert.pem"
SERVING_KEY = "serving-key.pem"
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


@dataclass(frozen=True)
class SecurityOptions:
    state_dir: Path
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    cert_ttl: float = DEFAULT_CERT_TTL
    """Workload certificates' lifetime (``--cert-ttl``)."""
    ca_cert: Path | None = None
    """A plug-in CA: the signing certificate, then its chain up to the root (``--ca-cert``)."""
    ca_key: Path | None = None
    trust_anchors: tuple[Path, ...] = ()
    """More roots for the trust bundle (``--trust-anchor``): the new root during a rotation."""
    hosts: tuple[str, ...] = ()
    """Names clients dial the API by, besides 127.0.0.1 and localhost (the listen host, ``--san``)."""


class Security:
    def __init__(
        self,
        options: SecurityOptions,
        state: StateDir,
        ca: CertificateAuthority,
        tokens: JoinTokens,
        operator_token: str,
    ) -> None:
        self.options = options
        self.state = state
        self.ca = ca
        self.tokens = tokens
        self.operator_token = operator_token
        self.server_context = _server_context(ca)
        self.serving_expires_at = 0.0
        self.renew_serving_certificate()

    @property
    def trust_domain(self) -> str:
        return self.ca.trust_domain

    @property
    def serving_hosts(self) -> tuple[str, ...]:
        return (*LOOPBACK_NAMES, *self.options.hosts)

    def renew_serving_certificate(self) -> None:
        """Issue the API's serving certificate (new key) and load it: new connections get it."""
        key = new_key()
        ttl = SERVING_TTL
        issued = self.ca.issue_serving(key, control_plane_id(self.trust_domain), self.serving_hosts, ttl)
        cert_path, key_path = self.state.ca_dir / SERVING_CERT, self.state.ca_dir / SERVING_KEY
        write_private(key_path, key_pem(key))
        write_public(cert_path, issued.chain_pem)
        self.server_context.load_cert_chain(cert_path, key_path)
        self.serving_expires_at = issued.not_after

    async def keep_serving_certificate_fresh(self) -> None:
        while True:
            lifetime = max(60.0, self.serving_expires_at - time.time())
            await asyncio.sleep(lifetime / 2)
            try:
                self.renew_serving_certificate()
            except (OSError, ssl.SSLError) as exc:  # pragma: no cover - a full disk, say
                log.error("could not renew the API's serving certificate: %s", exc)


def open_security(options: SecurityOptions) -> Security:
    """Open (or on first start, create) the state directory and everything in it; CaError or
    ValueError with what to fix."""
    try:
        return _open(options)
    except OSError as exc:
        raise CaError(f"cannot use the state directory {options.state_dir}: {exc}") from None


def _open(options: SecurityOptions) -> Security:
    check_trust_domain(options.trust_domain)
    if not options.cert_ttl > 0:
        raise ValueError("--cert-ttl must be positive")
    if (options.ca_cert is None) != (options.ca_key is None):
        raise ValueError("give --ca-cert and --ca-key together (or neither, for a self-signed root)")
    state = StateDir(options.state_dir)
    state.prepare()
    anchors = [cert for path in options.trust_anchors for cert in load_certificates(path)]
    with state.locked():
        if options.ca_cert is not None and options.ca_key is not None:
            ca = CertificateAuthority.plug_in(
                options.ca_cert, options.ca_key, options.trust_domain, options.cert_ttl, anchors
            )
        else:
            ca = CertificateAuthority.self_signed(
                state.ca_dir, options.trust_domain, options.cert_ttl, anchors
            )
        tokens = JoinTokens(state.token_key(), options.trust_domain)
        operator_token = state.operator_token()
        write_public(state.bundle, ca.bundle_pem)
        security = Security(options, state, ca, tokens, operator_token)
    kind = "plug-in CA " + str(options.ca_cert) if ca.plugged_in else f"self-signed root in {state.ca_dir}"
    log.info(
        "CA: %s, trust domain %s, %d root(s) in the bundle %s",
        kind,
        options.trust_domain,
        len(ca.roots),
        state.bundle,
    )
    return security


def _server_context(ca: CertificateAuthority) -> ssl.SSLContext:
    """TLS 1.2+; a client certificate is asked for but optional (bootstrap, the CLI, reads), and
    verified against the trust bundle when given."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cadata=ca.bundle_pem.decode())
    context.verify_mode = ssl.CERT_OPTIONAL
    return context


__all__ = ["CaError", "Security", "SecurityOptions", "open_security"]
