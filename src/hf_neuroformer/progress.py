"""Progress bars (tqdm) that suit both a terminal and a log file.

In a terminal a bar redraws itself in place; written to a file (``neuroformer train ... > log``,
a batch job), every redraw is kept, and a 3000-step run left thousands of bar lines. When
standard error is not a terminal the bar is redrawn at most every ``LOG_INTERVAL_S`` seconds, each
redraw a line of its own (no carriage returns in the file).

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


def _is_terminal(stream) -> bool:
    """Whether a bar written to ``stream`` is seen in a terminal (else it goes into a log file or a pipe)."""
    return bool(getattr(stream, "isatty", lambda: False)())


@functools.lru_cache(maxsize=None)
def _bar_class():
    """``tqdm.auto.tqdm`` whose :meth:`write` (the line above the bar: ``step N: train loss ...``)
    flushes its stream: standard output into a file is block-buffered (unless
    ``PYTHONUNBUFFERED`` is set), so ``neuroformer train > log`` showed its step lines only every
    few kB or at the end, while the bar on standard error went on.

    Made with ``lines=True`` (:func:`progress_bar` for a stream that is not a terminal), a bar
    writes each redraw as a line of its own (ending in a newline, no carriage return) and has
    nothing to clear: tqdm's redraw in place (``\\r`` + the bar) and its clearing before a line
    written above the bar (``\\r`` + spaces + ``\\r``) left, in a log file, whitespace-only
    lines before every step line and bar text run into the lines of other writers, wherever the
    viewer (an editor, a CI log, Python's text mode) takes a carriage return as a line break."""
    from tqdm.auto import tqdm

    notebook = any(c.__module__ == "tqdm.notebook" for c in tqdm.__mro__)  # a widget, not text: left as it is

    class Bar(tqdm):
        def __init__(self, *args, lines: bool = False, **kwargs):
            self._lines = lines and not notebook
            self._closing = self._after_clear = False
            self._drawn_n = None  # the count its last line showed (lines mode)
            super().__init__(*args, **kwargs)

        @classmethod
        def write(cls, s, file=None, end="\n", nolock=False):
            super().write(s, file=file, end=end, nolock=nolock)
            fp = file if file is not None else sys.stdout
            if fp is not None and hasattr(fp, "flush"):
                fp.flush()

        def display(self, msg=None, pos=None):
            if not self._lines:
                return super().display(msg, pos)
            if self._after_clear:  # tqdm redraws the bar after a line written above it: in a file its last
                self._after_clear = False  # line is still there, above that line
                return False
            text = self.__str__() if msg is None else msg
            if text:
                # the last one, when closing, without its newline: close() writes it
                self.fp.write(text if self._closing else text + "\n")
                getattr(self.fp, "flush", lambda: None)()
                self._drawn_n = self.n
            return False  # nothing drawn in place, so close() does not return to its start (a carriage return)

        def clear(self, nolock=False):
            if not self._lines:
                super().clear(nolock=nolock)
            elif not self._closing:  # nothing to clear in a file (see display)
                self._after_clear = True

        def close(self):
            self._closing = True
            if self._lines:
                # a line cannot be taken back from a file: a bar that is not left (leave=False) ends with
                # its last state too, unless its last line says it already (then nothing, not a repeat)
                self.leave = self._drawn_n != self.n
            super().close()

    return Bar


def progress_bar(iterable=None, **kwargs):
    """``tqdm.auto.tqdm(iterable, **kwargs)``, redrawn at most every :data:`LOG_INTERVAL_S` s
    when standard error is not a terminal (unless ``mininterval`` is given), at the first update
    after that, each redraw then a line of its own (see :func:`_bar_class`); off when
    ``TQDM_DISABLE`` is set (see :func:`bars_disabled_by_environment`), whatever ``disable`` says.
    Its ``write`` flushes the stream it writes to (see :func:`_bar_class`)."""
    tqdm = _bar_class()
    # explicit, so that tqdm's own reading of TQDM_DISABLE (bool("0") is True) does not apply
    kwargs["disable"] = bool(kwargs.get("disable", False)) or bars_disabled_by_environment()
    is_tty = _is_terminal(kwargs.get("file") or sys.stderr)
    kwargs.setdefault("mininterval", 0.1 if is_tty else LOG_INTERVAL_S)
    if not is_tty:
        kwargs["lines"] = True  # every redraw a line of its own (see _bar_class)
        # check the clock at every update: with tqdm's default, dynamic ``miniters`` (the
        # iterations of one interval), its monitor thread redrew such a bar every ``maxinterval``
        # (10 s) instead, 10 to 20 s apart in a training log; and a bar whose steps slowed down
        # waited for that many iterations
        kwargs.setdefault("miniters", 1)
    return tqdm(iterable, **kwargs)


@contextlib.contextmanager
def transformers_progress_bars(on: bool):
    """transformers' own progress bars ("Loading weights" of ``from_pretrained``, "Writing model
    shards" of ``save_pretrained``) off inside the block unless ``on``, and off as well where the
    package's bars follow the log-file rule (standard error not a terminal, see
    :func:`progress_bar`) or ``TQDM_DISABLE`` is set: transformers' bars redraw in place, so a
    ``neuroformer train ... 2> log`` run left carriage returns in the log at every save. Their
    earlier state is restored afterwards (``transformers.utils.logging`` holds it process-wide)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    if not (on and _is_terminal(sys.stderr) and not bars_disabled_by_environment()):
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


__all__ = ["LOG_INTERVAL_S", "bars_disabled_by_environment", "progress_bar", "transformers_progress_bars"]
