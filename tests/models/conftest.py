"""Shared fixtures for the model tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def single_thread() -> Iterator[None]:
    """Run on one thread: these small tensors gain little from a second one, and on a shared
    CPU OpenMP's spin-waiting makes two threads ~10x slower (measured: 10 s vs 164 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
