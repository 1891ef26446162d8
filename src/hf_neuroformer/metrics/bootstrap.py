r"""Block-bootstrap confidence intervals for test metrics (numpy / scipy).

Why blocks
----------
Windows that follow each other in time share slow state (rates drift, behaviour is smooth), so
they are not independent draws: resampling single windows treats ``n`` correlated windows as
``n`` independent ones and gives intervals that are too narrow. The moving-block idea (Künsch
1989, "The jackknife and the bootstrap for general stationary observations", Ann. Statist.
17:1217) is to resample *contiguous blocks* long enough to hold most of the dependence; here
the blocks do not overlap (the non-overlapping block bootstrap; Efron & Tibshirani 1993, "An
Introduction to the Bootstrap", Sec. 8.6):

* trial splits (``mode="trials"``): one block per trial (trials that overlap in time, which the
  split plan keeps together, form one block);
* time splits: each test segment is cut into consecutive blocks of :data:`CI_BLOCK_S` seconds
  (10 s) of window starts, the last block of a segment shorter when 10 s does not divide it.

Ratio metrics (bits per spike, NLL per spike, R², Pearson r, accuracy, ...) are not averages of
per-block metrics: each block contributes its *sufficient statistics* (sums over its windows,
e.g. log-likelihood gain and spike count), the blocks are resampled with replacement, the
sums of the drawn blocks' statistics are added up (paired: all statistics of a block travel
together) and the metric is recomputed from those totals on every resample.

The interval
------------
:func:`scipy.stats.bootstrap` over the block indices, ``method="BCa"`` (bias-corrected and
accelerated, Efron & Tibshirani 1993, Ch. 14): the metrics here are ratios and correlations whose
bootstrap distributions are skewed and biased with a handful of blocks, which the percentile
interval ignores and BCa corrects (its acceleration comes from the jackknife over blocks, so it
costs ``n_blocks`` extra evaluations). Where BCa is undefined (every resample gives the same
value, e.g. an accuracy of 1 in every block) the percentile interval is given and the method says
so. ``n_resamples=2000`` with a fixed seed (0), so a rerun gives the same interval. With fewer
than :data:`MIN_BLOCKS` blocks (5) no interval is given (None) and the reason is stated: the
bootstrap distribution of a handful of blocks takes a handful of values, and its quantiles
would be a misleading interval; where shorter blocks would give enough, the reason says which
block length to pass (:func:`few_blocks_hint`: ``ci_block_s=`` from Python, ``--ci-block-s`` on
the command line), and the outputs record the block length used (``ci95_block_s``).
"""

from __future__ import annotations

import math
import warnings
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from ..argument_checks import check_block_s as _check_block_s
from ..recording import count_noun

#: Length (s) of a bootstrap block of a time split's windows.
CI_BLOCK_S = 10.0
#: Fewest blocks for which an interval is given.
MIN_BLOCKS = 5
#: Bootstrap resamples.
N_RESAMPLES = 2000
#: Confidence level of the reported intervals.
CONFIDENCE = 0.95


class BootstrapInputError(ValueError):
    """A bad argument to a block-bootstrap function; the message names the field."""


def ci_key(name: str, confidence: float = CONFIDENCE) -> str:
    """The metrics-file key of the interval of ``name``: ``"test/r2"`` -> ``"test/r2_ci95"``."""
    return f"{name}_ci{round(confidence * 100):d}"


def merge_segments(segments) -> np.ndarray:
    """``(m, 2)`` float64 ``[start, stop)`` s: the union of ``segments`` (``(n, 2)``, any order),
    spans that overlap by more than 1 ns merged (abutting trials stay separate blocks, also when
    float round-off puts the shared edge a hair inside), in time order."""
    from ..recording import _merge_intervals

    return _merge_intervals(segments, overlap=1e-9)  # starts and edges lie on a 1 ns grid


def check_block_s(block_s, name: str = "ci_block_s") -> float:
    """``block_s`` as a float after checking it is a finite number of seconds > 0
    (:func:`hf_neuroformer.argument_checks.check_block_s`, which ``neuroformer`` applies to
    ``--ci-block-s`` before torch is imported).

    Args:
        block_s: the bootstrap block length, s.
        name: how the error names the argument (``"ci_block_s"``, or a CLI flag ``"--ci-block-s"``).

    Raises:
        BootstrapInputError: not a number (a bool is refused too), NaN, infinite, 0 or negative;
            the message names ``name`` and the value.
    """
    return _check_block_s(block_s, name, BootstrapInputError)


def resolve_block_s(block_s, name: str = "ci_block_s") -> Tuple[float, bool]:
    """``(length, asked)``: the block length to use, s, and whether it was asked for.

    ``None`` (not given) is the default :data:`CI_BLOCK_S` (10 s), not asked for; anything else is
    checked by :func:`check_block_s` and counts as asked for, also when it equals the default, so
    that ``--ci-block-s 10`` on a trial split is told it has no effect like any other length.

    Raises:
        BootstrapInputError: as :func:`check_block_s`.
    """
    if block_s is None:
        return CI_BLOCK_S, False
    return check_block_s(block_s, name), True


def count_blocks(blocks) -> int:
    """The number of blocks in ``blocks`` (``(n_windows,)`` int block index ``0 .. n - 1``, as
    :func:`window_blocks` numbers them); 0 for no window."""
    return int(np.max(np.asarray(blocks, dtype=np.int64), initial=-1)) + 1


#: Block lengths (s) :func:`few_blocks_hint` tries, longest first: 5, 2, 1, 0.5, ... down to 1 ns
#: (the grid window starts lie on, where every window start is a block of its own); the list
#: stopped at 0.01 s, so a shorter length with too few blocks was told "too few windows for 5
#: blocks at any block length" where 0.002 s gave 10.
_HINT_BLOCK_S = tuple(float(f"{m}e{e}") for e in range(0, -10, -1) for m in (5, 2, 1))


def few_blocks_hint(window_starts, segments, mode: str = "time", block_s: float = CI_BLOCK_S,
                    option: str = "ci_block_s=", min_blocks: int = MIN_BLOCKS) -> str:
    """How to get an interval when the windows fill fewer than ``min_blocks`` blocks, in words.

    For a time split, the longest of 5, 2, 1, 0.5, ... s (shorter than ``block_s``) at which the
    windows fill ``min_blocks`` blocks, written as ``option`` asks: ``"ci_block_s="`` (Python,
    the default) gives ``"ci_block_s=2"``, ``"--ci-block-s"`` (the command line) gives
    ``"--ci-block-s 2"``; the caller passes the wording its user types, so a Python caller is
    never told about a flag. Shorter blocks hold less of the dependence between neighbouring
    windows, so the text says the interval is then narrower than it should be where windows are
    correlated for longer than a block.

    Args:
        window_starts, segments, mode, block_s: as :func:`window_blocks`.
        option: the argument's wording; one ending in ``=`` is joined to the value without a space.
        min_blocks: the fewest blocks for an interval (:data:`MIN_BLOCKS`).

    Returns:
        ``""`` when the windows already fill ``min_blocks`` blocks; else a text starting with
        ``"; "`` to append to the reason: the block length to pass, or (a trial split, whose
        blocks are its trials; or too few windows for any block length) why no length helps.
    """
    blocks, _ = window_blocks(window_starts, segments, mode, block_s)
    if count_blocks(blocks) >= min_blocks:
        return ""
    if mode == "trials":
        return (f"; a trial split's blocks are its trials, so {option.rstrip('= ')} does not change them: an interval "
                f"needs at least {min_blocks} test trials")
    join = "" if option.endswith("=") else " "
    for s in (s for s in _HINT_BLOCK_S if s < block_s):
        n = count_blocks(window_blocks(window_starts, segments, mode, s)[0])
        if n >= min_blocks:
            return (f"; shorter blocks give an interval: e.g. {option}{join}{s:g} (the windows fill {n} blocks of "
                    f"{s:g} s; "
                    "blocks shorter than the windows' correlation time give too narrow an interval)")
    n = len(np.asarray(window_starts).reshape(-1))
    return f"; {count_noun(n, 'window')} {'is' if n == 1 else 'are'} too few for {min_blocks} blocks at any block length ({option.rstrip('= ')})"


def warn_block_s_unused(mode: str, block_s: float, option: str = "ci_block_s=",
                        window_span_s: Optional[float] = None, asked: Optional[bool] = None, *,
                        stacklevel: int = 3) -> None:
    """Warn that a block length asked for (``asked``; without it, one other than the default
    :data:`CI_BLOCK_S`) does nothing in a trial split (``mode="trials"``), whose bootstrap blocks
    are its trials: a user who asked for
    ``ci_block_s=2`` (``option="ci_block_s="``) or ``--ci-block-s 2`` (``option="--ci-block-s"``)
    is told, rather than left to find ``ci95_block_s`` null in the outputs.

    In a time split, with ``window_span_s`` (s: a window's current plus past window, what one
    window reads), warn of blocks shorter than it: a window's past then reaches into the block
    before, so neighbouring blocks share spikes, are not independent as the bootstrap assumes, and
    the interval comes out too narrow.

    ``asked``: whether the user gave the length (:func:`resolve_block_s`); None: asked for when it
    differs from the default. ``stacklevel``: where the warning points, as ``warnings.warn`` takes
    it (keyword-only; 3: the caller of the function that calls this one)."""
    join = "" if option.endswith("=") else " "
    asked = float(block_s) != CI_BLOCK_S if asked is None else asked
    if mode == "trials" and asked:
        warnings.warn(f"{option}{join}{float(block_s):g} has no effect: the split is by trials, and a trial split's "
                      "bootstrap blocks are its trials (one block per trial), whatever the block length",
                      UserWarning, stacklevel=stacklevel)
    elif mode == "time" and window_span_s is not None and float(block_s) < float(window_span_s):
        warnings.warn(f"{option}{join}{float(block_s):g}: the bootstrap blocks are shorter than what one window "
                      f"reads ({float(window_span_s):g} s of current and past window), so neighbouring blocks share "
                      "spikes and the 95 % intervals come out too narrow; use blocks of at least "
                      f"{float(window_span_s):g} s (longer than the spikes' correlation time)",
                      UserWarning, stacklevel=stacklevel)


def window_blocks(window_starts, segments, mode: str = "time", block_s: float = CI_BLOCK_S,
                  segments_are: str = "of the split"):
    """Bootstrap block of each window, and the blocks' definition in words.

    Args:
        window_starts: ``(n_windows,)`` float64 window starts, s, each inside one of ``segments``.
        segments: ``(n_segments, 2)`` float64 ``[start, stop)`` s of the split (a
            :class:`~hf_neuroformer.windows.SplitPlan`'s ``segments[split]``: the trials of a trial
            split, the time blocks of a time split).
        mode: ``"trials"``: one block per trial (overlapping trials merged); ``"time"``: each
            (merged) segment cut into blocks of ``block_s`` s from its start.
        block_s: block length, s, > 0 (time mode).
        segments_are: what ``segments`` are, in the definition's words (``"of the split"``; the
            ``decode`` command's windows outside the decoder's splits: ``"decoded here"``).

    Returns:
        ``(blocks, definition)``: ``(n_windows,)`` int64 block index ``0 .. n_blocks - 1``
        (blocks numbered in time order, empty blocks skipped) and a str saying what a block is.

    Raises:
        BootstrapInputError: an unknown ``mode``, a non-positive ``block_s``, or a window
            outside every segment (the message names the first).
    """
    if mode not in ("time", "trials"):
        raise BootstrapInputError(f"mode: expected 'time' or 'trials', got {mode!r}")
    block_s = check_block_s(block_s, "block_s")
    starts = np.asarray(window_starts, dtype=np.float64).reshape(-1)
    seg = merge_segments(segments)
    idx = np.searchsorted(seg[:, 0], starts + 1e-9, side="right") - 1  # 1 ns: starts lie on a 1 ns grid
    if len(seg) == 0:
        bad = np.arange(len(starts))
    else:
        bad = np.flatnonzero((idx < 0) | (starts >= seg[np.maximum(idx, 0), 1]))
    if bad.size:
        raise BootstrapInputError(f"window_starts: window {bad[0]} starts at {starts[bad[0]]} s, outside every "
                                  "segment of the split")
    if mode == "trials":
        key = idx[:, None]
        definition = f"one block per trial {segments_are} (trials overlapping in time merged into one)"
    else:
        # the block's number within its segment, as a float: an int64 of it (and idx times the most blocks)
        # overflowed for very short blocks (1e-300 s: 4 blocks of 800 windows). Starts lie on a 1 ns grid,
        # so a block shorter than 1 ns holds one start as a 1-ns block does, and the quotient stays finite.
        within = np.floor((starts - seg[idx, 0]) / max(block_s, 1e-9) + 1e-9)
        key = np.stack([idx.astype(np.float64), within], axis=1)
        definition = (f"consecutive {block_s:g} s of window starts in each time segment {segments_are} (the last "
                      "block of a segment shorter)")
    _, blocks = np.unique(key, axis=0, return_inverse=True)
    return blocks.astype(np.int64).reshape(-1), definition


def block_sums(values, blocks, n_blocks: Optional[int] = None) -> np.ndarray:
    """``(n_blocks, ...)`` float64 sums of ``values`` (``(n_windows, ...)``) over the windows of
    each block (``blocks``: ``(n_windows,)`` int block index, as :func:`window_blocks` gives)."""
    v = np.asarray(values, dtype=np.float64)
    b = np.asarray(blocks, dtype=np.int64)
    n = int(b.max(initial=-1)) + 1 if n_blocks is None else int(n_blocks)
    out = np.zeros((n,) + v.shape[1:])
    np.add.at(out, b, v)
    return out


def block_bootstrap_ci(statistic: Callable[..., np.ndarray], *block_stats, n_resamples: int = N_RESAMPLES,
                       confidence: float = CONFIDENCE, seed: int = 0, method: str = "BCa",
                       min_blocks: int = MIN_BLOCKS, hint: str = "") -> Dict[str, object]:
    """Confidence interval of a metric by resampling whole blocks of windows (module docstring).

    Args:
        statistic: the metric from summed sufficient statistics: called with one array per
            ``block_stats``, each of shape ``(m, *trailing)`` (the sums over the blocks of ``m``
            resamples, or of the whole split with ``m = 1``), it returns ``(m,)`` values. E.g. bits
            per spike: ``lambda gain, n: gain / (n * np.log(2))``.
        *block_stats: one or more ``(n_blocks, *trailing)`` float arrays, the per-block sums
            (:func:`block_sums`); resampled together (paired).
        n_resamples: bootstrap resamples (default 2000).
        confidence: confidence level in (0, 1) (default 0.95).
        seed: seed of the resampling (numpy ``default_rng``): the same inputs give the same interval.
        method: ``"BCa"`` (default) or ``"percentile"`` (:func:`scipy.stats.bootstrap`).
        min_blocks: fewer blocks than this give no interval.
        hint: appended to the reason when there are fewer than ``min_blocks`` blocks
            (the function :func:`few_blocks_hint`'s text: which block length gives an interval).

    Returns:
        dict: ``estimate`` (float, the metric on all blocks), ``interval`` (``[low, high]``
        floats in the metric's unit, or None), ``reason`` (None, or why there is no interval),
        ``n_blocks`` (int), ``method`` (str, the method used), ``n_resamples``, ``confidence``;
        ``degenerate`` (True) when every resample gave the same value: no interval then, since a
        zero-width one would read as certainty (e.g. accuracy 1.0 with every window right).

    Raises:
        BootstrapInputError: no ``block_stats``, arrays with different numbers of blocks, a bad
            ``method``, ``confidence`` or ``n_resamples``.

    Source: :func:`scipy.stats.bootstrap` (SciPy docs); Efron & Tibshirani (1993) Ch. 13-14;
    Künsch (1989) for resampling blocks of a dependent series.
    """
    from scipy import stats

    if not block_stats:
        raise BootstrapInputError("block_stats: expected at least one (n_blocks, ...) array of per-block sums")
    arrs = [np.asarray(a, dtype=np.float64) for a in block_stats]
    n_blocks = arrs[0].shape[0] if arrs[0].ndim else 0
    for i, a in enumerate(arrs):
        if a.ndim == 0 or a.shape[0] != n_blocks:
            raise BootstrapInputError(f"block_stats[{i}]: expected {n_blocks} blocks (rows, as block_stats[0]), "
                                      f"got shape {a.shape}")
    if method not in ("BCa", "percentile"):
        raise BootstrapInputError(f"method: expected 'BCa' or 'percentile', got {method!r}")
    if not 0 < confidence < 1:
        raise BootstrapInputError(f"confidence: expected a level in (0, 1), got {confidence}")
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise BootstrapInputError(f"n_resamples: expected an integer >= 1, got {n_resamples}")

    # the trailing size spelled out: reshape(0, -1) of a (0, 1) array (no block: every window of a split
    # truncated) failed with numpy's 'cannot reshape array of size 0' instead of a NaN estimate and a reason
    flat_stats = [a.reshape(n_blocks, int(np.prod(a.shape[1:]))) for a in arrs]

    def totals(idx):  # (..., k) block indices -> each array summed over the drawn blocks: (m, *trailing)
        idx = np.asarray(idx, dtype=np.int64)
        flat = idx.reshape(-1, idx.shape[-1])
        rows = np.arange(len(flat))[:, None] * n_blocks
        counts = np.bincount((rows + flat).reshape(-1), minlength=len(flat) * n_blocks).reshape(len(flat), n_blocks)
        counts = counts.astype(np.float64)  # how often each block was drawn, per resample
        return [(counts @ f).reshape((len(flat),) + a.shape[1:]) for f, a in zip(flat_stats, arrs)], idx.shape[:-1]

    def stat(idx, axis=-1):
        t, lead = totals(idx)
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.asarray(statistic(*t), dtype=np.float64).reshape(lead)
        # A resample that draws every block once (n! / n**n of them: 3.8 % with 5 blocks) is the whole
        # split, its metric the estimate up to the rounding of sums taken in another order; BCa's bias
        # correction counts the resamples strictly below the estimate, so that last-bit noise moved a bound
        # by up to ~3 % of the interval's width (a/b against (3a)/(3b); finetune's test labels in float32
        # against decode's in float64). Values equal to the estimate up to rounding are the estimate.
        return np.where(np.isclose(v, estimate, rtol=1e-9, atol=1e-12), estimate, v)

    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = float(np.asarray(statistic(*[a.sum(axis=0)[None] for a in arrs]), dtype=np.float64).reshape(-1)[0])
    out = {"estimate": estimate, "interval": None, "reason": None, "n_blocks": int(n_blocks), "method": method,
           "n_resamples": int(n_resamples), "confidence": float(confidence)}
    # an undefined estimate first: with too few blocks as well, the reason said shorter blocks would give an
    # interval (bits per spike of a split without spikes: NaN, whatever the blocks)
    if not math.isfinite(estimate):
        out["reason"] = f"the metric is not finite on the whole split ({estimate})"
        return out
    if n_blocks < min_blocks:
        out["reason"] = (f"{count_noun(n_blocks, 'block')}, fewer than {min_blocks}: too few independent pieces for a "
                         "bootstrap interval") + hint
        return out
    data = (np.arange(n_blocks),)
    width = max([n_blocks] + [f.shape[1] for f in flat_stats])
    batch = int(max(1, min(n_resamples, 4_000_000 // width)))  # resamples at a time: ~32 MB per (m, width) array
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DegenerateDataWarning: handled below
        res = stats.bootstrap(data, stat, n_resamples=int(n_resamples), confidence_level=confidence,
                              method=method, vectorized=True, rng=rng, batch=batch)
    dist = np.asarray(res.bootstrap_distribution)
    n_bad = int((~np.isfinite(dist)).sum())
    if n_bad:
        out["reason"] = (f"the metric is undefined (NaN) in {n_bad} of {n_resamples} resamples of the blocks "
                         "(e.g. a resample without spikes, or with a constant target)")
        return out
    if n_resamples < 2:
        # one value has no spread: the check below called it degenerate and quoted the estimate as
        # the value of that resample, which it is only by chance
        out["reason"] = "1 resample: an interval needs at least 2 (n_resamples)"
        return out
    if np.ptp(dist) == 0:
        # every window decoded right (accuracy 1 on every resample), or another metric the blocks
        # cannot move: the percentile fallback gave [1.0, 1.0], a zero-width interval that reads as
        # certainty where the bootstrap measured nothing
        out["reason"] = degenerate_reason(n_resamples, n_blocks, float(dist.reshape(-1)[0]))
        out["degenerate"] = True
        return out
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if method == "BCa" and not (math.isfinite(lo) and math.isfinite(hi)):
        # every resample (nearly) equal: BCa's bias correction is undefined; the percentile interval is not
        alpha = (1 - confidence) / 2
        lo, hi = (float(q) for q in np.quantile(dist, [alpha, 1 - alpha]))
        out["method"] = "percentile (BCa undefined: the bootstrap distribution is degenerate)"
    out["interval"] = [lo, hi]
    return out


def degenerate_reason(n_resamples: int, n_blocks: int, value: float) -> str:
    """Why a metric that every resample gives as ``value`` (in the metric's unit) has no interval
    (:func:`block_bootstrap_ci`'s ``degenerate`` results; a metric converted to another unit, such
    as an angle in degrees, states its value in that unit)."""
    return (f"every one of the {int(n_resamples)} resamples of the {int(n_blocks)} blocks gives {value:.6g}, "
            "so the bootstrap cannot measure this metric's uncertainty (a zero-width interval would "
            "read as certainty)")


def ci_entries(name: str, result: Dict[str, object], confidence: float = CONFIDENCE) -> Dict[str, object]:
    """Metrics-file keys of one interval: ``{name}_ci95`` (``[low, high]`` or None) and, when it is
    None, ``{name}_ci95_reason`` (str); ``{name}_ci95_method`` when BCa fell back to the percentile
    interval."""
    key = ci_key(name, confidence)
    out = {key: result["interval"]}
    if result["interval"] is None:
        out[f"{key}_reason"] = result["reason"]
    elif result["method"] != "BCa":
        out[f"{key}_method"] = result["method"]
    return out


def ci_description(prefix: str, n_blocks: Optional[int], definition: str, method: str = "BCa",
                   confidence: float = CONFIDENCE, n_resamples: int = N_RESAMPLES,
                   block_s: Optional[float] = None, seed: int = 0) -> Dict[str, object]:
    """The keys stating once how the intervals under ``prefix`` (e.g. ``"test/"``) were made:
    ``{prefix}ci95_n_blocks`` (int; left out when ``n_blocks`` is None, for callers that count
    the blocks per target), ``{prefix}ci95_blocks`` (str, what a block is), ``{prefix}ci95_method``
    (str; names ``method``, ``n_resamples`` and ``seed``, the resampling seed given to
    :func:`block_bootstrap_ci`) and ``{prefix}ci95_block_s`` (``block_s``: the block length of a
    time split, s; None for a trial split, whose blocks are its trials)."""
    key = f"{prefix}ci{round(confidence * 100):d}"
    counts = {} if n_blocks is None else {f"{key}_n_blocks": int(n_blocks)}
    return {
        **counts,
        f"{key}_blocks": definition,
        f"{key}_method": (f"scipy.stats.bootstrap, method {method!r}, {n_resamples} resamples of whole blocks "
                          f"(seed {int(seed)}), metric recomputed from the resampled blocks' summed sufficient statistics"),
        f"{key}_block_s": None if block_s is None else float(block_s),
    }


__all__ = [
    "CI_BLOCK_S",
    "CONFIDENCE",
    "MIN_BLOCKS",
    "N_RESAMPLES",
    "BootstrapInputError",
    "block_bootstrap_ci",
    "block_sums",
    "check_block_s",
    "ci_description",
    "ci_entries",
    "ci_key",
    "count_blocks",
    "degenerate_reason",
    "few_blocks_hint",
    "merge_segments",
    "warn_block_s_unused",
    "window_blocks",
    "resolve_block_s",
]
