"""The pure helpers the analyzers share: host resolution, the RE2 check, durations, weight rescaling,
the text and JSON forms of a finding."""

from __future__ import annotations

import json

import pytest

from loom.analyze import Finding, Level, Report, render
from loom.analyze.analyzers.invalid_regex import problem
from loom.analyze.analyzers.route_weights import _scaled
from loom.analyze.hosts import covers, resolve
from loom.analyze.retry_policy import duration

KNOWN = {"reviews.other.svc.cluster.local"}


@pytest.mark.parametrize(
    ("written", "resolved"),
    [
        ("reviews", "reviews.shop.svc.cluster.local"),
        ("Reviews.", "reviews.shop.svc.cluster.local"),
        ("reviews.other", "reviews.other.svc.cluster.local"),
        ("example.com", "example.com"),
        ("reviews.other.svc", "reviews.other.svc.cluster.local"),
        ("reviews.other.svc.cluster.local", "reviews.other.svc.cluster.local"),
        ("api.payments.example", "api.payments.example"),
        ("*", "*"),
        ("*.example.com", "*.example.com"),
    ],
)
def test_resolve(written: str, resolved: str) -> None:
    assert resolve(written, "shop", "cluster.local", KNOWN) == resolved


@pytest.mark.parametrize(
    ("pattern", "host", "covered"),
    [
        ("a.example.com", "a.example.com", True),
        ("*", "a.example.com", True),
        ("*.example.com", "a.example.com", True),
        ("*.example.com", "a.b.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.com", "*.example.com", True),
        ("*.example.com", "*.com", False),
        ("a.example.com", "b.example.com", False),
    ],
)
def test_covers(pattern: str, host: str, covered: bool) -> None:
    assert covers(pattern, host) is covered


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        (r"^/api/v[0-9]+/.*$", None),
        (r"(?i)bearer\s+\S+", None),
        (r"(?P<id>\d+)", None),
        (r"(a)\1", "a backreference"),
        (r"(?P<x>a)(?P=x)", "a backreference"),
        (r"foo(?=bar)", "lookahead or lookbehind"),
        (r"(?<!x)y", "negative lookahead or lookbehind"),
        (r"(?>ab)", "an atomic group"),
        (r"a*+", "a possessive repeat"),
        (r"(a)?(?(1)b|c)", "a conditional group"),
        (r"[a-", "is not a valid regular expression"),
        (r"\z", "is not a valid regular expression"),
    ],
)
def test_regex_problem(pattern: str, why: str | None) -> None:
    found = problem(pattern)
    assert (found is None) if why is None else (found is not None and why in found[0]), found


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "5s"), (0.25, "250ms"), (90, "1m30s"), (120, "2m"), (10 / 3, "3.333s"), (0.001, "1ms")],
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


@pytest.mark.parametrize(
    ("weights", "scaled"),
    [([90, 5], [95, 5]), ([1, 1, 1], [34, 33, 33]), ([50, 60], [45, 55]), ([3], [100])],
)
def test_weights_rescaled_to_100(weights: list[int], scaled: list[int]) -> None:
    assert _scaled(weights) == scaled
    assert sum(_scaled(weights)) == 100


FINDING = Finding(
    code="LM0501",
    level=Level.WARNING,
    message="this rule can never match",
    fix="move the catch-all last",
    resource="VirtualService shop/cart",
    file="vs.yaml",
    line=9,
    path="spec.http[1]",
)


def test_text_line_and_colour() -> None:
    plain = (
        "Warning [LM0501] VirtualService shop/cart (vs.yaml:9) spec.http[1]: this rule can never match. "
        "Fix: move the catch-all last."
    )
    assert render.line(FINDING) == str(FINDING) == plain
    coloured = render.line(FINDING, colour=True)
    assert coloured.startswith("\x1b[33mWarning [LM0501]\x1b[0m VirtualService shop/cart")
    assert "\x1b[2mFix: move the catch-all last.\x1b[0m" in coloured


def test_json_and_summary() -> None:
    assert json.loads(render.as_json([FINDING])) == [
        {
            "code": "LM0501",
            "level": "Warning",
            "resource": "VirtualService shop/cart",
            "file": "vs.yaml",
            "line": 9,
            "path": "spec.http[1]",
            "message": "this rule can never match",
            "fix": "move the catch-all last",
        }
    ]
    report = Report((FINDING,), resources=3, files=1)
    assert render.summary(report) == "! 0 errors, 1 warning, 0 info in 3 resources (1 file)."
    assert render.summary(Report((), 1, 1)) == "✔ No issues found in 1 resource (1 file)."
    assert report.fails(Level.WARNING) and not report.fails(Level.ERROR)
