"""The agent's gzip decoding: every member of a body, and a cap on what it decodes to."""

from __future__ import annotations

import gzip
import itertools
import zlib

import pytest

from loom.proxy.agent.decoding import MAX_DECODED, DecodingError, gunzip

CLUSTERS = b'{"name":"outbound|80||a.b.svc"},' * 2000
SNAPSHOT = b'{"version":"1.7","snapshot":{"clusters":[' + CLUSTERS + b"{}]}}"


def member(data: bytes, level: int = 6) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def test_one_member() -> None:
    assert gunzip(gzip.compress(SNAPSHOT)) == SNAPSHOT


def test_several_members_one_after_the_other() -> None:
    cuts = (0, 10, 11, 30_000, len(SNAPSHOT) - 1, len(SNAPSHOT))
    body = b"".join(member(SNAPSHOT[a:b], level=1 + n) for n, (a, b) in enumerate(itertools.pairwise(cuts)))
    assert gunzip(body) == SNAPSHOT
    assert gzip.decompress(body) == SNAPSHOT  # what the standard library reads too


def test_an_empty_body_decodes_to_nothing() -> None:
    assert gunzip(b"") == b""
    assert gunzip(gzip.compress(b"")) == b""


def test_a_body_that_decodes_to_more_than_the_cap_is_refused() -> None:
    bomb = member(b"\0" * (8 * 2**20))  # 8 MB of zeros: 8 KB of gzip
    assert len(bomb) < 10_000
    with pytest.raises(DecodingError, match=r"decodes to more than 1 MB .*: refused"):
        gunzip(bomb, limit=2**20)
    # the cap counts every member together
    with pytest.raises(DecodingError, match="more than"):
        gunzip(member(b"a" * 600_000) + member(b"b" * 600_000), limit=2**20)
    assert gunzip(member(b"a" * 2**20), limit=2**20) == b"a" * 2**20  # up to the cap is fine
    assert MAX_DECODED == 256 * 2**20


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (member(SNAPSHOT)[:-20], "cut short"),
        (member(SNAPSHOT) + member(SNAPSHOT)[:30], "cut short"),
        (SNAPSHOT, "not valid gzip"),
        (member(SNAPSHOT) + b"trailing", "not valid gzip"),
        (member(SNAPSHOT)[:-8] + b"\0\0\0\0" + member(SNAPSHOT)[-4:], "not valid gzip"),  # CRC
    ],
)
def test_bodies_that_are_not_gzip_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(DecodingError, match=message):
        gunzip(body)
