"""Fidelity metrics and count-based token baselines on hand-built data with hand-computed answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hf_neuroformer import SpikeRecording
from hf_neuroformer.metrics import (
    TokenBaselines,
    binned_count_correlation,
    compare_recordings,
    firing_rate_correlation,
    unit_id_f1,
)

NAMES = ["a", "b", "c"]


def rec(spikes, time_domain, support=None):
    """SpikeRecording from a list of (time, unit) pairs."""
    t = np.array([s[0] for s in spikes], dtype=float)
    u = np.array([s[1] for s in spikes], dtype=np.int64)
    return SpikeRecording.from_unsorted(t, u, unit_names=list(NAMES), time_domain=time_domain,
                                        time_support=support)


WINDOWS = np.array([[0.0, 1.0], [1.0, 2.0], [2.0, 3.0], [5.0, 6.0]])


# --------------------------------------------------------------------------- unit-id F1
def test_unit_id_f1_by_hand():
    real = rec([(0.1, 0), (0.5, 1), (0.7, 1),  # window 0: {a, b}
                (1.2, 2),  # window 1: {c}
                # window 2: nothing
                (5.5, 0), (5.6, 2),  # window 3: {a, c}
                (3.5, 1), (4.0, 2), (8.0, 0)],  # outside every window: ignored
               (0.0, 10.0))
    gen = rec([(0.2, 0), (0.9, 0),  # window 0: {a}    -> F1 = 2*1/(2+1) = 2/3
               (1.0, 0), (1.99, 1),  # window 1: {a, b} -> F1 = 0
               # window 2: both empty -> left out, counted
               (5.0, 0), (5.1, 2), (5.9, 1)],  # window 3: {a, b, c} -> 2*2/(2+3) = 4/5
              (0.0, 6.0), WINDOWS)
    out = unit_id_f1(real, gen)
    assert out["id_f1"] == pytest.approx((2 / 3 + 0 + 4 / 5) / 3, abs=1e-12)
    assert out["n_windows"] == 4
    assert out["n_windows_both_empty"] == 1


def test_unit_id_f1_half_open_windows():
    # a recorded spike at exactly a window's stop belongs to the next window, not this one
    real = rec([(1.0, 1)], (0.0, 10.0))
    gen = rec([(0.5, 0), (1.5, 1)], (0.0, 2.0), np.array([[0.0, 1.0], [1.0, 2.0]]))
    out = unit_id_f1(real, gen)
    # window 0: A = {}, B = {a} -> 0; window 1: A = {b}, B = {b} -> 1
    assert out["id_f1"] == pytest.approx(0.5)
    assert out["n_windows_both_empty"] == 0


def test_unit_id_f1_all_empty_is_nan():
    real = rec([(4.0, 0)], (0.0, 10.0))
    gen = SpikeRecording(np.zeros(0), np.zeros(0, dtype=np.int64), unit_names=list(NAMES),
                         time_domain=(0.0, 2.0), time_support=np.array([[0.0, 1.0], [1.0, 2.0]]))
    out = unit_id_f1(real, gen)
    assert math.isnan(out["id_f1"])
    assert out["n_windows"] == 2 and out["n_windows_both_empty"] == 2


# --------------------------------------------------------------------------- firing rates
def test_firing_rate_correlation_by_hand():
    # counts inside the support (total 3 s): real (1, 2, 3), generated (3, 2, 1)
    real = rec([(0.1, 0), (0.2, 1), (1.3, 1), (1.4, 2), (2.1, 2), (2.9, 2),
                (3.5, 0), (3.6, 0), (4.2, 0)],  # outside the generated support: ignored
               (0.0, 10.0))
    gen = rec([(0.1, 0), (1.1, 0), (2.2, 0), (0.4, 1), (1.9, 1), (2.5, 2)], (0.0, 3.0), WINDOWS[:3])
    out = firing_rate_correlation(real, gen)
    np.testing.assert_allclose(out["real_rates"], [1 / 3, 2 / 3, 1.0])
    np.testing.assert_allclose(out["generated_rates"], [1.0, 2 / 3, 1 / 3])
    assert out["rate_corr"] == pytest.approx(-1.0)
    # (1, 2, 3) against (1, 3, 2): dx = (-1, 0, 1), dy = (-1, 1, 0) -> r = 1 / sqrt(2 * 2) = 1/2
    gen2 = rec([(0.1, 0), (0.2, 1), (1.1, 1), (1.2, 1), (2.2, 2), (2.3, 2)], (0.0, 3.0), WINDOWS[:3])
    assert firing_rate_correlation(real, gen2)["rate_corr"] == pytest.approx(0.5)


def test_firing_rate_correlation_constant_rates_is_nan():
    real = rec([(0.1, 0), (0.2, 1), (0.3, 2)], (0.0, 1.0))
    gen = rec([(0.1, 0), (0.5, 1), (0.6, 2), (0.7, 2)], (0.0, 1.0))
    assert math.isnan(firing_rate_correlation(real, gen)["rate_corr"])


# --------------------------------------------------------------------------- binned counts
def test_binned_count_correlation_by_hand():
    # support [0, 2.2): bins [0,.5) [.5,1) [1,1.5) [1.5,2) and a partial [2, 2.2) dropped
    centres = [0.25, 0.75, 1.25, 1.75]
    real_counts = {0: [1, 0, 2, 1], 1: [0, 1, 0, 1], 2: [1, 1, 1, 1]}
    gen_counts = {0: [2, 0, 4, 2], 1: [0, 1, 1, 1], 2: [0, 1, 0, 0]}

    def spikes(counts):
        out = []
        for u, cs in counts.items():
            for c, t in zip(cs, centres):
                out += [(t + 0.01 * k, u) for k in range(c)]
        return out

    real_sp = spikes(real_counts) + [(2.1, 2), (3.0, 0)]  # in the partial bin / outside the support
    real = rec(real_sp, (0.0, 4.0))
    gen = rec(spikes(gen_counts), (0.0, 2.2))
    out = binned_count_correlation(real, gen, bin_size=0.5)
    assert out["n_bins"] == 4 and out["n_partial_bins_dropped"] == 1 and out["bin_size_s"] == 0.5
    per_unit = out["binned_count_corr_per_unit"]
    assert per_unit[0] == pytest.approx(1.0)  # gen = 2 * real
    # dx = (-.5, .5, -.5, .5), dy = (-.75, .25, .25, .25): sum dx dy = .5, sum dx^2 = 1, sum dy^2 = .75
    assert per_unit[1] == pytest.approx(0.5 / math.sqrt(0.75))
    assert per_unit[2] is None  # real counts constant (the spike in the partial bin is not counted)
    assert out["n_units_undefined"] == 1
    assert out["binned_count_corr_mean"] == pytest.approx((1.0 + 1 / math.sqrt(3)) / 2)


def test_binned_count_correlation_spike_on_bin_edge():
    # 0.5 is the start of bin 1 (half-open bins)
    real = rec([(0.5, 0), (1.2, 0), (1.3, 0)], (0.0, 2.0))
    gen = rec([(0.1, 0), (1.2, 0), (1.3, 0)], (0.0, 1.5))
    out = binned_count_correlation(real, gen, bin_size=0.5)
    # real unit a: (0, 1, 2); generated: (1, 0, 2) -> dx=(-1,0,1), dy=(0,-1,1): r = 1/2
    assert out["binned_count_corr_per_unit"][0] == pytest.approx(0.5)
    assert out["n_partial_bins_dropped"] == 0 and out["n_units_undefined"] == 2
    with pytest.raises(ValueError, match="bin_size"):
        binned_count_correlation(real, gen, bin_size=0.0)


# --------------------------------------------------------------------------- compare_recordings
def test_compare_identical_recordings():
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0.0, 6.0, 300))
    u = rng.choice(3, size=300, p=[0.6, 0.3, 0.1])
    real = SpikeRecording(t, u, unit_names=list(NAMES), time_domain=(0.0, 6.0))
    gen = SpikeRecording(t, u, unit_names=list(NAMES), time_domain=(0.0, 6.0),
                         time_support=np.array([[0.0, 3.0], [3.0, 6.0]]))
    out = compare_recordings(real, gen, bin_size=0.25)
    assert out["id_f1"] == 1.0 and out["n_windows"] == 2 and out["n_windows_both_empty"] == 0
    assert out["rate_corr"] == pytest.approx(1.0)
    assert out["binned_count_corr_mean"] == pytest.approx(1.0)
    assert out["n_bins"] == 24
    assert out["n_real_spikes"] == 300 and out["n_generated_spikes"] == 300
    assert out["support_duration_s"] == pytest.approx(6.0)
    np.testing.assert_allclose(out["real_rates"], np.bincount(u, minlength=3) / 6.0)


def test_compare_counts_real_spikes_inside_support_only():
    real = rec([(0.2, 0), (0.4, 1), (1.5, 2), (3.5, 0), (5.2, 1)], (0.0, 10.0))
    gen = rec([(0.3, 0), (5.5, 1)], (0.0, 6.0), WINDOWS)
    out = compare_recordings(real, gen)
    assert out["n_real_spikes"] == 4  # 0.2, 0.4, 1.5, 5.2 lie in the windows; 3.5 does not
    assert out["n_generated_spikes"] == 2
    assert out["support_duration_s"] == pytest.approx(4.0)


def test_pair_checks():
    real = rec([(0.1, 0)], (0.0, 1.0))
    other = SpikeRecording(np.array([0.1]), np.array([0]), unit_names=["a", "b"], time_domain=(0.0, 1.0))
    with pytest.raises(ValueError, match="unit"):
        unit_id_f1(real, other)
    no_domain = SpikeRecording(np.zeros(0), np.zeros(0, dtype=np.int64), unit_names=list(NAMES))
    with pytest.raises(ValueError, match="time_domain"):
        compare_recordings(real, no_domain)
    # same number of units, other names: generated from another recording
    renamed = SpikeRecording(np.array([0.1]), np.array([0]), unit_names=[n + "x" for n in NAMES],
                             time_domain=(0.0, 1.0))
    with pytest.raises(ValueError, match="another recording"):
        compare_recordings(real, renamed)
    # generated windows outside the real recording's time domain
    late = SpikeRecording(np.array([5.1]), np.array([0]), unit_names=list(NAMES), time_domain=(5.0, 6.0))
    with pytest.raises(ValueError, match="covers"):
        compare_recordings(real, late)


# --------------------------------------------------------------------------- token baselines
# vocabulary: 0 pad, 1 bos, 2 eos, units 3, 4, 5, and id 6 which is not a unit
TRAIN = [
    # prev = 4 (last past token): pairs (4 -> 3, dt 0), (3 -> 5, dt 2)
    {"input_ids": [1, 3, 5, 2], "dt_ids": [0, 0, 2, 2], "past_input_ids": [1, 4]},
    # empty past: pairs (none -> 3, dt 1), (3 -> 3, dt 1), (3 -> 4, dt 3); after EOS: ignored
    {"input_ids": [1, 3, 3, 4, 2, 5, 5], "dt_ids": [0, 1, 1, 3, 3, 0, 0], "past_input_ids": [1]},
]
TEST = [
    # prev = 3 (past padding is skipped): pairs (3 -> 4, dt 1), (4 -> 5, dt 3)
    {"input_ids": [1, 4, 5, 2], "dt_ids": [0, 1, 3, 3], "past_input_ids": [1, 5, 3, 0, 0]},
    # padded, truncated-style window without EOS: pair (none -> 5, dt 0)
    {"input_ids": [1, 5, 0, 0], "dt_ids": [0, 0, 0, 0], "past_input_ids": [1]},
]


def test_token_baselines_by_hand():
    tb = TokenBaselines(vocab_size=7, unit_token_ids=[5, 3, 4, 3], num_dt_bins=4, alpha=1.0)
    with pytest.raises(RuntimeError, match="fit"):
        tb.score(TEST)
    tb.fit(TRAIN)
    out = tb.score(TEST)
    assert out["n_spike_tokens"] == 3
    # unigram: train counts (3: 3, 4: 1, 5: 1) + 1 -> (4, 2, 2) / 8; test units 4, 5, 5
    assert out["unigram_id_nll"] == pytest.approx(-(3 * math.log(2 / 8)) / 3)
    # Markov rows (+1 over units 3, 4, 5):
    #   after 3: counts (3:1, 4:1, 5:1) -> (2, 2, 2)/6;  after 4: (3:1) -> (2, 1, 1)/4
    #   no previous spike: (3:1) -> (2, 1, 1)/4;        after 5: none -> (1, 1, 1)/3
    # test: P(4 | 3) = 2/6, P(5 | 4) = 1/4, P(5 | none) = 1/4
    assert out["markov_id_nll"] == pytest.approx(-(math.log(2 / 6) + math.log(1 / 4) + math.log(1 / 4)) / 3)
    # dt: train bins (0:1, 1:2, 2:1, 3:1) + 1 -> (2, 3, 2, 2)/9; test bins 1, 3, 0
    assert out["marginal_dt_nll"] == pytest.approx(-(math.log(3 / 9) + math.log(2 / 9) + math.log(2 / 9)) / 3)
    # the smoothed distributions put no mass on specials or on the non-unit id 6
    assert tb.p_uni[[0, 1, 2, 6]].sum() == 0 and tb.p_uni.sum() == pytest.approx(1.0)


def test_token_baselines_alpha_and_markov_context():
    train = [
        # empty past: (none -> 3, dt 0), (3 -> 4, dt 1), (4 -> 4, dt 1), (4 -> 5, dt 3)
        {"input_ids": [1, 3, 4, 4, 5, 2], "dt_ids": [0, 0, 1, 1, 3, 3], "past_input_ids": [1]},
        # past ends with 5: (5 -> 5, dt 2), (5 -> 3, dt 2)
        {"input_ids": [1, 5, 3, 2], "dt_ids": [0, 2, 2, 2], "past_input_ids": [1, 4, 5]},
    ]
    tb = TokenBaselines(vocab_size=6, unit_token_ids=[3, 4, 5], num_dt_bins=4, alpha=0.5).fit(train)
    # add-0.5 Markov rows over units (3, 4, 5):
    #   none: (1.5, .5, .5)/2.5   after 3: (.5, 1.5, .5)/2.5
    #   after 4: (.5, 1.5, 1.5)/3.5   after 5: (1.5, .5, 1.5)/3.5
    # the first spike's context is the LAST past token (3): P(4 | 3) = 1.5/2.5; the first past
    # token (5) would give .5/3.5, an ignored past .5/2.5, the one before last (4) 1.5/3.5
    ex = [{"input_ids": [1, 4, 2], "dt_ids": [0, 1, 1], "past_input_ids": [1, 5, 4, 3]}]
    out = tb.score(ex)
    assert out["markov_id_nll"] == pytest.approx(-math.log(1.5 / 2.5))
    # unigram counts (2, 2, 2) -> uniform
    assert out["unigram_id_nll"] == pytest.approx(math.log(3))
    # dt counts (1, 2, 2, 1) + .5 -> (1.5, 2.5, 2.5, 1.5)/8
    assert out["marginal_dt_nll"] == pytest.approx(-math.log(2.5 / 8))
    # empty past -> "none" row; then the context is the previous spike of the window (4)
    ex2 = [{"input_ids": [1, 4, 5, 2], "dt_ids": [0, 0, 3, 3], "past_input_ids": [1]}]
    out2 = tb.score(ex2)
    assert out2["markov_id_nll"] == pytest.approx(-(math.log(0.5 / 2.5) + math.log(1.5 / 3.5)) / 2)
    assert out2["marginal_dt_nll"] == pytest.approx(-(math.log(1.5 / 8) + math.log(1.5 / 8)) / 2)


def test_token_baselines_edge_cases():
    tb = TokenBaselines(vocab_size=7, unit_token_ids=[3, 4, 5], num_dt_bins=4).fit(TRAIN)
    with pytest.raises(ValueError, match="6"):
        tb.score([{"input_ids": [1, 6, 2], "dt_ids": [0, 0, 0], "past_input_ids": [1]}])
    empty = tb.score([{"input_ids": [1, 2], "dt_ids": [0, 0], "past_input_ids": [1, 3]}])
    assert empty["n_spike_tokens"] == 0 and math.isnan(empty["unigram_id_nll"])
