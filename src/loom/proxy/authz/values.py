"""Value sets compiled from a policy field's list: Istio's string patterns, IP blocks and ports.

Istio writes string values as ``exact``, ``prefix*``, ``*suffix`` or ``*``. A list matches when
any of its values does, so a list compiles into one ``ValueSet``: exact values in a set, prefixes
and suffixes in tuples (``str.startswith`` takes a tuple), so a check is a few C calls whatever
the list's length. What ``*`` means depends on the field: for principals, namespaces, paths and
claims it is "present and not empty" (Envoy's ``.+``); for headers, methods and hosts it is
"present" (Envoy's ``present_match``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Generic, TypeVar

S = TypeVar("S", str, bytes)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class ValueSet(Generic[S]):
    """Istio string patterns, all ``str`` or all ``bytes``; ``matches`` is true when any matches."""

    __slots__ = ("exact", "nonempty", "prefixes", "star", "suffixes")

    def __init__(self, patterns: Iterable[S], *, nonempty: bool) -> None:
        exact: set[S] = set()
        prefixes: list[S] = []
        suffixes: list[S] = []
        star = False
        for pattern in patterns:
            if pattern in ("*", b"*"):
                star = True
            elif pattern[:1] in ("*", b"*"):
                suffixes.append(pattern[1:])
            elif pattern[-1:] in ("*", b"*"):
                prefixes.append(pattern[:-1])
            else:
                exact.add(pattern)
        self.exact = frozenset(exact)
        self.prefixes = tuple(prefixes)
        self.suffixes = tuple(suffixes)
        self.star = star
        self.nonempty = nonempty
        """What ``*`` asks: a non-empty value (True), or any value at all (False)."""

    def matches(self, value: S) -> bool:
        if value in self.exact:
            return True
        if self.star and (value or not self.nonempty):
            return True
        if self.prefixes and value.startswith(self.prefixes):
            return True
        return bool(self.suffixes) and value.endswith(self.suffixes)

    def __repr__(self) -> str:
        return (
            f"ValueSet(exact={sorted(self.exact)!r}, prefixes={self.prefixes!r}, suffixes={self.suffixes!r})"
        )


def parse_ip(text: str) -> IpAddress | None:
    """An address as a connection gives it (``::ffff:10.0.0.1`` is taken as ``10.0.0.1``)."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def parse_block(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """``10.0.0.1`` (one address) or ``10.0.0.0/16``; host bits are ignored, as Envoy masks them.

    Raises ValueError for anything else.
    """
    return ipaddress.ip_network(text.strip(), strict=False)


class IpBlocks:
    """Addresses and CIDRs; ``matches`` tells whether an address falls in any of them."""

    __slots__ = ("blocks", "v4", "v6")

    def __init__(self, blocks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> None:
        self.blocks = tuple(blocks)
        self.v4 = tuple((int(b.network_address), int(b.netmask)) for b in self.blocks if b.version == 4)
        self.v6 = tuple((int(b.network_address), int(b.netmask)) for b in self.blocks if b.version == 6)

    def matches(self, address: IpAddress) -> bool:
        number = int(address)
        for network, mask in self.v4 if address.version == 4 else self.v6:
            if number & mask == network:
                return True
        return False

    def __repr__(self) -> str:
        return f"IpBlocks({[str(b) for b in self.blocks]!r})"
