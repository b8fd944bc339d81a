"""The attention benchmark's module options and its references: third-party implementations
(timm, ``linformer``, ``performer-pytorch``) built at our shapes and set up to do the same
work as ours, so that a speed ratio compares implementations, not amounts of work.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

# Constructor options per module. Linformer's k and Performer's m are fixed for every N,
# so that linear-time methods show linear scaling; Performer never redraws its features
# (the references below use the same k and m and do not redraw either); windows of 8 tile
# every grid without padding; XCA is timed without its LPI conv branch, which is not attention.
MODULE_OPTIONS: dict[str, dict[str, Any]] = {
    "linformer": {"proj_len": 256},
    "performer": {"num_features": 256, "redraw_interval": 0},
    "swin": {"window_size": 8, "shift": False},
    "xca": {"lpi": False},
}


def square_grid(tokens: int) -> tuple[int, int]:
    """The square token grid of N tokens (N must be a perfect square)."""
    g = math.isqrt(tokens)
    if g * g != tokens:
        raise ValueError(f"token counts must be perfect squares (square grids), got {tokens}")
    return g, g


def _timm_xca(channels: int, heads: int, tokens: int) -> nn.Module:
    from bench.core.compat import import_timm

    import_timm()
    from timm.models.xcit import XCA

    return XCA(channels, num_heads=heads, qkv_bias=True)


def _timm_window(channels: int, heads: int, tokens: int) -> nn.Module:
    from bench.core.compat import import_timm

    import_timm()
    from timm.models.swin_transformer import WindowAttention, window_partition, window_reverse

    ws = MODULE_OPTIONS["swin"]["window_size"]
    h, w = square_grid(tokens)

    class Windowed(nn.Module):
        """timm's W-MSA fed like ours: (B, N, C) → pad → windows → attention → merge → crop."""

        def __init__(self) -> None:
            super().__init__()
            self.attn = WindowAttention(channels, heads, window_size=ws, qkv_bias=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            b, _, c = x.shape
            x = x.view(b, h, w, c)
            ph, pw = (-h) % ws, (-w) % ws
            if ph or pw:
                x = F.pad(x, (0, 0, 0, pw, 0, ph))
            hp, wp = h + ph, w + pw
            windows = window_partition(x, (ws, ws)).view(-1, ws * ws, c)
            x = window_reverse(self.attn(windows).view(-1, ws, ws, c), (ws, ws), hp, wp)
            return x[:, :h, :w].reshape(b, h * w, c)

    return Windowed()


def _pypi_linformer(channels: int, heads: int, tokens: int) -> nn.Module:
    """The ``linformer`` package's attention, shaped and shared like ours.

    Ours computes separate keys and values (W_K, W_V) and projects both N -> k with one
    shared E (E = F). The package's ``share_kv=True`` would also tie W_V to W_K
    (values = keys), skipping the N C^2 of the value projection that ours computes; its
    default keeps separate E and F, which is the same work but twice the N x k
    parameters. So it is built with ``share_kv=False`` and F tied to E: one N x k
    parameter, the same matrix products as ours (see ``bench.models.flops_formulas``). k is
    capped at N, as ours is.
    """
    from linformer import LinformerSelfAttention

    k = min(tokens, MODULE_OPTIONS["linformer"]["proj_len"])
    ref = LinformerSelfAttention(channels, seq_len=tokens, k=k, heads=heads, share_kv=False)
    ref.proj_v = ref.proj_k  # one Parameter under both names: keys and values share E
    return ref


def _pypi_performer(channels: int, heads: int, tokens: int) -> nn.Module:
    """performer-pytorch's FAVOR+ attention with our m; ``SelfAttention`` never redraws its features.

    (Redraws happen only in the package's ``Performer`` wrapper, through its
    ``ProjectionUpdater``; ``feature_redraw_interval`` is ignored by ``SelfAttention``.)
    """
    from performer_pytorch import SelfAttention

    return SelfAttention(channels, heads=heads, dim_head=channels // heads, qkv_bias=True,
                         nb_features=MODULE_OPTIONS["performer"]["num_features"])


REFERENCES: dict[str, tuple[str, Callable[[int, int, int], nn.Module]]] = {
    "xca": ("timm.models.xcit.XCA", _timm_xca),
    "swin": ("timm.models.swin_transformer.WindowAttention", _timm_window),
    "linformer": ("linformer.LinformerSelfAttention (E = F shared)", _pypi_linformer),
    "performer": ("performer_pytorch.SelfAttention", _pypi_performer),
}
# How each reference is set up to do the same work as ours; recorded in the result's settings.
REFERENCE_SETUP: dict[str, str] = {
    "xca": "timm XCA, no LPI (ours runs with lpi=False)",
    "swin": "timm WindowAttention on the same windows, no shift",
    "linformer": "share_kv=False with proj_v tied to proj_k: separate W_K, W_V, one shared N->k projection, "
                 "k = min(N, proj_len), as ours",
    "performer": "nb_features = our num_features; no redraw (SelfAttention has no redraw of its own)",
}
