"""The control plane under test: ``loom controlplane`` as a real process, read through /proc.

CPU time comes from ``/proc/PID/stat`` (user + system), memory from ``/proc/PID/status``
(``VmRSS`` now, ``VmHWM`` the peak since start, kept by the kernel), and the time each
recompile took from the control plane's own log line ("pushed new snapshots to N of M proxies
in S s", at INFO).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from harness.processes import BenchError, Service, service

MB = 1024 * 1024
TICKS = os.sysconf("SC_CLK_TCK")
PUSH_LINE = re.compile(
    r"^(?P<when>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*pushed new snapshots to (?P<changed>\d+) "
    r"of (?P<total>\d+) proxies(?: in (?P<seconds>[\d.]+) ?s)?"
)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (its threads included), from /proc/PID/stat."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime: fields 14 and 15 of stat


def memory_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) in MB, from /proc/PID/status."""
    rss = peak = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("VmHWM:"):
            peak = int(line.split()[1])
    return rss / 1024, peak / 1024


TCP_COUNTERS = ("ListenOverflows", "TCPSynRetrans")
"""Connections the kernel refused because a listener's accept queue was full, and the SYNs that
clients sent again because of it (each one a second or more lost): machine-wide counters."""


def tcp_counters() -> dict[str, int]:
    """The ``TCP_COUNTERS`` from /proc/net/netstat (0 where the kernel does not have them)."""
    found = dict.fromkeys(TCP_COUNTERS, 0)
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return found
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            for name, value in zip(names.split()[1:], values.split()[1:], strict=False):
                if name in found:
                    found[name] = int(value)
    return found


@dataclass(frozen=True)
class Push:
    """One recompile that changed some proxies, as the control plane logged it."""

    when: float
    """Wall-clock time of the log line (millisecond resolution): the recompile had just ended."""
    changed: int
    total: int
    compile_seconds: float | None
    """How long the recompile took (compile, compare and encode every proxy's snapshot)."""


def pushes(log: Path, since: float) -> list[Push]:
    """The recompiles logged after wall-clock time ``since``."""
    found = []
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return []
    for line in text.splitlines():
        match = PUSH_LINE.match(line)
        if match is None:
            continue
        when = datetime.strptime(match["when"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if when + 0.001 < since:
            continue
        seconds = float(match["seconds"]) if match["seconds"] else None
        found.append(Push(when, int(match["changed"]), int(match["total"]), seconds))
    return found


def state_dir(workdir: Path) -> Path:
    """The control plane's ``--state-dir`` (its CA, operator token and trust bundle)."""
    return workdir / "controlplane-state"


@contextlib.contextmanager
def control_plane(
    command: list[str], config_dir: Path, workdir: Path, cpu: int | None, timeout: float = 60.0
) -> Iterator[tuple[Service, int]]:
    """Run ``loom controlplane`` on the folder (pinned to ``cpu``), its state in
    ``state_dir(workdir)``; yield it and its (HTTPS) port."""
    ready = workdir / "controlplane.ready.json"
    argv = [
        *command,
        "controlplane",
        "--config-dir",
        str(config_dir),
        "--state-dir",
        str(state_dir(workdir)),
        "--port",
        "0",
        "--ready-file",
        str(ready),
        "--log-level",
        "info",
    ]
    with service("controlplane", argv, workdir, cpu) as svc:
        deadline = time.monotonic() + timeout
        while not ready.exists():
            svc.check_alive()
            if time.monotonic() > deadline:
                raise BenchError(f"the control plane was not ready after {timeout:.0f} s:\n{svc.log_tail()}")
            time.sleep(0.05)
        yield svc, int(json.loads(ready.read_text())["port"])


def raise_open_files() -> int:
    """Lift this process's open-file limit to the hard limit (a thousand watches need it); the
    control plane, started afterwards, inherits it. Returns the limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard
