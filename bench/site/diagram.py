"""The shared pyramid backbone, drawn as an inline SVG from what the models recorded.

Drawn by the site itself (no Mermaid, no network): one box per stage with its width, token
grid and block count, from a pyramid model's recorded ``attention_stages``. The attention
box is the only part that differs between the variants.
"""

from __future__ import annotations

import html

from bench.site.pages import ModelPage, StageRow

BOX_W, BOX_H, GAP, TOP = 150, 118, 34, 40
COLOURS = {"fixed": "#9fa8da", "attention": "#ffb74d", "text": "currentColor"}


def _box(x: int, y: int, w: int, h: int, fill: str, lines: list[str]) -> str:
    text = "".join(
        f'<text x="{x + w // 2}" y="{y + 22 + 18 * i}" text-anchor="middle" font-size="{14 if i == 0 else 12}"'
        f' fill="#212121">{html.escape(line)}</text>'
        for i, line in enumerate(lines)
    )
    return f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8" fill="{fill}" stroke="#5c6bc0"/>{text}'


def _arrow(x1: int, x2: int, y: int) -> str:
    return (f'<line x1="{x1}" y1="{y}" x2="{x2 - 6}" y2="{y}" stroke="#757575" stroke-width="2"/>'
            f'<polygon points="{x2 - 8},{y - 5} {x2},{y} {x2 - 8},{y + 5}" fill="#757575"/>')


def backbone_svg(stages: tuple[StageRow, ...], scale: str, image_size: int | None) -> str:
    """Patch embedding → four stages (each: blocks of attention + MLP) → pooled head."""
    boxes = [("fixed", ["Input", f"{image_size} px" if image_size else "image", "patch embedding"])]
    for stage in stages:
        boxes.append(("attention", [f"Stage {stage.stage}", f"{stage.blocks} × [attention + MLP]",
                                    f"width {stage.dim}, {stage.heads} heads", f"tokens {stage.grid}"]))
    boxes.append(("fixed", ["Head", "norm, mean pool", "linear → classes"]))
    width = len(boxes) * (BOX_W + GAP) - GAP + 20
    parts = []
    y = TOP
    for i, (kind, lines) in enumerate(boxes):
        x = 10 + i * (BOX_W + GAP)
        parts.append(_box(x, y, BOX_W, BOX_H, COLOURS[kind], lines))
        if i:
            parts.append(_arrow(x - GAP, x, y + BOX_H // 2))
    caption = (f"The shared pyramid backbone at the {html.escape(scale)} scale. Orange: the stages whose "
               "attention module is the only thing that differs between the variants; 2×2 patch merging "
               "halves the token grid and doubles the width between stages.")
    return (f'<figure class="medbench-diagram" style="width: 100%; max-width: 64rem"><svg xmlns="http://www.w3.org/2000/svg" role="img" '
            f'viewBox="0 0 {width} {TOP + BOX_H + 20}" width="100%" aria-labelledby="backbone-title">'
            f'<title id="backbone-title">{caption}</title>'
            f'<text x="10" y="22" font-size="14" fill="currentColor">patch embedding → 4 stages → head</text>'
            f'{"".join(parts)}</svg><figcaption>{caption}</figcaption></figure>')


def build_diagrams(pages: tuple[ModelPage, ...], reference: str = "pyramid_softmax") -> dict[str, str]:
    """``{"backbone-<scale>": svg}`` for every scale at which the reference pyramid recorded its stages."""
    page = next((p for p in pages if p.name == reference), None)
    if page is None:
        page = next((p for p in pages if p.name.startswith("pyramid_") and p.stages), None)
    if page is None:
        return {}
    sizes = {m.scale: m.image_size for m in page.scales}
    return {f"backbone-{scale}": backbone_svg(stages, scale, sizes.get(scale)) for scale, stages in page.stages}
