"""`loom up --transparent` of the bookstore: every replica in a network namespace of its own on the
mesh's bridge, its traffic sent through its sidecar by iptables, service names resolving to
virtual IPs — and `loom down` leaving no process, namespace, link or rule behind."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_up import _alive, _down, _pids, loom, mesh_state

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("iptables") or not shutil.which("ip"),
    reason="transparent mode needs root, iproute2 and iptables (CI runs as root)",
)

BOOKSTORE = Path(__file__).resolve().parents[2] / "examples" / "bookstore"
WAIT_SECONDS = 20.0

BOOK_PAGE = """
import json, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy: iptables it is
with opener.open("http://frontend/api/book/1", timeout=15) as answer:
    print(json.dumps({"status": answer.status, "page": json.loads(answer.read())}))
"""


@pytest.fixture(scope="module")
def bookstore(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("transparent") / "bookstore"
    shutil.copytree(BOOKSTORE, directory, ignore=shutil.ignore_patterns(".loom", "__pycache__"))
    done = loom("up", "--transparent", "--detach", str(directory), timeout=120)
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        yield directory
    finally:
        _down(directory)
        network = mesh_state(directory).get("network") or {}
        for name in network.get("namespaces", []):  # whatever a failed test left
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
        if network.get("bridge"):
            subprocess.run(["ip", "link", "del", network["bridge"]], capture_output=True, check=False)


def _replica(directory: Path, prefix: str) -> dict[str, Any]:
    return next(r for r in mesh_state(directory)["replicas"] if r["name"].startswith(prefix))


def _in_namespace(netns: str, code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "no_proxy")}
    argv = ["ip", "netns", "exec", netns, sys.executable, "-c", code]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)


def test_each_replica_has_its_own_namespace_and_address(bookstore: Path) -> None:
    state = mesh_state(bookstore)
    replicas = state["replicas"]
    assert state["transparent"] is True
    assert len({r["netns"] for r in replicas}) == len(replicas) == 7
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert all(r["netns"] in listed for r in replicas)
    assert state["control_plane_url"].startswith(f"https://{state['network']['gateway']}:")
    assert len({r["address"] for r in replicas}) == len(replicas)


def test_an_app_calls_services_by_name_with_no_proxy_setting(bookstore: Path) -> None:
    frontend = _replica(bookstore, "frontend")
    done = _in_namespace(frontend["netns"], BOOK_PAGE)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    page = answer["page"]
    assert answer["status"] == 200
    assert page["book"]["id"] == 1 and page["catalog_version"] in ("v1", "v2")
    assert page["reviews"] is not None, page


def test_the_namespace_resolves_services_to_virtual_ips(bookstore: Path) -> None:
    frontend = _replica(bookstore, "frontend")
    hosts = Path("/etc/netns") / frontend["netns"] / "hosts"
    entries = {
        name: line.split()[0] for line in hosts.read_text().splitlines()[2:] for name in line.split()[1:]
    }
    services = ("catalog", "reviews", "orders", "frontend")
    assert all(entries[name].startswith("10.96.") for name in services), entries
    assert all(entries[f"{name}.bookstore.svc.cluster.local"] == entries[name] for name in services)
    assert len({entries[name] for name in services}) == len(services)
    assert entries[frontend["name"]] == frontend["address"]  # its own name, as a pod's


def test_plaintext_from_outside_reaches_no_app_under_strict(bookstore: Path) -> None:
    orders = _replica(bookstore, "orders")
    # The app's own port leads to the sidecar's inbound listener, which closes plaintext (STRICT).
    with socket.create_connection((orders["address"], orders["app_port"]), timeout=5) as sock:
        sock.sendall(b"POST /orders HTTP/1.1\r\nHost: orders\r\nContent-Length: 0\r\n\r\n")
        sock.settimeout(5)
        try:
            answer = sock.recv(100)
        except ConnectionResetError:
            answer = b""
    assert answer == b""
    # Any other port of the replica is reset: nothing gets in but through the sidecar.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((orders["address"], 9999), timeout=5).close()


def test_a_destination_outside_the_mesh_passes_through(bookstore: Path) -> None:
    gateway = mesh_state(bookstore)["network"]["gateway"]
    server = socket.create_server((gateway, 0))
    port = server.getsockname()[1]
    received: list[bytes] = []

    def echo_once() -> None:
        conn, _ = server.accept()
        with conn:
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
            received.append(data)
            conn.sendall(data[::-1])

    thread = threading.Thread(target=echo_once, daemon=True)
    thread.start()
    code = (
        "import socket\n"
        f"s = socket.create_connection(({gateway!r}, {port}), timeout=10)\n"
        "s.sendall(b'not http at all' * 1000)\n"
        "s.shutdown(socket.SHUT_WR)\n"
        "data = b''\n"
        "while chunk := s.recv(65536):\n"
        "    data += chunk\n"
        "print(len(data), data == (b'not http at all' * 1000)[::-1])\n"
    )
    try:
        done = _in_namespace(_replica(bookstore, "traffic")["netns"], code)
        thread.join(timeout=WAIT_SECONDS)
    finally:
        server.close()
    assert done.returncode == 0, done.stderr
    assert received == [b"not http at all" * 1000]
    assert done.stdout.split() == ["15000", "True"]


def test_loom_run_joins_a_transparent_mesh(bookstore: Path) -> None:
    code = (
        "import json, urllib.request, urllib.error\n"
        "def call(url, body=None):\n"
        "    try:\n"
        "        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=15) as a:\n"
        "            return a.status\n"
        "    except urllib.error.HTTPError as e:\n"
        "        return e.code\n"
        "print(json.dumps([call('http://frontend/api/book/2'), call('http://orders/orders', b'{}')]))\n"
    )
    done = loom(
        "run",
        "--mesh",
        str(bookstore),
        "--name",
        "shell",
        "-n",
        "bookstore",
        "--",
        sys.executable,
        "-c",
        code,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [200, 403]


def test_a_service_added_to_the_folder_resolves_in_every_namespace(bookstore: Path) -> None:
    extra = bookstore / "extra-service.yaml"
    extra.write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: wishlist, namespace: bookstore}\n"
        "spec:\n  selector: {app: wishlist}\n  ports: [{name: http, port: 80, targetPort: 9200}]\n"
    )
    hosts = Path("/etc/netns") / _replica(bookstore, "catalog-v1")["netns"] / "hosts"
    deadline = time.monotonic() + WAIT_SECONDS
    try:
        while "wishlist.bookstore.svc.cluster.local" not in hosts.read_text():
            assert time.monotonic() < deadline, hosts.read_text()
            time.sleep(0.1)
    finally:
        extra.unlink()


def test_down_leaves_no_process_namespace_link_or_rule(bookstore: Path) -> None:
    state = mesh_state(bookstore)
    pids = _pids(state)
    network = state["network"]
    done = loom("down", str(bookstore))
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(pids) >= 16 and not any(_alive(pid) for pid in pids)
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert not any(name in listed for name in network["namespaces"])
    assert not any((Path("/etc/netns") / name).exists() for name in network["namespaces"])
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    assert network["bridge"] not in links and f"lv{network['tag']}" not in links
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    assert f"loom mesh {network['tag']}" not in rules
