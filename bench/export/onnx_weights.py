"""Smaller ONNX weights for the in-browser demo: fp16 or block-wise int8 storage, fp32 compute.

Only the *storage* of large float initializers changes; every op still computes in fp32
(ONNX Runtime Web's WASM backend has few fp16 kernels). Each converted tensor is rebuilt
at session creation by a small initializer-only subgraph that ONNX Runtime constant-folds:

- ``fp16``: ``Cast(w16 → float)``;
- ``int8``: symmetric int8 in blocks of ``block`` weights along each output channel's
  reduction axis, one fp16 scale per block: ``Reshape(Cast(q) * Cast(scale))`` (plus a
  ``Transpose`` for ``MatMul``/``Gemm`` weights stored input-major). Small blocks keep the
  rounding error far below per-channel int8 on these models (measured: max probability
  change 0.005 instead of 0.013 on ``pyramid_softmax``).

``mixed_int8`` keeps the few tensors whose rounding moves the outputs most in fp16,
measured on calibration images, so that one sensitive layer (say a ResNet downsample conv)
does not cost the whole model its int8 storage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Collection

import numpy as np

log = logging.getLogger(__name__)

MIN_ELEMENTS = 1024  # smaller tensors (biases, norms) stay fp32: they weigh little
MIN_BLOCK = 8  # below this a block's fp16 scale would cost more than it saves: per-channel instead


def _onnx():  # noqa: ANN202 - optional package, imported lazily
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("the export stage needs onnx: pip install -r requirements.txt "
                          "(or pip install onnx onnxscript onnxruntime)") from exc
    return onnx


def float_initializers(model, min_elements: int = MIN_ELEMENTS) -> list[str]:  # noqa: ANN001
    """Names of the float32 initializers worth converting (at least 2-D and ``min_elements`` large)."""
    onnx = _onnx()
    graph_inputs = {i.name for i in model.graph.input}
    return [t.name for t in model.graph.initializer
            if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) >= 2
            and int(np.prod(t.dims)) >= min_elements and t.name not in graph_inputs]


def _input_major(model, name: str) -> bool:  # noqa: ANN001
    """True when every consumer reads ``name`` as a (K, N) matrix, output channels last."""
    uses = [(node, i) for node in model.graph.node for i, x in enumerate(node.input) if x == name]
    if not uses:
        return False
    for node, i in uses:
        if i != 1:
            return False
        if node.op_type == "Gemm":
            if any(a.name == "transB" and a.i == 1 for a in node.attribute):
                return False
        elif node.op_type != "MatMul":
            return False
    return True


@dataclass(frozen=True)
class _Int8:
    q: np.ndarray  # (O, R / b, b) int8
    scale: np.ndarray  # (O, R / b, 1) float16
    shape2d: tuple[int, int]
    transposed: bool
    shape: tuple[int, ...]


def quantize_int8(w: np.ndarray, block: int, transposed: bool) -> _Int8:
    """Symmetric int8 of ``w`` in blocks along the reduction axis, fp16 scales."""
    m = w.T if transposed else w.reshape(w.shape[0], -1)
    rows, cols = m.shape
    b = max((d for d in range(1, min(block, cols) + 1) if cols % d == 0), default=cols)
    if b < MIN_BLOCK:
        b = cols
    blocks = m.reshape(rows, cols // b, b).astype(np.float64)
    scale = (np.abs(blocks).max(axis=2, keepdims=True) / 127.0).astype(np.float16)
    used = scale.astype(np.float64)
    used[used == 0] = 1.0  # an all-zero block (or one below fp16's range) stores zeros
    q = np.clip(np.rint(blocks / used), -127, 127).astype(np.int8)
    return _Int8(q, scale, (rows, cols), transposed, tuple(w.shape))


class WeightConverter:
    """Builds fp32 / fp16 / int8 (or mixed) variants of one exported model."""

    def __init__(self, model, block: int = 32) -> None:  # noqa: ANN001 - onnx.ModelProto
        onnx = _onnx()
        from onnx import numpy_helper

        self.model = model
        self.block = block
        self.names = float_initializers(model)
        arrays = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer if t.name in self.names}
        self._int8 = {}
        for name, w in arrays.items():
            if not np.isfinite(w).all() or np.abs(w).max() / 127 > np.finfo(np.float16).max:
                continue  # cannot be stored in int8 with fp16 scales: stays fp32
            self._int8[name] = quantize_int8(w, block, _input_major(model, name) and w.ndim == 2)
        self._fp16 = {n: w.astype(np.float16) for n, w in arrays.items()
                      if np.isfinite(w.astype(np.float16)).all()}
        self._onnx = onnx

    @property
    def int8_names(self) -> list[str]:
        return [n for n in self.names if n in self._int8]

    def build(self, int8: Collection[str] = frozenset(), fp16: Collection[str] = frozenset()):  # noqa: ANN201
        """A copy of the model with the ``int8`` tensors in int8, ``fp16`` ones in fp16, the rest fp32."""
        onnx = self._onnx
        from onnx import helper, numpy_helper

        out = onnx.ModelProto()
        out.CopyFrom(self.model)
        graph = out.graph
        keep, new_inits, nodes = [], [], []
        for t in graph.initializer:
            name = t.name
            if name in int8 and name in self._int8:
                e = self._int8[name]
                q, s = f"{name}__int8", f"{name}__scale"
                new_inits += [numpy_helper.from_array(e.q, q), numpy_helper.from_array(e.scale, s),
                              numpy_helper.from_array(np.array(e.shape2d, dtype=np.int64), f"{name}__shape2d")]
                flat = f"{name}__2d" if e.transposed or len(e.shape) != 2 else name
                nodes += [helper.make_node("Cast", [q], [f"{name}__qf"], to=onnx.TensorProto.FLOAT),
                          helper.make_node("Cast", [s], [f"{name}__sf"], to=onnx.TensorProto.FLOAT),
                          helper.make_node("Mul", [f"{name}__qf", f"{name}__sf"], [f"{name}__deq"]),
                          helper.make_node("Reshape", [f"{name}__deq", f"{name}__shape2d"], [flat])]
                if e.transposed:
                    nodes.append(helper.make_node("Transpose", [flat], [name], perm=[1, 0]))
                elif len(e.shape) != 2:
                    new_inits.append(numpy_helper.from_array(np.array(e.shape, dtype=np.int64), f"{name}__shape"))
                    nodes.append(helper.make_node("Reshape", [flat, f"{name}__shape"], [name]))
            elif name in fp16 and name in self._fp16:
                h = f"{name}__fp16"
                new_inits.append(numpy_helper.from_array(self._fp16[name], h))
                nodes.append(helper.make_node("Cast", [h], [name], to=onnx.TensorProto.FLOAT))
            else:
                keep.append(t)
        del graph.initializer[:]
        graph.initializer.extend(keep + new_inits)
        original = list(graph.node)
        del graph.node[:]
        graph.node.extend(nodes + original)  # the rebuilt weights come first: topological order holds
        return out

    def fp16(self):  # noqa: ANN201
        return self.build(fp16=set(self._fp16))

    def mixed_int8(self, max_prob_diff: Callable[[bytes], float], target: float,
                   max_rounds: int = 12) -> tuple[object, dict]:
        """Int8 everywhere, except the tensors whose rounding moves the probabilities most (fp16).

        ``max_prob_diff(model_bytes)`` scores a variant on calibration images. Tensors are kept
        in fp16 in order of their own effect until the score is at most ``target``, for at most
        ``max_rounds`` extra evaluations after the per-tensor ones.
        """
        names = self.int8_names
        everything = set(names)
        model = self.build(int8=everything)
        score = max_prob_diff(model.SerializeToString())
        kept: list[str] = []
        if score > target and names:
            alone = {n: max_prob_diff(self.build(int8={n}).SerializeToString()) for n in names}
            ranked = sorted(names, key=lambda n: (-alone[n], n))
            for name in ranked[:max_rounds]:
                kept.append(name)
                model = self.build(int8=everything - set(kept), fp16=set(kept))
                score = max_prob_diff(model.SerializeToString())
                if score <= target:
                    break
        int8_elements = sum(self._int8[n].q.size for n in names if n not in kept)
        info = {"int8_tensors": len(names) - len(kept), "fp16_tensors": len(kept), "fp16_tensor_names": kept,
                "int8_weights": int(int8_elements), "calibration_max_prob_diff": round(float(score), 6)}
        log.debug("int8 with %d tensor(s) kept in fp16: calibration max prob diff %.4f", len(kept), score)
        return model, info
