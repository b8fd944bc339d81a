"""The shift study end to end: every kept checkpoint under every shift, the clean predictions
checked against the committed ones, a missing checkpoint retrained and checked, the summary."""

from __future__ import annotations

import pytest

from bench.data.shifts import SHIFT_KINDS
from bench.results.store import load_result, validation_errors
from engine_helpers import medbench, tiny_suite

pytestmark = pytest.mark.slow

SHIFT = ["--set", 'shift.kinds=["blur", "rotation"]', "--set", "shift.severities=[1, 3]",
         "--set", "shift.bootstrap=100"]


def test_shift_study_then_a_retrained_checkpoint(tmp_path):
    suite = tiny_suite(tmp_path, tmp_path / "dataset", epochs=1)
    dirs = ["--results-dir", str(tmp_path / "results"), "--checkpoint-dir", str(tmp_path / "ckpt"),
            "--artifacts-dir", str(tmp_path / "artifacts")]
    medbench("run", "--suite", str(suite), "--stages", "train", *dirs, machine="m")
    medbench("shift", "--suite", str(suite), *SHIFT, *dirs, machine="m")

    folder = tmp_path / "results" / "m" / "tiny"
    run = load_result(folder / "shift__pyramid_softmax__seed0.json")
    train = load_result(folder / "train__pyramid_softmax__seed0.json")
    assert run["error"] is None and validation_errors(run) == []
    conditions = run["metrics"]["conditions"]
    assert sorted(conditions) == ["blur@1", "blur@3", "clean", "rotation@1", "rotation@3"]
    assert conditions["clean"]["predictions"] == train["metrics"]["test_predictions"]
    assert run["config"]["parameters"]["rotation@3"].startswith("in-plane rotation")

    summary = load_result(folder / "shift.json")
    assert summary["error"] is None and validation_errors(summary) == []
    entry = summary["metrics"]["models"]["pyramid_softmax"]
    # one epoch may leave the tiny model at chance: then it has no score and nothing is most robust
    most = summary["metrics"]["most_robust"]
    assert entry["num_seeds"] == 1 and most in ("pyramid_softmax", None)
    assert entry["robustness"]["above_chance"] is (most is not None)
    assert entry["conditions"]["blur@1"]["balanced_accuracy"] == conditions["blur@1"]["balanced_accuracy"]
    strips = summary["metrics"]["examples"]
    assert sorted(strips) == sorted(f"shift/tiny/examples-{kind}.png" for kind in SHIFT_KINDS)
    assert all((tmp_path / "artifacts" / strip).is_file() for strip in strips)

    # a machine without the checkpoint retrains it, says so, and checks it against the committed result
    (tmp_path / "ckpt" / "tiny" / "pyramid_softmax__seed0.pt").unlink()
    (folder / "shift__pyramid_softmax__seed0.json").unlink()
    done = medbench("shift", "--suite", str(suite), *SHIFT, *dirs, machine="m")
    assert "retraining pyramid_softmax seed 0" in done.stderr and "reproduces the committed result" in done.stderr
    again = load_result(folder / "shift__pyramid_softmax__seed0.json")
    assert again["metrics"]["conditions"] == conditions
    assert load_result(folder / "train__pyramid_softmax__seed0.json")["created_utc"] == train["created_utc"]
