"""Writing heads and chunks; hop-by-hop headers are dropped in exactly one place."""

from __future__ import annotations

import pytest

from loom.proxy.codec.serialize import (
    CONTINUE_100,
    HOP_BY_HOP,
    LAST_CHUNK,
    chunk,
    end_to_end,
    request_head,
    response_head,
    simple_response,
)
from tests.unit.codec.recorder import parse_requests, response_parser

HEADERS = [
    (b"Host", b"catalog"),
    (b"Connection", b"keep-alive"),
    (b"Keep-Alive", b"timeout=5"),
    (b"Proxy-Connection", b"keep-alive"),
    (b"Proxy-Authenticate", b"Basic"),
    (b"Proxy-Authorization", b"Basic eA=="),
    (b"TE", b"trailers"),
    (b"Trailer", b"X-Checksum"),
    (b"Transfer-Encoding", b"chunked"),
    (b"Upgrade", b"websocket"),
    (b"X-Secret", b"s"),
    (b"X-Kept", b"k"),
    (b"Content-Type", b"text/plain"),
]


def test_every_hop_by_hop_header_is_dropped_whatever_its_case() -> None:
    kept = end_to_end(HEADERS, b"keep-alive")
    assert kept == [
        (b"Host", b"catalog"),
        (b"X-Secret", b"s"),
        (b"X-Kept", b"k"),
        (b"Content-Type", b"text/plain"),
    ]
    assert {n.lower() for n, _ in HEADERS} >= HOP_BY_HOP


def test_headers_named_by_connection_are_dropped_too() -> None:
    kept = end_to_end(HEADERS, b"Upgrade, X-Secret ,close")
    assert [n for n, _ in kept] == [b"Host", b"X-Kept", b"Content-Type"]


@pytest.mark.parametrize("connection", [None, b"close", b"keep-alive", b"Keep-Alive", b"CLOSE"])
def test_plain_connection_values_drop_only_the_hop_by_hop_set(connection: bytes | None) -> None:
    kept = end_to_end(HEADERS, connection)
    assert [n for n, _ in kept] == [b"Host", b"X-Secret", b"X-Kept", b"Content-Type"]


def test_end_to_end_keeps_order_and_does_not_touch_its_input() -> None:
    headers = [(b"B", b"2"), (b"a", b"1"), (b"Connection", b"x-drop"), (b"X-Drop", b"d"), (b"B", b"3")]
    before = list(headers)
    assert end_to_end(headers, b"x-drop") == [(b"B", b"2"), (b"a", b"1"), (b"B", b"3")]
    assert headers == before


def test_request_head_is_written_in_http_11_with_headers_as_given() -> None:
    assert request_head(b"GET", b"/a?b=1", [(b"Host", b"svc"), (b"x-a", b"1")]) == (
        b"GET /a?b=1 HTTP/1.1\r\nHost: svc\r\nx-a: 1\r\n\r\n"
    )


def test_response_head_uses_the_given_reason_else_the_standard_one() -> None:
    assert response_head(200, [(b"a", b"1")]) == b"HTTP/1.1 200 OK\r\na: 1\r\n\r\n"
    assert response_head(503, []) == b"HTTP/1.1 503 Service Unavailable\r\n\r\n"
    assert response_head(200, [], b"Fine") == b"HTTP/1.1 200 Fine\r\n\r\n"
    assert response_head(599, []) == b"HTTP/1.1 599 Unknown\r\n\r\n"


@pytest.mark.parametrize(
    ("data", "framed"),
    [
        (b"a", b"1\r\na\r\n"),
        (b"hello", b"5\r\nhello\r\n"),
        (b"x" * 16, b"10\r\n" + b"x" * 16 + b"\r\n"),
        (b"y" * 4096, b"1000\r\n" + b"y" * 4096 + b"\r\n"),
    ],
    ids=["1", "5", "16", "4096"],
)
def test_chunk_framing(data: bytes, framed: bytes) -> None:
    assert chunk(data) == framed


def test_chunks_and_the_last_chunk_parse_back_to_the_body() -> None:
    parts = [b"hello", b" ", b"x" * 300, b"!"]
    body = b"".join(chunk(p) for p in parts) + LAST_CHUNK
    head = request_head(b"POST", b"/", [(b"Host", b"a"), (b"Transfer-Encoding", b"chunked")])
    [request] = parse_requests(head + body).requests
    assert request.complete and request.body == b"".join(parts)
    assert LAST_CHUNK == b"0\r\n\r\n"


def test_simple_response_is_complete_and_framed() -> None:
    assert simple_response(404, b"no route\n", close=False) == (
        b"HTTP/1.1 404 Not Found\r\ncontent-length: 9\r\ncontent-type: text/plain\r\n\r\nno route\n"
    )
    closing = simple_response(503, b"x", close=True, extra=[(b"retry-after", b"1")])
    assert closing == (
        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 1\r\ncontent-type: text/plain\r\n"
        b"retry-after: 1\r\nconnection: close\r\n\r\nx"
    )


def test_a_simple_response_parses_back() -> None:
    parser, rec = response_parser()
    parser.feed(simple_response(301, b"", close=False, extra=[(b"location", b"https://a/")]))
    parser.feed(simple_response(502, b"bad gateway\n", close=True))
    assert rec.shape() == [301, "end", 502, b"bad gateway\n", "end"]
    assert rec.heads[0].hmap[b"location"] == b"https://a/"
    assert rec.heads[0].keep_alive and not rec.heads[1].keep_alive


def test_the_100_continue_interim_response() -> None:
    parser, rec = response_parser()
    parser.feed(CONTINUE_100)
    assert rec.shape() == [100, "end"]
