"""Request/response header operations (Istio ``headers.request|response``: set, add, remove).

Order follows Envoy: remove first, then set (replacing every header of that name), then add
(append, keeping any existing ones). Names compare case-insensitively; values are forwarded
as configured.
"""

from __future__ import annotations

import re

from loom.proxy.router.errors import RouteCompileError
from loom.snapshot.model import HeaderOps

# RFC 9110 token characters.
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\x00\r\n]")


def compile_header_name(name: str, field_path: str) -> bytes:
    """The lower-cased bytes name, or RouteCompileError when it is not an HTTP token."""
    raw = name.encode()
    if not _TOKEN.fullmatch(raw):
        raise RouteCompileError(field_path, f"{name!r} is not a valid HTTP header name")
    return raw.lower()


def compile_header_value(value: str, field_path: str) -> bytes:
    raw = value.encode()
    if _BAD_VALUE.search(raw):
        raise RouteCompileError(field_path, "a header value cannot contain CR, LF or NUL")
    return raw


class CompiledHeaderOps:
    __slots__ = ("_add", "_drop", "_drop_lengths", "_set")

    def __init__(
        self,
        remove: tuple[bytes, ...] = (),
        set_: tuple[tuple[bytes, bytes], ...] = (),
        add: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        """``remove`` names lower-cased; ``set_``/``add`` as (name as configured, value)."""
        drop = frozenset(n.lower() for n in remove) | frozenset(n.lower() for n, _ in set_)
        self._drop = drop
        # Comparing lengths first skips the .lower() copy for nearly every header.
        self._drop_lengths = frozenset(len(n) for n in drop)
        self._set = set_
        self._add = add

    def apply(self, headers: list[tuple[bytes, bytes]], hmap: dict[bytes, bytes] | None = None) -> None:
        """Mutate ``headers`` in place; keep ``hmap`` (lower-cased name → value) in step if given."""
        drop = self._drop
        if drop:
            lengths = self._drop_lengths
            headers[:] = [h for h in headers if len(h[0]) not in lengths or h[0].lower() not in drop]
            if hmap is not None:
                for name in drop:
                    hmap.pop(name, None)
        if self._set:
            headers.extend(self._set)
            if hmap is not None:
                for name, value in self._set:
                    hmap[name.lower()] = value
        if self._add:
            headers.extend(self._add)
            if hmap is not None:
                for name, value in self._add:
                    lname = name.lower()
                    old = hmap.get(lname)
                    hmap[lname] = value if old is None else old + b"," + value

    def __repr__(self) -> str:
        return f"<CompiledHeaderOps drop={sorted(self._drop)} set={self._set} add={self._add}>"


def compile_header_ops(ops: HeaderOps | None, field_path: str) -> CompiledHeaderOps | None:
    if ops is None or not (ops.set or ops.add or ops.remove):
        return None
    remove = tuple(compile_header_name(n, f"{field_path}.remove[{i}]") for i, n in enumerate(ops.remove))
    set_ = tuple(
        (_configured_name(n, f"{field_path}.set[{n!r}]"), compile_header_value(v, f"{field_path}.set[{n!r}]"))
        for n, v in ops.set.items()
    )
    add = tuple(
        (_configured_name(n, f"{field_path}.add[{n!r}]"), compile_header_value(v, f"{field_path}.add[{n!r}]"))
        for n, v in ops.add.items()
    )
    return CompiledHeaderOps(remove, set_, add)


def _configured_name(name: str, field_path: str) -> bytes:
    compile_header_name(name, field_path)
    return name.encode()
