"""Virtual IPs for Services that have none, from a service CIDR (``loom controlplane --service-cidr``).

A Service in a local mesh's YAML usually has no ``spec.clusterIP``. As kube-apiserver does from its
service CIDR, Loom gives each such Service an address of the CIDR: the address at a stable hash
(sha256) of ``namespace/name``, or the next free one after it (linear probing, wrapping around). The
network and broadcast addresses (for IPv6: the first and the last of the range) are never given, nor
any address already taken by an explicit ``clusterIP``/``clusterIPs`` or ServiceEntry ``addresses``.

The allocation depends only on the set of services and taken addresses (they are sorted first), so
every program that reads the same resources — the control plane, which compiles the VIPs into the
outbound virtual hosts, and the runtime, which writes them into the workloads' hosts files — gets the
same answer:

```python
vips = service_virtual_ips(resources, "10.96.0.0/16")   # {("default", "orders"): "10.96.113.7", ...}
```

A headless Service (``clusterIP: None``) gets no virtual IP; nor does one with an address of its own.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from loom.api import Resource
from loom.api.resources.core import ServiceSpec
from loom.api.resources.istio_networking import ServiceEntrySpec
from loom.controlplane.compiler.model import Service

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

HEADLESS = "None"
"""The ``clusterIP`` of a headless Service."""


def parse_service_cidr(cidr: str) -> Network:
    """``cidr`` as a network (``10.96.0.0/16``, ``fd00:96::/112``); a ValueError that says why when it
    is not one (host bits set, a bad prefix) or holds no address to give."""
    try:
        network = ipaddress.ip_network(cidr.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(f"service CIDR {cidr!r} is not a network address/prefix: {exc}") from None
    if network.num_addresses < 3:
        raise ValueError(
            f"service CIDR {cidr!r} has no address to give (its network and last addresses are "
            f"reserved); use a shorter prefix, e.g. /{network.max_prefixlen - 8}"
        )
    return network


def allocate_virtual_ips(
    services: Iterable[tuple[str, str]], cidr: str, taken: Iterable[str] = ()
) -> dict[tuple[str, str], str]:
    """A virtual IP of ``cidr`` for each ``(namespace, name)`` of ``services``, by a stable hash of
    ``namespace/name`` with linear probing, never the network or last (broadcast) address nor one of
    ``taken`` (values that are not IP addresses, or lie outside ``cidr``, are ignored). Services are
    allocated in sorted order, so the result depends on the set given, not its order. A ValueError
    when ``cidr`` is malformed or too small for them all."""
    network = parse_service_cidr(cidr)
    wanted = sorted(set(services))
    first = int(network.network_address) + 1
    size = network.num_addresses - 2  # the usable addresses: first .. first + size - 1
    used: set[int] = set()
    for address in taken:
        try:
            parsed = ipaddress.ip_address(address.strip())
        except ValueError:
            continue
        if parsed.version == network.version and 0 <= int(parsed) - first < size:
            used.add(int(parsed))
    if len(wanted) > size - len(used):
        raise ValueError(
            f"service CIDR {cidr} is too small: {len(wanted)} services need a virtual IP, but it has "
            f"{size - len(used)} free addresses ({size} usable, {len(used)} taken); use a shorter prefix"
        )
    address_type = type(network.network_address)
    allocated: dict[tuple[str, str], str] = {}
    for key in wanted:
        offset = _hash(key) % size
        while first + offset in used:
            offset = (offset + 1) % size
        used.add(first + offset)
        allocated[key] = str(address_type(first + offset))
    return allocated


def service_virtual_ips(resources: Sequence[Resource], cidr: str) -> dict[tuple[str, str], str]:
    """``allocate_virtual_ips`` for the v1 Services of ``resources`` that have no address of their own
    (no ``clusterIP``/``clusterIPs`` that is an IP address) and are not headless, keyed by
    ``(namespace, name)``; the explicit addresses of the others, and those of ServiceEntries, are
    taken."""
    wanted: list[tuple[str, str]] = []
    taken: list[str] = []
    for resource in resources:
        spec = resource.spec
        if isinstance(spec, ServiceEntrySpec):
            taken.extend(spec.addresses)
            continue
        if not isinstance(spec, ServiceSpec):
            continue
        declared = [a for a in (spec.cluster_ip, *spec.cluster_ips) if a is not None]
        if HEADLESS in declared:
            continue
        explicit = [a for a in declared if _is_address(a)]
        if explicit:
            taken.extend(explicit)
        else:
            wanted.append((resource.namespace, resource.name))
    return allocate_virtual_ips(wanted, cidr, taken)


def with_virtual_ips(
    services: Iterable[Service], virtual_ips: Mapping[tuple[str, str], str]
) -> list[Service]:
    """``services`` with, for each v1 Service of ``virtual_ips`` that has no address of its own, its
    allocated virtual IP as its address (so the outbound virtual host answers it). Virtual hosts
    answer IPv4 addresses only: an IPv6 one is not added."""
    found = []
    for service in services:
        resource = service.resource
        vip = virtual_ips.get((resource.namespace, resource.name))
        own = bool(service.addresses) or not isinstance(resource.spec, ServiceSpec)
        if vip is not None and "." in vip and not own:
            service = replace(service, addresses=(vip,))
        found.append(service)
    return found


def _hash(key: tuple[str, str]) -> int:
    namespace, name = key
    return int.from_bytes(hashlib.sha256(f"{namespace}/{name}".encode()).digest()[:16], "big")


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip())
    except ValueError:
        return False
    return True
