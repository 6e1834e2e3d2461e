"""Shared test fixtures: the real instrument files in ../shared/realdata."""

from __future__ import annotations

from pathlib import Path

import pytest

#: shared/ sits beside the checkout (CI clones the repo next to it).
REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"


@pytest.fixture(scope="session")
def realdata() -> Path:
    """Folder holding the real instrument files; the suite fails loudly without it."""
    if not REALDATA.is_dir():
        pytest.fail(f"real instrument files not found at {REALDATA}: clone next to shared/")
    return REALDATA
