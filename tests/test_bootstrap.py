"""Block-bootstrap confidence intervals (hf_neuroformer.metrics.bootstrap) against known answers."""

import math
import warnings

import numpy as np
import pytest

from hf_neuroformer.metrics.bootstrap import (BootstrapInputError, block_bootstrap_ci, block_sums, ci_entries,
                                              window_blocks)
from hf_neuroformer.metrics.decoding import DecodingMetricsInputError, decoding_metrics, decoding_metrics_ci


def _ratio(s, n):
    return s[:, 0] / n[:, 0]


def test_iid_blocks_give_the_normal_theory_width():
    """For i.i.d. blocks the 95 % interval of a mean is about 2 * 1.96 * sd / sqrt(n_blocks) wide,
    and it is the width of the block means, not of the (correlated) windows inside the blocks."""
    rng = np.random.default_rng(3)
    n_blocks, per_block = 200, 20
    # windows of a block share an offset (sd 1) and add noise (sd 1): window-level i.i.d. theory would
    # give a width sqrt(20 / 2) ~ 3 times too narrow
    values = rng.normal(0, 1, n_blocks)[:, None] + rng.normal(0, 1, (n_blocks, per_block))
    blocks = np.repeat(np.arange(n_blocks), per_block)
    r = block_bootstrap_ci(_ratio, block_sums(values.reshape(-1, 1), blocks), block_sums(np.ones((blocks.size, 1)), blocks))
    lo, hi = r["interval"]
    block_means = values.mean(1)
    expected = 2 * 1.96 * block_means.std(ddof=1) / np.sqrt(n_blocks)
    assert hi - lo == pytest.approx(expected, rel=0.1)
    naive = 2 * 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    assert hi - lo > 2.5 * naive
    assert r["estimate"] == pytest.approx(values.mean()) and lo < r["estimate"] < hi
    assert r["n_blocks"] == n_blocks and r["method"] == "BCa" and r["reason"] is None


def test_ratio_metric_is_recomputed_from_pooled_sums_and_covers():
    """A ratio (e.g. bits per spike = gain / spikes) is the pooled ratio of the resampled blocks'
    sums, not a mean of per-block ratios; the BCa interval covers the true ratio about 95 % of the
    time over repeated experiments with unequal block sizes."""
    rng = np.random.default_rng(0)
    true_ratio, hits, reps = 0.5, 0, 300
    for _ in range(reps):
        n = rng.integers(1, 60, size=30).astype(float)  # spikes per block, very unequal
        gain = rng.normal(true_ratio * n, 2.0 * np.sqrt(n))
        r = block_bootstrap_ci(_ratio, gain[:, None], n[:, None], n_resamples=1000, seed=1)
        assert r["estimate"] == pytest.approx(gain.sum() / n.sum())
        hits += r["interval"][0] <= true_ratio <= r["interval"][1]
    assert 0.88 <= hits / reps <= 0.99


def test_fixed_seed_reproduces_and_too_few_blocks_give_null_with_a_reason():
    rng = np.random.default_rng(1)
    s, n = rng.normal(size=(12, 1)), np.ones((12, 1))
    a, b = block_bootstrap_ci(_ratio, s, n), block_bootstrap_ci(_ratio, s, n)
    assert a == b and a["interval"] is not None
    assert block_bootstrap_ci(_ratio, s, n, seed=5)["interval"] != a["interval"]
    few = block_bootstrap_ci(_ratio, s[:4], n[:4])
    assert few["interval"] is None and few["n_blocks"] == 4
    assert few["reason"] == "4 blocks, fewer than 5: too few independent pieces for a bootstrap interval"
    assert few["estimate"] == pytest.approx(s[:4].mean())
    assert block_bootstrap_ci(_ratio, s[:5], n[:5])["interval"] is not None
    assert ci_entries("test/x", few) == {"test/x_ci95": None, "test/x_ci95_reason": few["reason"]}
    # a metric undefined in some resamples (no spikes drawn) gives no interval either, and says why
    zero = block_bootstrap_ci(_ratio, np.r_[s[:6], np.zeros((2, 1))], np.r_[np.zeros((6, 1)), np.ones((2, 1))])
    assert zero["interval"] is None and "undefined (NaN) in" in zero["reason"]
    # every block the same value: no interval (a zero-width [1, 1] read as certainty), with the reason
    flat = block_bootstrap_ci(_ratio, np.ones((8, 1)), np.ones((8, 1)))
    assert flat["interval"] is None and flat["degenerate"] and "every one of the 2000 resamples" in flat["reason"]
    # nearly the same: BCa is undefined, the percentile interval is given and named
    near = block_bootstrap_ci(_ratio, np.r_[np.ones((7, 1)), [[1.0 + 1e-6]]], np.ones((8, 1)))
    lo, hi = near["interval"]
    assert 1.0 <= lo <= near["estimate"] <= hi <= 1.0 + 1e-6, near
    with pytest.raises(BootstrapInputError, match=r"block_stats\[1\]: expected 12 blocks"):
        block_bootstrap_ci(_ratio, s, n[:3])


def test_window_blocks_time_and_trials():
    starts = np.r_[np.arange(0.0, 25.0, 0.5), np.arange(40.0, 52.0, 0.5)]
    b, definition = window_blocks(starts, [[40.0, 52.0], [0.0, 25.0]], "time", block_s=10.0)
    # [0, 10), [10, 20), [20, 25) then [40, 50), [50, 52)
    assert np.bincount(b).tolist() == [20, 20, 10, 20, 4] and "10 s" in definition
    assert np.all(np.diff(b) >= 0)
    # trials: one block per trial, overlapping trials (the 2nd and 3rd) one block
    trials = [[0.0, 1.0], [2.0, 3.0], [2.5, 3.5], [5.0, 6.0]]
    b, definition = window_blocks([0.0, 0.5, 2.0, 3.0, 5.5], trials, "trials")
    assert b.tolist() == [0, 0, 1, 1, 2] and "trial" in definition
    with pytest.raises(BootstrapInputError, match=r"window_starts: window 1 starts at 4.0 s, outside every segment"):
        window_blocks([0.0, 4.0], trials, "trials")


@pytest.mark.parametrize("kind", ["regression", "classification", "circular"])
def test_decoding_intervals_estimate_the_reported_metric_and_contain_it(kind):
    rng = np.random.default_rng(2)
    n = 301  # odd: the median is one window's error; 300 below for the even case
    y = np.cumsum(rng.normal(size=n)) * 0.2
    p = y + rng.normal(size=n)
    if kind == "classification":
        y, p = (y > 0).astype(int) + (y > 1), (p > 0).astype(int) + (p > 1)
    elif kind == "circular":
        y = np.mod(y, 2 * np.pi) - np.pi
    blocks = np.arange(n) // 25
    for m in (n, n - 1):
        point = decoding_metrics(y[:m], p[:m], kind)
        cis = decoding_metrics_ci(y[:m], p[:m], kind, blocks[:m])
        assert set(cis) == set(point) - {"n", "target_sd"}
        for key, r in cis.items():
            assert r["estimate"] == pytest.approx(point[key], rel=1e-9, abs=1e-12), key
            assert r["n_blocks"] == blocks[m - 1] + 1 and r["interval"] is not None, key
            assert r["interval"][0] <= point[key] <= r["interval"][1], key


def test_abutting_trials_with_an_edge_off_the_grid_stay_separate_blocks():
    """Review: merge_segments merged spans whose start lay below the previous stop by any amount,
    so two abutting trials stored as [1.0, 1.4000000000000001) and [1.4, 1.8) (float round-off
    at a shared edge) became one bootstrap block; spans overlapping by more than 1 ns still merge."""
    from hf_neuroformer.metrics.bootstrap import merge_segments, window_blocks

    trials = np.array([[1.0, 1.4000000000000001], [1.4, 1.8], [1.7, 2.0]])
    assert merge_segments(trials).tolist() == [[1.0, 1.4000000000000001], [1.4, 2.0]]
    blocks, _ = window_blocks([1.0, 1.2, 1.4, 1.6, 1.8], trials, mode="trials")
    assert blocks.tolist() == [0, 0, 1, 1, 1]


def test_block_length_checks_counts_and_few_blocks_hint():
    """check_block_s refuses anything but a finite number > 0, naming the argument and the value;
    count_blocks counts window_blocks' blocks; few_blocks_hint names the longest block length that
    gives 5 blocks in the caller's wording (ci_block_s= from Python, --ci-block-s on the command
    line) and block_bootstrap_ci appends it to the too-few-blocks reason."""
    from hf_neuroformer.metrics.bootstrap import check_block_s, count_blocks, few_blocks_hint

    assert check_block_s(2) == 2.0 and check_block_s(np.float32(0.5)) == 0.5
    for bad in (0, -1.0, float("nan"), float("inf"), "2", True, None):
        with pytest.raises(BootstrapInputError, match=r"^ci_block_s: expected a finite number of seconds > 0"):
            check_block_s(bad)
    with pytest.raises(BootstrapInputError, match=r"^--ci-block-s: .* got -3\.0$"):
        check_block_s(-3.0, "--ci-block-s")
    with pytest.raises(BootstrapInputError, match=r"^block_s: .* got 0"):
        window_blocks([0.0], [[0.0, 1.0]], "time", block_s=0)
    starts = np.arange(0.0, 19.0, 0.1)  # one 19-s test segment: 2 blocks of 10 s, 4 of 5 s, 10 of 2 s
    seg = [[0.0, 19.1]]
    assert count_blocks(window_blocks(starts, seg, "time", 10.0)[0]) == 2 and count_blocks([]) == 0
    py = few_blocks_hint(starts, seg, "time", 10.0)
    cli = few_blocks_hint(starts, seg, "time", 10.0, option="--ci-block-s")
    assert "e.g. ci_block_s=2 (the windows fill 10 blocks of 2 s" in py and "--ci-block-s" not in py
    assert "e.g. --ci-block-s 2 (" in cli and "ci_block_s=" not in cli
    assert few_blocks_hint(starts, seg, "time", 2.0) == ""  # enough blocks: nothing to add
    trials = few_blocks_hint([0.0, 2.0], [[0.0, 1.0], [2.0, 3.0]], "trials", 10.0, option="--ci-block-s")
    assert "blocks are its trials" in trials and "at least 5 test trials" in trials
    assert "too few for 5 blocks at any block length" in few_blocks_hint([0.0], [[0.0, 1.0]], "time", 10.0)
    s, n = np.ones((2, 1)), np.ones((2, 1))
    r = block_bootstrap_ci(_ratio, s, n, hint=py)
    assert r["interval"] is None and r["reason"] == ("2 blocks, fewer than 5: too few independent pieces for a "
                                                     "bootstrap interval" + py)


def test_an_interval_does_not_hang_on_the_last_bit_of_the_metric():
    """Break test: with few blocks (5 or 6, the lengths the few-blocks hint suggests) the resamples
    that draw every block once (n!/n**n of them) give the estimate up to float rounding, and BCa's
    bias correction counted them as below it or not by that rounding: the same ratio computed as
    a / b and as (3a) / (3b), or on sums perturbed in the last bit, moved a bound by up to ~3 % of
    the interval's width ('decode --ci-block-s 5' printed another r2 interval than finetune's on
    the same predictions). The intervals now agree to rounding."""
    rng = np.random.default_rng(1)
    for case in range(12):
        n_blocks = 5 + case % 2
        s, n = rng.normal(10.0, 3.0, n_blocks), rng.uniform(5.0, 15.0, n_blocks)
        ref = block_bootstrap_ci(lambda a, b: a / b, s, n)
        width = ref["interval"][1] - ref["interval"][0]
        for other in (block_bootstrap_ci(lambda a, b: (3 * a) / (3 * b), s, n),
                      block_bootstrap_ci(lambda a, b: a / b, s * (1 + 2.2e-16), n)):
            assert other["interval"] == pytest.approx(ref["interval"], abs=1e-6 * width), case
            assert ref["interval"][0] <= ref["estimate"] <= ref["interval"][1], case


def test_very_short_blocks_give_one_block_per_window_start():
    """Break test: a block length accepted as a finite number > 0 but very short (ci_block_s=1e-300,
    or a denormal) overflowed the block number (an inf cast to int64): 800 windows in two 20-s
    segments fell into 4 blocks (with a RuntimeWarning), and the reason then said they were 'too
    few for 5 blocks at any block length'. Every window start is now its own block, in time order."""
    from hf_neuroformer.metrics.bootstrap import count_blocks, few_blocks_hint

    starts = np.concatenate([np.arange(0.0, 20.0, 0.05), 1e4 + np.arange(0.0, 20.0, 0.05)])
    seg = [[0.0, 20.0], [1e4, 1e4 + 20.0]]
    assert count_blocks(window_blocks(starts, seg, "time", 2.0)[0]) == 20
    for block_s in (1e-9, 1e-15, 1e-300, 5e-324):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no overflow in a cast
            blocks, definition = window_blocks(starts, seg, "time", block_s)
        assert blocks.tolist() == list(range(len(starts))), block_s
        assert f"consecutive {block_s:g} s" in definition and few_blocks_hint(starts, seg, "time", block_s) == ""


def test_the_few_blocks_hint_looks_below_10_ms():
    """Break test: few_blocks_hint tried 5, 2, ... 0.01 s only, so 20 windows of 1 ms with a 5-ms
    block length (4 blocks) were told they were 'too few for 5 blocks at any block length', while
    2-ms blocks give 10; too few windows is now said only of fewer than 5 window starts."""
    from hf_neuroformer.metrics.bootstrap import count_blocks, few_blocks_hint

    starts, seg = np.arange(0.0, 0.02, 0.001), [[0.0, 0.021]]
    assert count_blocks(window_blocks(starts, seg, "time", 0.005)[0]) == 4
    hint = few_blocks_hint(starts, seg, "time", 0.005, option="--ci-block-s")
    assert "e.g. --ci-block-s 0.002 (the windows fill 10 blocks of 0.002 s" in hint, hint
    assert "too few for 5 blocks at any block length" in few_blocks_hint(starts[:4], seg, "time", 0.005)


def test_a_classifier_predicting_one_class_gets_no_balanced_accuracy_interval():
    """A decoder that answers one class for every window scores balanced accuracy 1 / n_classes on
    every resample; decode printed it as 0.333 [95% CI 0.333, 0.333], a zero-width interval that
    reads as a precise estimate. Accuracy (that class's share of the windows) keeps its interval."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=200)
    blocks = np.arange(200) // 20
    for pred in (np.ones(200, dtype=int), np.tile([0.1, 2.0, 0.3], (200, 1))):  # labels, or logits
        cis = decoding_metrics_ci(y, pred, "classification", blocks)
        bal = cis["balanced_accuracy"]
        assert bal["estimate"] == pytest.approx(1 / 3) and bal["interval"] is None
        assert bal["reason"] == ("the decoder predicts one class for all 200 windows, so balanced accuracy is "
                                 "1 / 3 (chance) by construction on every resample")
        lo, hi = cis["accuracy"]["interval"]
        assert lo < np.mean(y == 1) < hi
    # two predicted classes, right on half the windows: an interval as before (the old case, one
    # window answered 0, gave a zero-width interval when that window's label was not 0)
    mixed = decoding_metrics_ci(y, np.where(np.arange(200) % 2 == 0, y, 1), "classification", blocks)
    assert mixed["balanced_accuracy"]["interval"] is not None


def test_one_predicted_class_absent_from_the_labels_is_not_called_chance():
    """The one-class reason said balanced accuracy was '1 / n (chance)' whatever the class; a
    decoder answering a class that no test window has (the training split's majority class,
    absent from the test split) scores 0 on every resample, and the reason now says so."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=200)
    blocks = np.arange(200) // 20
    bal = decoding_metrics_ci(y, np.full(200, 2), "classification", blocks)["balanced_accuracy"]
    assert bal["estimate"] == 0.0 and bal["interval"] is None
    assert "chance" not in bal["reason"] and "0 on every resample" in bal["reason"], bal["reason"]
    assert "class 2, which no window has" in bal["reason"], bal["reason"]


def test_a_metric_no_resample_moves_gets_no_zero_width_interval():
    """Every window decoded right gives accuracy 1.0 on every resample; the percentile fallback gave
    the interval [1.0, 1.0], which reads as certainty where the bootstrap measured nothing. It is
    now left out, with the reason; a metric that varies keeps its interval."""
    from hf_neuroformer.metrics.decoding import decoding_metrics_ci

    y = np.repeat(np.arange(3), 20)
    blocks = np.arange(60) // 6  # 10 blocks
    ci = decoding_metrics_ci(y, y, "classification", blocks)
    for name in ("accuracy", "balanced_accuracy"):
        assert ci[name]["interval"] is None, ci[name]
        assert ci[name]["reason"].startswith("every one of the 2000 resamples of the 10 blocks gives 1, so the "
                                             "bootstrap cannot measure"), ci[name]["reason"]
    wrong = y.copy()
    wrong[::7] = (wrong[::7] + 1) % 3
    ci = decoding_metrics_ci(y, wrong, "classification", blocks)
    lo, hi = ci["accuracy"]["interval"]
    assert lo < ci["accuracy"]["estimate"] < hi



def test_a_constant_angular_error_states_its_value_in_the_unit_of_each_figure():
    """Every window decoded 45 degrees off: no resample moves the angular errors, and the reason of
    the ``*_deg`` figures quoted the radian value (``gives 0.785398`` beside 45 degrees), which
    ``neuroformer decode`` printed under the degree figures."""
    from hf_neuroformer.metrics.decoding import decoding_metrics_ci

    y = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    ci = decoding_metrics_ci(y, y + np.pi / 4, "circular", np.arange(60) // 10, n_resamples=200)
    for name in ("mean_angular_error", "median_angular_error"):
        rad, deg = ci[f"{name}_rad"], ci[f"{name}_deg"]
        assert rad["interval"] is None and deg["interval"] is None and deg["degenerate"]
        assert "gives 0.785398," in rad["reason"], rad["reason"]
        assert "gives 45," in deg["reason"] and "0.785" not in deg["reason"], deg["reason"]


def test_decode_names_the_figure_of_each_different_missing_interval_reason():
    """``neuroformer decode`` joined the reasons of the figures without an interval with '; ' on one
    line: a decoder answering a class no window has gave 'accuracy 0.000, balanced_accuracy 0.000'
    and two reasons, each reading as if it applied to both figures. Different reasons now name
    their figures; one reason shared by all is printed once, as before."""
    from hf_neuroformer.cli import _missing_intervals_text
    from hf_neuroformer.metrics.decoding import decoding_metrics_ci

    y = np.repeat(np.arange(3), 20)
    blocks = np.arange(60) // 6
    shown = ["accuracy", "balanced_accuracy"]
    cis = decoding_metrics_ci(y, np.full(60, 5), "classification", blocks, n_resamples=200)
    text = _missing_intervals_text(cis, shown)
    assert text.startswith("95% CI: none (accuracy: every one of the 200 resamples of the 10 blocks gives 0, "), text
    assert "; balanced_accuracy: the decoder predicts one class for all 60 windows" in text, text
    right = decoding_metrics_ci(y, y, "classification", blocks, n_resamples=200)
    assert _missing_intervals_text(right, shown) == f"95% CI: none ({right['accuracy']['reason']})"
    assert right["accuracy"]["reason"] == right["balanced_accuracy"]["reason"]
    wrong = y.copy()
    wrong[::7] = (wrong[::7] + 1) % 3
    assert _missing_intervals_text(decoding_metrics_ci(y, wrong, "classification", blocks), shown) == ""


def test_one_resample_is_not_called_a_metric_no_resample_moves():
    """n_resamples=1 (allowed): the spread of one value is 0, so the metric was called degenerate,
    'every one of the 1 resamples of the 8 blocks gives <the estimate>', a value that resample did
    not give. It gets no interval with its own reason."""
    s = np.random.default_rng(1).uniform(0, 1, (8, 1))
    r = block_bootstrap_ci(_ratio, s, np.ones((8, 1)), n_resamples=1)
    assert r["interval"] is None and not r.get("degenerate"), r
    assert r["reason"] == "1 resample: an interval needs at least 2 (n_resamples)", r["reason"]


def test_ci_blocks_given_as_trial_ids_with_gaps_are_the_same_blocks():
    """Blocks labelled by trial id (3, 13, 23, ...) are the same blocks as 0, 1, 2, ...: every
    missing number was an empty block, counted towards the five an interval needs and drawn as a
    block of no window (3 trials got an 'undefined in 89 resamples' reason; 8 trials no interval)."""
    rng = np.random.default_rng(0)
    for kind, n_trials in (("regression", 3), ("classification", 8)):
        y = rng.normal(size=10 * n_trials) if kind == "regression" else rng.integers(0, 2, 10 * n_trials)
        p = y + rng.normal(size=y.size) if kind == "regression" else np.where(rng.random(y.size) < 0.8, y, 1 - y)
        b = np.repeat(np.arange(n_trials), 10)
        ref = decoding_metrics_ci(y, p, kind, b, n_resamples=200)
        got = decoding_metrics_ci(y, p, kind, b * 10 + 3, n_resamples=200)
        for key in ref:
            assert got[key]["n_blocks"] == n_trials, key
            assert got[key]["interval"] == ref[key]["interval"] and got[key]["reason"] == ref[key]["reason"], key
    assert ref["accuracy"]["interval"] is not None  # 8 trials: an interval, the same as with 0..7


def test_no_interval_for_a_correlation_decoding_metrics_calls_undefined():
    """A collapsed decoder (constant prediction, up to the float rounding of its de-standardised
    mean) has pearson_r NaN in decoding_metrics, but its interval was computed from the sums: the
    correlation of the rounding noise got -0.23 [-0.41, -0.09], and an exactly constant prediction
    a reason quoting '-inf'. Both now get no interval and the reason."""
    rng = np.random.default_rng(0)
    y = rng.normal(size=60)
    blocks = np.repeat(np.arange(6), 10)
    for p in (np.full(60, 0.1) + rng.integers(0, 3, 60) * np.spacing(0.1), np.full(60, 0.1)):
        assert math.isnan(decoding_metrics(y, p, "regression")["pearson_r"])
        r = decoding_metrics_ci(y, p, "regression", blocks, n_resamples=200)["pearson_r"]
        assert r["interval"] is None and math.isnan(r["estimate"])
        assert r["reason"].startswith("pearson_r is undefined: the recorded target or the prediction is constant")
    r = decoding_metrics_ci(np.full(60, 2.0), y, "regression", blocks, n_resamples=200)["r2"]
    assert r["interval"] is None and "recorded target is constant" in r["reason"]
    good = decoding_metrics_ci(y, y + rng.normal(size=60), "regression", blocks, n_resamples=200)
    assert good["pearson_r"]["interval"] is not None and good["r2"]["interval"] is not None


def test_ci_blocks_that_are_not_integer_labels_are_named():
    """A negative, fractional or text block label is refused naming the label and its window
    (the message used to say only 'got shape (24,)', the right shape; text failed inside numpy)."""
    rng = np.random.default_rng(0)
    y = rng.normal(size=24)
    p = y + rng.normal(0, 0.5, 24)
    ok = decoding_metrics_ci(y, p, "regression", np.repeat(np.arange(6), 4).astype(float), n_resamples=200)
    assert ok["r2"]["n_blocks"] == 6
    with pytest.raises(DecodingMetricsInputError, match=r"got -1 at window 0 \(4 such labels\)"):
        decoding_metrics_ci(y, p, "regression", np.repeat(np.arange(6) - 1, 4))
    with pytest.raises(DecodingMetricsInputError, match=r"got 0.5 at window 2"):
        decoding_metrics_ci(y, p, "regression", np.r_[0, 0, 0.5, np.repeat(np.arange(1, 8), 3)])
    with pytest.raises(DecodingMetricsInputError, match=r"dtype <U1 .*return_inverse"):
        decoding_metrics_ci(y, p, "regression", np.repeat(list("abcdef"), 4))


def test_no_block_gives_a_nan_estimate_and_a_reason_not_a_reshape_error():
    """Zero blocks (every window of the split left out) failed inside numpy ('cannot reshape array
    of size 0 into shape (0,newaxis)'); the metric of nothing is NaN, and the reason says so."""
    r = block_bootstrap_ci(_ratio, np.zeros((0, 1)), np.zeros((0, 1)))
    assert math.isnan(r["estimate"]) and r["interval"] is None and r["n_blocks"] == 0
    assert r["reason"] == "the metric is not finite on the whole split (nan)"
    r = block_bootstrap_ci(lambda a: a.sum(axis=(1, 2)) / 0.0, np.zeros((0, 2, 3)))  # trailing dims kept
    assert r["n_blocks"] == 0 and r["interval"] is None


def test_ci_description_names_the_seed_the_intervals_were_drawn_with():
    """ci_description wrote "(seed 0)" whatever seed block_bootstrap_ci resampled with: an interval
    drawn with seed 5 was described as drawn with seed 0. The seed is now an argument, default 0
    as block_bootstrap_ci's."""
    import inspect

    from hf_neuroformer.metrics.bootstrap import ci_description

    s, n = np.arange(1.0, 9.0)[:, None], np.ones((8, 1))
    for seed in (0, 5):
        r = block_bootstrap_ci(_ratio, s, n, seed=seed, n_resamples=200)
        text = ci_description("test/", r["n_blocks"], "d", method=r["method"], n_resamples=200, seed=seed)
        assert f"(seed {seed})" in text["test/ci95_method"] and "200 resamples" in text["test/ci95_method"]
    assert inspect.signature(ci_description).parameters["seed"].default == \
        inspect.signature(block_bootstrap_ci).parameters["seed"].default
