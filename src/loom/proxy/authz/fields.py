"""One field of a source, an operation or a condition, compiled into a check on an ``AuthzRequest``.

A field has values (any may match) and ``not_`` values (none may match); the check passes when
both hold. A value the request does not have (no peer principal on a plaintext connection, no
JWT, an absent header) matches no value, so a field that asks for one fails and a ``not_`` field
passes — Istio's behaviour: ``principals: ["*"]`` refuses plaintext peers, ``notPrincipals:
["*"]`` picks them out.

Fields that only exist for HTTP (methods, paths, hosts, request principals, ``request.*``
conditions) are marked ``http_only``: ``compile`` decides what a rule that uses them means on a
TCP connection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from loom.proxy.authz.paths import PathPatterns
from loom.proxy.authz.request import SPIFFE, AuthzRequest
from loom.proxy.authz.values import IpBlocks, ValueSet, parse_block
from loom.snapshot import Problem
from loom.snapshot.security import AuthzCondition, AuthzOperation, AuthzSource, bracketed

Matcher = Callable[[Any], bool]
Getter = Callable[[AuthzRequest], Any]


class FieldCheck:
    __slots__ = ("get", "http_only", "key", "not_values", "values")

    def __init__(
        self, key: str, get: Getter, values: Matcher | None, not_values: Matcher | None, http_only: bool
    ) -> None:
        self.key = key
        self.get = get
        self.values = values
        self.not_values = not_values
        self.http_only = http_only

    def __call__(self, request: AuthzRequest) -> bool:
        value = self.get(request)
        values = self.values
        if values is not None and (value is None or not values(value)):
            return False
        not_values = self.not_values
        return not_values is None or value is None or not not_values(value)

    def __repr__(self) -> str:
        return f"<FieldCheck {self.key}{' (HTTP only)' if self.http_only else ''}>"


# --- value matchers ---------------------------------------------------------------------------

Build = Callable[[Sequence[str], str, list[Problem]], Matcher]


def _names(values: Sequence[str], where: str, problems: list[Problem]) -> Matcher:
    """Principals, namespaces, SNI: ``*`` is "present and not empty"."""
    return ValueSet([v.removeprefix(SPIFFE) for v in values], nonempty=True).matches


def _methods(values: Sequence[str], where: str, problems: list[Problem]) -> Matcher:
    return ValueSet([v.encode() for v in values], nonempty=False).matches


def _hosts(values: Sequence[str], where: str, problems: list[Problem]) -> Matcher:
    """Case-insensitive: the Host is lower-cased by the codec, so the patterns are too."""
    return ValueSet([v.lower().encode() for v in values], nonempty=False).matches


def _paths(values: Sequence[str], where: str, problems: list[Problem]) -> Matcher:
    try:
        return PathPatterns(values).matches
    except ValueError as exc:
        problems.append(Problem(where, str(exc)))
        return _never


def _ip_blocks(values: Sequence[str], where: str, problems: list[Problem]) -> Matcher:
    blocks = []
    for i, value in enumerate(values):
        try:
            blocks.append(parse_block(value))
        except ValueError:
            problems.append(Problem(f"{where}[{i}]", f"{value!r} is not an IP address or a CIDR block"))
    return IpBlocks(blocks).matches


def _ports(values: Sequence[Any], where: str, problems: list[Problem]) -> Matcher:
    ports: set[int] = set()
    for i, value in enumerate(values):
        text = str(value)
        if not text.isdigit() or not 0 <= int(text) <= 65535:
            problems.append(Problem(f"{where}[{i}]", f"{value!r} is not a port number (0-65535)"))
            continue
        ports.add(int(text))
    return frozenset(ports).__contains__


def _headers(values: Sequence[str], where: str, problems: list[Problem]) -> Matcher:
    """A header's value, or any of its comma-separated parts (repeated headers are joined with
    ``,``), matches — as Istio's header conditions do."""
    match = ValueSet([v.encode() for v in values], nonempty=False).matches

    def matches(value: bytes) -> bool:
        return match(value) or (b"," in value and any(match(part) for part in value.split(b",")))

    return matches


def _claims(values: Sequence[str], where: str, problems: list[Problem]) -> Matcher:
    """A string claim, or a list of strings any of which matches."""
    match = ValueSet(list(values), nonempty=True).matches

    def matches(value: object) -> bool:
        if isinstance(value, str):
            return match(value)
        if isinstance(value, list):
            return any(isinstance(item, str) and match(item) for item in value)
        return False

    return matches


def _request_principals(values: Sequence[str], where: str, problems: list[Problem]) -> Matcher:
    """``iss/sub`` patterns, matched as Istio does: split at the last ``/``, issuer and subject
    matched apart (``*`` alone: both present; ``*/sub``, ``iss/*``, ``iss*``, ``*sub``)."""
    pairs = [_issuer_subject_pattern(v) for v in values]

    def matches(value: tuple[str, str]) -> bool:
        iss, sub = value
        return any(match_iss(iss) and match_sub(sub) for match_iss, match_sub in pairs)

    return matches


def _issuer_subject_pattern(value: str) -> tuple[Callable[[str], bool], Callable[[str], bool]]:
    cut = value.rfind("/")
    iss, sub = (value[:cut], value[cut + 1 :]) if cut >= 0 else (value, "")
    if value == "*":
        return _present, _present
    if value.startswith("*"):
        if cut < 0:
            return _present, _suffix(value[1:])
        return (_present if iss == "*" else _suffix(iss[1:])), _exact(sub)
    if value.endswith("*"):
        if cut < 0:
            return _prefix(value[:-1]), _present
        return _exact(iss), (_present if sub == "*" else _prefix(sub[:-1]))
    return _exact(iss), _exact(sub)


def _present(value: str) -> bool:
    return bool(value)


def _exact(expected: str) -> Callable[[str], bool]:
    return expected.__eq__


def _prefix(prefix: str) -> Callable[[str], bool]:
    return lambda value: value.startswith(prefix)


def _suffix(suffix: str) -> Callable[[str], bool]:
    return lambda value: value.endswith(suffix)


def _never(value: object) -> bool:
    return False


# --- getters --------------------------------------------------------------------------------


def _principal(request: AuthzRequest) -> str | None:
    return request.principal


def _dest_port(request: AuthzRequest) -> int:
    return request.dest_port


def _sni(request: AuthzRequest) -> str | None:
    return request.sni


def _claim(path: tuple[str, ...]) -> Getter:
    return lambda request: request.claim(path)


def _header(lower_name: bytes) -> Getter:
    return lambda request: request.header(lower_name)


# --- fields ---------------------------------------------------------------------------------


def _check(
    key: str,
    get: Getter,
    build: Build,
    values: Sequence[Any],
    not_values: Sequence[Any],
    where: str,
    field: str,
    problems: list[Problem],
    *,
    http_only: bool = False,
) -> FieldCheck | None:
    if not values and not not_values:
        return None
    matcher = build(values, f"{where}.{field}", problems) if values else None
    excluded = build(not_values, f"{where}.not_{field}", problems) if not_values else None
    return FieldCheck(key, get, matcher, excluded, http_only)


# field → (getter, value matcher, HTTP only); each has a ``not_`` twin
_SOURCE_FIELDS: tuple[tuple[str, Getter, Build, bool], ...] = (
    ("principals", _principal, _names, False),
    ("request_principals", AuthzRequest.issuer_subject, _request_principals, True),
    ("namespaces", AuthzRequest.namespace, _names, False),
    ("ip_blocks", AuthzRequest.peer_address, _ip_blocks, False),
    ("remote_ip_blocks", AuthzRequest.remote_address, _ip_blocks, False),
)
_OPERATION_FIELDS: tuple[tuple[str, Getter, Build, bool], ...] = (
    ("hosts", AuthzRequest.host, _hosts, True),
    ("ports", _dest_port, _ports, False),
    ("methods", AuthzRequest.method, _methods, True),
    ("paths", AuthzRequest.path, _paths, True),
)


def source_checks(source: AuthzSource, where: str, problems: list[Problem]) -> list[FieldCheck]:
    return _fields(source, _SOURCE_FIELDS, where, problems)


def operation_checks(operation: AuthzOperation, where: str, problems: list[Problem]) -> list[FieldCheck]:
    return _fields(operation, _OPERATION_FIELDS, where, problems)


def _fields(
    item: AuthzSource | AuthzOperation,
    fields: tuple[tuple[str, Getter, Build, bool], ...],
    where: str,
    problems: list[Problem],
) -> list[FieldCheck]:
    found = []
    for name, get, build, http_only in fields:
        values, not_values = getattr(item, name), getattr(item, f"not_{name}")
        check = _check(name, get, build, values, not_values, where, name, problems, http_only=http_only)
        if check is not None:
            found.append(check)
    return found


# key → (getter, value matcher, HTTP only)
_CONDITIONS: dict[str, tuple[Getter, Build, bool]] = {
    "source.ip": (AuthzRequest.peer_address, _ip_blocks, False),
    "remote.ip": (AuthzRequest.remote_address, _ip_blocks, False),
    "source.namespace": (AuthzRequest.namespace, _names, False),
    "source.principal": (_principal, _names, False),
    "request.auth.principal": (AuthzRequest.issuer_subject, _request_principals, True),
    "request.auth.audiences": (_claim(("aud",)), _claims, True),
    "request.auth.presenter": (_claim(("azp",)), _claims, True),
    "destination.ip": (AuthzRequest.dest_address, _ip_blocks, False),
    "destination.port": (_dest_port, _ports, False),
    "connection.sni": (_sni, _names, False),
}
HEADERS = "request.headers"
CLAIMS = "request.auth.claims"


def condition_check(condition: AuthzCondition, where: str, problems: list[Problem]) -> FieldCheck | None:
    key = condition.key
    known = _CONDITIONS.get(key)
    if known is not None:
        get, build, http_only = known
    elif key.startswith(HEADERS):
        name = bracketed(key[len(HEADERS) :])
        if name is None or len(name) != 1:
            hint = f"write the header name in brackets, e.g. {HEADERS}[User-Agent]"
            problems.append(Problem(f"{where}.key", f"{key!r}: {hint}"))
            return None
        get, build, http_only = _header(name[0].lower().encode()), _headers, True
    elif key.startswith(CLAIMS):
        path = bracketed(key[len(CLAIMS) :])
        if path is None:
            hint = f"write the claim name in brackets, e.g. {CLAIMS}[groups] or {CLAIMS}[a][b]"
            problems.append(Problem(f"{where}.key", f"{key!r}: {hint}"))
            return None
        get, build, http_only = _claim(path), _claims, True
    else:
        known_keys = ", ".join([*_CONDITIONS, f"{HEADERS}[NAME]", f"{CLAIMS}[NAME]"])
        problems.append(Problem(f"{where}.key", f"unknown condition key {key!r} (known: {known_keys})"))
        return None
    if not condition.values and not condition.not_values:
        problems.append(Problem(where, "a condition needs values or not_values"))
        return None
    values, not_values = condition.values, condition.not_values
    return _check(key, get, build, values, not_values, where, "values", problems, http_only=http_only)
