"""Durations: ``"250ms"``-style strings or plain seconds in, exact strings back out."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loom.snapshot import SnapshotError, from_builtins, parse_snapshot, snapshot_to_builtins
from loom.snapshot.durations import Duration, format_duration, parse_duration
from loom.snapshot.model import ClusterLimits, RouteAction
from tests.unit.snapshot.builders import ROUTE, with_route

GOOD = [
    ("250ms", 0.25),
    ("5s", 5.0),
    ("0s", 0.0),
    ("1.5s", 1.5),
    ("1m30s", 90.0),
    ("2h", 7200.0),
    ("1.5h", 5400.0),
    ("1h1m1s1ms", 3661.001),
    ("100us", 0.0001),
    ("100µs", 0.0001),
    ("1000ns", 0.000001),
    ("9ms", 0.009),
    ("35ms", 0.035),
    (" 5s ", 5.0),
    (5, 5.0),
    (0, 0.0),
    (0.5, 0.5),
    (3600, 3600.0),
]


@pytest.mark.parametrize(("value", "seconds"), GOOD, ids=[repr(v) for v, _ in GOOD])
def test_durations_that_parse(value: object, seconds: float) -> None:
    parsed = parse_duration(value)
    assert parsed == seconds
    assert isinstance(parsed, float)


BAD = [
    ("", "empty duration"),
    ("   ", "empty duration"),
    ("5", "invalid duration"),
    ("5 s", "invalid duration"),
    ("-5s", "invalid duration"),
    ("5S", "invalid duration"),
    ("5d", "invalid duration"),
    ("1e3s", "invalid duration"),
    ("s", "invalid duration"),
    ("ms", "invalid duration"),
    ("1.s", "invalid duration"),
    (".5s", "invalid duration"),
    ("5s5", "invalid duration"),
    ("5m 30s", "invalid duration"),
    ("five seconds", "invalid duration"),
    (True, "not a boolean"),
    (False, "not a boolean"),
    (None, "expected a duration"),
    ([], "expected a duration"),
    ({"seconds": 5}, "expected a duration"),
    (-1, "cannot be negative"),
    (-0.5, "cannot be negative"),
    (math.nan, "finite"),
    (math.inf, "finite"),
]


@pytest.mark.parametrize(("value", "words"), BAD, ids=[repr(v) for v, _ in BAD])
def test_durations_that_do_not_parse(value: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_duration(value)


FORMATTED = [
    (0.25, "250ms"),
    (0.0005, "0.5ms"),
    (0.001, "1ms"),
    (0.0, "0s"),
    (1.0, "1s"),
    (5.0, "5s"),
    (90.0, "90s"),
    (3600.0, "3600s"),
    (1.2345678, "1.2345678s"),
    (1234567.0, "1234567s"),
    (1e16, "10000000000000000s"),
    (1e-7, "0.0001ms"),
]


@pytest.mark.parametrize(("seconds", "text"), FORMATTED, ids=[t for _, t in FORMATTED])
def test_durations_format_exactly_and_without_exponents(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds


@given(st.floats(min_value=0, allow_nan=False, allow_infinity=False))
def test_any_duration_survives_a_format_and_parse(seconds: float) -> None:
    text = format_duration(seconds)
    assert "e" not in text.removesuffix("ms").removesuffix("s")
    assert parse_duration(text) == seconds


@given(st.integers(min_value=0, max_value=10**9))
def test_milliseconds_parse_to_the_nearest_float(ms: int) -> None:
    assert parse_duration(f"{ms}ms") == ms / 1000


def test_a_duration_field_reads_strings_and_writes_them_back() -> None:
    action = from_builtins({"destinations": [{"cluster": "c"}], "timeout": "1m30s"}, RouteAction)
    assert action.timeout == 90.0
    assert snapshot_to_builtins(action)["timeout"] == "90s"


@pytest.mark.parametrize("value", ["250ms", 0.25])
def test_a_duration_field_holds_seconds_as_a_float(value: object) -> None:
    action = from_builtins({"destinations": [{"cluster": "c"}], "timeout": value}, RouteAction)
    timeout = action.timeout
    assert isinstance(timeout, float) and isinstance(timeout, Duration)
    assert timeout == 0.25 and timeout * 4 == 1.0 and type(timeout * 4) is float
    assert snapshot_to_builtins(action)["timeout"] == "250ms"  # a number read is written as a string


def test_default_durations_are_written_as_strings_too() -> None:
    assert snapshot_to_builtins(ClusterLimits()) == {
        "max_connections": 1 << 32,
        "max_pending_requests": 1 << 32,
        "max_requests": 1 << 32,
        "max_requests_per_connection": 0,
        "connect_timeout": "10s",
        "idle_timeout": "3600s",
    }


def test_a_bad_duration_in_a_snapshot_names_its_field() -> None:
    with pytest.raises(SnapshotError) as caught:
        parse_snapshot(with_route({"route": {"destinations": [{"cluster": "catalog-v1"}], "timeout": "-1s"}}))
    [problem] = caught.value.problems
    assert problem.field == f"{ROUTE}.route.timeout"
    assert "invalid duration '-1s'" in problem.message
