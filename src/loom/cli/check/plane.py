"""The control plane: it answers over HTTPS with a certificate the trust bundle verifies, and its clock
agrees with this machine's."""

from __future__ import annotations

from loom.cli.check.probe import WHERE_HINT, Answer, Probe
from loom.cli.check.result import CheckResult
from loom.cli.check.timefmt import span

CLOCK_TOLERANCE = 5.0
"""Seconds two clocks may differ by before the check warns. Certificates are valid from a minute
before they are issued, so a larger skew soon makes a peer refuse a new one."""


def reachable(probe: Probe) -> CheckResult:
    url = probe.url
    if not url.startswith("https://"):
        return CheckResult.fail(
            f"{url} is not an https:// URL", f"the control plane serves HTTPS only: {WHERE_HINT}"
        )
    answer = probe.get("/healthz")
    if answer.status != 200:
        return CheckResult.fail(
            f"{url}/healthz answered HTTP {answer.status}", f"is a Loom control plane there? {WHERE_HINT}"
        )
    return CheckResult.ok(f"{url}, its certificate verified by the trust bundle")


def clock_offset(answer: Answer) -> float | None:
    """How far the control plane's clock is ahead of this one (negative: behind), seconds. The
    ``Date`` header is truncated to the second: half a second is added back, and the local time is
    taken halfway through the request."""
    if answer.date is None:
        return None
    return answer.date + 0.5 - (answer.sent + answer.received) / 2


def clock_verdict(offset: float | None) -> CheckResult:
    if offset is None:
        return CheckResult.warn(
            "the control plane's answer has no Date header: the clocks cannot be compared",
            "is a Loom control plane there?",
        )
    if abs(offset) <= CLOCK_TOLERANCE:
        return CheckResult.ok(f"they differ by less than {CLOCK_TOLERANCE:.0f}s")
    way = "ahead of" if offset > 0 else "behind"
    return CheckResult.warn(
        f"the control plane's clock is {span(offset)} {way} this machine's",
        "certificates are valid from one time to another, judged by each machine's clock: keep "
        "every clock in sync (NTP, chrony)",
    )


def clock_agrees(probe: Probe) -> CheckResult:
    return clock_verdict(clock_offset(probe.get("/healthz")))
