"""Istio's string patterns, IP blocks and path handling, as compiled value sets."""

from __future__ import annotations

import ipaddress

import pytest

from loom.proxy.authz.paths import PathPatterns, compile_template, normalize
from loom.proxy.authz.values import IpBlocks, ValueSet, parse_block, parse_ip


@pytest.mark.parametrize(
    ("patterns", "value", "expected"),
    [
        (["GET"], "GET", True),
        (["GET"], "get", False),
        (["/api/*"], "/api/v1", True),
        (["/api/*"], "/api", False),
        (["*.txt"], "/a/b.txt", True),
        (["*.txt"], "/a/b.txtx", False),
        (["a", "b*", "*c"], "bx", True),
        (["a", "b*", "*c"], "xc", True),
        (["a", "b*", "*c"], "x", False),
        (["*"], "anything", True),
    ],
)
def test_string_patterns(patterns: list[str], value: str, expected: bool) -> None:
    assert ValueSet(patterns, nonempty=True).matches(value) is expected


def test_star_is_nonempty_or_present_depending_on_the_field() -> None:
    assert ValueSet(["*"], nonempty=True).matches("") is False  # principals, paths: Envoy's ".+"
    assert ValueSet([b"*"], nonempty=False).matches(b"") is True  # headers: present, even empty


def test_ip_blocks_match_addresses_and_cidrs_of_both_families() -> None:
    blocks = IpBlocks([parse_block("10.0.0.0/8"), parse_block("192.168.1.7"), parse_block("fd00::/16")])
    assert blocks.matches(ipaddress.ip_address("10.200.3.4"))
    assert blocks.matches(ipaddress.ip_address("192.168.1.7"))
    assert not blocks.matches(ipaddress.ip_address("192.168.1.8"))
    assert blocks.matches(ipaddress.ip_address("fd00:1::5"))
    assert not blocks.matches(ipaddress.ip_address("fe80::1"))


def test_host_bits_are_masked_and_mapped_addresses_are_ipv4() -> None:
    assert parse_block("10.1.2.3/16") == ipaddress.ip_network("10.1.0.0/16")
    assert parse_ip("::ffff:10.0.0.1") == ipaddress.ip_address("10.0.0.1")
    assert parse_ip("not-an-ip") is None
    with pytest.raises(ValueError):
        parse_block("10.0.0.0/33")


@pytest.mark.parametrize(
    ("raw", "seen"),
    [
        (b"/plain/path", b"/plain/path"),
        (b"/public/../admin", b"/admin"),
        (b"/a/./b/", b"/a/b/"),
        (b"/a/b/..", b"/a/"),
        (b"/../../etc", b"/etc"),
        (b"\\admin\\x", b"/admin/x"),
        (b"/%61dmin", b"/admin"),
        (b"/a%2fb", b"/a%2Fb"),  # an encoded slash is not a separator: kept (upper-cased)
        (b"/%2e%2e/admin", b"/admin"),
        (b"/100%", b"/100%"),
    ],
)
def test_paths_are_normalized_like_istio_base(raw: bytes, seen: bytes) -> None:
    assert normalize(raw) == seen


def test_a_path_without_anything_to_normalize_is_the_same_object() -> None:
    path = b"/api/v1/items"
    assert normalize(path) is path


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("/foo/{*}", b"/foo/bar", True),
        ("/foo/{*}", b"/foo/bar/baz", False),
        ("/foo/{*}", b"/foo/", False),
        ("/foo/{**}", b"/foo/bar/baz", True),
        ("/foo/{**}", b"/foo/", True),
        ("/foo/{**}", b"/foo", False),
        ("/foo/{*}/bar/{**}", b"/foo/buzz/bar/", True),
        ("/foo/{*}/bar/{**}", b"/foo/buzz/bar/baz", True),
        ("/foo/{*}/bar/{**}", b"/foo/buzz/qux/baz", False),
        ("/{*}/v1.2", b"/x/v1.2", True),
        ("/{*}/v1.2", b"/x/v1x2", False),  # literals are literal, not regex
    ],
)
def test_path_templates(template: str, path: bytes, expected: bool) -> None:
    assert PathPatterns([template]).matches(path) is expected


@pytest.mark.parametrize("template", ["/{**}/foo/{*}", "/foo/{*}.txt", "/*/baz/{*}", "/foo/{*}/{a}"])
def test_invalid_path_templates_are_refused(template: str) -> None:
    with pytest.raises(ValueError, match="path template"):
        compile_template(template)


def test_path_patterns_mix_strings_and_templates() -> None:
    paths = PathPatterns(["/exact", "/prefix/*", "/users/{*}/orders", "*"])
    assert paths.matches(b"/users/7/orders")
    assert paths.matches(b"/anything")
    assert not PathPatterns(["/exact", "/users/{*}/orders"]).matches(b"/users/7/items")
