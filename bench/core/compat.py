"""Make torchvision importable beside a CPU-only torch.

The only torchvision wheel that matches ``torch==2.13.0+cpu`` ships compiled ops built
for another torch, so ``import torchvision`` (and therefore ``import timm``) fails while
registering fake kernels for ``torchvision::nms``. When, and only when, that happens we
declare the missing operator schemas so the import completes. The ops themselves are
never called: images go through PIL.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_library = None  # keeps the torch.library.Library alive for the process


def _register_missing_schemas() -> list[str]:
    import torch

    global _library
    if _library is None:
        _library = torch.library.Library("torchvision", "FRAGMENT")  # noqa: TOR901
    added = []
    for name, schema in _SCHEMAS.items():
        try:
            torch._C._dispatch_find_schema_or_throw(f"torchvision::{name}", "")
        except RuntimeError:
            _library.define(schema)
            added.append(name)
    return added


def ensure_torchvision() -> None:
    """Import torchvision, declaring its op schemas first if its native library failed."""
    if "torchvision" in sys.modules and hasattr(sys.modules["torchvision"], "__version__"):
        return
    try:
        import torchvision  # noqa: F401
        return
    except (RuntimeError, OSError) as exc:
        first_error = exc
    for mod in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[mod]
    added = _register_missing_schemas()
    log.debug("torchvision native ops unavailable (%s); declared schemas %s", first_error, added)
    import torchvision  # noqa: F401


def import_timm():  # noqa: ANN201 - returns the timm module
    """``import timm`` with the torchvision fix applied when needed."""
    ensure_torchvision()
    import timm

    return timm
