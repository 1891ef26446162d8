"""Helpers shared by the benchmark scripts: where the shared recordings are, writing an output
file atomically, and replacing one script's section of BENCHMARKS.md between its markers,
keeping the rest."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hf_neuroformer import jsonio

HEADER = "# Benchmarks\n\nEach section is written by the script it names.\n"


def data_root() -> Path:
    """The shared recordings: ``$NEUROFORMER_SHARED_DATA``, else ``<repo>/../shared/data``."""
    env = os.environ.get("NEUROFORMER_SHARED_DATA")
    return Path(env) if env else (Path(__file__).resolve().parents[2] / "shared" / "data").resolve()


def write_atomic(path: Path, text: str | bytes) -> Path:
    """Write ``text`` (str, or bytes such as a PNG) to ``path`` atomically, creating the parent
    folder if missing: the package's :func:`hf_neuroformer.jsonio.write_atomic` (an interrupted run
    leaves the old file or the new one, never a partial one). Returns ``path``."""
    return jsonio.write_atomic(path, text, make_parent=True)


def comma_items(text: str, what: str, example: str) -> list:
    """The stripped items of the comma-separated ``text`` (str), as the ``neuroformer`` command
    reads its lists (``cli._comma_items``); ``[]`` for a blank ``text``.

    Raises:
        argparse.ArgumentTypeError: an empty item among others (``'0,,1'``, ``'0,'``: one left
            out by mistake, maybe), naming ``what`` is expected, such as ``example``.
    """
    import argparse

    items = [x.strip() for x in text.split(",")]
    if "" in items and any(items):
        raise argparse.ArgumentTypeError(f"an empty item in {text!r}; expected {what} separated by single commas, "
                                         f"such as {example}")
    return [x for x in items if x]


def seeds_arg(text: str, what: str = "seeds", example: str = "0,1,2") -> list:
    """An argparse ``type``: comma-separated distinct integers (``--seeds``, ``--split-seeds``).

    Raises:
        argparse.ArgumentTypeError: an item that is not an integer, no item, an empty one, or a
            repeated one.
    """
    import argparse

    try:
        seeds = [int(x) for x in comma_items(text, what, example)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as {example}, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"expected distinct {what}, got {text!r}")
    return seeds


def int_at_least(minimum: int):
    """An argparse ``type``: an integer >= ``minimum`` (``--runs``, ``--workers``: 1; ``--warmup``: 0).

    Raises (the type it returns):
        argparse.ArgumentTypeError: not an integer, or below ``minimum``.
    """
    import argparse

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    return parse


def names_arg(text: str, allowed, what: str = "names") -> list:
    """An argparse ``type``: comma-separated distinct names, each one of ``allowed`` (``--datasets``).

    Raises:
        argparse.ArgumentTypeError: an item not in ``allowed`` (the message lists them), no item,
            an empty one, or a repeated one.
    """
    import argparse

    names = comma_items(text, what, ",".join(list(allowed)[:2]))
    unknown = [x for x in names if x not in allowed]
    if unknown or not names or len(set(names)) != len(names):
        why = f"unknown {', '.join(map(repr, unknown))}; " if unknown else ""
        raise argparse.ArgumentTypeError(f"{why}expected distinct {what} among {list(allowed)}, comma-separated, "
                                         f"got {text!r}")
    return names


def kept_records(old: dict, rerun, legacy_run) -> dict:
    """What a run of the records ``rerun`` keeps from ``old`` (name -> record dict, as read from
    the script's JSON): every other record, each with the ``run`` (commit, date, machine ...) that
    produced it; a record written before runs were recorded per record gets ``legacy_run(record)``.
    Used by the scripts whose cases or datasets can be rerun one at a time and merged
    (``benchmark_decoding.py``, ``benchmark_training.py``), so each record keeps its own run."""
    kept = {}
    for name, record in old.items():
        if name not in rerun:
            record.setdefault("run", legacy_run(record))
            kept[name] = record
    return kept


def group_by_run(runs: dict) -> list:
    """``[(run, [names])]``: the names of ``runs`` (name -> run dict) grouped by equal run, in the
    order each run first appears; for one line of metadata per run instead of per record."""
    groups: dict = {}
    for name, run in runs.items():
        groups.setdefault(json.dumps(run, sort_keys=True, default=str), (run, []))[1].append(name)
    return list(groups.values())


def replace_section(path: Path, start: str, end: str, section: str) -> Path:
    """Write ``section`` (which begins with ``start`` and ends with ``end``) into ``path``.

    An existing ``start`` ... ``end`` block is replaced in place and the text around it kept;
    a file with neither marker gets the section appended (a missing file starts from
    ``HEADER``). Written atomically (``write_atomic``).

    Raises:
        ValueError: ``section`` does not begin with ``start`` and end with ``end``; or ``path``
            holds a marker more than once, only one of the two, or ``end`` before ``start``
            (replacing or appending there would delete or duplicate text, so nothing is written).
    """
    path = Path(path)
    if not (section.startswith(start) and section.rstrip("\n").endswith(end)):
        raise ValueError(f"section: must begin with {start!r} and end with {end!r}")
    text = path.read_text() if path.exists() else HEADER
    n_start, n_end = text.count(start), text.count(end)
    if (n_start, n_end) == (0, 0):
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    elif (n_start, n_end) == (1, 1) and text.index(start) < text.index(end):
        text = text[: text.index(start)] + section.rstrip("\n") + text[text.index(end) + len(end):]
    else:
        raise ValueError(f"{path}: expected {start!r} once followed by {end!r} once (or neither), found "
                         f"{n_start} start and {n_end} end marker(s)"
                         + (" with the end first" if (n_start, n_end) == (1, 1) else "")
                         + "; fix the markers by hand, nothing was written")
    return write_atomic(path, text)
