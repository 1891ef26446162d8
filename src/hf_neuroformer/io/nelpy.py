"""Reader for the nelpy linear-track example (rat CA1 tetrodes; LED position tracking).

The folder holds two files (format as found, see ``../shared/data/README.md``):

``spikes.mat`` (:func:`scipy.io.loadmat`)
    ``spikes`` is a cell array of 13 tetrodes; each non-empty tetrode holds a cell array of
    units, each a struct with ``time`` (spike times, s), ``timerange`` (start, stop of the
    recording, s) and ``meanrate`` (Hz). Empty tetrodes and empty unit slots are skipped. Units
    are named ``tt<tetrode>_u<slot>`` (1-based, MATLAB's numbering), area ``"CA1"``. Unit structs
    with no spike time (6 in this file: 37 structs, 31 units with spikes) are left out, named and
    counted in a warning.
``trajectory.videoPositionTracking``
    A text header ending with the line ``<End settings>``, then little-endian records
    ``<uint32 time><uint16 x><uint16 y><uint16 x2><uint16 y2>``; time in ticks of the 30 kHz
    clock (``clockrate`` in the header; the spikes' clock), x, y in camera pixels (640 x 480,
    no calibration: ``pixel scale: 0 pix/cm``), x2 = y2 = 0 (one LED).

What the reader derives, and how
--------------------------------
* **Duplicate timestamps**: a record whose time equals the previous record's is dropped (one in
  this file, at 5156.80 s, same position); the count is given in a warning.
* **Run and rest**: the animal runs for about 16 minutes; then it leaves the camera's view and
  the tracker repeats its last value ``(522, 8)`` px for the remaining ~23 minutes. The first
  sample of that final constant stretch (the last change of position; at least 2 records: a file
  whose last record moves has none) ends epoch ``"run"``
  (from the first video sample) and starts epoch ``"rest"`` (to the end of the recording).
  In ``"rest"`` the samples of ``x``, ``y`` and ``speed`` are NaN (the animal's position is not
  known there); a decoder built on these series drops and counts those windows.
* **Speed** (px/s): ``x`` and ``y`` of the run epoch are smoothed with a Gaussian kernel of
  ``speed_sigma`` seconds (default 0.25 s; :func:`scipy.ndimage.gaussian_filter1d` with sigma
  ``speed_sigma / median frame interval`` samples, ``mode="nearest"``; the frames are ~60 Hz
  with two 0.11 s gaps), differentiated with :func:`numpy.gradient` against the sample times,
  and ``speed = sqrt(dx/dt^2 + dy/dt^2)``. ``x`` and ``y`` themselves are the raw LED pixels.
  A running threshold is left to the analysis (e.g. window-mean speed above
  :data:`DEFAULT_RUN_SPEED` px/s in ``scripts/benchmark_decoding.py``).
* **On the track or not**: the track lies diagonally in the camera image (from about (135, 130)
  to (477, 400) px). The epoch ``"run"`` starts with the animal off the track (the tracker holds
  (477, 479) px for 25 s, then the animal is carried in) and ends with it being lifted off (the
  last ~5 s: the LED goes to x up to 554 px, y down to 11 px). The reader keeps those samples
  (they are what the camera saw); :class:`LinearTrack` fits the track's centre line and width to
  positions the analysis chooses (e.g. the training split's running windows only, never the
  test split) so that the off-track windows can be masked and counted.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..configuration_neuroformer import checked_float
from ..recording import BehaviourSeries, RecordingValidationError, SpikeRecording, count_noun, widen_stored_times
from .arrays import warn_if_not_seconds, warn_repeated_spikes_of, warnings_at_caller

#: Files that identify a nelpy linear-track folder.
NELPY_FILES = ("spikes.mat", "trajectory.videoPositionTracking")

#: Gaussian smoothing (s) of the LED position before differentiating it into speed.
DEFAULT_SPEED_SIGMA = 0.25

#: A running threshold suggested for this recording, px/s (window-mean speed). The track spans
#: ~350 px of x; at this speed an animal crosses it in ~23 s, while the running bouts cross it in
#: 2-5 s (100-200 px/s).
DEFAULT_RUN_SPEED = 15.0

_RECORD = np.dtype([("time", "<u4"), ("x", "<u2"), ("y", "<u2"), ("x2", "<u2"), ("y2", "<u2")])
_END = b"<End settings>"


def is_nelpy_linear_track(path) -> bool:
    """Whether ``path`` is a folder holding both files of :data:`NELPY_FILES`."""
    path = Path(path)
    return path.is_dir() and all((path / f).is_file() for f in NELPY_FILES)


def read_position_tracking(path):
    """Read a ``*.videoPositionTracking`` file.

    Args:
        path: the file.

    Returns:
        ``(times, xy, header)``: ``(n,)`` float64 seconds (ticks / clockrate), ``(n, 2)`` float64
        LED pixels, and the header as a dict of ``key: value`` strings. Records whose time repeats
        the previous one are kept here (see :func:`read_nelpy_linear_track`).

    Raises:
        RecordingValidationError: no ``<End settings>`` line, a clock rate that is not a positive
            number, or a data block whose length is not a whole number of 12-byte records.
    """
    raw = Path(path).read_bytes()
    k = raw.find(_END)
    if k < 0:
        raise RecordingValidationError(f"{path}: expected a text header ending with the line '<End settings>'")
    header = {}
    for line in raw[:k].decode("latin-1").splitlines():
        if ":" in line:
            key, val = line.split(":", 1)
            header[key.strip()] = val.strip()
    k += len(_END)
    # one line break ends the header; the records start right after it (skipping every \n / \r byte
    # ate the first bytes of a record whose time began with 0x0A or 0x0D)
    for eol in (b"\r\n", b"\n", b"\r"):
        if raw.startswith(eol, k):
            k += len(eol)
            break
    body = raw[k:]
    if len(body) % _RECORD.itemsize:
        raise RecordingValidationError(
            f"{path}: expected records of {_RECORD.itemsize} bytes after '<End settings>', got "
            f"{len(body)} bytes ({len(body) % _RECORD.itemsize} left over)"
        )
    try:
        clock = float(header.get("clockrate", "30000"))
    except ValueError:
        clock = float("nan")
    if not clock > 0:
        raise RecordingValidationError(f"{path}: header clockrate: expected a positive number, got {header.get('clockrate')!r}")
    rec = np.frombuffer(body, dtype=_RECORD)
    times = rec["time"].astype(np.float64) / clock
    xy = np.stack([rec["x"], rec["y"]], axis=1).astype(np.float64)
    return times, xy, header


def smoothed_speed(times: np.ndarray, xy: np.ndarray, sigma: float) -> np.ndarray:
    """Speed (px/s) of a 2-D position: Gaussian smoothing of ``sigma`` s, then the time gradient.

    Args:
        times: ``(n,)`` float64 strictly increasing seconds.
        xy: ``(n, 2)`` float64 positions (px).
        sigma: smoothing in seconds (converted to samples with the median sample interval).

    Returns:
        ``(n,)`` float64 speed, px/s.
    """
    from scipy.ndimage import gaussian_filter1d

    if len(times) < 2:
        return np.zeros(len(times))
    step = float(np.median(np.diff(times)))
    s = gaussian_filter1d(xy, sigma / step, axis=0, mode="nearest") if sigma > 0 else xy
    v = np.gradient(s, times, axis=0)
    return np.hypot(v[:, 0], v[:, 1])


class LinearTrack:
    """A straight track in the camera image: a centre-line segment and a half-width, fitted to
    LED positions (px).

    :meth:`fit`: the centre line is the first principal axis of the positions (through their
    mean); the half-width is ``margin`` times the ``quantile`` of the perpendicular distances to
    that line (default 1.5 x the 99th percentile); the segment spans the ``1 - quantile`` to
    ``quantile`` quantiles of the along-axis coordinates (the track's ends, where the animal
    turns and sits, are densely sampled, so these lie within a few px of the ends). A position is
    on the track when its distance to the segment is at most the half-width (a band with round
    ends of radius half-width: the margin at the ends). Which positions
    to fit is the analysis's choice; ``scripts/benchmark_decoding.py`` fits the window-mean
    positions of the TRAINING split's running windows (test plays no part). There, the distances
    form a continuum up to 59 px (99th percentile 54 px; the track is not quite straight and the
    LED is on the head) and then jump to 88-281 px for the 7 windows in which the animal is
    carried onto the track (window starts 25.25-26.75 s into the run); the default rule (81 px)
    falls in that gap (``scripts/benchmark_provenance.py`` recomputes these numbers). (Tukey's far-out fence, ``Q3 + 3 IQR`` = 48 px, was tried first and rejected because it
    cuts into that continuum of ordinary running windows.)

    Attributes:
        centre: ``(2,)`` float64 px, mean of the fitted positions.
        axis: ``(2,)`` float64 unit vector along the track.
        start, stop: along-axis extent of the segment, px from ``centre``.
        half_width: px.
    """

    def __init__(self, centre, axis, start: float, stop: float, half_width: float):
        self.centre = np.asarray(centre, dtype=np.float64).reshape(2)
        a = np.asarray(axis, dtype=np.float64).reshape(2)
        self.axis = a / np.linalg.norm(a)
        self.start, self.stop, self.half_width = float(start), float(stop), float(half_width)

    @classmethod
    def fit(cls, xy, quantile: float = 0.99, margin: float = 1.5) -> "LinearTrack":
        """Fit to ``(n, 2)`` float positions (px; rows with NaN are ignored).

        Args:
            xy: positions, px.
            quantile: of the perpendicular distances (and ``1 - quantile`` to ``quantile`` of the
                along-axis coordinates), in [0.5, 1].
            margin: factor (>= 1) on that quantile giving the half-width.

        Raises:
            ValueError: fewer than 10 finite positions, a wrong shape, or a bad quantile / margin.
        """
        if not 0.5 <= quantile <= 1:
            raise ValueError(f"quantile: expected a number in [0.5, 1], got {quantile}")
        if not margin >= 1:
            raise ValueError(f"margin: expected a number >= 1, got {margin}")
        xy = np.asarray(xy, dtype=np.float64)
        if xy.ndim != 2 or xy.shape[1] != 2:
            raise ValueError(f"xy: expected positions of shape (n, 2), got {xy.shape}")
        xy = xy[np.isfinite(xy).all(1)]
        if len(xy) < 10:
            raise ValueError(f"xy: expected at least 10 finite positions to fit a track, got {len(xy)}")
        centre = xy.mean(0)
        axis = np.linalg.svd(xy - centre, full_matrices=False)[2][0]
        q = xy - centre
        d = np.abs(q @ np.array([-axis[1], axis[0]]))
        half = margin * float(np.quantile(d, quantile))
        lo, hi = np.quantile(q @ axis, [1.0 - quantile, quantile])
        return cls(centre, axis, lo, hi, half)

    def distance(self, xy) -> np.ndarray:
        """``(n,)`` float64 distance (px) of positions ``(n, 2)`` to the centre-line segment (NaN for NaN)."""
        q = np.asarray(xy, dtype=np.float64).reshape(-1, 2) - self.centre
        u = q @ self.axis
        along = np.clip(u, self.start, self.stop)
        return np.hypot(u - along, q @ np.array([-self.axis[1], self.axis[0]]))

    def contains(self, xy) -> np.ndarray:
        """``(n,)`` bool: distance to the segment <= ``half_width`` (False for NaN positions)."""
        d = self.distance(xy)
        return np.isfinite(d) & (d <= self.half_width)

    def to_dict(self) -> dict:
        """JSON-ready attributes: ``centre`` / ``axis`` as 2-lists, ``start``, ``stop``,
        ``half_width`` in px."""
        return {"centre": self.centre.tolist(), "axis": self.axis.tolist(), "start": self.start, "stop": self.stop,
                "half_width": self.half_width}

    def __repr__(self) -> str:
        a, b = self.centre + self.start * self.axis, self.centre + self.stop * self.axis
        return (f"LinearTrack(from ({a[0]:.0f}, {a[1]:.0f}) to ({b[0]:.0f}, {b[1]:.0f}) px, "
                f"half-width {self.half_width:.0f} px)")


def _load_spikes_mat(path: Path) -> dict:
    """``scipy.io.loadmat(path)`` (structs as attribute objects, size-1 dimensions squeezed), or a
    :class:`RecordingValidationError` naming the file: scipy's own errors named none, and an empty
    file raised its ``MatReadError`` (no ``ValueError``), a traceback from ``neuroformer inspect``."""
    import scipy.io
    from scipy.io.matlab import MatReadError

    try:
        return scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    except NotImplementedError as e:  # scipy: 'Please use HDF reader for matlab v7.3 files'
        raise RecordingValidationError(
            f"{path}: saved as MATLAB v7.3 (HDF5), which scipy.io.loadmat does not read ({e}); save it again as v7 "
            "(MATLAB: save('spikes.mat', 'spikes', '-v7'))") from None
    except (MatReadError, ValueError, OSError, EOFError, TypeError) as e:  # empty, cut short, or not a .mat file
        raise RecordingValidationError(
            f"{path}: expected a MATLAB .mat file (v5 / v7, as scipy.io.loadmat reads), it could not be read "
            f"({type(e).__name__}: {e}; {path.stat().st_size} bytes: empty, cut short, or another format?)") from None


@warnings_at_caller
def read_nelpy_linear_track(
    folder,
    *,
    speed_sigma: float = DEFAULT_SPEED_SIGMA,
    session: str = "nelpy-linear-track",
) -> SpikeRecording:
    """Read the nelpy linear-track folder into a :class:`SpikeRecording`.

    Args:
        folder: the folder with ``spikes.mat`` and ``trajectory.videoPositionTracking``.
        speed_sigma: Gaussian smoothing of the position before differentiating, seconds.
        session: session name (prefixes unit tokens in a multi-session vocabulary).

    Returns:
        SpikeRecording: 31 units (28,829 spikes for the shipped file), ``spike_times``
        ``(n_spikes,)`` float64 seconds on the recording's clock (~4397-6365 s), ``unit_ids``
        ``(n_spikes,)`` int64; ``time_domain`` spanning the spikes, the units' ``timerange`` and
        the position records; behaviour ``x``, ``y`` (``(n_samples,)`` float64 px, raw LED) and
        ``speed`` (px/s, see the module docstring) at the position records' times (s), NaN in
        the rest epoch; epochs ``"run"`` and ``"rest"``.

    Warns:
        UserWarning: unit structs without spikes (left out, named); position records repeating
            the previous record's time (dropped, counted); spikes that repeat a spike time of the
            same unit exactly (kept, counted per unit); spike times spanning more than a day
            (clock ticks, not seconds?, as :func:`~hf_neuroformer.io.from_arrays` warns); position
            records that do not overlap the spikes in time (another clock?); position records that
            all hold one position (the tracker never found the LED?).

    Raises:
        FileNotFoundError: a file of :data:`NELPY_FILES` is missing.
        RecordingValidationError: ``spikes.mat`` is not a .mat file scipy reads (empty, cut short,
            another format, or MATLAB v7.3), no unit with spikes, a unit without a ``time`` field, a ``time``
            that is not a vector of numbers (a matrix, text), a spike time that is NaN, infinite or negative, or a ``timerange`` that is not 2 finite
            numbers with stop >= start (each naming ``spikes{tetrode}{slot}`` and the unit), or a
            malformed tracking file (or one of fewer than 2 records, or whose record times go back).
        ValueError: ``speed_sigma`` not a finite number of seconds >= 0 (NaN, inf, text and bools too).
    """
    folder = Path(folder)
    for f in NELPY_FILES:
        if not (folder / f).is_file():
            raise FileNotFoundError(f"nelpy linear track: {folder / f} not found (expected files {list(NELPY_FILES)})")
    # inf passed ('>= 0') and failed in the smoothing with "cannot convert float infinity to integer"; the text
    # '0.25' failed with "'>=' not supported"; True was taken as 1 s
    speed_sigma = checked_float("speed_sigma", speed_sigma, "a finite number of seconds >= 0", lambda v: v >= 0,
                                owner="read_nelpy_linear_track")
    mat = _load_spikes_mat(folder / "spikes.mat")
    if "spikes" not in mat:
        raise RecordingValidationError(f"{folder / 'spikes.mat'}: expected a variable 'spikes' (cell array of tetrodes)")
    trains, names, ranges, silent = [], [], [], []
    for i, tetrode in enumerate(np.atleast_1d(mat["spikes"])):
        for j, unit in enumerate(np.atleast_1d(tetrode)):
            slot, name = f"spikes{{{i + 1}}}{{{j + 1}}}", f"tt{i + 1}_u{j + 1}"  # the file's cell, the unit's name
            if isinstance(unit, np.ndarray) and unit.size == 0:
                continue  # empty slot
            if not hasattr(unit, "time"):
                raise RecordingValidationError(
                    f"{folder / 'spikes.mat'}: {slot}: expected a struct with field 'time'"
                )
            raw = np.asarray(unit.time)
            # (squeeze_me: a column or row of times reads 1-D, one spike a scalar) a 2-column 'time' (times and
            # another field) was flattened into one spike train without a word, and text failed in numpy's
            # "could not convert string to float", naming neither the file nor the unit
            if raw.ndim > 1 or (raw.size and raw.dtype.kind not in "iuf"):
                raise RecordingValidationError(
                    f"{folder / 'spikes.mat'}: {slot}.time (unit {name}): expected a vector of spike times in "
                    f"seconds, got shape {raw.shape} dtype {raw.dtype}")
            t = np.atleast_1d(widen_stored_times(raw, f"{slot}.time", f"read_nelpy_linear_track({str(folder)!r})"))
            if t.size == 0:
                silent.append(name)  # a unit struct without spikes: left out, counted below
                continue
            bad = np.flatnonzero(~(np.isfinite(t) & (t >= 0)))
            if bad.size:  # SpikeRecording's 'spike 3 (in the order given)' named neither the unit nor the file
                raise RecordingValidationError(
                    f"{folder / 'spikes.mat'}: {slot}.time[{bad[0]}] (unit {name}): "
                    f"expected finite spike times >= 0 s, got {t[bad[0]]} ({bad.size} such in this unit)")
            trains.append(t)
            names.append(name)
            if hasattr(unit, "timerange"):
                r = np.asarray(unit.timerange, dtype=np.float64).ravel()
                # a NaN or reversed range was passed over without a word (min / max skipped it), and one of
                # another size failed in np.asarray(ranges) with numpy's "inhomogeneous shape"
                if r.size != 2 or not np.all(np.isfinite(r)) or r[1] < r[0]:
                    raise RecordingValidationError(
                        f"{folder / 'spikes.mat'}: {slot}.timerange (unit {name}): "
                        f"expected 2 finite numbers (start, stop) in seconds with stop >= start, got {r.tolist()}")
                ranges.append(r)
    if not trains:
        raise RecordingValidationError(f"{folder / 'spikes.mat'}: no unit with spikes")
    if silent:
        warnings.warn(f"read_nelpy_linear_track: left out {count_noun(len(silent), 'unit')} of {folder / 'spikes.mat'} with no "
                      f"spike time ({', '.join(silent)}); {len(trains)} units with spikes are read", stacklevel=2)
    st = np.concatenate(trains)
    ui = np.concatenate([np.full(len(t), k, dtype=np.int64) for k, t in enumerate(trains)])
    lo, hi = float(st.min()), float(np.nextafter(st.max(), np.inf))
    if ranges:
        r = np.asarray(ranges)
        lo, hi = min(lo, float(r[:, 0].min())), max(hi, float(r[:, 1].max()))

    times, xy, header = read_position_tracking(folder / "trajectory.videoPositionTracking")
    clock = float(header.get("clockrate", "30000"))  # (a positive number: read_position_tracking checked it)
    if len(times) < 2:  # a file cut after its header failed with numpy's "index -1 is out of bounds"
        raise RecordingValidationError(
            f"{folder / 'trajectory.videoPositionTracking'}: expected at least 2 position records, got {len(times)} "
            "(a file cut short?)")
    dup = np.flatnonzero(np.diff(times) <= 0) + 1
    if dup.size:
        if np.any(np.diff(times) < 0):
            i = int(np.flatnonzero(np.diff(times) < 0)[0])
            raise RecordingValidationError(
                f"{folder / 'trajectory.videoPositionTracking'}: record {i + 1} ({times[i + 1]} s) goes back in time "
                f"from record {i} ({times[i]} s): expected times that never decrease (a clock reset, or two "
                "sessions' records in one file?)"
            )
        warnings.warn(f"read_nelpy_linear_track: dropped {count_noun(dup.size, 'position record')} "
                      f"repeating the previous "
                      f"record's time (first at {times[dup[0]]:.4f} s)", stacklevel=2)
        keep = np.ones(len(times), dtype=bool)
        keep[dup] = False
        times, xy = times[keep], xy[keep]
    # the final constant stretch: the animal is out of view, the tracker repeats its last value
    changed = np.flatnonzero(np.any(np.diff(xy, axis=0) != 0, axis=1))
    freeze = int(changed[-1]) + 1 if changed.size else len(times)
    if not changed.size:  # read as a whole session of running at speed 0 px/s, without a word
        warnings.warn(f"read_nelpy_linear_track: every one of the {len(times)} position records of "
                      f"{folder / 'trajectory.videoPositionTracking'} holds the same position {tuple(xy[0].tolist())} px "
                      "(the tracker never found the LED?); x, y and a speed of 0 px/s are kept as recorded, in one "
                      "epoch 'run': leave position and speed out of any analysis of this session")
    if freeze == len(times) - 1:  # the last record moved: no constant stretch (its position was set NaN)
        freeze = len(times)
    run_end = float(times[freeze]) if freeze < len(times) - 1 else float(times[-1])
    speed = np.full(len(times), np.nan)
    speed[:freeze] = smoothed_speed(times[:freeze], xy[:freeze], speed_sigma)
    xy = xy.copy()
    xy[freeze:] = np.nan
    hi = max(hi, float(np.nextafter(times[-1], np.inf)))
    epochs = {"run": (float(times[0]), run_end)}
    if run_end < hi:
        epochs["rest"] = (run_end, hi)
    behaviour = {
        "x": BehaviourSeries(times, xy[:, 0], "px"),
        "y": BehaviourSeries(times, xy[:, 1], "px"),
        "speed": BehaviourSeries(times, speed, "px/s"),
    }
    rec = SpikeRecording.from_unsorted(
        st, ui, unit_names=names, unit_areas=["CA1"] * len(names), time_domain=(min(lo, float(times[0])), hi),
        epochs=epochs, behaviour=behaviour, session=session,
    )
    # a spike listed twice in a unit's 'time' was kept as two tokens without a word, as the other readers say
    warn_repeated_spikes_of(rec, f"read_nelpy_linear_track: {folder / 'spikes.mat'}",
                            "drop them from the unit's 'time' field to leave them out")
    # times in clock ticks (MClust's 0.1 ms timestamps) read as a session of months, and a tracking file on
    # another clock as position that no spike window reaches, both without a word
    warn_if_not_seconds(rec, f"read_nelpy_linear_track: the spike times of {folder / 'spikes.mat'}",
                        "divide each unit's 'time' by the ticks per second (the file's times are read as seconds)")
    if times[-1] < st.min() or times[0] > st.max():
        warnings.warn(f"read_nelpy_linear_track: the position records of {folder / 'trajectory.videoPositionTracking'} "
                      f"({times[0]:.6g} to {times[-1]:.6g} s at clockrate {clock:g}) and the spikes of "
                      f"{folder / 'spikes.mat'} ({st.min():.6g} to {st.max():.6g} s) do not overlap: no spike window has "
                      "a position or speed. Are both on one clock (the header's clockrate, the spikes in seconds)?")
    return rec


__all__ = [
    "LinearTrack",
    "DEFAULT_RUN_SPEED",
    "DEFAULT_SPEED_SIGMA",
    "NELPY_FILES",
    "is_nelpy_linear_track",
    "read_nelpy_linear_track",
    "read_position_tracking",
    "smoothed_speed",
]
