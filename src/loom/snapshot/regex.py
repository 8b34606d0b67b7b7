"""Which regular expressions a snapshot may carry: RE2's, as Istio accepts them.

RE2 runs in linear time because it has no backtracking features. Python's ``re`` accepts more,
so a pattern using backreferences, lookaround, conditional or atomic groups or possessive
repeats is refused everywhere a regex enters Loom — the proxy when it loads a snapshot, the
compiler before it writes one, and ``loom analyze`` when an operator writes one — with the
same verdict from this one module.
"""

from __future__ import annotations

import re
import warnings

try:  # the parser behind ``re``; without it only the syntax check runs
    from re import _constants as _sre_constants
    from re import _parser as _sre_parser
except ImportError:  # pragma: no cover
    _sre_parser = None
    _sre_constants = None

UNSUPPORTED: dict[str, str] = {
    "ASSERT": "lookahead or lookbehind",
    "ASSERT_NOT": "negative lookahead or lookbehind",
    "GROUPREF": "a backreference",
    "GROUPREF_EXISTS": "a conditional group",
    "ATOMIC_GROUP": "an atomic group",
    "POSSESSIVE_REPEAT": "a possessive repeat",
}
"""The constructs RE2 lacks, by the name of ``re``'s opcode → how messages call them."""

_BY_OPCODE: dict[object, str] = {}
if _sre_constants is not None:
    for _name, _what in UNSUPPORTED.items():
        _op = getattr(_sre_constants, _name, None)
        if _op is not None:
            _BY_OPCODE[_op] = _what


def syntax_error(pattern: str | bytes, flags: int = 0) -> str | None:
    """Why ``pattern`` does not compile at all, or None."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            re.compile(pattern, flags)
    except re.error as exc:
        return str(exc)
    return None


def unsupported_construct(pattern: str | bytes, flags: int = 0) -> str | None:
    """The first construct of a valid ``pattern`` that RE2 does not support, or None."""
    if _sre_parser is None:  # pragma: no cover
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _walk(_sre_parser.parse(pattern, flags))


def regex_problem(pattern: str) -> str | None:
    """Why ``pattern`` is not a regex a snapshot may carry, or None when it is."""
    error = syntax_error(pattern)
    if error is not None:
        return f"invalid regex {pattern!r}: {error}"
    construct = unsupported_construct(pattern)
    if construct is not None:
        return f"regex {pattern!r} uses {construct}, which RE2 (and so Istio) does not support"
    return None


def _walk(node: object) -> str | None:
    if _sre_parser is not None and isinstance(node, _sre_parser.SubPattern):
        for op, arg in node.data:
            found = _BY_OPCODE.get(op) or _walk(arg)
            if found is not None:
                return found
    elif isinstance(node, tuple | list):
        for item in node:
            found = _walk(item)
            if found is not None:
                return found
    return None
