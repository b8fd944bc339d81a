"""``train.channels_last``: every registered model computes the same in channels-last memory."""

from __future__ import annotations

import pytest
import torch

from bench.models import MODELS, create_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", MODELS.names())
def test_channels_last_changes_the_layout_not_the_outputs(name):
    torch.manual_seed(0)
    model = create_model(name, "quick", num_classes=10, in_chans=1, image_size=64).eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        expected = model(x)
        model.to(memory_format=torch.channels_last)
        got = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
