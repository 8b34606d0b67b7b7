"""The request head as sent upstream: origin-form, hop-by-hop headers dropped, framing restated."""

from __future__ import annotations

from loom.proxy.codec.head import RequestHead
from loom.proxy.codec.serialize import end_to_end, request_head


def upstream_request_head(head: RequestHead) -> bytes:
    headers = end_to_end(head.headers, head.hmap.get(b"connection"), head.hmap)
    if head.scheme:
        # Absolute-form (forward-proxy style): the target's authority is the Host.
        host = head.authority if head.port is None else b"%s:%d" % (head.authority, head.port)
        headers = [(n, v) for n, v in headers if n.lower() != b"host"]
        headers.insert(0, (b"host", host))
    if head.expect_continue:
        headers = [(n, v) for n, v in headers if n.lower() != b"expect"]
    if head.chunked:
        headers.append((b"transfer-encoding", b"chunked"))
    if head.upgrade:
        headers += [(b"connection", b"upgrade"), (b"upgrade", head.hmap.get(b"upgrade", b""))]
    target = head.path + b"?" + head.query if head.query else head.path
    return request_head(head.method, target, headers)
