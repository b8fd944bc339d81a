"""Every model test runs on one thread (see ``one_thread`` in tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _single_thread(one_thread: None) -> None:
    """Applies the shared ``one_thread`` fixture to this folder."""
