"""Context and files of the "Try it" page: every exported model, run in the reader's browser.

Read from the ``export`` results (one per model) and the files they name under the
artifacts folder. The page must work from ``file://``, where a page can neither fetch
local files nor read the pixels of a local image it displays (the canvas is tainted), so:

- each model ships as a script, ``assets/demo/models/<model>.js``, that defines its
  gzipped ONNX bytes in base64 (``window.MEDBENCH_MODELS[name]``); demo.js injects it when
  the reader chooses that model (one model, the first, loads with the page), inflates it
  with ``DecompressionStream`` and hands the bytes to ``InferenceSession.create``;
- the sample test images sit in the page as ``data:`` URLs;
- DICOM support (dicom-parser and demo-dicom.js) loads the first time a DICOM is dropped.

What the first prediction downloads (the page's scripts, the runtime and one model) is
summed here for the page's text; the browser test measures it.

Nothing here computes a statistic; parity figures are the export stage's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from bench.results.store import ResultError
from bench.site.context import slug
from bench.site.load import LoadedResult, reading

log = logging.getLogger(__name__)

BUDGET_BYTES = 25_000_000  # models + runtime + scripts + sample images, as shipped
FIRST_PREDICTION_BYTES = 6_000_000  # what one model's first prediction may download (measured by the browser test)
MODEL_SCRIPTS = "assets/demo/models"
RUNTIME_DATA = "assets/vendor/onnxruntime-web/ort-wasm-simd-threaded.js"
# under the theme folder: the files main.html loads for `assets: [demo]` and the runtime demo.js injects
RUNTIME_FILES = ("assets/vendor/onnxruntime-web/ort.wasm.min.js", "assets/vendor/xz-decompress/xz-decompress.min.js",
                 "assets/javascripts/demo-image.js", "assets/javascripts/demo.js", RUNTIME_DATA)
# loaded the first time a DICOM file is dropped, in this order
DICOM_FILES = ("assets/vendor/dicom-parser/dicomParser.min.js", "assets/javascripts/demo-dicom.js")


@dataclass(frozen=True)
class DemoPreprocessing:
    image_size: int
    in_chans: int
    mean: str  # repr of the float: the page normalises with exactly the engine's numbers
    std: str
    resize: str


@dataclass(frozen=True)
class SampleProbabilities:
    """One model's PyTorch probabilities of one sample image, space-separated, class order."""

    model: str
    values: str


@dataclass(frozen=True)
class DemoSample:
    index: int  # in the test split
    label: str
    data_url: str  # the PNG, inline
    source: str  # the PNG under the artifacts folder
    pytorch: tuple[SampleProbabilities, ...]


@dataclass(frozen=True)
class DemoModel:
    name: str
    weights: str  # fp32 | fp16 | int8 (storage; compute is fp32)
    script: str  # site path of its script
    source: str  # its gzipped ONNX under the artifacts folder
    onnx_bytes: int
    script_bytes: int
    opset: int
    fp16_tensors: int | None  # int8 models: tensors kept in fp16
    test_images: int
    test_top1_agreement: float
    test_max_prob_diff: float
    samples_max_prob_diff: float
    fp32_max_logit_diff: float

    @property
    def onnx_mb(self) -> float:
        return self.onnx_bytes / 1e6

    @property
    def script_mb(self) -> float:
        return self.script_bytes / 1e6


@dataclass(frozen=True)
class DemoContext:
    machine: str
    suite: str
    dataset: str
    synthetic: bool
    class_names: tuple[str, ...]
    preprocessing: DemoPreprocessing
    models: tuple[DemoModel, ...]
    samples: tuple[DemoSample, ...]
    runtime_data: str  # site path of the script holding the WASM binary
    runtime_bytes: int | None  # every runtime file (RUNTIME_FILES); None when the theme folder was not given
    runtime_data_bytes: int | None  # the WASM script alone
    dicom_bytes: int | None = None  # DICOM_FILES, loaded only for a DICOM file
    dicom_scripts: tuple[str, ...] = DICOM_FILES
    budget_bytes: int = BUDGET_BYTES
    first_prediction_budget_bytes: int = FIRST_PREDICTION_BYTES

    @property
    def models_bytes(self) -> int:
        return sum(m.script_bytes for m in self.models)

    @property
    def samples_bytes(self) -> int:
        return sum(len(s.data_url) for s in self.samples)

    @property
    def total_bytes(self) -> int:
        return self.models_bytes + self.samples_bytes + (self.runtime_bytes or 0) + (self.dicom_bytes or 0)

    @property
    def models_mb(self) -> float:
        return self.models_bytes / 1e6

    @property
    def samples_mb(self) -> float:
        return self.samples_bytes / 1e6

    @property
    def runtime_mb(self) -> float | None:
        return None if self.runtime_bytes is None else self.runtime_bytes / 1e6

    @property
    def total_mb(self) -> float:
        return self.total_bytes / 1e6

    @property
    def budget_mb(self) -> float:
        return self.budget_bytes / 1e6

    @property
    def default_model(self) -> DemoModel:
        """The model that loads with the page: the first listed."""
        return self.models[0]

    @property
    def largest_model_mb(self) -> float:
        return max(m.script_bytes for m in self.models) / 1e6

    @property
    def runtime_data_mb(self) -> float | None:
        return None if self.runtime_data_bytes is None else self.runtime_data_bytes / 1e6

    @property
    def first_prediction_mb(self) -> float | None:
        """Runtime and scripts, the largest model and the sample images: what choosing one model
        downloads at most, besides the page itself and the theme (the browser test measures all of it)."""
        if self.runtime_bytes is None:
            return None
        return (self.runtime_bytes + max(m.script_bytes for m in self.models) + self.samples_bytes) / 1e6

    @property
    def within_budget(self) -> bool:
        return self.total_bytes <= self.budget_bytes


def model_script_path(model: str) -> str:
    return f"{MODEL_SCRIPTS}/{slug(model)}.js"


def model_script(model: str, gzipped_onnx: bytes) -> bytes:
    """The script that defines one model's bytes (gzipped ONNX, base64) for demo.js."""
    return (f"// {model}: gzipped ONNX, base64 (MedViT-Bench demo; see assets/javascripts/demo.js)\n"
            "window.MEDBENCH_MODELS = window.MEDBENCH_MODELS || {};\n"
            f"window.MEDBENCH_MODELS[{json.dumps(model)}] = \"{base64.b64encode(gzipped_onnx).decode()}\";\n").encode()


def _script_bytes(model: str, gz_size: int) -> int:
    return len(model_script(model, b"")) + 4 * ((gz_size + 2) // 3)


def _intact(artifacts: Path, rel: str, digest: str | None) -> bool:
    path = artifacts / rel
    if not path.is_file():
        return False
    return digest is None or hashlib.sha256(path.read_bytes()).hexdigest() == digest


def _pick_group(results: list[LoadedResult]) -> list[LoadedResult]:
    """The (machine, suite) with the most exported models: the page shows one suite's models."""
    groups: dict[tuple[str, str], list[LoadedResult]] = defaultdict(list)
    for r in results:
        if r.kind == "export" and not r.failed and r.payload["model"] is not None:
            groups[(r.machine_id, r.payload["suite"])].append(r)
    if not groups:
        return []
    ordered = sorted(groups.items())
    return max(ordered, key=lambda item: len(item[1]))[1]


def demo_context(results: list[LoadedResult], artifacts_dir: Path, theme_dir: Path | None = None) -> DemoContext | None:
    """The demo page's context, or None without export results. A model whose gzipped ONNX is missing
    or altered (checksum) is left out, as is a sample image whose PNG is missing. ``theme_dir`` (the
    MkDocs custom_dir) lets the size total include the runtime."""
    artifacts = Path(artifacts_dir)
    members = sorted(_pick_group(results), key=lambda r: r.payload["model"]["name"])
    if not members:
        return None
    first = members[0].payload
    with reading(members[0].path):
        pre = first["metrics"]["preprocessing"]
        class_names = tuple(first["metrics"]["class_names"])
        base_samples = first["metrics"]["samples"]
    models, probs, scripts = [], defaultdict(list), {}
    for r in members:
        with reading(r.path):
            name, m = r.payload["model"]["name"], r.payload["metrics"]
            other = scripts.setdefault(model_script_path(name).lower(), name)
            if other != name:
                raise ResultError(r.path, f"models {other!r} and {name!r} map to one demo script, "
                                          f"{model_script_path(name)}; rename one of them")
            if (tuple(m["class_names"]) != class_names or m["preprocessing"]["mean"] != pre["mean"]
                    or m["preprocessing"]["std"] != pre["std"]):
                log.warning("%s: another preprocessing or class list than %s; left out of the demo",
                            r.path, members[0].path)
                continue
            if not _intact(artifacts, m["web_file"], m["web_sha256"]):
                log.warning("%s: %s is missing or altered; %s is left out of the demo", r.path, m["web_file"], name)
                continue
            for s in m["samples"]:
                values = " ".join(f"{p:.6f}" for p in s["pytorch_probabilities"])
                probs[s["index"]].append(SampleProbabilities(name, values))
            quant = m.get("quantization") or {}
            models.append(DemoModel(
                name=name, weights=m["weights"], script=model_script_path(name), source=m["web_file"],
                onnx_bytes=m["bytes"], script_bytes=_script_bytes(name, m["web_bytes"]), opset=m["opset"],
                fp16_tensors=quant.get("fp16_tensors") if m["weights"] == "int8" else None,
                test_images=m["parity"]["test"]["images"], test_top1_agreement=m["parity"]["test"]["top1_agreement"],
                test_max_prob_diff=m["parity"]["test"]["max_prob_diff"],
                samples_max_prob_diff=m["parity"]["samples"]["max_prob_diff"],
                fp32_max_logit_diff=m["parity_fp32"]["test"]["max_abs_logit_diff"]))
    samples = []
    for s in base_samples:
        if not _intact(artifacts, s["file"], None):
            log.warning("%s: sample image %s is missing; left out of the demo", members[0].path, s["file"])
            continue
        png = (artifacts / s["file"]).read_bytes()
        samples.append(DemoSample(s["index"], s["label"], "data:image/png;base64," + base64.b64encode(png).decode(),
                                  s["file"], tuple(probs[s["index"]])))
    runtime = runtime_data = dicom = None
    if theme_dir is not None:
        sizes = {f: (Path(theme_dir) / f).stat().st_size for f in RUNTIME_FILES + DICOM_FILES
                 if (Path(theme_dir) / f).is_file()}
        runtime, runtime_data = sum(sizes.get(f, 0) for f in RUNTIME_FILES), sizes.get(RUNTIME_DATA)
        dicom = sum(sizes.get(f, 0) for f in DICOM_FILES)
    dataset = first.get("dataset", {})
    return DemoContext(
        machine=members[0].machine_id, suite=first["suite"], dataset=dataset.get("name", ""),
        synthetic=bool(dataset.get("synthetic")), class_names=class_names,
        preprocessing=DemoPreprocessing(pre["image_size"], pre["in_chans"], repr(float(pre["mean"])),
                                        repr(float(pre["std"])), pre["resize"]),
        models=tuple(models), samples=tuple(samples), runtime_data=RUNTIME_DATA, runtime_bytes=runtime,
        runtime_data_bytes=runtime_data, dicom_bytes=dicom)


def demo_assets(ctx: DemoContext | None, artifacts_dir: Path) -> dict[str, bytes]:
    """The files the page needs besides itself and the theme: one script per model (site path → bytes)."""
    if ctx is None:
        return {}
    return {model.script: model_script(model.name, (Path(artifacts_dir) / model.source).read_bytes())
            for model in ctx.models}  # one script per model: demo_context refused names that would share one
