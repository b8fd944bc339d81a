"""Checkpoints load with ``torch.load(weights_only=True)``: what the trainer saves loads that way,
and a file that would need pickle's arbitrary objects is refused, naming it."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
import torch

from bench.stages.schedule import cosine_with_warmup
from bench.stages.checkpoint import CHECKPOINT_FORMAT, load_checkpoint


class _NotAllowed:
    """Any class outside torch's weights-only allow-list."""


def _trainer_like_state() -> dict:
    """What ``Trainer.save_checkpoint`` writes, built from the same optimizer and scheduler kinds."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: cosine_with_warmup(step, 2, 8))
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    scheduler.step()
    return {"format": CHECKPOINT_FORMAT, "fingerprint": "abc", "model_name": "m", "scale": "quick", "seed": 0,
            "suite": "s", "class_names": ["a", "b", "c"], "in_chans": 1, "image_size": 32, "epoch": 0,
            "epochs": 1, "finished": True, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "history": {"epoch": [1], "train_loss": [0.5]},
            "best_score": 0.25, "best_epoch": 0, "best_state": collections.OrderedDict(model.state_dict()),
            "train_seconds": 1.5, "train_images": 10}


def test_what_the_trainer_saves_loads_weights_only(tmp_path: Path) -> None:
    path = tmp_path / "ok.pt"
    torch.save(_trainer_like_state(), path)
    ckpt = load_checkpoint(path)
    assert ckpt["class_names"] == ["a", "b", "c"] and ckpt["format"] == CHECKPOINT_FORMAT
    assert torch.equal(ckpt["model"]["0.weight"], ckpt["best_state"]["0.weight"])


def test_a_checkpoint_needing_arbitrary_objects_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "payload": _NotAllowed()}, path)
    with pytest.raises(ValueError, match=r"evil.pt: unreadable checkpoint \(UnpicklingError"):
        load_checkpoint(path)


def test_a_foreign_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(ValueError, match="not a MedViT-Bench checkpoint"):
        load_checkpoint(path)
