"""Words the site says about models and classes that no result file records.

The site cannot import ``bench.models`` (torch), so what differs between the contenders,
what is known to hold one back, and how the built-in generator draws each class are
written here once.
"""

from __future__ import annotations

# What differs between the contenders; the site cannot import bench.models (torch).
ATTENTION_MECHANISMS = {
    "pyramid_softmax": "global softmax attention (fused scaled dot-product), cost O(N²)",
    "pyramid_linformer": "Linformer: keys and values projected from N to k tokens, cost O(N·k)",
    "pyramid_performer": "Performer FAVOR+: positive orthogonal random features, cost O(N)",
    "pyramid_fastformer": "Fastformer: additive attention through a global query and key, cost O(N)",
    "pyramid_xca": "XCiT cross-covariance attention: a d×d channel map, cost O(N), with local patch interaction (LPI)",
    "pyramid_xca_nolpi": "XCiT cross-covariance attention without LPI (ablation): no token mixing inside blocks",
    "pyramid_swin": "Swin: shifted-window attention with relative position bias, cost O(N·w²)",
    "vit": "columnar ViT with a CLS token: global softmax attention (timm)",
    "resnet50": "none: convolutional baseline (timm)",
}

# What is known to hold a model back, shown where it does not beat the pixel baseline.
MODEL_CAVEATS = {
    "vit": "A columnar ViT has no convolutional or multi-scale inductive bias: it must learn locality "
           "from the data alone, which takes far more images or steps than this suite gives. At the quick "
           "scale, matched to the pyramids' parameters, its 8-pixel patches form an 8×8 token grid, a quarter "
           "of the tokens the pyramids' first stage sees, so a lesion a few pixels wide is a small part of one "
           "token. The budget study shows whether it was still learning when training stopped.",
}

BUILTIN_GENERATOR = "medvit-synthetic-brain"
# How bench.data.samples draws each class (its ``_lesion_*`` functions), for the dataset
# page; a dataset.json that records "rules" overrides these.
SYNTHETIC_RULES = {
    "acute_infarct": "a bright cortical wedge in one hemisphere (a vascular territory): base on the brain "
                     "surface, apex inward, sulci effaced",
    "arteriovenous_anomaly": "a tangle of dark serpentine flow voids (the nidus) with one draining vein "
                             "running to the cortex",
    "chronic_infarct": "a CSF-dark cortical wedge (encephalomalacia) with the lateral ventricle on that side "
                       "enlarged",
    "edema": "a large, blurred bright region confined to the white matter, fingering between the gyri",
    "extra": "a lens-shaped bright mass against the inner table of the skull, indenting the brain behind a "
             "thin CSF cleft",
    "focal_flair_hyper": "one small bright focus just beneath the cortex",
    "intra": "a mass inside the brain with a bright rim, a dark necrotic core and a faint halo of oedema",
    "normal": "the shared anatomy only, with the same nuisances as every other class",
    "pituitary_lesion": "a homogeneous bright blob in the midline, rimmed by CSF",
    "white_matter_changes": "five to twelve small bright foci in the white matter around the ventricles",
}

# Attention-benchmark module → (model, time per layer in N tokens and C channels, in LaTeX; what the symbols are)
COMPLEXITY = {
    "softmax": ("pyramid_softmax", r"O(N^2 C)", "every token attends to every token"),
    "linformer": ("pyramid_linformer", r"O(N k C)", "k projected keys and values; linear in N for fixed k"),
    "performer": ("pyramid_performer", r"O(N m C)", "m random features; linear in N"),
    "fastformer": ("pyramid_fastformer", r"O(N C)", "element-wise products with one global query and key"),
    "xca": ("pyramid_xca", r"O(N C^2 / h)", "a (C/h)×(C/h) channel map per head; linear in N"),
    "swin": ("pyramid_swin", r"O(N w^2 C)", "w×w windows; linear in N for a fixed window"),
}
