"""Classical decoding baselines on the model's own windows (real data: A2929 head direction)."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from hf_neuroformer import NeuroformerConfig, NeuroformerTokenizer
from hf_neuroformer.baselines import (
    BASELINES,
    BaselineInputError,
    binned_count_features,
    blocked_folds,
    evaluate_baselines,
    fit_baseline,
    n_history_bins,
    purge_gap,
)
from hf_neuroformer.decoding import DecodingTarget
from hf_neuroformer.io import load_recording
from hf_neuroformer.windows import build_window_datasets

A2929 = "pynapple_A2929_headdirection/A2929-200711.nwb"


@pytest.fixture(scope="module")
def hd(shared_data):
    """Head direction (ry, the yaw, rad) over 100 ms windows of 4 minutes of the wake epoch."""
    import datasets

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = load_recording(shared_data(A2929), epoch="wake").restrict(680.0, 920.0)
    cfg = NeuroformerConfig(current_window=0.1, past_window=0.3, dt_resolution=0.01, split_block_length=20.0,
                            max_window_length=64, max_past_length=128)
    tok = NeuroformerTokenizer.from_config(cfg)
    tok.add_units(rec)
    dsd, _ = build_window_datasets(rec, tok, cfg)
    rz = rec.behaviour["ry"]  # yaw: the head direction (rx, rz are pitch and roll, nearly constant)
    out = {}
    for split, ds in dsd.items():  # circular mean of the samples inside each current window
        s = np.asarray(ds["window_start"])
        lo, hi = np.searchsorted(rz.timestamps, s), np.searchsorted(rz.timestamps, s + cfg.current_window)
        c = np.array([np.cos(rz.values[a:b]).mean() if b > a else np.nan for a, b in zip(lo, hi)])
        sn = np.array([np.sin(rz.values[a:b]).mean() if b > a else np.nan for a, b in zip(lo, hi)])
        ang = np.arctan2(sn, c)
        keep = np.flatnonzero(np.isfinite(ang))
        ds = ds.select(keep)
        ds = ds.add_column("target_hd", ang[keep].tolist())
        q = np.floor((np.mod(ang[keep], 2 * np.pi)) / (np.pi / 2)).astype(np.int64)  # quadrant 0..3
        out[split] = ds.add_column("target_quadrant", q.tolist())
    return rec, tok, cfg, datasets.DatasetDict(out)


def test_features_are_the_windows_counts(hd):
    rec, tok, cfg, dsd = hd
    ds = dsd["test"]
    X = binned_count_features(ds, tok, cfg)
    h = n_history_bins(cfg)
    assert h == 3 and X.shape == (len(ds), rec.n_units * (1 + h))
    X = X.reshape(len(ds), 1 + h, rec.n_units)
    # the same counts straight from the recording, for a few windows
    for i in (0, 7, len(ds) // 2, len(ds) - 1):
        s = ds[i]["window_start"]
        for k in range(1 + h):
            a, b = (s, s + cfg.current_window) if k == 0 else (s - k * cfg.current_window, s - (k - 1) * cfg.current_window)
            m = (rec.spike_times >= a - 1e-9) & (rec.spike_times < b - 1e-9)
            expect = np.bincount(rec.unit_ids[m], minlength=rec.n_units)
            np.testing.assert_array_equal(X[i, k], expect, err_msg=f"window {i} bin {k}")
    assert X[:, 0].sum() == sum(ds["n_spikes"])


def test_all_baselines_decode_head_direction(hd):
    rec, tok, cfg, dsd = hd
    target = DecodingTarget("hd", "circular")
    res = evaluate_baselines(dsd, tok, cfg, target, seeds=(0,))
    assert set(res["results"]) == set(BASELINES)
    assert res["n_test"] == len(dsd["test"]) and res["n_history_bins"] == 3
    for name, r in res["results"].items():
        err = r["mean"]["mean_angular_error_deg"]
        assert 0 < err < 30, (name, err)  # chance is 90 deg; 7 head-direction cells: 8-11 deg measured
        assert r["sd"]["mean_angular_error_deg"] == 0.0  # one seed
    # a contiguous 5 % block of training windows decodes worse than all of them, and is counted
    few = evaluate_baselines(dsd, tok, cfg, target, seeds=(0,), train_fraction=0.05, baselines=("ridge",))
    assert few["n_train"] == round(0.05 * len(dsd["train"]))
    assert few["results"]["ridge"]["mean"]["mean_angular_error_deg"] > res["results"]["ridge"]["mean"]["mean_angular_error_deg"]


def test_classification_and_seeds(hd):
    rec, tok, cfg, dsd = hd
    target = DecodingTarget("quadrant", "classification", num_classes=4)
    res = evaluate_baselines(dsd, tok, cfg, target, seeds=(0, 1), baselines=("glm", "gru"))
    for name, r in res["results"].items():
        assert r["mean"]["balanced_accuracy"] > 0.6, name  # chance 0.25; 0.85-0.89 measured
        assert len(r["per_seed"]) == 2
    assert res["results"]["glm"]["sd"]["balanced_accuracy"] == 0.0  # deterministic
    # one class in the training block: a constant prediction, noted
    X = np.random.default_rng(0).poisson(1.0, size=(20, 6)).astype(float)
    fb = fit_baseline("mlp", X, np.full(20, 2), "classification", 0, num_classes=4)
    assert (fb.predict(X) == 2).all() and "one class" in fb.info["note"]


def test_fold_and_fit_settings_that_are_not_counts_are_refused_by_name():
    """Break test: n_bins=0 failed with ZeroDivisionError ('integer modulo by zero'), blocked_folds with
    n_splits 1 (or 0) cut 2 folds and gap -1 purged nothing, and ridge took seed "a", all without naming
    the argument."""
    X = np.random.default_rng(0).poisson(2.0, size=(10, 4)).astype(float)
    y = np.random.default_rng(1).normal(size=10)
    for bad in (0, -1, 1.5, None):
        with pytest.raises(BaselineInputError, match=r"^n_bins: expected an integer >= 1"):
            fit_baseline("ridge", X, y, "regression", n_bins=bad)
    for bad in ("a", 1.5, None):
        with pytest.raises(BaselineInputError, match=r"^seed: expected an integer"):
            fit_baseline("ridge", X, y, "regression", seed=bad)
    for fn in (blocked_folds, purge_gap):
        for bad in (1, 0, 2.5):
            with pytest.raises(BaselineInputError, match=r"^n_splits: expected an integer >= 2"):
                fn(10, bad)
        with pytest.raises(BaselineInputError, match=r"^gap: expected a whole number of windows >= 0"):
            fn(10, 5, -1)
    # fewer windows than folds: min(n_splits, n // 2) folds, each validated on its own block
    folds = blocked_folds(5, 5)
    assert [v.tolist() for _, v in folds] == [[0, 1], [2, 3, 4]]
    assert fit_baseline("ridge", X[:5], y[:5], "regression").info["cv_gap_windows"] == 0


def test_bad_input():
    X = np.ones((10, 4))
    with pytest.raises(BaselineInputError, match="name"):
        fit_baseline("svm", X, np.zeros(10), "regression")
    with pytest.raises(BaselineInputError, match="kind"):
        fit_baseline("ridge", X, np.zeros(10), "ordinal")
    with pytest.raises(BaselineInputError, match="finite"):
        fit_baseline("ridge", X, np.r_[np.zeros(9), np.nan], "regression")
    with pytest.raises(BaselineInputError, match="at least 4"):
        fit_baseline("ridge", X[:3], np.zeros(3), "regression")
    with pytest.raises(BaselineInputError, match="n_bins"):
        fit_baseline("gru", X, np.zeros(10), "regression", n_bins=3)
    with pytest.raises(BaselineInputError, match=r"y_train \(circular\): expected angles in radians"):
        fit_baseline("ridge", X, np.linspace(0, 350, 10), "circular")  # degrees
    with pytest.raises(BaselineInputError, match="whole-number class indices"):
        fit_baseline("glm", X, np.r_[np.zeros(5), np.full(5, 1.5)], "classification")
    # the baselines' history is the model's past window in current-window bins: a past window that
    # is not a whole number of them is refused (0.04 s / 0.1 s used to round to no history at all)
    assert n_history_bins(SimpleNamespace(past_window=0.3, current_window=0.1)) == 3
    assert n_history_bins(SimpleNamespace(past_window=0.0, current_window=0.1)) == 0
    for past in (0.04, 0.25, 0.35):
        with pytest.raises(BaselineInputError, match="past_window: .*whole number of current windows"):
            n_history_bins(SimpleNamespace(past_window=past, current_window=0.1))
    folds = blocked_folds(10, 5)
    assert len(folds) == 5 and all(np.all(np.diff(va) == 1) for _, va in folds)
    assert sorted(np.concatenate([va for _, va in folds]).tolist()) == list(range(10))


def test_gru_runs_without_a_past_window():
    """past_window = 0 (no history bins) is a valid config: the GRU runs over one bin. The reversed
    one-bin view kept a negative stride and torch.as_tensor refused it (ValueError on every fit)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 40)
    X = rng.poisson(1.0 + 3.0 * (y[:, None] == np.arange(3)[None]), size=(40, 3)).astype(float)
    fb = fit_baseline("gru", X, y, "classification", 0, n_bins=1, num_classes=3)
    assert fb.predict(X).shape == (40,)
    fb = fit_baseline("gru", X, y.astype(float), "regression", 0, n_bins=1)
    assert np.all(np.isfinite(fb.predict(X)))


def test_class_labels_outside_num_classes_are_refused():
    """A label >= num_classes (or negative) is not a class index: the MLP trained on classes
    0..num_classes-1 only and silently dropped those windows, the GRU crashed on its class weights."""
    rng = np.random.default_rng(0)
    X = rng.poisson(2.0, size=(40, 4)).astype(float)
    y = rng.integers(0, 4, 40)
    for name in ("mlp", "gru", "ridge"):
        with pytest.raises(BaselineInputError, match=r"class indices 0\.\.2 \(num_classes=3\), got \[3\]"):
            fit_baseline(name, X, y, "classification", 0, num_classes=3)
    with pytest.raises(BaselineInputError, match=r"got \[-1\]"):
        fit_baseline("mlp", X, np.where(y > 1, 1, -1), "classification", 0)


def test_evaluate_baselines_without_a_seed_is_refused(hd):
    """seeds=() fitted nothing and crashed in the mean over seeds with an IndexError."""
    rec, tok, cfg, dsd = hd
    with pytest.raises(BaselineInputError, match="seeds: expected at least one seed"):
        evaluate_baselines(dsd, tok, cfg, DecodingTarget("hd", "circular"), seeds=(), baselines=("ridge",))


def test_a_train_fraction_leaving_too_few_windows_is_named(hd):
    """A few-shot block of under 4 windows was refused as 'X_train: expected at least 4 training
    windows', an argument evaluate_baselines' caller never passes; the message now names
    train_fraction and the smallest that works, which does work."""
    rec, tok, cfg, dsd = hd
    n = len(dsd["train"])
    target = DecodingTarget("hd", "circular")
    with pytest.raises(BaselineInputError, match=r"train_fraction: .* leaves 2; .* use train_fraction >= ") as e:
        evaluate_baselines(dsd, tok, cfg, target, seeds=(0,), train_fraction=2 / n, baselines=("ridge",))
    smallest = float(str(e.value).rsplit(">= ", 1)[1])
    res = evaluate_baselines(dsd, tok, cfg, target, seeds=(0,), train_fraction=smallest, baselines=("ridge",))
    assert res["n_train"] == 4


def test_a_target_with_only_name_and_kind_is_read(hd):
    """The docstring allows any object with name / kind / num_classes as the target; one without
    DecodingTarget's label / column_name properties failed with an AttributeError."""
    rec, tok, cfg, dsd = hd
    res = evaluate_baselines(dsd, tok, cfg, SimpleNamespace(name="hd", kind="circular"), seeds=(0,),
                             baselines=("ridge",))
    ref = evaluate_baselines(dsd, tok, cfg, DecodingTarget("hd", "circular"), seeds=(0,), baselines=("ridge",))
    assert res["target"] == "hd" and res["results"]["ridge"]["mean"] == ref["results"]["ridge"]["mean"]


def test_gru_fit_leaves_the_callers_torch_random_stream_alone():
    """fit_baseline('gru') seeded the global torch generator in place: whatever the caller drew
    next (a model's initial weights) depended on the baseline's seed, not on the caller's."""
    import torch

    rng = np.random.default_rng(0)
    X = rng.poisson(2.0, size=(30, 4)).astype(float)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    y = rng.normal(size=30)
    first = fit_baseline("gru", X, y, "regression", 0)
    assert torch.equal(torch.rand(3), expected)
    # still seeded by its own seed: the same fit whatever the global stream holds
    assert np.array_equal(first.predict(X), fit_baseline("gru", X, y, "regression", 0).predict(X))


def test_a_test_split_without_windows_is_named_before_any_fit(hd):
    """A test split left without windows (the target not recorded there) was found only after the
    first baseline was fitted, as decoding_metrics' 'y_true: expected at least one window'."""
    import datasets

    rec, tok, cfg, dsd = hd
    empty = datasets.DatasetDict({"train": dsd["train"], "test": dsd["test"].select([])})
    with pytest.raises(BaselineInputError, match=r"dsd\['test'\]: no window to score"):
        evaluate_baselines(empty, tok, cfg, DecodingTarget("hd", "circular"), seeds=(0,), baselines=("ridge",))


def test_a_bad_train_fraction_is_named_by_its_argument(hd):
    """evaluate_baselines(train_fraction=0) was refused as 'fraction: expected a number in (0, 1]', the
    name of finetune's argument, as a plain ValueError."""
    rec, tok, cfg, dsd = hd
    for bad in (0, 1.5, float("nan")):
        with pytest.raises(BaselineInputError, match=r"^train_fraction: expected a number in \(0, 1\]"):
            evaluate_baselines(dsd, tok, cfg, DecodingTarget("hd", "circular"), seeds=(0,), train_fraction=bad,
                               baselines=("ridge",))


def test_a_unit_silent_in_training_does_not_move_the_predictions():
    """A unit without a spike in the training windows (a late or drifting unit, which inspect names)
    gives the decoders nothing to learn from; its test spikes went through the MLP's and GRU's
    untrained initial weights and moved their predictions."""
    rng = np.random.default_rng(0)
    y = rng.normal(size=120)
    X = np.concatenate([rng.poisson(np.exp(0.5 * np.outer(y, np.ones(4)) + 0.5)), np.zeros((120, 1))], 1)
    Xte = np.concatenate([rng.poisson(2.0, size=(30, 4)), rng.poisson(5.0, size=(30, 1))], 1).astype(float)
    quiet = Xte.copy()
    quiet[:, 4] = 0
    for name in ("mlp", "gru", "ridge"):
        fb = fit_baseline(name, X.astype(float), y, "regression", 0)
        np.testing.assert_array_equal(fb.predict(Xte), fb.predict(quiet), err_msg=name)


def test_poisson_glm_fits_a_rescaled_target_the_same_way():
    """The Poisson GLM's alpha grid was fixed while its deviance grows with the target's scale: the
    same position in px (about 300) and in m got different penalties, and for px the cross-validated
    optimum lay past the grid's end. With the grid scaled by the training mean, a target times c is
    fitted the same way (predictions times c, same alpha relative to the mean)."""
    rng = np.random.default_rng(0)
    y = rng.uniform(0.2, 1.0, size=160)
    X = rng.poisson(np.exp(np.outer(y, np.linspace(-1, 1, 6)) + 0.5)).astype(float)
    small, large = fit_baseline("glm", X, y, "regression"), fit_baseline("glm", X, 300.0 * y, "regression")
    assert small.info["family"] == large.info["family"] == "poisson (log link)"
    assert large.info["alpha"][0] / np.mean(300.0 * y) == pytest.approx(small.info["alpha"][0] / np.mean(y))
    np.testing.assert_allclose(large.predict(X), 300.0 * small.predict(X), rtol=1e-4)


def test_negative_features_are_refused_as_not_counts():
    """Standardised (negative) features given as X_train went through log1p to NaN, and sklearn
    refused them with 'Input X contains NaN', naming no cause."""
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(BaselineInputError, match=r"X_train: expected spike counts >= 0 .* at window \d+, feature \d+"):
        fit_baseline("ridge", X, np.zeros(20), "regression")


def test_features_of_a_split_without_windows(hd):
    """A split without windows (split fraction 0, or every target NaN) crashed in reshape(0, -1)
    ('cannot reshape array of size 0') instead of giving a (0, n_features) array."""
    rec, tok, cfg, dsd = hd
    X = binned_count_features(dsd["test"].select([]), tok, cfg)
    assert X.shape == (0, rec.n_units * (1 + n_history_bins(cfg)))


def test_class_names_as_labels_are_named():
    """Class names as y_train failed inside numpy ('could not convert string to float'), a plain
    ValueError that named neither y_train nor the way out."""
    X = np.random.default_rng(0).poisson(2.0, size=(8, 3)).astype(float)
    with pytest.raises(BaselineInputError, match=r"y_train: expected numbers, got dtype <U5 .*map class names"):
        fit_baseline("ridge", X, np.array(["left", "right"] * 4), "classification")
    with pytest.raises(BaselineInputError, match=r"y_train: expected numbers, got dtype complex128"):
        fit_baseline("ridge", X, np.arange(8.0) + 1j, "regression")


def test_cross_validation_folds_purge_the_windows_that_share_bins_with_the_validation_block(hd):
    """The alpha of ridge / lasso / glm was chosen by time-blocked folds whose training windows
    touched the validation block: the next window's history bins are the validation windows'
    current bins (and the block's first window's history the previous windows'), so each fold
    validated partly on what it trained on. n_history_bins windows on each side are now left out."""
    rec, tok, cfg, dsd = hd
    X = binned_count_features(dsd["train"], tok, cfg)
    h = n_history_bins(cfg)
    assert h == 3
    units = X.shape[1] // (1 + h)
    bins = X.reshape(len(X), 1 + h, units)
    starts = np.asarray(dsd["train"]["window_start"])
    # the leak: where windows follow each other, window i's history bin k is window i-k's current bin
    nxt = np.flatnonzero(np.isclose(np.diff(starts), cfg.current_window))[3:40] + 1
    assert all(np.array_equal(bins[i, 1], bins[i - 1, 0]) for i in nxt)
    folds = blocked_folds(len(X), 5, gap=h)
    assert purge_gap(len(X), 5, gap=h) == h and purge_gap(len(X), 5) == 0
    for tr, va in folds:
        assert np.abs(tr[:, None] - va[None]).min() > h  # no training window within h of the block
        assert len(tr) + len(va) + sum(1 for g in range(1, h + 1) for e in (va.min() - g, va.max() + g)
                                       if 0 <= e < len(X)) == len(X)
    y = np.asarray(dsd["train"]["target_hd"])
    for name in ("ridge", "lasso", "glm"):
        assert fit_baseline(name, X, y, "circular", 0, n_bins=1 + h).info["cv_gap_windows"] == h
    # a training set too small for the gap: it shrinks so that every fold keeps 2 training windows
    small = blocked_folds(4, 5, gap=3)
    assert purge_gap(4, 5, gap=3) == 0 and all(len(tr) >= 2 for tr, _ in small)


def test_the_reported_purge_gap_is_the_one_the_folds_were_cut_with():
    """blocked_folds shrank the gap for a small training set and fold_gap measured it back from the
    folds: two derivations of one number. purge_gap decides it once; the folds are cut with it
    and fit_baseline reports it, so they agree for every size and gap."""
    for n in range(4, 40):
        for gap in range(0, 8):
            g = purge_gap(n, 5, gap)
            assert 0 <= g <= gap
            for tr, va in blocked_folds(n, 5, gap):
                assert len(tr) >= 2 and np.abs(tr[:, None] - va[None]).min() > g
                near = [e for e in (va.min() - g - 1, va.max() + g + 1) if 0 <= e < n]
                assert all(e in tr for e in near)  # nothing purged beyond the gap
    rng = np.random.default_rng(0)
    X = rng.poisson(2.0, size=(9, 6)).astype(float)
    assert fit_baseline("ridge", X, rng.normal(size=9), "regression", n_bins=3).info["cv_gap_windows"] == purge_gap(9, 5, 2)


def test_classification_folds_keep_two_classes_with_the_purge_or_say_they_do_not():
    """Where purged folds left one class in their training windows, RidgeClassifierCV fell back to
    unpurged leave-one-out and the logistic decoders to a fixed C, while cv_gap_windows still read
    as purged. Fewer, longer purged folds are tried first; where none keep 2 classes, the fallback
    is reported (ridge: cv_gap_windows 0, lasso / glm: None, with a note)."""
    X = np.random.default_rng(0).poisson(2.0, size=(8, 8)).astype(float)
    y = np.zeros(8, dtype=np.int64)
    y[3] = 1  # one window of the rare class: the 4 purged folds of 2 windows all lose it
    for name in ("ridge", "lasso", "glm"):
        fb = fit_baseline(name, X, y, "classification", n_bins=4, num_classes=2)
        gap = fb.info["cv_gap_windows"]
        assert gap is not None and gap >= 1 and "note" not in fb.info, name
        if name == "ridge":  # the folds it was given: purged by the reported gap, 2 classes in training
            assert isinstance(fb.model.cv, list) and len(fb.model.cv) >= 2
            for tr, va in fb.model.cv:
                assert np.abs(tr[:, None] - va[None]).min() > gap and len(np.unique(y[tr])) == 2
    y = np.zeros(8, dtype=np.int64)
    y[4] = 1  # no split count keeps it in 2 purged training parts
    expected = {"ridge": (0, "leave-one-out"), "lasso": (None, "C fixed at 1"), "glm": (None, "C fixed at 1")}
    for name, (gap, says) in expected.items():
        fb = fit_baseline(name, X, y, "classification", n_bins=4, num_classes=2)
        assert fb.info["cv_gap_windows"] == gap and says in fb.info["note"], (name, fb.info)


def test_early_stopping_block_is_purged_from_the_training_windows():
    """The MLP's and GRU's early-stopping block (the last 15 % of the training windows) followed the
    last training window directly: its first windows' history bins are those windows' current bins,
    so the stopping epoch was chosen partly on what was trained on. The n_history_bins windows
    before the block are now left out of the training part (shrunk where 2 would not remain)."""
    from hf_neuroformer.baselines import _tail_split

    tr, va, g = _tail_split(40, 3)
    assert g == 3 and va.min() - tr.max() == g + 1 and len(va) == 6 and va.max() == 39
    tr, va, g = _tail_split(5, 3)  # 1 validation window, 4 before it: 2 kept for training
    assert g == 2 and tr.tolist() == [0, 1] and va.tolist() == [4]
    rng = np.random.default_rng(0)
    X = rng.poisson(2.0, size=(40, 8)).astype(float)
    y = rng.normal(size=40)
    for name in ("mlp", "gru"):
        assert fit_baseline(name, X, y, "regression", n_bins=4).info["early_stopping_gap_windows"] == 3, name
        assert fit_baseline(name, X, (y > 0).astype(int), "classification", n_bins=2).info[
            "early_stopping_gap_windows"] == 1, name


def test_overlapping_training_windows_are_purged_by_the_windows_that_share_bins(hd):
    """With window_stride < current_window the training windows overlap: window i shares bins with
    ceil((past + current) / stride) - 1 windows on each side, not n_history_bins. The folds (and
    the early-stopping block) purged n_history_bins only, so with 0.05 s steps over 0.1 s windows
    and a 0.3 s past 4 of the 7 windows sharing bins with a validation block still trained."""
    from hf_neuroformer.baselines import shared_bin_windows

    rec, tok, cfg, _ = hd
    assert shared_bin_windows(cfg) == n_history_bins(cfg) == 3  # tiling windows
    over = NeuroformerConfig(**{**cfg.to_dict(), "window_stride": 0.05})
    assert shared_bin_windows(over) == 7
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dsd, _ = build_window_datasets(rec.restrict(680.0, 740.0), tok, over)
    starts = np.asarray(dsd["train"]["window_start"])
    span = cfg.past_window + cfg.current_window
    # in the rows themselves: 7 later windows start within one window's span (where no gap intervenes)
    assert (np.searchsorted(starts, starts + span - 1e-9) - np.arange(len(starts)) - 1).max() == 7
    X = binned_count_features(dsd["train"], tok, over)
    ds = {"train": dsd["train"].add_column("target_y", X.sum(1).tolist()),
          "test": dsd["test"].add_column("target_y", binned_count_features(dsd["test"], tok, over).sum(1).tolist())}
    res = evaluate_baselines(ds, tok, over, DecodingTarget("y", "regression"), seeds=(0,), baselines=("ridge", "mlp"))
    assert res["results"]["ridge"]["info"][0]["cv_gap_windows"] == 7
    assert res["results"]["mlp"]["info"][0]["early_stopping_gap_windows"] == 7
    with pytest.raises(BaselineInputError, match="gap: expected a whole number"):
        fit_baseline("ridge", X, np.zeros(len(X)), "regression", n_bins=4, gap=-1)


def test_a_config_whose_windows_differ_from_the_rows_tokenizer_is_refused(hd):
    """The rows' past dt ids count from the tokenizer's past-window start. A config with another
    past_window (a config override, another model's config) binned them anyway: with 0.2 s for rows
    made with 0.3 s every spike 0.2-0.3 s back landed in the first history bin, silently."""
    rec, tok, cfg, dsd = hd
    short = NeuroformerConfig(**{**cfg.to_dict(), "past_window": 0.2})
    with pytest.raises(BaselineInputError, match=r"config\.past_window: 0\.2 s, but the tokenizer .* past_window=0\.3"):
        binned_count_features(dsd["test"], tok, short)
    with pytest.raises(BaselineInputError, match=r"config\.past_window"):
        evaluate_baselines(dsd, tok, short, DecodingTarget("hd", "circular"), seeds=(0,), baselines=("ridge",))
    # rows made by a tokenizer with a longer past than the one passed: their dt ids lie past its bins
    long_cfg = NeuroformerConfig(**{**cfg.to_dict(), "past_window": 0.5, "split_gap": 0.5})
    long_tok = NeuroformerTokenizer.from_config(long_cfg)
    long_tok.add_units(rec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows, _ = build_window_datasets(rec.restrict(680.0, 720.0), long_tok, long_cfg)
    with pytest.raises(BaselineInputError, match=r"ds: window \d+ has past dt id \d+ outside the tokenizer's \[0, 30\)"):
        binned_count_features(rows["train"], tok, cfg)


def test_a_nan_target_window_is_left_out_and_counted_and_an_infinite_one_is_named(hd):
    """A window whose target is NaN (with several targets, build_decoding_datasets keeps a window
    with a value of any of them, NaN for the others) was refused for the whole target, so the
    baselines could not be scored beside a decoder trained and scored on each target's own
    windows. It is now left out of the fit (train) or the score (test) and counted, giving the
    results of the rows with a value; an infinite target is still refused, named by split and
    column, before any fit."""
    import datasets

    rec, tok, cfg, dsd = hd
    dsd = datasets.DatasetDict({"train": dsd["train"].select(range(150)), "test": dsd["test"].select(range(60))})

    def with_column(name, values):
        return {s: dsd[s].remove_columns(name).add_column(name, v.tolist()) for s, v in values.items()}

    y = {s: np.asarray(dsd[s]["target_hd"]) for s in ("train", "test")}
    for v in y.values():
        v[[5, 9]] = np.nan
    target = DecodingTarget("hd", "circular")
    got = evaluate_baselines(datasets.DatasetDict(with_column("target_hd", y)), tok, cfg, target, seeds=(0,),
                             baselines=("ridge",))
    without = datasets.DatasetDict({s: dsd[s].select(np.flatnonzero(np.isfinite(v))) for s, v in y.items()})
    ref = evaluate_baselines(without, tok, cfg, target, seeds=(0,), baselines=("ridge",))
    assert got["n_train_without_value"] == got["n_test_without_value"] == 2
    assert (got["n_train"], got["n_test"]) == (ref["n_train"], ref["n_test"]) == (148, 58)
    assert got["results"] == ref["results"]
    for split in ("train", "test"):
        inf = {s: v.copy() for s, v in y.items()}
        inf[split][5] = np.inf
        with pytest.raises(BaselineInputError, match=rf"dsd\['{split}'\]\['target_hd'\]: 1 window with an infinite "
                                                     r"target \(first: row 5\)"):
            evaluate_baselines({**dsd, **with_column("target_hd", inf)}, tok, cfg, target, seeds=(0,),
                               baselines=("ridge",))
    # class indices stored as floats beside NaN (a classification column of several targets)
    q = np.asarray(dsd["train"]["target_quadrant"], dtype=np.float64)
    q[3] = np.nan
    target = DecodingTarget("quadrant", "classification")
    target.num_classes = 4
    got = evaluate_baselines(datasets.DatasetDict({**dsd, **with_column("target_quadrant", {"train": q})}), tok, cfg,
                             target, seeds=(0,), baselines=("ridge",))
    ref = evaluate_baselines(datasets.DatasetDict({**dsd, "train": dsd["train"].select(np.flatnonzero(np.isfinite(q)))}),
                             tok, cfg, target, seeds=(0,), baselines=("ridge",))
    assert got["n_train_without_value"] == 1 and got["results"] == ref["results"]


def test_predict_names_a_feature_layout_other_than_the_fitted_one():
    """Features of another layout (another past window: fewer history bins) failed in sklearn as
    'X has 6 features, but StandardScaler is expecting 8', and a one-class baseline answered any
    shape with its constant."""
    rng = np.random.default_rng(0)
    X = rng.poisson(2.0, size=(20, 8)).astype(float)
    fitted = [fit_baseline("ridge", X, rng.normal(size=20), "regression", n_bins=4),
              fit_baseline("gru", X, rng.normal(size=20), "regression", n_bins=4),
              fit_baseline("glm", X, np.full(20, 1), "classification", n_bins=4, num_classes=2)]
    for fb in fitted:
        with pytest.raises(BaselineInputError, match=r"X: expected \(n_windows, 8\) counts, the layout fitted on "
                                                     r"\(4 bins of 2 units.*got shape \(20, 6\)"):
            fb.predict(X[:, :6])
        assert fb.predict(X).shape == (20,)


def test_early_stopping_scores_only_classes_the_fit_trains_on():
    """Break test: a class found only in the early-stopping block (the last 15 % of the training
    windows) is never trained on, yet the MLP / GRU kept the epoch that predicted it best: their
    untrained output for it, so the fit predicted that class for 21 (MLP) / 23 (GRU) of 30 windows.
    Early stopping now scores only the block's windows of fitted classes (the fitted windows where
    none is left), said in info["note"]; the unfitted class is then rarely predicted."""
    rng = np.random.default_rng(1)
    X = rng.poisson(2, (30, 8)).astype(float)
    y = rng.integers(0, 2, 30)
    y[26:] = 2
    for name in ("mlp", "gru"):
        fb = fit_baseline(name, X, y, "classification", n_bins=2, num_classes=3)
        assert (fb.predict(X) == 2).sum() <= 3, name
        assert "class [2] only in the early-stopping block" in fb.info["note"], name
        assert "scored on the fitted windows" in fb.info["note"], name
    # a block holding fitted classes too: scored on those windows only
    from hf_neuroformer.baselines import _scored_classes

    yy = np.array([0, 1] * 10 + [0, 2, 1, 2])
    tr, va = np.arange(18), np.arange(20, 24)
    kept, note = _scored_classes(yy, tr, va)
    assert kept.tolist() == [20, 22] and "scored on its 2 of 4 windows of fitted classes" in note
    kept, note = _scored_classes(yy, tr, np.arange(18, 21))  # every class fitted: the block as it is
    assert kept.tolist() == [18, 19, 20] and note is None


def test_gru_class_weights_count_only_the_windows_it_fits():
    """The GRU's class-balanced loss counted the classes over every training window, the
    early-stopping block and its purge gap included, which the loss never sees (the MLP balanced on
    the fitted windows). Here the 84 fitted windows hold 46 of class 0 and 38 of class 1, and the 16
    after them are all class 1: counted over all 100, class 0 was the minority and got the larger
    weight (1.09 vs 0.93); over the fitted windows class 1 is, and gets it (1.11 vs 0.91)."""
    rng = np.random.default_rng(0)
    fitted = np.r_[np.zeros(46, dtype=int), np.ones(38, dtype=int)]
    y = np.r_[rng.permutation(fitted), np.ones(16, dtype=int)]  # the last 15 stop early, 1 purged before them
    X = rng.poisson(2.0, size=(len(y), 6)).astype(float)
    fb = fit_baseline("gru", X, y, "classification", n_bins=2, gap=1)
    assert fb.info["early_stopping_gap_windows"] == 1
    assert fb.info["class_weights"] == pytest.approx([84 / (2 * 46), 84 / (2 * 38)])
    assert fb.info["class_weights"][1] > fb.info["class_weights"][0]
