import math

import numpy as np
import pytest
import torch

from bench.core.config import TrainConfig
from bench.data.samples import render
from bench.data.shifts import (
    SEVERITIES,
    SHIFT_KINDS,
    SHIFT_PARAMETERS,
    apply_shift,
    describe,
    example_grid,
    parameter,
)
from bench.data.synthetic import item_rng

RANDOM_KINDS = ("bias_field", "rician_noise", "rotation")


@pytest.fixture(scope="module")
def brains() -> torch.Tensor:
    """Eight synthetic 64 px brain images as an (8, 1, 64, 64) float batch in [0, 1]."""
    labels = ("normal", "intra", "edema", "extra", "acute_infarct", "white_matter_changes", "normal", "edema")
    images = [render(label, 64, item_rng(3, i))[0] for i, label in enumerate(labels)]
    return torch.from_numpy(np.stack(images)).float().div(255)[:, None]


def _bar(n: int = 8, size: int = 64) -> torch.Tensor:
    """A long horizontal bar through the centre: its orientation shows the rotation."""
    x = torch.zeros(n, 1, size, size)
    x[:, :, size // 2 - 2:size // 2 + 2, size // 8:size - size // 8] = 1.0
    return x


def _orientation_deg(image: torch.Tensor) -> float:
    """The principal axis of a (H, W) image's intensity, in degrees from the x axis."""
    h, w = image.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64),
                            indexing="ij")
    m = image.double() / image.sum()
    cx, cy = (m * xs).sum(), (m * ys).sum()
    mxx, myy, mxy = (m * (xs - cx) ** 2).sum(), (m * (ys - cy) ** 2).sum(), (m * (xs - cx) * (ys - cy)).sum()
    return math.degrees(0.5 * math.atan2(2 * float(mxy), float(mxx - myy)))


def test_table_covers_every_kind_and_severity() -> None:
    assert SEVERITIES == (1, 2, 3)
    assert len(SHIFT_KINDS) == 7 and set(SHIFT_PARAMETERS) == set(SHIFT_KINDS)
    texts = {describe(kind, s) for kind in SHIFT_KINDS for s in SEVERITIES}
    assert len(texts) == len(SHIFT_KINDS) * len(SEVERITIES)  # every cell reads differently
    assert describe("contrast_gamma", 2) == "gamma 0.7 on [0, 1] intensities"
    assert describe("blur", 2) == f"Gaussian blur, sigma {parameter('blur', 2):g} px at 64 px"


@pytest.mark.parametrize("kind", SHIFT_KINDS)
def test_same_seed_gives_identical_output(brains: torch.Tensor, kind: str) -> None:
    first = apply_shift(brains, kind, 2, seed=5)
    assert torch.equal(first, apply_shift(brains, kind, 2, seed=5))
    assert not torch.equal(first, brains)


@pytest.mark.parametrize("kind", RANDOM_KINDS)
def test_other_seeds_draw_other_randomness(brains: torch.Tensor, kind: str) -> None:
    assert not torch.equal(apply_shift(brains, kind, 2, seed=0), apply_shift(brains, kind, 2, seed=1))


@pytest.mark.parametrize("kind", SHIFT_KINDS)
def test_an_image_does_not_depend_on_its_batch(brains: torch.Tensor, kind: str) -> None:
    whole = apply_shift(brains, kind, 3, seed=2, indices=torch.arange(8))
    order = torch.tensor([6, 1, 3])
    part = apply_shift(brains[order], kind, 3, seed=2, indices=order)
    assert torch.equal(part, whole[order])
    alone = apply_shift(brains[4:5], kind, 3, seed=2, indices=torch.tensor([4]))
    assert torch.equal(alone[0], whole[4])


@pytest.mark.parametrize("kind", RANDOM_KINDS)
def test_the_index_not_the_position_picks_the_draw(brains: torch.Tensor, kind: str) -> None:
    same = brains[:1].expand(16, -1, -1, -1)
    out = apply_shift(same, kind, 2, seed=0, indices=torch.tensor([*range(15), 0]))
    assert torch.equal(out[0], out[15])
    assert not all(torch.equal(out[0], out[i]) for i in range(1, 15))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
@pytest.mark.parametrize("kind", SHIFT_KINDS)
def test_shape_dtype_range_kept_and_input_untouched(brains: torch.Tensor, kind: str, dtype: torch.dtype) -> None:
    x = brains[:3].to(dtype)
    before = x.clone()
    out = apply_shift(x, kind, 3)
    assert out.shape == x.shape and out.dtype == dtype
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(x, before)
    assert out.data_ptr() != x.data_ptr()


def test_non_square_and_empty_batches(brains: torch.Tensor) -> None:
    wide = torch.cat([brains[:2], brains[:2]], dim=3)
    for kind in SHIFT_KINDS:
        assert apply_shift(wide, kind, 1).shape == wide.shape
        assert apply_shift(brains[:0], kind, 1).shape == (0, 1, 64, 64)


@pytest.mark.parametrize("kind", SHIFT_KINDS)
def test_distortion_grows_with_severity(brains: torch.Tensor, kind: str) -> None:
    gaps = [float((apply_shift(brains, kind, s) - brains).abs().mean()) for s in SEVERITIES]
    assert 0 < gaps[0] < gaps[1] < gaps[2], gaps


def test_unknown_kind_or_severity_is_refused(brains: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="unknown shift kind 'fog'; valid: contrast_gamma, bias_field"):
        apply_shift(brains, "fog", 1)
    for severity in (0, 4, True):
        with pytest.raises(ValueError, match="severity must be one of 1, 2, 3"):
            apply_shift(brains, "blur", severity)
    with pytest.raises(ValueError, match="unknown shift kind"):
        describe("Blur", 1)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        apply_shift(brains[0], "blur", 1)
    with pytest.raises(ValueError, match="one index per image"):
        apply_shift(brains, "blur", 1, indices=torch.arange(3))
    with pytest.raises(ValueError, match="float images"):
        apply_shift((brains * 255).to(torch.uint8), "blur", 1)


def test_rotation_goes_beyond_the_training_augmentation() -> None:
    trained = TrainConfig().rotate_deg
    x = _bar()
    assert abs(_orientation_deg(x[0, 0])) < 0.1
    for severity in SEVERITIES:
        degrees = parameter("rotation", severity)
        assert degrees > trained
        angles = [_orientation_deg(img[0]) for img in apply_shift(x, "rotation", severity)]
        assert all(abs(abs(a) - degrees) < 1.0 for a in angles), (severity, angles)
        assert min(angles) < 0 < max(angles)  # the sign is drawn per image


def test_bias_field_is_smooth_with_mean_near_one() -> None:
    flat = torch.full((8, 1, 64, 64), 0.5)
    for severity in SEVERITIES:
        field = apply_shift(flat, "bias_field", severity) / 0.5
        amplitude = parameter("bias_field", severity)
        assert (field.mean(dim=(1, 2, 3)) - 1).abs().max() < 0.1
        # the field's shape is scaled so that its largest departure from 1 is the amplitude
        torch.testing.assert_close((field - 1).abs().amax(dim=(1, 2, 3)), torch.full((8,), amplitude),
                                   atol=0.02 * amplitude, rtol=0)
        step = (field[..., 1:] - field[..., :-1]).abs().max()
        assert step < 0.05 * amplitude * 2 * math.pi  # low frequency: tiny changes between neighbours


def test_rician_noise_scales_with_the_foreground() -> None:
    x = torch.zeros(4, 1, 64, 64)
    x[:, :, :, 32:] = 0.6  # half tissue, half empty background
    out = apply_shift(x, "rician_noise", 3)
    sigma = parameter("rician_noise", 3) * 0.6
    # Over an empty background the magnitude of complex noise is Rayleigh: mean sigma * sqrt(pi / 2).
    background = out[..., :32].mean()
    assert abs(float(background) - sigma * math.sqrt(math.pi / 2)) < 0.05 * sigma
    assert abs(float(out[..., 32:].std()) - sigma) < 0.1 * sigma
    darker = apply_shift(x / 2, "rician_noise", 3)
    assert torch.allclose(darker, out / 2, atol=1e-6)  # sigma follows the foreground intensity


@pytest.mark.parametrize("size", [64, 128])
def test_blur_sigma_scales_with_image_width(size: int) -> None:
    point = torch.zeros(1, 1, size, size)
    point[..., size // 2, size // 2] = 1.0
    out = apply_shift(point, "blur", 3)[0, 0].double()
    cols = torch.arange(size, dtype=torch.float64)
    profile = out.sum(0) / out.sum()
    spread = math.sqrt(float((profile * (cols - size // 2) ** 2).sum()))
    assert abs(spread - parameter("blur", 3) * size / 64) < 0.02


def test_low_resolution_loses_more_detail_at_each_severity() -> None:
    speckle = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))  # detail at every scale
    spreads = [float(apply_shift(speckle, "low_resolution", s).std()) for s in SEVERITIES]
    assert spreads[0] < 0.5 * float(speckle.std()) and spreads[0] > spreads[1] > spreads[2]
    assert abs(float(apply_shift(speckle, "low_resolution", 3).mean() - speckle.mean())) < 0.01


def test_example_grid_shows_every_kind_and_severity(brains: torch.Tensor) -> None:
    image = brains[1]
    grid = example_grid(image, gap=2)
    rows, cols = len(SHIFT_KINDS), len(SEVERITIES) + 1
    assert grid.dtype == torch.uint8 and grid.shape == (rows * 66 - 2, cols * 66 - 2)
    clean = (image[0] * 255).round().to(torch.uint8)
    for row in range(rows):
        tile = lambda col: grid[row * 66:row * 66 + 64, col * 66:col * 66 + 64]  # noqa: E731
        assert torch.equal(tile(0), clean)
        assert not torch.equal(tile(3), clean)
    assert int(grid[64:66].max()) == 0  # the gap between rows is black
    blur_row = SHIFT_KINDS.index("blur")
    expected = (apply_shift(brains[1:2], "blur", 3)[0, 0] * 255).round().to(torch.uint8)
    assert torch.equal(grid[blur_row * 66:blur_row * 66 + 64, 3 * 66:3 * 66 + 64], expected)
