"""Window log-likelihoods and bits per spike (model side)."""

import numpy as np
import pytest
import torch

import hf_neuroformer as nf
from hf_neuroformer.likelihood import split_bits_per_spike, window_log_likelihoods
from hf_neuroformer.windows import plan_splits, window_starts_for_split

from tiny_configs import untrained_decoder, untrained_model


@pytest.fixture(scope="module")
def small():
    rec = nf.simulate_coupled_network(n_units=4, duration=60.0, seed=5).recording
    cfg = nf.NeuroformerConfig(current_window=0.1, past_window=0.3, dt_resolution=0.02, max_window_length=16,
                               max_past_length=32, hidden_size=16, num_attention_heads=2, intermediate_size=32,
                               split_block_length=5.0)
    tok, model = untrained_model(rec, cfg)
    return rec, tok, model, cfg


def test_empty_window_probability_matches_generation_frequency(small):
    """The scorer and the generator describe the same distribution: P(empty window) = exp(LL)."""
    rec, tok, model, _ = small
    s = 30.0
    keep = (rec.spike_times < s) | (rec.spike_times >= s + 0.1)
    empty = nf.SpikeRecording(spike_times=rec.spike_times[keep], unit_ids=rec.unit_ids[keep],
                              unit_names=rec.unit_names, time_domain=rec.time_domain, session=rec.session)
    ll = window_log_likelihoods(model, tok, empty, [s])
    assert ll["n_spikes"][0] == 0 and not ll["truncated"][0]
    p_empty = float(np.exp(ll["log_likelihood"][0]))
    n = 3000
    reps = nf.generate_spikes(model, tok, empty, [s], num_samples=n, batch_size=1000, seed=0, progress=False)
    freq = np.mean([r.n_spikes == 0 for r in reps])
    se = np.sqrt(p_empty * (1 - p_empty) / n)
    assert 0.02 < p_empty < 0.98
    assert abs(freq - p_empty) < 4 * se, (freq, p_empty, se)


def test_window_log_likelihood_parts_and_truncation(small):
    rec, tok, model, _ = small
    starts = 10.0 + 0.1 * np.arange(50)
    ll = window_log_likelihoods(model, tok, rec, starts, batch_size=7)
    ok = ~ll["truncated"]
    assert ok.all()
    np.testing.assert_allclose(ll["log_likelihood"], ll["id_log_likelihood"] + ll["dt_log_likelihood"])
    assert np.all(ll["log_likelihood"] < 0)
    # batching does not change the scores
    ll2 = window_log_likelihoods(model, tok, rec, starts, batch_size=50)
    np.testing.assert_allclose(ll["log_likelihood"], ll2["log_likelihood"], rtol=1e-5)
    # a window with more spikes than the token budget is reported truncated, not scored
    dense_t = np.sort(np.concatenate([rec.spike_times, 40.0 + np.linspace(0.001, 0.099, 30)]))
    dense_u = np.concatenate([rec.unit_ids, np.zeros(30, dtype=np.int64)])[np.argsort(
        np.concatenate([rec.spike_times, 40.0 + np.linspace(0.001, 0.099, 30)]), kind="stable")]
    dense = nf.SpikeRecording(spike_times=dense_t, unit_ids=dense_u, unit_names=rec.unit_names,
                              time_domain=rec.time_domain, session=rec.session)
    llt = window_log_likelihoods(model, tok, dense, [40.0, 41.0])
    assert llt["truncated"].tolist() == [True, False] and np.isnan(llt["log_likelihood"][0])


def test_split_bits_per_spike_is_consistent(small):
    rec, tok, model, cfg = small
    plan = plan_splits(rec, cfg)
    out = split_bits_per_spike(model, tok, rec, plan, "test")
    assert out["n_windows"] > 0 and out["n_spikes"] > 0
    expected = (out["model_log_likelihood_nats"] - out["null_log_likelihood_nats"]) / (out["n_spikes"] * np.log(2))
    assert out["bits_per_spike"] == pytest.approx(expected)
    # the model side from its parts, not from the figures split_bits_per_spike returns (the formula
    # above also holds for another split's windows or the id term alone): the tiled test windows,
    # each scored by window_log_likelihoods, truncated ones left out, spikes counted by hand
    starts, _ = window_starts_for_split(plan, "test", cfg, stride=cfg.current_window)
    ll = window_log_likelihoods(model, tok, rec, starts)
    keep = ~ll["truncated"]
    assert out["n_windows"] == int(keep.sum()) and out["n_windows_truncated"] == int((~keep).sum())
    assert out["model_log_likelihood_nats"] == pytest.approx(float(ll["log_likelihood"][keep].sum()), rel=1e-6)
    t = rec.spike_times
    by_hand = [np.searchsorted(t, round(s + cfg.current_window, 9)) - np.searchsorted(t, s) for s in starts[keep]]
    assert out["n_spikes"] == sum(by_hand)
    # an untrained model is worse than the rate-matched Poisson null
    assert out["bits_per_spike"] < 0
    with pytest.raises(ValueError, match="split"):
        split_bits_per_spike(model, tok, rec, plan, "holdout")
    # another (shorter) recording than the model's is refused, not scored on empty windows
    with pytest.raises(ValueError, match="recording"):
        split_bits_per_spike(model, tok, rec.restrict(0.0, 20.0), plan, "test")


def test_scored_rates_null_with_a_unit_silent_in_the_scored_windows(small):
    """The scored-rates null (NLB's reference null: rates of the spikes being scored) gives a silent
    unit rate 0 and stays finite; being the maximum-likelihood homogeneous rates on those windows,
    it is never beaten by the train-rate null, so its bits/spike is never higher."""
    rec, tok, model, cfg = small
    plan = plan_splits(rec, cfg)
    in_test = np.zeros(rec.n_spikes, dtype=bool)
    for a, b in plan.segments["test"]:
        in_test |= (rec.spike_times >= a) & (rec.spike_times < b)
    drop = in_test & (rec.unit_ids == 3)
    assert drop.sum() > 10  # unit 3 fires in the test block of the recording
    silent = nf.SpikeRecording(spike_times=rec.spike_times[~drop], unit_ids=rec.unit_ids[~drop],
                               unit_names=rec.unit_names, time_domain=rec.time_domain, session=rec.session)
    for r in (rec, silent):
        out = split_bits_per_spike(model, tok, r, plan, "test")
        for key in ("bits_per_spike", "bits_per_spike_scored_rates_null", "null_scored_rates_log_likelihood_nats"):
            assert np.isfinite(out[key]), key
        expected = (out["model_log_likelihood_nats"] - out["null_scored_rates_log_likelihood_nats"]) / (
            out["n_spikes"] * np.log(2))
        assert out["bits_per_spike_scored_rates_null"] == pytest.approx(expected)
        assert out["null_scored_rates_log_likelihood_nats"] >= out["null_log_likelihood_nats"]
        assert out["bits_per_spike_scored_rates_null"] <= out["bits_per_spike"]


@pytest.mark.parametrize("conditioned", [True, False])
def test_scores_are_the_generator_probabilities_of_count_arrays(conditioned):
    """Every outcome with <= 2 spikes (2 units x 2 dt bins): exp(log-likelihood) matches the frequency
    with which the generator produces that count array, and nothing is scored twice (sum <= 1)."""
    import itertools

    rec = nf.simulate_coupled_network(n_units=2, duration=20.0, seed=8).recording
    cfg = nf.NeuroformerConfig(current_window=0.1, past_window=0.2, dt_resolution=0.05, max_window_length=12,
                               max_past_length=24, hidden_size=16, num_attention_heads=2, intermediate_size=32,
                               dt_conditioned_on_unit=conditioned)
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(rec)
    cfg.vocab_size = len(tok)
    torch.manual_seed(3)
    model = nf.NeuroformerForPreTraining(cfg).eval()
    with torch.no_grad():
        model.id_head.bias[tok.eos_token_id] += 1.0
        model.dt_head.bias[0] += 2.0  # most spikes share the first bin, where the canonical-order restriction acts
    s = 10.0
    outside = (rec.spike_times < s) | (rec.spike_times >= s + 0.1)
    n = 20000
    reps = nf.generate_spikes(model, tok, rec, [s], num_samples=n, batch_size=5000, seed=1, progress=False,
                              order="canonical")
    observed = {}
    for r in reps:
        cells = tuple(sorted(zip(r.unit_ids.tolist(), np.round((r.spike_times - s) / 0.05 - 0.5).astype(int).tolist())))
        observed[cells] = observed.get(cells, 0) + 1
    cells_all = [(u, k) for u in range(2) for k in range(2)]
    outcomes = [()] + [(c,) for c in cells_all] + list(itertools.combinations_with_replacement(cells_all, 2))
    total_p, chi2 = 0.0, 0.0
    for cells in outcomes:
        t = np.array([s + (k + 0.5) * 0.05 for _, k in cells])
        u = np.array([uu for uu, _ in cells], dtype=np.int64)
        times = np.concatenate([rec.spike_times[outside], t])
        units = np.concatenate([rec.unit_ids[outside], u])
        one = nf.SpikeRecording.from_unsorted(times, units, unit_names=rec.unit_names, time_domain=rec.time_domain,
                                              session=rec.session)
        p = float(np.exp(window_log_likelihoods(model, tok, one, [s])["log_likelihood"][0]))
        total_p += p
        freq = observed.get(tuple(sorted(cells)), 0) / n
        se = np.sqrt(p * (1 - p) / n)
        assert abs(freq - p) < 4.5 * se + 5e-4, (cells, freq, p)
        chi2 += ((freq - p) / se) ** 2
    seen = sum(observed.get(tuple(sorted(c)), 0) for c in outcomes) / n
    assert total_p <= 1.0 + 1e-6
    print(f"enumerated outcomes: model mass {total_p:.3f}, generated {seen:.3f}, chi2 {chi2:.1f} over {len(outcomes)}")
    assert chi2 < 40  # 15 outcomes: P(chi2_15 > 40) < 0.001 when the scores are the generator's probabilities
    assert 0.3 < total_p and abs(seen - total_p) < 0.01


def test_window_outside_the_recorded_time_is_refused_not_scored_as_silence(small):
    """The windows go through NeuroformerProcessor.tokenize: a window past the end of the
    recording (or in a gap of its support) held no recorded spikes and used to get the
    log-probability of an empty window."""
    rec, tok, model, _ = small
    end = float(rec.time_domain[1])
    with pytest.raises(ValueError, match=r"window_starts: index 1.*not inside the recorded time"):
        window_log_likelihoods(model, tok, rec, [10.0, end - 0.05])
    with pytest.raises(ValueError, match="past_clip_starts: index 0"):
        window_log_likelihoods(model, tok, rec, [10.0], past_clip_starts=[10.5])


def test_flags_that_are_not_true_or_false_are_refused_by_name(small):
    """Break test: progress="no" was truthy and drew the bar it asked to hide; check_modalities="no" checked them."""
    rec, tok, model, _ = small
    for flag in ("progress", "check_modalities"):
        for bad in ("no", None, 1):
            with pytest.raises(ValueError, match=rf"^{flag}: expected True or False, got {bad!r}"):
                window_log_likelihoods(model, tok, rec, [10.0], **{flag: bad})
    assert window_log_likelihoods(model, tok, rec, [10.0], progress=np.bool_(False))["n_spikes"].shape == (1,)


def test_window_starts_that_are_not_one_list_are_refused_not_flattened(small):
    """A (n_trials, k) grid of starts (or a (n, 1) column) was flattened into one list of windows
    by window_log_likelihoods and the attention maps, while the processor and generate_spikes
    refused it; every entry point now refuses it by name."""
    from hf_neuroformer.analysis.connectivity import attention_connectivity

    rec, tok, model, _ = small
    grid = np.array([[10.0, 11.0], [12.0, 13.0]])
    with pytest.raises(ValueError, match=r"window_starts: expected a 1-D sequence of window starts \(s\), got "
                                         r"shape \(2, 2\); pass np.ravel"):
        window_log_likelihoods(model, tok, rec, grid)
    with pytest.raises(ValueError, match=r"window_starts: expected a 1-D .* got shape \(2, 2\)"):
        attention_connectivity(model, tok, rec, grid)
    with pytest.raises(ValueError, match=r"past_clip_starts: expected a 1-D .* got shape \(1, 1\)"):
        nf.generate_spikes(model, tok, rec, [10.0], past_clip_starts=[[9.5]], progress=False)
    assert window_log_likelihoods(model, tok, rec, grid.ravel())["log_likelihood"].shape == (4,)


def test_every_entry_point_refuses_no_window_starts_and_nan_starts_with_one_message(small):
    """The processor, generate_spikes, window_log_likelihoods and attention_connectivity check
    window starts with one function (windows.window_starts_array): no starts, or a NaN / infinite
    start, get the same message naming ``window_starts`` from each (the processor said "non-empty
    1-D sequence of seconds", connectivity "at least one window", generation "finite times")."""
    from hf_neuroformer import NeuroformerProcessor
    from hf_neuroformer.analysis.connectivity import attention_connectivity

    rec, tok, model, _ = small
    calls = {
        "processor": lambda s: NeuroformerProcessor.from_config(tok, model.config)(rec, s),
        "generate_spikes": lambda s: nf.generate_spikes(model, tok, rec, s, progress=False),
        "window_log_likelihoods": lambda s: window_log_likelihoods(model, tok, rec, s),
        "attention_connectivity": lambda s: attention_connectivity(model, tok, rec, s),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=r"^window_starts: expected at least one window start \(s\), got none"):
            call([])
        for bad in (float("nan"), float("inf")):
            with pytest.raises(ValueError, match=rf"^window_starts: expected finite times \(s\), window 1 starts at "
                                                 rf"{bad}$"):
                call([10.0, bad])


def test_window_starts_that_are_not_real_numbers_are_refused_by_name(small):
    """Break test: window_starts_array read True as 1.0 s and "1.5" as 1.5 s, and a ragged list or
    a string failed with numpy's bare message naming no argument."""
    from hf_neuroformer.windows import window_starts_array

    rec, tok, model, _ = small
    for bad in ([True, False], np.array(["10.0", "10.2"]), ["a"], [[10.0, 10.2], [10.4]], [10 + 1j]):
        with pytest.raises(ValueError, match=r"^window_starts: expected window starts as real numbers \(s\)"):
            window_log_likelihoods(model, tok, rec, bad)
    with pytest.raises(ValueError, match=r"^past_clip_starts: expected window starts as real numbers"):
        window_starts_array([False], "past_clip_starts", clip_starts=True)
    with pytest.raises(ValueError, match=r"^x: expected float64 times \(s\), got float32"):
        window_starts_array(np.float32([10.5]), "x")  # exact here, but float32 rounds most times off the grid
    assert window_starts_array(np.int32([10]), "x").dtype == np.float64


def test_past_clip_starts_that_are_not_times_are_refused_by_name(small):
    """Break test: window_log_likelihoods (and the processor it calls) read past_clip_starts with
    np.asarray(float64): [True, False] clipped the pasts at 1 s and 0 s and scored them without a
    word, and text failed with numpy's "could not convert string to float" naming no argument."""
    rec, tok, model, _ = small
    starts = [10.0, 10.1]
    for bad in ([True, False], ["a", "b"], np.array(["9.9", "10.0"])):
        with pytest.raises(ValueError, match=r"^past_clip_starts: expected window starts as real numbers \(s\)"):
            window_log_likelihoods(model, tok, rec, starts, past_clip_starts=bad)
        with pytest.raises(ValueError, match=r"^past_clip_starts: expected window starts as real numbers \(s\)"):
            nf.NeuroformerProcessor.from_config(tok, model.config).tokenize(rec, starts, bad)
    # real clips still work: NaN (no clip) scores as no clip at all, a clip at the start empties the past
    none = window_log_likelihoods(model, tok, rec, starts)["log_likelihood"]
    nan = window_log_likelihoods(model, tok, rec, starts, past_clip_starts=[np.nan, np.nan])["log_likelihood"]
    np.testing.assert_allclose(nan, none)
    at = window_log_likelihoods(model, tok, rec, starts, past_clip_starts=starts)["log_likelihood"]
    assert not np.allclose(at, none)


def test_batch_size_below_one_is_refused_not_scored_as_zero(small):
    """batch_size=-1 skipped the scoring loop and returned log-likelihood 0 (probability 1) for
    every window; 0 failed inside range() without naming the field."""
    rec, tok, model, _ = small
    for bad in (0, -1, 2.5, True, 16.0, float("nan")):  # 16.0 failed inside range(), NaN inside int()
        with pytest.raises(ValueError, match="batch_size: expected an integer >= 1"):
            window_log_likelihoods(model, tok, rec, [10.0], batch_size=bad)


def test_a_generated_recording_is_scored_like_the_recorded_one(small):
    """generate_spikes names its output's session '<session>-generated' (and '-sample<k>' with
    several samples); the model's tokenizer refused it (UnknownUnitError), so a model could not
    score or re-tokenize its own spikes. It now reads them as the source session's units."""
    import dataclasses

    rec, tok, model, _ = small
    starts = 20.0 + 0.1 * np.arange(8)
    gens = nf.generate_spikes(model, tok, rec, starts, num_samples=2, seed=1, progress=False)
    assert [g.session for g in gens] == [f"{rec.session}-generated-sample0", f"{rec.session}-generated-sample1"]
    for gen in gens:
        assert gen.n_spikes > 0
        as_recorded = dataclasses.replace(gen, session=rec.session)
        scored = starts[3:]  # the generated recording starts at 20.0 s: earlier windows' pasts reach before it
        got = window_log_likelihoods(model, tok, gen, scored)
        ref = window_log_likelihoods(model, tok, as_recorded, scored)
        np.testing.assert_array_equal(got["log_likelihood"], ref["log_likelihood"])
        np.testing.assert_array_equal(tok.unit_token_ids(gen), tok.unit_token_ids(rec))
    # another session's units are still refused, and so is a generated session of unknown units
    other = dataclasses.replace(gens[0], session="elsewhere-generated")
    with pytest.raises(nf.UnknownUnitError, match="elsewhere-generated"):
        tok.unit_token_ids(other)


def test_split_bits_per_spike_block_bootstrap_intervals(small):
    """95 % intervals of both bits-per-spike figures from whole blocks of test windows: with
    1 s blocks the test split's blocks give an interval holding the point value; with the
    default 10 s blocks the short test split is too few blocks, and the figures say so."""
    rec, tok, model, cfg = small
    plan = plan_splits(rec, cfg)
    test_s = float(np.sum(np.diff(plan.segments["test"], axis=1)))
    out = split_bits_per_spike(model, tok, rec, plan, "test", progress=False, ci_block_s=1.0)
    starts, _ = window_starts_for_split(plan, "test", cfg, stride=cfg.current_window)
    seg_start = plan.segments["test"][np.searchsorted(plan.segments["test"][:, 0], starts, side="right") - 1, 0]
    expected_blocks = len({(a, int(np.floor((s - a) / 1.0 + 1e-9))) for s, a in zip(starts, seg_start)})
    assert out["ci95_n_blocks"] == expected_blocks >= 5
    for key in ("bits_per_spike", "bits_per_spike_scored_rates_null"):
        lo, hi = out[f"{key}_ci95"]
        assert lo < out[key] < hi, key
    assert "1 s of window starts" in out["ci95_blocks"] and "'BCa'" in out["ci95_method"]
    again = split_bits_per_spike(model, tok, rec, plan, "test", progress=False, ci_block_s=1.0)
    assert again["bits_per_spike_ci95"] == out["bits_per_spike_ci95"]  # fixed seed: the same interval
    short = split_bits_per_spike(model, tok, rec, plan, "test", progress=False)
    assert test_s < 50 and short["ci95_n_blocks"] < 5
    assert short["bits_per_spike_ci95"] is None and "fewer than 5" in short["bits_per_spike_ci95_reason"]
    # the reason says how to get an interval in the Python call's words; the block lengths are recorded
    assert "shorter blocks give an interval: e.g. ci_block_s=" in short["bits_per_spike_ci95_reason"]
    assert "--ci-block-s" not in short["bits_per_spike_ci95_reason"]
    assert short["ci95_block_s"] == 10.0 and out["ci95_block_s"] == 1.0
    assert short["bits_per_spike"] == out["bits_per_spike"]  # the point value does not depend on the blocks


def test_a_test_split_without_spikes_says_so_not_that_shorter_blocks_give_an_interval(small):
    # no spike in the test windows: bits per spike is NaN whatever the blocks, but with the default 10 s
    # blocks (too few) the interval's reason said "shorter blocks give an interval: e.g. ci_block_s=2"
    rec, tok, model, cfg = small
    plan = plan_splits(rec, cfg)
    starts, _ = window_starts_for_split(plan, "test", cfg, stride=cfg.current_window)
    lo, hi = min(starts) - cfg.past_window, max(starts) + cfg.current_window
    keep = (rec.spike_times < lo) | (rec.spike_times >= hi)
    silent = nf.SpikeRecording(rec.spike_times[keep], rec.unit_ids[keep], unit_names=list(rec.unit_names),
                               time_domain=rec.time_domain, session=rec.session)
    out = split_bits_per_spike(model, tok, silent, plan, "test", progress=False)
    assert out["n_spikes"] == 0 and np.isnan(out["bits_per_spike"]) and out["ci95_n_blocks"] < 5
    for key in ("bits_per_spike", "bits_per_spike_scored_rates_null"):
        reason = out[f"{key}_ci95_reason"]
        assert out[f"{key}_ci95"] is None and "not finite on the whole split" in reason, key
        assert "shorter blocks give an interval" not in reason, key


def test_a_diverged_model_is_refused_by_name_not_scored_as_nan(small):
    """Break test: with NaN weights (a diverged run) window_log_likelihoods returned NaN for windows
    it did not mark truncated, split_bits_per_spike then said "window_log_likelihoods gives NaN for
    truncated windows: leave out those where its 'truncated' is True, as split_bits_per_spike
    does" (it had), and generate_spikes failed inside torch.multinomial. Each now names the model
    and its non-finite weights."""
    import copy

    rec, tok, model, cfg = small
    bad = copy.deepcopy(model)
    with torch.no_grad():
        bad.id_head.weight.fill_(float("nan"))
    plan = plan_splits(rec, cfg)
    starts, _ = window_starts_for_split(plan, "test", cfg, stride=cfg.current_window)
    pattern = r"^model: 1 of \d+ weight tensors hold NaN or infinite values \(first: id_head.weight\)"
    for call in (lambda: window_log_likelihoods(bad, tok, rec, starts[:3]),
                 lambda: split_bits_per_spike(bad, tok, rec, plan, progress=False),
                 lambda: nf.generate_spikes(bad, tok, rec, starts[:3], progress=False)):
        with pytest.raises(ValueError, match=pattern):
            call()


def test_a_split_whose_windows_are_all_truncated_gives_nan_and_says_why():
    """Every test window holds more spikes than max_window_length (all truncated, left out of both
    sides): split_bits_per_spike handles that case (bits per spike NaN, the truncated windows
    counted), but its block bootstrap then got zero blocks and failed with numpy's 'cannot reshape
    array of size 0 into shape (0,newaxis)', so 'neuroformer evaluate --model' stopped there."""
    t = np.arange(0.0, 60.0, 0.01) + 0.003  # 10 spikes in every 0.1 s window
    rec = nf.SpikeRecording.from_unsorted(t, np.arange(len(t)) % 3, unit_names=["a", "b", "c"],
                                          time_domain=(0.0, 60.0))
    cfg = nf.NeuroformerConfig(current_window=0.1, past_window=0.3, dt_resolution=0.02, max_window_length=4,
                               max_past_length=32, hidden_size=16, num_attention_heads=2, intermediate_size=32,
                               split_block_length=5.0)
    tok, model = untrained_model(rec, cfg)
    plan = plan_splits(rec, cfg)
    out = split_bits_per_spike(model, tok, rec, plan, "test", progress=False)
    n_test = len(window_starts_for_split(plan, "test", cfg, stride=cfg.current_window)[0])
    assert out["n_windows"] == 0 and out["n_windows_truncated"] == n_test > 0 and out["n_spikes"] == 0
    assert np.isnan(out["bits_per_spike"]) and np.isnan(out["bits_per_spike_scored_rates_null"])
    assert out["ci95_n_blocks"] == 0
    for key in ("bits_per_spike", "bits_per_spike_scored_rates_null"):
        assert out[f"{key}_ci95"] is None and "not finite" in out[f"{key}_ci95_reason"]



def test_the_train_rate_null_on_real_spikes_is_scipys_poisson_at_train_window_rates(shared_data):
    """Independent recount on the Allen gratings (40 units, 200 trials of 0.1 s split by trials;
    0.03-s windows from each trial start, 0.007-s dt bins, the last one 0.002 s): the null of
    ``bits_per_spike`` is scipy's Poisson log-pmf of each unit's count in each dt bin of the test
    windows at the unit's rate over the TRAIN windows (half a spike for a unit silent there), not at
    the test windows' own rates (the leak of NLB's null, reported apart as
    ``bits_per_spike_scored_rates_null``). Windows and bins counted by hand here."""
    from scipy.stats import poisson

    from hf_neuroformer.io import read_allen_gratings

    rec = read_allen_gratings(shared_data("allen_vcn_gratings")).select_units(range(40))
    cfg = nf.NeuroformerConfig(current_window=0.03, past_window=0.02, dt_resolution=0.007, max_window_length=64,
                               max_past_length=96, hidden_size=16, num_attention_heads=2, intermediate_size=32)
    tok, model = untrained_model(rec, cfg)
    plan = plan_splits(rec, cfg)
    assert plan.mode == "trials"
    out = split_bits_per_spike(model, tok, rec, plan, "test", progress=False)
    w, edges = 0.03, np.array([0.0, 0.007, 0.014, 0.021, 0.028, 0.03])

    def counts(split):  # (windows, units, dt bins): windows [a, a + 0.03), [a + 0.03, ...) of each trial
        starts = [round(a + k * w, 9) for a, b in plan.segments[split] for k in range(int((b - a) / w + 1e-6))]
        c = np.zeros((len(starts), rec.n_units, len(edges) - 1))
        for i, s in enumerate(starts):
            inside = (rec.spike_times >= s) & (rec.spike_times < round(s + w, 9))
            k = np.searchsorted(edges, rec.spike_times[inside] - s + 1e-12, side="right") - 1
            np.add.at(c[i], (rec.unit_ids[inside], k), 1)
        return c

    train, test = counts("train"), counts("test")
    assert out["n_windows"] == len(test) and out["n_spikes"] == int(test.sum()) > 0
    widths = np.diff(edges)[None, None]
    train_rates = np.maximum(train.sum((0, 2)), 0.5) / (len(train) * w)
    test_rates = test.sum((0, 2)) / (len(test) * w)
    assert not np.allclose(train_rates, test_rates, rtol=0.05)  # the choice of rates matters here
    null = poisson.logpmf(test, train_rates[None, :, None] * widths).sum()
    assert out["null_log_likelihood_nats"] == pytest.approx(null, rel=1e-9)
    own = test_rates[None, :, None] * widths
    scored = np.where(own > 0, poisson.logpmf(test, np.where(own > 0, own, 1.0)), 0.0).sum()
    assert out["null_scored_rates_log_likelihood_nats"] == pytest.approx(scored, rel=1e-9)
    assert out["bits_per_spike"] == pytest.approx(
        (out["model_log_likelihood_nats"] - null) / (test.sum() * np.log(2)), rel=1e-9)


def test_a_unit_silent_in_the_fit_split_is_floored_and_said(small):
    """A unit without a spike in the train windows would make its test spikes impossible under the
    train-rate null (rate 0): it gets half a spike over the train windows, and the result names it
    and counts its scored spikes, which that floor prices. Independent recount: scipy's Poisson at
    the floored rate for that unit, bins counted by hand."""
    from scipy.stats import poisson

    rec, tok, model, cfg = small
    plan = plan_splits(rec, cfg)

    def in_split(name):
        mask = np.zeros(rec.n_spikes, dtype=bool)
        for a, b in plan.segments[name]:
            mask |= (rec.spike_times >= a) & (rec.spike_times < b)
        return mask

    drop = in_split("train") & (rec.unit_ids == 2)
    quiet_rec = nf.SpikeRecording(spike_times=rec.spike_times[~drop], unit_ids=rec.unit_ids[~drop],
                                  unit_names=rec.unit_names, time_domain=rec.time_domain, session=rec.session)
    out = split_bits_per_spike(model, tok, quiet_rec, plan, "test", progress=False)
    train_starts, _ = window_starts_for_split(plan, "train", cfg, stride=cfg.current_window)
    test_starts, _ = window_starts_for_split(plan, "test", cfg, stride=cfg.current_window)
    w, dt = cfg.current_window, cfg.dt_resolution
    floor = 0.5 / (len(train_starts) * w)
    assert out["units_silent_in_fit_split"] == [2]
    assert out["silent_unit_null_rate_hz"] == pytest.approx(floor)
    t, u = quiet_rec.spike_times, quiet_rec.unit_ids
    per_bin = np.zeros((len(test_starts), int(round(w / dt))))
    for i, s in enumerate(test_starts):
        sel = (t >= s) & (t < s + w) & (u == 2)
        np.add.at(per_bin[i], np.floor((t[sel] - s) / dt + 1e-9).astype(int), 1)
    assert out["n_spikes_of_units_silent_in_fit_split"] == int(per_bin.sum()) > 0
    # the other units' spikes and rates are the same in both recordings, so the two train-rate nulls differ
    # by unit 2's term alone: scipy's Poisson at its fitted train rate minus at the floor rate
    full = split_bits_per_spike(model, tok, rec, plan, "test", progress=False)
    assert full["units_silent_in_fit_split"] == [] and full["n_spikes_of_units_silent_in_fit_split"] == 0
    n_train = sum(int(((rec.spike_times >= s) & (rec.spike_times < s + w) & (rec.unit_ids == 2)).sum())
                  for s in train_starts)
    fitted = n_train / (len(train_starts) * w)
    diff = poisson.logpmf(per_bin, fitted * dt).sum() - poisson.logpmf(per_bin, floor * dt).sum()
    assert full["null_log_likelihood_nats"] - out["null_log_likelihood_nats"] == pytest.approx(diff, rel=1e-9)


def test_split_bits_per_spike_warns_of_other_spikes_than_the_training_ones(shared_data, tmp_path, capsys):
    """split_bits_per_spike scored a recording with the model's unit names that covered the split but
    held other spikes (one test spike moved by 1 ms) without a word: only `neuroformer evaluate` warned,
    through the model's record of its training spikes (split_spikes in metrics.json). The library
    function now warns the same way, once; evaluate --model still warns once, not twice."""
    import json
    import warnings

    from hf_neuroformer import cli
    from hf_neuroformer.generation import load_pretrained
    from hf_neuroformer.io import load_recording, write_npz, write_nwb
    from hf_neuroformer.windows import split_spikes_digest

    from tiny_configs import quiet

    rec = quiet(load_recording, shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"),
                epoch="wake").restrict(640.0, 700.0).select_units(range(4))
    cfg = nf.NeuroformerConfig(current_window=0.1, past_window=0.3, dt_resolution=0.02, max_window_length=32,
                               max_past_length=64, hidden_size=16, num_attention_heads=2, intermediate_size=32,
                               split_block_length=5.0)
    tok, model = untrained_model(rec, cfg)
    plan = plan_splits(rec, cfg)
    d = tmp_path / "model"
    model.save_pretrained(d)
    tok.save_pretrained(d)
    (d / "splits.json").write_text(json.dumps(plan.to_dict()))
    (d / "metrics.json").write_text(json.dumps({"split_spikes": split_spikes_digest(rec, plan)}))
    model, tok, plan = load_pretrained(d)
    seg = plan.segments["test"]
    t = rec.spike_times.copy()
    k = int(np.searchsorted(t, seg[0, 0] + 0.5))  # a spike inside the first test segment
    assert t[k] + 0.001 < seg[0, 1]
    t[k] += 0.001
    moved = nf.SpikeRecording.from_unsorted(t, rec.unit_ids, unit_names=list(rec.unit_names),
                                            time_domain=rec.time_domain, session=rec.session)

    def warned(call):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()
        return [str(w.message) for w in caught if "not the spikes it was trained on" in str(w.message)]

    assert warned(lambda: split_bits_per_spike(model, tok, rec, plan, "test", progress=False)) == []
    got = warned(lambda: split_bits_per_spike(model, tok, moved, plan, "test", progress=False))
    assert len(got) == 1 and got[0].startswith("recording: this recording has the units of the model")
    assert "in its test split" in got[0]
    assert warned(lambda: split_bits_per_spike(model, tok, moved, plan, "test", progress=False,
                                               check_training_spikes=False)) == []
    # the command compares once (--real) and passes check_training_spikes=False: one warning, not two
    starts, _ = window_starts_for_split(plan, "test", cfg)
    write_nwb(nf.generate_spikes(model, tok, rec, starts[:5], seed=0, progress=False), tmp_path / "gen.nwb")
    write_npz(moved, tmp_path / "moved.npz")
    got = warned(lambda: cli.main(["evaluate", "--real", str(tmp_path / "moved.npz"), "--generated",
                                   str(tmp_path / "gen.nwb"), "--model", str(d), "--min-isis", "2"]))
    assert len(got) == 1 and got[0].startswith("--real: this recording has the units of the model"), got
    capsys.readouterr()


def test_every_window_entry_point_refuses_a_past_before_the_recorded_time(shared_data):
    """generate_spikes refuses a window whose past window reaches before the recorded time (600.0 s
    of A2929's wake epoch, time domain [600, 660] s here, with a 1 s past); window_log_likelihoods,
    attention_connectivity and decode_windows
    read that past as silence without a word. They now refuse it with generate_spikes's message; a
    past clipped at the domain's start is accepted."""
    from hf_neuroformer.analysis.connectivity import attention_connectivity
    from hf_neuroformer.finetuning import decode_windows
    from hf_neuroformer.io import load_recording
    from tiny_configs import quiet, small_config

    wake = quiet(load_recording, shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"), epoch="wake")
    rec = wake.select_units(range(4)).restrict(600.0, 660.0)
    assert rec.time_domain == (600.0, 660.0) and rec.time_support is None
    cfg = small_config(current_window=0.1, past_window=1.0, dt_resolution=0.01, max_past_length=128)
    tok, model = untrained_model(rec, cfg)
    decoder = untrained_decoder(model)
    said = (r"^window_starts: window 1 \[600\.0, 600\.1\) s has its past window start at {} s \(past_window 1 s\), "
            r"before the recording's time domain, \[600, 660\) s, so that past would be read as silence.*"
            r"; 1 of 2 windows reach before their recorded time")
    calls = {
        "window_log_likelihoods": lambda s, c: window_log_likelihoods(model, tok, rec, s, past_clip_starts=c),
        "attention_connectivity": lambda s, c: attention_connectivity(model, tok, rec, s, past_clip_starts=c),
        "decode_windows": lambda s, c: decode_windows(decoder, tok, rec, s, past_clip_starts=c),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=said.format(r"599\.0")):
            call([601.0, 600.0], None)
        with pytest.raises(ValueError, match=said.format(r"599\.5")):  # a clip before the time domain: no help
            call([601.0, 600.0], [np.nan, 599.5])
    clipped = window_log_likelihoods(model, tok, rec, [601.0, 600.0], past_clip_starts=[np.nan, 600.0])
    assert len(clipped["log_likelihood"]) == 2


def test_a_trial_window_whose_past_reaches_before_its_stretch_is_told_to_clip_at_its_trial(shared_data):
    """Allen gratings: 100-ms trials 100 ms apart, the time support their union. A trial-mode model
    (each window's past clipped at its trial's start in training, 150 ms past here) asked for windows
    inside trials without past clips was refused as in time mode, but told only time mode's remedy:
    windows past_window into the recorded time, which a 100-ms trial cannot hold, or 'past_clip_starts
    at or after it'. The refusal of every entry point now names the window's trial and the clip to
    pass, its trial's start; so clipped, the windows are generated and scored, from the trial's start
    on (as with 'trials')."""
    import re

    from hf_neuroformer.analysis.connectivity import attention_connectivity
    from hf_neuroformer.finetuning import decode_windows
    from hf_neuroformer.io import read_allen_gratings
    from hf_neuroformer.windows import trial_at
    from tiny_configs import small_config

    rec = read_allen_gratings(shared_data("allen_vcn_gratings")).select_units(range(20))
    assert np.array_equal(rec.support, rec.trials)  # the recorded time is the trials
    cfg = small_config(current_window=0.01, past_window=0.15, dt_resolution=0.002, split_by="trials")
    tok, model = untrained_model(rec, cfg)
    decoder = untrained_decoder(model)
    starts = rec.trials[1:4, 0] + 0.05  # 50 ms into trials 1-3: each past reaches into the gap before its trial
    t1 = float(rec.trials[1, 0])
    said = (r"^window_starts: window 0 .* so that past would be read as silence.*; 3 of 3 windows reach before "
            rf"their recorded time; the window lies in trial 1 \[{t1:g}, {float(rec.trials[1, 1]):g}\) s, .*trial "
            rf"mode.*: pass each window's trial start as past_clip_starts \({re.escape(repr(t1))} s for this one; "
            r"recording\.trials\[hf_neuroformer\.windows\.trial_at\(recording\.trials, starts\), 0\]")
    calls = {
        "generate_spikes": lambda c: nf.generate_spikes(model, tok, rec, starts, past_clip_starts=c, seed=0,
                                                        progress=False),
        "window_log_likelihoods": lambda c: window_log_likelihoods(model, tok, rec, starts, past_clip_starts=c),
        "attention_connectivity": lambda c: attention_connectivity(model, tok, rec, starts, past_clip_starts=c),
        "decode_windows": lambda c: decode_windows(decoder, tok, rec, starts, past_clip_starts=c),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=said):
            call(None)
    clips = rec.trials[trial_at(rec.trials, starts), 0]  # what the message says to pass
    np.testing.assert_array_equal(clips, rec.trials[1:4, 0])
    g = calls["generate_spikes"](clips)
    in_past = [int(np.count_nonzero((rec.spike_times >= c) & (rec.spike_times < s))) for c, s in zip(clips, starts)]
    assert sum(in_past) > 0 and list(g.generation_stats["n_past_recorded"]) == in_past
    got = calls["window_log_likelihoods"](clips)["log_likelihood"]
    np.testing.assert_array_equal(got, window_log_likelihoods(model, tok, rec, starts, past_clip_starts="trials")[
        "log_likelihood"])
    assert np.isfinite(got).all()


def test_a_generated_recordings_first_windows_are_refused_with_the_clip_that_scores_them(shared_data):
    """The README (Generation): a generated recording holds only its generated windows, so the windows
    within past_window of a generated stretch's start have no whole past in it; window_log_likelihoods
    refuses them, and each window's clip at the start of its generated stretch (the README's
    recorded_stretches expression, or past_clip_starts='auto') scores them from there. The refusal told
    to start windows past_window in, 'window_starts_for_split / generation_windows give such windows',
    the very windows generated; it now names the generated recording and that expression, also for a
    generated recording read back without its generation_stats (by its '-generated' session)."""
    import dataclasses

    from hf_neuroformer.generation import generation_windows
    from hf_neuroformer.io import load_recording
    from hf_neuroformer.windows import recorded_stretches
    from tiny_configs import quiet, small_config

    wake = quiet(load_recording, shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"), epoch="wake")
    rec = wake.select_units(range(4)).restrict(600.0, 660.0)
    cfg = small_config(current_window=0.1, past_window=0.5, dt_resolution=0.01, max_past_length=128,
                       split_block_length=10.0, split_gap=1.0)
    tok, model = untrained_model(rec, cfg)
    plan = quiet(plan_splits, rec, cfg)
    starts = np.sort(generation_windows(plan, "test", cfg)[0])[:12]  # a stretch's first 12 windows
    gen = nf.generate_spikes(model, tok, rec, starts, seed=0, progress=False)
    assert gen.n_spikes > 0 and len(recorded_stretches(gen.support)) == 1
    short = int(np.count_nonzero(starts < starts[0] + cfg.past_window - 1e-9))  # no whole past in the stretch
    assert short == 5
    said = (rf"^window_starts: window {12 - short} .*; {short} of 12 windows reach before their recorded time; "
            r"the recording "
            rf"'{rec.session}-generated' is a generated one, .*\({float(starts[0]):g} s here\).*"
            r"s = hf_neuroformer\.windows\.recorded_stretches\(recording\.support\); "
            r"past_clip_starts=s\[np\.searchsorted\(s\[:, 0\], starts, side='right'\) - 1, 0\]")
    shuffled = np.concatenate([starts[short:], starts[:short]])  # the first refused one after those with a past
    read_back = dataclasses.replace(gen, session=gen.session)  # a new object: no generation_stats
    assert getattr(read_back, "generation_stats", None) is None
    for g in (gen, read_back):
        with pytest.raises(ValueError, match=said):
            window_log_likelihoods(model, tok, g, shuffled)
    s = recorded_stretches(gen.support)
    clips = s[np.searchsorted(s[:, 0], starts, side="right") - 1, 0]  # the README's expression
    got = window_log_likelihoods(model, tok, gen, starts, past_clip_starts=clips)
    auto = window_log_likelihoods(model, tok, gen, starts, past_clip_starts="auto")
    np.testing.assert_array_equal(got["log_likelihood"], auto["log_likelihood"])
    assert np.isfinite(got["log_likelihood"]).all() and int(got["n_spikes"].sum()) == gen.n_spikes
    # the windows with a whole past in the generated stretch are scored without clips, and the same
    whole = window_log_likelihoods(model, tok, gen, starts[short:])
    np.testing.assert_array_equal(whole["log_likelihood"], got["log_likelihood"][short:])


@pytest.mark.parametrize("entry", ["window_log_likelihoods", "generate_spikes", "decode_windows",
                                   "attention_connectivity", "visual_attention_maps"])
def test_every_reader_of_windows_takes_past_clip_starts_trials_and_auto_as_the_processor_does(allen_video, entry):
    """Allen gratings (100-ms trials 100 ms apart, the time support their union). The processor and
    window_log_likelihoods took past_clip_starts='trials' / 'auto', and check_pasts_recorded's refusal
    told users that decode_windows and the attention analyses did too, but generate_spikes,
    decode_windows, attention_connectivity and visual_attention_maps refused both strings ("expected
    window starts as real numbers (s), got str"). Every one now resolves them as the processor does
    (windows.resolve_past_clip_starts): for windows 50 ms into trials with a 150-ms past, 'trials'
    and 'auto' (the start of the recorded stretch, here the trial) both give the clips at the trials'
    starts, so the results are those of the explicit clips; 'trials' on a recording without trials is
    refused naming the field."""
    import dataclasses

    from hf_neuroformer.analysis.connectivity import attention_connectivity
    from hf_neuroformer.analysis.visual_attention import visual_attention_maps
    from hf_neuroformer.finetuning import decode_windows
    from hf_neuroformer.windows import trial_at
    from tiny_configs import small_config

    rec = allen_video.select_units(range(20))
    video = {"name": "video", "source": "stimulus:frames", "kind": "video", "frame_shape": [16, 16], "num_frames": 3,
             "patch_size": [1, 8, 4], "window": [-0.02, 0.01]}
    cfg = small_config(current_window=0.01, past_window=0.15, dt_resolution=0.002, split_by="trials",
                       modalities=[video] if entry == "visual_attention_maps" else None,
                       decoding_targets=[{"name": "ry", "kind": "circular"}] if entry == "decode_windows" else None)
    if cfg.modalities:  # the training split's pixel statistics
        from hf_neuroformer.modalities import fit_modalities

        fit_modalities(rec, cfg, plan_splits(rec, cfg))
    tok, model = untrained_model(rec, cfg)
    if entry == "decode_windows":  # a decoder of a target the recording lacks (predicted, not compared with values)
        torch.manual_seed(0)
        model = nf.NeuroformerForBehaviorDecoding(cfg).eval()
    starts = rec.trials[1:4, 0] + 0.05  # 50 ms into trials 1-3: each past reaches into the gap before its trial
    clips = rec.trials[trial_at(rec.trials, starts), 0]

    def spikes_and_pasts(g):  # (not generation_stats' timings)
        return {"spike_times": g.spike_times, "unit_ids": g.unit_ids,
                "n_past_recorded": g.generation_stats["n_past_recorded"]}

    run = {
        "window_log_likelihoods": lambda r, c: window_log_likelihoods(model, tok, r, starts, past_clip_starts=c),
        "generate_spikes": lambda r, c: spikes_and_pasts(nf.generate_spikes(model, tok, r, starts, past_clip_starts=c,
                                                                            seed=0, progress=False)),
        "decode_windows": lambda r, c: decode_windows(model, tok, r, starts, past_clip_starts=c)[0],
        "attention_connectivity": lambda r, c: attention_connectivity(model, tok, r, starts, past_clip_starts=c),
        "visual_attention_maps": lambda r, c: visual_attention_maps(model, tok, r, starts, past_clip_starts=c),
    }[entry]
    explicit = run(rec, clips)

    def same(got, want):
        if isinstance(got, dict):
            assert got.keys() == want.keys()
            for k in got:
                same(got[k], want[k])
        elif hasattr(got, "columns"):  # a decode_windows table
            assert list(got.columns) == list(want.columns) and got.equals(want)
        elif isinstance(got, (np.ndarray, torch.Tensor, list, tuple)):
            np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
        else:
            assert got == want or (got != got and want != want)  # NaN == NaN

    for mode in ("trials", "auto"):
        same(run(rec, mode), explicit)
    without = dataclasses.replace(rec, trials=None, trial_info=None)
    with pytest.raises(ValueError, match=r"^past_clip_starts='trials': the recording has no trials"):
        run(without, "trials")


def test_split_bits_per_spike_warnings_point_at_the_line_that_called_it(small):
    """The recording's modality check of window_log_likelihoods (through the processor, stacklevel
    counted from a direct call) named likelihood.py when split_bits_per_spike called it; it now
    names the line that called split_bits_per_spike, as the overlapping-trials warning of its
    tiling does; called directly, window_log_likelihoods and decode_windows named torch's
    _contextlib.py (their two decorators' frames) and now name the caller's line."""
    import sys
    import warnings

    from hf_neuroformer.windows import SplitPlan

    from hf_neuroformer.recording import BehaviourSeries

    rec, _, _, cfg = small
    # a behaviour series on another clock (ms: most samples after the recording's 60 s) warns when the
    # model that reads it is given the recording
    t = np.arange(0.0, 600.0, 0.05)
    rec = nf.SpikeRecording(rec.spike_times, rec.unit_ids, unit_names=rec.unit_names, time_domain=rec.time_domain,
                            behaviour={"v": BehaviourSeries(t, np.sin(t), "a.u.")})
    cfg = nf.NeuroformerConfig(**{**cfg.to_dict(), "modalities": [
        {"name": "v", "source": "behaviour:v", "kind": "continuous", "mean": [0.0], "std": [1.0]}]})
    tok, model = untrained_model(rec, cfg)
    trials = {"train": np.array([[0.0, 30.0]]), "validation": np.array([[35.0, 40.0]]),
              "test": np.array([[45.0, 50.0], [47.0, 52.0]])}  # two test trials overlapping in [47, 50) s
    plan = SplitPlan("trials", trials, {"train": np.array([0]), "validation": np.array([1]),
                                        "test": np.array([2, 3])})
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        split_bits_per_spike(model, tok, rec, plan, "test", progress=False)
    ours = [w for w in got if "overlap in time" in str(w.message) or "the recorded time" in str(w.message)]
    assert len(ours) == 2 and {(w.filename, w.lineno) for w in ours} == {(__file__, line)}, [
        (str(w.message)[:60], w.filename, w.lineno) for w in got]
    # "trials" past clips of windows inside two overlapping trials: resolve_past_clip_starts' warning
    overlapping = nf.SpikeRecording(rec.spike_times, rec.unit_ids, unit_names=rec.unit_names,
                                    time_domain=rec.time_domain, trials=trials["test"], behaviour=rec.behaviour)
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        window_log_likelihoods(model, tok, overlapping, [47.5, 48.0], past_clip_starts="trials")
    said = {str(w.message).split(" ")[0] for w in got}  # the modality check, and the trials' overlap
    assert len(said) == 2 and {(w.filename, w.lineno) for w in got} == {(__file__, line)}, [
        (str(w.message)[:60], w.filename, w.lineno) for w in got]
    # decode_windows: the same check of the recording's modalities (also past the two decorators)
    from hf_neuroformer.finetuning import decode_windows

    torch.manual_seed(0)
    decoder = nf.NeuroformerForBehaviorDecoding(
        nf.NeuroformerConfig(**{**cfg.to_dict(), "decoding_targets": [{"name": "ry", "kind": "circular"}]})).eval()
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        decode_windows(decoder, tok, rec, [47.5, 48.0])
    ours = [w for w in got if "the recorded time" in str(w.message)]
    assert len(ours) == 1 and (ours[0].filename, ours[0].lineno) == (__file__, line), [
        (str(w.message)[:60], w.filename, w.lineno) for w in got]


def test_a_recording_with_only_some_of_the_model_units_warns_once_at_the_callers_line(small):
    """window_log_likelihoods and split_bits_per_spike scored a recording holding only some of the model's
    units of its session without a word (only the CLI warned, through check_recording_units): the missing
    units are read as silent and their probability goes to the others. Each warns once, at the caller's
    line; warn_absent_units=False (the CLI, which has warned) is silent, and gives the same numbers."""
    import warnings

    rec, tok, model, cfg = small
    sub = rec.select_units(["unit0", "unit1", "unit2"])
    assert sub.n_units == 3
    starts = np.array([10.0, 10.1, 20.0])

    def missing_warnings(call):
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            out = call()
        return out, [w for w in seen if "units the model was trained on" in str(w.message)]

    ll, seen = missing_warnings(lambda: window_log_likelihoods(model, tok, sub, starts))
    assert len(seen) == 1 and seen[0].filename == __file__, [(str(w.message), w.filename) for w in seen]
    assert str(seen[0].message).startswith("recording: this recording holds 3 of the 4 units the model was trained on")
    quiet, seen = missing_warnings(lambda: window_log_likelihoods(model, tok, sub, starts, warn_absent_units=False))
    assert seen == [] and np.array_equal(quiet["log_likelihood"], ll["log_likelihood"])
    _, seen = missing_warnings(lambda: window_log_likelihoods(model, tok, rec, starts))  # every unit: silent
    assert seen == []
    plan = plan_splits(rec, cfg)
    _, seen = missing_warnings(lambda: split_bits_per_spike(model, tok, sub, plan, "test", progress=False))
    assert len(seen) == 1 and seen[0].filename == __file__, [(str(w.message), w.filename) for w in seen]
    _, seen = missing_warnings(lambda: split_bits_per_spike(model, tok, sub, plan, "test", progress=False,
                                                            warn_absent_units=False))
    assert seen == []
