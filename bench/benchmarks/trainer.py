"""``medbench bench-trainer``: our trainer's throughput against a minimal PyTorch loop.

Both train the same architecture with the same batch size and optimizer on the same
in-memory tensors. Augmentation is off for the trainer so that both do the same work;
what remains is the trainer's own cost (sampler, loader, scheduler, clipping, checks).
Epochs alternate between the two so that machine noise hits both alike.
"""

from __future__ import annotations

import dataclasses
import logging
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
