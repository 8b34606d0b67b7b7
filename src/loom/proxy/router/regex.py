"""Regular expressions from configuration, compiled once as bytes patterns.

The snapshot promises RE2-compatible expressions (what Istio accepts). Python's ``re`` accepts
more; constructs RE2 rejects (backreferences, lookaround, atomic groups, possessive repeats)
are refused here so a configuration behaves the same under any proxy reading the snapshot,
and so no pattern can backtrack through a backreference on the hot path.
"""

from __future__ import annotations

import re

from loom.proxy.router.errors import RouteCompileError
from loom.snapshot.regex import unsupported_construct


def compile_regex(pattern: str, field_path: str, *, ignore_case: bool = False) -> re.Pattern[bytes]:
    """Compile ``pattern`` for full matches against bytes, or raise RouteCompileError."""
    raw = pattern.encode()
    flags = re.IGNORECASE if ignore_case else 0
    try:
        compiled = re.compile(raw, flags)
    except re.error as exc:
        raise RouteCompileError(field_path, f"invalid regex {pattern!r}: {exc}") from None
    unsupported = unsupported_construct(raw, flags)
    if unsupported is not None:
        raise RouteCompileError(
            field_path,
            f"regex {pattern!r} uses {unsupported}, which RE2 (and so Istio) does not support; "
            "rewrite the expression without it",
        )
    return compiled
