"""The checks ``loom check`` runs, in order, and running them.

A fatal check that fails ends the run: the checks after it need what it checks (the bundle to verify
the control plane with, the control plane to ask).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from loom.cli.check.identities import certificates_fresh
from loom.cli.check.plane import clock_agrees, reachable
from loom.cli.check.probe import Probe, ProbeError
from loom.cli.check.proxies import proxies_synced
from loom.cli.check.result import Check, CheckResult, Outcome, Status
from loom.cli.check.trust import bundle_readable, roots_valid

CHECKS = (
    Check("trust bundle", "the trust bundle can be read", bundle_readable, fatal=True),
    Check("trust bundle", "its roots are valid and not about to expire", roots_valid),
    Check("control plane", "the control plane is reachable over HTTPS", reachable, fatal=True),
    Check("control plane", "its clock agrees with this machine's", clock_agrees),
    Check("proxies", "every registered proxy is SYNCED", proxies_synced),
    Check("identities", "workload certificates are valid and renewed on time", certificates_fresh),
)


def run_checks(probe: Probe, checks: Iterable[Check] = CHECKS) -> Iterator[Outcome]:
    """Each check's outcome as soon as it is known; stops after a fatal check that failed."""
    for check in checks:
        result = run_one(check, probe)
        yield Outcome(check, result)
        if check.fatal and result.status is Status.FAIL:
            return


def run_one(check: Check, probe: Probe) -> CheckResult:
    try:
        return check.run(probe)
    except ProbeError as exc:
        return CheckResult.fail(exc.message, exc.hint)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return CheckResult.fail(
            f"the control plane's answer is not what this loom expects ({type(exc).__name__}: {exc})",
            "run a loom of the control plane's version",
        )
