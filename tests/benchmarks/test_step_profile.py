"""``medbench bench-step``: a training step's self CPU time, by op category."""

from __future__ import annotations

import pytest

from bench.benchmarks.trainer import profile_training_step, step_category
from bench.core.config import load_suite, suite_from_dict


@pytest.mark.parametrize("op, category", [
    ("aten::_scaled_dot_product_flash_attention_for_cpu_backward", "attention kernels"),
    ("aten::mm", "matmul"), ("aten::addmm", "matmul"), ("aten::bmm", "matmul"),
    ("aten::convolution_backward", "convolution"), ("aten::mkldnn_convolution", "convolution"),
    ("aten::_foreach_addcdiv_", "optimizer"), ("Optimizer.step#AdamW.step", "optimizer"),
    ("aten::native_layer_norm_backward", "normalisation"), ("aten::gelu_backward", "activations"),
    ("aten::_to_copy", "dtype casts and copies"), ("aten::copy_", "dtype casts and copies"),
    ("aten::permute", "reshapes and indexing"), ("aten::add_", "elementwise and other"),
    ("aten::stack", "reshapes and indexing"), ("aten::_softmax", "softmax"),
])
def test_ops_fall_into_their_category(op, category):
    assert step_category(op) == category


def test_step_profile_shares_sum_to_one_and_name_the_top_ops():
    values = load_suite("quick").to_dict()
    values["cost"] = {"batch_size": 8}
    result = profile_training_step(suite_from_dict(values), "pyramid_softmax", dtype="float32", steps=1, top=5)
    assert sum(result["share_by_category"].values()) == pytest.approx(1.0)
    assert len(result["top_ops"]) == 5 and result["images_per_s"] > 0
    shares = [op["share"] for op in result["top_ops"]]
    assert shares == sorted(shares, reverse=True)
    assert result["share_by_category"]["attention kernels"] + result["share_by_category"]["matmul"] > 0.2
