"""Fidelity of a generated recording against the recorded one.

Every function takes two :class:`SpikeRecording` objects with the same units and compares them
on the generated recording's ``support`` (its ``time_support`` rows are the generated windows).
Nothing here imports the model (GUIDE sec. 1).
"""

from __future__ import annotations

from typing import Dict

import numpy as np
from scipy import stats

from ..recording import SpikeRecording


def _check_pair(real: SpikeRecording, generated: SpikeRecording) -> None:
    """Refuse to compare recordings that do not describe the same units over the same time."""
    if list(real.unit_names) != list(generated.unit_names):
        raise ValueError(
            f"generated.unit_names: expected the real recording's {real.n_units} units "
            f"({real.unit_names[:3]}...), got {generated.n_units} ({generated.unit_names[:3]}...); "
            "was it generated from another recording?"
        )
    if generated.time_domain is None or len(generated.support) == 0:
        raise ValueError("generated.time_domain: expected the windows (time_support) the generated spikes cover, got none")
    if real.time_domain is None:
        raise ValueError("real.time_domain: expected the time span of the recorded spikes, got None")
    lo, hi = generated.support[0, 0], generated.support[-1, 1]
    if lo < real.time_domain[0] - 1e-9 or hi > real.time_domain[1] + 1e-9:
        raise ValueError(
            f"generated.time_support: the generated windows span [{lo:.3f}, {hi:.3f}] s but the real recording "
            f"covers [{real.time_domain[0]:.3f}, {real.time_domain[1]:.3f}] s; pass the recording (and --epoch) "
            "the spikes were generated from"
        )


def _counts_in_intervals(rec: SpikeRecording, intervals: np.ndarray) -> np.ndarray:
    """``(n_intervals, n_units)`` int64 spike counts of ``rec`` in each ``[start, stop)`` row."""
    counts = np.zeros((len(intervals), rec.n_units), dtype=np.int64)
    lo = np.searchsorted(rec.spike_times, intervals[:, 0], side="left")
    hi = np.searchsorted(rec.spike_times, intervals[:, 1], side="left")
    for k, (a, b) in enumerate(zip(lo, hi)):
        if b > a:
            counts[k] = np.bincount(rec.unit_ids[a:b], minlength=rec.n_units)
    return counts


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 2 or np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(stats.pearsonr(x, y)[0])


def firing_rate_correlation(real: SpikeRecording, generated: SpikeRecording) -> Dict[str, object]:
    """Pearson r over units between recorded and generated firing rates (Hz).

    Rates are spike counts inside the generated support divided by its total length.

    Returns:
        ``{"rate_corr": r, "real_rates": [...], "generated_rates": [...]}`` (Hz).
    """
    _check_pair(real, generated)
    sup = generated.support
    dur = float(np.sum(sup[:, 1] - sup[:, 0]))
    r = _counts_in_intervals(real, sup).sum(0) / dur
    g = _counts_in_intervals(generated, sup).sum(0) / dur
    return {"rate_corr": _pearson(r, g), "real_rates": r.tolist(), "generated_rates": g.tolist()}


def binned_count_correlation(real: SpikeRecording, generated: SpikeRecording, bin_size: float = 0.1) -> Dict[str, object]:
    """Per-unit Pearson r between recorded and generated spike counts in bins of ``bin_size`` s.

    Bins tile each support interval from its start; a trailing partial bin is left out (and
    counted in ``n_partial_bins_dropped``). Units whose counts are constant in either recording
    have no defined r and are left out of the mean (counted in ``n_units_undefined``).

    Returns:
        ``{"binned_count_corr_mean": ..., "binned_count_corr_per_unit": [...], "n_bins": ...}``.
    """
    _check_pair(real, generated)
    if not bin_size > 0:
        raise ValueError(f"bin_size: expected a positive number of seconds, got {bin_size}")
    bins, partial = [], 0
    for a, b in generated.support:
        n = int(np.floor((b - a) / bin_size + 1e-9))
        if a + n * bin_size < b - 1e-9:
            partial += 1
        starts = a + bin_size * np.arange(n)
        bins.append(np.stack([starts, starts + bin_size], 1))
    bins = np.concatenate(bins) if bins else np.zeros((0, 2))
    rc = _counts_in_intervals(real, bins)
    gc = _counts_in_intervals(generated, bins)
    per_unit = np.array([_pearson(rc[:, u], gc[:, u]) for u in range(real.n_units)])
    ok = np.isfinite(per_unit)
    return {
        "binned_count_corr_mean": float(np.mean(per_unit[ok])) if ok.any() else float("nan"),
        "binned_count_corr_per_unit": [None if not np.isfinite(v) else float(v) for v in per_unit],
        "n_bins": int(len(bins)),
        "bin_size_s": float(bin_size),
        "n_units_undefined": int((~ok).sum()),
        "n_partial_bins_dropped": int(partial),
    }


def unit_id_f1(real: SpikeRecording, generated: SpikeRecording) -> Dict[str, object]:
    """Set-based unit-id F1 per window, averaged over windows.

    For each window (a row of the generated ``support``), A = set of units that fired in the
    recording, B = set of units in the generated window; ``F1 = 2 |A & B| / (|A| + |B|)``.
    Windows where both sets are empty have no defined F1 and are left out (counted). This is
    the paper's unit-id F1 (Sec. 4, "F1 score of predicted neuron ids per window").

    Returns:
        ``{"id_f1": mean F1, "n_windows": ..., "n_windows_both_empty": ...}``.
    """
    _check_pair(real, generated)
    sup = generated.support
    a = _counts_in_intervals(real, sup) > 0
    b = _counts_in_intervals(generated, sup) > 0
    inter = (a & b).sum(1)
    denom = a.sum(1) + b.sum(1)
    ok = denom > 0
    f1 = 2 * inter[ok] / denom[ok]
    return {
        "id_f1": float(f1.mean()) if ok.any() else float("nan"),
        "n_windows": int(len(sup)),
        "n_windows_both_empty": int((~ok).sum()),
    }


def compare_recordings(real: SpikeRecording, generated: SpikeRecording, bin_size: float = 0.1) -> Dict[str, object]:
    """All fidelity metrics of this module in one dict (see each function)."""
    out: Dict[str, object] = {}
    out.update(firing_rate_correlation(real, generated))
    out.update(binned_count_correlation(real, generated, bin_size))
    out.update(unit_id_f1(real, generated))
    sup = generated.support
    out["n_real_spikes"] = int(_counts_in_intervals(real, sup).sum())
    out["n_generated_spikes"] = int(generated.n_spikes)
    out["support_duration_s"] = float(np.sum(sup[:, 1] - sup[:, 0]))
    return out


__all__ = ["firing_rate_correlation", "binned_count_correlation", "unit_id_f1", "compare_recordings"]
