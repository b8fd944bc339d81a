"""The learning-rate schedules of the recipe, and the budget study's longer recipe.

``cosine``: linear warm-up, then a cosine decay over the epoch cap (timm's cool-down at
the end). ``plateau``: linear warm-up, then a constant rate until validation plateaus,
then a short cosine decay (the plateau, not the schedule, ends the constant phase). The
budget study (``medbench budget``) trains the same recipe at twice every length.
"""

from __future__ import annotations

import dataclasses
import math

from bench.core.config import SuiteConfig, TrainConfig

# The budget study trains a suite's first seed again with this many times every length of its recipe.
BUDGET_FACTOR = 2


def budget_suite(suite: SuiteConfig) -> SuiteConfig:
    """The same recipe at BUDGET_FACTOR x its length: the cap, the least epochs, the patience
    (so the constant-LR phase waits that much longer for a gain), the decay and cool-down.
    Only raising the cap would change nothing in a run that plateaued below it."""
    t, k = suite.train, BUDGET_FACTOR
    longer = dataclasses.replace(t, epochs=t.epochs * k, min_epochs=t.min_epochs * k, patience=t.patience * k,
                                 decay_epochs=t.decay_epochs * k, cooldown_epochs=t.cooldown_epochs * k)
    return dataclasses.replace(suite, train=longer)


def cosine_with_warmup(step: int, warmup_steps: int, decay_steps: int, min_ratio: float = 0.0) -> float:
    """LR multiplier: linear warm-up to 1, cosine decay to ``min_ratio`` over the next
    ``decay_steps``, then ``min_ratio`` (a cool-down, as timm's ``cooldown_epochs``)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, decay_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def plateau_then_decay(step: int, warmup_steps: int, decay_start: int | None, decay_steps: int,
                       min_ratio: float = 0.0) -> float:
    """LR multiplier: linear warm-up to 1, constant until ``decay_start`` (None: not yet),
    then a cosine decay to ``min_ratio`` over ``decay_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if decay_start is None or step < decay_start:
        return 1.0
    return cosine_with_warmup(step - decay_start, 0, decay_steps, min_ratio)


def lr_multiplier(cfg: TrainConfig, step: int, steps_per_epoch: int, decay_start_epoch: int | None) -> float:
    """The recipe's LR multiplier at an optimizer step; under the plateau schedule the decay
    starts at ``decay_start_epoch`` (None: the plateau has not come yet)."""
    warmup = steps_per_epoch * cfg.warmup_epochs
    if cfg.schedule == "plateau":
        start = None if decay_start_epoch is None else decay_start_epoch * steps_per_epoch
        return plateau_then_decay(step, warmup, start, steps_per_epoch * cfg.decay_epochs, cfg.min_lr_ratio)
    decay = steps_per_epoch * max(1, cfg.epochs - cfg.cooldown_epochs - cfg.warmup_epochs)
    return cosine_with_warmup(step, warmup, decay, cfg.min_lr_ratio)
