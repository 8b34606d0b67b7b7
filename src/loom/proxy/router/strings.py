"""Byte-string matchers: exact, prefix and regex (full match), compiled from StringMatch.

Each matcher is a tiny object with one ``matches(value: bytes) -> bool`` method, so a caller
invokes whichever kind it holds without branching on the kind per request.
"""

from __future__ import annotations

import re
from typing import Protocol

from loom.proxy.router.regex import compile_regex
from loom.snapshot.model import HeaderMatch, StringMatch


class BytesMatcher(Protocol):
    def matches(self, value: bytes) -> bool: ...


class ExactMatch:
    __slots__ = ("value",)

    def __init__(self, value: bytes) -> None:
        self.value = value

    def matches(self, value: bytes) -> bool:
        return value == self.value

    def __repr__(self) -> str:
        return f"ExactMatch({self.value!r})"


class PrefixMatch:
    __slots__ = ("value",)

    def __init__(self, value: bytes) -> None:
        self.value = value

    def matches(self, value: bytes) -> bool:
        return value.startswith(self.value)

    def __repr__(self) -> str:
        return f"PrefixMatch({self.value!r})"


class RegexMatch:
    __slots__ = ("_fullmatch", "pattern")

    def __init__(self, pattern: re.Pattern[bytes]) -> None:
        self.pattern = pattern
        self._fullmatch = pattern.fullmatch

    def matches(self, value: bytes) -> bool:
        return self._fullmatch(value) is not None

    def __repr__(self) -> str:
        return f"RegexMatch({self.pattern.pattern!r})"


def compile_string_match(
    sm: StringMatch | HeaderMatch, field_path: str, *, lower: bool = False
) -> BytesMatcher:
    """Compile one of exact/prefix/regex; ``lower`` lower-cases exact and prefix values.

    A HeaderMatch with nothing set is a presence check; callers handle it before calling this.
    """
    if sm.exact is not None:
        value = sm.exact.encode()
        return ExactMatch(value.lower() if lower else value)
    if sm.prefix is not None:
        value = sm.prefix.encode()
        return PrefixMatch(value.lower() if lower else value)
    if sm.regex is not None:
        return RegexMatch(compile_regex(sm.regex, f"{field_path}.regex"))
    raise ValueError(f"{field_path}: nothing to match")  # pragma: no cover - the schema forbids it


def compile_header_match(hm: HeaderMatch, field_path: str) -> BytesMatcher | None:
    """None means "the header is present"; otherwise a matcher for its value."""
    if hm.exact is None and hm.prefix is None and hm.regex is None:
        return None
    return compile_string_match(hm, field_path)
