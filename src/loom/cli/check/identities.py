"""Every registered workload's certificate is valid and renewed on time (``GET /v1/identities``).

A sidecar renews its certificate at half its lifetime, ±10% (lifetime: from issue to expiry), so by
60% every renewal has started. Past ``OVERDUE_AT`` (65%: the renewal had time to finish) the
certificate is overdue and the check warns; an expired one fails it. The control plane knows what it
issued since it started: a certificate from before then is not judged, unless the control plane has
run long enough that it should have been renewed since.

Workloads of one service account share an identity, and the control plane keeps the latest
certificate per identity: a replica that stopped renewing hides behind one that renews.
"""

from __future__ import annotations

from typing import Any

from loom.cli.check.probe import Probe
from loom.cli.check.result import CheckResult, Status
from loom.cli.check.timefmt import span, when

RENEWED_BY = 0.60
OVERDUE_AT = 0.65
EXPIRED_HINT = (
    "a sidecar with an expired certificate cannot talk mutual TLS: it asks again with its join token "
    "while that is valid; else restart it with a new one (loom token create)"
)
OVERDUE_HINT = (
    "the sidecar is not renewing: look at its log (certificate renewal failed) and whether it can "
    "reach the control plane"
)


def certificate_verdict(
    cert: dict[str, Any] | None, now: float, since: float, ttl: float
) -> tuple[Status, str]:
    """How the latest certificate of an identity stands at ``now`` (the control plane's clock)."""
    if cert is None:
        up = now - since
        if up > OVERDUE_AT * ttl:
            return Status.WARN, (
                f"no certificate issued to it in the {span(up)} since the control plane started: it "
                f"should have renewed (certificates live {span(ttl)})"
            )
        return Status.OK, "its certificate was issued before the control plane started"
    serial, not_after, issued_at = cert["serial"], float(cert["not_after"]), float(cert["issued_at"])
    if now >= not_after:
        return Status.FAIL, (
            f"its certificate (serial {serial}) expired {span(now - not_after)} ago, on {when(not_after)}"
        )
    lifetime = max(not_after - issued_at, 1e-9)
    elapsed = (now - issued_at) / lifetime
    if elapsed > OVERDUE_AT:
        return Status.WARN, (
            f"its certificate (serial {serial}) is {elapsed:.0%} through its lifetime and was not "
            f"renewed (due by {RENEWED_BY:.0%}); it expires in {span(not_after - now)}"
        )
    return Status.OK, f"valid until {when(not_after)}"


def certificates_fresh(probe: Probe) -> CheckResult:
    return certificates_verdict(probe.get_json("/v1/identities"), probe.clock())


def certificates_verdict(body: dict[str, Any], local_now: float) -> CheckResult:
    now = float(body.get("now") or local_now)
    since, ttl = float(body["since"]), float(body["cert_ttl"])
    used = [row for row in body["identities"] if row["workloads"]]
    if not used:
        return CheckResult.ok("no workload is registered")
    worst: dict[Status, list[str]] = {Status.OK: [], Status.WARN: [], Status.FAIL: []}
    unknown = 0
    for row in used:
        status, line = certificate_verdict(row["certificate"], now, since, ttl)
        if row["certificate"] is None and status is Status.OK:
            unknown += 1
        worst[status].append(f"{', '.join(row['workloads'])} ({row['spiffe_id']}): {line}")
    workloads = sum(len(row["workloads"]) for row in used)
    counted = f"{workloads} workload{'s' if workloads != 1 else ''}, {len(used)} identit" + (
        "ies" if len(used) != 1 else "y"
    )
    if worst[Status.FAIL]:
        hint = EXPIRED_HINT + (f"; {OVERDUE_HINT}" if worst[Status.WARN] else "")
        return CheckResult.fail(
            f"{counted}: {len(worst[Status.FAIL])} expired", hint, worst[Status.FAIL] + worst[Status.WARN]
        )
    if worst[Status.WARN]:
        return CheckResult.warn(
            f"{counted}: {len(worst[Status.WARN])} overdue for renewal", OVERDUE_HINT, worst[Status.WARN]
        )
    note = f" ({unknown} issued before the control plane started)" if unknown else ""
    return CheckResult.ok(f"{counted}: every certificate valid and renewed on time{note}")
