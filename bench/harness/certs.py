"""Certificates for the TLS targets: one root, and a SPIFFE workload certificate for each side.

Both the HAProxy and the Loom TLS pair use these same files: ECDSA P-256 keys, SHA-256
signatures, a ``spiffe://cluster.local/ns/default/sa/<sa>`` URI SAN and serverAuth + clientAuth,
the shape of the certificates Loom's control plane issues.
"""

from __future__ import annotations

import datetime
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TRUST_DOMAIN = "cluster.local"
NAMESPACE = "default"
CLIENT_SA = "bench-client"
"""The calling side: the outbound proxy, and the handshake client."""
SERVER_SA = "bench-server"
"""The called side: the inbound proxy."""


def spiffe_uri(service_account: str) -> str:
    return f"spiffe://{TRUST_DOMAIN}/ns/{NAMESPACE}/sa/{service_account}"


@dataclass(frozen=True)
class Credentials:
    """One workload's certificate and key, as separate files and as one (HAProxy's ``crt``)."""

    service_account: str
    cert: Path
    key: Path
    combined: Path

    @property
    def spiffe_id(self) -> str:
        return spiffe_uri(self.service_account)


@dataclass(frozen=True)
class Certs:
    root: Path
    client: Credentials
    server: Credentials

    def identity(self, side: Credentials) -> dict[str, str]:
        """A Loom snapshot's ``identity`` for one side."""
        return {"cert_file": str(side.cert), "key_file": str(side.key), "trust_bundle_file": str(self.root)}

    def client_context(self) -> ssl.SSLContext:
        """TLS 1.3 with the client certificate, trusting the root; no host name (SPIFFE IDs have none)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_3
        context.check_hostname = False
        context.load_verify_locations(cafile=str(self.root))
        context.load_cert_chain(str(self.client.cert), str(self.client.key))
        return context


def listener_url(port: int, certs: Certs | None) -> tuple[str, ssl.SSLContext | None]:
    """The URL that shows a listener is ready, and the client TLS context to fetch it with (None:
    plaintext; else the listener requires the bench's client certificate)."""
    if certs is None:
        return f"http://127.0.0.1:{port}/", None
    return f"https://127.0.0.1:{port}/", certs.client_context()


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _signed(
    builder: x509.CertificateBuilder, public: Any, issuer: ec.EllipticCurvePrivateKey, days: int
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    return (
        builder.public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .sign(issuer, hashes.SHA256())
    )


def _workload(
    directory: Path, service_account: str, root: x509.Certificate, root_key: ec.EllipticCurvePrivateKey
) -> Credentials:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(root.subject)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_uri(service_account))]),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
    )
    cert_pem = _pem(_signed(builder, key.public_key(), root_key, days=2))
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    files = [directory / f"{service_account}-{part}.pem" for part in ("cert", "key", "combined")]
    for path, data in zip(files, (cert_pem, key_pem, cert_pem + key_pem), strict=True):
        path.touch(mode=0o600)
        path.write_bytes(data)
    return Credentials(service_account, *files)


def make(directory: Path) -> Certs:
    """A fresh root and the client's and server's certificates, written under ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    root_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Loom bench root")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    )
    root = _signed(ca, root_key.public_key(), root_key, days=30)
    root_file = directory / "root.pem"
    root_file.write_bytes(_pem(root))
    return Certs(
        root=root_file,
        client=_workload(directory, CLIENT_SA, root, root_key),
        server=_workload(directory, SERVER_SA, root, root_key),
    )
