"""Route matching: every condition kind, AND within a match, OR across matches, route order."""

from __future__ import annotations

from typing import Any

import pytest

from loom.proxy.router import virtual_host

DEST = {"destinations": [{"cluster": "c"}]}


def route(name: str, matches: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"name": name, "matches": matches or [], "route": DEST}


H = {"headers": [(b"X-User", b"jason"), (b"x-env", b"canary-eu")]}

CASES: list[tuple[str, list[dict[str, Any]], dict[str, Any], int | None, bool]] = [
    # (id, matches, head, port, matched)
    ("no-matches", [], {"path": b"/anything"}, None, True),
    ("empty-match", [{}], {"path": b"/anything"}, None, True),
    # path
    ("exact", [{"path": {"exact": "/a"}}], {"path": b"/a"}, None, True),
    ("exact-longer", [{"path": {"exact": "/a"}}], {"path": b"/a/b"}, None, False),
    ("exact-case", [{"path": {"exact": "/a"}}], {"path": b"/A"}, None, False),
    ("exact-ignores-query", [{"path": {"exact": "/a"}}], {"path": b"/a", "query": b"x=1"}, None, True),
    ("prefix", [{"path": {"prefix": "/api"}}], {"path": b"/api/users"}, None, True),
    ("prefix-plain-string", [{"path": {"prefix": "/api"}}], {"path": b"/apix"}, None, True),
    ("prefix-shorter", [{"path": {"prefix": "/api"}}], {"path": b"/ap"}, None, False),
    ("regex", [{"path": {"regex": "/v[0-9]+/users"}}], {"path": b"/v12/users"}, None, True),
    ("regex-full-tail", [{"path": {"regex": "/v[0-9]+/users"}}], {"path": b"/v1/users/7"}, None, False),
    ("regex-full-head", [{"path": {"regex": "/v[0-9]+/users"}}], {"path": b"/x/v1/users"}, None, False),
    ("regex-alternation", [{"path": {"regex": "/a|/b"}}], {"path": b"/b"}, None, True),
    ("regex-alternation-full", [{"path": {"regex": "/a|/b"}}], {"path": b"/ab"}, None, False),
    # ignore_uri_case: exact and prefix only, as in Istio
    ("icase-exact", [{"path": {"exact": "/Api"}, "ignore_uri_case": True}], {"path": b"/aPI"}, None, True),
    ("icase-prefix", [{"path": {"prefix": "/API/"}, "ignore_uri_case": True}], {"path": b"/api/X"}, None,
     True),
    ("icase-regex", [{"path": {"regex": "/abc"}, "ignore_uri_case": True}], {"path": b"/ABC"}, None, False),
    # method
    ("method", [{"method": {"exact": "POST"}}], {"method": b"POST"}, None, True),
    ("method-other", [{"method": {"exact": "POST"}}], {"method": b"GET"}, None, False),
    ("method-regex", [{"method": {"regex": "GET|HEAD"}}], {"method": b"HEAD"}, None, True),
    # authority (head.authority is lower-case and port-less)
    ("authority", [{"authority": {"exact": "Reviews.Local"}}], {"authority": b"reviews.local"}, None, True),
    ("authority-other", [{"authority": {"exact": "a"}}], {"authority": b"b"}, None, False),
    ("authority-prefix", [{"authority": {"prefix": "rev"}}], {"authority": b"reviews"}, None, True),
    ("authority-regex", [{"authority": {"regex": r"r.*\.local"}}], {"authority": b"reviews.local"}, None,
     True),
    # headers: names case-insensitive, values case-sensitive
    ("header-exact", [{"headers": {"x-user": {"exact": "jason"}}}], H, None, True),
    ("header-name-case", [{"headers": {"X-USER": {"exact": "jason"}}}], H, None, True),
    ("header-value-case", [{"headers": {"x-user": {"exact": "Jason"}}}], H, None, False),
    ("header-absent", [{"headers": {"x-other": {"exact": "jason"}}}], H, None, False),
    ("header-prefix", [{"headers": {"x-env": {"prefix": "canary"}}}], H, None, True),
    ("header-regex", [{"headers": {"x-env": {"regex": "canary-(eu|us)"}}}], H, None, True),
    ("header-regex-full", [{"headers": {"x-env": {"regex": "canary"}}}], H, None, False),
    ("header-present", [{"headers": {"x-env": {}}}], H, None, True),
    ("header-present-absent", [{"headers": {"x-debug": {}}}], H, None, False),
    # without_headers: the request must not match
    ("without-absent", [{"without_headers": {"x-debug": {}}}], H, None, True),
    ("without-present", [{"without_headers": {"x-env": {}}}], H, None, False),
    ("without-exact-same", [{"without_headers": {"x-user": {"exact": "jason"}}}], H, None, False),
    ("without-exact-other", [{"without_headers": {"x-user": {"exact": "bob"}}}], H, None, True),
    ("without-exact-absent", [{"without_headers": {"x-debug": {"exact": "1"}}}], H, None, True),
    # query parameters
    ("query-exact", [{"query_params": {"a": {"exact": "1"}}}], {"query": b"a=1&b=2"}, None, True),
    ("query-exact-other", [{"query_params": {"a": {"exact": "2"}}}], {"query": b"a=1&b=2"}, None, False),
    ("query-missing", [{"query_params": {"a": {"exact": "1"}}}], {"query": b""}, None, False),
    ("query-first-wins", [{"query_params": {"a": {"exact": "2"}}}], {"query": b"a=1&a=2"}, None, False),
    ("query-no-value", [{"query_params": {"flag": {"exact": ""}}}], {"query": b"x=1&flag"}, None, True),
    ("query-regex", [{"query_params": {"id": {"regex": "[0-9]+"}}}], {"query": b"id=42"}, None, True),
    ("query-regex-full", [{"query_params": {"id": {"regex": "[0-9]+"}}}], {"query": b"id=42x"}, None, False),
    ("query-prefix", [{"query_params": {"v": {"prefix": "beta"}}}], {"query": b"&v=beta2&"}, None, True),
    # port
    ("port", [{"port": 8080}], {}, 8080, True),
    ("port-other", [{"port": 8080}], {}, 9090, False),
    ("port-unknown", [{"port": 8080}], {}, None, False),
    # AND within one match
    ("and-both", [{"path": {"prefix": "/api"}, "headers": {"x-user": {"exact": "jason"}}}],
     {**H, "path": b"/api/x"}, None, True),
    ("and-path-fails", [{"path": {"prefix": "/api"}, "headers": {"x-user": {"exact": "jason"}}}],
     {**H, "path": b"/web"}, None, False),
    ("and-header-fails", [{"path": {"prefix": "/api"}, "headers": {"x-user": {"exact": "bob"}}}],
     {**H, "path": b"/api/x"}, None, False),
    # OR across matches
    ("or-first", [{"path": {"exact": "/a"}}, {"headers": {"x-user": {"exact": "bob"}}}],
     {**H, "path": b"/a"}, None, True),
    ("or-second", [{"path": {"exact": "/a"}}, {"headers": {"x-user": {"exact": "jason"}}}],
     {**H, "path": b"/b"}, None, True),
    ("or-neither", [{"path": {"exact": "/a"}}, {"headers": {"x-user": {"exact": "bob"}}}],
     {**H, "path": b"/b"}, None, False),
    # source_labels are the node's labels (app=productpage, version=v1)
    ("source-subset", [{"source_labels": {"app": "productpage"}}], {}, None, True),
    ("source-all", [{"source_labels": {"app": "productpage", "version": "v1"}}], {}, None, True),
    ("source-other", [{"source_labels": {"app": "reviews"}}], {}, None, False),
    ("source-extra", [{"source_labels": {"app": "productpage", "team": "x"}}], {}, None, False),
    ("source-one-of-two", [{"source_labels": {"app": "reviews"}}, {"path": {"exact": "/a"}}],
     {"path": b"/a"}, None, True),
]  # fmt: skip


@pytest.mark.parametrize(
    ("matches", "head", "port", "matched"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_match(compile_routes, make_head, matches, head, port, matched: bool) -> None:
    vh = compile_routes([route("r", matches)])
    result = vh.match(make_head(**head), port)
    assert (result is not None) is matched
    if matched:
        assert result.name == "r"


def test_first_match_wins(compile_routes, make_head) -> None:
    vh = compile_routes(
        [
            route("exact", [{"path": {"exact": "/api/health"}}]),
            route("api", [{"path": {"prefix": "/api"}}]),
            route("api-v2", [{"path": {"prefix": "/api/v2"}}]),  # shadowed by "api"
            route("default"),
        ]
    )
    assert vh.match(make_head(path=b"/api/health"), None).name == "exact"
    assert vh.match(make_head(path=b"/api/v2/x"), None).name == "api"
    assert vh.match(make_head(path=b"/web"), None).name == "default"


def test_no_route_matches(compile_routes, make_head) -> None:
    vh = compile_routes([route("api", [{"path": {"prefix": "/api"}}])])
    assert vh.match(make_head(path=b"/web"), None) is None


def test_route_whose_matches_all_drop_is_dropped(compile_routes, make_head) -> None:
    vh = compile_routes(
        [
            route(
                "from-reviews", [{"source_labels": {"app": "reviews"}}, {"source_labels": {"version": "v2"}}]
            ),
            route("default"),
        ]
    )
    assert [r.name for _, r in vh.entries] == ["default"]
    assert vh.match(make_head(), None).name == "default"


def test_query_parsed_lazily_and_once(compile_routes, make_head, monkeypatch) -> None:
    calls: list[bytes] = []
    real = virtual_host.parse_query

    def counting(query: bytes) -> dict[bytes, bytes]:
        calls.append(query)
        return real(query)

    monkeypatch.setattr(virtual_host, "parse_query", counting)
    vh = compile_routes(
        [
            route("by-header", [{"headers": {"x-user": {"exact": "jason"}}}]),
            route("q1", [{"query_params": {"a": {"exact": "1"}}}]),
            route("q2", [{"query_params": {"b": {"exact": "2"}}}]),
            route("q3", [{"query_params": {"a": {"exact": "x"}}}, {"query_params": {"c": {"prefix": ""}}}]),
        ]
    )
    assert vh.match(make_head(query=b"a=1", headers=[(b"x-user", b"jason")]), None).name == "by-header"
    assert calls == []
    assert vh.match(make_head(query=b"b=2"), None).name == "q2"
    assert calls == [b"b=2"]
    assert vh.match(make_head(query=b"c=3"), None).name == "q3"
    assert calls == [b"b=2", b"c=3"]
