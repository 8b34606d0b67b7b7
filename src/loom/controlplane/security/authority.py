"""The mesh's certificate authority: signs workload certificates (SPIFFE X.509-SVIDs) and the
control plane's own serving certificate.

By default the CA is a self-signed root (ECDSA P-256, 10 years) created on first start in the
state directory's ``ca/`` (key 0600). An operator may plug in their own CA instead, as Istio's
plug-in CA: ``--ca-cert`` (the signing certificate, then any intermediates, up to and including
the root) and ``--ca-key``. Leaf chains then carry the intermediates, and the trust bundle holds
the root. Extra trust anchors (``--trust-anchor``) join the bundle: two roots during a root
rotation. The signing key never leaves the control plane: sidecars send CSRs.
"""

from __future__ import annotations

import datetime
import ipaddress
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from loom.controlplane.security.files import read_private, write_private, write_public
from loom.controlplane.security.issued import IssuedCertificates
from loom.controlplane.security.spiffe import SpiffeId

ROOT_LIFETIME = datetime.timedelta(days=3650)
DEFAULT_CERT_TTL = 24 * 3600.0
CLOCK_SKEW = datetime.timedelta(minutes=1)
"""Certificates are valid from a minute before they are issued: a peer whose clock is a little
behind still accepts them."""
ROOT_CERT = "root-cert.pem"
ROOT_KEY = "root-key.pem"


class CaError(Exception):
    """The CA's certificate or key cannot be used (a person has to fix a file or a flag)."""


class CsrRefused(Exception):
    """A CSR this CA will not sign: ``status`` 400 (malformed) or 403 (an identity not granted)."""

    def __init__(self, status: int, message: str, requested: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.requested = requested


@dataclass(frozen=True, slots=True)
class Issued:
    """A signed certificate: the chain to hand out (leaf first, then intermediates)."""

    chain_pem: bytes
    serial: int
    not_before: float
    not_after: float
    issued_at: float
    """When it was signed (``not_before`` is a minute earlier, for clock skew)."""


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _is_self_signed(cert: x509.Certificate) -> bool:
    if cert.issuer != cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _public_bytes(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def load_certificates(path: Path) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as exc:
        raise CaError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CaError(f"{path} holds no PEM certificate: {exc}") from None
    return certs


def _load_key(path: Path, *, ours: bool) -> ec.EllipticCurvePrivateKey:
    try:
        data = read_private(path) if ours else path.read_bytes()
        key = serialization.load_pem_private_key(data, password=None)
    except OSError as exc:
        raise CaError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError) as exc:
        raise CaError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CaError(f"{path}: the CA key must be an ECDSA key (P-256 or larger)")
    return key


class CertificateAuthority:
    def __init__(
        self,
        signing_cert: x509.Certificate,
        signing_key: ec.EllipticCurvePrivateKey,
        intermediates: Sequence[x509.Certificate],
        roots: Sequence[x509.Certificate],
        trust_domain: str,
        cert_ttl: float = DEFAULT_CERT_TTL,
        plugged_in: bool = False,
    ) -> None:
        self.signing_cert = signing_cert
        self._key = signing_key
        self.intermediates = list(intermediates)
        """Sent after every leaf: the certificates between the leaf and a root."""
        self.roots = _unique(roots)
        """The trust bundle: the root of this CA's chain first, then any extra trust anchors."""
        self.trust_domain = trust_domain
        self.cert_ttl = cert_ttl
        self.plugged_in = plugged_in
        self.issued = IssuedCertificates()
        """The latest workload certificate signed per SPIFFE ID (in memory, since start)."""

    # creating and loading ----------------------------------------------------------------------

    @classmethod
    def self_signed(
        cls,
        ca_dir: Path,
        trust_domain: str,
        cert_ttl: float = DEFAULT_CERT_TTL,
        trust_anchors: Sequence[x509.Certificate] = (),
    ) -> CertificateAuthority:
        """The root kept in ``ca_dir`` (created there on first use: key 0600, cert 0644)."""
        cert_path, key_path = ca_dir / ROOT_CERT, ca_dir / ROOT_KEY
        if cert_path.exists() and key_path.exists():
            [root, *_] = load_certificates(cert_path)
            key = _load_key(key_path, ours=True)
            if _public_bytes(root.public_key()) != _public_bytes(key.public_key()):
                raise CaError(f"{key_path} is not the key of {cert_path}")
        else:
            if cert_path.exists() or key_path.exists():
                raise CaError(
                    f"{ca_dir} holds only one of {ROOT_CERT} and {ROOT_KEY}: restore the other, or "
                    "remove both to create a new root (every workload certificate will be issued again)"
                )
            ca_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            key = new_key()
            root = _root_certificate(key, trust_domain)
            write_private(key_path, key_pem(key))
            write_public(cert_path, cert_pem(root))
        return cls(root, key, [], [root, *trust_anchors], trust_domain, cert_ttl)

    @classmethod
    def plug_in(
        cls,
        cert_file: Path,
        key_file: Path,
        trust_domain: str,
        cert_ttl: float = DEFAULT_CERT_TTL,
        trust_anchors: Sequence[x509.Certificate] = (),
    ) -> CertificateAuthority:
        """The operator's CA: ``cert_file`` is the signing certificate, then its issuers up to the
        root (or to a certificate a trust anchor issued); ``key_file`` the signing key."""
        chain = load_certificates(cert_file)
        key = _load_key(key_file, ours=False)
        signing = chain[0]
        if _public_bytes(signing.public_key()) != _public_bytes(key.public_key()):
            raise CaError(f"{key_file} is not the key of the first certificate in {cert_file}")
        if not _is_ca(signing):
            raise CaError(f"the first certificate in {cert_file} is not a CA (basicConstraints CA:FALSE)")
        for child, parent in itertools.pairwise(chain):
            if not _issued_by(child, parent):
                raise CaError(
                    f"{cert_file}: {child.subject.rfc4514_string()} is not issued by the next "
                    f"certificate, {parent.subject.rfc4514_string()}: give the chain in order, "
                    "signing certificate first, root last"
                )
        last = chain[-1]
        if _is_self_signed(last):
            roots, intermediates = [last], [c for c in chain if not _is_self_signed(c)]
        elif any(_issued_by(last, anchor) for anchor in trust_anchors):
            roots, intermediates = [], list(chain)
        else:
            raise CaError(
                f"{cert_file} does not end with a root certificate: append the root to it, or give "
                "the root with --trust-anchor"
            )
        now = _now()
        if signing.not_valid_after_utc <= now:
            raise CaError(f"the CA certificate in {cert_file} expired on {signing.not_valid_after_utc}")
        return cls(signing, key, intermediates, [*roots, *trust_anchors], trust_domain, cert_ttl, True)

    # what it hands out ---------------------------------------------------------------------------

    @property
    def bundle_pem(self) -> bytes:
        """The trust bundle: every root a workload or client accepts."""
        return b"".join(cert_pem(root) for root in self.roots)

    @property
    def expires_at(self) -> float:
        return self.signing_cert.not_valid_after_utc.timestamp()

    def sign_csr(self, csr_pem: bytes, identity: SpiffeId, ttl: float | None = None) -> Issued:
        """A workload certificate for ``identity``, with the CSR's public key. The CSR must ask for
        exactly that identity (one URI SAN, nothing else): else CsrRefused (403)."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem)
        except ValueError as exc:
            raise CsrRefused(400, f"not a PEM certificate signing request: {exc}") from None
        if not csr.is_signature_valid:
            raise CsrRefused(400, "the CSR's signature does not verify")
        public_key = csr.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name != "secp256r1":
            raise CsrRefused(400, "the CSR's key must be ECDSA P-256")
        requested = _requested_names(csr)
        if requested != [identity.uri]:
            shown = ", ".join(requested) or "no identity"
            raise CsrRefused(
                403, f"the CSR asks for {shown}; only {identity.uri} may be issued", requested=shown
            )
        issued = self._sign_leaf(
            public_key,
            [x509.UniformResourceIdentifier(identity.uri)],
            self.cert_ttl if ttl is None else ttl,
        )
        self.issued.record(identity.uri, issued)
        return issued

    def issue_serving(
        self, key: ec.EllipticCurvePrivateKey, identity: SpiffeId, hosts: Sequence[str], ttl: float
    ) -> Issued:
        """The control plane's serving certificate: the hosts clients dial (IP addresses and DNS
        names) and its own SPIFFE ID."""
        names: list[x509.GeneralName] = []
        for host in dict.fromkeys(hosts):
            try:
                address = ipaddress.ip_address(host)
            except ValueError:
                names.append(x509.DNSName(host))
            else:
                if not address.is_unspecified:
                    names.append(x509.IPAddress(address))
        names.append(x509.UniformResourceIdentifier(identity.uri))
        return self._sign_leaf(key.public_key(), names, ttl)

    def _sign_leaf(
        self, public_key: ec.EllipticCurvePublicKey, names: list[x509.GeneralName], ttl: float
    ) -> Issued:
        now = _now()
        not_after = min(now + datetime.timedelta(seconds=ttl), self.signing_cert.not_valid_after_utc)
        not_before = now - CLOCK_SKEW
        issuer_key = self.signing_cert.public_key()
        serial = x509.random_serial_number()
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))  # the identity is the URI SAN (SPIFFE X.509-SVID)
            .issuer_name(self.signing_cert.subject)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName(names), critical=True)  # critical: no subject
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(digital_signature=True), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key),  # type: ignore[arg-type]
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        chain = cert_pem(cert) + b"".join(cert_pem(c) for c in self.intermediates)
        return Issued(chain, serial, not_before.timestamp(), not_after.timestamp(), now.timestamp())


def _requested_names(csr: x509.CertificateSigningRequest) -> list[str]:
    """Every name a CSR asks for, URI SANs as they are and the others as ``DNS:...`` and the like."""
    try:
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    found: list[str] = []
    for name in sans:
        if isinstance(name, x509.UniformResourceIdentifier):
            found.append(name.value)
        else:
            found.append(f"{type(name).__name__}:{name.value}")
    return found


def _key_usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _root_certificate(key: ec.EllipticCurvePrivateKey, trust_domain: str) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Loom"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"Loom root CA {trust_domain}"),
        ]
    )
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + ROOT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _unique(certs: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    seen: dict[bytes, x509.Certificate] = {}
    for cert in certs:
        seen.setdefault(cert.fingerprint(hashes.SHA256()), cert)
    return list(seen.values())
