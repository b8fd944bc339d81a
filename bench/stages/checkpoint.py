"""Checkpoints on disk: the format the trainer writes, a safe loader, and the kept model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.core.config import SuiteConfig
from bench.models import create_model

CHECKPOINT_FORMAT = 1


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint safely (``weights_only=True``); raise ValueError naming the file if unusable."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds here
        raise ValueError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a MedViT-Bench checkpoint of format {CHECKPOINT_FORMAT}")
    return ckpt


def trained_model(suite: SuiteConfig, name: str, checkpoint: Path) -> nn.Module:
    """The kept (best-on-val) weights of a checkpoint, in eval mode."""
    ckpt = load_checkpoint(checkpoint)
    model = create_model(name, suite.scale, num_classes=len(ckpt["class_names"]), in_chans=suite.data.in_chans,
                         image_size=suite.data.image_size)
    model.load_state_dict(ckpt["best_state"] or ckpt["model"])
    return model.eval()
