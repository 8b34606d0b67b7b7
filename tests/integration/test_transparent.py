"""Transparent interception: iptables REDIRECT sends an app's connection to the sidecar, which
routes by the original destination (SO_ORIGINAL_DST) — in a network namespace of our own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.prom import samples, total
from tests.support.snapshots import cluster, route_to
from tests.support.tcp_echo import FAREWELL

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("iptables") or not shutil.which("ip"),
    reason="needs root, iproute2 and iptables to make a network namespace with a REDIRECT rule",
)

VIP = "127.10.0.1"  # the service's virtual IP, inside the namespace only
OUTSIDE = "127.20.0.1"  # an address no service of the mesh has: reached by passthrough
PROXY_GID = 1337  # the sidecar's group, which the capture rules leave alone


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


def _outbound_doc(backend_port: int, address: str = "127.0.0.1") -> dict[str, Any]:
    return {
        "version": "1",
        "node": {"workload": "app", "namespace": "default"},
        "admin": {"port": 0},
        "listeners": [
            {
                "name": "outbound",
                "direction": "outbound",
                "address": address,
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


def _wait(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_capture_routes_mesh_traffic_and_passes_the_rest_through(netns: str, tmp_path: Path) -> None:
    in_ns = ["ip", "netns", "exec", netns]
    backend_file, echo_file, ready = (
        tmp_path / "backend.port",
        tmp_path / "echo.port",
        tmp_path / "ready.json",
    )
    backend = subprocess.Popen(
        [*in_ns, sys.executable, "-m", "tests.support.backend_main", "catalog", str(backend_file)]
    )
    echo = subprocess.Popen(
        [*in_ns, sys.executable, "-m", "tests.support.netns_tcp", "serve", OUTSIDE, str(echo_file)]
    )
    proxy = None
    try:
        _wait_for_file(backend_file, backend)
        _wait_for_file(echo_file, echo)
        echo_port = int(echo_file.read_text())
        config = tmp_path / "proxy.yaml"
        # On every address, so that a captured connection to another local address at the
        # listener's port reaches it (the loop the guard must stop).
        config.write_text(yaml.safe_dump(_outbound_doc(int(backend_file.read_text()), address="0.0.0.0")))
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
        proxy = subprocess.Popen([*in_ns, *loom], group=PROXY_GID, extra_groups=[])
        _wait_for_file(ready, proxy)
        ports = json.loads(ready.read_text())
        proxy_port, admin_port = ports["listeners"]["outbound"], ports["admin_port"]
        # Every outbound TCP connection is captured, but the proxy's own and those to 127.0.0.1
        # (the proxy's admin endpoint and the catalog backend).
        for rule in (
            ["-m", "owner", "--gid-owner", str(PROXY_GID), "-j", "RETURN"],
            ["-d", "127.0.0.1/32", "-j", "RETURN"],
            ["-j", "REDIRECT", "--to-ports", str(proxy_port)],
        ):
            _run(*in_ns, "iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", *rule)

        # (a) A service VIP of the route table: HTTP, routed to its cluster.
        routed = _run(
            *in_ns, "curl", "-s", "-H", "Host: catalog.default.svc.cluster.local", f"http://{VIP}/books"
        )
        assert routed.stdout == "catalog"

        # (b) Anything else: passthrough, bytes intact both ways, half-close included.
        for size in (1000, 4 * 1024 * 1024):
            answer = _run(
                *in_ns,
                sys.executable,
                "-m",
                "tests.support.netns_tcp",
                "exchange",
                OUTSIDE,
                str(echo_port),
                str(size),
            )
            assert json.loads(answer.stdout) == {"echoed": True, "received": size + len(FAREWELL)}

        # (d) A local address at the listener's own port: closed, not dialled (dialled, the
        # proxy would reach itself directly and answer 404).
        looped = subprocess.run(
            [
                *in_ns,
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                f"http://127.0.0.5:{proxy_port}/",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        # Closed unanswered: curl reports an empty reply (52), or a reset (56) when the close
        # came while its request was still unread.
        assert looped.returncode in (52, 56) and looped.stdout == "000", looped

        # (c) The passthrough connections count in the TCP metrics as PassthroughCluster.
        def metrics() -> str:
            return _run(*in_ns, "curl", "-s", f"http://127.0.0.1:{admin_port}/metrics").stdout

        passthrough = {"reporter": "source", "destination_service_name": "PassthroughCluster"}
        _wait(
            lambda: total(metrics(), "istio_tcp_connections_closed_total", **passthrough) == 2,
            "both passthrough connections to be counted as closed",
        )
        text = metrics()
        opened = samples(text, "istio_tcp_connections_opened_total", **passthrough)
        assert len(opened) == 1 and opened[0][1] == 2
        assert opened[0][0]["destination_service"] == "PassthroughCluster"
        assert opened[0][0]["source_workload"] == "app"
        received = 1000 + 4 * 1024 * 1024
        assert total(text, "istio_tcp_received_bytes_total", **passthrough) == received
        assert total(text, "istio_tcp_sent_bytes_total", **passthrough) == received + 2 * len(FAREWELL)

        proxy.terminate()  # drains the capture listener like any other
        assert proxy.wait(timeout=20) == 0
    finally:
        for process in (proxy, echo, backend):
            if process is not None:
                process.terminate()
                process.wait(timeout=20)
