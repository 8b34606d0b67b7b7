"""Parsed HTTP/1.1 message heads, shared by the codec, the router and the filters.

Everything stays in bytes: names and values are matched and forwarded without decoding.
``hmap`` indexes headers by lower-cased name (duplicates joined with ``,``) and is built once
by the parser, so filters look headers up without scanning the list.
"""

from __future__ import annotations


class RequestHead:
    __slots__ = (
        "authority",
        "chunked",
        "content_length",
        "expect_continue",
        "headers",
        "hmap",
        "keep_alive",
        "method",
        "path",
        "port",
        "query",
        "scheme",
        "target",
        "upgrade",
        "version",
    )

    def __init__(self) -> None:
        self.method: bytes = b""
        self.target: bytes = b""
        """The request target exactly as received (origin-form or absolute-form)."""
        self.scheme: bytes = b""
        """``http`` when the target was absolute-form (forward-proxy style), else empty."""
        self.path: bytes = b"/"
        self.query: bytes = b""
        """Without the leading ``?``; empty when absent."""
        self.authority: bytes = b""
        """Host, lower-cased, without port: from the absolute-form target, else from ``Host``."""
        self.port: int | None = None
        """The explicit port from the target or ``Host``; None when not given."""
        self.version: bytes = b"1.1"
        self.headers: list[tuple[bytes, bytes]] = []
        """In received order, names in received case."""
        self.hmap: dict[bytes, bytes] = {}
        """Lower-cased name → value (repeated headers joined with b",")."""
        self.keep_alive: bool = True
        self.content_length: int | None = None
        self.chunked: bool = False
        self.upgrade: bool = False
        self.expect_continue: bool = False

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    def header(self, lower_name: bytes) -> bytes | None:
        return self.hmap.get(lower_name)

    def __repr__(self) -> str:
        return f"<RequestHead {self.method.decode()} {self.target.decode('latin-1')}>"


class ResponseHead:
    __slots__ = ("chunked", "content_length", "headers", "hmap", "keep_alive", "reason", "status", "version")

    def __init__(self) -> None:
        self.status: int = 0
        self.reason: bytes = b""
        self.version: bytes = b"1.1"
        self.headers: list[tuple[bytes, bytes]] = []
        self.hmap: dict[bytes, bytes] = {}
        self.keep_alive: bool = True
        self.content_length: int | None = None
        self.chunked: bool = False

    def __repr__(self) -> str:
        return f"<ResponseHead {self.status}>"
