"""LM0501: a VirtualService rule that can never match, because an earlier rule matches everything.

VirtualService rules (``http`` and ``tcp``) are tried in order and the first match wins. A rule
with no ``match``, or with a match condition that every request meets, is a catch-all: any rule
after it is dead configuration — usually a catch-all written first by mistake, so the specific
routes (a canary header, an API prefix) never apply.

A match condition meets every request when it sets nothing but (optionally) a ``uri`` of prefix
``/`` or regex ``.*`` (``name``, ``ignoreUriCase`` and ``statPrefix`` do not restrict it). HTTPRoute
rules are not checked: the Gateway API orders them by specificity, not as written.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from loom.analyze.context import Context
from loom.analyze.finding import Code, Finding, Level, finding
from loom.api import Resource
from loom.api.resources.istio_networking import HTTPMatchRequest, L4MatchAttributes, VirtualServiceSpec
from loom.api.resources.values import StringMatch

UNREACHABLE_RULE = Code("LM0501", Level.WARNING, "rule after a catch-all rule can never match")
CODES = (UNREACHABLE_RULE,)

_ALL_PATHS = frozenset({".*", "/.*", "^.*$", "^/.*$", ".+", "/.*$"})


def run(ctx: Context) -> Iterator[Finding]:
    for resource, spec in ctx.of(VirtualServiceSpec):
        yield from _section(resource, "http", [_http_catch_all(rule.match) for rule in spec.http])
        yield from _section(resource, "tcp", [_tcp_catch_all(rule.match) for rule in spec.tcp])


def _section(resource: Resource, section: str, catch_all: Sequence[str | None]) -> Iterator[Finding]:
    """``catch_all[i]``: why rule i matches everything, or None when it does not."""
    first = next((i for i, why in enumerate(catch_all) if why is not None), None)
    if first is None:
        return
    why = catch_all[first]
    earlier = f"spec.{section}[{first}]"
    line = resource.line_of(earlier)
    for i in range(first + 1, len(catch_all)):
        message = (
            f"this rule can never match: rule {earlier} (line {line}) before it matches every request "
            f"({why}) and rules are tried in order"
        )
        fix = f"move rule {earlier} after the specific rules (a catch-all goes last), or give it a `match`"
        yield finding(UNREACHABLE_RULE, resource, f"spec.{section}[{i}]", message, fix)


def _http_catch_all(matches: tuple[HTTPMatchRequest, ...]) -> str | None:
    if not matches:
        return "it has no `match`"
    for j, match in enumerate(matches):
        restricting = match.model_fields_set - {"name", "ignore_uri_case", "stat_prefix", "uri"}
        restricting = {name for name in restricting if getattr(match, name) not in (None, {}, ())}
        if not restricting and _all_paths(match.uri):
            return (
                f"its match[{j}] sets no condition"
                if match.uri is None
                else f"its match[{j}] takes every path"
            )
    return None


def _all_paths(uri: StringMatch | None) -> bool:
    if uri is None:
        return True
    if uri.prefix is not None:
        return uri.prefix in ("", "/")
    if uri.regex is not None:
        return uri.regex in _ALL_PATHS
    return uri.exact is None  # an empty StringMatch ({}) sets nothing


def _tcp_catch_all(matches: tuple[L4MatchAttributes, ...]) -> str | None:
    if not matches:
        return "it has no `match`"
    for j, match in enumerate(matches):
        if not any(getattr(match, name) not in (None, {}, ()) for name in match.model_fields_set):
            return f"its match[{j}] sets no condition"
    return None
