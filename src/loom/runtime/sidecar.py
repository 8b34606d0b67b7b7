"""A sidecar of a local mesh: its command line (``python -m loom.proxy``, the process image
``loom proxy`` runs) and its ready file."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SidecarArgs:
    control_plane: str
    ca_file: Path
    workload: str
    namespace: str
    service_account: str
    labels: Mapping[str, str]
    address: str
    outbound_port: int
    app_port: int
    inbound_port: int
    ready_file: Path
    transparent: bool = False
    readiness_path: str | None = None


def sidecar_argv(args: SidecarArgs) -> list[str]:
    argv = [sys.executable, "-m", "loom.proxy", "--control-plane", args.control_plane]
    argv += ["--ca-file", str(args.ca_file), "--workload", args.workload, "--namespace", args.namespace]
    argv += ["--service-account", args.service_account, "--address", args.address]
    argv += ["--outbound-port", str(args.outbound_port), "--ready-file", str(args.ready_file)]
    for key, value in sorted(args.labels.items()):
        argv += ["--label", f"{key}={value}"]
    if args.app_port:
        argv += ["--inbound", f"{args.app_port}:{args.inbound_port}"]
    if args.transparent:
        argv.append("--transparent")
    if args.readiness_path and args.app_port:
        argv += ["--readiness-path", args.readiness_path]
    return argv


def read_ready(path: Path) -> dict[str, Any] | None:
    """The sidecar's ready file (``{"pid", "admin_port", "listeners", ...}``), or None before then."""
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None
