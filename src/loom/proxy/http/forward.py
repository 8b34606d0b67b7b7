"""The router stage: send the request to its cluster, retrying within policy and budget.

Outcome of each try → what happens:
  response      → retried if its status is retriable, else sent downstream (commit)
  connect fail  → retried on connect-failure, else 503 UF
  reset         → retried on reset, else 502 UC
  per-try timeout → retried on reset/5xx/gateway-error, else 504 UT
  route timeout (covers every try) → 504 UT, never retried
A retry needs attempts left, a replayable body, and a token from the cluster's retry budget,
so a failing backend sees at most the budgeted extra load — never a retry storm.
"""

from __future__ import annotations

import asyncio
import time

from loom.proxy.cluster import hash_key
from loom.proxy.codec.serialize import CONTINUE_100
from loom.proxy.http.exchange import RESET, RESPONSE, TRY_TIMEOUT, Exchange
from loom.proxy.http.upstream_request import upstream_request_head
from loom.proxy.router import CompiledRetryPolicy
from loom.proxy.upstream.cluster import ClusterRuntime
from loom.proxy.upstream.pool import ConnectFailure, Overflow

CONNECT_FAILED = 10
OVERFLOW = 11

IDEMPOTENT = frozenset((b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"))

_OVERFLOW_BODY = b"upstream connect error or disconnect/reset before headers. reset reason: overflow\n"
_CONNECT_BODY = (
    b"upstream connect error or disconnect/reset before headers. reset reason: connection failure\n"
)
_RESET_BODY = (
    b"upstream connect error or disconnect/reset before headers. reset reason: connection termination\n"
)


async def forward(ex: Exchange) -> None:
    route = ex.route
    assert route is not None
    config = ex.config
    cluster = config.clusters.get(route.pick_cluster())
    if cluster is None:
        ex.reply(503, b"no cluster\n", "NC")
        return
    ex.cluster = cluster
    policy = route.retry or config.default_retry(cluster)
    loop = asyncio.get_running_loop()
    if route.timeout:
        ex.timers.append(loop.call_later(route.timeout, ex.on_route_timeout))
    try:
        await _forward(ex, cluster, policy, loop)
    except asyncio.CancelledError:
        if ex.route_timed_out and not ex.committed:
            ex.abandon_try()
            cluster.stats.timeouts += 1
            ex.reply(504, b"upstream request timeout\n", "UT")
        elif not ex.completed:
            ex.abort("")
        else:
            raise


async def _forward(
    ex: Exchange, cluster: ClusterRuntime, policy: CompiledRetryPolicy | None, loop: asyncio.AbstractEventLoop
) -> None:
    cluster.budget.deposit(loop.time())
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
    key = hash_key(consistent_hash, head, ex.conn.peer_ip) if consistent_hash is not None else None
    avoid = None
    while True:
        endpoint = cluster.pick(key, avoid)
        if endpoint is None:
            ex.reply(503, b"no healthy upstream\n", "UH")
            return
        outcome = await _try(ex, cluster, endpoint, policy, loop)
        status = ex.response_head.status if outcome == RESPONSE else 0  # type: ignore[union-attr]
        if outcome == OVERFLOW:
            ex.reply(503, _OVERFLOW_BODY, "UO")
            return
        cluster.record_outcome(endpoint, status or None)
        if policy is not None and _retriable(policy, outcome, status):
            if ex.retries >= policy.attempts or not ex.body.replayable:
                if ex.retries:
                    ex.add_flag("URX")
            elif cluster.budget.try_withdraw(loop.time()):
                ex.retries += 1
                cluster.stats.retries += 1
                ex.abandon_try()
                avoid = endpoint
                await asyncio.sleep(policy.backoff(ex.retries))
                continue
            else:
                cluster.stats.retry_budget_exhausted += 1
        _finish(ex, cluster, outcome)
        return


async def _try(
    ex: Exchange,
    cluster: ClusterRuntime,
    endpoint: object,
    policy: CompiledRetryPolicy | None,
    loop: asyncio.AbstractEventLoop,
) -> int:
    pool = cluster.pools[endpoint.key]  # type: ignore[attr-defined]
    retry = ex.retries > 0
    for _ in range(2):
        try:
            conn, reused = await pool.acquire()
        except ConnectFailure:
            cluster.stats.connect_failures += 1
            return CONNECT_FAILED
        except Overflow:
            return OVERFLOW
        ex.endpoint = endpoint  # type: ignore[assignment]
        ex.upstream = conn
        conn.sink = ex
        conn.requests += 1
        conn.parser.expect_head_only(ex.head.method == b"HEAD")
        ex.waiter = waiter = loop.create_future()
        ex.try_started = started = time.monotonic()
        endpoint.start_request()  # type: ignore[attr-defined]
        conn.transport.write(ex.upstream_head_bytes)
        ex.body.attach(conn, retry)
        if policy is not None and policy.per_try_timeout:
            # Runs until the response is over: it bounds the body too. abandon_try() cancels it.
            ex.try_timer = loop.call_later(policy.per_try_timeout, ex.on_try_timeout)
        try:
            outcome = await waiter
        finally:
            ex.waiter = None
            now = time.monotonic()
            endpoint.finish_request(now - started, now)  # type: ignore[attr-defined]
        # A pooled connection the upstream had already closed: one transparent retry on a new one.
        if outcome == RESET and reused and ex.response_head is None and ex.head.method in IDEMPOTENT:
            ex.abandon_try()
            retry = True
            continue
        return outcome
    return RESET


def _retriable(policy: CompiledRetryPolicy, outcome: int, status: int) -> bool:
    if outcome == RESPONSE:
        return policy.retry_on_status(status)
    if outcome == CONNECT_FAILED:
        return policy.on_connect_failure
    if outcome == RESET:
        return policy.on_reset
    if outcome == TRY_TIMEOUT:
        return policy.on_reset or policy.retry_on_status(504)
    return False


def _finish(ex: Exchange, cluster: ClusterRuntime, outcome: int) -> None:
    if outcome == RESPONSE:
        ex.commit()
    elif outcome == CONNECT_FAILED:
        ex.reply(503, _CONNECT_BODY, "UF")
    elif outcome == RESET:
        ex.reply(502, _RESET_BODY, "UC")
    elif outcome == TRY_TIMEOUT:
        cluster.stats.timeouts += 1
        ex.reply(504, b"upstream request timeout\n", "UT")
