"""The control-plane benchmark's figures, its goals, and their renderings: terminal tables, JSON,
Markdown (``bench/out/``) and the "Control plane" section of bench/RESULTS.md."""

from __future__ import annotations

import json
import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.tables import md_table, print_notes, rich_table

ACK_P99_GOAL_MS = 1000.0
RSS_GOAL_MB = 300.0
SECTION = "## Control plane"


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (the value below which ``pct`` % of the samples fall)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


@dataclass
class RoundResult:
    index: int
    change: str
    proxies: int
    acked: int
    """Watchers that acknowledged the new version before the round's timeout."""
    ack_ms: dict[str, float | None]
    """Apply returned → the control plane answered the proxy's ACK: min, p50, p90, p99, max."""
    received_ms: dict[str, float | None]
    """Apply returned → the proxy had the whole snapshot."""
    recompiled_ms: float | None
    """Apply returned → the recompile that moved the proxies' versions had ended (from the log;
    includes the folder poll, re-reading the folder and the debounce)."""
    recompile_s: float | None
    """How long that recompile took (from the control plane's log)."""
    recompiles: int
    """Recompiles logged during the round (1 when one edit makes one push)."""
    delivered_ms: float | None
    """End of that recompile → the last ACK."""
    cpu_s: float
    """Control plane CPU seconds (user + system) from the write to the last ACK."""
    client_cpu_s: float
    """The watchers' process, the same."""
    rss_max_mb: float
    snapshot_mb: float
    """Mean size of the new snapshots as sent."""
    sent_mb: float
    """All the new snapshots together."""
    errors: int
    listen_overflows: int
    """Connections dropped because the control plane's accept queue was full (machine-wide)."""
    syn_retransmits: int
    seconds: float
    """The write → the last ACK (or the timeout)."""


@dataclass
class ScaleReport:
    timestamp: str
    machine: dict[str, Any]
    settings: dict[str, Any]
    setup: dict[str, Any] = field(default_factory=dict)
    breakdown: dict[str, Any] = field(default_factory=dict)
    rounds: list[RoundResult] = field(default_factory=list)
    rss_peak_mb: float | None = None
    """VmHWM of the control plane at the end of the run: its peak RSS since it started."""
    profile: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def worst(self, key: str) -> float | None:
        values = [r.ack_ms.get(key) for r in self.rounds]
        if not values or any(v is None for v in values):
            return None
        return max(v for v in values if v is not None)

    def goals(self) -> list[dict[str, Any]]:
        complete = bool(self.rounds) and all(r.acked == r.proxies for r in self.rounds)
        p99 = self.worst("p99") if complete else None
        return [
            {
                "measure": "every proxy ACKed the change: p99 after the apply returned, ms (worst round)",
                "value": p99,
                "goal": f"≤ {ACK_P99_GOAL_MS:,.0f}",
                "met": p99 is not None and p99 <= ACK_P99_GOAL_MS,
            },
            {
                "measure": "control plane peak RSS, MB (VmHWM, whole run)",
                "value": self.rss_peak_mb,
                "goal": f"< {RSS_GOAL_MB:,.0f}",
                "met": self.rss_peak_mb is not None and self.rss_peak_mb < RSS_GOAL_MB,
            },
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp,
            "machine": self.machine,
            "settings": self.settings,
            "setup": self.setup,
            "compiler_in_process": self.breakdown,
            "rounds": [asdict(r) for r in self.rounds],
            "rss_peak_mb": self.rss_peak_mb,
            "goals": [{**g, "verdict": "met" if g["met"] else "MISSED"} for g in self.goals()],
            "profile": self.profile,
            "notes": self.notes,
        }


def _num(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


ROUND_HEAD = [
    "round",
    "ACKed",
    "p50 ms",
    "p99 ms",
    "max ms",
    "received p99 ms",
    "write → recompiled ms",
    "recompile s",
    "recompiled → last ACK ms",
    "CP CPU s",
    "watchers CPU s",
    "CP RSS MB",
    "snapshot MB",
    "accept queue drops",
    "errors",
]


def round_rows(report: ScaleReport) -> list[list[str]]:
    rows = []
    for r in report.rounds:
        rows.append(
            [
                f"{r.index}: {r.change}",
                f"{r.acked:,}/{r.proxies:,}",
                _num(r.ack_ms["p50"]),
                _num(r.ack_ms["p99"]),
                _num(r.ack_ms["max"]),
                _num(r.received_ms["p99"]),
                _num(r.recompiled_ms),
                _num(r.recompile_s, 2) + (f" ({r.recompiles})" if r.recompiles > 1 else ""),
                _num(r.delivered_ms),
                _num(r.cpu_s, 2),
                _num(r.client_cpu_s, 2),
                _num(r.rss_max_mb),
                _num(r.snapshot_mb, 2),
                f"{r.listen_overflows:,}",
                str(r.errors),
            ]
        )
    if len(report.rounds) > 1:
        med = {
            k: statistics.median([r.ack_ms[k] or 0.0 for r in report.rounds]) for k in ("p50", "p99", "max")
        }
        rows.append(["median", "", _num(med["p50"]), _num(med["p99"]), _num(med["max"]), *[""] * 10])
    return rows


SETUP_HEAD = ["step", "value"]


def setup_rows(report: ScaleReport) -> list[list[str]]:
    s, b = report.setup, report.breakdown
    rows = [
        [
            f"workload certificates, one per service account ({s.get('certificates', 0):,}) (s)",
            _num(s.get("certificates_s"), 1),
        ],
        ["register every workload (s)", _num(s.get("register_s"), 1)],
        ["watchers started → every one ACKed a first snapshot (s)", _num(s.get("first_sync_s"), 1)],
        ["watchers started → all SYNCED, no recompile in flight (s)", _num(s.get("settled_s"), 1)],
        ["recompiles while registering and syncing", _num(s.get("recompiles"))],
        ["longest recompile while registering and syncing (s)", _num(s.get("longest_recompile_s"), 2)],
        ["control plane RSS once synced (MB)", _num(s.get("rss_synced_mb"))],
        ["TLS handshakes by the watchers and registrations, whole run", _num(s.get("handshakes"))],
    ]
    if b:
        rows += [
            ["in process: read the folder (load_paths) (s)", _num(b.get("load_s"), 3)],
            ["in process: MeshInputs.build (s)", _num(b.get("build_s"), 3)],
            [
                f"in process: compile_snapshot × {b.get('sidecars', 0):,} (s)",
                _num(b.get("compile_s"), 3),
            ],
        ]
    rows.append(["control plane peak RSS, whole run (MB)", _num(report.rss_peak_mb)])
    return rows


GOAL_HEAD = ["measure", "value", "goal", "verdict"]
PROFILE_TITLE = "Control plane profile: py-spy, every round from the edit to the last ACK, % of the samples"
PROFILE_HEAD = ["function", "self %", "total %"]


def profile_rows(report: ScaleReport) -> list[list[str]]:
    return [
        [row["function"], f"{row['self_pct']:.1f}", f"{row['total_pct']:.1f}"]
        for row in report.profile.get("top", [])
    ]


def goal_rows(report: ScaleReport) -> list[list[str]]:
    return [
        [g["measure"], _num(g["value"]), g["goal"], "met" if g["met"] else "MISSED"] for g in report.goals()
    ]


def _title(report: ScaleReport) -> str:
    st = report.settings
    idle = (
        "registered with a sidecar whose snapshot is compiled but never fetched"
        if st["idle_sidecars"]
        else "registered without a sidecar"
    )
    return (
        f"{st['proxies']:,} watching proxies, {st['services']:,} services ({st['namespaces']} namespaces), "
        f"{st['endpoints']:,} registered workloads (the other {st['endpoints'] - st['proxies']:,} {idle}); "
        f"control plane on CPU {st['cp_cpu']}, watchers on CPU {st['load_cpu']}"
    )


def print_report(report: ScaleReport, console: Console) -> None:
    console.print(f"[bold]{_title(report)}[/bold]")
    for title, head, rows in (
        ("Set-up", SETUP_HEAD, setup_rows(report)),
        ("Push: apply returned → every proxy ACKed the new version", ROUND_HEAD, round_rows(report)),
        ("Goals", GOAL_HEAD, goal_rows(report)),
    ):
        console.print(rich_table(title, head, rows, lambda i, _, h=head: i == 0 or h is not ROUND_HEAD))
    if report.profile.get("top"):
        console.print(
            rich_table(PROFILE_TITLE, PROFILE_HEAD, profile_rows(report), lambda _, name: name == "function")
        )
    print_notes(console, report.notes)


def _when(timestamp: str) -> str:
    date, time = timestamp.split("-")
    return f"{date[:4]}-{date[4:6]}-{date[6:]} {time[:2]}:{time[2:4]}"


def markdown_section(report: ScaleReport, command: str) -> str:
    machine = ", ".join(f"{k}: {v}" for k, v in report.machine.items())
    parts = [
        SECTION,
        "",
        f'Produced on {_when(report.timestamp)} by `{command}`; README.md ("Control plane") says '
        "what each figure means. Times in ms from the moment the edited file was in place.",
        "",
        f"Machine: {machine}.",
        "",
        _title(report) + ".",
        "",
        "### Push",
        "",
        md_table(ROUND_HEAD, round_rows(report)),
        "",
        "### Set-up",
        "",
        md_table(SETUP_HEAD, setup_rows(report)),
        "",
        "### Goals",
        "",
        md_table(GOAL_HEAD, goal_rows(report)),
        "",
    ]
    if report.profile.get("top"):
        parts += [
            "### Profile",
            "",
            PROFILE_TITLE + ".",
            "",
            md_table(PROFILE_HEAD, profile_rows(report)),
            "",
        ]
    if report.notes:
        parts += ["### Notes", "", *[f"- {note}" for note in report.notes], ""]
    return "\n".join(parts)


def write(report: ScaleReport, out_dir: Path, command: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / f"controlplane-{report.timestamp}.json"
    json_path.write_text(json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
    md_path = out_dir / f"controlplane-{report.timestamp}.md"
    md_path.write_text(markdown_section(report, command))
    return json_path, md_path


_SECTION_PATTERN = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## (?!#)|\Z)", re.S | re.M)


def current_section(results: Path) -> str | None:
    """The "Control plane" section of RESULTS.md as it stands, if there is one."""
    if not results.exists():
        return None
    found = _SECTION_PATTERN.search(results.read_text())
    return found.group(0) if found else None


def update_results(results: Path, section: str) -> None:
    """Replace (or append) the "Control plane" section of RESULTS.md; the rest stays as it is."""
    text = results.read_text() if results.exists() else "# Benchmark results\n"
    if _SECTION_PATTERN.search(text):
        text = _SECTION_PATTERN.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    results.write_text(text.rstrip("\n") + "\n")
