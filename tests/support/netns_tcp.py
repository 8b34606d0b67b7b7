"""TCP peers a test runs inside a network namespace (``ip netns exec ... python -m``).

python -m tests.support.netns_tcp serve ADDRESS PORT_FILE
    an EchoServer on ADDRESS; its port is written to PORT_FILE once it listens
python -m tests.support.netns_tcp exchange ADDRESS PORT SIZE
    send SIZE random bytes, half-close, read until the other side closes; print
    ``{"echoed": bool, "received": n}`` (echoed: the bytes came back intact, then FAREWELL)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from tests.support.tcp_echo import FAREWELL, EchoServer


async def serve(address: str, port_file: Path) -> None:
    server = await EchoServer().start(address)
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(server.port))
    tmp.replace(port_file)
    await asyncio.Event().wait()


async def exchange(address: str, port: int, size: int) -> dict[str, object]:
    payload = os.urandom(size)
    reader, writer = await asyncio.open_connection(address, port)

    async def send() -> None:
        for i in range(0, len(payload), 65536):
            writer.write(payload[i : i + 65536])
            await writer.drain()
        writer.write_eof()

    try:
        async with asyncio.timeout(30):
            sender = asyncio.create_task(send())
            received = await reader.read(-1)
            await sender
    finally:
        writer.close()
    return {"echoed": received == payload + FAREWELL, "received": len(received)}


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        asyncio.run(serve(sys.argv[2], Path(sys.argv[3])))
    else:
        print(json.dumps(asyncio.run(exchange(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))))
