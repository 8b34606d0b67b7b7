"""An operator's own CA for tests of the plug-in CA (``--ca-cert``/``--ca-key``): a root, an
intermediate it issued, and the files an operator gives the control plane."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Issuer = tuple[x509.Certificate, ec.EllipticCurvePrivateKey]


def make_ca(name: str, issuer: Issuer | None = None) -> Issuer:
    """A CA certificate (a root, or one ``issuer`` signed) and its key, valid for a year."""
    now = datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_cert, issuer_key = issuer if issuer else (None, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject if issuer_cert else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer_cert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256()), key


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class OperatorCa:
    root: x509.Certificate
    intermediate: x509.Certificate
    dir: Path

    @property
    def chain(self) -> Path:
        """The intermediate, then the root: ``--ca-cert``."""
        return self.dir / "ca-chain.pem"

    @property
    def cert(self) -> Path:
        """The intermediate alone."""
        return self.dir / "ca-cert.pem"

    @property
    def key(self) -> Path:
        """The intermediate's key: ``--ca-key``."""
        return self.dir / "ca-key.pem"

    @property
    def root_file(self) -> Path:
        return self.dir / "root-cert.pem"


def operator_ca(directory: Path, name: str = "Example Corp") -> OperatorCa:
    """A root and an intermediate, written to ``directory`` as an operator would keep them."""
    root = make_ca(f"{name} Root")
    intermediate = make_ca(f"{name} Mesh Intermediate", root)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca-chain.pem").write_bytes(pem(intermediate[0]) + pem(root[0]))
    (directory / "ca-cert.pem").write_bytes(pem(intermediate[0]))
    key = intermediate[1].private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (directory / "ca-key.pem").write_bytes(key)
    (directory / "root-cert.pem").write_bytes(pem(root[0]))
    return OperatorCa(root[0], intermediate[0], directory)
