"""train(): checkpoint selection, splits without validation or test, output protection, bf16."""

import contextlib
import dataclasses
import json
import math
import re
import warnings

import numpy as np
import pytest
import torch

import hf_neuroformer as nf
from hf_neuroformer.training import TrainingConfig, load_yaml_config, train

TINY = dict(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=24, max_past_length=48,
            hidden_size=16, num_attention_heads=2, intermediate_size=32, split_block_length=5.0)


@pytest.fixture(scope="module")
def rec():
    return nf.simulate_coupled_network(n_units=5, duration=40.0, seed=7).recording


def test_checkpoint_is_chosen_on_validation(rec, tmp_path):
    # a learning rate high enough that the validation loss turns up again before the last step
    # (at the default rate it fell at every evaluation, so "keep the last step" passed this test).
    # 24 steps: the run differs between torch releases (step 3's validation loss 8.24 under 2.13.0,
    # 6.23 under 2.6.0), and with 12 the loss fell to the last step under 2.6.0; with 24 it turns
    # up over the last evaluations under both
    from safetensors.torch import load_file

    m = train(rec, tmp_path / "m", nf.NeuroformerConfig(**TINY),
              TrainingConfig(max_steps=24, eval_every=3, save_every=3, save_total_limit=8, batch_size=16,
                             learning_rate=0.2), progress=False)
    log = json.loads((tmp_path / "m" / "training_log.json").read_text())
    assert [e["step"] for e in log] == [3, 6, 9, 12, 15, 18, 21, 24]
    best = min(log, key=lambda e: e["validation/loss"])
    assert best["step"] != 24 and log[-1]["validation/loss"] > best["validation/loss"] + 1e-3, log
    assert m["best_step"] == best["step"] and m["checkpoint_selection"] == "lowest validation loss"
    # the model (re-scored after training) is the selected one: its validation loss is the logged best
    assert m["validation/loss"] == pytest.approx(best["validation/loss"], rel=1e-5)
    # and the saved weights are those of the best step's checkpoint, not the last step's
    saved = load_file(tmp_path / "m" / "model.safetensors")
    ckpt = tmp_path / "m" / "checkpoints"
    at = {s: load_file(ckpt / f"step-{s:08d}" / "model.safetensors") for s in (best["step"], 24)}
    assert all(np.array_equal(saved[k].numpy(), at[best["step"]][k].numpy()) for k in saved)
    assert not all(np.array_equal(saved[k].numpy(), at[24][k].numpy()) for k in saved)
    # (a confidence interval is a [low, high] list of floats, or None when it cannot be given; the
    # training_stretches a list of dicts, here one: steps 1-24 with this run's settings)
    assert all(isinstance(v, (int, float, str, dict)) or (k.endswith("_ci95") and (
        v is None or (isinstance(v, list) and all(isinstance(x, float) for x in v))))
        or (k == "training_stretches" and all(isinstance(x, dict) for x in v)) for k, v in m.items())
    assert [(r["from_step"], r["to_step"], r["mixed_precision"]) for r in m["training_stretches"]] == [(1, 24, "no")]
    # model.safetensors as readable as config.json beside it (safetensors 0.8 writes 0600 files),
    # in the output and in a resumable checkpoint
    import stat

    def mode(p):
        return stat.S_IMODE(p.stat().st_mode)

    assert mode(tmp_path / "m" / "model.safetensors") == mode(tmp_path / "m" / "config.json")
    step_dir = ckpt / f"step-{best['step']:08d}"
    for p in step_dir.glob("*.safetensors"):
        assert mode(p) == mode(step_dir / "trainer_state.json"), p.name
    # the figures beside the model: loss curves and recorded vs generated test spikes
    for name in ("training_curves.png", "test_generation.png"):
        assert (tmp_path / "m" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_training_curves_draw_the_log():
    from hf_neuroformer.plotting import PlottingInputError, plot_training_curves

    log = [{"step": s, "epoch": 0, "train_loss": 5.0 - s / 10, "validation/loss": 4.0 + (s - 6) ** 2 / 100,
            "validation/id_nll": 2.0 + s / 100, "validation/dt_nll": 1.5 - s / 100} for s in (3, 6, 9)]
    fig = plot_training_curves(log, best_step=6)
    left, right = fig.axes
    lines = {ln.get_label(): ln for ax in (left, right) for ln in ax.get_lines()}
    np.testing.assert_allclose(lines["train (running mean)"].get_ydata(), [4.7, 4.4, 4.1])
    np.testing.assert_allclose(lines["validation"].get_ydata(), [4.09, 4.0, 4.09])
    np.testing.assert_allclose(lines["unit id"].get_ydata(), [2.03, 2.06, 2.09])
    np.testing.assert_allclose(lines["dt"].get_ydata(), [1.47, 1.44, 1.41])
    kept = [ln for ln in left.get_lines() if ln.get_label().startswith("kept: step 6")]
    assert len(kept) == 1 and list(kept[0].get_xdata()) == [6, 6]
    # a contrastive run: the train loss holds the weighted InfoNCE term, the validation loss does not
    # (helper-129 read 6.16 against 3.85 as a generalisation gap); the legend says so
    labels = [ln.get_label() for ln in plot_training_curves(log, contrastive_loss_weight=0.5).axes[0].get_lines()]
    assert labels[:2] == ["train (running mean, + 0.5 x contrastive InfoNCE)",
                          "validation (next spike only, no contrastive term)"]
    with pytest.raises(PlottingInputError, match="log: expected at least one"):
        plot_training_curves([])
    with pytest.raises(PlottingInputError, match=r"log\[1\]: missing \['validation/dt_nll'\]"):
        plot_training_curves([log[0], {k: v for k, v in log[1].items() if k != "validation/dt_nll"}])


def test_checkpoint_files_are_flushed_to_disk_before_the_rename(tmp_path, monkeypatch):
    """The checkpoint writer renamed its .tmp-step-* folder into place without fsyncing the files in
    it (the model save fsyncs its staged files first): a power cut after the rename could leave a
    step-* folder of empty files that resume takes for whole. Every os.fsync is recorded (and done)
    with the path it flushes: each file of the checkpoint and its folder under the temporary name,
    then the checkpoints folder after the rename (train's checkpoint writer, on a real Accelerator)."""
    import os

    real_fsync, flushed = os.fsync, []

    def recording_fsync(fd):
        flushed.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState
    from safetensors.torch import save_file

    from hf_neuroformer.training import _save_checkpoint

    AcceleratorState._reset_state()  # as train does: a fresh CPU state
    GradientState._reset_state()
    accelerator = Accelerator(cpu=True)
    model = nf.NeuroformerForPreTraining(nf.NeuroformerConfig(**TINY, vocab_size=16))
    model, optimizer = accelerator.prepare(model, torch.optim.AdamW(model.parameters()))
    monkeypatch.setattr(os, "fsync", recording_fsync)
    _save_checkpoint(accelerator, tmp_path / "checkpoints", 1, {"step": 1}, model.state_dict(), 2, save_file)
    ckpt = tmp_path / "checkpoints" / "step-00000001"
    tmp = str(ckpt.with_name(".tmp-step-00000001"))
    files = sorted(p.name for p in ckpt.iterdir())
    assert "trainer_state.json" in files and "model.safetensors" in files
    before = [f for f in flushed if f.startswith(tmp + "/")]
    assert sorted(os.path.basename(f) for f in before) == files
    assert flushed.index(tmp) > max(flushed.index(f) for f in before)  # the folder after its files
    assert str(ckpt.parent) in flushed[flushed.index(tmp):]  # the rename, after


def test_no_validation_split_keeps_last_checkpoint_and_says_so(rec, tmp_path):
    cfg = nf.NeuroformerConfig(**{**TINY, "split_fractions": [0.85, 0.0, 0.15]})
    # an earlier run's loss curves in the directory: refused without overwrite, and replaced with
    # this run's (no stale figure beside the new model)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "training_curves.png").write_bytes(b"an earlier run's figure")
    tc = TrainingConfig(max_steps=5, batch_size=16, eval_every=2)
    with pytest.raises(FileExistsError, match="training_curves.png"):
        train(rec, tmp_path / "m", cfg, tc, progress=False)
    losses = []
    with pytest.warns(UserWarning, match="no validation"):
        m = train(rec, tmp_path / "m", cfg, tc, progress=False, overwrite=True,
                  on_step_end=lambda s, loss: losses.append(loss))
    assert m["checkpoint_selection"].startswith("last step")
    assert m["best_step"] == m["total_steps"] == 5
    assert "validation/loss" not in m and math.isfinite(m["test/id_nll"])
    assert (tmp_path / "m" / "test_generation.png").is_file()
    # without validation the log still records the running training loss every eval_every steps
    # and at the last one (it was empty, and no training_curves.png was written)
    log = json.loads((tmp_path / "m" / "training_log.json").read_text())
    assert [e["step"] for e in log] == [2, 4, 5] and all(set(e) == {"step", "epoch", "train_loss", "learning_rate"} for e in log)
    # train_loss is the bias-corrected exponential mean of the step losses (Kingma & Ba 2015, sec. 3):
    # after n steps, step k weighs 0.05 * 0.95**(n - k) / (1 - 0.95**n). It started at step 1's loss
    # and was not corrected, so step 1 had 0.95 of the value at step 2 and 0.8145 at step 5
    def corrected(n):
        w = np.array([0.05 * 0.95 ** (n - k) for k in range(1, n + 1)])
        return float(w @ np.array(losses[:n]) / (1 - 0.95 ** n))

    assert len(losses) == 5 and len(set(losses)) == 5  # distinct losses, so the weights show
    assert [e["train_loss"] for e in log] == pytest.approx([corrected(2), corrected(4), corrected(5)], rel=1e-6)
    assert (tmp_path / "m" / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the model card says which step was kept and how (it said "best on validation: 5" and "the
    # lowest validation loss" of a run that had no validation split)
    from hf_neuroformer.hub import build_model_card

    card = str(build_model_card(tmp_path / "m", "lab/no-val", m))
    assert "steps: 5 (kept: step 5, last step (no validation split))" in card
    assert "The checkpoint kept: step 5, last step (no validation split); the test split" in card
    assert "best on validation" not in card and "lowest validation loss" not in card


def test_training_curves_without_validation_draw_the_training_loss():
    from hf_neuroformer.plotting import PlottingInputError, plot_training_curves

    log = [{"step": s, "epoch": 0, "train_loss": 5.0 - s / 10} for s in (2, 4, 5)]
    fig = plot_training_curves(log, best_step=None, selection="last step (no validation split)")
    (ax,) = fig.axes
    assert [ln.get_label() for ln in ax.get_lines()] == ["train (running mean)"]  # no kept-step mark
    np.testing.assert_allclose(ax.get_lines()[0].get_xdata(), [2, 4, 5])
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), [4.8, 4.6, 4.5])
    assert "no validation split" in ax.get_title()
    # a kept step, when one is given, is still marked
    fig = plot_training_curves(log, best_step=5, selection="last step (no validation split)")
    assert [ln.get_label() for ln in fig.axes[0].get_lines()][1] == "kept: step 5 (last step (no validation split))"
    with pytest.raises(PlottingInputError, match=r"log\[1\]: missing \['train_loss'\]"):
        plot_training_curves([log[0], {"step": 4, "epoch": 0}])
    # one point (a run shorter than one epoch validates once): the axis starts at step 0 and the
    # title says why there is one point (the walk saw a lone dot on ticks 28.5-31.5)
    one = {"step": 30, "epoch": 0, "train_loss": 4.0, "validation/loss": 4.2, "validation/id_nll": 2.0,
           "validation/dt_nll": 1.5}
    fig = plot_training_curves([one], best_step=30)
    assert all(ax.get_xlim()[0] == 0 and ax.get_xlim()[1] >= 30 for ax in fig.axes)
    assert "one validation pass (step 30): training.eval_every" in fig._suptitle.get_text()
    assert plot_training_curves(log)._suptitle is None
    # one entry with validation figures: every entry must have them
    with pytest.raises(PlottingInputError, match=r"log\[0\]: missing \['validation/loss', "):
        plot_training_curves([log[0], {**log[1], "validation/loss": 4.0, "validation/id_nll": 2.0,
                                       "validation/dt_nll": 1.5}])


def test_training_curves_count_the_values_they_cannot_draw():
    """A diverged run logs NaN losses (train_loss null in training_log.json): matplotlib drew them as
    gaps, or as empty axes when every value was NaN, without a word; the title now counts them."""
    from hf_neuroformer.plotting import plot_training_curves

    nan = float("nan")
    log = [{"step": s, "epoch": 0, "train_loss": v, "validation/loss": w, "validation/id_nll": 2.0,
            "validation/dt_nll": d} for s, v, w, d in ((3, 4.0, 4.2, 1.5), (6, nan, nan, float("inf")),
                                                        (9, None, nan, nan))]
    title = plot_training_curves(log, best_step=3)._suptitle.get_text()
    assert ("not finite, not drawn (training diverged?): train_loss at 2 of 3 steps; validation/loss at 2 of 3 "
            "steps; validation/dt_nll at 2 of 3 steps") in title
    assert "validation/id_nll" not in title
    # a curve without any finite value: the axis still spans the logged steps (it showed 4.75-5.25
    # around the kept-step mark)
    every = [{"step": s, "train_loss": nan} for s in (5, 10, 15)]
    assert plot_training_curves(every, best_step=5).axes[0].get_xlim() == (5.0, 15.0)
    # every value NaN: the one logged pass is named too, beside the count
    title = plot_training_curves([{"step": 5, "train_loss": nan}])._suptitle.get_text()
    assert "one logged step (step 5)" in title and "train_loss at 1 of 1 step" in title


def test_trials_too_short_for_10ms_psth_bins_still_save_the_model_and_figure(rec, tmp_path):
    # 15-ms trials split by whole trials: the test-generation figure asked for 2 PSTH bins of
    # 10 ms, raised PlottingInputError after training, and nothing at all was written
    import dataclasses

    starts = np.arange(0.0, 39.0, 0.2)
    short = dataclasses.replace(rec, trials=np.stack([starts, starts + 0.015], 1))
    cfg = nf.NeuroformerConfig(**{**TINY, "current_window": 0.005, "past_window": 0.01, "dt_resolution": 0.001,
                                  "split_by": "trials"})
    m = train(short, tmp_path / "m", cfg, TrainingConfig(max_steps=3, batch_size=16), progress=False)
    assert m["split_mode"] == "trials" and m["n_test_windows"] > 0
    # block-bootstrap blocks of the test NLLs: one per test trial; these 15-ms trials hold a few spikes
    # (9 in 29 trials), so some resamples draw none, the NLL is undefined there, and no interval is given
    test_trials = json.loads((tmp_path / "m" / "splits.json").read_text())["trial_index"]["test"]
    assert m["test/ci95_n_blocks"] == len(test_trials) >= 5 and "trial" in m["test/ci95_blocks"]
    assert m["test/ci95_block_s"] is None  # a trial split's blocks are its trials, of no set length
    for key in ("test/id_nll", "test/dt_nll"):
        assert m[f"{key}_ci95"] is None and "undefined (NaN) in" in m[f"{key}_ci95_reason"], key
    assert (tmp_path / "m" / "model.safetensors").is_file()
    assert (tmp_path / "m" / "test_generation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # any figure that cannot be drawn is left out with a warning naming it, never the model
    from hf_neuroformer.plotting import plot_training_curves
    from hf_neuroformer.training import draw_figure, save_atomically

    with pytest.warns(UserWarning, match=r"training_curves.png: not drawn \(PlottingInputError: log: expected"):
        fig = draw_figure("training_curves.png", plot_training_curves, [])
    assert fig is None
    model = nf.NeuroformerForPreTraining.from_pretrained(tmp_path / "m")
    tok = nf.NeuroformerTokenizer.from_pretrained(tmp_path / "m")
    save_atomically(tmp_path / "m", model, tok, {}, overwrite=True, figures={"training_curves.png": fig})
    assert not (tmp_path / "m" / "training_curves.png").exists()  # a figure not drawn is not written
    # the shards (and index) of a model saved there before are removed with the move: they stayed
    # beside the new single-file model
    model.save_pretrained(tmp_path / "m", max_shard_size="20KB")
    assert len(list((tmp_path / "m").glob("model-*-of-*.safetensors"))) > 1
    save_atomically(tmp_path / "m", model, tok, {}, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "m").glob("model*")) == ["model.safetensors"]
    # the default PSTH bin follows the trial length: a tenth of the 15 ms covered
    from hf_neuroformer.generation import generate_spikes
    from hf_neuroformer.plotting import plot_fidelity
    from hf_neuroformer.windows import plan_splits, window_starts_for_split

    plan = plan_splits(short, model.config)
    starts, clips = window_starts_for_split(plan, "test", model.config, stride=model.config.current_window)
    gen = generate_spikes(model, tok, short, starts, past_clip_starts=clips, seed=0, progress=False)
    fig = plot_fidelity(short, gen)
    assert "1.5 ms bins" in fig.get_suptitle(), fig.get_suptitle()


def test_overlapping_trials_are_generated_after_training_not_refused(rec, tmp_path):
    # trials that overlap in time (events padded into trials closer than their length) go to one split
    # together, so the test split's windows overlapped and test generation raised 'window_starts: expected
    # non-overlapping current windows' after the whole run: nothing was written
    import dataclasses

    a = np.arange(0.0, 38.0, 1.0)
    trials = np.concatenate([np.stack([a, a + 0.65], 1), np.stack([a + 0.3, a + 0.9], 1)])
    overlapping = dataclasses.replace(rec, trials=trials[np.argsort(trials[:, 0], kind="stable")])
    cfg = nf.NeuroformerConfig(**{**TINY, "past_window": 0.2, "split_by": "trials"})
    with pytest.warns(UserWarning, match=r"split 'test': its trials overlap in time, so \d+ of its \d+ windows overlap") as got:
        m = train(overlapping, tmp_path / "m", cfg, TrainingConfig(max_steps=2, batch_size=8), progress=False)
    # the validation and test windows' warnings and test generation's point at train's caller (the
    # windows' named training.py, through build_window_datasets)
    overlap = [w for w in got if "its trials overlap in time" in str(w.message)]
    assert len(overlap) == 3 and {w.filename for w in overlap} == {__file__}, [(str(w.message)[:40], w.filename)
                                                                               for w in got]
    assert m["split_mode"] == "trials" and math.isfinite(m["test/id_f1"])
    assert (tmp_path / "m" / "model.safetensors").is_file() and (tmp_path / "m" / "test_generation.png").is_file()


def test_a_split_without_spikes_is_named_and_not_called_missing(rec, tmp_path):
    """One stray spike long after the others (a clock glitch) stretched the recording to 399 s: the
    validation block held no spike, its loss was NaN every time, and the run said "no validation
    split" (checkpoint_selection and warning) without naming the cause."""
    stray = nf.SpikeRecording(spike_times=np.append(rec.spike_times, 399.0), unit_ids=np.append(rec.unit_ids, 0),
                              unit_names=rec.unit_names, session=rec.session)
    # seed 1: train [0, 199.5) s holds the 40 s of spikes; validation [199.8, 299.3) s none
    cfg = nf.NeuroformerConfig(**{**TINY, "split_block_length": 100.0, "split_seed": 1})
    with pytest.warns(UserWarning) as got:
        m = train(stray, tmp_path / "m", cfg, TrainingConfig(max_steps=1, batch_size=16, generate_test=False),
                  progress=False)
    said = [str(w.message) for w in got]
    # the warning prepare gives (windows.warn_splits_without_spikes), pointing at the caller's line
    empty = [w for w in got if str(w.message).startswith("split 'validation': its ")]
    assert len(empty) == 1 and empty[0].filename == __file__, [(str(w.message), w.filename) for w in got]
    msg = str(empty[0].message)
    assert re.match(r"split 'validation': its \d+ windows hold 0 spikes, so a model trained on these windows gets "
                    r"NaN losses and metrics for that split; no checkpoint can be chosen on the validation split "
                    r"\(train keeps the last one\)", msg), msg
    assert "--epoch" in msg and "'neuroformer inspect --data ...'" in msg, msg
    assert not any("no validation windows" in x for x in said), said
    assert m["checkpoint_selection"] == "last step (validation loss never finite)"


def test_past_windows_cut_at_max_past_length_are_counted_per_split_when_training_starts(rec, tmp_path, capsys):
    """Spikes left out of past windows longer than max_past_length were only summed up in
    metrics.json at the end of the run; the current-window cut was printed per split up front."""
    cfg = nf.NeuroformerConfig(**{**TINY, "max_past_length": 8, "max_window_length": 4})
    m = train(rec, tmp_path / "m", cfg, TrainingConfig(max_steps=1, batch_size=16, generate_test=False), progress=False)
    said = capsys.readouterr().out
    found = re.findall(r"\[neuroformer\] (\w+): (\d+) past-window spikes left out of (\d+) of (\d+) windows "
                       r"\(past windows longer than max_past_length=8 tokens", said)
    counts = {s: int(x) for s, x, _, _ in found}
    assert set(counts) == {"train", "validation", "test"}, said
    assert sum(counts.values()) == m["n_truncated_past_spikes"] > 0
    assert "max_past_length) that holds 99 %" in said
    # the windows the spikes were cut from, beside the spikes (only 'inspect' gave them): as many as
    # inspect counts from the recording, printed and in metrics.json
    from hf_neuroformer.inspection import split_window_counts

    _, per_window = split_window_counts(rec, cfg)
    want = {s: int(np.sum(n > cfg.max_window_length - 2)) for s, (n, _) in per_window.items()}
    want_past = {s: int(np.sum(p > cfg.max_past_length - 1)) for s, (_, p) in per_window.items()}
    assert m["n_truncated_windows_by_split"] == want and all(want.values()), (m, want)
    assert m["n_truncated_past_windows_by_split"] == want_past and all(want_past.values()), (m, want_past)
    assert {s: (int(k), int(n)) for s, _, k, n in found} == {s: (want_past[s], len(per_window[s][1])) for s in want}
    for s in want:
        assert (f"[neuroformer] {s}: {m['n_truncated_spikes_by_split'][s]} of {m['n_spikes_by_split'][s]} "
                f"current-window spikes truncated in {want[s]} of {len(per_window[s][0])} windows (windows longer "
                "than max_window_length=4 tokens)") in said, said


def test_a_past_window_of_bos_only_is_not_reported_as_a_budget_to_raise(rec, tmp_path, capsys):
    """max_past_length=1 (ablate's state-only variant: the past window holds only its BOS) printed
    "N past-window spikes left out (past windows longer than max_past_length=1 tokens)" per split and
    sent the user to 'neuroformer inspect' for a max_past_length that holds the past windows whole:
    advice to undo the ablation. It now says the past is empty by design."""
    cfg = nf.NeuroformerConfig(**{**TINY, "max_past_length": 1})
    m = train(rec, tmp_path / "m", cfg, TrainingConfig(max_steps=1, batch_size=16, generate_test=False), progress=False)
    said = capsys.readouterr().out
    assert m["n_truncated_past_spikes"] > 0
    assert "past-window spikes left out" not in said and "holds 99 %" not in said, said
    assert "max_past_length=1: the past windows hold only their BOS token" in said, said
    assert f"{m['n_truncated_past_spikes']} past-window spikes not read" in said, said


def test_a_diverged_run_is_not_said_to_have_empty_validation_windows(rec, tmp_path):
    """The 'validation loss never finite' warning said its cause was windows without spikes; a run whose
    losses are NaN because training diverged (here a learning rate of 1e30) has spikes in them, and
    that message sent the user to the data. It now names divergence and the spikes the split holds."""
    cfg = nf.NeuroformerConfig(**{**TINY, "split_fractions": [0.85, 0.15, 0.0]})
    with pytest.warns(UserWarning) as got:
        m = train(rec, tmp_path / "m", cfg, TrainingConfig(max_steps=2, eval_every=1, batch_size=16,
                                                           learning_rate=1e30), progress=False)
    log = json.loads((tmp_path / "m" / "training_log.json").read_text())
    assert all(e["validation/loss"] is None or math.isnan(e["validation/loss"]) for e in log), log
    assert m["checkpoint_selection"] == "last step (validation loss never finite)"
    said = [str(w.message) for w in got if str(w.message).startswith("validation: the validation loss was never")]
    assert len(said) == 1 and "training diverged" in said[0] and "no spike" not in said[0], said


def test_a_diverged_run_with_a_test_split_is_saved_and_says_why_nothing_was_generated(rec, tmp_path):
    """With a test split, the same diverged run failed after training inside torch's sampler
    ("probability tensor contains either inf, nan or element < 0") and wrote no model."""
    with pytest.warns(UserWarning) as got:
        m = train(rec, tmp_path / "m", nf.NeuroformerConfig(**TINY),
                  TrainingConfig(max_steps=2, eval_every=1, batch_size=16, learning_rate=1e30), progress=False)
    assert math.isnan(m["test/id_nll"]) and m["test/n_spike_tokens"] > 0
    assert m["test/generation"].startswith("not run: the model's test losses are NaN (training diverged")
    assert not any(k in m for k in ("test/id_f1", "test/rate_corr"))
    assert (tmp_path / "m" / "model.safetensors").is_file()
    assert any(str(w.message).startswith("test: the selected model's test losses are NaN") for w in got)


def test_a_diverged_run_without_validation_or_test_split_says_so(rec, tmp_path):
    """Without a validation and a test split, a run whose training loss turned NaN (learning rate 1e30)
    saved its NaN weights with only the "no validation windows" and "no test windows" warnings; it now
    names the first step whose loss was not finite, also when resumed after it. Resumed, it said "lower
    learning_rate" too, which a resume refuses (the checkpoint's optimizer keeps its rate): it now says
    to start afresh."""
    cfg = nf.NeuroformerConfig(**{**TINY, "split_fractions": [1.0, 0.0, 0.0]})
    tc = TrainingConfig(max_steps=3, batch_size=16, learning_rate=1e30, save_every=2)
    losses = []
    with pytest.warns(UserWarning) as got:
        m = train(rec, tmp_path / "m", cfg, tc, progress=False, on_step_end=lambda s, loss: losses.append(loss))
    first = next(i + 1 for i, x in enumerate(losses) if not math.isfinite(x))
    assert first < 3 and m["checkpoint_selection"] == "last step (no validation split)"
    ours = [w for w in got if str(w.message).startswith("training: the training loss was not finite")]
    said = [str(w.message) for w in ours]
    assert len(said) == 1 and f"from step {first} on: training diverged" in said[0], said
    assert "lower learning_rate); the model kept" in said[0] and "afresh" not in said[0], said
    # train's own warning names the caller's line (the output-folder lock, taken by a decorator, wrapped
    # train in another frame, and every stacklevel=2 warning of train named training.py instead)
    assert [w.filename for w in ours] == [__file__]
    # and so do its empty-split warnings and the split plan's (they named training.py and windows.py)
    named = [w for w in got if str(w.message).startswith(("split_fractions: no", "split_block_length:"))]
    for said in ("split_fractions: no validation windows", "split_fractions: no test windows"):
        assert any(str(w.message).startswith(said) for w in named), said
    assert {w.filename for w in named} == {__file__}, [(str(w.message)[:40], w.filename) for w in named]
    # resumed past the checkpoint at step 2: the step comes from the checkpoint
    with pytest.warns(UserWarning) as got:
        train(rec, tmp_path / "m", cfg, dataclasses.replace(tc, max_steps=4), progress=False, resume=True)
    ours = [w for w in got if f"not finite (NaN or inf) from step {first} on" in str(w.message)]
    said = [str(w.message) for w in ours]
    assert len(said) == 1 and ours[0].filename == __file__, [(str(w.message), w.filename) for w in got]
    # the rate cannot change on resume (refused: STATE_TRAINING_FIELDS), so the advice is to start again
    assert ("lower learning_rate and start afresh with --overwrite (overwrite=True) or another --output-dir (a "
            "resumed run keeps its checkpoint's learning rate)); the model kept") in said[0], said


def test_a_finished_diverged_run_is_its_checkpoints_model(rec, tmp_path, capsys):
    """A finished run whose weights are NaN (diverged) was not recognised as its newest checkpoint's
    model (NaN != NaN): resumed at its own max_steps it said "the model ... is not the one of checkpoint
    step-00000002 (a run stopped after its last checkpoint, before writing its model)" and wrote the model
    again; it now has nothing to do, as any finished run."""
    from hf_neuroformer.windows import file_identity

    cfg = nf.NeuroformerConfig(**{**TINY, "split_fractions": [1.0, 0.0, 0.0]})
    tc = TrainingConfig(max_steps=2, batch_size=16, learning_rate=1e30, save_every=2)
    with pytest.warns(UserWarning):
        train(rec, tmp_path / "m", cfg, tc, progress=False)
    before = file_identity(tmp_path / "m" / "model.safetensors")
    capsys.readouterr()
    train(rec, tmp_path / "m", cfg, tc, progress=False, resume=True)
    out = capsys.readouterr().out
    assert "resume: nothing to do" in out and "is not the one of checkpoint" not in out, out
    assert file_identity(tmp_path / "m" / "model.safetensors") == before


def test_generate_test_false_skips_only_the_test_generation(rec, tmp_path):
    """Generating the whole test split after training was most of a short run's time (97 of 198 s of
    an 8-step run on 860 test windows) and could not be turned off. ``training.generate_test: false``
    skips it: no fidelity metrics, no ``test_generation.png``, ``test/generation`` and the model card
    say why; the test losses, baselines and intervals are those of the run that generates."""
    from hf_neuroformer.hub import build_model_card

    cfg = nf.NeuroformerConfig(**TINY)
    yaml_path = tmp_path / "run.yaml"
    yaml_path.write_text("training:\n  max_steps: 2\n  batch_size: 16\n  generate_test: false\n")
    tc = load_yaml_config(yaml_path, training_fields=True)[1]
    assert tc.generate_test is False
    with pytest.raises(ValueError, match=r"training\.generate_test: .*'false'"):
        TrainingConfig(generate_test="false")
    skipped = train(rec, tmp_path / "skip", cfg, tc, progress=False)
    full = train(rec, tmp_path / "full", cfg, dataclasses.replace(tc, generate_test=True), progress=False)
    assert skipped["test/generation"].startswith("not run: training.generate_test is false; run 'neuroformer "
                                                 "generate' and 'neuroformer evaluate'")
    generated = {k for k in full if k not in skipped}
    assert {"test/id_f1", "test/rate_corr", "test/n_generated_spikes", "timing_chance_draws"} <= generated
    assert set(skipped) - set(full) == {"test/generation"}
    assert (tmp_path / "full" / "test_generation.png").is_file()
    assert not (tmp_path / "skip" / "test_generation.png").exists()
    assert (tmp_path / "skip" / "training_curves.png").is_file()
    assert (tmp_path / "skip" / "model.safetensors").is_file()
    timed = {"train_time_s", "total_time_s", "training_stretches"}
    for k in set(skipped) - {"test/generation"} - timed:
        assert skipped[k] == full[k] or (isinstance(skipped[k], float) and math.isnan(skipped[k])
                                         and math.isnan(full[k])), k
    on_disk = json.loads((tmp_path / "skip" / "metrics.json").read_text())
    assert on_disk["test/generation"] == skipped["test/generation"] and "test/id_f1" not in on_disk
    assert json.loads((tmp_path / "skip" / "training_config.json").read_text())["generate_test"] is False
    card = str(build_model_card(tmp_path / "skip", "lab/no-generation", skipped))
    assert "training.generate_test is false" in card and "test_generation.png" in card


def test_train_cli_no_test_generation_sets_generate_test_false(tmp_path, capsys):
    """`neuroformer train --no-test-generation` (on the built-in recording) is training.generate_test false."""
    from hf_neuroformer.cli import main

    out = tmp_path / "run"
    # a tiny model: the default one (hidden_size 128) spent most of the test scoring the validation and test losses
    (tmp_path / "tiny.yaml").write_text("hidden_size: 16\nnum_attention_heads: 2\nintermediate_size: 32\n")
    assert main(["train", "--config", str(tmp_path / "tiny.yaml"), "--output-dir", str(out), "--max-steps", "1",
                 "--batch-size", "8", "--no-test-generation"]) == 0
    printed = capsys.readouterr().out
    assert "not run: training.generate_test is false" in printed, printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test/generation"].startswith("not run: training.generate_test is false")
    assert "test/id_nll" in metrics and "test/id_f1" not in metrics
    assert json.loads((out / "training_config.json").read_text())["generate_test"] is False
    assert not (out / "test_generation.png").exists()


def test_no_test_split_still_saves_the_model(rec, tmp_path):
    cfg = nf.NeuroformerConfig(**{**TINY, "split_fractions": [0.85, 0.15, 0.0]})
    from safetensors.torch import load_file

    got = {}
    with pytest.warns(UserWarning, match="no test"):
        m = train(rec, tmp_path / "m", cfg, TrainingConfig(max_steps=3, batch_size=16), progress=False,
                  on_train_end=_weights(got, "final"))
    # the saved file holds the trained model's weights (a file's existence alone was checked)
    saved = load_file(tmp_path / "m" / "model.safetensors")
    assert set(got["final"]) <= set(saved)
    assert all(torch.equal(saved[k], v) for k, v in got["final"].items())
    assert not any(k.startswith("test/") for k in m)


def test_output_dir_with_a_model_is_refused_before_training(rec, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "splits.json").write_text("{}")
    with pytest.raises(FileExistsError, match="--overwrite"):
        train(rec, tmp_path / "m", nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=1), progress=False)
    assert (tmp_path / "m" / "splits.json").read_text() == "{}"


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model-00001-of-00002.safetensors", "model.safetensors.index.json",
                                  "decoding_report.json"])
def test_a_file_the_save_would_remove_is_refused_without_overwrite(rec, tmp_path, name):
    # the final save removes the weight files of any layout that it does not write (an earlier model's
    # shards) and a decoder's report, but the folder was called empty when it held only such files: a
    # folder holding another model's pytorch_model.bin or shards (no config.json) trained and lost them
    # without --overwrite, after the whole run
    out = tmp_path / "m"
    out.mkdir()
    (out / name).write_text("mine")
    with pytest.raises(FileExistsError, match=re.escape(f"already holds a model ({name})") + ".*--overwrite"):
        train(rec, out, nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=1), progress=False)
    assert (out / name).read_text() == "mine"


def test_overwrite_refuses_a_checkpoints_folder_holding_other_files(rec, tmp_path):
    # --overwrite deleted output_dir/checkpoints whole, so a folder named checkpoints of another tool (a
    # Lightning run's .ckpt files, notes) went with it; only train's and finetune's checkpoints are deleted
    cfg, tc = nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=1, batch_size=16, save_every=1,
                                                           generate_test=False)
    out = tmp_path / "m"
    train(rec, out, cfg, tc, progress=False, write_figures=False)
    assert (out / "checkpoints" / "step-00000001").is_dir()
    (out / "checkpoints" / ".DS_Store").write_bytes(b"finder")  # the folder opened in macOS Finder: not another tool's
    train(rec, out, cfg, tc, progress=False, overwrite=True, write_figures=False)  # its own checkpoints: replaced
    (out / "checkpoints" / "epoch=3-step=900.ckpt").write_bytes(b"lightning")
    # one entry is named in the singular ("holds 'x', which are not checkpoints ... move them out" before)
    with pytest.raises(FileExistsError, match=r"checkpoints.* holds 'epoch=3-step=900.ckpt', which is not a checkpoint "
                                              r"of neuroformer train or finetune; .* with it: move it out"):
        train(rec, out, cfg, tc, progress=False, overwrite=True, write_figures=False)
    assert (out / "checkpoints" / "epoch=3-step=900.ckpt").read_bytes() == b"lightning"
    assert (out / "checkpoints" / "step-00000001" / "trainer_state.json").is_file()
    from hf_neuroformer.finetuning import check_finetune_output_dir  # finetune's (and the command's) check

    with pytest.raises(FileExistsError, match="epoch=3-step=900.ckpt"):
        check_finetune_output_dir(out, overwrite=True)
    assert (out / "checkpoints" / "epoch=3-step=900.ckpt").is_file()
    # a copy a user kept beside the checkpoints is not one of them (resume and save_total_limit pass over it):
    # --overwrite deleted it with them
    (out / "checkpoints" / "epoch=3-step=900.ckpt").unlink()
    copy = out / "checkpoints" / "step-00000001 copy"
    copy.mkdir()
    (copy / "trainer_state.json").write_text("{}")
    (out / "checkpoints" / "notes.txt").write_text("mine")  # and a second entry: the plural
    with pytest.raises(FileExistsError, match=r"checkpoints.* holds 'notes.txt', 'step-00000001 copy', which are not "
                                              r"checkpoints .* with them: move them out"):
        train(rec, out, cfg, tc, progress=False, overwrite=True, write_figures=False)
    assert (copy / "trainer_state.json").is_file() and (out / "checkpoints" / "step-00000001").is_dir()


def test_a_file_named_checkpoints_is_refused_before_training(rec, tmp_path, capsys):
    """A file named checkpoints in the output folder: a run with save_every trained its first
    save_every steps, then failed with a bare "[Errno 17] File exists" (--overwrite: "Not a directory")."""
    from hf_neuroformer.cli import main

    out = tmp_path / "m"
    out.mkdir()
    (out / "checkpoints").write_text("my notes")
    steps = []
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match=r"checkpoints' is a file, not a folder; train writes its resumable"):
            train(rec, out, nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=2, batch_size=16, save_every=1,
                                                                         generate_test=False),
                  progress=False, overwrite=overwrite, on_step_end=lambda s, loss: steps.append(s), write_figures=False)
    # the command says so before reading --data (here a file that does not exist)
    assert main(["train", "--output-dir", str(out), "--save-every", "1", "--data", str(tmp_path / "none.nwb")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert steps == [] and (out / "checkpoints").read_text() == "my notes"
    train(rec, out, nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=1, batch_size=16, generate_test=False),
          progress=False, write_figures=False)


def test_a_checkpoints_link_to_a_missing_folder_is_named_as_one(rec, tmp_path):
    """checkpoints a symbolic link to a folder that is gone (a disk not mounted) was refused as "a file,
    not a folder"; the message now says it is a link to a missing folder, and nothing is trained."""
    out = tmp_path / "m"
    out.mkdir()
    (out / "checkpoints").symlink_to(tmp_path / "unmounted" / "ckpts")
    steps = []
    with pytest.raises(FileExistsError, match=r"checkpoints' is a link to .*unmounted/ckpts', which does not exist"):
        train(rec, out, nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=2, batch_size=16, save_every=1),
              progress=False, on_step_end=lambda s, loss: steps.append(s))
    assert steps == [] and (out / "checkpoints").is_symlink()


def test_overwrite_empties_a_checkpoints_folder_linked_elsewhere(rec, tmp_path):
    """checkpoints a symbolic link to a folder on another disk: --overwrite deleted the old run's checkpoints
    one by one (_discard_checkpoint), then failed with "Cannot call rmtree on a symbolic link", leaving the
    old model without its checkpoints. The linked folder is now emptied and the link kept."""
    out, big = tmp_path / "m", tmp_path / "big"
    out.mkdir()
    big.mkdir()
    (out / "checkpoints").symlink_to(big, target_is_directory=True)
    tc = TrainingConfig(max_steps=2, batch_size=16, save_every=1, generate_test=False)
    train(rec, out, nf.NeuroformerConfig(**TINY), tc, progress=False, write_figures=False)
    assert sorted(p.name for p in big.iterdir()) == ["step-00000001", "step-00000002"]
    (big / ".tmp-step-00000003").mkdir()  # a checkpoint the first run was writing when it stopped
    train(rec, out, nf.NeuroformerConfig(**TINY), dataclasses.replace(tc, max_steps=1), progress=False,
          overwrite=True, write_figures=False)
    assert (out / "checkpoints").is_symlink() and sorted(p.name for p in big.iterdir()) == ["step-00000001"]
    assert json.loads((big / "step-00000001" / "trainer_state.json").read_text())["training"]["max_steps"] == 1


def test_a_prepared_directory_is_never_an_output_dir(rec, tmp_path):
    # 'train --data prepA --output-dir prepB --overwrite' (a slip of the folder name) wrote the model's
    # config.json, vocab.json and splits.json over prepB's: its shards (8 units) then failed to train with
    # 'input_ids: expected ids in [0, 8), got values in [0, 10]'
    from hf_neuroformer.windows import prepare_windows

    other = nf.simulate_coupled_network(n_units=8, duration=20.0, seed=8).recording
    prep = tmp_path / "prepB"
    prepare_windows(other, prep, nf.NeuroformerConfig(**TINY), progress=False)
    before = {name: (prep / name).read_bytes() for name in ("config.json", "vocab.json", "splits.json")}
    for overwrite in (False, True):
        with pytest.raises(FileExistsError, match=r"prepB' is a directory of prepared windows .* --overwrite or not"):
            train(rec, prep, nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=1, batch_size=16), progress=False,
                  overwrite=overwrite)
    assert {name: (prep / name).read_bytes() for name in before} == before


@pytest.fixture(scope="module")
def fp32_and_bf16_runs(rec, tmp_path_factory):
    """``(weights, metrics)`` by mixed_precision ("no", "bf16"): the same seeded 3-step run of TINY
    without dropout in float32 and under bf16 autocast (read by the bf16 and the launcher test)."""
    tmp = tmp_path_factory.mktemp("precision")
    got, m = {}, {}
    for mp in ("no", "bf16"):
        m[mp] = train(rec, tmp / mp, nf.NeuroformerConfig(**TINY, hidden_dropout=0.0),
                      TrainingConfig(max_steps=3, batch_size=16, mixed_precision=mp, generate_test=False), progress=False,
                      on_train_end=_weights(got, mp))
    return got, m


def test_bf16_mixed_precision_trains_on_cpu(fp32_and_bf16_runs):
    # the same seeded run in float32 and under bf16 autocast: close losses, but not the same
    # weights (finite metrics alone also passed when mixed_precision was ignored)
    got, m = fp32_and_bf16_runs
    assert math.isfinite(m["bf16"]["test/id_nll"]) and math.isfinite(m["bf16"]["validation/loss"])
    # metrics.json says which precision the steps ran in (it was only in training_config.json)
    assert [m[mp]["mixed_precision"] for mp in ("no", "bf16")] == ["no", "bf16"]
    assert all(v.dtype == torch.float32 for v in got["bf16"].values())  # autocast: fp32 master weights
    diff = max((got["no"][k] - got["bf16"][k]).abs().max().item() for k in got["no"])
    print(f"max |param fp32 - param bf16| after 3 steps: {diff:.3g}")
    assert diff > 1e-4  # bf16 matmuls round differently
    assert m["bf16"]["validation/loss"] == pytest.approx(m["no"]["validation/loss"], abs=0.05)


def test_bf16_stays_on_after_validation_and_resumes_like_the_uninterrupted_run(rec, tmp_path):
    # validation took accelerate's autocast wrapper off the model for good (unwrap_model with
    # keep_fp32_wrapper=False): a bf16 run trained in float32 after its first validation while
    # metrics.json said bf16, and a resumed run went back to bf16 until its next validation, so its
    # weights differed from the uninterrupted run's
    dtypes = []

    def watch(model):  # the id head's output dtype in every forward, training or validation
        model.id_head.register_forward_hook(lambda mod, inp, out: dtypes.append((mod.training, out.dtype)))

    tc = TrainingConfig(max_steps=4, batch_size=16, mixed_precision="bf16", eval_every=1, save_every=2,
                        generate_test=False)
    train(rec, tmp_path / "full", nf.NeuroformerConfig(**TINY), tc, progress=False, on_train_start=watch,
          on_step_end=lambda step, loss: dtypes.append(("step", step)))
    steps = [d for d in dtypes if d[0] == "step"]
    assert len(steps) == 4
    by_phase = {phase: {d for t, d in dtypes[:dtypes.index(steps[-1])] if t == phase} for phase in (True, False)}
    assert by_phase == {True: {torch.bfloat16}, False: {torch.float32}}, dtypes  # train bf16, validation fp32

    def stop(step, loss):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(rec, tmp_path / "cut", nf.NeuroformerConfig(**TINY), tc, progress=False, on_step_end=stop)
    train(rec, tmp_path / "cut", nf.NeuroformerConfig(**TINY), tc, progress=False, resume=True)
    for name in ("model.safetensors", "training_log.json"):
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name


def test_accelerate_launch_mixed_precision_is_used(rec, fp32_and_bf16_runs, tmp_path, monkeypatch):
    # `accelerate launch --mixed_precision bf16 -m hf_neuroformer.cli train ...` (README, Scaling)
    # sets ACCELERATE_MIXED_PRECISION=bf16; train passed its own "no" to Accelerator, which then
    # ignores the launcher's setting: the run was float32 and training_config.json said "no"
    cfg = {**TINY, "hidden_dropout": 0.0}
    got = {"bf16": fp32_and_bf16_runs[0]["bf16"]}  # the same run with mixed_precision="bf16"
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    train(rec, tmp_path / "launch", nf.NeuroformerConfig(**cfg),
          TrainingConfig(max_steps=3, batch_size=16, generate_test=False), progress=False,
          on_train_end=_weights(got, "launch"))
    assert json.loads((tmp_path / "launch" / "training_config.json").read_text())["mixed_precision"] == "bf16"
    assert all(torch.equal(got["bf16"][k], got["launch"][k]) for k in got["bf16"])
    # the launcher and the training config asking for two different precisions: refused, naming both
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")
    with pytest.raises(ValueError, match=r"training\.mixed_precision \(--mixed-precision\): 'bf16'.*'fp16'.*"
                                         r"ACCELERATE_MIXED_PRECISION"):
        train(rec, tmp_path / "both", nf.NeuroformerConfig(**cfg),
              TrainingConfig(max_steps=1, batch_size=16, mixed_precision="bf16"), progress=False)


def test_yaml_rejects_generic_and_misspelled_keys(tmp_path):
    for text, word in [("hiden_size: 8\n", "hiden_size"), ("vocab_size: 9\n", "vocab_size"),
                       ("training:\n  lr: 0.1\n", "lr")]:
        p = tmp_path / "c.yaml"
        p.write_text(text)
        with pytest.raises(ValueError, match=word):
            load_yaml_config(p)


@pytest.mark.parametrize("field", [None, "config_path"])
def test_every_yaml_config_error_names_the_argument_and_the_file(tmp_path, field):
    """Some errors of load_yaml_config opened with '--config' (a flag the Python caller never gave) and the
    others with the bare path: each now opens with ``field`` (``path``, the argument's name, by default; the
    command line passes '--config') and the file."""
    name = field or "path"
    kw = {} if field is None else {"field": field}
    p = tmp_path / "c.yaml"
    missing = tmp_path / "none.yaml"
    with pytest.raises(FileNotFoundError) as info:
        load_yaml_config(missing, **kw)
    assert str(info.value) == f"{name}: no such file {str(missing)!r}"
    with pytest.raises(FileNotFoundError) as info:
        load_yaml_config(tmp_path, **kw)
    assert str(info.value) == f"{name}: {str(tmp_path)!r} is a folder; expected a YAML file such as configs/default.yaml"
    for text, says in [
        ("hidden_size: [64\n", " is not valid YAML at line 2, column 1: expected ',' or ']', but got '<stream end>'"),
        ("- hidden_size: 16\n- num_attention_heads: 2\n", ": expected a mapping of config fields, got list"),
        ("hidden_sise: 16\n", ": unknown NeuroformerConfig field ['hidden_sise'] (did you mean 'hidden_size' for "
                              "'hidden_sise'?); NeuroformerConfig's docstring lists the fields, and TrainingConfig's "
                              "those of the 'training:' section"),
        ("training: [5]\n", ": training: expected a mapping of training fields (e.g. 'training: {max_steps: 100}'), "
                            "got list [5]"),
        ("training:\n  max_steps: 0\n", " (training: section): training.max_steps: expected an integer >= 1, got 0"),
    ]:
        p.write_text(text)
        with pytest.raises(ValueError) as info:
            load_yaml_config(p, **kw)
        assert str(info.value) == f"{name}: {str(p)!r}{says}", text
    p.write_bytes(b"hidden_size: \xff\xfe\n")
    with pytest.raises(ValueError, match=rf"^{name}: {re.escape(repr(str(p)))} is not a YAML text file \(.*utf-8"):
        load_yaml_config(p, **kw)


def test_yaml_values_of_the_wrong_type_name_their_field(tmp_path):
    # these failed with messages naming no field ("'float' object is not iterable", "could not
    # convert string to float: '.'", "foo" from the model after the data was read), or were taken
    # as text turned into numbers
    for text, message in [
        ("split_fractions: 0.7\n", r"NeuroformerConfig\.split_fractions: expected three fractions"),
        ("split_fractions: '0.7,0.15,0.15'\n", r"NeuroformerConfig\.split_fractions: expected three fractions"),
        ("split_fractions: [0.7, '0.15', 0.15]\n", r"NeuroformerConfig\.split_fractions\[1\]: expected a number"),
        ("hidden_dropout: null\n", r"NeuroformerConfig\.hidden_dropout: expected a number, got None"),
        ("hidden_dropout: '0.1'\n", r"NeuroformerConfig\.hidden_dropout: expected a number, got '0\.1' \(quoted"),
        ("current_window: '0.05'\n", r"NeuroformerConfig\.current_window: expected a number"),
        ("split_block_length: [30]\n", r"NeuroformerConfig\.split_block_length: expected a number"),
        ("hidden_act: foo\n", r"NeuroformerConfig\.hidden_act: expected an activation name .* got 'foo'"),
        ("decoding_targets: foo\n", r"NeuroformerConfig\.decoding_targets: expected None or a list of mappings"),
    ]:
        p = tmp_path / "c.yaml"
        p.write_text(text)
        with pytest.raises(ValueError, match=message):
            load_yaml_config(p)
    p.write_text("hidden_act: relu\nsplit_fractions: [0.8, 0.1, 0.1]\nhidden_dropout: 0\n")
    cfg = load_yaml_config(p)[0]
    assert (cfg.hidden_act, cfg.split_fractions, cfg.hidden_dropout) == ("relu", [0.8, 0.1, 0.1], 0.0)


def test_an_empty_config_file_is_refused_and_only_an_explicit_empty_one_is_the_defaults(tmp_path):
    """An empty (or whitespace-only) config file was read as the default settings without a word, and a
    document of 0 / false as an empty mapping: both refused; '{}' or a file of comments is the defaults."""
    p = tmp_path / "c.yaml"
    for text in ("", "  \n\t\n"):
        p.write_text(text)
        with pytest.raises(ValueError) as info:
            load_yaml_config(p)
        assert str(info.value) == (f"path: {str(p)!r} is empty; expected a YAML file of NeuroformerConfig fields "
                                   "with an optional 'training:' section, such as configs/default.yaml (write '{}' "
                                   "in it to use the default settings)")
    for text, kind in (("0\n", "int"), ("false\n", "bool"), ("''\n", "str")):
        p.write_text(text)
        with pytest.raises(ValueError, match=rf"^path: {re.escape(repr(str(p)))}: expected a mapping of config fields, got {kind}$"):
            load_yaml_config(p)
    for text in ("{}\n", "# every field left at its default\n"):
        p.write_text(text)
        cfg, tc = load_yaml_config(p)
        assert cfg.to_dict() == nf.NeuroformerConfig().to_dict() and tc == TrainingConfig()


def test_yaml_numbers_in_exponent_notation_are_numbers(tmp_path):
    # PyYAML (YAML 1.1) reads 1e-3 and 1.0e5 as strings: 'learning_rate: 3e-4' was refused with
    # "expected a positive number, got '3e-4'", and a JSON config (JSON is YAML) with 1e-05 with
    # "got '1e-05' (quoted in the YAML file? ...)" though nothing was quoted
    p = tmp_path / "c.yaml"
    p.write_text("layer_norm_eps: 1e-6\ncurrent_window: 1.0e-1\ntraining:\n  learning_rate: 3e-4\n"
                 "  weight_decay: 1.0e-2\n  max_steps: 2E3\n")
    cfg, tc = load_yaml_config(p)
    assert (cfg.layer_norm_eps, cfg.current_window) == (1e-6, 0.1)
    assert (tc.learning_rate, tc.weight_decay, tc.max_steps) == (3e-4, 0.01, 2000)
    p.write_text(json.dumps({"layer_norm_eps": 1e-05, "training": {"learning_rate": 5e-05}}))
    cfg, tc = load_yaml_config(p)
    assert (cfg.layer_norm_eps, tc.learning_rate) == (1e-05, 5e-05)
    # a quoted number is still text, refused with the hint; other strings stay strings
    p.write_text("training:\n  learning_rate: '3e-4'\n")
    with pytest.raises(ValueError, match=r"training\.learning_rate: expected a positive number, got '3e-4'"):
        load_yaml_config(p)
    p.write_text("hidden_act: 1e-3x\n")
    with pytest.raises(ValueError, match=r"hidden_act: expected an activation name .* got '1e-3x'"):
        load_yaml_config(p)


def test_yaml_key_given_twice_is_refused_not_the_first_dropped(tmp_path):
    # PyYAML keeps the last value of a repeated key: a second training: section at the end of a
    # config silently dropped the first one's learning_rate and batch_size
    p = tmp_path / "c.yaml"
    p.write_text("hidden_size: 16\ntraining:\n  learning_rate: 0.01\n  batch_size: 8\nnum_attention_heads: 2\n"
                 "training:\n  max_steps: 5\n")
    with pytest.raises(ValueError, match=r"c\.yaml' is not valid YAML at line 6, column 1: key 'training' given twice "
                                         r"\(first at line 2\)"):
        load_yaml_config(p)
    p.write_text("training:\n  max_steps: 5\n  seed: 1\n  max_steps: 7\n")
    with pytest.raises(ValueError, match=r"line 4.*key 'max_steps' given twice \(first at line 2\)"):
        load_yaml_config(p)
    # the same key in different mappings (two modalities) is not a repeat
    p.write_text("modalities:\n  - {name: a, source: 'behaviour:x', kind: continuous}\n"
                 "  - {name: b, source: 'behaviour:y', kind: continuous}\ntraining: {max_steps: 5}\n")
    cfg, tc = load_yaml_config(p)
    assert [m["name"] for m in cfg.modalities] == ["a", "b"] and tc.max_steps == 5


def _weights(store, key):
    return lambda model: store.__setitem__(key, {k: v.detach().clone() for k, v in model.state_dict().items()})


@contextlib.contextmanager
def _training_attention_calls():
    """``[(batch rows, attention implementation)]`` of every training-mode attention call made
    inside the block, observed with a global forward pre-hook (the real modules run unchanged)."""
    from hf_neuroformer.modeling_neuroformer import NeuroformerAttention

    calls = []

    def hook(module, args):
        if isinstance(module, NeuroformerAttention) and module.training:
            calls.append((int(args[0].shape[0]), module.config._attn_implementation))

    handle = torch.nn.modules.module.register_module_forward_pre_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()


def test_gradient_accumulation_is_the_same_update_as_one_large_batch(rec, tmp_path):
    # no dropout and no warm-up: the two runs differ only in how the 16 windows of a step are fed
    cfg = nf.NeuroformerConfig(**{**TINY, "hidden_dropout": 0.0})
    got, calls = {}, {}
    for ga in (1, 4):
        with _training_attention_calls() as calls[ga]:
            train(rec, tmp_path / f"ga{ga}", cfg,
                  TrainingConfig(max_steps=2, batch_size=16, warmup_ratio=0.0, gradient_accumulation_steps=ga,
                                 generate_test=False),
                  progress=False, on_train_end=_weights(got, ga))
    # the accumulated run really fed micro-batches of 4, four times as many (equal weights alone
    # also came out of a run that ignored gradient_accumulation_steps and fed the 16 at once)
    assert {n for n, _ in calls[1]} == {16} and {n for n, _ in calls[4]} == {4}
    assert len(calls[4]) == 4 * len(calls[1]) > 0
    diff = max((got[1][k] - got[4][k]).abs().max().item() for k in got[1])
    print(f"max |param(1 x 16) - param(4 x 4)| after 2 steps: {diff:.3g}")
    assert diff < 1e-5


def test_accumulation_needs_a_batch_that_divides(rec, tmp_path):
    with pytest.raises(ValueError, match="batch_size"):
        train(rec, tmp_path / "m", nf.NeuroformerConfig(**TINY),
              TrainingConfig(max_steps=1, batch_size=10, gradient_accumulation_steps=4), progress=False)


def test_train_cli_refuses_accumulation_that_does_not_divide_the_batch_by_its_flags_before_reading(tmp_path, capsys):
    # `train --gradient-accumulation-steps 3` with the default batch of 32 read the recording and then
    # failed as "training.batch_size: expected a multiple of ...", naming a field the user had not set
    from hf_neuroformer.cli import main

    missing = tmp_path / "not_there.nwb"  # read after the check: its error would come first otherwise
    args = ["train", "--data", str(missing), "--output-dir", str(tmp_path / "run"), "--gradient-accumulation-steps", "3"]
    for extra, said in (([], "--gradient-accumulation-steps: 3 micro-batches do not divide the 32 windows of a step "
                             "(training.batch_size (default))"),
                        (["--batch-size", "16"], "--gradient-accumulation-steps: 3 micro-batches do not divide the 16 "
                                                 "windows of a step (--batch-size)")):
        assert main(args + extra) == 2
        err = capsys.readouterr().err
        assert said in err and "not_there" not in err, err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("training:\n  batch_size: 10\n  gradient_accumulation_steps: 4\n")
    assert main(args[:-2] + ["--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert (f"training.gradient_accumulation_steps (--config {cfg}): 4 micro-batches do not divide the 10 windows of a "
            f"step (training.batch_size (--config {cfg}))") in err and "not_there" not in err, err
    assert not (tmp_path / "run").exists()


def test_resumed_run_ends_like_the_uninterrupted_one(rec, tmp_path, capsys):
    from safetensors.torch import load_file

    tc = TrainingConfig(max_steps=10, batch_size=32, gradient_accumulation_steps=2, eval_every=3, save_every=4,
                        save_total_limit=2, generate_test=False)
    cfg = nf.NeuroformerConfig(**TINY)  # dropout on: the RNG states must be restored too
    got, losses = {}, {"full": [], "cut": []}
    m_full = train(rec, tmp_path / "full", cfg, tc, progress=False, on_train_end=_weights(got, "full"),
                   on_step_end=lambda s, loss: losses["full"].append(loss), write_figures=False)
    assert sorted(p.name for p in (tmp_path / "full" / "checkpoints").iterdir()) == ["step-00000008", "step-00000010"]

    class Interrupted(Exception):
        pass

    def interrupt(step, loss):
        losses["cut"].append(loss)
        if step == 6:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(rec, tmp_path / "cut", cfg, tc, progress=False, on_step_end=interrupt, write_figures=False)
    assert not (tmp_path / "cut" / "model.safetensors").exists()
    with pytest.raises(FileExistsError, match="--resume"):
        train(rec, tmp_path / "cut", cfg, tc, progress=False, write_figures=False)
    del losses["cut"][4:]  # steps 5-6 are redone from the step-4 checkpoint
    # a checkpoint half-written when a run was killed while saving: not resumed from, and removed
    # once a whole one is saved (such folders piled up beside the checkpoints)
    stale = tmp_path / "cut" / "checkpoints" / ".tmp-step-00000005"
    stale.mkdir()
    (stale / "model.safetensors").write_bytes(b"half")
    capsys.readouterr()
    m_cut = train(rec, tmp_path / "cut", cfg, tc, progress=False, resume=True, on_train_end=_weights(got, "cut"),
                  on_step_end=lambda s, loss: losses["cut"].append(loss), write_figures=False)
    # said, not passed over in silence: the steps after the whole checkpoint are trained again
    assert re.search(r"resume: \.tmp-step-00000005 in .* still writing when it stopped \(incomplete, not used.*"
                     r"steps after 4 are trained again", capsys.readouterr().out)
    assert losses["cut"] == pytest.approx(losses["full"], abs=1e-6)
    assert sorted(p.name for p in (tmp_path / "cut" / "checkpoints").iterdir()) == ["step-00000008", "step-00000010"]
    last = [load_file(tmp_path / run / "checkpoints" / "step-00000010" / "model.safetensors") for run in ("full", "cut")]
    diff_last = max((last[0][k] - last[1][k]).abs().max().item() for k in last[0])
    diff_selected = max((got["full"][k] - got["cut"][k]).abs().max().item() for k in got["full"])
    print(f"resumed vs uninterrupted: max |param diff| last step {diff_last:.3g}, selected {diff_selected:.3g}")
    assert diff_last < 1e-6 and diff_selected < 1e-6
    assert m_cut["best_step"] == m_full["best_step"]
    assert m_cut["validation/loss"] == pytest.approx(m_full["validation/loss"], abs=1e-6)
    log = [json.loads((tmp_path / run / "training_log.json").read_text()) for run in ("full", "cut")]
    assert [e["step"] for e in log[1]] == [e["step"] for e in log[0]] == [3, 6, 9, 10]


def test_train_time_is_the_time_of_the_training_steps_summed_over_resumes(rec, tmp_path):
    """metrics.json's train_time_s is "the wall time of the training steps (summed over resumed runs)"
    (README), but it was counted from before the windows were built, so it held the data's preparation,
    again in every resumed run. Here the time before the first step is made 0.2 s longer (in
    on_train_start): the figure of the steps must not contain it."""
    import time

    stamps = {}

    def slow_start(model):  # after the windows and the model are made, before the first step
        time.sleep(0.2)
        stamps["start"] = time.time()

    def stop(step, loss):  # after the step's checkpoint: steps 2 and 3 (the last) are saved
        stamps[step] = time.time()
        if step in (2, 3):
            raise KeyboardInterrupt

    cfg = nf.NeuroformerConfig(**TINY)
    tc = TrainingConfig(max_steps=3, batch_size=16, save_every=2, eval_batch_size=512, generation_batch_size=64)
    with pytest.raises(KeyboardInterrupt):
        train(rec, tmp_path / "m", cfg, tc, progress=False, on_train_start=slow_start, on_step_end=stop)
    def train_time(step):
        state = tmp_path / "m" / "checkpoints" / f"step-{step:08d}" / "trainer_state.json"
        return json.loads(state.read_text())["train_time_s"]

    # the checkpoint is written before on_step_end(2): its steps took less than from the start to there
    assert 0 < train_time(2) <= stamps[2] - stamps["start"], (train_time(2), stamps)
    t0 = time.time()
    with pytest.raises(KeyboardInterrupt):  # its step 3 is saved as metrics.json's figure is taken
        train(rec, tmp_path / "m", cfg, tc, progress=False, resume=True, on_step_end=stop)
    # the resumed run's step 3 after the checkpoint's two: the sum, with only a part of this call
    assert train_time(2) < train_time(3) < train_time(2) + stamps[3] - t0, (train_time(2), train_time(3))


def test_total_time_counts_the_train_call_from_its_start(rec, tmp_path, monkeypatch):
    """metrics.json's total_time_s, "of the whole train call" (README), was counted from after the
    argument checks and the Accelerator's setup. Here that part is made 0.5 s longer (in the launcher
    watch train starts before the Accelerator, the real one called after): the figure must hold it,
    i.e. be at least the time from the call to on_train_end (metrics.json is written after it; no test
    split, so nothing is scored in between)."""
    import time

    import hf_neuroformer.training as training_module

    real_watch = training_module.end_with_launcher

    def slow_watch(*args, **kwargs):  # before the Accelerator is set up
        time.sleep(0.5)
        return real_watch(*args, **kwargs)

    monkeypatch.setattr(training_module, "end_with_launcher", slow_watch)
    stamps = {}
    cfg = nf.NeuroformerConfig(**{**TINY, "split_fractions": [0.85, 0.15, 0.0]})
    t0 = time.time()
    with pytest.warns(UserWarning, match="no test"):
        m = train(rec, tmp_path / "m", cfg, TrainingConfig(max_steps=1, batch_size=16, eval_batch_size=512),
                  progress=False, on_train_end=lambda model: stamps.setdefault("end", time.time()))
    assert stamps["end"] - t0 <= m["total_time_s"] <= time.time() - t0, (m["total_time_s"], stamps["end"] - t0)


def _train_until_interrupted_at_step_2(rec, out, cfg, tc):
    """A run stopped by an exception after step 2 (its step-2 checkpoint written), to resume."""
    def interrupt(step, loss):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(rec, out, cfg, tc, progress=False, on_step_end=interrupt, write_figures=False)


def test_a_batch_size_over_the_train_split_is_warned_of_with_the_steps_it_leaves(rec, tmp_path):
    """batch_size 5000 on a split of 950 training windows made steps of 950 windows, one per epoch,
    so max_epochs capped the run at 12 steps whatever max_steps said, and metrics.json still said
    micro_batch_size 5000: now warned, naming the windows of the split and the cap."""
    cfg = nf.NeuroformerConfig(**TINY)
    tc = TrainingConfig(max_steps=5, max_epochs=2, batch_size=4096, generate_test=False)
    with pytest.warns(UserWarning, match=r"training\.batch_size: 4096 windows per step, but the train split has (\d+) "
                                         r"windows: every step takes all of them .*max_epochs 2 caps the run at 2 steps "
                                         r"\(not max_steps 5\)") as record:
        m = train(rec, tmp_path / "m", cfg, tc, progress=False, write_figures=False)
    found = [re.search(r"train split has (\d+) windows", str(w.message)) for w in record]
    assert int(next(f for f in found if f).group(1)) == m["n_train_windows"] < 4096
    assert m["total_steps"] == 2
    with warnings.catch_warnings():  # a batch the split fills: no such warning
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message="(?!training.batch_size)")
        train(rec, tmp_path / "m2", cfg, dataclasses.replace(tc, batch_size=16, max_steps=1), progress=False,
              write_figures=False)


def test_an_interrupted_run_says_whether_it_can_be_resumed(rec, tmp_path):
    """Ctrl-C (timeout -s INT) printed a bare 'neuroformer train: interrupted': whether the run had
    left a checkpoint to --resume from was left to a look into the folder. The KeyboardInterrupt
    now carries a note (the CLI prints it after 'interrupted') naming the newest checkpoint, or
    saying that there is none."""
    cfg = nf.NeuroformerConfig(**TINY)
    for save_every, expected in ((2, r"checkpoints are kept in .*checkpoints.* \(newest step-00000002\).*--resume "
                                     r"continues"), (None, r"wrote no checkpoint, so there is nothing to --resume")):
        out = tmp_path / f"m{save_every}"
        tc = TrainingConfig(max_steps=4, batch_size=16, save_every=save_every, generate_test=False)

        def interrupt(step, loss):
            if step == 2:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt) as err:
            train(rec, out, cfg, tc, progress=False, on_step_end=interrupt, write_figures=False)
        notes = getattr(err.value, "__notes__", [])
        assert len(notes) == 1 and re.search(expected, notes[0]), notes
        assert (out / "train_unfinished.json").is_file() == (save_every is not None)
    # a finished run extended, stopped before a checkpoint of its own: the one it resumed from is there to resume from
    tc = TrainingConfig(max_steps=2, batch_size=16, save_every=2, generate_test=False)
    train(rec, tmp_path / "f", cfg, tc, progress=False, write_figures=False)

    def interrupt_at_3(step, loss):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt) as err:
        train(rec, tmp_path / "f", cfg, dataclasses.replace(tc, max_steps=4), progress=False, on_step_end=interrupt_at_3,
              write_figures=False, resume=True)
    notes = getattr(err.value, "__notes__", [])
    assert len(notes) == 1 and re.search(r"no checkpoint of its own; step-00000002 in .* is kept.*--resume continues",
                                          notes[0]), notes


def test_resume_on_other_data_is_refused(rec, tmp_path):
    # same units (same vocabulary, same config) but other spikes: resuming used to train the steps
    # after the checkpoint on the other recording and write a model claiming to be trained on it
    other = nf.simulate_coupled_network(n_units=5, duration=40.0, seed=8).recording
    cfg, tc = nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=4, batch_size=16, save_every=2,
                                                           generate_test=False)
    _train_until_interrupted_at_step_2(rec, tmp_path / "m", cfg, tc)
    with pytest.raises(ValueError, match=r"resume: .*step-00000002.* other data .*--data.*spikes_sha256"):
        train(other, tmp_path / "m", cfg, tc, progress=False, resume=True, write_figures=False)
    assert not (tmp_path / "m" / "model.safetensors").exists()


def test_resume_with_other_windows_of_the_same_recording_names_the_config_field(rec, tmp_path):
    """Another current_window (or split_block_length) cuts the same recording into other windows: resuming
    with it was refused as "trained on other data than this run's recording ... resume with the recording
    the run started on", naming no field; the changed config field is now named."""
    cfg, tc = nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=4, batch_size=16, save_every=2,
                                                           generate_test=False)
    _train_until_interrupted_at_step_2(rec, tmp_path / "m", cfg, tc)
    for field, value in (("current_window", 0.2), ("split_block_length", 4.0)):
        with pytest.raises(ValueError, match=rf"resume: .*step-00000002.* written with config\.{field}=.*this run "
                                             rf"has {value}") as err:
            train(rec, tmp_path / "m", nf.NeuroformerConfig(**{**TINY, field: value}), tc, progress=False,
                  resume=True, write_figures=False)
        assert "other data" not in str(err.value)


def test_resume_with_other_windows_of_another_recording_names_the_data_too(rec, tmp_path):
    """With another recording and another current_window, the refusal named the config field alone and
    said to resume with the checkpoint's config: following it, the resume was refused again, for the data.
    Both are named in one message."""
    other = nf.simulate_coupled_network(n_units=5, duration=40.0, seed=8).recording
    cfg, tc = nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=4, batch_size=16, save_every=2,
                                                           generate_test=False)
    _train_until_interrupted_at_step_2(rec, tmp_path / "m", cfg, tc)
    with pytest.raises(ValueError, match=r"written with config\.current_window=0\.1, this run has 0\.2") as err:
        train(other, tmp_path / "m", nf.NeuroformerConfig(**{**TINY, "current_window": 0.2}), tc, progress=False,
              resume=True, write_figures=False)
    assert "spikes_sha256" in str(err.value) and "--data" in str(err.value)
    # the same recording cut into other windows: the config field alone, no word of the spikes
    with pytest.raises(ValueError, match=r"config\.current_window") as err:
        train(rec, tmp_path / "m", nf.NeuroformerConfig(**{**TINY, "current_window": 0.2}), tc, progress=False,
              resume=True, write_figures=False)
    assert "spikes_sha256" not in str(err.value)


def test_resume_with_another_learning_rate_is_refused(rec, tmp_path):
    # the restored optimizer / scheduler keep the checkpoint's learning rate and weight decay: a
    # resumed run with learning_rate 0.05 trained at 1e-3 (the same weights to the bit) while its
    # training_config.json said 0.05
    cfg, tc = nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=4, batch_size=16, save_every=2,
                                                           generate_test=False)
    _train_until_interrupted_at_step_2(rec, tmp_path / "m", cfg, tc)
    for field, value in (("learning_rate", 0.05), ("weight_decay", 0.5)):
        with pytest.raises(ValueError, match=rf"training\.{field}: checkpoint .*step-00000002.* {field}=.*this run has "
                                             rf"{value}.*resume with {field}=.*--overwrite \(overwrite=True\)"):
            # the way out is named for train() callers too, not only as the CLI's --overwrite
            train(rec, tmp_path / "m", cfg, dataclasses.replace(tc, **{field: value}), progress=False, resume=True,
                  write_figures=False)
    assert not (tmp_path / "m" / "model.safetensors").exists()
    # settings the resumed run does use (here the evaluation cadence) are still taken, with a warning
    with pytest.warns(UserWarning, match="eval_every"):
        m = train(rec, tmp_path / "m", cfg, dataclasses.replace(tc, eval_every=1), progress=False, resume=True,
                  write_figures=False)
    assert m["total_steps"] == 4
    assert json.loads((tmp_path / "m" / "training_config.json").read_text())["learning_rate"] == tc.learning_rate


def test_resume_inside_an_epoch_with_another_seed_is_refused(rec, tmp_path):
    # the seed draws each epoch's window order: resumed 2 micro-batches into epoch 0 with another seed, the run
    # skipped the first 2 micro-batches of another order, so some windows of epoch 0 were trained twice and
    # others never (3 of the 32 windows of the first 2 steps again, with seed 1 for 0), with only a warning
    cfg, tc = nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=4, max_epochs=1, batch_size=16, save_every=2,
                                                           generate_test=False)
    _train_until_interrupted_at_step_2(rec, tmp_path / "m", cfg, tc)
    with pytest.raises(ValueError, match=r"training\.seed: checkpoint .*step-00000002.* stopped 2 micro-batches into "
                                         r"epoch 0.*this run has 1.*resume with seed=0"):
        train(rec, tmp_path / "m", cfg, dataclasses.replace(tc, seed=1), progress=False, resume=True,
              write_figures=False)
    assert not (tmp_path / "m" / "model.safetensors").exists()
    assert train(rec, tmp_path / "m", cfg, tc, progress=False, resume=True, write_figures=False)["total_steps"] == 4


def test_resume_without_checkpoint_says_how_to_get_one(rec, tmp_path):
    with pytest.raises(FileNotFoundError, match="save_every"):
        train(rec, tmp_path / "m", nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=1), progress=False,
              resume=True)


def test_checkpoint_settings_this_version_does_not_know_are_named_not_dropped_silently(tmp_path):
    """A trainer_state.json written by another version of the package, with a training setting
    TrainingConfig lacks: ``neuroformer train --resume`` went on without it, without a word."""
    from hf_neuroformer.training import checkpoint_training_config

    step = tmp_path / "m" / "checkpoints" / "step-00000002"
    step.mkdir(parents=True)
    stored = dict(dataclasses.asdict(TrainingConfig(max_steps=300)), label_smoothing=0.1)
    (step / "trainer_state.json").write_text(json.dumps({"step": 2, "training": stored}))
    with pytest.warns(UserWarning, match=r"does not know \(stored values\): \{'label_smoothing': 0\.1\}; "
                      "the run continues without them") as caught:
        got = checkpoint_training_config(tmp_path / "m")
    assert [w.filename for w in caught] == [__file__]  # points at the caller
    assert got == TrainingConfig(max_steps=300)


def test_checkpoint_whose_training_settings_are_not_an_object_is_named_damaged(rec, finished_run, tmp_path):
    """A real step-2 checkpoint whose trainer_state.json holds a "training" that is not a JSON
    object (a list, a string: edited, or written by something else): checkpoint_training_config
    ('neuroformer train --resume' reads it first) failed with a bare "'list' object has no attribute
    'items'", and an empty list was read as no settings at all. Each is now refused naming the
    file, the key and what was expected, as is a missing key and a stored setting TrainingConfig
    refuses; check_resume and train(resume=True) say the same."""
    import shutil

    from hf_neuroformer.training import check_resume, checkpoint_training_config

    out = tmp_path / "m"
    shutil.copytree(finished_run, out)
    path = out / "checkpoints" / "step-00000002" / "trainer_state.json"
    good = json.loads(path.read_text())
    assert checkpoint_training_config(out) == TrainingConfig(max_steps=2, batch_size=16, save_every=2)
    tc = TrainingConfig(max_steps=3, batch_size=16, save_every=2)
    where = re.escape(f"resume: {str(path)!r} is damaged: its \"training\" is ")
    after = re.escape(", expected a JSON object of the run's training settings (name -> value); there is no older "
                      "checkpoint to resume from, or start afresh with --overwrite")
    for value, got in [([], 'a JSON array ([])'), (["max_steps", 2], 'a JSON array (["max_steps", 2])'),
                       ("max_steps=2", 'a JSON string ("max_steps=2")'), (None, "a JSON null (null)"), (..., "missing")]:
        state = {k: v for k, v in good.items() if k != "training"}
        if value is not ...:
            state["training"] = value
        path.write_text(json.dumps(state))
        for call in (lambda: checkpoint_training_config(out), lambda: check_resume(out, tc),
                     lambda: train(rec, out, nf.NeuroformerConfig(**TINY), tc, progress=False, resume=True)):
            with pytest.raises(ValueError, match=where + re.escape(got) + after):
                call()
    path.write_text(json.dumps({**good, "training": {**good["training"], "max_steps": "300"}}))
    with pytest.raises(ValueError, match=re.escape(f"resume: {str(path)!r} is damaged: its \"training\" holds a "
                                                   "setting this version refuses (training.max_steps: expected an "
                                                   "integer >= 1, got '300')")):
        checkpoint_training_config(out)
    path.write_text(json.dumps(good))  # and the checkpoint as written reads back
    assert checkpoint_training_config(out).max_steps == 2


def test_a_checkpoint_with_a_damaged_run_record_is_refused_naming_the_file_and_the_key(rec, finished_run, tmp_path,
                                                                                       capsys):
    """A real step-2 checkpoint whose trainer_state.json run record is damaged (edited, or written by
    something else): a resumed run read it with bare state[key], so a missing "epoch" or a "log" that is
    no list came out as a KeyError / TypeError naming no file, and "training_stretches" holding a number
    or a string "to_step" only when the resumed run ended, after its last step. check_resume,
    train(resume=True) and 'neuroformer train --resume' now refuse each before anything is trained or
    written, naming the file, the key, what it holds and what to do."""
    import shutil

    from hf_neuroformer.cli import main
    from hf_neuroformer.training import check_resume

    out = tmp_path / "m"
    shutil.copytree(finished_run, out)
    path = out / "checkpoints" / "step-00000002" / "trainer_state.json"
    good = json.loads(path.read_text())
    stretch, = good["training_stretches"]
    assert (stretch["from_step"], stretch["to_step"], good["step"]) == (1, 2, 2)
    old, ckpt = _files(out), _files(path.parent)
    tc = TrainingConfig(max_steps=3, batch_size=16, save_every=2)
    todo = ("; fix the file (there is no older checkpoint to resume from), or start afresh with --overwrite "
            "(overwrite=True) or another --output-dir, without --resume (resume=False)")
    cases = [
        ({"training_stretches": "1-2"}, '"training_stretches" is a JSON string ("1-2"), expected a JSON array of the '
                                       "stretches of steps the run trained (objects)"),
        ({"training_stretches": [5]}, '"training_stretches"[0] is a JSON number (5), expected a JSON object '
                                      "(from_step, to_step, mixed_precision, ...)"),
        ({"training_stretches": [{**stretch, "to_step": "2"}]},
         '"training_stretches"[0]["to_step"] is a JSON string ("2"), expected a whole number >= 1'),
        ({"training_stretches": [{k: v for k, v in stretch.items() if k != "mixed_precision"}]},
         '"training_stretches"[0]["mixed_precision"] is missing, expected a JSON string (no, bf16 or fp16)'),
        ({"training_stretches": [{**stretch, "to_step": 1}]},
         '"training_stretches" cover steps 1-1, expected stretches one after another from step 1 to the '
         "checkpoint's step 2"),
        ({"training_stretches": [{**stretch, "to_step": 1}, {**stretch, "from_step": 3, "to_step": 2}]},
         '"training_stretches" cover steps 1-1, 3-2, expected'),
        ({"epoch": ...}, '"epoch" is missing, expected a whole number >= 0'),
        ({"log": {"step": 2}}, '"log" is a JSON object ({"step": 2}), expected a JSON array of the training log\'s '
                               'entries, each an object with a whole "step" >= 1'),
        ({"best_step": True}, '"best_step" is a JSON boolean (true), expected a whole number >= 0'),
        ({"train_time_s": -1.0}, '"train_time_s" is a JSON number (-1.0), expected a number of seconds >= 0'),
        ({"fingerprint": None}, '"fingerprint" is a JSON null (null), expected a JSON object'),
    ]
    for change, says in cases:
        state = {k: v for k, v in {**good, **change}.items() if v is not ...}
        path.write_text(json.dumps(state))
        expected = re.escape(f"resume: {str(path)!r} is damaged: its {says}") + ".*" + re.escape(todo) + "$"
        for call in (lambda: check_resume(out, tc),
                     lambda: train(rec, out, nf.NeuroformerConfig(**TINY), tc, progress=False, resume=True)):
            with pytest.raises(ValueError, match=expected):
                call()
    # the command line: the same, with the flags alone
    assert main(["train", "--resume", "--output-dir", str(out), "--max-steps", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (f"neuroformer train: error: --resume: {str(path)!r} is damaged: its {cases[-1][1]} (the run's model "
                   "config, data and launch); fix the file (there is no older checkpoint to resume from), or start "
                   "afresh with --overwrite or another --output-dir, without --resume"), err
    # nothing written: the model folder as it was, the checkpoint's other files too
    assert _files(out) == old and sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000002"]
    assert _files(path.parent) == {**ckpt, "trainer_state.json": path.read_bytes()}
    # null or no stretches (a checkpoint written before they were kept), null losses: not damage
    for change in ({"training_stretches": None}, {"training_stretches": ...}, {"best_validation_loss": None,
                                                                                "first_nonfinite_step": None}):
        path.write_text(json.dumps({k: v for k, v in {**good, **change}.items() if v is not ...}))
        assert check_resume(out, tc) is None


def test_train_resume_names_checkpoint_settings_this_version_does_not_know_at_its_caller(rec, tmp_path):
    """train(resume=True) compared the checkpoint's stored training settings with this run's
    TrainingConfig fields only: one it does not know (a checkpoint of another version of the
    package) was dropped without a word, where 'neuroformer train --resume' warned of it. A real
    step-2 checkpoint, its trainer_state.json given such a setting: named once, at the caller."""
    cfg, tc = nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=3, batch_size=16, save_every=2,
                                                           generate_test=False)
    _train_until_interrupted_at_step_2(rec, tmp_path / "m", cfg, tc)
    path = tmp_path / "m" / "checkpoints" / "step-00000002" / "trainer_state.json"
    state = json.loads(path.read_text())
    state["training"]["label_smoothing"] = 0.1
    path.write_text(json.dumps(state))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = train(rec, tmp_path / "m", cfg, tc, progress=False, resume=True, write_figures=False)
    ours = [w for w in caught if "does not know" in str(w.message)]
    assert [str(w.message) for w in ours] == [
        f"resume: {str(path)!r} holds training settings this version of hf_neuroformer does not know (stored values): "
        "{'label_smoothing': 0.1}; the run continues without them"], [str(w.message)[:80] for w in caught]
    assert [w.filename for w in ours] == [__file__]  # the line that called train, not training.py
    assert m["total_steps"] == 3  # and the run went on


def test_train_warns_of_blocks_shorter_than_a_window_at_its_caller(rec, tmp_path):
    """ci_block_s=0.2 in a time split of windows reading 0.4 s (TINY): the bootstrap blocks share
    spikes. The warning pointed at training.py (a fixed stacklevel), not at train's caller."""
    with pytest.warns(UserWarning, match=r"ci_block_s=0.2: the bootstrap blocks are shorter") as caught:
        train(rec, tmp_path / "m", nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=1, generate_test=False),
              progress=False, write_figures=False, ci_block_s=0.2)
    said = [w.filename for w in caught if "bootstrap blocks are shorter" in str(w.message)]
    assert said == [__file__]


def test_resume_of_a_run_stopped_before_its_first_checkpoint_says_so(rec, tmp_path):
    """A run with save_every, stopped before its first checkpoint, was told on --resume that
    "checkpoints are written when training.save_every (--save-every) is set", which it was."""
    cfg, tc = nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=4, batch_size=16, save_every=3,
                                                           generate_test=False)

    def stop(step, loss):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(rec, tmp_path / "m", cfg, tc, progress=False, on_step_end=stop, write_figures=False)
    with pytest.raises(FileNotFoundError) as err:
        train(rec, tmp_path / "m", cfg, tc, progress=False, resume=True, write_figures=False)
    assert "nothing to resume from: with training.save_every (--save-every) 3 a run writes its first one at step 3" \
        in str(err.value) and "without --resume" in str(err.value)
    # started again: no refusal
    train(rec, tmp_path / "m", cfg, dataclasses.replace(tc, max_steps=1), progress=False, write_figures=False)


def test_cli_resume_without_flags_of_a_run_stopped_before_its_first_checkpoint_says_so(rec, tmp_path, capsys):
    """`neuroformer train --resume` (no --save-every: a resumed run keeps its settings) of a run started with
    --save-every and stopped before its first checkpoint still got "checkpoints are written when
    training.save_every (--save-every) is set": without a checkpoint the run's settings are unknown, so
    check_resume's message for it was skipped. It now says that a run stopped before its first checkpoint has
    nothing to resume from and starts again without --resume."""
    from hf_neuroformer.cli import main

    def stop(step, loss):
        if step == 2:
            raise KeyboardInterrupt

    out = tmp_path / "m"
    with pytest.raises(KeyboardInterrupt):
        train(rec, out, nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=4, batch_size=16, save_every=3),
              progress=False, on_step_end=stop)
    assert main(["train", "--output-dir", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "nothing to resume from" in err and "without --resume" in err, err


def test_a_seed_numpy_cannot_take_is_refused_by_name_before_the_recording_is_read(tmp_path, capsys):
    # Accelerate's set_seed seeds numpy's legacy generator: `train --seed 4294967296` (or training.seed in
    # a --config) read the recording and then failed with numpy's bare "Seed must be between 0 and
    # 2**32 - 1", naming no flag or field
    from hf_neuroformer.cli import main

    assert TrainingConfig(seed=2**32 - 1).seed == 2**32 - 1
    with pytest.raises(ValueError, match=r"training\.seed: expected an integer in \[0, 4294967295\].*got 4294967296"):
        TrainingConfig(seed=2**32)
    missing = tmp_path / "not_there.nwb"  # read after the seed is checked: its error would come first otherwise
    args = ["train", "--data", str(missing), "--output-dir", str(tmp_path / "run")]
    assert main(args + ["--seed", str(2**32)]) == 2
    err = capsys.readouterr().err
    assert "--seed: expected an integer in [0, 4294967295]" in err and "got 4294967296" in err, err
    assert "not_there" not in err
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"training:\n  seed: {2**40}\n")
    assert main(args + ["--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "training.seed: expected an integer in [0, 4294967295]" in err and "not_there" not in err, err
    assert not (tmp_path / "run").exists()


def test_fp16_on_cpu_is_refused_not_silently_fp32(rec, tmp_path):
    with pytest.raises(ValueError, match="bf16"):
        train(rec, tmp_path / "m", nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=1, mixed_precision="fp16"),
              progress=False)


def test_attention_implementation_choice(rec, tmp_path):
    with pytest.raises(ValueError, match="attn_implementation"):
        TrainingConfig(attn_implementation="flash")
    with pytest.raises((ImportError, ValueError), match="flash"):
        train(rec, tmp_path / "fa", nf.NeuroformerConfig(**TINY),
              TrainingConfig(max_steps=1, attn_implementation="flash_attention_2"), progress=False)
    got, calls = {}, {}
    for impl in ("sdpa", "eager"):
        with _training_attention_calls() as calls[impl]:
            train(rec, tmp_path / impl, nf.NeuroformerConfig(**{**TINY, "hidden_dropout": 0.0}),
                  TrainingConfig(max_steps=2, batch_size=16, attn_implementation=impl, generate_test=False),
                  progress=False, on_train_end=_weights(got, impl), write_figures=False)
        # the asked implementation reached every attention call of the training steps (equal
        # weights alone also came out of two runs that both ignored the setting)
        assert calls[impl] and {a for _, a in calls[impl]} == {impl}, (impl, {a for _, a in calls[impl]})
    assert max((got["sdpa"][k] - got["eager"][k]).abs().max().item() for k in got["sdpa"]) < 1e-5


def test_output_settings_in_the_config_neither_change_training_nor_fail_its_save(rec, tmp_path):
    """A config with output_attentions / output_hidden_states True and return_dict False (forward
    reads them since c16b07b) trains to the same weights as the plain one; the run failed at its
    final save, transformers refusing output_attentions=True with sdpa (StrictDataclass
    validate_output_attentions), after the whole training."""
    got = {}
    train(rec, tmp_path / "plain", nf.NeuroformerConfig(**{**TINY, "hidden_dropout": 0.0}),
          TrainingConfig(max_steps=2, batch_size=16, generate_test=False), progress=False,
          on_train_end=_weights(got, "plain"), write_figures=False)
    asks = nf.NeuroformerConfig(**{**TINY, "hidden_dropout": 0.0}, output_attentions=True, output_hidden_states=True,
                                return_dict=False)
    with pytest.warns(UserWarning, match="config.output_attentions=True is dropped"):
        train(rec, tmp_path / "asks", asks, TrainingConfig(max_steps=2, batch_size=16, generate_test=False),
              progress=False, on_train_end=_weights(got, "asks"), write_figures=False)
    assert max((got["plain"][k] - got["asks"][k]).abs().max().item() for k in got["plain"]) == 0.0
    saved = json.loads((tmp_path / "asks" / "config.json").read_text())
    assert not saved.get("output_attentions", False) and saved.get("return_dict", True) is False, saved


def test_activation_checkpointing_recomputes_layers_and_keeps_gradients(rec):
    from hf_neuroformer.windows import NeuroformerCollator, build_window_datasets

    cfg = nf.NeuroformerConfig(**TINY)
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(rec)
    cfg.vocab_size = len(tok)
    dsets, _ = build_window_datasets(rec, tok, cfg)
    batch = NeuroformerCollator()([dsets["train"][i] for i in range(8)])
    grads, calls = {}, {}
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = nf.NeuroformerForPreTraining(cfg).train()
        if checkpointing:
            model.activation_checkpointing_enable()
        n = [0]
        for layer in [*model.neuroformer.layers, *model.neuroformer.past_layers]:
            layer.self_attn.register_forward_hook(lambda *a: n.__setitem__(0, n[0] + 1))
        torch.manual_seed(1)  # same dropout masks: the recomputation replays the saved RNG state
        model(**batch).loss.backward()
        grads[checkpointing] = {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}
        calls[checkpointing] = n[0]
    assert calls[True] == 2 * calls[False]  # every layer ran again in the backward pass
    assert max((grads[True][k] - grads[False][k]).abs().max().item() for k in grads[False]) < 1e-6


def test_training_config_checks_bool_int_and_float_fields(tmp_path):
    """``torch_compile: "false"`` switched compilation on, ``max_steps: 3.7`` ran 3 steps."""
    for name in ("torch_compile", "activation_checkpointing"):
        for bad in ("false", "no", 0):
            with pytest.raises(ValueError, match=rf"training\.{name}: expected true or false, got"):
                TrainingConfig(**{name: bad})
    for name in ("max_steps", "batch_size", "max_epochs", "eval_batch_size", "generation_batch_size",
                 "gradient_accumulation_steps", "save_total_limit", "shuffle_buffer_size", "eval_every", "save_every"):
        with pytest.raises(ValueError, match=rf"training\.{name}: expected an integer >= 1.*, got 3.7"):
            TrainingConfig(**{name: 3.7})
        with pytest.raises(ValueError, match=rf"training\.{name}: expected an integer"):
            TrainingConfig(**{name: True})
    tc = TrainingConfig(max_steps=30.0, seed=np.int64(2))
    assert (tc.max_steps, tc.seed) == (30, 2) and type(tc.max_steps) is int and type(tc.seed) is int
    for name in ("learning_rate", "weight_decay", "max_grad_norm", "warmup_ratio", "generation_temperature",
                 "generation_top_p"):
        with pytest.raises(ValueError, match=rf"training\.{name}: expected"):
            TrainingConfig(**{name: float("nan")})
    # the YAML spellings: unquoted `no` is YAML 1.1 False, taken as "no"; quoted "false" is refused
    p = tmp_path / "c.yaml"
    p.write_text("training:\n  mixed_precision: no\n  max_steps: 5\n")
    assert load_yaml_config(p)[1].mixed_precision == "no"
    p.write_text("dt_conditioned_on_unit: \"no\"\n")
    with pytest.raises(ValueError, match=r"NeuroformerConfig\.dt_conditioned_on_unit: expected true or false, got 'no'"):
        load_yaml_config(p)
    p.write_text("training:\n  torch_compile: \"false\"\n")
    with pytest.raises(ValueError, match=r"training\.torch_compile: expected true or false, got 'false'"):
        load_yaml_config(p)
    p.write_text("training:\n  max_steps: 3.7\n")
    with pytest.raises(ValueError, match=r"training\.max_steps: expected an integer >= 1, got 3.7"):
        load_yaml_config(p)


def test_train_and_finetune_refuse_flags_that_are_not_bools_before_reading_anything(rec, tmp_path):
    """Break test: train(write_figures="False") drew the figures (the text is truthy), resume="no" resumed;
    finetune's from_scratch, keep_checkpoints, ... the same. Each flag is refused by name unless a bool,
    before the recording (here a path never read) or the output folder is touched."""
    from hf_neuroformer.decoding import DecodingTarget
    from hf_neuroformer.finetuning import finetune

    out = tmp_path / "out"
    for name in ("overwrite", "progress", "resume", "write_figures"):
        for bad in ("False", "no", 0, None):
            with pytest.raises(ValueError, match=rf"^train\.{name}: expected true or false, got {re.escape(repr(bad))}"):
                train(tmp_path / "never_read", out, **{name: bad})
    for name in ("from_scratch", "overwrite", "keep_checkpoints", "progress", "log_evaluations", "step_bar"):
        for bad in ("False", 1):
            with pytest.raises(ValueError, match=rf"^finetune\.{name}: expected true or false, got {re.escape(repr(bad))}"):
                finetune(None, rec, [DecodingTarget("wave", "regression")], output_dir=out, **{name: bad})
    assert not out.exists()


def test_progress_false_prints_no_transformers_bars(rec, tmp_path, capfd):
    """progress=False means quiet: transformers' own "Writing model shards" (save_pretrained) and
    "Loading weights" (from_pretrained) bars printed anyway (README walk)."""
    from hf_neuroformer.decoding import DecodingTarget
    from hf_neuroformer.finetuning import finetune
    from transformers.utils import logging as hf_logging

    import dataclasses

    # the simulated recording has no behaviour: decode a slow wave as a regression target
    t = np.arange(0.0, 40.0, 0.05)
    with_behaviour = dataclasses.replace(rec, behaviour={"wave": nf.BehaviourSeries(t, np.sin(t / 3.0))})
    capfd.readouterr()
    train(with_behaviour, tmp_path / "m", nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=2, batch_size=8),
          progress=False)
    finetune(tmp_path / "m", with_behaviour, [DecodingTarget("wave", "regression")], output_dir=tmp_path / "d",
             max_steps=2, progress=False)
    err = capfd.readouterr().err
    assert "Writing model shards" not in err and "Loading weights" not in err, err[-2000:]
    assert (tmp_path / "d" / "model.safetensors").is_file()
    assert hf_logging.is_progress_bar_enabled()  # the process-wide switch is restored


@pytest.fixture(scope="module")
def finished_run(rec, tmp_path_factory):
    """A finished 2-step run with its step-2 checkpoint (``save_every=2``); tests copy it."""
    out = tmp_path_factory.mktemp("finished") / "m"
    train(rec, out, nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=2, batch_size=16, save_every=2),
          progress=False)
    return out


def test_test_nll_intervals_in_metrics_json_and_too_few_blocks(finished_run, capsys):
    """metrics.json gains the intervals' keys without changing the others; the 40-s recording's test
    split is a single 10-s block, so no interval is given and the reason is written and printed.
    The reason says how to get one (shorter blocks, the length that gives 5 of them) in the words
    of the Python call that trained it (ci_block_s=, no CLI flag), and the block length is recorded."""
    from hf_neuroformer.cli import _print_metrics

    m = json.loads((finished_run / "metrics.json").read_text())
    assert np.isfinite(m["test/id_nll"]) and np.isfinite(m["test/dt_nll"])
    assert m["test/ci95_n_blocks"] == 1 and "10 s of window starts" in m["test/ci95_blocks"]
    assert "'BCa'" in m["test/ci95_method"] and "2000 resamples" in m["test/ci95_method"]
    assert m["test/ci95_block_s"] == 10.0
    for key in ("test/id_nll", "test/dt_nll"):
        assert m[f"{key}_ci95"] is None
        reason = m[f"{key}_ci95_reason"]
        assert reason.startswith("1 block, fewer than 5: too few independent pieces for a bootstrap interval; "
                                 "shorter blocks give an interval: e.g. ci_block_s=1 (the windows fill 5 blocks of 1 s")
        assert "--ci-block-s" not in reason
    _print_metrics(m)
    lines = capsys.readouterr().out.splitlines()
    line = next(x for x in lines if x.strip().startswith("test/id_nll "))
    assert f"{m['test/id_nll']:.4f}  95% CI: none (1 block, fewer than 5" in line
    # the same ~260-character reason on test/dt_nll's line was printed in full twice; it refers back
    line = next(x for x in lines if x.strip().startswith("test/dt_nll "))
    assert line.endswith(f"{m['test/dt_nll']:.4f}  95% CI: none (as for test/id_nll)"), line


def test_test_nll_intervals_from_the_trained_model_hold_the_point_values(finished_run, rec):
    """The same pass that gives test/id_nll and test/dt_nll gives each window's sums; with 1-s blocks
    the 40-s recording's test split has enough blocks, and each interval holds its point value."""
    from hf_neuroformer.training import evaluate_token_nll, split_nll_intervals
    from hf_neuroformer.windows import NeuroformerCollator, SplitPlan, build_window_datasets

    m = json.loads((finished_run / "metrics.json").read_text())
    model = nf.NeuroformerForPreTraining.from_pretrained(finished_run)
    tok = nf.NeuroformerTokenizer.from_pretrained(finished_run)
    plan = SplitPlan.from_dict(json.loads((finished_run / "splits.json").read_text()))
    dsets, plan = build_window_datasets(rec, tok, model.config, plan)
    cfg = model.config
    out = evaluate_token_nll(model, dsets["test"], NeuroformerCollator(cfg.pad_token_id, cfg.bos_token_id,
                                                                       cfg.eos_token_id), per_window=True)
    w = out["windows"]
    assert out["id_nll"] == pytest.approx(m["test/id_nll"], rel=1e-6)
    assert out["id_nll"] == pytest.approx(w["id_nll_sum"].sum() / w["n_spike_tokens"].sum(), rel=1e-6)
    assert w["n_spike_tokens"].sum() == m["test/n_spike_tokens"] and len(w["window_start"]) == m["n_test_windows"]
    ci = split_nll_intervals(w, plan, ci_block_s=1.0)
    assert ci["test/ci95_n_blocks"] >= 5 and ci["test/ci95_block_s"] == 1.0
    for key in ("test/id_nll", "test/dt_nll"):
        lo, hi = ci[f"{key}_ci95"]
        assert lo < out[key.split("/")[1]] < hi, key
    assert split_nll_intervals(w, plan)["test/id_nll_ci95"] is None  # the default 10-s blocks: 1 block
    cli = split_nll_intervals(w, plan, ci_block_s_option="--ci-block-s")["test/id_nll_ci95_reason"]
    assert "e.g. --ci-block-s 1 (" in cli and "ci_block_s=" not in cli  # the CLI's wording, when it passes it


def test_train_refuses_a_bad_ci_block_s_before_writing_anything(rec, tmp_path):
    """train(ci_block_s=) must be a finite number of seconds > 0; a bad one is refused naming the
    argument, before the output folder is made (not after training, when the intervals are made)."""
    from hf_neuroformer.metrics.bootstrap import BootstrapInputError

    for bad in (0, -2.0, float("nan")):
        with pytest.raises(BootstrapInputError, match=r"^ci_block_s: expected a finite number of seconds > 0"):
            train(rec, tmp_path / "m", nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=1, batch_size=16),
                  progress=False, ci_block_s=bad)
        assert not (tmp_path / "m").exists()


def _files(folder):
    """name -> bytes of the files directly in ``folder``."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_resume_with_nothing_to_do_still_compares_the_config(rec, finished_run, tmp_path, capsys):
    """Break test: a finished run resumed at its own max_steps with another model config said "nothing
    to do" without comparing the config (a resume that trains on refuses it, naming the field): the
    config is now compared first, and the same config still has nothing to do."""
    import shutil

    out = tmp_path / "m"
    shutil.copytree(finished_run, out)
    old = _files(out)
    tc = TrainingConfig(max_steps=2, batch_size=16, save_every=2)
    with pytest.raises(ValueError, match=r"^resume: checkpoint .*step-00000002' was written with config.hidden_size=16, "
                                         r"this run has 32 \(all differences, checkpoint vs now: \{'hidden_size': "
                                         r"\(16, 32\)\}\); resume with the model config of the checkpoint"):
        train(rec, out, nf.NeuroformerConfig(**{**TINY, "hidden_size": 32}), tc, progress=False, resume=True)
    assert "nothing to do" not in capsys.readouterr().out and _files(out) == old
    train(rec, out, nf.NeuroformerConfig(**TINY), tc, progress=False, resume=True)
    assert "nothing to do" in capsys.readouterr().out and _files(out) == old


def test_a_resume_warning_under_torchrun_is_given_by_the_main_rank_alone(rec, finished_run, tmp_path, monkeypatch):
    """Every rank of a torchrun launch resumes the same checkpoint with the same settings, so the
    resume warnings ("training settings differ", a contrastive objective that changed) came once per
    process to a ``train()`` caller (only the CLI filtered its warnings to rank 0). Rank 0 gives
    them (test_resume_with_another_learning_rate_is_refused: its eval_every warning); another
    rank (``RANK`` as torchrun sets it) trains on and says nothing."""
    import shutil
    import warnings

    out = tmp_path / "m"
    shutil.copytree(finished_run, out)
    monkeypatch.setenv("RANK", "1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = train(rec, out, nf.NeuroformerConfig(**TINY),
                  TrainingConfig(max_steps=3, batch_size=16, save_every=2, eval_every=1), progress=False, resume=True)
    assert m["total_steps"] == 3
    said = [str(w.message) for w in caught if str(w.message).startswith("resume:")]
    assert said == [], said


def test_run_warnings_under_torchrun_are_given_by_the_main_rank_alone(rec, tmp_path, monkeypatch):
    """The dropped output_attentions, a split without validation windows and a training loss that
    was not finite are the same on every rank (the config, the splits, step losses summed over the
    ranks), yet a ``train()`` caller got each once per process under torchrun. Another rank than 0
    (``RANK`` as torchrun sets it) now trains and says none of them; rank 0's are checked by
    test_output_settings_in_the_config_neither_change_training_nor_fail_its_save and
    test_a_diverged_run_without_validation_or_test_split_says_so."""
    import warnings

    cfg = nf.NeuroformerConfig(**{**TINY, "split_fractions": [1.0, 0.0, 0.0]}, output_attentions=True)
    monkeypatch.setenv("RANK", "1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = train(rec, tmp_path / "m", cfg, TrainingConfig(max_steps=2, batch_size=16, learning_rate=1e30),
                  progress=False)
    assert m["checkpoint_selection"] == "last step (no validation split)"
    said = [str(w.message) for w in caught if str(w.message).startswith(
        ("config.output_attentions=True is dropped", "split_fractions: no validation windows",
         "training: the training loss was not finite"))]
    assert said == [], said


def test_finished_run_is_extended_by_resume_with_more_steps(rec, finished_run, tmp_path, capsys):
    # a run trained 2 steps, resumed with max_steps=4: refused before ("already holds a model"),
    # and --overwrite deleted its checkpoints
    import shutil

    out = tmp_path / "m"
    shutil.copytree(finished_run, out)
    # its checkpoint as one written before training_stretches was kept: its steps ran with its settings
    state_file = out / "checkpoints" / "step-00000002" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    del state["training_stretches"]
    state_file.write_text(json.dumps(state))
    old = _files(out)
    cfg, tc = nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=2, batch_size=16, save_every=2)
    # at its own max_steps: nothing to do, said so, the model untouched, its metrics returned
    m = train(rec, out, cfg, tc, progress=False, resume=True)
    assert "nothing to do" in capsys.readouterr().out
    assert _files(out) == old and m == json.loads(old["metrics.json"])
    # a longer run that fails midway: the old model stays, whole
    def interrupt(step, loss):
        if step == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(rec, out, cfg, dataclasses.replace(tc, max_steps=4), progress=False, resume=True, on_step_end=interrupt)
    assert _files(out) == old
    steps = []
    # in another precision (a setting a resume may change: warned, used)
    with pytest.warns(UserWarning, match="mixed_precision"):
        m = train(rec, out, cfg, dataclasses.replace(tc, max_steps=4, mixed_precision="bf16"), progress=False,
                  resume=True, on_step_end=lambda s, loss: steps.append(s))
    assert steps == [3, 4] and m["total_steps"] == 4  # continued from the step-2 checkpoint
    # metrics.json said "bf16" alone, though steps 1-2 ran in float32: each stretch is recorded with its
    # settings, in the checkpoint too (a further resume carries them on)
    same = {"torch_compile": False, "torch_compile_backend": "inductor", "attn_implementation": "sdpa",
            "activation_checkpointing": False, "seed": 0, "warmup_ratio": 0.05, "max_grad_norm": 1.0}
    assert m["training_stretches"] == [{"from_step": 1, "to_step": 2, "mixed_precision": "no", **same},
                                       {"from_step": 3, "to_step": 4, "mixed_precision": "bf16", **same}]
    assert m["mixed_precision"] == ["no", "bf16"]
    state = json.loads((out / "checkpoints" / "step-00000004" / "trainer_state.json").read_text())
    assert state["training_stretches"] == m["training_stretches"]
    from hf_neuroformer.cli import _print_metrics

    capsys.readouterr()
    _print_metrics(m)  # neuroformer train's summary: the list printed, not left out as a non-figure
    said = [x for x in capsys.readouterr().out.splitlines() if x.strip().startswith("mixed_precision ")]
    assert len(said) == 1 and said[0].endswith(" no, bf16"), said
    new = _files(out)
    assert set(new) == set(old)  # the documented layout, nothing left of the save
    assert new["model.safetensors"] != old["model.safetensors"]
    assert json.loads(new["metrics.json"]) == json.loads(json.dumps(m))
    assert [e["step"] for e in json.loads(new["training_log.json"])] == [2, 4]
    assert json.loads(new["training_config.json"])["max_steps"] == 4
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000002", "step-00000004"]


def test_mixed_precision_of_a_run_that_went_back_to_a_precision_lists_them_as_they_ran(rec, finished_run, tmp_path):
    """metrics.json's mixed_precision is the list of the precisions in the order they ran (README): a run
    whose steps ran bf16, then float32, then bf16 again was said to be ['bf16', 'no'] (each precision once,
    first use first), as if it had ended in float32. Its checkpoint's stretches are edited to say step 1 ran
    in bf16 (no third training run needed); the resume runs step 3 in bf16."""
    import shutil

    out = tmp_path / "m"
    shutil.copytree(finished_run, out)
    state_file = out / "checkpoints" / "step-00000002" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    first, = state["training_stretches"]
    state["training_stretches"] = [{**first, "to_step": 1, "mixed_precision": "bf16"}, {**first, "from_step": 2}]
    state_file.write_text(json.dumps(state))
    tc = TrainingConfig(max_steps=3, batch_size=16, save_every=2, mixed_precision="bf16")
    with pytest.warns(UserWarning, match="mixed_precision"):
        m = train(rec, out, nf.NeuroformerConfig(**TINY), tc, progress=False, resume=True)
    assert [(r["from_step"], r["to_step"], r["mixed_precision"]) for r in m["training_stretches"]] == [
        (1, 1, "bf16"), (2, 2, "no"), (3, 3, "bf16")]
    assert m["mixed_precision"] == ["bf16", "no", "bf16"]


def test_extension_stopped_before_writing_its_model_is_completed_on_resume(rec, finished_run, tmp_path, capsys):
    # an extension (max_steps 2 -> 4) killed after its step-4 checkpoint, before its model was written
    # (test scoring and generation take seconds there): resumed with the same command it said "nothing
    # to do: the run finished at step 4 ... its model is left as it is", and the folder kept the
    # step-2 model and metrics for good
    import shutil

    from hf_neuroformer.training import check_resume

    out, ref = tmp_path / "m", tmp_path / "ref"
    shutil.copytree(finished_run, out)
    shutil.copytree(finished_run, ref)
    cfg, tc = nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=4, batch_size=16, save_every=2)
    train(rec, ref, cfg, tc, progress=False, resume=True)  # the uninterrupted extension

    def stop(model):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(rec, out, cfg, tc, progress=False, resume=True, on_train_end=stop)
    assert (out / "checkpoints" / "step-00000004").is_dir()
    assert json.loads((out / "metrics.json").read_text())["total_steps"] == 2  # the old model is still there
    capsys.readouterr()
    assert check_resume(out, tc) is None  # not "nothing to do"
    steps = []
    m = train(rec, out, cfg, tc, progress=False, resume=True, on_step_end=lambda s, loss: steps.append(s))
    said = capsys.readouterr().out
    assert "nothing to do" not in said and "is not the one of checkpoint step-00000004" in said, said
    assert steps == [] and m["total_steps"] == 4
    assert _files(out)["model.safetensors"] == _files(ref)["model.safetensors"]
    assert json.loads((out / "training_log.json").read_text()) == json.loads((ref / "training_log.json").read_text())
    # now the folder holds the step-4 model: nothing left to do
    train(rec, out, cfg, tc, progress=False, resume=True)
    assert "nothing to do" in capsys.readouterr().out


def test_resume_with_another_batch_size_names_the_settings(rec, finished_run, tmp_path):
    # refused as "written with micro_batch_size=16, this run has 32; resume with the same launch
    # shape": micro_batch_size is no setting, and --batch-size, which the user changed, was not named
    import shutil

    out = tmp_path / "m"
    shutil.copytree(finished_run, out)
    old = _files(out)
    for kw, now in [({"batch_size": 32}, "batch_size 32 = 32 windows per micro-batch x gradient_accumulation_steps 1"),
                    ({"batch_size": 32, "gradient_accumulation_steps": 2},
                     "batch_size 32 = 16 windows per micro-batch x gradient_accumulation_steps 2")]:
        tc = TrainingConfig(max_steps=4, save_every=2, **kw)
        with pytest.raises(ValueError) as info:
            train(rec, out, nf.NeuroformerConfig(**TINY), tc, progress=False, resume=True)
        msg = str(info.value)
        assert "written with batch_size 16 = 16 windows per micro-batch x gradient_accumulation_steps 1 x 1 process" in msg
        assert f"this run has {now}" in msg and "--batch-size (training.batch_size)" in msg, msg
        assert "start afresh" in msg
    assert _files(out) == old


def test_a_multi_process_contrastive_checkpoint_from_before_the_gathered_negatives_is_warned_of(finished_run):
    """Since InfoNCE gathers its negatives across processes (e0b01dc), a contrastive checkpoint of
    several processes written before (each process contrasted its own windows) resumed with another
    objective without a word: the resume compares only the launch shape. New checkpoints record
    contrastive_negatives; a checkpoint of a contrastive run on several processes without the record
    is warned of (its trainer_state as that older run wrote it: the record taken out, its launch and
    weight set); one process, or no contrastive loss, had one objective and is not."""
    from hf_neuroformer.training import _contrastive_objective_changed

    ckpt = finished_run / "checkpoints" / "step-00000002"
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert state["contrastive_negatives"] == "all processes"
    older = {k: v for k, v in state.items() if k != "contrastive_negatives"}
    older["fingerprint"] = {**state["fingerprint"], "num_processes": 2,
                            "config": {**state["fingerprint"]["config"], "contrastive_loss_weight": 0.5}}
    warning = _contrastive_objective_changed(ckpt, older)
    assert warning is not None and "step-00000002" in warning
    for words in ("contrastive_loss_weight 0.5, 2 processes", "negatives across processes",
                  "own process's micro-batch", "every process's micro-batch", "mixes the two objectives"):
        assert words in warning, (words, warning)
    assert _contrastive_objective_changed(ckpt, {**older, "contrastive_negatives": "all processes"}) is None
    one = {**older, "fingerprint": {**older["fingerprint"], "num_processes": 1}}
    without = {**older, "fingerprint": {**older["fingerprint"], "config": state["fingerprint"]["config"]}}
    assert _contrastive_objective_changed(ckpt, one) is None and _contrastive_objective_changed(ckpt, without) is None


def test_a_resume_is_warned_of_when_the_contrastive_gather_differs_from_the_checkpoints(finished_run):
    """contrastive_gather_across_processes false contrasts each process's own micro-batch, the
    objective of a multi-process contrastive checkpoint written before the gather (no
    contrastive_negatives record): resuming such a checkpoint with the gather off is one objective,
    not warned of; with it on the warning says how to keep the checkpoint's. A checkpoint that
    gathered ('all processes', written before the field existed, so its config lacks it) resumed
    with the gather off is warned of, naming both."""
    from hf_neuroformer.training import OWN_PROCESS_NEGATIVES, _contrastive_objective_changed

    ckpt = finished_run / "checkpoints" / "step-00000002"
    state = json.loads((ckpt / "trainer_state.json").read_text())
    older = {k: v for k, v in state.items() if k != "contrastive_negatives"}
    older["fingerprint"] = {**state["fingerprint"], "num_processes": 2,
                            "config": {**state["fingerprint"]["config"], "contrastive_loss_weight": 0.5}}
    assert _contrastive_objective_changed(ckpt, older, gathered=False) is None
    assert "set contrastive_gather_across_processes: false" in _contrastive_objective_changed(ckpt, older, gathered=True)
    gathered = {**older, "contrastive_negatives": "all processes"}
    warning = _contrastive_objective_changed(ckpt, gathered, gathered=False)
    assert warning is not None and "'all processes'" in warning and f"{OWN_PROCESS_NEGATIVES!r}" in warning, warning
    assert "contrastive_gather_across_processes False" in warning and "mixes the two objectives" in warning
    assert _contrastive_objective_changed(ckpt, {**gathered, "contrastive_negatives": OWN_PROCESS_NEGATIVES},
                                          gathered=False) is None


def test_a_checkpoint_from_before_the_contrastive_gather_field_resumes_and_a_different_value_is_refused(tmp_path):
    """contrastive_gather_across_processes is a config field added after checkpoints were written:
    a checkpoint's config without it is not refused for it (its objective is the
    contrastive_negatives record's business); a checkpoint that holds another value is."""
    from hf_neuroformer.training import _check_resume_fingerprint, _config_fingerprint

    now = {"config": _config_fingerprint(nf.NeuroformerConfig(**TINY))}
    assert now["config"]["contrastive_gather_across_processes"] is True
    older = json.loads(json.dumps(now))
    del older["config"]["contrastive_gather_across_processes"]
    _check_resume_fingerprint(tmp_path, older, now)
    older["config"]["contrastive_gather_across_processes"] = False
    with pytest.raises(ValueError, match=r"config\.contrastive_gather_across_processes=False, this run has True"):
        _check_resume_fingerprint(tmp_path, older, now)


def test_model_of_a_compiled_run_is_recognised_as_its_checkpoints(finished_run, tmp_path):
    # a torch.compile run selects its weights from the compiled module, whose state_dict keys start
    # with '_orig_mod.': the saved model (plain keys) did not match them, so a finished compiled run
    # resumed at its own max_steps was scored and written again instead of "nothing to do"
    import shutil

    from safetensors.torch import load_file, save_file

    from hf_neuroformer.training import latest_checkpoint, model_is_from_checkpoint

    out = tmp_path / "m"
    shutil.copytree(finished_run, out)
    ckpt = latest_checkpoint(out)
    assert model_is_from_checkpoint(out, ckpt)
    best = load_file(str(ckpt / "best_model.safetensors"))
    save_file({f"_orig_mod.{k}": v for k, v in best.items()}, str(ckpt / "best_model.safetensors"))
    assert model_is_from_checkpoint(out, ckpt)
    save_file({f"_orig_mod.{k}": v + (k == next(iter(best))) for k, v in best.items()}, str(ckpt / "best_model.safetensors"))
    assert not model_is_from_checkpoint(out, ckpt)  # other weights


@pytest.mark.parametrize("compiled_before", [True, False])
def test_a_checkpoint_resumes_with_or_without_compile_as_it_was_written(rec, finished_run, tmp_path, compiled_before):
    # torch_compile is a setting a resume may change (warned, used), but the checkpoint's selected weights
    # were kept with the keys of the module that wrote them: a compiled run's ('_orig_mod.dt_head.bias')
    # did not load into a plain model, nor a plain run's into a compiled one, so a resume ended, after all
    # its steps, in "Error(s) in loading state_dict" whenever the checkpoint's selection was kept. Here:
    # a run stopped after its last checkpoint, before its model was written, whose selection is kept
    import shutil

    from safetensors.torch import load_file, save_file

    out = tmp_path / "m"
    shutil.copytree(finished_run, out)
    for name in ("model.safetensors", "metrics.json"):
        (out / name).unlink()
    ckpt = out / "checkpoints" / "step-00000002"
    best = load_file(str(ckpt / "best_model.safetensors"))
    if compiled_before:  # as a torch.compile run wrote it (checked with a real compiled run: same keys)
        save_file({f"_orig_mod.{k}": v for k, v in best.items()}, str(ckpt / "best_model.safetensors"))
    # the backend "eager" compiles nothing here: no step is left. Stopped once the selection is loaded
    # (on_train_end gets the final model), sparing the scoring and the save
    tc = TrainingConfig(max_steps=2, batch_size=16, save_every=2, torch_compile=not compiled_before,
                        torch_compile_backend="eager")
    final = {}

    def stop(model):
        final.update(model.state_dict())
        raise KeyboardInterrupt

    with pytest.warns(UserWarning, match="torch_compile"), pytest.raises(KeyboardInterrupt):
        train(rec, out, nf.NeuroformerConfig(**TINY), tc, progress=False, resume=True, on_train_end=stop)
    assert set(final) == set(best) and all(torch.equal(final[k], best[k]) for k in best)


def test_resume_refusals_name_what_is_missing_before_writing(rec, finished_run, tmp_path):
    import shutil

    cfg, tc = nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=1, batch_size=16, save_every=2)
    # checkpoints without a model (a run killed after its step-2 checkpoint): max_steps below the
    # checkpoint's step was trained to nothing and saved as a 2-step model, behind a warning
    cut = tmp_path / "cut"
    shutil.copytree(finished_run / "checkpoints", cut / "checkpoints")
    with pytest.raises(ValueError, match=r"--max-steps \(training\.max_steps\): 1, but the newest checkpoint "
                                         r".*step-00000002.* is at step 2.*resume with --max-steps 2 or more"):
        train(rec, cut, cfg, tc, progress=False, resume=True)
    assert [p.name for p in cut.iterdir()] == ["checkpoints"]
    # a model without checkpoints (deleted): named, with what to do
    done = tmp_path / "done"
    shutil.copytree(finished_run, done)
    shutil.rmtree(done / "checkpoints")
    old = _files(done)
    with pytest.raises(FileNotFoundError, match=r"resume: .* holds a finished model \(config.json, model.safetensors.*"
                                                r"but no checkpoint in .*checkpoints.*--save-every"):
        train(rec, done, cfg, dataclasses.replace(tc, max_steps=4), progress=False, resume=True)
    assert _files(done) == old
    # a newest checkpoint without its optimizer state (copied in part): named with the older one to fall
    # back to, before the data is read (it failed with a bare "[Errno 2] ... optimizer.bin" after it)
    part = tmp_path / "part"
    shutil.copytree(finished_run, part)
    steps = sorted(c.name for c in (part / "checkpoints").iterdir())
    (part / "checkpoints" / steps[-1] / "optimizer.bin").unlink()
    older = f"to resume from the one before \\({steps[-2]}\\)" if len(steps) > 1 else "no older checkpoint"
    with pytest.raises(FileNotFoundError, match=rf"resume: the newest checkpoint .*{steps[-1]}' lacks optimizer.bin "
                                                rf"\(damaged, or copied in part\); .*{older}"):
        train(rec, part, cfg, dataclasses.replace(tc, max_steps=8), progress=False, resume=True)


@pytest.mark.parametrize("damage", ["no random states", "random states cut short", "optimizer cut short"])
def test_a_checkpoint_that_cannot_be_read_is_refused_naming_it(rec, finished_run, tmp_path, damage):
    # Accelerate's load_state passes over RNG states it cannot read ("Could not load random states", an
    # info log): a checkpoint copied without its random_states_0.pkl (or with it cut short) resumed with
    # the seed's fresh random numbers, so its dropout differed from the uninterrupted run's, without a
    # word; an optimizer.bin cut short came out as a bare "PytorchStreamReader failed reading zip archive"
    # traceback. Both are refused now, naming the checkpoint and what to do
    import shutil

    out = tmp_path / "m"
    shutil.copytree(finished_run, out)
    ckpt = out / "checkpoints" / "step-00000002"
    name = "optimizer.bin" if damage.startswith("optimizer") else "random_states_0.pkl"
    if damage == "no random states":
        (ckpt / name).unlink()
    else:
        (ckpt / name).write_bytes((ckpt / name).read_bytes()[:100])
    old = _files(out)
    what = (r"newest checkpoint .*step-00000002' lacks random_states_0.pkl \(damaged, or copied in part\)"
            if damage == "no random states" else
            rf"checkpoint .*step-00000002' cannot be read \(.*{name if 'random' in damage else 'zip archive'}.*\): "
            r"damaged, or copied in part\?")
    with pytest.raises((ValueError, FileNotFoundError), match=what + ".*no older checkpoint.*start afresh"):
        train(rec, out, nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=4, batch_size=16, save_every=2),
              progress=False, resume=True)
    assert _files(out) == old and sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-00000002"]


def test_final_save_killed_while_moving_files_leaves_one_whole_model(rec, finished_run, tmp_path, monkeypatch):
    # the model files were moved out of the temporary folder one by one: a run killed between two
    # moves left the new model's first file beside the old model's others (and, for an exception,
    # deleted the new ones not yet moved)
    import os
    import shutil

    from hf_neuroformer.save_journal import SAVE_JOURNAL

    out = tmp_path / "m"
    shutil.copytree(finished_run, out)
    real_replace, moved = os.replace, []

    class Killed(BaseException):
        pass

    def replace(src, dst):
        if os.path.basename(os.path.dirname(src)).startswith(".tmp-save-"):
            if moved:  # killed after the first file of the model
                raise Killed
            moved.append(os.path.basename(src))
        return real_replace(src, dst)

    got = {}
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(Killed):
        train(rec, out, nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=4, batch_size=16, save_every=2),
              progress=False, resume=True, on_train_end=_weights(got, "new"))
    monkeypatch.setattr(os, "replace", real_replace)
    assert len(moved) == 1
    # loading the folder completes the move: the new weights with the new run's metrics
    model = nf.NeuroformerForPreTraining.from_pretrained(out)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in got["new"].items())
    assert json.loads((out / "metrics.json").read_text())["total_steps"] == 4
    assert json.loads((out / "training_config.json").read_text())["max_steps"] == 4
    assert not (out / SAVE_JOURNAL).exists() and not list(out.glob(".tmp-save-*"))
    assert len(nf.NeuroformerTokenizer.from_pretrained(out)) == model.config.vocab_size


def test_every_key_of_metrics_json_is_explained_in_the_readme(finished_run, readme_leaves_out):
    """Break test: the README's `metrics.json` table explained 25 of the keys a run writes; a reader
    met validation/loss, best_step, checkpoint_selection, n_spikes_by_split, test/n_real_spikes ... with
    no word on what they are (which split, which unit). Every top-level key must be named (in backticks)
    in that section; a ``split/name`` key may be named by its split-free part. Keys only some runs
    write (contrastive retrieval, streamed, paired starts, video) are checked where those runs are
    made (test_contrastive, test_prepare, test_video)."""
    missing = readme_leaves_out(json.loads((finished_run / "metrics.json").read_text()))
    assert not missing, f"metrics.json keys the README does not explain: {missing}"


def test_metrics_json_records_the_tensors_of_the_weights_it_scored(finished_run):
    """Break test: nothing tied metrics.json to the weights beside it, so 'neuroformer push' of a
    folder whose weights were saved over after the run showed the run's results as theirs. The run
    records the digest of the weights it saved (generation.tensors_sha256 of model.safetensors)."""
    from hf_neuroformer.generation import tensors_sha256

    recorded = json.loads((finished_run / "metrics.json").read_text())["weights_tensors_sha256"]
    assert recorded == tensors_sha256(finished_run) and len(recorded) == 64


def test_a_save_removes_the_run_records_of_another_kind_of_run(rec, tmp_path):
    """Break test: 'neuroformer train --overwrite' into a folder holding a decoder (finetune output)
    kept its decoding_report.json beside the new pretrained model, and 'neuroformer push' uploads
    that file with the model (hub.RUN_FILES). A save removes the records of RUN_RECORDS it does not
    write, as it removes figures and tables; the other way round training_config.json goes too."""
    from hf_neuroformer.training import save_atomically
    from tiny_configs import untrained_model

    tok, model = untrained_model(rec, nf.NeuroformerConfig(**TINY))
    out = tmp_path / "m"
    save_atomically(out, model, tok, {"metrics.json": {"init": "pretrained"}, "decoding_report.json": {"train": {}}})
    save_atomically(out, model, tok, {"metrics.json": {}, "training_config.json": {"max_steps": 2}}, overwrite=True)
    assert not (out / "decoding_report.json").exists() and (out / "training_config.json").is_file()
    save_atomically(out, model, tok, {"metrics.json": {}, "decoding_report.json": {"train": {}}}, overwrite=True)
    assert not (out / "training_config.json").exists() and (out / "decoding_report.json").is_file()


def test_resume_with_only_a_half_written_checkpoint_says_so(rec, finished_run, tmp_path):
    """A run killed while saving its first checkpoint leaves only checkpoints/.tmp-step-N; resume said
    'no checkpoint ...; checkpoints are written when training.save_every (--save-every) is set', which
    sent the user to a setting they had set. It now names the incomplete checkpoint and how to start afresh."""
    import shutil

    cut = tmp_path / "cut"
    shutil.copytree(finished_run / "checkpoints" / "step-00000002", cut / "checkpoints" / ".tmp-step-00000002")
    cfg, tc = nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=2, batch_size=16, save_every=2)
    with pytest.raises(FileNotFoundError, match=r"no complete checkpoint in .*\.tmp-step-00000002 is incomplete \(a run "
                                                r"stopped while writing it.*start afresh with --overwrite") as err:
        train(rec, cut, cfg, tc, progress=False, resume=True)
    assert "--save-every) is set" not in str(err.value)


def test_resume_takes_the_newest_checkpoint_by_step_and_leaves_a_copy_in_the_folder_alone(rec, tmp_path, capsys):
    """Break test: any folder in checkpoints/ whose name began with 'step-' was taken for a checkpoint,
    in text order. A copy a user kept beside them ('step-00000002 copy', a file browser's name for a copy
    of the step-2 checkpoint) counted among the newest save_total_limit, so the saves of the resumed run
    deleted it, and a copy of the newest checkpoint, sorting after it, was resumed from in its place. A
    checkpoint is now a folder named step-<step number>, ordered by its step."""
    import shutil

    out = tmp_path / "m"
    cfg = nf.NeuroformerConfig(**TINY)
    tc = TrainingConfig(max_steps=3, batch_size=16, save_every=1, save_total_limit=2, generate_test=False)
    train(rec, out, cfg, tc, progress=False, write_figures=False)
    root = out / "checkpoints"
    for step in (2, 3):
        shutil.copytree(root / f"step-{step:08d}", root / f"step-{step:08d} copy")
    assert nf.training.latest_checkpoint(out) == root / "step-00000003"
    capsys.readouterr()
    train(rec, out, cfg, dataclasses.replace(tc, max_steps=4), progress=False, resume=True, write_figures=False)
    assert re.search(r"resumed from .*step-00000003 \(step 3 of 4", capsys.readouterr().out)
    assert sorted(p.name for p in root.iterdir()) == ["step-00000002 copy", "step-00000003", "step-00000003 copy",
                                                      "step-00000004"]


def test_fp16_from_accelerate_launch_on_a_cpu_names_the_launcher(tmp_path, monkeypatch):
    """Break test: `accelerate launch --cpu --mixed_precision fp16 ... train` (config left at "no")
    was refused as "training.mixed_precision: 'fp16' on a CPU", a field the user never set. The
    refusal now names the launcher's flag; it still comes before the recording is read (absent here)."""
    monkeypatch.setenv("ACCELERATE_USE_CPU", "1")
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "fp16")
    with pytest.raises(ValueError, match=r"^ACCELERATE_MIXED_PRECISION \(accelerate launch --mixed_precision\): "
                                         r"'fp16' on a CPU"):
        train(tmp_path / "absent.nwb", tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match=r"^training\.mixed_precision: 'fp16' on a CPU"):
        train(tmp_path / "absent.nwb", tmp_path / "out", training=TrainingConfig(mixed_precision="fp16"), progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["npu", "hpu", "cuda"])
def test_fp16_is_not_refused_where_accelerate_finds_an_accelerator(kind, monkeypatch):
    """Break test: the early fp16 refusal knew only CUDA, MPS and XPU, so on an Ascend NPU, a
    Gaudi HPU (or MLU, MUSA ...) machine, where Accelerate runs fp16, it refused fp16 up front. It
    now asks Accelerate's own ``is_<kind>_available``. No such device here: Accelerate's answer for
    one kind is replaced by True (the rest of the check runs as is); with ACCELERATE_USE_CPU the
    refusal stays."""
    import accelerate.utils

    from hf_neuroformer.training import check_precision_device

    with pytest.raises(ValueError, match="'fp16' on a CPU"):  # this machine: no accelerator
        check_precision_device("fp16")
    monkeypatch.setattr(accelerate.utils, f"is_{kind}_available", lambda *a, **k: True)
    check_precision_device("fp16")
    check_precision_device("bf16")
    monkeypatch.setenv("ACCELERATE_USE_CPU", "1")
    with pytest.raises(ValueError, match="^training.mixed_precision: 'fp16' on a CPU"):
        check_precision_device("fp16")


def test_a_failed_first_save_into_new_nested_folders_leaves_none_behind(rec, tmp_path):
    # `neuroformer train --output-dir a/b/c` (a new a): a save that failed before its commit (here a figure
    # matplotlib cannot write) removed its staging folder but left the empty a/b/c, a/b and a behind
    from matplotlib.figure import Figure

    from hf_neuroformer.training import save_atomically
    from tiny_configs import small_config, untrained_model

    tok, model = untrained_model(rec, small_config())
    with pytest.raises(ValueError, match="not supported"):
        save_atomically(tmp_path / "a" / "b" / "c", model, tok, {"metrics.json": {}},
                        figures={"curves.nosuchformat": Figure()})
    assert list(tmp_path.iterdir()) == []
    # a folder that existed before the save is kept (only this save's staging folder goes)
    (tmp_path / "kept").mkdir()
    with pytest.raises(ValueError, match="not supported"):
        save_atomically(tmp_path / "kept" / "m", model, tok, {}, figures={"curves.nosuchformat": Figure()})
    assert [p.name for p in tmp_path.iterdir()] == ["kept"] and not any((tmp_path / "kept").iterdir())



def test_a_save_interrupted_before_its_commit_leaves_the_old_model_and_no_leftovers(rec, tmp_path, monkeypatch):
    """A save interrupted after its files were staged but before its journal was renamed into place
    (Ctrl-C while the staged model was flushed to disk, a full disk for the journal) kept the old
    model whole, but left the staged copy of the new one (.tmp-save-*, a whole model's weights) and
    the unfinished journal .save-in-progress.json.tmp in the folder until the next save there. The
    interruption is a KeyboardInterrupt raised at the commit's rename."""
    import os

    from safetensors.torch import load_file

    from hf_neuroformer.save_journal import SAVE_JOURNAL
    from hf_neuroformer.training import save_atomically
    from tiny_configs import small_config, untrained_model

    tok, model = untrained_model(rec, small_config())
    out = tmp_path / "m"
    save_atomically(out, model, tok, {"metrics.json": {"run": "old"}})
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_replace = os.replace

    def replace(src, dst):
        if os.path.basename(dst) == SAVE_JOURNAL:
            raise KeyboardInterrupt
        return real_replace(src, dst)

    _, other = untrained_model(rec, small_config(), seed=1)
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        save_atomically(out, other, tok, {"metrics.json": {"run": "new"}}, overwrite=True)
    with pytest.raises(KeyboardInterrupt):  # the first save into new folders: none is left
        save_atomically(tmp_path / "a" / "b", other, tok, {"metrics.json": {}})
    monkeypatch.setattr(os, "replace", real_replace)
    assert sorted(p.name for p in out.iterdir()) == sorted(before)  # no .tmp-save-*, no journal .tmp
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not (tmp_path / "a").exists()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in load_file(out / "model.safetensors").items())


_KILLED_WHILE_DELETING = '''
import os, shutil, signal, sys
from pathlib import Path

import hf_neuroformer as nf
from hf_neuroformer.training import TrainingConfig, train

real_rmtree = shutil.rmtree


def rmtree_killed_midway(path, *args, **kwargs):
    # a whole checkpoint being deleted (or a folder of them): one file goes, then the process is killed (SIGKILL)
    whole = [p for p in [Path(path), *sorted(Path(path).glob("step-*"))] if (p / "trainer_state.json").is_file()]
    if whole:
        os.unlink(whole[0] / "optimizer.bin")
        os.kill(os.getpid(), signal.SIGKILL)
    return real_rmtree(path, *args, **kwargs)


rec = nf.simulate_coupled_network(n_units=5, duration=40.0, seed=7).recording
cfg = nf.NeuroformerConfig(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=24,
                           max_past_length=48, hidden_size=16, num_attention_heads=2, intermediate_size=32,
                           split_block_length=5.0)
# no test generation, no figures: the test reads the checkpoints, model.safetensors and metrics.json
tc = TrainingConfig(max_steps=3, batch_size=16, save_every=1, save_total_limit=1, eval_batch_size=512,
                    generate_test=False)
if sys.argv[2] == "overwrite":  # a finished run first, then one started with overwrite over it
    train(rec, sys.argv[1], cfg, tc, progress=False, write_figures=False)
shutil.rmtree = rmtree_killed_midway
train(rec, sys.argv[1], cfg, tc, progress=False, overwrite=sys.argv[2] == "overwrite", write_figures=False)
'''


@pytest.mark.parametrize("when", ["rotation", "overwrite"])
def test_a_run_killed_while_deleting_a_checkpoint_leaves_none_half_deleted(tmp_path, when):
    """A run SIGKILLed while deleting a checkpoint (the oldest one beyond save_total_limit, or the earlier
    run's at the start of an --overwrite run) left a step-* folder without optimizer.bin, which resume and
    its advice "resume from the one before" took for a checkpoint. They are now renamed to .tmp-step-*
    (never resumed from) before being deleted: every step-* folder left is whole and the run resumes."""
    import os
    import signal
    import subprocess
    import sys

    from hf_neuroformer.training import CHECKPOINT_FILES, check_resume, latest_checkpoint

    script = tmp_path / "killed.py"
    script.write_text(_KILLED_WHILE_DELETING)
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, str(script), str(out), when], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    left = sorted((out / "checkpoints").glob("step-*"))
    for ckpt in left:
        lacking = [name for name, patterns in CHECKPOINT_FILES.items()
                   if not any(any(ckpt.glob(pattern)) for pattern in patterns)]
        assert not lacking, f"{ckpt.name} lacks {lacking}"
    if when == "rotation":  # killed deleting step 1 once step 2 was written: step 2 is resumed
        assert [p.name for p in left] == ["step-00000002"]
        assert check_resume(out, TrainingConfig(max_steps=3)) is None
    else:  # killed deleting the earlier run's checkpoints: its model is still whole
        assert (out / "model.safetensors").is_file() and (out / "metrics.json").is_file()
        # its only checkpoint, renamed to .tmp-step-* to be deleted, was called "not completely written (the
        # run stopped while saving it)" by resume's search for a checkpoint: it was whole and being deleted
        assert not left
        with pytest.raises(FileNotFoundError, match=r"\.tmp-step-00000003 is incomplete \(a run stopped while "
                                                    r"writing it, or while deleting it: .* deleted by --overwrite"):
            latest_checkpoint(out)
        # the finished model without a checkpoint: check_resume said "deleted, or the run had no --save-every",
        # not naming the leftover
        with pytest.raises(FileNotFoundError, match=r"holds a finished model .* no training.save_every / --save-every\); "
                                                    r"\.tmp-step-00000003 is incomplete .* deleted by --overwrite"):
            check_resume(out, TrainingConfig(max_steps=3))


def test_resume_with_nothing_to_do_compares_output_attentions_as_train_stores_it(rec, finished_run, tmp_path, capsys):
    """Break test: train drops output_attentions=True (sdpa models are saved without it) before the
    checkpoint records its config, so a resume that trains on accepts such a config; a resume with
    nothing to do compared the config as given and refused it (config.output_attentions=False, this
    run has True), though it is the config the run was started with."""
    import shutil

    out = tmp_path / "m"
    shutil.copytree(finished_run, out)
    old = _files(out)
    tc = TrainingConfig(max_steps=2, batch_size=16, save_every=2)
    train(rec, out, nf.NeuroformerConfig(**TINY, output_attentions=True), tc, progress=False, resume=True)
    assert "nothing to do" in capsys.readouterr().out and _files(out) == old


def test_resume_takes_the_config_of_the_runs_own_saved_model(rec, finished_run, tmp_path, capsys):
    """Break test: the config saved with the run's model (NeuroformerConfig.from_pretrained) holds
    architectures and dtype, which the checkpoints' config does not: resuming with it was refused
    ('written with config.architectures=None, this run has ['NeuroformerForPreTraining']'), though
    it is the run's own model config."""
    import shutil

    out = tmp_path / "m"
    shutil.copytree(finished_run, out)
    old = _files(out)
    train(rec, out, nf.NeuroformerConfig.from_pretrained(out), TrainingConfig(max_steps=2, batch_size=16, save_every=2),
          progress=False, resume=True)
    assert "nothing to do" in capsys.readouterr().out and _files(out) == old


def test_a_checkpoint_with_a_never_applied_bin_size_on_an_event_modality_still_resumes(tmp_path):
    """bin_size / num_features on a categorical modality were saved but never applied, and are refused
    since (d8a3d9d): a checkpoint written with them differed from the fixed config in that key alone,
    and the resume was refused ('config.modalities=...') with the advice to use the checkpoint's config,
    which the config now refuses. They are read as the defaults, with a warning; a value that was
    applied (classes) is still compared."""
    from hf_neuroformer.training import _check_resume_fingerprint, _config_fingerprint

    cfg = nf.NeuroformerConfig(**dict(TINY, modalities=[{"name": "rip", "source": "events:ripples",
                                                         "kind": "categorical", "classes": ["ripple"]}]))
    now = {"config": _config_fingerprint(cfg)}
    older = json.loads(json.dumps(now))
    older["config"]["modalities"][0].update(bin_size=0.05, num_features=2)
    with pytest.warns(UserWarning, match=r"modalities\[0\] \('rip'\)\.bin_size=0\.05, modalities\[0\] \('rip'\)\."
                                         r"num_features=2 on a categorical modality never applied"):
        _check_resume_fingerprint(tmp_path, older, now)
    older["config"]["modalities"][0]["classes"] = ["ripple", "spindle"]
    with pytest.raises(ValueError, match=r"config\.modalities"), pytest.warns(UserWarning, match="never applied"):
        _check_resume_fingerprint(tmp_path, older, now)


def test_a_checkpoint_of_a_behaviour_modality_from_before_frame_interval_is_compared_without_it(tmp_path):
    """Break test: every modality dict gained ``frame_interval`` (None but for video, d40cc71), so
    the fingerprint of any run with a modality written before it (A2929's head direction) differed
    from a resume's in that key alone and the resume was refused ('config.modalities=...'). A value
    the checkpoint holds is still compared."""
    from hf_neuroformer.training import _check_resume_fingerprint, _config_fingerprint

    cfg = nf.NeuroformerConfig(**dict(TINY, modalities=[{"name": "ry", "source": "behaviour:ry", "kind": "continuous",
                                                         "mean": [0.1], "std": [1.2]}]))
    now = {"config": _config_fingerprint(cfg)}
    older = json.loads(json.dumps(now))
    del older["config"]["modalities"][0]["frame_interval"]
    _check_resume_fingerprint(tmp_path, older, now)
    older["config"]["modalities"][0]["mean"] = [0.2]
    with pytest.raises(ValueError, match=r"config\.modalities"):
        _check_resume_fingerprint(tmp_path, older, now)


def test_train_names_what_it_takes_for_a_recording_file_or_a_dict(rec, tmp_path, shared_data):
    """train("rec.nwb", out) said the existing file 'has no manifest.json' (no word of loading it),
    and train({...}, out) failed with a TypeError from inside pathlib: both now name the argument
    and what train takes, before anything is written."""
    nwb = shared_data("pynapple_A2929_headdirection/A2929-200711.nwb")
    with pytest.raises(ValueError, match=r"^recording: '.*A2929-200711\.nwb' is a file, not a prepared directory; "
                                         r"train takes a SpikeRecording \(rec = hf_neuroformer\.io\.load_recording"):
        train(str(nwb), tmp_path / "out", progress=False)
    with pytest.raises(TypeError, match=r"^recording: expected a SpikeRecording .* or the path \(str or os\.PathLike\)"
                                        r" of a directory written by 'neuroformer prepare', got dict"):
        train({"spike_times": [0.1]}, tmp_path / "out", progress=False)
    with pytest.raises(TypeError, match=r"^output_dir: expected the path \(str or os\.PathLike\) .* got dict"):
        train(rec, {"path": "out"}, progress=False)
    assert not (tmp_path / "out").exists()


def test_training_log_gives_the_learning_rate_of_each_logged_step(rec, tmp_path):
    # the warm-up and cosine decay could not be checked from the outputs: the log had no rate
    tc = TrainingConfig(max_steps=8, batch_size=16, eval_every=1, warmup_ratio=0.25, learning_rate=2e-3,
                        generate_test=False)
    train(rec, tmp_path / "m", nf.NeuroformerConfig(**TINY), tc, progress=False, write_figures=False)
    log = json.loads((tmp_path / "m" / "training_log.json").read_text())
    total, warmup = tc.max_steps, int(tc.warmup_ratio * tc.max_steps)

    def scheduled(updates_before):  # transformers' linear warm-up, then cosine decay to 0
        if updates_before < warmup:
            return tc.learning_rate * updates_before / warmup
        return tc.learning_rate * 0.5 * (1 + math.cos(math.pi * (updates_before - warmup) / (total - warmup)))

    assert [e["step"] for e in log] == list(range(1, total + 1))
    assert [e["learning_rate"] for e in log] == pytest.approx([scheduled(e["step"] - 1) for e in log], rel=1e-9)
    rates = [e["learning_rate"] for e in log]
    peak = rates.index(max(rates))
    assert 0 < peak < total - 1 and rates[:peak + 1] == sorted(rates[:peak + 1])
    assert rates[peak:] == sorted(rates[peak:], reverse=True)


def test_the_selected_steps_validation_figures_are_not_scored_again_after_training(rec, tmp_path):
    # train() scored the whole validation split once more after training, with the selected step's
    # weights, which it had scored when it selected them: the same figures for a validation pass.
    # metrics.json's are now those of the selected step's validation; with on_train_end (which may
    # change the weights) the split is scored again, and gives the same figures here
    def scored_rows(out, **kwargs):
        events = []  # ("eval", windows) per evaluation-mode forward, ("step", n) after each step

        def watch(model):
            model.id_head.register_forward_hook(
                lambda mod, inp, res: None if mod.training else events.append(("eval", int(res.shape[0]))))

        tc = TrainingConfig(max_steps=2, eval_every=1, batch_size=16, generate_test=False)
        m = train(rec, tmp_path / out, nf.NeuroformerConfig(**TINY), tc, progress=False, write_figures=False,
                  on_train_start=watch, on_step_end=lambda step, loss: events.append(("step", step)), **kwargs)
        steps = [i for i, e in enumerate(events) if e[0] == "step"]
        assert len(steps) == 2
        n_val = sum(n for _, n in events[:steps[0]])  # step 1's validation
        return m, n_val, sum(n for _, n in events[steps[-1] + 1:])  # the windows scored after training

    m, n_val, after = scored_rows("m")
    again, n_val_again, after_again = scored_rows("again", on_train_end=lambda model: None)
    assert n_val == n_val_again > 0 and after == after_again - n_val
    log = json.loads((tmp_path / "m" / "training_log.json").read_text())
    best = next(e for e in log if e["step"] == m["best_step"])
    for k in ("loss", "id_nll", "dt_nll"):
        assert m[f"validation/{k}"] == best[f"validation/{k}"] == again[f"validation/{k}"], k


def test_a_resume_with_another_seed_warmup_or_clipping_records_the_steps_each_ran_with(rec, finished_run, tmp_path):
    # warmup_ratio and max_grad_norm (and, between epochs, seed) changed by a resume were warned about and used,
    # but training_stretches recorded only the precision / compile / attention settings: the steps' own settings
    # were lost once training_config.json held the last run's. Each stretch records them now (this checkpoint
    # stopped inside an epoch, so its seed may not change: refused, tested elsewhere)
    import shutil

    out = tmp_path / "m"
    shutil.copytree(finished_run, out)
    tc = TrainingConfig(max_steps=3, batch_size=16, save_every=2, warmup_ratio=0.2, max_grad_norm=0.5,
                        generate_test=False)
    with pytest.warns(UserWarning, match="max_grad_norm"):
        m = train(rec, out, nf.NeuroformerConfig(**TINY), tc, progress=False, resume=True, write_figures=False)
    assert [(r["from_step"], r["to_step"], r["seed"], r["warmup_ratio"], r["max_grad_norm"])
            for r in m["training_stretches"]] == [(1, 2, 0, 0.05, 1.0), (3, 3, 0, 0.2, 0.5)]
    assert m["mixed_precision"] == "no"  # one precision throughout: still said once


def test_the_running_training_loss_is_bias_corrected():
    """Break test: ``train_loss`` (and the progress bar's loss) was an exponential mean started at step
    1's loss, so after 3 steps step 1 had 0.9025 of the weight. Now it is divided by ``1 - 0.95**n``
    (Adam's bias correction, Kingma & Ba 2015, section 3): each step weighs ``0.05 * 0.95**(n - k) /
    (1 - 0.95**n)``, so equal losses give that loss and the weights sum to 1."""
    from hf_neuroformer.training import RUNNING_LOSS_WEIGHT, running_loss

    losses = [6.0, 3.0, 2.0]
    value, values = None, []
    for n, loss in enumerate(losses, start=1):
        value = running_loss(value, loss, n)
        values.append(value)
    beta = 1 - RUNNING_LOSS_WEIGHT
    for n in (1, 2, 3):
        weights = np.array([RUNNING_LOSS_WEIGHT * beta ** (n - k) for k in range(1, n + 1)]) / (1 - beta ** n)
        assert weights.sum() == pytest.approx(1.0)
        assert values[n - 1] == pytest.approx(float(weights @ np.array(losses[:n])), rel=1e-12)
    assert values[0] == 6.0 and values[2] < 4.0  # uncorrected: 0.9025 * 6 + ... = 5.8
    same = None
    for n in range(1, 50):
        same = running_loss(same, 2.5, n)
    assert same == pytest.approx(2.5, rel=1e-12)
    assert math.isnan(running_loss(values[-1], float("nan"), 4))  # a diverged step is carried on
    with pytest.raises(ValueError, match=r"^n: expected a step number >= 1, got 0$"):
        running_loss(None, 1.0, 0)
    with pytest.raises(ValueError, match=r"^previous: the running loss after step 1 is needed at step 2, got None$"):
        running_loss(None, 1.0, 2)
    with pytest.raises(ValueError, match=r"^weight: expected a value in \(0, 1\], got 0$"):
        running_loss(None, 1.0, 1, weight=0)


_CLI_KILLED_AT_STEP = '''
import os, signal, sys

import hf_neuroformer.training as training
from hf_neuroformer.cli import main

real_save, kill_at = training._save_checkpoint, int(sys.argv[1])


def save_then_killed(accelerator, root, step, *args, **kwargs):
    real_save(accelerator, root, step, *args, **kwargs)
    if step == kill_at:  # SIGKILL once the checkpoint of that step is whole
        os.kill(os.getpid(), signal.SIGKILL)


training._save_checkpoint = save_then_killed
sys.exit(main(sys.argv[2:]))
'''


def _tiny_yaml(path, hidden_size):
    tiny = {**TINY, "hidden_size": hidden_size, "intermediate_size": 2 * hidden_size}
    path.write_text("".join(f"{k}: {v}\n" for k, v in tiny.items())
                    + "training:\n  generate_test: false\n  eval_batch_size: 512\n  save_total_limit: 1\n")
    return path


def _cli_run(tmp_path, args, kill_at=0, timeout=180):
    """`neuroformer train ARGS` (the built-in recording) in a subprocess, SIGKILLed after the checkpoint
    of step ``kill_at`` is written (0: never)."""
    import os
    import subprocess
    import sys

    script = tmp_path / "killed_cli.py"
    script.write_text(_CLI_KILLED_AT_STEP)
    return subprocess.run([sys.executable, str(script), str(kill_at), "train", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"})


def test_an_overwrite_killed_midway_keeps_the_old_model_and_records_the_run(finished_run, tmp_path):
    """Break test: `train --overwrite` of a hidden-16 run's folder with a hidden-32 run, SIGKILLed at step 3.
    It first left the old model beside the new run's checkpoints without a word; then the old model was
    deleted before the new run started, so a killed (or failed) overwrite lost the user's model. The old
    model now stays whole until the new one is saved over it, and train_unfinished.json says which files
    are whose: load_pretrained warns with it, and the run can be resumed; a file of the user's stays."""
    import shutil
    import signal

    from hf_neuroformer.generation import load_pretrained
    from hf_neuroformer.run_record import UNFINISHED_TRAIN
    from hf_neuroformer.training import CHECKPOINT_DIR, check_resume, model_files_in

    out = tmp_path / "run"
    shutil.copytree(finished_run, out)  # hidden_size 16
    old = {name: (out / name).read_bytes() for name in model_files_in(out)}
    assert json.loads((out / "config.json").read_text())["hidden_size"] == 16
    (out / "notes.txt").write_text("mine")
    killed = _cli_run(tmp_path, ["--config", str(_tiny_yaml(tmp_path / "h32.yaml", 32)), "--output-dir", str(out),
                                 "--max-steps", "50", "--batch-size", "16", "--save-every", "1", "--overwrite"],
                      kill_at=3)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert {name: (out / name).read_bytes() for name in model_files_in(out)} == old  # the hidden-16 model, whole
    assert [p.name for p in (out / CHECKPOINT_DIR).glob("step-*")] == ["step-00000003"]  # the old step-2 deleted
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == sorted([*old, CHECKPOINT_DIR, "notes.txt", RUN_LOCK, UNFINISHED_TRAIN])
    record = json.loads((out / UNFINISHED_TRAIN).read_text())
    assert record["run"] == "train" and record["checkpoints_before"] == [] and record["model_files_before"] == list(old)
    with pytest.warns(UserWarning, match=r"--model: a training run into .*run' \(started 20.*, pid \d+, on host .*\) "
                                         r"has not saved its model \(train_unfinished.json is there.*the model files "
                                         r"there are the ones saved before it, left whole; .*checkpoints' holds that "
                                         r"run's 1 checkpoint \('step-00000003'\), not that model's\. Resume it"):
        model, _, _ = load_pretrained(out)
    assert model.config.hidden_size == 16
    assert check_resume(out, TrainingConfig(max_steps=4)) is None  # the hidden-32 run goes on from step 3


def test_an_overwrite_stopped_after_its_first_step_keeps_the_old_model_until_its_resumed_run_saves(
        rec, finished_run, tmp_path):
    """train(overwrite=True) into a folder holding a finished run's model, stopped by its on_step_end
    callback after step 1 (checkpointed, as a run killed there): the old model is byte for byte as it was
    and loads with the same weights, beside train_unfinished.json naming the run and its checkpoint.
    resume=True continues it (the record still counts step 1 as the run's while it trains) and its save
    replaces the model and removes the record in one transaction. A run stopped before its first
    checkpoint removes the record it wrote, leaving the old model alone."""
    import os
    import shutil

    from safetensors.torch import load_file

    from hf_neuroformer.generation import load_pretrained
    from hf_neuroformer.run_record import UNFINISHED_TRAIN
    from hf_neuroformer.training import CHECKPOINT_DIR, model_files_in

    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    old = {name: (out / name).read_bytes() for name in model_files_in(out)}
    old_weights = load_file(out / "model.safetensors")
    cfg = nf.NeuroformerConfig(**TINY)
    tc = TrainingConfig(max_steps=2, batch_size=16, save_every=1, seed=7, generate_test=False)
    seen = {}

    def stop(step, loss):
        seen["record"] = json.loads((out / UNFINISHED_TRAIN).read_text())
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # before its first checkpoint: nothing of the run is left
        train(rec, out, cfg, dataclasses.replace(tc, save_every=None), progress=False, overwrite=True, on_step_end=stop,
              write_figures=False)
    assert seen["record"]["run"] == "train" and seen["record"]["model_files_before"] == list(old)
    assert {p.name for p in out.iterdir()} == {*old}  # the old run's checkpoints deleted, its model whole
    assert {name: (out / name).read_bytes() for name in old} == old

    with pytest.raises(KeyboardInterrupt):
        train(rec, out, cfg, tc, progress=False, overwrite=True, on_step_end=stop, write_figures=False)
    assert {name: (out / name).read_bytes() for name in model_files_in(out)} == old
    assert [p.name for p in (out / CHECKPOINT_DIR).iterdir()] == ["step-00000001"]
    record = json.loads((out / UNFINISHED_TRAIN).read_text())
    assert record["run"] == "train" and record["pid"] == os.getpid()
    assert record["checkpoints_before"] == [] and record["model_files_before"] == list(old)
    with pytest.warns(UserWarning, match=r"has not saved its model .*holds that run's 1 checkpoint "
                                         r"\('step-00000001'\), not that model's"):
        model, _, _ = load_pretrained(out)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in old_weights.items())

    seen.clear()
    train(rec, out, cfg, tc, progress=False, resume=True, write_figures=False,
          on_step_end=lambda step, loss: seen.setdefault("record", json.loads((out / UNFINISHED_TRAIN).read_text())))
    assert seen["record"]["resumed_from"] == "step-00000001" and seen["record"]["checkpoints_before"] == []
    assert not (out / UNFINISHED_TRAIN).exists()
    assert json.loads((out / "metrics.json").read_text())["total_steps"] == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model, _, _ = load_pretrained(out)
    new_weights = load_file(out / "model.safetensors")
    assert any(not torch.equal(new_weights[k], v) for k, v in old_weights.items())
    assert all(torch.equal(model.state_dict()[k], v) for k, v in new_weights.items())


RUN_LOCK = ".neuroformer-run.lock"  # named here, so that the tests run (and fail) on code without it


def _lock_of(out, pid):
    import socket

    out.mkdir(parents=True, exist_ok=True)
    (out / RUN_LOCK).write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "command": "train"}))
    return out / RUN_LOCK


def test_a_second_run_into_a_folder_in_use_fails_at_once(tmp_path, capsys):
    """Break test: two runs into one output dir were not prevented, and each run's checkpoint save removed
    every .tmp-step-* there, the other run's checkpoint being written included. A run holds a lock file
    (pid, host); a second `neuroformer train` (with --overwrite too) fails before it writes anything,
    naming the folder, the other run's pid and how to clear a stale lock."""
    import subprocess

    from hf_neuroformer.cli import main

    out = tmp_path / "run"
    other = subprocess.Popen(["sleep", "60"])  # a live process holding the folder's lock
    try:
        lock = _lock_of(out, other.pid)
        held = lock.read_text()
        for extra in ([], ["--overwrite"]):
            assert main(["train", "--output-dir", str(out), "--max-steps", "1", "--batch-size", "8",
                         "--no-test-generation", *extra]) == 2
            err = capsys.readouterr().err
            assert str(out) in err and f"pid {other.pid}" in err and "in use by another neuroformer run" in err, err
            assert "delete the lock file" in err, err
            assert sorted(p.name for p in out.iterdir()) == [lock.name] and lock.read_text() == held
    finally:
        other.kill()
        other.wait()


def test_a_stale_lock_of_a_killed_run_is_taken_over(rec, tmp_path, capsys):
    """A lock whose run is no longer running (killed: its pid is gone) is taken over, saying so, and the
    run's own lock is removed when it ends."""
    import subprocess

    gone = subprocess.Popen(["true"])
    gone.wait()
    out = tmp_path / "run"
    _lock_of(out, gone.pid)
    train(rec, out, nf.NeuroformerConfig(**TINY), TrainingConfig(max_steps=1, batch_size=16, generate_test=False),
          progress=False, write_figures=False)
    said = capsys.readouterr().out
    assert f"taking over the lock {str(out / RUN_LOCK)!r} of run pid {gone.pid}, which is no longer running" in said
    assert (out / "model.safetensors").is_file() and not (out / RUN_LOCK).exists()


def test_a_failed_run_removes_its_lock_and_the_folder_it_made(rec, tmp_path):
    """The lock is released when a run fails, and the output folder the run created is removed again when
    nothing else was written there (a retry is not refused as 'in use')."""
    from hf_neuroformer.training import output_dir_lock

    out = tmp_path / "new" / "run"
    with pytest.raises(RuntimeError, match="stopped"), output_dir_lock(out) as lock:
        assert lock.is_file()
        raise RuntimeError("stopped")
    assert not (tmp_path / "new").exists()


def test_a_test_generation_batch_too_large_for_memory_is_refused_before_training(rec, tmp_path):
    """generate_spikes refuses a batch whose memory estimate exceeds half of the machine's: train, which
    generates the test split after training, checks training.generation_batch_size before any step, so
    that a run is not lost to the refusal at its end (current windows of max_window_length=20000 tokens: GiB
    a row). The pasts are charged the longest of the test windows in this recording, not max_past_length: a
    max_past_length of 20000 (GiB a row at full pasts) was refused on this recording, whose pasts hold a few
    spikes, and now trains."""
    from hf_neuroformer.stimuli import _memory_bytes

    if _memory_bytes() is None:
        pytest.skip("this OS does not report its physical memory: nothing is checked")
    small = dict(current_window=0.1, past_window=0.3, dt_resolution=0.02, hidden_size=16, num_attention_heads=2,
                 intermediate_size=32, split_block_length=5.0)
    cfg = nf.NeuroformerConfig(**small, max_window_length=20000, max_past_length=32)
    with pytest.raises(ValueError, match=r"^training\.generation_batch_size: a batch of \d+ rows \(window x sample\) "
                                         r"needs up to about [\d.]+ GiB .*; (use a batch size of at most \d+|not even one row fits.*)$"):
        train(rec, tmp_path / "m", cfg, TrainingConfig(max_steps=1, batch_size=8), progress=False,
              write_figures=False)
    assert not (tmp_path / "m").exists()
    from hf_neuroformer.generation import generation_row_bytes

    long_past = nf.NeuroformerConfig(**small, max_window_length=16, max_past_length=20000)
    assert 256 * generation_row_bytes(long_past) > _memory_bytes()  # refused at full pasts
    train(rec, tmp_path / "p", long_past, TrainingConfig(max_steps=1, batch_size=8), progress=False,
          write_figures=False)
    assert "test/id_f1" in json.loads((tmp_path / "p" / "metrics.json").read_text())  # the test split was generated
