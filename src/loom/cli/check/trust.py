"""The trust bundle: it can be read, and its roots are valid now and not about to expire.

A root is due for rotation once it is inside its **renewal window**: the last 10% of its lifetime,
or the last 30 days if that is longer (a year for Loom's own 10-year root). Inside the window the
check warns; an expired root, or one not valid yet, fails it.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from loom.cli.check.probe import BUNDLE_HINT, Probe, ProbeError
from loom.cli.check.result import CheckResult, Status
from loom.cli.check.timefmt import span, when

RENEWAL_FRACTION = 0.10
RENEWAL_MINIMUM = 30 * 86400.0
ROTATE_HINT = 'rotate the root before it expires: see "Rotating the root" in docs/controlplane.md'


@dataclass(frozen=True)
class Root:
    name: str
    not_before: float
    not_after: float

    @classmethod
    def of(cls, cert: x509.Certificate) -> Root:
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        name = str(names[0].value) if names else cert.subject.rfc4514_string() or "(no subject)"
        return cls(name, cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp())


def renewal_window(root: Root) -> float:
    return max(RENEWAL_FRACTION * (root.not_after - root.not_before), RENEWAL_MINIMUM)


def root_verdict(root: Root, now: float) -> tuple[Status, str]:
    """How one root stands at ``now``, and the line that says so."""
    if now < root.not_before:
        return Status.FAIL, f"{root.name} is not valid before {when(root.not_before)}"
    if now >= root.not_after:
        return Status.FAIL, f"{root.name} expired on {when(root.not_after)}"
    left = root.not_after - now
    if left < renewal_window(root):
        return Status.WARN, f"{root.name} expires on {when(root.not_after)}, in {span(left)}"
    return Status.OK, f"{root.name} is valid until {when(root.not_after)}"


def read_roots(probe: Probe) -> list[Root]:
    path = probe.access.bundle
    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except OSError as exc:
        raise ProbeError(f"cannot read {path}: {exc.strerror or exc}", BUNDLE_HINT) from None
    except ValueError:
        raise ProbeError(f"{path} holds no PEM certificate", BUNDLE_HINT) from None
    return [Root.of(cert) for cert in certs]


def bundle_readable(probe: Probe) -> CheckResult:
    roots = read_roots(probe)
    return CheckResult.ok(f"{len(roots)} root{'s' if len(roots) != 1 else ''} in {probe.access.bundle}")


def roots_valid(probe: Probe) -> CheckResult:
    now = probe.clock()
    roots = read_roots(probe)
    verdicts = [root_verdict(root, now) for root in roots]
    bad = [line for status, line in verdicts if status is Status.FAIL]
    due = [line for status, line in verdicts if status is Status.WARN]
    if bad:
        return CheckResult.fail(
            f"{len(bad)} of {len(roots)} roots cannot be trusted now",
            "peers refuse every certificate that chains to such a root: give the control plane a "
            f"valid CA; {ROTATE_HINT}",
            bad + due,
        )
    if due:
        return CheckResult.warn(
            f"{len(due)} of {len(roots)} roots in their renewal window "
            "(the last 10% of their lifetime, at least 30 days)",
            ROTATE_HINT,
            due,
        )
    if not roots:
        return CheckResult.fail("the trust bundle holds no root", BUNDLE_HINT)
    first = min(roots, key=lambda root: root.not_after)
    return CheckResult.ok(f"the first to expire, {first.name}, is valid until {when(first.not_after)}")
