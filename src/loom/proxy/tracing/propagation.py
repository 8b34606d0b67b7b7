"""Trace context in HTTP headers: W3C ``traceparent``/``tracestate`` and B3 (single and multi).

Pure functions over the request's header index (lower-case names → values). The sidecar forwards
the formats it received, plus W3C always, carrying its own span id as the parent of the next hop.
"""

from __future__ import annotations

from dataclasses import dataclass

W3C = 1
B3_SINGLE = 2
B3_MULTI = 4

TRACE_HEADERS = frozenset(
    (
        b"traceparent",
        b"b3",
        b"x-b3-traceid",
        b"x-b3-spanid",
        b"x-b3-parentspanid",
        b"x-b3-sampled",
        b"x-b3-flags",
    )
)
"""Headers the sidecar rewrites (``tracestate`` passes through unchanged)."""

_HEX = frozenset(b"0123456789abcdef")


@dataclass(slots=True)
class Incoming:
    """The trace context a request arrived with."""

    trace_id: str
    """32 hex digits (a 64-bit B3 id is padded on the left with zeros)."""
    parent_id: str | None
    """The caller's span id: the parent of the span made here (None: a trace without a span yet)."""
    sampled: bool | None
    """The caller's decision; None: not decided (decide here)."""
    formats: int
    b3_short: bool = False
    """The B3 trace id was 64-bit: forward it as 16 hex digits in B3 headers."""


def _hex(value: bytes, length: int) -> str | None:
    value = value.strip().lower()
    if len(value) != length or not _HEX.issuperset(value):
        return None
    text = value.decode()
    return None if text.count("0") == length else text


def parse_traceparent(value: bytes) -> Incoming | None:
    parts = value.strip().split(b"-")
    if len(parts) < 4 or len(parts[0]) != 2 or parts[0] == b"ff":
        return None
    trace_id, span_id = _hex(parts[1], 32), _hex(parts[2], 16)
    if trace_id is None or span_id is None or len(parts[3]) != 2:
        return None
    try:
        flags = int(parts[3], 16)
    except ValueError:
        return None
    return Incoming(trace_id, span_id, bool(flags & 1), W3C)


def _b3_trace(value: bytes) -> tuple[str, bool] | None:
    value = value.strip()
    if len(value) == 16:
        short = _hex(value, 16)
        return (short.rjust(32, "0"), True) if short is not None else None
    full = _hex(value, 32)
    return (full, False) if full is not None else None


def _b3_sampled(value: bytes | None) -> bool | None:
    if value is None:
        return None
    value = value.strip().lower()
    if value in (b"1", b"d", b"true"):
        return True
    if value in (b"0", b"false"):
        return False
    return None


def parse_b3_single(value: bytes) -> Incoming | None:
    """``b3: {trace}-{span}[-{sampled}[-{parent}]]`` or just ``b3: {sampled}``."""
    parts = value.strip().split(b"-")
    if len(parts) < 2:
        return None
    trace = _b3_trace(parts[0])
    span_id = _hex(parts[1], 16)
    if trace is None or span_id is None:
        return None
    sampled = _b3_sampled(parts[2]) if len(parts) > 2 else None
    return Incoming(trace[0], span_id, sampled, B3_SINGLE, trace[1])


def parse_b3_multi(hmap: dict[bytes, bytes]) -> Incoming | None:
    raw_trace = hmap.get(b"x-b3-traceid")
    raw_span = hmap.get(b"x-b3-spanid")
    if raw_trace is None or raw_span is None:
        return None
    trace = _b3_trace(raw_trace)
    span_id = _hex(raw_span, 16)
    if trace is None or span_id is None:
        return None
    sampled = True if hmap.get(b"x-b3-flags", b"").strip() == b"1" else _b3_sampled(hmap.get(b"x-b3-sampled"))
    return Incoming(trace[0], span_id, sampled, B3_MULTI, trace[1])


def extract(hmap: dict[bytes, bytes]) -> Incoming | None:
    """The incoming context, W3C first, then B3 single, then B3 multi; the formats seen are kept
    so that the next hop gets the ones its caller used."""
    found: Incoming | None = None
    formats = 0
    value = hmap.get(b"traceparent")
    if value is not None:
        found = parse_traceparent(value)
        if found is not None:
            formats |= W3C
    value = hmap.get(b"b3")
    if value is not None:
        single = parse_b3_single(value)
        if single is not None:
            formats |= B3_SINGLE
            found = _merge(found, single)
    if b"x-b3-traceid" in hmap:
        multi = parse_b3_multi(hmap)
        if multi is not None:
            formats |= B3_MULTI
            found = _merge(found, multi)
    if found is None:
        return None
    found.formats = formats
    return found


def _merge(found: Incoming | None, b3: Incoming) -> Incoming:
    """The context already found (W3C first), remembering a 64-bit B3 id of the same trace."""
    if found is None:
        return b3
    if b3.b3_short and b3.trace_id == found.trace_id:
        found.b3_short = True
    return found


def sampled_only(hmap: dict[bytes, bytes]) -> bool | None:
    """A bare decision without ids (``x-b3-sampled: 0``, ``b3: 0``): honoured like a full context."""
    value = hmap.get(b"b3")
    if value is not None and len(value.strip()) == 1:
        return _b3_sampled(value)
    if b"x-b3-traceid" not in hmap:
        return _b3_sampled(hmap.get(b"x-b3-sampled"))
    return None


def outgoing(
    trace_id: str, span_id: str, parent_id: str | None, sampled: bool, formats: int, b3_short: bool = False
) -> list[tuple[bytes, bytes]]:
    """The headers for the next hop: W3C always, the B3 formats the request came with."""
    flag = b"1" if sampled else b"0"
    headers = [(b"traceparent", b"00-%s-%s-0%s" % (trace_id.encode(), span_id.encode(), flag))]
    b3_trace = (trace_id[16:] if b3_short else trace_id).encode()
    if formats & B3_SINGLE:
        value = b"%s-%s-%s" % (b3_trace, span_id.encode(), flag)
        if parent_id:
            value += b"-" + parent_id.encode()
        headers.append((b"b3", value))
    if formats & B3_MULTI:
        headers += [
            (b"x-b3-traceid", b3_trace),
            (b"x-b3-spanid", span_id.encode()),
            (b"x-b3-sampled", flag),
        ]
        if parent_id:
            headers.append((b"x-b3-parentspanid", parent_id.encode()))
    return headers


def replace_headers(
    headers: list[tuple[bytes, bytes]], hmap: dict[bytes, bytes], new: list[tuple[bytes, bytes]]
) -> None:
    """Drop every trace header the request had and add ``new`` (to the list and the index)."""
    if any(name in hmap for name in TRACE_HEADERS):
        headers[:] = [(n, v) for n, v in headers if n.lower() not in TRACE_HEADERS]
        for name in TRACE_HEADERS:
            hmap.pop(name, None)
    headers.extend(new)
    for name, value in new:
        hmap[name] = value
