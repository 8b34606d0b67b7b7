"""Prometheus text exposition format 0.0.4: names, escaping, numbers.

Everything here runs when a label set is first seen or at scrape time, never per request.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_RESERVED_LABELS = frozenset({"le", "quantile"})


def check_metric_name(name: str) -> str:
    if not _METRIC_NAME.match(name):
        raise ValueError(
            f"invalid metric name {name!r}: use letters, digits, '_' and ':', not a leading digit"
        )
    return name


def check_label_names(names: Sequence[str]) -> tuple[str, ...]:
    for name in names:
        if not _LABEL_NAME.match(name) or name.startswith("__"):
            raise ValueError(
                f"invalid label name {name!r}: use letters, digits and '_', not starting with a digit or '__'"
            )
        if name in _RESERVED_LABELS:
            raise ValueError(f"label name {name!r} is reserved for histograms and summaries")
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate label names in {tuple(names)!r}")
    return tuple(names)


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def label_pairs(names: Sequence[str], values: Sequence[str]) -> str:
    """``a="x",b="y"`` (no braces), values escaped."""
    return ",".join(f'{n}="{escape_label_value(v)}"' for n, v in zip(names, values, strict=True))


def header(out: list[str], name: str, help_text: str, kind: str) -> None:
    out.append(f"# HELP {name} {escape_help(help_text)}\n# TYPE {name} {kind}\n")


def format_value(value: float) -> str:
    if type(value) is int:
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def format_bound(bound: float) -> str:
    """A bucket bound as Envoy prints it (``0.5``, ``1``, ``3.6e+06``), exact when %g would round."""
    if math.isinf(bound):
        return "+Inf"
    text = format(bound, "g")
    return text if float(text) == bound else repr(float(bound))


def bucket_suffixes(bounds: Sequence[float]) -> tuple[str, ...]:
    """``,le="<bound>"} `` for every finite bound and +Inf: appended to a sample's labels."""
    return tuple(f',le="{format_bound(b)}"}} ' for b in (*bounds, math.inf))
