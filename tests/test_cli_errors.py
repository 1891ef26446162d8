"""Bad input to the `neuroformer` command gets one line naming the flag (or file) and the
expectation, exit status 2, no traceback, and nothing written: a fine-tuned decoder given as a
generative model, damaged model directories, files that are not what they say, bad finetune
numbers (checked before the data is read), YAML errors, an --output that is a directory, a
recording whose units are not the model's, and a resume with another model config.

Most calls go through ``cli.main`` in this process (the same code as the console script; an
uncaught exception fails the test); a few run the real command in a subprocess to check stderr
holds no traceback and no transformers loading report.
"""

import contextlib
import io
import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from hf_neuroformer import cli
from hf_neuroformer.decoding import DecodingTarget
from hf_neuroformer.finetuning import finetune
from hf_neuroformer.generation import generate_spikes, load_pretrained
from hf_neuroformer.io import load_recording
from hf_neuroformer.configuration_neuroformer import NeuroformerConfig
from hf_neuroformer.training import TrainingConfig, train

from test_cli import run_cli
from tiny_configs import small_config

A2929 = "pynapple_A2929_headdirection/A2929-200711.nwb"


def tiny_config(**kw):
    # A2929's windows (0.1 s current, 1 s past) with a small network
    return small_config(current_window=0.1, past_window=1.0, dt_resolution=0.005, max_window_length=64,
                        max_past_length=128, **kw)


@pytest.fixture(scope="module")
def models(tmp_path_factory, shared_data):
    """A pretrained model (2 steps, checkpoints kept) and a decoder fine-tuned from it (1 step). No test
    generation and no figures: the tests read the model, its checkpoints and its file names, never a
    generation result or a figure."""
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("cli_errors")
    nwb = shared_data(A2929)
    rec = load_recording(nwb, epoch="wake")
    train(rec, d / "pre", tiny_config(), TrainingConfig(max_steps=2, save_every=1, batch_size=32, eval_batch_size=256,
                                                        generation_batch_size=512, generate_test=False),
          progress=False, write_figures=False)
    finetune(d / "pre", rec, [DecodingTarget("ry", "circular")], output_dir=d / "dec", max_steps=1, batch_size=32)
    return d, nwb, rec


def err_of(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err, err
    last = err.rstrip("\n").split("\n")[-1]  # (warnings of the readers may come before it)
    assert last.startswith(f"neuroformer {argv[0]}: error: "), err
    return last


def test_pretrained_model_loads_with_every_weight(models):
    d, _, _ = models
    from safetensors.torch import load_file

    model, tokenizer, plan = load_pretrained(d / "pre")
    assert type(model).__name__ == "NeuroformerForPreTraining"
    assert len(tokenizer) == model.config.vocab_size
    # every parameter comes from model.safetensors, none is left at a fresh initialisation (the
    # test checked only the class and the vocabulary size)
    saved = load_file(d / "pre" / "model.safetensors")
    params = dict(model.named_parameters())
    assert set(params) <= set(saved), sorted(set(params) - set(saved))
    for k, p in params.items():
        assert torch.equal(p.detach(), saved[k]), k


def test_finetuned_decoder_is_not_a_generative_model(models, capsys, tmp_path):
    d, nwb, _ = models
    dec = d / "dec"
    assert "NeuroformerForBehaviorDecoding" in (dec / "config.json").read_text()
    with pytest.raises(ValueError, match="fine-tuned decoder"):
        load_pretrained(dec)
    err = err_of(capsys, "generate", "--model", dec, "--data", nwb, "--epoch", "wake", "--output", tmp_path / "g.nwb")
    assert str(dec) in err and "fine-tuned decoder" in err and "pretrained model" in err
    assert not (tmp_path / "g.nwb").exists()
    # bits per spike: refused before the recordings are read (the generated file need not exist)
    err = err_of(capsys, "evaluate", "--real", nwb, "--epoch", "wake", "--generated", tmp_path / "none.nwb",
                 "--model", dec, "--output", tmp_path / "e.json")
    assert "fine-tuned decoder" in err and not (tmp_path / "e.json").exists()
    # the real command: no traceback, no transformers LOAD REPORT of newly initialised heads
    res = run_cli("generate", "--model", dec, "--data", nwb, "--epoch", "wake", "--output", tmp_path / "g.nwb")
    assert res.returncode == 2 and "fine-tuned decoder" in res.stderr
    assert "Traceback" not in res.stderr and "MISSING" not in res.stderr, res.stderr[-2000:]
    # embed reads the backbone only: a decoder is taken, as README and --help say (they said it was refused)
    assert cli.main(["embed", "--model", str(dec), "--data", str(nwb), "--epoch", "wake", "--color-by", "ry",
                     "--output", str(tmp_path / "emb.png")]) == 0
    assert (tmp_path / "emb.npy").is_file()
    help_text = " ".join(cli.build_parser()._subparsers._group_actions[0].choices["embed"].format_help().split())
    assert "'neuroformer finetune': the decoder's backbone" in help_text


def test_missing_next_spike_heads_are_refused(models, tmp_path):
    from safetensors.torch import load_file, save_file

    d, _, _ = models
    bad = tmp_path / "nohead"
    shutil.copytree(d / "pre", bad, ignore=shutil.ignore_patterns("checkpoints"))
    weights = {k: v for k, v in load_file(bad / "model.safetensors").items() if not k.startswith("id_head.")}
    save_file(weights, bad / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match="id_head"):
        load_pretrained(bad)


def test_weights_missing_from_the_file_are_refused_by_each_loader_with_one_message(models, tmp_path):
    """load_pretrained and load_decoder (like push_to_hub, test_hub) refuse a model.safetensors that
    lacks weights the model has (they would be left at random), naming the file, how many and the
    first five, in the one message of refuse_missing_weights."""
    from safetensors.torch import load_file, save_file

    from hf_neuroformer.finetuning import load_decoder
    from hf_neuroformer.generation import refuse_missing_weights

    d, _, _ = models
    for src, loader, whose, by in ((d / "pre", load_pretrained, "model's", "neuroformer train"),
                                   (d / "dec", load_decoder, "decoder's", "neuroformer finetune")):
        bad = tmp_path / src.name
        shutil.copytree(src, bad, ignore=shutil.ignore_patterns("checkpoints"))
        weights = load_file(bad / "model.safetensors")
        cut = sorted(k for k in weights if ".layers.0." in k)
        assert len(cut) > 5
        save_file({k: v for k, v in weights.items() if k not in cut}, bad / "model.safetensors",
                  metadata={"format": "pt"})
        with pytest.raises(ValueError) as err:
            loader(bad)
        msg = str(err.value)
        assert msg.startswith(f"--model: {str(bad / 'model.safetensors')!r} lacks " if loader is load_pretrained
                              else f"model_dir: {str(bad / 'model.safetensors')!r} lacks "), msg
        n = int(msg.split(" lacks ")[1].split()[0])
        assert n >= len(cut) and f"of the {whose} weights (" in msg and f" and {n - 5} more); they would be " \
            f"random: expected a directory written by '{by}'" in msg, msg
    refuse_missing_weights([], "x", "model's", "y")  # nothing missing: nothing raised


def damage(src, dst, how):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("checkpoints"))
    if how == "no weights":
        (dst / "model.safetensors").unlink()
        return "no model.safetensors"
    if how == "pickle weights":  # transformers reads pytorch_model.bin: "has no model.safetensors" alone misled
        import torch
        from safetensors.torch import load_file

        torch.save(load_file(dst / "model.safetensors"), dst / "pytorch_model.bin")
        (dst / "model.safetensors").unlink()
        return (f"holds PyTorch pickle weights (pytorch_model.bin), which this package does not read (only safetensors)"
                f": convert them once, after import hf_neuroformer, with AutoModelForPreTraining.from_pretrained("
                f"{str(dst)!r}).save_pretrained({str(dst)!r})")
    if how == "config of another size":  # transformers said "look at the above report!", a report left unprinted
        cfg = json.loads((dst / "config.json").read_text())
        h = cfg["hidden_size"]
        cfg["hidden_size"] = 2 * h
        (dst / "config.json").write_text(json.dumps(cfg))
        # weights named with both shapes (the first ones differ: finetune loads a decoder, which has no dt_head)
        return re.compile(r" weights of another shape than the model its config.json describes \(\S+ "
                          rf"\((\d+, )?{h},?\) in the file, \((\d+, )?{2 * h},?\) in the model;")
    if how == "config not JSON":
        (dst / "config.json").write_text("{ not json")
        return "config.json"
    # another JSON in its place (evaluate's metrics once replaced it): it loaded as the default
    # config and the weights were blamed ("model.safetensors cannot be loaded"); a JSON list
    # failed with a TypeError traceback inside transformers
    if how == "config another JSON":
        (dst / "config.json").write_text(json.dumps({"rate_corr": 0.5, "n_units": 15}))
        return "config.json' is not a Neuroformer model config (model_type None"
    if how == "config a JSON list":
        (dst / "config.json").write_text("[1, 2]")
        return "config.json' is not a Neuroformer model config (model_type None"
    if how == "truncated weights":
        data = (dst / "model.safetensors").read_bytes()
        (dst / "model.safetensors").write_bytes(data[: len(data) // 2])
        return "model.safetensors"
    (dst / "vocab.json").unlink()
    (dst / "tokenizer_config.json").unlink()
    return "no vocab.json"


@pytest.mark.parametrize("how", ["no weights", "pickle weights", "config of another size", "config not JSON", "config another JSON", "config a JSON list",
                                 "truncated weights", "no tokenizer"])
def test_damaged_model_dir_is_one_line(models, capsys, tmp_path, how):
    d, nwb, _ = models
    bad = tmp_path / "bad"
    expected = damage(d / "pre", bad, how)
    missing = tmp_path / "missing.nwb"  # the model is checked before any data is read
    for argv in (["generate", "--model", bad, "--data", missing, "--output", tmp_path / "g.nwb"],
                 ["evaluate", "--real", missing, "--generated", missing, "--model", bad],
                 ["finetune", "--model", bad, "--data", missing, "--target", "ry", "--output-dir", tmp_path / "f"]):
        if how == "config of another size" and argv[0] == "finetune":  # finetune loads the weights after the data
            argv[4] = nwb
            argv[5:5] = ["--epoch", "wake"]
        err = err_of(capsys, *argv)
        found = expected.search(err) if isinstance(expected, re.Pattern) else expected in err
        assert "--model" in err and str(bad) in err and found, (argv[0], err)
    assert not (tmp_path / "g.nwb").exists() and not (tmp_path / "f").exists()


def test_recording_of_other_units_names_the_model_session(models, capsys, shared_data, tmp_path):
    d, _, _ = models
    other = shared_data("zheng2022_human_mtl/sub-4_ses-4_ecephys+image.nwb")
    err = err_of(capsys, "generate", "--model", d / "pre", "--data", other, "--output", tmp_path / "g.nwb")
    assert "not the ones the model" in err and "A2929-200711" in err
    assert "add_units" not in err
    err = err_of(capsys, "finetune", "--model", d / "pre", "--data", other, "--target", "x",
                 "--output-dir", tmp_path / "f")
    assert "not the ones the model" in err and "A2929-200711" in err and "add_units" not in err
    assert not (tmp_path / "f").exists()


@pytest.mark.parametrize("flag, value", [
    ("--batch-size", "0"), ("--learning-rate", "-1"), ("--learning-rate", "0"), ("--fraction", "1.5"),
    ("--fraction", "0"), ("--eval-steps", "0"), ("--max-steps", "0"), ("--gradient-accumulation-steps", "0"),
    ("--generative-loss-weight", "-1"),
])
def test_finetune_numbers_checked_before_loading(models, capsys, tmp_path, flag, value):
    d, _, _ = models
    # --data does not exist: the flag must be refused before the recording (or the model) is read
    err = err_of(capsys, "finetune", "--model", d / "pre", "--data", tmp_path / "missing.nwb", "--target", "ry",
                 "--output-dir", tmp_path / "f", flag, value)
    assert err.split(": error: ")[1].startswith(f"{flag}: expected"), err
    assert not (tmp_path / "f").exists()


@pytest.mark.parametrize("extra, expected", [
    (["--num-bins", "64"], "--num-bins: only with --regression-loss hl_gauss (the loss is mse"),
    (["--regression-loss", "mse", "--hl-gauss-sigma-ratio", "0.75"], "--hl-gauss-sigma-ratio: only with "
                                                                     "--regression-loss hl_gauss"),
    (["--regression-loss", "hl_gauss", "--num-bins", "64"], "--hl-gauss-sigma-ratio: needed with --regression-loss "
                                                            "hl_gauss"),
    (["--regression-loss", "hl_gauss", "--hl-gauss-sigma-ratio", "0.75"], "--num-bins: needed with "
                                                                          "--regression-loss hl_gauss"),
    (["--regression-loss", "hl_gauss", "--num-bins", "1", "--hl-gauss-sigma-ratio", "0.75"], "--num-bins: expected "
                                                                                             "an integer >= 2"),
    (["--regression-loss", "hl_gauss", "--num-bins", "64", "--hl-gauss-sigma-ratio", "nan"],
     "--hl-gauss-sigma-ratio: expected a finite number > 0"),
    (["--regression-loss", "hl_gauss", "--num-bins", "64", "--hl-gauss-sigma-ratio", "0.75", "--kind", "circular"],
     "--regression-loss hl_gauss: a loss of regression targets, and --kind gives none (circular)"),
])
def test_finetune_regression_loss_flags_refused_before_loading(models, capsys, tmp_path, extra, expected):
    """`neuroformer finetune` had no flag for the HL-Gauss loss (DecodingTarget(loss="hl_gauss")): its
    --regression-loss, --num-bins and --hl-gauss-sigma-ratio are refused, naming the flag, before the recording (here
    missing) or the model is read: bins without hl_gauss (they would be ignored), hl_gauss without its settings or
    with bad ones, and hl_gauss with --kind giving no regression target."""
    d, _, _ = models
    err = err_of(capsys, "finetune", "--model", d / "pre", "--data", tmp_path / "missing.nwb", "--target", "ry",
                 "--output-dir", tmp_path / "f", *extra)
    assert err.split(": error: ", 1)[1].startswith(expected), err
    assert not (tmp_path / "f").exists()


def test_finetune_hl_gauss_without_a_regression_target_is_refused(models, capsys, tmp_path):
    """--regression-loss hl_gauss with only a circular target (ry's kind inferred from the recording, no --kind) is
    refused naming the targets and their kinds, before the model is fine-tuned: nothing is written."""
    d, nwb, _ = models
    err = err_of(capsys, "finetune", "--model", d / "pre", "--data", nwb, "--epoch", "wake", "--target", "ry",
                 "--regression-loss", "hl_gauss", "--num-bins", "64", "--hl-gauss-sigma-ratio", "0.75",
                 "--max-steps", 1, "--output-dir", tmp_path / "f")
    assert err.split(": error: ", 1)[1].startswith(
        "--regression-loss hl_gauss: a loss of regression targets, and none of --target is one (ry (circular))"), err
    assert not (tmp_path / "f").exists()


def test_files_that_are_not_what_they_say(capsys, tmp_path, shared_data):
    fake = tmp_path / "fake.nwb"
    shutil.copy(shared_data("README.md"), fake)  # text, not HDF5
    err = err_of(capsys, "train", "--data", fake, "--output-dir", tmp_path / "t")
    assert "--data" in err and str(fake) in err and "HDF5" in err
    real = shared_data(A2929)
    for flag, argv in (("--generated", ["--real", real, "--generated", fake]),
                       ("--real", ["--real", fake, "--generated", real])):
        err = err_of(capsys, "evaluate", *argv)
        assert err.split(": error: ")[1].startswith(flag) and str(fake) in err, err
    empty = tmp_path / "spikes.csv"
    empty.write_text("")
    err = err_of(capsys, "train", "--data", empty, "--output-dir", tmp_path / "t")
    assert "--data" in err and str(empty) in err
    assert not (tmp_path / "t").exists()


def test_yaml_errors_name_the_file(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("hidden_size: [64\n")
    err = err_of(capsys, "train", "--config", bad, "--output-dir", tmp_path / "t")
    assert str(bad) in err and "YAML" in err and "line" in err
    five = tmp_path / "five.yaml"
    five.write_text("training: 5\n")
    err = err_of(capsys, "train", "--config", five, "--output-dir", tmp_path / "t")
    assert str(five) in err and "training: expected a mapping" in err
    assert not (tmp_path / "t").exists()


def test_every_config_file_error_opens_with_the_flag_and_the_file(capsys, tmp_path):
    """load_yaml_config's errors opened with '--config' for some (missing, empty, a folder) and with the bare
    path for the others (not valid YAML, not a mapping, an unknown key, a refused value): each now opens with
    '--config: ' and the file, for every command that reads one; nothing is written."""
    texts = {"syntax.yaml": ("hidden_size: [64\n", " is not valid YAML at line 2, column 1: expected ',' or ']'"),
             "list.yaml": ("- hidden_size: 16\n", ": expected a mapping of config fields, got list"),
             "unknown.yaml": ("hidden_sise: 16\n", ": unknown NeuroformerConfig field ['hidden_sise'] (did you mean "
                                                   "'hidden_size' for 'hidden_sise'?)"),
             "section.yaml": ("training:\n  max_step: 3\n", ": unknown training field ['max_step'] (did you mean "
                                                            "'max_steps' for 'max_step'?)"),
             "value.yaml": ("hidden_size: -4\n", " (top level): NeuroformerConfig.hidden_size: expected")}
    for name, (text, _) in texts.items():
        (tmp_path / name).write_text(text)
    cases = [(tmp_path / name, f"--config: {str(tmp_path / name)!r}{says}") for name, (_, says) in texts.items()]
    cases.append((tmp_path / "none.yaml", f"--config: no such file {str(tmp_path / 'none.yaml')!r}"))
    for command in (["train", "--output-dir", tmp_path / "t"], ["prepare", "--output", tmp_path / "p"],
                    ["inspect", "--output", tmp_path / "i.json"]):
        for path, opening in cases:
            err = err_of(capsys, *command, "--config", path)
            assert err.split(": error: ", 1)[1].startswith(opening), err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(texts)


def test_a_refused_config_value_names_the_file_and_its_section(capsys, tmp_path):
    """A value NeuroformerConfig or TrainingConfig refuses was named by its field only
    ('NeuroformerConfig.hidden_size: expected an integer, got '32''), not by the --config file
    it came from; the file and its section now come first."""
    top = tmp_path / "top.yaml"
    top.write_text('hidden_size: "32"\n')
    section = tmp_path / "section.yaml"
    section.write_text('training:\n  max_steps: "5"\n')
    for command, out in (("train", "--output-dir"), ("prepare", "--output")):
        err = err_of(capsys, command, "--config", top, out, tmp_path / "t")
        assert f"error: --config: {str(top)!r} (top level): NeuroformerConfig.hidden_size: expected an integer, got '32'" in err, err
    err = err_of(capsys, "train", "--config", section, "--output-dir", tmp_path / "t")
    assert f"error: --config: {str(section)!r} (training: section): training.max_steps: expected an integer" in err, err
    assert not (tmp_path / "t").exists()


def test_a_config_key_at_the_wrong_level_or_misspelt_says_where_it_belongs(capsys, tmp_path):
    # 'max_steps: 100' at the top level (a training field) and a misspelt 'trainig:' section were called
    # unknown NeuroformerConfig fields with no word on where they go; a misspelt training field had no hint
    cases = {"max_steps: 3\n": "'max_steps' is a training field: put it under 'training:'",
             "training:\n  hidden_size: 32\n": "'hidden_size' is a NeuroformerConfig field: put it at the top level",
             "trainig:\n  max_steps: 3\n": "did you mean 'training' for 'trainig'?",
             "training:\n  max_step: 3\n": "did you mean 'max_steps' for 'max_step'?"}
    for i, (text, hint) in enumerate(cases.items()):
        cfg = tmp_path / f"c{i}.yaml"
        cfg.write_text(text)
        err = err_of(capsys, "train", "--config", cfg, "--output-dir", tmp_path / "t")
        assert str(cfg) in err and hint in err, err
    assert not (tmp_path / "t").exists()


def test_a_model_folder_and_a_recording_swapped_say_which_flag_takes_them(models, capsys, tmp_path):
    # 'evaluate --generated <model folder>' said 'the file is not HDF5 (size 4096 bytes)', and
    # 'generate --model rec.nwb' only what --model expects, not that the file belongs to --data
    d, nwb, _ = models
    err = err_of(capsys, "evaluate", "--generated", d / "pre", "--output", tmp_path / "e.json")
    assert f"--generated: '{d / 'pre'}' is a directory (a model directory: pass it as --model)" in err, err
    assert "HDF5" not in err
    for command in (("generate", "--output", tmp_path / "g.nwb"), ("embed", "--color-by", "ry", "--output",
                                                                     tmp_path / "e.png")):
        err = err_of(capsys, command[0], "--model", nwb, "--data", nwb, *command[1:])
        assert "it is a recording file: pass it as --data, and the model folder as --model" in err, err
    err = err_of(capsys, "generate", "--model", d / "pre" / "model.safetensors", "--output", tmp_path / "g.nwb")
    assert f"it is a file of a model folder: pass the folder '{d / 'pre'}'" in err, err
    assert not any(tmp_path.iterdir())


def test_a_model_folder_as_data_of_a_command_without_model_is_not_told_to_pass_model(models, capsys, tmp_path):
    # 'train --data runs/q' (the run folder for the recording) was told 'pass it as --model', a flag that
    # train, prepare and inspect do not have ('unrecognized arguments: --model')
    d, _, _ = models
    for argv in (("train", "--output-dir", tmp_path / "t"), ("prepare", "--output", tmp_path / "p"), ("inspect",)):
        err = err_of(capsys, *argv[:1], "--data", d / "pre", *argv[1:])
        assert f"--data: '{d / 'pre'}' is a model directory" in err, err
        assert f"'neuroformer {argv[0]}' reads no model: pass the recording itself as --data" in err, err
        assert "--model (" not in err and "pass it as --model" not in err, err
    assert "'neuroformer finetune --model'" in err_of(capsys, "train", "--data", d / "pre", "--output-dir", tmp_path / "t")
    assert not any(tmp_path.iterdir())


def test_flash_attention_refused_with_the_reason(capsys, tmp_path):
    err = err_of(capsys, "train", "--attn-implementation", "flash_attention_2", "--output-dir", tmp_path / "t")
    assert "flash_attention_2" in err and "sdpa" in err
    assert not (tmp_path / "t").exists()


def test_generate_output_and_max_spikes(models, capsys, tmp_path):
    d, nwb, rec = models
    (tmp_path / "somedir").mkdir()
    err = err_of(capsys, "generate", "--model", d / "pre", "--output", tmp_path / "somedir", "--overwrite")
    assert "--output" in err and "is a directory" in err
    err = err_of(capsys, "generate", "--model", d / "pre", "--data", nwb, "--epoch", "wake",
                 "--output", tmp_path / "g.nwb", "--max-spikes", "0")
    assert "--max-spikes: expected an integer >= 1" in err and not (tmp_path / "g.nwb").exists()
    model, tok, _ = load_pretrained(d / "pre")
    for bad in (0, 64):
        with pytest.raises(ValueError, match=r"max_spikes: expected an integer in 1\.\.63"):
            generate_spikes(model, tok, rec, [700.0], max_spikes=bad, progress=False)


def test_generate_refuses_a_batch_too_large_for_memory_before_reading_the_recording(models, capsys, tmp_path):
    """--top-k 1000000 --batch-size 100000 --num-samples 1000 was killed by the OS for lack of memory: a
    batch whose estimate exceeds half of the machine's memory is refused naming --batch-size, the
    estimate and the largest batch that fits, before the recording is read (an absent --data is not
    reached) and before any file is written."""
    from hf_neuroformer.stimuli import _memory_bytes

    if _memory_bytes() is None:
        pytest.skip("this OS does not report its physical memory: nothing is checked")
    d, _, _ = models
    from hf_neuroformer.generation import generation_windows

    model, _, plan = load_pretrained(d / "pre")
    n = len(generation_windows(plan, "test", model.config)[0])
    samples = cli.MAX_GENERATED_WINDOWS // n  # within the windows' limit: 10^6 rows, certainly too many at once
    # (charged pasts of BOS alone before the recording is read, the least any recording gives: 10^6 rows of
    # the current window and logits alone are still about 100 GiB)
    err = err_of(capsys, "generate", "--model", d / "pre", "--data", tmp_path / "absent.nwb", "--output",
                 tmp_path / "g.nwb", "--top-k", 1000000, "--batch-size", 1000000, "--num-samples", samples)
    assert re.search(rf"--batch-size: a batch of {n * samples} rows \(window x sample\) needs up to about [\d.]+ GiB "
                     r"\([\d.]+ MiB a row: pasts of up to 1 token, .*more than half of this machine's [\d.]+ GiB of "
                     r"memory; use a batch size of at most \d+$", err), err
    assert list(tmp_path.iterdir()) == []


def test_generate_charges_the_recordings_pasts_not_max_past_length(models, capsys, tmp_path):
    """A model with max_past_length 200000 (about 300 GiB a row at full pasts) was refused by generate
    whatever the recording: the batch is charged the longest past of the split's windows in this recording,
    read once the recording is, so it generates; the refusal of a batch that does not fit stays."""
    import json
    import shutil

    from hf_neuroformer.generation import generation_row_bytes

    d, nwb, _ = models
    long = tmp_path / "long_past"
    shutil.copytree(d / "pre", long)
    for name in ("config.json", "tokenizer_config.json"):
        cfg = json.loads((long / name).read_text())
        key = "max_past_length" if "max_past_length" in cfg else None
        assert key, (name, sorted(cfg))
        cfg[key] = 200_000
        (long / name).write_text(json.dumps(cfg))
    model, _, _ = load_pretrained(long)
    assert generation_row_bytes(model.config) > 2**38  # at full pasts: refused on any machine under 512 GiB
    out = tmp_path / "g.nwb"
    rc = cli.main([str(a) for a in ("generate", "--model", long, "--data", nwb, "--epoch", "wake", "--output", out,
                                    "--max-spikes", 2, "--batch-size", 64)])
    assert rc == 0, capsys.readouterr().err
    assert out.is_file()


def test_evaluate_with_model_refuses_a_real_without_its_train_split_before_the_metrics(models, capsys, tmp_path):
    """evaluate --model scores the --split windows against a Poisson null fitted on the train windows: a --real
    that holds the generated windows but not the train split was refused only after the fidelity metrics, and
    as 'recording: the train windows ...', naming no flag. It is refused naming --real before any metric, and
    nothing is written; without --model the same --real is scored."""
    from hf_neuroformer.io import write_nwb

    d, nwb, rec = models
    gen = tmp_path / "g.nwb"
    assert cli.main([str(a) for a in ("generate", "--model", d / "pre", "--data", nwb, "--epoch", "wake", "--output",
                                      gen, "--max-spikes", 2, "--batch-size", 512)]) == 0
    capsys.readouterr()
    _, _, plan = load_pretrained(d / "pre")
    lo, hi = plan.segments["test"][0][0], plan.segments["test"][-1][1]
    assert plan.segments["train"][:, 0].min() < lo - 5.0 or plan.segments["train"][:, 1].max() > hi
    real = write_nwb(rec.restrict(max(lo - 5.0, rec.time_domain[0]), hi), tmp_path / "test_part.nwb")
    out = tmp_path / "e.json"
    err = err_of(capsys, "evaluate", "--real", real, "--generated", gen, "--model", d / "pre", "--output", out)
    assert re.search(r"error: --real: the train windows of this model span \[[\d.]+, [\d.]+\] s but the recording "
                     r"covers \[[\d.]+, [\d.]+\] s; pass the recording \(and --epoch\) the model was trained on$", err), err
    assert not out.exists() and not out.with_suffix(".png").exists()
    rc = cli.main([str(a) for a in ("evaluate", "--real", real, "--generated", gen, "--output", out, "--no-figures")])
    assert rc == 0, capsys.readouterr().err
    assert out.is_file()


def test_generate_warns_once_of_a_recording_holding_only_some_of_the_model_units(models, capsys, tmp_path):
    """generate_spikes now warns of a recording holding only some of the model's units itself (it ran without
    a word from Python); the command, which warns through check_recording_units naming --data, passes
    warn_absent_units=False, so the warning is printed once."""
    from hf_neuroformer.generation import generation_windows
    from hf_neuroformer.io import write_nwb

    d, _, rec = models
    model, _, plan = load_pretrained(d / "pre")
    starts = generation_windows(plan, "test", model.config)[0]
    lo, hi = plan.segments["test"][0][0], plan.segments["test"][-1][1]
    sub = rec.select_units(list(rec.unit_names[1:])).restrict(max(lo - 5.0, rec.time_domain[0]), hi)
    data = write_nwb(sub, tmp_path / "some_units.nwb")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        rc = cli.main([str(a) for a in ("generate", "--model", d / "pre", "--data", data, "--output",
                                        tmp_path / "g.nwb", "--max-spikes", 2, "--batch-size", 512)])
    err = capsys.readouterr().err
    assert rc == 0, err
    missing = [str(w.message) for w in seen if "units the model" in str(w.message)]
    assert len(starts) > 0 and len(missing) == 1, missing
    assert re.match(r"--data: this recording holds \d+ of the \d+ units the model .* 1 is missing", missing[0]), missing


def test_generate_refuses_more_windows_than_its_limit_before_reading_anything(models, capsys, tmp_path):
    """--num-samples 1000000 checked 10^6 output paths one by one (minutes, nothing printed) and would then
    have generated 1.6e8 windows: samples x windows of the split over cli.MAX_GENERATED_WINDOWS are refused
    before the recording is read (an absent --data is not reached), and a run within it says how many
    windows it generates before it starts."""
    d, nwb, _ = models
    from hf_neuroformer.generation import generation_windows

    model, _, plan = load_pretrained(d / "pre")
    n = len(generation_windows(plan, "test", model.config)[0])
    limit = cli.MAX_GENERATED_WINDOWS
    too_many = limit // n + 1
    absent = tmp_path / "absent.nwb"
    err = err_of(capsys, "generate", "--model", d / "pre", "--data", absent, "--output", tmp_path / "g.nwb",
                 "--num-samples", too_many)
    assert (f"--num-samples: {too_many} samples of the {n} test windows are {too_many * n} windows, more than "
            f"{limit}, the most one run generates" in err), err
    assert f"pass --num-samples {limit // n} or fewer" in err, err
    # more samples than the limit: refused before the model is read (no --model directory is needed)
    err = err_of(capsys, "generate", "--model", tmp_path / "no_model", "--output", tmp_path / "g.nwb",
                 "--num-samples", limit + 1)
    assert f"--num-samples: {limit + 1} samples of at least one window each is more than {limit}" in err, err
    assert list(tmp_path.iterdir()) == []
    # within the limit: the amount is printed before the recording is read
    rc = cli.main([str(a) for a in ("generate", "--model", d / "pre", "--data", absent, "--output",
                                    tmp_path / "g.nwb", "--num-samples", 2)])
    out, err = capsys.readouterr()
    assert rc == 2 and "--data" in err and str(absent) in err, err
    assert f"[neuroformer] generating 2 samples of the {n} test windows ({2 * n} windows)" in out, out
    # the files checked once per folder: one that exists, or --data named as one of them, is still refused
    (tmp_path / "g-sample7.nwb").write_bytes(b"")
    err = err_of(capsys, "generate", "--model", d / "pre", "--data", nwb, "--epoch", "wake",
                 "--output", tmp_path / "g.nwb", "--num-samples", 9)
    assert "--output: " in err and "g-sample7.nwb' exists; pass --overwrite" in err, err
    (tmp_path / "g-sample3.nwb").symlink_to(nwb)
    err = err_of(capsys, "generate", "--model", d / "pre", "--data", tmp_path / "g-sample3.nwb", "--epoch", "wake",
                 "--output", tmp_path / "g.nwb", "--num-samples", 9, "--overwrite")
    assert "g-sample3.nwb' is --data" in err and "the file this command reads" in err, err


def test_generate_names_sample_files_of_an_earlier_run_that_it_does_not_write(models, capsys, tmp_path):
    """'generate --num-samples 3 --overwrite' after a '--num-samples 4' with the same --output replaced
    g-sample0..2.nwb and left g-sample3.nwb of the earlier run beside them without a word: a reader
    took the four for one set. A warning names the files that this run does not write (kept, not
    deleted); a run of one sample names all the sample files beside its --output."""
    import warnings

    from hf_neuroformer.generation import read_settings_scratch
    from hf_neuroformer.io import read_nwb_scratch

    d, nwb, _ = models
    run = ["generate", "--model", d / "pre", "--data", nwb, "--epoch", "wake", "--max-spikes", 2,
           "--output", tmp_path / "g.nwb"]

    def said(argv):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rc = cli.main([str(a) for a in argv])
        err = capsys.readouterr().err
        return rc, err, [" ".join(str(w.message).split()) for w in caught if "from before" in str(w.message)]

    rc, err, warned = said(run + ["--num-samples", 4])
    assert rc == 0 and warned == [], err
    rc, err, warned = said(run + ["--num-samples", 3, "--overwrite", "--seed", 1])
    assert rc == 0, err
    assert warned == [f"--output: 1 file named as a sample of {str(tmp_path / 'g.nwb')!r} is in its folder from "
                      "before and is not written by this run: 'g-sample3.nwb' (this run writes 3 (g-sample0.nwb .. "
                      "g-sample2.nwb)); it is left as it is, but is not a sample of this run: delete it, or "
                      "use another --output, before reading the files as one set"], warned
    seeds = {r: read_settings_scratch(read_nwb_scratch(tmp_path / f"g-sample{r}.nwb"))["seed"] for r in range(4)}
    assert seeds == {0: 1, 1: 1, 2: 1, 3: 0}  # the earlier run's file is kept, as named
    # one sample: every sample file beside --output is named (--data absent: refused after the check)
    rc, err, warned = said(["generate", "--model", d / "pre", "--data", tmp_path / "absent.nwb",
                            "--output", tmp_path / "g.nwb"])
    assert rc == 2 and "absent.nwb" in err, err
    assert len(warned) == 1 and ("4 files named as samples of" in warned[0] and "'g-sample0.nwb', 'g-sample1.nwb', "
                                 "'g-sample2.nwb', 'g-sample3.nwb' (this run writes one file, g.nwb)" in warned[0]), warned
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"g-sample{r}.nwb" for r in range(4)]


def test_outputs_never_replace_the_inputs(models, capsys, tmp_path):
    """--overwrite replaces old outputs, not the files the command reads: 'generate --data X.nwb
    --output X.nwb --overwrite' replaced the recording with the generated spikes (the only copy of
    the data, gone), and 'evaluate --output/--figure' could replace --generated or --real."""
    import hashlib

    d, nwb, rec = models
    data = tmp_path / "recording.nwb"  # a copy: the old code destroyed the file it was given
    shutil.copy(nwb, data)

    def digest(p):
        return hashlib.sha256(p.read_bytes()).hexdigest()

    before = digest(data)
    err = err_of(capsys, "generate", "--model", d / "pre", "--data", data, "--epoch", "wake", "--output", data,
                 "--overwrite")
    assert "--output" in err and "--data" in err and "the file this command reads" in err
    assert digest(data) == before
    gen = tmp_path / "gen.nwb"
    assert cli.main(["generate", "--model", str(d / "pre"), "--data", str(data), "--epoch", "wake",
                     "--output", str(gen)]) == 0
    capsys.readouterr()
    gen_before = digest(gen)
    for flags, named in ((["--output", gen], "--generated"), (["--output", tmp_path / "e.json", "--figure", data],
                                                                "--real"), (["--figure", gen], "--generated")):
        err = err_of(capsys, "evaluate", "--real", data, "--epoch", "wake", "--generated", gen, *flags, "--overwrite")
        assert named in err and "the file this command reads" in err, err
    assert digest(data) == before and digest(gen) == gen_before
    assert not (tmp_path / "e.json").exists()


def test_default_figure_refusals_say_it_came_from_output(models, capsys, tmp_path):
    """evaluate without --figure writes the figure to --output with .png; a refusal of that file
    said '--figure: ...', a flag the user never gave ('--output M/training_curves.json' is refused
    because M/training_curves.png is the model's figure)."""
    d, nwb, _ = models
    gen = tmp_path / "none.nwb"  # refused before any file is read
    err = err_of(capsys, "evaluate", "--real", nwb, "--epoch", "wake", "--generated", gen, "--model", d / "pre",
                 "--output", d / "pre" / "training_curves.json")
    assert err.split("error: ", 1)[1].startswith(
        f"--figure (default: --output with .png): {str(d / 'pre' / 'training_curves.png')!r} is training_curves.png "
        "of the --model directory"), err
    assert not (d / "pre" / "training_curves.json").exists()
    (tmp_path / "e.png").write_bytes(b"an older figure")
    err = err_of(capsys, "evaluate", "--real", nwb, "--epoch", "wake", "--generated", gen,
                 "--output", tmp_path / "e.json")
    assert f"--figure (default: --output with .png): {str(tmp_path / 'e.png')!r} exists; pass --overwrite" in err, err
    # a --figure the user named keeps the plain flag
    err = err_of(capsys, "evaluate", "--real", nwb, "--epoch", "wake", "--generated", gen,
                 "--output", tmp_path / "f.json", "--figure", tmp_path / "e.png")
    assert f"error: --figure: {str(tmp_path / 'e.png')!r} exists" in err, err
    assert not (tmp_path / "e.json").exists() and not (tmp_path / "f.json").exists()


def test_resume_with_another_config_names_the_field(models, tmp_path):
    d, _, rec = models
    run = tmp_path / "run"
    shutil.copytree(d / "pre" / "checkpoints", run / "checkpoints")  # an interrupted run: checkpoints only
    with pytest.raises(ValueError) as info:
        train(rec, run, tiny_config(hidden_size=16), TrainingConfig(max_steps=2, save_every=1, batch_size=32),
              progress=False, resume=True)
    msg = str(info.value)
    assert "config.hidden_size=32" in msg and "16" in msg and "'hidden_size': (32, 16)" in msg
    assert "intermediate_size" not in msg  # the unchanged fields are not dumped


def test_command_line_messages_name_flags_without_their_python_arguments(models, capsys, tmp_path):
    """The library's 'pass --overwrite (overwrite=True)', '--resume (resume=False)' and '--output-dir
    (output_dir)' reached the command line as they are: it now names the flag alone; the Python API
    keeps both."""
    from hf_neuroformer.training import check_output_dir

    d, _, _ = models
    missing = tmp_path / "missing.nwb"
    err = err_of(capsys, "train", "--output-dir", d / "pre", "--data", missing)
    assert "already holds a model" in err and "pass --overwrite to replace it" in err, err
    empty = tmp_path / "empty"
    empty.mkdir()
    for extra in ([], ["--save-every", 5]):
        err = err_of(capsys, "train", "--resume", "--output-dir", empty, "--data", missing, *extra)
        assert "no checkpoint" in err and ("without --resume," in err or "without --resume;" in err), err
        assert "another --output-dir" in err and "(resume=" not in err and "(output_dir)" not in err, err
    with pytest.raises(FileExistsError, match=r"pass --overwrite \(overwrite=True\) to replace it"):
        check_output_dir(d / "pre")


def test_abbreviated_flags_are_refused_and_a_misspelt_command_gets_the_closest(capsys, tmp_path):
    """argparse took a prefix of a flag as the flag ('train --max-step 5' ran as --max-steps 5; a prefix of one
    flag silently becomes another once a flag is added): refused now, and a misspelt command is answered with
    the command meant."""
    missing = tmp_path / "missing.nwb"
    for argv, expected in ((["train", "--max-step", "5", "--output-dir", tmp_path / "t", "--data", missing],
                            "unrecognized arguments: --max-step 5"),
                           (["generate", "--model", tmp_path, "--output", tmp_path / "g.nwb", "--num-sample", "2"],
                            "unrecognized arguments: --num-sample 2"),
                           (["genrate", "--model", tmp_path], "invalid choice: 'genrate'"),
                           (["evalute"], "invalid choice: 'evalute'")):
        with pytest.raises(SystemExit) as exit_:
            cli.main([str(a) for a in argv])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and expected in err, err
        if "invalid choice" in expected:
            assert f"; did you mean '{'generate' if argv[0] == 'genrate' else 'evaluate'}'" in err, err
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_flag_is_refused_by_its_command_with_the_closest_flags_of_that_command(capsys, tmp_path):
    """A command's unknown flag was refused by the top-level parser: 'neuroformer: error: unrecognized
    arguments: --max-step 5', naming no command and suggesting no flag. The command refuses it now, with
    the closest of its own flags (difflib), one suggestion per unknown flag; an unknown argument that is no
    flag gets none, and a top-level unknown flag stays the top level's."""
    missing = tmp_path / "missing.nwb"
    for argv, expected in (
            (["train", "--max-step", "5", "--output-dir", tmp_path / "t", "--data", missing],
             "neuroformer train: error: unrecognized arguments: --max-step 5; did you mean '--max-steps'"),
            # --num-sample is generate's (--num-samples), not evaluate's or train's
            (["generate", "--model", tmp_path, "--output", tmp_path / "g.nwb", "--num-sample", "2"],
             "neuroformer generate: error: unrecognized arguments: --num-sample 2; did you mean '--num-samples'"),
            (["inspect", "--dat=x", "--figur", "f.png"],
             "neuroformer inspect: error: unrecognized arguments: --dat=x --figur f.png; did you mean '--data' for "
             "'--dat', '--figure' "),
            (["inspect", "--data", missing, "extra"], "neuroformer inspect: error: unrecognized arguments: extra\n"),
            (["--bogus", "inspect", "--data", missing], "neuroformer: error: unrecognized arguments: --bogus\n")):
        with pytest.raises(SystemExit) as exit_:
            cli.main([str(a) for a in argv])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.splitlines()[-1].startswith(expected.rstrip("\n")), err
        assert not expected.endswith("\n") or err.endswith(expected), err  # nothing suggested after it
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_flag_is_reported_with_a_missing_required_flag(capsys, tmp_path):
    """argparse checks a command's required flags before its unknown ones, so 'finetune --modle runs/x
    --target x' was answered 'the following arguments are required: --model' alone, and the misspelt
    --modle (with its did-you-mean) only on the next try. Both are reported at once, the unknown flag
    first; a missing required flag alone, or an unknown flag alone, reads as before."""
    for argv, expected in (
            (["finetune", "--modle", tmp_path / "x", "--target", "x"],
             f"neuroformer finetune: error: unrecognized arguments: --modle {tmp_path / 'x'}; did you mean "
             "'--model'? And the following arguments are required: --model"),
            (["generate", "--model", tmp_path, "--num-sample", "2"],
             "neuroformer generate: error: unrecognized arguments: --num-sample 2; did you mean '--num-samples'? "
             "And the following arguments are required: --output"),
            (["generate", "--model", tmp_path, "extra"],
             "neuroformer generate: error: unrecognized arguments: extra; and the following arguments are "
             "required: --output"),
            (["finetune", "--target", "x"], "neuroformer finetune: error: the following arguments are required: --model")):
        with pytest.raises(SystemExit) as exit_:
            cli.main([str(a) for a in argv])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.splitlines()[-1] == expected, err
    assert list(tmp_path.iterdir()) == []


def test_train_resume_of_a_finished_run_is_decided_before_loading_data(models, capsys, tmp_path):
    # a finished run (model + checkpoints) was refused with --resume ("already holds a model");
    # the data path does not exist: every answer below comes before the recording is read
    d, _, _ = models
    run, missing = tmp_path / "run", tmp_path / "missing.nwb"
    shutil.copytree(d / "pre", run)
    before = (run / "model.safetensors").read_bytes()
    capsys.readouterr()
    assert cli.main(["train", "--resume", "--output-dir", str(run), "--max-steps", "2", "--data", str(missing)]) == 0
    assert "nothing to do" in capsys.readouterr().out and (run / "model.safetensors").read_bytes() == before
    # without --max-steps the run keeps its own (2), not the default 3000 (which extended it, walk finding)
    assert cli.main(["train", "--resume", "--output-dir", str(run), "--data", str(missing)]) == 0
    assert "nothing to do" in capsys.readouterr().out and (run / "model.safetensors").read_bytes() == before
    err = err_of(capsys, "train", "--resume", "--output-dir", run, "--max-steps", 1, "--data", missing)
    assert "--max-steps (training.max_steps): 1" in err and "is at step 2" in err and "--max-steps 2 or more" in err
    shutil.rmtree(run / "checkpoints")
    err = err_of(capsys, "train", "--resume", "--output-dir", run, "--max-steps", 4, "--data", missing)
    assert "holds a finished model" in err and "no checkpoint" in err and "--save-every" in err
    assert (run / "model.safetensors").read_bytes() == before


def _copy_of_the_pretrained_run(models, tmp_path):
    """``(run, missing, before, fields)``: a copy of the pretrained run (``tmp_path / "run"``), a
    recording path that does not exist, the bytes of its model.safetensors and its model config
    fields as a YAML file gives them."""
    d, _, _ = models
    run, missing = tmp_path / "run", tmp_path / "missing.nwb"
    shutil.copytree(d / "pre", run)
    fields = {k: v for k, v in tiny_config().to_diff_dict().items() if k in NeuroformerConfig.__init__.__code__.co_varnames
              and k != "vocab_size"}
    return run, missing, (run / "model.safetensors").read_bytes(), fields


def test_train_resume_takes_the_training_fields_of_the_config_given_again(models, capsys, tmp_path):
    # 'neuroformer train --config run.yaml --resume' replaced the whole training: section of the file
    # by the checkpoint's settings: 'max_steps: 4' there was dropped silently ("nothing to do ...
    # --max-steps (training.max_steps) is 2", exit 0), so a run could not be extended from its config
    run, missing, before, fields = _copy_of_the_pretrained_run(models, tmp_path)
    yaml_path = tmp_path / "run.yaml"
    yaml_path.write_text(yaml.safe_dump({**fields, "training": {"max_steps": 1}}))
    capsys.readouterr()
    err = err_of(capsys, "train", "--resume", "--config", yaml_path, "--output-dir", run, "--data", missing)
    assert "--max-steps (training.max_steps): 1" in err and "is at step 2" in err, err
    # a flag still wins over the file, and the fields the file leaves out keep the checkpoint's values
    assert cli.main(["train", "--resume", "--config", str(yaml_path), "--output-dir", str(run), "--max-steps", "2",
                     "--data", str(missing)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    yaml_path.write_text(yaml.safe_dump({**fields, "training": {"max_steps": 4}}))
    assert cli.main(["train", "--resume", "--config", str(yaml_path), "--output-dir", str(run), "--data",
                     str(missing)]) == 2
    out, err = capsys.readouterr()
    assert "--data: no such file" in err, err  # the run goes on: the missing recording is read next
    # and says which settings the file changes (a run started with --max-steps over the file's value
    # and resumed without the flag gets the file's)
    assert (f"resume: --config {yaml_path} sets training.max_steps 4 (checkpoint: 2); a flag wins over the file "
            "(e.g. --max-steps 2 keeps the checkpoint's value)") in out, out
    assert (run / "model.safetensors").read_bytes() == before


def test_train_resume_with_nothing_to_do_compares_the_config_given(models, capsys, tmp_path):
    """Break test: 'neuroformer train --resume --config' at the run's own max_steps with another
    hidden_size said "nothing to do" (exit 0) without comparing the config, which a resume that
    trains on refuses naming the field; now refused the same way, before the data is read."""
    run, missing, before, fields = _copy_of_the_pretrained_run(models, tmp_path)
    yaml_path = tmp_path / "run.yaml"
    yaml_path.write_text(yaml.safe_dump({**fields, "hidden_size": 16}))
    capsys.readouterr()
    err = err_of(capsys, "train", "--resume", "--config", yaml_path, "--output-dir", run, "--data", missing)
    assert "was written with config.hidden_size=32, this run has 16" in err and "the same --config" in err, err
    yaml_path.write_text(yaml.safe_dump(fields))  # the run's own config: nothing to do
    assert cli.main(["train", "--resume", "--config", str(yaml_path), "--output-dir", str(run), "--data",
                     str(missing)]) == 0
    assert "nothing to do" in capsys.readouterr().out and (run / "model.safetensors").read_bytes() == before


PASS_CASES = [(c, f, v) for c in ("embed", "connectivity", "attention-map")
              for f, v in (("--batch-size", "0"), ("--batch-size", "-3"), ("--max-windows", "0"),
                           ("--max-windows", "-4"), ("--device", "cuda"))
              if c != "embed" or f == "--batch-size"]  # embed has neither --max-windows nor --device


@pytest.mark.parametrize("command, flag, value", PASS_CASES)
def test_pass_settings_checked_before_loading(capsys, tmp_path, command, flag, value):
    # 0 gave "range() arg 3 must not be zero", -3 no windows and a PCA error (embed), a negative
    # --max-windows dropped the last windows silently (connectivity), cuda an AssertionError
    if flag == "--device" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA: --device cuda is valid here")
    out = tmp_path / ("out.png" if command != "connectivity" else "out")
    extra = ["--color-by", "ry"] if command == "embed" else []
    err = err_of(capsys, command, "--model", tmp_path / "no-model", "--data", tmp_path / "missing.nwb",
                 "--output", out, *extra, flag, value)
    msg = err.split(": error: ")[1]
    assert msg.startswith(f"{flag}: "), err
    assert ("expected an integer >= 1" in msg) if flag != "--device" else ("not available" in msg), err
    assert not out.exists()


SLASH_CASES = [
    ("embed", "--output", "emb.png/", ["--model", "model", "--color-by", "ry"]),
    ("attention-map", "--output", "att.png/", ["--model", "model", "--data", "data.nwb"]),
    ("evaluate", "--output", "eval.json/", ["--generated", "data.nwb"]),
    ("evaluate", "--figure", "eval.png/", ["--generated", "data.nwb"]),
    ("decode", "--output", "dec.csv/", ["--model", "model"]),
    ("ablate", "--output", "abl.md/", ["--config", "c.yaml"]),
]


@pytest.mark.parametrize("command, flag, name, extra", SLASH_CASES)
def test_a_file_output_with_a_trailing_slash_is_refused_not_written_without_it(capsys, tmp_path, command, flag,
                                                                               name, extra):
    # these commands took the text as a Path first, which drops the slash: 'embed --output runs/x.png/' wrote the
    # file runs/x.png (inspect and generate refused the same name, as a directory)
    (tmp_path / "model").mkdir()
    for f in ("data.nwb", "c.yaml"):
        (tmp_path / f).write_text("")
    before = sorted(tmp_path.iterdir())
    extra = [str(tmp_path / v) if v in ("model", "data.nwb", "c.yaml") else v for v in extra]
    err = err_of(capsys, command, *extra, flag, f"{tmp_path}/{name}")
    assert f"{flag}: '{tmp_path}/{name}' names a directory (trailing slash); expected a file name" in err, err
    assert sorted(tmp_path.iterdir()) == before


def test_embed_color_by_a_variable_without_samples_in_the_windows_is_refused(models, capsys, tmp_path):
    # sleep_ripples has no sample in the wake windows: embed exited 0 with an all-grey plot and
    # only printed "860 windows without a value"
    d, nwb, _ = models
    out = tmp_path / "emb.png"
    err = err_of(capsys, "embed", "--model", d / "pre", "--data", nwb, "--epoch", "wake", "--color-by",
                 "sleep_ripples", "--output", out)
    assert "--color-by: 'sleep_ripples' has no sample in any of the" in err, err
    plan = d / "pre" / "splits.json"
    assert f"test windows (--split test) of the model's split plan ({plan}), read over --epoch 'wake'" in err, err
    assert not out.exists() and not out.with_suffix(".npy").exists()
    # without --epoch the windows are still the model's (its wake windows), not 'the whole recording', and
    # another --epoch cannot move them: the message said both ('of the whole recording (no --epoch) ... or
    # the --epoch / --split where it is recorded')
    err = err_of(capsys, "embed", "--model", d / "pre", "--data", nwb, "--color-by", "sleep_ripples", "--output", out)
    assert f"test windows (--split test) of the model's split plan ({plan}: the time it was trained on; no " \
           "--epoch given)" in err, err
    assert "whole recording" not in err and "pass a variable recorded during those windows, or another --split " \
           "(the windows come from the model, so another --epoch cannot move them)" in err, err
    assert not out.exists() and not out.with_suffix(".npy").exists()


def test_embed_warns_of_windows_cut_to_the_token_blocks(models, tmp_path):
    """embed computed the latents of windows cut to max_window_length / max_past_length (their kept
    spikes only) without a word: the processor's to_dataset does not warn, and neither did embed.
    It now gives the processor's TruncatedWindowsWarning with the counts of its windows."""
    from hf_neuroformer import NeuroformerProcessor
    from hf_neuroformer.windows import window_starts_for_split

    d, nwb, rec = models
    model, tok, plan = load_pretrained(d / "pre")
    starts, _ = window_starts_for_split(plan, "test", model.config, stride=model.config.current_window)
    cols = NeuroformerProcessor(tok).tokenize(rec, starts)
    n_past = np.asarray(cols["n_past_truncated"])
    assert n_past.any()  # the premise: some 1-s past windows of A2929 hold more than 127 spikes
    from hf_neuroformer.processing_neuroformer import TruncatedWindowsWarning

    with pytest.warns(TruncatedWindowsWarning) as caught:
        assert cli.main(["embed", "--model", str(d / "pre"), "--data", str(nwb), "--epoch", "wake", "--color-by",
                         "ry", "--output", str(tmp_path / "emb.png")]) == 0
    said = " ".join(str(w.message) for w in caught if w.category is TruncatedWindowsWarning)
    assert (f"{int((n_past > 0).sum())} past windows more than max_past_length - 1 = 127 "
            f"({int(n_past.sum())} spikes left out, the earliest)") in said, said


@pytest.mark.parametrize("units, expected", [("3,3", "expected distinct unit indices, got '3,3' (unit 3 more"),
                                              ("1,3,1,3", "(units 1, 3 more than once)"),
                                              ("3,,4", "an empty item in '3,,4'")])
def test_attention_map_units_are_distinct(capsys, tmp_path, units, expected):
    # '--units 3,3' was accepted and printed "units [3, 3]" (each unit's spikes still counted once)
    out = tmp_path / "out.png"
    with pytest.raises(SystemExit) as exit_info:  # argparse refuses it (the flag's type), exit status 2
        cli.main(["attention-map", "--model", str(tmp_path / "no-model"), "--data", str(tmp_path / "missing.nwb"),
                  "--output", str(out), "--units", units])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.rstrip("\n").split("\n")[-1]
    assert err.startswith("neuroformer attention-map: error: argument --units: "), err
    assert expected in err, err
    assert not out.exists()


@pytest.mark.parametrize("flag, value", [("--max-steps", "0"), ("--max-epochs", "-1"), ("--batch-size", "0"),
                                         ("--save-every", "0"), ("--seed", "-1"), ("--gradient-accumulation-steps", "0")])
def test_train_numbers_name_their_flag(capsys, tmp_path, flag, value):
    # they were named as the TrainingConfig field ("training.max_steps: expected ..."), unlike
    # the other commands' flags
    err = err_of(capsys, "train", "--output-dir", tmp_path / "m", flag, value)
    assert err.split(": error: ")[1].startswith(f"{flag}: expected an integer >= "), err
    assert not (tmp_path / "m").exists()


def test_fp16_on_a_cpu_is_refused_by_its_flag_before_the_data_is_read(capsys, tmp_path, monkeypatch):
    """Break test: --mixed-precision fp16 on a CPU was refused only after the recording was read
    and Accelerate started, as "mixed_precision='fp16' on a CPU", naming the config field. It is
    refused first now (a --data file that does not exist is never reached), by the flag, or by
    the config field and file that asked for it (ACCELERATE_USE_CPU makes this a CPU run on any machine)."""
    monkeypatch.setenv("ACCELERATE_USE_CPU", "1")
    missing = tmp_path / "absent.nwb"
    err = err_of(capsys, "train", "--data", missing, "--mixed-precision", "fp16", "--output-dir", tmp_path / "m")
    assert err.split(": error: ")[1].startswith("--mixed-precision: 'fp16' on a CPU"), err
    assert "bf16" in err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("training:\n  mixed_precision: fp16\n")
    err = err_of(capsys, "train", "--config", cfg, "--data", missing, "--output-dir", tmp_path / "m")
    assert f"training.mixed_precision (--config {cfg}): 'fp16' on a CPU" in err, err
    assert not (tmp_path / "m").exists()


def test_an_explicit_no_mixed_precision_under_a_launchers_bf16_is_refused_not_trained_in_bf16(capsys, tmp_path,
                                                                                             monkeypatch):
    """Break test: 'accelerate launch --mixed_precision bf16 ... train --mixed-precision no' trained in bf16
    (train() takes the launcher's precision over a "no" it cannot tell from the default) and said so in
    one printed line, while bf16 against fp16 is refused as two precisions. The explicit "no", by the flag
    or by --config's training: section, is refused now, before the data is read; left out, the launcher's
    precision is still taken (test_training: test_accelerate_launch_mixed_precision_is_used)."""
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")
    missing = tmp_path / "absent.nwb"
    err = err_of(capsys, "train", "--data", missing, "--mixed-precision", "no", "--output-dir", tmp_path / "m")
    assert err.split(": error: ")[1].startswith("--mixed-precision: 'no', but the launcher asks for 'bf16'"), err
    assert "leave --mixed-precision out to train in bf16" in err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("training:\n  mixed_precision: no\n")  # YAML 1.1's False, taken as "no"
    err = err_of(capsys, "train", "--config", cfg, "--data", missing, "--output-dir", tmp_path / "m")
    assert f"training.mixed_precision (--config {cfg}): 'no', but the launcher asks for 'bf16'" in err, err
    # the same precision as the launcher's, or none given: on to the data (missing here)
    for extra in (["--mixed-precision", "bf16"], []):
        err = err_of(capsys, "train", "--data", missing, "--output-dir", tmp_path / "m", *extra)
        assert "--data: no such file" in err, err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("argv, expected", [
    (["--kind", "hub-glm", "--units", "20", "--hubs", "1", "--targets-per-hub", "5", "--duration", "inf"],
     "--duration: expected a finite number of seconds in (0, 3600]"),
    (["--kind", "hub-glm", "--units", "20", "--hubs", "1", "--targets-per-hub", "5", "--duration", "1e9"],
     "--duration: expected a finite number of seconds in (0, 3600]"),
    (["--kind", "glm", "--units", "20", "--duration", "5", "--seed", "-1"], "--seed: expected an integer >= 0"),
    # under half a 2-ms bin (0.001 s, half a bin, rounds up to one bin, as simulate_coupled_network rounds)
    (["--kind", "glm", "--units", "20", "--duration", "0.0009"], "--duration: expected at least one simulation bin"),
    (["--kind", "glm", "--units", "20", "--hubs", "7", "--targets-per-hub", "99", "--duration", "5"],
     "--hubs/--targets-per-hub: only for --kind hub or hub-glm"),
    (["--kind", "glm", "--units", "20", "--targets-per-hub", "3", "--duration", "5"],
     "--targets-per-hub: only for --kind hub or hub-glm"),
    (["--kind", "hub-glm", "--units", "20", "--duration", "5", "--codegen", "cython"], "--codegen: only for --kind hub"),
    (["--kind", "glm", "--units", "20", "--duration", "5", "--codegen", "numpy"], "--codegen: only for --kind hub"),
    # --hubs not given: its default is named as such (it read as a value the user had passed)
    (["--kind", "hub-glm", "--units", "3", "--duration", "5"],
     "--hubs: expected 0 <= n_hubs < n_units=3, got 3 (default 3): fewer hubs or more units"),
])
def test_simulate_numbers_name_their_flag(capsys, tmp_path, argv, expected):
    out = tmp_path / "s.nwb"
    err = err_of(capsys, "simulate", *argv, "--output", out)
    assert err.split(": error: ")[1].startswith(expected), err
    assert not out.exists()


@pytest.mark.parametrize("argv", [
    ["simulate", "--kind", "glm", "--units", "5", "--duration", "1"],
    ["render-gratings", "--data", "missing-folder"],
    ["generate", "--model", "no-model"],
    # named as given: with several samples the refusal named 'x-sample0.txt', a file no one asked for
    ["generate", "--model", "no-model", "--num-samples", "2"],
])
def test_nwb_writers_refuse_other_file_names(capsys, tmp_path, argv):
    # simulate --output x.txt wrote an NWB file named .txt (break test); refused before any work
    out = tmp_path / "x.txt"
    err = err_of(capsys, *argv, "--output", out)
    assert err.split(": error: ")[1].startswith(
        f"--output: this command writes NWB; expected a file name ending in .nwb, got {str(out)!r}"), err
    assert not out.exists()
    # "x.nwb/" named a directory, and a file x.nwb was written
    err = err_of(capsys, *argv, "--output", f"{tmp_path / 'x.nwb'}/")
    assert "--output: " in err and "names a directory (trailing slash)" in err, err
    assert not (tmp_path / "x.nwb").exists()


def test_simulators_refuse_infinite_and_sub_bin_durations():
    from hf_neuroformer.simulation import HubNetworkParams, simulate_coupled_network, simulate_hub_glm

    with pytest.raises(ValueError, match="duration: expected a finite positive number"):
        simulate_hub_glm(HubNetworkParams(n_units=20, n_hubs=1, targets_per_hub=5), duration=float("inf"))
    with pytest.raises(ValueError, match=r"duration: expected at least one bin of 0\.002 s"):
        simulate_coupled_network(n_units=5, duration=0.0009)


def test_binned_simulators_record_the_simulated_duration():
    # duration=1.0015 at 2 ms bins simulates 501 bins (0..1.002 s) and recorded params['duration'] 1.0015,
    # not the span of the recording it returned
    from hf_neuroformer.simulation import HubNetworkParams, simulate_coupled_network, simulate_hub_glm

    net = simulate_coupled_network(n_units=5, duration=1.0015, seed=1)
    assert net.recording.time_domain[1] == pytest.approx(1.002, abs=1e-12)
    assert net.params["duration"] == net.recording.time_domain[1]
    assert net.params["duration_requested"] == 1.0015
    glm = simulate_hub_glm(HubNetworkParams(n_units=20, n_hubs=1, targets_per_hub=5), duration=1.0015, seed=1)
    assert glm.params["duration"] == glm.recording.time_domain[1] != 1.0015  # whole 1 ms bins
    assert abs(glm.params["duration"] - 1.0015) <= 0.0005 + 1e-12
    assert glm.params["duration_requested"] == 1.0015
    # a whole number of bins: nothing to add
    assert "duration_requested" not in simulate_coupled_network(n_units=5, duration=1.0, seed=1).params
    # half a bin rounds up, whichever whole number of bins precedes it (round() took halves to even:
    # 0.005 s gave 0.004 s and 0.007 s gave 0.008 s at 2 ms bins)
    spans = [simulate_coupled_network(n_units=4, duration=d, seed=0, progress=False).params["duration"]
             for d in (0.005, 0.007, 0.009)]
    assert spans == pytest.approx([0.006, 0.008, 0.010], abs=1e-12)


def test_version_is_one_line_with_the_libraries(capsys):
    """``neuroformer --version``: the package's version (``__version__``, which setup.py's and so the
    installed distribution's equal) and the versions a bug report needs, on one line."""
    from importlib.metadata import version

    import transformers

    import hf_neuroformer

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code in (0, None)
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    assert version("hf_neuroformer") == hf_neuroformer.__version__
    assert out.startswith(f"hf_neuroformer {hf_neuroformer.__version__} (torch {torch.__version__}, "
                          f"transformers {transformers.__version__}, ")
    # numpy: setup.py pins numpy<2.4 because brian2 2.9 does not import with 2.4, so a report needs it
    assert f", numpy {np.__version__}; Python " in out


#: what the console script runs for the answers below, in a fresh interpreter: each argv's exit
#: status, stdout and stderr, then the modules it had imported
_ENTRY_SCRIPT = """
import contextlib, io, json, sys
from {module} import {function} as main
out = []
for argv in json.loads(sys.argv[1]):
    so, se = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(so), contextlib.redirect_stderr(se):
        try:
            code = main(argv)
        except SystemExit as stop:
            code = stop.code
    out.append([code or 0, so.getvalue(), se.getvalue()])
print(json.dumps([out, sorted(m for m in sys.modules if "." not in m)]))
"""


def test_help_version_and_usage_errors_import_no_library(monkeypatch):
    """``neuroformer --version``, ``--help``, ``<command> --help`` and usage errors took 5-6 s of CPU
    before answering: the console script imported ``hf_neuroformer.cli``, so the package's
    ``__init__`` (torch, transformers) ran first. The entry point of setup.py's console script, run
    in a fresh interpreter, now answers them without importing the package, torch or the other heavy
    libraries, with the same text as the parser the package builds (``--help`` of every command,
    ``--version``'s line, argparse's usage errors; an empty path is refused before any import too).
    A malformed ``finetune --set`` (``badkey``, no ``=``) is such a usage error: its argparse type
    imported the finetuning module (torch, transformers) first. So are refusals of values whose
    allowed range or choices need no library (``finetune --set badkey=1`` or ``--kind foo``, ``train
    --max-steps -5``, ``generate --top-p 7``): they imported torch before saying so (5-10 s). And
    the numbers of finetune (``--max-steps``, ``--fraction``, ``--ema-decay``), ``--ci-block-s`` of
    every command, ``decode --batch-size``, ``simulate --units`` (and its hub layout: ``--hubs``, ``--targets-per-hub``), ``evaluate --min-isis`` (``--bin-size``,
    ``--min-trial-coverage``, ``--timing-tolerances``, ``--timing-chance-draws``) and ``connectivity --max-windows``, whose checks imported torch, transformers or numpy first
    (18-25 s under load), and a malformed ``finetune --target`` item (``x[``: 13 s).
    Every command's --help also says what it computes, reads and writes, with an example line (only
    push, simulate and connectivity had a description)."""
    import argparse
    import os
    import subprocess
    import sys
    from pathlib import Path

    import hf_neuroformer

    setup_py = Path(hf_neuroformer.__file__).parents[2] / "setup.py"
    module, function = re.search(r'"neuroformer=([\w.]+):(\w+)"', setup_py.read_text()).groups()
    sub = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    # usage errors of a command's own arguments too: a malformed --set imported the finetuning module (torch) to
    # say so (5-6 s)
    usage_errors = [["train", "--bogus"], ["finetune", "--set", "badkey"], ["finetune", "--model", "m", "--target",
                    "x", "--set", "=1"], ["finetune"], ["train", "--max-steps", "abc"],
                    ["attention-map", "--model", "m", "--data", "d", "--output", "a.png", "--units", "3,3"]]
    # and a command's refusals of its flags alone (a combination, a number), checked before its first import
    refusals = {("evaluate", "--generated", "g.nwb", "--split", "test"): "--split: only with --model",
                ("evaluate", "--generated", "g.nwb", "--ci-block-s", "5"): "--ci-block-s: only with --model",
                ("train", "--resume", "--overwrite"): "--resume and --overwrite: give one of them",
                ("ablate", "--config", "c.yaml", "--output", "t.md", "--seed", "1", "--seeds", "1,2"):
                    "--seed / --seeds: give one of them",
                ("ablate", "--config", "c.yaml", "--output", "t.md", "--seeds", "1,1"): "--seeds: expected distinct",
                ("generate", "--model", "m", "--output", "g.nwb", "--batch-size", "0"): "--batch-size: expected an "
                                                                                        "integer >= 1, got 0",
                ("generate", "--model", "m", "--output", "g.nwb", "--max-spikes", "0"): "--max-spikes: expected an "
                                                                                        "integer >= 1",
                # values known without the library (hf_neuroformer.argument_checks): each imported torch first
                ("generate", "--model", "m", "--output", "g.nwb", "--top-p", "7"): "--top-p: expected a value in "
                                                                                    "(0, 1], got 7.0",
                ("generate", "--model", "m", "--output", "g.nwb", "--seed", str(2 ** 64)): "--seed: expected an "
                                                                                           "integer in [-2**63, 2**64)",
                ("train", "--max-steps", "-5"): "--max-steps: expected an integer >= 1, got -5",
                ("train", "--save-every", "0"): "--save-every: expected an integer >= 1, got 0",
                ("train", "--seed", "-1"): "--seed: expected an integer >= 0, got -1",
                # numpy's legacy seed range (Accelerate's set_seed): refused after the recording was read, unnamed
                ("train", "--seed", str(2 ** 32)): "--seed: expected an integer in [0, 4294967295]",
                ("ablate", "--config", "c.yaml", "--output", "t.md", "--seeds", f"0,{2 ** 32}"): "--seeds: expected "
                                                                                                "integers in [0, "
                                                                                                "4294967295]",
                # set_seed's range: refused only once the model and the recording were read, unnamed
                ("finetune", "--model", "m", "--target", "x", "--seed", str(2 ** 32)): "--seed: expected an integer "
                                                                                        "in [0, 4294967295]",
                ("finetune", "--model", "m", "--target", "x", "--set", "badkey=1"): "--set: config_overrides: "
                                                                                    "['badkey'] cannot be changed",
                ("finetune", "--model", "m", "--target", "x", "--set", "hidden_dropout=0.1", "--set",
                 "hidden_dropout=0.2"): "--set: hidden_dropout given twice (0.1 and 0.2)",
                ("finetune", "--model", "m", "--target", "x", "--kind", "foo"): "--kind: expected one of regression, "
                                                                                "classification, circular per target",
                ("finetune", "--model", "m", "--target", "x,y", "--kind", "regression"): "--kind: expected one kind "
                                                                                         "per --target item (2;",
                # the form of a --target item (argument_checks.target_label_form): refused after torch's import (13 s)
                ("finetune", "--model", "m", "--target", "x[", "--max-steps", "5"): "--target: 'x[' is not NAME or "
                                                                                    "NAME[k]; expected a variable name",
                # numbers whose checks imported torch, transformers or numpy first (18-25 s under load)
                ("finetune", "--model", "m", "--target", "x", "--max-steps", "-5"): "--max-steps: expected a whole "
                                                                                    "number >= 1, got -5",
                ("finetune", "--model", "m", "--target", "x", "--fraction", "2"): "--fraction: expected a number in "
                                                                                  "(0, 1], got 2.0",
                ("finetune", "--model", "m", "--target", "x", "--ema-decay", "2"): "--ema-decay: expected None (off) "
                                                                                   "or a number in (0, 1)",
                ("finetune", "--model", "m", "--target", "x", "--ci-block-s", "0"): "--ci-block-s: expected a finite "
                                                                                    "number of seconds > 0",
                ("finetune", "--model", "m", "--target", "x", "--regression-loss", "hl_gauss", "--num-bins", "64",
                 "--hl-gauss-sigma-ratio", "20"): "--num-bins: expected more than 2 * 3 * hl_gauss_sigma_ratio",
                ("train", "--ci-block-s", "0"): "--ci-block-s: expected a finite number of seconds > 0",
                ("evaluate", "--generated", "g.nwb", "--model", "m", "--ci-block-s", "-1"): "--ci-block-s: expected a "
                                                                                            "finite number of seconds",
                ("decode", "--model", "m", "--output", "o.csv", "--ci-block-s", "nan"): "--ci-block-s: expected a "
                                                                                        "finite number of seconds",
                ("decode", "--model", "m", "--output", "o.csv", "--batch-size", "0"): "--batch-size: expected an "
                                                                                      "integer >= 1, got 0",
                ("simulate", "--output", "s.nwb", "--units", "1"): "--units: expected an integer >= 2",
                # the hub layout (hf_neuroformer.argument_checks.check_hub_layout): refused after the package's import
                ("simulate", "--output", "s.nwb", "--units", "40", "--hubs", "2"): "--targets-per-hub: expected 1 <= "
                                                                                   "targets_per_hub and n_hubs * "
                                                                                   "targets_per_hub <= the 38 non-hub "
                                                                                   "units, got 30 x 2 hubs (default 30)",
                ("simulate", "--output", "s.nwb", "--units", "40", "--hubs", "50"): "--hubs: expected 0 <= n_hubs < "
                                                                                    "n_units=40, got 50",
                ("simulate", "--output", "s.nwb", "--units", "3"): "--hubs: expected 0 <= n_hubs < n_units=3, got 3 "
                                                                   "(default 3): fewer hubs or more units",
                ("simulate", "--output", "s.nwb", "--hubs", "0", "--targets-per-hub", "3"): "--targets-per-hub: only "
                                                                                             "with --hubs >= 1",
                ("evaluate", "--generated", "g.nwb", "--min-isis", "-1"): "--min-isis: expected an integer >= 1, got -1",
                ("evaluate", "--generated", "g.nwb", "--bin-size", "0"): "--bin-size: expected a positive finite "
                                                                         "number of seconds, got 0.0",
                ("evaluate", "--generated", "g.nwb", "--min-trial-coverage", "2"): "--min-trial-coverage: expected a "
                                                                                   "fraction in (0, 1], got 2.0",
                # milliseconds for seconds: scored at 5, 10 and 25 s, and refused only after torch was imported
                ("evaluate", "--generated", "g.nwb", "--timing-tolerances", "5,10,25"): "--timing-tolerances[0]: expected "
                                                                                       "a coincidence window below 1 s",
                # below 0.1 ms: 0.0000000004 s was scored as timing_f1_0ms (after torch was imported)
                ("evaluate", "--generated", "g.nwb", "--timing-tolerances", "0.005,0.0000000004"): "--timing-tolerances[1]: "
                                                                                                  "expected a coincidence "
                                                                                                  "window of at least "
                                                                                                  "0.0001 s (0.1 ms)",
                ("evaluate", "--generated", "g.nwb", "--timing-chance-draws", "0"): "--timing-chance-draws: expected an "
                                                                                    "integer >= 1, got 0",
                ("connectivity", "--model", "m", "--data", "d", "--output", "o", "--max-windows", "0"): "--max-windows: "
                                                                                                        "expected an "
                                                                                                        "integer >= 1"}
    argvs = ([["--help"], ["--version"], ["inspect", "--data", ""]] + usage_errors + [list(a) for a in refusals]
             + [[name, "--help"] for name in sub.choices])
    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps help to the terminal: the same width on both sides
    src = str(Path(hf_neuroformer.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run([sys.executable, "-c", _ENTRY_SCRIPT.format(module=module, function=function),
                          json.dumps(argvs)], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    answers, imported = json.loads(res.stdout)
    heavy = {"hf_neuroformer", "torch", "transformers", "datasets", "accelerate", "brian2", "matplotlib",
             "numpy", "pandas", "scipy", "sklearn", "pynwb", "h5py", "huggingface_hub"}
    assert not heavy & set(imported)
    answers = dict(zip(map(tuple, argvs), answers))
    parser = cli.build_parser()
    assert answers[("--help",)] == [0, parser.format_help(), ""]
    for name, command in sub.choices.items():
        assert answers[(name, "--help")] == [0, command.format_help(), ""], name
        # only push, simulate and connectivity said what they compute and write: the others listed flags only
        description = " ".join((command.description or "").split())
        assert len(description) > 100 and f"Example: neuroformer {name} --" in description, (name, description)
        # (argparse wraps lines at hyphens too: compared without whitespace)
        assert "".join(description.split()) in "".join(answers[(name, "--help")][1].split()), name
    assert answers[("--version",)] == [0, cli._version_line() + "\n", ""]
    for argv in usage_errors:
        with pytest.raises(SystemExit):
            with contextlib.redirect_stderr(io.StringIO()) as usage:
                parser.parse_args(argv)
        assert answers[tuple(argv)] == [2, "", usage.getvalue()], argv
    assert answers[("train", "--bogus")][2].endswith("neuroformer train: error: unrecognized arguments: --bogus\n")
    assert answers[("finetune", "--set", "badkey")][2].endswith(
        "neuroformer finetune: error: argument --set: expected KEY=VALUE, e.g. hidden_dropout=0.3, got 'badkey'\n")
    assert "argument --max-steps: invalid int value: 'abc'" in answers[("train", "--max-steps", "abc")][2]
    for argv, text in refusals.items():
        code, out, err = answers[argv]
        assert (code, out) == (2, "") and err.startswith(f"neuroformer {argv[0]}: error: {text}"), (argv, err)
    code, out, err = answers[("inspect", "--data", "")]
    assert (code, out) == (2, "") and err.startswith("neuroformer inspect: error: --data: empty path")


def test_number_tests_of_the_remote_code_and_of_argument_checks_are_one_definition():
    """is_whole_number, is_real_number and is_finite_number are defined once, in argument_checks
    (which the console script loads without transformers), and configuration_neuroformer (Hub
    remote code) imports them from there: the CLI's fast refusals and the library's cannot
    disagree. argument_checks then travels as remote code, so it may import only the standard
    library (no other module of the package, no numpy)."""
    import ast
    import inspect
    import sys

    from hf_neuroformer import argument_checks, configuration_neuroformer

    for name in ("is_whole_number", "is_real_number", "is_finite_number"):
        assert getattr(configuration_neuroformer, name) is getattr(argument_checks, name), name
    tree = ast.parse(inspect.getsource(argument_checks))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"argument_checks imports a package module relatively: {ast.dump(node)}"
            imported.add(node.module.split(".")[0])
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


def _entry_beside_a_package(tmp_path, init_text: str, bytecode_only: bool = False):
    """``tmp_path`` holding a copy of the console script's entry module and a package
    ``hf_neuroformer`` of copies of cli.py and argument_checks.py (which it imports) and an
    ``__init__.py`` of ``init_text``, both replaced by their bytecode (``compileall -b``) with ``bytecode_only``; returns ``(exit status, stdout, stderr)``
    of ``neuroformer --version`` through the entry in a fresh interpreter with only ``tmp_path`` on
    PYTHONPATH."""
    import compileall
    import os
    import subprocess
    import sys
    from pathlib import Path

    import hf_neuroformer

    src = Path(hf_neuroformer.__file__).parents[1]
    pkg = tmp_path / "hf_neuroformer"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(init_text)
    for name in ("cli.py", "argument_checks.py"):
        shutil.copy(src / "hf_neuroformer" / name, pkg / name)
        if bytecode_only:
            assert compileall.compile_file(pkg / name, legacy=True, quiet=1)
            (pkg / name).unlink()
    shutil.copy(src / "hf_neuroformer_entry.py", tmp_path / "hf_neuroformer_entry.py")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    res = subprocess.run([sys.executable, "-c", "import sys, hf_neuroformer_entry as e; sys.exit(e.main(['--version']))"],
                         capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    return res.returncode, res.stdout, res.stderr


def test_version_through_the_console_script_is_the_running_sources_not_the_installed_distributions(tmp_path):
    """``neuroformer --version`` through the console script (the package not imported) gave the
    installed distribution's version, not that of the code it ran: a source tree of another version
    on PYTHONPATH (a checkout run beside an installed release) reported the release's. It reads the
    ``__version__`` literal of the package it loaded cli.py from, without running its ``__init__``
    (here one that would fail if run)."""
    code, out, err = _entry_beside_a_package(tmp_path, '__version__ = "9.8.7"\nraise RuntimeError("the package was run")\n')
    assert code == 0, err
    assert out.startswith("hf_neuroformer 9.8.7 (torch "), out


def test_console_script_runs_an_installed_package_without_sources(tmp_path):
    """The console script loaded ``hf_neuroformer/cli.py`` by that file name, so a package installed
    as bytecode only (``compileall -b``, sources removed), which ``import hf_neuroformer.cli`` runs,
    failed with FileNotFoundError before any command; it now asks the import system for the module
    in the package's folder."""
    code, out, err = _entry_beside_a_package(tmp_path, '__version__ = "9.8.7"\n', bytecode_only=True)
    assert code == 0, err
    assert out.startswith("hf_neuroformer 9.8.7 (torch "), out


def test_package_imported_after_the_console_script_has_its_cli_attribute():
    """The console script loads cli.py as ``hf_neuroformer.cli`` before the package, so the import
    system never set the package's ``cli`` attribute: in that process ``import hf_neuroformer.cli``
    followed by ``hf_neuroformer.cli.main`` raised AttributeError (found by helper-209). The real
    package and entry, in a fresh interpreter. The same for ``argument_checks``, which it loads before
    cli.py, and which the library's modules then import (one module, not a second copy)."""
    import subprocess
    import sys

    code = ("import sys, hf_neuroformer_entry as e; m = e._cli_module(); import hf_neuroformer.cli; "
            "import hf_neuroformer; print(hf_neuroformer.cli is m, hf_neuroformer.cli.main is m.main, "
            "hf_neuroformer.argument_checks is sys.modules['hf_neuroformer.argument_checks'], "
            "__import__('hf_neuroformer.decoding').decoding.KINDS is m.KINDS)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["True"] * 4, res.stdout


def test_every_option_of_every_command_has_help_text():
    """A README walk found `generate --temperature/--top-p/--top-k/--epoch`, `train
    --attn-implementation` and a dozen more listed by `--help` with no word on what they do."""
    import argparse

    from hf_neuroformer.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = {name: [a.option_strings[-1] for a in p._actions if a.option_strings and not a.help]
               for name, p in sub.choices.items()}
    assert not {k: v for k, v in missing.items() if v}
    assert len(sub.choices) >= 12  # every command was looked at
    # a help of the default alone says nothing either: render-gratings' --contrast read '(default: 0.8)',
    # with no word on what it is or its range
    bare = {name: [a.option_strings[-1] for a in p._actions
                   if a.option_strings and a.help
                   and not re.sub(r"\(default[^)]*\)", "", p._get_formatter()._expand_help(a)).strip()]
            for name, p in sub.choices.items()}
    assert not {k: v for k, v in bare.items() if v}


def test_overwrite_help_covers_the_figure_it_replaces():
    """decode's --overwrite help said it replaces --output only, but it also replaces an existing
    --figure, which is refused without it: the help of every command that draws a --figure names it
    (or says 'output files')."""
    import argparse

    from hf_neuroformer.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        helps = {a.option_strings[-1]: a.help for a in p._actions if a.option_strings}
        if "--figure" in helps:
            assert "--figure" in helps["--overwrite"] or "output files" in helps["--overwrite"], name


def test_generate_sampling_flags_are_named_by_flag_before_the_model_is_read(tmp_path, capsys):
    """The break test saw `--temperature 0` refused as 'temperature: ...' (the Python field) after
    the model and the recording had been read; the model directory here does not exist, so an
    error about it would mean the flags were checked too late."""
    missing = tmp_path / "no-model"
    # '--temperature inf' was refused as 'expected a temperature > 0, got inf', which inf is
    inf = "--temperature: expected a temperature > 0 and finite, got inf"
    for argv, flag in ((["--temperature", "0"], "--temperature:"), (["--top-p", "1.5"], "--top-p:"),
                       (["--temperature", "inf"], inf), (["--dt-temperature", "-inf"], "--dt-temperature: expected a "
                                                          "temperature > 0 and finite, got -inf"),
                       (["--dt-top-k", "-1"], "--dt-top-k:"), (["--seed", str(2 ** 64)], "--seed:")):
        err = err_of(capsys, "generate", "--model", missing, "--output", tmp_path / "g.nwb", *argv)
        assert err.startswith(f"neuroformer generate: error: {flag}"), err
        assert "no-model" not in err
    assert not (tmp_path / "g.nwb").exists()


def test_train_resume_with_nothing_left_does_not_claim_to_write(models, capsys, tmp_path, monkeypatch):
    # a run ended by --max-epochs, resumed with the default --max-steps: train() says "nothing to
    # do" and returns the old metrics.json; the command then printed "wrote <dir>/ (config.json,
    # model.safetensors, ...)" although no file was touched
    from pathlib import Path

    import hf_neuroformer.training as training_mod

    d, nwb, _ = models
    run = tmp_path / "run"
    shutil.copytree(d / "pre", run)
    before = (run / "model.safetensors").read_bytes()

    def finished(rec, output_dir, *args, **kwargs):
        return training_mod._nothing_to_do(Path(output_dir), "resume: nothing to do: (stand-in)")

    monkeypatch.setattr(training_mod, "train", finished)
    capsys.readouterr()
    assert cli.main(["train", "--resume", "--output-dir", str(run), "--max-steps", "5", "--data", str(nwb),
                     "--epoch", "wake"]) == 0
    out = capsys.readouterr().out
    assert "nothing to do" in out and "unchanged" in out and "wrote" not in out, out
    assert (run / "model.safetensors").read_bytes() == before


def test_generated_file_with_repeated_bin_centre_times_is_read_without_the_sorting_warning(tmp_path):
    # generated spikes sit at dt-bin centres: a unit sampled twice in a bin repeats its time.
    # 'neuroformer evaluate' on the README's quick-start gen.nwb warned "check the spike sorting export"
    import warnings

    from hf_neuroformer.io import from_arrays, write_nwb

    path = tmp_path / "gen.nwb"
    write_nwb(from_arrays(np.array([0.0025, 0.0025, 0.0125]), np.array([0, 0, 1]), session="s-generated"), path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = cli._read_generated(path)
    assert rec.n_spikes == 3
    assert not [w for w in caught if "a spike time of the same unit" in str(w.message)], [str(w.message) for w in caught]


@pytest.mark.parametrize("command, value", [("train", "0"), ("train", "-1"), ("train", "nan"), ("finetune", "0"),
                                            ("finetune", "-2.5"), ("decode", "0"), ("evaluate", "-1")])
def test_ci_block_s_must_be_a_positive_number_of_seconds(capsys, tmp_path, command, value):
    """--ci-block-s 0, a negative or NaN length: exit status 2, one line naming the flag and what it
    expects, before anything is read (the model and data paths here do not exist) or written."""
    out = tmp_path / "out"
    argv = {"train": ["train", "--output-dir", out],
            "finetune": ["finetune", "--model", tmp_path / "no-model", "--target", "x", "--output-dir", out],
            "decode": ["decode", "--model", tmp_path / "no-model", "--output", tmp_path / "out.csv"],
            "evaluate": ["evaluate", "--model", tmp_path / "no-model", "--generated", tmp_path / "g.nwb",
                         "--output", out / "eval.json"]}[command]
    err = err_of(capsys, *argv, "--ci-block-s", value)
    assert err.split(": error: ")[1].startswith("--ci-block-s: expected a finite number of seconds > 0"), err
    assert err.endswith(f"got {float(value)!r}"), err
    assert not out.exists() and not (tmp_path / "out.csv").exists()


def test_evaluate_refuses_ci_block_s_without_model(capsys, tmp_path):
    """evaluate without --model compares two recordings and gives no interval: --ci-block-s there
    would be ignored without a word, so it is refused, naming the flag and what it needs."""
    out = tmp_path / "eval.json"
    err = err_of(capsys, "evaluate", "--generated", tmp_path / "g.nwb", "--output", out, "--ci-block-s", "2")
    assert err.split(": error: ")[1].startswith("--ci-block-s: only with --model"), err
    assert not out.exists()


def test_evaluate_refuses_split_without_model(capsys, tmp_path):
    """--split picks the windows whose bits per spike --model scores; without --model it was ignored
    without a word: 'evaluate --generated g.nwb --split train' printed the metrics of the test windows
    the file holds, as if they were the train split's. Refused like --ci-block-s, naming the flag and
    that another split's windows come from 'neuroformer generate --split'."""
    out = tmp_path / "eval.json"
    err = err_of(capsys, "evaluate", "--generated", tmp_path / "g.nwb", "--output", out, "--split", "train")
    err = err.split(": error: ")[1]
    assert err.startswith("--split: only with --model"), err
    assert "neuroformer generate --split train" in err, err
    assert not out.exists()


def test_an_unknown_epoch_of_a_data_file_names_the_epoch_flag(capsys, tmp_path, shared_data):
    # 'prepare/train/embed --data A2929.nwb --epoch nosuch' said "--data: '...nwb': epoch 'nosuch' not
    # found", blaming the file; without --data (the built-in recording) it already said "--epoch"
    data = str(shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"))
    for cmd in (["prepare", "--output", str(tmp_path / "p")], ["inspect"]):
        err = err_of(capsys, *cmd, "--data", data, "--epoch", "nosuch").split(": error: ", 1)[1]
        assert err.startswith("--epoch: epoch 'nosuch' not found; this recording has epochs ["), err
        assert "'wake'" in err and data in err, err
    assert not (tmp_path / "p").exists()


def test_ctrl_c_during_finetune_leaves_no_checkpoints_or_folder(models, tmp_path):
    """Ctrl-C during `finetune` printed one line and exit status 130, but left the new --output-dir
    holding Trainer's checkpoints/checkpoint-N (each a full copy of the model; not resumable, since
    finetune has no --resume): half an output. Now the folder it created is removed."""
    import os
    import signal
    import subprocess
    import sys
    import time

    d, nwb, _ = models
    out = tmp_path / "dec"
    p = subprocess.Popen([sys.executable, "-m", "hf_neuroformer.cli", "finetune", "--model", str(d / "pre"), "--data",
                          str(nwb), "--epoch", "wake", "--target", "ry", "--output-dir", str(out),
                          "--max-steps", "100000", "--eval-steps", "1", "--batch-size", "8"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"},
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines = []
    for line in p.stdout:  # the first evaluation's line: Trainer saves the first checkpoint next
        lines.append(line)
        if line.startswith("step 1:"):
            break
    # Trainer writes a checkpoint's trainer_state.json after its weights and optimizer state: once it is
    # there, the first checkpoint is whole and the run goes on to step 2 (interrupted there, not 2
    # evaluations later as before)
    while p.poll() is None and not any((out / "checkpoints").glob("checkpoint-*/trainer_state.json")):
        time.sleep(0.05)
    assert p.poll() is None and (out / "checkpoints").is_dir(), "".join(lines)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "neuroformer finetune: interrupted" in err, err[-2000:]
    assert not out.exists(), sorted(str(x) for x in out.rglob("*"))


def test_inspect_help_says_a_prepared_directory_is_not_read(tmp_path, capsys):
    """inspect's --help (and the README) said it reads any --data that train reads, but a
    'neuroformer prepare' directory, which train streams, is refused by inspect: the help now says so,
    and the refusal names the recording to give instead."""
    (tmp_path / "prep").mkdir()
    (tmp_path / "prep" / "data").mkdir()  # what the reader knows a prepared directory by
    (tmp_path / "prep" / "manifest.json").write_text("{}")
    err = err_of(capsys, "inspect", "--data", tmp_path / "prep")
    assert "prepared directory" in err and "the recording it was prepared from" in err, err
    help_text = " ".join(cli.build_parser()._subparsers._group_actions[0].choices["inspect"].format_help().split())
    assert "except a 'neuroformer prepare' directory" in help_text


def test_output_into_a_closed_pipe_ends_quietly_with_the_sigpipe_status(shared_data):
    """``neuroformer inspect --data rec.nwb | head -3``: once the reader had closed the pipe, the
    command ended with a BrokenPipeError traceback (and Python's 'Exception ignored ... BrokenPipeError'
    where the output fit the buffer and met the pipe at exit). It now ends as a Unix tool killed by
    SIGPIPE does: nothing on stderr, status 141. The reader closes its end before the command writes
    (Python's default buffered stdout, as in a shell)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    p = subprocess.Popen([sys.executable, "-m", "hf_neuroformer.cli", "inspect", "--data",
                          str(shared_data("allen_vcn_gratings"))], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=env)
    p.stdout.close()  # as `head` does once it has its lines
    err = p.stderr.read()
    assert p.wait(timeout=120) == 141, err
    assert err == ""


def test_a_usage_error_with_stdout_closed_keeps_its_status():
    """Started with its stdout closed (``neuroformer train --bogus >&-``), Python sets ``sys.stdout`` to
    None; the flush 69cf609 added at the end of ``cli.main`` raised AttributeError there, which replaced
    argparse's usage status 2 with a traceback and status 1. The entry of setup.py in a real process
    whose descriptor 1 is closed (no library import: a usage error ends before it)."""
    import subprocess
    import sys

    code = "import sys; from hf_neuroformer_entry import main; sys.exit(main(['train', '--bogus']))"
    p = subprocess.run([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       timeout=120, preexec_fn=lambda: __import__("os").close(1))
    assert p.returncode == 2, p.stderr
    assert "unrecognized arguments: --bogus" in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_attention_map_window_index_below_0_says_to_leave_it_out_and_embed_output_takes_any_figure_format(capsys,
                                                                                                          tmp_path):
    """``attention-map --window-index -1`` said "expected an integer >= 0 ... or None": on the command
    line None means nothing; it now says to leave the flag out for the mean over the windows (before
    the model is read). ``embed --output``'s help said "PNG", though any format matplotlib writes
    (by the extension) is taken: it says so."""
    err = err_of(capsys, "attention-map", "--model", tmp_path / "m", "--data", tmp_path / "v.nwb", "--output",
                 tmp_path / "a.png", "--window-index", "-1")
    assert "--window-index: expected an integer >= 0" in err and "got -1" in err, err
    assert "None" not in err and "leave it out for the mean over the windows" in err, err
    embed = cli.build_parser()._subparsers._group_actions[0].choices["embed"]
    help_text = next(a.help for a in embed._actions if a.dest == "output")
    assert "any format matplotlib writes" in help_text and ".pdf" in help_text, help_text


def test_a_decoder_given_to_connectivity_or_attention_map_is_refused_for_its_attention(models, capsys, tmp_path):
    """A fine-tuned decoder given to ``connectivity`` or ``attention-map`` was refused because "it can
    neither generate spikes nor score them", which is not what these commands do with the model:
    they read its attention. The refusal now says so, with the same advice (the pretrained model).

    A decoder fine-tuned with a next-spike loss term (``decoding_generative_loss_weight`` > 0) holds
    next-spike heads, so both commands loaded it as a pretrained model without a word and read the
    attention of a backbone fine-tuned to decode its targets as the pretrained model's. Refused as a
    decoder without them is, naming the class and the weight; the library's load_pretrained(reads=...) too."""
    import hf_neuroformer as nf
    from hf_neuroformer.simulation import HubNetworkParams, simulate_hub_glm, write_network

    d, nwb, _ = models
    gen = tmp_path / "dec-gen"  # the fixture's decoder (tokenizer, splits, records) with next-spike heads
    shutil.copytree(d / "dec", gen)
    targets = nf.NeuroformerConfig.from_pretrained(d / "dec").decoding_targets
    nf.NeuroformerForBehaviorDecoding.from_pretrained(d / "pre", decoding_targets=targets,
                                                      decoding_generative_loss_weight=0.5).save_pretrained(gen)
    model, _, _ = load_pretrained(gen)  # it can generate: its heads were saved
    assert model.config.decoding_generative_loss_weight == 0.5
    with pytest.raises(ValueError, match="NeuroformerForBehaviorDecoding.*decoding_generative_loss_weight = 0.5"):
        load_pretrained(gen, reads="the attention of the pretrained model is read")
    net = write_network(simulate_hub_glm(HubNetworkParams(n_units=6, n_hubs=1, targets_per_hub=2), duration=2.0,
                                         seed=0), tmp_path / "hub.nwb")
    for dec in (d / "dec", gen):
        for argv, what in ((("connectivity", "--data", net, "--output", tmp_path / "c"),
                            "connectivity is read from the attention of the pretrained model"),
                           (("attention-map", "--data", nwb, "--output", tmp_path / "a.png"),
                            "the attention map is the attention of the pretrained model")):
            err = err_of(capsys, *argv, "--model", dec)
            assert f"{dec}' is a fine-tuned decoder (NeuroformerForBehaviorDecoding" in err and what in err, err
            assert "neither generate spikes nor score them" not in err, err
            assert "pass the pretrained model it was fine-tuned from (the directory written by 'neuroformer train')" \
                in err
    assert not (tmp_path / "c").exists() and not (tmp_path / "a.png").exists()


def test_a_model_folder_not_there_yet_beside_local_folders_is_not_sent_to_the_hub(capsys, tmp_path, monkeypatch):
    # Found following the README: `neuroformer generate --model runs/quickstart` in a second terminal while
    # `neuroformer train --output-dir runs/quickstart` still ran (train writes the folder only when it ends) was
    # told to `hf download runs/quickstart`, as if 'runs/quickstart' were a Hub repository id
    monkeypatch.chdir(tmp_path)
    NeuroformerConfig().save_pretrained(tmp_path / "runs" / "a2929")
    (tmp_path / "runs" / "notes").mkdir()
    err = err_of(capsys, "generate", "--model", "runs/quickstart", "--output", "g.nwb")
    assert "'runs/quickstart' is not a directory" in err and "hf download" not in err, err
    assert ("'runs' is a folder here without 'quickstart': 'neuroformer train' and 'finetune' write their "
            "--output-dir only when they end (is that run still going?); the model folders in 'runs': a2929") in err, err
    # a repository id whose owner is no folder here keeps the download hint
    err = err_of(capsys, "generate", "--model", "lab/quickstart", "--output", "g.nwb")
    assert "hf download lab/quickstart --local-dir quickstart" in err, err
    assert not (tmp_path / "g.nwb").exists()


def test_decode_split_of_another_epoch_says_the_splits_are_the_decoders_and_to_drop_split(models, capsys, tmp_path):
    """Break test: `decode --epoch sleep --split test` with a decoder fine-tuned on wake blamed only --data ("the test
    windows of this model span [...] s but the recording covers [0.000, 600.000] s"); it now also says that --split
    picks among the decoder's own splits (of the epoch it was fine-tuned on) and that dropping --split decodes the
    whole --epoch, which then works."""
    d, nwb, rec = models
    out = tmp_path / "dec.csv"
    err = err_of(capsys, "decode", "--model", d / "dec", "--data", nwb, "--epoch", "sleep", "--split", "test",
                 "--output", out)
    assert "--data: the test windows of this model span [" in err, err
    assert err.endswith("; --split picks among the decoder's splits, which are of the recording (and --epoch) it was "
                        "fine-tuned on: drop --split to decode every window of --epoch 'sleep' of --data"), err
    assert not out.exists()
    # the advice holds: without --split the sleep epoch is decoded (its windows lie outside every split)
    sleep = load_recording(nwb, epoch="sleep").restrict(0.0, 30.0)
    short = tmp_path / "sleep.npz"
    from hf_neuroformer.io.arrays import write_npz

    write_npz(sleep, short)
    assert cli.main([str(a) for a in ("decode", "--model", d / "dec", "--data", short, "--output", out)]) == 0
    assert out.exists()


def test_finetune_a_decoder_for_other_targets_names_the_flag_then_the_argument(models, capsys, tmp_path):
    """The library's advice read 'pass from_scratch=True (--from-scratch)' while its other advice (and train's) reads
    '--overwrite (overwrite=True)': one order now, the flag first and the Python argument in brackets, which the
    command line leaves out (it names the flag alone)."""
    d, nwb, _ = models
    err = err_of(capsys, "finetune", "--model", d / "dec", "--data", nwb, "--epoch", "wake", "--target", "x",
                 "--max-steps", 1, "--output-dir", tmp_path / "dec2")
    assert "is a decoder fine-tuned for [('ry', 'circular')], not for [('x', 'regression')]" in err, err
    assert err.endswith("or pass --from-scratch for random weights"), err
    assert not (tmp_path / "dec2").exists()


def test_generate_refused_over_its_window_limit_still_warns_of_overlapping_trials(capsys, tmp_path):
    """Counting the windows for cli.MAX_GENERATED_WINDOWS silenced the warning that a trial split's
    overlapping trials leave windows out, so a run refused over the limit never showed it. It is shown once
    before the refusal; a run within the limit is not warned by the count (generate_split warns, once)."""
    from dataclasses import replace

    from hf_neuroformer import simulate_coupled_network
    from hf_neuroformer.generation import generation_windows

    torch.set_num_threads(1)
    rec = simulate_coupled_network(n_units=6, duration=40.0, seed=2).recording
    a = np.arange(0.0, 38.0, 1.0)  # every second trial starts 0.3 s into the one before it
    trials = np.concatenate([np.stack([a, a + 0.65], 1), np.stack([a + 0.3, a + 0.9], 1)])
    rec = replace(rec, trials=trials[np.argsort(trials[:, 0], kind="stable")])
    cfg = NeuroformerConfig(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=20,
                            max_past_length=40, hidden_size=32, num_attention_heads=4, intermediate_size=64,
                            split_by="trials")
    with pytest.warns(UserWarning, match="its trials overlap in time"):
        train(rec, tmp_path / "m", cfg, TrainingConfig(max_steps=1, batch_size=8, generate_test=False),
              progress=False, write_figures=False)
    capsys.readouterr()
    model, _, plan = load_pretrained(tmp_path / "m")
    with pytest.warns(UserWarning, match="its trials overlap in time"):
        n = len(generation_windows(plan, "test", model.config)[0])
    absent = tmp_path / "absent.nwb"
    for samples, warned in ((cli.MAX_GENERATED_WINDOWS // n + 1, 1), (1, 0)):
        with warnings.catch_warnings(record=True) as shown:  # (pytest, not stderr, receives the warnings)
            warnings.simplefilter("always")
            rc = cli.main([str(x) for x in ("generate", "--model", tmp_path / "m", "--data", absent,
                                            "--output", tmp_path / "g.nwb", "--num-samples", samples)])
        err = capsys.readouterr().err
        assert rc == 2 and ("--num-samples" if warned else str(absent)) in err.splitlines()[-1], err
        assert sum("its trials overlap in time" in str(w.message) for w in shown) == warned, [str(w.message)
                                                                                             for w in shown]


def test_a_misspelt_finetune_set_key_names_the_key_it_resembles():
    """``finetune --set hidden_dropot=0.3`` said the key "cannot be changed at fine-tuning (the backbone's weights
    would not load, or it is set by finetune itself)", as if it were a config field held fixed, not a misspelling of
    an allowed key; the refusal now names the allowed key it resembles (and nothing for a key like none of them)."""
    from hf_neuroformer.argument_checks import override_keys

    with pytest.raises(ValueError, match=r"^config_overrides: \['badkey', 'hidden_dropot', 'window_strid'\] cannot be "
                                         r"changed at fine-tuning .*allowed keys: \[.*\] \(misspelt\? 'hidden_dropot' "
                                         r"for 'hidden_dropout', 'window_strid' for 'window_stride'\)$"):
        override_keys({"hidden_dropot": 0.3, "window_strid": 0.05, "badkey": 1})
    with pytest.raises(ValueError, match=r"allowed keys: \[[^]]*\]$"):
        override_keys({"badkey": 1})
    assert override_keys({"hidden_dropout": 0.3}) == {"hidden_dropout": 0.3}


def test_finetune_into_a_folder_in_use_fails_at_once(models, capsys, tmp_path):
    """Break test: `neuroformer finetune` into an output dir another run is writing went ahead (no lock): it
    now fails before reading the data, naming the folder and the other run's pid; the lock stays the other
    run's and nothing is written."""
    import os
    import socket
    import subprocess

    d, nwb, _ = models
    out = tmp_path / "f"
    out.mkdir()
    lock = out / ".neuroformer-run.lock"  # the file a run holds (named here: the test runs on code without it)
    other = subprocess.Popen(["sleep", "60"])
    try:
        lock.write_text(json.dumps({"pid": other.pid, "host": socket.gethostname(), "command": "train"}))
        held = lock.read_text()
        err = err_of(capsys, "finetune", "--model", d / "pre", "--data", nwb, "--epoch", "wake", "--target", "ry",
                     "--max-steps", 1, "--output-dir", out)
        assert str(out) in err and f"pid {other.pid}" in err and "in use by another neuroformer run" in err, err
        assert os.listdir(out) == [lock.name] and lock.read_text() == held
    finally:
        other.kill()
        other.wait()


def test_train_resume_without_checkpoints_opens_with_the_resume_flag(capsys, tmp_path):
    """'train --resume' into a folder without checkpoints said 'resume: no checkpoint in ...': the
    library's Python name, left as it was because the message names --resume further on. It now opens
    with the flag, as every other refusal of a flag does; a message naming the flag in its opening
    ('training.max_steps (--max-steps): ...') is still left alone."""
    import argparse

    err = err_of(capsys, "train", "--resume", "--output-dir", tmp_path / "run")
    assert err.split(": error: ", 1)[1].startswith(f"--resume: no checkpoint in {str(tmp_path / 'run' / 'checkpoints')!r}"), err
    assert not (tmp_path / "run").exists()
    parser = cli.build_parser()
    train_parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["train"]
    args = parser.parse_args(["train", "--max-steps", "0"])
    named = "training.max_steps (--max-steps): expected an integer >= 1, got 0"
    assert cli._name_the_flag(named, train_parser, args) == named


@pytest.mark.parametrize("flag, value, expected", [
    ("--frame-rate", "0", "--frame-rate: expected a finite number > 0 Hz, got 0.0"),
    ("--contrast", "2", "--contrast: expected a number in [0, 1], got 2.0"),
    ("--temporal-frequency", "-1", "--temporal-frequency: expected a finite number >= 0 Hz, got -1.0"),
    ("--width", "0", "--height/--width: expected (height, width) whole numbers >= 1 px, got (32, 0)"),
    ("--fov-height", "nan", "--fov-height/--fov-width: expected (height, width) finite > 0 deg, got (nan, 64.0)"),
])
def test_render_gratings_numbers_are_refused_before_the_recording_is_read(capsys, tmp_path, shared_data, flag, value,
                                                                          expected):
    """render-gratings read the whole --data (about 20 s for allen_vcn_gratings) before refusing
    --frame-rate 0 or --contrast 2. Now the numbers come first: with a recording that has no trials
    (A2929), which reading it would refuse, the number is what is named, and nothing is written."""
    out = tmp_path / "r.nwb"
    err = err_of(capsys, "render-gratings", "--data", shared_data(A2929), "--output", out, flag, value)
    assert err == f"neuroformer render-gratings: error: {expected}", err
    assert not out.exists()


def test_a_negative_value_in_scientific_or_infinite_form_is_a_value_not_a_flag(capsys, tmp_path):
    """argparse takes a value starting with '-' for a flag unless it is a plain -1 or -0.5: '--bin-size
    -1e-3' and '--temperature -inf' were answered 'argument --bin-size: expected one argument', as if the
    value had been left out. They are values now, refused by the check that says what is expected; a
    flag left without its value is still said to be one."""
    missing = tmp_path / "missing.nwb"
    err = err_of(capsys, "evaluate", "--generated", missing, "--bin-size", "-1e-3")
    assert err == "neuroformer evaluate: error: --bin-size: expected a positive finite number of seconds, got -0.001"
    err = err_of(capsys, "generate", "--model", tmp_path / "m", "--output", tmp_path / "g.nwb", "--temperature", "-INF")
    assert err == "neuroformer generate: error: --temperature: expected a temperature > 0 and finite, got -inf"
    # a comma list starting with a negative number too, as far as the check of its items
    err = err_of(capsys, "ablate", "--config", tmp_path / "c.yaml", "--output", tmp_path / "a.md", "--seeds", "-1,2")
    assert err == "neuroformer ablate: error: --seeds: expected integers >= 0 (as --seed), got '-1,2'"
    err = err_of(capsys, "ablate", "--config", tmp_path / "c.yaml", "--output", tmp_path / "a.md", "--seeds", "-1,,2")
    assert err.startswith("neuroformer ablate: error: --seeds: an empty item in '-1,,2'"), err
    for argv, expected in ((["train", "--seed", "-1e3", "--data", missing], "argument --seed: invalid int value: '-1e3'"),
                           (["train", "--data", missing, "--max-steps"], "argument --max-steps: expected one argument"),
                           (["train", "--max-steps", "-x"], "argument --max-steps: expected one argument")):
        with pytest.raises(SystemExit) as exit_:
            cli.main([str(a) for a in argv])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.splitlines()[-1] == f"neuroformer train: error: {expected}", err
    assert list(tmp_path.iterdir()) == []


def test_a_runs_checkpoints_folder_as_model_names_the_run_folder(models, capsys, tmp_path):
    """'--model runs/x/checkpoints' (where tab completion stops) was told only what the folder lacks
    (config.json, weights, vocabulary), as any stray folder is; one checkpoint inside it already named
    the run folder. The folder of checkpoints now names it too."""
    d, _, _ = models
    ckpts = d / "pre" / "checkpoints"
    assert any((c / "trainer_state.json").is_file() for c in ckpts.iterdir())
    err = err_of(capsys, "generate", "--model", ckpts, "--output", tmp_path / "g.nwb")
    assert err.startswith(f"neuroformer generate: error: --model: {str(ckpts)!r} has no config.json"), err
    assert err.endswith(f"it is the folder of a run's resumable training checkpoints (trainer_state.json in its "
                        f"subfolders), not a model: pass the run folder {str((d / 'pre').resolve())!r}, where train / "
                        "finetune write the model"), err
    assert not (tmp_path / "g.nwb").exists()


def test_a_runs_config_json_or_training_config_json_as_config_says_what_it_is(models, capsys, tmp_path):
    """'--config runs/x/config.json', to train again with a run's settings, was answered with a list of
    unknown fields (architectures, dtype, model_type, ...), and training_config.json with every training
    field: now the flag, what the file is and what to give instead, before anything is read or written."""
    d, _, _ = models
    for command in (["inspect", "--output", tmp_path / "i.json"], ["prepare", "--output", tmp_path / "p"],
                    ["train", "--output-dir", tmp_path / "t"]):
        err = err_of(capsys, *command, "--config", d / "pre" / "config.json")
        assert err.split(": error: ", 1)[1].startswith(
            f"--config: {str(d / 'pre' / 'config.json')!r} is a model's config.json (model_type 'neuroformer'), not a "
            "config file: expected a YAML file of NeuroformerConfig fields"), err
        assert "training_config.json beside it" in err, err
    err = err_of(capsys, "inspect", "--config", d / "pre" / "training_config.json")
    assert err.split(": error: ", 1)[1].startswith(
        f"--config: {str(d / 'pre' / 'training_config.json')!r} is a run's training settings (training_config.json), "
        "not a config file"), err
    # a JSON file of config fields is still read as YAML (JSON is YAML): its unknown field is named as before
    (tmp_path / "c.json").write_text('{"n_embd": 32}')
    err = err_of(capsys, "inspect", "--config", tmp_path / "c.json")
    assert err.endswith(f"error: --config: {str(tmp_path / 'c.json')!r}: unknown NeuroformerConfig field ['n_embd']; NeuroformerConfig's docstring lists the "
                        "fields, and TrainingConfig's those of the 'training:' section"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.json"]


def test_a_corrupt_parquet_data_file_says_what_it_should_be(capsys, tmp_path):
    """'--data x.parquet' holding no Parquet gave pyarrow's "Parquet magic bytes not found ..." after the
    flag: now what the file should be and that it is not readable as Parquet; nothing is written."""
    (tmp_path / "x.parquet").write_text("not a table\n" * 4)
    err = err_of(capsys, "prepare", "--data", tmp_path / "x.parquet", "--output", tmp_path / "p")
    assert err.startswith(f"neuroformer prepare: error: --data: {tmp_path / 'x.parquet'}: expected a Parquet table "
                          "with one row per spike (columns 'time', 'unit'), as pandas DataFrame.to_parquet or "
                          "pyarrow write it; this file is not readable as Parquet"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.parquet"]


def test_an_empty_config_file_is_refused_before_anything_is_written(capsys, tmp_path):
    """'neuroformer train --config empty.yaml' (or .json) trained with the default settings as if no file had
    been given: now refused naming --config, before an output folder is made."""
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "blank.yaml").write_text("\n   \n")
    for name in ("empty.json", "blank.yaml"):
        expected = (f"--config: {str(tmp_path / name)!r} is empty; expected a YAML file of NeuroformerConfig fields "
                    "with an optional 'training:' section, such as configs/default.yaml (write '{}' in it to use the "
                    "default settings)")
        for command in (["train", "--output-dir", tmp_path / "t"],
                        ["ablate", "--output", tmp_path / "a.md", "--work-dir", tmp_path / "w"]):
            err = err_of(capsys, *command, "--config", tmp_path / name)
            assert err == f"neuroformer {command[0]}: error: {expected}", err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blank.yaml", "empty.json"]


def test_ablate_refuses_a_work_dir_holding_a_model(models, capsys, tmp_path):
    """'neuroformer ablate --work-dir runs/x' (a trained model's folder) trained the variants into subfolders
    of that model's folder: refused naming --work-dir, with or without --overwrite, before anything is read
    or written; run_ablation refuses it too (also with overwrite=True), before any variant trains."""
    from hf_neuroformer.ablation import run_ablation

    d, _, rec = models
    before = sorted(p.relative_to(d).as_posix() for p in d.rglob("*"))
    default = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"
    expected = (f"--work-dir: {str(d / 'pre')!r} holds a model ('metrics.json', 'model.safetensors', "
                "'training_config.json' and 1 more); the variants would train into subfolders of that model's folder: choose a folder of their "
                f"own, e.g. {str(d / 'pre') + '-ablation'!r}")
    for extra in ([], ["--overwrite"]):
        err = err_of(capsys, "ablate", "--config", default, "--output", tmp_path / "a.md", "--work-dir", d / "pre",
                     *extra)
        assert err == f"neuroformer ablate: error: {expected}", err
    with pytest.raises(FileExistsError) as info:
        run_ablation(rec, tiny_config(), TrainingConfig(max_steps=1), work_dir=d / "pre", overwrite=True)
    assert str(info.value) == "work_dir: " + expected.removeprefix("--work-dir: ")
    assert sorted(p.relative_to(d).as_posix() for p in d.rglob("*")) == before and not any(tmp_path.iterdir())


def test_check_work_dir_takes_a_runs_checkpoints_for_a_model_and_an_earlier_ablation_for_none(tmp_path):
    from hf_neuroformer.ablation import check_work_dir

    (tmp_path / "run" / "checkpoint-5").mkdir(parents=True)  # a run stopped before its model was written
    with pytest.raises(FileExistsError, match=r"^work_dir: '.*run' holds a model \('checkpoint-5'\); "):
        check_work_dir(tmp_path / "run")
    (tmp_path / "abl" / "0-state-only").mkdir(parents=True)  # an earlier ablation: its models are in the variants
    (tmp_path / "abl" / "0-state-only" / "model.safetensors").write_bytes(b"")
    for ok in (tmp_path / "abl", tmp_path / "new", tmp_path):
        check_work_dir(ok)


def test_decode_figure_help_names_the_formats_its_check_takes_and_pgf_without_tex_is_refused(capsys, tmp_path):
    """Break test: ``decode --figure``'s help listed "PNG, PDF, SVG", while its check takes every format
    matplotlib lists (.eps, .jpg, .tif, .webp, ...), and ``.pgf`` among them: without xelatex that figure
    failed with matplotlib's RuntimeError after the CSV was written. The help now says the suffix picks
    any format matplotlib writes and each suffix it names is taken; ``.pgf`` is refused, naming --figure,
    before anything is read (by the library's check_figure_path too) where the TeX program is missing."""
    from matplotlib import rcParams

    from hf_neuroformer.plotting import PlottingInputError, check_figure_path

    decode = cli.build_parser()._subparsers._group_actions[0].choices["decode"]
    help_text = next(a.help for a in decode._actions if a.dest == "figure")
    named = re.findall(r"\.([a-z]+)\b", help_text)
    assert {"png", "pdf", "svg", "eps", "jpg", "tif", "webp"} <= set(named), help_text
    assert "another matplotlib writes" in help_text, help_text
    for fmt in named:
        cli._check_figure_file(tmp_path / f"f.{fmt}", "--figure")  # each one the help names is taken
    with pytest.raises(ValueError, match=r"^--figure: expected a figure file name ending in an image format"):
        cli._check_figure_file(tmp_path / "f.xyz", "--figure")
    tex = rcParams["pgf.texsystem"]
    if shutil.which(tex) is None:
        err = err_of(capsys, "decode", "--model", tmp_path / "no model", "--output", tmp_path / "d.csv", "--figure",
                     tmp_path / "d.pgf")
        assert f"--figure: {str(tmp_path / 'd.pgf')!r}: matplotlib writes .pgf through {tex}, which is not installed " \
               "here; expected another figure format" in err, err
        with pytest.raises(PlottingInputError, match=r"^path: .*\.pgf through"):
            check_figure_path(tmp_path / "d.pgf")
    else:  # written where TeX is there
        cli._check_figure_file(tmp_path / "d.pgf", "--figure")
        assert check_figure_path(tmp_path / "d.pgf") == tmp_path / "d.pgf"
    assert not (tmp_path / "d.csv").exists()


@pytest.mark.parametrize("command, verb", [("generate", "generated from"), ("embed", "embedded")])
def test_no_data_with_a_model_of_other_units_is_refused_before_simulating(models, tmp_path, capsys, command, verb):
    """`generate` / `embed` without --data on a model trained on A2929 simulated the built-in recording
    (about 20 s) and only then refused its units; the built-in units are known without simulating, so the
    refusal comes at once, names --data and the recording the model was trained on, and writes nothing."""
    import time

    d, _, _ = models
    out = tmp_path / ("gen.nwb" if command == "generate" else "emb.png")
    start = time.perf_counter()
    extra = ["--color-by", "ry"] if command == "embed" else []
    last = err_of(capsys, command, "--model", d / "pre", "--output", out, *extra)
    assert time.perf_counter() - start < 10  # the simulation alone took about 20 s
    assert (f"error: --data: not given, so the built-in simulated recording (session 'simulated', 16 units unit0 .. "
            f"unit15) would be {verb}, but the model {str(d / 'pre')!r} was trained on other units (") in last, last
    assert "pass --data, the recording it was trained on (" in last and last.endswith("(or one with the same units)")
    assert not out.exists()
