"""Where the api tests' fixture files live."""

from __future__ import annotations

from pathlib import Path

import yaml

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "api"
SEED_EXAMPLES = FIXTURES / "seed_examples"
SHARED_SEED_EXAMPLES = Path("/work/shared/seed-examples")  # the originals, when present


def read_yaml(name: str) -> object:
    return yaml.safe_load((FIXTURES / name).read_text())
