"""Held-out log-likelihood of recorded windows under the model, and bits per spike.

The canonical-order generator (:func:`~hf_neuroformer.generation.generate_spikes` with
``order="canonical"``) samples a window token by token: the unit (or EOS) from the unit-id head, restricted to the recording's units plus EOS,
then the dt bin from the dt head, restricted to bins at or after the previous spike's bin
``d_prev``, and strictly after it when the unit's token id is below the previous spike's
``u_prev`` (canonical order: spikes sorted by bin, then unit token id); a unit below ``u_prev``
is not drawn at all once ``d_prev`` is the last bin. Both heads read the state at the previous
position. The probability of a window's canonical token sequence
``BOS, (u_1, d_1), ..., (u_n, d_n), EOS`` is the product over its steps of the renormalised
unit-id probability (EOS included) and, for spikes, the renormalised dt probability under those
restrictions. These are the generator's own probabilities at temperature 1, and every sequence
it can produce is the canonical sequence of one unit x dt-bin count array, so the product is
exactly the probability the generator gives that count array. A window whose spikes did not fit
in ``max_window_length`` tokens has no complete sequence; it is left out and counted.

Bits per spike compares that with independent homogeneous Poisson processes per unit on the same
dt bins (:mod:`hf_neuroformer.metrics.bits_per_spike`): ``(LL_model - LL_poisson) / (n_spikes
ln 2)`` (the formula of Pei et al. 2021, Neural Latents Benchmark, Sec. 3.2). The task is forward
prediction (each unit's spikes in the next window given the recorded past window), not NLB's
co-smoothing. The null's rates are fitted on the train windows (``bits_per_spike``) and, as in
NLB's reference code, on the scored windows themselves (``bits_per_spike_scored_rates_null``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from .configuration_neuroformer import is_whole_number
from .generation import allowed_token_mask, check_next_spike_model, check_true_or_false
from .recording import SpikeRecording, check_is_recording
from .processing_neuroformer import NeuroformerProcessor
from .tokenization_neuroformer import NeuroformerTokenizer, check_tokenizer_matches_config
from .windows import collated_batches, keeps_training_mode, window_starts_array


@keeps_training_mode
@torch.no_grad()
def window_log_likelihoods(
    model,
    tokenizer: NeuroformerTokenizer,
    recording: SpikeRecording,
    window_starts: Sequence[float],
    *,
    past_clip_starts: str | Sequence[float] | None = None,
    batch_size: int = 64,
    progress: bool = False,
    check_modalities: bool = True,
    stacklevel: int = 2,
    warn_absent_units: bool = True,
) -> Dict[str, np.ndarray]:
    """Log-probability (nats) of each recorded current window under the model (teacher-forced past).

    Args:
        model: a :class:`NeuroformerForPreTraining`.
        tokenizer: its tokenizer.
        recording: the recording whose windows are scored; the past windows are read from it
            too, so where it holds no data (outside its ``support``, e.g. before the first window
            of a generated recording) the past is empty.
        window_starts: ``(n_windows,)`` starts, s.
        past_clip_starts: ``None`` (no clip; default), ``(n_windows,)`` seconds (the past window starts no
            earlier than this; NaN: no clip), ``"trials"`` (each window's trial start, as a trial-mode model
            read its past) or ``"auto"`` (the start of the recorded stretch holding the window, where its past
            window reaches before it: a stretch's first windows are scored with a partial, possibly empty,
            past, and no window is refused for a past in unrecorded time), resolved and checked as every
            reader of windows does (:func:`~hf_neuroformer.windows.resolve_past_clip_starts`).
        batch_size: windows per forward pass, an integer >= 1.
        progress: show a tqdm bar over the windows (off by default: callers that score a few
            windows in a loop; :func:`split_bits_per_spike` turns it on).
        check_modalities: check once that ``recording`` holds the model's modalities as it reads
            them (:meth:`~hf_neuroformer.NeuroformerProcessor.check_recording`: a missing source is
            refused, frames on another pixel scale than the training frames warned of); False where
            the caller has checked (``neuroformer evaluate``).
        stacklevel: where the warnings (past clips, modalities) point, as ``warnings.warn`` takes
            it (2: the caller of this function; a public function calling it passes 3).
        warn_absent_units: warn when ``recording`` holds only some of the units the model knows of its
            session (see Warns); False where the caller has warned already (``neuroformer evaluate
            --model``, through :func:`hf_neuroformer.generation.check_recording_units`).

    Returns:
        dict of ``(n_windows,)`` arrays: ``log_likelihood`` (float64 nats; NaN for truncated
        windows), ``id_log_likelihood`` and ``dt_log_likelihood`` (its two parts),
        ``n_spikes`` (int64, spikes in the window) and ``truncated`` (bool, the window held
        more than ``max_window_length - 2`` spikes).

    Warns:
        UserWarning: ``recording`` holds only some of the units the model knows of its session
            (``warn_absent_units``; the warning of :func:`hf_neuroformer.generation.check_recording_units`,
            opening with ``recording:``): the missing units are read as silent in every past and current
            window and their probability goes to the units present, so the log-likelihoods are not those of
            the model's conditions. Said once the windows are accepted.

    Raises:
        ValueError: a tokenizer that does not match the model (``len(tokenizer)`` against
            ``model.config.vocab_size``, or other window settings; see
            :func:`~hf_neuroformer.tokenization_neuroformer.check_tokenizer_matches_config`);
            ``window_starts`` that are not 1-D, non-finite or empty, a window outside the recorded time (it would
            be scored as silence), a window whose past window (from its clip on) starts before the recorded
            time holding it (read as silence; refused as generate_spikes does), ``past_clip_starts`` that are not real numbers (text, booleans), not one
            per window, or after their window, ``"trials"`` for a recording without trials, another string (the checks of
            :meth:`hf_neuroformer.NeuroformerProcessor.tokenize`, which tokenizes the windows);
            a recording with a unit the model's vocabulary lacks (another session; see
            :func:`hf_neuroformer.generation.check_recording_units`);
            a ``batch_size`` that is not an integer >= 1; a ``progress`` or ``check_modalities`` other than
            True / False; a model whose weights hold NaN or infinite
            values (a diverged run).
        TypeError: a ``model``, ``tokenizer`` or ``recording`` of the wrong kind, as
            :func:`~hf_neuroformer.generation.generate_spikes` refuses them (the backbone
            ``AutoModel`` loads, a processor, a path), naming the argument.
    """
    if not is_whole_number(batch_size) or batch_size < 1:  # the rule for counts passed to functions
        raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    check_true_or_false(progress=progress, check_modalities=check_modalities, warn_absent_units=warn_absent_units)
    check_next_spike_model(model)  # the backbone AutoModel loads failed at out.logits
    check_is_recording(recording)
    processor = NeuroformerProcessor.from_config(tokenizer, model.config)  # checks the tokenizer against the model
    from .analysis._batches import check_finite_weights

    # NaN weights (a diverged run) gave NaN for windows not marked truncated, which bits_per_spike then
    # blamed on truncation
    check_finite_weights(model, None, flag="model", gives="every window log-likelihood it gives")
    starts = window_starts_array(window_starts)
    # None: no clip; the processor checks them, refuses units the model was not trained on (a model's processor,
    # from_config) and, once, checks the recording's modalities
    # stacklevel + 3: our frame and the two decorators' (keeps_training_mode, torch.no_grad) lie between the
    # caller and tokenize; counted from tokenize's caller (stacklevel + 1) they named torch's _contextlib.py
    cols = processor.tokenize(recording, starts, past_clip_starts, check_modalities=check_modalities,
                              refuse_unrecorded_past=True, stacklevel=stacklevel + 3)
    if warn_absent_units:  # at the caller's line: past _warn_missing_units, us and the two decorators
        from .generation import _warn_missing_units

        _warn_missing_units(tokenizer, recording, None, "recording", stacklevel=stacklevel + 3)
    model.eval()  # the caller's mode comes back on exit (keeps_training_mode)
    device = next(model.parameters()).device
    cfg = model.config
    allowed = allowed_token_mask(tokenizer, recording, cfg.vocab_size, device)
    dt_range = torch.arange(cfg.num_dt_bins, device=device)
    vocab = torch.arange(cfg.vocab_size, device=device)
    n = len(starts)
    id_ll = np.zeros(n)
    dt_ll = np.zeros(n)
    from .progress import progress_bar

    bar = progress_bar(total=n, desc="scoring windows (log-likelihood)", unit="win", disable=not progress)
    for idx, batch in collated_batches(cols, processor.collator, batch_size, device):
        mod_in = batch.pop("modality_inputs", None)
        out = model(
            input_ids=batch["input_ids"], dt_ids=batch["dt_ids"], attention_mask=batch["attention_mask"],
            past_input_ids=batch["past_input_ids"], past_dt_ids=batch["past_dt_ids"],
            past_attention_mask=batch["past_attention_mask"], modality_inputs=mod_in, return_dict=True,
            output_attentions=False, output_hidden_states=False,
        )
        ids, dts = batch["input_ids"], batch["dt_ids"]
        prev_id, prev_dt = ids[:, :-1], dts[:, :-1]
        nxt, nxt_dt = ids[:, 1:], dts[:, 1:]
        n_dt = cfg.num_dt_bins
        has_prev = prev_id.ne(tokenizer.bos_token_id)
        below = (vocab[None, None] < prev_id[..., None]) & has_prev[..., None]
        below[..., tokenizer.eos_token_id] = False
        in_last_bin = prev_dt.eq(n_dt - 1)[..., None]
        id_logits = out.logits[:, :-1].float().masked_fill(~allowed | (below & in_last_bin), float("-inf"))
        id_logp = torch.log_softmax(id_logits, -1)
        # dt at or after the previous spike's bin; strictly after it for a unit below the previous one
        dt_logits = out.dt_logits[:, :-1].float()
        lenient = torch.log_softmax(dt_logits.masked_fill(dt_range[None, None] < prev_dt[..., None], float("-inf")), -1)
        strict = torch.log_softmax(dt_logits.masked_fill(dt_range[None, None] <= prev_dt[..., None], float("-inf")), -1)
        real = nxt.ne(tokenizer.pad_token_id)
        spike = real & nxt.ne(tokenizer.eos_token_id)
        later = has_prev & (nxt < prev_id) & spike
        tok_lp = id_logp.gather(-1, nxt.clamp(min=0)[..., None])[..., 0].masked_fill(~real, 0.0)
        dt_lp = torch.where(later, strict.gather(-1, nxt_dt[..., None])[..., 0],
                            lenient.gather(-1, nxt_dt[..., None])[..., 0]).masked_fill(~spike, 0.0)
        id_ll[idx.start:idx.stop] = tok_lp.sum(1).double().cpu().numpy()
        dt_ll[idx.start:idx.stop] = dt_lp.sum(1).double().cpu().numpy()
        bar.update(len(idx))
    bar.close()
    truncated = np.asarray(cols["n_truncated"], dtype=np.int64) > 0
    total = id_ll + dt_ll
    total[truncated] = np.nan
    return {
        "log_likelihood": total,
        "id_log_likelihood": np.where(truncated, np.nan, id_ll),
        "dt_log_likelihood": np.where(truncated, np.nan, dt_ll),
        "n_spikes": np.asarray(cols["n_spikes"], dtype=np.int64),
        "truncated": truncated,
    }


def split_bits_per_spike(
    model,
    tokenizer: NeuroformerTokenizer,
    recording: SpikeRecording,
    plan,
    split: str = "test",
    fit_split: str = "train",
    batch_size: int = 64,
    progress: bool = True,
    ci_block_s: Optional[float] = None,
    ci_block_s_option: str = "ci_block_s=",
    check_modalities: bool = True,
    check_training_spikes: bool = True,
    warn_absent_units: bool = True,
) -> Dict[str, float]:
    """Held-out bits per spike of the model against two homogeneous Poisson nulls.

    The model scores each window of ``split`` (teacher-forced past, trial-clipped in trial
    mode) with :func:`window_log_likelihoods`; a null is one homogeneous Poisson process per
    unit, scored on the same dt bins
    (:func:`~hf_neuroformer.metrics.homogeneous_poisson_log_likelihood`). Two nulls, on exactly
    the same windows and the same model log-likelihood:

    * ``bits_per_spike``: rates fitted on the ``fit_split`` windows
      (:func:`~hf_neuroformer.metrics.poisson_rates_from_windows`, half-spike floor);
    * ``bits_per_spike_scored_rates_null``: rates fitted on the scored windows themselves (no
      floor; a unit silent there has rate 0 and contributes 0), the null of the Neural Latents
      Benchmark's reference ``bits_per_spike`` (mean rates of the spikes being scored). With
      time-blocked splits and drifting rates the two differ; the gap is what the model gains
      from the rate change between ``fit_split`` and ``split`` alone.

    Truncated windows are left out of both sides (and of the scored-rate fit) and counted.

    The windows of ``split`` tile it (:func:`~hf_neuroformer.windows.tiling_windows`): the test
    and validation windows training scores, and the windows
    :func:`~hf_neuroformer.generation.generation_windows` generates. Where trials overlap in time
    (or a trial is listed twice), a stretch is scored once: the earliest-starting trial's window
    is kept and the others left out, with a warning that names the trials and counts them. The
    ``fit_split`` windows the null's rates are fitted on are tiled alike (with their own warning), so
    an overlapping stretch weighs once in the fit.

    Args:
        model, tokenizer: a trained model and its tokenizer.
        recording: the recording the model was trained on.
        plan: its :class:`~hf_neuroformer.windows.SplitPlan`.
        split: windows to score; fit_split: windows the null's rates are fitted on.
        batch_size: windows per forward pass.
        progress: show a tqdm bar while the model scores the windows (a test split of
            thousands of windows takes tens of seconds on a CPU, which ``neuroformer evaluate
            --model`` spent without a word).
        check_modalities: passed to :func:`window_log_likelihoods` (False where the caller has
            checked the recording's modalities).
        ci_block_s: length (s) of the bootstrap blocks of a time split (None: 10 s; a trial
            split's blocks are its trials, and a length given there, 10 included, is warned to have
            no effect); see :mod:`hf_neuroformer.metrics.bootstrap`.
        ci_block_s_option: how a null interval's reason names the block length to shorten
            (``"ci_block_s="``; ``neuroformer evaluate`` passes ``"--ci-block-s"``).
        check_training_spikes: when the model was read from a local directory
            (``model.name_or_path``) whose ``metrics.json`` records the fingerprint of its training
            spikes (``split_spikes``), compare ``recording`` with it and warn, as the commands do
            (:func:`hf_neuroformer.generation.check_recording_units`), when a split it covers holds
            other spikes: a recording with the model's unit names that covers the split (e.g. a
            network re-simulated over the training file) was scored without a word. False where the
            caller has compared them (``neuroformer evaluate --model``), so that it warns once.
        warn_absent_units: passed to :func:`window_log_likelihoods` (False where the caller has warned
            of units missing from ``recording``: ``neuroformer evaluate --model``).

    Returns:
        dict with ``bits_per_spike`` (train-rate null), ``bits_per_spike_scored_rates_null``,
        ``model_log_likelihood_nats``, ``null_log_likelihood_nats`` (train-rate null) and
        ``null_scored_rates_log_likelihood_nats`` (sums over the scored windows, nats),
        ``n_spikes``, ``n_windows``, ``n_windows_truncated``; ``units_silent_in_fit_split`` (indices
        of the units without a spike in the ``fit_split`` windows: the train-rate null gives each
        ``silent_unit_null_rate_hz``, half a spike over those windows, not 0) and
        ``n_spikes_of_units_silent_in_fit_split`` (their spikes in the scored windows, which that
        floor prices); and 95 % block-bootstrap intervals
        ``bits_per_spike_ci95`` and ``bits_per_spike_scored_rates_null_ci95`` (``[low, high]``
        bits/spike, or None with a ``..._ci95_reason``), with ``ci95_n_blocks``, ``ci95_blocks``,
        ``ci95_method`` and ``ci95_block_s`` (``ci_block_s``; None in a trial split) saying how
        they were made
        (:func:`~hf_neuroformer.metrics.bootstrap.block_bootstrap_ci`: the per-block log-likelihood
        gains and spike counts are resampled in whole blocks and bits per spike recomputed from
        their sums; the nulls' rates are held at their fitted values).

    Warns:
        UserWarning: ``recording`` has the model's units but not the spikes it was trained on in a
            split it covers (``check_training_spikes``; the warning of
            :func:`~hf_neuroformer.generation.check_recording_units`); ``recording`` holds only some of
            the model's units of its session (``warn_absent_units``, :func:`window_log_likelihoods`).

    Raises:
        ValueError: a tokenizer that does not match the model (see :func:`window_log_likelihoods`),
            an unknown split, a split without windows, or a recording that does not
            cover the model's windows (another recording or epoch); ``ci_block_s`` not a
            finite number > 0 (before the model scores anything).
        TypeError: ``plan`` not a :class:`~hf_neuroformer.windows.SplitPlan` (a ``splits.json`` path:
            read it with ``SplitPlan.read``), or ``recording`` not a :class:`SpikeRecording`.
    """
    from .metrics.bootstrap import resolve_block_s, warn_block_s_unused

    from .windows import check_is_split_plan

    check_is_split_plan(plan)  # a splits.json path failed at plan.mode
    ci_block_s, asked = resolve_block_s(ci_block_s)
    warn_block_s_unused(plan.mode, ci_block_s, ci_block_s_option,
                        model.config.current_window + model.config.past_window, asked=asked)
    check_tokenizer_matches_config(tokenizer, model.config)
    from .metrics.bits_per_spike import (
        NULL_FLOOR_COUNT,
        bits_per_spike,
        homogeneous_poisson_log_likelihood,
        poisson_rates_from_windows,
    )
    from .windows import check_split_in_recording, tiling_windows

    for name, value in (("split", split), ("fit_split", fit_split)):
        if value not in plan.segments:
            raise ValueError(f"{name}: expected one of {sorted(plan.segments)}, got {value!r}")
        check_split_in_recording(plan, value, recording)
    model_dir = getattr(model, "name_or_path", None) or ""  # "" for a model not read from a directory
    if check_training_spikes and model_dir and Path(model_dir).is_dir():
        from .generation import warn_other_training_spikes

        warn_other_training_spikes(recording, model_dir, "recording", tokenizer)
    cfg = model.config
    # non-overlapping windows (one per stretch of overlapping trials), so that every spike is scored once, on the
    # windows train scores
    starts, clips = tiling_windows(plan, split, cfg)
    # the null's rates too: a trial listed twice (or a stretch of overlapping trials) weighs once in the fit
    fit_starts, _ = tiling_windows(plan, fit_split, cfg, use="used to fit the null's rates")
    if len(starts) == 0 or len(fit_starts) == 0:
        raise ValueError(f"split {split!r} / fit_split {fit_split!r}: expected windows in both, got {len(starts)} / {len(fit_starts)}")
    ll = window_log_likelihoods(
        model, tokenizer, recording, starts, past_clip_starts=clips if plan.mode == "trials" else None,
        batch_size=batch_size, progress=progress, check_modalities=check_modalities,
        stacklevel=3,  # its warnings (the recording's modalities, its units): at our caller's line
        warn_absent_units=warn_absent_units,
    )
    keep = ~ll["truncated"]
    rates = poisson_rates_from_windows(recording, fit_starts, cfg.current_window, floor_count=NULL_FLOOR_COUNT)
    # units without a spike in the fit windows have the floor's rate, not 0 (a spike of theirs would be
    # impossible under the null): said, with their scored spikes, which that floor prices
    silent_in_fit = np.flatnonzero(
        poisson_rates_from_windows(recording, fit_starts, cfg.current_window, floor_count=0.0) == 0)
    null = homogeneous_poisson_log_likelihood(recording, starts[keep], cfg.current_window, cfg.dt_resolution, rates)
    model_ll = ll["log_likelihood"][keep]
    n_spk = ll["n_spikes"][keep]
    if keep.any():
        own_rates = poisson_rates_from_windows(recording, starts[keep], cfg.current_window, floor_count=0.0)
        own_null = homogeneous_poisson_log_likelihood(recording, starts[keep], cfg.current_window,
                                                      cfg.dt_resolution, own_rates)
    else:  # every window truncated: nothing scored on either side
        own_rates = np.zeros(recording.n_units)
        own_null = np.zeros(0)
    # own_rates * exposure: each unit's spikes in the scored windows
    own_counts = np.rint(own_rates * (int(keep.sum()) * cfg.current_window)).astype(np.int64)
    from .metrics.bootstrap import (block_bootstrap_ci, block_sums, ci_description, ci_entries, count_blocks,
                                    few_blocks_hint, window_blocks)

    blocks, definition = window_blocks(starts[keep], plan.segments[split], plan.mode, ci_block_s)
    n_blocks = count_blocks(blocks)
    hint = few_blocks_hint(starts[keep], plan.segments[split], plan.mode, ci_block_s, ci_block_s_option)

    def per_spike_bits(gain, n):  # summed log-likelihood gain (nats) and spikes -> bits per spike
        return gain[:, 0] / (n[:, 0] * np.log(2.0))

    spikes = block_sums(n_spk[:, None], blocks, n_blocks)
    cis = {}
    for name, null_ll in (("bits_per_spike", null), ("bits_per_spike_scored_rates_null", own_null)):
        gain = block_sums((model_ll - null_ll)[:, None], blocks, n_blocks)
        cis.update(ci_entries(name, block_bootstrap_ci(per_spike_bits, gain, spikes, hint=hint)))
    return {
        "bits_per_spike": float(bits_per_spike(model_ll, null, n_spk)),
        "bits_per_spike_scored_rates_null": float(bits_per_spike(model_ll, own_null, n_spk)),
        "model_log_likelihood_nats": float(model_ll.sum()),
        "null_log_likelihood_nats": float(null.sum()),
        "null_scored_rates_log_likelihood_nats": float(own_null.sum()),
        "n_spikes": int(n_spk.sum()),
        "n_windows": int(keep.sum()),
        "n_windows_truncated": int((~keep).sum()),
        "units_silent_in_fit_split": silent_in_fit.tolist(),
        "n_spikes_of_units_silent_in_fit_split": int(own_counts[silent_in_fit].sum()),
        "silent_unit_null_rate_hz": NULL_FLOOR_COUNT / (len(fit_starts) * cfg.current_window),
        **cis,
        **ci_description("", n_blocks, definition, block_s=ci_block_s if plan.mode == "time" else None),
    }


__all__ = ["split_bits_per_spike", "window_log_likelihoods"]
