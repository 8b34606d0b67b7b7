"""LM0701: retries that cannot all run within the route's timeout.

A route's ``timeout`` covers the whole request, every try included; ``perTryTimeout`` bounds one
try. ``attempts`` counts retries, so a request may take ``attempts + 1`` tries. When
``(attempts + 1) × perTryTimeout`` exceeds the route timeout, the timeout cuts the later tries
short (the client gets 504 while retries are still planned): the retry policy promises more than
the timeout allows. Checked for VirtualService rules (their own ``retries``, or the destination's
default ``retryPolicy``) and HTTPRoute rules (``retry.attempts``, ``timeouts.backendRequest``,
``timeouts.request``). A route without a timeout is not checked: Istio's default is none.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from loom.analyze.context import Context
from loom.analyze.finding import Code, Finding, Level, finding
from loom.analyze.retry_policy import Retry, duration, gateway_rule_retry, istio_rule_retries
from loom.api import Resource
from loom.api.resources.gateway import HTTPRouteSpec
from loom.api.resources.istio_networking import VirtualServiceSpec

RETRIES_EXCEED_TIMEOUT = Code("LM0701", Level.WARNING, "retries × perTryTimeout exceed the route timeout")
CODES = (RETRIES_EXCEED_TIMEOUT,)


def run(ctx: Context) -> Iterator[Finding]:
    for resource, spec in ctx.of(VirtualServiceSpec):
        for i, rule in enumerate(spec.http):
            if not rule.timeout:
                continue
            for retry in istio_rule_retries(ctx, resource, rule, i):
                path = f"{retry.path}.perTryTimeout" if retry.on_route else f"spec.http[{i}].timeout"
                yield from _check(resource, path, retry, rule.timeout, ("`timeout`", "perTryTimeout"))
    for resource, route in ctx.of(HTTPRouteSpec):
        for i, rule in enumerate(route.rules):
            retry = gateway_rule_retry(resource, rule, i)
            if retry is None or rule.timeouts is None or not rule.timeouts.request:
                continue
            path = f"spec.rules[{i}].timeouts.backendRequest"
            names = ("`timeouts.request`", "`timeouts.backendRequest`")
            yield from _check(resource, path, retry, rule.timeouts.request, names)


def _check(
    resource: Resource, path: str, retry: Retry, timeout: float, names: tuple[str, str]
) -> Iterator[Finding]:
    """``names``: how the route's timeout and the per-try timeout are written, for the fix."""
    per_try = retry.per_try_timeout
    if not per_try or retry.attempts <= 0:
        return
    tries = retry.attempts + 1
    needed = tries * per_try
    if needed <= timeout + 1e-9:
        return
    fit = math.floor(timeout / per_try + 1e-9)
    fits = {0: "not even one whole try fits", 1: "only 1 whole try fits"}.get(
        fit, f"only {fit} whole tries fit"
    )
    origin = f" (the retries are {retry.origin()})" if retry.origin() else ""
    message = (
        f"the retries allow {tries} tries (attempts {retry.attempts} + the first) of up to "
        f"{duration(per_try)} each, {duration(needed)} in all, but the route timeout of "
        f"{duration(timeout)} covers every try: {fits}, so the later retries are cut short by a 504{origin}"
    )
    lower_attempts = f" or attempts to {fit - 1}" if fit >= 2 else ""
    fix = (
        f"raise {names[0]} to at least {duration(needed)}, or lower {names[1]} to "
        f"{duration(timeout / tries)}{lower_attempts}"
    )
    yield finding(RETRIES_EXCEED_TIMEOUT, resource, path, message, fix)
