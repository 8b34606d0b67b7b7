"""One request and its response as they cross the proxy.

The exchange is the upstream connection's sink while a try is in flight: it collects the
response head for the forwarding stage to decide on (commit or retry), then streams the body
straight from the upstream transport to the downstream one. ``complete()`` is the single
place a request ends: timers are cancelled, the upstream connection is pooled or closed,
telemetry is recorded and the downstream connection moves on to its next request.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from loom.proxy.codec.head import RequestHead, ResponseHead
from loom.proxy.codec.serialize import LAST_CHUNK, chunk, end_to_end, response_head, simple_response
from loom.proxy.http.body import RequestBody
from loom.proxy.telemetry.flags import join as join_flags
from loom.proxy.telemetry.flags import split as split_flags

if TYPE_CHECKING:
    from loom.proxy.authz.engine import Decision
    from loom.proxy.cluster import EndpointState
    from loom.proxy.config import ProxyConfig
    from loom.proxy.http.downstream import DownstreamConnection
    from loom.proxy.router import CompiledRetryPolicy, CompiledRoute
    from loom.proxy.tracing.span import Span
    from loom.proxy.upstream.cluster import ClusterRuntime
    from loom.proxy.upstream.connection import UpstreamConnection

# How a try ended, as seen by the forwarding stage.
RESPONSE = 1
RESET = 2
TRY_TIMEOUT = 3
CONNECT_FAILED = 4


class Exchange:
    __slots__ = (
        "admitted",
        "authz",
        "awaiting",
        "body",
        "cluster",
        "committed",
        "completed",
        "config",
        "conn",
        "connecting",
        "delay",
        "early",
        "endpoint",
        "flags",
        "hash_key",
        "head",
        "head_pending",
        "jwt_claims",
        "out_chunked",
        "policy",
        "request_id",
        "request_principal",
        "resent",
        "response_bytes",
        "response_head",
        "retries",
        "reused",
        "route",
        "set_cookie",
        "span",
        "start",
        "status",
        "switched_rest",
        "timers",
        "try_started",
        "try_timer",
        "upstream",
        "upstream_done",
        "upstream_head_bytes",
    )

    def __init__(self, conn: DownstreamConnection, head: RequestHead, config: ProxyConfig) -> None:
        self.conn = conn
        self.head = head
        self.config = config
        self.body = RequestBody(conn, head.chunked, not head.has_body)
        self.start = time.monotonic()
        self.route: CompiledRoute | None = None
        self.cluster: ClusterRuntime | None = None
        self.endpoint: EndpointState | None = None
        self.upstream: UpstreamConnection | None = None
        self.upstream_head_bytes = b""
        self.response_head: ResponseHead | None = None
        self.early: list[bytes] = []
        self.timers: list[asyncio.TimerHandle] = []
        self.connecting: asyncio.Task[None] | None = None
        self.policy: CompiledRetryPolicy | None = None
        self.hash_key: bytes | None = None
        self.status = 0
        self.flags = ""
        self.request_id = b""
        self.response_bytes = 0
        self.retries = 0
        self.delay = 0.0
        self.try_started = 0.0
        self.try_timer: asyncio.TimerHandle | None = None
        self.switched_rest = b""
        self.committed = False
        self.completed = False
        self.upstream_done = False
        self.out_chunked = False
        self.admitted = False
        self.awaiting = False
        """A try is in flight and has no answer yet."""
        self.head_pending = False
        """A response head arrived during the current upstream read; judged when the read ends."""
        self.reused = False
        self.resent = False
        self.set_cookie = b""
        """A Set-Cookie for the response: the affinity cookie the proxy minted for this client."""
        self.request_principal: str | None = None
        """``iss/sub`` of a verified JWT (RequestAuthentication), as Istio's requestPrincipals."""
        self.jwt_claims: dict[str, object] | None = None
        self.authz: Decision | None = None
        self.span: Span | None = None
        """This request's span, when it is sampled (``loom.proxy.tracing``)."""
        """The authorization decision (inbound, with policies): a denial's response code details
        and the AUDIT policy that matched go to the access log."""

    def add_flag(self, flag: str) -> None:
        self.flags = join_flags((*split_flags(self.flags), flag)) if self.flags else flag

    # local replies -----------------------------------------------------------------------

    def reply(
        self, status: int, body: bytes, flag: str = "", extra: list[tuple[bytes, bytes]] | None = None
    ) -> bool:
        """Answer locally (errors, redirects, direct responses, faults) and end the exchange."""
        if self.committed:
            self.abort(flag)
            return True
        if flag:
            self.add_flag(flag)
        self.status = status
        self.committed = True
        close = not self.keep_alive()
        if self.head.method == b"HEAD":
            payload = simple_response(status, b"", close=close, extra=extra)
        else:
            payload = simple_response(status, body, close=close, extra=extra)
        self.response_bytes = len(body)
        self.conn.write(payload)
        self.complete()
        return True

    def keep_alive(self) -> bool:
        conn = self.conn
        return self.head.keep_alive and self.body.done and not conn.closing and not conn.draining

    # the response from upstream ------------------------------------------------------------

    def commit(self) -> None:
        """Send the upstream's response head downstream; the body follows as it arrives."""
        head = self.response_head
        assert head is not None
        self.committed = True
        self.status = head.status
        headers = end_to_end(head.headers, head.hmap.get(b"connection"), head.hmap)
        route = self.route
        if route is not None and route.response_headers is not None:
            route.response_headers.apply(headers)
        if self.set_cookie:
            headers.append((b"set-cookie", self.set_cookie))
        if head.status == 101:
            headers += [(b"connection", b"upgrade"), (b"upgrade", head.hmap.get(b"upgrade", b""))]
            self.conn.write(response_head(101, headers, head.reason))
            self.start_tunnel()
            return
        if head.content_length is None and self.head.method != b"HEAD":
            if self.head.version == b"1.1":
                headers.append((b"transfer-encoding", b"chunked"))
                self.out_chunked = True
            else:
                self.conn.closing = True
        if not self.keep_alive():
            headers.append((b"connection", b"close"))
        elif self.head.version == b"1.0":
            headers.append((b"connection", b"keep-alive"))
        out = response_head(head.status, headers, head.reason)
        if self.early:
            # Usually the whole response came in one read: send head and body in one write.
            body = b"".join(self.early)
            self.early = []
            self.response_bytes += len(body)
            out += chunk(body) if self.out_chunked else body
        if self.upstream_done:
            if self.out_chunked:
                out += LAST_CHUNK
                self.out_chunked = False
            self.conn.write(out)
            self.finish_response()
        else:
            self.conn.write(out)

    def write_body(self, data: bytes) -> None:
        self.response_bytes += len(data)
        self.conn.write(chunk(data) if self.out_chunked else data)

    def finish_response(self) -> None:
        if self.out_chunked:
            self.conn.write(LAST_CHUNK)
        self.release_upstream()
        self.complete()

    def start_tunnel(self) -> None:
        upstream = self.upstream
        assert upstream is not None
        self.upstream = None
        self.conn.start_tunnel(upstream, self.switched_rest)
        self.complete()

    # upstream sink (UpstreamConnection calls these) ------------------------------------------

    def on_upstream_head(self, head: ResponseHead) -> None:
        if head.status < 200 and head.status != 101:
            return  # informational (we answer 100-continue ourselves)
        self.response_head = head
        if self.awaiting:
            self.head_pending = True

    def on_upstream_body(self, data: bytes) -> None:
        if self.committed:
            self.write_body(data)
        else:
            self.early.append(data)

    def on_upstream_complete(self) -> None:
        if self.response_head is None:
            return  # an informational response ended
        self.upstream_done = True
        if self.committed and not self.completed:
            self.finish_response()

    def on_upstream_read_done(self) -> None:
        if self.head_pending:
            self.head_pending = False
            _forward.try_ended(self, RESPONSE)

    def on_upstream_lost(self, reason: str) -> None:
        self.upstream = None
        if self.head_pending:
            self.head_pending = False
            _forward.try_ended(self, RESPONSE)
        if self.committed:
            if not self.completed:
                self.abort("UC")
        elif self.awaiting:
            _forward.try_ended(self, RESET)

    def on_upstream_switched(self, rest: bytes) -> None:
        self.switched_rest += rest
        self.upstream_done = True

    def on_upstream_write_paused(self, paused: bool) -> None:
        conn = self.conn
        if paused:
            conn.pause(conn.PAUSE_UPSTREAM)
        else:
            conn.resume(conn.PAUSE_UPSTREAM)

    # ending ------------------------------------------------------------------------------

    def abandon_try(self) -> None:
        """Give up the current try's connection: pool it if its response is over, else close it."""
        if self.try_timer is not None:
            self.try_timer.cancel()
            self.try_timer = None
        if self.awaiting:
            self.awaiting = False
            if self.endpoint is not None:
                now = time.monotonic()
                self.endpoint.finish_request(now - self.try_started, now)
        self.head_pending = False
        conn = self.upstream
        self.upstream = None
        self.body.detach()
        if conn is not None:
            if self.upstream_done and self.body.done:
                conn.pool.release(conn)
            else:
                conn.close()
        self.response_head = None
        self.early = []
        self.upstream_done = False

    def release_upstream(self) -> None:
        conn = self.upstream
        if conn is None:
            return
        self.upstream = None
        self.body.detach()
        if self.body.done:
            conn.pool.release(conn)
        else:
            conn.close()

    def stop_connecting(self) -> None:
        task, self.connecting = self.connecting, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def abort(self, flag: str) -> None:
        """The response cannot be finished: reset both sides."""
        if flag:
            self.add_flag(flag)
        self.stop_connecting()
        conn = self.upstream
        self.upstream = None
        if conn is not None:
            conn.abort()
        self.conn.closing = True
        self.complete()
        self.conn.abort()

    def complete(self) -> None:
        if self.completed:
            return
        self.completed = True
        for timer in self.timers:
            timer.cancel()
        if self.try_timer is not None:
            self.try_timer.cancel()
        if self.connecting is not None:
            self.stop_connecting()
        if self.upstream is not None or self.awaiting:
            self.abandon_try()
        if self.admitted and self.cluster is not None:
            self.cluster.request_done()
        self.config.record(self)
        self.conn.exchange_finished(self)


# The forwarding stage drives this class and this class reports back to it; imported last so
# that either module may be imported first.
from loom.proxy.http import forward as _forward  # noqa: E402
