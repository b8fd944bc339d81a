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
