"""Sampling the control plane with py-spy while it pushes, and summarising where its time went."""

from __future__ import annotations

import collections
import contextlib
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

FRAME = re.compile(r"^(?P<function>.+?) \((?P<file>[^()]*?):?(?P<line>\d*)\)$")


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


@contextlib.contextmanager
def record(pid: int, output: Path, rate: int = 200) -> Iterator[Path | None]:
    """Sample ``pid`` (collapsed stacks, non-blocking) for the duration of the block."""
    binary = py_spy()
    if binary is None:
        yield None
        return
    argv = [binary, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw"]
    argv += ["--nonblocking", "--output", str(output)]
    log = output.with_suffix(".log")
    with log.open("wb") as out:
        popen = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield output
    finally:
        if popen.poll() is None:
            popen.send_signal(signal.SIGINT)
            try:
                popen.wait(30)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()


def _short(frame: str) -> str:
    match = FRAME.match(frame)
    if match is None:
        return frame
    path = match["file"]
    for marker in ("/site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['function']} ({path})"


def summarize(raws: Sequence[Path], top: int = 15) -> dict[str, Any]:
    """Top functions by own samples, with their inclusive share, from py-spy's collapsed stacks
    (several files: their samples together)."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    lines = []
    for raw in raws:
        try:
            lines += raw.read_text(errors="replace").splitlines()
        except OSError:
            continue
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_short(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for name in set(frames):
            inclusive[name] += n
    if not total:
        return {}
    rows = [
        {
            "function": name,
            "self_pct": round(100 * n / total, 1),
            "total_pct": round(100 * inclusive[name] / total, 1),
        }
        for name, n in own.most_common(top)
    ]
    heavy = [
        {"function": name, "total_pct": round(100 * n / total, 1)}
        for name, n in inclusive.most_common(40)
        if n < total
    ][:top]
    return {"samples": total, "raw": [str(r) for r in raws], "top": rows, "inclusive": heavy}
