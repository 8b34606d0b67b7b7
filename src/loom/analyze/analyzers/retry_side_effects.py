"""LM0702: a route that retries non-idempotent requests on errors the upstream may have acted on.

``retryOn: 5xx`` (or ``gateway-error``, ``reset``, or a 5xx status code written out) retries a
request after the upstream has received it — and perhaps processed it: a 500 after the order was
written, a connection reset while the response was on its way. For GET, PUT or DELETE a repeat
is harmless; a POST or PATCH repeated creates a second order or charges a card twice.

Reported for a VirtualService rule (its ``retries``, or its destination's default
``retryPolicy``) or an HTTPRoute rule (``retry.codes``) that matches POST or PATCH, or any method
(a rule without a method condition). 503 alone is not reported: it is what a proxy or an
overloaded server answers before processing, and Istio retries it by default. Retrying on
``connect-failure``, ``refused-stream`` or ``reset-before-request`` is always safe.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator

from loom.analyze.context import Context
from loom.analyze.finding import Code, Finding, Level, finding
from loom.analyze.retry_policy import Retry, gateway_rule_retry, istio_rule_retries
from loom.api import Resource
from loom.api.resources.gateway import HTTPRouteSpec
from loom.api.resources.istio_networking import HTTPRoute, VirtualServiceSpec

RETRIED_SIDE_EFFECTS = Code(
    "LM0702", Level.WARNING, "non-idempotent requests (POST, PATCH) retried on 5xx or reset"
)
CODES = (RETRIED_SIDE_EFFECTS,)

UNSAFE_METHODS = ("POST", "PATCH")
_UNSAFE_TOKENS = frozenset({"5xx", "gateway-error", "reset"})


def run(ctx: Context) -> Iterator[Finding]:
    for resource, spec in ctx.of(VirtualServiceSpec):
        for i, rule in enumerate(spec.http):
            methods = _istio_methods(rule)
            if not methods:
                continue
            for retry in istio_rule_retries(ctx, resource, rule, i):
                triggers = _triggers(retry)
                if retry.attempts > 0 and triggers:
                    path = f"{retry.path}.retryOn" if retry.on_route else f"spec.http[{i}]"
                    yield _finding(resource, path, retry, methods, triggers)
                    break
    for resource, route in ctx.of(HTTPRouteSpec):
        for i, rule in enumerate(route.rules):
            retry = gateway_rule_retry(resource, rule, i)
            if retry is None or retry.attempts <= 0:
                continue
            methods = _gateway_methods([match.method for match in rule.matches])
            triggers = _triggers(retry)
            if methods and triggers:
                yield _finding(resource, f"spec.rules[{i}].retry.codes", retry, methods, triggers)


def _finding(resource: Resource, path: str, retry: Retry, methods: str, triggers: list[str]) -> Finding:
    what = " and ".join([", ".join(triggers[:-1]), triggers[-1]] if len(triggers) > 1 else triggers)
    origin = f", {retry.origin()}" if retry.origin() else ""
    message = (
        f"this route retries {methods} on {what} (attempts {retry.attempts}{origin}): a request that "
        "failed after the upstream acted on it is sent again, duplicating its side effects (a second order, "
        "a double charge)"
    )
    fix = (
        "retry POST and PATCH only on connect-failure,refused-stream,reset-before-request (the request never "
        "reached the app): give them their own rule with those retries, or make the endpoint idempotent "
        "(an idempotency key)"
    )
    return finding(RETRIED_SIDE_EFFECTS, resource, path, message, fix)


def _triggers(retry: Retry) -> list[str]:
    return [
        token
        for token in retry.retry_on
        if token in _UNSAFE_TOKENS or (token.isdigit() and 500 <= int(token) <= 599 and token != "503")
    ]


def _istio_methods(rule: HTTPRoute) -> str:
    """Which unsafe methods the rule takes, in words ("" for none)."""
    if not rule.match or any(match.method is None for match in rule.match):
        return "requests of every method, POST and PATCH included,"
    found: list[str] = []
    for match in rule.match:
        method = match.method
        assert method is not None
        for candidate in UNSAFE_METHODS:
            if _takes(method.exact, method.prefix, method.regex, candidate) and candidate not in found:
                found.append(candidate)
    return " and ".join(found) + " requests" if found else ""


def _gateway_methods(methods: list[str | None]) -> str:
    if not methods or any(method is None for method in methods):
        return "requests of every method, POST and PATCH included,"
    found = [m for m in UNSAFE_METHODS if m in methods]
    return " and ".join(found) + " requests" if found else ""


def _takes(exact: str | None, prefix: str | None, regex: str | None, method: str) -> bool:
    if exact is not None:
        return exact.upper() == method
    if prefix is not None:
        return method.startswith(prefix.upper())
    if regex is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return re.fullmatch(regex, method) is not None
        except re.error:
            return False  # LM0801 reports it
    return True  # an empty StringMatch takes any value
