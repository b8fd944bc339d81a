"""``medbench bench-trainer``: our trainer's throughput against a minimal PyTorch loop;
``medbench bench-step``: where a training step's time goes (torch.profiler).

Both train the same architecture with the same batch size and optimizer on the same
in-memory tensors. Augmentation is off for the trainer so that both do the same work;
what remains is the trainer's own cost (sampler, loader, scheduler, clipping, checks).
Epochs alternate between the two so that machine noise hits both alike.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from bench.core.config import SuiteConfig
from bench.data import load_dataset
from bench.models import create_model

log = logging.getLogger(__name__)


def minimal_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                  labels: torch.Tensor, batch_size: int, generator: torch.Generator) -> int:
    """The textbook loop: shuffle, forward, loss, backward, step. Returns images seen."""
    model.train()
    order = torch.randperm(len(labels), generator=generator)
    for batch in order.split(batch_size):
        loss = F.cross_entropy(model(images[batch]), labels[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return len(labels)


def run_trainer_bench(suite: SuiteConfig, model_name: str, epochs: int = 3) -> dict[str, Any]:
    """Median images/s of both over ``epochs`` alternating epochs (after one warm-up each)."""
    from bench.stages.train import Trainer

    suite = dataclasses.replace(suite, train=dataclasses.replace(suite.train, augment=False, epochs=epochs + 1))
    data = load_dataset(suite.data)
    train = data.splits["train"]
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(suite, model_name, 0, data, Path(tmp) / "bench.pt", progress=False)
        torch.manual_seed(0)
        model = create_model(model_name, suite.scale, num_classes=len(data.class_names),
                             in_chans=suite.data.in_chans, image_size=suite.data.image_size)
        optimizer = torch.optim.AdamW(model.parameters(), lr=suite.train.lr, weight_decay=suite.train.weight_decay)
        gen = torch.Generator().manual_seed(0)
        ours, minimal = [], []
        for epoch in range(epochs + 1):
            start = time.perf_counter()
            _, seen, _ = trainer.train_epoch(epoch)
            ours.append(seen / (time.perf_counter() - start))
            start = time.perf_counter()
            seen = minimal_epoch(model, optimizer, train.images, train.labels, suite.train.batch_size, gen)
            minimal.append(seen / (time.perf_counter() - start))
    result = {
        "model": model_name, "batch_size": suite.train.batch_size, "threads": torch.get_num_threads(),
        "trainer_images_per_s": statistics.median(ours[1:]), "minimal_images_per_s": statistics.median(minimal[1:]),
    }
    result["ratio"] = result["trainer_images_per_s"] / result["minimal_images_per_s"]
    log.info("trainer %.1f img/s, minimal loop %.1f img/s, ratio %.3f (model %s, batch %d, %d threads)",
             result["trainer_images_per_s"], result["minimal_images_per_s"], result["ratio"], model_name,
             result["batch_size"], result["threads"])
    return result


# Self CPU time of a training step, by what the op does: the first pattern that matches
# the op's name (without its namespace) names its category.
STEP_CATEGORIES = (
    ("attention kernels", r"scaled_dot_product|flash_attention"),
    ("matmul", r"^(mm|addmm|bmm|baddbmm|linear|matmul)(_|$)"),
    ("convolution", r"conv"),
    ("optimizer", r"^_foreach|adamw|Optimizer|addcdiv|lerp|sqrt|clip_grad|norm$|vector_norm"),
    ("normalisation", r"layer_norm|batch_norm|group_norm"),
    ("softmax", r"softmax"),
    ("activations", r"gelu|relu|silu|sigmoid|tanh"),
    ("dtype casts and copies", r"^(_to_copy|to|copy_|clone|contiguous)$"),
    ("reshapes and indexing", r"permute|transpose|cat|stack|index|gather|roll|pad|unfold|im2col"),
)


def step_category(op: str) -> str:
    name = op.split("::", 1)[-1]
    return next((category for category, pattern in STEP_CATEGORIES if re.search(pattern, name)),
                "elementwise and other")


def profile_training_step(suite: SuiteConfig, model_name: str, dtype: str = "bfloat16", steps: int = 3,
                          top: int = 15) -> dict[str, Any]:
    """torch.profiler over ``steps`` training steps of the cost stage's trainer (the recipe at
    ``cost.batch_size``), after two warm-up steps: self CPU time per category and the top ops.
    The matmul and convolution share is the part of the step that can run near the matmul peak."""
    from torch.profiler import ProfilerActivity, profile

    from bench.stages.cost import cost_dataset, suite_for_cost
    from bench.stages.train import Trainer

    suite = suite_for_cost(suite)
    images = suite.train.batch_size * steps
    data = cost_dataset(suite, max(images, 2 * suite.train.batch_size))
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(suite, model_name, 0, data, Path(tmp) / "step.pt", progress=False,
                          autocast=dtype == "bfloat16")
        trainer.train_epoch(0, max_steps=2)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            _, seen, seconds = trainer.train_epoch(1, max_steps=steps)
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total_us = sum(e.self_cpu_time_total for e in events)
    by_category: dict[str, float] = {}
    for e in events:
        key = step_category(e.key)
        by_category[key] = by_category.get(key, 0.0) + e.self_cpu_time_total
    result = {
        "model": model_name, "dtype": dtype, "batch_size": suite.train.batch_size, "steps": steps,
        "threads": torch.get_num_threads(), "images_per_s": seen / seconds,
        "share_by_category": {k: v / total_us for k, v in sorted(by_category.items(), key=lambda kv: -kv[1])},
        "top_ops": [{"op": e.key, "calls": e.count, "self_ms_per_step": e.self_cpu_time_total / 1e3 / steps,
                     "share": e.self_cpu_time_total / total_us}
                    for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]],
    }
    log.info("%s %s training step (batch %d, %d threads, profiled): %.1f img/s", model_name, dtype,
             result["batch_size"], result["threads"], result["images_per_s"])
    for category, share in result["share_by_category"].items():
        log.info("  %-22s %5.1f%% of self CPU time", category, 100 * share)
    for op in result["top_ops"]:
        log.info("  %-40s %6d calls %9.1f ms/step %5.1f%%", op["op"], op["calls"], op["self_ms_per_step"],
                 100 * op["share"])
    return result
