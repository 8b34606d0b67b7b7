"""``loom check``'s judgements, without a control plane: roots and their renewal window, clock skew,
proxy sync states, workload certificates past their renewal point, and how a run stops and prints."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from loom.cli.check import render
from loom.cli.check.identities import certificate_verdict, certificates_verdict
from loom.cli.check.plane import clock_offset, clock_verdict
from loom.cli.check.probe import Answer, Probe, ProbeError
from loom.cli.check.proxies import proxies_synced, proxies_verdict
from loom.cli.check.result import Check, CheckResult, Status
from loom.cli.check.run import run_checks
from loom.cli.check.trust import Root, renewal_window, root_verdict, roots_valid
from loom.cli.connection import ControlPlaneAccess

DAY = 86400.0
YEAR = 365 * DAY
NOW = 2_000_000_000.0


# roots -------------------------------------------------------------------------------------------


def test_a_ten_year_root_warns_in_its_last_year() -> None:
    root = Root("Loom root CA", NOW - 9 * YEAR, NOW + YEAR + DAY)
    assert renewal_window(root) == 0.1 * (10 * YEAR + DAY)
    assert root_verdict(root, NOW)[0] is Status.OK
    status, line = root_verdict(root, NOW + 2 * DAY)
    assert status is Status.WARN and "Loom root CA expires on" in line and "in 364d" in line


def test_a_short_root_warns_in_its_last_thirty_days() -> None:
    root = Root("short", NOW - 60 * DAY, NOW + 40 * DAY)  # 10% of 100 days is less than 30 days
    assert renewal_window(root) == 30 * DAY
    assert root_verdict(root, NOW)[0] is Status.OK
    assert root_verdict(root, NOW + 11 * DAY)[0] is Status.WARN


def test_an_expired_root_or_one_not_valid_yet_fails() -> None:
    root = Root("old", NOW - YEAR, NOW - DAY)
    status, line = root_verdict(root, NOW)
    assert status is Status.FAIL and line.startswith("old expired on")
    status, line = root_verdict(Root("early", NOW + DAY, NOW + YEAR), NOW)
    assert status is Status.FAIL and "not valid before" in line


def self_signed(name: str, not_before: float, not_after: float) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime.fromtimestamp(not_before, datetime.UTC))
        .not_valid_after(datetime.datetime.fromtimestamp(not_after, datetime.UTC))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def probe_of(state_dir: Path, now: float = NOW) -> Probe:
    return Probe(ControlPlaneAccess.of("https://127.0.0.1:1", state_dir), clock=lambda: now)


def test_every_root_of_the_bundle_is_judged(tmp_path: Path) -> None:
    bundle = tmp_path / "root-cert.pem"
    bundle.write_bytes(
        self_signed("old", NOW - 10 * YEAR, NOW + 100 * DAY) + self_signed("new", NOW, NOW + 10 * YEAR)
    )
    result = roots_valid(probe_of(tmp_path))
    assert result.status is Status.WARN
    assert [line.split(" expires")[0] for line in result.details] == ["old"]
    assert "Rotating the root" in result.hint

    bundle.write_bytes(self_signed("new", NOW - DAY, NOW + 10 * YEAR))
    result = roots_valid(probe_of(tmp_path))
    assert result.status is Status.OK and "new, is valid until" in result.reason


def test_a_missing_bundle_says_where_it_was_looked_for(tmp_path: Path) -> None:
    try:
        roots_valid(probe_of(tmp_path))
    except ProbeError as exc:
        assert str(tmp_path / "root-cert.pem") in exc.message and "$LOOM_CA_FILE" in exc.hint
    else:
        raise AssertionError("no ProbeError")


# the clock ---------------------------------------------------------------------------------------


def test_the_clock_offset_takes_the_date_headers_second_into_account() -> None:
    answer = Answer(200, b"ok", date=1000.0, sent=999.0, received=999.2)
    assert abs(clock_offset(answer) - 1.4) < 1e-9  # type: ignore[operator]
    assert clock_offset(Answer(200, b"", None, 0.0, 0.0)) is None


def test_clocks_more_than_five_seconds_apart_warn() -> None:
    assert clock_verdict(4.0).status is Status.OK
    ahead = clock_verdict(7.2)
    assert ahead.status is Status.WARN and "7.2s ahead of" in ahead.reason and "NTP" in ahead.hint
    assert "behind" in clock_verdict(-3700).reason and "1h 1m" in clock_verdict(-3700).reason
    assert clock_verdict(None).status is Status.WARN


# proxies -----------------------------------------------------------------------------------------


def row(workload: str, status: str = "SYNCED", error: str | None = None, acked: str = "5") -> dict[str, Any]:
    return {
        "namespace": "default",
        "workload": workload,
        "version": "5",
        "acked": acked,
        "status": status,
        "error": error,
        "last_seen_seconds_ago": 0.4,
    }


def test_proxies_all_synced_pass_and_the_others_are_listed_with_their_error() -> None:
    assert proxies_verdict([]).status is Status.OK
    assert proxies_verdict([row("a"), row("b")]).reason == "2 proxies, all SYNCED"
    result = proxies_verdict(
        [row("a"), row("b", "NACKED", "cannot listen on 127.0.0.1:7070"), row("c", "STALE", acked="4")]
    )
    assert result.status is Status.FAIL
    assert result.reason == "2 of 3 proxies not SYNCED"
    assert result.details == (
        "default/b NACKED (version 5, last seen 0.4s ago): cannot listen on 127.0.0.1:7070",
        "default/c STALE (version 5, acknowledged 4, last seen 0.4s ago)",
    )
    assert "NACKED" in result.hint and "STALE" in result.hint


class FakePlane(Probe):
    """Answers ``/v1/proxy-status`` from a list of answers, one per fetch; time moves on each sleep."""

    def __init__(self, answers: list[list[dict[str, Any]]]) -> None:
        self.now = NOW
        super().__init__(
            ControlPlaneAccess.of("https://127.0.0.1:1"), clock=lambda: self.now, sleep=self._sleep
        )
        self.answers = answers
        self.fetches = 0

    def _sleep(self, seconds: float) -> None:
        self.now += seconds

    def get_json(self, path: str, *, fresh: bool = False) -> Any:
        self.fetches += 1
        return self.answers[min(self.fetches, len(self.answers)) - 1]


def test_a_stale_proxy_gets_a_moment_to_settle() -> None:
    settling = FakePlane([[row("a", "STALE")], [row("a", "STALE")], [row("a")]])
    assert proxies_synced(settling).status is Status.OK and settling.fetches == 3
    stuck = FakePlane([[row("a", "STALE")]])
    assert proxies_synced(stuck).status is Status.FAIL and stuck.now - NOW >= 3.0
    nacked = FakePlane([[row("a", "NACKED", "bad")]])
    assert proxies_synced(nacked).status is Status.FAIL and nacked.fetches == 1  # no waiting


# workload certificates ----------------------------------------------------------------------------

TTL = 24 * 3600.0


def cert(issued_at: float, ttl: float = TTL) -> dict[str, Any]:
    return {
        "serial": "1f",
        "not_before": issued_at - 60,
        "not_after": issued_at + ttl,
        "issued_at": issued_at,
    }


def test_a_certificate_is_overdue_past_65_percent_and_fails_once_expired() -> None:
    assert certificate_verdict(cert(NOW - 0.5 * TTL), NOW, NOW - TTL, TTL)[0] is Status.OK
    assert certificate_verdict(cert(NOW - 0.62 * TTL), NOW, NOW - TTL, TTL)[0] is Status.OK
    status, line = certificate_verdict(cert(NOW - 0.7 * TTL), NOW, NOW - TTL, TTL)
    assert status is Status.WARN and "70% through its lifetime" in line and "serial 1f" in line
    status, line = certificate_verdict(cert(NOW - TTL - 90), NOW, NOW - 2 * TTL, TTL)
    assert status is Status.FAIL and "expired 1m 30s ago" in line


def test_a_certificate_from_before_the_control_plane_started_is_judged_only_once_it_is_due() -> None:
    status, line = certificate_verdict(None, NOW, NOW - 0.2 * TTL, TTL)
    assert status is Status.OK and "before the control plane started" in line
    status, line = certificate_verdict(None, NOW, NOW - 0.7 * TTL, TTL)
    assert status is Status.WARN and "should have renewed" in line


def identities(*rows: dict[str, Any], since: float = NOW - TTL) -> dict[str, Any]:
    return {
        "trust_domain": "cluster.local",
        "cert_ttl": TTL,
        "since": since,
        "now": NOW,
        "identities": list(rows),
    }


def identity(sa: str, workloads: list[str], certificate: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "spiffe_id": f"spiffe://cluster.local/ns/default/sa/{sa}",
        "workloads": workloads,
        "certificate": certificate,
    }


def test_only_the_certificates_of_registered_workloads_count() -> None:
    body = identities(
        identity("catalog", ["default/catalog-v1", "default/catalog-v2"], cert(NOW - 100)),
        identity("gone", [], cert(NOW - 2 * TTL)),  # expired, but no registered workload uses it
    )
    result = certificates_verdict(body, 0.0)
    assert result.status is Status.OK
    assert result.reason == "2 workloads, 1 identity: every certificate valid and renewed on time"
    assert certificates_verdict(identities(), 0.0).reason == "no workload is registered"


def test_expired_and_overdue_certificates_are_listed_by_workload() -> None:
    body = identities(
        identity("catalog", ["default/catalog-v1"], cert(NOW - TTL - 10)),
        identity("reviews", ["default/reviews"], cert(NOW - 0.8 * TTL)),
        identity("web", ["default/web"], cert(NOW - 10)),
    )
    result = certificates_verdict(body, 0.0)
    assert result.status is Status.FAIL and result.reason == "3 workloads, 3 identities: 1 expired"
    assert result.details[0].startswith("default/catalog-v1 (spiffe://cluster.local/ns/default/sa/catalog): ")
    assert result.details[1].startswith("default/reviews (") and "80%" in result.details[1]
    assert "join token" in result.hint and "not renewing" in result.hint
    overdue = certificates_verdict(
        identities(identity("reviews", ["default/reviews"], cert(NOW - 0.8 * TTL))), 0.0
    )
    assert overdue.status is Status.WARN and overdue.reason.endswith("1 overdue for renewal")


# running and printing -----------------------------------------------------------------------------


def test_a_fatal_check_that_fails_stops_the_run_and_probe_errors_become_failures() -> None:
    def unreachable(probe: Probe) -> CheckResult:
        raise ProbeError("cannot reach the control plane at https://x", "is it running?")

    checks = [
        Check("a", "first", lambda probe: CheckResult.warn("hmm", "look")),
        Check("b", "reachable", unreachable, fatal=True),
        Check("b", "never run", lambda probe: CheckResult.ok()),
    ]
    outcomes = list(run_checks(probe_of(Path("/nonexistent")), checks))
    assert [o.check.title for o in outcomes] == ["first", "reachable"]
    assert outcomes[1].result == CheckResult.fail(
        "cannot reach the control plane at https://x", "is it running?"
    )

    lines = [render.outcome(o).plain for o in outcomes]
    assert lines[0] == "‼ first\n    hmm\n    hint: look"
    assert lines[1].startswith("✖ reachable\n    cannot reach")
    assert render.outcome(type(outcomes[0])(checks[2], CheckResult.ok("fine"))).plain == "✔ never run: fine"
    summary = render.summary(outcomes, stopped=True).plain
    assert summary.startswith("Status check results are ✖ (1 error, 1 warning)") and "not run" in summary
    assert '"ok": false' in render.as_json(outcomes, stopped=True)
