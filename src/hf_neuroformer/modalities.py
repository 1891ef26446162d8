"""Modalities besides the spikes: read from a recording, fitted on the training split, cut into
the windows of the model.

``NeuroformerConfig.modalities`` names each modality's ``source`` in a
:class:`~hf_neuroformer.SpikeRecording`:

* ``"behaviour:<key>"``: the :class:`~hf_neuroformer.recording.BehaviourSeries` ``<key>`` (samples
  with timestamps; ``column`` picks one column of a 2-D series);
* ``"trial:<column>"``: ``trial_info[<column>]``, one value per trial, holding over the trial's
  ``[start, stop)`` interval;
* ``"stimulus:ids"``: ``stimulus.ids`` over ``stimulus.intervals``;
* ``"events:<key>"``: the point events ``events[<key>]`` (:class:`~hf_neuroformer.recording.EventSeries`),
  kind ``"categorical"``: samples at the event times whose values are the labels, or the stream's
  name for every event of an unlabelled stream (one class);
* ``"stimulus:frames"`` (``kind: video``): ``stimulus.frames`` ``(n_frames, height, width)`` shown
  from ``stimulus.frame_times`` on; each frame stays on screen until the next one's onset (the
  last one for the median frame interval). A window reads the latest ``num_frames`` frames
  on screen during ``[s + window[0], s + window[1])``: a frame whose onset is at or after
  ``s + window[1]`` is never read (GUIDE trap 4: the original reached one frame past the
  current window).

For every current window starting at ``s`` a modality gives tokens for the values in
``[s + window[0], s + window[1])``: a sample at time ``t`` (``behaviour``) or an interval that
overlaps that span, placed at ``max(interval start, s + window[0])``. Token times are stored in
seconds relative to ``s``. Nothing at or after ``s + window[1]`` is read, and
``NeuroformerConfig`` refuses ``window[1] > current_window`` unless ``allow_future`` is set, so
no value from after the predicted spikes enters unless asked for (GUIDE trap 4). In trial mode
the span also starts no earlier than the end of the trial before the window's trial
(``clip_starts``) and, when it reaches past the current window (``allow_future``), ends no later
than the end of the window's own trial: nothing of another trial (another split's, maybe) is
read, while the gap before the trial (e.g. the grey screen before a grating) is, as it is the
trial's own stimulus history (so is a frame still on screen after the previous trial ended: it
is what the gap shows). In time mode a window with such a future span is only made where the
span ends inside its block (:func:`hf_neuroformer.windows.window_reach`).

Normalisation statistics (``mean`` / ``std``; video: of the frames on screen inside the training
split) and categorical ``classes`` come from the TRAINING split only (:func:`fit_modalities`;
classes and continuous statistics: every value its windows read, in trial mode the gap before each
training trial included, never a value of another trial) and are written into the config, so a
saved model normalises new data the same way; so is a video modality's ``frame_interval`` (the
median interval between the recording's frame onsets), against which
:func:`check_recording_modalities` checks the frame rate of a recording given to the model.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .binning import bin_index, on_time_grid, window_ends
from .recording import (WINDOW_GRID, SpikeRecording, _merge_intervals, count_noun, frame_ends, frames_on_screen, in_intervals,
                        median_frame_interval)

__all__ = ["ModalityTrack", "modality_track", "fit_modalities", "modality_columns", "modality_features",
           "modality_column_names", "windows_without_values", "windows_without_values_at",
           "check_windows_read_modalities", "is_event_modality", "truncated_modality_tokens",
           "check_recording_modalities", "events_in_no_window"]


# s: half the 1 ns grid that window starts and span edges are rounded to (WINDOW_GRID); interval and
# frame edges closer than this to a span edge are that edge (float sums such as 0.2 + 0.1 miss it)
EDGE_TOLERANCE = 0.5 * WINDOW_GRID


@dataclass
class ModalityTrack:
    """The values of one modality on the recording's clock.

    Attributes:
        kind: ``"samples"`` (values at ``times``) or ``"intervals"`` (values over ``intervals``).
        times: ``(n,)`` float64 s (samples), else None.
        intervals: ``(n, 2)`` float64 ``[start, stop)`` s (intervals), else None.
        values: ``(n, d)`` float64 (continuous) or ``(n,)`` object/number labels (categorical).
    """

    kind: str
    times: Optional[np.ndarray]
    intervals: Optional[np.ndarray]
    values: np.ndarray
    frame_ends: Optional[np.ndarray] = None

    def frames_shown(self, lo: float, hi: float) -> np.ndarray:
        """Indices of the frames (kind ``"frames"``) on screen at some time in ``[lo, hi)``:
        onset ``< hi`` and end ``> lo``, in time order; edges closer than ``EDGE_TOLERANCE``
        count as equal (a frame that ends at ``0.30000000000000004`` s is off screen at 0.3 s)."""
        b = int(np.searchsorted(self.times, hi - EDGE_TOLERANCE, side="left"))
        a = max(0, int(np.searchsorted(self.times, lo + EDGE_TOLERANCE, side="right")) - 1)
        idx = np.arange(a, b)
        return idx[self.frame_ends[idx] > lo + EDGE_TOLERANCE]

    def in_span(self, lo: float, hi: float) -> np.ndarray:
        """Indices of the entries in ``[lo, hi)`` (samples) or overlapping it (intervals; edges
        closer than ``EDGE_TOLERANCE`` count as equal: a trial stored as ``[0.2,
        0.30000000000000004)`` s does not overlap ``[0.3, 0.33)``)."""
        if self.kind == "samples":
            a, b = np.searchsorted(self.times, [lo, hi], side="left")
            return np.arange(a, b)
        iv = self.intervals
        return np.flatnonzero((iv[:, 1] > lo + EDGE_TOLERANCE) & (iv[:, 0] < hi - EDGE_TOLERANCE))


#: what one value of a modality source is, by the source's prefix (for the messages that say what to drop)
_ENTRIES = {"trial": "trials", "events": "events", "stimulus": "intervals", "behaviour": "samples"}


def _where(i: int, mod: dict) -> str:
    return f"NeuroformerConfig.modalities[{i}] ({mod['name']!r})"


def _available(recording: SpikeRecording) -> str:
    stim = recording.stimulus is not None and recording.stimulus.ids is not None
    frames = recording.stimulus is not None and recording.stimulus.frames is not None
    return (f"the recording has behaviour {sorted(recording.behaviour)}, trial columns {sorted(recording.trial_info)}, "
            f"events {sorted(recording.events)}{', stimulus ids' if stim else ', no stimulus ids'}"
            f"{' and stimulus frames' if frames else ', no stimulus frames'}")


def _frames_track(recording: SpikeRecording, mod: dict, where: str) -> ModalityTrack:
    stim = recording.stimulus
    if stim is None or stim.frames is None or stim.frame_times is None:
        raise ValueError(f"{where}.source: 'stimulus:frames' is not in the recording; {_available(recording)}")
    # SpikeRecording.validate has checked the frames: (n, H, W), finite, one increasing onset each
    frames, ft = stim.frames, np.asarray(stim.frame_times, dtype=np.float64)
    h, w = mod["frame_shape"]
    if tuple(frames.shape[1:]) != (h, w):
        raise ValueError(f"{where}.frame_shape: expected frames of shape (n_frames, {h}, {w}) (grey levels), the "
                         f"recording's stimulus.frames has shape {tuple(frames.shape)}")
    return ModalityTrack("frames", ft, None, frames, frame_ends=frame_ends(ft))


def _is_circular(mod: dict) -> bool:
    return mod["kind"] == "continuous" and mod.get("normalization") == "circular"


def modality_track(recording: SpikeRecording, mod: dict, index: int = 0, *,
                   stacklevel: int = 2) -> ModalityTrack:
    """Read one modality's values from ``recording``.

    Args:
        recording: the recording.
        mod: one normalised entry of ``NeuroformerConfig.modalities``.
        index: its position (for messages).
        stacklevel: where its warning points, as ``warnings.warn`` takes it (keyword-only int;
            2, the default: the caller of this function).

    Returns:
        A :class:`ModalityTrack`; continuous values as ``(n, num_features)`` float64.

    Raises:
        ValueError: the source is not in the recording (the message lists what is), a
            ``"continuous"`` modality reads text, the column
            is out of range, the number of features differs from ``num_features``, or a
            ``"circular"`` modality reads a behaviour series whose ``unit`` is degrees or a trial
            column with a value beyond 2 pi (degrees;
            :func:`hf_neuroformer.metrics.decoding.radians_problem`).

    Warns:
        UserWarning: a ``"circular"`` modality's behaviour series with values beyond two turns
            that is not an unwrapped trace (a step beyond pi between samples: degrees labelled
            ``rad``? :func:`hf_neuroformer.metrics.decoding.warn_if_not_radians`).
    """
    where = _where(index, mod)
    prefix, key = mod["source"].split(":", 1)
    if mod["kind"] == "video":
        return _frames_track(recording, mod, where)
    if prefix == "behaviour":
        if key not in recording.behaviour:
            raise ValueError(f"{where}.source: {mod['source']!r} is not in the recording; {_available(recording)}")
        s = recording.behaviour[key]
        if _is_circular(mod):
            from .metrics.decoding import unit_is_degrees, warn_if_not_radians

            # cos/sin of degrees is a wrong embedding that trains without a word (decoding refuses
            # the same series as a circular target); unwrapped radians beyond 2 pi are fine angles
            # here, so values beyond two turns (degrees labelled 'rad'?) are warned of, not refused
            if unit_is_degrees(s.unit):
                raise ValueError(f"{where}.normalization: 'circular' embeds angles in radians as (cos, sin), but "
                                 f"behaviour[{key!r}] is in {s.unit!r}; convert it with np.deg2rad (and set its unit "
                                 "to 'rad')")
            warn_if_not_radians(s.values, f"{where}: behaviour[{key!r}]", s.unit,
                                stacklevel=stacklevel + 1)
        track = ModalityTrack("samples", s.timestamps, None, s.values)
    elif prefix == "events":
        if key not in recording.events:
            raise ValueError(f"{where}.source: {mod['source']!r} is not in the recording; {_available(recording)}")
        ev = recording.events[key]
        labels = ev.labels if ev.labels is not None else np.full(len(ev.times), key, dtype=object)
        track = ModalityTrack("samples", ev.times, None, np.asarray(labels))
    elif prefix == "trial":
        if recording.trials is None or key not in recording.trial_info:
            raise ValueError(f"{where}.source: {mod['source']!r} is not in the recording; {_available(recording)}")
        values = np.asarray(recording.trial_info[key])
        if _is_circular(mod) and values.dtype.kind in "biuf":
            from .metrics.decoding import radians_problem

            # a trial column has no unit: Allen's orientation_deg (0..315) trained as cos/sin of degrees
            # without a word; one value per trial is not an unwrapped trace, so the decoding rule applies
            if problem := radians_problem(values):
                raise ValueError(f"{where}.normalization: 'circular' embeds angles in radians as (cos, sin), but "
                                 f"trial_info[{key!r}]: {problem}")
        track = ModalityTrack("intervals", None, recording.trials, values)
    else:
        stim = recording.stimulus
        if stim is None or stim.ids is None or stim.intervals is None:
            raise ValueError(f"{where}.source: 'stimulus:ids' is not in the recording; {_available(recording)}")
        track = ModalityTrack("intervals", None, np.asarray(stim.intervals, dtype=np.float64), np.asarray(stim.ids))
    vals = track.values
    if mod["kind"] == "continuous":
        try:
            vals = np.asarray(vals, dtype=np.float64)
        except (TypeError, ValueError):  # numpy's bare "could not convert string to float: 'l'" named no modality
            bad = [v for v in np.asarray(vals, dtype=object).ravel() if not isinstance(v, (int, float, np.number))]
            what = "text" if any(isinstance(v, (str, bytes)) for v in bad[:1]) else "values that are not numbers"
            raise ValueError(f"{where}.kind: 'continuous' needs numbers, but {mod['source']!r} holds {what} (e.g. "
                             f"{bad[0] if bad else None!r}); use kind: categorical for labels") from None
        if vals.ndim == 1:
            vals = vals[:, None]
        if mod["column"] is not None:
            if mod["column"] >= vals.shape[1]:
                raise ValueError(f"{where}.column: {mod['column']} is out of range; the source has "
                                 f"{count_noun(vals.shape[1], 'column')}")
            vals = vals[:, [mod["column"]]]
        if vals.shape[1] != mod["num_features"]:
            raise ValueError(f"{where}.num_features: {mod['num_features']}, but the source has "
                             f"{count_noun(vals.shape[1], 'column')}; "
                             "set num_features or column")
    elif mod["column"] is not None:
        raise ValueError(f"{where}.column: a categorical source has one label per entry; leave column out")
    if track.kind == "intervals" and len(vals) != len(track.intervals):
        raise ValueError(f"{where}.source: {len(vals)} values for {len(track.intervals)} intervals")
    track.values = vals
    if track.kind == "intervals":  # sorted by start, so in_span keeps time order
        order = np.argsort(track.intervals[:, 0], kind="stable")
        track.intervals, track.values = track.intervals[order], track.values[order]
    return track


def check_recording_modalities(config, recording: SpikeRecording, flag: str = "--data", epoch: bool = True,
                               config_file: Optional[str] = None, epoch_name: Optional[str] = None,
                               stacklevel: int = 2) -> None:
    """Check that ``recording`` holds every modality a trained model (or a config to train) reads,
    as it reads it.

    Every command that runs a trained model on a recording (``generate``, ``evaluate --model``,
    ``finetune``, ``decode``, ``embed``, ``attention-map``, ``connectivity``) calls this before
    building a window, so that a recording without the model's behaviour series, or with frames of
    another size than the model's video modality, is refused naming the flag the recording came
    from and what to pass (the config-level message of :func:`modality_track` named neither).
    ``train`` and ``ablate`` call it with ``config_file`` (their ``--config``) right after the
    recording is read: then a modality without any finite value or label in the recording (a
    series of the file outside ``--epoch``: A2929's ``ry`` in ``sleep``; no frame on screen in it)
    is refused too, since nothing could be trained on it. :class:`~hf_neuroformer.NeuroformerProcessor`
    runs it too (``flag="recording"``), once per call.

    Args:
        config: the model's :class:`~hf_neuroformer.NeuroformerConfig` (or the config to train).
        recording: the recording the command reads.
        flag: the command's flag (or argument name) that gave ``recording``.
        epoch: whether to advise ``--epoch`` too (commands without that flag pass False).
        config_file: the ``--config`` file of a command that trains; None for a trained model.
        epoch_name: the ``--epoch`` selected (named where a modality has no value), or None.
        stacklevel: of the warnings, as ``warnings.warn`` takes it (2: the caller of this function).

    Raises:
        ValueError: opening with ``flag``; names the modality, its source and the reason
            (:func:`modality_track`'s message, or no finite value / label).

    Warns:
        UserWarning: for a trained model, most samples, intervals or frames of a modality outside
            the recording's time domain (times in ms? :func:`_warn_if_off_the_clock`, which
            :func:`fit_modalities` runs when training); frames on another pixel scale than its video
            modality's training statistics (``"zscore"``, and ``"none"`` where the config records
            them; :func:`_warn_if_pixels_rescaled`: uint8 0-255 frames for a model trained on floats
            in [0, 1], or the reverse; the pixels of at most
            256 evenly spaced frames are compared, so the check stays cheap); frames whose median
            interval differs by more than 10 % from the training frames' (``frame_interval``, when
            the config records it): 30 Hz video for a model trained on 60 Hz.
    """
    for i, mod in enumerate(config.modalities or []):
        if config_file is None:
            whose, needs = f"the model's modality {mod['name']!r}", "the model"
            remedy = f"pass the recording {'(and --epoch) ' if epoch else ''}the model was trained on"
        else:
            whose, needs = f"the modality {mod['name']!r} of --config {str(config_file)!r}", "the config"
            remedy = (f"pass with --data{' (and --epoch)' if epoch else ''} a recording that holds it, or remove the "
                      "modality from the config")
        try:  # its warning (a circular series in degrees) at our caller's line, as ours: it named this line
            track = modality_track(recording, mod, i, stacklevel=stacklevel + 1)
        except ValueError as err:
            raise ValueError(f"{flag}: {whose} reads {mod['source']!r}, which this recording does not hold as "
                             f"{needs} needs it ({err}); {remedy}") from None
        if config_file is None:
            # a recording in ms given to a trained model: nearly every window read no value, without a word
            _warn_if_off_the_clock(track, recording, mod, i, stacklevel=stacklevel + 1, where=f"{flag}: {whose}")
            if track.kind == "frames":
                _warn_if_pixels_rescaled(track, mod, flag, whose, stacklevel=stacklevel + 1)
                _warn_if_frame_rate_differs(track, mod, flag, whose, stacklevel=stacklevel + 1)
            continue
        # a series of the file with no sample in the selected epoch (A2929's 'ry' in --epoch sleep)
        # passed and failed later as "NeuroformerConfig.modalities[0] (...): no finite value of ..."
        # (or A2929's 'sleep_ripples' events in --epoch wake: "no label of ..."; a movie shown before
        # the epoch: "no frame of 'stimulus:frames' inside the training split (it has no values, ...)")
        vals = track.values
        if track.kind == "frames":
            none, what = len(vals) == 0, "no frame"
        elif mod["kind"] == "continuous":
            none, what = not np.isfinite(np.asarray(vals, dtype=np.float64)).any(), "no finite value"
        else:
            none, what = len(vals) == 0, "no label"
        if none:
            where = f" in --epoch {epoch_name!r}" if epoch_name else ""
            raise ValueError(f"{flag}: {whose} reads {mod['source']!r}, which has {what}{where} ({len(vals)} "
                             f"{track.kind}); pass a recording{' or an epoch' if epoch else ''} where it was recorded "
                             "('neuroformer inspect --data ... --epoch NAME' shows what an epoch holds), or remove "
                             "the modality from the config")


def _in_segments(t: np.ndarray, segments: np.ndarray, future: bool = False) -> np.ndarray:
    """``t`` inside one of the ``[start, stop)`` segments (s), as the windows in them read samples:
    ``t`` must be at or after the start on the 1 ns grid that a window's span starts on (a sample
    at 0.6 s is inside the trial [0.6000000000000001, 0.7000000000000001) s, one at
    0.5999999999999999 s is not: :func:`_read_spans` rounds a span's start to the grid) and before
    the stop on the grid that a window's span ends on (with ``future``, a modality window that
    reaches past the current window, before the later of that and the stop itself). A sample one
    float step before a trial's end (``0.7 - 0.4`` is 0.29999999999999993 s) is read by the
    trial's last window, but was taken as outside: left out of the statistics, its label out of
    the classes (then refused as "no label inside the training split" or "not one of the training
    classes"); one a float step before a trial's start of 0.3 s (0.29999999999999993 s again) is
    read by no window of the trial, but was taken as inside: its label a class, its value in the
    statistics, that no training window reads."""
    if len(segments) == 0:
        return np.zeros(t.shape, dtype=bool)
    seg = segments[np.argsort(segments[:, 0])]
    k = np.searchsorted(on_time_grid(seg[:, 0]), t, side="right") - 1
    stops = on_time_grid(seg[:, 1])
    if future:  # _read_spans: the span stops at the trial's end itself where that is after the current window's
        stops = np.maximum(stops, seg[:, 1])
    # the latest stop among the segments started by t, not the latest-starting segment's stop:
    # trial segments may nest ([0, 10) and [2, 3): a sample at 5 s is inside the longer one)
    ends = np.maximum.accumulate(stops)
    return (k >= 0) & (t < ends[np.clip(k, 0, None)])


def _spans(track: ModalityTrack, train: np.ndarray) -> str:
    """Where a modality's values and the training split lie, s (for the 'no value inside the
    training split' errors: a series on another clock or in other units shows here); for a source
    without any value, that it has none (no clock is wrong then)."""
    if track.kind == "intervals":
        n, lo, hi = len(track.intervals), track.intervals[:, 0], track.intervals[:, 1]
    else:
        n, lo, hi = len(track.times), track.times, track.times
    if not n:  # an empty stream (A2929's ripples in --epoch wake) was blamed on the clock of times it has none of
        return "the recording holds no value of it at any time: was it recorded in this recording, or in this --epoch?"
    have = f"its {count_noun(n, 'value')} {'lies' if n == 1 else 'lie'} in [{float(np.min(lo)):g}, {float(np.max(hi)):g}] s"
    split = (f"the training split's {count_noun(len(train), 'segment')} in [{float(train[:, 0].min()):g}, "
             f"{float(train[:, 1].max()):g}] s" if len(train) else "the training split is empty")
    return f"{have}, {split}; times must be seconds on the spikes' clock"


def _label(v):
    """A label as a JSON scalar (numpy ints/floats/strings -> Python; byte strings decoded as UTF-8:
    a trial column of dtype ``S`` gave classes ``b'o0'`` that no config.json could hold)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _fitted(mod: dict) -> bool:
    if mod["kind"] == "categorical":
        return mod["classes"] is not None
    return mod["normalization"] != "zscore" or (mod["mean"] is not None and mod["std"] is not None)


def _training_spans(recording: SpikeRecording, plan, mod: dict) -> np.ndarray:
    """``(n, 2)`` float64 s: what the training windows' modality windows of ``mod`` read (where
    :func:`fit_modalities` takes a categorical modality's classes and a continuous one's statistics
    from). In time
    mode the training segments (a window and its past, which a modality window stays inside, lie in
    one). In trial mode a trial's first window reads back to ``window[0]`` before the trial's start,
    down to the end of the trial before (:func:`modality_columns`): each training trial's span
    starts there. The end is the trial's (a future window, ``allow_future``, stops at it)."""
    train = np.asarray(plan.segments["train"], dtype=np.float64).reshape(-1, 2)
    if plan.mode != "trials" or len(train) == 0 or mod["window"][0] >= 0:
        return train
    a = train[:, 0]
    lo = np.maximum(on_time_grid(on_time_grid(a) + mod["window"][0]), _previous_trial_ends(recording, a))
    return np.stack([np.minimum(lo, a), train[:, 1]], axis=1)


def fit_modalities(recording: SpikeRecording, config, plan, overwrite: bool = True,
                   stacklevel: int = 2) -> None:
    """Fill in each modality's training-split statistics in ``config.modalities`` (in place).

    Continuous ``"zscore"``: ``mean`` / ``std`` per feature over the samples (or interval values)
    that the training windows read (NaN samples left out); a constant feature gets ``std = 1`` with
    a warning. Categorical: ``classes`` = the sorted distinct labels that the training windows read.
    What they read: the training segments of ``plan`` and, in trial mode, the stretch before each
    training trial that its first windows' modality window reaches (back to ``window[0]``, not
    before the end of the trial before, so no value of another trial, of another split maybe).
    Labels only in those gaps (a fixation cross shown before each trial) were left out, and the
    training windows that read them were then refused as holding a label outside the classes; a
    series read there (pupil, speed between trials) was normalised with statistics of the trials
    alone. ``"circular"`` and ``"none"`` need nothing. Video: the pixel ``mean`` / ``std`` of the frames
    on screen in the training segments (``"none"`` too, for the pixel-scale check of a trained model's
    recording; not applied) and ``frame_interval``, the median interval between the frame onsets (s).

    Args:
        recording: the recording the model is trained on.
        config: a :class:`~hf_neuroformer.NeuroformerConfig`.
        plan: the :class:`~hf_neuroformer.windows.SplitPlan` (its ``segments["train"]`` and ``mode`` are read).
        overwrite: refit modalities that already have statistics (``train`` does); False keeps
            them (a trained model's config: inference normalises as training did).
        stacklevel: where the warnings point, as ``warnings.warn`` takes it (2: the caller of this
            function; a public function calling it passes 3, its own caller's line).

    Raises:
        ValueError: a source missing from the recording, or no value of a modality inside the
            training split; a categorical label there that is None, NaN or infinite (missing);
            categorical labels that mix booleans and numbers (``True == 1``: one class).

    Warns:
        UserWarning: NaN or infinite samples of a continuous modality (counted); a constant
            feature or constant frames (std set to 1); most frames of a video modality not on
            screen in the recording's time domain, or most samples of a behaviour series (intervals
            of ``stimulus:ids``) outside it (times in ms, or on another clock?).
    """
    for i, mod in enumerate(config.modalities):
        if not overwrite and _fitted(mod):
            continue
        # classes and statistics: every value the training windows read (in trial mode the gap before a trial too:
        # a label only there was refused in those windows, a series there was scaled by the trials' values alone);
        # video: the frames on screen inside the training segments
        train = plan.segments["train"] if mod["kind"] == "video" else _training_spans(recording, plan, mod)
        # its warning (a circular series in degrees) at our caller's line, as ours: it named this line
        track = modality_track(recording, mod, i, stacklevel=stacklevel + 1)
        _warn_if_off_the_clock(track, recording, mod, i, stacklevel=stacklevel + 1)
        if track.kind == "frames":
            mod["frame_interval"] = median_frame_interval(track.times)
            _fit_video(track, train, mod, i, stacklevel=stacklevel + 1)
            continue
        if track.kind == "samples":
            inside = _in_segments(track.times, train, future=mod["window"][1] > config.current_window)
        else:  # overlapping a training segment, edges within EDGE_TOLERANCE equal (as in_span reads them)
            inside = np.zeros(len(track.intervals), dtype=bool)
            for a, b in train:
                inside[track.in_span(a, b)] = True
        vals = track.values[inside]
        if mod["kind"] == "continuous":
            # modality_track gives continuous values as (n, num_features) float64, also when n is 0
            # (a reshape(0, -1) of no samples raised numpy's "cannot reshape array of size 0")
            finite = np.all(np.isfinite(vals), axis=1)
            n_bad_all = int(np.sum(~np.all(np.isfinite(track.values), axis=1)))
            if n_bad_all:  # missing samples are read as no token; say how many there are
                warnings.warn(f"{_where(i, mod)}: {n_bad_all} of {len(track.values)} samples of {mod['source']!r} are "
                              f"NaN or infinite ({int(np.sum(~finite))} inside the training split); windows read them "
                              "as missing (no token for that sample)", UserWarning, stacklevel=stacklevel)
            if not finite.any():
                # samples there that are all NaN were blamed on the clock ("times must be seconds on the spikes' clock")
                one = len(vals) == 1
                what = count_noun(len(vals), "sample" if track.kind == "samples" else "value")
                why = (f"its {what} there {'is' if one else 'are all'} NaN or "
                       "infinite: the series was not recorded in the training split's time (tracking lost?); give "
                       "another split_seed, or an --epoch where it was recorded" if len(vals) else _spans(track, train))
                raise ValueError(f"{_where(i, mod)}: no finite value of {mod['source']!r} inside the training split "
                                 f"({why})")
            vals = vals[finite]
            if mod["normalization"] == "zscore":
                mean, std = vals.mean(0), vals.std(0)
                if np.any(std <= 1e-12):
                    warnings.warn(f"{_where(i, mod)}: constant in the training split; std set to 1", UserWarning,
                                  stacklevel=stacklevel)
                    std = np.where(std <= 1e-12, 1.0, std)
                mod["mean"], mod["std"] = [float(x) for x in mean], [float(x) for x in std]
        else:
            if len(vals) == 0:
                raise ValueError(f"{_where(i, mod)}: no label of {mod['source']!r} inside the training split "
                                 f"({_spans(track, train)})")
            # None (an object column with gaps) is as missing as NaN: it became a class null, or failed
            # in the sort below next to numbers ("'<' not supported between 'NoneType' and 'int'")
            labs = [_label(v) for v in vals]
            nan = [v for v in labs if v is None or isinstance(v, float) and not np.isfinite(v)]
            if nan:
                raise ValueError(f"{_where(i, mod)}: {len(nan)} of {len(vals)} labels of {mod['source']!r} in the "
                                 "training split are None, NaN or infinite; a categorical modality needs a label "
                                 "for every value (map the missing ones to a label of their own, or drop those "
                                 f"{_ENTRIES[mod['source'].split(':', 1)[0]]})")
            # True == 1 and False == 0 in Python: a column holding both made one class of True and 1
            kinds = {type(v).__name__ for v in labs if not isinstance(v, str)}
            if "bool" in kinds and len(kinds) > 1:
                shown = sorted({repr(v) for v in labs})
                raise ValueError(f"{_where(i, mod)}: the labels of {mod['source']!r} mix booleans and numbers "
                                 f"({', '.join(shown[:6])}{', ...' if len(shown) > 6 else ''}); True equals 1 and False "
                                 "equals 0, so they would be one class: map them to labels of one type first")
            labels = sorted(set(labs), key=lambda v: (isinstance(v, str), v))
            mod["classes"] = labels


def _fit_video(track: ModalityTrack, train: np.ndarray, mod: dict, i: int, max_frames: int = 4096,
               stacklevel: int = 2) -> None:
    """Pixel mean / std of the frames on screen inside the training segments (an evenly spaced
    subset of at most ``max_frames`` frames): the frames that training windows read. ``"zscore"``
    normalises with them; ``"none"`` records them too, unused by the model, for
    :func:`_warn_if_pixels_rescaled` (uint8 0-255 frames given to a model trained on floats in
    [0, 1] were read as they are without a word); a config saved before they were recorded for
    ``"none"`` (both None) loads, unchecked. ``stacklevel``: where the constant-frames warning
    points, as ``warnings.warn`` takes it (2: the caller of this function)."""
    shown = np.zeros(len(track.times), dtype=bool)
    for a, b in train:  # on screen inside a segment, as frames_shown reads them for a window
        shown[track.frames_shown(a, b)] = True
    inside = np.flatnonzero(shown)
    if len(inside) == 0:
        raise ValueError(f"{_where(i, mod)}: no frame of {mod['source']!r} inside the training split "
                         f"({_spans(track, train)})")
    mean, std = _pixel_stats(track, inside, max_frames)
    if std <= 1e-12:
        what = "std set to 1" if mod["normalization"] == "zscore" else "std recorded as 1 (for the pixel-scale check)"
        warnings.warn(f"{_where(i, mod)}: the training split's frames are constant; {what}", UserWarning,
                      stacklevel=stacklevel)
        std = 1.0
    mod["mean"], mod["std"] = [mean], [std]


def _warn_if_off_the_clock(track: ModalityTrack, recording: SpikeRecording, mod: dict, i: int,
                           stacklevel: int = 3, where: Optional[str] = None) -> None:
    """Warn when most values of a modality lie outside the recording's time domain: times in
    milliseconds (or on another clock) still overlap the spikes' seconds in part. Frames: not on
    screen in it (each frame stays on screen until the next onset, so a 60 Hz movie in ms shows one
    frame per 16.7 s and the windows read a stretched movie without any other sign). Samples (a
    behaviour series): outside it (a 120 Hz series in ms gives one sample per 8.3 s in the first
    seconds: nearly every window reads none, and the statistics come from those few). Intervals
    (``stimulus:ids``): not overlapping it. Event and trial times are refused outside the time
    domain by :meth:`SpikeRecording.validate`, so they never warn here. ``where`` opens the message
    (default: the config entry, ``NeuroformerConfig.modalities[i] (name)``)."""
    td = recording.time_domain
    if td is None:
        return
    prefix, key = mod["source"].split(":", 1)
    field = {"behaviour": f"behaviour[{key!r}].timestamps", "events": f"events[{key!r}].times", "trial": "trials",
             "stimulus": "stimulus.intervals"}[prefix]
    if track.kind == "frames":
        ft = track.times
        # not on screen in the recorded time; the onset after its end, which restrict keeps as the last frame's
        # end marker, is not on screen there either (counting it on screen left the count one short)
        out = int(np.sum(~frames_on_screen(ft, np.array([td], dtype=np.float64), end_marker=False))) if len(ft) else 0
        n, what, verb, lo, hi = len(ft), "frames", "are not on screen in", ft[:1], ft[-1:]
        field, read = "frame_times", "each frame is read as on screen until the next onset"
    elif track.kind == "samples":
        t = track.times
        out = int(np.sum((t < td[0]) | (t >= td[1])))
        n, what, verb, lo, hi = len(t), "samples", "lie outside", t[:1], t[-1:]
        read = "the windows read the few samples inside it, far apart"
    else:
        iv = track.intervals
        out = int(np.sum((iv[:, 1] <= td[0]) | (iv[:, 0] >= td[1])))
        n, what, verb, lo, hi = len(iv), "intervals", "lie outside", iv[:1, 0], iv[-1:, 1]
        read = "the windows read the few intervals inside it, stretched"
    if out > n / 2:
        warnings.warn(f"{where or _where(i, mod)}: {out} of {n} {what} of {mod['source']!r} {verb} the recorded time "
                      f"[{td[0]:g}, {td[1]:g}) s (the {what} span {lo[0]:g} to {hi[0]:g} s); {field} must be seconds on "
                      f"the spikes' clock (milliseconds? another clock?): {read}", UserWarning, stacklevel=stacklevel)


def _pixel_stats(track: ModalityTrack, frames: np.ndarray, max_frames: int = 4096):
    """``(mean, std)`` of the pixels of the frames ``frames`` (indices into ``track``; an evenly
    spaced subset of at most ``max_frames`` of them), as float64."""
    pick = frames[np.linspace(0, len(frames) - 1, min(len(frames), max_frames)).round().astype(np.int64)]
    px = np.asarray(track.values[np.unique(pick)], dtype=np.float64)  # finite: checked by SpikeRecording.validate
    return float(px.mean()), float(px.std())


def _warn_if_pixels_rescaled(track: ModalityTrack, mod: dict, flag: str, whose: str, factor: float = 10.0,
                             max_frames: int = 256, stacklevel: int = 3) -> None:
    """Warn when the frames of ``track`` lie on another pixel scale than the training frames whose
    pixel ``mean`` / ``std`` a trained model's video modality stores (``"zscore"``, which
    normalises with them, and ``"none"``, which reads the pixels as they are; :func:`_fit_video`):
    a std more than ``factor`` times larger or smaller, or a mean more than ``factor`` training stds
    away (frames as uint8 0-255 given to a model trained on floats in [0, 1], or the reverse): the
    model would read every pixel as far outside anything it was trained on, without a word. A
    ``"none"`` modality of a config saved before its statistics were recorded (None) is not
    checked. The pixels of at most ``max_frames`` evenly spaced frames are compared (a scale off by
    ``factor`` shows in any)."""
    if mod["mean"] is None or mod["std"] is None or not len(track.times):
        return
    mean, std = _pixel_stats(track, np.arange(len(track.times)), max_frames)
    m0, s0 = mod["mean"][0], mod["std"][0]
    if std > factor * s0 or 0 < std < s0 / factor or abs(mean - m0) > factor * s0:
        reads = ("normalises pixels with" if mod["normalization"] == "zscore" else
                 "reads pixels as they are (normalization 'none'), trained on")
        warnings.warn(f"{flag}: {whose} {reads} the training frames' mean {m0:.4g} and std {s0:.4g}, "
                      f"but this recording's frames ({np.asarray(track.values).dtype}) have mean {mean:.4g} and std "
                      f"{std:.4g}: another pixel scale (integers 0-255 against floats 0-1?); give the frames on the "
                      "scale of the frames the model was trained on", UserWarning, stacklevel=stacklevel)


def _warn_if_frame_rate_differs(track: ModalityTrack, mod: dict, flag: str, whose: str, tolerance: float = 0.1,
                                stacklevel: int = 3) -> None:
    """Warn when the median frame interval of ``track`` differs by more than ``tolerance`` (a
    fraction) from the training frames' (``mod["frame_interval"]``, None for a config saved before
    it was recorded: no check): a model trained on 60 Hz video given 30 Hz reads half the frames
    per window (the frames last twice as long), without a word."""
    fi, got = mod.get("frame_interval"), median_frame_interval(track.times)
    if fi is None or got is None or abs(got - fi) <= tolerance * fi:
        return
    warnings.warn(f"{flag}: {whose} was trained on frames every {1000 * fi:.4g} ms ({1 / fi:.4g} Hz), but this "
                  f"recording's frames come every {1000 * got:.4g} ms ({1 / got:.4g} Hz; median intervals, more than "
                  f"{100 * tolerance:g} % apart): its windows read {'fewer' if got > fi else 'more'} frames, each "
                  "on screen for another time than in training; give the video at the frame rate the model was "
                  "trained on", UserWarning, stacklevel=stacklevel)


def _video_columns(track: ModalityTrack, mod: dict, starts: np.ndarray, los: np.ndarray, his: np.ndarray):
    """Frames of each window, shown during ``[los[i], his[i])``: (times, frames, n_truncated)
    lists (see modality_columns)."""
    n = mod["num_frames"]
    times_l, frames_l, ntr_l = [], [], []
    for s, lo, hi in zip(starts, los, his):
        idx = track.frames_shown(lo, hi)
        n_tr = max(0, len(idx) - n)
        idx = idx[n_tr:]
        times_l.append([float(x) for x in track.times[idx] - s])
        frames_l.append(np.asarray(track.values[idx], dtype=np.float32))
        ntr_l.append(int(n_tr))
    return times_l, frames_l, ntr_l


def modality_column_names(mod: dict) -> List[str]:
    """Dataset columns of one modality: ``mod_<name>_times``, ``..._values`` or ``..._ids``,
    ``..._n_truncated``."""
    n = mod["name"]
    value = {"continuous": "values", "categorical": "ids", "video": "frames"}[mod["kind"]]
    return [f"mod_{n}_times", f"mod_{n}_{value}", f"mod_{n}_n_truncated"]


def windows_without_values(cols, mod: dict) -> int:
    """How many windows of ``cols`` (window columns: a dict of lists or a ``datasets.Dataset``)
    hold no value of modality ``mod`` in their modality window: the model reads only the
    modality's learned null token there, so those windows are not conditioned on it (NaN runs, a
    series that starts late, a gap, samples far sparser than the window, another clock)."""
    return int(sum(len(t) == 0 for t in cols[modality_column_names(mod)[0]]))


def windows_without_values_at(recording: SpikeRecording, config, starts: Sequence[float],
                              clip_starts: Optional[Sequence[float]] = None, *,
                              stacklevel: int = 2) -> Dict[str, int]:
    """How many of the windows starting at ``starts`` (s; ``clip_starts`` as :func:`modality_columns`
    takes them) hold no value of each modality of ``config`` in their modality window: the count
    :func:`windows_without_values` gives for their :func:`modality_columns`, without tokenizing them
    (no frames copied, no classes needed: ``neuroformer inspect`` counts them per split before
    training). A value is a sample or interval in (or overlapping) the span a window reads, with a
    finite value for a continuous modality; a frame on screen in it for video.

    ``stacklevel`` (keyword-only int): where the warnings of reading a modality
    (:func:`modality_track`'s, e.g. a circular series in degrees labelled ``'rad'``) point, as
    ``warnings.warn`` takes it (2, the default: the caller of this function).

    Returns:
        modality name -> number of windows without a value.

    Raises:
        ValueError: as :func:`modality_track` (a source missing from the recording, ...), or
            ``clip_starts`` without one value per window.
    """
    starts, bounds = _window_bounds(recording, starts, clip_starts)
    out: Dict[str, int] = {}
    for i, mod in enumerate(config.modalities or []):
        # its warning at our caller's line (describe_recording passes its own caller's): it named this line
        track = modality_track(recording, mod, i, stacklevel=stacklevel + 1)
        los, his = _read_spans(config, mod, starts, bounds)
        if track.kind == "frames":
            out[mod["name"]] = int(sum(len(track.frames_shown(lo, hi)) == 0 for lo, hi in zip(los, his)))
            continue
        if mod["kind"] == "continuous":  # NaN samples are no token (modality_columns leaves them out)
            ok = np.all(np.isfinite(track.values), axis=1)
            track = ModalityTrack(track.kind, None if track.times is None else track.times[ok],
                                  None if track.intervals is None else track.intervals[ok], track.values[ok])
        out[mod["name"]] = int(sum(len(track.in_span(lo, hi)) == 0 for lo, hi in zip(los, his)))
    return out


def is_event_modality(mod: dict) -> bool:
    """Whether modality ``mod`` reads an event stream (source ``events:NAME``: onsets, labelled or
    not), whose windows without an event are the normal case rather than a gap in a recording."""
    return str(mod["source"]).startswith("events:")


def check_windows_read_modalities(config, cols_by_split: Dict[str, object], refuse: Sequence[str] = (),
                                  stacklevel: int = 2, remedy: Optional[str] = None, events: bool = True) -> None:
    """Warn of each modality of ``config`` that NO window of a split holds a value of (counted with
    :func:`windows_without_values`): the model reads only the modality's learned null token in all of
    them, so they are not conditioned on it (a series recorded in part of the session only, a movie
    shown before the split, no event in it), which was silent. In a split of ``refuse`` (the training
    split) that is an error: nothing of the modality could be learnt.

    Args:
        config: the :class:`~hf_neuroformer.NeuroformerConfig` (anything with ``modalities``).
        cols_by_split: split name -> its window columns (a dict of lists or a ``datasets.Dataset``);
            the name ``""`` for windows of no split (the processor's).
        refuse: the splits where it raises instead of warning.
        stacklevel: of the warnings, as ``warnings.warn`` takes it (2: the caller of this function).
        remedy: what the error of a ``refuse`` split tells to do (None: another recording or epoch,
            split_seed or split_block_length, or a config without the modality, as for ``train``;
            ``finetune`` from a model, whose config and split plan are the model's, says its own).
        events: whether an event modality (source ``events:...``) is checked too. False for windows of
            the caller's choosing (the processor's batches, ``generate_spikes``), where windows that hold
            no event (between sparse onsets) are normal; True for a split or a dataset of windows.

    Raises:
        ValueError: a split of ``refuse`` with windows, none of which holds a value of a modality;
            names the modality, its source, window and the split's window count.

    Warns:
        UserWarning: one per modality, naming its source and window and, per split where none of the
            windows holds a value of it, that split and its window count.
    """
    for mod in config.modalities or []:
        if not events and is_event_modality(mod):
            continue
        t_col = modality_column_names(mod)[0]
        n = {s: len(cols[t_col]) for s, cols in cols_by_split.items()}
        empty = [s for s, cols in cols_by_split.items() if n[s] and windows_without_values(cols, mod) == n[s]]
        if not empty:
            continue
        w0, w1 = mod["window"]
        what = f"modality {mod['name']!r} ({mod['source']!r}, window [{w0:g}, {w1:g}) s)"
        inspect = ("'neuroformer inspect --data ... --config ...' counts the windows without a value of each "
                   "modality per split")
        refused = [s for s in empty if s in refuse]
        if refused:
            s = refused[0]
            if remedy is None:
                remedy = ("pass a recording (or --epoch) where it was recorded during the training split, another "
                          f"split_seed or split_block_length, or remove the modality from the config ({inspect})")
            raise ValueError(f"{what}: none of the {n[s]} {s} windows holds a value of it, so the model would learn "
                             f"nothing of it (it would read only its null token); {remedy}")
        where = (f"none of the {n['']} windows" if empty == [""] else
                 "none of the windows of " + " and ".join(f"the {s} split ({n[s]})" for s in empty))
        warnings.warn(f"{what}: {where} holds a value of it in its modality window, so the model reads only the "
                      "modality's learned null token there: those windows are not conditioned on it (was it "
                      f"recorded at these times?); {inspect}", UserWarning, stacklevel=stacklevel)


def truncated_modality_tokens(cols, mod: dict) -> int:
    """How many tokens of modality ``mod`` (video: frames) the windows of ``cols`` (window
    columns: a dict of lists or a ``datasets.Dataset``) left out beyond its ``max_tokens`` /
    ``num_frames``, the earliest (their ``n_truncated`` column of the modality, summed)."""
    return int(np.sum(cols[modality_column_names(mod)[2]]))


def truncated_tokens_text(mod: dict) -> str:
    """What a truncation of modality ``mod`` leaves out, for the messages that count it (train,
    finetune, generate, the processor): ``"frames beyond num_frames = 4"`` for a video modality,
    ``"tokens beyond max_tokens = 8"`` for the others (the counts of
    :func:`truncated_modality_tokens`)."""
    if mod["kind"] == "video":
        return f"frames beyond num_frames = {mod['num_frames']}"
    return f"tokens beyond max_tokens = {mod['max_tokens']}"


def modality_features(config) -> dict:
    """``datasets`` feature types of the modality columns of ``config``."""
    import datasets

    out = {}
    for mod in config.modalities:
        t, v, nt = modality_column_names(mod)
        out[t] = datasets.List(datasets.Value("float64"))
        if mod["kind"] == "video":
            out[v] = datasets.Array3D(shape=(None, *mod["frame_shape"]), dtype="float32")
        else:
            out[v] = (datasets.List(datasets.List(datasets.Value("float64"))) if mod["kind"] == "continuous"
                      else datasets.List(datasets.Value("int64")))
        out[nt] = datasets.Value("int64")
    return out


def _circular_mean(x: np.ndarray) -> np.ndarray:
    return np.arctan2(np.sin(x).mean(0), np.cos(x).mean(0))


def _previous_trial_ends(recording: SpikeRecording, clips: np.ndarray) -> np.ndarray:
    """For each trial start in ``clips`` (s; ``-inf`` for none): the end of the latest trial of
    ``recording`` that ends at or before it (``-inf`` when none does), or the clip itself when the
    recording has no trials."""
    trials = getattr(recording, "trials", None)
    if trials is None or len(trials) == 0:
        return clips
    ends = np.sort(np.asarray(trials, dtype=np.float64)[:, 1])
    idx = np.searchsorted(ends, clips + EDGE_TOLERANCE, side="right") - 1  # abutting trials
    bound = np.where(idx >= 0, ends[np.clip(idx, 0, None)], -np.inf)
    return np.where(np.isfinite(clips), np.minimum(bound, clips), clips)


def _own_trial_ends(recording: SpikeRecording, clips: np.ndarray) -> np.ndarray:
    """For each trial start in ``clips`` (s; ``-inf`` for none): the end of the trial of
    ``recording`` that starts there (the latest-starting trial holding it, within 1 ns), ``inf``
    when none does, the clip is ``-inf`` or the recording has no trials."""
    trials = getattr(recording, "trials", None)
    out = np.full(clips.shape, np.inf)
    if trials is None or len(trials) == 0:
        return out
    from .windows import trial_at  # not at module level: windows imports torch

    ok = np.isfinite(clips)
    k = trial_at(np.asarray(trials, dtype=np.float64), clips[ok])
    out[np.flatnonzero(ok)[k >= 0]] = np.asarray(trials, dtype=np.float64)[k[k >= 0], 1]
    return out


def _window_bounds(recording: SpikeRecording, starts, clip_starts):
    """``(starts, (clips, ends))`` of :func:`modality_columns`' windows: ``starts`` as float64, the
    earliest time each window may read (the end of the latest trial before its clip) and the end of
    its own trial (where a future span stops)."""
    starts = np.asarray(starts, dtype=np.float64).reshape(-1)
    clips = (np.full(starts.shape, -np.inf) if clip_starts is None
             else np.nan_to_num(np.asarray(clip_starts, dtype=np.float64).reshape(-1), nan=-np.inf))
    if clips.shape != starts.shape:
        raise ValueError(f"clip_starts: expected one value per window ({starts.size}), got shape {clips.shape}")
    ends = _own_trial_ends(recording, clips)  # a future window (allow_future) stops at its trial's end
    return starts, (_previous_trial_ends(recording, clips), ends)


def _read_spans(config, mod: dict, starts: np.ndarray, bounds) -> Tuple[np.ndarray, np.ndarray]:
    """``(los, his)``: the ``[lo, hi)`` span (s) of modality ``mod`` each window reads."""
    clips, ends = bounds
    # both span edges on the 1 ns grid of window starts (the end is rounded below): 0.12 - 0.02 is
    # 0.09999999999999999 in floats, and an interval or frame that ended at 0.1 s was read
    los = np.maximum(on_time_grid(starts + mod["window"][0]), clips)
    # a future span (allow_future) stops at the trial's end; the current window itself is never cut
    his = np.minimum(on_time_grid(starts + mod["window"][1]),
                     np.maximum(ends, window_ends(starts, config.current_window)))
    return los, his


def events_in_no_window(recording: SpikeRecording, config, windows, within=None) -> Dict[str, int]:
    """How many events of each ``"events:<key>"`` modality of ``config`` no window reads: events in
    the gaps between splits (a split's first window reads from its segment's start, its past
    window, on), or in a segment too short for a window. Events outside the recording are counted
    by the readers (:func:`hf_neuroformer.events.clean_events`), windows without events by
    :func:`windows_without_values`; these are the rest, dropped without a count before.

    Args:
        windows: the ``(starts, clip_starts)`` (s; ``clip_starts`` ``None`` or NaN for none) of every
            split's windows, e.g. ``[(ds["window_start"], ds["past_clip_start"]) for ds in splits]``.
        within: None (every event), or ``(n, 2)`` ``[start, stop)`` intervals (s): only the events
            inside them are counted (the segments of the split one generates, for ``generate``).

    Returns:
        modality name -> number of its events read by no window (event modalities only).
    """
    out: Dict[str, int] = {}
    splits = iv = None  # the windows' bounds and the merged ``within``: the same for every modality, found once
    for i, mod in enumerate(config.modalities or []):
        if not is_event_modality(mod):
            continue
        times = modality_track(recording, mod, i).times
        if splits is None:
            splits = [_window_bounds(recording, starts, clip_starts) for starts, clip_starts in windows]
            iv = None if within is None else _merge_intervals(within)
        read = np.zeros(len(times) + 1, dtype=np.int64)  # +1 at a span's first event, -1 after its last
        for starts, bounds in splits:
            los, his = _read_spans(config, mod, starts, bounds)
            np.add.at(read, np.searchsorted(times, los, side="left"), 1)
            np.add.at(read, np.searchsorted(times, his, side="left"), -1)
        unread = np.cumsum(read[:-1]) <= 0
        if iv is not None:  # inside the union of the intervals (trials of a split may overlap)
            unread &= in_intervals(times, iv)
        out[mod["name"]] = int(unread.sum())
    return out


def modality_columns(recording: SpikeRecording, config, starts: Sequence[float],
                     clip_starts: Optional[Sequence[float]] = None, *,
                     stacklevel: int = 2) -> Dict[str, list]:
    """The modality tokens of the current windows starting at ``starts`` (s).

    ``clip_starts`` (``(n,)`` s, NaN for none; trial mode: each window's trial start, where its
    past spikes are clipped): nothing before the end of the latest trial of ``recording`` that ends
    at or before it is read (the clip itself when trials abut or the recording has no trials), so
    a window never reads the values of the previous trial (another split's, maybe) but does read
    the inter-trial gap before its own trial; an interval that overlaps that bound is placed at it.
    A span that reaches past the current window (``allow_future``) ends at the end of the trial
    that starts at the clip (or at the current window's end, if that is later), so neither is the
    next trial read nor the gap after the trial.

    For each modality (see the module docstring): ``mod_<name>_times`` (list of float, s relative
    to the window start, in ``[window[0], window[1])``), ``mod_<name>_values`` (continuous: list
    of ``num_features`` raw floats per token; normalised inside the model with the config's
    statistics) or ``mod_<name>_ids`` (categorical: index into ``classes``) or ``mod_<name>_frames``
    (video: ``(k, height, width)`` float32 raw frames, ``k <= num_frames`` in time order, with their
    onsets in ``mod_<name>_times``; frames beyond ``num_frames`` are dropped earliest first), and
    ``mod_<name>_n_truncated`` (tokens beyond ``max_tokens``: the earliest are dropped). Samples
    with a NaN value are left out (a window may then have no token; the model's stage still has
    its learned null token). With ``bin_size`` the samples are averaged in bins of that width
    (circular mean for ``"circular"``), one token per non-empty bin at the bin's start.

    ``stacklevel`` (keyword-only int): where the warnings of reading a modality
    (:func:`modality_track`'s) point, as ``warnings.warn`` takes it (2, the default: the caller of
    this function).

    Raises:
        ValueError: a source missing from the recording; categorical modalities whose
            ``classes`` were not fitted, or a label that is not one of them.
    """
    starts, bounds = _window_bounds(recording, starts, clip_starts)
    cols: Dict[str, list] = {}
    for i, mod in enumerate(config.modalities):
        t_col, v_col, n_col = modality_column_names(mod)
        track = modality_track(recording, mod, i, stacklevel=stacklevel + 1)
        los, his = _read_spans(config, mod, starts, bounds)
        if track.kind == "frames":
            cols[t_col], cols[v_col], cols[n_col] = _video_columns(track, mod, starts, los, his)
            continue
        w0 = mod["window"][0]
        categorical = mod["kind"] == "categorical"
        index = None
        if categorical:
            if mod["classes"] is None:
                raise ValueError(f"{_where(i, mod)}.classes: not fitted; call hf_neuroformer.modalities.fit_modalities "
                                 "(recording, config, plan) on the training split first")
            index = {c: k for k, c in enumerate(mod["classes"])}
        times_l, vals_l, ntr_l = [], [], []
        for s, lo, hi in zip(starts, los, his):
            idx = track.in_span(lo, hi)
            if track.kind == "samples":
                tt = track.times[idx] - s
            else:
                tt = np.maximum(track.intervals[idx, 0], lo) - s
            vv = track.values[idx]
            if categorical:
                ids = []
                for v in vv:
                    lab = _label(v)
                    # True and 1 are one dict key: a boolean label is not one of number classes, nor 1 of [False, True]
                    if lab not in index or isinstance(lab, bool) != isinstance(mod["classes"][index[lab]], bool):
                        raise ValueError(f"{_where(i, mod)}: label {lab!r} at window {s:.4f} s is not one of the "
                                         f"training classes {mod['classes']}: no training window read it, so the "
                                         "model has no embedding for it; give the training split windows that read "
                                         "it (split_stratify_by: <trial column> for a trial label, or another "
                                         "split_seed / split_block_length), or map it to one of the classes (or "
                                         f"leave those values out) in the recording's {mod['source']!r}")
                    ids.append(index[lab])
                vv = np.asarray(ids, dtype=np.int64)
            else:
                ok = np.all(np.isfinite(vv), axis=1)
                tt, vv = tt[ok], vv[ok]
                if mod["bin_size"] is not None and len(tt):
                    b = bin_index(tt - w0, mod["bin_size"])
                    ub = np.unique(b)
                    mean = _circular_mean if mod["normalization"] == "circular" else (lambda x: x.mean(0))
                    vv = np.stack([mean(vv[b == k]) for k in ub])
                    tt = np.maximum(w0 + ub * mod["bin_size"], lo - s)  # a bin cut by the clip starts at it
            n_tr = max(0, len(tt) - mod["max_tokens"])
            times_l.append([float(x) for x in tt[n_tr:]])
            vals_l.append(vv[n_tr:].tolist())
            ntr_l.append(int(n_tr))
        cols[t_col], cols[v_col], cols[n_col] = times_l, vals_l, ntr_l
    return cols
