"""FLOPs of a model's forward pass: two counters that must agree, and closed forms for attention.

What is counted: matrix products (mm, addmm, bmm, baddbmm, matmul, linear, einsum),
convolutions and scaled-dot-product attention, fused or not, as multiply-accumulates
(GMACs = MACs / 1e9, GFLOPs = 2 x GMACs). Element-wise work (activations, softmax, exp,
bias additions, masks, residuals), norms, reductions and pooling are not counted.

``torch.utils.flop_counter.FlopCounterMode`` sees the aten ops as they dispatch;
fvcore's ``FlopCountAnalysis`` sees a TorchScript trace. They reach their figures from
different graphs, so their agreement checks linear layers, convolutions and explicit
matmuls. It does not check attention: neither knows fused attention out of the box
(torch's counter lacks the CPU flash kernel
``aten._scaled_dot_product_flash_attention_for_cpu``, fvcore lacks
``aten::scaled_dot_product_attention``), and both are taught the same L x S x (E + Ev)
formula here, so a wrong attention cost would be wrong in both alike. Attention is
checked instead against the closed forms in ``bench.models.flops_formulas``
(tests/test_flops_formulas.py); with the formula registered, a fused forward counts
exactly what the explicit softmax(QK^T)V path counts.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode

log = logging.getLogger(__name__)

MAX_REL_DIFF = 0.03  # the two counters may differ by this fraction at most

aten = torch.ops.aten


class FlopMismatchError(RuntimeError):
    """The torch and fvcore counts differ by more than ``MAX_REL_DIFF``."""


@dataclass(frozen=True)
class FlopReport:
    """One forward pass, in multiply-accumulates; ``gmacs`` is the torch counter's figure."""

    gmacs: float
    gflops: float
    torch_gmacs: float
    fvcore_gmacs: float
    rel_diff: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


# -- torch.utils.flop_counter --------------------------------------------------------

def _sdpa_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:  # noqa: ANN001
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


def _sdpa_backward_flop(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None,  # noqa: ANN001
                        **kwargs) -> int:
    return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def _register_torch_formulas() -> None:
    """Teach FlopCounterMode the fused attention kernels it lacks (idempotent)."""
    formulas = {
        "_scaled_dot_product_flash_attention_for_cpu": _sdpa_flop,
        "_scaled_dot_product_fused_attention_overrideable": _sdpa_flop,
        "_scaled_dot_product_flash_attention_for_cpu_backward": _sdpa_backward_flop,
        "_scaled_dot_product_fused_attention_overrideable_backward": _sdpa_backward_flop,
    }
    for name, formula in formulas.items():
        op = getattr(aten, name, None)
        if op is not None and op not in flop_counter.flop_registry:
            flop_counter.register_flop_formula(op)(formula)


_register_torch_formulas()


def torch_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of ``model(x)`` by ``FlopCounterMode`` (which counts 2 per MAC)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


# -- fvcore ----------------------------------------------------------------------------

def _shape(value: Any) -> list[int]:
    shape = value.type().sizes() if value.isCompleteTensor() else None
    if shape is None:
        raise ValueError(f"fvcore: no static shape for {value}")
    return list(shape)


def _matmul_macs(inputs: list, outputs: list) -> int:
    """Any (batched, broadcast) matrix product: output elements x contracted length."""
    return math.prod(_shape(outputs[0])) * _shape(inputs[0])[-1]


def _baddbmm_macs(inputs: list, outputs: list) -> int:
    return math.prod(_shape(outputs[0])) * _shape(inputs[1])[-1]


def _sdpa_macs(inputs: list, outputs: list) -> int:
    """softmax(Q K^T) V: L x S x E for the scores, L x S x Ev for the weighted sum, per batch and head."""
    q, k, v = (_shape(t) for t in inputs[:3])
    return math.prod(q[:-1]) * k[-2] * (q[-1] + v[-1])


_FVCORE_HANDLES = {
    "aten::matmul": _matmul_macs,
    "aten::mm": _matmul_macs,
    "aten::bmm": _matmul_macs,
    "aten::baddbmm": _baddbmm_macs,
    "aten::scaled_dot_product_attention": _sdpa_macs,
}


def fvcore_macs(model: nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of ``model(x)`` by fvcore's ``FlopCountAnalysis`` (a jit trace)."""
    from bench.core.compat import ensure_torchvision

    ensure_torchvision()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fvcore scripts helpers on import
            from fvcore.nn import FlopCountAnalysis, jit_handles
    except ImportError:
        raise ImportError("counting FLOPs needs fvcore: pip install fvcore") from None
    # only the matrix-product, convolution and attention handles: no norms, pooling, upsampling
    handles = {"aten::addmm": jit_handles.addmm_flop_jit, "aten::linear": jit_handles.linear_flop_jit,
               "aten::_convolution": jit_handles.conv_flop_jit, "aten::einsum": jit_handles.einsum_flop_jit,
               **_FVCORE_HANDLES}
    analysis = FlopCountAnalysis(model, (x,)).clear_op_handles().set_op_handle(**handles)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python control flow on shapes
        total = analysis.total()
    log.debug("fvcore skipped ops: %s", dict(analysis.unsupported_ops()))
    return int(total)


# -- both ------------------------------------------------------------------------------

def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> FlopReport:
    """GMACs (matmuls and convolutions) of one forward pass on an input of ``input_shape``, by two counters.

    The model runs in eval mode (restored afterwards) on its own device and dtype.
    Raises ``FlopMismatchError`` when the counters differ by more than 3%.
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(input_shape, generator=generator).to(device=device, dtype=dtype)
    was_training = model.training
    model.eval()
    try:
        t_macs = torch_macs(model, x)
        f_macs = fvcore_macs(model, x)
    finally:
        model.train(was_training)
    rel_diff = abs(t_macs - f_macs) / max(t_macs, f_macs, 1)
    if rel_diff > MAX_REL_DIFF:
        raise FlopMismatchError(
            f"{type(model).__name__} on input {tuple(input_shape)}: torch counts {t_macs / 1e9:.4f} GMACs, "
            f"fvcore {f_macs / 1e9:.4f} GMACs ({rel_diff:.1%} apart, limit {MAX_REL_DIFF:.0%})"
        )
    gmacs = t_macs / 1e9
    return FlopReport(gmacs=gmacs, gflops=2 * gmacs, torch_gmacs=gmacs, fvcore_gmacs=f_macs / 1e9,
                      rel_diff=rel_diff)


class _BoundGrid(nn.Module):
    """An attention module with its grid bound, so that it runs as ``module(x)``."""

    def __init__(self, attention: nn.Module, grid_size: tuple[int, int]) -> None:
        super().__init__()
        self.attention = attention
        self.grid_size = (int(grid_size[0]), int(grid_size[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(x, self.grid_size)


def count_attention_flops(module: nn.Module, batch: int = 1) -> FlopReport:
    """``count_flops`` of one attention module (``bench.models.attention`` contract) on its own grid.

    The input is (batch, N, C) with N and C from the module's ``grid_size`` and ``dim``.
    """
    grid = module.grid_size
    return count_flops(_BoundGrid(module, grid), (batch, grid[0] * grid[1], module.dim))
