"""Every registered proxy is SYNCED: it acknowledged the latest snapshot the control plane has for it.

A proxy is STALE while a push is on its way; one that stays STALE past ``SETTLE_SECONDS`` is not
taking snapshots (stuck, or cut off from the control plane). A NACKED proxy refused its snapshot and
serves an older one: the error says why.
"""

from __future__ import annotations

from typing import Any

from loom.cli.check.probe import Probe
from loom.cli.check.result import CheckResult

SETTLE_SECONDS = 3.0
POLL_SECONDS = 0.25


def proxies_synced(probe: Probe) -> CheckResult:
    rows: list[dict[str, Any]] = probe.get_json("/v1/proxy-status")
    deadline = probe.clock() + SETTLE_SECONDS
    while any(row["status"] == "STALE" for row in rows) and probe.clock() < deadline:
        probe.sleep(POLL_SECONDS)  # a push in flight settles within the debounce and one apply
        rows = probe.get_json("/v1/proxy-status", fresh=True)
    return proxies_verdict(rows)


def proxies_verdict(rows: list[dict[str, Any]]) -> CheckResult:
    if not rows:
        return CheckResult.ok("no proxy is registered")
    behind = [row for row in rows if row["status"] != "SYNCED"]
    if not behind:
        return CheckResult.ok(f"{_proxies(len(rows))}, all SYNCED")
    nacked = sum(row["status"] == "NACKED" for row in behind)
    hints = []
    if nacked:
        hints.append("a NACKED proxy refused its snapshot and serves an older one: fix what its error says")
    if nacked < len(behind):
        hints.append("a STALE proxy has not acknowledged the latest snapshot: look at its log")
    return CheckResult.fail(
        f"{len(behind)} of {_proxies(len(rows))} not SYNCED",
        "; ".join(hints) + " (loom proxy-status)",
        [_line(row) for row in behind],
    )


def _line(row: dict[str, Any]) -> str:
    line = f"{row['namespace']}/{row['workload']} {row['status']} (version {row['version']}"
    if row.get("acked") and row["acked"] != row["version"]:
        line += f", acknowledged {row['acked']}"
    seen = row.get("last_seen_seconds_ago")
    if seen is not None:
        line += f", last seen {seen}s ago"
    line += ")"
    if row.get("error"):
        line += f": {row['error']}"
    return line


def _proxies(count: int) -> str:
    return f"{count} prox{'ies' if count != 1 else 'y'}"
