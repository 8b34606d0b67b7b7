"""A span: one request as one sidecar saw it. Made only for sampled requests."""

from __future__ import annotations

SERVER = 2
CLIENT = 3
"""OTLP's SpanKind numbers."""


class Span:
    __slots__ = (
        "attributes",
        "end_ns",
        "error",
        "kind",
        "name",
        "parent_id",
        "span_id",
        "start_ns",
        "trace_id",
    )

    def __init__(self, trace_id: str, span_id: str, parent_id: str | None, kind: int) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_id = parent_id
        self.kind = kind
        self.name = ""
        self.start_ns = 0
        self.end_ns = 0
        self.error = False
        self.attributes: dict[str, str] = {}
