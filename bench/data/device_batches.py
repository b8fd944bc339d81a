"""Training batches drawn from a split held on the training device (``train.device_data``).

A GPU step at paper scale takes milliseconds, so copying every batch from host memory and
collating it sample by sample through a DataLoader can bound training. ``DeviceSplit``
holds a split's images once on the device as uint8 (a quarter of float32: 20,000 images
at 224 px are 1 GB) and gathers, dequantises and normalises each batch there; the trainer
then augments it on the same device.

The batch order is the DataLoader path's for the same (seed, epoch), sharded across ranks
the way ``DistributedSampler(shuffle=False)`` shards it, so both paths train on the same
images in the same order. They differ only by the uint8 rounding, at most half a grey
level of the [0, 1] pixels.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from bench.data.datasets import SplitTensors

LEVELS = 255


class DeviceSplit:
    """One split's images (uint8) and labels on ``device``; ``batch(index)`` gives normalised floats."""

    def __init__(self, split: SplitTensors, mean: float, std: float, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self.mean, self.std = float(mean), float(std)
        # the loader normalised [0, 1] pixels with the train statistics; undo that, then quantise
        pixels = split.images * self.std + self.mean
        self.images = (pixels * LEVELS).round_().clamp_(0, LEVELS).to(torch.uint8).to(self.device)
        self.labels = split.labels.to(self.device)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def nbytes(self) -> int:
        return self.images.numel() * self.images.element_size()

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, labels) of ``index``: float32 images normalised as the loader normalises them."""
        index = index.to(self.device)
        images = self.images[index].float().mul_(1.0 / LEVELS).sub_(self.mean).div_(self.std)
        return images, self.labels[index]


def rank_shard(order: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """This rank's share of ``order``, as ``DistributedSampler(shuffle=False, drop_last=False)``
    takes it: the order wrapped round to a multiple of ``world_size``, then every ``world_size``-th."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside a world of {world_size}")
    total = math.ceil(len(order) / world_size) * world_size
    padded = order.repeat(math.ceil(total / max(1, len(order))))[:total] if len(order) else order
    return padded[rank:total:world_size]


def device_batches(split: DeviceSplit, index: torch.Tensor, batch_size: int
                   ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The batches of ``index`` in order, the last one short, as a DataLoader with ``drop_last=False`` gives them."""
    for chunk in index.split(batch_size):
        yield split.batch(chunk)
