"""The open connections of a listener, with a way to wait until they are all gone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class ConnectionSet(Generic[T]):
    __slots__ = ("_empty", "_items")

    def __init__(self) -> None:
        self._items: set[T] = set()
        self._empty = asyncio.Event()

    def add(self, conn: T) -> None:
        self._items.add(conn)

    def discard(self, conn: T) -> None:
        self._items.discard(conn)
        if not self._items:
            self._empty.set()

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._items))

    async def wait_empty(self, timeout: float) -> bool:
        """True once no connection is left; False if ``timeout`` seconds pass first."""
        if not self._items:
            return True
        self._empty.clear()
        try:
            async with asyncio.timeout(timeout):
                await self._empty.wait()
        except TimeoutError:
            return False
        return True
