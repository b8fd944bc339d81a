"""The device-resident data path (``train.device_data``), run here with CPU tensors: the same
batches as the DataLoader path, up to the uint8 rounding, and a whole run through it."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch.utils.data import DistributedSampler

from bench.core.config import load_suite
from bench.data import load_dataset
from bench.data.datasets import SplitTensors
from bench.data.device_batches import LEVELS, DeviceSplit, device_batches, rank_shard
from bench.data.synthetic import ensure_dataset
from bench.stages.train import Trainer
from engine_helpers import tiny_suite


@pytest.mark.parametrize("length", [1, 7, 12, 13])
@pytest.mark.parametrize("world_size", [1, 2, 3, 5])
def test_rank_shard_takes_what_distributed_sampler_takes(length, world_size):
    order = torch.randperm(100)[:length]
    for rank in range(world_size):
        sampler = DistributedSampler(range(length), num_replicas=world_size, rank=rank, shuffle=False)
        assert rank_shard(order, rank, world_size).tolist() == [int(order[i]) for i in sampler]


def test_rank_shard_refuses_a_rank_outside_the_world():
    with pytest.raises(ValueError, match="rank 2 is outside a world of 2"):
        rank_shard(torch.arange(4), 2, 2)


def _split(n: int = 10, chans: int = 1, mean: float = 0.3, std: float = 0.2) -> SplitTensors:
    pixels = torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    images = ((pixels - mean) / std).repeat(1, chans, 1, 1)
    return SplitTensors(images=images, labels=torch.arange(n) % 3, paths=[f"{i}.png" for i in range(n)])


@pytest.mark.parametrize("chans", [1, 3])
def test_device_split_holds_uint8_and_gives_the_loader_normalisation_back(chans):
    split = _split(chans=chans)
    held = DeviceSplit(split, mean=0.3, std=0.2, device="cpu")
    assert held.images.dtype == torch.uint8
    assert held.nbytes == split.images.numel()  # one byte per pixel, a quarter of float32
    index = torch.tensor([4, 0, 4, 9])
    images, labels = held.batch(index)
    assert images.dtype == torch.float32 and images.shape == (4, chans, 8, 8)
    assert labels.tolist() == split.labels[index].tolist()
    # the only difference is the rounding to 1/255 of the [0, 1] range, in normalised units
    worst = (images - split.images[index]).abs().max().item()
    assert 0 < worst <= 0.5 / LEVELS / 0.2 + 1e-6


def test_device_batches_are_the_index_in_order_with_a_short_last_batch():
    held = DeviceSplit(_split(n=10), mean=0.3, std=0.2, device="cpu")
    index = torch.tensor([9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    batches = list(device_batches(held, index, batch_size=4))
    assert [len(labels) for _, labels in batches] == [4, 4, 2]
    assert torch.cat([labels for _, labels in batches]).tolist() == held.labels[index].tolist()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("device-data")
    suite = load_suite(str(tiny_suite(tmp, tmp / "dataset", epochs=2, num_images=120)))
    ensure_dataset(suite.data)
    return suite, load_dataset(suite.data, progress=False)


def _trainer(suite, data, tmp_path, name: str, **train) -> Trainer:
    suite = dataclasses.replace(suite, train=dataclasses.replace(suite.train, **train))
    return Trainer(suite, "pyramid_softmax", 0, data, tmp_path / f"{name}.pt", progress=False)


def test_device_path_trains_on_the_dataloader_paths_batches(tiny, tmp_path):
    suite, data = tiny
    loader = _trainer(suite, data, tmp_path, "loader")
    held = _trainer(suite, data, tmp_path, "held", device_data=True)
    tolerance = 0.5 / LEVELS / data.std + 1e-5
    for epoch in range(2):
        a_batches, _ = loader.epoch_loader(epoch)
        b_batches, _ = held.epoch_loader(epoch)
        pairs = list(zip(a_batches, b_batches, strict=True))
        assert len(pairs) == loader.steps_per_epoch
        for (a_images, a_labels), (b_images, b_labels) in pairs:
            assert torch.equal(a_labels, b_labels)
            assert (a_images - b_images).abs().max().item() <= tolerance


def test_a_run_on_the_device_path_with_channels_last_records_its_speed_settings(tiny, tmp_path):
    suite, data = tiny
    trainer = _trainer(suite, data, tmp_path, "fast", device_data=True, channels_last=True)
    report = trainer.run()
    assert report["speed"] == {"device": "cpu", "autocast": None, "fused_adamw": False, "channels_last": True,
                               "compiled": False, "device_data": True}
    assert report["epochs_run"] == 2 and all(map(torch.isfinite, torch.tensor(report["curves"]["train_loss"])))
    assert report["optimizer_steps"] == 2 * trainer.steps_per_epoch


def test_speed_settings_enter_the_fingerprint_only_when_set(tiny):
    from bench.stages.train import config_fingerprint

    suite, _ = tiny
    assert "device_data" not in suite.to_dict()["train"]  # older results keep their fingerprints
    fast = dataclasses.replace(suite, train=dataclasses.replace(suite.train, device_data=True))
    assert fast.to_dict()["train"]["device_data"] is True
    assert config_fingerprint(fast, "vit", 0) != config_fingerprint(suite, "vit", 0)


def test_compile_wraps_only_the_training_network(tiny, tmp_path):
    suite, data = tiny
    trainer = _trainer(suite, data, tmp_path, "compiled", compile=True)
    assert trainer.net is not trainer.model and hasattr(trainer.net, "_orig_mod")
    assert trainer.speed_settings()["compiled"] is True
