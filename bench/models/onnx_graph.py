"""A model as an ONNX graph, and an ONNX Runtime session on the CPU.

Shared by the export stage (the browser demo's files) and the profile stage (ONNX Runtime's
latency beside PyTorch's), with ``parity``: how far a converted model's outputs move. ``onnx`` and ``onnxruntime`` are imported when first needed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

log = logging.getLogger(__name__)

INPUT_NAME, OUTPUT_NAME = "image", "logits"


def ort():  # noqa: ANN201 - optional package, imported lazily
    """The ``onnxruntime`` module, or an ImportError saying how to install it."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError("ONNX Runtime is needed here: pip install -r requirements.txt") from exc
    return onnxruntime


def ort_session(model_bytes: bytes, threads: int):  # noqa: ANN201 - onnxruntime.InferenceSession
    """A CPU session with ``threads`` intra-op threads and one inter-op thread."""
    runtime = ort()
    options = runtime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return runtime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def parity(reference: np.ndarray, logits: np.ndarray) -> dict[str, Any]:
    """Logits of a converted model (ONNX, int8) against its reference on the same images."""
    agree = reference.argmax(axis=1) == logits.argmax(axis=1)
    return {"images": int(len(reference)), "top1_agreement": float(agree.mean()), "disagreements": int((~agree).sum()),
            "max_abs_logit_diff": float(np.abs(reference.astype(np.float64) - logits).max()),
            "max_prob_diff": float(np.abs(softmax(reference) - softmax(logits)).max())}


def strip_metadata(model) -> None:  # noqa: ANN001 - onnx.ModelProto
    """Drop what the exporter adds for debugging (per-node stack traces with local paths, value
    shapes, doc strings): a fifth of a small model's bytes, and it differs between checkouts."""
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    del model.graph.value_info[:]
    model.graph.doc_string = ""
    model.doc_string = ""


def use_unfused_attention(model: torch.nn.Module) -> list[str]:
    """Switch every attention with a fused path to its explicit one; returns the classes switched."""
    switched = set()
    for module in model.modules():
        for flag in ("fused", "fused_attn"):  # ours, and timm's Attention
            if isinstance(getattr(module, flag, None), bool) and getattr(module, flag):
                setattr(module, flag, False)
                switched.add(type(module).__name__)
    return sorted(switched)


@contextlib.contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Raise these loggers to WARNING for a while: their INFO lines narrate every graph pass."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(max(lg.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_onnx(model: torch.nn.Module, example: torch.Tensor, opset: int) -> Any:
    """The model as an ``onnx.ModelProto`` with a dynamic batch, exporter debug data stripped."""
    import tempfile

    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        chatter = io.StringIO()
        with contextlib.redirect_stdout(chatter), _quiet("onnx_ir", "onnxscript"), warnings.catch_warnings():
            # the exporter prints its progress, and torch.export warns about its own internals
            warnings.filterwarnings("ignore", category=FutureWarning, message=r".*treespec.*")
            torch.onnx.export(model, (example,), str(path), dynamo=True, opset_version=opset,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], external_data=False,
                              dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},))
        log.debug("torch.onnx: %s", chatter.getvalue().strip())
        proto = onnx.load(str(path))
    strip_metadata(proto)
    onnx.checker.check_model(proto)
    return proto
