"""torchvision imports beside CPU torch, and timm with it."""

from __future__ import annotations

import subprocess
import sys


def test_timm_imports_through_compat_in_a_fresh_interpreter():
    code = (
        "from bench.core.compat import import_timm; timm = import_timm(); "
        "m = timm.create_model('resnet18', pretrained=False, num_classes=10, in_chans=1).eval(); "
        "import torch; print(tuple(m(torch.zeros(1, 1, 32, 32)).shape))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(1, 10)"


def test_schemas_are_declared_only_when_missing():
    from bench.core import compat

    compat.ensure_torchvision()
    import torch

    for name in ("nms", "qnms"):
        torch._C._dispatch_find_schema_or_throw(f"torchvision::{name}", "")
    assert compat._register_missing_schemas() == []  # already present: nothing added twice
