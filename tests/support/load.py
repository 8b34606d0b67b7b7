"""Bounded load from real HTTP clients: a fixed number of requests at a fixed concurrency."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

import aiohttp


@dataclass
class LoadResult:
    statuses: Counter[int] = field(default_factory=Counter)
    bodies: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.statuses.values()) + len(self.errors)

    @property
    def ok(self) -> int:
        return self.statuses[200]

    def share(self, body: str) -> float:
        return self.bodies[body] / max(1, self.total)


async def run_load(
    url: str,
    requests: int,
    concurrency: int = 16,
    headers: dict[str, str] | None = None,
    method: str = "GET",
    stop: asyncio.Event | None = None,
) -> LoadResult:
    """Send ``requests`` requests (or until ``stop`` is set) over keep-alive connections."""
    result = LoadResult()
    remaining = requests
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0 and not (stop is not None and stop.is_set()):
                remaining -= 1
                try:
                    async with session.request(method, url, headers=headers) as response:
                        body = await response.text()
                        result.statuses[response.status] += 1
                        result.bodies[body.strip()] += 1
                except (TimeoutError, aiohttp.ClientError) as exc:
                    result.errors.append(repr(exc))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return result
