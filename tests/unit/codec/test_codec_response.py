"""ResponseParser: framing (length, chunked, close), HEAD, 1xx, 101, 204/304 and bad input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loom.proxy.codec.errors import UpstreamProtocolError
from loom.proxy.codec.response_parser import SwitchedProtocols
from tests.unit.codec.recorder import bytewise, response_parser, split_at


def test_a_content_length_response() -> None:
    parser, rec = response_parser()
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello")
    assert rec.shape() == [200, b"hello", "end"]
    [head] = rec.heads
    assert (head.status, head.reason, head.version) == (200, b"OK", b"1.1")
    assert head.content_length == 5 and not head.chunked and head.keep_alive
    assert head.headers == [(b"Content-Length", b"5"), (b"X-A", b"1"), (b"x-a", b"2")]
    assert head.hmap[b"x-a"] == b"1,2"
    assert parser.feed_eof() is False, "a complete response is not ended by the close"


def test_a_chunked_response_is_unframed() -> None:
    parser, rec = response_parser()
    parser.feed(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1;x=y\r\n!\r\n0\r\nT: 1\r\n\r\n"
    )
    assert rec.shape() == [200, b"hello!", "end"]
    assert rec.heads[0].chunked and rec.heads[0].content_length is None


def test_a_close_delimited_response_ends_at_eof() -> None:
    parser, rec = response_parser()
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello")
    parser.feed(b" world")
    assert rec.shape() == [200, b"hello world"]
    assert parser.feed_eof() is True
    assert rec.shape() == [200, b"hello world", "end"]
    assert parser.feed_eof() is False, "only once"


def test_a_non_chunked_transfer_encoding_is_delimited_by_close() -> None:
    parser, rec = response_parser()
    parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc")
    assert not rec.heads[0].chunked
    assert parser.feed_eof() is True
    assert rec.shape() == [200, b"abc", "end"]


def test_eof_inside_a_length_delimited_body_does_not_end_the_response() -> None:
    parser, rec = response_parser()
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel")
    assert parser.feed_eof() is False
    assert rec.shape() == [200, b"hel"]


def test_eof_before_any_response_ends_nothing() -> None:
    parser, rec = response_parser()
    assert parser.feed_eof() is False
    assert rec.events == []


def test_keep_alive_follows_connection_and_version() -> None:
    for raw, keep_alive in (
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", True),
        (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False),
        (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", True),
    ):
        parser, rec = response_parser()
        parser.feed(raw)
        assert rec.heads[0].keep_alive is keep_alive, raw


def test_responses_follow_each_other_on_one_connection() -> None:
    parser, rec = response_parser()
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na")
    parser.feed(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 2\r\n\r\nbc")
    assert rec.shape() == [200, b"a", "end", 503, b"bc", "end"]
    assert rec.heads[1].reason == b"Service Unavailable"


def test_a_reason_phrase_split_across_reads_is_kept_whole() -> None:
    data = b"HTTP/1.1 299 Totally Fine\r\nContent-Length: 0\r\n\r\n"
    for pieces in (bytewise(data), [data[:18], data[18:]]):
        parser, rec = response_parser()
        for piece in pieces:
            parser.feed(piece)
        assert rec.heads[0].reason == b"Totally Fine"


# --- HEAD ---------------------------------------------------------------------------------


def test_a_head_response_has_no_body_whatever_its_headers_say() -> None:
    parser, rec = response_parser()
    parser.expect_head_only(True)
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
    assert rec.shape() == [200, "end"]
    assert rec.heads[0].content_length == 0
    # The connection stays usable, and the next response is read normally.
    parser.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    assert rec.shape() == [200, "end", 200, b"hi", "end"]


def test_a_chunked_head_response_also_ends_at_its_head() -> None:
    parser, rec = response_parser()
    parser.expect_head_only(True)
    parser.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    assert rec.shape() == [200, "end"]
    assert not rec.heads[0].chunked


def test_a_head_response_fed_byte_by_byte() -> None:
    parser, rec = response_parser()
    parser.expect_head_only(True)
    for piece in bytewise(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\n"):
        parser.feed(piece)
    assert rec.shape() == [404, "end"]
    assert rec.heads[0].reason == b"Not Found"


def test_an_informational_response_before_a_head_response() -> None:
    parser, rec = response_parser()
    parser.expect_head_only(True)
    parser.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
    assert rec.shape() == [100, "end", 200, "end"]


# --- informational, 204, 304, 101 ---------------------------------------------------------


def test_informational_responses_come_before_the_final_one() -> None:
    parser, rec = response_parser()
    parser.feed(
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"
    )
    assert rec.shape() == [100, "end", 103, "end", 200, b"x", "end"]
    assert rec.heads[1].hmap[b"link"] == b"</style.css>; rel=preload"


@pytest.mark.parametrize("status", [204, 304])
def test_204_and_304_have_no_body_even_with_a_content_length(status: int) -> None:
    parser, rec = response_parser()
    parser.feed(
        b"HTTP/1.1 %d X\r\nContent-Length: 10\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx" % status
    )
    assert rec.shape() == [status, "end", 200, b"x", "end"]
    assert rec.heads[0].content_length == 0


def test_101_switches_protocols_and_hands_over_what_follows() -> None:
    parser, rec = response_parser()
    with pytest.raises(SwitchedProtocols) as caught:
        parser.feed(
            b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x01x"
        )
    assert caught.value.rest == b"\x81\x01x"
    assert rec.heads[0].status == 101
    assert rec.heads[0].hmap[b"upgrade"] == b"websocket"


def test_bytes_after_a_switch_are_never_parsed_as_http() -> None:
    parser, _ = response_parser()
    with pytest.raises(SwitchedProtocols) as first:
        parser.feed(b"HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n")
    assert first.value.rest == b""
    with pytest.raises(SwitchedProtocols) as later:
        parser.feed(b"server speaks first")
    assert later.value.rest == b"server speaks first"


# --- bad responses ------------------------------------------------------------------------

BAD_RESPONSES = {
    "not-http": b"garbage\r\n\r\n",
    "duplicate-content-length": b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx",
    "length-and-chunked": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ),
    "bad-content-length": b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
    "bad-chunk-size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "bad-status": b"HTTP/1.1 2000 OK\r\n\r\n",
}


@pytest.mark.parametrize("data", BAD_RESPONSES.values(), ids=BAD_RESPONSES.keys())
def test_bad_responses_raise_upstream_protocol_error(data: bytes) -> None:
    parser, _ = response_parser()
    with pytest.raises(UpstreamProtocolError):
        parser.feed(data)


# --- splitting ----------------------------------------------------------------------------

STREAMS = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"".join(b"%x\r\n%s\r\n" % (n, b"z" * n) for n in (1, 16, 300))
    + b"0\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
]


@settings(max_examples=200, deadline=None)
@given(data=st.sampled_from(STREAMS), cuts=st.lists(st.integers(0, 600), max_size=30))
def test_splitting_a_response_stream_anywhere_gives_the_same_events(data: bytes, cuts: list[int]) -> None:
    whole, whole_rec = response_parser()
    whole.feed(data)
    split, split_rec = response_parser()
    for piece in split_at(data, cuts):
        split.feed(piece)
    assert split_rec.shape() == whole_rec.shape()
    assert [(h.status, h.reason, h.headers) for h in split_rec.heads] == [
        (h.status, h.reason, h.headers) for h in whole_rec.heads
    ]
