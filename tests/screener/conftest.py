"""Fixtures shared by the screener tests."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PEERS_DIR = REPO_ROOT.parent / "shared" / "data" / "peers"


@pytest.fixture(scope="session")
def peers_dir() -> Path:
    """The peer test images (used in place, read-only); skips when they are not there."""
    if not PEERS_DIR.is_dir():
        pytest.skip(f"peer test images not found at {PEERS_DIR} (../shared/data/peers)")
    return PEERS_DIR
