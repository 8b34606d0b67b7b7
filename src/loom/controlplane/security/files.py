"""Writing the control plane's secrets and certificates: atomically, with the right mode."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("loom.controlplane.security")

PRIVATE = 0o600
PUBLIC = 0o644


def write_file(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed over it: readers see the old
    content or the new, never a part; the file has ``mode`` from its first byte on."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # whatever the umask
        with os.fdopen(fd, "wb") as out:
            fd = -1
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        if fd >= 0:
            os.close(fd)
        tmp.unlink(missing_ok=True)


def write_private(path: Path, data: bytes) -> None:
    write_file(path, data, PRIVATE)


def write_public(path: Path, data: bytes) -> None:
    write_file(path, data, PUBLIC)


def read_private(path: Path) -> bytes:
    """A secret of ours: readable by others is tightened to 0600, with a warning."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o): setting it to 0600", path, mode)
        path.chmod(PRIVATE)
    return path.read_bytes()
