"""Attention modules, one per file, registered by name in ``ATTENTION``.

Every module keeps the contract in ``base``: ``cls(dim, num_heads, *, grid_size,
qkv_bias, attn_drop, proj_drop, **options)`` and ``forward(x (B, N, C), grid_size)``.
Importing this package registers all of them.
"""

from bench.models.attention.base import ATTENTION, TokenAttention
from bench.models.attention.fastformer import FastformerAttention
from bench.models.attention.linformer import LinformerAttention
from bench.models.attention.performer import PerformerAttention
from bench.models.attention.softmax import SoftmaxAttention
from bench.models.attention.swin import WindowAttention
from bench.models.attention.xca import XCAttention

__all__ = [
    "ATTENTION",
    "FastformerAttention",
    "LinformerAttention",
    "PerformerAttention",
    "SoftmaxAttention",
    "TokenAttention",
    "WindowAttention",
    "XCAttention",
]
