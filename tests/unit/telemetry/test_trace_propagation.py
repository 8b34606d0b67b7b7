"""Trace headers: W3C and B3 parsed, a caller's decision kept, the next hop's headers written."""

from __future__ import annotations

from loom.proxy.tracing import propagation as p

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def test_w3c() -> None:
    found = p.extract({b"traceparent": f"00-{TRACE}-{SPAN}-01".encode()})
    assert found is not None and (found.trace_id, found.parent_id, found.sampled) == (TRACE, SPAN, True)
    assert found.formats == p.W3C
    assert p.extract({b"traceparent": f"00-{TRACE}-{SPAN}-00".encode()}).sampled is False  # type: ignore[union-attr]
    for bad in (f"00-{'0' * 32}-{SPAN}-01", f"ff-{TRACE}-{SPAN}-01", f"00-{TRACE}-xyz-01", "garbage"):
        assert p.extract({b"traceparent": bad.encode()}) is None


def test_b3_single_and_multi() -> None:
    single = p.extract({b"b3": f"{TRACE}-{SPAN}-1-{'a' * 16}".encode()})
    assert single is not None and (single.trace_id, single.parent_id, single.sampled) == (TRACE, SPAN, True)
    multi = p.extract({b"x-b3-traceid": SPAN.encode(), b"x-b3-spanid": b"b" * 16, b"x-b3-flags": b"1"})
    assert multi is not None and multi.trace_id == "0" * 16 + SPAN and multi.b3_short and multi.sampled
    assert p.extract({b"x-b3-traceid": SPAN.encode(), b"x-b3-spanid": b"b" * 16}).sampled is None  # type: ignore[union-attr]
    assert p.sampled_only({b"x-b3-sampled": b"0"}) is False
    assert p.sampled_only({b"b3": b"0"}) is False


def test_outgoing_keeps_the_formats_received() -> None:
    headers = dict(p.outgoing(TRACE, "c" * 16, SPAN, True, p.W3C | p.B3_MULTI | p.B3_SINGLE))
    assert headers[b"traceparent"] == f"00-{TRACE}-{'c' * 16}-01".encode()
    assert headers[b"b3"] == f"{TRACE}-{'c' * 16}-1-{SPAN}".encode()
    assert headers[b"x-b3-parentspanid"] == SPAN.encode() and headers[b"x-b3-sampled"] == b"1"
    assert set(dict(p.outgoing(TRACE, "c" * 16, None, True, p.W3C))) == {b"traceparent"}


def test_replace_headers_drops_the_old_ones() -> None:
    headers = [
        (b"Host", b"x"),
        (b"X-B3-TraceId", b"1" * 32),
        (b"traceparent", b"old"),
        (b"tracestate", b"k=v"),
    ]
    hmap = {name.lower(): value for name, value in headers}
    p.replace_headers(headers, hmap, [(b"traceparent", b"new")])
    assert headers == [(b"Host", b"x"), (b"tracestate", b"k=v"), (b"traceparent", b"new")]
    assert hmap == {b"host": b"x", b"tracestate": b"k=v", b"traceparent": b"new"}
