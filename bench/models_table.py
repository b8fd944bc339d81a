"""``medbench models``: parameters and GMACs of every model at one scale, as a Markdown table."""

from __future__ import annotations

import logging

from tqdm import tqdm

log = logging.getLogger(__name__)


def models_table(scale: str, names: list[str] | None = None, num_classes: int = 10, in_chans: int = 1) -> str:
    """Measured on the model actually built (``num_classes`` head, ``in_chans`` input)."""
    from bench.flops import count_flops
    from bench.models import create_model, default_image_size, list_models

    size = default_image_size(scale)
    rows = [f"| model | params | GMACs @ {size} px | FLOPs (G) | torch / fvcore GMACs |", "|---|---:|---:|---:|---:|"]
    for name in tqdm(names or list_models(), desc=f"{scale} models", disable=None):
        model = create_model(name, scale, num_classes=num_classes, in_chans=in_chans).eval()
        flops = count_flops(model, (1, in_chans, size, size))
        params = sum(p.numel() for p in model.parameters())
        rows.append(f"| `{name}` | {params / 1e6:.2f} M | {flops.gmacs:.2f} | {flops.gflops:.2f} | "
                    f"{flops.torch_gmacs:.3f} / {flops.fvcore_gmacs:.3f} |")
    return "\n".join(rows) + "\n"
