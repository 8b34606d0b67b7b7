"""The folder of YAML as the store: read at start, watched for edits.

An edit that does not load (syntax, schema) is refused with its problems and the last good
set of resources stays in force, so a typo never takes the mesh's configuration away.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from loom.api import Resource, load_paths

log = logging.getLogger("loom.controlplane")

POLL_SECONDS = 0.25
Stamp = tuple[tuple[str, int, int], ...]


class FileStore:
    def __init__(self, directory: Path, on_change: Callable[[list[Resource]], None]) -> None:
        self.directory = directory
        self.on_change = on_change
        self.resources: list[Resource] = []
        self.last_error: str | None = None
        self._stamp: Stamp = ()

    def load(self) -> bool:
        """Read the folder; apply it if it loads cleanly. True when applied."""
        self._stamp = self._current_stamp()
        result = load_paths([self.directory])
        if result.problems:
            self.last_error = "\n".join(str(p) for p in result.problems)
            log.error("configuration refused; the last good one stays in force:\n%s", self.last_error)
            return False
        self.last_error = None
        self.resources = list(result.resources)
        self.on_change(self.resources)
        return True

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            if self._current_stamp() != self._stamp:
                self.load()

    def _current_stamp(self) -> Stamp:
        entries = []
        for root, _, files in os.walk(self.directory):
            for name in files:
                if name.endswith((".yaml", ".yml")):
                    path = os.path.join(root, name)
                    try:
                        st = os.stat(path)
                    except OSError:
                        continue
                    entries.append((path, st.st_mtime_ns, st.st_size))
        return tuple(sorted(entries))
