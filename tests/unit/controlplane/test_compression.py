"""Snapshots sent gzip-encoded: one gzip member put together from pieces, each shared run
compressed once (per push, and not again while it does not change), and CRC-32s combined."""

from __future__ import annotations

import gzip
import os
import zlib

import pytest

from loom.controlplane import compression
from loom.controlplane import payloads as payloads_module
from loom.controlplane.compression import SharedChunk, accepts_gzip, gzip_body
from loom.controlplane.crc32 import combine, combine_operator
from loom.controlplane.payloads import PayloadEncoder
from loom.controlplane.push import PushEngine
from loom.controlplane.registry import WorkloadRegistry
from loom.proxy.agent.decoding import gunzip
from tests.unit.compiler.support import SEED_WORKLOADS, seed_mesh
from tests.unit.controlplane.test_payloads import WORKLOADS, resources, snapshots


@pytest.fixture
def small_runs_shared(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs of this small mesh are kept as chunks of their own (as the big runs of a large mesh
    are), not copied into each payload."""
    monkeypatch.setattr(payloads_module, "_OWN_CHUNK", 256)


def payloads(found):
    encoder = PayloadEncoder()
    return [encoder.encode(s).payload(f"v.{n}") for n, s in enumerate(found)]


def first_member_only(body: bytes) -> bytes:
    """What a decoder that reads one gzip member and ignores what follows (httpx) returns."""
    return zlib.decompressobj(wbits=16 + zlib.MAX_WBITS).decompress(body)


@pytest.mark.parametrize("case", ["mesh", "seeds", "shared"])
def test_a_gzipped_payload_is_one_member_that_decodes_to_the_payload(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if case == "shared":
        monkeypatch.setattr(payloads_module, "_OWN_CHUNK", 256)
    found = snapshots(resources(), WORKLOADS) if case == "mesh" else snapshots(seed_mesh(), SEED_WORKLOADS)
    for payload in payloads(found):
        body = b"".join(payload.gzipped())
        assert gzip.decompress(body) == payload.joined()
        assert first_member_only(body) == payload.joined()
        assert gunzip(body) == payload.joined()
        assert len(body) < payload.size / 3


def test_pieces_of_every_kind_join_into_one_valid_member() -> None:
    big = SharedChunk(b'{"name":"outbound|80||svc.ns.svc.cluster.local"},' * 5000)
    small = SharedChunk(b"[1,2,3]")
    chunks: list[bytes | SharedChunk] = [b'{"a":', big, b"", b",", small, big, b"x" * 70000, b"}"]
    plain = b"".join(c.data if isinstance(c, SharedChunk) else c for c in chunks)
    body = b"".join(gzip_body(chunks))
    assert first_member_only(body) == plain
    assert gzip.decompress(body) == plain
    assert gzip.decompress(b"".join(gzip_body([]))) == b""


def test_shared_runs_are_compressed_once_per_push(
    monkeypatch: pytest.MonkeyPatch, small_runs_shared: None
) -> None:
    compressed: list[int] = []

    def counting(make):
        class Counting:
            def __init__(self) -> None:
                self.inner = make()

            def compress(self, data: bytes) -> bytes:
                compressed.append(len(data))
                return self.inner.compress(data)

            def flush(self, mode: int = zlib.Z_FINISH) -> bytes:
                return self.inner.flush(mode)

        return Counting

    monkeypatch.setattr(compression, "_compressor", counting(compression._compressor))
    sent = payloads(snapshots(resources(), WORKLOADS) * 20)  # 180 proxies
    bodies = [payload.gzipped() for payload in sent]
    shared = {id(c): c for p in sent for c in p.chunks if isinstance(c, SharedChunk)}
    own = [c for p in sent for c in p.chunks if isinstance(c, bytes) and len(c) >= compression.SMALL]
    assert shared
    # every shared run once, and each proxy's own chunks that are not small, once per response
    assert sorted(compressed) == sorted([len(c) for c in shared.values()] + [len(c) for c in own])
    # ... and every body holds the very bytes compressed then
    for chunk in shared.values():
        deflated = chunk.deflated().data
        holding = [b for b, p in zip(bodies, sent, strict=True) if chunk in p.chunks]
        assert all(any(piece is deflated for piece in body) for body in holding)


async def test_an_unchanged_run_is_not_compressed_again_by_the_next_push(small_runs_shared: None) -> None:
    registry = WorkloadRegistry()
    for w in WORKLOADS:
        registry.register(w)
    push = PushEngine(registry)
    push.resources = list(resources())
    push.recompile()
    before = {id(c): c for s in push.proxies.values() for c in s.payload.chunks if isinstance(c, SharedChunk)}
    for state in push.proxies.values():
        state.payload.gzipped()
    push.resources = list(resources(weight=80))  # the routes change, the clusters do not
    assert push.recompile() == len(WORKLOADS)
    after = {id(c): c for s in push.proxies.values() for c in s.payload.chunks if isinstance(c, SharedChunk)}
    kept = before.keys() & after.keys()
    assert kept and all(after[k]._deflated is not None for k in kept)
    assert any(after[k]._deflated is None for k in after.keys() - kept)
    for state in push.proxies.values():
        assert gzip.decompress(b"".join(state.payload.gzipped())) == state.payload.joined()


@pytest.mark.parametrize(
    ("lengths"), [(0, 0), (0, 7), (7, 0), (1, 1), (100, 3000), (5, 2_300_000), (65536, 65537)]
)
def test_crc32s_combine_as_zlib_computes_the_whole(lengths: tuple[int, int]) -> None:
    a, b = os.urandom(lengths[0]), os.urandom(lengths[1])
    assert combine(zlib.crc32(a), zlib.crc32(b), combine_operator(len(b))) == zlib.crc32(a + b)


@pytest.mark.parametrize(
    ("header", "gzip_ok"),
    [
        ("gzip", True),
        ("gzip, deflate, br", True),
        ("deflate, GZip;q=0.5", True),
        ("x-gzip", True),
        ("*", True),
        ("br;q=1.0, *;q=0.1", True),
        ("", False),
        ("identity", False),
        ("deflate, br", False),
        ("gzip;q=0", False),
        ("gzip;q=0.000, *", False),
        ("*;q=0", False),
        ("gzip;q=bogus", False),
    ],
)
def test_accept_encoding(header: str, gzip_ok: bool) -> None:
    assert accepts_gzip(header) is gzip_ok
