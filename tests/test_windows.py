"""Windows and splits: honest (non-leaking) split plans, window datasets, the collator.

Every expected count below is recomputed from the recording with ``np.searchsorted``, not read
back from the code under test.
"""

from __future__ import annotations

import itertools
import warnings

import datasets
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hf_neuroformer
import hf_neuroformer.io
from hf_neuroformer import (
    NeuroformerCollator,
    NeuroformerConfig,
    NeuroformerTokenizer,
    RecordingValidationError,
    SpikeRecording,
    build_window_datasets,
    plan_splits,
)
from hf_neuroformer.windows import SPLITS, SplitPlan, tiling_windows, window_starts_for_split

EPS = 1e-9
COLUMNS = {"window_start", "input_ids", "dt_ids", "past_input_ids", "past_dt_ids", "n_spikes",
           "n_truncated", "n_past_truncated", "past_clip_start"}
A2929 = "pynapple_A2929_headdirection/A2929-200711.nwb"


@pytest.fixture(scope="module")
def sim():
    return hf_neuroformer.simulate_coupled_network(duration=60, seed=3).recording


@pytest.fixture(scope="module")
def a2929(shared_data):
    return hf_neuroformer.io.load_recording(shared_data(A2929), epoch="wake")


def small_config(**kw):
    base = dict(current_window=0.1, past_window=0.5, dt_resolution=0.01, max_window_length=16,
                max_past_length=32, split_block_length=5.0, split_seed=0)
    base.update(kw)
    return NeuroformerConfig(**base)


def tokenizer_for(rec, cfg):
    tok = NeuroformerTokenizer.from_config(cfg)
    tok.add_units(rec)
    return tok


def read_spans(plan, cfg):
    """split -> list of (lo, hi): the data the split's windows read, one span per segment."""
    out = {}
    for split in SPLITS:
        starts, _ = window_starts_for_split(plan, split, cfg)
        spans = []
        for a, b in plan.segments[split]:
            inside = starts[(starts >= a - EPS) & (starts < b)]
            if len(inside):
                spans.append((inside.min() - cfg.past_window, inside.max() + cfg.current_window))
        out[split] = spans
    return out


def check_time_plan(plan, rec, cfg):
    """Invariants of a time-mode plan; returns nothing, asserts."""
    assert plan.mode == "time"
    lo, hi = rec.support[0, 0], rec.support[-1, 1]
    segs = {s: plan.segments[s] for s in SPLITS}
    for s, seg in segs.items():
        assert seg.ndim == 2 and seg.shape[1] == 2
        assert np.all(seg[:, 1] > seg[:, 0])
        assert np.all(seg[:, 0] >= lo - EPS) and np.all(seg[:, 1] <= hi + EPS)
    # segments (of any split) never overlap
    allseg = sorted((a, b, s) for s, seg in segs.items() for a, b in seg)
    for (a0, b0, s0), (a1, b1, s1) in zip(allseg, allseg[1:]):
        assert a1 >= b0 - EPS, (s0, (a0, b0), s1, (a1, b1))
    # every window (past included) lies inside one segment of its own split
    for s in SPLITS:
        starts, clips = window_starts_for_split(plan, s, cfg)
        assert np.all(np.isnan(clips))
        if cfg.split_fractions[SPLITS.index(s)] > 0:
            assert len(starts) > 0, s
        seg = segs[s]
        inside = ((starts[:, None] - cfg.past_window >= seg[None, :, 0] - EPS)
                  & (starts[:, None] + cfg.current_window <= seg[None, :, 1] + EPS))
        assert np.all(inside.sum(1) == 1)
    # what one split's windows read is >= split_gap away from what another split's windows read
    spans = read_spans(plan, cfg)
    for s0, s1 in itertools.combinations(SPLITS, 2):
        for (a0, b0), (a1, b1) in itertools.product(spans[s0], spans[s1]):
            sep = max(a1 - b0, a0 - b1)
            assert sep >= cfg.split_gap - 1e-6, (s0, (a0, b0), s1, (a1, b1), sep)


# --------------------------------------------------------------------------- time mode
def test_time_plan_on_simulated(sim):
    cfg = small_config()
    plan = plan_splits(sim, cfg)
    check_time_plan(plan, sim, cfg)
    # 12 blocks of 5 s -> 8 / 2 / 2 blocks; covered time = blocks * 5 s minus one gap per boundary
    covered = {s: float(np.sum(np.diff(plan.segments[s], axis=1))) for s in SPLITS}
    n_seg = sum(len(plan.segments[s]) for s in SPLITS)
    for s, f in zip(SPLITS, cfg.split_fractions):
        assert abs(covered[s] / 60.0 - f) <= (5.0 + n_seg * cfg.split_gap) / 60.0, (s, covered[s])
    assert covered["train"] > covered["validation"] and covered["train"] > covered["test"]


def test_split_gap_holds_across_short_holes_in_the_support():
    """Support with a 0.2 s hole: two splits meeting across it still get split_gap between them."""
    cfg = small_config()
    rng = np.random.default_rng(0)
    t = np.sort(np.concatenate([rng.uniform(0, 30, 900), rng.uniform(30.2, 60, 900)]))
    rec = SpikeRecording(spike_times=t, unit_ids=rng.integers(0, 5, t.size), unit_names=[f"u{i}" for i in range(5)],
                         time_domain=(0.0, 60.0), time_support=[[0.0, 30.0], [30.2, 60.0]])
    for seed in range(8):
        cfg = small_config(split_seed=seed)
        plan = plan_splits(rec, cfg)
        spans = read_spans(plan, cfg)
        for s0, s1 in itertools.combinations(SPLITS, 2):
            for (a0, b0), (a1, b1) in itertools.product(spans[s0], spans[s1]):
                assert max(a1 - b0, a0 - b1) >= cfg.split_gap - 1e-6, (seed, s0, s1)


def test_plan_is_seeded(sim):
    p0 = plan_splits(sim, small_config(split_seed=0))
    again = plan_splits(sim, small_config(split_seed=0))
    assert p0.to_dict() == again.to_dict()
    others = [plan_splits(sim, small_config(split_seed=k)).to_dict() for k in (1, 2, 3)]
    assert any(o != p0.to_dict() for o in others)
    # the plan serialises (splits.json) and reads back
    back = SplitPlan.from_dict(p0.to_dict())
    assert back.mode == p0.mode
    for s in SPLITS:
        np.testing.assert_array_equal(back.segments[s], p0.segments[s])


def test_split_gap_larger_than_past_window(sim):
    cfg = small_config(split_gap=1.5)
    check_time_plan(plan_splits(sim, cfg), sim, cfg)
    with pytest.raises(ValueError, match="split_gap"):
        small_config(split_gap=0.2)  # below past_window


@settings(max_examples=60, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(
    t0=st.floats(0.0, 1000.0),
    duration=st.floats(5.0, 400.0),
    block=st.floats(1.0, 60.0),
    past=st.floats(0.0, 2.0),
    current=st.sampled_from([0.02, 0.05, 0.1, 0.25]),
    extra_gap=st.floats(0.0, 2.0),
    stride_frac=st.sampled_from([None, 0.5, 1.0, 2.0]),
    fractions=st.sampled_from([(0.7, 0.15, 0.15), (0.8, 0.1, 0.1), (0.5, 0.25, 0.25), (0.6, 0.4, 0.0)]),
    seed=st.integers(0, 10_000),
)
def test_time_plan_properties(t0, duration, block, past, current, extra_gap, stride_frac, fractions, seed):
    cfg = NeuroformerConfig(current_window=current, past_window=past, dt_resolution=current / 5,
                            window_stride=None if stride_frac is None else current * stride_frac,
                            split_block_length=block, split_gap=past + extra_gap,
                            split_fractions=fractions, split_seed=seed, split_by="time")
    rec = SpikeRecording(np.array([t0 + duration / 2]), np.array([0]), time_domain=(t0, t0 + duration))
    # the documented rule: about split_block_length-s blocks, at least one per split with a non-zero
    # fraction; refused only when such a block cannot hold a window with its past plus the split gap
    # (an `except: return` alone let a planner that refused too often pass every example)
    n_blocks = max(int(round(duration / block)), sum(f > 0 for f in fractions))
    room = duration / n_blocks - (past + current + cfg.split_gap)
    try:
        plan = plan_splits(rec, cfg)
    except ValueError as err:
        assert "too short" in str(err)
        assert room <= 1e-6, (room, str(err))
        return
    assert room > -1e-6, room
    check_time_plan(plan, rec, cfg)
    if fractions[2] == 0:
        assert len(plan.segments["test"]) == 0


def test_time_plan_on_a2929(a2929):
    cfg = small_config(split_block_length=30.0, past_window=1.0)
    plan = plan_splits(a2929, cfg)
    check_time_plan(plan, a2929, cfg)
    # 20 blocks of 30 s -> 14 / 3 / 3 blocks
    covered = {s: float(np.sum(np.diff(plan.segments[s], axis=1))) for s in SPLITS}
    assert 14 * 30 - 14 * cfg.split_gap <= covered["train"] <= 14 * 30
    for s in ("validation", "test"):
        assert 3 * 30 - 3 * cfg.split_gap <= covered[s] <= 3 * 30


# --------------------------------------------------------------------------- trial mode
@pytest.fixture(scope="module")
def trial_rec():
    rng = np.random.default_rng(7)
    trials = np.array([[1.5 * k, 1.5 * k + 1.0] for k in range(30)])
    t = np.sort(rng.uniform(0.0, 45.0, 4000))
    u = rng.integers(0, 6, t.size)
    return SpikeRecording(t, u, unit_names=[f"n{i}" for i in range(6)], time_domain=(0.0, 45.0),
                          trials=trials, session="tr")


def test_trial_plan(trial_rec):
    cfg = small_config(current_window=0.1, past_window=0.3, split_by="auto")
    plan = plan_splits(trial_rec, cfg)
    assert plan.mode == "trials"
    idx = {s: plan.trial_index[s] for s in SPLITS}
    all_idx = np.concatenate([idx[s] for s in SPLITS])
    assert sorted(all_idx.tolist()) == list(range(30))  # each trial in exactly one split
    assert [len(idx[s]) for s in SPLITS] == [21, 5, 4]
    for s in SPLITS:
        np.testing.assert_array_equal(plan.segments[s], trial_rec.trials[idx[s]])
    assert plan_splits(trial_rec, cfg).to_dict() == plan.to_dict()


def test_trial_windows_stay_in_their_trial(trial_rec):
    cfg = small_config(current_window=0.1, past_window=0.3, split_by="trials", max_window_length=64,
                       max_past_length=64)
    tok = tokenizer_for(trial_rec, cfg)
    dsd, plan = build_window_datasets(trial_rec, tok, cfg)
    trials = trial_rec.trials
    st_ = trial_rec.spike_times
    seen_trials = {}
    for s in SPLITS:
        d = dsd[s][:]
        starts = np.asarray(d["window_start"])
        clips = np.asarray(d["past_clip_start"])
        k = np.searchsorted(trials[:, 0], starts, side="right") - 1  # trial holding each window
        assert np.all(k >= 0)
        assert np.all(starts >= trials[k, 0] - EPS)
        assert np.all(starts + cfg.current_window <= trials[k, 1] + EPS)
        np.testing.assert_array_equal(clips, trials[k, 0])  # past clipped to the trial start
        assert set(np.unique(k).tolist()) == set(plan.trial_index[s].tolist())
        for kk in np.unique(k):
            assert kk not in seen_trials, (kk, s, seen_trials.get(kk))
            seen_trials[kk] = s
        assert np.all(np.bincount(k)[np.unique(k)] == 10)  # 1 s trial, 0.1 s windows
        # the past holds exactly the spikes of [max(start - past, trial start), start)
        lo = np.searchsorted(st_, np.maximum(starts - cfg.past_window, trials[k, 0]), side="left")
        hi = np.searchsorted(st_, starts, side="left")
        n_past = np.array([len(p) - 1 for p in d["past_input_ids"]])
        np.testing.assert_array_equal(n_past + np.asarray(d["n_past_truncated"]), hi - lo)
        first = starts == trials[k, 0]
        assert first.sum() == len(np.unique(k))
        assert all(len(p) == 1 for p, f in zip(d["past_input_ids"], first) if f)  # only BOS
    assert len(seen_trials) == 30


def test_trials_mode_needs_three_trials():
    rec = SpikeRecording(np.array([0.1, 1.2]), np.array([0, 0]), time_domain=(0.0, 100.0),
                         trials=np.array([[0.0, 1.0], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="trials"):
        plan_splits(rec, small_config(split_by="trials"))
    # auto falls back to time blocks
    assert plan_splits(rec, small_config(split_by="auto")).mode == "time"


# --------------------------------------------------------------------------- datasets
def _token_counts_match(rec, tok, cfg, dsd):
    """Assert spikes in windows (+ truncated) equal the recording's spikes in each window."""
    spike_tokens = tok.unit_token_ids(rec)[rec.unit_ids]
    st_ = rec.spike_times
    total_trunc = 0
    for s in SPLITS:
        d = dsd[s][:]
        starts = np.asarray(d["window_start"], dtype=np.float64)
        lo = np.searchsorted(st_, starts, side="left")
        # window ends lie on a 1 ns grid (documented in NeuroformerTokenizer.encode_window)
        hi = np.searchsorted(st_, np.round(starts + cfg.current_window, 9), side="left")
        # adjacent windows share their edge: no spike is counted twice
        ends = np.round(starts + cfg.current_window, 9)
        adjacent = np.isclose(starts[1:], ends[:-1], atol=1e-6)
        np.testing.assert_array_equal(starts[1:][adjacent], ends[:-1][adjacent])
        kept = np.array([sum(1 for t in ids if t > 2) for ids in d["input_ids"]])
        trunc = np.asarray(d["n_truncated"])
        np.testing.assert_array_equal(kept + trunc, hi - lo)
        np.testing.assert_array_equal(np.asarray(d["n_spikes"]), hi - lo)
        has_eos = np.array([ids[-1] == 2 for ids in d["input_ids"]])
        np.testing.assert_array_equal(has_eos, trunc == 0)
        assert np.all(kept <= cfg.max_window_length - 2)
        plo = np.searchsorted(st_, starts - cfg.past_window, side="left")
        n_past = np.array([len(p) - 1 for p in d["past_input_ids"]])
        np.testing.assert_array_equal(n_past + np.asarray(d["n_past_truncated"]), lo - plo)
        assert np.all(n_past <= cfg.max_past_length - 1)
        for ids, dts, pids, pdts in zip(d["input_ids"], d["dt_ids"], d["past_input_ids"], d["past_dt_ids"]):
            assert ids[0] == 1 and dts[0] == 0 and pids[0] == 1 and pdts[0] == 0
            assert len(ids) == len(dts) and len(pids) == len(pdts)
        # untruncated windows hold exactly the recording's units
        for i in np.flatnonzero(trunc == 0):
            got = sorted(d["input_ids"][i][1:-1])
            assert got == sorted(spike_tokens[lo[i]:hi[i]].tolist())
        total_trunc += int(trunc.sum())
    return total_trunc


def test_build_window_datasets_simulated(sim):
    cfg = small_config(max_window_length=6)
    tok = tokenizer_for(sim, cfg)
    dsd, plan = build_window_datasets(sim, tok, cfg)
    assert isinstance(dsd, datasets.DatasetDict)
    assert set(dsd.keys()) == set(SPLITS)
    for s in SPLITS:
        assert set(dsd[s].column_names) == COLUMNS
        assert dsd[s].num_rows > 0
        starts, _ = window_starts_for_split(plan, s, cfg)
        np.testing.assert_allclose(dsd[s]["window_start"][:], starts)
        assert np.all(np.isnan(np.asarray(dsd[s]["past_clip_start"][:], dtype=float)))
    _token_counts_match(sim, tok, cfg, dsd)
    # same seed, same datasets
    dsd2, _ = build_window_datasets(sim, tok, cfg)
    a, b = dsd2["validation"][:], dsd["validation"][:]
    # NaN != NaN: the clip starts are compared as "all NaN" (time mode has no clip), the rest exactly
    # (an `is not None` on the popped lists could not fail)
    for d in (a, b):
        assert np.all(np.isnan(np.asarray(d.pop("past_clip_start"), dtype=float)))
    assert a == b


def test_build_window_datasets_a2929(a2929):
    cfg = small_config(current_window=0.1, past_window=0.5, dt_resolution=0.005, max_window_length=8,
                       max_past_length=24, split_block_length=30.0)
    tok = tokenizer_for(a2929, cfg)
    assert len(tok) == 3 + a2929.n_units
    dsd, plan = build_window_datasets(a2929, tok, cfg)
    check_time_plan(plan, a2929, cfg)
    n_trunc = _token_counts_match(a2929, tok, cfg, dsd)
    assert n_trunc > 0  # head-direction cells fire fast enough to exercise truncation
    assert sum(dsd[s].num_rows for s in SPLITS) > 4000


def test_window_stride_steps_only_the_training_windows(sim, tmp_path):
    """``window_stride`` < ``current_window``: the training windows overlap (step = stride), while the
    validation and test windows tile their split exactly as without it (same starts, same tokens), in the
    in-memory datasets and in a prepared directory; expected starts recomputed from the segments."""
    from hf_neuroformer.windows import prepare_windows

    tiled_cfg, strided_cfg = small_config(), small_config(window_stride=0.05)
    tok = tokenizer_for(sim, tiled_cfg)
    tiled, plan = build_window_datasets(sim, tok, tiled_cfg)
    strided, plan2 = build_window_datasets(sim, tok, strided_cfg, plan)
    w, p = tiled_cfg.current_window, tiled_cfg.past_window

    def expected(split, step):
        return np.concatenate([np.arange(a + p, b - w + EPS, step) for a, b in plan.segments[split]])

    np.testing.assert_allclose(strided["train"]["window_start"][:], expected("train", 0.05), atol=1e-8)
    np.testing.assert_allclose(tiled["train"]["window_start"][:], expected("train", w), atol=1e-8)
    assert strided["train"].num_rows >= 2 * tiled["train"].num_rows - len(plan.segments["train"])
    for split in ("validation", "test"):
        np.testing.assert_allclose(strided[split]["window_start"][:], expected(split, w), atol=1e-8)
        a, b = strided[split][:], tiled[split][:]
        a.pop("past_clip_start"), b.pop("past_clip_start")  # NaN != NaN
        assert a == b
    manifest = prepare_windows(sim, tmp_path / "prepared", strided_cfg, tok, plan, progress=False)
    assert {s: manifest["splits"][s]["n_windows"] for s in SPLITS} == {s: strided[s].num_rows for s in SPLITS}


def test_unknown_unit_in_tokenizer_fails(sim):
    cfg = small_config()
    tok = NeuroformerTokenizer.from_config(cfg, ["simulated/unit0"])
    with pytest.raises(ValueError, match="add_units"):
        build_window_datasets(sim, tok, cfg)


def test_too_short_recording_raises():
    rec = hf_neuroformer.simulate_coupled_network(n_units=4, duration=2.0, seed=1).recording
    cfg = small_config(past_window=1.0, split_block_length=30.0)
    with pytest.raises(ValueError, match="too short"):
        build_window_datasets(rec, tokenizer_for(rec, cfg), cfg)


def test_empty_recording_raises():
    rec = SpikeRecording(np.zeros(0), np.zeros(0, dtype=np.int64), unit_names=["u0", "u1"],
                         time_domain=(0.0, 100.0))
    cfg = small_config()
    with pytest.raises(RecordingValidationError, match="empty"):
        build_window_datasets(rec, tokenizer_for(rec, cfg), cfg)


# --------------------------------------------------------------------------- collator
def test_collator_padding_and_labels():
    ex = [
        {"input_ids": [1, 5, 3, 2], "dt_ids": [0, 4, 7, 7], "past_input_ids": [1, 4, 4, 6, 3],
         "past_dt_ids": [0, 1, 5, 9, 20]},
        {"input_ids": [1, 2], "dt_ids": [0, 0], "past_input_ids": [1], "past_dt_ids": [0]},
        # truncated window: no EOS
        {"input_ids": [1, 3, 4, 6, 7, 8], "dt_ids": [0, 1, 1, 2, 3, 3], "past_input_ids": [1, 7],
         "past_dt_ids": [0, 2]},
    ]
    b = NeuroformerCollator()(ex)
    assert set(b) == {"input_ids", "dt_ids", "attention_mask", "labels", "dt_labels", "past_input_ids",
                      "past_dt_ids", "past_attention_mask"}
    assert all(v.dtype == torch.int64 for v in b.values())
    for k in ("input_ids", "dt_ids", "attention_mask", "labels", "dt_labels"):
        assert tuple(b[k].shape) == (3, 6)
    for k in ("past_input_ids", "past_dt_ids", "past_attention_mask"):
        assert tuple(b[k].shape) == (3, 5)
    assert b["input_ids"].tolist() == [[1, 5, 3, 2, 0, 0], [1, 2, 0, 0, 0, 0], [1, 3, 4, 6, 7, 8]]
    assert b["dt_ids"].tolist() == [[0, 4, 7, 7, 0, 0], [0, 0, 0, 0, 0, 0], [0, 1, 1, 2, 3, 3]]
    assert b["attention_mask"].tolist() == [[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0], [1] * 6]
    assert b["labels"].tolist() == [[1, 5, 3, 2, -100, -100], [1, 2, -100, -100, -100, -100],
                                     [1, 3, 4, 6, 7, 8]]
    assert b["dt_labels"].tolist() == [[-100, 4, 7, -100, -100, -100], [-100] * 6,
                                        [-100, 1, 1, 2, 3, 3]]
    assert b["past_input_ids"].tolist() == [[1, 4, 4, 6, 3], [1, 0, 0, 0, 0], [1, 7, 0, 0, 0]]
    assert b["past_dt_ids"].tolist() == [[0, 1, 5, 9, 20], [0, 0, 0, 0, 0], [0, 2, 0, 0, 0]]
    assert b["past_attention_mask"].tolist() == [[1] * 5, [1, 0, 0, 0, 0], [1, 1, 0, 0, 0]]


def test_collator_refuses_rows_whose_dt_ids_do_not_match_their_ids():
    """A row with one dt_ids entry too few was padded with bin 0 at its EOS when another row of the
    batch was longer (the model then read a wrong time without an error); no row at all failed
    with "max() arg is an empty sequence"."""
    good = {"input_ids": [1, 3, 2], "dt_ids": [0, 1, 1], "past_input_ids": [1, 4], "past_dt_ids": [0, 3]}
    for key, short, said in (("dt_ids", [0, 1], "2 dt_ids for 3 input_ids"),
                             ("past_dt_ids", [0], "1 past_dt_ids for 2 past_input_ids")):
        with pytest.raises(ValueError, match=rf"^examples\[0\]: expected one {key} entry per .*, got {said}$"):
            NeuroformerCollator()([{**good, key: short}, good])
    with pytest.raises(ValueError, match="examples: expected at least one window row, got none"):
        NeuroformerCollator()([])


def test_collator_refuses_a_tokenizer_or_a_config_in_place_of_its_token_ids(sim):
    """NeuroformerCollator(tokenizer), as transformers' DataCollatorWithPadding(tokenizer) is made,
    was accepted and failed at the first batch with torch's "full(): argument 'fill_value' must be
    Number, not NeuroformerTokenizer", naming neither the argument nor the fix."""
    cfg = small_config()
    tok = tokenizer_for(sim, cfg)
    for wrong in (tok, cfg):
        with pytest.raises(ValueError, match=r"^NeuroformerCollator: pad_token_id: expected a token id .*got "
                                             rf"{type(wrong).__name__}.*processor\.collator"):
            NeuroformerCollator(wrong)
    for kwargs, name in (({"bos_token_id": 1.5}, "bos_token_id"), ({"eos_token_id": True}, "eos_token_id"),
                         ({"pad_token_id": -1}, "pad_token_id")):
        with pytest.raises(ValueError, match=rf"^NeuroformerCollator: {name}: expected a token id"):
            NeuroformerCollator(**kwargs)
    # numpy integers are token ids too
    assert NeuroformerCollator(np.int64(0), np.int64(1), np.int64(2)).pad == 0


def test_collator_on_dataset_rows(sim):
    cfg = small_config()
    tok = tokenizer_for(sim, cfg)
    dsd, _ = build_window_datasets(sim, tok, cfg)
    rows = [dsd["train"][i] for i in range(8)]
    b = NeuroformerCollator(tok.pad_token_id, tok.bos_token_id, tok.eos_token_id)(rows)
    T = max(len(r["input_ids"]) for r in rows)
    assert tuple(b["input_ids"].shape) == (8, T)
    am = b["attention_mask"].bool()
    assert am.sum().item() == sum(len(r["input_ids"]) for r in rows)
    assert torch.all(b["labels"][~am] == -100) and torch.all(b["labels"][am] == b["input_ids"][am])
    spike = am & (b["input_ids"] > 2)
    assert torch.all(b["dt_labels"][spike] == b["dt_ids"][spike])
    assert torch.all(b["dt_labels"][~spike] == -100)
    assert torch.all(b["input_ids"][~am] == 0)


def test_overlapping_trials_go_to_the_same_split():
    """Overlapping trials share spikes: a split must never hold one and not the other."""
    rng = np.random.default_rng(1)
    starts = np.arange(30) * 2.0
    trials = np.stack([starts, starts + 1.0], 1)
    trials[5] = [trials[4, 0] + 0.5, trials[4, 1] + 0.5]  # 4 and 5 overlap
    trials[20] = [trials[19, 0] + 0.9, trials[19, 1] + 0.3]  # 19 and 20 overlap
    trials = trials[np.argsort(trials[:, 0])]
    t = np.sort(rng.uniform(0, 60, 3000))
    rec = SpikeRecording(spike_times=t, unit_ids=rng.integers(0, 4, t.size), unit_names=list("abcd"),
                         time_domain=(0.0, 60.0), trials=trials)
    for seed in range(10):
        plan = plan_splits(rec, small_config(split_by="trials", split_seed=seed))
        where = {}
        for s in SPLITS:
            for i in plan.trial_index[s]:
                assert i not in where
                where[int(i)] = s
        assert sorted(where) == list(range(len(trials)))
        for i in range(len(trials) - 1):
            if trials[i + 1, 0] < trials[i, 1]:
                assert where[i] == where[i + 1], (seed, i)



def test_a_stratum_with_fewer_trials_than_splits_goes_to_train_with_a_warning():
    """A stratify value with 1 or 2 trials cannot be in every split: its trials went to test (and
    validation) only, never to train, without a word; now train first, then validation, warned."""
    rng = np.random.default_rng(0)
    starts = np.arange(21) * 1.0
    trials = np.stack([starts, starts + 0.8], 1)
    ori = np.array([0] * 9 + [1] * 9 + [2, 3, 3])  # orientation 2: one trial; 3: two
    t = np.sort(rng.uniform(0, 21, 2000))
    rec = SpikeRecording(spike_times=t, unit_ids=rng.integers(0, 3, t.size), unit_names=list("abc"),
                         time_domain=(0.0, 21.0), trials=trials, trial_info={"ori": ori})
    for seed in range(5):
        with pytest.warns(UserWarning, match=r"2 values of 'ori' have fewer groups of trials than the 3 splits.*"
                                             r"2: 1, 3: 2"):
            plan = plan_splits(rec, small_config(split_by="trials", split_stratify_by="ori", split_seed=seed))
        got = {s: sorted(ori[plan.trial_index[s]].tolist()) for s in SPLITS}
        assert got["train"].count(2) == 1 and got["train"].count(3) == 1 and got["validation"].count(3) == 1, got
        assert 2 not in got["test"] and 3 not in got["test"]
        assert sum(len(v) for v in got.values()) == len(trials)  # every trial in one split
        for v in (0, 1):  # strata of 3 or more: in every split, in the fractions, as before
            assert [got[s].count(v) for s in SPLITS] == [6, 2, 1]  # 6.3, 1.35, 1.35 rounded to 9
    with warnings.catch_warnings():  # no warning when every value has a trial for each split
        warnings.simplefilter("error")
        plan_splits(rec, small_config(split_by="trials", split_stratify_by="ori", split_fractions=[1.0, 0.0, 0.0]))



def test_the_stratum_warning_names_the_splits_in_the_order_its_trials_go():
    """With a test fraction larger than validation's, a 2-trial stratum goes to train and test; the
    warning said 'train first, then validation, then test' whatever the fractions."""
    rng = np.random.default_rng(0)
    starts = np.arange(22) * 1.0
    trials = np.stack([starts, starts + 0.8], 1)
    ori = np.array([0] * 20 + [1, 1])
    t = np.sort(rng.uniform(0, 22, 2000))
    rec = SpikeRecording(spike_times=t, unit_ids=rng.integers(0, 3, t.size), unit_names=list("abc"),
                         time_domain=(0.0, 22.0), trials=trials, trial_info={"ori": ori})
    with pytest.warns(UserWarning, match=r"their trials go to train first, then test, then validation$"):
        plan = plan_splits(rec, small_config(split_by="trials", split_stratify_by="ori",
                                             split_fractions=[0.7, 0.1, 0.2]))
    got = {s: ori[plan.trial_index[s]].tolist().count(1) for s in SPLITS}
    assert got == {"train": 1, "validation": 0, "test": 1}

def test_a_trial_across_a_gap_of_the_time_support_goes_to_no_split():
    """A trial spanning a gap of the support gave training windows of unrecorded time (4-6 s), read
    as silence, which the processor refuses; it is now left out of the splits, with a warning."""
    rng = np.random.default_rng(0)
    sup = np.array([[0.0, 4.0], [6.0, 12.0]])
    t = np.sort(np.concatenate([rng.uniform(0, 4, 400), rng.uniform(6, 12, 600)]))
    trials = np.array([[0.5, 1.5], [2.0, 3.0], [3.5, 6.5], [7.0, 8.0], [9.0, 10.0]])  # trial 2 spans the gap
    rec = SpikeRecording(spike_times=t, unit_ids=rng.integers(0, 3, t.size), unit_names=list("abc"),
                         time_domain=(0.0, 12.0), time_support=sup, trials=trials)
    cfg = small_config(current_window=0.5, past_window=0.5, dt_resolution=0.01)
    tok = NeuroformerTokenizer.from_config(cfg)
    tok.add_units(rec)
    with pytest.warns(UserWarning, match=r"1 of 5 trials do not lie inside one interval .* trial 2, 3.5-6.5 s"):
        dd, plan = build_window_datasets(rec, tok, cfg)
    assert sorted(np.concatenate([plan.trial_index[s] for s in SPLITS]).tolist()) == [0, 1, 3, 4]
    starts = np.concatenate([np.asarray(dd[s]["window_start"]) for s in SPLITS])
    assert starts.size == 8 and hf_neuroformer.windows.windows_outside_support(sup, starts, 0.5).size == 0

def test_trials_chained_by_overlap_say_how_to_split_by_time(a2929):
    """Trials padded around their events (each [onset - 1, onset + 3) s, onsets 2.5 s apart) chain into
    one overlapping span; split_by 'auto' took them as trials and refused with no way out named."""
    rec = a2929
    onsets = 602.0 + 2.5 * np.arange(30)
    rec = SpikeRecording(spike_times=rec.spike_times, unit_ids=rec.unit_ids, unit_names=rec.unit_names,
                         time_domain=rec.time_domain, trials=np.stack([onsets - 1.0, onsets + 3.0], 1))
    with pytest.raises(ValueError, match=r"got 1 from 30 trials \(trials that overlap .*: 601-677.5 s \(30 trials\)\); "
                                         r"set split_by: time in the --config YAML"):
        plan_splits(rec, small_config())
    assert plan_splits(rec, small_config(split_by="time")).mode == "time"  # the way out it names works


def test_stratifying_by_a_column_with_nan_labels_is_refused_not_dropped(shared_data):
    """Zheng et al. 2022: ``stimCategory`` is set for the 90 encoding clips only (NaN for the 360
    recognition / time-discrimination trials). Stratifying the whole session by it used to put
    just the 90 labelled trials in any split and drop the rest without a word."""
    rec = hf_neuroformer.io.load_recording(shared_data("zheng2022_human_mtl/sub-4_ses-4_ecephys+image.nwb"))
    labels = np.asarray(rec.trial_info["stimCategory"], dtype=float)
    n_nan = int(np.isnan(labels).sum())
    assert 0 < n_nan < len(labels)
    cfg = small_config(current_window=0.1, past_window=0.3, split_by="trials", split_stratify_by="stimCategory")
    with pytest.raises(ValueError, match=rf"split_stratify_by: .*'stimCategory' is NaN for {n_nan} of {len(labels)} trials"):
        plan_splits(rec, cfg)
    # the encoding epoch holds exactly the labelled trials: every one of them lands in a split
    enc = hf_neuroformer.io.load_recording(shared_data("zheng2022_human_mtl/sub-4_ses-4_ecephys+image.nwb"),
                                           epoch="encoding_table")
    plan = plan_splits(enc, cfg)
    assigned = np.sort(np.concatenate([plan.trial_index[s] for s in SPLITS]))
    assert np.array_equal(assigned, np.arange(len(enc.trials)))
    # the same gaps in an object column (a table built with pandas: None, or NaN among text) failed inside
    # np.unique ("'<' not supported between ... 'NoneType'") or with an IndexError, naming no column
    # and pandas' NA (the gaps of a "string" or nullable column) failed with "boolean value of NA is ambiguous"
    import pandas as pd

    for gap in (None, np.nan, pd.NA):
        col = np.array([gap if np.isnan(v) else ("hard", "soft", "none")[int(v)] for v in labels], dtype=object)
        rec.trial_info["stim_named"] = col
        cfg = small_config(current_window=0.1, past_window=0.3, split_by="trials", split_stratify_by="stim_named")
        with pytest.raises(ValueError, match=rf"split_stratify_by: .*'stim_named' is None or NaN for {n_nan} of "
                                             rf"{len(labels)} trials"):
            plan_splits(rec, cfg)


def test_trial_tails_that_no_window_covers_are_counted(shared_data):
    """Steinmetz trials last ~1.01 s; 0.3 s windows tile 0.9 s of each and the rest was never
    tokenized, trained on or scored, without a count (12 % of the test spikes)."""
    from hf_neuroformer.windows import spikes_outside_windows

    rec = hf_neuroformer.io.load_recording(shared_data("steinmetz2019_spcount/NS_sp_count.mat"))
    cfg = small_config(current_window=0.3, past_window=0.3, split_by="trials")
    plan = plan_splits(rec, cfg)
    starts = {s: window_starts_for_split(plan, s, cfg, stride=cfg.current_window)[0] for s in SPLITS}
    out = spikes_outside_windows(rec, plan, cfg, starts)
    for s in SPLITS:  # by hand: each trial's tail after its last whole window
        tails, secs = 0, 0.0
        for a, b in rec.trials[plan.trial_index[s]]:
            end = a + np.floor((b - a) / cfg.current_window + 1e-9) * cfg.current_window
            tails += int(np.sum((rec.spike_times >= end - 1e-9) & (rec.spike_times < b)))
            secs += b - end
        assert out[s]["n_spikes_outside_windows"] == tails, s
        assert out[s]["seconds_outside_windows"] == pytest.approx(secs, abs=1e-6), s
        assert 0.05 < tails / out[s]["n_spikes"] < 0.2  # ~12 % with these trial lengths


def test_spikes_outside_windows_uses_the_tokenizers_window_edges():
    """A spike exactly at the end of a split's last window lies in no window (the tokenizer's
    windows are [start, end) with both edges on the 1 ns grid), but spikes_outside_windows compared
    with the unrounded start + window and counted it as covered: 50 of the 51 train spikes outside
    the windows here. Checked against the tokenizer's own edges, spike by spike."""
    from hf_neuroformer.io.arrays import from_arrays
    from hf_neuroformer.windows import spikes_outside_windows

    t = np.round(np.arange(1, 3000) * 0.01, 9)  # a spike on every 10 ms: on many window edges
    rec = from_arrays(t, np.arange(len(t)) % 3, time_domain=(0.0, 30.0))
    cfg = small_config(current_window=0.07, past_window=0.21, split_block_length=3.7)
    with pytest.warns(UserWarning, match="split fractions"):
        plan = plan_splits(rec, cfg)
    starts = {s: window_starts_for_split(plan, s, cfg, stride=cfg.current_window)[0] for s in SPLITS}
    out = spikes_outside_windows(rec, plan, cfg, starts)
    tok = tokenizer_for(rec, cfg)
    spike_tokens = tok.unit_token_ids(rec)[rec.unit_ids]
    for s in SPLITS:
        inside = np.zeros(len(t), bool)
        for a, b in plan.segments[s]:
            inside |= (t >= a) & (t < b)
        n_in_windows = sum(tok.encode_window(t, spike_tokens, w0)["n_spikes"] for w0 in starts[s])
        assert out[s]["n_spikes_outside_windows"] == inside.sum() - n_in_windows, s


def test_the_last_window_of_a_segment_survives_day_scale_times():
    """Break test: a day into a recording (86400 s) with a 1-ms stride, the count of windows in a
    segment came from n_full_bins(b - first - reach, stride), whose 1e-9-stride tolerance (1e-12 s)
    is below the float64 step of such times (1.5e-11 s): the last window of most segments was lost
    and its spikes counted in spikes_outside_windows. Counts recomputed in integer nanoseconds."""
    from hf_neuroformer.io.arrays import from_arrays
    from hf_neuroformer.windows import spikes_outside_windows

    cfg = small_config(current_window=0.05, past_window=0.1, window_stride=0.001)
    a_ns = 86400_000_000_000 + np.arange(50) * 2_013_000_000  # disjoint segments 1.0-1.006 s long, on the 1 ns grid
    seg = np.stack([a_ns, a_ns + 1_000_000_000 + np.arange(50) % 7 * 1_000_000], 1).astype(np.float64) / 1e9
    plan = SplitPlan(mode="time", segments={"train": seg, "validation": np.zeros((0, 2)), "test": np.zeros((0, 2))},
                     trial_index={})
    starts, _ = window_starts_for_split(plan, "train", cfg)
    want = [(round(b * 1e9) - round(a * 1e9) - 150_000_000) // 1_000_000 + 1 for a, b in seg]
    got = np.bincount(np.searchsorted(seg[:, 0], starts, side="right") - 1, minlength=len(seg))
    assert got.tolist() == want
    # a spike 0.5 ms before each segment's end lies in its last window; the ones in the first past window do not
    t = np.sort(np.r_[seg[:, 1] - 0.0005, seg[:, 0] + 0.05])
    rec = from_arrays(t, np.zeros(len(t), dtype=np.int64), time_domain=(seg[0, 0], seg[-1, 1]))
    out = spikes_outside_windows(rec, plan, cfg, {"train": starts})["train"]
    assert (out["n_spikes"], out["n_spikes_outside_windows"]) == (2 * len(seg), len(seg))


def test_no_window_fits_is_one_short_line(shared_data):
    """Windows longer than every trial: the error named all 140 segments on one ~5 KB line."""
    rec = hf_neuroformer.io.read_allen_gratings(shared_data("allen_vcn_gratings"))
    cfg = small_config(current_window=0.15, past_window=0.1, split_by="trials")
    with pytest.raises(ValueError, match=r"no window fits in its \d+ segments \(longest 0\.\d+ s; a window needs 0\.15 s\)") as e:
        build_window_datasets(rec, tokenizer_for(rec, cfg), cfg)
    assert len(str(e.value)) < 200


def test_split_warning_says_when_blocks_were_cut_finer_than_asked():
    """A recording shorter than one block per split is cut into equal blocks, one per split; the
    warning said the asked block length was 'evened out' to tile it (35 s 'evened out' into 10-s
    blocks read as a bug)."""
    rec = hf_neuroformer.default_recording().restrict(0.0, 30.0)
    cfg = NeuroformerConfig(current_window=0.1, past_window=0.2, split_block_length=35.0)
    with pytest.warns(UserWarning, match=r"only 3 blocks \(the shortest 10\.00 s: the 30\.00 s of the recording hold "
                                         r"fewer 35-s blocks than the 3 splits, so it was cut into 3 equal blocks\)"):
        plan = plan_splits(rec, cfg)
    assert all(len(plan.segments[s]) == 1 for s in ("train", "validation", "test"))
    cfg = NeuroformerConfig(current_window=0.1, past_window=0.2, split_block_length=7.0)
    with pytest.warns(UserWarning, match=r"only 4 blocks \(the shortest 7\.50 s: 7 s evened out to tile the 30\.00 s") as w:
        plan_splits(rec, cfg)
    # it said 'use shorter blocks' but not where they are set: it names the YAML key, --config and its commands
    msg = str(w[0].message)
    assert "use shorter blocks for finer splits: `split_block_length: <seconds>` in the YAML file given to --config " \
           "(neuroformer train, prepare, inspect or ablate)" in msg, msg


def test_blocks_cut_finer_stay_inside_a_support_with_a_hole(a2929):
    """Two 10-s stretches of A2929, 50 s apart, are shorter than one 30-s block per split: the
    finer cut spanned the hole (0-70 s in three 23-s blocks), so a whole split lay in it and got
    windows with no recorded time and no spike. Each interval is cut instead."""
    t0 = a2929.support[0, 0]
    sup = np.array([[t0, t0 + 10.0], [t0 + 60.0, t0 + 70.0]])
    keep = np.zeros(a2929.n_spikes, bool)
    for a, b in sup:
        keep |= (a2929.spike_times >= a) & (a2929.spike_times < b)
    rec = SpikeRecording(spike_times=a2929.spike_times[keep], unit_ids=a2929.unit_ids[keep],
                         unit_names=list(a2929.unit_names), time_domain=(sup[0, 0], sup[-1, 1]), time_support=sup)
    cfg = NeuroformerConfig(current_window=0.1, past_window=0.2)
    with pytest.warns(UserWarning, match=r"only 4 blocks \(the shortest 5\.00 s: the 20\.00 s of the recording hold "
                                         r"fewer 30-s blocks than the 3 splits, so its 2 intervals were cut into 4 blocks\)"):
        plan = plan_splits(rec, cfg)
    for s in SPLITS:
        seg = plan.segments[s]
        assert len(seg), s
        inside = [(a >= sup[:, 0] - 1e-9) & (b <= sup[:, 1] + 1e-9) for a, b in seg]
        assert all(x.any() for x in inside), (s, seg)
        n = sum(int(np.sum((rec.spike_times >= a) & (rec.spike_times < b))) for a, b in seg)
        assert n > 100, (s, n)


def test_one_binning_rule_puts_a_time_on_an_edge_in_the_bin_it_starts():
    # every binning site of the package goes through hf_neuroformer.binning; naive floor((t - a) / w)
    # puts about a third of the edges k * 0.1 one bin back ((0.3 - 0.0) / 0.1 = 2.999...)
    from hf_neuroformer.binning import bin_index, n_bins_covering, n_full_bins

    k = np.arange(200)
    naive = np.floor((0.0 + k * 0.1) / 0.1).astype(np.int64)
    assert (naive != k).sum() > 0  # the float trap is real on this grid
    assert bin_index(0.0 + k * 0.1, 0.1).tolist() == k.tolist()
    assert bin_index(np.nextafter(0.3, 0.0) - 1e-9, 0.1) == 2  # just before an edge stays before it
    assert bin_index(np.array([[0.05, 0.15]]), 0.1).tolist() == [[0, 1]]
    assert bin_index(-0.05, 0.1) == -1  # not clipped: callers decide what lies outside
    assert (n_full_bins(0.3, 0.1), n_full_bins(0.35, 0.1), n_full_bins(0.0, 0.1)) == (3, 3, 0)
    assert (n_bins_covering(0.3, 0.1), n_bins_covering(0.35, 0.1), n_bins_covering(0.0, 0.1)) == (3, 4, 0)


def test_full_bins_of_a_span_between_day_scale_times_are_all_counted():
    """Break test: n_full_bins(b - a, 1 ms) of a segment a day into a recording lost its last bin for
    about 4 in 10 segments (b - a off by a float64 step of 86400 s, 1.5e-11 s, over the 1e-9-bin
    tolerance), in SpikeRecording.binned_counts, the fidelity metrics and connectivity; the count now
    takes bin_index's 0.5 ns edge tolerance. Expected counts in integer milliseconds."""
    from hf_neuroformer.binning import n_full_bins

    rng = np.random.default_rng(0)
    a_ms, k = rng.integers(0, 10**6, 300), rng.integers(1, 2000, 300)
    a, b = np.round(86400 + a_ms * 1e-3, 9), np.round(86400 + (a_ms + k) * 1e-3, 9)
    assert [n_full_bins(y - x, 0.001) for x, y in zip(a, b)] == k.tolist()
    assert (n_full_bins(0.3, 0.1), n_full_bins(0.3 - 0.4e-9, 0.1), n_full_bins(0.3 - 0.8e-9, 0.1)) == (3, 3, 2)
    rec = SpikeRecording(spike_times=np.array([a[0], b[0] - 0.0005]), unit_ids=np.zeros(2, dtype=np.int64),
                         unit_names=["u"], time_domain=(a[0], b[0]))
    counts = rec.binned_counts(0.001)
    assert counts.shape == (k[0], 1) and counts.sum() == 2  # (n_bins, n_units): the spike in the last bin too


def test_window_starts_for_an_unknown_split_names_the_splits(sim):
    # a user asking for "val" (the field's usual short name) got a bare KeyError: 'val'
    cfg = small_config()
    plan = plan_splits(sim, cfg)
    with pytest.raises(KeyError, match=r"split: expected one of \['test', 'train', 'validation'\], got 'val'"):
        window_starts_for_split(plan, "val", cfg)
    starts, clips = window_starts_for_split(plan, "validation", cfg)
    assert starts.dtype == np.float64 and starts.shape == clips.shape and len(starts) > 0


def test_keeps_training_mode_restores_after_generators_and_by_name():
    """keeps_training_mode gave the mode back when the call returned: a generator function's model
    was left in eval mode once iterated, a returned generator's batches ran in training mode
    (dropout on), and ``f(x, model=m)`` restored nothing (it read the first argument)."""
    import torch

    from hf_neuroformer.windows import keeps_training_mode

    model = hf_neuroformer.NeuroformerForPreTraining(hf_neuroformer.NeuroformerConfig(
        current_window=0.05, past_window=0.1, dt_resolution=0.005, hidden_size=16, num_attention_heads=2,
        num_hidden_layers=1, intermediate_size=32, vocab_size=8))

    @keeps_training_mode
    @torch.no_grad()
    def gen(model, n):
        model.eval()
        for _ in range(n):
            yield model.training

    @keeps_training_mode
    def returns_gen(model, n):
        model.eval()
        return (model.training for _ in range(n))

    @keeps_training_mode
    def second(x, model=None):
        model.eval()
        return model.training

    for fn in (gen, returns_gen):
        model.train()
        assert list(fn(model, 2)) == [False, False] and model.training, fn.__name__
        model.train()
        it = fn(model=model, n=3)
        assert next(it) is False
        it.close()
        assert model.training, fn.__name__
    model.train()
    assert second(1, model=model) is False and model.training
    model.train()
    assert second(1, model) is False and model.training
    model.eval()
    assert list(gen(model, 1)) == [False] and not model.training


def test_a_recording_too_short_to_split_is_told_the_length_it_needs():
    """The refusal of a recording too short for one block per split gave its length but not the
    length needed; it now names it (3 splits x (window with its past + split gap)), and a recording
    just longer than that splits."""
    import re

    cfg = NeuroformerConfig(split_by="time")
    need = 3 * (cfg.current_window + cfg.past_window + cfg.split_gap)

    def rec(duration):
        return SpikeRecording(np.array([duration / 2]), np.array([0]), time_domain=(0.0, duration))

    with pytest.raises(ValueError, match=r"one recorded interval needs more than ([\d.]+) s") as err:
        plan_splits(rec(need - 0.01), cfg)
    assert float(re.search(r"needs more than ([\d.]+) s", str(err.value))[1]) == pytest.approx(need, abs=1e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "only 3 blocks"
        plan = plan_splits(rec(need + 0.01), cfg)
    assert all(len(plan.segments[s]) == 1 for s in ("train", "validation", "test"))


def test_windows_too_long_for_the_recording_name_the_window_setting_not_the_block_length(a2929):
    """A past window longer than the recording (or one too long for a window with its past plus the
    split gap per split) was refused as 'split_block_length: blocks of 30 s are too short ...', a
    setting no value of which could help; the message now names past_window (current_window when
    the window alone is longer, split_gap when a gap set above the past window is what does not fit).
    Blocks too short for a recording that is long enough still name split_block_length."""
    (lo, hi), = a2929.support  # the wake epoch: one stretch of recorded time
    length = hi - lo
    cases = [  # (settings, the field the message opens with)
        (dict(past_window=length + 10), "past_window"),
        (dict(current_window=length + 10, past_window=0.0), "current_window"),
        (dict(past_window=length / 3), "past_window"),  # a window fits, three splits with their gaps do not
        (dict(current_window=length / 2, past_window=0.0), "current_window"),
        (dict(past_window=1.0, split_gap=length / 2), "split_gap"),
        (dict(past_window=5.0, split_block_length=6.0), "split_block_length"),  # longer blocks would do
    ]
    for kw, field in cases:
        with pytest.raises(ValueError, match="too short") as err:
            plan_splits(a2929, NeuroformerConfig(split_by="time", **kw))
        assert str(err.value).startswith(f"{field}: "), (kw, str(err.value))
    # a past window that leaves room for three windows with their past plus the split gap splits (in 3 blocks)
    cfg = NeuroformerConfig(split_by="time", past_window=length / 7, split_block_length=length)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "only 3 blocks"
        assert all(len(plan_splits(a2929, cfg).segments[s]) == 1 for s in SPLITS)


def test_a_plan_whose_splits_overlap_is_refused_not_windowed_into_two_splits(a2929, tmp_path):
    """build_window_datasets / prepare_windows took a caller's plan as it was: with its train and
    test segments overlapping, 47 windows of A2929 were in both splits (trained on and scored).
    Such a plan is now refused, naming the two segments; segments that touch are apart."""
    from hf_neuroformer.windows import prepare_windows

    rec = a2929.restrict(700.0, 760.0)
    cfg = small_config()
    tok = tokenizer_for(rec, cfg)
    empty = np.zeros(0, dtype=np.int64)

    def plan(train, validation, test):
        return SplitPlan("time", {"train": np.array([train]), "validation": np.array([validation]),
                                  "test": np.array([test])}, {s: empty for s in SPLITS})

    overlapping = plan([700.0, 740.0], [745.0, 750.0], [735.0, 760.0])
    train, _ = window_starts_for_split(overlapping, "train", cfg)
    test, _ = window_starts_for_split(overlapping, "test", cfg)
    assert np.intersect1d(np.round(train, 6), np.round(test, 6)).size  # the premise: shared windows
    match = r"^plan: the train segment \[700, 740\) s overlaps the test segment \[735, 760\) s"
    with pytest.raises(ValueError, match=match):
        build_window_datasets(rec, tok, cfg, overlapping)
    with pytest.raises(ValueError, match=match):
        prepare_windows(rec, tmp_path / "prep", cfg, tok, overlapping, progress=False)
    assert not (tmp_path / "prep").exists()
    touching = plan([700.0, 740.0], [740.0, 750.0], [750.0, 760.0])
    data, _ = build_window_datasets(rec, tok, cfg, touching)
    starts = [set(np.round(data[s]["window_start"], 6)) for s in SPLITS]
    assert all(starts) and not (starts[0] & starts[1] or starts[0] & starts[2] or starts[1] & starts[2])


def test_a_plan_whose_splits_are_closer_than_split_gap_is_used_and_warned_about(a2929, tmp_path):
    """A caller's time plan whose test segment starts split_gap / 2 after the train segment ends (split_gap: the
    past window) was used without a word. It is still used: each window's past lies in its own segment,
    so no test window reads a training spike; but the splits' data abut (activity outlasting the boundary is
    in both), so build_window_datasets and prepare_windows now warn, naming the two segments, the gap found
    and split_gap. A plan with split_gap between its splits says nothing; a trial plan is not checked."""
    from hf_neuroformer.windows import prepare_windows

    rec = a2929.restrict(700.0, 760.0)
    cfg = small_config()
    tok = tokenizer_for(rec, cfg)
    empty = np.zeros(0, dtype=np.int64)

    def plan(train, validation, test, mode="time"):
        return SplitPlan(mode, {"train": np.array([train]), "validation": np.array([validation]),
                                "test": np.array([test])}, {s: empty for s in SPLITS})

    gap = cfg.split_gap / 2
    close = plan([700.0, 740.0], [750.0 + gap, 760.0], [740.0 + gap, 750.0])
    match = (rf"^plan: the train segment \[700, 740\) s and the test segment \[{740.0 + gap:g}, 750\) s are {gap:g} s "
             rf"apart, less than split_gap \({cfg.split_gap:g} s\) that plan_splits leaves between splits \(2 of the "
             r"boundaries between splits are closer than it\); no window reads the other split's spikes")
    with pytest.warns(UserWarning, match=match) as caught:
        data, _ = build_window_datasets(rec, tok, cfg, close)
    # at the caller's line, not inside windows.py (both functions plan through one private helper)
    assert [w.filename for w in caught if "split_gap" in str(w.message)] == [__file__]
    # used as given: the first test window's past starts at its segment's start, after the training data
    first_test = min(data["test"]["window_start"])
    assert first_test - cfg.past_window >= 740.0 + gap - 1e-9
    with pytest.warns(UserWarning, match=match) as caught:
        prepare_windows(rec, tmp_path / "prep", cfg, tok, close, progress=False)
    assert [w.filename for w in caught if "split_gap" in str(w.message)] == [__file__]
    apart = plan([700.0, 740.0], [750.0 + cfg.split_gap, 760.0], [740.0 + cfg.split_gap, 750.0])
    trials = plan([700.0, 740.0], [750.0, 760.0], [740.0, 750.0], mode="trials")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for ok in (apart, trials):
            build_window_datasets(rec, tok, cfg, ok)


def test_a_plan_of_another_recording_is_refused_where_its_windows_have_no_recorded_time(tmp_path):
    """build_window_datasets / prepare_windows with a plan of a 60-s recording, given a 30-s cut of
    it, tokenized half the windows (192 of 388 train windows) past the recording's end as silence."""
    from hf_neuroformer.windows import prepare_windows

    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 60, 3000))
    rec = SpikeRecording(spike_times=t, unit_ids=rng.integers(0, 3, t.size), unit_names=list("abc"),
                         time_domain=(0.0, 60.0))
    cfg = small_config(current_window=0.1, past_window=0.2, dt_resolution=0.01, split_block_length=5.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = plan_splits(rec, cfg)
    tok = NeuroformerTokenizer.from_config(cfg)
    tok.add_units(rec)
    dd, _ = build_window_datasets(rec, tok, cfg, plan)  # its own recording: every window
    assert len(dd["train"]) == len(window_starts_for_split(plan, "train", cfg)[0])
    cut = rec.restrict(0.0, 30.0)
    n_out = int(np.sum(window_starts_for_split(plan, "train", cfg)[0] + 0.1 > 30.0 + 1e-9))
    with pytest.raises(ValueError, match=rf"plan: {n_out} of the {len(dd['train'])} train windows of this split plan "
                                         r"lie outside the recorded time .*0 to 30 s.*plan_splits\(recording, config\)"):
        build_window_datasets(cut, tok, cfg, plan)
    with pytest.raises(ValueError, match="lie outside the recorded time"):
        prepare_windows(cut, tmp_path / "prepared", cfg, tok, plan, progress=False)
    assert not (tmp_path / "prepared").exists()


def test_column_values_follows_the_datasets_row_order_and_dtype():
    """column_values reads a column through Arrow in one piece; a dataset after select / shuffle
    keeps its rows in an indices mapping that the underlying table (dataset.data) ignores, and
    the values must come in the dataset's own order, as dataset[name] gives them."""
    import datasets

    from hf_neuroformer.windows import column_values

    ds = datasets.Dataset.from_dict({"window_start": np.arange(10) * 0.05, "n_spikes": np.arange(10) * 3,
                                     "input_ids": [[1, 2, 3]] * 10})
    view = ds.select([7, 2, 5, 9]).shuffle(seed=1)
    got = column_values(view, "window_start")
    assert got.dtype == np.float64 and np.array_equal(got, np.asarray(view["window_start"]))
    assert not np.array_equal(got, ds.data.column("window_start").to_numpy()[:4])
    counts = column_values(view, "n_spikes", np.int64)
    assert counts.dtype == np.int64 and counts.tolist() == [3 * int(round(s / 0.05)) for s in got]
    empty = column_values(ds.select([]), "window_start")
    assert empty.shape == (0,) and empty.dtype == np.float64
    assert view.format["type"] is None  # the caller's dataset keeps its format


def test_bins_covering_a_span_between_day_scale_times_are_not_one_too_many():
    """Break test: n_bins_covering(b - a, 1 ms) of a span of exactly k ms a day into a recording gave
    k + 1 for about 4 in 10 spans (b - a off by a float64 step of 86400 s over its 1e-9-bin
    tolerance); it now takes n_full_bins' edge tolerance, so both agree on a whole span and a partial
    last bin is counted by both rules or by neither. Expected counts in integer milliseconds."""
    from hf_neuroformer.binning import n_bins_covering, n_full_bins

    rng = np.random.default_rng(1)
    a_ms, k = rng.integers(0, 10**6, 300), rng.integers(1, 2000, 300)
    a, b = np.round(86400 + a_ms * 1e-3, 9), np.round(86400 + (a_ms + k) * 1e-3, 9)
    assert [n_bins_covering(y - x, 0.001) for x, y in zip(a, b)] == k.tolist()
    assert n_bins_covering(round(86400 + 0.842, 9) - 86400.0, 0.001) == 842  # 843 before
    for span in (0.3 + 0.4e-9, 0.3 + 0.8e-9, 0.35, 0.3, 0.25):  # a partial bin: covering = full + 1, else equal
        partial = n_full_bins(span, 0.1) < n_bins_covering(span, 0.1)
        assert n_bins_covering(span, 0.1) == n_full_bins(span, 0.1) + partial, span
    assert (n_bins_covering(0.3 + 0.4e-9, 0.1), n_bins_covering(0.3 + 0.8e-9, 0.1)) == (3, 4)


def test_time_split_of_trials_laid_by_a_reader_takes_a_window_that_fits_exactly(shared_data):
    """Break test: the Allen reader's time support is its 200 trials of 0.1 s, 0.1 s apart; a
    time split with a 0.05-s window and a 0.05-s past (one window per trial) dropped 63 trials as
    'shorter than a window with its past' (their stop minus start is 0.09999999999999 s by float64
    rounding) and refused the rest ('blocks of 0.100 s are too short for the split gap plus one
    window with its past'). Binned trials 1.01 s long and 0.1 s apart, with split_gap 0.1 s, were
    chained into groups by the same rounding (132 of Steinmetz's 246 gaps read as below 0.1 s)."""
    from hf_neuroformer.windows import _counts_from_fractions

    rec = hf_neuroformer.io.read_allen_gratings(shared_data("allen_vcn_gratings"))
    cfg = NeuroformerConfig(current_window=0.05, past_window=0.05, dt_resolution=0.01, split_by="time",
                            split_gap=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no interval left out
        plan = plan_splits(rec, cfg)
    starts = np.concatenate([window_starts_for_split(plan, s, cfg)[0] for s in SPLITS])
    np.testing.assert_allclose(np.sort(starts), rec.trials[:, 0] + 0.05, atol=1e-9)  # one window per trial
    counts = np.random.default_rng(0).integers(0, 2, size=(20, 101, 2))
    binned = hf_neuroformer.io.from_binned_counts(counts, bin_size=0.01, trial_gap=0.1)
    cfg = NeuroformerConfig(current_window=0.05, past_window=0.1, dt_resolution=0.01, split_by="time",
                            split_gap=0.1, split_block_length=1.0)
    plan = plan_splits(binned, cfg)  # each trial a block of its own, at least split_gap from the next
    assert [len(plan.segments[s]) for s in SPLITS] == _counts_from_fractions(20, cfg.split_fractions)


def test_a_time_split_refused_for_trials_with_gaps_names_the_trial_split():
    """Break test: binned trials (1.01 s, 0.1 s of unrecorded time between them) split by time with
    the default 1.1-s window and past were refused with the advice for an epoch of ripples ('select
    an epoch that spans the intervals', which cannot add recorded time); the way out, a trial split,
    was not named. Nor where the gaps are shorter than split_gap."""
    counts = np.random.default_rng(0).integers(0, 2, size=(20, 101, 2))
    binned = hf_neuroformer.io.from_binned_counts(counts, bin_size=0.01, trial_gap=0.1)
    hint = r"; or split by trials \(split_by: trials; the recording has 20 trials, each window then lies inside one\)$"
    with pytest.raises(ValueError, match=r"^recording: its time support is 20 intervals .* none holds a window with "
                                         r"its past \(1.1 s\).*" + hint):
        plan_splits(binned, NeuroformerConfig(split_by="time"))
    # split_gap 0.9 s: no 1.01-s trial holds the gap with a window with its past (0.15 s) on either side
    with pytest.raises(ValueError, match=r"^split_gap: the 20 intervals of the time support lie closer .*too few of "
                                         r"them hold a boundary between splits .*1.2 s.*smaller split_gap.*" + hint):
        plan_splits(binned, NeuroformerConfig(current_window=0.05, past_window=0.1, split_gap=0.9, split_by="time"))


def test_a_time_split_of_a_recording_with_brief_dropouts_cuts_inside_its_intervals():
    """Break test: 60 s recorded in 10-s intervals with 50-ms dropouts between them (shorter than the
    1-s split gap, which a boundary between splits may not lie in) were refused ('form only 1 group ...;
    use a smaller split_gap (at least past_window, 1.0 s)', with split_gap already past_window). The
    boundaries now lie inside intervals: every window with its past stays inside one interval and its
    own split's segments, and the splits lie split_gap apart."""
    sup = np.array([[10.0 * i + (0.05 if i else 0.0), 10.0 * (i + 1)] for i in range(6)])
    t = np.concatenate([np.linspace(a + 0.01, b - 0.01, 50) for a, b in sup])
    rec = SpikeRecording(t, np.arange(len(t)) % 3, time_domain=(0, 60), time_support=sup)
    cfg = NeuroformerConfig(split_block_length=10.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fewer than 10 blocks: fractions approximate
        plan = plan_splits(rec, cfg)
    owners = []
    for s in SPLITS:
        starts, _ = window_starts_for_split(plan, s, cfg)
        assert len(starts) > 0, s
        lo, hi = starts - cfg.past_window, starts + cfg.current_window
        assert all(np.any((sup[:, 0] <= a + 1e-9) & (b <= sup[:, 1] + 1e-9)) for a, b in zip(lo, hi)), s
        seg = plan.segments[s]
        assert all(np.any((seg[:, 0] <= a + 1e-9) & (b <= seg[:, 1] + 1e-9)) for a, b in zip(lo, hi)), s
        owners.extend((a, b, s) for a, b in seg)
    owners.sort()
    for (_, b0, s0), (a1, _, s1) in zip(owners[:-1], owners[1:]):
        assert s0 == s1 or a1 - b0 >= cfg.split_gap - 1e-9


def test_a_time_split_of_intervals_that_all_read_just_short_of_a_window_takes_each_window():
    """Break test: c7db1f0 gave an interval's length n_full_bins' 0.5-ns tolerance when leaving out
    the intervals too short for a window with its past, but not in the refusal before it ('none
    holds a window with its past'), which compared the longest interval exactly: a support of
    0.1-s intervals laid as start + 0.1 (each 0.09999999999999998 s long) was refused for a 0.05-s
    window with a 0.05-s past, though each holds that window, as the intervals that read 0.1 s do."""
    starts = [a for a in np.round(np.arange(1, 200) * 0.3, 9) if (a + 0.1) - a < 0.1][:12]
    sup = np.array([[a, a + 0.1] for a in starts])
    assert np.all(sup[:, 1] - sup[:, 0] < 0.1)
    spikes = np.sort(np.concatenate([np.linspace(a, b, 5, endpoint=False) for a, b in sup]))
    rec = SpikeRecording(spike_times=spikes, unit_ids=np.arange(len(spikes)) % 2, time_domain=(sup[0, 0], sup[-1, 1]),
                         time_support=sup)
    cfg = NeuroformerConfig(current_window=0.05, past_window=0.05, dt_resolution=0.01, split_by="time",
                            split_gap=0.05)
    plan = plan_splits(rec, cfg)
    got = np.sort(np.concatenate([window_starts_for_split(plan, s, cfg)[0] for s in SPLITS]))
    np.testing.assert_allclose(got, sup[:, 0] + 0.05, atol=1e-9)  # one window per interval


def overlapping_trials_plan():
    """``(recording, config, plan)``: six 1-s trials over 6 s, each split's two overlapping in time:
    train ``[0, 1)``, ``[0.5, 1.5)``; validation ``[2, 3)`` listed twice; test ``[4, 5)``,
    ``[4.5, 5.5)``; 0.1-s windows."""
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 6, 600))
    trials = np.array([[0, 1], [0.5, 1.5], [2, 3], [2, 3], [4, 5], [4.5, 5.5]], dtype=float)
    rec = SpikeRecording(spike_times=t, unit_ids=rng.integers(0, 4, t.size), unit_names=list("abcd"),
                         time_domain=(0.0, 6.0), trials=trials)
    cfg = small_config(split_by="trials")
    seg = {"train": trials[:2], "validation": trials[2:4], "test": trials[4:]}
    plan = SplitPlan(mode="trials", segments=seg, trial_index={"train": np.arange(2), "validation": np.arange(2, 4),
                                                                   "test": np.arange(4, 6)})
    return rec, cfg, plan


def test_overlapping_trials_are_scored_once_as_generation_keeps_them():
    """Validation and test windows of overlapping (or duplicate) trials were scored twice (20
    validation windows for 1 s of trial time), with no warning, while generation kept one window per
    stretch of time and warned; now both keep the earliest trial's windows and a warning names the
    trials and counts the windows left out. Training keeps each trial's own windows."""
    from hf_neuroformer.generation import generation_windows

    rec, cfg, plan = overlapping_trials_plan()
    tok = NeuroformerTokenizer.from_config(cfg)
    tok.add_units(rec)
    with pytest.warns(UserWarning) as caught:
        ds, _ = build_window_datasets(rec, tok, cfg, plan)
    msgs = [str(w.message) for w in caught]
    assert len(ds["train"]) == 20  # both overlapping training trials keep their windows
    assert len(ds["validation"]) == 10 and len(set(ds["validation"]["window_start"])) == 10
    assert any("split 'validation'" in m and "10 of its 20 windows" in m and "[2, 3) s listed twice" in m
               and "10 non-overlapping windows are scored" in m for m in msgs), msgs
    # test: [4, 5) kept whole, [4.5, 5.5)'s windows from 5.0 on (on its own grid) kept, 5 left out
    assert len(ds["test"]) == 15
    assert any("split 'test'" in m and "5 of its 20 windows" in m and "[4.5, 5.5) s with [4, 5) s" in m for m in msgs)
    with pytest.warns(UserWarning, match=r"split 'test': its trials overlap in time, so 5 of its 20 windows"):
        gen_starts, gen_clips = generation_windows(plan, "test", cfg)
    np.testing.assert_array_equal(np.sort(gen_starts), np.sort(ds["test"]["window_start"]))


def test_a_splits_file_without_mode_or_a_split_names_the_file_and_the_key(trial_rec, tmp_path):
    """A splits.json that is valid JSON but lacks 'mode' or a split failed with a bare KeyError
    ('error: mode' / 'error: test' from the commands); now a ValueError names the file, the key
    and what to do, and the file of a complete plan reads back as written."""
    import json

    plan = plan_splits(trial_rec, small_config(split_by="trials"))
    path = tmp_path / "my model" / "splits.json"
    path.parent.mkdir()
    path.write_text(json.dumps(plan.to_dict()))
    back = SplitPlan.read(path)
    assert back.mode == "trials" and np.array_equal(back.segments["test"], plan.segments["test"])
    no_mode = {k: v for k, v in plan.to_dict().items() if k != "mode"}
    path.write_text(json.dumps(no_mode))
    with pytest.raises(ValueError, match=r"my model/splits\.json'.*the key 'mode' is missing.*neuroformer train"):
        SplitPlan.read(path)
    no_test = plan.to_dict()
    del no_test["segments"]["test"]
    with pytest.raises(ValueError, match=r"'segments' has no 'test' split"):
        SplitPlan.from_dict(no_test)
    path.write_text("{")
    with pytest.raises(ValueError, match=r"splits\.json': not valid JSON"):
        SplitPlan.read(path)


def test_a_splits_file_with_a_malformed_segment_names_the_file_split_and_segment(sim, tmp_path):
    """A segment of three numbers failed with numpy's bare 'cannot reshape array of size 3 into
    shape (2)', and a segment stopping before it starts or with a NaN / infinite bound was read as
    it was; each now gives a ValueError naming the file, the split, the segment's index and value,
    and the expectation. The plan plan_splits made reads back as written."""
    import json

    plan = plan_splits(sim, small_config())
    path = tmp_path / "my run" / "splits.json"
    path.parent.mkdir()
    good = plan.to_dict()
    path.write_text(json.dumps(good))
    back = SplitPlan.read(path)
    for s in SPLITS:
        np.testing.assert_array_equal(back.segments[s], plan.segments[s])
    start, stop = good["segments"]["test"][0]
    cases = [
        ([start, stop, stop + 1.0], r"expected a \[start, stop\] pair of numbers"),
        ([stop, start], r"expected start <= stop"),
        ([float("nan"), stop], r"expected finite start and stop"),
        ([start, float("inf")], r"expected finite start and stop"),
        ([start, "1"], r"expected a \[start, stop\] pair of numbers"),
    ]
    for segment, expectation in cases:
        bad = json.loads(json.dumps(good))
        bad["segments"]["test"][0] = segment
        path.write_text(json.dumps(bad))  # json writes NaN / Infinity, as a hand-edited file may hold
        with pytest.raises(ValueError, match=r"my run/splits\.json': segments\['test'\]\[0\] is .*; "
                           + expectation + r".*neuroformer train") as err:
            SplitPlan.read(path)
        assert repr(segment) in str(err.value)
    not_a_list = json.loads(json.dumps(good))
    not_a_list["segments"]["validation"] = 5.0
    with pytest.raises(ValueError, match=r"segments\['validation'\] is 5\.0; expected a list of \[start, stop\]"):
        SplitPlan.from_dict(not_a_list)


def test_a_splits_file_with_a_malformed_trial_index_names_the_file_split_and_position(trial_rec, tmp_path):
    """trial_index went through np.asarray(v, dtype=np.int64), which read 1.5 as trial 1, "1" or
    true as trial 1 and -1 as it was, and a trial listed in two splits (trained on and scored) was
    kept; each now gives a ValueError naming the file, the split, the position and value, and the
    expectation. The plan plan_splits made reads back as written."""
    import json

    plan = plan_splits(trial_rec, small_config(current_window=0.1, past_window=0.3, split_by="trials"))
    path = tmp_path / "my run" / "splits.json"
    path.parent.mkdir()
    good = plan.to_dict()
    path.write_text(json.dumps(good))
    back = SplitPlan.read(path)
    for s in SPLITS:
        np.testing.assert_array_equal(back.trial_index[s], plan.trial_index[s])
        assert back.trial_index[s].dtype == np.int64
    first = good["trial_index"]["test"][0]
    for entry in [first + 0.5, float(first), str(first), True, -1, None]:
        bad = json.loads(json.dumps(good))
        bad["trial_index"]["test"][0] = entry
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=r"my run/splits\.json': trial_index\['test'\]\[0\] is .*; expected a "
                           r"trial index, an integer >= 0.*neuroformer train") as err:
            SplitPlan.read(path)
        assert f"[0] is {entry!r};" in str(err.value)
    twice = json.loads(json.dumps(good))
    twice["trial_index"]["test"].append(good["trial_index"]["train"][1])
    path.write_text(json.dumps(twice))
    with pytest.raises(ValueError, match=rf"splits\.json': trial {good['trial_index']['train'][1]} is in both the "
                       r"train and the test split of trial_index; expected each trial in at most one split"):
        SplitPlan.read(path)
    not_a_list = json.loads(json.dumps(good))
    not_a_list["trial_index"]["validation"] = 3
    with pytest.raises(ValueError, match=r"trial_index\['validation'\] is 3; expected a list of trial indices"):
        SplitPlan.from_dict(not_a_list)


def test_the_overlap_warning_of_prepare_windows_points_at_its_caller(tmp_path):
    """Under prepare_windows the warning for overlapping trials pointed into windows.py (the dict
    comprehension that built the splits' windows added a frame), under build_window_datasets at the
    caller; both now point at the caller."""
    from hf_neuroformer.windows import prepare_windows

    rec, cfg, plan = overlapping_trials_plan()
    tok = NeuroformerTokenizer.from_config(cfg)
    tok.add_units(rec)
    for name, call in (("build_window_datasets", lambda: build_window_datasets(rec, tok, cfg, plan)),
                       ("prepare_windows", lambda: prepare_windows(rec, tmp_path / "prep", cfg, tok, plan,
                                                                   progress=False))):
        with pytest.warns(UserWarning) as caught:
            call()
        files = {w.filename for w in caught if "overlap in time" in str(w.message)}
        assert files == {__file__}, (name, files)

def test_bits_per_spike_scores_the_windows_train_scores_where_trials_overlap():
    """split_bits_per_spike (neuroformer evaluate --model) scored every trial's windows: with a trial
    listed twice its validation split counted 20 windows where training's validation set (and
    generation) has 10, and with overlapping trials 20 test windows against 15, so its bits per spike
    were not on the windows of train's metrics. Now it tiles the split as they do (tiling_windows),
    and warns, pointing at its caller."""
    from hf_neuroformer.likelihood import split_bits_per_spike

    from tiny_configs import untrained_model

    rec, cfg, plan = overlapping_trials_plan()
    cfg.update(dict(hidden_size=16, num_attention_heads=2, num_hidden_layers=1, intermediate_size=32))
    tok, model = untrained_model(rec, cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds, _ = build_window_datasets(rec, tok, cfg, plan)
    for split, n in (("validation", 10), ("test", 15)):
        with pytest.warns(UserWarning, match=rf"split '{split}': its trials overlap in time") as caught:
            out = split_bits_per_spike(model, tok, rec, plan, split, fit_split="train")
        assert out["n_windows"] + out["n_windows_truncated"] == len(ds[split]) == n
        assert {w.filename for w in caught if "overlap in time" in str(w.message)} == {__file__}
    # the null's rates were fitted on every trial's fit_split windows (20 test windows, [4.5, 5) twice); now
    # on the 15 that tile it, with a warning worded for the fit
    from hf_neuroformer.metrics.bits_per_spike import homogeneous_poisson_log_likelihood, poisson_rates_from_windows

    with pytest.warns(UserWarning) as caught:
        out = split_bits_per_spike(model, tok, rec, plan, "validation", fit_split="test")
    assert any("split 'test'" in str(w.message) and "15 non-overlapping windows are used to fit the null's rates"
               in str(w.message) and w.filename == __file__ for w in caught), [str(w.message) for w in caught]
    rates = poisson_rates_from_windows(rec, np.asarray(ds["test"]["window_start"]), cfg.current_window)
    scored = np.asarray(ds["validation"]["window_start"])[np.asarray(ds["validation"]["n_truncated"]) == 0]
    assert len(scored) == out["n_windows"]
    null = homogeneous_poisson_log_likelihood(rec, scored, cfg.current_window, cfg.dt_resolution, rates)
    assert out["null_log_likelihood_nats"] == pytest.approx(float(null.sum()), rel=1e-9)

def test_decode_and_embed_take_one_window_per_stretch_of_overlapping_trials(tmp_path):
    """neuroformer decode --split and embed tiled the model's split with every trial's windows: with
    overlapping test trials they decoded / embedded 20 windows (a stretch twice) where finetune and
    train scored, and generation generates, 15. Now they take tiling_windows' windows and warn."""
    import json

    import pandas as pd

    from hf_neuroformer.cli import main
    from hf_neuroformer.finetuning import DecodingTarget, finetune
    from hf_neuroformer.io import write_nwb

    rec, cfg, plan = overlapping_trials_plan()
    rec = SpikeRecording(spike_times=rec.spike_times, unit_ids=rec.unit_ids, unit_names=rec.unit_names,
                         time_domain=rec.time_domain, trials=rec.trials, trial_info={"k": np.arange(6.0)})
    cfg.update(dict(hidden_size=16, num_attention_heads=2, num_hidden_layers=1, intermediate_size=32))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        finetune(None, rec, [DecodingTarget("trial:k", "regression")], config=cfg, plan=plan,
                 output_dir=tmp_path / "d", max_steps=1, eval_steps=1, batch_size=8, seed=0)
        tok = NeuroformerTokenizer.from_pretrained(tmp_path / "d")
        ds, _ = build_window_datasets(rec, tok, cfg, plan)
    write_nwb(rec, tmp_path / "r.nwb")
    common = ["--model", str(tmp_path / "d"), "--data", str(tmp_path / "r.nwb"), "--split", "test"]
    with pytest.warns(UserWarning, match="15 non-overlapping windows are decoded"):
        assert main(["decode", *common, "--output", str(tmp_path / "t.csv")]) == 0
    with pytest.warns(UserWarning, match="15 non-overlapping windows are embedded"):
        assert main(["embed", *common, "--color-by", "trial:k", "--output", str(tmp_path / "e.png")]) == 0
    expected = np.sort(ds["test"]["window_start"])
    assert len(expected) == 15
    np.testing.assert_allclose(np.sort(pd.read_csv(tmp_path / "t.csv")["window_start_s"]), expected, atol=1e-9)
    np.testing.assert_array_equal(np.sort(json.loads((tmp_path / "e.json").read_text())["window_start_s"]), expected)
    # without --split, decode tiled every trial of the recording: 60 rows for 6 s of trials, [2, 3) decoded twice;
    # now one window per stretch (the three splits' tilings, 40), warned of without naming a split
    with pytest.warns(UserWarning) as caught:
        assert main(["decode", *common[:4], "--output", str(tmp_path / "all.csv")]) == 0
    msgs = [str(w.message) for w in caught if "overlap in time" in str(w.message)]
    assert len(msgs) == 1 and msgs[0].startswith("the recording's trials overlap in time, so 20 of its 60 windows")
    assert "40 non-overlapping windows are decoded" in msgs[0] and "split" not in msgs[0], msgs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tiled = np.concatenate([tiling_windows(plan, s, cfg)[0] for s in ("train", "validation", "test")])
    np.testing.assert_allclose(np.sort(pd.read_csv(tmp_path / "all.csv")["window_start_s"]), np.sort(tiled), atol=1e-9)


def test_the_overlap_warning_of_inspection_points_at_its_caller():
    """split_window_counts and describe_recording (neuroformer inspect) gave the overlapping-trials
    warning pointing into inspection.py (split_window_counts' own line): it points at their caller."""
    from hf_neuroformer.inspection import describe_recording, split_window_counts

    rec, cfg, _ = overlapping_trials_plan()
    for name, call in (("split_window_counts", lambda: split_window_counts(rec, cfg)),
                       ("describe_recording", lambda: describe_recording(rec, cfg))):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        files = {w.filename for w in caught if "overlap in time" in str(w.message)}
        assert files == {__file__}, (name, files)


def test_collator_pads_lists_arrays_and_other_rows_alike():
    """The collator pads rows of Python lists (datasets' rows) and of 1-D integer arrays in one
    conversion a batch, other rows (tuples, float lists) one by one: the batch is the same."""
    ids, dts = [[1, 5, 3, 2], [1, 2], [], [1, 3, 4, 6, 7, 8]], [[0, 4, 7, 7], [0, 0], [], [0, 1, 1, 2, 3, 3]]
    pids, pdts = [[1, 4], [1], [1, 7, 7], []], [[0, 1], [0], [0, 2, 3], []]

    def rows(conv):
        return [{"input_ids": conv(a), "dt_ids": conv(b), "past_input_ids": conv(c), "past_dt_ids": conv(d)}
                for a, b, c, d in zip(ids, dts, pids, pdts)]

    collate = NeuroformerCollator()
    want = collate(rows(tuple))  # one row at a time
    assert want["input_ids"].tolist()[1] == [1, 2, 0, 0, 0, 0] and want["past_attention_mask"].tolist()[3] == [0] * 3
    for conv in (list, lambda x: np.asarray(x, dtype=np.int64), lambda x: np.asarray(x, dtype=np.int32),
                 lambda x: [float(v) for v in x]):
        got = collate(rows(conv))
        assert set(got) == set(want)
        for k, v in want.items():
            assert got[k].dtype == torch.int64 and got[k].tolist() == v.tolist(), k


@pytest.mark.parametrize("how", ["plan_splits", "build_window_datasets", "prepare_windows"])
def test_the_split_plans_warning_points_at_the_callers_line(sim, tmp_path, how):
    """plan_splits' warning of too few blocks, through each public function that plans the splits,
    names the line that called it (it named the line of windows.py that gave it)."""
    from hf_neuroformer.windows import prepare_windows

    cfg = small_config(split_block_length=10.0)  # a handful of blocks of the 60-s recording
    with pytest.warns(UserWarning, match=r"split_block_length: only \d+ blocks") as got:
        if how == "plan_splits":
            plan_splits(sim, cfg)
        elif how == "build_window_datasets":
            build_window_datasets(sim, tokenizer_for(sim, cfg), cfg)
        else:
            prepare_windows(sim, tmp_path / "prepared", cfg, progress=False)
    ours = [w for w in got if str(w.message).startswith("split_block_length:")]
    assert len(ours) == 1 and ours[0].filename == __file__, [(str(w.message)[:40], w.filename) for w in got]


def test_tokenize_windows_gives_what_encode_window_gives_window_by_window(shared_data):
    """tokenize_windows cuts, bins and sorts all windows at once (encode_window once per window
    spent ~100 µs a window in Python): on a real recording, each row is exactly encode_window's,
    with and without past clips (NaN: none; one after the window start), truncated current and
    past windows, empty windows and starts off the 1 ns grid; a NaN start is refused as
    encode_window refuses it."""
    from hf_neuroformer.io import load_recording
    from hf_neuroformer.windows import tokenize_windows

    with pytest.warns(UserWarning, match="with no spike time"):
        rec = load_recording(shared_data("nelpy_hippocampus/linear-track"))
    cfg = small_config(max_window_length=4, max_past_length=4)
    tok = tokenizer_for(rec, cfg)
    t = rec.spike_times
    rng = np.random.default_rng(0)
    starts = np.concatenate([
        t[rng.choice(len(t), 200, replace=False)],  # a spike on the start edge
        rng.uniform(t[0] - 1.0, t[-1] + 1.0, 200),
        # np.arange steps; empty windows before the first spike
        t[0] - 0.7 + np.arange(0, 0.5, 0.1),
        t[rng.choice(len(t), 100)] - 0.1,  # the end edge
    ])
    clips = np.where(rng.random(len(starts)) < 0.4, np.nan,
                     starts - rng.uniform(-0.02, 0.6, len(starts)))
    # a clip 0.1 ns after a spike: put on the 1 ns grid, it keeps the spike in about 4 in 10
    on_clip = t[rng.choice(len(t), 100)]
    starts, clips = np.append(starts, on_clip + 0.05), np.append(clips, on_clip + 1e-10)
    spike_tokens = tok.unit_token_ids(rec)[rec.unit_ids]
    for c in (None, clips):
        cols = tokenize_windows(rec, tok, starts, c)
        for i, s in enumerate(starts):
            clip = None if c is None or np.isnan(c[i]) else float(c[i])
            want = tok.encode_window(t, spike_tokens, float(s), past_clip_start=clip)
            got = {k: cols[k][i] for k in want}
            assert got == want, (i, s, clip)
            # Python ints, as encode_window's (a numpy int64 in a row changes the Arrow column)
            assert all(type(v) is int for k in want
                       for v in (got[k] if isinstance(got[k], list) else [got[k]])), (i, s, clip)
        # the cases above were met
        assert min(sum(cols["n_truncated"]), sum(cols["n_past_truncated"])) > 0
        assert cols["n_spikes"].count(0) > 5
        assert cols["past_input_ids"].count([tok.bos_token_id]) > 5
    bad = starts[:5].copy()
    bad[3] = np.nan
    msg = "window_start: expected a finite time in seconds, got nan"
    with pytest.raises(ValueError, match=msg):
        tokenize_windows(rec, tok, bad)


def test_tokenize_windows_refuses_float32_starts_and_clips_naming_the_argument():
    """tokenize_windows widened float32 starts to float64 without a word: 1000.05 s as float32 is
    1000.0499877929688 s, so the window opened 12 µs early and took a spike at 1000.04999 s that
    the window at 1000.05 s leaves to the window before (float32 steps 61 µs at 1000 s, more than
    some dt bins). The processor, generation and the metrics refused such starts; now this does
    too, naming ``starts`` or ``clip_starts``, with narrow_float_times_message's wording."""
    from hf_neuroformer.windows import tokenize_windows

    spikes = np.array([999.9, 1000.04999, 1000.06])
    rec = SpikeRecording(spike_times=spikes, unit_ids=np.array([0, 1, 0]), unit_names=["a", "b"],
                         time_domain=(999.0, 1001.0))
    cfg = NeuroformerConfig(current_window=0.05, past_window=0.1, dt_resolution=0.001)
    tok = tokenizer_for(rec, cfg)
    wide = tokenize_windows(rec, tok, np.array([1000.05]), np.array([1000.0]))
    assert wide["n_spikes"] == [1]  # 1000.06 alone; 1000.04999 is the window before's
    # the window float32 gave, widened (its start as a float64 value): it took 1000.04999 too
    assert tokenize_windows(rec, tok, np.array([float(np.float32(1000.05))]), np.array([1000.0]))["n_spikes"] == [2]
    fix = "pass float64 times from the source"
    with pytest.raises(ValueError, match=r"^starts: expected float64 times \(s\), got float32, .*window 0: 1000\.05 "
                                         rf"as float32 is 1000\.0499877929688 s, 12\.2 µs off; {fix}"):
        tokenize_windows(rec, tok, np.array([1000.05], dtype=np.float32), np.array([1000.0]))
    with pytest.raises(ValueError, match=rf"^clip_starts: expected float64 times \(s\), got float32, .*{fix}"):
        tokenize_windows(rec, tok, np.array([1000.05]), np.array([1000.01], dtype=np.float32))
    # a float32 item among Python floats, which np.asarray widens without a word
    with pytest.raises(ValueError, match=r"^starts: expected float64 times \(s\), got float32 items \(1 of 2\)"):
        tokenize_windows(rec, tok, [1000.0, np.float32(1000.05)])
    # no window: nothing rounded, nothing refused (a split of fraction 0)
    assert tokenize_windows(rec, tok, np.zeros(0, dtype=np.float32))["window_start"] == []
