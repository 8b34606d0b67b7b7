"""What the sidecars pushed: per proxy, timestamped cumulative reports over the last 15 minutes,
and the tap events of the sessions that asked for them.

Memory is bounded: a proxy keeps at most one report per ``spacing`` seconds (the newest always
replaces the one before it until ``spacing`` has passed) for the last ``RECENT`` seconds, one per
``OLD_SPACING`` seconds before that, for ``retention`` seconds (about 50 reports); values that
did not change between reports are shared; a proxy that deregistered or stopped reporting is
forgotten. Tap events wait in one bounded ring, and in each tap session's bounded queue.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from loom.controlplane.telemetry.report import Head, Report, parse_report

Key = tuple[str, str]

RETENTION = 15 * 60.0
SPACING = 5.0
RECENT = 120.0
OLD_SPACING = 30.0
"""Reports older than ``RECENT`` are thinned to one per ``OLD_SPACING`` seconds."""
INTERVAL = 5.0
"""How often sidecars push while nobody taps."""
TAP_INTERVAL = 0.5
"""How often they push while a tap session wants their requests."""
TAP_RING = 10000
"""Tap events kept for ``loom top`` (all proxies together)."""
SESSION_QUEUE = 2000
IDLE_FORGET = 120.0
"""A proxy that has not pushed for this long is forgotten."""


@dataclass(slots=True)
class ProxyTelemetry:
    reports: deque[Report] = field(default_factory=deque)
    heads: dict[Head, Head] = field(default_factory=dict)


@dataclass(eq=False)
class TapSession:
    """One tap client (or a ``loom top`` lease): which events it wants, and its queue."""

    accepts: Callable[[dict[str, Any]], bool]
    until: float
    """When the session ends (``time.monotonic``)."""
    queue: asyncio.Queue[dict[str, Any]] | None = None
    dropped: int = 0


class TelemetryStore:
    def __init__(
        self,
        *,
        retention: float = RETENTION,
        spacing: float = SPACING,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.retention = retention
        self.spacing = spacing
        self.interval = interval
        self.clock = clock
        self.proxies: dict[Key, ProxyTelemetry] = {}
        self.sessions: set[TapSession] = set()
        self.events: deque[tuple[float, dict[str, Any]]] = deque(maxlen=TAP_RING)

    # pushes ------------------------------------------------------------------------------

    def push(self, key: Key, data: Any) -> dict[str, object]:
        """Take one report (``ReportError`` if it is not one); the answer for the sidecar."""
        now = self.clock()
        proxy = self.proxies.get(key)
        if proxy is None:
            proxy = self.proxies[key] = ProxyTelemetry()
        reports = proxy.reports
        previous = reports[-1] if reports else None
        report, events = parse_report(data, now, proxy.heads, previous)
        if len(reports) >= 2 and now - reports[-2].time < self.spacing and reports[-1].start == report.start:
            reports[-1] = report  # (after a restart the old process's last report stays)
        else:
            reports.append(report)
        while reports and reports[0].time < now - self.retention:
            reports.popleft()
        _thin(reports, now - RECENT, max(OLD_SPACING, self.spacing))
        if events:
            self._dispatch(key, events, now)
        tapping = self.tapping()
        return {"interval": TAP_INTERVAL if tapping else self.interval, "tap": tapping}

    def forget(self, key: Key) -> None:
        self.proxies.pop(key, None)

    def prune(self, registered: Callable[[Key], bool]) -> None:
        """Forget proxies that deregistered, or stopped pushing."""
        idle = self.clock() - IDLE_FORGET
        for key in list(self.proxies):
            reports = self.proxies[key].reports
            if not registered(key) or not reports or reports[-1].time < idle:
                del self.proxies[key]

    def reports(self) -> Iterator[tuple[Key, deque[Report]]]:
        for key, proxy in self.proxies.items():
            yield key, proxy.reports

    # tap ---------------------------------------------------------------------------------

    def tapping(self) -> bool:
        """Whether any tap session (or ``loom top`` lease) is open: proxies record requests then."""
        if not self.sessions:
            return False
        now = time.monotonic()
        for session in [s for s in self.sessions if s.until <= now and s.queue is None]:
            self.sessions.discard(session)
        return bool(self.sessions)

    def open_session(self, session: TapSession) -> TapSession:
        self.sessions.add(session)
        return session

    def close_session(self, session: TapSession) -> None:
        self.sessions.discard(session)

    def recent_events(self, since: float) -> list[dict[str, Any]]:
        """The tap events received since ``since`` (unix seconds)."""
        return [event for received, event in self.events if received >= since]

    def _dispatch(self, key: Key, events: list[dict[str, Any]], now: float) -> None:
        proxy = f"{key[0]}/{key[1]}"
        for raw in events:
            event = dict(raw)
            event["proxy"] = proxy
            event["source"] = _end(event, "source")
            event["destination"] = _end(event, "destination")
            self.events.append((now, event))
            for session in self.sessions:
                if session.queue is None or not session.accepts(event):
                    continue
                try:
                    session.queue.put_nowait(event)
                except asyncio.QueueFull:
                    session.dropped += 1


def _end(event: dict[str, Any], side: str) -> str:
    """``namespace/workload`` of one end of a tap event."""
    return f"{event.get(side + '_namespace', 'unknown')}/{event.get(side + '_workload', 'unknown')}"


def _thin(reports: deque[Report], before: float, spacing: float) -> None:
    """Drop reports older than ``before`` that follow the previous kept one by less than
    ``spacing`` — never the last report of a process (a restart follows it: its counts would be
    lost) nor the first after ``before``."""
    if len(reports) < 3 or reports[1].time >= before:
        return
    kept: list[Report] = [reports[0]]
    items = list(reports)
    for i in range(1, len(items)):
        report = items[i]
        last_of_run = i + 1 < len(items) and items[i + 1].start != report.start
        if report.time >= before or last_of_run or report.time - kept[-1].time >= spacing:
            kept.append(report)
    if len(kept) != len(items):
        reports.clear()
        reports.extend(kept)
