"""The control plane's CA: the self-signed root, workload certificates (chain, SPIFFE URI SAN,
lifetime, key usage), CSRs it refuses, a plug-in CA with an intermediate, extra trust anchors,
and the state directory's files and modes."""

from __future__ import annotations

import datetime
import stat
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from cryptography.x509.verification import PolicyBuilder, Store

from loom.controlplane.security.authority import (
    CaError,
    CertificateAuthority,
    CsrRefused,
    key_pem,
)
from loom.controlplane.security.setup import SecurityOptions, open_security
from loom.controlplane.security.spiffe import SpiffeId
from tests.support.operator_ca import OperatorCa, operator_ca

CATALOG = SpiffeId("cluster.local", "default", "catalog")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def csr_for(*names: x509.GeneralName, key: object | None = None) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(names)), critical=True)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)  # type: ignore[arg-type]


def uri(identity: SpiffeId) -> x509.UniformResourceIdentifier:
    return x509.UniformResourceIdentifier(identity.uri)


def chain_of(pem: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem)


def verify_client(leaf_chain: bytes, roots: list[x509.Certificate]) -> list[x509.GeneralName]:
    """Path validation as a TLS server validates a client certificate (RFC 5280, clientAuth)."""
    leaf, *intermediates = chain_of(leaf_chain)
    verifier = PolicyBuilder().store(Store(roots)).build_client_verifier()
    return list(verifier.verify(leaf, intermediates).subjects or [])


@pytest.fixture
def operator(tmp_path: Path) -> OperatorCa:
    return operator_ca(tmp_path / "operator")


# the self-signed root ----------------------------------------------------------------------------


def test_the_self_signed_root_is_created_once_with_its_key_private(tmp_path: Path) -> None:
    ca = CertificateAuthority.self_signed(tmp_path / "ca", "cluster.local")
    root = ca.signing_cert
    assert mode(tmp_path / "ca") == 0o700
    assert mode(tmp_path / "ca" / "root-key.pem") == 0o600
    assert mode(tmp_path / "ca" / "root-cert.pem") == 0o644
    assert root.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert isinstance(root.public_key(), ec.EllipticCurvePublicKey)
    assert root.public_key().curve.name == "secp256r1"  # type: ignore[attr-defined]
    lifetime = root.not_valid_after_utc - root.not_valid_before_utc
    assert datetime.timedelta(days=3649) < lifetime < datetime.timedelta(days=3651)
    assert ca.roots == [root] and chain_of(ca.bundle_pem) == [root]

    again = CertificateAuthority.self_signed(tmp_path / "ca", "cluster.local")
    assert again.signing_cert == root  # read back, not created anew


def test_a_lone_root_key_or_cert_is_refused_rather_than_replaced(tmp_path: Path) -> None:
    CertificateAuthority.self_signed(tmp_path / "ca", "cluster.local")
    (tmp_path / "ca" / "root-key.pem").unlink()
    with pytest.raises(CaError, match="only one of"):
        CertificateAuthority.self_signed(tmp_path / "ca", "cluster.local")


# workload certificates ---------------------------------------------------------------------------


def test_a_workload_certificate_carries_the_spiffe_id_and_nothing_else(tmp_path: Path) -> None:
    ca = CertificateAuthority.self_signed(tmp_path / "ca", "cluster.local")
    issued = ca.sign_csr(csr_for(uri(CATALOG)), CATALOG)
    [leaf] = chain_of(issued.chain_pem)  # signed by the root directly: no intermediate to send
    assert leaf.subject == x509.Name([])  # no CN: the identity is the URI SAN
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert sans.critical and list(sans.value) == [x509.UniformResourceIdentifier(CATALOG.uri)]
    assert CATALOG.uri == "spiffe://cluster.local/ns/default/sa/catalog"
    assert leaf.public_key().curve.name == "secp256r1"  # type: ignore[attr-defined]
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign and not usage.key_encipherment
    assert set(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == {
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    }
    # 24 h from now, valid from a minute ago (clock skew)
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == datetime.timedelta(hours=24, minutes=1)
    assert abs(leaf.not_valid_before_utc.timestamp() - (issued.issued_at - 60)) < 1
    assert abs(issued.issued_at - time.time()) < 60
    assert verify_client(issued.chain_pem, ca.roots) == [x509.UniformResourceIdentifier(CATALOG.uri)]


def test_the_lifetime_follows_cert_ttl(tmp_path: Path) -> None:
    ca = CertificateAuthority.self_signed(tmp_path / "ca", "cluster.local", cert_ttl=20.0)
    [leaf] = chain_of(ca.sign_csr(csr_for(uri(CATALOG)), CATALOG).chain_pem)
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == datetime.timedelta(seconds=80)


@pytest.mark.parametrize(
    ("names", "status", "message"),
    [
        (
            (uri(SpiffeId("cluster.local", "default", "admin")),),
            403,
            "only spiffe://cluster.local/ns/default/sa/catalog",
        ),
        (
            (uri(SpiffeId("cluster.local", "prod", "catalog")),),
            403,
            "asks for spiffe://cluster.local/ns/prod/sa/catalog",
        ),
        ((uri(CATALOG), x509.DNSName("catalog.default.svc")), 403, "DNSName:catalog.default.svc"),
        ((uri(CATALOG), uri(SpiffeId("cluster.local", "default", "admin"))), 403, "sa/admin"),
        ((), 403, "asks for no identity"),
    ],
)
def test_a_csr_for_anything_but_the_granted_identity_is_refused(
    tmp_path: Path, names: tuple[x509.GeneralName, ...], status: int, message: str
) -> None:
    ca = CertificateAuthority.self_signed(tmp_path / "ca", "cluster.local")
    with pytest.raises(CsrRefused) as refused:
        ca.sign_csr(csr_for(*names), CATALOG)
    assert refused.value.status == status and message in refused.value.message


def test_a_malformed_csr_or_another_key_type_is_a_bad_request(tmp_path: Path) -> None:
    ca = CertificateAuthority.self_signed(tmp_path / "ca", "cluster.local")
    with pytest.raises(CsrRefused) as refused:
        ca.sign_csr(
            b"-----BEGIN CERTIFICATE REQUEST-----\nnope\n-----END CERTIFICATE REQUEST-----\n", CATALOG
        )
    assert refused.value.status == 400
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(CsrRefused, match="ECDSA P-256") as refused:
        ca.sign_csr(csr_for(uri(CATALOG), key=rsa_key), CATALOG)
    assert refused.value.status == 400


# a plug-in CA --------------------------------------------------------------------------------------


def test_a_plug_in_intermediate_is_sent_with_every_leaf_and_its_root_is_the_bundle(
    operator: OperatorCa,
) -> None:
    ca = CertificateAuthority.plug_in(operator.chain, operator.key, "cluster.local")
    assert ca.plugged_in and ca.roots == [operator.root]
    issued = ca.sign_csr(csr_for(uri(CATALOG)), CATALOG)
    leaf, intermediate = chain_of(issued.chain_pem)
    assert intermediate == operator.intermediate
    assert leaf.issuer == intermediate.subject
    assert verify_client(issued.chain_pem, ca.roots) == [x509.UniformResourceIdentifier(CATALOG.uri)]
    assert chain_of(ca.bundle_pem) == [operator.root]


def test_a_plug_in_chain_without_its_root_needs_the_root_as_a_trust_anchor(operator: OperatorCa) -> None:
    with pytest.raises(CaError, match="does not end with a root"):
        CertificateAuthority.plug_in(operator.cert, operator.key, "cluster.local")
    ca = CertificateAuthority.plug_in(
        operator.cert, operator.key, "cluster.local", trust_anchors=[operator.root]
    )
    issued = ca.sign_csr(csr_for(uri(CATALOG)), CATALOG)
    assert len(chain_of(issued.chain_pem)) == 2
    assert verify_client(issued.chain_pem, ca.roots)


def test_a_plug_in_ca_must_match_its_key_and_be_in_order(operator: OperatorCa, tmp_path: Path) -> None:
    other_key = tmp_path / "other-key.pem"
    other_key.write_bytes(key_pem(ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(CaError, match="is not the key of"):
        CertificateAuthority.plug_in(operator.chain, other_key, "cluster.local")
    reversed_chain = tmp_path / "reversed.pem"
    reversed_chain.write_bytes(operator.root_file.read_bytes() + operator.cert.read_bytes())
    with pytest.raises(CaError):
        CertificateAuthority.plug_in(reversed_chain, operator.key, "cluster.local")


# the state directory -----------------------------------------------------------------------------


def test_the_state_directory_keeps_its_secrets_private_and_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = open_security(SecurityOptions(state_dir=state))
    assert mode(state) == 0o700
    for private in ("ca/root-key.pem", "ca/serving-key.pem", "token-key", "operator-token"):
        assert mode(state / private) == 0o600, private
    assert mode(state / "root-cert.pem") == 0o644
    assert chain_of((state / "root-cert.pem").read_bytes()) == first.ca.roots
    token, _ = first.tokens.mint("default", "catalog")

    again = open_security(SecurityOptions(state_dir=state))
    assert again.ca.signing_cert == first.ca.signing_cert
    assert again.operator_token == first.operator_token and len(again.operator_token) >= 40
    assert again.tokens.verify(token).identity == CATALOG  # tokens survive a restart


def test_the_serving_certificate_names_the_hosts_and_the_control_plane(tmp_path: Path) -> None:
    security = open_security(
        SecurityOptions(state_dir=tmp_path / "state", hosts=("0.0.0.0", "cp.mesh.example"))
    )
    leaf, *intermediates = chain_of((tmp_path / "state" / "ca" / "serving-cert.pem").read_bytes())
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {"127.0.0.1"}  # not 0.0.0.0
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "cp.mesh.example"]
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://cluster.local/ns/loom-system/sa/loom-controlplane"
    ]
    verifier = (
        PolicyBuilder().store(Store(security.ca.roots)).build_server_verifier(x509.DNSName("localhost"))
    )
    verifier.verify(leaf, intermediates)


def test_trust_anchors_join_the_bundle(tmp_path: Path, operator: OperatorCa) -> None:
    security = open_security(
        SecurityOptions(state_dir=tmp_path / "state", trust_anchors=(operator.root_file,))
    )
    bundle = chain_of((tmp_path / "state" / "root-cert.pem").read_bytes())
    assert bundle == [security.ca.signing_cert, operator.root]


def test_bad_options_are_refused_with_what_to_fix(tmp_path: Path, operator: OperatorCa) -> None:
    with pytest.raises(ValueError, match="--ca-cert and --ca-key together"):
        open_security(SecurityOptions(state_dir=tmp_path / "s", ca_cert=operator.chain))
    with pytest.raises(ValueError, match="trust domain"):
        open_security(SecurityOptions(state_dir=tmp_path / "s", trust_domain="Not/A/Domain"))
    with pytest.raises(CaError, match="cannot read"):
        open_security(SecurityOptions(state_dir=tmp_path / "s", trust_anchors=(tmp_path / "missing.pem",)))
