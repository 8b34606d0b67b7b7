"""Request-target and Host parsing (RFC 9112 §3.2): origin-form, absolute-form, authority."""

from __future__ import annotations

import re

import httptools

from loom.proxy.codec.errors import ProtocolError
from loom.proxy.codec.head import RequestHead


def parse_target(head: RequestHead, target: bytes) -> None:
    """Fill path/query (and, for absolute-form, scheme/authority/port) from the request target."""
    if target[:1] == b"/":
        path, _, query = target.partition(b"?")
        head.path = path
        head.query = query
        return
    if target == b"*":
        head.path = target
        return
    if head.method == b"CONNECT":
        raise ProtocolError(405, "CONNECT tunnels are not supported; send plain HTTP through the sidecar")
    try:
        url = httptools.parse_url(target)
    except httptools.HttpParserInvalidURLError:
        raise ProtocolError(400, "invalid request target") from None
    scheme = (url.schema or b"").lower()
    if scheme not in (b"http", b"https") or not url.host:
        raise ProtocolError(400, "invalid request target")
    if url.port is not None and not 0 < url.port < 65536:
        raise ProtocolError(400, "invalid port in request target")
    host = url.host.lower()
    # llhttp gives an IPv6 literal without its brackets; keep them, as a Host header has them.
    head.authority = b"[" + host + b"]" if b":" in host else host
    head.scheme = scheme
    head.port = url.port
    head.path = url.path or b"/"
    head.query = url.query or b""


# RFC 3986 host: a reg-name (unreserved, pct-encoded, sub-delims) or a bracketed IP literal.
_HOST = re.compile(rb"(?:[A-Za-z0-9\-._~!$&'()*+;=%]*|\[[0-9A-Fa-f:.]+\])\Z")


def parse_host_header(head: RequestHead, host: bytes) -> None:
    if b"," in host:
        raise ProtocolError(400, "more than one Host header")
    _split_authority(head, host.strip())


def _split_authority(head: RequestHead, authority: bytes) -> None:
    if authority[:1] == b"[":
        end = authority.find(b"]")
        if end < 0:
            raise ProtocolError(400, "invalid Host")
        host, rest = authority[: end + 1], authority[end + 1 :]
        if rest and rest[:1] != b":":
            raise ProtocolError(400, "invalid Host")
        port = rest[1:]
    else:
        host, _, port = authority.partition(b":")
    if port:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ProtocolError(400, "invalid port in Host")
        head.port = int(port)
    if _HOST.match(host) is None:
        raise ProtocolError(400, "invalid Host")
    head.authority = host.lower()
