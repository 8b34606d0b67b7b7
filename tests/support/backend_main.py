"""Run a test Backend in its own process (so a test can SIGKILL it mid-load).

python -m tests.support.backend_main NAME PORT_FILE
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.support.backend import Backend


async def main(name: str, port_file: Path) -> None:
    backend = await Backend(name).start()
    tmp = port_file.with_suffix(".tmp")
    tmp.write_text(str(backend.port))
    tmp.replace(port_file)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2])))
