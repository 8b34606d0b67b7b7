"""Picking the virtual host for a request's host and port.

Domains are exact names, ``*suffix`` wildcards (``*.example.com``; the longest suffix wins, and
the wildcard must cover at least one character) or ``*`` (everything else). Exact beats
wildcard beats ``*``. A domain may carry ``:port``; without one it takes the virtual host's
port, where None answers on any port.

A Kubernetes service FQDN ``name.ns.svc.<cluster domain>`` also answers to ``name.ns.svc`` and
``name.ns``, and to bare ``name`` when ``ns`` is this proxy's namespace (the DNS search path
a pod in that namespace has). Names written out in the configuration win over these.

For each name the ports are resolved ahead of time (see _Ports), so ``find`` costs one dict
lookup per level (exact, each wildcard length, ``*``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loom.proxy.router.errors import RouteCompileError
from loom.proxy.router.virtual_host import VirtualHostRoutes


class _Ports:
    """The virtual hosts answering one name, by port."""

    __slots__ = ("any_port", "by_port", "no_port")

    def __init__(
        self,
        by_port: dict[int, VirtualHostRoutes],
        any_port: VirtualHostRoutes | None,
        no_port: VirtualHostRoutes | None,
    ) -> None:
        self.by_port = by_port
        self.any_port = any_port
        """The virtual host with port None."""
        self.no_port = no_port
        """For a request without an explicit port: port 80, else any-port, else the only one."""

    def resolve(self, port: int | None) -> VirtualHostRoutes | None:
        if port is None:
            return self.no_port
        vh = self.by_port.get(port)
        return vh if vh is not None else self.any_port


class RouteTable:
    __slots__ = ("_catch_all", "_exact", "_suffix_lengths", "_suffixes", "name", "virtual_hosts")

    def __init__(
        self,
        name: str,
        virtual_hosts: tuple[VirtualHostRoutes, ...],
        exact: dict[bytes, _Ports],
        suffixes: dict[bytes, _Ports],
        catch_all: _Ports | None,
    ) -> None:
        self.name = name
        self.virtual_hosts = virtual_hosts
        self._exact = exact
        self._suffixes = suffixes
        self._suffix_lengths = tuple(sorted({len(s) for s in suffixes}, reverse=True))
        self._catch_all = catch_all

    def find(self, host: bytes, port: int | None) -> VirtualHostRoutes | None:
        """The virtual host for ``host`` (lower-case, no port) and the explicit ``port`` or None."""
        ports = self._exact.get(host)
        if ports is not None:
            vh = ports.resolve(port)
            if vh is not None:
                return vh
        if self._suffix_lengths:
            size = len(host)
            for length in self._suffix_lengths:
                if size > length:
                    ports = self._suffixes.get(host[-length:])
                    if ports is not None:
                        vh = ports.resolve(port)
                        if vh is not None:
                            return vh
        if self._catch_all is not None:
            return self._catch_all.resolve(port)
        return None

    def __repr__(self) -> str:
        return f"<RouteTable {self.name!r} virtual_hosts={len(self.virtual_hosts)}>"


@dataclass
class _Claims:
    """Compile-time collection of who answers one name on which port."""

    by_port: dict[int | None, tuple[VirtualHostRoutes, str]] = field(default_factory=dict)

    def claim(self, port: int | None, vh: VirtualHostRoutes, where: str, *, explicit: bool) -> None:
        held = self.by_port.get(port)
        if held is None:
            self.by_port[port] = (vh, where)
        elif explicit and held[0] is not vh:
            on = "any port" if port is None else f"port {port}"
            raise RouteCompileError(
                where,
                f"this domain on {on} is already claimed by virtual host {held[0].name!r} ({held[1]}); "
                "a domain and port may belong to one virtual host only",
            )

    def freeze(self) -> _Ports:
        by_port = {p: vh for p, (vh, _) in self.by_port.items() if p is not None}
        any_port = self.by_port[None][0] if None in self.by_port else None
        no_port = by_port.get(80) or any_port
        if no_port is None:
            distinct = {id(vh): vh for vh in by_port.values()}
            if len(distinct) == 1:
                no_port = next(iter(distinct.values()))
        return _Ports(by_port, any_port, no_port)


class HostIndexBuilder:
    """Collects (domain, port) claims from virtual hosts and builds a RouteTable."""

    def __init__(self, namespace: str, cluster_domain: str) -> None:
        self._namespace = namespace
        self._svc_suffix = f".svc.{cluster_domain.lower().strip('.')}"
        self._exact: dict[bytes, _Claims] = {}
        self._suffixes: dict[bytes, _Claims] = {}
        self._catch_all = _Claims()
        self._short: list[tuple[str, int | None, VirtualHostRoutes, str]] = []

    def add(self, vh: VirtualHostRoutes, domains: list[str], port: int | None, field_path: str) -> None:
        for i, domain in enumerate(domains):
            where = f"{field_path}.domains[{i}]"
            name, domain_port = _split_domain(domain, where)
            if domain_port is not None and port is not None and domain_port != port:
                raise RouteCompileError(
                    where, f"port {domain_port} differs from the virtual host's port {port}; drop one"
                )
            effective = domain_port if domain_port is not None else port
            if name == "*":
                self._catch_all.claim(effective, vh, where, explicit=True)
            elif name.startswith("*"):
                suffix = name[1:]
                if "*" in suffix or not suffix:
                    raise RouteCompileError(where, f"{domain!r}: only a leading '*' wildcard is supported")
                claims = self._suffixes.setdefault(suffix.encode(), _Claims())
                claims.claim(effective, vh, where, explicit=True)
            else:
                if "*" in name:
                    raise RouteCompileError(where, f"{domain!r}: only a leading '*' wildcard is supported")
                self._exact.setdefault(name.encode(), _Claims()).claim(effective, vh, where, explicit=True)
                for short in self._short_names(name):
                    self._short.append((short, effective, vh, where))

    def build(self, name: str, virtual_hosts: tuple[VirtualHostRoutes, ...]) -> RouteTable:
        # Short names go in last so that any name written out in a domain list wins.
        for short, port, vh, where in self._short:
            self._exact.setdefault(short.encode(), _Claims()).claim(port, vh, where, explicit=False)
        return RouteTable(
            name,
            virtual_hosts,
            {host: claims.freeze() for host, claims in self._exact.items()},
            {suffix: claims.freeze() for suffix, claims in self._suffixes.items()},
            self._catch_all.freeze() if self._catch_all.by_port else None,
        )

    def _short_names(self, fqdn: str) -> list[str]:
        if not fqdn.endswith(self._svc_suffix):
            return []
        service = fqdn[: -len(self._svc_suffix)]
        parts = service.split(".")
        if len(parts) != 2 or not all(parts):
            return []
        short, ns = parts
        names = [f"{short}.{ns}.svc", f"{short}.{ns}"]
        if ns == self._namespace:
            names.append(short)
        return names


def _split_domain(domain: str, where: str) -> tuple[str, int | None]:
    name = domain.strip().lower().rstrip(".")
    port = None
    head, sep, tail = name.rpartition(":")
    if sep and tail.isdigit() and not head.endswith(":"):
        port = int(tail)
        if not 0 < port < 65536:
            raise RouteCompileError(where, f"port {port} in {domain!r} is out of range (1-65535)")
        name = head
    if not name or any(c.isspace() or c in "/?#@" for c in name):
        raise RouteCompileError(where, f"{domain!r} is not a host name, *.suffix wildcard or '*'")
    return name, port
