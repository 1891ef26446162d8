"""The io layer on the real recordings in ../shared/data, with real pynwb / h5py files."""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import replace
from datetime import datetime, timezone

import h5py
import numpy as np
import pandas as pd
import pytest

from hf_neuroformer.io import (
    SUPPORTED_FORMATS,
    from_arrays,
    from_binned_counts,
    from_dataframe,
    load_recording,
    read_allen_gratings,
    read_npz,
    read_nwb,
    read_steinmetz_spcount,
    write_npz,
    write_nwb,
)
from hf_neuroformer.recording import BehaviourSeries, EventSeries, RecordingValidationError, SpikeRecording, Stimulus

from tiny_configs import quiet, set_nwb_session_id, store_as_float32

A2929 = "pynapple_A2929_headdirection/A2929-200711.nwb"
ZHENG = "zheng2022_human_mtl/sub-4_ses-4_ecephys+image.nwb"
STEINMETZ = "steinmetz2019_spcount/NS_sp_count.mat"
ALLEN = "allen_vcn_gratings"


@pytest.fixture(scope="module")
def a2929(shared_data):
    return quiet(read_nwb, shared_data(A2929))


@pytest.fixture(scope="module")
def zheng(shared_data):
    return quiet(read_nwb, shared_data(ZHENG))


@pytest.fixture(scope="module")
def steinmetz(shared_data):
    return quiet(read_steinmetz_spcount, shared_data(STEINMETZ), bin_size=0.01, seed=0)


@pytest.fixture(scope="module")
def allen(shared_data):
    return read_allen_gratings(shared_data(ALLEN))


# ------------------------------------------------------------------------------ A2929 (pynapple)
# Unit, spike and trial counts of the shared files are those listed in ../shared/data/README.md;
# sample counts and times not listed there (63_527 head-angle samples, the position time support)
# are regression pins from an earlier read of the same files.
def test_a2929_units_spikes_areas(a2929):
    assert a2929.n_units == 15
    assert a2929.n_spikes == 98_794
    assert a2929.unit_names == [f"unit{i}" for i in range(15)]
    assert a2929.unit_areas == ["adn"] * 7 + ["ca1"] * 8
    assert np.all(np.diff(a2929.spike_times) >= 0)
    assert a2929.session == "A2929-200711"
    assert a2929.time_domain == (0.0, 1200.0)


def test_a2929_epochs_and_intervals(a2929):
    assert a2929.epochs["sleep"] == (0.0, 600.0)
    assert a2929.epochs["wake"] == (600.0, 1200.0)
    # other interval tables are available as named spans
    assert a2929.epochs["sleep_ripples_timesupport"] == (0.0, 600.0)
    assert a2929.epochs["position_time_support"] == pytest.approx((670.6407, 1199.99495))
    assert a2929.trials is None


def test_a2929_head_angle_behaviour(a2929):
    for name in ("rx", "ry", "rz", "x", "y", "z"):
        assert name in a2929.behaviour
    rz = a2929.behaviour["rz"]
    assert rz.unit == "radian"
    assert rz.values.shape == (63_527,)
    assert rz.values.min() >= 0 and rz.values.max() <= 2 * np.pi
    assert rz.timestamps[0] >= 600.0  # head angle is tracked during wake only
    assert np.all(np.diff(rz.timestamps) > 0)


def test_a2929_select_wake_epoch(shared_data, a2929):
    wake = quiet(load_recording, shared_data(A2929), epoch="wake")
    expected = np.sum((a2929.spike_times >= 600.0) & (a2929.spike_times < 1200.0))
    assert wake.time_domain == (600.0, 1200.0)
    assert wake.n_spikes == expected > 0
    assert wake.spike_times.min() >= 600.0
    assert "rz" in wake.behaviour and wake.behaviour["rz"].values.size == 63_527
    with pytest.raises(KeyError, match="wake"):
        a2929.select_epoch("run")


# ------------------------------------------------------------------------------ Zheng 2022
def test_zheng_units_and_spikes(zheng):
    assert zheng.n_units == 35
    assert zheng.n_spikes == 214_278
    assert set(zheng.unit_areas) == {"hippocampus_right", "amygdala_right"}
    assert zheng.session == "TWH103_CBID4"


def test_zheng_trials_stimulus_epochs(shared_data, zheng):
    path = shared_data(ZHENG)
    with h5py.File(path, "r") as f:  # independent read of the encoding table
        enc_start = f["intervals/encoding_table/start_time"][()]
        enc_stop = f["intervals/encoding_table/stop_time"][()]
        clip = [c.decode() if isinstance(c, bytes) else str(c) for c in f["intervals/encoding_table/Clip_name"][()]]
        rec_start = f["intervals/recognition_table/start_time"][()]
    stim = zheng.stimulus
    assert stim is not None and stim.ids.shape == (90,) and stim.intervals.shape == (90, 2)
    np.testing.assert_array_equal(stim.intervals[:, 0], enc_start)
    np.testing.assert_array_equal(stim.intervals[:, 1], enc_stop)
    assert len(stim.names) == 90 and [stim.names[i] for i in stim.ids] == clip
    # trials: 90 encoding clips + 180 recognition + 180 time-discrimination trials
    assert zheng.trials.shape == (450, 2)
    task = zheng.trial_info["task"]
    assert {t: int(np.sum(task == t)) for t in set(task)} == {
        "encoding": 90, "recognition": 180, "timediscrimination": 180}
    assert np.all(np.diff(zheng.trials[:, 0]) > 0)
    np.testing.assert_array_equal(zheng.trials[task == "recognition", 0], rec_start)
    enc = task == "encoding"
    assert set(zheng.trial_info["stimCategory"][enc]) == {0.0, 1.0, 2.0}
    assert np.all(np.isnan(zheng.trial_info["stimCategory"][~enc]))
    assert set(zheng.trial_info["old_new"][task == "recognition"]) <= {0.0, 1.0, 2.0}
    assert zheng.epochs["encoding_table"] == (enc_start.min(), enc_stop.max())
    encoding = zheng.select_epoch("encoding_table")
    assert len(encoding.trials) == 90 and len(encoding.stimulus.ids) == 90
    assert zheng.time_domain[0] == zheng.spike_times[0]
    assert zheng.time_domain[1] > zheng.spike_times[-1]

@pytest.mark.parametrize("kwargs, match", [
    ({"trial_tables": ["recognition_table", "nope"]},
     r"^\"trial_tables: no interval table 'nope' in .*sub-4_ses-4_ecephys\+image\.nwb; its interval tables are "
     r"\['encoding_table', 'recognition_table', 'timediscrimination_table'\]\"$"),
    ({"stimulus_table": ("clips", "Clip_name")}, r"^\"stimulus_table: no interval table 'clips' in .*; its interval "
                                                 r"tables are \['encoding_table', "),
    ({"stimulus_table": ("encoding_table", "clip")}, r"^\"stimulus_table: interval table 'encoding_table' of .* has no "
                                                     r"column 'clip'; its columns are \[.*'Clip_name'"),
])
def test_a_table_the_file_lacks_is_refused_naming_the_argument_and_the_tables_it_has(shared_data, kwargs, match):
    """trial_tables / stimulus_table naming a table (or a name column) the file lacks raised a
    bare KeyError('nope'), after the units and behaviour were read: it named neither the
    argument nor the tables there are."""
    with pytest.raises(KeyError, match=match):
        read_nwb(shared_data(ZHENG), **kwargs)


def test_trial_tables_given_as_one_string_is_refused(shared_data):
    """A string was iterated letter by letter: KeyError('r') for trial_tables='recognition_table'; a
    string stimulus_table failed to unpack."""
    with pytest.raises(ValueError, match=r"^trial_tables: expected a list of interval table names, got the string "
                                         r"'recognition_table'; pass \['recognition_table'\]$"):
        read_nwb(shared_data(ZHENG), trial_tables="recognition_table")
    # a stimulus_table that is not a (table, column) pair: "too many values to unpack"
    with pytest.raises(ValueError, match=r"^stimulus_table: expected \(table name, name column\), e\.g\. "
                                         r"\('encoding_table', 'Clip_name'\), got 'encoding_table'$"):
        read_nwb(shared_data(ZHENG), stimulus_table="encoding_table")



def test_zheng_skipped_series_are_reported(shared_data):
    with pytest.warns(UserWarning) as record:
        read_nwb(shared_data(ZHENG))
    messages = " ".join(str(w.message) for w in record)
    assert "'events'" in messages and "'experiment_ids'" in messages
    assert "StimulusPresentation_encoding" in messages


# ------------------------------------------------------------------------------ Steinmetz
def test_steinmetz_counts_match_file(shared_data, steinmetz):
    with h5py.File(shared_data(STEINMETZ), "r") as f:
        counts = f["sp_count"][()]
        raw = f["rawLabel"][()].ravel()
        motor = f["motorLabel"][()].ravel()
    assert counts.shape == (247, 101, 806)
    assert steinmetz.n_units == 806
    assert steinmetz.n_spikes == int(counts.sum())
    assert steinmetz.trials.shape == (247, 2)
    np.testing.assert_array_equal(steinmetz.trial_info["rawLabel"], raw)
    np.testing.assert_array_equal(steinmetz.trial_info["motorLabel"], motor)
    np.testing.assert_array_equal(np.bincount(steinmetz.unit_ids, minlength=806), counts.sum(axis=(0, 1)))
    for k in (0, 123, 246):  # re-binning a trial gives its counts back
        a, b = steinmetz.trials[k]
        got = steinmetz.binned_counts(0.01, start=a, stop=b)
        np.testing.assert_array_equal(got, counts[k])


def test_steinmetz_file_name_with_spaces_gives_a_session_without_whitespace(shared_data, tmp_path):
    # the default session was the file stem as it is: "NS sp count" made `neuroformer prepare --data
    # "NS sp count.mat"` refuse every unit token, with no flag to rename the session
    with h5py.File(shared_data(STEINMETZ), "r") as f:
        counts, label = f["sp_count"][:3], f["label"][:3]
    with h5py.File(tmp_path / "NS sp count.mat", "w") as f:
        f["sp_count"], f["label"] = counts, label
    rec = read_steinmetz_spcount(tmp_path / "NS sp count.mat")
    assert rec.session == "NS_sp_count"
    assert load_recording(tmp_path / "NS sp count.mat").session == "NS_sp_count"
    assert read_steinmetz_spcount(tmp_path / "NS sp count.mat", session="given").session == "given"


def test_a_matlab_v5_file_holding_sp_count_says_how_to_read_it(shared_data, tmp_path):
    """The first 3 trials of the real subset saved as MATLAB v5 (scipy.io.savemat, MATLAB's axis order):
    load_recording called it "unsupported .mat file ...: expected MATLAB v7.3 (HDF5) holding 'sp_count'"
    and read_steinmetz_spcount "is not HDF5", neither saying that the file holds sp_count nor how to read
    it. Both now name the version and the variable and give the two ways; the second, followed, gives
    back the counts the v7.3 file holds."""
    import scipy.io

    with h5py.File(shared_data(STEINMETZ), "r") as f:
        counts, label = f["sp_count"][:3], f["label"][:3]
    path = tmp_path / "NS_sp_count_v5.mat"
    # h5py reads a v7.3 file's axes reversed: MATLAB's sp_count is units x bins x trials
    scipy.io.savemat(path, {"sp_count": counts.transpose(2, 1, 0), "label": label.T})
    said = (rf"{re.escape(str(path))} is a MATLAB v5-v7 file holding sp_count 806x101x3 double \(scipy\.io\.whosmat\); "
            r".*re-save it in MATLAB with save\(file, '-v7\.3'\), or read it with scipy\.io\.loadmat and pass "
            r"sp_count as \(trials, bins, units\) to hf_neuroformer\.io\.from_binned_counts .*\.transpose\(2, 1, 0\)")
    with pytest.raises(ValueError, match=r"^unsupported \.mat file .*; " + said):
        load_recording(path)
    with pytest.raises(RecordingValidationError, match=r"^sp_count: expected a MATLAB v7\.3 .*; " + said):
        read_steinmetz_spcount(path)
    np.testing.assert_array_equal(scipy.io.loadmat(path)["sp_count"].transpose(2, 1, 0), counts)  # the hint holds
    # the clause both refusals end with is the public hf_neuroformer.io.binned.what_the_mat_file_holds (its __all__
    # left it out, though io.load_recording imports it): a .mat can be asked about before reading it
    from hf_neuroformer.io import binned

    assert "what_the_mat_file_holds" in binned.__all__
    assert re.match(said + r"\)$", binned.what_the_mat_file_holds(path))
    scipy.io.savemat(tmp_path / "other.mat", {"counts": counts})
    with pytest.raises(ValueError, match=r"other\.mat is a MATLAB v5-v7 file holding counts 3x101x806 double and no "
                                         r"'sp_count'; binned counts are read from MATLAB v7\.3 \(HDF5\) files"):
        load_recording(tmp_path / "other.mat")


def _matlab_char(f, name, text_rows):
    """Write ``text_rows`` as MATLAB v7.3 writes an n x k char matrix: (k, n) uint16 codes, MATLAB_class 'char'
    (scipy.io.savemat writes v5 files only, which read_steinmetz_spcount refuses)."""
    width = max(map(len, text_rows))
    codes = np.array([[ord(c) for c in row.ljust(width)] for row in text_rows], dtype=np.uint16).T
    f[name] = codes
    f[name].attrs["MATLAB_class"] = np.bytes_("char")


def test_steinmetz_matlab_text_is_read_as_text_not_character_codes(shared_data, tmp_path):
    """MATLAB v7.3 stores a char array as uint16 codes marked MATLAB_class 'char': per-trial labels
    'L' / 'R' became trial_info of 76 / 82 without a word, and a subject name was skipped as 'not one
    value per trial'. They are read as text; a cell array (references) is skipped naming why."""
    with h5py.File(shared_data(STEINMETZ), "r") as f:  # the first 3 trials of the real file
        counts, label = f["sp_count"][:3], f["label"][:3]
    char = _matlab_char

    path = tmp_path / "NS_sp_count.mat"
    with h5py.File(path, "w") as f:
        f["sp_count"], f["label"] = counts, label
        char(f, "side", ["L", "R", "L"])  # one character per trial: MATLAB's 3 x 1 char -> (1, 3)
        char(f, "outcome", ["hit", "miss", "hit"])  # one padded row per trial
        char(f, "subject", ["Cori"])  # one row: the session's -> (4, 1)
        refs = f.create_dataset("notes", (3, 1), dtype=h5py.ref_dtype)
        refs[0, 0] = f["label"].ref
    with pytest.warns(UserWarning, match=r"skipped dataset 'notes' of shape \(3, 1\) in .*: a MATLAB cell array or "
                                         r"struct \(HDF5 object references\), which is not read"):
        rec = read_steinmetz_spcount(path)
    assert rec.trial_info["side"].tolist() == ["L", "R", "L"]
    assert rec.trial_info["outcome"].tolist() == ["hit", "miss", "hit"]
    assert rec.session_info["subject"] == "Cori"
    np.testing.assert_array_equal(rec.trial_info["label"], label.ravel())


def test_steinmetz_one_matlab_string_as_long_as_the_trials_is_the_sessions(shared_data, tmp_path):
    """A single MATLAB string (1 x k char, (k, 1) in the file) of as many characters as there are trials was
    read as one character per trial (subject 'Ann' beside 3 trials gave trial_info ['A', 'n', 'n']): any
    n_trials codes with one axis of 1 were taken so. It is the session's text; an n_trials x 1 char column
    ((1, n_trials) in the file) is still one character per trial."""
    with h5py.File(shared_data(STEINMETZ), "r") as f:  # the first 3 trials of the real file
        counts, label = f["sp_count"][:3], f["label"][:3]
    path = tmp_path / "NS_sp_count.mat"
    with h5py.File(path, "w") as f:
        f["sp_count"], f["label"] = counts, label
        _matlab_char(f, "subject", ["Ann"])  # (3, 1)
        _matlab_char(f, "side", ["L", " ", "R"])  # (1, 3)
    rec = read_steinmetz_spcount(path)
    assert rec.session_info["subject"] == "Ann" and "subject" not in rec.trial_info
    assert rec.trial_info["side"].tolist() == ["L", " ", "R"]


def test_steinmetz_one_matlab_string_as_long_as_the_units_does_not_transpose_the_counts(shared_data, tmp_path):
    """The (units, bins, trials) check counted every dataset with one axis of 1 as a vector: a single MATLAB
    string (the subject, (k, 1) in the file) of as many characters as there are units, beside no per-trial
    vector, read (3 trials, 10 bins, 5 units) as 5 trials of 3 units. A char array counts as its texts (one per
    MATLAB row): a string as one, a per-trial char column as one per trial (it still tells the trial axis)."""
    with h5py.File(shared_data(STEINMETZ), "r") as f:  # the first 3 trials, 10 bins, 5 units of the real file
        counts = f["sp_count"][:3, :10, :5]
    with h5py.File(tmp_path / "subject.mat", "w") as f:
        f["sp_count"] = counts
        _matlab_char(f, "subject", ["Alice"])  # (5, 1): one text, as long as the unit count
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no transposition warning
        # (a unit of the 5 never fires in these 3 trials x 10 bins: warned of, not the subject of this test)
        warnings.filterwarnings("ignore", message=r"sp_count: \d+ of 5 units .* have a count of 0 in every bin")
        rec = read_steinmetz_spcount(tmp_path / "subject.mat")
    assert (len(rec.trials), rec.n_units) == (3, 5) and rec.session_info["subject"] == "Alice"
    with h5py.File(tmp_path / "units_first.mat", "w") as f:  # as MATLAB writes it untransposed, with a side column
        f["sp_count"] = counts.transpose(2, 1, 0)
        _matlab_char(f, "side", ["L", "R", "L"])  # (1, 3): one text per trial
        _matlab_char(f, "subject", ["Alice"])
    with pytest.warns(UserWarning, match=r"read as \(units, bins, trials\) and transposed to \(3, 10, 5\): the "
                                         r"per-trial vectors \['side'\] have 3 values, none has 5"):
        rec = read_steinmetz_spcount(tmp_path / "units_first.mat")
    assert (len(rec.trials), rec.n_units) == (3, 5) and rec.trial_info["side"].tolist() == ["L", "R", "L"]
    np.testing.assert_array_equal(np.bincount(rec.unit_ids, minlength=5), counts.sum(axis=(0, 1)))


def test_steinmetz_one_dimensional_label_is_one_value_per_trial(shared_data, tmp_path):
    """MATLAB writes a vector as 2-D ((1, n) or (n, 1)); an HDF5 file written from Python (h5py, as here) may hold
    it 1-D, (n,): it was skipped as 'not one value per trial', and did not tell the trial axis either."""
    with h5py.File(shared_data(STEINMETZ), "r") as f:  # the first 3 trials, 10 bins, 5 units of the real file
        counts, label = f["sp_count"][:3, :10, :5], f["motorLabel"][:3].ravel()
    with h5py.File(tmp_path / "flat.mat", "w") as f:
        f["sp_count"], f["motorLabel"] = counts.transpose(2, 1, 0), label  # (units, bins, trials), (3,)
    with pytest.warns(UserWarning, match=r"transposed to \(3, 10, 5\): the per-trial vectors \['motorLabel'\]"):
        rec = read_steinmetz_spcount(tmp_path / "flat.mat")
    np.testing.assert_array_equal(rec.trial_info["motorLabel"], label)


def test_steinmetz_per_trial_label_with_nan_is_counted_in_a_warning(shared_data, tmp_path):
    """A per-trial label with NaN (a trial without a label) was kept as NaN without a word: the
    decoding of that column then met it windows later. It is kept, counted in a warning naming the field."""
    with h5py.File(shared_data(STEINMETZ), "r") as f:  # the first 10 trials of the real file
        data = {k: v[:10] for k, v in f.items()}
    data["label"] = data["label"].astype(float)
    data["label"].flat[4] = np.nan
    data["label"].flat[7] = np.inf
    with pytest.warns(UserWarning, match=r"trial_info\['label'\] of .*NS_sp_count\.mat holds 2 values that are not "
                                         r"finite \(NaN or infinite\) of 10 trials, first at trial 4 \(nan\); kept as"):
        rec = read_steinmetz_spcount(_write_mat(tmp_path / "NS_sp_count.mat", data))
    assert np.isnan(rec.trial_info["label"][4]) and np.isinf(rec.trial_info["label"][7])
    np.testing.assert_array_equal(rec.trial_info["motorLabel"], data["motorLabel"].ravel())


def test_steinmetz_units_that_never_fire_are_counted_in_a_warning(shared_data):
    """Break test: 4 of the 806 units of the Steinmetz subset have a count of 0 in every bin of
    every trial; read_steinmetz_spcount (and from_binned_counts) kept them without a word, where
    read_nwb warns of a unit without spike times and read_phy / read_nelpy_linear_track leave one
    out, counted. They are kept (the vocabulary stays the file's), counted and named in a warning."""
    from hf_neuroformer.io import from_binned_counts

    path = shared_data(STEINMETZ)
    with h5py.File(path, "r") as f:
        counts = f["sp_count"][()]
    never = np.flatnonzero(counts.sum(axis=(0, 1)) == 0)
    assert never.size == 4
    shown = ", ".join(f"unit {int(u)} \\('unit{int(u)}'\\)" for u in never)
    with pytest.warns(UserWarning, match=rf"^sp_count: 4 of 806 units of .*NS_sp_count\.mat have a count of 0 in every "
                                         rf"bin of every trial \({shown}\); kept as units that never fire"):
        rec = read_steinmetz_spcount(path)
    assert rec.n_units == 806
    assert np.array_equal(np.flatnonzero(np.bincount(rec.unit_ids, minlength=rec.n_units) == 0), never)
    # the counts given directly: named as from_binned_counts' argument
    fire = np.flatnonzero(counts[:5].sum(axis=(0, 1)) > 0)[:2]
    with pytest.warns(UserWarning, match=r"^counts: 1 of 3 units have a count of 0 in every bin of every trial "
                                         r"\(unit 1 \('unit1'\)\); kept"):
        from_binned_counts(counts[:5, :, [fire[0], never[0], fire[1]]], 0.01)
    with warnings.catch_warnings():  # every unit fires: no such warning
        warnings.simplefilter("error")
        from_binned_counts(counts[:5, :, fire], 0.01)


@pytest.mark.parametrize("value, what", [(np.nan, "finite values"), (-1.0, "non-negative spike counts"),
                                         (0.5, "integer-valued spike counts")])
def test_steinmetz_bad_counts_are_named_as_the_files_sp_count(shared_data, tmp_path, value, what):
    """A bad count in the file was refused as 'counts: expected finite values, counts[0, 3, 5] is nan':
    the argument of from_binned_counts, not the file's dataset, and no file."""
    with h5py.File(shared_data(STEINMETZ), "r") as f:  # the first 3 trials of the real file
        counts, label = f["sp_count"][:3], f["label"][:3]
    counts[1, 3, 5] = value
    with h5py.File(tmp_path / "NS_sp_count.mat", "w") as f:
        f["sp_count"], f["label"] = counts, label
    with pytest.raises(RecordingValidationError, match=rf"^sp_count: expected {what}, sp_count\[1, 3, 5\] is "
                                                       rf"{value} in .*NS_sp_count\.mat$"):
        read_steinmetz_spcount(tmp_path / "NS_sp_count.mat")


def test_binned_counts_are_checked_without_a_copy_and_any_count_dtype_gives_the_same_recording(shared_data):
    """The counts were checked with whole-array passes and copied to int64 (about 1 s and 160 MB on
    the Steinmetz file's 20M values, on every read); they are checked block by block and kept as given.
    Every numeric dtype of the same counts gives the same recording; a bad value past the first block
    is still named."""
    from hf_neuroformer.io.binned import _check_counts

    with h5py.File(shared_data(STEINMETZ), "r") as f:
        counts = f["sp_count"][:3]  # float64 in the file, 244,218 values: several blocks
    assert np.shares_memory(_check_counts(counts), counts)
    want = from_binned_counts(counts.astype(np.int64), 0.01, seed=0)
    for dtype in (np.float64, np.float32, np.uint8, np.int16):
        got = from_binned_counts(counts.astype(dtype), 0.01, seed=0)
        np.testing.assert_array_equal(got.spike_times, want.spike_times)
        np.testing.assert_array_equal(got.unit_ids, want.unit_ids)
    np.testing.assert_array_equal(from_binned_counts(counts.transpose(2, 1, 0).transpose(2, 1, 0), 0.01,
                                                     seed=0).spike_times, want.spike_times)  # not C-contiguous
    bad = counts.copy()
    bad[2, 100, 805] = 0.5  # in the last block
    with pytest.raises(RecordingValidationError, match=r"counts\[2, 100, 805\] is 0\.5"):
        from_binned_counts(bad, 0.01)


def test_binned_placement_is_seeded(shared_data):
    with h5py.File(shared_data(STEINMETZ), "r") as f:
        counts = f["sp_count"][:20]
    a = from_binned_counts(counts, 0.01, seed=0)
    np.testing.assert_array_equal(from_binned_counts(counts, 0.01, seed=0).spike_times, a.spike_times)
    assert not np.array_equal(from_binned_counts(counts, 0.01, seed=1).spike_times, a.spike_times)
    centre = from_binned_counts(counts, 0.01, placement="center")
    assert centre.n_spikes == a.n_spikes == counts.sum()
    np.testing.assert_array_equal(centre.binned_counts(0.01, 0.0, 1.01), counts[0])


# ------------------------------------------------------------------------------ Allen
def test_allen_gratings(shared_data, allen):
    assert allen.n_units == 1000
    assert allen.n_spikes == 153_635
    assert allen.trials.shape == (200, 2)
    np.testing.assert_allclose(allen.trials[:3], [[0.0, 0.1], [0.2, 0.3], [0.4, 0.5]])
    labels = np.load(shared_data(ALLEN) / "stim_label.npy")
    np.testing.assert_array_equal(allen.trial_info["orientation_deg"], labels)
    assert allen.stimulus.names == ["0deg", "45deg", "90deg", "135deg"]
    assert np.bincount(allen.stimulus.ids).tolist() == [50, 50, 50, 50]
    np.testing.assert_array_equal(np.asarray(allen.stimulus.names)[allen.stimulus.ids],
                                  [f"{d}deg" for d in labels])
    # one (trial, unit) block placed on the continuous clock
    st = np.load(shared_data(ALLEN) / "spike_times.npy")
    ii = np.load(shared_data(ALLEN) / "ii_spike_times.npy")
    k, u = np.argwhere(ii[..., 1] - ii[..., 0] > 2)[7]
    sel = (allen.unit_ids == u) & (allen.spike_times >= allen.trials[k, 0]) & (allen.spike_times < allen.trials[k, 1])
    np.testing.assert_allclose(allen.spike_times[sel], np.sort(st[ii[k, u, 0]:ii[k, u, 1]]) + k * 0.2)
    assert allen.unit_names[:2] == ["unit0", "unit1"]


def test_allen_trial_times_in_milliseconds_are_named_in_a_warning(shared_data):
    """trial_duration=100, inter_trial_gap=100 meant for 100 ms laid the 200 trials over 11 h of
    'seconds' without a word, where every reader of spike times warns of times that look like
    milliseconds. The same rule now names both arguments and the fix; the defaults give no warning."""
    with pytest.warns(UserWarning, match=r"^read_allen_gratings: trial_duration = 100 s, inter_trial_gap = 100 s: "
                                         r"the spike times laid out: they span 39800.1 s \(11.1 h\).*pass "
                                         r"trial_duration and inter_trial_gap in seconds"):
        rec = read_allen_gratings(shared_data(ALLEN), trial_duration=100, inter_trial_gap=100)
    assert rec.time_domain == (0.0, 40000.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_allen_gratings(shared_data(ALLEN))


def _allen_copy(shared_data, tmp_path, ii=None, labels=None, st=None):
    src = shared_data(ALLEN)
    d = tmp_path / "allen"
    d.mkdir()
    np.save(d / "spike_times.npy", np.load(src / "spike_times.npy") if st is None else st)
    np.save(d / "ii_spike_times.npy", np.load(src / "ii_spike_times.npy") if ii is None else ii)
    np.save(d / "stim_label.npy", np.load(src / "stim_label.npy") if labels is None else labels)
    return d


def test_allen_folder_without_its_labels_names_the_file_and_what_it_holds(shared_data, tmp_path):
    """A folder of spike_times.npy and ii_spike_times.npy (the format list wrote stim_label.npy as optional)
    was refused as 'Allen gratings file not found: .../stim_label.npy', naming neither the three files the
    reader needs nor what the missing one holds."""
    d = _allen_copy(shared_data, tmp_path)
    (d / "stim_label.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"^Allen gratings folder .*allen: no stim_label\.npy \(expected all of "
                       r"spike_times\.npy, ii_spike_times\.npy and stim_label\.npy; stim_label\.npy: the grating "
                       r"orientation of each trial, degrees"):
        load_recording(d)
    assert "folder with spike_times.npy + ii_spike_times.npy + stim_label.npy: Allen gratings" in SUPPORTED_FORMATS

@pytest.mark.parametrize("shift, msg", [(-5, r"spike 58 is indexed by 0 blocks \(no block\); 5 spikes are in no block"),
                                        (3, r"spike 63 is indexed by 2 blocks \(\[0, 82\], \[0, 83\]\)")])
def test_allen_blocks_must_index_every_spike_once(shared_data, tmp_path, shift, msg):
    # a block cut short silently dropped its last spikes; a block run long gave them to two units
    ii = np.load(shared_data(ALLEN) / "ii_spike_times.npy").copy()
    assert ii[0, 82].tolist() == [56, 63]
    ii[0, 82, 1] += shift
    with pytest.raises(RecordingValidationError, match=r"ii_spike_times: expected the \[start, stop\) blocks to "
                                                       r"index every spike of spike_times exactly once, " + msg):
        read_allen_gratings(_allen_copy(shared_data, tmp_path, ii=ii))


def test_allen_spikes_repeated_within_a_unit_are_counted_as_the_other_readers_count_them(shared_data, tmp_path,
                                                                                           allen):
    """A spike listed twice in a (trial, unit) block was kept as two tokens without a word, where
    from_arrays, read_nwb, read_phy and read_nelpy_linear_track count such spikes per unit."""
    src = shared_data(ALLEN)
    st, ii = np.load(src / "spike_times.npy"), np.load(src / "ii_spike_times.npy")
    assert ii[0, 82].tolist() == [56, 63]
    st2 = np.insert(st, 63, st[58])  # spike 58 of trial 0, unit 82 once more, at the end of its block
    ii2 = np.where(ii >= 63, ii + 1, ii)
    with pytest.warns(UserWarning, match=r"^read_allen_gratings: .*spike_times\.npy: 1 spike in 1 unit repeats a "
                                         r"spike time of the same unit exactly \('unit82': 1\); kept") as caught:
        rec = read_allen_gratings(_allen_copy(shared_data, tmp_path, ii=ii2, st=st2))
    assert rec.n_spikes == allen.n_spikes + 1
    assert [w.filename for w in caught if "a spike time of the same unit" in str(w.message)] == [__file__]  # the caller's line


def test_allen_spike_times_stored_as_float32_are_read_with_the_float32_warning(shared_data, tmp_path, allen):
    """float32 spike_times were widened with astype(float64) without a word, while the NWB, npz and
    nelpy readers say so (widen_stored_times)."""
    st32 = np.load(shared_data(ALLEN) / "spike_times.npy").astype(np.float32)
    with pytest.warns(UserWarning, match=r"^read_allen_gratings\(.*\): spike_times are stored as float32"):
        rec = read_allen_gratings(_allen_copy(shared_data, tmp_path, st=st32))
    assert rec.n_spikes == allen.n_spikes
    with pytest.raises(RecordingValidationError, match=r"^spike_times: expected numeric spike times in seconds in "
                                                       r".*spike_times\.npy, got dtype <U"):
        (tmp_path / "text").mkdir()
        read_allen_gratings(_allen_copy(shared_data, tmp_path / "text", st=st32.astype(str)))


def test_allen_keeps_fractional_orientations(shared_data, tmp_path):
    # 22.5 deg was cut to 22 (trial_info) and named "22deg"
    labels = np.load(shared_data(ALLEN) / "stim_label.npy").astype(np.float64)
    labels[labels == 45] = 22.5
    rec = read_allen_gratings(_allen_copy(shared_data, tmp_path, labels=labels))
    assert rec.stimulus.names == ["0deg", "22.5deg", "90deg", "135deg"]
    np.testing.assert_array_equal(rec.trial_info["orientation_deg"], labels)


def test_allen_without_a_gap_between_trials(shared_data):
    """Break test: inter_trial_gap=0 (allowed: '>= 0') failed with 'trials[199]: expected a trial
    inside the time domain [0.0, 20.0] s, got (19.900000000000002, 20.000000000000004)': the last
    trial's stop, onset + duration, rounded past n_trials * period. The trials are back to back,
    each trial's stop the next one's onset, and the time domain holds them all."""
    rec = read_allen_gratings(shared_data(ALLEN), inter_trial_gap=0.0)
    assert rec.trials.shape == (200, 2)
    np.testing.assert_array_equal(rec.trials[:-1, 1], rec.trials[1:, 0])
    assert rec.time_domain[1] >= rec.trials[-1, 1] == pytest.approx(20.0)


@pytest.mark.parametrize("kwargs", [dict(inter_trial_gap=float("inf")), dict(inter_trial_gap=-0.1),
                                    dict(trial_duration="0.1"), dict(trial_duration=True),
                                    dict(trial_duration=float("nan"))])
def test_allen_trial_lengths_that_are_not_seconds_are_refused_by_name(shared_data, kwargs):
    """An infinite gap passed '>= 0' and made every spike time NaN ('spike_times: expected finite
    values, spike 0 ...'), the text '0.1' failed with "'>' not supported", and True was a 1-s trial."""
    (name, value), = kwargs.items()
    with pytest.raises(ValueError, match=rf"^read_allen_gratings\.{name}: expected a finite number of seconds "
                                         rf"[>=]+ 0, got {re.escape(repr(value))}$"):
        read_allen_gratings(shared_data(ALLEN), **kwargs)


def test_binned_counts_without_a_gap_lay_the_trials_back_to_back(shared_data):
    """trial_gap=0 (allowed: '>= 0') made trial k's stop k*T + 101*0.01, which rounds past trial
    k+1's onset (k+1)*T in 29 of the 247 Steinmetz trials: overlapping trials, which plan_splits
    then puts into one split as one group. Each stop is now the next trial's onset (as for Allen),
    and every spike still re-bins into its trial."""
    with h5py.File(shared_data(STEINMETZ), "r") as f:
        counts = f["sp_count"][()]
    rec = from_binned_counts(counts, 0.01, trial_gap=0.0)
    np.testing.assert_array_equal(rec.trials[:-1, 1], rec.trials[1:, 0])
    assert rec.time_domain[1] >= rec.trials[-1, 1] == pytest.approx(247 * 1.01)
    for k in (0, 123, 246):
        a, b = rec.trials[k]
        np.testing.assert_array_equal(rec.binned_counts(0.01, start=a, stop=b), counts[k])


def test_load_recording_dispatch(shared_data):
    rec = load_recording(shared_data(ALLEN), inter_trial_gap=0.05)
    assert rec.trials[1, 0] == pytest.approx(0.15)


# ------------------------------------------------------------------------------ NWB round trip
def _small_recording() -> SpikeRecording:
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0.0, 10.0, 500))
    u = rng.integers(0, 4, 500)
    ts = np.arange(0.0, 10.0, 0.01)
    return SpikeRecording.from_unsorted(
        t, u,
        unit_names=["a", "b", "c", "silent"] + [],
        unit_areas=["CA1", "CA1", "V1", ""],
        time_domain=(0.0, 10.5),
        epochs={"pre": (0.0, 4.0), "task": (4.0, 10.0)},
        trials=np.array([[4.0, 5.0], [6.0, 7.0], [8.0, 9.5]]),
        trial_info={"side": np.array(["left", "right", "left"]), "contrast": np.array([0.25, 0.5, 1.0]),
                    "correct": np.array([1, 0, 1])},
        behaviour={"speed": BehaviourSeries(ts, np.abs(np.sin(ts)), "cm/s"),
                   "xy": BehaviourSeries(ts, np.stack([np.cos(ts), np.sin(ts)], 1), "")},
        stimulus=Stimulus(ids=np.array([1, 0, 1]), intervals=np.array([[4.0, 5.0], [6.0, 7.0], [8.0, 9.5]]),
                          names=["grating", "blank"]),
        session="toy",
    )


def _assert_same(r, r2):
    np.testing.assert_array_equal(r2.spike_times, r.spike_times)
    assert r2.spike_times.dtype == np.float64
    np.testing.assert_array_equal(r2.unit_ids, r.unit_ids)
    assert r2.unit_names == r.unit_names
    assert r2.unit_areas == r.unit_areas
    assert r2.epochs == r.epochs
    assert r2.time_domain == r.time_domain
    assert r2.session == r.session
    assert sorted(r2.behaviour) == sorted(r.behaviour)
    for k, s in r.behaviour.items():
        np.testing.assert_array_equal(r2.behaviour[k].timestamps, s.timestamps)
        np.testing.assert_array_equal(r2.behaviour[k].values, s.values)
        assert r2.behaviour[k].unit == s.unit


def test_nwb_round_trip_small(tmp_path):
    rec = _small_recording()
    path = write_nwb(rec, tmp_path / "toy.nwb")
    back = read_nwb(path)
    _assert_same(rec, back)
    np.testing.assert_array_equal(back.trials, rec.trials)
    assert sorted(back.trial_info) == sorted(rec.trial_info)
    for k, v in rec.trial_info.items():
        np.testing.assert_array_equal(back.trial_info[k], v)
    np.testing.assert_array_equal(back.stimulus.ids, rec.stimulus.ids)
    np.testing.assert_array_equal(back.stimulus.intervals, rec.stimulus.intervals)
    assert back.stimulus.names == rec.stimulus.names
    assert back.n_units == 4 and np.sum(back.unit_ids == 3) == np.sum(rec.unit_ids == 3)


def test_nwb_round_trip_stimulus_without_intervals(tmp_path):
    # a restrict() to a span that no stimulus interval overlaps leaves ids=[] and intervals (0, 2):
    # write_nwb failed inside hdmf ("could not resolve dtype for VectorData 'stimulus_id'")
    rec = _small_recording().restrict(0.0, 4.0)
    assert rec.stimulus.ids.size == 0 and rec.stimulus.intervals.shape == (0, 2)
    back = read_nwb(write_nwb(rec, tmp_path / "pre.nwb"))
    _assert_same(rec, back)
    assert back.stimulus is not None
    assert back.stimulus.ids.dtype == np.int64 and back.stimulus.ids.shape == (0,)
    assert back.stimulus.intervals.shape == (0, 2)
    assert back.stimulus.names == rec.stimulus.names == ["grating", "blank"]


def test_a_folder_holding_a_recording_file_names_the_file(shared_data, tmp_path):
    """Break test: --data ../shared/data/zheng2022_human_mtl (the folder of one .nwb) or
    steinmetz2019_spcount (of one .mat) listed every supported format and named neither the file
    inside nor that a file is what the readers take."""
    for folder, name in (("zheng2022_human_mtl", "sub-4_ses-4_ecephys+image.nwb"),
                         ("steinmetz2019_spcount", "NS_sp_count.mat")):
        with pytest.raises(ValueError, match=r"^unsupported recording folder .*supported formats are .*\. A file in "
                                             r"it that may be a recording: .*" + re.escape(name) + "; pass the file "
                                             "itself$"):
            load_recording(shared_data(folder))
    (tmp_path / "two").mkdir()
    for f in ("a.nwb", "b.csv", "notes.txt"):
        (tmp_path / "two" / f).write_text("x")
    with pytest.raises(ValueError, match=r"Files in it that may be recordings: \S*a\.nwb, \S*b\.csv; pass one of "
                                         r"them$"):
        load_recording(tmp_path / "two")
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"unsupported recording folder") as err:
        load_recording(tmp_path / "none")
    assert "may be a recording" not in str(err.value)


def test_an_empty_events_stream_round_trips_without_a_float32_warning(tmp_path):
    """Break test: pynwb writes the timestamp column of an events table without rows as float32,
    so a recording whose restrict() left an event stream empty (A2929 wake 700-760 s: no ripple)
    was read back with "events 'sleep_ripples' timestamp are stored as float32, which rounds times of
    up to 0 s by as much as 7.01e-40 µs" at every inspect / train / ablate of the file. Nothing is
    rounded there: no warning."""
    import dataclasses
    import warnings

    from hf_neuroformer.recording import EventSeries

    rec = dataclasses.replace(_small_recording(), events={"licks": EventSeries(np.zeros(0))})
    path = write_nwb(rec, tmp_path / "no_licks.nwb")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        back = read_nwb(path)
    assert not [str(w.message) for w in caught if "float32" in str(w.message)]
    assert back.events["licks"].times.shape == (0,) and back.events["licks"].times.dtype == np.float64


def test_event_labels_with_a_missing_label_round_trip_through_nwb(tmp_path):
    """Break test: EventSeries keeps text labels with a missing one (["l", None, "r"], ["a", nan]), but
    write_nwb refused them with "expected integers, floats or strings, got dtype object", naming no label.
    They are stored as one JSON text per event and read back as the same object array; a label that is
    no number, bool, text or None is still refused, now naming its index."""
    rec = _everything_recording()
    rec = replace(rec, events={**rec.events, "cues": EventSeries(np.array([1.0, 2.0]), np.array(["a", np.nan], dtype=object)),
                               "codes": EventSeries(np.array([1.0, 2.0]), np.array([3, True], dtype=object))})
    back = read_nwb(write_nwb(rec, tmp_path / "ev.nwb"))
    for name, ev in rec.events.items():
        assert _differences(ev, back.events[name], name) == []
    assert back.events["licks"].labels.tolist() == ["l", None, "r"]
    assert [type(v) for v in back.events["codes"].labels] == [int, bool]
    with pytest.raises(ValueError, match=r"^events\['odd'\]\.labels\[0\]: expected an integer, float, bool, string or "
                       r"None label, got complex \(1\+2j\)$"):
        write_nwb(replace(rec, events={"odd": EventSeries(np.array([1.0]), np.array([1 + 2j], dtype=object))}),
                  tmp_path / "odd.nwb")
    assert not (tmp_path / "odd.nwb").exists()


def test_nwb_round_trip_of_every_field_and_edge_case(tmp_path):
    """write_nwb -> read_nwb of a recording holding every field, a unit without spikes, unicode unit
    names and areas, a behaviour series holding NaN, a boolean series, a time support of two intervals,
    epoch intervals, events with a missing label; then of a single-unit recording. Everything comes
    back equal, the behaviour series and event streams in their order too (NWB reads a group's members
    in name order: 'speed', 'xy', 'moving' came back 'moving', 'speed', 'xy'), except what the format
    documents: a text trial column as an object array, and a 2-D trial column left out (warned)."""
    rec = _everything_recording()
    assert np.sum(rec.unit_ids == 3) == 0  # "silent" has no spike
    with pytest.warns(UserWarning, match=r"skipped trial_info\['grid'\]: expected a 1-D column"):
        back = read_nwb(write_nwb(rec, tmp_path / "all.nwb"))
    assert list(rec.behaviour) != sorted(rec.behaviour) and list(rec.events) != sorted(rec.events)
    expected = replace(rec, trial_info={**{k: v for k, v in rec.trial_info.items() if k != "grid"},
                                   "side": rec.trial_info["side"].astype(object)})
    assert _differences(expected, back) == []
    one = replace(rec, trial_info={k: v for k, v in rec.trial_info.items() if k != "grid"}).select_units([2])
    assert one.unit_names == ["ünit_α"] and one.n_spikes > 0
    back = read_nwb(write_nwb(one, tmp_path / "one.nwb"))
    assert back.unit_names == ["ünit_α"] and back.unit_areas == ["丘脑"]
    np.testing.assert_array_equal(back.spike_times, one.spike_times)
    assert back.time_support.tolist() == one.time_support.tolist() == [[0.0, 3.5], [4.0, 10.5]]


def test_nwb_round_trip_of_a_recording_without_time_domain(tmp_path):
    # write_nwb marks its files by source_script "even when the recording has no time domain" (no spike,
    # none given), but read_nwb then looked up the time_domain table of such a file: KeyError 'time_domain'
    rec = SpikeRecording([], [], unit_names=["a", "b"], unit_areas=["CA1", ""], session="empty")
    assert rec.time_domain is None
    back = read_nwb(write_nwb(rec, tmp_path / "empty.nwb"))
    assert back.time_domain is None and back.n_spikes == 0
    assert back.unit_names == ["a", "b"] and back.unit_areas == ["CA1", ""] and back.session == "empty"


def test_write_nwb_names_behaviour_events_and_trial_columns_nwb_cannot_hold(tmp_path):
    # NWB names hold no '/' or ':' and are not empty: write_nwb failed inside hdmf ("name 'x:y' cannot contain
    # a '/' or ':'", "name parameter cannot be an empty string", "expected bytes, str found") without
    # saying which field, and the events check covered '/' only
    rec = _small_recording()
    speed = rec.behaviour["speed"]
    for field, kw in [("behaviour['pos:x']", {"behaviour": {"pos:x": speed}}),
                      ("behaviour['']", {"behaviour": {"": speed}}),
                      ("events['lick:left']", {"events": {"lick:left": EventSeries(np.array([1.0]))}}),
                      ("events['']", {"events": {"": EventSeries(np.array([1.0]))}})]:
        bad = replace(rec, **kw)
        with pytest.raises(ValueError, match=re.escape(field) + r": NWB names cannot"):
            write_nwb(bad, tmp_path / "bad.nwb")
        assert not (tmp_path / "bad.nwb").exists()
    info = dict(rec.trial_info, **{"a/b": np.array([1, 2, 3]), "": np.array([4, 5, 6])})
    with pytest.warns(UserWarning, match=r"skipped trial_info\['a/b'\]: NWB names cannot") as rec_warn:
        back = read_nwb(write_nwb(replace(rec, trial_info=info), tmp_path / "ok.nwb"))
    assert any("skipped trial_info['']" in str(w.message) for w in rec_warn)
    assert sorted(back.trial_info) == sorted(rec.trial_info)


def test_write_nwb_keeps_a_trial_column_mixing_booleans_and_numbers(tmp_path):
    """Break test: a trial_info column mixing booleans with numbers (an object array, as
    SpikeRecording keeps [True, 1, False] so that True and 1 stay two labels) was skipped by
    write_nwb with a warning: the column was gone from the file. No NWB dtype keeps True apart
    from 1, so it is now stored as one JSON text per trial (NaN and None too) and read back as the
    same object array, values and kinds; other readers see the JSON text. A column of other
    objects is still skipped, warned."""
    import json

    from hf_neuroformer.io.nwb import TRIAL_JSON_NOTE

    rec = _small_recording()
    info = dict(rec.trial_info, flag=[True, 1, False], odd=np.array([0.5, "n/a", None], dtype=object))
    assert replace(rec, trial_info=info).trial_info["flag"].dtype == object
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = write_nwb(replace(rec, trial_info={**info, "miss": np.array([True, np.nan, 2], dtype=object)}),
                         tmp_path / "mixed.nwb")
    back = read_nwb(path)
    for name, want in (("flag", [True, 1, False]), ("odd", [0.5, "n/a", None]), ("miss", [True, np.nan, 2])):
        got = back.trial_info[name]
        assert got.dtype == object and [type(v) for v in got] == [type(v) for v in want], name
        assert [("nan" if isinstance(v, float) and np.isnan(v) else v) for v in got] == \
            [("nan" if isinstance(v, float) and np.isnan(v) else v) for v in want], name
    np.testing.assert_array_equal(back.trial_info["contrast"], rec.trial_info["contrast"])  # the others as before
    with h5py.File(path, "r") as f:  # what another reader sees: JSON text, and the note in the description
        assert [json.loads(v) for v in f["intervals/trials/flag"][:]] == [True, 1, False]
        assert f["intervals/trials/flag"].attrs["description"].endswith(TRIAL_JSON_NOTE)
    with pytest.warns(UserWarning, match=r"write_nwb: skipped trial_info\['lists'\]: dtype object is not numeric, "
                                         r"boolean or string \(an object column holds values other than booleans"):
        back = read_nwb(write_nwb(replace(rec, trial_info={**info, "lists": np.array([[1], [2], 3], dtype=object)}),
                                  tmp_path / "lists.nwb"))
    assert "lists" not in back.trial_info and "flag" in back.trial_info


def test_nwb_round_trip_a2929_and_overwrite(tmp_path, a2929):
    path = tmp_path / "a2929.nwb"
    write_nwb(a2929, path)
    _assert_same(a2929, quiet(read_nwb, path))
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_nwb(a2929, path)
    wake = a2929.select_epoch("wake")
    write_nwb(wake, path, overwrite=True)
    _assert_same(wake, read_nwb(path))
    assert sorted(os.listdir(tmp_path)) == ["a2929.nwb"]  # no temporary file left behind


# ------------------------------------------------------------------------------ bad input
def _nwbfile():
    from pynwb import NWBFile

    return NWBFile(session_description="test", identifier="x",
                   session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))


def _write(nwb, path):
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def test_nwb_identifier_with_whitespace_becomes_a_usable_session(tmp_path):
    """An identifier such as "Mouse 12 day 3" was taken as the session, and every unit token
    ("<session>/<unit>") was then refused for its whitespace, which `neuroformer train --data`
    could not rename; a session read from the file has whitespace runs replaced by "_"."""
    from pynwb import NWBFile

    from hf_neuroformer import NeuroformerTokenizer

    nwb = NWBFile(session_description="test", identifier="Mouse 12  day\t3",
                  session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    nwb.add_unit(spike_times=[0.1, 0.2])
    path = _write(nwb, tmp_path / "spaced.nwb")
    rec = read_nwb(path)
    assert rec.session == "Mouse_12_day_3"
    NeuroformerTokenizer().add_units(rec)  # refused before: "recording.session: ... holds whitespace"
    assert read_nwb(path, session="mine").session == "mine"  # a given session is kept as given
    # SpikeRecording(session="a b") is refused (validate() too, so write_nwb does not write it): an older
    # write_nwb wrote one in its session_id, read back with its whitespace replaced too
    ours = set_nwb_session_id(write_nwb(rec, tmp_path / "ours.nwb"), "a b")
    assert read_nwb(ours).session == "a_b"
    # an identifier of whitespace only gave the session "   ", refused the same way (and the message could
    # only suggest session=''): the file stem instead, with its whitespace replaced too, as a stem taken
    # for an empty identifier has (dedac62 took the stem "blank id" as it is, refused by the tokenizer)
    for stem in ("blank_id", "blank id"):
        blank = NWBFile(session_description="test", identifier="   ",
                        session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
        blank.add_unit(spike_times=[0.1, 0.2])
        rec = read_nwb(_write(blank, tmp_path / f"{stem}.nwb"))
        assert rec.session == "blank_id", stem
        NeuroformerTokenizer().add_units(rec)


def test_nwb_stimulus_rows_without_a_span_are_dropped_and_counted(tmp_path):
    """A foreign interval table with a stimulus-name column and a row whose stop is NaN (the epochs
    skip such rows): since SpikeRecording checks stimulus.intervals, read_nwb refused the whole file
    ("stimulus.intervals[2]: expected finite ..."), which was read before; the row is dropped with
    its count, the other presentations kept with their names."""
    from pynwb.epoch import TimeIntervals

    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.5, 12.0, 33.0])
    nwb.add_trial(start_time=1.0, stop_time=2.0)  # the trials; the presentations table is the stimulus
    table = TimeIntervals(name="presentations", description="clips")
    table.add_column("stimulus_name", "clip")
    for i in range(5):
        table.add_row(start_time=10.0 * i, stop_time=np.nan if i == 2 else 10.0 * i + 1, stimulus_name=f"c{i % 2}")
    nwb.add_time_intervals(table)
    path = _write(nwb, tmp_path / "nan_stop.nwb")
    with pytest.warns(UserWarning, match=r"stimulus: dropped 1 of 5 rows of interval table 'presentations'"):
        rec = read_nwb(path)
    np.testing.assert_array_equal(rec.stimulus.intervals, [[0, 1], [10, 11], [30, 31], [40, 41]])
    assert [rec.stimulus.names[i] for i in rec.stimulus.ids] == ["c0", "c1", "c1", "c0"]


def test_nwb_task_tables_with_their_own_task_column_keep_it(tmp_path):
    """Several task tables are read as trials with trial_info['task'] = the table name; a column
    'task' of the tables themselves (the task variant) was overwritten by it without a word."""
    from pynwb.epoch import TimeIntervals

    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.5, 1.5, 2.5])
    for name, off in (("enc_table", 0.0), ("rec_table", 2.0)):
        table = TimeIntervals(name=name, description="a task")
        table.add_column("task", "the task variant")
        table.add_row(start_time=off, stop_time=off + 1.0, task="A")
        table.add_row(start_time=off + 1.0, stop_time=off + 2.0, task="B")
        nwb.add_time_intervals(table)
    path = _write(nwb, tmp_path / "task_column.nwb")
    with pytest.warns(UserWarning, match=r"trial_info: .*own column 'task' .* kept as 'task_1'"):
        rec = read_nwb(path)
    assert list(rec.trial_info["task"]) == ["enc", "enc", "rec", "rec"]
    assert list(rec.trial_info["task_1"]) == ["A", "B", "A", "B"]


def test_nwb_empty_interval_tables_are_reported_and_an_empty_trials_table_is_not_replaced_silently(tmp_path):
    """An empty interval table (no rows) and an empty trials table were skipped without a word
    (`neuroformer inspect` said "epochs: none / trials: none"), and with an empty trials table
    another task table became the trials: both are now warned of, naming the tables."""
    from pynwb.epoch import TimeIntervals

    def empty_tables():
        nwb = _nwbfile()
        nwb.add_unit(spike_times=[0.2, 0.7, 1.4])
        nwb.add_trial_column("label", "a column, but no rows", data=np.zeros(0))
        nwb.add_time_intervals(TimeIntervals(name="ripples", description="none found"))
        return nwb

    path = _write(empty_tables(), tmp_path / "empty_tables.nwb")
    with pytest.warns(UserWarning, match=r"intervals: the interval tables 'ripples', 'trials' of .*empty_tables"
                                         r"\.nwb have no rows; nothing is read from them"):
        rec = read_nwb(path)
    assert rec.trials is None and rec.epochs == {}
    task = TimeIntervals(name="task_table", description="a task")
    task.add_column("resp", "response")
    task.add_row(start_time=0.0, stop_time=0.5, resp=1)
    task.add_row(start_time=0.6, stop_time=1.0, resp=2)
    nwb = empty_tables()
    nwb.add_time_intervals(task)
    path = _write(nwb, tmp_path / "empty_trials.nwb")
    with pytest.warns(UserWarning) as caught:
        rec = read_nwb(path)
    assert any(re.match(r"trials: the trials table of .*empty_trials\.nwb is empty \(0 rows\), so the interval "
                        r"table 'task_table' is read as the trials instead; pass trial_tables=\[\]",
                        str(w.message)) for w in caught), [str(w.message) for w in caught]
    assert list(rec.trial_info["resp"]) == [1, 2]  # still read (the documented default), but said


def _trials_file(tmp_path, name, rows):
    """A foreign NWB file with one unit and a trials table of ``rows`` (start, stop), with a numeric
    column ``k`` (row number in the file) and a string column ``side``."""
    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.5, 12.0, 33.0])
    nwb.add_trial_column("k", "row number in the file")
    nwb.add_trial_column("side", "a string column")
    for i, (a, b) in enumerate(rows):
        nwb.add_trial(start_time=float(a), stop_time=float(b), k=i, side=f"s{i}")
    return _write(nwb, tmp_path / name)


def test_nwb_trials_with_a_nan_start_or_stop_are_dropped_with_their_trial_info(tmp_path):
    """A foreign trials table with a NaN start (row 1) and a NaN stop (row 3), rows out of order:
    read_nwb refused the whole file ("trials[3]: expected finite [start, stop) ...", after a sort
    warning that counted the NaN row as moved); the two rows are dropped with a count naming the
    table, the others sorted by start with every trial_info column (numeric and string) in step."""
    path = _trials_file(tmp_path, "nan_trials.nwb", [(5, 6), (np.nan, 4), (1, 2), (3, np.nan), (7, 8)])
    with pytest.warns(UserWarning) as rec_w:
        rec = read_nwb(path)
    msgs = [str(w.message) for w in rec_w]
    assert ("trials: dropped 2 of 5 rows of interval table 'trials' with a non-finite start or stop time (left out "
            "of the trials and of the epochs)" in msgs), msgs
    np.testing.assert_array_equal(rec.trials, [[1, 2], [5, 6], [7, 8]])
    np.testing.assert_array_equal(rec.trial_info["k"], [2, 0, 4])
    assert list(rec.trial_info["side"]) == ["s2", "s0", "s4"]
    assert any("(2 of 3 rows moved)" in m for m in msgs), msgs  # the sort counts kept rows only


def test_nwb_zero_length_trials_are_dropped_and_counted(tmp_path):
    """A foreign trials table with a row whose stop equals its start: read_nwb refused the whole
    file (from the trials table read as an epoch: "epoch_intervals['trials'][1]: expected ... stop >
    start"); the row is dropped from trials (with its trial_info) and from the epoch, counted."""
    path = _trials_file(tmp_path, "zero_trials.nwb", [(1, 2), (3, 3), (5, 6)])
    with pytest.warns(UserWarning, match=r"trials: dropped 1 of 3 rows of interval table 'trials' of zero "
                                         r"length \(stop == start\)"):
        rec = read_nwb(path)
    np.testing.assert_array_equal(rec.trials, [[1, 2], [5, 6]])
    np.testing.assert_array_equal(rec.trial_info["k"], [0, 2])
    np.testing.assert_array_equal(rec.epoch_intervals["trials"], [[1, 2], [5, 6]])


def test_nwb_trials_with_stop_before_start_are_dropped_and_counted(tmp_path):
    """A foreign trials table with a row whose stop is before its start: the whole file was
    refused ("epoch_intervals['trials'][1]: ... got (4.0, 3.0)", a message about an epoch, not the
    trial); such a row is no span either: dropped with its trial_info, counted under its own reason."""
    path = _trials_file(tmp_path, "reversed_trials.nwb", [(1, 2), (4, 3), (5, 6)])
    with pytest.warns(UserWarning, match=r"trials: dropped 1 of 3 rows of interval table 'trials' with a stop "
                                         r"before the start"):
        rec = read_nwb(path)
    np.testing.assert_array_equal(rec.trials, [[1, 2], [5, 6]])
    assert list(rec.trial_info["side"]) == ["s0", "s2"]


def test_nwb_a_trial_without_a_span_is_warned_about_once(tmp_path):
    """The trials table is read as the trials and as the epoch 'trials': a row added with stop < start was
    warned about twice ('trials: dropped 1 of 3 rows ...' and 'epochs: dropped 1 of 3 rows ...', the same
    row). It is now one warning per table and reason, naming both parts of the recording left without it."""
    path = _trials_file(tmp_path, "reversed_trials.nwb", [(1, 2), (4, 3), (5, 6)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = read_nwb(path)
    dropped = [str(w.message) for w in caught if "dropped" in str(w.message)]
    assert dropped == ["trials: dropped 1 of 3 rows of interval table 'trials' with a stop before the start (left "
                       "out of the trials and of the epochs)"], dropped
    np.testing.assert_array_equal(rec.epoch_intervals["trials"], [[1, 2], [5, 6]])  # left out of both, as said
    np.testing.assert_array_equal(rec.trials, [[1, 2], [5, 6]])


def _interval_table_file(tmp_path, name, rows):
    from pynwb.epoch import TimeIntervals

    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.5, 12.0, 33.0])
    table = TimeIntervals(name="ripples", description="events as intervals")
    for a, b in rows:
        table.add_row(start_time=float(a), stop_time=float(b))
    nwb.add_time_intervals(table)
    return _write(nwb, tmp_path / name)


def test_nwb_zero_length_rows_of_an_epoch_table_are_dropped_and_counted(tmp_path):
    """An interval table (read as an epoch of several rows, epoch_intervals) with a row whose stop
    equals its start (an event stored as an interval): read_nwb refused the whole file
    ("epoch_intervals['ripples'][1]: expected ... stop > start"); the row, which covers no time, is
    dropped with a count, the epoch keeps the other rows (still an event, read from start times)."""
    path = _interval_table_file(tmp_path, "zero_rows.nwb", [(1, 2), (3, 3), (5, 6)])
    with pytest.warns(UserWarning, match=r"epochs: dropped 1 of 3 rows of interval table 'ripples' of zero "
                                         r"length \(stop == start\)"):
        rec = read_nwb(path)
    assert rec.epochs["ripples"] == (1.0, 6.0)
    np.testing.assert_array_equal(rec.epoch_intervals["ripples"], [[1, 2], [5, 6]])


def test_nwb_nan_rows_of_an_epoch_table_are_counted(tmp_path):
    """An interval table with a NaN stop in one row: the row was left out of epoch_intervals
    without a word (a NaN start was only counted among the events); it is now counted, naming the
    table."""
    path = _interval_table_file(tmp_path, "nan_rows.nwb", [(1, 2), (3, np.nan), (5, 6)])
    with pytest.warns(UserWarning, match=r"epochs: dropped 1 of 3 rows of interval table 'ripples' with a "
                                         r"non-finite start or stop time"):
        rec = read_nwb(path)
    np.testing.assert_array_equal(rec.epoch_intervals["ripples"], [[1, 2], [5, 6]])


def test_nwb_epochs_table_rows_without_a_span_are_dropped_and_counted(tmp_path):
    """A foreign ``epochs`` table with a NaN start in one row: read_nwb refused the whole file
    ("epochs['b']: expected finite (start, stop) seconds, got (nan, 3.0)") though the other interval
    tables skip such rows; the row is dropped with a count, an unnamed row keeps its file row number."""
    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.5, 12.0, 33.0])
    nwb.add_epoch(start_time=0.0, stop_time=1.0, tags=["a"])
    nwb.add_epoch(start_time=np.nan, stop_time=3.0, tags=["b"])
    nwb.add_epoch(start_time=4.0, stop_time=5.0, tags=[])
    path = _write(nwb, tmp_path / "nan_epoch.nwb")
    with pytest.warns(UserWarning, match=r"epochs: dropped 1 of 3 rows of interval table 'epochs' with a "
                                         r"non-finite start or stop time"):
        rec = read_nwb(path)
    assert rec.epochs == {"a": (0.0, 1.0), "epoch2": (4.0, 5.0)}


def test_nwb_epochs_sharing_a_name_are_named_in_a_warning(tmp_path):
    """An epochs table tagged sleep, wake, sleep (pre- and post-task sleep) gave epochs 'sleep',
    'wake', 'sleep_1' without a word, so --epoch sleep selected the first sleep only."""
    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.5, 12.0, 33.0])
    for a, b, tag in [(0, 10, "sleep"), (10, 20, "wake"), (20, 30, "sleep"), (30, 40, "wake"), (40, 50, "sleep")]:
        nwb.add_epoch(start_time=float(a), stop_time=float(b), tags=[tag])
    path = _write(nwb, tmp_path / "sleep_wake_sleep.nwb")
    with pytest.warns(UserWarning, match=r"^epochs: 2 names repeat in interval table 'epochs' \('sleep' x 3: epochs "
                                         r"'sleep', 'sleep_1', 'sleep_2'; 'wake' x 2: epochs 'wake', 'wake_1'\); each "
                                         r"row is its own epoch, so selecting the bare name \(select_epoch, --epoch\) "
                                         r"takes its first row only") as record:
        rec = read_nwb(path)
    # attributed to the caller of read_nwb (here), as read_nwb's other warnings are
    assert [w.filename for w in record if re.search(r"repeats? in interval table", str(w.message))] == [__file__]
    assert rec.epochs == {"sleep": (0.0, 10.0), "wake": (10.0, 20.0), "sleep_1": (20.0, 30.0),
                          "wake_1": (30.0, 40.0), "sleep_2": (40.0, 50.0)}
    # the rows of another interval table named by a label column: the same
    from pynwb.epoch import TimeIntervals

    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.5, 12.0, 33.0])
    states = TimeIntervals(name="states", description="behavioural states")
    states.add_column("label", "state")
    for a, b, label in [(0, 10, "run"), (10, 20, "still"), (20, 30, "run")]:
        states.add_row(start_time=float(a), stop_time=float(b), label=label)
    nwb.add_time_intervals(states)
    with pytest.warns(UserWarning, match=r"^epochs: 1 name repeats in interval table 'states' \('run' x 2: epochs "
                                         r"'run', 'states:run'\)") as record:
        rec = read_nwb(_write(nwb, tmp_path / "states.nwb"))
    # (it was attributed to the frame above this test: stacklevel 4 from read_nwb itself)
    assert [w.filename for w in record if re.search(r"repeats? in interval table", str(w.message))] == [__file__]
    assert rec.epochs["run"] == (0.0, 10.0) and rec.epochs["states:run"] == (20.0, 30.0)
    nwb = _nwbfile()  # names that do not repeat: no such warning
    nwb.add_unit(spike_times=[0.5, 12.0, 33.0])
    nwb.add_epoch(start_time=0.0, stop_time=10.0, tags=["sleep"])
    nwb.add_epoch(start_time=10.0, stop_time=40.0, tags=["wake"])
    path = _write(nwb, tmp_path / "once.nwb")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        read_nwb(path)
    # (this looked for 'repeat in the epochs table', words the warning never had, so it could not fail)
    assert not [w for w in record if re.search(r"repeats? in interval table", str(w.message))]


def test_nwb_rows_of_a_tagged_interval_table_without_a_tag_become_no_epoch_of_their_own(tmp_path):
    """A foreign 'states' table tagged run, (none), (none), run gave epochs 'run', '', 'states:' and
    'states:run': each untagged row an epoch named '' or 'states:', and the repeated-name warning
    listed "'' x 2". A row without a name is in the table's own epoch only, as the module says."""
    from pynwb.epoch import TimeIntervals

    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.5, 12.0, 33.0])
    states = TimeIntervals(name="states", description="behavioural states")
    states.add_column("tags", "state", index=True)
    for a, b, tags in [(0, 10, ["run"]), (10, 20, []), (20, 30, []), (30, 40, ["run"])]:
        states.add_row(start_time=float(a), stop_time=float(b), tags=tags)
    nwb.add_time_intervals(states)
    with pytest.warns(UserWarning, match=r"^epochs: 1 name repeats in interval table 'states' \('run' x 2: epochs "
                                         r"'run', 'states:run'\); each"):
        rec = read_nwb(_write(nwb, tmp_path / "states.nwb"))
    assert rec.epochs == {"states": (0.0, 40.0), "run": (0.0, 10.0), "states:run": (30.0, 40.0)}
    assert rec.select_epoch("states").n_spikes == 3


def test_nwb_units_without_any_spike_and_nothing_spanning_the_file_are_refused_as_read_npz_refuses_them(tmp_path):
    """A units table of two units with no spike time (and no epochs or trials) read as a recording of
    no time (time_domain None) without a word; read_npz refuses the same arrays, naming the file.
    With an epoch to span it the silent recording is read."""
    nwb = _nwbfile()
    nwb.add_unit(spike_times=[])
    nwb.add_unit(spike_times=[])
    path = _write(nwb, tmp_path / "silent units.nwb")
    with pytest.raises(RecordingValidationError, match=r"^time_domain: expected \(start, stop\) seconds, got none and no "
                                                       r"spike to span it \(2 units named in .*silent units\.nwb, none "
                                                       r"with a spike\), which would give a recording of no time; add an "
                                                       r"epochs row"):
        read_nwb(path)
    nwb = _nwbfile()
    nwb.add_unit(spike_times=[])
    nwb.add_epoch(start_time=0.0, stop_time=60.0, tags=["rest"])
    rec = read_nwb(_write(nwb, tmp_path / "silent_with_epoch.nwb"))
    assert rec.n_units == 1 and rec.n_spikes == 0 and rec.time_domain == (0.0, 60.0)


def test_nwb_units_without_spikes_are_kept_and_named_in_a_warning(tmp_path):
    """A unit with no spike time was kept without a word (read_phy and read_nelpy_linear_track leave
    such units out with a count); it stays a unit, named and counted in a warning; a file write_nwb
    wrote (a generated unit may never fire) reads back without it."""
    nwb = _nwbfile()
    nwb.add_unit_column("unit_name", "name")
    nwb.add_unit(spike_times=[0.5, 12.0], unit_name="c1")
    nwb.add_unit(spike_times=[], unit_name="c2")
    nwb.add_unit(spike_times=[3.0], unit_name="c3")
    path = _write(nwb, tmp_path / "a silent unit.nwb")
    with pytest.warns(UserWarning, match=r"^units: 1 of 3 units in .*a silent unit\.nwb have no spike time \(units\[1\] "
                                         r"\('c2'\)\); kept as units that never fire"):
        rec = read_nwb(path)
    assert rec.unit_names == ["c1", "c2", "c3"] and rec.n_spikes == 3
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        back = read_nwb(write_nwb(rec, tmp_path / "ours.nwb"))
    assert back.unit_names == rec.unit_names
    assert not [w for w in record if "no spike time" in str(w.message)]


def test_nwb_zero_length_stimulus_rows_are_dropped_and_counted(tmp_path):
    """A stimulus-name interval table with a row whose stop equals its start: 141b949 dropped only
    NaN rows, so the whole file was still refused ("stimulus.intervals[1]: ... stop > start"); the
    row is dropped with a count, the other presentations kept with their names."""
    from pynwb.epoch import TimeIntervals

    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.5, 12.0, 33.0])
    table = TimeIntervals(name="presentations", description="clips")
    table.add_column("stimulus_name", "clip")
    for i, (a, b) in enumerate([(0, 1), (10, 10), (20, 21)]):
        table.add_row(start_time=float(a), stop_time=float(b), stimulus_name=f"c{i}")
    nwb.add_time_intervals(table)
    path = _write(nwb, tmp_path / "zero_stim.nwb")
    with pytest.warns(UserWarning, match=r"stimulus: dropped 1 of 3 rows of interval table 'presentations' of "
                                         r"zero length"):
        rec = read_nwb(path)
    np.testing.assert_array_equal(rec.stimulus.intervals, [[0, 1], [20, 21]])
    assert [rec.stimulus.names[i] for i in rec.stimulus.ids] == ["c0", "c2"]


def test_nwb_empty_unit_name_is_refused_naming_the_unit(tmp_path):
    """An empty unit_name was accepted and gave the unit token "<session>/" (a name of whitespace only
    becomes "unit"); it is refused naming the units row, its id and the column."""
    nwb = _nwbfile()
    nwb.add_unit_column("unit_name", "name")
    for i, name in enumerate(["", "b"]):
        nwb.add_unit(spike_times=[0.1 + i, 0.2 + i], unit_name=name, id=10 + i)
    path = _write(nwb, tmp_path / "empty_name.nwb")
    with pytest.raises(RecordingValidationError, match=r"^units: expected a name for every unit in column 'unit_name' "
                                                       r"of .*empty_name\.nwb, units\[0\] \(id 10\) has ''"):
        read_nwb(path)


def test_nwb_unit_names_with_whitespace_become_usable_tokens(tmp_path):
    """Unit names such as "unit 0" were kept, and every unit token was refused for its whitespace,
    which `neuroformer train --data` could not rename; they become "unit_0" (or "unit_0_1" when
    another unit is already "unit_0")."""
    from hf_neuroformer import NeuroformerTokenizer

    nwb = _nwbfile()
    nwb.add_unit_column("unit_name", "name")
    for i, name in enumerate(["unit 0", "unit_0", "CA1 cell\t7"]):
        nwb.add_unit(spike_times=[0.1 + i, 0.2 + i], unit_name=name)
    path = _write(nwb, tmp_path / "spaced_units.nwb")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = read_nwb(path)
    said = [str(w.message) for w in caught]
    assert [m for m in said if m.startswith("units:")] == [
        f"units: 2 unit names in {path} hold whitespace, replaced by '_' (e.g. 'unit 0' -> 'unit_0_1'), since a "
        "unit token '<session>/<unit name>' cannot hold it"], said  # the file's name too: 'unit_0_1' alone is in none
    assert [w.filename for w in caught if str(w.message).startswith("units:")] == [__file__]  # read_nwb's caller
    # the unit already named "unit_0" keeps its name; the replaced one that would repeat it gets the suffix
    assert rec.unit_names == ["unit_0_1", "unit_0", "CA1_cell_7"]
    assert len(NeuroformerTokenizer().add_units(rec)) == 3  # refused before: "holds whitespace"


def test_npz_unit_names_with_whitespace_become_usable_tokens(shared_data, tmp_path):
    """An .npz unit_names entry such as 'cell 1' was kept, and every unit token refused with a fix only Python
    can apply (`neuroformer train --data f.npz` has no flag to rename units); replaced by '_' with a warning, as
    read_nwb does. Names passed as unit_names= are the caller's: refused, not renamed, as SpikeRecording does."""
    from hf_neuroformer import NeuroformerTokenizer

    trains = load_recording(shared_data("nelpy_hippocampus/linear-track")).spike_trains()[:2]
    times = np.concatenate(trains)
    order = np.argsort(times, kind="stable")
    path = tmp_path / "cells.npz"
    np.savez(path, spike_times=times[order], unit_ids=np.repeat([0, 1], [len(t) for t in trains])[order],
             unit_names=np.array(["cell 1", "cell_2"]))
    with pytest.warns(UserWarning, match=r"^unit_names: 1 unit name in .*cells\.npz holds whitespace, replaced by "
                                         r"'_' \(e\.g\. 'cell 1' -> 'cell_1'\)") as caught:
        rec = read_npz(path)
    assert [w.filename for w in caught if "holds whitespace" in str(w.message)] == [__file__]
    assert rec.unit_names == ["cell_1", "cell_2"]
    assert len(NeuroformerTokenizer().add_units(rec)) == 2  # refused before: "holds whitespace"
    with pytest.raises(RecordingValidationError, match=r"^unit_names: expected names without whitespace .*unit 0 is "
                                                       r"'a b'"):
        read_npz(path, unit_names=["a b", "c"])


def test_dataframe_unit_labels_with_whitespace_become_usable_tokens(tmp_path):
    """A CSV whose unit labels are "cell 1" gave unit names every unit token refused for their
    whitespace (`neuroformer train --data spikes.csv` could not rename them)."""
    from hf_neuroformer import NeuroformerTokenizer

    df = pd.DataFrame({"time": [0.1, 0.2, 0.3], "unit": ["cell 1", "cell_1", "cell 2"]})
    with pytest.warns(UserWarning, match=r"unit: 2 unit labels hold whitespace, replaced by '_' in the unit names "
                                         r"\(e.g. 'cell 1' -> 'cell_1_1'\)"):
        rec = from_dataframe(df)
    assert rec.unit_names == ["cell_1_1", "cell_2", "cell_1"]  # labels sorted; "cell_1" keeps its own name
    assert len(NeuroformerTokenizer().add_units(rec)) == 3
    df.to_csv(tmp_path / "s.csv", index=False)
    with pytest.warns(UserWarning, match="hold whitespace"):
        assert load_recording(tmp_path / "s.csv").unit_names == rec.unit_names


def test_nwb_without_units_table(tmp_path):
    nwb = _nwbfile()
    nwb.add_epoch(start_time=0.0, stop_time=1.0, tags=["run"])
    path = _write(nwb, tmp_path / "no_units.nwb")
    with pytest.raises(RecordingValidationError, match="units") as err:
        read_nwb(path)
    assert "spike_times" in str(err.value) and "no units table" in str(err.value)


def test_nwb_with_empty_units_table(tmp_path):
    from pynwb.misc import Units

    nwb = _nwbfile()
    nwb.units = Units(name="units", description="no rows")
    path = _write(nwb, tmp_path / "empty_units.nwb")
    with pytest.raises(RecordingValidationError, match="units") as err:
        read_nwb(path)
    assert "empty units table" in str(err.value)


def test_nwb_whose_units_lie_in_a_processing_module_names_where_they_are(tmp_path):
    """A file whose sort was written into a processing module, not nwbfile.units, was refused with 'has no
    units table' alone; the refusal names the tables it holds elsewhere and how to read them."""
    from pynwb.misc import Units

    nwb = _nwbfile()
    units = Units(name="sorted_units")
    for k in range(3):
        units.add_unit(spike_times=[0.1 * (k + 1), 0.5])
    nwb.create_processing_module("ecephys", "sort").add(units)
    path = _write(nwb, tmp_path / "module_units.nwb")
    with pytest.raises(RecordingValidationError, match=r"has no units table; it holds 1 Units table elsewhere, which "
                       r"read_nwb does not read: 'processing/ecephys/sorted_units' \(3 units\) \(NWB keeps the sorted "
                       r"units in nwbfile\.units"):
        load_recording(path)


@pytest.mark.parametrize("bad, what", [(np.nan, "finite values"), (np.inf, "finite values"),
                                       (-0.5, "times >= 0 s")])
def test_nwb_bad_spike_time_names_the_unit_and_its_index(tmp_path, bad, what):
    # the error named "spike 2" of the recording sorted by time (a NaN sorts last), not where it is
    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.1, 0.2])
    nwb.add_unit(spike_times=[0.3, bad, 0.4], id=7)
    path = _write(nwb, tmp_path / "bad.nwb")
    with pytest.raises(RecordingValidationError, match=r"units\[1\] \('unit7'\)\.spike_times\[1\]: expected "
                                                       + what.replace(" ", r"\s")):
        read_nwb(path)


def test_nwb_one_bad_spike_time_is_counted_in_the_singular(tmp_path):
    # the error read "(1 such spike times in 1 unit(s))"
    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.1, np.nan, 0.2])
    nwb.add_unit(spike_times=[0.3, 0.4])
    path = _write(nwb, tmp_path / "one_bad.nwb")
    with pytest.raises(RecordingValidationError) as err:
        read_nwb(path)
    assert str(err.value).endswith("(1 such spike time in 1 unit)"), str(err.value)


def test_nwb_repeated_spike_times_and_obs_intervals_are_reported(tmp_path):
    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.1, 0.2, 0.2, 5.0], obs_intervals=[[0.0, 1.0]])  # 5.0: outside its interval
    nwb.add_unit(spike_times=[0.15, 2.0], obs_intervals=[[0.0, 6.0]])
    path = _write(nwb, tmp_path / "obs.nwb")
    with pytest.warns(UserWarning) as rec_w:
        rec = read_nwb(path)
    msgs = [str(w.message) for w in rec_w]
    assert any("1 spike in 1 unit repeats a spike time" in m and "'unit0': 1" in m for m in msgs), msgs
    assert any("obs_intervals" in m and "1 of 2 units" in m and "1 spikes lie outside" in m for m in msgs), msgs
    assert rec.n_spikes == 6  # repeats and spikes outside obs_intervals are kept


def test_nwb_obs_intervals_that_are_no_span_are_named_in_the_warning(tmp_path):
    """A NaN or reversed obs_interval made the warning say '0 to nan s' and counted its unit as not
    observed without saying why; the warning now counts such intervals and shows one."""
    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.1, 0.2, 5.0], obs_intervals=[[0.0, np.nan]])
    nwb.add_unit(spike_times=[0.15, 2.0], obs_intervals=[[6.0, 0.0]])
    nwb.add_unit(spike_times=[0.3, 4.0], obs_intervals=[[0.0, 6.0]])
    with pytest.warns(UserWarning, match=r"obs_intervals \(3 intervals, 0 to 6 s; 2 of them not finite or with stop <= "
                                         r"start, e.g. \[0\.0, nan\]\) that read_nwb does not apply"):
        read_nwb(_write(nwb, tmp_path / "bad_obs.nwb"))


def test_nwb_float32_obs_intervals_are_read_with_the_float32_warning(tmp_path):
    """obs_intervals stored as float32 (an h5py writer; pynwb writes float64) were widened without
    a word, while every other time field of the file is read with the reader's float32 warning."""
    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.1, 0.69, 5.0], obs_intervals=[[0.0, 0.7]])
    path = _write(nwb, tmp_path / "obs32.nwb")
    store_as_float32(path, ("units/obs_intervals",))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = read_nwb(path)
    notes = [str(w.message) for w in caught if "stored as float32" in str(w.message)]
    assert len(notes) == 1 and re.search(r"units\.obs_intervals are stored as float32, .*value 1: 0\.7 as float32 "
                                         r"is 0\.699999988079071 s", notes[0]), notes
    assert any("1 spikes lie outside their unit's obs_intervals" in str(w.message) for w in caught)
    assert rec.n_spikes == 3


def test_missing_files_name_the_path(tmp_path):
    for fn in (read_nwb, read_npz, read_steinmetz_spcount, load_recording):
        with pytest.raises(FileNotFoundError, match="nope"):
            fn(tmp_path / "nope.nwb")


def test_unknown_format_lists_supported(tmp_path):
    p = tmp_path / "spikes.xyz"
    p.write_text("x")
    with pytest.raises(ValueError, match=r"\.nwb.*\.npz.*\.mat"):
        load_recording(p)
    with pytest.raises(ValueError, match="sp_count"):
        load_recording(_write_mat(tmp_path / "other.mat", {"x": np.zeros(3)}))


def _write_mat(path, datasets):
    with h5py.File(path, "w") as f:
        for k, v in datasets.items():
            f[k] = v
    return path


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(spike_times=[0.2, 0.1], unit_ids=[0, 0]), "spike_times"),  # unsorted
        (dict(spike_times=[0.1, np.nan], unit_ids=[0, 0]), "spike_times"),  # non-finite
        (dict(spike_times=[-0.1, 0.1], unit_ids=[0, 0]), "spike_times"),  # negative
        (dict(spike_times=[0.1, 0.2], unit_ids=[0, 2], unit_names=["a", "b"]), "unit_ids"),  # out of range
        (dict(spike_times=[0.1, 0.2], unit_ids=[0, 1],
              behaviour={"speed": BehaviourSeries([0.0, 0.5, 0.5], [1.0, 2.0, 3.0])}), "behaviour['speed'].timestamps"),
        (dict(spike_times=[0.1, 0.2], unit_ids=[0, 1], time_domain=(0.0, 0.15)), "time_domain"),
    ],
)
def test_recording_validation_names_the_field(kwargs, field):
    with pytest.raises(RecordingValidationError) as err:
        SpikeRecording(**kwargs)
    assert str(err.value).startswith(field)


# ------------------------------------------------------------------------------ binned counts
@pytest.mark.parametrize(
    "counts, kwargs, field",
    [
        (np.array([[[1, -1]]]), {}, "counts"),
        (np.array([[[1.0, 0.5]]]), {}, "counts"),
        (np.array([[[1.0, np.inf]]]), {}, "counts"),
        (np.ones((2, 3)), {}, "counts"),
        (np.ones((1, 2, 3)), {"bin_size": 0.0}, "bin_size"),
        (np.ones((1, 2, 3)), {"trial_gap": -1.0}, "trial_gap"),
        (np.ones((1, 2, 3)), {"placement": "poisson"}, "placement"),
    ],
)
def test_binned_counts_bad_input(counts, kwargs, field):
    kw = {"bin_size": 0.01, **kwargs}
    with pytest.raises(RecordingValidationError) as err:
        from_binned_counts(counts, **kw)
    assert str(err.value).startswith(field)


def test_binned_counts_layout_and_placement():
    counts = np.zeros((2, 3, 2), dtype=np.int64)
    counts[0, 1, 0] = 2
    counts[1, 2, 1] = 1
    rec = from_binned_counts(counts, bin_size=0.5, trial_gap=1.0, placement="center")
    np.testing.assert_allclose(rec.trials, [[0.0, 1.5], [2.5, 4.0]])
    np.testing.assert_allclose(rec.spike_times, [0.75, 0.75, 3.75])
    np.testing.assert_array_equal(rec.unit_ids, [0, 0, 1])
    assert rec.time_domain == (0.0, 5.0)
    uni = from_binned_counts(counts, bin_size=0.5, trial_gap=1.0, seed=3)
    assert np.all((uni.spike_times[:2] >= 0.5) & (uni.spike_times[:2] < 1.0))
    assert 3.5 <= uni.spike_times[2] < 4.0


def test_steinmetz_file_in_other_orientation(tmp_path):
    counts = np.random.default_rng(0).integers(0, 3, size=(4, 5, 6)).astype(float)
    path = _write_mat(tmp_path / "t.mat", {"sp_count": counts.transpose(2, 1, 0), "label": np.array([[1.0, 0.0, -1.0, 1.0]])})
    with pytest.warns(UserWarning, match=r"read as \(units, bins, trials\) and transposed to \(4, 5, 6\)"):
        rec = load_recording(path, bin_size=0.02)
    assert rec.n_units == 6 and rec.trials.shape == (4, 2) and rec.n_spikes == counts.sum()
    np.testing.assert_array_equal(rec.trial_info["label"], [1, 0, -1, 1])


def test_steinmetz_per_unit_vectors_do_not_flip_the_trial_axis(tmp_path):
    # (4 trials, 5 bins, 6 units) with two per-trial labels and three per-unit vectors: the majority
    # of vector lengths (6) made the reader transpose it into 6 trials of 4 units, without a word
    counts = np.random.default_rng(0).integers(0, 3, size=(4, 5, 6)).astype(float)
    per_unit = {f"unit_{k}": np.arange(6.0).reshape(6, 1) for k in ("depth", "area", "quality")}
    path = _write_mat(tmp_path / "t.mat", {"sp_count": counts, "label": np.ones((4, 1)), "motorLabel": np.zeros((4, 1)),
                                           **per_unit})
    with pytest.warns(UserWarning, match="skipped dataset 'unit_depth'"):
        rec = load_recording(path, bin_size=0.02)
    assert rec.trials.shape == (4, 2) and rec.n_units == 6
    np.testing.assert_array_equal(rec.binned_counts(0.02, *rec.trials[1]), counts[1])


# ------------------------------------------------------------------------------ arrays / tables
def test_from_arrays_sorts():
    rec = from_arrays([0.3, 0.1, 0.2, 0.1], [1, 1, 0, 0])
    np.testing.assert_array_equal(rec.spike_times, [0.1, 0.1, 0.2, 0.3])
    np.testing.assert_array_equal(rec.unit_ids, [0, 1, 0, 1])


def test_from_dataframe_names_and_ints(tmp_path):
    df = pd.DataFrame({"time": [0.5, 0.1, 0.3], "unit": ["b", "a", "b"]})
    rec = from_dataframe(df)
    assert rec.unit_names == ["a", "b"]
    np.testing.assert_array_equal(rec.unit_ids, [0, 1, 1])
    ints = from_dataframe(pd.DataFrame({"t": [0.2, 0.1], "cell": [7, 3]}), time_col="t", unit_col="cell")
    assert ints.unit_names == ["unit3", "unit7"]
    np.testing.assert_array_equal(ints.unit_ids, [0, 1])
    df.to_csv(tmp_path / "s.csv", index=False)
    assert load_recording(tmp_path / "s.csv").unit_names == ["a", "b"]
    # an empty file failed with pandas' 'No columns to parse from file' (no file named), and a header without
    # rows gave a recording of no unit and no spike without a word
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(RecordingValidationError, match=r"empty\.csv: expected a table with one row per spike \(columns "
                                                       r"'time', 'unit'\), the file is empty"):
        load_recording(tmp_path / "empty.csv")
    df.iloc[:0].to_csv(tmp_path / "header.csv", index=False)
    with pytest.raises(RecordingValidationError, match=r"header\.csv: expected a table with one row per spike, it has "
                                                       r"columns \['time', 'unit'\] but no rows"):
        load_recording(tmp_path / "header.csv")
    with pytest.raises(RecordingValidationError, match="time"):
        from_dataframe(pd.DataFrame({"unit": [1]}))
    # an empty cell of the time column was 'spike_times: ... spike 1 (in the order given) is nan': neither the
    # column nor the row named
    with pytest.raises(RecordingValidationError, match=r"^t: expected a finite spike time \(s\) on every row, row 1 "
                                                       r"holds nan \(2 missing or non-finite in all\)"):
        from_dataframe(pd.DataFrame({"t": [0.2, None, np.inf], "cell": [7, 3, 3]}), time_col="t", unit_col="cell")
    # a negative time was named the same way ('spike_times ... spike 0 (in the order given)')
    with pytest.raises(RecordingValidationError, match=r"^time: expected spike times >= 0 s on every row, row 1 holds "
                                                       r"-0\.1 \(1 negative in all\); spike times are seconds"):
        from_dataframe(pd.DataFrame({"time": [0.2, -0.1], "unit": [1, 1]}))


def test_from_dataframe_byte_string_unit_labels_are_decoded(tmp_path):
    # a binary column (parquet written by other tools, h5py strings) gave units "b'cell_a'" (str() of bytes)
    df = pd.DataFrame({"time": [0.5, 0.1, 0.3], "unit": [b"cell_b", b"cell_a", b"cell_b"]})
    rec = from_dataframe(df)
    assert rec.unit_names == ["cell_a", "cell_b"]
    np.testing.assert_array_equal(rec.unit_ids, [0, 1, 1])


def test_from_dataframe_whole_float_unit_ids_are_named_as_integer_ids(tmp_path):
    # the same cluster ids stored as floats (a MATLAB export, a column that once held NaN) gave units "3.0",
    # "7.0" where integer ids give "unit3", "unit7": a model trained on one file knew none of the other's units
    ints = from_dataframe(pd.DataFrame({"time": [0.2, 0.1, 0.3], "unit": [7, 3, 7]}))
    floats = from_dataframe(pd.DataFrame({"time": [0.2, 0.1, 0.3], "unit": [7.0, 3.0, 7.0]}))
    assert floats.unit_names == ints.unit_names == ["unit3", "unit7"]
    np.testing.assert_array_equal(floats.unit_ids, ints.unit_ids)
    assert from_dataframe(pd.DataFrame({"time": [0.1, 0.2], "unit": [1.5, 2.0]})).unit_names == ["1.5", "2.0"]


def test_from_dataframe_unit_labels_of_mixed_types_are_not_merged_or_misnamed(shared_data):
    """Two tables concatenated, one unit column read as numbers and one as text or booleans: pandas
    takes True and 1 for one label, so two units became one without a word; 1 and '1' gave two units
    both named '1', refused as 'unit_names: ... repeated', a field the caller never passed. Both are
    refused naming the column; labels of one type read as before."""
    nel = load_recording(shared_data("nelpy_hippocampus/linear-track"))
    trains = nel.spike_trains()
    times = np.concatenate([trains[0], trains[1]])
    for a, b, msg in ((True, 1, r"unit: expected unit labels of one type, got booleans mixed with numbers \(1, True\)"),
                      (1, "1", r"unit: the labels 1 \(int\) and '1' \(str\) are different values that give the same "
                               r"unit name '1'")):
        labels = np.array([a] * len(trains[0]) + [b] * len(trains[1]), dtype=object)
        with pytest.raises(RecordingValidationError, match=msg):
            from_dataframe(pd.DataFrame({"time": times, "unit": labels}))
    labels = np.array(["1"] * len(trains[0]) + ["x"] * len(trains[1]), dtype=object)
    rec = from_dataframe(pd.DataFrame({"time": times, "unit": labels}))
    assert rec.unit_names == ["1", "x"] and np.bincount(rec.unit_ids).tolist() == [len(trains[0]), len(trains[1])]


def test_an_empty_unit_label_or_npz_unit_name_is_refused_when_read(shared_data, tmp_path):
    """A unit label '' in a table, or an .npz unit_names entry '', was kept as the unit name '' and refused only
    when tokenized (token '<session>/'); both are refused when read: the table naming its column and first
    row with the label, the .npz naming unit_names, the unit and the file."""
    trains = load_recording(shared_data("nelpy_hippocampus/linear-track")).spike_trains()
    times = np.concatenate([trains[0], trains[1]])
    labels = np.array(["x"] * len(trains[0]) + [""] * len(trains[1]), dtype=object)
    with pytest.raises(RecordingValidationError, match=rf"^unit: expected a name for every unit \(the unit labels\), "
                                                       rf"row {len(trains[0])} has '' \(1 of 2 units have none\); "
                                                       r"give every row a unit label"):
        from_dataframe(pd.DataFrame({"time": times, "unit": labels}))
    assert from_dataframe(pd.DataFrame({"time": times, "unit": labels}), unit_names=["a", "x"]).unit_names == ["a", "x"]
    order = np.argsort(times, kind="stable")
    np.savez(tmp_path / "m.npz", spike_times=times[order], unit_ids=np.repeat([0, 1], [len(t) for t in trains[:2]])[order],
             unit_names=np.array(["x", ""]))
    with pytest.raises(RecordingValidationError, match=r"^unit_names: expected a name for every unit, unit 1 has '' "
                                                       r"\(1 of 2 units have none\); .*\(reading .*m\.npz\)$"):
        read_npz(tmp_path / "m.npz")


def _differences(a, b, where="recording") -> list:
    """Every field of two recordings (or of their parts) that differs: value, dtype, shape, type, the
    order of names; floats compared bitwise, NaN equal to NaN."""
    import dataclasses

    if dataclasses.is_dataclass(a) or dataclasses.is_dataclass(b):
        if type(a) is not type(b):
            return [f"{where}: {type(a).__name__} vs {type(b).__name__}"]
        return [d for f in dataclasses.fields(a) for d in _differences(getattr(a, f.name), getattr(b, f.name),
                                                                       f"{where}.{f.name}")]
    if isinstance(a, dict) or isinstance(b, dict):
        if not (isinstance(a, dict) and isinstance(b, dict)) or list(a) != list(b):
            return [f"{where}: names {list(a)} vs {list(b)}"]
        return [d for k in a for d in _differences(a[k], b[k], f"{where}[{k!r}]")]
    if isinstance(a, list) and isinstance(b, np.ndarray) and b.dtype == object:  # a trial column given as a list
        a = np.array(a, dtype=object)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)) or a.dtype != b.dtype or a.shape != b.shape:
            return [f"{where}: {a!r:.80} vs {b!r:.80}"]
        if a.dtype == object:
            pairs = zip(a.ravel().tolist(), b.ravel().tolist())
            same = all(type(x) is type(y) and (x == y or (x != x and y != y)) for x, y in pairs)
        else:
            same = a.tobytes() == b.tobytes() if a.dtype.kind == "f" else np.array_equal(a, b)
        return [] if same else [f"{where}: values {a.ravel()[:4]} vs {b.ravel()[:4]}"]
    if type(a) is not type(b) or not (a == b or (a != a and b != b)):
        return [f"{where}: {a!r:.80} vs {b!r:.80}"]
    return []


def _everything_recording() -> SpikeRecording:
    """_small_recording with every other field a recording can hold set too: a time support of two
    intervals, epoch intervals, events (text, numbers, a missing label, unlabelled), a boolean and a
    NaN-holding behaviour series, an object trial column mixing booleans, numbers and None, session
    values, a stimulus description and unicode names."""
    rec = _small_recording()
    # none in the gap of the time support; unit 3 ("silent") left without a spike
    keep = ((rec.spike_times < 3.5) | (rec.spike_times >= 4.0)) & (rec.unit_ids != 3)
    ts = rec.behaviour["speed"].timestamps
    speed = rec.behaviour["speed"].values.copy()
    speed[::10] = np.nan
    return replace(
        rec, spike_times=rec.spike_times[keep], unit_ids=rec.unit_ids[keep],
        unit_names=["a", "b", "ünit_α", "silent"], unit_areas=["CA1", "CA1", "丘脑", ""],
        time_support=np.array([[0.0, 3.5], [4.0, 10.5]]),
        epoch_intervals={"task": np.array([[4.0, 5.0], [6.0, 9.5]])},
        trial_info={**rec.trial_info, "mixed": np.array([True, 1, None], dtype=object), "listed": ["a", 1, 2.5],
                    "grid": np.arange(6.0).reshape(3, 2)},
        behaviour={**rec.behaviour, "speed": BehaviourSeries(ts, speed, "cm/s"),
                   "moving": BehaviourSeries(ts, speed > 0.5, "")},
        events={"tone": EventSeries(np.array([4.0])),
                "licks": EventSeries(np.array([0.5, 1.0, 6.5]), np.array(["l", None, "r"], dtype=object), "lick port"),
                "reward": EventSeries(np.array([5.0, 7.0]), np.array([1.0, np.nan]))},
        stimulus=replace(rec.stimulus, description="grating or blank", names=["grating", "blank", "never shown"]),
        session_info={"accuracy": 0.75, "mouse": "Cori", "trials_done": 3, "trained": True},
    )


def test_npz_round_trip(tmp_path):
    """write_npz kept the spikes, units, time domain and session only: trials came back as "the real
    recording has no trials" in evaluate's PSTH, behaviour as nothing to decode, a generated
    recording's time support as recorded silence (each left out with a warning). Every field now
    comes back equal (floats bitwise, NaN, names, order and dtypes kept), without a warning."""
    rec = _everything_recording()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = write_npz(rec, tmp_path / "r.npz")
        back = read_npz(path)
    assert _differences(rec, back) == []
    assert back.behaviour["moving"].boolean and np.isnan(back.behaviour["speed"].values[0])
    assert back.events["licks"].labels.tolist() == ["l", None, "r"] and back.events["tone"].labels is None
    assert back.trial_info["mixed"].tolist() == [True, 1, None] and back.stimulus.names[2] == "never shown"
    # a list mixing text and numbers: numpy's array of it made them all text ('1'); kept apart
    assert back.trial_info["listed"].tolist() == ["a", 1, 2.5]
    assert load_recording(path).time_support.tolist() == [[0.0, 3.5], [4.0, 10.5]]
    # the comparison sees a difference (it is no test otherwise)
    assert _differences(rec, replace(back, epochs={"task": (4.0, 10.0), "pre": (0.0, 4.0)})) != []
    with pytest.raises(FileExistsError, match="overwrite"):
        write_npz(rec, path)
    np.savez(tmp_path / "bad.npz", spike_times=np.zeros(2))
    with pytest.raises(RecordingValidationError, match="unit_ids"):
        read_npz(tmp_path / "bad.npz")


def test_npz_round_trip_of_the_shared_recordings(a2929, zheng, allen, tmp_path):
    """The shared recordings through write_npz / read_npz: A2929's head angles, ripple events and 594
    ripple epoch intervals, Zheng's 450 trials with text columns, clip stimulus and boundary events,
    Allen's trial time support and orientation stimulus, all equal."""
    for name, rec in (("a2929", a2929), ("zheng", zheng), ("allen", allen)):
        assert _differences(rec, read_npz(write_npz(rec, tmp_path / f"{name}.npz"))) == [], name
    assert len(a2929.epoch_intervals["sleep_ripples"]) == 594 and len(zheng.trials) == 450


def test_npz_of_an_older_write_npz_reads_without_the_other_fields(a2929, tmp_path):
    """A file with the keys an older write_npz wrote (spikes, units, time domain, session) still reads,
    as a recording without the other fields."""
    np.savez(tmp_path / "old.npz", spike_times=a2929.spike_times, unit_ids=a2929.unit_ids,
             unit_names=np.asarray(a2929.unit_names), unit_areas=np.asarray(a2929.unit_areas),
             session=np.asarray(a2929.session), time_domain=np.asarray(a2929.time_domain))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        old = read_npz(tmp_path / "old.npz")
    np.testing.assert_array_equal(old.spike_times, a2929.spike_times)
    assert old.unit_names == a2929.unit_names and not old.behaviour and not old.events and old.time_support is None


def test_write_npz_refuses_what_it_cannot_hold_unless_told_to_drop_it(tmp_path):
    """Nothing is left out without a word: a trial column of objects .npz cannot hold without pickling is
    refused, naming the column, the row and drop=; with drop= the rest is written and read back;
    drop names only the fields that can be left out, and trials not without their columns."""
    rec = replace(_small_recording(), trial_info={"contrast": np.array([0.25, 0.5, 1.0]),
                                                  "spans": np.array([(1, 2), None, "x"], dtype=object)})
    with pytest.raises(RecordingValidationError, match=r"^trial_info\['spans'\]\[0\]: expected numbers, booleans, "
                       r"text or None, got tuple \(1, 2\).*drop=\('trial_info',\)"):
        write_npz(rec, tmp_path / "r.npz")
    assert not (tmp_path / "r.npz").exists()
    back = read_npz(write_npz(rec, tmp_path / "r.npz", drop="trial_info"))
    assert back.trial_info == {} and back.trials.tolist() == rec.trials.tolist() and sorted(back.behaviour) == ["speed", "xy"]
    back = read_npz(write_npz(rec, tmp_path / "s.npz", drop=("trials", "trial_info", "behaviour")))
    assert back.trials is None and not back.behaviour and back.stimulus.names == ["grating", "blank"]
    with pytest.raises(ValueError, match=r"^drop: 'trials' without 'trial_info', but the recording has trial_info "
                       r"\(\['contrast', 'spans'\]\).*add 'trial_info' to drop$"):
        write_npz(rec, tmp_path / "t.npz", drop=["trials"])
    with pytest.raises(ValueError, match=r"^drop: expected names of fields .* got 'spike_times'$"):
        write_npz(rec, tmp_path / "t.npz", drop=["spike_times"])
    with pytest.raises(RecordingValidationError, match=r"^unit_areas\[1\]: 'x\\x00' ends with NUL characters"):
        write_npz(replace(_small_recording(), unit_areas=["a", "x\x00", "", ""]), tmp_path / "t.npz")
    assert not (tmp_path / "t.npz").exists()


def test_read_npz_names_a_missing_or_malformed_member_of_the_other_fields(tmp_path):
    """A hand-made file that lists a behaviour series without its arrays, or epochs without their bounds,
    is refused naming the key it lacks and the file (not numpy's KeyError)."""
    base = dict(spike_times=np.array([0.1, 0.2]), unit_ids=np.array([0, 0]))
    np.savez(tmp_path / "b.npz", **base, behaviour_names=np.array(["speed"]), behaviour_units=np.array(["cm/s"]),
             behaviour_boolean=np.array([False]), behaviour_0_timestamps=np.array([0.1, 0.2]))
    with pytest.raises(RecordingValidationError, match=r"^behaviour_0_values: expected a key 'behaviour_0_values' in "
                       r".*b\.npz \(the values of behaviour\['speed'\]\)"):
        read_npz(tmp_path / "b.npz")
    np.savez(tmp_path / "e.npz", **base, epoch_names=np.array(["pre", "post"]), epoch_bounds=np.array([[0.0, 0.15]]))
    with pytest.raises(RecordingValidationError, match=r"^epoch_bounds: expected shape \(2, 2\), one \(start, stop\) "
                       r"per epoch name in .*e\.npz, got \(1, 2\)"):
        read_npz(tmp_path / "e.npz")



def test_read_npz_names_members_it_leaves_out_with_what_they_need(tmp_path):
    """behaviour_0_timestamps / behaviour_0_values without behaviour_names were counted as read by their
    names alone and left out without a word (the recording had no behaviour); a typo such as unit_name
    was named only as an 'ignored key'. Both are named, with what would read them."""
    base = dict(spike_times=np.array([0.1, 0.2, 0.4]), unit_ids=np.array([0, 1, 0]))
    ts = np.array([0.0, 0.2, 0.4])
    np.savez(tmp_path / "b.npz", **base, behaviour_0_timestamps=ts, behaviour_0_values=np.sin(ts),
             unit_name=np.array(["a", "b"]), trial_info_0=np.arange(3))
    with pytest.warns(UserWarning) as caught:
        rec = read_npz(tmp_path / "b.npz")
    assert rec.behaviour == {} and rec.unit_names == ["unit0", "unit1"]
    (msg,) = [str(w.message) for w in caught if "not read" in str(w.message)]
    assert msg.startswith("read_npz: 4 keys of ") and "b.npz not read, left out of the recording: " \
        "['behaviour_0_timestamps', 'behaviour_0_values', 'trial_info_0', 'unit_name']" in msg
    assert "'unit_name': did you mean 'unit_names'?" in msg
    assert "'behaviour_0_timestamps', 'behaviour_0_values': read only for the entries 'behaviour_names' lists" in msg
    assert "'trial_info_0': read only for the entries 'trial_info_names' lists" in msg
    # a complete write_npz file reads without the warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_npz(write_npz(rec, tmp_path / "whole.npz"))

# ------------------------------------------------------------------------------ conftest helper
def test_shared_path_fails_never_skips(monkeypatch, tmp_path):
    """A missing recording fails the test, with or without CI=true (outside CI it was skipped, so
    a machine without ../shared/data reported the data tests as skipped instead of failed)."""
    from conftest import shared_path

    monkeypatch.setenv("NEUROFORMER_SHARED_DATA", str(tmp_path))
    for ci in ("true", None):
        if ci is None:
            monkeypatch.delenv("CI", raising=False)
        else:
            monkeypatch.setenv("CI", ci)
        # a skip is a BaseException that pytest.raises(Failed) would let through (reported as a
        # skip, not a failure of this test): catch any outcome and name it
        try:
            shared_path("absent.nwb")
            outcome = None
        except BaseException as err:  # noqa: BLE001 (pytest's outcomes are BaseExceptions)
            outcome = err
        assert type(outcome) is pytest.fail.Exception, (ci, type(outcome))
        assert "shared data file missing" in str(outcome) and "absent.nwb" in str(outcome)
    (tmp_path / "present.npz").write_bytes(b"")
    assert shared_path("present.npz") == tmp_path / "present.npz"


def test_select_units_keeps_their_spikes_and_renumbers(shared_data):
    from hf_neuroformer.io import load_recording

    rec = load_recording(shared_data("steinmetz2019_spcount/NS_sp_count.mat"))
    sub = rec.select_units([10, 3, "unit500"])
    assert sub.unit_names == ["unit10", "unit3", "unit500"]
    for new, old in enumerate([10, 3, 500]):
        np.testing.assert_array_equal(sub.spike_times[sub.unit_ids == new], rec.spike_times[rec.unit_ids == old])
    assert sub.n_spikes == sum(int(np.sum(rec.unit_ids == u)) for u in (10, 3, 500))
    np.testing.assert_array_equal(sub.trials, rec.trials)
    assert sub.time_domain == rec.time_domain
    for bad, msg in [([], "empty"), ([3, 3], "repeats"), ([806], "outside"), (["nope"], "not a unit name")]:
        with pytest.raises(ValueError, match=msg):
            rec.select_units(bad)


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask022", "umask027"])
def test_atomic_outputs_get_the_umask_permissions(a2929, tmp_path, umask):
    """write_nwb went through mkstemp (0600) and prepare_windows through mkdtemp (0700): a
    generated NWB file or a prepared folder was private on a shared filesystem."""
    import stat

    import hf_neuroformer as nf
    from hf_neuroformer.windows import prepare_windows

    part = quiet(a2929.select_epoch, "wake").restrict(700.0, 760.0)
    old = os.umask(umask)
    try:
        nwb = write_nwb(part, tmp_path / "gen.nwb")
        cfg = nf.NeuroformerConfig(split_block_length=5.0, max_past_length=128)
        prepare_windows(part, tmp_path / "prep", cfg, progress=False)
        plain_file, plain_dir = tmp_path / "plain.txt", tmp_path / "plain_dir"
        plain_file.write_text("x")
        plain_dir.mkdir()
    finally:
        os.umask(old)
    assert stat.S_IMODE(nwb.stat().st_mode) == stat.S_IMODE(plain_file.stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE((tmp_path / "prep").stat().st_mode) == stat.S_IMODE(plain_dir.stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((tmp_path / "prep" / "manifest.json").stat().st_mode) == 0o666 & ~umask
    assert quiet(read_nwb, nwb).n_spikes == part.n_spikes


def test_interval_table_epoch_selects_the_union_of_its_rows(a2929, tmp_path):
    """--epoch sleep_ripples took the span of the 594 ripples (0.736-599.738 s: 46521 spikes, nearly
    all of sleep) instead of the 37.6 s inside them."""
    from hf_neuroformer import NeuroformerConfig
    from hf_neuroformer.windows import plan_splits

    rows = a2929.epoch_intervals["sleep_ripples"]
    assert rows.shape == (594, 2) and a2929.epochs["sleep_ripples"] == (rows[:, 0].min(), rows[:, 1].max())
    st = a2929.spike_times
    by_hand = int(sum(np.sum((st >= a) & (st < b)) for a, b in rows))  # the ripples do not overlap
    rip = a2929.select_epoch("sleep_ripples")
    assert rip.n_spikes == by_hand < 0.2 * a2929.select_epoch("sleep").n_spikes
    assert rip.duration == pytest.approx(float(np.sum(rows[:, 1] - rows[:, 0]))) and 37.0 < rip.duration < 38.5
    assert len(rip.support) == 594 and rip.time_domain == a2929.epochs["sleep_ripples"]
    assert len(rip.events["sleep_ripples"].times) == 594  # every onset lies in its ripple
    beh = rip.behaviour["sleep_ripples"].timestamps  # the ripple peaks
    assert beh.size == 594
    # a 63 ms ripple cannot hold a window with a 1 s past: the planner refuses, naming the numbers
    with pytest.raises(ValueError, match=r"594 intervals \(37\.6\d\d s in all\) of at most 0\.\d+ s .*none holds a window "
                                         r"with its past \(1\.1 s\)"):
        plan_splits(rip, NeuroformerConfig())
    # one-interval epochs are unchanged, and the rows survive write_nwb -> read_nwb
    part = quiet(a2929.restrict, 100.0, 200.0)
    back = quiet(read_nwb, write_nwb(part, tmp_path / "part.nwb"))
    np.testing.assert_array_equal(back.epoch_intervals["sleep_ripples"], part.epoch_intervals["sleep_ripples"])
    assert back.select_epoch("sleep_ripples").n_spikes == part.select_epoch("sleep_ripples").n_spikes > 0


def test_restrict_keeps_an_interval_epoch_to_its_rows(a2929):
    """After restrict() an epoch of several intervals kept the clipped span of the whole table while
    its rows were clipped: with one ripple left select_epoch took that span (5.5 s around a 40 ms
    ripple), with none left the whole restricted span (18 s of non-ripple data). The epoch is now
    the span of the rows left, and an epoch none of whose rows is left is dropped."""
    rows = a2929.epoch_intervals["sleep_ripples"]
    k = int(np.argmax(rows[1:, 0] - rows[:-1, 1]))  # the longest gap between ripples (18.8 s)
    one = quiet(a2929.restrict, rows[k, 0] - 0.5, rows[k, 1] + 5.0)
    np.testing.assert_array_equal(one.epoch_intervals["sleep_ripples"], rows[k:k + 1])
    assert one.epochs["sleep_ripples"] == (rows[k, 0], rows[k, 1])
    rip = one.select_epoch("sleep_ripples")
    st = a2929.spike_times
    assert rip.time_domain == (rows[k, 0], rows[k, 1])
    assert rip.n_spikes == int(np.sum((st >= rows[k, 0]) & (st < rows[k, 1])))
    none = quiet(a2929.restrict, rows[k, 1] + 0.5, rows[k + 1, 0] - 0.5)
    assert "sleep_ripples" not in none.epochs and "sleep_ripples" not in none.epoch_intervals
    assert "sleep" in none.epochs  # an epoch of one interval is clipped as before
    with pytest.raises(KeyError, match="sleep_ripples"):
        none.select_epoch("sleep_ripples")
    # built by hand with a span wider than its one row: the row is selected
    wide = SpikeRecording([0.5, 2.5, 5.0], [0, 0, 0], time_domain=(0.0, 10.0), epochs={"x": (0.0, 10.0)},
                          epoch_intervals={"x": [[2.0, 3.0]]})
    assert wide.select_epoch("x").time_domain == (2.0, 3.0) and wide.select_epoch("x").n_spikes == 1


def test_ripple_epoch_splits_keep_every_interval_that_holds_a_window(shared_data):
    """An epoch of 594 ripples (21-286 ms): one ripple too short for a window used to refuse the
    whole epoch ("blocks of 0.021 s are too short"). Now intervals shorter than a window with its
    past are left out and counted, ripples closer than the split gap go to one split together,
    and every window with its past lies inside one ripple of one split."""
    from hf_neuroformer import NeuroformerConfig
    from hf_neuroformer.windows import SPLITS, plan_splits, window_starts_for_split

    rip = quiet(load_recording, shared_data(A2929), epoch="sleep_ripples")
    sup = rip.support
    cfg = NeuroformerConfig(current_window=0.02, past_window=0.03, dt_resolution=0.002, split_block_length=1.0)
    span = cfg.current_window + cfg.past_window
    n_short = int(np.sum(np.diff(sup, axis=1) < span))
    assert 0 < n_short < len(sup)
    with pytest.warns(UserWarning, match=rf"{n_short} of the {len(sup)} intervals .* shorter than a window with its past"):
        plan = plan_splits(rip, cfg)
    owner = {}
    for s in SPLITS:
        starts, _ = window_starts_for_split(plan, s, cfg, stride=cfg.current_window)
        assert len(starts) > 50, s
        k = np.searchsorted(sup[:, 0], starts - cfg.past_window + 1e-9, side="right") - 1
        assert np.all(starts + cfg.current_window <= sup[k, 1] + 1e-9), s  # window and past inside one ripple
        for i in np.unique(k):
            owner.setdefault(int(i), set()).add(s)
    assert all(len(v) == 1 for v in owner.values())
    # a split gap so large that the ripples form fewer groups than splits: refused, naming split_gap
    with pytest.raises(ValueError, match=r"split_gap: the \d+ intervals .* form only \d groups? .* for 3 splits"):
        quiet(plan_splits, rip, NeuroformerConfig(current_window=0.02, past_window=0.03, dt_resolution=0.002,
                                                  split_block_length=1.0, split_gap=50.0))
    # ripples closer than the split gap never sit in different splits
    for i in range(len(sup) - 1):
        if sup[i + 1, 0] - sup[i, 1] < cfg.split_gap and i in owner and i + 1 in owner:
            assert owner[i] == owner[i + 1], i


def test_read_nwb_warns_of_repeated_spikes_as_from_arrays_does(tmp_path):
    """read_nwb wrote its own repeated-spike warning beside io.arrays' (same rule: spikes repeating a
    spike time of their unit, kept, counted per unit), and named the first five units in file order
    rather than the five with most repeats: here units 0-4 (one repeat each) and not unit 6 (three).
    It now gives from_arrays' warning, with the file's path and the same units named, at its caller."""
    trains = [[0.1, 0.2, 0.2] for _ in range(5)] + [[0.3]] + [[0.4, 0.4, 0.4, 0.4]]
    nwb = _nwbfile()
    for train in trains:
        nwb.add_unit(spike_times=train)
    path = _write(nwb, tmp_path / "repeats.nwb")
    times = np.concatenate(trains)
    units = np.repeat(np.arange(len(trains)), [len(t) for t in trains])
    with pytest.warns(UserWarning, match="a spike time of the same unit") as from_nwb:
        read_nwb(path)
    with pytest.warns(UserWarning, match="a spike time of the same unit") as from_list:
        from_arrays(times, units, unit_names=[f"unit{i}" for i in range(len(trains))])
    got = [str(w.message) for w in from_nwb if "a spike time of the same unit" in str(w.message)]
    want = [str(w.message) for w in from_list if "a spike time of the same unit" in str(w.message)]
    assert len(got) == len(want) == 1 and got[0].startswith(f"units of {path}: 8 spikes in 6 units repeat ")
    # the same words up to the fix each reader suggests
    assert got[0].split(": ", 1)[1].rsplit("; ", 1)[0] == want[0].split(": ", 1)[1].rsplit("; ", 1)[0]
    assert "('unit6': 3, 'unit0': 1, 'unit1': 1, 'unit2': 1, 'unit3': 1, ...)" in got[0]
    assert [w.filename for w in from_nwb if "repeat" in str(w.message)] == [__file__]


def test_read_nwb_of_generated_spikes_does_not_blame_spike_sorting(tmp_path):
    # generate_spikes puts spikes at dt-bin centres, so a unit sampled twice in one bin repeats its
    # time; read_nwb of such a file (write_nwb of generate_spikes output) warned "check the spike
    # sorting export". The same times in a recording of another session still warn.
    times, units = np.array([0.0025, 0.0025, 0.0125]), np.array([0, 0, 1])
    for session, warned in (("A2929-generated", False), ("A2929-generated-sample1", False), ("A2929", True)):
        path = write_nwb(from_arrays(times, units, session=session), tmp_path / f"{session}.nwb")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rec = read_nwb(path)
        msgs = [str(w.message) for w in caught if "a spike time of the same unit" in str(w.message)]
        assert bool(msgs) == warned, (session, msgs)
        assert rec.n_spikes == 3 and rec.session == session  # the repeat is kept either way


def test_write_nwb_of_a_list_of_samples_names_recording(tmp_path):
    # generate_spikes(..., num_samples=2) returns a list; write_nwb of it failed with
    # "AttributeError: 'list' object has no attribute 'validate'"
    rec = from_arrays(np.array([0.0025, 0.0125]), np.array([0, 1]), session="s-generated-sample0")
    with pytest.raises(TypeError, match=r"^recording: expected a SpikeRecording, got list \(2 recordings, .*num_samples"):
        write_nwb([rec, rec], tmp_path / "gen.nwb")
    assert not (tmp_path / "gen.nwb").exists()


def test_npz_of_units_without_spikes_is_written_readable_or_refused(tmp_path):
    """Break test: write_npz of a recording whose units have no spikes and that has no time_domain
    wrote a file read_npz refused ("add a 'time_domain' array ... or pass time_domain="). With a
    time support, its extent is written as the time domain; with nothing that spans the recording,
    or with no unit (read_npz refuses a file of no unit too), write_npz refuses by name and writes no
    file."""
    empty = dict(spike_times=np.zeros(0), unit_ids=np.zeros(0, dtype=np.int64), unit_names=["a", "b"])
    silent = SpikeRecording(**empty, time_support=np.array([[1.0, 2.0], [3.0, 4.5]]))
    assert silent.time_domain is None
    path = write_npz(silent, tmp_path / "silent.npz")
    back = load_recording(path)
    assert back.time_domain == (1.0, 4.5) and back.unit_names == ["a", "b"] and back.n_spikes == 0
    assert back.time_support.tolist() == [[1.0, 2.0], [3.0, 4.5]]  # kept (it was left out, with a warning)
    with pytest.raises(RecordingValidationError, match=r"^time_domain: expected \(start, stop\) seconds, got none and no "
                       r"spike to span it \(2 units named in the recording written to .*nothing\.npz, none with a "
                       r"spike\).*dataclasses\.replace\(recording, time_domain=\(start, stop\)\)"):
        write_npz(SpikeRecording(**empty), tmp_path / "nothing.npz")
    assert not (tmp_path / "nothing.npz").exists()
    with pytest.raises(RecordingValidationError, match=r"^spike_times, unit_ids: expected at least one unit, got no "
                       r"spike and no unit_names in the recording written to .*none\.npz"):
        write_npz(SpikeRecording(**{**empty, "unit_names": []}, time_domain=(0.0, 1.0)), tmp_path / "none.npz")
    assert not (tmp_path / "none.npz").exists()


def test_write_npz_validates_the_recording_before_writing_anything(tmp_path):
    """write_nwb validates the recording, write_npz did not: a recording whose session was set to ''
    after construction was written with session '' and read back under the file's stem. write_npz now
    refuses it as validate() does, writes no file, and leaves a file it was asked to overwrite as it was."""
    rec = SpikeRecording(spike_times=[0.1, 0.2, 0.3], unit_ids=[0, 1, 0], time_domain=(0.0, 1.0), session="m")
    empty = replace(rec)
    empty.session = ""
    said = r"^session: expected a session name, got ''"
    with pytest.raises(RecordingValidationError, match=said):
        write_npz(empty, tmp_path / "never.npz")
    assert not (tmp_path / "never.npz").exists()
    kept = write_npz(rec, tmp_path / "kept.npz")
    before = kept.read_bytes()
    with pytest.raises(RecordingValidationError, match=said):
        write_npz(empty, kept, overwrite=True)
    assert kept.read_bytes() == before
    assert read_npz(kept).session == "m"


def test_write_npz_overwrites_through_a_new_file_so_other_links_keep_the_old_one(tmp_path):
    """write_npz wrote into the destination itself (``open(path, "wb")``): an overwrite truncated
    the old file before writing (an interrupted one lost it) and rewrote every other hard link to
    it. It now writes a temporary beside it and moves it into place, as write_nwb does: a second
    name of the old file keeps the old recording, the destination reads the new one, no temporary
    is left, and the file gets the umask's permissions (not mkstemp's 0600)."""
    import os
    import stat

    old = SpikeRecording(spike_times=[0.1, 0.2], unit_ids=[0, 1], time_domain=(0.0, 1.0), session="old")
    new = SpikeRecording(spike_times=[0.3], unit_ids=[0], time_domain=(0.0, 2.0), session="new")
    dest = write_npz(old, tmp_path / "rec.npz")
    os.link(dest, tmp_path / "backup.npz")
    write_npz(new, dest, overwrite=True)
    assert read_npz(tmp_path / "backup.npz").session == "old"
    assert read_npz(dest).session == "new" and read_npz(dest).time_domain == (0.0, 2.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.npz", "rec.npz"]
    mask = os.umask(0o022)
    os.umask(mask)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o666 & ~mask


def test_a_file_written_at_the_output_while_the_writer_writes_is_kept_without_overwrite(tmp_path, a2929):
    """write_nwb / write_npz checked an existing output before building the file and then moved the
    finished temporary over the path with os.replace: a file written there meanwhile (another run of
    'neuroformer generate' with the same --output, whose own check had passed too) was replaced
    without a word, though overwrite was False. The move is now a hard link that fails when the path
    exists: FileExistsError, the other file kept, no temporary left; with overwrite=True it is
    replaced, as before."""
    from hf_neuroformer.io.permissions import write_through_temporary

    rec = a2929.select_units(range(3)).restrict(600.0, 610.0)
    out = tmp_path / "gen.nwb"

    def write_while_another_run_writes(tmp):
        write_nwb(rec, tmp, overwrite=True)  # this run's file, into its temporary
        out.write_bytes(b"the other run's file")  # meanwhile another run finished the same output

    with pytest.raises(FileExistsError, match=r"gen\.nwb already exists \(written while this file was being "
                                              r"written.*pass overwrite=True"):
        write_through_temporary(out, write_while_another_run_writes, ".tmp.nwb", overwrite=False)
    assert out.read_bytes() == b"the other run's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen.nwb"]  # no temporary left behind
    write_through_temporary(out, write_while_another_run_writes, ".tmp.nwb", overwrite=True)
    _assert_same(rec, quiet(read_nwb, out))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen.nwb"]
    # the writers' own path without a race: a new file is written, an existing one refused
    write_nwb(rec, tmp_path / "new.nwb")
    _assert_same(rec, quiet(read_nwb, tmp_path / "new.nwb"))
    with pytest.raises(FileExistsError):
        write_npz(rec, out)

def test_a_broken_symbolic_link_at_the_output_is_named_as_one_without_overwrite(tmp_path):
    """A dangling symbolic link at the output path (its target removed) passed the existing-file
    check (Path.exists follows the link) and was refused only when the finished file was linked into
    place, as a file "written while this file was being written: another run...?", which sent the
    user looking for another run. It is now refused before the write (write_npz / write_nwb) or at
    the move (write_through_temporary), named as a broken link with its target; the link is kept."""
    from hf_neuroformer.io.permissions import write_through_temporary

    rec = SpikeRecording(spike_times=[0.1, 0.2], unit_ids=[0, 1], time_domain=(0.0, 1.0), session="m")
    out = tmp_path / "gen.npz"
    out.symlink_to(tmp_path / "removed.npz")
    said = r"gen\.npz is a broken symbolic link \(to '.*removed\.npz', which does not exist\).*pass overwrite=True"
    with pytest.raises(FileExistsError, match=said) as refused:
        write_npz(rec, out)
    assert "written while" not in str(refused.value)
    with pytest.raises(FileExistsError, match=said) as refused:
        write_through_temporary(out, lambda tmp: write_npz(rec, tmp, overwrite=True), ".tmp.npz", overwrite=False)
    assert "written while" not in str(refused.value)
    assert out.is_symlink() and os.readlink(out) == str(tmp_path / "removed.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen.npz"]  # no temporary left behind
    write_npz(rec, out, overwrite=True)  # overwrite replaces the link itself, not a file at its target
    assert not out.is_symlink() and read_npz(out).session == "m"
    assert not (tmp_path / "removed.npz").exists()


def test_tables_and_npz_without_a_session_are_named_after_their_file(a2929, tmp_path):
    """Every .csv / .parquet table and every .npz without a 'session' key was session 'session0', so two
    animals' files shared unit tokens ('session0/unit0'): a model trained on one took the other for its
    own units (generate / decode warned only that the spikes differ)."""
    rec = a2929.select_units(range(3)).restrict(600.0, 660.0)
    df = pd.DataFrame({"time": rec.spike_times, "unit": rec.unit_ids})
    df.to_csv(tmp_path / "mouse 1.csv", index=False)
    df.to_csv(tmp_path / "mouse2.csv", index=False)
    np.savez(tmp_path / "mouse3.npz", spike_times=rec.spike_times, unit_ids=rec.unit_ids)
    assert load_recording(tmp_path / "mouse 1.csv").session == "mouse_1"  # a token holds no whitespace
    assert load_recording(tmp_path / "mouse2.csv").session == "mouse2"
    assert load_recording(tmp_path / "mouse3.npz").session == "mouse3"
    assert load_recording(tmp_path / "mouse2.csv", session="m").session == "m"  # a given one is kept
    write_npz(rec, tmp_path / "ours.npz")
    assert load_recording(tmp_path / "ours.npz").session == rec.session  # the stored key wins


def test_a_parquet_table_of_float32_times_is_read_with_the_float32_warning(a2929, tmp_path):
    """A .parquet table storing its spike times as float32 was refused by load_recording ('pass float64
    times from the source', which a file cannot), while every other reader reads a file's float32 times
    with their rounding and a warning (the file holds no more precision). The table now reads so, the
    warning naming the file and column; from_dataframe of a caller's float32 frame is still refused."""
    rec = a2929.select_units(range(3)).restrict(600.0, 660.0)
    df = pd.DataFrame({"t": rec.spike_times.astype(np.float32), "unit": rec.unit_ids})
    df.to_parquet(tmp_path / "f32.parquet")
    with pytest.warns(UserWarning, match=r"^load_recording: f32.parquet\['t'\] times are stored as float32, which "
                                         r"rounds times of up to 659.\d+ s by as much as"):
        back = load_recording(tmp_path / "f32.parquet", time_col="t")
    assert back.spike_times.tolist() == sorted(rec.spike_times.astype(np.float32).astype(np.float64).tolist())
    with pytest.raises(RecordingValidationError, match="t: expected float64 times"):
        from_dataframe(df, time_col="t")


def test_a_parquet_file_pyarrow_cannot_read_says_what_it_should_be(tmp_path):
    """A corrupt .parquet (text renamed x.parquet, or a real table cut short) gave pyarrow's own message
    ("Parquet magic bytes not found in footer ...") without the file's expected content: now the file,
    what it should hold and that it is not readable as Parquet."""
    (tmp_path / "text.parquet").write_text("time,unit\n0.5,1\n")
    pd.DataFrame({"time": np.arange(200.0), "unit": np.arange(200) % 3}).to_parquet(tmp_path / "whole.parquet")
    whole = (tmp_path / "whole.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(whole[: len(whole) // 2])
    for name in ("text.parquet", "cut.parquet"):
        with pytest.raises(RecordingValidationError) as info:
            load_recording(tmp_path / name, time_col="t")
        msg = str(info.value)
        assert msg.startswith(f"{tmp_path / name}: expected a Parquet table with one row per spike (columns 't', "
                              "'unit'), as pandas DataFrame.to_parquet or pyarrow write it; this file is not readable "
                              "as Parquet, it is cut short or not Parquet at all (pyarrow: "), msg
    assert load_recording(tmp_path / "whole.parquet").n_spikes == 200  # the whole file still reads


def test_npz_session_key_with_slash_or_whitespace_is_made_a_token_session(a2929, tmp_path):
    """A .npz 'session' key holding '/' ("mouse1/day2") was kept, and since the tokenizer refuses a session
    holding '/' (f3ea51a) 'neuroformer prepare / train --data s.npz' stopped with a fix only Python can apply
    (dataclasses.replace / read_nwb): the reader replaces '/' and whitespace as read_nwb does an identifier's."""
    from hf_neuroformer.tokenization_neuroformer import NeuroformerTokenizer

    rec = a2929.select_units(range(3)).restrict(600.0, 660.0)
    np.savez(tmp_path / "a.npz", spike_times=rec.spike_times, unit_ids=rec.unit_ids, session=np.asarray("mouse1/day2"))
    np.savez(tmp_path / "b.npz", spike_times=rec.spike_times, unit_ids=rec.unit_ids, session=np.asarray("Mouse 1  day2"))
    a, b = load_recording(tmp_path / "a.npz"), load_recording(tmp_path / "b.npz")
    assert (a.session, b.session) == ("mouse1_day2", "Mouse_1_day2")
    assert NeuroformerTokenizer().add_units(a)  # refused before: "recording.session: 'mouse1/day2' holds '/'"
    assert load_recording(tmp_path / "a.npz", session="given").session == "given"  # a given one is kept


def test_npz_byte_string_names_areas_and_session_are_decoded(a2929, tmp_path):
    """Names saved as byte strings (dtype 'S', as h5py / MATLAB exports and np.array(..., dtype='S') give)
    were read with str(): unit 'cell_a' became "b'cell_a'", area "b'CA1'" and session "b'mouse1'"."""
    rec = a2929.select_units(range(2)).restrict(600.0, 660.0)
    np.savez(tmp_path / "s.npz", spike_times=rec.spike_times, unit_ids=rec.unit_ids,
             unit_names=np.array([b"cell_a", b"cell_b"]), unit_areas=np.array([b"CA1", b"ADn"]),
             session=np.array(b"mouse1"))
    back = read_npz(tmp_path / "s.npz")
    assert back.unit_names == ["cell_a", "cell_b"]
    assert back.unit_areas == ["CA1", "ADn"]
    assert back.session == "mouse1"


def test_npz_arrays_that_break_the_recording_are_refused_naming_the_file(a2929, tmp_path):
    """An error raised when the arrays are made a recording (unit_ids such as 2.5) named the field but not
    the .npz file in the Python API (the command added it): read_npz names the file too."""
    rec = a2929.select_units(range(3)).restrict(600.0, 601.0)
    ids = rec.unit_ids.astype(float)
    ids[2] = 2.5
    np.savez(tmp_path / "bad ids.npz", spike_times=rec.spike_times, unit_ids=ids)
    with pytest.raises(RecordingValidationError, match=r"^unit_ids: expected integer unit indices, got non-integer "
                                                       r"values \(spike 2 has 2\.5; 1 in all\) \(reading .*bad ids\.npz\)$"):
        read_npz(tmp_path / "bad ids.npz")


def test_negative_unit_ids_are_refused_with_how_to_keep_them_as_labels(tmp_path):
    """Negative ids (-1 for unsorted spikes, or a sorter's labels around 0) in a .npz were refused as
    'expected indices in [0, n) (one per unit name)' though no name was given; the refusal counts them
    and says how to keep them as labels."""
    np.savez(tmp_path / "neg.npz", spike_times=np.array([0.1, 0.2, 0.3]), unit_ids=np.array([-1, 2, -1]))
    with pytest.raises(RecordingValidationError, match=r"^unit_ids: expected indices in \[0, 3\) \(one per unit name\), "
                       r"spike 0 has unit index -1 \(2 negative in all\); unit ids are indices from 0: .*np\.unique\("
                       r"unit_ids, return_inverse=True\).*a \.csv / \.parquet of columns time and unit"):
        read_npz(tmp_path / "neg.npz")
    # the table the refusal names reads the same labels as names
    rec = from_dataframe(pd.DataFrame({"time": [0.1, 0.2, 0.3], "unit": [-1, 2, -1]}), session="s")
    assert rec.unit_names == ["unit-1", "unit2"] and rec.n_spikes == 3

def test_steinmetz_session_accuracy_is_kept_not_warned_about(shared_data):
    """The subset's one-value dataset `accuracy` (the mouse's fraction of correct trials) was
    skipped with "not one value per trial" on every command that read the file; it is the
    session's value, kept in session_info, carried by the subsets, and shown by inspect."""
    from hf_neuroformer.inspection import describe_recording, format_description
    from hf_neuroformer.io import load_recording

    path = shared_data(STEINMETZ)
    with h5py.File(path, "r") as f:
        expected = float(f["accuracy"][()].item())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # the file's 4 units that never fire are warned of (test_steinmetz_units_that_never_fire_are_counted_in_a_warning)
        warnings.filterwarnings("ignore", message=r"sp_count: 4 of 806 units .* have a count of 0 in every bin")
        rec = load_recording(path)
    assert rec.session_info == {"accuracy": pytest.approx(expected)} and 0.5 < expected < 0.6
    assert set(rec.trial_info) == {"label", "matchLabel", "motorLabel", "rawLabel", "trial_seq"}
    for sub in (rec.select_units([0, 1]), rec.restrict(0.0, 10.0)):
        assert sub.session_info == rec.session_info
    text = format_description(describe_recording(rec))
    assert f"accuracy {expected:.4g}" in text


def test_session_info_takes_one_value_per_name():
    rec = SpikeRecording([0.1], [0], session_info={"accuracy": np.array([[0.5]]), "mouse": "Cori", "n": np.int64(3)})
    assert rec.session_info == {"accuracy": 0.5, "mouse": "Cori", "n": 3}
    assert type(rec.session_info["n"]) is int
    with pytest.raises(RecordingValidationError, match=r"session_info\['depths'\]: expected one number or text .* "
                                                       r"shape \(3,\)"):
        SpikeRecording([0.1], [0], session_info={"depths": np.zeros(3)})
    with pytest.raises(RecordingValidationError, match="session_info: expected a dict"):
        SpikeRecording([0.1], [0], session_info=[1])


def test_session_info_survives_nwb_and_npz(shared_data, tmp_path):
    """write_nwb dropped SpikeRecording.session_info without a word (the Steinmetz subset's
    accuracy, 0.587, was gone after render-gratings / a conversion to NWB), and write_npz left it
    out with a warning. Both now keep it (read back equal, of the same types); read_nwb_scratch
    does not return our own entry."""
    from hf_neuroformer.io import load_recording

    rec = load_recording(shared_data(STEINMETZ))
    with warnings.catch_warnings():  # trials the cut leaves in part are dropped, and said so
        warnings.simplefilter("ignore")
        rec = rec.restrict(rec.time_domain[0], rec.time_domain[0] + 30.0)  # session_info is kept; fewer spikes to write
    assert rec.session_info and rec.n_spikes > 0
    rec = replace(rec, session_info={**rec.session_info, "mouse": "Cori", "n_sessions": 39, "trained": True})
    back = read_nwb(write_nwb(rec, tmp_path / "s.nwb"))
    assert back.session_info == rec.session_info
    assert {k: type(v) for k, v in back.session_info.items()} == {k: type(v) for k, v in rec.session_info.items()}
    from hf_neuroformer.io.nwb import read_nwb_scratch
    assert read_nwb_scratch(tmp_path / "s.nwb") == {}
    back = read_npz(write_npz(rec, tmp_path / "s.npz"))
    assert {k: (type(v), v) for k, v in back.session_info.items()} == {k: (type(v), v) for k, v in rec.session_info.items()}
    with pytest.raises(ValueError, match="reserved"):
        write_nwb(rec, tmp_path / "t.nwb", scratch={"hf_neuroformer_session_info": (np.zeros(1), "x")})


def test_session_info_set_after_construction_is_written_as_numbers(tmp_path):
    """session_info is validated when the recording is built, but a reader (read_steinmetz_spcount)
    sets it afterwards: a numpy scalar put there (or a Fraction in the constructor) made write_nwb
    fail with json's 'Object of type float32 is not JSON serializable'; values are written as
    Python numbers, read back equal."""
    from fractions import Fraction

    rec = SpikeRecording([0.1, 0.2], [0, 0], time_domain=(0.0, 1.0), session_info={"half": Fraction(1, 2)})
    assert rec.session_info == {"half": 0.5} and type(rec.session_info["half"]) is float
    rec.session_info["accuracy"] = np.float32(0.25)
    rec.session_info["n"] = np.int16(7)
    back = read_nwb(write_nwb(rec, tmp_path / "r.nwb"))
    assert back.session_info == {"half": 0.5, "accuracy": 0.25, "n": 7} and type(back.session_info["n"]) is int


def test_spikes_repeating_a_units_time_in_a_table_or_arrays_are_counted_in_a_warning(tmp_path):
    """Break test: the same unit at the same time twice in a CSV (a sorter's double detection)
    was read without a word, where the NWB and phy readers count such repeats. A table (CSV) and
    from_arrays now warn with the count per unit, and keep the spikes as given; a
    spike of another unit at the same time is no repeat."""
    times = np.array([0.5, 0.5, 0.5, 1.0, 1.25, 1.25, 2.0])
    units = np.array([1, 1, 0, 0, 2, 2, 1])  # unit 1 twice at 0.5 s, unit 2 twice at 1.25 s; unit 0 at 0.5 s too
    df = pd.DataFrame({"time": times, "unit": units})
    df.to_csv(tmp_path / "spikes.csv", index=False)
    with pytest.warns(UserWarning, match=r"spike_times: 2 spikes in 2 units repeat a spike time of the same unit "
                                         r"exactly \('unit1': 1, 'unit2': 1\); kept"):
        rec = load_recording(tmp_path / "spikes.csv")
    assert rec.n_spikes == 7
    with pytest.warns(UserWarning, match=r"spike_times: 2 spikes in 2 units repeat"):
        from_arrays(times, units, unit_names=["a", "b", "c"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert from_arrays(times, units, unit_names=["a", "b", "c"], warn_repeated_spikes=False).n_spikes == 7
        from_arrays(np.array([0.5, 0.5, 1.0]), np.array([0, 1, 0]), unit_names=["a", "b"])  # two units at once


def test_write_nwb_of_a_recording_without_units_names_it(tmp_path):
    # a recording with no units failed inside hdmf with "could not resolve dtype for VectorData 'location'",
    # after the temporary file was opened (from_arrays now refuses empty arrays; the class still holds one)
    rec = SpikeRecording(np.zeros(0), np.zeros(0, dtype=np.int64), session="s", time_domain=(0.0, 5.0))
    assert rec.n_units == 0
    with pytest.raises(ValueError, match=r"^recording: has no units \(n_units = 0\)"):
        write_nwb(rec, tmp_path / "empty.nwb")
    assert list(tmp_path.iterdir()) == []  # no file and no temporary left behind


def test_behaviour_with_a_repeated_timestamp_keeps_the_series(tmp_path):
    """One timestamp logged twice (as position trackers do) dropped the whole behaviour series with
    "timestamps must be ... strictly increasing"; a repeated time now keeps the mean of its samples,
    counted in a warning, while a series that goes back in time is still skipped."""
    from pynwb import TimeSeries

    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.1, 0.5, 0.9])
    mod = nwb.create_processing_module("behavior", "b")
    mod.add(TimeSeries(name="speed", data=np.array([1.0, 2.0, 4.0, 8.0]),
                       timestamps=np.array([0.0, 0.1, 0.1, 0.2]), unit="cm/s"))
    mod.add(TimeSeries(name="xy", data=np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]),
                       timestamps=np.array([0.0, 0.0, 0.3]), unit="cm"))
    mod.add(TimeSeries(name="back", data=np.array([1.0, 2.0, 3.0]),
                       timestamps=np.array([0.0, 0.2, 0.1]), unit="a.u."))
    with pytest.warns(UserWarning) as caught:
        rec = read_nwb(_write(nwb, tmp_path / "rep.nwb"))
    msgs = [str(w.message) for w in caught]
    speed = rec.behaviour["speed"]
    np.testing.assert_array_equal(speed.timestamps, [0.0, 0.1, 0.2])
    np.testing.assert_array_equal(speed.values, [1.0, 3.0, 8.0])
    np.testing.assert_array_equal(rec.behaviour["xy"].values, [[1.0, 2.0], [4.0, 5.0]])
    assert any("'speed': 1 timestamps repeat (1 extra samples)" in m and "3 samples kept of 4" in m for m in msgs), msgs
    assert "back" not in rec.behaviour
    # the message names where the timestamps go back (it gave the series' first sample, 0.0 s)
    assert any("skipped 'back'" in m and "1 non-increasing steps (first: sample 2 at 0.1 s comes after sample 1 at "
               "0.2 s)" in m for m in msgs), msgs


def test_behaviour_series_whose_times_repeat_then_go_back_say_the_time_repeats(shared_data, tmp_path):
    """Zheng's 'events' series (TTL codes) has samples 276 and 277 at one time and goes back later: the
    skip warning said "sample 277 at 1248.404585 s comes after sample 276 at 1248.404585 s". For equal
    times it says the sample repeats the time."""
    from pynwb import TimeSeries

    with h5py.File(shared_data(ZHENG), "r") as f:
        data, times = f["acquisition/events/data"][()], f["acquisition/events/timestamps"][()]
    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.1, 0.5, 0.9])
    nwb.add_acquisition(TimeSeries(name="events", data=data, timestamps=times, unit="code"))
    with pytest.warns(UserWarning, match=r"skipped 'events': timestamps must be finite and strictly increasing, found "
                                         r"0 non-finite and 18 non-increasing steps \(first: sample 277 at 1248\.404585 "
                                         r"s repeats the time of sample 276\)"):
        rec = read_nwb(_write(nwb, tmp_path / "events.nwb"))
    assert "events" not in rec.behaviour


def test_behaviour_series_with_no_samples_is_named_in_a_warning(tmp_path):
    """A behaviour series with 0 samples was kept without a word (inspect said 'no samples here' later,
    and a target on it found no value); it is kept, named in a warning at read."""
    from pynwb import TimeSeries

    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.1, 0.5, 0.9])
    nwb.add_acquisition(TimeSeries(name="speed", data=np.zeros(0), timestamps=np.zeros(0), unit="cm/s"))
    nwb.add_acquisition(TimeSeries(name="lick", data=np.zeros(0), rate=10.0, starting_time=0.0, unit="a.u."))
    nwb.add_acquisition(TimeSeries(name="good", data=np.ones(3), rate=10.0, starting_time=0.0, unit="a.u."))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = read_nwb(_write(nwb, tmp_path / "empty_series.nwb"))
    msgs = [str(w.message) for w in caught]
    for name in ("speed", "lick"):
        assert (f"behaviour: {name!r} holds no samples (0 timestamps); kept as an empty series, which gives no value "
                "to any window") in msgs, msgs
        assert rec.behaviour[name].timestamps.shape == (0,)
    assert not [m for m in msgs if "'good'" in m], msgs


def test_behaviour_series_wholly_outside_the_time_domain_is_named_in_a_warning(tmp_path):
    """A behaviour series with timestamps in milliseconds (or on another clock) beside spike times in
    seconds lay wholly outside the recording and was kept without a word, though no window could
    read it (events there are dropped and counted). It is kept, named in a warning; a series that
    starts before the spikes but reaches them is not named."""
    from pynwb import TimeSeries

    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.1, 5.0, 9.9])
    nwb.add_acquisition(TimeSeries(name="speed_ms", data=np.ones(5), timestamps=np.arange(5) * 2500.0, unit="cm/s"))
    nwb.add_acquisition(TimeSeries(name="early", data=np.ones(20), rate=1.0, starting_time=-10.0, unit="a.u."))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = read_nwb(_write(nwb, tmp_path / "ms_series.nwb"))
    msgs = [str(w.message) for w in caught if "time domain" in str(w.message)]
    assert len(msgs) == 1 and re.search(r"behaviour: 1 series in .*ms_series.nwb have no sample inside the "
                                        r"recording's time domain \[0.1, 9.9\) s \('speed_ms' \(0 to 10000 s\)\); kept, "
                                        r"but no window reads a value from them: are their timestamps in milliseconds",
                                        msgs[0]), msgs
    assert rec.behaviour["speed_ms"].timestamps.size == 5


def test_nwb_spike_times_out_of_ascending_order_are_sorted_and_counted_in_a_warning(a2929, tmp_path):
    """Break test: a unit whose spike_times are not ascending (two segments' times concatenated in
    the wrong order, or a clock reset; nwbinspector checks that they ascend) was sorted without a
    word. The spikes are still sorted, none left out; the units and the first step back are counted
    and named in a warning."""
    nwb = _nwbfile()
    trains = [a2929.spike_times[(a2929.unit_ids == u) & (a2929.spike_times < 20.0)] for u in range(3)]
    half = len(trains[1]) // 2
    stored = [trains[0], np.concatenate([trains[1][half:], trains[1][:half]]), trains[2]]  # unit 1's halves swapped
    for t in stored:
        nwb.add_unit(spike_times=t)
    path = _write(nwb, tmp_path / "swapped.nwb")
    with pytest.warns(UserWarning, match=rf"^units: 1 of 3 units in .*swapped\.nwb have spike times out of ascending "
                                         rf"order \(1 step back in time; first: units\[1\] \('unit1'\)\.spike_times"
                                         rf"\[{len(trains[1]) - half}\] at {trains[1][0]:g} s after {trains[1][-1]:g} s\); "
                                         r"sorted, no spike left out"):
        rec = read_nwb(path)
    for u, t in enumerate(trains):
        np.testing.assert_array_equal(rec.spike_times[rec.unit_ids == u], t)
    # the real files give no such warning: test_trials_and_epochs_wholly_outside_the_spikes_are_named_in_a_warning


def test_trials_and_epochs_wholly_outside_the_spikes_are_named_in_a_warning(a2929, shared_data, tmp_path):
    """Break test: a trials table in milliseconds beside spike times in seconds (20 s of the A2929
    units) stretched the recording's time domain to 19,000 s without a word, and
    ``neuroformer prepare`` of it wrote 70,000 training windows holding no spike. Trials and epochs
    that lie wholly outside the span of the spike times are kept, counted and named in a warning;
    the real files (whose intervals all reach the spikes) give no such warning."""
    nwb = _nwbfile()
    for u in range(3):
        t = a2929.spike_times[(a2929.unit_ids == u) & (a2929.spike_times < 20.0)]
        nwb.add_unit(spike_times=t)
    for k in range(10):  # 1-s trials every 2 s, written in milliseconds
        nwb.add_trial(start_time=2000.0 * k, stop_time=2000.0 * k + 1000.0)
    nwb.add_epoch(start_time=0.0, stop_time=10.0, tags=["run"])
    nwb.add_epoch(start_time=5000.0, stop_time=9000.0, tags=["rest_ms"])
    path = _write(nwb, tmp_path / "trials_ms.nwb")
    with pytest.warns(UserWarning, match=r"^intervals: 1 of 3 epochs \('rest_ms' \(5000 to 9000 s\)\) and 9 of 10 trials "
                                         r"\(trial 1 \(2000 to 3000 s\), trial 2 \(4000 to 5000 s\), .* and 4 more\) of "
                                         r".*trials_ms\.nwb lie wholly outside the span of the spike times \(.* to 19\.\d+ s\), "
                                         r"so the recording's time domain was stretched to \[0, 19000\) s .* are the "
                                         r"interval times in milliseconds"):
        rec = read_nwb(path)
    assert rec.time_domain == (0.0, 19000.0) and len(rec.trials) == 10  # kept as the file has them
    for real in (A2929, ZHENG):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            read_nwb(shared_data(real))
        # (nor one of spike times out of ascending order: test_nwb_spike_times_out_of_ascending_order_...)
        assert not [w for w in caught if "outside the span of the spike times" in str(w.message)
                    or "out of ascending order" in str(w.message)]


def test_behaviour_series_with_a_non_finite_rate_or_factor_are_skipped_naming_the_field(tmp_path):
    """An infinite rate made every timestamp 0, averaged into one sample as 'timestamps repeat'; a rate
    of 0 (pynwb writes it with a warning) or a NaN starting_time was skipped as 'timestamps ... sample 0
    is nan' (numpy's divide-by-zero warnings first), naming neither field; a NaN conversion or an
    infinite offset made every value NaN / infinite without a word. Each is skipped naming the field."""
    from pynwb import TimeSeries

    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.1, 0.5, 0.9])
    mod = nwb.create_processing_module("behavior", "b")
    v = np.array([1.0, 2.0, 4.0])
    mod.add(TimeSeries(name="good", data=v, rate=10.0, starting_time=0.0, unit="cm/s"))
    mod.add(TimeSeries(name="fast", data=v, rate=float("inf"), starting_time=0.0, unit="cm/s"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pynwb: 'Timeseries has a rate of 0.0 Hz'
        mod.add(TimeSeries(name="still", data=v, rate=0.0, starting_time=0.0, unit="cm/s"))
    mod.add(TimeSeries(name="late", data=v, rate=10.0, starting_time=float("nan"), unit="cm/s"))
    mod.add(TimeSeries(name="scaled", data=v, timestamps=[0.0, 0.1, 0.2], conversion=float("nan"), unit="cm"))
    mod.add(TimeSeries(name="moved", data=v, timestamps=[0.0, 0.1, 0.2], offset=float("inf"), unit="cm"))
    path = _write(nwb, tmp_path / "factors.nwb")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = read_nwb(path)
    msgs = [str(w.message) for w in caught]
    assert list(rec.behaviour) == ["good"]
    for name, field, value, expected in [("fast", "rate", "inf", "a finite sampling rate > 0 Hz"),
                                         ("still", "rate", "0.0", "a finite sampling rate > 0 Hz"),
                                         ("late", "starting_time", "nan", "a finite time in seconds"),
                                         ("scaled", "conversion", "nan", "a finite number"),
                                         ("moved", "offset", "inf", "a finite number")]:
        assert f"behaviour: skipped {name!r}: its {field} is {value}, expected {expected}" in msgs, msgs
    assert not [m for m in msgs if "divide" in m or "timestamps repeat" in m], msgs


def test_nwb_boolean_behaviour_series_read_as_boolean(tmp_path):
    """Break test: a TimeSeries of bool flags (one in a BehavioralTimeSeries, one in BehavioralEvents)
    was read as 0.0 / 1.0 numbers with boolean=False, so a decoder of it reported classes 0 / 1, where
    the same flags given to BehaviourSeries as numpy booleans give boolean=True (False / True). Now
    the same; a flag series whose conversion makes other values is read as numbers, with a warning;
    write_nwb writes a boolean series as bool data, so it reads back boolean."""
    from pynwb import TimeSeries
    from pynwb.behavior import BehavioralEvents, BehavioralTimeSeries

    from hf_neuroformer.io import write_nwb

    flags = np.array([True, False, False, True, True])
    t = np.array([0.0, 0.1, 0.2, 0.3, 0.4])
    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.05, 0.25, 0.45])
    mod = nwb.create_processing_module("behavior", "b")
    mod.add(BehavioralTimeSeries(name="licking", time_series=[
        TimeSeries(name="lick", data=flags, timestamps=t, unit="n/a")]))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "BehavioralEvents is deprecated")  # (pynwb 3.1; still read)
        mod.add(BehavioralEvents(name="rewards", time_series=[
            TimeSeries(name="reward", data=flags[::-1].copy(), timestamps=t, unit="n/a")]))
    mod.add(TimeSeries(name="scaled_flag", data=flags, timestamps=t, unit="V", conversion=5.0))
    mod.add(TimeSeries(name="speed", data=flags.astype(np.float64), timestamps=t, unit="cm/s"))
    path = _write(nwb, tmp_path / "flags.nwb")
    with pytest.warns(UserWarning, match=r"^behaviour: 'scaled_flag': boolean data read as numbers, not as False "
                                         r"/ True: its values become 5 \(conversion 5, offset 0, or the mean of"):
        rec = read_nwb(path)
    assert rec.behaviour["lick"].boolean and rec.behaviour["reward"].boolean
    np.testing.assert_array_equal(rec.behaviour["lick"].values, flags.astype(np.float64))
    np.testing.assert_array_equal(rec.behaviour["reward"].values, flags[::-1].astype(np.float64))
    assert not rec.behaviour["scaled_flag"].boolean  # 0.0 / 5.0 V are no flags
    np.testing.assert_array_equal(rec.behaviour["scaled_flag"].values, 5.0 * flags)
    assert not rec.behaviour["speed"].boolean  # 0.0 / 1.0 stored as floats are numbers
    # write -> read keeps the flag
    out = write_nwb(rec, tmp_path / "back.nwb")
    back = quiet(read_nwb, out)
    assert back.behaviour["lick"].boolean and not back.behaviour["speed"].boolean
    np.testing.assert_array_equal(back.behaviour["lick"].values, rec.behaviour["lick"].values)


def test_position_series_of_two_processing_modules_are_named_by_their_module(tmp_path):
    """A Position container in each of two processing modules (the tracker's raw output and a
    cleaned copy) holding a series 'x': both were 'Position_x' after the container prefix, so they
    became 'Position_x_1' and 'Position_x_2', which do not say which module each came from. The
    module's name now comes in front; a name used once keeps its plain name."""
    from pynwb import TimeSeries
    from pynwb.behavior import Position

    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.1, 0.5, 0.9])
    for k, module in enumerate(("tracking", "cleaned")):
        pos = Position(name="Position")
        pos.create_spatial_series(name="x", data=np.arange(3.0) + 10 * k, reference_frame="arena corner",
                                  timestamps=[0.0, 0.1, 0.2])
        nwb.create_processing_module(module, "position").add(pos)
    nwb.create_processing_module("licks", "l").add(TimeSeries(name="lick_rate", data=np.ones(3), unit="Hz",
                                                              timestamps=[0.0, 0.1, 0.2]))
    rec = read_nwb(_write(nwb, tmp_path / "two.nwb"))
    assert sorted(rec.behaviour) == ["cleaned_Position_x", "lick_rate", "tracking_Position_x"]
    np.testing.assert_array_equal(rec.behaviour["tracking_Position_x"].values, [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(rec.behaviour["cleaned_Position_x"].values, [10.0, 11.0, 12.0])


def test_behaviour_with_a_repeated_timestamp_keeps_the_sample_that_is_not_nan(tmp_path):
    """A tracker that logs one time twice, once with the position lost (NaN): the mean of the two
    was NaN, so the valid sample was lost without a word. The mean is now over the samples that are
    not NaN, per column; a time where every sample is NaN stays NaN."""
    from pynwb import TimeSeries

    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.1, 0.5, 0.9])
    mod = nwb.create_processing_module("behavior", "b")
    mod.add(TimeSeries(name="xy", data=np.array([[0.0, 1.0], [np.nan, 3.0], [4.0, 5.0], [np.nan, np.nan],
                                                 [np.nan, 7.0], [8.0, 9.0]]),
                       timestamps=np.array([0.0, 0.1, 0.1, 0.2, 0.2, 0.3]), unit="cm"))
    with pytest.warns(UserWarning, match=r"'xy': 2 timestamps repeat \(2 extra samples\); each repeated time keeps "
                                         r"the mean of its samples that are not NaN \(4 samples kept of 6\)"):
        rec = read_nwb(_write(nwb, tmp_path / "nan.nwb"))
    np.testing.assert_array_equal(rec.behaviour["xy"].timestamps, [0.0, 0.1, 0.2, 0.3])
    np.testing.assert_array_equal(rec.behaviour["xy"].values, [[0.0, 1.0], [4.0, 4.0], [np.nan, 7.0], [8.0, 9.0]])


def test_table_columns_that_are_not_read_are_named(tmp_path):
    """A spike table's other columns (here an amplitude per spike) were dropped without a word; they are
    now named in a warning. The index pandas writes to CSV ("Unnamed: 0") is not data and is not named."""
    df = pd.DataFrame({"time": [0.5, 0.1, 0.3], "unit": ["b", "a", "b"], "amplitude": [40.0, 55.0, 38.0]})
    df.to_csv(tmp_path / "s.csv")  # index written too
    with pytest.warns(UserWarning, match=r"1 column not read: \['amplitude'\]; only 'time' \(spike times\)") as caught:
        rec = load_recording(tmp_path / "s.csv")
    assert not any("Unnamed" in str(w.message) for w in caught)
    assert rec.n_spikes == 3 and rec.unit_names == ["a", "b"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_dataframe(df[["time", "unit"]])


def test_a_table_area_column_of_one_value_per_unit_gives_the_units_areas(tmp_path):
    """A spike table's area column (one value per unit) was named as 'not read' and the areas lost to a
    --data user; it is read as unit_areas. A column giving a unit two areas is named and not read."""
    df = pd.DataFrame({"time": [0.1, 0.2, 0.3, 0.4], "unit": ["b", "a", "c", "b"],
                       "Region": ["CA3", "CA1", None, "CA3"], "amplitude": [1.0, 2.0, 3.0, 4.0]})
    df.to_csv(tmp_path / "s.csv", index=False)
    with pytest.warns(UserWarning, match=r"^1 column not read: \['amplitude'\]") as caught:
        rec = load_recording(tmp_path / "s.csv")
    assert rec.unit_names == ["a", "b", "c"] and rec.unit_areas == ["CA1", "CA3", ""]
    assert not any("Region" in str(w.message) for w in caught)
    df.loc[3, "Region"] = "DG"
    with pytest.warns(UserWarning, match=r"Region: not read as the units' brain areas: unit 'b' has 2 values "
                      r"\('CA3', 'DG'; 1 unit with more than one\)"):
        rec = from_dataframe(df, session="s")
    assert rec.unit_areas == ["", "", ""]
    assert from_dataframe(df, session="s", unit_areas=["x", "y", "z"]).unit_areas == ["x", "y", "z"]

def test_table_of_several_sessions_or_of_units_numbered_per_shank_is_refused_not_merged(tmp_path):
    """A table with a session column of two values was read as one session (their spikes on one clock,
    unit 3 of each session one unit), and one whose cluster ids restart per shank merged cluster 0 of every
    shank; the column was named only as 'not read'. Both are refused naming the column and the fix; a
    session column of one value, and a shank column under which every label is in one shank, still read."""
    df = pd.DataFrame({"time": [0.1, 0.2, 0.3, 0.4], "unit": [0, 1, 0, 1], "Session": ["m1 d1", "m1 d1", "m1 d2", "m1 d2"]})
    df.to_csv(tmp_path / "two.csv", index=False)
    with pytest.raises(RecordingValidationError, match=r"two\.csv: Session: expected one session per table, the column "
                       r"holds 2 values \('m1 d1', 'm1 d2'\).*Save each session as its own file"):
        load_recording(tmp_path / "two.csv")
    df["shank"] = [1, 1, 2, 2]
    with pytest.raises(RecordingValidationError, match=r"^shank: the unit label 0 occurs in 2 of its values \('1', "
                       r"'2'; 2 labels in all\).*df\['unit'\] = df\['shank'\]\.astype\(str\) \+ '/'"):
        from_dataframe(df.drop(columns="Session"), session="a")
    df["unit"] = [0, 1, 2, 3]  # labels distinct across shanks, one session: read, the columns named as not read
    with pytest.warns(UserWarning, match=r"2 columns not read: \['Session', 'shank'\]"):
        rec = from_dataframe(df.assign(Session="m1 d1"), session="a")
    assert rec.n_units == 4 and rec.n_spikes == 4

@pytest.mark.parametrize("how", ["arrays", "npz", "dataframe"])
def test_empty_spikes_without_unit_names_are_refused(tmp_path, how):
    # from_arrays([], []) and a .npz of empty arrays gave a recording of 0 units and no time domain without a
    # word, where read_nwb refuses an empty units table
    path = tmp_path / "empty.npz"
    np.savez(path, spike_times=np.zeros(0), unit_ids=np.zeros(0, dtype=np.int64))
    with pytest.raises(RecordingValidationError) as err:
        if how == "arrays":
            from_arrays([], [])
        elif how == "npz":
            load_recording(path)
        else:
            from_dataframe(pd.DataFrame({"time": [], "unit": []}))
    where = f" in {path}" if how == "npz" else ""
    assert str(err.value) == (f"spike_times, unit_ids: expected at least one unit, got no spike and no unit_names{where}, "
                              "which would give a recording with 0 units (read_nwb refuses an empty units table alike); "
                              "was the export empty?")
    # units named without spikes stay a recording (its units are silent)
    assert from_arrays([], [], unit_names=["a"], time_domain=(0.0, 1.0)).n_units == 1


@pytest.mark.parametrize("how", ["arrays", "npz", "dataframe"])
def test_units_without_spikes_need_a_time_domain(tmp_path, how):
    """Break test: from_arrays([], [], unit_names=['a']) (and a .npz or table of no spikes with unit
    names) gave a recording with time_domain None without a word: a recording of no time, which
    no window fits in. Refused now, naming time_domain and how to give it; with it, the silent
    units are a recording as before."""
    path = tmp_path / "silent.npz"
    np.savez(path, spike_times=np.zeros(0), unit_ids=np.zeros(0, dtype=np.int64), unit_names=np.array(["a", "b"]))

    def read(**kw):
        if how == "arrays":
            return from_arrays([], [], unit_names=["a", "b"], **kw)
        if how == "npz":
            return load_recording(path, **kw)
        return from_dataframe(pd.DataFrame({"time": [], "unit": []}), unit_names=["a", "b"], **kw)

    fix = ("add a 'time_domain' array (start, stop) to the file, or pass time_domain=(start, stop)" if how == "npz"
           else "pass time_domain=(start, stop)")
    with pytest.raises(RecordingValidationError) as err:
        read()
    assert str(err.value) == ("time_domain: expected (start, stop) seconds, got none and no spike to span it (2 units "
                              f"named{f' in {path}' if how == 'npz' else ''}, none with a spike), which would give a "
                              f"recording of no time; {fix} in seconds, the span the (silent) recording covers")
    rec = read(time_domain=(0.0, 30.0))
    assert rec.time_domain == (0.0, 30.0) and rec.n_units == 2 and rec.n_spikes == 0
    np.savez(path, spike_times=np.zeros(0), unit_ids=np.zeros(0, dtype=np.int64), unit_names=np.array(["a", "b"]),
             time_domain=np.array([0.0, 30.0]))
    assert load_recording(path).time_domain == (0.0, 30.0)  # the key the message names


def test_an_epoch_asked_for_by_number_is_told_names_are_text(a2929):
    # an epoch named "1" (pynapple / NWB intervals tagged by number): select_epoch(1) listed ['1'] with no hint
    rec = replace(a2929, epochs={"1": a2929.epochs["wake"]}, epoch_intervals={})
    with pytest.raises(KeyError, match=r"epoch 1 not found; this recording has epochs \['1'\]; epoch names are "
                                       r"text: select_epoch\('1'\)"):
        rec.select_epoch(1)
    with pytest.raises(KeyError, match=r"epoch 2 not found; .*; epoch names are text, got int 2"):
        rec.select_epoch(2)
    assert rec.select_epoch("1").time_domain == (600.0, 1200.0)


def _warning_inputs(kind, shared_data, tmp_path):
    """A small ``kind`` input whose reading warns (a repeated spike, a column or dataset not read): (path, the
    reader called on it directly)."""
    import shutil

    import scipy.io

    from hf_neuroformer.io import read_nelpy_linear_track, read_phy

    if kind == "nelpy":  # as tests/test_io_nelpy.py: a spike listed twice in tetrode 1, unit 1
        src = shared_data("nelpy_hippocampus/linear-track")
        mat = scipy.io.loadmat(src / "spikes.mat")
        unit = mat["spikes"][0, 0][0, 0][0, 0][0, 0]
        unit["time"][0, 0] = np.vstack([unit["time"][0, 0], unit["time"][0, 0][[0]]])
        (tmp_path / "nelpy").mkdir()
        scipy.io.savemat(tmp_path / "nelpy" / "spikes.mat", {"spikes": mat["spikes"]})
        shutil.copy(src / "trajectory.videoPositionTracking", tmp_path / "nelpy")
        return tmp_path / "nelpy", read_nelpy_linear_track
    if kind == "allen":  # spike 58 of trial 0, unit 82 once more (as the Allen repeat test)
        st, ii = np.load(shared_data(ALLEN) / "spike_times.npy"), np.load(shared_data(ALLEN) / "ii_spike_times.npy")
        return _allen_copy(shared_data, tmp_path, ii=np.where(ii >= 63, ii + 1, ii), st=np.insert(st, 63, st[58])), \
            read_allen_gratings
    if kind == "steinmetz":  # the first 3 trials; a dataset that is not one value per trial
        with h5py.File(shared_data(STEINMETZ), "r") as f:
            counts, labels = f["sp_count"][:3, :10, :5], f["motorLabel"][:3]
        with h5py.File(tmp_path / "s.mat", "w") as f:
            f["sp_count"], f["motorLabel"], f["other"] = counts, labels, np.zeros((2, 2))
        return tmp_path / "s.mat", read_steinmetz_spcount
    if kind == "phy":  # one sample twice in cluster 1
        (tmp_path / "phy").mkdir()
        np.save(tmp_path / "phy" / "spike_times.npy", np.array([[100], [100], [500]], np.uint64))
        np.save(tmp_path / "phy" / "spike_clusters.npy", np.array([1, 1, 2], np.int32))
        (tmp_path / "phy" / "params.py").write_text("dat_path = 'x.dat'\nn_channels_dat = 4\ndtype = 'int16'\n"
                                                    "offset = 0\nhp_filtered = True\nsample_rate = 20000.\n")
        return tmp_path / "phy", read_phy
    np.savez(tmp_path / "a.npz", spike_times=[0.1, 0.1, 0.5], unit_ids=[0, 0, 1], extra=[1, 2, 3])
    if kind == "npz":
        return tmp_path / "a.npz", read_npz
    if kind == "nwb":
        write_nwb(quiet(read_npz, tmp_path / "a.npz"), tmp_path / "a.nwb")
        return tmp_path / "a.nwb", read_nwb
    (tmp_path / "a.csv").write_text("time,unit,extra\n0.1,a,1\n0.1,a,2\n0.5,b,3\n")
    return tmp_path / "a.csv", lambda path: from_dataframe(pd.read_csv(path), session="a")


@pytest.mark.parametrize("kind", ["nwb", "npz", "nelpy", "allen", "steinmetz", "phy", "dataframe"])
def test_every_readers_warnings_point_at_the_callers_line_directly_and_through_load_recording(
        kind, shared_data, tmp_path):
    """Through load_recording (the dispatcher of every command) the readers' warnings pointed at
    io/__init__.py, and some (read_npz's ignored keys, read_steinmetz_spcount's skipped datasets, from_dataframe's
    repeated spikes) pointed inside the io package even when the reader was called directly."""
    path, reader = _warning_inputs(kind, shared_data, tmp_path)
    for call in (reader, load_recording):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call(path)
        assert caught and {w.filename for w in caught} == {__file__}, \
            (call.__name__, [(w.filename, str(w.message)[:60]) for w in caught])
    with warnings.catch_warnings():  # and a warning turned into an error is still raised, to the caller
        warnings.simplefilter("error")
        with pytest.raises(UserWarning):
            load_recording(path)


def test_behaviour_unit_padded_by_a_fixed_width_string_is_stripped(tmp_path):
    """A unit attribute of fixed width (h5py / MATLAB writers pad it with NULs or spaces) was kept as read:
    b"cm\\0\\0" gave the unit "cm\\0\\0", b"n/a   " (write_nwb's no-unit placeholder, padded) the unit
    "n/a   ", and pynwb's own "cm/s  " stayed "cm/s  ", so none equalled "cm", "" or "cm/s". They are
    stripped where read, and by BehaviourSeries itself for any reader (numpy fixed-width strings too)."""
    from pynwb import TimeSeries

    nwb = _nwbfile()
    nwb.add_unit(spike_times=[0.1, 0.5, 0.9])
    for name, unit in (("speed", "cm/s  "), ("pos", "cm"), ("none", "n/a"), ("angle", "rad")):
        nwb.add_acquisition(TimeSeries(name=name, data=np.ones(3), timestamps=[0.0, 0.1, 0.2], unit=unit))
    path = _write(nwb, tmp_path / "padded_units.nwb")
    with h5py.File(path, "a") as f:  # as a writer with fixed-width attributes stores them
        f["acquisition/pos/data"].attrs.create("unit", np.array(b"cm\x00\x00", dtype="S4"))
        f["acquisition/none/data"].attrs.create("unit", np.array(b"n/a   ", dtype="S6"))
        f["acquisition/angle/data"].attrs.create("unit", np.array(b" rad\x00", dtype="S5"))
    rec = read_nwb(path)
    assert {k: s.unit for k, s in rec.behaviour.items()} == {"speed": "cm/s", "pos": "cm", "none": "", "angle": "rad"}
    for unit in (np.array(["deg  "], dtype="U8")[0], np.bytes_(b"deg\x00\x00"), "deg\x00 ", "\tdeg\n"):
        s = BehaviourSeries(timestamps=np.arange(2.0), values=np.ones(2), unit=unit)
        assert s.unit == "deg" and type(s.unit) is str, repr(s.unit)


@pytest.mark.parametrize("offsets, match", [
    ([3, 2, 5], r"expected each unit's end offset into units\.spike_times, non-decreasing, got 2 for units\[1\] after 3 "
                r"\(a decrease at 1 unit\)"),
    ([0, 3, 4], r"expected the last unit's end offset to be the number of spike times, 6, got 4: 2 spike times "
                r"belong to no unit \(start offsets stored for end offsets\?\)"),
    ([3, 4, 9], r"expected the last unit's end offset to be the number of spike times, 6, got 9: it points past the "
                r"end"),
])
def test_a_units_spike_times_index_that_does_not_split_the_spikes_is_named(tmp_path, offsets, match):
    """A spike_times_index written by another writer (h5py, MATLAB) holding decreasing offsets, the start
    offsets, or an offset past the spike times failed in numpy ('repeats may not contain negative values',
    'all keys need to be the same shape'), naming neither the file nor the column."""
    nwb = _nwbfile()
    for times in ([0.1, 0.2, 0.3], [0.15], [0.05, 0.25]):
        nwb.add_unit(spike_times=times)
    path = _write(nwb, tmp_path / "units.nwb")
    with h5py.File(path, "a") as f:  # the index again, with its attributes (its reference to the spike times)
        attrs = dict(f["units/spike_times_index"].attrs)
        del f["units/spike_times_index"]
        f.create_dataset("units/spike_times_index", data=np.array(offsets, dtype=np.uint8))
        f["units/spike_times_index"].attrs.update(attrs)
    with pytest.raises(RecordingValidationError, match=rf"^units\.spike_times_index of {re.escape(str(path))}: {match}"):
        read_nwb(path)


@pytest.mark.parametrize("row", [4, -1])
def test_a_unit_electrode_row_outside_the_electrodes_table_is_named(tmp_path, row):
    """A units 'electrodes' row past the electrodes table (1-based, as MATLAB counts) failed with numpy's
    IndexError, a traceback from `neuroformer inspect` (pynwb only warns); a negative row took the area of an
    electrode counted from the end without a word."""
    nwb = _nwbfile()
    group = nwb.create_electrode_group("tetrode1", "tetrode", "CA1", nwb.create_device("drive"))
    for area in ("CA1", "CA3", "DG", "CA1"):
        nwb.add_electrode(group=group, location=area)
    for k, times in enumerate(([0.1, 0.2], [0.15], [0.05, 0.25])):
        nwb.add_unit(spike_times=times, electrodes=[k])
    path = _write(nwb, tmp_path / "units.nwb")
    assert quiet(read_nwb, path).unit_areas == ["CA1", "CA3", "DG"]
    with h5py.File(path, "a") as f:
        f["units/electrodes"][2] = row
    with pytest.raises(RecordingValidationError, match=rf"^units\[2\] \('unit2'\)\.electrodes in {re.escape(str(path))}: "
                                                       rf"expected rows of the electrodes table, 0 to 3, got {row} "
                                                       r"\(1-based row numbers, as MATLAB counts\?\)"):
        quiet(read_nwb, path)


def test_repeated_unit_ids_are_named_with_the_units_renamed(tmp_path):
    """Two sorts' units tables joined, each counting its ids from 0, were read with 'unit names in PATH repeat;
    made them unique with _1, _2 ... suffixes', naming neither the names nor how many units were renamed."""
    nwb = _nwbfile()
    for k, times in enumerate(([0.1, 0.2], [0.15], [0.05, 0.25], [0.3], [0.35])):
        nwb.add_unit(spike_times=times, id=[0, 1, 2, 0, 1][k])
    path = _write(nwb, tmp_path / "units.nwb")
    with pytest.warns(UserWarning, match=r"^units: unit names in .*units\.nwb repeat \('unit0' x 2, 'unit1' x 2, from "
                                         r"the ids of the units table\); made them unique with _1, _2 \.\.\. suffixes "
                                         r"\(2 units renamed, in row order\)$"):
        rec = read_nwb(path)
    assert rec.unit_names == ["unit0", "unit1", "unit2", "unit0_1", "unit1_1"]


@pytest.mark.parametrize("writer, name", [(write_npz, "rec.npz"), (write_nwb, "rec.nwb")])
def test_writers_refuse_a_directory_before_writing_even_with_overwrite(tmp_path, writer, name):
    """write_npz / write_nwb with overwrite=True onto an existing directory wrote the whole file to a
    temporary, then os.replace failed with IsADirectoryError naming the temporary (not a ValueError, so
    the CLI showed a traceback). They now refuse the path first, naming it and that it is a directory;
    no temporary is left and the directory keeps what it held."""
    from hf_neuroformer.cli import _is_refusal

    rec = SpikeRecording(spike_times=[0.1, 0.2], unit_ids=[0, 1], time_domain=(0.0, 1.0), session="m")
    target = tmp_path / name
    target.mkdir()
    (target / "kept.txt").write_text("kept")
    for overwrite in (True, False):
        with pytest.raises(ValueError, match=rf"^path: '{re.escape(str(target))}' is a directory") as err:
            writer(rec, target, overwrite=overwrite)
        assert type(err.value).__name__ == "OutputPathError" and _is_refusal(err.value)
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert [p.name for p in target.iterdir()] == ["kept.txt"] and (target / "kept.txt").read_text() == "kept"


@pytest.mark.parametrize("writer, name", [(write_npz, "rec.npz"), (write_nwb, "rec.nwb")])
def test_writers_refuse_a_missing_folder_unless_make_parent_and_a_folder_that_is_a_file(tmp_path, writer, name):
    """write_npz / write_nwb created a missing folder without a word (a typo in its name went unnoticed),
    unlike jsonio.write_atomic and simulation.write_network, and a path under a file failed in mkdir
    with a bare '[Errno 17] File exists'. A missing folder is now refused naming the path unless
    make_parent=True, and a file where a folder should be is refused naming that file; nothing is
    created in either case."""
    from hf_neuroformer.cli import _is_refusal

    rec = SpikeRecording(spike_times=[0.1, 0.2], unit_ids=[0, 1], time_domain=(0.0, 1.0), session="m")
    missing = tmp_path / "typo" / "deeper" / name
    with pytest.raises(FileNotFoundError, match=rf"^path: the folder of '{re.escape(str(missing))}' is not an "
                                                r"existing folder; create it or pass make_parent=True$") as err:
        writer(rec, missing)
    assert type(err.value).__name__ == "MissingOutputFolderError"
    assert list(tmp_path.iterdir()) == []
    assert load_recording(writer(rec, missing, make_parent=True)).n_spikes == 2

    blocker = tmp_path / "run.yaml"
    blocker.write_text("kept")
    for under in (blocker / name, blocker / "sub" / name):
        for make_parent in (False, True):
            with pytest.raises(ValueError, match=rf"^path: '{re.escape(str(blocker))}' is a file, not a folder, so "
                                                 rf"'{re.escape(str(under))}' cannot be written in it") as err:
                writer(rec, under, make_parent=make_parent)
            assert type(err.value).__name__ == "OutputPathError" and _is_refusal(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.yaml", "typo"] and blocker.read_text() == "kept"


def test_a_spike_table_with_its_own_column_names_is_refused_with_both_columns_and_how_to_map_them(a2929, tmp_path):
    """A new user's spike table, columns 'spike_time' / 'cluster' (A2929's wake spikes), was refused with
    "time: expected a column 'time', found columns ['spike_time', 'cluster']": not what the column holds, not
    that a 'unit' column is needed too (the next refusal after a rename), not time_col= / unit_col=. The
    refusal now names both columns with their contents and both ways to map them; and those ways read it."""
    wake = a2929.select_epoch("wake")
    trains = wake.spike_trains()
    table = pd.DataFrame({"spike_time": np.concatenate(trains),
                          "cluster": np.concatenate([[n] * len(t) for n, t in zip(wake.unit_names, trains)])})
    path = tmp_path / "mouse7.csv"
    table.to_csv(path, index=False)
    said = (r"time: expected a column 'time', found columns \['spike_time', 'cluster'\]; a table of spikes needs a "
            r"column 'time' \(spike times, s\) and a column 'unit' \(unit labels: names or integer ids\), one row "
            r"per spike: rename the table's columns \(the command line reads 'time' and 'unit'\), or name them with "
            r"time_col= / unit_col= of from_dataframe or load_recording$")
    with pytest.raises(RecordingValidationError, match=rf"^{re.escape(str(path))}: {said}"):
        load_recording(path)
    with pytest.raises(RecordingValidationError, match=rf"^{said}"):
        from_dataframe(table)
    read = load_recording(path, time_col="spike_time", unit_col="cluster")
    assert read.n_spikes == wake.n_spikes and sorted(read.unit_names) == sorted(wake.unit_names)
    renamed = from_dataframe(table.rename(columns={"spike_time": "time", "cluster": "unit"}))
    np.testing.assert_array_equal(renamed.spike_times, read.spike_times)


def test_csv_refusals_name_the_file_the_line_of_a_bad_byte_and_the_separator(tmp_path):
    """Break test of the CSV reader: a Latin-1 CSV gave pandas' bare UnicodeDecodeError ("can't decode byte
    0xb5 in position 1", a position within a chunk); "row 1 holds nan" and a ';'-separated file ("found
    columns ['time;unit']") named no file, and the latter gave no hint at the separator; a row with a field
    too many gave pandas' ParserError naming no file. Each refusal now names the file; a one-column header
    holding ';' or a tab hints at the separator; undecodable bytes are named by line and byte."""
    cases = {
        "latin.csv": (b"time,unit\n0.1,a\n0.2,b\xb5\n",
                      r"latin\.csv: expected UTF-8 text, byte 0xb5 on line 3 is not UTF-8"),
        "nan.csv": (b"time,unit\n0.1,a\n,b\n0.3,a\n",
                    r"nan\.csv: time: expected a finite spike time .*row 1 holds nan .*rows counted from 0 below the "
                    r"header line"),
        "semi.csv": (b"time;unit\n0.1;a\n0.2;b\n",
                     r"semi\.csv: time: expected a column 'time', found columns \['time;unit'\] \(one column whose "
                     r"name holds ';': a ';'-separated file .*sep=';'"),
        "tab.csv": (b"time\tunit\n0.1\ta\n",
                    r"tab\.csv: time: .*one column whose name holds '\\t'"),
        "extra.csv": (b"time,unit\n0.1,a\n0.2,b,c\n",
                      r"extra\.csv: expected a comma-separated table .*Expected 2 fields in line 3, saw 3\)$"),
    }
    for name, (content, said) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(RecordingValidationError, match=rf"^{re.escape(str(tmp_path))}/{said}"):
            load_recording(tmp_path / name)
    # the hint is from_dataframe's own, for a table read by the caller too
    with pytest.raises(RecordingValidationError, match=r"^time: .*holds ';'"):
        from_dataframe(pd.read_csv(tmp_path / "semi.csv"))


def test_read_nwb_scratch_of_a_third_party_file_shows_no_raw_pynwb_warning(shared_data):
    """Break test: 'neuroformer evaluate --generated' on the Zheng NWB printed pynwb's own
    "OpticalSeries 'StimulusPresentation_encoding': Either external_file or data must be specified"
    with pynwb's file path, from read_nwb_scratch's read of the whole file (read_nwb says what it
    skips in its own words). Only the scratch space is read there: pynwb's and hdmf's warnings are
    not shown; the file's (empty) scratch space is still read."""
    from hf_neuroformer.io.nwb import read_nwb_scratch

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert read_nwb_scratch(shared_data(ZHENG)) == {}
    assert [(w.filename, str(w.message)) for w in seen] == []
