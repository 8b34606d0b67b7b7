"""The destination a connection was addressed to before iptables redirected it to us.

Transparent interception (``iptables -t nat ... -j REDIRECT``) rewrites the destination; the
kernel keeps the original in conntrack and hands it out as SO_ORIGINAL_DST (Linux only).
"""

from __future__ import annotations

import socket
import struct

SO_ORIGINAL_DST = 80
"""From linux/netfilter_ipv4.h; IP6T_SO_ORIGINAL_DST has the same value at SOL_IPV6."""
_SOL_IPV6 = getattr(socket, "SOL_IPV6", 41)


def original_destination(sock: socket.socket | None) -> tuple[str, int] | None:
    """(address, port) the peer connected to, or None when unknown (not redirected, not Linux)."""
    if sock is None:
        return None
    try:
        if sock.family == socket.AF_INET6:
            raw = sock.getsockopt(_SOL_IPV6, SO_ORIGINAL_DST, 28)
            port = struct.unpack_from("!H", raw, 2)[0]
            address = socket.inet_ntop(socket.AF_INET6, raw[8:24])
        else:
            raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
            port = struct.unpack_from("!H", raw, 2)[0]
            address = socket.inet_ntoa(raw[4:8])
    except OSError:
        return None
    local = sock.getsockname()
    if (address, port) == (local[0], local[1]):
        return None  # not redirected: the connection came to us directly
    return address, port
