"""Progress bars (tqdm) that suit both a terminal and a log file.

In a terminal a bar redraws itself in place; written to a file (``neuroformer train ... > log``,
a batch job), every redraw is kept, and a 3000-step run left thousands of bar lines. When
standard error is not a terminal the bar is redrawn at most every ``LOG_INTERVAL_S`` seconds.

``TQDM_DISABLE=1`` in the environment turns every bar of the package off (e.g. for a batch job's
log), as it does tqdm's own default: the package passes ``disable=`` explicitly, which tqdm lets
win over the environment, so :func:`progress_bar` reads the variable itself.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys

#: Seconds between redraws of a bar whose output goes to a file or pipe.
LOG_INTERVAL_S = 30.0


def bars_disabled_by_environment() -> bool:
    """Whether ``TQDM_DISABLE`` is set to anything but ``""``, ``0``, ``false`` or ``no``."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false", "no")


@functools.lru_cache(maxsize=None)
def _bar_class():
    """``tqdm.auto.tqdm`` whose :meth:`write` (the line above the bar: ``step N: train loss ...``)
    flushes its stream: standard output into a file is block-buffered (unless
    ``PYTHONUNBUFFERED`` is set), so ``neuroformer train > log`` showed its step lines only every
    few kB or at the end, while the bar on standard error went on."""
    from tqdm.auto import tqdm

    class Bar(tqdm):
        @classmethod
        def write(cls, s, file=None, end="\n", nolock=False):
            super().write(s, file=file, end=end, nolock=nolock)
            fp = file if file is not None else sys.stdout
            if fp is not None and hasattr(fp, "flush"):
                fp.flush()

    return Bar


def progress_bar(iterable=None, **kwargs):
    """``tqdm.auto.tqdm(iterable, **kwargs)``, redrawn at most every :data:`LOG_INTERVAL_S` s
    when standard error is not a terminal (unless ``mininterval`` is given), at the first update
    after that; off when
    ``TQDM_DISABLE`` is set (see :func:`bars_disabled_by_environment`), whatever ``disable`` says.
    Its ``write`` flushes the stream it writes to (see :func:`_bar_class`)."""
    tqdm = _bar_class()
    # explicit, so that tqdm's own reading of TQDM_DISABLE (bool("0") is True) does not apply
    kwargs["disable"] = bool(kwargs.get("disable", False)) or bars_disabled_by_environment()
    stream = kwargs.get("file") or sys.stderr
    is_tty = bool(getattr(stream, "isatty", lambda: False)())
    kwargs.setdefault("mininterval", 0.1 if is_tty else LOG_INTERVAL_S)
    if not is_tty:
        # check the clock at every update: with tqdm's default, dynamic ``miniters`` (the
        # iterations of one interval), its monitor thread redrew such a bar every ``maxinterval``
        # (10 s) instead, 10 to 20 s apart in a training log; and a bar whose steps slowed down
        # waited for that many iterations
        kwargs.setdefault("miniters", 1)
    return tqdm(iterable, **kwargs)


@contextlib.contextmanager
def transformers_progress_bars(on: bool):
    """transformers' own progress bars ("Loading weights" of ``from_pretrained``, "Writing model
    shards" of ``save_pretrained``) off inside the block unless ``on``; their earlier state is
    restored afterwards (``transformers.utils.logging`` holds it process-wide)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    if not on:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


__all__ = ["LOG_INTERVAL_S", "bars_disabled_by_environment", "progress_bar", "transformers_progress_bars"]
