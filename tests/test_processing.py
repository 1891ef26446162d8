"""NeuroformerProcessor: AutoProcessor on a saved model, the same tensors as training's windows,
the model's loss from ``model(**processor(...))``, save / reload, and the errors."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoModelForPreTraining, AutoProcessor

import hf_neuroformer as nf
from hf_neuroformer.processing_neuroformer import TruncatedWindowsWarning
from hf_neuroformer.windows import NeuroformerCollator, build_window_datasets, trial_at
from tiny_configs import quiet, untrained_model

A2929 = "pynapple_A2929_headdirection/A2929-200711.nwb"
# head direction as a circular input, and a categorical label of 20-s blocks (fitted classes)
HEAD_DIRECTION = {"name": "head_direction", "source": "behaviour:ry", "kind": "continuous",
                  "normalization": "circular", "bin_size": 0.05}


@pytest.fixture(scope="module")
def a2929(shared_data):
    from hf_neuroformer.io import load_recording

    return quiet(load_recording, shared_data(A2929), epoch="wake").restrict(700.0, 820.0)


@pytest.fixture(scope="module")
def saved(a2929, tmp_path_factory):
    """A model with a head-direction input, saved as ``train`` saves one (no processor_config.json),
    and its window datasets."""
    config = nf.NeuroformerConfig(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=48,
                                  max_past_length=96, hidden_size=32, num_attention_heads=2, num_hidden_layers=1,
                                  intermediate_size=64, hidden_dropout=0.0, split_block_length=10.0,
                                  modalities=[dict(HEAD_DIRECTION)])
    tok, model = untrained_model(a2929, config)
    data, plan = build_window_datasets(a2929, tok, config)  # fits the modality statistics into config
    model.config.modalities = config.modalities
    out = tmp_path_factory.mktemp("run")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out, data, model


def test_auto_processor_gives_the_training_tensors_and_loss(a2929, saved):
    out, data, model = saved
    assert not (out / "processor_config.json").exists()
    processor = AutoProcessor.from_pretrained(out)
    assert isinstance(processor, nf.NeuroformerProcessor)
    # the modality specifications come from config.json, fitted statistics included
    assert processor.modalities == json.loads((out / "config.json").read_text())["modalities"]
    assert processor.modalities[0]["name"] == "head_direction"
    test = data["test"]
    rows = [test[i] for i in range(len(test))]
    expected = NeuroformerCollator(0, 1, 2, model.config.modalities)(rows)
    got = processor(a2929, test["window_start"], test["past_clip_start"])
    assert set(got) == set(expected)
    for k, v in expected.items():
        if k == "modality_inputs":
            assert set(got[k]) == {"head_direction"}
            for kk, vv in v["head_direction"].items():
                assert torch.equal(got[k]["head_direction"][kk], vv), kk
        else:
            assert torch.equal(got[k], v), k
    assert got["modality_inputs"]["head_direction"]["mask"].any()  # the input was really read
    reloaded = AutoModelForPreTraining.from_pretrained(out).eval()
    with torch.no_grad():
        loss = reloaded(**got).loss
        ref = reloaded(**expected).loss
    assert torch.isfinite(loss) and loss.item() == pytest.approx(ref.item(), abs=1e-6)
    # a window's loss depends on its own spikes: two other windows give another loss
    with torch.no_grad():
        other = reloaded(**processor(a2929, test["window_start"][:2])).loss
    assert other.item() != pytest.approx(loss.item(), abs=1e-4)


def test_save_and_reload_keep_vocabulary_and_modalities(saved, tmp_path):
    out, _, model = saved
    processor = nf.NeuroformerProcessor.from_pretrained(out)
    processor.save_pretrained(tmp_path / "p")
    written = json.loads((tmp_path / "p" / "processor_config.json").read_text())
    assert written["modalities"] == model.config.modalities
    again = AutoProcessor.from_pretrained(tmp_path / "p")  # no config.json there: processor_config.json
    assert isinstance(again, nf.NeuroformerProcessor)
    assert again.modalities == model.config.modalities
    assert again.tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    assert (again.tokenizer.current_window, again.tokenizer.past_window) == (0.1, 0.3)


def test_config_json_is_the_models_word(saved, tmp_path):
    """A processor saved into a run directory, then ``train --overwrite`` with other modalities in
    the same directory: the old processor_config.json stayed beside the new config.json and gave
    the old modalities (another window, other statistics or classes) without a word. And a
    directory without tokenizer files gave a processor with an empty vocabulary and default
    windows."""
    import shutil

    out, _, model = saved
    run = tmp_path / "run"
    shutil.copytree(out, run)
    stale = nf.NeuroformerProcessor.from_pretrained(run)
    stale.modalities[0]["window"] = [0.0, 0.05]  # what an earlier run in this directory had
    stale.save_pretrained(run)
    with pytest.warns(UserWarning, match="processor_config.json holds other modalities than config.json"):
        processor = AutoProcessor.from_pretrained(run)
    assert processor.modalities == model.config.modalities
    # saving the processor into the run directory keeps the tokenizer loadable
    assert nf.NeuroformerTokenizer.from_pretrained(run).get_vocab() == processor.tokenizer.get_vocab()
    # a processor_config.json saved before a modality key existed (frame_interval) holds the same modalities:
    # the key it lacks is the default None, no stale file to warn of
    older = tmp_path / "older"
    shutil.copytree(out, older)
    nf.NeuroformerProcessor.from_pretrained(older).save_pretrained(older)
    saved_processor = json.loads((older / "processor_config.json").read_text())
    for m in saved_processor["modalities"]:
        del m["frame_interval"]
    (older / "processor_config.json").write_text(json.dumps(saved_processor))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert AutoProcessor.from_pretrained(older).modalities == model.config.modalities

    bare = tmp_path / "no-tokenizer"
    bare.mkdir()
    shutil.copy(out / "config.json", bare / "config.json")
    with pytest.raises(OSError, match="no vocab.json"):
        AutoProcessor.from_pretrained(bare)
    other = tmp_path / "other-vocabulary"
    shutil.copytree(out, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["vocab_size"] += 5
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="not the model's tokenizer"):
        AutoProcessor.from_pretrained(other)


def _saved_decoder(saved, folder):
    """An untrained head-direction decoder of ``saved``'s model, saved with its tokenizer in ``folder``
    as ``neuroformer finetune`` saves one."""
    out, _, model = saved
    config = nf.NeuroformerConfig.from_dict({**model.config.to_dict(),
                                             "decoding_targets": [{"name": "ry", "kind": "circular"}]})
    torch.manual_seed(0)
    decoder = nf.NeuroformerForBehaviorDecoding(config).eval()
    decoder.save_pretrained(folder)
    nf.NeuroformerTokenizer.from_pretrained(out).save_pretrained(folder)
    return decoder


def test_decoder_and_base_model_take_the_inputs(a2929, saved, tmp_path):
    """A fine-tuned decoder (``neuroformer finetune`` directory) reads ``labels`` as its behaviour
    targets: ``decoder(**processor(...))`` failed on the next-spike labels ("labels: expected
    (batch, n_targets) = (2, 1) ... got (2, 3)"). NeuroformerModel (AutoModel) takes no labels."""
    out = saved[0]
    decoder = _saved_decoder(saved, tmp_path)
    processor = AutoProcessor.from_pretrained(tmp_path)
    assert processor.decoding
    inputs = processor(a2929, [750.0, 750.1])
    assert "labels" not in inputs
    reference = AutoProcessor.from_pretrained(out)(a2929, [750.0, 750.1])
    assert torch.equal(inputs["token_labels"], reference["labels"])
    with torch.no_grad():
        pred = decoder(**inputs)
        scored = decoder(**inputs, labels=torch.tensor([[0.5], [1.0]]))
    assert pred.predictions.shape == (2, 1) and pred.loss is None and torch.isfinite(scored.loss)
    # saved alone (no config.json), the processor keeps knowing it serves a decoder
    processor.save_pretrained(tmp_path / "alone")
    assert AutoProcessor.from_pretrained(tmp_path / "alone").decoding
    # the backbone: no labels
    base = AutoModel.from_pretrained(out).eval()
    bare = AutoProcessor.from_pretrained(out)(a2929, [750.0, 750.1], return_labels=False)
    assert "labels" not in bare and "dt_labels" not in bare
    with torch.no_grad():
        assert base(**bare).last_hidden_state.shape[:2] == bare["input_ids"].shape

def test_from_config_checks_the_tokenizer(a2929):
    config = nf.NeuroformerConfig(current_window=0.1, past_window=0.3, dt_resolution=0.01, hidden_size=32,
                                  num_attention_heads=2, num_hidden_layers=1, intermediate_size=64)
    tok, _ = untrained_model(a2929, config)
    processor = nf.NeuroformerProcessor.from_config(tok, config)
    assert processor.modalities == []
    with pytest.raises(ValueError, match="current_window"):
        nf.NeuroformerProcessor.from_config(tok, nf.NeuroformerConfig(current_window=0.2, past_window=0.3,
                                                                       dt_resolution=0.01,
                                                                       vocab_size=config.vocab_size))


def test_a_copy_of_the_tokenizer_class_from_elsewhere_is_named_by_its_module():
    """A NeuroformerTokenizer of a second copy of the module (what AutoTokenizer's remote code gives where the
    tokenizer is loaded before hf_neuroformer is imported) was refused as 'expected a NeuroformerTokenizer, got
    NeuroformerTokenizer': the message now names both modules and says what to do."""
    import importlib
    import os
    import sys
    import types

    import hf_neuroformer.tokenization_neuroformer as installed
    package = types.ModuleType("copied_remote_code")  # the package's files under another name, as remote code is
    package.__path__ = [os.path.dirname(installed.__file__)]
    sys.modules["copied_remote_code"] = package
    try:
        copy = importlib.import_module("copied_remote_code.tokenization_neuroformer")
        tok = copy.NeuroformerTokenizer(unit_tokens=["s/0", "s/1"])
        assert type(tok) is not nf.NeuroformerTokenizer
        with pytest.raises(TypeError, match=r"got copied_remote_code\.tokenization_neuroformer\.NeuroformerTokenizer "
                                            r"\(a copy of the class .* import hf_neuroformer first"):
            nf.NeuroformerProcessor(tok)
    finally:
        for name in [n for n in sys.modules if n == "copied_remote_code" or n.startswith("copied_remote_code.")]:
            del sys.modules[name]


def test_bad_input_names_the_field(a2929, saved):
    processor = AutoProcessor.from_pretrained(saved[0])
    with pytest.raises(TypeError, match="recording: expected a SpikeRecording"):
        processor(np.zeros(3), [750.0])
    with pytest.raises(ValueError, match=r"window_starts: expected at least one window start \(s\), got none"):
        processor(a2929, [])
    with pytest.raises(ValueError, match=r"window_starts: expected finite times \(s\), window 1 starts at nan"):
        processor(a2929, [750.0, float("nan")])
    with pytest.raises(ValueError, match="past_clip_starts: expected one value per window"):
        processor(a2929, [750.0, 751.0], [700.0])
    with pytest.raises(ValueError, match="past_clip_starts: index 0 is 751.0 s, after its window start"):
        processor(a2929, [750.0], [751.0])
    with pytest.raises(ValueError, match="return_tensors: only 'pt'"):
        processor(a2929, [750.0], return_tensors="np")
    with pytest.raises(ValueError, match="return_labels: expected True or False, got 'no'"):
        processor(a2929, [750.0], return_labels="no")  # truthy: the labels came back
    with pytest.raises(TypeError, match="tokenizer: expected a NeuroformerTokenizer"):
        nf.NeuroformerProcessor(None)
    # a recording whose units the vocabulary lacks
    with pytest.raises(nf.UnknownUnitError):
        processor(dataclasses.replace(a2929, session="another-session"), [750.0])
    # a recording without the modality's source
    with pytest.raises(ValueError, match="ry"):
        processor(dataclasses.replace(a2929, behaviour={}), [750.0])


def test_float32_window_starts_are_refused_not_widened(a2929, saved):
    """Break test: processor(rec, np.float32([700.05])) widened the start to 700.0499877929688 s
    without a word (12 µs before the 1 ns window grid's 700.05 s, so a spike at 700.05 s fell out of
    the window); float32 / float16 starts and clip starts are refused with the float64 hint."""
    import torch

    processor = AutoProcessor.from_pretrained(saved[0])
    with pytest.raises(ValueError, match=r"^window_starts: expected float64 times \(s\), got float32, which rounds "
                                         r"times of up to 700\.05 s by as much as 30\.5 µs, across window and bin "
                                         r"edges; e\.g\. window 0: 700\.05 as float32 is 700\.0499877929688 s, "
                                         r"12\.2 µs off; pass float64 times"):
        processor(a2929, np.float32([700.05]))
    with pytest.raises(ValueError, match=r"^window_starts: expected float64 times \(s\), got float32"):
        processor(a2929, torch.tensor([750.0]))  # a torch tensor's default dtype
    with pytest.raises(ValueError, match=r"^past_clip_starts: expected float64 times \(s\), got float16"):
        processor(a2929, [750.0], np.float16([740.0]))
    assert processor(a2929, np.float64([700.05]))["input_ids"].shape[0] == 1


def test_a_float32_start_in_a_list_of_floats_is_refused_as_when_alone(a2929, saved):
    """Break test: ``processor(rec, [np.float32(700.05)])`` was refused, but the same start batched
    with a Python float, ``[750.0, np.float32(700.05)]``, was accepted: ``np.asarray`` widened the
    list to float64, keeping the float32 rounding (700.0499877929688 s, off the window grid) without a
    word. A float32 item (numpy scalar or 0-d tensor) among float64 ones is refused, naming it."""
    import torch

    processor = AutoProcessor.from_pretrained(saved[0])
    with pytest.raises(ValueError, match=r"^window_starts: expected float64 times \(s\), got float32"):
        processor(a2929, [np.float32(700.05)])
    for mixed in ([750.0, np.float32(700.05)], (750.0, torch.tensor(700.05))):
        with pytest.raises(ValueError, match=r"^window_starts: expected float64 times \(s\), got float32 items \(1 of "
                                             r"2\) among float64 ones, .*; e\.g\. window 1: 700\.05 as float32 is "
                                             r"700\.0499877929688 s"):
            processor(a2929, mixed)
    with pytest.raises(ValueError, match=r"^past_clip_starts: expected float64 times \(s\), got float32 items"):
        processor(a2929, [750.0, 760.0], [np.nan, np.float32(740.05)])
    # float64 items (numpy, torch) beside Python floats are the same windows as the float64 array
    same = processor(a2929, [750.0, np.float64(700.05), torch.tensor(760.0, dtype=torch.float64)])
    ref = processor(a2929, np.array([750.0, 700.05, 760.0]))
    assert all(torch.equal(same[k], ref[k]) for k in ref if torch.is_tensor(ref[k]))


def test_windows_outside_the_recorded_time_are_refused(a2929, saved, shared_data):
    """A window after the recording's end, before its start, or in a gap of its time support was
    tokenized as an empty window (BOS, EOS) and scored as silence."""
    from hf_neuroformer.io import load_recording

    processor = AutoProcessor.from_pretrained(saved[0])
    lo, hi = a2929.time_domain  # (700, 820) s
    with pytest.raises(ValueError, match=r"window_starts: index 1, window \[5000.0, 5000.1\) s, is not inside"):
        processor(a2929, [750.0, 5000.0])
    with pytest.raises(ValueError, match="window_starts: index 0"):
        processor(a2929, [lo - 0.05])
    with pytest.raises(ValueError, match="window_starts: index 0"):
        processor(a2929, [hi - 0.05])  # ends 50 ms after the recording
    processor(a2929, [lo, hi - 0.1])  # the first and the last whole window are fine
    # the sleep ripples epoch: 594 intervals with gaps between them
    ripples = quiet(load_recording, shared_data(A2929), epoch="sleep_ripples")
    tok = nf.NeuroformerTokenizer(current_window=0.05, past_window=0.25, dt_resolution=0.005)
    tok.add_units(ripples)
    by_ripples = nf.NeuroformerProcessor(tok)
    (a, b), (c, _) = ripples.time_support[:2]
    assert len(by_ripples(ripples, [a])["input_ids"]) == 1
    with pytest.raises(ValueError, match="time support"):
        by_ripples(ripples, [(b + c) / 2])

def test_truncated_windows_are_counted(a2929):
    config = nf.NeuroformerConfig(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=3,
                                  max_past_length=2, hidden_size=32, num_attention_heads=2, num_hidden_layers=1,
                                  intermediate_size=64)
    tok, _ = untrained_model(a2929, config)
    processor = nf.NeuroformerProcessor.from_config(tok, config)
    starts = np.arange(750.0, 752.0, 0.1)
    cols = processor.tokenize(a2929, starts)
    n_cur = int(np.sum(np.asarray(cols["n_spikes"]) > 1))
    assert n_cur > 0  # the recording is dense enough for the check to mean something
    with pytest.warns(TruncatedWindowsWarning, match=rf"{n_cur} of {len(starts)} windows held more spikes"):
        batch = processor(a2929, starts)
    full = np.asarray(cols["n_spikes"]) > 1
    # a truncated window is BOS and its first spike, without EOS (the window goes on)
    assert batch["attention_mask"][full].sum(1).tolist() == [2] * n_cur
    assert not (batch["input_ids"][full] == processor.tokenizer.eos_token_id).any()
    assert (batch["past_attention_mask"].sum(1) <= 2).all()



def test_to_dataset_warns_of_the_windows_it_cut_as_the_processor_call_does(a2929):
    """``processor.to_dataset`` (the windows a ``transformers.Trainer`` trains or evaluates on) cut
    windows to max_window_length / max_past_length and said nothing: only its ``n_truncated`` /
    ``n_past_truncated`` columns counted them (GUIDE trap 10). It now warns as ``processor(...)``
    does, with the counts of those columns, pointing at its caller."""
    config = nf.NeuroformerConfig(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=12,
                                  max_past_length=256, hidden_size=32, num_attention_heads=2, num_hidden_layers=1,
                                  intermediate_size=64)
    tok, _ = untrained_model(a2929, config)
    processor = nf.NeuroformerProcessor.from_config(tok, config)
    starts = np.arange(750.0, 752.0, 0.1)
    n_spikes = np.asarray(processor.tokenize(a2929, starts)["n_spikes"])
    n_cut = int((n_spikes > 10).sum())
    assert 0 < n_cut < len(starts)  # some windows hold more than the 10 spikes of the block, not all
    with pytest.warns(TruncatedWindowsWarning) as caught:
        ds = processor.to_dataset(a2929, starts)
    said = [w for w in caught if w.category is TruncatedWindowsWarning]
    assert len(said) == 1 and said[0].filename == __file__, [(w.filename, str(w.message)) for w in said]
    n_trunc = np.asarray(ds["n_truncated"])
    assert int((n_trunc > 0).sum()) == n_cut and int(n_trunc.sum()) == int(np.maximum(n_spikes - 10, 0).sum())
    assert str(said[0].message).startswith(f"{n_cut} of {len(starts)} windows held more spikes than "
                                           f"max_window_length - 2 = 10 ({int(n_trunc.sum())} spikes left out")
    # windows that fit their blocks: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncatedWindowsWarning)
        processor.to_dataset(a2929, starts[n_spikes <= 10][:3])


ALLEN = "allen_vcn_gratings"
ORIENTATION = {"name": "orientation", "source": "trial:orientation_deg", "kind": "categorical",
               "window": [-0.02, 0.01]}


@pytest.fixture(scope="module")
def allen_trials(shared_data):
    """100 Allen units in trial mode (past clipped at each trial's start) with the grating
    orientation as a categorical input: recording, fitted config, tokenizer, windows, plan."""
    from hf_neuroformer.io import read_allen_gratings

    rec = read_allen_gratings(shared_data(ALLEN)).select_units(range(100))
    # 100-ms trials 100 ms apart: a 150-ms past window reaches into the trial before unless clipped
    config = nf.NeuroformerConfig(current_window=0.01, past_window=0.15, dt_resolution=0.002, max_window_length=64,
                                  max_past_length=256, hidden_size=32, num_attention_heads=2, num_hidden_layers=1,
                                  intermediate_size=64, hidden_dropout=0.0, split_by="trials",
                                  modalities=[dict(ORIENTATION)])
    tok = nf.NeuroformerTokenizer.from_config(config)
    tok.add_units(rec)
    config.vocab_size = len(tok)
    data, plan = build_window_datasets(rec, tok, config)  # fits the orientation classes into config
    return rec, config, tok, data, plan


def test_trial_mode_windows_are_the_training_windows(allen_trials):
    """Trial starts such as 2.8000000000000003 s clip windows that start at 2.8 s (window starts
    lie on the 1 ns grid): the processor took that for a clip after the window and refused the
    split's own windows."""
    rec, config, tok, data, plan = allen_trials
    assert plan.mode == "trials"
    test = data["test"]
    clips, starts = np.asarray(test["past_clip_start"]), np.asarray(test["window_start"])
    assert (clips > starts).any()  # the case: a clip a hair after its window's start
    processor = nf.NeuroformerProcessor.from_config(tok, config)
    got = processor(rec, starts, clips)
    expected = processor.collator([test[i] for i in range(len(test))])
    for k in ("input_ids", "dt_ids", "past_input_ids", "past_attention_mask", "labels", "dt_labels"):
        assert torch.equal(got[k], expected[k]), k
    assert torch.equal(got["modality_inputs"]["orientation"]["ids"], expected["modality_inputs"]["orientation"]["ids"])
    # "trials": each window clipped at its trial's start, as training did; without a clip the past
    # reads the trial before
    assert all(torch.equal(processor(rec, starts, "trials")[k], got[k]) for k in got if k != "modality_inputs")
    unclipped = processor(rec, starts, None)
    assert unclipped["past_attention_mask"].sum() > got["past_attention_mask"].sum()
    with pytest.raises(ValueError, match="past_clip_starts='trials': the recording has no trials"):
        processor(dataclasses.replace(rec, trials=None, trial_info={}), starts, "trials")
    # a clip after the window by more than the grid is still refused
    with pytest.raises(ValueError, match="past_clip_starts: index 0"):
        processor(rec, starts[:1], starts[:1] + 1e-6)


def test_truncated_modality_tokens_are_counted(a2929):
    """Head direction at 120 Hz gives ~12 samples per 100-ms window; with max_tokens 4 the earliest
    8 of each window were dropped without a word (training prints them, the processor did not)."""
    config = nf.NeuroformerConfig(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=48,
                                  max_past_length=96, modalities=[{**HEAD_DIRECTION, "bin_size": None, "max_tokens": 4}])
    tok = nf.NeuroformerTokenizer.from_config(config)
    tok.add_units(a2929)
    config.vocab_size = len(tok)
    processor = nf.NeuroformerProcessor.from_config(tok, config)
    starts = [750.0, 750.1, 750.2]
    dropped = processor.tokenize(a2929, starts)["mod_head_direction_n_truncated"]
    assert min(dropped) > 0
    with pytest.warns(TruncatedWindowsWarning, match=rf"modality 'head_direction': 3 of 3 windows held tokens beyond "
                                                      rf"max_tokens = 4 \({sum(dropped)} left out, the earliest\)"):
        batch = processor(a2929, starts)
    assert batch["modality_inputs"]["head_direction"]["mask"].sum(1).tolist() == [4, 4, 4]


def _zheng_trials(shared_data, start: float, stop: float):
    """Zheng 2022 (human MTL) between ``start`` and ``stop`` s (trials with recorded time between
    them, so a past window can cross a trial start) and a tiny config planned by trials."""
    from hf_neuroformer.io import load_recording

    rec = quiet(load_recording, shared_data("zheng2022_human_mtl/sub-4_ses-4_ecephys+image.nwb")).restrict(start, stop)
    config = nf.NeuroformerConfig(current_window=0.1, past_window=0.5, dt_resolution=0.01, max_window_length=64,
                                  max_past_length=256, hidden_size=32, num_attention_heads=2, num_hidden_layers=1,
                                  intermediate_size=64, split_by="trials")
    return rec, config


def test_trial_mode_model_clips_the_past_at_trial_starts_by_default(shared_data, tmp_path):
    """A model planned by trials saw each window's past clipped at its trial's start; the processor
    reads that from splits.json and does the same unless told otherwise (a new user left
    past_clip_starts out and scored 21 % more past tokens than training did, without a word)."""
    rec, config = _zheng_trials(shared_data, 0.0, 200.0)
    tok, model = untrained_model(rec, config)
    data, plan = build_window_datasets(rec, tok, config)
    assert plan.mode == "trials"
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    (tmp_path / "splits.json").write_text(json.dumps(plan.to_dict()))
    processor = AutoProcessor.from_pretrained(tmp_path)
    assert processor.split_mode == "trials"
    test = data["test"]
    rows = [test[i] for i in range(len(test))]
    expected = NeuroformerCollator()(rows)
    got = processor(rec, test["window_start"])  # past_clip_starts="auto"
    for k in expected:
        assert torch.equal(got[k], expected[k]), k
    unclipped = processor(rec, test["window_start"], None)
    assert unclipped["past_attention_mask"].sum() > expected["past_attention_mask"].sum()
    # the same model on a recording without trials: no clip, and said
    no_trials = dataclasses.replace(rec, trials=None, trial_info={})
    with pytest.warns(UserWarning, match="has no trials: the past windows are not clipped"):
        alone = processor(no_trials, test["window_start"][:5])
    assert torch.equal(alone["past_input_ids"], processor(rec, test["window_start"][:5], None)["past_input_ids"])
    with pytest.raises(ValueError, match="past_clip_starts: expected 'auto', 'trials', seconds per window or None"):
        processor(rec, test["window_start"][:5], "trial")
    # saved and reloaded without splits.json beside it: processor_config.json keeps the mode
    processor.save_pretrained(tmp_path / "p")
    assert AutoProcessor.from_pretrained(tmp_path / "p").split_mode == "trials"


def test_windows_inside_overlapping_trials_are_counted_not_silently_clipped(shared_data):
    """Zheng 2022 trials 94 and 95 overlap (1260.23-1261.78 s and 1261.55-1263.08 s): training
    made windows of both, each clipped at its own trial's start, so a window of trial 94 at
    1261.632 s saw its past from 1260.23 s; 'auto' clipped it at 1261.55 s without a word."""
    rec, config = _zheng_trials(shared_data, 1240.0, 1300.0)
    tok, _ = untrained_model(rec, config)
    data, plan = build_window_datasets(rec, tok, config)
    train = data["train"]
    i = int(np.argmin(np.abs(np.asarray(train["window_start"]) - 1261.632234)))
    row = train[i]
    assert abs(row["window_start"] - 1261.632234) < 1e-6 and abs(row["past_clip_start"] - 1260.232234) < 1e-6
    processor = nf.NeuroformerProcessor.from_config(tok, config, split_mode=plan.mode)
    with pytest.warns(UserWarning, match=r"1 of 2 windows starts inside more than one trial"):
        clipped = processor(rec, [row["window_start"], 1250.0])
    assert clipped["past_attention_mask"][0].sum() < len(row["past_input_ids"])  # clipped later than training
    exact = processor(rec, [row["window_start"]], [row["past_clip_start"]])
    expected = NeuroformerCollator()([row])
    for k in expected:
        assert torch.equal(exact[k], expected[k]), k


def test_abutting_trials_off_the_grid_are_not_called_overlapping():
    """Trials [0, 0.1 * 14) and [0.1 * 14, 2.8): the boundary is 1.4000000000000001 s, and the window
    at the grid-rounded 1.4 s lay a hair before the first trial's end, so it was counted in both and
    processor(..., "trials") warned of overlapping trials that only touch. The count is now
    windows.trials_holding, with the 1 ns tolerance at both ends (as decoding's trial labels)."""
    import warnings

    rng = np.random.default_rng(0)
    times = np.sort(rng.uniform(0.0, 2.8, 200))
    rec = nf.SpikeRecording(spike_times=times, unit_ids=rng.integers(0, 3, 200), time_domain=(0.0, 2.8),
                            trials=np.array([[0.0, 0.1 * 14], [0.1 * 14, 2.8]]))
    config = nf.NeuroformerConfig(current_window=0.1, past_window=0.2, dt_resolution=0.01, max_window_length=40,
                                  max_past_length=80)
    tok, _ = untrained_model(rec, config)
    processor = nf.NeuroformerProcessor.from_config(tok, config, split_mode="trials")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = processor(rec, [0.0, 1.4, 2.0], "trials")
    assert out["input_ids"].shape[0] == 3


def test_trainer_trains_and_evaluates_on_the_processors_dataset(a2929, saved, tmp_path):
    """The HF route for new windows: ``processor.to_dataset`` + ``processor.collator`` in
    ``transformers.Trainer``. Its evaluation loss on the test windows (one batch) is the model's
    loss on ``processor(...)`` of the same windows, and two training steps change the weights."""
    from transformers import Trainer, TrainingArguments

    out, data, _ = saved
    processor = AutoProcessor.from_pretrained(out)
    model = AutoModelForPreTraining.from_pretrained(out)
    starts = data["test"]["window_start"][:24]
    ds = processor.to_dataset(a2929, starts)
    assert len(ds) == 24 and ds.features == data["test"].features  # training's schema, modality columns too
    assert ds["input_ids"] == data["test"]["input_ids"][:24]
    args = TrainingArguments(output_dir=str(tmp_path / "t"), per_device_train_batch_size=8, per_device_eval_batch_size=64,
                             max_steps=2, learning_rate=1e-3, report_to=[], remove_unused_columns=False,
                             save_strategy="no", use_cpu=True, disable_tqdm=True, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=ds, eval_dataset=ds, data_collator=processor.collator)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        direct = model.eval()(**processor(a2929, starts)).loss.item()
    assert trainer.evaluate()["eval_loss"] == pytest.approx(direct, rel=1e-5)
    trainer.train()
    assert trainer.state.global_step == 2
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_trainer_eval_loss_is_a_batch_mean_and_evaluate_token_nll_the_split_loss(a2929, saved, tmp_path):
    """What the README says of the Trainer route: ``eval_loss`` is a mean of batch losses weighted by
    windows, so it changes with ``per_device_eval_batch_size``; ``evaluate_token_nll(...)["loss"]``
    is the model's loss on all the windows as one batch at any batch size."""
    from transformers import Trainer, TrainingArguments

    from hf_neuroformer.training import evaluate_token_nll

    out, data, _ = saved
    processor = AutoProcessor.from_pretrained(out)
    model = AutoModelForPreTraining.from_pretrained(out).eval()
    starts = data["test"]["window_start"][:21]
    ds = processor.to_dataset(a2929, starts)
    with torch.no_grad():
        one_batch = model(**processor.collator(ds[:])).loss.item()
    trainer_loss = {}
    for b in (3, 7):
        assert evaluate_token_nll(model, ds, processor.collator, batch_size=b)["loss"] == pytest.approx(one_batch,
                                                                                                         rel=1e-6)
        args = TrainingArguments(output_dir=str(tmp_path / f"t{b}"), per_device_eval_batch_size=b, report_to=[],
                                 remove_unused_columns=False, use_cpu=True, disable_tqdm=True)
        trainer_loss[b] = Trainer(model=model, args=args, data_collator=processor.collator).evaluate(ds)["eval_loss"]
    assert trainer_loss[3] != pytest.approx(trainer_loss[7], rel=1e-6)
    assert trainer_loss[3] != pytest.approx(one_batch, rel=1e-6)


def test_windows_of_another_tokenizer_read_back_from_disk_are_refused_by_the_collator(a2929, saved, tmp_path):
    """Break test: windows saved with ``save_to_disk`` and read back with ``datasets.load_from_disk``,
    given to the ``processor.collator`` of another checkpoint (a model of 5 of the 15 units: 8
    tokens), were padded without a word, and the model then refused ids up to 17 blaming "units added
    with tokenizer.add_units". The collator refuses them, naming the row, the column, the id and the
    tokenizer's length; the processor's own windows still collate (and a decoder's collator checks too)."""
    import datasets

    out, data, model = saved
    data["test"].select(range(8)).save_to_disk(str(tmp_path / "windows"))
    rows = datasets.load_from_disk(str(tmp_path / "windows"))
    rows = [rows[i] for i in range(len(rows))]
    small = a2929.select_units(list(a2929.unit_names)[:5])
    tok, other = untrained_model(small, nf.NeuroformerConfig(**{**model.config.to_dict(), "modalities": None}))
    other_processor = nf.NeuroformerProcessor.from_config(tok, other.config)
    assert len(tok) == 8 and max(max(r["input_ids"]) for r in rows) >= 8
    with pytest.raises(ValueError, match=r"^examples\[\d\]: (past_)?input_ids holds token id \d+, outside this "
                                         r"collator's tokenizer of 8 tokens \(ids 0 \.\. 7\): the window was tokenized "
                                         r"with another tokenizer"):
        other_processor.collator(rows)
    decoder_collator = nf.NeuroformerProcessor(tok, decoding=True).collator
    with pytest.raises(ValueError, match=r"outside this collator's tokenizer of 8 tokens"):
        decoder_collator(rows)
    own = AutoProcessor.from_pretrained(out).collator(rows)
    assert own["input_ids"].shape[0] == 8


def test_the_collator_reads_the_tokenizers_length_when_it_collates(a2929, saved):
    """Break test: ``processor.collator`` recorded ``len(tokenizer)`` when it was built, so after
    ``tokenizer.add_units(...)`` the same collator (e.g. a Trainer's ``data_collator``) refused rows holding
    the new units' ids as windows "tokenized with another tokenizer". A collator built on a tokenizer reads
    its length at call time (a decoder's too); a fixed ``vocab_size`` given by the caller stays fixed, and
    an id beyond the grown tokenizer is still refused."""
    from hf_neuroformer.decoding import DecodingCollator

    out, data, _ = saved
    processor = nf.NeuroformerProcessor(nf.NeuroformerTokenizer.from_pretrained(out))
    collators = [processor.collator, nf.NeuroformerProcessor(processor.tokenizer, decoding=True).collator]
    n = len(processor.tokenizer)
    other = dataclasses.replace(a2929, session="another-session")  # the same spikes as new units
    added = processor.tokenizer.add_units(other)  # after the collators were built
    assert added == list(range(n, n + a2929.n_units))
    rows = processor.to_dataset(other, data["test"]["window_start"][:4])
    rows = [rows[i] for i in range(len(rows))]
    assert max(max(r["input_ids"]) for r in rows) >= n
    for collate in collators:
        batch = collate(rows)
        assert batch["input_ids"].shape[0] == 4 and int(batch["input_ids"].max()) >= n
        assert collate.vocab_size == n + a2929.n_units
    fixed = NeuroformerCollator(0, 1, 2, vocab_size=n)
    with pytest.raises(ValueError, match=rf"^examples\[\d\]: (past_)?input_ids holds token id \d+, outside this "
                                         rf"collator's tokenizer of {n} tokens"):
        fixed(rows)
    m = len(processor.tokenizer)
    beyond = [{**rows[0], "input_ids": [1, m, 2], "dt_ids": [0, 0, 0]}]
    with pytest.raises(ValueError, match=rf"holds token id {m}, outside this collator's tokenizer of {m} tokens"):
        collators[0](beyond)
    with pytest.raises(ValueError, match=r"^NeuroformerCollator: give vocab_size or tokenizer, not both"):
        DecodingCollator((), vocab_size=n, tokenizer=processor.tokenizer)


def test_the_collator_takes_a_dataset_slice_of_columns_as_rows(a2929, saved, tmp_path):
    """Break test: ``processor.collator(ds[:4])`` (a ``datasets`` slice: a mapping of columns, as
    ``processor.tokenize`` returns too) iterated the column names and failed with ``TypeError: string
    indices must be integers``. Columns are taken apart into rows: the same batch as ``processor(...)``
    (modality inputs included), for a decoder's collator too; columns of different lengths are refused."""
    out, data, _ = saved
    processor = AutoProcessor.from_pretrained(out)
    starts = data["test"]["window_start"][:4]
    direct = processor(a2929, starts)
    ds = processor.to_dataset(a2929, starts)
    for columns in (ds[:4], processor.tokenize(a2929, starts)):
        batch = processor.collator(columns)
        assert batch.keys() == direct.keys()
        assert all(torch.equal(batch[k], direct[k]) for k in direct if torch.is_tensor(direct[k]))
        assert torch.equal(batch["modality_inputs"]["head_direction"]["values"],
                           direct["modality_inputs"]["head_direction"]["values"])
    _saved_decoder(saved, tmp_path)
    decoder_batch = AutoProcessor.from_pretrained(tmp_path).collator(ds[:4])
    assert torch.equal(decoder_batch["token_labels"], direct["labels"])
    with pytest.raises(ValueError, match=r"^examples: a mapping of columns .* one length, got lengths \{'input_ids': 4, "
                                         r"'dt_ids': 3"):
        processor.collator({"input_ids": ds["input_ids"], "dt_ids": ds["dt_ids"][:3]})


def test_the_collator_takes_rows_of_a_dataset_in_the_arrow_or_pandas_format(a2929, saved):
    """Break test: ``processor.collator`` on rows of ``ds.with_format("arrow")`` or ``("pandas")``
    (a pyarrow Table / a DataFrame: a slice, single rows, or a list of slices) padded
    each column as a one-element sequence and failed with ``RuntimeError: The expanded size of the
    tensor (1) must match the existing size``. They are converted into rows: the batch of the
    unformatted rows, modality inputs (nested lists of values) included."""
    out, data, _ = saved
    processor = AutoProcessor.from_pretrained(out)
    ds = processor.to_dataset(a2929, data["test"]["window_start"][:4])
    expected = processor.collator([ds[i] for i in range(4)])
    for fmt in ("arrow", "pandas"):
        formatted = ds.with_format(fmt)
        for examples in (formatted[:4], [formatted[i] for i in range(4)], [formatted[:2], formatted[2:4]]):
            batch = processor.collator(examples)
            assert batch.keys() == expected.keys(), fmt
            assert all(torch.equal(batch[k], expected[k]) for k in expected if torch.is_tensor(expected[k])), fmt
            for key in ("times", "values", "mask"):
                assert torch.equal(batch["modality_inputs"]["head_direction"][key],
                                   expected["modality_inputs"]["head_direction"][key]), (fmt, key)


def test_a_decoders_processor_collator_gives_what_the_processor_gives(a2929, saved, tmp_path):
    """``AutoProcessor.from_pretrained(<decoder folder>)``: ``processor(...)`` gives the next-spike labels
    as ``token_labels`` (a decoder's ``labels`` are its behaviour targets), but ``processor.collator``
    gave them as ``labels``, so ``Trainer(model=decoder, data_collator=processor.collator).predict(
    processor.to_dataset(...))`` failed: "labels: expected (batch, n_targets) = (4, 1) for targets ['ry'],
    got (4, 7)". The collator now gives what ``processor(...)`` gives, and Trainer predicts what the
    decoder predicts on ``processor(...)``."""
    from transformers import Trainer, TrainingArguments

    decoder = _saved_decoder(saved, tmp_path)
    processor = AutoProcessor.from_pretrained(tmp_path)
    starts = saved[1]["test"]["window_start"][:6]
    direct = processor(a2929, starts)
    ds = processor.to_dataset(a2929, starts)
    collated = processor.collator([ds[i] for i in range(len(ds))])
    assert collated.keys() == direct.keys() and "labels" not in collated
    assert all(torch.equal(collated[k], direct[k]) for k in direct if torch.is_tensor(direct[k]))
    args = TrainingArguments(output_dir=str(tmp_path / "t"), per_device_eval_batch_size=4, report_to=[],
                             remove_unused_columns=False, use_cpu=True, disable_tqdm=True)
    predicted = Trainer(model=decoder, args=args, data_collator=processor.collator).predict(ds).predictions
    with torch.no_grad():
        expected = decoder(**direct).predictions.numpy()
    assert np.allclose(predicted[0] if isinstance(predicted, tuple) else predicted, expected, atol=1e-6)


def test_trainer_dropping_the_modality_columns_says_which_argument_keeps_them(a2929, saved, tmp_path):
    """``TrainingArguments`` defaults to ``remove_unused_columns=True``: Trainer drops the ``mod_*``
    columns of ``processor.to_dataset`` (no forward argument reads them), and the collator's error
    pointed only at build_window_datasets, which had built them."""
    from transformers import Trainer, TrainingArguments

    out, data, _ = saved
    processor = AutoProcessor.from_pretrained(out)
    ds = processor.to_dataset(a2929, data["test"]["window_start"][:4])
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True, disable_tqdm=True)
    trainer = Trainer(model=AutoModelForPreTraining.from_pretrained(out), args=args, data_collator=processor.collator)
    with pytest.raises(ValueError, match=r"modality 'head_direction': the window examples lack .*"
                                         r"TrainingArguments\(remove_unused_columns=False\)"):
        trainer.evaluate(ds)


def test_inputs_move_and_cast_with_to_as_transformers_processor_outputs_do(a2929, saved):
    """``processor(...).to(device_or_dtype)``, the transformers idiom: a plain dict had no ``to``
    (AttributeError). A dtype casts only the float tensors, the nested modality inputs included,
    and the model still takes the result."""
    out, data, model = saved
    processor = AutoProcessor.from_pretrained(out)
    starts = data["test"]["window_start"][:3]
    inputs = processor(a2929, starts)
    assert inputs.to("cpu") is inputs  # BatchFeature.to returns the same object
    hd = inputs.to(torch.float64)["modality_inputs"]["head_direction"]
    assert hd["values"].dtype == torch.float64 and hd["times"].dtype == torch.float64
    assert hd["mask"].dtype == torch.bool and inputs["input_ids"].dtype == torch.int64
    with torch.no_grad():
        loss = model.double()(**inputs).loss
    model.float()
    assert torch.isfinite(loss)


def test_from_pretrained_completes_an_interrupted_save(saved, tmp_path):
    """Break test: NeuroformerConfig, the models and NeuroformerTokenizer complete a save killed after
    its commit (journal written, files still in the staging folder) before reading the folder;
    NeuroformerProcessor.from_pretrained looked for config.json and vocab.json first and refused the
    folder ("neither processor_config.json nor config.json") though loading it completes it."""
    import os
    import shutil

    from hf_neuroformer.save_journal import SAVE_JOURNAL, STAGING_PREFIX

    out, _, model = saved
    run = tmp_path / "run"
    run.mkdir()
    staged = run / f"{STAGING_PREFIX}x"
    shutil.copytree(out, staged)
    names = sorted(p.name for p in staged.iterdir())
    (run / SAVE_JOURNAL).write_text(json.dumps({"staged": staged.name, "files": names, "remove": []}))
    os.replace(staged / "model.safetensors", run / "model.safetensors")  # killed after the first move
    processor = nf.NeuroformerProcessor.from_pretrained(run)
    assert processor.modalities == model.config.modalities
    assert len(processor.tokenizer) == model.config.vocab_size
    assert sorted(p.name for p in run.iterdir()) == names and not (run / SAVE_JOURNAL).exists()


@pytest.mark.parametrize("load", ["AutoConfig", "AutoModelForPreTraining"])
def test_auto_classes_complete_an_interrupted_save_before_reading_config_json(a2929, tmp_path, load):
    """Break test: a save (hidden_size 48) over an older model (hidden_size 32) killed after its
    commit. AutoConfig reads config.json through transformers' base class before any Neuroformer
    class: it returned the older model's config and left the journal; AutoModelForPreTraining got
    that config, its model class then completed the save and refused the new weights (size mismatch)."""
    import shutil

    from transformers import AutoConfig

    from hf_neuroformer.save_journal import SAVE_JOURNAL, STAGING_PREFIX
    from tiny_configs import small_config

    def save(folder, hidden):
        tok, model = untrained_model(a2929, small_config(hidden_size=hidden))
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
        return model

    run = tmp_path / "run"
    save(run, 32)
    staged = run / f"{STAGING_PREFIX}x"
    new = save(staged, 48)
    names = sorted(p.name for p in staged.iterdir())
    (run / SAVE_JOURNAL).write_text(json.dumps({"staged": staged.name, "files": names, "remove": []}))
    if load == "AutoConfig":
        assert AutoConfig.from_pretrained(run).hidden_size == 48
    else:
        model = AutoModelForPreTraining.from_pretrained(run)
        assert model.config.hidden_size == 48
        assert all(torch.equal(v, new.state_dict()[k]) for k, v in model.state_dict().items())
    assert not (run / SAVE_JOURNAL).exists() and not staged.exists()
    shutil.rmtree(run)


def test_save_pretrained_into_a_folder_with_an_interrupted_save_keeps_the_new_files(a2929, tmp_path):
    """Break test: a train save killed after its commit (journal, model still staged), then
    model / tokenizer / config .save_pretrained of another model into the same folder: the next
    from_pretrained completed the old save over the new files and loaded the older model
    (hidden_size 32 for the 48 just saved), without a word."""
    from hf_neuroformer.save_journal import SAVE_JOURNAL, STAGING_PREFIX
    from tiny_configs import small_config

    run = tmp_path / "run"
    staged = run / f"{STAGING_PREFIX}x"
    old_tok, old = untrained_model(a2929, small_config(hidden_size=32))
    old.save_pretrained(staged)
    old_tok.save_pretrained(staged)
    names = sorted(p.name for p in staged.iterdir())
    (run / SAVE_JOURNAL).write_text(json.dumps({"staged": staged.name, "files": names, "remove": []}))
    tok, new = untrained_model(a2929, small_config(hidden_size=48), seed=1)
    new.save_pretrained(run)
    tok.save_pretrained(run)
    assert not (run / SAVE_JOURNAL).exists() and not staged.exists()
    loaded = AutoModelForPreTraining.from_pretrained(run)
    assert loaded.config.hidden_size == 48
    assert all(torch.equal(v, new.state_dict()[k]) for k, v in loaded.state_dict().items())
    # the config alone, the same way
    (run / SAVE_JOURNAL).write_text(json.dumps({"staged": staged.name, "files": names, "remove": []}))
    staged.mkdir()
    old.config.save_pretrained(staged)
    new.config.save_pretrained(run)
    assert nf.NeuroformerConfig.from_pretrained(run).hidden_size == 48


def test_windows_across_touching_intervals_of_the_time_support_are_recorded_time():
    """Intervals that touch are one stretch of recorded time: plan_splits puts training windows
    across their shared edge, and a generated recording's support is its tiled windows; the
    processor refused such a window as 'not inside the recorded time'. A real gap is still refused."""
    import warnings

    from hf_neuroformer.windows import plan_splits, window_starts_for_split

    rng = np.random.default_rng(0)
    sup = np.array([[0.0, 20.0], [20.0, 40.0], [40.0, 60.0], [61.0, 70.0]])
    t = np.sort(np.concatenate([rng.uniform(0, 60, 3000), rng.uniform(61, 70, 400)]))
    rec = nf.SpikeRecording.from_unsorted(t, rng.integers(0, 3, t.size), unit_names=list("abc"),
                                          time_domain=(0.0, 70.0), time_support=sup)
    cfg = nf.NeuroformerConfig(current_window=0.3, past_window=0.5, dt_resolution=0.01, split_block_length=5.0)
    tok = nf.NeuroformerTokenizer.from_config(cfg)
    tok.add_units(rec)
    processor = nf.NeuroformerProcessor(tok, split_mode="time")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plan = plan_splits(rec, cfg)
    starts = np.concatenate([window_starts_for_split(plan, s, cfg)[0] for s in ("train", "validation", "test")])
    across = starts[(starts < 20.0) & (starts + 0.3 > 20.0) | (starts < 40.0) & (starts + 0.3 > 40.0)]
    assert across.size  # training made windows across the touching edges
    assert processor(rec, across)["input_ids"].shape[0] == across.size
    inputs = processor(rec, [19.9])  # holds the spikes of both intervals
    n = int(np.sum((t >= 19.9) & (t < 20.2)))
    assert int(inputs["attention_mask"].sum()) == n + 2
    with pytest.raises(ValueError, match=r"window \[59.9, 60.2\) s, is not inside the recorded time"):
        processor(rec, [59.9])  # across the real 1-s gap
    trials = np.array([[5.0, 10.0], [19.0, 21.0], [30.0, 35.0], [45.0, 50.0]])  # trial 1 across the edge at 20 s
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # plan_splits leaves out only trials across a real gap, with a warning
        plan = plan_splits(dataclasses.replace(rec, trials=trials), nf.NeuroformerConfig(
            current_window=0.3, past_window=0.5, dt_resolution=0.01, split_by="trials"))
    assert sorted(np.concatenate(list(plan.trial_index.values())).tolist()) == [0, 1, 2, 3]
    # a support of tiled 0.1-s windows (a generated recording's) is 60 s of recorded time, split as one interval
    tiles = np.stack([np.arange(600) / 10, np.arange(1, 601) / 10], 1)
    tiled = dataclasses.replace(rec, spike_times=t[t < 60], unit_ids=rec.unit_ids[t < 60], time_domain=(0.0, 60.0),
                                time_support=tiles)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiled_plan = plan_splits(tiled, cfg)
        whole = plan_splits(dataclasses.replace(tiled, time_support=None), cfg)
    for s in ("train", "validation", "test"):
        np.testing.assert_allclose(tiled_plan.segments[s], whole.segments[s])


def test_windows_of_a_recording_without_recorded_time_are_refused():
    """A recording with no spikes and no time_domain has an empty support: the processor found no
    interval to check the windows against and tokenized any window (5 s, 123 s) as silence."""
    empty = nf.SpikeRecording(spike_times=np.zeros(0), unit_ids=np.zeros(0, dtype=np.int64), unit_names=["a"])
    tok = nf.NeuroformerTokenizer(unit_tokens=nf.NeuroformerTokenizer(unit_tokens=[]).recording_unit_tokens(empty),
                                  current_window=0.1, past_window=0.2, dt_resolution=0.01)
    processor = nf.NeuroformerProcessor(tok)
    with pytest.raises(ValueError, match=r"no recorded time \(no spikes and no time_domain\), so none of the 2 windows "
                                         r"\(first \[5.0, 5.1\) s\).*time_domain=\(start, stop\)"):
        processor(empty, [5.0, 123.0])
    silent = dataclasses.replace(empty, time_domain=(0.0, 10.0))  # recorded silence is tokenized
    assert processor(silent, [5.0])["input_ids"].tolist() == [[tok.bos_token_id, tok.eos_token_id]]


def test_trial_mode_past_of_a_window_outside_every_trial_stops_at_the_trial_before(allen_trials):
    """past_clip_starts='trials' left the past of a window between trials unclipped: a window 50 ms
    after a trial's end read that trial's spikes in its 150-ms past, which a trial-mode model never
    sees. Such a past now stops at the end of the trial before (inter-trial time only)."""
    rec, config, tok, data, plan = allen_trials
    # the reader's gaps are no recorded time (its time support is the trials): here a recording whose gaps are
    rec = dataclasses.replace(rec, time_support=None)
    processor = nf.NeuroformerProcessor.from_config(tok, config)
    ends = rec.trials[:3, 1]
    starts = ends + 0.05  # in the 100-ms gaps between trials
    assert (trial_at(rec.trials, starts) < 0).all()
    cols = processor.tokenize(rec, starts, "trials")
    np.testing.assert_allclose(cols["past_clip_start"], ends)
    for s, e, past in zip(starts, ends, cols["past_input_ids"]):
        in_gap = int(np.sum((rec.spike_times >= e) & (rec.spike_times < s)))
        assert len(past) == 1 + in_gap  # BOS and the gap's spikes, none of the trial before
    unclipped = processor.tokenize(rec, starts, None)
    assert sum(map(len, unclipped["past_input_ids"])) > sum(map(len, cols["past_input_ids"]))
    # before the first trial ends there is no trial to stop at: no clip
    later = dataclasses.replace(rec, trials=rec.trials[1:], trial_info={k: v[1:] for k, v in rec.trial_info.items()})
    first = processor.tokenize(later, [ends[0] + 0.05], "trials")
    assert np.isnan(first["past_clip_start"][0])


def test_a_models_processor_refuses_units_it_was_not_trained_on_naming_what_works(a2929, tmp_path):
    """Break test: ``AutoProcessor.from_pretrained(<decoder folder>)(recording, starts)`` on a
    recording with a unit the model never saw advised ``tokenizer.add_units(recording)``, after which
    the model had no embedding for it (a trained model cannot read new units). A model's processor
    now says so and names the units it knows (``recording.select_units``), which then work; a bare
    processor of an untrained tokenizer keeps the add_units advice."""
    config = nf.NeuroformerConfig(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=48,
                                  max_past_length=96, hidden_size=32, num_attention_heads=2, num_hidden_layers=1,
                                  intermediate_size=64, decoding_targets=[{"name": "ry", "kind": "circular"}])
    known = a2929.unit_names[1:4]
    tok = nf.NeuroformerTokenizer.from_config(config)
    tok.add_units(a2929.select_units(known))
    config.vocab_size = len(tok)
    nf.NeuroformerForBehaviorDecoding(config).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    processor = AutoProcessor.from_pretrained(tmp_path)
    with pytest.raises(nf.UnknownUnitError) as err:
        processor(a2929, [750.0])
    msg = str(err.value)
    assert "add_units" not in msg and "a trained model reads only the units it was trained on" in msg, msg
    assert f"keep only those: recording.select_units([{', '.join(repr(n) for n in known)}])" in msg, msg
    assert processor(a2929.select_units(known), [750.0])["input_ids"].shape[0] == 1
    with pytest.raises(nf.UnknownUnitError, match=r"call tokenizer\.add_units\(recording\) first"):
        nf.NeuroformerProcessor(tok)(a2929, [750.0])


def test_auto_clips_the_past_at_the_start_of_the_windows_recorded_stretch(allen_trials):
    """The Allen reader's time support is its trials, with 0.1 s of unrecorded time between them: with
    no trial split mode, "auto" read a window's past across that gap (silence never recorded) into the
    trial before, though only its current window was checked against the support."""
    rec, config, tok, _, _ = allen_trials
    processor = nf.NeuroformerProcessor.from_config(tok, config)  # split_mode unknown
    starts = rec.trials[:3, 0]
    cols = processor.tokenize(rec, starts)
    np.testing.assert_array_equal(cols["past_clip_start"], rec.trials[:3, 0])  # the stretches' starts
    assert all(len(p) == 1 for p in cols["past_input_ids"])  # nothing before the trial is read (one token: BOS)
    whole = processor.tokenize(rec, starts, None)  # asked for: the whole past window
    assert len(whole["past_input_ids"][1]) > 1 and np.isnan(whole["past_clip_start"]).all()


def test_a_models_processor_refuses_a_tokenizer_grown_after_it_was_made(a2929, saved):
    """Break test: ``processor.tokenizer.add_units(recording)`` on a model's processor let a recording with units
    the model was not trained on through the check of foreign units; they were tokenized with ids >=
    ``config.vocab_size``, which the model has no embedding for, and only ``model(**inputs)`` refused them,
    advising to grow the model. The processor now refuses up front, naming both sizes and the units to keep."""
    out, _, model = saved
    v = model.config.vocab_size
    foreign = dataclasses.replace(a2929.select_units(a2929.unit_names[:2]), session="another-session")
    # the model's units with the first one renamed: 1 unit it does not know
    renamed = dataclasses.replace(a2929, unit_names=["new-unit"] + list(a2929.unit_names[1:]))
    for processor in (AutoProcessor.from_pretrained(out), nf.NeuroformerProcessor.from_config(
            nf.NeuroformerTokenizer.from_pretrained(out), model.config)):
        processor.tokenizer.add_units(foreign)
        processor.tokenizer.add_units(renamed)
        n = len(processor.tokenizer)
        assert n == v + 3
        with pytest.raises(ValueError, match=rf"^tokenizer: len\(tokenizer\) = {n} tokens, but the model's "
                                             rf"config\.vocab_size = {v}: .*ids {v} \.\. {n - 1} \(2 of this "
                                             r"recording's 2 units\).*resize_unit_embeddings"):
            processor(foreign, [750.0])
        keep = ", ".join(repr(u) for u in a2929.unit_names[1:6])
        with pytest.raises(ValueError, match=rf"\(1 of this recording's {a2929.n_units} units\).*keep only the "
                                             rf"{a2929.n_units - 1} units of this recording it knows: "
                                             rf"recording\.select_units\(\[{keep}, \.\.\.\]\)"):
            processor(renamed, [750.0])
        # the model's own units through a grown tokenizer: refused too (not the model's tokenizer any more)
        with pytest.raises(ValueError, match=rf"len\(tokenizer\) = {n} tokens.*\(0 of this recording's "
                                             rf"{a2929.n_units} units\)"):
            processor.to_dataset(a2929, [750.0])
    # a bare processor (no model) of a grown tokenizer stays usable
    assert nf.NeuroformerProcessor(processor.tokenizer)(foreign, [750.0])["input_ids"].max() >= v


def test_a_models_processor_collator_refuses_units_added_after_the_model_was_made(a2929, saved):
    """Break test: a model's ``processor.collator`` checked ids against ``len(tokenizer)`` only, so after
    ``tokenizer.add_units(...)`` it padded rows holding the new units' ids (tokenized by a bare processor of
    the same tokenizer) although the model has no embedding for them; only ``model(**batch)`` refused them.
    The collator (a decoder's too) now refuses them, naming the row, the column, the id, the model's
    vocab_size and the fix; rows of the model's own units still collate."""
    out, data, model = saved
    v = model.config.vocab_size
    processor = AutoProcessor.from_pretrained(out)
    assert processor.model_vocab_size == v
    starts = data["test"]["window_start"][:4]
    own = processor.to_dataset(a2929, starts)
    own = [own[i] for i in range(len(own))]
    collators = [processor.collator, nf.NeuroformerProcessor(processor.tokenizer, processor.modalities, decoding=True,
                                                             model_vocab_size=v).collator]
    other = dataclasses.replace(a2929, session="another-session")  # the same spikes as new units
    processor.tokenizer.add_units(other)
    bare = nf.NeuroformerProcessor(processor.tokenizer, modalities=processor.modalities)
    rows = bare.to_dataset(other, starts)
    rows = [rows[i] for i in range(len(rows))]
    assert max(max(r["input_ids"]) for r in rows) >= v
    for collate in collators:
        with pytest.raises(ValueError, match=rf"^examples\[\d\]: (past_)?input_ids holds token id \d+, but the "
                                             rf"model's config\.vocab_size = {v} \(ids 0 \.\. {v - 1}\): its unit "
                                             r"was added with tokenizer\.add_units after the model was made.*"
                                             r"model\.resize_unit_embeddings\(len\(tokenizer\)\) \(then fine-tune\)"):
            collate(rows)
        assert collate(own)["input_ids"].shape[0] == 4
    # a bare processor's collator of the grown tokenizer stays usable
    assert int(bare.collator(rows)["input_ids"].max()) >= v
    with pytest.raises(ValueError, match=r"^NeuroformerCollator: model_vocab_size: expected None or an integer >= 1"):
        NeuroformerCollator(0, 1, 2, model_vocab_size=0)


def test_a_models_processor_saved_alone_keeps_the_models_vocab_size(a2929, saved, tmp_path):
    """A model's processor saved with ``processor.save_pretrained(d)`` alone (processor_config.json, no
    config.json) lost the model's vocab_size and that it serves a model: reloaded, a tokenizer grown with
    ``add_units`` passed again (ids the model has no embedding for), and an unknown unit got the
    tokenizer's add_units advice instead of the model's refusal. processor_config.json now holds
    ``model_vocab_size``; a bare processor's stays null and it stays usable with a grown tokenizer."""
    out, _, model = saved
    v = model.config.vocab_size
    AutoProcessor.from_pretrained(out).save_pretrained(tmp_path / "alone")
    assert json.loads((tmp_path / "alone" / "processor_config.json").read_text())["model_vocab_size"] == v
    back = AutoProcessor.from_pretrained(tmp_path / "alone")
    assert back.model_vocab_size == v
    foreign = dataclasses.replace(a2929.select_units(a2929.unit_names[:2]), session="another-session")
    with pytest.raises(nf.UnknownUnitError, match="units are not the ones .* was trained on"):
        back(foreign, [750.0])
    back.tokenizer.add_units(foreign)
    with pytest.raises(ValueError, match=rf"^tokenizer: len\(tokenizer\) = {v + 2} tokens, but the model's "
                                         rf"config\.vocab_size = {v}"):
        back(foreign, [750.0])
    # a bare processor saved and reloaded stays bare
    nf.NeuroformerProcessor(nf.NeuroformerTokenizer.from_pretrained(out)).save_pretrained(tmp_path / "bare")
    bare = AutoProcessor.from_pretrained(tmp_path / "bare")
    assert bare.model_vocab_size is None
    bare.tokenizer.add_units(foreign)
    assert bare(foreign, [750.0])["input_ids"].max() >= v
    with pytest.raises(ValueError, match=r"model_vocab_size: expected None or an int >= 1, got True"):
        nf.NeuroformerProcessor(bare.tokenizer, model_vocab_size=True)


@pytest.mark.parametrize("load", ["NeuroformerForPreTraining", "AutoModelForPreTraining", "NeuroformerProcessor"])
def test_from_pretrained_with_a_subfolder_completes_an_interrupted_save_into_it(a2929, tmp_path, monkeypatch, load):
    """Break test: a save (hidden_size 48) over an older model (hidden_size 32) in root/sub, killed
    after its commit while moving its files, then from_pretrained(root, subfolder="sub"): only root
    was checked for a journal, so the folder read held the new weights beside the old config.json
    (size mismatch) and the journal stayed. The save into the subfolder is completed first; the Auto
    class, whose AutoConfig read the old config.json before any Neuroformer class ran, gets the new
    one, with the override given to it."""
    import os

    from hf_neuroformer.save_journal import SAVE_JOURNAL
    from hf_neuroformer.training import save_atomically
    from tiny_configs import small_config

    root = tmp_path / "root"
    sub = root / "sub"
    tok, old = untrained_model(a2929, small_config(hidden_size=32))
    save_atomically(sub, old, tok, {"metrics.json": {"run": "old"}})
    _, new = untrained_model(a2929, small_config(hidden_size=48), seed=1)
    real_replace, moved = os.replace, []

    class Killed(BaseException):
        pass

    def replace(src, dst):  # the process dies after the first file of the new model is in place
        if os.path.basename(os.path.dirname(src)).startswith(".tmp-save-"):
            if moved:
                raise Killed
            moved.append(os.path.basename(src))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(Killed):
        save_atomically(sub, new, tok, {"metrics.json": {"run": "new"}}, overwrite=True)
    monkeypatch.setattr(os, "replace", real_replace)
    assert len(moved) == 1 and (sub / SAVE_JOURNAL).is_file()
    if load == "NeuroformerProcessor":
        processor = nf.NeuroformerProcessor.from_pretrained(root, subfolder="sub")
        assert len(processor.tokenizer) == new.config.vocab_size
    else:
        cls = AutoModelForPreTraining if load.startswith("Auto") else nf.NeuroformerForPreTraining
        model = cls.from_pretrained(root, subfolder="sub", hidden_dropout=0.25)
        assert model.config.hidden_size == 48 and model.config.hidden_dropout == 0.25
        assert all(torch.equal(v, new.state_dict()[k]) for k, v in model.state_dict().items())
    assert not (sub / SAVE_JOURNAL).exists() and not list(sub.glob(".tmp-save-*"))
    from hf_neuroformer.generation import tensors_sha256

    # save_atomically adds the digest of the weights it wrote (weights_tensors_sha256): the new model's
    assert json.loads((sub / "metrics.json").read_text()) == {"run": "new", "weights_tensors_sha256": tensors_sha256(sub)}
    assert sorted(p.name for p in root.iterdir()) == ["sub"]  # the root itself is left alone
