"""Request heads built by hand, as the proxy's parser would have produced them."""

from __future__ import annotations

from loom.proxy.codec.head import RequestHead


def build_head(
    method: bytes = b"GET",
    path: bytes = b"/",
    query: bytes = b"",
    authority: bytes = b"svc",
    port: int | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
    scheme: bytes = b"",
) -> RequestHead:
    """A parsed request: the Host header first, then ``headers``; ``hmap`` indexes them."""
    head = RequestHead()
    head.method = method
    head.path = path
    head.query = query
    head.target = path + (b"?" + query if query else b"")
    head.scheme = scheme
    head.authority = authority
    head.port = port
    host = authority if port is None else authority + b":%d" % port
    head.headers = [(b"Host", host), *(headers or [])]
    hmap: dict[bytes, bytes] = {}
    for name, value in head.headers:
        lname = name.lower()
        hmap[lname] = hmap[lname] + b"," + value if lname in hmap else value
    head.hmap = hmap
    return head
