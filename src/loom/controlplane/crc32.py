"""Combining CRC-32s: the CRC of ``A + B`` from the CRCs of ``A`` and ``B`` and the length of ``B``.

zlib's ``crc32_combine``, which Python's ``zlib`` does not expose. A gzip body put together from
pieces compressed beforehand needs the CRC of the whole: the pieces many bodies share have theirs
computed once, and a body's CRC is then combined in a few microseconds instead of hashing megabytes.

CRC-32 as zlib computes it (reflected, polynomial 0xEDB88320): appending ``n`` bytes multiplies
the CRC so far by x^(8n) modulo the polynomial, then adds (xors) the CRC of those bytes. The
pre- and post-conditioning cancel out, as in zlib's ``crc32_combine_op``.
"""

from __future__ import annotations

POLYNOMIAL = 0xEDB88320
_ONE = 1 << 31
"""The polynomial 1 (x^0), in the reflected bit order."""


def _multiply(a: int, b: int) -> int:
    """a × b modulo the polynomial (zlib's ``multmodp``)."""
    m = _ONE
    product = 0
    while True:
        if a & m:
            product ^= b
            if not a & (m - 1):
                return product
        m >>= 1
        b = (b >> 1) ^ POLYNOMIAL if b & 1 else b >> 1


def _powers() -> tuple[int, ...]:
    """x^(2^k) modulo the polynomial, k = 0 … 31."""
    power = _ONE >> 1  # x^1
    table = []
    for _ in range(32):
        table.append(power)
        power = _multiply(power, power)
    return tuple(table)


_X2N = _powers()


def combine_operator(length: int) -> int:
    """What appending ``length`` bytes multiplies a CRC by: x^(8 × length) modulo the polynomial
    (zlib's ``crc32_combine_gen``). Compute it once per piece and reuse it."""
    operator = _ONE
    k = 3  # 2^3 bits per byte
    while length:
        if length & 1:
            operator = _multiply(_X2N[k & 31], operator)
        length >>= 1
        k += 1
    return operator


def combine(crc_a: int, crc_b: int, operator: int) -> int:
    """The CRC-32 of ``A + B``, given ``crc32(A)``, ``crc32(B)`` and ``combine_operator(len(B))``."""
    return _multiply(operator, crc_a) ^ crc_b
