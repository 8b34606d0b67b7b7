"""The access log writer: format on ``log``, buffer in memory, write in batches.

Lines are written with ``os.write`` when the buffer passes ``flush_bytes`` or on a timer
(Envoy's defaults: 64 KiB, 1 s), so a request costs one format and one list append. Nothing
here raises into the request path: a line that cannot be written is counted in ``dropped``.
A file that cannot be opened is retried on each timer tick.

``/dev/stdout`` and ``/dev/stderr`` write to fd 1 and 2 as they are. Other paths are opened
non-blocking and appended to; when a non-blocking fd is full the rest waits for the next flush,
and past ``max_buffer_bytes`` new lines are dropped rather than held.
"""

from __future__ import annotations

import asyncio
import os

from loom.proxy.telemetry.access_format import AccessLogEntry, format_json, format_text
from loom.snapshot.model import AccessLog

_STD_FDS = {"/dev/stdout": 1, "/dev/stderr": 2}
_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NONBLOCK", 0)


class AccessLogger:
    __slots__ = (
        "_buf",
        "_fd",
        "_flush_bytes",
        "_format",
        "_interval",
        "_loop",
        "_max_buffer",
        "_owns_fd",
        "_pending",
        "_size",
        "_timer",
        "dropped",
        "last_error",
        "path",
    )

    def __init__(
        self,
        cfg: AccessLog,
        *,
        flush_bytes: int = 64 * 1024,
        flush_interval: float = 1.0,
        max_buffer_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        self.path = cfg.path
        self._format = format_json if cfg.encoding == "JSON" else format_text
        self._flush_bytes = flush_bytes
        self._interval = flush_interval
        self._max_buffer = max_buffer_bytes
        self._buf: list[str] = []
        self._size = 0
        """Characters in ``_buf``."""
        self._pending = b""
        """Encoded bytes a non-blocking write could not take yet."""
        self._fd = -1
        self._owns_fd = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.dropped = 0
        """Lines that were not written (unwritable file, full buffer, formatting error)."""
        self.last_error: str | None = None
        self._open()

    # --- the request path --------------------------------------------------------------------

    def log(self, entry: AccessLogEntry) -> None:
        if self._fd < 0 or self._size + len(self._pending) > self._max_buffer:
            self.dropped += 1
            return
        try:
            line = self._format(entry)
        except Exception as exc:
            self.dropped += 1
            self.last_error = f"cannot format {entry!r}: {exc}"
            return
        self._buf.append(line)
        self._size += len(line)
        if self._size >= self._flush_bytes:
            self.flush()

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Flush every ``flush_interval`` seconds on ``loop`` until ``close``."""
        self._loop = loop
        if self._timer is None:
            self._timer = loop.call_later(self._interval, self._tick)

    def close(self) -> None:
        """Stop the timer, write what is buffered, and close the file (never fd 1 or 2)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.flush()
        if self._pending:
            self.dropped += self._pending.count(b"\n")
            self._pending = b""
        self._close_fd()

    def reopen(self) -> None:
        """Open the path again, e.g. after log rotation moved the file away."""
        self.flush()
        self._close_fd()
        self._open()

    @property
    def buffered_bytes(self) -> int:
        return self._size + len(self._pending)

    def flush(self) -> None:
        if self._buf:
            data = "".join(self._buf).encode("utf-8", "replace")
            self._buf.clear()
            self._size = 0
            if self._pending:
                data = self._pending + data
        else:
            data = self._pending
        self._pending = b""
        if not data:
            return
        if self._fd < 0:
            self.dropped += data.count(b"\n")
            return
        view = memoryview(data)
        written = 0
        try:
            while written < len(data):
                written += os.write(self._fd, view[written:])
        except BlockingIOError:
            self._pending = data[written:]
        except OSError as exc:
            self.dropped += data.count(b"\n", written)
            self.last_error = f"cannot write the access log {self.path}: {exc}"

    # --- internals ---------------------------------------------------------------------------

    def _tick(self) -> None:
        try:
            if self._fd < 0:
                self._open()
            self.flush()
        finally:
            if self._loop is not None and self._timer is not None:
                self._timer = self._loop.call_later(self._interval, self._tick)

    def _open(self) -> None:
        std = _STD_FDS.get(self.path)
        if std is not None:
            self._fd, self._owns_fd = std, False
            return
        try:
            self._fd = os.open(self.path, _OPEN_FLAGS, 0o644)
            self._owns_fd = True
        except OSError as exc:
            self._fd = -1
            self.last_error = f"cannot open the access log {self.path}: {exc}"

    def _close_fd(self) -> None:
        if self._owns_fd and self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError:
                pass
        self._fd, self._owns_fd = -1, False
