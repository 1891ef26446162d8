"""Break test of the `neuroformer` command's outputs (a systems neuroscientist's session on A2929):
an output name whose side files are itself, figure names matplotlib cannot write, and library
errors that named a Python field instead of the flag. Each is refused with one line naming the
flag, exit status 2, before any work and with nothing written.

The calls go through ``cli.main`` in this process (the code of the console script); data that
would be read is a missing file, so an error about it means the flag was checked too late.
"""

import contextlib
import io
import json
import re

import pytest

from hf_neuroformer import cli

A2929 = "pynapple_A2929_headdirection/A2929-200711.nwb"


def err_of(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err, err
    last = err.rstrip("\n").split("\n")[-1]
    assert last.startswith(f"neuroformer {argv[0]}: error: "), err
    return last.split(": error: ", 1)[1]


def test_ablate_output_json_would_be_replaced_by_its_own_figures(capsys, tmp_path):
    # `ablate --output t.json` wrote the markdown table to t.json, then the figures (JSON) over it,
    # and printed "wrote t.json and t.json": the table was lost after every variant had trained
    cfg = tmp_path / "c.yaml"
    cfg.write_text("hidden_size: 16\n")
    out = tmp_path / "t.json"
    msg = err_of(capsys, "ablate", "--config", cfg, "--data", tmp_path / "missing.nwb", "--max-steps", 1,
                 "--output", out)
    assert msg.startswith("--output: ") and ".json" in msg and "markdown" in msg, msg
    assert not out.exists()


def test_ablate_output_of_another_format_is_refused(capsys, tmp_path):
    """`ablate --output abl.png` wrote the markdown table into a .png (only .json was refused), after
    every variant had trained; any name not ending in .md is now refused before the data is read."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("hidden_size: 16\n")
    for name in ("abl.png", "abl.csv", "abl"):
        out = tmp_path / name
        msg = err_of(capsys, "ablate", "--config", cfg, "--data", tmp_path / "missing.nwb", "--max-steps", 1,
                     "--output", out)
        assert msg.startswith("--output: ") and ".md" in msg and "missing.nwb" not in msg, msg
        assert not out.exists()


@pytest.fixture(scope="module")
def ablation_run(tmp_path_factory, shared_data):
    """``(table path, exit status, standard error)`` of one ``neuroformer ablate`` (2 steps, A2929 wake,
    a tiny network) run in this process with tqdm's bars on, its table in a folder that did not exist.
    The test of the new folder and the test of the training bars share it (each ran its own ablation).
    No test generation (training.generate_test false): neither test reads a score of the table."""
    d = tmp_path_factory.mktemp("cli_outputs_ablate")
    cfg = d / "c.yaml"
    cfg.write_text("current_window: 0.1\npast_window: 0.3\ndt_resolution: 0.01\nmax_window_length: 24\n"
                   "max_past_length: 48\nhidden_size: 16\nnum_attention_heads: 1\nintermediate_size: 32\n"
                   "num_hidden_layers: 1\nsplit_block_length: 15.0\ntraining:\n  generate_test: false\n")
    out = d / "new" / "a" / "t.md"
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        mp.delenv("TQDM_DISABLE", raising=False)
        rc = cli.main([str(a) for a in ("ablate", "--config", cfg, "--data", shared_data(A2929), "--epoch", "wake",
                                        "--max-steps", 2, "--output", out, "--work-dir", d / "w")])
    return out, rc, err.getvalue()


def test_ablate_writes_its_table_into_a_new_folder(ablation_run):
    """Break test: 'ablate --output new/t.md' passed the output checks (a new folder may be made)
    and failed after every variant had trained with "[Errno 2] No such file or directory:
    '.../new/.t.md.<pid>.tmp'", no flag named, nothing written."""
    out, rc, err = ablation_run
    assert rc == 0, err
    assert "|" in out.read_text()  # the markdown table
    assert out.with_suffix(".json").read_text().startswith("{")


def test_ablate_refuses_a_table_inside_a_variant_folder(capsys, tmp_path, shared_data):
    """'ablate --work-dir w --output w/0-state-only/t.md' wrote the table into the folder the first
    variant trains into (a model folder then holding the table, pushed with it); refused before the
    recording is read, naming the variant and a place that works."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("current_window: 0.1\npast_window: 0.3\nhidden_size: 16\nnum_attention_heads: 1\n")
    work = tmp_path / "w"
    for seeds, inner in (([], work / "0-state-only"), (["--seeds", "0,1"], work / "seed-1" / "1-past")):
        msg = err_of(capsys, "ablate", "--config", cfg, "--data", tmp_path / "missing.nwb", "--max-steps", 1,
                     "--output", inner / "sub" / "t.md", "--work-dir", work, *seeds)
        assert msg.startswith(f"--output: {str(inner / 'sub' / 't.md')!r} is inside "), msg
        assert f"write the table elsewhere, e.g. {str(work / 't.md')!r}" in msg, msg
    assert not work.exists()


def test_ablate_refuses_a_table_named_as_a_folder_training_creates(capsys, tmp_path, shared_data):
    """'ablate --work-dir w --output w/0-state-only' (or w, or w/seed-1 with --seeds) passed the check
    of fc9e398 (only a path below a variant folder was refused): every variant trained, making that
    path a folder, and the table then could not be written there. Refused before the recording is
    read; a table beside the variant folders is still accepted."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("current_window: 0.1\npast_window: 0.3\nhidden_size: 16\nnum_attention_heads: 1\n")
    work = tmp_path / "w"
    for seeds, output in (([], work / "0-state-only"), ([], work), (["--seeds", "0,1"], work / "seed-1")):
        msg = err_of(capsys, "ablate", "--config", cfg, "--data", tmp_path / "missing.nwb", "--max-steps", 1,
                     "--output", output, "--work-dir", work, *seeds)
        assert msg.startswith(f"--output: {str(output)!r} is a folder --work-dir creates"), msg
    for seeds, output in (([], work / "t.md"), (["--seeds", "0,1"], work / "seed-1" / "t.md")):
        msg = err_of(capsys, "ablate", "--config", cfg, "--data", tmp_path / "missing.nwb", "--max-steps", 1,
                     "--output", output, "--work-dir", work, *seeds)
        assert msg.startswith("--data: no such file"), msg  # got past the output checks
    assert not work.exists()


@pytest.mark.parametrize("name", ["e.json", "e.txt", "e"])
def test_evaluate_figure_format_checked_before_any_work(capsys, tmp_path, shared_data, name):
    # `evaluate --output e.json --figure e.txt` computed the metrics, wrote e.json, then failed
    # with matplotlib's "Format 'txt' is not supported" (no flag named): a half-written output
    out, fig = tmp_path / "m.json", tmp_path / name
    msg = err_of(capsys, "evaluate", "--real", shared_data(A2929), "--epoch", "wake", "--generated",
                 tmp_path / "missing.nwb", "--output", out, "--figure", fig)
    assert msg.startswith("--figure: expected a figure file name ending in an image format"), msg
    assert not out.exists() and not fig.exists()


@pytest.mark.parametrize("name", ["emb.json", "emb.npy", "emb.txt", "emb"])
def test_embed_output_must_be_a_figure_name(capsys, tmp_path, name):
    # `embed --output emb.json` wrote emb.npy and the metadata emb.json, then tried to draw the
    # figure over emb.json and failed ("Format 'json' is not supported"), exit 2 with two files left
    out = tmp_path / name
    msg = err_of(capsys, "embed", "--model", tmp_path / "no-model", "--data", tmp_path / "missing.nwb",
                 "--color-by", "ry", "--output", out)
    assert msg.startswith("--output: expected a figure file name ending in an image format"), msg
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_warning_names_a_flag_only_where_the_flag_holds_a_value():
    """The package's warnings are printed with the flag for the Python name they open with, as its
    errors are; but a reader's 'units: unit names in PATH repeat' is of the file's units table, and
    under attention-map without --units (None: the whole population) it would have read '--units:
    ...', a flag the user never typed."""
    import argparse

    from hf_neuroformer.cli import _name_the_flag, build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    args = parser.parse_args(["attention-map", "--model", "m", "--data", "r.nwb", "--output", "o.png"])
    reader = "units: unit names in r.nwb repeat; made them unique with _1, _2 ... suffixes"
    assert _name_the_flag(reader, subs["attention-map"], args, given_only=True) == reader
    args = parser.parse_args(["finetune", "--model", "m", "--target", "x"])
    assert _name_the_flag("model_dir: the split plan of 'm' spans", subs["finetune"], args,
                          given_only=True) == "--model: the split plan of 'm' spans"


@pytest.mark.parametrize("argv, expected", [
    # the library's checks named the Python field (n_hubs, targets_per_hub, GratingParams.frame_rate,
    # training.max_steps), not the flag the user typed (or left at its default)
    (["simulate", "--kind", "hub-glm", "--units", "20", "--hubs", "-1", "--duration", "5"], "--hubs: expected"),
    (["simulate", "--kind", "hub-glm", "--units", "20", "--duration", "5"], "--targets-per-hub: expected"),
    (["render-gratings", "--data", "allen_vcn_gratings", "--frame-rate", "-6"], "--frame-rate: expected"),
    (["render-gratings", "--data", "allen_vcn_gratings", "--height", "0"], "--height/--width: expected"),
    (["ablate", "--config", "c.yaml", "--data", A2929, "--max-steps", "0"], "--max-steps: expected an integer >= 1"),
])
def test_library_errors_name_the_flag(capsys, tmp_path, shared_data, argv, expected):
    (tmp_path / "c.yaml").write_text("hidden_size: 16\n")
    argv = [tmp_path / a if a == "c.yaml" else shared_data(a) if a in (A2929, "allen_vcn_gratings") else a
            for a in argv]
    out = tmp_path / ("o.md" if argv[0] == "ablate" else "o.nwb")
    msg = err_of(capsys, *argv, "--output", out)
    assert msg.startswith(expected), msg
    assert not out.exists()


def test_field_named_by_the_config_file_keeps_its_name(capsys, tmp_path, shared_data):
    # training.max_steps from the --config file (no --max-steps given) is not the flag's value
    cfg = tmp_path / "c.yaml"
    cfg.write_text("hidden_size: 16\ntraining:\n  max_steps: 0\n")
    msg = err_of(capsys, "ablate", "--config", cfg, "--data", shared_data(A2929), "--output", tmp_path / "o.md")
    # the file and its section first (the config value refusals name the file), then the field by its own name
    assert msg.startswith(f"--config: {str(cfg)!r} (training: section): training.max_steps: expected an integer >= 1"), msg


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, shared_data):
    """A model trained for 1 step on A2929 wake (tiny network); no test generation, no figures (the
    tests read its weights, config and splits, never a generation result or a figure)."""
    import torch

    from hf_neuroformer.io import load_recording
    from hf_neuroformer.training import TrainingConfig, train
    from tiny_configs import small_config

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("cli_outputs") / "m"
    train(load_recording(shared_data(A2929), epoch="wake"), out,
          small_config(current_window=0.1, past_window=1.0, dt_resolution=0.005, max_past_length=128),
          TrainingConfig(max_steps=1, batch_size=32, eval_batch_size=256, generation_batch_size=512,
                         generate_test=False), progress=False, write_figures=False)
    return out


def test_generate_batch_size_and_max_spikes_name_their_flag(capsys, tmp_path, shared_data, tiny_model):
    """`generate --batch-size 0` said 'batch_size: expected ...' and `--max-spikes 1000` 'max_spikes:
    expected an integer in 1..63' (after the model and the recording were read)."""
    nwb = shared_data(A2929)
    for flag, value, expected in (("--batch-size", "0", "--batch-size: expected an integer >= 1"),
                                  ("--max-spikes", "1000", "--max-spikes: expected an integer in 1..63")):
        msg = err_of(capsys, "generate", "--model", tiny_model, "--data", nwb, "--epoch", "wake",
                     "--output", tmp_path / "g.nwb", flag, value)
        assert msg.startswith(expected), msg
    assert not (tmp_path / "g.nwb").exists()


def test_output_dir_is_named_by_its_flag(capsys, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.safetensors").write_bytes(b"")
    msg = err_of(capsys, "train", "--output-dir", tmp_path / "m")
    assert msg.startswith("--output-dir: "), msg


@pytest.mark.parametrize("argv", [
    ["train", "--data", "missing.nwb", "--output-dir", "FILE/m"],
    ["finetune", "--model", "MODEL", "--data", "missing.nwb", "--target", "ry", "--output-dir", "FILE/m"],
    ["generate", "--model", "no-model", "--data", "missing.nwb", "--output", "FILE/g.nwb"],
    ["evaluate", "--real", "missing.nwb", "--generated", "missing.nwb", "--output", "FILE/e.json"],
    ["evaluate", "--real", "missing.nwb", "--generated", "missing.nwb", "--figure", "FILE/sub/e.png"],
    ["prepare", "--data", "missing.nwb", "--output", "FILE/p"],
    ["embed", "--model", "no-model", "--data", "missing.nwb", "--color-by", "ry", "--output", "FILE/e.png"],
    ["ablate", "--config", "FILE", "--data", "missing.nwb", "--output", "FILE/t.md"],
    ["simulate", "--kind", "glm", "--units", "5", "--duration", "1", "--output", "FILE/s.nwb"],
    ["connectivity", "--model", "no-model", "--data", "missing.nwb", "--output", "FILE/c"],
    ["attention-map", "--model", "no-model", "--data", "missing.nwb", "--output", "FILE/a.png"],
])
def test_output_under_a_file_is_refused_before_any_work(capsys, tmp_path, tiny_model, argv):
    # `train --output-dir run.yaml/m` trained, then died with a NotADirectoryError traceback
    # (exit 1); evaluate the same after computing every metric; generate said only
    # "[Errno 17] File exists: 'run.yaml'" after sampling every window
    file = tmp_path / "run.yaml"
    file.write_text("hidden_size: 16\n")
    argv = [str(a).replace("FILE", str(file)) if "FILE" in str(a) else tmp_path / a if a.endswith(".nwb") else
            tiny_model if a == "MODEL" else a for a in argv]
    flag = argv[next(i for i, a in enumerate(argv) if str(a).startswith(str(file) + "/")) - 1]
    msg = err_of(capsys, *argv)
    assert msg.startswith(f"{flag}: {str(file)!r} is a file, not a folder"), msg
    assert file.read_text() == "hidden_size: 16\n"


def test_ctrl_c_is_one_line_and_exit_130(tmp_path, shared_data):
    """Ctrl-C during `train` printed a KeyboardInterrupt traceback from inside Accelerate and exited
    through the signal (-2); now one line, exit status 130, and no half-written model folder."""
    import os
    import signal
    import subprocess
    import sys
    import time

    cfg = tmp_path / "c.yaml"
    cfg.write_text("current_window: 0.1\npast_window: 1.0\nmax_past_length: 128\nhidden_size: 16\n"
                   "num_attention_heads: 2\nnum_hidden_layers: 1\nintermediate_size: 32\n"
                   "training:\n  max_steps: 100000\n  max_epochs: 1000\n")
    out = tmp_path / "m"
    p = subprocess.Popen([sys.executable, "-m", "hf_neuroformer.cli", "train", "--config", str(cfg), "--data",
                          str(shared_data(A2929)), "--epoch", "wake", "--output-dir", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"},
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert p.stdout.readline().startswith("[neuroformer] data:")  # the recording is read; training starts
    time.sleep(3)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-2000:]
    # since 1f6478ae the line carries the note of the checkpoint to --resume from, here none
    assert "Traceback" not in err and "\nneuroformer train: interrupted; it wrote no checkpoint" in err, err[-2000:]
    assert not out.exists()


def test_sigterm_takes_the_ctrl_c_path_with_the_resume_note_and_exit_143(tmp_path, shared_data):
    """SIGTERM (``kill``, ``timeout``, SLURM before its SIGKILL) ended `train` at once, silently, with
    no word of the checkpoint to --resume from and the run record left as a killed run leaves it.
    It now takes Ctrl-C's path: the clean-up and the note naming the newest checkpoint and --resume,
    'terminated (SIGTERM)' and exit status 143 (128 + 15); --resume then completes the run."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    cfg = tmp_path / "c.yaml"
    cfg.write_text("current_window: 0.1\npast_window: 1.0\nmax_past_length: 128\nhidden_size: 16\n"
                   "num_attention_heads: 2\nnum_hidden_layers: 1\nintermediate_size: 32\n"
                   "training:\n  max_steps: 100000\n  max_epochs: 1000\n")
    out = tmp_path / "m"
    cmd = [sys.executable, "-m", "hf_neuroformer.cli", "train", "--config", str(cfg), "--data",
           str(shared_data(A2929)), "--epoch", "wake", "--output-dir", str(out), "--save-every", "1"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"},
                         preexec_fn=lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL))
    # a checkpoint is written to a temporary folder and renamed: a step-* folder is a whole one
    while p.poll() is None and not list((out / "checkpoints").glob("step-*")):
        time.sleep(0.05)
    assert p.poll() is None, p.communicate()[1][-2000:]
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, err[-2000:]
    assert "Traceback" not in err and "\nneuroformer train: terminated (SIGTERM); " in err, err[-2000:]
    kept = sorted(d.name for d in (out / "checkpoints").glob("step-*"))
    assert kept and f"(newest {kept[-1]})" in err and "with --resume continues the run" in err, err[-2000:]
    record = out / "train_unfinished.json"  # kept beside the run's checkpoints, as after Ctrl-C
    assert record.is_file() and f"record {record.name}" in err, sorted(x.name for x in out.iterdir())
    assert json.loads(record.read_text())["pid"] == p.pid
    assert not (out / "config.json").exists()  # no model: the run did not end
    step = int(kept[-1].split("-")[1])
    done = subprocess.run(cmd + ["--resume", "--max-steps", str(step + 1)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (out / "config.json").is_file() and not record.exists()


def test_the_sigterm_handler_is_the_commands_alone(capsys, tmp_path):
    """cli.main installs its SIGTERM handler for the call only: an in-process caller's handler is
    back after a refusal, and importing the package installed none (pytest's process has imported
    it; SIGTERM there is Python's default unless the starter set another)."""
    import signal

    mine = signal.getsignal(signal.SIGTERM)
    assert mine is not cli._raise_terminated
    err_of(capsys, "evaluate", "--generated", tmp_path / "missing.nwb", "--output", tmp_path / "e.png")
    assert signal.getsignal(signal.SIGTERM) is mine
    assert str(cli.Terminated()) == "terminated (SIGTERM)" and isinstance(cli.Terminated(), KeyboardInterrupt)


def test_evaluate_output_png_names_output_not_the_figure_never_given(capsys, tmp_path):
    # `evaluate --output eval.png` (no --figure) said "--figure: 'eval.png' is also the --output JSON
    # file; pass another --figure path", blaming a flag the user never gave
    out = tmp_path / "eval.png"
    msg = err_of(capsys, "evaluate", "--generated", tmp_path / "missing.nwb", "--output", out)
    assert msg.startswith(f"--output: {str(out)!r} is the metrics JSON") and ".json" in msg, msg
    assert not out.exists()


@pytest.mark.parametrize("name", ["gen2.nwb", "metrics.csv", "metrics"])
def test_evaluate_output_must_be_a_json_file_name(capsys, tmp_path, name):
    # `evaluate --output gen2.nwb --overwrite` wrote the metrics JSON over another generated NWB file (and
    # `--output metrics.csv` wrote JSON under a CSV name); inspect --output already asked for .json
    out = tmp_path / name
    out.write_bytes(b"keep me")
    msg = err_of(capsys, "evaluate", "--generated", tmp_path / "missing.nwb", "--output", out, "--overwrite")
    assert msg.startswith("--output: this command writes JSON; expected a file name ending in .json"), msg
    assert out.read_bytes() == b"keep me"


@pytest.mark.parametrize("flag, value", [("--bin-size", "0"), ("--bin-size", "nan"), ("--psth-bin-size", "-1"),
                                         ("--min-isis", "0"), ("--min-trial-coverage", "0"),
                                         ("--min-trial-coverage", "nan"), ("--min-trial-coverage", "1.01")])
def test_evaluate_numbers_checked_before_the_recordings_are_read(capsys, tmp_path, flag, value):
    # they were checked inside compare_recordings, after --generated, --real (and --model) were read
    msg = err_of(capsys, "evaluate", "--real", tmp_path / "missing.nwb", "--generated", tmp_path / "missing.nwb",
                 flag, value)
    assert msg.startswith(f"{flag}: expected "), msg


@pytest.mark.parametrize("value", ["nan", "-1", "0", "inf"])
def test_ablate_contrastive_weight_checked_before_the_recording_is_read(capsys, tmp_path, value):
    # nan and -1 were refused after the recording was read; inf was accepted (an infinite loss)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("hidden_size: 16\n")
    msg = err_of(capsys, "ablate", "--config", cfg, "--data", tmp_path / "missing.nwb", "--output", tmp_path / "t.md",
                 "--contrastive-loss-weight", value)
    assert msg.startswith("--contrastive-loss-weight: expected a finite number > 0"), msg


def test_another_epoch_is_named_by_data_and_real(capsys, tmp_path, shared_data, tiny_model):
    """The model was trained on the wake epoch; the sleep epoch holds none of its windows.
    generate said 'recording: ... pass the recording (and epoch)' and evaluate
    'generated.time_support: ...', where embed already said '--data: ... (and --epoch)'."""
    nwb = shared_data(A2929)
    out = tmp_path / "g.nwb"
    msg = err_of(capsys, "generate", "--model", tiny_model, "--data", nwb, "--epoch", "sleep", "--output", out)
    assert msg.startswith("--data: the test windows of this model span") and "--epoch" in msg, msg
    assert not out.exists()
    # (at most 8 spikes a window: the checks below read the windows' span and the files written, not the spikes)
    assert cli.main(["generate", "--model", str(tiny_model), "--data", str(nwb), "--epoch", "wake", "--output",
                     str(out), "--batch-size", "512", "--max-spikes", "8"]) == 0
    capsys.readouterr()
    msg = err_of(capsys, "evaluate", "--real", nwb, "--epoch", "sleep", "--generated", out)
    assert msg.startswith("--real: the generated windows span") and "--epoch" in msg, msg
    # outputs in new folders are written (check_writable_parent lets them through): the JSON failed
    # after the whole evaluation with "[Errno 2] No such file or directory: '.../.e.json.<pid>.tmp'"
    new = [tmp_path / "new" / "a" / "e.json", tmp_path / "new2" / "e.png"]
    assert cli.main(["evaluate", "--real", str(nwb), "--epoch", "wake", "--generated", str(out), "--output",
                     str(new[0]), "--figure", str(new[1])]) == 0, capsys.readouterr().err
    assert new[0].read_text().startswith("{") and new[1].read_bytes()[:4] == b"\x89PNG"


def test_generate_batch_size_checked_before_the_model_is_read(capsys, tmp_path):
    msg = err_of(capsys, "generate", "--model", tmp_path / "no-model", "--output", tmp_path / "g.nwb",
                 "--batch-size", "0")
    assert msg.startswith("--batch-size: expected an integer >= 1"), msg


def test_finetune_select_on_lists_the_metrics_and_a_decoder_is_named_by_model(capsys, tmp_path, shared_data,
                                                                                tiny_model):
    """`--select-on ry/r2` for a circular target said only '... with a target of ['ry'] and its metric'
    (which metrics?); a decoder given as --model for other targets was named 'model_dir:'."""
    nwb = shared_data(A2929)
    base = ["finetune", "--model", tiny_model, "--data", nwb, "--epoch", "wake", "--max-steps", "1",
            "--batch-size", "16"]
    msg = err_of(capsys, *base, "--target", "ry", "--select-on", "ry/r2", "--output-dir", tmp_path / "a")
    assert msg.startswith("--select-on: ") and "ry/mean_angular_error_deg" in msg, msg
    # --ema-decay is passed on to finetune (its training settings record it), and the printout says the scores and
    # the decoder are of the averaged weights (it printed freeze_backbone_steps, never the averaging)
    assert cli.main([str(a) for a in base] + ["--target", "x", "--output-dir", str(tmp_path / "dec"),
                                              "--ema-decay", "0.5"]) == 0
    training = json.loads((tmp_path / "dec" / "metrics.json").read_text())["training"]
    assert training["ema_decay"] == 0.5 and "spike_dropout" not in training  # --spike-dropout is off by default
    said = capsys.readouterr().out
    assert "  weights: exponential moving average over the steps, --ema-decay 0.5" in said
    assert "thinned" not in said
    msg = err_of(capsys, *base[:2], tmp_path / "dec", *base[3:], "--target", "ry", "--output-dir", tmp_path / "b")
    assert msg.startswith(f"--model: '{tmp_path / 'dec'}' is a decoder fine-tuned for"), msg


def test_train_numeric_options_state_their_default():
    """`train --help` gave no default for --batch-size, --gradient-accumulation-steps, --save-every,
    --mixed-precision and --config, while --max-steps, --max-epochs and --seed gave theirs."""
    import argparse

    from hf_neuroformer.cli import build_parser
    from hf_neuroformer.training import TrainingConfig

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.option_strings[-1]: a.help for a in sub.choices["train"]._actions if a.option_strings}
    t = TrainingConfig()
    for flag, default in (("--batch-size", t.batch_size), ("--gradient-accumulation-steps", t.gradient_accumulation_steps),
                          ("--max-steps", t.max_steps), ("--max-epochs", t.max_epochs), ("--seed", t.seed),
                          ("--mixed-precision", t.mixed_precision), ("--save-every", "none")):
        assert f"default: the config's training.{flag[2:].replace('-', '_')}, {default}" in helps[flag], flag
    assert "default: " in helps["--config"]


def test_config_mistakes_and_a_missing_render_gratings_recording_name_what_to_fix(tmp_path, capsys, monkeypatch):
    """A folder as --config said 'no such file'; a misspelt config field was only listed as unknown
    (now with the closest field); render-gratings' missing --data said 'recording not found'
    without naming the flag."""
    from hf_neuroformer.cli import main

    assert main(["train", "--config", str(tmp_path), "--output-dir", str(tmp_path / "m")]) == 2
    assert f"--config: '{tmp_path}' is a folder; expected a YAML file" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("past_windw: 1.0\nfoo_bar: 2\n")
    assert main(["train", "--config", str(bad), "--output-dir", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "unknown NeuroformerConfig fields ['foo_bar', 'past_windw'] (did you mean 'past_window' for 'past_windw'?)" in err
    assert main(["render-gratings", "--data", str(tmp_path / "none.nwb"), "--output", str(tmp_path / "v.nwb")]) == 2
    err = capsys.readouterr().err
    assert "--data: no such file or directory" in err and "README" not in err  # a path of one's own: no hint
    # a README example's shared-data path run from another folder said only 'no such file or directory'
    example = "../shared/data/pynapple_A2929_headdirection/A2929-200711.nwb"
    monkeypatch.chdir(tmp_path)
    assert main(["render-gratings", "--data", example, "--output", str(tmp_path / "v.nwb")]) == 2
    err = capsys.readouterr().err
    assert (f"--data: no such file or directory {example!r} (the README's examples read the shared recordings at "
            f"../shared/data, beside the repository: run them from the repository's root, {str(tmp_path)!r} is the "
            "current folder") in err, err
    assert not (tmp_path / "m").exists() and not (tmp_path / "v.nwb").exists()


def test_an_empty_item_in_a_comma_list_is_refused_as_seeds_are(tmp_path, capsys):
    """'--target ry,,x' and '--units 3,,17' dropped the empty item silently (an item left out by
    mistake, maybe), while '--seeds 0,,1' was refused; all three are refused now, before any work."""
    from hf_neuroformer.cli import main

    assert main(["finetune", "--model", str(tmp_path), "--data", str(tmp_path / "x.nwb"), "--target", "ry,,x",
                 "--output-dir", str(tmp_path / "d")]) == 2
    assert "--target: an empty item in 'ry,,x'" in capsys.readouterr().err
    # every comma-separated flag says the same (one helper): --kind had no check at all
    for flag, value, said in (("--kind", "regression,,circular", "--kind: an empty item in 'regression,,circular'; "
                                                                "expected kinds separated by single commas"),
                              ("--target", ",", "--target: expected variable names separated by commas, such as "
                                                "x,ry or position[1], got ','")):
        args = ["--target", "ry,x", "--kind", value] if flag == "--kind" else ["--target", value]
        assert main(["finetune", "--model", str(tmp_path), "--data", str(tmp_path / "x.nwb"), *args,
                     "--output-dir", str(tmp_path / "d")]) == 2
        assert said in capsys.readouterr().err
    assert main(["ablate", "--config", "missing.yaml", "--output", str(tmp_path / "t.md"), "--seeds", "0,,1"]) == 2
    assert "--seeds: an empty item in '0,,1'; expected integers separated by single commas, such as 0,1,2" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["attention-map", "--model", str(tmp_path), "--data", str(tmp_path / "x.nwb"), "--units", "3,,17",
              "--output", str(tmp_path / "a.png")])
    assert exit_.value.code == 2 and "argument --units: an empty item in '3,,17'" in capsys.readouterr().err
    assert not (tmp_path / "d").exists() and not (tmp_path / "a.png").exists()


STEINMETZ = "steinmetz2019_spcount/NS_sp_count.mat"


@pytest.fixture(scope="module")
def steinmetz_model(tmp_path_factory, shared_data):
    """A model trained for 1 step on the Steinmetz subset (trials; integer trial labels); no test
    generation, no figures (the tests fine-tune from it)."""
    import torch

    from hf_neuroformer.io import load_recording
    from hf_neuroformer.training import TrainingConfig, train
    from tiny_configs import quiet, small_config

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("cli_outputs_steinmetz") / "m"
    quiet(train, quiet(load_recording, shared_data(STEINMETZ)), out,
          small_config(current_window=0.1, past_window=0.2, dt_resolution=0.01, max_window_length=128),
          TrainingConfig(max_steps=1, batch_size=32, eval_batch_size=256, generation_batch_size=512,
                         generate_test=False), progress=False, write_figures=False)
    return out


def test_finetune_kind_that_the_values_do_not_fit_is_refused_before_the_model_is_read(capsys, tmp_path, shared_data,
                                                                                       steinmetz_model, tiny_model):
    """`--kind circular` of a class label (Steinmetz wheel choice -1/0/1) was accepted silently and
    decoded the labels as angles of -1, 0 and 1 rad; `--kind classification` of a continuous series
    (A2929 position x) was refused only after every window was tokenized. Both are refused now,
    naming --kind, the target and what the kind expects, before any work; regression of the labels
    (numbers, maybe ordinal) and circular of the head direction still pass the check."""
    mat = shared_data(STEINMETZ)
    base = ["finetune", "--model", steinmetz_model, "--data", mat, "--max-steps", "1", "--batch-size", "16"]
    for col, labels in (("motorLabel", "[-1, 0, 1]"), ("rawLabel", "[1, 2, 3]")):
        msg = err_of(capsys, *base, "--target", f"trial:{col}", "--kind", "circular", "--output-dir", tmp_path / "c")
        assert msg.startswith(f"--kind circular for --target 'trial:{col}': expected angles in radians, a numeric "
                              "series"), msg
        assert f"whole numbers (3 distinct: {labels})" in msg and "kind 'classification'" in msg, msg
    nwb = shared_data(A2929)
    msg = err_of(capsys, "finetune", "--model", tiny_model, "--data", nwb, "--epoch", "wake", "--target", "x",
                 "--kind", "classification", "--output-dir", tmp_path / "x")
    assert msg.startswith("--kind classification for --target 'x': expected class labels (whole numbers), but ")
    assert "kind 'regression'" in msg, msg
    assert not (tmp_path / "c").exists() and not (tmp_path / "x").exists()
    # what still passes the check: regression and classification of the labels, circular of the head direction
    from hf_neuroformer.decoding import DecodingTarget, kind_problem
    from hf_neuroformer.io import load_recording

    st = load_recording(mat)
    for kind in ("regression", "classification"):
        assert kind_problem(st, DecodingTarget("trial:motorLabel", kind)) is None
    a = load_recording(nwb, epoch="wake")
    assert kind_problem(a, DecodingTarget("ry", "circular")) is None
    assert kind_problem(a, DecodingTarget("x", "regression")) is None


def test_finetune_decodes_a_trial_column_whose_own_name_has_brackets(capsys, tmp_path, shared_data, steinmetz_model):
    """Break test: a trial column named with brackets ('choice[0]', as an NWB trials table may name
    one) was read by --target 'trial:choice[0]' as column 0 of a trial column 'choice' and refused
    as not in the recording; a --target item that is a trial column's own name is that column."""
    import copy
    import json

    from hf_neuroformer.io import load_recording, write_nwb
    from tiny_configs import quiet

    st = quiet(load_recording, shared_data(STEINMETZ))
    rec = copy.copy(st)
    rec.trial_info = {**st.trial_info, "choice[0]": st.trial_info["motorLabel"]}
    path = tmp_path / "trials.nwb"
    quiet(write_nwb, rec, path)
    out = tmp_path / "o"
    capsys.readouterr()
    rc = quiet(cli.main, ["finetune", "--model", str(steinmetz_model), "--data", str(path), "--target", "trial:choice[0]",
                          "--max-steps", "1", "--eval-steps", "1", "--batch-size", "16", "--output-dir", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert [(t["name"], t["column"]) for t in json.loads((out / "config.json").read_text())["decoding_targets"]] == [
        ("trial:choice[0]", None)]


def test_ablate_shows_the_training_bar_of_every_variant(ablation_run):
    """Walk of 'neuroformer ablate' (README: 300 steps x 4 variants x 3 seeds): train shows a bar,
    but ablate called run_ablation with progress off, so a run of many minutes printed only one
    'training <variant>' line per model and, with the default eval_every (once per epoch), nothing
    else for minutes. Each variant's training now has its bar on standard error."""
    _, rc, err = ablation_run
    assert rc == 0, err
    # state-only and +past: one finished training bar each (tqdm's "training: 100%|...| 2/2")
    assert err.count("| 2/2 [") >= 2 and "training: 100%" in err, err
    # and one over the batches of each evaluation: the validation at step 2, while the step bar is open
    # (it stood still, without a bar, while a validation ran), then the test pass (the kept step's validation
    # figures are reused, not scored again after training)
    done = [m.start() for m in re.finditer(r"evaluating: 100%.* (\d+)/\1 \[", err)]
    assert len(done) >= 2 * 2 and done[0] < err.index("training: 100%"), err


@pytest.mark.parametrize("command", ["ablate", "train"])
def test_a_config_modality_the_recording_lacks_names_data_and_config(capsys, tmp_path, command):
    """Walk of 'neuroformer ablate --config configs/a2929_head_direction.yaml' without --data (the
    built-in simulated recording, which has no 'ry'): the error was the config-level
    "NeuroformerConfig.modalities[0] ('head_direction').source: 'behaviour:ry' is not in the
    recording; ...", naming neither --data nor --config nor a fix (train said the same)."""
    cfg = tmp_path / "hd.yaml"
    cfg.write_text("modalities:\n  - name: head_direction\n    source: behaviour:ry\n    kind: continuous\n"
                   "    normalization: circular\n    window: [-0.05, 0.05]\n    bin_size: 0.01\n")
    out = tmp_path / ("t.md" if command == "ablate" else "run")
    argv = ["--output", out, "--max-steps", 1] if command == "ablate" else ["--output-dir", out, "--max-steps", 1]
    msg = err_of(capsys, command, "--config", cfg, *argv)
    assert msg.startswith("--data (not given: the built-in simulated recording): "), msg
    assert "'head_direction'" in msg and "'behaviour:ry'" in msg and str(cfg) in msg, msg
    assert "pass with --data" in msg, msg
    assert not out.exists()


def test_ablate_refuses_a_negative_seed_in_seeds_naming_the_flag(capsys, tmp_path):
    """Walk: 'ablate --seeds -1' read the recording and then failed with 'training.seed: expected an
    integer >= 0, got -1', naming the Python field (--seed -1 named its flag, before any reading).
    The data here is a missing file: an error about it would mean --seeds was checked too late."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("hidden_size: 16\n")
    msg = err_of(capsys, "ablate", "--config", cfg, "--data", tmp_path / "missing.nwb", "--seeds", "0,-1",
                 "--output", tmp_path / "t.md")
    assert msg.startswith("--seeds: ") and "-1" in msg and ">= 0" in msg, msg


def test_ablate_refuses_an_output_that_is_its_config_or_data(capsys, tmp_path):
    """Walk: 'ablate --config c.yaml --output c.yaml --overwrite' trained every variant and then
    wrote the markdown table over the config it had read (and '--output rec.nwb' would replace the
    recording); --overwrite replaces old outputs, never an input. Refused before anything is read."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("hidden_size: 16\n")
    data = tmp_path / "rec.nwb"
    data.write_bytes(b"not read: the output check comes first")
    for out, flag in ((cfg, "--config"), (data, "--data")):
        before = out.read_bytes()
        msg = err_of(capsys, "ablate", "--config", cfg, "--data", data, "--max-steps", 1, "--output", out,
                     "--overwrite")
        assert msg.startswith("--output: ") and f"is {flag} " in msg, msg
        assert out.read_bytes() == before


def test_decode_refuses_an_output_that_is_its_data_file(capsys, tmp_path):
    """'decode --data spikes.csv --output spikes.csv --overwrite' (a recording read from a CSV table,
    and decode writes CSV) would replace the recording with the decoded values. Refused before the
    model or the data is read, as generate refuses its --data."""
    data = tmp_path / "spikes.csv"
    data.write_text("unit,time\n0,0.1\n")
    before = data.read_bytes()
    (tmp_path / "model").mkdir()  # passes the output checks' look at --model; not loaded before them
    msg = err_of(capsys, "decode", "--model", tmp_path / "model", "--data", data, "--output", data, "--overwrite")
    assert msg.startswith("--output: ") and "is --data " in msg, msg
    assert data.read_bytes() == before


@pytest.mark.parametrize("config_text, said", [
    ("hidden_size: 16\n", "no modality"),
    ("contrastive_loss_weight: 0.5\nmodalities:\n  - name: head_direction\n    source: behaviour:ry\n"
     "    kind: continuous\n", "contrastive_loss_weight 0.5"),
])
def test_ablate_contrastive_weight_that_would_be_ignored_is_refused(capsys, tmp_path, config_text, said):
    """Walk: --contrastive-loss-weight weights +contrastive only when the config's own weight is 0 and
    it has a modality; otherwise the flag was dropped without a word (the table showed the config's
    weight, or no +contrastive row). Refused naming the flag, before the recording is read."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(config_text)
    msg = err_of(capsys, "ablate", "--config", cfg, "--data", tmp_path / "missing.nwb", "--output", tmp_path / "t.md",
                 "--contrastive-loss-weight", "1.0")
    assert msg.startswith("--contrastive-loss-weight: ") and said in msg, msg


def test_ablate_work_dir_problems_name_the_flag_before_the_recording_is_read(capsys, tmp_path):
    """Walk: '--work-dir runs/table.md' (a file) and a --work-dir holding the models of an earlier run
    were refused as 'output_dir: ...', a Python name (ablate has no --output-dir), and only after the
    recording had been read. The data here is a missing file: an error about it means too late."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("hidden_size: 16\n")
    a_file = tmp_path / "table.md"
    a_file.write_text("x")
    held = tmp_path / "work" / "0-state-only"
    held.mkdir(parents=True)
    (held / "config.json").write_text("{}")
    for work, said in ((a_file, "is a file, not a folder"), (tmp_path / "work", "already holds a model")):
        msg = err_of(capsys, "ablate", "--config", cfg, "--data", tmp_path / "missing.nwb", "--output",
                     tmp_path / "t.md", "--work-dir", work)
        assert msg.startswith("--work-dir: ") and said in msg, msg


def _config_and_model_folder(tmp_path, run_file: str):
    """A config tmp/c.yaml and a folder tmp/a2929 that looks like a trained model (config.json,
    model.safetensors and ``run_file``, each holding '{}')."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("hidden_size: 16\n")
    model = tmp_path / "a2929"
    model.mkdir()
    for name in ("config.json", "model.safetensors", run_file):
        (model / name).write_text("{}")
    return cfg, model


def test_ablate_refuses_a_table_whose_json_is_a_model_file(capsys, tmp_path):
    """Walk: 'ablate --output runs/a2929/metrics.md --overwrite' writes its figures to
    runs/a2929/metrics.json, the trained model's run record (config.md: its config.json, and the
    model no longer loads). embed and attention-map refuse a file of their --model; ablate reads no
    model, so a folder holding one (config.json and model.safetensors) is recognised as such."""
    cfg, model = _config_and_model_folder(tmp_path, "metrics.json")
    for stem in ("metrics", "config"):
        msg = err_of(capsys, "ablate", "--config", cfg, "--data", tmp_path / "missing.nwb", "--output",
                     model / f"{stem}.md", "--overwrite")
        assert msg.startswith("--output (.json beside it): ") and f"{stem}.json" in msg, msg
        assert (model / f"{stem}.json").read_text() == "{}"
    # another name in that folder stays allowed (the error is then about the missing recording)
    msg = err_of(capsys, "ablate", "--config", cfg, "--data", tmp_path / "missing.nwb", "--output",
                 model / "ablation.md")
    assert msg.startswith("--data: "), msg
    # weights saved in shards (model.safetensors.index.json, no model.safetensors) are a model folder too
    (model / "model.safetensors").rename(model / "model-00001-of-00001.safetensors")
    (model / "model.safetensors.index.json").write_text('{"weight_map": {"w": "model-00001-of-00001.safetensors"}}')
    msg = err_of(capsys, "ablate", "--config", cfg, "--data", tmp_path / "missing.nwb", "--output",
                 model / "metrics.md", "--overwrite")
    assert msg.startswith("--output (.json beside it): ") and "metrics.json" in msg, msg


def test_ablate_refuses_a_table_linked_to_a_model_file(capsys, tmp_path):
    """ablate looked for a model only in the folder of the --output path given: a table that is a
    link into a model folder (abl.md -> runs/a2929/training_log.json) passed, and with --overwrite
    the markdown was written through the link over the model's run record."""
    cfg, model = _config_and_model_folder(tmp_path, "training_log.json")
    link = tmp_path / "abl.md"
    link.symlink_to(model / "training_log.json")
    msg = err_of(capsys, "ablate", "--config", cfg, "--data", tmp_path / "missing.nwb", "--output", link,
                 "--overwrite")
    assert msg.startswith("--output: ") and "a link to training_log.json" in msg, msg
    assert (model / "training_log.json").read_text() == "{}"


HD_YAML = ("modalities:\n  - name: head_direction\n    source: behaviour:ry\n    kind: continuous\n"
           "    normalization: circular\n    window: [-0.05, 0.05]\n    bin_size: 0.01\n")
RIPPLES_YAML = ("modalities:\n  - name: ripples\n    source: events:sleep_ripples\n    kind: categorical\n"
                "    window: [-0.25, 0.05]\n    max_tokens: 8\n")


@pytest.mark.parametrize("command, yaml, epoch, said", [
    ("ablate", HD_YAML, "sleep", "'head_direction' of --config"),
    ("train", HD_YAML, "sleep", "'head_direction' of --config"),
    ("train", RIPPLES_YAML, "wake", "'ripples' of --config")])
def test_a_config_modality_without_values_in_the_epoch_names_data_and_epoch(capsys, tmp_path, shared_data, command,
                                                                            yaml, epoch, said):
    """configs/a2929_head_direction.yaml with --epoch sleep: 'ry' is a behaviour series of the file, so
    the --config modality check passed, but it has no sample in the sleep epoch and training then
    failed with the config-level "NeuroformerConfig.modalities[0] ('head_direction'): no finite value
    of 'behaviour:ry' inside the training split", naming neither --data, --epoch nor --config (the
    ripple events of configs/a2929_sleep_ripples.yaml in --epoch wake: "no label of ...")."""
    cfg = tmp_path / "m.yaml"
    cfg.write_text(yaml)
    out = tmp_path / ("t.md" if command == "ablate" else "run")
    argv = ["--output", out, "--max-steps", 1] if command == "ablate" else ["--output-dir", out, "--max-steps", 1]
    msg = err_of(capsys, command, "--config", cfg, "--data", shared_data(A2929),
                 "--epoch", epoch, *argv)
    assert msg.startswith("--data: "), msg
    assert said in msg and str(cfg) in msg and ("no finite value" in msg or "no label" in msg), msg
    assert f"--epoch {epoch!r}" in msg, msg
    assert not out.exists()


@pytest.mark.parametrize("argv", [
    ["train", "--output-dir", ""],
    ["train", "--config", "", "--output-dir", "{d}/m"],
    ["inspect", "--data", ""],
    ["generate", "--model", "", "--output", "{d}/g.nwb"],
    ["evaluate", "--generated", "", "--output", "{d}/e.json"],
    ["finetune", "--model", "{d}", "--target", "ry", "--output-dir", ""],
    ["decode", "--model", "{d}", "--output", "{d}/d.csv", "--figure", ""],
    ["ablate", "--config", "{d}/c.yaml", "--output", "{d}/t.md", "--work-dir", ""],
])
def test_an_empty_path_is_refused_not_read_as_the_current_directory(tmp_path, capsys, monkeypatch, argv):
    """'--output-dir ""' (an unset shell variable) is Path("") == ".": train wrote its model files into
    the current directory, --model "" / --data "" read it and --config "" was dropped for the defaults,
    without a word. Each is refused naming its flag, before anything is read or written."""
    from hf_neuroformer.cli import main

    monkeypatch.chdir(tmp_path)
    # a --data that does not exist: before the fix, the refusal (if any) was about it, not the empty path
    argv = [a.format(d=tmp_path) for a in argv]
    if argv[0] != "inspect":
        argv += ["--data" if argv[0] != "evaluate" else "--real", str(tmp_path / "missing.nwb")]
    assert main(argv) == 2
    flag = argv[argv.index("") - 1]
    err = capsys.readouterr().err
    assert f"error: {flag}: empty path" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_metrics_summary_prints_a_tiny_fraction_with_its_digits(capsys):
    """Break test: ``neuroformer finetune --fraction 1e-9`` printed ``fraction 0.0000`` in its summary
    (metrics.json held 1e-09): figures below 0.001 are now printed with 4 significant digits, the
    others with 4 decimals as before, intervals too."""
    cli._print_metrics({"fraction": 1e-9, "test/x/r2": 0.51234, "test/x/rmse": 0.0, "test/x/mae": 0.00012345,
                        "test/x/mae_ci95": [0.0001, 0.25]})
    lines = {ln.split()[0]: ln.split(None, 1)[1] for ln in capsys.readouterr().out.splitlines()}
    assert lines["fraction"] == "1e-09" and lines["test/x/r2"] == "0.5123" and lines["test/x/rmse"] == "0.0000"
    assert lines["test/x/mae"] == "0.0001234  95% CI [0.0001, 0.2500]", lines


def test_finetune_refuses_a_bad_ema_decay_by_its_flag(capsys, tmp_path):
    """`neuroformer finetune --ema-decay D` (finetune's ema_decay, Polyak averaging of the weights): a decay
    outside (0, 1) exits 2 naming the flag, before the model or data is read (the paths here do not
    exist). The command had no such option; that it is passed on is checked by
    test_finetune_select_on_lists_the_metrics_and_a_decoder_is_named_by_model's run."""
    for bad in ("1", "0", "nan"):
        msg = err_of(capsys, "finetune", "--model", tmp_path / "no-model", "--target", "x", "--output-dir",
                     tmp_path / "bad", "--ema-decay", bad)
        assert msg.startswith("--ema-decay: expected None (off) or a number in (0, 1)"), msg
    assert not (tmp_path / "bad").exists()


def test_finetune_spike_dropout_is_checked_by_its_flag_and_recorded(capsys, tmp_path, shared_data, tiny_model):
    """`neuroformer finetune --spike-dropout P` (finetune's spike_dropout, thinning of the training windows):
    the command had no such flag (argparse: unrecognized arguments), so the augmentation was the Python API's
    alone. A P outside [0, 1) exits 2 naming the flag, before the model or data is read (the paths do not
    exist); a good one is passed on, recorded in metrics.json as the API records it, and printed (off by
    default: test_finetune_select_on_lists_the_metrics_and_a_decoder_is_named_by_model's run has neither). The run
    (--fraction 0.5) also checks that the train line says how many windows a --fraction below 1 fitted."""
    for bad in ("1", "-0.1", "nan"):
        msg = err_of(capsys, "finetune", "--model", tmp_path / "no-model", "--target", "x", "--output-dir",
                     tmp_path / "bad", "--spike-dropout", bad)
        assert msg.startswith("--spike-dropout: expected the probability that each spike token of a training "
                              "window is dropped, a number in [0, 1) (0: off)"), msg
    assert not (tmp_path / "bad").exists()
    out = tmp_path / "thinned"
    assert cli.main([str(a) for a in ("finetune", "--model", tiny_model, "--data", shared_data(A2929), "--epoch",
                                      "wake", "--target", "x", "--max-steps", 1, "--batch-size", 16,
                                      "--output-dir", out, "--spike-dropout", 0.25, "--fraction", 0.5)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    training = metrics["training"]
    assert training["spike_dropout"] == 0.25, training
    tokens = training["spike_dropout_tokens"]
    assert 0 < tokens["dropped"] < tokens["spikes"], tokens
    said = capsys.readouterr().out
    assert (f"  training windows thinned: --spike-dropout 0.25, {tokens['dropped']} of {tokens['spikes']} spike "
            "tokens of the training batches dropped") in said, said
    # --fraction: the train line counted the split's windows with a value (3755) and nothing said only the first
    # half of them was fitted (n_train_windows, printed far below among the metrics)
    n, used = metrics["n_train_windows"], metrics["train_windows_used_s"]
    assert 0 < n < metrics["n_train_windows_full"]
    assert re.search(rf"  train: {metrics['n_train_windows_full']} of \d+ windows \(dropped: .*\); --fraction 0.5: the "
                     rf"first {n} in time fitted, starts {used[0]:.3f}-{used[1]:.3f} s \(metrics.json: n_train_windows, "
                     r"train_windows_used_s\)\n", said), said


def test_finetune_no_figures_leaves_out_the_figure_and_nothing_else(capsys, tmp_path, shared_data, tiny_model):
    """`neuroformer finetune` always drew test_decoding.png: finetune(write_figures=False) could leave it out, the
    command could not. `--no-figures` now leaves out that figure and nothing else (1 step on a fifth of the
    training windows, with and without the flag: the same files but the PNG, test_predictions.csv included)."""
    written = {}
    for name, extra in (("with", []), ("without", ["--no-figures"])):
        assert cli.main([str(a) for a in ("finetune", "--model", tiny_model, "--data", shared_data(A2929), "--epoch",
                                          "wake", "--target", "x", "--max-steps", 1, "--batch-size", 16, "--fraction",
                                          0.2, "--output-dir", tmp_path / name, *extra)]) == 0
        written[name] = sorted(p.name for p in (tmp_path / name).iterdir())
    said = capsys.readouterr().out
    assert "test_decoding.png" in written["with"] and "test_predictions.csv" in written["with"], written
    assert written["without"] == [f for f in written["with"] if f != "test_decoding.png"], written
    wrote = [line for line in said.splitlines() if line.startswith("[neuroformer] wrote ")]
    assert len(wrote) == 2 and "test_decoding.png" in wrote[0] and "test_decoding.png" not in wrote[1], wrote


def test_finetune_regression_loss_hl_gauss_reaches_the_decoder(capsys, tmp_path, shared_data, tiny_model):
    """The HL-Gauss loss (plan 9) was reachable from Python and the sweep script only: `neuroformer finetune
    --regression-loss hl_gauss --num-bins K --hl-gauss-sigma-ratio R` now trains every regression target with it
    (1 step): the saved config's target holds loss, num_bins, the ratio and the bin range placed over the
    standardised training values, the circular target beside it keeps its own loss, and the reloaded decoder
    predicts finite values from its bins."""
    import numpy as np

    from hf_neuroformer.finetuning import decode_windows, load_decoder, windows_tiling
    from hf_neuroformer.io import load_recording

    out = tmp_path / "dec"
    assert cli.main([str(a) for a in ("finetune", "--model", tiny_model, "--data", shared_data(A2929), "--epoch",
                                      "wake", "--target", "x,ry", "--kind", "regression,circular",
                                      "--regression-loss", "hl_gauss", "--num-bins", 16, "--hl-gauss-sigma-ratio",
                                      0.75, "--max-steps", 1, "--batch-size", 16, "--fraction", 0.2, "--no-figures",
                                      "--output-dir", out)]) == 0
    assert "regression loss: hl_gauss (16 bins, sigma 0.75 bin widths) for x" in capsys.readouterr().out
    targets = {t["name"]: t for t in json.loads((out / "config.json").read_text())["decoding_targets"]}
    x = targets["x"]
    assert (x["loss"], x["num_bins"], x["hl_gauss_sigma_ratio"]) == ("hl_gauss", 16, 0.75), x
    low, high = x["bin_range"]
    assert np.isfinite([low, high]).all() and low < 0 < high, x  # standardised training values straddle 0
    assert targets["ry"].get("loss", "mse") == "mse" and "num_bins" not in targets["ry"], targets["ry"]
    model, tokenizer, _ = load_decoder(out)
    rec = load_recording(shared_data(A2929), epoch="wake")
    starts, clips = windows_tiling(rec, model.config)
    table, _ = decode_windows(model, tokenizer, rec, starts[:8], past_clip_starts=clips[:8], recorded=False,
                              warn_absent_units=False)
    predicted = np.asarray(table["x_predicted"], dtype=float)
    assert len(predicted) == 8 and np.isfinite(predicted).all(), table


def test_finetune_target_without_a_sample_in_the_epoch_names_target_and_epoch(capsys, tmp_path, shared_data,
                                                                              tiny_model):
    """Break test: `finetune --epoch sleep --target ry` (head direction, recorded only in wake) tokenized every
    window, then failed with "targets ['ry']: no training window left with a value of this target after the window
    mask ({'n_windows_before': ..., ...})", naming neither flag; the series is now refused before the model is
    fine-tuned, naming --target and --epoch, and an event stream's series (sleep_ripples in wake) says it is one."""
    base = ["finetune", "--model", tiny_model, "--data", shared_data(A2929), "--max-steps", 1, "--batch-size", 16,
            "--output-dir", tmp_path / "dec"]
    msg = err_of(capsys, *base, "--epoch", "sleep", "--target", "ry")
    assert msg == ("--target 'ry': the behaviour series 'ry' has no sample in --epoch 'sleep' of --data; expected a "
                   "variable recorded there, or the --epoch it was recorded in"), msg
    msg = err_of(capsys, *base, "--epoch", "wake", "--target", "x,sleep_ripples")
    assert msg.startswith("--target 'sleep_ripples': the behaviour series 'sleep_ripples' has no sample in --epoch "
                          "'wake' of --data; expected a variable recorded there (it is an event stream"), msg
    assert not (tmp_path / "dec").exists()


def test_decode_model_that_is_no_model_folder_asks_for_finetune_output(capsys, tmp_path):
    """Break test: `decode --model runs/typo` (or a folder without the model files) was told "expected one written
    by 'neuroformer train'", whose output decode then refuses as "not a fine-tuned decoder"; it now asks for what
    decode reads, a folder written by 'neuroformer finetune' (checked before the recording is read)."""
    (tmp_path / "empty").mkdir()
    for model in (tmp_path / "typo", tmp_path / "empty"):
        msg = err_of(capsys, "decode", "--model", model, "--data", tmp_path / "missing.nwb", "--output",
                     tmp_path / "d.csv")
        assert msg.startswith(f"--model: '{model}' ") and msg.endswith("expected a directory written by 'neuroformer "
                                                                       "finetune'" if model.name == "empty" else
                                                                       "expected one written by 'neuroformer finetune'"), msg
    assert not (tmp_path / "d.csv").exists()
