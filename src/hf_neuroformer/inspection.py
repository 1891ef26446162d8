"""What a recording holds, before a model is trained on it (``neuroformer inspect``).

:func:`describe_recording` summarises a :class:`~hf_neuroformer.recording.SpikeRecording`:
units and firing rates, epochs (for ``--epoch``), trials and their columns (``--target
trial:<column>``), behaviour series (``--target <name>``), stimulus and events, and, for a
:class:`~hf_neuroformer.configuration_neuroformer.NeuroformerConfig`, the splits and windows
training would make and how many of their spikes the token budget (``max_window_length``,
``max_past_length``) would cut. :func:`format_description` prints it; :func:`plot_recording`
draws a raster, the firing rates and the spikes per window against the budget.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from .binning import on_time_grid, past_starts, window_ends
from .configuration_neuroformer import NeuroformerConfig
from .recording import (UNIT_NOT_RECORDED, SpikeRecording, _intersect_intervals, _merge_intervals, count_noun,
                        end_marker_frame, frames_on_screen, median_frame_interval, unit_or_not_recorded)

# distinct values of a trial column listed in the summary
MAX_LISTED_VALUES = 8
# presence ratio: equal bins over the support (as the Allen ecephys quality metrics), and the ratio below which a
# unit is named (the threshold commonly used for "complete" units)
PRESENCE_BINS = 100
PRESENCE_THRESHOLD = 0.9
# presence bins shorter than this (s) get a note: they measure a unit's rate more than its drift
SHORT_PRESENCE_BIN_S = 10.0
# units named in a text line (the JSON lists them all)
MAX_NAMED_UNITS = 5


def _stats(x: np.ndarray) -> Dict[str, float]:
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return {"mean": float("nan"), "median": float("nan"), "p99": float("nan"), "min": float("nan"),
                "max": float("nan")}
    return {"mean": float(x.mean()), "median": float(np.median(x)), "p99": float(np.percentile(x, 99)),
            "min": float(x.min()), "max": float(x.max())}


def _spikes_in(rec: SpikeRecording, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """``(n,)`` int64 number of spikes (all units) in each ``[start, stop)``."""
    lo = np.searchsorted(rec.spike_times, starts, side="left")
    hi = np.searchsorted(rec.spike_times, stops, side="left")
    return np.maximum(hi - lo, 0).astype(np.int64)


def presence_ratio(rec: SpikeRecording, n_bins: int = PRESENCE_BINS) -> np.ndarray:
    """``(n_units,)`` float64 presence ratio of each unit: the fraction of ``n_bins`` equal time
    bins over the recording's support in which the unit fires at least one spike (in [0, 1]; 0 for
    a unit without spikes; NaN for every unit when the support is empty).

    The spike-sorting quality metric of the Allen Brain Observatory Visual Coding - Neuropixels
    quality metrics (``presence_ratio`` in AllenInstitute/ecephys_spike_sorting, 100 equal blocks
    of the recording) and SpikeInterface's ``compute_presence_ratios``
    (spikeinterface.qualitymetrics, "the proportion of discrete time bins in which at least one
    spike occurred"; complete units are expected at 0.9 or more). SpikeInterface bins by duration
    (60 s) instead; 100 equal bins keep the ratio comparable across recordings of any length.
    A support of several intervals (``time_support``, e.g. after ``--epoch``) is binned along its
    summed length, the gaps between its intervals left out, so a bin may hold parts of two intervals.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins: expected a positive number of bins, got {n_bins}")
    sup = np.asarray(rec.support, dtype=np.float64).reshape(-1, 2)
    total = float(np.sum(sup[:, 1] - sup[:, 0]))
    if total <= 0:
        return np.full(rec.n_units, np.nan)
    t = np.asarray(rec.spike_times, dtype=np.float64)
    # each spike's time along the support, its gaps removed (every spike lies inside the support)
    row = np.clip(np.searchsorted(sup[:, 0], t, side="right") - 1, 0, len(sup) - 1)
    before = np.concatenate([[0.0], np.cumsum(sup[:, 1] - sup[:, 0])[:-1]])
    along = before[row] + (t - sup[row, 0])
    b = np.clip(np.floor(along / total * n_bins).astype(np.int64), 0, n_bins - 1)
    hit = np.zeros((rec.n_units, n_bins), dtype=bool)
    hit[np.asarray(rec.unit_ids, dtype=np.int64), b] = True
    return hit.sum(axis=1) / n_bins


def longest_silence(rec: SpikeRecording) -> dict:
    """The longest stretch inside the support without any spike (all units): ``{"duration_s",
    "start_s"}`` (s; the earliest such stretch on a tie). A stretch runs between two spikes, or
    from an interval's start to its first spike, or from its last spike to the interval's end; it
    never spans the gap between two intervals of the support (intervals that touch are one
    stretch). ``{"duration_s": 0.0, "start_s":
    None}`` for an empty support."""
    from .windows import recorded_stretches

    best = (0.0, None)
    t = np.asarray(rec.spike_times, dtype=np.float64)
    # intervals that touch are one stretch of recorded time (a generated recording's support is its tiled windows)
    for a, b in recorded_stretches(rec.support):
        inside = t[np.searchsorted(t, a, side="left"):np.searchsorted(t, b, side="left")]
        edges = np.concatenate([[a], inside, [b]])
        gaps = np.diff(edges)
        k = int(np.argmax(gaps))
        if gaps[k] > best[0]:
            best = (float(gaps[k]), float(edges[k]))
    return {"duration_s": best[0], "start_s": best[1]}


def _units_in(rec: SpikeRecording, segments: np.ndarray) -> np.ndarray:
    """``(n_units,)`` int64 spikes of each unit inside the union of ``(n, 2)`` ``[start, stop)``
    segments (which may overlap: a spike in two counts once)."""
    seg = np.asarray(segments, dtype=np.float64).reshape(-1, 2)
    t = rec.spike_times
    # segments holding each spike: those started at or before it less those stopped at or before it
    n_in = np.searchsorted(np.sort(seg[:, 0]), t, side="right") - np.searchsorted(np.sort(seg[:, 1]), t, side="right")
    return np.bincount(np.asarray(rec.unit_ids)[n_in > 0], minlength=rec.n_units).astype(np.int64)


def _epoch(rec: SpikeRecording, name: str) -> dict:
    """``n_intervals``, ``duration_s`` (the summed length of the union of the epoch's intervals
    within the recording's support, not their span: 594 ripples over 599 s last 37.6 s) and
    ``n_spikes`` (in that union; a spike in two overlapping rows counts once) of epoch ``name``."""
    rows = rec.epoch_intervals.get(name, [rec.epochs[name]])
    # the union of the rows, within the recording's support (after --epoch ripples, the epoch "sleep" holds
    # the ripples only), as select_epoch takes them
    merged = _intersect_intervals(_merge_intervals(rows), rec.support)
    return {"n_intervals": int(len(rows)), "duration_s": float(np.sum(merged[:, 1] - merged[:, 0])),
            "n_spikes": int(_spikes_in(rec, merged[:, 0], merged[:, 1]).sum())}


def _trial_columns(rec: SpikeRecording) -> List[dict]:
    out = []
    for name, col in rec.trial_info.items():
        col = np.asarray(col)
        numeric = col.dtype.kind in "biuf"
        if numeric:
            # decoding drops the windows of a trial whose value is not finite (NaN, inf)
            is_missing = ~np.isfinite(col.astype(np.float64))
            missing, present = int(is_missing.sum()), col[~is_missing]
        else:
            text = col.astype(str)
            is_missing = np.isin(text, ["", "nan", "None"])
            missing, present = int(is_missing.sum()), text[~is_missing]
        values = np.unique(present)  # sorted
        out.append({
            "name": name,
            "kind": "numeric" if numeric else "text",
            "n_values": int(values.size),
            # the values of a label column; for a column of many numbers (times, reaction times) its range
            "values": values.tolist() if values.size <= MAX_LISTED_VALUES or not numeric
            else [values[0].item(), values[-1].item()],
            "n_missing": missing,
            # decoding reads numeric trial columns only (hf_neuroformer.decoding), and of them the finite values
            "target": f"trial:{name}" if numeric and values.size else None,
        })
    return out


def _behaviour(rec: SpikeRecording) -> List[dict]:
    out = []
    for name, series in rec.behaviour.items():
        ts = np.asarray(series.timestamps, dtype=np.float64)
        vals = np.asarray(series.values, dtype=np.float64)
        vals2 = vals.reshape(len(ts), vals.shape[1] if vals.ndim == 2 else 1)  # (n_samples, n_dims); n may be 0
        bad = ~np.isfinite(vals2).all(axis=1)
        dt = np.diff(ts)
        td = rec.time_domain
        # samples on another clock (Unix time beside spikes from 0) were listed as a target that then
        # left no training window: every window's value is read from samples inside the recorded time
        n_inside = int(np.sum((ts >= td[0]) & (ts < td[1]))) if td is not None else int(ts.size)
        out.append({
            "name": name,
            "unit": series.unit,
            "n_samples": int(ts.size),
            "n_dims": int(vals2.shape[1]),
            "start_s": float(ts[0]) if ts.size else float("nan"),
            "stop_s": float(ts[-1]) if ts.size else float("nan"),
            "sample_rate_hz": float(1.0 / np.median(dt)) if dt.size else float("nan"),
            "n_missing": int(bad.sum()),
            "n_inside_recording": n_inside,
            "min": float(np.nanmin(vals2)) if (~bad).any() else float("nan"),
            "max": float(np.nanmax(vals2)) if (~bad).any() else float("nan"),
            # no finite sample: decoding would drop every window
            "target": None if bad.all() or not n_inside else name if vals2.shape[1] == 1
            else f"{name} (columns {name}[0] .. {name}[{vals2.shape[1] - 1}])",
        })
    return out


def split_window_counts(rec: SpikeRecording, config: NeuroformerConfig):
    """``(plan, counts)``: the split plan training would make
    (:func:`~hf_neuroformer.windows.plan_splits`) and, per split, two ``(n_windows,)`` int64
    arrays: the spikes in each current window and in its past window (clipped at the trial's
    start in trial mode), for the windows training reads (train: every ``config.stride``;
    validation / test: tiled).

    Raises:
        ValueError: as training would: the recording has no spike
            (:class:`~hf_neuroformer.recording.RecordingValidationError`, e.g. an ``--epoch`` without
            spikes), no split plan fits the recording, a modality of ``config.modalities`` has no
            source in the recording or no value in the training split
            (:func:`~hf_neuroformer.modalities.fit_modalities`, run on a copy of ``config``), or a
            split holds no window.
    """
    plan, windows = _split_windows_and_counts(rec, config, stacklevel=3)  # the overlap warning: at our caller
    return plan, {split: (n, p) for split, (_, n, p, _) in windows.items()}


def _split_windows_and_counts(rec: SpikeRecording, config: NeuroformerConfig, *, stacklevel: int):
    """:func:`split_window_counts` with each split's window starts and past clips (None in time
    mode) too: ``(plan, {split: (starts, n, p, clips)})``; raises as it does. ``stacklevel``: where
    the warnings of the split plan, the modality fit and the overlap of
    :func:`~hf_neuroformer.windows.tiling_windows` point, as for ``warnings.warn`` called here."""
    import copy

    from .modalities import fit_modalities
    from .recording import check_not_empty
    from .windows import SPLITS, _split_windows, plan_splits

    check_not_empty(rec)  # build_window_datasets refuses an empty recording first
    plan = plan_splits(rec, config, stacklevel=stacklevel + 1)
    if config.modalities:  # training fits them here, and refuses a source the recording lacks
        fit_modalities(rec, copy.deepcopy(config), plan, overwrite=True, stacklevel=stacklevel + 1)
    out = {}
    for split in SPLITS:
        starts, clips = _split_windows(plan, split, config, stacklevel=stacklevel + 1)
        # the tokenizer's window edges (encode_window): start and end on the 1 ns grid, so a spike on
        # the edge of two tiled windows is counted in the later one only, as training counts it
        starts = on_time_grid(np.asarray(starts, dtype=np.float64))
        n = _spikes_in(rec, starts, window_ends(starts, config.current_window))
        past_from = past_starts(starts, config.past_window)  # the tokenizer's past start
        if clips is not None:
            past_from = np.maximum(past_from, on_time_grid(clips))  # trial mode: the past stops at the trial's start
        out[split] = (starts, n, _spikes_in(rec, past_from, starts), clips)
    return plan, out


def _windows(rec: SpikeRecording, config: NeuroformerConfig) -> dict:
    """The splits and windows training would make (:func:`~hf_neuroformer.windows.plan_splits`),
    and the spikes per window against the token budget; ``{"error": message}`` when training
    would refuse the recording."""
    cap, pcap = config.max_window_length - 2, config.max_past_length - 1  # BOS + EOS; the past's BOS
    out = {"current_window_s": config.current_window, "past_window_s": config.past_window,
           "stride_s": config.stride, "max_window_length": config.max_window_length,
           "max_past_length": config.max_past_length, "max_spikes_per_window": cap,
           "max_spikes_per_past_window": pcap}
    try:
        plan, windows = _split_windows_and_counts(rec, config, stacklevel=4)  # describe_recording's caller
    except ValueError as err:
        out["error"] = str(err)
        return out
    from .windows import _union_length, spikes_outside_windows

    # what no current window covers, as training counts it (metrics.json's n_spikes_outside_windows_by_split)
    outside = spikes_outside_windows(rec, plan, config, {split: v[0] for split, v in windows.items()})
    from .modalities import windows_without_values_at

    splits = {}
    names = np.asarray(rec.unit_names, dtype=object)
    for split, (starts, n, p, clips) in windows.items():
        # the units the split's current windows hold: a spike only in a past window is context, never a target
        per_unit = _units_in(rec, np.stack([starts, window_ends(starts, config.current_window)], axis=1))
        splits[split] = {
            "n_windows": int(n.size),
            # the union of its segments: overlapping trials (Zheng 2022 has 6 pairs) were counted twice
            "duration_s": _union_length(np.asarray(plan.segments[split], dtype=np.float64).reshape(-1, 2)),
            "spikes_per_window": _stats(n),
            "n_windows_truncated": int(np.sum(n > cap)),
            "n_spikes_truncated": int(np.sum(np.maximum(n - cap, 0))),
            "n_spikes": int(n.sum()),
            "n_spikes_outside_windows": outside[split]["n_spikes_outside_windows"],
            "seconds_outside_windows": outside[split]["seconds_outside_windows"],
            "spikes_per_past_window": _stats(p),
            "n_past_windows_truncated": int(np.sum(p > pcap)),
            # units with no spike in the split's current windows (a token this split never asks for)
            "units_without_spikes": [str(u) for u in names[per_unit == 0]],
        }
        if config.modalities:  # windows that read only a modality's null token, as train counts them
            # its warnings (a circular series in degrees labelled 'rad') at describe_recording's caller, as the fit's
            splits[split]["n_windows_without_modality"] = windows_without_values_at(rec, config, starts, clips,
                                                                                    stacklevel=4)
    out["split_mode"] = plan.mode
    out["split_fractions"] = [float(f) for f in config.split_fractions]
    out["splits"] = splits
    # spikes in no split at all (between trials, in the gaps between splits, in support intervals too short
    # for a window): never trained on or scored, and not in any split's count above
    segments = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1, 2) for v in plan.segments.values()])
    out["n_spikes_outside_splits"] = int(rec.n_spikes - _units_in(rec, segments).sum())
    # events of an "events:" modality that no window of any split reads, as train counts them (metrics.json)
    from .modalities import events_in_no_window

    unread = events_in_no_window(rec, config, [(v[0], v[3]) for v in windows.values()])
    if unread:
        out["n_events_in_no_window"] = unread
    train = splits["train"]
    # a budget that holds 99 % of the training windows (and their pasts) whole
    # at least 3, the least NeuroformerConfig takes (BOS, one spike, EOS), for windows that are mostly empty
    out["suggested_max_window_length"] = max(3, int(np.ceil(train["spikes_per_window"]["p99"])) + 2) \
        if train["n_windows"] else None
    out["suggested_max_past_length"] = int(np.ceil(train["spikes_per_past_window"]["p99"])) + 1 \
        if train["n_windows"] else None
    return out


def _areas(rec: SpikeRecording, counts: np.ndarray) -> List[dict]:
    """Per brain area of ``rec.unit_areas``, in the order of first appearance: ``area`` (``""`` for
    units without one), ``n_units`` and ``n_spikes`` (``counts``: spikes per unit)."""
    out: Dict[str, dict] = {}
    for area, n in zip(rec.unit_areas, counts.tolist()):
        entry = out.setdefault(area, {"area": area, "n_units": 0, "n_spikes": 0})
        entry["n_units"] += 1
        entry["n_spikes"] += int(n)
    return list(out.values())


def describe_recording(recording: SpikeRecording, config: Optional[NeuroformerConfig] = None) -> dict:
    """Summary of what ``recording`` holds, as a JSON-ready dict.

    Args:
        recording: the recording (e.g. from :func:`hf_neuroformer.io.load_recording`).
        config: the model settings the windows are judged by; default ``NeuroformerConfig()``.

    Returns:
        dict with ``session``, ``n_units``, ``n_silent_units`` (no spike), ``n_spikes``,
        ``time_domain_s``, ``duration_s`` (summed length of ``recording.support``),
        ``firing_rate_hz`` (``median`` / ``min`` / ``max`` over units, ``population``: all
        spikes over the duration; Hz) and ``unit_firing_rate_hz`` (name -> Hz); ``epochs``
        (name, start / stop s, ``n_intervals``, ``duration_s``: the summed length of its
        intervals within the recording's support, not their span, ``n_spikes``); ``trials`` (``None``
        or ``n_trials``, ``duration_s`` statistics, ``columns``: kind, distinct values,
        missing count (NaN, inf, blank), the ``--target`` that decodes it: ``None`` for text or
        a column without a finite value); ``behaviour`` (unit, samples, dimensions, span s,
        median sample rate Hz, samples with NaN, ``n_inside_recording``: samples inside the
        time domain, range, ``--target``: ``None`` without a finite sample or without a sample
        inside the time domain);
        ``stimulus`` (counts; ``n_frames`` and the onsets' span ``frames_start_s`` /
        ``frames_stop_s`` of the frames on screen in the time domain, ``n_frames_outside`` and
        ``frames_outside_stop_s`` of the other stored frames: the onset after the end that
        :meth:`~hf_neuroformer.SpikeRecording.restrict` keeps as the last frame's end (counted there,
        ``frames_outside_end_marker``: True), or frames on another clock) and
        ``events`` (counts); ``windows``: the config's windows and token
        budget, and per split (``train`` / ``validation`` / ``test``, as
        :func:`~hf_neuroformer.windows.plan_splits` cuts them) the number of windows, spikes
        per current and past window (mean, median, 99th percentile, min, max) and how many
        windows and spikes the budget would truncate (``max_window_length - 2`` spikes per
        window, ``max_past_length - 1`` per past window), plus ``suggested_max_window_length``
        / ``suggested_max_past_length`` that hold 99 % of the training windows whole; or
        ``windows["error"]``, the message with which training would refuse the recording.
        Training windows step by ``config.stride`` (they may overlap, so their spikes may be
        counted more than once); validation and test windows tile their split. Each split also
        lists ``units_without_spikes``: the names of the units without a spike in any of its
        current windows (a spike in a past window only is context, never predicted), e.g. a unit
        that drifted out of the recording before the training split ends is a token the model
        never learns. Each split gives ``n_spikes_outside_windows`` / ``seconds_outside_windows``:
        the spikes (and s) of its segments that no current window covers (each time block's first
        past window, a trial's end shorter than a window), as ``train`` writes them to
        ``metrics.json`` (:func:`~hf_neuroformer.windows.spikes_outside_windows`); and
        ``windows["n_spikes_outside_splits"]`` counts the spikes in no split at all (between
        trials, in the gaps between splits, in support intervals too short for a window), which
        no model trains on or scores. With ``config.modalities``, each split gives
        ``n_windows_without_modality`` (modality name -> its windows with no value in their modality
        window, which read only the learned null token, as ``train`` counts them:
        :func:`~hf_neuroformer.modalities.windows_without_values_at`; a split where that is every
        window is warned of by ``train``, and refused for the training split). With an ``"events:"`` modality in ``config.modalities``,
        ``windows["n_events_in_no_window"]`` (modality name -> events no window of any split reads,
        :func:`~hf_neuroformer.modalities.events_in_no_window`), as ``train`` writes it to ``metrics.json``.

        Brain areas (read from the file: an NWB units table's ``location`` / electrode group,
        ``.npz`` ``unit_areas``; no model reads them): ``unit_area`` (name -> area, ``""`` where
        unknown) and ``areas`` (per area, in order of first appearance: ``area``, ``n_units``,
        ``n_spikes``; one entry ``""`` when no unit has an area).
        Unit presence: ``unit_presence_ratio`` (name -> fraction in [0, 1] of
        ``PRESENCE_BINS`` = 100 equal bins over the support with a spike, see
        :func:`presence_ratio`; NaN for an empty support) and ``presence_ratio``: ``n_bins``,
        ``bin_s`` (s), ``threshold`` (0.9), ``median`` over units and ``units_below`` (names of
        the units below the threshold, lowest ratio first). ``longest_silence``: the longest
        stretch of the support without any spike, ``duration_s`` and ``start_s`` (s; see
        :func:`longest_silence`). ``session_info``: :attr:`SpikeRecording.session_info` (name ->
        one value for the session, e.g. Steinmetz ``accuracy``).
    """
    rec = recording
    config = NeuroformerConfig() if config is None else config
    duration = rec.duration
    rates = rec.firing_rates() if duration > 0 else np.full(rec.n_units, np.nan)
    presence = presence_ratio(rec)
    low = np.flatnonzero(presence < PRESENCE_THRESHOLD)
    low = low[np.argsort(presence[low], kind="stable")]
    counts = np.bincount(rec.unit_ids, minlength=rec.n_units)
    trials = None
    if rec.trials is not None and len(rec.trials):
        trials = {"n_trials": int(len(rec.trials)), "duration_s": _stats(np.diff(rec.trials, axis=1).ravel()),
                  "columns": _trial_columns(rec)}
    stim = None
    if rec.stimulus is not None:
        s = rec.stimulus
        ft = np.asarray(s.frame_times if s.frames is not None else [], dtype=np.float64)
        # the frames on screen in the recorded time: a restricted recording keeps the onset after its end as the
        # last frame's end, which was counted and given as the onsets' end (4 frames, onsets 0.000-1.000 s, of a
        # recording that ends at 0.8 s); frames wholly outside (another clock) are counted apart
        shown = np.ones(ft.shape, dtype=bool)
        outside = np.zeros(ft.shape, dtype=bool)
        marker = None  # the frame kept after the end for the last one's end (not shown)
        if rec.time_domain is not None and len(ft):
            td = np.array([rec.time_domain], dtype=np.float64)
            shown = frames_on_screen(ft, td, end_marker=False)
            outside = ~shown
            marker = end_marker_frame(ft, td, shown)
        on = ft[shown]
        interval = median_frame_interval(ft)
        # a video modality's config needs frame_shape, and its num_frames the frame rate: only the count was given
        stim = {"n_intervals": 0 if s.intervals is None else int(len(s.intervals)),
                "n_names": 0 if s.names is None else len(s.names),
                "n_frames": int(len(on)),
                "frame_shape": None if s.frames is None else [int(v) for v in np.shape(s.frames)[1:]],
                "frame_rate_hz": 1.0 / interval if interval else float("nan"),
                "frames_start_s": float(on[0]) if len(on) else float("nan"),
                "frames_stop_s": float(on[-1]) if len(on) else float("nan"),
                "n_frames_outside": int(outside.sum()),
                "frames_outside_stop_s": float(ft[outside][-1]) if outside.any() else float("nan"),
                "frames_outside_end_marker": marker is not None}
    return {
        "session": rec.session,
        "n_units": rec.n_units,
        "n_silent_units": int(np.sum(counts == 0)),
        "n_spikes": rec.n_spikes,
        "time_domain_s": None if rec.time_domain is None else [float(v) for v in rec.time_domain],
        "duration_s": duration,
        "n_support_intervals": int(len(rec.support)),
        "firing_rate_hz": {**{k: v for k, v in _stats(rates).items() if k in ("median", "min", "max")},
                           "population": rec.n_spikes / duration if duration > 0 else float("nan")},
        "unit_firing_rate_hz": dict(zip(rec.unit_names, rates.tolist())),
        "unit_presence_ratio": dict(zip(rec.unit_names, presence.tolist())),
        "unit_area": dict(zip(rec.unit_names, rec.unit_areas)),
        "areas": _areas(rec, counts),
        "presence_ratio": {"n_bins": PRESENCE_BINS, "bin_s": duration / PRESENCE_BINS, "threshold": PRESENCE_THRESHOLD,
                           "median": float(np.median(presence)) if presence.size else float("nan"),
                           "units_below": [rec.unit_names[i] for i in low]},
        "longest_silence": longest_silence(rec),
        "session_info": dict(rec.session_info),
        "epochs": [{"name": name, "start_s": float(a), "stop_s": float(b), **_epoch(rec, name)}
                   for name, (a, b) in rec.epochs.items()],
        "trials": trials,
        "behaviour": _behaviour(rec),
        "stimulus": stim,
        "events": [{"name": name, "n_events": int(len(ev))} for name, ev in rec.events.items()],
        "windows": _windows(rec, config),
    }


def _named(names: List[str], value: Optional[Dict[str, float]] = None) -> str:
    """The first ``MAX_NAMED_UNITS`` of ``names`` (with ``value[name]`` when given), then ``...``."""
    shown = [f"{n} ({value[n]:.2f})" if value is not None else str(n) for n in names[:MAX_NAMED_UNITS]]
    return ", ".join(shown) + (", ..." if len(names) > MAX_NAMED_UNITS else "")


def _fmt_stats(s: Dict[str, float]) -> str:
    return f"mean {s['mean']:.1f}, median {s['median']:g}, 99th percentile {s['p99']:.0f}, max {s['max']:g}"


def _secs(x: float) -> str:
    """A duration in s for the text: one decimal from 1 s up, three significant digits below (a
    0.05-s recording read '0.1 s', and 0.04 s of a split '0.0 s')."""
    return f"{x:.1f}" if abs(x) >= 1 else f"{x:.3g}"


def format_description(desc: dict) -> str:
    """The text ``neuroformer inspect`` prints for a :func:`describe_recording` result."""
    lines = []
    td = desc["time_domain_s"]
    fr = desc["firing_rate_hz"]
    lines.append(f"session {desc['session']}: {count_noun(desc['n_units'], 'unit')} ({desc['n_silent_units']} without "
                 f"spikes), {count_noun(desc['n_spikes'], 'spike')}, {_secs(desc['duration_s'])} s"
                 + (f" ({td[0]:.3f}-{td[1]:.3f} s" + (f", {desc['n_support_intervals']} intervals)"
                                                     if desc["n_support_intervals"] > 1 else ")") if td else ""))
    lines.append(f"firing rate per unit: median {fr['median']:.2f} Hz (min {fr['min']:.2f}, max {fr['max']:.2f}); "
                 f"population {fr['population']:.1f} spikes/s")
    areas = desc.get("areas") or []
    if any(a["area"] for a in areas):  # the areas an NWB file's electrodes name were read, and said nowhere
        lines.append("areas (from the file; no model reads them): " + ", ".join(
            f"{a['area'] or '(none)'} {count_noun(a['n_units'], 'unit')} ({count_noun(a['n_spikes'], 'spike')})"
            for a in areas))
    if desc.get("session_info"):
        lines.append("session values (one for the whole session, from the file; no model reads them): "
                     + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                 for k, v in desc["session_info"].items()))
    pr = desc["presence_ratio"]
    if desc["n_units"] and np.isfinite(pr["median"]):
        below = pr["units_below"]
        lines.append(f"presence ratio (share of {count_noun(pr['n_bins'], 'bin')} of {pr['bin_s']:.3g} s with a spike): median "
                     f"{pr['median']:.2f}; " + (f"{len(below)} of {desc['n_units']} units below {pr['threshold']:g}: "
                                                + _named(below, desc["unit_presence_ratio"]) if below
                                                else f"no unit below {pr['threshold']:g}"))
        # (a recording of one spike time spans no time: bins of 0 s gave numpy's divide-by-zero warning and "inf Hz")
        if below and 0 < pr["bin_s"] < SHORT_PRESENCE_BIN_S:
            # drift shows over minutes (SpikeInterface bins by 60 s); bins of a short recording mostly measure the rate
            # a steady (Poisson) unit of rate r misses a bin with probability exp(-r * bin_s): it falls below the
            # threshold without drifting when r < -ln(1 - threshold) / bin_s (2.3 / bin_s at 0.9), not 1 / bin_s
            steady = -np.log(1.0 - pr["threshold"]) / pr["bin_s"]
            lines.append(f"  (bins of {pr['bin_s']:.3g} s, a short recording: a unit firing steadily below about "
                         f"{steady:.2g} Hz misses more than {1 - pr['threshold']:.0%} of them without having "
                         "drifted out)")
    silence, w = desc["longest_silence"], desc["windows"]
    span = w["past_window_s"] + w["current_window_s"]
    if silence["start_s"] is not None and silence["duration_s"] > span:
        lines.append(f"longest stretch without any spike: {silence['duration_s']:.3f} s from {silence['start_s']:.3f} s "
                     f"(a window with its past spans {span:g} s)")
    if desc["epochs"]:
        lines.append("epochs (--epoch NAME):")
        for e in desc["epochs"]:
            many = f" in {e['n_intervals']} intervals" if e["n_intervals"] > 1 else ""
            lines.append(f"  {e['name']}: {e['start_s']:.3f}-{e['stop_s']:.3f} s ({_secs(e['duration_s'])} s{many}), "
                         f"{count_noun(e['n_spikes'], 'spike')}")
    else:
        lines.append("epochs: none")
    tr = desc["trials"]
    if tr:
        d = tr["duration_s"]
        lines.append(f"trials: {tr['n_trials']}, {d['min']:.3f}-{d['max']:.3f} s long (median {d['median']:.3f} s)")
        for c in tr["columns"]:
            if c["kind"] == "numeric" and c["n_values"] > MAX_LISTED_VALUES:
                vals, more = f"{c['values'][0]:g} to {c['values'][1]:g}", ""
            else:
                shown = c["values"][:MAX_LISTED_VALUES]
                vals = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in shown) or "none"
                more = ", ..." if c["n_values"] > len(shown) else ""
            miss = f"; {c['n_missing']} missing" if c["n_missing"] else ""
            how = f"--target {c['target']}" if c["target"] else "no value: nothing to decode" \
                if not c["n_values"] else "text: map it to integer codes to decode it"
            lines.append(f"  {c['name']} ({c['kind']}, {count_noun(c['n_values'], 'value')}: {vals}{more}{miss}) [{how}]")
    else:
        lines.append("trials: none")
    if desc["behaviour"]:
        lines.append("behaviour:")
        for b in desc["behaviour"]:
            if not b["n_samples"]:
                lines.append(f"  {b['name']}: no samples here [not a target here]")
                continue
            # no unit in the file (A2929's x, y, z): said so, as the decoding figure does, not a bare range
            unit = unit_or_not_recorded(b["unit"])
            unit = f" ({unit})" if unit == UNIT_NOT_RECORDED else f" {unit}"
            dims = f", {b['n_dims']} columns" if b["n_dims"] > 1 else ""
            miss = f", {count_noun(b['n_missing'], 'sample')} with NaN" if b["n_missing"] else ""
            rng = f"range {b['min']:.4g} to {b['max']:.4g}{unit}" if np.isfinite(b["min"]) else "no finite value"
            how = f"--target {b['target']}" if b["target"] else "nothing to decode"
            if not b.get("n_inside_recording", 1) and desc["time_domain_s"] is not None:
                t0, t1 = desc["time_domain_s"]
                rng += (f"; none inside the recorded time ({t0:.3f}-{t1:.3f} s): another clock? (NWB times are "
                        "seconds from session_start_time)")
            if b["n_samples"] == 1:  # one sample has no sample rate: said so, not '~nan Hz'
                when = f"1 sample{dims}, at {b['start_s']:.3f} s"
            else:
                when = (f"{b['n_samples']} samples at ~{b['sample_rate_hz']:.3g} Hz{dims}, "
                        f"{b['start_s']:.3f}-{b['stop_s']:.3f} s")
            lines.append(f"  {b['name']}: {when}, {rng}{miss} [{how}]")
    else:
        lines.append("behaviour: none")
    if desc["stimulus"]:
        s = desc["stimulus"]
        frames = count_noun(s["n_frames"], "frame")
        if s.get("frame_shape"):
            rate = f" at ~{s['frame_rate_hz']:.3g} Hz" if np.isfinite(s["frame_rate_hz"]) else ""
            frames += f" of {s['frame_shape'][0]}x{s['frame_shape'][1]} px (frame_shape {s['frame_shape']}){rate}"
            if s["n_frames"]:
                frames += f", onsets {s['frames_start_s']:.3f}-{s['frames_stop_s']:.3f} s"
            if s.get("n_frames_outside"):  # a span beyond the recorded time shows another clock
                frames += (f", and {count_noun(s['n_frames_outside'], 'stored frame')} not on screen in the recorded "
                           f"time (onsets up to {s['frames_outside_stop_s']:.3f} s"
                           + ("; the first onset after the end is where the last frame shown leaves the screen)"
                              if s.get("frames_outside_end_marker") else ")"))
        lines.append(f"stimulus: {count_noun(s['n_intervals'], 'interval')} of {count_noun(s['n_names'], 'kind')}, "
                     f"{frames}")
    if desc["events"]:
        lines.append("events: " + ", ".join(f"{e['name']} ({e['n_events']})" for e in desc["events"]))
    w = desc["windows"]
    mode = {"trials": "; split by whole trials", "time": "; split by time blocks"}.get(w.get("split_mode"), "")
    lines.append(f"windows: current {w['current_window_s']:g} s, past {w['past_window_s']:g} s, stride "
                 f"{w['stride_s']:g} s; budget {w['max_spikes_per_window']} spikes per window "
                 f"(max_window_length {w['max_window_length']}), {w['max_spikes_per_past_window']} per past window "
                 f"(max_past_length {w['max_past_length']}){mode}")
    if "error" in w:
        lines.append(f"  training would refuse this recording with these settings: {w['error']}")
        return "\n".join(lines)
    for split, s in w["splits"].items():
        if not s["n_windows"]:  # 'spikes per window mean nan, median nan, ...' for a split_fractions of 0
            fractions = f" (split_fractions {w['split_fractions']})" if w.get("split_fractions") else ""
            lines.append(f"  {split} ({_secs(s['duration_s'])} s): no window{fractions}")
            continue
        lines.append(f"  {split} ({_secs(s['duration_s'])} s, {count_noun(s['n_windows'], 'window')}): spikes per "
                     f"window {_fmt_stats(s['spikes_per_window'])}; {count_noun(s['n_windows_truncated'], 'window')} "
                     f"truncated ({s['n_spikes_truncated']} of {count_noun(s['n_spikes'], 'spike')})"
                     + (f"; {count_noun(s['n_spikes_outside_windows'], 'spike')} of the split in no current window "
                        f"({_secs(s['seconds_outside_windows'])} s)" if s.get("n_spikes_outside_windows") else ""))
        lines.append(f"      spikes per past window {_fmt_stats(s['spikes_per_past_window'])}; "
                     f"{count_noun(s['n_past_windows_truncated'], 'past window')} truncated")
        absent = s["units_without_spikes"]
        if absent:
            note = ""
            if split == "train":
                others = [u for u in absent if not all(u in w["splits"][o]["units_without_spikes"]
                                                       for o in w["splits"] if o != "train")]
                if others:
                    note = f" ({len(others)} of them with spikes in another split: tokens the model never learns)"
            lines.append(f"      {count_noun(len(absent), 'unit')} without a spike in {split}: {_named(absent)}{note}")
    for name in w["splits"]["train"].get("n_windows_without_modality", {}):
        counts = {split: (s["n_windows_without_modality"][name], s["n_windows"]) for split, s in w["splits"].items()}
        per = ", ".join(f"{split} {k} of {n}" + (" (all)" if n and k == n else "") for split, (k, n) in counts.items())
        k, n = counts["train"]
        note = ""
        if n and k == n:
            note = ": training refuses this (nothing of it could be learnt)"
        elif any(n and k == n for k, n in counts.values()):
            note = ": a split with no value of it reads only the modality's null token (train warns)"
        lines.append(f"  modality {name!r}: windows without a value in its modality window {per}{note}")
    if w.get("n_spikes_outside_splits"):
        n_out = w["n_spikes_outside_splits"]
        where = "between trials" if w.get("split_mode") == "trials" else "in the gaps between splits"
        lines.append(f"  {n_out} of the {count_noun(desc['n_spikes'], 'spike')} ({n_out / max(desc['n_spikes'], 1):.0%}) lie in no "
                     f"split ({where}, or in an interval of the recording too short for a window): never trained on "
                     "or scored")
    for name, k in w.get("n_events_in_no_window", {}).items():
        if k:
            lines.append(f"  modality {name!r}: {count_noun(k, 'event')} read by no window of any split (between "
                         "splits or trials, or in an interval too short for a window): never seen in training")
    if w.get("suggested_max_window_length") is not None:
        why = ""
        if w["suggested_max_past_length"] == 1:  # BOS only: say why, a budget of 1 reads like a mistake
            past = w["splits"]["train"]["spikes_per_past_window"]
            why = (" (no training past window holds a spike: trial mode clips each past at its trial's start)"
                   if w.get("split_mode") == "trials" and past["max"] == 0
                   else " (99 % of the training past windows hold no spike)")
        lines.append(f"  a budget holding 99 % of the training windows whole: max_window_length "
                     f"{w['suggested_max_window_length']}, max_past_length {w['suggested_max_past_length']}{why}")
    return "\n".join(lines)


__all__ = ["describe_recording", "format_description", "longest_silence", "presence_ratio",
           "split_window_counts"]
