"""One compiled RouteMatch: every condition must hold (AND).

The conditions are checked cheapest first (port, method, path, authority, headers, absent
headers, query parameters) and each returns as soon as one fails. ``source_labels`` never reach
here: they describe the workload sending the request, which for a sidecar is its own node, so
``source_labels_hold`` decides them once at compile time.
"""

from __future__ import annotations

from collections.abc import Mapping

from loom.proxy.codec.head import RequestHead
from loom.proxy.router.header_ops import compile_header_name
from loom.proxy.router.strings import BytesMatcher, PrefixMatch, compile_header_match, compile_string_match
from loom.snapshot.model import RouteMatch

_EMPTY: tuple = ()


def source_labels_hold(rm: RouteMatch, node_labels: Mapping[str, str]) -> bool:
    return all(node_labels.get(k) == v for k, v in rm.source_labels.items())


def parse_query(query: bytes) -> dict[bytes, bytes]:
    """``a=1&b=&c`` → {a: 1, b: "", c: ""}; the first of repeated names wins (as in Envoy).

    Nothing is percent-decoded: names and values compare as they appear on the wire.
    """
    params: dict[bytes, bytes] = {}
    if not query:
        return params
    for pair in query.split(b"&"):
        if not pair:
            continue
        name, _, value = pair.partition(b"=")
        if name not in params:
            params[name] = value
    return params


class CompiledMatch:
    __slots__ = (
        "authority",
        "headers",
        "method",
        "needs_query",
        "path",
        "path_lower",
        "port",
        "query",
        "rewrite_prefix_len",
        "without_headers",
    )

    def __init__(
        self,
        *,
        path: BytesMatcher | None = None,
        path_lower: bool = False,
        method: BytesMatcher | None = None,
        authority: BytesMatcher | None = None,
        headers: tuple[tuple[bytes, BytesMatcher | None], ...] = _EMPTY,
        without_headers: tuple[tuple[bytes, BytesMatcher | None], ...] = _EMPTY,
        query: tuple[tuple[bytes, BytesMatcher], ...] = _EMPTY,
        port: int | None = None,
    ) -> None:
        self.path = path
        self.path_lower = path_lower
        self.method = method
        self.authority = authority
        self.headers = headers
        self.without_headers = without_headers
        self.query = query
        self.needs_query = bool(query)
        self.port = port
        # How much of the path a rewrite.uri_prefix replaces: a prefix match replaces what it
        # matched, exact/regex the whole path (None). With no path condition the match behaves
        # like Istio's implicit prefix "/".
        if path is None:
            self.rewrite_prefix_len: int | None = 1
        elif isinstance(path, PrefixMatch):
            self.rewrite_prefix_len = len(path.value)
        else:
            self.rewrite_prefix_len = None

    @property
    def is_catch_all(self) -> bool:
        return (
            self.path is None
            and self.method is None
            and self.authority is None
            and not self.headers
            and not self.without_headers
            and not self.query
            and self.port is None
        )

    def matches(self, head: RequestHead, port: int | None, query: dict[bytes, bytes] | None) -> bool:
        """``query`` is the parsed query string; only read when ``needs_query``."""
        if self.port is not None and port != self.port:
            return False
        m = self.method
        if m is not None and not m.matches(head.method):
            return False
        m = self.path
        if m is not None and not m.matches(head.path.lower() if self.path_lower else head.path):
            return False
        m = self.authority
        if m is not None and not m.matches(head.authority):
            return False
        if self.headers:
            hmap = head.hmap
            for name, hm in self.headers:
                value = hmap.get(name)
                if value is None or (hm is not None and not hm.matches(value)):
                    return False
        if self.without_headers:
            hmap = head.hmap
            for name, hm in self.without_headers:
                value = hmap.get(name)
                if value is not None and (hm is None or hm.matches(value)):
                    return False
        if self.query:
            for name, qm in self.query:
                value = query.get(name) if query is not None else None
                if value is None or not qm.matches(value):
                    return False
        return True

    def __repr__(self) -> str:
        fields = ("port", "method", "path", "authority", "headers", "without_headers", "query")
        parts = [f"{k}={getattr(self, k)!r}" for k in fields if getattr(self, k)]
        return f"<CompiledMatch {' '.join(parts)}>"


def compile_route_match(rm: RouteMatch, field_path: str) -> CompiledMatch:
    path = path_lower = None
    if rm.path is not None:
        # Istio applies ignore_uri_case to exact and prefix matches only.
        path_lower = rm.ignore_uri_case and rm.path.regex is None
        path = compile_string_match(rm.path, f"{field_path}.path", lower=path_lower)
    method = compile_string_match(rm.method, f"{field_path}.method") if rm.method is not None else None
    authority = None
    if rm.authority is not None:
        # head.authority is lower-cased; so are exact and prefix values.
        authority = compile_string_match(rm.authority, f"{field_path}.authority", lower=True)
    headers = tuple(
        (
            compile_header_name(name, f"{field_path}.headers[{name!r}]"),
            compile_header_match(hm, f"{field_path}.headers[{name!r}]"),
        )
        for name, hm in rm.headers.items()
    )
    without = tuple(
        (
            compile_header_name(name, f"{field_path}.without_headers[{name!r}]"),
            compile_header_match(hm, f"{field_path}.without_headers[{name!r}]"),
        )
        for name, hm in rm.without_headers.items()
    )
    query = tuple(
        (name.encode(), compile_string_match(sm, f"{field_path}.query_params[{name!r}]"))
        for name, sm in rm.query_params.items()
    )
    return CompiledMatch(
        path=path,
        path_lower=bool(path_lower),
        method=method,
        authority=authority,
        headers=headers,
        without_headers=without,
        query=query,
        port=rm.port,
    )
