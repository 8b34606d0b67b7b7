"""Loom's proxy, run from a snapshot file with ``loom proxy --config``.

With the bench's certificates, an inbound proxy takes only mutual TLS (``mtls: STRICT``) and an
outbound one speaks mutual TLS to its endpoint, expecting the inbound side's SPIFFE ID.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from harness.certs import Certs, listener_url
from harness.processes import Service, free_port, service, wait_http

RETRY = {"attempts": 2, "retry_on": ["connect-failure", "refused-stream", "503"]}


def snapshot(
    workload: str,
    direction: str,
    listen_port: int,
    admin_port: int,
    upstream_port: int,
    certs: Certs | None = None,
) -> dict[str, Any]:
    """One listener (outbound or inbound) routing every request to one endpoint on 127.0.0.1;
    with ``certs``, mutual TLS on the mesh side (the inbound listener, the outbound endpoint)."""
    doc: dict[str, Any] = {
        "version": "bench",
        "node": {"workload": workload, "namespace": "default"},
        "admin": {"port": admin_port},
        "listeners": [
            {"name": direction, "direction": direction, "port": listen_port, "route_config": direction}
        ],
        "route_configs": [
            {
                "name": direction,
                "virtual_hosts": [
                    {
                        "name": "upstream",
                        "domains": ["*"],
                        "routes": [
                            {
                                "name": "default",
                                "route": {"destinations": [{"cluster": "upstream"}], "retry": RETRY},
                            }
                        ],
                    }
                ],
            }
        ],
        "clusters": [
            {
                "name": "upstream",
                "service": "upstream.default.svc.cluster.local",
                "endpoints": [{"address": "127.0.0.1", "port": upstream_port}],
            }
        ],
    }
    if certs is not None:
        inbound = direction == "inbound"
        side = certs.server if inbound else certs.client
        doc["node"]["service_account"] = side.service_account
        doc["identity"] = certs.identity(side)
        if inbound:
            doc["listeners"][0]["mtls"] = "STRICT"
        else:
            cluster = doc["clusters"][0]
            cluster["tls"] = {"server_identities": [certs.server.spiffe_id]}
            cluster["endpoints"][0]["mtls"] = True
    return doc


def command() -> list[str]:
    """``loom`` from the interpreter's environment, else ``python -m loom.cli.main``."""
    beside = Path(sys.executable).parent / "loom"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("loom")
    return [found] if found else [sys.executable, "-m", "loom.cli.main"]


def unavailable_reason(base: list[str]) -> str | None:
    """None when ``loom proxy`` can be run; otherwise why not."""
    try:
        done = subprocess.run(
            [*base, "proxy", "--help"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{' '.join(base)} proxy --help: {exc}"
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        return f"`{' '.join(base)} proxy --help` failed: {detail[-1] if detail else done.returncode}"
    return None


@contextlib.contextmanager
def proxy(
    name: str,
    workdir: Path,
    base: list[str],
    upstream_port: int,
    cpu: int | None,
    direction: str = "outbound",
    certs: Certs | None = None,
) -> Iterator[tuple[Service, int]]:
    """Start one Loom proxy whose ``direction`` listener forwards to ``upstream_port``."""
    port, admin_port = free_port(), free_port()
    config = workdir / f"{name}.yaml"
    doc = snapshot(f"bench-{name}", direction, port, admin_port, upstream_port, certs)
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    with service(name, [*base, "proxy", "--config", str(config)], workdir, cpu) as svc:
        wait_http(svc, f"http://127.0.0.1:{admin_port}/ready", timeout=30.0)
        url, context = listener_url(port, certs if direction == "inbound" else None)
        wait_http(svc, url, context=context)
        yield svc, port
