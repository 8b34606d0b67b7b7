"""A small etcd v3 client over etcd's JSON gateway (plain HTTP on the client port).

etcd 3.4 and later serve their gRPC API as JSON under ``/v3/``: keys and values travel
base64-encoded, 64-bit numbers as strings. A watch is one long ``POST /v3/watch`` whose response
streams one JSON object per line. This client covers what the control plane's store needs:

```python
client = EtcdClient(["http://127.0.0.1:2379"])
revision = await client.put("/loom/resources/Service/default/catalog", text)
await client.put_many({key: text, ...})           # one transaction: one revision
found = await client.get_prefix("/loom/resources/")   # found.kvs, found.revision
await client.delete(key)
async for events in client.watch_prefix("/loom/resources/", found.revision + 1):
    ...                                            # reconnects by itself; EtcdCompacted if too old
await client.close()
```

With several endpoints (the members of an etcd cluster), a request that cannot reach one member
is sent to the next. No TLS and no authentication yet.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aiohttp

log = logging.getLogger("loom.controlplane.etcd")

API = "/v3"
REQUEST_TIMEOUT = 5.0
WATCH_IDLE_SECONDS = 60.0
"""A watch that has said nothing for this long is opened again (from where it was): a member
that vanished without closing the connection is noticed."""
BACKOFF_START = 0.1
BACKOFF_MAX = 5.0
MAX_TXN_OPS = 128
"""etcd's default ``--max-txn-ops``; ``put_many`` splits larger writes."""


class EtcdError(Exception):
    """etcd refused a request (the message is etcd's)."""


class EtcdUnavailable(EtcdError):
    """No endpoint could be reached."""


class EtcdCompacted(EtcdError):
    """A watch asked for revisions that etcd has compacted away: read everything again."""

    def __init__(self, compact_revision: int) -> None:
        super().__init__(f"revisions before {compact_revision} have been compacted")
        self.compact_revision = compact_revision


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int


@dataclass(frozen=True, slots=True)
class RangeResult:
    kvs: tuple[KeyValue, ...]
    revision: int
    """The store's revision when it was read: watch from ``revision + 1`` to miss nothing."""


@dataclass(frozen=True, slots=True)
class Event:
    type: Literal["PUT", "DELETE"]
    key: str
    value: bytes
    """Empty for a DELETE."""
    revision: int


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix`` (etcd's ``range_end``)."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"  # every key


def _b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def _kv(item: Mapping[str, Any]) -> KeyValue:
    return KeyValue(
        key=_unb64(item.get("key")).decode("utf-8", "replace"),
        value=_unb64(item.get("value")),
        mod_revision=int(item.get("mod_revision") or 0),
    )


def _event(item: Mapping[str, Any]) -> Event:
    kv = item.get("kv") or {}
    # The gateway omits enum fields at their default: no "type" means PUT.
    kind: Literal["PUT", "DELETE"] = "DELETE" if item.get("type") == "DELETE" else "PUT"
    return Event(
        type=kind,
        key=_unb64(kv.get("key")).decode("utf-8", "replace"),
        value=_unb64(kv.get("value")),
        revision=int(kv.get("mod_revision") or 0),
    )


def _header_revision(body: Mapping[str, Any]) -> int:
    return int((body.get("header") or {}).get("revision") or 0)


def _error_text(body: Any, status: int) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):  # a streamed error: {"error": {"message": ...}}
            return str(error.get("message") or error)
        if body.get("message") or error:
            return str(body.get("message") or error)
    return f"HTTP {status}"


class Backoff:
    """Jittered exponential backoff: 0.1 s doubling to 5 s."""

    def __init__(self, start: float = BACKOFF_START, cap: float = BACKOFF_MAX) -> None:
        self.start = start
        self.cap = cap
        self.current = start

    def next(self) -> float:
        delay = self.current
        self.current = min(self.cap, self.current * 2)
        return delay * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.current = self.start


class EtcdClient:
    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        timeout: float = REQUEST_TIMEOUT,
        watch_idle: float = WATCH_IDLE_SECONDS,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one etcd endpoint is needed")
        self.endpoints = [e.rstrip("/") for e in endpoints]
        self.timeout = timeout
        self.watch_idle = watch_idle
        self._current = 0
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> EtcdClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # key-value ---------------------------------------------------------------------------

    async def put(self, key: str, value: bytes | str) -> int:
        """Write one key; the revision of the write."""
        body = await self._call("/kv/put", {"key": _b64(key), "value": _b64(value)})
        return _header_revision(body)

    async def put_many(self, items: Mapping[str, bytes | str]) -> int:
        """Write several keys in one transaction (one revision per ``MAX_TXN_OPS`` keys)."""
        pairs = list(items.items())
        revision = 0
        for start in range(0, len(pairs), MAX_TXN_OPS):
            ops = [
                {"request_put": {"key": _b64(key), "value": _b64(value)}}
                for key, value in pairs[start : start + MAX_TXN_OPS]
            ]
            revision = _header_revision(await self._call("/kv/txn", {"success": ops}))
        return revision

    async def get_prefix(self, prefix: str) -> RangeResult:
        """Every key starting with ``prefix``, in key order, and the revision read at."""
        raw = prefix.encode()
        body = await self._call("/kv/range", {"key": _b64(raw), "range_end": _b64(prefix_end(raw))})
        kvs = tuple(_kv(item) for item in body.get("kvs") or ())
        return RangeResult(kvs, _header_revision(body))

    async def get(self, key: str) -> KeyValue | None:
        body = await self._call("/kv/range", {"key": _b64(key)})
        kvs = body.get("kvs") or ()
        return _kv(kvs[0]) if kvs else None

    async def delete(self, key: str) -> bool:
        """Delete one key; False when there was no such key."""
        body = await self._call("/kv/deleterange", {"key": _b64(key)})
        return int(body.get("deleted") or 0) > 0

    async def delete_prefix(self, prefix: str) -> int:
        raw = prefix.encode()
        body = await self._call("/kv/deleterange", {"key": _b64(raw), "range_end": _b64(prefix_end(raw))})
        return int(body.get("deleted") or 0)

    # watch -------------------------------------------------------------------------------

    async def watch_prefix(self, prefix: str, start_revision: int) -> AsyncIterator[tuple[Event, ...]]:
        """The changes under ``prefix`` from ``start_revision`` on, one batch per etcd revision
        group. A lost connection is opened again (with backoff, on the next endpoint) from the
        revision after the last one seen, so no change is missed or repeated. Raises
        ``EtcdCompacted`` when etcd no longer has the revisions asked for."""
        next_revision = start_revision
        backoff = Backoff()
        lost = False
        while True:
            endpoint = self.endpoints[self._current]
            answered = False
            try:
                async for revision, events in self._watch_once(endpoint, prefix, next_revision):
                    if lost:
                        log.info("etcd watch on %s resumed from revision %d", endpoint, next_revision)
                        lost = False
                    answered = True
                    backoff.reset()
                    next_revision = max(next_revision, revision + 1)
                    if events:
                        yield events
                # The stream ended (the member went away cleanly): open it again.
            except EtcdCompacted:
                raise
            except (aiohttp.ClientError, TimeoutError, EtcdError, ValueError) as exc:
                if answered and isinstance(exc, TimeoutError):
                    log.debug("etcd watch idle for %.0fs: opening it again", self.watch_idle)
                    continue
                # Said once per outage; the last good configuration stays in force meanwhile.
                report = log.debug if lost else log.warning
                report("etcd watch on %s lost (%s); reconnecting", endpoint, exc or type(exc).__name__)
                lost = True
                self._rotate(endpoint)
            await asyncio.sleep(backoff.next())

    async def _watch_once(
        self, endpoint: str, prefix: str, start_revision: int
    ) -> AsyncIterator[tuple[int, tuple[Event, ...]]]:
        raw = prefix.encode()
        request = {
            "create_request": {
                "key": _b64(raw),
                "range_end": _b64(prefix_end(raw)),
                "start_revision": str(start_revision),
                "progress_notify": True,
            }
        }
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout, sock_read=self.watch_idle)
        session = self._get_session()
        async with session.post(f"{endpoint}{API}/watch", json=request, timeout=timeout) as response:
            if response.status != 200:
                raise EtcdError(_error_text(await _json_or_none(response), response.status))
            pending = bytearray()
            async for chunk in response.content.iter_any():
                pending += chunk
                while (end := pending.find(b"\n")) >= 0:
                    line = bytes(pending[:end])
                    del pending[: end + 1]
                    if line.strip():
                        yield self._watch_message(line, start_revision)

    @staticmethod
    def _watch_message(line: bytes, start_revision: int) -> tuple[int, tuple[Event, ...]]:
        message = json.loads(line)
        if "error" in message:
            raise EtcdError(_error_text(message, 0))
        result = message.get("result") or {}
        compacted = int(result.get("compact_revision") or 0)
        if result.get("canceled"):
            if compacted:
                raise EtcdCompacted(compacted)
            raise EtcdError(f"the watch was cancelled: {result.get('cancel_reason') or 'no reason given'}")
        events = tuple(_event(item) for item in result.get("events") or ())
        if events:
            return events[-1].revision, events
        if result.get("created"):
            # Changes from start_revision on are still to come: nothing seen yet.
            return start_revision - 1, ()
        # A progress notification: every change up to the header's revision has been sent.
        return _header_revision(result), ()

    # transport ---------------------------------------------------------------------------

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout, sock_connect=self.timeout)
            )
        return self._session

    def _rotate(self, failed: str) -> None:
        if self.endpoints[self._current] == failed:
            self._current = (self._current + 1) % len(self.endpoints)

    async def _call(self, path: str, request: Mapping[str, Any]) -> dict[str, Any]:
        """POST one request, trying each endpoint once from the current one."""
        session = self._get_session()
        failures = []
        for _ in range(len(self.endpoints)):
            endpoint = self.endpoints[self._current]
            try:
                async with session.post(f"{endpoint}{API}{path}", json=request) as response:
                    body = await _json_or_none(response)
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                failures.append(f"{endpoint}: {exc or type(exc).__name__}")
                self._rotate(endpoint)
                continue
            if status != 200 or not isinstance(body, dict):
                raise EtcdError(f"etcd {path}: {_error_text(body, status)}")
            return body
        raise EtcdUnavailable("cannot reach etcd: " + "; ".join(failures))


async def _json_or_none(response: aiohttp.ClientResponse) -> Any:
    try:
        return await response.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError):
        return None
