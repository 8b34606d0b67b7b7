"""The proxy's own counters and gauges (``loom_*``): small, labelled, children cached."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar, cast

from loom.proxy.telemetry.exposition import format_value, header, label_pairs


class CounterChild:
    __slots__ = ("labels", "value")

    def __init__(self, labels: str) -> None:
        self.labels = labels
        self.value: float = 0

    def inc(self, n: float = 1) -> None:
        self.value += n


class GaugeChild:
    __slots__ = ("_fn", "labels", "value")

    def __init__(self, labels: str) -> None:
        self.labels = labels
        self.value: float = 0
        self._fn: Callable[[], float] | None = None

    def set(self, value: float) -> None:
        self.value = value

    def inc(self, n: float = 1) -> None:
        self.value += n

    def dec(self, n: float = 1) -> None:
        self.value -= n

    def set_function(self, fn: Callable[[], float] | None) -> None:
        """Read the value from ``fn()`` at scrape time instead (e.g. ``len(connections)``)."""
        self._fn = fn

    def read(self) -> float:
        if self._fn is None:
            return self.value
        try:
            return self._fn()
        except Exception:
            # A scrape must not fail because one callback did.
            return math.nan


_Child = TypeVar("_Child", CounterChild, GaugeChild)


class _Family:
    __slots__ = ("_children", "help", "label_names", "name")
    kind = ""

    def __init__(self, name: str, help_text: str, label_names: tuple[str, ...]) -> None:
        self.name = name
        self.help = help_text
        self.label_names = label_names
        self._children: dict[tuple[str, ...], CounterChild | GaugeChild] = {}

    def _child(self, values: tuple[str, ...], factory: type[_Child]) -> _Child:
        child = self._children.get(values)
        if child is None:
            if len(values) != len(self.label_names):
                raise ValueError(f"{self.name} takes labels {self.label_names}, got {values!r}")
            child = factory(label_pairs(self.label_names, [str(v) for v in values]))
            self._children[values] = child
        return cast(_Child, child)

    def render_into(self, out: list[str]) -> None:
        header(out, self.name, self.help, self.kind)
        for child in self._children.values():
            labels = f"{{{child.labels}}}" if child.labels else ""
            value = child.read() if type(child) is GaugeChild else child.value
            out.append(f"{self.name}{labels} {format_value(value)}\n")


class Counter(_Family):
    """A monotonically increasing count; ``labels(...)`` gives the child to ``inc``."""

    __slots__ = ()
    kind = "counter"

    def labels(self, *values: str) -> CounterChild:
        """The child for these label values (in ``label_names`` order); cached."""
        return self._child(values, CounterChild)

    def inc(self, n: float = 1) -> None:
        """For a counter without labels."""
        self._child((), CounterChild).inc(n)


class Gauge(_Family):
    """A value that goes up and down, or is read from a function at scrape time."""

    __slots__ = ()
    kind = "gauge"

    def labels(self, *values: str) -> GaugeChild:
        """The child for these label values (in ``label_names`` order); cached."""
        return self._child(values, GaugeChild)

    def set(self, value: float) -> None:
        self._child((), GaugeChild).set(value)

    def inc(self, n: float = 1) -> None:
        self._child((), GaugeChild).inc(n)

    def dec(self, n: float = 1) -> None:
        self._child((), GaugeChild).dec(n)

    def set_function(self, fn: Callable[[], float] | None) -> None:
        self._child((), GaugeChild).set_function(fn)
