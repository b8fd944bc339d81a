"""Shared by the engine tests: a tiny suite file on a tiny synthetic dataset."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMING_KEYS = {"train_time_s", "train_images_per_s"}


def tiny_suite(tmp: Path, dataset_root: Path, *, epochs: int = 2, models: str = '"pyramid_softmax"',
               num_images: int = 200) -> Path:
    path = tmp / "tiny.toml"
    path.write_text(f"""
name = "tiny"
scale = "quick"
models = [{models}]
seeds = [0]
[data]
root = "{dataset_root}"
num_images = {num_images}
generator_size = 64
image_size = 32
[train]
epochs = {epochs}
batch_size = 32
lr = 2e-3
warmup_epochs = 1
bootstrap = 50
[profile]
batch_sizes = [1, 4]
warmup = 1
runs = 30
resolutions = [32, 48]
sweep_runs = 3
""")
    return path


def medbench(*args: str, machine: str = "test-machine", check: bool = True, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "MEDBENCH_MACHINE_ID": machine, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, check=check, **kw)


def comparable(metrics: dict) -> dict:
    """A train result's metrics without the wall-clock figures, which differ run to run."""
    return {k: v for k, v in metrics.items() if k not in TIMING_KEYS}
