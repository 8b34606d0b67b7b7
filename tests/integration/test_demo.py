"""The README's demo runs and shows the canary split and the header route."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo" / "run.py"


def test_demo_shows_the_split_and_the_canary_header_route() -> None:
    done = subprocess.run(
        [sys.executable, str(DEMO), "--once", "--requests", "400"],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "120", "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    shares = dict(re.findall(r"│ (v[12])\s+│\s+\d+ │\s+([\d.]+)%", out))
    assert 80 <= float(shares["v1"]) <= 97, out
    assert "│ v2      │       20 │ 100.0% │" in out, out
    assert 'destination_version="v1", response_code="200"' in out
