"""Header operations: remove, then set (replace all of that name), then add; names case-insensitive."""

from __future__ import annotations

import pytest

from loom.proxy.router import CompiledHeaderOps, RouteCompileError

BASE = [(b"Host", b"svc"), (b"X-Trace", b"1"), (b"Accept", b"*/*"), (b"x-trace", b"2")]

CASES = [
    # (id, ops, expected headers)
    ("remove", {"remove": ["x-trace"]}, [(b"Host", b"svc"), (b"Accept", b"*/*")]),
    ("remove-case", {"remove": ["X-TRACE", "missing"]}, [(b"Host", b"svc"), (b"Accept", b"*/*")]),
    ("set-replaces-all", {"set": {"X-Trace": "9"}},
     [(b"Host", b"svc"), (b"Accept", b"*/*"), (b"X-Trace", b"9")]),
    ("set-new", {"set": {"x-new": "v"}}, [*BASE, (b"x-new", b"v")]),
    ("add-appends", {"add": {"x-trace": "3"}}, [*BASE, (b"x-trace", b"3")]),
    ("remove-then-add", {"remove": ["accept"], "add": {"Accept": "text/html"}},
     [(b"Host", b"svc"), (b"X-Trace", b"1"), (b"x-trace", b"2"), (b"Accept", b"text/html")]),
    ("set-and-add", {"set": {"a": "1"}, "add": {"a": "2"}}, [*BASE, (b"a", b"1"), (b"a", b"2")]),
]  # fmt: skip


@pytest.mark.parametrize(("ops", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_request_header_ops(compile_routes, make_head, ops, expected) -> None:
    route = compile_routes([{"route": {"destinations": [{"cluster": "c"}]}, "request_headers": ops}]).match(
        make_head(), None
    )
    headers = list(BASE)
    route.request_headers.apply(headers)
    assert headers == expected


def test_response_header_ops_keep_hmap_in_step(compile_routes, make_head) -> None:
    ops = {"remove": ["server"], "set": {"X-Frame-Options": "DENY"}, "add": {"vary": "accept"}}
    route = compile_routes([{"route": {"destinations": [{"cluster": "c"}]}, "response_headers": ops}]).match(
        make_head(), None
    )
    headers = [(b"Server", b"app"), (b"Vary", b"origin")]
    hmap = {b"server": b"app", b"vary": b"origin"}
    route.response_headers.apply(headers, hmap)
    assert headers == [(b"Vary", b"origin"), (b"X-Frame-Options", b"DENY"), (b"vary", b"accept")]
    assert hmap == {b"vary": b"origin,accept", b"x-frame-options": b"DENY"}


def test_empty_ops_compile_to_none(compile_routes, make_head) -> None:
    route = compile_routes([{"route": {"destinations": [{"cluster": "c"}]}, "request_headers": {}}]).match(
        make_head(), None
    )
    assert route.request_headers is None


def test_direct_construction() -> None:
    ops = CompiledHeaderOps(remove=(b"a",), add=((b"B", b"2"),))
    headers = [(b"A", b"1")]
    ops.apply(headers)
    assert headers == [(b"B", b"2")]


@pytest.mark.parametrize(
    ("ops", "field_path"),
    [
        ({"set": {"bad name": "v"}}, "virtual_hosts[0].routes[0].request_headers.set['bad name']"),
        ({"add": {"x": "a\r\nInjected: 1"}}, "virtual_hosts[0].routes[0].request_headers.add['x']"),
        ({"remove": ["ok", "x:y"]}, "virtual_hosts[0].routes[0].request_headers.remove[1]"),
    ],
)
def test_invalid_header_ops(compile_routes, ops, field_path) -> None:
    with pytest.raises(RouteCompileError) as info:
        compile_routes([{"route": {"destinations": [{"cluster": "c"}]}, "request_headers": ops}])
    assert info.value.field_path == field_path
