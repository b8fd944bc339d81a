"""Attention scaling benchmark: budgets, failures, slope fits and references, at tiny sizes."""

from __future__ import annotations


import pytest
import torch
from torch import nn

from bench.benchmarks import attention as ab
from bench.core.registry import Registry


pytestmark = pytest.mark.usefixtures("one_thread")


class Quadratic(nn.Module):
    """Stand-in with an explicit N x N map."""

    def __init__(self, dim: int, num_heads: int, *, grid_size: tuple[int, int], qkv_bias: bool = True) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)

    def forward(self, x: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return (q @ k.transpose(-2, -1)).softmax(-1) @ v


class Pointwise(nn.Module):
    """Stand-in that is linear in N."""

    def __init__(self, dim: int, num_heads: int, *, grid_size: tuple[int, int], qkv_bias: bool = True) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, dim, bias=qkv_bias)

    def forward(self, x: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
        return self.proj(x)


class RunsOutOfMemory(Pointwise):
    def forward(self, x: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
        if x.shape[1] > 16:
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")
        return super().forward(x, grid_size)


class Broken(Pointwise):
    def forward(self, x: torch.Tensor, grid_size: tuple[int, int]) -> torch.Tensor:
        raise ValueError("shapes do not line up")


@pytest.fixture
def registry() -> Registry:
    reg: Registry = Registry("attention stand-in")
    for name, cls in {"quadratic": Quadratic, "pointwise": Pointwise, "oom": RunsOutOfMemory,
                      "broken": Broken}.items():
        reg.register(name)(cls)
    return reg


def run(registry: Registry, names: list[str], **kwargs: object) -> dict:
    options = {"channels": 8, "heads": 2, "tokens": (16, 64, 256), "references": False, "warmup": 1, "runs": 3,
               "registry": registry, **kwargs}
    return ab.run_attention_bench(names, **options)


def test_layout_and_fits(registry: Registry) -> None:
    result = run(registry, ["quadratic", "pointwise"], time_budget_s=30.0)
    assert (result["channels"], result["heads"], result["batch_size"]) == (8, 2, 1)
    assert set(result["modules"]) == {"quadratic", "pointwise"}
    for entries in result["modules"].values():
        assert [e["tokens"] for e in entries] == [16, 64, 256]
        assert all(e["status"] == "ok" for e in entries)
        assert all(set(e["time_ms"]) == {"p50", "mean", "std"} and e["time_ms"]["p50"] > 0 for e in entries)
        assert all(e["peak_memory_mb"] is None or e["peak_memory_mb"] >= 0 for e in entries)
    assert result["fits"]["quadratic"]["fit_tokens"] == [16, 64, 256]
    assert result["reference"] == []
    assert result["settings"]["tokens"] == [16, 64, 256]


def test_time_budget_skips_larger_points_and_goes_on(registry: Registry) -> None:
    result = run(registry, ["quadratic", "pointwise"], time_budget_s=1e-9)
    for name in ("quadratic", "pointwise"):
        entries = result["modules"][name]
        assert [e["status"] for e in entries] == ["ok", "timeout", "timeout"], name
        assert entries[1]["time_ms"] is None and "budget" in entries[1]["message"]
    assert result["fits"] == {}  # one point is no slope


def test_memory_budget_skips_before_running(registry: Registry) -> None:
    result = run(registry, ["quadratic"], memory_budget_mb=0.0)
    statuses = [e["status"] for e in result["modules"]["quadratic"]]
    # the first point always runs; later ones are skipped when the projection is > 0 MB
    assert statuses[0] == "ok" and set(statuses[1:]) <= {"ok", "oom"}


def test_oom_and_errors_are_recorded(registry: Registry) -> None:
    result = run(registry, ["oom", "broken", "pointwise"], time_budget_s=30.0)
    assert [e["status"] for e in result["modules"]["oom"]] == ["ok", "oom", "oom"]
    assert "ran out of memory at N=64" in result["modules"]["oom"][2]["message"]
    broken = result["modules"]["broken"]
    assert [e["status"] for e in broken] == ["error"] * 3
    assert "shapes do not line up" in broken[0]["message"]
    assert [e["status"] for e in result["modules"]["pointwise"]] == ["ok"] * 3


def test_unknown_module_and_non_square_tokens(registry: Registry) -> None:
    with pytest.raises(KeyError, match="valid names"):
        run(registry, ["nope"])
    with pytest.raises(ValueError, match="perfect squares"):
        run(registry, ["pointwise"], tokens=(16, 50))


def test_slope_fit_uses_the_largest_points() -> None:
    tokens = [256, 1024, 4096, 16384]
    times = [50.0] + [3e-6 * n**2 for n in tokens[1:]]  # the smallest point is overhead-bound
    fit = ab.fit_loglog_slope(tokens, times)
    assert fit["slope"] == pytest.approx(2.0, abs=0.05)
    assert fit["fit_tokens"] == [1024, 4096, 16384]
    assert ab.fit_loglog_slope([1024], [1.0]) is None
    linear = ab.fit_loglog_slope(tokens, [0.01 * n + 0.5 for n in tokens])
    assert linear["slope"] == pytest.approx(1.0, abs=0.05)


def test_interleaving_alternates_and_flips_order() -> None:
    calls: list[str] = []
    samples = ab.interleaved_ms([lambda: calls.append("a"), lambda: calls.append("b")], runs=3, warmup=1,
                                device="cpu")
    assert calls == ["a", "b"] + ["a", "b", "b", "a", "a", "b"]
    assert [len(s) for s in samples] == [3, 3]


@pytest.mark.parametrize("name", sorted(ab.REFERENCES))
@pytest.mark.parametrize("tokens", [64, 100])  # 100: a 10 x 10 grid that Swin windows must pad
def test_references_run_at_bench_shapes(name: str, tokens: int) -> None:
    _, build = ab.REFERENCES[name]
    ref = build(16, 2, tokens)
    x = torch.randn(2, tokens, 16, requires_grad=True)
    y = ref(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_every_registered_module_runs_with_its_options() -> None:
    attention = pytest.importorskip("bench.models.attention")
    result = ab.run_attention_bench(None, channels=16, heads=2, tokens=(16, 64), reference_tokens=(64,),
                                    warmup=1, runs=3)
    assert set(result["modules"]) == set(attention.ATTENTION.names())
    for name, entries in result["modules"].items():
        assert [e["status"] for e in entries] == ["ok", "ok"], (name, entries)
    assert set(result["settings"]["module_options"]) == set(attention.ATTENTION.names())
    compared = {r["module"] for r in result["reference"]}
    assert compared == set(ab.REFERENCES) & set(result["modules"])
    assert all(r["tokens"] == 64 and r["ratio"] > 0 for r in result["reference"])


def test_every_registered_module_runs_in_bf16_and_the_run_says_so() -> None:
    attention = pytest.importorskip("bench.models.attention")
    result = ab.run_attention_bench(None, channels=16, heads=2, tokens=(16, 64), reference_tokens=(64,),
                                    warmup=1, runs=3, dtype="bfloat16")
    assert result["dtype"] == "bfloat16" and result["settings"]["flash_only"] == []  # no GPU: no flash
    for name, entries in result["modules"].items():
        assert [e["status"] for e in entries] == ["ok", "ok"], (name, entries)
    assert {r["module"] for r in result["reference"]} == set(ab.REFERENCES) & set(attention.ATTENTION.names())


def test_bf16_runs_the_forward_under_autocast_and_float32_does_not() -> None:
    seen = []
    layer = nn.Linear(4, 4)

    def forward(t: torch.Tensor) -> torch.Tensor:
        out = layer(t)
        seen.append(out.dtype)
        return out

    x, grad = torch.randn(2, 3, 4, requires_grad=True), torch.randn(2, 3, 4)
    for dtype in ("bfloat16", "float32"):
        ab._train_step(forward, layer, x, grad, dtype)()
        assert x.grad is not None and layer.weight.grad is not None
    assert seen == [torch.bfloat16, torch.float32]


def test_flash_only_applies_to_global_softmax_on_a_gpu_in_bf16() -> None:
    import contextlib

    assert isinstance(ab.flash_only("softmax", "cpu", "bfloat16"), contextlib.nullcontext)
    assert isinstance(ab.flash_only("softmax", "cuda", "float32"), contextlib.nullcontext)
    assert isinstance(ab.flash_only("swin", "cuda", "bfloat16"), contextlib.nullcontext)
    assert not isinstance(ab.flash_only("softmax", "cuda", "bfloat16"), contextlib.nullcontext)


def test_an_unknown_dtype_is_refused(registry: Registry) -> None:
    with pytest.raises(ValueError, match="dtype must be one of"):
        run(registry, ["pointwise"], dtype="float16")


# --- the references do the same work as ours ---------------------------------------------------------


def _ours(name: str, channels: int, heads: int, tokens: int) -> nn.Module:
    attention = pytest.importorskip("bench.models.attention")
    return ab._build_ours(attention.ATTENTION, name, channels, heads, ab._grid(tokens), "cpu")


def test_linformer_reference_shares_one_projection_for_keys_and_values() -> None:
    pytest.importorskip("linformer")
    ref = ab.REFERENCES["linformer"][1](16, 2, 64)
    assert ref.proj_v is ref.proj_k and not ref.share_kv  # E = F, but values are not keys
    seq_projections = [p for p in ref.parameters() if p.shape == (64, 64)]  # (N, k), k capped at N = 64
    assert len(seq_projections) == 1
    assert ref.to_v is not ref.to_k  # separate W_K and W_V, like ours
    ref = ref.to(torch.float64)  # converting (as .to(device) does) keeps the tie
    assert ref.proj_v is ref.proj_k and ref.proj_k.dtype == torch.float64


def test_linformer_reference_equals_ours_given_our_weights() -> None:
    pytest.importorskip("linformer")
    channels, heads, tokens = 16, 2, 64
    ours = _ours("linformer", channels, heads, tokens).eval()
    ref = ab.REFERENCES["linformer"][1](channels, heads, tokens).eval()
    with torch.no_grad():
        ours.qkv.bias.zero_()  # the package's q, k, v projections have no bias
        w_q, w_k, w_v = ours.qkv.weight.chunk(3)
        ref.to_q.weight.copy_(w_q)
        ref.to_k.weight.copy_(w_k)
        ref.to_v.weight.copy_(w_v)
        ref.proj_k.copy_(ours.seq_proj.t())  # the package stores E as (N, k)
        ref.to_out.load_state_dict(ours.proj.state_dict())
        x = torch.randn(2, tokens, channels)
        torch.testing.assert_close(ref(x), ours(x, ab._grid(tokens)), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["linformer", "performer"])
def test_reference_counts_the_same_macs_as_ours(name: str) -> None:
    pytest.importorskip(name if name == "linformer" else "performer_pytorch")
    from bench.models.flops import torch_macs
    from bench.models.flops_formulas import attention_macs

    channels, heads, tokens = 16, 2, 1024
    ours = _ours(name, channels, heads, tokens)
    ref = ab.REFERENCES[name][1](channels, heads, tokens)
    assert torch_macs(ref, torch.randn(1, tokens, channels)) == attention_macs(ours)


def test_performer_reference_uses_our_features_count_and_never_redraws() -> None:
    pytest.importorskip("performer_pytorch")
    channels, heads, tokens = 16, 2, 64
    ours = _ours("performer", channels, heads, tokens)
    ref = ab.REFERENCES["performer"][1](channels, heads, tokens).train()
    m = ab.MODULE_OPTIONS["performer"]["num_features"]
    assert ours.redraw_interval == 0
    assert ref.fast_attention.projection_matrix.shape == ours.features.shape == (m, channels // heads)
    before = (ours.features.clone(), ref.fast_attention.projection_matrix.clone())
    x, grad = ab._inputs(1, tokens, channels, "cpu")
    for step in (ab._train_step(lambda t: ours(t, ab._grid(tokens)), ours, x, grad), ab._train_step(ref, ref, x, grad)):
        for _ in range(3):
            step()
    assert torch.equal(ours.features, before[0])
    assert torch.equal(ref.fast_attention.projection_matrix, before[1])


def test_reference_setup_is_recorded(registry: Registry) -> None:
    result = run(registry, ["pointwise"], time_budget_s=30.0)
    assert result["settings"]["reference_setup"] == {}  # references off, and no reference for stand-ins
    assert set(ab.REFERENCE_SETUP) == set(ab.REFERENCES)
