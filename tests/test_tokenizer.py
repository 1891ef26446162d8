"""NeuroformerTokenizer: specials, the window encoding, its inverse, truncation, persistence.

The expected values below come from the documented rules (module docstring of
``tokenization_neuroformer`` and ``NeuroformerConfig``): ``dt_id = floor(dt / dt_resolution)``,
decoding at the bin centre, order by dt bin then unit token id, half-open windows
``[start, start + current_window)`` and ``[start - past_window, start)``, keep the earliest
current spikes and the latest past spikes.
"""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hf_neuroformer  # noqa: F401  (registers the Auto classes)
from hf_neuroformer import NeuroformerTokenizer, SpikeRecording, UnknownUnitError

from tiny_configs import set_nwb_session_id

PAD, BOS, EOS = 0, 1, 2
UNITS = [f"sess/u{i}" for i in range(8)]  # token ids 3 .. 10


def make_tok(**kw) -> NeuroformerTokenizer:
    kw.setdefault("unit_tokens", UNITS)
    return NeuroformerTokenizer(**kw)


# --------------------------------------------------------------------------- round trip (property)
@st.composite
def windows(draw):
    dt_res = draw(st.sampled_from([0.001, 0.002, 0.003, 0.005, 0.01, 0.02]))
    # current windows that are and are not a whole number of dt bins
    n_bins = draw(st.integers(1, 40))
    frac = draw(st.sampled_from([0.0, 0.0, 0.3, 0.77]))
    current_window = dt_res * (n_bins + frac)
    w0 = draw(st.one_of(st.just(0.0), st.floats(0.0, 5000.0, allow_nan=False, allow_infinity=False)))
    n = draw(st.integers(0, 40))
    offsets = draw(st.lists(st.floats(0.0, 1.0, exclude_max=True), min_size=n, max_size=n))
    units = draw(st.lists(st.integers(3, 3 + len(UNITS) - 1), min_size=n, max_size=n))
    # spikes outside the window (before and after) must be ignored
    n_out = draw(st.integers(0, 5))
    out_off = draw(st.lists(st.floats(0.0, 3.0), min_size=n_out, max_size=n_out))
    out_units = draw(st.lists(st.integers(3, 3 + len(UNITS) - 1), min_size=n_out, max_size=n_out))
    return dt_res, current_window, w0, np.asarray(offsets), np.asarray(units, dtype=np.int64), \
        np.asarray(out_off), np.asarray(out_units, dtype=np.int64)


@settings(max_examples=150, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(windows())
def test_encode_decode_round_trip(case):
    dt_res, cw, w0, offsets, units, out_off, out_units = case
    tok = make_tok(dt_resolution=dt_res, current_window=cw, past_window=0.5, max_window_length=200)
    w0 = round(w0, 9)  # documented: a window's start and end lie on a 1 ns grid
    w1 = round(w0 + cw, 9)
    t_in = w0 + offsets * cw
    keep = (t_in >= w0) & (t_in < w1)  # float rounding may push w0 + offset onto w1
    t_in, u_in = t_in[keep], units[keep]
    # outside spikes: half after the window end (>= w1), half before w0
    t_out = np.concatenate([w1 + out_off[::2], w0 - 0.01 - out_off[1::2]])
    u_out = np.concatenate([out_units[::2], out_units[1::2]])
    t_all = np.concatenate([t_in, t_out])
    u_all = np.concatenate([u_in, u_out])
    order = np.argsort(t_all, kind="stable")
    t_all, u_all = t_all[order], u_all[order]

    enc = tok.encode_window(t_all, u_all, w0)
    n = len(t_in)
    assert enc["n_spikes"] == n and enc["n_truncated"] == 0
    assert enc["input_ids"][0] == BOS and enc["dt_ids"][0] == 0
    assert enc["input_ids"][-1] == EOS and len(enc["input_ids"]) == n + 2
    assert len(enc["dt_ids"]) == len(enc["input_ids"])
    assert all(0 <= d < tok.num_dt_bins for d in enc["dt_ids"])

    times, dec_units = tok.decode_window(enc["input_ids"], enc["dt_ids"], w0)
    assert times.dtype == np.float64 and dec_units.dtype == np.int64
    # same multiset of units
    assert sorted(dec_units.tolist()) == sorted(u_in.tolist())
    # the documented order: dt bin, then unit token id
    keys = list(zip(enc["dt_ids"][1:-1], enc["input_ids"][1:-1]))
    assert keys == sorted(keys)
    # pair decoded spikes with their sources: sources sorted by (documented dt bin, unit)
    src_bin = np.clip(np.floor((t_in - w0) / dt_res + 1e-9), 0, tok.num_dt_bins - 1).astype(int)
    src = np.lexsort((u_in, src_bin))
    np.testing.assert_array_equal(dec_units, u_in[src])
    assert np.all(np.abs(times - t_in[src]) <= dt_res / 2 + 1e-9)
    # independent pairing (no bin arithmetic): per unit, sorted times match one to one
    for u in np.unique(u_in):
        a = np.sort(t_in[u_in == u])
        b = np.sort(times[dec_units == u])
        assert np.all(np.abs(a - b) <= dt_res / 2 + 1e-9)


def test_dt_bins_helpers():
    tok = make_tok(dt_resolution=0.004, current_window=0.01)  # 2.5 bins -> 3 classes
    assert tok.num_dt_bins == 3
    dt = np.array([0.0, 0.0039, 0.004, 0.0079, 0.0081, 0.0099])
    np.testing.assert_array_equal(tok.dt_to_id(dt), [0, 0, 1, 1, 2, 2])
    np.testing.assert_array_equal(tok.dt_to_id(np.array([-0.001, 0.5])), [0, 2])  # clipped
    # NaN and inf have no bin: they were mapped silently to bin 0 (+inf too, though past the window)
    for bad, shown in ((np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")):
        with pytest.raises(ValueError, match=rf"^dt: expected finite seconds from the window start, got {shown} at "
                                             r"flat index 1 \(1 of 3 values are NaN or infinite\)"):
            tok.dt_to_id(np.array([0.001, bad, 0.002]))
    with pytest.raises(ValueError, match=r"^dt: .*got nan at flat index 0 \(1 of 1 values"):
        tok.dt_to_id(float("nan"))
    assert tok.dt_to_id(0.0042) == 1 and tok.dt_to_id(np.zeros((2, 0))).shape == (2, 0)
    # the last bin is partial ([0.008, 0.01)): its centre is 0.009, inside the window
    np.testing.assert_allclose(tok.id_to_dt(np.array([0, 1, 2])), [0.002, 0.006, 0.009])
    # decode places a spike at the same bin centre as id_to_dt
    times, _ = tok.decode_window([BOS, 3, 4, EOS], [0, 1, 2, 2], 7.0)
    np.testing.assert_allclose(times, 7.0 + tok.id_to_dt(np.array([1, 2])))


def test_id_to_dt_refuses_ids_outside_the_window():
    """An id past the last dt class (or negative) has no bin inside the window; it used to be
    decoded to a time outside it (id 5 of 3 classes -> 0.015 s in a 0.01 s window)."""
    tok = make_tok(dt_resolution=0.004, current_window=0.01)  # 3 classes
    for bad in (3, 5, -1):
        with pytest.raises(ValueError, match=r"dt_ids: expected dt bin ids in \[0, 3\)"):
            tok.id_to_dt(np.array([0, bad]))
        with pytest.raises(ValueError, match="dt_ids"):
            tok.decode_window([BOS, 3, 4, EOS], [0, 1, bad, 0], 7.0)
    assert tok.id_to_dt(np.array([], dtype=np.int64)).shape == (0,)


# --------------------------------------------------------------------------- ordering
def test_order_is_dt_bin_then_unit_id():
    tok = make_tok(dt_resolution=0.01, current_window=0.1, past_window=0.0)
    w0 = 10.0
    # (time, token id): inside bin 0 time order (5 then 3) disagrees with unit order;
    # across bins a low unit id (3, bin 2) comes after a high one (6, bin 1);
    # two spikes of one unit in one bin stay two tokens.
    spikes = [(10.001, 5), (10.004, 3), (10.012, 6), (10.025, 3), (10.031, 4), (10.033, 4), (10.0995, 7)]
    t = np.array([s[0] for s in spikes])
    u = np.array([s[1] for s in spikes])
    enc = tok.encode_window(t, u, w0)
    assert enc["input_ids"] == [BOS, 3, 5, 6, 3, 4, 4, 7, EOS]
    assert enc["dt_ids"] == [0, 0, 0, 1, 2, 3, 3, 9, 9]  # EOS carries the last spike's bin
    times, units = tok.decode_window(enc["input_ids"], enc["dt_ids"], w0)
    np.testing.assert_allclose(times, [10.005, 10.005, 10.015, 10.025, 10.035, 10.035, 10.095])
    np.testing.assert_array_equal(units, [3, 5, 6, 3, 4, 4, 7])


def test_decode_stops_at_eos_and_pad_and_skips_bos():
    tok = make_tok(dt_resolution=0.01, current_window=0.1)
    times, units = tok.decode_window([BOS, 3, 4, EOS, 5, 6], [0, 1, 2, 2, 3, 4], 1.0)
    np.testing.assert_array_equal(units, [3, 4])
    np.testing.assert_allclose(times, [1.015, 1.025])
    times, units = tok.decode_window([BOS, 7, PAD, 5], [0, 4, 0, 0], 0.0)
    np.testing.assert_array_equal(units, [7])
    np.testing.assert_allclose(times, [0.045])


def test_empty_window():
    tok = make_tok(dt_resolution=0.01, current_window=0.1, past_window=0.2)
    enc = tok.encode_window(np.array([0.5]), np.array([3]), 10.0)
    assert enc["input_ids"] == [BOS, EOS] and enc["dt_ids"] == [0, 0]
    assert enc["past_input_ids"] == [BOS] and enc["past_dt_ids"] == [0]
    assert enc["n_spikes"] == 0 and enc["n_truncated"] == 0 and enc["n_past_truncated"] == 0


# --------------------------------------------------------------------------- specials and text
def test_special_ids_and_text_call():
    tok = make_tok()
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)
    assert tok.convert_ids_to_tokens([0, 1, 2]) == ["<pad>", "<bos>", "<eos>"]
    assert len(tok) == 3 + len(UNITS) == tok.vocab_size
    assert tok.get_vocab()["sess/u0"] == 3 and tok.get_vocab()["sess/u7"] == 10
    assert tok("sess/u1 sess/u2")["input_ids"] == [4, 5]
    assert tok("sess/u7  sess/u0 sess/u7")["input_ids"] == [10, 3, 10]
    assert tok.convert_tokens_to_string(tok.convert_ids_to_tokens([4, 5])) == "sess/u1 sess/u2"


def test_convert_ids_to_tokens_takes_numpy_and_torch_integers_and_refuses_floats_and_bools():
    """transformers' convert_ids_to_tokens takes an int or a list: np.int64(4) failed with "'numpy.int64'
    object is not iterable", a float id was truncated ([4.7] read as id 4) and a bool read as id 0 / 1.
    numpy / torch integer scalars and 1-D arrays now give what the same Python ints give; floats, bools,
    text and 2-D arrays are refused, naming the id."""
    import torch

    tok = make_tok()
    one, two = tok.convert_ids_to_tokens(4), tok.convert_ids_to_tokens([4, 5])
    for x in (np.int64(4), np.int32(4), np.uint8(4), np.array(4), torch.tensor(4)):
        assert tok.convert_ids_to_tokens(x) == one, repr(x)
    for x in (np.array([4, 5]), np.array([4, 5], dtype=np.int32), (4, 5), [np.int64(4), np.int64(5)],
              torch.tensor([4, 5]), list(torch.tensor([4, 5]))):
        assert tok.convert_ids_to_tokens(x) == two, repr(x)
    assert tok.convert_ids_to_tokens(np.array([1, 4, 2]), skip_special_tokens=True) == [one]
    assert tok.decode(np.array([4, 5])) == tok.decode([4, 5])
    # exported from the package, as UnknownUnitError is (it was reachable only from the module)
    import hf_neuroformer
    from hf_neuroformer import TokenIdError

    assert "TokenIdError" in hf_neuroformer.__all__

    for x, match in ((4.0, r"^ids: expected a token id \(an integer\).*got float 4\.0"),
                     (True, r"^ids: .*got bool True"),
                     ("4", r"^ids: .*got str '4'"),
                     ([4, 4.7], r"^ids\[1\]: expected an integer token id, got float 4\.7"),
                     ([np.True_], r"^ids\[0\]: expected an integer token id, got bool"),
                     (np.array([4.0, 5.0]), r"^ids: expected integer token ids, got an array of dtype float64"),
                     (torch.tensor([4.0]), r"dtype float32"),
                     (np.array([True]), r"dtype bool"),
                     (np.array([[4, 5]]), r"^ids: expected one token id or a 1-D sequence of them, got an array of "
                                          r"shape \(1, 2\)")):
        with pytest.raises(TokenIdError, match=match):
            tok.convert_ids_to_tokens(x)


def test_the_first_unit_id_is_the_number_of_special_tokens():
    """The tokenizer checked unit ids against a literal 3; the first unit id is a named constant,
    FIRST_UNIT_ID, the number of special tokens, shared with the config (num_special_tokens)."""
    from hf_neuroformer.configuration_neuroformer import FIRST_UNIT_ID, SPECIAL_TOKEN_IDS

    tok = make_tok()
    assert FIRST_UNIT_ID == len(tok.all_special_ids) == len(SPECIAL_TOKEN_IDS) == max(tok.all_special_ids) + 1
    assert tok.convert_tokens_to_ids(UNITS[0]) == FIRST_UNIT_ID == hf_neuroformer.NeuroformerConfig().num_special_tokens
    assert tok.add_units(["other/x"]) == [FIRST_UNIT_ID + len(UNITS)]
    # the id just below the first unit (EOS) is refused as a spike's unit, the first unit taken
    with pytest.raises(UnknownUnitError, match=rf"spike 0 has token id {FIRST_UNIT_ID - 1}, not a unit of the "
                                               rf"vocabulary \(unit ids {FIRST_UNIT_ID} \.\. {len(tok) - 1}\)"):
        tok.encode_window(np.array([10.0]), np.array([FIRST_UNIT_ID - 1]), 10.0)
    assert tok.encode_window(np.array([10.0]), np.array([FIRST_UNIT_ID]), 10.0)["input_ids"] == [BOS, FIRST_UNIT_ID,
                                                                                                  EOS]


def test_window_starts_with_bos_past_starts_with_bos():
    tok = make_tok(dt_resolution=0.01, current_window=0.1, past_window=0.3)
    t = np.array([9.75, 9.9, 10.02, 10.05])
    u = np.array([4, 3, 6, 5])
    enc = tok.encode_window(t, u, 10.0)
    assert enc["input_ids"][0] == BOS and enc["dt_ids"][0] == 0 and enc["input_ids"][-1] == EOS
    assert enc["past_input_ids"][0] == BOS and enc["past_dt_ids"][0] == 0
    assert enc["past_input_ids"] == [BOS, 4, 3]


def test_unknown_unit_token_raises_naming_it():
    tok = make_tok()
    with pytest.raises(UnknownUnitError, match="sess/nope"):
        tok("sess/u1 sess/nope")
    assert issubclass(UnknownUnitError, ValueError)
    with pytest.raises(ValueError):
        tok.convert_tokens_to_ids("other/u1")


def test_unit_token_ids_missing_unit_names_add_units():
    rec = SpikeRecording(np.array([0.1, 0.2, 0.3]), np.array([0, 1, 2]), unit_names=["a", "b", "c"], session="s")
    tok = NeuroformerTokenizer(unit_tokens=["s/a", "s/c"])
    with pytest.raises(UnknownUnitError, match="add_units") as err:
        tok.unit_token_ids(rec)
    assert "s/b" in str(err.value)
    tok.add_units(rec)
    ids = tok.unit_token_ids(rec)
    assert ids.dtype == np.int64
    np.testing.assert_array_equal(ids, [3, 5, 4])  # s/a and s/c kept ids 3 and 4; s/b is new


def test_unit_token_with_whitespace_rejected():
    with pytest.raises(ValueError, match="whitespace"):
        NeuroformerTokenizer(unit_tokens=["sess/unit 1"])


def test_a_special_token_is_not_taken_as_a_unit():
    """add_units(['<pad>']) returned [0], the pad id, as if '<pad>' were a known unit."""
    tok = NeuroformerTokenizer(unit_tokens=["s/0"])
    for special in (tok.pad_token, tok.bos_token, tok.eos_token):
        with pytest.raises(ValueError, match="is a special token"):
            tok.add_units([special])
    assert tok.add_units(["s/0", "s/1"]) == [3, 4]
    # a unit whose name holds a special token's text is a unit token like any other (text input is a
    # whitespace-separated list of them): the text path split it at the special and refused 's/'
    tok.add_units(["s/<eos>", "<bos>s"])
    assert tok("s/<eos> <bos>s s/0")["input_ids"] == [5, 6, 3]
    assert tok.decode(tok("s/<eos>")["input_ids"]) == "s/<eos>"
    assert tok("s/1<eos>")["input_ids"] == [4, EOS]  # a special glued to a unit is still split off


@pytest.mark.parametrize("field, value, expect", [
    ("past_window", float("nan"), "a finite number >= 0"), ("past_window", float("inf"), "a finite number >= 0"),
    ("current_window", float("nan"), "a positive number"), ("current_window", float("inf"), "a positive number"),
    ("dt_resolution", float("nan"), "a positive number"), ("max_window_length", 2, ">= 3"),
    ("max_past_length", 0, ">= 1"), ("max_window_length", 16.5, "an integer")])
def test_window_settings_follow_the_config_rule(field, value, expect):
    """NaN / inf windows failed later in math.ceil; max_window_length < 3 and max_past_length < 1 were accepted
    and encode_window then reported nonsense (1 spike with n_truncated=2). Same rule, same words as the config."""
    with pytest.raises(ValueError, match=rf"NeuroformerTokenizer\.{field}: expected {re.escape(expect)}"):
        make_tok(**{field: value})
    with pytest.raises(ValueError, match=rf"NeuroformerConfig\.{field}: expected {re.escape(expect)}"):
        hf_neuroformer.NeuroformerConfig(**{field: value})


def test_smallest_token_budgets_count_truncation_right():
    tok = make_tok(dt_resolution=0.01, current_window=0.1, past_window=0.1, max_window_length=3, max_past_length=1)
    enc = tok.encode_window(np.array([4.95, 5.01, 5.02]), np.array([3, 4, 5]), 5.0)
    assert enc["input_ids"] == [BOS, 4] and enc["n_spikes"] == 2 and enc["n_truncated"] == 1
    assert enc["past_input_ids"] == [BOS] and enc["n_past_truncated"] == 1


# --------------------------------------------------------------------------- truncation
def test_current_truncation_keeps_earliest_and_omits_eos():
    tok = make_tok(dt_resolution=0.01, current_window=0.1, max_window_length=5)  # room for 3 spikes
    t = 5.0 + np.array([0.005, 0.015, 0.025, 0.035, 0.045, 0.055, 0.065])
    u = np.array([9, 8, 7, 6, 5, 4, 3])
    enc = tok.encode_window(t, u, 5.0)
    assert enc["input_ids"] == [BOS, 9, 8, 7]
    assert enc["dt_ids"] == [0, 0, 1, 2]
    assert enc["n_spikes"] == 7 and enc["n_truncated"] == 4
    assert EOS not in enc["input_ids"]
    # exactly max_window_length - 2 spikes: nothing dropped, EOS kept
    enc = tok.encode_window(t[:3], u[:3], 5.0)
    assert enc["input_ids"] == [BOS, 9, 8, 7, EOS] and enc["n_truncated"] == 0
    # one over the limit: one dropped
    enc = tok.encode_window(t[:4], u[:4], 5.0)
    assert enc["n_truncated"] == 1 and enc["input_ids"] == [BOS, 9, 8, 7]


def test_past_truncation_keeps_latest():
    tok = make_tok(dt_resolution=0.01, current_window=0.1, past_window=0.1, max_past_length=3)  # 2 past spikes
    t = np.array([4.905, 4.925, 4.945, 4.965, 4.985, 5.01])
    u = np.array([3, 4, 5, 6, 7, 8])
    enc = tok.encode_window(t, u, 5.0)
    assert enc["past_input_ids"] == [BOS, 6, 7]
    assert enc["past_dt_ids"] == [0, 6, 8]  # bins of t - (5.0 - 0.1)
    assert enc["n_past_truncated"] == 3
    assert enc["input_ids"] == [BOS, 8, EOS] and enc["n_truncated"] == 0


# --------------------------------------------------------------------------- window edges
def test_half_open_windows_and_past_clip():
    tok = make_tok(dt_resolution=0.01, current_window=0.1, past_window=0.5)
    w0 = 10.0
    w1 = w0 + 0.1
    p0 = w0 - 0.5
    t = np.array([9.4, p0, 9.705, 9.995, w0, 10.055, w1, 10.2])
    u = np.array([3, 4, 5, 6, 7, 8, 9, 10])
    enc = tok.encode_window(t, u, w0)
    assert enc["input_ids"] == [BOS, 7, 8, EOS]  # w1 itself is outside, w0 inside
    assert enc["dt_ids"] == [0, 0, 5, 5]
    assert enc["n_spikes"] == 2
    assert enc["past_input_ids"] == [BOS, 4, 5, 6]  # p0 inside, 9.4 outside, w0 outside
    assert enc["past_dt_ids"] == [0, 0, 20, 49]
    clipped = tok.encode_window(t, u, w0, past_clip_start=9.8)
    assert clipped["past_input_ids"] == [BOS, 6]
    assert clipped["past_dt_ids"] == [0, 49]  # still measured from w0 - past_window
    assert clipped["input_ids"] == enc["input_ids"]
    # a clip before the past window start changes nothing
    assert tok.encode_window(t, u, w0, past_clip_start=0.0) == enc


def test_windows_tiled_with_arange_starts_count_every_spike_once():
    # np.arange(0, 1, 0.05)[6] is 0.30000000000000004: a spike at 0.3 s (tick 9000 of a 30 kHz
    # clock) lay after [0.25, 0.3) and before that window's start, so no window held it
    tok = make_tok(dt_resolution=0.01, current_window=0.05, past_window=0.0)
    t = np.arange(0, 30000, 3) / 30000.0  # every 3rd tick of a 30 kHz clock in [0, 1) s
    u = np.full(t.size, 3)
    starts = np.arange(0.0, 1.0 - 1e-12, 0.05)
    assert starts[6] != 0.3 and np.any(t == 0.3)
    counts = [tok.encode_window(t, u, s)["n_spikes"] for s in starts]
    assert sum(counts) == t.size



def test_a_spike_at_the_past_window_start_is_in_the_past_window():
    # 1.0 - 0.7 is 0.30000000000000004: the past window [0.3, 1.0) of a window at 1.0 s began after a
    # spike at 0.3 s and left it out; on 0.05-s tiles with a 0.1-s past about one window in five lost
    # the spike on its past window's first edge
    tok = make_tok(dt_resolution=0.01, current_window=0.1, past_window=0.7)
    enc = tok.encode_window(np.array([0.3, 0.5]), np.array([3, 4]), 1.0)
    assert enc["past_input_ids"] == [BOS, 3, 4] and enc["past_dt_ids"] == [0, 0, 20]
    # every window of a tiling: its past holds exactly the ticks of [start - past, start), counted on the clock
    tok = make_tok(dt_resolution=0.01, current_window=0.05, past_window=0.1, max_past_length=1200)
    ticks = np.arange(0, 30000, 3)  # every 3rd tick of a 30 kHz clock in [0, 1) s
    t, u = ticks / 30000.0, np.full(ticks.size, 3)
    for k in range(2, 20):  # window k starts at tick 1500 k, its past at tick 1500 k - 3000
        s = np.arange(0.0, 1.0 - 1e-12, 0.05)[k]
        want = int(np.sum((ticks >= 1500 * k - 3000) & (ticks < 1500 * k)))
        assert len(tok.encode_window(t, u, s)["past_input_ids"]) - 1 == want, k

def test_a_spike_at_a_trial_start_off_the_grid_is_in_the_next_windows_past():
    # a trial starting at 3 * 0.1 = 0.30000000000000004 s has its first window at 0.3 s (the 1 ns grid),
    # which holds a spike at 0.3 s (tick 9000 of a 30 kHz clock); the next window's past, clipped at the
    # unrounded trial start, left that spike out, so one spike was in a current window and never in a past
    tok = make_tok(dt_resolution=0.01, current_window=0.05, past_window=0.1)
    clip = 3 * 0.1
    t, u = np.array([9000, 10000]) / 30000.0, np.array([3, 4])
    first = tok.encode_window(t, u, clip, past_clip_start=clip)
    assert first["input_ids"][1] == 3  # the spike at 0.3 s is in the trial's first window
    nxt = tok.encode_window(t, u, 0.35, past_clip_start=clip)
    assert nxt["past_input_ids"] == [BOS, 3, 4]


# --------------------------------------------------------------------------- persistence
def _fixed_window(rng):
    t = np.sort(rng.uniform(0.0, 3.0, 2000))
    u = rng.integers(3, 3 + len(UNITS), 2000)
    return t, u


def test_save_and_load_round_trip(tmp_path):
    from transformers import AutoTokenizer

    tok = make_tok(dt_resolution=0.002, current_window=0.05, past_window=0.4, max_window_length=12,
                   max_past_length=30)
    tok.add_units(["other/x", "other/y"])
    tok.save_pretrained(tmp_path)
    rng = np.random.default_rng(0)
    t, u = _fixed_window(rng)
    ref = [tok.encode_window(t, u, s) for s in (0.5, 1.234, 2.9)]
    assert any(r["n_truncated"] > 0 for r in ref) and any(r["n_past_truncated"] > 0 for r in ref)
    for loaded in (NeuroformerTokenizer.from_pretrained(tmp_path), AutoTokenizer.from_pretrained(tmp_path)):
        assert isinstance(loaded, NeuroformerTokenizer)
        assert loaded.get_vocab() == tok.get_vocab()
        assert len(loaded) == 3 + len(UNITS) + 2
        assert loaded.dt_resolution == 0.002 and loaded.current_window == 0.05
        assert loaded.past_window == 0.4
        assert loaded.max_window_length == 12 and loaded.max_past_length == 30
        assert loaded.num_dt_bins == tok.num_dt_bins == 25
        assert [loaded.encode_window(t, u, s) for s in (0.5, 1.234, 2.9)] == ref
        assert loaded("other/y sess/u0")["input_ids"] == [12, 3]


def test_a_loaded_tokenizer_is_saved_with_the_settings_it_was_loaded_with(tmp_path):
    """Break test: transformers' from_pretrained records how it loaded (``is_local``,
    ``local_files_only``) among the tokenizer's settings, and a folder loaded and saved again, or
    pushed (hub.save_for_hub loads and saves it), held ``"is_local": true`` in its
    ``tokenizer_config.json``. Saved again, the file is the one loaded."""
    from transformers import AutoTokenizer

    make_tok(max_window_length=12).save_pretrained(tmp_path / "first")
    written = json.loads((tmp_path / "first" / "tokenizer_config.json").read_text())
    for n, load in enumerate((NeuroformerTokenizer.from_pretrained, AutoTokenizer.from_pretrained)):
        load(tmp_path / "first", local_files_only=True).save_pretrained(tmp_path / f"again-{n}")
        assert json.loads((tmp_path / f"again-{n}" / "tokenizer_config.json").read_text()) == written


@pytest.mark.parametrize("edit, said", [
    ({"sess/u1": 3}, r"tokens 'sess/u0' and 'sess/u1' share id 3; expected each id once"),
    ({"sess/u1": 99}, r"token 'sess/u1' has id 99; expected an integer in \[0, 11\)"),
    ({"sess/u1": "4"}, r"token 'sess/u1' has id '4'; expected an integer in \[0, 11\)"),
    ({"sess/u 1": 4}, r"unit token 'sess/u 1': expected no whitespace"),
])
def test_a_hand_edited_vocab_json_is_refused_naming_the_entry(tmp_path, edit, said):
    """A vocab.json with a repeated, out-of-range or quoted id loaded: the tokenizer then had an id
    without a token, refused later as "token id 4: expected an id in [0, 11)"; a unit name with a
    space loaded too."""
    import json

    from transformers import AutoTokenizer

    make_tok().save_pretrained(tmp_path)
    vocab = json.loads((tmp_path / "vocab.json").read_text())
    if "sess/u 1" in edit:
        del vocab["sess/u1"]
    (tmp_path / "vocab.json").write_text(json.dumps({**vocab, **edit}))
    with pytest.raises(ValueError, match=r"vocab_file '.*vocab.json': " + said):
        AutoTokenizer.from_pretrained(tmp_path)


def test_add_units_grows_and_keeps_ids():
    tok = make_tok()
    before = tok.get_vocab()
    ids = tok.add_units(["new/a", "sess/u2", "new/b"])
    assert ids == [11, 5, 12]
    after = tok.get_vocab()
    assert len(after) == len(before) + 2
    assert all(after[k] == v for k, v in before.items())
    assert tok.add_units(["new/a"]) == [11] and len(tok) == len(after)
    assert tok.convert_ids_to_tokens([11, 12]) == ["new/a", "new/b"]



def test_add_units_refuses_tokens_that_are_not_unit_names_and_adds_none_of_a_refused_list(shared_data):
    """add_units took any value through str(): unit indices (add_units([5]), meant as a unit of the
    recording) became the units '5', bytes b'A2929/unit0' the unit "b'A2929/unit0'", and '' a unit that no
    text can name; a list refused at its third token kept the two before it in the vocabulary. Now each is
    refused naming the token, and a refused list adds nothing; the real recording's units add as before."""
    import warnings

    from hf_neuroformer.io import read_nwb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = read_nwb(shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"), session="A2929")
    tok = NeuroformerTokenizer()
    names = tok.recording_unit_tokens(rec)
    for bad, said in ((5, r"unit token 5: expected a str.*got int"), (np.int64(5), r"got int64"),
                      (names[0].encode(), r"unit token b'A2929/.*got bytes"), ("", r"^unit token '': expected a unit name")):
        with pytest.raises(ValueError, match=said):
            tok.add_units([names[0], names[1], bad])
        assert len(tok) == 3, bad  # nothing of the refused list was added
    with pytest.raises(ValueError, match="expected no whitespace"):
        tok.add_units([names[0], "A2929/unit 1"])
    assert len(tok) == 3
    assert tok.add_units(rec) == list(range(3, 3 + rec.n_units))
    assert tok.add_units([np.str_(names[2])]) == [5]  # a numpy string is a str

def test_add_tokens_adds_units_that_resize_token_embeddings_covers(tmp_path):
    """transformers' idiom ``tokenizer.add_tokens([...]); model.resize_token_embeddings(len(tokenizer))``:
    the token was kept in transformers' side table with id ``len(tokenizer)`` while ``len(tokenizer)``
    (and ``get_vocab()``, ``vocab.json``) stayed the same, so the resized model had no row for it and a
    reload lost it. A new special token has no place in the model's three: refused, naming it."""
    from transformers import AddedToken

    tok = make_tok()
    n = len(tok)
    assert tok.add_tokens(["new/a", AddedToken("new/b"), "new/a", "sess/u0"]) == 2
    assert len(tok) == n + 2 and tok.get_vocab()["new/a"] == n and tok.get_vocab()["new/b"] == n + 1
    assert tok("new/b sess/u0")["input_ids"] == [n + 1, 3]
    assert max(tok.convert_tokens_to_ids(["new/a", "new/b"])) < len(tok)
    tok.save_pretrained(tmp_path)
    assert NeuroformerTokenizer.from_pretrained(tmp_path).get_vocab() == tok.get_vocab()
    with pytest.raises(ValueError, match="whitespace"):
        tok.add_tokens(["new/c d"])
    for call in (lambda: tok.add_tokens(["<mask>"], special_tokens=True),
                 lambda: tok.add_special_tokens({"additional_special_tokens": ["<mask>"]}),
                 lambda: tok.add_special_tokens({"mask_token": "<mask>"})):
        with pytest.raises(ValueError, match="'<mask>'.*three special tokens"):
            call()
    # refused before anything changed: transformers set pad_token first, and the saved
    # tokenizer_config.json then failed to load ("expected special token '<newpad>' at id 0")
    with pytest.raises(ValueError, match=r"special_tokens_dict\['pad_token'\]: special token '<newpad>'"):
        tok.add_special_tokens({"pad_token": "<newpad>"})
    assert (tok.pad_token, tok.pad_token_id) == ("<pad>", 0)
    assert sorted(tok.all_special_tokens) == ["<bos>", "<eos>", "<pad>"]
    assert len(tok) == n + 2 and tok.add_special_tokens({"pad_token": "<pad>"}) == 0
    tok.save_pretrained(tmp_path / "again")
    assert NeuroformerTokenizer.from_pretrained(tmp_path / "again").get_vocab() == tok.get_vocab()


def test_add_tokens_of_a_known_unit_leaves_it_a_plain_unit(tmp_path):
    """add_tokens of a unit already in the vocabulary was handed to transformers, which kept it in its
    added-tokens table: the text "sess/u10" was then split at the known unit "sess/u1" (refused as
    "sess/u1" + "0"), and with special_tokens=True the unit became a special token, whose spikes
    decode(skip_special_tokens=True) left out, also after save and reload. Now it adds nothing, and a
    unit given as a special token (add_tokens, or extra_special_tokens at construction or in a saved
    tokenizer_config.json) is refused, naming it."""
    import json

    tok = make_tok(unit_tokens=[f"sess/u{i}" for i in range(11)])
    u1, u10 = tok.convert_tokens_to_ids(["sess/u1", "sess/u10"])
    assert tok.add_tokens(["sess/u1"]) == 0
    assert tok("sess/u10 sess/u1")["input_ids"] == [u10, u1]
    with pytest.raises(ValueError, match="special token 'sess/u1': is unit 4 of the vocabulary"):
        tok.add_tokens(["sess/u1"], special_tokens=True)
    assert sorted(tok.all_special_tokens) == ["<bos>", "<eos>", "<pad>"]
    assert tok.decode([BOS, u1, u10, EOS], skip_special_tokens=True) == "sess/u1 sess/u10"
    with pytest.raises(ValueError, match="special token 'sess/u1': is unit"):
        make_tok(extra_special_tokens=["sess/u1"])
    tok.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert not config.get("extra_special_tokens")
    assert all(int(i) < 3 for i in config["added_tokens_decoder"])
    # the old code saved a known unit given to add_tokens among the added tokens: loaded, the next
    # special-token call made transformers split the text at it again
    config["added_tokens_decoder"][str(u1)] = {"content": "sess/u1", "lstrip": False, "normalized": True,
                                               "rstrip": False, "single_word": False, "special": False}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    old = NeuroformerTokenizer.from_pretrained(tmp_path)
    old.add_special_tokens({"pad_token": "<pad>"})
    assert old("sess/u10 sess/u1")["input_ids"] == [u10, u1]
    config["extra_special_tokens"] = ["sess/u1"]  # as the old code saved it
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="extra_special_tokens in a saved tokenizer_config.json"):
        NeuroformerTokenizer.from_pretrained(tmp_path)


def test_whitespace_in_a_session_or_unit_name_is_named_where_it_is(shared_data):
    """An NWB file's identifier (the default session) such as 'A2929 200711' made
    add_units(recording) fail with "unit token 'A2929 200711/...': expected no whitespace in a unit
    name", sending the user to unit names that held none."""
    import dataclasses
    import warnings

    from hf_neuroformer.io import read_nwb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = read_nwb(shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"), session="A2929")
    # SpikeRecording(session=...) refuses such a session itself: set in place, as an old pickle may hold it
    rec.session = "A2929 200711"
    with pytest.raises(ValueError, match=r"recording\.session: 'A2929 200711' holds whitespace.*"
                                         r"session='A2929_200711'"):
        NeuroformerTokenizer().add_units(rec)
    spaced = dataclasses.replace(rec, session="A2929", unit_names=list(rec.unit_names))
    spaced.unit_names[3] = "adn cell"  # edited in place: SpikeRecording(unit_names=...) refuses such a name itself
    with pytest.raises(ValueError, match=r"recording\.unit_names: unit 3 \('adn cell'\) holds whitespace"):
        NeuroformerTokenizer().add_units(spaced)
    assert len(NeuroformerTokenizer().add_units(dataclasses.replace(rec, session="A2929_200711"))) == rec.n_units


def test_an_empty_session_is_refused_when_its_units_are_added(shared_data):
    """A recording whose session was set to '' after it was made (SpikeRecording refuses one, and the
    readers name a file's empty session after the file); add_units took it and made the unit tokens
    '/unit0', ... without a session. It is refused naming recording.session and a fix."""
    from hf_neuroformer.io import load_recording

    rec = load_recording(shared_data("allen_vcn_gratings")).select_units(range(2)).restrict(0.0, 1.0)
    empty = dataclasses.replace(rec)
    empty.session = ""
    tok = NeuroformerTokenizer()
    with pytest.raises(ValueError, match=r"^recording\.session: expected a session name, got '', which gives unit "
                                         r"tokens without a session \('/unit0'\); name the session, e.g. "
                                         r"dataclasses\.replace\(recording, session='session0'\)"):
        tok.add_units(empty)
    assert len(tok) == 3  # nothing added
    assert tok.add_units(dataclasses.replace(empty, session="session0")) == [3, 4]


def test_an_empty_unit_name_is_refused_naming_the_unit(shared_data, tmp_path):
    """An empty unit name (an .npz unit_names entry, a table's unit column, SpikeRecording itself) gave
    the unit token '<session>/' without a word (read_nwb refuses one in its file). SpikeRecording refuses
    it now (test_recording_validation); add_units still names one set on a recording after it was made."""
    from hf_neuroformer.io import read_npz

    rec = hf_neuroformer.io.read_nwb(shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"))
    rec = rec.select_units(range(2)).restrict(0.0, 10.0)
    np.savez(tmp_path / "m.npz", spike_times=rec.spike_times, unit_ids=rec.unit_ids, unit_names=np.array(["", "b"]),
             session=np.array("A2929"))
    with pytest.raises(ValueError, match=r"^unit_names: expected a name for every unit, unit 0 has ''"):
        read_npz(tmp_path / "m.npz")
    rec = read_npz(tmp_path / "m.npz", unit_names=["a", "b"])
    rec.unit_names[0] = ""
    with pytest.raises(ValueError, match=r"^recording\.unit_names: unit 0 is '', which gives the unit token 'A2929/'; "
                                         r"name every unit"):
        NeuroformerTokenizer().add_units(rec)


def test_left_padding_is_refused_when_the_tokenizer_is_made(tmp_path):
    """NeuroformerTokenizer(padding_side="left") was accepted and saved, and its pad() padded on the
    left, which the model then refused at every batch (a window's tokens sit at absolute positions
    from its BOS). It is refused when the tokenizer is made, also from a saved file."""
    import json

    with pytest.raises(ValueError, match=r"padding_side: expected 'right' .* got 'left'"):
        NeuroformerTokenizer(padding_side="left")
    tok = NeuroformerTokenizer(padding_side="right")
    tok.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "tokenizer_config.json").read_text())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**cfg, "padding_side": "left"}))
    with pytest.raises(ValueError, match=r"padding_side: expected 'right'"):
        NeuroformerTokenizer.from_pretrained(tmp_path)


def test_left_padding_is_refused_after_the_tokenizer_is_made_too(tmp_path):
    """Break test: padding_side was checked only in __init__: ``tok.padding_side = "left"`` (or
    any string) was kept and pad() padded on the left, as did ``pad(..., padding_side="left")``,
    which the model refuses at every batch. Both are refused now, and the tokenizer stays as it was."""
    tok = NeuroformerTokenizer(unit_tokens=["s/a", "s/b"])
    batch = [{"input_ids": [1, 3, 2]}, {"input_ids": [1, 2]}]
    for bad in ("left", "banana"):
        with pytest.raises(ValueError, match=rf"padding_side: expected 'right' .* got '{bad}'"):
            tok.padding_side = bad
        with pytest.raises(ValueError, match=rf"padding_side: expected 'right' .* got '{bad}'"):
            tok.pad(batch, padding_side=bad)
    tok.padding_side = "right"
    assert tok.padding_side == "right"
    assert tok.pad(batch)["input_ids"] == [[1, 3, 2], [1, 2, 0]]
    tok.save_pretrained(tmp_path)
    assert NeuroformerTokenizer.from_pretrained(tmp_path).padding_side == "right"


def test_a_model_max_length_other_than_the_window_length_is_refused(tmp_path):
    """NeuroformerTokenizer(model_max_length=100) with max_window_length 64 was kept, so
    pad(padding="max_length") padded windows to 100 tokens, which the model cannot embed, and a
    smaller value cut them short. It is refused when the tokenizer is made, also from a saved file;
    the default (max_window_length) round-trips."""
    import json

    with pytest.raises(ValueError, match=r"model_max_length: expected max_window_length \(64: .* got 100"):
        NeuroformerTokenizer(model_max_length=100)
    tok = NeuroformerTokenizer(max_window_length=40)
    assert tok.model_max_length == 40
    tok.save_pretrained(tmp_path)
    assert NeuroformerTokenizer.from_pretrained(tmp_path).model_max_length == 40
    cfg = json.loads((tmp_path / "tokenizer_config.json").read_text())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**cfg, "model_max_length": 20}))
    with pytest.raises(ValueError, match=r"model_max_length: expected max_window_length \(40"):
        NeuroformerTokenizer.from_pretrained(tmp_path)


def test_from_pretrained_with_another_max_window_length_keeps_model_max_length_in_step(tmp_path):
    """Break test: NeuroformerTokenizer.from_pretrained(path, max_window_length=48) on a tokenizer
    saved with 32 was refused with 'model_max_length: expected max_window_length (48 ...), got 32;
    set max_window_length instead' (the saved model_max_length came along), though the caller had
    set max_window_length. The override sets both; an explicit, other model_max_length is still
    refused."""
    NeuroformerTokenizer(unit_tokens=["s/u1"], max_window_length=32).save_pretrained(tmp_path)
    tok = NeuroformerTokenizer.from_pretrained(tmp_path, max_window_length=48)
    assert (tok.max_window_length, tok.model_max_length) == (48, 48)
    with pytest.raises(ValueError, match=r"model_max_length: expected max_window_length \(48: .* got 40"):
        NeuroformerTokenizer.from_pretrained(tmp_path, max_window_length=48, model_max_length=40)


def test_model_max_length_set_after_the_tokenizer_is_made_stays_the_window_length(tmp_path):
    """Break test: c3db525 refused model_max_length != max_window_length when the tokenizer is
    made, but tok.model_max_length = 100 afterwards was kept (pad(padding='max_length') padded to
    100 tokens) and written to tokenizer_config.json, which from_pretrained then refused; so was a
    max_window_length changed afterwards (the saved model_max_length stayed the old one). The
    assignment is refused naming the field, and model_max_length follows max_window_length."""
    tok = NeuroformerTokenizer(unit_tokens=["s/u1"], max_window_length=32)
    with pytest.raises(ValueError, match=r"model_max_length: expected max_window_length \(32: .* got 100"):
        tok.model_max_length = 100
    assert len(tok.pad({"input_ids": [[1, 3, 2]]}, padding="max_length")["input_ids"][0]) == 32
    tok.max_window_length = 48
    assert tok.model_max_length == 48
    tok.save_pretrained(tmp_path)
    again = NeuroformerTokenizer.from_pretrained(tmp_path)
    assert (again.max_window_length, again.model_max_length) == (48, 48)


def test_unit_names_with_a_slash_keep_their_session(shared_data, tmp_path):
    """A unit token is '<session>/<unit>', and the session was read back with rsplit('/', 1): units
    'shank1/c1' of session 'm' gave session 'm/shank1', so units_absent missed a missing unit of
    another shank (returned [] for 'm/shank2/c3') and its warning stayed silent. A session holding
    '/' is refused by name (session 'm/1' + unit '2' and session 'm' + unit '1/2' are the same token),
    and read_nwb replaces '/' in an identifier as it replaces whitespace."""
    import dataclasses
    import warnings

    from hf_neuroformer.generation import units_absent
    from hf_neuroformer.io import read_nwb, write_nwb
    from hf_neuroformer.recording import SpikeRecording

    rec = SpikeRecording(spike_times=np.array([0.1, 0.2, 0.3]), unit_ids=np.array([0, 1, 2]),
                         unit_names=["shank1/c1", "shank1/c2", "shank2/c3"], session="m")
    tok = NeuroformerTokenizer()
    tok.add_units(rec)
    assert NeuroformerTokenizer.session_of("m/shank1/c1") == "m"
    assert units_absent(tok, rec.select_units([0, 1])) == ["m/shank2/c3"]
    # SpikeRecording(session=...) refuses such a session itself: set in place, as an old pickle may hold it
    slashed = dataclasses.replace(rec)
    slashed.session = "m/1"
    with pytest.raises(ValueError, match=r"recording\.session: 'm/1' holds '/'.*session='m_1'"):
        NeuroformerTokenizer().add_units(slashed)
    path = tmp_path / "r.nwb"
    # validate() refuses the session too, so write_nwb does not write it: an older write_nwb wrote one
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        set_nwb_session_id(write_nwb(rec, path), "mouse12/day3")
        back = read_nwb(path)
    assert back.session == "mouse12_day3"
    assert units_absent(tok, back) == []  # other session: none of its units are counted absent
    assert len(NeuroformerTokenizer().add_units(back)) == 3


def test_auto_tokenizer_of_a_folder_without_vocab_json_is_refused(tmp_path):
    """AutoTokenizer.from_pretrained of a model folder saved without its tokenizer built one from the
    defaults: no units and 0.1-s windows with 5-ms bins, whatever the model was trained with, without
    a word. Such a folder (or one whose vocab.json is lost) is now refused, naming vocab.json."""
    from transformers import AutoTokenizer

    from hf_neuroformer import NeuroformerConfig, NeuroformerForPreTraining

    cfg = NeuroformerConfig(current_window=0.05, dt_resolution=0.01, past_window=0.1, hidden_size=16,
                            num_attention_heads=2, num_hidden_layers=1, intermediate_size=32, vocab_size=11)
    NeuroformerForPreTraining(cfg).save_pretrained(tmp_path)
    with pytest.raises(OSError, match="no vocab.json"):
        AutoTokenizer.from_pretrained(tmp_path)
    tok = NeuroformerTokenizer.from_config(cfg, UNITS)
    tok.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded.get_vocab() == tok.get_vocab() and loaded.current_window == 0.05
    (tmp_path / "vocab.json").unlink()  # tokenizer_config.json alone is not the tokenizer either
    with pytest.raises(OSError, match="no vocab.json"):
        NeuroformerTokenizer.from_pretrained(tmp_path)


def test_window_start_and_token_lengths_are_checked():
    """encode_window(times, tokens, nan) returned an empty window (no spikes, BOS + EOS) and
    decode_window at a NaN start gave NaN spike times, without a word; decode_window with fewer
    dt_ids than input_ids dropped the spikes past the shorter list (zip). Each is now a ValueError
    naming the argument; equal lengths and finite starts decode as before."""
    tok = make_tok(current_window=0.05, dt_resolution=0.01)
    times, tokens = np.array([0.012, 0.031]), np.array([3, 4])
    with pytest.raises(ValueError, match="window_start: expected a finite time"):
        tok.encode_window(times, tokens, float("nan"))
    with pytest.raises(ValueError, match="spike_tokens: expected one unit token id per spike"):
        tok.encode_window(times, tokens[:1], 0.0)
    enc = tok.encode_window(times, tokens, 0.0)
    with pytest.raises(ValueError, match="dt_ids: expected one dt bin id per token"):
        tok.decode_window(enc["input_ids"], enc["dt_ids"][:2], 0.0)
    with pytest.raises(ValueError, match="window_start: expected a finite time"):
        tok.decode_window(enc["input_ids"], enc["dt_ids"], float("inf"))
    t, u = tok.decode_window(enc["input_ids"], enc["dt_ids"], 0.0)
    np.testing.assert_allclose(t, [0.015, 0.035])
    assert u.tolist() == [3, 4]


def test_a_float32_window_start_or_clip_is_refused_not_moved():
    """encode_window refused float32 spike times but took a float32 window_start, whose rounding
    moved the window: np.float32(0.05) put it at 0.050000001 s (the 1 ns grid), so a spike at 0.05 s
    fell in neither [0, 0.05) nor it, and np.float32(4485.4) put it 98 µs early; decode_window
    shifted the decoded times alike. A NaN past_clip_start clipped nothing, without a word. Each is
    now a ValueError naming the argument; a float64 start keeps the spike."""
    import torch

    tok = make_tok(current_window=0.05, past_window=0.05, dt_resolution=0.01)
    times, tokens = np.array([0.03, 0.05, 4485.4]), np.array([3, 4, 5])
    assert tok.encode_window(times, tokens, 0.0)["n_spikes"] + tok.encode_window(times, tokens, 0.05)["n_spikes"] == 2
    for start in (np.float32(0.05), torch.tensor(0.05), np.float16(0.05), np.float32(4485.4)):
        with pytest.raises(ValueError, match="window_start: expected float64 times"):
            tok.encode_window(times, tokens, start)
        with pytest.raises(ValueError, match="window_start: expected float64 times"):
            tok.decode_window([BOS, 3, EOS], [0, 0, 0], start)
    with pytest.raises(ValueError, match="past_clip_start: expected float64 times"):
        tok.encode_window(times, tokens, 0.05, past_clip_start=np.float32(0.01))
    with pytest.raises(ValueError, match="past_clip_start: expected a finite time"):
        tok.encode_window(times, tokens, 0.05, past_clip_start=float("nan"))
    assert tok.encode_window(times, tokens, np.float64(0.05), past_clip_start=0.04)["past_input_ids"] == [BOS]
    # a boolean in a time's place (float(True) is 1.0) put the window at 1 s without a word
    for flag in (True, np.bool_(False), torch.tensor(True)):
        with pytest.raises(ValueError, match="window_start: expected a finite time in seconds, got the boolean"):
            tok.encode_window(times, tokens, flag)
        with pytest.raises(ValueError, match="window_start: expected a finite time in seconds, got the boolean"):
            tok.decode_window([BOS, 3, EOS], [0, 0, 0], flag)
    with pytest.raises(ValueError, match="past_clip_start: expected a finite time in seconds, got the boolean"):
        tok.encode_window(times, tokens, 0.05, past_clip_start=True)


def test_spike_times_as_a_list_encode_as_the_array():
    """A list of spike times passed the checks and then failed with "unsupported operand type(s) for
    -: 'list' and 'float'", naming neither argument; it is now read as the float64 array."""
    tok = make_tok(current_window=0.05, past_window=0.05, dt_resolution=0.01)
    times, tokens = [0.01, 0.03, 0.07], [3, 4, 5]
    assert tok.encode_window(times, tokens, 0.05) == tok.encode_window(np.array(times), np.array(tokens), 0.05)
    with pytest.raises(ValueError, match="spike_times: expected"):
        tok.encode_window([0.03, 0.01], tokens[:2], 0.0)


def test_save_refuses_window_settings_changed_to_bad_values(tmp_path):
    """A window setting changed after construction (tokenizer.dt_resolution = 0.5 with 0.1-s
    windows, max_window_length = 2) was written to tokenizer_config.json unchecked, and
    from_pretrained then refused the saved folder. save_pretrained now refuses it first, naming the
    field, and writes nothing; a valid change is saved and loads."""
    tok = make_tok(current_window=0.1, dt_resolution=0.01)
    tok.dt_resolution = 0.5
    with pytest.raises(ValueError, match=r"NeuroformerTokenizer\.dt_resolution: expected <= current_window"):
        tok.save_pretrained(tmp_path / "a")
    assert not (tmp_path / "a" / "tokenizer_config.json").exists()
    tok = make_tok()
    tok.max_window_length = 2
    with pytest.raises(ValueError, match=r"NeuroformerTokenizer\.max_window_length: expected >= 3"):
        tok.save_pretrained(tmp_path / "b")
    tok.max_window_length = 32
    tok.save_pretrained(tmp_path / "b")
    assert NeuroformerTokenizer.from_pretrained(tmp_path / "b").max_window_length == 32


def test_decode_window_refuses_token_ids_outside_the_vocabulary():
    """decode_window returned a token id outside the vocabulary (99 of 11 ids, -5) as a unit token
    id that names no unit, without a word, where decode() refuses it (UnknownUnitError): ids of a
    larger vocabulary (another model's tokenizer) decoded into spikes of units that do not exist.
    Now refused naming the position and the id; ids in the vocabulary decode as before."""
    tok = make_tok(dt_resolution=0.01, current_window=0.1)
    for bad in (len(tok), 99, -5):
        with pytest.raises(UnknownUnitError, match=rf"input_ids: token 2 is id {bad}, not in the vocabulary \(ids 0 \.\. 10"):
            tok.decode_window([BOS, 3, bad, EOS], [0, 1, 2, 2], 0.0)
        with pytest.raises(UnknownUnitError):
            tok.decode([BOS, 3, bad, EOS])
    # past EOS nothing is read, an unknown id there included
    times, units = tok.decode_window([BOS, 10, EOS, 99], [0, 1, 1, 0], 0.0)
    assert units.tolist() == [10]
    np.testing.assert_allclose(times, [0.015])


def test_decode_window_and_id_to_dt_refuse_ids_that_are_not_integers(shared_data):
    """decode_window read each id with int(): a unit id 3.9 decoded as unit 3, a dt bin 2.7 as bin 2,
    True as BOS and the text '3' as unit 3, and id_to_dt(2.5) gave a time on a bin edge instead of a
    bin centre, all without a word (convert_ids_to_tokens and decode refuse the same ids). Now refused
    naming the field and the position; the integer tokens of a real window (lists, numpy, torch)
    decode as before."""
    import warnings

    import torch

    from hf_neuroformer import TokenIdError
    from hf_neuroformer.io import read_nwb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = read_nwb(shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"), session="A2929")
    tok = NeuroformerTokenizer(dt_resolution=0.005, current_window=0.1, past_window=0.0)
    tok.add_units(rec)
    w0 = 650.0
    enc = tok.encode_window(rec.spike_times, tok.unit_token_ids(rec)[rec.unit_ids], w0)
    ids, dts = enc["input_ids"], enc["dt_ids"]
    assert len(ids) > 4  # a window with spikes
    times, units = tok.decode_window(ids, dts, w0)
    for a, b in ((np.array(ids), np.array(dts)), (torch.tensor(ids), torch.tensor(dts))):
        t2, u2 = tok.decode_window(a, b, w0)
        np.testing.assert_array_equal(t2, times)
        np.testing.assert_array_equal(u2, units)
    frac_id = [ids[0], ids[1] + 0.9] + ids[2:]
    with pytest.raises(TokenIdError, match=rf"^input_ids\[1\]: expected an integer token id, got float {ids[1] + 0.9}"):
        tok.decode_window(frac_id, dts, w0)
    frac_dt = [dts[0], dts[1] + 0.7] + dts[2:]
    with pytest.raises(TokenIdError, match=r"^dt_ids\[1\]: expected an integer token id, got float"):
        tok.decode_window(ids, frac_dt, w0)
    with pytest.raises(TokenIdError, match=r"^input_ids\[0\]: .*got bool True"):
        tok.decode_window([True] + ids[1:], dts, w0)
    with pytest.raises(TokenIdError, match=r"^input_ids\[1\]: .*got str"):
        tok.decode_window([ids[0], str(ids[1])] + ids[2:], dts, w0)
    with pytest.raises(TokenIdError, match=r"^dt_ids: expected integer token ids, got an array of dtype float64"):
        tok.decode_window(ids, np.array(dts, dtype=np.float64), w0)
    with pytest.raises(TokenIdError, match=r"^input_ids: .*shape \(1, "):
        tok.decode_window(np.array([ids]), np.array([dts]), w0)
    with pytest.raises(ValueError, match=r"^dt_ids: expected whole-number dt bin ids \(int64\), got dtype float64 "
                                         r"\(flat index 1: 2\.5\)"):
        tok.id_to_dt(np.array([1.0, 2.5]))
    with pytest.raises(ValueError, match=r"^dt_ids: expected whole-number dt bin ids .*dtype bool"):
        tok.id_to_dt(True)
    # whole numbers held as floats are still bin ids (the tokenizer's own dt_to_id then id_to_dt)
    np.testing.assert_allclose(tok.id_to_dt(np.array([1.0, 2.0])), tok.id_to_dt(np.array([1, 2])))


@pytest.mark.parametrize("day_offset_s", [0.0, 10_000.0, 86_400.0])
def test_spikes_of_a_30khz_clock_on_dt_bin_edges_start_their_bin_hours_into_a_recording(day_offset_s):
    """A spike on a dt-bin edge starts its bin (binning module docstring). The offset of an
    absolute time from its window start is off by up to one float64 step of the times' size
    (1.5e-11 s a day in), more than the 1e-9-bin tolerance of a 1-ms bin (1e-12 s): at 10,000 s
    about 7 % and a day in about a third of the 30 kHz clock's ticks on 1-ms edges were given the
    bin before (decoded 1 ms early), and SpikeRecording.binned_counts, which bins from another
    start, disagreed with the tokenizer. Expected bins here come from integer tick arithmetic."""
    clock = 30_000
    tok = make_tok(dt_resolution=0.001, current_window=0.1, past_window=0.0, max_window_length=256)
    w_ticks = int(day_offset_s * clock) + 9_000 + 3_000 * np.arange(40)  # 40 windows of 0.1 s from T + 0.3 s
    edges = w_ticks[:, None] + 30 * np.arange(100)[None, :]  # every 1-ms edge of every window
    ticks = np.sort(np.concatenate([edges.ravel(), edges.ravel()[1:] - 1]))  # edges, and a tick before each
    times = ticks / clock
    units = np.full(len(ticks), 3, dtype=np.int64)
    for w in w_ticks:
        start = float(np.round(w / clock, 9))  # the window start as windows.window_starts_for_split makes it
        enc = tok.encode_window(times, units, start)
        inside = ticks[(ticks >= w) & (ticks < w + 3_000)]
        assert enc["n_spikes"] == len(inside)
        assert enc["dt_ids"][1:-1] == ((inside - w) // 30).tolist()
    rec = SpikeRecording(times, np.zeros(len(ticks), dtype=np.int64), unit_names=["u"], session="s",
                         time_domain=(w_ticks[0] / clock, (w_ticks[-1] + 3_000) / clock))
    counts = rec.binned_counts(0.001)[:, 0]
    expected = np.bincount((ticks - w_ticks[0]) // 30, minlength=len(counts))
    np.testing.assert_array_equal(counts, expected[:len(counts)])


def test_encode_window_refuses_token_ids_that_are_not_units_of_the_vocabulary():
    """encode_window wrote whatever ids spike_tokens held into the window: 99 (of 11 ids), a
    negative id or a special id (EOS = 2 inside the window ended it early at decode), and cut a
    float 3.7 to unit 3, without a word. Now refused naming the spike (past window included);
    whole floats (3.0) and ids of spikes outside the window and its past are not read."""
    tok = make_tok(dt_resolution=0.01, current_window=0.1, past_window=0.1)
    times = np.array([0.03, 0.12, 0.15, 0.35])
    for bad in (len(tok), 99, -1, EOS, PAD):
        for k in (1, 2):  # a past spike, a current spike
            tokens = np.array([3, 4, 5, 6])
            tokens[k] = bad
            with pytest.raises(UnknownUnitError, match=rf"^spike_tokens: spike {k} has token id {bad}, not a unit"):
                tok.encode_window(times, tokens, 0.15)
    with pytest.raises(ValueError, match=r"spike_tokens: expected whole-number unit token ids \(int64\), got dtype "
                                         r"float64 \(spike 2: 3.7\)"):
        tok.encode_window(times, np.array([3.0, 4.0, 3.7, 5.0]), 0.15)
    # spikes 0 and 3 lie outside [0.05, 0.25): their ids are not read; whole floats are ids
    enc = tok.encode_window(times, np.array([99.0, 4.0, 5.0, -1.0]), 0.15)
    assert enc["input_ids"] == [BOS, 5, EOS] and enc["past_input_ids"] == [BOS, 4]


def test_encode_window_refuses_object_and_wrapping_token_ids_with_a_value_error(shared_data):
    """spike_tokens held as an object array (ids read from a table column) made the refusal itself fail
    with "AttributeError: 'int' object has no attribute 'item'" (not a ValueError, naming nothing); a
    uint64 id of 2**63 or more was refused as the negative id it wraps to in int64. Now a ValueError
    naming the spike and its id as given; the int64 ids of the real recording encode as before."""
    import warnings

    from hf_neuroformer.io import read_nwb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = read_nwb(shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"), session="A2929")
    tok = NeuroformerTokenizer(dt_resolution=0.005, current_window=0.1, past_window=0.1)
    tok.add_units(rec)
    ids = tok.unit_token_ids(rec)[rec.unit_ids]
    w0 = 650.0
    first = int(np.searchsorted(rec.spike_times, w0 - 0.1))  # the first spike the window reads (its past)
    assert tok.encode_window(rec.spike_times, ids, w0)["n_spikes"] > 0
    with pytest.raises(ValueError, match=rf"^spike_tokens: expected whole-number unit token ids \(int64\), got "
                                         rf"dtype object \(spike {first}: {ids[first]}\)"):
        tok.encode_window(rec.spike_times, ids.astype(object), w0)
    big = ids.astype(np.uint64)
    big[first] = 2**63 + 5
    with pytest.raises(UnknownUnitError, match=rf"^spike_tokens: spike {first} has token id {2**63 + 5}, not a unit"):
        tok.encode_window(rec.spike_times, big, w0)


def test_encode_window_refuses_spike_arrays_that_are_not_one_entry_per_spike(shared_data):
    """2-D spike_times (a (n, 1) column) failed inside numpy with "object too deep for desired array",
    2-D spike_tokens with "all keys need to be the same shape", a scalar spike_tokens with a TypeError
    from len(): none named the field. Now a ValueError naming the field, the shape it has and the
    expected (n_spikes,); the 1-D arrays of the real recording encode as before."""
    import warnings

    from hf_neuroformer.io import read_nwb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = read_nwb(shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"), session="A2929")
    tok = NeuroformerTokenizer(dt_resolution=0.005, current_window=0.1, past_window=0.1)
    tok.add_units(rec)
    times, ids = rec.spike_times, tok.unit_token_ids(rec)[rec.unit_ids]
    n = len(times)
    assert tok.encode_window(times, ids, 650.0)["n_spikes"] > 0
    expect = r"expected a 1-D array of shape \(n_spikes,\), one {} per spike, got shape {}"
    with pytest.raises(ValueError, match="^spike_times: " + expect.format(r"spike time \(s\)", rf"\({n}, 1\)")):
        tok.encode_window(times[:, None], ids, 650.0)
    with pytest.raises(ValueError, match="^spike_tokens: " + expect.format("unit token id", rf"\({n}, 1\)")):
        tok.encode_window(times, ids[:, None], 650.0)
    with pytest.raises(ValueError, match="^spike_times: " + expect.format(r"spike time \(s\)", rf"\(1, {n}\)")):
        tok.encode_window(times[None, :], ids[None, :], 650.0)
    with pytest.raises(ValueError, match="^spike_tokens: " + expect.format("unit token id", r"\(\)")):
        tok.encode_window(times[:1], ids[0], 0.0)
    with pytest.raises(ValueError, match=r"^spike_tokens: expected a 1-D .* got a ragged sequence"):
        tok.encode_window(times[:2].tolist(), [int(ids[0]), [int(ids[1])]], 0.0)


def test_a_past_clip_after_the_window_start_leaves_the_current_window_whole():
    """A past_clip_start after the window start (no past at all) must not touch the current
    window: its spikes are read whole, and the past is empty."""
    tok = make_tok(dt_resolution=0.01, current_window=0.1, past_window=0.1)
    times, tokens = np.array([0.05, 0.15, 0.17, 0.2]), np.array([3, 4, 5, 6])
    whole = tok.encode_window(times, tokens, 0.15)
    for clip in (0.15 + 5e-10, 0.16, 0.18, 1.0):
        enc = tok.encode_window(times, tokens, 0.15, past_clip_start=clip)
        assert enc["input_ids"] == whole["input_ids"] == [BOS, 4, 5, 6, EOS]
        assert enc["dt_ids"] == whole["dt_ids"] and enc["past_input_ids"] == [BOS]


def test_pad_refuses_window_rows_whose_dt_ids_it_cannot_pad(shared_data):
    """tokenizer.pad of window rows padded input_ids and left dt_ids (and the past columns) as they
    were, a short row's dt_ids shorter than its padded input_ids, without a word; with
    return_tensors='pt' (transformers.DataCollatorWithPadding) it failed with 'Unable to create
    tensor ... activate truncation and/or padding'. Now refused naming the columns and the
    collator that pads them; rows of input_ids alone pad as before. Real windows: A2929 wake."""
    import warnings

    from transformers import DataCollatorWithPadding

    from hf_neuroformer import NeuroformerProcessor
    from hf_neuroformer.io import load_recording

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rec = load_recording(shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"), epoch="wake")
    tok = NeuroformerTokenizer(current_window=0.05, past_window=0.1, dt_resolution=0.005)
    tok.add_units(rec)
    cols = NeuroformerProcessor(tok).tokenize(rec, 700.0 + 0.05 * np.arange(8))
    rows = [{k: cols[k][i] for k in ("input_ids", "dt_ids", "past_input_ids", "past_dt_ids")} for i in range(8)]
    assert len({len(r["input_ids"]) for r in rows}) > 1  # the premise: rows of several lengths
    said = r"^encoded_inputs: window rows with dt_ids, past_input_ids, past_dt_ids, which tokenizer.pad does not pad"
    with pytest.raises(ValueError, match=said):
        tok.pad(rows)
    with pytest.raises(ValueError, match=said):
        DataCollatorWithPadding(tok)(rows)
    with pytest.raises(ValueError, match=r"^encoded_inputs: window rows with past_dt_ids"):
        tok.pad({"input_ids": cols["input_ids"], "past_dt_ids": cols["past_dt_ids"]})
    padded = tok.pad([{"input_ids": r["input_ids"]} for r in rows], return_tensors="pt")
    n = max(len(r["input_ids"]) for r in rows)
    assert padded["input_ids"].shape == (8, n)
    assert padded["attention_mask"].sum(1).tolist() == [len(r["input_ids"]) for r in rows]
    batch = make_tok()(["sess/u1 sess/u2", "sess/u1"], padding=True)  # text: padded as before
    assert batch["input_ids"] == [[4, 5], [4, PAD]] and batch["attention_mask"] == [[1, 1], [1, 0]]


def test_spike_times_changed_in_place_after_the_check_are_refused_in_the_windows_that_read_them():
    """The whole-array check is cached per array object: an array that passed and was then changed
    in place (a NaN written in, two spikes swapped) was bisected without a word, giving windows
    without those spikes. The spikes each window reads are now checked again."""
    tok = NeuroformerTokenizer(unit_tokens=["s/a", "s/b", "s/c"], dt_resolution=0.01, current_window=0.1,
                               past_window=0.2)
    times, tokens = np.arange(0.005, 20.0, 0.01), np.full(2000, 3)
    tok.encode_window(times, tokens, 1.0)  # checked whole, and cached
    times[1500], times[1501] = times[1501], times[1500]  # 15.005 s and 15.015 s swapped
    assert tok.encode_window(times, tokens, 1.0)["n_spikes"] == 10  # a window far from the change
    with pytest.raises(ValueError, match=r"spike_times: expected ascending times, spike 1501 \(15\.00"):
        tok.encode_window(times, tokens, 15.0)
    times[1500], times[1501] = times[1501], times[1500]
    tok.encode_window(times, tokens, 15.0)
    times[1700] = np.nan
    with pytest.raises(ValueError, match="spike_times: expected finite times, spike 1700 is nan"):
        tok.encode_window(times, tokens, 17.05)  # in the past window of this one


def test_a_change_in_place_that_stops_the_bisection_inside_a_window_is_refused():
    """A NaN, or a spike swapped in from far away, written inside a window's run after the array's
    cached check stops the bisection at it: the slice the window read was ascending, and the
    window lost its later spikes without a word (7 of 10 current spikes). The check now reads two
    spikes either side of the slice too; the unchanged array gives the same window."""
    tok = NeuroformerTokenizer(unit_tokens=["s/a", "s/b", "s/c"], dt_resolution=0.01, current_window=0.1,
                               past_window=0.2)
    base, tokens = np.arange(0.005, 20.0, 0.01), np.full(2000, 3)
    assert tok.encode_window(base.copy(), tokens, 15.0)["n_spikes"] == 10
    for i, j in ((1507, None), (1509, 1809), (1500, 1200)):  # NaN at the end; swaps at the end, at the start
        times = base.copy()
        tok.encode_window(times, tokens, 1.0)  # checked whole, and cached
        if j is None:
            times[i] = np.nan
        else:
            times[i], times[j] = times[j], times[i]
        with pytest.raises(ValueError, match=r"spike_times: expected (finite|ascending) times"):
            tok.encode_window(times, tokens, 15.0)


def test_encode_window_refuses_unsorted_or_nan_spike_times():
    """encode_window finds its window by bisection: unsorted spike_times put both current spikes
    of [10.0, 10.1) in the past window, and a NaN spike (at the end, where numpy sorts NaN) fell in
    no window, without a word (float32 times, widened, kept their rounding: refused too). Each is now a ValueError naming spike_times and the fix; the sorted
    times give the window the rules give, also after another array was checked (the check is
    cached per array object only)."""
    tok = NeuroformerTokenizer(unit_tokens=["s/a", "s/b", "s/c"], dt_resolution=0.01, current_window=0.1,
                               past_window=0.2)
    times, tokens = np.array([10.02, 10.05, 9.9, 10.5]), np.array([3, 4, 5, 3])
    with pytest.raises(ValueError, match=r"spike_times: expected ascending times, spike 2 \(9.9 s\).*argsort"):
        tok.encode_window(times, tokens, 10.0)
    with pytest.raises(ValueError, match="spike_times: expected finite times, spike 3 is nan"):
        tok.encode_window(np.array([9.9, 10.02, 10.05, np.nan]), tokens, 10.0)
    with pytest.raises(ValueError, match="spike_times: expected ascending times"):
        tok.encode_window([10.02, 10.05, 9.9, 10.5], tokens, 10.0)  # a list, too
    with pytest.raises(ValueError, match=r"^spike_times: expected float64 times \(s\), got float32, which rounds "
                                         r"times of up to 10\.5 s .* e\.g\. spike 0: 9\.9 as float32 is "
                                         r"9\.899999618530273 s.*keeps the float32 rounding"):
        tok.encode_window(np.sort(times).astype(np.float32), tokens, 10.0)
    order = np.argsort(times, kind="stable")
    enc = tok.encode_window(times[order], tokens[order], 10.0)
    assert enc["input_ids"] == [BOS, 3, 4, EOS] and enc["dt_ids"] == [0, 2, 5, 5]
    assert enc["past_input_ids"] == [BOS, 5] and enc["past_dt_ids"] == [0, 10]
    with pytest.raises(ValueError, match="spike_times: expected ascending times"):
        tok.encode_window(times, tokens, 10.0)  # the checked sorted array did not let this one through


def test_decode_window_rows_decodes_each_row_as_decode_window():
    """generate_spikes decodes a batch of sampled windows at once (decode_window_rows): each row as
    decode_window decodes it (up to its first EOS or pad, BOS skipped, at the dt bin centres of its
    own start), and a row decode_window refuses is refused with decode_window's error."""
    from hf_neuroformer.generation import decode_window_rows

    tok = make_tok(dt_resolution=0.004, current_window=0.01)  # 3 dt bins
    ids = np.array([[BOS, 3, 4, EOS, 3], [BOS, EOS, 3, 3, 3], [BOS, 4, 4, 3, 3], [BOS, 3, PAD, 4, PAD]])
    dts = np.array([[0, 1, 2, 2, 0], [0, 0, 1, 1, 1], [0, 2, 1, 0, 0], [0, 2, 0, 1, 0]])
    starts = np.array([7.0, 1.5, 0.1, 4485.4])
    times, units = decode_window_rows(tok, ids, dts, starts)
    assert [len(t) for t in times] == [len(u) for u in units] == [2, 0, 4, 1]
    for k in range(len(ids)):
        t, u = tok.decode_window(ids[k], dts[k], starts[k])
        assert times[k].dtype == np.float64 and units[k].dtype == np.int64
        assert times[k].tolist() == t.tolist() and units[k].tolist() == u.tolist()
    with pytest.raises(UnknownUnitError, match=r"^input_ids: token 2 is id 99, not in the vocabulary"):
        decode_window_rows(tok, np.where(ids == 4, 99, ids), dts, starts)
    with pytest.raises(ValueError, match=r"dt_ids: expected dt bin ids in \[0, 3\)"):
        decode_window_rows(tok, ids, np.where(dts == 2, 3, dts), starts)
