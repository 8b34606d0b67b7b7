"""RequestParser: events, splitting, limits, smuggling vectors, upgrades and pipelining."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loom.proxy.codec.request_parser import HEAD_SLACK_BYTES, ParserLimits
from tests.unit.codec.recorder import bytewise, parse_requests, split_at

# --- basics -------------------------------------------------------------------------------


def test_a_simple_get_gives_its_head_and_completes() -> None:
    outcome = parse_requests(
        b"GET /books/1?format=json&x=1 HTTP/1.1\r\nHost: Catalog.Default:8080\r\n"
        b"User-Agent: curl\r\nX-Tag: a\r\nx-tag: b\r\n\r\n"
    )
    assert outcome.error is None
    [request] = outcome.requests
    head = request.head
    assert head.method == b"GET"
    assert head.target == b"/books/1?format=json&x=1"
    assert (head.path, head.query) == (b"/books/1", b"format=json&x=1")
    assert head.scheme == b""
    assert (head.authority, head.port) == (b"catalog.default", 8080)
    assert head.version == b"1.1"
    assert head.keep_alive
    assert not head.has_body and head.content_length is None and not head.chunked
    # Received order and case are kept; hmap is lower-cased with repeats joined by ",".
    assert head.headers == [
        (b"Host", b"Catalog.Default:8080"),
        (b"User-Agent", b"curl"),
        (b"X-Tag", b"a"),
        (b"x-tag", b"b"),
    ]
    assert head.header(b"x-tag") == b"a,b"
    assert head.header(b"user-agent") == b"curl"
    assert head.header(b"absent") is None
    assert request.complete and request.body == b""


def test_a_content_length_body_is_reported() -> None:
    outcome = parse_requests(b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
    [request] = outcome.requests
    assert request.head.content_length == 5 and request.head.has_body
    assert request.body == b"hello" and request.complete


def test_a_chunked_body_is_unframed_and_trailers_are_dropped() -> None:
    outcome = parse_requests(
        b"POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    )
    [request] = outcome.requests
    assert request.head.chunked and request.head.has_body and request.head.content_length is None
    assert request.body == b"hello world" and request.complete


def test_an_incomplete_body_leaves_the_request_open() -> None:
    outcome = parse_requests(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc")
    [request] = outcome.requests
    assert request.body == b"abc" and not request.complete


def test_http_10_needs_no_host_and_closes_unless_asked() -> None:
    [plain] = parse_requests(b"GET / HTTP/1.0\r\n\r\n").requests
    assert plain.head.version == b"1.0" and plain.head.authority == b"" and not plain.head.keep_alive
    [kept] = parse_requests(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").requests
    assert kept.head.keep_alive


def test_connection_close_ends_keep_alive() -> None:
    [request] = parse_requests(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").requests
    assert not request.head.keep_alive


def test_expect_100_continue_is_noted_and_other_expectations_get_417() -> None:
    outcome = parse_requests(
        b"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\n"
    )
    assert outcome.requests[0].head.expect_continue and not outcome.requests[0].complete
    refused = parse_requests(b"POST / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\nContent-Length: 0\r\n\r\n")
    assert refused.status == 417


def test_in_head_is_true_only_while_a_head_is_arriving() -> None:
    from loom.proxy.codec.request_parser import RequestParser
    from tests.unit.codec.recorder import RequestRecorder

    parser = RequestParser(RequestRecorder(), ParserLimits())
    assert not parser.in_head
    parser.feed(b"GET / HTTP/1.1\r\nHo")
    assert parser.in_head
    parser.feed(b"st: a\r\n\r\n")
    assert not parser.in_head


# --- pipelining ---------------------------------------------------------------------------

PIPELINED = (
    b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
    b"POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
    b"PUT /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
    b"DELETE /4 HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"
)


def test_pipelined_requests_come_out_in_order_with_their_bodies() -> None:
    outcome = parse_requests(PIPELINED)
    assert outcome.error is None
    assert [(r.head.method, r.head.path, r.body, r.complete) for r in outcome.requests] == [
        (b"GET", b"/1", b"", True),
        (b"POST", b"/2", b"abc", True),
        (b"PUT", b"/3", b"hi", True),
        (b"DELETE", b"/4", b"", True),
    ]
    assert [r.head.keep_alive for r in outcome.requests] == [True, True, True, False]


def test_a_request_pipelined_after_a_large_body_in_the_same_read_is_not_refused() -> None:
    body = b"x" * 100_000  # more than max_header_bytes + max_url_bytes
    data = (
        b"POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n"
        + body
        + b"GET /next HTTP/1.1\r\nHost: a\r\n"  # the next head starts in the same read, unfinished
    )
    outcome = parse_requests([data, b"\r\n"])
    assert outcome.error is None
    assert outcome.requests[0].body == body and outcome.requests[0].complete
    assert outcome.requests[1].head.path == b"/next" and outcome.requests[1].complete


# --- the same bytes split anywhere give the same result -----------------------------------

VALID_STREAMS = [
    PIPELINED,
    b"GET /" + b"u" * 3000 + b"?q=" + b"v" * 3000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n"
    + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 500) for i in range(60))
    + b"\r\n",
    b"GET http://Example.com:8080/abs?x=1 HTTP/1.1\r\nHost: ignored\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    + b"".join(b"%x\r\n%s\r\n" % (n, b"c" * n) for n in (1, 15, 16, 255, 4096))
    + b"0\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x05hello",
    b"HEAD / HTTP/1.0\r\n\r\n",
]
INVALID_STREAMS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /" + b"u" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(101)) + b"\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"v" * 70_000 + b"\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n",
]


@pytest.mark.parametrize("data", VALID_STREAMS + INVALID_STREAMS, ids=lambda d: d[:24].decode("latin-1"))
def test_byte_by_byte_parsing_equals_whole(data: bytes) -> None:
    whole = parse_requests(data, upgrade_rest_joined=True)
    pieces = parse_requests(bytewise(data), upgrade_rest_joined=True)
    assert pieces.summary() == whole.summary()
    assert pieces.upgrade_rest == whole.upgrade_rest


@settings(max_examples=300, deadline=None)
@given(
    data=st.sampled_from(VALID_STREAMS + INVALID_STREAMS), cuts=st.lists(st.integers(0, 80_000), max_size=40)
)
def test_splitting_at_random_points_gives_the_same_events(data: bytes, cuts: list[int]) -> None:
    whole = parse_requests(data, upgrade_rest_joined=True)
    split = parse_requests(split_at(data, cuts), upgrade_rest_joined=True)
    assert split.summary() == whole.summary()
    assert split.upgrade_rest == whole.upgrade_rest


_TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
_VALUE = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ;=/.,", max_size=60)
_PATH = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._~/%", max_size=80)


@st.composite
def request_streams(draw: st.DrawFn) -> bytes:
    """One to four pipelined requests with generated paths, headers and bodies."""
    out = b""
    for _ in range(draw(st.integers(1, 4))):
        method = draw(st.sampled_from([b"GET", b"POST", b"PUT", b"OPTIONS"]))
        path = b"/" + draw(_PATH).encode()
        headers = [
            (b"x-" + n.encode(), v.strip().encode()) for n, v in draw(st.lists(st.tuples(_TOKEN, _VALUE)))
        ]
        body = draw(st.binary(max_size=300))
        framing = draw(st.sampled_from(["length", "chunked", "none"]))
        head = [b"%s %s HTTP/1.1" % (method, path), b"Host: svc"]
        head += [b"%s: %s" % h for h in headers]
        if framing == "length":
            out += b"\r\n".join([*head, b"Content-Length: %d" % len(body), b"", b""]) + body
        elif framing == "chunked":
            sizes = draw(st.lists(st.integers(1, 50), max_size=5))
            chunks, rest = [], body
            for size in sizes:
                if rest:
                    chunks.append(rest[:size])
                    rest = rest[size:]
            if rest:
                chunks.append(rest)
            out += b"\r\n".join([*head, b"Transfer-Encoding: chunked", b"", b""])
            out += b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
        else:
            out += b"\r\n".join([*head, b"", b""])
    return out


@settings(max_examples=200, deadline=None)
@given(data=request_streams(), cuts=st.lists(st.integers(0, 3000), max_size=30))
def test_generated_requests_parse_the_same_however_they_arrive(data: bytes, cuts: list[int]) -> None:
    whole = parse_requests(data)
    assert whole.error is None, whole.error
    assert all(r.complete for r in whole.requests)
    assert parse_requests(split_at(data, cuts)).summary() == whole.summary()


# --- limits -------------------------------------------------------------------------------

SMALL = ParserLimits(max_header_bytes=1024, max_headers=5, max_url_bytes=64, max_body_bytes=10)


def _get(target: bytes, headers: bytes = b"") -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n" + headers + b"\r\n"


@pytest.mark.parametrize("split", [False, True], ids=["whole", "bytewise"])
def test_a_url_at_the_limit_passes_and_one_byte_more_gets_414(split: bool) -> None:
    def feed(data: bytes):  # type: ignore[no-untyped-def]
        return parse_requests(bytewise(data) if split else data, SMALL)

    assert feed(_get(b"/" + b"a" * 63)).status is None
    over = feed(_get(b"/" + b"a" * 64))
    assert over.status == 414 and over.requests == []


def test_a_long_url_fed_byte_by_byte_is_measured_once() -> None:
    # Under the default 8 KiB limit: the URL's bytes must not count twice when they arrive in pieces.
    data = _get(b"/" + b"a" * 5000)
    assert parse_requests(bytewise(data)).status is None


def test_too_many_headers_get_431() -> None:
    four = b"".join(b"X-%d: v\r\n" % i for i in range(4))  # with Host: 5, the limit
    assert parse_requests(_get(b"/", four), SMALL).status is None
    five = b"".join(b"X-%d: v\r\n" % i for i in range(5))
    outcome = parse_requests(_get(b"/", five), SMALL)
    assert outcome.status == 431 and "too many" in outcome.error.reason  # type: ignore[union-attr]


def test_header_bytes_over_the_limit_get_431() -> None:
    # Each header counts len(name) + len(value) + 4; Host: a counts 4 + 1 + 4 = 9.
    fits = b"X: " + b"v" * (1024 - 9 - 5) + b"\r\n"
    assert parse_requests(_get(b"/", fits), SMALL).status is None
    over = b"X: " + b"v" * (1024 - 9 - 4) + b"\r\n"
    assert parse_requests(_get(b"/", over), SMALL).status == 431


def test_an_endless_head_is_refused_before_it_completes() -> None:
    limits = ParserLimits(max_header_bytes=1024, max_url_bytes=64)
    start = b"GET / HTTP/1.1\r\nHost: a\r\nX-Endless: "
    bound = limits.max_header_bytes + limits.max_url_bytes + HEAD_SLACK_BYTES
    outcome = parse_requests([start, *[b"v" * 100] * (bound // 100 + 1)], limits)
    assert outcome.status == 431 and outcome.requests == []


def test_a_declared_body_over_the_limit_gets_413_before_any_body() -> None:
    assert (
        parse_requests(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789", SMALL).status
        is None
    )
    outcome = parse_requests(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n", SMALL)
    assert outcome.status == 413 and outcome.requests == []


def test_a_chunked_body_over_the_limit_gets_413_when_it_crosses() -> None:
    ok = (
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"6\r\n012345\r\n4\r\n6789\r\n0\r\n\r\n"
    )
    assert parse_requests(ok, SMALL).requests[0].body == b"0123456789"
    over = ok.replace(b"4\r\n6789", b"5\r\n6789X")
    outcome = parse_requests(over, SMALL)
    assert outcome.status == 413
    assert outcome.requests[0].body == b"012345" and not outcome.requests[0].complete


def test_without_a_body_limit_any_size_passes() -> None:
    big = b"b" * 200_000
    outcome = parse_requests(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 200000\r\n\r\n" + big)
    assert outcome.requests[0].body == big


# --- malformed and smuggling vectors: all 400 ---------------------------------------------

H = b"POST / HTTP/1.1\r\nHost: a\r\n"
BAD_REQUESTS = {
    "content-length-and-transfer-encoding": H
    + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "transfer-encoding-and-content-length": H
    + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n",
    "duplicate-content-length": H + b"Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
    "duplicate-equal-content-length": H + b"Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
    "content-length-list": H + b"Content-Length: 4, 4\r\n\r\nabcd",
    "negative-content-length": H + b"Content-Length: -1\r\n\r\n",
    "signed-content-length": H + b"Content-Length: +4\r\n\r\nabcd",
    "hex-content-length": H + b"Content-Length: 0x4\r\n\r\nabcd",
    "chunked-not-last": H + b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
    "transfer-encoding-identity": H + b"Transfer-Encoding: identity\r\n\r\n",
    "transfer-encoding-xchunked": H + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "transfer-encoding-twice": H
    + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "space-before-colon-te": H + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    "space-before-colon-cl": H + b"Content-Length : 4\r\n\r\nabcd",
    "obsolete-line-folding": H + b"X-A: b\r\n c\r\nContent-Length: 0\r\n\r\n",
    "folded-transfer-encoding": H + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
    "bad-chunk-size": H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "chunk-size-overflow": H + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\nabc\r\n0\r\n\r\n",
    "chunk-extension-nul": H + b"Transfer-Encoding: chunked\r\n\r\n3;\x00\r\nabc\r\n0\r\n\r\n",
    "chunk-extension-bare-lf": H + b"Transfer-Encoding: chunked\r\n\r\n3;a\nb\r\nabc\r\n0\r\n\r\n",
    "chunk-size-bare-lf": H + b"Transfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
    "chunk-data-overrun": H + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
    "http-1.0-transfer-encoding": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "bare-lf-line-endings": b"GET / HTTP/1.1\nHost: a\n\n",
    "bare-cr": b"GET / HTTP/1.1\rHost: a\r\n\r\n",
    "nul-in-header-value": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
    "space-in-header-name": b"GET / HTTP/1.1\r\nHost: a\r\nX Y: a\r\n\r\n",
    "header-without-colon": b"GET / HTTP/1.1\r\nHost: a\r\nXY\r\n\r\n",
    "whitespace-before-first-header": b"GET / HTTP/1.1\r\n Host: a\r\n\r\n",
    "invalid-method": b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
    "unknown-version": b"GET / HTTP/2.1\r\nHost: a\r\n\r\n",
    "http-0.9": b"GET /\r\n\r\n",
    "lf-in-target": b"GET /a\nb HTTP/1.1\r\nHost: a\r\n\r\n",
    "missing-host": b"GET / HTTP/1.1\r\n\r\n",
    "two-host-headers": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
}


@pytest.mark.parametrize("data", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_malformed_or_ambiguous_requests_get_400(data: bytes) -> None:
    whole = parse_requests(data)
    assert whole.status == 400, whole.requests
    assert whole.error is not None and whole.error.reason
    assert all(not r.complete for r in whole.requests), "no request may complete from ambiguous bytes"
    assert parse_requests(bytewise(data)).status == 400


@pytest.mark.parametrize("codings", [b"gzip, chunked", b"identity, chunked"])
def test_codings_besides_chunked_are_not_implemented(codings: bytes) -> None:
    # The body would be forwarded with ``chunked`` only, so a coding would be lost: refuse it.
    outcome = parse_requests(H + b"Transfer-Encoding: " + codings + b"\r\n\r\n0\r\n\r\n")
    assert outcome.status == 501 and outcome.requests == []


def test_a_smuggled_request_after_a_good_one_stops_the_connection_there() -> None:
    data = (
        b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n"
        + BAD_REQUESTS["content-length-and-transfer-encoding"]
        + b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    outcome = parse_requests(data)
    assert outcome.status == 400
    assert [r.head.path for r in outcome.requests if r.complete] == [b"/first"]
    assert b"/smuggled" not in [r.head.path for r in outcome.requests]


# --- upgrades -----------------------------------------------------------------------------


def test_an_upgrade_request_is_reported_then_the_rest_handed_over() -> None:
    outcome = parse_requests(
        b"GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x02hi"
    )
    [request] = outcome.requests
    assert request.head.upgrade and request.complete
    assert request.head.header(b"upgrade") == b"websocket"
    assert outcome.upgrade_rest == b"\x81\x02hi"


def test_an_upgrade_with_nothing_after_the_head_hands_over_nothing() -> None:
    outcome = parse_requests(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n")
    assert outcome.upgrade_rest == b""


def test_upgrade_without_connection_upgrade_is_an_ordinary_request() -> None:
    outcome = parse_requests(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n")
    assert outcome.upgrade_rest is None
    assert not outcome.requests[0].head.upgrade and outcome.requests[0].complete


def test_connect_is_refused_with_405() -> None:
    outcome = parse_requests(b"CONNECT db.example:5432 HTTP/1.1\r\nHost: db.example:5432\r\n\r\nraw")
    assert outcome.requests == []
    assert outcome.error is not None and outcome.error.status == 405
    assert "CONNECT" in outcome.error.reason
