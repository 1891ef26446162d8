"""Stimulus frames rendered from what a recording stores about its stimulus.

The Allen drifting-gratings subset in ``../shared/data`` stores only each trial's orientation;
spatial and temporal frequency, phase and contrast are not stored. :func:`render_drifting_gratings`
draws the frames from the orientation with NOMINAL values for the rest (the defaults of
:class:`GratingParams`, chosen from the Allen Brain Observatory Visual Coding protocol: spatial
frequency 0.04 cycles/degree, one of its temporal frequencies, 2 Hz, 80 % contrast, a 60 Hz
monitor). A report or model card that uses these frames must state them; ``GratingParams.describe``
gives the sentence, and ``neuroformer render-gratings`` writes it into the NWB file.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, replace
from typing import Optional, Tuple

import numpy as np

from .argument_checks import as_dataclass
from .configuration_neuroformer import is_finite_number
from .recording import WINDOW_GRID, SpikeRecording, Stimulus, as_real_numbers, count_noun

__all__ = ["GratingParams", "render_drifting_gratings", "stimulus_field_of_view"]

# s: the tolerance on frame onsets against trial edges, the 1 ns grid of window starts
FRAME_GRID = WINDOW_GRID


def _memory_bytes() -> Optional[int]:
    """This machine's physical memory in bytes, or ``None`` where the OS does not say."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


@dataclass(frozen=True)
class GratingParams:
    """Nominal drifting-grating parameters (the data do not store them).

    Attributes:
        frame_rate: frames per second (Hz) of the rendered movie; frames cover the recording.
        frame_shape: ``(height, width)`` pixels, whole numbers >= 1.
        field_of_view: ``(height, width)`` of the frame in degrees of visual angle.
        spatial_frequency: cycles per degree.
        temporal_frequency: drift cycles per second (Hz).
        contrast: Michelson contrast in [0, 1]; pixels are luminance relative to mean grey, in
            ``[-contrast, contrast]`` (0 = the mean grey shown between trials).
        phase: spatial phase at trial onset, radians.
    """

    frame_rate: float = 60.0
    frame_shape: Tuple[int, int] = (32, 32)
    field_of_view: Tuple[float, float] = (64.0, 64.0)
    spatial_frequency: float = 0.04
    temporal_frequency: float = 2.0
    contrast: float = 0.8
    phase: float = 0.0

    def describe(self) -> str:
        """One sentence that states the assumed values (for NWB descriptions and reports)."""
        return (f"Drifting sinusoidal gratings rendered from the stored orientation only, with ASSUMED nominal "
                f"values: spatial frequency {self.spatial_frequency} cycles/deg, temporal frequency "
                f"{self.temporal_frequency} Hz, contrast {self.contrast}, phase {self.phase} rad at trial onset, "
                f"{self.frame_rate} Hz frames of {self.frame_shape[0]}x{self.frame_shape[1]} px covering "
                f"{self.field_of_view[0]}x{self.field_of_view[1]} deg; the grating drifts along the orientation "
                f"angle (bars perpendicular to it); mean grey (0) between trials.")

    @staticmethod
    def field_of_view_from(description: Optional[str]) -> Optional[Tuple[float, float]]:
        """``(height, width)`` degrees of visual angle that a frames description written by
        :meth:`describe` states (``"... 32x32 px covering 64.0x64.0 deg ..."``); ``None`` where the
        description is absent or states no field of view (frames from elsewhere: their size is in
        pixels only). A fallback for files written before :attr:`Stimulus.field_of_view
        <hf_neuroformer.recording.Stimulus.field_of_view>` held it (``render_drifting_gratings``
        sets that field, and :func:`~hf_neuroformer.io.write_nwb` stores it); see
        :func:`stimulus_field_of_view`."""
        m = re.search(r"px covering ([0-9.eE+-]+)x([0-9.eE+-]+) deg\b", description or "")
        if m is None:
            return None
        try:
            return float(m.group(1)), float(m.group(2))
        except ValueError:
            return None

    def validate(self) -> None:
        """Raise ValueError naming the field that is out of range and the range expected.

        Every number must be finite: an infinite frame rate failed in ``int()`` with an
        OverflowError traceback, and an infinite temporal frequency or phase drew NaN frames
        (refused only when the recording was built, naming ``stimulus.frames``, not the value)."""
        # text or a bare number where a pair belongs failed with Python's "must be real number, not str" or
        # "object of type 'int' has no len()", naming no field: each value is a finite real number first
        fin = is_finite_number

        def pair(v) -> bool:
            return isinstance(v, (tuple, list, np.ndarray)) and np.ndim(v) == 1 and len(v) == 2

        checks = {"frame_rate": (fin(self.frame_rate) and self.frame_rate > 0, "a finite number > 0 Hz"),
                  "spatial_frequency": (fin(self.spatial_frequency) and self.spatial_frequency > 0,
                                        "a finite number > 0 cycles/deg"),
                  "temporal_frequency": (fin(self.temporal_frequency) and self.temporal_frequency >= 0,
                                         "a finite number >= 0 Hz"),
                  "contrast": (fin(self.contrast) and 0 <= self.contrast <= 1, "a number in [0, 1]"),
                  "phase": (fin(self.phase), "a finite number of radians"),
                  # int() truncated 16.5 px to 16 while describe() (the NWB description) said 16.5, and
                  # failed on NaN with "cannot convert float NaN to integer", naming no field
                  "frame_shape": (pair(self.frame_shape) and all(_whole(v) and v >= 1 for v in self.frame_shape),
                                  "(height, width) whole numbers >= 1 px"),
                  "field_of_view": (pair(self.field_of_view) and all(fin(v) and v > 0 for v in self.field_of_view),
                                    "(height, width) finite > 0 deg")}
        for name, (ok, expected) in checks.items():
            if not ok:
                raise ValueError(f"GratingParams.{name}: expected {expected}, got {getattr(self, name)!r}")
        # the pixel grid samples the grating: above half a cycle per pixel it aliases
        nyquist = min(h / fov for h, fov in zip(self.frame_shape, self.field_of_view)) / 2
        if self.spatial_frequency > nyquist:
            raise ValueError(f"GratingParams.spatial_frequency: {self.spatial_frequency} cycles/deg is above the pixel "
                             f"grid's limit of {nyquist:g} cycles/deg ({self.frame_shape} px over {self.field_of_view} "
                             "deg) and would alias; use more pixels or a smaller field of view")


def stimulus_field_of_view(stimulus: Optional[Stimulus]) -> Optional[Tuple[float, float]]:
    """``(height, width)`` degrees of visual angle of ``stimulus``' frames: its ``field_of_view``
    field, else (a file written before that field existed) the one its description states
    (:meth:`GratingParams.field_of_view_from`), else ``None`` (unknown: sizes in pixels only)."""
    if stimulus is None:
        return None
    if stimulus.field_of_view is not None:
        return stimulus.field_of_view
    return GratingParams.field_of_view_from(stimulus.description)


def _whole(value) -> bool:
    """A whole number of pixels (an int, or a float such as 32.0; not a bool, NaN or 16.5)."""
    return is_finite_number(value) and float(value).is_integer()


def _as_python(value):
    """A numpy scalar as its Python value; anything else (the str / None of an object column) as is."""
    return value.item() if isinstance(value, np.generic) else value


def _grating_params(params) -> GratingParams:
    """``params`` of :func:`render_drifting_gratings` as a validated :class:`GratingParams`: None gives
    the defaults, a dict of its fields is built into one (as the hub simulators take their
    parameters; a dict failed with "'dict' object has no attribute 'validate'").

    Raises:
        TypeError: ``params`` is neither a GratingParams, a dict nor None.
        ValueError: a key of the dict is not a GratingParams field (each named, with the closest
            field: :func:`~hf_neuroformer.argument_checks.as_dataclass`), or a field is out of range
            (:meth:`GratingParams.validate`).
    """
    params = as_dataclass(GratingParams, params, "params")
    params.validate()
    return params


def render_drifting_gratings(recording: SpikeRecording, column: str = "orientation_deg",
                             params: Optional[GratingParams] = None) -> SpikeRecording:
    """A copy of ``recording`` whose stimulus also holds rendered grating frames.

    Frames are drawn at ``params.frame_rate`` over the recording's time domain (frame ``k``
    shown from ``t0 + k / frame_rate``, for every onset before its end ``t1``: the last one
    may be cut short by ``t1``). A frame whose onset lies inside trial ``i``'s
    ``[start, stop)`` shows a sinusoidal grating of orientation ``trial_info[column][i]``
    (degrees; the grating drifts along that angle: 0 deg is vertical bars drifting rightward,
    angles grow counter-clockwise on the screen, so 90 deg is horizontal bars drifting upward and
    180 deg vertical bars drifting leftward) at ``t = onset - start`` s into the trial:
    ``contrast * sin(2 pi (sf * (x cos th + y sin th) - tf * t) + phase)`` with ``(x, y)`` the
    pixel centre in degrees from the frame centre (y up). Other frames are mean grey (0), and so
    are the frames of a blank trial, one whose orientation is NaN (Allen's blank sweeps; a
    ``UserWarning`` counts them and the stimulus description states them).
    Onsets are compared with trial edges to 1 ns (``FRAME_GRID``, the grid of window starts in
    :mod:`hf_neuroformer.windows`): a trial stored as ``[0.6000000000000001, 0.7000000000000001)``
    s holds the frames at 0.6 .. 0.6833 s, so every 100 ms Allen trial gets exactly 6 frames at
    60 Hz (a strict comparison gave 5, 6 or 7, the grating one frame late or one frame too long).

    Args:
        recording: a recording with ``trials`` and ``trial_info[column]`` (e.g. from
            :func:`hf_neuroformer.io.read_allen_gratings`).
        column: the trial column holding the orientation in degrees.
        params: the assumed grating parameters: a :class:`GratingParams`, a dict of its fields, or
            None (the defaults).

    Returns:
        A new :class:`~hf_neuroformer.SpikeRecording` with ``stimulus.frames`` ``(n_frames, H, W)``
        float32, ``stimulus.frame_times`` ``(n_frames,)`` float64 s and ``stimulus.description`` =
        ``params.describe()`` (plus the count of blank trials, if any); the stimulus ids and
        intervals, spikes, trials and behaviour are those of ``recording``. Frames ``recording``
        already holds are replaced, with a ``UserWarning`` that counts them.

    Warns:
        UserWarning: when trials are blank (orientation NaN), counting them; when the orientations
            look like radians (more than one value, all within
            ``[-2 pi, 2 pi]``, not all whole numbers); they are still read as degrees; when
            ``params.phase`` looks like degrees (beyond ``2 pi``); it is still read as radians.

    Raises:
        TypeError: ``params`` is neither a GratingParams, a dict nor None.
        ValueError: no trials (``trials: ...`` for a table without rows), the column is missing, not
            numeric or boolean, a ``params`` key that is no field, an orientation is infinite
            or every one is NaN (no grating to show), a parameter is out of range or not finite (each opening with the field's
            name: ``column: ...``, ``GratingParams.frame_rate: ...``); ``frame_rate`` so low that
            a trial gets no frame (every trial shows its grating at least once, or the stimulus
            would vanish silently); ``temporal_frequency`` at or above half the frame rate (the
            frames would show the drift slower, reversed or standing: temporal aliasing);
            ``frame_shape`` x the number of frames more than half of this machine's memory
            (checked before anything is allocated; the message gives the size); trials that
            overlap by more than 1 ns (``trials: ...``: one grating is shown at a time).
    """
    params = _grating_params(params)
    if abs(params.phase) > 2 * np.pi + 1e-9:
        # phase=90 (meant as a quarter cycle) ran as 90 rad, 2.3 rad away from it, without a word
        warnings.warn(f"render_drifting_gratings: GratingParams.phase={params.phase:g} is beyond 2 pi: it looks like "
                      f"degrees, but is read as radians ({np.mod(params.phase, 2 * np.pi):g} rad modulo 2 pi); "
                      "convert it with np.deg2rad first", stacklevel=2)
    if recording.trials is None or column not in recording.trial_info:
        raise ValueError(f"column: {column!r} is not a trial column of the recording "
                         f"(trial columns: {sorted(recording.trial_info)})")
    if len(recording.trials) == 0:  # was refused as "all 0 trials are NaN, blank"
        raise ValueError("trials: the recording has a trial table without rows; expected at least one trial (with "
                         f"its orientation in {column!r}) to show a grating in")
    raw = np.asarray(recording.trial_info[column])
    if raw.dtype.kind == "b":  # True / False were drawn as gratings of 1 and 0 degrees without a word
        raise ValueError(f"column: trial column {column!r} holds booleans (True / False); expected orientations in "
                         "degrees (numbers)")
    # a text column (clip names) failed with numpy's "could not convert string to float: 'NB_24.mp4'"
    theta = np.deg2rad(as_real_numbers(raw, f"column: trial column {column!r}", "numeric orientations in degrees",
                                       error=ValueError))
    # NaN (or a missing value, None in an object column): a blank trial, the mean-grey screen of Allen's
    # blank sweeps; they were refused ("non-finite orientation") with no word on what to do with them
    blank = np.isnan(theta)
    if np.isinf(theta).any():
        bad = np.flatnonzero(np.isinf(theta))
        raise ValueError(f"column: trial column {column!r} has "
                         f"{count_noun(bad.size, 'infinite orientation')} of "
                         f"{len(theta)} trials (first: trial {int(bad[0])}, {_as_python(raw[bad[0]])!r}); "
                         "expected a finite orientation in degrees, or NaN for a blank (mean grey) trial")
    if blank.all():
        raise ValueError(f"column: trial column {column!r} holds no orientation (all {len(theta)} trials are NaN, "
                         "blank); expected a finite orientation in degrees for at least one trial")
    if blank.any():
        warnings.warn(f"render_drifting_gratings: {int(blank.sum())} of {len(theta)} trials have no orientation "
                      f"(NaN in {column!r}; first: trial {int(np.flatnonzero(blank)[0])}) and are rendered as blank "
                      "trials, mean grey (0) like the time between trials; drop those trials first if they are "
                      "missing values rather than blank presentations", stacklevel=2)
    deg = np.rad2deg(theta[~blank])
    if np.unique(deg).size > 1 and np.abs(deg).max() <= 2 * np.pi + 1e-9 and not np.allclose(deg, np.round(deg)):
        # orientations in radians (0, pi/4, pi/2, ...) read as degrees drew nearly one orientation for
        # every trial (0 .. 2.4 deg) without a word
        warnings.warn(f"render_drifting_gratings: trial column {column!r} holds orientations between "
                      f"{deg.min():g} and {deg.max():g}, all within 2 pi and not whole numbers: they look like radians, "
                      f"but are read as degrees (e.g. {deg.max():g} deg); convert them with np.rad2deg first",
                      stacklevel=2)
    trials = np.asarray(recording.trials, dtype=np.float64)  # sorted by start (SpikeRecording's rule)
    # one grating on the screen at a time: each frame was drawn from the latest trial started, so
    # after a trial nested in a longer one ended the rest of the longer one was mean grey
    ended = np.maximum.accumulate(trials[:, 1])
    over = np.flatnonzero(trials[1:, 0] < ended[:-1] - FRAME_GRID) + 1
    if over.size:
        i = int(over[0])
        j = int(np.flatnonzero(trials[:i, 1] > trials[i, 0] + FRAME_GRID)[0])
        raise ValueError(f"trials: {count_noun(over.size, 'trial')} {'starts' if over.size == 1 else 'start'} before an earlier one ends (first: trial {i}, "
                         f"[{trials[i, 0]:g}, {trials[i, 1]:g}) s, inside trial {j}, [{trials[j, 0]:g}, "
                         f"{trials[j, 1]:g}) s); one grating is shown at a time, so the frames need trials that do "
                         "not overlap: keep one presentation per time (e.g. drop the nested rows of the trial table)")
    t0, t1 = recording.time_domain if recording.time_domain is not None else (
        0.0, float(recording.spike_times[-1]) if recording.spike_times.size else 0.0)
    # every onset inside the time domain: floor() left out the last frame when the span is not a
    # whole number of frame periods, so the end of a trial running to the recording's end had no frame
    n_frames = int(np.ceil((t1 - t0) * params.frame_rate - 1e-9))
    h, w = (int(v) for v in params.frame_shape)
    need, mem = n_frames * h * w * 4, _memory_bytes()  # float32 frames
    if mem is not None and need > mem // 2:
        # named both: at --frame-rate 100000 the frame rate, not the pixels, made the frames too many
        raise ValueError(f"GratingParams.frame_shape x frame_rate (--height/--width, --frame-rate): {n_frames} frames "
                         f"of {h}x{w} px at {params.frame_rate:g} Hz need {need / 2**30:.1f} GiB as float32, more than "
                         f"half of this machine's {mem / 2**30:.1f} GiB of memory; use fewer pixels (--height/--width) "
                         "or a lower frame rate (--frame-rate)")
    frame_times = t0 + np.arange(n_frames) / params.frame_rate
    # windows.trial_at's 1 ns tolerance, on both edges: start - 1 ns <= onset < stop - 1 ns
    k = np.searchsorted(trials[:, 0], frame_times + FRAME_GRID, side="right") - 1
    inside = (k >= 0) & (frame_times < trials[np.clip(k, 0, None), 1] - FRAME_GRID)
    shown = np.bincount(k[inside], minlength=len(trials))
    if (shown == 0).any():
        bad = np.flatnonzero(shown == 0)
        dur = trials[:, 1] - trials[:, 0]
        raise ValueError(f"GratingParams.frame_rate (--frame-rate): at {params.frame_rate:g} Hz, {bad.size} of "
                         f"{len(trials)} trials get no frame (first: trial {int(bad[0])}, "
                         f"[{trials[bad[0], 0]:g}, {trials[bad[0], 1]:g}) s), so their stimulus would vanish; the "
                         f"shortest trial lasts {dur.min():g} s: use a frame rate >= {1 / dur.min():g} Hz")
    # the frames sample the drift: at half a cycle per frame or more it is seen slower, reversed or
    # flickering in place (40 Hz at 60 Hz frames drifts backwards at 20 Hz), not as described
    if params.temporal_frequency > 0 and params.temporal_frequency >= params.frame_rate / 2:
        raise ValueError(f"GratingParams.temporal_frequency: {params.temporal_frequency:g} Hz is at or above half the "
                         f"frame rate ({params.frame_rate:g} Hz, --frame-rate): the frames would show a drift of "
                         f"{params.temporal_frequency / params.frame_rate:.2f} cycles per frame as a slower, reversed or "
                         "standing grating; use a temporal frequency below half the frame rate, or a higher frame "
                         "rate")
    fov_h, fov_w = params.field_of_view
    y = (np.arange(h)[::-1] + 0.5) / h * fov_h - fov_h / 2  # degrees, row 0 at the top
    x = (np.arange(w) + 0.5) / w * fov_w - fov_w / 2
    yy, xx = np.meshgrid(y, x, indexing="ij")
    frames = np.zeros((n_frames, h, w), dtype=np.float32)
    for f in np.flatnonzero(inside & ~blank[np.clip(k, 0, None)]):
        th, t = theta[k[f]], max(0.0, frame_times[f] - trials[k[f], 0])  # -1e-16 at onset
        arg = 2 * np.pi * (params.spatial_frequency * (xx * np.cos(th) + yy * np.sin(th))
                           - params.temporal_frequency * t) + params.phase
        frames[f] = params.contrast * np.sin(arg)
    old = recording.stimulus or Stimulus()
    if old.frames is not None:  # they were replaced without a word (a recording with a movie, or rendered already)
        warnings.warn(f"render_drifting_gratings: the recording already holds {len(old.frames)} frames of "
                      f"{old.frames.shape[1]}x{old.frames.shape[2]} px (description: {old.description!r}); the "
                      f"returned recording holds the {n_frames} rendered frames instead (the input is unchanged)",
                      stacklevel=2)
    description = params.describe() + (f" {int(blank.sum())} of {len(theta)} trials are blank (orientation NaN): "
                                       "mean grey throughout." if blank.any() else "")
    stim = replace(old, frames=frames, frame_times=frame_times, description=description,
                   field_of_view=params.field_of_view)
    return replace(recording, stimulus=stim)
