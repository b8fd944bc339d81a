"""The training recipe: AdamW, warm-up, a cosine or plateau-triggered decay, label smoothing,
clipping, best-on-val.

One ``Trainer`` trains one (model, seed). It checkpoints after every epoch and resumes
from the last one, reseeding each epoch from (seed, epoch) so that a resumed run
reproduces an uninterrupted one exactly. Under ``torchrun`` it trains with
DistributedDataParallel; only rank 0 writes.
"""

from __future__ import annotations

import copy
import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset, TensorDataset
from tqdm import tqdm

from bench.core.config import SuiteConfig
from bench.core.distributed import DistContext, barrier, broadcast_object, gather_objects
from bench.core.metrics import classification_report
from bench.data import LoadedDataset
from bench.data.device_batches import DeviceSplit, device_batches, rank_shard
from bench.data.transforms import augment_batch
from bench.models import create_model
from bench.results.records import fingerprint
from bench.results.store import atomic_write
from bench.stages.checkpoint import CHECKPOINT_FORMAT, load_checkpoint
from bench.stages.schedule import lr_multiplier

log = logging.getLogger(__name__)

class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or Inf; the run stops and records this."""


def epoch_seed(seed: int, epoch: int) -> int:
    """A distinct, reproducible seed for each (run seed, epoch)."""
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**31 - 1)


# Settings that change how a run is evaluated or executed, not what it trains.
NOT_TRAINING = ("bootstrap", "num_workers")
NOT_DATA = ("load_workers",)


def config_fingerprint(suite: SuiteConfig, model_name: str, seed: int) -> str:
    """Identifies what a run trains; a checkpoint or result with another one is not reused."""
    values = suite.to_dict()
    train = {k: v for k, v in values["train"].items() if k not in NOT_TRAINING}
    data = {k: v for k, v in values["data"].items() if k not in NOT_DATA}
    return fingerprint({"model": model_name, "seed": seed, "scale": suite.scale, "data": data, "train": train})


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases, norms and embeddings (1-D params), as is standard for ViTs."""
    decay, no_decay = [], []
    for _, p in sorted(model.named_parameters()):
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


@dataclass
class History:
    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_balanced_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, list]:
        return dict(self.__dict__)


class Trainer:
    """Trains one model with one seed on in-memory tensors; see the module docstring."""

    def __init__(self, suite: SuiteConfig, model_name: str, seed: int, data: LoadedDataset,
                 checkpoint_path: Path, ctx: DistContext | None = None, progress: bool = True,
                 autocast: bool | None = None) -> None:
        self.suite, self.cfg, self.model_name, self.seed = suite, suite.train, model_name, seed
        self.data, self.checkpoint_path = data, Path(checkpoint_path)
        self.ctx = ctx or DistContext()
        self.progress = progress and self.ctx.is_main
        self.device = self.ctx.device
        self.num_classes = len(data.class_names)
        self.fingerprint = config_fingerprint(suite, model_name, seed)

        torch.manual_seed(seed)
        self.model = create_model(model_name, suite.scale, num_classes=self.num_classes,
                                  in_chans=suite.data.in_chans, image_size=suite.data.image_size).to(self.device)
        self.memory_format = torch.channels_last if self.cfg.channels_last else torch.contiguous_format
        if self.cfg.channels_last:  # otherwise the zoo's layout stays (ResNet's CPU convolutions are channels-last)
            self.model.to(memory_format=torch.channels_last)
        self.net: nn.Module = self.model
        if self.ctx.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if self.cfg.compile:
            self.net = torch.compile(self.net)  # training only: evaluation runs the eager model
        # the fused kernel updates every parameter in one launch; on CPU the multi-tensor (foreach)
        # update, which PyTorch enables by default only on CUDA, saves 2-3% of a quick step
        self.fused_adamw = self.device.type == "cuda"
        self.optimizer = torch.optim.AdamW(_param_groups(self.model, self.cfg.weight_decay), lr=self.cfg.lr,
                                           fused=self.fused_adamw or None, foreach=None if self.fused_adamw else True)
        self.device_splits = ({name: DeviceSplit(split, data.mean, data.std, self.device)
                               for name, split in data.splits.items()} if self.cfg.device_data else None)

        train = data.splits["train"]
        self.train_set = TensorDataset(train.images, train.labels)
        per_rank = math.ceil(len(self.train_set) / self.ctx.world_size)
        self.steps_per_epoch = math.ceil(per_rank / self.cfg.batch_size)
        # plateau schedule: the epochs run when the decay began, and what began it ("plateau" or "cap")
        self.decay_start_epoch: int | None = None
        self.decay_trigger: str | None = None
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_multiplier(self.cfg, step, self.steps_per_epoch, self.decay_start_epoch))

        counts = torch.bincount(train.labels, minlength=self.num_classes).double().clamp_min(1)
        self.sample_weights = (1.0 / counts)[train.labels]
        class_weight = (counts.sum() / (self.num_classes * counts)).float() if self.cfg.balance == "loss" else None
        self.criterion = nn.CrossEntropyLoss(weight=class_weight, label_smoothing=self.cfg.label_smoothing).to(self.device)
        # bf16 autocast: the recipe's ``amp_bf16`` on a GPU; elsewhere only when asked (the cost stage)
        self.autocast = self.device.type == "cuda" and self.cfg.amp_bf16 if autocast is None else autocast

        self.history = History()
        self.start_epoch = 0
        self.best_score = -1.0
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.train_seconds = 0.0
        self.train_images = 0

    # ---- checkpoints -------------------------------------------------------------------
    def resume(self) -> bool:
        """Continue from this run's checkpoint if one exists for the same config."""
        if not self.checkpoint_path.exists():
            return False
        ckpt = load_checkpoint(self.checkpoint_path)
        if ckpt.get("fingerprint") != self.fingerprint:
            log.warning("%s was trained with another config; starting afresh", self.checkpoint_path)
            return False
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.history = History(**ckpt["history"])
        self.start_epoch = ckpt["epoch"] + 1
        self.best_score, self.best_epoch = ckpt["best_score"], ckpt["best_epoch"]
        self.best_state = ckpt["best_state"]
        self.decay_start_epoch, self.decay_trigger = ckpt.get("decay_start_epoch"), ckpt.get("decay_trigger")
        self.train_seconds, self.train_images = ckpt["train_seconds"], ckpt["train_images"]
        log.info("resumed %s seed %d after epoch %d from %s", self.model_name, self.seed, ckpt["epoch"],
                 self.checkpoint_path)
        return True

    def save_checkpoint(self, epoch: int) -> None:
        if self.ctx.is_main:
            atomic_write(self.checkpoint_path, lambda fh: torch.save({
                "format": CHECKPOINT_FORMAT, "fingerprint": self.fingerprint,
                "model_name": self.model_name, "scale": self.suite.scale, "seed": self.seed,
                "suite": self.suite.name, "class_names": list(self.data.class_names),
                "in_chans": self.suite.data.in_chans, "image_size": self.suite.data.image_size,
                "epoch": epoch, "epochs": self.cfg.epochs,
                "finished": self.finished(), "decay_start_epoch": self.decay_start_epoch,
                "decay_trigger": self.decay_trigger,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "history": self.history.as_dict(),
                "best_score": self.best_score, "best_epoch": self.best_epoch, "best_state": self.best_state,
                "train_seconds": self.train_seconds, "train_images": self.train_images,
            }, fh), binary=True)
        barrier(self.ctx)

    # ---- one epoch ---------------------------------------------------------------------
    def epoch_loader(self, epoch: int) -> tuple[Iterable[tuple[torch.Tensor, torch.Tensor]], torch.Generator]:
        """This epoch's batches: a (balanced or shuffled) order drawn from (seed, epoch), sharded by rank,
        read through a DataLoader or, with ``train.device_data``, gathered on the device."""
        gen = torch.Generator().manual_seed(epoch_seed(self.seed, epoch))
        n = len(self.train_set)
        if self.cfg.balance == "sampler":
            order = torch.multinomial(self.sample_weights, n, replacement=True, generator=gen)
        else:
            order = torch.randperm(n, generator=gen)
        if self.device_splits is not None:
            index = rank_shard(order, self.ctx.rank, self.ctx.world_size)
            return device_batches(self.device_splits["train"], index, self.cfg.batch_size), gen
        epoch_set = Subset(self.train_set, order.tolist())
        sampler = DistributedSampler(epoch_set, num_replicas=self.ctx.world_size, rank=self.ctx.rank, shuffle=False)
        loader = DataLoader(epoch_set, batch_size=self.cfg.batch_size, sampler=sampler,
                            num_workers=self.cfg.num_workers)
        return loader, gen

    def train_epoch(self, epoch: int, max_steps: int | None = None) -> tuple[float, int, float]:
        """One pass over the training set (its first ``max_steps`` batches, if given):
        (mean loss, images seen, seconds)."""
        torch.manual_seed(epoch_seed(self.seed, epoch))  # dropout / drop-path draws
        start = time.perf_counter()
        loader, gen = self.epoch_loader(epoch)
        self.net.train()
        total_loss, seen = 0.0, 0
        bar = tqdm(loader, desc=f"{self.model_name} s{self.seed} e{epoch + 1}/{self.cfg.epochs}",
                   total=self.steps_per_epoch, leave=False, disable=not self.progress or not sys.stderr.isatty())
        for step, (images, labels) in enumerate(bar):
            if max_steps is not None and step >= max_steps:
                break
            images, labels = images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
            if self.cfg.augment:
                images = augment_batch(images, self.cfg, gen)
            images = images.contiguous(memory_format=self.memory_format)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                loss = self.criterion(self.net(images), labels)
            if not self.all_ranks_finite(loss):
                raise NonFiniteLossError(f"loss became non-finite at epoch {epoch + 1}, step {step + 1} "
                                         f"(this rank: {loss.item()})")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if self.cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            total_loss += loss.item() * len(labels)
            seen += len(labels)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        seconds = time.perf_counter() - start
        losses = gather_objects(self.ctx, (total_loss, seen))
        return sum(l for l, _ in losses) / max(1, sum(s for _, s in losses)), sum(s for _, s in losses), seconds

    def all_ranks_finite(self, loss: torch.Tensor) -> bool:
        """Whether the loss is finite on every rank: all stop together, none waits in backward."""
        finite = torch.isfinite(loss.detach()).float()
        if self.ctx.enabled:
            torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
        return bool(finite.item())

    @torch.inference_mode()
    def predict(self, split: str) -> tuple[np.ndarray, np.ndarray, float]:
        """Softmax probabilities, labels and mean cross-entropy over a whole split, gathered from all ranks."""
        data = self.data.splits[split]
        idx = torch.arange(self.ctx.rank, len(data.labels), self.ctx.world_size)
        self.model.eval()
        probs, losses = [], []
        for chunk in idx.split(max(1, self.cfg.batch_size * 2)):
            if self.device_splits is not None:
                images = self.device_splits[split].batch(chunk)[0]
            else:
                images = data.images[chunk].to(self.device)
            images = images.contiguous(memory_format=self.memory_format)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                logits = self.model(images).float()
            losses.append(F.cross_entropy(logits, data.labels[chunk].to(self.device), reduction="none").cpu())
            probs.append(logits.softmax(dim=1).cpu())
        local = (idx, torch.cat(probs) if probs else torch.empty(0, self.num_classes),
                 torch.cat(losses) if losses else torch.empty(0))
        order, all_probs, all_losses = (torch.cat(parts) for parts in zip(*gather_objects(self.ctx, local)))
        inverse = torch.argsort(order)
        return (all_probs[inverse].double().numpy(), data.labels.numpy(), float(all_losses.mean()))

    # ---- the whole run -----------------------------------------------------------------
    def epochs_run(self) -> int:
        return len(self.history.epoch)

    def reached_plateau(self) -> bool:
        """Validation balanced accuracy has not improved (by more than ``min_delta``) for ``patience`` epochs."""
        return self.cfg.patience > 0 and self.epochs_run() - self.best_epoch >= self.cfg.patience

    def plateaued(self) -> bool:
        """A plateau, once ``min_epochs`` have run."""
        return self.epochs_run() >= self.cfg.min_epochs and self.reached_plateau()

    def after_epoch(self) -> None:
        """Plateau schedule: start the decay at a plateau, or when the cap leaves only its length."""
        if self.cfg.schedule != "plateau" or self.decay_start_epoch is not None:
            return
        if self.plateaued():
            self.decay_start_epoch, self.decay_trigger = self.epochs_run(), "plateau"
        elif self.epochs_run() >= self.cfg.epochs - self.cfg.decay_epochs:
            self.decay_start_epoch, self.decay_trigger = self.epochs_run(), "cap"

    def finished(self) -> bool:
        """Time to stop: the cap; a plateau (cosine schedule); the end of the decay (plateau schedule)."""
        if self.epochs_run() >= self.cfg.epochs:
            return True
        if self.cfg.schedule == "plateau":
            return (self.decay_start_epoch is not None
                    and self.epochs_run() >= self.decay_start_epoch + self.cfg.decay_epochs)
        return self.plateaued()

    def fit(self) -> None:
        """Train until the schedule ends the run (see ``finished``), keeping the best epoch."""
        from sklearn.metrics import balanced_accuracy_score

        for epoch in range(self.start_epoch, self.cfg.epochs):
            if self.finished():
                break
            train_loss, seen, seconds = self.train_epoch(epoch)
            self.train_seconds += seconds
            self.train_images += seen
            probs, labels, val_loss = self.predict("val")
            if not math.isfinite(val_loss):
                raise NonFiniteLossError(f"validation loss became non-finite after epoch {epoch + 1}")
            val_bacc = float(balanced_accuracy_score(labels, probs.argmax(axis=1)))
            h = self.history
            h.epoch.append(epoch + 1)
            h.train_loss.append(round(train_loss, 6))
            h.val_loss.append(round(val_loss, 6))
            h.val_balanced_accuracy.append(round(val_bacc, 6))
            h.lr.append(self.optimizer.param_groups[0]["lr"])
            if val_bacc > self.best_score + self.cfg.min_delta or self.best_state is None:
                self.best_score, self.best_epoch = val_bacc, epoch + 1
                self.best_state = copy.deepcopy(self.model.state_dict())
            self.after_epoch()
            if self.ctx.is_main:
                log.info("%s seed %d epoch %d/%d: train loss %.4f, val loss %.4f, val bal-acc %.4f (%.0f img/s)",
                         self.model_name, self.seed, epoch + 1, self.cfg.epochs, train_loss, val_loss, val_bacc,
                         seen / max(seconds, 1e-9))
            self.save_checkpoint(epoch)
        if self.ctx.is_main and self.decay_trigger is not None:
            log.info("%s seed %d: LR decay from epoch %d (%s); stopped after epoch %d (best %d)", self.model_name,
                     self.seed, self.decay_start_epoch + 1, self.decay_trigger, self.epochs_run(), self.best_epoch)
        elif self.ctx.is_main and self.plateaued():
            log.info("%s seed %d: no val improvement for %d epochs; stopped after epoch %d (best %d)",
                     self.model_name, self.seed, self.cfg.patience, self.epochs_run(), self.best_epoch)

    def convergence(self) -> dict[str, Any]:
        """How training ended. ``converged``: under the plateau schedule, a validation plateau
        at constant LR started the decay (not the cap); under the cosine schedule, the best
        epoch lies at least ``patience`` epochs before the last (a plateau the decaying LR may
        have made). ``final_train_loss``: the last epoch's mean training loss."""
        epochs_run = self.epochs_run()
        ended = ({"schedule": "plateau", "decay_start_epoch": self.decay_start_epoch, "decay_trigger": self.decay_trigger,
                  "converged": self.decay_trigger == "plateau"}
                 if self.cfg.schedule == "plateau" else {"converged": self.reached_plateau()})
        return {
            "best_epoch": self.best_epoch,
            "epochs_run": epochs_run,
            "max_epochs": self.cfg.epochs,
            "patience": self.cfg.patience,
            "min_delta": self.cfg.min_delta,
            "optimizer_steps": epochs_run * self.steps_per_epoch,
            "final_train_loss": self.history.train_loss[-1] if self.history.train_loss else None,
            "best_val_balanced_accuracy": round(self.best_score, 6) if self.best_state is not None else None,
            **ended,
        }

    def evaluate(self) -> dict[str, Any]:
        """Test metrics of the best-on-val weights (the test split never picks anything)."""
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        probs, labels, _ = self.predict("test")
        val_probs, val_labels, _ = self.predict("val")  # the chosen weights on val: for val-only studies
        report = {}
        if self.ctx.is_main:
            report = classification_report(probs, labels, self.data.class_names,
                                           n_bootstrap=self.cfg.bootstrap, seed=self.seed)
            report.update({
                **self.convergence(),
                "curves": self.history.as_dict(),
                "test_labels": labels.tolist(),
                "val_predictions": val_probs.argmax(axis=1).astype(int).tolist(),
                "val_labels": val_labels.tolist(),
                "train_time_s": round(self.train_seconds, 3),
                "train_images_per_s": round(self.train_images / max(self.train_seconds, 1e-9), 2),
                "speed": self.speed_settings(),
            })
        return broadcast_object(self.ctx, report)

    def speed_settings(self) -> dict[str, Any]:
        """How the training steps ran: what MFU and images/s are to be read against."""
        return {
            "device": self.device.type,
            "autocast": "bfloat16" if self.autocast else None,
            "fused_adamw": self.fused_adamw,
            "channels_last": self.cfg.channels_last,
            "compiled": self.cfg.compile,
            "device_data": self.cfg.device_data,
        }

    def run(self) -> dict[str, Any]:
        self.resume()
        self.fit()
        return self.evaluate()
