"""``python -m loom.proxy.identity.keygen --key-out PATH --spiffe-id ID``: a new ECDSA P-256 key,
written to PATH (mode 0600), and a CSR for the SPIFFE ID printed on stdout (PEM).

The sidecar runs this as a short-lived child process for every certificate it asks for, so that
the long-running sidecar never imports ``cryptography`` (several MB of resident memory); the
private key is made here, beside the sidecar, and never travels.
"""

from __future__ import annotations

import argparse
import os
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec


def generate(key_out: str, spiffe_id: str) -> bytes:
    """Write a new key to ``key_out`` (0600, replacing any file there); return the CSR's PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = f"{key_out}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, pem)
    finally:
        os.close(fd)
    os.replace(tmp, key_out)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loom.proxy.identity.keygen", description="A workload key and its CSR."
    )
    parser.add_argument("--key-out", required=True, help="where to write the private key (mode 0600)")
    parser.add_argument("--spiffe-id", required=True, help="spiffe://<trust-domain>/ns/<ns>/sa/<sa>")
    args = parser.parse_args(argv)
    if not args.spiffe_id.startswith("spiffe://"):
        parser.error("--spiffe-id must be a spiffe:// URI")
    try:
        csr = generate(args.key_out, args.spiffe_id)
    except OSError as exc:
        print(f"error: cannot write {args.key_out}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(csr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
