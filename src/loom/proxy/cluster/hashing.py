"""The consistent-hash key of a request: a header, a cookie, the source IP or a query param.

Values are used as raw bytes (no percent-decoding, no case folding): two requests share an
endpoint only when they carry the same key bytes.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from loom.proxy.codec.head import RequestHead
from loom.snapshot.model import ConsistentHash, HashCookie


def hash_key(cfg: ConsistentHash, head: RequestHead, source_ip: str) -> bytes | None:
    """The key for ``cfg``, or None when the request does not carry it."""
    if cfg.header is not None:
        return head.hmap.get(cfg.header.lower().encode("latin-1"))
    if cfg.cookie is not None:
        cookies = head.hmap.get(b"cookie")
        return cookie_value(cookies, cfg.cookie.name.encode("latin-1")) if cookies else None
    if cfg.query_param is not None:
        query = head.query
        return query_value(query, cfg.query_param.encode("latin-1")) if query else None
    if cfg.source_ip:
        return source_ip.encode("ascii") if source_ip else None
    return None


def cookie_value(header: bytes, name: bytes) -> bytes | None:
    """The first non-empty value of cookie ``name`` in a ``Cookie`` header.

    Several ``Cookie`` headers arrive joined with ``,``; neither ``,`` nor ``;`` may appear in
    a cookie value, so both separate pairs.
    """
    for part in header.replace(b",", b";").split(b";"):
        key, eq, value = part.partition(b"=")
        if eq and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == 0x22 and value[-1] == 0x22:
                value = value[1:-1]
            if value:
                return value
    return None


def query_value(query: bytes, name: bytes) -> bytes | None:
    """The value of the first ``name`` parameter in a query string (``a=1&b=2``), raw.
    A parameter given without ``=`` has the empty value."""
    for part in query.split(b"&"):
        key, _, value = part.partition(b"=")
        if key == name:
            return value
    return None


def new_hash_cookie(
    cfg: HashCookie, getrandbits: Callable[[int], int] = random.getrandbits
) -> tuple[bytes, bytes]:
    """A fresh affinity cookie for a request that has none: (its value, the Set-Cookie header).

    As Envoy does when the hash cookie is absent and a TTL is configured: the proxy picks the
    value, routes by it, and hands it to the client so its next requests go to the same place.
    A TTL of zero makes it a session cookie (no Max-Age).
    """
    value = b"%032x" % getrandbits(128)
    header = b"%s=%s; Path=%s; HttpOnly" % (cfg.name.encode("latin-1"), value, cfg.path.encode("latin-1"))
    if cfg.ttl:
        header += b"; Max-Age=%d" % max(1, int(cfg.ttl))
    return value, header
