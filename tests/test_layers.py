"""The dependency rule between the project's packages, checked over the real import graph.

    dags  ->  curation, synthesis, training        (DAG files are wiring over the packages)
    synthesis -> curation                          (dedup, decontamination, the dataset contract)
    training  -> curation's contract (folders and Iceberg tables), paths, CLI helpers, progress lines and
                 the input resolver (plain files as sources) only
    curation  -> none of the others
    nothing   -> dags

Every import counts, also the lazy ones inside functions (the packages import heavy modules there), so a
violation cannot hide from the rule by moving into a function body.
"""

from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("curation", "synthesis", "training", "dags")

#: package -> project packages it may import (a module prefix allows that module and everything below it).
ALLOWED: dict[str, tuple[str, ...]] = {
    "curation": ("curation",),
    "synthesis": ("synthesis", "curation"),
    "training": (
        "training",
        "curation.contract",
        "curation.tables",
        "curation.paths",
        "curation.cli_common",
        "curation.progress",
        "curation.ingest.inputs",
        "curation.ingest.files",
    ),
    "dags": ("dags", "curation", "synthesis", "training"),
}


@dataclass(frozen=True)
class Violation:
    file: str
    line: int
    imported: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} imports {self.imported}"


def _imported_modules(tree: ast.AST, module: str) -> list[tuple[int, str]]:
    """Absolute names of every module an AST imports (relative imports resolved against `module`)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: -node.level]
                base = ".".join(parent + ([base] if base else []))
            # `from curation import contract` imports curation.contract: judge the most specific name
            found += [(node.lineno, f"{base}.{alias.name}" if base else alias.name) for alias in node.names]
    return found


def _allowed(imported: str, allowed: tuple[str, ...]) -> bool:
    return any(imported == prefix or imported.startswith(prefix + ".") for prefix in allowed)


def check_layers(root: Path) -> list[Violation]:
    """All imports under `root`'s packages that break the rule (empty when the tree is clean)."""
    violations = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            rel = path.relative_to(root)
            module = ".".join(rel.with_suffix("").parts)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(rel))
            for line, imported in _imported_modules(tree, module):
                if imported.split(".")[0] not in PACKAGES:
                    continue  # third-party or standard library
                if not _allowed(imported, ALLOWED[package]):
                    violations.append(Violation(str(rel), line, imported))
    return violations


def test_the_tree_keeps_the_layers():
    violations = check_layers(REPO)
    assert not violations, "layer rule broken:\n" + "\n".join(map(str, violations))


def _copy_packages(dst: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(REPO / package, dst / package, ignore=shutil.ignore_patterns("__pycache__"))


def test_a_planted_violation_is_reported(tmp_path):
    _copy_packages(tmp_path)
    # a lazy import inside a function, the form most likely to slip in unnoticed
    (tmp_path / "curation" / "planted.py").write_text(
        "def f():\n    from synthesis.teacher import backends\n    return backends\n"
    )
    (tmp_path / "training" / "planted.py").write_text("from curation.dedup import near\n")
    (tmp_path / "synthesis" / "planted.py").write_text("import dags.lib\n")
    found = {str(v) for v in check_layers(tmp_path)}
    assert found == {
        "curation/planted.py:2 imports synthesis.teacher.backends",
        "training/planted.py:1 imports curation.dedup.near",
        "synthesis/planted.py:1 imports dags.lib",
    }


def test_relative_imports_are_resolved(tmp_path):
    _copy_packages(tmp_path)
    (tmp_path / "curation" / "planted_rel.py").write_text("from ..training import trainer\n")
    found = [str(v) for v in check_layers(tmp_path)]
    assert found == ["curation/planted_rel.py:1 imports training.trainer"]


# ---- import cycles ---------------------------------------------------------------------------------------


def _module_name(root: Path, path: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def import_graph(root: Path) -> dict[str, set[str]]:
    """module -> project modules it imports, lazy imports included, `if TYPE_CHECKING:` blocks excluded
    (annotations only; they never run). A name imported from a package counts as its submodule when one
    exists."""
    paths = {_module_name(root, p): p for pkg in PACKAGES for p in (root / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                node.body = []
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        edges = set()
        for _, name in _imported_modules(tree, package + ".x"):
            while name and name not in paths:
                name = name.rpartition(".")[0]
            if name and name != module:
                edges.add(name)
        graph[module] = edges
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def _without_package_inits(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    # a package's __init__ re-exporting its submodules, which import siblings through the package, is the
    # usual facade shape, not a circle between two modules: judge module-to-module edges only
    inits = {m for m in graph if any(o.startswith(m + ".") for o in graph)}
    return {m: {e for e in edges if e not in inits} for m, edges in graph.items() if m not in inits}


def test_no_import_cycles_between_modules():
    cycles = find_cycles(_without_package_inits(import_graph(REPO)))
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_a_planted_cycle_is_found(tmp_path):
    _copy_packages(tmp_path)
    (tmp_path / "curation" / "cyc_a.py").write_text("from curation import cyc_b\n")
    (tmp_path / "curation" / "cyc_b.py").write_text("def f():\n    from curation.cyc_a import g\n")
    cycles = find_cycles(_without_package_inits(import_graph(tmp_path)))
    assert ["curation.cyc_a", "curation.cyc_b"] in cycles
