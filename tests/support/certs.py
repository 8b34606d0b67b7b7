"""Certificates for tests: a root CA and SPIFFE workload certificates signed by it, as files."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOW = datetime.datetime.now(datetime.UTC)


def spiffe(namespace: str, service_account: str, trust_domain: str = "cluster.local") -> str:
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"


@dataclass
class CertAuthority:
    name: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, name: str = "Loom test root") -> CertAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, name)])
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - datetime.timedelta(days=1))
            .not_valid_after(NOW + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
            )
            .sign(key, hashes.SHA256())
        )
        return cls(name, key, cert)

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(
        self,
        spiffe_id: str,
        *,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> tuple[bytes, bytes]:
        """(certificate PEM, key PEM) for a workload with this SPIFFE ID."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or NOW - datetime.timedelta(minutes=5))
            .not_valid_after(not_after or NOW + datetime.timedelta(hours=24))
            .add_extension(
                x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]), critical=True
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return cert.public_bytes(serialization.Encoding.PEM), key_pem


def write_identity(
    directory: Path,
    name: str,
    ca: CertAuthority,
    spiffe_id: str,
    *,
    bundle: list[CertAuthority] | None = None,
    **validity: datetime.datetime,
) -> dict[str, str]:
    """Write a workload's certificate, key (0600) and trust bundle; return a snapshot ``identity``."""
    cert_pem, key_pem = ca.issue(spiffe_id, **validity)
    cert_file, key_file, bundle_file = (
        directory / f"{name}-{part}.pem" for part in ("cert", "key", "bundle")
    )
    cert_file.write_bytes(cert_pem)
    key_file.touch(mode=0o600)
    key_file.write_bytes(key_pem)
    os.chmod(key_file, 0o600)
    bundle_file.write_bytes(b"".join(c.pem() for c in (bundle or [ca])))
    return {"cert_file": str(cert_file), "key_file": str(key_file), "trust_bundle_file": str(bundle_file)}


def replace_identity(
    directory: Path,
    name: str,
    ca: CertAuthority,
    spiffe_id: str,
    *,
    bundle: list[CertAuthority] | None = None,
) -> None:
    """Rotate a workload's files in place, each one replaced atomically (as a renewing agent does)."""
    staging = directory / "staging"
    staging.mkdir(exist_ok=True)
    fresh = write_identity(staging, name, ca, spiffe_id, bundle=bundle)
    for part in ("key_file", "cert_file", "trust_bundle_file"):
        source = Path(fresh[part])
        os.replace(source, directory / source.name)
