"""Authorities (``host[:port]``) written in configuration, split once at compile time."""

from __future__ import annotations

import re

from loom.proxy.router.errors import RouteCompileError

_AUTHORITY = re.compile(rb"(\[[0-9a-fA-F:.]+\]|[^\s/?#@\[\]:]+)(?::(\d{1,5}))?")


def split_authority(value: str, field_path: str) -> tuple[bytes, int | None]:
    """``"Foo.Example:8080"`` → (b"foo.example", 8080); ``"foo"`` → (b"foo", None)."""
    raw = value.encode()
    m = _AUTHORITY.fullmatch(raw)
    if m is None:
        raise RouteCompileError(field_path, f"{value!r} is not a host or host:port")
    port = int(m.group(2)) if m.group(2) is not None else None
    if port is not None and not 0 < port < 65536:
        raise RouteCompileError(field_path, f"port {port} in {value!r} is out of range (1-65535)")
    return m.group(1).lower(), port


def join_authority(host: bytes, port: int | None) -> bytes:
    return host if port is None else b"%s:%d" % (host, port)
