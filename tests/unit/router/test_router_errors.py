"""Configurations the schema accepts but the router cannot compile name the offending field."""

from __future__ import annotations

from typing import Any

import pytest

from loom.proxy.router import RouteCompileError

DEST = {"destinations": [{"cluster": "c"}]}


def routes_with(match: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"matches": [{"path": {"prefix": "/a"}}], "route": DEST},
        {"matches": [{"path": {"prefix": "/b"}}], "route": DEST},
        {"matches": [match], "route": DEST},
    ]


R2 = "virtual_hosts[0].routes[2].matches[0]"

CASES = [
    # (id, match, field path, words in the message)
    ("path-regex", {"path": {"regex": "/v[0-9"}}, f"{R2}.path.regex", "invalid regex"),
    ("method-regex", {"method": {"regex": "(GET"}}, f"{R2}.method.regex", "invalid regex"),
    ("authority-regex", {"authority": {"regex": "*.com"}}, f"{R2}.authority.regex", "invalid regex"),
    ("header-regex", {"headers": {"x-a": {"regex": "a{2,1}"}}}, f"{R2}.headers['x-a'].regex",
     "invalid regex"),
    ("without-regex", {"without_headers": {"x-a": {"regex": "["}}}, f"{R2}.without_headers['x-a'].regex",
     "invalid regex"),
    ("query-regex", {"query_params": {"q": {"regex": ")"}}}, f"{R2}.query_params['q'].regex",
     "invalid regex"),
    ("lookahead", {"path": {"regex": "/(?!admin).*"}}, f"{R2}.path.regex", "RE2"),
    ("backreference", {"path": {"regex": r"/(a+)/\1"}}, f"{R2}.path.regex", "backreference"),
    ("header-name", {"headers": {"bad header": {}}}, f"{R2}.headers['bad header']", "header name"),
]  # fmt: skip


@pytest.mark.parametrize(("match", "field_path", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_match_errors(compile_routes, match, field_path, words) -> None:
    with pytest.raises(RouteCompileError) as info:
        compile_routes(routes_with(match))
    assert info.value.field_path == field_path
    assert words in info.value.message
    assert field_path in str(info.value)
    assert "route config 'rc'" in str(info.value)


def test_is_a_value_error() -> None:
    assert issubclass(RouteCompileError, ValueError)


def test_errors_in_dropped_matches_still_reported(compile_routes) -> None:
    # a match that cannot apply to this node is still checked: the configuration is wrong either way
    with pytest.raises(RouteCompileError):
        compile_routes(routes_with({"source_labels": {"app": "other"}, "path": {"regex": "("}}))


ACTION_CASES = [
    (
        {"route": {**DEST, "rewrite": {"uri_prefix": "v2"}}},
        "virtual_hosts[0].routes[0].route.rewrite.uri_prefix",
    ),
    (
        {"route": {**DEST, "rewrite": {"authority": "a b"}}},
        "virtual_hosts[0].routes[0].route.rewrite.authority",
    ),
    ({"redirect": {"scheme": "ftp"}}, "virtual_hosts[0].routes[0].redirect.scheme"),
    ({"redirect": {"uri": "no-slash"}}, "virtual_hosts[0].routes[0].redirect.uri"),
    ({"redirect": {"authority": "host:99999"}}, "virtual_hosts[0].routes[0].redirect.authority"),
]


@pytest.mark.parametrize(("route", "field_path"), ACTION_CASES)
def test_action_errors(compile_routes, route, field_path) -> None:
    with pytest.raises(RouteCompileError) as info:
        compile_routes([route])
    assert info.value.field_path == field_path


def test_errors_in_dropped_routes_still_reported(compile_routes) -> None:
    route = {
        "matches": [{"source_labels": {"app": "other"}}],
        "route": {**DEST, "rewrite": {"uri_prefix": "no-slash"}},
    }
    with pytest.raises(RouteCompileError) as info:
        compile_routes([route, {"route": DEST}])
    assert info.value.field_path == "virtual_hosts[0].routes[0].route.rewrite.uri_prefix"
