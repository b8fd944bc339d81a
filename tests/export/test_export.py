"""The export stage on two small random-weight models: ONNX files, parity, records, resumption,
and the demo page's context built from them."""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bench.core.config import load_suite
from bench.data import load_dataset
from bench.data.synthetic import ensure_dataset
from bench.export.onnx_weights import quantize_int8
from bench.export.stage import ExportSettings, export_suite, sample_indices
from bench.models.onnx_graph import use_unfused_attention
from bench.models import create_model
from bench.results.records import RunPaths
from bench.results.store import load_result
from bench.site.demo import demo_assets, demo_context
from bench.site.load import LoadedResult
from bench.site.render import make_environment
from bench.stages.checkpoint import CHECKPOINT_FORMAT
from engine_helpers import REPO, tiny_suite

ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow
MODELS = ("pyramid_softmax", "pyramid_performer")
SETTINGS = ExportSettings(calibration_images=16)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Two random-weight checkpoints of a tiny suite, exported once for the module."""
    tmp = tmp_path_factory.mktemp("export")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEDBENCH_MACHINE_ID", "test-machine")
        models = ", ".join(f'"{m}"' for m in MODELS)
        suite = load_suite(str(tiny_suite(tmp, tmp / "dataset", models=models, num_images=120)))
        ensure_dataset(suite.data)
        data = load_dataset(suite.data, progress=False)
        paths = RunPaths(results=tmp / "results", checkpoints=tmp / "ckpt", artifacts=tmp / "artifacts",
                         locks=tmp / "locks")
        for k, name in enumerate(MODELS):
            torch.manual_seed(k)
            model = create_model(name, suite.scale, num_classes=len(data.class_names), in_chans=suite.data.in_chans,
                                 image_size=suite.data.image_size)
            state = model.state_dict()
            path = paths.checkpoint(suite.name, name, 0)
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"format": CHECKPOINT_FORMAT, "class_names": list(data.class_names), "best_state": state,
                        "model": state}, path)
        written = export_suite(suite, list(MODELS), data, paths, seed=0, settings=SETTINGS)
        yield SimpleNamespace(suite=suite, data=data, paths=paths, written=written, patch=patch)
    torch.set_num_threads(threads)


def test_every_model_exports_with_parity(exported):
    assert [p.name for p in exported.written] == [f"export__{m}.json" for m in MODELS]
    for path in exported.written:
        result = load_result(path)  # validated against the schema
        assert result["kind"] == "export" and result["error"] is None, result["error"]
        m = result["metrics"]
        fp32 = m["parity_fp32"]["test"]
        assert fp32["images"] == len(exported.data.splits["test"].labels)
        assert fp32["top1_agreement"] == 1.0 and fp32["max_abs_logit_diff"] <= 1e-3
        shipped = m["parity"]
        assert shipped["weights"] == m["weights"]
        assert shipped["samples"]["top1_agreement"] == 1.0 and shipped["samples"]["max_prob_diff"] <= 0.01
        assert [c["weights"] for c in m["candidates"]][-1] == "fp32"
        assert m["opset"] == SETTINGS.opset and m["compute_dtype"] == "float32"
        assert m["preprocessing"]["mean"] == exported.data.mean and m["preprocessing"]["std"] == exported.data.std


def test_files_match_their_checksums_and_run_at_any_batch(exported):
    artifacts = exported.paths.artifacts
    for path in exported.written:
        m = load_result(path)["metrics"]
        onnx_bytes, web = (artifacts / m["file"]).read_bytes(), (artifacts / m["web_file"]).read_bytes()
        assert hashlib.sha256(onnx_bytes).hexdigest() == m["sha256"] and len(onnx_bytes) == m["bytes"]
        assert hashlib.sha256(web).hexdigest() == m["web_sha256"] and gzip.decompress(web) == onnx_bytes
        assert b"stack_trace" not in onnx_bytes  # the exporter's debug data (local paths) is stripped
        session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
        images = exported.data.splits["test"].images[:3].numpy()
        for batch in (1, 3):
            assert session.run(None, {"image": images[:batch]})[0].shape == (batch, len(exported.data.class_names))


def test_samples_are_one_per_class_with_pytorch_probabilities(exported):
    test = exported.data.splits["test"]
    indices = sample_indices(test.labels.tolist(), len(exported.data.class_names), exported.suite.explain.seed)
    assert indices == sample_indices(test.labels.tolist(), len(exported.data.class_names), exported.suite.explain.seed)
    assert sorted(int(test.labels[i]) for i in indices) == sorted(set(test.labels.tolist()))
    m = load_result(exported.written[0])["metrics"]
    assert [s["index"] for s in m["samples"]] == indices
    for s in m["samples"]:
        assert (exported.paths.artifacts / s["file"]).is_file()
        assert s["input_max_abs_diff"] == 0.0  # the shipped PNG is what the engine read
        assert s["label"] == exported.data.class_names[int(test.labels[s["index"]])]
        assert abs(sum(s["pytorch_probabilities"]) - 1) < 1e-4
        assert max(abs(a - b) for a, b in zip(s["pytorch_probabilities"], s["onnx_probabilities"])) <= 0.01


def test_rerun_skips_and_a_missing_file_is_made_again(exported):
    exported.patch.setenv("MEDBENCH_MACHINE_ID", "test-machine")
    before = {p: p.stat().st_mtime_ns for p in exported.written}
    again = export_suite(exported.suite, list(MODELS), exported.data, exported.paths, seed=0, settings=SETTINGS)
    assert again == exported.written and {p: p.stat().st_mtime_ns for p in again} == before
    m = load_result(exported.written[0])["metrics"]
    (exported.paths.artifacts / m["web_file"]).unlink()
    export_suite(exported.suite, [MODELS[0]], exported.data, exported.paths, seed=0, settings=SETTINGS)
    assert (exported.paths.artifacts / m["web_file"]).is_file()
    assert exported.written[0].stat().st_mtime_ns != before[exported.written[0]]


def test_demo_context_page_and_scripts(exported):
    results = [LoadedResult(p, p.relative_to(exported.paths.results), load_result(p)) for p in exported.written]
    ctx = demo_context(results, exported.paths.artifacts, REPO / "templates" / "theme")
    assert [m.name for m in ctx.models] == sorted(MODELS) and ctx.synthetic
    assert len(ctx.samples) == len(load_result(exported.written[0])["metrics"]["samples"])
    assert all(len(s.pytorch) == len(MODELS) for s in ctx.samples)
    assets = demo_assets(ctx, exported.paths.artifacts)
    for model in ctx.models:
        script = assets[model.script].decode()
        assert len(assets[model.script]) == model.script_bytes
        packed = re.search(r'MEDBENCH_MODELS\["[^"]+"\] = "([^"]+)"', script).group(1)
        assert base64.b64decode(packed) == (exported.paths.artifacts / model.source).read_bytes()
    env = make_environment(REPO / "templates")
    site = SimpleNamespace(demo=ctx, model_page_names=frozenset())
    page = env.get_template("demo.md.j2").render(site=site, page="demo.md")
    assert page.startswith("---\nassets: [demo]\n---\n")
    assert page.count("<tr data-demo-model") == len(MODELS) and page.count("data:image/png;base64,") == len(ctx.samples)
    assert "Not a diagnostic tool" in page and "synthetic" in page
    empty = env.get_template("demo.md.j2").render(site=SimpleNamespace(model_page_names=frozenset()), page="demo.md")
    assert "Not run yet" in empty and "data-demo-model" not in empty


def test_int8_blocks_round_to_half_a_step_and_unfused_switch():
    w = np.random.default_rng(0).normal(size=(24, 64)).astype(np.float32)
    q = quantize_int8(w, block=32, transposed=False)
    back = (q.q.astype(np.float64) * q.scale.astype(np.float64)).reshape(w.shape)
    assert q.q.shape == (24, 2, 32) and np.all(np.abs(back - w) <= q.scale.astype(np.float64).max() / 2 + 1e-6)
    model = create_model("pyramid_softmax", "quick", num_classes=10, in_chans=1, image_size=32)
    assert use_unfused_attention(model) == ["SoftmaxAttention"]
    assert not any(getattr(m, "fused", False) for m in model.modules())
