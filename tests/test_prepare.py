"""``neuroformer prepare`` / ``windows.prepare_windows``: sharded Parquet windows with a manifest,
read back (streamed or not) exactly as ``build_window_datasets`` builds them in memory."""

import dataclasses
import hashlib
import json
import re
import shlex

import pandas as pd
import pytest
from datasets.distributed import split_dataset_by_node

import hf_neuroformer as nf
from hf_neuroformer.io import load_recording
from hf_neuroformer.tokenization_neuroformer import NeuroformerTokenizer
from hf_neuroformer.windows import (SPLITS, SplitPlan, build_window_datasets, load_prepared, prepare_windows,
                                   spikes_outside_windows)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, shared_data):
    rec = load_recording(shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"), epoch="wake")
    out = tmp_path_factory.mktemp("prep") / "a2929"
    cfg = nf.NeuroformerConfig(max_past_length=128)
    manifest = prepare_windows(rec, out, cfg, num_shards=3, progress=False)
    return rec, out, manifest


def test_shards_hold_the_in_memory_windows(prepared):
    rec, out, manifest = prepared
    assert json.loads((out / "manifest.json").read_text()) == manifest
    tok = NeuroformerTokenizer.from_pretrained(out)
    cfg = nf.NeuroformerConfig.from_pretrained(out)
    plan = SplitPlan.from_dict(json.loads((out / "splits.json").read_text()))
    in_memory, _ = build_window_datasets(rec, tok, cfg, plan)
    outside = spikes_outside_windows(rec, plan, cfg, {s: in_memory[s]["window_start"] for s in SPLITS})
    for split in SPLITS:
        entry = manifest["splits"][split]
        assert len(entry["shards"]) == 3
        for shard in entry["shards"]:
            assert hashlib.sha256((out / shard["path"]).read_bytes()).hexdigest() == shard["sha256"]
        assert sum(s["n_rows"] for s in entry["shards"]) == entry["n_windows"] == len(in_memory[split])
        assert entry["n_spikes"] == sum(in_memory[split]["n_spikes"])
        # the spikes no current window covers, as in-memory training counts them (its metrics.json)
        assert entry["n_spikes_outside_windows"] == outside[split]["n_spikes_outside_windows"] > 0
        assert entry["seconds_outside_windows"] == round(outside[split]["seconds_outside_windows"], 6)
        table = load_prepared(out, split, streaming=False)
        assert table.features == in_memory[split].features
        # validation and test: contiguous blocks, the in-memory rows in time order; train: window k in
        # shard k mod 3, so the shards give rows 0, 3, 6, ..., then 1, 4, ..., then 2, 5, ...
        order = ([k for i in range(3) for k in range(i, len(in_memory[split]), 3)] if split == "train"
                 else list(range(len(in_memory[split]))))
        expected = in_memory[split].select(order)
        pd.testing.assert_frame_equal(table.to_pandas(), expected.to_pandas())
        # streamed: the same rows in the same order
        streamed = list(load_prepared(out, split, streaming=True))
        assert [r["window_start"] for r in streamed] == expected["window_start"]
        assert [r["input_ids"] for r in streamed] == expected["input_ids"]
    assert manifest["train_shard_layout"] == "interleaved"
    # the training counts of this recording (metrics.json of the A2929 model card)
    assert [manifest["splits"][s]["n_windows"] for s in SPLITS] == [4130, 840, 860]


def test_two_ranks_read_disjoint_shards_covering_the_split(prepared):
    _, out, manifest = prepared
    stream = load_prepared(out, "train", streaming=True)
    seen = []
    for rank in range(2):
        seen += [r["window_start"] for r in split_dataset_by_node(stream, rank=rank, world_size=2)]
    assert sorted(seen) == sorted(r["window_start"] for r in stream)
    assert len(seen) == manifest["splits"]["train"]["n_windows"]


def test_prepare_refuses_bad_requests(prepared, tmp_path):
    rec, out, _ = prepared
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(FileExistsError, match="output_dir: .* exists"):
        prepare_windows(rec, out, progress=False)
    assert (out / "manifest.json").read_bytes() == before
    with pytest.raises(ValueError, match="num_shards: expected an integer >= 1"):
        prepare_windows(rec, tmp_path / "x", num_shards=0, progress=False)
    assert not (tmp_path / "x").exists()
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        load_prepared(tmp_path, "train")
    with pytest.raises(ValueError, match="split: 'dev' is not in"):
        load_prepared(out, "dev")


# --- training that streams a prepared directory (issue 7: memory does not grow with the recording)

TINY = dict(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=32, max_past_length=64,
            hidden_size=32, num_attention_heads=2, intermediate_size=64, split_block_length=5.0)


@pytest.fixture(scope="module")
def tiny_prepared(tmp_path_factory, shared_data):
    rec = load_recording(shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"), epoch="wake")
    rec = rec.restrict(rec.support[0, 0], rec.support[0, 0] + 120.0)
    out = tmp_path_factory.mktemp("tiny") / "prepared"
    prepare_windows(rec, out, nf.NeuroformerConfig(**TINY), num_shards=2, progress=False)
    return out


def test_a_prepared_directory_given_as_model_is_named_as_such(tiny_prepared, capsys, tmp_path):
    # it holds config.json, vocab.json and tokenizer_config.json, so 'generate --model prep' was told only
    # that it 'has no model.safetensors (the weights)'
    from hf_neuroformer import cli

    assert cli.main(["generate", "--model", str(tiny_prepared), "--output", str(tmp_path / "g.nwb")]) == 2
    err = capsys.readouterr().err
    assert f"--model: '{tiny_prepared}' is a prepared directory ('neuroformer prepare'" in err, err
    assert "not a model" in err and "model.safetensors" not in err and not (tmp_path / "g.nwb").exists()


def test_training_into_the_prepared_directory_it_reads_is_refused(tiny_prepared, capsys):
    # 'neuroformer train --data prep --output-dir prep' was refused as "already holds a model
    # (config.json, vocab.json, tokenizer_config.json, splits.json)", the prepared files, and with
    # --overwrite the model's config, tokenizer and splits replaced the data folder's
    from hf_neuroformer import cli
    from hf_neuroformer.training import train

    before = {p.name: p.read_bytes() for p in tiny_prepared.rglob("*") if p.is_file()}
    for extra in ([], ["--overwrite"], ["--resume"]):
        assert cli.main(["train", "--data", str(tiny_prepared), "--output-dir", str(tiny_prepared / "." / ""),
                         *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("neuroformer train: error: --output-dir: ") and "is --data" in err, err
        assert "the folder this command reads" in err and "pass another folder name" in err, err
    with pytest.raises(ValueError, match=r"output_dir: .* is the prepared directory this run reads"):
        train(tiny_prepared, tiny_prepared, overwrite=True, progress=False)
    assert {p.name: p.read_bytes() for p in tiny_prepared.rglob("*") if p.is_file()} == before


def test_streamed_training_resumes_like_the_uninterrupted_run(tiny_prepared, tmp_path, shared_data, readme_leaves_out):
    from safetensors.torch import load_file

    from hf_neuroformer.training import TrainingConfig, train

    tc = TrainingConfig(max_steps=8, batch_size=16, eval_every=4, save_every=3, shuffle_buffer_size=64)
    losses = {"full": [], "cut": []}
    metrics = train(tiny_prepared, tmp_path / "full", None, tc, progress=False,
                    on_step_end=lambda s, loss: losses["full"].append(loss))
    assert metrics["data"].startswith("streamed") and metrics["n_train_windows_unused"] == 0
    assert not readme_leaves_out(metrics), readme_leaves_out(metrics)
    manifest = json.loads((tiny_prepared / "manifest.json").read_text())["splits"]
    assert metrics["n_spikes_outside_windows_by_split"] == {s: manifest[s]["n_spikes_outside_windows"] for s in SPLITS}
    assert metrics["seconds_outside_windows_by_split"] == {s: manifest[s]["seconds_outside_windows"] for s in SPLITS}
    assert metrics["n_train_windows"] == manifest["train"]["n_windows"]
    assert metrics["n_truncated_windows_by_split"] == {s: manifest[s]["n_truncated_windows"] for s in SPLITS}
    assert metrics["n_truncated_past_windows_by_split"] == {s: manifest[s]["n_truncated_past_windows"] for s in SPLITS}
    # the fingerprint of the spikes in the split segments: the one in-memory training of the same recording
    # and plan records, so commands that read the model with a recording can tell a re-simulated file
    from hf_neuroformer.windows import SplitPlan, split_spikes_digest
    rec = load_recording(shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"), epoch="wake")
    plan = SplitPlan.from_dict(json.loads((tiny_prepared / "splits.json").read_text()))
    assert metrics["split_spikes"] == split_spikes_digest(rec, plan)
    assert metrics["split_spikes"]["n_spikes"] == sum(manifest[s]["n_spikes"] for s in SPLITS) + sum(
        manifest[s]["n_spikes_outside_windows"] for s in SPLITS)
    assert metrics["test/id_nll"] < metrics["test/unigram_id_nll"] + 1.0  # scored, finite, sane
    assert "not run" in metrics["test/generation"]

    class Interrupted(Exception):
        pass

    def interrupt(step, loss):
        losses["cut"].append(loss)
        if step == 5:
            raise Interrupted

    with pytest.raises(Interrupted):
        train(tiny_prepared, tmp_path / "cut", None, tc, progress=False, on_step_end=interrupt)
    del losses["cut"][3:]  # steps 4-5 are redone from the step-3 checkpoint
    # the step-3 checkpoint lies inside epoch 0, whose order the shuffle buffer drew: another buffer skipped
    # its first 3 micro-batches of another order (windows trained twice or never in that epoch)
    with pytest.raises(ValueError, match=r"training\.shuffle_buffer_size: checkpoint .*step-00000003.* stopped 3 "
                                         r"micro-batches into epoch 0.*resume with shuffle_buffer_size=64"):
        train(tiny_prepared, tmp_path / "cut", None, dataclasses.replace(tc, shuffle_buffer_size=32), progress=False,
              resume=True)
    train(tiny_prepared, tmp_path / "cut", None, tc, progress=False, resume=True,
          on_step_end=lambda s, loss: losses["cut"].append(loss))
    assert losses["cut"] == pytest.approx(losses["full"], abs=1e-6)
    a, b = (load_file(tmp_path / r / "model.safetensors") for r in ("full", "cut"))
    # a wrong resume (a batch replayed or skipped, the optimizer state lost) changes the losses above
    # and moves weights by about one Adam step (~learning_rate, 1e-3); the weights were once 2.3e-5
    # apart with every loss equal within 1e-6, twice in many runs, each time under heavy CPU load
    # (a profiler or plugin loaded): float noise, not a resume fault, so they are held to 1e-4
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-4


def test_streamed_epochs_end_without_the_datasets_pause(tiny_prepared, tmp_path, monkeypatch):
    """Several shards read at once made datasets 5.x sleep 5 s (SLEEP_TIME_ON_THREADS_SHUTDOWN) at
    every epoch's end and at the end of the run; interleaved train shards are read one at a time,
    with no reader threads and no pause. datasets' sleep is recorded here (and still run)."""
    import time as real_time

    import datasets.iterable_dataset as iterable_dataset

    from hf_neuroformer.training import TrainingConfig, train

    slept = []

    class RecordingTime:  # datasets' own module reference to time, with sleep recorded
        def __getattr__(self, name):
            return getattr(real_time, name)

        @staticmethod
        def sleep(seconds):
            slept.append(seconds)
            real_time.sleep(seconds)

    monkeypatch.setattr(iterable_dataset, "time", RecordingTime())
    n_train = json.loads((tiny_prepared / "manifest.json").read_text())["splits"]["train"]["n_windows"]
    tc = TrainingConfig(max_steps=2 * -(-n_train // 64) + 1, batch_size=64, eval_every=1000, save_every=1000,
                        shuffle_buffer_size=64)  # two whole epochs and a step of the third
    metrics = train(tiny_prepared, tmp_path / "m", None, tc, progress=False)
    assert metrics["data"].startswith("streamed") and metrics["total_steps"] == tc.max_steps
    assert slept == [], slept


def test_a_directory_prepared_before_the_interleaved_layout_still_trains(tiny_prepared, tmp_path, capsys,
                                                                        monkeypatch):
    """A manifest without train_shard_layout (contiguous train shards, written before b101082) keeps
    datasets' default shuffle (several shards at once), so its buffer does not hold one stretch of
    time; one train shard needs no interleaving either way. The run shows its bars: the final
    validation and test passes over the streamed splits had no total ("evaluating: 3batch"), though
    the manifest counts their windows."""
    import shutil

    from hf_neuroformer.training import TrainingConfig, _buffer_input_shards, train

    old = tmp_path / "old"
    shutil.copytree(tiny_prepared, old)
    manifest = json.loads((old / "manifest.json").read_text())
    assert _buffer_input_shards(load_prepared(old, "train"), manifest) == {"max_buffer_input_shards": 1}
    del manifest["train_shard_layout"]
    for entry in manifest["splits"].values():  # nor did it count the truncated windows
        del entry["n_truncated_windows"], entry["n_truncated_past_windows"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    assert _buffer_input_shards(load_prepared(old, "train"), manifest) == {}
    one = dict(manifest, splits=dict(manifest["splits"], train=dict(manifest["splits"]["train"],
                                                                     shards=manifest["splits"]["train"]["shards"][:1])))
    assert _buffer_input_shards(load_prepared(old, "train"), one) == {}  # see the test below
    tc = TrainingConfig(max_steps=2, batch_size=16, eval_every=1000, save_every=1000, shuffle_buffer_size=64)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    capsys.readouterr()
    metrics = train(old, tmp_path / "m", None, tc, progress=True)
    assert metrics["data"].startswith("streamed") and metrics["total_steps"] == 2
    # counts the manifest lacks are left out, not written as 0
    assert "n_truncated_windows_by_split" not in metrics and "n_truncated_past_windows_by_split" not in metrics
    err = capsys.readouterr().err
    # the last step's validation pass, then the final test pass (the kept step's validation figures are
    # reused, not scored again): each bar with its total
    done = re.findall(r"^evaluating: 100%.* (\d+)/(\d+) \[", err, re.M)
    assert len(done) == 2 and all(a == b for a, b in done), err
    assert not re.search(r"evaluating: \d+batch", err), err


def test_a_one_shard_directory_prepared_before_keeps_its_epoch_order(tmp_path, shared_data):
    """One train shard read with max_buffer_input_shards=1 comes in another order than with datasets'
    default (the buffer is rebatched otherwise), so a directory prepared before the interleaved layout
    with one train shard (prepare's default) keeps the default: a checkpoint written before b101082
    resumes on the rest of its epoch, not on other windows (some twice, some never)."""
    from hf_neuroformer.training import TrainingConfig, _buffer_input_shards

    rec = load_recording(shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"), epoch="wake")
    rec = rec.restrict(rec.support[0, 0], rec.support[0, 0] + 120.0)
    out = tmp_path / "one"
    manifest = prepare_windows(rec, out, nf.NeuroformerConfig(**TINY), num_shards=1, progress=False)
    del manifest["train_shard_layout"]  # as written before b101082
    (out / "manifest.json").write_text(json.dumps(manifest))
    tc = TrainingConfig(shuffle_buffer_size=64)
    ds = load_prepared(out, "train")

    def order(**kw):
        # one epoch: the orders differ from epoch 0 on (607.2 s against 607.5 s first), and every
        # epoch read with datasets' default reader threads ends in its 5-s pause
        shuffled = ds.shuffle(seed=tc.seed, buffer_size=tc.shuffle_buffer_size, **kw)
        shuffled.set_epoch(0)
        return [r["window_start"] for r in shuffled]

    before = order()  # what training shuffled before b101082
    assert before != order(max_buffer_input_shards=1)  # why the default is kept
    # the default kept: no argument added to shuffle, so the call is order()'s, which gave `before` (shuffling the
    # same call again only took another 5-s pause)
    assert _buffer_input_shards(ds, manifest) == {}


def test_the_shards_folder_of_a_prepared_directory_points_to_the_directory(tiny_prepared):
    # `train --data prepared/data` said only "unsupported recording folder" (break test leftover)
    with pytest.raises(ValueError, match=r"holds the shards of the prepared directory .*prepared.*pass that "
                                         r"directory, the one holding manifest.json"):
        load_recording(tiny_prepared / "data")
    # a shard said "time: expected a column 'time', found columns ['window_start', ...]", the
    # manifest "unsupported recording format '.json'"
    shard = sorted((tiny_prepared / "data").glob("*.parquet"))[0]
    for part in (shard, tiny_prepared / "manifest.json"):
        with pytest.raises(ValueError, match=r"is part of the prepared directory .*prepared.*pass that "
                                             r"directory, the one holding manifest.json"):
            load_recording(part)
    # the directory itself where a recording is needed (push / generate / evaluate --data) said only
    # "unsupported recording folder ...: supported formats are ..."
    with pytest.raises(ValueError, match=r"is a prepared directory \(neuroformer prepare\).*needs the recording"):
        load_recording(tiny_prepared)


def test_a_model_directory_passed_as_data_is_named_as_such(tmp_path):
    # `train --data runs/a` (a model) listed the supported formats only (README walk finding)
    model = tmp_path / "run"
    nf.NeuroformerForPreTraining(nf.NeuroformerConfig(**TINY, vocab_size=8)).save_pretrained(model)
    with pytest.raises(ValueError, match=r"it is a model directory .*pass it as --model .*recording it was trained on "
                                         r"as --data"):
        load_recording(model)
    # weights saved in shards (model.safetensors.index.json, no model.safetensors; accepted as --model since
    # 5e598e6) were not known for a model: 'supported formats are ...'
    sharded = tmp_path / "sharded"
    nf.NeuroformerForPreTraining(nf.NeuroformerConfig(**TINY, vocab_size=8)).save_pretrained(sharded,
                                                                                             max_shard_size="20KB")
    assert (sharded / "model.safetensors.index.json").is_file() and not (sharded / "model.safetensors").exists()
    with pytest.raises(ValueError, match=r"it is a model directory .*pass it as --model"):
        load_recording(sharded)


def test_streamed_training_refuses_a_config_with_other_windows(tiny_prepared, tmp_path):
    from hf_neuroformer.training import TrainingConfig, train

    with pytest.raises(ValueError, match=r"config\.current_window.*prepare the windows again"):
        train(tiny_prepared, tmp_path / "m", nf.NeuroformerConfig(**{**TINY, "current_window": 0.05}),
              TrainingConfig(max_steps=1), progress=False)
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        train(tmp_path, tmp_path / "m2", None, TrainingConfig(max_steps=1), progress=False)



def test_a_config_file_for_prepared_windows_sets_only_the_fields_it_names(tiny_prepared, tmp_path, capsys):
    # 'neuroformer train --data PREPARED --config net.yaml' built the file's config on the defaults, so a
    # file of network fields only (or of a training: section only) differed from the prepared directory in
    # every window field it left out, and the run was refused with 'prepare the windows again'
    from hf_neuroformer import cli

    bad = tmp_path / "bad.yaml"
    bad.write_text("hidden_size: 48\ncurrent_window: 0.05\n")
    assert cli.main(["train", "--data", str(tiny_prepared), "--config", str(bad), "--output-dir",
                     str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    # a window field the file sets is refused, and it is the only difference (the others keep the directory's)
    assert "config.current_window" in err and "(all differences: {'current_window': (0.1, 0.05)})" in err, err
    assert not (tmp_path / "m").exists()
    from hf_neuroformer.training import config_over_prepared, load_yaml_config

    net = tmp_path / "net.yaml"
    net.write_text("hidden_size: 48\ntraining:\n  max_steps: 1\n")
    config, training, _, given = load_yaml_config(net, training_fields=True, config_fields=True)
    assert given == ("hidden_size",) and training.max_steps == 1
    merged = config_over_prepared(tiny_prepared, config, given).to_dict()
    stored = nf.NeuroformerConfig.from_pretrained(tiny_prepared).to_dict()
    assert merged.pop("hidden_size") == 48 and stored.pop("hidden_size") == TINY["hidden_size"]
    assert merged == stored

# --- what --overwrite may replace, and shards checked against the manifest (break test, findings 1, 2, 8, 11)

A2929 = "pynapple_A2929_headdirection/A2929-200711.nwb"


@pytest.fixture(scope="module")
def short_rec(shared_data):
    rec = load_recording(shared_data(A2929), epoch="wake")
    return rec.restrict(rec.support[0, 0], rec.support[0, 0] + 60.0)


def _files(folder):
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def test_overwrite_never_deletes_a_folder_prepare_did_not_write(shared_data, short_rec, tmp_path, monkeypatch, capsys):
    from hf_neuroformer.cli import main

    nwb = str(shared_data(A2929))
    sandbox = tmp_path / "sandbox"
    (sandbox / "keep").mkdir(parents=True)
    (sandbox / "keep" / "notes.txt").write_text("precious")
    model = sandbox / "model"  # what 'neuroformer train' leaves
    model.mkdir()
    for name in ("config.json", "model.safetensors", "vocab.json", "tokenizer_config.json", "metrics.json"):
        (model / name).write_text("{}")
    (sandbox / "afile").write_text("not a folder")
    monkeypatch.chdir(sandbox / "keep")
    before = _files(sandbox)
    # each refused up front (before the recording is loaded), in one line naming --output
    for output, why in ((".", "working directory"), ("..", "working directory"), (str(sandbox / "keep"), "working"),
                        (str(model), "holds a model"), (str(sandbox / "afile"), "not a folder")):
        assert main(["prepare", "--data", nwb, "--epoch", "wake", "--output", output, "--overwrite"]) == 2, output
        err = capsys.readouterr().err
        assert err.startswith("neuroformer prepare: error: --output:") and why in err and err.count("\n") == 1, err
    monkeypatch.chdir(sandbox)
    with pytest.raises(FileExistsError, match="output_dir: 'keep' is not an earlier output of 'neuroformer prepare'"):
        prepare_windows(short_rec, "keep", nf.NeuroformerConfig(**TINY), overwrite=True, progress=False)
    assert _files(sandbox) == before  # nothing deleted, no temporary folder left
    assert (sandbox / "afile").read_text() == "not a folder"


def test_overwrite_replaces_an_earlier_prepare_output_whole(short_rec, tmp_path):
    cfg = nf.NeuroformerConfig(**TINY)
    out = tmp_path / "prep"
    out.mkdir()  # an empty folder is filled (nothing in it to lose)
    prepare_windows(short_rec, out, cfg, num_shards=3, progress=False)
    three = _files(out)
    assert "data/train-00002-of-00003.parquet" in three
    with pytest.raises(FileExistsError, match=r"not empty.*overwrite=True to replace"):
        prepare_windows(short_rec, out, cfg, num_shards=2, progress=False)
    manifest = prepare_windows(short_rec, out, cfg, num_shards=2, overwrite=True, progress=False)
    assert _files(out) == [f.replace("of-00003", "of-00002") for f in three if "-00002-of-" not in f]
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert _files(tmp_path) == ["prep", *("prep/" + f for f in _files(out))]  # no old or temporary folder beside it
    # the dataset card 'push' writes beside the windows (hub.write_window_dataset, tagged hf_neuroformer) is part of
    # that output; a README.md of the user's (notes) and a Parquet file the manifest does not list (copied into data/)
    # are not, and were deleted with it
    from hf_neuroformer.windows import WINDOW_CARD_TAG

    (out / "README.md").write_text(f"---\nlicense: cc-by-4.0\ntags:\n- spikes\n- {WINDOW_CARD_TAG}\n---\n\n# windows\n")
    manifest = prepare_windows(short_rec, out, cfg, num_shards=2, overwrite=True, progress=False)
    assert not (out / "README.md").exists()
    for mine in ("README.md", "data/extra-00000-of-00001.parquet"):
        (out / mine).write_bytes((out / "data/test-00000-of-00002.parquet").read_bytes() if mine.endswith(".parquet")
                                 else b"---\nlicense: cc-by-4.0\n---\nmy notes on these windows\n")
        kept = (out / mine).read_bytes()
        with pytest.raises(FileExistsError, match=rf"does not write \('{re.escape(mine)}'\)"):
            prepare_windows(short_rec, out, cfg, num_shards=2, overwrite=True, progress=False)
        assert (out / mine).read_bytes() == kept
        assert json.loads((out / "manifest.json").read_text()) == manifest
        (out / mine).unlink()
    # a failure while writing the new windows leaves the earlier output as it was
    stranger = NeuroformerTokenizer.from_config(cfg)  # holds none of the recording's units
    with pytest.raises(ValueError):
        prepare_windows(short_rec, out, cfg, tokenizer=stranger, num_shards=1, overwrite=True, progress=False)
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert _files(tmp_path) == ["prep", *("prep/" + f for f in _files(out))]
    # a file prepare does not write is not deleted by --overwrite
    (out / "data" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"does not write \('data/notes.txt'\)"):
        prepare_windows(short_rec, out, cfg, overwrite=True, progress=False)
    assert (out / "data" / "notes.txt").read_text() == "mine"
    # a failure into a new a/b/prep removes the folders it made (a/b was left behind, empty)
    with pytest.raises(ValueError):
        prepare_windows(short_rec, tmp_path / "a" / "b" / "prep", cfg, tokenizer=stranger, progress=False)
    assert not (tmp_path / "a").exists()


def test_num_shards_checked_before_loading(tmp_path, capsys):
    from hf_neuroformer.cli import main

    assert main(["prepare", "--data", str(tmp_path / "absent.nwb"), "--output", str(tmp_path / "p"),
                 "--num-shards", "0"]) == 2
    assert "--num-shards: expected an integer >= 1, got 0" in capsys.readouterr().err
    with pytest.raises(ValueError, match="num_shards"):
        prepare_windows(None, tmp_path / "p", num_shards=True)
    assert not (tmp_path / "p").exists()


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_a_replaced_shard_is_refused(tiny_prepared, tmp_path, capsys):
    from hf_neuroformer.cli import main
    from hf_neuroformer.training import TrainingConfig, train

    manifest = json.loads((tiny_prepared / "manifest.json").read_text())
    rows = {s: [sh["n_rows"] for sh in manifest["splits"][s]["shards"]] for s in SPLITS}
    # a test shard copied over a training shard (the break test's case): other rows
    bad = _copy(tiny_prepared, tmp_path / "swapped")
    (bad / "data/test-00000-of-00002.parquet").replace(bad / "data/train-00001-of-00002.parquet")
    (bad / "data/test-00000-of-00002.parquet").write_bytes(
        (tiny_prepared / "data/test-00000-of-00002.parquet").read_bytes())
    want = (rf"recording \(--data\): shard '.*train-00001-of-00002.parquet' holds {rows['test'][0]} rows, "
            rf"the manifest lists {rows['train'][1]}")
    with pytest.raises(ValueError, match=want):
        train(bad, tmp_path / "m", None, TrainingConfig(max_steps=1), progress=False)
    assert not (tmp_path / "m").exists()
    with pytest.raises(ValueError, match="train-00001-of-00002.parquet' holds"):
        load_prepared(bad, "train")
    from hf_neuroformer.windows import verify_prepared

    assert verify_prepared(tiny_prepared) == {s: sum(r) for s, r in rows.items()}
    # the same rows, other windows: the sha256 tells them apart; a manifest without sha256 checks rows only
    same = _copy(tiny_prepared, tmp_path / "same_rows")
    t0 = same / "data/train-00000-of-00002.parquet"
    t1 = same / "data/train-00001-of-00002.parquet"
    assert rows["train"][0] == rows["train"][1]
    t0.write_bytes(t1.read_bytes())
    with pytest.raises(ValueError, match=r"train-00000-of-00002.parquet' has sha256 [0-9a-f]{64}, the manifest lists"):
        verify_prepared(same, ["train"])
    old = json.loads((same / "manifest.json").read_text())
    for entry in old["splits"].values():
        for shard in entry["shards"]:
            del shard["sha256"]
    (same / "manifest.json").write_text(json.dumps(old))
    assert verify_prepared(same)["train"] == sum(rows["train"])
    # a missing shard names the CLI flag
    gone = _copy(tiny_prepared, tmp_path / "gone")
    (gone / "data/validation-00001-of-00002.parquet").unlink()
    assert main(["train", "--data", str(gone), "--output-dir", str(tmp_path / "m2"), "--max-steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "--data" in err and "validation-00001-of-00002.parquet" in err and "--prepared" not in err


@pytest.mark.parametrize("damage", ["config.json", "vocab.json", "tokenizer_config.json", "splits.json",
                                    "bad manifest.json", "bad splits.json", "bad config.json"])
def test_a_prepared_directory_missing_or_damaging_a_file_is_refused_naming_it(tiny_prepared, tmp_path, damage,
                                                                             capsys):
    # a prepared folder without its config.json trained a default-config model until the first batch
    # failed with "input_ids: expected ids in [0, 3)"; without vocab.json it trained on an empty unit
    # vocabulary and wrote NaN baselines; a cut manifest.json or splits.json gave a bare
    # JSONDecodeError / "[Errno 2]" that named no file of the folder
    from hf_neuroformer.cli import main

    bad = _copy(tiny_prepared, tmp_path / "bad")
    name = damage.split()[-1]
    if damage.startswith("bad "):
        (bad / name).write_text('{"format": ')
    else:
        (bad / name).unlink()
    out = tmp_path / "m"
    assert main(["train", "--data", str(bad), "--output-dir", str(out), "--max-steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("neuroformer train: error: --data: "), err  # it said 'recording (--data): '
    assert repr(str(bad / name)) in err and "neuroformer prepare" in err, err
    assert ("missing" in err) != damage.startswith("bad "), err
    assert not out.exists()


def test_a_manifest_lacking_an_entry_prepare_writes_is_refused_naming_it(tiny_prepared, tmp_path, capsys):
    # a manifest.json without its 'splits', a shard's 'n_rows' or a split's count failed with the bare key as the
    # whole message ("neuroformer train: error: splits"); without 'recording', only after the whole training run
    from hf_neuroformer.cli import main

    def drop(m, *keys):
        *path, last = keys
        for k in path:
            m = m[k]
        del m[last]

    for keys, said in ((("splits",), "no 'splits' mapping"), (("recording",), "no 'recording' text"),
                       (("splits", "validation", "shards", 1, "n_rows"), "no whole number 'n_rows' for shard 1 of "
                        "split 'validation'"),
                       (("splits", "test", "n_truncated_past_spikes"), "no whole number 'n_truncated_past_spikes' "
                        "for split 'test'")):
        bad = _copy(tiny_prepared, tmp_path / "-".join(map(str, keys)))
        manifest = json.loads((bad / "manifest.json").read_text())
        drop(manifest, *keys)
        (bad / "manifest.json").write_text(json.dumps(manifest))
        out = tmp_path / f"m-{bad.name}"
        assert main(["train", "--data", str(bad), "--output-dir", str(out), "--max-steps", "1"]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith(f"neuroformer train: error: --data: manifest.json of {str(bad)!r} has {said}"), err
        assert "prepare the windows again" in err, err
        assert not out.exists()
        with pytest.raises(ValueError, match=re.escape(said)):
            load_prepared(bad, "train")


def test_prepare_says_which_setting_cut_spikes_and_how_to_find_one_that_does_not(shared_data, tmp_path, capsys):
    # 'prepare --data allen_vcn_gratings' printed only "(99205 truncated)" beside the train split:
    # no setting named, the past windows' cut spikes not counted, and no way forward, although the
    # prepared windows fix the cut for every training run that streams them ('train' on the
    # recording names max_window_length and points to 'neuroformer inspect')
    from hf_neuroformer.cli import main

    cfg = tmp_path / "small.yaml"
    cfg.write_text("current_window: 0.1\npast_window: 0.3\nmax_window_length: 4\nmax_past_length: 6\n"
                   "split_block_length: 5.0\n")
    data = str(shared_data(A2929))
    assert main(["prepare", "--data", data, "--epoch", "wake", "--config", str(cfg),
                 "--output", str(tmp_path / "p")]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    train = manifest["splits"]["train"]
    assert train["n_truncated_spikes"] > 0 and train["n_truncated_past_spikes"] > 0
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("train "))
    assert (f"{train['n_truncated_spikes']} truncated" in line
            and f"{train['n_truncated_past_spikes']} past" in line), line
    # and the windows they were cut from (only 'inspect' gave them), counted from the shards' columns
    for split, entry in manifest["splits"].items():
        shards = load_prepared(tmp_path / "p", split, streaming=False)
        cut = {k: int((shards.to_pandas()[k] > 0).sum()) for k in ("n_truncated", "n_past_truncated")}
        assert (entry["n_truncated_windows"], entry["n_truncated_past_windows"]) == (
            cut["n_truncated"], cut["n_past_truncated"]), (split, entry, cut)
    assert 0 < train["n_truncated_windows"] < train["n_windows"], train
    assert (f"{train['n_truncated_spikes']} truncated in {train['n_truncated_windows']} windows, "
            f"{train['n_truncated_past_spikes']} past-window spikes left out of {train['n_truncated_past_windows']} "
            "windows") in line, line
    assert "max_window_length=4" in out and "max_past_length=6" in out, out
    # more past-window spikes "left out" than the split holds: each is counted once per window reading it
    assert "past-window spikes counted once per window that reads them" in out, out
    assert f"neuroformer inspect --data {data} --epoch wake --config {cfg}" in out, out
    # nothing cut: no note
    assert main(["prepare", "--data", data, "--epoch", "wake", "--output", str(tmp_path / "q")]) == 0
    assert "neuroformer inspect" not in capsys.readouterr().out


def test_prepare_says_the_training_section_of_its_config_is_not_kept(short_rec, tmp_path, recwarn):
    # every shipped config has a training: section; 'prepare --config FILE' kept the file's window and network
    # fields in the prepared directory but dropped its training: section without a word, so 'train --data OUT'
    # (no --config) trained with the default training settings
    from hf_neuroformer.cli import main
    from hf_neuroformer.io import write_npz

    data = write_npz(short_rec, tmp_path / "short.npz")
    fields = "current_window: 0.1\npast_window: 0.3\nsplit_block_length: 5.0\n"
    with_training, without = tmp_path / "with training.yaml", tmp_path / "without.yaml"
    with_training.write_text(fields + "training:\n  max_steps: 7\n  batch_size: 8\n")
    without.write_text(fields)
    assert main(["prepare", "--data", str(data), "--config", str(with_training), "--output", str(tmp_path / "p")]) == 0
    said = [str(w.message) for w in recwarn if "training: section" in str(w.message)]
    assert len(said) == 1 and "(max_steps, batch_size)" in said[0], said
    assert (f'"neuroformer train --data {shlex.quote(str(tmp_path / "p"))} --config '
            f'{shlex.quote(str(with_training))} ..."') in said[0], said
    recwarn.clear()
    assert main(["prepare", "--data", str(data), "--config", str(without), "--output", str(tmp_path / "q")]) == 0
    assert not [w for w in recwarn if "training: section" in str(w.message)]


def test_prepare_of_windows_without_past_spikes_by_design_says_so_as_train_does(short_rec, tmp_path, capsys):
    # max_past_length 1 (ablate's state-only variant: the past window holds only its BOS) is no budget to raise;
    # train says so, but prepare told to raise it ("spikes were cut from windows longer than max_past_length=1
    # tokens ... set them in a --config and prepare again")
    from hf_neuroformer.cli import main
    from hf_neuroformer.io import write_npz

    data = write_npz(short_rec, tmp_path / "short.npz")
    cfg = tmp_path / "state-only.yaml"
    cfg.write_text("current_window: 0.1\npast_window: 0.3\nsplit_block_length: 5.0\nmax_past_length: 1\n")
    assert main(["prepare", "--data", str(data), "--config", str(cfg), "--output", str(tmp_path / "p")]) == 0
    out = capsys.readouterr().out
    n_past = sum(e["n_truncated_past_spikes"] for e in json.loads((tmp_path / "p" / "manifest.json").read_text())
                 ["splits"].values())
    assert n_past > 0
    assert (f"max_past_length=1: the past windows hold only their BOS token, no past spike (by design, as ablate's "
            f"state-only variant; {n_past} past-window spikes not read)") in out, out
    assert "max_past_length=1 tokens" not in out and "neuroformer inspect" not in out, out


def test_token_baselines_of_a_directory_prepared_with_other_sessions_units_are_the_recordings(short_rec, tmp_path):
    # a tokenizer holding other sessions' units too (a multi-session vocabulary) made streamed training spread
    # the baselines' Laplace mass over them: test/markov_id_nll 2.30 nats where training in memory, on the same
    # windows, scores 1.70 (the model then looked better against its baselines than it is)
    from hf_neuroformer.metrics.token_baselines import TokenBaselines
    from hf_neuroformer.training import TrainingConfig, train

    cfg = nf.NeuroformerConfig(**TINY)
    tok = NeuroformerTokenizer.from_config(cfg)
    tok.add_units(short_rec)
    tok.add_units([f"other/u{i}" for i in range(300)])
    manifest = prepare_windows(short_rec, tmp_path / "p", cfg, tokenizer=tok, progress=False)
    assert manifest["unit_token_ids"] == sorted(tok.unit_token_ids(short_rec).tolist())
    metrics = train(tmp_path / "p", tmp_path / "m", None, TrainingConfig(max_steps=1, batch_size=8), progress=False)
    base = TokenBaselines(len(tok), tok.unit_token_ids(short_rec), cfg.num_dt_bins)
    expected = base.fit(load_prepared(tmp_path / "p", "train")).score(load_prepared(tmp_path / "p", "test"))
    for key in ("unigram_id_nll", "markov_id_nll", "marginal_dt_nll", "markov_dt_nll"):
        assert metrics[f"test/{key}"] == pytest.approx(expected[key], rel=1e-12), key


def test_a_prepared_directory_without_its_manifest_is_named_as_one(tiny_prepared, tmp_path, capsys):
    # with manifest.json gone, 'train --data PREP' listed every recording format the readers know
    # ("unsupported recording folder ...: supported formats are .nwb ...; .npz ...; ..."), not what
    # the folder was nor what it lacked
    from hf_neuroformer.cli import main

    bad = _copy(tiny_prepared, tmp_path / "bad")
    (bad / "manifest.json").unlink()
    assert main(["train", "--data", str(bad), "--output-dir", str(tmp_path / "m"), "--max-steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "supported formats" not in err, err
    assert "manifest.json" in err and "prepare the windows again (neuroformer prepare)" in err, err
    assert not (tmp_path / "m").exists()
    # the shards alone (a copy that took data/ first, or a prepare killed before it wrote its JSON files, which
    # come after the shards): every format was listed again, config.json being required for the hint
    for name in ("config.json", "vocab.json", "tokenizer_config.json", "splits.json"):
        (bad / name).unlink()
    assert main(["train", "--data", str(bad), "--output-dir", str(tmp_path / "m"), "--max-steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "supported formats" not in err, err
    assert "without manifest.json, config.json, vocab.json, tokenizer_config.json, splits.json" in err, err
    assert "prepare the windows again (neuroformer prepare)" in err, err
    # a folder of other Parquet files in data/ is no prepared directory
    for shard in (bad / "data").iterdir():
        shard.rename(shard.with_name("spikes-" + shard.name.replace("-of-", "_")))
    assert main(["train", "--data", str(bad), "--output-dir", str(tmp_path / "m"), "--max-steps", "1"]) == 2
    assert "supported formats" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_prepare_refuses_a_config_with_modalities_before_reading_the_recording(tmp_path, capsys):
    # the refusal came only after the whole recording was read (its 'data:' line printed first)
    from hf_neuroformer.cli import main

    cfg = tmp_path / "hd.yaml"
    cfg.write_text("modalities:\n  - {name: hd, source: 'behaviour:ry', kind: continuous, normalization: circular, "
                   "window: [-0.1, 0.1], bin_size: 0.02}\n")
    assert main(["prepare", "--config", str(cfg), "--output", str(tmp_path / "p")]) == 2
    out, err = capsys.readouterr()
    assert "config.modalities: prepared (streamed) windows do not carry modality inputs" in err, err
    assert "[neuroformer] data:" not in out, out
    assert not (tmp_path / "p").exists()


def test_prepares_inspect_command_is_quoted_for_the_shell(shared_data, tmp_path, capsys):
    # the note's 'neuroformer inspect --data ...' command was built with the paths as they are: a
    # recording under a folder with a space ('.../my data/A2929.nwb') gave a command that, pasted
    # into a shell, passed '.../my' as --data and 'data/A2929.nwb' as a stray argument
    import shlex

    from hf_neuroformer.cli import main

    spaced = tmp_path / "my data"
    spaced.mkdir()
    (spaced / "A2929.nwb").symlink_to(shared_data(A2929))
    cfg = spaced / "small cfg.yaml"
    cfg.write_text("current_window: 0.1\npast_window: 0.3\nmax_window_length: 4\nmax_past_length: 6\n"
                   "split_block_length: 5.0\n")
    assert main(["prepare", "--data", str(spaced / "A2929.nwb"), "--epoch", "wake", "--config", str(cfg),
                 "--output", str(tmp_path / "p")]) == 0
    note = next(ln for ln in capsys.readouterr().out.splitlines() if "neuroformer inspect" in ln)
    command = note[note.index("neuroformer inspect"):].split('"', 1)[0]
    assert shlex.split(command) == ["neuroformer", "inspect", "--data", str(spaced / "A2929.nwb"), "--epoch", "wake",
                                    "--config", str(cfg)], note


def test_the_prepare_bar_counts_windows_not_shards(short_rec, tmp_path, capsys, monkeypatch):
    """The bar of each split counted Parquet shards, so with the default single shard it stood at 0/1
    for the whole split; it now counts windows, moved every PREPARE_CHUNK_WINDOWS (set to 50 here,
    so the 60-s recording's train split is tokenized in several chunks, and the shards still hold
    the in-memory windows)."""
    import hf_neuroformer.windows as windows

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setattr(windows, "PREPARE_CHUNK_WINDOWS", 50)
    cfg = nf.NeuroformerConfig(max_past_length=128)
    manifest = prepare_windows(short_rec, tmp_path / "p", cfg, progress=True)
    err = capsys.readouterr().err
    for split in SPLITS:
        n = manifest["splits"][split]["n_windows"]
        assert re.search(rf"prepare {split}: 100%\|.*\| {n}/{n} \[.*window", err), err[-2000:]
    assert manifest["splits"]["train"]["n_windows"] > 100
    tok = NeuroformerTokenizer.from_pretrained(tmp_path / "p")
    in_memory, _ = build_window_datasets(short_rec, tok, cfg, SplitPlan.from_dict(
        json.loads((tmp_path / "p" / "splits.json").read_text())))
    for split in SPLITS:
        pd.testing.assert_frame_equal(load_prepared(tmp_path / "p", split, streaming=False).to_pandas(),
                                      in_memory[split].to_pandas())


def test_a_tokenizer_with_other_windows_than_the_config_is_refused(tmp_path):
    # the windows were placed by the config and cut by the tokenizer: a tokenizer of 0.05-s windows beside a
    # 0.1-s config wrote shards holding half of each window (995 of 1878 train spikes), while config.json and
    # the manifest's spikes outside windows (39) described 0.1-s windows
    import json

    import numpy as np

    from hf_neuroformer.io import from_arrays
    from hf_neuroformer.training import train

    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0.0, 40.0, 2000))
    rec = from_arrays(t, rng.integers(0, 3, t.size), unit_names=["a", "b", "c"], time_domain=(0.0, 40.0),
                      session="s")
    cfg = nf.NeuroformerConfig(**TINY)
    other = NeuroformerTokenizer.from_config(nf.NeuroformerConfig(**{**TINY, "current_window": 0.05}))
    other.add_units(rec)
    msg = r"tokenizer\.current_window = 0\.05, but config\.current_window = 0\.1"
    with pytest.raises(ValueError, match=msg):
        prepare_windows(rec, tmp_path / "p", cfg, other, progress=False)
    assert not (tmp_path / "p").exists()
    with pytest.raises(ValueError, match=msg):
        build_window_datasets(rec, other, cfg)
    # no tokenizer at all: was "tokenizer.current_window = None, but config.current_window = 0.1"
    with pytest.raises(TypeError, match=r"^tokenizer: expected a NeuroformerTokenizer, got NoneType; make it with "
                                        r"NeuroformerTokenizer\.from_config"):
        build_window_datasets(rec, None, cfg)
    # a directory whose tokenizer is not its config's (prepared so before this check) is refused by train
    prepare_windows(rec, tmp_path / "q", cfg, progress=False)
    tok_cfg = tmp_path / "q" / "tokenizer_config.json"
    tok_cfg.write_text(json.dumps({**json.loads(tok_cfg.read_text()), "current_window": 0.05}))
    with pytest.raises(ValueError, match=msg + r".*prepare the windows again"):
        train(tmp_path / "q", tmp_path / "m", None, progress=False)
    assert not (tmp_path / "m").exists()


def test_a_config_bringing_another_vocab_size_prepares_and_trains_a_model_of_its_tokenizer(short_rec, tmp_path):
    """Break test: a config carrying another model's vocab_size (50 for this recording's 18 tokens)
    was kept by prepare (max of the two) and by streamed training, so the trained model refused its
    own tokenizer when loaded ('not the model's tokenizer'); in-memory training sets the tokenizer's."""
    import shutil

    from transformers import AutoProcessor

    from hf_neuroformer.training import TrainingConfig, train

    prepared = tmp_path / "prepared"
    prepare_windows(short_rec, prepared, nf.NeuroformerConfig(**TINY, vocab_size=50), progress=False)
    n_tokens = len(json.loads((prepared / "vocab.json").read_text()))
    assert json.loads((prepared / "config.json").read_text())["vocab_size"] == n_tokens < 50
    # a directory prepared before: its config.json says 50; training takes the tokenizer's size
    older = tmp_path / "older"
    shutil.copytree(prepared, older)
    cfg = json.loads((older / "config.json").read_text())
    (older / "config.json").write_text(json.dumps({**cfg, "vocab_size": 50}))
    train(older, tmp_path / "m", None, TrainingConfig(max_steps=1, batch_size=8), progress=False)
    processor = AutoProcessor.from_pretrained(tmp_path / "m")
    assert len(processor.tokenizer) == nf.NeuroformerConfig.from_pretrained(tmp_path / "m").vocab_size == n_tokens


def test_a_split_without_windows_loads_from_the_prepared_directory_and_the_dataset_card(tmp_path):
    """Break test: with split_fractions (0.8, 0.2, 0) the test split has no window and its one shard
    no row. load_prepared(streaming=False) of it raised datasets' 'Instruction "test" corresponds to
    no data!', and load_dataset of the dataset repository 'neuroformer push' writes (its card maps
    every split's shards) gave an empty DatasetDict: no train or validation split either."""
    from datasets import load_dataset

    from hf_neuroformer.hub import write_window_dataset
    from hf_neuroformer.training import TrainingConfig, train

    rec = nf.simulate_coupled_network(n_units=5, duration=40.0, seed=7).recording
    cfg = nf.NeuroformerConfig(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=24,
                               max_past_length=48, hidden_size=16, num_attention_heads=2, intermediate_size=32,
                               split_block_length=5.0, split_fractions=(0.8, 0.2, 0.0))
    train(rec, tmp_path / "m", cfg, TrainingConfig(max_steps=1, batch_size=8), progress=False)
    counts = write_window_dataset(tmp_path / "m", rec, tmp_path / "ds", num_shards=2, repo_id="lab/windows")
    assert counts["test"] == 0 and counts["train"] > 0 and counts["validation"] > 0
    empty = load_prepared(tmp_path / "ds", "test", streaming=False)
    assert len(empty) == 0 and set(empty.column_names) == set(load_prepared(tmp_path / "ds", "train").column_names)
    assert list(load_prepared(tmp_path / "ds", "test")) == []  # streamed: an empty stream, as before
    windows = load_dataset(str(tmp_path / "ds"))
    assert {s: len(windows[s]) for s in windows} == {"train": counts["train"], "validation": counts["validation"]}
    assert "test (no windows) is not a split of the dataset" in (tmp_path / "ds" / "README.md").read_text()


def test_prepare_names_the_hidden_folder_a_killed_run_left(short_rec, tmp_path):
    """Break test: a prepare killed while writing (the out-of-memory killer; Ctrl-C cleans up) left
    its hidden '.prepared.tmp-*' folder of shards beside the output, and the next prepare into the
    same output said nothing: the shards of a whole recording stayed invisible to 'ls'. It is named
    (with its size), not deleted: it may belong to a run still writing."""
    dead = tmp_path / ".prepared.tmp-k1lled"
    (dead / "data").mkdir(parents=True)
    (dead / "data" / "train-00000-of-00001.parquet").write_bytes(b"\0" * 2 ** 20)
    other = tmp_path / ".another.tmp-x"  # another output's: not this one's
    other.mkdir()
    cfg = nf.NeuroformerConfig(**TINY)
    with pytest.warns(UserWarning, match=r"1 folder left by an interrupted 'neuroformer prepare' into "
                                         r"'prepared' \(\.prepared\.tmp-k1lled: 1\.0 MiB\)") as record:
        prepare_windows(short_rec, tmp_path / "prepared", cfg, progress=False)
    assert not any(".another" in str(w.message) for w in record)
    assert dead.is_dir() and other.is_dir()


def test_streamed_training_stops_when_its_prepared_directory_is_replaced(tmp_path):
    """Break test: datasets opens the shards again at every epoch and evaluation, so a 'prepare
    --overwrite' into the directory during a run (same shard names, another recording's windows)
    had the following steps train on the new windows and the model claim the old ones, without a
    word. The run now stops at the next step, naming the shard."""
    from hf_neuroformer.training import TrainingConfig, train

    cfg = dict(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=24, max_past_length=48,
               hidden_size=16, num_attention_heads=2, intermediate_size=32, split_block_length=5.0)
    prepared = tmp_path / "prepared"
    rec = nf.simulate_coupled_network(n_units=5, duration=40.0, seed=7).recording
    other = nf.simulate_coupled_network(n_units=5, duration=40.0, seed=8).recording
    prepare_windows(rec, prepared, nf.NeuroformerConfig(**cfg), num_shards=2, progress=False)
    steps = []

    def replace_after_step_1(step, loss):
        steps.append(step)
        if step == 1:
            prepare_windows(other, prepared, nf.NeuroformerConfig(**cfg), num_shards=2, progress=False,
                            overwrite=True)

    with pytest.raises(RuntimeError, match=r"shard .*train-00000-of-00002\.parquet' of the prepared directory .* was "
                                           r"replaced while the run read it"):
        train(prepared, tmp_path / "m", None, TrainingConfig(max_steps=4, batch_size=64), progress=False,
              on_step_end=replace_after_step_1)
    assert steps == [1] and not (tmp_path / "m" / "model.safetensors").exists()
    # the same shards again (copied back, touched): identical content, the run goes on
    prepare_windows(rec, prepared, nf.NeuroformerConfig(**cfg), num_shards=2, progress=False, overwrite=True)
    kept = {p.name: p.read_bytes() for p in (prepared / "data").iterdir()}

    def rewrite_after_step_1(step, loss):
        if step == 1:
            for name, data in kept.items():
                (prepared / "data" / name).unlink()
                (prepared / "data" / name).write_bytes(data)

    assert train(prepared, tmp_path / "m2", None, TrainingConfig(max_steps=3, batch_size=64), progress=False,
                 on_step_end=rewrite_after_step_1)["total_steps"] == 3


def test_the_window_dataset_card_tags_a_million_windows_and_more_by_their_size():
    """Break test: the dataset card's size_categories stopped at '100K<n<1M', so 12 million windows
    (a day of recording at 10-ms strides) were tagged as fewer than a million."""
    from hf_neuroformer.hub import dataset_size_category

    assert [dataset_size_category(n) for n in (0, 999, 1000, 99_999, 100_000, 999_999)] == [
        "n<1K", "n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "100K<n<1M"]
    assert [dataset_size_category(n) for n in (1_000_000, 12_000_000, 10 ** 8, 10 ** 12)] == [
        "1M<n<10M", "10M<n<100M", "100M<n<1B", "n>1T"]


def test_a_clone_of_the_window_dataset_without_git_lfs_is_named_as_such(tiny_prepared, tmp_path, capsys):
    """Break test: the dataset card says a clone of the repository is a prepared directory, but a
    clone without Git LFS holds pointer files in place of the shards, and 'neuroformer train --data
    clone' answered 'not a readable Parquet file ... prepare the windows again' (there is no
    recording to prepare from: the fix is 'git lfs pull')."""
    import shutil

    from hf_neuroformer.cli import main

    clone = tmp_path / "clone"
    shutil.copytree(tiny_prepared, clone)
    for shard in (clone / "data").iterdir():
        size, digest = shard.stat().st_size, hashlib.sha256(shard.read_bytes()).hexdigest()
        shard.write_text(f"version https://git-lfs.github.com/spec/v1\noid sha256:{digest}\nsize {size}\n")
    assert main(["train", "--data", str(clone), "--output-dir", str(tmp_path / "m"), "--max-steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "is a Git LFS pointer, not the shard" in err and "git lfs pull" in err


def test_file_sha256_matches_hashlib_over_block_boundaries(tmp_path):
    # replaces hashlib.file_digest (Python 3.11+; setup.py allows 3.10) in the shard and weights checks
    import os

    from hf_neuroformer.windows import file_sha256

    for n in (0, 1, (1 << 20) - 1, 1 << 20, (1 << 20) + 7):
        data = os.urandom(n)
        (tmp_path / "f.bin").write_bytes(data)
        assert file_sha256(tmp_path / "f.bin") == hashlib.sha256(data).hexdigest()
    # several files: one digest over their bytes in order (a model's weight shards)
    (tmp_path / "g.bin").write_bytes(b"second")
    assert file_sha256(tmp_path / "f.bin", tmp_path / "g.bin") == hashlib.sha256(data + b"second").hexdigest()


def test_shards_replaced_with_the_same_modification_times_are_read_not_the_old_cache(tmp_path, shared_data,
                                                                                     monkeypatch):
    """load_prepared(streaming=False) went through datasets' Arrow cache, keyed by the shards' paths
    and modification times: shards of another recording copied over a prepared directory with the
    old times (cp -p, rsync -a, tar; or two prepares within one tick of a coarse-mtime file system)
    passed verify_prepared (their manifest came along) and the OLD windows were returned from the
    cache. Real spikes: A2929 wake, and its first 5 units."""
    import os
    import shutil

    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    rec = load_recording(shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"), epoch="wake")
    cfg = dict(current_window=0.1, past_window=0.2, dt_resolution=0.01, split_block_length=30.0)
    x, y = tmp_path / "x", tmp_path / "y"
    prepare_windows(rec, x, nf.NeuroformerConfig(**cfg), progress=False)
    prepare_windows(rec.select_units(range(5)), y, nf.NeuroformerConfig(**cfg), progress=False)
    old = load_prepared(x, "test", streaming=False)  # converted into the cache
    new = load_prepared(y, "test", streaming=False)
    assert list(old["n_spikes"]) != list(new["n_spikes"])  # the premise: other windows
    times = {p.name: os.stat(p) for p in (x / "data").iterdir()}
    for p in y.rglob("*"):
        if p.is_file():
            shutil.copyfile(p, x / p.relative_to(y))
    for name, st in times.items():  # the old modification times, as a copy that keeps them gives
        os.utime(x / "data" / name, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = load_prepared(x, "test", streaming=False)
    assert list(again["n_spikes"]) == list(new["n_spikes"]) and list(again["input_ids"]) == list(new["input_ids"])


def test_a_second_load_leaves_the_datasets_of_the_first_readable(tmp_path, shared_data, monkeypatch):
    """load_prepared(streaming=False) converted the shards again at every call (force_redownload),
    which deletes the cache folder of the previous conversion: a Dataset of an earlier call and
    its .map cache lost their files, and pickling them (DataLoader workers under spawn, map with
    num_proc) failed with FileNotFoundError. Real spikes: A2929 wake."""
    import pickle

    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    rec = load_recording(shared_data("pynapple_A2929_headdirection/A2929-200711.nwb"), epoch="wake")
    out = tmp_path / "prep"
    prepare_windows(rec, out, nf.NeuroformerConfig(**TINY), progress=False)
    first = load_prepared(out, "train", streaming=False).map(lambda r: {"twice": 2 * r["n_spikes"]})
    second = load_prepared(out, "train", streaming=False)
    again = pickle.loads(pickle.dumps(first))
    assert list(again["twice"]) == [2 * n for n in second["n_spikes"]]


@pytest.mark.parametrize("name, sibling", [("prep[1]", None), ("prep*", "prep1"), ("prep?", "prep1")])
def test_a_prepared_directory_whose_name_holds_glob_characters_streams_all_its_windows(tiny_prepared, tmp_path, name,
                                                                                       sibling):
    """datasets reads each data_files path as a glob pattern: in a folder named 'prep[1]' the shard
    paths matched no file, and with the features given (as load_prepared gives them) the streamed
    split held 0 windows without a word, so 'neuroformer train --data prep[1]' took 0 steps and
    saved the untrained model with NaN metrics (exit 0); streaming=False failed with 'Instruction
    "train" corresponds to no data!'. In a folder 'prep*' or 'prep?' the shards of a sibling
    prepared folder ('prep1' here) were read too, each window twice. The paths are now escaped."""
    import shutil

    d = tmp_path / name
    shutil.copytree(tiny_prepared, d)
    if sibling:  # a prepared folder that the name also matches as a pattern
        shutil.copytree(tiny_prepared, tmp_path / sibling)
    expected = [r["window_start"] for r in load_prepared(tiny_prepared, "validation")]
    assert [r["window_start"] for r in load_prepared(d, "validation")] == expected
    assert load_prepared(d, "validation", streaming=False)["window_start"] == expected


def test_a_prepared_directory_given_relative_to_a_working_directory_with_glob_characters_loads(tiny_prepared,
                                                                                                tmp_path, monkeypatch):
    """The shard paths of a prepared folder given relative to a working directory named 'runs[2]':
    datasets joined them to that directory unescaped and found no shard (FileNotFoundError)."""
    import shutil

    cwd = tmp_path / "runs[2]"
    shutil.copytree(tiny_prepared, cwd / "prep")
    monkeypatch.chdir(cwd)
    expected = [r["window_start"] for r in load_prepared(tiny_prepared, "validation")]
    assert [r["window_start"] for r in load_prepared("prep", "validation")] == expected


def test_a_prepared_folder_whose_path_holds_a_double_colon_is_refused_naming_it(tiny_prepared, tmp_path, capsys):
    """datasets reads '::' in a path as a chained URL: 'neuroformer prepare --output p::x' tokenized a
    whole split and then failed with "No such file or directory: '.p::x.tmp-.../data/train-...'", and
    training from such a folder called its shards "not a readable Parquet file; prepare the windows
    again", which could not help. Both now name the '::' first (prepare before reading the recording)."""
    import shutil

    from hf_neuroformer import cli
    from hf_neuroformer.training import train

    code = cli.main(["prepare", "--data", str(tmp_path / "absent.nwb"), "--output", str(tmp_path / "p::x")])
    err = capsys.readouterr().err
    assert code == 2 and re.search(r"--output: .*p::x' holds '::' in its path, which datasets reads as a chained URL",
                                   err), err
    assert not any(tmp_path.iterdir())
    copy = tmp_path / "q::x"
    shutil.copytree(tiny_prepared, copy)
    with pytest.raises(ValueError, match=r"^recording \(--data\): .*q::x' holds '::' in its path"):
        train(copy, tmp_path / "m", progress=False)
    with pytest.raises(ValueError, match=r"^prepared_dir: .*q::x' holds '::'"):
        load_prepared(copy, "train")


@pytest.mark.parametrize("outside", ["../outside.parquet", "/tmp/outside.parquet", "data/../../outside.parquet"])
def test_a_manifest_listing_a_shard_outside_the_folder_is_refused(tiny_prepared, tmp_path, outside):
    """verify_prepared / load_prepared followed a manifest shard path out of the prepared folder
    ("../other.parquet", an absolute path): windows from elsewhere were checked, trained on and
    pushed as this folder's. Such a path is refused, naming the split and the path."""
    import json
    import shutil

    from hf_neuroformer.windows import load_prepared, verify_prepared

    bad = _copy(tiny_prepared, tmp_path / "bad")
    manifest = json.loads((bad / "manifest.json").read_text())
    first = manifest["splits"]["train"]["shards"][0]
    target = (bad / outside).resolve() if not outside.startswith("/") else tmp_path / "abs.parquet"
    shutil.copy(bad / first["path"], target)  # a whole, matching shard: only its place is wrong
    first["path"] = outside if not outside.startswith("/") else str(target)
    (bad / "manifest.json").write_text(json.dumps(manifest))
    for call in (lambda: verify_prepared(bad), lambda: load_prepared(bad, "train", streaming=False)):
        with pytest.raises(ValueError, match=r"lists a shard of split 'train' at .*expected a path inside the prepared"):
            call()


def test_the_streamed_shuffle_is_local_and_the_readme_says_so(tiny_prepared):
    """Training shuffles streamed windows in a bounded buffer filled from one shard at a time, read
    in time order, so an epoch's first windows come from the start of the recording (its first
    buffer x shards train windows), which the README's buffer paragraph did not say (nor how to mix
    more). Measured with training's own shuffle settings on a 2-shard directory, 16-window buffer."""
    from conftest import documentation_text
    from hf_neuroformer.training import _buffer_input_shards

    manifest = json.loads((tiny_prepared / "manifest.json").read_text())
    train_ds = load_prepared(tiny_prepared, "train", verify=False)
    in_time = sorted(row["window_start"] for row in train_ds)
    buffer, k = 16, len(manifest["splits"]["train"]["shards"])
    shuffled = train_ds.shuffle(seed=0, buffer_size=buffer, **_buffer_input_shards(train_ds, manifest))
    first = [row["window_start"] for _, row in zip(range(buffer), shuffled)]
    assert k == 2 and len(in_time) > 10 * buffer * k
    assert max(first) <= in_time[2 * buffer * k]  # the start of the recording only
    readme = " ".join(documentation_text().split())  # README.md and docs/*.md (docs/scaling.md states it)
    assert ("The shuffle is local: a shard is read in time order, so an epoch's first batches are drawn from the "
            "first buffer's worth of windows of the shard it starts with, the start of the recording") in readme
    assert "raise the buffer (`TrainingConfig(shuffle_buffer_size=...)`" in readme


def test_the_vocabulary_of_prepared_windows_is_recorded_and_another_unit_order_refused(tiny_prepared, tmp_path):
    """Break test: a prepared directory did not record which unit vocabulary tokenized its windows (the rows
    hold unit ids only), so a vocab.json of the same length in another unit order (the units added in
    reverse, copied over from another prepare), or such a tokenizer given to the windows, trained on wrong
    unit identities without a word. manifest.json records the tokens in id order; streamed training and
    load_prepared(..., tokenizer=) refuse another vocabulary, naming the first differing id and both
    tokens; a directory prepared before the record is read with a warning that it goes unchecked."""
    import shutil

    from hf_neuroformer.training import TrainingConfig, _prepared_setup, train
    from hf_neuroformer.windows import VocabularyMismatchError, vocabulary_tokens

    own = NeuroformerTokenizer.from_pretrained(tiny_prepared)
    manifest = json.loads((tiny_prepared / "manifest.json").read_text())
    assert manifest["vocabulary"] == vocabulary_tokens(own) == ["<pad>", "<bos>", "<eos>", *own.convert_ids_to_tokens(
        list(range(3, len(own))))]
    units = manifest["vocabulary"][3:]
    assert len(units) > 1
    config = nf.NeuroformerConfig.from_pretrained(tiny_prepared)
    reversed_tok = NeuroformerTokenizer.from_config(config, unit_tokens=units[::-1])
    assert len(reversed_tok) == len(own)
    first = rf"token id 3 is {re.escape(repr(units[-1]))} in this tokenizer but {re.escape(repr(units[0]))}"
    # the windows loaded for a tokenizer of the same length in another unit order
    with pytest.raises(VocabularyMismatchError, match=rf"^tokenizer: {first} in the vocabulary the windows of "
                                                      rf"prepared_dir .* were tokenized with \({len(own)} tokens"):
        load_prepared(tiny_prepared, "train", tokenizer=reversed_tok)
    # a tokenizer shorter than the record: the windows' last unit ids name no unit of it (a longer one that
    # starts with the record is accepted: test_a_tokenizer_grown_after_prepare_is_accepted_for_the_prepared_windows)
    shorter = NeuroformerTokenizer.from_config(config, unit_tokens=units[:-1])
    with pytest.raises(VocabularyMismatchError, match=rf"this tokenizer has {len(own) - 1} tokens, the vocabulary .* "
                                                      rf"{len(own)} \(ids 0 \.\. {len(own) - 2} agree; id {len(own) - 1} is "
                                                      rf"{re.escape(repr(units[-1]))} in the windows' vocabulary only\)"):
        load_prepared(tiny_prepared, "validation", tokenizer=shorter)
    assert len(load_prepared(tiny_prepared, "validation", streaming=False, tokenizer=own)) > 0
    # streamed training on a directory whose vocab.json was replaced by the reversed one: refused before a step
    swapped = tmp_path / "swapped"
    shutil.copytree(tiny_prepared, swapped)
    reversed_tok.save_pretrained(swapped)
    with pytest.raises(VocabularyMismatchError, match=rf"^tokenizer: {first} .*its vocab\.json is not the one "
                                                      r"'neuroformer prepare' wrote"):
        train(swapped, tmp_path / "m", None, TrainingConfig(max_steps=1), progress=False)
    assert not (tmp_path / "m" / "model.safetensors").exists()
    # a directory prepared before the record: used, with a warning naming the missing record
    old = tmp_path / "old"
    shutil.copytree(tiny_prepared, old)
    del manifest["vocabulary"]
    (old / "manifest.json").write_text(json.dumps(manifest))
    with pytest.warns(UserWarning, match=r"manifest\.json has no 'vocabulary' record .* cannot be checked"):
        load_prepared(old, "train", tokenizer=own)
    with pytest.warns(UserWarning, match=r"^recording \(--data\) .*: its manifest\.json has no 'vocabulary' record"):
        assert len(_prepared_setup(old, None)[1]) == len(own)


def test_a_tokenizer_grown_after_prepare_is_accepted_for_the_prepared_windows(tiny_prepared, tmp_path):
    """Break test: load_prepared(..., tokenizer=) and streamed training's check of vocab.json against
    manifest.json's 'vocabulary' refused a tokenizer that extends the recorded vocabulary (units added
    with add_units after prepare, e.g. a multi-session tokenizer) saying the windows' ids 'would name other
    units', though every recorded id still names the same unit. Such a tokenizer is accepted now; another
    unit order and a shorter vocabulary are still refused (test above)."""
    import shutil
    import warnings

    from hf_neuroformer.training import _prepared_setup
    from hf_neuroformer.windows import vocabulary_tokens

    recorded = json.loads((tiny_prepared / "manifest.json").read_text())["vocabulary"]
    grown = NeuroformerTokenizer.from_pretrained(tiny_prepared)
    assert grown.add_units(["other/u1", "other/u2"]) == [len(recorded), len(recorded) + 1]
    assert vocabulary_tokens(grown)[:len(recorded)] == recorded and len(grown) == len(recorded) + 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # accepted without a word: every recorded id names the same unit
        assert len(load_prepared(tiny_prepared, "validation", streaming=False, tokenizer=grown)) > 0
    # streamed training on a directory whose vocab.json grew after prepare trains with the grown tokenizer
    grown_dir = tmp_path / "grown"
    shutil.copytree(tiny_prepared, grown_dir)
    grown.save_pretrained(grown_dir)
    config, tokenizer = _prepared_setup(grown_dir, None)[:2]
    assert vocabulary_tokens(tokenizer) == vocabulary_tokens(grown) and config.vocab_size == len(grown)



def test_prepare_warns_of_a_split_whose_windows_hold_no_spike(short_rec, tmp_path, recwarn):
    """One real spike long after the others (as after a clock glitch) stretched the recording, so
    two splits' windows held no spike; `prepare` wrote them without a word, and only `train`, after
    the user had waited for the windows, warned that their losses would be NaN."""
    from hf_neuroformer.cli import main
    from hf_neuroformer.io import write_npz

    # the first 15 s of short_rec and its last spike, 45 s later
    keep = short_rec.spike_times < short_rec.spike_times[0] + 15.0
    keep[-1] = True
    stray = nf.SpikeRecording(spike_times=short_rec.spike_times[keep], unit_ids=short_rec.unit_ids[keep],
                              unit_names=short_rec.unit_names, session=short_rec.session)
    # 4 blocks of 15 s; split_seed 1: train the first two (the 15 s of spikes), validation and test none
    cfg = tmp_path / "blocks.yaml"
    cfg.write_text("current_window: 0.1\npast_window: 0.3\nsplit_block_length: 15.0\nsplit_seed: 1\n")
    data = write_npz(stray, tmp_path / "stray.npz")
    assert main(["prepare", "--data", str(data), "--config", str(cfg), "--output", str(tmp_path / "p")]) == 0
    splits = json.loads((tmp_path / "p" / "manifest.json").read_text())["splits"]
    empty = [s for s, e in splits.items() if e["n_windows"] and not e["n_spikes"]]
    said = [str(w.message) for w in recwarn if "0 spikes" in str(w.message)]
    assert empty and len(said) == len(empty), (said, splits)
    for split, msg in zip(empty, said):
        assert msg.startswith(f"split {split!r}: its {splits[split]['n_windows']} windows hold 0 spikes, so a model "
                              "trained on these windows gets NaN losses and metrics"), msg
        assert "--epoch" in msg and "split_seed" in msg and "neuroformer inspect" in msg, msg


def test_prepare_says_how_many_spikes_lie_in_no_current_window_and_why(short_rec, tmp_path, capsys, recwarn):
    """`prepare` printed each split's windows and the spikes in them, but not those no current
    window covers, never trained on or scored (the manifest's n_spikes_outside_windows: each time
    block's first past window and its end after the last whole window), nor the spikes in no split
    (the split gaps)."""
    from hf_neuroformer.cli import main
    from hf_neuroformer.inspection import _secs
    from hf_neuroformer.io import write_npz

    data = write_npz(short_rec, tmp_path / "short.npz")
    cfg = tmp_path / "blocks.yaml"
    cfg.write_text("current_window: 0.1\npast_window: 0.3\nsplit_block_length: 5.0\n")
    assert main(["prepare", "--data", str(data), "--config", str(cfg), "--output", str(tmp_path / "p")]) == 0
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    splits, digest = manifest["splits"], manifest["split_spikes"]
    line = next((ln for ln in capsys.readouterr().out.splitlines() if "in no current window" in ln), None)
    assert line is not None
    # per split: of the spikes in its segments, those no window holds, and the seconds no window covers
    for split, e in splits.items():
        assert 0 < e["n_spikes_outside_windows"] < digest["splits"][split]["n_spikes"], (split, e)
        assert (f"{split} {e['n_spikes_outside_windows']} of {digest['splits'][split]['n_spikes']} spikes "
                f"({_secs(e['seconds_outside_windows'])} s)") in line, line
    assert "each time block's first past window (read only as past) and the rest of a block shorter than a " \
           "window" in line, line
    n_none = len(short_rec.spike_times) - digest["n_spikes"]
    assert n_none > 0 and (f"{n_none} spikes of the recording's {len(short_rec.spike_times)} in no split (the "
                           "split_gap of 0.3 s between blocks of different splits") in line, line
    # every split's windows hold spikes: nothing to warn of
    assert not [w for w in recwarn if "0 spikes" in str(w.message)]


def test_the_manifest_counts_each_splits_windows_without_spikes(tmp_path):
    """Break test: windows holding no spike are kept (BOS, EOS) and trained on, but prepare counted them
    nowhere unless a whole split was empty; a recording silent for stretches gave no word of it. The
    manifest now counts them per split, as the shards hold them."""
    import numpy as np

    rng = np.random.default_rng(0)
    t = np.sort(np.concatenate([rng.uniform(0, 12, 300), rng.uniform(18, 30, 300)]))  # silent 12-18 s
    rec = nf.SpikeRecording(t, rng.integers(0, 3, t.size), time_domain=(0.0, 30.0))
    cfg = nf.NeuroformerConfig(**{k: v for k, v in TINY.items() if k != "split_block_length"}, split_block_length=3.0)
    manifest = prepare_windows(rec, tmp_path / "prep", cfg, num_shards=2, progress=False)
    total = 0
    for split in SPLITS:
        n_spikes = load_prepared(tmp_path / "prep", split, streaming=False)["n_spikes"]
        empty = sum(1 for n in n_spikes if n == 0)
        assert manifest["splits"][split]["n_windows_without_spikes"] == empty < len(n_spikes)
        total += empty
    assert total >= 40  # the 6 silent seconds hold dozens of 0.1-s windows, wherever their blocks went


def test_load_prepared_refuses_a_tokenizer_with_other_window_settings(tiny_prepared):
    """Break test: load_prepared(..., tokenizer=) checked only the vocabulary, so a tokenizer with the same
    units but another dt_resolution (or current_window) was accepted and read each dt id of the windows
    as another bin, without an error. Refused now, naming the field and both values."""

    config = nf.NeuroformerConfig.from_pretrained(tiny_prepared)
    units = json.loads((tiny_prepared / "manifest.json").read_text())["vocabulary"][3:]
    other = nf.NeuroformerConfig(**{**TINY, "dt_resolution": TINY["dt_resolution"] / 2})
    finer = NeuroformerTokenizer.from_config(other, unit_tokens=units)
    assert finer.convert_ids_to_tokens(list(range(len(finer)))) == \
        NeuroformerTokenizer.from_pretrained(tiny_prepared).convert_ids_to_tokens(list(range(len(finer))))
    with pytest.raises(ValueError, match=rf"^tokenizer\.dt_resolution = {other.dt_resolution!r}, but "
                                         rf"config\.dt_resolution = {config.dt_resolution!r}: .* the windows of "
                                         r"prepared_dir .* config\.json"):
        load_prepared(tiny_prepared, "validation", tokenizer=finer)
    same = NeuroformerTokenizer.from_config(config, unit_tokens=units)
    assert len(load_prepared(tiny_prepared, "validation", streaming=False, tokenizer=same)) > 0
