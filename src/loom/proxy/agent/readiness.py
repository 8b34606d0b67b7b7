"""Whether the app behind a sidecar answers yet: the readiness the sidecar registers.

Peers route to a workload only while it is ready (the control plane leaves the others out of
every service's endpoints), so a sidecar that starts before its app does not draw requests the
app cannot take. Each round connects to every app port the sidecar fronts (``address:app_port``),
and with a readiness path also asks it with ``GET PATH`` (a 2xx answer is ready):

- not ready: a round every ``NOT_READY_INTERVAL``; the first round that passes makes it ready;
- ready: a round every ``READY_INTERVAL``; after a failed one, a round every ``NOT_READY_INTERVAL``
  until one passes or ``FAILURE_THRESHOLD`` failed in a row, which makes it not ready again.

A sidecar with no inbound port (a client-only workload) has nothing to probe: it is ready at once.
The GET goes through the agent's own small HTTP client (``http.py``), one fresh connection a round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from loom.proxy.agent.http import ControlPlaneClient, HttpError

log = logging.getLogger("loom.proxy.agent")

NOT_READY_INTERVAL = 1.0
READY_INTERVAL = 3.0
FAILURE_THRESHOLD = 3
PROBE_TIMEOUT = 1.0


class Readiness:
    """The app's readiness, updated one probe round at a time (``probe``)."""

    def __init__(
        self,
        address: str,
        app_ports: Iterable[int],
        path: str | None = None,
        *,
        path_port: int | None = None,
        failure_threshold: int = FAILURE_THRESHOLD,
        timeout: float = PROBE_TIMEOUT,
    ) -> None:
        """``path``: also ``GET`` it on the app ports (only ``path_port``, when given; the others
        are then probed by connecting alone)."""
        self.address = address
        self.app_ports = tuple(sorted(set(app_ports)))
        self.path = path
        self.path_port = path_port
        self.failure_threshold = max(failure_threshold, 1)
        self.timeout = timeout
        self.ready = not self.app_ports
        self.failures = 0
        """Failed rounds in a row."""
        self.last_error = ""

    def interval(self) -> float:
        """How long to wait before the next round."""
        if self.ready and self.failures == 0:
            return READY_INTERVAL
        return NOT_READY_INTERVAL

    async def probe(self) -> bool:
        """One round; True when it changed ``ready``."""
        if not self.app_ports:
            return False
        error = await self._check()
        if error is None:
            self.failures = 0
            if not self.ready:
                self.ready = True
                log.info("the app answers on %s: ready", self._ports())
                return True
            return False
        self.failures += 1
        self.last_error = error
        if self.ready and self.failures >= self.failure_threshold:
            self.ready = False
            log.warning("the app failed %d readiness probes in a row (%s): not ready", self.failures, error)
            return True
        if not self.ready and self.failures == 1:
            log.info("the app is not ready yet (%s)", error)
        return False

    async def _check(self) -> str | None:
        """None when every app port answers, else what failed first."""
        for port in self.app_ports:
            if self.path is not None and self.path_port in (None, port):
                error = await self._get(port, self.path)
            else:
                error = await self._connect(port)
            if error is not None:
                return error
        return None

    async def _connect(self, port: int) -> str | None:
        try:
            async with asyncio.timeout(self.timeout):
                _, writer = await asyncio.open_connection(self.address, port)
        except (OSError, TimeoutError) as exc:
            return f"{self._at(port)}: {exc or 'timed out'}"
        writer.close()
        return None

    async def _get(self, port: int, path: str) -> str | None:
        client = ControlPlaneClient(f"http://{self._at(port)}")
        try:
            status, _ = await client.call("GET", path, timeout=self.timeout)
        except HttpError as exc:
            return str(exc)
        finally:
            client.close_idle()
        if not 200 <= status < 300:
            return f"GET http://{self._at(port)}{path}: {status}"
        return None

    def _at(self, port: int) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{port}"

    def _ports(self) -> str:
        return ", ".join(self._at(port) for port in self.app_ports)


def parse_readiness_path(value: str) -> tuple[str, int | None]:
    """``/healthz`` (every app port) or ``PORT:/healthz`` (that app port only) → (path, port)."""
    head, sep, tail = value.partition(":")
    if sep and head.isdigit() and tail.startswith("/"):
        return tail, int(head)
    if not value.startswith("/"):
        raise ValueError(f"a readiness path starts with / (or is PORT:/PATH), not {value!r}")
    return value, None
