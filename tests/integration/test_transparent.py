"""Transparent interception: iptables REDIRECT sends an app's connection to the sidecar, which
routes by the original destination (SO_ORIGINAL_DST) — in a network namespace of our own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.support.snapshots import cluster, route_to

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("iptables") or not shutil.which("ip"),
    reason="needs root, iproute2 and iptables to make a network namespace with a REDIRECT rule",
)

VIP = "127.10.0.1"  # the service's virtual IP, inside the namespace only


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=30)


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"loom-test-{uuid.uuid4().hex[:8]}"
    _run("ip", "netns", "add", name)
    try:
        _run("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, timeout=30)


def _wait_for_file(path: Path, process: subprocess.Popen[bytes]) -> None:
    deadline_checks = 2000
    for _ in range(deadline_checks):
        if path.exists():
            return
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited with {process.returncode}")
        try:
            process.wait(timeout=0.01)
        except subprocess.TimeoutExpired:
            pass
    raise AssertionError(f"{path} never appeared")


def test_redirected_connection_is_routed_by_its_original_destination(netns: str, tmp_path: Path) -> None:
    in_ns = ["ip", "netns", "exec", netns]
    port_file = tmp_path / "backend.port"
    backend = subprocess.Popen(
        [*in_ns, sys.executable, "-m", "tests.support.backend_main", "catalog", str(port_file)]
    )
    proxy = None
    try:
        _wait_for_file(port_file, backend)
        backend_port = int(port_file.read_text())
        doc = {
            "version": "1",
            "node": {"workload": "app", "namespace": "default"},
            "admin": {"port": 0},
            "listeners": [
                {
                    "name": "outbound",
                    "direction": "outbound",
                    "port": 0,
                    "route_config": "routes",
                    "original_dst": True,
                }
            ],
            "route_configs": [
                {
                    "name": "routes",
                    "virtual_hosts": [
                        {
                            "name": "catalog",
                            "domains": ["catalog.default.svc.cluster.local", VIP],
                            "port": 80,
                            "routes": [route_to(("catalog", 1))],
                        }
                    ],
                }
            ],
            "clusters": [cluster("catalog", [backend_port])],
        }
        config = tmp_path / "proxy.yaml"
        config.write_text(yaml.safe_dump(doc))
        ready = tmp_path / "ready.json"
        loom = [
            sys.executable,
            "-m",
            "loom.cli.main",
            "proxy",
            "--config",
            str(config),
            "--ready-file",
            str(ready),
        ]
        proxy = subprocess.Popen([*in_ns, *loom])
        _wait_for_file(ready, proxy)
        proxy_port = json.loads(ready.read_text())["listeners"]["outbound"]
        _run(
            *in_ns, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", VIP, "--dport", "80",
            "-j", "REDIRECT", "--to-ports", str(proxy_port),
        )  # fmt: skip

        # The app dials the VIP; its Host names nothing the proxy knows: only the original
        # destination can route it.
        answer = _run(*in_ns, "curl", "-s", "-H", "Host: not-a-service", f"http://{VIP}/anything")
        assert answer.stdout == "catalog"
        # And a connection that was not redirected has no original destination to go by.
        direct = _run(
            *in_ns, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: not-a-service",
            f"http://127.0.0.1:{proxy_port}/",
        )  # fmt: skip
        assert direct.stdout == "404"
    finally:
        for process in (proxy, backend):
            if process is not None:
                process.terminate()
                process.wait(timeout=20)
