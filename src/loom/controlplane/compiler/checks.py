"""What a proxy refuses when it loads a snapshot, checked before it is written.

A proxy refuses a whole snapshot for one bad regex or header name (and keeps its previous one), so
the compiler drops the offending piece with a warning instead: one resource's mistake must not
stop every other route from reaching the proxy. The rules mirror docs/snapshot.md ("Compilation").
"""

from __future__ import annotations

import re

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(r"[\x00\r\n]")
_AUTHORITY = re.compile(r"(\[[0-9a-fA-F:.]+\]|[^\s/?#@\[\]:]+)(?::(\d{1,5}))?")


def header_name_problem(name: str) -> str | None:
    if not _TOKEN.fullmatch(name):
        return f"{name!r} is not a valid HTTP header name"
    return None


def header_value_problem(value: str) -> str | None:
    if _BAD_VALUE.search(value):
        return "a header value cannot contain CR, LF or NUL"
    return None


def domain_problem(value: str) -> str | None:
    """Why ``value`` cannot be a virtual host domain (a name, ``*.suffix`` or ``*``), or None."""
    name = value.strip().lower()
    bad = not name or any(c.isspace() or c in "/?#@:" for c in name)
    if not bad and "*" in name:
        bad = name != "*" and not (name.startswith("*.") and "*" not in name[1:])
    return f"{value!r} is not a host name, *.suffix wildcard or '*'" if bad else None


def path_problem(value: str) -> str | None:
    if not value.startswith("/") or " " in value or "\t" in value or _BAD_VALUE.search(value):
        return f"{value!r} must be a path starting with / and without spaces"
    return None


def authority_problem(value: str) -> str | None:
    match = _AUTHORITY.fullmatch(value)
    if match is None:
        return f"{value!r} is not a host or host:port"
    if match.group(2) is not None and not 0 < int(match.group(2)) < 65536:
        return f"the port in {value!r} is out of range (1-65535)"
    return None
