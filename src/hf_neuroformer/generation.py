"""Sampling spike trains from a trained Neuroformer, window by window.

For each current window the past window is taken from the recording (teacher-forced past; the
free-running mode and the KV-cached engine are a later issue). Tokens are sampled one at a time:
the unit id from ``logits`` and the dt bin from ``dt_logits`` of the same position (paper
Sec. 3.3: both heads read the same state), with

* unit ids restricted to the units of the recording being generated (plus EOS);
* dt restricted to bins >= the previous token's bin, so spikes stay in time order;
* temperature, top-k and top-p applied to each head.

Windows are batched (many windows advance in lock-step); the past window is encoded once per
window and reused at every step. Without a KV cache each step recomputes the current window's
decoder states; the cost is ``O(max_window_length^2)`` per window, which is cheap for windows of tens of
tokens.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from .recording import SpikeRecording
from .tokenization_neuroformer import NeuroformerTokenizer
from .windows import NeuroformerCollator, tokenize_windows


def _filter_logits(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    if temperature <= 0:
        raise ValueError(f"temperature: expected > 0, got {temperature}")
    logits = logits / temperature
    if top_k and top_k > 0:
        k = min(top_k, logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p: expected a value in (0, 1], got {top_p}")
    if top_p < 1.0:
        sorted_logits, idx = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        cum = probs.cumsum(-1)
        remove = cum - probs > top_p  # keep the smallest prefix whose mass reaches top_p
        sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, idx, sorted_logits)
    return logits


@torch.no_grad()
def generate_spikes(
    model,
    tokenizer: NeuroformerTokenizer,
    recording: SpikeRecording,
    window_starts: Sequence[float],
    *,
    past_clip_starts: Optional[Sequence[float]] = None,
    batch_size: int = 256,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    seed: int = 0,
    greedy: bool = False,
    progress: bool = True,
) -> SpikeRecording:
    """Generate the spikes of the given current windows.

    Args:
        model: a :class:`NeuroformerForPreTraining`.
        tokenizer: the model's tokenizer (same windows and vocabulary).
        recording: supplies each window's past spikes and the unit list of the output.
        window_starts: ``(n_windows,)`` current-window starts, s; windows must not overlap.
        past_clip_starts: optional per-window time before which past spikes are ignored (s).
        batch_size: windows generated in parallel.
        temperature, top_k, top_p: sampling controls for both heads (top_k 0 = off).
        seed: seed of the sampler (same seed, same model, same windows -> same spikes).
        greedy: take the most likely unit and dt instead of sampling.
        progress: show a tqdm bar.

    Returns:
        A :class:`SpikeRecording` with the recording's units, spikes at dt-bin centres, one
        ``time_support`` row per generated window (so metrics can score window by window) and
        session ``"<session>-generated"``. Its ``generation_stats`` attribute counts
        ``n_windows`` and ``n_capped_windows`` (windows that reached ``max_window_length`` tokens
        without sampling EOS).

    Raises:
        ValueError: for overlapping windows or invalid sampling parameters.
    """
    from tqdm.auto import tqdm

    _filter_logits(torch.zeros(1, 2), temperature, top_k, top_p)  # validate sampling settings up front
    starts = np.asarray(window_starts, dtype=np.float64).reshape(-1)
    w = tokenizer.current_window
    order = np.argsort(starts)
    if starts.size > 1 and np.any(np.diff(starts[order]) < w - 1e-9):
        raise ValueError("window_starts: expected non-overlapping current windows (starts at least current_window apart)")
    clips = None if past_clip_starts is None else np.asarray(past_clip_starts, dtype=np.float64)
    cols = tokenize_windows(recording, tokenizer, starts, clips)
    collate = NeuroformerCollator(tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id)
    model_was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    cfg = model.config
    unit_tokens = tokenizer.unit_token_ids(recording)
    token_to_unit = {int(t): i for i, t in enumerate(unit_tokens)}
    allowed_ids = torch.zeros(cfg.vocab_size, dtype=torch.bool, device=device)
    allowed_ids[torch.as_tensor(unit_tokens, device=device)] = True
    allowed_ids[tokenizer.eos_token_id] = True
    gen = torch.Generator(device=device).manual_seed(int(seed))
    max_len = cfg.max_window_length
    n_dt = cfg.num_dt_bins
    dt_range = torch.arange(n_dt, device=device)

    out_t, out_u = [], []
    n_capped = 0
    n = len(starts)
    bar = tqdm(total=n, desc="generating windows", unit="win", disable=not progress)
    for b0 in range(0, n, batch_size):
        sl = slice(b0, min(n, b0 + batch_size))
        batch = collate([{"input_ids": [1], "dt_ids": [0], "past_input_ids": p, "past_dt_ids": d}
                         for p, d in zip(cols["past_input_ids"][sl], cols["past_dt_ids"][sl])])
        pids = batch["past_input_ids"].to(device)
        pdts = batch["past_dt_ids"].to(device)
        pam = batch["past_attention_mask"].to(device)
        past_h, _ = model.neuroformer.encode_past(pids, pdts, pam)
        bsz = pids.shape[0]
        ids = torch.full((bsz, 1), tokenizer.bos_token_id, dtype=torch.long, device=device)
        dts = torch.zeros((bsz, 1), dtype=torch.long, device=device)
        done = torch.zeros(bsz, dtype=torch.bool, device=device)
        for _ in range(max_len - 1):
            am = ids.ne(tokenizer.pad_token_id)
            o = model(input_ids=ids, dt_ids=dts, attention_mask=am, past_hidden_state=past_h, past_attention_mask=pam)
            id_logits = o.logits[:, -1].float().masked_fill(~allowed_ids, float("-inf"))
            last_dt = dts[:, -1:]
            dt_logits = o.dt_logits[:, -1].float().masked_fill(dt_range[None] < last_dt, float("-inf"))
            if greedy:
                nid = id_logits.argmax(-1)
                ndt = dt_logits.argmax(-1)
            else:
                pi = torch.softmax(_filter_logits(id_logits, temperature, top_k, top_p), -1)
                pd = torch.softmax(_filter_logits(dt_logits, temperature, top_k, top_p), -1)
                nid = torch.multinomial(pi, 1, generator=gen).squeeze(-1)
                ndt = torch.multinomial(pd, 1, generator=gen).squeeze(-1)
            nid = torch.where(done, torch.full_like(nid, tokenizer.pad_token_id), nid)
            ndt = torch.where(done, torch.zeros_like(ndt), ndt)
            ids = torch.cat([ids, nid[:, None]], 1)
            dts = torch.cat([dts, ndt[:, None]], 1)
            done = done | (nid == tokenizer.eos_token_id)
            if bool(done.all()):
                break
        n_capped += int((~done).sum())
        ids_np, dts_np = ids.cpu().numpy(), dts.cpu().numpy()
        for r in range(bsz):
            t, u = tokenizer.decode_window(ids_np[r], dts_np[r], starts[b0 + r])
            out_t.append(t)
            out_u.append(np.asarray([token_to_unit[int(x)] for x in u], dtype=np.int64))
        bar.update(bsz)
    bar.close()
    if model_was_training:
        model.train()
    times = np.concatenate(out_t) if out_t else np.zeros(0)
    units = np.concatenate(out_u) if out_u else np.zeros(0, dtype=np.int64)
    sup = np.stack([starts[order], np.round(starts[order] + w, 9)], 1) if n else np.zeros((0, 2))
    if n > 1:  # float round-off: a window ends where the next begins, never after
        sup[:-1, 1] = np.minimum(sup[:-1, 1], sup[1:, 0])
    gen_rec = SpikeRecording.from_unsorted(
        times,
        units,
        unit_names=list(recording.unit_names),
        unit_areas=list(recording.unit_areas),
        time_domain=(float(sup[0, 0]), float(sup[-1, 1])) if n else None,
        session=f"{recording.session}-generated",
        time_support=sup,
    )
    gen_rec.generation_stats = {"n_windows": int(n), "n_capped_windows": int(n_capped)}
    return gen_rec


def load_pretrained(model_dir):
    """Load ``(model, tokenizer, split_plan)`` from a directory written by ``neuroformer train``.

    Raises:
        FileNotFoundError: if the directory or its ``splits.json`` is missing.
    """
    import json
    from pathlib import Path

    from transformers import AutoModelForPreTraining, AutoTokenizer

    from .windows import SplitPlan

    d = Path(model_dir)
    if not (d / "config.json").is_file():
        raise FileNotFoundError(f"--model: {str(d)!r} holds no config.json; expected a directory written by 'neuroformer train'")
    model = AutoModelForPreTraining.from_pretrained(d)
    tokenizer = AutoTokenizer.from_pretrained(d)
    plan_file = d / "splits.json"
    if not plan_file.is_file():
        raise FileNotFoundError(f"--model: {str(plan_file)!r} is missing; it records which windows are test windows")
    plan = SplitPlan.from_dict(json.loads(plan_file.read_text()))
    return model, tokenizer, plan


def generate_split(model, tokenizer, recording: SpikeRecording, plan, split: str = "test", **kwargs) -> SpikeRecording:
    """Generate the windows of one split of ``plan`` (a :class:`~hf_neuroformer.windows.SplitPlan`).

    Raises:
        ValueError: if the split's segments do not lie inside the recording (a different
            recording than the one the model was trained on), or the split has no windows.
    """
    from .windows import window_starts_for_split

    if split not in plan.segments:
        raise ValueError(f"split: expected one of {sorted(plan.segments)}, got {split!r}")
    seg = plan.segments[split]
    lo, hi = recording.time_domain
    if len(seg) and (seg[:, 0].min() < lo - 1e-9 or seg[:, 1].max() > hi + 1e-9):
        raise ValueError(
            f"data: the {split} windows of this model span [{seg[:, 0].min():.3f}, {seg[:, 1].max():.3f}] s but the "
            f"recording covers [{lo:.3f}, {hi:.3f}] s; pass the recording (and --epoch) the model was trained on"
        )
    starts, clips = window_starts_for_split(plan, split, model.config)
    if len(starts) == 0:
        raise ValueError(f"split {split!r}: no windows")
    return generate_spikes(
        model, tokenizer, recording, starts, past_clip_starts=clips if plan.mode == "trials" else None, **kwargs
    )


__all__ = ["generate_spikes", "generate_split", "load_pretrained"]
