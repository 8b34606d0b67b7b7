"""A raw TCP echo server on 127.0.0.1: echoes every byte, and on the client's half-close
sends ``FAREWELL`` and closes — so a test can see that a half-close crossed the proxy and the
other direction kept working after it."""

from __future__ import annotations

import asyncio

FAREWELL = b"<server saw eof>"


class EchoServer:
    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0
        self.connections = 0
        self.received = 0
        self.saw_eof = 0

    async def start(self, host: str = "127.0.0.1") -> EchoServer:
        self.server = await asyncio.start_server(self._serve, host, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while data := await reader.read(65536):
                self.received += len(data)
                writer.write(data)
                await writer.drain()
            self.saw_eof += 1
            writer.write(FAREWELL)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
