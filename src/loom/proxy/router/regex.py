"""Regular expressions from configuration, compiled once as bytes patterns.

The snapshot promises RE2-compatible expressions (what Istio accepts). Python's ``re`` accepts
more; constructs RE2 rejects (backreferences, lookaround, atomic groups, possessive repeats)
are refused here so a configuration behaves the same under any proxy reading the snapshot,
and so no pattern can backtrack through a backreference on the hot path.
"""

from __future__ import annotations

import re

from loom.proxy.router.errors import RouteCompileError

try:  # the parser is internal to ``re``; without it only the syntax check below runs
    from re import _constants as _sre_constants
    from re import _parser as _sre_parser
except ImportError:  # pragma: no cover
    _sre_parser = None
    _sre_constants = None

_NOT_RE2: dict[object, str] = {}
if _sre_constants is not None:
    for _name, _what in (
        ("ASSERT", "lookahead/lookbehind"),
        ("ASSERT_NOT", "negative lookahead/lookbehind"),
        ("GROUPREF", "backreferences"),
        ("GROUPREF_EXISTS", "conditional groups"),
        ("ATOMIC_GROUP", "atomic groups"),
        ("POSSESSIVE_REPEAT", "possessive repeats"),
    ):
        _op = getattr(_sre_constants, _name, None)
        if _op is not None:
            _NOT_RE2[_op] = _what


def compile_regex(pattern: str, field_path: str, *, ignore_case: bool = False) -> re.Pattern[bytes]:
    """Compile ``pattern`` for full matches against bytes, or raise RouteCompileError."""
    raw = pattern.encode()
    flags = re.IGNORECASE if ignore_case else 0
    try:
        compiled = re.compile(raw, flags)
    except re.error as exc:
        raise RouteCompileError(field_path, f"invalid regex {pattern!r}: {exc}") from None
    unsupported = _unsupported_construct(raw, flags)
    if unsupported is not None:
        raise RouteCompileError(
            field_path,
            f"regex {pattern!r} uses {unsupported}, which RE2 (and so Istio) does not support; "
            "rewrite it without them",
        )
    return compiled


def _unsupported_construct(raw: bytes, flags: int) -> str | None:
    if _sre_parser is None:  # pragma: no cover
        return None
    return _walk(_sre_parser.parse(raw, flags))


def _walk(node: object) -> str | None:
    if isinstance(node, _sre_parser.SubPattern):
        for op, arg in node.data:
            what = _NOT_RE2.get(op)
            if what is not None:
                return what
            found = _walk(arg)
            if found is not None:
                return found
    elif isinstance(node, tuple | list):
        for item in node:
            found = _walk(item)
            if found is not None:
                return found
    return None
