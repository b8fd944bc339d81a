"""Class names that would share one file in the site are refused with one line naming the
dataset.json, before anything is rendered, and not with a traceback."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.cli.main import main


@pytest.mark.parametrize("first, second", [("edema", "Edema"), ("white matter", "white-matter")])
def test_two_classes_on_one_site_path_are_one_line_naming_the_file(
        tmp_path: Path, paths: SimpleNamespace, caplog: pytest.LogCaptureFixture, first: str, second: str) -> None:
    artifacts = tmp_path / "artifacts"
    shutil.copytree(paths.artifacts / "dataset", artifacts / "dataset")
    folder = artifacts / "dataset" / "synthetic-quick"
    info = json.loads((folder / "dataset.json").read_text())
    for name in (first, second):
        if name not in info["class_names"]:
            info["class_names"].append(name)
        shutil.copy(folder / "normal.png", folder / f"{name}.png")
    (folder / "dataset.json").write_text(json.dumps(info))
    out = tmp_path / "docs"
    with caplog.at_level(logging.ERROR):
        code = main(["site", "--out", str(out), "--results-dir", str(paths.results), "--artifacts-dir", str(artifacts)])
    assert code == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "\n" not in errors[0], errors
    assert errors[0].startswith(f"{folder / 'dataset.json'}: classes ")
    assert f"{first!r}" in errors[0] and f"{second!r}" in errors[0] and "map to one site path" in errors[0]
    assert not out.exists()  # refused before anything was written
