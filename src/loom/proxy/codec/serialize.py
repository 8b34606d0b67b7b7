"""Writing HTTP/1.1 heads and chunks. Hop-by-hop headers are dropped here, in one place."""

from __future__ import annotations

from http import HTTPStatus

HOP_BY_HOP = frozenset(
    (
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    )
)
LAST_CHUNK = b"0\r\n\r\n"
CONTINUE_100 = b"HTTP/1.1 100 Continue\r\n\r\n"


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b"Unknown"


_REASONS = {code.value: code.phrase.encode() for code in HTTPStatus}


def end_to_end(
    headers: list[tuple[bytes, bytes]], connection: bytes | None, present: dict[bytes, bytes] | None = None
) -> list[tuple[bytes, bytes]]:
    """Headers without the hop-by-hop ones (and those the Connection header names), as a new list.

    ``present``, the message's lower-cased header index, lets the common case (no hop-by-hop
    header at all) skip the filtering.
    """
    if present is not None and HOP_BY_HOP.isdisjoint(present):
        return headers.copy()
    drop: frozenset[bytes] | set[bytes] = HOP_BY_HOP
    if connection is not None and connection.lower() not in (b"keep-alive", b"close"):
        drop = HOP_BY_HOP | {t.strip().lower() for t in connection.split(b",")}
    return [(n, v) for n, v in headers if n.lower() not in drop]


def request_head(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    parts = [method, b" ", target, b" HTTP/1.1\r\n"]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def response_head(status: int, headers: list[tuple[bytes, bytes]], reason: bytes | None = None) -> bytes:
    parts = [
        b"HTTP/1.1 ",
        str(status).encode(),
        b" ",
        reason or _REASONS.get(status) or _reason(status),
        b"\r\n",
    ]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def simple_response(
    status: int, body: bytes, *, close: bool, extra: list[tuple[bytes, bytes]] | None = None
) -> bytes:
    """A complete locally generated response (errors, redirects, direct responses)."""
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"text/plain")]
    if extra:
        headers += extra
    if close:
        headers.append((b"connection", b"close"))
    return response_head(status, headers) + body
