"""The committed site_src/ is exactly what the repository's data and templates render to."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import pytest

from bench.site.render import render_site


def test_committed_site_src_is_reproducible(tmp_path: Path, paths: SimpleNamespace,
                                            tree_bytes: Callable[[Path], dict[str, bytes]]) -> None:
    results = paths.repo / "data" / "results"
    if not any(results.rglob("*.json")):
        pytest.skip("data/results holds no result files yet")
    fresh = tmp_path / "site_src"
    render_site(results, paths.repo / "data" / "artifacts", paths.templates, fresh)
    want, have = tree_bytes(fresh), tree_bytes(paths.repo / "site_src")
    hint = "site_src/ is out of date: run `medbench site` and commit the result"
    extra, missing = sorted(set(have) - set(want)), sorted(set(want) - set(have))
    assert not extra and not missing, f"{hint}; extra files: {extra}, missing files: {missing}"
    assert [name for name in want if want[name] != have[name]] == [], hint
