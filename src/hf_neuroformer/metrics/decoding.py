r"""Behaviour-decoding metrics: one function for regression, classification and circular targets.

:func:`decoding_metrics` is shared by the Neuroformer decoding head (``Trainer``'s
``compute_metrics``) and the classical baselines (:mod:`hf_neuroformer.baselines`), so both sides
of a comparison are scored by the same code.

Definitions (``y`` = truth, ``\hat y`` = prediction, ``n`` windows)
--------------------------------------------------------------------
regression
    ``r2``: coefficient of determination ``1 - sum (y - \hat y)^2 / sum (y - mean y)^2``
    (:func:`sklearn.metrics.r2_score`; can be negative; for 2-D targets the uniform average over
    columns; NaN when a column of ``y`` is constant, where it is undefined, up to float rounding as for
    ``pearson_r``). ``pearson_r``: Pearson correlation of ``y`` and ``\hat y``
    (:func:`scipy.stats.pearsonr`; mean over columns for 2-D targets; NaN when either side is
    constant, up to float rounding: a spread within ``1e-10`` of its largest magnitude). ``rmse`` and ``mae`` in the target's unit. ``target_sd``: the standard deviation
    of ``y`` over the scored windows (ddof 0, the target's unit; mean over columns for 2-D
    targets), what ``r2`` divides by (for one column ``r2 = 1 - rmse^2 / target_sd^2``): on a
    time-blocked test split the target can vary much less than in training, so a small error
    can still give a very negative ``r2``; report it beside ``r2``.
classification
    ``accuracy``: fraction of windows whose predicted class equals the true class.
    ``balanced_accuracy``: mean over the classes present in ``y`` of the per-class recall
    (:func:`sklearn.metrics.balanced_accuracy_score`), so chance is ``1 / n_classes`` whatever
    the class frequencies.
circular (angles in radians)
    The wrapped difference ``d = ((\hat y - y + pi) mod 2 pi) - pi`` lies in ``[-pi, pi)``;
    ``mean_angular_error_rad`` / ``median_angular_error_rad`` are the mean / median of ``|d|``
    (range ``[0, pi]``; a uniform random guess averages ``pi / 2``), and ``*_deg`` the same in
    degrees. ``circular_r`` is the mean resultant length of ``d`` (1 = the prediction equals the truth up
    to one constant rotation, 0 = errors spread uniformly round the circle); for information.

Every result also carries ``n`` (number of windows scored).
"""

from __future__ import annotations

import math
import warnings
from typing import Dict

import numpy as np

from ..argument_checks import KINDS
from ..recording import as_real_numbers, count_noun
from .fidelity import _nearly_constant

#: Target kinds :func:`decoding_metrics` accepts.
DECODING_KINDS = KINDS


class DecodingMetricsInputError(ValueError):
    """Inputs of :func:`decoding_metrics` with a wrong kind, shape, length or non-finite values."""


def wrap_angle(a: np.ndarray) -> np.ndarray:
    """Angles wrapped into ``[-pi, pi)`` (radians in, radians out, same shape)."""
    a = np.asarray(a, dtype=np.float64)
    return np.mod(a + np.pi, 2.0 * np.pi) - np.pi


def angular_error(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Absolute wrapped angular difference ``|wrap(y_pred - y_true)|`` (rad, in ``[0, pi]``).

    ``y_true``, ``y_pred``: float arrays of radians, same (or broadcastable) shape; returns
    float64 of the broadcast shape (NaN where an input is NaN)."""
    return np.abs(wrap_angle(np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)))


def _check_finite(name: str, a: np.ndarray) -> None:
    bad = ~np.isfinite(a)
    if bad.any():
        idx = int(np.flatnonzero(bad.reshape(len(a), -1).any(axis=1))[0])
        raise DecodingMetricsInputError(
            f"{name}: expected finite values, got {a.reshape(len(a), -1)[idx].tolist()} at window {idx} "
            f"({count_noun(int(bad.reshape(len(a), -1).any(axis=1).sum()), 'window')} with NaN/inf); drop or mask them before scoring"
        )


#: Largest |angle| (rad) a circular target may hold: one turn either way, plus round-off.
MAX_ABS_ANGLE = 2 * math.pi + 1e-6
_DEGREE_UNITS = ("deg", "degree", "degrees", "°")


def unit_is_degrees(unit) -> bool:
    """Whether a series' ``unit`` (str or None) names degrees (``deg``, ``degree(s)``, ``°``)."""
    return unit is not None and str(unit).strip().lower() in _DEGREE_UNITS


def radians_problem(values, unit: str | None = None) -> str | None:
    """Why ``values`` (angles) cannot be radians, or None when they can.

    Circular targets are in radians (the heads predict (cos, sin) of the angle). Angles given in
    degrees are accepted by every formula and silently give chance-level errors (a 10 deg error
    reads as 147 deg), so they are refused: a ``unit`` of ``deg``/``degree(s)``, or any finite
    ``|value| > 2 pi``.
    """
    if unit_is_degrees(unit):
        return f"the series is in {unit!r}; circular targets are in radians (convert with np.deg2rad)"
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size and float(np.abs(v).max()) > MAX_ABS_ANGLE:
        return (f"expected angles in radians within [-2 pi, 2 pi], got values up to {float(np.abs(v).max()):.4g}; "
                "degrees? convert with np.deg2rad; unwrapped radians? wrap them with np.mod(v, 2 * np.pi)")
    return None


def warn_if_not_radians(values, what: str, unit, *, stacklevel: int = 3) -> None:
    """Warn when ``values``, read as angles in radians (a circular mean, a (cos, sin) embedding),
    look like degrees: a finite ``|value|`` beyond two turns (``2 * MAX_ABS_ANGLE``, 4 pi) in a
    series that is not an unwrapped trace, i.e. where some step between consecutive finite samples
    (along the first axis, time) exceeds pi, as np.unwrap would not leave it. Degrees labelled
    ``rad`` give a wrong angle without an error, and show such steps: the jump of 360 where a
    wrapped series (0..359 or -180..180) crosses its seam, or any turn faster than pi degrees per
    sample. A warning, not a refusal as in :func:`radians_problem`: unwrapped radians (a head
    direction that keeps turning, any number of turns) are fine angles there and stay silent, and
    the margin keeps quiet about a wrapped radian series merely offset by a turn. A degree series
    that is itself unwrapped and sampled so finely that no step exceeds pi degrees cannot be told
    from unwrapped radians by its values and is not warned of; its ``unit`` must say ``deg``.
    Values with no two consecutive finite samples are judged by their size alone.

    Args:
        values: the angles in time order (``(n,)`` or ``(n, k)``; NaN ignored).
        what: the series, as the message names it (e.g. ``"behaviour['ry']"``).
        unit: its ``unit`` as recorded.
        stacklevel: where the warning points, as ``warnings.warn`` takes it (keyword-only int;
            3, the default: the caller of the function that called this one).
    """
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    top = float(np.abs(finite).max()) if finite.size else 0.0
    if top <= 2 * MAX_ABS_ANGLE:
        return
    steps = np.abs(np.diff(v, axis=0)) if v.ndim else np.empty(0)
    steps = steps[np.isfinite(steps)]  # a step touching a NaN gap is no step of the trace
    if steps.size and float(steps.max()) <= math.pi:
        return  # an unwrapped trace: np.unwrap leaves it as it is
    jump = f"; its steps between samples reach {float(steps.max()):.4g}, beyond pi" if steps.size else ""
    warnings.warn(f"{what} (unit {unit!r}) is read as angles in radians, but holds values up to {top:.4g}, "
                  "beyond two turns (4 pi): degrees? then every angle taken from it is wrong: set its unit to "
                  f"'deg' or convert it with np.deg2rad (unwrapped radians are fine, but their steps stay within "
                  f"pi{jump})", UserWarning, stacklevel=stacklevel)


def decoding_metrics(y_true, y_pred, kind: str) -> Dict[str, float]:
    """Score decoded behaviour against the recorded behaviour.

    Args:
        y_true: recorded target per window. ``regression``: float ``(n,)`` or ``(n, k)`` in the
            target's unit; ``classification``: integer class labels ``(n,)``; ``circular``:
            angles ``(n,)`` in radians within ``[-2 pi, 2 pi]`` (differences are wrapped, so
            ``y_pred`` may lie in any range).
        y_pred: decoded target, same layout as ``y_true``; for ``classification`` also accepted
            as scores ``(n, n_classes)``, ``n_classes >= 2`` (logits or probabilities; the argmax
            is the predicted class index, so labels must then be class indices
            ``0..n_classes-1``), and as labels ``(n, 1)`` (one target's column); for
            ``circular`` also accepted as ``(n, 2)`` = (cos, sin), turned into an angle with
            ``atan2(sin, cos)``.
        kind: ``"regression"``, ``"classification"`` or ``"circular"``.

    Returns:
        dict of floats. regression: ``r2``, ``pearson_r``, ``rmse``, ``mae``, ``target_sd``, ``n``;
        classification: ``accuracy``, ``balanced_accuracy``, ``n``; circular:
        ``mean_angular_error_rad``, ``median_angular_error_rad``, ``mean_angular_error_deg``,
        ``median_angular_error_deg``, ``circular_r``, ``n``. Definitions in the module docstring.

    Raises:
        DecodingMetricsInputError: unknown ``kind``; no windows; non-numeric values (class names:
            map them to indices first; complex numbers); ``y_true`` and ``y_pred`` of
            different lengths or shapes; NaN or inf in either (named with the first window);
            classification labels that are not whole numbers, or outside ``0 .. n_classes - 1``
            when ``y_pred`` holds class scores; circular ``y_true`` beyond
            ``2 pi`` in absolute value (degrees, see :func:`radians_problem`).
    """
    if kind not in DECODING_KINDS:
        raise DecodingMetricsInputError(f"kind: expected one of {list(DECODING_KINDS)}, got {kind!r}")
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.ndim == 0 or len(y_true) == 0:
        raise DecodingMetricsInputError(f"y_true: expected at least one window, got shape {y_true.shape}")
    if y_pred.ndim == 0 or len(y_pred) != len(y_true):
        raise DecodingMetricsInputError(
            f"y_pred: expected {len(y_true)} windows like y_true, got shape {y_pred.shape}"
        )
    for name, a in (("y_true", y_true), ("y_pred", y_pred)):
        as_real_numbers(a, name, hint="map class names to indices 0..n_classes-1 first" if kind == "classification"
                        else "pass the values as floats", error=DecodingMetricsInputError)
    _check_finite("y_true", y_true.astype(np.float64))
    _check_finite("y_pred", y_pred.astype(np.float64))
    n = float(len(y_true))

    if kind == "classification":
        from sklearn.metrics import accuracy_score, balanced_accuracy_score

        if y_true.ndim != 1:
            raise DecodingMetricsInputError(f"y_true: expected class labels of shape (n,), got {y_true.shape}")
        if y_pred.ndim == 2 and y_pred.shape[1] == 1:
            # a column of labels (a decoder's (n, n_targets) predictions of one target): argmax read
            # every window as class 0; one class score per window is no classifier's output
            y_pred = y_pred[:, 0]
        if y_pred.ndim == 2:
            k = y_pred.shape[1]
            outside = (y_true < 0) | (y_true >= k)
            if outside.any():
                # argmax can only name classes 0..k-1: such a window was scored wrong whatever the decoder said
                raise DecodingMetricsInputError(
                    f"y_true: class scores y_pred {y_pred.shape} name classes 0..{k - 1}, got labels "
                    f"{sorted(set(y_true[outside].tolist()))[:5]} (in {int(outside.sum())} of {len(y_true)} windows); pass class "
                    "indices of the scores' columns")
            y_pred = y_pred.argmax(axis=1)
        elif y_pred.ndim != 1:
            raise DecodingMetricsInputError(
                f"y_pred: expected labels (n,) or class scores (n, n_classes), got {y_pred.shape}"
            )
        for name, a in (("y_true", y_true), ("y_pred", y_pred)):
            frac = a.astype(np.float64) % 1 != 0
            if frac.any():
                raise DecodingMetricsInputError(
                    f"{name}: expected whole-number class labels, got {a[frac][:3].tolist()} "
                    f"({count_noun(int(frac.sum()), 'window')}); pass class indices, or class scores (n, n_classes) as y_pred"
                )
        y_true = y_true.astype(np.int64)
        y_pred = y_pred.astype(np.int64)
        with warnings.catch_warnings():
            # "y_pred contains classes not in y_true": balanced accuracy is still defined.
            warnings.simplefilter("ignore", UserWarning)
            bal = balanced_accuracy_score(y_true, y_pred)
        return {"accuracy": float(accuracy_score(y_true, y_pred)), "balanced_accuracy": float(bal), "n": n}

    if kind == "circular":
        if y_true.ndim != 1:
            raise DecodingMetricsInputError(f"y_true: expected angles of shape (n,), got {y_true.shape}")
        y_pred = y_pred.astype(np.float64)
        if y_pred.ndim == 2 and y_pred.shape[1] == 2:
            y_pred = np.arctan2(y_pred[:, 1], y_pred[:, 0])
        elif y_pred.ndim != 1:
            raise DecodingMetricsInputError(
                f"y_pred: expected angles (n,) or (cos, sin) pairs (n, 2), got {y_pred.shape}"
            )
        problem = radians_problem(y_true)  # the recorded angles; predictions may be unwrapped
        if problem:
            raise DecodingMetricsInputError(f"y_true: {problem}")
        d = wrap_angle(y_pred - y_true.astype(np.float64))
        err = np.abs(d)
        return {
            "mean_angular_error_rad": float(err.mean()),
            "median_angular_error_rad": float(np.median(err)),
            "mean_angular_error_deg": float(math.degrees(err.mean())),
            "median_angular_error_deg": float(math.degrees(np.median(err))),
            "circular_r": float(np.abs(np.exp(1j * d).mean())),
            "n": n,
        }

    # regression
    from scipy import stats
    from sklearn.metrics import r2_score

    y_true = y_true.astype(np.float64)
    y_pred = y_pred.astype(np.float64)
    if y_pred.shape != y_true.shape:
        raise DecodingMetricsInputError(f"y_pred: expected shape {y_true.shape} like y_true, got {y_pred.shape}")
    if y_true.ndim > 2:
        raise DecodingMetricsInputError(f"y_true: expected shape (n,) or (n, k), got {y_true.shape}")
    t2 = y_true.reshape(len(y_true), -1)
    p2 = y_pred.reshape(len(y_pred), -1)
    rs = []
    for j in range(t2.shape[1]):
        # correlation undefined for a constant side; "constant" up to float rounding: a collapsed decoder's
        # mean prediction, de-standardised, differs in its last bits and gave an r of that noise (0.55)
        if len(t2) < 2 or _nearly_constant(t2[:, j]) or _nearly_constant(p2[:, j]):
            rs.append(float("nan"))
        else:
            rs.append(float(stats.pearsonr(t2[:, j], p2[:, j])[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # r2 with < 2 samples warns and returns NaN
        # undefined (NaN) for a constant truth, not sklearn's force_finite 0.0 / 1.0; constant up to float
        # rounding as for pearson_r: a constant behaviour averaged over windows (target_values' cumulative sums)
        # differs in its last bits, and r2 divided by that noise (-1e30)
        constant = len(t2) < 2 or any(_nearly_constant(t2[:, j]) for j in range(t2.shape[1]))
        r2 = float("nan") if constant else float(r2_score(t2, p2))
    err = p2 - t2
    return {
        "r2": r2,
        "pearson_r": float(np.mean(rs)),
        "rmse": float(np.sqrt(np.mean(err ** 2))),
        "mae": float(np.mean(np.abs(err))),
        "target_sd": float(np.mean(t2.std(axis=0))),
        "n": n,
    }


def _weighted_median(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``(m,)`` medians of ``m`` samples given as ``counts`` ``(m, U)`` of each sorted distinct
    ``values`` ``(U,)``: the middle order statistic, or the mean of the two middle ones for an even
    count (as :func:`numpy.median`)."""
    c = np.cumsum(counts, axis=1)
    n = c[:, -1:]
    lo = values[np.minimum((c < np.floor((n + 1) / 2)).sum(axis=1), len(values) - 1)]
    hi = values[np.minimum((c < np.ceil((n + 1) / 2)).sum(axis=1), len(values) - 1)]
    return np.where(n[:, 0] > 0, (lo + hi) / 2, np.nan)


def decoding_metrics_ci(y_true, y_pred, kind: str, blocks, **bootstrap) -> Dict[str, dict]:
    r"""Block-bootstrap confidence intervals of the :func:`decoding_metrics` figures.

    Each block of windows (``blocks``, e.g. from
    :func:`~hf_neuroformer.metrics.bootstrap.window_blocks`) contributes its sufficient
    statistics, resampled together and turned back into the metric on every resample
    (:func:`~hf_neuroformer.metrics.bootstrap.block_bootstrap_ci`): regression, the sums of ``y``,
    ``y^2``, ``\hat y``, ``\hat y^2``, ``y \hat y``, squared and absolute errors per column
    (``r2``, ``pearson_r``, ``rmse``, ``mae``; for 2-D targets averaged over columns as
    :func:`decoding_metrics` does); classification, per-class window and hit counts
    (``accuracy``, ``balanced_accuracy``); circular, the summed absolute wrapped error and
    ``cos`` / ``sin`` of the error (``mean_angular_error_*``, ``circular_r``) and, for the
    median, the count of each distinct error value per block (an exact median of the resample).

    Args:
        y_true, y_pred, kind: as :func:`decoding_metrics` (same checks, same layouts).
        blocks: ``(n,)`` int block label of each window, ``>= 0`` (e.g. ``0 .. n_blocks - 1`` from
            :func:`~hf_neuroformer.metrics.bootstrap.window_blocks`, or trial ids): the windows
            sharing a label form one block; labels need not be consecutive.
        **bootstrap: passed to :func:`~hf_neuroformer.metrics.bootstrap.block_bootstrap_ci`
            (``n_resamples``, ``confidence``, ``seed``, ``method``, ``min_blocks``).

    Returns:
        dict metric name -> :func:`~hf_neuroformer.metrics.bootstrap.block_bootstrap_ci` result
        (``interval`` in the metric's unit, or None with a ``reason``); the metrics of
        :func:`decoding_metrics` except ``n`` and ``target_sd``. A classifier that predicts one
        class for every window gets no ``balanced_accuracy`` interval (it is chance, ``1 /
        n_classes``, on every resample; 0 when that class is no window's label), with that reason.

    Raises:
        DecodingMetricsInputError: as :func:`decoding_metrics`, or ``blocks`` not one integer
            per window.
    """
    from .bootstrap import block_bootstrap_ci, block_sums, degenerate_reason

    point = decoding_metrics(y_true, y_pred, kind)  # the same checks (and messages)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    b = np.asarray(blocks)
    if b.shape != (len(y_true),):
        raise DecodingMetricsInputError(f"blocks: expected {len(y_true)} integer block indices >= 0 (one per window), "
                                        f"got shape {b.shape}")
    if b.dtype.kind not in "biuf":
        # text labels (trial names) failed inside numpy ("ufunc 'minimum' did not contain a loop"), naming nothing
        raise DecodingMetricsInputError(f"blocks: expected integer block indices >= 0 (one per window), got dtype "
                                        f"{b.dtype} (first {b.ravel()[:3].tolist()}); map the labels to integers, e.g. "
                                        "np.unique(labels, return_inverse=True)[1]")
    bad = np.flatnonzero(~np.isfinite(b) | (b < 0) | (b != np.round(b))) if b.size else np.zeros(0, dtype=np.int64)
    if bad.size:
        # the message said only 'got shape (n,)', the right shape, for a negative or fractional label
        raise DecodingMetricsInputError(f"blocks: expected integer block indices >= 0 (one per window), got "
                                        f"{b[bad[0]].item()!r} at window {int(bad[0])} ({bad.size} such labels)")
    # renumbered 0 .. n_blocks - 1: labels with gaps (trial ids 3, 7, 12, ...) made every missing
    # number an empty block, counted towards min_blocks and drawn in resamples as a block of no window
    _, b = np.unique(b.astype(np.int64), return_inverse=True)
    b = b.reshape(-1)
    nb = int(b.max(initial=-1)) + 1

    def ci(statistic, *values):
        return block_bootstrap_ci(statistic, *[block_sums(v, b, nb) for v in values], **bootstrap)

    ones = np.ones((len(y_true), 1))
    if kind == "classification":
        if y_pred.ndim == 2:  # (n, 1): labels, as decoding_metrics reads them; (n, k >= 2): class scores
            y_pred = y_pred[:, 0] if y_pred.shape[1] == 1 else y_pred.argmax(axis=1)
        yt, yp = y_true.astype(np.int64), y_pred.astype(np.int64)
        classes = np.unique(yt)
        member = (yt[:, None] == classes[None]).astype(np.float64)  # (n, C)
        hit = member * (yp == yt)[:, None]

        def balanced(n, h):
            with np.errstate(divide="ignore", invalid="ignore"):
                recall = np.where(n > 0, h / n, np.nan)
            return np.nanmean(recall, axis=1)

        out = {"accuracy": ci(lambda n, h: h.sum(1) / n.sum(1), member, hit),
               "balanced_accuracy": ci(balanced, member, hit)}
        ba = out["balanced_accuracy"]
        if len(classes) > 1 and len(np.unique(yp)) == 1 and (ba["interval"] is not None or ba.get("degenerate")):
            # a decoder that answers one class everywhere scores 1 / (classes present) on every
            # resample: the interval [0.333, 0.333] looked like a precise estimate
            # (0 when that class is none of the windows' labels, e.g. the training split's majority
            # class missing from the test split: that is not chance)
            if yp[0] in classes:
                value = f"1 / {len(classes)} (chance) by construction on every resample"
            else:
                value = f"0 on every resample: it answers class {int(yp[0])}, which no window has"
            out["balanced_accuracy"] = dict(
                out["balanced_accuracy"], interval=None,
                reason=f"the decoder predicts one class for all {len(yp)} windows, so balanced accuracy is "
                       f"{value}")
        return out

    if kind == "circular":
        yp = y_pred.astype(np.float64)
        if yp.ndim == 2:
            yp = np.arctan2(yp[:, 1], yp[:, 0])
        d = wrap_angle(yp - y_true.astype(np.float64))
        err = np.abs(d)
        values, inverse = np.unique(err, return_inverse=True)
        counts = np.zeros((nb, len(values)))  # windows of each block with each distinct error
        np.add.at(counts, (b, inverse.reshape(-1)), 1.0)
        mean = ci(lambda s, n: s[:, 0] / n[:, 0], err[:, None], ones)
        median = block_bootstrap_ci(lambda c: _weighted_median(values, c), counts, **bootstrap)
        deg = [{**r, "estimate": math.degrees(r["estimate"]),
                "interval": None if r["interval"] is None else [math.degrees(v) for v in r["interval"]]}
               for r in (mean, median)]
        for r in deg:  # the reason's value in degrees too (it quoted 0.785398 beside 45 degrees)
            if r.get("degenerate"):
                r["reason"] = degenerate_reason(r["n_resamples"], r["n_blocks"], r["estimate"])
        return {
            "mean_angular_error_rad": mean,
            "median_angular_error_rad": median,
            "mean_angular_error_deg": deg[0],
            "median_angular_error_deg": deg[1],
            "circular_r": ci(lambda cs, n: np.hypot(cs[:, 0], cs[:, 1]) / n[:, 0],
                             np.stack([np.cos(d), np.sin(d)], 1), ones),
        }

    # regression; centred on the whole split's means (r2 and r do not change, the sums lose less)
    t = y_true.astype(np.float64).reshape(len(y_true), -1)
    p = y_pred.astype(np.float64).reshape(len(y_pred), -1)
    e = p - t
    t, p = t - t.mean(0), p - p.mean(0)
    k = t.shape[1]
    parts = np.concatenate([t, t * t, p, p * p, t * p, e * e, np.abs(e)], axis=1)  # (n, 7k)

    def split(s):
        return [s[:, i * k:(i + 1) * k] for i in range(7)]

    def r2(s, n):
        st, stt, _, _, _, see, _ = split(s)
        sst = stt - st * st / n
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(np.all(sst > 0, axis=1), np.mean(1 - see / sst, axis=1), np.nan)

    def pearson(s, n):
        st, stt, sp, spp, stp, _, _ = split(s)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.mean((stp - st * sp / n) / np.sqrt((stt - st * st / n) * (spp - sp * sp / n)), axis=1)

    out = {
        "r2": ci(r2, parts, ones),
        "pearson_r": ci(pearson, parts, ones),
        "rmse": ci(lambda s, n: np.sqrt(split(s)[5].sum(1) / (n[:, 0] * k)), parts, ones),
        "mae": ci(lambda s, n: split(s)[6].sum(1) / (n[:, 0] * k), parts, ones),
    }
    # where decoding_metrics calls r2 / pearson_r undefined (a constant truth or prediction, up to float
    # rounding), the sums gave the correlation of the rounding noise an interval (-0.23 [-0.41, -0.09] beside
    # a NaN pearson_r), or -inf for an exactly constant prediction: no interval, and why
    why = {"r2": "the recorded target is constant over the windows (up to float rounding)",
           "pearson_r": "the recorded target or the prediction is constant over the windows (up to float rounding)"}
    for key, text in why.items():
        if math.isnan(point[key]):
            out[key] = {**out[key], "estimate": float("nan"), "interval": None,
                        "reason": f"{key} is undefined: {text}"}
            out[key].pop("degenerate", None)
    return out


__all__ = ["DECODING_KINDS", "DecodingMetricsInputError", "angular_error", "decoding_metrics", "decoding_metrics_ci",
           "wrap_angle",
           "unit_is_degrees", "radians_problem", "warn_if_not_radians"]
