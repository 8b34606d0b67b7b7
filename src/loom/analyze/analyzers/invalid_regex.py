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
from collections.abc import Iterator

from loom.analyze.context import Context
from loom.analyze.finding import Code, Finding, Level, finding
from loom.api import Resource
from loom.api.resources.gateway import HTTPRouteSpec
from loom.api.resources.istio_networking import HTTPMatchRequest, VirtualServiceSpec
from loom.api.resources.values import StringMatch
from loom.snapshot.regex import syntax_error, unsupported_construct

INVALID_REGEX = Code("LM0801", Level.ERROR, "regex is invalid or uses constructs RE2 does not support")
CODES = (INVALID_REGEX,)

# How to do without each construct RE2 lacks (keyed as loom.snapshot.regex names them).
_INSTEAD: dict[str, str] = {
    "lookahead or lookbehind": "match the surrounding text instead, or split the rule",
    "negative lookahead or lookbehind": "list what to match instead, or add a rule before",
    "a backreference": "spell out the alternatives",
    "a conditional group": "use an alternation (a|b)",
    "an atomic group": "use a plain group (...)",
    "a possessive repeat": "use a plain repeat (*, +, ?)",
}


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
    error = syntax_error(pattern)
    if error is not None:
        return f"is not a valid regular expression ({error})", "correct the expression (RE2 syntax)"
    what = unsupported_construct(pattern)
    if what is None:
        return None
    return (
        f"uses {what}, which RE2 (Istio's regex engine) does not support",
        f"rewrite it without {what}: {_INSTEAD.get(what, 'use a construct RE2 supports')}",
    )


def _check(resource: Resource, path: str, pattern: str) -> Iterator[Finding]:
    found = problem(pattern)
    if found is not None:
        why, fix = found
        message = (
            f'regex "{pattern}" {why} — the proxy rejects the whole configuration (and keeps serving the '
            "previous one)"
        )
        yield finding(INVALID_REGEX, resource, path, message, fix)
