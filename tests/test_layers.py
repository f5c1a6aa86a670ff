"""The dependency rule between the project's packages, checked over the real import graph.

    dags  ->  curation, synthesis, training        (DAG files are wiring over the packages)
    synthesis -> curation                          (dedup, decontamination, the dataset contract)
    training  -> curation's contract, paths and CLI helpers only
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
    "training": ("training", "curation.contract", "curation.paths", "curation.cli_common"),
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
