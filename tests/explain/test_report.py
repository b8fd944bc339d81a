"""The Markdown table of a suite's explain results."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.explain.report import main

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "results"


def test_the_table_has_every_pair_its_baseline_verdict_and_sanity(capsys: pytest.CaptureFixture[str]):
    assert main(["--results-dir", str(FIXTURES)]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| pyramid_")]
    assert len(rows) == 2 * 4 + 2  # model–method rows, then one row per model
    ig = next(line for line in rows if "| integrated_gradients |" in line)
    assert "vs edges 0.375 ✓" in ig and ig.endswith("| fails: full randomisation: absolute |")
    assert "| pyramid_softmax | 0 | 0.800 | 8 / 8 | 0.618 | lesion_free | 0.41 / 0.97 / 1.00 | evidence | 12.5 |" in out
    assert main(["--results-dir", str(FIXTURES), "--suite", "none"]) == 1
