"""The profile stage end to end: a second machine's profile from the same checkpoints becomes a second column."""

from __future__ import annotations

import json
import re

import pytest

from bench.results.store import load_result
from engine_helpers import medbench, tiny_suite

pytestmark = pytest.mark.slow


def test_second_machine_profile_from_checkpoints_shows_as_a_second_column(tmp_path):
    suite = tiny_suite(tmp_path, tmp_path / "dataset", epochs=1)
    dirs = ["--results-dir", str(tmp_path / "results"), "--checkpoint-dir", str(tmp_path / "ckpt"),
            "--artifacts-dir", str(tmp_path / "artifacts")]
    medbench("run", "--suite", str(suite), *dirs, machine="machine-a")
    medbench("profile", "--suite", str(suite), "--from-checkpoints", str(tmp_path / "ckpt" / "tiny"), *dirs,
             machine="machine-b")

    profiles = {m: load_result(tmp_path / "results" / m / "tiny" / "profile__pyramid_softmax.json")
                for m in ("machine-a", "machine-b")}
    for machine, result in profiles.items():
        assert result["error"] is None and result["machine"]["id"] == machine
        assert result["config"]["checkpoint"].endswith("pyramid_softmax__seed0.pt")
        latency = result["metrics"]["latency"]
        batches: dict[str, list[int]] = {}
        for e in latency:
            batches.setdefault(e["dtype"], []).append(e["batch_size"])
        # float32 everywhere; bfloat16 too where the CPU has bf16 instructions, at the same batches
        assert batches["float32"] == [1, 4] and batches.get("bfloat16", [1, 4]) == [1, 4]
        assert set(batches) <= {"float32", "bfloat16"} and {e["runtime"] for e in latency} == {"torch"}
        assert all(len(e["samples_ms"]) == 30 and e["p50_ms"] <= e["p90_ms"] <= e["p99_ms"] for e in latency)
        assert [p["image_size"] for p in result["metrics"]["resolution_sweep"]] == [32, 48]
        assert result["metrics"]["roofline"]["fraction_of_peak"] > 0
    assert not (tmp_path / "results" / "machine-b" / "tiny" / "train__pyramid_softmax__seed0.json").exists()

    site = tmp_path / "site_src"
    medbench("site", "--out", str(site), *dirs)
    page = (site / "efficiency.md").read_text()
    call = re.search(r'Plotly\.newPlot\(\s*"latency-tiny",\s*', page)
    assert call, "no latency chart for the suite"
    traces, _ = json.JSONDecoder().raw_decode(page, call.end())
    names = " ".join(t["name"] for t in traces)
    assert "machine-a" in names and "machine-b" in names
