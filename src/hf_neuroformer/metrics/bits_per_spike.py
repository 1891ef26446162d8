r"""Bits per spike against a homogeneous Poisson null, on the tokenizer's dt bins (numpy only).

What is scored
--------------
Fix a current window ``[s, s + W)`` (``W`` = ``current_window``) and the tokenizer's dt bins of
width ``dt`` (``dt_resolution``): bin ``k`` covers ``[s + k*dt, min(s + (k+1)*dt, s + W))``
for ``k = 0 .. K-1``, ``K = ceil(W / dt)``, so the last bin is partial when ``dt`` does not divide
``W`` and has width ``Delta_k = min((k+1)*dt, W) - k*dt``. A spike at time ``t`` falls in bin
``floor((t - s) / dt + 1e-9 + min(0.5 ns / dt, 1e-3))`` (:func:`hf_neuroformer.binning.bin_index`: a
time on an edge, or less than 0.5 ns before it, is in the bin that edge starts), exactly as
:meth:`NeuroformerTokenizer.encode_window` assigns dt ids (same edge tolerance, same clipping to
``[0, K)``, same window end rounded to 1 ns). The outcome
of a window is the count array ``n[u, k]`` (spikes of unit ``u`` in bin ``k``).

The token model and the count array describe the same outcome
------------------------------------------------------------
The tokenizer writes a window as its *canonical* token sequence: spikes ordered by dt bin, then
by unit token id (two spikes of one unit in one bin are two identical tokens), then EOS. Given
``n[u, k]`` that sequence is fixed (for ``k = 0..K-1``, for each unit in token-id order, the
unit token ``n[u, k]`` times with dt id ``k``; then EOS), and the sequence gives ``n[u, k]``
back: canonical sequences and count arrays are in one-to-one correspondence. The canonical-order
generator (:func:`hf_neuroformer.generation.generate_spikes` with ``order="canonical"``) only
produces canonical sequences (dt never
before the previous spike's bin; inside that bin only unit tokens >= the previous one), so the
probability it gives a canonical sequence, computed with the same restrictions by
:func:`hf_neuroformer.likelihood.window_log_likelihoods`, *is* its probability of the count
array, the same outcome space as the Poisson null below. Windows truncated by
``max_window_length`` have no canonical sequence with EOS: leave them out of both sides (the
model side reports them).

The null
--------
Independent homogeneous Poisson processes, one per unit, rate ``lambda_u`` (Hz): ``n[u, k]``
is Poisson with mean ``lambda_u * Delta_k``, independently over units and bins, so

    log L_null(window) = sum_{u,k} [ n[u,k] log(lambda_u Delta_k) - lambda_u Delta_k - log(n[u,k]!) ]

(:func:`homogeneous_poisson_log_likelihood`). Two choices of ``lambda_u`` are reported by
:func:`hf_neuroformer.likelihood.split_bits_per_spike`:

* *train-rate null* (``bits_per_spike``): ``lambda_u`` fitted on the *training* windows
  (:func:`poisson_rates_from_windows`, with a floor so that a unit silent in training does not
  make a test spike impossible). With time-blocked splits the rates drift between blocks, so this
  null is mis-calibrated on the test block, and a model that sees the recorded past window gets
  the current rates for free: part of its figure is that drift.
* *scored-rates null* (``bits_per_spike_scored_rates_null``): ``lambda_u`` fitted on the very
  windows being scored (``floor_count=0``), the null of the Neural Latents Benchmark's reference
  code (``nlb_tools.evaluation.bits_per_spike`` takes the null's mean rates from the spikes it
  scores). A unit silent in the scored windows gets rate 0 and contributes 0 (no spike term, no
  ``-lambda Delta`` term).

Bits per spike
--------------
The formula is that of Pei et al. 2021, "Neural Latents Benchmark '21", Sec. 3.2: the
log-likelihood gained over the per-unit mean-rate Poisson model, in bits, per spike,

    bits/spike = (sum_w log L_model(w) - sum_w log L_null(w)) / (ln 2 * sum_w n_spikes(w))

(:func:`bits_per_spike`), summed over the same windows on both sides. 0 means no better than a
constant rate per unit; positive is better. All log-likelihoods here are in nats.

What is predicted differs from NLB's co-smoothing (held-out neurons predicted from held-in
neurons in the same bins): here every unit's spikes in the current window are predicted from the
recorded past window of all units (forward prediction, teacher-forced past), so only the formula
is NLB's, not the task, and the figures are not comparable with NLB co-smoothing scores.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln

from ..binning import bin_index, n_bins_covering, narrow_float_times_message, on_time_grid, window_ends
from ..configuration_neuroformer import is_finite_number
from ..argument_checks import narrow_float_seconds_message
from ..recording import SpikeRecording, count_noun, inside_one_interval


#: The pseudo-count of :func:`poisson_rates_from_windows`: a unit silent in every fit window gets the
#: rate of half a spike over them, so that a later spike of it has a finite log-likelihood under the null.
NULL_FLOOR_COUNT = 0.5


class BitsPerSpikeInputError(ValueError):
    """A bad argument to a bits-per-spike function; the message names the field."""


def _real_array(value, field: str) -> np.ndarray:
    """``value`` as a float64 array, refused (naming ``field``) unless it holds real numbers:
    np.asarray(float64) read True as 1 and the text "0.5" as 0.5 without a word, and other text,
    None or a ragged list failed inside numpy naming no argument."""
    try:
        raw = np.asarray(value)
        if raw.dtype.kind in "bUSc":
            raise TypeError(f"dtype {raw.dtype}")
        return raw.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise BitsPerSpikeInputError(f"{field}: expected real numbers, got {type(value).__name__} "
                                     f"({str(err).splitlines()[0]})") from None


def _positive(value: float, field: str) -> float:
    """``value`` (a length in seconds: ``window_length``, ``dt_resolution``) as a float, refused unless a
    positive finite number held as a Python number or float64 (a float32 0.05 is 0.05000000074505806 s:
    a spike on the next window's start was counted in both windows, :func:`narrow_float_seconds_message`)."""
    narrow = narrow_float_seconds_message(field, value)
    if narrow is not None:
        raise BitsPerSpikeInputError(narrow)
    if np.asarray(value).dtype.kind not in "iuf" or np.ndim(value) != 0:
        # None or "0.1" failed inside np.isfinite (TypeError naming no argument), True passed as 1 s
        raise BitsPerSpikeInputError(f"{field}: expected a positive finite number of seconds, got {value!r}")
    if not (np.isfinite(value) and value > 0):
        raise BitsPerSpikeInputError(f"{field}: expected a positive finite number of seconds, got {value}")
    return float(value)


def _starts(window_starts) -> np.ndarray:
    s = _real_array(window_starts, "window_starts")
    # float32 starts keep their rounding when widened (700.05 is 700.0499877929688 s): the null and the
    # spike counts were taken over windows 12 us early, overlapping the next one, while the model's
    # side (window_starts_array) refuses them, so the two sides of bits per spike scored other windows
    narrow = narrow_float_times_message(window_starts, "window_starts", item="window")
    if narrow is not None:
        raise BitsPerSpikeInputError(narrow)
    if s.ndim != 1:
        raise BitsPerSpikeInputError(f"window_starts: expected a 1-D array of seconds, got shape {s.shape}")
    bad = np.flatnonzero(~np.isfinite(s))
    if bad.size:
        raise BitsPerSpikeInputError(f"window_starts: expected finite seconds, window {bad[0]} starts at {s[bad[0]]}")
    return on_time_grid(s)  # the tokenizer's 1 ns grid (encode_window rounds the start and the end)


def _window_spikes(recording: SpikeRecording, starts: np.ndarray, window_length: float):
    """``(window index, spike index)`` of every spike in every window ``[s, round(s + W, 9))``
    (``s`` already on the 1 ns grid, see :func:`_starts`).

    Windows may overlap (a spike is then listed once per window holding it). A window not inside one
    interval of ``recording.support`` raises :class:`BitsPerSpikeInputError`: its unrecorded time was
    counted as silence (rates fitted on a window past the recording's end came out as the floor's).
    """
    ends = window_ends(starts, window_length)  # the tokenizer's 1 ns grid
    outside = np.flatnonzero(~inside_one_interval(starts, ends, recording.support))
    if outside.size:
        i = int(outside[0])
        support = recording.support
        where = (f"{count_noun(len(support), 'interval')} of the recording's support, {support[0, 0]:g} to "
                 f"{support[-1, 1]:g} s" if len(support) else "the recording has no support")
        raise BitsPerSpikeInputError(
            f"window_starts: expected windows inside the recorded time ({where}), window {i} "
            f"[{starts[i]:g}, {ends[i]:g}) s is not (outside: {outside.size} of {len(starts)} windows); its unrecorded "
            "time would be counted as silence")
    lo = np.searchsorted(recording.spike_times, starts, side="left")
    hi = np.searchsorted(recording.spike_times, ends, side="left")
    n = np.maximum(hi - lo, 0)
    win = np.repeat(np.arange(len(starts)), n)
    offsets = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
    return win, np.repeat(lo, n) + offsets, n


def window_spike_counts(recording: SpikeRecording, window_starts, window_length: float) -> np.ndarray:
    """``(n_windows,)`` int64 number of spikes (all units) in each window ``[s, s + window_length)``.

    The window end is rounded to 1 ns as in the tokenizer. This is the ``n_spikes`` that
    :func:`bits_per_spike` divides by.

    Raises:
        BitsPerSpikeInputError: non-finite, non-1-D or float32 / float16 ``window_starts`` (as
            :func:`hf_neuroformer.windows.window_starts_array` refuses them), a window not inside one
            interval of ``recording.support``, or a non-positive ``window_length``.
    """
    starts = _starts(window_starts)
    window_length = _positive(window_length, "window_length")
    return _window_spikes(recording, starts, window_length)[2].astype(np.int64)


def poisson_rates_from_windows(recording: SpikeRecording, window_starts, window_length: float,
                               floor_count: float = NULL_FLOOR_COUNT) -> np.ndarray:
    """Per-unit homogeneous Poisson rates (Hz) fitted on windows, with a floor for silent units.

    ``rate_u = max(c_u, floor_count) / (n_windows * window_length)`` where ``c_u`` is the number
    of spikes of unit ``u`` in the windows ``[s, round(s + window_length, 9))`` (a spike in two
    overlapping windows counts twice, matching the exposure ``n_windows * window_length``). For a
    unit with spikes this is the maximum-likelihood rate; a unit silent in every window gets the
    rate of ``floor_count`` spikes (default half a spike) instead of 0, so that a later spike of
    it has a finite log-likelihood under the null.

    Args:
        recording: the spikes (the training split's for the train-rate null; the scored
            windows' own, with ``floor_count=0``, for the scored-rates null).
        window_starts: ``(n_windows,)`` float64 window starts, s.
        window_length: window length ``W``, s.
        floor_count: pseudo-count, >= 0 (0 disables the floor).

    Returns:
        ``(n_units,)`` float64 rates, Hz.

    Raises:
        BitsPerSpikeInputError: no windows, bad ``window_starts`` (non-finite, not 1-D, held as
            float32 / float16, or a window not inside one interval of ``recording.support``) or
            ``window_length``, or a negative / non-finite ``floor_count``.
    """
    starts = _starts(window_starts)
    window_length = _positive(window_length, "window_length")
    if len(starts) == 0:
        raise BitsPerSpikeInputError("window_starts: expected at least one window to fit the rates on, got none")
    # None / a string / a bool failed inside numpy (TypeError: ufunc 'isfinite' not supported), naming no field
    if not (is_finite_number(floor_count) and floor_count >= 0):
        raise BitsPerSpikeInputError(f"floor_count: expected a finite pseudo-count >= 0, got {floor_count!r}")
    _, spike_idx, _ = _window_spikes(recording, starts, window_length)
    counts = np.bincount(recording.unit_ids[spike_idx], minlength=recording.n_units).astype(np.float64)
    return np.maximum(counts, float(floor_count)) / (len(starts) * window_length)


def dt_bin_widths(window_length: float, dt_resolution: float) -> np.ndarray:
    """``(K,)`` float64 width (s) of each dt bin of a window, ``K = ceil(W / dt)`` (tokenizer's
    ``num_dt_bins``); every bin is ``dt_resolution`` wide except a partial last one."""
    window_length = _positive(window_length, "window_length")
    dt_resolution = _positive(dt_resolution, "dt_resolution")
    k = n_bins_covering(window_length, dt_resolution)
    lo = np.arange(k) * dt_resolution
    return np.minimum(lo + dt_resolution, window_length) - lo


def homogeneous_poisson_log_likelihood(recording: SpikeRecording, window_starts, window_length: float,
                                       dt_resolution: float, rates_hz) -> np.ndarray:
    r"""Per-window log-likelihood (nats) of the spikes under independent homogeneous Poisson units.

    For each window ``[s, s + W)``: ``sum_{u,k} n[u,k] log(lambda_u Delta_k) - lambda_u Delta_k -
    log(n[u,k]!)`` over units ``u`` and the tokenizer's dt bins ``k`` (module docstring; bins and
    spike assignment exactly as :meth:`NeuroformerTokenizer.encode_window`). A unit with rate 0
    contributes 0 where it is silent and ``-inf`` where it fires.

    Args:
        recording: the spikes being scored.
        window_starts: ``(n_windows,)`` float64 window starts, s (windows may overlap).
        window_length: ``W``, the tokenizer's ``current_window``, s.
        dt_resolution: the tokenizer's ``dt_resolution``, s.
        rates_hz: ``(n_units,)`` float64 rate per unit (index = unit index), Hz, finite, >= 0.

    Returns:
        ``(n_windows,)`` float64 log-likelihoods, nats.

    Raises:
        BitsPerSpikeInputError: ``rates_hz`` of the wrong length, negative or non-finite; bad
            ``window_starts`` (non-finite, not 1-D, held as float32 / float16, or a window not inside
            one interval of ``recording.support``), ``window_length`` or ``dt_resolution``.
    """
    starts = _starts(window_starts)
    widths = dt_bin_widths(window_length, dt_resolution)
    window_length, dt_resolution = float(window_length), float(dt_resolution)
    rates = _real_array(rates_hz, "rates_hz")
    if rates.shape != (recording.n_units,):
        raise BitsPerSpikeInputError(
            f"rates_hz: expected one rate per unit, shape ({recording.n_units},), got {rates.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(rates) | (rates < 0))
    if bad.size:
        raise BitsPerSpikeInputError(f"rates_hz: expected finite rates >= 0 Hz, unit {bad[0]} has {rates[bad[0]]}")
    n_bins = len(widths)
    win, spike_idx, _ = _window_spikes(recording, starts, window_length)
    dt = recording.spike_times[spike_idx] - starts[win]
    k = np.clip(bin_index(dt, dt_resolution), 0, n_bins - 1)  # tokenizer.dt_to_id
    u = recording.unit_ids[spike_idx]
    ll = np.full(len(starts), -float(np.sum(rates) * widths.sum()))  # sum_{u,k} lambda_u Delta_k
    if win.size:
        key = (win * recording.n_units + u) * n_bins + k
        keys, n = np.unique(key, return_counts=True)
        kk = keys % n_bins
        uu = (keys // n_bins) % recording.n_units
        ww = keys // (n_bins * recording.n_units)
        with np.errstate(divide="ignore"):
            terms = n * np.log(rates[uu] * widths[kk]) - gammaln(n + 1.0)
        np.add.at(ll, ww, terms)
    return ll


def bits_per_spike(model_log_likelihood, null_log_likelihood, n_spikes) -> float:
    """Bits per spike of a model over a null (Pei et al. 2021, Sec. 3.2).

    ``(sum(model_log_likelihood) - sum(null_log_likelihood)) / (sum(n_spikes) * ln 2)``, the sums
    over the same windows.

    Args:
        model_log_likelihood: ``(n_windows,)`` float64 log-likelihood of each window under the
            model, nats.
        null_log_likelihood: ``(n_windows,)`` float64 under the null
            (:func:`homogeneous_poisson_log_likelihood`), nats.
        n_spikes: ``(n_windows,)`` integer spike count of each window.

    Returns:
        bits per spike (float); NaN when there are no spikes.

    Raises:
        BitsPerSpikeInputError: arrays of different lengths or not 1-D, non-finite
            log-likelihoods, or negative / non-integer spike counts (the message names the array
            and the first bad window).
    """
    m = _real_array(model_log_likelihood, "model_log_likelihood")
    z = _real_array(null_log_likelihood, "null_log_likelihood")
    n = _real_array(n_spikes, "n_spikes")
    for name, a in (("model_log_likelihood", m), ("null_log_likelihood", z), ("n_spikes", n)):
        if a.ndim != 1:
            raise BitsPerSpikeInputError(f"{name}: expected a 1-D array (one value per window), got shape {a.shape}")
        if a.shape != m.shape:
            raise BitsPerSpikeInputError(
                f"{name}: expected {m.shape[0]} values (one per window, as model_log_likelihood), got {a.shape[0]}"
            )
        bad = np.flatnonzero(~np.isfinite(a))
        if bad.size:
            hint = ""
            if name == "model_log_likelihood" and np.isnan(a[bad[0]]):
                hint = (f" ({bad.size} NaN windows; window_log_likelihoods gives NaN for truncated windows: "
                        "leave out those where its 'truncated' is True, as split_bits_per_spike does)")
            raise BitsPerSpikeInputError(f"{name}: expected finite values, window {bad[0]} has {a[bad[0]]}{hint}")
    bad = np.flatnonzero((n < 0) | (n != np.round(n)))
    if bad.size:
        raise BitsPerSpikeInputError(f"n_spikes: expected integer counts >= 0, window {bad[0]} has {n[bad[0]]}")
    total = float(n.sum())
    if total == 0:
        return float("nan")
    return float((m.sum() - z.sum()) / (total * math.log(2.0)))


__all__ = [
    "NULL_FLOOR_COUNT",
    "BitsPerSpikeInputError",
    "bits_per_spike",
    "dt_bin_widths",
    "homogeneous_poisson_log_likelihood",
    "poisson_rates_from_windows",
    "window_spike_counts",
]
