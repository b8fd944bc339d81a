"""Profiles with ONNX Runtime rows, several thread counts and a fitted sweep: the Efficiency page
shows each row with its runtime, the fitted exponents, and the leaderboard's latency stays PyTorch's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable


def _with_runtimes(results: Path) -> dict:
    path = results / "cpu-fixture-2c" / "quick" / "profile__pyramid_softmax.json"
    profile = json.loads(path.read_text())
    torch_row = next(e for e in profile["metrics"]["latency"] if e["batch_size"] == 1 and e["dtype"] == "float32")
    fast = {**torch_row, "runtime": "onnxruntime", "p50_ms": 0.0123, "p90_ms": 0.0125, "p99_ms": 0.013,
            "rounds": 3, "round_p50_ms": [0.0121, 0.0124, 0.0123]}
    int8 = {**fast, "dtype": "int8", "p50_ms": 0.0101}
    one_thread = {**torch_row, "threads": 1, "p50_ms": 987.0, "p90_ms": 990.0, "p99_ms": 991.0}
    profile["metrics"]["latency"] += [fast, int8, one_thread]
    profile["metrics"]["resolution_exponents"] = {"points": 3, "sizes": [112, 224, 448], "vs_side": 2.31,
                                                  "vs_tokens": 1.16}
    path.write_text(json.dumps(profile))
    return torch_row


def test_runtime_rows_exponents_and_a_pytorch_leaderboard(tmp_path: Path, results_copy: Path,
                                                          render: Callable[..., list[Path]]) -> None:
    torch_row = _with_runtimes(results_copy)
    out = tmp_path / "docs"
    render(out, results=results_copy)
    efficiency = (out / "efficiency.md").read_text()
    assert "| Model | Runtime | Dtype | Batch | Threads | p50 (ms) ↓ | p90 (ms) ↓ | p50 by round (ms) |" in efficiency
    assert "| ONNX Runtime | int8 | 1 |" in efficiency and "| ONNX Runtime | float32 | 1 |" in efficiency
    assert "| 112, 224, 448 | 2.31 | 1.16 |" in efficiency
    assert "| 0.0121 / 0.0124 / 0.0123 |" in efficiency  # each round's p50, where there were rounds
    # the leaderboard's batch-1 latency is PyTorch float32 at the most threads, never ONNX Runtime's or
    # 1 thread's (the cost tables below it show every runtime, by name)
    index = (out / "index.md").read_text().split("## What each model costs", 1)[0]
    assert "0.0123" not in index and "0.0101" not in index and "987" not in index
    assert f"{torch_row['p50_ms']:.3g}" in index or f"{torch_row['p50_ms']:.2g}" in index
