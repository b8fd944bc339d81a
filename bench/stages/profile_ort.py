"""ONNX Runtime's CPU latency of a model beside PyTorch's, in float32 and int8.

The model is exported once (``bench.models.onnx_graph``, the export stage's exporter) and run
by ONNX Runtime's CPU execution provider. int8 is ONNX Runtime's **dynamic quantisation**
(``onnxruntime.quantization.quantize_dynamic``) of the MatMul and Gemm nodes: int8 weights
(per tensor, signed), activations quantised at run time; convolutions stay float32, so a
convolutional model gains little. How many nodes were quantised is recorded, and so is the
int8 model's agreement with float32 on the same inputs.

The sessions are timed beside PyTorch's configurations in interleaved rounds
(``bench.stages.rounds``): raw samples kept, percentiles reported. Peak memory spans each round's
warm-up as well as its timed runs, since ONNX Runtime's arena grows on the first runs and is
then reused.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
from torch import nn

from bench.models.onnx_graph import INPUT_NAME, export_onnx, ort_session, parity
from bench.stages.profile import example_input
from bench.stages.rounds import Timer

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


def agreement(fp32: Any, int8: Any, image_size: int, in_chans: int) -> dict[str, Any]:
    """int8 against float32 on the same seeded inputs: top-1 agreement and the largest differences."""
    x = example_input(AGREEMENT_INPUTS, in_chans, image_size, seed=1).numpy()
    a, b = (np.asarray(s.run(None, {INPUT_NAME: x})[0], dtype=np.float64) for s in (fp32, int8))
    moved = parity(a, b)
    return {"inputs": AGREEMENT_INPUTS, "input_kind": "seeded standard-normal images",
            **{k: moved[k] for k in ("top1_agreement", "max_abs_logit_diff", "max_prob_diff")}}


def onnxruntime_timers(model: nn.Module, *, image_size: int, in_chans: int,
                       configurations: list[tuple[int, int, int]]) -> tuple[list[Timer], dict[str, Any]]:
    """Timers of ONNX Runtime float32 and int8 for each (threads, batch size, timed runs) of
    ``configurations`` (``bench.stages.rounds`` times them beside PyTorch's), with how the int8
    graph was made and how far it moves the outputs."""
    import onnxruntime

    model = model.eval().cpu()
    fp32 = export_onnx(model, example_input(2, in_chans, image_size), OPSET).SerializeToString()
    int8 = quantise_dynamic(fp32)
    graphs = {"float32": fp32, "int8": int8}
    sessions = {(dtype, count): ort_session(graph, count) for dtype, graph in graphs.items()
                for count in sorted({c for c, _, _ in configurations})}
    timers = []
    for count, batch, runs in configurations:
        x = example_input(batch, in_chans, image_size).numpy()
        for dtype in graphs:
            session = sessions[(dtype, count)]
            timers.append(Timer({"runtime": "onnxruntime", "device": "cpu", "dtype": dtype, "batch_size": batch,
                                 "threads": count, "image_size": image_size},
                                lambda s=session, x=x: s.run(None, {INPUT_NAME: x}), runs))
    most = max(c for c, _, _ in configurations)
    info = {
        "version": onnxruntime.__version__, "opset": OPSET, "provider": "CPUExecutionProvider",
        "int8": {"method": "dynamic quantisation (onnxruntime.quantization.quantize_dynamic), int8 weights, "
                           "activations quantised at run time", "op_types": list(QUANTISED_OPS),
                 "nodes_fp32": node_counts(fp32), "nodes_int8": node_counts(int8),
                 "agreement_with_fp32": agreement(sessions[("float32", most)], sessions[("int8", most)],
                                                  image_size, in_chans)},
        "model_mb": {"float32": round(len(fp32) / 1e6, 3), "int8": round(len(int8) / 1e6, 3)},
    }
    return timers, info
