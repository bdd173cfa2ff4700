"""Shared fixtures: where ../shared/data lives, and a quiet, float64 JAX."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("JAX_ENABLE_X64", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

REPO = Path(__file__).resolve().parent.parent


def _shared_data_dir() -> Path:
    env = os.environ.get("JXSPEC_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


SHARED_DATA = _shared_data_dir()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real OGIP files (../shared/data beside the checkout).

    Skips when it is absent, except in CI (``CI`` set), where it must exist.
    """
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            raise RuntimeError(f"CI is set but the shared data folder {SHARED_DATA} is missing")
        pytest.skip(f"shared data folder {SHARED_DATA} not present")
    return SHARED_DATA
