"""Request paths as authorization sees them, and the path patterns it matches them with.

Paths are compared without the query (the codec keeps it apart) and normalized the way Istio's
default (``BASE``) normalization does before an authorization policy sees them: ``\\`` becomes
``/``, percent-encoded unreserved characters are decoded (``%61`` → ``a``), and ``.`` and ``..``
segments are resolved (RFC 3986 §5.2.4) — so ``/public/../admin`` is checked as ``/admin``. The
request forwarded to the app is not changed. Most paths need none of this; ``normalize`` returns
them as they are after one scan for ``%``, ``\\`` and ``/.``.

A path pattern is an Istio string pattern (``ValueSet``: exact, ``prefix*``, ``*suffix``, ``*``)
or, when it contains ``{*}`` or ``{**}``, a template: ``{*}`` is one segment (one or more
characters, no ``/``), ``{**}`` any number of segments (anything, ``/`` included) and must be the
last operator; an operator is a whole segment, and ``*``, ``{`` or ``}`` may not appear elsewhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from loom.proxy.authz.values import ValueSet

ONE_SEGMENT = "{*}"
ANY_SEGMENTS = "{**}"

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset(b"0123456789abcdefABCDEF")


def normalize(path: bytes) -> bytes:
    if b"%" not in path and b"\\" not in path and b"/." not in path:
        return path
    path = path.replace(b"\\", b"/")
    if b"%" in path:
        path = _decode_unreserved(path)
    if b"/." in path:
        path = _remove_dot_segments(path)
    return path


def _decode_unreserved(path: bytes) -> bytes:
    out = bytearray()
    i, n = 0, len(path)
    while i < n:
        c = path[i]
        if c == 0x25 and i + 2 < n and path[i + 1] in _HEX and path[i + 2] in _HEX:  # '%'
            decoded = int(path[i + 1 : i + 3], 16)
            if decoded in _UNRESERVED:
                out.append(decoded)
            else:
                out += path[i : i + 3].upper()
            i += 3
            continue
        out.append(c)
        i += 1
    return bytes(out)


def _remove_dot_segments(path: bytes) -> bytes:
    absolute = path.startswith(b"/")
    segments = path.split(b"/")
    if absolute:
        segments = segments[1:]
    out: list[bytes] = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == b".":
            if last:
                out.append(b"")
            continue
        if segment == b"..":
            if out:
                out.pop()
            if last:
                out.append(b"")
            continue
        out.append(segment)
    joined = b"/".join(out)
    return b"/" + joined if absolute else joined


def is_template(pattern: str) -> bool:
    return ONE_SEGMENT in pattern or ANY_SEGMENTS in pattern


def compile_template(pattern: str) -> re.Pattern[bytes]:
    """The regex for a path template; ValueError says what is wrong with an invalid one."""
    parts: list[str] = []
    any_seen = False
    for segment in pattern.split("/"):
        if segment in (ONE_SEGMENT, ANY_SEGMENTS):
            if any_seen:
                raise ValueError(f"{pattern!r}: {ANY_SEGMENTS} must be the last operator of a path template")
            any_seen = segment == ANY_SEGMENTS
            parts.append("[^/]+" if segment == ONE_SEGMENT else ".*")
            continue
        if "*" in segment or "{" in segment or "}" in segment:
            raise ValueError(
                f"{pattern!r}: a path template operator ({ONE_SEGMENT} or {ANY_SEGMENTS}) must be a whole "
                "segment, and '*', '{' and '}' may not appear elsewhere"
            )
        parts.append(re.escape(segment))
    return re.compile("/".join(parts).encode())


class PathPatterns:
    """A ``paths`` list: string patterns and templates; ``matches`` takes a normalized path."""

    __slots__ = ("strings", "templates")

    def __init__(self, patterns: Iterable[str]) -> None:
        given = list(patterns)
        self.templates = tuple(compile_template(p).fullmatch for p in given if is_template(p))
        self.strings = ValueSet([p.encode() for p in given if not is_template(p)], nonempty=True)

    def matches(self, path: bytes) -> bool:
        if self.strings.matches(path):
            return True
        return any(fullmatch(path) is not None for fullmatch in self.templates)
