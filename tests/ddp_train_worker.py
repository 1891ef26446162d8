"""One rank of the two-process CPU training test (tests/test_distributed.py), started by torchrun.

    ACCELERATE_USE_CPU=1 torchrun --standalone --nproc_per_node 2 tests/ddp_train_worker.py DATA OUT REPORT_DIR

DATA is the A2929 NWB file, or a directory written by ``prepare_windows`` (then the windows are
streamed and divided between the ranks with ``split_dataset_by_node``). Environment: WORKER_TRAINING
(JSON overrides of TRAINING), WORKER_CONTRASTIVE=1 (head direction as a modality, contrastive loss
on), WORKER_EXTRA_RUNS (further runs taken first in the same two processes; see ``main``).
Trains a tiny model on the first 150 s of the A2929 wake epoch through the unchanged
``hf_neuroformer.training.train`` and writes, per rank, ``REPORT_DIR/rank{r}.json`` (world size,
step losses, a SHA-256 of the final weights, which ranks called ``save_atomically``) and
``REPORT_DIR/rank{r}.safetensors`` (the final weights). An extra run with ``"infonce"`` instead
takes one contrastive forward and backward under DDP (:func:`infonce_gradients`); one with
``"join"`` several, uneven between the ranks, under DDP's ``join()`` (:func:`infonce_under_join`).
"""

import hashlib
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file

import hf_neuroformer.training as training
from hf_neuroformer import NeuroformerConfig, NeuroformerForPreTraining, NeuroformerTokenizer
from hf_neuroformer.io import load_recording
from hf_neuroformer.windows import NeuroformerCollator, build_window_datasets

# no dropout: the two-process run must then equal a one-process run with the same global batch
TINY = dict(current_window=0.1, past_window=0.3, dt_resolution=0.01, max_window_length=32, max_past_length=64,
            hidden_size=32, num_attention_heads=2, intermediate_size=64, split_block_length=5.0, hidden_dropout=0.0)
TRAINING = dict(max_steps=8, batch_size=32, learning_rate=3e-3, warmup_ratio=0.0, eval_every=4, save_every=4,
                generation_batch_size=512, seed=3)


def recording(data, span=(0.0, 150.0)):
    """The first 150 s of the A2929 wake epoch (``span``: from, to, s after its start)."""
    rec = load_recording(data, epoch="wake")
    return rec.restrict(rec.support[0, 0] + span[0], rec.support[0, 0] + span[1])


def contrastive_config(**kw):
    """TINY with head direction as a modality and the contrastive loss on."""
    return NeuroformerConfig(**TINY, contrastive_loss_weight=0.5, modalities=[dict(
        name="hd", source="behaviour:ry", kind="continuous", normalization="circular", window=[-0.1, 0.1],
        bin_size=0.02)], **kw)


def infonce_batch(data, rows, **config):
    """``(config, model, batch)``: a model of :func:`contrastive_config` (``config``: its keyword
    arguments; seed 0) and the collated
    train windows ``rows`` (indices) of 660-680 s of the wake epoch, around the start of head
    tracking at 670.6 s: train windows 0-49 hold no head direction, 50-93 do."""
    rec = recording(data, (60.0, 80.0))
    cfg = contrastive_config(**config)
    tok = NeuroformerTokenizer.from_config(cfg)
    tok.add_units(rec)
    cfg.vocab_size = len(tok)
    train_ds = build_window_datasets(rec, tok, cfg)[0]["train"].select(rows)[:]
    torch.manual_seed(0)
    model = NeuroformerForPreTraining(cfg).train()
    batch = NeuroformerCollator(modalities=cfg.modalities)([dict(zip(train_ds, v)) for v in zip(*train_ds.values())])
    for key in ("labels", "dt_labels"):
        batch.pop(key)
    return cfg, model, batch


def infonce_gradients(data, report_dir, suffix, shares, compile_head=False):
    """One contrastive forward and backward of the windows ``shares[rank]`` (train window indices of
    :func:`infonce_batch`) under DDP (gloo): the contrastive loss and the gradients DDP leaves on the
    parameters, in ``REPORT_DIR/rank{r}{suffix}.json`` and ``.safetensors``. ``compile_head``: the
    contrastive head compiled in place (``torch.compile``, backend ``eager``)."""
    rank = int(os.environ["RANK"])
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    _, model, batch = infonce_batch(data, shares[rank])
    if compile_head:
        model.contrastive.compile(backend="eager")
    ddp = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    loss = ddp(**batch, output_contrastive_loss=True).contrastive_loss
    loss.backward()
    grads = {n: p.grad.contiguous() for n, p in model.named_parameters() if p.grad is not None}
    save_file(grads, str(Path(report_dir) / f"rank{rank}{suffix}.safetensors"))
    (Path(report_dir) / f"rank{rank}{suffix}.json").write_text(json.dumps(
        {"rank": rank, "error": None, "world_size": dist.get_world_size(), "loss": float(loss.detach())}))


def infonce_under_join(data, report_dir, suffix, batches, gather):
    """Contrastive forwards and backwards of the windows ``batches[rank]`` (a list of batches, each a
    list of train window indices of :func:`infonce_batch`; the ranks may hold different numbers of
    batches) under DDP (gloo) inside ``ddp.join()``, with ``contrastive_gather_across_processes =
    gather``: per rank, ``REPORT_DIR/rank{r}{suffix}.json`` (the contrastive loss of each batch, or the
    ``error`` a forward raised) and ``.safetensors`` (the gradients DDP left on the parameters after
    the rank's last batch; they are zeroed before each)."""
    from hf_neuroformer.modeling_neuroformer import ContrastiveGatherUnderJoinError

    rank = int(os.environ["RANK"])
    if not dist.is_initialized():
        dist.init_process_group("gloo")
    _, model, _ = infonce_batch(data, batches[rank][0], contrastive_gather_across_processes=gather)
    ddp = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
    report = {"rank": rank, "error": None, "world_size": dist.get_world_size(), "losses": []}
    try:
        with ddp.join():
            for rows in batches[rank]:
                model.zero_grad()
                batch = infonce_batch(data, rows)[2]
                loss = ddp(**batch, output_contrastive_loss=True).contrastive_loss
                loss.backward()
                report["losses"].append(float(loss.detach()))
    except ContrastiveGatherUnderJoinError as err:
        report["error"] = str(err)
    grads = {n: p.grad.contiguous() for n, p in model.named_parameters() if p.grad is not None}
    save_file(grads, str(Path(report_dir) / f"rank{rank}{suffix}.safetensors"))
    (Path(report_dir) / f"rank{rank}{suffix}.json").write_text(json.dumps(report))


def run(data, out, report_dir, suffix="", overrides=None, contrastive=False, catch=False, span=(0.0, 150.0),
        config=None):
    """One ``train()`` of DATA into OUT, reported in ``REPORT_DIR/rank{r}{suffix}.json`` (and the final
    weights in ``.safetensors``). ``overrides``: of TRAINING; ``contrastive``: head direction as a
    modality with the contrastive loss on (micro-batches too small for InfoNCE then skip it on some
    ranks); ``catch``: a ValueError of train() is reported as ``error`` instead of raised; ``span``:
    of :func:`recording`; ``config``: keyword arguments of :func:`contrastive_config`."""
    report_dir = Path(report_dir)
    rank = int(os.environ["RANK"])
    saves = []
    real_save = training.save_atomically

    def spy(output_dir, *args, **kwargs):  # which ranks write the model checkpoint
        saves.append(str(output_dir))
        return real_save(output_dir, *args, **kwargs)

    training.save_atomically = spy
    losses, final = [], {}
    source = data if Path(data).is_dir() else recording(data, span)
    tc = training.TrainingConfig(**{**TRAINING, **(overrides or {})})
    cfg = contrastive_config(**(config or {})) if contrastive else NeuroformerConfig(**TINY)
    report, metrics = {"rank": rank, "out": str(out), "error": None}, None
    try:
        # no figures: no test reads them, and drawing them took about half of a run's time
        metrics = training.train(source, out, cfg, tc, progress=False, write_figures=False,
                                 on_step_end=lambda step, loss: losses.append(loss),
                                 on_train_end=lambda model: final.update(model.state_dict()))
    except ValueError as err:
        if not catch:
            raise
        report["error"] = str(err)
    finally:
        training.save_atomically = real_save
    # train() has set the process group up
    report.update(world_size=dist.get_world_size() if dist.is_initialized() else 1,
                  backend=dist.get_backend() if dist.is_initialized() else None)
    if report["error"] is not None:
        (report_dir / f"rank{rank}{suffix}.json").write_text(json.dumps(report))
        return
    state = {k: v.detach().contiguous().clone() for k, v in sorted(final.items())}
    digest = hashlib.sha256()
    for k, v in state.items():
        digest.update(k.encode())
        digest.update(v.numpy().tobytes())
    save_file(state, str(report_dir / f"rank{rank}{suffix}.safetensors"))
    report.update({"losses": losses, "sha256": digest.hexdigest(), "save_atomically_calls": saves,
                   "threads": torch.get_num_threads(), "metrics": metrics})
    (report_dir / f"rank{rank}{suffix}.json").write_text(json.dumps(report))


def main(data, out, report_dir):
    # WORKER_EXTRA_RUNS: a JSON list of runs taken first, in the same two processes (a launch and its
    # imports cost more than a tiny run): {"name", "data", "training" (overrides), "contrastive", "span",
    # "config" (of contrastive_config)}, each into OUT_<name>, reported as rank{r}_<name>.json; a ValueError of
    # train() is reported as "error"; {"name", "data", "infonce": [rank 0's windows, rank 1's], "compile_head"}:
    # infonce_gradients, reported as rank{r}_<name>; {"name", "data", "join": [rank 0's batches, rank 1's],
    # "gather"}: infonce_under_join, reported as rank{r}_<name>
    for extra in json.loads(os.environ.get("WORKER_EXTRA_RUNS", "[]")):
        if "join" in extra:
            infonce_under_join(extra["data"], report_dir, f"_{extra['name']}", extra["join"], extra["gather"])
            continue
        if "infonce" in extra:
            infonce_gradients(extra["data"], report_dir, f"_{extra['name']}", extra["infonce"],
                              extra.get("compile_head", False))
            continue
        run(extra["data"], f"{out}_{extra['name']}", report_dir, f"_{extra['name']}", extra.get("training"),
            extra.get("contrastive", False), catch=True, span=extra.get("span", (0.0, 150.0)),
            config=extra.get("config"))
    # WORKER_TRAINING: JSON overrides of TRAINING; WORKER_CONTRASTIVE=1: the contrastive modality
    run(data, out, report_dir, "", json.loads(os.environ.get("WORKER_TRAINING", "{}")),
        bool(os.environ.get("WORKER_CONTRASTIVE")))


if __name__ == "__main__":
    main(*sys.argv[1:4])
    # Everything is written: leave the objects alive now to the exit instead of the collector.
    # Python's final garbage collection over torch's and transformers' objects took 2-3 s per
    # rank (seconds in which torchrun waits for the exit); the process still exits normally (its
    # atexit handlers run, its files are closed, exit status 0).
    import gc

    gc.freeze()
