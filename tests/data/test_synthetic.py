import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.core.config import DataConfig
from bench.data.samples import LESIONS, render
from bench.data.synthetic import (
    CLASS_NAMES,
    MIN_FRACTION,
    class_counts,
    effective_proportions,
    ensure_dataset,
    generate,
    write_sample_grid,
)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _manifest(root: Path) -> list[dict[str, str]]:
    with open(root / "manifest.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("synthetic") / "syn", 200, size=64, seed=0, progress=False)


def test_same_seed_gives_byte_identical_files(small: Path, tmp_path: Path) -> None:
    again = generate(tmp_path / "syn", 200, size=64, seed=0, progress=False)
    first, second = _files(small), _files(again)
    assert len(first) == 2 * 200 + 2
    assert first == second


def test_worker_count_does_not_change_a_byte(tmp_path: Path) -> None:
    serial = generate(tmp_path / "one", 40, size=32, seed=3, progress=False, workers=1)
    pooled = generate(tmp_path / "two", 40, size=32, seed=3, progress=False, workers=2)
    assert _files(serial) == _files(pooled)


def test_another_seed_gives_other_images(small: Path, tmp_path: Path) -> None:
    other = generate(tmp_path / "syn", 200, size=64, seed=1, progress=False)
    first, second = _files(small), _files(other)
    images = [k for k in first if k.startswith("images/") and k in second]
    assert sum(first[k] != second[k] for k in images) == len(images)
    assert _manifest(small) != _manifest(other)


def test_generate_refuses_a_non_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        generate(tmp_path, 100, size=32, progress=False)


@pytest.mark.parametrize("n", [100, 200, 1001, 3000, 12345])
def test_class_counts_are_exact_and_floored(n: int) -> None:
    counts = class_counts(n)
    assert list(counts) == list(CLASS_NAMES)
    assert sum(counts.values()) == n
    assert min(counts.values()) >= int(MIN_FRACTION * n)
    assert max(counts, key=counts.get) == "normal"
    shares = effective_proportions()
    assert sum(shares.values()) == pytest.approx(1.0)
    assert min(shares.values()) >= MIN_FRACTION - 1e-12
    assert shares["normal"] > 0.55  # RadImageNet's imbalance survives the floor


def test_generated_counts_match_class_counts(small: Path) -> None:
    rows = _manifest(small)
    assert Counter(r["label"] for r in rows) == Counter(class_counts(200))
    info = json.loads((small / "dataset.json").read_text())
    assert info["synthetic"] is True
    assert (info["num_images"], info["size"], info["seed"]) == (200, 64, 0)
    assert {c: v["total"] for c, v in info["counts"].items()} == class_counts(200)
    for label, per_split in info["counts"].items():
        assert sum(per_split[s] for s in ("train", "val", "test")) == per_split["total"]


def test_masks_are_empty_only_for_normal(small: Path) -> None:
    for row in _manifest(small):
        image = Image.open(small / row["path"])
        mask = np.asarray(Image.open(small / row["mask_path"]))
        assert image.mode == "L" and image.size == (64, 64)
        assert set(np.unique(mask)) <= {0, 255}
        assert mask.any() == (row["label"] != "normal"), row["path"]


def test_manifest_splits_are_stratified(small: Path) -> None:
    rows = _manifest(small)
    by_class = Counter((r["label"], r["split"]) for r in rows)
    for label in CLASS_NAMES:
        assert all(by_class[label, split] >= 1 for split in ("train", "val", "test")), label
    shares = Counter(r["split"] for r in rows)
    assert shares["train"] / len(rows) == pytest.approx(0.7, abs=0.05)
    assert shares["val"] / len(rows) == pytest.approx(0.15, abs=0.05)


def test_every_class_has_a_lesion_painter() -> None:
    assert tuple(LESIONS) == CLASS_NAMES


@pytest.mark.parametrize("label", [c for c in CLASS_NAMES if c != "normal"])
def test_every_lesion_is_visible_at_64_px(label: str) -> None:
    areas = [int(render(label, 64, np.random.default_rng(seed))[1].sum()) for seed in range(25)]
    assert min(areas) >= 3, areas  # at least a 2-px wide spot


def test_ensure_dataset_reuses_then_regenerates(tmp_path: Path) -> None:
    cfg = DataConfig(root=str(tmp_path / "syn"), num_images=100, generator_size=32)
    root = ensure_dataset(cfg, progress=False)
    stamp = (root / "manifest.csv").stat().st_mtime_ns
    assert ensure_dataset(cfg, progress=False) == root
    assert (root / "manifest.csv").stat().st_mtime_ns == stamp  # reused, not rewritten
    reseeded = DataConfig(root=str(tmp_path / "syn"), num_images=100, generator_size=32, seed=5)
    ensure_dataset(reseeded, progress=False)
    assert json.loads((root / "dataset.json").read_text())["seed"] == 5
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["syn"]  # no partial folders


def test_an_interrupted_generation_leaves_no_half_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.data.synthetic as synthetic

    calls = []

    def dying_render(*args: object) -> tuple[np.ndarray, np.ndarray]:
        calls.append(args)
        if len(calls) > 30:
            raise KeyboardInterrupt
        return render(*args)

    (tmp_path / ".syn.partial-1").mkdir()  # debris of a run killed outright
    monkeypatch.setattr(synthetic, "render", dying_render)
    cfg = DataConfig(root=str(tmp_path / "syn"), num_images=100, generator_size=32)
    with pytest.raises(KeyboardInterrupt):
        ensure_dataset(cfg, progress=False)
    assert not (tmp_path / "syn").exists()
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]
    monkeypatch.undo()
    assert (ensure_dataset(cfg, progress=False) / "manifest.csv").is_file()


def test_ensure_dataset_leaves_foreign_folders_alone(tmp_path: Path) -> None:
    (tmp_path / "scans").mkdir()
    (tmp_path / "scans" / "patient.png").write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="not a synthetic dataset"):
        ensure_dataset(DataConfig(root=str(tmp_path / "scans"), num_images=100, generator_size=32), progress=False)
    assert (tmp_path / "scans" / "patient.png").read_bytes() == b"precious"


def test_write_sample_grid(small: Path, tmp_path: Path) -> None:
    written = write_sample_grid(small, tmp_path / "grid", per_class=4)
    assert [p.name for p in written] == [f"{c}.png" for c in CLASS_NAMES] + ["dataset.json"]
    strip = Image.open(tmp_path / "grid" / "normal.png")
    assert strip.size == (4 * 64 + 3 * 2, 64)
    assert (tmp_path / "grid" / "dataset.json").read_bytes() == (small / "dataset.json").read_bytes()
    again = write_sample_grid(small, tmp_path / "again", per_class=4)
    assert [p.read_bytes() for p in written] == [p.read_bytes() for p in again]
