"""``spike_train_fidelity``: how closely generated spike trains match recorded ones.

An ``evaluate`` metric module that wraps :func:`hf_neuroformer.metrics.fidelity.compare_recordings`.
Load it offline with ``hf_neuroformer.metrics.load_metric("spike_train_fidelity")`` (or
``evaluate.load(<path of this folder>)``); it needs ``hf_neuroformer`` installed.
"""

import re

import datasets
import evaluate
import numpy as np

from hf_neuroformer.metrics.fidelity import SPIKE_TIMING_CHANCE_DRAWS, SPIKE_TIMING_TOLERANCES, compare_recordings
from hf_neuroformer.recording import SpikeRecording

_DESCRIPTION = """\
Fidelity of generated spike trains against the recorded ones, on the windows that were generated:
firing rates (Pearson r over units, generated/recorded ratio), binned spike-count correlation,
trial-averaged PSTH correlation, ISI distributions (per-unit two-sample KS statistic, ISIs never
across a gap between windows), Fano factors, the pairwise count-correlation structure, and the
unit-id F1 per window of Neuroformer (Antoniades et al. 2024, Sec. 4), and the spike-timing precision,
recall and F1 within 5, 10 and 25 ms (same unit, one-to-one matching) beside two chance levels
(Poisson trains at the recorded rates; generated times redrawn in their windows). Times are seconds, rates Hz.
Undefined values are NaN (per-unit: None) and what was left out is counted in the n_... fields.
"""

_KWARGS_DESCRIPTION = """\
One example per unit, in unit-index order (the same units, in the same order, on both sides).

Args:
    predictions: list of float64 sequences: the generated spike times (s) of each unit.
    references: list of float64 sequences: the recorded spike times (s) of each unit, on the
        same clock (recorded spikes outside `support` are ignored).
    support: (n_windows, 2) list of [start, stop) seconds: the generated windows (non-overlapping,
        in any order; touching windows are merged into contiguous segments). Required; a bad shape,
        a row with stop <= start or not finite, or overlapping rows raise a ValueError naming
        `support`.
    trials: optional (n_trials, 2) [start, stop) seconds of the recording's trials, for the
        PSTH (trials the support covers less than `min_trial_coverage` of are skipped and
        counted).
    real_time_domain: optional (start, stop) seconds the recording covers; default: the span of
        the support and the recorded spikes. One that leaves out a recorded spike or a generated
        window raises a ValueError naming `real_time_domain` (or `support`).
    unit_names: optional name per unit (default unit0, unit1, ...).
    bin_size: bin width (s) for count correlations, Fano factors and pairwise correlations
        (default 0.1).
    psth_bin_size: PSTH bin width, s (default 0.01).
    min_isis: fewest ISIs a unit needs on both sides for its KS statistic (default 20).
    fano_mode: "bins" (default) or "trials".
    min_trial_coverage: fraction of a trial the support must cover for trial metrics (default 0.95).
    window_length, dt_resolution: optional, the generator's current window and dt bin width (s):
        with both, isi_ks_floor_mean / isi_ks_floor_median give the ISI KS statistic between the
        recorded spikes and the recorded spikes moved to their dt-bin centres: what a model that
        put every recorded spike in its right dt bin gets, since generated spikes are decoded at
        dt-bin centres (0 is out of reach); without them NaN.
    timing_tolerances: coincidence windows (s, each from 0.0001 up to, not including, 1 s) of the
        spike-timing precision / recall / F1 (default [0.005, 0.01, 0.025]): a generated spike
        matches a recorded spike of the same unit at most this far away, one to one; keys timing_f1_<ms>ms and the chance levels
        timing_f1_<ms>ms_chance_poisson / _chance_shuffle (each with its SD over the draws, ..._sd).
    timing_chance_draws: seeded random draws each chance level pools (>= 1, default 3); with one
        draw the ..._sd keys are NaN.

Returns:
    the flat dict of hf_neuroformer.metrics.compare_recordings, e.g. rate_corr,
    rate_ratio_median, binned_count_corr_mean, psth_corr_mean, isi_ks_mean, fano_corr,
    pairwise_corr_r, id_f1, timing_f1_10ms, timing_f1_10ms_chance_poisson, n_real_spikes,
    n_generated_spikes, support_duration_s.

Examples:
    >>> from hf_neuroformer.metrics import load_metric
    >>> fidelity = load_metric("spike_train_fidelity")
    >>> out = fidelity.compute(predictions=[[0.11, 0.52], [0.3]], references=[[0.1, 0.5], [0.31]],
    ...                        support=[[0.0, 0.5], [0.5, 1.0]], bin_size=0.25)
    >>> out["id_f1"]
    1.0
"""

_CITATION = """\
@inproceedings{antoniades2024neuroformer,
  title     = {Neuroformer: Multimodal and Multitask Generative Pretraining for Brain Data},
  author    = {Antoniades, Antonis and Yu, Yiyi and Canzano, Joseph and Wang, William Yang and Smith, Spencer LaVere},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year      = {2024},
  note      = {arXiv:2311.00136}
}
"""


def _recording(trains, unit_names, time_domain, time_support=None, trials=None):
    times = [np.asarray(t, dtype=np.float64).reshape(-1) for t in trains]
    units = [np.full(len(t), k, dtype=np.int64) for k, t in enumerate(times)]
    return SpikeRecording.from_unsorted(
        np.concatenate(times) if times else np.zeros(0),
        np.concatenate(units) if units else np.zeros(0, dtype=np.int64),
        unit_names=unit_names, time_domain=time_domain, time_support=time_support, trials=trials,
    )


def _check_support(support) -> np.ndarray:
    """``support`` as a ``(n_windows, 2)`` float64 array sorted by start, or a ValueError naming
    ``support`` (its shape, or the first bad row): the errors of the recordings built from it named
    ``time_domain`` / ``time_support``, which the caller never passed."""
    try:
        arr = np.asarray(support, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("support: expected (n_windows, 2) [start, stop) seconds, got rows of unequal length "
                         "or non-numbers") from None
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"support: expected (n_windows, 2) [start, stop) seconds, got shape {arr.shape}")
    if len(arr) == 0:
        raise ValueError("support: expected at least one generated window, got none")
    bad = np.flatnonzero(~np.all(np.isfinite(arr), axis=1) | ~(arr[:, 1] > arr[:, 0]))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"support[{i}]: expected finite [start, stop) seconds with stop > start, "
                         f"got {arr[i].tolist()}")
    arr = arr[np.argsort(arr[:, 0], kind="stable")]
    over = np.flatnonzero(arr[1:, 0] < arr[:-1, 1])
    if over.size:
        i = int(over[0])
        raise ValueError(f"support: expected non-overlapping windows, got {arr[i].tolist()} and "
                         f"{arr[i + 1].tolist()} (after sorting by start)")
    return arr


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SpikeTrainFidelity(evaluate.Metric):
    """Spike-train fidelity metrics (see the module's description)."""

    def _info(self):
        return evaluate.MetricInfo(
            module_type="metric",
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({
                "predictions": datasets.Sequence(datasets.Value("float64")),
                "references": datasets.Sequence(datasets.Value("float64")),
            }),
            reference_urls=["https://arxiv.org/abs/2311.00136"],
        )

    def _compute(self, predictions, references, support=None, trials=None, real_time_domain=None,
                 unit_names=None, bin_size=0.1, psth_bin_size=0.01, min_isis=20, fano_mode="bins",
                 min_trial_coverage=0.95, window_length=None, dt_resolution=None,
                 timing_tolerances=SPIKE_TIMING_TOLERANCES, timing_chance_draws=SPIKE_TIMING_CHANCE_DRAWS):
        if support is None:
            raise ValueError("support: expected the generated windows as (n_windows, 2) [start, stop) seconds, got None")
        support = _check_support(support)
        if len(predictions) != len(references):
            raise ValueError(f"predictions: expected one spike train per unit as in references ({len(references)}), "
                             f"got {len(predictions)}")
        n_units = len(references)
        names = list(unit_names) if unit_names is not None else [f"unit{k}" for k in range(n_units)]
        if len(names) != n_units:
            raise ValueError(f"unit_names: expected {n_units} names (one per example), got {len(names)}")
        for name, trains in (("predictions", predictions), ("references", references)):
            for u, t in enumerate(trains):
                # the recordings built from them named 'spike_times: ... spike k (in the order given)', k counted
                # over all units' trains joined: an argument and an index the caller never passed
                t = np.asarray(t, dtype=np.float64).reshape(-1)
                bad = np.flatnonzero(~np.isfinite(t) | (t < 0))
                if bad.size:
                    k = int(bad[0])
                    raise ValueError(f"{name}[{u}][{k}]: expected finite spike times >= 0 s (seconds on the session "
                                     f"clock), got {t[k]} ({bad.size} such times in this unit)")
        for u, t in enumerate(predictions):
            t = np.asarray(t, dtype=np.float64).reshape(-1)
            row = np.searchsorted(support[:, 0], t, side="right") - 1
            outside = np.flatnonzero((row < 0) | ~(t < support[np.maximum(row, 0), 1]))
            if outside.size:
                k = int(outside[0])
                raise ValueError(f"predictions[{u}][{k}]: expected generated spike times inside `support` "
                                 f"(the generated windows), got {t[k]} s ({outside.size} such times in this unit)")
        gen_domain = (float(support[0, 0]), float(support[-1, 1]))
        if real_time_domain is None:
            lo, hi = gen_domain
            for t in references:
                if len(t):
                    lo, hi = min(lo, float(np.min(t))), max(hi, float(np.nextafter(np.max(t), np.inf)))
            real_time_domain = (lo, hi)
        generated = _recording(predictions, names, gen_domain, time_support=support)
        try:
            real = _recording(references, names, real_time_domain, trials=trials)
        except ValueError as err:
            # the recording's errors named its own field time_domain (and told the caller to 'pass
            # time_domain=(start, stop)'), an argument this module does not have
            raise type(err)(re.sub(r"\btime_domain\b", "real_time_domain", str(err))) from None
        lo, hi = real.time_domain
        if support[0, 0] < lo - 1e-9 or support[-1, 1] > hi + 1e-9:
            # compare_recordings said 'generated.time_support: ... pass the recording (and --epoch) the
            # spikes were generated from', naming neither argument of this module
            raise ValueError(f"support: the generated windows span [{support[0, 0]}, {support[-1, 1]}] s, outside "
                             f"real_time_domain ({lo}, {hi}) s; expected a real_time_domain that covers them (or "
                             "leave it out: it then spans the support and the recorded spikes)")
        return compare_recordings(real, generated, bin_size=bin_size, psth_bin_size=psth_bin_size,
                                  min_isis=min_isis, fano_mode=fano_mode,
                                  min_trial_coverage=min_trial_coverage, window_length=window_length,
                                  dt_resolution=dt_resolution, timing_tolerances=timing_tolerances,
                                  timing_chance_draws=timing_chance_draws)
