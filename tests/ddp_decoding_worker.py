"""One SGD step of a NeuroformerForBehaviorDecoding with the auxiliary next-spike loss, through
build_trainer (DecodingTrainer). Run under torchrun by tests/test_distributed.py, and imported
there for the one-process reference:

    python -m torch.distributed.run --standalone --nproc_per_node 2 ddp_decoding_worker.py \
        PRETRAINED DATASET TARGETS_JSON OUT BATCH_SIZE GRAD_ACCUM

Rank 0 writes OUT/weights.safetensors and OUT/result.json (world size, first logged loss)."""

import json
import os
import sys
from pathlib import Path

import torch


def one_step(pretrained, dataset, targets_json, output_dir, batch_size, gradient_accumulation_steps):
    """The decoder (dropout 0, heads initialised from seed 0, auxiliary weight 0.5) after one SGD step
    (lr 1, no clipping, no weight decay) on the dataset at ``dataset``; (model, trainer)."""
    from datasets import load_from_disk

    import hf_neuroformer as nf
    from hf_neuroformer.finetuning import build_trainer

    model = nf.NeuroformerForBehaviorDecoding.from_pretrained(
        pretrained, decoding_targets=json.loads(Path(targets_json).read_text()), hidden_dropout=0.0,
        decoding_generative_loss_weight=0.5)
    torch.manual_seed(0)
    for head in model.decoding_heads:
        for p in head.parameters():
            torch.nn.init.normal_(p, 0, 0.1)
    trainer = build_trainer(model, load_from_disk(str(dataset)), None, output_dir,
                            per_device_train_batch_size=batch_size,
                            gradient_accumulation_steps=gradient_accumulation_steps, max_steps=1, learning_rate=1.0,
                            optim="sgd", lr_scheduler_type="constant", max_grad_norm=0.0, weight_decay=0.0, seed=0,
                            save_strategy="no", logging_steps=1)
    trainer.train()
    return model, trainer


if __name__ == "__main__":
    from safetensors.torch import save_file

    pre, ds, tj, out, bs, ga = sys.argv[1:7]
    model, trainer = one_step(pre, ds, tj, out, int(bs), int(ga))
    if int(os.environ.get("RANK", "0")) == 0:
        save_file({k: v.detach().contiguous() for k, v in model.named_parameters()}, str(Path(out) / "weights.safetensors"))
        (Path(out) / "result.json").write_text(json.dumps(
            {"world_size": trainer.args.world_size, "loss": trainer.state.log_history[0]["loss"]}))
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
