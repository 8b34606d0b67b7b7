"""Simulated sidecars for the control-plane benchmark, all in one asyncio process.

Each watcher does what a sidecar's agent does (docs/controlplane.md): it registers its
workload, then holds the watch ``GET /v1/proxies/{ns}/{name}/snapshot?version=V&wait=S``, and
acknowledges every version it receives with ``POST .../ack {"version": "N", "error": null}``
before watching again; a 404 means the control plane forgot it, and it registers again. Like the
agent it asks for the snapshot gzip-encoded (``Accept-Encoding: gzip``); it reads each snapshot to
its last byte but inflates and parses only the version at its front. Like the agent, each watcher
keeps one connection (mutual TLS with its service account's certificate) for all its calls: a
push costs the control plane no handshake.

The idle workloads (registered, never watching) are refreshed by registering them again, which
changes nothing and counts as a heartbeat: a workload not heard from for 45 s is dropped.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from harness.cp_http import Answer, Channel, HttpFailure
from harness.cp_mesh import WorkloadSpec

VERSION = re.compile(rb'"version"\s*:\s*"([^"]*)"')
"""Versions are opaque strings (``<epoch>.<n>``): compared for equality only."""
HEARTBEAT_AFTER = 20.0
"""Register an idle workload again when it has not been heard of for this long (expiry: 45 s)."""
RETRY_SECONDS = 0.2
ACCEPT_GZIP = (("Accept-Encoding", "gzip"),)


@dataclass(slots=True)
class Delivery:
    """One snapshot version, received and acknowledged."""

    version: str
    first_byte: float
    received: float
    """``time.perf_counter()`` when the snapshot's last byte arrived."""
    acked: float
    """... and when the control plane answered its ACK."""
    size: int


@dataclass
class Watcher:
    spec: WorkloadSpec
    channel: Channel
    wait: float
    fleet: Fleet
    version: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    errors: int = 0
    last_error: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.spec.namespace, self.spec.name)

    @property
    def path(self) -> str:
        return f"/v1/proxies/{self.spec.namespace}/{self.spec.name}"

    def _failed(self, what: str) -> None:
        self.errors += 1
        self.last_error = what
        self.fleet.errors += 1

    async def run(self) -> None:
        while True:
            query = f"?version={self.version}&wait={self.wait:g}"
            try:
                answer = await self.channel.call(
                    "GET", self.path + "/snapshot" + query, timeout=self.wait + 30, headers=ACCEPT_GZIP
                )
            except HttpFailure as exc:
                self._failed(str(exc))
                await asyncio.sleep(RETRY_SECONDS)
                continue
            if answer.status == 304:
                continue
            if answer.status == 404:
                self.fleet.reregistered += 1
                await self.fleet.register(self.spec)
                continue
            if answer.status != 200:
                self._failed(f"watch: status {answer.status}: {answer.head[:120]!r}")
                await asyncio.sleep(RETRY_SECONDS)
                continue
            await self._acknowledge(answer)

    async def _acknowledge(self, answer: Answer) -> None:
        front = answer.front()
        found = VERSION.search(front)
        if found is None:
            self._failed(f"no version at the front of the snapshot: {front[:120]!r}")
            await asyncio.sleep(RETRY_SECONDS)
            return
        version = found.group(1).decode()
        body = json.dumps({"version": version, "error": None}).encode()
        try:
            ack = await self.channel.call("POST", self.path + "/ack", body)
        except HttpFailure as exc:
            self._failed(f"ack: {exc}")
            return  # watch again with the old version: the same snapshot comes back, ACKed then
        if ack.status != 200:
            self._failed(f"ack: status {ack.status}: {ack.head[:120]!r}")
            return
        self.version = version
        delivery = Delivery(version, answer.first_byte, answer.done, ack.done, answer.size)
        self.deliveries.append(delivery)
        self.fleet.acknowledged(self, delivery)


@dataclass
class Round:
    """Waiting for every watcher to acknowledge a version newer than the one it had."""

    baseline: dict[tuple[str, str], str]
    started: float
    moved: dict[tuple[str, str], Delivery] = field(default_factory=dict)
    all_moved: asyncio.Event = field(default_factory=asyncio.Event)


class Fleet:
    def __init__(
        self,
        specs: Sequence[WorkloadSpec],
        port: int,
        wait: float,
        identities: Mapping[tuple[str, str], ssl.SSLContext],
        bundle: ssl.SSLContext,
        concurrency: int = 64,
    ) -> None:
        self.port = port
        self.specs = list(specs)
        self.identities = identities
        self.bundle = bundle
        self.watchers = [
            Watcher(s, Channel(port, identities[s.account]), wait, self) for s in specs if s.watches
        ]
        self._idle_channels: dict[tuple[str, str], list[Channel]] = {}
        self._registering: list[Channel] = []
        self.idle = [s for s in specs if not s.watches]
        self.touched: dict[tuple[str, str], float] = {}
        self.errors = 0
        self.reregistered = 0
        self.heartbeats = 0
        self.heartbeats_paused = False
        self._limit = asyncio.Semaphore(concurrency)
        self._refreshing = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._round: Round | None = None
        self._first = asyncio.Event()
        self._with_first = 0

    # registering -------------------------------------------------------------------------

    @property
    def handshakes(self) -> int:
        """Connections (TLS handshakes) the watchers and registrations made so far."""
        return sum(w.channel.handshakes for w in self.watchers) + sum(c.handshakes for c in self._registering)

    async def _call_as(self, spec: WorkloadSpec, method: str, path: str, body: bytes) -> Answer:
        """One call with the workload's identity, on a kept-alive connection of its account."""
        idle = self._idle_channels.setdefault(spec.account, [])
        if idle:
            channel = idle.pop()
        else:
            channel = Channel(self.port, self.identities[spec.account])
            self._registering.append(channel)
        try:
            return await channel.call(method, path, body)
        finally:
            idle.append(channel)

    async def register(self, spec: WorkloadSpec) -> None:
        for attempt in range(20):
            try:
                async with self._limit:
                    answer = await self._call_as(spec, "POST", "/v1/workloads", spec.body)
            except HttpFailure as exc:
                error = str(exc)
            else:
                if answer.status == 200:
                    self.touched[(spec.namespace, spec.name)] = time.monotonic()
                    return
                error = f"status {answer.status}: {answer.head[:120]!r}"
            self.errors += 1
            await asyncio.sleep(RETRY_SECONDS * (attempt + 1))
        raise HttpFailure(f"could not register {spec.namespace}/{spec.name}: {error}")

    async def register_all(self) -> float:
        """Register every workload (the idle ones first); the seconds it took."""
        started = time.perf_counter()
        await asyncio.gather(*(self.register(s) for s in self.idle))
        await asyncio.gather(*(self.register(w.spec) for w in self.watchers))
        return time.perf_counter() - started

    async def heartbeat(self) -> None:
        """Keep the idle workloads registered (outside the measured windows)."""
        while True:
            await asyncio.sleep(1.0)
            async with self._refreshing:
                if not self.heartbeats_paused:
                    await self._refresh_idle(HEARTBEAT_AFTER)

    async def pause_heartbeats(self, fresh_for: float) -> None:
        """Register again the idle workloads not heard of for ``fresh_for`` seconds, then stop the
        heartbeats (none is in flight when this returns) until ``resume_heartbeats``."""
        async with self._refreshing:
            await self._refresh_idle(fresh_for)
            self.heartbeats_paused = True

    def resume_heartbeats(self) -> None:
        self.heartbeats_paused = False

    async def _refresh_idle(self, older_than: float) -> None:
        deadline = time.monotonic() - older_than
        due = [s for s in self.idle if self.touched.get((s.namespace, s.name), 0.0) < deadline]
        if due:
            await asyncio.gather(*(self.register(s) for s in due))
            self.heartbeats += len(due)

    # watching ----------------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(w.run()) for w in self.watchers]
        self._tasks.append(loop.create_task(self.heartbeat()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for channel in [*(w.channel for w in self.watchers), *self._registering]:
            channel.close()

    def acknowledged(self, watcher: Watcher, delivery: Delivery) -> None:
        if len(watcher.deliveries) == 1:
            self._with_first += 1
            if self._with_first == len(self.watchers):
                self._first.set()
        current = self._round
        if current is None or watcher.key in current.moved:
            return
        if delivery.version != current.baseline.get(watcher.key) and delivery.acked >= current.started:
            current.moved[watcher.key] = delivery
            if len(current.moved) == len(self.watchers):
                current.all_moved.set()

    async def first_snapshots(self, timeout: float) -> bool:
        """Wait until every watcher has acknowledged a snapshot; False on timeout."""
        try:
            async with asyncio.timeout(timeout):
                await self._first.wait()
        except TimeoutError:
            return False
        return True

    def current_versions(self) -> dict[tuple[str, str], str]:
        return {w.key: w.version for w in self.watchers}

    def begin_round(self, started: float) -> Round:
        self._round = Round(self.current_versions(), started)
        return self._round

    async def finish_round(self, timeout: float) -> Round:
        """Wait until every watcher has acknowledged a newer version (or ``timeout`` passes)."""
        current = self._round
        assert current is not None
        try:
            async with asyncio.timeout(timeout):
                await current.all_moved.wait()
        except TimeoutError:
            pass
        self._round = None
        return current

    async def settled(self, timeout: float, quiet: float = 1.0) -> bool:
        """True once every watcher is SYNCED on the version it holds and nothing changed for
        ``quiet`` seconds (no recompile in flight); False after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        previous: dict[tuple[str, str], str] | None = None
        keys = {w.key for w in self.watchers}
        while time.monotonic() < deadline:
            rows = await _get_json(self.port, "/v1/proxy-status", self.bundle)
            versions = {
                (str(r["namespace"]), str(r["workload"])): str(r["version"])
                for r in rows
                if (r["namespace"], r["workload"]) in keys
            }
            synced = all(
                r["status"] == "SYNCED" for r in rows if (r["namespace"], r["workload"]) in keys
            ) and len(versions) == len(keys)
            held = {w.key: w.version for w in self.watchers}
            if synced and versions == held and versions == previous:
                return True
            previous = versions if synced and versions == held else None
            await asyncio.sleep(quiet)
        return False


async def _get_json(port: int, path: str, context: ssl.SSLContext) -> list[dict[str, object]]:
    """GET a JSON document whole (the client above keeps only the front of bodies)."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="127.0.0.1"
    )
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        data = await reader.read()
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    if b"chunked" in head.lower():
        body = _dechunk(body)
    result: list[dict[str, object]] = json.loads(body)
    return result


def _dechunk(body: bytes) -> bytes:
    out, pos = [], 0
    while True:
        end = body.index(b"\r\n", pos)
        size = int(body[pos:end].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(body[end + 2 : end + 2 + size])
        pos = end + 2 + size + 2
