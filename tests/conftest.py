"""Fixtures shared across the test tree."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture()
def one_thread() -> Iterator[None]:
    """Run on one thread: small tensors gain little from a second one, and on a shared CPU
    OpenMP's spin-waiting makes two threads many times slower (measured: 10 s vs 164 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
