"""Shared fixtures: controllable backends and real ``loom proxy`` processes on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.backend import Backend
from tests.support.proxy import ProxyProcess

BackendFactory = Callable[..., Awaitable[Backend]]
ProxyFactory = Callable[..., Awaitable[ProxyProcess]]


@pytest.fixture
async def backend() -> AsyncIterator[BackendFactory]:
    started: list[Backend] = []

    async def make(name: str = "v1") -> Backend:
        server = await Backend(name).start()
        started.append(server)
        return server

    yield make
    for server in started:
        await server.stop()


@pytest.fixture
async def proxy(tmp_path: Path) -> AsyncIterator[ProxyFactory]:
    started: list[ProxyProcess] = []

    async def make(doc: dict[str, Any], name: str = "proxy") -> ProxyProcess:
        process = ProxyProcess(tmp_path, doc, name)
        started.append(process)
        return await process.start()

    yield make
    for process in started:
        if process.process is not None:
            code = await process.stop()
            assert code == 0, f"{process.name} exited {code}:\n{process.log()}"
