"""Loopback addresses and free ports for a local mesh.

Each replica gets its own address 127.0.0.N (N from 2 up), so every replica can listen on the same
app port, as pods do. An address is taken only if the app port (and a sidecar port) can be bound
on it, so two meshes on one machine do not collide.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

FIRST_HOST = 2
LAST_HOST = 254


def can_bind(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((address, port))
        except OSError:
            return False
        return True


def free_port(address: str = "127.0.0.1") -> int:
    """A port the kernel says is free on ``address`` now (another process may take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def pick_address(app_port: int, taken: Iterable[str]) -> str:
    """The first 127.0.0.N (N ≥ 2) not in ``taken`` whose ``app_port`` is free (any, for 0)."""
    used = set(taken)
    for host in range(FIRST_HOST, LAST_HOST + 1):
        address = f"127.0.0.{host}"
        if address in used:
            continue
        if app_port == 0 or can_bind(address, app_port):
            return address
    raise OSError(f"no loopback address 127.0.0.2-{LAST_HOST} has port {app_port} free")
