"""Fixtures shared by the whole test session."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyz import ensure_pyz


@pytest.fixture(scope="session")
def pyz() -> Path:
    """dist/etcdmgr.pyz, built once per session when missing or older than its sources."""
    return ensure_pyz()
