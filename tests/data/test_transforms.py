import torch

from bench.core.config import TrainConfig
from bench.data.transforms import augment_batch


def _batch(n: int = 16) -> torch.Tensor:
    x = torch.zeros(n, 1, 32, 32)
    x[:, :, 8:24, 4:12] = 1.0  # a bar on the left: mirroring is visible
    return x + 0.01 * torch.randn(n, 1, 32, 32, generator=torch.Generator().manual_seed(1))


def test_shape_dtype_and_determinism() -> None:
    x, cfg = _batch(), TrainConfig()
    first = augment_batch(x, cfg, torch.Generator().manual_seed(0))
    assert first.shape == x.shape and first.dtype == x.dtype
    assert torch.equal(first, augment_batch(x, cfg, torch.Generator().manual_seed(0)))
    assert not torch.allclose(first, augment_batch(x, cfg, torch.Generator().manual_seed(1)))
    assert not torch.allclose(first, x, atol=1e-3)


def test_identity_when_every_range_is_degenerate() -> None:
    x = _batch()
    cfg = TrainConfig(rotate_deg=0.0, scale_range=(1.0, 1.0), contrast_range=(1.0, 1.0))
    torch.testing.assert_close(augment_batch(x, cfg, torch.Generator().manual_seed(0)), x, atol=1e-5, rtol=0)


def test_flips_only_when_asked() -> None:
    x = _batch(32)
    still = dict(rotate_deg=0.0, scale_range=(1.0, 1.0), contrast_range=(1.0, 1.0))
    out = augment_batch(x, TrainConfig(hflip=True, **still), torch.Generator().manual_seed(0))
    flipped = [torch.allclose(o, i.flip(-1), atol=1e-5) for o, i in zip(out, x)]
    kept = [torch.allclose(o, i, atol=1e-5) for o, i in zip(out, x)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)
    rotated = augment_batch(x, TrainConfig(rotate_deg=10.0), torch.Generator().manual_seed(0))
    assert (rotated[..., :16].mean() > rotated[..., 16:].mean())  # the bar stays on the left


def test_contrast_scales_about_each_image_mean() -> None:
    x = _batch(4)
    cfg = TrainConfig(rotate_deg=0.0, scale_range=(1.0, 1.0), contrast_range=(2.0, 2.0))
    out = augment_batch(x, cfg, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.std(dim=(1, 2, 3)), 2 * x.std(dim=(1, 2, 3)), atol=1e-4, rtol=0)


def test_augment_off_returns_the_batch() -> None:
    x = _batch()
    assert augment_batch(x, TrainConfig(augment=False), torch.Generator().manual_seed(0)) is x
