"""Sampling spike trains from a trained Neuroformer, window by window.

The engine (paper Sec. 3.3, "next spike prediction", run forwards):

* Each current window starts with BOS; at every step the unit id (or EOS) is sampled from
  ``logits`` and then the dt bin from ``dt_logits`` of the same position (both heads read the
  same state), until EOS or a maximum number of spikes.
* dt never goes before the previous spike's bin, so spikes stay in time order, and unit ids are
  restricted to the units of the recording being generated (plus EOS).
* ``order="canonical"`` also keeps the tokenizer's order inside a bin (spikes sorted by dt bin,
  then unit token id, the only order the model was trained on): a unit whose token id is below
  the previous spike's goes to a later bin (and cannot be drawn once the previous spike is in
  the last bin). Every sampled sequence is then the canonical sequence of one spike-count array,
  and :func:`hf_neuroformer.likelihood.window_log_likelihoods` is exactly the probability this
  sampler gives that array (bits per spike are computed for it). ``order="free"`` (default)
  leaves the order inside a bin free: the same network's conditionals without the restriction.
  Spikes in one bin are the same spikes in any order, and on the Steinmetz subset the free
  order reproduces spike counts far better (``BENCHMARKS.md``), because the unit-id head does
  not know whether the next spike stays in the current bin and the canonical restriction then
  ends bins early.
* Temperature, top-k and top-p are set for each head (``dt_*`` default to the unit-id values).
* Windows (and repeats) are batched: many windows advance in lock-step, finished rows are padded.
* With ``use_cache=True`` (default) the decoder keeps a KV cache (transformers'
  :class:`~transformers.EncoderDecoderCache`): each step feeds one token, the past window is
  encoded once and its cross-attention keys/values are projected once per window.
  ``use_cache=False`` is the reference path kept for tests and benchmarks: one full forward
  pass (past encoder and the whole current window) per spike, as the original code did
  (GUIDE trap 11). With the same seed both paths give the same spikes.

Two sources for each window's past window:

* ``mode="teacher_forced"``: the recorded spikes before the window (the past is data);
* ``mode="free_running"``: the spikes generated before the window. Wherever a window's past window
  overlaps time that a window of the same call covers, the past holds that window's generated
  spikes; recorded spikes are read only for time that no window of the call covers (the warm start
  before the first window, and gaps between windows; in trial mode the past is clipped at the trial
  start, so the windows of a trial whose first window starts there read nothing recorded). Windows are generated in time order as far as
  needed: a window waits for every earlier window its past window overlaps, and windows whose pasts
  overlap no window still to be generated go in one batch (windows that tile a stretch of time form
  a chain generated one window per step, as before; windows a gap of at least ``past_window``
  apart are independent). The original's "generated past" silently used the recorded past (GUIDE
  trap 5); here ``generation_stats`` counts, per window, how many past spikes came from each source.
"""

from __future__ import annotations

import contextlib
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Union

import numpy as np
import torch
from transformers.cache_utils import DynamicCache, EncoderDecoderCache

from .argument_checks import SEED_RANGE, check_model_kind, check_sampling_ranges
from .binning import on_time_grid, past_starts, window_ends
from .configuration_neuroformer import is_real_number, is_whole_number
from .modeling_neuroformer import (NEXT_SPIKE_HEAD_MODULES, NextSpikeHeadsNotLoadedWarning,
                                  _additive_mask)
from .recording import SpikeRecording, check_is_recording, count_noun, first_few
from .tokenization_neuroformer import NeuroformerTokenizer, check_tokenizer_matches_config
from .windows import (NeuroformerCollator, and_epoch, check_pasts_recorded, check_windows_apart,
                      check_windows_in_support,
                      keeps_training_mode, resolve_past_clip_starts, tokenize_windows, window_starts_array)

MODES = ("teacher_forced", "free_running")
ORDERS = ("free", "canonical")


def _filter_logits(logits: torch.Tensor, temperature: float, top_k: int, top_p: float) -> torch.Tensor:
    """Temperature, then top-k, then top-p (nucleus) filtering of ``(batch, n)`` logits.

    Returns float64 logits whose largest entry per row is 0 (``-inf`` for banned entries). The
    temperature divides ``logits - max``, in float64, so a tiny temperature (``1e-45``) cannot
    overflow to ``+inf`` (which made ``inf - inf = NaN`` in the softmax and failed in
    ``torch.multinomial``): the largest logit stays 0 and the others go to ``-inf``, so sampling
    approaches the greedy choice (ties at the maximum share the mass).

    Top-k keeps the ``top_k`` largest logits and every logit tied with the ``top_k``-th (as
    transformers' ``TopKLogitsWarper``), so with tied logits it keeps more than ``top_k`` tokens:
    ``top_k=1`` then samples among the tokens tied at the maximum (drawn by the generator, so the
    same seed repeats the choice and another seed may not), while greedy decoding
    (:func:`_pick`) takes the lowest token id among them (``torch.argmax``).
    """
    logits = logits.double()
    top = logits.amax(-1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))  # a row with every entry banned stays -inf
    shifted = logits - top
    # 0 / temperature is 0 even when the temperature rounds to 0 (0 / 0 would be NaN)
    logits = torch.where(shifted == 0, shifted, shifted / temperature)
    if top_k and top_k > 0:
        k = min(top_k, logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, idx = torch.sort(logits, descending=True, dim=-1)
        probs = torch.softmax(sorted_logits, dim=-1)
        cum = probs.cumsum(-1)
        # keep the smallest prefix whose mass reaches top_p: a token goes once the mass before it
        # has reached top_p (">" kept one tied token too many: 8 equal units, top_p 0.25 kept 3)
        remove = cum - probs >= top_p
        sorted_logits = sorted_logits.masked_fill(remove, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, idx, sorted_logits)
    return logits


@dataclass(frozen=True)
class SamplingSettings:
    """Sampling controls of the two heads (``dt_*`` None: same as the unit-id head).

    Raises:
        ValueError: a temperature <= 0, top-p outside (0, 1], or a top-k that is negative or not a
            whole number (a whole float such as ``2.0`` is kept as the int ``2``); a value that is
            not a real number (text such as ``"0.9"``, a bool, or None for the unit-id head's
            three; None is "as the unit-id head" for the ``dt_*`` ones only); ``greedy`` other than
            True / False (``"false"`` is truthy and switched sampling off).
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    dt_temperature: Optional[float] = None
    dt_top_k: Optional[int] = None
    dt_top_p: Optional[float] = None
    greedy: bool = False

    def __post_init__(self):
        if not isinstance(self.greedy, (bool, np.bool_)):
            raise ValueError(f"greedy: expected True or False, got {self.greedy!r}")
        for name in ("temperature", "top_k", "top_p", "dt_temperature", "dt_top_k", "dt_top_p"):
            v = getattr(self, name)
            if (v is None and name.startswith("dt_")) or (
                    is_real_number(v)):
                continue
            # text failed inside numpy with a message naming no argument; True passed as top_k 1
            # the value that switches it off: top_k=None (transformers' "no top-k") was refused without it
            off = {"temperature": "1 = unchanged", "top_k": "0 = off", "top_p": "1 = off"}[name.removeprefix("dt_")]
            raise ValueError(f"{name}: expected a number ({off}" + ("; None = as the unit-id head's" if
                             name.startswith("dt_") else "") + f"), got {v!r}")
        # the ranges (as `neuroformer generate` checks its flags before torch is imported)
        check_sampling_ranges(self.temperature, self.top_k, self.top_p, self.dt_temperature, self.dt_top_k,
                              self.dt_top_p)
        for name in ("temperature", "dt_temperature", "top_p", "dt_top_p"):
            # as a float: any real number passes the type check, and a Fraction failed inside torch
            # ("unsupported operand type(s) for /: 'Tensor' and 'Fraction'")
            if getattr(self, name) is not None:
                object.__setattr__(self, name, float(getattr(self, name)))
        for name in ("top_k", "dt_top_k"):
            v = getattr(self, name)
            if v is not None:
                # a whole number written as a float (2.0, from a JSON or YAML generation config) passed
                # the check above and failed inside torch.topk ("argument 'k' must be int, not float")
                object.__setattr__(self, name, int(v))

    def for_head(self, head: str):
        """``(temperature, top_k, top_p)`` of ``head``: ``"id"`` -> the unit-id head's; any other
        value -> the dt head's (each ``dt_*`` that is None falls back to the id head's)."""
        if head == "id":
            return self.temperature, self.top_k, self.top_p
        return (
            self.temperature if self.dt_temperature is None else self.dt_temperature,
            self.top_k if self.dt_top_k is None else self.dt_top_k,
            self.top_p if self.dt_top_p is None else self.dt_top_p,
        )


def _pick(logits: torch.Tensor, settings: SamplingSettings, head: str, gen: torch.Generator) -> torch.Tensor:
    if settings.greedy:
        return logits.argmax(-1)
    t, k, p = settings.for_head(head)
    probs = torch.softmax(_filter_logits(logits, t, k, p), -1)
    return torch.multinomial(probs, 1, generator=gen).squeeze(-1)


def decode_window_rows(tokenizer: NeuroformerTokenizer, input_ids: np.ndarray, dt_ids: np.ndarray,
                window_starts: np.ndarray) -> tuple:
    """:meth:`NeuroformerTokenizer.decode_window` of every row at once: the sampled windows of a batch.

    Args:
        tokenizer: the model's tokenizer.
        input_ids: ``(n_rows, seq_len)`` integer token ids, one window a row (specials are skipped;
            a row's decoding stops at its first EOS or pad).
        dt_ids: ``(n_rows, seq_len)`` integer dt bin ids, in ``[0, num_dt_bins)`` where decoded.
        window_starts: ``(n_rows,)`` float64 start of each row's window, s.

    Returns:
        ``(times, unit_tokens)``: lists of one ``(n,)`` float64 array of spike times (s, the dt bin
        centres) and one ``(n,)`` int64 array of unit token ids per row, equal to what
        ``decode_window`` returns for the row.

    Raises:
        ValueError, TokenIdError, UnknownUnitError: as ``decode_window`` raises them for the first
            row it refuses (a token id outside the vocabulary, a dt id outside the bins, ids that are
            not integers, a start that is not a finite float64 time).
    """
    ids, dts = np.asarray(input_ids), np.asarray(dt_ids)
    starts = np.asarray(window_starts)
    if ids.ndim == 2 and ids.shape == dts.shape and ids.dtype.kind in "iu" and dts.dtype.kind in "iu" \
            and starts.dtype == np.float64 and starts.shape == (len(ids),) and np.all(np.isfinite(starts)):
        ended = np.cumsum((ids == tokenizer.eos_token_id) | (ids == tokenizer.pad_token_id), axis=1) > 0
        keep = ~ended & (ids != tokenizer.bos_token_id)
        toks, bins = ids[keep].astype(np.int64), dts[keep]
        known = np.fromiter(tokenizer.ids_to_tokens, dtype=np.int64, count=len(tokenizer.ids_to_tokens))
        if np.all(np.isin(toks, known)) and np.all((bins >= 0) & (bins < tokenizer.num_dt_bins)):
            row_of = np.nonzero(keep)[0]
            times = starts[row_of] + tokenizer.id_to_dt(bins)
            cuts = np.cumsum(keep.sum(1))[:-1]
            return list(np.split(times, cuts)), list(np.split(toks, cuts))
    # one row at a time: decode_window names what it refuses (or decodes what the checks above leave to it)
    decoded = [tokenizer.decode_window(i, d, s) for i, d, s in zip(input_ids, dt_ids, window_starts)]
    return [t for t, _ in decoded], [u for _, u in decoded]


@torch.no_grad()
def sample_window_tokens(
    model,
    past_input_ids: torch.LongTensor,
    past_dt_ids: torch.LongTensor,
    past_attention_mask: torch.Tensor,
    allowed_ids: torch.Tensor,
    settings: SamplingSettings,
    generator: torch.Generator,
    *,
    bos_token_id: int,
    eos_token_id: int,
    pad_token_id: int,
    max_spikes: int,
    min_spikes: int = 0,
    use_cache: bool = True,
    canonical: bool = False,
    modality_inputs: Optional[dict] = None,
):
    """Sample the token sequences of a batch of current windows given their past windows.

    Args:
        model: a :class:`NeuroformerForPreTraining` in eval mode.
        past_input_ids / past_dt_ids / past_attention_mask: ``(batch, past_len)`` past tokens.
        allowed_ids: ``(vocab_size,)`` bool, the unit tokens that may be sampled (EOS included).
        settings: sampling controls; ``generator`` supplies the randomness (one unit-id draw,
            then one dt draw, per step, for the whole batch).
        max_spikes: stop a window after this many spikes. Below the model's limit
            (``max_window_length - 1``) one more token is drawn for a window that reached it: EOS
            ends the window there (appended, not capped); a spike is not kept and the window
            counts as capped (the cap cut it). At the limit there is no room for EOS, and a window
            that reaches it counts as capped.
        min_spikes: EOS is not allowed before this many spikes (benchmarks use it to force a
            window length).
        use_cache: KV-cached decoding (one token per step) or the reference path (a full
            forward pass, past encoder included, per step).
        canonical: keep the tokenizer's order inside a dt bin (see ``order`` in
            :func:`generate_spikes`).
        modality_inputs: the windows' modality tokens (``modality_inputs`` of
            :class:`~hf_neuroformer.windows.NeuroformerCollator`), required when the model has
            modalities; encoded once per batch, and every new token passes the modality stages.

    Returns:
        ``(input_ids, dt_ids, capped)``: ``(batch, L)`` int64 tokens starting with BOS (EOS,
        then padding, after the end), their dt bins, and ``(batch,)`` bool windows cut by
        ``max_spikes`` (see there).
    """
    device = past_input_ids.device
    bsz = past_input_ids.shape[0]
    n_dt = model.config.num_dt_bins
    dt_range = torch.arange(n_dt, device=device)
    ids = torch.full((bsz, 1), bos_token_id, dtype=torch.long, device=device)
    dts = torch.zeros((bsz, 1), dtype=torch.long, device=device)
    done = torch.zeros(bsz, dtype=torch.bool, device=device)
    n_spk = torch.zeros(bsz, dtype=torch.long, device=device)
    last_dt = torch.zeros(bsz, dtype=torch.long, device=device)
    last_id = torch.zeros(bsz, dtype=torch.long, device=device)
    vocab_range = torch.arange(allowed_ids.shape[0], device=device)
    nfm = model.neuroformer
    if use_cache:
        # the same computation as model(..., cache=cache, use_cache=True), without its per-call
        # checks and output objects: the past is encoded once, its cross-attention keys/values
        # are projected at the first step and reused, masks are built once per step
        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        past_h, _ = nfm.encode_past(past_input_ids, past_dt_ids, past_attention_mask)
        mod_states = nfm.encode_modalities(modality_inputs) if model.config.modalities else []
        cross_mask = _additive_mask(past_attention_mask.bool()[:, None, None, :], past_h.dtype)
    # below the model's limit, one step after the cap asks whether EOS follows: only a spike there
    # means the cap cut the window (counting every window that reached it called EOS-ended ones capped)
    n_steps = max_spikes + 1 if max_spikes < model.config.max_window_length - 1 else max_spikes
    if use_cache:
        positions = torch.arange(n_steps + 1, device=device)
        key_real = torch.ones((bsz, 1), dtype=torch.bool, device=device)
    for step in range(n_steps):
        if use_cache:
            x = nfm.embed_current(ids[:, -1:], dts[:, -1:], positions[step:step + 1])
            if mod_states:
                x = nfm.fuse_modalities(x, mod_states)[0]
            self_mask = None if bool(key_real.all()) else _additive_mask(key_real[:, None, None, :], x.dtype)
            h = nfm.decode(x, self_mask, past_h, cross_mask, cache=cache)[0][:, -1]
        else:
            o = nfm(
                input_ids=ids, dt_ids=dts, attention_mask=ids.ne(pad_token_id), past_input_ids=past_input_ids,
                past_dt_ids=past_dt_ids, past_attention_mask=past_attention_mask, modality_inputs=modality_inputs,
                return_dict=True, output_attentions=False, output_hidden_states=False,
            )
            h = o.last_hidden_state[:, -1]
        id_logits = model.id_head(h).float()
        id_banned = ~allowed_ids[None]
        if canonical:
            # spikes sorted by dt bin, then unit token id: a unit below the previous spike's token
            # id must fall in a later bin, so it is impossible once the previous spike sits in the
            # last bin, and otherwise it excludes the previous spike's bin (below)
            below = (vocab_range[None] < last_id[:, None]) & (n_spk > 0)[:, None]
            below[:, eos_token_id] = False
            id_banned = id_banned | (below & (last_dt == n_dt - 1)[:, None])
        id_logits = id_logits.masked_fill(id_banned, float("-inf"))
        if min_spikes > 0:
            id_logits[:, eos_token_id] = id_logits[:, eos_token_id].masked_fill(n_spk < min_spikes, float("-inf"))
        nid = _pick(id_logits, settings, "id", generator)
        if step == max_spikes:  # past the cap: EOS ends a window, a spike is not kept (the window is capped)
            is_eos = ~done & (nid == eos_token_id)
            ids = torch.cat([ids, torch.where(is_eos, nid, torch.full_like(nid, pad_token_id))[:, None]], 1)
            dts = torch.cat([dts, torch.where(is_eos, last_dt, torch.zeros_like(last_dt))[:, None]], 1)
            done = done | is_eos
            break
        dt_logits = model.dt_logits_given_unit(h, nid).float()
        earliest = last_dt
        if canonical:
            earliest = (last_dt + ((n_spk > 0) & (nid < last_id)).long()).clamp(max=n_dt - 1)
        dt_logits = dt_logits.masked_fill(dt_range[None] < earliest[:, None], float("-inf"))
        ndt = _pick(dt_logits, settings, "dt", generator)
        is_eos = nid == eos_token_id
        ndt = torch.where(is_eos, last_dt, ndt)  # EOS carries the last spike's bin, as the tokenizer writes it
        nid = torch.where(done, torch.full_like(nid, pad_token_id), nid)
        ndt = torch.where(done, torch.zeros_like(ndt), ndt)
        ids = torch.cat([ids, nid[:, None]], 1)
        dts = torch.cat([dts, ndt[:, None]], 1)
        spike = ~done & ~is_eos
        n_spk = n_spk + spike.long()
        last_dt = torch.where(spike, ndt, last_dt)
        last_id = torch.where(spike, nid, last_id)
        done = done | is_eos
        if use_cache:
            key_real = torch.cat([key_real, nid.ne(pad_token_id)[:, None]], 1)
        if bool(done.all()):
            break
    return ids, dts, ~done


def allowed_token_mask(tokenizer: NeuroformerTokenizer, recording: SpikeRecording, vocab_size: int, device) -> torch.Tensor:
    """``(vocab_size,)`` bool: the unit tokens of ``recording`` and EOS, the tokens a window of it
    may hold (shared by the generator and :mod:`hf_neuroformer.likelihood`)."""
    allowed = torch.zeros(vocab_size, dtype=torch.bool, device=device)
    allowed[torch.as_tensor(tokenizer.unit_token_ids(recording), device=device)] = True
    allowed[tokenizer.eos_token_id] = True
    return allowed


def _check_conditioning(model, conditioning: Optional[Mapping[str, object]]) -> None:
    if not conditioning:
        return
    trained = [m["name"] for m in (getattr(model.config, "modalities", None) or [])]
    for name in conditioning:
        if name not in trained:
            raise ValueError(
                f"conditioning[{name!r}]: the model was trained without the modality {name!r}; it was trained with "
                + (", ".join(repr(m) for m in trained) if trained else "spikes only (the past window), so it takes "
                   "no conditioning input")
            )
        raise ValueError(
            f"conditioning[{name!r}]: the modality inputs are read from the recording (its "
            f"{model.config.modality(name)['source']!r}); to condition on other "
            "values, put them into the recording (trial_info, behaviour or stimulus) and pass that recording"
        )


def _past_dependencies(starts: np.ndarray, clips: Optional[np.ndarray], past_window: float, window: float):
    """Which earlier windows of a free-running call each window's past window reaches into.

    Args:
        starts: ``(n,)`` float64 window starts, s, non-overlapping (any order).
        clips: ``(n,)`` past clips, s (NaN: none), or None.
        past_window / window: s.

    Returns:
        ``(order, lo_w, hi_w, first_dep, levels)``: ``order`` the window indices by start; ``lo_w`` /
        ``hi_w`` ``(n,)`` their starts and ends on the 1 ns grid, in that order (an end never after
        the next start); ``first_dep[p]`` the first position (in ``order``) of a window ending after
        the (clipped) past start of the window at position ``p``, so positions ``first_dep[p]:p``
        are the windows its past overlaps; ``levels[p]`` 0 for a window whose past overlaps no
        window, else one more than the highest level among those it overlaps (windows of one level
        are independent and are generated in one batch, after every lower level).
    """
    order = np.argsort(starts, kind="stable")
    lo_w, hi_w = on_time_grid(starts[order]), window_ends(starts[order], window)
    if len(order) > 1:  # float round-off: a window ends where the next begins, never after
        hi_w[:-1] = np.minimum(hi_w[:-1], lo_w[1:])
    lo_past = past_starts(starts[order], past_window)
    if clips is not None:
        c = on_time_grid(clips[order])
        lo_past = np.where(np.isnan(c), lo_past, np.maximum(lo_past, c))
    first_dep = np.zeros(len(order), dtype=np.int64)
    levels = np.zeros(len(order), dtype=np.int64)
    for p in range(len(order)):
        q = int(np.searchsorted(hi_w[:p], lo_past[p], side="right"))  # the windows ending after the past start
        first_dep[p] = q
        levels[p] = 1 + int(levels[q:p].max()) if q < p else 0
    return order, lo_w, hi_w, first_dep, levels


def check_true_or_false(**flags) -> None:
    """Raise ``ValueError`` naming the first of ``flags`` (name = value) that is not ``True`` / ``False``
    (a numpy bool too): ``use_cache="no"`` or ``progress="no"`` were truthy, so the cache was used and the
    bar shown, the opposite of what was asked, without a word."""
    for name, value in flags.items():
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name}: expected True or False, got {value!r}")


def check_next_spike_model(model, flag: str = "model") -> None:
    """Refuse a model without the next-spike heads (unit id and dt) where spikes are generated or scored.

    ``AutoModel.from_pretrained`` gives the backbone (:class:`~hf_neuroformer.NeuroformerModel`), which
    failed inside generation with "'NeuroformerModel' object has no attribute 'neuroformer'" and inside
    :func:`~hf_neuroformer.likelihood.window_log_likelihoods` with "'NeuroformerModelOutput' object has no
    attribute 'logits'"; a model directory's path failed with "'str' object has no attribute 'config'".

    Args:
        model: the object passed as the model; any class named ``NeuroformerForPreTraining`` along its
            MRO passes (a model loaded as Hub remote code is another class object of that name).
        flag: the argument named in the message.

    Raises:
        TypeError: ``model`` is not a ``NeuroformerForPreTraining``; the message names its type and
            says to load one with ``AutoModelForPreTraining.from_pretrained`` (or :func:`load_pretrained`).

    The check is :func:`~hf_neuroformer.argument_checks.check_model_kind`'s, with this kind's hints.
    """
    check_model_kind(
        model, ("NeuroformerForPreTraining",), flag,
        expected="a NeuroformerForPreTraining (the model with the next-spike heads, unit id and dt)",
        hints={"NeuroformerModel": "it has no next-spike heads",
               "NeuroformerForBehaviorDecoding": "it predicts behaviour, not spikes"})


def _is_entry_frame(frame) -> bool:
    """Whether ``frame`` is one of the frames a public call of :func:`generate_spikes` passes through
    before its body: torch.no_grad's wrapper (``torch.utils._contextlib``), :func:`keeps_training_mode`'s
    wrapper, the model's ``generate_spikes`` method (this package's modeling file, or a copy of it loaded
    as Hub remote code) and :func:`generate_split`."""
    code = frame.f_code
    module = frame.f_globals.get("__name__", "")
    qualname = getattr(code, "co_qualname", code.co_name)
    return (module == "torch.utils._contextlib"
            or (module == "hf_neuroformer.windows" and qualname == "keeps_training_mode.<locals>.wrapper")
            or (code.co_name == "generate_spikes" and Path(code.co_filename).name == "modeling_neuroformer.py")
            or code is generate_split.__code__)


def _frames_to_caller() -> int:
    """How many frames above the function that calls this one lies the line that called the public entry
    point (:func:`generate_spikes`, ``model.generate_spikes`` or :func:`generate_split`): the frames of
    :func:`_is_entry_frame` are passed over, so ``warnings.warn(..., stacklevel=1 + _frames_to_caller())``
    in that function names the user's line whichever entry point was called. Fixed stacklevels counted
    one entry point's wrappers: a warning of ``model.generate_spikes(...)`` named the line of
    ``modeling_neuroformer.py`` that forwards the call, and one of :func:`generate_split` a line of this
    file. A caller inside the package (``neuroformer generate``, ``train``'s test generation) is named
    as any other caller: its own line."""
    frame = sys._getframe(1)
    n = 0
    while frame.f_back is not None and _is_entry_frame(frame.f_back):
        frame = frame.f_back
        n += 1
    return n + 1


def max_spikes_limit(config) -> int:
    """The most spikes :func:`generate_spikes` may put in a window, and its default
    ``max_spikes``: ``config.max_window_length - 1``."""
    return int(config.max_window_length) - 1


def _past_length_of(config, past_length) -> int:
    """``past_length`` checked (an integer in 1 .. ``config.max_past_length``); None: the latter."""
    top = int(config.max_past_length)
    if past_length is None:
        return top
    if not is_whole_number(past_length) or not 1 <= past_length <= top:
        raise ValueError(f"past_length: expected an integer in 1..{top} (max_past_length: the tokens of a past "
                         f"window, BOS and spikes), got {past_length!r}")
    return int(past_length)


def generation_row_bytes(config, element_size: int = 4, past_length: Optional[int] = None) -> int:
    """Bytes one row (one window x repeat) of a :func:`generate_spikes` batch allocates, an estimate
    from ``config`` alone (no model is built): the past encoder's activations of one layer (queries,
    keys, values, output and MLP: ``P x (4 hidden_size + intermediate_size)``, plus the attention
    scores ``num_attention_heads x P**2``); the same for the current window (the uncached path
    re-runs it every step: ``max_window_length`` tokens attending to themselves and to the past);
    the states kept over the whole window (the encoded past and the KV cache:
    ``num_hidden_layers x 2 x (P + max_window_length) x hidden_size``), all in ``element_size``
    bytes (the model's dtype); the sampler's per-step float32 logits over the vocabulary and the dt
    bins, counted 8 times (masked, filtered, sorted, their probabilities and int64 sort indices);
    and the tokens (two int64 and one bool per position). Modality tokens and the generated spikes
    (kept per sample until the call returns, about 16 bytes a spike) come on top.

    ``P`` is one more than ``past_length``, the tokens (BOS and spikes) of the longest past window
    of the batch: the collator pads a batch's pasts to its longest, so no row holds more. Default
    (None): ``config.max_past_length``, full pasts, the bound for any recording, which refused a model
    with a long ``max_past_length`` on recordings whose pasts are short;
    :func:`longest_generation_past` gives the length for known windows. It counts full current
    windows, so it errs high: 200 rows of the default config with full windows (150 units) took
    290 MiB of peak memory on the CPU against 606 MiB estimated.

    Raises:
        ValueError: ``past_length`` not an integer in 1 .. ``config.max_past_length``.
    """
    e = int(element_size)
    past, cur = _past_length_of(config, past_length) + 1, int(config.max_window_length) + 1
    h, inter, heads = int(config.hidden_size), int(config.intermediate_size), int(config.num_attention_heads)
    past_layer = past * (4 * h + inter) + heads * past * past
    current_layer = cur * (4 * h + inter) + heads * cur * (cur + past)
    kept = past * h + int(config.num_hidden_layers) * 2 * (past + cur) * h
    logits = 8 * 4 * (int(config.vocab_size) + int(config.num_dt_bins))
    return e * (past_layer + current_layer + kept) + logits + 17 * cur


def longest_generation_past(tokenizer: NeuroformerTokenizer, recording: SpikeRecording, window_starts,
                            past_clip_starts: Optional[np.ndarray] = None, *, mode: str = "teacher_forced",
                            max_spikes: Optional[int] = None) -> int:
    """The most tokens (BOS and spikes) a past window of a :func:`generate_spikes` call can hold, the
    ``past_length`` of :func:`generation_row_bytes`: ``1 + min(n, max_past_length - 1)`` (the tokenizer
    keeps the latest ``max_past_length - 1`` past spikes), ``n`` the largest over the windows of:

    * ``"teacher_forced"``: the recorded spikes in the window's past window (from its past clip on), the
      past the tokenizer reads (exact);
    * ``"free_running"``: those recorded spikes, plus ``max_spikes`` for every window of the call that the
      past window overlaps (a window generates at most ``max_spikes`` spikes). An upper bound: recorded
      spikes in time a window covers are replaced by the generated ones, not added to them.

    Args:
        tokenizer: the model's tokenizer (its ``past_window``, ``current_window`` and ``max_past_length``).
        recording: the recording the pasts are read from.
        window_starts: ``(n_windows,)`` float64 current-window starts, s, non-overlapping (as
            :func:`generate_spikes` has checked them).
        past_clip_starts: ``(n_windows,)`` float64 past clips, s (NaN: none), or None (no clip); the
            resolved clips, not ``"trials"`` / ``"auto"``. Without them the count is of the whole past
            windows, which can only be more.
        mode: ``"teacher_forced"`` or ``"free_running"``.
        max_spikes: the most spikes a window generates (None: ``max_window_length - 1``, the default of
            :func:`generate_spikes`); read in free-running mode only.

    Returns:
        An int in 1 .. ``max_past_length`` (1, BOS alone, for no window).

    Raises:
        ValueError: an unknown ``mode``; window starts that are not finite (a NaN start counted no spike,
            too few for a bound); past clips of another length than the windows.
    """
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    starts = np.asarray(window_starts, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(starts)):
        bad = int(np.flatnonzero(~np.isfinite(starts))[0])
        raise ValueError(f"window_starts: expected finite times, s; window {bad} starts at {starts[bad]}")
    if starts.size == 0:
        return 1
    lo = np.asarray(past_starts(starts, tokenizer.past_window), dtype=np.float64)
    clips = None if past_clip_starts is None else np.asarray(past_clip_starts, dtype=np.float64).reshape(-1)
    if clips is not None and clips.shape != starts.shape:
        raise ValueError(f"past_clip_starts: expected one clip per window ({len(starts)}), got {len(clips)}")
    if clips is not None:  # on the 1 ns grid, as the tokenizer and generate_spikes' counts put them
        c = on_time_grid(clips)
        lo = np.where(np.isnan(c), lo, np.maximum(lo, c))
    # spikes in [clipped past start, window start on the grid): generate_spikes' n_past_recorded
    n = np.maximum(np.searchsorted(recording.spike_times, on_time_grid(starts))
                   - np.searchsorted(recording.spike_times, lo), 0)
    if mode == "free_running":
        cap = int(tokenizer.max_window_length) - 1 if max_spikes is None else int(max_spikes)
        order, _, _, first_dep, _ = _past_dependencies(starts, clips, tokenizer.past_window,
                                                       tokenizer.current_window)
        overlapped = np.empty(len(starts), dtype=np.int64)
        overlapped[order] = np.arange(len(starts)) - first_dep  # earlier windows each past overlaps
        n = n + overlapped * cap
    return 1 + int(min(int(n.max()), int(tokenizer.max_past_length) - 1))


def check_generation_batch_memory(config, batch_size: int, n_rows: int, *, element_size: int = 4,
                                  device="cpu", memory: Optional[int] = None, flag: str = "batch_size",
                                  past_length: Optional[int] = None) -> None:
    """Refuse, before any work, a :func:`generate_spikes` batch whose estimated memory
    (``min(batch_size, n_rows) x`` :func:`generation_row_bytes`) exceeds half of this machine's
    physical memory (``memory`` bytes; default ``os.sysconf``, no check where the OS does not
    say), the bound ``neuroformer simulate`` applies. ``n_rows``: the rows the call generates
    (windows x ``num_samples``), so a ``batch_size`` above them is charged only the rows there are.
    ``past_length``: the tokens of the longest past window (:func:`longest_generation_past`; None:
    ``max_past_length``, full pasts, for windows not yet known). Only a model in host memory
    (``device`` of type ``"cpu"``) is checked: a GPU's batch lives in its own memory, and running
    out of it raises torch's ``OutOfMemoryError``. ``neuroformer generate --batch-size 100000
    --num-samples 1000`` was killed by the OS for lack of memory.

    Raises:
        ValueError: ``<flag>: ...`` (``batch_size``; ``--batch-size`` from the command line) with
            the rows, the estimate and the memory in GiB, the past length it assumed, and the largest
            batch size that fits; ``past_length: ...`` for one outside 1 .. ``max_past_length``.
    """
    past = _past_length_of(config, past_length)
    if torch.device(device).type != "cpu":
        return
    if memory is None:
        from .stimuli import _memory_bytes

        memory = _memory_bytes()
    if memory is None:
        return
    rows = min(int(batch_size), max(int(n_rows), 1))
    per_row = generation_row_bytes(config, element_size, past)
    need, half = rows * per_row, int(memory) // 2
    if need <= half:
        return
    fits = half // per_row
    advice = (f"use a batch size of at most {fits}" if fits >= 1 else
              "not even one row fits: the model's windows (max_past_length, max_window_length) or vocabulary are too "
              "large for this machine")
    pasts = (f"pasts of up to {count_noun(past, 'token')}" + (" (max_past_length)" if past_length is None else "")
             + ", ")
    raise ValueError(
        f"{flag}: a batch of {count_noun(rows, 'row')} (window x sample) needs up to about {need / 2**30:.1f} GiB "
        f"({per_row / 2**20:.2f} MiB a row: {pasts}past and current activations, KV cache, logits over "
        f"{count_noun(int(config.vocab_size), 'token')}), more than half of this machine's "
        f"{int(memory) / 2**30:.1f} GiB of memory; {advice}")


@keeps_training_mode
@torch.no_grad()
def generate_spikes(
    model,
    tokenizer: NeuroformerTokenizer,
    recording: SpikeRecording,
    window_starts: Sequence[float],
    *,
    past_clip_starts: str | Sequence[float] | None = None,
    mode: str = "teacher_forced",
    order: str = "free",
    num_samples: int = 1,
    batch_size: int = 256,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    dt_temperature: Optional[float] = None,
    dt_top_k: Optional[int] = None,
    dt_top_p: Optional[float] = None,
    greedy: bool = False,
    seed: int = 0,
    max_spikes: Optional[int] = None,
    min_spikes: int = 0,
    use_cache: bool = True,
    conditioning: Optional[Mapping[str, object]] = None,
    progress: bool = True,
    warn_absent_units: bool = True,
) -> Union[SpikeRecording, List[SpikeRecording]]:
    """Generate the spikes of the given current windows.

    Args:
        model: a :class:`NeuroformerForPreTraining`.
        tokenizer: the model's tokenizer (same windows and vocabulary).
        recording: supplies the past windows (teacher-forced; free-running: only the past time that
            no window of the call covers, see the module docstring) and the unit list of the output.
        window_starts: ``(n_windows,)`` current-window starts, s, at least one; windows must not
            overlap. Empty is an error, as for the processor, the likelihood and the attention
            analyses (an empty result would read as "the model generated no spikes").
        past_clip_starts: ``None`` (no clip; default), ``(n_windows,)`` seconds (the past window starts no
            earlier than this; NaN: no clip), ``"trials"`` (each window's trial start, as a trial-mode model
            read its past) or ``"auto"`` (the start of the recorded stretch holding the window, where its past
            window reaches before it: a stretch's first windows are generated with a partial, possibly empty,
            past, and no window is refused for a past in unrecorded time), resolved and checked as every
            reader of windows does (:func:`~hf_neuroformer.windows.resolve_past_clip_starts`).
        mode: ``"teacher_forced"`` (past from the recording) or ``"free_running"`` (past from
            the generated spikes; see the module docstring).
        order: ``"free"`` (default) or ``"canonical"``, the order of spikes inside a dt bin (see
            the module docstring; ``"canonical"`` is the sampler whose probabilities
            :mod:`hf_neuroformer.likelihood` computes).
        num_samples: independent repeats of every window, generated in the same batches.
        batch_size: rows (window x repeat) generated in parallel; their memory is estimated and a
            batch that would take more than half of the machine's is refused (see Raises).
        temperature, top_k, top_p: unit-id head sampling (top_k 0 = off, top_p 1 = off; a top_k
            above the vocabulary keeps every token). Tokens tied with the top_k-th logit are all kept,
            as in transformers' ``TopKLogitsWarper``: with tied logits ``top_k=1`` is not greedy, it
            samples among the tokens tied at the maximum (the same ones for the same seed), where
            ``greedy=True`` takes the lowest token id of them (unit order).
        dt_temperature, dt_top_k, dt_top_p: dt head sampling (None: as the unit-id head).
        greedy: take the most likely unit and dt instead of sampling.
        seed: seed of the sampler; same model, windows, settings and batch size give the same
            spikes, cached or not.
        max_spikes: most spikes per window, an integer in 1 .. ``max_window_length - 1`` (default
            the latter, the window's token budget). A window that reaches it is counted as capped
            only when the cap cut it: below the budget one more token is drawn, and EOS there ends
            the window uncapped; at the budget there is no room for EOS and it counts as capped.
        min_spikes: EOS is not sampled before this many spikes (an integer in 0 .. ``max_spikes``;
            for benchmarks).
        use_cache: KV-cached engine (default) or the uncached reference path.
        conditioning: reserved. The inputs of a model with ``config.modalities`` are read from
            ``recording`` for every window (each modality's ``source`` over its ``window``), so an
            entry here raises: for a modality the model lacks, naming the ones it has; for one it
            has, saying to put the values into the recording.
        progress: show a tqdm bar.
        warn_absent_units: warn when ``recording`` holds only some of the units the model knows of its
            session (see Warns); False where the caller has warned already (``neuroformer generate``,
            through :func:`check_recording_units`), so that it is said once.

    Returns:
        A :class:`SpikeRecording` (a list of ``num_samples`` when ``num_samples > 1``) with the
        recording's units, spikes at dt-bin centres, one ``time_support`` row per window (start and end on the
        tokenizer's 1 ns grid, :func:`~hf_neuroformer.binning.on_time_grid`) and
        session ``"<session>-generated"``. Its ``generation_stats`` dict holds, for that
        sample: ``n_windows``, ``n_capped_windows`` (windows cut by ``max_spikes``,
        see there), ``mode``, ``order``, ``use_cache``, ``seed``, ``n_spikes``; for the whole call:
        ``n_spikes_all_samples``, ``seconds`` (wall time) and ``spikes_per_second``
        (all samples / wall time); and per window in ``window_starts`` order:
        ``n_past_recorded`` / ``n_past_generated`` (past spikes from each source, after the
        clip, before truncation) and ``n_past_truncated`` (oldest past spikes dropped to fit
        ``max_past_length``); for a model with modalities, ``n_windows_without_modality_tokens``
        (modality name -> windows that read no value of it, only its learned null token: not
        conditioned on it) and ``n_truncated_modality_tokens`` (modality name -> tokens, video:
        frames, beyond its ``max_tokens`` / ``num_frames`` left out of the windows, the earliest);
        for a model with an ``"events:"`` modality, ``n_events_in_no_window`` (modality name -> events
        between the first window's start and the last window's end that no window reads in its
        modality window, so no window was conditioned on them: events in the part of a gap between
        windows that no modality window reaches (a gap longer than the next window's modality window
        reaches back), and, for a modality window that does not cover the current window, events
        inside the windows too; :func:`generate_split` counts those of its split's segments instead).

    Warns:
        UserWarning: ``mode="free_running"`` on windows whose past windows reach into no other window
            (every past would then come from the recording; windows that start at their past clip, a
            trial of one window, have none, and the warning says so); a modality of which none of
            the windows holds a value (all generated from its learned null token), naming it and
            counting the windows (:func:`~hf_neuroformer.modalities.check_windows_read_modalities`); a
            ``recording`` that holds only some of the units the model knows of its session (``warn_absent_units``:
            only the units present are sampled, so the probability of the missing ones inflates their rates, and
            the pasts lack their spikes; the warning of :func:`check_recording_units`, opening with ``recording:``),
            once the arguments are accepted. Each names the line that made the call, whether it called this
            function, ``model.generate_spikes`` or :func:`generate_split` (:func:`_frames_to_caller`).

    Raises:
        ValueError: a tokenizer that does not match the model (``len(tokenizer)`` against
            ``model.config.vocab_size``, or other window settings; see
            :func:`~hf_neuroformer.tokenization_neuroformer.check_tokenizer_matches_config`);
            no window (empty ``window_starts``); windows that overlap, are not a 1-D sequence of finite times, lie
            outside the recording's time domain or in a hole of its time support (between two
            intervals of an epoch union, where it holds no spikes); a window whose past window (from its
            past clip on, when given) starts before the recorded time that holds the window (the time domain,
            or that interval of the time support), which would be read as silence, as no training window is
            built; a past clip after its window's start, ``past_clip_starts="trials"`` for a recording
            without trials, or another string; an
            unknown mode; a recording with a unit the model's vocabulary lacks (another session: names the
            model's sessions, see :func:`check_recording_units`); a temperature <= 0; a top-p outside (0, 1]; a sampling setting that is
            not a number (text, a bool, None for the unit-id head's) or a ``greedy``, ``use_cache`` or
            ``progress`` other than True / False (see :class:`SamplingSettings`); a batch size or
            ``num_samples`` below 1 or not an int (or numpy integer); ``num_samples`` above 1 with
            ``greedy=True`` (every sample would be the same spikes); a batch whose estimated memory
            (:func:`check_generation_batch_memory`: ``min(batch_size, windows x num_samples)`` rows of
            :func:`generation_row_bytes`, whose pasts are charged the longest these windows can have,
            :func:`longest_generation_past`) exceeds half of this machine's memory, for a model on the CPU; a seed that is not an integer in [-2**63, 2**64) (the range
            of ``torch.Generator.manual_seed``); ``max_spikes`` / ``min_spikes`` not an integer
            (a fraction is refused, not cut), ``max_spikes`` below 1 or beyond the model's window,
            ``min_spikes`` outside 0 .. ``max_spikes``; conditioning on a modality the model was not trained with;
            or a model whose weights hold NaN or infinite values (a diverged run).
        TypeError: a ``model`` other than a ``NeuroformerForPreTraining`` (the backbone ``AutoModel``
            loads, a path; :func:`check_next_spike_model`), a ``tokenizer`` other than a
            :class:`NeuroformerTokenizer` (a processor: pass ``processor.tokenizer``), a ``recording``
            other than a :class:`SpikeRecording` (a path: read it with
            :func:`hf_neuroformer.io.load_recording`); each message names the argument.
    """
    from .progress import progress_bar as tqdm

    t_start = time.perf_counter()
    # frames from here to the caller's line: the warnings below name it whichever entry point was called
    # (model.generate_spikes's named modeling_neuroformer.py, generate_split's a line of this file)
    up = _frames_to_caller()
    check_next_spike_model(model)
    check_is_recording(recording)
    settings = SamplingSettings(temperature, top_k, top_p, dt_temperature, dt_top_k, dt_top_p, greedy)
    check_tokenizer_matches_config(tokenizer, model.config)
    from .analysis._batches import check_finite_weights

    # NaN weights (a diverged run) failed inside torch.multinomial
    check_finite_weights(model, None, flag="model", gives="every spike probability it gives")
    refuse_foreign_units(tokenizer, recording)
    _check_conditioning(model, conditioning)
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    if order not in ORDERS:
        raise ValueError(f"order: expected one of {ORDERS}, got {order!r}")
    # 2.0 passed 'int(n) != n' and failed in range(); True generated one sample (the rule for counts passed to functions)
    if not is_whole_number(num_samples) or num_samples < 1:
        raise ValueError(f"num_samples: expected an integer >= 1, got {num_samples!r}")
    num_samples = int(num_samples)
    if settings.greedy and num_samples > 1:  # greedy decoding draws nothing: every sample would be the same spikes
        raise ValueError(f"num_samples: greedy decoding (greedy=True) gives the same spikes in every sample, so "
                         f"num_samples={num_samples} would return {num_samples} identical recordings; pass "
                         "greedy=False to sample, or num_samples=1")
    cfg = model.config
    limit = max_spikes_limit(cfg)
    # int() cut max_spikes=2.7 to 2 without a word (the rule for counts: whole numbers only)
    if max_spikes is not None and (not is_whole_number(max_spikes) or not 1 <= max_spikes <= limit):
        # 0 would generate nothing and count every window as capped
        raise ValueError(f"max_spikes: expected an integer in 1..{limit} (max_window_length - 1), got {max_spikes!r}")
    max_spikes = limit if max_spikes is None else int(max_spikes)
    if not is_whole_number(min_spikes) or not 0 <= min_spikes <= max_spikes:
        raise ValueError(f"min_spikes: expected an integer in 0..max_spikes={max_spikes}, got {min_spikes!r}")
    min_spikes = int(min_spikes)
    if not is_whole_number(batch_size) or batch_size < 1:  # the rule for counts passed to functions
        raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    check_true_or_false(use_cache=use_cache, progress=progress, warn_absent_units=warn_absent_units)
    if not is_whole_number(seed):
        raise ValueError(f"seed: expected an integer, got {seed!r}")
    if not SEED_RANGE[0] <= int(seed) < SEED_RANGE[1]:
        raise ValueError(f"seed: expected an integer in [-2**63, 2**64), got {seed}")
    starts = window_starts_array(
        window_starts, empty_hint="pass the starts of the windows to generate, e.g. window_starts_for_split(plan, "
        "'test', config, stride=config.current_window)[0] (hf_neuroformer.windows), or generate_split")
    w = tokenizer.current_window
    if recording.time_domain is not None and starts.size:
        lo, hi = recording.time_domain
        out_of = np.flatnonzero((starts < lo - 1e-9) | (starts + w > hi + 1e-9))
        if out_of.size:
            raise ValueError(
                f"window_starts: window {out_of[0]} [{starts[out_of[0]]:.4f}, {starts[out_of[0]] + w:.4f}) s lies outside "
                f"the recording's time domain [{lo:.4f}, {hi:.4f}] s; every window must lie inside the recording"
            )
    if recording.time_support is not None and starts.size:
        # inside the time domain but in a hole of the time support (an epoch union): the recording
        # holds no spikes there, so the past would be read as silence (window_log_likelihoods refuses
        # the same windows)
        check_windows_in_support(recording.support, starts, w)
    # (float32 starts, 0.3 and 0.4 -> 0.30000001 and 0.40000001, 6e-9 s short of a window apart, are
    # refused by window_starts_array)
    check_windows_apart(
        starts, w,
        # window_starts_for_split's windows of trials that overlap in time (README's trial-mode example)
        hint=("; for the windows of a trial split whose trials overlap, take them from generation_windows(plan, "
              "split, config) (hf_neuroformer.generation): it leaves out the windows that overlap"
              if past_clip_starts is not None else ""))
    # "trials" / "auto" / seconds, resolved and checked as the processor and window_log_likelihoods do (warnings at
    # the caller's line: past this function and its entry points, _frames_to_caller)
    clips = resolve_past_clip_starts(recording, starts, past_clip_starts, past_window=tokenizer.past_window,
                                     current_window=w, stacklevel=1 + up)
    check_pasts_recorded(recording, starts, clips, tokenizer.past_window, w)
    # before anything is allocated: --batch-size 100000 --num-samples 1000 was killed by the OS for lack of memory.
    # Charged the longest past these windows can have, not max_past_length: a model with a long max_past_length
    # was refused on a recording whose pasts are short
    check_generation_batch_memory(model.config, batch_size, len(starts) * num_samples,
                                  element_size=next(model.parameters()).element_size(),
                                  device=next(model.parameters()).device,
                                  past_length=longest_generation_past(tokenizer, recording, starts, clips, mode=mode,
                                                                      max_spikes=max_spikes))
    if warn_absent_units:  # (the CLI warned through check_recording_units) at the caller's line
        _warn_missing_units(tokenizer, recording, None, "recording", stacklevel=2 + up)

    model.eval()  # the caller's mode comes back on exit (keeps_training_mode)
    device = next(model.parameters()).device
    unit_tokens = tokenizer.unit_token_ids(recording)
    token_to_unit = np.full(cfg.vocab_size, -1, dtype=np.int64)
    token_to_unit[unit_tokens] = np.arange(len(unit_tokens))
    allowed_ids = allowed_token_mask(tokenizer, recording, cfg.vocab_size, device)
    gen = torch.Generator(device=device).manual_seed(int(seed))
    collate = NeuroformerCollator(tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id,
                                  cfg.modalities)
    mod_cols, mod_empty, mod_trunc, ev_unread = {}, {}, {}, {}
    if cfg.modalities:  # every window's modality tokens, read from the recording as in training
        from .modalities import modality_columns, truncated_modality_tokens, windows_without_values

        # its warnings (a circular series in degrees) at the caller's line, as check_windows_read_modalities' below:
        # they named this line
        mod_cols = modality_columns(recording, cfg, starts, clips, stacklevel=2 + up)
        # windows generated from the null token alone, not conditioned on the modality
        mod_empty = {m["name"]: windows_without_values(mod_cols, m) for m in cfg.modalities}
        # none of the windows holds a value of a modality: warned of, naming it (the processor's warning), at the
        # caller's line (past this function and its entry points)
        from .modalities import check_windows_read_modalities

        # (not an event modality: windows of one's choosing between sparse events are normal; n_events_in_no_window
        # counts the events they miss)
        check_windows_read_modalities(cfg, {"": mod_cols}, stacklevel=2 + up, events=False)
        # tokens (video: frames) beyond max_tokens / num_frames, dropped earliest first: counted, as training counts them
        mod_trunc = {m["name"]: truncated_modality_tokens(mod_cols, m) for m in cfg.modalities}
        # events between the first window's start and the last window's end that no window reads (generate_split
        # counts those of its split's segments instead); empty without an event modality
        from .modalities import events_in_no_window

        ev_unread = events_in_no_window(recording, cfg, [(starts, clips)],
                                        within=[[float(starts.min()), float(window_ends(starts.max(), w))]])
    spike_tokens = unit_tokens[recording.unit_ids]
    n = len(starts)
    # results per (repeat, window)
    gen_t = [[np.zeros(0)] * n for _ in range(num_samples)]
    gen_tok = [[np.zeros(0, dtype=np.int64)] * n for _ in range(num_samples)]
    n_past_rec = np.zeros((num_samples, n), dtype=np.int64)
    n_past_gen = np.zeros((num_samples, n), dtype=np.int64)
    n_past_trunc = np.zeros((num_samples, n), dtype=np.int64)
    capped_win = np.zeros((num_samples, n), dtype=bool)

    # the windows' starts as the tokenizer puts them (1 ns grid): the past ends there. With the raw start a spike
    # at 1.7 s was counted in the past of a window at 1.7000000000000002 s (np.arange(17, 18) * 0.1), whose
    # current window holds it, and a free-running chain's warm start left out a past spike 0.3 ns before its start
    grid_starts = on_time_grid(starts)

    def clip_of(i):
        # on the 1 ns grid, as the tokenizer puts it (a trial start 0.30000000000000004 s clips at 0.3 s)
        return None if clips is None or np.isnan(clips[i]) else float(on_time_grid(clips[i]))

    def run_rows(pasts):
        """Sample rows given their tokenized pasts ``(past ids, past dts, window index)``; returns
        (ids, dts, capped) numpy per row."""
        rows = []
        for b0 in range(0, len(pasts), batch_size):
            chunk = pasts[b0:b0 + batch_size]
            batch = collate([{"input_ids": [tokenizer.bos_token_id], "dt_ids": [0], "past_input_ids": p,
                              "past_dt_ids": d, **{k: v[i] for k, v in mod_cols.items()}} for p, d, i in chunk])
            mod_in = batch.get("modality_inputs")
            if mod_in is not None:
                mod_in = {k: {kk: vv.to(device) for kk, vv in v.items()} for k, v in mod_in.items()}
            ids, dts, capped = sample_window_tokens(
                model, batch["past_input_ids"].to(device), batch["past_dt_ids"].to(device),
                batch["past_attention_mask"].to(device), allowed_ids, settings, gen,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id, max_spikes=max_spikes, min_spikes=min_spikes,
                use_cache=use_cache, canonical=order == "canonical", modality_inputs=mod_in,
            )
            decoded = decode_window_rows(tokenizer, ids.cpu().numpy(), dts.cpu().numpy(),
                                  starts[[i for _, _, i in chunk]])
            rows.extend(zip(*decoded, capped.cpu().numpy()))
            bar.update(len(chunk))
        return rows

    def store(r, i, t, toks, capped_row):
        capped_win[r, i] = bool(capped_row)
        gen_t[r][i] = t
        gen_tok[r][i] = toks

    bar = tqdm(total=n * num_samples, desc=f"generating windows ({mode})", unit="win", disable=not progress)
    if mode == "teacher_forced":
        cols = tokenize_windows(recording, tokenizer, starts, clips)
        for i in range(n):
            lo = float(past_starts(starts[i], tokenizer.past_window))  # the tokenizer's past start
            c = clip_of(i)
            a, b = np.searchsorted(recording.spike_times, [lo if c is None else max(lo, c), grid_starts[i]])
            n_past_rec[:, i] = b - a
            n_past_trunc[:, i] = cols["n_past_truncated"][i]
        pasts = [(cols["past_input_ids"][i], cols["past_dt_ids"][i], i) for _ in range(num_samples) for i in range(n)]
        rows = run_rows(pasts)
        for k, row in enumerate(rows):
            store(k // n, k % n, *row)
    else:
        order_w, lo_w, hi_w, first_dep, levels = _past_dependencies(starts, clips, tokenizer.past_window, w)
        depth = int(levels.max()) + 1 if n else 0
        if n and depth == 1:
            # a window clipped at its own start (trial mode, a trial of one window) has no past at all: "every
            # window's past comes from the recording" was false for it
            n_bare = sum(clip_of(i) is not None and clip_of(i) >= float(on_time_grid(starts[i])) for i in range(n))
            past = ("every window's past comes from the recording" if n_bare == 0 else
                    "no window has a past (each starts at its past clip, past_clip_starts: a trial of a single "
                    "window)" if n_bare == n else
                    f"every window's past comes from the recording, and {n_bare} of the {n} windows have none "
                    "(they start at their past clip, past_clip_starts: a trial of a single window)")
            warnings.warn(
                "mode='free_running': no window's past window reaches into another window (no two windows touch "
                f"or lie less than past_window apart), so {past}, as in teacher-forced mode; give contiguous "
                "windows to chain them",
                # the caller's line, past the entry points (2 named torch/utils/_contextlib.py, the
                # torch.no_grad wrapper, as the warning's source)
                stacklevel=1 + up,
            )
        # windows in levels (_past_dependencies): a window waits for every earlier window its past window
        # overlaps and reads their generated spikes there, and recorded spikes only where no window of this
        # call lies (before the first window, in gaps between windows). Before, only windows that tiled time
        # exactly read each other's spikes; a gap shorter than past_window read the recorded spikes of a window
        # the call had just generated (GUIDE trap 5). Windows of one level go in one batch, by start
        for level in range(depth):
            jobs, pasts = [], []
            for pos in np.flatnonzero(levels == level):
                i = int(order_w[pos])
                lo = float(past_starts(starts[i], tokenizer.past_window))  # the tokenizer's past start
                c = clip_of(i)
                lo_c = lo if c is None else max(lo, c)
                a, b = np.searchsorted(recording.spike_times, [lo_c, grid_starts[i]])
                rec_t, rec_tok = recording.spike_times[a:b], spike_tokens[a:b]
                k = np.searchsorted(lo_w, rec_t, side="right") - 1  # the last window starting at or before each spike
                covered = (k >= 0) & (rec_t < hi_w[np.maximum(k, 0)])
                rec_t, rec_tok = rec_t[~covered], rec_tok[~covered]
                prev = order_w[first_dep[pos]:pos]  # the windows this one's past overlaps, in time order
                for r in range(num_samples):
                    g_t = np.concatenate([gen_t[r][j] for j in prev]) if len(prev) else np.zeros(0)
                    g_tok = (np.concatenate([gen_tok[r][j] for j in prev]) if len(prev)
                             else np.zeros(0, dtype=np.int64))
                    keep = g_t >= lo_c
                    all_t = np.concatenate([rec_t, g_t[keep]])
                    all_tok = np.concatenate([rec_tok, g_tok[keep]])
                    by_time = np.argsort(all_t, kind="stable")  # recorded gap spikes and generated ones interleave
                    enc = tokenizer.encode_window(all_t[by_time], all_tok[by_time], float(starts[i]),
                                                  past_clip_start=c)
                    n_past_rec[r, i] = len(rec_t)
                    n_past_gen[r, i] = int(keep.sum())
                    n_past_trunc[r, i] = enc["n_past_truncated"]
                    jobs.append((r, i))
                    pasts.append((enc["past_input_ids"], enc["past_dt_ids"], i))
            rows = run_rows(pasts)
            for (r, i), row in zip(jobs, rows):
                store(r, i, *row)
    bar.close()

    by_start = np.argsort(starts, kind="stable")
    # the windows as the tokenizer reads them (1 ns grid): from the raw start a recorded spike at 4485.4 s fell
    # between a window at 4485.400000000001 s and the one before it (which ends at 4485.4), outside every
    # row, and the fidelity metrics did not count it
    sup = (np.stack([grid_starts[by_start], window_ends(starts[by_start], w)], 1) if n else np.zeros((0, 2)))
    if n > 1:  # float round-off: a window ends where the next begins, never after
        sup[:-1, 1] = np.minimum(sup[:-1, 1], sup[1:, 0])
    seconds = time.perf_counter() - t_start
    total = sum(int(sum(len(x) for x in gen_t[r])) for r in range(num_samples))
    # the samples share everything but their spikes and session: checked once, not once a sample (20,000 samples
    # of one window spent 3 of 7 CPU seconds in the constructor's checks)
    shared = SpikeRecording(
        np.zeros(0),
        np.zeros(0, dtype=np.int64),
        unit_names=list(recording.unit_names),
        unit_areas=list(recording.unit_areas),
        time_domain=(float(sup[0, 0]), float(sup[-1, 1])) if n else None,
        session=f"{recording.session}-generated",
        time_support=sup,
    )
    out = shared.copies_with_spikes(
        [(np.concatenate(gen_t[r]) if n else np.zeros(0),
          token_to_unit[np.concatenate(gen_tok[r]) if n else np.zeros(0, dtype=np.int64)]) for r in range(num_samples)],
        [f"{recording.session}-generated" + (f"-sample{r}" if num_samples > 1 else "") for r in range(num_samples)])
    for r, rec in enumerate(out):
        rec.generation_stats = {
            "n_windows": int(n),
            "n_capped_windows": int(capped_win[r].sum()),
            "mode": mode,
            "order": order,
            "use_cache": bool(use_cache),
            "seed": int(seed),
            "n_spikes": int(rec.n_spikes),
            "n_spikes_all_samples": int(total),
            "seconds": float(seconds),
            "spikes_per_second": float(total / seconds) if seconds > 0 else float("nan"),
            "n_past_recorded": n_past_rec[r].tolist(),
            "n_past_generated": n_past_gen[r].tolist(),
            "n_past_truncated": n_past_trunc[r].tolist(),
            **({"n_windows_without_modality_tokens": dict(mod_empty)} if mod_empty else {}),
            **({"n_truncated_modality_tokens": dict(mod_trunc)} if mod_trunc else {}),
            **({"n_events_in_no_window": dict(ev_unread)} if ev_unread else {}),
        }
    return out[0] if num_samples == 1 else out


#: Files of a model directory written by ``neuroformer train`` that :func:`load_pretrained` reads.
MODEL_DIR_FILES = {
    "config.json": "the model config",
    "model.safetensors": "the weights",
    "vocab.json": "the unit vocabulary",
    "tokenizer_config.json": "the tokenizer settings",
}
#: The index of weights saved in shards (``save_pretrained(..., max_shard_size=...)`` with a model larger
#: than the shard size: ``model-00001-of-0000N.safetensors`` ...), accepted in place of ``model.safetensors``.
SHARDED_WEIGHTS_INDEX = "model.safetensors.index.json"
#: PyTorch pickle weights (``save_pretrained(safe_serialization=False)`` of older transformers), which
#: transformers reads but this package does not: :func:`check_model_dir` names them and the conversion
PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")
#: Modules of :class:`~hf_neuroformer.NeuroformerForPreTraining` that predict the next spike
#: (unit id and dt); a fine-tuned decoder saves them only with ``decoding_generative_loss_weight > 0``.
#: The model's own list (:data:`~hf_neuroformer.modeling_neuroformer.NEXT_SPIKE_HEAD_MODULES`).
NEXT_SPIKE_HEADS = NEXT_SPIKE_HEAD_MODULES


def weight_files(model_dir, flag: str = "--model") -> List[Path]:
    """The safetensors files that hold a model directory's weights: ``[model.safetensors]``, or,
    for weights saved in shards (no ``model.safetensors``; :data:`SHARDED_WEIGHTS_INDEX`), the
    shard files its ``weight_map`` names, in name order. ``from_pretrained`` reads either layout.

    Raises:
        FileNotFoundError: neither ``model.safetensors`` nor the index is there, or a shard the
            index names is missing (named, with the index).
        ValueError: the index is not a safetensors index (no ``weight_map`` of file names).
    """
    import json

    d = Path(model_dir)
    if (d / "model.safetensors").is_file() or not (d / SHARDED_WEIGHTS_INDEX).is_file():
        if not (d / "model.safetensors").is_file():
            raise FileNotFoundError(f"{flag}: {str(d)!r} has no model.safetensors (the weights)")
        return [d / "model.safetensors"]
    index = d / SHARDED_WEIGHTS_INDEX
    try:
        weight_map = json.loads(index.read_text()).get("weight_map")
    except (ValueError, UnicodeDecodeError, AttributeError):
        weight_map = None
    names = sorted(set(weight_map.values())) if isinstance(weight_map, dict) and weight_map else []
    if not names or any(not isinstance(n, str) or Path(n).name != n for n in names):
        raise ValueError(f"{flag}: {str(index)!r} is not a safetensors weights index (expected a 'weight_map' from "
                         "weight names to shard files in the folder, as save_pretrained writes it)")
    missing = [n for n in names if not (d / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{flag}: {str(d)!r} lacks {len(missing)} of the {len(names)} weight shards that "
                                f"{SHARDED_WEIGHTS_INDEX} names ({', '.join(missing[:5])}); the weights are "
                                "incomplete (an interrupted copy?)")
    return [d / n for n in names]


def tensors_sha256(model_dir, flag: str = "--model") -> str:
    """Hex sha256 of a model directory's weights as tensors: for each tensor, in name order, its
    name, dtype and shape, then its bytes, read from the safetensors files of :func:`weight_files`
    (their headers; the tensors are not loaded). Unlike the digest of the files it does not depend
    on how they were saved: the same weights whole or in shards (``push`` uploads a folder saved in
    shards as one ``model.safetensors``) give the same digest."""
    import hashlib
    import json
    import struct

    entries = []
    for path in weight_files(model_dir, flag):
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        for name, e in header.items():
            if name != "__metadata__":
                start, stop = e["data_offsets"]
                entries.append((name, e["dtype"], e["shape"], path, 8 + n + start, stop - start))
    h = hashlib.sha256()
    handles = {}
    try:
        for name, dtype, shape, path, start, size in sorted(entries, key=lambda e: e[0]):
            h.update(json.dumps([name, dtype, shape]).encode())
            f = handles.get(path) or handles.setdefault(path, open(path, "rb"))
            f.seek(start)
            while size > 0:
                block = f.read(min(size, 1 << 20))
                if not block:
                    raise ValueError(f"{flag}: {str(path)!r} ends inside the tensor {name!r} (cut short?)")
                h.update(block)
                size -= len(block)
    finally:
        for f in handles.values():
            f.close()
    return h.hexdigest()


def _hub_download_hint(model_dir, path: Path) -> str:
    """For a ``--model`` that does not exist here and has the shape of a Hub repository id
    (``lab/neuroformer-a2929``, as a model card names it): how to make the local copy the commands
    read (they do not download; ``neuroformer push`` output is a repository with every file of the
    model directory). Empty otherwise.

    A path whose folder exists here (``runs/quickstart`` beside a ``runs`` folder) is a local path,
    not a repository id: a model still training (``train`` and ``finetune`` write their
    ``--output-dir`` only when they end) or a mistyped name. The hint then says so and names the
    model folders there, instead of telling the user to download ``runs/quickstart`` from the Hub."""
    from .hub import check_repo_id

    if path.exists() or not isinstance(model_dir, str):
        return ""
    try:
        check_repo_id(model_dir)
    except ValueError:
        return ""
    if path.parent.is_dir():
        models = sorted(p.name for p in path.parent.iterdir() if (p / "config.json").is_file())
        return (f"; {str(path.parent)!r} is a folder here without {path.name!r}: 'neuroformer train' and 'finetune' "
                "write their --output-dir only when they end (is that run still going?)"
                + (f"; the model folders in {str(path.parent)!r}: {', '.join(models)}" if models else ""))
    return (f"; if {model_dir!r} is a Hub repository, download it first and pass the folder: hf download "
            f"{model_dir} --local-dir {model_dir.split('/')[-1]} (add --revision BRANCH for a branch)")


def check_model_dir(model_dir, flag: str = "--model", weights: bool = True,
                    written_by: str = "'neuroformer train'") -> Path:
    """Refuse, before anything is loaded, a directory that is not a model written by ``neuroformer train``.

    Args:
        model_dir: the directory.
        flag: the option or argument named in the messages.
        weights: also require ``model.safetensors`` (or weights saved in shards with their
            index, :func:`weight_files`) and read its header (False: config and tokenizer
            only, e.g. ``finetune --from-scratch``).
        written_by: the command whose output the messages say is expected (``"'neuroformer
            finetune'"`` where a fine-tuned decoder is, as ``decode --model``).

    Returns:
        The directory as a :class:`~pathlib.Path`.

    A save into the directory that was killed after it committed (its journal is there) is
    completed first, as ``from_pretrained`` completes it
    (:func:`hf_neuroformer.save_journal.finish_interrupted_save`): the files still staged were
    otherwise reported missing.

    Raises:
        FileNotFoundError: the directory is a ``neuroformer prepare`` output (named as such), or it,
            or one of :data:`MODEL_DIR_FILES`, is missing (named
            with what it holds: PyTorch pickle weights, :data:`PICKLED_WEIGHTS`, with the call that
            converts them), or a weight shard its index names.
        ValueError: ``model.safetensors`` (or a shard) is not a readable safetensors file
            (truncated or damaged).
    """
    from .save_journal import finish_interrupted_save

    d = Path(model_dir)
    if not d.is_dir():
        # a recording given as the model ('--model rec.nwb' for '--data rec.nwb') was told only what --model is
        file_hint = ""
        if d.is_file() and (d.name in MODEL_DIR_FILES or d.suffix == ".safetensors"):
            file_hint = f"; it is a file of a model folder: pass the folder {str(d.parent)!r}"
        elif d.is_file() and d.suffix.lower() in (".nwb", ".npz", ".csv", ".parquet", ".mat") and flag == "--model":
            file_hint = "; it is a recording file: pass it as --data, and the model folder as --model"
        raise FileNotFoundError(f"{flag}: {str(d)!r} is not a directory; expected one written by {written_by}"
                                + file_hint + _hub_download_hint(model_dir, d))
    if (d / "manifest.json").is_file() and (d / "data").is_dir():
        # a 'neuroformer prepare' output holds config.json, vocab.json and tokenizer_config.json: it was told
        # only that it 'has no model.safetensors (the weights)'
        raise FileNotFoundError(f"{flag}: {str(d)!r} is a prepared directory ('neuroformer prepare': windows for "
                                f"training, manifest.json), not a model; expected a directory written by {written_by}"
                                " ('neuroformer train --data' with this directory trains a model on its windows)")
    finish_interrupted_save(d)
    # weights saved in shards (save_pretrained with a max_shard_size) stand for model.safetensors
    sharded = not (d / "model.safetensors").is_file() and (d / SHARDED_WEIGHTS_INDEX).is_file()
    missing = [f"{f} ({what})" for f, what in MODEL_DIR_FILES.items()
               if (weights or f != "model.safetensors") and not (d / f).is_file()
               and not (f == "model.safetensors" and sharded)]
    if missing:
        from .save_journal import STAGING_PREFIX

        # the first save into the folder was killed before its commit: "expected a directory written
        # by 'neuroformer train'" said nothing of the run that did write there and stopped
        staged = sorted(p.name for p in d.glob(STAGING_PREFIX + "*") if p.is_dir())
        interrupted = (f"; a save into it was interrupted before it was complete ({', '.join(staged)} holds its "
                       "unfinished files, which are not a model): run the command that wrote it again"
                       if staged else "")
        pickled = [f for f in PICKLED_WEIGHTS if (d / f).is_file()]
        if pickled and any(m.startswith("model.safetensors ") for m in missing):
            # transformers loads these, so "has no ... (the weights)" read as a wrong path
            interrupted += (f"; it holds PyTorch pickle weights ({', '.join(pickled)}), which this package does not read "
                            "(only safetensors): convert them once, after import hf_neuroformer, with "
                            f"AutoModelForPreTraining.from_pretrained({str(d)!r}).save_pretrained({str(d)!r}) (a fine-tuned "
                            "decoder: AutoModelForSequenceClassification)")
        if (d / "trainer_state.json").is_file():  # checkpoints/step-N of train, checkpoint-N of finetune
            run = d.resolve().parent.parent if d.resolve().parent.name == "checkpoints" else None
            interrupted += (f"; it is a resumable training checkpoint (trainer_state.json), not a model: pass the run "
                            f"folder{f' {str(run)!r}' if run is not None else ''}, where train / finetune write the "
                            "model (resume an interrupted run with train --resume)")
        elif any((c / "trainer_state.json").is_file() for c in d.iterdir() if c.is_dir()):
            # the run's checkpoints/ folder itself (tab completion stops there) was told only what it lacks
            interrupted += (f"; it is the folder of a run's resumable training checkpoints (trainer_state.json in "
                            f"its subfolders), not a model: pass the run folder {str(d.resolve().parent)!r}, where "
                            "train / finetune write the model")
        raise FileNotFoundError(f"{flag}: {str(d)!r} has no {' and no '.join(missing)}; expected a directory written "
                                f"by {written_by}{interrupted}")
    if weights:
        from safetensors import SafetensorError, safe_open

        for path in weight_files(d, flag):
            try:
                with safe_open(str(path), framework="pt") as f:
                    f.keys()
            except (SafetensorError, OSError) as err:
                raise ValueError(f"{flag}: {str(path)!r} is not a readable safetensors file ({err}); the weights are "
                                 "damaged or incomplete (an interrupted copy?)") from None
    return d


def _read_model_config(d, flag: str):
    import json

    from .configuration_neuroformer import NeuroformerConfig

    path = Path(d) / "config.json"
    try:
        raw = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):  # not JSON: transformers' OSError below says so
        raw = None
    else:
        # another JSON in its place (evaluate's metrics written over it) loaded as the default
        # config, and the weights then failed with a size mismatch blamed on model.safetensors;
        # a JSON list failed inside transformers with a TypeError traceback
        model_type = raw.get("model_type") if isinstance(raw, dict) else None
        if model_type != NeuroformerConfig.model_type:
            what = f"keys {sorted(raw)[:6]}..." if isinstance(raw, dict) else f"a JSON {type(raw).__name__}"
            raise ValueError(f"{flag}: {str(path)!r} is not a Neuroformer model config (model_type {model_type!r}, "
                             f"expected {NeuroformerConfig.model_type!r}; it holds {what})")
    try:
        return NeuroformerConfig.from_pretrained(d)
    except OSError as err:  # transformers' error for a config.json that is not JSON
        raise ValueError(f"{flag}: {str(path)!r} cannot be read as a model config ({err})") from None
    except ValueError as err:  # a field the config refuses
        raise ValueError(f"{flag}: {str(path)!r}: {err}") from None


def is_decoder_config(config) -> bool:
    """True for the config of a fine-tuned :class:`~hf_neuroformer.NeuroformerForBehaviorDecoding`."""
    return bool(getattr(config, "decoding_targets", None)) or "NeuroformerForBehaviorDecoding" in (
        getattr(config, "architectures", None) or [])


@contextlib.contextmanager
def quiet_loading():
    """transformers' loading report table and progress bar off inside the block (the callers read
    ``output_loading_info`` and act on it themselves), restored afterwards; so is the warning of
    next-spike heads missing from the checkpoint
    (:class:`~hf_neuroformer.modeling_neuroformer.NextSpikeHeadsNotLoadedWarning`), which the
    callers judge from the same report (refused where the heads are needed)."""
    from transformers.utils import logging as hf_logging

    verbosity, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NextSpikeHeadsNotLoadedWarning)
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bar:
            hf_logging.enable_progress_bar()


def weights_not_loaded(info: dict) -> List[str]:
    """The weight names that ``from_pretrained(..., output_loading_info=True)``'s ``info`` reports
    missing from the file or of another shape there (transformers initialises both at random and
    only logs it), sorted: the missing ones, then the mismatched ones."""
    return sorted(info.get("missing_keys", ())) + sorted(k[0] if isinstance(k, tuple) else k
                                                         for k in info.get("mismatched_keys", ()))


def refuse_missing_weights(missing: Sequence[str], where: str, whose: str, expected: str,
                           consequence: str = "they would be random") -> None:
    """Refuse a load that left ``missing`` weights (:func:`weights_not_loaded`) at their random
    initialisation (transformers only logs them): the one message of every loader of a model
    directory (``--model`` / ``--decoder`` commands, ``push_to_hub``).

    Args:
        missing: the weight names not loaded; nothing happens when empty.
        where: the message's start: the flag and the file (or folder) read.
        whose: whose weights, e.g. ``"model's"``.
        expected: what was expected instead, e.g. ``"a directory written by 'neuroformer train'"``.
        consequence: what the missing weights would be or do.

    Raises:
        ValueError: ``"{where} lacks {n} of the {whose} weights ({the first 5}); {consequence}:
            expected {expected}"``.
    """
    if not missing:
        return
    raise ValueError(f"{where} lacks {len(missing)} of the {whose} weights ({first_few(missing, 5, quote=False)}); "
                     f"{consequence}: expected {expected}")


def check_weight_shapes(info: dict, flag: str, model_dir) -> None:
    """Refuse a load whose ``info`` (``from_pretrained(..., output_loading_info=True,
    ignore_mismatched_sizes=True)``) reports weights of another shape in the file than in the
    model that ``config.json`` builds. Without ``ignore_mismatched_sizes`` transformers raised
    "look at the above report!", a report that :func:`quiet_loading` hides, so the message named
    no weight; here the first few are named with both shapes.

    Raises:
        ValueError: naming ``flag``, the directory and the weights (file shape, model shape).
    """
    mismatched = sorted((e if isinstance(e, tuple) else (e, None, None)) for e in info.get("mismatched_keys") or ())
    if not mismatched:
        return
    shown = first_few([f"{k} {tuple(a) if a is not None else '?'} in the file, {tuple(b) if b is not None else '?'} "
                       "in the model" for k, a, b in mismatched], quote=False, sep="; ")
    raise ValueError(f"{flag}: {str(model_dir)!r}: its weights file holds {len(mismatched)} weights of another shape "
                     f"than the model its config.json describes ({shown}): config.json and the weights are of "
                     "different models (an edited config.json, or the files of two runs); expected the files of one "
                     "run")


def _decoder_refusal(d, config, flag: str, reads: Optional[str]) -> str:
    """The refusal of the fine-tuned decoder directory ``d`` (its ``config``) where a pretrained model
    is needed (:func:`load_pretrained`): its class and targets, why (``reads``, else that it cannot
    generate or score spikes without next-spike heads) and the directory to pass instead."""
    from .decoding import target_label

    targets = [target_label(t.get("name"), t.get("column")) for t in (config.decoding_targets or [])]
    weight = getattr(config, "decoding_generative_loss_weight", 0) or 0
    if not reads:
        why = ("its next-spike heads (id_head, dt_head) were not saved (decoding_generative_loss_weight = 0), so it can "
               "neither generate spikes nor score them")
    elif weight > 0:
        why = (f"{reads}, not a decoder's (its attention was fine-tuned to decode its targets, the next-spike loss an "
               f"auxiliary term: decoding_generative_loss_weight = {weight:g})")
    else:
        why = f"{reads}, not a decoder's"
    return (f"{flag}: {str(d)!r} is a fine-tuned decoder (NeuroformerForBehaviorDecoding, targets {targets}); {why}: "
            "pass the pretrained model it was fine-tuned from (the directory written by 'neuroformer train')")


def load_pretrained(model_dir, *, next_spike_heads: bool = True, flag: str = "--model", reads: Optional[str] = None):
    """Load ``(model, tokenizer, split_plan)`` from a directory written by ``neuroformer train``.

    The model is a :class:`~hf_neuroformer.NeuroformerForPreTraining` in float32 (weights saved in
    bf16 / fp16 are upcast; transformers 5 would keep them in half precision). transformers initialises
    any weight missing from ``model.safetensors`` at random (and only logs it); here every
    missing weight is refused, so that generation, bits per spike and likelihoods never run on
    random heads. A fine-tuned decoder directory (``neuroformer finetune``) holds the next-spike
    heads only when it was fine-tuned with ``decoding_generative_loss_weight > 0``.

    Args:
        model_dir: the directory.
        next_spike_heads: require the next-spike heads (:data:`NEXT_SPIKE_HEADS`); False for uses
            of the backbone alone (embeddings), which then also take a fine-tuned decoder.
        flag: the option named in the messages.
        reads: why the caller needs the pretrained model itself rather than a decoder
            (``connectivity`` and ``attention-map``: "connectivity is read from the attention of
            the pretrained model ..."): given, every fine-tuned decoder is refused with this reason,
            also one fine-tuned with a next-spike loss term (``decoding_generative_loss_weight`` >
            0), whose saved next-spike heads made it load as a pretrained model without a word
            (its attention is a backbone's fine-tuned to decode its targets). Default: only a
            decoder without next-spike heads is refused (it can neither generate spikes nor score
            them).

    Warns:
        UserWarning: the directory holds the record of a ``train`` (or ``finetune``) run into it that
            has not saved its model (:func:`~hf_neuroformer.run_record.unfinished_run_note`: still
            running, or killed): the model loaded is the one saved before that run, and the message
            names that run's checkpoints.

    Raises:
        FileNotFoundError: the directory, one of :data:`MODEL_DIR_FILES` or ``splits.json`` is missing
            (with that record's sentence when it is there: a first run into the folder killed).
        ValueError: ``config.json`` is not a valid config, ``model.safetensors`` is damaged or
            holds weights of other shapes than ``config.json``'s model (:func:`check_weight_shapes`), the
            directory is a fine-tuned decoder without next-spike heads, or any fine-tuned decoder
            with ``reads`` (names the directory, the class and what to pass instead), other weights are missing from the file, or the tokenizer
            files do not match the config (another vocabulary size or window settings).
    """
    from safetensors import SafetensorError
    from transformers import AutoModelForPreTraining, AutoTokenizer

    from .windows import SplitPlan

    from .run_record import checked_model_dir_noting_unfinished_run

    d = checked_model_dir_noting_unfinished_run(model_dir, flag)
    config = _read_model_config(d, flag)
    if reads and is_decoder_config(config):  # before its weights are read: whatever they hold, it is a decoder
        raise ValueError(_decoder_refusal(d, config, flag, reads))
    plan_file = d / "splits.json"
    if not plan_file.is_file():
        raise FileNotFoundError(f"{flag}: {str(plan_file)!r} is missing; it records which windows are test windows")
    try:
        with quiet_loading():  # the loading report is judged below instead of printed
            # float32 whatever the file's dtype (transformers 5 keeps a bf16 / fp16 file's), as train scores and
            # generates, so that a model saved in half precision gives the same kind of numbers
            model, info = AutoModelForPreTraining.from_pretrained(d, config=config, output_loading_info=True,
                                                                  ignore_mismatched_sizes=True, dtype=torch.float32)
    except (OSError, SafetensorError, RuntimeError) as err:
        raise ValueError(f"{flag}: the weights in {str(d / 'model.safetensors')!r} cannot be loaded "
                         f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
    check_weight_shapes(info, flag, d)
    missing = weights_not_loaded(info)
    heads = [k for k in missing if k.split(".")[0] in NEXT_SPIKE_HEADS]
    other = [k for k in missing if k not in heads]
    if heads and next_spike_heads:
        if is_decoder_config(config):
            raise ValueError(_decoder_refusal(d, config, flag, reads))
        raise ValueError(f"{flag}: {str(d)!r} holds no weights for the next-spike heads ({', '.join(heads)}); they "
                         "would be random: expected a directory written by 'neuroformer train'")
    refuse_missing_weights(other, f"{flag}: {str(d / 'model.safetensors')!r}", "model's",
                           "a directory written by 'neuroformer train' with the same code version")
    tokenizer = AutoTokenizer.from_pretrained(d)
    try:  # files of two runs in one folder: the unit check then blamed the recording ('not the units ...')
        check_tokenizer_matches_config(tokenizer, model.config)
    except ValueError as err:
        raise ValueError(f"{flag}: {str(d)!r}: its tokenizer files (vocab.json, tokenizer_config.json) do not belong "
                         f"to its config.json / weights ({err}); expected the files of one 'neuroformer train' "
                         "run") from None
    plan = SplitPlan.read(plan_file)
    return model, tokenizer, plan


def check_recording_units(tokenizer, recording, model_dir=None, flag: str = "--data",
                          epoch: bool = True) -> Optional[dict]:
    """Refuse a recording whose units are not the ones the model was trained on, and compare its
    spikes with the model's record of its training spikes.

    The unit vocabulary holds ``"<session>/<unit name>"`` entries
    (:meth:`~hf_neuroformer.NeuroformerTokenizer.unit_token`), so another session, or the same
    session read with other unit names, has units the model has no embedding for.

    With ``model_dir``, a recording with the model's units but other spikes is also noticed:
    the model's ``metrics.json`` holds the fingerprint of the spikes inside each split's
    segments (``split_spikes``, :func:`hf_neuroformer.windows.split_spikes_digest`), and when a
    split this recording covers has other spikes a ``UserWarning`` names it (e.g. a network
    re-simulated over the same file: the model was not trained on these spikes, and scores
    against this recording's ground truth describe another network). A warning, not an error:
    scoring a model on new data of the same units is allowed; the returned comparison is for
    the command's output file, so that the mismatch is on record beside the results.

    The refusal names ``flag`` and advises passing the recording the model was trained on, "(and
    --epoch)" for a command-line flag, "(and epoch)" for a Python argument; ``epoch=False`` leaves
    the epoch out, for the commands that have no ``--epoch`` (``connectivity``, ``attention-map``).

    A recording that holds only some of the units the model knows of its session is accepted
    with a ``UserWarning`` naming the missing ones (generation samples only the units present,
    so the others' probability inflates their rates, and the pasts lack the missing spikes).

    Returns:
        None without ``model_dir``; else :func:`hf_neuroformer.windows.compare_split_spikes`'s
        dict (``status`` ``"same spikes"``, ``"other spikes"``, ``"not comparable"`` or
        ``"not recorded"``).

    Raises:
        ValueError: naming how many units are foreign, the first few, that a trained model reads
            only the units it was trained on, the model's session(s) and unit count, and what to
            pass instead; for a Python argument (``flag`` not ``--...``) whose recording holds some
            of the model's units, also the ``recording.select_units([...])`` call that keeps them.
    """
    vocab = tokenizer.get_vocab()
    tokens = tokenizer.recording_unit_tokens(recording)
    foreign = [t for t in tokens if t not in vocab]
    if not foreign:
        _warn_missing_units(tokenizer, recording, model_dir, flag)
        return None if model_dir is None else warn_other_training_spikes(recording, model_dir, flag, tokenizer)
    specials = set(tokenizer.all_special_tokens)
    known = [t for t in vocab if t not in specials]
    sessions = sorted({NeuroformerTokenizer.session_of(t) for t in known if "/" in t})
    shown = first_few(foreign, count_rest=False)
    model = f"the model {str(model_dir)!r}" if model_dir is not None else "the model"
    # the same unit names under "session0": before the readers named a .csv / .parquet table and a .npz without a
    # 'session' key after the file's stem, they were all "session0", so a model trained then refused the very file
    # it was trained on, and "pass the recording it was trained on" named no way out. (Only "session0": generic
    # names such as unit0.. are shared by every session, so another session is told to pass the right recording.)
    old = "session0" in sessions and all(tokenizer.unit_token("session0", n) in vocab for n in recording.unit_names)
    fix = (f"pass the recording {and_epoch(flag, epoch)}it was trained on" if not old else
           "the model knows these unit names in session 'session0', the session of every .csv / .parquet table and "
           "of every .npz without a 'session' key before the readers named them after the file's stem: if this is "
           "the file it was trained on, read it as session 'session0' (load_recording(path, session='session0'); "
           "on the command line name the table session0.csv / session0.parquet, or write session='session0' into "
           f"the .npz); else pass the recording {and_epoch(flag, epoch)}it was trained on")
    # the tokenizer's own advice (tokenizer.add_units) gives the new units token ids, not the embedding a trained
    # model lacks for them: say what a model can read, and in Python the call that keeps the units it knows
    kept = [str(n) for n, t in zip(recording.unit_names, tokens) if t in vocab]
    keep = ""
    if kept and not flag.startswith("--"):
        names = first_few(kept, 5, count_rest=False)
        keep = (f"to read the {len(kept)} units of this recording it knows, keep only those: "
                f"recording.select_units([{names}]); ")
    raise ValueError(
        f"{flag}: this recording's units are not the ones {model} was trained on: {len(foreign)} of its "
        f"{len(tokens)} units (session {recording.session!r}: {shown}) are not units of this model, and a trained "
        "model reads only the units it was trained on (it holds no embedding for any other; new units mean growing "
        "it with model.resize_unit_embeddings and training it on them); the model knows "
        f"{len(known)} units of session {', '.join(repr(s) for s in sessions) or '(none)'}; {keep}{fix}"
    )


def refuse_foreign_units(tokenizer, recording, flag: str = "recording") -> None:
    """:func:`check_recording_units`' refusal alone (no warning for a subset of the units): a
    recording with a unit the model's vocabulary lacks raises
    :class:`~hf_neuroformer.UnknownUnitError` (a ``ValueError``) naming the model's session(s) and
    advising the recording it was trained on. Without it the tokenizer's ``UnknownUnitError``
    advised ``tokenizer.add_units(recording)``, which for a trained model only moves the failure
    to the tokenizer-against-config check (the model has no embedding for the new units)."""
    from .tokenization_neuroformer import UnknownUnitError

    vocab = tokenizer.get_vocab()
    if any(t not in vocab for t in tokenizer.recording_unit_tokens(recording)):
        try:
            check_recording_units(tokenizer, recording, flag=flag)  # raises before any warning
        except ValueError as err:  # the tokenizer's error class, as callers catch it
            raise UnknownUnitError(str(err)) from None


def units_absent(tokenizer, recording) -> List[str]:
    """The vocabulary entries (``"<session>/<unit>"``) of ``tokenizer``'s units of the recording's
    session(s) that ``recording`` does not hold. A recording of a subset of the model's units
    passes the vocabulary check (every unit it has is known), while the absent units are read as
    silent in every past and current window. Units of other sessions of a multi-session
    vocabulary are not counted."""
    have = set(tokenizer.recording_unit_tokens(recording))
    sessions = {NeuroformerTokenizer.session_of(t) for t in have}
    specials = set(tokenizer.all_special_tokens)
    return [t for t in tokenizer.get_vocab() if t not in specials and "/" in t and t not in have
            and NeuroformerTokenizer.session_of(t) in sessions]


def _warn_missing_units(tokenizer, recording, model_dir, flag: str, stacklevel: int = 3) -> None:
    """Warn when a recording holds only some of the units the model knows of its session(s)
    (:func:`units_absent`): generation then samples only the units present (the unit-id head's
    probability of the others is spread over them, so their rates come out inflated), and every
    past window lacks the missing units' spikes, while the model was trained with them. ``stacklevel``
    counts from this function (3: the caller of :func:`check_recording_units`)."""
    missing = units_absent(tokenizer, recording)
    if not missing:
        return
    present = tokenizer.recording_unit_tokens(recording)
    sessions = sorted({NeuroformerTokenizer.session_of(t) for t in present})
    model = f"the model {str(model_dir)!r}" if model_dir is not None else "the model"
    shown = first_few(missing, count_rest=False)
    warnings.warn(
        f"{flag}: this recording holds {len(present)} of the {len(present) + len(missing)} units {model} was "
        f"trained on in session {', '.join(repr(x) for x in sessions)}; {len(missing)} "
        f"{'is' if len(missing) == 1 else 'are'} missing ({shown}). "
        "Generation samples only the units present (the probability the model gives the missing ones goes to "
        "the others, inflating their rates), scoring and decoding read them as silent, and every past window "
        "lacks their spikes; pass the recording with all its units to reproduce the model's conditions",
        UserWarning, stacklevel=stacklevel)


def compare_with_training_spikes(recording: SpikeRecording, model_dir) -> dict:
    """:func:`hf_neuroformer.windows.compare_split_spikes` of ``recording`` against the model
    directory's ``metrics.json`` record (``split_spikes``) and ``splits.json``; status ``"not
    recorded"`` when either is missing or unreadable."""
    import json

    from .windows import SplitPlan, compare_split_spikes

    d = Path(model_dir)
    try:
        stored = json.loads((d / "metrics.json").read_text()).get("split_spikes")
        plan = SplitPlan.read(d / "splits.json")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        # no record to compare with (load_pretrained has checked what it needs)
        return {"status": "not recorded", "splits_compared": [], "splits_differing": []}
    return compare_split_spikes(recording, plan, stored)


def warn_other_training_spikes(recording: SpikeRecording, model_dir, flag: str, tokenizer=None) -> dict:
    """The ``split_spikes`` check of :func:`check_recording_units` (see there), and of
    :func:`hf_neuroformer.likelihood.split_bits_per_spike`: ``recording`` compared with the
    fingerprint of the training spikes in ``model_dir``'s ``metrics.json``
    (:func:`compare_with_training_spikes`).

    ``tokenizer`` (the model's :class:`NeuroformerTokenizer`; default None) lets the warning say
    whether the recording holds all the units the model knows of its session(s)
    (:func:`units_absent`): without it, or with all of them, it says the recording "has the units of
    the model"; with only some, it says how many of them it holds (the spikes of a recording lacking
    units differ from the training spikes for that reason alone).

    Warns:
        UserWarning: ``"<flag>: this recording has the units of the model ... but not the spikes it
            was trained on, in its <split> split (...)"`` when a split it covers differs, or, for a
            recording holding only some of the model's units, ``"<flag>: of the 15 units of its
            session the model ... was trained on, this recording holds 10, and not the spikes it was
            trained on, in its <split> split (...)"``; the warning points at the caller of the function
            that called this one.

    Returns:
        :func:`compare_with_training_spikes`'s dict.
    """
    result = compare_with_training_spikes(recording, model_dir)
    if result["status"] == "other spikes":
        counts = "; ".join(f"{s}: {a} here, {b} at training" + (" (same count, other times or units)" if a == b else "")
                           for s, (a, b) in result["n_spikes"].items())
        missing = units_absent(tokenizer, recording) if tokenizer is not None else []
        where = f"in its {' / '.join(result['splits_differing'])} split ({counts})"
        if missing:  # it said "has the units of the model" right after the warning that it holds only some of them
            n_here = len(tokenizer.recording_unit_tokens(recording))
            said = (f"{flag}: of the {n_here + len(missing)} units of its session the model {str(model_dir)!r} was "
                    f"trained on, this recording holds {n_here}, and not the spikes it was trained on, {where}, as "
                    "when units are left out of the training file")
        else:
            said = (f"{flag}: this recording has the units of the model {str(model_dir)!r} but not the spikes it was "
                    f"trained on, {where}, as when a file is re-simulated or re-exported over the training file")
        warnings.warn(said + ". Results on it are not results on the model's own data; pass the recording the model "
                      "was trained on to reproduce them", UserWarning, stacklevel=3)
    return result


def generation_windows(plan, split: str, config, *, stacklevel: int = 2):
    """``(starts, clips)``: the windows :func:`generate_split` (and ``train``'s test generation)
    generates for ``split`` of ``plan``: the split tiled with non-overlapping current windows
    (:func:`~hf_neuroformer.windows.window_starts_for_split` with ``stride=current_window``), and in
    trial mode each window's trial start (else NaN).

    Trials that overlap in time (events padded into trials closer together than their length) go
    to one split together, and their windows overlap, which one generated recording cannot hold:
    ``generate_spikes`` refused them ('window_starts: expected non-overlapping current windows'),
    after the whole training run in ``train``. Where windows overlap, the one of the earliest-starting
    trial is kept and the other left out, the rule by which validation and test windows are scored
    (:func:`~hf_neuroformer.windows.tiling_windows`, which says more); a warning names the trials and
    counts the windows left out; the fidelity metrics compare only the time the generated windows cover.
    ``stacklevel``: where that warning points, as ``warnings.warn`` takes it (2: the caller of this
    function; a public function calling it passes 3, its own caller's line).
    """
    from .windows import tiling_windows

    # tiling_windows takes the stacklevel this function would pass to warnings.warn
    return tiling_windows(plan, split, config, use="generated", stacklevel=stacklevel)


def generate_split(model, tokenizer, recording: SpikeRecording, plan, split: str = "test", *,
                   windows: Optional[tuple] = None, **kwargs) -> SpikeRecording:
    """Generate the windows of one split of ``plan`` (a :class:`~hf_neuroformer.windows.SplitPlan`):
    those of :func:`generation_windows` (non-overlapping; a warning says when overlapping trials
    left some out).

    ``windows`` is ``generation_windows(plan, split, model.config)`` where the caller has it already
    (``neuroformer generate`` counts the windows against its limit before reading the recording), so
    that the plan is not tiled twice; the warning of overlapping trials is then the caller's to show.
    Default ``None``: computed here. Other keyword arguments go to :func:`generate_spikes`.

    With an ``"events:"`` modality, each result's ``generation_stats`` also holds
    ``n_events_in_no_window`` (modality name -> events of the split's segments that no generated
    window reads, so no window was conditioned on them: a trial's end shorter than a window, a window
    left out for overlapping another; :func:`~hf_neuroformer.modalities.events_in_no_window`).

    Its warnings, and those of :func:`generate_spikes` under it, name the caller's line.

    Raises:
        ValueError: if the split's segments do not lie inside the recording (a different
            recording than the one the model was trained on), or the split has no windows;
            ``windows`` other than a ``(starts, clips)`` pair; ``window_starts`` or
            ``past_clip_starts`` among the keyword arguments (the plan gives them).
        TypeError: ``plan`` not a :class:`~hf_neuroformer.windows.SplitPlan` (a ``splits.json`` path:
            read it with ``SplitPlan.read``), or ``recording`` not a :class:`SpikeRecording`.
    """
    from .modalities import events_in_no_window
    from .windows import check_split_in_recording

    for name in ("window_starts", "past_clip_starts"):  # failed as "got multiple values for keyword argument"
        if name in kwargs:
            raise ValueError(f"{name}: generate_split takes the windows and their past clips from the plan (the trial "
                             "starts in trial mode); pass windows=(starts, clips) as generation_windows(plan, split, "
                             "config) returns them, or call generate_spikes for windows and clips of your own")
    if windows is not None and not (isinstance(windows, tuple) and len(windows) == 2):
        # a 1-tuple failed with "not enough values to unpack", a list of starts with "object of type 'float' has no len()"
        raise ValueError(f"windows: expected the pair (starts, clips) that generation_windows(plan, split, config) "
                         f"returns, got {type(windows).__name__}"
                         + (f" of length {len(windows)}" if isinstance(windows, (tuple, list)) else ""))
    check_split_in_recording(plan, split, recording)
    # its warning at the caller's line (a caller of the package: its own line); 2 + frames from here
    starts, clips = (generation_windows(plan, split, model.config, stacklevel=2 + _frames_to_caller()) if windows is None
                     else windows)
    if len(starts) == 0:
        raise ValueError(f"split {split!r}: no windows")
    clips = clips if plan.mode == "trials" else None
    out = generate_spikes(model, tokenizer, recording, starts, past_clip_starts=clips, **kwargs)
    unread = events_in_no_window(recording, model.config, [(starts, clips)], within=plan.segments[split])
    for rec in (out if isinstance(out, list) else [out]) if unread else []:
        rec.generation_stats["n_events_in_no_window"] = dict(unread)
    return out


#: ``ScratchData`` names under which ``neuroformer generate`` records, in the NWB file it writes, the
#: window grid its spikes lie on (the model's ``current_window`` and ``dt_resolution``, s), so that
#: ``neuroformer evaluate`` can compute the ISI KS floor of dt-bin quantisation without the model.
GRID_SCRATCH = {
    "current_window": "hf_neuroformer_current_window",
    "dt_resolution": "hf_neuroformer_dt_resolution",
}

#: ``scratch`` name of the fingerprint of the recorded spikes the generated windows were made from
#: (:func:`source_scratch`).
SOURCE_SCRATCH = "hf_neuroformer_source_spikes_sha256"


def source_scratch(recording: SpikeRecording, support) -> dict:
    """``write_nwb(scratch=...)`` entry recording which spikes a generated file was made from:
    the sha256 (32 bytes as uint8) of :func:`hf_neuroformer.windows.spikes_digest` of the
    recording inside the generated windows (``support``, ``(n, 2)`` s). ``neuroformer evaluate``
    compares it with ``--real``, so scoring against another recording of the same units (a
    re-simulated file) is noticed even without ``--model``."""
    from .windows import spikes_digest

    d = spikes_digest(recording, support)
    return {SOURCE_SCRATCH: (np.frombuffer(bytes.fromhex(d["sha256"]), dtype=np.uint8).copy(),
                             f"sha256 of the recorded spikes (times, unit names) inside these windows, "
                             f"{d['n_spikes']} spikes: the recording these spikes were generated from")}


#: ``scratch`` name of the settings a generated file was made with (:func:`settings_scratch`).
SETTINGS_SCRATCH = "hf_neuroformer_generation_settings_json"


def settings_scratch(settings: dict) -> dict:
    """``write_nwb(scratch=...)`` entry holding ``settings`` (model directory, split, mode,
    order, seed, sampling settings, spike cap and batch size of ``neuroformer generate``) as
    UTF-8 JSON bytes (uint8), so that ``neuroformer evaluate`` can say what it scores and refuse
    to mix two models or splits."""
    import json

    raw = json.dumps(settings, sort_keys=True).encode()
    return {SETTINGS_SCRATCH: (np.frombuffer(raw, dtype=np.uint8).copy(),
                               "settings of 'neuroformer generate' that wrote these spikes (UTF-8 JSON)")}


def read_settings_scratch(scratch: Mapping[str, np.ndarray]) -> Optional[dict]:
    """The settings :func:`settings_scratch` recorded, or None when the file does not hold them."""
    import json

    if SETTINGS_SCRATCH not in scratch:
        return None
    return json.loads(bytes(np.asarray(scratch[SETTINGS_SCRATCH], dtype=np.uint8).reshape(-1)).decode())


def source_matches(recording: SpikeRecording, support, scratch: Mapping[str, np.ndarray]) -> Optional[bool]:
    """Whether ``recording``'s spikes inside ``support`` are those a generated file was made from
    (:func:`source_scratch`); None when the file does not record it."""
    from .windows import spikes_digest

    if SOURCE_SCRATCH not in scratch:
        return None
    stored = bytes(np.asarray(scratch[SOURCE_SCRATCH], dtype=np.uint8).reshape(-1)).hex()
    return spikes_digest(recording, support)["sha256"] == stored


def grid_scratch(config) -> dict:
    """``write_nwb(scratch=...)`` entries recording a model's window grid (:data:`GRID_SCRATCH`)."""
    return {
        GRID_SCRATCH["current_window"]: (np.array([float(config.current_window)]),
                                         "current_window of the model that generated these spikes, s"),
        GRID_SCRATCH["dt_resolution"]: (np.array([float(config.dt_resolution)]),
                                        "dt_resolution of the model that generated these spikes, s "
                                        "(spikes lie at the centres of its dt bins)"),
    }


def read_grid_scratch(scratch: Mapping[str, np.ndarray]) -> Optional[tuple]:
    """``(current_window, dt_resolution)`` in s from :func:`~hf_neuroformer.io.read_nwb_scratch`'s
    dict, or None when the file does not record them (not written by ``neuroformer generate``,
    or by an older version)."""
    names = (GRID_SCRATCH["current_window"], GRID_SCRATCH["dt_resolution"])
    if not all(n in scratch for n in names):
        return None
    return tuple(float(np.asarray(scratch[n]).reshape(-1)[0]) for n in names)


__all__ = ["GRID_SCRATCH", "MODES", "NEXT_SPIKE_HEADS", "ORDERS", "SamplingSettings", "check_model_dir",
           "check_true_or_false",
           "check_next_spike_model", "units_absent", "check_generation_batch_memory", "generation_row_bytes",
           "longest_generation_past",
           "SETTINGS_SCRATCH", "SOURCE_SCRATCH", "check_recording_units", "refuse_foreign_units", "compare_with_training_spikes", "decode_window_rows", "generate_spikes", "generate_split", "generation_windows", "grid_scratch",
           "is_decoder_config", "load_pretrained", "max_spikes_limit", "read_grid_scratch", "read_settings_scratch", "sample_window_tokens",
           "settings_scratch", "source_matches", "source_scratch", "weight_files",
           "MODEL_DIR_FILES", "SHARDED_WEIGHTS_INDEX", "PICKLED_WEIGHTS", "tensors_sha256", "quiet_loading",
           "weights_not_loaded", "check_weight_shapes"]
