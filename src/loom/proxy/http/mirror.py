"""Traffic mirroring: a copy of the request goes to a second cluster, fire-and-forget.

The copy's Host gets Envoy's ``-shadow`` suffix; its response is read and dropped. A mirror
never delays or changes the real response, and at most ``MAX_IN_FLIGHT`` copies are in the
air at once (beyond that, copies are skipped and counted). The copy leaves once the request's
body has fully arrived; a body larger than the retry buffer (64 KiB) is not mirrored.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from loom.proxy.codec.head import ResponseHead
from loom.proxy.codec.serialize import chunk
from loom.proxy.http.upstream_request import upstream_request_head
from loom.proxy.upstream.pool import ConnectFailure, Overflow

if TYPE_CHECKING:
    from loom.proxy.http.exchange import Exchange
    from loom.proxy.upstream.cluster import ClusterRuntime
    from loom.proxy.upstream.connection import UpstreamConnection

MAX_IN_FLIGHT = 64
MIRROR_TIMEOUT = 10.0
_in_flight: set[asyncio.Task[None]] = set()
skipped = 0


def mirror_request(ex: Exchange, cluster_name: str) -> None:
    cluster = ex.config.clusters.get(cluster_name)
    if cluster is None:
        return
    if ex.body.done:
        _send_copy(ex, cluster)
    else:
        ex.body.on_done = lambda: _send_copy(ex, cluster)


def _send_copy(ex: Exchange, cluster: ClusterRuntime) -> None:
    global skipped
    body = ex.body
    if body.replay is None or len(_in_flight) >= MAX_IN_FLIGHT:
        skipped += 1
        return
    head_bytes = _shadow_head(ex)
    payload = b"".join(body.replay)
    if body.chunked:
        payload = (chunk(payload) if payload else b"") + b"0\r\n\r\n"
    task = asyncio.get_running_loop().create_task(_send(cluster, head_bytes + payload))
    _in_flight.add(task)
    task.add_done_callback(_in_flight.discard)


def _shadow_head(ex: Exchange) -> bytes:
    head = ex.head
    host = head.authority + b"-shadow"
    if head.port is not None:
        host += b":%d" % head.port
    raw = upstream_request_head(head)
    lines = raw.split(b"\r\n")
    for i, line in enumerate(lines[1:], start=1):
        if line[:5].lower() == b"host:":
            lines[i] = b"host: " + host
            break
    else:
        lines.insert(1, b"host: " + host)
    return b"\r\n".join(lines)


async def _send(cluster: ClusterRuntime, request: bytes) -> None:
    endpoint = cluster.pick(None, None)
    if endpoint is None:
        return
    pool = cluster.pools[endpoint.key]
    try:
        conn, _ = await pool.acquire()
    except (ConnectFailure, Overflow):
        return
    sink = _MirrorSink(conn)
    conn.sink = sink
    conn.parser.expect_head_only(False)
    conn.transport.write(request)
    try:
        async with asyncio.timeout(MIRROR_TIMEOUT):
            await sink.done
    except TimeoutError:
        conn.close()
        return
    if sink.complete:
        pool.release(conn)


class _MirrorSink:
    __slots__ = ("complete", "conn", "done")

    def __init__(self, conn: UpstreamConnection) -> None:
        self.conn = conn
        self.complete = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_upstream_head(self, head: ResponseHead) -> None:
        pass

    def on_upstream_body(self, data: bytes) -> None:
        pass

    def on_upstream_complete(self) -> None:
        self.complete = True
        if not self.done.done():
            self.done.set_result(None)

    def on_upstream_lost(self, reason: str) -> None:
        if not self.done.done():
            self.done.set_result(None)

    def on_upstream_switched(self, rest: bytes) -> None:
        self.conn.close()

    def on_upstream_write_paused(self, paused: bool) -> None:
        pass

    def on_upstream_read_done(self) -> None:
        pass
