"""The package's public API: every name its docs refer to is exported and documented.

Every module of the package (private modules, ``_name``, aside) is checked against the Sphinx roles
(``:func:``, ``:class:``, ``:data:``, ``:meth:``, ``:attr:``, ``:exc:``) in the package's docstrings
and the documentation (README.md, docs/*.md), so that a name the docs present as API can be imported
with ``from ... import *``, shows in ``help(module)`` and has a docstring.
"""

from __future__ import annotations

import ast
import functools
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import hf_neuroformer

ROOT = Path(hf_neuroformer.__file__).parent
ROLE = r":(?:func|class|data|meth|attr|exc):`~?"
MODULES = ["hf_neuroformer"] + sorted(
    m.name for m in pkgutil.walk_packages(hf_neuroformer.__path__, "hf_neuroformer.")
    if not any(part.startswith("_") for part in m.name.split(".")))


@functools.lru_cache(maxsize=None)
def _qualified_references() -> frozenset:
    """Every dotted ``hf_neuroformer...`` path a Sphinx role names in the package or the documentation
    (the README and the ``docs/*.md`` pages, when the checkout has them)."""
    texts = [p.read_text() for p in ROOT.rglob("*.py")]
    for page in [ROOT.parents[1] / "README.md", *sorted((ROOT.parents[1] / "docs").glob("*.md"))]:
        if page.is_file():
            texts.append(page.read_text())
    return frozenset(path for t in texts for path in re.findall(rf"{ROLE}(hf_neuroformer(?:\.\w+)+)", t))


def _defined(source: str) -> set:
    """The module's own top-level functions, classes and constants (not what it imports)."""
    names = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


@functools.lru_cache(maxsize=None)
def _referred(full: str) -> tuple:
    """``(public names the docs refer to in module full, its own top-level names)``: a Sphinx role
    naming ``full.name`` anywhere in the package or the README (submodules of a package aside), or
    naming ``name`` unqualified inside the module itself where the module defines it."""
    mod = importlib.import_module(full)
    own = Path(mod.__file__).read_text()
    defined = _defined(own)
    named = {path[len(full) + 1:].split(".")[0] for path in _qualified_references() if path.startswith(f"{full}.")}
    named -= {n for n in named if f"{full}.{n}" in MODULES}
    named |= {n for n in re.findall(rf"{ROLE}([A-Za-z_]\w*)`", own) if n in defined}
    return {n for n in named if not n.startswith("_")}, defined


def test_the_reference_pattern_still_finds_the_docs_references():
    """Guard for the test below: the role pattern finds references in most modules (a change of the
    docstrings' role syntax would otherwise make it pass on nothing)."""
    assert "hf_neuroformer.finetuning" in MODULES and "hf_neuroformer.io.nwb" in MODULES
    with_refs = [m for m in MODULES if _referred(m)[0]]
    assert len(with_refs) > len(MODULES) // 2, with_refs


@pytest.mark.parametrize("full", MODULES)
def test_every_name_the_docs_refer_to_is_in_the_modules_all_and_documented(full):
    """Break test: names referred to as API in the package's docstrings were missing from their
    module's ``__all__`` (finetuning's HL-Gauss notes and trainer callbacks, decoding's
    ``training_values``; then windows' ``prepare_windows`` / ``load_prepared``, training's
    ``check_resume``, generation's ``tensors_sha256``, recording's ``WINDOW_GRID``,
    configuration_neuroformer's ``AUTO_MAP``, modeling_neuroformer's ``check_model_fits_in_memory``
    and others), and ``hub``, ``cli`` and ``io.phy`` had no ``__all__``. Every public name a
    docstring of the package or the README refers to (by a Sphinx role, qualified, or unqualified
    inside the module) is now listed there, every listed name exists, and each listed function or
    class defined in the module has a docstring."""
    mod = importlib.import_module(full)
    public, defined = _referred(full)
    assert hasattr(mod, "__all__"), f"{full} has no __all__"
    assert sorted(public - set(mod.__all__)) == []
    assert [n for n in mod.__all__ if not hasattr(mod, n)] == []
    assert [n for n in mod.__all__ if n in defined and callable(getattr(mod, n))
            and not (getattr(mod, n).__doc__ or "").strip()] == []


PRIVATE_MODULES = sorted(
    m.name for m in pkgutil.walk_packages(hf_neuroformer.__path__, "hf_neuroformer.")
    if any(part.startswith("_") for part in m.name.split(".")))


def _imported_from(full: str) -> set:
    """The names the package's own modules import from module ``full`` (``from .x import a, b``, relative
    or absolute, at any depth in the file)."""
    names = set()
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT.parent).with_suffix("").parts
        package = rel[:-1]  # the package a relative import starts from (an __init__.py's own)
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = ".".join(base + ((node.module,) if node.module else ()))
            else:
                target = node.module or ""
            if target == full:
                names |= {a.name for a in node.names}
    return names


def test_the_reference_guard_finds_the_private_modules():
    """Guard for the test below: it checks at least the attention analyses' shared module."""
    assert "hf_neuroformer.analysis._batches" in PRIVATE_MODULES


@pytest.mark.parametrize("full", PRIVATE_MODULES)
def test_private_modules_list_what_the_package_imports_from_them(full):
    """Break test: ``analysis._batches`` (private: skipped by the test above) had no ``__all__``, though
    the command line, generation, likelihood, finetuning, contrastive and both analyses import from it,
    and connectivity / visual_attention took ``is_whole_number`` through it (it is defined in
    ``argument_checks``). A private module's ``__all__`` now lists every name the package's modules
    import from it, each defined there (no name passed through) and documented."""
    mod = importlib.import_module(full)
    defined = _defined(Path(mod.__file__).read_text())
    imported = _imported_from(full)
    assert imported, f"no module of the package imports from {full}"
    assert hasattr(mod, "__all__"), f"{full} has no __all__"
    assert sorted(imported - defined) == [], "imported through the module, defined elsewhere"
    assert sorted(imported - set(mod.__all__)) == []
    assert [n for n in mod.__all__ if n not in defined] == []
    assert [n for n in mod.__all__ if not (getattr(mod, n).__doc__ or "").strip()] == []


def test_every_command_handler_has_a_short_docstring():
    """Break test: the ``cmd_*`` handlers of the command line had no docstring (``help(cli.cmd_train)``
    said nothing of what the command writes or raises). Each now has one of one to three lines that
    names its command and the errors it raises."""
    from hf_neuroformer import cli

    handlers = {n: f for n, f in vars(cli).items() if n.startswith("cmd_") and callable(f)}
    assert len(handlers) >= 14, sorted(handlers)
    for name, f in handlers.items():
        doc = (f.__doc__ or "").strip()
        assert doc, f"{name} has no docstring"
        assert 1 <= len(doc.splitlines()) <= 3, (name, doc)
        assert f"``neuroformer {name[4:].replace('_', '-')}``" in doc and "Raises" in doc, (name, doc)


def test_submodules_named_after_import_package_are_imported_on_first_use():
    """The README writes ``hf_neuroformer.training.train(...)`` and ``hf_neuroformer.metrics.load_metric``
    after ``import hf_neuroformer``; without the package's ``__getattr__`` that raised AttributeError
    for every submodule the package's own imports had not loaded. Run in a fresh interpreter, so that
    other tests' imports do not set the attributes first."""
    import subprocess
    import sys

    code = ("import sys, hf_neuroformer as h\n"
            "assert 'hf_neuroformer.training' not in sys.modules, 'training imported by the package itself'\n"
            "print(h.training.train.__module__, h.metrics.__name__, h.likelihood.__name__)\n"
            "try:\n    h.not_a_submodule\nexcept AttributeError as err:\n    print('refused:', err)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "hf_neuroformer.training hf_neuroformer.metrics hf_neuroformer.likelihood"
    assert lines[1] == "refused: module 'hf_neuroformer' has no attribute 'not_a_submodule'"
