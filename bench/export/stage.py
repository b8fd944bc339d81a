"""The export stage: each model's kept checkpoint as ONNX for the site's in-browser demo.

For each model (the checkpoint of the suite's first seed) it:

- exports the model with ``torch.onnx.export`` (the dynamo exporter, opset pinned) at a
  dynamic batch size. Modules with a fused-attention switch run their explicit
  softmax(QKᵀ/√d)V path, and the exporter decomposes any remaining
  ``scaled_dot_product_attention`` into MatMul/Softmax, so no model needs a fused
  Attention op. Performer is exported in eval mode: its random features are fixed
  initializers (no redraw outside training);
- measures parity with PyTorch in Python ``onnxruntime`` on the whole test split and on the
  gallery's sample images (one per class, seeded as the explain stage seeds its gallery);
- tries smaller weights (block-wise int8, then fp16; compute stays fp32) and ships the
  smallest whose parity on the sample images holds: top-1 agreement 100% and every
  probability within ``prob_limit`` of PyTorch's. fp32 must match to ``fp32_logit_limit``
  with 100% top-1 agreement on the whole test split, or the export is recorded as failed;
- writes ``<artifacts>/export/<suite>/<model>.onnx`` and its gzip (what the site ships), the
  sample images as PNG under ``samples/``, and one ``export`` result per model.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from bench.core import env
from bench.core.config import SuiteConfig
from bench.data.datasets import LoadedDataset
from bench.data.loading import load_image
from bench.export.onnx_weights import WeightConverter
from bench.models.onnx_graph import (
    INPUT_NAME, OUTPUT_NAME, export_onnx, ort, ort_session, parity, softmax, use_unfused_attention,
)
from bench.results.records import (
    RunPaths, dataset_info, display_path, error_record, fingerprint, is_done, model_info, payload,
)
from bench.results.store import atomic_write, exclusive_lock, load_result, result_path, safe_name, write_result

log = logging.getLogger(__name__)

EXPORT_FORMAT = 1  # bump when the exported graph or the record changes meaning
MAX_SAMPLE_SIDE = 256  # sample images larger than this are shipped at the model's input size
PREPROCESSING = {
    "grey": "PIL convert('L'): L = (19595 R + 38470 G + 7471 B + 32768) >> 16, ITU-R 601-2 luma",
    "scale": "8-bit / 255 (16-bit / 65535)",
    "pad": "centred to a square with zeros",
    "resize": "bilinear",
    "resize_detail": "PIL Image.resize BILINEAR on float32 pixels: a triangle filter widened by the "
                     "downscale factor (antialiased), horizontal pass then vertical",
    "normalise": "(pixel - mean) / std, the training split's statistics",
    "layout": "NCHW float32, grey repeated to every input channel",
}


@dataclasses.dataclass(frozen=True)
class ExportSettings:
    """How models are exported and when smaller weights may replace fp32."""

    opset: int = 18
    weights: tuple[str, ...] = ("int8", "fp16", "fp32")  # tried in this order; fp32 always last
    prob_limit: float = 0.01
    fp32_logit_limit: float = 1e-3
    int8_block: int = 32
    calibration_images: int = 128  # validation images that pick the tensors int8 keeps in fp16
    calibration_target: float = 0.004
    batch_size: int = 256

    def __post_init__(self) -> None:
        if not self.weights or self.weights[-1] != "fp32" or set(self.weights) - {"int8", "fp16", "fp32"}:
            raise ValueError("export weights must be a subset of int8, fp16, fp32 ending with fp32, "
                             f"got {self.weights}")


class ExportError(RuntimeError):
    """The ONNX model does not reproduce PyTorch's outputs."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sample_indices(labels: Sequence[int], num_classes: int, seed: int) -> list[int]:
    """One test index per class: the first of that class in a seeded permutation (the explain
    stage's gallery draws the same permutation, so these are its first sample per class)."""
    labels = np.asarray(labels)
    order = np.random.default_rng(seed).permutation(len(labels))
    firsts = {}
    for i in order:
        firsts.setdefault(int(labels[i]), int(i))
    return [firsts[c] for c in range(num_classes) if c in firsts]


def onnx_logits(model_bytes: bytes, images: np.ndarray, batch_size: int) -> np.ndarray:
    session = ort_session(model_bytes, torch.get_num_threads())
    return np.concatenate([session.run(None, {INPUT_NAME: images[i:i + batch_size]})[0]
                           for i in range(0, len(images), batch_size)])


@torch.no_grad()
def torch_logits(model: torch.nn.Module, images: torch.Tensor, batch_size: int) -> np.ndarray:
    return torch.cat([model(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]).numpy()


def write_samples(data: LoadedDataset, indices: list[int], folder: Path, artifacts: Path,
                  image_size: int) -> list[dict[str, Any]]:
    """Each sample test image as a grey PNG, at its source size (the page resizes it as the engine
    does) unless that is large; returns their entries with the normalised model input."""
    from bench.data.readers import read_image

    test = data.splits["test"]
    samples = []
    for i in indices:
        frame = test.frames[i] if test.frames and test.frames[i] is not None else "middle"
        pixels = read_image(test.paths[i], frame=frame)
        if max(pixels.shape) > MAX_SAMPLE_SIDE:
            pixels = load_image(Path(test.paths[i]), image_size, frame)
        png = io.BytesIO()
        Image.fromarray(np.rint(np.clip(pixels, 0, 1) * 255).astype(np.uint8)).save(png, format="PNG")
        path = folder / f"{i:05d}.png"
        atomic_write(path, lambda f, b=png.getvalue(): f.write(b), binary=True)
        # the engine's own preprocessing of the file the page ships, in float32 as load_dataset does
        shipped = (load_image(path, image_size) - np.float32(data.mean)) / np.float32(data.std)
        x = torch.from_numpy(shipped.astype(np.float32))[None, None]
        x = x.repeat(1, test.images.shape[1], 1, 1)
        label = int(test.labels[i])
        samples.append({"index": i, "label": data.class_names[label], "label_index": label,
                        "file": path.relative_to(artifacts).as_posix(), "input": x,
                        "input_max_abs_diff": float((x - test.images[i:i + 1]).abs().max())})
    return samples


def _variant(weights: str, converter: WeightConverter, settings: ExportSettings,
             calibrate: Any) -> tuple[Any, dict[str, Any] | None]:
    if weights == "fp32":
        return converter.model, None
    if weights == "fp16":
        return converter.fp16(), {"method": "fp16 storage, Cast to float32 at load", "tensors": len(converter.names)}
    model, info = converter.mixed_int8(calibrate, settings.calibration_target)
    return model, {"method": "symmetric int8 in blocks along the reduction axis, fp16 scales, dequantised to "
                             "float32 at load; the tensors that move the calibration outputs most stay fp16",
                   "block": settings.int8_block, "calibration": {"split": "val", "images": settings.calibration_images,
                                                                 "target_max_prob_diff": settings.calibration_target},
                   **info}


def _with_metadata(model: Any, props: dict[str, str]) -> bytes:
    del model.metadata_props[:]
    for key, value in sorted(props.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    return model.SerializeToString()


def export_metrics(suite: SuiteConfig, name: str, data: LoadedDataset, checkpoint: Path, samples: list[dict[str, Any]],
                   folder: Path, artifacts: Path, settings: ExportSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model info, metrics) of one model's export; writes its ONNX files."""
    import onnx
    import onnxscript

    from bench.models import create_model
    from bench.stages.checkpoint import load_checkpoint

    start = time.perf_counter()
    size, chans = suite.data.image_size, suite.data.in_chans
    ckpt = load_checkpoint(checkpoint)
    num_classes = len(ckpt["class_names"])
    model = create_model(name, suite.scale, num_classes=num_classes, in_chans=chans, image_size=size)
    model.load_state_dict(ckpt["best_state"] or ckpt["model"])
    model.eval()  # Performer: no feature redraw outside training, so its features are fixed initializers
    test = data.splits["test"]
    # the references come from the model as the engine runs it (fused attention where it has it)
    reference = torch_logits(model, test.images, settings.batch_size)
    sample_inputs = torch.cat([s["input"] for s in samples])
    sample_reference = torch_logits(model, sample_inputs, settings.batch_size)
    calibration = data.splits["val"].images[:settings.calibration_images]
    calibration_probs = softmax(torch_logits(model, calibration, settings.batch_size))
    switched = use_unfused_attention(model)

    def calibrate(model_bytes: bytes) -> float:
        logits = onnx_logits(model_bytes, calibration.numpy(), settings.batch_size)
        return float(np.abs(softmax(logits) - calibration_probs).max())

    converter = WeightConverter(export_onnx(model, test.images[:2], settings.opset), settings.int8_block)
    preprocessing = {"image_size": size, "in_chans": chans, "mean": data.mean, "std": data.std, **PREPROCESSING}
    props = {"medbench.model": name, "medbench.suite": suite.name,
             "medbench.class_names": json.dumps(ckpt["class_names"]),
             "medbench.preprocessing": json.dumps(preprocessing, sort_keys=True)}
    images, sample_images = test.images.numpy(), sample_inputs.numpy()
    candidates, chosen = [], None
    for weights in settings.weights:
        if chosen is not None and weights != "fp32":
            continue  # a smaller one passed; fp32 is still measured: it is the export's own parity check
        proto, quantization = _variant(weights, converter, settings, calibrate)
        data_bytes = _with_metadata(proto, {**props, "medbench.weights": weights})
        sample_logits = onnx_logits(data_bytes, sample_images, settings.batch_size)
        entry = {"weights": weights, "bytes": len(data_bytes), "quantization": quantization,
                 "test": parity(reference, onnx_logits(data_bytes, images, settings.batch_size)),
                 "samples": parity(sample_reference, sample_logits)}
        if weights == "fp32":
            entry["passed"] = (entry["test"]["top1_agreement"] == 1.0
                               and entry["test"]["max_abs_logit_diff"] <= settings.fp32_logit_limit)
        else:
            entry["passed"] = (entry["samples"]["top1_agreement"] == 1.0
                               and entry["samples"]["max_prob_diff"] <= settings.prob_limit)
        log.info("%s %s: %d bytes, test top-1 agreement %.4f, max prob diff %.4f, samples max prob diff %.4f -> %s",
                 name, weights, len(data_bytes), entry["test"]["top1_agreement"], entry["test"]["max_prob_diff"],
                 entry["samples"]["max_prob_diff"], "ok" if entry["passed"] else "refused")
        candidates.append(entry)
        if entry["passed"] and chosen is None:
            chosen = (entry, data_bytes, sample_logits)
    fp32 = candidates[-1]
    if not fp32["passed"]:
        raise ExportError(f"{name}: the fp32 ONNX model differs from PyTorch on the test split "
                          f"(top-1 agreement {fp32['test']['top1_agreement']:.4f}, max |logit diff| "
                          f"{fp32['test']['max_abs_logit_diff']:.2e} > {settings.fp32_logit_limit:g})")
    entry, onnx_bytes, sample_logits = chosen
    web_bytes = gzip.compress(onnx_bytes, compresslevel=9, mtime=0)
    onnx_path, web_path = folder / f"{safe_name(name)}.onnx", folder / f"{safe_name(name)}.onnx.gz"
    atomic_write(onnx_path, lambda f: f.write(onnx_bytes), binary=True)
    atomic_write(web_path, lambda f: f.write(web_bytes), binary=True)
    probs, onnx_probs = softmax(sample_reference), softmax(sample_logits)
    metrics = {
        "opset": settings.opset, "weights": entry["weights"], "compute_dtype": "float32",
        "file": onnx_path.relative_to(artifacts).as_posix(), "bytes": len(onnx_bytes), "sha256": sha256(onnx_bytes),
        "web_file": web_path.relative_to(artifacts).as_posix(), "web_bytes": len(web_bytes),
        "web_sha256": sha256(web_bytes), "quantization": entry["quantization"],
        "input": {"name": INPUT_NAME, "shape": ["batch", chans, size, size], "dtype": "float32"},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", num_classes],
                   "meaning": "logits; softmax gives probabilities"},
        "preprocessing": preprocessing, "class_names": list(ckpt["class_names"]),
        "parity": {"weights": entry["weights"], "test": entry["test"], "samples": entry["samples"]},
        "parity_fp32": {"test": fp32["test"], "samples": fp32["samples"]},
        "candidates": [{k: v for k, v in c.items() if k != "quantization"} for c in candidates],
        "samples": [{**{k: v for k, v in s.items() if k != "input"},
                     "pytorch_probabilities": [round(float(p), 6) for p in probs[k]],
                     "onnx_probabilities": [round(float(p), 6) for p in onnx_probs[k]]}
                    for k, s in enumerate(samples)],
        "unfused_attention": switched,
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxscript": onnxscript.__version__,
                     "onnxruntime": ort().__version__},
        "threads": torch.get_num_threads(),
        "export_time_s": round(time.perf_counter() - start, 3),
    }
    return model_info(name, suite.scale, model, size, chans, num_classes, None), metrics


def _artifacts_intact(out: Path, artifacts: Path) -> bool:
    """The result's files exist with the recorded checksums (a skipped export must still be shippable)."""
    metrics = load_result(out)["metrics"]
    for key, digest in (("file", "sha256"), ("web_file", "web_sha256")):
        path = artifacts / metrics[key]
        if not path.is_file() or sha256(path.read_bytes()) != metrics[digest]:
            return False
    return all((artifacts / s["file"]).is_file() for s in metrics["samples"])


def export_one(suite: SuiteConfig, name: str, data: LoadedDataset, paths: RunPaths, seed: int, indices: list[int],
               settings: ExportSettings, force: bool = False) -> Path | None:
    """Export one model (the checkpoint of ``seed``) and write ``export__<model>.json``."""
    from bench.stages.train import config_fingerprint

    checkpoint = paths.checkpoint(suite.name, name, seed)
    if not checkpoint.exists():
        log.warning("no checkpoint %s: %s is not exported", checkpoint, name)
        return None
    out = result_path(paths.results, env.machine_info()["id"], suite.name, "export", name, None)
    config = {**dataclasses.asdict(settings), "format": EXPORT_FORMAT, "seed_exported": seed, "samples": indices,
              "sample_seed": suite.explain.seed, "image_size": suite.data.image_size, "in_chans": suite.data.in_chans,
              "trained": config_fingerprint(suite, name, seed),
              "checkpoint_sha256": sha256(checkpoint.read_bytes())}
    config["fingerprint"] = fingerprint(config)
    config["checkpoint"] = display_path(checkpoint)
    folder = paths.artifact_dir("export", suite.name)
    with exclusive_lock(paths.lock_for(out)):
        if not force and is_done(out, config["fingerprint"]) and _artifacts_intact(out, paths.artifacts):
            log.info("skip export of %s: %s exists", name, out)
            return out
        info, metrics, error = None, {}, None
        try:
            samples = write_samples(data, indices, folder / "samples", paths.artifacts, suite.data.image_size)
            info, metrics = export_metrics(suite, name, data, checkpoint, samples, folder, paths.artifacts, settings)
        except Exception as exc:  # noqa: BLE001 - recorded, not dropped
            error = error_record(exc, "export")
        write_result(out, payload("export", suite.name, info, seed, config, metrics, error, dataset=dataset_info(data)))
        log.info("wrote %s", out)
    return out


def export_suite(suite: SuiteConfig, models: list[str], data: LoadedDataset, paths: RunPaths, *, seed: int,
                 force: bool = False, settings: ExportSettings = ExportSettings()) -> list[Path]:
    """Export every model that has a checkpoint of ``seed``; returns the result files."""
    indices = sample_indices(data.splits["test"].labels.tolist(), len(data.class_names), suite.explain.seed)
    written = [p for p in (export_one(suite, name, data, paths, seed, indices, settings, force) for name in models)
               if p is not None]
    total = sum(load_result(p)["metrics"].get("web_bytes", 0) for p in written)
    log.info("export: %d model(s), %.2f MB of gzipped ONNX for the demo", len(written), total / 1e6)
    return written
