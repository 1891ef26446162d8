"""Fidelity of a generated recording against the recorded one.

Every function takes two :class:`SpikeRecording` objects with the same units and compares them
on the generated recording's ``support`` (its ``time_support`` rows are the generated windows,
e.g. 0.1 s windows, contiguous within a trial, with gaps between trials). Real spikes outside
that support are never counted. Where a metric needs contiguous time (bins, ISIs) the support
rows are first merged into *segments*: rows that touch (a row starts within 1 ns of where the
previous one stops) form one segment, and nothing (a bin, an ISI) ever spans the gap between
two segments.

Each function returns a JSON-serialisable dict: summary values are Python floats (``NaN`` where
undefined), per-unit lists hold ``None`` where a unit's value is undefined, and whatever was left
out is counted in an ``n_...`` field. Nothing here imports the model (GUIDE sec. 1).

========================================  ==================================================
function                                  what it compares
========================================  ==================================================
:func:`firing_rate_correlation`           mean rates (Hz): Pearson r over units, per-unit
                                          generated/recorded ratio
:func:`binned_count_correlation`          per-unit Pearson r of counts in bins
:func:`psth_correlation`                  per-unit Pearson r of trial-averaged PSTHs (Hz)
:func:`isi_distance`                      per-unit two-sample KS statistic of ISI distributions,
                                          and its floor from dt-bin quantisation
:func:`fano_factor`                       per-unit Fano factor (variance / mean of counts)
:func:`pairwise_correlation_structure`    Pearson r of the unit-by-unit count correlation
                                          matrices (upper triangles)
:func:`unit_id_f1`                        set-based unit-id F1 per window (Neuroformer Sec. 4)
:func:`spike_timing_f1`                   spike-timing precision / recall / F1: same unit within a
                                          tolerance (5, 10, 25 ms), one to one; with chance levels
:func:`compare_recordings`                all of the above, plus spike counts and duration
========================================  ==================================================
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..argument_checks import check_bin_size, check_min_isis, check_whole, check_min_coverage as _check_min_coverage
from ..argument_checks import check_spike_tolerances as _check_spike_tolerances, tolerance_label as _tolerance_label
from ..argument_checks import narrow_float_seconds_message
from ..binning import bin_index, n_full_bins, narrow_float_times_message, on_time_grid
from ..configuration_neuroformer import is_real_number
from ..recording import SpikeRecording, count_noun, in_intervals
from .bits_per_spike import dt_bin_widths

#: Tolerance (s) for "touching" support rows and for a trial edge lying on a segment edge: the
#: generated windows lie on a 1 ns grid (see ``NeuroformerTokenizer.encode_window``).
EDGE_TOLERANCE = 1e-9


class FidelityInputError(ValueError):
    """A bad argument to a fidelity metric; the message names the field and what was expected."""


# --------------------------------------------------------------------------- helpers
def _check_pair(real: SpikeRecording, generated: SpikeRecording) -> None:
    """Refuse to compare recordings that do not describe the same units over the same time."""
    if list(real.unit_names) != list(generated.unit_names):
        # the first three names of each side were shown, the same names on both sides when the lists
        # differ further on (a unit added at the end) or only in order
        r, g = list(real.unit_names), list(generated.unit_names)
        only_r, only_g = [x for x in r if x not in set(g)], [x for x in g if x not in set(r)]
        if only_r or only_g:
            where = "; ".join(p for p in (f"{len(only_g)} not in the real recording ({only_g[:3]})" if only_g else "",
                                          f"{len(only_r)} real units missing ({only_r[:3]})" if only_r else "") if p)
        else:
            i = next(k for k, (a, b) in enumerate(zip(r, g)) if a != b) if len(r) == len(g) else min(len(r), len(g))
            where = f"the same names in another order: unit {i} is {r[i]!r} in the real recording, {g[i]!r} here"
        raise FidelityInputError(
            f"generated.unit_names: expected the real recording's {real.n_units} units, got {generated.n_units} "
            f"({where}); was it generated from another recording?"
        )
    if generated.time_domain is None or len(generated.support) == 0:
        raise FidelityInputError(
            "generated.time_domain: expected the windows (time_support) the generated spikes cover, got none"
        )
    if real.time_domain is None:
        raise FidelityInputError("real.time_domain: expected the time span of the recorded spikes, got None")
    lo, hi = generated.support[0, 0], generated.support[-1, 1]
    if lo < real.time_domain[0] - 1e-9 or hi > real.time_domain[1] + 1e-9:
        raise FidelityInputError(
            f"generated.time_support: the generated windows span [{lo:.3f}, {hi:.3f}] s but the real recording "
            f"covers [{real.time_domain[0]:.3f}, {real.time_domain[1]:.3f}] s; pass the recording (and --epoch) "
            "the spikes were generated from"
        )
    # inside the time domain is not enough: in a hole of the recording's time support (between two
    # intervals of an epoch union) it holds no spikes, and the generated spikes there would be
    # compared with a silence that was never recorded. Rows that touch (an epoch union of abutting
    # intervals) are one stretch of recorded time, as plan_splits takes them: a generated window across
    # their shared edge was refused as lying in a hole
    rs, gs = support_segments(real.support), generated.support
    k = np.searchsorted(rs[:, 0], gs[:, 0] + EDGE_TOLERANCE, side="right") - 1
    hole = np.flatnonzero((k < 0) | (gs[:, 1] > rs[np.clip(k, 0, None), 1] + EDGE_TOLERANCE))
    if hole.size:
        i = int(hole[0])
        raise FidelityInputError(
            f"generated.time_support: {hole.size} of the {len(gs)} generated windows {'is' if hole.size == 1 else 'are'} not inside the real "
            f"recording's time support ({len(real.support)} intervals), where it holds no spikes; window {i} is "
            f"[{gs[i, 0]:.4f}, {gs[i, 1]:.4f}) s; pass the recording (and --epoch) the spikes were generated from"
        )


def _check_bin_size(bin_size: float, field: str = "bin_size") -> float:
    """:func:`hf_neuroformer.argument_checks.check_bin_size`, raising :class:`FidelityInputError`."""
    return check_bin_size(bin_size, field, FidelityInputError)


#: fewest values a Pearson r is computed over: with 2 it is +1 or -1 whatever they are (so the
#: binned metrics need 3 bins, the PSTH correlation 3 bins per trial, fano_corr / rate_corr 3 units)
MIN_CORR_POINTS = 3


def bins_fit_problem(bin_size: float, segments: np.ndarray, what: str, need: int = MIN_CORR_POINTS):
    """Why ``bin_size`` (s) is too long for ``segments`` (``(n, 2)`` float64 s), or None.

    Returns:
        None when ``bin_size`` tiles the segments with at least ``need`` whole bins (no bin
        spans a gap) or ``segments`` is empty (the caller's own checks name that); else
        ``(why, longest)``: ``why`` (str) names the whole bins it leaves, the segments' lengths
        and that ``what`` (the metrics that use it) need ``need``; ``longest`` (float s, or None
        when no width gives ``need`` bins) is the largest bin width that does.
    """
    lengths = (segments[:, 1] - segments[:, 0]) if len(segments) else np.zeros(0)
    n_bins = sum(n_full_bins(x, bin_size) for x in lengths)
    if not len(lengths) or n_bins >= need:
        return None
    fits = [x / m for x in lengths for m in range(1, need + 1)
            if sum(n_full_bins(y, x / m) for y in lengths) >= need]
    why = (f"{bin_size:g} s leaves {count_noun(n_bins, 'whole bin')} in the generated windows "
           f"({count_noun(len(lengths), 'contiguous segment')}, longest {lengths.max():g} s, {lengths.sum():g} s in all; no bin spans a gap), and {what} "
           f"need at least {need}")
    return why, (max(fits) if fits else None)


def check_bins_fit(bin_size: float, segments: np.ndarray, field: str, what: str, need: int = MIN_CORR_POINTS) -> None:
    """Refuse a ``bin_size`` (s) that tiles ``segments`` (``(n, 2)`` float64 s) with fewer than
    ``need`` whole bins, which ``what`` (the metrics that use it) needs (:func:`bins_fit_problem`).

    Raises:
        FidelityInputError: ``field: ...`` naming the bins it leaves, the segments' lengths and the
            largest bin width that gives ``need`` bins.
    """
    problem = bins_fit_problem(bin_size, segments, what, need)
    if problem is not None:
        why, longest = problem
        raise FidelityInputError(f"{field}: {why}; expected a bin "
                                 + (f"of at most {width_at_most(longest)} s" if longest else "shorter than the windows"))


def width_at_most(width: float) -> str:
    """``width`` (s, > 0) printed for an "at most" bound, with 6 significant digits rounded down,
    so the printed bin fits too (0.0617283945 -> '0.0617283', not '0.0617284', which holds one bin
    fewer; 0.049999999999998934 -> '0.0499999', not '0.05'); in full if even that rounds up."""
    text = f"{width:.6g}"
    if float(text) <= width:
        return text
    digits = 5 - math.floor(math.log10(width))
    text = f"{math.floor(width * 10 ** digits) / 10 ** digits:.6g}"
    return text if float(text) <= width else repr(float(width))


def _counts_in_intervals(rec: SpikeRecording, intervals: np.ndarray) -> np.ndarray:
    """``(n_intervals, n_units)`` int64 spike counts of ``rec`` in each ``[start, stop)`` row.

    Rows may overlap (a spike is then counted in each row that holds it).
    """
    counts = np.zeros((len(intervals), rec.n_units), dtype=np.int64)
    if len(intervals) == 0:
        return counts
    lo = np.searchsorted(rec.spike_times, intervals[:, 0], side="left")
    hi = np.searchsorted(rec.spike_times, intervals[:, 1], side="left")
    for k, (a, b) in enumerate(zip(lo, hi)):
        if b > a:
            counts[k] = np.bincount(rec.unit_ids[a:b], minlength=rec.n_units)
    return counts


def _counts_in_sorted_bins(rec: SpikeRecording, bins: np.ndarray) -> np.ndarray:
    """Like :func:`_counts_in_intervals` for sorted, non-overlapping rows, vectorised."""
    counts = np.zeros((len(bins), rec.n_units), dtype=np.int64)
    if len(bins) == 0 or rec.n_spikes == 0:
        return counts
    t = rec.spike_times
    idx = np.searchsorted(bins[:, 0], t, side="right") - 1
    ok = idx >= 0
    ok[ok] = t[ok] < bins[idx[ok], 1]
    np.add.at(counts, (idx[ok], rec.unit_ids[ok]), 1)
    return counts


def support_segments(support: np.ndarray, tolerance: float = EDGE_TOLERANCE) -> np.ndarray:
    """Merge touching ``[start, stop)`` rows into contiguous segments.

    Args:
        support: ``(n, 2)`` float64 seconds, sorted and non-overlapping (a recording's
            ``support``).
        tolerance: rows whose start lies within this many seconds of the previous stop are
            merged.

    Returns:
        ``(n_segments, 2)`` float64 seconds.

    Raises:
        FidelityInputError: ``support`` not ``(n, 2)`` (an ``(n, 3)`` array was read as rows of two), a
            row not finite or with stop < start, or rows not sorted by start (a row starting before the
            previous one was merged into it: ``[[1, 2], [0, 1]]`` came out as ``[[1, 2]]``, dropping
            a second of windows without a word).
    """
    raw = np.asarray(support, dtype=np.float64)
    if raw.size and (raw.ndim != 2 or raw.shape[1] != 2):
        raise FidelityInputError(f"support: expected an (n, 2) array of [start, stop) s, got shape {raw.shape}")
    support = raw.reshape(-1, 2)
    bad = np.flatnonzero(~np.isfinite(support).all(1) | (support[:, 1] < support[:, 0]))
    if bad.size:
        raise FidelityInputError(f"support: expected finite rows with stop >= start, row {bad[0]} is "
                                 f"{support[bad[0]].tolist()}")
    back = np.flatnonzero(np.diff(support[:, 0]) < 0)
    if back.size:
        i = int(back[0])
        raise FidelityInputError(f"support: expected rows sorted by start, row {i + 1} {support[i + 1].tolist()} starts "
                                 f"before row {i} {support[i].tolist()}")
    segs: list[list[float]] = []
    for a, b in support:
        if segs and a <= segs[-1][1] + tolerance:
            segs[-1][1] = max(segs[-1][1], float(b))
        else:
            segs.append([float(a), float(b)])
    return np.asarray(segs, dtype=np.float64).reshape(-1, 2)


def _tile(segments: np.ndarray, bin_size: float) -> tuple[np.ndarray, int]:
    """Bins of ``bin_size`` s tiling each segment from its start; ``(bins, n_partial_dropped)``.

    Consecutive bins share their edge exactly; a trailing partial bin is left out and counted.
    Edges after the segment start lie on the 1 ns grid of the generated windows (``0.0 + 3 * 0.1``
    is ``0.30000000000000004``, which put a spike at 0.3 s in the bin before the window it starts).
    """
    bins, partial = [], 0
    for a, b in segments:
        n = n_full_bins(b - a, bin_size)
        if a + n * bin_size < b - 1e-9:
            partial += 1
        if n > 0:
            edges = on_time_grid(a + bin_size * np.arange(n + 1))
            edges[0] = a
            bins.append(np.stack([edges[:-1], edges[1:]], 1))
    return (np.concatenate(bins) if bins else np.zeros((0, 2))), partial


def _trial_coverage(trials: np.ndarray, segments: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(fraction, covered_s)`` per trial: the part of ``[start, stop)`` that the segment holding
    the trial start covers from the start on (0 when the start lies outside every segment)."""
    trials = np.asarray(trials, dtype=np.float64).reshape(-1, 2)
    covered = np.zeros(len(trials))
    if len(segments) and len(trials):
        idx = np.searchsorted(segments[:, 0], trials[:, 0] + EDGE_TOLERANCE, side="right") - 1
        ok = idx >= 0
        ok[ok] = trials[ok, 0] < segments[idx[ok], 1]
        t0, t1, seg_stop = trials[ok, 0], trials[ok, 1], segments[idx[ok], 1]
        covered[ok] = np.where(t1 <= seg_stop + EDGE_TOLERANCE, t1, np.minimum(t1, seg_stop)) - t0
    return covered / (trials[:, 1] - trials[:, 0]), covered


def check_min_coverage(min_coverage, field: str = "min_coverage") -> float:
    """``min_coverage`` as a float, or a :class:`FidelityInputError` naming ``field`` unless it is a
    fraction in ``(0, 1]`` (:func:`hf_neuroformer.argument_checks.check_min_coverage`, which
    ``neuroformer evaluate`` applies before torch is imported)."""
    return _check_min_coverage(min_coverage, field, FidelityInputError)


def _trial_rows(trials) -> np.ndarray:
    """``trials`` as an ``(n_trials, 2)`` float64 array of ``[start, stop)`` s, or a
    :class:`FidelityInputError` naming ``trials``: not that shape, or a row not finite or with
    stop <= start (the first named)."""
    trials = np.asarray(trials, dtype=np.float64)
    if trials.ndim != 2 or trials.shape[1] != 2:
        raise FidelityInputError(f"trials: expected an (n_trials, 2) array of [start, stop) s, got shape {trials.shape}")
    bad = np.flatnonzero(~np.isfinite(trials).all(1) | (trials[:, 1] <= trials[:, 0]))
    if bad.size:
        raise FidelityInputError(f"trials: expected finite rows with stop > start, trial {bad[0]} is {trials[bad[0]].tolist()}")
    return trials


def usable_trials(trials: np.ndarray, support: np.ndarray, min_coverage: float = 0.95, field: str = "min_coverage"):
    """The trials a trial-aligned metric can use on a generated support, and their common length.

    A trial is used when the contiguous support segment holding its start covers at least
    ``min_coverage`` of it (``1.0``: only trials fully inside the support). All used trials are
    then cut to the shortest covered length, so that no time without generated spikes is scored.
    (Trial-mode generation tiles a trial with whole windows: 0.1 s windows cover 1.00 s of a
    1.01 s trial, which ``min_coverage=1`` would reject.)

    Args:
        trials: ``(n_trials, 2)`` float64 ``[start, stop)`` seconds.
        support: ``(n, 2)`` float64 generated windows, s (merged with :func:`support_segments`).
        min_coverage: fraction of a trial that must be covered, in ``(0, 1]``.
        field: the caller's name for ``min_coverage``, for the error message.

    Returns:
        ``(used, duration, n_skipped, n_cut)``: ``(n_used, 2)`` float64 trial rows used,
        the common length (s; NaN when none is used), the number of trials skipped (covered
        less than ``min_coverage``) and of used trials cut shorter than their own length.

    Raises:
        FidelityInputError: ``trials`` is not ``(n, 2)`` finite rows with stop > start, or
            ``min_coverage`` is not in ``(0, 1]``.
    """
    trials = _trial_rows(trials)
    check_min_coverage(min_coverage, field)
    frac, covered = _trial_coverage(trials, support_segments(support))
    ok = frac >= min_coverage - 1e-9
    if not ok.any():
        return trials[ok], float("nan"), int((~ok).sum()), 0
    duration = float(covered[ok].min())
    n_cut = int(((trials[ok, 1] - trials[ok, 0]) > duration + EDGE_TOLERANCE).sum())
    return trials[ok], duration, int((~ok).sum()), n_cut


def no_usable_trial_reason(trials: np.ndarray, support: np.ndarray, min_coverage: float,
                           option: str = "min_trial_coverage") -> str:
    """Why :func:`usable_trials` used none of ``trials`` (``(n, 2)`` s) on ``support``, and the
    coverage that would use some: trial-mode generation tiles a trial with whole windows, so 0.03 s
    windows cover 0.09 s of a 0.1 s trial (0.9, below the default 0.95) and every trial was skipped
    with no word of how close they came. ``option`` names the coverage setting in the advice
    (``"--min-trial-coverage"`` for ``neuroformer evaluate``)."""
    trials = np.asarray(trials, dtype=np.float64).reshape(-1, 2)
    frac, _ = _trial_coverage(trials, support_segments(support))
    head = f"none of the {len(trials)} trials is covered (>= {min_coverage:g} of it) by the generated windows"
    best = float(frac.max()) if len(frac) else 0.0
    if not best > 0:
        return head + " (no trial starts inside them)"
    text = f"{best:.6g}"
    if float(text) > best + 1e-9:  # rounded up past the tolerance usable_trials allows
        text = width_at_most(best)
    n = int((frac >= float(text) - 1e-9).sum())
    return (f"{head}; the best covered ({n} trial{'s' if n > 1 else ''}) {'are' if n > 1 else 'is'} covered for "
            f"{text} of {'their' if n > 1 else 'its'} length: a {option} of {text} uses "
            f"{'them' if n > 1 else 'it'}")


#: relative spread below which a vector counts as constant for :func:`_pearson` (float64 rounding
#: of a sum of ~1e3 terms is ~1e-13; a real difference of 1e-10 between Fano factors or rates is none)
CONSTANT_RTOL = 1e-10


def _nearly_constant(v: np.ndarray) -> bool:
    """True when ``max(v) - min(v) <= CONSTANT_RTOL * max(|v|)`` (all zeros included)."""
    return bool(np.ptp(v) <= CONSTANT_RTOL * np.max(np.abs(v)))


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r of two equal-length vectors; NaN with fewer than :data:`MIN_CORR_POINTS` (3)
    values (two points always give r = +1 or -1, whatever they are: fano_corr over two units,
    a PSTH correlation over two bins) or a constant one. Constant means a spread (max - min)
    within :data:`CONSTANT_RTOL` of the largest magnitude: values equal but for rounding (the Fano
    factor 1 of units with one spike each came out as 1.0000000000000022 and 1.000000000000002)
    gave an r of the rounding noise (fano_corr -0.72) instead of NaN."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size < MIN_CORR_POINTS or _nearly_constant(x) or _nearly_constant(y):
        return float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    den = np.sqrt(np.sum(dx * dx) * np.sum(dy * dy))
    if not den > 0:
        return float("nan")
    return float(np.clip(np.sum(dx * dy) / den, -1.0, 1.0))


def _summary(values: np.ndarray, how) -> float:
    ok = np.isfinite(values)
    return float(how(values[ok])) if ok.any() else float("nan")


def _as_list(values: np.ndarray) -> list[float | None]:
    return [float(v) if np.isfinite(v) else None for v in np.asarray(values, dtype=np.float64)]


def _corr_reason(x: np.ndarray, y: np.ndarray, points: str, one: str, value: str, unit: str = "") -> str:
    """Why :func:`_pearson` of the recorded ``x`` and generated ``y`` values (one per ``one`` of the
    ``points``: ``"unit"`` of the ``"units"``, ``"pair"`` of the ``"unit pairs"``) is NaN: fewer than :data:`MIN_CORR_POINTS` of them, or the same
    ``value`` (``"Fano factor"``) for every one in either recording (``unit`` follows the value: ``" Hz"``).
    The wording of ``rate_corr_reason``, for ``fano_corr_reason`` and ``pairwise_corr_r_reason``."""
    if x.size < MIN_CORR_POINTS:
        return f"fewer than {MIN_CORR_POINTS} {points} ({x.size})"
    for name, v in (("recorded", x), ("generated", y)):
        if _nearly_constant(v):
            return f"every {one} has the same {name} {value} ({float(v[0]):.6g}{unit})"
    return f"the {value}s vary too little across {points} for a correlation"


# --------------------------------------------------------------------------- firing rates
def _rate_corr_reason(r: np.ndarray, g: np.ndarray) -> str:
    """Why :func:`_pearson` of the recorded rates ``r`` and generated rates ``g`` (``(n_units,)``,
    Hz) is NaN: too few units, no spikes, or rates equal across units."""
    if r.size < MIN_CORR_POINTS:
        return _corr_reason(r, g, "units", "unit", "rate")
    if not r.any() and not g.any():
        return "neither recording has a spike in the generated windows (every rate is 0 Hz)"
    for name, v in (("recorded", r), ("generated", g)):
        if not v.any():
            return f"the {name} recording has no spike in the generated windows (every {name} rate is 0 Hz)"
    return _corr_reason(r, g, "units", "unit", "rate", " Hz")


def firing_rate_correlation(real: SpikeRecording, generated: SpikeRecording) -> dict[str, object]:
    """Recorded vs generated mean firing rates (Hz): Pearson r over units and per-unit ratios.

    Rates are spike counts inside the generated support divided by its total length (s).
    The ratio of a unit is ``generated rate / recorded rate``; it is undefined (``None``) for a
    unit silent in the recording. ``rate_ratio_median`` is over units active in the recording
    (a unit silent only in the generated recording contributes a ratio of 0);
    ``rate_log2_ratio_mean_abs`` is the mean of ``|log2(ratio)|`` over units active in both
    (0 for a perfect match, 1 for a factor of 2 either way). Units silent in one or both are
    counted.

    Returns:
        dict with ``rate_corr`` (Pearson r, NaN if either rate vector is constant or there are
        fewer than 3 units), ``rate_corr_reason`` (why ``rate_corr`` is NaN, e.g. neither recording
        has a spike in the generated windows; ``None`` when it is a number),
        ``real_rates``, ``generated_rates`` (lists, Hz), ``rate_ratio_per_unit`` (list, ``None``
        where the recorded rate is 0), ``rate_ratio_median``, ``rate_log2_ratio_mean_abs``,
        ``n_units_silent_real_only``, ``n_units_silent_generated_only``, ``n_units_silent_both``.

    Raises:
        FidelityInputError: the recordings have different units, or the generated windows do not
            lie in the recording (see :func:`compare_recordings`).
    """
    _check_pair(real, generated)
    sup = generated.support
    dur = float(np.sum(sup[:, 1] - sup[:, 0]))
    r = _counts_in_sorted_bins(real, sup).sum(0) / dur
    g = _counts_in_sorted_bins(generated, sup).sum(0) / dur
    active_r, active_g = r > 0, g > 0
    ratio = np.full(real.n_units, np.nan)
    ratio[active_r] = g[active_r] / r[active_r]
    both = active_r & active_g
    log2 = np.abs(np.log2(ratio[both]))
    corr = _pearson(r, g)
    return {
        "rate_corr": corr,
        "rate_corr_reason": None if np.isfinite(corr) else _rate_corr_reason(r, g),
        "real_rates": r.tolist(),
        "generated_rates": g.tolist(),
        "rate_ratio_per_unit": _as_list(ratio),
        "rate_ratio_median": _summary(ratio, np.median),
        "rate_log2_ratio_mean_abs": float(log2.mean()) if log2.size else float("nan"),
        "n_units_silent_real_only": int((~active_r & active_g).sum()),
        "n_units_silent_generated_only": int((active_r & ~active_g).sum()),
        "n_units_silent_both": int((~active_r & ~active_g).sum()),
    }


# --------------------------------------------------------------------------- binned counts
def binned_count_correlation(real: SpikeRecording, generated: SpikeRecording, bin_size: float = 0.1) -> dict[str, object]:
    """Per-unit Pearson r between recorded and generated spike counts in bins of ``bin_size`` s.

    Bins tile each segment of the support (touching windows merged) from its start; a trailing
    partial bin is left out (and counted in ``n_partial_bins_dropped``). Units whose counts are
    constant in either recording have no defined r and are left out of the mean (counted in
    ``n_units_undefined``).

    Returns:
        ``{"binned_count_corr_mean", "binned_count_corr_mean_reason", "binned_count_corr_per_unit",
        "n_bins", "bin_size_s", "n_units_undefined", "n_partial_bins_dropped"}``;
        ``binned_count_corr_mean_reason`` says why the mean is NaN (fewer than 3 bins, or every
        unit's counts constant in one recording, e.g. a silent generated one), ``None`` when it is
        a number.

    Raises:
        FidelityInputError: ``bin_size`` is not a positive number of seconds, or the pair is
            not comparable.
    """
    _check_pair(real, generated)
    bin_size = _check_bin_size(bin_size)
    bins, partial = _tile(support_segments(generated.support), bin_size)
    rc = _counts_in_sorted_bins(real, bins)
    gc = _counts_in_sorted_bins(generated, bins)
    per_unit = np.array([_pearson(rc[:, u], gc[:, u]) for u in range(real.n_units)])
    ok = np.isfinite(per_unit)
    reason = None
    if not ok.any():  # NaN was printed by evaluate without a word (a silent generated recording, say)
        reason = (f"fewer than {MIN_CORR_POINTS} whole bins of {bin_size:g} s in the generated windows ({len(bins)})"
                  if len(bins) < MIN_CORR_POINTS else
                  _flat_reason(rc, gc, "binned count", f"{bin_size:g} s bin of the {len(bins)}") if real.n_units else
                  "no units")
    return {
        "binned_count_corr_mean": _summary(per_unit, np.mean),
        "binned_count_corr_mean_reason": reason,
        "binned_count_corr_per_unit": _as_list(per_unit),
        "n_bins": len(bins),
        "bin_size_s": float(bin_size),
        "n_units_undefined": int((~ok).sum()),
        "n_partial_bins_dropped": int(partial),
    }


# --------------------------------------------------------------------------- PSTH
def trial_psth(recording: SpikeRecording, trials: np.ndarray, bin_size: float, duration: float) -> np.ndarray:
    """Trial-averaged peri-stimulus time histogram of every unit, aligned on trial starts.

    Bin ``k`` covers ``[start + k*bin_size, start + (k+1)*bin_size)`` of each trial, for
    ``k < floor(duration / bin_size)``; spikes after the last full bin are not counted. A spike
    at ``t`` is in bin ``floor((t - start) / bin_size + 1e-9 + min(0.5 ns / bin_size, 1e-3))`` (the
    tokenizer's dt-bin rule, :func:`hf_neuroformer.binning.bin_index`), so a spike on an edge, or less
    than 0.5 ns before it, stays in the bin it starts although ``(0.3 - 0.0) / 0.1`` is ``2.999...``;
    the number of full bins is :func:`hf_neuroformer.binning.n_full_bins` of ``duration``, the same rule.

    Args:
        recording: the spikes.
        trials: ``(n_trials, 2)`` float64 ``[start, stop)`` seconds (only the starts are used).
        bin_size: bin width, s.
        duration: length of the PSTH after each trial start, s.

    Returns:
        ``(n_bins, n_units)`` float64 firing rate, Hz (count / (n_trials * bin_size)); all zeros
        when there are no trials.

    Raises:
        FidelityInputError: ``bin_size`` or ``duration`` is not a positive number of seconds, or
            ``duration`` holds no whole bin of ``bin_size`` (an empty ``(0, n_units)`` PSTH was
            returned: ``duration`` in ms with ``bin_size`` in s reads the other way round);
            ``trials`` not ``(n_trials, 2)``, or a row not finite or with stop <= start (as
            :func:`usable_trials` refuses them); a trial whose PSTH span ``[start, start +
            duration)`` reaches outside ``recording.time_domain`` (its unrecorded bins were counted
            as silence), naming the first.
    """
    bin_size = _check_bin_size(bin_size)
    duration = _check_bin_size(duration, "duration")
    # checked as usable_trials checks them: a NaN start was a trial without spikes (the PSTH of two trials, one
    # of them NaN, was half the rate) and an (n, 3) array was read as rows of two, without a word
    trials = np.zeros((0, 2)) if np.size(trials) == 0 else _trial_rows(trials)
    n_bins = n_full_bins(duration, bin_size)
    if n_bins == 0:
        raise FidelityInputError(f"duration: expected at least one bin of bin_size {bin_size:g} s, got {duration:g} s "
                                 "(both are seconds)")
    lo, hi = recording.time_domain
    outside = np.flatnonzero((trials[:, 0] < lo - EDGE_TOLERANCE) | (trials[:, 0] + duration > hi + EDGE_TOLERANCE))
    if outside.size:
        i = int(outside[0])
        raise FidelityInputError(
            f"trials: expected every trial's PSTH span [start, start + duration) inside the recording's time_domain "
            f"[{lo:g}, {hi:g}] s, trial {i} spans [{trials[i, 0]:g}, {trials[i, 0] + duration:g}) s "
            f"(trials reaching outside: {outside.size} of {len(trials)}; their unrecorded time would be counted as silence)")
    counts = np.zeros((n_bins, recording.n_units), dtype=np.float64)
    if n_bins == 0 or len(trials) == 0:
        return counts
    t = recording.spike_times
    for start in trials[:, 0]:
        a, b = np.searchsorted(t, [start, start + (n_bins + 1) * bin_size], side="left")
        if b > a:
            k = bin_index(t[a:b] - start, bin_size)
            ok = k < n_bins
            np.add.at(counts, (k[ok], recording.unit_ids[a:b][ok]), 1)
    return counts / (len(trials) * bin_size)


def psth_correlation(real: SpikeRecording, generated: SpikeRecording, bin_size: float = 0.01,
                     trials: np.ndarray | None = None, min_trial_coverage: float = 0.95,
                     min_trial_coverage_option: str = "min_trial_coverage") -> dict[str, object]:
    """Per-unit Pearson r between the recorded and generated trial-averaged PSTHs.

    The trials are the real recording's ``trials`` rows (or the ``trials`` argument, an
    ``(n_trials, 2)`` float64 array of ``[start, stop)`` s) that the generated
    support covers (:func:`usable_trials`: the segment holding the trial start covers at least
    ``min_trial_coverage`` of the trial; ``1.0`` keeps only trials fully inside); the others are
    skipped and counted in ``psth_n_trials_outside_support``. PSTHs are aligned on trial starts
    and span the shortest covered trial length (``psth_duration_s``; trials cut to it are
    counted in ``psth_n_trials_cut``), in bins of ``bin_size`` s (:func:`trial_psth`). A unit
    whose PSTH is flat in either recording (e.g. silent) has no defined r (``None``, counted in
    ``psth_n_units_undefined``).

    When no trial is usable (the recording has none, or none lies inside the support) the
    summaries are NaN and ``psth_reason`` says why (and, when some trials are partly covered, the
    ``min_trial_coverage`` that would use the best covered ones, named as
    ``min_trial_coverage_option`` says); also when the covered length holds fewer than 3 bins, or
    every unit's PSTH is flat in one of the recordings (a silent generated recording), so that
    no unit has an r; otherwise (``psth_corr_mean`` a number) ``psth_reason`` is ``None``.

    Returns:
        dict with ``psth_corr_mean``, ``psth_corr_median``, ``psth_corr_per_unit``,
        ``psth_n_trials_used``, ``psth_n_trials_outside_support``, ``psth_n_trials_cut``,
        ``psth_n_bins``, ``psth_bin_size_s``, ``psth_duration_s``, ``psth_n_units_undefined``,
        ``psth_reason``.

    Raises:
        FidelityInputError: bad ``bin_size``, ``trials`` shape or ``min_trial_coverage``, or
            the pair is not comparable.
    """
    _check_pair(real, generated)
    bin_size = _check_bin_size(bin_size)
    trials = real.trials if trials is None else trials
    nan = float("nan")
    out: dict[str, object] = {
        "psth_corr_mean": nan, "psth_corr_median": nan, "psth_corr_per_unit": [None] * real.n_units,
        "psth_n_trials_used": 0, "psth_n_trials_outside_support": 0, "psth_n_trials_cut": 0,
        "psth_n_bins": 0, "psth_bin_size_s": bin_size, "psth_duration_s": nan,
        "psth_n_units_undefined": real.n_units, "psth_reason": None,
    }
    if trials is None or len(trials) == 0:
        out["psth_reason"] = "the real recording has no trials"
        return out
    used, duration, n_skipped, n_cut = usable_trials(trials, generated.support, min_trial_coverage, "min_trial_coverage")
    out["psth_n_trials_outside_support"] = n_skipped
    if len(used) == 0:
        out["psth_reason"] = no_usable_trial_reason(trials, generated.support, min_trial_coverage,
                                                    min_trial_coverage_option)
        return out
    n_bins = n_full_bins(duration, bin_size)
    out.update(psth_n_trials_used=len(used), psth_duration_s=duration, psth_n_bins=n_bins,
               psth_n_trials_cut=n_cut)
    if n_bins < MIN_CORR_POINTS:  # over 2 bins each unit's r is +1 or -1, whatever the PSTHs
        out["psth_reason"] = (f"the covered trial length ({duration:.6g} s) holds fewer than {MIN_CORR_POINTS} bins of "
                              f"{bin_size:g} s")
        return out
    pr = trial_psth(real, used, bin_size, duration)
    pg = trial_psth(generated, used, bin_size, duration)
    per_unit = np.array([_pearson(pr[:, u], pg[:, u]) for u in range(real.n_units)])
    out.update(
        psth_corr_mean=_summary(per_unit, np.mean),
        psth_corr_median=_summary(per_unit, np.median),
        psth_corr_per_unit=_as_list(per_unit),
        psth_n_units_undefined=int((~np.isfinite(per_unit)).sum()),
    )
    if not np.isfinite(per_unit).any():
        # a silent generated recording (a collapsed model) gave psth_corr_mean NaN with psth_reason None,
        # the one NaN summary of evaluate's table printed without a word on why
        out["psth_reason"] = _flat_reason(pr, pg, "PSTH", f"{bin_size:g} s bin of the {n_bins} after the trial starts")
    return out


def _flat_reason(real_values: np.ndarray, generated_values: np.ndarray, what: str, bin_text: str) -> str:
    """Why no unit has a per-unit Pearson r of ``what`` (``"PSTH"``, ``"binned count"``): every
    unit's ``(n_bins, n_units)`` values are constant (:func:`_nearly_constant`) in the recorded or
    the generated spikes; ``bin_text`` says over which bins (``"0.01 s bin of the 100 ..."``)."""
    flat_r = sum(_nearly_constant(real_values[:, u]) for u in range(real_values.shape[1]))
    flat_g = sum(_nearly_constant(generated_values[:, u]) for u in range(generated_values.shape[1]))
    silent_g = int((~generated_values.any(0)).sum())
    return (f"every unit's {what} is flat (the same in every {bin_text}) in the recorded or the generated spikes, "
            f"where a Pearson r is undefined: {flat_g} of {generated_values.shape[1]} units flat in the generated "
            f"({silent_g} silent), {flat_r} in the recorded")


# --------------------------------------------------------------------------- ISI
def _sorted_disjoint_rows(rows, field: str) -> np.ndarray:
    """``rows`` as an ``(n, 2)`` float64 array of ``[start, stop)`` s (an empty one for no rows), or a
    :class:`FidelityInputError` naming ``field``: not that shape, a row not finite or with stop <=
    start, or a row starting more than :data:`EDGE_TOLERANCE` (1 ns) before the previous one stops
    (rows touching are disjoint, also where float round-off puts the shared edge a hair inside); rows
    that are not real numbers (bool, text, None) or are held as float32 / float16 (as a recording's
    spike times are refused, :func:`~hf_neuroformer.binning.narrow_float_times_message`)."""
    # np.asarray(..., float64) took float32 rows with their rounding (700.05 is 700.0499877929688 s: a spike
    # at 700.05 s fell outside the segment starting there), bools as 0 / 1 s and the text '0.5' as 0.5 s
    narrow = narrow_float_times_message(rows, field, item="edge")
    if narrow is not None:
        raise FidelityInputError(narrow)
    try:
        raw = np.asarray(rows)
    except ValueError:  # ragged rows
        raise FidelityInputError(f"{field}: expected an (n, 2) array of [start, stop) s, got ragged rows") from None
    if raw.size and raw.dtype.kind not in "iuf":
        raise FidelityInputError(f"{field}: expected an (n, 2) array of real numbers ([start, stop) s), got dtype "
                                 f"{raw.dtype} ({type(rows).__name__})")
    rows = raw.astype(np.float64)
    if rows.size == 0:
        return rows.reshape(0, 2)
    if rows.ndim != 2 or rows.shape[1] != 2:
        raise FidelityInputError(f"{field}: expected an (n, 2) array of [start, stop) s, got shape {rows.shape}")
    bad = np.flatnonzero(~np.isfinite(rows).all(1) | (rows[:, 1] <= rows[:, 0]))
    if bad.size:
        raise FidelityInputError(f"{field}: expected finite rows with stop > start, row {bad[0]} is {rows[bad[0]].tolist()}")
    back = np.flatnonzero(rows[1:, 0] < rows[:-1, 1] - EDGE_TOLERANCE)
    if back.size:
        i = int(back[0])
        raise FidelityInputError(f"{field}: expected rows sorted by start and disjoint, row {i + 1} "
                                 f"{rows[i + 1].tolist()} starts before row {i} {rows[i].tolist()} stops")
    return rows


def interspike_intervals(recording: SpikeRecording, segments: np.ndarray) -> list[np.ndarray]:
    """ISIs of every unit inside contiguous segments, never across a gap between segments.

    Args:
        recording: the spikes.
        segments: ``(n_segments, 2)`` float64 ``[start, stop)`` seconds, sorted and disjoint
            (see :func:`support_segments`). Spikes outside every segment are ignored.

    Returns:
        one ``(n_isis_u,)`` float64 array of intervals (s) per unit: the differences of
        consecutive spike times of that unit inside the same segment.

    Raises:
        FidelityInputError: ``segments`` not ``(n_segments, 2)``, a row not finite or with stop <=
            start, or rows not sorted and disjoint (unsorted or overlapping rows lost ISIs without a
            word: the spikes were looked up by bisection over the starts); ``segments`` not real
            numbers (bool, text) or held as float32 / float16 (as :class:`SpikeRecording` refuses
            float32 spike times: widened, they keep their rounding).
    """
    segments = _sorted_disjoint_rows(segments, "segments")
    t, u = recording.spike_times, recording.unit_ids
    empty = [np.zeros(0) for _ in range(recording.n_units)]
    if t.size == 0 or len(segments) == 0:
        return empty
    seg = np.searchsorted(segments[:, 0], t, side="right") - 1
    ok = seg >= 0
    ok[ok] = t[ok] < segments[seg[ok], 1]
    t, u, seg = t[ok], u[ok], seg[ok]
    order = np.lexsort((t, seg, u))
    t, u, seg = t[order], u[order], seg[order]
    same = (u[1:] == u[:-1]) & (seg[1:] == seg[:-1])
    isi, owner = np.diff(t)[same], u[1:][same]
    bounds = np.searchsorted(owner, np.arange(recording.n_units + 1), side="left")
    return [isi[bounds[k]:bounds[k + 1]] for k in range(recording.n_units)]


def _dt_grid(window_length: float, dt_resolution: float) -> tuple[float, float]:
    """Check a window length and dt resolution (positive finite seconds, not float32 / float16:
    :func:`narrow_float_seconds_message`); ``(W, dt)`` as floats."""
    for name, v in (("window_length", window_length), ("dt_resolution", dt_resolution)):
        narrow = narrow_float_seconds_message(name, v)
        if narrow is not None:
            raise FidelityInputError(narrow)
        if not (np.isfinite(v) and v > 0):
            raise FidelityInputError(f"{name}: expected a positive finite number of seconds, got {v}")
    return float(window_length), float(dt_resolution)


def _row_length_mismatch(support: np.ndarray, window_length: float) -> str | None:
    """Why the support rows are not windows of ``window_length`` s (to 1 us), or None."""
    lengths = support[:, 1] - support[:, 0]
    bad = np.flatnonzero(np.abs(lengths - window_length) > 1e-6)
    if not bad.size:
        return None
    return (f"window_length: expected every generated window (support row) to be {window_length} s long, "
            f"window {bad[0]} is {lengths[bad[0]]:.9f} s ([{support[bad[0], 0]:.6f}, {support[bad[0], 1]:.6f}))")


def _snapped_times(recording: SpikeRecording, support: np.ndarray, window_length: float,
                   dt_resolution: float) -> tuple[np.ndarray, np.ndarray]:
    """``(inside, snapped)``: a bool mask of the spikes inside a support row and their times moved
    to the centre of their dt bin in that row (the tokenizer's ``dt_to_id`` then ``id_to_dt``)."""
    t = recording.spike_times
    row = np.searchsorted(support[:, 0], t, side="right") - 1
    inside = row >= 0
    inside[inside] = t[inside] < support[row[inside], 1]
    start = support[row[inside], 0]
    widths = dt_bin_widths(window_length, dt_resolution)  # the last bin is partial when dt does not divide W
    k = np.clip(bin_index(t[inside] - start, dt_resolution), 0, len(widths) - 1)
    return inside, start + k * dt_resolution + widths[k] / 2


def snap_to_dt_bin_centres(recording: SpikeRecording, support, window_length: float,
                           dt_resolution: float) -> SpikeRecording:
    """The spikes of ``recording`` inside the windows ``support``, each moved to the centre of its
    dt bin: what a generator that reproduced every recorded spike in the right unit and dt bin
    would write (generated spikes are decoded at dt-bin centres).

    Bins follow :class:`~hf_neuroformer.NeuroformerTokenizer`: in a window ``[s, s + W)`` a spike
    at ``t`` is in bin ``k = floor((t - s) / dt + 1e-9 + min(0.5 ns / dt, 1e-3))`` (``bin_index``; clipped to ``[0, K)``, ``K =
    ceil(W / dt)``) and is placed at ``s`` plus the centre of that bin's part inside the window
    (``dt_to_id`` then ``id_to_dt``; the last bin is partial when ``dt`` does not divide ``W``).

    Args:
        recording: the recorded spikes.
        support: ``(n_windows, 2)`` float64 ``[start, stop)`` seconds, sorted and non-overlapping
            (a generated recording's ``support``: one row per generated window).
        window_length: ``W``, the model's ``current_window``, s; every row must be this long
            (to 1 us).
        dt_resolution: the model's ``dt_resolution``, s.

    Returns:
        a :class:`SpikeRecording` with the same units, ``time_support=support`` and the snapped
        spikes (spikes outside every row are left out).

    Raises:
        FidelityInputError: non-positive ``window_length`` / ``dt_resolution``; ``support`` that is not
            at least one ``(n, 2)`` row of finite ``[start, stop)`` seconds, sorted and disjoint (a
            recording's ``support`` is None when it has no ``time_support``; an ``(n, 3)`` array was
            read as rows of two and ``None`` failed in numpy, naming no field), or a row whose length is
            not ``window_length``.
    """
    if support is None:
        raise FidelityInputError("support: expected (n_windows, 2) [start, stop) s (a generated recording's "
                                 "support), got None (a recording without time_support has none)")
    support = _sorted_disjoint_rows(support, "support")
    if len(support) == 0:
        raise FidelityInputError("support: expected at least one [start, stop) window (s), got none")
    window_length, dt_resolution = _dt_grid(window_length, dt_resolution)
    mismatch = _row_length_mismatch(support, window_length)
    if mismatch:
        raise FidelityInputError(mismatch)
    inside, snapped = _snapped_times(recording, support, window_length, dt_resolution)
    return SpikeRecording.from_unsorted(
        snapped, recording.unit_ids[inside], unit_names=list(recording.unit_names),
        unit_areas=list(recording.unit_areas), time_domain=recording.time_domain,
        session=recording.session, time_support=support,
    )


def _ks_2samp(a: np.ndarray, b: np.ndarray):
    """``scipy.stats.ks_2samp(a, b)`` without its RuntimeWarning when the exact p-value fails and
    the asymptotic one is used instead: that happens for tied ISIs (generated spikes sit on a dt
    grid) and warned on every ``evaluate``; the statistic does not depend on it."""
    # imported here: scipy.stats took about 0.5 s of CPU to import, paid by every command that imports the
    # metrics package (neuroformer inspect, prepare, generate through hf_neuroformer.training) without an ISI test
    from scipy import stats

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="ks_2samp: Exact calculation unsuccessful")
        return stats.ks_2samp(a, b)


def isi_distance(real: SpikeRecording, generated: SpikeRecording, min_isis: int = 20,
                 window_length: float | None = None, dt_resolution: float | None = None) -> dict[str, object]:
    """Per-unit two-sample Kolmogorov-Smirnov statistic between ISI distributions, and its floor.

    ISIs are taken only within contiguous segments of the generated support (touching windows
    merged), never across a gap (:func:`interspike_intervals`), for both recordings. The KS
    statistic (``scipy.stats.ks_2samp``: the largest distance between the two empirical CDFs,
    0 = same distribution, 1 = disjoint) is computed for units with at least ``min_isis`` ISIs
    in both recordings; the others are ``None`` and counted in ``isi_n_units_too_few``.

    The floor: generated spikes are decoded at dt-bin centres, so their ISIs are differences of
    bin centres, and even a model that put every recorded spike in its right unit and dt bin
    does not reach 0 against the continuous recorded times (A2929, 5 ms bins: about 0.1 in the
    mean). With the generator's ``window_length`` and ``dt_resolution`` the same KS statistic is
    computed between the recorded spikes and the recorded spikes moved to their dt-bin centres
    (:func:`snap_to_dt_bin_centres`) in the same windows: ``isi_ks_floor_per_unit`` (units with
    at least ``min_isis`` recorded ISIs; snapping keeps every spike in its window, so both sides
    have as many), summarised as ``isi_ks_floor_mean`` / ``isi_ks_floor_median`` over the units
    that have an ``isi_ks`` value, so that it compares with ``isi_ks_mean`` / ``isi_ks_median``.
    It is a reference (what that perfect model gets), not a strict lower bound: other ISIs on the
    same lattice can, by chance or design, sit slightly closer to the recorded CDF.
    Without the two, or when they are not the generator's grid (a support row is not
    ``window_length`` long, or a generated spike is not at a bin centre), the floor is NaN and
    ``isi_ks_floor_reason`` says why.

    Args:
        real, generated: the recordings (see :func:`compare_recordings`).
        min_isis: fewest ISIs a unit needs on both sides.
        window_length: the generator's ``current_window``, s (each support row's length), or None.
        dt_resolution: the generator's ``dt_resolution``, s, or None.

    Returns:
        dict with ``isi_ks_per_unit``, ``isi_ks_pvalue_per_unit`` (scipy's exact two-sample
        p-value, or its asymptotic one where the exact computation fails, as for tied ISIs),
        ``isi_ks_mean``, ``isi_ks_mean_reason`` (why it is NaN: no unit with ``min_isis`` ISIs on
        both sides, counted per side; ``None`` when it is a number),
        ``isi_ks_median``, ``isi_n_real_per_unit``, ``isi_n_generated_per_unit``,
        ``isi_n_units_too_few``, ``isi_min_isis``, ``isi_n_segments``, ``isi_ks_floor_per_unit``,
        ``isi_ks_floor_mean``, ``isi_ks_floor_median``, ``isi_ks_floor_dt_resolution_s`` (``None``
        when not given) and ``isi_ks_floor_reason`` (``None`` when the floor was computed).

    Raises:
        FidelityInputError: ``min_isis`` is not an integer >= 1, the pair is not comparable, only
            one of ``window_length`` / ``dt_resolution`` is given, or either is not a positive
            number of seconds.
    """
    _check_pair(real, generated)
    min_isis = check_min_isis(min_isis, FidelityInputError)
    segs = support_segments(generated.support)
    ir, ig = interspike_intervals(real, segs), interspike_intervals(generated, segs)
    ks = np.full(real.n_units, np.nan)
    pv = np.full(real.n_units, np.nan)
    for k in range(real.n_units):
        if ir[k].size >= min_isis and ig[k].size >= min_isis:
            res = _ks_2samp(ir[k], ig[k])
            ks[k], pv[k] = res.statistic, res.pvalue
    floor = np.full(real.n_units, np.nan)
    if (window_length is None) != (dt_resolution is None):
        raise FidelityInputError(
            f"window_length, dt_resolution: expected both (the generator's grid) or neither, got "
            f"{window_length} and {dt_resolution}"
        )
    if dt_resolution is None:
        reason = "the generator's current_window and dt_resolution are unknown"
    else:
        window_length, dt_resolution = _dt_grid(window_length, dt_resolution)
        reason = _row_length_mismatch(generated.support, window_length)
        if reason is None:
            inside, snapped = _snapped_times(generated, generated.support, window_length, dt_resolution)
            off = np.abs(snapped - generated.spike_times[inside]) > 1e-7
            if off.any():
                reason = (f"{int(off.sum())} of {generated.n_spikes} generated spikes are not at the centres of "
                          f"{dt_resolution} s dt bins of {window_length} s windows")
        if reason is not None:
            reason = f"not the generator's grid: {reason}"
        else:
            reason = None
            ir_snapped = interspike_intervals(
                snap_to_dt_bin_centres(real, generated.support, window_length, dt_resolution), segs)
            for k in range(real.n_units):
                if ir[k].size >= min_isis:
                    floor[k] = _ks_2samp(ir[k], ir_snapped[k]).statistic
    same_units = np.where(np.isfinite(ks), floor, np.nan)
    ks_reason = None
    if not np.isfinite(ks).any():  # isi_ks_mean NaN was printed by evaluate without a word (a silent model)
        n_r = sum(int(x.size >= min_isis) for x in ir)
        n_g = sum(int(x.size >= min_isis) for x in ig)
        ks_reason = (f"no unit has >= {int(min_isis)} ISIs (min_isis) in both recordings: {n_r} of {real.n_units} "
                     f"units have in the recorded, {n_g} in the generated (ISIs within "
                     f"{count_noun(len(segs), 'contiguous segment')} of the generated windows)")
    if reason is None and not np.isfinite(same_units).any():
        # computed, but no unit has min_isis ISIs on both sides: say so rather than leave NaN unexplained
        reason = (f"no unit has >= {int(min_isis)} ISIs in both recordings (the KS statistic is NaN for every unit), "
                  "so there is no floor to compare with")
    return {
        "isi_ks_per_unit": _as_list(ks),
        "isi_ks_pvalue_per_unit": _as_list(pv),
        "isi_ks_mean": _summary(ks, np.mean),
        "isi_ks_mean_reason": ks_reason,
        "isi_ks_median": _summary(ks, np.median),
        "isi_n_real_per_unit": [int(x.size) for x in ir],
        "isi_n_generated_per_unit": [int(x.size) for x in ig],
        "isi_n_units_too_few": int((~np.isfinite(ks)).sum()),
        "isi_min_isis": int(min_isis),
        "isi_n_segments": len(segs),
        "isi_ks_floor_per_unit": _as_list(floor),
        "isi_ks_floor_mean": _summary(same_units, np.mean),
        "isi_ks_floor_median": _summary(same_units, np.median),
        "isi_ks_floor_dt_resolution_s": None if dt_resolution is None else float(dt_resolution),
        "isi_ks_floor_reason": reason,
    }


# --------------------------------------------------------------------------- Fano factor
def _fano(counts: np.ndarray) -> np.ndarray:
    """Per-column sample variance (ddof=1) / mean; NaN where the mean is 0 or fewer than 2 rows."""
    out = np.full(counts.shape[1], np.nan)
    if counts.shape[0] < 2:
        return out
    mean = counts.mean(0)
    var = counts.var(0, ddof=1)
    ok = mean > 0
    out[ok] = var[ok] / mean[ok]
    return out


def fano_factor(real: SpikeRecording, generated: SpikeRecording, bin_size: float = 0.1,
                mode: str = "bins", trials: np.ndarray | None = None,
                min_trial_coverage: float = 0.95,
                min_trial_coverage_option: str = "min_trial_coverage") -> dict[str, object]:
    """Per-unit Fano factor (sample variance / mean of spike counts), recorded vs generated.

    ``mode="bins"`` (default; what :func:`compare_recordings` uses, for any recording):
    counts in bins of ``bin_size`` s tiling each segment of the generated support (trailing
    partial bins left out, counted in ``fano_n_partial_bins_dropped``). ``mode="trials"``: one
    count per trial, the trial-to-trial variability: the real recording's ``trials`` (or
    the ``trials`` argument, ``(n_trials, 2)`` float64 ``[start, stop)`` s) covered by the
    support (:func:`usable_trials`; others counted in ``fano_n_trials_outside_support``), each counted over ``[start, start + L)`` with ``L`` the
    shortest covered trial length; ``bin_size`` is then unused. The variance is the sample
    variance (``ddof=1``), so a Poisson process gives 1 on average. A unit's Fano factor is
    undefined (``None``) when its mean count is 0 or there are fewer than 2 counts.

    Returns:
        dict with ``fano_real_per_unit``, ``fano_generated_per_unit``, ``fano_corr`` (Pearson r
        over units defined in both; NaN with fewer than 3 or Fano factors equal across them),
        ``fano_corr_reason`` (why ``fano_corr`` is NaN, as ``rate_corr_reason``: ``fano_reason``
        when everything is NaN, else e.g. "fewer than 3 units with a Fano factor in both recordings
        (2)"; ``None`` when it is a number), ``fano_mean_abs_diff`` (mean ``|F_gen - F_real|`` over
        those units), ``fano_real_mean``, ``fano_generated_mean``, ``fano_n_units_undefined``
        (units undefined in either), ``fano_mode``, ``fano_bin_size_s`` (``None`` in trial
        mode), ``fano_n_samples`` (bins or trials), ``fano_n_partial_bins_dropped``,
        ``fano_n_trials_outside_support``, ``fano_reason`` (why everything is NaN, else
        ``None``).

    Raises:
        FidelityInputError: unknown ``mode``, bad ``bin_size``, or the pair is not comparable.
    """
    _check_pair(real, generated)
    if mode not in ("bins", "trials"):
        raise FidelityInputError(f"mode: expected 'bins' or 'trials', got {mode!r}")
    segs = support_segments(generated.support)
    partial, outside, reason = 0, 0, None
    if mode == "bins":
        bin_size = _check_bin_size(bin_size)
        rows, partial = _tile(segs, bin_size)
        rc, gc = _counts_in_sorted_bins(real, rows), _counts_in_sorted_bins(generated, rows)
    else:
        trials = real.trials if trials is None else trials
        rows = np.zeros((0, 2))
        if trials is None or len(trials) == 0:
            reason = "the real recording has no trials"
        else:
            used, duration, outside, _ = usable_trials(trials, segs, min_trial_coverage, "min_trial_coverage")
            if len(used) == 0:
                reason = no_usable_trial_reason(trials, segs, min_trial_coverage, min_trial_coverage_option)
            else:
                rows = np.stack([used[:, 0], used[:, 0] + duration], 1)
        rc, gc = _counts_in_intervals(real, rows), _counts_in_intervals(generated, rows)
    if reason is None and len(rows) < 2:
        reason = f"fewer than 2 count samples ({len(rows)})"
    fr, fg = _fano(rc), _fano(gc)
    both = np.isfinite(fr) & np.isfinite(fg)
    if reason is None and not both.any():
        reason = "no unit has a defined Fano factor (mean count > 0) in both recordings"
    corr = _pearson(fr[both], fg[both])
    return {
        "fano_real_per_unit": _as_list(fr),
        "fano_generated_per_unit": _as_list(fg),
        "fano_corr": corr,
        "fano_corr_reason": None if np.isfinite(corr) else reason or _corr_reason(
            fr[both], fg[both], "units with a Fano factor in both recordings", "unit", "Fano factor"),
        "fano_mean_abs_diff": float(np.mean(np.abs(fg[both] - fr[both]))) if both.any() else float("nan"),
        "fano_real_mean": float(np.mean(fr[both])) if both.any() else float("nan"),
        "fano_generated_mean": float(np.mean(fg[both])) if both.any() else float("nan"),
        "fano_n_units_undefined": int((~both).sum()),
        "fano_mode": mode,
        "fano_bin_size_s": float(bin_size) if mode == "bins" else None,
        "fano_n_samples": len(rows),
        "fano_n_partial_bins_dropped": int(partial),
        "fano_n_trials_outside_support": outside,
        "fano_reason": reason,
    }


# --------------------------------------------------------------------------- pairwise correlations
def pairwise_correlation_structure(real: SpikeRecording, generated: SpikeRecording,
                                   bin_size: float = 0.1) -> dict[str, object]:
    """How well the generated unit-by-unit correlation structure matches the recorded one.

    Spike counts in bins of ``bin_size`` s tiling the support segments (as
    :func:`binned_count_correlation`) give, for each recording, the Pearson correlation matrix
    across units. Only units whose counts vary in both recordings are used (others counted in
    ``pairwise_n_units_excluded``); the off-diagonal upper triangles (one value per unit pair)
    are then compared with a Pearson r.

    Returns:
        dict with ``pairwise_corr_r`` (Pearson r between the two upper triangles; NaN with
        fewer than 3 pairs or a constant triangle), ``pairwise_corr_r_reason`` (why it is NaN, as
        ``rate_corr_reason``, e.g. "fewer than 3 unit pairs (1; 2 of 3 units have counts that vary in
        both recordings)"; ``None`` when it is a number), ``pairwise_corr_mean_abs_diff`` (mean
        ``|c_gen - c_real|`` over pairs), ``pairwise_corr_real_mean``,
        ``pairwise_corr_generated_mean``, ``pairwise_n_pairs``, ``pairwise_n_units_used``,
        ``pairwise_n_units_excluded``, ``pairwise_n_bins``, ``pairwise_bin_size_s``,
        ``pairwise_n_partial_bins_dropped``.

    Raises:
        FidelityInputError: bad ``bin_size``, or the pair is not comparable.
    """
    _check_pair(real, generated)
    bin_size = _check_bin_size(bin_size)
    bins, partial = _tile(support_segments(generated.support), bin_size)
    rc = _counts_in_sorted_bins(real, bins).astype(np.float64)
    gc = _counts_in_sorted_bins(generated, bins).astype(np.float64)
    keep = (rc.std(0) > 0) & (gc.std(0) > 0) if len(bins) >= 2 else np.zeros(real.n_units, dtype=bool)
    n_used = int(keep.sum())
    nan = float("nan")
    out: dict[str, object] = {
        "pairwise_corr_r": nan, "pairwise_corr_r_reason": None, "pairwise_corr_mean_abs_diff": nan,
        "pairwise_corr_real_mean": nan, "pairwise_corr_generated_mean": nan,
        "pairwise_n_pairs": n_used * (n_used - 1) // 2, "pairwise_n_units_used": n_used,
        "pairwise_n_units_excluded": int(real.n_units - n_used), "pairwise_n_bins": len(bins),
        "pairwise_bin_size_s": bin_size, "pairwise_n_partial_bins_dropped": int(partial),
    }
    n_pairs = out["pairwise_n_pairs"]
    if n_pairs < MIN_CORR_POINTS:
        out["pairwise_corr_r_reason"] = (
            f"fewer than 2 count bins ({len(bins)} of {bin_size} s in the generated windows)" if len(bins) < 2 else
            f"fewer than {MIN_CORR_POINTS} unit pairs ({n_pairs}; {n_used} of {real.n_units} units have counts that "
            f"vary in both recordings)")
        if n_used < 2:
            return out
    iu = np.triu_indices(n_used, k=1)
    cr = np.corrcoef(rc[:, keep], rowvar=False)[iu]
    cg = np.corrcoef(gc[:, keep], rowvar=False)[iu]
    corr = _pearson(cr, cg)
    if n_pairs >= MIN_CORR_POINTS:
        out["pairwise_corr_r_reason"] = None if np.isfinite(corr) else _corr_reason(cr, cg, "unit pairs", "pair",
                                                                                    "count correlation")
    out.update(
        pairwise_corr_r=corr,
        pairwise_corr_mean_abs_diff=float(np.mean(np.abs(cg - cr))),
        pairwise_corr_real_mean=float(np.mean(cr)),
        pairwise_corr_generated_mean=float(np.mean(cg)),
    )
    return out


# --------------------------------------------------------------------------- unit-id F1
def unit_id_f1(real: SpikeRecording, generated: SpikeRecording) -> dict[str, object]:
    """Set-based unit-id F1 per window, averaged over windows.

    For each window (a row of the generated ``support``), A = set of units that fired in the
    recording, B = set of units in the generated window; ``F1 = 2 |A & B| / (|A| + |B|)``.
    Windows where both sets are empty have no defined F1 and are left out (counted). This is
    the paper's unit-id F1 (Sec. 4, "F1 score of predicted neuron ids per window").

    Returns:
        ``{"id_f1": mean F1, "id_f1_reason": ..., "n_windows": ..., "n_windows_both_empty": ...}``;
        ``id_f1`` is NaN when every window is empty in both recordings, and ``id_f1_reason`` then
        says so (``None`` when ``id_f1`` is a number).
    """
    _check_pair(real, generated)
    sup = generated.support
    a = _counts_in_sorted_bins(real, sup) > 0
    b = _counts_in_sorted_bins(generated, sup) > 0
    inter = (a & b).sum(1)
    denom = a.sum(1) + b.sum(1)
    ok = denom > 0
    f1 = 2 * inter[ok] / denom[ok]
    return {
        "id_f1": float(f1.mean()) if ok.any() else float("nan"),
        "id_f1_reason": None if ok.any() else (
            f"no unit fires in any of the {len(sup)} generated windows in either recording (F1 is undefined for "
            "a window empty in both)"),
        "n_windows": len(sup),
        "n_windows_both_empty": int((~ok).sum()),
    }


# --------------------------------------------------------------------------- spike-timing F1
#: Default coincidence windows (s) of :func:`spike_timing_f1`: 5, 10 and 25 ms.
SPIKE_TIMING_TOLERANCES = (0.005, 0.01, 0.025)

#: Default number of random draws each chance level of :func:`spike_timing_f1` pools.
SPIKE_TIMING_CHANCE_DRAWS = 3


def _check_whole(value, field: str, minimum: int) -> int:
    """``value`` as an int, or a :class:`FidelityInputError` naming ``field`` unless it is a whole
    number >= ``minimum`` (:func:`hf_neuroformer.argument_checks.check_whole`)."""
    return check_whole(value, field, minimum, FidelityInputError)


def check_spike_tolerances(tolerances, field: str = "tolerances") -> tuple[float, ...]:
    """``tolerances`` (s) as a tuple of floats, or a :class:`FidelityInputError` naming ``field``
    unless it is a non-empty sequence of distinct finite numbers of seconds from 0.0001 s (0.1 ms)
    up to, not including, 1 s (:func:`hf_neuroformer.argument_checks.check_spike_tolerances`, which
    the command line applies before the library is imported)."""
    return _check_spike_tolerances(tolerances, field, FidelityInputError)


def match_spike_times(real_times, generated_times, tolerance: float) -> np.ndarray:
    """Pair the spikes of two spike trains of one unit that lie within ``tolerance`` s, one to one.

    A maximum matching: no other pairing within the tolerance, each spike used at most once, holds
    more pairs. Both trains are walked in time; the earliest spikes not yet paired are paired when
    they lie within the tolerance, otherwise the earlier of the two is left unpaired (it cannot lie
    within the tolerance of any later spike of the other train). Pairing the earliest compatible
    spikes never loses a pair (swapping partners of two crossing pairs keeps both within the
    tolerance), so this gives as many pairs as an optimal assignment (e.g. scipy's
    ``linear_sum_assignment`` on the within-tolerance graph), in ``O(n_real + n_generated)``.

    Args:
        real_times: ``(n_real,)`` float64 spike times, s, sorted ascending.
        generated_times: ``(n_generated,)`` float64 spike times, s, sorted ascending.
        tolerance: the coincidence window, s (0.0001 s up to, not including, 1 s, as each of
            :func:`spike_timing_f1`'s): a pair needs ``|t_gen - t_real| <= tolerance``
            (plus 1 ns, :data:`EDGE_TOLERANCE`, so that a shift of exactly ``tolerance`` is not lost
            to float rounding: ``0.105 - 0.1`` is ``0.0050000000000000044``).

    Returns:
        ``(n_pairs, 2)`` int64 array of ``[real index, generated index]`` rows, in time order.

    Raises:
        FidelityInputError: ``tolerance`` is not one number from 0.0001 s up to 1 s (a list of
            several is refused, not cut to its first), or a train is not a sorted 1-D array of
            finite times, or is held as float32 / float16 (as a recording's spike times are refused).
    """
    if not is_real_number(tolerance):  # check_spike_tolerances takes a list, whose first alone was used
        raise FidelityInputError(f"tolerance: expected one positive finite number of seconds, got {tolerance!r}")
    tolerance = check_spike_tolerances(tolerance, "tolerance")[0]
    trains = []
    for name, x in (("real_times", real_times), ("generated_times", generated_times)):
        # float32 700.005 is 700.0050048828125 s: widened, a pair exactly at the tolerance was lost (or one
        # just beyond it kept) without a word, where every recording refuses such times
        narrow = narrow_float_times_message(x, name, item="spike")
        if narrow is not None:
            raise FidelityInputError(narrow)
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 1 or not np.all(np.isfinite(x)) or np.any(np.diff(x) < 0):
            raise FidelityInputError(f"{name}: expected a 1-D array of finite spike times (s) sorted ascending")
        trains.append(x)
    return np.asarray(_greedy_pairs(trains[0].tolist(), trains[1].tolist(), tolerance + EDGE_TOLERANCE),
                      dtype=np.int64).reshape(-1, 2)


def _greedy_pairs(r: list, g: list, tol: float) -> list:
    """The pairs of :func:`match_spike_times` for two sorted lists of floats (no checks; ``tol``
    already holds the rounding slack). Python floats: the walk is a plain loop."""
    pairs, i, j, nr, ng = [], 0, 0, len(r), len(g)
    while i < nr and j < ng:
        d = g[j] - r[i]
        if -tol <= d <= tol:
            pairs.append((i, j))
            i += 1
            j += 1
        elif d > 0:
            i += 1
        else:
            j += 1
    return pairs


def _by_unit(t: np.ndarray, u: np.ndarray, n_units: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The spikes ``(t, unit)`` (any order) sorted by unit, then time, for :func:`_n_matched`:
    ``(times, counts, keys)``, the ``(n,)`` float64 times, the ``(n_units,)`` int64 spikes per unit
    and the ``(n,)`` complex keys ``unit + 1j * time`` (numpy orders complex numbers by their real,
    then their imaginary part, exactly: the keys are in (unit, time) order). A stable radix sort on
    16-bit unit ids, then each unit's times sorted in place: three times faster than sorting all
    times first (and several times faster than ``np.lexsort``)."""
    small = np.int16 if n_units <= np.iinfo(np.int16).max else np.int64
    times = np.asarray(t, dtype=np.float64)[np.argsort(np.asarray(u).astype(small), kind="stable")]
    counts = np.bincount(u, minlength=n_units).astype(np.int64)
    stops = np.cumsum(counts)
    for unit in np.flatnonzero(counts > 1):
        times[stops[unit] - counts[unit]:stops[unit]].sort()
    return times, counts, np.repeat(np.arange(n_units, dtype=np.float64), counts) + 1j * times


def _n_matched(real: tuple, gen: tuple, tolerances: tuple) -> np.ndarray:
    """``(n_tolerances,)`` int64 total pairs over units of the spikes of ``real`` and ``gen``
    (each the ``(times, counts, keys)`` of :func:`_by_unit`, so that :func:`spike_timing_f1` sorts
    the recorded spikes once for all its chance draws and tolerances), as :func:`match_spike_times`
    per unit would count them, vectorised: a Python walk over every spike took 8 s for a million on
    each side. Both sides of a unit merged in time fall into clusters where consecutive spikes lie
    within the tolerance; a pair never spans two clusters (every gap between its two spikes is at
    most their distance), so the pairs are counted per cluster. A lone spike pairs with none; in a
    cluster no longer than the tolerance every spike is within it of every other, and one with a
    single spike on one side pairs it with a neighbour: both hold ``min(n_real, n_generated)``
    pairs. Only the other clusters (dense bursts) are walked. The clusters of two or more spikes
    are runs of links (consecutive spikes of a unit within the tolerance), and the links at a
    tolerance are those at the widest one with a gap no wider, so each tolerance looks at the
    links alone."""
    (r_t, r_n, r_key), (g_t, g_n, g_key) = real, gen
    out = np.zeros(len(tolerances), dtype=np.int64)
    if not len(r_t) or not len(g_t):
        return out
    # merge the two sides, in (unit, time) order: a generated spike goes after the recorded ones of
    # its unit at or before its time
    at = np.searchsorted(r_key, g_key, side="right") + np.arange(len(g_t))
    n = len(r_t) + len(g_t)
    is_gen = np.zeros(n, dtype=bool)
    is_gen[at] = True
    t = np.empty(n)
    t[at], t[~is_gen] = g_t, r_t
    unit_stop = np.cumsum(r_n + g_n)
    same_unit = np.ones(n - 1, dtype=bool)  # spikes i and i + 1 belong to one unit
    same_unit[unit_stop[(unit_stop > 0) & (unit_stop < n)] - 1] = False
    gap = np.diff(t)
    tols = [tol + EDGE_TOLERANCE for tol in tolerances]
    links = np.flatnonzero(same_unit & (gap <= max(tols)))
    link_gaps = gap[links]
    n_gen_before = np.concatenate([[0], np.cumsum(is_gen)])
    for k, tol in enumerate(tols):
        link = links[link_gaps <= tol]
        if not len(link):
            continue
        # a run of links i, i + 1, ..., j makes the spikes i to j + 1 one cluster
        run_break = link[1:] != link[:-1] + 1
        start = link[np.concatenate([[True], run_break])]
        stop = link[np.concatenate([run_break, [True]])] + 2
        n_gen = n_gen_before[stop] - n_gen_before[start]
        pairs = np.minimum(stop - start - n_gen, n_gen)
        walk = (pairs > 1) & (t[stop - 1] - t[start] > tol)
        out[k] = pairs[~walk].sum()
        if not walk.any():
            continue
        # a unit's walked clusters in one walk: no pair spans two clusters, so the walk pairs the same
        w_start, w_len = start[walk], (stop - start)[walk]
        keep = np.repeat(w_start - np.cumsum(w_len) + w_len, w_len) + np.arange(w_len.sum())
        w_t, w_g = t[keep], is_gen[keep]
        edges = np.flatnonzero(np.diff(np.searchsorted(unit_stop, keep, side="right"))) + 1
        for seg_t, seg_g in zip(np.split(w_t, edges), np.split(w_g, edges)):
            out[k] += len(_greedy_pairs(seg_t[~seg_g].tolist(), seg_t[seg_g].tolist(), tol))
    return out


def _uniform_in_rows(rng: np.random.Generator, support: np.ndarray, n: int) -> np.ndarray:
    """``n`` times drawn uniformly over the union of the ``[start, stop)`` rows (unsorted)."""
    lengths = support[:, 1] - support[:, 0]
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    x = rng.uniform(0.0, cum[-1], n)
    row = np.clip(np.searchsorted(cum, x, side="right") - 1, 0, len(support) - 1)
    return support[row, 0] + (x - cum[row])


def _prf(n_matched, n_real, n_generated) -> tuple[float, float, float]:
    """(precision, recall, F1): ``F1 = 2 M / (n_real + n_generated)``; NaN where the count is 0."""
    nan = float("nan")
    precision = n_matched / n_generated if n_generated else nan
    recall = n_matched / n_real if n_real else nan
    f1 = 2 * n_matched / (n_real + n_generated) if n_real + n_generated else nan
    return float(precision), float(recall), float(f1)


def _timing_reasons(n_real: int, n_generated: int) -> dict[str, str | None]:
    """Why each of :func:`_prf`'s precision, recall and F1 is NaN (``{"precision": why, "recall": why,
    "f1": why}``, ``None`` where it is a number): its denominator, the spikes inside the generated
    windows, is 0 (``n_generated`` for the precision, ``n_real`` for the recall, their sum for the F1)."""
    counts = f"({n_real} recorded, {n_generated} generated)"
    return {
        "precision": None if n_generated else (
            f"no generated spike inside the generated windows {counts}, so precision = M / n_generated is 0 / 0"),
        "recall": None if n_real else (
            f"no recorded spike inside the generated windows {counts}, so recall = M / n_real is 0 / 0"),
        "f1": None if n_real + n_generated else (
            f"neither recording has a spike inside the generated windows {counts}, "
            "so F1 = 2 M / (n_real + n_generated) is 0 / 0"),
    }


def spike_timing_f1(real: SpikeRecording, generated: SpikeRecording,
                    tolerances=SPIKE_TIMING_TOLERANCES, chance_draws: int = SPIKE_TIMING_CHANCE_DRAWS,
                    seed: int = 0) -> dict[str, object]:
    """Spike-timing precision, recall and F1 within a coincidence window, with two chance levels.

    A generated spike matches a recorded spike when both belong to the same unit and their times
    differ by at most the tolerance; each spike takes part in at most one match, and the number of
    matches ``M`` is the largest such one-to-one pairing (:func:`match_spike_times`, per unit).
    Spikes of different units never match. Over all units pooled,
    ``precision = M / n_generated``, ``recall = M / n_real`` and
    ``F1 = 2 M / (n_real + n_generated)`` (their harmonic mean; 0 when one side has spikes and
    the other none, NaN when neither has any). Recorded spikes outside the generated ``support``
    are not counted (as in every metric of this module), so a generated spike near a window
    edge whose partner lies outside the windows counts as unmatched.

    This is the comparison used to score spike sorters against ground truth (SpikeForest,
    Magland et al. 2020, eLife 9:e55167; spikeinterface's ground-truth comparison): a detected
    spike is a hit if a true spike of the unit lies within a small window and no spike is counted
    twice, from which precision, recall and an accuracy follow. It is also the coincidence count
    of Kistler et al. 1997 (Neural Comput. 9:1015), whose coincidence factor likewise measures
    the coincidences against those of a Poisson train at the same rate. Here the windows are
    milliseconds wide (a model that places spikes on 5-10 ms dt bins cannot be scored at the
    sub-millisecond windows of spike sorting). Generated spikes sit at dt-bin centres, so a
    tolerance of at least half the dt bin lets a model that put every recorded spike in its right
    unit and bin score 1; below that even such a model misses the spikes far from their bin's
    centre (``neuroformer evaluate`` warns).

    Chance levels, so that an F1 means something (a high rate alone gives coincidences):

    - ``poisson``: each unit a homogeneous Poisson process at its recorded rate in the support
      (recorded spikes in the support / support length), drawn over the same windows: what a
      model that knows only the rates scores.
    - ``shuffle``: every generated spike keeps its unit and its window (a row of ``support``) but
      gets a time drawn uniformly inside that window: the same counts per unit and window (so the
      same rates and unit-id F1), no timing inside the window. An F1 at this level says the
      model's timing inside a window adds nothing to which units it fires in which window.

    Each level pools ``chance_draws`` draws (matches and counts summed over draws) from
    ``numpy.random.default_rng(seed)``, so the result is reproducible; its spread is the sample
    standard deviation (``ddof=1``) over the draws of each draw's own precision, recall and F1
    (NaN with one draw): how far one draw's chance level may lie from the pooled one.

    Args:
        real: the recorded spikes.
        generated: the generated spikes; its ``support`` rows are the generated windows.
        tolerances: coincidence windows, s (default 5, 10 and 25 ms), each from 0.0001 s (0.1 ms) up
            to, not including, 1 s (one of 1 s or more is refused: milliseconds given as seconds).
        chance_draws: random draws per chance level (>= 1; default 3).
        seed: seed of the chance draws (default 0).

    Returns:
        for each tolerance, with ``<tol>`` its value in ms (``5ms``, ``10ms``, ``25ms``):
        ``timing_precision_<tol>``, ``timing_recall_<tol>``, ``timing_f1_<tol>`` (floats, NaN
        where undefined), ``timing_precision_<tol>_reason``, ``timing_recall_<tol>_reason`` and
        ``timing_f1_<tol>_reason`` (str: why that figure is NaN, i.e. no generated spike in the
        support, no recorded spike in it, neither; ``None`` when it is a number),
        ``timing_n_matched_<tol>`` (int); ``timing_precision_<tol>_chance_poisson``,
        ``timing_recall_<tol>_chance_poisson``, ``timing_f1_<tol>_chance_poisson`` and the same
        three with ``_chance_shuffle``; each chance level's ``..._sd`` (e.g.
        ``timing_f1_10ms_chance_poisson_sd``: SD over the draws); plus ``timing_tolerances_s`` (list, s),
        ``timing_n_real_spikes``, ``timing_n_generated_spikes`` (spikes inside the support),
        ``timing_chance_draws`` and ``timing_chance_seed``.

    Raises:
        FidelityInputError: bad ``tolerances`` / ``chance_draws`` / ``seed``, or the pair is not
            comparable (see :func:`compare_recordings`).
    """
    _check_pair(real, generated)
    tolerances = check_spike_tolerances(tolerances)
    chance_draws, seed = _check_whole(chance_draws, "chance_draws", 1), _check_whole(seed, "seed", 0)
    n_units = real.n_units
    sup = np.asarray(generated.support, dtype=np.float64)
    r_in, g_in = in_intervals(real.spike_times, sup), in_intervals(generated.spike_times, sup)
    r_t, r_u = real.spike_times[r_in], real.unit_ids[r_in]
    g_t, g_u = generated.spike_times[g_in], generated.unit_ids[g_in]
    n_r, n_g = len(r_t), len(g_t)
    # each side sorted by unit once: the recorded spikes serve every chance draw and tolerance
    real_by_unit = _by_unit(r_t, r_u, n_units)
    matched = _n_matched(real_by_unit, _by_unit(g_t, g_u, n_units), tolerances)

    rng = np.random.default_rng(int(seed))
    # a Poisson process at a unit's recorded rate n_u / T over the support's length T holds Poisson(n_u) spikes
    n_real_per_unit = np.bincount(r_u, minlength=n_units)
    g_row = np.searchsorted(sup[:, 0], g_t, side="right") - 1
    # per draw: (matches per tolerance, spikes drawn)
    chance: dict[str, list] = {"poisson": [], "shuffle": []}
    for _ in range(chance_draws):
        counts = rng.poisson(n_real_per_unit)
        p_u = np.repeat(np.arange(n_units), counts)
        p_t = _uniform_in_rows(rng, sup, len(p_u))
        s_t = sup[g_row, 0] + rng.uniform(0.0, 1.0, n_g) * (sup[g_row, 1] - sup[g_row, 0])
        for kind, t, u in (("poisson", p_t, p_u), ("shuffle", s_t, g_u)):
            chance[kind].append((_n_matched(real_by_unit, _by_unit(t, u, n_units), tolerances), len(t)))

    out: dict[str, object] = {}
    reasons = _timing_reasons(n_r, n_g)
    for k, tol in enumerate(tolerances):
        lab = _tolerance_label(tol)
        p, r, f = _prf(int(matched[k]), n_r, n_g)
        out.update({f"timing_precision_{lab}": p, f"timing_recall_{lab}": r, f"timing_f1_{lab}": f,
                    # why each is NaN, as rate_corr_reason: None where it is a number (a silent model's
                    # precision, or windows without a recorded spike's recall, were NaN with no reason)
                    **{f"timing_{name}_{lab}_reason": why for name, why in reasons.items()},
                    f"timing_n_matched_{lab}": int(matched[k])})
        for kind, draws in chance.items():
            pooled = _prf(sum(int(m[k]) for m, _ in draws), n_r * chance_draws, sum(n_c for _, n_c in draws))
            per_draw = np.array([_prf(int(m[k]), n_r, n_c) for m, n_c in draws])  # (draws, 3)
            # sample SD over the draws (ddof 1): NaN with one draw, or where a draw's value is NaN
            sd = (np.std(per_draw, axis=0, ddof=1) if chance_draws > 1 else np.full(3, np.nan)).tolist()
            for name, value, spread in zip(("precision", "recall", "f1"), pooled, sd):
                out[f"timing_{name}_{lab}_chance_{kind}"] = value
                out[f"timing_{name}_{lab}_chance_{kind}_sd"] = float(spread)
    out.update(timing_tolerances_s=list(tolerances), timing_n_real_spikes=n_r, timing_n_generated_spikes=n_g,
               timing_chance_draws=chance_draws, timing_chance_seed=int(seed))
    return out


def spike_timing_f1_keys(tolerances=SPIKE_TIMING_TOLERANCES) -> list[str]:
    """The keys of :func:`spike_timing_f1` that give its F1 and chance levels at ``tolerances`` (s):
    per tolerance ``timing_f1_<tol>``, ``timing_f1_<tol>_chance_poisson``, its ``..._sd``,
    ``timing_f1_<tol>_chance_shuffle`` and its ``..._sd`` (what ``neuroformer train`` copies into
    ``metrics.json``, at the default 5, 10 and 25 ms)."""
    keys = []
    for tol in check_spike_tolerances(tolerances):
        key = f"timing_f1_{_tolerance_label(tol)}"
        keys += [key, *(f"{key}_chance_{kind}{sd}" for kind in ("poisson", "shuffle") for sd in ("", "_sd"))]
    return keys


# --------------------------------------------------------------------------- all together
def compare_recordings(real: SpikeRecording, generated: SpikeRecording, bin_size: float = 0.1,
                       psth_bin_size: float = 0.01, min_isis: int = 20,
                       fano_mode: str = "bins", min_trial_coverage: float = 0.95,
                       window_length: float | None = None,
                       dt_resolution: float | None = None,
                       min_trial_coverage_option: str = "min_trial_coverage",
                       timing_tolerances=SPIKE_TIMING_TOLERANCES,
                       timing_chance_draws: int = SPIKE_TIMING_CHANCE_DRAWS,
                       timing_seed: int = 0) -> dict[str, object]:
    """All fidelity metrics of this module in one flat dict (see each function for its keys).

    Args:
        real: the recorded spikes (with ``trials`` for the PSTH metric).
        generated: the generated spikes; its ``support`` rows are the generated windows.
        bin_size: bin width (s) for the binned-count correlation, the Fano factor (bin mode)
            and the pairwise correlation structure; default 0.1 s.
        psth_bin_size: PSTH bin width, s; default 0.01 s.
        min_isis: fewest ISIs a unit needs in both recordings for its KS statistic; default 20.
        fano_mode: ``"bins"`` (default) or ``"trials"``, see :func:`fano_factor`.
        min_trial_coverage: fraction of a trial the generated windows must cover for the PSTH
            (and trial-mode Fano factor) to use it; see :func:`usable_trials`.
        window_length, dt_resolution: the generator's ``current_window`` and ``dt_resolution``
            (s), for the ISI KS floor (:func:`isi_distance`); None (default): floor not computed.
        min_trial_coverage_option: how ``psth_reason`` / ``fano_reason`` name
            ``min_trial_coverage`` when no trial is covered enough (``neuroformer evaluate``
            passes ``"--min-trial-coverage"``).
        timing_tolerances, timing_chance_draws, timing_seed: ``tolerances`` (s; default 5, 10,
            25 ms), ``chance_draws`` and ``seed`` of :func:`spike_timing_f1`.

    Returns:
        the union of the dicts of :func:`firing_rate_correlation`,
        :func:`binned_count_correlation`, :func:`psth_correlation`, :func:`isi_distance`,
        :func:`fano_factor`, :func:`pairwise_correlation_structure`, :func:`unit_id_f1` and
        :func:`spike_timing_f1`, plus
        ``n_real_spikes`` (recorded spikes inside the support), ``n_generated_spikes``,
        ``n_units`` and ``support_duration_s``.

    Raises:
        FidelityInputError: the recordings have different units, the generated recording has no
            support, or its windows lie outside the recording's time domain or in a hole of its
            time support (between two intervals of an epoch union); a bad
            ``window_length`` / ``dt_resolution`` (see :func:`isi_distance`). A ``bin_size``
            too long for the windows is not refused here (the binned metrics are NaN with
            ``n_bins`` 0); :func:`check_bins_fit` refuses one.
    """
    # check the bin widths up front, under their own names (psth_correlation calls its own
    # argument bin_size, which would name the wrong option)
    _check_bin_size(bin_size)
    _check_bin_size(psth_bin_size, "psth_bin_size")
    check_spike_tolerances(timing_tolerances, "timing_tolerances")
    _check_whole(timing_chance_draws, "timing_chance_draws", 1)
    _check_whole(timing_seed, "timing_seed", 0)
    out: dict[str, object] = {}
    out.update(firing_rate_correlation(real, generated))
    out.update(binned_count_correlation(real, generated, bin_size))
    out.update(psth_correlation(real, generated, psth_bin_size, min_trial_coverage=min_trial_coverage,
                                min_trial_coverage_option=min_trial_coverage_option))
    out.update(isi_distance(real, generated, min_isis, window_length=window_length, dt_resolution=dt_resolution))
    out.update(fano_factor(real, generated, bin_size, mode=fano_mode, min_trial_coverage=min_trial_coverage,
                           min_trial_coverage_option=min_trial_coverage_option))
    out.update(pairwise_correlation_structure(real, generated, bin_size))
    out.update(unit_id_f1(real, generated))
    out.update(spike_timing_f1(real, generated, timing_tolerances, chance_draws=timing_chance_draws,
                               seed=timing_seed))
    sup = generated.support
    out["n_real_spikes"] = int(_counts_in_sorted_bins(real, sup).sum())
    out["n_generated_spikes"] = int(generated.n_spikes)
    out["n_units"] = int(real.n_units)
    out["support_duration_s"] = float(np.sum(sup[:, 1] - sup[:, 0]))
    return out


__all__ = [
    "FidelityInputError",
    "binned_count_correlation",
    "compare_recordings",
    "fano_factor",
    "firing_rate_correlation",
    "interspike_intervals",
    "isi_distance",
    "pairwise_correlation_structure",
    "psth_correlation",
    "snap_to_dt_bin_centres",
    "bins_fit_problem",
    "check_bins_fit",
    "check_min_coverage",
    "check_spike_tolerances",
    "match_spike_times",
    "spike_timing_f1",
    "spike_timing_f1_keys",
    "SPIKE_TIMING_CHANCE_DRAWS",
    "SPIKE_TIMING_TOLERANCES",
    "no_usable_trial_reason",
    "support_segments",
    "trial_psth",
    "unit_id_f1",
    "usable_trials",
    "EDGE_TOLERANCE",
    "MIN_CORR_POINTS",
    "CONSTANT_RTOL",
]
