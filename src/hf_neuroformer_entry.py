"""The ``neuroformer`` console script's entry point (setup.py), outside the package on purpose.

Importing anything in ``hf_neuroformer`` runs its ``__init__``, which imports torch and
transformers to register the model with the Auto classes (seconds of CPU); ``neuroformer
--version``, ``--help``, ``neuroformer <command> --help`` and usage errors need none of it. So
:func:`main` loads ``hf_neuroformer/cli.py`` as ``hf_neuroformer.cli`` without running the
package's ``__init__`` first, and before it ``hf_neuroformer/argument_checks.py`` (the standard
library only), which cli.py imports: the command's parser and its checks of values that need no
library (a ``--kind``, a ``--set`` key, a sampling value) answer those at once, and the first library
import of a command (``from .training import ...``) imports the package, as ``import
hf_neuroformer`` does. ``python -m hf_neuroformer.cli`` (torchrun, accelerate launch) imports it
the usual way.
"""

import importlib
import importlib.machinery
import importlib.util
import sys


#: The package's modules loaded without the package, in this order: cli.py imports the first.
_LIGHT_MODULES = ("argument_checks", "cli")


def _cli_module():
    """``hf_neuroformer.cli`` (see :func:`_light_module`), after the modules it imports."""
    for name in _LIGHT_MODULES:
        module = _light_module(name)
    return module


def _light_module(name: str):
    """``hf_neuroformer.<name>``: the module loaded already (by an import or an earlier call), the
    imported one when the package is imported, else the package folder's module (``<name>.py``, or
    its bytecode) loaded under that name without importing the package (an import of it from
    another module of the package then finds it loaded, and does not import the package either)."""
    full = f"hf_neuroformer.{name}"
    if full in sys.modules:
        return sys.modules[full]
    if "hf_neuroformer" in sys.modules:
        return importlib.import_module(full)
    package = importlib.util.find_spec("hf_neuroformer")  # a top-level name: found, not run
    if package is None or not package.submodule_search_locations:
        raise ModuleNotFoundError("No module named 'hf_neuroformer'", name="hf_neuroformer")
    # the import system's finder for the package's folder, not the name cli.py: a package installed as
    # bytecode only (cli.pyc) is found as ``import hf_neuroformer.cli`` would find it
    spec = importlib.machinery.PathFinder.find_spec(full, list(package.submodule_search_locations))
    if spec is None:
        raise ModuleNotFoundError(f"No module named {full!r}", name=full)
    module = importlib.util.module_from_spec(spec)
    sys.modules[full] = module  # as an import does, before running it
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[full]
        raise
    return module


def main(argv=None) -> int:
    """``neuroformer [ARGS]``: :func:`hf_neuroformer.cli.main`."""
    return _cli_module().main(argv)


if __name__ == "__main__":
    sys.exit(main())
