"""Reading, checking and writing snapshots: every problem is reported with the field it concerns.

The schema check is msgspec's, which stops at the first problem: schema problems are reported
one at a time. The cross-reference checks that follow it report every problem at once.
"""

from __future__ import annotations

import json
import re
import types
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

import msgspec
import yaml

from loom.snapshot.durations import decode, encode
from loom.snapshot.model import FieldError, Model, Snapshot

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class SnapshotError(ValueError):
    """A snapshot that cannot be used: the schema problem, or every cross-reference problem."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid snapshot {source}:\n{lines}")


def field_path(loc: tuple[Any, ...]) -> str:
    """``("clusters", 0, "name")`` → ``clusters[0].name``; ``...`` (a map key not known) → ``[...]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part is ...:
            out += "[...]"
        else:
            out += f".{part}" if out else str(part)
    return out


def from_builtins(data: object, type_: type[T]) -> T:
    """Validate decoded data (dicts, lists, strings, numbers) into a schema class, e.g. a RouteConfig.

    Raises ``msgspec.ValidationError``; ``parse_snapshot`` is the way to read a whole snapshot.
    """
    return msgspec.convert(data, type_, dec_hook=decode)


def parse_snapshot(data: object, source: str = "<snapshot>") -> Snapshot:
    """Validate a decoded document (dict) into a Snapshot, with cross-reference checks."""
    if not isinstance(data, dict):
        raise SnapshotError(source, [Problem("", "the snapshot must be a mapping at the top level")])
    try:
        snapshot = from_builtins(data, Snapshot)
    except msgspec.ValidationError as exc:
        raise SnapshotError(source, [schema_problem(exc, data)]) from None
    problems = cross_reference_problems(snapshot)
    if problems:
        raise SnapshotError(source, problems)
    return snapshot


def load_snapshot(path: str | Path) -> Snapshot:
    """Read a snapshot from a YAML or JSON file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise SnapshotError(str(path), [Problem("", f"not valid YAML/JSON: {exc}")]) from None
    return parse_snapshot(data, str(path))


def snapshot_to_builtins(snapshot: Model) -> dict[str, Any]:
    """The whole snapshot (or part), defaults included, as JSON-ready data: durations as strings."""
    return msgspec.to_builtins(snapshot, enc_hook=encode)


def dump_snapshot(snapshot: Snapshot) -> str:
    """The snapshot as YAML, leaving out the fields that hold their default."""
    return yaml.safe_dump(msgspec.to_builtins(_without_defaults(snapshot), enc_hook=encode), sort_keys=False)


def _without_defaults(value: Any) -> Any:
    if isinstance(value, Model):
        out = {}
        for info in msgspec.structs.fields(value):
            item = getattr(value, info.name)
            factory = info.default_factory
            default = info.default if factory is msgspec.NODEFAULT else factory()
            if default is msgspec.NODEFAULT or item != default:
                out[info.encode_name] = _without_defaults(item)
        return out
    if isinstance(value, list):
        return [_without_defaults(item) for item in value]
    if isinstance(value, dict):
        return {key: _without_defaults(item) for key, item in value.items()}
    return value


# --- schema problems ------------------------------------------------------------------------

_AT = " - at `$"
_AT_KEY = " - at `key` in `$"
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+)\]|\[\.\.\.\]")
_UNKNOWN_FIELD = re.compile(r"Object contains unknown field `(.*)`")
_MISSING_FIELD = re.compile(r"Object missing required field `(.*)`")


def schema_problem(error: msgspec.ValidationError, data: object) -> Problem:
    """msgspec's ``Expected `int`, got `str` - at `$.listeners[0].port``` as a Problem.

    ``data`` is the document that failed: it names the map key msgspec writes as ``[...]``.
    Unknown and missing fields, and the rules that ``FieldError`` reports, are located at the
    field itself rather than the object holding it; a bad choice lists the valid ones.
    """
    message, at, path = str(error).partition(_AT)
    bad_key = False
    if not at:
        message, at, path = str(error).partition(_AT_KEY)
        bad_key = bool(at)
    loc: list[Any] = []
    for name, index in _PATH_PART.findall(path.removesuffix("`") if at else ""):
        loc.append(name or (int(index) if index else ...))
    if isinstance(error.__cause__, FieldError):
        loc.append(error.__cause__.field)
    elif match := _UNKNOWN_FIELD.fullmatch(message):
        loc.append(match[1])
        message = "unknown field"
    elif match := _MISSING_FIELD.fullmatch(message):
        loc.append(match[1])
        message = "required field missing"
    loc, type_, data = _locate(loc, data)
    if bad_key and isinstance(data, dict):
        if get_origin(type_) is dict:
            key = next((k for k, v in data.items() if not _valid({k: v}, type_)), ...)
        else:  # an object's field names
            key = next((k for k in data if not isinstance(k, str)), ...)
        message = f"the key {key!r}: {message}"
    if message.startswith("Invalid enum value") and (choices := _choices(type_)):
        message += f"; expected {choices}"
    return Problem(field_path(tuple(loc)), message)


def _locate(loc: list[Any], data: Any) -> tuple[list[Any], Any, Any]:
    """Follow ``loc`` through the document and the schema: name each map key (``...``), and
    return the schema type and the data found at the end (None where the two stop matching)."""
    type_: Any = Snapshot
    out: list[Any] = []
    for part in loc:
        type_ = _unwrap(type_)
        origin = get_origin(type_)
        if part is ... and origin is dict and isinstance(data, dict):
            part = next((k for k, v in data.items() if not _valid({k: v}, type_)), ...)
            type_, data = get_args(type_)[1], data.get(part)
        elif isinstance(part, int) and origin is list:
            type_ = get_args(type_)[0]
            data = data[part] if isinstance(data, list) and part < len(data) else None
        elif isinstance(part, str) and isinstance(type_, type) and issubclass(type_, msgspec.Struct):
            fields = {info.encode_name: info.type for info in msgspec.structs.fields(type_)}
            type_ = fields.get(part)
            data = data.get(part) if isinstance(data, dict) else None
        else:
            type_, data = None, None
        out.append(part)
    return out, _unwrap(type_), data


def _unwrap(type_: Any) -> Any:
    """The type inside ``Annotated[...]`` and ``... | None``."""
    while True:
        origin = get_origin(type_)
        if origin is Annotated:
            type_ = get_args(type_)[0]
        elif origin in (Union, types.UnionType):
            options = [t for t in get_args(type_) if t is not type(None)]
            if len(options) != 1:
                return type_
            type_ = options[0]
        else:
            return type_


def _valid(data: object, type_: Any) -> bool:
    try:
        from_builtins(data, type_)
    except msgspec.ValidationError:
        return False
    return True


def _choices(type_: Any) -> str | None:
    """``'http' or 'tcp'`` for an enum or Literal type."""
    if isinstance(type_, type) and issubclass(type_, Enum):
        values = [member.value for member in type_]
    elif get_origin(type_) is Literal:
        values = list(get_args(type_))
    else:
        return None
    quoted = [repr(v) for v in values]
    return " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)


def _repeats(values: list[str]) -> list[tuple[int, int]]:
    """(index, index of its first occurrence) for every value seen before."""
    first: dict[str, int] = {}
    repeats = []
    for i, value in enumerate(values):
        if value in first:
            repeats.append((i, first[value]))
        else:
            first[value] = i
    return repeats


def cross_reference_problems(snapshot: Snapshot) -> list[Problem]:
    problems: list[Problem] = []
    clusters = {c.name for c in snapshot.clusters}
    route_configs = {r.name for r in snapshot.route_configs}

    for field, kind, names in (
        ("listeners", "listener", [item.name for item in snapshot.listeners]),
        ("route_configs", "route config", [r.name for r in snapshot.route_configs]),
        ("clusters", "cluster", [c.name for c in snapshot.clusters]),
    ):
        for i, j in _repeats(names):
            problems.append(
                Problem(
                    f"{field}[{i}].name",
                    f"{field}[{j}] is also a {kind} named {names[i]!r}; names must be unique",
                )
            )

    bound = [f"{item.address}:{item.port}" if item.port else "" for item in snapshot.listeners]
    for i, j in _repeats(bound):
        if bound[i]:
            problems.append(Problem(f"listeners[{i}].port", f"listeners[{j}] already binds {bound[i]}"))

    def need_cluster(field: str, name: str) -> None:
        if name not in clusters:
            problems.append(Problem(field, f"no cluster named {name!r}; define it under clusters"))

    for i, listener in enumerate(snapshot.listeners):
        if listener.route_config is not None and listener.route_config not in route_configs:
            problems.append(
                Problem(
                    f"listeners[{i}].route_config",
                    f"no route config named {listener.route_config!r}; define it under route_configs",
                )
            )
        if listener.tcp is not None:
            for j, dest in enumerate(listener.tcp.destinations):
                need_cluster(f"listeners[{i}].tcp.destinations[{j}].cluster", dest.cluster)

    for i, rc in enumerate(snapshot.route_configs):
        for j, vh in enumerate(rc.virtual_hosts):
            for k, route in enumerate(vh.routes):
                base = f"route_configs[{i}].virtual_hosts[{j}].routes[{k}]"
                if route.route is None:
                    continue
                for m, dest in enumerate(route.route.destinations):
                    need_cluster(f"{base}.route.destinations[{m}].cluster", dest.cluster)
                if route.route.mirror is not None:
                    need_cluster(f"{base}.route.mirror.cluster", route.route.mirror.cluster)
    return problems
