"""nelpy linear-track reader on the real files (../shared/data/nelpy_hippocampus/linear-track)."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

from hf_neuroformer.io import load_recording, read_nelpy_linear_track
from hf_neuroformer.io.nelpy import read_position_tracking, smoothed_speed
from hf_neuroformer.recording import RecordingValidationError

REL = "nelpy_hippocampus/linear-track"


@pytest.fixture(scope="module")
def track(shared_data):
    folder = shared_data(REL)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        rec = read_nelpy_linear_track(folder)
    return folder, rec, [str(x.message) for x in w]


def test_units_spikes_clock(track):
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
