"""The control plane's identity endpoints.

POST /v1/certificates   {"csr": PEM} → a workload certificate. Authenticated by a join token
                        (``Authorization: Bearer <token>``: the first certificate) or by a still
                        valid client certificate (renewal, same identity). The CSR must ask for
                        exactly the identity the token or certificate grants, else 403.
                        200 {"certificate_chain", "trust_bundle", "spiffe_id", "not_before",
                        "not_after", "issued_at", "serial"}
POST /v1/tokens         {"namespace", "service_account", "ttl": "24h"} → a join token; operator only
GET  /v1/identities     per SPIFFE ID, the latest certificate issued since the control plane started
                        (serial, not_before, not_after, issued_at) and the registered workloads
                        that use the identity; open to read, like /v1/proxy-status
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from aiohttp import web

from loom.controlplane.auth import bearer_token, forbidden, operator_only, peer_identity, unauthorized
from loom.controlplane.registry import WorkloadRegistry
from loom.controlplane.security.authority import CsrRefused
from loom.controlplane.security.setup import Security
from loom.controlplane.security.spiffe import SpiffeId
from loom.controlplane.security.tokens import DEFAULT_TTL, TokenRefused
from loom.snapshot.durations import parse_duration

log = logging.getLogger("loom.controlplane.security")

MAX_CSR_BYTES = 16 * 1024


def add_identity_routes(app: web.Application, security: Security, registry: WorkloadRegistry) -> None:
    api = IdentityApi(security, registry)
    app.router.add_post("/v1/certificates", api.certificate)
    app.router.add_post("/v1/tokens", operator_only(security.operator_token, api.create_token))
    app.router.add_get("/v1/identities", api.identities)


class IdentityApi:
    def __init__(self, security: Security, registry: WorkloadRegistry) -> None:
        self.security = security
        self.registry = registry

    async def certificate(self, request: web.Request) -> web.Response:
        security = self.security
        token = bearer_token(request)
        granted: SpiffeId | None
        if token is not None:
            try:
                grant = security.tokens.verify(token)
            except TokenRefused as exc:
                log.warning("certificate refused to %s: %s", request.remote, exc)
                return unauthorized(str(exc))
            granted, how = grant.identity, f"join token {grant.token_id}"
        else:
            granted, how = peer_identity(request), "client certificate"
            if granted is None:
                return unauthorized(
                    "a join token (Authorization: Bearer) or a valid client certificate is needed"
                )
            if granted.trust_domain != security.trust_domain:
                return forbidden(f"{granted} is not of this trust domain ({security.trust_domain})")
        if request.content_length is not None and request.content_length > MAX_CSR_BYTES:
            return _error(413, f"a CSR is at most {MAX_CSR_BYTES} bytes")
        try:
            body = await request.json()
            csr = str(body["csr"]).encode()
        except (ValueError, KeyError, TypeError) as exc:
            return _error(400, f'expected JSON {{"csr": PEM}}: {exc}')
        try:
            issued = security.ca.sign_csr(csr, granted)
        except CsrRefused as exc:
            if exc.status == 403:
                log.warning(
                    "CSR refused (%s from %s): granted %s, requested %s",
                    how,
                    request.remote,
                    granted,
                    exc.requested,
                )
                return forbidden(exc.message)
            return _error(exc.status, exc.message)
        log.info(
            "issued a certificate for %s (%s), serial %x, expires %s",
            granted,
            how,
            issued.serial,
            _when(issued.not_after),
        )
        return web.json_response(
            {
                "certificate_chain": issued.chain_pem.decode(),
                "trust_bundle": security.ca.bundle_pem.decode(),
                "spiffe_id": granted.uri,
                "not_before": issued.not_before,
                "not_after": issued.not_after,
                "issued_at": issued.issued_at,
                "serial": f"{issued.serial:x}",
            }
        )

    async def identities(self, request: web.Request) -> web.Response:
        """Every identity a certificate was issued to since start, or a registered workload uses."""
        ca = self.security.ca
        users: dict[str, list[str]] = {}
        for workload in self.registry.workloads():
            identity = SpiffeId(ca.trust_domain, workload.namespace, workload.service_account)
            users.setdefault(identity.uri, []).append(f"{workload.namespace}/{workload.name}")
        rows = []
        for spiffe_id in sorted({*users, *ca.issued.spiffe_ids()}):
            latest = ca.issued.latest(spiffe_id)
            rows.append(
                {
                    "spiffe_id": spiffe_id,
                    "workloads": users.get(spiffe_id, []),
                    "certificate": latest.to_json() if latest is not None else None,
                }
            )
        return web.json_response(
            {
                "trust_domain": ca.trust_domain,
                "cert_ttl": ca.cert_ttl,
                "since": ca.issued.since,
                "now": time.time(),
                "identities": rows,
            }
        )

    async def create_token(self, request: web.Request) -> web.Response:
        try:
            body: dict[str, Any] = await request.json()
            namespace = str(body["namespace"])
            service_account = str(body["service_account"])
            ttl = parse_duration(body.get("ttl", DEFAULT_TTL))
            token, grant = self.security.tokens.mint(namespace, service_account, ttl)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return _error(400, f"invalid token request: {exc}")
        log.info(
            "join token %s created for %s, valid until %s",
            grant.token_id,
            grant.identity,
            _when(grant.expires_at),
        )
        return web.json_response(
            {
                "token": token,
                "id": grant.token_id,
                "namespace": namespace,
                "service_account": service_account,
                "spiffe_id": grant.identity.uri,
                "expires_at": grant.expires_at,
            }
        )


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))


def _error(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=json.dumps({"error": message}), content_type="application/json")
