"""Point-event streams (issue 9, event half): EventSeries in the recording and its validation,
the NWB / array readers (A2929 ripple onsets, Zheng 2022 clip onsets and boundaries), the
write_nwb round trip, ``events:<key>`` as a categorical modality (tokens at the right times),
a tiny model trained with it and generation conditioned on it."""

from __future__ import annotations

import collections
import dataclasses
import json
import re
import warnings

import numpy as np
import pytest
import torch

import hf_neuroformer as nf
from hf_neuroformer.modalities import fit_modalities, modality_columns
from hf_neuroformer.recording import EventSeries, RecordingValidationError
from hf_neuroformer.training import TrainingConfig, load_yaml_config, train
from hf_neuroformer.windows import plan_splits
from tiny_configs import float32_notes, store_as_float32

A2929 = "pynapple_A2929_headdirection/A2929-200711.nwb"
ZHENG = "zheng2022_human_mtl/sub-4_ses-4_ecephys+image.nwb"
RIPPLES = {"name": "ripples", "source": "events:sleep_ripples", "kind": "categorical", "window": [-0.25, 0.05]}


def _quiet_read(path, **kw):
    from hf_neuroformer.io import load_recording

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the files' skipped-object notices
        return load_recording(path, **kw)


@pytest.fixture(scope="module")
def sleep(shared_data):
    """A2929 sleep epoch (0-600 s), all 15 units, with the ripple onsets as events."""
    return _quiet_read(shared_data(A2929), epoch="sleep")


@pytest.fixture(scope="module")
def ripple_table(shared_data):
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(shared_data(A2929)), "r") as io:
        t = io.read().intervals["sleep_ripples"]
        return np.asarray(t["start_time"][:]), np.asarray(t["stop_time"][:])


def small_config(**kw):
    base = dict(current_window=0.05, past_window=0.25, dt_resolution=0.005, max_window_length=48,
                max_past_length=96, hidden_size=32, num_attention_heads=2, num_hidden_layers=1,
                intermediate_size=64, hidden_dropout=0.0, split_block_length=10.0)
    base.update(kw)
    return nf.NeuroformerConfig(**base)


# ---------------------------------------------------------------- readers

def test_a2929_ripple_onsets_are_an_event_stream(sleep, ripple_table):
    start, _ = ripple_table
    ev = sleep.events["sleep_ripples"]
    assert isinstance(ev, EventSeries) and ev.labels is None
    assert len(ev) == 594 and np.array_equal(ev.times, np.sort(start))
    assert np.all(np.diff(ev.times) >= 0) and ev.times[0] >= 0 and ev.times[-1] < 600
    assert "sleep_ripples" in sleep.behaviour  # the peak-time TimeSeries stays behaviour, as before
    # time supports are not events; restriction to the sleep epoch kept every onset
    assert sorted(sleep.events) == ["sleep_ripples"]


def test_zheng_clip_onsets_and_boundaries(shared_data):
    z = _quiet_read(shared_data(ZHENG))
    onsets = z.events["encoding_table"]
    enc = z.trial_info["task"] == "encoding"
    assert len(onsets) == 90 and np.array_equal(onsets.times, z.trials[enc, 0])
    assert sorted(set(onsets.labels.tolist())) == [0, 1, 2]  # stimCategory
    assert np.array_equal(onsets.labels, z.trial_info["stimCategory"][enc].astype(np.int64))
    b = z.events["encoding_boundaries"]
    assert collections.Counter(b.labels.tolist()) == {"soft": 75, "hard": 30, "none": 30}
    # each boundary lies inside its clip; hard boundaries and the no-boundary controls 4 s into it
    clip = np.searchsorted(z.trials[enc, 0], b.times, side="right") - 1
    rel = b.times - z.trials[enc, 0][clip]
    assert np.all(b.times < z.trials[enc, 1][clip]) and np.all(rel > 0)
    assert np.allclose(rel[np.isin(b.labels, ["hard", "none"])], 4.0, atol=1e-5)
    assert np.all(np.diff(b.times) >= 0)
    assert len(z.events["recognition_table"]) == 180 and len(z.events["timediscrimination_table"]) == 180


def test_boundary_of_a_clip_without_stim_category_is_labelled_unknown(tmp_path, sleep):
    """Break test: a Zheng-style encoding table (boundary1_time, stimCategory) whose stimCategory
    is NaN in a row with a boundary failed the whole read with int(nan) ("cannot convert float
    NaN to integer"). Now that boundary is labelled 'unknown' and the row counted in a warning
    naming the table and the column; the other rows keep hard / none / soft."""
    from hf_neuroformer.io import read_nwb

    path = _clips_nwb(tmp_path / "clips.nwb", sleep, (0.0, 2.0, np.nan, 1.0))
    with pytest.warns(UserWarning) as caught:
        back = read_nwb(path)
    msgs = [str(w.message) for w in caught]
    assert any(re.search(r"interval table 'encoding_table': stimCategory is NaN in 1 row with a boundary1_time "
                         r"\(rows \[2\]\); their boundary1 events are labelled 'unknown'", m) for m in msgs), msgs
    b = back.events["encoding_boundaries"]
    assert np.array_equal(b.times, [4.0, 14.0, 24.0, 34.0])
    assert b.labels.tolist() == ["none", "hard", "unknown", "soft"] and "unknown = stimCategory NaN" in b.description
    # the clip onsets cannot take a NaN code as a label: read unlabelled, and said so (it was silent)
    assert back.events["encoding_table"].labels is None
    assert any("table 'encoding_table': column 'stimCategory' was not read as the labels of events['encoding_table'] "
               "(1 of 4 are NaN or infinite)" in m for m in msgs), msgs


def test_a_boundary_outside_its_clip_is_counted_not_dropped_silently(tmp_path, sleep):
    """A boundary1_time outside its row's (start, stop) that is not a missing-boundary mark (0 or the
    row's start) was left out of events['encoding_boundaries'] without a word. It is still left out,
    counted in a warning that names the first; the marks and the boundaries inside stay as they were."""
    from hf_neuroformer.io import read_nwb

    # clips [0, 8), [10, 18), [20, 28), [30, 38): inside, missing (= start), after the stop, before the start
    path = _clips_nwb(tmp_path / "clips.nwb", sleep, (0.0, 2.0, 1.0, 1.0), boundaries=(4.0, 10.0, 29.0, 25.0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        back = read_nwb(path)
    msgs = [str(w.message) for w in caught if "boundary time" in str(w.message)]
    assert msgs == ["interval table 'encoding_table': left out 2 boundary times outside their row's (start_time, "
                    "stop_time) (first: boundary1_time of row 2 at 29 s, row 20-28 s); a boundary lies inside its "
                    "clip, and a missing one is marked with 0 or the row's start_time"], msgs
    assert back.events["encoding_boundaries"].times.tolist() == [4.0]


def test_float32_boundary_times_are_read_with_the_float32_warning(tmp_path, sleep):
    """boundary<k>_time columns stored as float32 (another writer than pynwb) were widened without a
    word, while the interval bounds beside them are named in a warning. Now read the same way."""
    from hf_neuroformer.io import read_nwb

    path = _clips_nwb(tmp_path / "clips.nwb", sleep, (0.0, 2.0, 1.0, 1.0), boundaries=(4.05, 14.05, 24.05, 34.05))
    store_as_float32(path, ("intervals/encoding_table/boundary1_time",))
    back, msgs = float32_notes(read_nwb, path)
    assert len(msgs) == 1 and msgs[0].startswith("read_nwb: encoding_table.boundary1_time are stored as float32"), msgs
    assert back.events["encoding_boundaries"].times.tolist() == [float(np.float32(t)) for t in (4.05, 14.05, 24.05, 34.05)]


def _clips_nwb(path, sleep, categories, conditions=None, boundaries=None):
    """A Zheng-style NWB file (written by pynwb, as another tool would): 3 A2929 units over 0-60 s
    and an ``encoding_table`` of clips at 0, 10, 20, ... s (8 s each) with a float
    ``stimCategory`` column of ``categories`` and a ``boundary1_time`` 4 s into each clip (or at
    ``boundaries``, seconds, when given; and an integer ``condition`` column after them, of
    ``conditions``, when given)."""
    from datetime import datetime, timezone

    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.epoch import TimeIntervals

    rec = sleep.select_units(range(3)).restrict(0.0, 60.0)
    nwb = NWBFile(session_description="clips", identifier="clips", session_start_time=datetime.now(timezone.utc))
    for u, train_ in enumerate(rec.spike_trains()):
        nwb.add_unit(spike_times=train_, id=u)
    table = TimeIntervals(name="encoding_table", description="clips")
    table.add_column("stimCategory", "0 no, 1 soft, 2 hard boundary")
    table.add_column("boundary1_time", "first boundary")
    if conditions is not None:
        table.add_column("condition", "task condition")
    for k, cat in enumerate(categories):
        extra = {} if conditions is None else {"condition": int(conditions[k])}
        table.add_interval(start_time=10.0 * k, stop_time=10.0 * k + 8.0, stimCategory=cat,
                           boundary1_time=10.0 * k + 4.0 if boundaries is None else boundaries[k], **extra)
    nwb.add_time_intervals(table)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def test_clip_categories_stored_as_whole_floats_label_the_onsets(tmp_path, sleep):
    """A file written from MATLAB stores every number as a double: stimCategory 0.0 / 2.0 / 1.0.
    The boundaries took their labels from it, but the clip onsets (events['encoding_table'])
    were read unlabelled, one class, without a word: a float column was not a label column."""
    from hf_neuroformer.io import read_nwb

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        back = read_nwb(_clips_nwb(tmp_path / "clips.nwb", sleep, (0.0, 2.0, 1.0, 1.0)))
    assert not [w for w in caught if "stimCategory" in str(w.message)]  # whole numbers are codes: nothing to say
    onsets = back.events["encoding_table"]
    assert onsets.labels.dtype == np.int64 and onsets.labels.tolist() == [0, 2, 1, 1]
    assert np.array_equal(onsets.times, [0.0, 10.0, 20.0, 30.0])
    assert back.events["encoding_boundaries"].labels.tolist() == ["none", "hard", "soft", "soft"]


def test_a_skipped_float_label_column_names_the_column_that_labels_the_events(tmp_path, sleep):
    """Break test: a float category column with a NaN (stimCategory) was skipped with a warning that the
    events "are read without those labels", while a later label column of the same table (an integer
    'condition', as the Zheng recognition table holds boundary_type then stimuli_type) labelled them.
    The warning now says where the labels came from."""
    from hf_neuroformer.io import read_nwb

    path = _clips_nwb(tmp_path / "clips.nwb", sleep, (0.0, 2.0, np.nan, 1.0), conditions=(3, 1, 2, 1))
    with pytest.warns(UserWarning) as caught:
        back = read_nwb(path)
    assert back.events["encoding_table"].labels.tolist() == [3, 1, 2, 1]
    msgs = [str(w.message) for w in caught if "column 'stimCategory' was not read" in str(w.message)]
    assert msgs == ["table 'encoding_table': column 'stimCategory' was not read as the labels of "
                    "events['encoding_table'] (1 of 4 are NaN or infinite); the labels come from column "
                    "'condition' instead"], [str(w.message) for w in caught]


def test_events_logged_twice_are_kept_and_counted():
    """An event that repeats an earlier one exactly (a TTL logged twice) gave an event modality two
    tokens where there was one, without a word: the readers keep it (ties are allowed) and count it;
    two events of different labels at one time are no repeat, nor are the times of a stream
    without repeats (no warning)."""
    from hf_neuroformer.io import from_arrays

    spikes, units = np.array([0.1, 0.5, 1.0, 1.5]), np.array([0, 1, 0, 1])
    with pytest.warns(UserWarning) as caught:
        rec = from_arrays(spikes, units, time_domain=(0.0, 2.0), events={
            "ttl": [0.3, 0.2, 0.2, 0.2],
            "licks": ([0.2, 0.2, 0.2, 0.4], ["left", "right", "left", "left"])})
    notes = sorted(str(w.message) for w in caught)
    assert np.array_equal(rec.events["ttl"].times, [0.2, 0.2, 0.2, 0.3])
    assert list(rec.events["licks"].labels) == ["left", "right", "left", "left"]
    assert notes == [
        "from_arrays: events['licks'] (4 events): kept 1 event that repeats an earlier one's time and label exactly "
        "(logged twice?); 4 kept",
        "from_arrays: events['ttl'] (4 events): sorted 4 times that had 1 descending step; kept 2 events that repeat "
        "an earlier one's time exactly (logged twice?); 4 kept"], notes
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_arrays(spikes, units, time_domain=(0.0, 2.0), events={"licks": ([0.2, 0.2, 0.4], ["left", "right", "left"])})

def test_foreign_nwb_events_unsorted_nan_and_outside_are_counted(tmp_path, sleep):
    """A file written by another tool: an interval table whose rows are unsorted with one NaN
    start, an NWB 2.9 EventsTable with a lick after the recording's end, an AnnotationSeries;
    read_nwb sorts / drops and counts each repair in a warning."""
    from datetime import datetime, timezone

    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.epoch import TimeIntervals
    from pynwb.event import EventsTable
    from pynwb.misc import AnnotationSeries

    from hf_neuroformer.io import read_nwb

    rec = sleep.select_units(range(3)).restrict(0.0, 60.0)
    nwb = NWBFile(session_description="foreign", identifier="foreign", session_start_time=datetime.now(timezone.utc))
    for u, train_ in enumerate(rec.spike_trains()):
        nwb.add_unit(spike_times=train_, id=u)
    nwb.add_epoch(start_time=0.0, stop_time=60.0, tags=["sleep"])
    rips = rec.events["sleep_ripples"].times
    table = TimeIntervals(name="rewards", description="rewards")
    table.add_column("reward_type", "kind of reward")
    for k, t in enumerate(list(rips[::-1]) + [np.nan]):  # descending, then a NaN
        table.add_interval(start_time=float(t), stop_time=float(t) + 0.01, reward_type=k % 2)
    nwb.add_time_intervals(table)
    licks = EventsTable(name="licks", description="lick sensor")
    licks.add_column("label", "side")
    for t, side in ((1.5, "left"), (2.5, "right"), (500.0, "left")):  # 500 s: after the recording
        licks.add_event(timestamp=t, label=side)
    nwb.add_events_table(licks)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pynwb: AnnotationSeries is deprecated (still read)
        nwb.add_acquisition(AnnotationSeries(name="notes", data=["a", "b"], timestamps=[3.0, 4.0], description="n"))
    path = tmp_path / "foreign.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    with pytest.warns(UserWarning) as caught:
        back = read_nwb(path, trial_tables=[])  # (as trials its NaN row would be refused)
    msgs = [str(w.message) for w in caught]
    assert any(f"events['rewards'] ({len(rips) + 1} events): dropped 1 NaN or infinite time; sorted {len(rips)} "
               f"times that had {len(rips) - 1} descending steps; {len(rips)} kept" in m for m in msgs), msgs
    assert any("events['licks'] (3 events): dropped 1 event outside the time domain" in m and "(first at 500.0 s)"
               in m for m in msgs), msgs
    ev = back.events["rewards"]
    assert np.array_equal(ev.times, rips)  # sorted, the NaN dropped
    assert np.array_equal(ev.labels, np.arange(len(rips))[::-1] % 2)  # labels follow their times
    assert np.array_equal(back.events["licks"].times, [1.5, 2.5]) and back.events["licks"].labels.tolist() == [
        "left", "right"]
    assert back.events["notes"].labels.tolist() == ["a", "b"] and "notes" not in back.behaviour


def test_foreign_nwb_boolean_label_columns_stay_boolean(tmp_path, sleep):
    """A file written by another tool (pynwb) with a bool ``label`` column in an EventsTable and a
    bool ``reward_type`` column in an interval table: the reader turned them into 0/1 int64 labels,
    which a model whose classes were fitted on booleans ([False, True]) refuses (write_nwb's own
    files keep them boolean since 2d216ba)."""
    from datetime import datetime, timezone

    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.epoch import TimeIntervals
    from pynwb.event import EventsTable

    from hf_neuroformer.io import read_nwb

    rec = sleep.select_units(range(3)).restrict(0.0, 120.0)
    nwb = NWBFile(session_description="foreign", identifier="foreign", session_start_time=datetime.now(timezone.utc))
    for u, train_ in enumerate(rec.spike_trains()):
        nwb.add_unit(spike_times=train_, id=u)
    t = rec.events["sleep_ripples"].times
    late = t > 60.0
    table = TimeIntervals(name="rewards", description="rewards")
    table.add_column("reward_type", "rewarded late")
    for ti, flag in zip(t, late):
        table.add_interval(start_time=float(ti), stop_time=float(ti) + 0.01, reward_type=bool(flag))
    nwb.add_time_intervals(table)
    flags = EventsTable(name="flags", description="late flags")
    flags.add_column("label", "after 60 s")
    for ti, flag in zip(t, late):
        flags.add_event(timestamp=float(ti), label=bool(flag))
    nwb.add_events_table(flags)
    with NWBHDF5IO(str(tmp_path / "bools.nwb"), "w") as io:
        io.write(nwb)
    back = read_nwb(tmp_path / "bools.nwb", trial_tables=[])
    for k in ("rewards", "flags"):
        lab = back.events[k].labels
        assert lab.dtype == np.bool_ and lab.tolist() == late.tolist(), (k, lab.dtype)
    # a model fitted on the boolean stream reads the foreign file's labels
    own = dataclasses.replace(rec, events={**rec.events, "late": EventSeries(t, late, "after 60 s")})
    cfg = small_config(modalities=[{**RIPPLES, "source": "events:late"}])
    fit_modalities(own, cfg, plan_splits(own, cfg))
    assert cfg.modalities[0]["classes"] == [False, True]
    at = round(float(t[late][0]) - 0.02, 9)
    want = modality_columns(own, cfg, [at])["mod_ripples_ids"]
    for k in ("rewards", "flags"):
        cfg.modalities[0]["source"] = f"events:{k}"
        assert modality_columns(back, cfg, [at])["mod_ripples_ids"] == want, k


# ---------------------------------------------------------------- validation (acceptance 4)

@pytest.mark.parametrize("bad, match", [
    (lambda t: np.concatenate([t[:5], [np.nan], t[5:]]), r"events\['r'\]\.times: expected finite times, event 5 is nan"),
    (lambda t: t[[0, 2, 1, 3]], r"events\['r'\]\.times: expected ascending times, event 2 .* after event 1"),
    (lambda t: np.concatenate([t, [700.0]]), r"events\['r'\]\.times: expected times inside the time domain "
                                             r"\[0\.0, 600\.0\) s, event \d+ is at 700\.0 s \(1 outside"),
])
def test_recording_refuses_bad_event_times_naming_field_and_index(sleep, bad, match):
    t = sleep.events["sleep_ripples"].times
    with pytest.raises(RecordingValidationError, match=match):
        dataclasses.replace(sleep, events={"r": EventSeries(bad(t))})
    with pytest.raises(RecordingValidationError, match=r"events\['r'\]\.labels: expected one label per event"):
        dataclasses.replace(sleep, events={"r": EventSeries(t, labels=np.zeros(3, dtype=np.int64))})


def test_from_arrays_sorts_and_drops_with_counts(sleep):
    from hf_neuroformer.io import from_arrays

    t = sleep.events["sleep_ripples"].times
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(t))
    labels = np.where(np.arange(len(t)) % 3 == 0, "big", "small").astype(object)
    times = np.concatenate([t[perm], [np.nan, np.nan, -5.0, 650.0]])
    labs = np.concatenate([labels[perm], ["x", "x", "x", "x"]])
    with pytest.warns(UserWarning) as rec_w:
        rec = from_arrays(sleep.spike_times, sleep.unit_ids, unit_names=sleep.unit_names, time_domain=(0.0, 600.0),
                          events={"rip": (times, labs), "plain": t})
    msgs = [str(w.message) for w in rec_w if "events['rip']" in str(w.message)]
    assert len(msgs) == 1 and "dropped 2 NaN" in msgs[0] and "dropped 2 events outside" in msgs[0]
    assert f"{len(t)} kept" in msgs[0]
    assert np.array_equal(rec.events["rip"].times, t) and np.array_equal(rec.events["rip"].labels, labels)
    assert np.array_equal(rec.events["plain"].times, t) and rec.events["plain"].labels is None


def test_a_tuple_of_two_times_is_two_events_not_times_and_labels():
    """events={"reward": (1.0, 2.0)} was read as times=1.0, labels=2.0 and refused ("expected a 1-D
    array of seconds, got shape ()"), while (1.0, 2.0, 3.0) gave three events; (times, labels) with
    arrays, identical times and unicode labels, and an empty stream still read as they did."""
    from hf_neuroformer.events import as_event_series
    from hf_neuroformer.io import from_arrays

    ev = as_event_series("reward", (1.0, 2.0))
    assert np.array_equal(ev.times, [1.0, 2.0]) and ev.labels is None
    rec = from_arrays(np.array([0.5, 1.5, 2.5]), np.array([0, 1, 0]), time_domain=(0.0, 3.0),
                      events={"reward": (1.0, 2.0), "cue": ([1.0, 1.0], ["μ", "日本"]), "none": np.zeros(0)})
    assert np.array_equal(rec.events["reward"].times, [1.0, 2.0]) and rec.events["reward"].labels is None
    assert rec.events["cue"].labels.tolist() == ["μ", "日本"] and np.array_equal(rec.events["cue"].times, [1.0, 1.0])
    assert len(rec.events["none"]) == 0
    with pytest.raises(RecordingValidationError, match=r"events\['cue'\].labels: expected one label per event \(2\)"):
        as_event_series("cue", ([1.0, 2.0], ["a"]))


def test_an_event_mapping_without_times_or_text_times_are_refused_naming_the_stream():
    """Break test: events={"reward": {"time": [...]}} failed with a bare KeyError: 'times', and text
    times with numpy's "could not convert string to float: 'abc'", neither naming the stream;
    ragged labels failed inside numpy."""
    from hf_neuroformer.events import as_event_series
    from hf_neuroformer.io import from_arrays

    with pytest.raises(RecordingValidationError, match=r"^events\['reward'\]: expected a mapping with 'times' .*"
                                                      r"got keys \['time'\]"):
        from_arrays(np.array([0.5, 1.5]), np.array([0, 1]), time_domain=(0.0, 3.0),
                    events={"reward": {"time": [1.0, 2.0]}})
    with pytest.raises(RecordingValidationError, match=r"^events\['cue'\]\.times: expected seconds \(numbers\), got "
                                                      r"str \(could not convert string to float: 'abc'\)"):
        as_event_series("cue", "abc")
    with pytest.raises(RecordingValidationError, match=r"^events\['cue'\]\.times: expected seconds"):
        as_event_series("cue", {"times": ["1.0", "soon"]})
    with pytest.raises(RecordingValidationError, match=r"^events\['cue'\]\.labels: expected one int or str label"):
        as_event_series("cue", (np.array([1.0, 2.0]), [[1, 2], [3]]))
    assert as_event_series("cue", {"times": [2.0, 1.0], "labels": [1, 2]}).labels.tolist() == [1, 2]  # still read


def test_restrict_and_select_units_carry_events(sleep):
    part = sleep.restrict(100.0, 200.0)
    t = sleep.events["sleep_ripples"].times
    assert np.array_equal(part.events["sleep_ripples"].times, t[(t >= 100) & (t < 200)])
    ca1 = sleep.select_units([i for i, a in enumerate(sleep.unit_areas) if a == "ca1"])
    assert ca1.n_units == 8 and np.array_equal(ca1.events["sleep_ripples"].times, t)


def test_write_read_nwb_round_trip(tmp_path, sleep):
    from hf_neuroformer.io import read_nwb, write_nwb

    rec = sleep.select_units(range(4)).restrict(0.0, 120.0)
    t = rec.events["sleep_ripples"].times
    rec = dataclasses.replace(rec, events={
        **rec.events,
        "ripple_kind": EventSeries(t, np.where(np.arange(len(t)) % 2 == 0, "short", "long").astype(object), "kinds"),
        "ripple_count": EventSeries(t, np.arange(len(t), dtype=np.int64), "count"),
        "ripple_late": EventSeries(t, t > 60.0, "after 60 s"),
        "nothing": EventSeries(np.zeros(0)),
        "no_flags": EventSeries(np.zeros(0), np.zeros(0, dtype=bool)),
    })
    write_nwb(rec, tmp_path / "ev.nwb")
    back = read_nwb(tmp_path / "ev.nwb")
    assert sorted(back.events) == sorted(rec.events)
    for k, ev in rec.events.items():
        got = back.events[k]
        assert np.array_equal(got.times, ev.times) and got.description == ev.description
        if ev.labels is None:
            assert got.labels is None
        else:  # the same values of the same kind: boolean labels came back as 0/1 integers
            assert got.labels.tolist() == ev.labels.tolist() and got.labels.dtype.kind == ev.labels.dtype.kind, k
    assert back.epochs == rec.epochs  # the event tables did not become epochs
    # a model fitted on the boolean stream reads the file back (its classes [False, True] refused the labels 0 / 1)
    cfg = small_config(modalities=[{**RIPPLES, "source": "events:ripple_late"}])
    fit_modalities(rec, cfg, plan_splits(rec, cfg))
    assert cfg.modalities[0]["classes"] == [False, True]
    late = round(float(t[t > 60.0][0]) - 0.02, 9)
    assert modality_columns(back, cfg, [late])["mod_ripples_ids"] == modality_columns(rec, cfg, [late])["mod_ripples_ids"]


# ---------------------------------------------------------------- the modality

def test_event_source_config_checks():
    with pytest.raises(ValueError, match=r"source: expected 'behaviour:<key>', 'trial:<column>', 'stimulus:ids', 'stimulus:frames' or "
                                         r"'events:<key>'"):
        small_config(modalities=[{**RIPPLES, "source": "licks"}])
    with pytest.raises(ValueError, match=r"kind: an event stream .* is read as kind 'categorical'"):
        small_config(modalities=[{**RIPPLES, "kind": "continuous"}])


def test_a_bin_size_on_an_event_modality_is_refused_not_ignored():
    """Only continuous samples are averaged in bins: an events (or any categorical) modality with
    bin_size: 0.01 was accepted and saved, yet every event stayed its own token, the setting
    ignored without a word."""
    with pytest.raises(ValueError, match=r"modalities\[0\] \('ripples'\)\.bin_size: a categorical modality is not "
                                         r"binned .*remove bin_size, got 0\.01"):
        small_config(modalities=[{**RIPPLES, "bin_size": 0.01}])
    assert small_config(modalities=[RIPPLES]).modalities[0]["bin_size"] is None


def test_num_features_on_an_event_modality_is_refused_not_ignored():
    """A label is one class id per token: num_features: 3 on an events modality was accepted and
    saved while every token still carried one class id."""
    with pytest.raises(ValueError, match=r"\('ripples'\)\.num_features: a categorical modality has one label per "
                                         r"token .*got 3; remove num_features"):
        small_config(modalities=[{**RIPPLES, "num_features": 3}])
    assert small_config(modalities=[{**RIPPLES, "num_features": 1}]).modalities[0]["num_features"] == 1


def test_a_model_saved_with_an_ignored_bin_size_or_num_features_on_an_event_modality_still_loads(tmp_path):
    """bin_size and num_features: 3 on a categorical modality were accepted and saved before they
    were refused, never applied: such a saved model loads (config, processor's config read and
    model) with a warning naming the modality and the keys, without them; built in code, or from a
    dict that is no saved config.json, they are still refused."""
    cfg = small_config(modalities=[{"name": "speed", "source": "behaviour:speed", "kind": "continuous", "mean": 0.0,
                                    "std": 1.0}, {**RIPPLES, "classes": ["ripple"]}])
    torch.manual_seed(0)
    model = nf.NeuroformerForPreTraining(cfg)
    model.save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    saved = json.loads(path.read_text())
    saved["modalities"][1].update(bin_size=0.01, num_features=3)
    path.write_text(json.dumps(saved))
    message = (r"saved modalities\[1\] \('ripples'\)\.bin_size=0\.01, modalities\[1\] \('ripples'\)\.num_features=3 "
               r"on a categorical modality never applied .* dropped")
    for load in (nf.NeuroformerConfig.from_pretrained, lambda d: nf.NeuroformerConfig.from_json_file(d / "config.json"),
                 lambda d: nf.NeuroformerForPreTraining.from_pretrained(d).config):
        with pytest.warns(UserWarning, match=message):
            loaded = load(tmp_path)
        assert loaded.modalities == cfg.modalities
    with pytest.warns(UserWarning, match=message):
        again = nf.NeuroformerForPreTraining.from_pretrained(tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    saved.pop("transformers_version")
    with pytest.raises(ValueError, match=r"\('ripples'\)\.num_features: a categorical modality has one label"):
        nf.NeuroformerConfig.from_dict(saved)


def test_missing_event_stream_lists_what_the_recording_has(sleep):
    cfg = small_config(modalities=[{**RIPPLES, "source": "events:licks"}])
    with pytest.raises(ValueError, match=r"'events:licks' is not in the recording; .*events \['sleep_ripples'\]"):
        fit_modalities(sleep, cfg, plan_splits(sleep, cfg))


def test_event_tokens_land_at_their_times_relative_to_the_window(sleep, ripple_table):
    """Hand-checked on the file's first ripples: onsets at 0.736, 0.8876 and 1.033199 s."""
    start, _ = ripple_table
    assert np.allclose(np.sort(start)[:3], [0.736, 0.8876, 1.033199])
    cfg = small_config(modalities=[RIPPLES])
    fit_modalities(sleep, cfg, plan_splits(sleep, cfg))
    assert cfg.modalities[0]["classes"] == ["sleep_ripples"]  # unlabelled: one class, the stream's name
    # window [s - 0.25, s + 0.05):
    #   s = 0.85   -> [0.60, 0.90):  0.736 (-0.114) and 0.8876 (+0.0376)
    #   s = 0.8376 -> [0.5876, 0.8876): 0.736 only (0.8876 is the window's end: not read)
    #   s = 1.0    -> [0.75, 1.05):  0.8876 (-0.1124) and 1.033199 (+0.033199)
    #   s = 0.3    -> [0.05, 0.35):  none
    cols = modality_columns(sleep, cfg, [0.85, 0.8376, 1.0, 0.3])
    expect = [[0.736 - 0.85, 0.8876 - 0.85], [0.736 - 0.8376], [0.8876 - 1.0, 1.033199 - 1.0], []]
    for got, want in zip(cols["mod_ripples_times"], expect):
        assert np.allclose(got, want, atol=1e-9) and len(got) == len(want)
    assert cols["mod_ripples_ids"] == [[0, 0], [0], [0, 0], []]
    assert cols["mod_ripples_n_truncated"] == [0, 0, 0, 0]
    one = small_config(modalities=[{**RIPPLES, "max_tokens": 1}])
    one.modalities[0]["classes"] = ["sleep_ripples"]
    cols = modality_columns(sleep, one, [0.85, 1.0])
    assert np.allclose(cols["mod_ripples_times"][0], [0.0376]) and cols["mod_ripples_n_truncated"] == [1, 1]


def test_labelled_events_are_classes(sleep):
    t = sleep.events["sleep_ripples"].times
    rec = dataclasses.replace(sleep, events={"kind": EventSeries(t, np.where(t < 300, "early", "late").astype(object))})
    cfg = small_config(split_block_length=30.0, modalities=[{**RIPPLES, "source": "events:kind"}])
    fit_modalities(rec, cfg, plan_splits(rec, cfg))
    assert cfg.modalities[0]["classes"] == ["early", "late"]
    # a window holding two early ripples and one holding a late one: the ids follow the labels
    # (the window at 400.0 s this test used held no ripple, so a reader that ignored the labels and
    # gave every event class 0 passed)
    late = float(t[t >= 300][0])
    cols = modality_columns(rec, cfg, [0.85, round(late - 0.02, 9)])
    assert cols["mod_ripples_ids"][0] == [0, 0]
    assert len(cols["mod_ripples_ids"][1]) >= 1 and set(cols["mod_ripples_ids"][1]) == {1}
    # a late ripple relabelled "early" reads as class 0 in the same window
    relabelled = dataclasses.replace(rec, events={"kind": EventSeries(t, np.where(t <= late, "early", "late").astype(object))})
    assert modality_columns(relabelled, cfg, [round(late - 0.02, 9)])["mod_ripples_ids"][0][-1] == 0


@pytest.mark.parametrize("other", ["early", 1])
def test_a_missing_event_label_none_is_refused_like_nan(sleep, other):
    """Labels with gaps (None in an object array): beside text, None became a class null in
    config.json; beside numbers, fitting failed with Python's "'<' not supported between instances
    of 'NoneType' and 'int'". Both are refused now, as NaN labels were, with the count."""
    t = sleep.events["sleep_ripples"].times
    labels = np.array([other, None] * len(t), dtype=object)[: len(t)]
    rec = dataclasses.replace(sleep, events={"kind": EventSeries(t, labels)})
    cfg = small_config(split_block_length=30.0, modalities=[{**RIPPLES, "source": "events:kind"}])
    plan = plan_splits(rec, cfg)
    with pytest.raises(ValueError, match=r"\('ripples'\): \d+ of \d+ labels of 'events:kind' in the training split "
                                         r"are None, NaN or infinite"):
        fit_modalities(rec, cfg, plan)
    assert cfg.modalities[0]["classes"] is None


def test_a_nan_event_label_beside_text_is_missing_not_a_second_type(sleep):
    """NaN is pandas' missing value: text labels with gaps (["early", nan], a list or an object
    array) were refused as "a mix of 1 str, 1 float", and numpy's text array of the list would have
    held the class 'nan'. The NaN is now a missing label, kept as NaN and refused with the count
    where the labels are fitted, as None is."""
    t = sleep.events["sleep_ripples"].times
    labels = ["early", float("nan")] * (len(t) // 2) + ["early"] * (len(t) % 2)
    ev = EventSeries(t, labels)
    assert ev.labels.dtype == object and ev.labels[0] == "early" and np.isnan(ev.labels[1])
    assert isinstance(EventSeries(t, np.array(labels, dtype=object)).labels[1], float)
    rec = dataclasses.replace(sleep, events={"kind": ev})
    cfg = small_config(split_block_length=30.0, modalities=[{**RIPPLES, "source": "events:kind"}])
    with pytest.raises(ValueError, match=r"\('ripples'\): \d+ of \d+ labels of 'events:kind' in "
                                         r"the training split are None, NaN or infinite"):
        fit_modalities(rec, cfg, plan_splits(rec, cfg))
    # a number beside text still is a second type
    with pytest.raises(RecordingValidationError, match=r"a mix of 1 str, 1 int \(first"):
        EventSeries(t[:3], ["early", float("nan"), 1])


def test_example_event_configs_load():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "configs"
    cfg, training = load_yaml_config(root / "a2929_sleep_ripples.yaml")
    assert cfg.modalities[0]["source"] == "events:sleep_ripples" and training.max_steps > 0
    cfg, _ = load_yaml_config(root / "zheng2022_events.yaml")
    assert [m["source"] for m in cfg.modalities] == ["events:encoding_table", "events:encoding_boundaries"]
    cfg, _ = load_yaml_config(root / "zheng2022_boundary_category.yaml")
    assert cfg.modalities[0]["source"] == "trial:stimCategory"


# ---------------------------------------------------------------- training and generation

@pytest.fixture(scope="module")
def trained(sleep, tmp_path_factory):
    torch.set_num_threads(1)
    rec = sleep.select_units([i for i, a in enumerate(sleep.unit_areas) if a == "ca1"]).restrict(0.0, 120.0)
    out = tmp_path_factory.mktemp("ripples")
    cfg = small_config(modalities=[RIPPLES])
    # no test-split generation and no figures: the tests read the model, its splits, logs and loss / count metrics
    # (generation with the ripples is checked by generate_spikes and generate_split below)
    metrics = train(rec, out, cfg, TrainingConfig(max_steps=8, batch_size=16, eval_every=4, learning_rate=3e-3,
                                                  generate_test=False), overwrite=True, progress=False,
                    write_figures=False)
    return rec, out, metrics


def test_tiny_model_trains_with_an_event_modality(trained):
    rec, out, metrics = trained
    log = json.loads((out / "training_log.json").read_text())
    assert log[-1]["validation/loss"] < log[0]["validation/loss"]
    assert np.isfinite(metrics["test/id_nll"])
    assert set(metrics["n_truncated_modality_tokens"]) == {"ripples"}
    # windows with no ripple onset in [start - 0.25 s, start + 0.05 s) read only the null token: counted
    # per split, as a numpy recount over the run's own window starts gives
    from hf_neuroformer.windows import SplitPlan, window_starts_for_split

    plan = SplitPlan.from_dict(json.loads((out / "splits.json").read_text()))
    cfg = nf.NeuroformerConfig.from_pretrained(out)
    t = rec.events["sleep_ripples"].times
    expected = {}
    for split in ("train", "validation", "test"):
        s = window_starts_for_split(plan, split, cfg)[0]
        has = np.searchsorted(t, s + 0.05, side="left") > np.searchsorted(t, s - 0.25, side="left")
        expected[split] = int((~has).sum())
    assert metrics["n_windows_without_modality_tokens"] == {"ripples": expected}
    assert 0 < expected["train"] < metrics["n_train_windows"]
    saved = json.loads((out / "config.json").read_text())
    assert saved["modalities"][0]["source"] == "events:sleep_ripples"
    assert saved["modalities"][0]["classes"] == ["sleep_ripples"]


def test_events_that_no_window_reads_are_counted(trained):
    """Ripple onsets in the gaps between splits (a split's first window reads from its segment's
    start on) were read by no window and counted nowhere: only events outside the recording and
    windows without events were. train now counts them per modality (metrics.json
    n_events_in_no_window), as a numpy recount over the run's own windows gives, and they are
    the onsets outside every split segment."""
    from hf_neuroformer.modalities import events_in_no_window
    from hf_neuroformer.windows import SplitPlan, window_starts_for_split

    rec, out, metrics = trained
    plan = SplitPlan.from_dict(json.loads((out / "splits.json").read_text()))
    cfg = nf.NeuroformerConfig.from_pretrained(out)
    t = rec.events["sleep_ripples"].times
    read = np.zeros(len(t), bool)
    windows = []
    for split in ("train", "validation", "test"):
        s, c = window_starts_for_split(plan, split, cfg, stride=None if split == "train" else cfg.current_window)
        windows.append((s, c))
        for a, b in zip(np.searchsorted(t, s - 0.25 - 1e-9), np.searchsorted(t, s + 0.05 - 1e-9)):
            read[a:b] = True
    seg = np.concatenate([plan.segments[k] for k in ("train", "validation", "test")])
    in_a_segment = ((t[:, None] >= seg[None, :, 0]) & (t[:, None] < seg[None, :, 1])).any(1)
    assert np.array_equal(read, in_a_segment) and 0 < (~read).sum() < len(t)
    assert metrics["n_events_in_no_window"] == {"ripples": int((~read).sum())}
    assert events_in_no_window(rec, cfg, windows) == {"ripples": int((~read).sum())}


def test_inspect_counts_the_events_no_window_reads_as_train_does(trained):
    """train wrote n_events_in_no_window to metrics.json, but inspect (which shows the windows training
    would make) did not count them: describe_recording with the run's config gives train's count,
    and format_description says it."""
    from hf_neuroformer.inspection import describe_recording, format_description

    rec, out, metrics = trained
    desc = describe_recording(rec, nf.NeuroformerConfig.from_pretrained(out))
    assert desc["windows"]["n_events_in_no_window"] == metrics["n_events_in_no_window"]
    k = metrics["n_events_in_no_window"]["ripples"]
    assert re.search(rf"modality 'ripples': {k} events? read by no window of any split", format_description(desc))
    assert "n_events_in_no_window" not in describe_recording(rec, small_config())["windows"]  # no event modality


def test_generate_counts_the_events_of_its_split_no_generated_window_reads(trained):
    """train counted the events no window reads, generate did not: generate_split's stats now hold
    n_events_in_no_window, the events inside the split's segments that no generated window's
    modality window [-0.25, 0.05) s holds, as a numpy recount over its windows gives (and an event
    placed after the last window's end, in a segment lengthened for it)."""
    from hf_neuroformer.generation import generate_split, generation_windows, load_pretrained

    rec, out, _ = trained
    model, tok, plan = load_pretrained(out)
    g = generate_split(model, tok, rec, plan, "test", max_spikes=4, seed=0, batch_size=256, progress=False)
    starts, _ = generation_windows(plan, "test", model.config)
    t = rec.events["sleep_ripples"].times
    seg = plan.segments["test"]
    read = np.zeros(len(t), bool)
    for a, b in zip(np.searchsorted(t, starts - 0.25 - 1e-9), np.searchsorted(t, starts + 0.05 - 1e-9)):
        read[a:b] = True
    in_split = ((t[:, None] >= seg[None, :, 0]) & (t[:, None] < seg[None, :, 1])).any(1)
    assert g.generation_stats["n_events_in_no_window"] == {"ripples": int((in_split & ~read).sum())}
    # the windows tile the split's segments, so all its events are read here; the events of the other
    # splits (read by none of these windows) are not the split's and are not counted
    assert (in_split & ~read).sum() == 0 and (~in_split & ~read).sum() > 50
    # a test segment 0.03 s longer than its windows tile: an event in that tail is read by no window
    longer = dataclasses.replace(plan, segments={**plan.segments, "test": seg + [[0, 0], [0, 0.03]]})
    ev = rec.events["sleep_ripples"]
    assert not np.any((ev.times >= 100.0) & (ev.times < 100.03))
    tail = dataclasses.replace(rec, events={"sleep_ripples": EventSeries(np.sort(np.r_[ev.times, 100.01]))})
    g = generate_split(model, tok, tail, longer, "test", max_spikes=4, seed=0, batch_size=256, progress=False)
    assert np.array_equal(generation_windows(longer, "test", model.config)[0], starts)
    assert g.generation_stats["n_events_in_no_window"] == {"ripples": 1}


def test_generation_is_conditioned_on_the_events(trained):
    from hf_neuroformer.generation import generate_spikes, load_pretrained

    rec, out, _ = trained
    model, tok, plan = load_pretrained(out)
    t = rec.events["sleep_ripples"].times
    starts = np.round(t[(t > 1.0) & (t < 110.0)][:12] - 0.02, 9)  # windows holding a ripple onset
    kw = dict(max_spikes=8, seed=5, progress=False)
    g1 = generate_spikes(model, tok, rec, starts, use_cache=True, **kw)
    g2 = generate_spikes(model, tok, rec, starts, use_cache=False, **kw)
    assert g1.n_spikes > 0 and np.array_equal(g1.spike_times, g2.spike_times)
    assert np.array_equal(g1.unit_ids, g2.unit_ids)
    # the same windows without the ripples: the model's spike distribution changes
    from hf_neuroformer.likelihood import window_log_likelihoods

    no_rip = dataclasses.replace(rec, events={"sleep_ripples": EventSeries(np.zeros(0))})
    a = window_log_likelihoods(model, tok, rec, starts)["log_likelihood"]
    b = window_log_likelihoods(model, tok, no_rip, starts)["log_likelihood"]
    assert np.max(np.abs(a - b)) > 1e-6
    with pytest.raises(ValueError, match=r"'events:sleep_ripples' is not in the recording"):
        generate_spikes(model, tok, dataclasses.replace(rec, events={}), starts, **kw)


def test_generate_spikes_over_arbitrary_windows_counts_the_events_no_window_reads(trained):
    """generate_split counted the events of its split that no generated window reads, generate_spikes
    over windows of one's own choosing did not count them at all: its stats now hold
    n_events_in_no_window, the events between the first window's start and the last window's end
    that no window's modality window [-0.25, 0.05) s holds, as a numpy recount gives."""
    from hf_neuroformer.generation import generate_spikes, load_pretrained

    rec, out, _ = trained
    model, tok, _ = load_pretrained(out)
    t = rec.events["sleep_ripples"].times
    starts = np.round(t[(t > 1.0) & (t < 110.0)][:12:2] - 0.02, 9)  # six windows, each holding every other onset
    g = generate_spikes(model, tok, rec, starts, max_spikes=2, seed=0, progress=False)
    read = np.zeros(len(t), bool)
    for a, b in zip(np.searchsorted(t, starts - 0.25 - 1e-9), np.searchsorted(t, starts + 0.05 - 1e-9)):
        read[a:b] = True
    span = (t >= starts.min()) & (t < starts.max() + 0.05)
    expected = int((span & ~read).sum())
    assert expected > 0 and read[span].sum() >= 6  # events between the windows, and those the windows hold
    assert g.generation_stats["n_events_in_no_window"] == {"ripples": expected}
    # contiguous windows over the same span read every event in it
    tiled = np.round(np.arange(starts.min(), starts.min() + 1.0, 0.05), 9)
    g = generate_spikes(model, tok, rec, tiled, max_spikes=1, seed=0, progress=False)
    assert g.generation_stats["n_events_in_no_window"] == {"ripples": 0}


def test_the_token_baselines_train_prints_are_fitted_on_train_and_scored_on_the_test_tokens(trained):
    """The unigram / Markov baselines of ``train``'s metrics, recounted from the spike times: every
    spike of the tiled test windows (canonical order: dt bin, then unit token) is scored once, with
    add-one counts from the TRAIN windows only (the first spike of a window follows the last spike
    of its past window, the latest dt bin then the highest unit token). A fit on the test windows
    (or on all of them) would score the test tokens with their own counts."""
    from hf_neuroformer.windows import SplitPlan

    rec, out, metrics = trained
    plan = SplitPlan.from_dict(json.loads((out / "splits.json").read_text()))
    tok = nf.NeuroformerTokenizer.from_pretrained(out)
    cur, past, dt, n_bins = 0.05, 0.25, 0.005, 10  # small_config's windows
    t, u = rec.spike_times, tok.unit_token_ids(rec)[rec.unit_ids]
    vocab = len(tok)

    def pairs(split):  # (previous unit or -1, unit, dt bin, previous dt bin in the window or -1) per spike token
        rows = []
        for a, b in plan.segments[split]:
            for s in np.round(a + past + cur * np.arange(int((b - a - past) / cur + 1e-6)), 9):
                p = np.flatnonzero((t >= round(s - past, 9)) & (t < s))
                c = np.flatnonzero((t >= s) & (t < round(s + cur, 9)))
                pk = np.floor((t[p] - round(s - past, 9)) / dt + 1e-9)
                prev = int(u[p][np.lexsort((u[p], pk))][-1]) if len(p) else -1
                k = np.minimum(np.floor((t[c] - s) / dt + 1e-9).astype(int), n_bins - 1)
                prev_k = -1
                for i in np.lexsort((u[c], k)):
                    rows.append((prev, int(u[c][i]), int(k[i]), prev_k))
                    prev, prev_k = int(u[c][i]), int(k[i])
        return rows

    train, test = pairs("train"), pairs("test")
    assert metrics["test/n_spike_tokens"] == len(test) > 0
    units = np.zeros(vocab, bool)
    units[tok.unit_token_ids(rec)] = True
    uni, bi = np.where(units, 1.0, 0.0), np.where(units[None], 1.0, 0.0).repeat(vocab + 1, 0)
    dts, dt_bi = np.ones(n_bins), np.triu(np.ones((n_bins + 1, n_bins)))  # row n_bins: window start
    dt_bi[n_bins] = 1.0
    for prev, unit, k, prev_k in train:
        uni[unit] += 1
        bi[prev, unit] += 1  # -1: the last row, "no previous spike"
        dts[k] += 1
        dt_bi[prev_k, k] += 1  # -1: the last row, the window start
    for p in (uni, dts):
        p /= p.sum()
    for p in (bi, dt_bi):
        p /= p.sum(1, keepdims=True)
    expect = {"unigram_id_nll": -np.mean([np.log(uni[x[1]]) for x in test]),
              "markov_id_nll": -np.mean([np.log(bi[x[0], x[1]]) for x in test]),
              "marginal_dt_nll": -np.mean([np.log(dts[x[2]]) for x in test]),
              "markov_dt_nll": -np.mean([np.log(dt_bi[x[3], x[2]]) for x in test])}
    for key, value in expect.items():
        assert metrics[f"test/{key}"] == pytest.approx(value, rel=1e-9), key


def test_events_in_milliseconds_dropped_by_from_arrays_are_said_to_be_on_another_clock():
    """Break test: lick times in ms given with spikes in s (clock from 0) kept the few licks whose ms
    value fell inside the 60 s (misplaced) and dropped the rest as 'outside the time domain', with no
    word of the time base; a stream mostly outside now says so. A few outside stay a plain count."""
    from hf_neuroformer.io import from_arrays

    licks_s = np.arange(0.5, 60.0, 0.5)
    spikes = np.array([0.1, 10.0, 59.0])
    with pytest.warns(UserWarning, match=r"events\['licks'\] \(119 events\): dropped 119 events outside the time "
                                         r"domain \[0\.0, 60\.0\) s \(first at 500\.0 s\); most lie outside: times must "
                                         r"be seconds on the spikes' clock \(milliseconds\?"):
        from_arrays(spikes, np.zeros(3, dtype=np.int64), time_domain=(0.0, 60.0), events={"licks": licks_s * 1000.0})
    mostly_in = np.r_[licks_s, 61.0, 62.0]  # two after the end: counted, no clock hint
    with pytest.warns(UserWarning, match=r"dropped 2 events outside") as caught:
        from_arrays(spikes, np.zeros(3, dtype=np.int64), time_domain=(0.0, 60.0), events={"licks": mostly_in})
    assert not any("milliseconds" in str(w.message) for w in caught)


def test_an_event_stream_without_events_is_not_blamed_on_the_clock():
    """Break test (helper-380): a stream that holds no event at all (A2929's ripples in --epoch wake, as
    'neuroformer inspect' reports it) was refused as "no label ... (it has no values, ...; times must
    be seconds on the spikes' clock)": no time is wrong when there is none. It now says the stream
    is empty in this recording."""
    from hf_neuroformer.io import from_arrays

    rng = np.random.default_rng(0)
    spikes = np.sort(rng.uniform(0.0, 60.0, 600))
    rec = from_arrays(spikes, np.arange(600) % 3, time_domain=(0.0, 60.0), events={"licks": np.zeros(0)})
    cfg = small_config(modalities=[{"name": "licks", "source": "events:licks", "kind": "categorical"}],
                       split_block_length=5.0)
    with pytest.raises(ValueError, match=r"no label of 'events:licks' inside the training split \(the recording "
                                         r"holds no value of it at any time: was it recorded in this recording, or "
                                         r"in this --epoch\?\)$") as err:
        fit_modalities(rec, cfg, plan_splits(rec, cfg))
    assert "clock" not in str(err.value)


def test_a_processor_batch_without_an_event_is_not_warned_of_but_a_dataset_is(trained):
    """A batch of windows holding no ripple is normal for an event stream (sparse onsets), so the
    processor's __call__ does not warn of it (it did, once per batch, since the null-token check was
    added); to_dataset, a whole set of windows, still does, as for a behaviour series."""
    from hf_neuroformer.generation import load_pretrained

    rec, out, _ = trained
    model, tok, _ = load_pretrained(out)
    processor = nf.NeuroformerProcessor.from_config(tok, model.config)
    t = rec.events["sleep_ripples"].times
    start = next(float(s) for s in np.arange(1.0, 110.0, 0.05)  # no onset in [s - 0.25, s + 0.05)
                 if not np.any((t >= s - 0.25) & (t < s + 0.05)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inputs = processor(rec, [start])
    assert inputs["modality_inputs"]["ripples"]["mask"].sum() == 0
    with pytest.warns(UserWarning, match=r"modality 'ripples' .*none of the 1 windows holds a value of it"):
        processor.to_dataset(rec, [start])
    # generate_spikes over windows of one's choosing: the same (it warned of them too, since 2716c58)
    from hf_neuroformer.generation import generate_spikes

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = generate_spikes(model, tok, rec, [start], max_spikes=2, seed=0, progress=False)
    assert not [str(w.message) for w in caught if "null token" in str(w.message)]
    assert g.generation_stats["n_events_in_no_window"] == {"ripples": 0}


def test_decode_windows_does_not_warn_of_windows_without_an_event(trained):
    """decode_windows warned "k of n windows have no value of the decoder's input modality 'ripples'
    (source 'events:sleep_ripples')" for a decoder reading an event stream, where windows without an
    event (between sparse onsets) are the normal case, not a gap in the recording as for a behaviour
    series (e.g. head direction during sleep, still warned of)."""
    from hf_neuroformer.finetuning import decode_windows
    from hf_neuroformer.generation import load_pretrained

    rec, out, _ = trained
    _, tok, _ = load_pretrained(out)
    cfg = nf.NeuroformerConfig.from_pretrained(out, decoding_targets=[{"name": "x", "kind": "regression"}])
    torch.manual_seed(0)
    decoder = nf.NeuroformerForBehaviorDecoding(cfg).eval()  # untrained: only the warnings are read here
    t = rec.events["sleep_ripples"].times
    starts = [float(s) for s in np.arange(1.0, 110.0, 0.05)  # no onset in [s - 0.25, s + 0.05)
              if not np.any((t >= s - 0.25) & (t < s + 0.05))][:4]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table, info = decode_windows(decoder, tok, rec, starts, recorded=False)
    assert len(table) == 4 and info["windows_without_input"] == {}


def test_labels_mixing_ints_and_text_are_refused_naming_the_stream_and_the_types():
    """``[1, "a"]`` became ``['1', 'a']`` (numpy's common type: text) without a word, and an object
    array kept the mix; both are refused, naming the stream, each type found and where."""
    from hf_neuroformer.events import as_event_series, clean_events

    msg = (r"^events\['licks'\]\.labels: expected labels of one type \(all int or all str\), "
           r"got a mix of 2 int, 1 str \(first text label 'a' at index 1, first other 1 at "
           r"index 0\)")
    for labels in ([1, "a", 2], np.array([1, "a", 2], dtype=object)):
        with pytest.raises(RecordingValidationError, match=msg):
            as_event_series("licks", ([0.5, 1.0, 1.5], labels))
        with pytest.raises(RecordingValidationError, match=msg):
            clean_events({"licks": {"times": [0.5, 1.0, 1.5], "labels": labels}}, (0.0, 2.0),
                         "test")
    with pytest.raises(RecordingValidationError,
                       match=r"^EventSeries\.labels: .*got a mix of 1 int, 1 str"):
        EventSeries(np.array([0.5, 1.0]), [np.int64(3), b"b"])
    # one type passes as before: ints stay int64, text stays text; None (a missing label, refused
    # with a count when a categorical modality is fitted) is no type of its own
    gap = np.array(["a", None], dtype=object)
    assert as_event_series("licks", ([0.5, 1.0], gap)).labels[1] is None
    mixed = (r"got a mix of 1 str, 1 int \(first text label 'a' at index 0, first other 2 at "
             r"index 2\)")
    with pytest.raises(RecordingValidationError, match=mixed):
        as_event_series("licks", ([0.5, 1.0, 1.5], np.array(["a", None, 2], dtype=object)))
    assert as_event_series("licks", ([0.5, 1.0], [1, 2])).labels.dtype == np.int64
    assert as_event_series("licks", ([0.5, 1.0], ["a", b"b"])).labels.tolist() == ["a", "b"]
