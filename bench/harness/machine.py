"""What the benchmark needs installed, and a description of the machine it ran on."""

from __future__ import annotations

import os
import platform
import shutil
import ssl
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from harness import haproxy, nginx
from harness.processes import core_ticks

# command → Debian package that provides it
TOOLS = {
    "haproxy": "haproxy",
    "nginx": "nginx-light",
    "wrk": "wrk",
    "gcc": "gcc",
    "openssl": "openssl",
    "taskset": "util-linux",
}


def missing_tools() -> dict[str, str]:
    """The commands that are not on PATH (nginx and haproxy live in /usr/sbin), with their packages."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    return {tool: pkg for tool, pkg in TOOLS.items() if shutil.which(tool, path=path) is None}


def install_hint(missing: dict[str, str]) -> str:
    packages = " ".join(sorted(set(missing.values())))
    return (
        f"missing: {', '.join(missing)}\n"
        f"install them with:  apt-get update && apt-get install -y {packages}\n"
        "(or run `make bench`, which installs what the benchmark needs)"
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git(repo: Path, *args: str) -> str:
    # --no-optional-locks: read only, never touches the index of a tree others are working in.
    argv = ["git", "--no-optional-locks", "-C", str(repo), *args]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _loom_revision(repo: Path) -> str:
    """The commit the source tree is at, with "+changes" when src/ differs from it."""
    commit = _git(repo, "rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+changes" if _git(repo, "status", "--porcelain", "--", "src") else "")


def _openssl() -> str:
    """The openssl command's version (the handshake client)."""
    try:
        done = subprocess.run(["openssl", "version"], capture_output=True, text=True, check=False)
    except OSError:
        return "not installed"
    return done.stdout.strip() or "unknown"


def describe(repo: Path) -> dict[str, Any]:
    try:
        loom_version = metadata.version("loom-mesh")
    except metadata.PackageNotFoundError:
        loom_version = "not installed"
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "haproxy": haproxy.version(),
        "nginx": nginx.version(),
        "loom": f"{loom_version} ({_loom_revision(repo)}; Python's ssl: {ssl.OPENSSL_VERSION})",
        "openssl": _openssl(),
    }


def idle_check(cpus: list[int], seconds: float = 1.0) -> dict[int, float]:
    """How busy each core is before the benchmark starts anything (0.0 = idle, 1.0 = saturated)."""
    before = {cpu: core_ticks(cpu) for cpu in cpus}
    time.sleep(seconds)
    busy = {}
    for cpu in cpus:
        (busy0, total0), (busy1, total1) = before[cpu], core_ticks(cpu)
        busy[cpu] = (busy1 - busy0) / max(1, total1 - total0)
    return busy
