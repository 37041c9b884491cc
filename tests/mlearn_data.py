"""Where the tests find the public mlearn DFT data (../shared/data/mlearn, beside the repository; never copied
into it), the marker that skips a test without it, and shipped study configs pointed at it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
MLEARN = REPO.parent / "shared" / "data" / "mlearn"
needs_mlearn = pytest.mark.skipif(not all((MLEARN / element / "training.json").is_file() for element in ("Si", "Ge")),
                                  reason=f"mlearn data not found at {MLEARN}")


def shipped_config_with_mlearn(name: str) -> dict:
    """config/<name> with its mlearn path made absolute, so that it plans and runs from any directory."""
    config = yaml.safe_load((REPO / "config" / name).read_text())
    config["datasets"]["mlearn"]["path"] = str(MLEARN)
    return config
