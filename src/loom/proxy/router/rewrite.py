"""Rewrites applied before forwarding (Istio ``rewrite``): the path prefix and the authority.

A rewrite belongs to one RouteMatch, not to the whole route: ``uri_prefix`` replaces the
prefix that this match's path condition matched (the whole path for exact and regex matches,
and the leading ``/`` when the match has no path condition, as Envoy does for Istio's implicit
prefix ``/``). The router therefore compiles one CompiledRoute per RouteMatch, each holding the
rewrite for its own match, so nothing about the match has to be carried per request.
"""

from __future__ import annotations

from loom.proxy.codec.head import RequestHead
from loom.proxy.router.authority import join_authority


class CompiledRewrite:
    __slots__ = ("authority", "host", "host_port", "prefix_len", "uri")

    def __init__(
        self,
        *,
        uri: bytes | None = None,
        prefix_len: int | None = None,
        host: bytes | None = None,
        host_port: int | None = None,
    ) -> None:
        self.uri = uri
        self.prefix_len = prefix_len
        """Bytes of the request path that ``uri`` replaces; None replaces the whole path."""
        self.host = host
        self.host_port = host_port
        self.authority = join_authority(host, host_port) if host is not None else None
        """The new Host header value."""

    def for_prefix_len(self, prefix_len: int | None) -> CompiledRewrite:
        """This rewrite for a match that matched ``prefix_len`` bytes of the path."""
        return CompiledRewrite(uri=self.uri, prefix_len=prefix_len, host=self.host, host_port=self.host_port)

    def path(self, path: bytes) -> bytes:
        uri = self.uri
        if uri is None:
            return path
        n = self.prefix_len
        return uri if n is None else uri + path[n:]

    def apply(self, head: RequestHead) -> None:
        """Rewrite ``head.path`` and, for an authority rewrite, the authority and Host header."""
        if self.uri is not None:
            head.path = self.path(head.path)
        authority = self.authority
        if authority is None:
            return
        head.authority = self.host
        head.port = self.host_port
        headers = head.headers
        first = -1
        duplicates = False
        for i, (name, _) in enumerate(headers):
            if len(name) == 4 and name.lower() == b"host":
                if first < 0:
                    first = i
                    headers[i] = (name, authority)
                else:
                    duplicates = True
        if first < 0:
            headers.append((b"Host", authority))
        elif duplicates:  # already an invalid request; forward one Host only
            headers[first + 1 :] = [h for h in headers[first + 1 :] if h[0].lower() != b"host"]
        head.hmap[b"host"] = authority

    def __repr__(self) -> str:
        return f"<CompiledRewrite uri={self.uri!r} prefix_len={self.prefix_len} authority={self.authority!r}>"
