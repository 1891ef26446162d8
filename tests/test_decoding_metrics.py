"""decoding_metrics: hand-computed answers for regression, classification and circular targets."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hf_neuroformer.metrics import DecodingMetricsInputError, decoding_metrics, wrap_angle


def test_regression_hand_computed():
    y = np.array([0.0, 1.0, 2.0, 3.0])
    p = np.array([0.0, 1.0, 2.0, 5.0])
    m = decoding_metrics(y, p, "regression")
    # SS_res = 4, SS_tot = 5 -> r2 = 0.2
    assert m["r2"] == pytest.approx(0.2)
    assert m["pearson_r"] == pytest.approx(np.corrcoef(y, p)[0, 1])
    assert m["rmse"] == pytest.approx(1.0)
    assert m["mae"] == pytest.approx(0.5)
    assert m["n"] == 4
    # what r2 divides by, in the target's unit: sd of [0, 1, 2, 3] = sqrt(1.25)
    assert m["target_sd"] == pytest.approx(math.sqrt(1.25))
    assert m["r2"] == pytest.approx(1 - m["rmse"] ** 2 / m["target_sd"] ** 2)
    perfect = decoding_metrics(y, y, "regression")
    assert perfect["r2"] == pytest.approx(1.0) and perfect["pearson_r"] == pytest.approx(1.0)
    const = decoding_metrics(y, np.full(4, 1.5), "regression")
    assert const["r2"] == pytest.approx(0.0) and math.isnan(const["pearson_r"])


def test_classification_balanced():
    y = np.array([0, 0, 0, 0, 1, 2])
    p = np.array([0, 0, 0, 0, 0, 2])
    m = decoding_metrics(y, p, "classification")
    assert m["accuracy"] == pytest.approx(5 / 6)
    assert m["balanced_accuracy"] == pytest.approx((1 + 0 + 1) / 3)
    logits = np.eye(3)[p] * 3.0
    assert decoding_metrics(y, logits, "classification") == m


def test_circular_wraps():
    y = np.array([np.pi - 0.1, -np.pi + 0.1, 0.0, 0.5])
    p = np.array([-np.pi + 0.1, np.pi - 0.1, 2 * np.pi, 0.5 + 4 * np.pi])  # errors 0.2, 0.2, 0, 0
    m = decoding_metrics(y, p, "circular")
    assert m["mean_angular_error_rad"] == pytest.approx(0.1)
    assert m["median_angular_error_rad"] == pytest.approx(0.1)
    assert m["mean_angular_error_deg"] == pytest.approx(math.degrees(0.1))
    cs = np.stack([np.cos(p), np.sin(p)], axis=1) * 2.5  # (cos, sin) of any norm -> atan2
    assert decoding_metrics(y, cs, "circular")["mean_angular_error_rad"] == pytest.approx(0.1)
    assert np.all(np.abs(wrap_angle(np.array([3 * np.pi, -3 * np.pi]))) == pytest.approx(np.pi))


def test_bad_inputs():
    with pytest.raises(DecodingMetricsInputError, match="kind"):
        decoding_metrics([1.0], [1.0], "angle")
    with pytest.raises(DecodingMetricsInputError, match="y_pred"):
        decoding_metrics([1.0, 2.0], [1.0], "regression")
    with pytest.raises(DecodingMetricsInputError, match="window 1"):
        decoding_metrics([1.0, np.nan], [1.0, 2.0], "regression")
    with pytest.raises(DecodingMetricsInputError, match="at least one"):
        decoding_metrics([], [], "circular")


def test_counts_of_bad_windows_are_counted_in_correct_plurals():
    """'(1 windows with NaN/inf)' and '(1 windows)': the counts read as the package's other messages do."""
    with pytest.raises(DecodingMetricsInputError, match=r"\(1 window with NaN/inf\)"):
        decoding_metrics([1.0, np.nan], [1.0, 2.0], "regression")
    with pytest.raises(DecodingMetricsInputError, match=r"\(2 windows with NaN/inf\)"):
        decoding_metrics([1.0, np.nan, np.inf], [1.0, 2.0, 3.0], "regression")
    with pytest.raises(DecodingMetricsInputError, match=r"got \[1.5\] \(1 window\); pass class indices"):
        decoding_metrics([0, 1.5, 1], [0, 1, 1], "classification")


def test_degrees_non_integer_labels_and_constant_truth_are_not_scored_silently():
    deg = np.array([0.0, 90.0, 180.0, 270.0])
    # a 10 deg error in degrees would read as ~147 deg if taken for radians
    with pytest.raises(DecodingMetricsInputError, match=r"y_true: expected angles in radians .*deg2rad"):
        decoding_metrics(deg, deg + 10, "circular")
    assert decoding_metrics(np.deg2rad(deg), np.deg2rad(deg + 10), "circular")["mean_angular_error_deg"] == pytest.approx(10)
    # class labels must be whole numbers: 0.4 / 1.6 / 2.2 used to be truncated to 0 / 1 / 2 (accuracy 1.0)
    with pytest.raises(DecodingMetricsInputError, match="y_pred: expected whole-number class labels"):
        decoding_metrics([0, 1, 2], [0.4, 1.6, 2.2], "classification")
    assert decoding_metrics([0.0, 1.0, 2.0], [0, 1, 1], "classification")["accuracy"] == pytest.approx(2 / 3)
    # R² of a constant truth is undefined: NaN (sklearn's force_finite gave 0.0)
    m = decoding_metrics([3.0, 3.0, 3.0], [2.0, 3.0, 4.0], "regression")
    assert math.isnan(m["r2"]) and math.isnan(m["pearson_r"]) and m["mae"] == pytest.approx(2 / 3)


def test_undefined_metrics_are_written_as_null_in_strict_json(tmp_path):
    """``finetune``'s metrics.json (and every report written through ``write_json``) holds NaN as
    ``null``: a bare ``NaN`` is not JSON, and strict readers refuse the whole file."""
    import json

    from hf_neuroformer.jsonio import write_json

    m = decoding_metrics([3.0, 3.0, 3.0], [2.0, 3.0, 4.0], "regression")  # r2 and pearson_r undefined
    path = write_json(tmp_path / "metrics.json", {"test": m, "n": np.int64(3), "ids": np.arange(2)})

    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    back = json.loads(path.read_text(), parse_constant=refuse)
    assert back["test"]["r2"] is None and back["test"]["mae"] == pytest.approx(2 / 3)
    assert back["n"] == 3 and back["ids"] == [0, 1]
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left behind


def test_write_atomic_keeps_the_old_file_on_a_failed_write_and_gives_ordinary_permissions(tmp_path):
    """``jsonio.write_atomic``, which the package's reports, figures, vocabulary and the benchmark
    scripts write through: a write that fails midway leaves the old file and no temporary file;
    a new file gets the umask's mode like the files beside it (``tempfile.mkstemp``, which the
    scripts used, makes owner-only files)."""
    import os
    import stat

    from hf_neuroformer.jsonio import write_atomic

    p = tmp_path / "report.json"
    p.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        write_atomic(p, "\ud800")
    assert p.read_text() == "old" and [x.name for x in tmp_path.iterdir()] == ["report.json"]
    with pytest.raises(TypeError, match="data: expected str or bytes"):
        write_atomic(p, {"a": 1})
    # the missing folder is named with the file asked for, not the temporary '.x.json.<pid>.tmp' the OS error named
    with pytest.raises(FileNotFoundError, match=r"the folder of '.*missing/x\.json' is not an existing folder") as e:
        write_atomic(tmp_path / "missing" / "x.json", "{}")
    assert ".tmp" not in str(e.value)
    assert write_atomic(tmp_path / "made" / "x.png", b"\x89PNG", make_parent=True).read_bytes() == b"\x89PNG"
    old = os.umask(0o022)
    try:
        mode = stat.S_IMODE(write_atomic(tmp_path / "new.json", "{}").stat().st_mode)
    finally:
        os.umask(old)
    assert mode == 0o644
    # a replaced file keeps its permission bits; a link is written through, not replaced by a file
    kept = tmp_path / "kept.json"
    kept.write_text("old")
    kept.chmod(0o600)
    write_atomic(kept, "new")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and kept.read_text() == "new"
    link = tmp_path / "link.json"
    link.symlink_to(kept)
    write_atomic(link, "through")
    assert link.is_symlink() and kept.read_text() == "through"


def test_circular_r_is_the_resultant_length_of_the_errors_and_the_model_card_says_so():
    """A decoder off by a constant 90 deg has circular_r 1: the figure is the concentration of the
    errors, not a correlation; the model card labelled it "circular correlation" (a reader takes
    1.00 for a perfect decoder beside a 90 deg mean error)."""
    from hf_neuroformer.hub import DECODING_METRIC_NAMES

    y = np.linspace(-3.0, 3.0, 50)
    m = decoding_metrics(y, y + np.pi / 2, "circular")
    assert m["circular_r"] == pytest.approx(1.0)
    assert m["mean_angular_error_deg"] == pytest.approx(90.0)
    label = DECODING_METRIC_NAMES["circular_r"]
    assert "resultant length" in label and "correlation" not in label.replace("not a correlation", "")


def test_classification_predictions_as_one_column_are_labels_not_scores():
    """A decoder's predictions come as (n, n_targets); one target's (n, 1) column of class labels
    went through argmax as if it were class scores, so every window read as class 0 (accuracy 1/3
    for a perfect decoder). An (n, 1) column is read as the labels, in the intervals too."""
    from hf_neuroformer.metrics.decoding import decoding_metrics_ci

    y = np.array([0, 1, 2, 1, 0, 2, 2, 1, 0, 1, 2, 0])
    m = decoding_metrics(y, y[:, None], "classification")
    assert m["accuracy"] == 1.0 and m["balanced_accuracy"] == 1.0
    assert decoding_metrics(y, y[:, None].astype(float), "classification") == decoding_metrics(y, y, "classification")
    blocks = np.repeat(np.arange(6), 2)
    ci = decoding_metrics_ci(y, y[:, None], "classification", blocks, n_resamples=200)
    assert ci["accuracy"]["estimate"] == 1.0


def test_pearson_r_of_a_prediction_constant_but_for_rounding_is_nan():
    # a collapsed decoder predicts the training mean in every window; de-standardised, its predictions
    # differ in their last bits, and pearson_r was the correlation of that noise (0.55 here), not NaN
    y = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    p = np.full(5, 0.1) + np.array([0, 1, 0, 2, 1]) * np.spacing(0.1)
    assert np.ptp(p) > 0
    out = decoding_metrics(y, p, "regression")
    assert math.isnan(out["pearson_r"])
    assert out["r2"] < 0 and out["n"] == 5  # the other scores stay defined
    varied = decoding_metrics(y, p + 1e-6 * y, "regression")
    assert varied["pearson_r"] == pytest.approx(1.0)


def test_labels_the_class_scores_cannot_name_are_refused():
    """With class scores (n, k) as y_pred, argmax names classes 0..k-1 only: a label k (or -1) was
    scored as a miss whatever the decoder said (accuracy 0 here), without a word."""
    y = np.array([0, 1, 2])
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7]])
    with pytest.raises(DecodingMetricsInputError, match=r"y_true: class scores y_pred \(3, 2\) name classes 0\.\.1, "
                                                         r"got labels \[2\] \(in 1 of 3 windows\)"):
        decoding_metrics(y, scores, "classification")
    with pytest.raises(DecodingMetricsInputError, match=r"got labels \[-1\]"):
        decoding_metrics(np.array([0, 1, -1]), scores, "classification")
    assert decoding_metrics(y[:2], scores[:2], "classification")["accuracy"] == 1.0


def test_class_names_instead_of_indices_are_named():
    """String labels failed inside numpy ('could not convert string to float'), a plain ValueError
    that did not say which argument or what to do."""
    with pytest.raises(DecodingMetricsInputError, match=r"y_true: expected numbers, got dtype <U4 .*\['left', "
                                                         r"'righ'.*map class names to indices"):
        decoding_metrics(["left", "righ", "left"], [0, 1, 0], "classification")
    with pytest.raises(DecodingMetricsInputError, match="y_pred: expected numbers"):
        decoding_metrics([0.0, 1.0], np.array(["0.1 s", "0.2 s"], dtype=object), "regression")
    assert decoding_metrics(np.array([0, 1, 1], dtype=object), [0, 1, 0], "classification")["accuracy"] == 2 / 3
    # complex values were taken with numpy's ComplexWarning and their imaginary part dropped (the package's one
    # numbers check, recording.as_real_numbers, refuses them as BehaviourSeries values already)
    with pytest.raises(DecodingMetricsInputError, match=r"y_pred: expected numbers, got dtype complex128"):
        decoding_metrics([0.0, 1.0, 2.0], np.array([0.1, 1.0, 2.0]) + 1j, "regression")




def test_r2_of_a_truth_constant_but_for_rounding_is_nan_as_pearson_r():
    """Break test: r2 was NaN only for a truth whose values were exactly equal (``np.ptp(y) > 0``), while
    pearson_r already called a spread within float rounding constant. A behaviour that holds one value
    (0.1 cm/s, the animal at rest) over the scored windows, averaged over each window's samples (5 or 6 at
    ~60 Hz), differs in its last bits from window to window, and r2 divided by that noise: -1e30, with a
    block-bootstrap interval around it. Both are now undefined, with the reason, as pearson_r; a varying
    target still gets sklearn's r2 (the uniform average over the columns of a 2-D target)."""
    from sklearn.metrics import r2_score

    from hf_neuroformer.metrics import decoding_metrics_ci

    rng = np.random.default_rng(0)
    y = np.array([np.mean(np.full(k, 0.1)) for k in rng.choice([3, 5, 6], 60)])
    assert 0 < np.ptp(y) < 1e-15  # one value, but for the rounding of the means
    pred = y + rng.normal(0.0, 0.01, y.size)
    m = decoding_metrics(y, pred, "regression")
    assert math.isnan(m["r2"]) and math.isnan(m["pearson_r"])
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((pred - y) ** 2)))  # the error itself is still scored
    ci = decoding_metrics_ci(y, pred, "regression", np.arange(y.size) // 6, n_resamples=100)["r2"]
    assert ci["interval"] is None and ci["reason"].startswith("r2 is undefined: the recorded target is constant")
    # one such column of a 2-D target makes the average undefined; varying columns give sklearn's figure
    x = rng.normal(size=y.size)
    assert math.isnan(decoding_metrics(np.stack([x, y], 1), np.stack([x, y], 1) + 0.01, "regression")["r2"])
    xs = np.stack([x, 3 * x + 1], 1)
    xp = xs + rng.normal(0.0, [0.5, 2.0], xs.shape)
    assert decoding_metrics(xs, xp, "regression")["r2"] == pytest.approx(r2_score(xs, xp))
    assert decoding_metrics(x, xp[:, 0], "regression")["r2"] == pytest.approx(r2_score(x, xp[:, 0]))
