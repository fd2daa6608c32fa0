"""The package's import graph, read from the source with ``ast`` (imports
inside functions count: a lazy import is still a dependency). Cycles make
modules that cannot be read, tested or loaded one without the other; these
tests keep the ones the code was untangled from from coming back."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "fastbp"


def _target(node, modules):
    """The fastbp modules one import statement names."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names if a.name.split(".")[0] == "fastbp"]
        return {n if n in modules else "fastbp" for n in names}
    if node.level == 0 and (node.module or "").split(".")[0] != "fastbp":
        return set()
    base = "fastbp" if node.level else node.module.split(".")[0]
    module = ".".join(filter(None, [base, node.module if node.level else
                                     ".".join(node.module.split(".")[1:])]))
    subs = {f"{module}.{a.name}" for a in node.names} & set(modules)
    # from . import io, ops: those submodules; from . import MLP: the package's __init__
    return subs if len(subs) == len(node.names) else subs | {module}


def import_graph(package=PACKAGE):
    """``{module: set of fastbp modules it imports anywhere in its source}``.

    ``fastbp`` (the package's ``__init__``) is a node like the others; the
    cycle checks walk around it: every submodule's import runs it first
    anyway, so ``import fastbp`` in a function (for ``__version__``, say) adds
    no dependency that the package's layout does not already make."""
    files = {("fastbp" if p.stem == "__init__" else f"fastbp.{p.stem}"): p
             for p in package.glob("*.py")}
    graph = {}
    for name, path in files.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                deps |= _target(node, files)
        graph[name] = deps - {name}
    return graph


def test_graph_reader_sees_relative_lazy_and_package_imports():
    graph = import_graph()
    assert "fastbp.model" in graph["fastbp.io"]                 # from .model import MLP
    assert "fastbp.export" in graph["fastbp.model"]             # inside MLP.to_onnx
    assert "fastbp.network" in graph["fastbp.model"]            # from . import ..., network
    assert "fastbp" in graph["fastbp.cli"]                      # import fastbp, in a function
    assert "fastbp" in graph["fastbp._warmup"]                  # from . import MLP, cli, ...
    assert "fastbp" not in graph["fastbp.model"]                # submodules only


@pytest.mark.parametrize("low,high", [
    ("fastbp.model", "fastbp.io"),              # io builds models; the model saves through _modelfile
    ("fastbp._modelfile", "fastbp.model"),
    ("fastbp._modelfile", "fastbp.io"),
    ("fastbp._args", "fastbp.model"),                 # checks work on the model they are given
    ("fastbp._plot_landscape", "fastbp.landscape"),  # plots need results, not the computation
    ("fastbp._plot_landscape", "fastbp.model"),
    ("fastbp.plot", "fastbp.landscape"),
    ("fastbp._landscape_results", "fastbp.landscape"),
])
def test_lower_module_never_imports_the_higher(low, high):
    graph = import_graph()
    assert {low, high} <= set(graph), f"{low} or {high} is gone: update this test's pairs"
    path = _path(graph, low, high)
    assert path is None, f"{low} imports {high} (through {' -> '.join(path)}): an import cycle"


def _path(graph, start, goal):
    """One chain of imports from start to goal, or None."""
    previous, todo = {start: None}, [start]
    while todo:
        node = todo.pop(0)
        if node == goal:
            chain = []
            while node is not None:
                chain.append(node)
                node = previous[node]
            return chain[::-1]
        for dep in sorted(graph.get(node, set()) - {"fastbp"}):
            if dep not in previous:
                previous[dep] = node
                todo.append(dep)
    return None
