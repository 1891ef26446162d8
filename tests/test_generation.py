"""Joint unit-id + dt sampling, window by window."""

import numpy as np
import pytest
import torch

import hf_neuroformer as nf
from hf_neuroformer.generation import generate_split
from hf_neuroformer.windows import plan_splits, window_starts_for_split


@pytest.fixture(scope="module")
def setup():
    rec = nf.simulate_coupled_network(n_units=6, duration=40.0, seed=2).recording
    # a second session's units share the vocabulary but must never be generated for this one
    other = nf.simulate_coupled_network(n_units=3, duration=5.0, seed=3).recording
    other.session = "other"
    cfg = nf.NeuroformerConfig(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=20,
                               max_past_length=40, hidden_size=32, num_attention_heads=4, intermediate_size=64,
                               split_block_length=5.0)
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(other)
    tok.add_units(rec)
    cfg.vocab_size = len(tok)
    torch.manual_seed(0)
    model = nf.NeuroformerForPreTraining(cfg).eval()
    plan = plan_splits(rec, cfg)
    starts, _ = window_starts_for_split(plan, "test", cfg)
    return rec, tok, model, plan, starts


def test_same_seed_same_spikes_other_seed_differs(setup):
    rec, tok, model, _, starts = setup
    a = nf.generate_spikes(model, tok, rec, starts, seed=5, progress=False, batch_size=7)
    b = nf.generate_spikes(model, tok, rec, starts, seed=5, progress=False, batch_size=7)
    c = nf.generate_spikes(model, tok, rec, starts, seed=6, progress=False, batch_size=7)
    assert a.n_spikes > 0
    np.testing.assert_array_equal(a.spike_times, b.spike_times)
    np.testing.assert_array_equal(a.unit_ids, b.unit_ids)
    assert a.n_spikes != c.n_spikes or not np.array_equal(a.unit_ids, c.unit_ids)


def test_generated_recording_is_well_formed(setup):
    rec, tok, model, _, starts = setup
    g = nf.generate_spikes(model, tok, rec, starts, seed=1, progress=False)
    assert g.unit_names == rec.unit_names and g.session == f"{rec.session}-generated"
    assert g.time_support.shape == (len(starts), 2)
    np.testing.assert_allclose(g.time_support[:, 0], np.sort(starts))
    # only this recording's units (the other session's tokens are masked out)
    assert g.unit_ids.min() >= 0 and g.unit_ids.max() < rec.n_units
    # every spike lies in one window, at a dt-bin centre
    idx = np.searchsorted(g.time_support[:, 0], g.spike_times, side="right") - 1
    assert np.all(g.spike_times < g.time_support[idx, 1])
    offs = (g.spike_times - g.time_support[idx, 0]) / tok.dt_resolution - 0.5
    np.testing.assert_allclose(offs, np.round(offs), atol=1e-6)
    assert g.generation_stats["n_windows"] == len(starts)


def test_greedy_is_deterministic_and_time_ordered(setup):
    rec, tok, model, _, starts = setup
    g1 = nf.generate_spikes(model, tok, rec, starts[:20], greedy=True, seed=0, progress=False)
    g2 = nf.generate_spikes(model, tok, rec, starts[:20], greedy=True, seed=99, progress=False)
    np.testing.assert_array_equal(g1.spike_times, g2.spike_times)


def test_sampling_follows_the_model_distribution(setup):
    """With a model whose id head prefers one unit, that unit dominates the generated spikes."""
    rec, tok, model, _, starts = setup
    import copy

    m = copy.deepcopy(model)
    target = int(tok.unit_token_ids(rec)[2])
    with torch.no_grad():
        m.id_head.bias[target] += 8.0
    g = nf.generate_spikes(m, tok, rec, starts[:30], seed=0, progress=False)
    assert g.n_spikes > 0
    assert np.mean(g.unit_ids == 2) > 0.8


def test_top_p_and_temperature_validation(setup):
    rec, tok, model, _, starts = setup
    with pytest.raises(ValueError, match="temperature"):
        nf.generate_spikes(model, tok, rec, starts[:2], temperature=0.0, progress=False)
    with pytest.raises(ValueError, match="top_p"):
        nf.generate_spikes(model, tok, rec, starts[:2], top_p=1.5, progress=False)
    with pytest.raises(ValueError, match="non-overlapping"):
        nf.generate_spikes(model, tok, rec, [10.0, 10.05], progress=False)


def test_generate_split_rejects_another_recording(setup):
    rec, tok, model, plan, _ = setup
    shifted = rec.restrict(0.0, 10.0)
    if plan.segments["test"][:, 1].max() > 10.0:
        with pytest.raises(ValueError, match="recording"):
            generate_split(model, tok, shifted, plan, "test", progress=False)
    g = generate_split(model, tok, rec, plan, "test", progress=False, seed=0)
    assert g.generation_stats["n_windows"] > 0


def test_spikes_stay_in_their_window_when_bins_do_not_divide_it():
    """current_window 0.1 s with 0.03 s bins: the last bin is partial and its spikes must stay inside."""
    rec = nf.simulate_coupled_network(n_units=4, duration=20.0, seed=4).recording
    cfg = nf.NeuroformerConfig(current_window=0.1, past_window=0.2, dt_resolution=0.03, max_window_length=16,
                               max_past_length=32, hidden_size=16, num_attention_heads=2, intermediate_size=32)
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(rec)
    cfg.vocab_size = len(tok)
    torch.manual_seed(0)
    model = nf.NeuroformerForPreTraining(cfg).eval()
    with torch.no_grad():
        model.dt_head.bias[3] += 10.0  # always the partial last bin [0.09, 0.1)
    starts = 10.0 + 0.1 * np.arange(5)
    g = nf.generate_spikes(model, tok, rec, starts, seed=0, progress=False)
    assert g.n_spikes > 0
    idx = np.searchsorted(g.time_support[:, 0], g.spike_times, side="right") - 1
    off = g.spike_times - g.time_support[idx, 0]
    np.testing.assert_allclose(off, 0.095, atol=1e-9)
