"""Route actions: weighted picks, timeouts, mirroring, rewrites, redirects, direct responses."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from loom.proxy.router import DIRECT, REDIRECT, ROUTE


class NoRandom(random.Random):
    def random(self) -> float:
        raise AssertionError("no random draw expected")


def routed(destinations: list[dict[str, Any]], **action: Any) -> dict[str, Any]:
    return {"name": "r", "route": {"destinations": destinations, **action}}


# --- weighted destinations --------------------------------------------------------------------


def test_weighted_pick_90_10(compile_routes, make_head) -> None:
    vh = compile_routes(
        [routed([{"cluster": "v1", "weight": 90}, {"cluster": "v2", "weight": 10}])],
        rng=random.Random(20240611),
    )
    route = vh.match(make_head(), None)
    assert route.kind is ROUTE
    assert route.clusters == ("v1", "v2")
    counts = Counter(route.pick_cluster() for _ in range(20_000))
    assert set(counts) == {"v1", "v2"}
    assert abs(counts["v1"] / 20_000 - 0.90) <= 0.015
    assert abs(counts["v2"] / 20_000 - 0.10) <= 0.015


def test_weighted_pick_three_ways(compile_routes, make_head) -> None:
    dests = [{"cluster": "a", "weight": 1}, {"cluster": "b", "weight": 2}, {"cluster": "c", "weight": 1}]
    route = compile_routes([routed(dests)], rng=random.Random(7)).match(make_head(), None)
    counts = Counter(route.pick_cluster() for _ in range(20_000))
    assert abs(counts["b"] / 20_000 - 0.50) <= 0.015
    assert abs(counts["a"] / 20_000 - 0.25) <= 0.015


def test_weight_zero_is_never_picked(compile_routes, make_head) -> None:
    dests = [{"cluster": "old", "weight": 0}, {"cluster": "new", "weight": 5}]
    route = compile_routes([routed(dests)], rng=NoRandom()).match(make_head(), None)
    assert route.clusters == ("old", "new")
    assert {route.pick_cluster() for _ in range(100)} == {"new"}


def test_single_destination_draws_nothing(compile_routes, make_head) -> None:
    route = compile_routes([routed([{"cluster": "only"}])], rng=NoRandom()).match(make_head(), None)
    assert route.pick_cluster() == "only"
    assert route.clusters == ("only",)


@pytest.mark.parametrize(("timeout", "expected"), [(None, None), (0, None), ("0s", None), ("1.5s", 1.5)])
def test_timeout(compile_routes, make_head, timeout, expected) -> None:
    route = compile_routes([routed([{"cluster": "c"}], timeout=timeout)]).match(make_head(), None)
    assert route.timeout == expected


def test_retry_absent_means_cluster_default(compile_routes, make_head) -> None:
    route = compile_routes([routed([{"cluster": "c"}])]).match(make_head(), None)
    assert route.retry is None
    assert route.fault is None
    assert route.request_headers is None and route.response_headers is None


# --- mirroring --------------------------------------------------------------------------------


@pytest.mark.parametrize(("percentage", "low", "high"), [(0, 0, 0), (100, 1000, 1000), (25, 200, 300)])
def test_mirror(compile_routes, make_head, percentage, low, high) -> None:
    route = compile_routes(
        [routed([{"cluster": "c"}], mirror={"cluster": "shadow", "percentage": percentage})],
        rng=random.Random(3),
    ).match(make_head(), None)
    assert route.mirror_cluster == "shadow"
    assert route.mirror_fraction == percentage / 100
    assert low <= sum(route.should_mirror() for _ in range(1000)) <= high


def test_no_mirror(compile_routes, make_head) -> None:
    route = compile_routes([routed([{"cluster": "c"}])], rng=NoRandom()).match(make_head(), None)
    assert route.mirror_cluster is None
    assert route.should_mirror() is False


# --- rewrite ----------------------------------------------------------------------------------

REWRITE_CASES = [
    # (id, matches, rewrite uri, request path, rewritten path)
    ("prefix", [{"path": {"prefix": "/api/"}}], "/v2/", b"/api/users", b"/v2/users"),
    ("prefix-whole", [{"path": {"prefix": "/api"}}], "/v2", b"/api", b"/v2"),
    ("prefix-to-root", [{"path": {"prefix": "/ratings/"}}], "/", b"/ratings/7", b"/7"),
    ("prefix-icase", [{"path": {"prefix": "/API"}, "ignore_uri_case": True}], "/v2", b"/api/x", b"/v2/x"),
    ("exact", [{"path": {"exact": "/old"}}], "/new/place", b"/old", b"/new/place"),
    ("regex", [{"path": {"regex": "/item/[0-9]+"}}], "/items", b"/item/42", b"/items"),
    ("no-path-condition", [{"headers": {"x-a": {}}}], "/v2/", b"/users", b"/v2/users"),
    ("no-matches", [], "/v2/", b"/users", b"/v2/users"),
    # each match rewrites the prefix it matched
    ("second-match", [{"path": {"prefix": "/a/"}}, {"path": {"prefix": "/bbb/"}}], "/z/", b"/bbb/x", b"/z/x"),
    ("first-match", [{"path": {"prefix": "/a/"}}, {"path": {"prefix": "/bbb/"}}], "/z/", b"/a/x", b"/z/x"),
]


@pytest.mark.parametrize(
    ("matches", "uri", "path", "expected"), [c[1:] for c in REWRITE_CASES], ids=[c[0] for c in REWRITE_CASES]
)
def test_rewrite_path(compile_routes, make_head, matches, uri, path, expected) -> None:
    route_dict = routed([{"cluster": "c"}], rewrite={"uri_prefix": uri})
    route_dict["matches"] = matches
    vh = compile_routes([route_dict])
    head = make_head(path=path, query=b"q=1", headers=[(b"x-a", b"1")])
    route = vh.match(head, None)
    assert route.rewrite_path(head.path) == expected
    route.apply_rewrite(head)
    assert head.path == expected
    assert head.query == b"q=1"


def test_rewrite_authority(compile_routes, make_head) -> None:
    route = compile_routes(
        [routed([{"cluster": "c"}], rewrite={"authority": "Backend.internal:8443"})]
    ).match(make_head(), None)
    head = make_head(path=b"/x", authority=b"front", port=8080, headers=[(b"Accept", b"*/*")])
    route.apply_rewrite(head)
    assert head.path == b"/x"
    assert head.authority == b"backend.internal"
    assert head.port == 8443
    assert head.headers == [(b"Host", b"backend.internal:8443"), (b"Accept", b"*/*")]
    assert head.hmap[b"host"] == b"backend.internal:8443"


def test_rewrite_authority_adds_missing_host_and_drops_duplicates(compile_routes, make_head) -> None:
    route = compile_routes([routed([{"cluster": "c"}], rewrite={"authority": "b"})]).match(make_head(), None)
    head = make_head()
    head.headers = [(b"A", b"1")]
    route.apply_rewrite(head)
    assert head.headers == [(b"A", b"1"), (b"Host", b"b")]
    head.headers = [(b"host", b"x"), (b"A", b"1"), (b"HOST", b"y")]
    route.apply_rewrite(head)
    assert head.headers == [(b"host", b"b"), (b"A", b"1")]


def test_no_rewrite(compile_routes, make_head) -> None:
    route = compile_routes([routed([{"cluster": "c"}])]).match(make_head(), None)
    head = make_head(path=b"/keep")
    assert route.rewrite is None
    route.apply_rewrite(head)
    assert head.path == b"/keep"
    assert route.rewrite_path(b"/keep") == b"/keep"


# --- redirect and direct response -------------------------------------------------------------

REDIRECT_CASES = [
    # (id, redirect, head, (status, location))
    ("uri-only", {"uri": "/new"}, {"path": b"/old", "authority": b"shop"}, (301, b"http://shop/new")),
    ("keeps-query", {"uri": "/new"}, {"path": b"/old", "query": b"a=1"}, (301, b"http://svc/new?a=1")),
    ("own-query", {"uri": "/new?b=2"}, {"path": b"/old", "query": b"a=1"}, (301, b"http://svc/new?b=2")),
    ("nothing-set", {"code": 302}, {"path": b"/p", "query": b"a=1", "port": 8080},
     (302, b"http://svc:8080/p?a=1")),
    ("authority", {"authority": "www.example.com"}, {"path": b"/p", "port": 8080},
     (301, b"http://www.example.com/p")),
    ("authority-port", {"authority": "www.example.com:8443"}, {"path": b"/p"},
     (301, b"http://www.example.com:8443/p")),
    ("https", {"scheme": "https"}, {"path": b"/p", "authority": b"shop"}, (301, b"https://shop/p")),
    ("https-drops-80", {"scheme": "https"}, {"path": b"/p", "authority": b"shop", "port": 80},
     (301, b"https://shop/p")),
    ("https-keeps-8080", {"scheme": "https"}, {"path": b"/p", "authority": b"shop", "port": 8080},
     (301, b"https://shop:8080/p")),
    ("https-port-443", {"scheme": "https", "port": 443}, {"path": b"/p", "port": 8080}, (301, b"https://svc/p")),
    ("port", {"port": 9000}, {"path": b"/p"}, (301, b"http://svc:9000/p")),
    ("port-80", {"port": 80}, {"path": b"/p", "port": 8080}, (301, b"http://svc/p")),
    ("absolute-form-scheme", {"uri": "/x"}, {"path": b"/p", "scheme": b"http"}, (301, b"http://svc/x")),
    ("all", {"scheme": "https", "authority": "a.b", "port": 8443, "uri": "/z", "code": 308},
     {"path": b"/p", "query": b"q", "port": 8080}, (308, b"https://a.b:8443/z?q")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("redirect", "head", "expected"), [c[1:] for c in REDIRECT_CASES], ids=[c[0] for c in REDIRECT_CASES]
)
def test_redirect_location(compile_routes, make_head, redirect, head, expected) -> None:
    route = compile_routes([{"name": "moved", "redirect": redirect}]).match(make_head(), None)
    assert route.kind is REDIRECT
    assert route.redirect_location(make_head(**head)) == expected


def test_redirect_route_has_no_clusters(compile_routes, make_head) -> None:
    route = compile_routes([{"name": "moved", "redirect": {"uri": "/x"}}]).match(make_head(), None)
    assert route.clusters == ()
    with pytest.raises(RuntimeError):
        route.pick_cluster()


def test_direct_response(compile_routes, make_head) -> None:
    route = compile_routes(
        [{"name": "down", "direct_response": {"status": 503, "body": "maintenance ✓"}}]
    ).match(make_head(), None)
    assert route.kind is DIRECT
    assert route.name == "down"
    assert route.direct_response == (503, "maintenance ✓".encode())
    with pytest.raises(RuntimeError):
        route.redirect_location(make_head())
