"""Shared test fixtures. ``shared_dir`` finds ../shared (fixtures, seeds, benchmarks)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parent.parent


def find_shared() -> Path:
    env = os.environ.get("PAPERRADAR_SHARED_DIR")
    candidates = [Path(env)] if env else []
    candidates += [REPO.parent / "shared", REPO / "shared", Path("/work/shared")]
    for c in candidates:
        if (c / "fixtures").is_dir():
            return c
    raise RuntimeError("../shared not found; set PAPERRADAR_SHARED_DIR")


SHARED = find_shared()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return SHARED


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return SHARED / "fixtures"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data dir for every test that loads the bundled model: the int8 graph is derived once."""
    return tmp_path_factory.mktemp("models")
