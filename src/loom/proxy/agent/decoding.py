"""Decoding the control plane's gzip-encoded answers (the agent asks for gzip: a snapshot of a
large mesh is megabytes of JSON that compress about twentyfold).

Every member of the body is read (RFC 1952 allows several one after the other; the control plane
sends one), and the decoded size is capped: a body that would decode to more than the cap is
refused before it is decoded further, so a decompression bomb cannot take the sidecar's memory.
"""

from __future__ import annotations

import zlib

MAX_DECODED = 256 * 2**20
"""The most a body may decode to: about a hundred times the snapshot of a 200-service mesh."""


class DecodingError(ValueError):
    """The body is not valid gzip, is cut short, or decodes to more than the cap."""


def gunzip(data: bytes, limit: int = MAX_DECODED) -> bytes:
    """The decoded body: every gzip member in ``data``, in order, at most ``limit`` bytes."""
    decoded: list[bytes] = []
    size = 0
    while data:
        inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            out = inflate.decompress(data, limit - size + 1)
        except zlib.error as exc:
            raise DecodingError(f"the body is not valid gzip ({exc})") from None
        size += len(out)
        if size > limit:
            raise DecodingError(
                f"the gzip body decodes to more than {_mb(limit)} (the most a sidecar accepts): refused"
            )
        if not inflate.eof:
            raise DecodingError("the gzip body is cut short")
        decoded.append(out)
        data = inflate.unused_data
    return b"".join(decoded)


def _mb(size: int) -> str:
    return f"{size / 2**20:g} MB" if size >= 2**20 else f"{size} bytes"
