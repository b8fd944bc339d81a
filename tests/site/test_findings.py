"""Headline findings: a gap between budget-limited models says what twice the budget does to it."""

from __future__ import annotations


def test_a_gap_between_budget_limited_models_is_qualified_by_the_budget_study() -> None:
    from types import SimpleNamespace

    from bench.site.context import BudgetRow
    from bench.site.findings import _at_twice_the_budget

    group = SimpleNamespace(budget=(BudgetRow("a", 60, 30, 0.80, "plateau", 120, 60, 0.85, 0.05, True),
                                    BudgetRow("b", 60, 30, 0.70, "plateau", 120, 60, 0.84, 0.14, True)))
    a, b = SimpleNamespace(model="a", budget_limited=True), SimpleNamespace(model="b", budget_limited=True)
    text = _at_twice_the_budget(group, a, b)
    assert "gap is +0.100 at this budget and +0.010 at twice it" in text
    assert _at_twice_the_budget(group, SimpleNamespace(model="a", budget_limited=False),
                                SimpleNamespace(model="b", budget_limited=False)) == ""
    assert "this budget only" in _at_twice_the_budget(group, a, SimpleNamespace(model="c", budget_limited=True))


def test_the_fastest_model_ties_with_every_model_inside_its_own_spread() -> None:
    from types import SimpleNamespace

    from bench.site.findings import group_findings

    def row(model: str, p50: float, p90: float) -> SimpleNamespace:
        return SimpleNamespace(model=model, metrics={"balanced_accuracy": SimpleNamespace(mean=0.8)}, ci95=None,
                               tied_with_best=False, better_than_pixel=None, budget_limited=False,
                               cpu_p50_ms=p50, cpu_p90_ms=p90)

    rows = [row("quick_one", 1.0, 1.2), row("close_one", 1.15, 1.3), row("slow_one", 1.5, 1.6)]
    group = SimpleNamespace(rows=rows, best="quick_one", synthetic=True, baselines=(), pixel_baseline=None,
                            budget_limited=(), cap_ended=(), budget=(), budget_delta=0.01, machine="m")
    fastest = next(f for f in group_findings(group) if f.startswith("Fastest"))
    assert "quick_one, 1 ms" in fastest and "tied with it: close_one (1.15 ms)." in fastest
    assert "slow_one" not in fastest

