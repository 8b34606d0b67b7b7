"""Fault injection (Istio ``fault``): a fixed delay and/or an abort, each for a percentage of requests."""

from __future__ import annotations

import random
from collections.abc import Callable

from loom.snapshot.model import Fault


class CompiledFault:
    __slots__ = ("_abort_fraction", "_delay_fraction", "_random", "abort_status", "delay")

    def __init__(
        self,
        *,
        delay: float = 0.0,
        delay_percentage: float = 0.0,
        abort_status: int | None = None,
        abort_percentage: float = 0.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.delay = delay
        self._delay_fraction = delay_percentage / 100.0 if delay > 0 else 0.0
        self.abort_status = abort_status
        self._abort_fraction = abort_percentage / 100.0 if abort_status is not None else 0.0
        self._random = rand

    @property
    def is_noop(self) -> bool:
        return self._delay_fraction == 0.0 and self._abort_fraction == 0.0

    def decide(self) -> tuple[float, int | None]:
        """(seconds to delay, or 0; status to abort with, or None) for one request.

        The two draws are independent, as in Envoy: a request may be delayed and then aborted.
        """
        delay = 0.0
        f = self._delay_fraction
        if f > 0.0 and (f >= 1.0 or self._random() < f):
            delay = self.delay
        abort = None
        f = self._abort_fraction
        if f > 0.0 and (f >= 1.0 or self._random() < f):
            abort = self.abort_status
        return delay, abort

    def __repr__(self) -> str:
        return (
            f"<CompiledFault delay={self.delay}s@{self._delay_fraction:.2%} "
            f"abort={self.abort_status}@{self._abort_fraction:.2%}>"
        )


def compile_fault(fault: Fault | None, rand: Callable[[], float] = random.random) -> CompiledFault | None:
    if fault is None:
        return None
    compiled = CompiledFault(
        delay=fault.delay.fixed if fault.delay is not None else 0.0,
        delay_percentage=fault.delay.percentage if fault.delay is not None else 0.0,
        abort_status=fault.abort.http_status if fault.abort is not None else None,
        abort_percentage=fault.abort.percentage if fault.abort is not None else 0.0,
        rand=rand,
    )
    return None if compiled.is_noop else compiled
