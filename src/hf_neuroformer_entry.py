"""The ``neuroformer`` console script's entry point (setup.py), outside the package on purpose.

Importing anything in ``hf_neuroformer`` runs its ``__init__``, which imports torch and
transformers to register the model with the Auto classes (seconds of CPU); ``neuroformer
--version``, ``--help``, ``neuroformer <command> --help`` and usage errors need none of it. So
:func:`main` loads ``hf_neuroformer/cli.py`` as ``hf_neuroformer.cli`` without running the
package's ``__init__`` first: the command's parser answers those at once, and the first library
import of a command (``from .training import ...``) imports the package, as ``import
hf_neuroformer`` does. ``python -m hf_neuroformer.cli`` (torchrun, accelerate launch) imports it
the usual way.
"""

import importlib
import importlib.machinery
import importlib.util
import sys


def _cli_module():
    """``hf_neuroformer.cli``: the module loaded already (by an import or an earlier call), the
    imported one when the package is imported, else the package folder's cli module (cli.py, or
    its bytecode) loaded under that name without importing the package."""
    if "hf_neuroformer.cli" in sys.modules:
        return sys.modules["hf_neuroformer.cli"]
    if "hf_neuroformer" in sys.modules:
        return importlib.import_module("hf_neuroformer.cli")
    package = importlib.util.find_spec("hf_neuroformer")  # a top-level name: found, not run
    if package is None or not package.submodule_search_locations:
        raise ModuleNotFoundError("No module named 'hf_neuroformer'", name="hf_neuroformer")
    # the import system's finder for the package's folder, not the name cli.py: a package installed as
    # bytecode only (cli.pyc) is found as ``import hf_neuroformer.cli`` would find it
    spec = importlib.machinery.PathFinder.find_spec("hf_neuroformer.cli", list(package.submodule_search_locations))
    if spec is None:
        raise ModuleNotFoundError("No module named 'hf_neuroformer.cli'", name="hf_neuroformer.cli")
    module = importlib.util.module_from_spec(spec)
    sys.modules["hf_neuroformer.cli"] = module  # as an import does, before running it
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["hf_neuroformer.cli"]
        raise
    return module


def main(argv=None) -> int:
    """``neuroformer [ARGS]``: :func:`hf_neuroformer.cli.main`."""
    return _cli_module().main(argv)


if __name__ == "__main__":
    sys.exit(main())
