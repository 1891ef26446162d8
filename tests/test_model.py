"""The network: shapes, causality, attention back-ends, losses, vocabulary growth."""

import json
import re
import numpy as np
import pytest
import torch

import hf_neuroformer as nf
from hf_neuroformer.windows import NeuroformerCollator, build_window_datasets


def tiny_config(**kw):
    base = dict(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=24,
                max_past_length=48, hidden_size=32, num_attention_heads=4, num_past_layers=1,
                num_hidden_layers=2, intermediate_size=64, hidden_dropout=0.0, split_block_length=10.0)
    base.update(kw)
    return nf.NeuroformerConfig(**base)


@pytest.fixture(scope="module")
def batch_and_model():
    torch.manual_seed(0)
    rec = nf.simulate_coupled_network(n_units=8, duration=60.0, seed=1).recording
    cfg = tiny_config()
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(rec)
    cfg.vocab_size = len(tok)
    ds, _ = build_window_datasets(rec, tok, cfg)
    rows = ds["train"][:8]
    batch = NeuroformerCollator()([dict(zip(rows, v)) for v in zip(*rows.values())])
    model = nf.NeuroformerForPreTraining(cfg).eval()
    return batch, model, ds


def test_output_shapes(batch_and_model):
    batch, model, _ = batch_and_model
    out = model(**batch)
    b, t = batch["input_ids"].shape
    assert out.logits.shape == (b, t, model.config.vocab_size)
    assert out.dt_logits.shape == (b, t, model.config.num_dt_bins)
    assert out.loss.ndim == 0 and torch.isfinite(out.loss)
    assert torch.allclose(out.loss, out.id_loss + model.config.dt_loss_weight * out.dt_loss)
    # the two losses by hand, from the documented rule (position i predicts token i + 1; -100 is
    # left out; mean over the labelled targets), not from the parts the model returns: the sum
    # above alone also holds for a loss without the shift or over the padding
    for logits, labels, got in ((out.logits, batch["labels"], out.id_loss),
                                (out.dt_logits, batch["dt_labels"], out.dt_loss)):
        logp = torch.log_softmax(logits.double(), -1)
        terms = [-logp[i, j, labels[i, j + 1]] for i in range(b) for j in range(t - 1) if labels[i, j + 1] != -100]
        assert len(terms) > b  # several labelled targets per window
        assert got.item() == pytest.approx(torch.stack(terms).mean().item(), rel=1e-5)


def test_causal_future_tokens_do_not_change_past_logits(batch_and_model):
    batch, model, _ = batch_and_model
    out = model(**batch)
    changed = {k: v.clone() for k, v in batch.items()}
    # change the last real token of row 0 and everything after position 2
    changed["input_ids"][0, 3:] = torch.where(changed["attention_mask"][0, 3:] > 0, 3, 0)
    out2 = model(**changed)
    assert torch.allclose(out.logits[0, :3], out2.logits[0, :3], atol=1e-6)
    # dt at position i is the dt of token i + 1 given that token's unit (dt_conditioned_on_unit):
    # positions 0-1 are untouched, position 2 reads the changed token 3
    assert torch.allclose(out.dt_logits[0, :2], out2.dt_logits[0, :2], atol=1e-6)
    assert batch["input_ids"][0, 3] != 3  # token 3 really changed (this check sat under an if)
    assert not torch.allclose(out.dt_logits[0, 2], out2.dt_logits[0, 2], atol=1e-6)


def test_past_window_is_used(batch_and_model):
    batch, model, _ = batch_and_model
    out = model(**batch)
    changed = {k: v.clone() for k, v in batch.items()}
    changed["past_input_ids"] = torch.where(changed["past_attention_mask"] > 0, 3, 0)
    changed["past_input_ids"][:, 0] = 1
    out2 = model(**changed)
    assert not torch.allclose(out.logits, out2.logits, atol=1e-4)


def test_padding_does_not_change_real_positions(batch_and_model):
    batch, model, _ = batch_and_model
    single = {k: v[:1] for k, v in batch.items()}
    n = int(single["attention_mask"].sum())
    np_ = int(single["past_attention_mask"].sum())
    trimmed = {k: (v[:, :n] if k in ("input_ids", "dt_ids", "attention_mask", "labels", "dt_labels") else v[:, :np_])
               for k, v in single.items()}
    a = model(**single).logits[0, :n]
    b = model(**trimmed).logits[0, :n]
    assert torch.allclose(a, b, atol=1e-5)


def test_left_padding_is_refused_and_the_past_may_be_padded_on_either_side(batch_and_model):
    """The current window's positions are absolute: a left-padded window (transformers'
    ``padding_side="left"``) had its tokens embedded at shifted positions and gave other logits
    than the same window alone (max difference 0.08 here), without an error. The past encoder has
    no positions: padding it on the left changes nothing."""
    batch, model, _ = batch_and_model
    n, np_ = int(batch["attention_mask"][0].sum()), int(batch["past_attention_mask"][0].sum())
    alone = {k: v[:1, :np_] if k.startswith("past") else v[:1, :n] for k, v in batch.items()}
    fill = {"labels": -100, "dt_labels": -100}

    def left(keys, width):
        return {k: torch.cat([torch.full((1, width), fill.get(k, 0)), v], 1) if k in keys else v
                for k, v in alone.items()}

    ref = model(**alone).logits
    past_keys = ("past_input_ids", "past_dt_ids", "past_attention_mask")
    assert torch.allclose(model(**left(past_keys, 2)).logits, ref, atol=1e-5)
    padded = left(("input_ids", "dt_ids", "attention_mask", "labels", "dt_labels"), 2)
    with pytest.raises(ValueError, match=r"attention_mask: expected right padding .* position 2 of row 0 after padding"):
        model(**padded)
    # the pooled embedding reads the same positions (it averaged the shifted states silently)
    with pytest.raises(ValueError, match=r"attention_mask: expected right padding"):
        model.get_neural_embeddings(**{k: v for k, v in padded.items() if "labels" not in k})


def test_a_cached_row_that_ends_in_padding_is_not_told_to_pad_on_the_right(batch_and_model):
    """Stepping a right-padded batch of windows of different lengths with the KV cache puts the shorter
    row's new token after its padding; that is refused (its position would be wrong), but the message
    said "pad on the right", which the batch already was. It now names the cached padding and the way out;
    rows of equal length step on, and left padding of the new tokens gets the usual message."""
    batch, model, _ = batch_and_model
    lengths = batch["attention_mask"].sum(1)
    i, j = int(lengths.argmax()), int(lengths.argmin())
    assert lengths[i] > lengths[j]
    n = int(lengths[i])
    rows = {k: batch[k][[i, j]] for k in ("past_input_ids", "past_dt_ids", "past_attention_mask")}
    nfm = model.neuroformer
    with torch.no_grad():
        first = nfm(input_ids=batch["input_ids"][[i, j], :n], dt_ids=batch["dt_ids"][[i, j], :n],
                    attention_mask=batch["attention_mask"][[i, j], :n], use_cache=True, **rows)
        mask = torch.cat([batch["attention_mask"][[i, j], :n], torch.ones(2, 1, dtype=torch.long)], 1)
        step = dict(input_ids=torch.full((2, 1), 3), dt_ids=torch.zeros(2, 1, dtype=torch.long), **rows)
        with pytest.raises(ValueError, match=rf"attention_mask: row 1 has padding among its {n} cached tokens and a real "
                                             rf"new token at position {n} after it; .* step together only rows of equal "
                                             "length"):
            nfm(attention_mask=mask, cache=first.cache, **step)
        same = nfm(input_ids=batch["input_ids"][[i, i], :n], dt_ids=batch["dt_ids"][[i, i], :n], use_cache=True,
                   **{k: v[[0, 0]] for k, v in rows.items()})
        assert nfm(cache=same.cache, **{**step, **{k: v[[0, 0]] for k, v in rows.items()}}).last_hidden_state.shape[1] == 1
        two = dict(input_ids=torch.tensor([[0, 3], [3, 3]]), dt_ids=torch.zeros(2, 2, dtype=torch.long),
                   **{k: v[[0, 0]] for k, v in rows.items()})
        same = nfm(input_ids=batch["input_ids"][[i, i], :n], dt_ids=batch["dt_ids"][[i, i], :n], use_cache=True,
                   **{k: v[[0, 0]] for k, v in rows.items()})
        with pytest.raises(ValueError, match=r"attention_mask: expected right padding"):
            nfm(attention_mask=torch.tensor([[1] * n + [0, 1], [1] * (n + 2)]), cache=same.cache, **two)


def test_sdpa_and_eager_agree_and_attentions_are_returned(batch_and_model):
    batch, model, _ = batch_and_model
    out_sdpa = model(**batch)
    out_eager = model(**batch, output_attentions=True)
    assert torch.allclose(out_sdpa.logits, out_eager.logits, atol=1e-5)
    cfg = model.config
    t = batch["input_ids"].shape[1]
    p = batch["past_input_ids"].shape[1]
    assert len(out_eager.attentions) == cfg.num_hidden_layers
    assert out_eager.attentions[0].shape == (8, cfg.num_attention_heads, t, t)
    assert out_eager.cross_attentions[0].shape == (8, cfg.num_attention_heads, t, p)
    # causal: no weight on future positions; rows sum to 1
    w = out_eager.attentions[0]
    assert torch.all(w.triu(1) < 1e-6)
    assert torch.allclose(w.sum(-1), torch.ones_like(w.sum(-1)), atol=1e-5)
    # padded past positions get no cross-attention
    pm = batch["past_attention_mask"].bool()
    cw = out_eager.cross_attentions[0]
    assert torch.all(cw.masked_select(~pm[:, None, None, :].expand_as(cw)) < 1e-6)


def test_bad_ids_raise_clear_errors(batch_and_model):
    batch, model, _ = batch_and_model
    bad = dict(batch)
    bad["input_ids"] = batch["input_ids"].clone()
    bad["input_ids"][0, 1] = model.config.vocab_size + 5
    with pytest.raises(ValueError, match="input_ids"):
        model(**bad)
    bad = dict(batch)
    bad["dt_ids"] = batch["dt_ids"].clone()
    bad["dt_ids"][0, 1] = model.config.num_dt_bins
    with pytest.raises(ValueError, match="dt_ids"):
        model(**bad)
    with pytest.raises(ValueError, match="past_input_ids"):
        model(input_ids=batch["input_ids"], dt_ids=batch["dt_ids"])
    # the past window's bins are range-checked like dt_ids (999 was accepted silently)
    n_past = model.config.num_past_dt_bins
    for value in (n_past, 999, -1):
        bad = dict(batch)
        bad["past_dt_ids"] = batch["past_dt_ids"].clone()
        bad["past_dt_ids"][0, 0] = value
        with pytest.raises(ValueError, match=rf"past_dt_ids: expected ids in \[0, {n_past}\), got values in"):
            model(**bad)
    bad["past_dt_ids"][0, 0] = n_past - 1  # the last past bin is fine
    model(**bad)


@pytest.mark.parametrize("field", ["input_ids", "dt_ids", "past_input_ids", "past_dt_ids", "labels", "dt_labels"])
def test_float_ids_and_labels_are_refused_naming_the_field(batch_and_model, field):
    """Tensors built from float arrays: float input_ids failed inside nn.Embedding ("Expected tensor
    for argument #1 'indices' ..."), float dt ids and labels were cut to ids (3.7 -> 3) without a word."""
    batch, model, _ = batch_and_model
    bad = dict(batch)
    bad[field] = batch[field].float() + 0.7 * (batch[field] >= 0)
    with pytest.raises(ValueError, match=rf"{field}: expected integer ids \(torch.int64.*got dtype torch.float32"):
        model(**bad)


@pytest.mark.parametrize("field", ["input_ids", "past_input_ids"])
def test_narrow_integer_unit_ids_are_refused_naming_the_field(batch_and_model, field):
    """nn.Embedding takes int64 / int32 indices only: int16 or uint8 unit ids (ids kept small on
    disk) failed inside it ("Expected tensor for argument #1 'indices' ...: Long, Int"), past the
    float check; int32 ids still run and give the int64 loss."""
    batch, model, _ = batch_and_model
    for dtype in (torch.int16, torch.uint8):
        with pytest.raises(ValueError, match=rf"{field}: expected integer ids \(torch.int64 or int32\), got dtype "
                                             rf"{dtype}; convert with \.long\(\)"):
            model(**{**batch, field: batch[field].to(dtype)})
    assert torch.equal(model(**{**batch, field: batch[field].int()}).loss, model(**batch).loss)


def test_generate_refuses_and_points_to_generate_spikes(batch_and_model):
    _, model, _ = batch_and_model
    with pytest.raises(NotImplementedError, match="generate_spikes"):
        model.generate(input_ids=torch.ones(1, 1, dtype=torch.long))


def test_training_steps_reduce_loss(batch_and_model):
    batch, _, _ = batch_and_model
    torch.manual_seed(0)
    model = nf.NeuroformerForPreTraining(batch_and_model[1].config).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = model(**batch).loss.item()
    for _ in range(30):
        loss = model(**batch).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert loss.item() < 0.7 * first


def test_resize_unit_embeddings_keeps_old_rows(batch_and_model):
    batch, model, _ = batch_and_model
    import copy

    m = copy.deepcopy(model)
    old = m.config.vocab_size
    o1 = m(**batch)
    m.resize_unit_embeddings(old + 5)
    o2 = m(**batch)
    assert o2.logits.shape[-1] == old + 5 and m.dt_unit_embeddings.num_embeddings == old + 5
    assert torch.allclose(o1.logits, o2.logits[..., :old], atol=1e-6)
    assert torch.allclose(o1.dt_logits, o2.dt_logits, atol=1e-6)
    with pytest.raises(ValueError, match="new_vocab_size"):
        m.resize_unit_embeddings(3)


def test_split_gap_message_gives_the_gap_its_reason():
    """The split_gap message said the gap was there "so that no window reads spikes of another split",
    while each segment's past_window lead-in does that and the docstrings call the gap a margin: the
    message now says so, and names the value and the minimum."""
    with pytest.raises(ValueError, match=r"^NeuroformerConfig\.split_gap: expected a finite number of seconds, at least "
                                         r"past_window \(1\.0 s\): a margin left out at each boundary between splits, "
                                         r".*each segment's past_window lead-in already keeps every window's past "
                                         r"inside its own split.*0\.5") as err:
        nf.NeuroformerConfig(past_window=1.0, split_gap=0.5)
    assert "no window reads spikes of another split" not in str(err.value)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="hidden_size"):
        nf.NeuroformerConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match="current_window"):
        nf.NeuroformerConfig(current_window=-1)
    with pytest.raises(ValueError, match="split_gap"):
        nf.NeuroformerConfig(past_window=1.0, split_gap=0.5)
    with pytest.raises(ValueError, match="split_fractions"):
        nf.NeuroformerConfig(split_fractions=(0.5, 0.5, 0.5))
    # integer fields: a fraction, text or a bool is refused by name instead of truncated; 64.0 and numpy ints are fine
    for kw, shown in (({"hidden_size": 16.5}, "16.5"), ({"num_hidden_layers": "2"}, "'2'"),
                      ({"max_past_length": True}, "True"), ({"num_modality_layers": 1.5}, "1.5")):
        (name,) = kw
        with pytest.raises(ValueError, match=rf"NeuroformerConfig\.{name}: expected an integer, got {shown}"):
            nf.NeuroformerConfig(**kw)
    c = nf.NeuroformerConfig(hidden_size=64.0, num_hidden_layers=np.int64(3))
    assert (c.hidden_size, c.num_hidden_layers) == (64, 3) and type(c.num_hidden_layers) is int


def test_optional_integer_fields_and_decoding_target_counts_take_a_yaml_float_as_an_int():
    """``decoding_head_hidden_size``, ``contrastive_projection_size`` and a decoding target's
    ``num_classes`` / ``column`` refused ``64.0`` (``is_whole_number`` / ``isinstance(v, int)``), unlike
    every other integer field (checked_int takes a float with no fraction, as YAML may write it); they
    take it now, stored as an int, and still refuse 3.7, "2" and True by name."""
    mod = [{"name": "hd", "source": "behaviour:ry", "kind": "continuous"}]
    c = nf.NeuroformerConfig(decoding_head_hidden_size=64.0, contrastive_projection_size=8.0, modalities=mod,
                             contrastive_loss_weight=0.5,
                             decoding_targets=[{"name": "c", "kind": "classification", "num_classes": 3.0},
                                               {"name": "x", "kind": "regression", "column": 1.0}])
    got = [c.decoding_head_hidden_size, c.contrastive_projection_size, c.decoding_targets[0]["num_classes"],
           c.decoding_targets[1]["column"]]
    assert got == [64, 8, 3, 1] and all(type(v) is int for v in got)
    saved = json.loads(c.to_json_string())
    assert [saved["decoding_head_hidden_size"], saved["contrastive_projection_size"]] == [64, 8]
    for bad in (3.7, "2", True):
        for kw, field in (({"decoding_head_hidden_size": bad}, r"decoding_head_hidden_size: expected an integer"),
                          ({"contrastive_projection_size": bad, "modalities": mod},
                           r"contrastive_projection_size: expected an integer"),
                          ({"decoding_targets": [{"name": "c", "kind": "classification", "num_classes": bad}]},
                           r"decoding_targets\[0\] \('c'\): a classification target needs num_classes"),
                          ({"decoding_targets": [{"name": "x", "kind": "regression", "column": bad}]},
                           r"decoding_targets\[0\]\.column \('x'\): expected None or an integer")):
            with pytest.raises(ValueError, match=field):
                nf.NeuroformerConfig(**kw)


FLOAT_FIELDS = ("current_window", "past_window", "window_stride", "dt_resolution", "hidden_dropout",
                "attention_dropout", "layer_norm_eps", "initializer_range", "temporal_min_period",
                "temporal_max_period", "dt_loss_weight", "split_block_length", "split_gap",
                "decoding_generative_loss_weight", "contrastive_loss_weight", "contrastive_temperature")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_config_refuses_nan_and_inf_in_every_float_field(bad):
    """``x < bound`` is False for NaN: split_gap, split_fractions, dt_loss_weight (and others) took NaN."""
    for name in FLOAT_FIELDS:
        with pytest.raises(ValueError, match=rf"NeuroformerConfig\.{name}: expected"):
            nf.NeuroformerConfig(**{name: bad})
    for i in range(3):
        fr = [0.5, 0.25, 0.25]
        fr[i] = bad
        with pytest.raises(ValueError, match=rf"NeuroformerConfig\.split_fractions\[{i}\]: expected a finite"):
            nf.NeuroformerConfig(split_fractions=fr)
    for key in ("weight", "mean", "std"):
        target = {"name": "x", "kind": "regression", "weight": 1.0, "mean": 0.0, "std": 1.0, key: bad}
        with pytest.raises(ValueError, match=rf"NeuroformerConfig\.decoding_targets\[0\]\.{key} \('x'\): expected"):
            nf.NeuroformerConfig(decoding_targets=[target])
    # a value set after construction (apply_config_overrides sets, then checks) is caught by _check too
    c = nf.NeuroformerConfig()
    c.dt_loss_weight = bad
    with pytest.raises(ValueError, match=r"NeuroformerConfig\.dt_loss_weight: expected a finite number >= 0"):
        c._check()


def test_config_bool_fields_take_only_true_or_false():
    """YAML ``dt_conditioned_on_unit: "no"`` became True (a non-empty string is truthy)."""
    for name in ("dt_conditioned_on_unit", "contrastive_learnable_temperature"):
        for bad in ("no", "false", "False", 0, 1, None):
            with pytest.raises(ValueError, match=rf"NeuroformerConfig\.{name}: expected true or false, got"):
                nf.NeuroformerConfig(**{name: bad})
        assert getattr(nf.NeuroformerConfig(**{name: False}), name) is False
    mod = {"name": "ry", "source": "behaviour:ry", "kind": "continuous", "allow_future": "false"}
    with pytest.raises(ValueError, match=r"modalities\[0\] \('ry'\)\.allow_future: expected true or false"):
        nf.NeuroformerConfig(modalities=[mod])
    # set after construction (as apply_config_overrides does), _check refuses it too
    c = nf.NeuroformerConfig()
    c.dt_conditioned_on_unit = "false"
    with pytest.raises(ValueError, match=r"dt_conditioned_on_unit: expected true or false"):
        c._check()
    c = nf.NeuroformerConfig()
    c.hidden_size = 3.7
    with pytest.raises(ValueError, match=r"NeuroformerConfig\.hidden_size: expected an integer >= 1, got 3.7"):
        c._check()


def test_a_text_bool_says_yaml_for_a_config_field_and_python_for_a_keyword_argument(tmp_path):
    """checked_bool's hint "(quoted in the YAML file? ...)" was given for train / finetune keyword
    arguments too (train(write_figures="False")), which no YAML file holds: they now say that text is
    not a bool; a config field (read from YAML) keeps the YAML hint."""
    from hf_neuroformer.decoding import DecodingTarget
    from hf_neuroformer.finetuning import finetune
    from hf_neuroformer.training import train

    with pytest.raises(ValueError, match=r"^NeuroformerConfig\.dt_conditioned_on_unit: expected true or false, got "
                                         r"'no' \(quoted in the YAML file\? write true or false without quotes\)$"):
        nf.NeuroformerConfig(dt_conditioned_on_unit="no")
    out = tmp_path / "out"
    keyword = r" \(text, not a bool: pass True or False without quotes\)$"
    with pytest.raises(ValueError, match=r"^train\.write_figures: expected true or false, got 'False'" + keyword):
        train(tmp_path / "never_read", out, write_figures="False")  # refused before the recording is read
    rec = nf.simulate_coupled_network(n_units=2, duration=1.0, seed=0).recording
    with pytest.raises(ValueError, match=r"^finetune\.from_scratch: expected true or false, got 'no'" + keyword):
        finetune(None, rec, [DecodingTarget("wave", "regression")], output_dir=out, from_scratch="no")
    assert not out.exists()


def test_save_pretrained_refuses_a_field_set_to_a_bad_value_after_construction(batch_and_model, tmp_path):
    """``model.config.hidden_dropout = 1.5`` then ``save_pretrained`` wrote a config.json that
    ``from_pretrained`` refused, so the saved model could not be loaded; transformers validates its
    own strict configs before writing (``config.validate()``). Nothing of the model is written, and
    the folder is not created (transformers made it before validating: an empty folder was left)."""
    _, model, _ = batch_and_model
    for name, value, said in (("hidden_dropout", 1.5, "a dropout probability in"), ("max_window_length", 2, ">= 3")):
        config = nf.NeuroformerConfig.from_dict(model.config.to_dict())
        setattr(config, name, value)
        with pytest.raises(ValueError, match=rf"NeuroformerConfig\.{name}: expected {said}"):
            config.save_pretrained(tmp_path / name)
        assert not (tmp_path / name / "config.json").exists()
    old = model.config.hidden_dropout
    try:
        model.config.hidden_dropout = 1.5
        with pytest.raises(ValueError, match=r"NeuroformerConfig\.hidden_dropout"):
            model.save_pretrained(tmp_path / "model")
        assert not (tmp_path / "model").exists()
    finally:
        model.config.hidden_dropout = old
    old, model.config.hidden_act = model.config.hidden_act, "nope"  # a field the checks at save did not cover
    try:
        with pytest.raises(ValueError, match=r"^NeuroformerConfig\.hidden_act: expected an activation name"):
            model.save_pretrained(tmp_path / "model")
        assert not (tmp_path / "model").exists()
    finally:
        model.config.hidden_act = old


def test_an_integer_field_set_after_construction_is_saved_as_an_int(tmp_path):
    """``config.hidden_size = 64.0`` (or ``vocab_size``, a window budget) set after construction
    passed ``validate()`` and was written to config.json as ``64.0``; ``vocab_size = 3.7`` was not
    checked at all (only ``>= 3``) and gave a config.json that ``from_pretrained`` refused. Saving
    now stores each as the constructor does, an int, and refuses a fraction by name."""
    c = nf.NeuroformerConfig(hidden_size=32, num_attention_heads=2)
    c.hidden_size, c.max_window_length, c.vocab_size = 64.0, 32.0, 10.0
    c.save_pretrained(tmp_path / "a")
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    got = [saved[k] for k in ("hidden_size", "max_window_length", "vocab_size")]
    assert got == [64, 32, 10] and all(type(v) is int for v in got), got
    c.vocab_size = 3.7
    with pytest.raises(ValueError, match=r"NeuroformerConfig\.vocab_size: expected an integer, got 3\.7"):
        c.save_pretrained(tmp_path / "b")
    assert not (tmp_path / "b" / "config.json").exists()


def test_save_pretrained_keeps_transformers_own_config_validators(batch_and_model, tmp_path):
    """NeuroformerConfig.validate() ran only the package's field checks: overriding transformers'
    validate() dropped its class validators, so a model loaded with eager attention and
    output_attentions=True, switched to sdpa, saved a config.json with both (transformers refused to
    save it before). Both kinds of check run now, the package's first."""
    _, model, _ = batch_and_model
    model.save_pretrained(tmp_path / "base")
    m = nf.NeuroformerForPreTraining.from_pretrained(tmp_path / "base", attn_implementation="eager",
                                                     output_attentions=True)
    m.set_attn_implementation("sdpa")
    from huggingface_hub.errors import StrictDataclassClassValidationError

    with pytest.raises(StrictDataclassClassValidationError, match=r"validate_output_attentions(.|\n)*not supported "
                                                                  r".* sdpa"):
        m.save_pretrained(tmp_path / "m")
    assert not (tmp_path / "m" / "config.json").exists()
    m.config.hidden_dropout = 1.5  # the package's check comes first, naming the field
    with pytest.raises(ValueError, match=r"NeuroformerConfig\.hidden_dropout"):
        m.config.validate()


def test_past_spikes_in_a_partial_last_bin_are_embedded_before_the_current_window(shared_data):
    """A past window that dt_resolution does not divide ends in a partial bin (tokenizer bins are
    anchored at the past window's start): its spikes lie in [-(past_window mod res), 0) s, and the
    model must place them there, at the centre of that part, as ``current_times`` does for the
    current window's last bin. They were embedded at bin start + res / 2, after the current
    window's start (+5 ms here), i.e. at the time of current-window spikes."""
    from hf_neuroformer.io import load_recording

    rec = load_recording(shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"), epoch="wake")
    cw, pw, res = 0.1, 0.045, 0.02  # past bins [0, 20), [20, 40), [40, 45) ms from its start
    cfg = tiny_config(current_window=cw, past_window=pw, dt_resolution=res, max_past_length=400)
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(rec)
    cfg.vocab_size = len(tok)
    model = nf.NeuroformerModel(cfg).eval()
    tokens = tok.unit_token_ids(rec)[rec.unit_ids]
    n_last, worst = 0, 0.0
    for w0 in 700.0 + cw * np.arange(200):
        enc = tok.encode_window(rec.spike_times, tokens, w0)
        true_rel = np.sort(rec.spike_times[(rec.spike_times >= w0 - pw) & (rec.spike_times < w0)] - w0)
        bins = torch.tensor(enc["past_dt_ids"][1:])
        got = model.past_times(bins).double().numpy()
        assert np.all(got < 0), f"past spikes embedded at {got.max()} s, not before the current window"
        # the bin's part inside the past window, by hand: [k * res, min((k + 1) * res, pw)) - pw
        lo = bins.numpy() * res - pw
        hi = np.minimum((bins.numpy() + 1) * res, pw) - pw
        np.testing.assert_allclose(got, (lo + hi) / 2, atol=1e-7)
        worst = max(worst, float(np.abs(np.sort(got) - true_rel).max(initial=0.0)))
        n_last += int((bins == cfg.num_past_dt_bins - 1).sum())
    assert n_last > 20  # the partial bin really held spikes
    assert worst <= res / 2 + 1e-7  # every past spike within half a bin of its recorded time


def test_int32_ids_and_labels_give_the_int64_outputs(batch_and_model):
    """int32 tensors (numpy's default int on some platforms) are ids like int64 ones: the loss
    failed inside F.cross_entropy ("expected target dtype to be Long") for int32 labels."""
    batch, model, _ = batch_and_model
    with torch.no_grad():
        ref = model(**batch)
        out = model(**{k: v.int() for k, v in batch.items()})
    assert torch.equal(out.logits, ref.logits) and torch.equal(out.dt_logits, ref.dt_logits)
    assert out.loss.item() == ref.loss.item() and out.dt_loss.item() == ref.dt_loss.item()


@pytest.mark.parametrize("field,value", [("pad_token_id", 5), ("bos_token_id", 0), ("eos_token_id", None),
                                         ("pad_token_id", 1.5)])
def test_config_refuses_special_token_ids_the_tokenizer_does_not_use(field, value):
    """The tokenizer's specials are fixed (<pad> 0, <bos> 1, <eos> 2) and unit tokens start at 3:
    a config with pad_token_id 5 was accepted, and the model then treated unit 5's spikes as
    padding (zero embedding, masked out when no attention_mask is given) without an error."""
    with pytest.raises(ValueError, match=rf"NeuroformerConfig\.{field}: expected {'012'[['pad', 'bos', 'eos'].index(field[:3])]}"):
        tiny_config(**{field: value})
    cfg = tiny_config()
    assert (cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id) == (0, 1, 2)
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id) == (0, 1, 2)


@pytest.mark.parametrize("field,make", [
    ("dt_ids", lambda b: b["dt_ids"][:1]),                              # (1, T): broadcast over the batch
    ("dt_ids", lambda b: b["dt_ids"][0]),                               # (T,)
    ("dt_ids", lambda b: b["dt_ids"][:, :1]),                           # (B, 1): broadcast over the tokens
    ("past_dt_ids", lambda b: b["past_dt_ids"][:1]),
    ("past_dt_ids", lambda b: b["past_dt_ids"][:, :1]),
    ("attention_mask", lambda b: b["attention_mask"][:1]),
    ("past_attention_mask", lambda b: b["past_attention_mask"][:1]),
    ("past_attention_mask", lambda b: b["past_attention_mask"][:, :-1]),
    ("past_input_ids", lambda b: b["past_input_ids"][:1]),
    ("labels", lambda b: b["labels"][:, :-1]),
    ("dt_labels", lambda b: b["dt_labels"][:1]),
])
def test_mismatched_input_shapes_are_refused_naming_the_field(batch_and_model, field, make):
    """dt_ids, past_dt_ids and the attention masks were added to or combined with the ids by
    broadcasting: a (1, T) or (B, 1) dt_ids ran without an error, every window reading the first
    window's dt bins (or every token its window's first bin); labels of another shape failed in
    F.cross_entropy with a message naming no field."""
    batch, model, _ = batch_and_model
    bad = dict(batch)
    bad[field] = make(batch)
    if field == "past_input_ids":  # the whole past of one window for a batch of 8
        bad.update(past_dt_ids=batch["past_dt_ids"][:1], past_attention_mask=batch["past_attention_mask"][:1])
    with pytest.raises(ValueError, match=rf"^{field}: expected"):
        model(**bad)


@pytest.mark.parametrize("field,value", [("labels", "vocab"), ("labels", -1), ("dt_labels", "bins"), ("dt_labels", -5)])
def test_labels_outside_their_head_are_refused_naming_the_field(batch_and_model, field, value):
    """A target outside the head's classes (other than -100) failed in F.cross_entropy with
    'Target 19 is out of bounds' (a device-side assert on a GPU), naming no field."""
    batch, model, _ = batch_and_model
    high = {"vocab": model.config.vocab_size, "bins": model.config.num_dt_bins}.get(value, value)
    bad = dict(batch)
    bad[field] = batch[field].clone()
    i, j = (bad[field][:, 1:] != -100).nonzero()[0].tolist()  # a target the loss reads
    bad[field][i, j + 1] = high
    n = model.config.vocab_size if field == "labels" else model.config.num_dt_bins
    with pytest.raises(ValueError, match=rf"^{field}: expected -100 \(no target\) or ids in \[0, {n}\), got {high}"):
        model(**bad)


def test_set_attn_implementation_switches_the_attention_back_end(batch_and_model, tmp_path):
    """transformers' set_attn_implementation() looks for ALL_ATTENTION_FUNCTIONS.get_interface( in
    the model's source; without it, set_attn_implementation("eager") logged a line and kept sdpa."""
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    batch, model, _ = batch_and_model
    model.save_pretrained(tmp_path)
    m = nf.NeuroformerForPreTraining.from_pretrained(tmp_path).eval()
    assert m.config._attn_implementation == "sdpa"
    ref = m(**batch).logits
    m.set_attn_implementation("eager")
    assert m.config._attn_implementation == "eager"
    assert torch.allclose(m(**batch).logits, ref, atol=1e-5)
    calls = []

    def counting_sdpa(*args, **kwargs):
        calls.append(1)
        return sdpa_attention_forward(*args, **kwargs)

    AttentionInterface.register("neuroformer_test_counting", counting_sdpa)
    m.set_attn_implementation("neuroformer_test_counting")
    assert torch.allclose(m(**batch).logits, ref, atol=1e-5)
    cfg = m.config  # past encoder self-attention + decoder self- and cross-attention, per layer
    assert len(calls) == cfg.num_past_layers + 2 * cfg.num_hidden_layers


def test_return_dict_false_gives_the_output_fields_as_a_tuple(batch_and_model):
    """return_dict=False (and config.return_dict False) was ignored: the output stayed a dict, so
    ``loss, logits, *_ = model(..., return_dict=False)`` bound the key names 'loss', 'logits'."""
    batch, model, ds = batch_and_model
    out = model(**batch)
    got = model(**batch, return_dict=False)
    assert isinstance(got, tuple)
    loss, id_loss, dt_loss, logits, dt_logits, past = got
    for a, b in ((loss, out.loss), (id_loss, out.id_loss), (dt_loss, out.dt_loss), (logits, out.logits),
                 (dt_logits, out.dt_logits), (past, out.past_hidden_state)):
        assert torch.equal(a, b)
    inputs = {k: v for k, v in batch.items() if "labels" not in k}
    base = model.neuroformer(**inputs, return_dict=False)
    assert isinstance(base, tuple) and torch.equal(base[1], out.past_hidden_state)
    from hf_neuroformer.training import evaluate_token_nll

    nll = evaluate_token_nll(model, ds["test"], NeuroformerCollator(), batch_size=8)
    model.config.return_dict = False
    try:
        assert isinstance(model(**batch), tuple)
        assert torch.equal(model(**batch, return_dict=True).logits, out.logits)
        # the package's own callers ask for the dict whatever the config says
        assert evaluate_token_nll(model, ds["test"], NeuroformerCollator(), batch_size=8) == nll
    finally:
        model.config.return_dict = True


@pytest.mark.parametrize("override,field", [(dict(num_attention_heads=5), "hidden_size"),
                                            (dict(dt_resolution=0.0), "dt_resolution"),
                                            (dict(hidden_dropout=1.5), "hidden_dropout")])
def test_from_pretrained_overrides_meet_the_config_checks(batch_and_model, tmp_path, override, field):
    """from_pretrained(path, **overrides) set the values on the finished config, past its checks:
    num_attention_heads=5 with hidden_size 32 failed inside attention ("shape '[8, 5, 5, 6]' is
    invalid"), dt_resolution=0 with a ZeroDivisionError."""
    from transformers import AutoConfig

    _, model, _ = batch_and_model
    model.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=rf"^NeuroformerConfig\.{field}: expected"):
        AutoConfig.from_pretrained(tmp_path, **override)
    with pytest.raises(ValueError, match=rf"^NeuroformerConfig\.{field}: expected"):
        nf.NeuroformerForPreTraining.from_pretrained(tmp_path, **override)
    # a good override is still applied, and an unknown key is still returned unused
    cfg, unused = AutoConfig.from_pretrained(tmp_path, hidden_dropout=0.25, no_such_field=1, return_unused_kwargs=True)
    assert cfg.hidden_dropout == 0.25 and unused == {"no_such_field": 1}


def test_trainer_predict_gives_logits_and_dt_logits(batch_and_model, tmp_path):
    """Trainer.predict's predictions began with id_loss and dt_loss, one scalar per batch, and
    ended with the past encodings padded across batches with -100 (a value a hidden state holds)."""
    from transformers import Trainer, TrainingArguments

    _, model, ds = batch_and_model
    test = ds["test"].select(range(12))
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, per_device_eval_batch_size=5, report_to=[],
                             remove_unused_columns=False)
    pred = Trainer(model=model, args=args, data_collator=NeuroformerCollator()).predict(test)
    logits, dt_logits = pred.predictions
    t = logits.shape[1]
    assert logits.shape == (12, t, model.config.vocab_size)
    assert dt_logits.shape == (12, t, model.config.num_dt_bins)
    labels, dt_labels = pred.label_ids
    assert labels.shape == dt_labels.shape == (12, t)
    assert np.isfinite(pred.metrics["test_loss"])


def test_unknown_config_fields_are_named_in_a_warning(tmp_path):
    """NeuroformerConfig(hiden_size=64) kept the typo as an attribute nothing reads and built a
    128-wide model without a word (transformers keeps unknown keys; the YAML reader refuses them)."""
    import warnings

    from transformers import AutoConfig

    with pytest.warns(UserWarning, match=r"unknown field \['hiden_size'\].*'hidden_size' for 'hiden_size'"):
        cfg = nf.NeuroformerConfig(hiden_size=64)
    assert cfg.hidden_size == 128
    # transformers' own keys, and a save / reload with auto_map, warn about nothing
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = nf.NeuroformerConfig(return_dict=False, output_hidden_states=True, dtype="bfloat16")
        cfg.auto_map = {"AutoConfig": "configuration_neuroformer.NeuroformerConfig"}
        cfg.save_pretrained(tmp_path)
        AutoConfig.from_pretrained(tmp_path, attn_implementation="eager", dtype="auto")


def test_unknown_overrides_of_from_pretrained_are_named_in_a_warning(tmp_path):
    """AutoConfig.from_pretrained(path, hiden_size=64) dropped the typo without a word (transformers
    returns overrides that are no attribute only to return_unused_kwargs=True) and kept hidden_size."""
    import warnings

    from transformers import AutoConfig

    nf.NeuroformerConfig(hidden_size=32, num_attention_heads=2).save_pretrained(tmp_path)
    with pytest.warns(UserWarning, match=r"unknown field \['hiden_size'\] were ignored.*'hidden_size' for 'hiden_size'"):
        cfg = AutoConfig.from_pretrained(tmp_path, hiden_size=64)
    assert cfg.hidden_size == 32
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg, unused = nf.NeuroformerConfig.from_pretrained(tmp_path, hiden_size=64, return_unused_kwargs=True)
        assert unused == {"hiden_size": 64}
        cfg = AutoConfig.from_pretrained(tmp_path, hidden_size=64, output_attentions=True, return_dict=False)
        assert (cfg.hidden_size, cfg.output_attentions, cfg.return_dict) == (64, True, False)


def test_a_config_saved_before_dt_conditioned_on_unit_existed_loads_the_papers_dt_head(batch_and_model, tmp_path):
    """Break test: a model saved before dt_conditioned_on_unit existed (its dt head independent of
    the unit, the paper's) has no such key in config.json; it was read as the default True, and
    AutoModelForPreTraining gave it a dt_unit_embeddings its weights lack, initialised at random
    (transformers only logs it): other dt logits without an error. A saved config without the key
    is read as False; a config built in Python still defaults to True."""
    import copy
    import json

    from transformers import AutoConfig, AutoModelForPreTraining

    batch, model, _ = batch_and_model
    cfg = copy.deepcopy(model.config)
    cfg.dt_conditioned_on_unit = False
    torch.manual_seed(1)
    old = nf.NeuroformerForPreTraining(cfg).eval()
    old.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    del saved["dt_conditioned_on_unit"]
    (tmp_path / "config.json").write_text(json.dumps(saved))

    assert AutoConfig.from_pretrained(tmp_path).dt_conditioned_on_unit is False
    loaded, info = AutoModelForPreTraining.from_pretrained(tmp_path, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    with torch.no_grad():
        want, got = old(**batch), loaded.eval()(**batch)
    assert torch.equal(got.dt_logits, want.dt_logits)
    # an override still wins, and a dict that was never saved keeps the default
    assert AutoConfig.from_pretrained(tmp_path, dt_conditioned_on_unit=True).dt_conditioned_on_unit is True
    fresh = {k: v for k, v in saved.items() if k != "transformers_version"}
    assert nf.NeuroformerConfig.from_dict(fresh).dt_conditioned_on_unit is True
    # push reads the same rule: the model has its next-spike heads (it was taken for a decoder without
    # them, pushed without AutoModelForPreTraining in its auto_map and with a card saying it cannot generate)
    from hf_neuroformer.hub import has_next_spike_heads

    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units([f"s/u{i}" for i in range(cfg.vocab_size - len(tok))])
    tok.save_pretrained(tmp_path)
    assert has_next_spike_heads(tmp_path)


def test_config_output_attentions_and_hidden_states_are_honoured(batch_and_model, tmp_path):
    """from_pretrained(path, output_attentions=True) switched attention to eager and still returned
    no attention weights (forward read a missing argument as False, not as config.output_attentions)."""
    batch, model, _ = batch_and_model
    want = model(**batch, output_attentions=True, output_hidden_states=True)
    model.save_pretrained(tmp_path)
    m = nf.NeuroformerForPreTraining.from_pretrained(tmp_path, output_attentions=True).eval()
    got = m(**batch)
    assert got.attentions is not None and got.hidden_states is None
    for a, b in zip(got.attentions + got.cross_attentions + got.past_attentions,
                    want.attentions + want.cross_attentions + want.past_attentions):
        assert torch.allclose(a, b, atol=1e-6)
    assert m(**batch, output_attentions=False).attentions is None  # the argument wins
    m.config.output_hidden_states = True
    got = m.neuroformer(**{k: v for k, v in batch.items() if "labels" not in k})
    assert len(got.hidden_states) == model.config.num_hidden_layers + 1
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got.hidden_states, want.hidden_states))


def test_last_hidden_state_is_the_last_of_hidden_states(batch_and_model):
    """transformers' convention (``hidden_states[-1]`` is ``last_hidden_state``, after the final
    norm): the last entry was the last layer's output before the final LayerNorm, so a probe on
    ``hidden_states[-1]`` read other features than the heads do. The others: the embeddings, then
    each layer's output."""
    batch, model, _ = batch_and_model
    inputs = {k: v for k, v in batch.items() if "labels" not in k}
    out = model.neuroformer(**inputs, output_hidden_states=True)
    assert len(out.hidden_states) == model.config.num_hidden_layers + 1
    assert torch.equal(out.hidden_states[-1], out.last_hidden_state)
    pos = torch.arange(inputs["input_ids"].shape[1])
    first = model.neuroformer.embed_current(inputs["input_ids"], inputs["dt_ids"], pos)
    assert torch.equal(out.hidden_states[0], first)
    full = model(**batch, output_hidden_states=True)
    assert torch.allclose(model.id_head(full.hidden_states[-1]), full.logits, atol=1e-6)


def test_decoder_refuses_an_infinite_label_and_leaves_nan_out(batch_and_model):
    """NaN is "no label"; an infinite label was left out of the loss the same way, without a word
    (a broken target column trained on the remaining windows)."""
    batch, model, _ = batch_and_model
    targets = [{"name": "x", "kind": "regression", "mean": 1.0, "std": 2.0}, {"name": "a", "kind": "circular"}]
    config = nf.NeuroformerConfig.from_dict({**model.config.to_dict(), "decoding_targets": targets})
    decoder = nf.NeuroformerForBehaviorDecoding(config).eval()
    inputs = {k: v for k, v in batch.items() if "labels" not in k}
    labels = torch.tensor([[0.5, 0.3]] * inputs["input_ids"].shape[0])
    full = decoder(**inputs, labels=labels).loss
    labels[2, 1] = float("nan")
    assert torch.isfinite(decoder(**inputs, labels=labels).loss) and decoder(**inputs, labels=labels).loss != full
    for bad in (float("inf"), float("-inf")):
        labels[3, 0] = bad
        with pytest.raises(ValueError, match=rf"labels\[:, 0\] \('x'\): expected finite values, or NaN for no label, "
                                             rf"got {bad} in row 3"):
            decoder(**inputs, labels=labels)


def test_evaluation_helpers_give_the_model_its_training_mode_back(batch_and_model):
    """evaluate_token_nll left a training model in eval mode (dropout off for the rest of a
    training loop), and generate_spikes did when it raised (here: a recording of other units)."""
    import copy

    from hf_neuroformer.tokenization_neuroformer import UnknownUnitError
    from hf_neuroformer.training import evaluate_token_nll

    _, model, ds = batch_and_model
    m = copy.deepcopy(model).train()
    rec = nf.simulate_coupled_network(n_units=8, duration=60.0, seed=1).recording
    tok = nf.NeuroformerTokenizer.from_config(m.config)
    tok.add_units(rec)
    evaluate_token_nll(m, ds["test"], NeuroformerCollator(), batch_size=8)
    assert m.training
    other = copy.deepcopy(rec)
    other.session = "elsewhere"
    with pytest.raises(UnknownUnitError):
        nf.generate_spikes(m, tok, other, window_starts=[1.0], seed=0)
    assert m.training and all(x.training for x in m.modules())
    nf.generate_spikes(m.eval(), tok, rec, window_starts=[1.0], seed=0)
    assert not m.training


def test_a_loss_without_its_labels_is_none_not_zero(batch_and_model):
    """``labels`` alone (the causal-LM idiom ``labels=input_ids``) measures no dt prediction: the
    output said ``dt_loss = 0.0``, a perfect score that was never computed. It is now None, and
    ``loss`` is the id loss; ``dt_labels`` alone likewise."""
    batch, model, _ = batch_and_model
    inputs = {k: v for k, v in batch.items() if k not in ("labels", "dt_labels")}
    both = model(**inputs, labels=batch["labels"], dt_labels=batch["dt_labels"])
    ids_only = model(**inputs, labels=batch["labels"])
    assert ids_only.dt_loss is None and "dt_loss" not in ids_only.keys()
    assert ids_only.loss.item() == pytest.approx(both.id_loss.item(), rel=1e-6)
    dt_only = model(**inputs, dt_labels=batch["dt_labels"])
    assert dt_only.id_loss is None
    assert dt_only.loss.item() == pytest.approx(model.config.dt_loss_weight * both.dt_loss.item(), rel=1e-6)
    assert model(**inputs).loss is None


def test_vocab_size_set_by_hand_is_refused_with_the_resize_call(tmp_path):
    """``model.config.vocab_size = len(tokenizer)`` in place of a resize: a new unit's id passed the
    check against the config and failed inside nn.Embedding ("IndexError: index out of range in
    self"); the error now says what differs and which call grows the model."""
    torch.manual_seed(0)
    model = nf.NeuroformerForPreTraining(tiny_config(vocab_size=8)).eval()
    model.config.vocab_size = 10
    inputs = dict(input_ids=torch.tensor([[1, 3, 9, 2]]), dt_ids=torch.tensor([[0, 1, 2, 2]]),
                  past_input_ids=torch.tensor([[1, 4]]), past_dt_ids=torch.tensor([[0, 3]]))
    with pytest.raises(ValueError, match=r"vocab_size = 10, but the unit embedding has 8 rows.*resize_token_embeddings\(10\)"):
        model(**inputs)
    # save_pretrained wrote a checkpoint that from_pretrained then refused (size mismatch): refused, nothing written
    with pytest.raises(ValueError, match=r"vocab_size = 10, but the unit embedding has 8 rows.*nothing was written"):
        model.save_pretrained(tmp_path / "m")
    assert not (tmp_path / "m").exists()
    model.resize_token_embeddings(10)  # the call the message names makes the same input work
    assert model(**inputs).logits.shape == (1, 4, 10)
    model.save_pretrained(tmp_path / "m")
    assert nf.NeuroformerForPreTraining.from_pretrained(tmp_path / "m").config.vocab_size == 10


def test_window_settings_changed_after_building_are_refused(batch_and_model, tmp_path):
    """``config.current_window`` doubled on a built model: the dt head still has the old classes,
    each now read as a bin of the longer window's first half; forward ran and returned
    ``dt_logits`` of the old width. It now names the settings and the head's size."""
    batch, model, _ = batch_and_model
    old = model.config.current_window
    model.config.current_window = 2 * old
    try:
        with pytest.raises(ValueError, match=r"num_dt_bins = 20 .*dt head has 10 classes"):
            model(**{k: v for k, v in batch.items() if k not in ("labels", "dt_labels")})
        with pytest.raises(ValueError, match=r"num_dt_bins = 20 .*dt head has 10 classes.*nothing was written"):
            model.save_pretrained(tmp_path / "m")  # a checkpoint from_pretrained would refuse
        assert not (tmp_path / "m").exists()
    finally:
        model.config.current_window = old
    assert model(**batch).dt_logits.shape[-1] == 10


def test_config_decoding_target_refuses_unknown_keys_bad_column_and_classes():
    """A misspelt key ('wieght', 'sd') was kept and ignored (the head trained with weight 1 and the
    std of another key); a str column and a ``classes`` list shorter than num_classes passed too."""
    with pytest.raises(ValueError, match=r"decoding_targets\[0\] \('x'\): unknown keys \['sd', 'wieght'\]"):
        nf.NeuroformerConfig(decoding_targets=[{"name": "x", "kind": "regression", "wieght": 3.0, "sd": 2.0}])
    for col in ("a", -1, 1.5, True):
        with pytest.raises(ValueError, match=r"decoding_targets\[0\]\.column \('x'\): expected None or an integer"):
            nf.NeuroformerConfig(decoding_targets=[{"name": "x", "kind": "regression", "column": col}])
    with pytest.raises(ValueError, match=r"decoding_targets\[0\]\.classes \('c'\): expected None or a list of num_classes=3"):
        nf.NeuroformerConfig(decoding_targets=[{"name": "c", "kind": "classification", "num_classes": 3, "classes": [1, 2]}])
    # every key target_dicts writes is accepted, and so set after construction is checked by _check
    ok = {"name": "c", "kind": "classification", "column": 1, "weight": 1.0, "num_classes": 2, "classes": ["a", "b"],
          "class_weight": "balanced", "class_weights": [1.0, 1.0]}
    c = nf.NeuroformerConfig(decoding_targets=[ok, {"name": "ry", "kind": "circular", "recorded_range_deg": [0, 360]}])
    c.decoding_targets[0]["num_clases"] = 2
    with pytest.raises(ValueError, match=r"unknown key \['num_clases'\]"):
        c._check()


def test_config_refuses_a_bad_class_weight_repeated_or_missing_labels_and_a_reversed_temporal_range():
    """Each passed without a word: class_weight 'x' (only 'balanced' or None is read), a target's
    classes [1, 1] (two indices for one label), a categorical modality's classes [None, 1] (fitting
    refuses a None label) and temporal_min_period > temporal_max_period (the frequency range of the
    temporal embedding ran backwards). Each is now a ValueError naming its field."""
    target = {"name": "c", "kind": "classification", "num_classes": 2}
    with pytest.raises(ValueError, match=r"decoding_targets\[0\]\.class_weight \('c'\): expected one of "
                                         r"\['balanced', None\].*got 'x'"):
        nf.NeuroformerConfig(decoding_targets=[{**target, "class_weight": "x"}])
    with pytest.raises(ValueError, match=r"decoding_targets\[0\]\.classes \('c'\): .*2 distinct class labels.*\[1, 1\]"):
        nf.NeuroformerConfig(decoding_targets=[{**target, "classes": [1, 1]}])
    cat = {"name": "orientation", "source": "trial:orientation_deg", "kind": "categorical"}
    for bad in ([None, 1], [float("nan"), 1]):
        with pytest.raises(ValueError, match=r"\('orientation'\)\.classes: (None|nan) is not a label"):
            nf.NeuroformerConfig(modalities=[{**cat, "classes": bad}])
    with pytest.raises(ValueError, match=r"temporal_min_period / temporal_max_period: expected temporal_min_period <= "
                                         r"temporal_max_period.*temporal_min_period=1\.0, temporal_max_period=0\.5"):
        nf.NeuroformerConfig(temporal_min_period=1.0, temporal_max_period=0.5)
    # what finetune writes (class_weight None or 'balanced', on every kind) and equal periods still load
    for cw in ("balanced", None):
        nf.NeuroformerConfig(decoding_targets=[{**target, "classes": [1, 2], "class_weight": cw},
                                               {"name": "x", "kind": "regression", "class_weight": cw}])
    nf.NeuroformerConfig(modalities=[{**cat, "classes": [0, 45]}], temporal_min_period=0.5, temporal_max_period=0.5)


def test_num_labels_is_refused_naming_the_field(tmp_path):
    """NeuroformerConfig(num_labels=3) (or id2label / label2id, or num_labels=3 given to from_pretrained)
    was kept and read by nothing: no Neuroformer model has a num_labels-sized head, so a user who
    asked for a 3-class classifier got none without a word. It is now a ValueError naming
    num_labels and decoding_targets; the default (two labels, what to_dict writes) still loads."""
    from transformers import AutoConfig

    with pytest.raises(ValueError, match=r"NeuroformerConfig\.num_labels: .*got 3 label.*'num_classes': 3"):
        nf.NeuroformerConfig(num_labels=3)
    with pytest.raises(ValueError, match=r"NeuroformerConfig\.num_labels: .*id2label"):
        nf.NeuroformerConfig(id2label={0: "left", 1: "right"})
    cfg = nf.NeuroformerConfig(hidden_size=32, num_attention_heads=2)
    again = nf.NeuroformerConfig(**cfg.to_dict())  # to_dict holds the default id2label
    assert again.num_labels == 2
    cfg.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match=r"NeuroformerConfig\.num_labels: .*got 4 label"):
        AutoConfig.from_pretrained(tmp_path, num_labels=4)
    cfg.num_labels = 5  # set after construction: refused at save, before config.json is written
    with pytest.raises(ValueError, match=r"NeuroformerConfig\.num_labels"):
        cfg.save_pretrained(tmp_path / "out")
    assert not (tmp_path / "out" / "config.json").exists()


def test_decoding_target_entries_are_checked_key_by_key():
    """A decoding_targets entry with a typo ({"wieght": 5.0}) was kept and read by nothing (the target
    trained with weight 1), a classification target whose classes did not number num_classes was
    accepted (class index i names classes[i]), and a negative column was taken as numpy's last column.
    Each is now a ValueError naming decoding_targets[i] and the key; an entry as target_dicts writes it
    still loads."""
    def cfg(**target):
        return nf.NeuroformerConfig(decoding_targets=[dict(name="speed", kind="regression", **target)])

    with pytest.raises(ValueError, match=r"decoding_targets\[0\] \('speed'\): unknown key \['wieght'\] "
                                         r"\(did you mean 'weight' for 'wieght'\?\)"):
        cfg(wieght=5.0)
    with pytest.raises(ValueError, match=r"decoding_targets\[0\]\.column \('speed'\): expected None or an integer >= 0"):
        cfg(column=-1)
    assert cfg(column=np.int64(1)).decoding_targets[0]["column"] == 1  # a numpy index is an index
    with pytest.raises(ValueError, match=r"decoding_targets\[0\]\.classes \('trial'\): expected None or a list of "
                                         r"num_classes=3"):
        nf.NeuroformerConfig(decoding_targets=[dict(name="trial", kind="classification", num_classes=3,
                                                    classes=[0, 1])])
    ok = cfg(column=1, weight=2.0, mean=0.5, std=2.0).decoding_targets[0]
    assert ok["column"] == 1 and ok["weight"] == 2.0
    cls = nf.NeuroformerConfig(decoding_targets=[dict(name="trial", kind="classification", column=None, weight=1.0,
                                                      num_classes=2, classes=[3, 7], class_weight=None,
                                                      class_weights=None)])
    assert cls.decoding_targets[0]["classes"] == [3, 7]


def test_numpy_scalars_set_after_construction_are_saved_as_numbers(tmp_path):
    """config.vocab_size = np.int64(12) (e.g. ids.max() + 1) passed the save-time checks, and json
    then failed on it halfway through config.json ("Object of type int64 is not JSON serializable"),
    leaving an empty config.json. validate() now stores numpy scalars as Python numbers first; the
    checks still apply to them."""
    import numpy as np

    cfg = nf.NeuroformerConfig(hidden_size=32, num_attention_heads=2)
    cfg.vocab_size = np.int64(12)
    cfg.hidden_dropout = np.float32(0.25)
    cfg.split_fractions = [np.float64(0.5), np.float32(0.25), 0.25]
    cfg.save_pretrained(tmp_path)
    again = nf.NeuroformerConfig.from_pretrained(tmp_path)
    assert again.vocab_size == 12 and type(cfg.vocab_size) is int
    assert again.hidden_dropout == 0.25 and again.split_fractions == [0.5, 0.25, 0.25]
    cfg.vocab_size = np.int64(1)
    with pytest.raises(ValueError, match=r"NeuroformerConfig\.vocab_size: expected >= 3"):
        cfg.save_pretrained(tmp_path / "bad")


def test_generation_settings_given_to_the_config_are_named_as_dropped(tmp_path):
    """NeuroformerConfig(temperature=0.5, top_k=3) kept nothing and said nothing (transformers takes
    generation settings out of a model config), so generation sampled at temperature 1; the same for
    AutoConfig.from_pretrained(path, top_p=0.9). Both now warn, naming the settings and
    generate_spikes; a config's own fields (contrastive_temperature) warn about nothing."""
    import warnings

    from transformers import AutoConfig

    with pytest.warns(UserWarning, match=r"generation settings \['temperature', 'top_k'\] .*dropped.*generate_spikes"):
        cfg = nf.NeuroformerConfig(hidden_size=32, num_attention_heads=2, temperature=0.5, top_k=3)
    assert not hasattr(cfg, "temperature")
    cfg.save_pretrained(tmp_path)
    with pytest.warns(UserWarning, match=r"generation setting \['top_p'\] is no config field and was dropped"):
        AutoConfig.from_pretrained(tmp_path, top_p=0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nf.NeuroformerConfig(contrastive_temperature=0.2)
        AutoConfig.from_pretrained(tmp_path, hidden_dropout=0.2)


@pytest.mark.parametrize("sizes, named", [
    (dict(max_window_length=10**12), r"max_window_length=1000000000000"),
    (dict(current_window=1e6, dt_resolution=1e-6), r"num_dt_bins=1000000000000 \(current_window=1e\+06 / dt_resolution=1e-06\)"),
    (dict(hidden_size=2**20, num_attention_heads=2), r"hidden_size=1048576"),
])
def test_a_model_too_large_for_the_memory_is_refused_naming_the_size(sizes, named):
    """Break test: absurd sizes (a 1e12-token window, a 1e6-s window of 1-us dt bins, a hidden size
    of 2**20: terabytes of weights, more than any machine running this holds) failed inside torch ("DefaultCPUAllocator: can't allocate memory: you tried to
    allocate 640000000000 bytes"), naming no setting. The model now refuses them before allocating,
    naming the field and the memory its weights would need."""
    with pytest.raises(ValueError, match=rf"float32 weights alone need at least .* GiB, more than this machine's .*"
                                         rf"GiB of memory; the largest are those of {named}"):
        nf.NeuroformerForPreTraining(tiny_config(**sizes))


def _huge_config():
    """A config whose weights (a 3e6-unit vocabulary of 2048-wide embeddings) exceed any test machine's memory."""
    return tiny_config(vocab_size=3 * 10**6, hidden_size=2048, num_attention_heads=8)


@pytest.mark.parametrize("model_class", [nf.NeuroformerModel, nf.NeuroformerForPreTraining])
def test_a_model_larger_than_the_host_memory_is_built_on_the_meta_device(model_class):
    """Break test: the memory check refused any config over the host's memory even where nothing is
    allocated there: transformers 5's from_pretrained builds the model under torch.device("meta")
    (then loads the weights to device_map, e.g. a GPU larger than the host's memory), and so does a
    user counting parameters. The check now runs only where the weights are made in host memory."""
    with torch.device("meta"):
        model = model_class(_huge_config())
    assert model.get_input_embeddings().weight.shape == (3 * 10**6, 2048)
    assert model.get_input_embeddings().weight.device.type == "meta"


def test_a_model_larger_than_the_host_memory_is_built_under_accelerates_init_empty_weights():
    """Break test: accelerate's init_empty_weights() (its big-model inference recipe: build empty,
    then load_checkpoint_and_dispatch) moves each weight to the meta device as it is registered,
    so only one tensor at a time is made on the host; the memory check refused the whole model."""
    from accelerate import init_empty_weights

    with init_empty_weights():
        model = nf.NeuroformerForPreTraining(_huge_config())
    assert model.id_head.weight.shape == (3 * 10**6, 2048) and model.id_head.weight.device.type == "meta"
    with pytest.raises(ValueError, match=r"float32 weights alone need at least"):  # outside it, refused again
        nf.NeuroformerForPreTraining(_huge_config())


@pytest.mark.parametrize("model_class, kw", [
    (nf.NeuroformerModel, dict()),
    (nf.NeuroformerModel, dict(intermediate_size=512)),
    (nf.NeuroformerForPreTraining, dict(intermediate_size=512, vocab_size=300)),
    (nf.NeuroformerForPreTraining, dict(dt_conditioned_on_unit=True, vocab_size=300)),
    (nf.NeuroformerForBehaviorDecoding, dict(current_window=1.0, dt_resolution=1e-4,
                                             decoding_targets=[{"name": "x", "kind": "regression"}])),
])
def test_the_memory_check_counts_no_more_than_the_model_allocates(model_class, kw):
    """Break test: the memory check was not the lower bound it claimed: it counted every layer as
    two attentions and two MLPs (a current-window layer has one MLP, a past-window layer one
    attention), and the id head and dt head for NeuroformerModel and a decoding model without
    them (1.5x the weights with intermediate_size = 16 x hidden_size; a decoding model with fine dt
    bins refused for a dt head it does not have). Each counted tensor is now one the model makes."""
    cfg = tiny_config(**kw)
    with torch.device("meta"):
        model = model_class(cfg)
    allocated = sum(p.numel() for p in model.parameters())
    heads = getattr(model, "dt_head", None) is not None
    counted = sum(nf.modeling_neuroformer._weight_element_counts(cfg, generative_heads=heads).values())
    assert allocated >= counted > 0.9 * allocated - 5000


def test_the_memory_check_counts_the_dtype_the_weights_are_made_in():
    """Break test: the memory check counted 4 bytes per weight even where the weights are made in
    bfloat16 (from_pretrained(dtype=torch.bfloat16) sets the default dtype while building), so
    twice what they need. The bound, and the message, now follow torch.get_default_dtype()."""
    cfg = tiny_config(max_window_length=10**12)
    with pytest.raises(ValueError, match=r"float32 weights alone need at least ([\d.e+]+) GiB") as fp32:
        nf.NeuroformerModel(cfg)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with pytest.raises(ValueError, match=r"bfloat16 weights alone need at least ([\d.e+]+) GiB") as bf16:
            nf.NeuroformerModel(cfg)
    finally:
        torch.set_default_dtype(previous)
    need = [float(re.search(r"need at least ([\d.e+]+) GiB", str(e.value)).group(1)) for e in (fp32, bf16)]
    assert need[1] == pytest.approx(need[0] / 2, rel=0.01)


def test_one_number_predicate_serves_every_argument_check():
    """The package had six hand-written "a real number, not a bool" tests; some took numpy integers
    and some refused them (``ablation``'s contrastive weight refused ``np.int64(2)``, ``hub`` read a
    ``metrics.json`` interval of numpy values as missing). One rule now: any real number (numpy's
    too), never a bool or text; finiteness separately."""
    from fractions import Fraction

    from hf_neuroformer.ablation import check_contrastive_loss_weight
    from hf_neuroformer.configuration_neuroformer import is_finite_number, is_real_number

    for ok in (1, 2.5, np.int64(3), np.float32(0.5), Fraction(1, 3), float("nan"), float("inf")):
        assert is_real_number(ok), ok
    for bad in (True, np.bool_(False), "1", None, [1], 1 + 0j):
        assert not is_real_number(bad), bad
    assert not is_finite_number(float("nan")) and not is_finite_number(-np.inf) and is_finite_number(np.int8(-2))
    assert not is_finite_number(10**400)  # past float range: refused by name, not an OverflowError
    check_contrastive_loss_weight(np.int64(2))  # refused before as "expected a finite number > 0"
    for bad in (True, float("nan"), "2", 0):
        with pytest.raises(ValueError, match="contrastive_loss_weight"):
            check_contrastive_loss_weight(bad)


def test_config_numbers_refuse_bools_and_store_numpy_numbers_as_json_floats():
    """A decoding target's ``class_weights`` took ``[True, 1, 0]`` (a bool passed ``isinstance(v,
    (int, float))``) and wrote ``true`` into config.json, and ``np.float32`` weights broke the save
    (not JSON); a modality's ``bin_size`` and the contrastive weight / temperature had the same
    hand-written test. All now use ``is_finite_number``; class weights are stored as floats."""
    import json

    target = {"name": "c", "kind": "classification", "num_classes": 3}
    with pytest.raises(ValueError, match="class_weights: expected None or 3 finite numbers"):
        nf.NeuroformerConfig(decoding_targets=[dict(target, class_weights=[True, 1, 0])])
    cfg = nf.NeuroformerConfig(decoding_targets=[dict(target, class_weights=list(np.float32([0.5, 1.0, 2.0])))])
    assert json.loads(cfg.to_json_string())["decoding_targets"][0]["class_weights"] == [0.5, 1.0, 2.0]
    with pytest.raises(ValueError, match="contrastive_loss_weight"):
        nf.NeuroformerConfig(contrastive_loss_weight=True)


def test_checks_of_a_finite_number_refuse_one_past_float_range_by_name(shared_data):
    """DecodingTarget.weight, the fidelity metrics' bin_size and isi_distance's min_isis took
    is_real_number and then math.isfinite / np.isfinite on their own: 10**400 raised OverflowError
    ('int too large to convert to float') or numpy's TypeError naming no argument, where
    is_finite_number refuses it. Real spikes: A2929 wake."""
    from hf_neuroformer.decoding import DecodingTarget, DecodingTargetError
    from hf_neuroformer.io import load_recording
    from hf_neuroformer.metrics.fidelity import FidelityInputError, binned_count_correlation, isi_distance

    with pytest.raises(DecodingTargetError, match=r"weight: expected a finite number >= 0"):
        DecodingTarget("x", "regression", weight=10**400)
    rec = load_recording(shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"), epoch="wake")
    with pytest.raises(FidelityInputError, match=r"bin_size: expected a positive finite number of seconds"):
        binned_count_correlation(rec, rec, bin_size=10**400)
    with pytest.raises(FidelityInputError, match=r"min_isis: expected an integer >= 1"):
        isi_distance(rec, rec, min_isis=10**400)


def test_config_and_tokenizer_refuse_float32_lengths_in_seconds(tmp_path):
    """NeuroformerConfig(current_window=np.float32(0.05)) stored 0.05000000074505806 s (float32's
    rounding, widened), so a window reached past the next window's start and a spike on it was counted
    in both windows. Every length in seconds given as a numpy / torch float32 or float16 is refused,
    naming the field, the value and the fix, as recordings refuse float32 spike times; float64 numpy
    scalars are still taken (stored as Python floats)."""
    fine = {"current_window": 0.1, "past_window": 0.5, "window_stride": 0.05, "dt_resolution": 0.01,
            "temporal_min_period": 0.01, "temporal_max_period": 4.0, "split_block_length": 30.0, "split_gap": 1.5}
    for name, value in fine.items():
        for narrow in (np.float32(value), np.float16(value), torch.tensor(value), np.array(value, dtype=np.float32)):
            with pytest.raises(ValueError, match=rf"^NeuroformerConfig\.{name}: expected a Python float or float64 "
                                                 rf"length \(s\), got float(32|16) .*give a Python float or float64"):
                nf.NeuroformerConfig(**{name: narrow})
        cfg = nf.NeuroformerConfig(**{name: np.float64(value)})
        assert getattr(cfg, name) == value and type(getattr(cfg, name)) is float
    with pytest.raises(ValueError, match=r"^NeuroformerConfig\.current_window: .*got float32 np\.float32\(0\.05\), "
                                         r"which is 0\.05000000074505806 s as float64"):
        nf.NeuroformerConfig(current_window=np.float32(0.05))
    for name in ("current_window", "past_window", "dt_resolution"):  # the tokenizer's windows: the same rule
        with pytest.raises(ValueError, match=rf"^NeuroformerTokenizer\.{name}: expected a Python float or float64"):
            nf.NeuroformerTokenizer(**{name: np.float32(fine[name])})
    # set after construction: validate() made it a Python float, rounding kept; now refused before the save
    cfg = nf.NeuroformerConfig()
    cfg.current_window = np.float32(0.05)
    with pytest.raises(ValueError, match=r"NeuroformerConfig\.current_window: expected a Python float or float64"):
        cfg.save_pretrained(tmp_path)
    assert not (tmp_path / "config.json").exists()
    cfg = nf.NeuroformerConfig()
    cfg.split_block_length = torch.tensor(30.0)
    with pytest.raises(ValueError, match=r"NeuroformerConfig\.split_block_length: expected a Python float or float64"):
        cfg._check()


HL_GAUSS_TARGET = {"name": "x", "kind": "regression", "mean": 100.0, "std": 40.0, "loss": "hl_gauss", "num_bins": 64,
                   "hl_gauss_sigma_ratio": 0.75, "bin_range": [-2.0, 1.5]}


def _save_decoder_for(model, rec, target: dict, folder):
    """A random-weight NeuroformerForBehaviorDecoding of ``model``'s config with the one decoding
    target ``target``, saved in ``folder`` with a tokenizer that knows ``rec``'s units: a decoder
    that ``finetune`` continues."""
    config = nf.NeuroformerConfig.from_dict({**model.config.to_dict(), "decoding_targets": [target]})
    nf.NeuroformerForBehaviorDecoding(config).save_pretrained(folder)
    tok = nf.NeuroformerTokenizer.from_config(config)
    tok.add_units(rec)
    tok.save_pretrained(folder)


def test_hl_gauss_target_distribution_sums_to_one_and_its_mean_is_the_target():
    """The histogram loss's target (Imani & White 2018): the mass of N(z, sigma^2) per bin. Its mean
    over the bin centres differs from z by the sawtooth (x - centre(x)) averaged under the Gaussian,
    at most (w / pi) exp(-2 pi^2 sigma^2 / w^2) = 5e-6 bin widths at sigma = 0.75 w (Poisson
    summation), plus the truncation at the outer edges, negligible 6 sigma inside them; float32
    adds ~1e-5 (64 masses of ~1e-7 error times centres of ~2 standardised units). 1e-3 bin widths
    is 20x the sum. Values beyond the edges are clipped to the edge (their mean stays inside)."""
    from hf_neuroformer.modeling_neuroformer import hl_gauss_bin_edges, hl_gauss_target_distribution

    edges = hl_gauss_bin_edges(HL_GAUSS_TARGET)
    w = float(edges[1] - edges[0])
    sigma = 0.75 * w
    z = torch.linspace(float(edges[0]) + 6 * sigma, float(edges[-1]) - 6 * sigma, 101)
    p = hl_gauss_target_distribution(z, edges, sigma)
    assert p.shape == (101, 64) and p.dtype == torch.float32 and bool((p >= 0).all())
    assert torch.allclose(p.sum(-1), torch.ones(101), atol=1e-6)
    centres = (edges[1:] + edges[:-1]) / 2
    assert float(((p @ centres) - z).abs().max()) < 1e-3 * w
    far = hl_gauss_target_distribution(torch.tensor([-50.0, 50.0]), edges, sigma)
    assert torch.allclose(far.sum(-1), torch.ones(2), atol=1e-6)
    assert float(far[0].argmax()) == 0 and float(far[1].argmax()) == 63


def test_hl_gauss_bins_hold_the_training_range_with_three_sigma_margins():
    from hf_neuroformer.argument_checks import hl_gauss_bin_range

    lo, hi = hl_gauss_bin_range(-1.7, 2.3, 64, 0.75)
    w = (hi - lo) / 64
    assert np.isclose((-1.7 - lo) / (0.75 * w), 3.0) and np.isclose((hi - 2.3) / (0.75 * w), 3.0)


@pytest.mark.parametrize("change, field, match", [
    ({"num_bins": 1}, "num_bins", "an integer >= 2"),
    ({"num_bins": 4.5}, "num_bins", "an integer >= 2"),
    ({"num_bins": True}, "num_bins", "an integer >= 2"),
    ({"num_bins": 4}, "num_bins", "more than 2 \\* 3 \\* hl_gauss_sigma_ratio"),
    ({"hl_gauss_sigma_ratio": 0.0}, "hl_gauss_sigma_ratio", "a finite number > 0"),
    ({"hl_gauss_sigma_ratio": float("nan")}, "hl_gauss_sigma_ratio", "a finite number > 0"),
    ({"bin_range": [1.0, -1.0]}, "bin_range", "low < high"),
    ({"loss": "huber"}, "loss", "expected one of \\['mse', 'hl_gauss'\\]"),
    ({"loss": "mse"}, "num_bins", "only read with loss 'hl_gauss'"),
    ({"kind": "circular"}, "loss", "a loss of regression targets"),
])
def test_hl_gauss_settings_are_refused_naming_the_field(change, field, match):
    from hf_neuroformer.decoding import DecodingTarget, DecodingTargetError

    with pytest.raises(ValueError, match=rf"decoding_targets\[0\]\.{field} \('x'\): .*{match}"):
        tiny_config(decoding_targets=[{**HL_GAUSS_TARGET, **change}])
    if field in ("num_bins", "hl_gauss_sigma_ratio", "loss") and "kind" not in change:
        kw = {"loss": "hl_gauss", "num_bins": 64, "hl_gauss_sigma_ratio": 0.75, **change}
        with pytest.raises(DecodingTargetError, match=rf"DecodingTarget\('x'\)\.{field}: .*{match}"):
            DecodingTarget("x", "regression", **kw)


def test_an_hl_gauss_decoder_reloads_with_the_same_bins_and_predictions(batch_and_model, tmp_path):
    batch, model, _ = batch_and_model
    torch.manual_seed(0)
    config = nf.NeuroformerConfig.from_dict({**model.config.to_dict(), "decoding_targets": [dict(HL_GAUSS_TARGET)]})
    decoder = nf.NeuroformerForBehaviorDecoding(config).eval()
    assert decoder.decoding_heads[0].net[-1].out_features == 64
    inputs = {k: v for k, v in batch.items() if "labels" not in k}
    out = decoder(**inputs)
    decoder.save_pretrained(tmp_path)
    again = nf.NeuroformerForBehaviorDecoding.from_pretrained(tmp_path).eval()
    assert again.config.decoding_targets == config.decoding_targets
    assert torch.equal(again(**inputs).predictions, out.predictions)
    # the prediction is the expected bin centre, de-standardised, so it lies inside the bins
    lo, hi = (100.0 + 40.0 * v for v in HL_GAUSS_TARGET["bin_range"])
    assert out.predictions.shape == (inputs["input_ids"].shape[0], 1) and out.logits.shape[-1] == 64
    assert bool(((out.predictions > lo) & (out.predictions < hi)).all())


def test_hl_gauss_loss_sums_to_the_one_batch_loss_under_gradient_accumulation(batch_and_model):
    batch, model, _ = batch_and_model
    torch.manual_seed(0)
    config = nf.NeuroformerConfig.from_dict({**model.config.to_dict(), "decoding_targets": [dict(HL_GAUSS_TARGET)]})
    decoder = nf.NeuroformerForBehaviorDecoding(config).eval()
    inputs = {k: v for k, v in batch.items() if "labels" not in k}
    n = inputs["input_ids"].shape[0]
    labels = torch.linspace(40.0, 150.0, n)[:, None]
    whole = decoder(**inputs, labels=labels).loss
    whole.backward()
    g_whole = [p.grad.clone() for p in decoder.parameters() if p.grad is not None]
    decoder.zero_grad()
    parts = 0.0
    for half in (slice(0, n // 2), slice(n // 2, n)):
        loss = decoder(**{k: v[half] for k, v in inputs.items()}, labels=labels[half], num_items_in_batch=n).loss
        loss.backward()
        parts = parts + loss.detach()
    g_parts = [p.grad for p in decoder.parameters() if p.grad is not None]
    assert torch.allclose(parts, whole.detach(), rtol=1e-5)
    assert len(g_parts) == len(g_whole) and all(torch.allclose(a, b, rtol=1e-4, atol=1e-7)
                                                 for a, b in zip(g_parts, g_whole))


def test_an_hl_gauss_prediction_under_bfloat16_autocast_keeps_float32_precision(batch_and_model):
    """Break test: the expected bin centre was a matmul of the bin probabilities and the bin centres, which
    CPU autocast runs in bfloat16: under ``torch.autocast("cpu", torch.bfloat16)`` the prediction kept about 3
    significant digits of the standardised value (90.0 cm for 90.04 cm), where an MSE head's output is cast
    to float32 first. It is now the expected centre of the same logits computed in float32."""
    from hf_neuroformer.modeling_neuroformer import hl_gauss_bin_edges

    batch, model, _ = batch_and_model
    torch.manual_seed(0)
    config = nf.NeuroformerConfig.from_dict({**model.config.to_dict(), "decoding_targets": [dict(HL_GAUSS_TARGET)]})
    decoder = nf.NeuroformerForBehaviorDecoding(config).eval()
    inputs = {k: v for k, v in batch.items() if "labels" not in k}
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = decoder(**inputs)
    edges = hl_gauss_bin_edges(HL_GAUSS_TARGET).double()
    z = (torch.softmax(out.logits.double(), -1) * (edges[1:] + edges[:-1]) / 2).sum(-1)
    expected = z * HL_GAUSS_TARGET["std"] + HL_GAUSS_TARGET["mean"]
    assert out.predictions.dtype == torch.float32
    # float32 rounding of a value near 100 is 1e-5; bfloat16's of z near 0.25 was 1e-3 (0.04 cm here)
    assert torch.allclose(out.predictions[:, 0].double(), expected, rtol=0, atol=1e-4), (out.predictions[:, 0], expected)


def test_target_dicts_place_the_hl_gauss_bins_over_the_training_values_and_leave_mse_entries_as_they_were():
    """The bins of an HL-Gauss target span its standardised training values with 3 sigma to spare on
    each side (so no training value is clipped), stored in the entry (a saved decoder reloads with
    them); an MSE target's entry has no loss key, as before the option."""
    import datasets

    from hf_neuroformer.decoding import DecodingTarget, target_dicts

    values = np.array([3.0, 10.0, 42.0, 7.5, np.nan, 150.0])
    train = datasets.Dataset.from_dict({"target_x": values})
    report = {"targets": {"x": {"kind": "regression", "column": None, "weight": 1.0, "mean": 0.0, "std": 1.0}}}
    (mse,) = target_dicts([DecodingTarget("x", "regression")], report, train)
    assert set(mse) == {"name", "kind", "column", "weight", "mean", "std"}
    (hl,) = target_dicts([DecodingTarget("x", "regression", loss="hl_gauss", num_bins=64, hl_gauss_sigma_ratio=0.75)],
                         report, train)
    assert {k: hl[k] for k in mse} == mse
    z = (values[np.isfinite(values)] - hl["mean"]) / hl["std"]
    lo, hi = hl["bin_range"]
    sigma = 0.75 * (hi - lo) / 64
    assert np.isclose(z.min() - lo, 3 * sigma) and np.isclose(hi - z.max(), 3 * sigma)
    tiny_config(decoding_targets=[hl])  # the entry passes the config's checks as it is


def test_a_continued_hl_gauss_decoder_keeps_its_saved_bins():
    """Fine-tuning a saved HL-Gauss decoder further (another fraction or recording): its head's logits are
    over the saved bins, so the new training values' bin_range would have moved every bin under the
    loaded weights, as new mean / std would have rescaled an MSE head's output."""
    from hf_neuroformer.finetuning import _keep_saved_standardisation

    saved = dict(HL_GAUSS_TARGET)
    new = {**HL_GAUSS_TARGET, "mean": 90.0, "std": 30.0, "bin_range": [-1.0, 1.0]}
    assert _keep_saved_standardisation([saved], [new]) == [0]
    assert (new["mean"], new["std"], new["bin_range"]) == (100.0, 40.0, [-2.0, 1.5])


def test_a_continued_hl_gauss_decoder_names_the_training_values_beyond_its_saved_bins(batch_and_model, tmp_path):
    """Break test: a saved HL-Gauss decoder (bins over 20 .. 160 cm) continued on training windows whose
    values span -20 .. 220 cm kept its saved bins (its logits are over them) and clipped the targets of more
    than half of the windows to the outer bins, without a word (the head cannot predict beyond them). A
    warning now counts them, below and above, with the bins and the values' span; it is kept in
    metrics.json's target_notes."""
    import json
    import warnings

    from hf_neuroformer.decoding import DecodingTarget
    from hf_neuroformer.finetuning import finetune
    from hf_neuroformer.recording import BehaviourSeries

    _, model, _ = batch_and_model
    rec = nf.simulate_coupled_network(n_units=8, duration=60.0, seed=1).recording
    t = np.arange(0.0, 60.0, 0.1)
    rec.behaviour = {"x": BehaviourSeries(t, 100.0 + 120.0 * np.sin(t), "cm")}
    _save_decoder_for(model, rec, dict(HL_GAUSS_TARGET), tmp_path / "decoder")
    target = DecodingTarget("x", "regression", loss="hl_gauss", num_bins=64, hl_gauss_sigma_ratio=0.75)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        finetune(tmp_path / "decoder", rec, [target], output_dir=tmp_path / "out", max_steps=1, batch_size=4,
                 write_figures=False)
    said = [str(w.message) for w in record if "saved HL-Gauss bins" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in record]
    m = re.match(r"^target 'x': (\d+) of the (\d+) training windows used hold values outside the continued decoder's "
                 r"saved HL-Gauss bins \[20, 160\] cm \((\d+) below, (\d+) above; the values span \[(\S+), (\S+)\] "
                 r"cm\): their targets are clipped to the outer bins", said[0])
    assert m, said[0]
    n_out, n, below, above = (int(m.group(k)) for k in range(1, 5))
    assert n_out == below + above and below > 0 and above > 0 and n_out < n
    assert float(m.group(5)) < 20.0 and float(m.group(6)) > 160.0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["target_notes"]["x"] == said[0]


def test_hl_gauss_bins_stretched_by_an_outlier_are_warned_about(batch_and_model, tmp_path):
    """Break test: a new HL-Gauss head spans its bins over the training values' raw min and max, so a few
    far outliers (a tracking error at 10000 cm among values of 80 .. 120 cm) stretched the 64 bins until
    nearly all values shared one bin, without a word. A warning now names the target, how many bins hold
    90 % of the training values and the extreme values; it is kept in metrics.json's target_notes, and
    the bins are unchanged (hl_gauss_bin_range over the standardised min and max)."""
    import json
    import warnings

    from hf_neuroformer.argument_checks import hl_gauss_bin_range
    from hf_neuroformer.decoding import DecodingTarget
    from hf_neuroformer.finetuning import finetune
    from hf_neuroformer.recording import BehaviourSeries

    _, model, _ = batch_and_model
    rec = nf.simulate_coupled_network(n_units=8, duration=60.0, seed=1).recording
    t = np.arange(0.0, 60.0, 0.1)
    x = 100.0 + 20.0 * np.sin(t)
    x[np.arange(5, t.size, 100)] = 10000.0  # one sample in every 10 s
    rec.behaviour = {"x": BehaviourSeries(t, x, "cm")}
    _save_decoder_for(model, rec, dict(HL_GAUSS_TARGET), tmp_path / "decoder")
    target = DecodingTarget("x", "regression", loss="hl_gauss", num_bins=64, hl_gauss_sigma_ratio=0.75)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        metrics = finetune(tmp_path / "decoder", rec, [target], output_dir=tmp_path / "out", max_steps=1,
                           batch_size=4, write_figures=False, from_scratch=True)
    said = [str(w.message) for w in record if "HL-Gauss bins" in str(w.message)]
    assert len(said) == 1, [str(w.message) for w in record]
    m = re.match(r"^target 'x': 90% of the (\d+) training values used lie in (\d) of its 64 HL-Gauss bins \(fewer "
                 r"than 10% of them\): the bins \[(\S+), (\S+)\] cm, each \S+ cm wide, span the training values' "
                 r"extremes \(min (\S+), max (\S+) cm; 5th-95th percentile (\S+) \.\. (\S+) cm\)", said[0])
    assert m, said[0]
    assert int(m.group(2)) <= 2 and float(m.group(6)) == 10000.0 and 79.0 < float(m.group(5)) < 121.0
    assert 79.0 < float(m.group(7)) < float(m.group(8)) < 121.0
    saved = json.loads((tmp_path / "out" / "config.json").read_text())["decoding_targets"][0]
    z_lo, z_hi = ((float(m.group(k)) - saved["mean"]) / saved["std"] for k in (5, 6))
    assert np.allclose(saved["bin_range"], hl_gauss_bin_range(z_lo, z_hi, 64, 0.75), rtol=1e-4)
    assert metrics["target_notes"]["x"] == said[0]
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["target_notes"]["x"] == said[0]


@pytest.mark.parametrize("saved_loss, asked", [
    ({}, dict(loss="hl_gauss", num_bins=64, hl_gauss_sigma_ratio=0.75)),
    ({k: HL_GAUSS_TARGET[k] for k in ("loss", "num_bins", "hl_gauss_sigma_ratio", "bin_range")}, {}),
    ({k: HL_GAUSS_TARGET[k] for k in ("loss", "num_bins", "hl_gauss_sigma_ratio", "bin_range")},
     dict(loss="hl_gauss", num_bins=32, hl_gauss_sigma_ratio=0.75)),
])
def test_continuing_a_decoder_with_another_regression_loss_is_refused_by_name(batch_and_model, tmp_path, saved_loss,
                                                                               asked):
    """A regression head is 1 output with MSE and num_bins with HL-Gauss: continuing a fine-tuned decoder with
    another loss or bin count was refused as if the decoder's files were broken ("config.json and the weights
    are of different models (an edited config.json, or the files of two runs)"), though they were of one run
    and the asked loss was the cause; a ValueError names the target and both losses now."""
    from hf_neuroformer.decoding import DecodingTarget
    from hf_neuroformer.finetuning import finetune

    _, model, _ = batch_and_model
    from hf_neuroformer.recording import BehaviourSeries

    rec = nf.simulate_coupled_network(n_units=8, duration=60.0, seed=1).recording
    t = np.arange(0.0, 60.0, 0.1)
    rec.behaviour = {"x": BehaviourSeries(t, 100.0 + 40.0 * np.sin(t), "cm")}
    saved = {"name": "x", "kind": "regression", "mean": 100.0, "std": 40.0, **saved_loss}
    _save_decoder_for(model, rec, saved, tmp_path / "decoder")
    had = "loss='mse'" if not saved_loss else f"loss='hl_gauss', num_bins={saved_loss['num_bins']}"
    now = "loss='mse'" if not asked else f"loss='hl_gauss', num_bins={asked['num_bins']}"
    with pytest.raises(ValueError, match=rf"head for 'x' was trained with {had}; {now} would need another head"):
        finetune(tmp_path / "decoder", rec, [DecodingTarget("x", "regression", **asked)], output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_dt_resolution_in_milliseconds_is_refused_with_the_milliseconds_hint():
    """Break test: ``NeuroformerConfig(dt_resolution=5)`` (5 ms meant) was refused as 'dt_resolution: expected <=
    current_window (0.1 s), got 5.0 s' with no word of units, though ImplausibleWindowWarning gives the hint; the
    refusal now ends with it (the tokenizer's too, the same check). A dt width above the window but below the
    warning's 1 s threshold gets no hint: nothing suggests milliseconds there."""
    from hf_neuroformer.configuration_neuroformer import ImplausibleWindowWarning

    hint = r"; note: window lengths are in seconds: dt_resolution=5 s \(0\.005 s if 5 was meant in milliseconds\)$"
    with pytest.raises(ValueError, match=r"^NeuroformerConfig\.dt_resolution: expected <= current_window \(0\.1 s\), "
                                         r"got 5\.0 s" + hint):
        nf.NeuroformerConfig(dt_resolution=5)
    with pytest.raises(ValueError, match=r"^NeuroformerTokenizer\.dt_resolution: .*" + hint):
        nf.NeuroformerTokenizer(unit_tokens=["u0", "u1"], current_window=0.1, past_window=1.0, dt_resolution=5)
    with pytest.raises(ValueError, match=r"^NeuroformerConfig\.dt_resolution: expected <= current_window \(0\.1 s\), "
                                         r"got 0\.5 s$"):
        nf.NeuroformerConfig(dt_resolution=0.5)
    # both given in milliseconds: the window is long enough, only the warnings say so (unchanged)
    with pytest.warns(ImplausibleWindowWarning):
        nf.NeuroformerConfig(current_window=100, dt_resolution=5)


def test_a_window_length_likely_given_in_milliseconds_is_warned_of_and_named_by_the_split_refusal(shared_data):
    """Break test: ``NeuroformerConfig(current_window=100)`` (100 ms meant) was accepted without a word and
    then refused by the split ('split_block_length: blocks of 30.000 s are too short ...' / 'past_window: a
    window with its past needs 1000.1 s ...') with no hint of units. Construction now warns, naming the
    field, the value in seconds and value / 1000, and uses the value (long windows can be meant); the later
    refusal ends with the same hint. A window at the threshold (10 s) is not warned of."""
    import warnings

    from hf_neuroformer.configuration_neuroformer import ImplausibleWindowWarning
    from hf_neuroformer.io import load_recording
    from hf_neuroformer.windows import plan_splits

    with pytest.warns(ImplausibleWindowWarning, match=r"^NeuroformerConfig\.current_window: 100 s is implausibly long "
                                                      r"for a spike window \(over 10 s.*lengths are in seconds, so if "
                                                      r"100 was meant in milliseconds give current_window=0\.1\."):
        ms = nf.NeuroformerConfig(current_window=100)
    assert ms.current_window == 100.0  # used as given
    with pytest.warns(ImplausibleWindowWarning) as record:
        nf.NeuroformerConfig(current_window=100, past_window=1000, dt_resolution=5, window_stride=50)
    named = [re.match(r"NeuroformerConfig\.(\w+): ", str(w.message)).group(1) for w in record]
    assert named == ["current_window", "past_window", "window_stride", "dt_resolution"]
    assert "give dt_resolution=0.005" in str(record[-1].message) and "dt bin (over 1 s" in str(record[-1].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nf.NeuroformerConfig(past_window=10.0, current_window=0.1, split_block_length=600.0, split_gap=60.0)
    rec = load_recording(shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"), epoch="wake")  # 600 s
    with pytest.raises(ValueError, match=r"^split_block_length: blocks of 30\.000 s are too short .*; note: window "
                                         r"lengths are in seconds: current_window=100 s \(0\.1 s if 100 was meant in "
                                         r"milliseconds\)$"):
        plan_splits(rec, ms)
    with pytest.warns(ImplausibleWindowWarning):
        long_past = nf.NeuroformerConfig(past_window=1000)
    with pytest.raises(ValueError, match=r"^past_window: a window with its past needs 1000\.1 s .*; note: window lengths "
                                         r"are in seconds: past_window=1000 s \(1 s if 1000 was meant in milliseconds\)$"):
        plan_splits(rec, long_past)


def test_a_saved_config_with_long_windows_is_not_warned_of_again_at_each_load(tmp_path):
    """Break test: a model saved with a 12-s current window and a 20-s past window on purpose (warned of once,
    where its config was made) was warned of again at every ``from_pretrained`` of the config or the model
    (a Hub download too: the same ``from_dict``), twice each, from inside transformers' configuration_utils.py
    rather than the caller's line. A saved value is not warned of again; an override given to
    ``from_pretrained`` is the caller's and is."""
    import warnings

    from hf_neuroformer.configuration_neuroformer import ImplausibleWindowWarning

    with pytest.warns(ImplausibleWindowWarning) as record:
        config = nf.NeuroformerConfig(current_window=12.0, past_window=20.0, max_window_length=64, max_past_length=96,
                                      hidden_size=32, num_attention_heads=2, num_hidden_layers=1, intermediate_size=64,
                                      vocab_size=40)
    assert len(record) == 2 and all(w.filename == __file__ for w in record)  # at the line that made it
    nf.NeuroformerForPreTraining(config).save_pretrained(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImplausibleWindowWarning)
        loaded = nf.NeuroformerConfig.from_pretrained(tmp_path)
        model = nf.NeuroformerForPreTraining.from_pretrained(tmp_path)
        copied = nf.NeuroformerConfig.from_dict(loaded.to_dict())
    assert (loaded.current_window, model.config.past_window, copied.current_window) == (12.0, 20.0, 12.0)
    with pytest.warns(ImplausibleWindowWarning, match=r"^NeuroformerConfig\.window_stride: 50 s ") as record:
        nf.NeuroformerConfig.from_pretrained(tmp_path, window_stride=50)
    assert [str(w.message).split(":")[0] for w in record] == ["NeuroformerConfig.window_stride"]


def test_automodel_of_a_checkpoint_with_heads_reports_only_keys_that_are_not_heads(tmp_path):
    """Break test: AutoModel (NeuroformerModel, the auto_map's AutoModel) of a pretrained or
    fine-tuned checkpoint listed every head (id_head, dt_head, dt_unit_embeddings, decoding_heads)
    as UNEXPECTED in its load report; the heads are left out by design now, while a key that is
    no head, and a decoder's heads loaded as NeuroformerForPreTraining, are still reported."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoModel, AutoModelForPreTraining

    torch.manual_seed(0)
    pre = nf.NeuroformerForPreTraining(tiny_config(vocab_size=11))
    pre.save_pretrained(tmp_path / "pre")
    base, info = AutoModel.from_pretrained(tmp_path / "pre", output_loading_info=True)
    assert not any(info.values()), info
    want = pre.neuroformer.state_dict()
    assert all(torch.equal(v, want[k]) for k, v in base.state_dict().items())
    cfg = tiny_config(vocab_size=11, decoding_generative_loss_weight=0.5,
                      decoding_targets=[{"name": "x", "kind": "regression", "mean": 0.0, "std": 1.0}])
    nf.NeuroformerForBehaviorDecoding(cfg).save_pretrained(tmp_path / "decoder")
    _, info = AutoModel.from_pretrained(tmp_path / "decoder", output_loading_info=True)
    assert not any(info.values()), info
    _, info = AutoModelForPreTraining.from_pretrained(tmp_path / "decoder", output_loading_info=True)
    assert info["unexpected_keys"] and all(k.startswith("decoding_heads.") for k in info["unexpected_keys"]), info
    weights = tmp_path / "pre" / "model.safetensors"
    save_file({**load_file(weights), "other_head.weight": torch.zeros(2)}, weights, metadata={"format": "pt"})
    _, info = AutoModel.from_pretrained(tmp_path / "pre", output_loading_info=True)
    assert set(info["unexpected_keys"]) == {"other_head.weight"}, info
