"""Behaviour decoding (issue 4, acceptance 3 and 4) on real recordings.

A2929 (pynapple, head direction ``ry`` and position ``x``, wake epoch) and the Steinmetz subset
(wheel choice ``trial:motorLabel``): a tiny checkpoint pretrained for a few steps is fine-tuned
with the Hugging Face ``Trainer``; metric keys, loss scaling under gradient accumulation,
save/reload, and the handling of missing targets, NaN targets and unseen class labels.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import hf_neuroformer as nf
from hf_neuroformer.decoding import (
    DecodingCollator,
    DecodingTarget,
    DecodingTargetError,
    KINDS,
    balanced_class_weights,
    build_decoding_datasets,
    expand_columns,
    fraction_of_train,
    infer_kind,
    kind_problem,
    target_dicts,
    target_values,
)
from hf_neuroformer.finetuning import apply_config_overrides, build_trainer, selection_metric, target_notes
from hf_neuroformer.finetuning import finetune as finetune_drawing
from hf_neuroformer.metrics.decoding import decoding_metrics
from hf_neuroformer.recording import count_noun
from hf_neuroformer.training import TrainingConfig, train

TINY = dict(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=24, max_past_length=48,
            hidden_size=16, num_attention_heads=2, intermediate_size=32, split_block_length=15.0)
A2929 = "pynapple_A2929_headdirection/A2929-200711.nwb"
STEINMETZ = "steinmetz2019_spcount/NS_sp_count.mat"


def finetune(*args, write_figures=False, **kwargs):
    """The library's ``finetune`` without its figure unless a test asks for it (``write_figures=True``):
    drawing test_decoding.png was about a tenth of a short fine-tuning run's time, and most tests here
    read no figure; those that check it pass ``write_figures=True``."""
    return finetune_drawing(*args, write_figures=write_figures, **kwargs)

@pytest.fixture(scope="module")
def a2929(shared_data):
    """Wake epoch, 670-850 s (head tracking starts at 670.6 s)."""
    from hf_neuroformer.io import load_recording

    return load_recording(shared_data(A2929), epoch="wake").restrict(670.0, 850.0)


@pytest.fixture(scope="module")
def pretrained(a2929, tmp_path_factory):
    """A tiny NeuroformerForPreTraining trained for 3 steps on the same recording (`neuroformer train` output)."""
    d = tmp_path_factory.mktemp("pre") / "model"
    train(a2929, d, nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=3, batch_size=16, generate_test=False),
          progress=False)
    return d


@pytest.fixture(scope="module")
def steinmetz(shared_data):
    """The Steinmetz subset, first 20 units (enough spikes, short windows)."""
    from hf_neuroformer.io import load_recording

    return load_recording(shared_data(STEINMETZ)).select_units(range(20))


@pytest.fixture(scope="module")
def finetuned(a2929, pretrained, tmp_path_factory):
    out = tmp_path_factory.mktemp("ft") / "decoder"
    targets = [DecodingTarget("ry", "circular"), DecodingTarget("x", "regression")]
    metrics = finetune(pretrained, a2929, targets, output_dir=out, max_steps=4, eval_steps=2, batch_size=16, seed=0,
                       write_figures=True)
    return out, metrics


_X_WINDOWS = {}


def _x_windows(a2929, pretrained):
    """``(dsd, report)``: ``build_decoding_datasets(a2929, tok, cfg, None, [DecodingTarget("x",
    "regression")])`` with the tokenizer and config of ``pretrained``, built once per module (about
    0.5 CPU s each, read by a dozen tests; the datasets are not changed in place, the report is a
    fresh copy for each caller)."""
    key = (id(a2929), str(pretrained))
    if key not in _X_WINDOWS:
        tok = nf.NeuroformerTokenizer.from_pretrained(pretrained)
        cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
        _X_WINDOWS[key] = build_decoding_datasets(a2929, tok, cfg, None, [DecodingTarget("x", "regression")])
    dsd, report = _X_WINDOWS[key]
    return dsd, copy.deepcopy(report)


def test_a_model_saved_in_half_precision_is_fine_tuned_and_loaded_in_float32(a2929, pretrained, tmp_path):
    """Break test: transformers 5 loads a model saved in bf16 as bf16 (dtype "auto"), so finetune
    updated bf16 weights directly (no float32 master weights: mixed precision is
    training.mixed_precision's) and saved a bf16 decoder, and load_pretrained / load_decoder scored and
    generated in bf16, without a word. The package's loaders now give float32."""
    import shutil

    from hf_neuroformer.finetuning import load_decoder
    from hf_neuroformer.generation import load_pretrained

    half = tmp_path / "bf16"
    shutil.copytree(pretrained, half)
    nf.NeuroformerForPreTraining.from_pretrained(pretrained).to(torch.bfloat16).save_pretrained(half)
    assert json.loads((half / "config.json").read_text())["dtype"] == "bfloat16"
    model, _, _ = load_pretrained(half)
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    finetune(half, a2929, [DecodingTarget("x", "regression")], output_dir=tmp_path / "d", max_steps=1, batch_size=16,
             seed=0)
    assert json.loads((tmp_path / "d" / "config.json").read_text())["dtype"] == "float32"
    decoder, _, _ = load_decoder(tmp_path / "d")
    assert {p.dtype for p in decoder.parameters()} == {torch.float32}


def test_a_tokenizer_grown_after_the_model_was_made_is_refused_by_finetune_and_build_trainer(a2929, pretrained,
                                                                                          tmp_path):
    """Break test: the routes that fine-tune a known model did not hold the tokenizer to the model's
    ``config.vocab_size``. ``finetune`` of a checkpoint whose saved tokenizer had grown with ``add_units``
    (a new session) tokenized every window, loaded the model and failed only in the first training step,
    in the model's forward; ``build_trainer``'s collator padded such windows without the model's
    vocab_size. Now finetune refuses up front naming model_dir and both sizes (nothing written), and
    build_trainer's collator refuses the window naming the id and the model's vocab_size."""
    import shutil

    from hf_neuroformer.finetuning import build_trainer

    grown = tmp_path / "grown"
    shutil.copytree(pretrained, grown)
    tok = nf.NeuroformerTokenizer.from_pretrained(pretrained)
    v = nf.NeuroformerConfig.from_pretrained(pretrained).vocab_size
    other = dataclasses.replace(a2929, session="another-session")  # the same spikes as new units
    tok.add_units(other)
    n = len(tok)
    assert n > v
    tok.save_pretrained(grown)
    targets = [DecodingTarget("x", "regression")]
    with pytest.raises(ValueError, match=rf"^model_dir: '{re.escape(str(grown))}': its tokenizer does not match its "
                                         rf"config\.json: tokenizer: len\(tokenizer\) = {n} tokens, but "
                                         rf"model\.config\.vocab_size = {v}:.*resize_unit_embeddings"):
        finetune(grown, other, targets, output_dir=tmp_path / "d", max_steps=1, batch_size=8, seed=0)
    assert not (tmp_path / "d").exists()
    cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
    dsd, report = build_decoding_datasets(other, tok, cfg, None, targets)
    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(pretrained,
                                                              decoding_targets=target_dicts(targets, report))
    trainer = build_trainer(model, dsd["train"], dsd["validation"].select(range(8)), tmp_path / "ck", max_steps=1,
                            per_device_eval_batch_size=8)
    assert trainer.data_collator.model_vocab_size == v
    with pytest.raises(ValueError, match=rf"^examples\[\d\]: (past_)?input_ids holds token id \d+, but the model's "
                                         rf"config\.vocab_size = {v} \(ids 0 \.\. {v - 1}\): its unit was added "
                                         r"with tokenizer\.add_units after the model was made"):
        trainer.evaluate()


@pytest.mark.parametrize("concat", [True, False])
def test_the_validation_loss_is_that_of_all_windows_as_one_batch_whatever_the_batches(a2929, pretrained, tmp_path,
                                                                                      concat):
    """Break test: Trainer's validation loss was the mean of its batches' losses, each weighted by the
    batch size, so with the auxiliary next-spike loss (a per-token mean) or windows without a label
    it depended on how the windows fell into batches: 37 windows in batches of 8 gave another loss than
    the 37 as one batch. DecodingTrainer now sums each window's loss terms (``loss_terms``) over the
    batches: the loss of one batch, also with ``eval_do_concat_batches=False``; the predictions
    Trainer returns leave the terms out."""
    from hf_neuroformer.finetuning import build_trainer, gathered_outputs

    dsd, report = _x_windows(a2929, pretrained)
    ds = dsd["validation"].select(range(37))
    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(
        pretrained, decoding_targets=target_dicts([DecodingTarget("x", "regression")], report),
        decoding_generative_loss_weight=0.5)
    trainer = build_trainer(model, ds, ds, tmp_path, per_device_eval_batch_size=8, save_strategy="no",
                            eval_do_concat_batches=concat)
    metrics = trainer.evaluate()
    model.eval()
    with torch.no_grad():
        out = model(**trainer.data_collator([ds[i] for i in range(len(ds))]))
    assert metrics["eval_loss"] == pytest.approx(out.loss.item(), rel=1e-5)
    assert out.loss_terms.shape == (37, 6) and model.loss_from_terms(out.loss_terms) == pytest.approx(out.loss.item(),
                                                                                                       rel=1e-5)
    pred = trainer.predict(ds)
    entries = pred.predictions if concat else pred.predictions[0]
    assert len(entries) == 2  # predictions and logits, without loss_terms
    np.testing.assert_allclose(gathered_outputs(pred.predictions), out.predictions.numpy(), rtol=1e-5, atol=1e-6)
    assert pred.metrics["test_loss"] == pytest.approx(out.loss.item(), rel=1e-5)


@pytest.mark.parametrize("no_metrics", [False, True])
def test_the_loss_only_validation_loss_is_that_of_all_windows_as_one_batch(a2929, pretrained, tmp_path, no_metrics):
    """Break test: with ``prediction_loss_only=True`` (or ``evaluate()`` of a trainer without
    ``compute_metrics``, which asks ``Trainer`` for the loss only) ``Trainer`` kept no predictions,
    so DecodingTrainer had no ``loss_terms`` and reported the batch-weighted mean again: 23
    validation windows, some without a label, gave another loss in batches of 3 than of 7. Now
    both are the loss of the 23 as one batch, and no predictions are kept."""
    from hf_neuroformer.finetuning import build_trainer

    dsd, report = _x_windows(a2929, pretrained)
    ds = dsd["validation"].select(range(23))
    ds = ds.map(lambda ex, i: {"target_x": float("nan") if i % 4 == 1 else ex["target_x"]}, with_indices=True)
    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(
        pretrained, decoding_targets=target_dicts([DecodingTarget("x", "regression")], report),
        decoding_generative_loss_weight=0.5)
    losses = []
    for bs in (3, 7):
        trainer = build_trainer(model, ds, ds, tmp_path / str(bs), per_device_eval_batch_size=bs, save_strategy="no",
                                prediction_loss_only=not no_metrics)
        if no_metrics:
            trainer.compute_metrics = None
        losses.append(trainer.evaluate()["eval_loss"])
        out = trainer.evaluation_loop(trainer.get_eval_dataloader(), "Evaluation", prediction_loss_only=True)
        assert out.predictions is None and out.label_ids is None
    model.eval()
    with torch.no_grad():
        one = model(**trainer.data_collator([ds[i] for i in range(len(ds))])).loss.item()
    assert losses == pytest.approx([one, one], rel=1e-5)


def test_finetune_clears_its_checkpoints_in_a_folder_linked_elsewhere(a2929, pretrained, tmp_path):
    """checkpoints a symbolic link to a folder on a larger disk: a finished finetune removed its
    checkpoints with rmtree(ignore_errors=True), which refuses a link, so Trainer's checkpoint-* folders
    stayed in the linked folder without a word. They are removed and the link kept."""
    out, big = tmp_path / "decoder", tmp_path / "big" / "ckpts"
    big.mkdir(parents=True)
    out.mkdir()
    (out / "checkpoints").symlink_to(big)
    finetune(pretrained, a2929, [DecodingTarget("ry", "circular")], output_dir=out, max_steps=2, eval_steps=2,
             batch_size=16)
    assert (out / "model.safetensors").is_file() and (out / "checkpoints").is_symlink()
    assert list(big.iterdir()) == []


def test_finetune_says_which_recorded_time_the_checkpoints_split_plan_leaves_out(a2929, pretrained, shared_data,
                                                                                  tmp_path):
    """A model pretrained on 670-850 s, fine-tuned on 670-900 s (as the whole wake epoch, 600-1200 s,
    with 'neuroformer finetune --epoch wake'): the checkpoint's split plan clipped to the recording left
    the last 50 s in no split, neither fitted nor scored, without a word."""
    from hf_neuroformer.io import load_recording

    longer = load_recording(shared_data(A2929), epoch="wake").restrict(670.0, 900.0)
    with pytest.warns(UserWarning, match=r"split plan of .* spans 670.000-850.000 s, and 50.0 s of this recording lie "
                                         r"outside it \(0.0 s before, 50.0 s after, in stretches .*\), in no split"):
        m = finetune(pretrained, longer, [DecodingTarget("ry", "circular")], output_dir=tmp_path / "d", max_steps=1,
                     eval_steps=1, batch_size=16)
    assert m["split_plan_source"] == "checkpoint splits.json"
    with warnings.catch_warnings():  # the recording it was pretrained on: nothing left out, nothing said
        warnings.simplefilter("error", UserWarning)
        from hf_neuroformer.finetuning import _plan_within, _warn_time_outside_plan
        from hf_neuroformer.windows import SplitPlan

        cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
        plan = SplitPlan.from_dict(json.loads((pretrained / "splits.json").read_text()))
        _warn_time_outside_plan(_plan_within(plan, a2929, cfg), a2929, cfg, pretrained)


def test_time_outside_the_plan_counts_only_stretches_that_hold_a_window(shared_data, pretrained):
    """The time before / after a checkpoint's plan was summed over every stretch of recorded time, so
    100 ripples of 0.2 s after it (20 s, none holding a 0.1-s window with its 0.3-s past) were warned
    of as room for windows left in no split."""
    from hf_neuroformer.finetuning import _warn_time_outside_plan
    from hf_neuroformer.io import load_recording
    from hf_neuroformer.windows import SplitPlan
    from tiny_configs import quiet

    cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
    plan = SplitPlan.from_dict(json.loads((pretrained / "splits.json").read_text()))  # spans 670-850 s
    longer = quiet(load_recording, shared_data(A2929), epoch="wake").restrict(670.0, 900.0)
    ripples = np.stack([np.arange(850.5, 900.0, 0.5), np.arange(850.5, 900.0, 0.5) + 0.2], 1)
    def select(iv):  # an epoch of those intervals, as an NWB interval table gives one
        iv = np.asarray(iv, dtype=np.float64)
        return dataclasses.replace(longer, epochs={"iv": (iv[0, 0], iv[-1, 1])},
                                   epoch_intervals={"iv": iv}).select_epoch("iv")

    rec = select(np.concatenate([[[670.0, 850.0]], ripples]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        _warn_time_outside_plan(plan, rec, cfg, pretrained)
    # one stretch that holds a window with its past (1 s) is still said, with only its own time
    rec = select(np.concatenate([[[670.0, 850.0]], ripples[:-2], [[898.5, 899.5]]]))
    with pytest.warns(UserWarning, match=r"\(0.0 s before, 1.0 s after, in stretches of recorded time that each hold"):
        _warn_time_outside_plan(plan, rec, cfg, pretrained)


class _StoppedMidTraining(Exception):
    pass


def _finetune_stopped_after_step_1(monkeypatch, out, pretrained, a2929, seen, **kwargs):
    """``finetune(..., overwrite=True)`` into ``out`` with a TrainerCallback that raises when step 2
    begins (step 1 evaluated and checkpointed, eval_steps=1), as a run killed mid-training; ``seen``
    gets what ``out`` held then (file names, the unfinished-run record)."""
    from transformers import TrainerCallback

    import hf_neuroformer.finetuning as ft
    from hf_neuroformer.training import UNFINISHED_FINETUNE

    class StopAtStep2(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step >= 1:
                seen["files"] = sorted(p.name for p in out.iterdir())
                seen["record"] = json.loads((out / UNFINISHED_FINETUNE).read_text())
                raise _StoppedMidTraining("stopped after step 1")

    real_build = ft.build_trainer

    def build_with_stop(*args, **kw):  # the real trainer, with one more callback
        trainer = real_build(*args, **kw)
        trainer.add_callback(StopAtStep2())
        return trainer

    monkeypatch.setattr(ft, "build_trainer", build_with_stop)
    with pytest.raises(_StoppedMidTraining):
        finetune(pretrained, a2929, [DecodingTarget("x", "regression")], output_dir=out, max_steps=3, eval_steps=1,
                 batch_size=16, seed=1, overwrite=True, **kwargs)
    monkeypatch.setattr(ft, "build_trainer", real_build)


def test_finetune_overwrite_stopped_mid_training_keeps_the_older_decoder_and_says_whose_checkpoints_are_left(
        a2929, pretrained, finetuned, tmp_path, monkeypatch):
    """Break test: finetune(overwrite=True) into a folder holding a decoder, stopped after its first
    step with its checkpoints kept (or killed outright, which leaves the same): the folder held the
    older decoder beside the new run's checkpoints/checkpoint-1 and nothing said which was which;
    load_decoder loaded the older decoder without a word. The run now writes finetune_unfinished.json
    when training starts (the files already there, the checkpoints already there) and load_decoder
    warns with it; stopped by an exception without keep_checkpoints, the run removes its checkpoints
    and the record, leaving the folder byte for byte as it was; a finished run's save removes it."""
    import shutil

    from safetensors.torch import load_file

    from hf_neuroformer.finetuning import load_decoder
    from hf_neuroformer.training import UNFINISHED_FINETUNE, model_files_in

    out = tmp_path / "decoder"
    shutil.copytree(finetuned[0], out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    old_weights = load_file(out / "model.safetensors")
    seen = {}
    _finetune_stopped_after_step_1(monkeypatch, out, pretrained, a2929, seen)
    # mid-training: the older decoder whole, the record beside it naming it and the run
    assert set(before) < set(seen["files"]) and UNFINISHED_FINETUNE in seen["files"]
    assert seen["record"]["model_files_before"] == model_files_in(finetuned[0])
    assert seen["record"]["checkpoints_before"] == [] and seen["record"]["run"] == "finetune"
    assert seen["record"]["model_dir"] == str(pretrained.resolve())
    # stopped: its checkpoints and its record removed, the older decoder untouched
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

    _finetune_stopped_after_step_1(monkeypatch, out, pretrained, a2929, {}, keep_checkpoints=True)
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["checkpoint-1"]
    assert {n: (out / n).read_bytes() for n in before} == before
    with pytest.warns(UserWarning, match=r"a fine-tuning into .*decoder' \(started 20.*, pid \d+, on host .*\) has not "
                                         r"saved its decoder \(finetune_unfinished.json is there.*the model files there "
                                         r"are the ones saved before it, left whole; .*checkpoints' holds that run's 1 "
                                         r"checkpoint \('checkpoint-1'\), not that model's"):
        decoder, _, _ = load_decoder(out)
    assert all(torch.equal(decoder.state_dict()[k], v) for k, v in old_weights.items())

    # a decoder's save killed while moving its files: the record goes with the transaction, which
    # load_decoder completes before it looks for the record
    import os

    from hf_neuroformer.save_journal import SAVE_JOURNAL
    from hf_neuroformer.training import save_atomically

    real_replace, moved = os.replace, []

    def replace(src, dst):
        if os.path.basename(os.path.dirname(src)).startswith(".tmp-save-"):
            if moved:
                raise _StoppedMidTraining("killed after the first file")
            moved.append(os.path.basename(src))
        return real_replace(src, dst)

    tokenizer = nf.NeuroformerTokenizer.from_pretrained(out)
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(_StoppedMidTraining):
        save_atomically(out, decoder, tokenizer, {"metrics.json": json.loads((out / "metrics.json").read_text()),
                                                  "decoding_report.json": {}}, overwrite=True,
                        tables={"test_predictions.csv": (out / "test_predictions.csv").read_text()})
    monkeypatch.setattr(os, "replace", real_replace)
    assert (out / SAVE_JOURNAL).is_file() and (out / UNFINISHED_FINETUNE).is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        load_decoder(out)
    assert not (out / UNFINISHED_FINETUNE).exists() and not (out / SAVE_JOURNAL).exists()

    # a run that ends saves its decoder and removes the record in the same transaction
    finetune(pretrained, a2929, [DecodingTarget("x", "regression")], output_dir=out, max_steps=1, batch_size=16,
             seed=1, overwrite=True)
    assert not (out / UNFINISHED_FINETUNE).exists() and not (out / "checkpoints").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        load_decoder(out)


def test_a_first_finetune_killed_mid_training_is_named_by_load_decoders_error(a2929, pretrained, tmp_path,
                                                                              monkeypatch):
    """A first fine-tuning into a new folder stopped with its checkpoints kept (as one killed outright):
    load_decoder's "no config.json" error now says a run into it has not saved its decoder, and that
    checkpoint-1 is that run's."""
    from hf_neuroformer.finetuning import load_decoder

    out = tmp_path / "new"
    _finetune_stopped_after_step_1(monkeypatch, out, pretrained, a2929, {}, keep_checkpoints=True)
    with pytest.raises(FileNotFoundError, match=r"has not saved its decoder .*: no model was saved there before it; "
                                                r".* holds that run's 1 checkpoint \('checkpoint-1'\)"):
        load_decoder(out)


def test_finetune_refuses_a_folder_holding_an_interrupted_training_runs_checkpoints(a2929, pretrained, tmp_path):
    # a 'neuroformer train' into the folder stopped after its step-1 checkpoint (no model written yet):
    # finetune accepted the folder and removed checkpoints/ (Trainer's) when it ended, the resumable
    # checkpoint with it
    out = tmp_path / "run"

    def stop(step, loss):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(a2929, out, nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=4, batch_size=16, save_every=1),
              progress=False, on_step_end=stop)
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-00000001"]
    with pytest.raises(FileExistsError, match=r"checkpoints.* holds checkpoints of an earlier run \(step-00000001\).*"
                                              r"--overwrite"):
        finetune(pretrained, a2929, [DecodingTarget("ry", "circular")], output_dir=out, max_steps=2, eval_steps=2,
                 batch_size=16)
    assert (out / "checkpoints" / "step-00000001" / "trainer_state.json").is_file()
    assert not (out / "model.safetensors").exists()
    # the checkpoint-* folders of an interrupted fine-tuning are its own: a rerun is not refused for them
    from hf_neuroformer.finetuning import check_finetune_output_dir

    kept = tmp_path / "kept"
    finetune(pretrained, a2929, [DecodingTarget("ry", "circular")], output_dir=kept, max_steps=2, eval_steps=2,
             batch_size=16, keep_checkpoints=True)
    rerun = tmp_path / "rerun"
    rerun.mkdir()
    (kept / "checkpoints").rename(rerun / "checkpoints")
    assert [p.name for p in (rerun / "checkpoints").iterdir()] == ["checkpoint-2"]
    check_finetune_output_dir(rerun)
    (rerun / "checkpoints" / "notes.txt").write_text("mine")  # deleted with the folder at the end: refused
    with pytest.raises(FileExistsError, match="'notes.txt'.* fine-tuning deletes the folder when it ends"):
        check_finetune_output_dir(rerun)


def test_finetune_writes_block_bootstrap_intervals_of_its_test_metrics(finetuned, capsys):
    """metrics.json gains a 95 % interval key per test decoding metric, the blocks' count per target
    (test/<target>/ci95_n_blocks: a target's NaN windows are left out, so counts may differ) and
    their definition and length once. The A2929 test split is too short for five 10-s blocks, so
    each is null with its reason (printed beside the point value), which names the block length
    that gives five in the Python call's words (ci_block_s=); the same function on the run's own
    test predictions with 2-s blocks gives intervals that hold the reported values."""
    import pandas as pd

    from hf_neuroformer.cli import _print_metrics
    from hf_neuroformer.finetuning import decoding_intervals
    from hf_neuroformer.windows import SplitPlan

    out, m = finetuned
    on_disk = json.loads((out / "metrics.json").read_text())
    keys = {"ry": ("mean_angular_error_rad", "median_angular_error_rad", "mean_angular_error_deg",
                   "median_angular_error_deg", "circular_r"), "x": ("r2", "pearson_r", "rmse", "mae")}
    plan = SplitPlan.from_dict(json.loads((out / "splits.json").read_text()))
    assert "test/ci95_n_blocks" not in on_disk  # one count per target instead
    n_blocks = on_disk["test/x/ci95_n_blocks"]
    test_s = float(np.sum(np.diff(plan.segments["test"], axis=1)))
    assert n_blocks == sum(int(np.ceil(round((b - a) / 10.0, 6))) for a, b in plan.segments["test"]) and test_s < 50
    assert on_disk["test/ry/ci95_n_blocks"] == n_blocks and on_disk["test/ci95_block_s"] == 10.0
    assert "10 s of window starts" in on_disk["test/ci95_blocks"] and "'BCa'" in on_disk["test/ci95_method"]
    for target, names in keys.items():
        for name in names:
            key = f"test/{target}/{name}"
            assert on_disk[f"{key}_ci95"] is None and m[f"{key}_ci95"] is None, key
            assert on_disk[f"{key}_ci95_reason"].startswith(f"{count_noun(n_blocks, 'block')}, fewer than 5"), key
            assert "shorter blocks give an interval: e.g. ci_block_s=" in on_disk[f"{key}_ci95_reason"], key
            assert "--ci-block-s" not in on_disk[f"{key}_ci95_reason"], key
    _print_metrics(m)
    lines = [x for x in capsys.readouterr().out.splitlines() if "95% CI: none" in x]
    # the reason in full beside the first figure without an interval, referred to beside the others
    assert f"95% CI: none ({count_noun(n_blocks, 'block')}," in lines[0] and len(lines) == sum(map(len, keys.values()))
    first = lines[0].split()[0]
    line = next(x for x in lines if x.strip().startswith("test/x/r2 "))
    assert line.endswith(f"{m['test/x/r2']:.4f}  95% CI: none (as for {first})"), line
    table = pd.read_csv(out / "test_predictions.csv")
    targets = json.loads((out / "config.json").read_text())["decoding_targets"]
    short = decoding_intervals(table[["ry_predicted", "x_predicted"]].to_numpy(), table[["ry", "x"]].to_numpy(),
                               targets, table["window_start_s"].to_numpy(), plan, ci_block_s=2.0)
    assert short["test/x/ci95_n_blocks"] >= 5 and short["test/ci95_block_s"] == 2.0
    # a target with NaN in some windows counts only the blocks its other windows fill
    labels = table[["ry", "x"]].to_numpy(dtype=float)
    first = table["window_start_s"].to_numpy() < table["window_start_s"].min() + 2.0  # the first 2-s block
    labels[first, 1] = np.nan
    part = decoding_intervals(table[["ry_predicted", "x_predicted"]].to_numpy(), labels, targets,
                              table["window_start_s"].to_numpy(), plan, ci_block_s=2.0)
    assert part["test/x/ci95_n_blocks"] == short["test/x/ci95_n_blocks"] - 1
    assert part["test/ry/ci95_n_blocks"] == short["test/ry/ci95_n_blocks"]
    for target, names in keys.items():
        for name in names:
            key = f"test/{target}/{name}"
            lo, hi = short[f"{key}_ci95"]
            assert lo <= m[key] <= hi, key


def test_every_key_of_a_decoders_metrics_json_is_named_in_the_readme(finetuned, readme_leaves_out):
    """The README's fine-tuning `metrics.json` item left out total_steps, checkpoint_selection,
    model_dir, split_plan_source, targets, config_overrides, n_train_windows_full and the
    test/ci95_* keys that a finetune run writes. (The item is now in docs/decoding.md.)"""
    out, _ = finetuned
    on_disk = json.loads((out / "metrics.json").read_text())
    section = ("- **`metrics.json`**: `test/<target>/<metric>`", "- **Baselines**")
    missing = readme_leaves_out(on_disk, section, targets=("ry", "x"), page="docs/decoding.md")
    assert not missing, missing
    # the weights these metrics score (push compares it with the folder's weights), in the returned metrics too
    from hf_neuroformer.generation import tensors_sha256

    assert on_disk["weights_tensors_sha256"] == finetuned[1]["weights_tensors_sha256"] == tensors_sha256(out)


def test_finetune_with_unconcatenated_eval_batches_writes_the_same_test_results(finetuned, a2929, pretrained,
                                                                                 tmp_path):
    """TrainingArguments(eval_do_concat_batches=False) hands Trainer.predict's outputs over as a
    list with one entry per batch; make_compute_metrics took it, but finetune's intervals and its
    prediction table read the list as one array or kept its first batch, and the run failed after
    training (numpy's 'inhomogeneous shape', or an IndexError with one-tuple batches). The run now
    writes what the default run writes."""
    import pandas as pd

    out0, m0 = finetuned
    targets = [DecodingTarget("ry", "circular"), DecodingTarget("x", "regression")]
    m = finetune(pretrained, a2929, targets, output_dir=tmp_path / "d", max_steps=4, eval_steps=2, batch_size=16,
                 seed=0, eval_do_concat_batches=False)
    assert m["test/x/n"] == m0["test/x/n"] > 16  # more than one batch of test windows
    for key in ("test/x/r2", "test/ry/mean_angular_error_deg", "test/x/ci95_n_blocks"):
        assert m[key] == pytest.approx(m0[key], rel=1e-6), key
    assert m["test/x/r2_ci95"] is None and m["test/x/r2_ci95_reason"] == m0["test/x/r2_ci95_reason"]
    table, table0 = pd.read_csv(tmp_path / "d" / "test_predictions.csv"), pd.read_csv(out0 / "test_predictions.csv")
    assert len(table) == len(table0) >= m["test/x/n"]
    np.testing.assert_allclose(table["x_predicted"], table0["x_predicted"], rtol=1e-5)


def test_benchmark_decoding_reads_the_finetune_metrics_with_their_intervals(finetuned):
    """scripts/benchmark_decoding.py took every ``test/<target>/...`` key of finetune's metrics as a
    point value (``float(v)``): the ``_ci95`` intervals (null here: too few blocks) and their
    reasons crashed it with a TypeError. Points, intervals and reasons now come apart."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    import benchmark_decoding as bd

    _, m = finetuned
    assert any(not isinstance(v, float) for k, v in m.items() if k.startswith("test/x/"))  # what float() refused
    for target, metric in (("x", "r2"), ("ry", "mean_angular_error_deg")):
        points, intervals, reasons = bd.target_metrics(m, f"test/{target}/")
        assert points[metric] == m[f"test/{target}/{metric}"] and all(isinstance(v, float) for v in points.values())
        assert not any("ci95" in k for k in points)  # the interval keys, and the target's ci95_n_blocks
        assert m[f"test/{target}/ci95_n_blocks"] >= 1
        assert set(intervals) == {k for k in points if k not in ("n", "target_sd")}, target
        assert intervals[metric] is None and reasons[metric] == m[f"test/{target}/{metric}_ci95_reason"]
    val, intervals, _ = bd.target_metrics(m, "validation/x/")
    assert val["r2"] == m["validation/x/r2"] and intervals == {}


def test_finetune_pretrained_checkpoint_with_trainer_reports_decoding_metrics(finetuned, a2929):
    out, m = finetuned
    for split in ("validation", "test"):
        for key in ("ry/mean_angular_error_rad", "ry/median_angular_error_rad", "ry/mean_angular_error_deg",
                    "ry/median_angular_error_deg", "x/r2", "x/pearson_r", "loss"):
            assert np.isfinite(m[f"{split}/{key}"]), key
    assert m["init"] == "pretrained" and m["best_step"] in (2, 4) and m["total_steps"] == 4
    assert m["checkpoint_selection"] == "lowest validation loss"
    # the pretraining checkpoint loads cleanly: only the new heads are initialised
    rep = m["load_report"]
    assert rep["unexpected_keys"] == [] and rep["mismatched_keys"] == []
    assert rep["missing_keys"] and all(k.startswith("decoding_heads.") for k in rep["missing_keys"])
    assert m["split_plan_source"] == "checkpoint splits.json"
    assert json.loads((out / "metrics.json").read_text())["test/x/r2"] == pytest.approx(m["test/x/r2"])
    assert (out / "test_decoding.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # decoded vs recorded, drawn
    # the decoded and recorded values per test window, as a table: its rows give back the reported metrics
    import pandas as pd
    from sklearn.metrics import r2_score

    table = pd.read_csv(out / "test_predictions.csv")
    assert list(table.columns) == ["window_start_s", "window_stop_s", "ry", "ry_predicted", "ry_error_rad", "x",
                                   "x_predicted"]
    assert len(table) == m["test/x/n"] and np.all(np.diff(table["window_start_s"]) > 0)
    assert np.allclose(table["window_stop_s"] - table["window_start_s"], 0.1)
    assert m["test/x/r2"] == pytest.approx(r2_score(table["x"], table["x_predicted"]), rel=1e-5)
    err = np.angle(np.exp(1j * (table["ry_predicted"] - table["ry"])))
    assert np.allclose(np.abs(table["ry_error_rad"]), np.abs(err), atol=1e-6)
    assert m["test/ry/mean_angular_error_rad"] == pytest.approx(np.mean(np.abs(err)), rel=1e-5)
    # the decoder records the spikes it was fine-tuned and scored on, like a pretrained model, so the
    # commands that read it with a recording can compare (embed with a changed recording was silent)
    from hf_neuroformer.generation import check_recording_units
    from hf_neuroformer.tokenization_neuroformer import NeuroformerTokenizer
    from hf_neuroformer.windows import SplitPlan, split_spikes_digest
    rec = a2929
    plan = SplitPlan.from_dict(json.loads((out / "splits.json").read_text()))
    assert m["split_spikes"] == split_spikes_digest(rec, plan) and set(m["split_spikes"]["splits"]) == set(plan.segments)
    assert check_recording_units(NeuroformerTokenizer.from_pretrained(out), rec, model_dir=out)["status"] == "same spikes"
    assert not (out / "checkpoints").exists()
    # the regression head is standardised with train statistics stored in the config
    cfg = json.loads((out / "config.json").read_text())
    x = [t for t in cfg["decoding_targets"] if t["name"] == "x"][0]
    assert x["std"] > 0 and np.isfinite(x["mean"])


def test_a_save_without_the_predictions_table_removes_an_earlier_runs(finetuned, tmp_path):
    """test_predictions.csv belongs to the run that wrote it: a model saved over a decoder's folder
    without one (train --overwrite) removes it, as it removes the decoder's figure, so no decoded
    values of another model stay beside the new one."""
    import shutil

    from hf_neuroformer.training import model_files_in, save_atomically

    d = tmp_path / "over"
    shutil.copytree(finetuned[0], d)
    assert "test_predictions.csv" in model_files_in(d)
    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(d)
    tok = nf.NeuroformerTokenizer.from_pretrained(d)
    save_atomically(d, model, tok, {"metrics.json": {}}, overwrite=True)
    assert not (d / "test_predictions.csv").exists() and not (d / "test_decoding.png").exists()
    save_atomically(d, model, tok, {"metrics.json": {}}, overwrite=True, tables={"test_predictions.csv": "a\n1\n"})
    assert (d / "test_predictions.csv").read_text() == "a\n1\n"


def test_prediction_table_refuses_mismatched_shapes_and_class_indices():
    from hf_neuroformer.decoding import prediction_table

    targets = [{"name": "choice", "kind": "classification", "classes": [-1, 1]}]
    t = prediction_table([0.2, 0.1, 0.3], 0.1, [[0], [1], [1]], targets, recorded=[[1.0], [-1.0], [np.nan]])
    assert t["window_start_s"].tolist() == [0.1, 0.2, 0.3]
    assert t["choice"].tolist()[:2] == [-1, 1] and t["choice"].isna().tolist() == [False, False, True]
    assert t["choice_predicted"].tolist() == [1, -1, 1]
    assert list(prediction_table([0.1], 0.1, [[0]], targets).columns) == ["window_start_s", "window_stop_s",
                                                                         "choice_predicted"]
    with pytest.raises(ValueError, match=r"recorded: expected shape \(3, 1\)"):
        prediction_table([0.2, 0.1, 0.3], 0.1, [[0], [1], [1]], targets, recorded=[[1.0, 2.0]] * 3)
    with pytest.raises(ValueError, match=r"predictions of 'choice': expected class indices in \[0, 2\)"):
        prediction_table([0.2, 0.1], 0.1, [[2], [0]], targets)


def test_decode_windows_gives_back_the_test_metrics_and_labels_each_window_with_its_split(finetuned, a2929):
    """decode_windows on the decoder's own test windows reproduces finetune's test metrics and its
    test_predictions.csv; over windows tiling the whole recording each window is labelled with the
    split whose segment holds it (past window included), so train windows are not mistaken for
    held-out ones."""
    import pandas as pd
    from sklearn.metrics import r2_score

    from hf_neuroformer.finetuning import decode_windows, load_decoder, split_of_windows, windows_tiling
    from hf_neuroformer.windows import window_starts_for_split

    out, m = finetuned
    model, tok, plan = load_decoder(out)
    cfg = model.config
    starts, _ = window_starts_for_split(plan, "test", cfg, stride=cfg.current_window)
    model.train()
    table, info = decode_windows(model, tok, a2929, starts, plan=plan)
    assert model.training  # the caller's mode comes back
    assert info["recorded_targets"] == ["ry", "x"] and info["missing_targets"] == {}
    assert (table["split"] == "test").all() and len(table) == m["test/x/n"]
    assert m["test/x/r2"] == pytest.approx(r2_score(table["x"], table["x_predicted"]), rel=1e-5)
    assert m["test/ry/mean_angular_error_rad"] == pytest.approx(np.abs(table["ry_error_rad"]).mean(), rel=1e-5)
    saved = pd.read_csv(out / "test_predictions.csv")
    assert np.allclose(saved["x_predicted"], table["x_predicted"], rtol=1e-5)
    assert (table["n_spikes"] >= 0).all() and (table["n_truncated"] >= 0).all()

    all_starts, _ = windows_tiling(a2929, cfg)
    whole, _ = decode_windows(model, tok, a2929, all_starts, plan=plan, recorded=False)
    assert [c for c in whole.columns if c in ("ry", "x")] == []  # recorded=False: predictions only
    assert set(whole["split"]) <= {"train", "validation", "test", ""} and {"train", "test"} <= set(whole["split"])
    for split, seg in plan.segments.items():
        seg = np.asarray(seg)
        s = whole.loc[whole["split"] == split, "window_start_s"].to_numpy()
        inside = ((s[:, None] - cfg.past_window >= seg[None, :, 0] - 1e-9)
                  & (s[:, None] + cfg.current_window <= seg[None, :, 1] + 1e-9)).any(1)
        assert inside.all(), split
    # by hand: a window whose past reaches back over a split boundary belongs to neither split
    toy = nf.windows.SplitPlan("time", {"train": np.array([[0.0, 10.0]]), "test": np.array([[10.0, 20.0]])},
                               {"train": np.zeros(0, dtype=np.int64), "test": np.zeros(0, dtype=np.int64)})
    got = split_of_windows(toy, [5.0, 9.95, 10.1, 10.3, 19.9, 25.0], cfg)
    assert got.tolist() == ["train", "", "", "test", "test", ""]


def test_decode_windows_refuses_a_backbone_a_pretrained_model_or_paths_naming_the_argument(
        finetuned, pretrained, a2929):
    """The backbone AutoModel loads failed after its first batch with "'NeuroformerModelOutput'
    object has no attribute 'predictions'", a pretrained model likewise, and a decoder's or a
    recording's path with "'str' object has no attribute ...", naming no argument."""
    from transformers import AutoModel

    from hf_neuroformer.finetuning import decode_windows, load_decoder, windows_tiling

    model, tok, _ = load_decoder(finetuned[0])
    starts = windows_tiling(a2929, model.config)[0][:2]
    processor = nf.NeuroformerProcessor.from_config(tok, model.config)
    for args, message in (
            ((AutoModel.from_pretrained(pretrained), tok, a2929),
             r"^model: expected a NeuroformerForBehaviorDecoding .*got NeuroformerModel "
             r"\(the backbone alone, as AutoModel\.from_pretrained loads it: it has no behaviour heads"),
            ((nf.NeuroformerForPreTraining.from_pretrained(pretrained), tok, a2929),
             r"^model: .*got NeuroformerForPreTraining \(a pretrained model: it has no behaviour "
             r"heads"),
            ((str(finetuned[0]), tok, a2929), r"^model: .*got str \(a path: load the decoder it "
                                              r"names with load_decoder"),
            ((model, processor, a2929), r"^tokenizer: expected a NeuroformerTokenizer, got "
                                        r"NeuroformerProcessor"),
            ((model, tok, "/m/rec.nwb"), r"^recording: expected a SpikeRecording, got str")):
        with pytest.raises(TypeError, match=message):
            decode_windows(*args, starts)


def test_decode_windows_warns_of_a_recording_holding_only_some_of_the_decoders_units(finetuned, a2929):
    """Break test: a recording of 10 of the decoder's 15 units (passes the vocabulary check: every
    unit it has is known) was decoded without a word, the 5 others read as silent in every window,
    e.g. 'neuroformer decode --epoch sleep' of such a file (no training spikes to compare with)."""
    from hf_neuroformer.finetuning import decode_windows, load_decoder, windows_tiling

    model, tok, plan = load_decoder(finetuned[0])
    starts = windows_tiling(a2929, model.config)[0][:5]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the whole recording: no warning
        _, info = decode_windows(model, tok, a2929, starts)
    assert info["absent_units"] == []
    with pytest.warns(UserWarning, match=r"recording: 5 of the decoder's units of this session are not in it "
                                         r"\('A2929-200711/unit10', .*they are read as silent") as caught:
        _, info = decode_windows(model, tok, a2929.select_units(range(10)), starts)
    assert info["absent_units"] == [f"A2929-200711/unit{i}" for i in range(10, 15)]
    # the warning names the caller's line, past the torch.no_grad and keeps_training_mode wrappers
    # (stacklevel 3 named windows.py's keeps_training_mode wrapper as its source)
    absent = [w for w in caught if "are not in it" in str(w.message)]
    assert [w.filename for w in absent] == [__file__]


def test_split_of_windows_gives_overlapping_trials_windows_their_own_trials_split():
    """Break test: in trial mode a window was given the split of the last trial starting before it
    (the first split tried on a tie): with trials that overlap (6 of 450 in the Zheng 2022 MTL
    file), the decoder's own test windows in the overlap were labelled train (and left out of its
    scores), and a train window after a nested train trial was labelled test (and scored)."""
    from hf_neuroformer.finetuning import split_of_windows
    from hf_neuroformer.windows import SplitPlan, window_starts_for_split

    cfg = nf.NeuroformerConfig(**{**TINY, "current_window": 0.1})
    none = np.zeros(0, dtype=np.int64)
    plan = SplitPlan("trials", {"train": np.array([[0.0, 2.0]]), "validation": np.zeros((0, 2)),
                                "test": np.array([[1.5, 3.5]])}, {"train": np.array([0]), "validation": none,
                                                                  "test": np.array([1])})
    for split in ("train", "test"):
        starts, clips = window_starts_for_split(plan, split, cfg, stride=cfg.current_window)
        assert set(split_of_windows(plan, starts, cfg, clips)) == {split}, split
    starts = np.array([1.0, 1.6, 2.5])  # without the trial of each window: the overlap is in both splits
    assert split_of_windows(plan, starts, cfg).tolist() == ["train", "", "test"]
    nested = SplitPlan("trials", {"train": np.array([[1.0, 1.5], [1.2, 1.3]]), "validation": np.zeros((0, 2)),
                                  "test": np.array([[0.9, 3.0]])}, {"train": np.array([0, 1]), "validation": none,
                                                                    "test": np.array([2])})
    assert split_of_windows(nested, [1.35], cfg, [1.0]).tolist() == ["train"]
    assert split_of_windows(nested, [1.35], cfg, [0.9]).tolist() == ["test"]


def test_cli_decode_scores_only_test_windows_on_the_recording_the_decoder_was_fitted_on(finetuned, shared_data,
                                                                                           tmp_path, capsys):
    """On the fine-tuning recording, windows outside every split lie between the train and
    validation blocks (their past reads the same spikes, their behaviour is a few hundred ms from
    a training label): they were scored as 'outside the decoder's splits' beside the test score.
    Only the test windows are scored there; the table still holds every window."""
    import pandas as pd

    from hf_neuroformer.cli import main

    out = tmp_path / "wake.csv"
    assert main(["decode", "--model", str(finetuned[0]), "--data", str(shared_data(A2929)), "--epoch", "wake",
                 "--output", str(out)]) == 0
    text = capsys.readouterr().out
    table = pd.read_csv(out, keep_default_na=False)
    assert {"train", "validation", "test", ""} <= set(table["split"])
    assert "scored below: the test windows only" in text and "on the" in text and " test windows with a recorded" in text
    assert "outside the decoder's splits) windows" not in text
    assert "none of these windows is a test window" not in text
    # its validation windows: the line said 'scored below: the test windows only' and nothing followed
    assert main(["decode", "--model", str(finetuned[0]), "--data", str(shared_data(A2929)), "--epoch", "wake",
                 "--split", "validation", "--output", str(tmp_path / "val.csv")]) == 0
    text = capsys.readouterr().out
    assert "none of these windows is a test window, so none is scored" in text
    assert " validation windows with a recorded" not in text and " test windows with a recorded" not in text


@pytest.fixture(scope="module")
def sleep_decoded(finetuned, shared_data, tmp_path_factory):
    """``(args, text, csv, png)``: ``neuroformer decode`` (in this process) of the wake decoder over
    the sleep epoch with ``--figure``, its arguments without the figure, what it printed and the
    two files it wrote, into folders that did not exist (``new/a/``, ``new2/``); run once for the
    tests that read that command's output."""
    import contextlib
    import io

    from hf_neuroformer.cli import main

    d = tmp_path_factory.mktemp("sleep")
    csv, png = d / "new" / "a" / "sleep.csv", d / "new2" / "sleep.png"
    assert not (d / "new").exists() and not png.parent.exists()
    args = ["decode", "--model", str(finetuned[0]), "--data", str(shared_data(A2929)), "--epoch", "sleep",
            "--output", str(csv)]
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(args + ["--figure", str(png)]) == 0
    return args, printed.getvalue(), csv, png


def test_cli_decode_says_when_no_window_is_scored(sleep_decoded):
    """Head direction decoded in sleep (no tracking there): the split line said 'scored below: test
    windows and windows outside every split' and no score followed, with no word why."""
    text = sleep_decoded[1]
    assert "scored below: test windows and windows outside every split" in text
    assert "ry: predicted only, the recording has no value of it in these windows" in text
    # ry and x are regression targets: the closing line has no clause about classes the decoder knows (that is
    # for classification targets whose windows were left out for a class it has none for)
    assert "  no window scored: no test window or window outside every split has a recorded value of a target\n" in text


def test_cli_decode_names_the_csv_columns_in_their_order(sleep_decoded):
    """The 'wrote' line said "per target the decoded value and the recorded one" of a CSV whose
    recorded column comes first: it names the columns as the file has them."""
    import pandas as pd

    _, text, csv, _ = sleep_decoded
    columns = list(pd.read_csv(csv, nrows=0).columns)
    assert columns[2:6] == ["ry", "ry_predicted", "ry_error_rad", "x"], columns
    line = next(t for t in text.splitlines() if t.startswith(f"[neuroformer] wrote {csv}"))
    assert f"(columns {', '.join(columns)}: per target the recorded value (<target>) where the recording has it, " \
           "then the decoded one (<target>_predicted), and a circular target's decoded minus recorded angle" in line


def test_cli_decode_names_a_target_recorded_only_outside_the_test_windows(finetuned, a2929, tmp_path, capsys):
    """x recorded in the train windows but not in the test block (ry in both): ry was scored and x got no line at
    all, below a split line promising scores, and the closing 'no window scored' line is only for when none was."""
    from hf_neuroformer.cli import main
    from hf_neuroformer.io import write_nwb

    test = np.asarray(json.loads((finetuned[0] / "splits.json").read_text())["segments"]["test"])
    a, b = test[0]
    rec = a2929.restrict(a - 10.0, b + 1.0)  # the first test block and training windows before it
    x = rec.behaviour["x"]
    values = np.asarray(x.values, dtype=np.float64).copy()
    values[np.asarray(x.timestamps) >= a - 1.0] = np.nan  # none in the test windows (nor the gap before them)
    write_nwb(dataclasses.replace(rec, behaviour={**rec.behaviour, "x": dataclasses.replace(x, values=values)}),
              tmp_path / "x_train_only.nwb")
    assert main(["decode", "--model", str(finetuned[0]), "--data", str(tmp_path / "x_train_only.nwb"), "--output",
                 str(tmp_path / "d.csv")]) == 0
    text = capsys.readouterr().out
    assert "scored below: the test windows only" in text and " test windows with a recorded value" in text, text
    assert ("  x: not scored, no test window has a recorded value of it (only windows the decoder was fitted or "
            "selected on, or that lie between them, have)\n") in text, text
    assert "no window scored" not in text


def test_cli_decode_labels_the_training_windows_a_few_shot_decoder_never_fitted(a2929, pretrained, shared_data,
                                                                                tmp_path, capsys):
    """Break test: a decoder fine-tuned on the first 30 % of the training windows (--fraction 0.3)
    had every training window labelled 'train' in decode's split column, the 70 % it never fitted
    too. Those are 'train_unused' now, by metrics.json's train_windows_used_s (not scored either:
    they lie beside fitted ones)."""
    import pandas as pd

    from hf_neuroformer.cli import main

    m = finetune(pretrained, a2929, [DecodingTarget("x", "regression")], output_dir=tmp_path / "d", fraction=0.3,
                 max_steps=1, eval_steps=1, batch_size=16)
    first, last = m["train_windows_used_s"]
    out = tmp_path / "wake.csv"
    assert main(["decode", "--model", str(tmp_path / "d"), "--data", str(shared_data(A2929)), "--epoch", "wake",
                 "--output", str(out)]) == 0
    text = capsys.readouterr().out
    table = pd.read_csv(out, keep_default_na=False)
    at = table["window_start_s"].to_numpy()
    train, unused = at[table["split"] == "train"], at[table["split"] == "train_unused"]
    assert len(train) and len(unused) > len(train)  # 30 % fitted, 70 % not
    assert ((train >= first - 1e-9) & (train <= last + 1e-9)).all() and ((unused < first) | (unused > last)).all()
    assert "train_unused" in text and "scored below: the test windows only" in text


def test_continuing_a_decoder_on_fewer_windows_keeps_those_it_was_fitted_on_before_as_used(finetuned, a2929, tmp_path):
    """Break test: a decoder fitted on every training window and fine-tuned further with
    --fraction 0.3 recorded only the new block as train_windows_used_s, so neuroformer decode
    labelled 70 % of the training windows 'train_unused' (never fitted), though the decoder had
    been fitted on them. The span now keeps the windows it was fitted on before."""
    from hf_neuroformer.finetuning import load_decoder, split_of_windows

    before = finetuned[1]["train_windows_used_s"]
    targets = [DecodingTarget("ry", "circular"), DecodingTarget("x", "regression")]
    m = finetune(finetuned[0], a2929, targets, output_dir=tmp_path / "more", fraction=0.3, max_steps=1, eval_steps=1,
                 batch_size=16)
    assert m["n_train_windows"] < finetuned[1]["n_train_windows"]  # a block of them this time
    assert m["train_windows_used_s"] == before
    plan = load_decoder(tmp_path / "more")[2]
    starts = np.arange(670.0, 850.0, 0.1)
    split = split_of_windows(plan, starts, nf.NeuroformerConfig.from_pretrained(tmp_path / "more"),
                             train_used_s=m["train_windows_used_s"])
    assert (split == "train").any() and not (split == "train_unused").any()


def test_cli_decode_refuses_a_diverged_decoder(finetuned, shared_data, tmp_path, capsys):
    """Break test: a decoder with NaN weights (a diverged fine-tuning) was run over every window, its
    CSV written with empty predictions, and decode then stopped with "y_pred: expected finite values
    ... drop or mask them before scoring", naming no flag and blaming the data. It is refused before
    the recording is read, naming --model and the fix, and no CSV is written."""
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from hf_neuroformer.cli import main

    bad = tmp_path / "diverged"
    shutil.copytree(finetuned[0], bad)
    weights = load_file(bad / "model.safetensors")
    name = next(k for k in weights if k.endswith("cross_attn.v_proj.weight"))
    weights[name] = torch.full_like(weights[name], float("nan"))
    save_file(weights, bad / "model.safetensors", metadata={"format": "pt"})
    out = tmp_path / "d.csv"
    capsys.readouterr()
    assert main(["decode", "--model", str(bad), "--data", str(shared_data(A2929)), "--epoch", "wake",
                 "--split", "test", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"neuroformer decode: error: --model: {str(bad)!r}: "), last
    # a decoder's rate is finetune's --learning-rate (learning_rate, the library's name, is no flag)
    assert "weight tensors hold NaN or infinite values" in last, last
    assert last.endswith("retrain it with a lower --learning-rate (neuroformer finetune)"), last
    assert not out.exists()


def test_cli_decode_decodes_another_epoch_and_refuses_what_it_cannot(sleep_decoded, pretrained, shared_data, tmp_path,
                                                                      capsys):
    """neuroformer decode applies a decoder fine-tuned on wake to the sleep epoch: every window is
    outside the decoder's splits, the head direction is predicted where none was recorded."""
    import pandas as pd

    from hf_neuroformer.cli import main

    args, text, out, png = sleep_decoded  # decode --epoch sleep --output <new>/a/sleep.csv --figure <new2>/sleep.png
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(out)
    assert len(table) > 1000 and table["split"].isna().all()  # "" in the CSV: in no split of the decoder
    assert np.isfinite(table["ry_predicted"]).all() and np.isfinite(table["x_predicted"]).all()
    assert "ry: predicted only, the recording has no value of it in these windows" in text
    step = np.diff(table["window_start_s"])  # windows tile the epoch: 0.1 s apart, more across a gap
    assert (step > 0.1 - 1e-6).all() and np.isclose(step, 0.1).mean() > 0.99
    assert main(args) == 2 and "exists; pass --overwrite" in capsys.readouterr().err
    assert main(["decode", "--model", str(pretrained), "--data", str(shared_data(A2929)), "--output",
                 str(tmp_path / "x.csv")]) == 2
    assert "is not a fine-tuned decoder" in capsys.readouterr().err
    assert main(args[:-1] + [str(tmp_path / "x.tsv")]) == 2
    assert "expected a file name ending in .csv" in capsys.readouterr().err
    assert main(args[:-1] + [str(tmp_path / "x.csv"), "--figure", str(tmp_path / "x.json")]) == 2
    assert "--figure" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x.tsv").exists()
    # new folders are created, as check_writable_parent lets them through (the CSV and the figure
    # failed after the decoding with "[Errno 2] No such file or directory: '.../.x.csv.<pid>.tmp'"):
    # the decode above wrote into new/a/ and new2/, which did not exist before it
    assert out.parent.name == "a" and out.parent.parent.name == "new" and png.parent.name == "new2"
    assert out.read_text().startswith("window_start_s,") and png.read_bytes()[:4] == b"\x89PNG"


def test_finetune_ignores_output_attentions_and_return_dict_saved_in_the_checkpoint(finetuned, pretrained, a2929,
                                                                                      tmp_path):
    """A pretrained checkpoint saved with output_attentions / output_hidden_states True and return_dict
    False (after from_pretrained(path, output_attentions=True) for a figure) fine-tunes as the plain one:
    Trainer calls model(**inputs), which read them from the config, trained with eager attention and
    failed in evaluation gathering attention weights of windows of other lengths."""
    import shutil

    src = tmp_path / "pre"
    shutil.copytree(pretrained, src)
    cfg = json.loads((src / "config.json").read_text())
    cfg.update(output_attentions=True, output_hidden_states=True, return_dict=False)
    (src / "config.json").write_text(json.dumps(cfg))
    targets = [DecodingTarget("ry", "circular"), DecodingTarget("x", "regression")]
    with pytest.warns(UserWarning, match="resets output_attentions") as got:
        m = finetune(src, a2929, targets, output_dir=tmp_path / "dec", max_steps=4, eval_steps=2, batch_size=16, seed=0)
    # finetune's own warning points at its caller's line, not into the package
    assert [w.filename for w in got if "resets output_attentions" in str(w.message)] == [__file__]
    base = finetuned[1]
    keys = [k for k in base if k.startswith(("validation/", "test/"))]
    # text and null entries (test/ci95_blocks, a null interval) compared exactly: pytest 9.2's approx
    # raises TypeError on an expected value without abs() when a relative tolerance is given
    exact = [k for k in keys if base[k] is None or isinstance(base[k], str)]
    assert {k: m[k] for k in exact} == {k: base[k] for k in exact}
    keys = [k for k in keys if k not in exact]
    assert keys and {k: m[k] for k in keys} == pytest.approx({k: base[k] for k in keys}, rel=1e-5, nan_ok=True)
    # build_trainer on a decoder whose config asks for attention weights and tuples: evaluate as without
    out = finetuned[0]
    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(out)
    tok = nf.NeuroformerTokenizer.from_pretrained(out)
    plan = nf.windows.SplitPlan.from_dict(json.loads((out / "splits.json").read_text()))
    dsd, _ = build_decoding_datasets(a2929, tok, model.config, plan, expand_columns(a2929, targets))
    plain = build_trainer(model, None, dsd["test"], tmp_path / "ev0", per_device_eval_batch_size=16).evaluate()
    shutil.copytree(out, tmp_path / "asks")
    cfg = json.loads((tmp_path / "asks" / "config.json").read_text())
    cfg.update(output_attentions=True, output_hidden_states=True, return_dict=False)
    (tmp_path / "asks" / "config.json").write_text(json.dumps(cfg))
    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(tmp_path / "asks")
    asked = build_trainer(model, None, dsd["test"], tmp_path / "ev1", per_device_eval_batch_size=16).evaluate()
    keys = [k for k in plain if not k.endswith(("_runtime", "_per_second", "_time"))]
    assert {k: asked[k] for k in keys} == pytest.approx({k: plain[k] for k in keys}, rel=1e-5, nan_ok=True)


def test_saved_decoder_reloads_with_same_predictions_and_test_metrics(finetuned, a2929):
    from transformers import AutoModelForSequenceClassification

    import stat

    out, m = finetuned
    # readable like config.json beside it (safetensors 0.8 writes its files 0600)
    assert stat.S_IMODE((out / "model.safetensors").stat().st_mode) == stat.S_IMODE((out / "config.json").stat().st_mode)
    model, info = nf.NeuroformerForBehaviorDecoding.from_pretrained(out, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    auto = AutoModelForSequenceClassification.from_pretrained(out)
    assert type(auto) is nf.NeuroformerForBehaviorDecoding
    tok = nf.NeuroformerTokenizer.from_pretrained(out)
    plan = nf.windows.SplitPlan.from_dict(json.loads((out / "splits.json").read_text()))
    targets = [DecodingTarget("ry", "circular"), DecodingTarget("x", "regression")]
    dsd, _ = build_decoding_datasets(a2929, tok, model.config, plan, targets)
    batch = DecodingCollator(["target_ry", "target_x"])([dsd["test"][i] for i in range(len(dsd["test"]))])
    with torch.no_grad():
        p1 = model.eval()(**batch).predictions.numpy()
        p2 = auto.eval()(**batch).predictions.numpy()
    np.testing.assert_array_equal(p1, p2)
    y = batch["labels"].numpy()
    assert decoding_metrics(y[:, 1], p1[:, 1], "regression")["r2"] == pytest.approx(m["test/x/r2"], rel=1e-4, abs=1e-6)
    err = decoding_metrics(y[:, 0], p1[:, 0], "circular")["mean_angular_error_rad"]
    assert err == pytest.approx(m["test/ry/mean_angular_error_rad"], rel=1e-4)
    # save_pretrained / from_pretrained round-trip of an untrained multitask decoder
    model2 = nf.NeuroformerForBehaviorDecoding(copy.deepcopy(model.config)).eval()
    model2.save_pretrained(out.parent / "again")
    model3 = nf.NeuroformerForBehaviorDecoding.from_pretrained(out.parent / "again").eval()
    assert model3.config.decoding_targets == model2.config.decoding_targets
    with torch.no_grad():
        torch.testing.assert_close(model2(**batch).logits, model3(**batch).logits, rtol=0, atol=0)


def test_circular_figures_follow_the_recorded_convention_not_the_wrapped_labels(a2929, pretrained):
    """plot_decoding drew a circular target in [0, 360) only when every window label lay in [0, pi):
    the labels are wrapped to [-pi, pi), so A2929's ry (recorded in [0, 2 pi)) came out in
    [-180, 180) as soon as one window pointed past 180 degrees, and an angle recorded in
    [-pi, pi) in [0, 360) when the test windows all pointed in [0, 180). The range is now the
    recording's convention, recorded_range_deg, saved in config.decoding_targets by target_dicts."""
    from hf_neuroformer.decoding import circular_range_deg
    from hf_neuroformer.plotting import PlottingInputError, plot_decoding

    assert np.nanmin(a2929.behaviour["ry"].values) >= 0
    tok = nf.NeuroformerTokenizer.from_pretrained(pretrained)
    cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
    targets = [DecodingTarget("ry", "circular"), DecodingTarget("x", "regression")]
    dsd, report = build_decoding_datasets(a2929, tok, cfg, None, targets)
    td = target_dicts(targets, report)
    assert td[0]["recorded_range_deg"] == [0.0, 360.0] and "recorded_range_deg" not in td[1]
    y = np.asarray(dsd["test"]["target_ry"], dtype=np.float64)[:, None]
    assert y.min() < 0  # the labels are wrapped: their sign does not tell the convention
    fig = plot_decoding(np.asarray(dsd["test"]["window_start"]), y, y, td[:1])
    assert fig.axes[0].get_ylim() == (-5, 365)
    np.testing.assert_allclose(np.sort(fig.axes[0].get_lines()[0].get_ydata()), np.sort(np.degrees(y[:, 0]) % 360))
    # an angle recorded in [-pi, pi) whose windows all point in [0, 180): still [-180, 180)
    assert circular_range_deg([-3.0, 0.5, np.nan]) == [-180.0, 180.0] and circular_range_deg([]) == [-180.0, 180.0]
    half = np.array([[0.2], [1.5], [3.0]])
    target = {"name": "hd", "kind": "circular", "recorded_range_deg": circular_range_deg([-3.0, 0.5])}
    assert plot_decoding(np.arange(3.0), half, half, [target]).axes[0].get_ylim() == (-185, 185)
    # a model saved without it: the wrapped labels' own range
    assert plot_decoding(np.arange(3.0), half, half, [{"name": "hd", "kind": "circular"}]).axes[0].get_ylim() == (-185, 185)
    with pytest.raises(PlottingInputError, match=r"targets\[0\]\.recorded_range_deg: expected \[0, 360\]"):
        plot_decoding(np.arange(3.0), half, half, [dict(target, recorded_range_deg=[0, 2 * np.pi])])


@pytest.mark.parametrize("generative_loss_weight", [0.0, 0.5])
def test_gradient_accumulation_4_equals_one_4x_batch(a2929, pretrained, tmp_path, generative_loss_weight):
    """One SGD step on 13 windows: micro-batches of 4, 4, 4 and 1 with gradient_accumulation_steps=4
    against one batch of 13. The model normalises by Trainer's num_items_in_batch (the step's label
    entries, accepts_loss_kwargs), so Trainer does not divide again and the short last micro-batch
    weighs by its windows, not as a quarter of the step (a mean of micro-batch means would).
    With the auxiliary next-spike loss too (break test): each micro-batch's per-token mean was
    weighted by its share of the windows, which differs from the step's per-token mean when the
    micro-batches hold different numbers of spikes (the weights differed by up to 0.0145); the
    step's token counts now normalise it."""
    tok = nf.NeuroformerTokenizer.from_pretrained(pretrained)
    cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
    targets = [DecodingTarget("ry", "circular"), DecodingTarget("x", "regression", weight=0.5)]
    dsd, report = build_decoding_datasets(a2929, tok, cfg, None, targets)
    ds13 = dsd["train"].select(range(200, 213))
    tdicts = target_dicts(targets, report)
    weights, first_loss = {}, {}
    for bs, ga in ((13, 1), (4, 4)):
        model = nf.NeuroformerForBehaviorDecoding.from_pretrained(
            pretrained, decoding_targets=tdicts, hidden_dropout=0.0,
            decoding_generative_loss_weight=generative_loss_weight)
        torch.manual_seed(0)
        for head in model.decoding_heads:  # same head init in both runs
            for p in head.parameters():
                torch.nn.init.normal_(p, 0, 0.1)
        before = {k: v.detach().clone() for k, v in model.named_parameters()}
        trainer = build_trainer(model, ds13, None, tmp_path / f"ga{ga}", per_device_train_batch_size=bs,
                                gradient_accumulation_steps=ga, max_steps=1, learning_rate=1.0, optim="sgd",
                                lr_scheduler_type="constant", max_grad_norm=0.0, weight_decay=0.0, seed=0,
                                save_strategy="no", logging_steps=1)
        assert trainer.model_accepts_loss_kwargs
        trainer.train()
        weights[ga] = {k: v.detach().clone() for k, v in model.named_parameters()}
        first_loss[ga] = trainer.state.log_history[0]["loss"]
        moved = max((weights[ga][k] - before[k]).abs().max().item() for k in before)
        assert moved > 1e-3
    diff = max((weights[1][k] - weights[4][k]).abs().max().item() for k in weights[1])
    assert diff < 1e-5, diff
    assert first_loss[4] == pytest.approx(first_loss[1], rel=1e-4)


def test_freeze_backbone_steps_trains_only_the_new_modules_first_then_everything(a2929, pretrained, tmp_path):
    """Linear probing then fine-tuning: for the first 2 of 4 AdamW steps the backbone and its
    next-spike heads (which the auxiliary loss reaches) keep their loaded values exactly, weight
    decay included, while the new head and attentive read-out train; from step 3 everything moves."""
    from transformers import TrainerCallback

    from hf_neuroformer.finetuning import is_new_module_parameter

    targets = [DecodingTarget("x", "regression")]
    dsd, report = _x_windows(a2929, pretrained)
    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(
        pretrained, decoding_targets=target_dicts(targets, report), decoding_pool="attention",
        decoding_generative_loss_weight=0.5)
    names = [n for n, _ in model.named_parameters()]
    new = [n for n in names if is_new_module_parameter(n)]
    assert any(n.startswith("attention_pool.") for n in new) and any(n.startswith("decoding_heads.") for n in new)
    assert any(n.startswith("id_head") for n in names if n not in new)
    snapshots = [{k: v.detach().clone() for k, v in model.named_parameters()}]

    class Snapshot(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            snapshots.append({k: v.detach().clone() for k, v in model.named_parameters()})

    trainer = build_trainer(model, dsd["train"].select(range(64)), None, tmp_path / "t", freeze_backbone_steps=2,
                            per_device_train_batch_size=16, max_steps=4, learning_rate=1e-2, weight_decay=0.1,
                            save_strategy="no", seed=0)
    trainer.add_callback(Snapshot())
    trainer.train()
    assert len(snapshots) == 5

    def moved(step, which):
        return max((snapshots[step][k] - snapshots[step - 1][k]).abs().max().item() for k in which)

    backbone = [n for n in names if n not in new]
    for step in (1, 2):
        assert moved(step, backbone) == 0.0, step
        assert moved(step, new) > 1e-4, step
    for step in (3, 4):
        assert moved(step, backbone) > 1e-4, step
    # the frozen steps' gradients were dropped: AdamW's estimates for the backbone start at step 3
    state, params = trainer.optimizer.state, dict(model.named_parameters())
    assert {float(state[params[n]]["step"]) for n in backbone} == {2.0}
    assert {float(state[params[n]]["step"]) for n in new} == {4.0}


def _x_decoder(a2929, pretrained):
    """The decoding datasets of position ``x`` and a decoder of ``pretrained`` for them."""
    targets = [DecodingTarget("x", "regression")]
    dsd, report = _x_windows(a2929, pretrained)
    return dsd, nf.NeuroformerForBehaviorDecoding.from_pretrained(
        pretrained, decoding_targets=target_dicts(targets, report), decoding_pool="attention")


def _weights_each_step():
    """A list and a callback that appends the optimizer's weights after each step (before the
    step's evaluation or save) to it."""
    from transformers import TrainerCallback

    raw = []

    class Snapshot(TrainerCallback):
        def on_optimizer_step(self, args, state, control, model=None, **kwargs):
            raw.append({k: v.detach().clone() for k, v in model.named_parameters()})

    return raw, Snapshot()


def test_ema_decay_evaluates_and_saves_the_bias_corrected_average_of_the_steps_weights(a2929, pretrained, tmp_path):
    """Polyak averaging (``ema_decay``): each checkpoint holds the bias-corrected exponential moving
    average of the weights after steps 1..t, (d**2 theta_1 + d theta_2 + theta_3) / (1 + d + d**2)
    at step 3, computed here by hand from the training weights; the training itself (the weights
    each optimizer step makes) is the same as without averaging; after training the model holds the
    average. Before, build_trainer and finetune had no such option (the last step's weights)."""
    from safetensors.torch import load_file

    dsd, model = _x_decoder(a2929, pretrained)
    d = 0.5

    def run(name, **kw):
        raw, snapshot = _weights_each_step()

        m = copy.deepcopy(model)
        trainer = build_trainer(m, dsd["train"].select(range(48)), None, tmp_path / name, per_device_train_batch_size=16,
                                max_steps=3, learning_rate=1e-2, seed=0, **kw)
        trainer.add_callback(snapshot)
        trainer.train()
        return m, raw

    plain, raw_plain = run("plain", save_strategy="no")
    averaged, raw = run("ema", ema_decay=d, save_strategy="steps", save_steps=1)
    assert len(raw) == len(raw_plain) == 3
    for a, b in zip(raw, raw_plain):
        assert all(torch.equal(a[k], b[k]) for k in a)
    expected = {1: raw[0],
                2: {k: (d * raw[0][k] + raw[1][k]) / (1 + d) for k in raw[0]},
                3: {k: (d * d * raw[0][k] + d * raw[1][k] + raw[2][k]) / (1 + d + d * d) for k in raw[0]}}
    for step, want in expected.items():
        saved = load_file(tmp_path / "ema" / f"checkpoint-{step}" / "model.safetensors")
        shared = sorted(set(saved) & set(want))
        assert len(shared) > 10
        for k in shared:
            torch.testing.assert_close(saved[k], want[k], rtol=1e-5, atol=1e-6)
    params = dict(averaged.named_parameters())
    moved = max((expected[3][k] - raw[2][k]).abs().max().item() for k in raw[2])
    assert moved > 1e-4  # the average is not the last step's weights ...
    for k in raw[2]:  # ... and it is what the model holds after training
        torch.testing.assert_close(params[k].detach(), expected[3][k], rtol=1e-5, atol=1e-6)
    # an evaluation / save at an epoch's end (here step 3 = 48 windows) sees the average too
    run("epoch", ema_decay=d, save_strategy="epoch")
    saved = load_file(tmp_path / "epoch" / "checkpoint-3" / "model.safetensors")
    for k in sorted(set(saved) & set(expected[3])):
        torch.testing.assert_close(saved[k], expected[3][k], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"ema_decay: expected None \(off\) or a number in \(0, 1\).*got 1"):
        build_trainer(copy.deepcopy(model), dsd["train"], None, tmp_path / "bad", ema_decay=1)


def test_ema_decay_resumes_from_the_training_weights_and_the_average(a2929, pretrained, tmp_path):
    """Break test: a checkpoint of a run with ema_decay holds the averaged weights, and a run resumed
    from it trained on from them (not the step's training weights; 8.8e-3 off at the next step) and
    started the average again. Now the training weights and the average are saved beside the
    checkpoint and restored: resumed at step 2, steps 3-4 train and average exactly as without the stop."""
    from safetensors.torch import load_file

    from hf_neuroformer.finetuning import WEIGHT_AVERAGE_FILE

    dsd, model = _x_decoder(a2929, pretrained)

    def run(name, resume=None):
        raw, snapshot = _weights_each_step()

        trainer = build_trainer(copy.deepcopy(model), dsd["train"].select(range(64)), None, tmp_path / name,
                                per_device_train_batch_size=16, max_steps=4, learning_rate=1e-2, seed=0, ema_decay=0.5,
                                save_strategy="steps", save_steps=2, save_only_model=False)
        trainer.add_callback(snapshot)
        trainer.train(resume_from_checkpoint=resume)
        return raw

    whole = run("whole")
    assert (tmp_path / "whole" / "checkpoint-2" / WEIGHT_AVERAGE_FILE).is_file()
    resumed = run("resumed", resume=str(tmp_path / "whole" / "checkpoint-2"))
    assert len(resumed) == 2
    for k in whole[-1]:  # the training weights of step 4
        torch.testing.assert_close(resumed[-1][k], whole[-1][k], rtol=0, atol=1e-7)
    a, b = (load_file(tmp_path / n / "checkpoint-4" / "model.safetensors") for n in ("whole", "resumed"))
    for k in a:  # the average after step 4
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-7)


def test_ema_decay_of_bfloat16_weights_follows_small_steps():
    """Break test: the average was kept in the parameters' dtype; for bfloat16 weights (a model cast
    with .to(torch.bfloat16)) a step of weight 1 - 0.99 moved it by less than half its spacing near 1
    (2**-7), so the average stayed at 1.0 while the weights sat one spacing above it for 500 steps
    (float32 would be 1.0078). It is now kept in float32 at least, and copied into the model in its dtype."""
    from transformers import TrainerControl, TrainerState

    from hf_neuroformer.finetuning import WeightAverage

    model = torch.nn.Linear(1, 1).to(torch.bfloat16)
    with torch.no_grad():
        model.weight.fill_(1.0)
    average, control, state = WeightAverage(0.99), TrainerControl(), TrainerState()
    average.on_train_begin(None, state, control, model=model)
    for step in range(600):
        average.on_step_begin(None, state, control, model=model)
        with torch.no_grad():  # the training weights: 1.0 for 100 steps, then one bfloat16 spacing above
            model.weight.fill_(1.0 if step < 100 else 1.0078125)
        control.should_save = step == 599
        average.on_step_end(None, state, control, model=model)
    assert model.weight.dtype == torch.bfloat16 and model.weight.item() == 1.0078125  # the average, rounded
    # the bias-corrected average: the first 100 steps weigh (d**500 - d**600) / (1 - d**600) of the whole
    d = 0.99
    assert average.average["weight"].item() == pytest.approx(1.0078125 - 0.0078125 * (d**500 - d**600) / (1 - d**600),
                                                             rel=1e-6)


def _spike_tokens(ids, bos=1, eos=2):
    ids = np.asarray(ids)
    return ids[(ids != bos) & (ids != eos)]


def test_spike_dropout_thins_the_training_batches_only(a2929, pretrained, tmp_path):
    """``spike_dropout=p`` (plan 7, augmentation of the training windows): every spike token of the
    current and past windows of a training batch is dropped with probability p, BOS / EOS and padding
    never; the kept tokens keep their order and dt bins, EOS takes the last kept token's bin, and the
    padding, attention masks and next-spike labels are those of the thinned windows. Validation
    batches are the plain collator's; p = 0 gives the plain batches and no wrapper; the global random
    streams are untouched. Before, build_trainer had no such option."""
    from hf_neuroformer.finetuning import SpikeDropout

    dsd, model = _x_decoder(a2929, pretrained)
    train_ds, val_ds = dsd["train"].select(range(64)), dsd["validation"].select(range(16))
    rows = [train_ds[i] for i in range(len(train_ds))]
    off = build_trainer(model, train_ds, val_ds, tmp_path / "off", per_device_train_batch_size=16, seed=0)
    plain = off.data_collator
    assert off.spike_dropout is None and build_trainer(model, train_ds, val_ds, tmp_path / "zero",
                                                       spike_dropout=0.0).spike_dropout is None
    same = SpikeDropout(plain, 0.0)(rows[:16])
    want = plain(rows[:16])
    assert set(same) == set(want) and all(torch.equal(same[k], want[k]) for k in want)

    p = 0.2
    on = build_trainer(model, train_ds, val_ds, tmp_path / "on", per_device_train_batch_size=16,
                       per_device_eval_batch_size=16, seed=0, spike_dropout=p)
    assert isinstance(on.spike_dropout, SpikeDropout) and on.spike_dropout.p == p
    n_spikes = n_kept = 0
    for _ in range(2):  # two passes over the 64 windows (about 1800 spike tokens each): new masks each time
        for batch in on.get_train_dataloader():
            ids, am = batch["input_ids"], batch["attention_mask"]
            pids, pam = batch["past_input_ids"], batch["past_attention_mask"]
            assert torch.equal(ids == plain.pad, am == 0) and torch.equal(pids == plain.pad, pam == 0)
            assert torch.equal(batch["token_labels"], ids.masked_fill(am == 0, -100))
            real = (am == 1) & (ids != plain.bos) & (ids != plain.eos)
            assert torch.equal(batch["dt_labels"] != -100, real)
            assert (am.sum(1) >= 1).all() and am.shape[1] == int(am.sum(1).max())  # no column of padding only
            n_kept += int(real.sum()) + int(((pam == 1) & (pids != plain.bos)).sum())
        n_spikes += sum(len(_spike_tokens(r["input_ids"])) + len(_spike_tokens(r["past_input_ids"])) for r in rows)
    share = 1 - n_kept / n_spikes
    assert n_spikes > 3000 and abs(share - p) < 4 * (p * (1 - p) / n_spikes) ** 0.5, (share, n_spikes)
    assert on.spike_dropout.n_spike_tokens == n_spikes
    assert on.spike_dropout.n_dropped == n_spikes - n_kept
    # the record: these counts in this process; with dataloader workers (which thin the batches in their own
    # processes, whose counts never come back) no count at all, said so, rather than 0 (it read 0 before)
    from hf_neuroformer.finetuning import finetune_training_settings
    rec = finetune_training_settings(on.args, spike_dropout=on.spike_dropout)["spike_dropout_tokens"]
    assert rec == {"spikes": n_spikes, "dropped": n_spikes - n_kept}
    workers = copy.copy(on.args)
    workers.dataloader_num_workers = 2
    rec = finetune_training_settings(workers, spike_dropout=on.spike_dropout)["spike_dropout_tokens"]
    assert rec["spikes"] is None and rec["dropped"] is None and "2 dataloader worker processes" in rec["note"]

    # one window at a time: a subsequence of its tokens, dt bins kept, EOS at the last kept token's bin
    thin = SpikeDropout(plain, 0.5, seed=1)
    for row in rows:
        got = thin.thin(row)
        for ids_key, dt_key in (("input_ids", "dt_ids"), ("past_input_ids", "past_dt_ids")):
            pairs, kept = list(zip(row[ids_key], row[dt_key])), list(zip(got[ids_key], got[dt_key]))
            it = iter(pairs)
            assert all(any(k == q for q in it) for k in kept[:-1] if k[0] != plain.eos)  # in order, bins kept
            assert kept[0] == pairs[0] and kept[0][0] == plain.bos
        if row["input_ids"][-1] == plain.eos:
            assert got["input_ids"][-1] == plain.eos and got["dt_ids"][-1] == got["dt_ids"][-2]
        assert {k: v for k, v in got.items() if "ids" not in k} == {k: v for k, v in row.items() if "ids" not in k}
    # the global random streams are those of a run without it (it draws from its own generator)
    draws = []
    for call in (False, True):
        torch.manual_seed(5)
        np.random.seed(5)
        if call:
            SpikeDropout(plain, 0.5)(rows)
        draws.append((torch.rand(3).tolist(), np.random.random(3).tolist()))
    assert draws[0] == draws[1]

    # evaluation batches: the plain collator's, in order
    eval_batches = list(on.get_eval_dataloader())
    want = plain([val_ds[i] for i in range(len(val_ds))])
    assert len(eval_batches) == 1 and set(eval_batches[0]) == set(want)
    assert all(torch.equal(eval_batches[0][k], want[k]) for k in want)
    with pytest.raises(ValueError, match=r"spike_dropout: expected .* a number in \[0, 1\) \(0: off\), got 1"):
        build_trainer(model, train_ds, None, tmp_path / "bad", spike_dropout=1)
    with pytest.raises(ValueError, match=r"spike_dropout: the collator must be a NeuroformerCollator .* got function"):
        build_trainer(model, train_ds, None, tmp_path / "bad", spike_dropout=0.1, collator=lambda rows: plain(rows))


def test_finetune_with_spike_dropout_records_it(a2929, pretrained, tmp_path):
    """finetune(spike_dropout=p) thins the training batches and records p and the spike tokens held and
    dropped (metrics.json -> training; that evaluation batches stay whole is checked through build_trainer
    above). A bad p is refused before the output folder is made. Before, finetune had no such option."""
    out = tmp_path / "thinned"
    targets = [DecodingTarget("x", "regression")]
    with pytest.raises(ValueError, match=r"spike_dropout: expected .* in \[0, 1\) \(0: off\), got -0.1"):
        finetune(pretrained, a2929, targets, output_dir=out, max_steps=2, spike_dropout=-0.1)
    assert not out.exists()
    metrics = finetune(pretrained, a2929, targets, output_dir=out, max_steps=2, eval_steps=2, batch_size=16,
                       spike_dropout=0.25)
    training = json.loads((out / "metrics.json").read_text())["training"]
    assert training["spike_dropout"] == 0.25 and training == metrics["training"]
    tokens = training["spike_dropout_tokens"]
    assert tokens["spikes"] > 300 and 0.15 < tokens["dropped"] / tokens["spikes"] < 0.35, tokens


def test_anchor_decay_pulls_the_pretrained_weights_towards_their_start_after_each_step(a2929, pretrained, tmp_path):
    """``anchor_decay`` (plan 8, decoupled L2-SP): the optimiser's step is the same as without it, then every
    pretrained parameter moves by ``lr * decay`` of its distance to its value before training, while the new
    heads and read-out keep the optimiser's step. Checked on step 1 (both runs start from the same weights and
    batch, so the plain run's weights are the optimiser's step of the anchored one) with a pull of 0.5, and over
    4 steps with a pull of 0.999, where the backbone ends almost where it started and the heads still move.
    Before, build_trainer had no such option."""
    from hf_neuroformer.finetuning import PretrainedAnchor, is_new_module_parameter

    dsd, model = _x_decoder(a2929, pretrained)
    start = {k: v.detach().clone() for k, v in model.named_parameters()}
    lr = 1e-2

    def run(name, steps, **kw):
        raw, snapshot = _weights_each_step()
        m = copy.deepcopy(model)
        trainer = build_trainer(m, dsd["train"].select(range(64)), None, tmp_path / name, per_device_train_batch_size=16,
                                max_steps=steps, learning_rate=lr, lr_scheduler_type="constant", seed=0,
                                save_strategy="no", **kw)
        trainer.add_callback(snapshot)  # after the anchor: it sees the pulled weights
        trainer.train()
        return trainer, raw

    plain, raw_plain = run("plain", 1)
    assert plain.anchor is None
    anchored, raw = run("anchored", 1, anchor_decay=0.5 / lr)
    assert isinstance(anchored.anchor, PretrainedAnchor) and anchored.anchor.decay == 0.5 / lr
    backbone = [k for k in start if not is_new_module_parameter(k)]
    heads = [k for k in start if is_new_module_parameter(k)]
    assert len(backbone) > 10 and heads
    moved = max((raw_plain[0][k] - start[k]).abs().max().item() for k in backbone)
    assert moved > 1e-3
    for k in backbone:  # half of the optimiser's move is undone
        torch.testing.assert_close(raw[0][k], start[k] + 0.5 * (raw_plain[0][k] - start[k]), rtol=1e-5, atol=1e-7)
    for k in heads:
        torch.testing.assert_close(raw[0][k], raw_plain[0][k], rtol=0, atol=0)

    _, raw_plain = run("plain4", 4)
    _, raw = run("anchored4", 4, anchor_decay=0.999 / lr)
    drift = max((raw[-1][k] - start[k]).abs().max().item() for k in backbone)
    drift_plain = max((raw_plain[-1][k] - start[k]).abs().max().item() for k in backbone)
    assert drift < 0.01 * drift_plain, (drift, drift_plain)
    assert max((raw[-1][k] - start[k]).abs().max().item() for k in heads) > 0.5 * lr
    with pytest.raises(ValueError, match=r"anchor_decay: expected None \(off\) or a number > 0.*got 0"):
        build_trainer(copy.deepcopy(model), dsd["train"], None, tmp_path / "bad", anchor_decay=0)
    with pytest.raises(ValueError, match=r"anchor_decay: expected learning_rate \* anchor_decay < 1.*got 100"):
        build_trainer(copy.deepcopy(model), dsd["train"], None, tmp_path / "bad", learning_rate=lr, anchor_decay=100)


def test_finetune_with_anchor_decay_records_it(a2929, pretrained, tmp_path):
    """finetune(anchor_decay=...) records the pull (metrics.json -> training) and refuses a bad one, or one whose
    product with the learning rate reaches 1, before the output folder is made."""
    out = tmp_path / "anchored"
    targets = [DecodingTarget("x", "regression")]
    with pytest.raises(ValueError, match=r"anchor_decay: expected None \(off\) or a number > 0.*got -1"):
        finetune(pretrained, a2929, targets, output_dir=out, max_steps=2, anchor_decay=-1)
    with pytest.raises(ValueError, match=r"anchor_decay: expected learning_rate \* anchor_decay < 1"):
        finetune(pretrained, a2929, targets, output_dir=out, max_steps=2, learning_rate=1e-3, anchor_decay=1000.0)
    assert not out.exists()
    metrics = finetune(pretrained, a2929, targets, output_dir=out, max_steps=2, eval_steps=2, batch_size=16,
                       anchor_decay=4.0)
    training = json.loads((out / "metrics.json").read_text())["training"]
    assert training["anchor_decay"] == 4.0 and training == metrics["training"]
    plain = finetune(pretrained, a2929, targets, output_dir=tmp_path / "plain", max_steps=2, eval_steps=2, batch_size=16)
    assert "anchor_decay" not in plain["training"]


def test_finetune_with_ema_decay_saves_the_averaged_checkpoint_it_selected(a2929, pretrained, tmp_path):
    """finetune(ema_decay=...) keeps the validation-selected checkpoint, which holds averaged weights,
    as the decoder: the saved file equals that checkpoint's, load_decoder reads it back unchanged
    and scores the validation windows as metrics.json says; ema_decay is recorded. A bad decay is
    refused before the output folder is made."""
    from safetensors.torch import load_file

    from hf_neuroformer.finetuning import load_decoder

    out = tmp_path / "ema"
    targets = [DecodingTarget("x", "regression")]
    with pytest.raises(ValueError, match=r"ema_decay: expected None \(off\) or a number in \(0, 1\)"):
        finetune(pretrained, a2929, targets, output_dir=out, max_steps=4, ema_decay=0.0)
    assert not out.exists()
    metrics = finetune(pretrained, a2929, targets, output_dir=out, max_steps=4, eval_steps=2, batch_size=16,
                       ema_decay=0.5, keep_checkpoints=True)
    assert metrics["training"]["ema_decay"] == 0.5
    assert json.loads((out / "metrics.json").read_text())["training"]["ema_decay"] == 0.5
    kept = load_file(out / "model.safetensors")
    best = load_file(out / "checkpoints" / f"checkpoint-{metrics['best_step']}" / "model.safetensors")
    assert set(kept) == set(best) and all(torch.equal(kept[k], best[k]) for k in kept)
    decoder, tok, plan = load_decoder(out)
    state = decoder.state_dict()
    assert all(torch.equal(state[k], kept[k]) for k in kept)
    dsd, _ = build_decoding_datasets(a2929, tok, decoder.config, plan, targets)
    trainer = build_trainer(decoder, dsd["train"], dsd["validation"], tmp_path / "re", per_device_eval_batch_size=64)
    again = trainer.evaluate(metric_key_prefix="validation")
    assert again["validation_x/r2"] == pytest.approx(metrics["validation/x/r2"], rel=1e-5)


def test_a_frozen_backbone_neither_clips_the_new_heads_step_nor_hides_its_learning_rate(a2929, pretrained, tmp_path):
    """Break test: while the backbone was frozen its gradients were still computed and kept, so
    gradient clipping (max_grad_norm) measured them with the new modules' and scaled the heads'
    step down by a norm they did not own. Now, at the optimizer step (after clipping), a frozen
    backbone has no gradients and the heads' clipped gradients have exactly max_grad_norm's norm;
    once the backbone trains, the whole model's do. The training log names the backbone's rate
    (0 while frozen), since ``learning_rate`` is that of the first group, the heads'."""
    from transformers import TrainerCallback

    from hf_neuroformer.finetuning import is_new_module_parameter

    targets = [DecodingTarget("x", "regression")]
    dsd, report = _x_windows(a2929, pretrained)
    seen = []

    class AtStep(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
            grads = {n: p.grad for n, p in model.named_parameters()}
            new = [g for n, g in grads.items() if is_new_module_parameter(n)]
            seen.append({
                "backbone_grads": sum(g is not None for n, g in grads.items() if not is_new_module_parameter(n)),
                "heads_norm": torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in new])).item(),
                "all_norm": torch.linalg.vector_norm(torch.stack(
                    [torch.linalg.vector_norm(g) for g in grads.values() if g is not None])).item(),
            })

    # with the auxiliary next-spike loss, which reaches the backbone and its next-spike heads
    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(
        pretrained, decoding_targets=target_dicts(targets, report), decoding_pool="attention",
        decoding_generative_loss_weight=0.5)
    trainer = build_trainer(model, dsd["train"].select(range(64)), None, tmp_path / "partly", max_steps=4,
                            freeze_backbone_steps=2, per_device_train_batch_size=16, learning_rate=1e-2,
                            lr_scheduler_type="constant", max_grad_norm=0.01, save_strategy="no", seed=0,
                            logging_steps=1)
    trainer.add_callback(AtStep())
    trainer.train()
    lines = [e for e in trainer.state.log_history if "learning_rate" in e]
    assert all(e["grad_norm"] > 0.02 for e in lines)  # clipping acted at every step
    for step in (0, 1):  # frozen: the heads' norm alone was clipped to 0.01 (old code: 0.0094, the backbone's counted)
        assert seen[step]["backbone_grads"] == 0, seen[step]
        assert seen[step]["heads_norm"] == pytest.approx(0.01, rel=1e-4), seen[step]
    for step in (2, 3):  # the backbone trains: the whole model's norm is clipped
        assert seen[step]["backbone_grads"] > 10
        assert seen[step]["all_norm"] == pytest.approx(0.01, rel=1e-4) and seen[step]["heads_norm"] < 0.0099
    assert [e["learning_rate"] for e in lines] == [1e-2] * 4
    assert [e["backbone_learning_rate"] for e in lines] == [0.0, 0.0, 1e-2, 1e-2]
    # without a freeze the log is Trainer's own
    trainer = build_trainer(model, dsd["train"].select(range(16)), None, tmp_path / "plain", max_steps=1,
                            per_device_train_batch_size=16, save_strategy="no")
    trainer.train()
    assert not any("backbone_learning_rate" in e for e in trainer.state.log_history)


def test_finetune_with_the_backbone_frozen_throughout_keeps_the_pretrained_weights(a2929, pretrained, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "probe"
    metrics = finetune(pretrained, a2929, [DecodingTarget("x", "regression")], output_dir=out, max_steps=3,
                       eval_steps=3, batch_size=16, freeze_backbone_steps=3)
    assert metrics["freeze_backbone_steps"] == 3
    assert json.loads((out / "metrics.json").read_text())["freeze_backbone_steps"] == 3
    # the optimisation settings are kept (metrics.json had no learning rate, so the card could not show it)
    assert metrics["training"] == {
        "optimizer": "adamw_torch", "learning_rate": 5e-4, "lr_scheduler_type": "linear", "lr_scheduler_kwargs": {},
        "adam_beta1": 0.9, "adam_beta2": 0.999, "adam_epsilon": 1e-8, "warmup_steps": 0,
        "weight_decay": 0.01, "max_grad_norm": 1.0, "batch_size": 16, "per_device_train_batch_size": 16,
        "gradient_accumulation_steps": 1, "world_size": 1, "max_steps": 3, "eval_steps": 3, "seed": 0,
        "data_seed": 0, "auto_find_batch_size": False, "generative_loss_weight": 0.0, "freeze_backbone_steps": 3}
    before, after = load_file(pretrained / "model.safetensors"), load_file(out / "model.safetensors")
    shared = sorted(set(before) & set(after))
    assert len(shared) > 10
    assert all(torch.equal(before[k], after[k]) for k in shared)
    assert any(k.startswith("decoding_heads.") for k in set(after) - set(before))

    # the model card says so: "Fine-tuned from the pretrained model" alone read as if the backbone had trained
    from hf_neuroformer.hub import build_model_card, save_for_hub

    stage = tmp_path / "stage"
    stage.mkdir()
    staged = save_for_hub(out, stage)
    text = str(build_model_card(stage, "lab/probe", staged))
    assert ("- Backbone frozen throughout (3 of 3 steps, `freeze_backbone_steps`): only the decoding heads trained; "
            "the backbone is the pretrained one, unchanged") in text
    assert "- Fine-tuning configuration (`metrics.json`, `training`):" in text and '"learning_rate": 0.0005' in text
    partly = str(build_model_card(stage, "lab/probe", {**staged, "freeze_backbone_steps": 1}))
    assert "- Backbone frozen for the first 1 of 3 steps (`freeze_backbone_steps`): only the decoding heads trained, " \
           "then everything" in partly
    assert "Backbone frozen" not in str(build_model_card(stage, "lab/probe", {**staged, "freeze_backbone_steps": 0}))


def test_resuming_a_frozen_run_continues_it_exactly_and_a_changed_split_is_named(a2929, pretrained, tmp_path):
    """A checkpoint saved in the frozen phase (optimizer and scheduler kept) resumes with its four
    parameter groups and ends on the same weights as the uninterrupted run. Break test: resuming it
    with freeze_backbone_steps=0 (two groups) failed with torch's bare "loaded state dict has a
    different number of parameter groups"; the error now names freeze_backbone_steps and the way out."""
    targets = [DecodingTarget("x", "regression")]
    dsd, report = _x_windows(a2929, pretrained)
    train_ds = dsd["train"].select(range(48))
    kw = dict(per_device_train_batch_size=16, max_steps=3, learning_rate=1e-2, weight_decay=0.1, save_strategy="steps",
              save_steps=1, save_only_model=False, seed=0, logging_steps=1)

    def run(name, freeze, resume=None):
        torch.manual_seed(0)  # the same new head in every run
        model = nf.NeuroformerForBehaviorDecoding.from_pretrained(pretrained, decoding_targets=target_dicts(targets, report))
        trainer = build_trainer(model, train_ds, None, tmp_path / name, freeze_backbone_steps=freeze, **kw)
        trainer.train(resume_from_checkpoint=resume)
        return {k: v.detach().clone() for k, v in model.named_parameters()}, trainer

    whole, trainer = run("whole", 2)
    assert [g["frozen_until_step"] for g in trainer.optimizer.param_groups] == [0, 2, 0, 2]
    resumed, trainer = run("resumed", 2, resume=str(tmp_path / "whole" / "checkpoint-1"))
    assert trainer.state.global_step == 3 and len(trainer.optimizer.param_groups) == 4
    assert all(torch.equal(whole[k], v) for k, v in resumed.items())
    # resumed with another positive value: the groups carry this trainer's value, not the checkpoint's,
    # and so does the backbone's learning rate of the first step resumed. Break test: it kept the
    # checkpoint's 0, so N=1 from checkpoint-1 of the N=2 run still froze step 2, and N=2 from
    # checkpoint-1 of an N=1 run logged the backbone's rate 0.005 at step 2, frozen. Both runs agree
    # up to checkpoint-1 (step 1 frozen in both), so the resumed run must end where the whole one does.
    whole1, trainer = run("whole1", 1)
    other, trainer = run("other", 1, resume=str(tmp_path / "whole" / "checkpoint-1"))
    assert [g["frozen_until_step"] for g in trainer.optimizer.param_groups] == [0, 1, 0, 1]
    assert all(torch.equal(whole1[k], v) for k, v in other.items())
    assert [e["backbone_learning_rate"] for e in trainer.state.log_history if "learning_rate" in e] == \
        pytest.approx([0.0, 1e-2 * 2 / 3, 1e-2 / 3])
    _, trainer = run("longer", 2, resume=str(tmp_path / "whole1" / "checkpoint-1"))
    assert [e["backbone_learning_rate"] for e in trainer.state.log_history if "learning_rate" in e] == \
        pytest.approx([0.0, 0.0, 1e-2 / 3])
    with pytest.raises(ValueError, match=r"^resume_from_checkpoint: the optimizer state of .*checkpoint-1' does not fit "
                                         r"this trainer's 2 parameter groups \(freeze_backbone_steps=0\): "):
        run("unfrozen", 0, resume=str(tmp_path / "whole" / "checkpoint-1"))


def test_a_frozen_backbone_keeps_no_gradient_while_its_rate_is_0_after_a_resume_that_restarts_the_schedule(
        a2929, pretrained, tmp_path):
    """Break test: a checkpoint saved without its optimizer and scheduler (build_trainer's default
    save_only_model=True) resumes with Trainer's schedule started again, so the backbone's rate is
    0 for freeze_backbone_steps more steps; the gradients were dropped by global_step instead, so at
    the resumed run's second step the backbone's 76 gradients (rate 0) entered clipping and AdamW's
    moment estimates. Now both follow the schedule's step: no gradient while the rate is 0."""
    from transformers import TrainerCallback

    from hf_neuroformer.finetuning import is_new_module_parameter

    targets = [DecodingTarget("x", "regression")]
    dsd, report = _x_windows(a2929, pretrained)
    kw = dict(per_device_train_batch_size=16, max_steps=3, learning_rate=1e-2, weight_decay=0.1, save_strategy="steps",
              save_steps=1, seed=0, logging_steps=1, freeze_backbone_steps=2)
    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(pretrained, decoding_targets=target_dicts(targets, report))
    build_trainer(model, dsd["train"].select(range(48)), None, tmp_path / "whole", **kw).train()
    assert not (tmp_path / "whole" / "checkpoint-1" / "scheduler.pt").exists()
    seen = []

    class AtStep(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
            seen.append(sum(p.grad is not None for n, p in model.named_parameters() if not is_new_module_parameter(n)))

    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(pretrained, decoding_targets=target_dicts(targets, report))
    trainer = build_trainer(model, dsd["train"].select(range(48)), None, tmp_path / "resumed", **kw)
    trainer.add_callback(AtStep())
    trainer.train(resume_from_checkpoint=str(tmp_path / "whole" / "checkpoint-1"))
    rates = [e["backbone_learning_rate"] for e in trainer.state.log_history if "learning_rate" in e]
    assert rates[-2:] == [0.0, 0.0]  # the restarted schedule: steps 2 and 3 are its first two
    assert seen == [0, 0]  # old code: [0, 76]
    backbone = [p for n, p in model.named_parameters() if not is_new_module_parameter(n)]
    assert not any(p in trainer.optimizer.state for p in backbone)


def test_freeze_backbone_steps_with_a_schedule_it_cannot_gate_or_not_a_count_is_refused_before_anything_runs(
        a2929, pretrained, tmp_path):
    """Break test: lr_scheduler_type="reduce_lr_on_plateau" (a ReduceLROnPlateau, which has no
    per-group factor to hold at 0) with freeze_backbone_steps was refused only when training
    started: after the windows were tokenized and the model loaded, with the output folder already
    claimed (an empty checkpoints/ left in it), and the message showed the enum's repr
    (<SchedulerType.REDUCE_ON_PLATEAU: 'reduce_lr_on_plateau'>)."""
    msg = (r"^freeze_backbone_steps=2: holds the backbone's learning rate at 0 through a LambdaLR schedule .*but "
           r"lr_scheduler_type='reduce_lr_on_plateau' gives a ReduceLROnPlateau; pass freeze_backbone_steps=0")
    out = tmp_path / "never"
    with pytest.raises(ValueError, match=msg):
        finetune(pretrained, a2929, [DecodingTarget("x", "regression")], output_dir=out, max_steps=4, eval_steps=2,
                 batch_size=16, freeze_backbone_steps=2, lr_scheduler_type="reduce_lr_on_plateau")
    assert not out.exists()
    # build_trainer (training_args passed on to TrainingArguments) refuses it before a Trainer exists
    targets = [DecodingTarget("x", "regression")]
    dsd, report = _x_windows(a2929, pretrained)
    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(pretrained, decoding_targets=target_dicts(targets, report))
    with pytest.raises(ValueError, match=msg):
        build_trainer(model, dsd["train"], dsd["validation"], tmp_path / "t", freeze_backbone_steps=2, max_steps=4,
                      lr_scheduler_type="reduce_lr_on_plateau", eval_strategy="steps", eval_steps=2)
    # nor does it round a count: 2.5 trained as 2 frozen steps, -1 as none, True as 1
    for bad in (2.5, -1, True):
        with pytest.raises(ValueError, match=rf"freeze_backbone_steps: expected a whole number >= 0 \(0: off\), got {bad!r}"):
            build_trainer(model, dsd["train"], None, tmp_path / "t", freeze_backbone_steps=bad, max_steps=4)
    # heads the user froze (requires_grad False): Trainer leaves them out, and the frozen steps trained nothing at all
    model.decoding_heads.requires_grad_(False)
    trainer = build_trainer(model, dsd["train"].select(range(16)), None, tmp_path / "t", freeze_backbone_steps=1,
                            max_steps=1, per_device_train_batch_size=16, save_strategy="no")
    with pytest.raises(ValueError, match=r"^freeze_backbone_steps=1: no parameter the optimizer trains belongs to the "
                                         r"decoder's new modules \(names starting decoding_heads\. / attention_pool\."):
        trainer.train()
    # the schedules it gates pass, and without freezing the plateau schedule is not its business
    from hf_neuroformer.finetuning import check_freeze_schedule

    for name in ("linear", "cosine", "constant", "constant_with_warmup", "polynomial", "inverse_sqrt"):
        check_freeze_schedule(2, name)
    check_freeze_schedule(0, "reduce_lr_on_plateau")


def test_decoding_figure_draws_what_was_decoded():
    """plot_decoding: a regression panel holds the recorded and decoded values in time order, with
    a break between test blocks; a circular one holds wrapped degrees; a classification one is
    the row-normalised confusion matrix; a NaN label breaks the recorded line, keeps the decoded
    value (neuroformer decode draws epochs without the behaviour) and is counted in the title."""
    from hf_neuroformer.plotting import PlottingInputError, plot_decoding

    t = np.array([10.0, 10.1, 10.2, 50.0, 50.1, 50.2])[::-1]  # two blocks, given out of order
    y = np.array([[1.0, 0.0, 0], [2.0, np.pi / 2, 1], [3.0, np.pi, 1], [4.0, -np.pi / 2, 0],
                  [5.0, 3 * np.pi, 2], [np.nan, 0.1, 2]])[::-1]
    p = np.array([[1.5, 0.1, 0], [2.5, np.pi / 2, 1], [3.5, np.pi, 0], [4.5, -np.pi / 2, 0],
                  [5.5, np.pi, 2], [6.0, 0.1, 2]])[::-1]
    targets = [{"name": "x", "kind": "regression", "unit": "px"}, {"name": "hd", "kind": "circular"},
               {"name": "choice", "kind": "classification", "classes": [-1, 0, 1]}]
    fig = plot_decoding(t, y, p, targets, metrics={"test/x/r2": 0.25, "test/choice/balanced_accuracy": 0.5})
    ax_x, ax_hd, ax_c = fig.axes[:3]
    assert ax_x.get_ylabel() == "x (px)" and ax_hd.get_ylabel() == "hd (deg)"  # the behaviour's unit
    rec, dec = ax_x.get_lines()[:2]
    # the 39.8-s gap between the two blocks is cut: seconds from the first window, the second block
    # 5 steps after the first, behind a dotted line labelled with its recording time
    np.testing.assert_allclose(rec.get_xdata(), [0.0, 0.1, 0.2, np.nan, 0.7, 0.8, 0.9], atol=1e-9)
    # the window without a recorded value (50.2 s) keeps its decoded value; the recorded line breaks there
    np.testing.assert_array_equal(rec.get_ydata(), [1.0, 2.0, 3.0, np.nan, 4.0, 5.0, np.nan])
    cuts = [ln for ln in ax_x.get_lines() if ln.get_linestyle() == ":"]
    assert len(cuts) == 1 and cuts[0].get_xdata()[0] == pytest.approx(0.45)
    assert [a.get_text() for a in ax_x.texts] == ["50 s"] and "from the first one at 10 s" in ax_x.get_xlabel()
    np.testing.assert_array_equal(dec.get_ydata(), [1.5, 2.5, 3.5, np.nan, 4.5, 5.5, 6.0])
    assert ax_x.get_title() == "x (regression), 6 test windows, 5 with a recorded value; R² 0.250"
    # wrapped into [-180, 180) as the angular metrics wrap (metrics.decoding.wrap_angle): pi and 3 pi at -180
    np.testing.assert_allclose(ax_hd.get_lines()[0].get_ydata(), [0, 90, -180, -90, -180, 0.1 * 180 / np.pi], atol=1e-9)
    np.testing.assert_allclose(np.abs(ax_hd.get_lines()[1].get_ydata()), [0.1 * 180 / np.pi, 90, 180, 90, 180,
                                                                          0.1 * 180 / np.pi], atol=1e-9)
    assert ax_hd.get_ylim() == (-185, 185)
    # angles recorded in [0, 2 pi) (A2929's ry: recorded_range_deg [0, 360] in the saved target) are
    # drawn in [0, 360), as the recording holds them, although the window labels come wrapped to
    # [-pi, pi) (embed's colours show the same angles from 0 to 2 pi)
    ry = np.array([[0.1], [-np.pi], [6.2 - 2 * np.pi]])
    fig_ry = plot_decoding(np.arange(3.0), ry, np.array([[6.2], [-np.pi / 2], [0.1]]),
                           [dict(targets[1], recorded_range_deg=[0.0, 360.0])])
    rec_ry, dec_ry = fig_ry.axes[0].get_lines()[:2]
    np.testing.assert_allclose(rec_ry.get_ydata(), [np.degrees(0.1), 180, np.degrees(6.2)], atol=1e-9)
    np.testing.assert_allclose(dec_ry.get_ydata(), [np.degrees(6.2), 270, np.degrees(0.1)], atol=1e-9)
    assert fig_ry.axes[0].get_ylim() == (-5, 365)
    cm = ax_c.images[0].get_array()
    np.testing.assert_allclose(cm, [[1, 0, 0], [0.5, 0.5, 0], [0, 0, 1]])
    # fractions on a fixed 0-1 colour scale: a near-chance matrix (all cells 0.5) is not stretched
    # to look like a confident one, and a classification-only figure is half as wide
    half = plot_decoding(np.arange(4.0), np.array([[0.0], [0.0], [1.0], [1.0]]), np.array([[0.0], [1.0], [0.0], [1.0]]),
                         targets[2:])
    assert half.axes[0].images[0].get_clim() == (0.0, 1.0) and half.get_size_inches()[0] < 6
    assert [tk.get_text() for tk in ax_c.get_xticklabels()] == ["-1", "0", "1"]
    assert ax_c.get_title().endswith("balanced accuracy 0.500")
    # blocks longer than the gaps between them: real time, nothing cut
    near = plot_decoding(np.array([10.0, 10.1, 10.2, 10.5, 10.6]), np.arange(5.0)[:, None], np.arange(5.0)[:, None],
                         targets[:1])
    assert not near.axes[0].texts and near.axes[0].get_xlabel() == "window start (s)"
    np.testing.assert_allclose(near.axes[0].get_lines()[0].get_xdata(), [10.0, 10.1, 10.2, np.nan, 10.5, 10.6])
    with pytest.raises(PlottingInputError, match=r"expected shape \(6, 3\)"):
        plot_decoding(t, y[:, :2], p, targets)
    # nothing recorded (sleep): the decoded angles alone, a classification panel that says why it is empty
    none = plot_decoding(np.arange(3.0), np.full((3, 2), np.nan), np.array([[0.1, 0], [1.0, 1], [2.0, 2]]),
                         targets[1:], split="decoded")
    assert none.axes[0].get_title() == "hd (circular), 3 decoded windows, 0 with a recorded value"
    np.testing.assert_allclose(none.axes[0].get_lines()[1].get_ydata(), np.degrees([0.1, 1.0, 2.0]))
    # the legend lists what is drawn: no "recorded" entry without a recorded value
    assert [x.get_text() for x in none.axes[0].get_legend().get_texts()] == ["decoded"]
    assert [x.get_text() for x in fig_ry.axes[0].get_legend().get_texts()] == ["recorded", "decoded"]
    assert "no recorded choice" in none.axes[1].texts[0].get_text()


def test_classification_from_scratch_on_steinmetz_trials(steinmetz, tmp_path):
    cfg = nf.NeuroformerConfig(**{**TINY, "past_window": 0.2, "max_window_length": 40})
    m = finetune(None, steinmetz, [DecodingTarget("trial:motorLabel", "classification")], config=cfg,
                 output_dir=tmp_path / "d", max_steps=3, eval_steps=3, batch_size=16, seed=1, write_figures=True)
    assert m["init"] == "scratch" and m["split_plan_source"] == "planned on this recording"
    # the reported test figures are those of the saved decoder on the test windows, recomputed here
    # with numpy / scikit-learn (only 0 <= x <= 1 was checked before)
    from sklearn.metrics import balanced_accuracy_score

    dec = nf.NeuroformerForBehaviorDecoding.from_pretrained(tmp_path / "d").eval()
    tok = nf.NeuroformerTokenizer.from_pretrained(tmp_path / "d")
    plan = nf.windows.SplitPlan.from_dict(json.loads((tmp_path / "d" / "splits.json").read_text()))
    dsd, _ = build_decoding_datasets(steinmetz, tok, dec.config, plan, [DecodingTarget("trial:motorLabel", "classification")])
    test = dsd["test"]
    batch = DecodingCollator(["target_trial:motorLabel"])([test[i] for i in range(len(test))])
    with torch.no_grad():
        logits = dec(**batch).logits.numpy()
    y, pred = batch["labels"][:, 0].numpy().astype(int), logits.argmax(-1)
    assert len(y) == m["test/trial:motorLabel/n"] > 50
    assert m["test/trial:motorLabel/accuracy"] == pytest.approx(np.mean(pred == y))
    assert m["test/trial:motorLabel/balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, pred))
    for split in ("validation", "test"):
        assert 0 <= m[f"{split}/trial:motorLabel/accuracy"] <= 1
        assert 0 <= m[f"{split}/trial:motorLabel/balanced_accuracy"] <= 1
    assert (tmp_path / "d" / "test_decoding.png").is_file()  # the confusion matrix of the test windows
    # the table holds the class labels themselves (-1 / 0 / 1), recorded and predicted, in time order
    import pandas as pd

    table = pd.read_csv(tmp_path / "d" / "test_predictions.csv")
    order = np.argsort(np.asarray(test["window_start"]), kind="stable")
    classes = np.array([-1, 0, 1])
    assert table["trial:motorLabel"].tolist() == classes[y[order]].tolist()
    assert table["trial:motorLabel_predicted"].tolist() == classes[pred[order]].tolist()
    t = m["targets"][0]
    assert t["num_classes"] == 3 and t["classes"] == [-1, 0, 1]
    # like the baselines: class-weighted loss by default, checkpoint chosen on balanced accuracy
    assert t["class_weight"] == "balanced" and len(t["class_weights"]) == 3
    assert m["checkpoint_selection"] == "highest validation trial:motorLabel/balanced_accuracy"
    saved = json.loads((tmp_path / "d" / "config.json").read_text())["decoding_targets"][0]
    assert saved["class_weights"] == pytest.approx(t["class_weights"])


@pytest.fixture(scope="module")
def steinmetz_decoder(steinmetz, tmp_path_factory):
    """``(folder, metrics, warnings)``: a trial:motorLabel classification decoder trained from
    scratch on the Steinmetz trials (1 step, seed 1) with ``ci_block_s=2`` (which a trial split
    does not use: the decoder is the one fitted without it), and the messages of the warnings the
    run gave. Read by the tests that decode or continue such a decoder."""
    cfg = nf.NeuroformerConfig(**{**TINY, "past_window": 0.2, "max_window_length": 40})
    d = tmp_path_factory.mktemp("steinmetz_decoder") / "d"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = finetune(None, steinmetz, [DecodingTarget("trial:motorLabel", "classification")], config=cfg,
                     output_dir=d, max_steps=1, eval_steps=1, batch_size=16, seed=1, ci_block_s=2)
    return d, m, [str(w.message) for w in caught]


def test_cli_decode_says_which_windows_of_an_unseen_class_it_left_out_of_the_scores(steinmetz, steinmetz_decoder, tmp_path,
                                                                                     capsys):
    """Break test: 'neuroformer decode' on a recording whose test trials hold a class the decoder
    has none for printed 'on the 1800 test windows with a recorded value: accuracy ...' computed on
    the 1300 others (the unseen ones dropped without a word), and wrote the unseen label 2 as 2.0. Its
    --figure's confusion-matrix title still counted the others alone, without a word on the rest."""
    import matplotlib
    import pandas as pd

    from hf_neuroformer.cli import main
    from hf_neuroformer.io import write_nwb

    d = steinmetz_decoder[0]  # finetune(None, steinmetz, motorLabel, max_steps=1, eval_steps=1, batch_size=16, seed=1)
    test_trials = json.loads((d / "splits.json").read_text())["trial_index"]["test"]
    rec = copy.copy(steinmetz)
    labels = np.array(steinmetz.trial_info["motorLabel"]).copy()
    labels[test_trials[:2]] = 2  # a class the decoder was not trained on
    rec.trial_info = {**steinmetz.trial_info, "motorLabel": labels}
    write_nwb(rec, tmp_path / "unseen.nwb")
    out, fig = tmp_path / "t.csv", tmp_path / "t.svg"
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # the figure's text as text, to read its title
        assert main(["decode", "--model", str(d), "--data", str(tmp_path / "unseen.nwb"), "--split",
                     "test", "--output", str(out), "--figure", str(fig)]) == 0
    text = capsys.readouterr().out
    table = pd.read_csv(out)
    n_unseen = int((table["trial:motorLabel"] == 2).sum())
    assert n_unseen > 0 and not (table["trial:motorLabel"].astype(str) == "2.0").any()
    assert (f"trial:motorLabel on the {len(table) - n_unseen} test windows with a recorded value" in text
            and f"({n_unseen} more test windows left out: their recorded class 2 is none of the decoder's classes "
                "[-1, 0, 1])" in text), text
    # the --figure's confusion matrix left them out too, its title counting only the others
    assert (f"trial:motorLabel (classification), {len(table) - n_unseen} test windows (+{n_unseen} left out: "
            "recorded class none of the decoder") in fig.read_text()
    # finetune on that recording (a class only test trials hold) stopped with an error; now it trains, leaves
    # those windows out of the test metrics and says how many, in its output and decoding_report.json
    assert main(["finetune", "--model", str(d), "--from-scratch", "--data", str(tmp_path / "unseen.nwb"),
                 "--target", "trial:motorLabel", "--output-dir", str(tmp_path / "d2"), "--max-steps", "1",
                 "--batch-size", "16", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    report = json.loads((tmp_path / "d2" / "decoding_report.json").read_text())
    metrics = json.loads((tmp_path / "d2" / "metrics.json").read_text())
    assert report["test"]["n_unseen_class"] == {"trial:motorLabel": n_unseen}
    assert metrics["test/trial:motorLabel/n"] == len(table) - n_unseen
    assert (f"    trial:motorLabel: {n_unseen} windows of class [2] that the train split lacks, left out of its "
            "metrics") in text, text
    # every test trial of the unseen class: nothing is scored, and the closing line said no test window
    # 'has a recorded value of a target' right below the line counting the ones of class 2 left out
    labels[test_trials] = 2
    rec.trial_info = {**steinmetz.trial_info, "motorLabel": labels}
    write_nwb(rec, tmp_path / "all_unseen.nwb")
    assert main(["decode", "--model", str(d), "--data", str(tmp_path / "all_unseen.nwb"), "--split",
                 "test", "--output", str(tmp_path / "all.csv")]) == 0
    text = capsys.readouterr().out
    assert "test windows left out: their recorded class 2 is none of the decoder's classes" in text, text
    assert ("  no window scored: no test window or window outside every split has a recorded value of a target in a "
            "class the decoder knows "
            "(the windows left out above hold only others)\n") in text, text


def test_cli_decode_closing_line_with_a_class_left_out_and_a_regression_target_unrecorded(steinmetz, tmp_path,
                                                                                           capsys):
    """A classification target whose test windows hold only a class the decoder has none for, beside a
    regression target with no recorded value there: the closing line said no test window 'has a recorded value
    of a target in a class the decoder knows', a class clause the regression target has no use for."""
    from hf_neuroformer.cli import main
    from hf_neuroformer.io import write_nwb

    cfg = nf.NeuroformerConfig(**{**TINY, "past_window": 0.2, "max_window_length": 40})
    finetune(None, steinmetz, [DecodingTarget("trial:motorLabel", "classification"),
                               DecodingTarget("trial:rawLabel", "regression")], config=cfg,
             output_dir=tmp_path / "d", max_steps=1, eval_steps=1, batch_size=16, seed=1)
    test_trials = json.loads((tmp_path / "d" / "splits.json").read_text())["trial_index"]["test"]
    motor = np.array(steinmetz.trial_info["motorLabel"]).copy()
    raw = np.array(steinmetz.trial_info["rawLabel"], dtype=np.float64)
    motor[test_trials], raw[test_trials] = 2, np.nan  # a class the decoder has none for; no value recorded
    rec = copy.copy(steinmetz)
    rec.trial_info = {**steinmetz.trial_info, "motorLabel": motor, "rawLabel": raw}
    write_nwb(rec, tmp_path / "mixed.nwb")
    assert main(["decode", "--model", str(tmp_path / "d"), "--data", str(tmp_path / "mixed.nwb"), "--split", "test",
                 "--output", str(tmp_path / "t.csv")]) == 0
    text = capsys.readouterr().out
    assert "test windows left out: their recorded class 2 is none of the decoder's classes" in text, text
    assert "trial:rawLabel: predicted only, the recording has no value of it in these windows" in text, text
    assert ("  no window scored: no test window or window outside every split has a recorded value of a regression "
            "target or a recorded class the decoder knows of a classification target (the windows left out above "
            "hold only other classes)\n") in text, text


def test_balanced_class_weights_come_from_train_only_change_the_loss_and_reload(steinmetz, tmp_path):
    from sklearn.utils.class_weight import compute_class_weight

    cfg = nf.NeuroformerConfig(**{**TINY, "past_window": 0.2, "max_window_length": 40})
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(steinmetz)
    cfg.vocab_size = len(tok)
    target = DecodingTarget("trial:motorLabel", "classification")
    dsd, report = build_decoding_datasets(steinmetz, tok, cfg, nf.plan_splits(steinmetz, cfg), [target])
    y = {sp: np.asarray(dsd[sp]["target_trial:motorLabel"]) for sp in ("train", "validation", "test")}
    w = target_dicts([target], report, dsd["train"])[0]["class_weights"]
    np.testing.assert_allclose(w, compute_class_weight("balanced", classes=np.arange(3), y=y["train"]))
    # from the training windows only: the weights of all splits together differ
    every = compute_class_weight("balanced", classes=np.arange(3), y=np.concatenate(list(y.values())))
    assert not np.allclose(w, every) and not np.allclose(w, 1.0)
    # a few-shot block gets the weights of its own windows (as the baselines' class_weight="balanced")
    block = fraction_of_train(dsd["train"], 0.2)
    wb = np.asarray(target_dicts([target], report, block)[0]["class_weights"])
    yb = np.asarray(block["target_trial:motorLabel"])
    present = np.unique(yb)
    np.testing.assert_allclose(wb[present], compute_class_weight("balanced", classes=present, y=yb))
    assert np.all(wb[np.setdiff1d(np.arange(3), present)] == 0)
    # a block lacking a class of the train split (its weight 0): the validation and test losses leave its
    # windows out, which was said nowhere (selecting on the loss ignored them); the note counts them
    small = fraction_of_train(dsd["train"], 0.01)
    ys = np.asarray(small["target_trial:motorLabel"])
    gone = np.setdiff1d(np.arange(3), ys)
    assert gone.size == 1 and np.unique(ys).size == 2
    n_gone = int(np.isin(y["validation"], gone).sum())
    note = target_notes([target], report, small, 0.01, validation=dsd["validation"])["trial:motorLabel"]
    assert note == (f"target 'trial:motorLabel': the {len(small)} training windows used (fraction 0.01) hold no window "
                    f"of class {[[-1, 0, 1][i] for i in gone]} of the train split's [-1, 0, 1]: their balanced class "
                    f"weight is 0, so the validation and test losses leave out their windows ({n_gone} of the "
                    f"{len(y['validation'])} validation windows), as the baselines' early stopping leaves out classes "
                    "never fitted; use a larger fraction"), note
    assert 0 < n_gone < len(y["validation"])
    # chosen on this target's balanced accuracy (select_on 'auto' with one target): it scores the class never
    # trained on too (its recall is what the untrained logit gives), which was said nowhere
    auto = selection_metric(target_dicts([target], report, small), "auto")[0]
    assert auto == "trial:motorLabel/balanced_accuracy"
    chosen = target_notes([target], report, small, 0.01, validation=dsd["validation"], selection=auto)
    assert chosen["trial:motorLabel"] == note.removesuffix("; use a larger fraction") + (
        "; the checkpoint is chosen on the validation balanced_accuracy, which scores their windows too: their recall "
        "is what their untrained logits still give, so it can favour a less-trained checkpoint (a choice on the loss, "
        "select_on='loss' / --select-on loss, leaves them out); use a larger fraction"), chosen
    # unweighted (class_weight=None): the losses count those windows, whose loss only grows with training
    # (the choice the baselines' early stopping avoids); it said nothing, also when the loss chose the checkpoint
    plain = DecodingTarget("trial:motorLabel", "classification", class_weight=None)
    unweighted = target_notes([plain], report, small, 0.01, validation=dsd["validation"], selection="loss")
    assert unweighted == {"trial:motorLabel": (
        f"target 'trial:motorLabel': the {len(small)} training windows used (fraction 0.01) hold no window of "
        f"class {[[-1, 0, 1][i] for i in gone]} of the train split's [-1, 0, 1]: unweighted (class_weight None), "
        f"the validation and test losses count their windows ({n_gone} of the {len(y['validation'])} validation "
        "windows), whose loss only grows as training pushes down the logits of classes never trained on (the "
        "baselines' early stopping leaves out classes never fitted); the checkpoint is chosen on the validation loss "
        "with them, which favours less-trained checkpoints; use a larger fraction")}, unweighted
    # class_weight=None: plain cross-entropy
    assert target_dicts([plain], report, dsd["train"])[0]["class_weights"] is None
    with pytest.raises(DecodingTargetError, match="class_weight"):
        DecodingTarget("trial:motorLabel", "classification", class_weight="inverse")

    def model_with(weights):
        c = copy.deepcopy(cfg)
        c.decoding_targets = [{**target_dicts([target], report, dsd["train"])[0], "class_weights": weights}]
        torch.manual_seed(0)
        return nf.NeuroformerForBehaviorDecoding(c).eval()

    batch = DecodingCollator(["target_trial:motorLabel"])([dsd["train"][i] for i in range(48)])
    weighted, unweighted = model_with(w), model_with(None)
    with torch.no_grad():
        out_w, out_u = weighted(**batch), unweighted(**batch)
    torch.testing.assert_close(out_w.logits, out_u.logits)  # same weights, only the loss differs
    c = batch["labels"][:, 0].long()
    ce = torch.nn.functional.cross_entropy(out_u.logits.float(), c, reduction="none")
    assert out_u.loss.item() == pytest.approx(ce.mean().item(), rel=1e-5)
    assert out_w.loss.item() == pytest.approx((torch.tensor(w)[c] * ce).mean().item(), rel=1e-5)
    assert abs(out_w.loss.item() - out_u.loss.item()) > 1e-4
    # save / reload keeps the weights, and so the loss
    weighted.save_pretrained(tmp_path / "m")
    again = nf.NeuroformerForBehaviorDecoding.from_pretrained(tmp_path / "m").eval()
    assert again.config.decoding_targets[0]["class_weights"] == pytest.approx(w)
    assert again.config.decoding_targets[0]["class_weight"] == "balanced"
    with torch.no_grad():
        assert again(**batch).loss.item() == pytest.approx(out_w.loss.item(), rel=1e-6)
    bad = copy.deepcopy(cfg)
    bad.decoding_targets = [{**weighted.config.decoding_targets[0], "class_weights": [1.0, 2.0]}]
    with pytest.raises(ValueError, match="class_weights"):
        bad._check()


def test_a_training_block_without_a_value_of_a_classification_target_is_refused_naming_it():
    """Training windows used (a few-shot block kept for another target) that hold no value of a
    classification target: target_notes failed with an IndexError and balanced_class_weights with
    "class_index: expected at least one training window", naming no target. finetune refuses it
    before either (target_dicts, test above); the library functions now name the target too."""
    import datasets

    t = DecodingTarget("trial:motorLabel", "classification")
    ds = datasets.Dataset.from_dict({t.column_name: [float("nan")] * 2, "x": [0.0, 1.0]})
    report = {"targets": {t.label: {"classes": [-1, 0, 1], "num_classes": 3}}}
    with pytest.raises(DecodingTargetError, match=r"target 'trial:motorLabel': none of the 2 training windows used "
                                                  r"\(the first block of fraction 0\.01 of the train split\) has a value "
                                                  r"of it .*use a larger fraction, or decode it alone"):
        target_notes([t], report, ds, 0.01)
    with pytest.raises(DecodingTargetError, match="target 'trial:motorLabel': none of the 2 training windows used has"):
        target_dicts([t], report, ds)
    with pytest.raises(ValueError, match=r"target 'trial:motorLabel': class_index: expected at least one training "
                                         r"window with a value of the target, got none .*use a larger fraction"):
        balanced_class_weights(np.zeros(0), 3, target=t.label)
    with pytest.raises(ValueError, match=r"target 'm': class_index: expected indices in \[0, 3\), got 0\.\.3"):
        balanced_class_weights([0, 3], 3, target="m")


def test_fraction_of_train_is_the_first_contiguous_block(a2929, pretrained):
    dsd, _ = _x_windows(a2929, pretrained)
    tr = dsd["train"]
    part = fraction_of_train(tr, 0.05)
    starts = np.sort(np.asarray(tr["window_start"]))
    assert len(part) == round(0.05 * len(tr))
    np.testing.assert_array_equal(np.asarray(part["window_start"]), starts[: len(part)])
    assert len(fraction_of_train(tr, 1e-6)) == 1
    with pytest.raises(ValueError, match="fraction"):
        fraction_of_train(tr, 0.0)


def test_trial_labels_of_windows_in_overlapping_trials_are_counted_in_a_warning(a2929):
    """Trials padded around their events overlap: a window starting in two trials took the label of
    the later one without a word, though it may be cut from the earlier one."""
    import dataclasses

    onsets = 672.0 + 2.5 * np.arange(20)
    trials = np.stack([onsets - 1.0, onsets + 3.0], 1)  # each overlaps the next by 1.5 s
    rec = dataclasses.replace(a2929, trials=trials, trial_info={"cond": np.arange(20) % 2},
                              epochs={}, epoch_intervals={})
    starts = np.array([671.5, 674.0, 675.5])  # in trial 0 only; in trials 0 and 1; in trial 1 only
    with pytest.warns(UserWarning, match=r"target 'trial:cond': 1 of 3 windows starts inside more than one trial .*"
                                         r"the trial that starts last"):
        vals = target_values(rec, DecodingTarget("trial:cond", "classification"), starts, 0.1)
    np.testing.assert_array_equal(vals, [0, 1, 1])  # labels as before: the later trial's
    rec = dataclasses.replace(rec, trials=np.stack([onsets, onsets + 2.5], 1))  # abutting, not overlapping
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        target_values(rec, DecodingTarget("trial:cond", "classification"), onsets[:5] + 0.0, 0.1)
    # abutting at a boundary off the 1 ns grid (one ulp above 673.4 s, as clock arithmetic gives): the window at
    # the boundary's grid-rounded time belongs to the later trial (trial_at's tolerance) and overlaps nothing; it
    # was counted in both trials and warned "the recording's trials overlap"
    edge = np.nextafter(673.4, np.inf)
    rec = dataclasses.replace(rec, trials=np.array([[672.0, edge], [edge, 675.0]]), trial_info={"cond": np.array([0, 1])})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        vals = target_values(rec, DecodingTarget("trial:cond", "classification"), np.array([672.5, 673.4, 674.0]), 0.1)
    np.testing.assert_array_equal(vals, [0, 1, 1])


def test_missing_target_names_it_and_lists_the_available_ones(a2929, pretrained):
    tok = nf.NeuroformerTokenizer.from_pretrained(pretrained)
    cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
    with pytest.raises(DecodingTargetError, match=r"'speed'.*available targets: \['rx', 'ry', 'rz'.*'x', 'y', 'z'\]"):
        build_decoding_datasets(a2929, tok, cfg, None, [DecodingTarget("x", "regression"),
                                                        DecodingTarget("speed", "regression")])
    with pytest.raises(DecodingTargetError, match="trial:motorLabel"):
        build_decoding_datasets(a2929, tok, cfg, None, [DecodingTarget("trial:motorLabel", "classification")])


def test_an_event_stream_or_an_epoch_as_target_is_named_as_such_not_as_missing(steinmetz):
    """Break test: --target naming an event stream (stimulus onsets) or an epoch (an interval table) of the
    recording said 'not in this recording', as for a misspelling; now it says what the name is and why it
    is no target (an epoch: how to restrict the recording to it)."""
    from hf_neuroformer.decoding import infer_kind
    from hf_neuroformer.recording import EventSeries

    rec = copy.copy(steinmetz)
    rec.events = {"stim_on": EventSeries(np.asarray(steinmetz.trials[:, 0]) + 0.05)}
    rec.epochs = {"first": (0.0, 100.0)}
    with pytest.raises(DecodingTargetError, match=r"target 'stim_on': not a decodable variable of this recording; "
                                                  r"'stim_on' is an event stream of it \(recording.events"):
        infer_kind(rec, "stim_on")
    with pytest.raises(DecodingTargetError, match=r"target 'first': not a decodable variable of this recording; 'first' "
                                                  r"is an epoch of it \(an interval\), not a variable: restrict the "
                                                  r"recording to it with --epoch first"):
        target_values(rec, DecodingTarget("first", "regression"), np.zeros(1), 0.1)
    with pytest.raises(DecodingTargetError, match=r"target 'nope': not in this recording; available targets: "
                                                  r"\['trial:label'"):
        infer_kind(rec, "nope")


def test_a_checkpoints_trial_split_plan_carries_over_to_an_epoch_of_its_recording(steinmetz):
    """Break test: `neuroformer finetune --epoch E` of a trial recording (or finetune on recording.restrict)
    found the checkpoint's trial plan 'leaves a split of this recording without windows' and planned new
    splits, though every split held trials of the epoch: the plan names trials by index, and the epoch
    numbers its trials from 0. Its validation and test trials could then be pretraining's training trials.
    Now each trial of the epoch takes the split of the plan's trial with the same start and stop."""
    from hf_neuroformer.finetuning import _plan_within

    cfg = nf.NeuroformerConfig(**{**TINY, "past_window": 0.2})
    plan = nf.plan_splits(steinmetz, cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a trial the interval cuts is dropped, and said
        part = steinmetz.restrict(100.0, 274.0)
    clipped = _plan_within(plan, part, cfg)
    assert clipped is not None and clipped.mode == "trials"
    starts = {s: set(np.round(plan.segments[s][:, 0], 9)) for s in plan.segments}
    for s in ("train", "validation", "test"):
        ix = clipped.trial_index[s]
        assert len(ix) and np.array_equal(clipped.segments[s], np.asarray(part.trials)[ix])
        assert set(np.round(clipped.segments[s][:, 0], 9)) <= starts[s]  # the same split as in the checkpoint
    assert sum(len(v) for v in clipped.trial_index.values()) == len(part.trials)
    assert _plan_within(plan, steinmetz, cfg).trial_index["test"].tolist() == plan.trial_index["test"].tolist()
    other = copy.copy(steinmetz)  # trials that are none of the plan's: no plan to keep
    other.trials = np.asarray(steinmetz.trials) + 0.01
    assert _plan_within(plan, other, cfg) is None


def test_a_series_on_another_clock_is_named_when_no_window_is_left(a2929, pretrained):
    """Samples in Unix time beside spikes from 0: the refusal gave the window counts only."""
    import dataclasses

    tok = nf.NeuroformerTokenizer.from_pretrained(pretrained)
    cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
    x = a2929.behaviour["x"]
    rec = dataclasses.replace(a2929, behaviour={"x": dataclasses.replace(x, timestamps=x.timestamps + 1.7e9)})
    with pytest.raises(DecodingTargetError, match=r"no training window left .*'x' has its \d+ samples at 1700000670\.\d+-"
                                                  r"\d+\.\d+ s, none inside the recorded time 670\.000-850\.000 s: another clock"):
        build_decoding_datasets(rec, tok, cfg, None, [DecodingTarget("x", "regression")])


def test_a_text_trial_column_says_it_is_text_and_how_to_code_it(shared_data):
    """Zheng's Clip_name as a classification target was refused as 'got dtype object' only."""
    from hf_neuroformer.io import load_recording
    from tiny_configs import quiet

    rec = quiet(load_recording, shared_data("zheng2022_human_mtl/sub-4_ses-4_ecephys+image.nwb"))
    with pytest.raises(DecodingTargetError, match=r"'trial:Clip_name': expected numeric trial labels, got text \(dtype "
                                                  r"object; values such as '', 'HB_1.mp4', 'HB_10.mp4', \.\.\.\); map "
                                                  r"them to integer codes .*pandas.factorize"):
        target_values(rec, DecodingTarget("trial:Clip_name", "classification"), np.zeros(0), 0.1)
    # clock times are not text: the message called a datetime64 column text as well
    import dataclasses

    when = np.datetime64("2020-01-01T00:00") + np.arange(len(rec.trials)).astype("timedelta64[m]")
    rec = dataclasses.replace(rec, trial_info={**rec.trial_info, "when": when})
    with pytest.raises(DecodingTargetError, match=r"'trial:when': expected numeric trial labels, got values that are "
                                                  r"not numbers \(dtype datetime64\[m\]; values such as '2020-01-01 00:00:00'"):
        target_values(rec, DecodingTarget("trial:when", "classification"), np.zeros(0), 0.1)


def test_cli_missing_target_is_an_error_naming_it(pretrained, shared_data, tmp_path, capsys):
    from hf_neuroformer.cli import main

    rc = main(["finetune", "--model", str(pretrained), "--data", str(shared_data(A2929)), "--epoch", "wake",
               "--target", "ry,speed", "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "'speed'" in err and "available targets" in err
    rc = main(["finetune", "--model", str(pretrained), "--target", "ry,x", "--kind", "circular",
               "--output-dir", str(tmp_path / "o")])
    assert rc == 2 and "one kind per --target" in capsys.readouterr().err
    rc = main(["finetune", "--model", str(pretrained), "--data", str(shared_data(A2929)), "--epoch", "wake",
               "--target", "ry", "--max-steps", "4", "--freeze-backbone-steps", "9", "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "--freeze-backbone-steps: expected a whole number from 0 (off) to --max-steps=4" in err
    assert not (tmp_path / "o").exists()


def test_cli_finetune_writes_the_decoder_and_its_metrics(pretrained, shared_data, tmp_path, capsys, monkeypatch):
    from hf_neuroformer.cli import main
    from tiny_configs import printed_as_the_interpreter_does

    monkeypatch.delenv("TQDM_DISABLE", raising=False)  # the step bar is checked below

    out = tmp_path / "cli-decoder"

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = printed_as_the_interpreter_does
        rc = main(["finetune", "--model", str(pretrained), "--data", str(shared_data(A2929)), "--epoch", "wake",
                   "--target", "ry", "--fraction", "0.5", "--max-steps", "2", "--eval-steps", "2", "--batch-size", "8",
                   "--output-dir", str(out), "--seed", "3", "--set", "hidden_dropout=0.2", "--set",
                   "decoding_pool=current"])
    captured = capsys.readouterr()
    # the model, pretrained on 670-850 s, fine-tuned on the whole wake epoch: the package's warning names the
    # flag, as its errors do (it said "model_dir: the split plan of ..." on the command line)
    assert re.search(r"^neuroformer finetune: warning: --model: the split plan of .* spans 670\.000-850\.000 s",
                     captured.err, re.M), captured.err[-3000:]
    assert "model_dir:" not in captured.err, captured.err[-3000:]
    text = captured.out
    assert rc == 0 and "test/ry/mean_angular_error_deg" in text and "dropped:" in text
    # one line per evaluation, as train prints its steps; no save bar per checkpoint
    lines = re.findall(r"^step \d+: .*$", text, re.M)
    assert len(lines) == 1 and re.fullmatch(r"step 2: train loss [0-9.]+  val loss [0-9.]+  val ry/mean_angular_error_"
                                            r"(deg|rad) [0-9.]+", lines[0]), text
    assert "Writing model shards" not in captured.err
    assert "\r" not in captured.err  # standard error into a file: the log-file rule, no bar redrawn in place
    # a bar over the steps, as train shows (there was none: minutes without output between evaluation lines)
    assert re.search(r"fine-tuning: 100%.* 2/2 ", captured.err), captured.err
    # and one over the batches of each evaluation (the step bar stood still while one ran)
    assert re.search(r"evaluating: 100%.* (\d+)/\1 \[", captured.err), captured.err
    m = json.loads((out / "metrics.json").read_text())
    assert m["targets"][0]["kind"] == "circular"  # inferred: ry is in rad
    assert m["fraction"] == 0.5 and m["n_train_windows"] == round(0.5 * m["n_train_windows_full"]) and m["seed"] == 3
    assert (out / "decoding_report.json").is_file() and (out / "model.safetensors").is_file()
    # the "wrote" line names every file the run left (it left out splits.json and training_log.json)
    wrote = re.search(r"^\[neuroformer\] wrote .*$", text, re.M).group(0)
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    assert {"splits.json", "training_log.json", "metrics.json"} <= set(files)
    assert all(name in wrote for name in files), (files, wrote)
    saved = json.loads((out / "config.json").read_text())
    assert saved["hidden_dropout"] == 0.2 and saved["decoding_pool"] == "current"
    assert m["config_overrides"] == {"hidden_dropout": 0.2, "decoding_pool": "current"}
    # a bad --set is refused, naming the field, before the recording is read or anything is written
    for bad, msg in ((["--set", "num_hidden_layers=3"], "allowed keys"),
                     (["--set", "hidden_dropout=2"], "hidden_dropout: expected a dropout probability"),
                     (["--set", "hidden_dropout=0.1", "--set", "hidden_dropout=0.2"], "--set: hidden_dropout given twice (0.1 and 0.2)"),
                     (["--set", "window_stride=true"], "--set: NeuroformerConfig.window_stride: expected a positive number, got True")):
        rc = main(["finetune", "--model", str(pretrained), "--data", str(shared_data(A2929)), "--target", "ry",
                   "--output-dir", str(tmp_path / "refused"), *bad])
        err = capsys.readouterr().err
        assert rc == 2 and msg in err, (bad, err)
        assert not (tmp_path / "refused").exists()
    # a repeated --target counts every time (it kept only the last); the decoder just written decodes
    # ry only, so asking it for ry and x is refused by name (it crashed inside transformers)
    rc = main(["finetune", "--model", str(out), "--data", str(shared_data(A2929)), "--epoch", "wake",
               "--target", "ry", "--target", "x", "--output-dir", str(tmp_path / "refused")])
    err = capsys.readouterr().err
    assert rc == 2 and "is a decoder fine-tuned for [('ry', 'circular')], not for [('ry', 'circular'), ('x', 'regression')]" in err
    assert not (tmp_path / "refused").exists()
    rc = main(["finetune", "--model", str(pretrained), "--target", "ry", "--target", "ry",
               "--output-dir", str(tmp_path / "refused")])
    assert rc == 2 and "--target: each target once" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: not KEY=VALUE
        main(["finetune", "--model", str(pretrained), "--target", "ry", "--set", "hidden_dropout"])
    assert "expected KEY=VALUE" in capsys.readouterr().err
    broken = tmp_path / "broken"  # a config.json that is not JSON: an error naming --model, not a traceback
    broken.mkdir()
    (broken / "config.json").write_text("{")
    rc = main(["finetune", "--model", str(broken), "--target", "ry", "--output-dir", str(tmp_path / "refused"),
               "--set", "hidden_dropout=0.1"])
    assert rc == 2 and "--model: " in capsys.readouterr().err and not (tmp_path / "refused").exists()


def test_nan_targets_in_train_are_dropped_and_counted(a2929, pretrained):
    tok = nf.NeuroformerTokenizer.from_pretrained(pretrained)
    cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
    target = DecodingTarget("x", "regression")
    clean, rep0 = _x_windows(a2929, pretrained)
    starts = np.asarray(clean["train"]["window_start"])
    a, b = starts[100], starts[100] + 5.0  # 5 s of lost tracking inside the train split
    rec = copy.copy(a2929)
    s = a2929.behaviour["x"]
    vals = s.values.copy()
    vals[(s.timestamps >= a) & (s.timestamps < b)] = np.nan
    rec.behaviour = {**a2929.behaviour, "x": nf.BehaviourSeries(s.timestamps, vals, s.unit)}
    dsd, rep = build_decoding_datasets(rec, tok, cfg, None, [target])
    n_nan = rep["train"]["n_nan"]["x"]
    expected = int(np.sum(~np.isfinite(target_values(rec, target, starts, cfg.current_window))))
    assert n_nan == expected and 40 <= n_nan <= 50  # 50 windows of 0.1 s, minus the edges filled by nearest samples
    assert rep["train"]["n_dropped"] == n_nan
    assert rep["train"]["n_windows"] == rep0["train"]["n_windows"] - n_nan == len(dsd["train"])
    kept = np.asarray(dsd["train"]["window_start"])
    assert not np.any((kept >= a + 0.2) & (kept < b - 0.3))
    assert np.all(np.isfinite(dsd["train"]["target_x"]))
    # the model leaves a NaN label out of the loss instead of propagating it
    model = nf.NeuroformerForBehaviorDecoding(
        nf.NeuroformerConfig.from_pretrained(pretrained, decoding_targets=target_dicts([target], rep)))
    batch = DecodingCollator(["target_x"])([dsd["train"][i] for i in range(8)])
    batch["labels"][0, 0] = float("nan")
    assert torch.isfinite(model(**batch).loss)


def _x_gap(a2929, a, b):
    """A2929 with its position x lost (NaN) over ``[a, b)`` s, as in a tracking gap."""
    rec = copy.copy(a2929)
    s = a2929.behaviour["x"]
    vals = s.values.copy()
    vals[(s.timestamps >= a) & (s.timestamps < b)] = np.nan
    rec.behaviour = {**a2929.behaviour, "x": nf.BehaviourSeries(s.timestamps, vals, s.unit)}
    return rec


def test_a_window_without_one_targets_value_keeps_the_other_targets_and_is_masked(a2929, pretrained):
    """Decoding ry and x at once, a window where x was not tracked was dropped for ry too (48
    training windows of ry lost to a 5 s x gap). Now a window is kept when any target has a
    value there; the missing one is NaN, masked out of its loss and metrics, counted per target,
    and its statistics come from the windows where it is recorded."""
    from hf_neuroformer.finetuning import make_compute_metrics

    tok = nf.NeuroformerTokenizer.from_pretrained(pretrained)
    cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
    ry, x = DecodingTarget("ry", "circular"), DecodingTarget("x", "regression")
    alone, rep_ry = build_decoding_datasets(a2929, tok, cfg, None, [ry])
    starts = np.asarray(alone["train"]["window_start"])
    rec = _x_gap(a2929, starts[100], starts[100] + 5.0)
    x_alone, rep_x = build_decoding_datasets(rec, tok, cfg, None, [x])
    dsd, rep = build_decoding_datasets(rec, tok, cfg, None, [ry, x])
    for split in ("train", "validation", "test"):
        # ry keeps every window it has alone; x has a value in the windows it has alone
        assert dsd[split]["window_start"] == alone[split]["window_start"]
        assert dsd[split]["target_ry"] == alone[split]["target_ry"]
        y = np.asarray(dsd[split]["target_x"])
        assert np.asarray(dsd[split]["window_start"])[np.isfinite(y)].tolist() == x_alone[split]["window_start"]
        assert y[np.isfinite(y)].tolist() == x_alone[split]["target_x"]
        r = rep[split]
        assert r["n_windows"] == rep_ry[split]["n_windows"] and r["n_dropped"] == rep_ry[split]["n_dropped"]
        assert r["n_windows_target"] == {"ry": rep_ry[split]["n_windows"], "x": rep_x[split]["n_windows"]}
        assert r["n_masked_nan"]["x"] == int(np.sum(~np.isfinite(y))) == r["n_windows"] - rep_x[split]["n_windows"]
        assert r["n_masked_nan"]["ry"] == 0
    assert 40 <= rep["train"]["n_masked_nan"]["x"] <= 50  # the 5 s gap: ~50 windows of 0.1 s
    # x's statistics over its own windows, not NaN
    assert rep["targets"]["x"]["mean"] == pytest.approx(rep_x["targets"]["x"]["mean"], rel=1e-12)
    assert rep["targets"]["x"]["std"] == pytest.approx(rep_x["targets"]["x"]["std"], rel=1e-12)
    tdicts = target_dicts([ry, x], rep, fraction_of_train(dsd["train"], 1.0))
    assert tdicts[1]["mean"] == pytest.approx(rep_x["targets"]["x"]["mean"], rel=1e-12)
    # the loss is finite on a batch holding windows without x, and they add nothing to x's term
    model = nf.NeuroformerForBehaviorDecoding(nf.NeuroformerConfig.from_pretrained(pretrained, decoding_targets=tdicts))
    gap = np.flatnonzero(~np.isfinite(np.asarray(dsd["train"]["target_x"])))[:4].tolist()
    batch = DecodingCollator(["target_ry", "target_x"])([dsd["train"][i] for i in gap + [0, 1, 2, 3]])
    assert torch.isnan(batch["labels"][:4, 1]).all() and torch.isfinite(model(**batch).loss)
    # per-target metrics on each target's own windows
    labels = np.stack([dsd["test"]["target_ry"], dsd["test"]["target_x"]], 1)
    preds = np.where(np.isfinite(labels), labels, 0.0)
    m = make_compute_metrics(tdicts)(SimpleNamespace(predictions=preds, label_ids=labels))
    assert m["ry/n"] == rep["test"]["n_windows_target"]["ry"] and m["x/n"] == rep["test"]["n_windows_target"]["x"]
    assert m["x/r2"] == pytest.approx(1.0)
    # a split where x has no value at all (kept for ry): x gets n = 0 instead of failing the evaluation
    labels[:, 1] = np.nan
    m = make_compute_metrics(tdicts)(SimpleNamespace(predictions=preds, label_ids=labels))
    assert m["x/n"] == 0 and not [k for k in m if k.startswith("x/") and k != "x/n"] and m["ry/n"] == len(labels)


def test_a_classification_target_without_a_label_in_some_windows_is_a_float_column_with_nan(a2929, pretrained):
    """A class series with a gap, decoded beside ry: its column holds the class index as a float and
    NaN where no label was recorded (an int64 column cannot hold a missing label), its classes and
    train class counts come from the labelled windows only."""
    tok = nf.NeuroformerTokenizer.from_pretrained(pretrained)
    cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
    x = a2929.behaviour["x"]
    zone = np.digitize(x.values, np.nanquantile(x.values, [1 / 3, 2 / 3])).astype(np.float64) * 2
    starts = np.asarray(build_decoding_datasets(a2929, tok, cfg, None, [DecodingTarget("ry", "circular")])[0]["train"]
                        ["window_start"])
    zone[(x.timestamps >= starts[100]) & (x.timestamps < starts[100] + 5.0)] = np.nan
    rec = copy.copy(a2929)
    rec.behaviour = {**a2929.behaviour, "zone": nf.BehaviourSeries(x.timestamps, zone, "")}
    c = DecodingTarget("zone", "classification", class_weight="balanced")
    dsd, rep = build_decoding_datasets(rec, tok, cfg, None, [DecodingTarget("ry", "circular"), c])
    alone, rep_c = build_decoding_datasets(rec, tok, cfg, None, [DecodingTarget("zone", "classification")])
    assert alone["train"].features["target_zone"].dtype == "int64"  # complete: class indices as before
    assert dsd["train"].features["target_zone"].dtype == "float64"
    y = np.asarray(dsd["train"]["target_zone"])
    assert 40 <= np.sum(np.isnan(y)) == rep["train"]["n_masked_nan"]["zone"] <= 50
    assert y[np.isfinite(y)].tolist() == alone["train"]["target_zone"]
    assert rep["targets"]["zone"]["classes"] == [0, 2, 4]
    assert rep["targets"]["zone"]["class_counts"] == rep_c["targets"]["zone"]["class_counts"]
    d = target_dicts([DecodingTarget("ry", "circular"), c], rep, dsd["train"])[1]
    assert d["class_weights"] == target_dicts([c], rep_c, alone["train"])[0]["class_weights"]


def test_finetune_scores_each_target_on_its_own_windows_and_writes_missing_labels_as_empty(a2929, pretrained, tmp_path,
                                                                                            capsys):
    """neuroformer finetune of ry with a class series that has gaps in train and test (an NWB file
    written from A2929): the windows without a class label are kept for ry, warned about and
    counted per target (printed: 'zone: 28 windows without a value in train, masked'); each
    target's test metrics count its own windows; test_predictions.csv leaves the missing labels
    empty (a NaN class index was cast to an integer and looked up in the classes)."""
    import pandas as pd

    from hf_neuroformer.cli import main
    from hf_neuroformer.io import write_nwb
    from hf_neuroformer.windows import plan_splits

    x = a2929.behaviour["x"]
    zone = np.digitize(x.values, np.nanquantile(x.values, [1 / 3, 2 / 3])).astype(np.float64)
    plan = plan_splits(a2929, nf.NeuroformerConfig.from_pretrained(pretrained))
    for split in ("train", "test"):  # 3 s inside the split's first block
        t0 = plan.segments[split][0][0] + 2.0
        zone[(x.timestamps >= t0) & (x.timestamps < t0 + 3.0)] = np.nan
    rec = copy.copy(a2929)
    rec.behaviour = {"ry": a2929.behaviour["ry"], "zone": nf.BehaviourSeries(x.timestamps, zone, "")}
    rec.events = {}
    path = write_nwb(rec, tmp_path / "gap.nwb")
    with pytest.warns(UserWarning, match=r"test: target 'zone' has no value in \d+ of the \d+ windows kept for the other "
                                         r"targets: masked out of its loss and metrics"):
        rc = main(["finetune", "--model", str(pretrained), "--data", str(path), "--target", "ry,zone", "--kind",
                   "circular,classification", "--output-dir", str(tmp_path / "d"), "--max-steps", "1", "--eval-steps", "1",
                   "--batch-size", "8"])
    assert rc == 0
    out = capsys.readouterr().out
    m = json.loads((tmp_path / "d" / "metrics.json").read_text())
    rep = m["decoding_report"]
    assert m["test/ry/n"] == rep["test"]["n_windows"] and rep["test"]["n_masked_nan"]["ry"] == 0
    assert m["test/zone/n"] == rep["test"]["n_windows_target"]["zone"] == m["test/ry/n"] - rep["test"]["n_masked_nan"]["zone"]
    assert 20 <= rep["test"]["n_masked_nan"]["zone"] <= 30 and 20 <= rep["train"]["n_masked_nan"]["zone"] <= 30
    for split in ("train", "test"):
        r = rep[split]
        assert (f"  {split}: {r['n_windows']} of {r['n_windows_before']} windows (dropped: 0 by mask, {r['n_dropped']} "
                f"without a value of any target)\n    zone: {r['n_masked_nan']['zone']} windows without a value in "
                f"{split}, masked ({r['n_windows_target']['zone']} with one)\n") in out
    table = pd.read_csv(tmp_path / "d" / "test_predictions.csv")
    assert table["zone"].isna().sum() == rep["test"]["n_masked_nan"]["zone"]
    assert set(table["zone"].dropna()) <= {0, 1, 2} and table["ry"].notna().all()
    # the model card gives each target's windows where some were masked
    from hf_neuroformer.hub import build_model_card, save_for_hub

    (tmp_path / "stage").mkdir()
    card = str(build_model_card(tmp_path / "stage", "lab/zone", save_for_hub(tmp_path / "d", tmp_path / "stage")))
    n = rep["test"]["n_windows_target"]["zone"]
    assert f"- test: {rep['test']['n_windows']} windows, {rep['test']['n_spikes']} spikes (zone scored on {n} with a " \
           "value; the rest masked for it)." in card


def test_a_target_without_values_in_validation_or_in_the_few_shot_block_is_named(a2929, pretrained, tmp_path):
    """With several targets, a target with no value in any validation window (kept for the others)
    would leave its validation metric, and the checkpoint's choice, undefined; one with no value in
    the few-shot block would be standardised with NaN. Both are refused, naming the target, before
    any training (before, the first emptied the whole validation split: 'no window left')."""
    from hf_neuroformer.windows import plan_splits

    plan = plan_splits(a2929, nf.NeuroformerConfig.from_pretrained(pretrained))
    targets = [DecodingTarget("ry", "circular"), DecodingTarget("x", "regression")]
    rec = _x_gap(a2929, 0.0, 0.0)
    s = rec.behaviour["x"]
    for a, b in plan.segments["validation"]:
        s.values[(s.timestamps >= a - 1.0) & (s.timestamps < b + 1.0)] = np.nan
    with pytest.raises(ValueError, match=r"validation split: no window with a value of target \['x'\] \(of the \d+ "
                                         r"kept for the others\)"):
        finetune(pretrained, rec, targets, output_dir=tmp_path / "v", max_steps=1)
    a = plan.segments["train"][0][0]
    with pytest.raises(DecodingTargetError, match=r"target 'x': none of the \d+ training windows used has a value of it"):
        finetune(pretrained, _x_gap(a2929, a, a + 5.0), targets, output_dir=tmp_path / "f", max_steps=1, fraction=0.01)
    assert not (tmp_path / "v").exists() and not (tmp_path / "f").exists()


def test_a_sampled_class_series_gives_each_window_its_most_frequent_label_not_the_mean(a2929):
    """A class label sampled at 120 Hz (A2929 x cut into thirds, coded 0/2/4, every 7th sample NaN): a
    window's class was the mean of its samples, so a window holding a class change got a fraction and
    the whole target was refused as 'not whole numbers', and labels 0 and 4 in equal parts gave class 2,
    found in no sample of the window. Now the most frequent label (ties: the one nearest the centre)."""
    x = a2929.behaviour["x"]
    zone = np.digitize(x.values, np.nanquantile(x.values, [1 / 3, 2 / 3])).astype(np.float64) * 2
    zone[::7] = np.nan
    rec = dataclasses.replace(a2929, behaviour={"zone": nf.BehaviourSeries(x.timestamps, zone, "")})
    starts = np.round(np.arange(671.0, 849.0, 0.1), 9)
    got = target_values(rec, DecodingTarget("zone", "classification"), starts, 0.1)
    for start, value in zip(starts, got):
        inside = (x.timestamps >= start - 1e-9) & (x.timestamps < start + 0.1 - 1e-9) & np.isfinite(zone)
        labels, counts = np.unique(zone[inside], return_counts=True)
        assert value in labels[counts == counts.max()], (start, value, labels, counts)
    assert set(np.unique(got)) == {0.0, 2.0, 4.0}
    # 0 and 4 in equal parts (five samples each, 4 nearer the centre): 4, not their mean 2
    ts = 700.0 + np.array([0.0, 0.01, 0.02, 0.03, 0.04, 0.055, 0.06, 0.07, 0.08, 0.09])
    two = dataclasses.replace(a2929, behaviour={"c": nf.BehaviourSeries(ts, np.repeat([0.0, 4.0], 5), "")})
    assert target_values(two, DecodingTarget("c", "classification"), np.array([700.0]), 0.1).tolist() == [4.0]
    # regression keeps the mean
    assert target_values(two, DecodingTarget("c", "regression"), np.array([700.0]), 0.1).tolist() == [2.0]


def test_sparse_target_never_takes_a_sample_across_a_split_boundary(a2929):
    """A window with no sample inside took the nearest sample within 2 sampling intervals, which
    for a series sampled more sparsely than the windows could lie in the split gap or in another
    split's block: a training window labelled from the test split. The fallback now reads only the
    window's own split segment, and a window left without a usable sample is undefined, dropped and
    counted. A2929 position x decimated to one sample per ~1.7 s, with a 4 s tracking hole before
    the end of a training block that another split follows."""
    from hf_neuroformer.windows import plan_splits, window_segments

    cfg = nf.NeuroformerConfig(**TINY)
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(a2929)
    x = a2929.behaviour["x"]
    plan = plan_splits(a2929, cfg)
    other = np.concatenate([plan.segments[s][:, 0] for s in ("validation", "test")])
    # a training block whose end another split's block follows across the split gap
    edge = [b for _, b in plan.segments["train"] if np.any(np.abs(other - b - cfg.split_gap) < 1e-6)][0]
    ts, vals = x.timestamps[::200], x.values[::200]
    hole = (ts >= edge - 4.0) & (ts < edge)
    rec = copy.copy(a2929)
    rec.behaviour = {**a2929.behaviour, "x": nf.BehaviourSeries(ts[~hole], vals[~hole], x.unit)}
    ts, vals = ts[~hole], vals[~hole].reshape(-1)
    tol = 2 * np.median(np.diff(ts))  # the fallback's reach, about 3.3 s
    left, right = ts[np.searchsorted(ts, edge) - 1], ts[np.searchsorted(ts, edge)]
    # windows ending at the edge: the sample after it (another split's, or the gap's) is close enough,
    # the one before the hole is not
    assert edge - 0.5 - left > tol and right - edge < tol - 0.5
    target = DecodingTarget("x", "regression")
    dsd, rep = build_decoding_datasets(rec, tok, cfg, plan, [target])
    for split in ("train", "validation", "test"):
        kept = np.asarray(dsd[split]["window_start"])
        bounds = window_segments(plan, split, kept)
        labels = np.asarray(dsd[split]["target_x"])
        # no window holds two samples: every label is one sample's value (cumsum rounding aside), from the window's own segment
        for (lo, hi), v in zip(bounds, labels):
            own = vals[(ts >= lo) & (ts < hi)]
            assert np.any(np.isclose(own, v, rtol=0, atol=1e-9)), (split, lo, hi, v)
        assert rep[split]["n_nan"]["x"] == rep[split]["n_dropped"] == rep[split]["n_windows_before"] - len(kept)
    with pytest.raises(ValueError, match=r"starts: the window at .* lies in no segment of the 'train' split"):
        window_segments(plan, "train", [edge + 0.1])  # in the split gap: no window of this plan
    # the training windows starting in the last 0.5 s of the block: undefined (they took the sample
    # across the edge), dropped and counted
    kept = np.asarray(dsd["train"]["window_start"])
    assert not np.any((kept >= edge - 0.5) & (kept < edge))
    assert rep["train"]["n_nan"]["x"] >= 5


def test_window_segments_places_every_window_of_the_plan_with_a_stride_over_a_second():
    """window_starts_for_split keeps a window whose end passes its segment's stop by up to 1e-9 of
    a stride (n_full_bins' bin-edge tolerance), more than window_segments' 1 ns for a stride over
    1 s: a 2-s window ending 1.5 ns past its trial / block was refused ("lies in no trial"), so
    build_decoding_datasets failed on a plan it had made. A window is now placed by its start."""
    from hf_neuroformer.windows import SplitPlan, window_segments, window_starts_for_split

    cfg = nf.NeuroformerConfig(current_window=2.0, past_window=0.0, window_stride=2.0, dt_resolution=0.1)
    segs = np.array([[0.0, 4.0 - 1.5e-9], [10.0, 30.0 - 8e-9]])
    for mode in ("trials", "time"):
        plan = SplitPlan(mode, {"train": segs, "validation": np.zeros((0, 2)), "test": np.zeros((0, 2))},
                         {k: np.zeros(0, np.int64) for k in ("train", "validation", "test")})
        starts, clips = window_starts_for_split(plan, "train", cfg)
        assert starts[1] == 2.0 and starts[1] + cfg.current_window > segs[0, 1] + 1e-9  # past the stop by 1.5 ns
        bounds = window_segments(plan, "train", starts, clips)
        np.testing.assert_array_equal(bounds, segs[(starts >= 10.0).astype(int)])
        with pytest.raises(ValueError, match="lies in no"):  # a start outside every segment still is refused
            window_segments(plan, "train", [5.0], [5.0])


def test_sparse_target_in_trial_mode_reads_only_the_windows_own_trial(steinmetz):
    """Trial mode: the fallback sample comes from the window's own trial, never from the trial
    before or after (another split's, maybe). The Steinmetz trials (1.01 s, 0.1 s apart) with a
    series sampled once per trial, 0.75 through it, whose value is the trial's index; every 5th
    trial has no sample. A window at a trial's start is nearer the previous trial's sample (0.40 s)
    than its own (0.71 s); a window of a trial without a sample has no usable one."""
    from hf_neuroformer.windows import trial_at

    cfg = nf.NeuroformerConfig(**{**TINY, "past_window": 0.2})
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(steinmetz)
    trials = steinmetz.trials
    sampled = np.arange(len(trials)) % 5 != 0
    t = trials[:, 0] + 0.75 * (trials[:, 1] - trials[:, 0])
    rec = copy.copy(steinmetz)
    rec.behaviour = {**steinmetz.behaviour,
                     "trial_id": nf.BehaviourSeries(t[sampled], np.flatnonzero(sampled).astype(np.float64), "")}
    dsd, rep = build_decoding_datasets(rec, tok, cfg, None, [DecodingTarget("trial_id", "regression")])
    assert json.loads(json.dumps(rep["split_plan"]))["mode"] == "trials"
    plan = nf.windows.SplitPlan.from_dict(rep["split_plan"])
    for split in ("train", "validation", "test"):
        kept = np.asarray(dsd[split]["window_start"])
        own = trial_at(trials, kept)
        np.testing.assert_array_equal(np.asarray(dsd[split]["target_trial_id"]), own)  # each window: its own trial
        # every window of an unsampled trial is undefined, dropped and counted; no other window is
        every = nf.windows.window_starts_for_split(plan, split, cfg, None if split == "train" else cfg.current_window)[0]
        n_unsampled = int(np.sum(~sampled[trial_at(trials, every)]))
        assert len(every) == rep[split]["n_windows_before"] and n_unsampled > 0
        assert rep[split]["n_nan"]["trial_id"] == rep[split]["n_dropped"] == n_unsampled
        assert len(kept) == len(every) - n_unsampled


def test_a_class_label_unseen_in_training_is_left_out_of_the_metrics_counted_and_warned(steinmetz):
    """Break test: a class label of validation / test trials that the train split lacks stopped the run
    with an error that no flag of `neuroformer finetune` could act on (the splits come from the
    checkpoint). Now those windows count as windows without a value of the target, as `neuroformer
    decode` leaves windows of a class the decoder lacks out of its scores: counted per split
    (n_unseen_class, their labels in unseen_classes) and warned about, naming label, split and count."""
    cfg = nf.NeuroformerConfig(**{**TINY, "past_window": 0.2})
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(steinmetz)
    plan = nf.plan_splits(steinmetz, cfg)
    rec = copy.copy(steinmetz)
    labels = steinmetz.trial_info["motorLabel"].copy()
    labels[plan.trial_index["test"][0]] = 7  # one test trial: a class train never has
    labels[plan.trial_index["validation"][:2]] = 9  # two validation trials: another
    rec.trial_info = {**steinmetz.trial_info, "motorLabel": labels}
    motor = DecodingTarget("trial:motorLabel", "classification")
    _, before = build_decoding_datasets(steinmetz, tok, cfg, plan, [motor])
    with pytest.warns(UserWarning) as caught:
        dsd, report = build_decoding_datasets(rec, tok, cfg, plan, [motor])
    said = [str(w.message) for w in caught if "never has" in str(w.message)]
    n_test, n_val = report["test"]["n_unseen_class"]["trial:motorLabel"], report["validation"]["n_unseen_class"][
        "trial:motorLabel"]
    assert n_test > 0 and n_val > n_test  # two validation trials, one test trial
    assert len(said) == 2 and said[0].startswith(f"target 'trial:motorLabel': {n_val} validation windows hold "
                                                 "label [9] that the train split never has"), said
    assert said[1].startswith(f"target 'trial:motorLabel': {n_test} test window{'s' * (n_test != 1)} {'hold' if n_test != 1 else 'holds'} label [7]"), said
    assert report["test"]["unseen_classes"] == {"trial:motorLabel": [7]}
    for split, n in (("validation", n_val), ("test", n_test)):  # left out, as windows without a value
        assert report[split]["n_dropped"] == n and report[split]["n_nan"]["trial:motorLabel"] == 0
        assert len(dsd[split]) == before[split]["n_windows"] - n
        assert set(dsd[split]["target_trial:motorLabel"]) <= {0, 1, 2}
    assert report["targets"]["trial:motorLabel"]["classes"] == [-1, 0, 1]
    assert report["train"]["n_unseen_class"] == {}
    # beside a target recorded in those windows, the windows stay, the unseen class masked for its target
    raw = DecodingTarget("trial:rawLabel", "regression")
    with pytest.warns(UserWarning, match=f"{n_test} test window"):
        dsd, report = build_decoding_datasets(rec, tok, cfg, plan, [motor, raw])
    y = np.asarray(dsd["test"]["target_trial:motorLabel"], dtype=float)
    assert report["test"]["n_dropped"] == 0 and report["test"]["n_masked_nan"]["trial:motorLabel"] == n_test
    assert np.isnan(y).sum() == n_test and len(y) == before["test"]["n_windows"]
    assert report["test"]["n_masked_unseen_class"] == {"trial:motorLabel": n_test}


def test_finetunes_masked_window_warning_counts_only_the_kept_windows_of_an_unseen_class(steinmetz, tmp_path):
    """Break test: beside a second target, windows of a class the train split lacks are masked for it when the
    other target has a value there and dropped when not; finetune's warning 'has no value in k of the n windows
    kept for the other targets (u of them: a class the train split lacks)' counted u over all the unseen-class
    windows, the dropped ones too: '10 of the 350 windows ... (30 of them ...)'."""
    cfg = nf.NeuroformerConfig(**{**TINY, "past_window": 0.2, "max_window_length": 40})
    plan = nf.plan_splits(steinmetz, cfg)
    test_trials = plan.trial_index["test"]
    motor = np.array(steinmetz.trial_info["motorLabel"]).copy()
    raw = np.array(steinmetz.trial_info["rawLabel"], dtype=np.float64)
    motor[test_trials[:3]] = 7  # a class train lacks in 3 test trials
    raw[test_trials[:2]] = np.nan  # 2 of them without the other target's value: dropped, not masked
    rec = copy.copy(steinmetz)
    rec.trial_info = {**steinmetz.trial_info, "motorLabel": motor, "rawLabel": raw}
    with pytest.warns(UserWarning) as caught:
        m = finetune(None, rec, [DecodingTarget("trial:motorLabel", "classification"),
                                 DecodingTarget("trial:rawLabel", "regression")], config=cfg,
                     output_dir=tmp_path / "d", max_steps=1, eval_steps=1, batch_size=16, seed=1)
    r = m["decoding_report"]["test"]
    k, kept_unseen = r["n_masked_nan"]["trial:motorLabel"], r["n_masked_unseen_class"]["trial:motorLabel"]
    assert 0 < kept_unseen == k < r["n_unseen_class"]["trial:motorLabel"], r
    said = [str(w.message) for w in caught if str(w.message).startswith("test: target 'trial:motorLabel' has no value")]
    assert said == [f"test: target 'trial:motorLabel' has no value in {k} of the {r['n_windows']} windows kept for the "
                    f"other targets ({k} of them: a class the train split lacks): masked out of its loss and metrics "
                    "(counted in decoding_report.json, n_masked_nan)"], said


def test_a_label_per_trial_as_classes_says_why_no_validation_window_is_left(steinmetz, tmp_path):
    """Steinmetz's trial_seq (the trial number; classification, the default kind of a trial column) has
    no validation label the train split has: its windows are left out as of unseen classes, and the
    error that no validation window is left says that this is why, and how to decode it instead."""
    cfg = nf.NeuroformerConfig(**{**TINY, "past_window": 0.2})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the unseen-class warnings, tested above
        with pytest.raises(ValueError, match=r"validation split: no window left; the checkpoint is chosen on "
                                             r"validation; trial:trial_seq: its \d+ validation windows all hold "
                                             r"classes the train split lacks .* kind 'regression'"):
            finetune(None, steinmetz, [DecodingTarget("trial:trial_seq", "classification")], config=cfg,
                     output_dir=tmp_path / "d", max_steps=1, batch_size=16)
    assert not (tmp_path / "d").exists()


def test_pushed_decoder_loads_as_remote_code_without_the_package(finetuned, a2929, loopback_hub, tmp_path):
    import os
    import subprocess
    import sys
    import textwrap

    from hf_neuroformer.hub import push_to_hub

    out, m = finetuned
    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(out).eval()
    tok = nf.NeuroformerTokenizer.from_pretrained(out)
    plan = nf.windows.SplitPlan.from_dict(json.loads((out / "splits.json").read_text()))
    targets = [DecodingTarget("ry", "circular"), DecodingTarget("x", "regression")]
    dsd, _ = build_decoding_datasets(a2929, tok, model.config, plan, targets)
    batch = DecodingCollator(["target_ry", "target_x"])([dsd["test"][i] for i in range(8)])
    with torch.no_grad():
        ref = model(**batch).predictions
    torch.save({"batch": dict(batch), "predictions": ref}, tmp_path / "ref.pt")
    res = push_to_hub(out, "lab/decoder", endpoint=loopback_hub.url, token="hf_loopback_token")
    files = loopback_hub.files("lab/decoder")
    auto_map = json.loads(files["config.json"])["auto_map"]
    assert auto_map["AutoModelForSequenceClassification"] == "modeling_neuroformer.NeuroformerForBehaviorDecoding"
    assert "AutoModelForSequenceClassification.from_pretrained" in files["README.md"].decode()
    assert "test/ry/mean_angular_error_rad" in files["README.md"].decode() and res.files
    script = textwrap.dedent(f"""
        import json, sys
        sys.modules["hf_neuroformer"] = None  # the package must not be importable here
        import torch
        from transformers import AutoModelForSequenceClassification
        model = AutoModelForSequenceClassification.from_pretrained("lab/decoder", trust_remote_code=True).eval()
        ref = torch.load({str(tmp_path / 'ref.pt')!r})
        with torch.no_grad():
            pred = model(**ref["batch"]).predictions
        print(json.dumps({{"module": type(model).__module__, "name": type(model).__name__,
                           "diff": (pred - ref["predictions"]).abs().max().item()}}))
        import gc
        gc.freeze()  # all printed: exit without the final garbage collection (about 1 s)
    """)
    env = {**os.environ, **loopback_hub.env(), "HF_MODULES_CACHE": str(tmp_path / "modules")}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["module"].startswith("transformers_modules") and info["name"] == "NeuroformerForBehaviorDecoding"
    assert info["diff"] == 0.0


def test_decoder_pushed_before_the_step_counts_still_trains_with_the_auxiliary_loss(a2929, pretrained, tmp_path):
    """A decoder pushed before 9a0f689 runs the remote code of its time, whose forward takes no
    next-spike target counts; loaded with AutoModelForSequenceClassification(trust_remote_code=True)
    and fine-tuned further through build_trainer with decoding_generative_loss_weight > 0, every
    training step failed (TypeError: unexpected keyword argument 'num_id_targets_in_batch'), where
    it trained before. DecodingTrainer now passes the counts only to a forward that takes them; the
    old code keeps its per-batch approximation, exact for one batch, so the step's loss is the
    package decoder's."""
    import os
    import subprocess
    import sys
    import textwrap

    from hf_neuroformer.hub import save_for_hub

    tok = nf.NeuroformerTokenizer.from_pretrained(pretrained)
    cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
    targets = [DecodingTarget("ry", "circular"), DecodingTarget("x", "regression")]
    dsd, report = build_decoding_datasets(a2929, tok, cfg, None, targets)
    dec = tmp_path / "decoder"
    nf.NeuroformerForBehaviorDecoding.from_pretrained(
        pretrained, decoding_targets=target_dicts(targets, report), decoding_generative_loss_weight=0.5,
        hidden_dropout=0.0).save_pretrained(dec)
    tok.save_pretrained(dec)
    stage = tmp_path / "stage"
    save_for_hub(dec, stage)
    # the remote code as pushed before 9a0f689: no count arguments, the per-batch approximation
    code = (stage / "modeling_neuroformer.py").read_text()
    sig = ("        num_id_targets_in_batch: Optional[torch.Tensor] = None,\n"
           "        num_dt_targets_in_batch: Optional[torch.Tensor] = None,\n")
    exact = ("exact = ((token_labels is None or num_id_targets_in_batch is not None)\n"
             "                     and (dt_labels is None or num_dt_targets_in_batch is not None))")
    assert code.count(sig) == 1 and code.count(exact) == 1
    (stage / "modeling_neuroformer.py").write_text(code.replace(sig, "").replace(
        exact, "exact = num_id_targets_in_batch = num_dt_targets_in_batch = None"))
    ds = dsd["train"].select(range(200, 212))
    ds.save_to_disk(str(tmp_path / "ds"))
    script = textwrap.dedent(f"""
        import json
        from transformers import AutoModelForSequenceClassification
        model = AutoModelForSequenceClassification.from_pretrained({str(stage)!r}, trust_remote_code=True)
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        from datasets import load_from_disk
        from hf_neuroformer.finetuning import build_trainer
        trainer = build_trainer(model, load_from_disk({str(tmp_path / 'ds')!r}), None, {str(tmp_path / 'remote')!r},
                                per_device_train_batch_size=12, max_steps=1, learning_rate=1e-3, seed=0,
                                save_strategy="no", logging_steps=1)
        trainer.train()
        print(json.dumps({{"loss": trainer.state.log_history[0]["loss"]}}))
    """)
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "TQDM_DISABLE": "1"}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    remote_loss = json.loads(r.stdout.strip().splitlines()[-1])["loss"]
    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(dec)
    trainer = build_trainer(model, ds, None, tmp_path / "local", per_device_train_batch_size=12, max_steps=1,
                            learning_rate=1e-3, seed=0, save_strategy="no", logging_steps=1)
    trainer.train()
    assert remote_loss == pytest.approx(trainer.state.log_history[0]["loss"], rel=1e-5)


def test_auxiliary_generative_loss_reuses_the_pretraining_heads(a2929, pretrained):
    tok = nf.NeuroformerTokenizer.from_pretrained(pretrained)
    cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
    targets = [DecodingTarget("ry", "circular")]
    dsd, rep = build_decoding_datasets(a2929, tok, cfg, None, targets)
    model, info = nf.NeuroformerForBehaviorDecoding.from_pretrained(
        pretrained, decoding_targets=target_dicts(targets, rep), decoding_generative_loss_weight=0.5,
        output_loading_info=True)
    assert all(k.startswith("decoding_heads.") for k in info["missing_keys"]) and not info["unexpected_keys"]
    pre = nf.NeuroformerForPreTraining.from_pretrained(pretrained).eval()
    batch = DecodingCollator(["target_ry"])([dsd["train"][i] for i in range(8)])
    with torch.no_grad():
        with_aux = model.eval()(**batch).loss
        model.config.decoding_generative_loss_weight = 0.0
        without = model(**batch).loss
        gen = pre(**{k: v for k, v in batch.items() if k not in ("labels", "token_labels")},
                  labels=batch["token_labels"]).loss
    torch.testing.assert_close(with_aux - without, 0.5 * gen)


def test_a_decoder_loaded_as_a_pretraining_model_warns_without_its_heads_and_keeps_them_with(
        finetuned, pretrained, tmp_path):
    """Break test: AutoModelForPreTraining / NeuroformerForPreTraining.from_pretrained of a fine-tuned
    decoder folder (decoding_generative_loss_weight 0: no next-spike heads saved) loaded the backbone
    and initialised the id / dt heads at random, with only transformers' logged load report, so spikes
    generated from it were noise without a word. It warns now, naming the heads and the pretrained
    model the decoder's metrics.json records; a decoder that kept the heads loads them, silently."""
    from transformers import AutoModelForPreTraining

    from hf_neuroformer.generation import load_pretrained
    from hf_neuroformer.modeling_neuroformer import NextSpikeHeadsNotLoadedWarning

    decoder, _ = finetuned
    decoding = nf.NeuroformerForBehaviorDecoding.from_pretrained(decoder)
    for load in (AutoModelForPreTraining.from_pretrained, nf.NeuroformerForPreTraining.from_pretrained):
        with pytest.warns(NextSpikeHeadsNotLoadedWarning) as caught:
            model, info = load(decoder, output_loading_info=True)
        message = str(caught[0].message)
        assert "(dt_head.bias, dt_head.weight, dt_unit_embeddings.weight, id_head.bias, id_head.weight)" in message
        assert "initialised at random" in message and "fine-tuned behaviour decoder" in message, message
        assert f"fine-tuned from, {str(pretrained.resolve())!r}, as its metrics.json records" in message, message
        assert "AutoModelForSequenceClassification" in message
        assert {k for k in info["missing_keys"] if not k.startswith("decoding_heads.")} == {
            "dt_head.bias", "dt_head.weight", "dt_unit_embeddings.weight", "id_head.bias", "id_head.weight"}
        assert torch.equal(model.get_input_embeddings().weight, decoding.get_input_embeddings().weight)
    # without a metrics.json (a decoder saved by hand) the message names the kind of folder to load instead
    bare = tmp_path / "bare"
    decoding.save_pretrained(bare)
    with pytest.warns(NextSpikeHeadsNotLoadedWarning, match=r"the folder written by 'neuroformer train'"):
        nf.NeuroformerForPreTraining.from_pretrained(bare)
    # the package's loader judges the heads itself: refused where they are needed, silent where not
    with warnings.catch_warnings():
        warnings.simplefilter("error", NextSpikeHeadsNotLoadedWarning)
        load_pretrained(decoder, next_spike_heads=False)
        with pytest.raises(ValueError, match=r"is a fine-tuned decoder"):
            load_pretrained(decoder)
        # a decoder fine-tuned with the auxiliary generative loss keeps the heads, and they load
        with_heads = tmp_path / "with-heads"
        nf.NeuroformerForBehaviorDecoding.from_pretrained(
            pretrained, decoding_targets=decoding.config.decoding_targets,
            decoding_generative_loss_weight=0.5).save_pretrained(with_heads)
        model, info = AutoModelForPreTraining.from_pretrained(with_heads, output_loading_info=True)
    assert not info["missing_keys"], info
    pre = nf.NeuroformerForPreTraining.from_pretrained(pretrained)
    for name in ("id_head", "dt_head"):
        assert torch.equal(getattr(model, name).weight, getattr(pre, name).weight), name


def test_finetune_config_overrides_reach_the_decoder_and_bad_ones_are_refused(a2929, pretrained, tmp_path):
    """``config_overrides``: the training windows overlap with ``window_stride`` while validation and test
    keep tiling their split; the dropout lands in the saved decoder's config; a key that would change a
    backbone weight, or an out-of-range value, is refused before any training and writes nothing."""
    targets = [DecodingTarget("x", "regression")]
    base = finetune(pretrained, a2929, targets, output_dir=tmp_path / "base", max_steps=1, batch_size=16, seed=0)
    out = tmp_path / "strided"
    m = finetune(pretrained, a2929, targets, output_dir=out, max_steps=1, batch_size=16, seed=0,
                 config_overrides={"window_stride": 0.05, "hidden_dropout": 0.3})
    rep, rep0 = m["decoding_report"], base["decoding_report"]
    assert 1.8 * rep0["train"]["n_windows_before"] <= rep["train"]["n_windows_before"] <= 2 * rep0["train"]["n_windows_before"] + 20
    for split in ("validation", "test"):
        assert rep[split]["n_windows_before"] == rep0[split]["n_windows_before"]
        assert m[f"{split}/x/n"] == base[f"{split}/x/n"]
    saved = json.loads((out / "config.json").read_text())
    assert saved["hidden_dropout"] == 0.3 and saved["window_stride"] == 0.05
    assert m["config_overrides"] == {"window_stride": 0.05, "hidden_dropout": 0.3}
    with pytest.raises(ValueError, match=r"config_overrides: \['hidden_size'\].*allowed keys"):
        finetune(pretrained, a2929, targets, output_dir=tmp_path / "bad1", max_steps=1,
                 config_overrides={"hidden_size": 32})
    with pytest.raises(ValueError, match=r"hidden_dropout: expected a dropout probability in \[0, 1\), got 1.5"):
        finetune(pretrained, a2929, targets, output_dir=tmp_path / "bad2", max_steps=1,
                 config_overrides={"hidden_dropout": 1.5})
    assert not (tmp_path / "bad1" / "model.safetensors").exists() and not (tmp_path / "bad2" / "model.safetensors").exists()


def test_config_overrides_set_a_whole_float_as_the_int_the_config_stores():
    """``--set decoding_head_hidden_size=16.0`` was refused ("expected an integer >= 0 or None, got
    16.0") though every other integer field takes a whole float (checked_int); taken now, the value set
    on the config and returned for metrics.json is the checked one, the int the constructor stores."""
    cfg = nf.NeuroformerConfig(**TINY)
    got = apply_config_overrides(cfg, {"decoding_head_hidden_size": 16.0, "hidden_dropout": 0})
    assert got == {"decoding_head_hidden_size": 16, "hidden_dropout": 0.0}
    assert type(cfg.decoding_head_hidden_size) is int and type(got["decoding_head_hidden_size"]) is int


def test_config_overrides_of_the_wrong_type_are_refused_by_name(a2929, pretrained, tmp_path):
    """Not a mapping, a head width that is not an integer (text, float, bool): a ValueError naming the field,
    before anything is written; a refused setting leaves the config as it was."""
    targets = [DecodingTarget("x", "regression")]
    bad = [("hidden_dropout=0.3", r"config_overrides: expected a mapping"),
           ({"decoding_head_hidden_size": "64"}, r"decoding_head_hidden_size: expected an integer >= 0 or None, got '64'"),
           ({"decoding_head_hidden_size": 1.5}, r"decoding_head_hidden_size: expected an integer >= 0 or None, got 1.5"),
           ({"decoding_head_hidden_size": True}, r"decoding_head_hidden_size: expected an integer >= 0 or None, got True"),
           ({"window_stride": "0.05"}, r"window_stride: expected a positive number, got '0.05'")]
    for i, (overrides, match) in enumerate(bad):
        with pytest.raises(ValueError, match=match):
            finetune(pretrained, a2929, targets, output_dir=tmp_path / f"bad{i}", max_steps=1, config_overrides=overrides)
        assert not (tmp_path / f"bad{i}").exists()
    cfg = nf.NeuroformerConfig(**TINY)
    with pytest.raises(ValueError, match=r"hidden_dropout: expected a dropout probability"):
        apply_config_overrides(cfg, {"attention_dropout": 0.2, "hidden_dropout": 1.0})
    assert cfg.attention_dropout == nf.NeuroformerConfig(**TINY).attention_dropout
    assert apply_config_overrides(cfg, {"decoding_head_hidden_size": 0, "window_stride": None}) == {
        "decoding_head_hidden_size": 0, "window_stride": None}
    assert cfg.decoding_head_hidden_size == 0 and cfg.stride == cfg.current_window
    # the constructor refuses a fractional head width too, instead of truncating it, and stores a numpy integer as int
    with pytest.raises(ValueError, match=r"decoding_head_hidden_size: expected an integer >= 0 or None, got 1.5"):
        nf.NeuroformerConfig(**TINY, decoding_head_hidden_size=1.5)
    assert type(nf.NeuroformerConfig(**TINY, decoding_head_hidden_size=np.int64(8)).decoding_head_hidden_size) is int
    # a bool is not a stride or a rate (--set window_stride=true / hidden_dropout=false were taken as 1 s / 0)
    for overrides, match in (({"window_stride": True}, r"window_stride: expected a positive number, got True"),
                             ({"hidden_dropout": False}, r"hidden_dropout: expected a dropout probability in \[0, 1\), got False")):
        with pytest.raises(ValueError, match=match):
            apply_config_overrides(cfg, overrides)
    # numpy scalars are stored as Python numbers, so the config (and metrics.json) serialise; before, an
    # np.int64 head width failed in json.dumps inside from_pretrained and an np.float32 stride was refused
    got = apply_config_overrides(cfg, {"decoding_head_hidden_size": np.int64(8), "window_stride": np.float64(0.05),
                                       "hidden_dropout": np.float64(0.1)})
    assert {k: type(v) for k, v in got.items()} == {"decoding_head_hidden_size": int, "window_stride": float,
                                                     "hidden_dropout": float}
    assert type(cfg.decoding_head_hidden_size) is int and cfg.window_stride == pytest.approx(0.05)
    assert json.loads(cfg.to_json_string())["decoding_head_hidden_size"] == 8
    # a float32 stride kept its rounding (0.05000000074505806 s) once made a Python float: refused, config unchanged
    with pytest.raises(ValueError, match=r"^NeuroformerConfig\.window_stride: expected a Python float or float64"):
        apply_config_overrides(cfg, {"window_stride": np.float32(0.025)})
    assert cfg.window_stride == 0.05


def test_attention_pool_loads_initialised_ignores_padding_and_reloads(a2929, pretrained, tmp_path):
    """``decoding_pool="attention"``: the new read-out is initialised (not left empty) when a pretraining
    checkpoint is loaded, puts zero weight on padding (extra padding leaves every prediction unchanged),
    and a fine-tuned decoder with it reloads with the same predictions."""
    cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
    targets = [DecodingTarget("x", "regression")]
    dsd, rep = _x_windows(a2929, pretrained)
    model, info = nf.NeuroformerForBehaviorDecoding.from_pretrained(
        pretrained, decoding_targets=target_dicts(targets, rep), decoding_pool="attention", output_loading_info=True)
    assert not info["unexpected_keys"]
    assert {k.split(".")[0] for k in info["missing_keys"]} == {"decoding_heads", "attention_pool"}
    q = model.attention_pool.q_proj.weight
    assert torch.isfinite(q).all() and 0.5 * cfg.initializer_range < float(q.detach().std()) < 2 * cfg.initializer_range
    model.eval()
    items = [dsd["train"][i] for i in range(12)]
    batch = DecodingCollator(["target_x"])(items)
    padded = {k: v for k, v in batch.items()}
    for key, mask in (("input_ids", "attention_mask"), ("past_input_ids", "past_attention_mask")):
        extra = 7
        pad = torch.full((batch[key].shape[0], extra), cfg.pad_token_id, dtype=batch[key].dtype)
        padded[key] = torch.cat([batch[key], pad], 1)
        padded[mask] = torch.cat([batch[mask], torch.zeros_like(pad, dtype=batch[mask].dtype)], 1)
        dt_key = "dt_ids" if key == "input_ids" else "past_dt_ids"
        padded[dt_key] = torch.cat([batch[dt_key], torch.zeros_like(pad, dtype=batch[dt_key].dtype)], 1)
    for key in ("token_labels", "dt_labels"):
        if key in batch:
            padded[key] = torch.cat([batch[key], torch.full((batch[key].shape[0], 7), -100, dtype=batch[key].dtype)], 1)
    with torch.no_grad():
        out = model.neuroformer(**{k: padded[k] for k in ("input_ids", "dt_ids", "attention_mask", "past_input_ids",
                                                          "past_dt_ids", "past_attention_mask")})
        _, w = model.attention_pool(out.last_hidden_state, padded["attention_mask"], out.past_hidden_state,
                                    padded["past_attention_mask"], return_weights=True)
        real = torch.cat([padded["attention_mask"], padded["past_attention_mask"]], 1).bool()
        assert float(w.masked_select(~real[:, None, :].expand_as(w)).abs().max()) == 0.0
        torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)))
        torch.testing.assert_close(model(**padded).predictions, model(**batch).predictions, atol=1e-5, rtol=1e-5)
        # a row with no real token in either window (the tokenizer never builds one: BOS in both) reads nothing:
        # zero weights and a finite vector, not a softmax over nothing (NaN, which poisons the batch's loss)
        cm, pm = padded["attention_mask"].clone(), padded["past_attention_mask"].clone()
        cm[0], pm[0] = 0, 0
        p0, w0 = model.attention_pool(out.last_hidden_state, cm, out.past_hidden_state, pm, return_weights=True)
        p1 = model.attention_pool(out.last_hidden_state, padded["attention_mask"], out.past_hidden_state,
                                  padded["past_attention_mask"])
        assert torch.isfinite(p0).all() and float(w0[0].abs().max()) == 0.0
        torch.testing.assert_close(p0[1:], p1[1:])

    out_dir = tmp_path / "attn"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the load report names only the new heads and read-out: no warning
        # (the tiny config's 24-token windows truncate a few spikes, which finetune reports as a warning)
        warnings.filterwarnings("ignore", message=r".*current-window spikes truncated")
        m = finetune(pretrained, a2929, targets, output_dir=out_dir, max_steps=2, batch_size=16, seed=0,
                     config_overrides={"decoding_pool": "attention"})
    assert json.loads((out_dir / "config.json").read_text())["decoding_pool"] == "attention"
    assert np.isfinite(m["test/x/r2"])
    a = nf.NeuroformerForBehaviorDecoding.from_pretrained(out_dir).eval()
    b = nf.NeuroformerForBehaviorDecoding.from_pretrained(out_dir).eval()
    with torch.no_grad():
        torch.testing.assert_close(a(**batch).predictions, b(**batch).predictions)
    torch.testing.assert_close(a.attention_pool.q_proj.weight, b.attention_pool.q_proj.weight)


def test_every_trial_window_gets_its_trial_label_despite_float_round_off(steinmetz):
    """Window starts lie on a 1 ns grid (``np.round(., 9)``) while trial starts are raw floats, so the
    first window of a trial can start a hair before it (1.4 vs 1.4000000000000001). Such windows
    were looked up in the previous trial, got NaN and were dropped as "undefined target" (102 train
    windows of the Steinmetz benchmark). No label of ``motorLabel`` is NaN: no window may be lost."""
    assert np.all(np.isfinite(np.asarray(steinmetz.trial_info["motorLabel"], dtype=float)))
    cfg = nf.NeuroformerConfig(**{**TINY, "split_by": "trials"})
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(steinmetz)
    plan = nf.plan_splits(steinmetz, cfg)
    starts, clips = nf.windows.window_starts_for_split(plan, "train", cfg, stride=cfg.current_window)
    behind = clips - starts  # how far the rounded window start lies before its own trial's start
    assert behind.max() > 0, "this recording no longer has a rounded-down window start; pick another check"
    vals = target_values(steinmetz, DecodingTarget("trial:motorLabel", "classification"), starts, cfg.current_window)
    assert np.isfinite(vals).all(), f"{np.isnan(vals).sum()} of {len(vals)} windows lost their label"
    own = np.searchsorted(steinmetz.trials[:, 0], clips)  # the trial each window was cut from
    assert np.array_equal(vals, np.asarray(steinmetz.trial_info["motorLabel"], dtype=float)[own])
    _, report = build_decoding_datasets(steinmetz, tok, cfg, plan, [DecodingTarget("trial:motorLabel", "classification")])
    for split in ("train", "validation", "test"):
        assert report[split]["n_nan"] == {"trial:motorLabel": 0}, (split, report[split])
        assert report[split]["n_dropped"] == 0


def test_circular_target_in_degrees_is_refused_before_training(a2929):
    """Head direction in degrees was accepted as a circular target and decoded at chance (the ridge
    baseline's error went from 23 deg to 88 deg): refused, whether the unit says so or not."""
    from hf_neuroformer.recording import BehaviourSeries

    ry = a2929.behaviour["ry"]
    assert ry.unit.strip().lower().startswith("rad")
    rec = copy.copy(a2929)
    rec.behaviour = {**a2929.behaviour,
                     "ry_deg": BehaviourSeries(ry.timestamps, np.degrees(ry.values), "deg"),
                     "ry_unlabelled": BehaviourSeries(ry.timestamps, np.degrees(ry.values), "")}
    starts = np.arange(700.0, 710.0, 0.1)
    with pytest.raises(DecodingTargetError, match=r"'ry_deg' \(circular\): the series is in 'deg'.*deg2rad"):
        target_values(rec, DecodingTarget("ry_deg", "circular"), starts, 0.1)
    with pytest.raises(DecodingTargetError, match=r"'ry_unlabelled' \(circular\): expected angles in radians"):
        target_values(rec, DecodingTarget("ry_unlabelled", "circular"), starts, 0.1)
    # radians pass; the same numbers as a regression target are not angles and pass too
    assert np.isfinite(target_values(rec, DecodingTarget("ry", "circular"), starts, 0.1)).all()
    assert np.isfinite(target_values(rec, DecodingTarget("ry_unlabelled", "regression"), starts, 0.1)).all()


@pytest.fixture(scope="module")
def position2d(a2929, tmp_path_factory):
    """``(rec, path)``: the A2929 recording plus its real x and y as one (n, 2) series 'position' (as
    an NWB SpatialSeries of position often is), and that recording written as an NWB file."""
    from hf_neuroformer.io import write_nwb
    from hf_neuroformer.recording import BehaviourSeries

    x, y = a2929.behaviour["x"], a2929.behaviour["y"]
    rec = copy.copy(a2929)
    rec.behaviour = {**a2929.behaviour, "position": BehaviourSeries(x.timestamps, np.stack([x.values, y.values], 1), "m")}
    path = tmp_path_factory.mktemp("pos2d") / "position2d.nwb"
    write_nwb(rec, path)
    return rec, path


def test_a_2d_series_is_decoded_by_column_and_a_missing_column_says_how_to_pick_one(position2d):
    """An NWB SpatialSeries of position is often (n, 2): each column is a target of its own, labelled
    position[k] (dataset column, metric keys); without a column the error says how to pick one, in
    Python and on the command line, and expand_columns makes one target per column."""
    rec, _ = position2d
    starts = np.arange(700.0, 710.0, 0.1)
    for k, name in enumerate(("x", "y")):
        t = DecodingTarget("position", "regression", column=k)
        assert (t.label, t.column_name) == (f"position[{k}]", f"target_position[{k}]")
        np.testing.assert_array_equal(target_values(rec, t, starts, 0.1),
                                      target_values(rec, DecodingTarget(name, "regression"), starts, 0.1))
    with pytest.raises(DecodingTargetError, match=r"'position': the series has 2 columns; pick one with "
                                                  r"DecodingTarget\('position', kind, column=k\), k in \[0, 2\), or take "
                                                  r"one target per column with expand_columns \(the neuroformer command: "
                                                  r"--target position decodes every column"):
        target_values(rec, DecodingTarget("position", "regression"), starts, 0.1)
    given = [DecodingTarget("position", "regression", weight=2.0), DecodingTarget("ry", "circular")]
    out = expand_columns(rec, given)
    assert [(t.label, t.kind, t.column, t.weight) for t in out] == [
        ("position[0]", "regression", 0, 2.0), ("position[1]", "regression", 1, 2.0), ("ry", "circular", None, 1.0)]
    assert given[0].column is None  # the given targets are not changed
    for bad, said in (([DecodingTarget("position", "regression", column=2)], r"'position\[2\]': column 2 outside \[0, 2\)"),
                      ([DecodingTarget("x", "regression", column=1)], r"'x\[1\]': column 1 given for a 1-D series"),
                      ([DecodingTarget("position", "regression"), DecodingTarget("position", "regression", column=0)],
                       r"targets 'position' and 'position\[0\]' both decode column 0 of 'position'"),
                      ([DecodingTarget("x", "regression"), DecodingTarget("x", "regression", column=0)],
                       r"targets 'x' and 'x\[0\]' both decode column 0 of 'x'")):
        with pytest.raises(DecodingTargetError, match=said):
            expand_columns(rec, bad)
    assert [t.label for t in expand_columns(rec, [DecodingTarget("x", "regression", column=0)])] == ["x[0]"]


def test_the_command_decodes_every_column_of_a_2d_series(position2d, pretrained, tmp_path, capsys):
    """'neuroformer finetune --target position' on an NWB file whose position is (n, 2) refused it
    ("pick one in Python"); now each column is a target, position[0] and position[1] (dataset
    columns, metric keys, config.decoding_targets, the printed table), and the saved decoder reloads
    and scores by the same names. --target 'position[1]' decodes that column alone."""
    from hf_neuroformer.cli import main
    from hf_neuroformer.io import load_recording

    _, path = position2d
    out = tmp_path / "both"
    base = ["finetune", "--model", str(pretrained), "--data", str(path), "--max-steps", "1",
            "--eval-steps", "1", "--batch-size", "8"]
    capsys.readouterr()
    rc = main(base + ["--target", "position,ry", "--kind", "regression,circular", "--output-dir", str(out)])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert "targets: position[0] (regression), position[1] (regression), ry (circular)" in text
    assert "test/position[0]/r2" in text and "test/position[1]/r2" in text and "test/ry/mean_angular_error_deg" in text
    m = json.loads((out / "metrics.json").read_text())
    assert {"test/position[0]/r2", "test/position[1]/r2", "validation/position[1]/pearson_r"} <= set(m)
    cfg = json.loads((out / "config.json").read_text())
    assert [(t["name"], t["column"], t["kind"]) for t in cfg["decoding_targets"]] == [
        ("position", 0, "regression"), ("position", 1, "regression"), ("ry", None, "circular")]
    assert cfg["decoding_targets"][0]["mean"] != cfg["decoding_targets"][1]["mean"]  # x and y, not one column twice
    # the saved decoder reloads and is scored under the same names (collator columns, metric keys)
    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(out)
    tok = nf.NeuroformerTokenizer.from_pretrained(out)
    plan = nf.windows.SplitPlan.from_dict(json.loads((out / "splits.json").read_text()))
    rec = load_recording(path)  # the recording the command read
    targets = expand_columns(rec, [DecodingTarget("position", "regression"), DecodingTarget("ry", "circular")])
    dsd, _ = build_decoding_datasets(rec, tok, model.config, plan, targets)
    assert {"target_position[0]", "target_position[1]", "target_ry"} <= set(dsd["test"].column_names)
    ev = build_trainer(model, None, dsd["test"], tmp_path / "ev", per_device_eval_batch_size=64).evaluate()
    assert ev["eval_position[1]/r2"] == pytest.approx(m["test/position[1]/r2"], rel=1e-4, abs=1e-6)
    # the baselines read the same column (they looked for 'target_position' and refused)
    from hf_neuroformer.baselines import evaluate_baselines

    ridge = [evaluate_baselines(dsd, tok, model.config, t, seeds=(0,), baselines=("ridge",)) for t in targets[:2]]
    assert [r["target"] for r in ridge] == ["position[0]", "position[1]"]
    assert ridge[0]["results"]["ridge"]["mean"]["r2"] != ridge[1]["results"]["ridge"]["mean"]["r2"]  # x, then y
    # one column: its own name; --kind per --target item applies to each column of a 2-D item
    one = tmp_path / "one"
    assert main(base + ["--target", "position[1]", "--output-dir", str(one)]) == 0
    m1 = json.loads((one / "metrics.json").read_text())
    assert "test/position[1]/r2" in m1 and not any(k.startswith("test/position[0]") for k in m1)
    assert [(t["name"], t["column"]) for t in json.loads((one / "config.json").read_text())["decoding_targets"]] == [
        ("position", 1)]


@pytest.mark.parametrize("target,kind,said", [
    ("position[2]", None, r"--target: target 'position\[2\]': column 2 outside \[0, 2\)"),
    ("x[1]", None, r"--target: target 'x\[1\]': column 1 given for a 1-D series"),
    ("position,position[0]", None, r"--target: targets 'position' and 'position\[0\]' both decode column 0 of 'position'"),
    ("x,x[0]", None, r"--target: targets 'x' and 'x\[0\]' both decode column 0 of 'x'"),
    ("position[1],position[1]", None, r"--target: each target once, got \['position\[1\]', 'position\[1\]'\]"),
    ("position,ry", "regression", r"--kind: expected one kind per --target item \(2; a 2-D series' kind applies to each "
                                  r"of its columns\), got 1"),
    ("ry", "regression,circular", r"--kind: expected one kind per --target item \(1; .*\), got 2: "
                                  r"\['regression', 'circular'\]$"),  # the kinds as counted, not the flag's text
    ("position[", None, r"--target: 'position\[' is not NAME or NAME\[k\]; expected .* NAME\[k\] with k an integer >= 0"),
    ("position[a]", None, r"--target: 'position\[a\]' is not NAME or NAME\[k\]"),
    ("position[-1]", None, r"--target: 'position\[-1\]' is not NAME or NAME\[k\]"),
    ("position]", None, r"--target: 'position\]' is not NAME or NAME\[k\]"),
], ids=["out-of-range", "1-D", "twice", "1-D-twice", "same-item", "kind-count", "kind-list", "open", "letter", "negative", "close"])
def test_the_command_refuses_a_bad_column_of_a_target(position2d, pretrained, tmp_path, capsys, target, kind, said):
    """Each refusal: exit 2, one line naming the flag and what was expected, nothing written."""
    from hf_neuroformer.cli import main

    capsys.readouterr()
    rc = main(["finetune", "--model", str(pretrained), "--data", str(position2d[1]), "--target", target]
              + (["--kind", kind] if kind else []) + ["--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and re.search(said, err) and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def test_the_command_decodes_a_series_whose_own_name_has_brackets(a2929, pretrained, tmp_path, capsys):
    """Break test: an NWB series may be named with brackets, e.g. 'head[0]' (a 1-D series, listed
    by the recording): --target 'head[0]' was read as column 0 of a series 'head' and refused with
    "'head': not in this recording; available targets: ['head[0]', ...]". A --target item that is
    a behaviour series' own name is that series."""
    from hf_neuroformer.cli import main
    from hf_neuroformer.io import write_nwb
    from hf_neuroformer.recording import BehaviourSeries

    y = a2929.behaviour["y"]
    rec = copy.copy(a2929)
    rec.behaviour = {**a2929.behaviour, "head[0]": BehaviourSeries(y.timestamps, y.values, "m")}
    path = tmp_path / "bracket.nwb"
    write_nwb(rec, path)
    out = tmp_path / "o"
    capsys.readouterr()
    rc = main(["finetune", "--model", str(pretrained), "--data", str(path), "--target", "head[0]", "--max-steps", "1",
               "--eval-steps", "1", "--batch-size", "8", "--output-dir", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert [(t["name"], t["column"]) for t in json.loads((out / "config.json").read_text())["decoding_targets"]] == [
        ("head[0]", None)]
    assert "test/head[0]/r2" in json.loads((out / "metrics.json").read_text())


def test_a_constant_target_is_refused_as_constant_whatever_its_kind(a2929):
    """A series whose finite values are all equal (all zeros) was refused for kind circular as
    "whole numbers ... class labels" (misleading) and passed as a regression target (a head fitted to
    one value, R² undefined); now every kind says it is a constant with nothing to decode."""
    from hf_neuroformer.recording import BehaviourSeries

    x = a2929.behaviour["x"]
    rec = copy.copy(a2929)
    still = np.zeros(x.values.shape)
    still[::7] = np.nan  # NaN samples are not values
    rec.behaviour = {**a2929.behaviour, "still": BehaviourSeries(x.timestamps, still, "rad"),
                     "level": BehaviourSeries(x.timestamps, np.full(x.values.shape, 0.25), "m")}
    n = int(np.isfinite(still).sum())
    starts = np.arange(700.0, 710.0, 0.1)
    for kind in KINDS:
        with pytest.raises(DecodingTargetError, match=rf"'still' \({kind}\): all {n} finite values equal 0, a constant: "
                                                      "nothing to decode"):
            target_values(rec, DecodingTarget("still", kind), starts, 0.1)
    assert kind_problem(rec, DecodingTarget("level", "regression")).startswith(
        f"all {x.values.size} finite values equal 0.25, a constant: nothing to decode")


@pytest.mark.parametrize("kind", [None, "regression"])
def test_the_command_refuses_a_constant_column_by_its_label_without_blaming_the_kind(a2929, pretrained, tmp_path,
                                                                                       capsys, kind):
    """Break test: --target position, whose column 1 is all zeros, was refused with "the default
    kind 'regression' ... does not fit: ... a constant: nothing to decode; choose one with --kind"
    (and with --kind, as "--kind regression for --target ..."), though no kind fits a constant: the
    refusal names the column's label and says nothing of --kind."""
    from hf_neuroformer.cli import main
    from hf_neuroformer.io import write_nwb
    from hf_neuroformer.recording import BehaviourSeries

    x = a2929.behaviour["x"]
    rec = copy.copy(a2929)
    rec.behaviour = {**a2929.behaviour,
                     "position": BehaviourSeries(x.timestamps, np.stack([x.values, np.zeros(x.values.shape)], 1), "m")}
    path = tmp_path / "still.nwb"
    write_nwb(rec, path)
    capsys.readouterr()
    rc = main(["finetune", "--model", str(pretrained), "--data", str(path), "--target", "position"]
              + (["--kind", kind] if kind else []) + ["--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and re.search(rf"--target 'position\[1\]': all {x.values.size} finite values equal 0, a constant: "
                                 "nothing to decode", err), err
    assert "--kind" not in err and not (tmp_path / "o").exists()


def test_a_column_without_a_finite_value_is_refused_before_any_window(a2929, pretrained, shared_data, tmp_path,
                                                                       capsys):
    """Break test: --target position whose column 1 is all NaN (a tracker that lost one axis) passed
    every check, tokenized every window and then failed with "no training window left ...
    'n_dropped_nan': {'position[0]': 0, 'position[1]': 1182}"; the column is now refused first, by
    its label, for every kind: no finite value, nothing to decode (as x and y of the nelpy track in
    its rest epoch are)."""
    from hf_neuroformer.cli import main
    from hf_neuroformer.io import write_nwb
    from hf_neuroformer.recording import BehaviourSeries

    x = a2929.behaviour["x"]
    rec = copy.copy(a2929)
    rec.behaviour = {**a2929.behaviour, "position": BehaviourSeries(
        x.timestamps, np.stack([x.values, np.full(x.values.shape, np.nan)], 1), "m")}
    for kind in KINDS:
        assert kind_problem(rec, DecodingTarget("position", kind, column=1)).startswith(
            f"all {x.values.size} values are NaN (no finite value): nothing to decode")
    assert kind_problem(rec, DecodingTarget("position", "regression", column=0)) is None
    from hf_neuroformer.io import load_recording  # the nelpy track's rest epoch: x and y are all NaN there

    rest = load_recording(shared_data("nelpy_hippocampus/linear-track"), epoch="rest")
    assert "(no finite value): nothing to decode" in kind_problem(rest, DecodingTarget("x", "regression"))
    path = tmp_path / "lost.nwb"
    write_nwb(rec, path)
    capsys.readouterr()
    rc = main(["finetune", "--model", str(pretrained), "--data", str(path), "--target", "position",
               "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "--target 'position[1]': all " in err and "no finite value" in err, err
    assert not (tmp_path / "o").exists()


def test_class_labels_as_a_circular_target_are_refused(steinmetz):
    """The wheel choice -1/0/1 as a circular target was decoded as angles of -1, 0 and 1 rad (circular
    mean, angular errors in degrees); whole-number labels are class codes, not radians: refused
    before any window is tokenized. As classes or numbers they still pass."""
    cfg = nf.NeuroformerConfig(**{**TINY, "past_window": 0.2})
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(steinmetz)
    with pytest.raises(DecodingTargetError, match=r"'trial:motorLabel' \(circular\): expected angles in radians, a "
                                                  r"numeric series .* whole numbers \(3 distinct: \[-1, 0, 1\]\)"):
        build_decoding_datasets(steinmetz, tok, cfg, None, [DecodingTarget("trial:motorLabel", "circular")])
    starts = np.asarray(steinmetz.trials[:5, 0])
    for kind in ("classification", "regression"):
        v = target_values(steinmetz, DecodingTarget("trial:motorLabel", kind), starts, cfg.current_window)
        np.testing.assert_array_equal(v, steinmetz.trial_info["motorLabel"][:5])


def test_missing_labels_leave_the_loss_and_trainers_item_count(a2929, pretrained, tmp_path):
    """NaN = no label: it is left out of the loss sum AND of its count. The count used to include
    NaN (``labels != -100``), so 4 NaN labels of 8 halved the loss (0.62 against 1.24 for the same
    4 labelled windows alone)."""
    from hf_neuroformer.finetuning import DecodingTrainer

    cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
    targets = [DecodingTarget("x", "regression")]
    dsd, report = _x_windows(a2929, pretrained)
    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(
        pretrained, decoding_targets=target_dicts(targets, report), hidden_dropout=0.0).eval()
    collate = DecodingCollator(["target_x"], cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id)
    batch = collate([dsd["train"][i] for i in range(8)])
    with torch.no_grad():
        full = model(**batch).loss.item()
        part = {**batch, "labels": batch["labels"].clone()}
        part["labels"][:4] = float("nan")
        with_nan = model(**part).loss.item()
        alone = model(**collate([dsd["train"][i] for i in range(4, 8)])).loss.item()
    assert with_nan == pytest.approx(alone, rel=1e-5) and with_nan != pytest.approx(full, rel=1e-3)
    # Trainer's num_items_in_batch (gradient accumulation) counts the same entries
    trainer = build_trainer(model, dsd["train"], None, tmp_path / "t", per_device_train_batch_size=8, max_steps=1)
    assert isinstance(trainer, DecodingTrainer)
    assert int(trainer._get_num_items_in_batch([part, batch], torch.device("cpu"))) == 4 + 8


def test_make_compute_metrics_works_in_a_plain_trainer_without_label_names(a2929, pretrained, tmp_path):
    """A plain ``Trainer`` without ``label_names`` gathers every forward argument named like a label,
    ``(labels, token_labels, dt_labels)``: ``make_compute_metrics`` failed on that tuple in numpy
    ("inhomogeneous shape"), naming nothing. It scores the first, as with ``label_names=["labels"]``,
    and labels of the wrong shape are refused naming ``label_ids`` and the fix."""
    from transformers import EvalPrediction, Trainer, TrainingArguments

    from hf_neuroformer.finetuning import make_compute_metrics

    tok = nf.NeuroformerTokenizer.from_pretrained(pretrained)
    cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
    targets = [DecodingTarget("ry", "circular"), DecodingTarget("x", "regression")]
    dsd, report = build_decoding_datasets(a2929, tok, cfg, None, targets)
    td = target_dicts(targets, report)
    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(pretrained, decoding_targets=td)
    collate = DecodingCollator(["target_ry", "target_x"], cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id)
    scores = []
    # eval_do_concat_batches=False hands over one entry per batch (3 of 16, 16 and 8 windows here):
    # it failed in numpy with "inhomogeneous shape" (Trainer's own option, stop 32's leftover)
    for label_names, concat in ((None, True), (["labels"], True), (None, False), (["labels"], False)):
        args = TrainingArguments(output_dir=str(tmp_path), per_device_eval_batch_size=16, report_to=[], use_cpu=True,
                                 remove_unused_columns=False, disable_tqdm=True, label_names=label_names,
                                 eval_do_concat_batches=concat)
        trainer = Trainer(model=model, args=args, data_collator=collate, compute_metrics=make_compute_metrics(td))
        scores.append(trainer.evaluate(dsd["validation"].select(range(40))))
    for s in scores[1:]:
        assert s["eval_x/n"] == 40 and s["eval_x/r2"] == pytest.approx(scores[0]["eval_x/r2"], abs=1e-9)
        assert s["eval_ry/circular_r"] == pytest.approx(scores[0]["eval_ry/circular_r"], abs=1e-9)
    with pytest.raises(ValueError, match=r"label_ids: expected the decoding targets, shape \(3, 2\).*got \(3, 5\); "
                                         r"give Trainer TrainingArguments\(label_names=\['labels'\]\)"):
        make_compute_metrics(td)(EvalPrediction(np.zeros((3, 2)), np.zeros((3, 5))))


def test_finetune_feeds_the_configs_modalities_and_refuses_a_target_it_reads(a2929, tmp_path):
    """A config with ``modalities`` used to fail inside ``Trainer.train()`` (the decoding collator
    built no ``modality_inputs``). Now the modality reaches the model; and decoding a variable the
    model also reads as an input is refused, since it would be given the answer."""
    mod = {"name": "head_direction", "source": "behaviour:ry", "kind": "continuous", "window": [-0.3, 0.0],
           "normalization": "circular"}
    cfg = nf.NeuroformerConfig(**{**TINY, "modalities": [mod]})
    m = finetune(None, a2929, [DecodingTarget("x", "regression")], output_dir=tmp_path / "ok", config=cfg,
                 max_steps=2, eval_steps=2, batch_size=8, seed=0, progress=False)
    assert np.isfinite(m["test/x/r2"]) and m["total_steps"] == 2
    saved = nf.NeuroformerConfig.from_pretrained(tmp_path / "ok")
    assert [x["name"] for x in saved.modalities] == ["head_direction"]
    with pytest.raises(DecodingTargetError, match=r"target 'ry': the model reads 'behaviour:ry' as its input modality"):
        finetune(None, a2929, [DecodingTarget("ry", "circular")], output_dir=tmp_path / "leak", config=cfg,
                 max_steps=2, batch_size=8)


def test_decode_windows_warns_of_windows_without_the_decoders_input_modality(a2929, shared_data, tmp_path):
    """Break test: a decoder reading head direction as an input, applied to the sleep epoch (no
    tracking), decoded every window with no input at all and said nothing: the sleep values rest
    on the spikes alone, an input the decoder never had in fine-tuning."""
    from hf_neuroformer.finetuning import decode_windows, load_decoder, windows_tiling
    from hf_neuroformer.io import load_recording

    mod = {"name": "head_direction", "source": "behaviour:ry", "kind": "continuous", "window": [-0.3, 0.0],
           "normalization": "circular"}
    cfg = nf.NeuroformerConfig(**{**TINY, "modalities": [mod]})
    finetune(None, a2929, [DecodingTarget("x", "regression")], output_dir=tmp_path / "d", config=cfg,
             max_steps=1, eval_steps=1, batch_size=8, seed=0, progress=False)
    model, tok, plan = load_decoder(tmp_path / "d")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # tracked windows: no warning
        _, info = decode_windows(model, tok, a2929, windows_tiling(a2929, model.config)[0][-20:])
    assert info["windows_without_input"] == {}
    sleep = load_recording(shared_data(A2929), epoch="sleep").restrict(100.0, 110.0)
    starts = windows_tiling(sleep, model.config)[0]
    with pytest.warns(UserWarning, match=rf"{len(starts)} of {len(starts)} windows have no value of the decoder's "
                                         r"input modality 'head_direction' \(source 'behaviour:ry'\)"):
        table, info = decode_windows(model, tok, sleep, starts)
    assert info["windows_without_input"] == {"head_direction": len(starts)} and len(table) == len(starts)
    # fine-tuning this decoder further where no training window holds head direction: the error told to pass
    # another split_seed or split_block_length or to remove the modality from the config, none of which
    # finetune from a model can do (its config and splits.json are the model's)
    from hf_neuroformer.recording import BehaviourSeries

    ry = a2929.behaviour["ry"]
    values = np.array(ry.values, dtype=np.float64)
    for a, b in plan.segments["train"]:
        values[(ry.timestamps >= a - 0.5) & (ry.timestamps < b)] = np.nan
    lost = copy.copy(a2929)
    lost.behaviour = {**a2929.behaviour, "ry": BehaviourSeries(ry.timestamps, values, ry.unit)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the NaN samples, counted
        with pytest.raises(ValueError, match=r"none of the \d+ train windows holds a value of it, .*; the model "
                                             r"'.*d' reads it, and the config is the model's \(split plan: checkpoint "
                                             r"splits.json\): fine-tune on a recording \(or --epoch\) where it was "
                                             r"recorded during the training split, or a model trained without it$"):
            finetune(tmp_path / "d", lost, [DecodingTarget("x", "regression")], output_dir=tmp_path / "d2",
                     max_steps=1, batch_size=8)


def test_finetune_settings_are_checked_before_the_output_folder_is_touched(a2929, pretrained, tmp_path):
    """``max_steps=0`` used to train 1 step silently, a negative auxiliary weight ran as 0 and saved a
    config that ``from_pretrained`` then refused; batch size 0 or a negative learning rate failed
    late inside Trainer, after the output folder had been claimed."""
    bad = [({"max_steps": 0}, r"max_steps: expected a whole number >= 1, got 0"),
           ({"eval_steps": 0}, r"eval_steps: expected a whole number >= 1"),
           ({"batch_size": 0}, r"batch_size: expected a whole number >= 1, got 0"),
           ({"gradient_accumulation_steps": 0}, r"gradient_accumulation_steps: expected a whole number >= 1"),
           ({"learning_rate": -1.0}, r"learning_rate: expected a finite number > 0, got -1.0"),
           ({"generative_loss_weight": -1.0}, r"generative_loss_weight: expected a finite number >= 0 \(0 = off\), got -1.0"),
           ({"generative_loss_weight": float("nan")}, r"generative_loss_weight: expected a finite number >= 0"),
           ({"fraction": 1.5}, r"fraction: expected a number in \(0, 1\], got 1.5"),
           ({"max_steps": 3.7}, r"max_steps: expected a whole number >= 1, got 3.7"),
           ({"freeze_backbone_steps": 5, "max_steps": 4},
            r"freeze_backbone_steps: expected a whole number from 0 \(off\) to max_steps=4 \(the backbone never trains\), got 5"),
           ({"freeze_backbone_steps": -1}, r"freeze_backbone_steps: expected a whole number from 0"),
           # the warm-up outlasting the run: it trained below learning_rate throughout, without a word
           ({"warmup_steps": 10, "max_steps": 4}, r"warmup_steps: expected fewer than max_steps=4 .* got 10"),
           # set_seed (numpy's legacy generator) refused these only after the model and windows were read, as
           # "Seed must be between 0 and 2**32 - 1", naming no argument
           ({"seed": 2**32}, r"^seed: expected an integer in \[0, 4294967295\] .*got 4294967296$"),
           ({"seed": -1}, r"^seed: expected an integer in \[0, 4294967295\] .*got -1$")]
    for kw, msg in bad:
        out = tmp_path / "never"
        with pytest.raises(ValueError, match=msg):
            finetune(pretrained, a2929, [DecodingTarget("x", "regression")], output_dir=out, **kw)
        assert not out.exists(), kw


def test_finetune_over_a_train_directory_leaves_none_of_its_run_files(a2929, pretrained, tmp_path):
    """A decoder written with overwrite over a 'neuroformer train' directory kept that run's
    training_curves.png, test_generation.png and training_config.json beside it, and the model
    card of a push showed the pretraining run's loss curves and generated spikes as the decoder's."""
    import shutil

    from hf_neuroformer.hub import build_model_card, save_for_hub

    out = tmp_path / "dir"
    shutil.copytree(pretrained, out)
    # the pretrained fixture skips the test-split generation (training.generate_test false), so it wrote no
    # test_generation.png: put the figure a run with generation leaves (its curves' PNG bytes stand in for it)
    # where 'neuroformer train' writes it
    shutil.copyfile(out / "training_curves.png", out / "test_generation.png")
    before = {p.name for p in out.iterdir()}
    assert {"training_curves.png", "test_generation.png", "training_config.json"} <= before, before
    finetune(pretrained, a2929, [DecodingTarget("x", "regression")], output_dir=out, max_steps=2, eval_steps=2,
             batch_size=16, seed=0, overwrite=True, write_figures=True)
    after = {p.name for p in out.iterdir()}
    assert not after & {"training_curves.png", "test_generation.png", "training_config.json"}, after
    assert {"model.safetensors", "metrics.json", "decoding_report.json", "training_log.json"} <= after, after
    stage = tmp_path / "stage"
    stage.mkdir()
    card = str(build_model_card(stage, "lab/decoder", save_for_hub(out, stage)))
    # the card shows the decoder's own figure only
    assert "x/r2" in card and "![test_decoding.png](test_decoding.png)" in card
    assert "![training_curves.png]" not in card and "![test_generation.png]" not in card


def test_a_window_mask_of_values_rather_than_true_false_is_refused_not_read_as_all_true(a2929, pretrained):
    """window_mask returning the head speed itself (forgetting '> threshold') was cast to bool: every
    window with a nonzero (or NaN) speed was kept and the report said 0 dropped by the mask."""
    cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
    tok = nf.NeuroformerTokenizer.from_pretrained(pretrained)
    x = a2929.behaviour["x"]

    def x_at(recording, starts):  # the tracked x near each window start (NaN before tracking starts)
        return np.interp(starts, x.timestamps, x.values, left=np.nan) + 1.0

    with pytest.raises(ValueError, match=r"window_mask: expected a \(\d+,\) bool array .* got dtype float64"):
        build_decoding_datasets(a2929, tok, cfg, None, [DecodingTarget("ry", "circular")], window_mask=x_at)
    # a comparison, and 0/1 integers, are masks
    _, report = build_decoding_datasets(a2929, tok, cfg, None, [DecodingTarget("ry", "circular")],
                                        window_mask=lambda r, s: x_at(r, s) > 1.1)
    _, report01 = build_decoding_datasets(a2929, tok, cfg, None, [DecodingTarget("ry", "circular")],
                                          window_mask=lambda r, s: (x_at(r, s) > 1.1).astype(np.int64))
    assert report["train"]["n_dropped_mask"] == report01["train"]["n_dropped_mask"] > 0


def test_truncated_spikes_of_decoding_windows_are_counted_and_continuous_labels_refused(a2929, pretrained):
    cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
    cfg.max_window_length = 4  # BOS + 2 spikes + EOS: most 100 ms windows of A2929 hold more
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(a2929)
    dsd, report = build_decoding_datasets(a2929, tok, cfg, None, [DecodingTarget("x", "regression")])
    for split in ("train", "validation", "test"):
        n = np.asarray(dsd[split]["n_spikes"])
        assert report[split]["n_spikes"] == n.sum()
        assert report[split]["n_truncated_spikes"] == np.maximum(n - 2, 0).sum() > 0, split
        assert report[split]["n_truncated_past_spikes"] == sum(dsd[split]["n_past_truncated"])
    # a continuous variable as classes: one short error, not a list of every value as "unseen labels";
    # refused from the recorded values, before any window is made (kind_problem)
    with pytest.raises(DecodingTargetError, match=r"'x' \(classification\): expected class labels \(whole numbers\), "
                                                  r"but \d+ of its \d+ distinct values are not whole.*kind 'regression'") as e:
        build_decoding_datasets(a2929, tok, cfg, None, [DecodingTarget("x", "classification")])
    assert len(str(e.value)) < 400
    # whole-number samples (x in thousandths: a series that changes inside a window) pass that check; each
    # window takes its most frequent label, and the labels that train lacks are named in one short warning
    x = a2929.behaviour["x"]
    rec = copy.copy(a2929)
    rec.behaviour = {**a2929.behaviour, "x_int": nf.BehaviourSeries(x.timestamps, np.round(x.values * 1000), "")}
    with pytest.warns(UserWarning, match=r"'x_int': \d+ validation windows? holds? labels \[.*\] and \d+ more "
                                         r"that the train split never has") as e:
        build_decoding_datasets(rec, tok, cfg, None, [DecodingTarget("x_int", "classification")])
    assert all(len(str(w.message)) < 600 for w in e)
    # pointing at the caller's line (as the split plan's warnings of the same call), not into the package
    ours = [w for w in e if str(w.message).startswith(("target 'x_int'", "split_block_length:"))]
    assert ours and {w.filename for w in ours} == {__file__}, [(str(w.message)[:60], w.filename) for w in e]


def test_event_stream_with_no_samples_as_target_says_so(a2929, pretrained, tmp_path):
    # sleep_ripples is a behaviour series with no samples in the wake epoch and an event stream: the
    # error named only the dropped-window counts (README walkthrough)
    assert a2929.behaviour["sleep_ripples"].timestamps.size == 0 and "sleep_ripples" in a2929.events
    # (refused by check_targets_sampled before any window is tokenized, as `neuroformer finetune` does)
    with pytest.raises(DecodingTargetError, match=r"^target 'sleep_ripples': the behaviour series 'sleep_ripples' has "
                                                  r"no sample in recording \(670.000-850.000 s\); expected a variable "
                                                  r"recorded there \(it is an event stream"):
        finetune(pretrained, a2929, [DecodingTarget("sleep_ripples", "regression")], output_dir=tmp_path / "d",
                 max_steps=1)
    assert not (tmp_path / "d").exists()


def test_finetune_target_without_a_sample_in_the_epoch_fails_early(shared_data, pretrained, tmp_path):
    """Break test: finetune(model, sleep_recording, [DecodingTarget('ry', 'circular')]) (head direction, recorded only
    in wake) tokenized every window, then failed with "targets ['ry']: no training window left with a value of this
    target after the window mask ({...the whole split report...})"; `neuroformer finetune --epoch sleep --target ry`
    already refused it up front. The API now does too (check_targets_sampled, the one check both use), naming the
    target, the recording's time and how to select the epoch the series was recorded in, before output_dir is made."""
    from hf_neuroformer.io import load_recording

    sleep = load_recording(shared_data(A2929), epoch="sleep").restrict(0.0, 180.0)
    assert sleep.behaviour["ry"].timestamps.size == 0
    with pytest.raises(DecodingTargetError) as e:
        finetune(pretrained, sleep, [DecodingTarget("ry", "circular")],
                 output_dir=tmp_path / "d", max_steps=1)
    assert str(e.value) == ("target 'ry': the behaviour series 'ry' has no sample in recording (0.000-180.000 s); "
                            "expected a variable recorded there, or a recording of the epoch it was recorded in "
                            "(load_recording(path, epoch=...) or recording.select_epoch(...))"), e.value
    assert not (tmp_path / "d").exists()


def test_a_column_of_a_2d_series_without_a_sample_fails_early(a2929, pretrained, tmp_path):
    """A target naming a column of a 2-D series (position[1]) or the whole series (one target per column)
    in a stretch where that series has no sample is refused by check_targets_sampled, as a 1-D series is,
    naming the column's target, before output_dir is made (not as "no training window left")."""
    x, y = a2929.behaviour["x"], a2929.behaviour["y"]
    first = x.timestamps < 760.0
    rec = copy.copy(a2929)
    rec.behaviour = {**a2929.behaviour, "position": nf.BehaviourSeries(
        x.timestamps[first], np.stack([x.values[first], y.values[first]], 1), x.unit)}
    late = rec.restrict(760.0, 850.0)
    assert late.behaviour["position"].values.shape == (0, 2)
    for target, label in ((DecodingTarget("position", "regression", column=1), "position[1]"),
                          (DecodingTarget("position", "regression"), "position[0]")):
        with pytest.raises(DecodingTargetError, match=rf"^target '{re.escape(label)}': the behaviour series "
                                                      r"'position' has no sample in recording \(760.000-850.000 s\)"):
            finetune(pretrained, late, [target], output_dir=tmp_path / "d", max_steps=1)
        assert not (tmp_path / "d").exists()


def test_decoding_figure_panels_do_not_overlap():
    """A confusion matrix below a time-series panel (multitask decoder) stays in its own row: with
    the panels on two different grids the square matrix was drawn over the regression panel."""
    from hf_neuroformer.plotting import plot_decoding

    t = np.arange(40) * 0.1
    rng = np.random.default_rng(0)
    y = np.stack([rng.normal(size=40), rng.uniform(-np.pi, np.pi, 40), rng.integers(0, 3, 40)], 1)
    targets = [{"name": "hd", "kind": "circular"}, {"name": "x", "kind": "regression"},
               {"name": "choice", "kind": "classification", "classes": [-1, 0, 1]}]
    fig = plot_decoding(t, y, y[::-1].copy(), targets)
    fig.canvas.draw()
    boxes = [ax.get_tightbbox(fig.canvas.get_renderer()) for ax in fig.axes[:3]]
    for upper, lower in zip(boxes, boxes[1:]):
        assert lower.y1 <= upper.y0 + 1.0, (upper, lower)  # display pixels, y upwards


def test_python_finetune_refuses_a_folder_that_is_no_model_and_targets_that_are_not_decoding_targets(
        a2929, pretrained, tmp_path):
    """Break test: finetune(empty_dir, ...) read a default config and an empty vocabulary and failed
    with "call tokenizer.add_units(recording) first"; a missing folder was "Repo id must be in the
    form ..."; targets=["ry"] or a lone DecodingTarget failed with AttributeError / TypeError deep
    inside. Each is now refused by name, before anything is written."""
    empty = tmp_path / "empty"
    empty.mkdir()
    ry = DecodingTarget("ry", "circular")
    with pytest.raises(FileNotFoundError, match=r"model_dir: '.*empty' has no config.json"):
        finetune(empty, a2929, [ry], output_dir=tmp_path / "o", max_steps=1)
    with pytest.raises(FileNotFoundError, match=r"model_dir: '.*nope' is not a directory"):
        finetune(tmp_path / "nope", a2929, [ry], output_dir=tmp_path / "o", max_steps=1)
    for bad in ("ry", ["ry"], ry, [("ry", "circular")]):
        with pytest.raises(TypeError, match=r"targets: expected a list of DecodingTarget\(name, kind\)"):
            finetune(pretrained, a2929, bad, output_dir=tmp_path / "o", max_steps=1)
    with pytest.raises(DecodingTargetError, match=r"DecodingTarget\(3\).name: expected a str"):
        DecodingTarget(3, "regression")
    assert not (tmp_path / "o").exists()


def test_finetune_into_its_own_model_folder_is_refused_and_leaves_the_model(a2929, pretrained, shared_data, tmp_path,
                                                                           capsys):
    """Break test: ``neuroformer finetune --model runs/a --output-dir runs/a --overwrite`` wrote the
    decoder over the pretrained model it started from (its weights, config, metrics, splits.json and
    figures gone); the pretrained checkpoint is the input, never an output."""
    import hashlib
    import shutil

    from hf_neuroformer.cli import main

    d = tmp_path / "pre"
    shutil.copytree(pretrained, d)
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in d.iterdir()}
    with pytest.raises(ValueError, match=r"output_dir: '.*pre' is model_dir, the model being fine-tuned"):
        finetune(d, a2929, [DecodingTarget("x", "regression")], output_dir=tmp_path / "." / "pre", max_steps=1,
                 overwrite=True)
    rc = main(["finetune", "--model", str(d), "--data", str(shared_data(A2929)), "--epoch", "wake", "--target", "x",
               "--max-steps", "1", "--output-dir", str(d) + "/", "--overwrite"])
    captured = capsys.readouterr()
    assert rc == 2 and "--output-dir: " in captured.err and "is --model, the model being fine-tuned" in captured.err
    assert "data:" not in captured.out  # refused before the recording was read
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in d.iterdir()} == before


def test_a_few_shot_block_without_spread_in_its_target_is_warned_and_recorded(a2929, pretrained, steinmetz, tmp_path):
    """Break test: ``--fraction 1e-9`` kept one training window; its regression target had sd 0, which
    was replaced by 1 without a word (train loss 0.0000), and a classification block holding one
    class trained a head that can only learn that class. Both go on (as the baselines do with a
    constant prediction), but are warned about and recorded in metrics.json."""
    with pytest.warns(UserWarning, match=r"target 'x': the 1 training window used \(fraction 1e-06\) holds one "
                                         r"value .*standardised with sd 1"):
        m = finetune(pretrained, a2929, [DecodingTarget("x", "regression")], output_dir=tmp_path / "r",
                     fraction=1e-6, max_steps=1, batch_size=8)
    assert m["n_train_windows"] == 1 and "holds one value" in m["target_notes"]["x"]
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["target_notes"] == m["target_notes"]
    cfg = nf.NeuroformerConfig(**{**TINY, "past_window": 0.2, "max_window_length": 40})
    # chosen on the loss: the other classes' balanced weight is 0, so the validation loss that chose the
    # checkpoint left their windows out, without a word
    with pytest.warns(UserWarning, match=r"target 'trial:motorLabel': the 1 training window used \(fraction "
                                         r"1e-06\) holds one class \(-?\d\) of the train split's \[-1, 0, 1\]"):
        m = finetune(None, steinmetz, [DecodingTarget("trial:motorLabel", "classification")], config=cfg,
                     output_dir=tmp_path / "c", fraction=1e-6, max_steps=1, batch_size=8, select_on="loss")
    note = m["target_notes"]["trial:motorLabel"]
    assert "holds one class" in note and "so the head can only learn that class" in note, note
    got = re.search(r"; the balanced class weight of the other classes \[(-?\d), (-?\d)\] is 0, so the validation and "
                    r"test losses leave out their windows \((\d+) of the (\d+) validation windows\), as the baselines' "
                    r"early stopping leaves out classes never fitted; the checkpoint is chosen on the validation loss "
                    r"without them; use a larger fraction$", note)
    assert got and int(got[4]) == m["validation/trial:motorLabel/n"] and 0 < int(got[3]) < int(got[4]), note
    assert m["checkpoint_selection"] == "lowest validation loss"
    # a block with spread: no note
    m = finetune(pretrained, a2929, [DecodingTarget("x", "regression")], output_dir=tmp_path / "ok", fraction=0.1,
                 max_steps=1, batch_size=8)
    assert m["target_notes"] == {}
    # continuing that decoder on a one-value block: its saved sd is used, not 1, and the note said "sd 1"
    saved = json.loads((tmp_path / "ok" / "config.json").read_text())["decoding_targets"][0]["std"]
    assert saved != 1.0
    with pytest.warns(UserWarning, match=r"holds one value .*, so it is standardised with the continued decoder's saved "
                                         rf"sd {re.escape(f'{saved:g}')} and the head can only learn a constant"):
        finetune(tmp_path / "ok", a2929, [DecodingTarget("x", "regression")], output_dir=tmp_path / "more",
                 fraction=1e-6, max_steps=1, batch_size=8)


def test_a_few_shot_block_holding_one_angle_is_warned_and_recorded(a2929, pretrained, tmp_path):
    """Break test: a few-shot block whose head direction is one angle (one window: resultant length
    1) trained a circular head that can only learn that angle, without a word, while a regression
    target without spread got a note; it now gets one too (warned, metrics.json target_notes)."""
    with pytest.warns(UserWarning, match=r"target 'ry': the 1 training window used \(fraction 1e-06\) holds one "
                                         r"angle \(-?[0-9.]+ rad, resultant length 1\), so the head can only learn "
                                         r"that angle; use a larger fraction"):
        m = finetune(pretrained, a2929, [DecodingTarget("ry", "circular")], output_dir=tmp_path / "c", fraction=1e-6,
                     max_steps=1, batch_size=8)
    assert m["n_train_windows"] == 1 and "holds one angle" in m["target_notes"]["ry"]
    assert json.loads((tmp_path / "c" / "metrics.json").read_text())["target_notes"] == m["target_notes"]
    m = finetune(pretrained, a2929, [DecodingTarget("ry", "circular")], output_dir=tmp_path / "ok", fraction=0.1,
                 max_steps=1, batch_size=8)
    assert m["target_notes"] == {}


def test_an_angle_decoded_as_regression_is_warned_about(a2929, pretrained):
    """Break test: ``--target ry --kind regression`` trained and scored a plain regression on the head
    direction without a word, though ry is in radians and wraps (A2929 wake: 0.001 to 6.276 rad,
    so 0.01 and 6.27 rad, nearly the same heading, are 6.26 apart for MSE and R²)."""
    tok = nf.NeuroformerTokenizer.from_pretrained(pretrained)
    cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
    with pytest.warns(UserWarning, match=r"target 'ry' \(regression\): the series is in radian and its training "
                                         r"values span [0-9.]+ rad \(more than pi\).*decode it as kind 'circular'") as got:
        build_decoding_datasets(a2929, tok, cfg, None, [DecodingTarget("ry", "regression")])
    # through build_decoding_datasets' helper, still the caller's line
    assert [w.filename for w in got if str(w.message).startswith("target 'ry' (regression)")] == [__file__]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_decoding_datasets(a2929, tok, cfg, None, [DecodingTarget("ry", "circular"), DecodingTarget("x", "regression")])
    # the same angle in degrees (regression is the default kind of a series in degrees, since circular
    # targets are radians) trained without a word
    ry = a2929.behaviour["ry"]
    rec = copy.copy(a2929)
    rec.behaviour = {**a2929.behaviour, "ry_deg": nf.BehaviourSeries(ry.timestamps, np.rad2deg(ry.values), "degrees")}
    with pytest.warns(UserWarning, match=r"target 'ry_deg' \(regression\): the series is in degrees and its training "
                                         r"values span [0-9.]+ degrees \(more than 180\).*np.deg2rad.*kind 'circular'"):
        build_decoding_datasets(rec, tok, cfg, None, [DecodingTarget("ry_deg", "regression")])


def test_cli_bad_kind_is_named_by_its_flag_before_the_recording_is_read(pretrained, shared_data, tmp_path, capsys):
    """Break test: ``--kind circ`` failed after the recording was read, as
    "DecodingTarget('ry').kind: ...", naming no flag; an empty entry (``--kind circular,``) too."""
    from hf_neuroformer.cli import main

    for kind, said in (("circ", "--kind: expected one of regression, classification, circular per target, got "),
                       ("circular,", "--kind: an empty item in 'circular,'; expected kinds separated by single commas")):
        targets = "ry" if kind == "circ" else "ry,x"
        rc = main(["finetune", "--model", str(pretrained), "--data", str(shared_data(A2929)), "--epoch", "wake",
                   "--target", targets, "--kind", kind, "--output-dir", str(tmp_path / "o")])
        captured = capsys.readouterr()
        assert rc == 2 and said in captured.err
        assert "data:" not in captured.out and not (tmp_path / "o").exists()


def test_numpy_numbers_are_numbers_for_fraction_and_target_weight(a2929, pretrained):
    """Break test: fraction=np.float32(0.5) passed finetune's check, then failed after tokenizing with
    "fraction: expected a number in (0, 1], got np.float32(0.5)"; DecodingTarget(weight=np.float32(2))
    was refused as not a number, and weight=True taken as 1."""
    dsd, _ = _x_windows(a2929, pretrained)
    assert len(fraction_of_train(dsd["train"], np.float32(0.5))) == round(0.5 * len(dsd["train"]))
    assert DecodingTarget("x", "regression", weight=np.float32(2)).weight == 2.0
    for bad in (True, float("nan"), "2"):
        with pytest.raises(DecodingTargetError, match=r"weight: expected a finite number >= 0"):
            DecodingTarget("x", "regression", weight=bad)
    with pytest.raises(ValueError, match=r"fraction: expected a number in \(0, 1\], got True"):
        fraction_of_train(dsd["train"], True)


def test_a_column_is_an_integer_index_numpy_ones_included(position2d):
    """Break test: DecodingTarget(column=np.int64(1)) (a column taken from np.arange) decoded and
    trained, then the save failed with "Object of type int64 is not JSON serializable"; column=1.7
    read column 1 and stored 1.7 in config.json, column="1" stored "1", column=True stored true.
    The column is now an int, and anything but an integer >= 0 is refused naming the field."""
    rec, _ = position2d
    t = DecodingTarget("position", "regression", column=np.int64(1))
    assert type(t.column) is int and t.column == 1 and t.label == "position[1]"
    assert type(target_dicts([t], {"targets": {"position[1]": {"mean": 0.0, "std": 1.0}}})[0]["column"]) is int
    json.dumps(target_dicts([t], {"targets": {"position[1]": {"mean": 0.0, "std": 1.0}}}))  # what config.json keeps
    for bad in (1.7, 1.0, "1", True, np.bool_(True), -1):
        with pytest.raises(DecodingTargetError, match=r"DecodingTarget\('position'\)\.column: expected None or an "
                                                      r"integer >= 0"):
            DecodingTarget("position", "regression", column=bad)


def test_python_finetune_decodes_every_column_of_a_2d_series_and_refines_the_decoder(position2d, pretrained, tmp_path,
                                                                                     monkeypatch):
    """Break test: finetune(model, rec, [DecodingTarget("position", "regression")]) on an (n, 2)
    position was refused ("the series has 2 columns; pick one ... or expand_columns") while
    'neuroformer finetune --target position' decoded every column; the Python API now expands the
    columns itself, and the decoder it wrote is refined with the same target as given."""
    rec, _ = position2d
    given = [DecodingTarget("position", "regression")]
    m = finetune(pretrained, rec, given, output_dir=tmp_path / "d", max_steps=1, eval_steps=1, batch_size=8)
    assert {"test/position[0]/r2", "test/position[1]/r2"} <= set(m)
    assert [(t["name"], t["column"]) for t in m["targets"]] == [("position", 0), ("position", 1)]
    assert given[0].column is None  # the given target is not changed
    monkeypatch.chdir(tmp_path)  # the decoder given relative: metrics.json records where it is ("d" named nothing)
    m2 = finetune("d", rec, given, output_dir=tmp_path / "d2", max_steps=1, eval_steps=1, batch_size=8)
    assert [(t["name"], t["column"]) for t in m2["targets"]] == [("position", 0), ("position", 1)]
    assert m2["model_dir"] == str((tmp_path / "d").resolve())


def test_two_targets_reading_one_column_are_refused_by_build_decoding_datasets_too(a2929, pretrained):
    """Break test: build_decoding_datasets took DecodingTarget("x") and DecodingTarget("x", column=0)
    on the 1-D x (one column read twice, as 'x' and 'x[0]') and decoded both; only expand_columns
    refused the pair. The rule is one check, before any window is tokenized."""
    tok = nf.NeuroformerTokenizer.from_pretrained(pretrained)
    cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
    pair = [DecodingTarget("x", "regression"), DecodingTarget("x", "regression", column=0)]
    for call in (lambda: build_decoding_datasets(a2929, tok, cfg, None, pair), lambda: expand_columns(a2929, pair)):
        with pytest.raises(DecodingTargetError, match=r"targets 'x' and 'x\[0\]' both decode column 0 of 'x'; give each "
                                                      r"column once"):
            call()


def test_a_target_named_like_a_table_column_is_refused_before_training_and_decoding(a2929, pretrained, finetuned):
    """Break test: a behaviour named 'split' or 'n_spikes' (or targets 'x' and 'x_predicted') was
    fine-tuned, and its recorded column in test_predictions.csv / 'neuroformer decode''s CSV was
    silently replaced by the split names or the spike counts (or by the other target's
    predictions). Refused by name before any window is tokenized, and by prediction_table and
    decode_windows for a decoder saved with such a target."""
    from hf_neuroformer.decoding import prediction_table
    from hf_neuroformer.finetuning import decode_windows, load_decoder, windows_tiling

    tok = nf.NeuroformerTokenizer.from_pretrained(pretrained)
    cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
    rec = copy.copy(a2929)
    x = a2929.behaviour["x"]
    rec.behaviour = {**a2929.behaviour, "split": x, "n_spikes": x, "x_predicted": x}
    for name, said in (("split", "the table's own column"), ("n_spikes", "the table's own column"),
                       ("x_predicted", "a column of target 'x'")):
        targets = [DecodingTarget("x", "regression"), DecodingTarget(name, "regression")]
        with pytest.raises(DecodingTargetError, match=rf"target '{name}': its prediction-table column '{name}' is also "
                                                      rf"{re.escape(said)}"):
            build_decoding_datasets(rec, tok, cfg, None, targets)
    with pytest.raises(DecodingTargetError, match=r"target 'window_start_s'"):
        prediction_table([0.0], 0.1, [[1.0]], [{"name": "window_start_s", "kind": "regression"}], recorded=[[2.0]])
    model, tok, plan = load_decoder(finetuned[0])  # a decoder saved (by older code) with a target named 'split'
    model.config.decoding_targets = [dict(model.config.decoding_targets[1], name="split"),
                                     model.config.decoding_targets[0]]
    starts, _ = windows_tiling(rec, model.config)
    with pytest.raises(DecodingTargetError, match=r"target 'split'"):
        decode_windows(model, tok, rec, starts[:3], plan=plan)


def test_a_column_out_of_range_of_a_one_column_series_says_1_column(a2929):
    """Break test: column 1 of an (n, 1) series said "(the series 'x1' has 1 columns)"."""
    from hf_neuroformer.recording import BehaviourSeries

    x = a2929.behaviour["x"]
    rec = copy.copy(a2929)
    rec.behaviour = {**a2929.behaviour, "x1": BehaviourSeries(x.timestamps, x.values[:, None], "m")}
    with pytest.raises(DecodingTargetError, match=r"target 'x1\[1\]': column 1 outside \[0, 1\) \(the series 'x1' has "
                                                  r"1 column\)$"):
        target_values(rec, DecodingTarget("x1", "regression", column=1), np.zeros(0), 0.1)


def test_an_unknown_select_on_target_is_refused_before_any_window_or_model(position2d, pretrained, tmp_path, capsys):
    """Break test: finetune(..., select_on="position/r2") for the targets position[0], position[1]
    (and 'neuroformer finetune --select-on position/r2') was refused only after every window was
    tokenized and the model loaded; it is refused once the targets are known, with the same
    message, before the output folder is touched."""
    from hf_neuroformer.cli import main

    rec, path = position2d
    said = r"select_on: expected 'auto', 'loss' or '<target>/<metric>' with a target of \['position\[0\]', 'position\[1\]'\]"
    with pytest.raises(ValueError, match=said):
        finetune(pretrained, rec, [DecodingTarget("position", "regression", column=0),
                                   DecodingTarget("position", "regression", column=1)],
                 output_dir=tmp_path / "o", select_on="position/r2", max_steps=1, window_mask=_no_window_expected)
    capsys.readouterr()
    rc = main(["finetune", "--model", str(pretrained), "--data", str(path), "--target", "position", "--select-on",
               "position/r2", "--max-steps", "1", "--output-dir", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and re.search("--select-on: " + said[len("select_on: "):], err), err
    assert not (tmp_path / "o").exists()


def test_no_targets_is_refused_as_such_not_as_a_select_on_naming_no_target(a2929, pretrained, tmp_path):
    """finetune(..., [], select_on="x/r2") blamed select_on ("with a target of [] ... (one of )"),
    since select_on is now checked before the datasets; the empty list is refused as itself."""
    with pytest.raises(DecodingTargetError, match=r"^targets: expected at least one DecodingTarget$"):
        finetune(pretrained, a2929, [], output_dir=tmp_path / "o", select_on="x/r2", max_steps=1,
                 window_mask=_no_window_expected)
    assert not (tmp_path / "o").exists()


def _no_window_expected(recording, starts):
    raise AssertionError("windows were tokenized and masked before select_on was checked")


def test_python_finetune_names_a_recording_of_other_units_and_all_zero_target_weights(
        a2929, pretrained, steinmetz, tmp_path):
    """Break test: finetune(a2929_model, other_recording, ...) failed after the model was read with
    "unit 0 ... is not in the tokenizer's vocabulary; call tokenizer.add_units(recording) first"
    (advice that does not apply to a pretrained vocabulary; the CLI named --data); targets whose
    weights are all 0 trained for max_steps on a loss of 0 and reported the untrained heads."""
    with pytest.raises(ValueError, match=r"recording: this recording's units are not the ones the model was trained "
                                         r"on: 20 of its 20 units \(session 'NS_sp_count'.*pass the recording \(and "
                                         r"epoch\) it was trained on"):
        finetune(pretrained, steinmetz, [DecodingTarget("trial:motorLabel", "classification")],
                 output_dir=tmp_path / "o", max_steps=1)
    with pytest.raises(ValueError, match=r"targets: every weight is 0 \(\{'x': 0.0, 'ry': 0.0\}\); the loss would be 0"):
        finetune(pretrained, a2929, [DecodingTarget("x", "regression", weight=0), DecodingTarget("ry", "circular", weight=0)],
                 output_dir=tmp_path / "o", max_steps=1)
    assert not (tmp_path / "o").exists()


def test_a_save_that_fails_leaves_the_earlier_run_whole(a2929, pretrained, tmp_path, monkeypatch):
    """The decoder was saved straight into the output folder, file after file: a failure while
    saving over an earlier run (a full disk, here the tokenizer's save raising) left the new
    weights beside the old config and tokenizer. It is now written to a temporary folder first,
    as train() does, so the earlier run's files are all still the earlier run's."""
    import shutil

    from hf_neuroformer.tokenization_neuroformer import NeuroformerTokenizer

    out = tmp_path / "dir"
    shutil.copytree(pretrained, out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def full_disk(self, *args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(NeuroformerTokenizer, "save_pretrained", full_disk)
    with pytest.raises(OSError, match="No space left"):
        finetune(pretrained, a2929, [DecodingTarget("x", "regression")], output_dir=out, max_steps=2, eval_steps=2,
                 batch_size=16, seed=0, overwrite=True, progress=False)
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before, sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not [p.name for p in out.iterdir() if p.name.startswith(".tmp-save-")]


def test_a_decoder_loaded_without_targets_says_it_has_no_head(pretrained, finetuned):
    """AutoModelForSequenceClassification on a pretraining checkpoint with num_labels=3 loaded a
    decoder with no head and no word about it (num_labels is not read); forward refused only
    later. It now warns at load (num_labels=3 itself is refused by the config, naming the field); a
    fine-tuned decoder loads without that warning."""
    import warnings

    from transformers import AutoModelForSequenceClassification

    with pytest.raises(ValueError, match=r"NeuroformerConfig\.num_labels: .*decoding_targets"):
        AutoModelForSequenceClassification.from_pretrained(pretrained, num_labels=3)
    with pytest.warns(UserWarning, match="decoding_targets is empty"):
        model = AutoModelForSequenceClassification.from_pretrained(pretrained)
    assert len(model.decoding_heads) == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        AutoModelForSequenceClassification.from_pretrained(finetuned[0])
    assert not [w for w in caught if "decoding_targets is empty" in str(w.message)]


def test_a_checkpoint_plan_that_leaves_a_split_empty_is_replaced_with_a_warning_that_scores_are_not_held_out(
        a2929, pretrained, tmp_path):
    """Fine-tuning on a part of the pretraining recording that lies in the checkpoint's training
    split only: its splits.json leaves validation and test without windows, so splits are planned
    anew on that part, and the new test windows hold spikes the model was pretrained on. The
    warning says so (it only said that it planned anew) and metrics.json records the source."""
    from hf_neuroformer.windows import SplitPlan

    plan = SplitPlan.from_dict(json.loads((pretrained / "splits.json").read_text()))
    seg = max(plan.segments["train"], key=lambda ab: ab[1] - ab[0])
    assert seg[1] - seg[0] >= 44.9  # three 15-s blocks: room for three splits
    part = a2929.restrict(float(seg[0]), float(seg[1]))
    with pytest.warns(UserWarning, match=r"leaves a split of this recording without windows.*not held out from "
                                         r"pretraining.*split_plan_source") as got:
        m = finetune(pretrained, part, [DecodingTarget("ry", "circular")], output_dir=tmp_path / "d", max_steps=1,
                     eval_steps=1, batch_size=8, seed=0)
    # finetune's warnings (and those of the split plan it makes) point at its caller's line
    ours = [w for w in got if str(w.message).startswith(("model_dir: the split plan", "split_block_length:"))]
    assert ours and {w.filename for w in ours} == {__file__}, [(str(w.message)[:60], w.filename) for w in got]
    assert m["split_plan_source"] == "planned on this recording"


def test_cli_decode_prints_test_scores_with_block_bootstrap_intervals(finetuned, shared_data, tmp_path, capsys):
    """neuroformer decode scores the decoded windows that lie in the decoder's test split with 95 %
    block-bootstrap intervals, as finetune does: the A2929 test split is too short for 5 blocks of
    the default 10 s, and the reason names --ci-block-s (the command's words); with --ci-block-s 2
    each score gets an interval holding it, over the blocks finetune's intervals use."""
    import pandas as pd

    from hf_neuroformer.cli import main
    from hf_neuroformer.finetuning import decoding_intervals
    from hf_neuroformer.windows import SplitPlan

    out, m = finetuned
    args = ["decode", "--model", str(out), "--data", str(shared_data(A2929)), "--epoch", "wake", "--split", "test",
            "--output", str(tmp_path / "t.csv")]
    assert main(args) == 0
    text = capsys.readouterr().out
    n_blocks = m["test/x/ci95_n_blocks"]
    assert f"95% CI: none ({count_noun(n_blocks, 'block')}, fewer than 5" in text and re.search(r"e\.g\. --ci-block-s [\d.]+ \(", text)
    assert "ci_block_s=" not in text
    assert main(args + ["--ci-block-s", "2", "--overwrite"]) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.strip().startswith("x on the "))
    table = pd.read_csv(out / "test_predictions.csv")
    plan = SplitPlan.from_dict(json.loads((out / "splits.json").read_text()))
    targets = json.loads((out / "config.json").read_text())["decoding_targets"]
    ref = decoding_intervals(table[["ry_predicted", "x_predicted"]].to_numpy(), table[["ry", "x"]].to_numpy(),
                             targets, table["window_start_s"].to_numpy(), plan, ci_block_s=2.0)
    for name in ("r2", "pearson_r"):
        found = re.search(rf"{name} (-?[\d.]+(?:e-\d+)?) \[95% CI (-?[\d.]+(?:e-\d+)?), (-?[\d.]+(?:e-\d+)?)\]", line)
        assert found, line
        point, lo, hi = map(float, found.groups())
        assert lo <= point <= hi
        assert [lo, hi] == pytest.approx(ref[f"test/x/{name}_ci95"], abs=1.5e-3), name
    assert f"block bootstrap over {ref['test/x/ci95_n_blocks']} blocks, consecutive 2 s of window starts" in text


def test_a_block_length_that_does_nothing_is_said_not_silently_ignored(steinmetz, steinmetz_decoder, finetuned,
                                                                        shared_data, tmp_path):
    """Break test: ci_block_s=2 / --ci-block-s 2 on a trial split (Steinmetz: the bootstrap blocks
    are its trials) and 'decode --ci-block-s 2 --split train' (no test window is scored, so no
    interval is made) ran as if the length had been used, without a word. Each now warns that the
    length has no effect, naming it in the caller's words; the trial split's intervals are unchanged.
    The default length given by hand (10) warns too; leaving the length out does not."""
    from hf_neuroformer.cli import main
    from hf_neuroformer.io import write_nwb

    cfg = nf.NeuroformerConfig(**{**TINY, "past_window": 0.2, "max_window_length": 40})
    target = [DecodingTarget("trial:motorLabel", "classification")]
    # finetune(None, steinmetz, target, config=cfg, max_steps=1, eval_steps=1, batch_size=16, seed=1, ci_block_s=2)
    d, m, said = steinmetz_decoder
    assert any(re.search(r"ci_block_s=2 has no effect: the split is by trials", w) for w in said), said
    assert m["test/ci95_block_s"] is None and m["test/trial:motorLabel/ci95_n_blocks"] >= 5
    write_nwb(steinmetz, tmp_path / "s.nwb")
    args = ["decode", "--model", str(d), "--data", str(tmp_path / "s.nwb"), "--split", "test",
            "--output", str(tmp_path / "t.csv")]
    with pytest.warns(UserWarning, match=r"--ci-block-s 2 has no effect: the split is by trials"):
        assert main(args + ["--ci-block-s", "2"]) == 0
    # 10 s, the default length, given by hand was taken without a word (it equalled the default);
    # left out (None), nothing is said
    with pytest.warns(UserWarning, match=r"ci_block_s=10 has no effect: the split is by trials"):
        finetune(None, steinmetz, target, config=cfg, output_dir=tmp_path / "d10", max_steps=1, eval_steps=1,
                 batch_size=16, seed=1, ci_block_s=10)
    args[-1] = str(tmp_path / "t10.csv")
    with pytest.warns(UserWarning, match=r"--ci-block-s 10 has no effect: the split is by trials"):
        assert main(args + ["--ci-block-s", "10"]) == 0
    args[-1] = str(tmp_path / "t_default.csv")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(args) == 0
    assert not [w for w in caught if "has no effect" in str(w.message)], [str(w.message) for w in caught]
    out, _ = finetuned  # a time split, decoded on its train windows: nothing gets an interval
    args = ["decode", "--model", str(out), "--data", str(shared_data(A2929)), "--epoch", "wake", "--split", "train",
            "--output", str(tmp_path / "train.csv")]
    with pytest.warns(UserWarning, match=r"--ci-block-s 2 has no effect: no decoded window with a recorded "
                                         r"value was scored.*\(--split train\)"):
        assert main(args + ["--ci-block-s", "2"]) == 0


def test_cli_decode_takes_the_block_length_the_decoder_was_finetuned_with(a2929, pretrained, shared_data, tmp_path,
                                                                          capsys):
    """decode without --ci-block-s used 10-s blocks whatever finetune had used, so a decoder
    fine-tuned with ci_block_s=2 printed intervals in finetune's metrics.json but 'none' in decode;
    decode now reads the length from the decoder's metrics.json (test/ci95_block_s) and prints the
    same intervals; --ci-block-s still overrides it."""
    from hf_neuroformer.cli import main

    out = tmp_path / "decoder"
    m = finetune(pretrained, a2929, [DecodingTarget("x", "regression")], output_dir=out, max_steps=1, eval_steps=1,
                 batch_size=16, seed=0, ci_block_s=2.0)
    assert m["test/ci95_block_s"] == 2.0 and m["test/x/r2_ci95"] is not None
    args = ["decode", "--model", str(out), "--data", str(shared_data(A2929)), "--epoch", "wake", "--split", "test",
            "--output", str(tmp_path / "t.csv")]
    assert main(args) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.strip().startswith("x on the "))
    for name in ("r2", "pearson_r"):
        found = re.search(rf"{name} (-?[\d.]+(?:e-\d+)?) \[95% CI (-?[\d.]+(?:e-\d+)?), (-?[\d.]+(?:e-\d+)?)\]", line)
        assert found, line
        assert [float(found.group(2)), float(found.group(3))] == pytest.approx(m[f"test/x/{name}_ci95"], abs=1.5e-3)
    assert "consecutive 2 s of window starts" in text
    assert main(args + ["--ci-block-s", "10", "--overwrite"]) == 0
    assert "95% CI: none (" in capsys.readouterr().out


def test_cli_finetune_wrote_line_leaves_out_files_it_did_not_write(pretrained, shared_data, tmp_path, capsys):
    """finetune --overwrite into a folder that also held an 'evaluate --output runs/ft/eval.json'
    (a name the model-file checks allow) listed eval.json (and a notes file) as written by the
    run: the line named every file in the folder. It now names the files this run wrote."""
    from hf_neuroformer.cli import main

    out = tmp_path / "ft"
    args = ["finetune", "--model", str(pretrained), "--data", str(shared_data(A2929)), "--epoch", "wake",
            "--target", "ry", "--max-steps", "1", "--eval-steps", "1", "--batch-size", "8", "--output-dir", str(out)]
    assert main(args) == 0
    (out / "eval.json").write_text("{}")
    (out / "notes.txt").write_text("lab notes")
    capsys.readouterr()
    assert main(args + ["--overwrite"]) == 0
    wrote = re.search(r"^\[neuroformer\] wrote .*$", capsys.readouterr().out, re.M).group(0)
    assert "eval.json" not in wrote and "notes.txt" not in wrote, wrote
    assert all(name in wrote for name in ("config.json", "model.safetensors", "splits.json", "training_log.json")), wrote
    assert (out / "eval.json").read_text() == "{}"  # left as it was


def test_finetune_training_settings_hold_plain_json_numbers(tmp_path):
    """Break tests: warmup_steps=np.int64(2) passes finetune's check (a whole number) and
    TrainingArguments keeps it, so the ``training`` dict that finetune returns held a numpy integer
    and ``json.dumps(metrics)`` failed ("Object of type int64 is not JSON serializable"), while
    metrics.json (written through json_safe) said 2. A ratio (warmup 0.1, eval_steps 0.5, which
    TrainingArguments reads as shares of max_steps) is kept as the float it is."""
    from transformers import TrainingArguments

    from hf_neuroformer.finetuning import finetune_training_settings

    common = dict(output_dir=str(tmp_path), report_to=[], use_cpu=True, max_steps=10, eval_strategy="steps")
    args = TrainingArguments(warmup_steps=np.int64(2), eval_steps=np.int64(5), **common)
    settings = finetune_training_settings(args, np.float32(0.5), np.int64(3))
    assert json.loads(json.dumps(settings)) == settings
    assert type(settings["warmup_steps"]) is int and settings["warmup_steps"] == 2
    assert type(settings["eval_steps"]) is int and settings["eval_steps"] == 5
    assert settings["generative_loss_weight"] == 0.5 and settings["freeze_backbone_steps"] == 3
    ratio = finetune_training_settings(TrainingArguments(warmup_steps=0.1, eval_steps=0.5, **common))
    assert (ratio["warmup_steps"], ratio["eval_steps"]) == (0.1, 0.5) and json.dumps(ratio)
    # the schedule's and AdamW's own settings: a card showing "cosine_with_restarts" alone hid its 2 cycles
    args = TrainingArguments(lr_scheduler_type="cosine_with_restarts", lr_scheduler_kwargs={"num_cycles": 2},
                             adam_beta2=0.98, adam_epsilon=1e-6, **common)
    settings = finetune_training_settings(args)
    assert settings["lr_scheduler_type"] == "cosine_with_restarts" and settings["lr_scheduler_kwargs"] == {"num_cycles": 2}
    assert (settings["adam_beta1"], settings["adam_beta2"], settings["adam_epsilon"]) == (0.9, 0.98, 1e-6)


def test_a_direct_compute_loss_call_does_not_reuse_the_last_training_steps_spike_counts(a2929, pretrained, tmp_path):
    """DecodingTrainer hands its step's next-spike target counts to the model with the
    ``num_items_in_batch`` they were counted with. A later direct ``trainer.compute_loss`` on
    another batch (user code) used the last training step's counts, so its auxiliary term was
    normalised by another batch's spikes; it now gets the model's own per-batch loss."""
    targets = [DecodingTarget("x", "regression")]
    dsd, report = _x_windows(a2929, pretrained)
    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(
        pretrained, decoding_targets=target_dicts(targets, report), hidden_dropout=0.0,
        decoding_generative_loss_weight=0.5)
    trainer = build_trainer(model, dsd["train"].select(range(200, 216)), None, tmp_path / "run",
                            per_device_train_batch_size=4, gradient_accumulation_steps=4, max_steps=1,
                            save_strategy="no", seed=0)
    trainer.train()
    stored = trainer._aux_counts[1]["num_id_targets_in_batch"]
    other = trainer.data_collator([dsd["train"][i] for i in range(400, 403)])
    n = torch.tensor(3)
    model.eval()
    with torch.no_grad():
        direct = model(**other, num_items_in_batch=n).loss
        via_trainer = trainer.compute_loss(model, other, num_items_in_batch=n)
        with_stale = model(**other, num_items_in_batch=n, num_id_targets_in_batch=stored,
                           num_dt_targets_in_batch=trainer._aux_counts[1]["num_dt_targets_in_batch"]).loss
    assert abs(with_stale.item() - direct.item()) > 1e-4  # the stale counts would change the loss
    assert via_trainer.item() == pytest.approx(direct.item(), rel=1e-6)


def test_the_recorded_batch_is_the_one_that_trained_after_auto_find_batch_size_halved_it(a2929, pretrained, tmp_path):
    """With ``auto_find_batch_size`` Trainer retries at a smaller batch after an out-of-memory
    error (accelerate takes 90 %: 8 -> 7; 1.3.0 halves it: 8 -> 4) and leaves ``args.per_device_train_batch_size`` as
    asked: ``metrics.json``'s ``training`` (and the model card) said 8 windows per step where 7
    trained. The error is
    raised as PyTorch's CPU allocator words it, from a callback at the first step; the retry is
    Trainer's (accelerate's ``find_executable_batch_size``)."""
    from transformers import TrainerCallback

    from hf_neuroformer.finetuning import finetune_training_settings

    class OutOfMemoryOnce(TrainerCallback):
        raised = 0

        def on_step_begin(self, args, state, control, **kwargs):
            if not self.raised:
                self.raised += 1
                raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 bytes.")

    targets = [DecodingTarget("x", "regression")]
    dsd, report = _x_windows(a2929, pretrained)
    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(pretrained, decoding_targets=target_dicts(targets, report))
    trainer = build_trainer(model, dsd["train"].select(range(64)), None, tmp_path / "run", per_device_train_batch_size=8,
                            auto_find_batch_size=True, max_steps=2, save_strategy="no", seed=3)
    callback = OutOfMemoryOnce()
    trainer.add_callback(callback)
    trainer.train()
    assert callback.raised == 1 and trainer.state.global_step == 2
    assert trainer.args.per_device_train_batch_size == 8  # Trainer leaves the asked-for value
    settings = finetune_training_settings(trainer.args, state=trainer.state)
    # accelerate's retry: 90 % of the batch in recent releases (8 -> 7), half of it in 1.3.0, the floor (8 -> 4)
    trained = trainer.state.train_batch_size
    assert trained in (7, 4)
    assert (settings["per_device_train_batch_size"], settings["batch_size"]) == (trained, trained)
    assert settings["auto_find_batch_size"] is True and settings["data_seed"] is None  # None: the order follows seed
    assert finetune_training_settings(trainer.args)["per_device_train_batch_size"] == 8  # no state: as asked


def test_cli_decode_scores_another_recordings_windows_with_block_bootstrap_intervals(finetuned, shared_data, tmp_path,
                                                                                    capsys):
    """A decoder fitted on 670-850 s of the wake epoch, decoding a later stretch (900-1100 s, written
    as its own NWB file): every window lies outside the decoder's splits and is scored; the
    scores came without intervals (only test windows had them). They now come with 95 %
    block-bootstrap intervals over 10-s blocks of the windows decoded, as finetune's test scores."""
    from hf_neuroformer.cli import main
    from hf_neuroformer.io import load_recording, write_nwb

    later = load_recording(shared_data(A2929), epoch="wake").restrict(900.0, 1100.0)
    write_nwb(later, tmp_path / "later.nwb")
    assert main(["decode", "--model", str(finetuned[0]), "--data", str(tmp_path / "later.nwb"),
                 "--output", str(tmp_path / "later.csv")]) == 0
    text = capsys.readouterr().out
    lines = {s.split(" on the ")[0].strip(): s for s in text.splitlines() if " windows with a recorded value: " in s}
    assert set(lines) == {"ry", "x"}, text
    for label, key in (("ry", "mean_angular_error_deg"), ("x", "r2")):
        assert "other (outside the decoder's splits) windows" in lines[label]
        found = re.search(key + r" (-?[\d.]+(?:e-\d+)?) \[95% CI (-?[\d.]+(?:e-\d+)?), (-?[\d.]+(?:e-\d+)?)\]", lines[label])
        assert found and float(found[2]) <= float(found[1]) <= float(found[3]) and float(found[2]) < float(found[3])
    blocks = [int(n) for n in re.findall(r"block bootstrap over (\d+) blocks, consecutive 10 s of window starts in each "
                                         r"time segment decoded here", text)]
    assert len(blocks) == 2 and all(18 <= n <= 20 for n in blocks), text  # 200 s in 10-s blocks


def test_bootstrap_blocks_shorter_than_a_window_and_its_past_are_warned_about(a2929, pretrained, shared_data,
                                                                              tmp_path):
    """Blocks shorter than what one window reads (0.1 s current + 0.3 s past here) share spikes with
    their neighbours, so the block bootstrap's intervals come out too narrow; such a length gave
    intervals without a word. finetune (ci_block_s=0.2), decode (--ci-block-s 0.2) and the token
    NLL intervals now warn, naming the length to reach; 0.4 s and longer stay quiet."""
    from hf_neuroformer.cli import main
    from hf_neuroformer.training import split_nll_intervals
    from hf_neuroformer.windows import SplitPlan

    out = tmp_path / "decoder"
    with pytest.warns(UserWarning, match=r"ci_block_s=0.2: the bootstrap blocks are shorter than what one window "
                                         r"reads \(0.4 s of current and past window\).*too narrow"):
        m = finetune(pretrained, a2929, [DecodingTarget("x", "regression")], output_dir=out, max_steps=1,
                     eval_steps=1, batch_size=16, seed=0, ci_block_s=0.2)
    assert m["test/ci95_block_s"] == 0.2
    args = ["decode", "--model", str(out), "--data", str(shared_data(A2929)), "--epoch", "wake", "--split", "test",
            "--output", str(tmp_path / "t.csv")]
    with pytest.warns(UserWarning, match=r"--ci-block-s 0.2: the bootstrap blocks are shorter"):
        assert main(args + ["--ci-block-s", "0.2"]) == 0
    plan = SplitPlan.from_dict(json.loads((out / "splits.json").read_text()))
    starts = plan.segments["test"][:, 0] + 0.3  # a window at the start of each test segment
    windows = {"window_start": starts, "id_nll_sum": np.ones(len(starts)), "dt_nll_sum": np.ones(len(starts)),
               "n_spike_tokens": np.ones(len(starts), dtype=np.int64)}
    with pytest.warns(UserWarning, match=r"ci_block_s=0.2: the bootstrap blocks are shorter"):
        split_nll_intervals(windows, plan, 0.2, window_span_s=0.4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        split_nll_intervals(windows, plan, 0.4, window_span_s=0.4)


def test_a_behaviour_sample_on_the_edge_of_two_tiled_windows_counts_in_the_later_one_only(shared_data):
    # A2929's head tracking at ~120 Hz has samples at exactly k * 0.1 s; 0.1-s windows tiling time start on the
    # tokenizer's 1 ns grid, but start + 0.1 in floating point lies past the next start (647.7 + 0.1 =
    # 647.8000000000001), so such a sample went into the mean of both windows, against "the mean of the samples
    # inside its current window" [start, start + current_window)
    from hf_neuroformer.io import load_recording

    rec = load_recording(shared_data(A2929), epoch="wake")
    b = rec.behaviour["x"]
    ts, vals = np.asarray(b.timestamps, dtype=np.float64), np.asarray(b.values, dtype=np.float64).ravel()
    starts = np.round(np.arange(671.0, 1199.0, 0.1), 9)
    ends = np.round(starts + 0.1, 9)
    on_edge = np.flatnonzero(np.searchsorted(ts, starts + 0.1) > np.searchsorted(ts, ends))
    assert on_edge.size > 0  # windows whose end sample was counted: the case this test is about
    got = target_values(rec, DecodingTarget("x", "regression"), starts, 0.1)
    lo, hi = np.searchsorted(ts, starts), np.searchsorted(ts, ends)
    expected = np.array([np.nanmean(vals[a:z]) if z > a else np.nan for a, z in zip(lo, hi)])
    np.testing.assert_allclose(got[on_edge], expected[on_edge], rtol=0, atol=1e-12)
    ok = np.isfinite(expected)
    np.testing.assert_allclose(got[ok], expected[ok], rtol=0, atol=1e-12)


def test_make_compute_metrics_gives_nan_for_nan_predictions_instead_of_failing():
    """Break test: a diverged decoder predicts NaN; compute_metrics passed them to decoding_metrics,
    which refused them ('y_pred: expected finite values ... drop or mask them before scoring'), so
    fine-tuning stopped at its first evaluation, blaming the data. Undefined metrics instead: Trainer
    never keeps such a checkpoint (NaN loses every comparison)."""
    from transformers import EvalPrediction

    from hf_neuroformer.finetuning import make_compute_metrics

    targets = [{"name": "x", "kind": "regression"}, {"name": "ry", "kind": "circular"}]
    preds = np.array([[np.nan, 0.1], [np.nan, 0.2], [np.nan, -0.3]])
    labels = np.array([[1.0, 0.0], [2.0, 0.5], [3.0, -0.5]])
    m = make_compute_metrics(targets)(EvalPrediction(preds, labels))
    assert math.isnan(m["x/r2"]) and math.isnan(m["x/rmse"]) and m["x/n"] == 3.0
    assert math.isfinite(m["ry/mean_angular_error_deg"])  # the other target is scored as before


def test_nan_test_predictions_of_a_decoder_finite_on_validation_are_said():
    """Break test: since NaN predictions give NaN metrics (above), a decoder finite on the validation
    windows but not on the test windows (an fp16 overflow) wrote NaN test metrics without a word;
    before, the run had stopped. The test pass now warns, naming the targets."""
    import warnings

    from transformers import EvalPrediction

    from hf_neuroformer.finetuning import _warn_nonfinite_test, make_compute_metrics

    cm = make_compute_metrics([{"name": "x", "kind": "regression"}])
    labels = np.array([[1.0], [2.0], [3.0]])
    cm(EvalPrediction(np.array([[1.0], [2.5], [2.0]]), labels))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_nonfinite_test(cm)  # finite: nothing said
    cm(EvalPrediction(np.array([[1.0], [np.inf], [2.0]]), labels))
    with pytest.warns(UserWarning, match=r"test: the decoder predicts NaN or inf for \['x'\] on the test windows"):
        _warn_nonfinite_test(cm)


def test_the_finetune_warnings_name_the_learning_rate_flag_on_the_command_line():
    """The warnings of a validation loss NaN at every evaluation (no checkpoint chosen) and of NaN test
    predictions ended "fine-tune again with a lower learning_rate" (and "mixed_precision fp16", a setting
    finetune has under neither name) also under `neuroformer finetune`, whose option is --learning-rate:
    they now name the learning rate as finetune's ``learning_rate_option`` does (the CLI passes
    "--learning-rate"; the library keeps learning_rate)."""
    from transformers import EvalPrediction

    from hf_neuroformer.finetuning import _warn_no_checkpoint_chosen, _warn_nonfinite_test, make_compute_metrics

    cm = make_compute_metrics([{"name": "x", "kind": "regression"}])
    cm(EvalPrediction(np.array([[1.0], [np.nan], [2.0]]), np.array([[1.0], [2.0], [3.0]])))
    for option in ("--learning-rate", "learning_rate"):
        for warn in (lambda: _warn_no_checkpoint_chosen("loss", [1, 2], option), lambda: _warn_nonfinite_test(cm, option)):
            with pytest.warns(UserWarning) as got:
                warn()
            text = str(got[0].message)
            assert re.search(f"fine-tune again (without it or )?with a lower {option}$", text), text
            assert "mixed_precision" not in text and (option == "learning_rate" or "learning_rate" not in text), text
    with pytest.warns(UserWarning, match=r"select on the loss \(select_on='loss', --select-on loss\) or another "
                                         r"metric$"):  # a metric other than the loss: no learning rate to lower
        _warn_no_checkpoint_chosen("x/r2", [1, 2], "--learning-rate")


def test_a_diverged_finetune_is_refused_naming_the_learning_rate(a2929, tmp_path):
    """Break test: fine-tuning at a learning rate that overflows the decoder's outputs (NaN
    predictions) failed inside decoding_metrics ('y_pred: expected finite values ... drop or mask
    them before scoring'), naming no setting. Now a clear refusal naming learning_rate, with nothing
    written (30 s of A2929, from scratch, one step: about 1.5 s)."""
    out = tmp_path / "dec"
    cfg = nf.NeuroformerConfig(**{**TINY, "split_block_length": 3.0})
    with pytest.raises(ValueError, match=r"learning_rate \(--learning-rate\): fine-tuning diverged at "
                                         r"learning_rate=1e\+06: it predicts NaN or inf for \['x'\]"):
        finetune(None, a2929.restrict(670.0, 700.0), [DecodingTarget("x", "regression")], config=cfg, output_dir=out,
                 max_steps=1, eval_steps=1, batch_size=8, learning_rate=1e6)
    assert not out.exists()  # not even the folder Trainer's checkpoints were written into


def test_a_diverged_cli_finetune_names_the_learning_rate_flag_throughout(a2929, pretrained, tmp_path, capsys):
    """`neuroformer finetune --learning-rate 1e6` that diverged opened its error with --learning-rate but
    went on in the library's words: 'diverged at learning_rate=1e+06 ... fine-tune again with a lower
    learning_rate', a name the command line has no option of."""
    from hf_neuroformer.cli import main
    from hf_neuroformer.io import write_nwb

    write_nwb(a2929.restrict(670.0, 700.0), tmp_path / "30s.nwb")
    rc = main(["finetune", "--model", str(pretrained), "--from-scratch", "--data", str(tmp_path / "30s.nwb"),
               "--target", "x", "--kind", "regression", "--learning-rate", "1e6", "--max-steps", "1", "--eval-steps",
               "1", "--batch-size", "8", "--output-dir", str(tmp_path / "dec")])
    err = capsys.readouterr().err
    assert rc == 2 and re.search(r"error: --learning-rate: fine-tuning diverged at --learning-rate=1e\+06: .*: "
                                 r"fine-tune again with a lower --learning-rate$", err, re.M), err[-3000:]
    assert "learning_rate" not in err and not (tmp_path / "dec").exists()


def test_a_failed_finetune_into_a_new_nested_folder_leaves_none_of_the_folders_it_made(a2929, tmp_path):
    """Break test: a run into a new ``a/b/c`` that failed removed ``c`` only, leaving the empty
    ``a/b`` it had made behind. Now every folder the run made is removed when left empty; a
    folder that existed before (``tmp_path``), or one another process filled meanwhile, is kept."""
    cfg = nf.NeuroformerConfig(**{**TINY, "split_block_length": 3.0})
    rec = a2929.restrict(670.0, 700.0)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "note.txt").write_text("kept")
    for out in (tmp_path / "a" / "b" / "c", tmp_path / "x" / "y" / "z"):
        with pytest.raises(ValueError, match="fine-tuning diverged"):
            finetune(None, rec, [DecodingTarget("x", "regression")], config=cfg, output_dir=out, max_steps=1,
                     eval_steps=1, batch_size=8, learning_rate=1e6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x"]  # a/b (left behind before) is gone, x kept
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["note.txt"]


def test_a_selection_metric_undefined_at_every_evaluation_is_not_called_the_choice(a2929, tmp_path):
    """Break test: x constant over the validation windows makes the validation R² NaN at every
    evaluation; Trainer then chose nothing and kept the last step, while metrics.json said
    checkpoint_selection 'highest validation x/r2' (and so did the model card), without a warning."""
    from hf_neuroformer.recording import BehaviourSeries
    from hf_neuroformer.windows import plan_splits

    cfg = nf.NeuroformerConfig(**{**TINY, "split_block_length": 3.0})
    rec = copy.copy(a2929.restrict(670.0, 700.0))
    x = rec.behaviour["x"]
    v = x.values.copy()
    for a, b in plan_splits(rec, cfg).segments["validation"]:
        v[(x.timestamps >= a - 1) & (x.timestamps < b + 1)] = 0.5
    rec.behaviour = dict(rec.behaviour, x=BehaviourSeries(x.timestamps, v, x.unit))
    with pytest.warns(UserWarning, match=r"select_on: the validation x/r2 was undefined \(NaN\) at every evaluation "
                                         r"\(steps \[1\]\), so no checkpoint was chosen") as got:
        m = finetune(None, rec, [DecodingTarget("x", "regression")], config=cfg, output_dir=tmp_path / "d", max_steps=1,
                     eval_steps=1, batch_size=8)
    # the warning names the caller's line (the output-folder lock, taken by a decorator, wrapped finetune in
    # another frame, and the warning named training.py)
    chosen = [w for w in got if str(w.message).startswith("select_on: the validation x/r2 was undefined")]
    assert [w.filename for w in chosen] == [__file__], [(str(w.message), w.filename) for w in got]
    assert math.isnan(m["validation/x/r2"])
    assert m["checkpoint_selection"] == "last step (validation x/r2 never defined)" and m["best_step"] == 1


def test_an_evaluation_between_training_loss_logs_says_which_step_the_loss_is_of(capsys):
    """At the last step of a run whose max_steps is not a multiple of logging_steps the Trainer
    evaluates without logging a training loss there: the line printed the step-20 loss as step 25's."""
    from transformers import TrainerState

    from hf_neuroformer.finetuning import _EvaluationLines

    lines = _EvaluationLines("x/r2")
    state = TrainerState(global_step=20, log_history=[{"loss": 1.5, "step": 10}, {"loss": 1.25, "step": 20}])
    lines.on_evaluate(None, state, None, metrics={"eval_loss": 2.0, "eval_x/r2": 0.5})
    assert capsys.readouterr().out == "step 20: train loss 1.2500  val loss 2.0000  val x/r2 0.5000\n"
    state.global_step = 25
    lines.on_evaluate(None, state, None, metrics={"eval_loss": 1.75, "eval_x/r2": 0.625})
    assert capsys.readouterr().out == "step 25: train loss 1.2500 (step 20)  val loss 1.7500  val x/r2 0.6250\n"


def test_continuing_a_decoder_on_other_class_labels_is_refused_not_relabelled(steinmetz, steinmetz_decoder, tmp_path):
    """A decoder fine-tuned on motorLabel classes [-1, 0, 1], continued on a recording coding them
    [0, 1, 2], loaded its head silently: output i, trained to mean -1 + i, was now read as class i
    (every label moved by one). With two classes instead of three it failed inside transformers
    (size-mismatch RuntimeError). Both now raise a ValueError naming the target and both class lists;
    the same classes continue as before."""
    target = [DecodingTarget("trial:motorLabel", "classification")]
    kw = dict(max_steps=1, eval_steps=1, batch_size=16, seed=1)
    d = steinmetz_decoder[0]  # finetune(None, steinmetz, target, config=cfg, **kw): from scratch
    labels = np.asarray(steinmetz.trial_info["motorLabel"])
    for coded, now in ((labels + 1, r"\[0, 1, 2\]"), (np.where(labels < 0, 0, labels), r"\[0, 1\]")):
        rec = copy.copy(steinmetz)
        rec.trial_info = dict(steinmetz.trial_info, motorLabel=coded)
        with pytest.raises(ValueError, match=rf"head for 'trial:motorLabel' was trained on the classes \[-1, 0, 1\], "
                                             rf"but this recording's training windows hold the classes {now}"):
            finetune(d, rec, target, output_dir=tmp_path / "e", **kw)
    m = finetune(d, steinmetz, target, output_dir=tmp_path / "e", **kw)
    assert m["targets"][0]["classes"] == [-1, 0, 1]
    # a decoder continued (here one trained from scratch) was recorded as init 'pretrained', and its model card
    # said "Fine-tuned from the pretrained model" though nothing in its history was pretrained
    from hf_neuroformer.hub import build_model_card

    assert m["init"] == "decoder"
    card = str(build_model_card(tmp_path / "e", "lab/continued", m))
    assert f"- Fine-tuned further from the decoder `{d.resolve()}` (its backbone and heads)." in card
    assert "pretrained model" not in card


def test_continuing_a_decoder_with_settings_that_reshape_its_heads_is_refused_by_name(a2929, finetuned, tmp_path):
    """``config_overrides`` decoding_pool / decoding_head_hidden_size on a fine-tuned decoder built
    other heads than the saved ones: transformers failed with a size-mismatch RuntimeError after the
    datasets were built. Now a ValueError names the setting, its saved and new values; the decoder's
    own values (None = hidden_size) are accepted."""
    out, _ = finetuned
    targets = [DecodingTarget("ry", "circular"), DecodingTarget("x", "regression")]
    kw = dict(max_steps=1, eval_steps=1, batch_size=16, seed=0)
    for over, said in (({"decoding_pool": "current"}, r"decoding_pool='current\+past'; decoding_pool='current'"),
                       ({"decoding_head_hidden_size": 7}, r"decoding_head_hidden_size=None; decoding_head_hidden_size=7")):
        with pytest.raises(ValueError, match=rf"fine-tuned decoder whose heads were built for {said} would need other"):
            finetune(out, a2929, targets, output_dir=tmp_path / "e", config_overrides=over, **kw)
    assert not (tmp_path / "e").exists()
    same = {"decoding_pool": "current+past", "decoding_head_hidden_size": TINY["hidden_size"]}
    m = finetune(out, a2929, targets, output_dir=tmp_path / "e", config_overrides=same, **kw)
    assert m["init"] == "decoder" and m["load_report"]["mismatched_keys"] == []


def test_continuing_a_regression_decoder_keeps_the_standardisation_its_head_was_trained_with(a2929, finetuned,
                                                                                              tmp_path):
    """Break test: a decoder fine-tuned further on other training windows (here the first 20 %)
    was given their mean / std of x, so its head's outputs, trained on the saved ones, were
    de-standardised with others and every prediction shifted before a step was taken. The saved
    ones are kept now: at a learning rate too small to move a weight the continued decoder scores
    the test windows as the saved one did."""
    out, before = finetuned
    saved = {t["name"]: t for t in json.loads((out / "config.json").read_text())["decoding_targets"]}
    targets = [DecodingTarget("ry", "circular"), DecodingTarget("x", "regression")]
    m = finetune(out, a2929, targets, output_dir=tmp_path / "e", fraction=0.2, max_steps=1, eval_steps=1,
                 batch_size=16, learning_rate=1e-12)
    x = m["targets"][1]
    assert (x["mean"], x["std"]) == (saved["x"]["mean"], saved["x"]["std"])
    assert m["test/x/r2"] == pytest.approx(before["test/x/r2"], abs=1e-6)


def test_a_decoder_folder_serves_other_targets_from_scratch(a2929, finetuned, tmp_path):
    """Break test: finetune(decoder_dir, ..., from_scratch=True) with targets other than the
    decoder's was refused ("is a decoder fine-tuned for ..."), though nothing of its heads is
    loaded from scratch (only its architecture, tokenizer and splits). It trains now; without
    from_scratch the refusal stays and says how to get this."""
    out, _ = finetuned
    with pytest.raises(ValueError, match=r"not for \[\('x', 'regression'\)\].*--from-scratch \(from_scratch=True\)"):
        finetune(out, a2929, [DecodingTarget("x", "regression")], output_dir=tmp_path / "e", max_steps=1,
                 eval_steps=1, batch_size=16)
    m = finetune(out, a2929, [DecodingTarget("x", "regression")], output_dir=tmp_path / "e", max_steps=1,
                 eval_steps=1, batch_size=16, from_scratch=True)
    assert m["init"] == "scratch" and [t["name"] for t in m["targets"]] == ["x"]


def test_decoder_keeps_its_targets_unit_and_decoding_a_series_in_another_unit_warns(a2929, pretrained, tmp_path):
    """config.decoding_targets kept no unit, so decoding a recording whose position is in m with a
    decoder fine-tuned on it in cm scored values 100x apart without a word. The unit is kept now,
    and decode_windows warns naming both units (a series without a unit, or the same one, is quiet)."""
    from hf_neuroformer.finetuning import decode_windows, load_decoder
    from hf_neuroformer.recording import BehaviourSeries

    def with_unit(unit):
        rec = copy.copy(a2929)
        x = a2929.behaviour["x"]
        rec.behaviour = dict(a2929.behaviour, x=BehaviourSeries(x.timestamps, x.values, unit))
        return rec

    finetune(pretrained, with_unit("cm"), [DecodingTarget("x", "regression")], output_dir=tmp_path / "d",
             max_steps=1, eval_steps=1, batch_size=16, seed=0)
    model, tok, plan = load_decoder(tmp_path / "d")
    assert model.config.decoding_targets[0]["unit"] == "cm"
    starts = np.arange(700.0, 702.0, 0.1)
    with pytest.warns(UserWarning, match=r"'x' is in 'm', but the decoder was fine-tuned on it in 'cm'"):
        decode_windows(model, tok, with_unit("m"), starts)
    for unit in ("cm", " CM", ""):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            table, info = decode_windows(model, tok, with_unit(unit), starts)
        assert info["recorded_targets"] == ["x"]


def test_a_decoder_config_without_class_labels_is_compared_by_its_class_count():
    """A decoding_targets entry may hold num_classes without classes (the config allows it); the
    class check read its head as classes [0, .., k - 1] and refused labels [-1, 0, 1] it could continue on."""
    from hf_neuroformer.finetuning import _check_same_classes

    old = {"name": "trial:c", "kind": "classification", "num_classes": 3}
    _check_same_classes([old], [{"name": "trial:c", "kind": "classification", "classes": [-1, 0, 1]}], "d")
    with pytest.raises(ValueError, match=r"trained on 3 classes \(labels not recorded\), but .* \[-1, 0\]"):
        _check_same_classes([old], [{"name": "trial:c", "kind": "classification", "classes": [-1, 0]}], "d")


def test_the_checkpoint_plan_keeps_its_windows_across_touching_intervals_of_the_support():
    """finetune clips the checkpoint's splits.json to the recording's support; with touching
    intervals ([0, 20), [20, 40): one stretch, as plan_splits takes it) a training segment across
    20 s was cut there, and the windows whose past reaches over 20 s were lost (538 of 541); decode
    tiled each interval on its own (796 windows, not 798)."""
    from hf_neuroformer.finetuning import _plan_within, windows_tiling
    from hf_neuroformer.windows import SPLITS, plan_splits, window_starts_for_split

    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 40, 4000))
    rec = nf.SpikeRecording(spike_times=t, unit_ids=rng.integers(0, 3, t.size), unit_names=list("abc"),
                            time_domain=(0.0, 40.0), time_support=np.array([[0.0, 20.0], [20.0, 40.0]]))
    cfg = nf.NeuroformerConfig(current_window=0.05, past_window=0.1, dt_resolution=0.01, split_block_length=3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few blocks: approximate fractions
        plan = plan_splits(rec, cfg)
    assert any(a < 20.0 < b for a, b in plan.segments["train"])  # a training segment across the shared edge
    clipped = _plan_within(plan, rec, cfg)
    for split in SPLITS:
        want = window_starts_for_split(plan, split, cfg)[0]
        np.testing.assert_array_equal(window_starts_for_split(clipped, split, cfg)[0], want)
    # decode's tiling of the whole recording (windows_tiling) takes the stretch [0, 40) too: 798 windows, not 796
    starts, _ = windows_tiling(rec, cfg)
    assert len(starts) == 798 and np.any(np.isclose(starts, 20.0))


def test_decoding_figure_says_r2_is_undefined_for_a_constant_target():
    """A target constant over the test windows has R² NaN (decoding_metrics: undefined); the panel
    title read 'R² nan', as if the run had failed."""
    from hf_neuroformer.metrics.decoding import decoding_metrics
    from hf_neuroformer.plotting import plot_decoding

    t = np.arange(4) * 0.1
    y = np.full((4, 1), 2.0)  # the animal sat still: a constant recorded target
    p = np.array([[1.9], [2.1], [2.0], [2.2]])
    r2 = decoding_metrics(y[:, 0], p[:, 0], "regression")["r2"]
    assert np.isnan(r2)
    fig = plot_decoding(t, y, p, [{"name": "x", "kind": "regression"}], metrics={"test/x/r2": r2})
    title = fig.axes[0].get_title(loc="left") + fig.axes[0].get_title()
    assert "R² n/a (constant recorded target)" in title and "nan" not in title, title
    fig = plot_decoding(t, y, p, [{"name": "x", "kind": "regression"}], metrics={"test/x/r2": 0.25})
    assert "R² 0.250" in fig.axes[0].get_title(loc="left") + fig.axes[0].get_title()


def test_a_finetune_that_stops_keeps_the_train_checkpoints_it_did_not_replace(a2929, tmp_path):
    """Break test: a fine-tuning run with --overwrite into a folder holding train's resumable
    checkpoints (checkpoints/step-N) that stopped before it ended (here a refused divergence; Ctrl-C
    is the same path) deleted the whole checkpoints folder, train's checkpoints with it, though no
    new model replaced anything. Only the checkpoints this run wrote are removed now."""
    out = tmp_path / "run"
    step = out / "checkpoints" / "step-5"
    step.mkdir(parents=True)
    (step / "trainer_state.json").write_text("{}")
    cfg = nf.NeuroformerConfig(**{**TINY, "split_block_length": 3.0})
    with pytest.raises(ValueError, match=r"fine-tuning diverged"):
        finetune(None, a2929.restrict(670.0, 700.0), [DecodingTarget("x", "regression")], config=cfg, output_dir=out,
                 max_steps=1, eval_steps=1, batch_size=8, learning_rate=1e6, overwrite=True)
    assert (step / "trainer_state.json").read_text() == "{}"
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-5"]  # Trainer's checkpoint-1 is gone


def test_finetune_and_decode_windows_count_the_modality_tokens_beyond_max_tokens(tmp_path):
    """An input series at 100 Hz over a 0.1-s modality window gives 10 samples, max_tokens 4 keeps
    the latest 4: train counts and prints the 6 left out of each window, but fine-tuning and
    decode_windows dropped them without a word. The decoding report counts them per split now,
    finetune warns, and decode_windows' info counts them."""
    from hf_neuroformer.finetuning import decode_windows, load_decoder
    from hf_neuroformer.recording import BehaviourSeries

    rng = np.random.default_rng(0)
    st = np.sort(rng.uniform(0, 60, 2000))
    ts = np.arange(0, 60, 0.01)
    rec = nf.SpikeRecording(st, rng.integers(0, 4, 2000), time_domain=(0.0, 60.0),
                            behaviour={"x": BehaviourSeries(ts, np.sin(ts), "cm"), "y": BehaviourSeries(ts, np.cos(ts), "cm")})
    mod = {"name": "y", "source": "behaviour:y", "kind": "continuous", "window": [-0.1, 0.0], "max_tokens": 4}
    cfg = nf.NeuroformerConfig(**{**TINY, "split_block_length": 5.0, "modalities": [mod]})
    with pytest.warns(UserWarning, match=r"train: modality 'y': \d+ tokens beyond max_tokens = 4 left out of the windows") as got:
        finetune(None, rec, [DecodingTarget("x", "regression")], output_dir=tmp_path / "d", config=cfg, max_steps=1,
                 eval_steps=1, batch_size=8, seed=0, progress=False)
    # pointing at finetune's caller, not at a line of finetuning.py
    ours = [w for w in got if str(w.message).startswith("train: modality 'y'")]
    assert ours and {w.filename for w in ours} == {__file__}, [(str(w.message)[:60], w.filename) for w in got]
    report = json.loads((tmp_path / "d" / "decoding_report.json").read_text())
    for split in ("train", "validation", "test"):
        assert report[split]["n_truncated_modality_tokens"] == {"y": 6 * report[split]["n_windows"]}
    model, tok, _ = load_decoder(tmp_path / "d")
    _, info = decode_windows(model, tok, rec, [10.0, 10.1, 10.2])
    assert info["n_truncated_modality_tokens"] == {"y": 18}


def test_decoding_figure_says_when_the_recording_gives_no_unit():
    """Found following the README: the A2929 decoder's test_decoding.png (and decode's figure) labelled
    position x as a bare 'x', as if the axis had no unit to give: the NWB file records none for it. The
    axis now says the recording gives none; a unit it gives is shown as before."""
    from hf_neuroformer.plotting import plot_decoding

    t = np.array([10.0, 10.1, 10.2, 10.3])
    y = np.array([[0.1, 1.0], [0.2, 2.0], [0.15, 3.0], [0.3, 4.0]])
    targets = [{"name": "x", "kind": "regression", "unit": ""}, {"name": "speed", "kind": "regression", "unit": "cm/s"}]
    fig = plot_decoding(t, y, y + 0.01, targets)
    assert [ax.get_ylabel() for ax in fig.axes[:2]] == ["x (unit not recorded)", "speed (cm/s)"]
    fig = plot_decoding(t, y[:, :1], y[:, :1], [{"name": "x", "kind": "regression"}])  # no unit key at all
    assert fig.axes[0].get_ylabel() == "x (unit not recorded)"


def test_finetune_without_figures_writes_the_same_files_but_test_decoding_png(a2929, pretrained, tmp_path):
    # finetune() always drew test_decoding.png (about a tenth of a short run), with no switch as
    # train(write_figures=False) has: a sweep reading only the metrics paid for it every run. Now
    # write_figures=False draws none (and removes an earlier run's), every other file is the same
    import shutil

    targets = [DecodingTarget("x", "regression")]
    out, drawn = tmp_path / "d", tmp_path / "drawn"
    kw = dict(output_dir=out, max_steps=2, eval_steps=2, batch_size=16, seed=0)
    with pytest.raises(ValueError, match="write_figures"):  # the text "False" is truthy
        finetune(pretrained, a2929, targets, write_figures="False", **kw)
    assert not out.exists()
    with_figure = finetune(pretrained, a2929, targets, write_figures=True, **kw)
    assert (out / "test_decoding.png").is_file()
    shutil.copytree(out, drawn)
    without = finetune(pretrained, a2929, targets, write_figures=False, overwrite=True, **kw)
    assert not (out / "test_decoding.png").exists()  # the earlier run's is removed, not left beside these metrics
    assert json.dumps(without) == json.dumps(with_figure)
    files = sorted(p.name for p in drawn.iterdir() if p.name != "test_decoding.png")
    assert sorted(p.name for p in out.iterdir()) == files and "test_predictions.csv" in files
    for name in files:
        if name != "training_log.json":  # it holds the evaluations' run times
            assert (out / name).read_bytes() == (drawn / name).read_bytes(), name


def test_finetune_does_not_score_the_kept_checkpoints_validation_windows_again(a2929, pretrained, tmp_path):
    # after trainer.train() (load_best_model_at_end), finetune() scored the whole validation split
    # again with the kept checkpoint, which Trainer had scored when it chose it: the same figures for
    # a validation pass. They are now that evaluation's; the forward passes in evaluation mode count
    # 2 validation passes (steps 1 and 2) and the test split, not 3 and the test split, and the
    # figures equal those of scoring the saved decoder again
    from hf_neuroformer.finetuning import load_decoder

    windows = []

    def count(module, args, output):
        if isinstance(module, nf.NeuroformerForBehaviorDecoding) and not module.training:
            windows.append(int(output.predictions.shape[0]))

    targets = [DecodingTarget("x", "regression")]
    hook = torch.nn.modules.module.register_module_forward_hook(count)
    try:
        m = finetune(pretrained, a2929, targets, output_dir=tmp_path / "d", max_steps=2, eval_steps=1, batch_size=16,
                     seed=0, write_figures=False)
    finally:
        hook.remove()
    n_val, n_test = (m["decoding_report"][s]["n_windows"] for s in ("validation", "test"))
    assert n_val > 0 and n_test > 0
    assert sum(windows) == 2 * n_val + n_test
    log = json.loads((tmp_path / "d" / "training_log.json").read_text())
    chosen = next(e for e in log if e["step"] == m["best_step"] and "eval_loss" in e)
    assert log[-1]["step"] == 2 and "validation_loss" in log[-1]  # logged as the evaluation after training was
    decoder, tok, plan = load_decoder(tmp_path / "d")
    dsd, _ = build_decoding_datasets(a2929, tok, decoder.config, plan, targets)
    again = build_trainer(decoder, dsd["train"], dsd["validation"], tmp_path / "re",
                          per_device_eval_batch_size=64).evaluate(metric_key_prefix="validation")
    for k in ("loss", "x/r2", "x/pearson_r", "x/n"):
        assert m[f"validation/{k}"] == chosen[f"eval_{k}"] == log[-1][f"validation_{k}"] == again[f"validation_{k}"], k


def test_a_misspelt_finetune_argument_is_named_with_the_one_meant_before_anything_is_read(a2929, tmp_path):
    # finetune(..., max_stpes=1) passed the misspelling on to transformers.TrainingArguments, which refused it
    # only after the recording's windows were built, with a message naming neither finetune nor max_steps
    cfg = nf.NeuroformerConfig(**TINY)
    with pytest.raises(TypeError, match=r"^finetune\(\) got an unexpected keyword argument 'max_stpes' "
                                        r"\(did you mean 'max_steps'\?\): neither one of finetune's own"):
        finetune(None, a2929, [DecodingTarget("x", "regression")], config=cfg, output_dir=tmp_path / "d", max_stpes=1)
    with pytest.raises(TypeError, match=r"unexpected keyword arguments 'lr_scheduler' \(did you mean "
                                        r"'lr_scheduler_type'\?\), 'zzz':"):
        finetune(None, a2929, [DecodingTarget("x", "regression")], config=cfg, output_dir=tmp_path / "d",
                 lr_scheduler="cosine", zzz=1)
    assert not (tmp_path / "d").exists()
    # a real TrainingArguments field still passes through (lr_scheduler_type, read by the schedule check too)
    m = finetune(None, a2929.restrict(600.0, 700.0), [DecodingTarget("x", "regression")], config=cfg,
                 output_dir=tmp_path / "ok", max_steps=1, eval_steps=1, batch_size=16, lr_scheduler_type="constant")
    assert m["total_steps"] == 1


def test_a_bool_trial_column_keeps_false_and_true_as_its_classes(steinmetz):
    """A bool trial column decoded as classes was read as 0.0 / 1.0: its classes (decoder config,
    decoding_report.json) were [0, 1] and a refusal said 'class(es) [0]' where the user wrote False.
    Its labels are kept; a saved [0, 1] still compares as the same classes."""
    from hf_neuroformer.finetuning import _check_same_classes

    motor = np.asarray(steinmetz.trial_info["motorLabel"])
    right = motor == 1  # the trials with a rightward choice, a bool column
    rec = dataclasses.replace(steinmetz, trial_info={**steinmetz.trial_info, "right": right})
    cfg = nf.NeuroformerConfig(**{**TINY, "past_window": 0.2, "max_window_length": 40})
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(rec)
    cfg.vocab_size = len(tok)
    t = DecodingTarget("trial:right", "classification")
    _, report = build_decoding_datasets(rec, tok, cfg, None, [t])
    info = report["targets"]["trial:right"]
    assert t.classes == info["classes"] == [False, True]
    assert all(type(c) is bool for c in info["classes"])
    assert json.loads(json.dumps(info))["classes"] == [False, True]
    assert sum(info["class_counts"]) == report["train"]["n_windows"] > 0
    # a decoder saved with the old [0, 1] classes holds the same classes
    _check_same_classes([{"kind": "classification", "classes": [0, 1]}],
                        [{"kind": "classification", "name": "trial:right", "classes": [False, True]}], "d")
    # one label in every trial: the refusal names it as written
    never = dataclasses.replace(steinmetz, trial_info={**steinmetz.trial_info, "right": np.zeros(len(motor), bool)})
    with pytest.raises(DecodingTargetError, match=rf"all {len(motor)} finite values equal False, a constant"):
        build_decoding_datasets(never, tok, cfg, None, [DecodingTarget("trial:right", "classification")])


@pytest.mark.parametrize("labels", ["nan", "absent"])
def test_a_batch_without_behaviour_labels_scores_its_auxiliary_loss_in_evaluation_as_in_training(a2929, pretrained,
                                                                                                  labels):
    """Break test: a decoder with the auxiliary next-spike loss, given a batch whose behaviour labels
    are all NaN, returned loss 0.0 in evaluation (and in a plain training-mode call) while its
    ``loss_terms`` held the auxiliary term (``loss_from_terms`` about 2.5); without ``labels`` it
    returned None. The loss is now the auxiliary term, the one a training step on the batch optimises,
    in both modes, and it agrees with ``loss_terms`` and with the pretraining heads' own loss."""
    dsd, report = _x_windows(a2929, pretrained)
    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(
        pretrained, decoding_targets=target_dicts([DecodingTarget("x", "regression")], report),
        decoding_generative_loss_weight=0.5, hidden_dropout=0.0)
    batch = DecodingCollator(["target_x"])([dsd["train"][i] for i in range(8)])
    spikes = {k: v for k, v in batch.items() if k != "labels"}
    if labels == "nan":
        spikes["labels"] = torch.full_like(batch["labels"], float("nan"))
    pre = nf.NeuroformerForPreTraining.from_pretrained(pretrained).eval()
    with torch.no_grad():
        gen = pre(**{k: v for k, v in spikes.items() if k not in ("labels", "token_labels")},
                  labels=spikes["token_labels"]).loss
        out = model.eval()(**spikes)
        trained = model.train()(**spikes).loss
    assert out.loss is not None and out.loss.item() > 0
    torch.testing.assert_close(out.loss, 0.5 * gen)
    assert model.loss_from_terms(out.loss_terms) == pytest.approx(out.loss.item(), rel=1e-5)
    assert out.loss_terms[:, :2].abs().sum() == 0  # no behaviour label counted
    torch.testing.assert_close(trained, out.loss)
    # nothing to score: no labels and no next-spike labels
    with torch.no_grad():
        bare = model.eval()(**{k: v for k, v in spikes.items() if k not in ("labels", "token_labels", "dt_labels")})
    assert bare.loss is None and bare.loss_terms is None


@pytest.mark.parametrize("concat", [True, False])
def test_preprocess_logits_for_metrics_and_compute_metrics_never_see_the_loss_terms(a2929, pretrained, tmp_path,
                                                                                    concat):
    """Break test: a user's ``preprocess_logits_for_metrics`` received the per-window ``loss_terms``
    (internal to DecodingTrainer's one-batch validation loss) as a third entry among the logits, and
    ``compute_metrics`` saw them among the predictions. Both now see what the decoder's outputs are
    without them: ``(predictions, logits)``, and whatever the user's function returns; the loss stays
    that of all windows as one batch, and a loss-only evaluation never calls the function."""
    from hf_neuroformer.finetuning import build_trainer

    dsd, report = _x_windows(a2929, pretrained)
    ds = dsd["validation"].select(range(19))
    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(
        pretrained, decoding_targets=target_dicts([DecodingTarget("x", "regression")], report),
        decoding_generative_loss_weight=0.5)
    trainer = build_trainer(model, ds, ds, tmp_path, per_device_eval_batch_size=8, save_strategy="no",
                            eval_do_concat_batches=concat)
    seen, scored = [], []

    def keep_predictions(logits, labels):
        seen.append(logits)
        return logits[0]

    def compute_metrics(eval_pred):
        scored.append(eval_pred.predictions)
        return {}

    trainer.preprocess_logits_for_metrics = keep_predictions
    trainer.compute_metrics = compute_metrics
    metrics = trainer.evaluate()
    model.eval()
    with torch.no_grad():
        out = model(**trainer.data_collator([ds[i] for i in range(len(ds))]))
    assert len(seen) == 3  # batches of 8, 8 and 3
    for batch in seen:
        assert isinstance(batch, tuple) and len(batch) == 2, [tuple(t.shape) for t in batch]
        assert batch[0].shape[1] == 1 and batch[1].shape == batch[0].shape  # predictions, the head's output
    got = np.concatenate(scored[0]) if not concat else scored[0]
    assert isinstance(got, np.ndarray) and got.shape == (19, 1)
    np.testing.assert_allclose(got, out.predictions.numpy(), rtol=1e-5, atol=1e-6)
    assert metrics["eval_loss"] == pytest.approx(out.loss.item(), rel=1e-5)
    pred = trainer.predict(ds)
    preds = np.concatenate(pred.predictions) if not concat else pred.predictions
    np.testing.assert_allclose(preds, out.predictions.numpy(), rtol=1e-5, atol=1e-6)
    # the preprocessing and compute_metrics the user set are those the trainer keeps
    assert trainer.preprocess_logits_for_metrics is keep_predictions and trainer.compute_metrics is compute_metrics
    seen.clear()
    trainer.args.prediction_loss_only = True
    assert trainer.evaluate()["eval_loss"] == pytest.approx(out.loss.item(), rel=1e-5)
    assert not seen


def test_a_boolean_behaviour_series_keeps_false_and_true_as_its_classes(a2929, pretrained):
    """Break test: a per-sample True / False behaviour series decoded as classes was stored as 0.0 /
    1.0, so its classes (decoder config, decoding_report.json, the predictions table) were [0, 1]
    and the constant refusal said 'equal 0', while a bool trial column says [False, True]. The
    series remembers it was given as booleans (``BehaviourSeries.boolean``, kept by ``restrict``)."""
    from hf_neuroformer.decoding import prediction_table
    from hf_neuroformer.recording import BehaviourSeries, RecordingValidationError

    x = a2929.behaviour["x"]
    right = x.values.reshape(-1) > np.nanmedian(x.values)  # the animal in the right half of the arena
    series = BehaviourSeries(x.timestamps, right)
    rec = dataclasses.replace(a2929, behaviour={**a2929.behaviour, "right": series})
    tok = nf.NeuroformerTokenizer.from_pretrained(pretrained)
    cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
    t = DecodingTarget("right", "classification")
    _, report = build_decoding_datasets(rec, tok, cfg, None, [t])
    info = report["targets"]["right"]
    assert t.classes == info["classes"] == [False, True]
    assert all(type(c) is bool for c in info["classes"])
    (tdict,) = target_dicts([t], report)
    assert tdict["classes"] == [False, True]
    table = prediction_table(np.array([700.0, 700.1]), cfg.current_window, np.array([[0.0], [1.0]]), [tdict])
    assert [type(v) for v in table["right_predicted"].tolist()] == [bool, bool]
    assert table["right_predicted"].tolist() == [False, True]
    assert series.boolean and series.values.dtype == np.float64
    assert rec.restrict(700.0, 800.0).behaviour["right"].boolean  # restrict keeps it
    # a series of one value: the refusal names it as written
    never = dataclasses.replace(a2929, behaviour={**a2929.behaviour,
                                                  "right": BehaviourSeries(x.timestamps, np.zeros(right.size, bool))})
    with pytest.raises(DecodingTargetError, match=r"finite values equal False, a constant"):
        build_decoding_datasets(never, tok, cfg, None, [DecodingTarget("right", "classification")])
    with pytest.raises(RecordingValidationError, match=r"BehaviourSeries.values: boolean=True expects values 0 / 1"):
        BehaviourSeries(x.timestamps, x.values, boolean=True)


def test_a_path_given_as_the_recording_is_refused_naming_load_recording(pretrained, shared_data, tmp_path):
    """Break test: finetune(model, "rec.nwb", ...) and build_decoding_datasets with a path failed with
    AttributeError "'str' object has no attribute 'behaviour'"; both now say to read it with
    load_recording, before anything is written."""
    path = str(shared_data(A2929))
    hint = r"recording: expected a SpikeRecording, got str; read the file with hf_neuroformer.io.load_recording\("
    with pytest.raises(TypeError, match=hint):
        finetune(pretrained, path, [DecodingTarget("ry", "circular")], output_dir=tmp_path / "o", max_steps=1)
    assert not (tmp_path / "o").exists()
    tok = nf.NeuroformerTokenizer.from_pretrained(pretrained)
    cfg = nf.NeuroformerConfig.from_pretrained(pretrained)
    with pytest.raises(TypeError, match=hint):
        build_decoding_datasets(path, tok, cfg, None, [DecodingTarget("ry", "circular")])


def test_continuing_a_decoder_with_its_targets_in_another_order_gives_its_order(finetuned, a2929, tmp_path):
    """Break test: a decoder of ry, x continued with x, ry was refused as "fine-tuned for [ry, x], not
    for [x, ry] ... give the same targets to continue", which they were; its heads are read in its
    own order, and the message now says so and gives that order as flags."""
    out, _ = finetuned
    ry, x = DecodingTarget("ry", "circular"), DecodingTarget("x", "regression")
    with pytest.raises(ValueError, match=r"fine-tuned for \[\('ry', 'circular'\), \('x', 'regression'\)\], in that "
                                         r"order.*another order.*\(--target ry,x --kind circular,regression\)"):
        finetune(out, a2929, [x, ry], output_dir=tmp_path / "o", max_steps=1)
    with pytest.raises(ValueError, match=r"not for \[\('x', 'regression'\)\]; fine-tune the pretrained model"):
        finetune(out, a2929, [x], output_dir=tmp_path / "o", max_steps=1)
    assert not (tmp_path / "o").exists()


def test_cli_continuing_a_decoder_with_another_regression_loss_names_the_flag(finetuned, shared_data, tmp_path,
                                                                             capsys):
    """Break test: `finetune --model DECODER --regression-loss hl_gauss` over an MSE head opened its error
    with "targets:", no flag of the command; it names --regression-loss. --help said "(plan 9: 64)"
    of --num-bins as if that were its default: it says the flag is required with hl_gauss."""
    from hf_neuroformer import cli

    out, _ = finetuned
    argv = ["finetune", "--model", str(out), "--data", str(shared_data(A2929)), "--epoch", "wake",
            "--target", "ry,x", "--kind", "circular,regression", "--regression-loss", "hl_gauss",
            "--output-dir", str(tmp_path / "o")]
    assert cli.main(argv) == 2
    assert "--num-bins: needed with --regression-loss hl_gauss" in capsys.readouterr().err
    assert cli.main(argv + ["--num-bins", "8", "--hl-gauss-sigma-ratio", "0.75"]) == 2
    err = capsys.readouterr().err
    assert "error: --regression-loss: " in err and "head for 'x' was trained with loss='mse'" in err, err
    assert not (tmp_path / "o").exists()
    help_text = " ".join(cli.build_parser()._subparsers._group_actions[0].choices["finetune"].format_help().split())
    for flag in ("--num-bins K", "--hl-gauss-sigma-ratio R"):
        assert f"{flag} required with --regression-loss hl_gauss (no default)" in help_text, flag


def test_windows_tiling_refuses_a_path_and_a_mode_it_does_not_know(finetuned, a2929, shared_data, steinmetz):
    """Break test: windows_tiling("rec.nwb", config) failed with AttributeError (no attribute 'support'),
    and mode "trial" (for "trials") tiled the recorded time as "time" does, ignoring the trials."""
    from hf_neuroformer.finetuning import load_decoder, windows_tiling

    model, _, _ = load_decoder(finetuned[0])
    with pytest.raises(TypeError, match=r"recording: expected a SpikeRecording, got str; read the file with "
                                        r"hf_neuroformer.io.load_recording"):
        windows_tiling(str(shared_data(A2929)), model.config)
    for bad in ("trial", "Time", None):
        with pytest.raises(ValueError, match=r"mode: expected 'time' or 'trials' \(the decoder's split plan mode"):
            windows_tiling(steinmetz, model.config, bad)
    starts, clips = windows_tiling(steinmetz, model.config, "trials")  # one window per trial and more
    assert len(starts) >= len(steinmetz.trials) and np.isfinite(clips).all()


def test_cli_decode_without_data_refuses_a_decoder_of_other_units_before_simulating(finetuned, tmp_path, capsys):
    """Break test: `decode --model D --output x.csv` without --data, D fine-tuned on A2929, simulated
    the built-in recording for some 20 s before refusing it on its units. The built-in recording's
    units are known without simulating it (default_recording_units, checked against a short
    simulation here), so the refusal comes at once (well under the simulation's time), names --data,
    the decoder's units and the recording it was fine-tuned on (metrics.json's 'recording'), and
    writes nothing. A decoder that knows the built-in units (fine-tuned on it with behaviour added in
    Python) is not refused by this check."""
    import time

    from hf_neuroformer import cli
    from hf_neuroformer.simulation import default_recording_units, simulate_coupled_network

    session, names = default_recording_units()
    short = simulate_coupled_network(duration=1.0, seed=0).recording  # default_recording's units, 140 s simulated
    assert (session, names) == (short.session, list(short.unit_names)) and len(names) == 16
    d, out = finetuned[0], tmp_path / "x.csv"
    start = time.perf_counter()
    assert cli.main(["decode", "--model", str(d), "--output", str(out)]) == 2
    assert time.perf_counter() - start < 10  # the simulation alone took about 20 s
    err = capsys.readouterr().err
    recorded = json.loads((d / "metrics.json").read_text())["recording"]
    n_units = sum(1 for t in nf.NeuroformerTokenizer.from_pretrained(d).get_vocab() if "/" in t)
    assert ("error: --data: not given, so the built-in simulated recording (session 'simulated', 16 units unit0 .. "
            f"unit15) would be decoded, but the decoder {str(d)!r} was fine-tuned on other units ({n_units} units of "
            "session 'A2929-200711'") in err
    assert f"pass --data, the recording it was fine-tuned on ({recorded}) (or one with the same units)" in err
    assert not out.exists()
    tok = nf.NeuroformerTokenizer()
    tok.add_units([tok.unit_token(session, n) for n in names])
    assert cli._refuse_builtin_units(tok, tmp_path / "no metrics") is None
    tok = nf.NeuroformerTokenizer()
    tok.add_units([tok.unit_token(session, n) for n in names[:-1]])  # one built-in unit unknown: refused
    with pytest.raises(ValueError, match=r"--data: not given.*\(15 units of session 'simulated'\).*fine-tuned on "
                                         r"\(or one with the same units\)$"):
        cli._refuse_builtin_units(tok, tmp_path / "no metrics")


def test_tiny_scores_print_without_a_minus_zero_in_decode_finetune_and_figure_titles(capsys):
    """Break test: a tiny R² printed as "-0.000 [95% CI -0.000, 0.000]" in decode's scores and the
    decoding figure's title (3 decimals), and finetune's listing printed -0.0 as "-0.0000". One
    formatter, recording.score_text, now writes 0 and -0.0 as 0.000 and a value below 0.001 in size
    (not 0) with its significant digits, which finetune's listing already did with 4."""
    from hf_neuroformer import cli
    from hf_neuroformer.plotting import plot_decoding
    from hf_neuroformer.recording import score_text

    assert [score_text(v) for v in (0.0, -0.0, -2.1e-4, 2.1e-5, 7.3e-4, 0.4123, -0.0123, float("nan"))] == \
        ["0.000", "0.000", "-0.00021", "2.1e-05", "0.00073", "0.412", "-0.012", "nan"]
    assert score_text(np.float32(-0.0), decimals=4) == "0.0000" and score_text(1e-9, 4, 4) == "1e-09"
    with pytest.raises(TypeError, match=r"^value: expected a real number, got None$"):
        score_text(None)
    cli._print_metrics({"test/x/r2": -2.1e-4, "test/x/r2_ci95": [-0.0, 3.25e-5], "fraction": 1e-9, "lr": -0.0})
    out = capsys.readouterr().out
    assert "-0.00021  95% CI [0.0000, 3.25e-05]" in out and "1e-09" in out and "-0.0000" not in out
    fig = plot_decoding(np.arange(3.0), np.array([[1.0], [2.0], [3.0]]), np.array([[2.0], [2.0], [2.0]]),
                        [{"name": "x", "kind": "regression"}], metrics={"test/x/r2": -0.0})
    assert fig.axes[0].get_title().endswith("; R² 0.000")
    fig = plot_decoding(np.arange(3.0), np.array([[1.0], [2.0], [3.0]]), np.array([[2.0], [2.0], [2.0]]),
                        [{"name": "x", "kind": "regression"}], metrics={"test/x/r2": -2.1e-4})
    assert fig.axes[0].get_title().endswith("; R² -0.00021")


def test_cli_finetune_without_data_says_the_simulated_recording_has_nothing_to_decode(pretrained, tmp_path, capsys):
    """Break test: `finetune --model M --target ry` without --data (its --help: "default: built-in simulated")
    simulated the default recording for 20 s, then said "--target 'ry': not in this recording; available
    targets: []" (or blamed the units): that recording has no behaviour at all. It is refused by --data,
    after the model's check and before anything is read; --help says so. A recording without any target
    says "none" rather than "[]"."""
    from hf_neuroformer import cli

    out = tmp_path / "o"
    assert cli.main(["finetune", "--model", str(pretrained), "--target", "ry", "--output-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "error: --data: not given, and the built-in simulated recording read without it holds no behaviour" in err
    assert not out.exists()
    assert cli.main(["finetune", "--model", str(tmp_path / "none"), "--target", "ry", "--output-dir", str(out)]) == 2
    assert "--model: " in capsys.readouterr().err  # the model is checked first
    help_text = " ".join(cli.build_parser()._subparsers._group_actions[0].choices["finetune"].format_help().split())
    assert "--data DATA the recording with the behaviour to decode (not given: the built-in simulated recording, " \
           "which holds no behaviour, so finetune refuses it)" in help_text
    bare = nf.SpikeRecording(np.array([0.5, 1.0]), np.array([0, 1]))
    with pytest.raises(DecodingTargetError, match=r"target 'ry': not in this recording; available targets: none, the "
                                                  r"recording holds no behaviour series and no trial columns"):
        infer_kind(bare, "ry")


def test_a_decoder_saved_from_a_trainer_loop_is_told_how_to_write_its_split_plan(finetuned, a2929, pretrained,
                                                                                 tmp_path):
    """Break test of the README's own Trainer loop: trainer.save_model and tokenizer.save_pretrained give
    a folder without splits.json, and load_decoder (neuroformer decode) said only that it is missing.
    The message now says how to write it; written that way, the decoder loads with that plan."""
    import shutil

    from hf_neuroformer.finetuning import load_decoder

    saved = tmp_path / "mine"
    shutil.copytree(finetuned[0], saved)
    (saved / "splits.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"splits.json' is missing; .*json.dump\(report\['split_plan'\], "
                                                r"open\(<dir>/splits.json, 'w'\)\) with the report of "
                                                r"build_decoding_datasets"):
        load_decoder(saved)
    _, report = _x_windows(a2929, pretrained)
    with open(saved / "splits.json", "w") as f:
        json.dump(report["split_plan"], f)
    _, _, plan = load_decoder(saved)
    assert plan.to_dict() == report["split_plan"]
