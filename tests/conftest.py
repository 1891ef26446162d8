"""Shared test helpers: where the real recordings in ``../shared/data`` live.

``shared_path(rel)`` resolves a path under the shared data folder: ``$NEUROFORMER_SHARED_DATA``
when set, else ``<repo root>/../shared/data``. A missing file fails the test, in CI and
elsewhere: a skipped test would read as "nothing wrong" on a machine without the recordings.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path:
    """The shared data folder (it may not exist)."""
    env = os.environ.get("NEUROFORMER_SHARED_DATA")
    return Path(env) if env else (REPO_ROOT.parent / "shared" / "data").resolve()


def shared_path(rel: str) -> Path:
    """Absolute path of ``rel`` inside the shared data folder.

    Fails the test (never skips it) when the file or folder is missing.
    """
    path = shared_data_root() / rel
    if not path.exists():
        msg = (f"shared data file missing: {path} (set NEUROFORMER_SHARED_DATA to the folder "
               "holding the shared recordings)")
        pytest.fail(msg)
    return path


@pytest.fixture(scope="session")
def shared_data():
    """A callable ``shared_data(rel) -> Path``; see :func:`shared_path`."""
    return shared_path


def documentation_pages() -> list:
    """The user documentation: ``README.md`` and every ``docs/*.md`` page, in that order."""
    return [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


def documentation_text() -> str:
    """The text of :func:`documentation_pages`, joined by blank lines: what a test looks a sentence
    or figure up in, wherever the README or a docs page states it."""
    return "\n\n".join(p.read_text() for p in documentation_pages())


def metrics_keys_the_readme_leaves_out(metrics: dict, section=("## `metrics.json`", "## Fidelity metrics"),
                                       targets=(), page="docs/metrics.md") -> list:
    """The keys of a ``metrics.json`` dict that the documentation's `metrics.json` section (the text
    between the two ``section`` markers of ``page``, a path from the repository's root; default:
    ``train``'s, in ``docs/metrics.md``) does not name (in backticks). A ``split/name``
    key may be named by its split-free part, and a retrieval key ``test/retrieval/<name>/<key>`` by
    ``test/retrieval/<modality>/<key>``; with ``targets`` (a decoder's), ``split/<target>/<metric>``
    by ``<metric>`` or ``split/<target>/<metric>``, a ``<metric>_ci95`` (``_ci95_reason``) by
    ``test/<target>/<metric>_ci95`` (``_ci95_reason``), a ``<name>_deg`` beside ``<name>_rad`` by ``_deg``.
    A marker missing from the page raises ValueError (the section moved: the check must not pass on
    nothing)."""
    import re

    doc = (REPO_ROOT / page).read_text()
    text = doc[doc.index(section[0]):doc.index(section[1])]
    named = set(re.findall(r"`([A-Za-z0-9_/\[\]<>.]+)`", text))

    def names(k):
        out = {k, k.split("/", 1)[-1], re.sub(r"^(test/retrieval)/[^/]+/", r"\1/<modality>/", k)}
        for t in targets:
            m = re.match(rf"^(test|validation)/{re.escape(t)}/(.+)$", k)
            if m:
                split, metric = m.groups()
                out |= {metric, f"{split}/<target>/{metric}"}
                for suffix in ("_ci95", "_ci95_reason"):
                    if metric.endswith(suffix):
                        out.add(f"{split}/<target>/<metric>{suffix}")
                if metric.endswith("_deg") and metric[:-4] + "_rad" in named:
                    out.add("_deg")
        return out

    return [k for k in metrics if not (names(k) & named)]


@pytest.fixture(scope="session")
def readme_leaves_out():
    """A callable ``readme_leaves_out(metrics) -> list`` of the keys the `metrics.json` table of
    ``docs/metrics.md`` does not explain; see :func:`metrics_keys_the_readme_leaves_out`."""
    return metrics_keys_the_readme_leaves_out


@pytest.fixture
def loopback_hub(monkeypatch):
    """A started :class:`hub_server.LoopbackHub` (an in-memory Hub API on 127.0.0.1), stopped after.

    In this process use ``HfApi(endpoint=hub.url, token="hf_loopback_token")``; for ``datasets``
    or ``transformers`` start a subprocess with ``env={**os.environ, **hub.env()}``. Xet is
    switched off in this process for the test's duration (the server does not implement it, and
    ``huggingface_hub`` uses Xet whenever ``hf_xet`` is installed).
    """
    import huggingface_hub.constants

    from hub_server import LoopbackHub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    hub = LoopbackHub().start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture(scope="session")
def allen_video():
    """100 units of the Allen gratings with grating frames rendered at 16 x 16 px (assumed
    nominal grating values, :class:`hf_neuroformer.stimuli.GratingParams`), rendered once."""
    from hf_neuroformer.io import read_allen_gratings
    from hf_neuroformer.stimuli import GratingParams, render_drifting_gratings

    rec = read_allen_gratings(shared_path("allen_vcn_gratings")).select_units(range(100))
    return render_drifting_gratings(rec, params=GratingParams(frame_shape=(16, 16)))


def pytest_unconfigure(config):
    """The session is over (results reported, temporary folders handled by pytest itself): let the
    process exit without Python's final garbage collection, which took about 4.5 s after a single
    test file (every object of torch, transformers and the tests), more after the whole suite."""
    import gc

    gc.freeze()


# The test files that take longest, slowest first (``--durations=0`` of the whole suite, summed per
# file, 2026-12-07 after the suite-time cuts: test_decoding.py 195 s, test_hub.py 154 s,
# test_distributed.py 138 s, test_cli.py 107 s, then 78 s and below). Under ``--dist loadfile`` a
# worker takes a whole file; xdist hands the files out by their number of tests, most first, which
# once left test_distributed.py (13 tests) to the end, run by one worker while the other had nothing
# left to do. See ``pytest_collection_modifyitems``.
SLOWEST_FILES = ("test_decoding.py", "test_hub.py", "test_distributed.py", "test_cli.py", "test_connectivity.py",
                 "test_cli_outputs.py", "test_training.py", "test_contrastive.py", "test_prepare.py",
                 "test_cli_errors.py", "test_metrics.py", "test_cli_evaluate.py")


def _compile_package_once() -> None:
    """Byte-compile ``src/`` once, before any worker or command starts.

    Where ``PYTHONDONTWRITEBYTECODE`` is set (as on the machines these tests were written on), no
    process writes ``__pycache__``, so every xdist worker and every command a test starts (the CLI,
    torchrun ranks, the Hub loader) compiled the package's ~27,000 lines again: about 1-3 CPU
    seconds each (``import hf_neuroformer.cli``: 5.1 s CPU with the ``.pyc`` files, 6.1-9.0 s
    without, on a loaded 2-core machine, 2026-12-07). Python reads ``.pyc`` files whatever that
    variable says; ``compileall`` writes them (``__pycache__`` is git-ignored) and skips those
    already up to date."""
    import compileall

    src = REPO_ROOT / "src"
    if src.is_dir():
        compileall.compile_dir(str(src), quiet=1)


def pytest_configure(config):
    """Under pytest-xdist (``-n 2``) each worker process keeps to one CPU thread, and so do the
    commands it starts, so that two workers on two cores do not each spin two OpenMP threads.

    With ``--dist loadscope`` / ``loadfile`` the files go to the workers in the order the workers
    collected them (``--no-loadscope-reorder``), which ``pytest_collection_modifyitems`` makes
    slowest first."""
    if getattr(config.option, "dist", "no") != "no":
        config.option.loadscopereorder = False
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        _compile_package_once()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        import torch

        torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """In a pytest-xdist worker, the files of ``SLOWEST_FILES`` first (in that order), then the
    others by their number of tests, most first (xdist's own order); the tests of a file keep
    their order. Longest first, the two workers finish close together (the last file handed out is
    a short one). A run in one process keeps pytest's order."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    from collections import Counter

    rank = {name: i for i, name in enumerate(SLOWEST_FILES)}
    count = Counter(str(item.path) for item in items)
    items.sort(key=lambda item: (rank.get(item.path.name, len(rank)), -count[str(item.path)]))


_FROZEN_AT = {"file": None}


def _freeze_what_lives_now() -> None:
    """Move every object alive now out of the garbage collector's reach (after one collection, so that
    no garbage is kept): they are still freed when their last reference goes, but a full collection
    no longer walks them. Each ``Trainer.train()`` runs a full ``gc.collect()`` (``accelerate``'s
    ``free_memory``), which walked every object of torch, transformers, datasets and the tests: 14
    trainings of test_decoding.py spent 13.6 s there (profiled, 2026-12-07), 2.7 s with this."""
    import gc

    gc.collect()
    gc.freeze()


def pytest_collection_finish(session):
    """The modules the tests imported and their module-level data: frozen (:func:`_freeze_what_lives_now`)."""
    _freeze_what_lives_now()


def pytest_runtest_setup(item):
    """At a file's first test, what the earlier files imported (``transformers.trainer`` and the
    like, imported at their first use) and the session fixtures: frozen too; the earlier file's module
    fixtures were torn down before."""
    if _FROZEN_AT["file"] != item.path:
        _FROZEN_AT["file"] = item.path
        _freeze_what_lives_now()
