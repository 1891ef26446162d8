"""One SGD step of a NeuroformerForBehaviorDecoding with the auxiliary next-spike loss, through
build_trainer (DecodingTrainer). Run under torchrun by tests/test_distributed.py, and imported
there for the one-process reference:

    python -m torch.distributed.run --standalone --nproc_per_node 2 ddp_decoding_worker.py \
        PRETRAINED DATASET TARGETS_JSON OUT BATCH_SIZE GRAD_ACCUM

Rank 0 writes OUT/weights.safetensors and OUT/result.json (world size, first logged loss), and
OUT/eval.json (:func:`evaluated`: Trainer.evaluate's metrics and the predictions). Then, in
the same launch, :func:`averaged_steps` (``ema_decay``) trains 3 more steps into OUT/ema, where each
rank writes ``rank<R>.safetensors`` (its training weights after each step and its final, averaged,
weights) and Trainer's checkpoint-2 holds the average that rank 0 saved."""

import json
import os
import sys
from pathlib import Path

import torch


def _decoder(pretrained, targets_json):
    """The decoder (dropout 0, heads initialised from seed 0, auxiliary weight 0.5)."""
    import hf_neuroformer as nf

    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(
        pretrained, decoding_targets=json.loads(Path(targets_json).read_text()), hidden_dropout=0.0,
        decoding_generative_loss_weight=0.5)
    torch.manual_seed(0)
    for head in model.decoding_heads:
        for p in head.parameters():
            torch.nn.init.normal_(p, 0, 0.1)
    return model


def one_step(pretrained, dataset, targets_json, output_dir, batch_size, gradient_accumulation_steps):
    """The decoder (:func:`_decoder`) after one SGD step (lr 1, no clipping, no weight decay) on the
    dataset at ``dataset``; (model, trainer)."""
    from datasets import load_from_disk

    from hf_neuroformer.finetuning import build_trainer

    model = _decoder(pretrained, targets_json)
    trainer = build_trainer(model, load_from_disk(str(dataset)), None, output_dir,
                            per_device_train_batch_size=batch_size,
                            gradient_accumulation_steps=gradient_accumulation_steps, max_steps=1, learning_rate=1.0,
                            optim="sgd", lr_scheduler_type="constant", max_grad_norm=0.0, weight_decay=0.0, seed=0,
                            save_strategy="no", logging_steps=1)
    trainer.train()
    return model, trainer


def averaged_steps(pretrained, dataset, targets_json, output_dir):
    """3 SGD steps (lr 0.1) of the decoder with ``ema_decay=0.5``, 4 windows per process, a checkpoint
    at step 2; ``{"theta.<t>.<name>": training weights after step t, "final.<name>": the model's
    weights after training}`` of this process."""
    from datasets import load_from_disk
    from transformers import TrainerCallback

    from hf_neuroformer.finetuning import build_trainer

    model = _decoder(pretrained, targets_json)
    out = {}

    class Snapshot(TrainerCallback):  # the optimizer's weights, before the step's average is swapped in
        def on_optimizer_step(self, args, state, control, model=None, **kwargs):
            out.update({f"theta.{state.global_step + 1}.{k}": v.detach().clone() for k, v in model.named_parameters()})

    trainer = build_trainer(model, load_from_disk(str(dataset)), None, output_dir, per_device_train_batch_size=4,
                            max_steps=3, learning_rate=0.1, optim="sgd", lr_scheduler_type="constant",
                            max_grad_norm=0.0, weight_decay=0.0, seed=0, ema_decay=0.5, save_strategy="steps",
                            save_steps=2, save_only_model=False)
    trainer.add_callback(Snapshot())
    trainer.train()
    out.update({f"final.{k}": v.detach().clone() for k, v in model.named_parameters()})
    return out


def evaluated(pretrained, dataset, targets_json, output_dir, batch_size=5):
    """The decoder (:func:`_decoder`) evaluated on the dataset at ``dataset`` in batches of
    ``batch_size`` windows per process: ``(Trainer.evaluate's metrics, Trainer.predict's predictions
    (n_windows, n_targets), the model, the trainer)``."""
    from datasets import load_from_disk

    from hf_neuroformer.finetuning import build_trainer, gathered_outputs

    model = _decoder(pretrained, targets_json)
    ds = load_from_disk(str(dataset))
    trainer = build_trainer(model, ds, ds, output_dir, per_device_eval_batch_size=batch_size, save_strategy="no")
    metrics = trainer.evaluate()
    out = trainer.predict(ds)
    assert isinstance(out.predictions, tuple) and len(out.predictions) == 2, "predictions, logits: no loss_terms"
    return metrics, gathered_outputs(out.predictions), model, trainer


if __name__ == "__main__":
    from safetensors.torch import save_file

    pre, ds, tj, out, bs, ga = sys.argv[1:7]
    model, trainer = one_step(pre, ds, tj, out, int(bs), int(ga))
    if int(os.environ.get("RANK", "0")) == 0:
        save_file({k: v.detach().contiguous() for k, v in model.named_parameters()}, str(Path(out) / "weights.safetensors"))
        (Path(out) / "result.json").write_text(json.dumps(
            {"world_size": trainer.args.world_size, "loss": trainer.state.log_history[0]["loss"]}))
    # the validation figures of 24 windows in batches of 5 per process: the second process's last batch is
    # filled with windows from the start
    metrics, preds, _, _ = evaluated(pre, ds, tj, Path(out) / "eval")
    if int(os.environ.get("RANK", "0")) == 0:
        (Path(out) / "eval.json").write_text(json.dumps({"metrics": metrics, "predictions": preds.tolist()}))
    ema = averaged_steps(pre, ds, tj, Path(out) / "ema")
    save_file({k: v.contiguous() for k, v in ema.items()},
              str(Path(out) / "ema" / f"rank{int(os.environ.get('RANK', '0'))}.safetensors"))
    # Trainer leaves the gloo process group up; left to the interpreter's exit, its threads once
    # aborted rank 0 ("terminate called without an active exception", SIGABRT) under a loaded
    # machine after everything was written. Taking the group down on both ranks (barrier, then
    # destroy_process_group) still let rank 1 abort the same way once in about six full-suite runs
    # (2026-12-06). Both ranks now meet at a barrier once the results are written and leave without
    # the interpreter's teardown of torch's C++ threads: what this test checks is on disk by then.
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
