"""The sidecar's workload certificate: obtained from the control plane at start, renewed before it
expires.

Bootstrap: a new key and a CSR for ``spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>``
(made by ``python -m loom.proxy.identity.keygen`` in a short-lived child process, so the sidecar
never imports ``cryptography``), sent with the join token over TLS verified by ``--ca-file``. The
chain, the key (0600) and the trust bundle are written to the identity directory and loaded into
the proxy's IdentityStore; from then on every call to the control plane is mutual TLS with this
certificate.

Renewal: at half the certificate's lifetime (±10% of it, so that replicas spread out), a new key
and CSR, authenticated by the current certificate. A failed renewal is retried with backoff while
the current certificate keeps serving; once that has expired, the join token (if it is still
valid) is tried as at bootstrap.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import random
import ssl
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from loom.proxy.agent.http import ControlPlaneClient, HttpError
from loom.proxy.identity.store import IdentityError, IdentityStore
from loom.snapshot.security import spiffe_id

log = logging.getLogger("loom.proxy.agent")

CERT_FILE = "cert-chain.pem"
KEY_FILE = "key.pem"
BUNDLE_FILE = "root-cert.pem"
RENEW_AT = 0.5
RENEW_JITTER = 0.1
RETRY_START = 1.0
RETRY_MAX = 30.0
KEYGEN_TIMEOUT = 30.0


class CertificateRefused(Exception):
    """The control plane refused to issue a certificate (401/403): the join token is wrong,
    expired, or grants another identity. Retrying does not help; a person must act."""


@dataclass(frozen=True)
class Bootstrap:
    ca_file: Path
    """The trust bundle the control plane is verified with until the first certificate arrives."""
    join_token: str | None
    identity_dir: Path
    """Where the certificate chain, the key and the bundle are written (a private directory)."""


def token_trust_domain(token: str) -> str | None:
    """The trust domain a join token names (its payload is readable; only the control plane can
    check its signature)."""
    try:
        payload = token.strip().split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(data["td"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def mtls_context(cert_file: Path, key_file: Path, bundle_file: Path) -> ssl.SSLContext:
    """The context every call after bootstrap uses: verify the control plane by the bundle and
    its name, present the workload certificate."""
    context = ssl.create_default_context(cafile=str(bundle_file))
    context.load_cert_chain(cert_file, key_file)
    return context


class WorkloadCertificates:
    def __init__(
        self,
        client: ControlPlaneClient,
        identity: IdentityStore,
        bootstrap: Bootstrap,
        namespace: str,
        service_account: str,
    ) -> None:
        self.client = client
        self.identity = identity
        self.bootstrap = bootstrap
        self.namespace = namespace
        self.service_account = service_account
        self.renew_at = 0.0
        self.expires_at = 0.0
        self.renewals = 0
        self.failed_renewals = 0
        directory = bootstrap.identity_dir
        self.cert_file, self.key_file = directory / CERT_FILE, directory / KEY_FILE
        self.bundle_file = directory / BUNDLE_FILE

    @property
    def spiffe_id(self) -> str:
        if self.identity.spiffe_id is not None:
            return self.identity.spiffe_id
        token = self.bootstrap.join_token
        trust_domain = token_trust_domain(token) if token else None
        if trust_domain is None:
            raise CertificateRefused("the join token is malformed: create one with `loom token create`")
        return spiffe_id(trust_domain, self.namespace, self.service_account)

    async def obtain(self) -> None:
        """The first certificate, with the join token (401/403 raise CertificateRefused; other
        failures HttpError, for the caller to retry)."""
        if not self.bootstrap.join_token:
            raise CertificateRefused("no join token: set $LOOM_JOIN_TOKEN or give --join-token-file")
        self.client.use(ssl.create_default_context(cafile=str(self.bootstrap.ca_file)))
        await self._request(self.bootstrap.join_token)

    async def renew(self) -> None:
        """A new certificate for the same identity, authenticated by the current one; the join
        token once the current certificate has expired."""
        token = self.bootstrap.join_token if time.time() >= self.expires_at else None
        if token is not None:  # an expired certificate would fail the handshake: go without one
            self.client.use(ssl.create_default_context(cafile=str(self.bundle_file)))
        await self._request(token)
        self.renewals += 1

    async def keep_renewed(self) -> None:
        """Renew at the scheduled time, forever; retry failures with backoff, serving meanwhile."""
        delay = RETRY_START
        while True:
            await asyncio.sleep(max(0.0, self.renew_at - time.monotonic()))
            try:
                await self.renew()
            except (HttpError, CertificateRefused, IdentityError, OSError, ValueError) as exc:
                self.failed_renewals += 1
                left = self.expires_at - time.time()
                log.warning(
                    "certificate renewal failed (%s); retrying in %.1fs, the current one expires in %.0fs",
                    exc,
                    delay,
                    left,
                )
                self.renew_at = time.monotonic() + delay * (0.5 + random.random())
                delay = min(delay * 2, RETRY_MAX)
                continue
            delay = RETRY_START

    async def _request(self, token: str | None) -> None:
        spiffe_id = self.spiffe_id
        directory = self.bootstrap.identity_dir
        next_key = directory / (KEY_FILE + ".next")
        next_cert, next_bundle = directory / (CERT_FILE + ".next"), directory / (BUNDLE_FILE + ".next")
        try:
            csr = await _keygen(next_key, spiffe_id)
            headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
            status, body = await self.client.call(
                "POST", "/v1/certificates", json.dumps({"csr": csr}).encode(), headers=headers
            )
            if status in (401, 403):
                raise CertificateRefused(
                    f"the control plane refused a certificate for {spiffe_id}: {_error(body)}"
                )
            if status != 200:
                raise HttpError(f"certificate request failed ({status}): {_error(body)}")
            answer = json.loads(body)
            _write(next_cert, answer["certificate_chain"].encode(), 0o644)
            _write(next_bundle, answer["trust_bundle"].encode(), 0o644)
            self.identity.update(str(next_cert), str(next_key), str(next_bundle))
            context = mtls_context(next_cert, next_key, next_bundle)
            os.replace(next_key, self.key_file)
            os.replace(next_cert, self.cert_file)
            os.replace(next_bundle, self.bundle_file)
        finally:
            for leftover in (next_key, next_cert, next_bundle):
                leftover.unlink(missing_ok=True)
        self.client.use(context)
        lifetime = float(answer["not_after"]) - float(answer["issued_at"])
        ratio = RENEW_AT + random.uniform(-RENEW_JITTER, RENEW_JITTER)
        self.renew_at = time.monotonic() + max(1.0, lifetime * ratio)
        self.expires_at = time.time() + lifetime
        log.info(
            "workload certificate for %s issued (serial %s), valid %.0fs; renewing in %.0fs",
            spiffe_id,
            answer.get("serial", "?"),
            lifetime,
            self.renew_at - time.monotonic(),
        )


async def _keygen(key_file: Path, spiffe_id: str) -> str:
    """A new key written to ``key_file`` (0600) and the PEM of a CSR for ``spiffe_id``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "loom.proxy.identity.keygen",
        "--key-out",
        str(key_file),
        "--spiffe-id",
        spiffe_id,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(KEYGEN_TIMEOUT):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise OSError("the key generator did not finish in time") from None
    if process.returncode != 0 or b"BEGIN CERTIFICATE REQUEST" not in out:
        raise OSError(
            f"the key generator failed ({process.returncode}): {err.decode(errors='replace')[-300:]}"
        )
    return out.decode()


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _error(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body.decode(errors="replace")[:200]
