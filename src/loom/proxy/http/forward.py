"""The router stage: send the request to its cluster, retrying within policy and budget.

Callback-driven: on the fast path (a pooled connection is idle) the request goes out from the
downstream read that completed it, and the response is judged from the upstream read that
brought it — no task, no future, no extra trip through the event loop. A coroutine runs only
when a connection must be opened or waited for.

Outcome of each try → what happens:
  response        → retried if its status is retriable, else sent downstream (commit)
  connect failure → retried on connect-failure, else 503 UF
  reset           → retried on reset, else 502 UC
  per-try timeout → retried on reset/5xx/gateway-error, else 504 UT
  route timeout (covers every try) → 504 UT, never retried
A retry needs attempts left, a replayable body, and a token from the cluster's retry budget,
so a failing backend sees at most the budgeted extra load — never a retry storm.
"""

from __future__ import annotations

import time

from loom.proxy.cluster import EndpointState, hash_key, new_hash_cookie
from loom.proxy.codec.serialize import CONTINUE_100
from loom.proxy.http.exchange import CONNECT_FAILED, RESET, RESPONSE, TRY_TIMEOUT, Exchange
from loom.proxy.http.upstream_request import upstream_request_head
from loom.proxy.router import CompiledRetryPolicy
from loom.proxy.upstream.connection import UpstreamConnection
from loom.proxy.upstream.pool import ConnectFailure, EndpointPool, Overflow

IDEMPOTENT = frozenset((b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"))

_RESET_BEFORE_HEADERS = b"upstream connect error or disconnect/reset before headers. reset reason: "
_OVERFLOW_BODY = _RESET_BEFORE_HEADERS + b"overflow\n"
_CONNECT_BODY = _RESET_BEFORE_HEADERS + b"connection failure\n"
_RESET_BODY = _RESET_BEFORE_HEADERS + b"connection termination\n"


def forward(ex: Exchange) -> None:
    route = ex.route
    assert route is not None
    config = ex.config
    cluster = config.clusters.get(route.pick_cluster())
    if cluster is None:
        ex.reply(503, b"no cluster\n", "NC")
        return
    ex.cluster = cluster
    ex.policy = route.retry or config.default_retry(cluster)
    if route.timeout:
        ex.timers.append(ex.conn.loop.call_later(route.timeout, on_route_timeout, ex))
    cluster.budget.deposit(time.monotonic())
    cluster.stats.requests += 1
    try:
        cluster.admit_request()
    except Overflow:
        ex.reply(503, _OVERFLOW_BODY, "UO")
        return
    ex.admitted = True
    head = ex.head
    ex.upstream_head_bytes = upstream_request_head(head)
    if head.expect_continue and not ex.body.done:
        ex.conn.write(CONTINUE_100)
    consistent_hash = cluster.config.consistent_hash
    if consistent_hash is not None:
        ex.hash_key = hash_key(consistent_hash, head, ex.conn.peer_ip)
        cookie = consistent_hash.cookie
        if ex.hash_key is None and cookie is not None and cookie.ttl is not None:
            ex.hash_key, ex.set_cookie = new_hash_cookie(cookie)
    next_try(ex, None)


def next_try(ex: Exchange, avoid: EndpointState | None) -> None:
    if ex.completed:
        return
    cluster = ex.cluster
    assert cluster is not None
    endpoint = cluster.pick(ex.hash_key, avoid)
    if endpoint is None:
        ex.reply(503, b"no healthy upstream\n", "UH")
        return
    ex.endpoint = endpoint
    pool = cluster.pools[endpoint.key]
    conn = pool.take_idle()
    if conn is not None:
        send(ex, conn, reused=True)
    else:
        connect_in_background(ex, pool)


def connect_in_background(ex: Exchange, pool: EndpointPool) -> None:
    ex.connecting = ex.conn.loop.create_task(_connect_then_send(ex, pool))


async def _connect_then_send(ex: Exchange, pool: EndpointPool) -> None:
    try:
        conn, reused = await pool.acquire()
    except ConnectFailure:
        ex.connecting = None
        pool.cluster.stats.connect_failures += 1
        try_ended(ex, CONNECT_FAILED)
        return
    except Overflow:
        ex.connecting = None
        ex.reply(503, _OVERFLOW_BODY, "UO")
        return
    ex.connecting = None
    if ex.completed:
        pool.release(conn)
        return
    send(ex, conn, reused)


def send(ex: Exchange, conn: UpstreamConnection, reused: bool) -> None:
    """Put the request on ``conn``: head, the body so far, and the rest as it arrives."""
    endpoint = ex.endpoint
    assert endpoint is not None
    ex.upstream = conn
    ex.reused = reused
    conn.sink = ex
    conn.requests += 1
    conn.parser.expect_head_only(ex.head.method == b"HEAD")
    ex.try_started = time.monotonic()
    endpoint.start_request()
    ex.awaiting = True
    ex.body.attach(conn, ex.upstream_head_bytes, retry=ex.retries > 0 or ex.resent)
    policy = ex.policy
    if policy is not None and policy.per_try_timeout:
        # Runs until the response is over: it bounds the body too. abandon_try() cancels it.
        ex.try_timer = ex.conn.loop.call_later(policy.per_try_timeout, on_try_timeout, ex)


def try_ended(ex: Exchange, outcome: int) -> None:
    """A try has its answer (a response head) or has failed: commit, retry, or reply."""
    ex.awaiting = False
    endpoint = ex.endpoint
    assert endpoint is not None and ex.cluster is not None
    now = time.monotonic()
    if outcome != CONNECT_FAILED:
        endpoint.finish_request(now - ex.try_started, now)
    # A pooled connection the upstream had already closed: once, transparently, on a new one.
    stale = outcome == RESET and ex.reused and ex.response_head is None and not ex.resent
    if stale and ex.head.method in IDEMPOTENT and ex.body.replayable:
        ex.resent = True
        ex.abandon_try()
        connect_in_background(ex, ex.cluster.pools[endpoint.key])
        return
    cluster = ex.cluster
    status = ex.response_head.status if outcome == RESPONSE else 0  # type: ignore[union-attr]
    cluster.record_outcome(endpoint, status or None)
    policy = ex.policy
    if policy is not None and _retriable(policy, outcome, status):
        if ex.retries >= policy.attempts or not ex.body.replayable:
            if ex.retries:
                ex.add_flag("URX")
        elif cluster.budget.try_withdraw(now):
            ex.retries += 1
            cluster.stats.retries += 1
            ex.abandon_try()
            ex.timers.append(ex.conn.loop.call_later(policy.backoff(ex.retries), next_try, ex, endpoint))
            return
        else:
            cluster.stats.retry_budget_exhausted += 1
    if outcome == RESPONSE:
        ex.commit()
    elif outcome == CONNECT_FAILED:
        ex.reply(503, _CONNECT_BODY, "UF")
    elif outcome == RESET:
        ex.reply(502, _RESET_BODY, "UC")
    else:
        cluster.stats.timeouts += 1
        ex.reply(504, b"upstream request timeout\n", "UT")


def _retriable(policy: CompiledRetryPolicy, outcome: int, status: int) -> bool:
    if outcome == RESPONSE:
        return policy.retry_on_status(status)
    if outcome == CONNECT_FAILED:
        return policy.on_connect_failure
    if outcome == RESET:
        return policy.on_reset
    return policy.on_reset or policy.retry_on_status(504)


def on_try_timeout(ex: Exchange) -> None:
    if ex.awaiting:
        try_ended(ex, TRY_TIMEOUT)
    elif ex.committed and not ex.completed:
        ex.abort("UT")


def on_route_timeout(ex: Exchange) -> None:
    if ex.completed:
        return
    if ex.committed:
        ex.abort("UT")
        return
    ex.stop_connecting()
    ex.abandon_try()
    if ex.cluster is not None:
        ex.cluster.stats.timeouts += 1
    ex.reply(504, b"upstream request timeout\n", "UT")
