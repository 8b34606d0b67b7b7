"""Workload certificates for the control-plane benchmark's simulated sidecars.

The control plane serves HTTPS and lets a workload register, watch and acknowledge only with a
client certificate of its own namespace and service account. The benchmark gets one certificate
per service account, as a sidecar does (a join token minted with the operator token, then a CSR),
and every watcher of that account presents it: a thousand sidecars, each with its own key, would
only add a thousand key generations to the set-up, not to what a push costs.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from harness.cp_http import Channel
from harness.processes import BenchError

WHOLE = 1 << 20
"""Keep whole answers (tokens, certificates: a few KB)."""
Account = tuple[str, str]
"""(namespace, service account)"""


def bundle_context(state_dir: Path) -> ssl.SSLContext:
    """Verifies the control plane (its trust bundle); presents no client certificate."""
    return ssl.create_default_context(cafile=str(state_dir / "root-cert.pem"))


def _key_and_csr(spiffe_id: str) -> tuple[bytes, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, csr.public_bytes(serialization.Encoding.PEM).decode()


async def issue_identities(
    port: int, state_dir: Path, accounts: Iterable[Account], directory: Path
) -> dict[Account, ssl.SSLContext]:
    """A client TLS context with a certificate of each account, issued by the control plane."""
    operator = (state_dir / "operator-token").read_text().strip()
    channel = Channel(port, bundle_context(state_dir))
    contexts: dict[Account, ssl.SSLContext] = {}
    try:
        for namespace, account in sorted(set(accounts)):
            body = json.dumps({"namespace": namespace, "service_account": account, "ttl": "1h"}).encode()
            answer = await channel.call(
                "POST", "/v1/tokens", body, headers=(("Authorization", f"Bearer {operator}"),), keep=WHOLE
            )
            if answer.status != 200:
                raise BenchError(f"the control plane refused a join token ({answer.status}): {answer.head!r}")
            token = json.loads(answer.head)["token"]
            spiffe_id = f"spiffe://cluster.local/ns/{namespace}/sa/{account}"
            key_pem, csr = _key_and_csr(spiffe_id)
            issued = await channel.call(
                "POST",
                "/v1/certificates",
                json.dumps({"csr": csr}).encode(),
                headers=(("Authorization", f"Bearer {token}"),),
                keep=WHOLE,
            )
            if issued.status != 200:
                raise BenchError(
                    f"the control plane refused a certificate ({issued.status}): {issued.head!r}"
                )
            reply = json.loads(issued.head)
            where = directory / f"{namespace}.{account}"
            where.mkdir(parents=True, exist_ok=True)
            (where / "key.pem").write_bytes(key_pem)
            (where / "key.pem").chmod(0o600)
            (where / "cert-chain.pem").write_text(reply["certificate_chain"])
            (where / "root-cert.pem").write_text(reply["trust_bundle"])
            context = ssl.create_default_context(cafile=str(where / "root-cert.pem"))
            context.load_cert_chain(where / "cert-chain.pem", where / "key.pem")
            contexts[(namespace, account)] = context
    finally:
        channel.close()
    return contexts
