"""Ratios against HAProxy, the goals, and the three renderings: terminal tables, JSON, Markdown."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.measure import Settings, Summary, TargetResult
from harness.tables import md_table, print_notes, rich_table

PERCENTILES = ("p50_us", "p90_us", "p99_us")
ALL_GOALS = frozenset({"throughput", "latency", "cpu", "rss"})
GOAL_SCOPES = (
    ("single proxy", "loom", "haproxy", ALL_GOALS),
    ("proxy pair", "loom-pair", "haproxy-pair", ALL_GOALS),
    ("proxy pair, mTLS", "loom-mtls-pair", "haproxy-tls-pair", frozenset({"latency", "cpu"})),
)
"""Each scope: Loom's target, HAProxy's, and which goals apply (with TLS on: the added latency
against HAProxy's TLS pair and the CPU per sidecar)."""
HANDSHAKE_PAIRS = (("loom-mtls-pair", "haproxy-tls-pair"),)
"""Loom's TLS pair and HAProxy's, whose new-connection rates are compared."""


@dataclass(frozen=True)
class Goal:
    scope: str
    """"single proxy", "proxy pair" or "proxy pair, mTLS"."""
    measure: str
    value: float | None
    goal: str
    met: bool | None
    """None: not measured (a target did not run, or the ratio is undefined)."""
    note: str = ""

    @property
    def verdict(self) -> str:
        return "not measured" if self.met is None else "met" if self.met else "MISSED"


@dataclass
class Report:
    timestamp: str
    machine: dict[str, Any]
    settings: Settings
    results: list[TargetResult]
    notes: list[str] = field(default_factory=list)

    def summary(self, name: str) -> Summary | None:
        for result in self.results:
            if result.name == name:
                return result.summary
        return None

    def added(self, name: str, percentile: str) -> float | None:
        """Latency a target adds over the direct connection at one percentile, in µs."""
        target, direct = self.summary(name), self.summary("direct")
        if target is None or direct is None:
            return None
        return float(getattr(target, percentile) - getattr(direct, percentile))

    def goals(self) -> list[Goal]:
        goals: list[Goal] = []
        for scope, loom, haproxy, which in GOAL_SCOPES:
            goals.extend(g for key, g in self._goals(scope, loom, haproxy) if key in which)
        return goals

    def handshake_ratio(self, loom_name: str, haproxy_name: str) -> float | None:
        """Loom's new TLS connections per second over HAProxy's."""
        loom, haproxy = self.summary(loom_name), self.summary(haproxy_name)
        if loom is None or haproxy is None or not loom.handshake_rate or not haproxy.handshake_rate:
            return None
        return loom.handshake_rate / haproxy.handshake_rate

    def _goals(self, scope: str, loom_name: str, haproxy_name: str) -> list[tuple[str, Goal]]:
        """Every goal of one scope, each with its kind (a key of ALL_GOALS)."""
        loom, haproxy = self.summary(loom_name), self.summary(haproxy_name)

        def goal(
            measure: str, value: float | None, text: str, ok: Callable[[float], bool], note: str = ""
        ) -> Goal:
            return Goal(scope, measure, value, text, None if value is None else ok(value), note)

        throughput = loom.rps / haproxy.rps if loom and haproxy and haproxy.rps > 0 else None
        goals = [("throughput", goal("throughput Loom / HAProxy", throughput, "≥ 0.25", lambda v: v >= 0.25))]
        for percentile in ("p50_us", "p99_us"):
            ours, theirs = self.added(loom_name, percentile), self.added(haproxy_name, percentile)
            ratio, note = None, ""
            if ours is not None and theirs is not None:
                if theirs > 0:
                    ratio = ours / theirs
                else:
                    note = f"HAProxy adds {theirs:.0f} µs: no ratio"
            name = f"added {percentile.removesuffix('_us')} Loom / HAProxy"
            goals.append(("latency", goal(name, ratio, "≤ 2", lambda v: v <= 2, note)))
        cpu = loom.cpu_per_1k_per_proxy if loom else None
        per = "per proxy, " if scope.startswith("proxy pair") else ""
        measure = f"Loom CPU cores per 1,000 rps ({per}CPU s / 1k req)"
        goals.append(("cpu", goal(measure, cpu, "≤ 0.15", lambda v: v <= 0.15)))
        rss = loom.rss_mb if loom else None
        goals.append(
            ("rss", goal("Loom RSS at 1,000 rps, MB (largest proxy)", rss, "≤ 30", lambda v: v <= 30))
        )
        return goals

    def to_json(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp,
            "machine": self.machine,
            "settings": asdict(self.settings),
            "notes": self.notes,
            "targets": {r.name: r.to_json() for r in self.results},
            "added_latency_us": {
                r.name: {p: _round(self.added(r.name, p), 1) for p in (*PERCENTILES, "p999_us", "max_us")}
                for r in self.results
                if r.name != "direct" and r.summary is not None
            },
            "goals": [{**asdict(g), "value": _round(g.value, 4), "verdict": g.verdict} for g in self.goals()],
            "new_tls_connections_loom_over_haproxy": {
                f"{loom} / {haproxy}": _round(self.handshake_ratio(loom, haproxy), 4)
                for loom, haproxy in HANDSHAKE_PAIRS
            },
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _num(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+,.0f}"


def _status(result: TargetResult) -> str:
    return "not run" if result.error in (None, "not run") else "failed"


def latency_rows(report: Report) -> list[list[str]]:
    rows = []
    for r in report.results:
        s = r.summary
        if s is None:
            rows.append([r.label, *["—"] * 8, _status(r)])
            continue
        added = [_signed(report.added(r.name, p)) if r.name != "direct" else "" for p in PERCENTILES]
        percentiles = [_num(s.p50_us), _num(s.p90_us), _num(s.p99_us), _num(s.p999_us), _num(s.max_us)]
        rows.append([r.label, *percentiles, *added, str(s.latency_errors)])
    return rows


def throughput_rows(report: Report) -> list[list[str]]:
    rows = []
    for r in report.results:
        s = r.summary
        if s is None:
            rows.append([r.label, *["—"] * 8, _status(r)])
            continue
        util = None if s.proxy_core_util is None else s.proxy_core_util * 100
        rows.append(
            [
                r.label,
                _num(s.rps),
                _num(util),
                _num(s.core_busy * 100),
                _num(s.load_core_busy * 100),
                _num(s.cpu_per_1k, 3),
                _num(s.cpu_per_1k_per_proxy, 3),
                _num(s.rss_mb, 1),
                _num(s.rss_peak_mb, 1),
                str(s.throughput_errors),
            ]
        )
    return rows


def handshake_rows(report: Report) -> list[list[str]]:
    """The targets with new-connection runs (or that should have had them), then Loom / HAProxy."""
    names = {name for pair in HANDSHAKE_PAIRS for name in pair}
    rows = []
    for r in report.results:
        if r.name not in names:
            continue
        s = r.summary
        if s is None or s.handshake_rate is None:
            rows.append([r.label, "—", "—", "—"])
            continue
        busy = None if s.handshake_core_busy is None else s.handshake_core_busy * 100
        rows.append([r.label, _num(s.handshake_rate), _num(s.handshake_cpu_ms, 3), _num(busy)])
    for loom, haproxy in HANDSHAKE_PAIRS:
        ours, theirs = report.summary(loom), report.summary(haproxy)
        if ours is None and theirs is None:
            continue
        cpu = None
        if ours and theirs and ours.handshake_cpu_ms and theirs.handshake_cpu_ms:
            cpu = ours.handshake_cpu_ms / theirs.handshake_cpu_ms
        rows.append(["Loom / HAProxy", _num(report.handshake_ratio(loom, haproxy), 2), _num(cpu, 2), ""])
    return rows


def goal_rows(report: Report) -> list[list[str]]:
    return [
        [g.scope, g.measure, _num(g.value, 2), g.goal, g.verdict + (f" ({g.note})" if g.note else "")]
        for g in report.goals()
    ]


LATENCY_HEAD = ["target", "p50", "p90", "p99", "p99.9", "max", "+p50", "+p90", "+p99", "errors"]
THROUGHPUT_HEAD = [
    "target",
    "req/s",
    "proxy %CPU",
    "core busy %",
    "load core %",
    "CPU s / 1k req",
    "per proxy",
    "RSS MB @1k rps",
    "RSS MB peak",
    "errors",
]
HANDSHAKE_HEAD = ["target", "connections/s", "proxy CPU ms / connection", "core busy %"]
GOAL_HEAD = ["scope", "measure", "value", "goal", "verdict"]


def _handshake_title(report: Report) -> str:
    s = report.settings
    return (
        f"New mutual-TLS connections into the pair's inbound proxy: openssl s_time -new, one client on "
        f"CPU {s.load_cpu}, a full TLS 1.3 handshake per connection and no request, "
        f"{s.handshake_duration:.0f} s; median of {s.repeat}"
    )


def _titles(report: Report) -> tuple[str, str]:
    s = report.settings
    latency = (
        f"Latency at {s.rate:,.0f} rps, open loop, {s.open_connections} connections, "
        f"µs from the scheduled send (+pNN: added over direct); median of {s.repeat}"
    )
    throughput = (
        f"Throughput: wrk, 1 thread, {s.wrk_connections} connections, {s.duration:.0f} s; proxies on CPU "
        f"{s.proxy_cpu}, load and upstream on CPU {s.load_cpu}; CPU and RSS from the fixed-rate run; "
        f"median of {s.repeat}"
    )
    return latency, throughput


def print_report(report: Report, console: Console | None = None) -> None:
    console = console or Console()
    latency_title, throughput_title = _titles(report)
    for title, head, rows in (
        (latency_title, LATENCY_HEAD, latency_rows(report)),
        (throughput_title, THROUGHPUT_HEAD, throughput_rows(report)),
        (_handshake_title(report), HANDSHAKE_HEAD, handshake_rows(report)),
        ("Goals (Loom against HAProxy)", GOAL_HEAD, goal_rows(report)),
    ):
        if not rows:
            continue
        console.print(rich_table(title, head, rows, lambda i, _, h=head: i == 0 or h is GOAL_HEAD))
    print_notes(console, report.notes)


def _plain(value: object) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k} {v:.0%}" if isinstance(v, float) else f"{k} {v}" for k, v in value.items())
    return str(value)


def _when(timestamp: str) -> str:
    """20260102-030405 → 2026-01-02 03:04."""
    date, time = timestamp.split("-")
    return f"{date[:4]}-{date[4:6]}-{date[6:]} {time[:2]}:{time[2:4]}"


def markdown(report: Report) -> str:
    """The body of bench/RESULTS.md for this run."""
    latency_title, throughput_title = _titles(report)
    machine = ", ".join(f"{k}: {_plain(v)}" for k, v in report.machine.items())
    parts = [
        "# Benchmark results",
        "",
        f"Produced on {_when(report.timestamp)} by `python bench/proxy_bench.py --update-results` "
        f"(--repeat {report.settings.repeat} --duration {report.settings.duration:g}); "
        "README.md says what each figure means. Lower is better except for req/s.",
        "",
        f"Machine: {machine}.",
        "",
        "## Latency",
        "",
        latency_title + ".",
        "",
        md_table(LATENCY_HEAD, latency_rows(report)),
        "",
        "## Throughput, CPU and memory",
        "",
        throughput_title + ".",
        "",
        md_table(THROUGHPUT_HEAD, throughput_rows(report)),
        "",
    ]
    handshakes = handshake_rows(report)
    if handshakes:
        parts += [
            "## New TLS connections",
            "",
            _handshake_title(report) + ".",
            "",
            md_table(HANDSHAKE_HEAD, handshakes),
            "",
        ]
    parts += [
        "## Goals",
        "",
        md_table(GOAL_HEAD, goal_rows(report)),
        "",
    ]
    if report.notes:
        parts += ["## Notes", "", *[f"- {note}" for note in report.notes], ""]
    return "\n".join(parts)


def write(report: Report, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"results-{report.timestamp}.json"
    json_path.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
    md_path = out_dir / f"results-{report.timestamp}.md"
    md_path.write_text(markdown(report))
    return json_path, md_path
