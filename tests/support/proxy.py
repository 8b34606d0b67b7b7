"""Run ``loom proxy`` as a real process for a test, and talk to its admin endpoint."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

STARTUP_TIMEOUT = 20.0


async def wait_until(predicate: Any, timeout: float, what: str, interval: float = 0.02) -> None:
    """Poll ``predicate`` (sync or async) until it is true; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


class ChildProcess:
    """A process a test started, by name: stopped with SIGTERM, or killed."""

    name: str
    process: subprocess.Popen[bytes] | None

    async def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait for the exit code."""
        process = self.process
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        await wait_until(lambda: process.poll() is not None, timeout, f"{self.name} to exit")
        self.process = None
        return process.returncode

    def kill(self) -> None:
        """SIGKILL, if still running."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


class ProxyProcess(ChildProcess):
    def __init__(self, workdir: Path, doc: dict[str, Any], name: str = "proxy") -> None:
        self.workdir = workdir
        self.name = name
        self.config_path = workdir / f"{name}.yaml"
        self.ready_path = workdir / f"{name}.ready.json"
        self.log_path = workdir / f"{name}.log"
        self.doc = doc
        self.process: subprocess.Popen[bytes] | None = None
        self.ports: dict[str, int] = {}
        self.admin_port = 0

    def write(self, doc: dict[str, Any]) -> None:
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
        tmp.replace(self.config_path)
        self.doc = doc

    async def start(self) -> ProxyProcess:
        self.write(self.doc)
        self.ready_path.unlink(missing_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "loom.cli.main", "proxy",
                "--config", str(self.config_path),
                "--ready-file", str(self.ready_path),
                "--log-level", "info",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        await wait_until(
            lambda: self.ready_path.exists() or self.process.poll() is not None,  # type: ignore[union-attr]
            STARTUP_TIMEOUT,
            f"{self.name} to start",
        )
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited at start:\n{self.log()}")
        info = json.loads(self.ready_path.read_text())
        self.ports = info["listeners"]
        self.admin_port = info["admin_port"]
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def port(self, listener: str = "outbound") -> int:
        return self.ports[listener]

    def url(self, path: str = "/", listener: str = "outbound") -> str:
        return f"http://127.0.0.1:{self.port(listener)}{path}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def admin(self, path: str, method: str = "GET") -> tuple[int, bytes]:
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, f"http://127.0.0.1:{self.admin_port}{path}") as response,
        ):
            return response.status, await response.read()

    async def admin_json(self, path: str) -> Any:
        status, body = await self.admin(path)
        assert status == 200, body
        return json.loads(body)

    async def metrics(self) -> str:
        return (await self.admin("/metrics"))[1].decode()

    async def version(self) -> str:
        return (await self.admin_json("/config_dump"))["version"]

    async def reload(self, doc: dict[str, Any], *, signal_hup: bool = True) -> None:
        """Write a new snapshot, SIGHUP, and wait until the proxy serves it."""
        self.write(doc)
        if signal_hup:
            os.kill(self.pid, signal.SIGHUP)
        want = str(doc["version"])
        await wait_until(self._serving(want), 10.0, f"{self.name} to serve version {want}")

    def _serving(self, version: str) -> Any:
        async def check() -> bool:
            return await self.version() == version

        return check

    async def wait_exit(self, timeout: float = 20.0) -> int:
        """Wait for the process to exit by itself (after a signal the test sent)."""
        process = self.process
        assert process is not None
        await wait_until(lambda: process.poll() is not None, timeout, f"{self.name} to exit")
        self.process = None
        return process.returncode


class BackendProcess:
    """A test Backend in a separate process, for tests that kill it."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.name = name
        self.port_file = workdir / f"backend-{name}.port"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    async def start(self) -> BackendProcess:
        self.port_file.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.backend_main", self.name, str(self.port_file)]
        )
        await wait_until(self.port_file.exists, STARTUP_TIMEOUT, f"backend {self.name} to start")
        self.port = int(self.port_file.read_text())
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
