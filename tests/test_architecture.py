"""The tree: stage subpackages import only what their ``__init__`` docstrings allow, and no
module imports itself back through a circle (function-level imports included)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import conic_dnn

PKG = Path(conic_dnn.__file__).parent
STAGES = ("core", "cone", "neurons", "training", "certificates", "two_layer", "deep")

# The public API, pinned: a change here is a change of the package's contract.
PUBLIC = [
    "Certificate", "ConicDNNError", "ConvergenceWarning", "CovarianceCone", "CrossEntropy",
    "DecompositionWarning", "Forces", "Hinge", "Homogeneous", "Huber",
    "InaccurateSolutionWarning", "LayerCertificate", "LayerSparsity", "Logistic", "Loss", "MSE",
    "Network", "Path", "solve_many",
    "NonHomogeneous", "Problem", "Result", "SizeLimitError", "SolverFailedError",
    "SparsityReport", "TrainingResult", "absolute", "activations_from_weights",
    "attraction_repulsion", "bipartite_incidence", "certify", "cone_constraints",
    "covariances_from_activations", "from_torch", "get_activation", "get_loss", "homogeneous",
    "identity", "leaky_relu", "loss_activations", "loss_covariances", "loss_parameters",
    "min_norm_weights", "prune", "range_residuals", "range_violations", "relu", "solve",
    "solve_column_generation", "solve_path", "sparsity_report", "tight_example",
    "tight_example_bound", "to_torch", "train_adam", "train_lbfgs",
    "ProblemRecord", "load_result",
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every conic_dnn module imported anywhere in ``path`` (absolute dotted names)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "conic_dnn"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "conic_dnn":
                continue
            for a in node.names:  # "from .x import y" may import the submodule y
                sub = f"{mod}.{a.name}"
                found.add(sub if _exists(sub) else mod)
    return found


def _exists(dotted: str) -> bool:
    rel = Path(*dotted.split(".")[1:])
    return (PKG / rel).with_suffix(".py").exists() or (PKG / rel / "__init__.py").exists()


def _unit(dotted: str) -> str:
    """The unit an import rule speaks of: a stage subpackage or a top-level module."""
    parts = dotted.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else dotted


def _allowed(doc: str) -> set[str] | None:
    m = re.search(r"May import:(.*?)(?:\n\n|$)", doc or "", re.S)
    if m is None:
        return None
    text = m.group(1)
    if "nothing else" in text:
        return set()
    if "anything" in text:
        return {"*"}
    if "every stage" in text:
        return {f"conic_dnn.{s}" for s in STAGES} | set(re.findall(r"conic_dnn\.\w+", text))
    return set(re.findall(r"conic_dnn\.\w+", text))


MODULES = sorted(p for p in PKG.rglob("*.py"))
RULED = [PKG / s / "__init__.py" for s in STAGES] + [
    PKG / f for f in ("solvers.py", "interop.py", "solve.py", "cli.py")]


def test_public_api_is_pinned():
    assert sorted(conic_dnn.__all__) == sorted(PUBLIC)
    for name in conic_dnn.__all__:
        assert hasattr(conic_dnn, name), name


@pytest.mark.parametrize("ruled", RULED, ids=lambda p: _module_name(p))
def test_each_unit_imports_only_what_its_docstring_allows(ruled):
    allowed = _allowed(ast.get_docstring(ast.parse(ruled.read_text())))
    assert allowed is not None, f"{ruled}: the docstring has no 'May import:' line"
    unit = _unit(_module_name(ruled))
    files = list(ruled.parent.rglob("*.py")) if ruled.name == "__init__.py" else [ruled]
    for f in files:
        for imp in _imports(f):
            target = _unit(imp)
            if target == unit or "*" in allowed:
                continue
            assert target in allowed, (f"{_module_name(f)} imports {imp}: {unit} may import "
                                       f"only {sorted(allowed) or 'nothing in conic_dnn'}")


def test_every_stage_declares_its_imports():
    for stage in STAGES:
        doc = ast.get_docstring(ast.parse((PKG / stage / "__init__.py").read_text()))
        assert _allowed(doc) is not None, stage


def test_no_import_cycle():
    graph = {_module_name(p): {i for i in _imports(p) if i != _module_name(p)} for p in MODULES}
    # a module importing its own package's __init__ is not a cycle of code
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in graph.get(node, ()):
            if nxt == "conic_dnn" and node.startswith("conic_dnn.cli"):
                continue  # the CLI is outermost: it may use the public package
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt] if nxt in stack else [node, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if state.get(nxt) is None:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if state.get(node) is None:
            visit(node, [node])


def test_the_walk_sees_lazy_imports():
    """The walker is not vacuous: it finds a known function-level import."""
    assert "conic_dnn.deep.alternating" in _imports(PKG / "solve.py")
    assert "conic_dnn.interop" in _imports(PKG / "neurons" / "pruning.py")
