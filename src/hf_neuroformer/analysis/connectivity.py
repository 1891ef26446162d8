"""Directed unit x unit connectivity read from Neuroformer's attention, classical estimators on
the same spikes, and scores against a simulation's ground truth.

Every matrix here is **target x source**: ``M[i, j]`` is the estimated influence of unit ``j``
on unit ``i`` (the convention of :attr:`hf_neuroformer.simulation.SimulatedNetwork.weights`).

Attention (Antoniades et al. 2024, arXiv 2311.00136, the simulated hub-network experiment: a
model trained on it "revealed the underlying connectivity pattern within its self-attention";
there only a picture, here a number)
----------------------------------------------------------------------------------------------
In the causal decoder the query at position ``q`` of the current window produces the prediction
of the token at ``q + 1``. So each query row is assigned to the **predicted** unit ``i`` (the
label at ``q + 1``; queries whose label is EOS or padding are left out), and the keys it can see
are the past-window tokens (through cross-attention) and the current-window tokens at positions
``<= q`` (through causal self-attention). The attention mass a query puts on the key tokens of
unit ``j`` (summed over that unit's tokens; BOS, EOS and padding keys are not units and are left
out) is added to ``mass[i, j]``. Current-window keys count only when their dt bin is strictly
earlier than the predicted spike's: inside a dt bin the tokenizer orders spikes by unit token id,
so a key in the same bin precedes the query only because its unit id is lower; counting it put a
triangle over the whole matrix (units with low ids "driving" those with high ids) on a 300-unit
network. ``query="input"`` assigns the row to the unit of the query token itself instead (position ``q``, with its own dt bin; the BOS query is left out).

Each decoder layer has two softmaxes, self-attention over the current tokens and cross-attention
over the past, added to the residual stream one after the other; a layer's attention over all
keys is taken as ``0.5 * cross | 0.5 * self`` (each sums to 1, so the row sums to 1), averaged over
heads. Three readouts:

* ``last_layer``: the last decoder layer.
* ``mean``: the mean over decoder layers (and heads).
* ``rollout``: attention rollout (Abnar & Zuidema 2020, "Quantifying attention flow in
  transformers", ACL): each attention matrix ``A`` becomes ``0.5 A + 0.5 I`` (the residual
  connection) and they are multiplied through the network. The past tokens are first rolled out
  through the past encoder's self-attention; then each decoder layer applies its self-attention
  (``R <- (0.5 S + 0.5 I) R``) and its cross-attention (``R <- 0.5 R + 0.5 C R_past``). A query's
  row of ``R`` is a distribution over all past and current input tokens.

Normalisation for how often units occur. Each query's attention on the kept unit keys is first
rescaled to sum to 1 (the dropped same-bin keys and the BOS / EOS keys would otherwise make the
total depend on where the query sits inside its bin). Two effects then still inflate
``mass[i, j]`` without any link from ``j`` to ``i``: a target ``i`` that fires often contributes
many query rows, and a source ``j`` that fires often (a hub does) is present among the keys of
every query and collects attention from all of them. The first is removed by averaging over query
rows (``a[i, j] = mass[i, j] / n_queries[i]``, the mean attention share a query predicting ``i``
gives unit ``j``), the second, and any remaining per-row offset, by double centring over the
off-diagonal entries (as the average-product correction of coevolution analysis)::

    attention[i, j] = a[i, j] - mean_k a[k, j] - mean_l a[i, l] + mean_kl a[k, l]

Positive = queries predicting ``i`` attend to ``j`` more than the row and column averages
predict. It needs at least 4 units (:data:`MIN_UNITS_FOR_DIRECTION`): an excess ``a`` on one pair
becomes ``attention[i, j] - attention[j, i] = a (n - 3) / (n - 1)``, reversed on 2 units and tied
on 3 (where a source onto both other units, a hub, is reversed: see below). More generally, an excess ``a`` on each of the ``k`` edges of one source ``j`` (a hub) becomes
``a (n - 2 - k) / (n - 1)`` on each (the column mean takes ``a k / (n - 1)``): a source that drives
every other unit (``k = n - 1``) is reversed and one that drives all but one tied, however many
units there are; :func:`run_connectivity` warns of such a source in the ground truth. Queries that stand for no unit or see no earlier unit token are left out. Dividing
instead of subtracting (a "lift" over uniform attention or over the column mean) was tried on a
40-unit hub network and rejected: ratios of rarely present sources are noisy and outrank the hub
edges (hub AUROC 0.94, AUPRC 0.11 against 0.999, 0.97 for the column-centred mean).

A control that uses no learned attention at all: the same statistic (same kept keys, rescaling,
averaging and double centring) for **uniform** attention (``0.5 / n_past_keys`` on each past key,
BOS included, and ``0.5 / (q + 1)`` on each current key at positions ``<= q``),
``uniform_control``. It measures how often ``j``'s
spikes precede ``i``'s inside the model's context (a co-occurrence count, like a
cross-correlogram), so the attention readouts are only informative about what the model learned
where they beat it.

Baselines on the same spikes (binned counts; bins of different segments never touch: ``n_lags``
empty bins are put between them)
---------------------------------------------------------------------------------------------
* :func:`correlation_connectivity`: Pearson correlation of binned counts (undirected,
  symmetric).
* :func:`ccg_asymmetry`: cross-correlogram asymmetry, ``(C_ij(+) - C_ij(-)) / E_ij`` where
  ``C_ij(+)`` counts spikes of ``i`` 1..``n_lags`` bins after spikes of ``j``, ``C_ij(-)`` before,
  and ``E_ij = n_lags * N_i * N_j / n_bins`` the count expected for independent units, ``n_bins``
  the recorded bins (the empty gap bins not counted) (directed, antisymmetric).
* :func:`glm_connectivity`: Poisson GLM coupling, one scikit-learn ``PoissonRegressor`` per
  target unit on the counts of every unit (itself included) summed over the previous ``n_lags``
  bins; ``M[i, j]`` is the coefficient of unit ``j``'s history in unit ``i``'s model (directed).
  It fits only bins of the segments whose whole history lies in the same segment (a segment's
  first ``n_lags`` bins are history only; the empty gap bins are never observations). The CCG
  needs no such rule: the gap bins hold no spikes, so they add nothing to ``C_ij(+/-)``, and
  ``E_ij`` leaves them out; the correlation baseline has no gap bins.

Scores (:func:`score_connectivity`): AUROC and AUPRC (scikit-learn) for separating true edges
from unconnected pairs, and direction accuracy: the share of true edges ``i <- j`` where the
estimate ranks ``M[i, j]`` above ``M[j, i]`` (ties count one half; reciprocal edges, true in both
directions, are left out).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import torch

from ..binning import bin_index, n_bins_covering, n_full_bins
from ..configuration_neuroformer import is_finite_number, is_whole_number
from ..io.output_folder import OutputFolderSpec, check_output_folder, move_into_place, warn_leftovers
from ..io.permissions import as_created
from ..jsonio import write_json
from ..metrics.bootstrap import merge_segments
from ..recording import SpikeRecording, check_is_recording, count_noun
from ..tokenization_neuroformer import check_tokenizer_matches_config
from ..windows import check_windows_apart, resolve_past_clip_starts, window_starts_array
from ._batches import (attention_batches, check_attention_model, check_finite_weights,
                       check_pass_settings, check_split_has_windows, model_unit_lookup)

READOUTS = ("last_layer", "mean", "rollout")

#: The fewest units whose double-centred matrices (the attention readouts and the uniform control) can
#: rank an edge above its reverse. Double centring over the off-diagonal pairs turns an excess ``a`` of
#: attention on the single pair ``[i, j]`` into ``[i, j] - [j, i] = a (n - 3) / (n - 1)``: on 2 units it
#: reverses every direction (a 2-unit hub network scored AUROC 0.000 and direction 0.000 while the
#: CCG and GLM baselines scored 1.000); on 3 units it ties a lone edge and reverses a hub's (a source onto
#: both others, k = 2 below). Enough units do not make every edge
#: directed: the edges of a source onto k of the others become a (n - 2 - k) / (n - 1) each (the
#: module docstring), so a source onto n - 2 or more units is tied or reversed (warned of).
MIN_UNITS_FOR_DIRECTION = 4

#: when a measured estimate is flagged in ``low_data_estimates`` (its scores are kept): see :func:`_data_used`
LOW_DATA_RULE = ("fewer spikes (attention and uniform control: query rows) than the candidate edges the estimate ranks "
                 "(n (n - 1) directed pairs; n (n - 1) / 2 for the undirected correlation): not one spike of evidence "
                 "per pair, so AUROC / AUPRC sit near chance whatever the network")


# ------------------------------------------------------------------------------------- attention
@torch.no_grad()
def attention_connectivity(
    model,
    tokenizer,
    recording: SpikeRecording,
    window_starts: Sequence[float],
    *,
    past_clip_starts: str | Sequence[float] | None = None,
    batch_size: int = 64,
    query: str = "predicted",
    device=None,
    progress: bool = False,
    windows_label: str = "window_starts",
    more_windows: str = "read the mass_* matrices, or pass more windows",
) -> Dict[str, object]:
    """Aggregate a Neuroformer's attention over windows into directed unit x unit matrices.

    See the module docstring for which query and key tokens count, how the two attentions of a
    decoder layer are combined, the rollout, and the normalisation.

    Args:
        model: a :class:`~hf_neuroformer.NeuroformerForPreTraining` (or ``NeuroformerModel``).
        tokenizer: its tokenizer (knows ``recording``'s units).
        recording: the spikes.
        window_starts: ``(n_windows,)`` current-window starts, s, at least ``current_window`` apart
            (any order).
        past_clip_starts: ``None`` (no clip; default), ``(n_windows,)`` seconds (the past window starts no
            earlier than this; NaN: no clip), ``"trials"`` (each window's trial start, as a trial-mode model
            read its past) or ``"auto"`` (the start of the recorded stretch holding the window, where its past
            window reaches before it: a stretch's first windows are read with a partial, possibly empty,
            past, and no window is refused for a past in unrecorded time), resolved and checked as every
            reader of windows does (:func:`~hf_neuroformer.windows.resolve_past_clip_starts`).
        batch_size: windows per forward pass.
        query: ``"predicted"`` (row = the unit the query predicts, default) or ``"input"``
            (row = the unit of the query token).
        device: torch device (default: the model's).
        progress: a bar over the windows (``attention over windows``, standard error; off with
            ``TQDM_DISABLE=1``).
        windows_label, more_windows: what the warning of too few queried units names as the
            windows' origin and advises (:func:`run_connectivity` names its ``split`` /
            ``max_windows``, the command line ``--split`` / ``--max-windows``).

    Returns:
        dict with, for each readout in ``("last_layer", "mean", "rollout")``,
        ``attention_<readout>`` ``(n_units, n_units)`` float64 target x source (normalised as in
        the module docstring) and ``mass_<readout>`` (summed attention); ``uniform_control``
        (the same normalisation of uniform attention) and ``mass_uniform``; ``n_queries``
        ``(n_units,)`` int64 query rows per target unit; ``n_windows``; ``n_pairs_unseen``
        (off-diagonal pairs never in the same context: uniform mass 0).

    Warns:
        UserWarning: ``recording`` has fewer than :data:`MIN_UNITS_FOR_DIRECTION` (4) units, where the
            double centring reverses every edge's direction (2 units), or ties a lone edge and reverses a
            hub's (3 units); or
            fewer than 3 of its units have query rows in the windows (with 2, the direction between
            them is reversed as on a 2-unit network).

    Raises:
        TypeError: a ``model`` other than those above (a path, a behaviour decoder), a ``tokenizer``
            other than a ``NeuroformerTokenizer`` (a processor) or a ``recording`` other than a
            ``SpikeRecording`` (a path):
            :func:`~hf_neuroformer.analysis._batches.check_attention_model`,
            :func:`~hf_neuroformer.recording.check_is_recording`,
            :func:`~hf_neuroformer.tokenization_neuroformer.check_tokenizer_matches_config`.
        ValueError: unknown ``query``; ``window_starts`` that are not 1-D (a ``(n, 1)`` column or a
            ``(n_trials, k)`` grid is refused, not flattened); no windows; windows that overlap or repeat
            (starts less than ``current_window`` apart: the shared spikes' queries would count once per
            window; refused as :func:`~hf_neuroformer.generation.generate_spikes` refuses them,
            :func:`~hf_neuroformer.windows.check_windows_apart`); a window whose past window (from its clip
            on) starts before the recorded time holding it (read as silence; refused as generate_spikes does);
            ``past_clip_starts`` that are not float64 real numbers (text, booleans, float32), not one per window, or after their window's
            start, ``"trials"`` for a recording without trials, or another string (named ``past_clip_starts``, as
            :func:`~hf_neuroformer.generation.generate_spikes` does); ``batch_size`` not an
            integer >= 1; a recording with a unit the model was not trained on (``UnknownUnitError``,
            naming the model's sessions) or a tokenizer that is not the model's (grown with
            ``add_units``: see :func:`~hf_neuroformer.analysis._batches.model_unit_lookup`).
    """
    # a model's or a recording's path, a decoder or a processor failed later with an AttributeError
    # naming no argument
    check_attention_model(model)
    check_is_recording(recording)
    check_tokenizer_matches_config(tokenizer, model.config)  # a processor: pass processor.tokenizer
    if query not in ("predicted", "input"):
        raise ValueError(f"query: expected 'predicted' or 'input', got {query!r}")
    starts = window_starts_array(window_starts)
    # refused as generate_spikes refuses them: a duplicate start ([10.0, 10.0]) counted every query of the window
    # twice, and overlapping windows the spikes of the shared time once per window, without a word
    check_windows_apart(starts, model.config.current_window)
    # checked as generate_spikes checks them: np.asarray(..., dtype=float64) took the text "0.9", True (1.0 s) and
    # float32 clips (700.05 -> 700.0499877929688 s) without a word, where the other consumers refuse them
    # "trials" / "auto" / seconds, resolved as generate_spikes and window_log_likelihoods resolve them (warnings at the
    # caller's line, past torch.no_grad's wrapper)
    clips = resolve_past_clip_starts(recording, starts, past_clip_starts, past_window=model.config.past_window,
                                     current_window=model.config.current_window, stacklevel=3)
    if device is None:
        device = next(model.parameters()).device
    cfg = model.config
    n = recording.n_units
    if n < MIN_UNITS_FOR_DIRECTION:
        warnings.warn(f"recording: {count_noun(n, 'unit')}; the double-centred attention_* and uniform_control matrices cannot "
                      f"tell an edge from its reverse below {MIN_UNITS_FOR_DIRECTION} units (on 2 units they reverse "
                      "every direction; on 3 they tie a lone edge and reverse the edges of a source onto both other "
                      "units, a hub): read the mass_* matrices instead", UserWarning,
                      stacklevel=3)  # past torch.no_grad's wrapper, to the caller
    lut = torch.as_tensor(model_unit_lookup(tokenizer, recording, cfg), device=device)
    mass = {r: torch.zeros(n, n, dtype=torch.float64, device=device) for r in (*READOUTS, "uniform")}
    n_queries = torch.zeros(n, dtype=torch.int64, device=device)
    for _, batch, out in attention_batches(model, tokenizer, recording, starts, clips, batch_size, device,
                                           progress=progress):
        ids, pids = batch["input_ids"], batch["past_input_ids"]
        am, pam = batch["attention_mask"].bool(), batch["past_attention_mask"].bool()
        B, T = ids.shape
        P = pids.shape[1]
        # rows: which unit each query stands for, and that spike's dt bin
        cur_units = lut[ids].masked_fill(~am, -1)  # (B, T)
        dts = batch["dt_ids"]
        if query == "predicted":
            q_unit = torch.cat([cur_units[:, 1:], torch.full((B, 1), -1, device=device, dtype=torch.long)], 1)
            q_dt = torch.cat([dts[:, 1:], dts[:, -1:]], 1)
        else:
            q_unit, q_dt = cur_units, dts
        # current-window keys count only when strictly earlier in time than the row's spike: inside
        # a dt bin the token order is by unit token id (canonical), not by time
        earlier = (dts[:, None, :] < q_dt[:, :, None]).double()  # (B, T query, T key)
        key_keep = torch.cat([torch.ones(B, T, P, dtype=torch.float64, device=device), earlier], 2)
        # keys: past tokens then current tokens
        k_unit = torch.cat([lut[pids].masked_fill(~pam, -1), cur_units], 1)  # (B, P + T)
        onehot = torch.zeros(B, P + T, n + 1, dtype=torch.float64, device=device)
        onehot.scatter_(2, (k_unit + 1).clamp(min=0).unsqueeze(-1), 1.0)
        onehot = onehot[..., 1:]  # drop the "not a unit" column
        # uniform reference: 0.5 / n_past on each real past key, 0.5 / (q + 1) on current keys <= q
        n_past = pam.sum(1, keepdim=True).double()  # (B, 1)
        causal = torch.tril(torch.ones(T, T, dtype=torch.float64, device=device))
        uni_cur = 0.5 * causal / torch.arange(1, T + 1, device=device, dtype=torch.float64)[:, None]
        uni_cur = uni_cur[None] * am[:, None, :].double()  # padded keys get nothing
        uni_past = (0.5 * pam.double() / n_past)[:, None, :].expand(B, T, P)
        uniform = torch.cat([uni_past, uni_cur], 2)

        selfs = [w.double().mean(1) for w in out.attentions]  # (B, T, T) per layer
        crosses = [w.double().mean(1) for w in out.cross_attentions]  # (B, T, P)
        layer_w = [torch.cat([0.5 * c, 0.5 * s], 2) for s, c in zip(selfs, crosses)]
        weights = {"last_layer": layer_w[-1], "mean": torch.stack(layer_w).mean(0)}
        # rollout through the past encoder, then the decoder
        r_past = torch.eye(P, dtype=torch.float64, device=device).expand(B, P, P)
        eye_p = torch.eye(P, dtype=torch.float64, device=device)
        for w in (out.past_attentions or ()):
            r_past = (0.5 * w.double().mean(1) + 0.5 * eye_p) @ r_past
        r_past_full = torch.cat([r_past, torch.zeros(B, P, T, dtype=torch.float64, device=device)], 2)
        r = torch.cat([torch.zeros(B, T, P, dtype=torch.float64, device=device),
                       torch.eye(T, dtype=torch.float64, device=device).expand(B, T, T)], 2)
        eye_t = torch.eye(T, dtype=torch.float64, device=device)
        for s, c in zip(selfs, crosses):
            r = (0.5 * s + 0.5 * eye_t) @ r
            r = 0.5 * r + 0.5 * (c @ r_past_full)
        weights["rollout"] = r

        weights["uniform"] = uniform
        on_units = {name: (w * key_keep) @ onehot for name, w in weights.items()}  # (B, T, n)
        # a query counts when it stands for a unit and sees at least one earlier unit token
        valid = (q_unit >= 0) & (on_units["uniform"].sum(-1) > 0)
        rows_unit = q_unit[valid]
        n_queries += torch.bincount(rows_unit, minlength=n)
        for name, m in on_units.items():
            m = m[valid]
            total = m.sum(-1, keepdim=True)
            mass[name].index_add_(0, rows_unit, m / torch.where(total > 0, total, torch.ones_like(total)))
    result: Dict[str, object] = {"n_queries": n_queries.cpu().numpy(), "n_windows": int(len(starts))}
    off = ~np.eye(n, dtype=bool)
    nq = result["n_queries"]
    seen = nq > 0
    k = int(seen.sum())
    if n >= MIN_UNITS_FOR_DIRECTION and k < 3:
        # the row means are over the k queried rows: with 2, an excess A on [i, j] (B on [j, i]) became
        # attention[i, j] - attention[j, i] = (B - A) / (n - 1), reversed as on a 2-unit network
        # 'only 1 of ... units have query rows in these 1 windows' (count_noun's plurals)
        these = "this window" if len(starts) == 1 else f"these {len(starts)} windows"
        warnings.warn(f"{windows_label}: only {k} of the recording's {n} units {'has' if k == 1 else 'have'} query "
                      f"rows in {these} (the others fire no spike in {'it' if len(starts) == 1 else 'them'}, or none "
                      "after an earlier unit token); double "
                      f"centring over {count_noun(k, 'row')} "
                      + ("reverses the direction between them" if k == 2 else "leaves no pair to compare")
                      + f": {more_windows}", UserWarning, stacklevel=3)
    for name in (*READOUTS, "uniform"):
        m = mass[name].cpu().numpy()
        per_query = np.divide(m, nq[:, None], out=np.zeros_like(m), where=seen[:, None])
        norm = _double_centre(per_query, seen)
        result[f"mass_{name}"] = m
        result["uniform_control" if name == "uniform" else f"attention_{name}"] = norm
    result["n_pairs_unseen"] = int(((mass["uniform"].cpu().numpy() == 0) & off).sum())
    return result


def _double_centre(m: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``m - row mean - column mean + grand mean`` over the off-diagonal entries of the rows in
    ``rows`` (bool mask); other rows are 0. The diagonal is centred too but not used in the means."""
    n = m.shape[0]
    use = rows[:, None] & ~np.eye(n, dtype=bool)
    if not use.any():
        return np.zeros_like(m)
    x = np.where(use, m, np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "Mean of empty slice": a unit never queried (0 below)
        col = np.nanmean(x, 0)
        row = np.nanmean(x, 1)
    col = np.nan_to_num(col)
    row = np.nan_to_num(row)
    grand = float(np.nanmean(x))
    out = m - row[:, None] - col[None, :] + grand
    return np.where(rows[:, None], out, 0.0)


# ------------------------------------------------------------------------------------- baselines
def _segment_bins(recording: SpikeRecording, bin_size: float, segments=None):
    """``[(start s, n whole bins), ...]`` of the ``segments`` (default the time domain) that hold
    at least one whole bin of ``bin_size`` s, in time order, segments that overlap merged (by
    more than 1 ns; abutting ones stay apart): the blocks of rows of :func:`binned_counts`. The
    overlapping trials of a trial split were binned once per trial, so their shared spikes
    counted twice in every baseline.

    Raises:
        ValueError: a segment that is not finite with ``start <= stop``, or that reaches outside the
            recording's ``time_domain`` (by more than 1 ns): the time outside was binned as silence,
            so ``[[0, 20]]`` on a 10-s recording doubled every CCG asymmetry and moved the
            correlations by half their size, without a word."""
    if segments is None:
        segments = np.asarray([recording.time_domain], dtype=np.float64)
    raw = np.asarray(segments, dtype=np.float64)
    if raw.size and (raw.ndim != 2 or raw.shape[1] != 2) and raw.shape != (2,):
        # reshape(-1, 2) read an (n, 3) array as rows of two: [[0, 5, 10]] x 2 became segments [0, 5], [10, 0] ...
        raise ValueError(f"segments: expected an (n, 2) array of [start, stop) s, got shape {raw.shape}")
    segments = raw.reshape(-1, 2)
    bad = ~(np.isfinite(segments).all(1) & (segments[:, 0] <= segments[:, 1]))
    if recording.time_domain is not None:
        t0, t1 = recording.time_domain
        bad |= (segments[:, 0] < t0 - 1e-9) | (segments[:, 1] > t1 + 1e-9)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"segments: expected finite [start, stop] s with start <= stop inside the recording's "
                         f"time_domain {recording.time_domain}, got {segments[i].tolist()} (segment {i}; "
                         f"{int(bad.sum())} of {len(segments)} segments); time outside the recording would be "
                         "counted as silence")
    out = [(float(a), n_full_bins(b - a, bin_size)) for a, b in merge_segments(segments)]
    return [(a, nb) for a, nb in out if nb > 0]


def binned_counts(recording: SpikeRecording, bin_size: float, segments=None, gap_bins: int = 0):
    """``(n_bins, n_units)`` spike counts (scipy CSR, int32) in ``bin_size`` s bins over
    ``segments`` (``(n, 2)`` s; default the time domain), segments joined with ``gap_bins``
    empty bins so that lagged products never pair bins of different segments (each segment that
    holds a whole bin is followed by ``gap_bins`` rows, the last one included).

    Raises:
        ValueError: ``bin_size`` not > 0 (NaN included); no bin fits in ``segments``; a segment
            not finite with ``start <= stop`` or outside the recording's ``time_domain``.
    """
    import scipy.sparse as sp

    if not bin_size > 0:
        raise ValueError(f"bin_size: expected a positive number of seconds, got {bin_size}")
    blocks = _segment_bins(recording, bin_size, segments)
    if not blocks:
        shown = recording.time_domain if segments is None else np.asarray(segments, dtype=np.float64).tolist()
        raise ValueError(f"segments: no bin of {bin_size} s fits in {shown}")
    rows, cols, offset = [], [], 0
    for a, nb in blocks:
        i0, i1 = np.searchsorted(recording.spike_times, [a, a + nb * bin_size], side="left")
        t = recording.spike_times[i0:i1]
        rows.append(offset + np.minimum(bin_index(t - a, bin_size), nb - 1))  # a spike on an edge starts its bin
        cols.append(recording.unit_ids[i0:i1])
        offset += nb + gap_bins
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    x = sp.csr_matrix((np.ones(r.size, dtype=np.int32), (r, c)), shape=(offset, recording.n_units))
    x.sum_duplicates()
    return x


def _n_binned_segments(recording: SpikeRecording, bin_size: float, segments=None) -> int:
    """How many of ``segments`` (default the time domain) hold at least one whole bin, i.e. get
    ``gap_bins`` empty bins after them in :func:`binned_counts`."""
    return len(_segment_bins(recording, bin_size, segments))


#: Fewest bins :func:`correlation_connectivity` correlates over (as the binned fidelity metrics need).
MIN_CORRELATION_BINS = 3


def correlation_connectivity(recording: SpikeRecording, bin_size: float = 0.01, segments=None) -> np.ndarray:
    """Pearson correlation of binned spike counts, ``(n_units, n_units)`` float64, symmetric
    (undirected), diagonal 0; units without spikes get 0.

    Args:
        recording: the spikes.
        bin_size: bin width, s.
        segments: ``(n, 2)`` float ``[start, stop)`` s to bin, inside the time domain (default the whole of it).

    Raises:
        ValueError: as :func:`binned_counts`; fewer than :data:`MIN_CORRELATION_BINS` bins in
            ``segments`` (over 2 bins every correlation is +1, -1 or 0 whatever the spikes: a
            ``bin_size`` of 10, meant as 10 ms, gave that matrix over a 20-s recording without a word).
    """
    x = binned_counts(recording, bin_size, segments)
    nb = x.shape[0]
    if nb < MIN_CORRELATION_BINS:
        raise ValueError(f"bin_size: expected at least {MIN_CORRELATION_BINS} whole bins of {bin_size:g} s in the "
                         f"segments, got {count_noun(nb, 'bin')} (a correlation over so few bins is +1, -1 or 0 "
                         "whatever the spikes); bin_size is in seconds (0.01 for 10 ms)")
    mean = np.asarray(x.mean(0)).ravel()
    cov = (x.T @ x).toarray().astype(np.float64) / nb - np.outer(mean, mean)
    sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    denom = np.outer(sd, sd)
    c = np.divide(cov, denom, out=np.zeros_like(cov), where=denom > 0)
    np.fill_diagonal(c, 0.0)
    return c


def ccg_asymmetry(recording: SpikeRecording, bin_size: float = 0.002, n_lags: int = 5, segments=None) -> np.ndarray:
    """Cross-correlogram asymmetry (see the module docstring), ``(n_units, n_units)`` float64,
    target x source, antisymmetric; 0 where a unit has no spikes.

    Args:
        recording: the spikes.
        bin_size: bin width, s.
        n_lags: lags counted, in bins (1..``n_lags`` bins after / before), an integer >= 1.
        segments: ``(n, 2)`` float ``[start, stop)`` s to bin, inside the time domain (default the whole of it); lags
            never pair bins of different segments.

    Raises:
        ValueError: ``n_lags`` not an integer >= 1; as :func:`binned_counts`.
    """
    if not is_whole_number(n_lags) or n_lags < 1:
        raise ValueError(f"n_lags: expected an integer >= 1, got {n_lags!r}")
    x = binned_counts(recording, bin_size, segments, gap_bins=n_lags).astype(np.float64).tocsr()
    n = x.shape[1]
    # E_ij is over the recorded bins: the n_lags empty bins put after each segment hold no spikes
    # by construction (counting them made every entry larger by the share of gap bins)
    nb = x.shape[0] - n_lags * _n_binned_segments(recording, bin_size, segments)
    fwd = np.zeros((n, n))
    # a lag of a segment's length or more pairs no two bins of one segment (the gaps keep segments apart):
    # n_lags=10**6 ran a million sparse products of nothing, minutes for a 3-unit, 10-s recording
    longest = max(nb_seg for _, nb_seg in _segment_bins(recording, bin_size, segments))
    for k in range(1, min(n_lags, longest - 1) + 1):
        fwd += (x[k:].T @ x[:-k]).toarray()  # [i, j]: spikes of i k bins after spikes of j
    counts = np.asarray(x.sum(0)).ravel()
    exp = n_lags * np.outer(counts, counts) / nb
    a = np.divide(fwd - fwd.T, exp, out=np.zeros((n, n)), where=exp > 0)
    np.fill_diagonal(a, 0.0)
    return a


def _fit_one_glm(x, y, alpha: float, max_iter: int):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import PoissonRegressor

    if y.sum() == 0:
        return np.zeros(x.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return PoissonRegressor(alpha=alpha, max_iter=max_iter).fit(x, y).coef_


def _check_max_bins(max_bins) -> Optional[int]:
    """``max_bins`` as an int (``None`` kept); a negative one sliced the fitted rows from the end
    (``rows[:-1]``: all but the last) while :func:`glm_span` reported no bin fitted, and 0 failed
    with a message about the segments.

    Raises:
        ValueError: ``max_bins`` is not None nor an integer >= 1.
    """
    if max_bins is None:
        return None
    if isinstance(max_bins, bool) or not is_whole_number(max_bins) or max_bins < 1:
        raise ValueError(f"max_bins: expected None (every bin) or an integer >= 1, got {max_bins!r}")
    return int(max_bins)


def _check_n_jobs(n_jobs) -> int:
    """``n_jobs`` as an int. joblib refuses 0 only when the fits start ("n_jobs == 0 in Parallel has
    no meaning"), which in :func:`run_connectivity` is after the whole attention pass, and takes
    1.5 without a word.

    Raises:
        ValueError: ``n_jobs`` is not an integer other than 0 (joblib's: -1 = every CPU core).
    """
    if isinstance(n_jobs, bool) or not is_whole_number(n_jobs) or n_jobs == 0:
        raise ValueError(f"n_jobs: expected an integer >= 1 (parallel GLM fits) or < 0 (joblib: -1 = every CPU "
                         f"core), got {n_jobs!r}")
    return int(n_jobs)


def _glm_rows(blocks, n_lags: int, max_bins: Optional[int]) -> np.ndarray:
    """Rows of :func:`binned_counts` (``gap_bins=n_lags``, segment blocks ``blocks`` as from
    :func:`_segment_bins`) that :func:`glm_connectivity` fits, int64 ascending: each segment's
    bins from its ``n_lags``-th on (their whole history lies in the segment), never a gap bin;
    the first ``max_bins`` of them (``None``: all)."""
    rows, offset = [], 0
    for _, nb in blocks:
        rows.append(np.arange(offset + n_lags, offset + nb, dtype=np.int64))
        offset += nb + n_lags
    rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
    max_bins = _check_max_bins(max_bins)
    return rows if max_bins is None else rows[:max_bins]


def glm_span(segments, bin_size: float, n_lags: int = 5, max_bins: Optional[int] = 200_000) -> Dict[str, float]:
    """The part of ``segments`` that :func:`glm_connectivity` fits with ``max_bins``. It fits
    each bin whose ``n_lags`` bins of history lie inside its segment (so not a segment's first
    ``n_lags`` bins, which serve as history only), the first ``max_bins`` such bins in the order
    of ``segments``: on a span longer than about ``max_bins * bin_size`` s (400 s at the
    defaults, less than the 600 s ``neuroformer simulate`` draws by default) the GLM sees only
    its start. A segment of ``n_lags`` bins or fewer has no bin to fit. Segments that overlap are
    merged first, in time order, as :func:`binned_counts` bins them.

    Returns:
        ``{"seconds_binned": s of whole bins over all segments, "seconds_fitted": s of them the
        GLM reads (the fitted bins and the history before them), "fitted_until_s": time of the
        last fitted bin's end (``None``: no bin fitted), "bins_fitted": number of fitted bins
        (the GLM's observations, at most ``max_bins``)}``.

    Raises:
        ValueError: ``max_bins`` not None nor an integer >= 1.
    """
    segments = merge_segments(segments)
    left = _check_max_bins(max_bins)
    total = read = fitted = 0
    until = None
    for a, b in segments:
        nb = n_full_bins(b - a, bin_size)
        if nb <= 0:
            continue
        total += nb
        take = max(0, nb - n_lags) if left is None else max(0, min(nb - n_lags, left))
        if take:
            left = None if left is None else left - take
            fitted += take
            read += n_lags + take
            until = a + (n_lags + take) * bin_size
    return {"seconds_binned": round(total * bin_size, 9), "seconds_fitted": round(read * bin_size, 9),
            "fitted_until_s": None if until is None else round(until, 9), "bins_fitted": int(fitted)}


def glm_connectivity(
    recording: SpikeRecording,
    bin_size: float = 0.002,
    n_lags: int = 5,
    segments=None,
    alpha: float = 1e-4,
    max_iter: int = 100,
    max_bins: Optional[int] = 200_000,
    n_jobs: int = 1,
    progress: bool = False,
) -> np.ndarray:
    """Poisson GLM coupling weights (see the module docstring), ``(n_units, n_units)`` float64,
    target x source; the diagonal (each unit's own history) is set to 0.

    The observations are the bins of ``segments`` whose ``n_lags`` bins of history lie inside
    the same segment: a segment's first ``n_lags`` bins are history only, and the empty bins
    :func:`binned_counts` puts between segments (so that no history crosses a segment edge) are
    never fitted (fitting them added rows of 0 spikes with the previous segment's activity as
    history, a bias toward negative coupling).

    Args:
        recording, bin_size (s), n_lags, segments: as :func:`ccg_asymmetry`.
        alpha: L2 penalty of ``PoissonRegressor`` (features are standardised first, the
            coefficients are rescaled back to per-count units).
        max_iter: L-BFGS iterations per unit. The fits stop at scikit-learn's default tolerance
            (``tol=1e-4`` on the gradient of the mean deviance), after about 4-6 iterations on 2 ms
            spike counts: short of the optimum (with ``tol=1e-12``, 13-20 iterations and about 3x the
            time, coefficients moved by up to 0.12 on a 100-unit hub-glm network over 100 s and up to
            1.0 on a 30-unit LIF one over 40 s), while every AUROC / AUPRC moved by less than 0.003.
        max_bins: fit at most this many bins (the first ones; ``None``: all), to bound the cost
            (``n_units`` fits on a ``(max_bins, n_units)`` design); :func:`glm_span` says how
            much of ``segments`` that leaves (``run_connectivity`` records it).
        n_jobs: parallel fits (joblib; loky worker processes when > 1, -1: every CPU core); each fit
            uses one BLAS thread.
        progress: a bar over the units' fits (``fitting Poisson GLMs``), on standard error: one
            L-BFGS fit per unit on the whole design, the slow part of ``neuroformer connectivity``
            (300 units on 60 s at 2 ms: about 30 s on 2 CPU cores).

    Raises:
        ValueError: as :func:`ccg_asymmetry`; no segment longer than ``n_lags`` bins (no bin
            with a whole history to fit); ``max_bins`` not None nor an integer >= 1; ``n_jobs`` not an
            integer other than 0.
    """
    from joblib import Parallel, delayed, parallel_config

    if not is_whole_number(n_lags) or n_lags < 1:
        raise ValueError(f"n_lags: expected an integer >= 1, got {n_lags!r}")
    max_bins = _check_max_bins(max_bins)
    n_jobs = _check_n_jobs(n_jobs)
    x = binned_counts(recording, bin_size, segments, gap_bins=n_lags)
    rows = _glm_rows(_segment_bins(recording, bin_size, segments), n_lags, max_bins)
    if rows.size == 0:
        raise ValueError(f"segments: no segment is longer than n_lags = {n_lags} bins of {bin_size} s, so no bin "
                         "has its whole history inside its segment; pass longer segments or a smaller n_lags / "
                         "bin_size")
    x = x[: rows[-1] + 1].astype(np.float64).toarray()  # nothing after the last fitted bin is read
    nb, n = x.shape
    hist = np.zeros((nb, n))
    for k in range(1, n_lags + 1):
        hist[k:] += x[:-k]
    hist, y = hist[rows], x[rows]
    sd = hist.std(0)
    sd[sd == 0] = 1.0
    z = (hist - hist.mean(0)) / sd
    from ..progress import progress_bar

    units = progress_bar(range(n), desc="fitting Poisson GLMs", unit="unit", disable=not progress)
    # one BLAS thread per fit (more cores: n_jobs): each L-BFGS step is a small product, and
    # OpenBLAS's threads waiting on each other made the fits 15-25x slower at 40 units and 1.8x
    # at 300 units (60 s at 2 ms bins, 2 cores), with the same coefficients
    from threadpoolctl import threadpool_limits

    # the limit holds in this process (n_jobs=1); loky's worker processes do not inherit it and
    # take cpu_count // n_jobs BLAS threads each (8 per fit with n_jobs=2 on 16 cores) unless told
    workers = {} if n_jobs == 1 else {"backend": "loky", "inner_max_num_threads": 1}
    with threadpool_limits(limits=1, user_api="blas"), parallel_config(**workers):
        coefs = Parallel(n_jobs=n_jobs)(delayed(_fit_one_glm)(z, y[:, i], alpha, max_iter) for i in units)
    w = np.vstack(coefs) / sd[None, :]
    np.fill_diagonal(w, 0.0)
    return w


# ------------------------------------------------------------------------------------- scores
def _ranked_direction(est: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> float:
    if rows.size == 0:
        return float("nan")
    a, b = est[rows, cols], est[cols, rows]
    return float(np.mean((a > b) + 0.5 * (a == b)))


def score_connectivity(estimate: np.ndarray, weights: np.ndarray, edge_kind: Optional[np.ndarray] = None, *,
                       unmeasured: Optional[str] = None) -> Dict[str, float]:
    """Score a directed estimate against the ground truth.

    Off-diagonal pairs only. ``auroc`` / ``auprc``: excitatory edges (``weights > 0``) against
    unconnected pairs (``weights == 0``); inhibitory edges are in neither set. ``hub_auroc`` /
    ``hub_auprc``: hub edges (``edge_kind == 1``) against unconnected pairs (``edge_kind == 0``).
    ``direction_accuracy`` / ``hub_direction_accuracy``: share of those true edges ``i <- j``
    with ``estimate[i, j] > estimate[j, i]`` (ties count 1/2; 0.5 for a symmetric estimate),
    over the edges whose reverse ``j <- i`` is not also in the set: for a reciprocal pair no
    estimate can rank both edges above their reverse, so they are left out (counted in
    ``n_reciprocal_edges`` / ``hub_n_reciprocal_edges``, both edges of a pair) and the ground
    truth scores 1.
    ``auprc`` is scikit-learn's average precision (``average_precision_score``: the sum over
    score thresholds of precision times the increase in recall, a step function, not the
    trapezoidal area under the PR curve, which is optimistic); ``auroc`` is
    ``roc_auc_score`` (ties count 1/2). AUPRC's chance level is the share of positives,
    reported as ``*_prevalence``.

    Args:
        estimate: ``(n, n)`` target x source; only the order of its values counts (``+-inf``
            rank above / below every finite value), NaN is treated as the lowest score.
        weights: ``(n, n)`` true weights, target x source.
        edge_kind: ``(n, n)`` int (0 none, 1 hub, 2 weak); without it (or without hub edges)
            the hub scores are NaN.
        unmeasured: why ``estimate`` holds no measurement (a matrix that is constant because nothing
            was there to measure: attention with query rows of fewer than 2 units, a baseline over fewer than 2 units that
            fire; see :func:`run_connectivity`), or None. When given, every AUROC, AUPRC and direction
            accuracy is NaN (a constant matrix scored as chance, AUROC 0.500, as if measured) and the
            reason is kept in ``unmeasured_reason``; the prevalences and counts stay.

    Returns:
        dict of floats (NaN where a set is empty) and the counts ``n_edges``, ``n_hub_edges``,
        ``n_unconnected``, ``n_reciprocal_edges``, ``hub_n_reciprocal_edges``; ``hub_reason``: None when the hub scores are defined, else why not
        (str: no hub units, or hub edges but no unconnected pair); ``reason``: the same for the
        all-excitatory ``auroc`` / ``auprc`` (None, or the counts of edges and unconnected pairs when one is 0);
        ``unmeasured_reason``: ``unmeasured`` (None: the estimate is scored, even a constant one).

    Raises:
        ValueError: ``weights`` not square (named ``weights``); ``estimate`` or ``edge_kind`` not of its
            shape; ``weights`` NaN or
            infinite off the diagonal (such a pair is neither an edge nor unconnected); ``edge_kind``
            marking an edge (1 or 2) where the weight is 0 off the diagonal (named ``edge_kind``, with
            the count and the first such pair).
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    est = np.asarray(estimate, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != w.shape[1]:
        # a (3, 4) truth was blamed on the estimate: "estimate: expected a square matrix of the ground
        # truth's shape (3, 4), got (3, 4)"
        raise ValueError(f"weights: expected a square (n_units, n_units) ground truth, target x source, got shape "
                         f"{w.shape}")
    if est.shape != w.shape:
        raise ValueError(f"estimate: expected a square matrix of the ground truth's shape {w.shape}, got {est.shape}")
    off_diagonal = ~np.eye(w.shape[0], dtype=bool)
    if not np.isfinite(w[off_diagonal]).all():
        # a NaN pair is neither an edge (w > 0) nor unconnected (w == 0): it was left out of every score
        bad = np.argwhere(~np.isfinite(w) & off_diagonal)
        raise ValueError(f"weights: expected finite ground-truth weights off the diagonal, got {len(bad)} NaN / "
                         f"infinite (first: [{bad[0, 0]}, {bad[0, 1]}] = {w[tuple(bad[0])]}); such a pair would be "
                         "left out of every score")
    if edge_kind is not None and np.shape(edge_kind) != w.shape:  # a (n,) hub flag was broadcast over the rows
        raise ValueError(f"edge_kind: expected the ground truth's shape {w.shape} (target x source, 0 none, 1 hub, "
                         f"2 weak), got {np.shape(edge_kind)}")
    if edge_kind is not None:  # a hub mark on a zero weight made the truth itself score a hub AUROC below 1
        from ..simulation import check_edge_kinds

        check_edge_kinds(edge_kind, w)
    # every score depends only on the order of the values, so they are replaced by their ranks:
    # +-inf (a log of an estimate that is 0 somewhere) failed in scikit-learn ("Input contains
    # infinity"), and NaN ranks below everything, -inf included
    from scipy.stats import rankdata

    nan = np.isnan(est)
    est = np.where(nan, 0.0, rankdata(np.where(nan, -np.inf, est), method="average").reshape(est.shape))
    off = ~np.eye(w.shape[0], dtype=bool)
    out: Dict[str, float] = {}

    def auc(pos, neg, prefix):
        y = np.concatenate([np.ones(pos.sum()), np.zeros(neg.sum())])
        s = np.concatenate([est[pos], est[neg]])
        ok = pos.any() and neg.any()
        out[f"{prefix}auroc"] = float(roc_auc_score(y, s)) if ok else float("nan")
        out[f"{prefix}auprc"] = float(average_precision_score(y, s)) if ok else float("nan")
        out[f"{prefix}prevalence"] = float(y.mean()) if y.size else float("nan")
        # an edge whose reverse is also in the set (i <- j and j <- i both true) has no right
        # direction: no estimate can rank both above their reverse, so the truth itself scored
        # below 1 (0.994 on the default hub layout's weak reciprocal edges); leave those out
        one_way = pos & ~pos.T
        r, c = np.nonzero(one_way)
        out[f"{prefix}direction_accuracy"] = _ranked_direction(est, r, c)
        out[f"{prefix}n_reciprocal_edges"] = int((pos & pos.T).sum())

    none = (w == 0) & off
    auc((w > 0) & off, none, "")
    out["n_edges"] = int(((w > 0) & off).sum())
    out["n_unconnected"] = int(none.sum())
    # recorded as the hub scores' reason is: scores.json held null AUROC / AUPRC without a word on why
    out["reason"] = (None if out["n_edges"] and out["n_unconnected"] else
                     f"the ground truth has {out['n_edges']} excitatory edges and {out['n_unconnected']} unconnected "
                     "pairs; both are needed")
    # a hub mark on the diagonal is no edge (self-connections are never scored): it made the hub scores
    # NaN with hub_reason None, as if they were defined, or "one class only: 0 hub edges ..."
    if edge_kind is not None and ((np.asarray(edge_kind) == 1) & off).any():
        k = np.asarray(edge_kind)
        auc((k == 1) & off, (k == 0) & off, "hub_")
        out["n_hub_edges"] = int(((k == 1) & off).sum())
        n_none = int(((k == 0) & off).sum())
        out["hub_reason"] = None if n_none else (
            f"one class only: {out['n_hub_edges']} hub edges and no unconnected pair to rank them against")
    else:
        for key in ("hub_auroc", "hub_auprc", "hub_prevalence", "hub_direction_accuracy"):
            out[key] = float("nan")
        out["n_hub_edges"] = 0
        out["hub_n_reciprocal_edges"] = 0
        out["hub_reason"] = ("no hub units: the network has no hub edges (edge kinds not recorded)" if edge_kind is None
                             else "no hub units: the network has no hub edges")
    # a matrix of no measurement ranks every pair alike: it scored chance (AUROC 0.500) as if measured
    out["unmeasured_reason"] = unmeasured
    if unmeasured is not None:
        for prefix in ("", "hub_"):
            for key in ("auroc", "auprc", "direction_accuracy"):
                out[f"{prefix}{key}"] = float("nan")
    return out


# ------------------------------------------------------------------------------------- figure
def control_note(scores: Dict[str, Dict[str, float]]) -> Optional[str]:
    """The note comparing the learned attention (``attention_mean``) with the uniform-attention control
    on hub AUPRC (all-excitatory AUPRC where the network has no hub edges: ``hub_reason`` of
    ``scores["truth"]``), or None where the control scores below the learned attention or either score
    is not finite (an unmeasured estimate's is null: no note compares it).

    Args:
        scores: ``{name: score_connectivity(...)}`` as in ``scores.json``'s ``scores``.

    Returns:
        with the control at or below chance (AUPRC's chance level: the share of true edges): "neither
        ... scores above chance"; else that the signal comes from which spikes precede which, not from
        what the model learned (said where no method saw any, it claimed a signal that was not there)."""
    import math

    hubs = scores.get("truth", {}).get("hub_reason") is None
    key, what = ("hub_auprc", "hub AUPRC") if hubs else \
        ("auprc", "AUPRC (all excitatory edges; the network has no hub edges)")
    control = scores.get("uniform_control", {}).get(key)
    learned = scores.get("attention_mean", {}).get(key)
    chance = scores.get("uniform_control", {}).get("hub_prevalence" if hubs else "prevalence")
    if control is None or learned is None or not (math.isfinite(control) and math.isfinite(learned)) \
            or control < learned:
        return None
    if chance is not None and math.isfinite(chance) and control <= chance + 1e-12:
        return (f"neither the learned attention ({learned:.3f}) nor the uniform-attention control ({control:.3f}) "
                f"scores above chance ({chance:.3f}, the share of true edges) on {what}")
    return ("the uniform-attention control (same keys, no learned weights) scores at least as well as the learned "
            f"attention on {what}: here the {'hub ' if hubs else ''}signal comes from which spikes precede which, "
            "not from what the model learned")


#: :func:`connectivity_figure` names every unit on both axes up to this many units (more names than
#: that overlap at the figure's size, 4.2 inches per panel); above it only the hub units are ticked.
MAX_NAMED_UNITS_IN_FIGURE = 24


def connectivity_figure(panels: Dict[str, np.ndarray], hub_units=(), path=None, title: str = "",
                        full_range: Sequence[str] = (), colorbar_labels: Optional[Dict[str, str]] = None,
                        unit_names: Optional[Sequence[str]] = None, overwrite: bool = False):
    """Side-by-side heat maps (target rows x source columns), one per ``panels`` entry, each
    with its own colour range: the 1st-99th percentile of the off-diagonal values (symmetric
    around 0 when the matrix has both signs), except for the panels named in ``full_range``
    (the ground truth), drawn over their whole range on a diverging scale centred at 0
    (``RdBu_r``, limits +-max|w|; linear up to the median non-zero |w|, logarithmic above it:
    ``matplotlib.colors.SymLogNorm``), so inhibitory edges show blue, unconnected pairs white,
    hub weights far above the random edges are not clipped to the same colour, and the random
    edges do not fade to white beside them. Hub units are
    marked with ticks on the source axis. ``colorbar_labels`` (panel name -> text) labels each
    panel's colour bar with what its values are. With ``unit_names``, the ticks are unit names, not
    indices: every unit's on both axes up to :data:`MAX_NAMED_UNITS_IN_FIGURE` units, the hub units'
    on the source axis above it.

    Args:
        panels: panel title -> ``(n_units, n_units)`` matrix, target x source (any unit; the diagonal
            is not drawn).
        hub_units: indices of the hub units (ticks on the source axis).
        path: where to write the PNG (``None``: not written); a file already there is refused
            (``FileExistsError``) unless ``overwrite`` (see :func:`~hf_neuroformer.plotting.check_figure_path`).
        overwrite: replace a file already at ``path`` (default False).
        title: the figure's title.
        full_range: the panels drawn over their whole range (see above).
        colorbar_labels: panel title -> colour bar label.
        unit_names: the name of each row / column's unit (``n_units`` entries), or None (indices).

    Returns:
        the :class:`matplotlib.figure.Figure` (written atomically to ``path`` when given).

    Raises:
        ValueError: no panel; a panel that is not a square 2-D matrix, or of another shape than the
            first (``panels['name']: ...``); ``hub_units`` that are not integers in ``[0, n_units)``;
            ``unit_names`` of another length than the matrices' side.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..plotting import save_figure

    # no panel failed in matplotlib ("Number of columns must be a positive integer, not 0"), a 1-D one with
    # numpy's IndexError, and a 5 x 5 panel was drawn beside 4 x 4 ones: none named an argument
    if not panels:
        raise ValueError("panels: expected at least one (n_units, n_units) matrix, got none")
    first = None
    for name, m in panels.items():
        shape = np.shape(m)
        if len(shape) != 2 or shape[0] != shape[1]:
            raise ValueError(f"panels[{name!r}]: expected a square (n_units, n_units) matrix, got shape {shape}")
        if first is None:
            first = (name, shape)
        elif shape != first[1]:
            raise ValueError(f"panels[{name!r}]: expected shape {first[1]} like panels[{first[0]!r}], got {shape}")
    n = first[1][0]
    hubs = np.asarray(hub_units).reshape(-1)
    if hubs.size and not (hubs.dtype.kind in "iu" or (hubs.dtype.kind == "f" and np.all(hubs == np.round(hubs)))):
        raise ValueError(f"hub_units: expected integer unit indices, got {hubs.tolist()}")
    outside = hubs[(hubs < 0) | (hubs >= n)] if hubs.size else hubs
    if outside.size:
        # ticks past the matrix stretched the axis (a 4-unit panel drawn out to unit 9); -1 ticked nothing
        # and, with unit_names, named the last unit a hub
        raise ValueError(f"hub_units: expected unit indices in [0, {n}) for {n} units, got "
                         f"{[int(h) for h in outside]}")
    hub_units = [int(h) for h in hubs]
    if unit_names is not None:
        unit_names = [str(n) for n in unit_names]
        sides = {np.shape(m)[0] for m in panels.values()}
        if sides != {len(unit_names)}:
            raise ValueError(f"unit_names: expected one name per row / column of the matrices ({sorted(sides)}), got "
                             f"{len(unit_names)} names")
    k = len(panels)
    fig = Figure(figsize=(4.2 * k, 4.6))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, k, squeeze=False)[0]
    for ax, (name, m) in zip(axes, panels.items()):
        m = np.asarray(m, dtype=np.float64).copy()
        off = ~np.eye(m.shape[0], dtype=bool)
        vals = m[off]
        vals = vals[np.isfinite(vals)]
        np.fill_diagonal(m, np.nan)
        if name in full_range:
            from matplotlib.colors import SymLogNorm

            lim = float(np.abs(vals).max()) if vals.size and np.abs(vals).max() > 0 else 1.0
            nonzero = np.abs(vals[vals != 0])
            # linear up to the median edge weight, logarithmic above: the weak edges stay visible
            # next to hub weights ~10x larger (a linear scale drew them white)
            thresh = float(np.median(nonzero)) if nonzero.size else lim
            # near-subnormal weights (~1e-320) break SymLogNorm's inverse in the colour bar: linear then
            norm = SymLogNorm(thresh, vmin=-lim, vmax=lim, base=10) if thresh > 1e-200 else None
            if norm is None:
                im = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
            else:
                im = ax.imshow(m, cmap="RdBu_r", norm=norm, interpolation="nearest")
        else:
            lo, hi = (np.percentile(vals, [1, 99]) if vals.size else (0.0, 1.0))
            if lo < 0 < hi:
                lim = max(-lo, hi)
                im = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
            else:
                im = ax.imshow(m, cmap="viridis", vmin=lo, vmax=hi if hi > lo else lo + 1, interpolation="nearest")
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("source unit j")
        ax.set_ylabel("target unit i")
        if unit_names is not None and len(unit_names) <= MAX_NAMED_UNITS_IN_FIGURE:
            ticks = list(range(len(unit_names)))
            ax.set_xticks(ticks)
            ax.set_xticklabels(unit_names, fontsize=6, rotation=90)
            ax.set_yticks(ticks)
            ax.set_yticklabels(unit_names, fontsize=6)
            for h in hub_units:  # the hubs stand out among the names
                ax.get_xticklabels()[int(h)].set_fontweight("bold")
            ax.set_xlabel("source unit j (hubs in bold)" if len(hub_units) else "source unit j")
        elif len(hub_units):
            ax.set_xticks(list(hub_units))
            ax.set_xticklabels([unit_names[int(h)] if unit_names is not None else str(h) for h in hub_units],
                               fontsize=7)
        cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
        if colorbar_labels and colorbar_labels.get(name):
            cb.set_label(colorbar_labels[name], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path, overwrite=overwrite)
    return fig


# ------------------------------------------------------------------------------------- pipeline
#: The matrices :func:`run_connectivity` writes (``<name>.npy``).
CONNECTIVITY_MATRICES = ("truth", "attention_last_layer", "attention_mean", "attention_rollout", "uniform_control",
                         "correlation", "ccg_asymmetry", "glm")


def _is_connectivity_scores(folder) -> bool:
    import json

    try:
        report = json.loads((Path(folder) / "scores.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(report, dict) and "scores" in report and "matrix_convention" in report


#: What :func:`run_connectivity` writes: only such a folder is replaced by ``overwrite``.
CONNECTIVITY_OUTPUT = OutputFolderSpec(
    command="connectivity", marker="scores.json", is_own=_is_connectivity_scores,
    patterns=("scores.json", "connectivity.png", *(f"{m}.npy" for m in CONNECTIVITY_MATRICES)),
)


def _check_cut_segment(segment, max_windows: int, current_window: float, bin_size: float, n_lags: int,
                       corr_bin_size: float) -> None:
    """The last segment as ``max_windows`` cut it (``[start, end of the last kept window]`` s) must
    still hold what each baseline needs: ``n_lags + 1`` bins of ``bin_size`` (the CCG / GLM
    history and one bin to fit) and one bin of ``corr_bin_size``. The split's whole segments are
    checked before the cut; a short cut one (``--max-windows 1 --corr-bin-size 0.1`` leaves
    0.05 s) failed after the attention pass with "segments: no bin of 0.1 s fits", naming no flag,
    or was silently left out of the baselines when other segments came before it.

    Raises:
        ValueError: naming ``--max-windows`` and the bin flag, with the number of windows that suffices.
    """
    a, b = (float(v) for v in segment)
    length = b - a
    for flag, width, need_bins, what in (
            ("--bin-size", bin_size, n_lags + 1, f"the CCG / GLM history ({n_lags} lags x {bin_size:g} s) and one "
                                                 "bin to fit"),
            ("--corr-bin-size", corr_bin_size, 1, "the correlation bin")):
        if n_full_bins(length, width) < need_bins:
            more = n_bins_covering(need_bins * width - length, current_window)
            raise ValueError(f"--max-windows: the first {count_noun(max_windows, 'window')} "
                             f"{'covers' if max_windows == 1 else 'cover'} only {length:g} s of "
                             f"{'its' if max_windows == 1 else 'their'} last "
                             f"segment ([{a:g}, {b:g}] s), less than {what} = {need_bins * width:g} s ({flag}), so "
                             f"that baseline would not see them; pass --max-windows {max_windows + more} or more, or a "
                             f"smaller {flag}")


def run_connectivity(
    model_dir,
    data_path,
    output_dir,
    *,
    split: str = "all",
    max_windows: Optional[int] = None,
    bin_size: float = 0.002,
    corr_bin_size: float = 0.01,
    n_lags: int = 5,
    batch_size: int = 64,
    device: str = "cpu",
    glm_max_bins: Optional[int] = 200_000,
    n_jobs: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    label: Callable[[str], str] = lambda name: name,
    learning_rate_option: str = "learning_rate",
) -> Dict[str, object]:
    """Attention-derived and baseline connectivity of a simulated recording, scored against its
    ground truth; writes ``output_dir/{truth,attention_last_layer,attention_mean,
    attention_rollout,uniform_control,correlation,ccg_asymmetry,glm}.npy``, ``scores.json`` and
    ``connectivity.png`` (truth | attention, mean over layers | correlation | CCG asymmetry | GLM).

    Args:
        model_dir: directory written by ``neuroformer train`` (its ``splits.json`` says which
            windows belong to ``split``); a fine-tuned decoder is refused, with or without
            next-spike heads (see :func:`~hf_neuroformer.generation.load_pretrained`'s ``reads``).
        data_path: ``.nwb`` written by ``neuroformer simulate`` (the recording the model was
            trained on, with the ground truth).
        split: ``"train"``, ``"validation"``, ``"test"`` or ``"all"``: the windows whose
            attention is aggregated (non-overlapping, stride = current window; where trials
            overlap in time, one window per stretch, with a warning:
            :func:`~hf_neuroformer.windows.tiling_windows`); the baselines
            use the same time span (the split's segments), the GLM only its first
            ``glm_max_bins`` bins (recorded as ``glm_seconds_fitted`` of ``glm_seconds_binned``).
        max_windows: cap on the windows (the first ones in time), an integer >= 1; ``None``: all.
        bin_size: bin width of the CCG and GLM baselines, s (``neuroformer connectivity
            --bin-size``); their history is ``n_lags * bin_size`` s.
        corr_bin_size: bin width of the correlation baseline, s (``--corr-bin-size``). It is
            separate because the zero-lag correlation needs coarser bins than the lagged
            baselines to see coincident spikes; ``--bin-size`` does not change it.
        n_lags: CCG / GLM history length in bins.
        batch_size, device: the attention pass.
        glm_max_bins, n_jobs: see :func:`glm_connectivity`.
        overwrite: replace an earlier output of this function in ``output_dir`` (only that: its
            ``scores.json``, matrices and figure; never the working directory, a folder above it
            or a model; see :func:`hf_neuroformer.io.output_folder.check_output_folder`).
        progress: bars over the attention pass's windows and the GLM baseline's per-unit fits
            (standard error; ``TQDM_DISABLE=1`` turns them off too).
        label: how warnings name ``split`` and ``max_windows`` (the command line passes one giving
            ``--split`` and ``--max-windows``).
        learning_rate_option: how the refusal of a diverged model names the rate to lower (the
            command line passes ``neuroformer train``'s ``training.learning_rate`` field).

    Returns:
        the report written to ``scores.json`` (``scores[name]`` per matrix, plus settings;
        ``unit_names``: the recording's unit names in the matrices' row (target) and column (source)
        order, ``M[i, j]`` the influence of unit ``unit_names[j]`` on unit ``unit_names[i]``
        (``matrix_convention``); ``hub_units`` (indices) and ``hub_unit_names``: the ground truth's hubs;
        ``units_without_spikes`` (unit indices; their names in ``units_without_spikes_names``): units with no spike in the current windows the attention pass
        queries (a segment's first past window, which only the baselines bin, is not counted),
        whose rows of the attention matrices are 0 (no query predicts them) and whose true edges,
        counted in ``n_excitatory_edges_of_silent_units`` / ``n_hub_edges_of_silent_units``,
        every score still includes; ``unmeasured_estimates``: ``{name: reason}`` of the
        estimates that measured nothing (the attention readouts and uniform control with query rows of fewer than 2 units,
        a baseline over fewer than 2 units that fire), whose AUROC / AUPRC / direction scores are NaN
        (null in ``scores.json``; ``unmeasured_reason`` in their scores), counted in
        ``n_unmeasured_estimates``; ``data_used``: ``{name: counts}`` of what each estimate was fitted on
        (spikes and bins, or windows and query rows, and the candidate edges it ranks; see
        :func:`_data_used`); ``low_data_estimates`` / ``n_low_data_estimates``: the measured estimates
        with fewer spikes (query rows) than candidate edges (:data:`LOW_DATA_RULE`), scores kept,
        warned of; ``glm_seconds_fitted`` / ``glm_seconds_binned`` /
        ``glm_fitted_until_s``: the part of the span the GLM baseline fitted, see :func:`glm_span`).

    Raises:
        FileExistsError: ``output_dir`` is not empty, without ``overwrite``, or is a folder
            ``overwrite`` may not replace.
        ValueError: a model whose weights are not finite (a diverged run; see
            :func:`~hf_neuroformer.analysis._batches.check_finite_weights`).
        FileNotFoundError / ValueError: from loading the model or the ground truth (``data_path (--data):``
            a missing file, a directory, a file that is not an NWB file written by ``neuroformer
            simulate``); a network of fewer than :data:`MIN_UNITS_FOR_DIRECTION` (4) units (1: no pair to
            score; 2: the double-centred attention reverses every direction; 3: it ties a lone edge and
            reverses a hub's).

    Warns:
        UserWarning: measured estimates that used fewer spikes (query rows for attention) than the
            candidate edges they rank (``low_data_estimates``; e.g. ``max_windows=1``).
        UserWarning: a source unit whose excitatory edges (positive ground-truth weights) reach
            ``n_units - 2`` or more of the other units: the double-centred attention_* and
            uniform_control matrices tie (``n - 2``) or reverse (``n - 1``) the direction of each of
            its edges (module docstring), so their direction scores of those edges measure nothing.
        ValueError: ``max_windows``, ``batch_size``, ``n_lags`` not integers >= 1 (``glm_max_bins``: or None;
            ``n_jobs``: an integer other than 0); ``device`` not
            on this machine; ``bin_size`` / ``corr_bin_size`` not finite and > 0 (before anything
            is read); the CCG / GLM history ``n_lags * bin_size``, or ``corr_bin_size``, longer
            than the shortest segment of the split (those baselines would see no full history in
            it: at 5 s bins their AUROC fell below chance without a word); the part of the last
            segment that ``max_windows`` keeps shorter than ``n_lags + 1`` bins of ``bin_size`` or
            one ``corr_bin_size`` bin (before the attention pass, naming ``--max-windows``); a
            ``split`` that holds no window (``split_fractions`` with a 0, naming ``--split``).
    """
    from ..generation import check_recording_units, load_pretrained
    from ..modalities import check_recording_modalities
    from ..simulation import MissingGroundTruthError, read_network
    from ..windows import SPLITS, check_split_in_recording, tiling_windows

    out = check_output_folder(output_dir, CONNECTIVITY_OUTPUT, overwrite=overwrite, flag="output_dir", overwrite_flag="overwrite=True")  # before any work
    if split not in (*SPLITS, "all"):
        raise ValueError(f"split: expected one of {[*SPLITS, 'all']}, got {split!r}")
    check_pass_settings(batch_size=batch_size, max_windows=max_windows, device=device)
    if not is_whole_number(n_lags) or n_lags < 1:
        raise ValueError(f"n_lags: expected an integer >= 1, got {n_lags!r}")
    try:  # before the model's passes, not after them
        _check_max_bins(glm_max_bins)
    except ValueError as err:
        raise ValueError(f"glm_{err}") from None
    _check_n_jobs(n_jobs)  # joblib refused 0 only at the GLM fits, after the attention pass
    for name, flag, value in (("bin_size", "--bin-size", bin_size), ("corr_bin_size", "--corr-bin-size", corr_bin_size)):
        # any real number: np.float32(0.002) was refused as "expected a finite number of seconds > 0"
        if not (is_finite_number(value) and value > 0):
            raise ValueError(f"{name} ({flag}): expected a finite number of seconds > 0, got {value!r}")
    bin_size, corr_bin_size = float(bin_size), float(corr_bin_size)
    try:
        net = read_network(data_path)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"data_path (--data): {err}") from None
    except MissingGroundTruthError:
        raise ValueError(f"data_path (--data): {data_path} holds no ground-truth weights; connectivity scores the "
                         "estimates against the true weights, which only a file written by 'neuroformer simulate' "
                         "stores: pass one as --data") from None
    except ValueError as err:  # a directory, a .mat, ...: the reader's message did not name --data
        raise ValueError(f"data_path (--data): {err}") from None
    rec = net.recording
    if rec.n_units < MIN_UNITS_FOR_DIRECTION:  # 1 unit: no pair; 2 or 3: see MIN_UNITS_FOR_DIRECTION
        raise ValueError(f"data_path (--data): the simulated network has "
                         f"{count_noun(rec.n_units, 'unit')}; connectivity scores "
                         f"directed pairs of units and needs at least {MIN_UNITS_FOR_DIRECTION}: the attention "
                         "matrices are double-centred over the pairs (row and column means removed), which on 2 units "
                         "reverses every direction and on 3 ties a lone edge and reverses the edges of a source onto "
                         "both other units, a hub (simulate --units 4 or more)")
    # a source onto k of the n - 1 others: each of its edges becomes a (n - 2 - k) / (n - 1) after the double
    # centring (its column mean takes its excess), tied or reversed for k >= n - 2, with 4 units or 400
    w = np.where(np.eye(rec.n_units, dtype=bool), 0.0, np.asarray(net.weights, dtype=np.float64))
    k_out = (w > 0).sum(0)
    wide = np.flatnonzero(k_out >= rec.n_units - 2)
    if wide.size:
        one = wide.size == 1
        warnings.warn(f"data_path (--data): source {'unit' if one else 'units'} {wide.tolist()} "
                      f"{'drives' if one else 'drive'} {k_out[wide].tolist()} of the "
                      f"{rec.n_units - 1} other units (excitatory ground-truth edges); double centring (row and column "
                      "means removed) turns an excess a on each of a source's k edges into [i, j] - [j, i] = "
                      "a (n - 2 - k) / (n - 1), tied for k = n - 2 and reversed for k = n - 1, so the attention_* and "
                      "uniform_control direction scores of those edges measure nothing (the baselines' do); simulate "
                      "more units than a hub's targets + 2", UserWarning, stacklevel=2)
    model, tokenizer, plan = load_pretrained(
        model_dir, reads="connectivity is read from the attention of the pretrained model ("
                         "learned predicting the next spike)")
    # a diverged model's NaN attention scored as chance
    check_finite_weights(model, model_dir, learning_rate_option=learning_rate_option)
    # not the tokenizer's API advice (nor --epoch: this command has none); the spikes check goes
    # into scores.json beside the scores
    spikes_check = check_recording_units(tokenizer, rec, model_dir=model_dir, flag="--data", epoch=False)
    check_recording_modalities(model.config, rec, flag="--data", epoch=False)  # a model with behaviour input
    model.to(device)
    splits = list(SPLITS) if split == "all" else [split]
    starts, clips, segs = [], [], []
    for s in splits:
        check_split_in_recording(plan, s, rec, flag="--data", epoch=False)  # no --epoch here
        # one window per stretch of overlapping (or duplicate) trials, as train scores the split (warned)
        a, c = tiling_windows(plan, s, model.config, use="read for connectivity")
        starts.append(a)
        clips.append(c)
        segs.append(plan.segments[s])
    starts = np.concatenate(starts)
    clips = np.concatenate(clips)
    # numpy's "zero-size array to reduction operation minimum" below, naming no flag
    check_split_has_windows(starts.size, split, sum(len(s) for s in segs), model.config.split_fractions)
    order = np.argsort(starts, kind="stable")
    starts, clips = starts[order], clips[order]
    segments = merge_segments(np.concatenate(segs))  # overlapping trials: their time once, as the baselines bin it
    n_windows_available = int(starts.size)
    shortest = float((segments[:, 1] - segments[:, 0]).min())
    for flag, span, what in (("--bin-size", n_lags * bin_size, f"the CCG / GLM history ({n_lags} lags x {bin_size:g} s)"),
                             ("--corr-bin-size", corr_bin_size, "the correlation bin")):
        if span > shortest:
            raise ValueError(f"{flag}: {what} = {span:g} s is longer than the shortest of the {split!r} split's "
                             f"{len(segments)} segments ({shortest:g} s), so that baseline would not see it; use a "
                             f"smaller {flag}")
    if max_windows is not None and starts.size > max_windows:
        starts, clips = starts[:max_windows], clips[:max_windows]
        # the baselines see the same span as the aggregated windows
        end = float(starts[-1] + model.config.current_window)
        segments = segments[segments[:, 0] < end]
        segments[-1, 1] = min(segments[-1, 1], end)
        _check_cut_segment(segments[-1], max_windows, model.config.current_window, bin_size, n_lags, corr_bin_size)
    # baselines also see the past windows of the first window of each segment: extend by nothing,
    # they use exactly the segments (windows' pasts lie inside segments in time mode)
    att = attention_connectivity(
        model, tokenizer, rec, starts, past_clip_starts=clips if plan.mode == "trials" else None,
        batch_size=batch_size, device=device, progress=progress,
        # the windows come from split and max_windows here ('window_starts: ...' named no option of this call)
        windows_label=f"{label('split')} / {label('max_windows')}",
        more_windows=f"pass more windows (a larger {label('max_windows')}, or {label('split')} 'all')",
    )
    mats = {
        "truth": net.weights,
        "attention_last_layer": att["attention_last_layer"],
        "attention_mean": att["attention_mean"],
        "attention_rollout": att["attention_rollout"],
        "uniform_control": att["uniform_control"],
        "correlation": correlation_connectivity(rec, corr_bin_size, segments),
        "ccg_asymmetry": ccg_asymmetry(rec, bin_size, n_lags, segments),
        "glm": glm_connectivity(rec, bin_size, n_lags, segments, max_bins=glm_max_bins, n_jobs=n_jobs,
                                  progress=progress),
    }
    # everything is written into a folder beside ``out`` and renamed into place at the end, so
    # a failed run leaves no half-written output, and --overwrite leaves no stale file behind
    import shutil
    import tempfile

    final = out
    final.parent.mkdir(parents=True, exist_ok=True)
    out = as_created(Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent)))  # umask bits, not 0700
    try:
        for name, m in mats.items():
            np.save(out / f"{name}.npy", m)
        report = _write_scores_and_figure(out, mats, net, rec, att, starts, n_windows_available, segments, data_path,
                                          model_dir, split, bin_size, corr_bin_size, n_lags, glm_max_bins,
                                          model.config.current_window, spikes_check, label=label)
        check_output_folder(final, CONNECTIVITY_OUTPUT, overwrite=overwrite, flag="output_dir", overwrite_flag="overwrite=True")  # again: it may have changed meanwhile
        move_into_place(out, final)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    warn_leftovers(final, "connectivity")
    return report


def _truth_colorbar_label(kind: str) -> str:
    """What the ground-truth panel's values are, for a network of simulator ``kind``: the hub GLM
    takes the LIF network's layout weights in mV but simulates them as log-rate coupling (its label
    said "mV, current jump", and it has no synaptic current)."""
    if kind == "hub":
        return "synaptic weight (mV, current jump)"
    if kind == "hub-glm":
        return "layout weight (mV; simulated as log-rate coupling glm_gain * W / hub_weight)"
    return "coupling (log-rate per unit of synaptic trace)"


def _unit_spike_counts(rec: SpikeRecording, spans) -> np.ndarray:
    """``(n_units,)`` int64 spikes of each unit in ``spans`` (``(m, 2)`` ``[start, stop)`` s, not overlapping)."""
    counts = np.zeros(rec.n_units, dtype=np.int64)
    for a, b in np.asarray(spans, dtype=np.float64).reshape(-1, 2):
        i0, i1 = np.searchsorted(rec.spike_times, [a, b], side="left")
        counts += np.bincount(rec.unit_ids[i0:i1], minlength=rec.n_units)
    return counts


def _spans_until(spans, until: Optional[float]) -> np.ndarray:
    """``(m, 2)`` float64: the ``[start, stop)`` s spans that begin before ``until`` s, each cut at it
    (the span the GLM fits ends there); all of them when ``until`` is None."""
    spans = np.asarray(spans, dtype=np.float64).reshape(-1, 2)
    if until is None:
        return spans
    keep = spans[:, 0] < until
    return np.column_stack([spans[keep, 0], np.minimum(spans[keep, 1], until)])


def _unmeasured_reasons(names, rec: SpikeRecording, att, segments, glm_until: Optional[float]) -> Dict[str, str]:
    """``{matrix name: why it holds no measurement}`` for the estimates in ``names`` that measured nothing
    (the others are left out): the attention readouts and the uniform control without query rows of 2 units
    (every entry 0: double centring over one row subtracts each entry's own column mean), a baseline over fewer than 2 units that fire in the span it reads (the segments; the GLM's up
    to ``glm_until`` s): no pair to correlate, no expected CCG count, no coupling to fit (every entry 0).
    Such a constant matrix ranks every pair alike, and scored chance (AUROC 0.500) as if measured; a
    measured matrix that happens to be constant is still scored."""
    n = rec.n_units
    firing = int((_unit_spike_counts(rec, segments) > 0).sum())
    glm_firing = int((_unit_spike_counts(rec, _spans_until(segments, glm_until)) > 0).sum())
    span_s = float((segments[:, 1] - segments[:, 0]).sum())
    queried = np.flatnonzero(np.asarray(att["n_queries"]) > 0)
    reasons = {}
    for name in names:
        if name.startswith("attention_") or name == "uniform_control":
            if queried.size == 0:
                reasons[name] = (f"no query rows in the {count_noun(att['n_windows'], 'window')}: no spike of the {n} units "
                                 "follows an earlier unit token there")
            elif queried.size == 1:  # the column mean over one row is the row itself: every entry 0
                reasons[name] = (f"query rows of unit {int(queried[0])} alone in the "
                                 f"{count_noun(att['n_windows'], 'window')}: "
                                 "double centring over one row leaves every entry 0")
        elif name in ("correlation", "ccg_asymmetry") and firing < 2:
            # '1 of the 8 units fire'
            reasons[name] = f"{firing} of the {n} units {'fires' if firing == 1 else 'fire'} in the analysed " \
                            f"{span_s:g} s; a pair needs 2"
        elif name == "glm" and glm_firing < 2:
            reasons[name] = f"{glm_firing} of the {n} units {'fires' if glm_firing == 1 else 'fire'} in the span " \
                            "the GLM fits; a pair needs 2"
    return reasons


def _data_used(rec: SpikeRecording, att, segments, bin_size: float, corr_bin_size: float, glm_fit,
               unmeasured: Dict[str, str]):
    """What each estimate was fitted on, and which measured estimates fell short of the minimum.

    Returns:
        ``(data_used, low_data)``: ``data_used[name]`` is ``{"spikes", "bins", "bin_size_s",
        "candidate_edges"}`` for a baseline (spikes inside its whole bins: the correlation's and the
        CCG's over the analysed segments, the GLM's over the span it reads, history included; bins:
        the GLM's fitted bins) and ``{"windows", "query_rows", "candidate_edges"}`` for the attention
        readouts and the uniform control (query rows: the spikes the windows predict);
        ``low_data[name]``: why a measured estimate used too little data. The rule: fewer spikes
        (query rows for attention) than the candidate edges it ranks (``n (n - 1)`` directed pairs;
        ``n (n - 1) / 2`` for the undirected correlation), i.e. not even one spike of evidence per
        pair, so its AUROC / AUPRC sit near chance whatever the network. Such scores are kept (they
        were measured), only flagged; an unmeasured estimate is not flagged again."""
    n = rec.n_units
    directed, undirected = n * (n - 1), n * (n - 1) // 2

    def spikes_in_bins(width, until=None):
        spans = _spans_until([(a, a + nb * width) for a, nb in _segment_bins(rec, width, segments)], until)
        return int(_unit_spike_counts(rec, spans).sum()) if len(spans) else 0

    def n_bins(width):
        return int(sum(nb for _, nb in _segment_bins(rec, width, segments)))

    until = glm_fit["fitted_until_s"]
    used = {
        "correlation": {"spikes": spikes_in_bins(corr_bin_size), "bins": n_bins(corr_bin_size),
                        "bin_size_s": corr_bin_size, "candidate_edges": undirected},
        "ccg_asymmetry": {"spikes": spikes_in_bins(bin_size), "bins": n_bins(bin_size), "bin_size_s": bin_size,
                          "candidate_edges": directed},
        "glm": {"spikes": 0 if until is None else spikes_in_bins(bin_size, until), "bins": glm_fit["bins_fitted"],
                "bin_size_s": bin_size, "candidate_edges": directed},
    }
    attention = {"windows": int(att["n_windows"]), "query_rows": int(np.asarray(att["n_queries"]).sum()),
                 "candidate_edges": directed}
    for name in [f"attention_{r}" for r in READOUTS] + ["uniform_control"]:
        used[name] = dict(attention)
    low = {}
    for name, u in used.items():
        evidence, what = (u["query_rows"], "query rows") if "query_rows" in u else (u["spikes"], "spikes")
        if name not in unmeasured and evidence < u["candidate_edges"]:
            over = (count_noun(u["windows"], "window") if "windows" in u
                    else f"{u['bins']} bins of {u['bin_size_s']:g} s")
            low[name] = f"{evidence} {what} over {over}, fewer than its {u['candidate_edges']} candidate edges"
    return used, low


def _write_scores_and_figure(out, mats, net, rec, att, starts, n_windows_available, segments, data_path, model_dir,
                             split, bin_size, corr_bin_size, n_lags, glm_max_bins, current_window, spikes_check=None,
                             label: Callable[[str], str] = lambda name: name):
    glm_fit = glm_span(segments, bin_size, n_lags, glm_max_bins)
    unmeasured = _unmeasured_reasons([m for m in mats if m != "truth"], rec, att, segments, glm_fit["fitted_until_s"])
    scores = {name: score_connectivity(m, net.weights, net.edge_kind, unmeasured=unmeasured.get(name))
              for name, m in mats.items()}
    data_used, low_data = _data_used(rec, att, segments, bin_size, corr_bin_size, glm_fit, unmeasured)
    if low_data:  # measured on too little data: scored, yet near chance whatever the network
        warnings.warn(f"{count_noun(len(low_data), 'estimate')} used fewer spikes (query rows for attention) than the candidate "
                      "edges they rank, not one per pair, so their scores sit near chance whatever the network (kept; "
                      "data_used and low_data_estimates in scores.json): "
                      + "; ".join(f"{k}: {v}" for k, v in low_data.items())
                      # the caller's naming of the option: max_windows in Python, --max-windows on the command line
                      + f"; pass more windows (a larger {label('max_windows')}) or a longer recording", UserWarning,
                      stacklevel=3)
    # units without a spike in the current windows the attention pass queries: their attention rows are 0,
    # yet their edges are scored. Counted over those spans, not the segments: a segment's first past window
    # is no window's query span, and a unit firing only there (a block's first 30 ms) was not listed
    queried = merge_segments(np.column_stack([starts, np.round(starts + current_window, 9)]))
    silent = np.flatnonzero(_unit_spike_counts(rec, queried) == 0)
    off = ~np.eye(rec.n_units, dtype=bool)
    touch = np.zeros((rec.n_units, rec.n_units), dtype=bool)
    touch[silent, :] = True
    touch[:, silent] = True
    kind = np.asarray(net.edge_kind) if net.edge_kind is not None else np.zeros(touch.shape, dtype=np.int8)
    report = {
        "scores": scores,
        "data": str(Path(data_path).resolve()),
        "model": str(Path(model_dir).resolve()),
        # the recording against the model's record of its training spikes: "other spikes" means the
        # truth above is not the network the model was trained on
        "model_training_spikes_check": spikes_check,
        "split": split,
        "n_windows": int(starts.size),
        "n_windows_available": n_windows_available,
        "n_query_rows": int(att["n_queries"].sum()),
        # estimates that measured nothing (no query row; fewer than 2 units firing): their scores are null
        "unmeasured_estimates": unmeasured,
        "n_unmeasured_estimates": len(unmeasured),
        # what each estimate was fitted on; those below the minimum (fewer spikes than candidate edges) are named
        "data_used": data_used,
        "low_data_rule": LOW_DATA_RULE,
        "low_data_estimates": low_data,
        "n_low_data_estimates": len(low_data),
        "n_pairs_unseen": att["n_pairs_unseen"],
        "units_without_spikes": silent.tolist(),
        # the indices above and the matrices' rows / columns are the recording's unit indices: a reader of
        # scores.json could not tell which unit was which without reopening the NWB file
        "units_without_spikes_names": [rec.unit_names[int(i)] for i in silent],
        "unit_names": list(rec.unit_names),
        "n_excitatory_edges_of_silent_units": int(((net.weights > 0) & off & touch).sum()),
        "n_hub_edges_of_silent_units": int(((kind == 1) & off & touch).sum()),
        "segments_s": segments.tolist(),
        "bin_size_s": bin_size,
        "corr_bin_size_s": corr_bin_size,
        "n_lags": n_lags,
        "glm_max_bins": glm_max_bins,
        # glm_connectivity keeps the first glm_max_bins bins: on a long span it sees only its start
        **{f"glm_{k}": v for k, v in glm_fit.items()},
        "hub_units": net.hub_units.tolist(),
        # the hubs' names beside their indices, as units_without_spikes_names: hub_units alone sent the reader to
        # unit_names
        "hub_unit_names": [rec.unit_names[int(h)] for h in net.hub_units],
        "simulation": {"kind": net.kind, **{k: net.params.get(k) for k in ("n_units", "n_hubs", "duration", "seed")},
                       # a hub (brian2) file's: another brian2 release may draw other spikes for the seed
                       **{k: net.params[k] for k in ("brian2_version", "codegen_target") if k in net.params}},
        "matrix_convention": "target x source: M[i, j] = influence of unit j (source, column) on unit i (target, "
                             "row); row and column k are unit_names[k]",
    }
    write_json(out / "scores.json", report, indent=1)
    import textwrap

    panels = {"truth": ("truth", _truth_colorbar_label(net.kind)),
              "attention_mean": ("attention (mean over layers, heads)", "attention share, double-centred"),
              "correlation": ("correlation", "Pearson r of binned counts"),
              "ccg_asymmetry": ("CCG asymmetry", "(C+ - C-) / expected count"),
              "glm": ("Poisson GLM", "coefficient (log-rate per history spike)")}
    # a panel of no measurement says so in its title, as the scores do (its zeros are no estimate)
    titles = {m: t if m not in unmeasured else t + "\n" + textwrap.fill(f"n/a ({unmeasured[m]})", 48)
              for m, (t, _) in panels.items()}
    connectivity_figure(
        {titles[m]: mats[m] for m in panels}, hub_units=net.hub_units, path=out / "connectivity.png",
        unit_names=rec.unit_names, overwrite=True,  # run_connectivity decides whether its output may be replaced
        full_range=("truth",), title=f"{net.kind} network, {rec.n_units} units; matrices target x source",
        colorbar_labels={titles[m]: c for m, (_, c) in panels.items()},
    )
    return report


__all__ = [
    "READOUTS",
    "MIN_UNITS_FOR_DIRECTION",
    "MIN_CORRELATION_BINS",
    "LOW_DATA_RULE",
    "attention_connectivity",
    "binned_counts",
    "correlation_connectivity",
    "ccg_asymmetry",
    "glm_connectivity",
    "glm_span",
    "score_connectivity",
    "control_note",
    "connectivity_figure",
    "run_connectivity",
    "MAX_NAMED_UNITS_IN_FIGURE",
]
