"""Protocol errors raised by the HTTP/1.1 codec, each carrying the status the peer should get."""

from __future__ import annotations


class ProtocolError(Exception):
    """The downstream peer broke HTTP/1.1 (or one of our limits); answer ``status`` and close."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class UpstreamProtocolError(Exception):
    """The upstream sent something that is not valid HTTP/1.1."""
