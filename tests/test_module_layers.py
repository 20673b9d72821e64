"""The package's modules in the pipeline's order: no module imports one from a later stage (at module level or
inside a function), the imports between modules have no cycle, and no private name crosses a module."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "scotd_kit"

# the stages, in the pipeline's order; a module may import from its own stage or an earlier one
STAGES = {
    "data": ("io", "paths", "assets", "journal", "hardware", "stats", "answers", "prompts", "tasks", "exemplars"),
    "engine": ("shared_prefix", "generation", "models", "runs"),
    "teach": ("teachers", "corpus", "ledger", "sampling"),
    "distill": ("curation", "training"),
    "evaluate": ("evaluation",),
    "reproduce": ("profiles", "paper", "stages", "report", "claims", "plots", "reproduce", "cli", "doctor", "socratic"),
}
ORDER = {module: i for i, modules in enumerate(STAGES.values()) for module in modules}


def _top(dotted: str) -> str:
    """``scotd_kit.teachers.local`` -> ``teachers`` (the package root itself: "")."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path):
    """(imported top-level module, imported name) for every scotd_kit import in ``path``, at any depth."""
    package = path.relative_to(ROOT.parent).parent.parts
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[:len(package) - (node.level - 1)])
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "scotd_kit":
                continue
            for alias in node.names:
                full = f"{target}.{alias.name}"
                is_module = (ROOT.parent / (full.replace(".", "/") + ".py")).exists() or \
                    (ROOT.parent / full.replace(".", "/")).is_dir()
                yield _top(full if is_module else target), alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "scotd_kit":
                    yield _top(alias.name), None


def _own(path: Path) -> str:
    """The top-level module ``path`` belongs to (``teachers`` for ``teachers/local.py``; "" for the root)."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return "" if parts == ("__init__",) else parts[0]


def _modules():
    return [p for p in sorted(ROOT.rglob("*.py")) if "notebooks" not in p.relative_to(ROOT).parts]


def _graph() -> dict:
    graph = {}
    for path in _modules():
        own = _own(path)
        graph.setdefault(own, set()).update(t for t, _ in _imports(path) if t not in ("", own))
    return graph


def test_every_module_has_a_stage():
    assert sorted(set(_graph()) - {""} - set(ORDER)) == []


def test_no_module_imports_from_a_later_stage():
    late = [(m, t) for m, targets in _graph().items() if m for t in targets if ORDER[t] > ORDER[m]]
    assert late == [], "imports from a later stage: " + ", ".join(f"{m} -> {t}" for m, t in late)


def test_imports_between_modules_have_no_cycle():
    graph = _graph()

    def visit(node, path):
        if node in path:
            pytest.fail("import cycle: " + " -> ".join(path[path.index(node):] + [node]))
        for t in sorted(graph.get(node, ())):
            visit(t, path + [node])

    for module in sorted(graph):
        visit(module, [])


def test_no_private_name_is_imported_across_modules():
    crossing = []
    for path in _modules():
        own = _own(path)
        crossing += [f"{path.relative_to(ROOT)}: {t}.{name}" for t, name in _imports(path)
                     if name and name.startswith("_") and not name.startswith("__") and t != own]
    assert crossing == []
