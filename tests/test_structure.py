"""The package's shape: imports point one way, modules stay short, experiments are defined
in the catalog only."""

from __future__ import annotations

import ast
from pathlib import Path

from adtr import catalog
from adtr.records import imported_modules, module_closure, module_files

PACKAGE = Path(catalog.__file__).resolve().parent


def _modules() -> list[str]:
    files = [p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"]
    return sorted(files + [p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()])


def _graph() -> dict[str, set[str]]:
    return {name: set().union(*(imported_modules(p.read_text()) for p in module_files(name)))
            - {name} for name in _modules()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (module -> modules it imports), or None."""
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = "open"
        for other in sorted(graph[name]):
            if state.get(other) == "open":
                return path[path.index(other):] + [other] if other in path else [name, other]
            if other not in state:
                found = visit(other, path + [other])
                if found:
                    return found
        state[name] = "done"
        return None

    for name in graph:
        if name not in state:
            found = visit(name, [name])
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_in_the_package() -> None:
    """Counting imports inside functions too: a deferred import is still an arrow."""
    assert _cycle(_graph()) is None


#: The package's floors, bottom first (the README's table): no module imports a higher one.
FLOORS = (
    {"errors", "allocator", "records", "profiles", "catalog", "schema", "style", "stamps"},
    {"data", "synth", "shapes", "objects", "oneclass", "backbones", "features", "model",
     "metrics", "scores", "stats", "cost", "curves"},
    {"train"},
    {"plus", "pipeline"},
    {"experiments", "analysis", "figures", "viz", "study", "convergence", "peers", "comparison"},
    {"report", "reproduce", "cli", "__main__"},
)


def test_every_module_has_a_floor_and_imports_point_down() -> None:
    floor = {name: level for level, names in enumerate(FLOORS) for name in names}
    graph = _graph()
    assert set(graph) == set(floor)
    upward = sorted(f"{name} imports {other}" for name, others in graph.items()
                    for other in others if floor[other] > floor[name])
    assert upward == []


def test_the_loop_knows_nothing_of_runs_and_the_book_needs_no_torch_modules() -> None:
    assert not {"pipeline", "experiments", "plus", "catalog"} & set(module_closure(["train"]))
    assert not {"train", "pipeline", "model"} & set(module_closure(["report"]))


def test_a_digest_can_leave_out_a_module_and_what_only_it_imports() -> None:
    closure = module_closure(["peers"], leave_out={"experiments"})
    assert "pipeline" in closure and not {"experiments", "catalog", "stats"} & set(closure)
    assert {"experiments", "catalog"} <= set(module_closure(["peers"]))


def test_no_module_over_600_lines() -> None:
    lengths = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines())
               for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in lengths.items() if n > 600} == {}


def _constants(path: Path) -> set[object]:
    return {node.value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str | float)}


def test_variant_labels_and_paper_values_are_in_the_catalog_only() -> None:
    labels = {v.label for e in catalog.EXPERIMENTS.values() if e.claim for v in e.variants}
    values = {v.paper for e in catalog.EXPERIMENTS.values() for v in e.variants if v.paper}
    values |= {x for method in catalog.PAPER_MVTEC.values() for x in method.values()}
    values |= set(catalog.PAPER_CIFAR10.values())
    assert "w/o Attn" in labels and 97.2 in values
    for path in PACKAGE.rglob("*.py"):
        if path.name == "catalog.py":
            continue
        found = _constants(path) & (labels | values)
        assert not found, f"{path.relative_to(PACKAGE)} has {sorted(map(str, found))}"
    for path in Path(PACKAGE.parent / "notebooks").glob("*.ipynb"):
        assert not any(f'"{label}"' in path.read_text() or f"'{label}'" in path.read_text()
                       for label in labels), path.name
