"""A cold `loom up --detach` of examples/bookstore until ready, N times: the median wall time.

Cold: the mesh's state folder (`.loom/`: CA, logs) is removed before each run, so every run makes
a new CA and issues every certificate. Wall time counts from starting the `loom` command to its
exit (it exits once every sidecar is SYNCED and every app ready); `loom down` after each run.

    python bench/up_bench.py [--runs N] [DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def loom(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HTTP_PROXY", "http_proxy")}
    return subprocess.run(
        [sys.executable, "-m", "loom.cli.main", *args], capture_output=True, text=True, env=env, timeout=120
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("directory", nargs="?", default=str(ROOT / "examples" / "bookstore"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--transparent", action="store_true", help="loom up --transparent (Linux, root): namespaces, iptables"
    )
    args = parser.parse_args()
    directory = Path(args.directory)
    walls, reported = [], []
    replicas = 0
    for run in range(args.runs):
        shutil.rmtree(directory / ".loom", ignore_errors=True)
        started = time.perf_counter()
        up = loom("up", "--detach", *(["--transparent"] if args.transparent else []), str(directory))
        wall = time.perf_counter() - started
        try:
            if up.returncode != 0:
                sys.exit(f"loom up failed:\n{up.stdout}\n{up.stderr}")
            state = json.loads((directory / ".loom" / "mesh.json").read_text())
            replicas = len(state["replicas"])
            walls.append(wall)
            reported.append(state["ready_seconds"])
            print(
                f"run {run + 1}: {wall:.2f} s (mesh reports ready {state['ready_seconds']:.2f} s after start)"
            )
        finally:
            loom("down", str(directory))
    mode = "--transparent " if args.transparent else ""
    print(
        f"cold `loom up {mode}--detach` of {directory.name} ({replicas} replicas, each with its sidecar), "
        f"{args.runs} runs on {os.cpu_count()} cores: median {statistics.median(walls):.2f} s "
        f"(min {min(walls):.2f}, max {max(walls):.2f}); "
        f"supervisor's own median {statistics.median(reported):.2f} s"
    )


if __name__ == "__main__":
    main()
