"""Two CPU processes (torchrun, gloo) run the unchanged training loop on real data (issue 7,
acceptance 1): world size 2, identical parameters on both ranks, the loss goes down, only the
main process writes the model, and the result equals one process with the same global batch."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import hf_neuroformer as nf
from hf_neuroformer.training import TrainingConfig, train
from hf_neuroformer.windows import plan_splits, prepare_windows

HERE = Path(__file__).resolve().parent
A2929 = "pynapple_A2929_headdirection/A2929-200711.nwb"
# the decoder tests' tiny backbone (tests/test_decoding.py)
DECODING_TINY = dict(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=24, max_past_length=48,
                     hidden_size=16, num_attention_heads=2, intermediate_size=32, split_block_length=15.0)


def _worker_module():
    spec = importlib.util.spec_from_file_location("ddp_train_worker", HERE / "ddp_train_worker.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run_two_ranks(data, tmp_path, extra_runs=(), **env_extra):
    """One torchrun launch of ddp_train_worker.py on ``data`` (model in tmp_path/out): the per-rank
    reports and final weights of its run. ``extra_runs`` (the worker's WORKER_EXTRA_RUNS) are taken
    first in the same two processes, sparing a launch each; read them with :func:`_reports`."""
    report = tmp_path / "report"
    report.mkdir()
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", **env_extra}
    if extra_runs:
        env["WORKER_EXTRA_RUNS"] = json.dumps(list(extra_runs))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(HERE / "ddp_train_worker.py"), str(data), str(tmp_path / "out"), str(report)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240 + 120 * len(extra_runs))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (tmp_path / "stderr.txt").write_text(proc.stderr)
    return _reports(tmp_path)


def _reports(tmp_path, name=None):
    """``(ranks, weights)`` of the launch's run in tmp_path, or of its extra run ``name`` (weights
    None when its train() raised; the reports hold the ``error``)."""
    suffix = f"_{name}" if name else ""
    report = tmp_path / "report"
    ranks = [json.loads((report / f"rank{r}{suffix}.json").read_text()) for r in (0, 1)]
    if any(r["error"] is not None for r in ranks):
        return ranks, None
    return ranks, [load_file(report / f"rank{r}{suffix}.safetensors") for r in (0, 1)]


# generate_test false in these runs (and their one-process references): only their step losses, weights and
# counts are read, never a generation result
CONTRASTIVE_OVERRIDES = {"max_steps": 3, "batch_size": 4, "eval_every": 100, "save_every": None, "generate_test": False}
# the train windows of ddp_train_worker.infonce_batch (0-49 without head direction, 50-93 with) that
# rank 0 and rank 1 hold in the extra runs of that name: batches of 3 and 4 windows, with 3 and 2
# windows of head direction; and 4 with it against 2 without (rank 1 has no row to contrast)
INFONCE_SHARES = {"infonce_uneven": [[51, 52, 53], [48, 54, 49, 55]], "infonce_one_rank_without": [[50, 51, 52, 53],
                                                                                                 [47, 48]],
                  "infonce_compiled_head": [[51, 52, 53], [48, 54, 49, 55]]}
# the runs of INFONCE_SHARES whose contrastive head is compiled (torch.compile, backend eager)
INFONCE_COMPILED = {"infonce_compiled_head"}
# the batches (train windows of ddp_train_worker.infonce_batch, all with head direction) of the extra runs
# 'join_*' under DDP's join(): two on rank 0, one on rank 1
JOIN_BATCHES = [[[50, 51, 52], [53, 54, 55]], [[56, 57, 58]]]
UNEVEN_OVERRIDES = {"max_steps": 7, "batch_size": 200, "eval_every": 100, "save_every": None, "generate_test": False}
# 60-100 s of the wake epoch (head direction from 70.6 s): 291 train windows in micro-batches of 20 per rank,
# 2 a step (4 steps an epoch); the epoch's last step holds 20 windows on rank 0 and 20 on rank 1, then 11 on
# rank 0 alone
UNEVEN_CONTRASTIVE_SPAN = (60.0, 100.0)
UNEVEN_CONTRASTIVE_OVERRIDES = {"max_steps": 5, "batch_size": 80, "gradient_accumulation_steps": 2,
                                "eval_every": 100, "save_every": None, "generate_test": False}


@pytest.fixture(scope="module")
def file_two_ranks(streamed_two_ranks):
    """The folder of the streamed launch (``streamed_two_ranks``: one torchrun launch spared), whose extra
    runs read the worker's 150 s of A2929 from the file: 'file' (the worker's default run, into out_file),
    'uneven' (UNEVEN_OVERRIDES) and 'uneven_contrastive' (UNEVEN_CONTRASTIVE_OVERRIDES on
    UNEVEN_CONTRASTIVE_SPAN with the contrastive loss on)."""
    return streamed_two_ranks


def test_two_cpu_processes_train_in_step(file_two_ranks, shared_data, tmp_path):
    data = shared_data(A2929)
    ranks, w = _reports(file_two_ranks, "file")
    run_out = Path(ranks[0]["out"])
    assert [r["error"] for r in ranks] == [None, None], ranks
    assert [r["world_size"] for r in ranks] == [2, 2] and ranks[0]["backend"] == "gloo"

    # identical parameters on both ranks
    rank_diff = max((w[0][k] - w[1][k]).abs().max().item() for k in w[0])
    print(f"max |param rank 0 - rank 1|: {rank_diff:.3g}; sha256 equal: {ranks[0]['sha256'] == ranks[1]['sha256']}")
    assert ranks[0]["sha256"] == ranks[1]["sha256"] and rank_diff == 0.0

    # the loss goes down (the step loss is the mean over both ranks' tokens, so the same on both)
    losses = ranks[0]["losses"]
    assert len(losses) == 8 and losses == ranks[1]["losses"]
    assert sum(losses[-2:]) < sum(losses[:2]) - 0.2, losses
    log = json.loads((run_out / "training_log.json").read_text())
    assert log[-1]["validation/loss"] < log[0]["validation/loss"]

    # only the main process wrote the model; the checkpoints hold both ranks' RNG states
    assert ranks[0]["save_atomically_calls"] == [str(run_out)]
    assert ranks[1]["save_atomically_calls"] == []
    assert (run_out / "model.safetensors").is_file()
    # write_figures=False (the worker's and this file's runs: no test here reads a figure, and drawing them was
    # about half of a run's time): neither figure, the test split still generated (its metrics below)
    assert not {"training_curves.png", "test_generation.png"} & {p.name for p in run_out.iterdir()}
    ckpt = run_out / "checkpoints" / "step-00000008"
    assert {"random_states_0.pkl", "random_states_1.pkl", "model.safetensors"} <= {p.name for p in ckpt.iterdir()}

    # data sharded, gradients averaged: the same as one process seeing the 32 windows of each step
    worker = _worker_module()
    single, single_losses = {}, []
    # the reference without test generation: none of its figures compared below comes from it
    one = train(worker.recording(data), tmp_path / "single", nf.NeuroformerConfig(**worker.TINY),
          TrainingConfig(**worker.TRAINING, generate_test=False), progress=False, write_figures=False,
          on_train_end=lambda m: single.update(m.state_dict()), on_step_end=lambda step, loss: single_losses.append(loss))
    one_vs_two = max((single[k] - w[0][k]).abs().max().item() for k in w[0])
    print(f"max |param 1 process - 2 processes|: {one_vs_two:.3g}; step losses {[round(x, 4) for x in losses]}")
    assert single_losses == pytest.approx(losses, abs=1e-4)
    assert one_vs_two < 1e-4
    # validation is split between the ranks and summed, the test split scored by rank 0: the same figures
    two = ranks[0]["metrics"]
    for key in ("validation/loss", "validation/id_nll", "validation/dt_nll", "test/id_nll", "test/dt_nll",
                "test/markov_id_nll", "best_step"):
        print(key, one[key], two[key])
        assert two[key] == pytest.approx(one[key], abs=1e-4), key
    assert two["test/n_generated_spikes"] > 0 and not list((tmp_path / "single").glob("*.png"))


def test_two_cpu_processes_take_an_uneven_last_step_of_an_epoch_as_one_process_does(file_two_ranks, shared_data,
                                                                                      tmp_path):
    """The 1005 training windows in steps of 200: the last step of the epoch holds 5 windows, all
    on rank 0 (micro-batches of 100 per rank). Accelerate's even_batches topped both ranks' last
    micro-batches up to 100 with windows from the start of the epoch, so that step trained 195
    windows twice and the two-process run left the one-process run's losses from step 6 on; now
    rank 1 takes part with a zero loss and both runs take the same steps."""
    overrides = UNEVEN_OVERRIDES
    ranks, _ = _reports(file_two_ranks, "uneven")
    assert ranks[0]["metrics"]["n_train_windows"] == 1005  # 5 steps of 200, then 5 windows
    assert ranks[0]["sha256"] == ranks[1]["sha256"]
    worker = _worker_module()
    single_losses = []
    train(worker.recording(shared_data(A2929)), tmp_path / "single", nf.NeuroformerConfig(**worker.TINY),
          TrainingConfig(**{**worker.TRAINING, **overrides}), progress=False, write_figures=False,
          on_step_end=lambda step, loss: single_losses.append(loss))
    print(f"step losses, 1 process {[round(x, 4) for x in single_losses]}, 2 {[round(x, 4) for x in ranks[0]['losses']]}")
    assert len(single_losses) == 7
    assert ranks[0]["losses"] == pytest.approx(single_losses, abs=1e-4)


def test_two_cpu_processes_gather_infonce_over_an_uneven_last_step_as_one_process_does(file_two_ranks, shared_data,
                                                                                      tmp_path):
    """The contrastive loss on, micro-batches of 20 windows per rank, 2 a step: InfoNCE gathers both
    ranks' windows (a collective in the forward), so every rank must take every micro-batch's forward;
    in the epoch's last step rank 0 has two micro-batches and rank 1 one, so rank 1 takes part in the
    second with a window that counts zero times and is no negative of rank 0's 11 windows. The same
    steps as one process with micro-batches of 40. (Each rank contrasted its own 20 windows only:
    other losses from the first step on.)"""
    ranks, _ = _reports(file_two_ranks, "uneven_contrastive")
    assert ranks[0]["metrics"]["n_train_windows"] == 291
    assert ranks[0]["sha256"] == ranks[1]["sha256"]
    worker = _worker_module()
    single_losses = []
    train(worker.recording(shared_data(A2929), UNEVEN_CONTRASTIVE_SPAN), tmp_path / "single", worker.contrastive_config(),
          TrainingConfig(**{**worker.TRAINING, **UNEVEN_CONTRASTIVE_OVERRIDES}), progress=False,
          write_figures=False,
          on_step_end=lambda step, loss: single_losses.append(loss))
    print(f"step losses, 1 process {[round(x, 4) for x in single_losses]}, 2 {[round(x, 4) for x in ranks[0]['losses']]}")
    assert len(single_losses) == 5
    assert ranks[0]["losses"] == pytest.approx(single_losses, abs=1e-4)


EPOCHS_OVERRIDES = {"max_steps": 1000, "max_epochs": 3, "batch_size": 16, "gradient_accumulation_steps": 2,
                    "eval_every": 5, "save_every": 7, "shuffle_buffer_size": 64}


@pytest.fixture(scope="module")
def streamed_two_ranks(tmp_path_factory, shared_data):
    """One torchrun launch for the streamed tests and those of file_two_ranks (in the folder it returns):
    the worker's 150 s prepared in 3 shards (``prepared``, the launch's run, into out), and before it, in
    the same two processes, the extra runs of file_two_ranks ('file', 'uneven', 'uneven_contrastive'),
    'one_window' (a prepared directory whose train split holds one window),
    'epochs' (the first 23 s in 2 shards, ``prepared_23s``, EPOCHS_OVERRIDES), 'contrastive' (the
    worker's 150 s read from the A2929 file, head direction as a modality, contrastive loss on, 2
    windows per rank and step for 3 steps: the launch's stderr in stderr.txt)
    'contrastive_one_window_per_rank' (the same with one window per rank and step) and the runs of
    INFONCE_SHARES (one contrastive forward and backward under DDP each); 'contrastive_per_process' (the
    run 'contrastive' with contrastive_gather_across_processes false), and 'join_per_process' and
    'join_gathered' (JOIN_BATCHES under DDP's join(), the gather off and on)."""
    worker = _worker_module()
    tmp = tmp_path_factory.mktemp("streamed")
    rec = worker.recording(shared_data(A2929))
    prepare_windows(rec, tmp / "prepared", nf.NeuroformerConfig(**worker.TINY), num_shards=3, progress=False)
    cfg = nf.NeuroformerConfig(**worker.TINY)
    rec_23s = rec.restrict(rec.support[0, 0], rec.support[0, 0] + 23.0)
    prepare_windows(rec_23s, tmp / "prepared_23s", nf.NeuroformerConfig(**worker.TINY), num_shards=2, progress=False)
    # the one-window directory from the first 23 s too: its run is refused before training, so its validation
    # and test windows (all of them tokenised) are never read
    plan = plan_splits(rec_23s, cfg)
    start = plan.segments["train"][0, 0]
    plan.segments["train"] = np.array([[start, start + cfg.past_window + cfg.current_window]])  # one window
    manifest = prepare_windows(rec_23s, tmp / "one_window", cfg, plan=plan, progress=False)
    assert manifest["splits"]["train"]["n_windows"] == 1
    data = str(shared_data(A2929))
    _run_two_ranks(str(tmp / "prepared"), tmp, extra_runs=[
        {"name": "file", "data": data},
        {"name": "uneven", "data": data, "training": UNEVEN_OVERRIDES},
        {"name": "uneven_contrastive", "data": data, "training": UNEVEN_CONTRASTIVE_OVERRIDES, "contrastive": True,
         "span": UNEVEN_CONTRASTIVE_SPAN},
        {"name": "one_window", "data": str(tmp / "one_window")},
        {"name": "epochs", "data": str(tmp / "prepared_23s"), "training": EPOCHS_OVERRIDES},
        {"name": "contrastive", "data": str(shared_data(A2929)), "training": CONTRASTIVE_OVERRIDES,
         "contrastive": True},
        {"name": "contrastive_one_window_per_rank", "data": str(shared_data(A2929)), "contrastive": True,
         "training": {**CONTRASTIVE_OVERRIDES, "batch_size": 2, "max_steps": 2}},
        *({"name": name, "data": str(shared_data(A2929)), "infonce": shares, "compile_head": name in INFONCE_COMPILED}
          for name, shares in INFONCE_SHARES.items()),
        {"name": "contrastive_per_process", "data": str(shared_data(A2929)), "training": CONTRASTIVE_OVERRIDES,
         "contrastive": True, "config": {"contrastive_gather_across_processes": False}},
        {"name": "join_per_process", "data": str(shared_data(A2929)), "join": JOIN_BATCHES, "gather": False},
        {"name": "join_gathered", "data": str(shared_data(A2929)), "join": JOIN_BATCHES, "gather": True}])
    return tmp


def test_two_cpu_processes_stream_a_prepared_directory(streamed_two_ranks):
    """Training from `neuroformer prepare` shards under torchrun: each rank streams its share
    (split_dataset_by_node over 3 shards, so one example in two per rank), the ranks stay in
    step, and the unused windows at an epoch's end are counted."""
    tmp_path = streamed_two_ranks
    prepared = tmp_path / "prepared"
    ranks, _ = _reports(tmp_path)
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert ranks[0]["sha256"] == ranks[1]["sha256"]
    losses = ranks[0]["losses"]
    assert len(losses) == 8 and losses == ranks[1]["losses"]
    assert sum(losses[-2:]) < sum(losses[:2]) - 0.2, losses
    assert ranks[0]["save_atomically_calls"] == [str(tmp_path / "out")] and ranks[1]["save_atomically_calls"] == []
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["data"].startswith("streamed from prepared directory")
    assert metrics["n_train_windows"] == sum(s["n_rows"] for s in json.loads(
        (prepared / "manifest.json").read_text())["splits"]["train"]["shards"])
    assert metrics["n_train_windows_unused"] >= 0 and "test/id_nll" in metrics


def test_streamed_training_with_fewer_train_windows_than_processes_is_refused(streamed_two_ranks):
    """One train window streamed by two ranks: rank 1 got none, so every epoch ended at once on
    both, no step was taken and the untrained model was saved (its NaN validation loss reported as
    a diverged run). Refused before training, on both ranks, saying how many windows and processes.
    (The extra run 'one_window' of the streamed launch, to spare a launch of its own.)"""
    ranks, w = _reports(streamed_two_ranks, "one_window")
    assert [r["world_size"] for r in ranks] == [2, 2]
    for r in ranks:
        assert r["error"] is not None and "has 1 window, fewer than the 2 processes training" in r["error"], r
    assert w is None and not (Path(ranks[0]["out"]) / "model.safetensors").exists()


def test_streamed_epochs_end_together_on_both_ranks(streamed_two_ranks):
    """Two ranks whose shares of the streamed windows differ (2 shards of 23 s: one rank holds one
    more window) cross several epoch ends in step: the min-reduce trims the longer rank and counts
    what it leaves unused. (The extra run 'epochs' of the streamed launch.)"""
    manifest = json.loads((streamed_two_ranks / "prepared_23s" / "manifest.json").read_text())
    rows = [s["n_rows"] for s in manifest["splits"]["train"]["shards"]]
    assert rows[0] != rows[1], rows  # unequal shares, so the trimming path runs
    # 4 windows per rank and micro-batch, 2 micro-batches a step: 16 micro-batches on one rank (64
    # windows), 16 and a 1-window one on the other (65), so 8 steps an epoch, and 24 in all, neither a
    # multiple of eval_every or save_every (validated at 5, 10, 15, 20 and saved at 7, 14, 21: mid-run,
    # in the second and third epoch as well). (42 s, 19 steps an epoch, took twice as long.)
    assert sorted(rows) == [64, 65], rows
    ranks, _ = _reports(streamed_two_ranks, "epochs")
    out = Path(ranks[0]["out"])
    assert ranks[0]["sha256"] == ranks[1]["sha256"] and ranks[0]["losses"] == ranks[1]["losses"]
    log = json.loads((out / "training_log.json").read_text())
    assert max(e["epoch"] for e in log) >= 2  # several epoch ends were crossed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_train_windows_unused"] >= 2, metrics["n_train_windows_unused"]
    # the run ends with its epochs, before the step count planned from the larger share (an upper
    # bound): its last step is still validated and checkpointed (it was neither)
    last = metrics["total_steps"]
    assert last == 24, last  # 3 epochs of 8 steps (the plan from the larger share: 27)
    assert log[-1]["step"] == last and "validation/loss" in log[-1], log[-1]
    assert (out / "checkpoints" / f"step-{last:08d}").is_dir()


@pytest.fixture(scope="module")
def contrastive_two_ranks(streamed_two_ranks):
    """``(per-rank reports, stderr of the launch)`` of the contrastive run of ``streamed_two_ranks``
    (both contrastive tests read it)."""
    return _reports(streamed_two_ranks, "contrastive")[0], (streamed_two_ranks / "stderr.txt").read_text()


def test_contrastive_loss_under_two_ranks_with_micro_batches_too_small_for_infonce(contrastive_two_ranks):
    """Two windows per rank and step, in the first 150 s of the wake epoch where the head is
    tracked only from 670.6 s (about half the windows have no head direction): a rank may hold no
    window with values (no row of the gathered InfoNCE) or the step none with two; the projections
    must still take part in the graph, or DDP stalls on the next step. (One window per micro-batch
    of all processes is refused before training since the contrastive loss would never run:
    test_contrastive.)"""
    ranks, _ = contrastive_two_ranks
    assert ranks[0]["sha256"] == ranks[1]["sha256"] and len(ranks[0]["losses"]) == 3


def test_contrastive_term_under_two_ranks_is_that_of_one_process_with_the_whole_batch(contrastive_two_ranks,
                                                                                      shared_data, tmp_path):
    """Two ranks with one micro-batch of 2 windows each against one process with the same 4 windows
    in one batch: InfoNCE gathers the embeddings of both ranks, so the same terms and the same steps.
    Each rank contrasted its own 2 windows only (1 negative each, not 3): the run was that of one
    process with 2 accumulated micro-batches of 2, and warned of it. (Each rank once added the mean of
    its own InfoNCE terms and the gradient sync summed them: the term weighed twice the weight.)"""
    worker = _worker_module()
    ranks, stderr = contrastive_two_ranks
    single = []
    train(worker.recording(shared_data(A2929)), tmp_path / "single", worker.contrastive_config(),
          TrainingConfig(**{**worker.TRAINING, **CONTRASTIVE_OVERRIDES}),
          progress=False, write_figures=False, on_step_end=lambda step, loss: single.append(loss))
    print(f"step losses, 1 process x 4 windows {single}, 2 processes x 2 {ranks[0]['losses']}")
    assert ranks[0]["losses"] == pytest.approx(single, abs=1e-4)
    # the one warning of the launch is that of its run with the gather off (test below)
    assert stderr.count("InfoNCE contrasts each window") == 1 and stderr.count("not gathered") == 1, stderr[-3000:]


def test_contrastive_term_without_the_gather_is_that_of_one_process_with_accumulated_micro_batches(
        streamed_two_ranks, shared_data, tmp_path):
    """contrastive_gather_across_processes false (the extra run 'contrastive_per_process'): each rank
    contrasts its own micro-batch of 2 windows only, as one process taking the two micro-batches in
    turn (gradient_accumulation_steps=2) does: the same steps, and the run says so once (main
    process)."""
    worker = _worker_module()
    ranks, _ = _reports(streamed_two_ranks, "contrastive_per_process")
    assert [r["error"] for r in ranks] == [None, None] and ranks[0]["sha256"] == ranks[1]["sha256"]
    single = []
    train(worker.recording(shared_data(A2929)), tmp_path / "single", worker.contrastive_config(),
          TrainingConfig(**{**worker.TRAINING, **CONTRASTIVE_OVERRIDES, "gradient_accumulation_steps": 2}),
          progress=False, write_figures=False, on_step_end=lambda step, loss: single.append(loss))
    print(f"step losses, 1 process x 2 micro-batches {single}, 2 processes without the gather {ranks[0]['losses']}")
    assert ranks[0]["losses"] == pytest.approx(single, abs=1e-4)
    stderr = (streamed_two_ranks / "stderr.txt").read_text()
    warned = re.findall(r"UserWarning: contrastive_loss_weight 0.5: InfoNCE contrasts each window with the other "
                        r"windows of its own micro-batch on its own process \(contrastive_gather_across_processes is "
                        r"false: embeddings are not gathered across the 2 processes\), so a window has at most 1 "
                        r"negatives \(3 with the gather, or on 1 process with gradient_accumulation_steps 1\); the "
                        r"contrastive term is that of 1 process with 2 accumulated micro-batches of 2", stderr)
    assert len(warned) == 1, stderr[-3000:]


def _one_process_infonce(data, rows, **config):
    """``(loss, gradients)`` of one contrastive forward and backward of the windows ``rows`` on one
    process (ddp_train_worker.infonce_batch)."""
    _, model, batch = _worker_module().infonce_batch(data, rows, **config)
    loss = model(**batch, output_contrastive_loss=True).contrastive_loss
    loss.backward()
    return float(loss.detach()), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


def test_ddp_join_with_uneven_batches_works_with_the_gather_off(streamed_two_ranks, shared_data):
    """DDP's join() (uneven inputs: 2 batches on rank 0, 1 on rank 1) with
    contrastive_gather_across_processes false (the extra run 'join_per_process'): every batch is
    taken, each rank's loss is that of its own windows on one process, and the gradients are DDP's:
    rank 1's the mean of both ranks' first batches, rank 0's half those of its second (rank 1, joined,
    adds zeros). Without the field (the gather on, as before) rank 0's second forward waited in the
    gather for rank 1 until the process group timed out."""
    ranks, grads = _reports(streamed_two_ranks, "join_per_process")
    assert [r["error"] for r in ranks] == [None, None], ranks
    data = shared_data(A2929)
    one = {tuple(rows): _one_process_infonce(data, rows, contrastive_gather_across_processes=False)
           for batches in JOIN_BATCHES for rows in batches}
    for rank, batches in enumerate(JOIN_BATCHES):
        assert ranks[rank]["losses"] == pytest.approx([one[tuple(rows)][0] for rows in batches], rel=1e-5)
    (a, b), (c,) = ([one[tuple(rows)][1] for rows in batches] for batches in JOIN_BATCHES)
    for rank, want in ((0, {n: g / 2 for n, g in b.items()}), (1, {n: (g + c[n]) / 2 for n, g in a.items()})):
        assert grads[rank].keys() == want.keys() and any(n.startswith("contrastive.") for n in want)
        for n, g in grads[rank].items():
            torch.testing.assert_close(g, want[n], rtol=1e-4, atol=1e-6, msg=lambda m: f"rank {rank} {n}: {m}")


def test_ddp_join_with_the_gather_on_is_refused_not_left_to_hang(streamed_two_ranks):
    """DDP's join() with contrastive_gather_across_processes true (the extra run 'join_gathered'): the
    gather is a collective that join() does not stand in for, so rank 0's second forward waited in it
    for rank 1 (joined) until the process group timed out. Every rank now refuses the first forward,
    naming the field and what to do."""
    ranks, _ = _reports(streamed_two_ranks, "join_gathered")
    for r in ranks:
        assert r["losses"] == [] and r["error"] is not None, r
        for words in ("contrastive_gather_across_processes: True", "join() enabled",
                      "contrastive_gather_across_processes=False"):
            assert words in r["error"], (words, r["error"])


def test_one_window_per_rank_is_a_micro_batch_of_two_for_infonce(streamed_two_ranks):
    """batch_size 2 on two ranks: one window per rank and micro-batch, two in the gathered InfoNCE.
    It was refused ("leaves 1 window per micro-batch ... needs at least 2"): each rank contrasted
    its own window alone, so the contrastive loss would never have run."""
    ranks, _ = _reports(streamed_two_ranks, "contrastive_one_window_per_rank")
    assert [r["error"] for r in ranks] == [None, None], ranks
    assert ranks[0]["sha256"] == ranks[1]["sha256"] and len(ranks[0]["losses"]) == 2


@pytest.mark.parametrize("name", list(INFONCE_SHARES))
def test_infonce_of_two_processes_is_that_of_one_process_with_both_batches(streamed_two_ranks, shared_data, name):
    """One contrastive forward and backward under DDP, each rank with its share of a batch (shares of
    3 and 4 windows, or a rank with no window of head direction): the loss of every rank and the
    gradients DDP leaves are those of one process with the whole batch. Each rank's InfoNCE
    contrasted its own windows only (the one without a pair skipped it), so the loss was another and
    the gradients their mean."""
    worker = _worker_module()
    ranks, grads = _reports(streamed_two_ranks, name)
    assert [r["world_size"] for r in ranks] == [2, 2], ranks
    shares = INFONCE_SHARES[name]
    _, model, batch = worker.infonce_batch(shared_data(A2929), shares[0] + shares[1])
    loss = model(**batch, output_contrastive_loss=True).contrastive_loss
    loss.backward()
    assert [r["loss"] for r in ranks] == pytest.approx([float(loss.detach())] * 2, rel=1e-5)
    expected = {n: p.grad for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert any(n.startswith("contrastive.") for n in expected) and any(n.startswith("neuroformer.") for n in expected)
    for g in grads:
        for n, p in model.named_parameters():
            want = expected.get(n, torch.zeros_like(p))
            torch.testing.assert_close(g.get(n, torch.zeros_like(p)), want, rtol=1e-4, atol=1e-6, msg=n)


def test_a_compiled_contrastive_head_leaves_no_collective_unwaited(streamed_two_ranks):
    """The run 'infonce_compiled_head' of the streamed launch compiles the head (its gradients are
    checked against one process above). Dynamo turned the all_gather of the processes' window counts
    into functional collectives that were never waited on: every compiled contrastive run under
    several processes ended with torch's 'there are still 2 unwaited collective calls' on each rank
    (not with the head switched off). The counts' gather now runs eagerly, as the rows' does."""
    stderr = (streamed_two_ranks / "stderr.txt").read_text()
    assert "unwaited collective calls" not in stderr, stderr[-3000:]


@pytest.fixture(scope="module")
def one_shard_prepared(tmp_path_factory, shared_data):
    """The worker's 150 s of A2929 prepared in one shard (read, never written, by the tests)."""
    worker = _worker_module()
    prepared = tmp_path_factory.mktemp("one_shard") / "prepared"
    prepare_windows(worker.recording(shared_data(A2929)), prepared, nf.NeuroformerConfig(**worker.TINY),
                    num_shards=1, progress=False)
    return prepared


def _accelerate_launch_cpu_train(prepared, tmp_path, num_processes: int, **env_vars):
    """`accelerate launch --cpu --num_processes N -m hf_neuroformer.cli train` for one step on
    A2929's windows in ``prepared`` (model in tmp_path/out), with ``env_vars`` added to the
    environment and no WORLD_SIZE; the finished process, checked to have exited 0."""
    import shutil

    if shutil.which("accelerate") is None:
        pytest.fail("the accelerate command is not installed (pip install accelerate)")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", **env_vars}
    env.pop("WORLD_SIZE", None)
    cmd = ["accelerate", "launch", "--cpu", "--num_processes", str(num_processes), "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "hf_neuroformer.cli", "train", "--data",
           str(prepared), "--output-dir", str(tmp_path / "out"), "--max-steps", "1", "--batch-size", "8"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_accelerate_launch_cpu_with_two_processes_warns_that_it_started_one(one_shard_prepared, tmp_path):
    """`accelerate launch --cpu --num_processes 2` starts a single process (the README says so);
    the run trained on one process and said nothing, so a user who missed the README's line
    believed two had trained."""
    proc = _accelerate_launch_cpu_train(one_shard_prepared, tmp_path, 2)
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["num_processes"] == 1
    assert "started 1 process" in proc.stderr and "torchrun --standalone --nproc_per_node N" in proc.stderr, \
        proc.stderr[-3000:]


def test_accelerate_launch_of_one_process_under_an_inherited_master_port_does_not_warn(one_shard_prepared, tmp_path):
    """A job script (SLURM, a container) that exports MASTER_ADDR / MASTER_PORT for its own
    reasons and runs `accelerate launch --cpu --num_processes 1` asked for one process and got
    one; the run warned 'accelerate launch was asked for several processes ... started 1
    process', as MASTER_PORT was taken for accelerate's own several-process setting."""
    proc = _accelerate_launch_cpu_train(one_shard_prepared, tmp_path, 1, MASTER_ADDR="127.0.0.1", MASTER_PORT="23456")
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["num_processes"] == 1
    assert "started 1 process" not in proc.stderr, proc.stderr[-3000:]


def test_the_cli_under_torchrun_says_records_and_warns_once_how_many_processes_trained(shared_data, tmp_path):
    """`ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2 -m hf_neuroformer.cli train`: its output never
    said that two processes trained (`accelerate launch --cpu --num_processes 2` silently starts one,
    so a user cannot tell from the result), nothing in metrics.json recorded it, and the 'data:' line
    came once per rank. Every rank runs train() and reached its warnings (no validation windows,
    settings changed on resume, ...): each came twice, as the data line did before; the CLI now
    shows the package's warnings on rank 0 only. (One launch for both: the README's own command, on
    the built-in recording, is test_workers_end_when_their_torchrun_launcher_is_killed's, which
    checks its 'config:', 'data:' and launch lines.)"""
    worker = _worker_module()
    prepared = tmp_path / "prepared"
    prepare_windows(worker.recording(shared_data(A2929)), prepared,
                    nf.NeuroformerConfig(**worker.TINY, split_fractions=(0.85, 0.0, 0.15)), num_shards=1,
                    progress=False)
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "hf_neuroformer.cli", "train", "--data", str(prepared), "--output-dir", str(tmp_path / "out"),
           "--max-steps", "2", "--batch-size", "8"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert sum(line.startswith("[neuroformer] data:") for line in lines) == 1, proc.stdout
    _assert_says_two_processes_trained(lines, proc.stdout)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["num_processes"] == 2 and metrics["micro_batch_size"] == 4, metrics
    warned = [line for line in proc.stderr.splitlines() if "no validation windows" in line]
    assert len(warned) == 1, proc.stderr[-3000:]
    assert warned[0].startswith("neuroformer train: warning: split_fractions:"), warned


def _assert_says_two_processes_trained(lines, output, whole_line=True):
    """The output ``lines`` of `neuroformer train --batch-size 8` under `torchrun --nproc_per_node 2`
    say once that 2 processes train, with the micro-batch and step sizes (``whole_line``: and nothing
    after; not in a log that both ranks and the launcher write unbuffered, where another process's
    text may land between a line and its line break)."""
    said = "[neuroformer] training on 2 processes (gloo): 4 windows per process per micro-batch, 8 windows per step"
    launch = [line for line in lines if "processes" in line and line.startswith("[neuroformer] training on")]
    assert len(launch) == 1 and (launch[0] == said if whole_line else launch[0].startswith(said)), output


@pytest.fixture(scope="module")
def decoding_two_ranks(shared_data, tmp_path_factory):
    """One torchrun launch of ddp_decoding_worker.py (2 processes, micro-batches of 4 windows,
    gradient_accumulation_steps=3) on 24 training windows of a tiny pretrained decoder's A2929 data:
    ``(worker module, its arguments, the launch's output folder, the folder for references)``."""
    from hf_neuroformer.decoding import DecodingTarget, build_decoding_datasets, target_dicts
    from hf_neuroformer.io import load_recording

    tmp_path = tmp_path_factory.mktemp("ddp_decoding")
    spec = importlib.util.spec_from_file_location("ddp_decoding_worker", HERE / "ddp_decoding_worker.py")
    worker = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(worker)
    rec = load_recording(shared_data(A2929), epoch="wake").restrict(670.0, 850.0)
    pre = tmp_path / "pre"
    # no test generation: the decoder reads the pretrained folder's weights, config and tokenizer only
    train(rec, pre, nf.NeuroformerConfig(**DECODING_TINY), TrainingConfig(max_steps=3, batch_size=16, generate_test=False),
          progress=False, write_figures=False)
    targets = [DecodingTarget("ry", "circular"), DecodingTarget("x", "regression", weight=0.5)]
    dsd, report = build_decoding_datasets(rec, nf.NeuroformerTokenizer.from_pretrained(pre),
                                          nf.NeuroformerConfig.from_pretrained(pre), None, targets)
    ds = dsd["train"].select(range(200, 224))
    assert len(set(len(x) for x in ds["input_ids"])) > 3  # windows of different spike counts
    ds.save_to_disk(str(tmp_path / "ds"))
    (tmp_path / "targets.json").write_text(json.dumps(target_dicts(targets, report)))
    args = [str(pre), str(tmp_path / "ds"), str(tmp_path / "targets.json")]
    out = tmp_path / "ddp"
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(HERE / "ddp_decoding_worker.py"), *args, str(out), "4", "3"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return worker, args, out, tmp_path


def test_decoder_auxiliary_loss_two_processes_with_accumulation_equal_one_batch(decoding_two_ranks):
    """One SGD step of the decoder with the auxiliary next-spike loss (decoding_generative_loss_weight
    0.5): two processes, each with micro-batches of 4 windows and gradient_accumulation_steps=3,
    against one process with the same 24 windows in one batch. DecodingTrainer sums the step's
    next-spike targets over micro-batches and processes (average_tokens_across_devices), so the
    six micro-batches, whose windows hold different numbers of spikes, add up to the batch's
    per-token mean; weighting each micro-batch's own mean by its share of the windows (before
    9a0f689) moved the weights by up to 0.0045 from the one-batch step."""
    worker, args, out, tmp_path = decoding_two_ranks
    ddp = json.loads((out / "result.json").read_text())
    assert ddp["world_size"] == 2
    w2 = load_file(out / "weights.safetensors")
    before = load_file(Path(args[0]) / "model.safetensors")  # the backbone and its next-spike heads, as loaded
    model, trainer = worker.one_step(*args, tmp_path / "single", 24, 1)
    w1 = {k: v.detach() for k, v in model.named_parameters()}
    moved = max((w1[k] - before[k]).abs().max().item() for k in before)
    diff = max((w1[k] - w2[k]).abs().max().item() for k in w1)
    print(f"moved {moved:.3g}; max |param 1 process, 1 batch - 2 processes x 3 micro-batches|: {diff:.3g}")
    assert moved > 1e-3
    assert diff < 1e-5, diff
    assert ddp["loss"] == pytest.approx(trainer.state.log_history[0]["loss"], rel=1e-4)


def test_decoder_validation_figures_of_two_processes_are_those_of_one_with_no_window_counted_twice(
        decoding_two_ranks):
    """Break test: two processes evaluating 24 windows in batches of 5 each: the second process's last
    batch is filled with windows from the start of the split. The predictions and decoding metrics
    (gathered per window, the filling dropped) were those of one process, but the validation loss was
    Trainer's mean of batch losses, in which the filling windows counted twice and each batch weighed by
    its windows, not its labels and next-spike tokens. Now the loss, metrics and predictions of the two
    processes equal those of one process, and the loss is that of the 24 windows as one batch."""
    worker, args, out, tmp_path = decoding_two_ranks
    got = json.loads((out / "eval.json").read_text())
    metrics, preds, model, trainer = worker.evaluated(*args, tmp_path / "single_eval")
    assert np.asarray(got["predictions"]).shape == preds.shape == (24, 2)
    np.testing.assert_allclose(got["predictions"], preds, rtol=1e-5, atol=1e-6)
    assert got["metrics"]["eval_ry/n"] == metrics["eval_ry/n"] == 24
    scores = [k for k in metrics if "/" in k or k == "eval_loss"]  # not the timings
    assert len(scores) > 5
    for key in scores:
        assert got["metrics"][key] == pytest.approx(metrics[key], rel=1e-5, abs=1e-5), key  # float32 sums in other orders
    model.eval()
    ds = trainer.eval_dataset
    with torch.no_grad():
        whole = model(**trainer.data_collator([ds[i] for i in range(len(ds))])).loss.item()
    assert metrics["eval_loss"] == pytest.approx(whole, rel=1e-5)
    assert got["metrics"]["eval_loss"] == pytest.approx(whole, rel=1e-5)


def test_weight_average_of_two_processes_is_the_same_on_both_and_saved_right(decoding_two_ranks):
    """``ema_decay`` under two processes (never run before): 3 steps of the same launch. DDP keeps the
    weights equal, so each process's average is the same (bitwise here), and the average is the
    bias-corrected EMA of the weights after steps 1..t: (d theta_1 + theta_2) / (1 + d) in the
    checkpoint rank 0 saved at step 2 (model.safetensors, and weight_average.safetensors beside it with
    the training weights), and (d**2 theta_1 + d theta_2 + theta_3) / (1 + d + d**2) in the model after
    training, computed here from the training weights each process recorded."""
    from hf_neuroformer.finetuning import WEIGHT_AVERAGE_FILE

    _, _, out, _ = decoding_two_ranks
    ranks = [load_file(out / "ema" / f"rank{r}.safetensors") for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys()
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0])  # training weights and averages
    got = ranks[0]
    names = [k.removeprefix("final.") for k in got if k.startswith("final.")]
    theta = {t: {n: got[f"theta.{t}.{n}"] for n in names} for t in (1, 2, 3)}
    d = 0.5
    average = {2: {n: (d * theta[1][n] + theta[2][n]) / (1 + d) for n in names},
               3: {n: (d * d * theta[1][n] + d * theta[2][n] + theta[3][n]) / (1 + d + d * d) for n in names}}
    assert max((average[3][n] - theta[3][n]).abs().max().item() for n in names) > 1e-3  # not the last weights
    for n in names:
        torch.testing.assert_close(got[f"final.{n}"], average[3][n], rtol=1e-5, atol=1e-6)
    saved = load_file(out / "ema" / "checkpoint-2" / "model.safetensors")
    state = load_file(out / "ema" / "checkpoint-2" / WEIGHT_AVERAGE_FILE)
    assert set(names) <= set(saved)
    for n in names:
        torch.testing.assert_close(saved[n], average[2][n], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(state[f"average.{n}"], average[2][n], rtol=1e-5, atol=1e-6)
        assert torch.equal(state[f"training.{n}"], theta[2][n])


def test_the_cli_under_torchrun_says_once_that_a_resume_has_nothing_to_do(tmp_path):
    """`torchrun --nproc_per_node 2 -m hf_neuroformer.cli train --resume` of a finished run: every rank
    found nothing to do and printed "resume: nothing to do" (and the --config training fields that
    differ from the checkpoint's) once per process; now rank 0 alone says it."""
    worker = _worker_module()
    out = tmp_path / "out"
    train(nf.simulate_coupled_network(n_units=5, duration=20.0, seed=7).recording, out,
          nf.NeuroformerConfig(**worker.TINY), TrainingConfig(max_steps=2, batch_size=16, save_every=2), progress=False,
          write_figures=False)
    (tmp_path / "c.yaml").write_text("training:\n  eval_every: 5\n")
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "hf_neuroformer.cli", "train", "--config", str(tmp_path / "c.yaml"), "--output-dir", str(out),
           "--resume"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    for start in ("[neuroformer] resume: nothing to do", "[neuroformer] resume: --config"):
        assert sum(line.startswith(start) for line in lines) == 1, proc.stdout


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_workers_end_when_their_torchrun_launcher_is_killed(tmp_path):
    """torchrun starts its workers in sessions of their own: a launcher killed outright (kill -9, the
    out-of-memory killer) left both ranks of `neuroformer train` training on, in step over gloo, and
    writing into --output-dir with nobody waiting for them (checked: still training 10 s after, step
    525 of an unbounded run). Each worker now ends within a second or two of its launcher."""
    import signal
    import time

    if not Path("/proc/self/task").is_dir():
        pytest.skip("reads the workers' processes from /proc (Linux)")
    # unbuffered: a worker ends with os._exit, which drops what its stdout buffer held (a rank 1 line)
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1",
           "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "log.txt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "hf_neuroformer.cli", "train", "--output-dir", str(tmp_path / "out"), "--max-steps", "1000000",
           "--batch-size", "8"]
    with open(log, "w") as f:
        launcher = subprocess.Popen(cmd, env=env, stdout=f, stderr=subprocess.STDOUT)
    workers = []
    try:
        deadline = time.time() + 180
        while "[neuroformer] training on 2 processes" not in log.read_text():  # both ranks are in train()
            assert launcher.poll() is None and time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        workers = [int(p) for t in Path(f"/proc/{launcher.pid}/task").iterdir()
                   for p in (t / "children").read_text().split()]
        assert len(workers) == 2 and all(map(_alive, workers)), workers
        launcher.send_signal(signal.SIGKILL)
        launcher.wait()
        deadline = time.time() + 30
        while any(map(_alive, workers)) and time.time() < deadline:
            time.sleep(0.2)
        assert not any(map(_alive, workers)), log.read_text()[-3000:]
        # a rank may end first on its partner's closed gloo connection, before its own check
        assert re.search(rf"\[neuroformer\] rank [01]: the launcher \(process {launcher.pid}\) is gone; this worker "
                         "ends too", log.read_text()), log.read_text()[-3000:]
        # the README's command (the built-in recording): its 'config:' and 'data:' lines came once per rank, and
        # nothing said that two processes trained (test_the_cli_under_torchrun_says_records_and_warns_once_...)
        lines = log.read_text().splitlines()
        for start in ("[neuroformer] config:", "[neuroformer] data:"):
            assert sum(line.startswith(start) for line in lines) == 1, log.read_text()[-3000:]
        _assert_says_two_processes_trained(lines, log.read_text()[-3000:], whole_line=False)
    finally:
        launcher.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
