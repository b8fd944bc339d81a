"""An inference copy of a model whose linear and convolution weights are packed once for oneDNN.

Eager PyTorch at batch 1 on a CPU runs each ``nn.Linear`` through MKL on an unpacked weight,
sends stride-1 1x1 convolutions to a slow path, re-lays-out other convolution weights on
every call and keeps batch norm apart from its convolution. ONNX Runtime does none of that,
and was 1.2-1.5x faster on the paper-scale models. This copy does what its session does:
batch norm folded into the convolution before it (where the model traces with torch.fx),
every weight reordered once into oneDNN's blocked layout, and the forward calling oneDNN's
fp32 kernels (``torch.ops.mkldnn``: the ops inductor's freezing pass emits). Numerics stay
float32: the copy's logits are checked against the eager model's.

A convolution's packing is chosen for the input size seen when packing, so a copy serves one
input shape; build one per shape. The ops are private to PyTorch's CPU build: the pinned
version has them, and ``available()`` says whether this one does.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

PARITY_ATOL = 1e-3  # the copy's logits against the eager model's, float32


def available() -> bool:
    """Whether this PyTorch build has oneDNN and its packed linear and convolution ops."""
    ops = torch.ops.mkldnn
    return (torch.backends.mkldnn.is_available()
            and all(hasattr(ops, name) for name in ("_reorder_linear_weight", "_linear_pointwise",
                                                    "_reorder_convolution_weight", "_convolution_pointwise")))


class PackedLinear(nn.Module):
    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.register_buffer("packed", torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), None))
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")


class PackedConv2d(nn.Module):
    def __init__(self, conv: nn.Conv2d, input_size: tuple[int, ...]) -> None:
        super().__init__()
        self.padding, self.stride = list(conv.padding), list(conv.stride)
        self.dilation, self.groups = list(conv.dilation), conv.groups
        self.register_buffer("packed", torch.ops.mkldnn._reorder_convolution_weight(
            conv.weight.detach(), self.padding, self.stride, self.dilation, self.groups, list(input_size)))
        self.register_buffer("bias", None if conv.bias is None else conv.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._convolution_pointwise(x, self.packed, self.bias, self.padding, self.stride,
                                                       self.dilation, self.groups, "none", [], "")


def _fold_batch_norms(model: nn.Module) -> tuple[nn.Module, bool]:
    """Batch norm folded into the convolution before it, where the model traces with torch.fx."""
    if not any(isinstance(m, nn.BatchNorm2d) for m in model.modules()):
        return model, False
    from torch.fx.experimental.optimization import fuse

    try:
        return fuse(model), True
    except Exception as exc:  # noqa: BLE001 - a model torch.fx cannot trace keeps its batch norms
        log.info("batch norm left unfolded: %s does not trace (%s)", type(model).__name__, type(exc).__name__)
        return model, False


def _replace(model: nn.Module, swap: dict[nn.Module, nn.Module]) -> None:
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if child in swap:
                setattr(parent, name, swap[child])


def packed_copy(model: nn.Module, example: torch.Tensor) -> tuple[nn.Module, dict[str, Any]]:
    """An eval copy of ``model`` for inputs shaped like ``example`` (see the module docstring),
    and what was done: layers packed, whether batch norm was folded, the logits' largest
    difference from the eager model's on ``example``. Raises RuntimeError where oneDNN's ops
    are missing or the copy's logits differ by more than ``PARITY_ATOL``."""
    if not available():
        raise RuntimeError("this PyTorch build lacks oneDNN's packed linear and convolution ops")
    eager = model.eval()
    packed, folded = _fold_batch_norms(copy.deepcopy(eager))
    packed = packed.eval()
    inputs: dict[nn.Module, tuple[int, ...]] = {}

    def record(module: nn.Module, args: tuple[torch.Tensor, ...], _out: torch.Tensor) -> None:
        inputs.setdefault(module, tuple(args[0].shape))

    hooks = [m.register_forward_hook(record) for m in packed.modules()
             if type(m) is nn.Conv2d and m.padding_mode == "zeros"]
    with torch.inference_mode():
        packed(example)
    for hook in hooks:
        hook.remove()
    linears = {m: PackedLinear(m) for m in packed.modules() if type(m) is nn.Linear}
    convs = {m: PackedConv2d(m, size) for m, size in inputs.items()}
    _replace(packed, {**linears, **convs})
    with torch.inference_mode():
        diff = float((packed(example).float() - eager(example).float()).abs().max())
    if not diff <= PARITY_ATOL:
        raise RuntimeError(f"oneDNN-packed copy moved the logits by {diff:.3g} (> {PARITY_ATOL})")
    return packed, {"linear_layers": len(linears), "conv_layers": len(convs), "batch_norm_folded": folded,
                    "max_abs_logit_diff_vs_eager": diff}
