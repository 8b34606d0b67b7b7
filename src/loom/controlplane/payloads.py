"""What each proxy's watch returns, encoded so that what proxies share is encoded, hashed and held once.

The compiler builds the outbound route config and clusters once per namespace (and the proxy
labels that matter) and hands the same objects to every proxy there: with 200 services that is
megabytes per snapshot, the same for hundreds of proxies. Encoding, hashing and keeping them per
proxy made a recompile of a thousand proxies take a minute and gigabytes.

Here a recompile's snapshots are encoded field by field. Every element of their lists
(listeners, route configs, clusters) is encoded and hashed once, however many snapshots hold it;
a run of elements that several snapshots hold is joined once and kept once, also across
recompiles while its bytes do not change (and across namespaces whose runs encode alike). A
proxy's payload is then a few chunks: its own small parts and references to the shared runs.
Joined, the chunks are exactly what encoding the whole snapshot gives,
``msgspec.json.encode({"version": V, "snapshot": snapshot_to_builtins(snapshot)})`` with the
snapshot's ``version`` set to V. The digest covers everything but the version: equal snapshots
have equal digests. A shared run is a ``SharedChunk``, which keeps its compressed form once it has
been sent compressed (``compression.py``): a push compresses it once, whatever number of proxies
get it.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

import msgspec

from loom.controlplane.compression import SharedChunk, gzip_body
from loom.snapshot import Snapshot
from loom.snapshot.durations import Duration
from loom.snapshot.durations import encode as encode_hook


@functools.lru_cache(maxsize=4096)
def _duration(seconds: float) -> Any:
    return encode_hook(Duration(seconds))


def _hook(value: Any) -> Any:
    """``loom.snapshot``'s hook, remembering how each duration is written: a recompile writes the
    same few durations (timeouts, intervals) tens of thousands of times."""
    if isinstance(value, Duration):
        return _duration(float(value))
    return encode_hook(value)


_encode = msgspec.json.Encoder(enc_hook=_hook).encode
_FIELDS = tuple(
    (f.name, (b"," if i else b"") + _encode(f.encode_name) + b":")
    for i, f in enumerate(msgspec.structs.fields(Snapshot))
)
"""Each field of a snapshot, with the JSON that goes before its value."""
_VERSION = "version"
_VERSION_MARK = b"\x00"
"""Stands for the version in the digest (encoded JSON never holds a raw control character)."""
_ELEMENT_MARK = b"\x01"
"""Precedes a list element's digest (32 bytes) in the digest: an element counts by its digest, so
a proxy's digest does not depend on which of its elements other proxies share."""
_OWN_CHUNK = 64 * 1024
"""Parts this large are kept as chunks of their own in a payload; smaller ones are copied together."""


@dataclass(frozen=True, slots=True)
class Payload:
    """``{"version": ..., "snapshot": {...}}``, as the chunks to write one after the other."""

    chunks: tuple[bytes | SharedChunk, ...]
    """The proxy's own parts (bytes) and the runs it shares with other proxies (SharedChunk)."""
    size: int

    def plain(self) -> list[bytes]:
        """The chunks' bytes, to write one after the other."""
        return [c.data if isinstance(c, SharedChunk) else c for c in self.chunks]

    def gzipped(self) -> list[bytes]:
        """The payload as one gzip member, in pieces to write one after the other."""
        return gzip_body(self.chunks)

    def joined(self) -> bytes:
        return b"".join(self.plain())


EMPTY = Payload((b"",), 0)


@dataclass(frozen=True, slots=True)
class Encoded:
    """One proxy's snapshot, encoded but for its version."""

    digest: bytes
    parts: tuple[bytes | SharedChunk | None, ...]
    """The snapshot's JSON in pieces: its own (bytes), the runs it shares with other snapshots
    (SharedChunk); None where the version goes."""

    def payload(self, version: str) -> Payload:
        v = _encode(version)
        chunks: list[bytes | SharedChunk] = []
        pending = bytearray(b'{"version":' + v + b',"snapshot":')
        for part in self.parts:
            if part is None:
                pending += v
            elif len(part) >= _OWN_CHUNK:
                if pending:
                    chunks.append(bytes(pending))
                    pending = bytearray()
                chunks.append(part)  # a shared run: referenced, not copied
            else:
                pending += part.data if isinstance(part, SharedChunk) else part
        pending += b"}"
        chunks.append(bytes(pending))
        return Payload(tuple(chunks), sum(len(c) for c in chunks))


@dataclass(frozen=True, slots=True)
class _Run:
    """Consecutive list elements that several snapshots hold, encoded once."""

    elements: list[Any]
    chunk: SharedChunk
    """The elements' JSON, comma-separated."""
    marked: bytes
    """What the run adds to a digest: each element's mark and digest."""


class PayloadEncoder:
    """Encodes the snapshots of one recompile, each list element and each shared run only once.

    A snapshot's list is walked once: where a run another snapshot had starts (the same objects,
    in the same order), the run's bytes and digests are taken whole; elements met before but not
    in a known run start a new run; the others are the snapshot's own. The hundreds of proxies
    that share an outbound cluster list find it with one lookup and one comparison. The encoder
    keeps every element it encoded alive until it is dropped, so identities stay valid.
    """

    def __init__(self, interned: dict[bytes, SharedChunk] | None = None) -> None:
        self._elements: dict[int, tuple[Any, bytes, bytes]] = {}
        """id → (the element, kept alive while its id is used; its JSON; its digest)."""
        self._runs: dict[int, list[_Run]] = {}
        """id of a run's first element → the runs starting with it, longest first."""
        self._interned_before = interned or {}
        self.interned: dict[bytes, SharedChunk] = {}
        """Digest → every shared run encoded by this recompile (give it to the next one): a run
        whose bytes did not change is the same object, compressed form included."""

    def encode(self, snapshot: Snapshot) -> Encoded:
        parts: list[bytes | SharedChunk | None] = []
        hasher = hashlib.sha256()
        own = bytearray(b"{")
        hasher.update(b"{")
        for name, key in _FIELDS:
            own += key
            hasher.update(key)
            if name == _VERSION:
                hasher.update(_VERSION_MARK)
                parts += (bytes(own), None)
                own = bytearray()
                continue
            value = getattr(snapshot, name)
            if isinstance(value, list):
                own = self._list(value, own, parts, hasher)
                continue
            data = _encode(value)
            own += data
            hasher.update(data)
        own += b"}"
        hasher.update(b"}")
        parts.append(bytes(own))
        return Encoded(hasher.digest(), tuple(parts))

    def _list(
        self, value: list[Any], own: bytearray, parts: list[bytes | SharedChunk | None], hasher: Any
    ) -> bytearray:
        own += b"["
        hasher.update(b"[")
        elements, end = self._elements, len(value)
        k, first = 0, True
        while k < end:
            ident = id(value[k])
            run = self._known_run(value, k, ident)
            if run is None and ident in elements:  # met before: start a run of what follows
                j = k + 1
                while j < end and id(value[j]) in elements:
                    j += 1
                run = self._new_run(value[k:j])
            if not first:
                own += b","
            first = False
            if run is not None:
                hasher.update(run.marked)
                parts += (bytes(own), run.chunk)
                own = bytearray()
                k += len(run.elements)
                continue
            data, digest = self._element(value[k])
            own += data
            hasher.update(_ELEMENT_MARK + digest)
            k += 1
        own += b"]"
        hasher.update(b"]")
        return own

    def _known_run(self, value: list[Any], k: int, ident: int) -> _Run | None:
        for run in self._runs.get(ident, ()):
            # The same objects (list equality tries identity first, and these are the very
            # objects of the run), in the same order.
            if value[k : k + len(run.elements)] == run.elements:
                return run
        return None

    def _new_run(self, elements: list[Any]) -> _Run:
        by_id = self._elements
        encoded = [by_id[id(e)] for e in elements]
        marked = b"".join(_ELEMENT_MARK + digest for _, _, digest in encoded)
        digest = hashlib.sha256(marked).digest()
        chunk = self._interned_before.get(digest) or self.interned.get(digest)
        if chunk is None:
            chunk = SharedChunk(b",".join(data for _, data, _ in encoded))
        self.interned[digest] = chunk
        run = _Run(elements, chunk, marked)
        starting = self._runs.setdefault(id(elements[0]), [])
        starting.append(run)
        starting.sort(key=lambda r: -len(r.elements))
        return run

    def _element(self, element: Any) -> tuple[bytes, bytes]:
        found = self._elements.get(id(element))
        if found is None:
            data = _encode(element)
            found = (element, data, hashlib.sha256(data).digest())
            self._elements[id(element)] = found
        return found[1], found[2]
