"""Progress bars (tqdm) that suit both a terminal and a log file.

In a terminal a bar redraws itself in place; written to a file (``neuroformer train ... > log``,
a batch job), every redraw is kept, and a 3000-step run left thousands of bar lines. When
standard error is not a terminal the bar is redrawn at most every ``LOG_INTERVAL_S`` seconds.
"""

from __future__ import annotations

import contextlib
import sys

#: Seconds between redraws of a bar whose output goes to a file or pipe.
LOG_INTERVAL_S = 30.0


def progress_bar(iterable=None, **kwargs):
    """``tqdm.auto.tqdm(iterable, **kwargs)``, redrawn at most every :data:`LOG_INTERVAL_S` s
    when standard error is not a terminal (unless ``mininterval`` is given)."""
    from tqdm.auto import tqdm

    stream = kwargs.get("file") or sys.stderr
    is_tty = bool(getattr(stream, "isatty", lambda: False)())
    kwargs.setdefault("mininterval", 0.1 if is_tty else LOG_INTERVAL_S)
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


__all__ = ["LOG_INTERVAL_S", "progress_bar", "transformers_progress_bars"]
