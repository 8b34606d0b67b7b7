"""Fixtures for router tests: hand-built request heads and compiled route configurations."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from tests.support.heads import build_head

from loom.proxy.codec.head import RequestHead
from loom.proxy.router import RouteTable, compile_route_config
from loom.snapshot import from_builtins
from loom.snapshot.model import Node, RouteConfig


@pytest.fixture
def make_head() -> Callable[..., RequestHead]:
    """``make_head(method=, path=, query=, authority=, port=, headers=, scheme=)``."""
    return build_head


@pytest.fixture
def node() -> Node:
    return Node(
        workload="productpage-v1", namespace="default", labels={"app": "productpage", "version": "v1"}
    )


@pytest.fixture
def compile_config(node: Node) -> Callable[..., RouteTable]:
    """``compile_config(route_config_dict, node=..., rng=...)``."""

    def compile_(config: dict[str, Any], *, node: Node = node, **kwargs: Any) -> RouteTable:
        return compile_route_config(from_builtins(config, RouteConfig), node, **kwargs)

    return compile_


@pytest.fixture
def compile_routes(compile_config: Callable[..., RouteTable]) -> Callable[..., Any]:
    """``compile_routes([route, ...])`` → the VirtualHostRoutes of a single ``*`` virtual host."""

    def compile_(routes: list[dict[str, Any]], **kwargs: Any) -> Any:
        table = compile_config(
            {"name": "rc", "virtual_hosts": [{"name": "vh", "domains": ["*"], "routes": routes}]}, **kwargs
        )
        vh = table.find(b"anything", None)
        assert vh is not None
        return vh

    return compile_
