"""The CA keeps, in memory, the latest workload certificate it issued per SPIFFE ID (what
``GET /v1/identities`` serves and ``loom check`` judges)."""

from __future__ import annotations

import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from loom.controlplane.security.authority import CertificateAuthority
from loom.controlplane.security.spiffe import SpiffeId

CATALOG = SpiffeId("cluster.local", "default", "catalog")
REVIEWS = SpiffeId("cluster.local", "default", "reviews")


def csr(identity: SpiffeId) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    builder = builder.add_extension(
        x509.SubjectAlternativeName([x509.UniformResourceIdentifier(identity.uri)]), critical=True
    )
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_the_latest_certificate_per_identity_is_kept(tmp_path: Path) -> None:
    before = time.time()
    ca = CertificateAuthority.self_signed(tmp_path / "ca", "cluster.local", cert_ttl=600.0)
    assert ca.issued.spiffe_ids() == [] and before <= ca.issued.since <= time.time()

    first = ca.sign_csr(csr(CATALOG), CATALOG)
    renewed = ca.sign_csr(csr(CATALOG), CATALOG)
    ca.sign_csr(csr(REVIEWS), REVIEWS)

    assert ca.issued.spiffe_ids() == [CATALOG.uri, REVIEWS.uri]
    latest = ca.issued.latest(CATALOG.uri)
    assert latest is not None and latest.count == 2
    assert (latest.serial, latest.not_after, latest.issued_at) == (
        renewed.serial,
        renewed.not_after,
        renewed.issued_at,
    )
    assert latest.serial != first.serial
    assert latest.to_json()["serial"] == f"{renewed.serial:x}"
    assert latest.to_json()["issued_since_start"] == 2
    assert ca.issued.latest("spiffe://cluster.local/ns/default/sa/nobody") is None


def test_the_serving_certificate_is_not_a_workload_identity(tmp_path: Path) -> None:
    ca = CertificateAuthority.self_signed(tmp_path / "ca", "cluster.local")
    ca.issue_serving(ec.generate_private_key(ec.SECP256R1()), CATALOG, ["127.0.0.1"], 60.0)
    assert ca.issued.spiffe_ids() == []
