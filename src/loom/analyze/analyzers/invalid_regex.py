"""LM0801: a regular expression the proxy cannot honour.

Istio's regexes are RE2: linear-time, without backtracking features. Loom's proxy compiles them
with Python's ``re`` and refuses what RE2 would not run — backreferences, lookahead and
lookbehind, atomic groups, possessive repeats, conditional groups — so a configuration behaves
the same under any proxy; and it refuses what Python cannot compile. Either way the proxy rejects
the configuration (last good config wins), so the route never takes effect.

Checked: VirtualService ``match`` (``uri``, ``scheme``, ``method``, ``authority``, ``headers``,
``queryParams``, ``withoutHeaders``), ``rewrite.uriRegexRewrite.match``,
``corsPolicy.allowOrigins``; HTTPRoute ``matches`` of type RegularExpression (path, headers,
query parameters).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator

from loom.analyze.context import Context
from loom.analyze.finding import Code, Finding, Level, finding
from loom.api import Resource
from loom.api.resources.gateway import HTTPRouteSpec
from loom.api.resources.istio_networking import HTTPMatchRequest, VirtualServiceSpec
from loom.api.resources.values import StringMatch

INVALID_REGEX = Code("LM0801", Level.ERROR, "regex is invalid or uses constructs RE2 does not support")
CODES = (INVALID_REGEX,)

try:  # the parser behind ``re``; without it only the compile check runs
    from re import _constants as _sre_constants
    from re import _parser as _sre_parser
except ImportError:  # pragma: no cover
    _sre_constants = _sre_parser = None  # type: ignore[assignment]

_NOT_RE2: dict[object, tuple[str, str]] = {}
if _sre_constants is not None:
    for _name, _what, _instead in (
        ("ASSERT", "lookahead or lookbehind", "match the surrounding text instead, or split the rule"),
        (
            "ASSERT_NOT",
            "negative lookahead or lookbehind",
            "list what to match instead, or add a rule before",
        ),
        ("GROUPREF", "a backreference", "spell out the alternatives"),
        ("GROUPREF_EXISTS", "a conditional group", "use an alternation (a|b)"),
        ("ATOMIC_GROUP", "an atomic group", "use a plain group (...)"),
        ("POSSESSIVE_REPEAT", "a possessive repeat", "use a plain repeat (*, +, ?)"),
    ):
        _op = getattr(_sre_constants, _name, None)
        if _op is not None:
            _NOT_RE2[_op] = (_what, _instead)


def run(ctx: Context) -> Iterator[Finding]:
    for resource, spec in ctx.of(VirtualServiceSpec):
        for i, rule in enumerate(spec.http):
            base = f"spec.http[{i}]"
            for j, match in enumerate(rule.match):
                for path, pattern in _istio_match(match, f"{base}.match[{j}]"):
                    yield from _check(resource, path, pattern)
            if rule.rewrite is not None and rule.rewrite.uri_regex_rewrite is not None:
                pattern = rule.rewrite.uri_regex_rewrite.match
                if pattern is not None:
                    yield from _check(resource, f"{base}.rewrite.uriRegexRewrite.match", pattern)
            if rule.cors_policy is not None:
                for k, origin in enumerate(rule.cors_policy.allow_origins):
                    if origin.regex is not None:
                        yield from _check(
                            resource, f"{base}.corsPolicy.allowOrigins[{k}].regex", origin.regex
                        )
    for resource, route in ctx.of(HTTPRouteSpec):
        for i, rule in enumerate(route.rules):
            for j, match in enumerate(rule.matches):
                base = f"spec.rules[{i}].matches[{j}]"
                if match.path is not None and match.path.type == "RegularExpression" and match.path.value:
                    yield from _check(resource, f"{base}.path.value", match.path.value)
                for section, items in (("headers", match.headers), ("queryParams", match.query_params)):
                    for k, item in enumerate(items):
                        if item.type == "RegularExpression":
                            yield from _check(resource, f"{base}.{section}[{k}].value", item.value)


def _istio_match(match: HTTPMatchRequest, base: str) -> Iterator[tuple[str, str]]:
    singles: tuple[tuple[str, StringMatch | None], ...] = (
        ("uri", match.uri),
        ("scheme", match.scheme),
        ("method", match.method),
        ("authority", match.authority),
    )
    for name, value in singles:
        if value is not None and value.regex is not None:
            yield f"{base}.{name}.regex", value.regex
    for section, items in (
        ("headers", match.headers),
        ("queryParams", match.query_params),
        ("withoutHeaders", match.without_headers),
    ):
        for key, value in items.items():
            if value.regex is not None:
                yield f"{base}.{section}{_key(key)}.regex", value.regex


def _key(key: str) -> str:
    """A map key as the YAML reader records it in field paths."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key):
        return f".{key}"
    return '["' + key.replace("\\", "\\\\").replace('"', '\\"') + '"]'


def problem(pattern: str) -> tuple[str, str] | None:
    """Why the proxy cannot honour ``pattern`` and what to do instead, or None when it can."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            re.compile(pattern)
    except re.error as exc:
        return f"is not a valid regular expression ({exc})", "correct the expression (RE2 syntax)"
    if _sre_parser is None:  # pragma: no cover
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = _walk(_sre_parser.parse(pattern))
    if found is None:
        return None
    what, instead = found
    return (
        f"uses {what}, which RE2 (Istio's regex engine) does not support",
        f"rewrite it without {what}: {instead}",
    )


def _walk(node: object) -> tuple[str, str] | None:
    if isinstance(node, _sre_parser.SubPattern):
        for op, arg in node.data:
            found = _NOT_RE2.get(op) or _walk(arg)
            if found is not None:
                return found
    elif isinstance(node, tuple | list):
        for item in node:
            found = _walk(item)
            if found is not None:
                return found
    return None


def _check(resource: Resource, path: str, pattern: str) -> Iterator[Finding]:
    found = problem(pattern)
    if found is not None:
        why, fix = found
        message = (
            f'regex "{pattern}" {why} — the proxy rejects the whole configuration (and keeps serving the '
            "previous one)"
        )
        yield finding(INVALID_REGEX, resource, path, message, fix)
