"""Recording -> windows -> ``datasets.Dataset``; honest splits; the collator.

Splits (GUIDE trap 6 and 7): the original Neuroformer drew train and test windows interleaved in
time. Here a recording is cut into contiguous time blocks of ``config.split_block_length`` s
(or into whole trials when it has trials), blocks are assigned to train / validation / test by
a seeded permutation. No window of one split (past window included) reads a spike of another
split because the first window of each segment starts ``config.past_window`` after the segment's
start (:func:`window_starts_for_split`), so every window's past lies inside its own segment. At
every boundary between splits ``config.split_gap`` s (at least the past window) are left out as
well: a margin so that activity outlasting the boundary (a burst, a slow drift of the firing
rates) is not in both splits. In trial mode trials that overlap in time go to the same split,
and each window's past is clipped to its own trial. A modality window that reads past the
current window (``allow_future``) stays inside the window's block (time mode,
:func:`window_reach`) or trial.
"""

from __future__ import annotations

import itertools
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from .argument_checks import is_finite_number
from .binning import BIN_EDGE_SECONDS, n_full_bins, narrow_float_times_message, on_time_grid, past_starts, window_ends
from .configuration_neuroformer import NeuroformerConfig, is_real_number, is_whole_number, milliseconds_hint
from .recording import (WINDOW_GRID, SpikeRecording, _merge_intervals, check_is_recording, check_not_empty, count_noun,
                        first_few, inside_one_interval)
from .tokenization_neuroformer import NeuroformerTokenizer, generated_source_session

SPLITS = ("train", "validation", "test")


@dataclass
class SplitPlan:
    """Where each split's windows come from.

    Attributes:
        mode: ``"time"`` or ``"trials"``.
        segments: split name -> ``(n, 2)`` float64 ``[start, stop)`` s; every window's span
            (past window included, in time mode) lies inside one segment.
        trial_index: split name -> ``(n,)`` int64 trial indices (trial mode), else empty.
    """

    mode: str
    segments: Dict[str, np.ndarray]
    trial_index: Dict[str, np.ndarray]

    @classmethod
    def from_dict(cls, d: dict, source: str = "the split plan") -> "SplitPlan":
        """Inverse of :meth:`to_dict` (reads ``splits.json``; :meth:`read` reads the file).

        Args:
            d: ``{"mode": "time" | "trials", "segments": {split: [[start, stop], ...]},
                "trial_index": {split: [i, ...]}}`` with every split of :data:`SPLITS`.
            source: what ``d`` was read from, for the error message (a file's path).

        Raises:
            ValueError: a key or split missing, or a ``mode`` other than ``"time"`` / ``"trials"``
                (the message names ``source`` and the key); a split's segments not a list of
                ``[start, stop]`` pairs of finite numbers (s) with ``start <= stop`` (the message
                names ``source``, the split, the segment's index and its value); segments of two
                splits overlap (:func:`check_splits_apart`; the message names ``source`` and the two
                segments); a split's ``trial_index`` not a list of non-negative integers (booleans,
                text and fractions refused; the message names ``source``, the split, the position
                and its value), or a trial listed in two splits (the message names ``source``, the
                trial and the splits; twice in one split is windowed once, with a warning).
        """
        remedy = ("; it is written by 'neuroformer train' / 'neuroformer prepare' (SplitPlan.to_dict): restore the "
                  "file of the run that wrote this directory, or run it again")
        if not isinstance(d, dict):
            raise ValueError(f"{source}: expected a JSON object with 'mode', 'segments' and 'trial_index', got "
                             f"{type(d).__name__}{remedy}")
        for key in ("mode", "segments", "trial_index"):
            if key not in d:
                raise ValueError(f"{source}: the key {key!r} is missing (expected 'mode', 'segments' and "
                                 f"'trial_index'){remedy}")
        if d["mode"] not in ("time", "trials"):
            raise ValueError(f"{source}: 'mode' must be \"time\" or \"trials\", got {d['mode']!r}{remedy}")
        for key in ("segments", "trial_index"):
            if not isinstance(d[key], dict):
                raise ValueError(f"{source}: {key!r} must map each split to a list, got {type(d[key]).__name__}{remedy}")
            missing = [s for s in SPLITS if s not in d[key]]
            if missing:
                raise ValueError(f"{source}: {key!r} has no {first_few(missing)} split (expected "
                                 f"{', '.join(map(repr, SPLITS))}){remedy}")
        plan = cls(
            d["mode"],
            {k: _segments_from_json(k, v, source, remedy) for k, v in d["segments"].items()},
            {k: _trial_index_from_json(k, v, source, remedy) for k, v in d["trial_index"].items()},
        )
        _check_trials_apart(plan.trial_index, source, remedy)
        # a damaged or hand-edited file with overlapping splits scored windows the model was trained on
        check_splits_apart(plan, source, remedy)
        return plan

    @classmethod
    def read(cls, path) -> "SplitPlan":
        """The plan of a ``splits.json`` file (a model's, a decoder's or a prepared directory's).

        Raises:
            ValueError: the file is not JSON, lacks a key or split, has a segment that is not a
                ``[start, stop]`` pair of finite seconds with ``start <= stop``, or has segments of
                two splits that overlap (:meth:`from_dict`); the message names the file.
            OSError: the file cannot be read.
        """
        import json

        try:
            d = json.loads(Path(path).read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{str(path)!r}: not valid JSON ({err}); it records the split plan written by "
                             "'neuroformer train' / 'neuroformer prepare'") from None
        return cls.from_dict(d, source=repr(str(path)))

    def to_dict(self) -> dict:
        """JSON-ready form (lists for arrays) as written to ``splits.json``; :meth:`from_dict`
        reads it back."""
        return {
            "mode": self.mode,
            "segments": {k: v.tolist() for k, v in self.segments.items()},
            "trial_index": {k: v.tolist() for k, v in self.trial_index.items()},
        }


def _json_list(value, where: str, expected: str, remedy: str) -> list:
    """``value`` of a ``splits.json`` entry as a list (a plan's own numpy array, given back to
    :meth:`SplitPlan.from_dict`, as its list). Raises ValueError ``<where> is <value>; expected
    <expected>`` when it is no list."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{where} is {value!r}; expected {expected}{remedy}")
    return value


def _segments_from_json(split, value, source: str, remedy: str) -> np.ndarray:
    """One split's ``segments`` entry of ``splits.json`` (``[[start, stop], ...]`` s, as
    :meth:`SplitPlan.to_dict` writes it) as an ``(n, 2)`` float64 array.

    ``np.asarray(value).reshape(-1, 2)`` failed on ``[[0, 1, 2]]`` with numpy's bare "cannot
    reshape array of size 3 into shape (2)", naming neither the file nor the split, paired up the
    numbers of a flat list, and took ``[[5, 1]]`` (stop before start) or NaN / inf bounds as they
    were.

    Raises:
        ValueError: ``<source>: segments[<split>][<i>] is <value>; expected ...`` for a value that is
            not a list, a segment that is not a list of two real numbers (booleans and text
            refused), a NaN or infinite bound, or a stop before its start.
    """
    where = f"{source}: segments[{split!r}]"
    value = _json_list(value, where, "a list of [start, stop] segments (s)", remedy)
    for i, seg in enumerate(value):
        at = f"{where}[{i}] is {seg!r}"
        if not (isinstance(seg, (list, tuple)) and len(seg) == 2 and all(is_real_number(x) for x in seg)):
            raise ValueError(f"{at}; expected a [start, stop] pair of numbers (s){remedy}")
        if not all(is_finite_number(x) for x in seg):
            raise ValueError(f"{at}; expected finite start and stop times (s), not NaN or infinite{remedy}")
        if float(seg[1]) < float(seg[0]):
            raise ValueError(f"{at}; expected start <= stop (s), but the segment stops "
                             f"{float(seg[0]) - float(seg[1]):g} s before it starts{remedy}")
    return np.asarray(value, dtype=np.float64).reshape(-1, 2)


def _trial_index_from_json(split, value, source: str, remedy: str) -> np.ndarray:
    """One split's ``trial_index`` entry of ``splits.json`` (``[i, ...]``, as :meth:`SplitPlan.to_dict`
    writes it) as an ``(n,)`` int64 array of trial indices (0-based rows of ``recording.trials``).

    ``np.asarray(value, dtype=np.int64)`` read ``1.5`` as trial 1 and ``"1"`` or ``true`` as trial 1,
    and took ``-1`` (the last trial) as it was.

    Raises:
        ValueError: ``<source>: trial_index[<split>][<i>] is <value>; expected ...`` for a value that
            is not a list, or an entry that is not a non-negative integer (booleans, text and
            fractions, ``2.0`` included, refused).
    """
    where = f"{source}: trial_index[{split!r}]"
    value = _json_list(value, where, "a list of trial indices (integers >= 0)", remedy)
    for i, t in enumerate(value):
        if not is_whole_number(t):
            raise ValueError(f"{where}[{i}] is {t!r}; expected a trial index, an integer >= 0 (not a bool, "
                             f"text or a fraction){remedy}")
        if t < 0:
            raise ValueError(f"{where}[{i}] is {t!r}; expected a trial index, an integer >= 0{remedy}")
    return np.asarray(value, dtype=np.int64).reshape(-1)


def _check_trials_apart(trial_index: Dict[str, np.ndarray], source: str, remedy: str) -> None:
    """Refuse a trial listed in two splits of a plan's ``trial_index`` (its windows would be trained
    on and scored, GUIDE trap 6). Raises ValueError naming ``source``, the trial and the splits. A
    trial listed twice in one split is left to the windowing, which tiles the split's time once and
    warns of the overlap (:func:`tiling_windows`), as it does for overlapping trials."""
    seen: Dict[int, str] = {}
    for split in [s for s in SPLITS if s in trial_index] + [s for s in trial_index if s not in SPLITS]:
        for t in trial_index[split].tolist():
            if seen.get(t, split) != split:
                raise ValueError(f"{source}: trial {t} is in both the {seen[t]} and the {split} split of "
                                 f"trial_index; expected each trial in at most one split{remedy}")
            seen[t] = split


def window_reach(config: NeuroformerConfig) -> float:
    """How far after its start (s) a window reads: ``current_window``, or the latest modality
    ``window`` end when a modality reads past the current window (``allow_future``). In time mode
    a window needs ``[start - past_window, start + window_reach)`` inside one segment of its split
    (:func:`window_starts_for_split`), so that a future modality window does not read the split
    gap and the next block (another split's, maybe); in trial mode
    :func:`hf_neuroformer.modalities.modality_columns` ends it at the window's trial's end."""
    ends = [float(m["window"][1]) for m in (config.modalities or []) if m.get("window") is not None]
    return max([float(config.current_window)] + ends)


def window_starts_array(window_starts, name: str = "window_starts", *, clip_starts: bool = False,
                        empty_hint: str = "") -> np.ndarray:
    """``window_starts`` as a ``(n_windows,)`` float64 array of seconds, checked as every function
    that takes window starts checks them (processor, generation, likelihood, attention analyses).

    Args:
        window_starts: one start per window, s.
        name: the argument named in the messages.
        clip_starts: the values are past-clip starts (``past_clip_starts``): NaN ("no clip") is
            allowed, and so is an empty array; otherwise at least one start, all finite.
        empty_hint: appended to the message for no starts (how to get them).

    Raises:
        ValueError: naming ``name``, for values that are not real numbers (strings, booleans,
            complex, ragged lists), for float32 / float16 values, an array of them or such items
            in a list of Python floats (widened to float64, float32 700.05 is 700.0499877929688 s:
            pass float64 times), for anything but a 1-D sequence (a ``(n, 1)`` column or a
            ``(n_trials, k)`` grid of starts was flattened into one list of windows without a word),
            for no starts, or for a NaN / infinite start.
    """
    try:
        raw = np.asarray(window_starts)
        if raw.dtype.kind in "bUSc":  # True -> 1.0 s, "1.5" -> 1.5 s, 1+2j: not times
            raise TypeError(f"dtype {raw.dtype}")
        starts = raw.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name}: expected window starts as real numbers (s), got {type(window_starts).__name__} "
                         f"({str(err).splitlines()[0]})") from None
    # float32 700.05 is 700.0499877929688 s: widened to float64, the window would start 12 µs early
    # (off the 1 ns window grid, so a spike at 700.05 s fell out of it)
    # a list as given, not raw: np.asarray widened a list mixing float32 items with Python floats to float64
    given = window_starts if isinstance(window_starts, (list, tuple)) else raw
    narrow = narrow_float_times_message(given, name, item="window") if starts.size else None
    if narrow is not None:
        raise ValueError(narrow)
    if starts.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence of window starts (s), got shape {starts.shape}; pass "
                         "np.ravel(starts) if one list of windows is meant")
    if clip_starts:
        return starts
    if starts.size == 0:
        raise ValueError(f"{name}: expected at least one window start (s), got none" + (f"; {empty_hint}" if empty_hint
                                                                                        else ""))
    bad = np.flatnonzero(~np.isfinite(starts))
    if bad.size:
        raise ValueError(f"{name}: expected finite times (s), window {bad[0]} starts at {starts[bad[0]]}")
    return starts


def column_values(dataset, name: str, dtype=np.float64) -> np.ndarray:
    """One scalar column of a window dataset (``datasets.Dataset``) as a ``(n_windows,)`` numpy
    array of ``dtype``, in the dataset's row order (its ``select`` / ``shuffle`` indices applied).

    Read through Arrow in one piece (the ``"arrow"`` format gives the column as one
    ``pyarrow.ChunkedArray``, indices applied): ``np.asarray(dataset[name])`` goes through a
    ``datasets.Column`` row by row, and so does ``dataset.with_format("numpy")[name]`` in datasets
    5.x (also a ``Column``: about 1.8 s for 12,000 windows on a loaded 2-core machine, against 1 ms
    here, paid several times per training run and fine-tune); ``dataset.with_format("numpy")[:]``
    gives a float64 column as float32; ``dataset.data`` would ignore the indices.

    Raises:
        ValueError: ``name`` is not a column of ``dataset`` (``datasets``' own error, naming the
            columns it has).
    """
    values = dataset.select_columns([name]).with_format("arrow")[name]
    return np.asarray(values.to_numpy(), dtype=dtype)


def recorded_stretches(support: np.ndarray) -> np.ndarray:
    """``support`` (``(n, 2)`` float64 ``[start, stop)`` s) with the intervals that touch or
    overlap (within 1 ns, :data:`WINDOW_GRID`) merged: one stretch of recorded time, as
    :func:`plan_splits` takes them (a generated recording's support is its tiled windows; an
    interval table may hold abutting rows). Returns ``(m, 2)`` float64 sorted by start."""
    return _merge_intervals(support)  # merges within 1 ns = WINDOW_GRID


def windows_outside_support(support: np.ndarray, starts: np.ndarray, window: float) -> np.ndarray:
    """Indices of the current windows ``[s, round(s + window, 9))`` that do not lie inside one
    interval of ``support`` (a recording's ``support``, ``(n, 2)`` s, sorted; intervals that touch,
    within 1 ns, count as one, as :func:`plan_splits` takes them): such a window lies
    in a hole of the recorded time (between two intervals of an epoch union) or outside it, where
    the recording holds no spikes, so its spikes and its past would be read as silence.

    Args:
        support: ``(n_intervals, 2)`` float64 ``[start, stop)`` s.
        starts: ``(n_windows,)`` float64 window starts, s.
        window: window length, s.

    Returns:
        ``(n_bad,)`` int64 indices into ``starts``, ascending (empty when ``support`` is empty).
    """
    support = np.asarray(support, dtype=np.float64).reshape(-1, 2)
    starts = np.asarray(starts, dtype=np.float64).reshape(-1)
    if len(support) == 0 or starts.size == 0:
        return np.zeros(0, dtype=np.int64)
    # plan_splits puts windows across the shared edge of touching intervals, which were refused here
    support = recorded_stretches(support)
    return np.flatnonzero(~inside_one_interval(starts, window_ends(starts, window), support)).astype(np.int64)


def check_windows_in_support(support: np.ndarray, starts: np.ndarray, window: float) -> None:
    """Refuse current windows that :func:`windows_outside_support` finds (a recording's spikes
    and past would be read as silence there).

    Raises:
        ValueError: ``window_starts: index i, window [s, e) s, is not inside the recorded time``
            with the support's extent and how many windows are outside it; any window when
            ``support`` is empty (a recording with no spikes and no ``time_domain``).
    """
    if len(np.asarray(support).reshape(-1, 2)) == 0 and np.size(starts):
        # windows_outside_support finds no interval to fail against: every window was tokenized as silence
        raise ValueError(
            f"window_starts: the recording has no recorded time (no spikes and no time_domain), so none of the "
            f"{np.size(starts)} windows (first [{float(np.ravel(starts)[0])}, "
            f"{float(window_ends(np.ravel(starts)[0], window))}) s) lies inside it; give the recording's "
            "time_domain=(start, stop) in seconds")
    out = windows_outside_support(support, starts, window)
    if out.size:
        support = np.asarray(support, dtype=np.float64).reshape(-1, 2)
        i = int(out[0])
        s = float(starts[i])
        raise ValueError(
            f"window_starts: index {i}, window [{s}, {float(window_ends(s, window))}) s, is not inside the recorded time "
            f"({count_noun(len(support), 'interval')} of the recording's time support, {support[0, 0]:g} to {support[-1, 1]:g} "
            f"s); {out.size} of {len(starts)} windows {'is' if out.size == 1 else 'are'} not: each current window must lie inside one interval")


def check_pasts_recorded(recording: SpikeRecording, starts: np.ndarray, clips: Optional[np.ndarray],
                         past_window: float, current_window: float) -> None:
    """Refuse windows whose past window (``[start - past_window, start)`` s, from the past clip on
    where ``clips`` holds one) reaches before the stretch of recorded time that holds the window:
    the recording's time domain, or the interval of its time support (touching intervals merged).
    The recording holds no spikes there, so that part of the past was read as silence, a past that
    training never produces: its windows start ``past_window`` after their segment's start
    (:func:`window_starts_for_split`), or have their past clipped to their
    trial, and a split plan whose windows' pasts leave the recorded time is refused
    (:func:`build_window_datasets`). The current windows were checked first
    (:func:`check_windows_in_support`). Used by
    :func:`~hf_neuroformer.generation.generate_spikes` and ``NeuroformerProcessor.tokenize(refuse_unrecorded_past=True)``.

    The message says what to pass for the case at hand: for a window inside a trial that starts in
    the window's stretch, its trial start as its past clip (what a trial-mode model read in
    training); for a generated recording (``generation_stats``, or a ``"<session>-generated"``
    session), which holds only its generated windows, each window's clip at the start of its
    generated stretch (README, "Generation"); else windows ``past_window`` into the recorded time.

    Raises:
        ValueError: naming the first such window, its past's start, the stretch of recorded time,
            how many windows reach before theirs and the past clips (or windows) that avoid it.
    """
    support = recording.support
    if len(support) == 0 or starts.size == 0:
        return
    lo = past_starts(starts, past_window)
    if clips is not None:  # a trial's window reads its past from the trial's start on (NaN: no clip)
        lo = np.where(np.isnan(clips), lo, np.maximum(lo, on_time_grid(np.nan_to_num(clips, nan=-np.inf))))
    ends = window_ends(starts, current_window)
    out = windows_outside_support(support, lo, ends - lo)
    if not out.size:
        return
    i = int(out[0])
    stretches = recorded_stretches(support)
    k = int(np.searchsorted(stretches[:, 0], float(starts[i]) + 1e-9, side="right")) - 1  # the stretch holding it
    a, b = (float(v) for v in stretches[max(k, 0)])
    where = ("the recording's time domain" if recording.time_support is None
             else f"interval {max(k, 0)} (of {len(stretches)}) of the recording's time support")
    raise ValueError(
        f"window_starts: window {i} [{float(starts[i])}, {float(ends[i])}) s has its past window start at "
        f"{float(lo[i])} s (past_window {past_window:g} s), before {where}, [{a:g}, {b:g}) s, so that past would be "
        f"read as silence, which training never produces (time-mode windows start past_window after their "
        f"segment's start, trial-mode windows read their past from their trial's start on); {out.size} of "
        f"{starts.size} windows reach before their recorded time; "
        + _unrecorded_past_remedy(recording, float(starts[i]), a))


def _unrecorded_past_remedy(recording: SpikeRecording, start: float, stretch_start: float) -> str:
    """The end of :func:`check_pasts_recorded`'s message: what to pass for the refused window that
    starts at ``start`` (s) in the recorded stretch from ``stretch_start`` (s)."""
    if getattr(recording, "generation_stats", None) is not None or generated_source_session(recording.session):
        # its support is its generated windows: generation_windows' windows, whose first ones generate_spikes gave
        # the recorded past, have no past in it; starting windows past_window in (the advice below) is no help
        return (f"the recording {recording.session!r} is a generated one, holding only its generated windows, so "
                f"the windows within past_window of the start of a generated stretch ({stretch_start:g} s here) have "
                "no whole past in it: to score them from that start on, pass each window's clip at the start of its "
                "generated stretch, s = hf_neuroformer.windows.recorded_stretches(recording.support); "
                "past_clip_starts=s[np.searchsorted(s[:, 0], starts, side='right') - 1, 0] "
                "(generate_spikes, window_log_likelihoods, decode_windows, the attention analyses and the processor "
                "also take past_clip_starts='auto', which clips there), "
                "or leave those windows out")
    trials = recording.trials
    if trials is not None and len(trials):
        t = int(trial_at(trials, np.asarray([start]))[0])
        if t >= 0 and float(trials[t, 0]) >= stretch_start - WINDOW_GRID:  # clipping at its trial's start is enough
            return (f"the window lies in trial {t} [{float(trials[t, 0]):g}, {float(trials[t, 1]):g}) "
                    "s, and a model trained in trial mode (splits.json mode 'trials') read each window's past from "
                    "its trial's start on: pass each window's trial start as past_clip_starts "
                    f"({float(trials[t, 0])} s for this one; recording.trials[hf_neuroformer.windows.trial_at("
                    "recording.trials, starts), 0] for windows that all lie in trials; tiling_windows / "
                    "generation_windows return them with a split's windows; generate_spikes, "
                    "window_log_likelihoods, decode_windows, the attention analyses and the processor also take "
                    "past_clip_starts='trials'); for a time-mode model, start each window at least past_window after the recorded "
                    "time's start")
    return ("start each window at least past_window after the recorded time's start (window_starts_for_split / "
            "generation_windows give such windows), or pass past_clip_starts at or after it")


#: the strings every function that reads windows of a recording takes as ``past_clip_starts``
#: (:func:`resolve_past_clip_starts`)
PAST_CLIP_MODES = ("trials", "auto")


def resolve_past_clip_starts(recording: SpikeRecording, starts: np.ndarray, past_clip_starts, *,
                             past_window: float, current_window: float, split_mode: Optional[str] = None,
                             stacklevel: int = 2) -> Optional[np.ndarray]:
    """The per-window clip of the past that ``past_clip_starts`` asks for, resolved and checked once
    for every function that reads windows of a recording: the processor
    (:meth:`~hf_neuroformer.NeuroformerProcessor.tokenize`, hence
    :func:`~hf_neuroformer.likelihood.window_log_likelihoods`),
    :func:`~hf_neuroformer.generation.generate_spikes`, :func:`~hf_neuroformer.finetuning.decode_windows`,
    :func:`~hf_neuroformer.analysis.connectivity.attention_connectivity` and
    :func:`~hf_neuroformer.analysis.visual_attention.visual_attention_maps`. The past window
    ``[start - past_window, start)`` of each window is read from its clip on.

    Args:
        recording: the recording whose windows are read (its ``trials`` and ``support``).
        starts: ``(n_windows,)`` float64 current-window starts, s (checked by :func:`window_starts_array`).
        past_clip_starts: one of

            - ``None``: no clip (the whole past window);
            - ``(n_windows,)`` seconds: the past starts no earlier than this (NaN: no clip); each at
              most 1 ns (the window grid) after its window's start;
            - ``"trials"``: the start of the trial each window starts in (:func:`trial_at`; the
              latest-starting one where trials overlap, with a warning: training made windows of each
              overlapping trial, each clipped at its own start, so pass the clip starts of
              :func:`window_starts_for_split` there), as a model trained in trial mode
              (``splits.json`` ``"mode": "trials"``) read them. A window outside every trial, which
              training never saw, is clipped at the end of the latest trial that ended by its start, so
              its past holds inter-trial time and no trial's spikes (no clip before the first trial ends);
            - ``"auto"``: ``"trials"`` when ``split_mode`` is ``"trials"`` and the recording has trials
              (a warning when it has none), else no clip; either way, a past window that reaches before
              the start of the recorded stretch holding its window (an interval of ``recording.support``,
              touching ones merged, :func:`recorded_stretches`) is clipped at that start, so such a
              window reads a partial past (an empty one for a window at the very start of its stretch),
              never unrecorded time as silence, and :func:`check_pasts_recorded` never refuses it.
        past_window, current_window: the model's windows, s.
        split_mode: how the model's splits were planned (``SplitPlan.mode``: ``"trials"``, ``"time"``)
            or ``None`` (unknown); read by ``"auto"`` only. The processor passes its own; the other
            functions take the model alone, so for them ``"auto"`` clips at the stretch start only.
        stacklevel: the warnings' ``stacklevel`` as the caller would pass it to ``warnings.warn`` (1: the
            caller's line).

    Returns:
        ``(n_windows,)`` float64 clip starts, s (NaN: no clip), or ``None`` for no clip at all.

    Raises:
        ValueError: naming ``window_starts``, a current window outside the recorded time
            (:func:`check_windows_in_support`); naming ``past_clip_starts``, ``"trials"`` for a
            recording without trials, another string, values that are not float64 real numbers
            (text, booleans, float32; :func:`window_starts_array`), not one per window, or more than
            1 ns after their window's start.

    Warns:
        UserWarning: with ``"trials"`` (or ``"auto"`` for a trial-mode model), windows that start
            inside more than one trial, counted; with ``"auto"`` and ``split_mode="trials"``, a
            recording without trials (no trial clip).
    """
    # the stretch clips of "auto" below take each window to lie inside one stretch
    check_windows_in_support(recording.support, starts, current_window)
    has_trials = recording.trials is not None and len(recording.trials) > 0
    stretch_clips = None
    if isinstance(past_clip_starts, str) and past_clip_starts == "auto":
        stretch_clips = _stretch_clips(recording, starts, past_window)
        past_clip_starts = "trials" if split_mode == "trials" and has_trials else None
        if split_mode == "trials" and not has_trials:
            warnings.warn("the model was trained with each window's past clipped at its trial's start "
                          "(splits.json mode 'trials'), but this recording has no trials: the past windows are "
                          "not clipped", UserWarning, stacklevel=stacklevel + 1)
    if isinstance(past_clip_starts, str):
        if past_clip_starts != "trials":
            raise ValueError(f"past_clip_starts: expected 'auto', 'trials', seconds per window or None, got "
                             f"{past_clip_starts!r}")
        if not has_trials:
            raise ValueError("past_clip_starts='trials': the recording has no trials; pass 'auto' (clip each past at "
                             "the start of the recorded stretch holding its window), seconds per window or None")
        k = trial_at(recording.trials, starts)  # the trial each window starts in (latest start wins)
        past_clip_starts = np.where(k >= 0, recording.trials[np.clip(k, 0, None), 0], np.nan)
        # a window outside every trial: its past stops at the end of the latest trial ended by its start,
        # so it reads the inter-trial time only (unclipped, it read the spikes of the trial before)
        ends = np.sort(recording.trials[:, 1])
        j = np.searchsorted(ends, starts + WINDOW_GRID, side="right") - 1
        out = (k < 0) & (j >= 0)
        past_clip_starts[out] = np.minimum(ends[j[out]], starts[out])
        # a window inside two overlapping trials: training made windows of each trial, each clipped at its own
        # trial's start; a start alone cannot say which of them is meant
        many = np.flatnonzero(trials_holding(recording.trials, starts) > 1)
        if many.size:
            i = int(many[0])
            warnings.warn(
                f"past_clip_starts: {many.size} of {starts.size} windows {'starts' if many.size == 1 else 'start'} inside more than one trial "
                f"(overlapping trials; first: window {i} at {starts[i]} s); their past is clipped at the latest "
                "trial start, while training made windows of each of those trials clipped at its own start: to "
                "score the windows of a split as training did, pass the clip starts "
                "hf_neuroformer.windows.window_starts_for_split returns", UserWarning, stacklevel=stacklevel + 1)
    clips = None
    if past_clip_starts is not None:
        # np.asarray(float64) read [True, False] as clips at 1 s and 0 s and failed on text naming no field
        # ("could not convert string to float")
        clips = window_starts_array(past_clip_starts, "past_clip_starts", clip_starts=True)
        if clips.shape != starts.shape:
            raise ValueError(f"past_clip_starts: expected one value per window ({starts.size}), got shape "
                             f"{clips.shape}")
        # window starts lie on a 1 ns grid (window_starts_for_split rounds them): a trial start
        # such as 2.8000000000000003 s clips its first window at 2.8 s (trial_at's tolerance)
        late = np.flatnonzero(clips > starts + WINDOW_GRID)
        if late.size:
            i = int(late[0])
            raise ValueError(f"past_clip_starts: index {i} is {clips[i]} s, after its window start {starts[i]} s "
                             "(expected the trial start, at or before the window; NaN for no clip)")
    if stretch_clips is not None:  # "auto": no past read from unrecorded time before the window's stretch
        clips = stretch_clips if clips is None else np.where(np.isnan(stretch_clips), clips,
                                                             np.fmax(clips, stretch_clips))
    return clips


def _stretch_clips(recording: SpikeRecording, starts: np.ndarray, past_window: float) -> Optional[np.ndarray]:
    """``(n_windows,)`` float64: the start (s) of the recorded stretch (touching intervals of
    ``recording.support`` merged, :func:`recorded_stretches`) that holds each window, where its past
    window reaches before it (into a gap of the time support, or before the recorded time), NaN
    elsewhere; None when no window's past does. The windows lie inside one stretch each (checked
    before)."""
    sup = recorded_stretches(recording.support)
    if len(sup) == 0:
        return None
    j = np.clip(np.searchsorted(sup[:, 0], starts + WINDOW_GRID, side="right") - 1, 0, None)
    a = sup[j, 0]
    reaches = past_starts(starts, past_window) < a - WINDOW_GRID
    return np.where(reaches, a, np.nan) if reaches.any() else None


def trial_at(trials: np.ndarray, times: np.ndarray, tolerance: float = WINDOW_GRID) -> np.ndarray:
    """``(n,)`` int64 index of the trial that contains each time, -1 where none does.

    A time counts as inside trial ``[start, stop)`` when ``start - tolerance <= t < stop``.
    The tolerance is the 1 ns grid that window starts are rounded to: a trial starting at
    ``1.4000000000000001`` s has its first window at ``1.4`` s, which a strict comparison would
    put before the trial (and, with abutting trials, in the previous one).

    Args:
        trials: ``(n_trials, 2)`` float64 ``[start, stop)`` s, any order; where trials overlap,
            the one with the latest start wins.
        times: ``(n,)`` float64 s.
    """
    trials = np.asarray(trials, dtype=np.float64).reshape(-1, 2)
    times = np.asarray(times, dtype=np.float64)
    if len(trials) == 0:
        return np.full(times.shape, -1, dtype=np.int64)
    order = np.argsort(trials[:, 0], kind="stable")
    srt = trials[order]
    k = np.searchsorted(srt[:, 0], times + tolerance, side="right") - 1
    idx = order[np.clip(k, 0, None)]
    ok = (k >= 0) & (times < trials[idx, 1])
    # the latest trial starting before t may have ended while an earlier, longer one still holds t (a
    # trial nested in another): that time was given -1. Only times before the latest stop so far can be.
    latest_stop = np.maximum.accumulate(srt[:, 1])
    for i in np.flatnonzero(~ok & (k >= 0) & (times < latest_stop[np.clip(k, 0, None)])):
        holds = np.flatnonzero(times[i] < srt[: k[i] + 1, 1])
        if holds.size:
            idx[i], ok[i] = order[holds[-1]], True
    return np.where(ok, idx, -1).astype(np.int64)


def trials_holding(trials: np.ndarray, times: np.ndarray, tolerance: float = WINDOW_GRID) -> np.ndarray:
    """``(n,)`` int64 number of trials that contain each time, with :func:`trial_at`'s tolerance at
    both ends: ``start - tolerance <= t < stop - tolerance``. More than 1 means overlapping trials,
    where :func:`trial_at` picks the latest-starting one. The same tolerance at the end keeps a
    window at a trial's grid-rounded start (``1.4`` s for a trial from ``1.4000000000000001`` s)
    out of the trial abutting it, which ends there: abutting trials are not counted as overlapping.

    Args:
        trials: ``(n_trials, 2)`` float64 ``[start, stop)`` s, any order, ``stop > start``.
        times: ``(n,)`` float64 s.
    """
    trials = np.asarray(trials, dtype=np.float64).reshape(-1, 2)
    times = np.asarray(times, dtype=np.float64)
    # those begun by each time minus those ended by it
    return (np.searchsorted(np.sort(trials[:, 0]), times + tolerance, side="right")
            - np.searchsorted(np.sort(trials[:, 1]) - tolerance, times, side="right")).astype(np.int64)


def _counts_from_fractions(n: int, fractions: Sequence[float]) -> List[int]:
    counts = [int(np.floor(f * n)) for f in fractions]
    for i, f in enumerate(fractions):  # every split with a non-zero fraction gets one item
        if f > 0 and counts[i] == 0:
            counts[i] = 1
    while sum(counts) > n:
        if max(counts) > 1:
            counts[int(np.argmax(counts))] -= 1
        else:  # fewer items than splits (a small stratum): the split of the smallest fraction (of two, the later:
            # test, then validation) goes without; taking train's first put a one-trial stratum in test only
            i = max((k for k, c in enumerate(counts) if c), key=lambda k: (-fractions[k], k))
            counts[i] -= 1
    rem = [f * n - c for f, c in zip(fractions, counts)]
    while sum(counts) < n:
        i = int(np.argmax(rem))
        counts[i] += 1
        rem[i] = -1
    return counts


def _block_groups(edges, split_gap: float):
    """The holes before each block of ``edges`` (``inf`` before the first, 0 between blocks cut from one
    interval) and the groups of blocks that must go to one split: blocks whose hole is shorter than
    ``split_gap`` (but not 0) cannot be separated by a split boundary."""
    holes = [np.inf] + [a - pb for (a, _), (_, pb) in zip(edges[1:], edges[:-1])]
    groups: List[List[int]] = []
    for i, h in enumerate(holes):
        if groups and 1e-9 <= h < split_gap - BIN_EDGE_SECONDS:
            groups[-1].append(i)
        else:
            groups.append([i])
    return holes, groups


def _boundaries_inside_intervals(sup: np.ndarray, n_blocks: int, span: float, gap: float) -> List[float]:
    """Times (s) at which to cut the intervals ``sup`` into about ``n_blocks`` blocks of equal recorded
    time, each moved to the nearest time that leaves a window with its past (``span`` s) before it and
    the split gap plus one after it inside its interval (and ``span + gap`` after an earlier cut in the
    same interval); none where no interval is long enough."""
    lengths = sup[:, 1] - sup[:, 0]
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    lo, hi = cum[:-1] + span, cum[1:] - span - gap  # where, in recorded time, a cut may lie in each interval
    ok = np.flatnonzero(hi >= lo)
    if not len(ok) or n_blocks < 2:
        return []
    cuts, last = [], None
    for x in cum[-1] * np.arange(1, n_blocks) / n_blocks:
        near = np.clip(x, lo[ok], hi[ok])
        j = int(np.argmin(np.abs(near - x)))
        i, y = int(ok[j]), float(near[j])
        if last is not None and last[0] == i:
            y = max(y, last[1] + span + gap)
            if y > hi[i]:
                continue
        elif last is not None and last[1] >= y:
            continue
        cuts.append((i, y))
        last = (i, y)
    return [float(sup[i, 0] + y - cum[i]) for i, y in cuts]


def _cut_intervals(sup: np.ndarray, cuts: Sequence[float]) -> List[tuple]:
    """The intervals ``sup`` as blocks, each cut at the times ``cuts`` that lie inside it."""
    cuts = np.sort(np.asarray(cuts, dtype=np.float64))
    edges = []
    for a, b in sup:
        inner = cuts[(cuts > a) & (cuts < b)]
        e = np.concatenate([[a], inner, [b]])
        edges.extend(zip(e[:-1], e[1:]))
    return edges


def plan_splits(recording: SpikeRecording, config: NeuroformerConfig, *,
                stacklevel: int = 2) -> SplitPlan:
    """Assign contiguous blocks (or whole trials) of ``recording`` to the three splits.

    Trials when ``config.split_by`` is ``"trials"``, or ``"auto"`` with at least 3 trials;
    otherwise blocks of about ``config.split_block_length`` s with ``config.split_gap`` s left
    out between blocks of different splits (a hole of the time support shorter than
    ``split_gap`` never separates two splits; where such holes chain every interval into
    fewer groups than splits, as brief dropouts do, the boundaries are placed inside intervals
    instead, each at about ``split_block_length`` s of recorded time); ``config.split_fractions`` and ``config.split_seed``
    decide which block (or trial) goes where.

    Returns:
        :class:`SplitPlan` (``segments`` in s; ``splits.json`` is its :meth:`SplitPlan.to_dict`).

    Raises:
        ValueError: naming the setting (and ending with
            :func:`~hf_neuroformer.configuration_neuroformer.milliseconds_hint` where a window length of
            ``config`` is implausibly long, likely given in milliseconds): a recording of one stretch
            of recorded time shorter than one window with its past (``past_window``, or ``current_window`` when the window alone
            is longer), or than one such window plus the split gap per split with a non-zero
            fraction (``past_window``, ``current_window`` or ``split_gap``: no block length helps);
            blocks too short for that (``split_block_length``); support intervals that lie closer
            than ``split_gap`` (no boundary between splits lies in such a hole) where too few of them
            are long enough to hold one inside (``split_gap`` with a window with its past on either
            side), or none of which holds a window with its past; ``split_by="trials"`` with fewer than 3 trials or 3 groups of non-overlapping
            trials; ``split_stratify_by`` that is not a trial column, is NaN, None or pandas' NA for some trials, or is
            set for a time-block split.

    Warns:
        UserWarning: trials that do not lie inside one interval of ``recording.support`` (they
            would read its gaps as silence) are left out of every split, counted; with
            ``split_stratify_by``, values with fewer groups of trials than splits. ``stacklevel``
            says where they point, as ``warnings.warn`` takes it (2: the caller of this function;
            a public function calling it passes 3, its own caller's line).
    """
    try:
        return _plan_splits(recording, config, stacklevel=stacklevel + 1)
    except ValueError as err:
        # current_window=100 (meant as 100 ms) was refused as too long for the recording, with no word of units
        hint = milliseconds_hint(config)
        if hint and len(err.args) == 1 and isinstance(err.args[0], str):
            err.args = (err.args[0].rstrip(".") + hint,)
        raise


def _plan_splits(recording: SpikeRecording, config: NeuroformerConfig, *,
                 stacklevel: int = 3) -> SplitPlan:
    """:func:`plan_splits` without the milliseconds hint on its refusals (``stacklevel``: of its
    warnings, as ``warnings.warn`` called here takes it; 3: the caller of :func:`plan_splits`)."""
    fr = config.split_fractions
    rng = np.random.default_rng(config.split_seed)
    use_trials = config.split_by == "trials" or (
        config.split_by == "auto" and recording.trials is not None and len(recording.trials) >= 3
    )
    if use_trials:
        if recording.trials is None or len(recording.trials) < 3:
            n = 0 if recording.trials is None else len(recording.trials)
            raise ValueError(f"split_by='trials': expected a recording with at least 3 trials, this one has {n}"
                             + ("; split_by='time' splits it by time blocks" if n == 0 else ""))
        trials = recording.trials
        # a trial across a gap of the time support (or outside it) would give windows of unrecorded time, read
        # as silence (the processor refuses such windows): it goes to no split, counted, as select_epoch drops it
        sup = recorded_stretches(recording.support)
        in_support = inside_one_interval(trials[:, 0], trials[:, 1], sup) if len(sup) else \
            np.ones(len(trials), dtype=bool)
        if not in_support.all():
            import warnings

            i = int(np.flatnonzero(~in_support)[0])
            warnings.warn(
                f"trials: {int((~in_support).sum())} of {len(trials)} trials do not lie inside one interval of the "
                f"recording's time support ({len(sup)} stretches; first: trial {i}, {trials[i, 0]:g}-{trials[i, 1]:g} "
                "s), so their windows would read unrecorded time as silence; they are left out of "
                "the splits", UserWarning, stacklevel=stacklevel)
        # trials that overlap in time share spikes: they go to the same split, as one group
        order = np.argsort(trials[:, 0], kind="stable")
        order = order[in_support[order]]
        groups, end = [], -np.inf
        for i in order:
            if groups and trials[i, 0] < end:
                groups[-1].append(i)
                end = max(end, trials[i, 1])
            else:
                groups.append([i])
                end = trials[i, 1]
        n = len(groups)
        if n < 3:
            # the message named no way out: trials padded around their events chain into one overlapping span
            spans = "; ".join(f"{trials[g, 0].min():g}-{trials[g, 1].max():g} s ({len(g)} trials)" for g in groups)
            raise ValueError(
                f"split_by='trials': expected at least 3 groups of non-overlapping trials, got {n} "
                f"from {len(trials)} trials (trials that overlap in time share spikes, so each chain of overlapping "
                f"trials stays in one split: {spans}); set split_by: time in the --config YAML to split by time "
                "blocks, or give trials that do not overlap"
                + (" (split_by 'auto' takes trials when the recording has 3 or more)" if config.split_by == "auto"
                   else "")
            )
        strat = getattr(config, "split_stratify_by", None)
        if strat is None:
            strata = [np.arange(n)]
        else:
            if strat not in recording.trial_info:
                raise ValueError(f"split_stratify_by: {strat!r} is not a trial column of the recording; it has "
                                 f"{sorted(recording.trial_info)}")
            col = np.asarray(recording.trial_info[strat])
            # np.unique keeps NaN as a value but `labels == nan` matches nothing: these trials would silently
            # fall out of every split. In an object column (gaps as None) NaN failed with an IndexError, None
            # inside np.unique ("'<' not supported between instances of 'str' and 'NoneType'") and pandas' NA
            # (a "string" or nullable column's gaps) with "boolean value of NA is ambiguous"
            if col.dtype == object:
                import pandas as pd

                missing = np.asarray(pd.isna(col), dtype=bool)
            else:
                missing = np.isnan(col) if col.dtype.kind == "f" else np.zeros(len(col), dtype=bool)
            if missing.any():
                raise ValueError(
                    f"split_stratify_by: the trial column {strat!r} is {'NaN' if col.dtype.kind == 'f' else 'None or NaN'} "
                    f"for {int(missing.sum())} of {len(col)} trials, which could not be assigned to any split; keep only "
                    "the trials that have a label (an epoch or interval that holds them, e.g. --epoch) or stratify by "
                    "another column"
                )
            labels = np.asarray([col[g[0]] for g in groups])  # a group of overlapping trials: its first trial
            strata = [np.flatnonzero(labels == v) for v in np.unique(labels)]
        n_needed = sum(1 for f in fr if f > 0)
        small = [f"{labels[m[0]].tolist()!r}: {len(m)}" for m in strata if len(m) < n_needed] if strat is not None else []
        if small:
            import warnings

            # the order _counts_from_fractions fills them in: the largest fraction first (of equal ones, the
            # earlier); it said 'train first, then validation' also where test's fraction is the larger
            order = sorted((k for k, f in enumerate(fr) if f > 0), key=lambda k: (-fr[k], k))
            warnings.warn(
                f"split_stratify_by: {count_noun(len(small), 'value')} of {strat!r} {'has' if len(small) == 1 else 'have'} "
                f"fewer groups of trials than the "
                f"{n_needed} splits, so they cannot be in every split (value: groups) {', '.join(small[:10])}"
                f"{' ...' if len(small) > 10 else ''}; their trials go to {SPLITS[order[0]]} first, then "
                + ", then ".join(SPLITS[k] for k in order[1:]), UserWarning, stacklevel=stacklevel)
        picked = {name: [] for name in SPLITS}
        for members in strata:  # each stratum split in the fractions on its own
            perm = members[rng.permutation(len(members))]
            counts = _counts_from_fractions(len(members), fr)
            idx = 0
            for name, c in zip(SPLITS, counts):
                picked[name].extend(perm[idx: idx + c].tolist())
                idx += c
        out, segs = {}, {}
        for name in SPLITS:
            sel = np.sort(np.concatenate([np.asarray(groups[g], dtype=np.int64) for g in picked[name]]
                                         or [np.zeros(0, dtype=np.int64)]))
            out[name] = sel
            segs[name] = trials[sel]
        return SplitPlan("trials", segs, out)

    if getattr(config, "split_stratify_by", None) is not None:
        raise ValueError(f"split_stratify_by: {config.split_stratify_by!r} stratifies trials, but this recording is split "
                         "by time blocks (no trials, or split_by='time'); leave split_stratify_by unset")
    segments: Dict[str, list] = {s: [] for s in SPLITS}
    # touching intervals as one: a support of tiled windows (a generated recording) was refused as 'none holds a
    # window with its past', and a short interval touching a long one was left out of the splits
    sup = recorded_stretches(recording.support)
    total = float(np.sum(sup[:, 1] - sup[:, 0]))
    # a window with its past (and a future modality window, see window_reach) lies inside one segment
    span = config.past_window + window_reach(config)
    longest = float(np.max(sup[:, 1] - sup[:, 0])) if len(sup) else 0.0
    n_trials = 0 if recording.trials is None else len(recording.trials)
    # a recording of trials with unrecorded gaps between them (the Allen and binned readers): the way out is
    # a trial split, which the advice for an epoch of ripples did not name
    by_trials = (f"; or split by trials (split_by: trials; the recording has {n_trials} trials, each window then "
                 "lies inside one)" if n_trials >= 3 else "")
    if len(sup) == 1 and longest < span - BIN_EDGE_SECONDS:
        # a past window longer than the recording was refused as 'split_block_length: blocks of 30 s are too short
        # for the split gap (5000 s) ...', naming a setting that no value of could help
        reach = window_reach(config)
        field = "current_window" if reach >= longest - BIN_EDGE_SECONDS else "past_window"
        what = (f"past_window {config.past_window:g} s + current_window {config.current_window:g} s"
                + (f", reaching {reach:g} s after its start for a modality window (allow_future)"
                   if reach > config.current_window else ""))
        raise ValueError(
            f"{field}: a window with its past needs {span:g} s ({what}), longer than the {longest:.3f} s the "
            f"recording covers ({sup[0, 0]:g} to {sup[0, 1]:g} s), so the recording is too short for a single "
            f"window; use a {field} well below the recording's length (each of the splits needs a window with its "
            f"past plus the split gap){by_trials}"
        )
    if len(sup) > 1 and longest < span - BIN_EDGE_SECONDS:  # the tolerance of `short` below
        raise ValueError(
            f"recording: its time support is {len(sup)} intervals ({total:.3f} s in all) of at most {longest:.3f} s "
            f"(an epoch made of many short intervals, e.g. ripples, or trials with unrecorded time between them), and "
            f"none holds a window with its past ({span:g} s); use a shorter past_window / current_window, or select an "
            f"epoch that spans the intervals{by_trials}"
        )
    # lengths and gaps are differences of absolute times, off by a float64 step (Allen's 0.1-s trials read as
    # 0.09999999999999 s for 63 of 200): compared with n_full_bins' edge tolerance (0.5 ns), or an interval
    # that holds a window with its past exactly was left out (or refused), and gaps of exactly split_gap chained
    short = (sup[:, 1] - sup[:, 0]) < span - BIN_EDGE_SECONDS
    if len(sup) > 1 and short.any():
        # an interval that cannot hold one window with its past gives no window in any split: left out, counted
        import warnings

        n_sp = int(sum(np.searchsorted(recording.spike_times, b) - np.searchsorted(recording.spike_times, a)
                       for a, b in sup[short]))
        warnings.warn(
            f"recording: {int(short.sum())} of the {len(sup)} intervals of its time support "
            f"({float(np.sum(sup[short, 1] - sup[short, 0])):.3f} s, {n_sp} spikes) are shorter than a window with its "
            f"past ({span:g} s), so they hold no window; they are left out of the splits",
            UserWarning, stacklevel=stacklevel)
        sup = sup[~short]
        total = float(np.sum(sup[:, 1] - sup[:, 0]))
    target = max(total / max(int(round(total / config.split_block_length)), 1), 1e-12)
    edges = []  # contiguous blocks of about split_block_length s along the support
    for lo, hi in sup:
        e = np.linspace(lo, hi, max(int(round((hi - lo) / target)), 1) + 1)
        edges.extend(zip(e[:-1], e[1:]))
    n_needed = sum(1 for f in fr if f > 0)
    cut_finer = len(edges) < n_needed
    if cut_finer:
        # too short for one block per split: cut each interval into equal blocks, their number in
        # proportion to its length and rounded up, so there are at least as many as splits (one
        # interval: n_needed blocks). Cutting the span from the first start to the last stop put
        # whole blocks, and a split, in a hole of the support: windows without recorded time
        pieces = np.maximum(np.ceil((sup[:, 1] - sup[:, 0]) * n_needed / total - 1e-9), 1).astype(int)
        edges = []
        for (lo, hi), k in zip(sup, pieces):
            e = np.linspace(lo, hi, k + 1)
            edges.extend(zip(e[:-1], e[1:]))
    # blocks cut from one interval touch (hole 0) and get the split gap between them where their
    # splits differ; intervals closer than the gap (short holes in the support) cannot be
    # separated by a split boundary, so they form one group that goes to one split, as
    # overlapping trials do. A block must hold a window with its past, plus the gap when it
    # touches the block before it.
    holes, groups = _block_groups(edges, config.split_gap)
    if len(groups) < n_needed:
        # every hole shorter than split_gap (a recording with brief dropouts): the blocks above, cut per interval,
        # chained into fewer groups than splits and the recording was refused, although a boundary between splits
        # fits inside a long enough interval. Cut the chained intervals at about split_block_length of recorded time
        cuts = _boundaries_inside_intervals(sup, max(n_needed, int(round(total / config.split_block_length))),
                                            span, config.split_gap)
        if cuts:
            edges = _cut_intervals(sup, cuts)
            holes, groups = _block_groups(edges, config.split_gap)
    need = [span + (config.split_gap if h < 1e-9 else 0.0) for h in holes]
    bad = [i for i, ((a, b), n) in enumerate(zip(edges, need)) if b - a < n - BIN_EDGE_SECONDS]
    if bad:
        a, b = edges[bad[0]]
        # one interval shorter than a window with its past plus the gap per split: no split_block_length can
        # help (the message named it even for a past window of 1100 s in a 1200-s recording)
        need_total = n_needed * (span + config.split_gap)
        if len(sup) == 1 and total < need_total - BIN_EDGE_SECONDS:
            field = ("split_gap" if config.split_gap > config.past_window else
                     "past_window" if config.past_window >= window_reach(config) else "current_window")
            raise ValueError(
                f"{field}: the recording covers {total:.3f} s, too short for {n_needed} splits with one window "
                f"with its past ({span:g} s) plus the split gap ({config.split_gap:g} s) each: one recorded interval "
                f"needs more than {need_total:.3f} s ({n_needed} splits x (window with its past + split gap)), "
                f"whatever split_block_length; use a longer recording or a shorter {field}{by_trials}"
            )
        raise ValueError(
            f"split_block_length: blocks of {b - a:.3f} s are too short for the split gap "
            f"({config.split_gap} s) plus one window with its past ({span} s); "
            f"the recording covers {total:.3f} s, and with these settings one recorded interval needs more than "
            f"{need_total:.3f} s ({n_needed} splits x (window with its past + split gap)). "
            "Use a longer recording or shorter windows, or longer blocks (split_block_length)."
        )
    if len(groups) < n_needed:
        # 'use a smaller split_gap (at least past_window)' was the advice also where split_gap was past_window
        smaller = config.split_gap > config.past_window + BIN_EDGE_SECONDS
        raise ValueError(
            f"split_gap: the {len(sup)} intervals of the time support lie closer together than split_gap "
            f"({config.split_gap:g} s), and too few of them hold a boundary between splits (the split gap with a "
            f"window with its past on either side: {2 * span + config.split_gap:g} s), so they form only "
            f"{count_noun(len(groups), 'group')} that can go to different splits, for {n_needed} splits with a "
            "non-zero fraction; use "
            + (f"a smaller split_gap (at least past_window, {config.past_window:g} s)" if smaller else
               "shorter windows (past_window, current_window; split_gap follows past_window when unset)")
            + by_trials
        )
    n_blocks = len(groups)
    block_len = min(edges[g[-1]][1] - edges[g[0]][0] for g in groups)
    counts = _counts_from_fractions(n_blocks, fr)
    if n_blocks < 10:
        import warnings

        cut = (f"it was cut into {len(edges)} equal blocks" if len(sup) == 1 else
               f"its {len(sup)} intervals were cut into {len(edges)} blocks")
        how = (f"the {total:.2f} s of the recording hold fewer {config.split_block_length:g}-s blocks than the "
               f"{n_needed} splits, so {cut}" if cut_finer else
               f"{config.split_block_length:g} s evened out to tile the {total:.2f} s of the recording")
        warnings.warn(
            f"split_block_length: only {n_blocks} blocks (the shortest {block_len:.2f} s: {how}), so the split "
            f"fractions {fr} are approximate "
            f"({counts[0]} / {counts[1]} / {counts[2]} blocks); use shorter blocks for finer splits: "
            "`split_block_length: <seconds>` in the YAML file given to --config (neuroformer train, prepare, "
            "inspect or ablate), or NeuroformerConfig(split_block_length=...) in Python",
            UserWarning, stacklevel=stacklevel)
    group_labels = np.repeat(np.arange(3), counts)[rng.permutation(n_blocks)]
    labels = np.empty(len(edges), dtype=np.int64)
    for g, lab in zip(groups, group_labels):
        labels[g] = lab
    prev_label, prev_end = None, None
    for (a, b), lab in zip(edges, labels):
        name = SPLITS[int(lab)]
        contiguous = prev_end is not None and abs(a - prev_end) < 1e-9
        if contiguous and prev_label == lab:
            segments[name][-1][1] = b
        else:
            start = a
            if prev_end is not None and prev_label != lab:
                # at least split_gap s between the data of two splits, even across a short hole
                start = max(a, prev_end + config.split_gap)
            segments[name].append([start, b])
        prev_label, prev_end = lab, b
    return SplitPlan(
        "time",
        {k: np.asarray([s for s in v if s[1] > s[0]], dtype=np.float64).reshape(-1, 2) for k, v in segments.items()},
        {k: np.zeros(0, dtype=np.int64) for k in SPLITS},
    )


def and_epoch(flag: str, epoch: bool = True) -> str:
    """The ``"(and --epoch) "`` of a "pass the recording ... the model was trained on" advice:
    ``--epoch`` for a command-line ``flag`` (``"--data"``), ``epoch`` for a Python argument, nothing
    for a command without ``--epoch`` (``epoch=False``)."""
    return f"(and {'--epoch' if flag.startswith('--') else 'epoch'}) " if epoch else ""


def check_is_split_plan(plan, flag: str = "plan") -> None:
    """Refuse anything but a :class:`SplitPlan` where a model's splits are read.

    The path of a ``splits.json`` failed later with "'str' object has no attribute 'segments'".

    Raises:
        TypeError: ``plan`` is not a :class:`SplitPlan`; for a path (``str`` or ``os.PathLike``) the
            message says to read it with :meth:`SplitPlan.read`.
    """
    if isinstance(plan, SplitPlan):
        return
    path = isinstance(plan, (str, os.PathLike))
    hint = (f"read the file with hf_neuroformer.windows.SplitPlan.read({str(plan)!r})" if path else
            "read a model's splits.json with hf_neuroformer.windows.SplitPlan.read(path), or make one with "
            "plan_splits(recording, config)")
    raise TypeError(f"{flag}: expected a SplitPlan, got {type(plan).__name__}; {hint}")


def check_split_in_recording(plan: SplitPlan, split: str, recording: SpikeRecording, flag: str = "recording",
                             epoch: bool = True) -> None:
    """Refuse a recording that does not cover ``plan``'s ``split`` segments (another recording
    or epoch than the model was trained on).

    ``flag`` names the recording in the message: ``"recording"`` for Python callers, the
    command-line option (``"--data"``) for a command, which is then told to pass ``--epoch``;
    ``epoch=False`` leaves the epoch out (commands without ``--epoch``: ``connectivity``,
    ``attention-map``).

    Raises:
        ValueError: ``split`` is not a split of ``plan``, or its segments reach outside
            ``recording.time_domain``.
        TypeError: ``plan`` is not a :class:`SplitPlan` (the path of a ``splits.json``: the message
            says to read it with :meth:`SplitPlan.read`), or ``recording`` not a :class:`SpikeRecording`.
    """
    check_is_split_plan(plan)
    check_is_recording(recording, flag)
    if split not in plan.segments:
        raise ValueError(f"split: expected one of {sorted(plan.segments)}, got {split!r}")
    seg = plan.segments[split]
    lo, hi = recording.time_domain
    if len(seg) and (seg[:, 0].min() < lo - 1e-9 or seg[:, 1].max() > hi + 1e-9):
        raise ValueError(
            f"{flag}: the {split} windows of this model span [{seg[:, 0].min():.3f}, {seg[:, 1].max():.3f}] s but "
            f"the recording covers [{lo:.3f}, {hi:.3f}] s; pass the recording "
            + and_epoch(flag, epoch) + "the model was trained on"
        )


def check_splits_apart(plan: SplitPlan, source: str = "plan", remedy: Optional[str] = None) -> None:
    """Refuse a plan in which a segment of one split overlaps a segment of another (by more than
    the 1 ns window grid, :data:`WINDOW_GRID`; segments that touch are apart).

    Every window (its past included in time mode; clipped to its trial in trial mode) lies inside
    a segment of its split (:func:`window_starts_for_split`), so segments that do not overlap give
    no window in two splits and no window reading another split's spikes (GUIDE trap 6).
    Segments closer than ``split_gap`` are apart too (the gap :func:`plan_splits` leaves is a margin,
    not what keeps a window's past out of another split): :func:`warn_splits_closer_than_gap` says
    so for a caller's plan. :func:`plan_splits` never makes an overlapping plan; one given by a
    caller (``plan=`` of :func:`build_window_datasets` / :func:`prepare_windows`) was used as it
    was, and a window could be trained on and scored. :meth:`SplitPlan.from_dict` (so :meth:`SplitPlan.read`, which every
    command reading a run's ``splits.json`` uses) checks the plans it reads, as a damaged or
    hand-edited ``splits.json`` would score windows the model was trained on.

    Args:
        plan: the split plan (``segments`` in s).
        source: what the plan is, for the message: ``"plan"`` for a Python argument, a file's
            path for a plan read from ``splits.json``.
        remedy: the advice ending the message; default: give segments that do not overlap, as
            :func:`plan_splits` makes them.

    Raises:
        ValueError: ``<source>: the <a> segment [s, e) s overlaps the <b> segment [s, e) s``, with
            how many segments of ``a`` overlap.
    """
    if remedy is None:
        remedy = ("; give segments of different splits that do not overlap, as plan_splits(recording, config) "
                  "makes them (in time mode at least split_gap apart)")
    names = [s for s in SPLITS if s in plan.segments]
    for i, a in enumerate(names):
        sa = np.asarray(plan.segments[a], dtype=np.float64).reshape(-1, 2)
        for b in names[i + 1:]:
            sb = np.asarray(plan.segments[b], dtype=np.float64).reshape(-1, 2)
            if len(sa) == 0 or len(sb) == 0:
                continue
            sb = sb[np.argsort(sb[:, 0], kind="stable")]
            # for each segment of a: the b segments starting before its end; the latest end among them
            k = np.searchsorted(sb[:, 0], sa[:, 1] - WINDOW_GRID, side="left") - 1
            latest = np.maximum.accumulate(sb[:, 1])[np.clip(k, 0, None)]
            hit = np.flatnonzero((k >= 0) & (latest > sa[:, 0] + WINDOW_GRID))
            if hit.size:
                x = sa[hit[0]]
                y = sb[np.flatnonzero((sb[:, 0] < x[1] - WINDOW_GRID) & (sb[:, 1] > x[0] + WINDOW_GRID))[0]]
                raise ValueError(
                    f"{source}: the {a} segment [{x[0]:g}, {x[1]:g}) s overlaps the {b} segment [{y[0]:g}, {y[1]:g}) "
                    f"s ({hit.size} of the {len(sa)} {a} segments overlap {b} segments), so windows there would be "
                    f"in two splits{remedy}")


def warn_splits_closer_than_gap(plan: SplitPlan, config: NeuroformerConfig, source: str = "plan",
                                stacklevel: int = 3) -> None:
    """Warn when segments of two splits of a caller's time-mode ``plan`` lie closer than
    ``config.split_gap`` (s), which :func:`plan_splits` leaves at every boundary between splits.

    Such a plan is used, not refused: each window's past lies inside its own split's segment
    (:func:`window_starts_for_split` starts the first window ``past_window`` after the segment's
    start), so no window reads a spike of another split, even where segments touch (GUIDE trap 6
    asks for no more). But the data of the two splits then abut: activity that outlasts the
    boundary (a burst, a slow drift of the firing rates, a bout of behaviour) is in both, which the
    split gap keeps apart. A trial-mode plan is not checked (trials of different splits may abut;
    ``split_gap`` is ignored there).

    Args:
        plan: the split plan (``segments`` in s); segments of different splits do not overlap
            (:func:`check_splits_apart` comes first).
        config: the config whose ``split_gap`` (s) is required.
        source: what the plan is, for the message.
        stacklevel: of the warning (3: the caller of the function that calls this one).

    Warns:
        UserWarning: naming the two closest such segments (splits and times), the gap found and
            ``split_gap``, and how many boundaries between splits are closer than it.
    """
    if plan.mode != "time":
        return
    rows = [(float(a), float(b), name) for name in SPLITS if name in plan.segments
            for a, b in np.asarray(plan.segments[name], dtype=np.float64).reshape(-1, 2)]
    rows.sort(key=lambda r: (r[0], r[1]))
    latest: Dict[str, tuple] = {}  # split -> its segment ending latest among those started so far
    close = []
    for a, b, name in rows:
        before = [seg for other, seg in latest.items() if other != name]
        if before:
            prev = max(before, key=lambda seg: seg[1])
            if a - prev[1] < config.split_gap - BIN_EDGE_SECONDS:
                close.append((a - prev[1], prev, (a, b, name)))
        if name not in latest or b > latest[name][1]:
            latest[name] = (a, b, name)
    if not close:
        return
    import warnings

    gap, x, y = min(close, key=lambda c: c[0])
    warnings.warn(
        f"{source}: the {x[2]} segment [{x[0]:g}, {x[1]:g}) s and the {y[2]} segment [{y[0]:g}, {y[1]:g}) s are "
        f"{max(gap, 0.0):g} s apart, less than split_gap ({config.split_gap:g} s) that plan_splits leaves between "
        f"splits ({len(close)} of the boundaries between splits {'is' if len(close) == 1 else 'are'} closer than it); no window reads the other split's spikes "
        f"(a window's past lies in its own segment), but activity that outlasts the boundary (bursts, slow rate "
        f"drifts) is in both splits; leave split_gap between segments of different splits, as "
        f"plan_splits(recording, config) does", stacklevel=stacklevel)


def window_starts_for_split(plan: SplitPlan, split: str, config: NeuroformerConfig, stride: Optional[float] = None):
    """``(starts, clip_starts)``: current-window starts (s) of a split and, in trial mode, the
    trial start each window's past is clipped to (else NaN).

    ``stride`` (s) is the step between windows; default ``config.stride`` (training windows,
    which may overlap). :func:`build_window_datasets` (its validation and test splits),
    generation and bits per spike pass ``config.current_window`` to tile the split with
    non-overlapping windows.

    Args:
        plan: the split plan (e.g. ``SplitPlan.read("<model>/splits.json")``).
        split: a key of ``plan.segments``: ``"train"``, ``"validation"`` or ``"test"``.
        config: the model's :class:`NeuroformerConfig` (``current_window``, ``past_window``,
            ``stride``, s).
        stride: step between window starts, s, > 0; default ``config.stride``.

    Returns:
        ``(starts, clip_starts)``, two ``(n_windows,)`` float64 arrays in s, in time order;
        both empty when no segment of the split holds a whole window (after its past window,
        in time mode). In time mode a window also needs its :func:`window_reach` (a future
        modality window, ``allow_future``) inside the segment.

    Raises:
        KeyError: ``split`` is not a split of ``plan`` (the message lists them).
        ValueError: ``stride`` is not a positive number of seconds.
    """
    if split not in plan.segments:
        raise KeyError(f"split: expected one of {sorted(plan.segments)}, got {split!r}")
    starts, clips = [], []
    w, p = config.current_window, config.past_window
    step = config.stride if stride is None else float(stride)
    if not step > 0:
        raise ValueError(f"stride: expected a positive number of seconds, got {stride}")
    # time mode: the window's reach (a future modality window too) must end inside the segment
    reach = w if plan.mode == "trials" else window_reach(config)
    for a, b in plan.segments[split]:
        first = a if plan.mode == "trials" else a + p
        # n_full_bins' edge tolerance (1e-9 stride + 0.5 ns): b - first - reach is off by a float64 step of
        # the times' size (1.5e-11 s at 86400 s, 1.5e-8 of a 1-ms stride)
        n = n_full_bins(b - first - reach, step) + 1
        if n <= 0:
            continue
        s = on_time_grid(first + step * np.arange(n))  # WINDOW_GRID (1 ns), as the tokenizer's window edges
        starts.append(s)
        clips.append(np.full(n, a if plan.mode == "trials" else np.nan))
    if not starts:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(starts), np.concatenate(clips)


def windows_apart(later, earlier, window: float):
    """Whether current windows starting at ``earlier`` and ``later`` (s, scalars or arrays) do not
    overlap: ``later - earlier >= window`` within 1 ns (:data:`~hf_neuroformer.recording.WINDOW_GRID`;
    starts on the window grid a window apart may differ from it by a float64 step). The one rule of
    :func:`~hf_neuroformer.generation.generate_spikes` (which refuses overlapping windows) and
    :func:`tiling_windows` (which leaves them out)."""
    return np.asarray(later) - np.asarray(earlier) >= window - WINDOW_GRID


def check_windows_apart(starts, window: float, hint: str = "") -> None:
    """Refuse current windows that overlap or repeat: ``starts`` (``(n,)`` float64 s, any order) must be
    at least ``window`` s apart (:func:`windows_apart`). One check, one message, for
    :func:`~hf_neuroformer.generation.generate_spikes` (one generated recording cannot hold two windows
    over the same time) and the attention analyses
    (:func:`~hf_neuroformer.analysis.connectivity.attention_connectivity`,
    :func:`~hf_neuroformer.analysis.visual_attention.visual_attention_maps`), whose averages would count
    every spike in the shared time once per window (a duplicate start counted each query twice).

    Raises:
        ValueError: two starts less than ``window`` s apart, naming ``window_starts``, the two starts,
            their distance and ``current_window``; ``hint`` is appended to the message.
    """
    srt = np.sort(np.asarray(starts, dtype=np.float64))
    close = np.flatnonzero(~windows_apart(srt[1:], srt[:-1], window))
    if close.size:
        k = int(close[0])
        raise ValueError(
            "window_starts: expected non-overlapping current windows (starts at least current_window apart); "
            f"{float(srt[k])!r} s and {float(srt[k + 1])!r} s are {srt[k + 1] - srt[k]:.9g} s apart, "
            f"current_window {window} s" + hint)


def tiling_windows(plan: SplitPlan, split: str, config: NeuroformerConfig, *, use: str = "scored",
                   stacklevel: int = 2, subject: Optional[str] = None):
    """``(starts, clip_starts)``: ``split`` of ``plan`` tiled with non-overlapping current windows
    (:func:`window_starts_for_split` with ``stride=config.current_window``), so that a stretch of
    time is ``use``-d (scored, generated) once: the validation and test windows of
    :func:`build_window_datasets` and :func:`prepare_windows`, and the windows of
    :func:`~hf_neuroformer.generation.generation_windows`.

    Trials that overlap in time (events padded into trials closer together than their length, or a
    trial listed twice) go to one split together, and their windows overlap. Where windows overlap,
    the one of the earliest-starting trial is kept (in time order) and the other left out, not moved:
    a later trial's windows stay on its own grid (clipped at its own trial's start), so a stretch only
    a left-out window covered is not ``use``-d (trials ``[0, 0.65)`` and ``[0.35, 0.95)`` s with
    0.1-s windows: ``[0.6, 0.65)``). A ``UserWarning`` names the overlapping trials and counts the
    windows left out; ``subject`` names what overlaps (default ``"split '<split>': its trials"``; a
    plan made to tile a whole recording names its trials instead). In time mode, or without
    overlap, the windows are those of :func:`window_starts_for_split`, in its order.

    Raises:
        KeyError: ``split`` is not a split of ``plan``.
    """
    import warnings

    starts, clips = window_starts_for_split(plan, split, config, stride=config.current_window)
    if plan.mode != "trials" or len(starts) < 2:
        return starts, clips
    w = float(config.current_window)
    order = np.lexsort((clips, starts))  # by start; at one start, the earlier trial's window first
    keep, left_out, last = [], [], None
    for i in order:
        if last is None or windows_apart(starts[i], starts[last], w):
            keep.append(i)
            last = i
        else:
            left_out.append((i, last))  # the window left out, the kept window it overlaps
    if not left_out:  # no overlap: the windows as they were, in their order (a seed's draws follow it)
        return starts, clips
    seg = window_segments(plan, split, starts, clips)
    pairs = dict.fromkeys(f"[{seg[i, 0]:g}, {seg[i, 1]:g}) s " + (
        "listed twice" if np.array_equal(seg[i], seg[j]) else f"with [{seg[j, 0]:g}, {seg[j, 1]:g}) s")
        for i, j in left_out)
    warnings.warn(
        f"{subject or f'split {split!r}: its trials'} overlap in time, so {len(left_out)} of its {len(starts)} windows "
        f"overlap others (trials {first_few(pairs, 4, quote=False, sep='; ')}); {len(keep)} non-overlapping windows "
        f"are {use} (where windows overlap, the one of the earliest-starting trial; the time only a left-out window "
        f"covers is not {use}), so no stretch of time is {use} twice", UserWarning, stacklevel=stacklevel + 1)
    keep = np.asarray(keep, dtype=np.int64)
    return starts[keep], clips[keep]


def split_windows(plan: SplitPlan, split: str, config: NeuroformerConfig, *, stacklevel: int = 2):
    """``(starts, clip_starts)`` of ``split`` as training makes them: ``"train"`` at the training
    stride (:func:`window_starts_for_split`, ``config.stride``; they may overlap: more, shifted views
    of the same spikes, and in trial mode each trial's own windows, overlapping trials included),
    any other split tiled by :func:`tiling_windows` (what is scored does not depend on the stride,
    and a stretch of overlapping trials is scored once, with its warning). ``stacklevel`` is the
    caller's, as for ``warnings.warn``.

    Raises:
        KeyError: ``split`` is not a split of ``plan``.
    """
    if split == "train":
        return window_starts_for_split(plan, split, config)
    return tiling_windows(plan, split, config, stacklevel=stacklevel + 1)


def window_segments(plan: SplitPlan, split: str, starts, clip_starts=None) -> np.ndarray:
    """``(n_windows, 2)`` float64 ``[start, stop)`` s: the segment of ``plan``'s ``split`` that
    holds each window, the stretch of time a window's values may be read from without reading
    another split's (or, in trial mode, another trial's).

    In time mode it is the block segment of the split that holds the window's start (the segments
    of one split are disjoint); in trial mode the window's own trial: the split's trial that starts
    at the window's ``clip_starts`` entry (within 1 ns, :data:`WINDOW_GRID`) and holds the window's
    start (the longest, when trials share that start). A segment holds a start ``s`` when
    ``a - 1 ns <= s < b``. The window's end is not compared with ``b``: the windows of
    :func:`window_starts_for_split` end inside their segment only up to its bin-edge tolerance
    (``1e-9`` of a stride plus 0.5 ns, :func:`hf_neuroformer.binning.n_full_bins`), more than 1 ns
    for a stride over 0.5 s.

    Args:
        plan: the split plan the windows were made from.
        split: a key of ``plan.segments``.
        starts: ``(n_windows,)`` float current-window starts, s.
        clip_starts: ``(n_windows,)`` float trial starts (trial mode, the ``past_clip_start``
            column); ignored in time mode.

    Raises:
        KeyError: ``split`` is not a split of ``plan``.
        ValueError: ``clip_starts`` missing or of another length in trial mode, or a window that no
            segment of the split holds (windows not made from this plan).
    """
    if split not in plan.segments:
        raise KeyError(f"split: expected one of {sorted(plan.segments)}, got {split!r}")
    starts = np.asarray(starts, dtype=np.float64).reshape(-1)
    seg = np.asarray(plan.segments[split], dtype=np.float64).reshape(-1, 2)
    trials = plan.mode == "trials"
    if trials:
        if clip_starts is None or np.shape(clip_starts) != starts.shape:
            raise ValueError(f"clip_starts: expected one trial start per window ({starts.size}) in trial mode, got "
                             f"{None if clip_starts is None else np.shape(clip_starts)}")
        clips = np.asarray(clip_starts, dtype=np.float64).reshape(-1)
    seg = seg[np.lexsort((seg[:, 0] - seg[:, 1], seg[:, 0]))]  # by start; longest first among equal starts
    a, b = seg[:, 0], seg[:, 1]
    out = np.full((starts.size, 2), np.nan)
    if trials:  # the trials starting at the window's clip (within 1 ns): the longest that holds its start
        lo = np.searchsorted(a, clips - WINDOW_GRID, "left")
        hi = np.searchsorted(a, clips + WINDOW_GRID, "right")
        best = np.full(starts.size, -np.inf)
        for k in range(int(np.max(hi - lo, initial=0))):
            j = np.minimum(lo + k, len(a) - 1)
            fits = (lo + k < hi) & (starts >= a[j] - WINDOW_GRID) & (starts < b[j]) & (b[j] - a[j] > best)
            out[fits], best[fits] = seg[j[fits]], (b - a)[j[fits]]
    elif len(a):  # the segments of one split are disjoint: the last one starting at or before the window
        j = np.maximum(np.searchsorted(a - WINDOW_GRID, starts, "right") - 1, 0)
        fits = (starts >= a[j] - WINDOW_GRID) & (starts < b[j])
        out[fits] = seg[j[fits]]
    missing = np.flatnonzero(np.isnan(out[:, 0]))
    if missing.size:
        i = int(missing[0])
        raise ValueError(f"starts: the window at {starts[i]} s (index {i}; {missing.size} of {starts.size} windows) "
                         f"lies in no {'trial' if trials else 'segment'} of the {split!r} split of this plan; "
                         "pass the windows made from this plan (window_starts_for_split)")
    return out


def tokenize_windows(
    recording: SpikeRecording,
    tokenizer: NeuroformerTokenizer,
    starts: np.ndarray,
    clip_starts: Optional[np.ndarray] = None,
    config: Optional[NeuroformerConfig] = None,
    *,
    stacklevel: int = 2,
) -> Dict[str, list]:
    """Tokenize windows of ``recording`` starting at ``starts`` (s): column dict for a Dataset.

    With a ``config`` that has ``modalities``, the columns of
    :func:`hf_neuroformer.modalities.modality_columns` are added (their statistics and classes
    must be fitted, see :func:`hf_neuroformer.modalities.fit_modalities`).

    Args:
        starts: ``(n_windows,)`` float current-window starts, s.
        clip_starts: ``(n_windows,)`` float past-clip times, s (NaN: no clip), or None.
        stacklevel: where the warnings of reading the modalities point, as ``warnings.warn``
            takes it (keyword-only int; 2, the default: the caller of this function).

    Returns:
        the columns of :func:`build_window_datasets`, one list entry per window.

    The starts are not checked against the recording here: a window outside it tokenizes as an
    empty window (``[BOS, EOS]``); :meth:`hf_neuroformer.NeuroformerProcessor.tokenize` refuses
    it.

    Raises:
        ValueError: ``starts`` or ``clip_starts`` held as float32 / float16 (an array, or such
            items in a list), naming the argument (:func:`~hf_neuroformer.binning.narrow_float_times_message`:
            widened to float64 they keep the narrow rounding, float32 1000.05 s is 1000.0499877929688 s,
            12 µs early, so spikes on a window edge fell on the wrong side of it), as
            :func:`window_starts_array` refuses them for every other reader of windows; a start that
            is not a finite number, or a clip that is infinite, naming the first (as
            :meth:`~hf_neuroformer.NeuroformerTokenizer.encode_window`); the spike arrays or token
            ids it refuses.
        UnknownUnitError: a unit of the recording the tokenizer does not know.
    """
    # float32 starts were widened to float64 here without a word (float32 steps 61 µs at 1000 s: windows up to 30 µs
    # off, their edges moved across spikes), where the processor, generation and the metrics refuse them
    for name, values in (("starts", starts), ("clip_starts", clip_starts)):
        narrow = narrow_float_times_message(values, name, item="window") if np.size(values) else None
        if narrow is not None:
            raise ValueError(narrow)
    spike_tokens = tokenizer.unit_token_ids(recording)[recording.unit_ids]
    # all windows at once: encode_window once per window spent ~100 µs a window in Python
    enc = tokenizer._encode_windows(recording.spike_times, spike_tokens, starts, clip_starts)
    cols: Dict[str, list] = {"window_start": [float(s) for s in starts]}
    cols.update(enc)
    cols["past_clip_start"] = (
        [float("nan")] * len(starts) if clip_starts is None else [float(c) for c in clip_starts]
    )
    if config is not None and config.modalities:
        from .modalities import modality_columns

        cols.update(modality_columns(recording, config, starts, clip_starts,
                                     stacklevel=stacklevel + 1))
    return cols


def _split_windows(plan: SplitPlan, split: str, config: NeuroformerConfig,
                   recording: Optional[SpikeRecording] = None, *, stacklevel: int = 3):
    """``(starts, clip_starts)`` of one split's windows (:func:`split_windows`); ``clip_starts`` is
    ``None`` in time mode. ``stacklevel``: where the overlap warning points, as for
    ``warnings.warn`` called here (3: the caller of :func:`build_window_datasets` / :func:`prepare_windows`).

    Raises:
        ValueError: a split with a non-zero fraction has no window; with ``recording``, a window
            (its past included) outside the recording's recorded time (a plan of another
            recording or epoch).
    """
    starts, clips = split_windows(plan, split, config, stacklevel=stacklevel)
    if len(starts) == 0 and config.split_fractions[SPLITS.index(split)] > 0:
        raise ValueError(
            f"split {split!r}: no window fits in its {len(plan.segments[split])} segments (longest "
            f"{float(np.max(np.diff(plan.segments[split], axis=1), initial=0.0)):.3f} s; "
            + (f"a window needs {config.current_window:g} s); " if plan.mode == "trials" else
               f"a window with its past needs {window_reach(config) + config.past_window:g} s); ")
            + "use shorter windows or a longer recording"
        )
    if recording is not None and len(starts):
        # a plan given by the caller (another recording's, another epoch's) put windows where this recording has no
        # recorded time: they were tokenized as silence without a word (half the windows of a plan of a 60-s
        # recording, given a 30-s cut of it)
        lo = past_starts(starts, config.past_window)
        if plan.mode == "trials":
            lo = np.maximum(lo, clips)
        ends = window_ends(starts, config.current_window)
        out = windows_outside_support(recording.support, lo, ends - lo)
        if len(recording.support) == 0 or out.size:
            i = int(out[0]) if out.size else 0
            sup = recording.support
            raise ValueError(
                f"plan: {out.size if len(sup) else len(starts)} of the {len(starts)} {split} windows of this split plan "
                f"lie outside the recorded time of the recording (first: [{float(lo[i])}, {float(ends[i])}) s, its "
                "past window included; the recording covers "
                + (f"{count_noun(len(sup), 'interval')}, {sup[0, 0]:g} to {sup[-1, 1]:g} s" if len(sup) else "no time")
                + "), which would be read as silence; pass the plan of this recording (plan_splits(recording, "
                "config)), or the recording (and epoch) the plan was made on")
    return starts, (clips if plan.mode == "trials" else None)


def _union_length(iv: np.ndarray) -> float:
    """Total length (s) of the union of ``(n, 2)`` intervals."""
    if len(iv) == 0:
        return 0.0
    iv = iv[np.argsort(iv[:, 0])]
    total, (a, b) = 0.0, iv[0]
    for x, y in iv[1:]:
        if x > b:
            total, a, b = total + (b - a), x, y
        else:
            b = max(b, y)
    return float(total + (b - a))


def spikes_outside_windows(recording: SpikeRecording, plan: SplitPlan, config: NeuroformerConfig,
                           starts_by_split: Dict[str, np.ndarray]) -> Dict[str, Dict[str, float]]:
    """What of each split no current window covers: never tokenized as a current window, so never
    trained on or scored.

    In time mode that is the first past window of each segment (read only as past) and the rest
    at its end shorter than a window (than :func:`window_reach`, with a future modality window); in trial mode the rest of each trial after its last whole
    window (e.g. 0.11 s of a 1.01 s trial cut into 0.3 s windows) and any trial shorter than one
    window.

    Args:
        starts_by_split: split -> ``(n,)`` float64 current-window starts (s), e.g. the
            ``window_start`` column of :func:`build_window_datasets`' datasets.

    Returns:
        split -> ``{"n_spikes": spikes inside the split's segments, "n_spikes_outside_windows":
        those in no current window, "seconds": segment length (s), "seconds_outside_windows"}``.
    """
    w = float(config.current_window)
    out = {}
    for split in SPLITS:
        seg = np.asarray(plan.segments[split], dtype=np.float64).reshape(-1, 2)
        starts = np.sort(np.asarray(starts_by_split.get(split, np.zeros(0)), dtype=np.float64))
        t = recording.spike_times
        if len(seg):  # segments may overlap (overlapping trials): a spike counts once
            seg = seg[np.argsort(seg[:, 0])]
            k = np.searchsorted(seg[:, 0], t + WINDOW_GRID, side="right") - 1
            ends = np.maximum.accumulate(seg[:, 1])
            t = t[(k >= 0) & (t < ends[np.clip(k, 0, None)])]
        else:
            t = t[:0]
        # the tokenizer's window edges (NeuroformerTokenizer.encode_window): [start, end) on the 1 ns
        # grid; an unrounded start + w (0.2 + 0.07 = 0.27000000000000002) counted a spike at the
        # end of a split's last window as covered, though no window holds it
        starts = on_time_grid(starts)
        ends = window_ends(starts, w)
        j = np.searchsorted(starts, t, side="right") - 1  # the latest window starting at or before t
        covered = (j >= 0) & (t < ends[np.clip(j, 0, None)]) if len(starts) else np.zeros(len(t), bool)
        sec = _union_length(seg)  # the union of the segments against the union of the windows
        win = _union_length(np.stack([starts, ends], 1)) if len(starts) else 0.0
        out[split] = {"n_spikes": int(len(t)), "n_spikes_outside_windows": int((~covered).sum()),
                      "seconds": float(sec), "seconds_outside_windows": float(max(sec - win, 0.0))}
    return out


def warn_splits_without_spikes(n_windows: Dict[str, int], n_spikes: Dict[str, int], stacklevel: int = 3) -> None:
    """Warn of each split whose windows hold no spike: its losses and metrics would be NaN
    (a stray spike long after the session, a clock glitch, stretches the recording so that a
    split's time blocks fall in the empty stretch).

    Args:
        n_windows: split -> its current windows; a split without any is not warned of (its
            fraction is 0, or training refuses it).
        n_spikes: split -> spikes inside its current windows (:func:`spikes_outside_windows`'
            ``n_spikes - n_spikes_outside_windows``, or the manifest's ``n_spikes``).
        stacklevel: passed to :func:`warnings.warn` (default: the caller of the caller).

    Warns:
        UserWarning: one per such split, naming it, its window count and what to change.
    """
    for split, n in n_windows.items():
        if not n or n_spikes.get(split, 0):
            continue
        warnings.warn(
            f"split {split!r}: its {count_noun(n, 'window')} {'holds' if n == 1 else 'hold'} 0 spikes, so a model "
            "trained on these windows gets NaN losses and metrics for that split"
            + ("; no checkpoint can be chosen on the validation split (train keeps the last one)"
               if split == "validation" else "")
            + ". A stray spike long after the others stretches the recording: select the recorded time (--epoch, "
            "or SpikeRecording.restrict), or place the splits elsewhere (split_seed, split_fractions, "
            "split_block_length); 'neuroformer inspect --data ...' gives each split's spikes and the longest "
            "stretch without any spike", UserWarning, stacklevel=stacklevel)


def spikes_digest(recording: SpikeRecording, segments: np.ndarray) -> Dict[str, object]:
    """``{"n_spikes", "sha256"}`` of the spikes inside ``segments`` (``(n, 2)`` s, ``[start, stop)``):
    their times and unit names, sorted by time then name (see :func:`split_spikes_digest`)."""
    import hashlib

    t = recording.spike_times
    inside = np.zeros(t.shape, dtype=bool)
    for a, b in np.asarray(segments, dtype=np.float64).reshape(-1, 2):
        lo, hi = np.searchsorted(t, [a, b], side="left")
        inside[lo:hi] = True
    # each unit by the rank of its name, so that the digest does not depend on the unit order (and
    # holds 8 bytes per spike, not a name string); the sorted names themselves are hashed too
    sorted_names = sorted(recording.unit_names)
    rank = {name: i for i, name in enumerate(sorted_names)}
    unit_rank = np.array([rank[n] for n in recording.unit_names], dtype=np.int64)[recording.unit_ids[inside]]
    times = t[inside]
    order = np.lexsort((unit_rank, times))  # by time, ties by unit name
    h = hashlib.sha256()
    h.update("\n".join(sorted_names).encode())
    h.update(np.ascontiguousarray(times[order], dtype="<f8").tobytes())
    h.update(np.ascontiguousarray(unit_rank[order], dtype="<i8").tobytes())
    return {"n_spikes": int(inside.sum()), "sha256": h.hexdigest()}


def file_identity(path):
    """``(device, inode, size, mtime_ns)`` of a file, or None when it is missing: a file replaced
    or rewritten (a save, a ``prepare --overwrite``) gives another value."""
    import os

    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def file_sha256(*paths) -> str:
    """Hex sha256 of the bytes of ``paths``, one file after the other (one file: its own digest),
    read in 1 MiB blocks (``hashlib.file_digest`` is Python 3.11+; the package supports 3.10)."""
    import hashlib

    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def split_spikes_digest(recording: SpikeRecording, plan: SplitPlan) -> Dict[str, object]:
    """A fingerprint of the spikes a model was trained and scored on: per split, those inside the
    split's segments, with the names of their units.

    ``neuroformer train`` and ``neuroformer finetune`` store it in ``metrics.json``
    (``split_spikes``) and ``neuroformer prepare`` in ``manifest.json``; the commands that read a
    model together with a recording compare it (:func:`compare_split_spikes`), so a recording
    that has the model's unit names but other spikes (e.g. a network re-simulated over the same
    file) is noticed. It depends only on the spikes inside the segments and on unit names, not
    on unit order, so the same file read with another ``--epoch`` that still holds the segments,
    or re-exported with its units in another order, gives the same value.

    Returns:
        ``{"n_spikes": int, "sha256": str, "splits": {split: {"n_spikes": int, "sha256": str}}}``:
        over all splits' segments and per split; the sha256 is of the sorted unit names and of the
        spikes' times (float64 s, little-endian bytes) and units (the rank of their name), sorted
        by time then name.
    """
    segs = [np.asarray(v, dtype=np.float64).reshape(-1, 2) for v in plan.segments.values()]
    out = spikes_digest(recording, np.concatenate(segs + [np.zeros((0, 2))]))
    out["splits"] = {name: spikes_digest(recording, seg) for name, seg in plan.segments.items()}
    return out


def compare_split_spikes(recording: SpikeRecording, plan: SplitPlan, stored) -> Dict[str, object]:
    """Compare a recording with a model's stored :func:`split_spikes_digest`, split by split.

    Only the splits whose segments the recording covers are compared (a file cut to the test
    split, or read with another epoch, is not a mismatch for the splits it leaves out; commands
    that need those splits refuse them on their own, see :func:`check_split_in_recording`).

    Returns:
        ``{"status": ..., "splits_compared": [...], "splits_differing": [...], "n_spikes":
        {split: [here, at training]} (differing splits only)}``; ``status`` is ``"same spikes"``,
        ``"other spikes"`` (some compared split differs), ``"not comparable"`` (the recording
        covers none of the splits) or ``"not recorded"`` (``stored`` has no per-split digest:
        a model written before it was recorded).
    """
    if not isinstance(stored, dict) or not isinstance(stored.get("splits"), dict):
        return {"status": "not recorded", "splits_compared": [], "splits_differing": []}
    compared, differing, counts = [], [], {}
    for name, seg in plan.segments.items():
        old = stored["splits"].get(name)
        if not isinstance(old, dict) or "sha256" not in old:
            continue
        try:
            check_split_in_recording(plan, name, recording)
        except ValueError:
            continue
        compared.append(name)
        now = spikes_digest(recording, seg)
        if now["sha256"] != old["sha256"]:
            differing.append(name)
            counts[name] = [now["n_spikes"], old.get("n_spikes")]
    status = "not comparable" if not compared else ("other spikes" if differing else "same spikes")
    return {"status": status, "splits_compared": compared, "splits_differing": differing, "n_spikes": counts}


def _checked_plan(recording: SpikeRecording, config: NeuroformerConfig,
                  plan: Optional[SplitPlan], stacklevel: int = 4) -> SplitPlan:
    """The split plan the windows of :func:`build_window_datasets` and :func:`prepare_windows` are
    cut from.

    ``plan`` None: :func:`plan_splits` makes one. A plan the caller gave is refused where segments
    of two splits overlap (:func:`check_splits_apart`) and warned of where they are closer than
    ``config.split_gap`` (:func:`warn_splits_closer_than_gap`); these warn at ``stacklevel`` (4:
    the caller of this function's caller).

    Returns:
        the :class:`SplitPlan` used.
    """
    given = plan is not None
    plan = plan or plan_splits(recording, config, stacklevel=stacklevel)
    # a plan given by the caller: a window in two splits was trained on and scored
    check_splits_apart(plan)
    if given:  # closer than split_gap: used (no window reads another split's spikes), but said
        warn_splits_closer_than_gap(plan, config, stacklevel=stacklevel)
    return plan


def build_window_datasets(
    recording: SpikeRecording,
    tokenizer: NeuroformerTokenizer,
    config: NeuroformerConfig,
    plan: Optional[SplitPlan] = None,
    modality_remedy: Optional[str] = None,
    *,
    stacklevel: int = 2,
):
    """Windows of every split as a ``datasets.DatasetDict``: the training windows step by
    ``config.stride`` (overlapping when ``window_stride < current_window``), the validation and
    test windows by ``current_window`` (they tile their split).

    Columns: ``window_start`` (float64 s), ``input_ids``, ``dt_ids``, ``past_input_ids``,
    ``past_dt_ids`` (int lists), ``n_spikes``, ``n_truncated``, ``n_past_truncated`` (int),
    ``past_clip_start`` (s, NaN unless trial mode), and with ``config.modalities`` the columns of
    :func:`hf_neuroformer.modalities.modality_columns`, after
    :func:`hf_neuroformer.modalities.fit_modalities` has written the TRAINING-split statistics
    and classes into ``config`` (in place; statistics already in the config are kept). Train windows are not pre-shuffled here; the
    training loader reshuffles them every epoch with a seeded generator.

    Only whole windows are made: a trial (trial mode) shorter than ``current_window`` gives no
    window, nor does the end of a trial or block after its last whole window, and their spikes
    are in no row, without a warning here; :func:`spikes_outside_windows` counts them per split
    (``train`` writes that count to ``metrics.json``, ``n_spikes_outside_windows_by_split``).

    ``modality_remedy``: what the error of a modality no training window holds a value of tells to do
    (None: :func:`~hf_neuroformer.modalities.check_windows_read_modalities`' advice for ``train``).
    ``stacklevel``: where the warnings point, as ``warnings.warn`` takes it (2: the caller of this
    function; a public function calling it passes 3, its own caller's line).

    Returns:
        ``(DatasetDict, SplitPlan)``; a split whose fraction is 0 has an empty dataset.

    Warns:
        UserWarning: a modality that no window of the validation or test split holds a value of
            (they read only its null token), naming the split and its window count; segments of two
            splits of a time-mode ``plan`` given here closer than ``config.split_gap``
            (:func:`warn_splits_closer_than_gap`: used, as no window reads another split's spikes).

    Raises:
        RecordingValidationError: if the recording has no spikes.
        ValueError: if a split with a non-zero fraction has no window (every one of its trials
            or blocks is shorter than a window), no training window holds a value of a modality
            (:func:`~hf_neuroformer.modalities.check_windows_read_modalities`: nothing of it could be
            learnt), segments of two splits of ``plan`` overlap (:func:`check_splits_apart`), a
            window of ``plan`` (its past included) lies
            outside the recording's recorded time (a plan of another recording), or ``tokenizer``'s window settings
            (``current_window``, ``past_window``, ``dt_resolution``, ``max_window_length``,
            ``max_past_length``) are not ``config``'s.
    """
    import datasets

    from .tokenization_neuroformer import check_tokenizer_windows

    check_not_empty(recording)
    # the windows are placed by the config and cut by the tokenizer: another current_window silently kept part
    check_tokenizer_windows(tokenizer, config, "make it with NeuroformerTokenizer.from_config(config) and add_units(recording)")
    # the warnings of the split plan point at build_window_datasets' caller (its stacklevel, 2 frames deeper)
    plan = _checked_plan(recording, config, plan, stacklevel=stacklevel + 2)
    if config.modalities:  # the training split's statistics and classes, written into config (those there kept)
        from .modalities import fit_modalities

        fit_modalities(recording, config, plan, overwrite=False, stacklevel=stacklevel + 1)
    out = {}
    for split in SPLITS:
        starts, clips = _split_windows(plan, split, config, recording, stacklevel=stacklevel + 1)
        # its modality warnings (a circular series in degrees) at our caller's line too: they named this line
        cols = tokenize_windows(recording, tokenizer, starts, clips, config, stacklevel=stacklevel + 1)
        out[split] = datasets.Dataset.from_dict(cols, features=window_features(config))
    if config.modalities:  # a modality no window of a split reads: refused for train, warned of for the others
        from .modalities import check_windows_read_modalities

        check_windows_read_modalities(config, out, refuse=("train",), stacklevel=stacklevel + 1,
                                      remedy=modality_remedy)
    return datasets.DatasetDict(out), plan


def window_features(config: Optional[NeuroformerConfig] = None):
    """The ``datasets.Features`` of a window table, fixed so that every split and every shard
    has the same schema (a shard whose windows are all empty would otherwise infer ``null``);
    with a ``config`` that has modalities, their columns too."""
    import datasets

    ids = datasets.List(datasets.Value("int64"))
    extra = {}
    if config is not None and config.modalities:
        from .modalities import modality_features

        extra = modality_features(config)
    return datasets.Features({
        **extra,
        "window_start": datasets.Value("float64"),
        "input_ids": ids, "dt_ids": ids, "past_input_ids": ids, "past_dt_ids": ids,
        "n_spikes": datasets.Value("int64"), "n_truncated": datasets.Value("int64"),
        "n_past_truncated": datasets.Value("int64"),
        "past_clip_start": datasets.Value("float64"),
    })


#: windows :func:`prepare_windows` tokenizes at a time (its progress bar moves after each such chunk)
PREPARE_CHUNK_WINDOWS = 500
#: ``manifest.json`` ``format`` of a directory written by :func:`prepare_windows`.
PREPARED_FORMAT = "hf_neuroformer.prepared_windows/1"
# how prepare_windows deals the train split's windows to shards: window k to shard k mod n (see its docstring)
TRAIN_SHARD_LAYOUT = "interleaved"


class VocabularyMismatchError(ValueError):
    """A tokenizer whose vocabulary is not the one a directory's windows were tokenized with
    (:func:`check_window_vocabulary`)."""


def vocabulary_tokens(tokenizer) -> List[str]:
    """The tokens of ``tokenizer`` in id order (index ``i`` holds the token of id ``i``: the
    specials ``<pad>``, ``<bos>``, ``<eos>``, then the units as ``"<session>/<unit name>"``), as
    :func:`prepare_windows` records them in ``manifest.json`` (``"vocabulary"``)."""
    by_id = {int(i): str(t) for t, i in tokenizer.get_vocab().items()}
    return [by_id[i] for i in sorted(by_id)]


def check_window_vocabulary(tokenizer, recorded: Sequence[str], where: str, fix: str) -> None:
    """Refuse ``tokenizer`` unless its tokens in id order (:func:`vocabulary_tokens`) start with
    ``recorded``, the vocabulary the windows of ``where`` were tokenized with (the same token at
    every recorded id). Window rows hold unit ids only, so a vocabulary of the same length in
    another unit order (the units added in reverse) read every window's spikes as other units'
    without an error. A tokenizer that extends the record (units added with
    ``tokenizer.add_units`` after prepare, e.g. a multi-session tokenizer) is accepted: every id of
    the windows still names the same unit. A shorter one is refused (the windows' ids beyond it
    name no unit of it). ``fix`` ends the message.

    Raises:
        VocabularyMismatchError (a ValueError): naming the first id at which they differ with both
            tokens (or, the tokenizer shorter than the record, both lengths and the first recorded
            token it lacks).
    """
    mine, theirs = vocabulary_tokens(tokenizer), [str(t) for t in recorded]
    if mine[:len(theirs)] == theirs:
        # equal, or grown after prepare (add_units appends ids): the windows' ids name the same units
        return
    i = next((k for k, (a, b) in enumerate(zip(mine, theirs)) if a != b), None)
    if i is not None:
        what = (f"token id {i} is {mine[i]!r} in this tokenizer but {theirs[i]!r} in the vocabulary the windows of "
                f"{where} were tokenized with ({len(theirs)} tokens; this tokenizer has {len(mine)}), so the windows' "
                "unit ids would name other units")
    else:
        n = len(mine)  # shorter than the record (a longer one that agrees on every recorded id returned above)
        what = (f"this tokenizer has {n} tokens, the vocabulary the windows of {where} were tokenized with "
                f"{len(theirs)} (ids 0 .. {n - 1} agree; id {n} is {theirs[n]!r} in the windows' vocabulary only), so "
                f"the windows' unit ids from {n} on would name no unit of this tokenizer")
    raise VocabularyMismatchError(f"tokenizer: {what}; {fix}")


def _check_recorded_vocabulary(manifest: dict, tokenizer, where: str, fix: str, stacklevel: int) -> None:
    """:func:`check_window_vocabulary` against ``manifest``'s ``"vocabulary"``; a manifest written
    before it was recorded (none) is accepted with a warning saying the vocabulary goes unchecked."""
    recorded = manifest.get("vocabulary")
    if recorded is None:
        import warnings

        warnings.warn(f"{where}: its manifest.json has no 'vocabulary' record (prepared before the vocabulary was "
                      "recorded), so which unit each token id of its windows names cannot be checked against the "
                      "tokenizer used; prepare the windows again (neuroformer prepare) to record it",
                      UserWarning, stacklevel=stacklevel + 1)
        return
    if not (isinstance(recorded, list) and all(isinstance(t, str) for t in recorded)):
        raise ValueError(f"{where}: manifest.json has a 'vocabulary' that is not a list of tokens; it is damaged or "
                         "not written by 'neuroformer prepare': prepare the windows again")
    check_window_vocabulary(tokenizer, recorded, where, fix)


def _is_prepared_manifest(folder) -> bool:
    import json
    from pathlib import Path

    try:
        return json.loads((Path(folder) / "manifest.json").read_text()).get("format") == PREPARED_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


#: The tag in the metadata of the dataset card :func:`hf_neuroformer.hub.write_window_dataset` writes
#: (``README.md`` beside the windows), by which ``prepare --overwrite`` knows it for its own.
WINDOW_CARD_TAG = "hf_neuroformer"


def _is_window_dataset_card(path) -> bool:
    """``README.md`` at ``path`` opens with YAML metadata whose ``tags`` hold :data:`WINDOW_CARD_TAG`."""
    import yaml

    try:
        text = path.read_text()
        head = text.split("\n---", 1)[0] if text.startswith("---\n") else ""
        tags = (yaml.safe_load(head[4:]) or {}).get("tags") if head else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError):
        return False
    return isinstance(tags, list) and WINDOW_CARD_TAG in tags


def _unlisted_prepared_files(folder) -> List[str]:
    """The files of an earlier :func:`prepare_windows` output that it did not write although
    :func:`prepare_output_spec`'s patterns match them: a ``data/*.parquet`` its manifest does not
    list, and a ``README.md`` that is not a window dataset card (:func:`_is_window_dataset_card`).
    ``prepare --overwrite`` deleted them with the rest (a user's notes, a shard copied in)."""
    import json
    from pathlib import Path

    folder = Path(folder)
    try:
        splits = json.loads((folder / "manifest.json").read_text()).get("splits")
    except (OSError, ValueError, AttributeError):
        splits = None
    listed = {shard.get("path") for entry in (splits.values() if isinstance(splits, dict) else ())
              if isinstance(entry, dict) for shard in (entry.get("shards") or []) if isinstance(shard, dict)}
    out = [name for name in (p.relative_to(folder).as_posix() for p in sorted(folder.glob("data/*.parquet")))
           if name not in listed]
    readme = folder / "README.md"
    if readme.is_file() and not _is_window_dataset_card(readme):
        out.append("README.md")
    return out


def prepare_output_spec():
    """What :func:`prepare_windows` writes (:class:`hf_neuroformer.io.output_folder.OutputFolderSpec`):
    only such a folder is replaced by ``overwrite``, and only when each of its shards is listed in
    its manifest. ``README.md`` is the dataset card that :func:`hf_neuroformer.hub.write_window_dataset`
    adds to the same folder (known by its tag :data:`WINDOW_CARD_TAG`)."""
    from .io.output_folder import OutputFolderSpec

    return OutputFolderSpec(
        command="prepare", marker="manifest.json", is_own=_is_prepared_manifest,
        patterns=("manifest.json", "config.json", "splits.json", "vocab.json", "tokenizer_config.json",
                  "special_tokens_map.json", "added_tokens.json", "data", "data/*.parquet", "README.md"),
        unlisted=_unlisted_prepared_files,
    )


def check_preparable_config(config: NeuroformerConfig) -> None:
    """Refuse a config that :func:`prepare_windows` cannot write windows for.

    Raises:
        ValueError: ``config.modalities`` is not empty (prepared windows carry spikes only).
    """
    if config.modalities:
        raise ValueError("config.modalities: prepared (streamed) windows do not carry modality inputs yet; train on "
                         "the recording itself, or prepare with a config without modalities")


def prepare_windows(
    recording: SpikeRecording,
    output_dir,
    config: Optional[NeuroformerConfig] = None,
    tokenizer: Optional[NeuroformerTokenizer] = None,
    plan: Optional[SplitPlan] = None,
    *,
    num_shards: int = 1,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Write the windows of every split as Parquet shards with a manifest, for training that
    streams them (``neuroformer prepare``).

    Layout of ``output_dir``: ``data/<split>-<i:05d>-of-<n:05d>.parquet`` (columns of
    :func:`window_features`; the validation and test shards are contiguous blocks of windows in
    time order; in the train split, which training shuffles, window ``k`` (in time order) goes to
    shard ``k mod n``, so that every train shard spans the whole split and a streamed shuffle
    buffer filled from one shard at a time mixes windows from all of it: ``train_shard_layout:
    "interleaved"`` in the manifest, absent from a directory written before, whose train shards
    are contiguous too), ``config.json``,
    ``vocab.json`` + ``tokenizer_config.json`` (the tokenizer the ids refer to), ``splits.json``
    and ``manifest.json`` (format, recording, the token ids of its units, ``vocabulary``: the
    tokenizer's tokens in id order (:func:`vocabulary_tokens`; what the windows' ids name, checked
    by streamed training and :func:`load_prepared`), per split: windows, spikes, the windows that
    hold no spike (``n_windows_without_spikes``: kept, a BOS and an EOS, which the model learns to
    end at once; absent from a directory prepared before they were counted), truncated spikes and the windows they were cut from (``n_truncated_spikes``,
    ``n_truncated_windows``: current windows over ``max_window_length``; ``n_truncated_past_spikes``,
    ``n_truncated_past_windows``: past windows over ``max_past_length``; a directory prepared before
    the window counts has only the spike counts), the
    spikes and seconds outside every current window (:func:`spikes_outside_windows`) and the
    shards with their rows and sha256). Each shard is tokenized and written on its own, so
    memory holds one shard's windows at a time. The directory is written beside its final place
    and renamed into it, so a failed run leaves no half-written output (nor the folders it made above it); the folder gets the
    permissions a plain ``mkdir`` gives under the process umask (``0755`` under umask 022;
    ``tempfile.mkdtemp`` alone gave ``0700``), see :func:`hf_neuroformer.io.permissions.as_created`.

    Args:
        recording: the spikes (one session).
        output_dir: a new or empty folder; with ``overwrite`` also an earlier output of this
            function (its ``manifest.json`` and files only; never the working directory, a folder
            above it, or a folder holding a model), which is replaced once the new one is written.
        config: window and split settings (default ``NeuroformerConfig()``); its
            ``vocab_size`` is set to the tokenizer's.
        tokenizer: default: a new one from ``config`` holding the recording's units.
        plan: default :func:`plan_splits` of the recording.
        num_shards: shards per split (>= 1; fewer when a split has fewer windows).

    Returns:
        The manifest (also written as ``manifest.json``).

    Warns:
        UserWarning: hidden folders that an interrupted earlier run into ``output_dir`` left beside
            it (:func:`hf_neuroformer.io.output_folder.warn_leftovers`); segments of two splits of a
            time-mode ``plan`` given here closer than ``config.split_gap``
            (:func:`warn_splits_closer_than_gap`); a split whose windows hold 0 spikes, before
            its shards are written (:func:`warn_splits_without_spikes`).

    Raises:
        FileExistsError: ``output_dir`` is not empty and ``overwrite`` is False, or is a folder
            ``overwrite`` may not replace (see :func:`hf_neuroformer.io.output_folder.check_output_folder`).
        ValueError: ``num_shards`` < 1, a split with a non-zero fraction has no window, segments
            of two splits of ``plan`` overlap (:func:`check_splits_apart`), a window of ``plan``
            lies outside the recording's recorded time, ``tokenizer``'s window
            settings are not ``config``'s (named), or the path of ``output_dir`` holds ``::``
            (:func:`check_streamable_folder`).
    """
    import hashlib
    import json
    import shutil
    import tempfile
    from pathlib import Path

    import datasets
    from .progress import progress_bar as tqdm

    from .io.output_folder import (check_output_folder, missing_folders, move_into_place, remove_empty_folders,
                                   warn_leftovers)

    if not isinstance(num_shards, (int, np.integer)) or isinstance(num_shards, bool) or num_shards < 1:
        raise ValueError(f"num_shards: expected an integer >= 1, got {num_shards!r}")
    spec = prepare_output_spec()
    out = check_output_folder(output_dir, spec, overwrite=overwrite, flag="output_dir", overwrite_flag="overwrite=True")
    check_streamable_folder(out, "output_dir")
    check_not_empty(recording)
    config = config if config is not None else NeuroformerConfig()
    check_preparable_config(config)
    if tokenizer is None:
        tokenizer = NeuroformerTokenizer.from_config(config)
        tokenizer.add_units(recording)
    from .tokenization_neuroformer import check_tokenizer_windows

    # the windows are placed by the config (saved as config.json) and cut by the tokenizer: with another
    # current_window the shards held part of each window, and the manifest's counts said otherwise
    check_tokenizer_windows(tokenizer, config, "pass the tokenizer made from this config "
                            "(NeuroformerTokenizer.from_config(config) and add_units(recording)), or none")
    # as train does in memory: a vocab_size the config brought along (another model's, 50 for 8 tokens) was kept,
    # and the model trained on these windows then refused its own tokenizer ('not the model's tokenizer')
    config.vocab_size = len(tokenizer)
    # its warnings: our caller's line (no modality to fit: check_preparable_config refused them above, so the
    # fit_modalities call this made was never reached)
    plan = _checked_plan(recording, config, plan)
    created = missing_folders(out.parent)  # a failure below left the new a/b of 'a/b/prep' behind, empty
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    from .io.permissions import as_created

    as_created(tmp)  # mkdtemp makes it 0700: the folder a plain mkdir() gives (0755 under umask 022)
    bars_were_on = not datasets.utils.are_progress_bars_disabled()
    datasets.utils.disable_progress_bars()  # one bar per split (below), not one per Parquet file
    try:
        (tmp / "data").mkdir()
        manifest = {"format": PREPARED_FORMAT, "recording": repr(recording), "session": recording.session,
                    # the recording's units among the tokenizer's (which may hold other sessions' too): the support of
                    # the token baselines streamed training scores, as training in memory takes the recording's
                    "unit_token_ids": sorted(int(i) for i in tokenizer.unit_token_ids(recording)),
                    # the tokens in id order: what the windows' ids name (a vocab.json of the same length in
                    # another unit order, or another tokenizer given to load_prepared, was used without a word)
                    "vocabulary": vocabulary_tokens(tokenizer),
                    "split_spikes": split_spikes_digest(recording, plan), "num_shards": int(num_shards),
                    "train_shard_layout": TRAIN_SHARD_LAYOUT, "splits": {}}
        features = window_features(config)
        all_starts = {}
        for split in SPLITS:  # not a comprehension: its frame (Python < 3.12) made the overlap warning point here
            all_starts[split] = _split_windows(plan, split, config, recording)
        outside = spikes_outside_windows(recording, plan, config, {s: v[0] for s, v in all_starts.items()})
        # said now, before the shards are written: train warned of it only after the user had waited for it
        warn_splits_without_spikes({s: len(v[0]) for s, v in all_starts.items()},
                                   {s: v["n_spikes"] - v["n_spikes_outside_windows"] for s, v in outside.items()})
        for split in SPLITS:
            starts, clips = all_starts[split]
            n = max(1, min(int(num_shards), len(starts)))
            # the windows cut, beside the spikes cut: a few windows that burst or many a little over the budget
            entry = {"n_windows": int(len(starts)), "n_spikes": 0, "n_windows_without_spikes": 0,
                     "n_truncated_spikes": 0, "n_truncated_windows": 0,
                     "n_truncated_past_spikes": 0, "n_truncated_past_windows": 0, "shards": []}
            # train: window k -> shard k mod n; validation, test: contiguous blocks (rows in time order in each)
            blocks = ([np.arange(k, len(starts), n) for k in range(n)] if split == "train" else
                      np.array_split(np.arange(len(starts)), n))
            # a bar over the split's windows, moved every PREPARE_CHUNK_WINDOWS: one over shards stood at 0/1 for
            # the whole split with the default single shard
            bar = tqdm(total=len(starts), desc=f"prepare {split}", disable=not progress, unit="window")
            for i, idx in enumerate(blocks):
                cols: Dict[str, list] = {}
                for chunk in np.array_split(idx, max(1, -(-len(idx) // PREPARE_CHUNK_WINDOWS))):
                    part = tokenize_windows(recording, tokenizer, starts[chunk],
                                            None if clips is None else clips[chunk], config)
                    for k, v in part.items():
                        cols.setdefault(k, []).extend(v)
                    bar.update(len(chunk))
                name = f"data/{split}-{i:05d}-of-{n:05d}.parquet"
                datasets.Dataset.from_dict(cols, features=features).to_parquet(str(tmp / name))
                entry["n_spikes"] += int(sum(cols["n_spikes"]))
                # kept and trained on (the model learns to end a window at once), but a split of mostly empty
                # windows said nothing of it unless every window was empty (warn_splits_without_spikes)
                entry["n_windows_without_spikes"] += int(np.count_nonzero(np.asarray(cols["n_spikes"]) == 0))
                entry["n_truncated_spikes"] += int(sum(cols["n_truncated"]))
                entry["n_truncated_past_spikes"] += int(sum(cols["n_past_truncated"]))
                entry["n_truncated_windows"] += int(np.count_nonzero(np.asarray(cols["n_truncated"]) > 0))
                entry["n_truncated_past_windows"] += int(np.count_nonzero(np.asarray(cols["n_past_truncated"]) > 0))
                entry["shards"].append({"path": name, "n_rows": int(len(idx)),
                                        "sha256": hashlib.sha256((tmp / name).read_bytes()).hexdigest()})
            bar.close()
            entry["n_spikes_outside_windows"] = outside[split]["n_spikes_outside_windows"]
            entry["seconds_outside_windows"] = round(outside[split]["seconds_outside_windows"], 6)
            manifest["splits"][split] = entry
        config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "splits.json").write_text(json.dumps(plan.to_dict(), indent=2))
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        check_output_folder(out, spec, overwrite=overwrite, flag="output_dir", overwrite_flag="overwrite=True")  # again: it may have changed while we wrote
        move_into_place(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        remove_empty_folders(created)  # none is empty once the output is in place
        if bars_were_on:
            datasets.utils.enable_progress_bars()
    warn_leftovers(out, "prepare")  # a run killed (out of memory) while writing left its hidden folder of shards
    return manifest


#: The JSON files :func:`prepare_windows` writes beside the shards, all read by streamed training:
#: without config.json a default config trained until a batch failed; without vocab.json an empty
#: unit vocabulary trained and scored NaN baselines (:func:`check_prepared_files`).
PREPARED_JSON_FILES = ("manifest.json", "config.json", "vocab.json", "tokenizer_config.json", "splits.json")


def _read_prepared_json(path, field: str) -> dict:
    """One JSON object of a prepared directory; a file cut short or not JSON is a ValueError naming it."""
    import json

    try:
        value = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{field}: {str(path)!r} is not readable JSON ({err}); prepare the windows again "
                         "(neuroformer prepare)") from None
    if not isinstance(value, dict):
        raise ValueError(f"{field}: {str(path)!r} holds a JSON {type(value).__name__}, expected an object; prepare "
                         "the windows again (neuroformer prepare)")
    return value


def check_prepared_files(prepared_dir, field: str = "prepared_dir") -> None:
    """Every file of :data:`PREPARED_JSON_FILES` is in ``prepared_dir`` and holds a JSON object.

    Raises:
        FileNotFoundError: one or more are missing (all named, with the fix).
        ValueError: one is not a JSON object (cut short, damaged), naming it.
    """
    from pathlib import Path

    d = Path(prepared_dir)
    missing = [str(d / n) for n in PREPARED_JSON_FILES if not (d / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{field}: {count_noun(len(missing), 'file')} missing from the prepared directory: "
                                f"{missing}; prepare the "
                                "windows again (neuroformer prepare)")
    for name in PREPARED_JSON_FILES:
        _read_prepared_json(d / name, field)


def check_streamable_folder(folder, field: str) -> None:
    """Refuse a prepared folder whose absolute path holds ``::``, which ``datasets`` (fsspec) reads
    as a chained URL (``zip://x.csv::archive.zip``): ``prepare`` failed after tokenizing a whole
    split with "No such file or directory" and streamed training called the shards unreadable
    ("prepare the windows again", which could not help).

    Raises:
        ValueError: naming ``field``, the path and the fix.
    """
    import os

    if "::" in os.path.abspath(folder):
        raise ValueError(f"{field}: {str(folder)!r} holds '::' in its path, which datasets reads as a chained URL "
                         "(as in zip://file::archive.zip), so its Parquet shards cannot be written or streamed; "
                         "choose a folder whose path has no '::'")


#: The counts every split entry of a prepared directory's ``manifest.json`` holds (training reads them).
_MANIFEST_SPLIT_COUNTS = ("n_windows", "n_spikes", "n_truncated_spikes", "n_truncated_past_spikes")


def _manifest_problem(manifest: dict) -> Optional[str]:
    """What a ``manifest.json`` lacks of the entries :func:`prepare_windows` has always written (a
    ``recording`` text, a ``splits`` mapping, per split the :data:`_MANIFEST_SPLIT_COUNTS` and a
    list of ``shards`` with their ``n_rows``), as a phrase for a message; None when it has them."""
    if not isinstance(manifest.get("recording"), str):
        return "has no 'recording' text"
    if not isinstance(manifest.get("splits"), dict):
        return "has no 'splits' mapping"
    vocabulary = manifest.get("vocabulary")  # absent from a directory prepared before it was written
    if vocabulary is not None and not (isinstance(vocabulary, list) and all(isinstance(t, str) for t in vocabulary)):
        return "has a 'vocabulary' that is not a list of tokens"
    ids = manifest.get("unit_token_ids")  # absent from a directory prepared before it was written
    if ids is not None and not (isinstance(ids, list) and all(is_whole_number(i) for i in ids)):
        return "has a 'unit_token_ids' that is not a list of token ids"
    for split, entry in manifest["splits"].items():
        if not isinstance(entry, dict):
            return f"has a split {split!r} that is not a mapping"
        for key in _MANIFEST_SPLIT_COUNTS:
            if not is_whole_number(entry.get(key)):
                return f"has no whole number {key!r} for split {split!r}"
        if not isinstance(entry.get("shards"), list):
            return f"has no 'shards' list for split {split!r}"
        for i, shard in enumerate(entry["shards"]):
            if not isinstance(shard, dict) or not is_whole_number(shard.get("n_rows")):
                return f"has no whole number 'n_rows' for shard {i} of split {split!r}"
    return None


def _read_prepared_manifest(d, field: str) -> dict:
    check_streamable_folder(d, field)
    if not (d / "manifest.json").is_file():
        raise FileNotFoundError(f"{field}: {str(d)!r} has no manifest.json; write it with 'neuroformer prepare'")
    manifest = _read_prepared_json(d / "manifest.json", field)
    if manifest.get("format") != PREPARED_FORMAT:
        raise ValueError(f"{field}: manifest format {manifest.get('format')!r}, expected {PREPARED_FORMAT!r}")
    # a manifest lacking an entry prepare_windows always writes failed with the bare key as its message
    # ("neuroformer train: error: splits", "... error: n_rows"), or (its 'recording') after the whole run
    problem = _manifest_problem(manifest)
    if problem is not None:
        raise ValueError(f"{field}: manifest.json of {str(d)!r} {problem}, which 'neuroformer prepare' writes; it is "
                         "damaged or not written by it: prepare the windows again")
    from pathlib import PurePosixPath, PureWindowsPath

    for split, entry in (manifest.get("splits") or {}).items():
        for shard in (entry.get("shards") or []) if isinstance(entry, dict) else []:
            path = shard.get("path") if isinstance(shard, dict) else None
            # "../other/x.parquet" or "/data/x.parquet" was read (and pushed) from outside the folder
            if (not isinstance(path, str) or not path or PurePosixPath(path).is_absolute()
                    or PureWindowsPath(path).is_absolute() or ".." in PurePosixPath(path.replace("\\", "/")).parts):
                raise ValueError(f"{field}: manifest.json lists a shard of split {split!r} at {path!r}; expected a "
                                 "path inside the prepared directory (as 'neuroformer prepare' writes, e.g. "
                                 "'data/train-00000-of-00001.parquet'); prepare the windows again")
    return manifest


#: How a Git LFS pointer file begins (what a clone without Git LFS holds in place of a large file).
_LFS_POINTER = b"version https://git-lfs.github.com/spec/v1"


def verify_prepared(prepared_dir, splits: Optional[Sequence[str]] = None, *, field: str = "prepared_dir"
                    ) -> Dict[str, int]:
    """Check the shards of a :func:`prepare_windows` directory against its manifest: every shard
    is present, holds the rows the manifest lists (read from its Parquet footer) and, where the
    manifest records one, has its sha256 (manifests without it are checked by rows only); each
    split's rows add up to its ``n_windows``. A shard copied over from another split or another
    run, or half written, is refused rather than trained on.

    Args:
        splits: the splits to check (default: all in the manifest).
        field: the name of the folder argument in messages (``"--data"`` from ``neuroformer train``).

    Returns:
        split -> windows (rows) in its shards, as read.

    Raises:
        FileNotFoundError: no ``manifest.json``, or a listed shard is missing.
        ValueError: an unknown split or manifest format, a manifest lacking an entry
            :func:`prepare_windows` writes (named), or a shard whose rows or sha256 differ
            from the manifest (naming the shard, the expected and the found value).
    """
    from pathlib import Path

    import pyarrow.parquet as pq

    d = Path(prepared_dir)
    manifest = _read_prepared_manifest(d, field)
    rows = {}
    for split in (manifest["splits"] if splits is None else splits):
        if split not in manifest["splits"]:
            raise ValueError(f"split: {split!r} is not in {str(d)!r}; it holds {sorted(manifest['splits'])}")
        entry = manifest["splits"][split]
        missing = [str(d / s["path"]) for s in entry["shards"] if not (d / s["path"]).is_file()]
        if missing:
            raise FileNotFoundError(f"{field}: {count_noun(len(missing), 'shard')} missing from the prepared directory: "
                                    f"{missing}; prepare "
                                    "the windows again (neuroformer prepare)")
        total = 0
        for shard in entry["shards"]:
            path = d / shard["path"]
            try:
                found = pq.ParquetFile(path).metadata.num_rows
            except Exception as err:  # not Parquet, or cut short: pyarrow raises its own error types
                with open(path, "rb") as f:
                    lfs_pointer = f.read(len(_LFS_POINTER)) == _LFS_POINTER
                if lfs_pointer:  # a dataset repository 'neuroformer push' wrote, cloned without Git LFS
                    raise ValueError(f"{field}: shard {str(path)!r} is a Git LFS pointer, not the shard: the "
                                     "repository was cloned without Git LFS; run 'git lfs install' and 'git lfs "
                                     "pull' in it, or download it with huggingface_hub.snapshot_download("
                                     "repo_id, repo_type='dataset')") from None
                raise ValueError(f"{field}: shard {str(path)!r} is not a readable Parquet file ({err}); prepare "
                                 "the windows again (neuroformer prepare)") from None
            if found != int(shard["n_rows"]):
                raise ValueError(f"{field}: shard {str(path)!r} holds {found} rows, the manifest lists "
                                 f"{int(shard['n_rows'])}; it is not the shard 'neuroformer prepare' wrote, "
                                 "prepare the windows again")
            if shard.get("sha256"):
                digest = file_sha256(path)
                if digest != shard["sha256"]:
                    raise ValueError(f"{field}: shard {str(path)!r} has sha256 {digest}, the manifest lists "
                                     f"{shard['sha256']}; it is not the shard 'neuroformer prepare' wrote, "
                                     "prepare the windows again")
            total += found
        if total != int(entry["n_windows"]):
            raise ValueError(f"{field}: the {split} shards hold {total} rows, the manifest lists "
                             f"n_windows={int(entry['n_windows'])}; prepare the windows again")
        rows[split] = total
    return rows


def load_prepared(prepared_dir, split: str, streaming: bool = True, *, verify: bool = True,
                  field: str = "prepared_dir", tokenizer=None):
    """One split of a :func:`prepare_windows` directory as a ``datasets`` (Iterable)Dataset.

    With ``streaming=True`` the Parquet shards are read lazily (``datasets.IterableDataset``),
    so memory holds a batch of rows, not the split; for several processes, pass the result to
    ``datasets.distributed.split_dataset_by_node`` (shards are divided between ranks). A split
    without windows (``split_fractions`` 0) gives an empty Dataset (stream) with the same columns.

    With ``streaming=False`` the shards are converted to Arrow in a folder of the ``datasets``
    cache named by the shards' sha256 (``neuroformer_prepared/<digest>``): ``datasets`` keys its
    conversion by the shards' paths and modification times only, so shards replaced with equal
    times (copied over with ``cp -p``, ``rsync -a`` or from a tar archive; a file system with 1-s
    or 2-s times and two ``prepare --overwrite`` in one second) were read from the old conversion,
    other windows than the shards :func:`verify_prepared` had just checked. The same shards are
    converted once and reused; a conversion is never redone in place, which deleted the Arrow
    files (and ``.map`` caches) that Datasets of an earlier call still read. Conversions are
    therefore never removed here: delete ``$HF_DATASETS_CACHE/neuroformer_prepared`` to free
    their space once no Dataset of this function is in use.

    Args:
        verify: check the split's shards against the manifest first (:func:`verify_prepared`;
            this reads each shard once for its sha256). ``False`` when the caller has done so.
        field: the name of the folder argument in messages.
        tokenizer: the tokenizer the windows will be collated and trained with (optional):
            refused unless its vocabulary starts with the one the windows were tokenized with
            (``manifest.json``'s ``vocabulary``, :func:`check_window_vocabulary`: the same token at
            every recorded id; units added after prepare with ``tokenizer.add_units`` are
            accepted); the rows hold unit ids only, so a tokenizer of the same length in another
            unit order read them as other units without an error. A directory prepared before the vocabulary was
            recorded is loaded with a warning that it goes unchecked.

    Raises:
        FileNotFoundError: no ``manifest.json`` (not a prepared directory) or a listed shard is
            missing.
        ValueError: an unknown split or manifest format, a manifest lacking an entry
            :func:`prepare_windows` writes (named), or (``verify``) a shard that differs
            from the manifest.
        VocabularyMismatchError (a ValueError): ``tokenizer``'s vocabulary does not start with the
            windows' (another token at a recorded id, or fewer tokens), naming the first differing
            id and both tokens (or both lengths).
        ValueError: a :class:`NeuroformerTokenizer` ``tokenizer`` whose window settings
            (``current_window``, ``past_window``, ``dt_resolution``, ``max_window_length``,
            ``max_past_length``) are not those of the directory's ``config.json`` (its dt ids would
            name other bins), naming the field and both values.
    """
    import hashlib
    from pathlib import Path

    import datasets

    d = Path(prepared_dir)
    manifest = _read_prepared_manifest(d, field)
    if split not in manifest["splits"]:
        raise ValueError(f"split: {split!r} is not in {str(d)!r}; it holds {sorted(manifest['splits'])}")
    if tokenizer is not None:
        _check_recorded_vocabulary(
            manifest, tokenizer, f"{field} {str(d)!r}",
            "use the tokenizer saved with the windows (NeuroformerTokenizer.from_pretrained of the prepared "
            "directory), or prepare the windows again with this tokenizer (prepare_windows(..., tokenizer=...))",
            stacklevel=2)
        if isinstance(tokenizer, NeuroformerTokenizer) and (d / "config.json").is_file():
            from .tokenization_neuroformer import check_tokenizer_windows

            # a tokenizer of another current_window or dt_resolution with the same units passed the vocabulary
            # check and read every dt id of these windows in other bins, without an error
            check_tokenizer_windows(
                tokenizer, NeuroformerConfig.from_pretrained(d),
                f"the windows of {field} {str(d)!r} were cut with the settings of its config.json: use the tokenizer "
                "saved with them (NeuroformerTokenizer.from_pretrained of the prepared directory), or prepare the "
                "windows again with this tokenizer's settings")
    if verify:
        verify_prepared(d, [split], field=field)
    files = [str(d / s["path"]) for s in manifest["splits"][split]["shards"]]
    missing = [f for f in files if not Path(f).is_file()]
    if missing:
        raise FileNotFoundError(f"{field}: {count_noun(len(missing), 'shard')} missing from the prepared directory: "
                                f"{missing}")
    config = None
    if (d / "config.json").is_file():
        config = NeuroformerConfig.from_pretrained(d)
    if not streaming and not int(manifest["splits"][split]["n_windows"]):
        # its one shard holds no row, which load_dataset refused: 'Instruction "test" corresponds to no data!'
        features = window_features(config)
        return datasets.Dataset.from_dict({k: [] for k in features}, features=features,
                                          split=datasets.NamedSplit(split))
    cache = {}
    if not streaming:  # datasets keys its conversion by path and mtime only: a folder per content
        digests = [s.get("sha256") or file_sha256(f) for s, f in zip(manifest["splits"][split]["shards"], files)]
        key = hashlib.sha256("\n".join(digests).encode()).hexdigest()[:32]
        cache = {"cache_dir": str(Path(datasets.config.HF_DATASETS_CACHE) / "neuroformer_prepared" / key)}
    import glob
    import os

    # datasets reads each data_files path as a glob pattern: in a folder 'prep[1]' the shards matched no file and
    # the split streamed 0 windows without a word (features given); in 'prep*' a sibling folder's shards came too.
    # Absolute: a relative path is joined to the working directory unescaped (a 'runs[2]' cwd failed)
    return datasets.load_dataset("parquet", data_files={split: [glob.escape(os.path.abspath(f)) for f in files]},
                                 split=split, streaming=streaming, features=window_features(config), **cache)


def keeps_training_mode(fn):
    """Decorator for functions that put their ``model`` (the argument named ``model``, else the
    first argument) in eval mode: the model's training mode on entry comes back on exit, also when
    the function raises (an unknown unit, an interrupt). ``evaluate_token_nll``,
    ``evaluate_retrieval`` and ``window_latents`` left a training model in eval mode (dropout off
    for the rest of a training loop), and ``generate_spikes`` / ``window_log_likelihoods`` did
    when they raised.

    A generator function gets the mode back when it is exhausted or closed (its body runs only
    while it is iterated), and so does a generator a function returns: restoring the mode when
    the call returned left a generator function's model in eval mode, and would run a returned
    generator's batches in training mode (dropout on)."""
    import functools
    import inspect

    params = inspect.signature(fn).parameters

    def model_of(args, kwargs):
        if "model" in kwargs:
            return kwargs["model"]
        names = [n for n, p in params.items() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        i = names.index("model") if "model" in names else 0
        return args[i] if i < len(args) else None

    def restore(model, mode):
        if mode is not None:
            model.train(mode)

    def restoring(gen, model, mode):
        try:
            return (yield from gen)
        finally:
            restore(model, mode)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator_wrapper(*args, **kwargs):
            model = model_of(args, kwargs)
            return (yield from restoring(fn(*args, **kwargs), model, getattr(model, "training", None)))

        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        model = model_of(args, kwargs)
        mode = getattr(model, "training", None)
        try:
            out = fn(*args, **kwargs)
        except BaseException:
            restore(model, mode)
            raise
        if inspect.isgenerator(out):
            return restoring(out, model, mode)
        restore(model, mode)
        return out

    return wrapper


def batch_to_device(batch, device):
    """A collated batch (tensors, and the nested ``modality_inputs`` dicts of
    :class:`NeuroformerCollator`) moved to ``device``."""
    if isinstance(batch, dict):
        return {k: batch_to_device(v, device) for k, v in batch.items()}
    return batch.to(device)


def collated_batches(cols, collator, batch_size: int, device):
    """Batches of tokenized windows, in order, for a model's forward pass.

    Args:
        cols: the columns of :meth:`hf_neuroformer.NeuroformerProcessor.tokenize` (one list entry
            per window); the model inputs are read from them (token ids, dt bins, past window,
            ``mod_*`` modality columns).
        collator: a :class:`NeuroformerCollator` (the processor's ``collator``).
        batch_size: windows per batch, >= 1.
        device: where the batch tensors go.

    Yields:
        ``(window indices (range), collated batch on device)``; the batch holds
        ``modality_inputs`` when the collator's config has modalities.
    """
    keys = ("input_ids", "dt_ids", "past_input_ids", "past_dt_ids", *(k for k in cols if k.startswith("mod_")))
    n = len(cols["input_ids"])
    for b0 in range(0, n, batch_size):
        idx = range(b0, min(n, b0 + batch_size))
        yield idx, batch_to_device(collator([{k: cols[k][i] for k in keys} for i in idx]), device)


def _plain(value):
    """A value of a pandas-formatted row as Python values: numpy arrays (nested ones of ``object``
    dtype included, as ``datasets`` gives list columns of lists) as lists, numpy scalars as
    Python numbers; anything else as it is."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value] if value.dtype == object else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _table_rows(examples) -> Optional[List[dict]]:
    """The rows of ``examples`` as a list of dicts when it is a ``pyarrow.Table`` / ``RecordBatch``
    (``datasets`` format ``"arrow"``) or a ``pandas.DataFrame`` (format ``"pandas"``), else None.
    Neither library is imported here: a table of one is only made where it was imported."""
    import sys

    pa = sys.modules.get("pyarrow")
    if pa is not None and isinstance(examples, (pa.Table, pa.RecordBatch)):
        return examples.to_pylist()
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(examples, pd.DataFrame):
        return [{k: _plain(v) for k, v in row.items()} for row in examples.to_dict("records")]
    return None


class NeuroformerCollator:
    """Pads a list of window examples into model tensors.

    Output (all ``torch.int64`` unless noted), ``B`` = batch, ``T`` / ``P`` = longest current /
    past sequence in the batch: ``input_ids (B, T)``, ``dt_ids (B, T)``, ``attention_mask (B, T)``,
    ``labels (B, T)`` (``-100`` at padding), ``dt_labels (B, T)`` (``-100`` at BOS, EOS, padding),
    ``past_input_ids (B, P)``, ``past_dt_ids (B, P)``, ``past_attention_mask (B, P)``.
    ``tokenizer.pad`` cannot pad ``dt_ids`` (GUIDE sec. 6), hence this collator.

    With ``modalities`` (``config.modalities``) it adds ``modality_inputs``: modality name ->
    ``{"times": (B, N) float32 s relative to the window start, "values": (B, N, num_features)
    float32 raw values (continuous) or "ids": (B, N) int64 class indices (categorical),
    "mask": (B, N) bool, True for real tokens}``, ``N >= 1`` the most tokens of that modality
    in the batch (padding: mask False); a video modality gives ``{"frames": (B, num_frames, H, W)
    float32, "times": (B, num_frames), "mask": (B, num_frames)}`` (see :meth:`_video_inputs`).

    Args:
        pad_token_id, bos_token_id, eos_token_id: the special token ids (integers >= 0; default
            the tokenizer's 0, 1, 2), not a tokenizer: a model's collator is
            ``processor.collator``, or ``NeuroformerCollator(tok.pad_token_id, tok.bos_token_id,
            tok.eos_token_id, config.modalities)``.
        modalities: ``config.modalities`` (None: spikes only).
        vocab_size: a fixed length of the tokenizer the rows must come from, or None (no check,
            unless ``tokenizer`` is given): a row holding a unit id outside ``[0, vocab_size)`` is
            refused when collated, naming it.
        tokenizer: the tokenizer the rows must come from (``processor.collator`` gives
            ``processor.tokenizer``), or None: its length is read each time rows are collated, so
            units added with ``tokenizer.add_units`` after the collator was built are accepted (a
            length recorded when it was built refused them as another tokenizer's). Give it or
            ``vocab_size``, not both.
        model_vocab_size: the model's ``config.vocab_size`` (a model's ``processor.collator`` gives
            ``processor.model_vocab_size``), or None: a row holding a unit id ``>= model_vocab_size``
            (a unit added with ``tokenizer.add_units`` after the model was made, which the model has no
            embedding for) is refused when collated, naming the id and the model's ``vocab_size``;
            before, such rows were padded and only ``model(**batch)`` refused them.

    Raises:
        ValueError: a token id that is not an integer >= 0 (a tokenizer or a config given in
            its place included), a ``vocab_size`` or ``model_vocab_size`` that is not an integer >= 1, a ``tokenizer``
            without a length, or both ``vocab_size`` and ``tokenizer``, naming the argument.
    """

    def __init__(self, pad_token_id: int = 0, bos_token_id: int = 1, eos_token_id: int = 2, modalities=None,
                 vocab_size: Optional[int] = None, tokenizer=None, model_vocab_size: Optional[int] = None):
        if model_vocab_size is not None and not (is_whole_number(model_vocab_size) and model_vocab_size >= 1):
            raise ValueError(f"NeuroformerCollator: model_vocab_size: expected None or an integer >= 1 (the model's "
                             f"config.vocab_size), got {model_vocab_size!r}")
        self.model_vocab_size = None if model_vocab_size is None else int(model_vocab_size)
        if vocab_size is not None and not (is_whole_number(vocab_size) and vocab_size >= 1):
            raise ValueError(f"NeuroformerCollator: vocab_size: expected None or an integer >= 1 (len(tokenizer)), got "
                             f"{vocab_size!r}")
        if tokenizer is not None and vocab_size is not None:
            raise ValueError(f"NeuroformerCollator: give vocab_size or tokenizer, not both (got vocab_size={vocab_size!r} "
                             f"and a tokenizer of {len(tokenizer)} tokens): the tokenizer's length is read when rows "
                             "are collated")
        if tokenizer is not None and not hasattr(tokenizer, "__len__"):
            raise ValueError(f"NeuroformerCollator: tokenizer: expected a tokenizer (with a length), got "
                             f"{type(tokenizer).__name__}")
        self._vocab_size = None if vocab_size is None else int(vocab_size)
        self.tokenizer = tokenizer
        for name, value in (("pad_token_id", pad_token_id), ("bos_token_id", bos_token_id),
                            ("eos_token_id", eos_token_id)):
            if not (is_whole_number(value) and value >= 0):
                shown = repr(value) if value is None or is_real_number(value) else type(value).__name__
                raise ValueError(
                    f"NeuroformerCollator: {name}: expected a token id (an integer >= 0), got {shown}; the "
                    "collator takes the special token ids, not a tokenizer or config: use processor.collator, "
                    "or NeuroformerCollator(tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, config.modalities)")
        self.pad, self.bos, self.eos = int(pad_token_id), int(bos_token_id), int(eos_token_id)
        self.modalities = list(modalities or [])

    @property
    def vocab_size(self) -> Optional[int]:
        """The number of token ids rows may hold (ids ``0 .. vocab_size - 1``): ``len(tokenizer)``
        now, for a collator given a tokenizer, else the fixed ``vocab_size`` (None: no check)."""
        return len(self.tokenizer) if self.tokenizer is not None else self._vocab_size

    def _modality_inputs(self, examples: List[dict]) -> Dict[str, Dict[str, torch.Tensor]]:
        from .modalities import modality_column_names

        out = {}
        for mod in self.modalities:
            t_col, v_col, _ = modality_column_names(mod)
            missing = [c for c in (t_col, v_col) if c not in examples[0]]
            if missing:
                raise ValueError(f"modality {mod['name']!r}: the window examples lack the "
                                 f"{'column' if len(missing) == 1 else 'columns'} {missing}; build "
                                 "them with build_window_datasets / tokenize_windows(..., config=config) / "
                                 "processor.to_dataset; transformers.Trainer drops them (they are no forward "
                                 "argument) unless given TrainingArguments(remove_unused_columns=False)")
            b = len(examples)
            if mod["kind"] == "video":
                out[mod["name"]] = self._video_inputs(mod, examples, t_col, v_col)
                continue
            n = max(1, max(len(e[t_col]) for e in examples))
            times = torch.zeros(b, n, dtype=torch.float32)
            mask = torch.zeros(b, n, dtype=torch.bool)
            if mod["kind"] == "continuous":
                vals = torch.zeros(b, n, mod["num_features"], dtype=torch.float32)
            else:
                vals = torch.zeros(b, n, dtype=torch.long)
            for i, e in enumerate(examples):
                k = len(e[t_col])
                if k:
                    times[i, :k] = torch.as_tensor(e[t_col], dtype=torch.float32)
                    vals[i, :k] = torch.as_tensor(e[v_col], dtype=vals.dtype)
                    mask[i, :k] = True
            out[mod["name"]] = {"times": times, "mask": mask,
                                ("values" if mod["kind"] == "continuous" else "ids"): vals}
        return out

    @staticmethod
    def _video_inputs(mod: dict, examples: List[dict], t_col: str, v_col: str) -> Dict[str, torch.Tensor]:
        """``frames (B, num_frames, H, W)`` float32 with each window's frames at the END (the latest
        frame last; missing earlier frames are zeros), ``times (B, num_frames)`` float32 onsets (s,
        relative to the window start) and ``mask (B, num_frames)`` bool, True for real frames."""
        n, (h, w) = mod["num_frames"], mod["frame_shape"]
        b = len(examples)
        frames = torch.zeros(b, n, h, w, dtype=torch.float32)
        times = torch.zeros(b, n, dtype=torch.float32)
        mask = torch.zeros(b, n, dtype=torch.bool)
        for i, e in enumerate(examples):
            k = len(e[t_col])
            if k > n:
                raise ValueError(f"modality {mod['name']!r}: window {i} has {k} frames, more than num_frames={n}")
            if k:
                f = torch.as_tensor(np.asarray(e[v_col], dtype=np.float32))
                if tuple(f.shape) != (k, h, w):
                    raise ValueError(f"modality {mod['name']!r}: window {i} frames have shape {tuple(f.shape)}, "
                                     f"expected ({k}, {h}, {w}) (frame_shape {mod['frame_shape']})")
                frames[i, n - k:] = f
                times[i, n - k:] = torch.as_tensor(e[t_col], dtype=torch.float32)
                mask[i, n - k:] = True
        return {"frames": frames, "times": times, "mask": mask}

    def _check_vocabulary(self, padded: Dict[str, tuple]) -> None:
        """Refuse a token id outside ``[0, vocab_size)`` among the real tokens of the padded
        ``(ids, mask)`` pairs (column name -> ``(B, T)`` int64 tensors): rows of another tokenizer (a
        processor of another checkpoint given windows read back with ``datasets.load_from_disk``)
        were padded without a word, and the model then blamed a tokenizer grown with ``add_units``.
        With ``model_vocab_size``, then refuse an id ``>= model_vocab_size``: a unit added to the tokenizer
        after the model was made, which the model has no embedding for."""
        def first_real(outside):  # (column, row, id) of the first real token whose id is ``outside``, or None
            for key, (ids, mask) in padded.items():
                bad = outside(ids) & (mask == 1)
                if bad.any():
                    i, j = (int(k) for k in bad.nonzero()[0])
                    return key, i, int(ids[i, j])
            return None

        n = self.vocab_size  # read once: a tokenizer's length now (units added after the collator was built)
        if n is not None:
            found = first_real(lambda ids: (ids < 0) | (ids >= n))
            if found is not None:
                key, i, token = found
                raise ValueError(
                    f"examples[{i}]: {key} holds token id {token}, outside this collator's tokenizer of "
                    f"{n} tokens (ids 0 .. {n - 1}): the window was tokenized with another "
                    "tokenizer (another model's or prepared directory's vocabulary); tokenize the windows with this "
                    "processor (processor.to_dataset(recording, window_starts)) or collate them with the processor "
                    "saved beside the tokenizer that made them")
        v = self.model_vocab_size
        found = None if v is None else first_real(lambda ids: ids >= v)
        if found is not None:
            key, i, token = found
            raise ValueError(
                f"examples[{i}]: {key} holds token id {token}, but the model's config.vocab_size = {v} "
                f"(ids 0 .. {v - 1}): its unit was added with tokenizer.add_units after the model was made, and "
                "the model has no embedding for it; to train the model on new units, grow it first with "
                "model.resize_unit_embeddings(len(tokenizer)) (then fine-tune) and make the processor again with "
                "NeuroformerProcessor.from_config(tokenizer, model.config); else keep only the units the model "
                "was trained on")

    @staticmethod
    def _mask(seqs) -> torch.Tensor:
        """``(len(seqs), longest)`` int64: 1 at each sequence's entries, 0 in the padding."""
        lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
        return (torch.arange(int(lengths.max()))[None, :] < lengths[:, None]).long()

    def _pad(self, seqs, value):
        n = max(len(s) for s in seqs)
        out = torch.full((len(seqs), n), value, dtype=torch.long)
        # Python lists of ints (datasets' rows) or 1-D integer arrays: one conversion for the batch, where one
        # torch.as_tensor a row took 0.27 s to collate 5,000 windows; anything else row by row, as before
        flat = None
        if all(type(s) is list for s in seqs):
            flat = np.array(list(itertools.chain.from_iterable(seqs)))
        elif all(isinstance(s, np.ndarray) and s.ndim == 1 for s in seqs):
            flat = np.concatenate(seqs)
        if flat is not None and flat.ndim == 1 and (flat.dtype.kind in "ib" or not flat.size):
            out[self._mask(seqs).bool()] = torch.from_numpy(flat.astype(np.int64))
            return out
        for i, s in enumerate(seqs):
            out[i, : len(s)] = torch.as_tensor(s, dtype=torch.long)
        return out

    @staticmethod
    def rows(examples) -> List[dict]:
        """``examples`` as a list of window rows: a list of row dicts as given, or a mapping of
        equal-length columns (a ``datasets`` slice ``ds[:8]``, :meth:`NeuroformerProcessor.tokenize`'s
        columns) taken apart into rows. Given columns, the collator iterated their names and failed
        with ``TypeError: string indices must be integers``.

        Rows of a dataset formatted with ``ds.with_format("arrow")`` (a ``pyarrow.Table`` /
        ``RecordBatch``) or ``("pandas")`` (a ``pandas.DataFrame``), a slice or a list of single rows
        as a ``DataLoader`` fetches them, are converted into row dicts of Python lists (their rows,
        in order): they were padded as one-element sequences and failed with ``RuntimeError: The
        expanded size of the tensor (1) must match the existing size``.

        Raises:
            ValueError: columns of different lengths, naming them.
        """
        from collections.abc import Mapping

        table = _table_rows(examples)
        if table is not None:
            return table
        if not isinstance(examples, Mapping):
            parts = [_table_rows(e) for e in examples] if isinstance(examples, (list, tuple)) else []
            if any(p is not None for p in parts):  # single rows a DataLoader fetched one by one
                return [row for e, p in zip(examples, parts) for row in (p if p is not None else [e])]
            return examples
        lengths = {k: len(v) for k, v in examples.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"examples: a mapping of columns (one entry per window) must hold columns of one length, "
                             f"got lengths {lengths}; pass a list of window rows or a dataset slice such as ds[:8]")
        return [dict(zip(examples, values)) for values in zip(*examples.values())]

    def __call__(self, examples: List[dict]) -> Dict[str, torch.Tensor]:
        """Pad ``examples`` (window rows, or a mapping of columns such as a dataset slice ``ds[:8]``,
        or the rows of a dataset in the ``"arrow"`` or ``"pandas"`` format: :meth:`rows`) into the
        batch tensors listed in the class docstring.

        Raises:
            ValueError: no example, columns of different lengths, or an example whose ``dt_ids`` (``past_dt_ids``) is not as long
                as its ``input_ids`` (``past_input_ids``), naming the example and both lengths (a
                short ``dt_ids`` was padded with bin 0 at real tokens when another row was longer);
                with ``vocab_size``, an example holding a token id outside ``[0, vocab_size)``
                (windows tokenized with another tokenizer: another model's or prepared directory's,
                read back with ``datasets.load_from_disk`` / ``load_prepared``), naming the example,
                the column, the id and the tokenizer's length; with ``model_vocab_size``, an example
                holding a unit id the model has no embedding for (a unit added with ``tokenizer.add_units``
                after the model was made), naming the example, the column, the id and the model's vocab_size.
        """
        examples = self.rows(examples)
        if not len(examples):
            raise ValueError("examples: expected at least one window row, got none")
        for i, e in enumerate(examples):
            for ids_key, dt_key in (("input_ids", "dt_ids"), ("past_input_ids", "past_dt_ids")):
                if len(e[ids_key]) != len(e[dt_key]):
                    raise ValueError(f"examples[{i}]: expected one {dt_key} entry per {ids_key} entry, got "
                                     f"{len(e[dt_key])} {dt_key} for {len(e[ids_key])} {ids_key}")
        ids = self._pad([e["input_ids"] for e in examples], self.pad)
        dts = self._pad([e["dt_ids"] for e in examples], 0)
        am = self._mask([e["input_ids"] for e in examples])
        labels = ids.masked_fill(am == 0, -100)
        spike = (am == 1) & (ids != self.bos) & (ids != self.eos)
        dt_labels = dts.masked_fill(~spike, -100)
        pids = self._pad([e["past_input_ids"] for e in examples], self.pad)
        pdts = self._pad([e["past_dt_ids"] for e in examples], 0)
        pam = self._mask([e["past_input_ids"] for e in examples])
        if self.vocab_size is not None or self.model_vocab_size is not None:
            self._check_vocabulary({"input_ids": (ids, am), "past_input_ids": (pids, pam)})
        out = {
            "input_ids": ids,
            "dt_ids": dts,
            "attention_mask": am,
            "labels": labels,
            "dt_labels": dt_labels,
            "past_input_ids": pids,
            "past_dt_ids": pdts,
            "past_attention_mask": pam,
        }
        if self.modalities:
            out["modality_inputs"] = self._modality_inputs(examples)
        return out


__all__ = [
    "keeps_training_mode",
    "check_windows_in_support",
    "check_pasts_recorded",
    "resolve_past_clip_starts",
    "warn_splits_without_spikes",
    "recorded_stretches",
    "check_preparable_config",
    "SplitPlan",
    "plan_splits",
    "check_split_in_recording",
    "check_is_split_plan",
    "window_starts_for_split",
    "tiling_windows",
    "split_windows",
    "windows_apart",
    "window_starts_array",
    "window_segments",
    "tokenize_windows",
    "build_window_datasets",
    "spikes_outside_windows",
    "verify_prepared",
    "vocabulary_tokens",
    "check_window_vocabulary",
    "VocabularyMismatchError",
    "trial_at",
    "NeuroformerCollator",
    "SPLITS",
    "window_reach",
    "recorded_stretches",
    "windows_outside_support",
    "check_splits_apart",
    "warn_splits_closer_than_gap",
    "check_windows_apart",
    "spikes_digest",
    "split_spikes_digest",
    "compare_split_spikes",
    "window_features",
    "WINDOW_CARD_TAG",
    "prepare_output_spec",
    "prepare_windows",
    "PREPARED_JSON_FILES",
    "check_prepared_files",
    "check_streamable_folder",
    "load_prepared",
]
