"""Models: the shared pyramid with swappable attention, a ViT, a ResNet-50, any timm model.

``create_model(name, scale)`` is the entry point; ``list_models()`` names the registry.
Every model has ``feature_map(x)`` (B, C, H, W), ``attention_maps(x)`` (a list of
(B, heads, N, N) maps per block, or None) and ``has_token_attention``.

``flops`` counts MACs with two counters, ``flops_formulas`` holds the closed forms that
attention is checked against, and ``table`` is what ``medbench models`` prints.
"""

from bench.models.zoo import MODELS, SCALES, create_model, default_image_size, list_models

__all__ = ["MODELS", "SCALES", "create_model", "default_image_size", "list_models"]
