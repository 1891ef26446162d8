"""Generative pretraining with Accelerate: AdamW, warm-up + cosine schedule, gradient clipping,
validation-based checkpoint selection, test metrics written once at the end.

Trap list (GUIDE sec. 5) handled here: training windows are reshuffled every epoch (trap 8); the
checkpoint is chosen on the validation split and the test split is scored once, after training
(trap 7); splits are contiguous blocks with gaps (trap 6, see :mod:`hf_neuroformer.windows`);
truncated spikes are counted and reported (trap 10).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch

from .configuration_neuroformer import NeuroformerConfig
from .generation import generate_spikes
from .metrics import TokenBaselines, compare_recordings
from .modeling_neuroformer import NeuroformerForPreTraining
from .recording import SpikeRecording, check_not_empty
from .tokenization_neuroformer import NeuroformerTokenizer
from .windows import SPLITS, NeuroformerCollator, build_window_datasets, window_starts_for_split

MODEL_FILES = ("config.json", "model.safetensors", "metrics.json", "vocab.json", "tokenizer_config.json",
               "splits.json", "training_log.json", "training_config.json")


@dataclass
class TrainingConfig:
    """Optimisation and evaluation settings (the ``training:`` section of a YAML config).

    Attributes:
        learning_rate: peak AdamW learning rate.
        weight_decay: AdamW weight decay.
        batch_size: windows per optimisation step.
        max_epochs: passes over the training windows (the budget is whichever of ``max_epochs``
            and ``max_steps`` ends first).
        max_steps: cap on optimisation steps.
        warmup_ratio: fraction of the steps with linear warm-up before the cosine decay.
        max_grad_norm: gradient clipping norm.
        eval_every: validate every this many steps (``None``: once per epoch).
        mixed_precision: ``"no"``, ``"bf16"`` or ``"fp16"`` (Accelerate).
        seed: seed of initialisation, shuffling and sampling.
        generation_temperature, generation_top_p: sampling for the test-split generation.
        generation_batch_size: windows generated in parallel.
        eval_batch_size: windows per evaluation batch.
    """

    learning_rate: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 32
    max_epochs: int = 12
    max_steps: int = 3000
    warmup_ratio: float = 0.05
    max_grad_norm: float = 1.0
    eval_every: Optional[int] = None
    mixed_precision: str = "no"
    seed: int = 0
    generation_temperature: float = 1.0
    generation_top_p: float = 1.0
    generation_batch_size: int = 256
    eval_batch_size: int = 128

    def __post_init__(self):
        if self.mixed_precision not in ("no", "bf16", "fp16"):
            raise ValueError(f"mixed_precision: expected 'no', 'bf16' or 'fp16', got {self.mixed_precision!r}")
        for name in ("learning_rate", "batch_size", "max_epochs", "max_steps", "eval_batch_size", "generation_batch_size"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"training.{name}: expected a positive number, got {v!r}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"training.warmup_ratio: expected a value in [0, 1), got {self.warmup_ratio}")


def load_yaml_config(path) -> Tuple[NeuroformerConfig, TrainingConfig]:
    """Read a YAML config: top-level keys are :class:`NeuroformerConfig` fields, the optional
    ``training:`` mapping holds :class:`TrainingConfig` fields.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: naming any key that is not a known field.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--config: no such file {str(path)!r}")
    with open(path) as f:
        raw = yaml.safe_load(f) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of config fields, got {type(raw).__name__}")
    train_raw = raw.pop("training", {}) or {}
    import inspect

    # only NeuroformerConfig's own fields (vocab_size comes from the tokenizer, not the file)
    known_model = {p for p in inspect.signature(NeuroformerConfig.__init__).parameters
                   if p not in ("self", "kwargs", "vocab_size")}
    unknown = sorted(set(raw) - known_model)
    if unknown:
        raise ValueError(f"{path}: unknown NeuroformerConfig field(s) {unknown}")
    known_train = {f.name for f in dataclasses.fields(TrainingConfig)}
    unknown = sorted(set(train_raw) - known_train)
    if unknown:
        raise ValueError(f"{path}: unknown training field(s) {unknown}; known: {sorted(known_train)}")
    return NeuroformerConfig(**raw), TrainingConfig(**train_raw)


def check_output_dir(output_dir, overwrite: bool = False) -> Path:
    """Refuse to write over a directory that already holds a model, unless ``overwrite``.

    Raises:
        FileExistsError: naming the directory, the files found and the ``--overwrite`` flag.
    """
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output_dir: {str(out)!r} exists and is not a directory")
    found = [f for f in MODEL_FILES if (out / f).exists()]
    if found and not overwrite:
        raise FileExistsError(
            f"output_dir: {str(out)!r} already holds a model ({', '.join(found)}); choose another directory "
            "or pass --overwrite (overwrite=True) to replace it"
        )
    return out


def save_atomically(output_dir, model, tokenizer, extra_json: Dict[str, object], overwrite: bool = False) -> None:
    """Write the model, tokenizer and JSON files into ``output_dir`` without leaving a half-written
    checkpoint: everything is written to a temporary folder beside it, then moved file by file
    with ``os.replace``."""
    out = check_output_dir(output_dir, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-save-", dir=out))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        for name, obj in extra_json.items():
            with open(tmp / name, "w") as f:
                json.dump(obj, f, indent=2, default=_json_default)
        for p in tmp.iterdir():
            os.replace(p, out / p.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


@torch.no_grad()
def evaluate_token_nll(model, dataset, collator, batch_size: int = 128, device=None) -> Dict[str, float]:
    """Mean next-spike NLL (nats per spike token) of ``model`` on a window dataset.

    Scored targets are the spike tokens (not BOS/EOS): ``id_nll`` uses the full softmax over the
    vocabulary, ``dt_nll`` the dt head. ``loss`` is the training objective (EOS included).
    """
    model.eval()
    device = device or next(model.parameters()).device
    s_id = s_dt = s_loss = 0.0
    n_spk = n_lab = 0
    for i in range(0, len(dataset), batch_size):
        rows = dataset[i: i + batch_size]
        b = collator([dict(zip(rows, vals)) for vals in zip(*rows.values())])
        b = {k: v.to(device) for k, v in b.items()}
        out = model(**b)
        lg = torch.log_softmax(out.logits[:, :-1].float(), -1)
        dlg = torch.log_softmax(out.dt_logits[:, :-1].float(), -1)
        lab, dlab = b["labels"][:, 1:], b["dt_labels"][:, 1:]
        spike = dlab != -100
        id_lp = lg.gather(-1, lab.clamp(min=0)[..., None])[..., 0]  # log p(next unit id)
        s_id -= id_lp[spike].sum().item()
        s_dt -= dlg.gather(-1, dlab.clamp(min=0)[..., None])[..., 0][spike].sum().item()
        n_spk += int(spike.sum())
        valid = lab != -100
        s_loss -= id_lp[valid].sum().item()
        n_lab += int(valid.sum())
    if n_spk == 0:  # nothing to score: NaN, never a perfect-looking 0
        nan = float("nan")
        return {"id_nll": nan, "dt_nll": nan, "loss": nan, "n_spike_tokens": 0}
    return {
        "id_nll": s_id / n_spk,
        "dt_nll": s_dt / n_spk,
        "loss": s_loss / max(n_lab, 1) + model.config.dt_loss_weight * s_dt / n_spk,
        "n_spike_tokens": n_spk,
    }


def train(
    recording: SpikeRecording,
    output_dir,
    config: Optional[NeuroformerConfig] = None,
    training: Optional[TrainingConfig] = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Dict[str, object]:
    """Pretrain a Neuroformer on ``recording`` and write it with its test metrics.

    Args:
        recording: the spikes (one session).
        output_dir: gets ``config.json``, ``model.safetensors``, tokenizer files,
            ``metrics.json``, ``splits.json`` and ``training_log.json``.
        config: model and window settings (default :class:`NeuroformerConfig`).
        training: optimisation settings (default :class:`TrainingConfig`).
        overwrite: replace a model already in ``output_dir``.
        progress: show tqdm bars.

    Returns:
        The metrics dict also written to ``metrics.json`` (keys ``test/...``, ``validation/...``).

    Raises:
        FileExistsError: if ``output_dir`` holds a model and ``overwrite`` is False (checked
            before any training).
        RecordingValidationError: if the recording has no spikes.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm
    from transformers import get_cosine_schedule_with_warmup

    config = copy.deepcopy(config) if config is not None else NeuroformerConfig()
    training = training or TrainingConfig()
    check_output_dir(output_dir, overwrite)
    check_not_empty(recording)
    set_seed(training.seed)
    from accelerate.state import AcceleratorState

    if AcceleratorState._shared_state and not AcceleratorState().distributed_type.name.startswith("MULTI"):
        # a second train() in one process may ask for another precision; the single-process
        # state can be rebuilt (a distributed one belongs to the launcher and is kept)
        AcceleratorState._reset_state()
    accelerator = Accelerator(mixed_precision=training.mixed_precision)
    t_start = time.time()

    tokenizer = NeuroformerTokenizer.from_config(config)
    tokenizer.add_units(recording)
    config.vocab_size = len(tokenizer)
    dsets, plan = build_window_datasets(recording, tokenizer, config)
    collator = NeuroformerCollator(config.pad_token_id, config.bos_token_id, config.eos_token_id)
    trunc = {s: int(np.sum(dsets[s]["n_truncated"])) for s in SPLITS}
    ptrunc = {s: int(np.sum(dsets[s]["n_past_truncated"])) for s in SPLITS}
    n_spikes = {s: int(np.sum(dsets[s]["n_spikes"])) for s in SPLITS}
    if accelerator.is_main_process:
        for s in SPLITS:
            if trunc[s]:
                print(f"[neuroformer] {s}: {trunc[s]} of {n_spikes[s]} current-window spikes truncated "
                      f"(windows longer than max_window_length={config.max_window_length} tokens)")

    model = NeuroformerForPreTraining(config)
    train_ds = dsets["train"]
    has_val = len(dsets["validation"]) > 0
    has_test = len(dsets["test"]) > 0
    if len(train_ds) == 0:
        raise ValueError("split_fractions: the train split has no windows; give it a non-zero fraction")
    gen = torch.Generator().manual_seed(training.seed)
    loader = torch.utils.data.DataLoader(
        train_ds, batch_size=training.batch_size, shuffle=True, collate_fn=collator, generator=gen, drop_last=False
    )
    steps_per_epoch = math.ceil(len(train_ds) / training.batch_size)
    total_steps = int(min(training.max_steps, training.max_epochs * steps_per_epoch))
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2 or "embeddings" in n]
    decay = [p for n, p in model.named_parameters() if not (p.ndim < 2 or "embeddings" in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": training.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=training.learning_rate,
    )
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(training.warmup_ratio * total_steps), total_steps)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    eval_every = training.eval_every or steps_per_epoch

    def bare_model():
        # without Accelerate's autocast wrapper: evaluation and generation run in float32
        return accelerator.unwrap_model(model, keep_fp32_wrapper=False)

    log, best_val, best_state, best_step = [], float("inf"), None, 0
    step, epoch = 0, 0
    bar = tqdm(total=total_steps, desc="training", unit="step", disable=not (progress and accelerator.is_main_process))
    running = None
    while step < total_steps:
        model.train()
        for batch in loader:
            out = model(**batch)
            accelerator.backward(out.loss)
            accelerator.clip_grad_norm_(model.parameters(), training.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            loss = out.loss.item()
            running = loss if running is None else 0.95 * running + 0.05 * loss
            bar.update(1)
            bar.set_postfix(loss=f"{running:.3f}", epoch=epoch)
            if has_val and (step % eval_every == 0 or step == total_steps):
                val = evaluate_token_nll(bare_model(), dsets["validation"], collator, training.eval_batch_size)
                model.train()
                log.append({"step": step, "epoch": epoch, "train_loss": running,
                            **{f"validation/{k}": v for k, v in val.items()}})
                if val["loss"] < best_val:
                    best_val, best_step = val["loss"], step
                    best_state = {k: v.detach().cpu().clone() for k, v in bare_model().state_dict().items()}
                bar.write(f"step {step}: train loss {running:.4f}  val loss {val['loss']:.4f} "
                          f"(id {val['id_nll']:.4f}, dt {val['dt_nll']:.4f}){'  *best' if best_step == step else ''}")
            if step >= total_steps:
                break
        epoch += 1
    bar.close()
    accelerator.wait_for_everyone()
    model = bare_model()
    if best_state is not None:
        model.load_state_dict(best_state)
        selection = "lowest validation loss"
    else:
        best_step = step
        selection = "last step (no validation split)"
        warnings.warn("split_fractions: no validation windows, so the last checkpoint is kept (none was selected)")
    train_time = time.time() - t_start

    metrics: Dict[str, object] = {}
    if accelerator.is_main_process:
        model.eval()
        if has_val:
            val = evaluate_token_nll(model, dsets["validation"], collator, training.eval_batch_size)
            metrics.update({"validation/id_nll": val["id_nll"], "validation/dt_nll": val["dt_nll"],
                            "validation/loss": val["loss"]})
        if has_test:
            test = evaluate_token_nll(model, dsets["test"], collator, training.eval_batch_size)
            base = TokenBaselines(config.vocab_size, tokenizer.unit_token_ids(recording), config.num_dt_bins)
            base.fit(dsets["train"])
            btest = base.score(dsets["test"])
            # generation tiles the test split with non-overlapping windows, whatever the training stride
            starts, clips = window_starts_for_split(plan, "test", config, stride=config.current_window)
            generated = generate_spikes(
                model, tokenizer, recording, starts,
                past_clip_starts=clips if plan.mode == "trials" else None,
                batch_size=training.generation_batch_size,
                temperature=training.generation_temperature,
                top_p=training.generation_top_p,
                seed=training.seed,
                progress=progress,
            )
            fid = compare_recordings(recording, generated)
            metrics.update({
                "test/id_nll": test["id_nll"],
                "test/dt_nll": test["dt_nll"],
                "test/unigram_id_nll": btest["unigram_id_nll"],
                "test/markov_id_nll": btest["markov_id_nll"],
                "test/marginal_dt_nll": btest["marginal_dt_nll"],
                "test/id_f1": fid["id_f1"],
                "test/rate_corr": fid["rate_corr"],
                "test/binned_count_corr_mean": fid["binned_count_corr_mean"],
                "test/n_spike_tokens": test["n_spike_tokens"],
                "test/n_generated_spikes": fid["n_generated_spikes"],
                "test/n_real_spikes": fid["n_real_spikes"],
                "test/n_capped_generated_windows": generated.generation_stats["n_capped_windows"],
            })
        else:
            warnings.warn("split_fractions: no test windows, so no test metrics are written")
        metrics.update({
            "n_train_windows": len(dsets["train"]),
            "n_validation_windows": len(dsets["validation"]),
            "n_test_windows": len(dsets["test"]),
            "n_truncated_spikes": int(sum(trunc.values())),
            "n_truncated_spikes_by_split": trunc,
            "n_truncated_past_spikes": int(sum(ptrunc.values())),
            "n_spikes_by_split": n_spikes,
            "checkpoint_selection": selection,
            "best_step": best_step,
            "total_steps": step,
            "train_time_s": train_time,
            "total_time_s": time.time() - t_start,
            "split_mode": plan.mode,
            "recording": repr(recording),
            "num_parameters": int(sum(p.numel() for p in model.parameters())),
        })
        metrics = {k: _to_builtin(v) for k, v in metrics.items()}
        save_atomically(
            output_dir,
            model,
            tokenizer,
            {
                "metrics.json": metrics,
                "splits.json": plan.to_dict(),
                "training_log.json": log,
                "training_config.json": dataclasses.asdict(training),
            },
            overwrite=overwrite,
        )
    accelerator.wait_for_everyone()
    return metrics


def _to_builtin(v):
    """numpy scalars -> Python numbers, so returned metrics equal what metrics.json holds."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {k: _to_builtin(x) for k, x in v.items()}
    return v


__all__ = ["TrainingConfig", "load_yaml_config", "train", "evaluate_token_nll", "check_output_dir", "save_atomically"]
