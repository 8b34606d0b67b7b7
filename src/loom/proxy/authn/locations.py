"""Where a request carries its tokens, and taking a token out of the request once it is verified.

As in Envoy, a rule with neither ``from_headers`` nor ``from_params`` reads ``Authorization:
Bearer <token>`` and the ``access_token`` query parameter. Rules that name the same place share one
location, which remembers which rules (so which issuers) may send tokens there: a token found in a
place its issuer's rules do not name is from an unknown issuer.
"""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

from loom.proxy.codec.head import RequestHead
from loom.snapshot.security import JwtRule

BEARER = b"Bearer "
ACCESS_TOKEN = "access_token"

_TOKEN_START = re.compile(rb"[A-Za-z0-9_.-]")


class HeaderLocation:
    __slots__ = ("name", "prefix", "rules")

    def __init__(self, name: bytes, prefix: bytes) -> None:
        self.name = name
        """Lower-cased."""
        self.prefix = prefix
        self.rules: set[int] = set()
        """Indexes of the rules that read tokens here."""

    def extract(self, head: RequestHead) -> list[bytes]:
        """Each token in this header (one per header line carrying the prefix)."""
        name = self.name
        prefix = self.prefix
        found = []
        for header, value in head.headers:
            if len(header) != len(name) or header.lower() != name:
                continue
            if prefix:
                at = value.find(prefix)
                if at < 0:
                    continue
                # As Envoy: the token starts at the first base64url character after the prefix.
                start = _TOKEN_START.search(value, at + len(prefix))
                value = value[start.start() :] if start is not None else value
            found.append(value)
        return found

    def present(self, head: RequestHead) -> bool:
        return self.name in head.hmap

    def remove(self, head: RequestHead) -> None:
        remove_header(head, self.name)


class ParamLocation:
    __slots__ = ("name", "rules")

    def __init__(self, name: bytes) -> None:
        self.name = name
        self.rules: set[int] = set()

    def extract(self, head: RequestHead) -> list[bytes]:
        """The parameter's first value, percent-decoded."""
        for name, value in _params(head.query):
            if name == self.name:
                return [value]
        return []

    def present(self, head: RequestHead) -> bool:
        query = head.query
        return bool(query) and (self.name in query or b"%" in query)

    def remove(self, head: RequestHead) -> None:
        kept = [raw for raw in head.query.split(b"&") if _param_name(raw) != self.name]
        head.query = b"&".join(kept)


Location = HeaderLocation | ParamLocation


def build_locations(rules: list[JwtRule]) -> list[Location]:
    """One location per distinct place, headers first (in the order the rules name them)."""
    headers: dict[tuple[bytes, bytes], HeaderLocation] = {}
    params: dict[bytes, ParamLocation] = {}
    for index, rule in enumerate(rules):
        places_h = [(h.name.lower().encode(), h.prefix.encode()) for h in rule.from_headers]
        places_p = [p.encode() for p in rule.from_params]
        if not places_h and not places_p:
            places_h = [(b"authorization", BEARER)]
            places_p = [ACCESS_TOKEN.encode()]
        for key in places_h:
            headers.setdefault(key, HeaderLocation(*key)).rules.add(index)
        for name in places_p:
            params.setdefault(name, ParamLocation(name)).rules.add(index)
    return [*headers.values(), *params.values()]


def remove_header(head: RequestHead, lower_name: bytes) -> None:
    if lower_name not in head.hmap:
        return
    del head.hmap[lower_name]
    size = len(lower_name)
    head.headers[:] = [(n, v) for n, v in head.headers if len(n) != size or n.lower() != lower_name]


def add_header(head: RequestHead, lower_name: bytes, value: bytes) -> None:
    head.headers.append((lower_name, value))
    hmap = head.hmap
    hmap[lower_name] = hmap[lower_name] + b"," + value if lower_name in hmap else value


def _params(query: bytes) -> list[tuple[bytes, bytes]]:
    pairs = []
    for raw in query.split(b"&"):
        name, _, value = raw.partition(b"=")
        pairs.append((unquote_to_bytes(name), unquote_to_bytes(value)))
    return pairs


def _param_name(raw: bytes) -> bytes:
    return unquote_to_bytes(raw.partition(b"=")[0])
