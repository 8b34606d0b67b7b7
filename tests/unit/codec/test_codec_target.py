"""Request targets (origin-form, absolute-form, CONNECT, ``*``) and the Host header."""

from __future__ import annotations

import pytest

from loom.proxy.codec.errors import ProtocolError
from loom.proxy.codec.head import RequestHead
from loom.proxy.codec.target import parse_host_header, parse_target
from tests.unit.codec.recorder import parse_requests

# target → (scheme, authority, port, path, query)
TARGETS = [
    (b"/", (b"", b"", None, b"/", b"")),
    (b"/a/b?x=1&y", (b"", b"", None, b"/a/b", b"x=1&y")),
    (b"/a?", (b"", b"", None, b"/a", b"")),
    (b"/a??b", (b"", b"", None, b"/a", b"?b")),
    (b"*", (b"", b"", None, b"*", b"")),
    (b"http://catalog/books", (b"http", b"catalog", None, b"/books", b"")),
    (b"http://Catalog.Default:8080/b?q=1", (b"http", b"catalog.default", 8080, b"/b", b"q=1")),
    (b"HTTP://example.com", (b"http", b"example.com", None, b"/", b"")),
    (b"https://example.com:443/x", (b"https", b"example.com", 443, b"/x", b"")),
    (b"http://10.0.0.1:9080/", (b"http", b"10.0.0.1", 9080, b"/", b"")),
    (b"http://[::1]:8080/p?q", (b"http", b"[::1]", 8080, b"/p", b"q")),
    (b"http://[2001:DB8::1]/", (b"http", b"[2001:db8::1]", None, b"/", b"")),
]


@pytest.mark.parametrize(("target", "expected"), TARGETS, ids=[t.decode() for t, _ in TARGETS])
def test_request_targets(target: bytes, expected: tuple[object, ...]) -> None:
    head = RequestHead()
    head.method = b"GET"
    parse_target(head, target)
    assert (head.scheme, head.authority, head.port, head.path, head.query) == expected


BAD_TARGETS = [
    b"ftp://example.com/",
    b"http:///no-host",
    b"http://a:99999/",
    b"http://a:0/",
    b"example.com/no-scheme",
]


@pytest.mark.parametrize("target", BAD_TARGETS, ids=[t.decode() for t in BAD_TARGETS])
def test_bad_request_targets_get_400(target: bytes) -> None:
    head = RequestHead()
    head.method = b"GET"
    with pytest.raises(ProtocolError) as caught:
        parse_target(head, target)
    assert caught.value.status == 400


# Host header → (authority, port)
HOSTS = [
    (b"catalog", (b"catalog", None)),
    (b"Catalog.Default.svc:8080", (b"catalog.default.svc", 8080)),
    (b"a:80", (b"a", 80)),
    (b"a:080", (b"a", 80)),
    (b"a:", (b"a", None)),
    (b"a:65535", (b"a", 65535)),
    (b"10.1.2.3:9080", (b"10.1.2.3", 9080)),
    (b"[::1]", (b"[::1]", None)),
    (b"[::1]:8080", (b"[::1]", 8080)),
    (b"[FE80::1]:1", (b"[fe80::1]", 1)),
    (b"  padded:81 ", (b"padded", 81)),
    (b"under_score.example", (b"under_score.example", None)),
]


@pytest.mark.parametrize(("host", "expected"), HOSTS, ids=[h.decode() for h, _ in HOSTS])
def test_host_headers(host: bytes, expected: tuple[bytes, int | None]) -> None:
    head = RequestHead()
    parse_host_header(head, host)
    assert (head.authority, head.port) == expected


BAD_HOSTS = [
    b"a:0",
    b"a:65536",
    b"a:99999",
    b"a:x",
    b"a:+80",
    b"a:-1",
    b"a:80:90",
    b"::1",
    b"[::1",
    b"[::1]8080",
    b"[::1]:x",
    b"a,b",
    b"a b",
    b"a/b",
    b"user@a",
    b'a"b',
]


@pytest.mark.parametrize("host", BAD_HOSTS, ids=[h.decode() for h in BAD_HOSTS])
def test_bad_host_headers_get_400(host: bytes) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_host_header(RequestHead(), host)
    assert caught.value.status == 400


def test_an_absolute_form_target_wins_over_the_host_header() -> None:
    [request] = parse_requests(b"GET http://catalog:9080/b HTTP/1.1\r\nHost: elsewhere:1\r\n\r\n").requests
    head = request.head
    assert (head.scheme, head.authority, head.port, head.path) == (b"http", b"catalog", 9080, b"/b")
    assert head.target == b"http://catalog:9080/b"


def test_an_absolute_form_target_needs_no_host_header() -> None:
    outcome = parse_requests(b"GET http://catalog/ HTTP/1.1\r\n\r\n")
    assert outcome.error is None and outcome.requests[0].head.authority == b"catalog"


@pytest.mark.parametrize("host", [b"a:99999", b"[::1", b"a:x"])
def test_a_bad_host_header_refuses_the_request(host: bytes) -> None:
    outcome = parse_requests(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    assert outcome.status == 400 and outcome.requests == []


def test_a_bad_absolute_form_port_refuses_the_request() -> None:
    assert parse_requests(b"GET http://a:70000/ HTTP/1.1\r\nHost: a\r\n\r\n").status == 400
