"""Snapshots sent gzip-compressed, with what proxies share compressed once.

A proxy's payload (``payloads.py``) is a few chunks, and the big ones are runs of JSON that
hundreds of proxies hold (the very same object). Sent as they are, over TLS, a push of 1,000
proxies encrypted about 2 GB (bench/controlplane_scale.py); compressing every response whole would
compress those same megabytes a thousand times. Instead a shared run is deflated once, the first
time a payload holding it is sent compressed, and the result is kept with it (``SharedChunk``).
A response is then one gzip member put together from pieces: the header, the deflate stream of
each chunk in order (a shared run's as kept; the proxy's own chunks made for this response), an
empty final block, and the trailer.

How the pieces make one deflate stream: each is compressed by a new compressor, so it refers to
nothing before it, and ends with a flush, which aligns it to a byte and leaves the stream open;
or it is a stored block (deflate's uncompressed kind), byte-aligned too. So the pieces join as
they are. The trailer's CRC-32 is combined from the pieces' own (``crc32.py``): a shared run's is
computed with its deflated bytes.

One member, rather than one per chunk (RFC 1952 allows several in a row): common decoders stop
after the first member — httpx returns the first and drops the rest, curl --compressed fails — so
a body of several would only be readable by some clients that ask for gzip.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from loom.controlplane.crc32 import combine, combine_operator

LEVEL = 1
"""zlib's fastest level, chosen by measurement (docs/controlplane.md, "Compression"): the
benchmark's snapshots compress 19× at level 1 and 22× at level 6, but level 6 takes 3.4× as long
(10.5 ms against 3.1 ms for a 2.2 MB run of clusters). A run is compressed again whenever it
changes (a namespace's endpoints change with every workload that comes or goes) and goes to the
proxies of one namespace: level 6 would save them 17 KB each, 4 MB for 250 proxies, about 1.2 ms
of encryption, for 7.4 ms more of compressing."""

GZIP_HEADER = bytes((0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF))
"""ID1 ID2, CM = deflate, no flags, no modification time, no extra flags, OS unknown."""
_FINAL_BLOCK = zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS).flush()
"""An empty last block (``03 00``): ends the deflate stream the pieces make."""

SMALL = 4096
"""A proxy's own chunks shorter than this (the usual: its node, its inbound listeners and routes,
about 2.4 KB in three chunks) are stored, not compressed: compressing them took 20 µs a response
(a thousand responses: 20 ms of a push) to save 1.2 KB each, 1 % of what a push sends."""


def _compressor() -> zlib._Compress:
    """A raw deflate compressor (no header or trailer: those are written once per body)."""
    return zlib.compressobj(LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)


def deflate(data: bytes) -> bytes:
    """``data`` as a piece of a deflate stream: raw, refers to nothing before it, ends byte-aligned
    and without the final block."""
    compressor = _compressor()
    return compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)


def stored(data: bytes) -> bytes:
    """``data`` (at most 65,535 bytes) as a stored block of a deflate stream that is at a byte
    boundary: the block header (not the last block, stored: three zero bits, then zeros up to the
    byte), the length and its complement, the bytes."""
    return b"\x00" + struct.pack("<HH", len(data), len(data) ^ 0xFFFF) + data


@dataclass(frozen=True, slots=True)
class Deflated:
    data: bytes
    """``deflate(chunk)``."""
    crc: int
    """``zlib.crc32(chunk)``."""
    operator: int
    """``combine_operator(len(chunk))``: appends the chunk's CRC to a body's."""


class SharedChunk:
    """A run of JSON that many proxies' payloads hold (this object), and its deflated form, made the
    first time a payload holding it is sent compressed and kept for every other one."""

    __slots__ = ("_deflated", "data")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._deflated: Deflated | None = None

    def __len__(self) -> int:
        return len(self.data)

    def deflated(self) -> Deflated:
        found = self._deflated
        if found is None:
            data = self.data
            found = self._deflated = Deflated(deflate(data), zlib.crc32(data), combine_operator(len(data)))
        return found


def gzip_body(chunks: Iterable[bytes | SharedChunk]) -> list[bytes]:
    """The chunks, one after the other, as one gzip member (in pieces to write in order)."""
    pieces = [GZIP_HEADER]
    crc = size = 0
    for chunk in chunks:
        if isinstance(chunk, SharedChunk):
            deflated = chunk.deflated()
            pieces.append(deflated.data)
            crc = combine(crc, deflated.crc, deflated.operator)
            size += len(chunk.data)
        elif chunk:
            pieces.append(deflate(chunk) if len(chunk) >= SMALL else stored(chunk))
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
    pieces.append(_FINAL_BLOCK + struct.pack("<II", crc, size & 0xFFFFFFFF))
    return pieces


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value lets a response be gzip-encoded (RFC 9110 12.5.3):
    ``gzip`` (or ``x-gzip``), else ``*``, listed with a q-value above 0."""
    gzip_q: float | None = None
    any_q: float | None = None
    for item in accept_encoding.split(","):
        coding, *params = item.split(";")
        coding = coding.strip().lower()
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        if coding in ("gzip", "x-gzip"):
            gzip_q = q
        elif coding == "*":
            any_q = q
    if gzip_q is not None:
        return gzip_q > 0
    return any_q is not None and any_q > 0
