"""Generation and the likelihood refuse a tokenizer that does not belong to the model.

A tokenizer grown with ``add_units`` (a new session) without ``model.resize_unit_embeddings``
made ``generate_spikes`` fail with a numpy ``IndexError`` deep inside, and a tokenizer with other
window settings (``current_window``, ``dt_resolution``, ...) was accepted and decoded the model's
dt bins into wrong spike times. Both paths now check up front, with one helper
(``check_tokenizer_matches_config``), and a saved checkpoint with its own tokenizer still works.
Real data: the A2929 head-direction recording (wake, 40 s).
"""

import dataclasses

import numpy as np
import pytest
from transformers import AutoModelForPreTraining, AutoTokenizer

import hf_neuroformer as nf
from hf_neuroformer.configuration_neuroformer import WINDOW_FIELDS
from hf_neuroformer.io import read_nwb
from hf_neuroformer.likelihood import window_log_likelihoods

from tiny_configs import untrained_model

A2929 = "pynapple_A2929_headdirection/A2929-200711.nwb"
STARTS = [680.0, 680.1, 680.2]


@pytest.fixture(scope="module")
def saved(shared_data, tmp_path_factory):
    rec = read_nwb(shared_data(A2929)).select_epoch("wake").restrict(670.0, 710.0)
    cfg = nf.NeuroformerConfig(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=24,
                               max_past_length=48, hidden_size=16, num_attention_heads=2, intermediate_size=32,
                               split_block_length=5.0)
    tok, model = untrained_model(rec, cfg)
    d = tmp_path_factory.mktemp("ckpt")
    model.save_pretrained(d)
    tok.save_pretrained(d)
    return rec, d


def _load(d):
    return AutoModelForPreTraining.from_pretrained(d).eval(), AutoTokenizer.from_pretrained(d)


def test_a_checkpoint_with_its_own_tokenizer_passes(saved):
    rec, d = saved
    model, tok = _load(d)
    g = nf.generate_spikes(model, tok, rec, STARTS, seed=0, progress=False)
    assert g.generation_stats["n_windows"] == len(STARTS)
    ll = window_log_likelihoods(model, tok, rec, STARTS)
    assert np.all(np.isfinite(ll["log_likelihood"]))


def test_a_grown_tokenizer_is_refused_until_the_model_is_resized(saved):
    rec, d = saved
    model, tok = _load(d)
    other = rec.select_units(range(4))
    other.session = "another-session"
    tok.add_units(other)  # a new session's units: the model has no embedding for them yet
    n, v = len(tok), model.config.vocab_size
    assert n == v + 4
    msg = rf"len\(tokenizer\) = {n} tokens, but model\.config\.vocab_size = {v}.*resize_unit_embeddings"
    with pytest.raises(ValueError, match=msg):
        nf.generate_spikes(model, tok, rec, STARTS, progress=False)
    with pytest.raises(ValueError, match=msg):
        window_log_likelihoods(model, tok, rec, STARTS)
    # a tokenizer smaller than the model's vocabulary is another tokenizer: refused too
    model2, tok2 = _load(d)
    model2.resize_unit_embeddings(n)
    with pytest.raises(ValueError, match=rf"len\(tokenizer\) = {v} tokens, but model\.config\.vocab_size = {n}"):
        nf.generate_spikes(model2, tok2, rec, STARTS, progress=False)
    # the fix the message names makes both paths work, on the new session's units too
    model.resize_unit_embeddings(len(tok))
    assert nf.generate_spikes(model, tok, other, STARTS, seed=0, progress=False).n_units == 4
    assert window_log_likelihoods(model, tok, other, STARTS)["log_likelihood"].shape == (len(STARTS),)


@pytest.mark.parametrize("field, value", [("current_window", 0.05), ("dt_resolution", 0.005), ("past_window", 0.5),
                                          ("max_window_length", 32), ("max_past_length", 64)])
def test_a_tokenizer_with_other_windows_is_refused(saved, field, value):
    rec, d = saved
    model, tok = _load(d)
    # e.g. an AutoTokenizer loaded from another run's directory
    other = nf.NeuroformerTokenizer(**{**{f: getattr(model.config, f) for f in WINDOW_FIELDS}, field: value})
    other.add_units(rec)
    assert len(other) == len(tok)  # same vocabulary, other windows
    msg = rf"tokenizer\.{field} = {value}, but model\.config\.{field} = {getattr(model.config, field)}"
    with pytest.raises(ValueError, match=msg):
        nf.generate_spikes(model, other, rec, STARTS, progress=False)
    with pytest.raises(ValueError, match=msg):
        window_log_likelihoods(model, other, rec, STARTS)


def test_resize_token_embeddings_grows_every_unit_table_and_round_trips(saved, tmp_path):
    """Break test: the transformers call after adding tokens, ``model.resize_token_embeddings(
    len(tokenizer))``, raised ``AttributeError: ... no attribute 'lm_head'`` on
    NeuroformerForPreTraining (after growing the input embedding), and the generic resize would
    have left the dt head's unit embedding at the old size. It now grows the unit embedding, the
    id head and the dt head's unit embedding, keeps the old rows, and saves and reloads with the
    grown tokenizer."""
    import torch

    rec, d = saved
    model, tok = _load(d)
    v = model.config.vocab_size
    old = {k: t.clone() for k, t in model.state_dict().items()}
    other = rec.select_units(range(4))
    other.session = "another-session"
    new_ids = tok.add_units(other)
    emb = model.resize_token_embeddings(len(tok))
    assert emb is model.get_input_embeddings() and emb.num_embeddings == len(tok) == v + 4
    assert model.config.vocab_size == v + 4
    assert model.id_head.out_features == v + 4 and model.dt_unit_embeddings.num_embeddings == v + 4
    state = model.state_dict()
    for k, t in old.items():  # the old rows are kept, every other weight untouched
        assert torch.equal(state[k][tuple(slice(0, n) for n in t.shape)], t), k
    model.save_pretrained(tmp_path / "grown")
    tok.save_pretrained(tmp_path / "grown")
    model2, tok2 = _load(tmp_path / "grown")
    assert len(tok2) == v + 4 and tok2.convert_tokens_to_ids(tok.convert_ids_to_tokens(new_ids)) == new_ids
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), model2.state_dict().values()))
    assert window_log_likelihoods(model2, tok2, other, STARTS)["log_likelihood"].shape == (len(STARTS),)
    assert model.resize_token_embeddings() is model.get_input_embeddings()  # None keeps the size
    # rounding up would leave vocab_size != len(tokenizer): the processor and generate_spikes then
    # refused the model as "not the model's tokenizer", and the unused rows took softmax mass
    n = len(tok)
    with pytest.raises(ValueError, match=rf"^pad_to_multiple_of: rounding the unit vocabulary up from {n} to "
                                         rf"{8 * -(-n // 8)} rows is not supported"):
        model.resize_token_embeddings(n, pad_to_multiple_of=8)
    assert model.config.vocab_size == n and model.id_head.out_features == n
    assert model.resize_token_embeddings(n, pad_to_multiple_of=n).num_embeddings == n  # already a multiple
    with pytest.raises(ValueError, match=r"new_num_tokens: expected >= current vocab_size .* got 3"):
        model.resize_token_embeddings(3)


def test_decoder_and_backbone_resize_like_the_pretraining_model():
    """NeuroformerModel and NeuroformerForBehaviorDecoding had transformers' generic resize: it
    rounded the unit vocabulary up with pad_to_multiple_of (refused by the pretraining model since
    8d6c04a) and left the decoder's generative id head and dt unit embedding at the old size, so
    a new unit's token failed in them."""
    import copy

    import torch

    cfg = nf.NeuroformerConfig(current_window=0.05, past_window=0.1, dt_resolution=0.005, hidden_size=16,
                               num_attention_heads=2, num_hidden_layers=1, intermediate_size=32, vocab_size=10,
                               decoding_generative_loss_weight=0.5,
                               decoding_targets=[{"name": "x", "kind": "regression", "mean": 0.0, "std": 1.0}])
    torch.manual_seed(0)
    for model in (nf.NeuroformerModel(copy.deepcopy(cfg)), nf.NeuroformerForBehaviorDecoding(copy.deepcopy(cfg))):
        name = type(model).__name__
        before = model.get_input_embeddings().weight.detach().clone()
        with pytest.raises(ValueError, match=r"^pad_to_multiple_of: rounding the unit vocabulary up from 13 to 16"):
            model.resize_token_embeddings(13, pad_to_multiple_of=8)
        assert model.config.vocab_size == 10, name
        emb = model.resize_token_embeddings(13)
        assert emb.num_embeddings == model.config.vocab_size == 13, name
        assert torch.equal(emb.weight[:10], before), name
        if isinstance(model, nf.NeuroformerForBehaviorDecoding):
            assert model.id_head.out_features == model.dt_unit_embeddings.num_embeddings == 13


def test_resize_takes_numpy_sizes_and_refuses_fractions(tmp_path):
    """model.resize_unit_embeddings(np.int64(9)) stored the numpy integer as config.vocab_size, and
    save_pretrained then failed ("Object of type int64 is not JSON serializable") after writing an
    empty config.json; resize_token_embeddings(8.7) truncated to 8 rows. The size is now a Python int
    (numpy integers taken) and a fraction is a ValueError naming the argument."""
    from tiny_configs import small_config

    model = nf.NeuroformerForPreTraining(small_config(vocab_size=7))
    with pytest.raises(ValueError, match=r"resize_token_embeddings\.new_num_tokens: expected a whole number"):
        model.resize_token_embeddings(8.7)
    assert model.config.vocab_size == 7
    model.resize_unit_embeddings(np.int64(9))
    assert type(model.config.vocab_size) is int and model.config.vocab_size == 9
    model.save_pretrained(tmp_path)
    again = AutoModelForPreTraining.from_pretrained(tmp_path)
    assert again.get_input_embeddings().num_embeddings == 9 and again.id_head.out_features == 9


def test_the_model_names_both_sizes_and_select_units_for_unit_ids_past_its_vocabulary(saved):
    """Break test: windows tokenized with a tokenizer grown by add_units (a bare processor, or the collator on
    tokenize_windows' rows) reached the model, which said only "expected ids in [0, v) ... grow the model with
    model.resize_unit_embeddings", advice that leaves a trained model with untrained rows for the new units.
    It now names config.vocab_size, the largest id and recording.select_units, the way to read the units it knows."""
    rec, d = saved
    model, tok = _load(d)
    v = model.config.vocab_size
    other = dataclasses.replace(rec, session="another-session")  # the same spikes, as units of another session
    tok.add_units(other)
    inputs = nf.NeuroformerProcessor(tok)(other, STARTS)  # a bare processor: no model to hold the tokenizer to
    top = int(inputs["input_ids"].max())
    assert top >= v
    with pytest.raises(ValueError, match=rf"^input_ids: expected ids in \[0, {v}\), got values in \[0, {top}\] "
                                         rf"\(config\.vocab_size = {v}, but the tokenizer gave unit ids up to {top}.*"
                                         r"recording\.select_units.*resize_unit_embeddings"):
        model(**inputs)
