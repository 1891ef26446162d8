r"""Classical behaviour decoders on exactly the windows, bins, splits and targets the model sees.

Features
--------
:func:`binned_count_features` reads the spike counts back from the *same dataset rows* that the
Neuroformer decoder is trained and tested on (``input_ids``, ``past_input_ids``,
``past_dt_ids``): one bin is the current window (``current_window`` s) and the past window is
cut into ``n_history_bins = past_window / current_window`` bins of the same width (a whole number, else refused),
counted back from the window start. So the bin size and history length of every baseline are
the model's window and past window, and the train / validation / test windows (and the few-shot
training blocks) are the model's.

Decoders (:data:`BASELINES`)
----------------------------
All inputs are standardised with statistics of the training windows
(:class:`sklearn.preprocessing.StandardScaler` on ``log1p(counts)``; a feature constant over the
training windows, such as a unit silent in them, reads 0 at prediction whatever its count: no
decoder learnt a weight for it); regression targets are
standardised the same way for the MLP and GRU. Hyperparameters are chosen on the training windows
only, never on the test split:

``ridge``
    :class:`~sklearn.linear_model.RidgeCV` (regression, circular) /
    :class:`~sklearn.linear_model.RidgeClassifierCV` (classification), ``alpha`` from
    ``logspace(-2, 5, 15)`` by cross-validation with time-blocked folds (:func:`blocked_folds`:
    consecutive blocks of the time-ordered training windows, no shuffling, with the windows on
    each side of a validation block that share bins with it left out of that fold's training
    windows: ``n_history_bins`` of them for windows that tile time, more for overlapping
    training windows (``window_stride`` < ``current_window``), :func:`shared_bin_windows`).
``lasso``
    :class:`~sklearn.linear_model.LassoCV` per output column (regression, circular; 30 alphas,
    same folds) / L1-penalised multinomial logistic regression with ``C`` by the same folds
    (:class:`~sklearn.linear_model.LogisticRegressionCV`, ``saga``) for classification.
``glm``
    A generalised linear model: for a non-negative regression target (e.g. position in px)
    :class:`~sklearn.linear_model.PoissonRegressor` (log link); otherwise a Gaussian
    identity-link :class:`~sklearn.linear_model.TweedieRegressor` (``power=0``); circular targets
    are two Gaussian GLMs on cos and sin; ``alpha`` in ``logspace(-4, 1, 6)`` (for the Poisson
    GLM times the target's training mean, as its deviance grows with the target's scale and the
    penalty does not) by the same folds, the fold error the squared error. Classification: multinomial :class:`~sklearn.linear_model.LogisticRegressionCV` (L2).
``mlp``
    :class:`~sklearn.neural_network.MLPRegressor` / ``MLPClassifier``, one hidden layer of 64
    ReLU units, ``alpha=1e-3``, Adam; trained epoch by epoch with ``partial_fit`` and stopped on
    the *last* 15 % of the training windows in time (a contiguous held-out block, not a random
    subset: overlapping neighbour windows would leak; the purge gap of windows before it, which
    share bins with it, is left out of training too, ``info["early_stopping_gap_windows"]``),
    keeping the best epoch (patience 20, at most 200 epochs).
``gru``
    A one-layer GRU (hidden 32, torch, seeded) run over the ``1 + n_history_bins`` bins in time
    order (oldest past bin first, current window last), a linear read-out of the last state;
    MSE on standardised targets (regression, and (cos, sin) for circular) or cross-entropy
    (classification); Adam, lr 3e-3, batch 64, early stopping on the same last 15 % block,
    purged the same way (patience 8, at most 80 epochs), best epoch kept.

For classification the MLP and the GRU score early stopping only on the block's windows of
classes their fitted windows hold (a class only in the block is never trained on; scoring it
picked the epoch whose untrained output predicted it most), said in ``info["note"]``.

Circular targets (radians) are decoded as ``(cos, sin)`` and turned back into an angle with
``atan2``. Classification baselines weight classes inversely to their training frequency
(``class_weight="balanced"``), since the metric is balanced accuracy; a training block holding
a single class gets a constant prediction of that class (reported in the result's
``notes``). Everything is scored with :func:`hf_neuroformer.metrics.decoding_metrics`.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .configuration_neuroformer import FIRST_UNIT_ID, is_whole_number
from .metrics.decoding import decoding_metrics, radians_problem
from .recording import as_real_numbers, count_noun

#: Names accepted by :func:`fit_baseline`, in report order.
BASELINES = ("ridge", "lasso", "glm", "mlp", "gru")

_KINDS = ("regression", "classification", "circular")


class BaselineInputError(ValueError):
    """Bad input to a baseline: unknown name or kind, wrong shapes, NaN targets, too few windows."""


# ---------------------------------------------------------------------------------------- features
def n_history_bins(config) -> int:
    """``past_window / current_window``: bins of the past window, each ``current_window`` wide.

    Raises:
        BaselineInputError: the past window is not a whole number of current windows (to 1e-6):
            the baselines would read a different history than the model (e.g. no history at all
            for a 0.04 s past with 0.1 s windows).
    """
    ratio = float(config.past_window) / float(config.current_window)
    n = int(round(ratio))
    if abs(ratio - n) > 1e-6:
        raise BaselineInputError(
            f"past_window: the baselines bin the past window in current_window-wide bins, so it must be a whole "
            f"number of current windows; got past_window={config.past_window} s, current_window="
            f"{config.current_window} s (ratio {ratio:.4g}); choose e.g. past_window={max(n, 1) * config.current_window:g}"
        )
    return n


def shared_bin_windows(config) -> int:
    """How many training windows on each side of a window share a bin with it: the purge gap of
    the baselines' cross-validation folds and early-stopping block. A window's features span
    ``past_window + current_window`` s and training windows start every ``config.stride`` s
    (``window_stride``, default ``current_window``), so ``ceil(span / stride) - 1`` neighbours
    on each side overlap it: ``n_history_bins`` for tiling windows, more for overlapping ones
    (``window_stride=0.125`` with 0.25 s windows and a 1 s past: 9, not 4).

    Raises:
        BaselineInputError: as :func:`n_history_bins`; ``window_stride`` not > 0.
    """
    h = n_history_bins(config)
    stride = getattr(config, "window_stride", None)
    stride = float(config.current_window) if stride is None else float(stride)
    if not stride > 0:
        raise BaselineInputError(f"window_stride: expected a step > 0 s between training windows, got {stride}")
    return max(int(math.ceil((1 + h) * float(config.current_window) / stride - 1e-6)) - 1, 0)


def binned_count_features(ds, tokenizer, config) -> np.ndarray:
    """Spike counts per unit in the current window and in each history bin, from dataset rows.

    Args:
        ds: a window ``datasets.Dataset`` (or a dict of columns) as built by
            :func:`hf_neuroformer.windows.build_window_datasets` (and the decoding datasets built on
            it): columns ``input_ids``, ``past_input_ids``, ``past_dt_ids``.
        tokenizer: the :class:`~hf_neuroformer.NeuroformerTokenizer` that made the rows (unit token
            ids ``>= 3``; special ids 0-2 are not counted; ``dt_resolution``).
        config: the :class:`~hf_neuroformer.NeuroformerConfig` (``current_window``,
            ``past_window``, s).

    Returns:
        ``(n_windows, n_units * (1 + n_history_bins))`` float64 counts, ``n_units = len(tokenizer)
        - 3`` (every unit token of the vocabulary, in token-id order). Column block ``k``
        (``k * n_units .. (k+1) * n_units``) holds bin ``k``: ``k = 0`` the current window
        ``[s, s + current_window)``, ``k >= 1`` the past bin ``[s - k * current_window,
        s - (k-1) * current_window)`` (a past spike's time is its dt bin centre, so with a
        ``current_window`` that is not a multiple of ``dt_resolution`` a spike near a bin edge
        counts where its dt bin's centre lies, as the model sees it; a ``past_window`` that is
        not a whole number of current windows is refused, :func:`n_history_bins`).
        Spikes the tokenizer truncated (``n_truncated``, ``n_past_truncated``) are missing here
        exactly as they are missing for the model.

    Raises:
        BaselineInputError: a column is missing, a token id (or past dt id) lies outside the
            tokenizer's, the config's ``current_window``, ``past_window`` or ``dt_resolution``
            differs from the tokenizer's, or the past window is not a whole number of current
            windows.
    """
    cols = ds.column_names if hasattr(ds, "column_names") else list(ds)
    for c in ("input_ids", "past_input_ids", "past_dt_ids"):
        if c not in cols:
            raise BaselineInputError(f"ds: expected a window dataset with column {c!r}, got columns {cols}")
    for attr in ("current_window", "past_window", "dt_resolution"):
        # the rows' dt ids count from the tokenizer's past-window start: another past_window in the config
        # put every past spike in the wrong history bin (those further back than it in the oldest) without a word
        tv, cv = getattr(tokenizer, attr, None), getattr(config, attr, None)
        if tv is not None and cv is not None and abs(float(tv) - float(cv)) > 1e-9:
            raise BaselineInputError(
                f"config.{attr}: {cv} s, but the tokenizer that made the rows has {attr}={tv} s, so the rows' dt ids "
                "would be read in other bins than the model's; pass the config and tokenizer the rows were made with")
    n_special = FIRST_UNIT_ID
    n_units = len(tokenizer) - n_special
    h = n_history_bins(config)
    n_past_dt = getattr(tokenizer, "num_past_dt_bins", None)
    cw, pw, dtr = float(config.current_window), float(config.past_window), float(tokenizer.dt_resolution)
    n = len(ds)
    out = np.zeros((n, 1 + h, n_units), dtype=np.float64)
    cur = ds["input_ids"]
    past = ds["past_input_ids"]
    pdt = ds["past_dt_ids"]
    for i in range(n):
        ids = np.asarray(cur[i], dtype=np.int64)
        ids = ids[ids >= n_special] - n_special
        if ids.size:
            if ids.max() >= n_units:
                raise BaselineInputError(f"ds: window {i} has token id {ids.max() + n_special} outside the "
                                         f"vocabulary of {len(tokenizer)} tokens")
            np.add.at(out[i, 0], ids, 1.0)
        if h:
            pid = np.asarray(past[i], dtype=np.int64)
            pd = np.asarray(pdt[i], dtype=np.int64)
            keep = pid >= n_special
            pid, pd = pid[keep] - n_special, pd[keep]
            if pid.size:
                if pid.max() >= n_units:
                    raise BaselineInputError(f"ds: window {i} has past token id {pid.max() + n_special} outside "
                                             f"the vocabulary of {len(tokenizer)} tokens")
                if n_past_dt is not None and (pd.max() >= n_past_dt or pd.min() < 0):
                    raise BaselineInputError(
                        f"ds: window {i} has past dt id {int(pd.max() if pd.max() >= n_past_dt else pd.min())} outside "
                        f"the tokenizer's [0, {n_past_dt}) (past_window {tokenizer.past_window} s): the rows were made "
                        "with another past window or tokenizer")
                before = pw - (pd + 0.5) * dtr  # seconds before the window start (bin centre)
                lag = np.clip(np.floor(before / cw).astype(np.int64) + 1, 1, h)
                np.add.at(out[i], (lag, pid), 1.0)
    return out.reshape(n, (1 + h) * n_units)  # (n, -1) failed for a split without windows


def purge_gap(n: int, n_splits: int = 5, gap: int = 0) -> int:
    """The purge gap :func:`blocked_folds` uses for ``n`` windows: ``gap``, shrunk (down to 0)
    while it would leave a fold fewer than 2 training windows. The one place that gap is decided:
    the folds are cut with it and the fitted baselines report it (``cv_gap_windows``).

    Raises:
        BaselineInputError: fewer than 4 windows; ``n_splits`` not an integer >= 2; ``gap`` not an
            integer >= 0.
    """
    _check_fold_args(n_splits, gap)
    edges = _fold_edges(n, n_splits)
    g = int(gap)
    while g and any(max(a - g, 0) + max(n - b - g, 0) < 2 for a, b in zip(edges[:-1], edges[1:])):
        g -= 1
    return g


def _check_fold_args(n_splits, gap) -> None:
    """``n_splits`` an integer >= 2 and ``gap`` an integer >= 0, or a :class:`BaselineInputError` naming the
    argument: ``n_splits=1`` (or 0) cut 2 folds and ``gap=-1`` purged nothing, without a word."""
    if not is_whole_number(n_splits) or n_splits < 2:
        raise BaselineInputError(f"n_splits: expected an integer >= 2 (folds of cross-validation), got {n_splits!r}")
    if not is_whole_number(gap) or gap < 0:
        raise BaselineInputError(f"gap: expected a whole number of windows >= 0 (shared_bin_windows), got {gap!r}")


def _fold_edges(n: int, n_splits: int) -> np.ndarray:
    if n < 4:
        raise BaselineInputError(f"X_train: expected at least 4 training windows for cross-validation, got {n}")
    k = max(2, min(n_splits, n // 2))
    return np.linspace(0, n, k + 1).astype(int)


def blocked_folds(n: int, n_splits: int = 5, gap: int = 0) -> List[tuple]:
    """Time-blocked K-fold indices over ``n`` time-ordered windows: fold ``k`` validates on the
    ``k``-th consecutive block and trains on the rest (no shuffling), less ``gap`` windows on
    each side of the block (a purge: with ``gap = n_history_bins`` no training window shares a
    bin with a validation window, as overlapping neighbours do through their history bins).
    ``min(n_splits, n // 2)`` folds, at least 2. The gap shrinks, down to 0, where it would leave
    a fold fewer than 2 training windows (:func:`purge_gap` gives the one used).

    Returns:
        list of ``(train_indices, validation_indices)`` int64 arrays.

    Raises:
        BaselineInputError: fewer than 4 windows; ``n_splits`` not an integer >= 2; ``gap`` not an
            integer >= 0.
    """
    _check_fold_args(n_splits, gap)
    edges = _fold_edges(n, n_splits)
    idx = np.arange(n)
    g = purge_gap(n, n_splits, gap)
    return [(np.concatenate([idx[:max(a - g, 0)], idx[b + g:]]), idx[a:b]) for a, b in zip(edges[:-1], edges[1:])]


def _folds_with_two_classes(y, gap: int):
    """The purged folds of :func:`blocked_folds` whose training windows hold at least 2 classes,
    with 5, then 4, 3, 2 folds (longer blocks leave more classes outside), the first split count
    that gives 2 such folds; ``([], None)`` where none does. Returns ``(folds, purge gap)``."""
    for k in (5, 4, 3, 2):
        ok = [f for f in blocked_folds(len(y), k, gap) if len(np.unique(y[f[0]])) >= 2]
        if len(ok) >= 2:
            return ok, purge_gap(len(y), k, gap)
    return [], None


def _angle_to_xy(y):
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    return np.stack([np.cos(y), np.sin(y)], axis=1)


# ---------------------------------------------------------------------------------------- models
@dataclass
class FittedBaseline:
    """A fitted baseline: ``predict(X)`` returns the decoded target (value, class index, or angle rad)."""

    name: str
    kind: str
    scaler: Any
    model: Any = None
    y_mean: Optional[np.ndarray] = None
    y_std: Optional[np.ndarray] = None
    constant: Optional[int] = None
    n_bins: int = 1
    info: Dict[str, Any] = field(default_factory=dict)

    def _raw(self, X):
        Z = self.scaler.transform(np.log1p(X))
        # a feature constant over the training windows (a unit silent there) taught the decoder nothing: its
        # test spikes went through the MLP's / GRU's untrained initial weights into the prediction
        Z[:, self.scaler.var_ == 0] = 0.0
        if self.name == "gru":
            import torch

            self.model.eval()
            with torch.no_grad():
                out = self.model(torch.as_tensor(_sequence(Z, self.n_bins), dtype=torch.float32)).numpy()
            return out.astype(np.float64)
        if isinstance(self.model, list):
            return np.stack([m.predict(Z) for m in self.model], axis=1)
        return self.model.predict(Z)

    def predict(self, X) -> np.ndarray:
        """Decoded target per window.

        Args:
            X: ``(n_windows, n_features)`` spike counts, the feature layout the baseline was
                fitted on (:func:`binned_count_features`).

        Returns:
            ``(n_windows,)``: float64 value (regression), int64 class index (classification),
            or float64 angle in rad in ``[-pi, pi]`` (circular, ``arctan2`` of the decoded
            ``(cos, sin)``).

        Raises:
            BaselineInputError: ``X`` is not 2-D with the fitted feature width.
        """
        X = np.asarray(X, dtype=np.float64)
        n_features = int(self.scaler.n_features_in_)
        if X.ndim != 2 or X.shape[1] != n_features:
            # sklearn's "X has 6 features, but StandardScaler is expecting 8" named neither the layout nor the
            # cause; a one-class (constant) baseline answered any shape at all
            raise BaselineInputError(
                f"X: expected (n_windows, {n_features}) counts, the layout fitted on ({self.n_bins} bins of "
                f"{n_features // self.n_bins} units, binned_count_features with the same tokenizer and config), got "
                f"shape {X.shape}")
        if self.constant is not None:
            return np.full(len(X), self.constant, dtype=np.int64)
        out = self._raw(X)
        if self.kind == "classification":
            if self.name == "gru":
                return out.argmax(axis=1).astype(np.int64)
            return np.asarray(out).astype(np.int64).reshape(-1)
        out = np.asarray(out, dtype=np.float64)
        if self.y_mean is not None:
            out = out.reshape(len(X), -1) * self.y_std + self.y_mean
        if self.kind == "circular":
            out = out.reshape(len(X), 2)
            return np.arctan2(out[:, 1], out[:, 0])
        return out.reshape(len(X)) if out.ndim == 2 and out.shape[1] == 1 else out


def predict(fitted: FittedBaseline, X) -> np.ndarray:
    """``fitted.predict(X)`` (module-level form of the contract)."""
    return fitted.predict(X)


def _sequence(Z, n_bins):
    """(n, n_bins * U) in bin order [current, lag 1, ..., lag H] -> (n, n_bins, U) oldest first."""
    z = Z.reshape(len(Z), n_bins, -1)
    # a copy, not np.ascontiguousarray: with one bin (no past window) the reversed view already
    # counts as contiguous, keeps its negative stride, and torch.as_tensor refuses it
    return z[:, ::-1, :].copy()


def _tail_split(n: int, gap: int = 0, frac: float = 0.15):
    """Early-stopping split of ``n`` time-ordered windows: the last ``frac`` (>= 1 window) validate,
    the windows before them train, less the ``gap`` windows just before the validation block
    (they share bins with its first windows through its history; the gap shrinks, down to 0,
    where it would leave fewer than 2 training windows). Returns ``(train, validation, gap)``."""
    n_val = max(1, int(round(frac * n)))
    if n - n_val < 2:
        return np.arange(n), np.arange(n), 0  # too few windows: no hold-out (train = validation)
    g = min(max(int(gap), 0), n - n_val - 2)
    return np.arange(n - n_val - g), np.arange(n - n_val, n), g


def _scored_classes(y, tr, va):
    """Early-stopping windows of a classification: the validation windows whose class the fitted
    windows ``tr`` hold. A class only in the validation block is never trained on, and scoring it
    picked the epoch whose untrained output happened to predict it most (a fit that then predicted
    that class for most windows). Returns ``(windows, note)``: ``va`` and None when every class of
    it is fitted; else the fitted-class windows and a note naming the classes left out; where none
    is left, the fitted windows themselves (no hold-out, as for too few windows)."""
    left_out = np.setdiff1d(y[va], y[tr])
    if not left_out.size:
        return va, None
    keep = va[np.isin(y[va], y[tr])]
    what = (f"{'class' if left_out.size == 1 else 'classes'} {left_out.tolist()} only in the early-stopping block (the last 15 % of the training "
            "windows), never fitted: ")
    if keep.size:
        return keep, what + f"early stopping scored on its {keep.size} of {va.size} windows of fitted classes"
    return tr, what + "no window of a fitted class left there, early stopping scored on the fitted windows"


def _fit_mlp(Z, y, kind, seed, n_classes, gap, max_epochs=200, patience=20):
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    tr, va, gap = _tail_split(len(Z), gap)
    note = None
    if kind == "classification":
        va, note = _scored_classes(y, tr, va)
    kw = dict(hidden_layer_sizes=(64,), alpha=1e-3, learning_rate_init=1e-3, random_state=seed,
              batch_size=min(64, len(tr)))
    if kind == "classification":
        m = MLPClassifier(**kw)
        classes = np.arange(n_classes)
        # class-balanced: repeat minority classes in each epoch (MLPClassifier has no class_weight)
        counts = np.bincount(y[tr], minlength=n_classes).astype(float)
        reps = np.where(counts > 0, np.round(counts.max() / np.maximum(counts, 1)), 0).astype(int)
        tr_bal = np.concatenate([np.repeat(tr[y[tr] == c], reps[c]) for c in classes if counts[c] > 0])
    else:
        m = MLPRegressor(**kw)
        tr_bal = tr
    rng = np.random.default_rng(seed)
    best, best_score, bad, epochs = None, -np.inf, 0, 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in range(max_epochs):
            order = rng.permutation(tr_bal)
            if kind == "classification":
                m.partial_fit(Z[order], y[order], classes=classes)
                pv = m.predict(Z[va])
                score = decoding_metrics(y[va], pv, "classification")["balanced_accuracy"]
            else:
                m.partial_fit(Z[order], y[order])
                score = -float(np.mean((m.predict(Z[va]).reshape(y[va].shape) - y[va]) ** 2))
            epochs = epoch + 1
            if score > best_score + 1e-6:
                best, best_score, bad = copy.deepcopy(m), score, 0
            else:
                bad += 1
                if bad >= patience:
                    break
    info = {"epochs": epochs, "best_validation_score": float(best_score), "early_stopping_gap_windows": gap}
    return best, info | ({"note": note} if note else {})


def _fit_gru(Z, y, kind, seed, n_classes, n_bins, gap, max_epochs=80, patience=8, hidden=32):
    import torch

    # the GRU's initial weights come from the global torch generator: seeding it in place reset the caller's
    # random stream (a model built after a baseline fit started from weights set by the baseline's seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _fit_gru_seeded(Z, y, kind, seed, n_classes, n_bins, gap, max_epochs, patience, hidden)


def _fit_gru_seeded(Z, y, kind, seed, n_classes, n_bins, gap, max_epochs, patience, hidden):
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    out_dim = n_classes if kind == "classification" else (y.shape[1] if y.ndim == 2 else 1)

    class GRUDecoder(nn.Module):
        def __init__(self, n_in):
            super().__init__()
            self.gru = nn.GRU(n_in, hidden, batch_first=True)
            self.head = nn.Linear(hidden, out_dim)

        def forward(self, x):  # x: (batch, n_bins, n_units)
            h, _ = self.gru(x)
            return self.head(h[:, -1])

    X = torch.as_tensor(_sequence(Z, n_bins), dtype=torch.float32)
    tr, va, gap = _tail_split(len(X), gap)
    note, extra = None, {}
    if kind == "classification":
        Y = torch.as_tensor(y, dtype=torch.long)
        # balanced on the windows fitted, as the MLP's repeats: counted over every window, the
        # early-stopping block's and the purge gap's classes weighted a loss they never enter
        counts = np.bincount(y[tr], minlength=n_classes).astype(float)
        w = np.where(counts > 0, len(tr) / (n_classes * np.maximum(counts, 1)), 0.0)
        loss_fn = nn.CrossEntropyLoss(weight=torch.as_tensor(w, dtype=torch.float32))
        va, note = _scored_classes(y, tr, va)
        extra["class_weights"] = [float(v) for v in w]
    else:
        Y = torch.as_tensor(y.reshape(len(y), -1), dtype=torch.float32)
        loss_fn = nn.MSELoss()
    model = GRUDecoder(X.shape[2])
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    best, best_loss, bad, epochs = copy.deepcopy(model.state_dict()), math.inf, 0, 0
    tr_t = torch.as_tensor(tr)
    for epoch in range(max_epochs):
        model.train()
        perm = tr_t[torch.randperm(len(tr_t), generator=g)]
        for i in range(0, len(perm), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            loss = loss_fn(model(X[b]), Y[b])
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            vl = float(loss_fn(model(X[va]), Y[va]))
        epochs = epoch + 1
        if vl < best_loss - 1e-6:
            best, best_loss, bad = copy.deepcopy(model.state_dict()), vl, 0
        else:
            bad += 1
            if bad >= patience:
                break
    model.load_state_dict(best)
    info = {"epochs": epochs, "best_validation_loss": float(best_loss), "early_stopping_gap_windows": gap} | extra
    return model, info | ({"note": note} if note else {})


def fit_baseline(name: str, X_train, y_train, kind: str, seed: int = 0, *, n_bins: int = 1,
                 num_classes: Optional[int] = None, gap: Optional[int] = None) -> FittedBaseline:
    """Fit one baseline decoder on time-ordered training windows.

    The fit runs on one BLAS / torch thread (these problems are small; more threads only add
    synchronisation cost on a shared machine); the previous limits are restored afterwards.

    Args:
        name: one of :data:`BASELINES`.
        X_train: ``(n, n_units * n_bins)`` counts from :func:`binned_count_features`, rows in time order
            (the time-blocked folds and the early-stopping block rely on it).
        y_train: ``(n,)`` target: float (regression), int class index (classification), angle in
            rad (circular).
        kind: ``"regression"``, ``"classification"`` or ``"circular"``.
        seed: seeds the MLP, the GRU and the fold-free randomness (deterministic otherwise).
        n_bins: ``1 + n_history_bins`` (the GRU's sequence length).
        gap: windows on each side of a validation block (cross-validation folds, the MLP's and
            GRU's early-stopping block) left out of training since they share bins with it
            (:func:`shared_bin_windows`); default ``n_bins - 1``, right for windows that tile
            time (stride = current window).
        num_classes: number of classes (default ``max(y_train) + 1``); labels must lie in
            ``0 .. num_classes - 1``.

    Returns:
        :class:`FittedBaseline` (``.predict(X)``; ``.info`` holds chosen alphas / epochs, and
        for the cross-validated decoders ``cv_gap_windows``, the purge gap between the folds; for
        classification the folds are those whose training windows hold 2 classes, with 5, else
        4, 3 or 2 splits, and where none gives 2 such folds ridge's alpha comes from unpurged
        leave-one-out (``cv_gap_windows`` 0) and lasso's / glm's ``C`` is 1 (``cv_gap_windows``
        None), either said in ``info["note"]``; the MLP's and GRU's note names a class found only in
        their early-stopping block, left out of its score).

    Raises:
        BaselineInputError: unknown name or kind, mismatched lengths, non-finite values, negative
            counts, ``n_bins`` not an integer >= 1 or not dividing the feature width, a ``seed`` that
            is not an integer, fewer than 4 training windows, or
            class labels outside ``0 .. num_classes - 1`` or not real numbers (class names, complex numbers).
    """
    import torch
    from threadpoolctl import threadpool_limits

    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            return _fit_baseline(name, X_train, y_train, kind, seed, n_bins=n_bins, num_classes=num_classes, gap=gap)
    finally:
        torch.set_num_threads(n_threads)


def _fit_baseline(name, X_train, y_train, kind, seed, *, n_bins, num_classes, gap):
    from sklearn.preprocessing import StandardScaler

    if name not in BASELINES:
        raise BaselineInputError(f"name: expected one of {list(BASELINES)}, got {name!r}")
    if kind not in _KINDS:
        raise BaselineInputError(f"kind: expected one of {list(_KINDS)}, got {kind!r}")
    X = np.asarray(X_train, dtype=np.float64)
    y = np.asarray(y_train)
    if X.ndim != 2 or len(X) != len(y):
        raise BaselineInputError(f"X_train, y_train: expected (n, n_features) and (n,), got {X.shape} and {y.shape}")
    if not is_whole_number(n_bins) or n_bins < 1:  # 0 failed with ZeroDivisionError ('integer modulo by zero')
        raise BaselineInputError(f"n_bins: expected an integer >= 1 (1 + n_history_bins), got {n_bins!r}")
    if not is_whole_number(seed):  # the MLP's and GRU's torch seed; ridge took seed="a" without a word
        raise BaselineInputError(f"seed: expected an integer, got {seed!r}")
    n_bins = int(n_bins)
    if X.shape[1] % n_bins:
        raise BaselineInputError(f"n_bins: {n_bins} does not divide the feature width {X.shape[1]}")
    if gap is None:
        gap = n_bins - 1
    elif not is_whole_number(gap) or gap < 0:
        raise BaselineInputError(f"gap: expected a whole number of windows >= 0 (shared_bin_windows), got {gap!r}")
    as_real_numbers(y, "y_train", hint="map class names to indices 0..num_classes-1 first", error=BaselineInputError)
    if not np.all(np.isfinite(X)) or not np.all(np.isfinite(y.astype(np.float64))):
        raise BaselineInputError("X_train, y_train: expected finite values (drop windows with NaN targets first)")
    if X.size and X.min() < 0:  # log1p of a value below -1 is NaN: sklearn's "Input X contains NaN" named no cause
        i, j = np.unravel_index(int(np.argmin(X)), X.shape)
        raise BaselineInputError(f"X_train: expected spike counts >= 0 (binned_count_features), got {X[i, j]:g} at "
                                 f"window {i}, feature {j}; the baselines standardise log1p(counts) themselves")
    if len(X) < 4:
        raise BaselineInputError(f"X_train: expected at least 4 training windows, got {len(X)}")
    if kind == "circular" and (problem := radians_problem(y)):
        raise BaselineInputError(f"y_train (circular): {problem}")
    if kind == "classification" and np.any(y.astype(np.float64) % 1 != 0):
        raise BaselineInputError("y_train (classification): expected whole-number class indices")
    scaler = StandardScaler().fit(np.log1p(X))
    Z = scaler.transform(np.log1p(X))
    # a window's features hold its n_bins - 1 history bins, the current bins of the windows before it
    # (more windows where they overlap, shared_bin_windows): that many windows on each side of a
    # validation block are purged from the fold's training windows
    folds = blocked_folds(len(Z), gap=gap)
    fb = FittedBaseline(name=name, kind=kind, scaler=scaler, n_bins=n_bins)
    fb.info["cv_gap_windows"] = purge_gap(len(Z), gap=gap)  # the MLP and the GRU (no folds) replace info

    if kind == "classification":
        y = y.astype(np.int64)
        k = int(num_classes if num_classes is not None else y.max() + 1)
        bad = (y < 0) | (y >= k)
        if bad.any():
            # the MLP trained on classes 0..k-1 only and dropped the other windows without a word;
            # the GRU's class weights crashed; ridge / logistic fitted them as extra classes
            raise BaselineInputError(
                f"y_train (classification): expected class indices 0..{k - 1} (num_classes={k}), got "
                f"{sorted(set(y[bad].tolist()))[:5]} in {int(bad.sum())} windows")
        present = np.unique(y)
        if len(present) == 1:
            fb.constant = int(present[0])
            fb.info["note"] = f"training windows hold one class ({int(present[0])}): constant prediction"
            return fb
        # folds must each see >= 2 classes for the CV fits: fewer, longer folds with the same purge, and
        # where none gives 2 such folds the fallback says so (cv_gap_windows used to read as purged)
        ok_folds = []
        if name in ("ridge", "lasso", "glm"):
            ok_folds, fb.info["cv_gap_windows"] = _folds_with_two_classes(y, gap)
            if not ok_folds:
                fb.info["cv_gap_windows"] = 0 if name == "ridge" else None
                fb.info["note"] = (
                    "no 2 purged time-blocked folds whose training windows hold 2 classes: " + (
                        "alpha chosen by leave-one-out over the training windows, not purged (cv_gap_windows 0)"
                        if name == "ridge" else "C fixed at 1, not cross-validated (cv_gap_windows None)"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, RidgeClassifierCV

            if name == "ridge":
                fb.model = RidgeClassifierCV(alphas=np.logspace(-2, 5, 15), class_weight="balanced",
                                             cv=ok_folds or None).fit(Z, y)
                fb.info["alpha"] = float(fb.model.alpha_)
            elif name in ("lasso", "glm"):
                l1 = name == "lasso"
                kw = dict(solver="saga" if l1 else "lbfgs", class_weight="balanced", max_iter=2000,
                          random_state=seed)
                if l1:
                    kw["l1_ratios"] = (1.0,)
                if ok_folds:
                    m = LogisticRegressionCV(Cs=np.logspace(-3, 2, 8), cv=ok_folds, scoring="balanced_accuracy",
                                             **kw).fit(Z, y)
                    fb.info["C"] = float(np.ravel(m.C_)[0])
                else:
                    kw.pop("l1_ratios", None)
                    m = LogisticRegression(C=1.0, l1_ratio=1.0 if l1 else 0.0, **kw).fit(Z, y)
                    fb.info["C"] = 1.0
                fb.model = m
            elif name == "mlp":
                fb.model, fb.info = _fit_mlp(Z, y, kind, seed, k, gap)
            else:
                fb.model, fb.info = _fit_gru(Z, y, kind, seed, k, n_bins, gap)
        return fb

    # regression / circular
    Y = _angle_to_xy(y) if kind == "circular" else y.astype(np.float64).reshape(len(y), 1)
    from sklearn.linear_model import LassoCV, PoissonRegressor, RidgeCV, TweedieRegressor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "ridge":
            fb.model = RidgeCV(alphas=np.logspace(-2, 5, 15), cv=folds).fit(Z, Y)
            fb.info["alpha"] = float(np.ravel(fb.model.alpha_)[0])
        elif name == "lasso":
            fb.model = [LassoCV(alphas=30, cv=folds, max_iter=5000, random_state=seed).fit(Z, Y[:, j])
                        for j in range(Y.shape[1])]
            fb.info["alpha"] = [float(m.alpha_) for m in fb.model]
        elif name == "glm":
            poisson = kind == "regression" and bool(np.all(Y >= 0))
            fb.info["family"] = "poisson (log link)" if poisson else "gaussian (identity link)"
            models, alphas = [], []
            for j in range(Y.shape[1]):
                best, best_err = None, np.inf
                # the Poisson deviance grows with the target's scale and the penalty does not: the grid is
                # scaled by the target's training mean, so a position in mm or in m gets the same fit (for
                # a position in px, about 300, cross-validation wanted alpha 100, past the grid's 10)
                mean = float(np.mean(Y[:, j]))
                for a in np.logspace(-4, 1, 6) * (mean if poisson and mean > 0 else 1.0):
                    err = 0.0
                    for tr, va in folds:
                        m = (PoissonRegressor(alpha=a, max_iter=300, solver="newton-cholesky") if poisson
                             else TweedieRegressor(power=0, alpha=a, max_iter=300, solver="newton-cholesky")).fit(Z[tr], Y[tr, j])
                        err += float(np.sum((m.predict(Z[va]) - Y[va, j]) ** 2))
                    if err < best_err:
                        best, best_err = a, err
                alphas.append(float(best))
                models.append((PoissonRegressor(alpha=best, max_iter=300, solver="newton-cholesky") if poisson
                               else TweedieRegressor(power=0, alpha=best, max_iter=300, solver="newton-cholesky")).fit(Z, Y[:, j]))
            fb.model, fb.info["alpha"] = models, alphas
        else:
            fb.y_mean, fb.y_std = Y.mean(axis=0), np.where(Y.std(axis=0) > 0, Y.std(axis=0), 1.0)
            Ys = (Y - fb.y_mean) / fb.y_std
            if name == "mlp":
                fb.model, fb.info = _fit_mlp(Z, Ys if Ys.shape[1] > 1 else Ys[:, 0], kind, seed, None, gap)
            else:
                fb.model, fb.info = _fit_gru(Z, Ys, kind, seed, None, n_bins, gap)
    return fb


# ---------------------------------------------------------------------------------------- protocol
def _fraction_of_train(ds_train, fraction: float):
    """The decoding module's :func:`~hf_neuroformer.decoding.fraction_of_train` (the first
    contiguous block in time order holding round(fraction * n) (>= 1) windows), its errors naming
    ``train_fraction``, the argument of :func:`evaluate_baselines`."""
    from .decoding import fraction_of_train

    try:
        return fraction_of_train(ds_train, fraction)
    except BaselineInputError:
        raise
    except ValueError as e:
        raise BaselineInputError(f"train_fraction: {str(e).split(': ', 1)[-1]}") from None


def _mean_sd(rows: Sequence[Dict[str, float]]) -> tuple:
    keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float))]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    sd = {k: float(np.std([r[k] for r in rows], ddof=1)) if len(rows) > 1 else 0.0 for k in keys}
    return mean, sd


def _with_value(ds, col: str, split: str):
    """``(rows of ds whose column col is finite, how many were not, their values of col)``, the
    column read once; text labels pass whole.

    Raises:
        BaselineInputError: an infinite value (a NaN is a window without a value; inf is a bad one)."""
    raw = np.asarray(ds[col])
    try:
        y = raw.astype(np.float64)
    except (TypeError, ValueError):
        return ds, 0, raw  # class names: fit_baseline names them
    if np.isinf(y).any():  # found as fit_baseline's "X_train, y_train" (arguments never passed here)
        bad = np.flatnonzero(np.isinf(y))
        raise BaselineInputError(f"dsd[{split!r}][{col!r}]: {count_noun(bad.size, 'window')} with an infinite target (first: row "
                                 f"{int(bad[0])}); expected finite values, or NaN for a window without one")
    ok = np.isfinite(y)
    if ok.all():
        return ds, 0, raw
    return ds.select(np.flatnonzero(ok)), int(np.sum(~ok)), raw[ok]


def evaluate_baselines(dsd, tokenizer, config, target, seeds=(0, 1, 2), train_fraction: float = 1.0,
                       baselines: Sequence[str] = BASELINES, test_split: str = "test") -> Dict[str, Any]:
    """Fit every baseline on the (few-shot) training windows and score it on the test windows.

    Args:
        dsd: ``DatasetDict`` from :func:`hf_neuroformer.decoding.build_decoding_datasets` (splits
            ``train`` and ``test``, column ``target_<name>``).
        tokenizer, config: those that built ``dsd`` (bins = current window, history = past window).
        target: a :class:`~hf_neuroformer.decoding.DecodingTarget` (``name``, ``kind``,
            ``num_classes``) or any object with those attributes (optionally ``column``: the
            dataset column read is ``target_<name>``, or ``target_<name>[<column>]``).
        seeds: one fit per seed (ridge, lasso and glm are deterministic: their sd is 0).
        train_fraction: fraction of the training windows, the first contiguous block in time
            (the decoding module's ``fraction_of_train``).
        baselines: which of :data:`BASELINES` to run.
        test_split: split scored (default ``"test"``).

    Windows whose target is NaN (with several targets, :func:`~hf_neuroformer.decoding.build_decoding_datasets`
    keeps a window with a value of any of them) are left out of both the fit and the score,
    and counted: the baselines see the windows the fine-tuned decoder is trained and scored on
    for this target (its loss and metrics mask the same NaN).

    Returns:
        dict: ``target``, ``kind``, ``train_fraction``, ``n_train``, ``n_test`` (the windows with a
        value, fitted and scored), ``n_train_without_value``, ``n_test_without_value`` (those left
        out), ``n_features``, ``n_history_bins``, and ``results[name] = {"per_seed": [metrics...], "mean": {...},
        "sd": {...}, "info": [...], "notes": [...]}`` with the keys of
        :func:`~hf_neuroformer.metrics.decoding_metrics`.

    Raises:
        BaselineInputError: the target column is missing or holds an infinite target, an unknown
            baseline name, no seed, fewer than 4 training windows with a value (the whole split or
            the ``train_fraction`` block), or no window with a value in ``test_split``.
    """
    # target_<label>: target_position[1] for a column of a 2-D series; an object with only name / kind (as the
    # docstring allows) has no label / column_name properties and failed with an AttributeError
    from .decoding import target_label

    label = getattr(target, "label", None) or target_label(target.name, getattr(target, "column", None))
    col = getattr(target, "column_name", None) or f"target_{label}"
    for split in ("train", test_split):
        if split not in dsd or col not in dsd[split].column_names:
            raise BaselineInputError(f"dsd[{split!r}]: expected column {col!r} (build it with "
                                     "hf_neuroformer.decoding.build_decoding_datasets)")
    for b in baselines:
        if b not in BASELINES:
            raise BaselineInputError(f"baselines: expected names from {list(BASELINES)}, got {b!r}")
    seeds = list(seeds)
    if not seeds:  # an empty list crashed in the mean over seeds (IndexError)
        raise BaselineInputError("seeds: expected at least one seed (one fit of each baseline per seed), got none")
    kind = target.kind
    # the rows with a value of this target: with several targets, build_decoding_datasets keeps a
    # window that has a value of any of them and leaves the others NaN there, and the fine-tuned
    # decoder is trained and scored on each target's own windows (NaN masked): so are the baselines
    block = _fraction_of_train(dsd["train"], train_fraction)
    train, n_nan_train, ytr = _with_value(block, col, "train")
    test, n_nan_test, yte = _with_value(dsd[test_split], col, test_split)
    without = f" ({n_nan_train} of them without a value of {label!r}, kept for other targets)" if n_nan_train else ""
    if len(train) < 4:  # fit_baseline's "X_train: ..." named an argument the caller never passed
        raise BaselineInputError(
            f"train_fraction: {train_fraction:g} of the {len(dsd['train'])} training windows leaves {len(block)}{without}; "
            f"the baselines need at least 4 (cross-validation folds): use train_fraction >= "
            f"{4 / len(dsd['train']):.3g}" if len(dsd["train"]) >= 4 and len(block) < 4 else
            f"dsd['train']: {len(dsd['train'])} training windows{without}; the baselines need at least 4 with a value "
            "(cross-validation folds)" if n_nan_train else
            f"dsd['train']: {len(dsd['train'])} training windows; the baselines need at least 4 (cross-validation folds)")
    if len(test) == 0:  # else found after the first fit, as decoding_metrics' "y_true: expected at least one window"
        raise BaselineInputError(f"dsd[{test_split!r}]: no window to score (a target not recorded there, e.g. a behaviour "
                                 "tracked in another epoch, leaves none)"
                                 + (f"; its {n_nan_test} windows have no value of {label!r}" if n_nan_test else "")
                                 + "; score another split with test_split=")
    Xtr, Xte = binned_count_features(train, tokenizer, config), binned_count_features(test, tokenizer, config)
    if kind == "classification" and ytr.dtype.kind == "f":  # class indices stored as floats beside NaN
        ytr, yte = ytr.astype(np.int64), yte.astype(np.int64)
    n_bins, gap = 1 + n_history_bins(config), shared_bin_windows(config)
    k = getattr(target, "num_classes", None)
    if kind == "classification" and k is None:
        k = int(max(ytr.max(), yte.max())) + 1
    out: Dict[str, Any] = {
        "target": label, "kind": kind, "train_fraction": float(train_fraction),
        "n_train": int(len(train)), "n_test": int(len(test)),
        "n_train_without_value": n_nan_train, "n_test_without_value": n_nan_test, "n_features": int(Xtr.shape[1]),
        "n_history_bins": n_bins - 1, "results": {},
    }
    for name in baselines:
        per_seed, info, notes = [], [], []
        for seed in seeds:
            fb = fit_baseline(name, Xtr, ytr, kind, seed, n_bins=n_bins, num_classes=k, gap=gap)
            per_seed.append(decoding_metrics(yte, fb.predict(Xte), kind))
            info.append(fb.info)
            if "note" in fb.info:
                notes.append(fb.info["note"])
        mean, sd = _mean_sd(per_seed)
        out["results"][name] = {"per_seed": per_seed, "mean": mean, "sd": sd, "info": info,
                                "notes": sorted(set(notes))}
    return out


__all__ = [
    "BASELINES",
    "BaselineInputError",
    "FittedBaseline",
    "binned_count_features",
    "blocked_folds",
    "evaluate_baselines",
    "fit_baseline",
    "n_history_bins",
    "predict",
    "purge_gap",
    "shared_bin_windows",
]
