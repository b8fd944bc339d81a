"""FLOP counting: two counters that agree, fused attention counted, literature figures met."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from bench.models import flops
from bench.models import create_model, list_models
from bench.models.flops import FlopMismatchError, count_flops


@pytest.fixture(autouse=True)
def _single_thread(one_thread: None) -> None:
    """The shared ``one_thread`` fixture (tests/conftest.py), for every test here."""


def build(name: str, scale: str = "quick", **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, scale, **kwargs)


@pytest.mark.parametrize("name", list_models())
def test_counters_agree(name: str) -> None:
    report = count_flops(build(name), (1, 1, 64, 64))
    assert report.gmacs > 0 and report.rel_diff <= flops.MAX_REL_DIFF
    assert report.gflops == 2 * report.gmacs and report.gmacs == report.torch_gmacs


def test_fused_cpu_attention_is_counted() -> None:
    q, k, v = torch.randn(2, 3, 10, 8), torch.randn(2, 3, 12, 8), torch.randn(2, 3, 12, 4)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        F.scaled_dot_product_attention(q, k, v)
    assert counter.get_total_flops() == 2 * (2 * 3 * 10 * 12 * (8 + 4))


def _unfuse(model: torch.nn.Module) -> None:
    for module in model.modules():
        if hasattr(module, "fused_attn"):  # timm
            module.fused_attn = False
        if hasattr(module, "fused"):  # ours
            module.fused = False


@pytest.mark.parametrize("name", ["vit", "pyramid_softmax"])
def test_fused_and_explicit_attention_count_the_same(name: str) -> None:
    model = build(name).eval()
    x = torch.randn(1, 1, 64, 64)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    ops = {str(op) for op in counter.get_flop_counts()["Global"]}
    assert "aten._scaled_dot_product_flash_attention_for_cpu" in ops  # the fused kernel really ran
    fused = count_flops(model, (1, 1, 64, 64))
    _unfuse(model)
    explicit = count_flops(model, (1, 1, 64, 64))
    assert (fused.torch_gmacs, fused.fvcore_gmacs) == (explicit.torch_gmacs, explicit.fvcore_gmacs)


def test_resnet50_matches_the_literature() -> None:
    rgb = count_flops(build("resnet50", "paper", in_chans=3), (1, 3, 224, 224))
    assert abs(rgb.gmacs - 4.1) / 4.1 < 0.02  # ResNet-50 at 224 px: 4.1 GMACs
    gray = count_flops(build("resnet50", "paper"), (1, 1, 224, 224))
    stem_saving = 2 * 64 * 7 * 7 * 112 * 112 / 1e9  # two fewer input channels in the 7x7 stem
    assert gray.gmacs == pytest.approx(rgb.gmacs - stem_saving, rel=1e-9)


def test_mismatch_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flops, "fvcore_macs", lambda model, x: 1)
    with pytest.raises(FlopMismatchError, match="fvcore"):
        count_flops(build("vit"), (1, 1, 64, 64))


def test_missing_fvcore_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fvcore", None)
    monkeypatch.setitem(sys.modules, "fvcore.nn", None)
    with pytest.raises(ImportError, match="pip install fvcore"):
        flops.fvcore_macs(build("vit"), torch.randn(1, 1, 64, 64))


def test_training_mode_restored() -> None:
    model = build("vit").train()
    count_flops(model, (1, 1, 64, 64))
    assert model.training


def _softmax_attention() -> torch.nn.Module:
    from bench.models.attention import ATTENTION

    torch.manual_seed(0)
    return ATTENTION.get("softmax")(32, 2, grid_size=(8, 8)).eval()


def test_count_attention_flops_binds_the_grid_and_scales_with_batch() -> None:
    module = _softmax_attention()
    one, three = flops.count_attention_flops(module), flops.count_attention_flops(module, batch=3)
    n, c = 64, 32
    assert one.torch_gmacs * 1e9 == 4 * n * c * c + 2 * n * n * c  # projections + Q K^T + A V
    assert three.torch_gmacs == pytest.approx(3 * one.torch_gmacs, rel=1e-12)


def test_counters_agreeing_does_not_check_attention(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both counters use one SDPA formula: get it wrong in both and they still agree.

    That is why attention is checked against ``bench.models.flops_formulas`` instead.
    """
    from torch.utils import flop_counter

    from bench.models.flops_formulas import attention_macs

    sdpa_count = flop_counter.sdpa_flop_count
    monkeypatch.setattr(flop_counter, "sdpa_flop_count", lambda *a, **k: 2 * sdpa_count(*a, **k))
    fvcore_sdpa = flops._FVCORE_HANDLES["aten::scaled_dot_product_attention"]
    monkeypatch.setitem(flops._FVCORE_HANDLES, "aten::scaled_dot_product_attention",
                        lambda inputs, outputs: 2 * fvcore_sdpa(inputs, outputs))
    module = _softmax_attention()
    wrong = flops.count_attention_flops(module)  # no FlopMismatchError
    assert wrong.rel_diff == 0
    expected = attention_macs(module)
    assert abs(wrong.torch_gmacs * 1e9 - expected) / expected > 0.2
