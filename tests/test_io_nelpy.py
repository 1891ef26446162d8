"""nelpy linear-track reader on the real files (../shared/data/nelpy_hippocampus/linear-track)."""

from __future__ import annotations

import re
import shutil
import warnings

import numpy as np
import pytest

from hf_neuroformer.io import load_recording, read_nelpy_linear_track
from hf_neuroformer.io.nelpy import read_position_tracking, smoothed_speed
from hf_neuroformer.recording import RecordingValidationError

REL = "nelpy_hippocampus/linear-track"


@pytest.fixture(scope="module")
def track_read(shared_data):
    """The shipped folder read once: (folder, recording, the warnings caught)."""
    folder = shared_data(REL)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        rec = read_nelpy_linear_track(folder)
    return folder, rec, list(w)


@pytest.fixture(scope="module")
def track(track_read):
    folder, rec, caught = track_read
    return folder, rec, [str(x.message) for x in caught]


def test_the_readers_warnings_point_at_its_caller(track_read):
    """The warnings of the left-out units and of the dropped position records (the tracking file repeats a
    record's time) pointed inside nelpy.py (no stacklevel), not at the line that called the reader."""
    caught = track_read[2]
    said = {str(x.message).split(" ", 2)[1]: x.filename for x in caught
            if str(x.message).startswith("read_nelpy_linear_track: ")}
    assert said == {"left": __file__, "dropped": __file__}, [(str(x.message)[:60], x.filename) for x in caught]


def test_units_spikes_clock(track):
    # 31 units and 28,829 spikes: ../shared/data/README.md; the clock values are regression pins
    # from an earlier read of the same files
    folder, rec, msgs = track
    assert rec.n_units == 31
    assert rec.n_spikes == 28829
    assert rec.unit_names[0] == "tt1_u1" and set(rec.unit_areas) == {"CA1"}
    assert np.all(np.diff(rec.spike_times) >= 0)
    # the units' timerange starts the domain; the video runs on to 6379.46 s
    assert rec.time_domain[0] == pytest.approx(4396.9975)
    assert rec.time_domain[1] == pytest.approx(6379.4556, abs=1e-3)
    assert 4397.0 < rec.spike_times[0] and rec.spike_times[-1] < 6365.3
    assert any("dropped 1 position record" in m for m in msgs)


def test_units_without_spikes_are_named_in_a_warning(track):
    # 37 unit structs in spikes.mat, 6 of them with an empty 'time' (counted with scipy.io.loadmat):
    # they were left out without a word
    _, rec, msgs = track
    hit = [m for m in msgs if "left out 6 units" in m]
    assert len(hit) == 1 and "31 units with spikes" in hit[0], msgs
    assert not set(rec.unit_names) & {n.strip() for n in hit[0].split("(")[1].split(")")[0].split(",")}


def test_position_speed_and_epochs(track):
    folder, rec, _ = track
    times, xy, header = read_position_tracking(folder / "trajectory.videoPositionTracking")
    assert header["clockrate"] == "30000" and len(times) == 118965
    # first record: 30 kHz ticks -> seconds on the spikes' clock
    assert times[0] == pytest.approx(4397.0317, abs=1e-4)
    x, speed = rec.behaviour["x"], rec.behaviour["speed"]
    assert x.unit == "px" and speed.unit == "px/s" and len(x.timestamps) == 118964
    run0, run1 = rec.epochs["run"]
    assert run0 == pytest.approx(times[0]) and 980 < run1 - run0 < 990  # ~16 min of running
    assert rec.epochs["rest"][0] == run1
    rest = x.timestamps >= run1
    assert np.isnan(x.values[rest]).all() and np.isnan(speed.values[rest]).all()
    assert np.isfinite(x.values[~rest]).all() and np.isfinite(speed.values[~rest]).all()
    assert 130 <= np.nanmin(x.values) and np.nanmax(x.values) <= 560
    # speed of a hand-made straight run at 100 px/s, 60 Hz, is 100 px/s away from the edges
    t = np.arange(600) / 60.0
    v = smoothed_speed(t, np.stack([100 * t, np.zeros_like(t)], 1), 0.25)
    assert v[100:500] == pytest.approx(100.0)


def test_load_recording_dispatch_and_missing_file(tmp_path, track):
    folder, rec, _ = track
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = load_recording(folder, epoch="run")
    assert run.n_spikes == int(np.sum(rec.spike_times < rec.epochs["run"][1]) - np.sum(rec.spike_times < rec.epochs["run"][0]))
    shutil.copy(folder / "spikes.mat", tmp_path / "spikes.mat")
    with pytest.raises(FileNotFoundError, match="videoPositionTracking"):
        read_nelpy_linear_track(tmp_path)
    (tmp_path / "trajectory.videoPositionTracking").write_bytes(b"<Start settings>\nclockrate: 30000\n")
    with pytest.raises(RecordingValidationError, match="End settings"):
        read_nelpy_linear_track(tmp_path)
    (tmp_path / "trajectory.videoPositionTracking").write_bytes(b"clockrate: 30000\n<End settings>\n" + b"\0" * 13)
    with pytest.raises(RecordingValidationError, match="12 bytes"):
        read_nelpy_linear_track(tmp_path)


def test_linear_track_fitted_on_train_running_windows_masks_the_lift_off(track):
    """The track fitted on the training split's running windows (benchmark protocol) keeps ordinary
    running and flags the carry-in (train) and the lift-off at the end of the run (test)."""
    import hf_neuroformer as nf
    from hf_neuroformer.decoding import DecodingTarget, target_values
    from hf_neuroformer.io.nelpy import LinearTrack
    from hf_neuroformer.windows import window_starts_for_split

    _, rec, _ = track
    rec = rec.restrict(*rec.epochs["run"])
    cfg = nf.NeuroformerConfig(current_window=0.25, past_window=1.0, split_block_length=30.0)
    plan = nf.plan_splits(rec, cfg)

    def windows(split):
        st = window_starts_for_split(plan, split, cfg)[0]
        v = {k: target_values(rec, DecodingTarget(k, "regression"), st, 0.25) for k in ("x", "y", "speed")}
        return st - rec.time_domain[0], np.stack([v["x"], v["y"]], 1), v["speed"] > 15.0

    st, xy, run = windows("train")
    tr = LinearTrack.fit(xy[run])
    # the diagonal track of the camera image, ~ (136, 140) to (480, 393) px
    ends = sorted([tuple(tr.centre + tr.start * tr.axis), tuple(tr.centre + tr.stop * tr.axis)])
    np.testing.assert_allclose(ends, [(136, 140), (480, 393)], atol=8)
    assert 60 < tr.half_width < 86
    off = run & ~tr.contains(xy)
    assert np.all((st[off] > 25) & (st[off] < 27.5))  # only the carry-in of the first block
    assert 5 <= off.sum() <= 9
    st, xy, run = windows("test")
    off = run & ~tr.contains(xy)
    assert off.sum() >= 10 and np.all(st[off] > 980)  # only the lift-off at the very end
    assert xy[off, 0].max() > 540  # the LED far right of the track (x up to 554 px)
    assert not tr.contains(np.array([[np.nan, np.nan]]))[0]
    with pytest.raises(ValueError, match="xy"):
        LinearTrack.fit(xy[:5])


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_a_first_record_starting_with_a_newline_byte_is_not_taken_for_the_header(tmp_path, newline):
    """The header ends with one line break; every \\n / \\r byte after '<End settings>' was skipped,
    so a first record whose time began with byte 0x0A or 0x0D (time 10 or 13 ticks, or any time
    whose low byte is one of them) lost a byte and the file was refused as "left over" bytes."""
    rec = np.zeros(3, dtype=[("time", "<u4"), ("x", "<u2"), ("y", "<u2"), ("x2", "<u2"), ("y2", "<u2")])
    rec["time"] = [0x0D0A, 0x0D0A + 1000, 0x0D0A + 2000]  # little-endian: the first bytes are 0x0A 0x0D
    rec["x"], rec["y"] = [10, 11, 12], [20, 21, 22]
    path = tmp_path / "trajectory.videoPositionTracking"
    path.write_bytes(b"<Start settings>" + newline + b"clockrate: 30000" + newline + b"<End settings>" + newline
                     + rec.tobytes())
    times, xy, header = read_position_tracking(path)
    np.testing.assert_array_equal(times, rec["time"] / 30000.0)
    np.testing.assert_array_equal(xy, [[10, 20], [11, 21], [12, 22]])
    assert header["clockrate"] == "30000"


def test_a_tracking_file_without_records_is_named_not_an_index_error(tmp_path, track):
    """A tracking file cut after its header (no record) failed with numpy's "index -1 is out of
    bounds for axis 0 with size 0", and one record with "epochs['run']: expected stop > start";
    both are refused naming the file and the number of records."""
    folder, _, _ = track
    shutil.copy(folder / "spikes.mat", tmp_path / "spikes.mat")
    header = b"<Start settings>\nclockrate: 30000\n<End settings>\n"
    one = np.zeros(1, dtype=[("time", "<u4"), ("x", "<u2"), ("y", "<u2"), ("x2", "<u2"), ("y2", "<u2")])
    for body, n in ((b"", 0), (one.tobytes(), 1)):
        (tmp_path / "trajectory.videoPositionTracking").write_bytes(header + body)
        with pytest.raises(RecordingValidationError, match=rf"trajectory\.videoPositionTracking: expected at least 2 "
                                                           rf"position records, got {n}"):
            read_nelpy_linear_track(tmp_path)


def test_a_tracking_file_whose_last_record_moves_keeps_that_position(tmp_path, track):
    """A tracking file ending while the animal moves (the real one cut inside the run): its last
    record, which differs from the one before, was taken for a final constant stretch of one sample
    and its position and speed set NaN without a word. It is kept, and the run reaches the end."""
    folder, rec, _ = track
    raw = (folder / "trajectory.videoPositionTracking").read_bytes()
    start = raw.index(b"<End settings>") + len(b"<End settings>\n")
    assert raw[start - 1:start] == b"\n"
    times, xy, _ = read_position_tracking(folder / "trajectory.videoPositionTracking")
    k = int(np.searchsorted(times, 5000.0))  # inside the run (4397-5382 s)
    while np.array_equal(xy[k - 1], xy[k - 2]):  # the last kept record differs from the one before
        k += 1
    shutil.copy(folder / "spikes.mat", tmp_path)
    (tmp_path / "trajectory.videoPositionTracking").write_bytes(raw[:start + 12 * k])
    cut = quiet_read(tmp_path)
    assert cut.behaviour["x"].timestamps[-1] == times[k - 1]
    assert cut.behaviour["x"].values[-1] == xy[k - 1, 0] and cut.behaviour["y"].values[-1] == xy[k - 1, 1]
    assert np.isfinite(cut.behaviour["speed"].values[-1])
    assert cut.epochs["run"][1] == times[k - 1]


@pytest.mark.parametrize("sigma", [float("inf"), float("nan"), "0.25", True, -0.1])
def test_a_speed_sigma_that_is_not_seconds_is_refused_by_name(track, sigma):
    """inf passed the '>= 0' check and failed in the smoothing ('cannot convert float infinity to
    integer'), the text '0.25' failed with "'>=' not supported", and True was taken as 1 s."""
    folder, _, _ = track
    with pytest.raises(ValueError, match=r"^read_nelpy_linear_track\.speed_sigma: expected a finite number of seconds "
                                         r">= 0, got "):
        read_nelpy_linear_track(folder, speed_sigma=sigma)


def test_spikes_repeated_within_a_unit_are_counted_as_the_other_readers_count_them(tmp_path, track):
    """A spike listed twice in a unit's 'time' was kept as two tokens without a word, where
    from_arrays, read_nwb and read_phy count such spikes per unit in a warning."""
    import scipy.io

    folder, rec, msgs = track
    assert not any("a spike time of the same unit" in m for m in msgs)  # the shipped file has none
    mat = scipy.io.loadmat(folder / "spikes.mat")
    unit = mat["spikes"][0, 0][0, 0][0, 0][0, 0]  # tetrode 1, unit 1
    t = unit["time"][0, 0]
    unit["time"][0, 0] = np.vstack([t, t[[0, 5, 5]]])
    scipy.io.savemat(tmp_path / "spikes.mat", {"spikes": mat["spikes"]})
    shutil.copy(folder / "trajectory.videoPositionTracking", tmp_path)
    with pytest.warns(UserWarning, match=r"read_nelpy_linear_track: .*spikes\.mat: 3 spikes in 1 unit repeat a "
                                         r"spike time of the same unit exactly \('tt1_u1': 3\); kept") as caught:
        got = read_nelpy_linear_track(tmp_path)
    assert [w.filename for w in caught if "a spike time of the same unit" in str(w.message)] == [__file__]
    assert got.n_spikes == rec.n_spikes + 3


@pytest.mark.parametrize("value", [np.nan, np.inf, -1.0])
def test_a_bad_spike_time_is_refused_naming_the_unit_and_the_file(tmp_path, track, value):
    """A NaN / infinite / negative time in a unit's 'time' was refused as 'spike_times: expected finite
    values, spike 3 (in the order given) is nan': an index into all units' spikes, naming neither the
    unit nor the file."""
    def edit(tetrodes):
        unit = tetrodes[0, 2][0, 13]  # tetrode 3, unit slot 14
        t = unit["time"][0, 0].astype(np.float64)
        t[7] = value
        unit["time"][0, 0] = t

    copy_with(track[0], tmp_path, edit)
    with pytest.raises(RecordingValidationError, match=r"spikes\.mat: spikes\{3\}\{14\}\.time\[7\] \(unit tt3_u14\): "
                                                       rf"expected finite spike times >= 0 s, got {value} \(1 such in "
                                                       r"this unit\)$"):
        quiet_read(tmp_path)


@pytest.mark.parametrize("timerange", [[np.nan, 6365.0], [6365.0, 4397.0], [4397.0]])
def test_a_unit_timerange_that_is_no_span_is_refused_by_name(tmp_path, track, timerange):
    """A unit's timerange with a NaN or stop < start was passed over without a word (the time domain
    came from the other units), and one of another size failed in numpy ('inhomogeneous shape')."""
    def edit(tetrodes):
        tetrodes[0, 0][0, 0]["timerange"][0, 0] = np.array([timerange])  # tetrode 1, unit 1

    copy_with(track[0], tmp_path, edit)
    with pytest.raises(RecordingValidationError, match=r"spikes\.mat: spikes\{1\}\{1\}\.timerange \(unit tt1_u1\): "
                                                       r"expected 2 finite numbers \(start, stop\) in seconds with "
                                                       r"stop >= start, got \["):
        quiet_read(tmp_path)


def copy_with(folder, dest, edit):
    """The real folder copied to ``dest`` with ``edit(tetrodes)`` applied to its spikes.mat (tetrodes: the
    (1, 13) cell array as scipy.io.loadmat gives it; unit j of tetrode i is ``tetrodes[0, i][0, j]``)."""
    import scipy.io

    mat = scipy.io.loadmat(folder / "spikes.mat")
    edit(mat["spikes"][0, 0][0, 0])
    scipy.io.savemat(dest / "spikes.mat", {"spikes": mat["spikes"]})
    shutil.copy(folder / "trajectory.videoPositionTracking", dest)


def quiet_read(folder):
    """read_nelpy_linear_track with its warnings about the shipped file (units without spikes) kept quiet."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_nelpy_linear_track(folder)


@pytest.mark.parametrize("value, got", [("two columns", r"shape \(\d+, 2\) dtype float64"),
                                        ("text", r"shape \(\) dtype <U3")])
def test_a_unit_time_that_is_not_a_vector_of_times_is_refused_by_name(tmp_path, track, value, got):
    """A 'time' of two columns (the times beside another field) was flattened into one spike train without a
    word; text failed in numpy ("could not convert string to float"), naming neither the file nor the unit."""
    def edit(tetrodes):
        unit = tetrodes[0, 2][0, 13]  # tetrode 3, unit slot 14
        t = unit["time"][0, 0].astype(np.float64)
        unit["time"][0, 0] = np.hstack([t, np.zeros_like(t)]) if value == "two columns" else np.array(["abc"])

    copy_with(track[0], tmp_path, edit)
    with pytest.raises(RecordingValidationError, match=r"spikes\.mat: spikes\{3\}\{14\}\.time \(unit tt3_u14\): "
                                                       rf"expected a vector of spike times in seconds, got {got}$"):
        quiet_read(tmp_path)


def test_spike_times_in_clock_ticks_are_named_in_a_warning(tmp_path, track):
    """Each unit's 'time' in 0.1 ms ticks (MClust's timestamps) read as a session of 230 days, and the
    position records (in seconds) as lying months before the spikes, without a word."""
    def edit(tetrodes):
        for i in range(tetrodes.shape[1]):
            for unit in np.atleast_1d(tetrodes[0, i].ravel()):
                if isinstance(unit, np.ndarray) and unit.dtype.names and "time" in unit.dtype.names:
                    unit["time"][0, 0] = np.round(unit["time"][0, 0] * 1e4).astype(np.int64)

    copy_with(track[0], tmp_path, edit)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        read_nelpy_linear_track(tmp_path)
    said = [str(w.message) for w in caught]
    assert any(re.match(r"read_nelpy_linear_track: the spike times of .*spikes\.mat: they span [\d.e+]+ s \(2\d\d\.\d "
                        r"days\) and are read as seconds; if they are in milliseconds or sample ticks, divide", m)
               for m in said), said
    assert any(re.match(r"read_nelpy_linear_track: the position records of .*trajectory\.videoPositionTracking "
                        r"\(4397\.\d+ to 6379\.\d+ s at clockrate 30000\) and the spikes of .*spikes\.mat \([\d.e+]+ to "
                        r"[\d.e+]+ s\) do not overlap", m) for m in said), said


def test_position_records_on_another_clock_than_the_spikes_are_named(tmp_path, track):
    """A tracking header whose clockrate is in kHz (30 for 30 kHz) put the position 1000 times later than
    the spikes: no spike window had a position or speed, without a word."""
    folder = track[0]
    shutil.copy(folder / "spikes.mat", tmp_path)
    raw = (folder / "trajectory.videoPositionTracking").read_bytes()
    assert raw.count(b"clockrate: 30000") == 1
    (tmp_path / "trajectory.videoPositionTracking").write_bytes(raw.replace(b"clockrate: 30000", b"clockrate: 30"))
    with pytest.warns(UserWarning, match=r"the position records of .* \(4\.397\d+e\+06 to 6\.379\d+e\+06 s at "
                                         r"clockrate 30\) and the spikes of .*spikes\.mat \(4397 to 6365\.\d+ s\) "
                                         r"do not overlap: no spike window has a position or speed"):
        read_nelpy_linear_track(tmp_path)


def test_position_records_going_back_in_time_name_the_file(tmp_path, track):
    """A tracking file whose clock was reset midway was refused as 'trajectory.videoPositionTracking: record
    1000 ... goes back in time', without the folder: which of several sessions' files was meant was unknown."""
    folder = track[0]
    shutil.copy(folder / "spikes.mat", tmp_path)
    raw = (folder / "trajectory.videoPositionTracking").read_bytes()
    start = raw.index(b"<End settings>") + len(b"<End settings>\n")
    records = np.frombuffer(raw[start:], dtype=[("time", "<u4"), ("rest", "<u2", 4)]).copy()
    records["time"][1000:] -= records["time"][999]  # the clock restarts at record 1000
    (tmp_path / "trajectory.videoPositionTracking").write_bytes(raw[:start] + records.tobytes())
    with pytest.raises(RecordingValidationError, match=rf"^{re.escape(str(tmp_path))}/trajectory\.videoPositionTracking: "
                                                       r"record 1000 \([\d.]+ s\) goes back in time from record 999 "
                                                       r"\([\d.]+ s\): expected times that never decrease"):
        quiet_read(tmp_path)


@pytest.mark.parametrize("damage, match", [
    ("empty", r"expected a MATLAB \.mat file \(v5 / v7, as scipy\.io\.loadmat reads\), it could not be read "
              r"\(MatReadError: .*; 0 bytes: empty, cut short, or another format\?\)"),
    ("cut", r"expected a MATLAB \.mat file .*, it could not be read \(\w+: .*; \d+ bytes: empty, cut short"),
    ("text", r"expected a MATLAB \.mat file .*, it could not be read \(ValueError: Unknown mat file type"),
    ("v7.3", r"saved as MATLAB v7\.3 \(HDF5\), which scipy\.io\.loadmat does not read .*; save it again as v7"),
])
def test_a_spikes_mat_scipy_cannot_read_is_named(tmp_path, track, damage, match):
    """An empty spikes.mat raised scipy's MatReadError (no ValueError: a traceback from `neuroformer inspect`);
    one cut short ('could not read bytes'), another format ('Unknown mat file type') or a MATLAB v7.3 file
    gave scipy's message, naming no file."""
    import h5py

    folder = track[0]
    shutil.copy(folder / "trajectory.videoPositionTracking", tmp_path)
    path = tmp_path / "spikes.mat"
    if damage == "v7.3":  # MATLAB's 128-byte text header in the HDF5 user block, version 0x0200
        with h5py.File(path, "w", userblock_size=512) as f:
            f["spikes"] = np.zeros(3)
        with open(path, "r+b") as f:
            f.write(b"MATLAB 7.3 MAT-file".ljust(116) + b"\0" * 8 + b"\x00\x02IM")
    else:
        raw = (folder / "spikes.mat").read_bytes()
        path.write_bytes({"empty": b"", "cut": raw[: len(raw) // 2], "text": b"time,unit\n" * 20}[damage])
    with pytest.raises(RecordingValidationError, match=rf"^{re.escape(str(path))}: {match}"):
        quiet_read(tmp_path)


def test_a_tracking_file_that_never_moves_is_named(tmp_path, track):
    """Position records that all hold (0, 0) px (the tracker never found the LED) were read as a whole session
    of running at 0 px/s, without a word."""
    folder = track[0]
    shutil.copy(folder / "spikes.mat", tmp_path)
    raw = (folder / "trajectory.videoPositionTracking").read_bytes()
    start = raw.index(b"<End settings>") + len(b"<End settings>\n")
    records = np.frombuffer(raw[start:], dtype=[("time", "<u4"), ("xy", "<u2", 4)]).copy()
    records["xy"] = 0
    (tmp_path / "trajectory.videoPositionTracking").write_bytes(raw[:start] + records.tobytes())
    with pytest.warns(UserWarning, match=rf"every one of the {len(records) - 1} position records of .* holds the same "
                                         r"position \(0\.0, 0\.0\) px \(the tracker never found the LED\?\)"):
        rec = read_nelpy_linear_track(tmp_path)
    assert np.all(rec.behaviour["speed"].values == 0)  # kept as recorded, said
