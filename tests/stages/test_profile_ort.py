"""ONNX Runtime beside PyTorch: float32 and dynamic int8 latency, what was quantised, and how far int8 moves the outputs."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import torch
from torch import nn

from bench.core.config import load_suite, suite_from_dict
from bench.results.store import SCHEMA_DIR
from bench.stages.profile_ort import node_counts, onnxruntime_timers, quantise_dynamic
from bench.stages.rounds import run_in_rounds
from bench.models.onnx_graph import export_onnx, ort_session


def mlp_head() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 32), nn.ReLU(),
                         nn.Linear(32, 10)).eval()


def test_int8_quantises_the_gemm_weights_and_stays_close_to_float32():
    fp32 = export_onnx(mlp_head(), torch.randn(2, 1, 8, 8), 18).SerializeToString()
    int8 = quantise_dynamic(fp32)
    before, after = node_counts(fp32), node_counts(int8)
    assert before.get("Conv") == after.get("Conv") == 1  # convolutions stay float32
    assert after.get("MatMulInteger", 0) == before.get("Gemm", 0) + before.get("MatMul", 0) == 2
    x = np.random.default_rng(0).standard_normal((16, 1, 8, 8)).astype(np.float32)
    a, b = (ort_session(m, 1).run(None, {"image": x})[0] for m in (fp32, int8))
    reference = mlp_head()(torch.from_numpy(x)).detach().numpy()
    assert np.abs(a - reference).max() < 1e-4 and 0 < np.abs(a - b).max() < 0.1


def test_timers_cover_each_dtype_batch_and_thread_count():
    schema = json.loads((SCHEMA_DIR / "result.v1.schema.json").read_text())
    validator = jsonschema.Draft202012Validator({"$ref": "#/$defs/latency", "$defs": schema["$defs"]})
    timers, info = onnxruntime_timers(mlp_head(), image_size=8, in_chans=1,
                                      configurations=[(1, 1, 3), (2, 1, 3), (2, 4, 2)])
    entries = run_in_rounds(timers, rounds=1, warmup=1)
    keys = [(e["dtype"], e["batch_size"], e["threads"]) for e in entries]
    assert sorted(keys) == sorted([(d, 1, t) for d in ("float32", "int8") for t in (1, 2)]
                                  + [(d, 4, 2) for d in ("float32", "int8")])
    for entry in entries:
        validator.validate(entry)
        assert entry["runtime"] == "onnxruntime" and len(entry["samples_ms"]) == (3 if entry["batch_size"] == 1 else 2)
    int8 = info["int8"]
    assert int8["op_types"] == ["MatMul", "Gemm"] and int8["nodes_int8"]["MatMulInteger"] == 2
    assert 0 <= int8["agreement_with_fp32"]["top1_agreement"] <= 1 and int8["agreement_with_fp32"]["inputs"] == 32


def test_device_overrides_and_their_validation():
    base = load_suite("quick").to_dict()
    profile = suite_from_dict({**base, "profile": {"runs": 100, "cpu": {"runs": 30, "threads": [1, 2],
                                                                        "runtimes": ["torch", "onnxruntime"]}}}).profile
    assert profile.on("cpu").runs == 30 and profile.on("cpu").threads == (1, 2) and profile.on("cuda").runs == 100
    assert profile.on("cpu").runtimes == ("torch", "onnxruntime") and profile.on("cpu").cpu == {}
    for bad, message in (({"cpu": {"runz": 30}}, "unknown keys"), ({"cpu": {"runs": 3}}, "runs must be >= 30"),
                         ({"runtimes": ["onnxruntime"]}, "must include torch"), ({"threads": [0]}, "threads")):
        try:
            suite_from_dict({**base, "profile": bad})
        except ValueError as exc:
            assert message in str(exc), (bad, exc)
        else:
            raise AssertionError(f"{bad} was accepted")
