"""ONNX Runtime's CPU latency of a model beside PyTorch's, in float32 and int8.

The model is exported once (``bench.models.onnx_graph``, the export stage's exporter) and run
by ONNX Runtime's CPU execution provider. int8 is ONNX Runtime's **dynamic quantisation**
(``onnxruntime.quantization.quantize_dynamic``) of the MatMul and Gemm nodes: int8 weights
(per tensor, signed), activations quantised at run time; convolutions stay float32, so a
convolutional model gains little. How many nodes were quantised is recorded, and so is the
int8 model's agreement with float32 on the same inputs.

Timing follows the PyTorch recipe of ``bench.stages.profile``: warm-up runs, then every run
timed on its own, raw samples kept, percentiles reported. Peak memory spans the warm-up as well
as the timed runs, since ONNX Runtime's arena grows on the first runs and is then reused.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn

from bench.models.onnx_graph import INPUT_NAME, export_onnx, ort_session
from bench.stages.timing import summarize_ms, time_runs, track_peak_memory

log = logging.getLogger(__name__)

OPSET = 18
QUANTISED_OPS = ("MatMul", "Gemm")
AGREEMENT_INPUTS = 32  # seeded inputs on which int8 is compared with float32


@contextlib.contextmanager
def _root_logging(level: int) -> Iterator[None]:
    root = logging.getLogger()
    before = root.level
    root.setLevel(level)
    try:
        yield
    finally:
        root.setLevel(before)


def quantise_dynamic(fp32: bytes) -> bytes:
    """The float32 graph with its MatMul and Gemm weights quantised to int8 (see the module docstring)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(fp32)
        # the quantiser logs a generic advice to the root logger on every call
        with contextlib.redirect_stdout(io.StringIO()), _root_logging(logging.ERROR):
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8, op_types_to_quantize=list(QUANTISED_OPS))
        return dst.read_bytes()


def node_counts(model_bytes: bytes) -> dict[str, int]:
    """How many nodes of each type the graph has (only the types that tell what was quantised)."""
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load_from_string(model_bytes).graph.node:
        if node.op_type in ("MatMul", "Gemm", "Conv", "MatMulInteger", "DynamicQuantizeLinear", "ConvInteger"):
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def _inputs(batch_size: int, in_chans: int, image_size: int, seed: int = 0) -> np.ndarray:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch_size, in_chans, image_size, image_size, generator=generator).numpy()


def ort_latency(session: Any, *, batch_size: int, image_size: int, in_chans: int, threads: int, dtype: str,
                warmup: int, runs: int) -> dict[str, Any]:
    """One ``latency`` entry (runtime ``onnxruntime``) of a session on seeded random input."""
    x = _inputs(batch_size, in_chans, image_size)
    # the peak covers the warm-up too: ONNX Runtime grows its memory arena on the first runs and
    # then reuses it, where PyTorch allocates and frees its activations on every run
    with track_peak_memory("cpu") as peak:
        for _ in range(warmup):
            session.run(None, {INPUT_NAME: x})
        samples = time_runs(lambda: session.run(None, {INPUT_NAME: x}), runs, "cpu")
    stats = summarize_ms(samples)
    return {
        "runtime": "onnxruntime", "device": "cpu", "dtype": dtype, "batch_size": batch_size, "threads": threads,
        "image_size": image_size, "samples_ms": [round(s, 4) for s in samples], **stats,
        "throughput_images_per_s": batch_size / (stats["mean_ms"] / 1e3),
        "peak_memory_mb": None if peak.mb is None else round(peak.mb, 2),
    }


def agreement(fp32: Any, int8: Any, image_size: int, in_chans: int) -> dict[str, Any]:
    """int8 against float32 on the same seeded inputs: top-1 agreement and the largest differences."""
    x = _inputs(AGREEMENT_INPUTS, in_chans, image_size, seed=1)
    a, b = (np.asarray(s.run(None, {INPUT_NAME: x})[0], dtype=np.float64) for s in (fp32, int8))
    pa, pb = (np.exp(z - z.max(axis=1, keepdims=True)) for z in (a, b))
    pa, pb = pa / pa.sum(axis=1, keepdims=True), pb / pb.sum(axis=1, keepdims=True)
    return {"inputs": AGREEMENT_INPUTS, "input_kind": "seeded standard-normal images",
            "top1_agreement": float((a.argmax(axis=1) == b.argmax(axis=1)).mean()),
            "max_abs_logit_diff": float(np.abs(a - b).max()), "max_prob_diff": float(np.abs(pa - pb).max())}


def onnxruntime_profile(model: nn.Module, *, image_size: int, in_chans: int, batch_sizes: tuple[int, ...],
                        threads: tuple[int, ...], warmup: int, runs: int, throughput_runs: int | None = None
                        ) -> dict[str, Any]:
    """Latency entries of ONNX Runtime float32 and int8, as PyTorch's are measured: batch 1 at
    every thread count, larger batches at the most threads (``throughput_runs`` timed runs);
    with how the int8 graph was made and how far it moves the outputs."""
    import onnxruntime

    model = model.eval().cpu()
    example = torch.from_numpy(_inputs(2, in_chans, image_size))
    fp32 = export_onnx(model, example, OPSET).SerializeToString()
    int8 = quantise_dynamic(fp32)
    latency = []
    for count in threads:
        sessions = {"float32": ort_session(fp32, count), "int8": ort_session(int8, count)}
        for dtype, session in sessions.items():
            for batch in batch_sizes:
                if batch > 1 and count != max(threads):
                    continue
                latency.append(ort_latency(session, batch_size=batch, image_size=image_size, in_chans=in_chans,
                                           threads=count, dtype=dtype, warmup=warmup,
                                           runs=runs if batch == 1 else (throughput_runs or runs)))
    return {
        "latency": latency,
        "onnxruntime": {
            "version": onnxruntime.__version__, "opset": OPSET, "provider": "CPUExecutionProvider",
            "int8": {"method": "dynamic quantisation (onnxruntime.quantization.quantize_dynamic), int8 weights, "
                               "activations quantised at run time", "op_types": list(QUANTISED_OPS),
                     "nodes_fp32": node_counts(fp32), "nodes_int8": node_counts(int8),
                     "agreement_with_fp32": agreement(ort_session(fp32, max(threads)), ort_session(int8, max(threads)),
                                                      image_size, in_chans)},
            "model_mb": {"float32": round(len(fp32) / 1e6, 3), "int8": round(len(int8) / 1e6, 3)},
        },
    }
