"""``medbench models``: parameters and GMACs of every model at one scale, as a Markdown table."""

from __future__ import annotations

import logging

from tqdm import tqdm

log = logging.getLogger(__name__)


def models_table(scale: str, names: list[str] | None = None, num_classes: int = 10, in_chans: int = 1) -> str:
    """Measured on the model actually built (``num_classes`` head, ``in_chans`` input)."""
    from bench.models import create_model, default_image_size, list_models
    from bench.models.flops import count_flops

    size = default_image_size(scale)
    measured = {}
    for name in tqdm(names or list_models(), desc=f"{scale} models", disable=None):
        model = create_model(name, scale, num_classes=num_classes, in_chans=in_chans).eval()
        measured[name] = (sum(p.numel() for p in model.parameters()), count_flops(model, (1, in_chans, size, size)))
    reference = measured.get("pyramid_softmax", (None,))[0]
    rows = [f"| model | params | vs pyramid_softmax | GMACs @ {size} px | GFLOPs | torch / fvcore GMACs |",
            "|---|---:|---:|---:|---:|---:|"]
    for name, (params, flops) in measured.items():
        delta = f"{100 * (params - reference) / reference:+.2f}%" if reference else "n/a"
        rows.append(f"| `{name}` | {params:,} | {delta} | {flops.gmacs:.3f} | {flops.gflops:.3f} | "
                    f"{flops.torch_gmacs:.3f} / {flops.fvcore_gmacs:.3f} |")
    return "\n".join(rows) + "\n"
