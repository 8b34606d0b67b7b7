"""Transparent mode's name resolution: each Service's virtual IP under the names a pod would use.

The control plane allocates the virtual IPs (``--service-cidr``); this computes the same ones
from the same YAML (the allocation is a pure function of the Services), so the hosts files and
the sidecars' virtual hosts agree. A namespace's hosts file has every Service as
``name.namespace``, ``name.namespace.svc`` and ``name.namespace.svc.<cluster domain>``, and the
Services of its own namespace by their short name too, as Kubernetes' search path resolves them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from loom.api import load_paths
from loom.controlplane.compiler.virtual_ips import service_virtual_ips
from loom.runtime.network import hosts_text

CLUSTER_DOMAIN = "cluster.local"


def service_hostnames(
    vips: Mapping[tuple[str, str], str], namespace: str, cluster_domain: str = CLUSTER_DOMAIN
) -> dict[str, list[str]]:
    """``{ip: [names]}`` for a pod in ``namespace`` (``vips``: (namespace, name) → ip)."""
    names: dict[str, list[str]] = {}
    for (service_namespace, name), address in sorted(vips.items()):
        qualified = f"{name}.{service_namespace}"
        found = names.setdefault(address, [])
        if service_namespace == namespace:
            found.append(name)
        found += [qualified, f"{qualified}.svc", f"{qualified}.svc.{cluster_domain}"]
    return names


class ServiceNames:
    """The Services of a mesh folder and their virtual IPs, read again when a YAML file changes
    (a folder that no longer loads keeps the last names)."""

    def __init__(self, directory: Path, cidr: str) -> None:
        self.directory = directory
        self.cidr = cidr
        self.vips: dict[tuple[str, str], str] = {}
        self._stamp: tuple[tuple[str, int], ...] = ()
        self.changed()

    def hosts(self, namespace: str, address: str, hostname: str) -> str:
        """The hosts file of a replica of ``namespace``: the Services, and its own ``address`` as
        ``hostname`` (as a pod's; without it, a server that looks its own address up — Python's
        ``http.server`` does — would wait for a DNS server the namespace cannot reach)."""
        names = service_hostnames(self.vips, namespace)
        names.setdefault(address, []).insert(0, hostname)
        return hosts_text(names)

    def changed(self) -> bool:
        """Read the folder again if a YAML file changed; True if the names did."""
        stamp = self._files()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        loaded = load_paths([self.directory])
        if loaded.problems:
            return False
        vips = service_virtual_ips(loaded.resources, self.cidr)
        if vips == self.vips:
            return False
        self.vips = vips
        return True

    def _files(self) -> tuple[tuple[str, int], ...]:
        found = []
        for pattern in ("*.yaml", "*.yml"):
            for path in self.directory.rglob(pattern):
                try:
                    found.append((str(path), path.stat().st_mtime_ns))
                except OSError:
                    continue
        return tuple(sorted(found))
