"""``neuroformer inspect`` / ``hf_neuroformer.inspection`` on the shared recordings.

The window counts are checked against the tokenized windows training builds
(``build_window_datasets``), so that what inspect says would be cut is what training cuts.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from hf_neuroformer import NeuroformerConfig, NeuroformerTokenizer
from hf_neuroformer.inspection import describe_recording, format_description
from hf_neuroformer.io import load_recording
from hf_neuroformer.windows import build_window_datasets

from tiny_configs import quiet

ALLEN = "allen_vcn_gratings"
A2929 = "pynapple_A2929_headdirection/A2929-200711.nwb"
ZHENG = "zheng2022_human_mtl/sub-4_ses-4_ecephys+image.nwb"


def test_window_counts_are_what_training_tokenizes_and_cuts(shared_data):
    # Allen: 1000 units, trial mode, ~770 spikes per 0.1-s window against a 62-spike budget
    rec = quiet(load_recording, shared_data(ALLEN))
    config = NeuroformerConfig(max_window_length=300)
    desc = describe_recording(rec, config)
    tok = NeuroformerTokenizer.from_config(config)
    tok.add_units(rec)
    dsets, plan = quiet(build_window_datasets, rec, tok, config)
    w = desc["windows"]
    assert w["split_mode"] == plan.mode == "trials"
    for split, ds in dsets.items():
        s = w["splits"][split]
        assert s["n_windows"] == len(ds) > 0
        assert s["n_spikes"] == int(np.sum(ds["n_spikes"]))
        assert s["n_spikes_truncated"] == int(np.sum(ds["n_truncated"])) > 0
        assert s["n_windows_truncated"] == int(np.sum(np.asarray(ds["n_truncated"]) > 0))
        assert s["n_past_windows_truncated"] == int(np.sum(np.asarray(ds["n_past_truncated"]) > 0))
    # the suggested budget holds 99 % of the training windows whole
    n = np.asarray(dsets["train"]["n_spikes"])
    assert np.mean(n <= w["suggested_max_window_length"] - 2) >= 0.99
    assert np.mean(n <= w["suggested_max_window_length"] - 3) < 0.99
    # every past is clipped at its trial's start (one window per trial here): the suggested past budget
    # of 1 (BOS only) read like a mistake without its reason
    assert max(len(p) for p in dsets["train"]["past_input_ids"]) == w["suggested_max_past_length"] == 1
    assert ("max_past_length 1 (no training past window holds a spike: trial mode clips each past at its trial's "
            "start)") in format_description(desc)
    # 20 s of trials in 100 presence bins: the ratio says more about the rate than about drift, and the text says so
    # a steady unit misses a 0.2-s bin with probability exp(-0.2 r): below 0.9 for r under ln(10) / 0.2 = 12 Hz, not
    # 1 / 0.2 = 5 Hz
    assert "(bins of 0.2 s, a short recording: a unit firing steadily below about 12 Hz misses more than 10% of them " \
           "without having drifted out)" in format_description(desc)
    rates, ratio = rec.firing_rates(), np.array([desc["unit_presence_ratio"][n] for n in rec.unit_names])
    between = (rates > 5) & (rates < np.log(10) / 0.2)
    assert np.mean(ratio[between] < 0.9) > 0.9


def test_summary_names_epochs_targets_and_rates(shared_data):
    rec = quiet(load_recording, shared_data(A2929))
    desc = describe_recording(rec)
    assert desc["n_units"] == 15 and desc["n_spikes"] == rec.n_spikes
    wake = next(e for e in desc["epochs"] if e["name"] == "wake")
    assert wake["duration_s"] == pytest.approx(600.0)
    assert wake["n_spikes"] == rec.select_epoch("wake").n_spikes
    ripples = next(e for e in desc["epochs"] if e["name"] == "sleep_ripples")
    assert ripples["n_intervals"] == 594  # a union of intervals, counted inside them only
    assert ripples["n_spikes"] == quiet(rec.select_epoch, "sleep_ripples").n_spikes
    rates = desc["unit_firing_rate_hz"]
    np.testing.assert_allclose([rates[n] for n in rec.unit_names], np.bincount(rec.unit_ids) / 1200.0)
    ry = next(b for b in desc["behaviour"] if b["name"] == "ry")
    assert ry["unit"] == "radian" and ry["n_samples"] == len(rec.behaviour["ry"].timestamps)
    assert ry["sample_rate_hz"] == pytest.approx(120, rel=0.01)
    text = format_description(desc)
    assert "epochs (--epoch NAME):" in text and "[--target ry]" in text
    assert rec.summary() == text
    # x, y, z have no unit in the NWB file: their range said so, not a bare number beside ry's "radian"
    lines = {ln.split(":")[0].strip(): ln for ln in text.splitlines() if ln.startswith("  ")}
    for name in ("x", "y", "z"):
        assert re.search(r"range \S+ to \S+ \(unit not recorded\) \[--target " + name + r"\]", lines[name]), lines[name]
    assert re.search(r"range \S+ to \S+ radian \[--target ry\]", lines["ry"]), lines["ry"]



def test_the_units_brain_areas_are_said_per_area_and_per_unit(shared_data):
    """The areas read from an NWB file (A2929: 7 head-direction units in adn, 8 in ca1) were said
    nowhere by inspect, text or JSON; a recording without areas gets no line."""
    from hf_neuroformer.simulation import default_recording

    rec = quiet(load_recording, shared_data(A2929))
    desc = describe_recording(rec)
    counts = np.bincount(rec.unit_ids, minlength=rec.n_units)
    expected = {a: (sum(1 for u in rec.unit_areas if u == a), int(sum(c for u, c in zip(rec.unit_areas, counts) if u == a)))
                for a in set(rec.unit_areas)}
    assert {e["area"]: (e["n_units"], e["n_spikes"]) for e in desc["areas"]} == expected
    assert sorted((a, n) for a, (n, _) in expected.items()) == [("adn", 7), ("ca1", 8)]
    assert desc["unit_area"] == dict(zip(rec.unit_names, rec.unit_areas))
    line = next(ln for ln in format_description(desc).splitlines() if ln.startswith("areas"))
    assert f"adn 7 units ({expected['adn'][1]} spikes)" in line and f"ca1 8 units ({expected['ca1'][1]} spikes)" in line
    json.dumps(desc["areas"])
    plain = quiet(default_recording)
    assert not any(a for a in plain.unit_areas)
    assert "areas" not in format_description(describe_recording(plain)).split("\nwindows")[0]

def test_trial_columns_show_labels_ranges_and_missing_values(shared_data):
    desc = describe_recording(quiet(load_recording, shared_data(ZHENG)))
    cols = {c["name"]: c for c in desc["trials"]["columns"]}
    assert desc["trials"]["n_trials"] == 450
    assert cols["stimCategory"]["values"] == [0.0, 1.0, 2.0] and cols["stimCategory"]["n_missing"] == 360
    assert cols["stimCategory"]["target"] == "trial:stimCategory"
    assert cols["task"]["kind"] == "text" and cols["task"]["target"] is None  # decoding reads numbers only
    rt = cols["RT"]  # 355 reaction times: a range, not a list
    assert rt["n_values"] == 355 and len(rt["values"]) == 2 and rt["values"][0] < rt["values"][1]
    text = format_description(desc)
    assert "  task (text, 3 values: encoding, recognition, timediscrimination) [text: map it" in text


def test_a_recording_training_would_refuse_says_why(shared_data):
    rec = quiet(load_recording, shared_data(A2929)).restrict(600.0, 603.0)
    desc = describe_recording(rec)
    assert "error" in desc["windows"] and "splits" not in desc["windows"]
    text = format_description(desc)
    # 3 s cannot hold a 1.1-s window with its past plus the 1-s split gap per split: no block length would help
    assert "training would refuse this recording with these settings: past_window: the recording covers 3.000 s, " \
           "too short for 3 splits" in text
    assert "  ry: no samples here" in text  # before the tracking starts (670.6 s): no NaN printed as a range


def test_inspect_command_writes_json_and_figure_and_keeps_them(shared_data, tmp_path, capsys):
    from hf_neuroformer.cli import main

    nwb = shared_data(A2929)
    out, fig = tmp_path / "a2929.json", tmp_path / "a2929.png"
    assert main(["inspect", "--data", str(nwb), "--epoch", "wake", "--output", str(out), "--figure", str(fig)]) == 0
    printed = capsys.readouterr().out
    desc = json.loads(out.read_text())
    assert desc["n_spikes"] == quiet(load_recording, nwb, epoch="wake").n_spikes
    assert f"{desc['n_spikes']} spikes" in printed and fig.read_bytes()[:4] == b"\x89PNG"
    before = out.read_text()
    assert main(["inspect", "--data", str(nwb), "--output", str(out)]) == 2  # exists: refused, kept
    assert "--output" in capsys.readouterr().err and out.read_text() == before
    # never the recording itself, --overwrite or not
    assert main(["inspect", "--data", str(nwb), "--figure", str(nwb) + ".png", "--output", str(nwb),
                 "--overwrite"]) == 2
    assert "the file this command reads" in capsys.readouterr().err


def test_a_column_without_a_value_in_the_epoch_is_not_offered_as_a_target(shared_data):
    # Zheng's recognition trials have no stimCategory / clip (those label the encoding trials): decoding
    # drops every window of a trial whose value is not finite, so no window would be left
    desc = describe_recording(quiet(load_recording, shared_data(ZHENG), epoch="recognition_table"))
    cols = {c["name"]: c for c in desc["trials"]["columns"]}
    assert cols["stimCategory"]["n_values"] == 0 and cols["stimCategory"]["n_missing"] == 180
    assert cols["stimCategory"]["target"] is None and cols["resp_value"]["target"] == "trial:resp_value"
    text = format_description(desc)
    assert "  stimCategory (numeric, 0 values: none; 180 missing) [no value: nothing to decode]" in text
    assert "  Clip_name (text, 0 values: none; 180 missing) [no value: nothing to decode]" in text


def test_a_series_on_another_clock_is_not_offered_as_a_target(shared_data):
    """Head angles stamped in Unix time beside spikes from 0 were listed with '--target ry', and
    finetune then refused with window counts only: no sample lies inside the recorded time."""
    import dataclasses

    rec = quiet(load_recording, shared_data(A2929), epoch="wake")
    ry = rec.behaviour["ry"]
    shifted = dataclasses.replace(ry, timestamps=ry.timestamps + 1.7e9)
    desc = describe_recording(dataclasses.replace(rec, behaviour={"ry": shifted, "rx": rec.behaviour["rx"]}))
    got = {b["name"]: b for b in desc["behaviour"]}
    assert got["ry"]["target"] is None and got["ry"]["n_inside_recording"] == 0
    assert got["rx"]["target"] == "rx" and got["rx"]["n_inside_recording"] == rec.behaviour["rx"].timestamps.size
    text = format_description(desc)
    assert "none inside the recorded time (600.000-1200.000 s): another clock?" in text
    assert "[--target ry]" not in text and "[--target rx]" in text


def test_an_epoch_without_spikes_is_refused_as_training_refuses_it(shared_data):
    # A2929's real spikes with an epoch after its last spike (a recording whose sorter lost the units late)
    from hf_neuroformer.io import from_arrays
    from hf_neuroformer.recording import BehaviourSeries, RecordingValidationError

    rec = quiet(load_recording, shared_data(A2929), epoch="wake")
    early = rec.spike_times < 900.0
    ts = np.arange(600.0, 1200.0, 0.5)
    rec = from_arrays(rec.spike_times[early], rec.unit_ids[early], unit_names=rec.unit_names, time_domain=(600., 1200.),
                      epochs={"late": (900.0, 1200.0)},
                      behaviour={"speed": BehaviourSeries(ts, np.full(ts.size, np.nan), "cm/s")})  # tracking lost
    late = rec.select_epoch("late")
    config = NeuroformerConfig()
    tok = NeuroformerTokenizer.from_config(config)
    tok.add_units(late)
    with pytest.raises(RecordingValidationError, match="expected at least one spike"):
        build_window_datasets(late, tok, config)
    desc = describe_recording(late, config)
    assert "expected at least one spike" in desc["windows"]["error"] and "splits" not in desc["windows"]
    assert desc["behaviour"][0]["target"] is None  # no finite sample: nothing to decode
    text = format_description(desc)
    assert "training would refuse this recording with these settings: recording.spike_times" in text
    assert "speed: 600 samples at ~2 Hz, 900.000-1199.500 s, no finite value, 600 samples with NaN " \
           "[nothing to decode]" in text


def test_an_epoch_of_many_intervals_is_as_long_and_holds_the_spikes_select_epoch_gives(shared_data):
    # Zheng's recognition trials overlap 3 times (a spike in two rows was counted twice), and span 627.9 s
    # of which they fill 274.5 s; A2929's 594 ripples span 599 s and last 37.6 s
    for path, name in ((ZHENG, "recognition_table"), (A2929, "sleep_ripples")):
        rec = quiet(load_recording, shared_data(path))
        epoch = next(e for e in describe_recording(rec)["epochs"] if e["name"] == name)
        chosen = quiet(rec.select_epoch, name)
        assert epoch["n_spikes"] == chosen.n_spikes
        assert epoch["duration_s"] == pytest.approx(chosen.duration, abs=1e-9)
        assert epoch["duration_s"] < 0.5 * (epoch["stop_s"] - epoch["start_s"])
    # after --epoch sleep_ripples, the epoch "sleep" holds the ripples only
    rip = quiet(load_recording, shared_data(A2929), epoch="sleep_ripples")
    sleep = next(e for e in describe_recording(rip)["epochs"] if e["name"] == "sleep")
    assert sleep["duration_s"] == pytest.approx(rip.duration) and sleep["n_spikes"] == rip.n_spikes
    assert "  sleep_ripples: 0.736-599.738 s (37.6 s in 594 intervals), 5740 spikes" in \
        format_description(describe_recording(rip))


def test_the_suggested_budget_is_one_the_config_takes_for_mostly_empty_windows(shared_data):
    # nelpy's rest epoch at 14 spikes/s in 0.5-ms windows: 99 % of the windows are empty
    rec = quiet(load_recording, shared_data("nelpy_hippocampus/linear-track"), epoch="rest")
    kw = dict(current_window=0.0005, past_window=0.002, dt_resolution=0.0005)
    w = describe_recording(rec, NeuroformerConfig(**kw))["windows"]
    assert w["splits"]["train"]["spikes_per_window"]["p99"] == 0
    assert w["suggested_max_window_length"] == 3
    NeuroformerConfig(**kw, max_window_length=w["suggested_max_window_length"],
                      max_past_length=w["suggested_max_past_length"])  # the config takes what inspect suggests


def test_a_modality_training_would_refuse_is_named(shared_data, tmp_path):
    # inspect --config with modalities said nothing of a source the recording lacks, or of one without a value in
    # the training split, and reported the windows as fine; train then refused at once (README walk finding)
    from pathlib import Path

    from hf_neuroformer.training import load_yaml_config, train

    config = load_yaml_config(Path(__file__).resolve().parents[1] / "configs" / "a2929_head_direction.yaml")[0]
    sleep = quiet(load_recording, shared_data(A2929), epoch="sleep")  # ry is tracked in wake only
    desc = describe_recording(sleep, config)
    want = "modalities[0] ('head_direction'): no finite value of 'behaviour:ry' inside the training split"
    assert want in desc["windows"]["error"] and "splits" not in desc["windows"]
    assert "training would refuse this recording with these settings: NeuroformerConfig.modalities[0]" in \
        format_description(desc)
    with pytest.raises(ValueError, match=r"no finite value of 'behaviour:ry' inside the training split"):
        quiet(train, sleep, tmp_path / "m", config)  # what inspect says is what training says
    spikes_only = sleep.select_units(list(range(sleep.n_units)))
    spikes_only.behaviour = {}
    assert "'behaviour:ry' is not in the recording; the recording has behaviour []" in \
        describe_recording(spikes_only, config)["windows"]["error"]
    config.modalities[0]["normalization"] = "zscore"  # fitting sets its mean and std
    before = json.dumps(config.modalities, sort_keys=True)
    wake = describe_recording(quiet(load_recording, shared_data(A2929), epoch="position_time_support"), config)
    assert "error" not in wake["windows"]
    assert json.dumps(config.modalities, sort_keys=True) == before  # fitted on a copy: the caller's config untouched


def test_the_inspect_raster_starts_where_the_units_fire(shared_data):
    # a Phy folder's time starts at sample 0; a sort whose first spike comes 600 s later (the A2929 wake spikes,
    # as tests/test_io_phy.py writes them) drew an empty 0-10 s raster (README walk finding)
    from hf_neuroformer.io import from_arrays
    from hf_neuroformer.plotting import plot_recording

    wake = quiet(load_recording, shared_data(A2929), epoch="wake")
    rec = from_arrays(wake.spike_times, wake.unit_ids, unit_names=wake.unit_names, time_domain=(0.0, 1200.0))
    raster = plot_recording(rec, stretch=7.0).axes[0]
    first = float(rec.spike_times[0])  # 600.006 s
    a, b = raster.get_xlim()
    assert a == 595.0 and b == 602.0 and a <= first < b  # the 7-s stretch from time 0 that holds the first spike
    assert "595.00-602.00 s" in raster.get_title(loc="left")
    # the order is the whole recording's firing rates, not the stretch's (a top unit may be silent in view)
    assert "(firing rate over the whole recording, highest on top)" in raster.get_title(loc="left")
    assert sum(len(c.get_positions()) for c in raster.collections) > 0  # spikes drawn
    # spikes from the start: the start, as before
    assert plot_recording(wake, stretch=7.0).axes[0].get_xlim() == (600.0, 607.0)


def test_the_inspect_raster_of_short_trials_spans_several_trials(shared_data):
    """``neuroformer inspect --figure`` on the Allen gratings (a time support of 200 trials of 0.1 s,
    0.1 s apart) drew a raster of the first trial alone, 0.1 s: the stretch stopped at the end of its
    support interval. It now runs on across the gaps (shaded as not recorded) for the whole stretch."""
    from hf_neuroformer.io import read_allen_gratings
    from hf_neuroformer.plotting import plot_recording

    rec = read_allen_gratings(shared_data(ALLEN))
    fig = plot_recording(rec, stretch=5.0, max_units=10)
    raster = fig.axes[0]
    assert raster.get_xlim() == (0.0, 5.0)
    units = np.argsort(-rec.firing_rates(), kind="stable")[:10]
    drawn = [np.asarray(c.get_positions()) for c in raster.collections]  # one row per unit, most active on top
    in_view = (rec.spike_times >= 0.0) & (rec.spike_times < 5.0)
    for k, t in zip(units, drawn):
        np.testing.assert_array_equal(np.sort(t), rec.spike_times[in_view & (rec.unit_ids == k)])
    shown = np.concatenate(drawn)
    trials = np.unique(np.searchsorted(rec.trials[:, 0], shown, side="right") - 1)
    np.testing.assert_array_equal(trials, np.arange(25))  # the 25 trials of the first 5 s, each with spikes drawn
    # the gaps between the trials are shaded, and only they
    spans = sorted((p.get_x(), p.get_x() + p.get_width()) for p in raster.patches)
    np.testing.assert_allclose(spans, np.stack([rec.trials[:25, 1], np.r_[rec.trials[1:25, 0], 5.0]], 1), atol=1e-12)
    assert "25 intervals of the time support; grey: time not recorded" in raster.get_title(loc="left")


def _presence_by_histogram(times, units, n_units, a, b, n_bins):
    """(n_units, n_bins) bool: a spike of the unit in each of n_bins equal bins of [a, b)."""
    edges = np.linspace(a, b, n_bins + 1)
    return np.stack([np.histogram(times[units == u], edges)[0] > 0 for u in range(n_units)])


def test_presence_ratio_is_the_share_of_equal_bins_with_a_spike(shared_data):
    # A2929 over its 1200 s: 100 bins of 12 s; three units fire in fewer than 90 of them
    rec = quiet(load_recording, shared_data(A2929))
    desc = describe_recording(rec)
    want = _presence_by_histogram(rec.spike_times, rec.unit_ids, rec.n_units, 0.0, 1200.0, 100).mean(axis=1)
    got = desc["unit_presence_ratio"]
    np.testing.assert_allclose([got[n] for n in rec.unit_names], want)
    pr = desc["presence_ratio"]
    assert pr["n_bins"] == 100 and pr["bin_s"] == pytest.approx(12.0) and pr["median"] == pytest.approx(np.median(want))
    low = [rec.unit_names[i] for i in np.argsort(want, kind="stable") if want[i] < 0.9]
    assert pr["units_below"] == low and len(low) == 3
    text = format_description(desc)
    line = next(x for x in text.splitlines() if x.startswith("presence ratio"))
    assert line == (f"presence ratio (share of 100 bins of 12 s with a spike): median {np.median(want):.2f}; 3 of 15 "
                    f"units below 0.9: " + ", ".join(f"{n} ({got[n]:.2f})" for n in low))
    assert "longest stretch without any spike" not in text  # 0.43 s at most: shorter than a window with its past
    assert "a short recording" not in text  # 12-s bins: no note that the ratio measures the rate
    # a support of two intervals, 200 s each (restricted oddly): its 100 bins are 4 s of support, 50 in each interval,
    # the 400 s between them left out
    from hf_neuroformer.io import from_arrays

    keep = ((rec.spike_times >= 100) & (rec.spike_times < 300)) | ((rec.spike_times >= 700) & (rec.spike_times < 900))
    t, u = rec.spike_times[keep], rec.unit_ids[keep]
    two = from_arrays(t, u, unit_names=rec.unit_names, time_domain=(0.0, 1200.0),
                      time_support=[[100.0, 300.0], [700.0, 900.0]])
    want = np.concatenate([_presence_by_histogram(t, u, rec.n_units, 100.0, 300.0, 50),
                           _presence_by_histogram(t, u, rec.n_units, 700.0, 900.0, 50)], axis=1).mean(axis=1)
    got = describe_recording(two)["unit_presence_ratio"]
    np.testing.assert_allclose([got[n] for n in rec.unit_names], want)
    # binned over 100-900 s instead, the 400 s gap would hold half of the bins, all without spikes: no unit above 0.51
    assert max(want) == 1.0


def test_units_without_spikes_in_a_split_are_named(shared_data):
    # A2929's wake with unit3 lost wherever the training split is (a unit the sorter only finds late), and unit7
    # without any spike: unit3 is a token the model would meet in validation / test only
    from hf_neuroformer.io import from_arrays
    from hf_neuroformer.windows import plan_splits

    wake = quiet(load_recording, shared_data(A2929), epoch="wake")
    config = NeuroformerConfig()
    train = plan_splits(wake, config).segments["train"]
    in_train = np.zeros(wake.n_spikes, dtype=bool)
    for a, b in train:
        in_train |= (wake.spike_times >= a) & (wake.spike_times < b)
    drop = ((wake.unit_ids == 3) & in_train) | (wake.unit_ids == 7)
    rec = from_arrays(wake.spike_times[~drop], wake.unit_ids[~drop], unit_names=wake.unit_names,
                      time_domain=(600.0, 1200.0))
    plan = plan_splits(rec, config)
    np.testing.assert_array_equal(plan.segments["train"], train)
    desc = describe_recording(rec, config)
    for split, s in desc["windows"]["splits"].items():
        seg = plan.segments[split]
        inside = np.zeros(rec.n_spikes, dtype=bool)
        for a, b in seg:
            inside |= (rec.spike_times >= a) & (rec.spike_times < b)
        want = [n for i, n in enumerate(rec.unit_names) if not np.any(inside & (rec.unit_ids == i))]
        assert s["units_without_spikes"] == want
    assert desc["windows"]["splits"]["train"]["units_without_spikes"] == ["unit3", "unit7"]
    assert desc["windows"]["splits"]["test"]["units_without_spikes"] == ["unit7"]
    text = format_description(desc)
    assert "      2 units without a spike in train: unit3, unit7 (1 of them with spikes in another split: tokens the " \
           "model never learns)" in text
    assert "      1 unit without a spike in test: unit7" in text
    # nothing said when every unit fires in every split
    assert "without a spike in" not in format_description(describe_recording(wake, config))


def test_the_longest_stretch_without_spikes_is_found_and_said_when_long(shared_data):
    from hf_neuroformer.io import from_arrays

    # A2929's wake with the spikes of 812.5-861.25 s cut out (the sort lost every unit for 49 s)
    wake = quiet(load_recording, shared_data(A2929), epoch="wake")
    cut = (wake.spike_times >= 812.5) & (wake.spike_times < 861.25)
    rec = from_arrays(wake.spike_times[~cut], wake.unit_ids[~cut], unit_names=wake.unit_names,
                      time_domain=(600.0, 1200.0))
    edges = np.concatenate([[600.0], rec.spike_times, [1200.0]])
    k = int(np.argmax(np.diff(edges)))
    desc = describe_recording(rec)
    assert desc["longest_silence"]["duration_s"] == pytest.approx(edges[k + 1] - edges[k])
    assert desc["longest_silence"]["start_s"] == edges[k] < 812.5 and edges[k + 1] >= 861.25
    assert f"longest stretch without any spike: {edges[k + 1] - edges[k]:.3f} s from {edges[k]:.3f} s (a window " \
           "with its past spans 1.1 s)" in format_description(desc)
    # A2929's 594 ripples: inside each interval (from its start to its first spike, between spikes, from the last
    # spike to its end), never across the gap between two ripples
    rip = quiet(load_recording, shared_data(A2929), epoch="sleep_ripples")
    best, start = 0.0, None
    for a, b in rip.support:
        e = np.concatenate([[a], rip.spike_times[(rip.spike_times >= a) & (rip.spike_times < b)], [b]])
        j = int(np.argmax(np.diff(e)))
        if e[j + 1] - e[j] > best:
            best, start = e[j + 1] - e[j], e[j]
    got = describe_recording(rip)["longest_silence"]
    assert got["duration_s"] == pytest.approx(best) and got["start_s"] == start and best < 1.0


def test_a_unit_firing_only_in_past_windows_of_a_split_is_named(shared_data):
    # A2929's wake with unit3 kept in the training split only where a training window's past reaches but no current
    # window does (the first past_window_s of each training block): context there, never a spike the model predicts
    from hf_neuroformer.io import from_arrays
    from hf_neuroformer.windows import _split_windows, plan_splits

    wake = quiet(load_recording, shared_data(A2929), epoch="wake")
    config = NeuroformerConfig()
    plan = plan_splits(wake, config)
    starts, _ = _split_windows(plan, "train", config)
    in_current = np.zeros(wake.n_spikes, dtype=bool)
    for a in starts:
        in_current |= (wake.spike_times >= a) & (wake.spike_times < a + config.current_window)
    in_train = np.zeros(wake.n_spikes, dtype=bool)
    for a, b in plan.segments["train"]:
        in_train |= (wake.spike_times >= a) & (wake.spike_times < b)
    drop = (wake.unit_ids == 3) & in_train & in_current
    assert np.sum((wake.unit_ids == 3) & in_train & ~in_current) > 0  # unit3 keeps spikes in training past windows
    rec = from_arrays(wake.spike_times[~drop], wake.unit_ids[~drop], unit_names=wake.unit_names,
                      time_domain=(600.0, 1200.0))
    np.testing.assert_array_equal(plan_splits(rec, config).segments["train"], plan.segments["train"])
    desc = describe_recording(rec, config)
    assert desc["windows"]["splits"]["train"]["units_without_spikes"] == ["unit3"]
    assert "      1 unit without a spike in train: unit3 (1 of them with spikes in another split: tokens the model " \
           "never learns)" in format_description(desc)


def test_a_spike_on_the_edge_of_two_tiled_windows_is_counted_once_as_training_counts_it(shared_data):
    # A2929 wake, 0.1-s windows tiling 10-s blocks: window starts such as 647.7 s lie on the tokenizer's 1 ns grid,
    # but 647.7 + 0.1 is 647.8000000000001 in floating point, so a spike at exactly 647.8 s was counted in
    # [647.7, 647.8) as well as in [647.8, 647.9): inspect said 7515 test spikes where training tokenizes 7514
    rec = quiet(load_recording, shared_data(A2929), epoch="wake")
    config = NeuroformerConfig()
    desc = describe_recording(rec, config)
    tok = NeuroformerTokenizer.from_config(config)
    tok.add_units(rec)
    dsets, plan = quiet(build_window_datasets, rec, tok, config)
    assert plan.mode == "time"
    for split, ds in dsets.items():
        s = desc["windows"]["splits"][split]
        assert s["n_windows"] == len(ds) > 0
        assert s["n_spikes"] == int(np.sum(ds["n_spikes"])), split
        assert s["spikes_per_window"]["max"] == int(np.max(ds["n_spikes"])), split


def test_spikes_in_no_split_and_in_no_window_are_counted_as_training_counts_them():
    # inspect said nothing of the spikes that no model trains on: on Zheng 2022, 110,249 of 214,278 (51 %)
    # lie between the trials that trial mode splits, and each split's spikes in no current window were only
    # in train's metrics.json
    from hf_neuroformer.io import from_arrays
    from hf_neuroformer.windows import SPLITS, spikes_outside_windows

    rng = np.random.default_rng(3)
    t = np.sort(rng.uniform(0.0, 60.0, 3000))
    starts = np.arange(0.5, 59.0, 2.0)  # 0.75-s trials every 2 s: most spikes lie between them
    trials = np.stack([starts, starts + 0.75], axis=1)
    rec = from_arrays(t, rng.integers(0, 3, t.size), unit_names=["a", "b", "c"], time_domain=(0.0, 60.0),
                      trials=trials, session="s")
    config = NeuroformerConfig(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=16,
                               max_past_length=32)
    desc = describe_recording(rec, config)
    w = desc["windows"]
    in_trials = np.zeros(t.size, dtype=bool)
    for a, b in trials:
        in_trials |= (t >= a) & (t < b)
    assert w["n_spikes_outside_splits"] == int((~in_trials).sum()) > 1500
    tok = NeuroformerTokenizer.from_config(config)
    tok.add_units(rec)
    dsets, plan = build_window_datasets(rec, tok, config)
    outside = spikes_outside_windows(rec, plan, config, {s: dsets[s]["window_start"] for s in SPLITS})
    for split in SPLITS:
        s = w["splits"][split]
        # 0.75-s trials hold 7 whole 0.1-s windows: the last 0.05 s of each is in none
        assert s["n_spikes_outside_windows"] == outside[split]["n_spikes_outside_windows"] > 0
        assert s["seconds_outside_windows"] == pytest.approx(outside[split]["seconds_outside_windows"])
        assert s["n_spikes"] + s["n_spikes_outside_windows"] == outside[split]["n_spikes"]
    assert sum(s["n_spikes"] + s["n_spikes_outside_windows"] for s in w["splits"].values()) \
        + w["n_spikes_outside_splits"] == rec.n_spikes
    text = format_description(desc)
    assert f"{w['n_spikes_outside_splits']} of the 3000 spikes" in text and "lie in no split (between trials" in text
    assert f"{w['splits']['train']['n_spikes_outside_windows']} spikes of the split in no current window" in text


def test_a_split_without_windows_says_so_not_nan_statistics():
    """Break test: split_fractions [0.8, 0.2, 0.0] (train accepts a split of 0: no test) printed
    'test (0 s, 0 windows): spikes per window mean nan, median nan, 99th percentile nan, max nan;
    0 windows truncated (0 of 0 spikes)' and the same of its past windows."""
    from hf_neuroformer.io import from_arrays

    rng = np.random.default_rng(5)
    t = np.sort(rng.uniform(0.0, 40.0, 800))
    rec = from_arrays(t, rng.integers(0, 2, t.size), unit_names=["a", "b"], time_domain=(0.0, 40.0), session="s")
    config = NeuroformerConfig(current_window=0.1, past_window=0.2, dt_resolution=0.01, max_window_length=16,
                               max_past_length=32, split_block_length=4.0, split_fractions=[0.8, 0.2, 0.0])
    desc = describe_recording(rec, config)
    assert desc["windows"]["splits"]["test"]["n_windows"] == 0 and desc["windows"]["split_fractions"] == [0.8, 0.2, 0.0]
    text = format_description(desc)
    assert "  test (0 s): no window (split_fractions [0.8, 0.2, 0.0])" in text.splitlines(), text
    assert "nan" not in text, text


def test_a_split_of_overlapping_trials_lasts_the_time_they_cover():
    # a split's duration summed its trials' lengths, so two overlapping trials counted their shared time twice
    # (Zheng 2022's train split: 954.7 s said, 953.8 s covered), unlike train's seconds_outside_windows
    from hf_neuroformer.io import from_arrays

    rng = np.random.default_rng(4)
    t = np.sort(rng.uniform(0.0, 20.0, 1000))
    trials = np.array([[1.0, 2.0], [1.5, 2.5], [4.0, 5.0], [7.0, 8.0], [10.0, 11.0], [13.0, 14.0]])
    rec = from_arrays(t, rng.integers(0, 2, t.size), unit_names=["a", "b"], time_domain=(0.0, 20.0),
                      trials=trials, session="s")
    config = NeuroformerConfig(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=16,
                               max_past_length=32)
    w = describe_recording(rec, config)["windows"]
    assert w["split_mode"] == "trials"
    # the overlapping pair is one group in one split: 1.5 s covered, not 2 s
    assert sum(s["duration_s"] for s in w["splits"].values()) == pytest.approx(5.5)


def test_one_unit_is_said_in_the_singular():
    """'1 units (0 without spikes)' in the first line for a one-unit recording."""
    from hf_neuroformer import SpikeRecording

    rec = SpikeRecording(spike_times=np.array([0.1, 0.5, 0.9]), unit_ids=np.zeros(3, dtype=int), session="s")
    assert format_description(describe_recording(rec)).startswith("session s: 1 unit (0 without spikes), ")


def test_a_behaviour_series_of_one_sample_is_said_without_a_sample_rate():
    """One sample has no interval to give a rate: it was printed as '1 samples at ~nan Hz'."""
    from hf_neuroformer.io import from_arrays
    from hf_neuroformer.recording import BehaviourSeries

    rec = from_arrays(np.array([0.1, 0.5, 0.9]), np.zeros(3, dtype=int), time_domain=(0.0, 1.0),
                      behaviour={"reward_size": BehaviourSeries(np.array([0.3]), np.array([2.5]), "ul")})
    desc = describe_recording(rec)
    assert desc["behaviour"][0]["n_samples"] == 1 and np.isnan(desc["behaviour"][0]["sample_rate_hz"])
    text = format_description(desc)
    assert "reward_size: 1 sample, at 0.300 s, range 2.5 to 2.5 ul" in text, text
    assert "nan Hz" not in text


def test_a_behaviour_unit_is_printed_as_the_decoding_figure_gives_it():
    """The summary re-implemented recording.unit_or_not_recorded: a unit the file pads with spaces
    (' cm/s ') was printed unstripped ('range 1 to 2  cm/s  [...'), while the decoding figure's label,
    through unit_or_not_recorded, reads 'cm/s'. Now both use the one definition; a blank unit still
    reads '(unit not recorded)'."""
    from hf_neuroformer.io import from_arrays
    from hf_neuroformer.recording import BehaviourSeries

    ts = np.array([0.1, 0.2])
    rec = from_arrays(np.array([0.1, 0.5, 0.9]), np.zeros(3, dtype=int), time_domain=(0.0, 1.0),
                      behaviour={"speed": BehaviourSeries(ts, np.array([1.0, 2.0]), " cm/s "),
                                 "x": BehaviourSeries(ts, np.array([1.0, 2.0]), "  ")})
    lines = {ln.split(":")[0].strip(): ln for ln in format_description(describe_recording(rec)).splitlines()}
    assert lines["speed"].endswith("range 1 to 2 cm/s [--target speed]"), lines["speed"]
    assert lines["x"].endswith("range 1 to 2 (unit not recorded) [--target x]"), lines["x"]


def test_stimulus_frames_are_described_with_their_shape_rate_and_span():
    """A video modality's config needs ``frame_shape`` (frames of another size are refused) and its
    ``num_frames`` follows from the frame rate, but inspect said only '10 frames'. It gives the
    shape, the frame rate and the onsets' span now (a span beyond the recorded time shows another
    clock); one frame has no rate and is said without one."""
    from hf_neuroformer import SpikeRecording
    from hf_neuroformer.recording import Stimulus

    def rec(frame_times):
        ft = np.asarray(frame_times, dtype=float)
        return SpikeRecording(spike_times=np.array([0.05, 0.5]), unit_ids=np.array([0, 1]), time_domain=(0.0, 1.0),
                              stimulus=Stimulus(frames=np.zeros((len(ft), 16, 12), np.uint8), frame_times=ft))

    desc = describe_recording(rec(np.arange(10) * 0.1))
    assert desc["stimulus"]["frame_shape"] == [16, 12] and desc["stimulus"]["frame_rate_hz"] == pytest.approx(10.0)
    text = format_description(desc)
    assert "10 frames of 16x12 px (frame_shape [16, 12]) at ~10 Hz, onsets 0.000-0.900 s" in text, text
    one = format_description(describe_recording(rec([0.2])))
    assert "1 frame of 16x12 px (frame_shape [16, 12]), onsets 0.200-0.200 s" in one and "nan" not in one, one


def test_figures_of_one_unit_and_one_window_are_worded_for_one():
    """inspect's figure of a one-unit recording read '1 most active of 1 units (firing rate over the
    whole recording, highest on top)' and '1 units without spikes'; decode's panel of one window '1 test
    windows'."""
    import numpy as np

    from hf_neuroformer.io.arrays import from_arrays
    from hf_neuroformer.plotting import plot_decoding, plot_recording

    rng = np.random.default_rng(0)
    rec = from_arrays(np.sort(rng.uniform(0, 30, 300)), np.zeros(300, int), unit_names=["u0"], time_domain=(0, 30))
    fig = plot_recording(rec, stretch=5.0)
    assert fig.axes[0].get_title(loc="left") == "session0: its one unit, 0.00-5.00 s"
    two = from_arrays(np.sort(rng.uniform(0, 30, 300)), np.zeros(300, int), unit_names=["u0", "u1"],
                      time_domain=(0, 30))
    assert plot_recording(two, stretch=5.0).axes[1].get_title(loc="left").endswith("; 1 unit without spikes")
    one = plot_decoding(np.array([1.0]), np.zeros((1, 1)), np.zeros((1, 1)), [{"name": "x", "kind": "regression"}])
    assert one.axes[0].get_title() == "x (regression), 1 test window"


def test_short_durations_are_not_rounded_to_a_tenth():
    """inspect printed a 0.05-s recording as '0.1 s (0.000-0.050 s)' and one spike as '1 spikes'."""
    import numpy as np

    from hf_neuroformer.io.arrays import from_arrays

    rec = from_arrays(np.array([0.02]), np.array([0]), time_domain=(0.0, 0.05))
    text = format_description(describe_recording(rec, NeuroformerConfig(current_window=0.01, past_window=0.0,
                                                                        dt_resolution=0.001)))
    assert text.splitlines()[0] == "session session0: 1 unit (0 without spikes), 1 spike, 0.05 s (0.000-0.050 s)"


def test_a_recording_of_one_spike_time_is_described_without_a_numpy_warning():
    """A file of one spike (no time domain: it spans no time) printed numpy's 'divide by zero' warning
    from the presence-ratio note and 'below about inf Hz'; the note is left out for bins of 0 s."""
    import warnings

    from hf_neuroformer.io.arrays import from_arrays

    rec = from_arrays(np.array([0.0]), np.array([0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        text = format_description(describe_recording(rec))
    assert "inf Hz" not in text and "a short recording" not in text
    assert "training would refuse this recording" in text

def test_longest_silence_runs_across_touching_intervals_of_the_support():
    """A support of touching intervals (a generated recording's tiled windows, [0, 1), [1, 2), ...)
    is one stretch of recorded time: a 2.5-s silence across three of them was reported as at most
    one interval long (1 s)."""
    from hf_neuroformer import SpikeRecording
    from hf_neuroformer.inspection import longest_silence

    t = np.array([0.2, 0.5, 3.0, 4.5])
    sup = np.stack([np.arange(5.0), np.arange(1.0, 6.0)], 1)
    rec = SpikeRecording(spike_times=t, unit_ids=np.zeros(4, dtype=np.int64), unit_names=["a"],
                         time_domain=(0.0, 5.0), time_support=sup)
    assert longest_silence(rec) == {"duration_s": 2.5, "start_s": 0.5}


def test_counts_of_one_take_the_singular():
    """Break test: an epoch holding one spike printed '1 spikes' (and a column with one value '1
    values'). Counts of one now take the singular, wherever inspect prints a count with its noun."""
    from hf_neuroformer.io import from_arrays

    rec = from_arrays(np.array([0.5, 1.5]), np.array([0, 1]), time_domain=(0, 3), epochs={"a": (0, 1)},
                      trials=np.array([[0.0, 1.0], [1.0, 2.0]]), trial_info={"k": np.array([3.0, np.nan])})
    text = format_description(describe_recording(rec))
    assert "  a: 0.000-1.000 s (1.0 s), 1 spike\n" in text
    assert "  k (numeric, 1 value: 3; 1 missing)" in text
    assert "session session0: 2 units (0 without spikes), 2 spikes, 3.0 s" in text
    assert " 1 spikes" not in text and " 1 values" not in text


def test_plot_recording_refuses_a_bool_or_text_stretch_by_name():
    """``plot_recording(stretch=True)`` drew a 1-s stretch (True passed ``isinstance(v, int)``) and
    ``stretch=np.float32(5)`` was taken but ``"5"`` failed inside numpy naming no argument; the one
    number rule now refuses the bool and the text with ``stretch:``, and takes numpy numbers."""
    from hf_neuroformer.io.arrays import from_arrays
    from hf_neuroformer.plotting import PlottingInputError, plot_recording

    rng = np.random.default_rng(0)
    rec = from_arrays(np.sort(rng.uniform(0, 30, 300)), np.zeros(300, int), unit_names=["u0"], time_domain=(0, 30))
    for bad in (True, "5", float("nan"), 0):
        with pytest.raises(PlottingInputError, match="stretch: expected a positive number of seconds"):
            plot_recording(rec, stretch=bad)
    assert plot_recording(rec, stretch=np.int64(5)).axes[0].get_xlim() == (0.0, 5.0)


def test_rates_count_the_trials_not_the_silent_gaps_a_reader_lays_between_them(shared_data):
    """The Allen and binned readers lay trials on one clock with gaps that hold no recorded time (the
    files store no spike there); the rates divided by the gaps too: Allen's 200 trials of 0.1 s over
    40 s read as half their rates (median 1.99 Hz, population 3841 spikes/s, not 3.97 and 7682)."""
    from hf_neuroformer.io import from_binned_counts, read_allen_gratings

    rec = read_allen_gratings(shared_data(ALLEN))  # 200 trials of 0.1 s, 0.1 s apart
    assert rec.duration == pytest.approx(20.0)
    np.testing.assert_allclose(rec.firing_rates(), np.bincount(rec.unit_ids, minlength=rec.n_units) / 20.0)
    counts = np.random.default_rng(0).integers(0, 3, size=(4, 10, 3))  # 4 trials of 10 bins of 10 ms
    binned = from_binned_counts(counts, bin_size=0.01, trial_gap=0.5)
    desc = describe_recording(binned, NeuroformerConfig(current_window=0.02, past_window=0.02, dt_resolution=0.01))
    assert desc["duration_s"] == pytest.approx(0.4)
    np.testing.assert_allclose([desc["unit_firing_rate_hz"][n] for n in binned.unit_names],
                               counts.sum((0, 1)) / 0.4)
    assert desc["firing_rate_hz"]["population"] == pytest.approx(counts.sum() / 0.4)


def test_frames_after_the_recorded_time_are_not_counted_as_on_screen():
    """``restrict(0, 0.8)`` of frames at 0, 0.1, 0.2, 1.0, 1.1 s keeps the onset at 1.0 s as the end of
    the last frame shown; inspect said '4 frames ... onsets 0.000-1.000 s' and the frame-clock warning
    counted that frame as on screen (one short: 5 frames in ms, 3 off the recorded time, said 2, no warning)."""
    from hf_neuroformer import SpikeRecording
    from hf_neuroformer.modalities import _warn_if_off_the_clock, modality_track
    from hf_neuroformer.recording import Stimulus

    def rec(frame_times, stop):
        ft = np.asarray(frame_times, dtype=float)
        return SpikeRecording(spike_times=np.array([0.05, 0.5]), unit_ids=np.array([0, 1]), time_domain=(0.0, stop),
                              stimulus=Stimulus(frames=np.zeros((len(ft), 16, 12), np.uint8), frame_times=ft))

    cut = rec([0.0, 0.1, 0.2, 1.0, 1.1], 1.2).restrict(0.0, 0.8)
    assert cut.stimulus.frame_times[-1] == 1.0  # kept: where the frame at 0.2 s leaves the screen
    desc = describe_recording(cut)
    assert desc["stimulus"]["n_frames"] == 3 and desc["stimulus"]["n_frames_outside"] == 1
    assert desc["stimulus"]["frames_outside_end_marker"] is True
    late = describe_recording(rec([5.0, 5.1], 1.2))["stimulus"]  # all after the end: none shown, no end marker
    assert (late["n_frames"], late["n_frames_outside"], late["frames_outside_end_marker"]) == (0, 2, False)
    text = format_description(desc)
    assert "3 frames of 16x12 px (frame_shape [16, 12]) at ~10 Hz, onsets 0.000-0.200 s, and 1 stored frame not on " \
           "screen in the recorded time (onsets up to 1.000 s; the first onset" in text, text
    ms = rec(np.arange(5) * 16.7, 20.0)  # milliseconds read as seconds: 2 frames on screen in [0, 20) s
    mod = {"name": "video", "source": "stimulus:frames", "kind": "video", "frame_shape": [16, 12]}
    with pytest.warns(UserWarning, match=r"3 of 5 frames of 'stimulus:frames' are not on screen"):
        _warn_if_off_the_clock(modality_track(ms, mod, 0), ms, mod, 0)


@pytest.mark.parametrize("flag, name", [("--output", "metrics.json"), ("--figure", "training_curves.png")])
def test_inspect_never_writes_over_a_file_of_a_model_folder(shared_data, tmp_path, capsys, flag, name):
    """Break test: 'inspect --output runs/a2929/metrics.json --overwrite' replaced the trained model's
    metrics with the recording's summary (--figure: its training curves). inspect reads no --model,
    so, as ablate does, it knows a model folder by its config.json and weights, and refuses its files
    with or without --overwrite; other names in the folder stay allowed."""
    from hf_neuroformer.cli import main
    from tiny_configs import small_config, untrained_model

    nwb = shared_data("pynapple_A2929_headdirection/A2929-200711.nwb")
    model_dir = tmp_path / "model"
    untrained_model(quiet(load_recording, nwb), small_config())[1].save_pretrained(model_dir)
    (model_dir / name).write_text("the run's own")
    capsys.readouterr()
    assert main(["inspect", "--data", str(nwb), "--epoch", "wake", flag, str(model_dir / name), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"neuroformer inspect: error: {flag}: ") and "never a file of the model" in err, err
    assert (model_dir / name).read_text() == "the run's own"


def test_inspect_counts_the_windows_without_a_modality_value_per_split_as_training_does(shared_data):
    """``inspect --config`` with a modality said nothing of the windows that read no value of it: on
    A2929 640-700 s head direction is tracked from 670.6 s, so with this seed the validation and
    test splits (before it) read only the modality's null token, which training then warned of
    (validation, test) and counted (train). Now each split gives its count, the same as the
    windows training tokenizes (windows_without_values of build_window_datasets), and the text says
    which splits hold no value at all."""
    from hf_neuroformer.modalities import windows_without_values

    rec = quiet(load_recording, shared_data(A2929), epoch="wake").restrict(640.0, 700.0)
    mod = {"name": "hd", "source": "behaviour:ry", "kind": "continuous", "normalization": "circular"}
    config = NeuroformerConfig(current_window=0.2, past_window=0.2, dt_resolution=0.01, max_window_length=64,
                               max_past_length=64, split_block_length=10.0, split_seed=3, modalities=[mod])
    desc = quiet(describe_recording, rec, config)
    got = {s: v["n_windows_without_modality"]["hd"] for s, v in desc["windows"]["splits"].items()}
    tok = NeuroformerTokenizer.from_config(config)
    tok.add_units(rec)
    config.vocab_size = len(tok)
    ds, _ = quiet(build_window_datasets, rec, tok, config)
    assert got == {s: windows_without_values(ds[s], config.modalities[0]) for s in ds}
    n = {s: len(ds[s]) for s in ds}
    assert got["validation"] == n["validation"] and got["test"] == n["test"] and 0 < got["train"] < n["train"]
    text = format_description(desc)
    assert (f"  modality 'hd': windows without a value in its modality window train {got['train']} of {n['train']}, "
            f"validation {n['validation']} of {n['validation']} (all), test {n['test']} of {n['test']} (all): a split "
            "with no value of it reads only the modality's null token (train warns)") in text
