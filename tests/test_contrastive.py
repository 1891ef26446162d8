"""Contrastive alignment, ``neuroformer embed`` and ``neuroformer ablate`` (issue 3): the loss is off
unless a real weight asks for it, InfoNCE and retrieval behave as they must on known embeddings,
the neural embedding never sees the modality, and the two commands run on a tiny model trained on
the real A2929 head-direction recording."""

from __future__ import annotations

import json
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import hf_neuroformer as nf
from hf_neuroformer.cli import main
from hf_neuroformer.modeling_neuroformer import info_nce, retrieval_top1
from hf_neuroformer.training import TrainingConfig, train
from hf_neuroformer.windows import NeuroformerCollator, build_window_datasets

A2929 = "pynapple_A2929_headdirection/A2929-200711.nwb"
HD = {"name": "head_direction", "source": "behaviour:ry", "kind": "continuous", "normalization": "circular",
      "window": [-0.05, 0.05], "bin_size": 0.01}


def hd_config(**kw):
    base = dict(current_window=0.05, past_window=0.1, dt_resolution=0.005, max_window_length=48, max_past_length=64,
                hidden_size=32, num_attention_heads=2, num_hidden_layers=1, intermediate_size=64, hidden_dropout=0.0,
                split_block_length=10.0, modalities=[dict(HD)])
    base.update(kw)
    return nf.NeuroformerConfig(**base)


@pytest.fixture(scope="module")
def a2929(shared_data):
    from hf_neuroformer.io import load_recording

    return load_recording(shared_data(A2929), epoch="wake").restrict(700.0, 760.0)


@pytest.fixture(scope="module")
def batch(a2929):
    cfg = hd_config()
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(a2929)
    cfg.vocab_size = len(tok)
    ds, _ = build_window_datasets(a2929, tok, cfg)
    rows = ds["train"].select(range(16))[:]
    examples = [dict(zip(rows, v)) for v in zip(*rows.values())]
    return cfg, NeuroformerCollator(modalities=cfg.modalities)(examples)


# ---------------------------------------------------------------- off by default, trap 9

@pytest.mark.parametrize("batch_size, ga", [(1, 1), (4, 4)])
def test_a_micro_batch_of_one_window_is_refused_with_a_contrastive_loss(a2929, tmp_path, batch_size, ga):
    """InfoNCE contrasts the windows of a micro-batch: one window made it 0 on every step, and the
    run trained without the contrastive loss it asked for, silently."""
    cfg = hd_config(contrastive_loss_weight=0.5)
    with pytest.raises(ValueError, match=rf"training.batch_size: {batch_size} windows per step over "
                                         rf"gradient_accumulation_steps \* processes = {ga} \* 1 leaves 1 window per "
                                         r"micro-batch; contrastive_loss_weight 0.5 .* needs at least 2"):
        train(a2929, tmp_path / "m", cfg, TrainingConfig(max_steps=1, batch_size=batch_size,
                                                        gradient_accumulation_steps=ga), progress=False)
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


@pytest.mark.parametrize("weight", [True, {"on": 1}, "0.5", -0.1, float("nan")])
def test_truthy_objects_never_turn_the_contrastive_loss_on(weight):
    with pytest.raises(ValueError, match="contrastive_loss_weight"):
        hd_config(contrastive_loss_weight=weight)


def test_contrastive_config_is_validated():
    assert hd_config().contrastive_loss_weight == 0.0
    with pytest.raises(ValueError, match="contrastive_modalities"):
        hd_config(contrastive_loss_weight=0.5, contrastive_modalities=["speed"])
    with pytest.raises(ValueError, match="needs at least one entry in modalities"):
        nf.NeuroformerConfig(contrastive_loss_weight=0.5)
    with pytest.raises(ValueError, match="contrastive_temperature"):
        hd_config(contrastive_temperature=0.0)
    with pytest.raises(ValueError, match="contrastive_learnable_temperature"):
        hd_config(contrastive_learnable_temperature=1)



def test_the_cross_process_gather_is_a_config_field_that_changes_nothing_on_one_process(batch, tmp_path):
    """contrastive_gather_across_processes (default true: the gather of every process's embeddings;
    false: each process its own windows, so that DDP's join() works) is a checked bool that the
    saved config keeps and configs/default.yaml spells; on one process both give the same loss and
    gradients, bit for bit."""
    from hf_neuroformer.training import load_yaml_config

    cfg, b = batch
    assert cfg.contrastive_gather_across_processes is True
    with pytest.raises(ValueError, match=r"NeuroformerConfig\.contrastive_gather_across_processes: expected true or "
                                         r"false, got 'false'"):
        hd_config(contrastive_gather_across_processes="false")
    assert load_yaml_config(Path(__file__).parents[1] / "configs" / "default.yaml")[0] \
        .contrastive_gather_across_processes is True
    results = []
    for gather in (True, False):
        c = nf.NeuroformerConfig(**{**cfg.to_dict(), "contrastive_loss_weight": 0.5,
                                    "contrastive_gather_across_processes": gather})
        torch.manual_seed(0)
        model = nf.NeuroformerForPreTraining(c).train()
        assert model.contrastive.gather_across_processes is gather
        loss = model(**b, output_contrastive_loss=True).contrastive_loss
        loss.backward()
        results.append((loss.detach(), [p.grad for p in model.parameters() if p.grad is not None]))
        model.save_pretrained(tmp_path / str(gather))
        assert nf.NeuroformerConfig.from_pretrained(tmp_path / str(gather)).contrastive_gather_across_processes is gather
    (on, g_on), (off, g_off) = results
    assert torch.equal(on, off) and len(g_on) == len(g_off) and all(map(torch.equal, g_on, g_off))


def test_a_contrastive_modality_named_twice_is_refused():
    """["head_direction", "head_direction"] was accepted: the head looped over the name twice, so the
    loss weighed that modality twice against the others and held-out retrieval counted every window
    twice (n_windows, n_windows_without_tokens doubled in metrics.json)."""
    with pytest.raises(ValueError, match=r"contrastive_modalities: names must be unique, repeated: \['head_direction'\]"):
        hd_config(contrastive_loss_weight=0.5, contrastive_modalities=["head_direction", "head_direction"])

def test_zero_weight_adds_exactly_nothing(batch):
    cfg, b = batch
    torch.manual_seed(0)
    model = nf.NeuroformerForPreTraining(cfg).train()
    assert model.contrastive is None
    assert not [n for n, _ in model.named_parameters() if "contrastive" in n]
    out = model(**b, output_contrastive_loss=True)
    assert out.contrastive_loss is None
    assert torch.equal(out.loss, out.id_loss + cfg.dt_loss_weight * out.dt_loss)


def test_positive_weight_adds_the_weighted_infonce(batch):
    cfg, b = batch
    cfg = nf.NeuroformerConfig(**{**cfg.to_dict(), "contrastive_loss_weight": 0.25})
    torch.manual_seed(0)
    model = nf.NeuroformerForPreTraining(cfg).train()
    out = model(**b)
    assert out.contrastive_loss is not None and math.isfinite(float(out.contrastive_loss))
    # 16 windows: an untrained model is near chance, log(16) = 2.77
    assert 1.5 < float(out.contrastive_loss) < 4.0
    torch.testing.assert_close(out.loss, out.id_loss + cfg.dt_loss_weight * out.dt_loss + 0.25 * out.contrastive_loss)
    out.loss.backward()
    assert model.contrastive.neural_projections["head_direction"].weight.grad.abs().sum() > 0
    assert not model.contrastive.logit_scale.requires_grad  # fixed temperature unless asked
    assert float(model.contrastive.logit_scale.exp()) == pytest.approx(1 / cfg.contrastive_temperature, rel=1e-5)
    model.eval()
    assert model(**b).contrastive_loss is None  # evaluation: only when asked


# ---------------------------------------------------------------- InfoNCE and retrieval

def test_infonce_aligned_is_low_and_shuffled_is_log_batch():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(64, 32, generator=g)
    b = torch.randn(64, 32, generator=g)
    assert float(info_nce(a, a, 1 / 0.05)) < 0.05
    assert float(info_nce(a, a[torch.randperm(64, generator=g)], 1.0)) == pytest.approx(math.log(64), abs=0.1)
    assert float(info_nce(a, b, 1.0)) == pytest.approx(math.log(64), abs=0.1)


def test_infonce_of_windows_with_identical_inputs_has_the_documented_floor_and_no_nan():
    """Identical modality embeddings (windows with identical inputs) are each other's negatives, as
    info_nce's docstring says: two identical rows out of four, perfectly aligned at a low
    temperature, give log(2) on each of their rows in both directions (mean log(2) / 2) and no
    gradient; a batch of one repeated input gives finite values (no NaN)."""
    g = torch.Generator().manual_seed(0)
    b = torch.randn(4, 8, generator=g)
    b[1] = b[0]
    a = b.clone().requires_grad_(True)
    loss = info_nce(a, b, 100.0)
    loss.backward()
    assert float(loss) == pytest.approx(math.log(2) / 2, abs=1e-6) and float(a.grad.abs().max()) < 1e-6
    a = torch.randn(5, 8, generator=g, requires_grad=True)
    loss = info_nce(a, torch.randn(1, 8, generator=g).repeat(5, 1), 10.0)
    loss.backward()
    assert float(loss) >= math.log(5) - 1e-6 and torch.isfinite(a.grad).all()



def test_infonce_equals_its_definition_in_each_direction_and_the_head_scores_only_windows_with_tokens():
    """An independent check of the value (scipy, float64): for L2-normalised rows a_i, b_j and
    s = 1 / temperature, L(a -> b) = mean_i [-log softmax_j(s a_i . b_j)]_i and L(b -> a) the same over
    columns; info_nce = (L(a -> b) + L(b -> a)) / 2, so it is symmetric in a and b. The directions of
    this batch differ by more than 0.1 nats, so a loss of one direction only, or the same direction
    twice, would not pass. The head's loss is info_nce over the windows with a token of each
    modality only (valid), averaged over the modalities."""
    from scipy.special import log_softmax

    from hf_neuroformer.modeling_neuroformer import NeuroformerContrastiveHead

    g = torch.Generator().manual_seed(3)
    a, b = torch.randn(5, 6, generator=g), torch.randn(5, 6, generator=g)

    def definition(a, b, s):
        an = a.double().numpy() / np.linalg.norm(a.double().numpy(), axis=1, keepdims=True)
        bn = b.double().numpy() / np.linalg.norm(b.double().numpy(), axis=1, keepdims=True)
        logits = s * an @ bn.T
        a_to_b = -np.diag(log_softmax(logits, axis=1)).mean()  # row i: which b is a_i's pair
        b_to_a = -np.diag(log_softmax(logits, axis=0)).mean()  # column j: which a is b_j's pair
        return a_to_b, b_to_a

    for s in (1.0, 1 / 0.07, 100.0):
        ab, ba = definition(a, b, s)
        assert float(info_nce(a, b, s)) == pytest.approx((ab + ba) / 2, rel=1e-5)
        assert float(info_nce(b, a, s)) == pytest.approx((ab + ba) / 2, rel=1e-5)
    ab, ba = definition(a, b, 1 / 0.07)
    assert abs(ab - ba) > 0.1
    # the head: windows without a token of a modality are neither a query nor a negative
    cfg = hd_config(contrastive_loss_weight=0.5, contrastive_temperature=0.07, contrastive_projection_size=4,
                    modalities=[dict(HD), {**HD, "name": "hd2"}])
    torch.manual_seed(0)
    head = NeuroformerContrastiveHead(cfg)
    neural, pooled1, pooled2 = (torch.randn(6, 32, generator=g) for _ in range(3))
    valid1 = torch.tensor([True, False, True, True, False, True])
    valid2 = torch.tensor([True, True, True, False, True, True])
    with torch.no_grad():
        loss = head(neural, {"head_direction": (pooled1, valid1), "hd2": (pooled2, valid2)})
        parts = []
        for name, pooled, valid in (("head_direction", pooled1, valid1), ("hd2", pooled2, valid2)):
            na = head.neural_projections[name](neural[valid])
            mb = head.modality_projections[name](pooled[valid])
            parts.append(sum(definition(na, mb, 1 / 0.07)) / 2)
    assert float(loss) == pytest.approx(np.mean(parts), rel=1e-5)


def test_retrieval_is_perfect_on_identical_and_chance_like_on_unrelated():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(50, 16, generator=g)
    assert retrieval_top1(a, a) == (1.0, 1.0)
    ab, ba = retrieval_top1(a, torch.randn(50, 16, generator=g))
    assert ab < 0.2 and ba < 0.2


def test_a_window_alone_in_its_retrieval_group_is_not_counted_as_without_tokens(a2929):
    """3 windows with head-direction tokens in groups of 2: the third has tokens but no candidate
    to retrieve among; it was counted as a window without tokens."""
    from hf_neuroformer.contrastive import evaluate_retrieval

    cfg = hd_config(contrastive_loss_weight=0.5)
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(a2929)
    cfg.vocab_size = len(tok)
    ds, _ = build_window_datasets(a2929, tok, cfg)
    rows = ds["test"].select(range(3))
    assert all(len(t) for t in rows["mod_head_direction_times"])
    torch.manual_seed(0)
    r = evaluate_retrieval(nf.NeuroformerForPreTraining(cfg), rows, NeuroformerCollator(modalities=cfg.modalities),
                           batch_size=2)["head_direction"]
    assert (r["n_windows"], r["n_windows_without_tokens"], r["n_windows_alone_in_group"]) == (2, 0, 1)


def _untrained_contrastive_model_and_test_rows(a2929, n_rows):
    """``(config, rows, model)``: the head-direction config with a contrastive weight of 0.5 (its
    vocabulary set from ``a2929``), the first ``n_rows`` test windows and a seeded untrained model
    in eval mode."""
    cfg = hd_config(contrastive_loss_weight=0.5)
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(a2929)
    cfg.vocab_size = len(tok)
    rows = build_window_datasets(a2929, tok, cfg)[0]["test"].select(range(n_rows))
    torch.manual_seed(0)
    return cfg, rows, nf.NeuroformerForPreTraining(cfg).eval()


def test_a_diverged_model_scores_no_retrieval_rather_than_chance(a2929):
    """Break test: a model with NaN weights (training diverged: ablate's +contrastive row at a
    learning rate of 1e6) gave NaN similarities, whose argmax is the first index, so its retrieval
    came out at about chance (0.036 against a chance of 0.036 on 196 A2929 test windows) and was
    reported as a figure. It is now NaN, as its losses are."""
    from hf_neuroformer.contrastive import evaluate_retrieval

    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 8, generator=g)
    nan_row = a.clone()
    nan_row[2] = float("nan")
    for x, y in ((nan_row, a), (a, nan_row), (a, torch.full_like(a, float("inf")))):
        assert all(math.isnan(v) for v in retrieval_top1(x, y))
    assert retrieval_top1(a, a) == (1.0, 1.0)
    cfg, rows, model = _untrained_contrastive_model_and_test_rows(a2929, 8)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    r = evaluate_retrieval(model, rows, NeuroformerCollator(modalities=cfg.modalities), batch_size=4)["head_direction"]
    assert r["n_windows"] == 8 and math.isnan(r["neural_to_modality_top1"]) and math.isnan(r["modality_to_neural_top1"])


# ---------------------------------------------------------------- neural embeddings

def test_neural_embeddings_shapes_padding_and_no_modality_leak(batch):
    cfg, b = batch
    cfg = nf.NeuroformerConfig(**{**cfg.to_dict(), "contrastive_loss_weight": 0.5, "contrastive_projection_size": 8})
    model = nf.NeuroformerForPreTraining(cfg).eval()
    keys = ("input_ids", "dt_ids", "attention_mask", "past_input_ids", "past_dt_ids", "past_attention_mask")
    inp = {k: b[k] for k in keys}
    with torch.no_grad():
        h = model.get_neural_embeddings(**inp)
        assert h.shape == (16, cfg.hidden_size) and h.dtype == torch.float32
        assert model.get_neural_embeddings(**inp, projected="head_direction").shape == (16, 8)
        # five more padding tokens change nothing: padding is not pooled
        padded = dict(inp)
        padded["input_ids"] = torch.cat([inp["input_ids"], torch.zeros(16, 5, dtype=torch.long)], 1)
        padded["dt_ids"] = torch.cat([inp["dt_ids"], torch.zeros(16, 5, dtype=torch.long)], 1)
        padded["attention_mask"] = torch.cat([inp["attention_mask"], torch.zeros(16, 5, dtype=torch.long)], 1)
        torch.testing.assert_close(model.get_neural_embeddings(**padded), h)
        # the pooled neural embedding is the spikes' alone: the head direction does not enter it
        # (while the next-spike logits do depend on it)
        assert model.get_neural_embeddings(**inp).equal(h)
        other = {k: dict(v) for k, v in b["modality_inputs"].items()}
        other["head_direction"]["values"] = other["head_direction"]["values"] + 2.0
        full = {k: v for k, v in b.items() if k not in ("labels", "dt_labels")}
        assert not torch.allclose(model(**full).logits, model(**{**full, "modality_inputs": other}).logits)
        pooled = model.neuroformer.get_modality_embeddings(b["modality_inputs"])
        emb, valid = pooled["head_direction"]
        assert emb.shape == (16, cfg.hidden_size) and valid.all()
    with pytest.raises(ValueError, match="no contrastive projection"):
        model.get_neural_embeddings(**inp, projected="orientation")


def test_contrasts_and_the_pooled_embeddings_valid_follow_one_rule_of_windows_with_tokens(batch):
    """The contrastive head's count of contrasted windows (contrasted_windows; training counts a
    micro-batch's InfoNCE term by it; it was contrasts(), whether there is one) wrote
    its own rule of which windows hold a modality token beside the pooled embeddings' ``valid``
    (what forward contrasts). Inputs without a mask and without any token (n_tokens 0) disagreed:
    contrasts() counted every window and said the batch had a term, forward had none. Both now use
    windows_with_tokens; each case is checked against forward's own count of valid windows."""
    cfg, b = batch
    cfg = nf.NeuroformerConfig(**{**cfg.to_dict(), "contrastive_loss_weight": 0.5})
    torch.manual_seed(0)
    model = nf.NeuroformerForPreTraining(cfg).eval()
    hd = b["modality_inputs"]["head_direction"]
    one = dict(hd, mask=torch.zeros_like(hd["mask"]))
    one["mask"][3, 0] = True
    no_mask = {k: v for k, v in hd.items() if k != "mask"}
    no_tokens = {k: v[:, :0] for k, v in no_mask.items()}
    for inputs, n in ((hd, 16), (one, 1), (no_mask, 16), (no_tokens, 0)):
        with torch.no_grad():
            _, valid = model.neuroformer.get_modality_embeddings({"head_direction": inputs})["head_direction"]
        assert int(valid.sum()) == n
        assert model.contrastive.contrasted_windows({"head_direction": inputs}) == [n], n
    assert model.contrastive.contrasted_windows({}) == [0]


# ---------------------------------------------------------------- trained on real data, CLI

@pytest.fixture(scope="module")
def trained(a2929, tmp_path_factory):
    out = tmp_path_factory.mktemp("contrastive") / "model"
    cfg = hd_config(contrastive_loss_weight=0.5)
    metrics = train(a2929, out, cfg, TrainingConfig(max_steps=30, batch_size=16, eval_every=15, seed=0,
                                                    generate_test=False), progress=False)
    return out, metrics


def test_training_with_contrastive_reports_held_out_retrieval(trained, a2929, readme_leaves_out):
    """The reported figures are the top-1 retrieval of the saved model on the test windows, in
    seeded groups of 32, recomputed here with numpy cosines (only ranges were checked before, which
    a figure from the training windows or from another checkpoint also passes)."""
    from hf_neuroformer.generation import load_pretrained

    out, m = trained
    assert not readme_leaves_out(m), readme_leaves_out(m)  # the retrieval keys, in the README's table
    r = {k: m[f"test/retrieval/head_direction/{k}"] for k in (
        "neural_to_modality_top1", "modality_to_neural_top1", "chance", "n_windows", "n_windows_without_tokens")}
    # held out: every test window is scored or counted (head direction at ~120 Hz: none lacks a sample)
    assert r["n_windows"] + r["n_windows_without_tokens"] == m["n_test_windows"] > 100
    assert r["n_windows_without_tokens"] == 0
    n = r["n_windows"]
    assert r["chance"] == pytest.approx(math.ceil(n / 32) / n)  # k queries at 1/k in each group
    model, tok, plan = load_pretrained(out)
    model.eval()
    test = build_window_datasets(a2929, tok, model.config, plan)[0]["test"]
    assert len(test) == n
    collate = NeuroformerCollator(modalities=model.config.modalities)
    order = np.random.default_rng(0).permutation(n)  # TrainingConfig(seed=0)
    hits, ties_lost, ties_won = np.zeros(2), np.zeros(2), np.zeros(2)
    head = model.contrastive
    with torch.no_grad():
        for i in range(0, n, 32):
            b = collate([test[int(j)] for j in order[i:i + 32]])
            a = model.get_neural_embeddings(**{k: b[k] for k in ("input_ids", "dt_ids", "attention_mask",
                                                                 "past_input_ids", "past_dt_ids", "past_attention_mask")},
                                            projected="head_direction").numpy()
            emb, valid = model.neuroformer.get_modality_embeddings(b["modality_inputs"])["head_direction"]
            assert bool(valid.all())
            mm = head.modality_projections["head_direction"](emb).numpy()
            a = a.astype(np.float64) / np.linalg.norm(a.astype(np.float64), axis=1, keepdims=True)
            mm = mm.astype(np.float64) / np.linalg.norm(mm.astype(np.float64), axis=1, keepdims=True)
            sim = a @ mm.T
            own = np.arange(len(sim))
            hits += [(sim.argmax(1) == own).sum(), (sim.argmax(0) == own).sum()]
            # a query whose own candidate and best other candidate are within float32 round-off of
            # each other may be called either way by the package's float32 torch matmul: 11 against
            # 12 of 196 hits, with 25 such near ties among the neural queries of this barely trained
            # model (windows of nearly the same head direction in a group); none among the others.
            # One-sided: a float64 hit can only be lost, a float64 miss only won
            for k, s in enumerate((sim, sim.T)):  # rows: neural queries; columns: modality queries
                margin = s[own, own] - np.where(np.eye(len(s), dtype=bool), -np.inf, s).max(1)
                ties_lost[k] += ((margin >= 0) & (margin < 1e-5)).sum()
                ties_won[k] += ((margin <= 0) & (margin > -1e-5)).sum()  # 0: argmax may pick either
    for key, k in (("neural_to_modality_top1", 0), ("modality_to_neural_top1", 1)):
        got = r[key] * n
        assert hits[k] - ties_lost[k] - 1e-9 <= got <= hits[k] + ties_won[k] + 1e-9, (
            key, got, hits[k], ties_lost[k], ties_won[k])
    assert math.isfinite(m["test/id_nll"])


def test_embed_cli_writes_png_npy_and_json_and_refuses_to_overwrite(trained, shared_data, tmp_path, capsys,
                                                                    monkeypatch):
    model_dir, m = trained
    png = tmp_path / "latents" / "hd.png"
    monkeypatch.chdir(model_dir.parent)  # --model given relative: the JSON records where it is
    args = ["embed", "--model", model_dir.name, "--data", str(shared_data(A2929)), "--epoch", "wake",
            "--color-by", "ry", "--output", str(png)]
    capsys.readouterr()
    assert main(args) == 0
    # the windows without a head direction are drawn as black crosses (plot_latents_3d);
    # the summary line said they were grey, as they once were
    out = capsys.readouterr().out
    assert re.search(r"; \d+ windows without a 'ry' value \(black crosses, 'undefined' in the legend\)", out), out
    assert "grey" not in out
    assert png.stat().st_size > 10_000
    lat = np.load(png.with_suffix(".npy"))
    meta = json.loads(png.with_suffix(".json").read_text())
    assert lat.shape == (m["n_test_windows"], 32) and np.isfinite(lat).all()
    assert len(meta["color_values"]) == len(lat) and len(meta["pca_coords"]) == len(lat)
    assert all(0 <= v < 2 * np.pi for v in meta["color_values"] if v is not None)
    assert meta["model"] == str(model_dir.resolve())  # it said "model_dir.name", of no use from elsewhere
    before = png.read_bytes()
    assert main(args) == 2
    assert "exists" in capsys.readouterr().err and png.read_bytes() == before
    assert main(args + ["--overwrite", "--projected", "head_direction"]) == 0
    assert np.load(png.with_suffix(".npy")).shape == (m["n_test_windows"], 32)
    assert main(args[:-1] + [str(tmp_path / "x.png"), "--color-by", "speed_of_light"]) == 2
    assert "speed_of_light" in capsys.readouterr().err



def test_embed_refuses_an_unknown_projection_before_reading_the_recording(trained, tmp_path, capsys):
    """--projected naming no contrastive projection of the model was refused only inside window_latents:
    after the recording was read, checked and its split's windows built (and their truncation warned
    of), so a recording that is not there was reported first. Refused now right after the model is read."""
    model_dir, _ = trained
    args = ["embed", "--model", str(model_dir), "--data", str(tmp_path / "not_there.nwb"), "--color-by", "ry",
            "--projected", "speed", "--output", str(tmp_path / "x.png")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--projected: 'speed' has no contrastive projection in this model (has ['head_direction']" in err, err
    assert "not_there" not in err and not list(tmp_path.iterdir())


def test_embed_refuses_a_projection_narrower_than_its_3d_pca_before_reading_the_recording(trained, tmp_path, capsys):
    """A model with contrastive_projection_size 2 (a 2-D latent, to plot as it is): 'embed --projected' read the
    recording, embedded every window and then failed in scikit-learn's PCA ("n_components=3 must be between 0
    and min(n_samples, n_features)=2"), naming no flag and writing nothing. Refused now after the model is read."""
    import shutil

    from hf_neuroformer.generation import load_pretrained

    src, _ = trained
    narrow = tmp_path / "narrow"
    shutil.copytree(src, narrow)
    model = load_pretrained(src)[0]
    model.config.contrastive_projection_size = 2
    two = nf.NeuroformerForPreTraining(model.config)
    own = two.state_dict()
    two.load_state_dict({k: v for k, v in model.state_dict().items() if own[k].shape == v.shape}, strict=False)
    assert two.contrastive.neural_projections["head_direction"].out_features == 2
    two.save_pretrained(narrow)
    args = ["embed", "--model", str(narrow), "--data", str(tmp_path / "not_there.nwb"), "--color-by", "ry",
            "--projected", "head_direction", "--output", str(tmp_path / "x.png")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert ("--projected: 'head_direction' projects to 2 dimensions (the model's contrastive_projection_size), "
            "fewer than the 3 principal components this command draws; embed without --projected (the pooled "
            "decoder states, 32 dimensions)") in err, err
    assert "not_there" not in err and not list(tmp_path.glob("x.*"))


def test_embed_color_scale_picks_categorical_or_continuous_colours_and_refuses_too_many_categories(
        trained, a2929, tmp_path, capsys):
    """The Python API had ``categorical=``; the command could only take the automatic choice, so a
    variable with a few values the user wanted on a colour bar (or the reverse) could not be drawn
    so. ``--color-scale`` chooses, the ``.json`` records the choice, and categorical colours for a
    variable with more than 10 values are refused before the latents are computed."""
    import dataclasses

    from hf_neuroformer.io import write_nwb
    from hf_neuroformer.recording import BehaviourSeries

    x = a2929.behaviour["x"]
    side = BehaviourSeries(x.timestamps, (x.values > np.nanmedian(x.values)).astype(float), "")
    data = tmp_path / "with_side.nwb"
    write_nwb(dataclasses.replace(a2929, behaviour={**a2929.behaviour, "side": side}), data)
    model_dir, _ = trained
    base = ["embed", "--model", str(model_dir), "--data", str(data), "--color-by"]

    def scale(name, out, *extra):
        assert main(base + [name, "--output", str(tmp_path / out), *extra]) == 0, capsys.readouterr().err
        return json.loads((tmp_path / out).with_suffix(".json").read_text())["color_scale"]

    assert scale("side", "auto.png") == "categorical"  # two values, each repeated
    assert scale("side", "bar.png", "--color-scale", "continuous") == "continuous"
    assert scale("ry", "ry.png") == "circular"
    assert scale("side", "cat.png", "--color-scale", "categorical") == "categorical"
    assert main(base + ["ry", "--output", str(tmp_path / "no.png"), "--color-scale", "categorical"]) == 2
    err = capsys.readouterr().err
    assert "--color-scale categorical: 'ry' takes" in err and "more than the 10" in err
    assert not any((tmp_path / "no").with_suffix(s).exists() for s in (".png", ".npy", ".json"))


def test_ablate_cli_trains_the_variants_that_apply(a2929, tmp_path, capsys):
    from hf_neuroformer.io import write_nwb

    # 20 s in 2-s split blocks (60 s in 10-s blocks took three times as long): the test reads what the command
    # trains, writes and refuses, not how well the variants learn
    data = tmp_path / "a2929_20s.nwb"
    write_nwb(a2929.restrict(700.0, 720.0), data)
    cfg = tmp_path / "hd.yaml"
    cfg.write_text(
        "current_window: 0.05\npast_window: 0.1\ndt_resolution: 0.005\nmax_window_length: 48\nmax_past_length: 64\n"
        "hidden_size: 16\nnum_attention_heads: 2\nnum_hidden_layers: 1\nintermediate_size: 32\n"
        "split_block_length: 2.0\nmodalities:\n  - name: head_direction\n    source: behaviour:ry\n"
        "    kind: continuous\n    normalization: circular\n    window: [-0.05, 0.05]\n    bin_size: 0.01\n"
        "training:\n  batch_size: 16\n  generation_batch_size: 512\n")
    out = tmp_path / "ablation.md"
    assert main(["ablate", "--config", str(cfg), "--data", str(data), "--max-steps", "3", "--output", str(out)]) == 0
    text = out.read_text()
    for variant in ("| state-only |", "| +past |", "| +behaviour |", "| +contrastive |"):
        assert variant in text
    assert "Skipped +stimulus: no stimulus / trial / events modality" in text
    assert "Same split for every variant: yes" in text
    res = json.loads(out.with_suffix(".json").read_text())
    rows = {r["variant"]: r for r in res["rows"]}
    assert all(math.isfinite(r["id_nll"]) and math.isfinite(r["dt_nll"]) and 0 <= r["id_f1"] <= 1 for r in rows.values())
    # state-only sees no past spike (all dropped, counted); +past drops none at this size
    assert rows["state-only"]["n_truncated_past_spikes"] > 0 and rows["+past"]["n_truncated_past_spikes"] == 0
    assert "head_direction/neural_to_modality_top1" in rows["+contrastive"]
    # which modality the InfoNCE aligns, and at which temperature (the row said only its weight)
    assert "| +contrastive | current window + past + head_direction + InfoNCE with head_direction (weight 0.5, " \
           "temperature 0.1) |" in text, text
    assert len({r["n_test_spike_tokens"] for r in rows.values()}) == 1
    assert main(["ablate", "--config", str(cfg), "--data", str(data), "--max-steps", "3", "--output", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_an_ablation_seed_numpy_cannot_take_is_refused_before_any_variant_trains(tmp_path, capsys):
    # --seeds 0,4294967296 trained every variant of seed 0, then failed at the next seed with numpy's
    # bare "Seed must be between 0 and 2**32 - 1" (Accelerate's set_seed), the table never written;
    # run_ablation took such a seed (or -1) as far as its turn too
    from hf_neuroformer.ablation import run_ablation

    cfg = tmp_path / "c.yaml"
    cfg.write_text("hidden_size: 16\nnum_attention_heads: 2\nintermediate_size: 32\n")
    out = tmp_path / "ablation.md"
    for flag, value, said in (("--seeds", f"0,{2**32}", "--seeds: expected integers in [0, 4294967295]"),
                              ("--seed", str(2**32), "--seed: expected an integer in [0, 4294967295]")):
        assert main(["ablate", "--config", str(cfg), "--data", str(tmp_path / "not_there.nwb"), flag, value,
                     "--output", str(out)]) == 2
        err = capsys.readouterr().err
        assert said in err and "not_there" not in err, err
    rec = nf.simulate_coupled_network(n_units=4, duration=30.0, seed=1).recording
    config = nf.NeuroformerConfig(current_window=0.1, past_window=0.2, dt_resolution=0.01, max_window_length=16,
                                  max_past_length=32, hidden_size=16, num_attention_heads=2, intermediate_size=32,
                                  split_block_length=5.0)
    for seeds in ([0, 2**32], [0, -1]):
        with pytest.raises(ValueError, match=r"training\.seed: expected an integer in \[0, 4294967295\]"):
            run_ablation(rec, config, TrainingConfig(max_steps=1, batch_size=8), work_dir=tmp_path / "w", seeds=seeds)
        assert not (tmp_path / "w").exists()
    assert not out.exists()


def test_an_ablation_run_that_diverged_is_named_under_the_table(a2929, tmp_path):
    """Break test: at a learning rate of 1e6 every variant diverged; the table showed 'nan' and
    'n/a' in each row and nothing said why, and train's warning was said for the first variant
    only (Python shows a repeated warning once). The runs not scored are now listed with train's
    reason, in the table and in the result."""
    from hf_neuroformer.ablation import _not_scored_reason, ablation_markdown, checkpoint_choice, run_ablation, \
        variant_folder

    rec = a2929.restrict(700.0, 720.0)
    tc = TrainingConfig(max_steps=2, batch_size=16, learning_rate=1e6, generation_batch_size=512)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_ablation(rec, hd_config(modalities=[], split_block_length=2.0), tc, work_dir=tmp_path / "w",
                           seeds=[0, 1])
    assert [(r["variant"], r["seed"]) for r in res["not_scored"]] == [
        ("state-only", 0), ("+past", 0), ("state-only", 1), ("+past", 1)]
    assert all("training diverged" in r["reason"] for r in res["not_scored"])
    text = ablation_markdown(res)
    for name, seed in (("state-only", 0), ("+past", 1)):
        assert f"Not scored: {name} (seed {seed}): its test split was not generated: the model's test losses are " \
               "NaN (training diverged" in text, text
    # no step was selected (validation loss never finite): the 'best step' column showed the last step (2)
    assert all(r["best_step"] is None and r["checkpoint_selection"] == "last step (validation loss never finite)"
               for runs in res["per_seed"].values() for r in runs)
    assert "| n/a, n/a | " in text and "| 2, 2 |" not in text, text
    assert "Best step n/a: state-only (seed 0), +past (seed 0), state-only (seed 1), +past (seed 1): no step was " \
           "selected (last step (validation loss never finite)); the last step's model was kept." in text, text
    assert checkpoint_choice(res).startswith("no checkpoint chosen on validation")  # the header's words (ablate)
    # every seed diverged: the cells said 'nan ± nan' (a mean and sd over NaNs); now the count of seeds scored
    assert res["rows"][1]["unscored_seeds"]["id_nll"] == [0, 1] and res["rows"][1]["id_nll_sd"] is None
    assert "| nan (0 of 2 seeds; seeds 0, 1 not scored: see below) | " in text and "nan ± nan" not in text, text
    # the unit-id F1 (None: not generated) showed 'n/a' for every seed without saying so
    assert res["rows"][1]["id_f1"] is None and res["rows"][1]["unscored_seeds"]["id_f1"] == [0, 1]
    assert "see below) | n/a (0 of 2 seeds; seeds 0, 1 not scored: see below) | " in text, text
    # the reason pointed to 'train_loss in training_log.json' without saying where; it now gives the logged loss and
    # the log's path, or, for the temporary folders of a run without work_dir (removed), says --work-dir keeps them
    folder = variant_folder(tmp_path / "w", [0, 1], 1, 1, "+past")
    assert all("training diverged: the training loss logged at step 2 was " in r["reason"] for r in res["not_scored"])
    reason = res["not_scored"][-1]["reason"]
    assert f"; see train_loss in {folder / 'training_log.json'}; lower" in reason, reason
    gen = json.loads((folder / "metrics.json").read_text())["test/generation"]
    temporary = _not_scored_reason(gen, folder, True)
    assert "training_log.json" in gen and reason.replace(f"see train_loss in {folder / 'training_log.json'}", "the "
           "variant folders were temporary and are removed: give work_dir (--work-dir) to keep their "
           "training_log.json") == temporary, temporary


def test_ablate_cli_names_the_config_field_of_the_rate_of_a_diverged_run(a2929, tmp_path, capsys):
    """Break test: 'neuroformer ablate' wrote train's reason under the table ('Not scored: ... lower
    learning_rate'), a name no ablate flag has: the rate is the training: section's of its --config,
    as 'neuroformer train' already says. Named so now, in the table and in the .json."""
    from hf_neuroformer.io import write_nwb

    data = write_nwb(a2929.restrict(700.0, 720.0), tmp_path / "a2929_20s.nwb")
    cfg = tmp_path / "div.yaml"
    cfg.write_text("current_window: 0.05\npast_window: 0.1\ndt_resolution: 0.005\nmax_window_length: 48\n"
                   "max_past_length: 64\nhidden_size: 16\nnum_attention_heads: 2\nnum_hidden_layers: 1\n"
                   "intermediate_size: 32\nsplit_block_length: 2.0\n"
                   # a modality, so that +behaviour and +contrastive (its held-out retrieval) are trained too
                   f"modalities: [{json.dumps(HD)}]\n"
                   "training:\n  batch_size: 16\n  generation_batch_size: 512\n  learning_rate: 1.0e6\n")
    out = tmp_path / "ablation.md"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["ablate", "--config", str(cfg), "--data", str(data), "--max-steps", "2", "--output",
                     str(out)]) == 0, capsys.readouterr().err
    text = out.read_text()
    reasons = [r["reason"] for r in json.loads(out.with_suffix(".json").read_text())["not_scored"]]
    assert len(reasons) == 4 and all(f"lower training.learning_rate in --config {cfg})" in r for r in reasons), reasons
    assert "Not scored: +past: its test split was not generated" in text and "lower learning_rate" not in text, text
    # +contrastive's held-out retrieval said 'neural -> head_direction top-1 nan, head_direction -> neural nan', as if
    # scored: retrieval_top1 gives NaN for the diverged model's non-finite embeddings
    result = json.loads(out.with_suffix(".json").read_text())
    assert [r["variant"] for r in result["rows"]] == ["state-only", "+past", "+behaviour", "+contrastive"]
    assert result["rows"][3]["head_direction/neural_to_modality_top1"] is None  # NaN, null in the .json
    assert "Held-out retrieval (+contrastive, head_direction): not scored: the embeddings of the model are not finite " \
           "(NaN or inf: training diverged), so no window retrieves another.\n" in text and "top-1 nan" not in text, text
    from hf_neuroformer.ablation import ablation_markdown

    result["rows"][3]["head_direction/n_windows"] = 0  # as if no test window had a token of head_direction
    assert "head_direction): not scored: no test window with a token of the modality had another one in its group " \
           "to retrieve among.\n" in ablation_markdown(result)
    # the header said 'checkpoint chosen on validation' while train selected no step for any run (best step n/a)
    from hf_neuroformer.ablation import checkpoint_choice

    assert "; test split, no checkpoint chosen on validation (every run's last step is scored: see 'Best step n/a' " \
           "below).\n" in text and "checkpoint chosen on validation." not in text, text
    # with two seeds of which one diverged, the retrieval line said 'not scored (a seed's model)' and hid the other
    # seed's figures: as if seed 0's model had retrieved at the chance level (its real chance), seed 1 this run's
    from hf_neuroformer.ablation import _over_seeds

    scored = [dict(r) for r in result["per_seed"]["0"]]
    chance = scored[3]["head_direction/chance"]
    scored[3].update({f"head_direction/{k}": chance for k in ("neural_to_modality_top1", "modality_to_neural_top1")})
    per_seed = {0: scored, 1: [dict(r) for r in result["per_seed"]["0"]]}
    two = {**result, "seeds": [0, 1], "per_seed": per_seed, "rows": _over_seeds(per_seed),
           "not_scored": [dict(r, seed=1) for r in result["not_scored"]]}
    assert two["rows"][3]["head_direction/neural_to_modality_top1"] == chance
    assert f"Held-out retrieval (+contrastive, head_direction, mean over seeds (1 of 2 seeds; seed 1 not scored: the " \
           "embeddings of its model are not finite (NaN or inf: training diverged), so no window retrieves another)): " \
           f"neural -> head_direction top-1 {chance:.3f}, head_direction -> neural {chance:.3f}, chance {chance:.3f}" \
           in ablation_markdown(two), ablation_markdown(two)
    for j, row in enumerate(result["per_seed"]["0"]):  # as if train had selected the step of one run, then more
        row.update(best_step=2, checkpoint_selection="lowest validation loss")
        assert checkpoint_choice(result) == (f"checkpoint chosen on validation, except for {3 - j} of 4 runs (their last "
                                             "step is scored: see 'Best step n/a' below)" if j < 3
                                             else "checkpoint chosen on validation")


def test_ablation_variants_start_from_paired_weights_and_several_seeds_give_mean_sd_and_paired_differences(
        a2929, tmp_path, capsys, readme_leaves_out):
    """A model with a modality drew the modality's modules from the seeded stream first, so its
    shared weights (unit embeddings, decoder, heads) started elsewhere than +past's: the
    ablation's differences held a seed-to-seed part. Each variant now starts from the previous
    one's weights (train(initial_state=...)), and several seeds give mean +/- sd and the paired
    difference to +past."""
    from hf_neuroformer.ablation import ablation_markdown, run_ablation, variant_folder

    rec = a2929.restrict(700.0, 720.0)  # 20 s in 2 s blocks: small splits, quick runs
    tc = TrainingConfig(max_steps=1, batch_size=16, generation_batch_size=512)
    began = {}

    def keep(name):
        return lambda model: began.__setitem__(name, {k: v.clone() for k, v in model.state_dict().items()})

    # these three runs are read for their starting weights (and the paired run's metrics.json keys): no figure, and
    # no test-split generation for the two runs whose metrics are not read
    import dataclasses

    starts_only = dataclasses.replace(tc, generate_test=False)
    train(rec, tmp_path / "past", hd_config(modalities=[], split_block_length=2.0), starts_only, progress=False,
          on_train_start=keep("past"), write_figures=False)
    train(rec, tmp_path / "alone", hd_config(split_block_length=2.0), starts_only, progress=False,
          on_train_start=keep("alone"), write_figures=False)
    m = train(rec, tmp_path / "paired", hd_config(split_block_length=2.0), tc, progress=False,
              initial_state=began["past"], on_train_start=keep("paired"), write_figures=False)
    shared = [k for k in began["past"] if k in began["alone"]]
    assert len(shared) == m["n_initial_tensors_given"] and len(shared) < len(began["alone"])
    assert not readme_leaves_out(m), readme_leaves_out(m)
    assert sum(not torch.equal(began["alone"][k], began["past"][k]) for k in shared) > 0  # the old start
    assert all(torch.equal(began["paired"][k], began["past"][k]) for k in shared)
    # the modality's own modules keep their initialisation
    own = [k for k in began["alone"] if k not in began["past"]]
    assert all(torch.equal(began["paired"][k], began["alone"][k]) for k in own)

    # two seeds (state-only and +past: no modality, to keep it quick)
    res = run_ablation(rec, hd_config(modalities=[], split_block_length=2.0), tc, seeds=[0, 1], work_dir=tmp_path / "abl")
    assert res["seeds"] == [0, 1] and res["same_split"] and [r["variant"] for r in res["rows"]] == ["state-only", "+past"]
    for j, row in enumerate(res["rows"]):
        runs = [res["per_seed"][s][j] for s in (0, 1)]
        past = [res["per_seed"][s][1] for s in (0, 1)]
        assert row["id_nll"] == pytest.approx((runs[0]["id_nll"] + runs[1]["id_nll"]) / 2)
        assert row["id_nll_sd"] == pytest.approx(abs(runs[0]["id_nll"] - runs[1]["id_nll"]) / math.sqrt(2))
        assert row["id_nll_vs_past"] == pytest.approx(np.mean([a["id_nll"] - b["id_nll"] for a, b in zip(runs, past)]))
    assert res["rows"][0]["n_initial_tensors_given"] is None  # the first variant starts fresh
    assert res["per_seed"][1][1]["n_initial_tensors_given"] == len(began["past"])
    text = ablation_markdown(res)
    assert "Mean ± sd over seeds 0, 1" in text and "unit-id NLL − +past (paired)" in text
    # the spike-timing F1 within 10 ms and its window-shuffle chance, from each variant's metrics.json (only the
    # unit-id F1 was copied into the table)
    assert "| test unit-id F1 | test timing F1 (10 ms) | its shuffle chance | best step |" in text
    for j, row in enumerate(res["rows"]):
        saved = [json.loads((variant_folder(tmp_path / "abl", [0, 1], s, j, row["variant"]) / "metrics.json")
                            .read_text()) for s in (0, 1)]
        for s, m in zip((0, 1), saved):
            for key in ("timing_f1_10ms", "timing_f1_10ms_chance_shuffle"):
                assert res["per_seed"][s][j][key] == m[f"test/{key}"] is not None, (s, j, key)
        for key in ("timing_f1_10ms", "timing_f1_10ms_chance_shuffle"):
            assert row[key] == pytest.approx(np.mean([m[f"test/{key}"] for m in saved]))
        assert row["timing_f1_10ms_sd"] == pytest.approx(abs(saved[0]["test/timing_f1_10ms"]
                                                             - saved[1]["test/timing_f1_10ms"]) / math.sqrt(2))
        line = next(t for t in text.splitlines() if t.startswith(f"| {row['variant']} |"))
        assert f"{row['timing_f1_10ms']:.4f} ± {row['timing_f1_10ms_sd']:.4f}" in line
        assert f"| {row['timing_f1_10ms_chance_shuffle']:.4f} |" in line
    assert f"{res['rows'][0]['id_nll_vs_past']:+.4f} ± " in text and "seeds;" not in text
    # one seed's +past diverged (its figures NaN, as a diverged run's): its row's mean was NaN ('nan ± nan') and hid
    # seed 0's figures; now mean (and sd) over the seeds scored, with their count, the others named
    from hf_neuroformer.ablation import _over_seeds

    per_seed = {s: [dict(r) for r in rows] for s, rows in res["per_seed"].items()}
    for key in ("id_nll", "dt_nll", "id_f1", "timing_f1_10ms", "timing_f1_10ms_chance_shuffle"):
        per_seed[1][1][key] = math.nan
    half = {**res, "per_seed": per_seed, "rows": _over_seeds(per_seed),
            "not_scored": [{"variant": "+past", "seed": 1, "reason": "the model's test losses are NaN"}]}
    past = half["rows"][1]
    assert past["id_nll"] == res["per_seed"][0][1]["id_nll"] and past["id_nll_sd"] is None
    figures = ("id_nll", "dt_nll", "id_f1", "timing_f1_10ms")
    assert past["unscored_seeds"] == {k: [1] for k in figures + tuple(f"{f}_vs_past" for f in figures)
                                      + ("timing_f1_10ms_chance_shuffle",)}
    assert half["rows"][0]["id_nll_vs_past"] == pytest.approx(res["per_seed"][0][0]["id_nll"]
                                                              - res["per_seed"][0][1]["id_nll"])
    assert half["rows"][0]["id_nll"] == res["rows"][0]["id_nll"] and half["rows"][0]["unscored_seeds"] == {
        f"{f}_vs_past": [1] for f in figures}
    text = ablation_markdown(half)
    line = next(t for t in text.splitlines() if t.startswith("| +past |"))
    assert f"| {past['id_nll']:.4f} (1 of 2 seeds; seed 1 not scored: see below) | — | {past['dt_nll']:.4f} (1 of 2 " \
           "seeds; seed 1 not scored: see below) | " in line and "nan" not in line, line
    assert f"{half['rows'][0]['id_nll_vs_past']:+.4f} (1 of 2 seeds; seed 1 not scored: see below) |" in text, text
    assert "Bold: " not in ablation_markdown(res)  # every cell over both seeds: no rule to say
    # +past's mean over 1 seed the lowest (as if seed 0's +past had done better): it was bolded against state-only's
    # mean over both seeds; only the means over every seed are compared now, and the rule is said under the table
    per_seed[0][1]["id_nll"] = res["rows"][0]["id_nll"] - 1.0
    half["rows"] = _over_seeds(per_seed)
    text = ablation_markdown(half)
    lines = {ln.split(" | ")[0]: ln for ln in text.splitlines() if ln.startswith(("| +past", "| state-only"))}
    assert f"| {per_seed[0][1]['id_nll']:.4f} (1 of 2 seeds; seed 1 not scored: see below) |" in lines["| +past"], text
    assert f"| **{res['rows'][0]['id_nll']:.4f} ± {res['rows'][0]['id_nll_sd']:.4f}** |" in lines["| state-only"], text
    assert "\nBold: the best mean of its column among the cells scored in all 2 seeds; a mean over fewer seeds (its " \
           "count in the cell) is not compared.\n" in text, text
    per_seed[1][1]["id_f1"] = None  # a figure missing for another reason than a run not scored is said so
    half.update(rows=_over_seeds(per_seed), not_scored=[])
    assert "(1 of 2 seeds; seed 1 gave no figure)" in ablation_markdown(half)
    with pytest.raises(ValueError, match="seeds: expected distinct integers"):
        run_ablation(rec, hd_config(), tc, seeds=[0, 0])
    out = tmp_path / "t.md"
    for bad, said in ((["--seed", "1", "--seeds", "0,1"], "give one of them"), (["--seeds", "0,x"], "comma-separated")):
        assert main(["ablate", "--config", "missing.yaml", "--output", str(out)] + bad) == 2
        assert said in capsys.readouterr().err


def test_window_values_refuses_a_window_without_length_and_starts_that_are_not_seconds(a2929):
    """Break test: window 0 (or -0.1) gave every window NaN, which reads as "no behaviour sampled there",
    and NaN or 2-D starts went on into the search, without naming the argument."""
    from hf_neuroformer.contrastive import window_values

    starts = np.arange(710.0, 711.0, 0.1)
    assert np.isfinite(window_values(a2929, "x", starts, 0.1)[0]).all()
    for bad in (0, -0.1, float("nan"), None, "0.1"):
        with pytest.raises(ValueError, match=r"^window: expected a positive finite number of seconds"):
            window_values(a2929, "x", starts, bad)
    for bad, said in ((np.array([710.0, np.nan]), r"shape \(2,\) with 1 non-finite"), (starts[:, None], r"shape \(10, 1\)"),
                      (["a", "b"], "expected window starts in seconds, got dtype")):
        with pytest.raises(ValueError, match=r"^starts: .*" + said):
            window_values(a2929, "x", bad, 0.1)


def test_color_by_a_column_of_a_2d_series_by_its_label(a2929):
    """Break test: --color-by position on an (n, 2) series (an NWB SpatialSeries of position)
    coloured by column 0 under the label 'position', saying nothing, and --color-by 'position[1]'
    (the label neuroformer finetune gives that column) was refused as not a behaviour variable.
    Now 'position[k]' colours by column k, and a bare 2-D name is refused naming how to pick one."""
    import copy

    from hf_neuroformer.contrastive import window_values
    from hf_neuroformer.recording import BehaviourSeries

    x, y = a2929.behaviour["x"], a2929.behaviour["y"]
    rec = copy.copy(a2929)
    rec.behaviour = {**a2929.behaviour, "position": BehaviourSeries(x.timestamps, np.stack([x.values, y.values], 1), "m"),
                     "one": BehaviourSeries(x.timestamps, y.values[:, None], "m")}
    starts = np.arange(710.0, 720.0, 0.1)
    for k, name in enumerate(("x", "y")):
        got, circular, unit = window_values(rec, f"position[{k}]", starts, 0.1)
        np.testing.assert_array_equal(got, window_values(rec, name, starts, 0.1)[0])
        assert (circular, unit) == (False, "m") and np.isfinite(got).any()
    np.testing.assert_array_equal(window_values(rec, "one", starts, 0.1)[0], window_values(rec, "y", starts, 0.1)[0])
    with pytest.raises(ValueError, match=r"--color-by: 'position' has 2 columns; pick one as 'position\[k\]', k in "
                                         r"\[0, 2\)"):
        window_values(rec, "position", starts, 0.1)
    for bad, said in (("position[2]", r"--color-by: 'position\[2\]': column 2 outside \[0, 2\)"),
                      ("x[1]", r"--color-by: 'x\[1\]': column 1 given for a 1-D series"),
                      ("nothing[0]", r"--color-by: 'nothing\[0\]' is not a behaviour variable")):
        with pytest.raises(ValueError, match=said):
            window_values(rec, bad, starts, 0.1)


def test_color_by_degrees_labelled_radians_is_warned_of(a2929):
    """Break test: a head angle in degrees (0..359) whose unit says 'rad' was averaged as radians
    without a word (sin/cos of 359 'rad'), colours unrelated to the angle. Now the value beyond
    2 pi is warned of, naming the series and its unit; the radian series itself stays silent."""
    import copy
    import warnings

    from hf_neuroformer.contrastive import window_values
    from hf_neuroformer.recording import BehaviourSeries

    ry = a2929.behaviour["ry"]
    rec = copy.copy(a2929)
    rec.behaviour = {**a2929.behaviour, "ry_deg": BehaviourSeries(ry.timestamps, np.degrees(ry.values), "rad")}
    starts = np.arange(700.0, 760.0, 0.5)
    with pytest.warns(UserWarning, match=r"--color-by: behaviour\['ry_deg'\] \(unit 'rad'\) is read as angles in "
                                         r"radians, but holds values up to 3[0-9.]+, beyond two turns \(4 pi\): "
                                         r"degrees\?"):
        window_values(rec, "ry_deg", starts, 0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        window_values(rec, "ry", starts, 0.05)


def test_color_by_unwrapped_radians_beyond_two_turns_is_not_warned_of(a2929):
    """Break test: the degrees warning judged the size of the values alone, so a head direction in
    radians unwrapped over a session (cumulative, here counted from three turns before this piece
    of it, beyond 4 pi) was called 'degrees?', though every angle taken from it is right. Now a
    series whose steps stay within pi (an unwrapped trace) is silent, and gives the same circular
    means as the wrapped series; the same trace in degrees (steps beyond pi) is still warned of."""
    import copy
    import warnings

    from hf_neuroformer.contrastive import window_values
    from hf_neuroformer.recording import BehaviourSeries

    ry = a2929.behaviour["ry"]
    unwrapped = np.unwrap(ry.values) + 6 * np.pi
    assert np.abs(unwrapped).max() > 4 * np.pi  # beyond two turns: the old check warned
    rec = copy.copy(a2929)
    rec.behaviour = {**a2929.behaviour, "ry_unwrapped": BehaviourSeries(ry.timestamps, unwrapped, "rad"),
                     "ry_deg": BehaviourSeries(ry.timestamps, np.degrees(unwrapped), "rad")}
    starts = np.arange(700.0, 760.0, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = window_values(rec, "ry_unwrapped", starts, 0.05)[0]
    want = window_values(rec, "ry", starts, 0.05)[0]
    assert np.isfinite(want).sum() > 100
    np.testing.assert_allclose(np.cos(got - want)[np.isfinite(want)], 1.0, atol=1e-9)
    with pytest.warns(UserWarning, match=r"--color-by: behaviour\['ry_deg'\] \(unit 'rad'\) is read as angles in "
                                         r"radians, but holds values up to [0-9.]+, beyond two turns \(4 pi\): "
                                         r"degrees\?.*its steps between samples reach [0-9.]+, beyond pi"):
        window_values(rec, "ry_deg", starts, 0.05)


def test_color_by_a_series_in_degrees_takes_the_circular_mean(a2929, trained, tmp_path):
    """Break test: a head angle in degrees (unit 'degrees') was averaged linearly, so a window of
    359 and 1 deg was coloured 180 deg, and the figure used a linear colour bar. Now a series in
    degrees gets the circular mean in [0, 360), the same angle as the radian series' mean, on a
    cyclic colour bar over [0, 360)."""
    import copy

    from hf_neuroformer.contrastive import window_values
    from hf_neuroformer.io import write_nwb
    from hf_neuroformer.plotting import plot_latents_3d
    from hf_neuroformer.recording import BehaviourSeries

    ry = a2929.behaviour["ry"]
    rec = copy.copy(a2929)
    rec.behaviour = {**a2929.behaviour, "ry_deg": BehaviourSeries(ry.timestamps, np.degrees(ry.values), "degrees")}
    starts = np.arange(700.0, 760.0, 0.05)
    rad, circ_rad, _ = window_values(rec, "ry", starts, 0.05)
    deg, circ_deg, unit = window_values(rec, "ry_deg", starts, 0.05)
    assert circ_rad and circ_deg and unit == "degrees"
    ok = np.isfinite(rad)
    assert ok.sum() > 1000 and np.array_equal(ok, np.isfinite(deg))
    assert ((deg[ok] >= 0) & (deg[ok] < 360)).all()
    diff = np.angle(np.exp(1j * (np.radians(deg[ok]) - rad[ok])))
    assert np.abs(diff).max() < 1e-9
    # windows whose samples straddle 0 deg: the linear mean put them near 180 deg
    lo = np.searchsorted(ry.timestamps, starts[ok])
    hi = np.searchsorted(ry.timestamps, starts[ok] + 0.05)
    straddle = np.array([np.ptp(ry.values[a:b]) > np.pi for a, b in zip(lo, hi)])
    assert straddle.sum() > 0
    assert (np.minimum(deg[ok][straddle], 360 - deg[ok][straddle]) < 20).all()
    fig = plot_latents_3d(np.random.default_rng(0).normal(size=(ok.sum(), 3)), deg[ok], label="ry_deg (degrees)",
                          circular=True, period=360.0)
    assert fig.axes[0].collections[-1].get_clim() == (0.0, 360.0)
    # the command: colours in [0, 360), circular, on the 0..360 cyclic colour bar
    data = tmp_path / "a2929_deg.nwb"
    write_nwb(rec, data)
    png = tmp_path / "deg.png"
    assert main(["embed", "--model", str(trained[0]), "--data", str(data), "--color-by", "ry_deg",
                 "--output", str(png)]) == 0
    meta = json.loads(png.with_suffix(".json").read_text())
    vals = np.array([np.nan if v is None else v for v in meta["color_values"]])
    starts = np.array(meta["window_start_s"])
    ref = window_values(rec, "ry", starts, 0.05)[0]
    both = np.isfinite(vals) & np.isfinite(ref)
    assert both.sum() > 50 and meta["unit"] == "degrees"
    assert np.abs(np.angle(np.exp(1j * (np.radians(vals[both]) - ref[both])))).max() < 1e-6


def test_ablation_refuses_a_modality_without_values_before_training_any_variant(a2929, tmp_path, capsys):
    """Break test: a behaviour modality with no value in the training split (ry over a sleep epoch,
    where head direction is not tracked) was refused only when +behaviour began, after state-only
    and +past had trained (600 steps each with the shipped config). It is now refused before any
    variant trains, naming the modality."""
    import copy

    from hf_neuroformer.ablation import run_ablation
    from hf_neuroformer.recording import BehaviourSeries

    ry = a2929.behaviour["ry"]
    rec = copy.copy(a2929)
    rec.behaviour = {**a2929.behaviour, "ry": BehaviourSeries(ry.timestamps, np.full_like(ry.values, np.nan), ry.unit)}
    tc = TrainingConfig(max_steps=1, batch_size=16, generation_batch_size=512)
    capsys.readouterr()
    with pytest.raises(ValueError, match=r"modalities\[0\] \('head_direction'\): no finite value of 'behaviour:ry' "
                                         r"inside the training split"):
        run_ablation(rec, hd_config(), tc, work_dir=tmp_path / "work")
    assert "training state-only" not in capsys.readouterr().out
    assert not (tmp_path / "work").exists() or not list((tmp_path / "work").iterdir())



def test_ablation_refuses_variants_whose_windows_differ_before_training_any_variant(a2929, tmp_path, capsys):
    """Break test: a modality window reaching past the current window (allow_future, here 0.5 s
    after a 50 ms window) makes time-block windows end earlier in each block, so +behaviour and
    +contrastive had 187 test windows and state-only / +past 196 (and other training windows): the
    rows compared NLLs over different windows while the table said "Same split for every variant:
    yes" (splits.json, the block plan, is the same). It is refused before any variant trains."""
    from hf_neuroformer.ablation import run_ablation

    cfg = hd_config(modalities=[dict(HD, window=[-0.05, 0.5], allow_future=True)])
    tc = TrainingConfig(max_steps=1, batch_size=16, generation_batch_size=512)
    capsys.readouterr()
    with pytest.raises(ValueError, match=r"modalities\[0\] \('head_direction'\)\.window ends 0\.5 s after the window "
                                         r"start, past the current window \(0\.05 s.*test: 187 windows with it, 196 "
                                         r"without"):
        run_ablation(a2929, cfg, tc, work_dir=tmp_path / "work")
    assert "training state-only" not in capsys.readouterr().out
    assert not (tmp_path / "work").exists() or not list((tmp_path / "work").iterdir())


def test_color_by_a_trial_column_colours_a_window_in_a_trial_that_holds_a_shorter_one():
    """Break test: with a trial nested in another ([0, 10) s and [2, 3) s, trials may overlap), a
    window at 5 s, inside the first trial only, got no colour (NaN, grey): trial_at looked only at
    the latest trial starting before the window, which had ended, and gave -1 ("no trial")."""
    from hf_neuroformer.contrastive import window_values
    from hf_neuroformer.io.arrays import from_arrays
    from hf_neuroformer.windows import trial_at

    rec = from_arrays(np.array([0.5, 1.5, 4.5, 6.0, 8.0]), np.array([0, 1, 0, 1, 0]), time_domain=(0.0, 10.0),
                      trials=np.array([[0.0, 10.0], [2.0, 3.0]]), trial_info={"orientation": np.array([0.0, 90.0])})
    starts = np.array([1.0, 2.5, 5.0, 9.95, 10.0])
    np.testing.assert_array_equal(trial_at(rec.trials, starts), [0, 1, 0, 0, -1])  # the latest start wins at 2.5 s
    values, circular, _ = window_values(rec, "trial:orientation", starts[:4], 0.05)
    np.testing.assert_array_equal(values, [0.0, 90.0, 0.0, 0.0])

def test_color_by_a_text_trial_column_names_the_column(a2929):
    """Break test: --color-by trial:boundary_type (Zheng 2022: 'none' / 'soft' / 'hard') failed with
    numpy's "could not convert string to float: 'hard'", naming neither the flag nor the column."""
    import copy

    from hf_neuroformer.contrastive import window_values

    rec = copy.copy(a2929)
    rec.trials = np.array([[700.0, 710.0], [720.0, 730.0], [740.0, 750.0]])
    rec.trial_info = {"boundary_type": np.array(["hard", "none", "soft"]), "rt": np.array([0.5, 0.7, 0.9])}
    starts = np.arange(700.0, 760.0, 1.0)
    with pytest.raises(ValueError, match=r"^--color-by: trial column 'boundary_type': expected numbers \(a colour "
                                         r"needs numbers\), got dtype <U4 \(e\.g\. \['hard', 'none', 'soft'\]\); "
                                         r"pass a numeric trial column \(trial columns: \['boundary_type', 'rt'\]\) "
                                         r"or a behaviour variable"):
        window_values(rec, "trial:boundary_type", starts, 0.05)
    vals, circular, unit = window_values(rec, "trial:rt", starts, 0.05)
    assert not circular and np.isnan(vals).sum() == 30 and set(vals[np.isfinite(vals)]) == {0.5, 0.7, 0.9}


def test_embed_refuses_a_diverged_model(a2929, tmp_path, capsys):
    """Break test: embed on a diverged run's model (saved with NaN weights) failed inside
    scikit-learn's PCA ("Input X contains NaN"), after the latents pass; it is now refused first,
    naming --model and the fix."""
    from hf_neuroformer.io import write_nwb

    out = tmp_path / "model"
    with pytest.warns(UserWarning):
        train(a2929, out, hd_config(modalities=[]), TrainingConfig(max_steps=2, batch_size=16, learning_rate=1e6,
                                                                   generation_batch_size=512), progress=False)
    data = tmp_path / "a2929.nwb"
    write_nwb(a2929, data)
    png = tmp_path / "e.png"
    capsys.readouterr()
    assert main(["embed", "--model", str(out), "--data", str(data), "--color-by", "ry", "--output", str(png)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"neuroformer embed: error: --model: {str(out)!r}: "), err
    assert "weight tensors hold NaN or infinite values" in err, err
    assert err.endswith("retrain it with a lower training.learning_rate (a --config file's training: section)"), err
    assert not png.exists() and not png.with_suffix(".npy").exists()


def test_embed_on_a_recording_without_the_models_modality_names_data(trained, a2929, tmp_path, capsys):
    """Break test: embed with a head-direction model on the same spikes without 'ry' (or a video
    model on the Allen data before render-gratings) failed with "NeuroformerConfig.modalities[0]
    ('head_direction').source: 'behaviour:ry' is not in the recording", naming neither --data nor
    what to pass."""
    import copy

    from hf_neuroformer.io import write_nwb

    rec = copy.copy(a2929)
    rec.behaviour = {k: v for k, v in a2929.behaviour.items() if k != "ry"}
    data = tmp_path / "no_ry.nwb"
    write_nwb(rec, data)
    png = tmp_path / "e.png"
    capsys.readouterr()
    assert main(["embed", "--model", str(trained[0]), "--data", str(data), "--color-by", "x", "--output", str(png)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("neuroformer embed: error: --data: the model's modality 'head_direction' reads "
                          "'behaviour:ry', which this recording does not hold"), err
    assert err.endswith("pass the recording (and --epoch) the model was trained on"), err
    assert not png.exists()


def test_color_by_on_a_recording_with_nothing_to_colour_by_says_so():
    # embed on the README's built-in recording (no --data) listed "behaviour: []; trial columns as
    # trial:<column>" for any --color-by, as if another name could work: none can
    from hf_neuroformer.contrastive import window_values
    from hf_neuroformer.simulation import default_recording

    rec = default_recording()
    assert not rec.behaviour and rec.trials is None
    for variable in ("speed", "trial:orientation", "x[0]"):
        with pytest.raises(ValueError, match=r"--color-by: .*this recording has no behaviour series and no trials, so "
                                             r"no variable can colour its windows; .*--data"):
            window_values(rec, variable, [0.0, 1.0], 0.1)


def test_embed_shows_a_progress_bar_over_the_windows(trained, shared_data, tmp_path, capsys, monkeypatch):
    # the forward passes over every window of the split ran without a bar (7021 A2929 train windows,
    # 9433 Zheng ones: seconds here, minutes at the original's model size), unlike generate or connectivity
    model_dir, m = trained
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    args = ["embed", "--model", str(model_dir), "--data", str(shared_data(A2929)), "--epoch", "wake",
            "--color-by", "ry", "--batch-size", "16"]
    assert main(args + ["--output", str(tmp_path / "a.png")]) == 0
    err = capsys.readouterr().err
    n = m["n_test_windows"]
    assert "embedding test windows" in err and f"{n}/{n}" in err and "100%" in err, err
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert main(args + ["--output", str(tmp_path / "b.png")]) == 0
    assert "embedding" not in capsys.readouterr().err


def test_color_by_counts_a_sample_on_the_edge_of_two_tiled_windows_in_the_later_one_as_decoding_does(shared_data):
    """Break test: window_values ended each window at start + window in floating point (647.7 + 0.1 =
    647.8000000000001), past the tokenizer's 1 ns grid, so a head-tracking sample at exactly k * 0.1 s
    was averaged into two tiled windows, and embed coloured those windows with other values than the
    decoding targets of the same windows."""
    from hf_neuroformer.contrastive import window_values
    from hf_neuroformer.decoding import DecodingTarget, target_values
    from hf_neuroformer.io import load_recording

    rec = load_recording(shared_data(A2929), epoch="wake")
    ts = rec.behaviour["x"].timestamps
    starts = np.round(np.arange(671.0, 1199.0, 0.1), 9)
    on_edge = np.flatnonzero(np.searchsorted(ts, starts + 0.1) > np.searchsorted(ts, np.round(starts + 0.1, 9)))
    assert on_edge.size > 0
    for name, kind in (("x", "regression"), ("ry", "circular")):
        got = window_values(rec, name, starts, 0.1)[0]
        expected = target_values(rec, DecodingTarget(name, kind), starts, 0.1)
        if kind == "circular":
            expected = np.mod(expected, 2 * np.pi)
        np.testing.assert_allclose(got[on_edge], expected[on_edge], rtol=0, atol=1e-9)
        ok = np.isfinite(got)
        np.testing.assert_allclose(np.angle(np.exp(1j * (got[ok] - expected[ok]))) if kind == "circular"
                                   else got[ok] - expected[ok], 0.0, rtol=0, atol=1e-9)


def test_a_temperature_below_the_logit_scale_cap_is_refused_and_the_loss_uses_the_configured_one(batch):
    """contrastive_temperature 0.005 was accepted, but the head caps 1 / temperature at 100 (CLIP):
    the loss ran at 0.01 without a word, and a learnable temperature never moved (the cap passes
    no gradient). Now refused; an allowed temperature gives the hand-computed symmetric InfoNCE."""
    with pytest.raises(ValueError, match=r"contrastive_temperature: expected >= 0.01 .*capped at 100.*got 0.005"):
        hd_config(contrastive_loss_weight=0.5, contrastive_temperature=0.005)
    assert hd_config(contrastive_loss_weight=0.5, contrastive_temperature=0.01).contrastive_temperature == 0.01
    cfg, b = batch
    cfg = nf.NeuroformerConfig(**{**cfg.to_dict(), "contrastive_loss_weight": 1.0, "contrastive_temperature": 0.02})
    torch.manual_seed(0)
    model = nf.NeuroformerForPreTraining(cfg).eval()
    keys = ("input_ids", "dt_ids", "attention_mask", "past_input_ids", "past_dt_ids", "past_attention_mask")
    with torch.no_grad():
        loss = model(**b, output_contrastive_loss=True).contrastive_loss
        h = model.neuroformer.get_neural_embeddings(**{k: b[k] for k in keys})
        emb, valid = model.neuroformer.get_modality_embeddings(b["modality_inputs"], ["head_direction"])["head_direction"]
        a = torch.nn.functional.normalize(model.contrastive.neural_projections["head_direction"](h[valid]), dim=-1)
        m = torch.nn.functional.normalize(model.contrastive.modality_projections["head_direction"](emb[valid]), dim=-1)
    logits = (a @ m.T).double() / 0.02
    own = torch.diagonal(logits)
    hand = 0.5 * ((torch.logsumexp(logits, 1) - own).mean() + (torch.logsumexp(logits, 0) - own).mean())
    assert float(loss) == pytest.approx(float(hand), rel=1e-4)


def test_window_latents_of_an_empty_split_have_the_projected_width(a2929):
    """window_latents(projected=...) of a dataset without windows returned (0, hidden_size), not
    (0, contrastive_projection_size) as for any other dataset, and took an unknown modality name."""
    from hf_neuroformer.contrastive import window_latents

    cfg = hd_config(contrastive_loss_weight=0.5, contrastive_projection_size=8)
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(a2929)
    cfg.vocab_size = len(tok)
    ds, _ = build_window_datasets(a2929, tok, cfg)
    torch.manual_seed(0)
    model = nf.NeuroformerForPreTraining(cfg).eval()
    coll = NeuroformerCollator(modalities=cfg.modalities)
    assert window_latents(model, ds["test"].select(range(2)), coll, projected="head_direction").shape == (2, 8)
    assert window_latents(model, ds["test"].select([]), coll, projected="head_direction").shape == (0, 8)
    assert window_latents(model, ds["test"].select([]), coll).shape == (0, 32)
    with pytest.raises(ValueError, match=r"projected: 'speed' has no contrastive projection in this model "
                                         r"\(has \['head_direction'\]"):
        window_latents(model, ds["test"].select([]), coll, projected="speed")


def test_ablation_table_bolds_the_best_value_whatever_the_row_order_when_one_is_nan():
    """With a NaN unit-id NLL in the first row (a variant whose test split held no spike token), min()
    kept the NaN and no row was bold; with the same rows the other way round +past was bold."""
    from hf_neuroformer.ablation import ablation_markdown

    def row(variant, nll):
        return dict(variant=variant, modalities=[], id_nll=nll, dt_nll=1.0, id_f1=0.5, best_step=3, train_time_s=1.0,
                    n_test_spike_tokens=10, n_test_windows=4)

    nll = {"state-only": float("nan"), "+past": 2.0}
    for order in (["state-only", "+past"], ["+past", "state-only"]):
        text = ablation_markdown(dict(rows=[row(v, nll[v]) for v in order], seeds=[0], same_split=True, skipped=[],
                                      contrastive_loss_weight=0.1))
        lines = {ln.split(" | ")[0]: ln for ln in text.splitlines() if ln.startswith("| +past") or
                 ln.startswith("| state-only")}
        assert "| **2.0000** |" in lines["| +past"], text
        assert "**nan**" not in text and "| nan |" in lines["| state-only"], text


def test_unpaired_embeddings_are_refused_naming_a_and_b():
    """Break test: neural and modality embeddings of different row counts failed inside torch
    ("Target 4 is out of bounds", a device-side assert on a GPU; a broadcast error in
    retrieval_top1), and 1-D ones with "Dimension out of range", naming neither argument."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(6, 8, generator=g), torch.randn(4, 8, generator=g)
    for x, y, shapes in ((a, b, r"\(6, 8\) and \(4, 8\)"), (b, a, r"\(4, 8\) and \(6, 8\)"),
                         (a[:4], b[:, :5], r"\(4, 8\) and \(4, 5\)"), (a[0], b[0], r"\(8,\) and \(8,\)")):
        with pytest.raises(ValueError, match=r"^a, b: expected paired rows, .* got shapes " + shapes):
            info_nce(x, y, 10.0)
        with pytest.raises(ValueError, match=r"^a, b: expected paired rows, .* got shapes " + shapes):
            retrieval_top1(x, y)
    assert retrieval_top1(a, a) == (1.0, 1.0)  # paired rows still score


def test_a_batch_size_that_is_not_a_whole_number_is_refused_by_name(a2929):
    """Break test: window_latents(batch_size=0) failed inside range() ("arg 3 must not be zero"), and
    a fractional batch_size of it or of evaluate_retrieval with "'float' object cannot be
    interpreted as an integer", naming no argument."""
    from hf_neuroformer.contrastive import evaluate_retrieval, window_latents

    cfg, rows, model = _untrained_contrastive_model_and_test_rows(a2929, 4)
    coll = NeuroformerCollator(modalities=cfg.modalities)
    for bad in (0, 2.5, -1):
        with pytest.raises(ValueError, match=rf"^batch_size: expected an integer >= 1, got {bad}"):
            window_latents(model, rows, coll, batch_size=bad)
    for bad in (1, 2.5, True):
        with pytest.raises(ValueError, match=rf"^batch_size: expected an integer >= 2 candidates per group, got {bad}"):
            evaluate_retrieval(model, rows, coll, batch_size=bad)
    assert window_latents(model, rows, coll, batch_size=3).shape == (4, 32)  # a batch of 3, then 1
    assert evaluate_retrieval(model, rows, coll, batch_size=2)["head_direction"]["group_size"] == 2
    # the 4 windows form one group of 4, not of 32 (training's default over a short test split) or 10**9
    for big in (32, 10**9):
        r = evaluate_retrieval(model, rows, coll, batch_size=big)["head_direction"]
        assert r["group_size"] == 4 and r["n_windows"] + r["n_windows_without_tokens"] == 4, r


def test_a_learnable_temperature_at_the_allowed_minimum_gets_a_gradient(batch):
    """contrastive_temperature 0.01 is allowed (the logit scale 1 / temperature is capped at 100),
    but exp(log(100)) is 100.0000076 in float32: the cap, taken after exp, cut the gradient, and a
    learnable temperature that started at 0.01 never moved. The cap is now taken on the log scale."""
    cfg, b = batch
    cfg = nf.NeuroformerConfig(**{**cfg.to_dict(), "contrastive_loss_weight": 1.0, "contrastive_temperature": 0.01,
                                  "contrastive_learnable_temperature": True})
    torch.manual_seed(0)
    model = nf.NeuroformerForPreTraining(cfg).train()
    model(**b).contrastive_loss.backward()
    grad = model.contrastive.logit_scale.grad
    assert grad is not None and float(grad.abs()) > 0
    assert float(model.contrastive.logit_scale_value()) == pytest.approx(100.0, rel=1e-6)


def test_a_learned_logit_scale_above_the_cap_is_put_back_on_it_after_each_step(a2929, tmp_path):
    """Above the cap the loss passes the logit scale no gradient, so a learned scale an update had
    pushed past log(100) (or one that started there: older versions took temperatures below 0.01)
    stayed there for the rest of the run. train() now caps it after every optimizer step (CLIP)."""
    from hf_neuroformer.generation import load_pretrained

    cfg = hd_config(contrastive_loss_weight=0.5, contrastive_learnable_temperature=True, split_block_length=2.0)
    start = {"contrastive.logit_scale": torch.tensor(math.log(1000.0))}
    train(a2929.restrict(700.0, 712.0), tmp_path / "m", cfg,
          TrainingConfig(max_steps=1, batch_size=16, generate_test=False), progress=False, initial_state=start)
    model = load_pretrained(tmp_path / "m")[0]
    assert float(model.contrastive.logit_scale) <= math.log(100.0) + 1e-6


def test_ablation_table_bolds_every_row_that_shows_the_best_value():
    """Walk of `ablate` on the Allen gratings (2 steps): unit-id F1 0.094581 (state-only) and
    0.094600 (+contrastive) both print as 0.0946, but only +contrastive was bold, so the table
    showed one of two equal figures as the best."""
    from hf_neuroformer.ablation import ablation_markdown

    def row(variant, f1):
        return dict(variant=variant, modalities=[], id_nll=2.0, dt_nll=1.0, id_f1=f1, best_step=3, train_time_s=1.0,
                    n_test_spike_tokens=10, n_test_windows=4)

    rows = [row("state-only", 0.0945808), row("+past", 0.0945363), row("+contrastive", 0.0945999)]
    text = ablation_markdown(dict(rows=rows, seeds=[0], same_split=True, skipped=[], contrastive_loss_weight=0.5))
    lines = {ln.split(" | ")[0][2:]: ln for ln in text.splitlines() if ln.startswith("| ") and "---" not in ln}
    assert "| **0.0946** |" in lines["state-only"] and "| **0.0946** |" in lines["+contrastive"], text
    assert "| 0.0945 |" in lines["+past"], text


def _shipped_ablation(name):
    """``benchmarks/ablation_<name>.json``, a real run's figures (the table of BENCHMARKS.md)."""
    return json.loads((Path(__file__).resolve().parents[1] / "benchmarks" / f"ablation_{name}.json").read_text())


def _table_row(text, variant):
    return next(ln for ln in text.splitlines() if ln.startswith(f"| {variant} |"))


def test_an_ablation_json_written_before_the_count_of_seeds_scored_says_how_many_were():
    """Break test: a .json written before rows recorded ``unscored_seeds`` (as the shipped A2929
    run's, 3 seeds) with one seed not scored (its figures NaN, the row's mean over every seed NaN,
    written as null) showed 'n/a' with no count. Its rows are made again from its per-seed figures:
    the mean over the seeds scored with their count, and a line says the count is the table's."""
    from hf_neuroformer.ablation import ablation_markdown

    res = _shipped_ablation("a2929")
    for r in res["rows"]:
        r.pop("unscored_seeds", None)  # as written before the count (the shipped file is)
    seeds, j = res["seeds"], 2
    variant, unscored = res["rows"][j]["variant"], str(seeds[1])
    before = ablation_markdown(res)
    assert "Seeds scored" not in before and "seeds;" not in before, before
    for key in ("id_nll", "id_f1"):  # one seed's figures NaN (null), and so its row's over every seed
        res["per_seed"][unscored][j][key] = None
        res["rows"][j].update(dict.fromkeys((key, f"{key}_sd", f"{key}_vs_past", f"{key}_vs_past_sd")))
    text = ablation_markdown(res)
    cells = _table_row(text, variant).split(" | ")  # variant, inputs, unit-id NLL, paired, dt NLL, unit-id F1, ...
    note = f"(2 of 3 seeds; seed {unscored} gave no figure)"
    for col, key in ((2, "id_nll"), (5, "id_f1")):  # 'n/a' before
        kept = [res["per_seed"][str(s)][j][key] for s in seeds if str(s) != unscored]
        assert cells[col] == f"{np.mean(kept):.4f} ± {np.std(kept, ddof=1):.4f} {note}", text
    assert cells[3].endswith(note) and "n/a" not in cells[3], text  # the paired difference to +past, over seeds 0, 2
    assert _table_row(text, "state-only") == _table_row(before, "state-only")  # the other rows' figures as stored
    assert "\nSeeds scored: counted from the per-seed figures (per_seed), as this result predates their count " \
           "(unscored_seeds); its rows' means over every seed were n/a where a seed gave no figure.\n" in text, text
    del res["per_seed"]  # nothing to count from: said plainly
    text = ablation_markdown(res)
    assert "| n/a | " in _table_row(text, variant) and "seeds;" not in text, text
    assert "\nSeeds scored: not known (this result predates their count and holds no per-seed figures): a mean over " \
           "seeds is n/a where any seed gave no figure.\n" in text, text


@pytest.mark.parametrize("name", ["a2929", "allen"])
def test_the_shipped_ablation_tables_render_the_figures_of_benchmarks_md(name):
    """benchmarks/ablation_<name>.json (written before the timing F1 and the count of seeds scored
    were recorded) still renders, every column of its BENCHMARKS.md table with the same cells.
    Break test: its timing F1 columns showed 'n/a' with nothing saying the file predates them."""
    from hf_neuroformer.ablation import ablation_markdown

    def table(text):
        rows = [[c.strip() for c in ln.strip("|").split(" | ")] for ln in text.splitlines() if ln.startswith("| ")]
        return {col: [r[i] for r in rows[1:]] for i, col in enumerate(rows[0])}, text.split("\n\n")[-1]

    md = (Path(__file__).resolve().parents[1] / "BENCHMARKS.md").read_text()
    shipped = md.split(f"<!-- ablation-{name}:start -->")[1].split(f"<!-- ablation-{name}:end -->")[0]
    (want, notes), (got, got_notes) = table(shipped), table(ablation_markdown(_shipped_ablation(name)))
    assert len(want) >= 7 and all(got[col] == cells for col, cells in want.items()), (want, got)
    assert all(line in got_notes for line in notes.strip().splitlines()), (notes, got_notes)
    # the timing F1 columns (n/a: the file predates them) read as if not scored; said so under the table
    assert got["test timing F1 (10 ms)"] == got["its shuffle chance"] == ["n/a"] * len(got["variant"]), got
    assert "Not recorded in this result (written before they were): test timing F1 (10 ms), its shuffle chance " \
           "(n/a)." in got_notes.splitlines(), got_notes


def test_retrieval_counts_a_window_with_the_same_modality_inputs_as_a_hit(shared_data):
    """Allen gratings, orientation as a categorical modality: the windows of one orientation at the
    same offset in their trials have identical modality inputs, so one embedding (9 distinct in
    the first group of 32 test windows). Only the own pair counted as a hit and ties went to the
    lowest index, so even a perfect model scored about 9 / 32 against a reported chance of 1 / 32.
    Now a window with identical inputs is a hit too, and chance is the mean fraction of a group
    that counts as one, recomputed here from the dataset's columns."""
    import sys
    from pathlib import Path

    from hf_neuroformer.contrastive import evaluate_retrieval
    from hf_neuroformer.io import read_allen_gratings
    from hf_neuroformer.modalities import fit_modalities
    from hf_neuroformer.windows import plan_splits

    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_configs import small_config, untrained_model

    rec = read_allen_gratings(shared_data("allen_vcn_gratings")).select_units(range(100))
    cfg = small_config(split_by="trials", split_stratify_by="orientation_deg", contrastive_loss_weight=0.5,
                       modalities=[{"name": "orientation", "source": "trial:orientation_deg", "kind": "categorical",
                                    "window": [-0.02, 0.01]}])
    plan = plan_splits(rec, cfg)
    fit_modalities(rec, cfg, plan)
    tok, model = untrained_model(rec, cfg)
    test = build_window_datasets(rec, tok, cfg, plan)[0]["test"]
    collate = NeuroformerCollator(modalities=cfg.modalities)
    r = evaluate_retrieval(model, test, collate, batch_size=32)["orientation"]
    # class ids and times (on the 1 ns grid) of each window's orientation tokens
    keys = [(tuple(i), tuple(np.round(np.asarray(t, dtype=np.float64) / 1e-9).astype(int)))
            for i, t in zip(test["mod_orientation_ids"], test["mod_orientation_times"])]
    order = np.random.default_rng(0).permutation(len(test))
    fractions = []
    for g in range(0, len(order), 32):
        group = [keys[j] for j in order[g:g + 32]]
        fractions += [group.count(k) / len(group) for k in group]
    assert r["n_windows"] == len(test) and r["chance"] == pytest.approx(np.mean(fractions))
    assert r["chance"] > 2 / 32
    # one window four times: every query retrieves a copy of its own pair, so every query hits
    four = evaluate_retrieval(model, test.select([0, 0, 0, 0]), collate, batch_size=4)["orientation"]
    assert (four["neural_to_modality_top1"], four["modality_to_neural_top1"], four["chance"]) == (1.0, 1.0, 1.0)


def test_a_micro_batch_without_a_contrastive_term_does_not_halve_the_others(a2929, tmp_path):
    """77 training windows, 2 accumulated micro-batches of 76: the one step holds 76 windows and 1.
    InfoNCE cannot contrast one window, so that micro-batch adds no contrastive term, but it was
    counted in the mean over the step's micro-batches, and the step's contrastive term was half the
    InfoNCE of the 76 windows. The step loss must be the token mean plus the weighted InfoNCE of
    the 76 (one of the 77 leave-one-out subsets), recomputed here from the model's embeddings."""
    from hf_neuroformer.generation import load_pretrained

    cfg = hd_config(contrastive_loss_weight=0.5, split_block_length=2.0, window_stride=0.1)
    rec = a2929.restrict(700.0, 712.0)
    began, losses = {}, []
    train(rec, tmp_path / "m", cfg, TrainingConfig(max_steps=1, batch_size=152, gradient_accumulation_steps=2,
                                                   eval_every=100, generate_test=False), progress=False,
          on_train_start=lambda model: began.update({k: v.detach().clone() for k, v in model.state_dict().items()}),
          on_step_end=lambda step, loss: losses.append(loss))
    model, tok, plan = load_pretrained(tmp_path / "m")
    model.load_state_dict(began)
    ds = build_window_datasets(rec, tok, model.config, plan)[0]["train"]
    assert len(ds) == 77
    b = NeuroformerCollator(modalities=model.config.modalities)([ds[i] for i in range(77)])
    with torch.no_grad():
        out = model.train()(**b)  # no dropout in hd_config: the token losses of the whole step
        keys = ("input_ids", "dt_ids", "attention_mask", "past_input_ids", "past_dt_ids", "past_attention_mask")
        a = model.contrastive.neural_projections["head_direction"](model.get_neural_embeddings(**{k: b[k] for k in keys}))
        emb, valid = model.neuroformer.get_modality_embeddings(b["modality_inputs"])["head_direction"]
        m = model.contrastive.modality_projections["head_direction"](emb)
        scale = 1 / cfg.contrastive_temperature
        left_out = [float(info_nce(a[torch.arange(77) != j], m[torch.arange(77) != j], scale)) for j in range(77)]
    assert bool(valid.all())
    contrastive = (losses[0] - float(out.id_loss) - cfg.dt_loss_weight * float(out.dt_loss)) / 0.5
    assert min(abs(contrastive - c) for c in left_out) < 1e-3, (contrastive, min(left_out), max(left_out))


def test_a_temperature_above_100_is_refused_when_built_loaded_or_saved(batch, tmp_path):
    """contrastive_temperature 1e300 was accepted: exp(log(1 / temperature)) is 0 in float32, the
    loss a constant log(n) with no gradient, learnable temperature included (the contrastive loss
    off without a word). Temperatures above 100 are now refused by the constructor, so also when a
    saved config.json holds one, and by validate() when one is set after construction (save)."""
    from transformers import AutoConfig

    msg = r"^NeuroformerConfig.contrastive_temperature: expected <= 100 .*got "
    for bad in (1e300, 1e46, 100.5):
        with pytest.raises(ValueError, match=msg + re.escape(repr(bad))):
            hd_config(contrastive_loss_weight=0.5, contrastive_temperature=bad)
    cfg, b = batch
    saved = {**cfg.to_dict(), "contrastive_loss_weight": 0.5, "contrastive_temperature": 1e300}
    (tmp_path / "hub").mkdir()
    (tmp_path / "hub" / "config.json").write_text(json.dumps(saved))
    for load in (nf.NeuroformerConfig.from_pretrained, AutoConfig.from_pretrained):
        with pytest.raises(ValueError, match=msg + r"1e\+300"):
            load(tmp_path / "hub")
    late = nf.NeuroformerConfig(**{**saved, "contrastive_temperature": 0.1})
    late.contrastive_temperature = 1e300
    with pytest.raises(ValueError, match=msg + r"1e\+300"):
        late.save_pretrained(tmp_path / "late")
    assert not (tmp_path / "late" / "config.json").exists()
    # at the bound the loss still gives the projections and the learnable scale a gradient (1e300 gave them 0)
    cfg = nf.NeuroformerConfig(**{**saved, "contrastive_temperature": 100, "contrastive_learnable_temperature": True})
    assert cfg.contrastive_temperature == 100.0
    torch.manual_seed(0)
    model = nf.NeuroformerForPreTraining(cfg).train()
    loss = model(**b).contrastive_loss
    loss.backward()
    assert float(model.contrastive.logit_scale.grad.abs()) > 0
    assert float(model.contrastive.neural_projections["head_direction"].weight.grad.abs().max()) > 0


@pytest.mark.parametrize("weight", [True, "yes", -1.0, float("nan")])
def test_a_contrastive_weight_set_after_construction_is_checked_before_saving(weight, tmp_path):
    """config.contrastive_loss_weight = True (trap 9's truthy object) set after construction was
    written to config.json unchecked by save_pretrained (validate() did not look at it), and the
    saved folder was then refused by from_pretrained. validate() now refuses it, writing nothing."""
    cfg = hd_config()
    cfg.contrastive_loss_weight = weight
    with pytest.raises(ValueError, match=r"^NeuroformerConfig.contrastive_loss_weight: expected a finite number >= 0"):
        cfg.save_pretrained(tmp_path)
    assert not (tmp_path / "config.json").exists()
    cfg.contrastive_loss_weight = 0.5
    cfg.save_pretrained(tmp_path)
    assert nf.NeuroformerConfig.from_pretrained(tmp_path).contrastive_loss_weight == 0.5


@pytest.mark.parametrize("field, value, message", [
    ("contrastive_modalities", ["nope"], r"contrastive_modalities: \['nope'\] are not modalities of this config"),
    ("contrastive_modalities", ["head_direction"] * 2, r"contrastive_modalities: names must be unique"),
    ("modalities", [dict(HD), dict(HD)], r"modalities: names must be unique, repeated: \['head_direction'\]"),
    ("modalities", [{"name": "hd"}], r"modalities\[0\]: missing required key 'source'"),
    ("modalities", [], r"contrastive_loss_weight: 0.5 > 0 needs at least one entry in modalities"),
    ("current_window", 0.04, r"modalities\[0\] \('head_direction'\)\.window: ends at 0.05 s, after the current"),
    ("past_window", 0.02, r"modalities\[0\] \('head_direction'\)\.window: starts at -0.05 s, before the past"),
    ("hidden_act", "nope", r"hidden_act: expected an activation name of transformers' ACT2FN"),
    ("split_stratify_by", "", r"split_stratify_by: expected None or a trial column name"),
])
def test_a_field_set_after_construction_is_refused_at_save_as_the_constructor_refuses_it(field, value, message,
                                                                                          tmp_path):
    """Fields set after construction (config.contrastive_modalities = ['nope'], config.modalities,
    a current / past window the modality windows no longer fit in, hidden_act, split_stratify_by)
    were written to config.json unchecked (validate() did not look at them), and the saved folder
    was then refused by from_pretrained. save_pretrained now refuses them with the constructor's
    message, before anything is written: a folder holding an earlier save is left as it was, a new
    one is not created."""
    cfg = hd_config(contrastive_loss_weight=0.5)
    with pytest.raises(ValueError, match="^NeuroformerConfig." + message):
        hd_config(contrastive_loss_weight=0.5, **{field: value})  # the constructor's message
    cfg.save_pretrained(tmp_path / "old")
    before = (tmp_path / "old" / "config.json").read_bytes()
    setattr(cfg, field, value)
    for folder in ("old", "new"):
        with pytest.raises(ValueError, match="^NeuroformerConfig." + message):
            cfg.save_pretrained(tmp_path / folder)
    assert (tmp_path / "old" / "config.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]


def test_a_valid_change_after_construction_still_saves_and_loads(tmp_path):
    cfg = hd_config(contrastive_loss_weight=0.5)
    cfg.modalities = cfg.modalities + [dict(HD, name="hd_later", window=[-0.02, 0.03])]
    cfg.contrastive_modalities = ["hd_later"]
    cfg.current_window, cfg.hidden_act = 0.06, "relu"
    cfg.save_pretrained(tmp_path)
    loaded = nf.NeuroformerConfig.from_pretrained(tmp_path)
    assert [m["name"] for m in loaded.modalities] == ["head_direction", "hd_later"]
    assert loaded.modality("hd_later")["window"] == [-0.02, 0.03]
    assert (loaded.contrastive_modalities, loaded.current_window, loaded.hidden_act) == (["hd_later"], 0.06, "relu")
    assert loaded.to_dict()["modalities"] == cfg.to_dict()["modalities"]


def test_a_learned_logit_scale_below_the_floor_is_used_and_put_back_at_it(batch):
    """The learned logit scale had a ceiling, log(100), but no floor: a learned temperature could
    drift above 100 (logit scale below log(1 / 100)), the temperatures the config refuses (the
    loss's gradient falls as 1 / temperature, and is 0 far enough out). The loss now takes the
    scale within the config's range 0.01..100 and cap_logit_scale_ (run by train after every
    step) puts a scale below the floor back at it; at the floor it still gets a gradient."""
    cfg, b = batch
    cfg = nf.NeuroformerConfig(**{**cfg.to_dict(), "contrastive_loss_weight": 1.0,
                                  "contrastive_learnable_temperature": True})
    torch.manual_seed(0)
    model = nf.NeuroformerForPreTraining(cfg).train()
    head = model.contrastive
    with torch.no_grad():
        head.logit_scale.fill_(math.log(1 / 1000.0))  # temperature 1000
    assert float(head.logit_scale_value()) == pytest.approx(0.01, rel=1e-6)
    head.cap_logit_scale_()
    assert float(head.logit_scale) == pytest.approx(math.log(0.01), abs=1e-6)
    model(**b).contrastive_loss.backward()
    assert float(head.logit_scale.grad.abs()) > 0


def test_contrastive_settings_that_do_not_fit_the_modalities_set_after_construction_are_refused_before_saving(
        tmp_path):
    """Break test: validate() checked a contrastive weight set after construction only as a number, so
    config.contrastive_loss_weight = 0.5 on a config without modalities, or contrastive_modalities naming
    no modality (or one twice), was written to config.json, which from_pretrained then refused ('0.5 > 0
    needs at least one entry in modalities'). Refused by save_pretrained now, as by the constructor."""
    no_modality = hd_config(modalities=[])
    no_modality.contrastive_loss_weight = 0.5
    unknown, twice = hd_config(contrastive_loss_weight=0.5), hd_config(contrastive_loss_weight=0.5)
    unknown.contrastive_modalities = ["speed"]
    twice.contrastive_modalities = ["head_direction", "head_direction"]
    for cfg, said in ((no_modality, r"contrastive_loss_weight: 0.5 > 0 needs at least one entry in modalities"),
                      (unknown, r"contrastive_modalities: \['speed'\] are not modalities of this config"),
                      (twice, r"contrastive_modalities: names must be unique, repeated: \['head_direction'\]")):
        with pytest.raises(ValueError, match=r"^NeuroformerConfig\." + said):
            cfg.save_pretrained(tmp_path)
        assert not (tmp_path / "config.json").exists()
    unknown.contrastive_modalities = ["head_direction"]
    unknown.save_pretrained(tmp_path)
    assert nf.NeuroformerConfig.from_pretrained(tmp_path).contrastive_modalities == ["head_direction"]
