"""Fixtures for the compiler tests: request heads for asking the proxy's router where a request goes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from loom.proxy.codec.head import RequestHead


def _build_head(
    method: bytes = b"GET",
    path: bytes = b"/",
    query: bytes = b"",
    authority: bytes = b"svc",
    port: int | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> RequestHead:
    head = RequestHead()
    head.method = method
    head.path = path
    head.query = query
    head.target = path + (b"?" + query if query else b"")
    head.scheme = b""
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


@pytest.fixture
def make_head() -> Callable[..., RequestHead]:
    """``make_head(method=, path=, query=, authority=, port=, headers=)``."""
    return _build_head
