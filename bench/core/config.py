"""Config dataclasses, validated on construction, and suite files (``suites/*.toml``)."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
SUITES_DIR = REPO_ROOT / "suites"

DATA_KINDS = ("synthetic", "folder", "dicom", "manifest", "radimagenet")
BAD_FILE_POLICIES = ("skip", "fail")
# A RadImageNet subset such as "MR/brain": folder names under radiology_ai/, no ".." or leading "/"
_SUBSET_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_ -]*(/[A-Za-z0-9_][A-Za-z0-9_ -]*)*")
# Fields added after results were first recorded: left out of the config while at their
# defaults, so the fingerprints of existing results and checkpoints stay what they were.
_DATA_FIELDS_OMITTED_AT_DEFAULT = {"subset": "", "on_bad_file": "skip", "load_workers": 0, "frames": "middle",
                                  "max_pixels": 0}
_TRAIN_FIELDS_OMITTED_AT_DEFAULT = {"device_data": False, "channels_last": False, "compile": False,
                                    "schedule": "cosine", "decay_epochs": 0}
BALANCE_MODES = ("none", "sampler", "loss")
SCHEDULES = ("cosine", "plateau")
DTYPES = ("float32", "bfloat16")
RUNTIMES = ("torch", "onnxruntime", "torch_onednn")


class ConfigError(ValueError):
    """A config value is out of range or of the wrong kind; the message says which."""


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise ConfigError(message)


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how big they are fed to the model."""

    kind: str = "synthetic"
    root: str = "data/datasets/synthetic-quick"
    image_size: int = 64
    in_chans: int = 1
    num_images: int = 3000  # synthetic only: how many to generate
    generator_size: int = 128  # synthetic only: resolution of the stored PNGs
    seed: int = 0  # synthetic only: generator seed
    # train/val/test shares where the source has no split of its own; evaluation is cheap,
    # so val and test may be large enough to resolve small differences between models
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    subset: str = ""  # radimagenet only: the part of radiology_ai/ to use, e.g. "MR/brain"; "" uses all
    on_bad_file: str = "skip"  # an image the reader rejects: "skip" it (and record it) or "fail" the load
    load_workers: int = 0  # processes reading the images: 0 one per core (up to 8), 1 in the main process
    # multi-frame files (DICOM, TIFF): "middle" frame, "all" (each frame a sample, in its file's split) or an index
    frames: int | str = "middle"
    max_pixels: int = 0  # a file declaring more pixels (all frames read) is refused unread; 0: 64 Mi

    def __post_init__(self) -> None:
        _check(self.kind in DATA_KINDS, f"data.kind must be one of {DATA_KINDS}, got {self.kind!r}")
        _check(self.on_bad_file in BAD_FILE_POLICIES,
               f"data.on_bad_file must be one of {BAD_FILE_POLICIES}, got {self.on_bad_file!r}")
        _check(self.subset == "" or bool(_SUBSET_PATTERN.fullmatch(self.subset)),
               f"data.subset must be folder names under radiology_ai/ joined by '/' (e.g. 'MR/brain'), "
               f"got {self.subset!r}")
        _check(self.subset == "" or self.kind == "radimagenet",
               f"data.subset applies to data.kind 'radimagenet' only, got kind {self.kind!r}")
        _check(self.frames in ("middle", "all") or (type(self.frames) is int and self.frames >= 0),
               f"data.frames must be 'middle', 'all' or a frame index >= 0, got {self.frames!r}")
        _check(self.max_pixels >= 0, f"data.max_pixels must be >= 0 (0: the readers' 64 Mi), got {self.max_pixels}")
        _check(self.load_workers >= 0, f"data.load_workers must be >= 0 (0: one per core), got {self.load_workers}")
        _check(self.image_size >= 16, f"data.image_size must be >= 16, got {self.image_size}")
        _check(self.in_chans in (1, 3), f"data.in_chans must be 1 or 3, got {self.in_chans}")
        _check(self.num_images >= 100, f"data.num_images must be >= 100, got {self.num_images}")
        _check(self.generator_size >= 32, f"data.generator_size must be >= 32, got {self.generator_size}")
        _check(len(self.split_fractions) == 3 and min(self.split_fractions) > 0
               and abs(sum(self.split_fractions) - 1.0) < 1e-6,
               f"data.split_fractions must be three positive shares summing to 1, got {self.split_fractions}")

    @property
    def root_path(self) -> Path:
        root = Path(self.root)
        return root if root.is_absolute() else REPO_ROOT / root

    def to_dict(self) -> dict[str, Any]:
        return _without_defaults(dataclasses.asdict(self), _DATA_FIELDS_OMITTED_AT_DEFAULT)


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe: recorded in full in every train result.

    ``epochs`` is a cap. A validation plateau is ``patience`` epochs (not before ``min_epochs``)
    in which balanced accuracy gained no more than ``min_delta``. Two schedules:

    - ``cosine``: the LR schedule spans the cap (linear warm-up, cosine decay to
      ``min_lr_ratio`` x ``lr``, then ``cooldown_epochs`` at that floor) and a plateau stops
      the run; the decay itself flattens the curve, so a stop may be the schedule's doing.
    - ``plateau``: after warm-up the LR stays constant until a plateau, then decays (cosine,
      to ``min_lr_ratio`` x ``lr``) over ``decay_epochs`` and the run ends. The plateau is the
      model's, not the schedule's; a cap reached first starts the decay instead, and the run
      records that the cap, not a plateau, ended it. Raising the cap never changes a run that
      plateaued below it.
    """

    epochs: int = 10
    schedule: str = "cosine"
    decay_epochs: int = 0  # plateau schedule: the decay after the plateau
    patience: int = 0
    min_delta: float = 0.0  # a val gain at or below this is a tie: the earlier epoch stays the best
    min_epochs: int = 0  # never stop before this: early plateaus precede the late gains of transformers
    # the last epochs of the cap train at min_lr_ratio x lr, after the cosine decay; a cap too
    # short for warm-up and cool-down keeps one epoch of decay and loses the cool-down
    cooldown_epochs: int = 0
    min_lr_ratio: float = 0.0
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: int = 1
    label_smoothing: float = 0.1
    grad_clip: float = 1.0
    balance: str = "sampler"  # "none" | "sampler" (class-balanced sampling) | "loss" (class-weighted)
    augment: bool = True
    hflip: bool = False  # off: some classes depend on the hemisphere
    rotate_deg: float = 10.0
    scale_range: tuple[float, float] = (0.9, 1.1)
    contrast_range: tuple[float, float] = (0.8, 1.2)
    bootstrap: int = 1000
    num_workers: int = 0
    amp_bf16: bool = True  # only takes effect on GPU
    # Speed settings, each recorded with the run (metrics.speed). device_data: the splits held
    # on the training device as uint8, batches gathered and augmented there (no DataLoader).
    device_data: bool = False
    channels_last: bool = False
    compile: bool = False  # torch.compile the training forward and backward

    def to_dict(self) -> dict[str, Any]:
        return _without_defaults(dataclasses.asdict(self), _TRAIN_FIELDS_OMITTED_AT_DEFAULT)

    def __post_init__(self) -> None:
        _check(self.epochs >= 1, f"train.epochs must be >= 1, got {self.epochs}")
        _check(self.batch_size >= 1, f"train.batch_size must be >= 1, got {self.batch_size}")
        _check(self.lr > 0, f"train.lr must be > 0, got {self.lr}")
        _check(self.weight_decay >= 0, f"train.weight_decay must be >= 0, got {self.weight_decay}")
        _check(self.patience >= 0, f"train.patience must be >= 0 (0: no early stopping), got {self.patience}")
        _check(0 <= self.min_delta < 1, f"train.min_delta must be in [0, 1), got {self.min_delta}")
        _check(self.min_epochs >= 0, f"train.min_epochs must be >= 0, got {self.min_epochs}")
        _check(self.schedule in SCHEDULES, f"train.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        _check(self.decay_epochs >= 0, f"train.decay_epochs must be >= 0, got {self.decay_epochs}")
        # a cap shorter than the decay (a smoke test's --set train.epochs=2) decays from the first epoch;
        # patience 0 watches for no plateau, so the cap alone starts the decay
        _check(self.schedule != "plateau" or self.decay_epochs >= 1,
               f"train.schedule 'plateau' needs decay_epochs >= 1, got {self.decay_epochs}")
        _check(self.cooldown_epochs >= 0, f"train.cooldown_epochs must be >= 0, got {self.cooldown_epochs}")
        _check(0 <= self.min_lr_ratio < 1, f"train.min_lr_ratio must be in [0, 1), got {self.min_lr_ratio}")
        _check(0 <= self.warmup_epochs < self.epochs or self.epochs == 1,
               f"train.warmup_epochs must be in [0, epochs), got {self.warmup_epochs}")
        _check(0 <= self.label_smoothing < 1, f"train.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        _check(self.grad_clip >= 0, f"train.grad_clip must be >= 0, got {self.grad_clip}")
        _check(self.balance in BALANCE_MODES, f"train.balance must be one of {BALANCE_MODES}, got {self.balance!r}")
        _check(0 <= self.rotate_deg <= 45, f"train.rotate_deg must be in [0, 45], got {self.rotate_deg}")
        for name in ("scale_range", "contrast_range"):
            lo, hi = getattr(self, name)
            _check(0 < lo <= hi, f"train.{name} must be (lo, hi) with 0 < lo <= hi, got {(lo, hi)}")
        _check(self.bootstrap >= 0, f"train.bootstrap must be >= 0, got {self.bootstrap}")


@dataclass(frozen=True)
class ProfileConfig:
    """How latency, memory and scaling are measured."""

    batch_sizes: tuple[int, ...] = (1, 32)
    warmup: int = 10
    runs: int = 30
    # bfloat16 on a GPU, and on a CPU with native bf16 instructions (bench.stages.profile_run.dtypes_for)
    dtypes: tuple[str, ...] = ("float32", "bfloat16")
    resolutions: tuple[int, ...] = (64, 128, 224)
    sweep_runs: int = 10
    throughput_runs: int = 0  # timed runs at batch sizes above 1 (0: ``runs``); their p50 is reported
    threads: tuple[int, ...] = ()  # CPU thread counts measured (empty: the process's own); batch 1 at each
    rounds: int = 1  # CPU: interleaved rounds over every configuration (bench.stages.rounds)
    # and on the CPU: "onnxruntime" (ONNX Runtime float32 and int8), "torch_onednn" (PyTorch float32
    # with weights packed once for oneDNN, bench.models.onednn_packed)
    runtimes: tuple[str, ...] = ("torch",)
    # per-device overrides of the fields above: [profile.cpu] and [profile.cuda] in a suite file
    cpu: dict[str, Any] = field(default_factory=dict)
    cuda: dict[str, Any] = field(default_factory=dict)

    def on(self, device: str) -> "ProfileConfig":
        """These settings with ``device``'s overrides applied."""
        overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in getattr(self, device, {}).items()}
        return dataclasses.replace(self, **overrides, cpu={}, cuda={})

    def __post_init__(self) -> None:
        for device in ("cpu", "cuda"):
            unknown = sorted(set(getattr(self, device)) - {f.name for f in dataclasses.fields(self)} - {"cpu", "cuda"})
            _check(not unknown, f"profile.{device}: unknown keys {unknown}")
            if getattr(self, device):
                self.on(device)  # validates the overridden settings
        _check(self.throughput_runs == 0 or self.throughput_runs >= 3,
               f"profile.throughput_runs must be 0 or >= 3, got {self.throughput_runs}")
        _check(all(t >= 1 for t in self.threads), f"profile.threads must be >= 1, got {self.threads}")
        _check(self.rounds >= 1, f"profile.rounds must be >= 1, got {self.rounds}")
        _check("torch" in self.runtimes and set(self.runtimes) <= set(RUNTIMES),
               f"profile.runtimes must include torch, among {', '.join(RUNTIMES)}, got {self.runtimes}")
        _check(len(self.batch_sizes) >= 1 and all(b >= 1 for b in self.batch_sizes),
               f"profile.batch_sizes must be positive, got {self.batch_sizes}")
        _check(self.warmup >= 1, f"profile.warmup must be >= 1, got {self.warmup}")
        _check(self.runs >= 30, f"profile.runs must be >= 30 for stable percentiles, got {self.runs}")
        _check(all(d in DTYPES for d in self.dtypes), f"profile.dtypes must be among {DTYPES}, got {self.dtypes}")
        _check(all(r >= 16 for r in self.resolutions), f"profile.resolutions must be >= 16, got {self.resolutions}")
        _check(self.sweep_runs >= 3, f"profile.sweep_runs must be >= 3, got {self.sweep_runs}")


@dataclass(frozen=True)
class CostConfig:
    """What training and inference cost on this machine (``bench.stages.cost``): images/s, MFU
    against the machine's matmul peak, CPU-seconds per image and an energy estimate.

    ``images`` > 0 turns it on: ``medbench profile`` then also times the suite's own trainer
    (its augmentation, optimizer and clipping) for one epoch of that many synthetic images at
    the suite's size, after ``warmup_batches``, and forward passes over the same images, in
    every dtype (bf16 under autocast where the CPU has bf16 instructions) at ``threads``.

    Where no RAPL counter is readable, energy is estimated (``bench.core.energy``) from
    ``watts_per_core`` (low, central, high) and ``watts_per_gb``.
    """

    images: int = 0
    batch_size: int = 32
    warmup_batches: int = 2
    threads: tuple[int, ...] = ()  # empty: the process's own thread count
    dtypes: tuple[str, ...] = ("float32", "bfloat16")
    # server CPUs' rated power per core is 3.5-7 W (e.g. EPYC 7763: 280 W / 64 cores); a cloud
    # vCPU may be half a core; rated power is not draw. Hence the wide band.
    watts_per_core: tuple[float, float, float] = (2.5, 5.0, 10.0)
    watts_per_gb: float = 0.3725  # DRAM, per GB resident (the Green Algorithms calculator's figure)

    def __post_init__(self) -> None:
        _check(self.images >= 0, f"cost.images must be >= 0 (0: off), got {self.images}")
        _check(self.batch_size >= 1, f"cost.batch_size must be >= 1, got {self.batch_size}")
        _check(self.images == 0 or self.images >= 2 * self.batch_size,
               f"cost.images must be 0 or at least two batches ({2 * self.batch_size}), got {self.images}")
        _check(self.warmup_batches >= 1, f"cost.warmup_batches must be >= 1, got {self.warmup_batches}")
        _check(all(t >= 1 for t in self.threads), f"cost.threads must be >= 1, got {self.threads}")
        _check(len(self.dtypes) >= 1 and all(d in DTYPES for d in self.dtypes),
               f"cost.dtypes must be among {DTYPES}, got {self.dtypes}")
        low, central, high = self.watts_per_core
        _check(0 < low <= central <= high, f"cost.watts_per_core must be (low, central, high) > 0 in order, "
                                           f"got {self.watts_per_core}")
        _check(self.watts_per_gb >= 0, f"cost.watts_per_gb must be >= 0, got {self.watts_per_gb}")


@dataclass(frozen=True)
class ExplainConfig:
    """The explain stage: which test images, how each attribution method runs, how it is scored."""

    gallery_per_class: int = 1  # seeded test images per class in the gallery
    gallery_misclassified: int = 10  # test images the most models got wrong, shown for every model
    faithfulness_images: int = 200  # seeded test images with a lesion mask, scored against it
    pointing_tolerance: int = 2  # pixels (at the model's input size) the mask is dilated by for the pointing game
    ig_steps: int = 32
    internal_batch_size: int = 32
    smoothgrad_samples: int = 16
    smoothgrad_noise: float = 0.15  # noise std as a share of the input's range
    sanity_images: int = 32
    sanity_threshold: float = 0.5  # |mean Spearman| with a randomised model at or above this fails the check
    # cascading randomisation (head, then each stage from the top) is judged from this step on:
    # 1 = the head alone, 2 = the head and the top stage (the head alone keeps every feature)
    sanity_judged_from: int = 2
    # what a removed pixel becomes: "lesion_free" (the same image rendered without its finding;
    # synthetic data, blur elsewhere), "blur" (of the same image) or "mean" (the image's mean)
    deletion_fill: str = "lesion_free"
    deletion_blur_sigma: float = 0.1  # the blur's sigma as a share of the image side
    mask: str = "evidence"  # scored against: "evidence" (every pixel the finding changed; synthetic) or "core"
    bootstrap: int = 1000
    seed: int = 0
    # the training seeds whose checkpoints are explained (empty: the suite's first seed). The first
    # gets the gallery and the sanity checks; every one is scored, and the suite summary gives each
    # score as a mean over them with an interval over seeds and images. Each seed costs about as
    # much as the first, so the number is a choice of cost.
    seeds: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _check(len(set(self.seeds)) == len(self.seeds) and all(s >= 0 for s in self.seeds),
               f"explain.seeds must be distinct and >= 0, got {self.seeds}")
        for key in ("gallery_per_class", "gallery_misclassified", "pointing_tolerance"):
            _check(getattr(self, key) >= 0, f"explain.{key} must be >= 0, got {getattr(self, key)}")
        for key in ("faithfulness_images", "ig_steps", "internal_batch_size", "smoothgrad_samples",
                    "sanity_images", "bootstrap", "sanity_judged_from"):
            _check(getattr(self, key) >= 1, f"explain.{key} must be >= 1, got {getattr(self, key)}")
        _check(0 < self.smoothgrad_noise <= 1, f"explain.smoothgrad_noise must be in (0, 1], got {self.smoothgrad_noise}")
        _check(0 < self.sanity_threshold <= 1,
               f"explain.sanity_threshold must be in (0, 1], got {self.sanity_threshold}")
        # black is not offered: an all-black image is itself read as a finding (arteriovenous anomaly)
        _check(self.deletion_fill in ("lesion_free", "blur", "mean"),
               f"explain.deletion_fill must be 'lesion_free', 'blur' or 'mean', got {self.deletion_fill!r}")
        _check(self.mask in ("evidence", "core"), f"explain.mask must be 'evidence' or 'core', got {self.mask!r}")
        _check(0 < self.deletion_blur_sigma <= 1,
               f"explain.deletion_blur_sigma must be in (0, 1], got {self.deletion_blur_sigma}")


@dataclass(frozen=True)
class ShiftConfig:
    """The robustness study (``medbench shift``): every kept checkpoint predicts the test split
    clean and under each acquisition shift of ``bench.data.shifts`` at each severity."""

    kinds: tuple[str, ...] = ()  # empty: every kind bench.data.shifts knows
    severities: tuple[int, ...] = (1, 2, 3)
    seed: int = 0  # the shifts' random draws (noise, bias fields, rotation signs)
    bootstrap: int = 1000

    def __post_init__(self) -> None:
        _check(len(set(self.kinds)) == len(self.kinds), f"shift.kinds must be distinct, got {self.kinds}")
        _check(len(self.severities) >= 1 and all(s in (1, 2, 3) for s in self.severities),
               f"shift.severities must be among 1, 2, 3, got {self.severities}")
        _check(self.seed >= 0, f"shift.seed must be >= 0, got {self.seed}")
        _check(self.bootstrap >= 100, f"shift.bootstrap must be >= 100, got {self.bootstrap}")


@dataclass(frozen=True)
class SuiteConfig:
    """A named set of models, seeds, data, recipe and profiling settings."""

    name: str
    scale: str
    models: tuple[str, ...]
    seeds: tuple[int, ...] = (0,)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    profile: ProfileConfig = field(default_factory=ProfileConfig)
    explain: ExplainConfig = field(default_factory=ExplainConfig)
    cost: CostConfig = field(default_factory=CostConfig)
    shift: ShiftConfig = field(default_factory=ShiftConfig)

    def __post_init__(self) -> None:
        _check(bool(self.name), "suite.name must not be empty")
        _check(self.scale in ("quick", "paper"), f"suite.scale must be 'quick' or 'paper', got {self.scale!r}")
        _check(len(self.models) >= 1, "suite.models must list at least one model")
        _check(len(self.seeds) >= 1 and len(set(self.seeds)) == len(self.seeds),
               f"suite.seeds must be distinct and non-empty, got {self.seeds}")

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "data": self.data.to_dict(), "train": self.train.to_dict()}


def _without_defaults(values: dict[str, Any], omitted: dict[str, Any]) -> dict[str, Any]:
    """Fields added after results were first recorded, left out while at their defaults."""
    return {k: v for k, v in values.items() if k not in omitted or v != omitted[k]}


_SCALAR_TYPES: dict[str, type | tuple[type, ...]] = {"int": int, "float": (int, float), "bool": bool, "str": str}


def _build(cls: type, values: dict[str, Any], where: str):  # noqa: ANN202
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    _check(not unknown, f"{where}: unknown keys {unknown}; known: {sorted(known)}")
    converted = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    for key, value in converted.items():
        wanted = _SCALAR_TYPES.get(str(known[key].type))
        # bool is an int to Python, and an int is a fine float, but nothing else converts silently
        if wanted and (not isinstance(value, wanted) or isinstance(value, bool) and wanted is not bool):
            raise ConfigError(f"{where}: {key} must be {known[key].type}, got {value!r}")
    try:
        return cls(**converted)
    except (TypeError, ValueError) as exc:  # e.g. a tuple field given a number
        raise ConfigError(f"{where}: {exc}") from None


def suite_from_dict(values: dict[str, Any], where: str = "suite") -> SuiteConfig:
    values = dict(values)
    sections = {
        "data": (DataConfig, values.pop("data", {})),
        "train": (TrainConfig, values.pop("train", {})),
        "profile": (ProfileConfig, values.pop("profile", {})),
        "explain": (ExplainConfig, values.pop("explain", {})),
        "cost": (CostConfig, values.pop("cost", {})),
        "shift": (ShiftConfig, values.pop("shift", {})),
    }
    built = {key: _build(cls, sect, f"{where} [{key}]") for key, (cls, sect) in sections.items()}
    suite = _build(SuiteConfig, values, where)
    return dataclasses.replace(suite, **built)


def load_suite(name_or_path: str) -> SuiteConfig:
    """Load ``suites/<name>.toml`` (or a path to a TOML file) into a validated config."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SUITES_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in SUITES_DIR.glob("*.toml"))
        raise ConfigError(f"no suite file {path}; known suites: {known}")
    try:
        values = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None
    return suite_from_dict(values, where=str(path))
