"""Transparent mode's network (Linux, root): every replica a host of its own on the mesh's bridge.

Each replica gets a network namespace with one veth link to a bridge in the host's namespace, an
address of the mesh's subnet, and iptables rules that send its traffic through its sidecar, as
Istio's init container does:

- nat OUTPUT: every TCP connection the app opens goes to the sidecar's outbound port (the
  sidecar's own connections are told apart by its group id, :data:`SIDECAR_GID`; loopback is left
  alone);
- nat PREROUTING: a connection to the app's port goes to the sidecar's inbound port instead;
- filter INPUT: any other new TCP connection from outside is reset, so nothing reaches the app
  except through its sidecar (where STRICT mTLS applies).

Service names resolve to virtual IPs through the namespace's own hosts file
(``/etc/netns/<ns>/hosts``, which ``ip netns exec`` mounts over ``/etc/hosts``).

Everything made here is recorded in :class:`NetworkState` (in the mesh's state file) before it is
made, so :func:`tear_down` can remove it after a failure or a supervisor that died: namespaces
(their links and rules go with them), their hosts files, the bridge and the host's FORWARD rule.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

SIDECAR_GID = 1337
"""The group the sidecars run as: iptables lets their connections out uncaptured (Istio uses
uid 1337; a group keeps the sidecar's access to the mesh's root-owned state)."""
OUTBOUND_PORT = 15001
INBOUND_PORT = 15006
SUBNETS = ipaddress.ip_network("10.240.0.0/16")
"""Each mesh takes the first /24 of this range that no route or address of this host uses."""
SERVICE_CIDR = "10.96.0.0/16"
"""Where the control plane allocates Services' virtual IPs (``--service-cidr``)."""
NETNS_ETC = Path("/etc/netns")
COMMAND_TIMEOUT = 30.0
IP_COMMANDS = ("ip", "iptables")
CLONE_NEWNET = 0x40000000
T = TypeVar("T")


class NetworkError(Exception):
    """A namespace, link, address or rule could not be made; the message names the command."""


@dataclass
class NetworkState:
    """What transparent mode made on this host, so that it can all be removed."""

    tag: str
    bridge: str = ""
    subnet: str = ""
    gateway: str = ""
    forward_rule: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)


def unsupported_reason() -> str | None:
    """Why transparent mode cannot run here, or None."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "transparent mode needs root (network namespaces and iptables rules)"
    missing = [command for command in IP_COMMANDS if shutil.which(command) is None]
    if missing:
        return f"transparent mode needs {' and '.join(missing)} (Debian: apt-get install iproute2 iptables)"
    return None


def _run(*argv: str, stdin: str | None = None) -> str:
    """The command's output; NetworkError naming the command when it fails."""
    try:
        done = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetworkError(f"{' '.join(argv)}: {exc}") from None
    if done.returncode != 0:
        raise NetworkError(f"{' '.join(argv)}: {done.stderr.strip() or f'exit code {done.returncode}'}")
    return done.stdout


def _try(*argv: str) -> str | None:
    """The command's output, or None when it fails (removal: what is already gone is fine)."""
    try:
        return _run(*argv)
    except NetworkError:
        return None


def _used_networks() -> list[ipaddress.IPv4Network]:
    used = []
    for line in (
        _run("ip", "-4", "route", "show", "table", "all").splitlines()
        + _run("ip", "-4", "-o", "addr", "show").splitlines()
    ):
        for word in line.split():
            try:
                used.append(ipaddress.ip_network(word, strict=False))
            except ValueError:
                continue
    return [n for n in used if isinstance(n, ipaddress.IPv4Network) and n.prefixlen > 0]


def free_subnet(used: Sequence[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """The first /24 of :data:`SUBNETS` that overlaps nothing in ``used``."""
    for subnet in SUBNETS.subnets(new_prefix=24):
        if not any(subnet.overlaps(other) for other in used):
            return subnet
    raise NetworkError(f"every /24 of {SUBNETS} is in use on this host")


def make_bridge(state: NetworkState) -> None:
    """The mesh's bridge, with the subnet's first address (the host's, where the control plane
    listens), and a FORWARD rule so a host that filters bridged traffic still passes it."""
    subnet = free_subnet(_used_networks())
    state.bridge = f"loom{state.tag}"[:15]
    state.subnet = str(subnet)
    state.gateway = str(subnet.network_address + 1)
    _run("ip", "link", "add", state.bridge, "type", "bridge")
    _run("ip", "addr", "add", f"{state.gateway}/{subnet.prefixlen}", "dev", state.bridge)
    _run("ip", "link", "set", state.bridge, "up")
    rule = ["FORWARD", "-i", state.bridge, "-o", state.bridge, "-m", "comment"]
    rule += ["--comment", f"loom mesh {state.tag}", "-j", "ACCEPT"]
    state.forward_rule = rule
    _run("iptables", "-I", *rule)


def replica_address(state: NetworkState, index: int) -> str:
    """The address of replica ``index`` (0-based): the subnet's third address on."""
    subnet = ipaddress.ip_network(state.subnet)
    address = subnet.network_address + 2 + index
    if address >= subnet.broadcast_address:
        raise NetworkError(f"more replicas than {state.subnet} has addresses")
    return str(address)


def namespace_name(state: NetworkState, index: int) -> str:
    return f"loom-{state.tag}-{index}"


def make_namespace(state: NetworkState, index: int, address: str, *, app_port: int, hosts: str) -> str:
    """Replica ``index``'s namespace: linked to the bridge at ``address``, its traffic captured
    for its sidecar, ``hosts`` as its /etc/hosts. Its name."""
    name = namespace_name(state, index)
    state.namespaces.append(name)  # recorded first: a failure half-way is still removed
    write_hosts(name, hosts)
    write_resolv_conf(name)
    _run("ip", "netns", "add", name)
    host_end = f"lv{state.tag}{index}"[:15]
    _run("ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", name)
    _run("ip", "link", "set", host_end, "master", state.bridge, "up")
    inside = ("ip", "netns", "exec", name)
    prefix = ipaddress.ip_network(state.subnet).prefixlen
    _run(*inside, "ip", "link", "set", "lo", "up")
    _run(*inside, "ip", "addr", "add", f"{address}/{prefix}", "dev", "eth0")
    _run(*inside, "ip", "link", "set", "eth0", "up")
    _run(*inside, "ip", "route", "add", "default", "via", state.gateway)
    _run(*inside, "iptables-restore", "--noflush", stdin=capture_rules(app_port))
    return name


def capture_rules(app_port: int) -> str:
    """The namespace's iptables rules (``iptables-restore`` input)."""
    lines = [
        "*nat",
        ":LOOM_OUTPUT - [0:0]",
        ":LOOM_INBOUND - [0:0]",
        "-A OUTPUT -p tcp -j LOOM_OUTPUT",
        f"-A LOOM_OUTPUT -m owner --gid-owner {SIDECAR_GID} -j RETURN",
        "-A LOOM_OUTPUT -o lo -j RETURN",
        f"-A LOOM_OUTPUT -p tcp -j REDIRECT --to-ports {OUTBOUND_PORT}",
        "-A PREROUTING -p tcp -j LOOM_INBOUND",
    ]
    if app_port:
        lines.append(f"-A LOOM_INBOUND -p tcp --dport {app_port} -j REDIRECT --to-ports {INBOUND_PORT}")
    lines += ["COMMIT", "*filter", ":LOOM_INPUT - [0:0]", "-A INPUT -p tcp -j LOOM_INPUT"]
    lines.append("-A LOOM_INPUT -i lo -j RETURN")
    if app_port:
        lines.append(f"-A LOOM_INPUT -p tcp --dport {INBOUND_PORT} -j RETURN")
    lines += ["-A LOOM_INPUT -p tcp --syn -j REJECT --reject-with tcp-reset", "COMMIT", ""]
    return "\n".join(lines)


def hosts_text(names: Mapping[str, Iterable[str]]) -> str:
    """A hosts file: loopback, then each address with its names (``{ip: [name, ...]}``)."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{address}\t{' '.join(hostnames)}" for address, hostnames in sorted(names.items())]
    return "\n".join(lines) + "\n"


RESOLV_CONF = """# Loom transparent mode: names resolve through /etc/hosts (the mesh's Services).
# No DNS server is reachable from this namespace; with none named here, a lookup of any other
# name fails at once instead of waiting for one.
options attempts:1 timeout:1
"""


def write_resolv_conf(namespace: str) -> None:
    folder = NETNS_ETC / namespace
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "resolv.conf").write_text(RESOLV_CONF)


def write_hosts(namespace: str, text: str) -> None:
    """Write the namespace's hosts file in place: a process already running sees the new names
    (``ip netns exec`` bind-mounts this very file, so it must keep its inode)."""
    folder = NETNS_ETC / namespace
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "hosts"
    if path.exists() and path.read_text() == text:
        return
    with path.open("w") as file:
        file.write(text)


def in_namespace(namespace: str, argv: Sequence[str]) -> list[str]:
    """``argv`` run inside ``namespace`` (with its hosts file)."""
    return ["ip", "netns", "exec", namespace, *argv]


def call_inside(namespace: str, action: Callable[[], T]) -> T:
    """``action()`` on a thread that has entered ``namespace``'s network (``setns`` moves only the
    calling thread), so its sockets are made there: e.g. to probe an app on its own address,
    where a connection from outside would be redirected to its sidecar."""
    result: list[T] = []
    failure: list[BaseException] = []

    def enter_and_call() -> None:
        try:
            with open(f"/run/netns/{namespace}", "rb") as handle:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {namespace}")
            result.append(action())
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=enter_and_call, name=f"in-{namespace}", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def tear_down(state: NetworkState) -> list[str]:
    """Remove everything ``state`` records (idempotent); what could not be removed."""
    for name in state.namespaces:
        _try("ip", "netns", "del", name)
        shutil.rmtree(NETNS_ETC / name, ignore_errors=True)
    if state.bridge:
        _try("ip", "link", "del", state.bridge)
    if state.forward_rule:
        while _try("iptables", "-D", *state.forward_rule) is not None:
            pass  # the same rule inserted twice (a retried start) goes too
    return leftovers(state)


def leftovers(state: NetworkState) -> list[str]:
    """What of ``state`` still exists on this host."""
    found = []
    namespaces = set((_try("ip", "netns", "list") or "").split())
    found += [f"network namespace {name}" for name in state.namespaces if name in namespaces]
    found += [f"{NETNS_ETC / name}" for name in state.namespaces if (NETNS_ETC / name).exists()]
    if state.bridge and _try("ip", "link", "show", state.bridge):
        found.append(f"bridge {state.bridge}")
    if state.forward_rule and f"loom mesh {state.tag}" in (_try("iptables-save") or ""):
        found.append(f"iptables FORWARD rule for {state.bridge}")
    return found
