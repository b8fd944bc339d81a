"""The oneDNN-packed inference copy: same logits as the eager model, every linear and
convolution packed, batch norm folded where the model traces, and its profile rows."""

from __future__ import annotations

import pytest
import torch

from bench.core.config import load_suite, suite_from_dict
from bench.models import create_model
from bench.models.onednn_packed import PackedConv2d, PackedLinear, available, packed_copy
from bench.stages.profile_run import onednn_cpu_timers
from bench.stages.rounds import run_in_rounds

pytestmark = pytest.mark.skipif(not available(), reason="this PyTorch build lacks oneDNN's packed ops")


@pytest.mark.parametrize("name, folded", [("resnet50", True), ("pyramid_softmax", False), ("vit", False)])
def test_packed_copy_matches_eager_on_other_inputs(name, folded):
    torch.manual_seed(0)
    model = create_model(name, "quick", num_classes=10, in_chans=1, image_size=64).eval()
    packed, info = packed_copy(model, torch.randn(1, 1, 64, 64))
    linears = sum(type(m) is torch.nn.Linear for m in model.modules())
    convs = sum(type(m) is torch.nn.Conv2d for m in model.modules())
    assert info["linear_layers"] == linears and info["conv_layers"] == convs and info["batch_norm_folded"] is folded
    assert not any(type(m) in (torch.nn.Linear, torch.nn.Conv2d) for m in packed.modules())
    assert sum(isinstance(m, (PackedLinear, PackedConv2d)) for m in packed.modules()) == linears + convs
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in packed.modules()) is (not folded and name == "resnet50")
    other = torch.randn(1, 1, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(packed(other), model(other), atol=1e-4)
    assert any(type(m) is torch.nn.Linear for m in model.modules())  # the eager model is left as it was


def test_a_copy_that_moves_the_logits_is_refused(monkeypatch):
    model = create_model("pyramid_softmax", "quick", num_classes=10, in_chans=1, image_size=64).eval()
    original = PackedLinear.forward
    monkeypatch.setattr(PackedLinear, "forward", lambda self, x: original(self, x) + 1.0)
    with pytest.raises(RuntimeError, match="moved the logits"):
        packed_copy(model, torch.randn(1, 1, 64, 64))


def test_profile_times_the_packed_copy_per_batch_and_thread_count():
    values = load_suite("quick").to_dict()
    values["profile"] = {"batch_sizes": [1, 4], "runs": 30, "threads": [1, 2], "runtimes": ["torch", "torch_onednn"]}
    cfg = suite_from_dict(values).profile
    model = create_model("pyramid_softmax", "quick", num_classes=10, in_chans=1, image_size=32).eval()
    timers, info = onednn_cpu_timers(model, cfg, 32, 1)
    entries = run_in_rounds(timers, rounds=1, warmup=1)
    assert sorted((e["batch_size"], e["threads"]) for e in entries) == [(1, 1), (1, 2), (4, 2)]
    assert all(e["runtime"] == "torch_onednn" and e["dtype"] == "float32" for e in entries)
    assert info["linear_layers"] == 24 and info["max_abs_logit_diff_vs_eager"] < 1e-3
