"""Fixtures for the compiler tests: request heads for asking the proxy's router where a request goes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from loom.proxy.codec.head import RequestHead
from tests.support.heads import build_head


@pytest.fixture
def make_head() -> Callable[..., RequestHead]:
    """``make_head(method=, path=, query=, authority=, port=, headers=)``."""
    return build_head
