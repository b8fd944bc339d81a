"""The shape of bench/: no import circle between its modules, and files of one idea each.

The layers themselves are import-linter's contracts in pyproject.toml (``lint-imports``,
run by ``make test``); a circle inside one layer is what they cannot see.
"""

from __future__ import annotations

from pathlib import Path

import grimp

BENCH = Path(__file__).resolve().parents[1] / "bench"
MAX_LINES = 400


def _circles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module, or a module importing itself
    (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph.find_modules_directly_imported_by(target)))))
                    break
                if target in on_stack:
                    low[module] = min(low[module], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[module])
                if low[module] == index[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == module:
                            break
                    if len(component) > 1 or graph.direct_import_exists(importer=module, imported=module):
                        found.append(sorted(component))
    return found


def test_no_import_circle_in_bench() -> None:
    graph = grimp.build_graph("bench")  # function-level imports count too
    assert _circles(graph) == []


def test_the_circle_finder_finds_one() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "b", "c", "d"):
        graph.add_module(module)
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    graph.add_import(importer="c", imported="a")
    graph.add_import(importer="c", imported="d")
    assert _circles(graph) == [["a", "b", "c"]]


def test_bench_is_packages_and_files_of_one_idea() -> None:
    top_level = sorted(p.name for p in BENCH.glob("*.py"))
    assert top_level == ["__init__.py", "__main__.py"]
    long = {str(p.relative_to(BENCH)): n for p in BENCH.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these by idea (at most {MAX_LINES} lines a file)"
