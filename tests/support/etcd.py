"""A real etcd for tests: Debian's ``etcd-server`` on 127.0.0.1, ephemeral client and peer ports,
a data dir under the test's tmp_path; started healthy, stopped after.

```python
async def test_something(etcd_server: EtcdServer) -> None:
    etcd_server.url          # http://127.0.0.1:PORT (the JSON gateway)
    etcd_server.store_url    # etcd://127.0.0.1:PORT (for `loom controlplane --store`)
    await etcd_server.restart()   # same ports, same data
```

Tests that use it are skipped, saying why, only where no ``etcd`` binary is installed (CI installs
it: see .ci/run).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.proxy import wait_until

ETCD = shutil.which("etcd") or next(
    (p for p in ("/usr/bin/etcd", "/usr/local/bin/etcd") if os.access(p, os.X_OK)), None
)
START_TIMEOUT = 20.0
NOT_INSTALLED = "etcd is not installed (Debian: apt-get install etcd-server; CI installs it in .ci/run)"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EtcdServer:
    def __init__(self, workdir: Path, name: str = "etcd") -> None:
        self.name = name
        self.data_dir = workdir / f"{name}.data"
        self.log_path = workdir / f"{name}.log"
        self.client_port = 0
        self.peer_port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def store_url(self) -> str:
        return f"etcd://127.0.0.1:{self.client_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def start(self) -> EtcdServer:
        assert ETCD is not None, NOT_INSTALLED
        for attempt in range(3):
            if not self.client_port or attempt:
                self.client_port, self.peer_port = _free_port(), _free_port()
            self._spawn()
            try:
                await wait_until(self._healthy_or_exited, START_TIMEOUT, f"{self.name} to be healthy")
            except AssertionError:
                self.kill()
                raise AssertionError(f"{self.name} did not become healthy:\n{self.log()[-4000:]}") from None
            if self.process is not None and self.process.poll() is None:
                return self
            if "address already in use" not in self.log():
                break
            self.process = None  # lost a race for an ephemeral port: try others
        raise AssertionError(f"{self.name} exited at start:\n{self.log()[-4000:]}")

    def _spawn(self) -> None:
        client, peer = f"http://127.0.0.1:{self.client_port}", f"http://127.0.0.1:{self.peer_port}"
        argv = [
            ETCD,
            "--name", self.name,
            "--data-dir", str(self.data_dir),
            "--listen-client-urls", client,
            "--advertise-client-urls", client,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"{self.name}={peer}",
            "--initial-cluster-state", "new",
            "--logger", "zap",
            "--log-outputs", "stderr",
        ]  # fmt: skip
        # A host's ETCD_* settings (e.g. from /etc/default/etcd) must not leak into the test's etcd.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ETCD")}
        self.process = subprocess.Popen(
            argv, stdout=self.log_path.open("ab"), stderr=subprocess.STDOUT, env=env
        )

    async def _healthy_or_exited(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            return True
        try:
            timeout = aiohttp.ClientTimeout(total=2)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(f"{self.url}/health") as response,
            ):
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return False
        return isinstance(body, dict) and body.get("health") == "true"

    async def stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await wait_until(lambda: process.poll() is not None, 15, f"{self.name} to exit")
            except AssertionError:
                process.kill()
        process.wait()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None


@pytest.fixture
async def etcd_server(tmp_path: Path) -> AsyncIterator[EtcdServer]:
    if ETCD is None:
        pytest.skip(NOT_INSTALLED)
    server = EtcdServer(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


__all__ = ["NOT_INSTALLED", "EtcdServer", "etcd_server"]
