"""A request body on its way upstream: streamed, with flow control, replayable while small."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from loom.proxy.codec.serialize import LAST_CHUNK, chunk

if TYPE_CHECKING:
    from loom.proxy.http.downstream import DownstreamConnection
    from loom.proxy.upstream.connection import UpstreamConnection

RETRY_BUFFER_BYTES = 64 * 1024
"""What a retry may replay; a longer body is streamed once and never retried."""
HIGH_WATER_BYTES = 64 * 1024


class RequestBody:
    __slots__ = (
        "chunked",
        "done",
        "downstream",
        "on_done",
        "pending",
        "pending_bytes",
        "replay",
        "replay_bytes",
        "sink",
        "total",
    )

    def __init__(self, downstream: DownstreamConnection, chunked: bool, empty: bool) -> None:
        self.downstream = downstream
        self.chunked = chunked
        self.done = empty
        self.pending: list[bytes] = []
        self.pending_bytes = 0
        self.replay: list[bytes] | None = []
        self.replay_bytes = 0
        self.sink: UpstreamConnection | None = None
        self.total = 0
        self.on_done: Callable[[], None] | None = None
        """Called once the whole body has arrived (mirroring waits for it)."""

    @property
    def replayable(self) -> bool:
        return self.replay is not None

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        replay = self.replay
        if replay is not None:
            if self.replay_bytes + len(data) <= RETRY_BUFFER_BYTES:
                replay.append(data)
                self.replay_bytes += len(data)
            else:
                self.replay = None
        sink = self.sink
        if sink is not None:
            if not sink.closed:
                sink.transport.write(chunk(data) if self.chunked else data)
            return
        self.pending.append(data)
        self.pending_bytes += len(data)
        if self.pending_bytes > HIGH_WATER_BYTES:
            self.downstream.pause(self.downstream.PAUSE_BODY)

    def finish(self) -> None:
        self.done = True
        sink = self.sink
        if sink is not None and self.chunked and not sink.closed:
            sink.transport.write(LAST_CHUNK)
        on_done, self.on_done = self.on_done, None
        if on_done is not None:
            on_done()

    def attach(self, sink: UpstreamConnection, head: bytes, retry: bool) -> None:
        """Send ``head`` and the body so far to ``sink`` (one write), then stream the rest."""
        self.sink = sink
        parts = (self.replay or []) if retry else self.pending
        if self.chunked:
            out = [head, *(chunk(p) for p in parts)]
            if self.done:
                out.append(LAST_CHUNK)
        else:
            out = [head, *parts]
        sink.transport.write(out[0] if len(out) == 1 else b"".join(out))
        if self.pending:
            self.pending = []
            self.pending_bytes = 0
            self.downstream.resume(self.downstream.PAUSE_BODY)

    def detach(self) -> None:
        self.sink = None
