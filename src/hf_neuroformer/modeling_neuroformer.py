"""The Neuroformer network (HF single-file policy: relative imports only).

Antoniades et al., "Neuroformer: Multimodal and Multitask Generative Pretraining for Brain Data",
ICLR 2024, arXiv 2311.00136. Architecture, as implemented here:

1. Each spike token is embedded as ``unit embedding + temporal embedding(t) (+ position)``, where
   ``t`` is the spike's time in seconds relative to the current window's start (dt bin centre).
   The original fed dt *indices* to its temporal embedding (GUIDE trap 3); here it is seconds.
2. The past window's spikes (a leading BOS, then spikes at negative ``t``) go through a
   bidirectional self-attention encoder (``num_past_layers``).
3. The current window's tokens (BOS, spikes, EOS) go through ``num_hidden_layers`` decoder layers:
   causal self-attention, cross-attention to the past encoding, MLP (pre-LayerNorm).
4. Two heads read each position: the next token's unit id (``logits``) and its dt bin
   (``dt_logits``); both are trained with cross-entropy (paper Sec. 3.3, "next spike
   prediction").

Attention runs through transformers' ``ALL_ATTENTION_FUNCTIONS`` (``sdpa`` by default, ``eager``
when attention weights are requested).
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.cache_utils import DynamicCache, EncoderDecoderCache
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput

from .binning import n_bins_covering, n_full_bins
from .configuration_neuroformer import (CONTRASTIVE_MAX_LOGIT_SCALE, CONTRASTIVE_MAX_TEMPERATURE, NeuroformerConfig,
                                        auto_map_for_heads, carried_auto_class, carried_remote_code, checked_int,
                                        config_after_completed_save, config_read_before_save_of,
                                        finish_interrupted_save_of)


def eager_attention_forward(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
    """Plain softmax attention; returns ``(output (B, Q, H, D), weights (B, H, Q, K))``."""
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = F.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = F.dropout(weights, p=dropout, training=module.training)
    out = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return out, weights


def _additive_mask(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Boolean ``(B, 1, Q, K)`` mask of allowed pairs -> additive float mask of ``dtype``."""
    zero = torch.zeros((), dtype=dtype, device=allowed.device)
    neg = torch.full((), torch.finfo(dtype).min, dtype=dtype, device=allowed.device)
    return torch.where(allowed, zero, neg)


def _as_additive(mask: Optional[torch.Tensor], dtype: torch.dtype) -> Optional[torch.Tensor]:
    """A bool allowed-mask, an additive float mask or None -> additive mask of ``dtype`` (or None)."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        return _additive_mask(mask, dtype)
    return mask if mask.dtype == dtype else mask.to(dtype)


def _check_right_padded(mask: torch.Tensor, cached: int = 0) -> None:
    """Refuse a current-window ``attention_mask`` ``(batch, seq_len)`` (bool) with a real token after
    padding. The current window's tokens are embedded by absolute position, so a left-padded row
    had its tokens at the wrong positions and gave other logits than the same window alone,
    without an error. ``cached``: how many of the mask's positions are in the KV cache; a new
    token after a cached padded one is a row continued past its end (rows of different lengths
    stepped together), and the message says so.

    Raises:
        ValueError: naming ``attention_mask``, the row and the position.
    """
    after_pad = mask[:, 1:] & ~mask[:, :-1]
    if bool(after_pad.any()):
        row, col = (int(v) for v in after_pad.nonzero()[0])
        if cached and col + 1 >= cached and not bool(mask[row, :cached].all()):
            # "pad on the right" named no fix here: the prompt was right-padded, and the new token follows its padding
            raise ValueError(
                f"attention_mask: row {row} has padding among its {cached} cached tokens and a real new token at "
                f"position {col + 1} after it; the tokens are embedded by absolute position, so a row that ends in "
                "padding cannot be continued from the cache: step together only rows of equal length, or continue "
                "that row alone (generate_spikes starts every row at BOS and pads a row only after its EOS)")
        raise ValueError(
            f"attention_mask: expected right padding (each row's real tokens first, then 0s), got a real token at "
            f"position {col + 1} of row {row} after padding; the current window's tokens are embedded by position "
            "(absolute), so pad on the right, as the processor and NeuroformerCollator do")


class NeuroformerTemporalEmbedding(nn.Module):
    """Sinusoidal features of a time in seconds, projected to ``hidden_size``.

    Frequencies are geometric between ``1 / temporal_max_period`` and ``1 / temporal_min_period``
    (Hz); input ``t`` of any shape (float, seconds) gives ``(*t.shape, hidden_size)``.
    """

    def __init__(self, config: NeuroformerConfig):
        super().__init__()
        self.num_frequencies = config.num_temporal_frequencies
        self.min_period = config.temporal_min_period
        self.max_period = config.temporal_max_period
        self.proj = nn.Linear(2 * self.num_frequencies, config.hidden_size)

    def angular_frequencies(self, device) -> torch.Tensor:
        """``(num_frequencies,)`` float32 angular frequencies, rad/s.

        Computed on first use per device and kept as a plain attribute, not a buffer:
        transformers 5 builds models on the meta device and leaves non-persistent buffers
        uninitialised after ``from_pretrained``.
        """
        cached = self.__dict__.get("_freq_cache")
        if cached is not None and cached.device == torch.device(device):
            return cached
        periods = torch.logspace(
            math.log10(self.max_period), math.log10(self.min_period), self.num_frequencies,
            dtype=torch.float64, device=device,
        )
        freqs = (2 * math.pi / periods).float()
        if freqs.device.type != "meta":
            self.__dict__["_freq_cache"] = freqs
        return freqs

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        phase = t.float().unsqueeze(-1) * self.angular_frequencies(t.device)
        feats = torch.cat([torch.sin(phase), torch.cos(phase)], dim=-1)
        return self.proj(feats.to(self.proj.weight.dtype))


class NeuroformerAttention(nn.Module):
    """Multi-head attention; self-attention when ``kv`` is None, else cross-attention."""

    def __init__(self, config: NeuroformerConfig, layer_idx: int = 0):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False  # causality is in the explicit mask
        self.num_key_value_groups = 1
        self.attention_dropout = config.attention_dropout
        h = config.hidden_size
        self.q_proj = nn.Linear(h, h)
        self.k_proj = nn.Linear(h, h)
        self.v_proj = nn.Linear(h, h)
        self.o_proj = nn.Linear(h, h)

    def forward(
        self,
        hidden_states: torch.Tensor,
        allowed: torch.Tensor,
        kv: Optional[torch.Tensor] = None,
        output_attentions: bool = False,
        cache: Optional[EncoderDecoderCache] = None,
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Attend from ``hidden_states`` to itself (``kv`` None) or to ``kv`` (cross-attention).

        Args:
            hidden_states: ``(B, Q, hidden)`` queries (the new tokens only when ``cache`` holds
                earlier ones).
            allowed: ``(B, 1, Q, K)`` bool, True where query ``q`` may attend to key ``k`` (or the
                same as an additive float mask, or None for no mask); ``K`` counts the cached keys
                too.
            kv: ``(B, K, hidden)`` past-window encoding for cross-attention.
            cache: decoder KV cache. Self-attention appends this step's keys/values to
                ``cache.self_attention_cache``; cross-attention projects ``kv`` once and reuses
                the stored keys/values at every later step (``cache.is_updated``).
        """
        b, q_len, _ = hidden_states.shape
        q = self.q_proj(hidden_states).view(b, q_len, self.num_heads, self.head_dim).transpose(1, 2)
        is_cross = kv is not None
        if is_cross and cache is not None and cache.is_updated.get(self.layer_idx, False):
            layer = cache.cross_attention_cache.layers[self.layer_idx]
            k, v = layer.keys, layer.values
        else:
            src = hidden_states if kv is None else kv
            k_len = src.shape[1]
            k = self.k_proj(src).view(b, k_len, self.num_heads, self.head_dim).transpose(1, 2)
            v = self.v_proj(src).view(b, k_len, self.num_heads, self.head_dim).transpose(1, 2)
            if cache is not None:
                if is_cross:
                    k, v = cache.cross_attention_cache.update(k, v, self.layer_idx)
                    cache.is_updated[self.layer_idx] = True
                else:
                    k, v = cache.self_attention_cache.update(k, v, self.layer_idx)
        # through get_interface, as transformers' models do: its set_attn_implementation() looks for
        # this call in the source and, without it, kept the old back-end (a log line, no error)
        impl = "eager" if output_attentions else (self.config._attn_implementation or "sdpa")
        fn: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(impl, eager_attention_forward)
        out, weights = fn(
            self,
            q,
            k,
            v,
            _as_additive(allowed, q.dtype),
            scaling=self.scaling,
            dropout=self.attention_dropout if self.training else 0.0,
        )
        out = out.reshape(b, q_len, -1).contiguous()
        return self.o_proj(out), (weights if output_attentions else None)


class NeuroformerMLP(nn.Module):
    def __init__(self, config: NeuroformerConfig):
        super().__init__()
        self.fc_in = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]
        self.fc_out = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.fc_out(self.act(self.fc_in(x))))


class NeuroformerEncoderLayer(GradientCheckpointingLayer):
    """Past-window layer: bidirectional self-attention + MLP, pre-LayerNorm (recomputed in the
    backward pass after ``model.activation_checkpointing_enable()``)."""

    def __init__(self, config: NeuroformerConfig, layer_idx: int):
        super().__init__()
        self.ln_attn = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = NeuroformerAttention(config, layer_idx)
        self.ln_mlp = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = NeuroformerMLP(config)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, x, allowed, output_attentions=False):
        a, w = self.self_attn(self.ln_attn(x), allowed, output_attentions=output_attentions)
        x = x + self.dropout(a)
        x = x + self.mlp(self.ln_mlp(x))
        return x, w


class NeuroformerDecoderLayer(GradientCheckpointingLayer):
    """Current-window layer: causal self-attention, cross-attention to the past, MLP (recomputed
    in the backward pass after ``model.activation_checkpointing_enable()``)."""

    def __init__(self, config: NeuroformerConfig, layer_idx: int):
        super().__init__()
        self.ln_self = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.self_attn = NeuroformerAttention(config, layer_idx)
        self.ln_cross = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.cross_attn = NeuroformerAttention(config, layer_idx)
        self.ln_mlp = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = NeuroformerMLP(config)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, x, self_allowed, past, cross_allowed, output_attentions=False, cache=None):
        a, w_self = self.self_attn(self.ln_self(x), self_allowed, output_attentions=output_attentions, cache=cache)
        x = x + self.dropout(a)
        c, w_cross = self.cross_attn(
            self.ln_cross(x), cross_allowed, kv=past, output_attentions=output_attentions, cache=cache
        )
        x = x + self.dropout(c)
        x = x + self.mlp(self.ln_mlp(x))
        return x, w_self, w_cross


def _modality_inputs_of(name: str, inputs) -> dict:
    """``inputs`` of modality ``name`` if they are a dict of tensors (as
    :class:`~hf_neuroformer.windows.NeuroformerCollator` makes them); None or a bare tensor failed
    with "'NoneType' object has no attribute 'get'", naming no modality."""
    if not isinstance(inputs, dict):
        raise ValueError(f"modality_inputs[{name!r}]: expected a dict of tensors ('times', 'mask' and 'values', 'ids' "
                         f"or 'frames'), got {type(inputs).__name__}")
    return inputs


def _check_token_axes(name: str, inputs: dict, shape, tokens: str, required=("times",)) -> None:
    """Refuse a ``times`` or ``mask`` of modality ``name`` whose shape is not ``shape``, ``(batch,
    n_tokens)`` of its ``tokens`` (ids, values or frames); ``required`` keys must be there. Both are
    combined with the tokens by broadcasting or a view: a ``(batch, 1)`` ``times`` gave every token
    of a window the first one's time without an error, and a video's ``mask`` or ``times`` of another
    length failed in a view ("shape '[8, 2, 1]' is invalid for input of size 8"), naming neither."""
    for key in ("times", "mask"):
        t = inputs.get(key)
        if t is None and key in required:
            raise ValueError(f"modality_inputs[{name!r}]: expected {key!r} {tuple(shape)}, one per token of "
                             f"{tokens} (batch, n_tokens)")
        if t is not None and tuple(t.shape) != tuple(shape):
            raise ValueError(f"modality_inputs[{name!r}][{key!r}]: expected shape {tuple(shape)}, one per token of "
                             f"{tokens} (batch, n_tokens), got {tuple(t.shape)}")


class NeuroformerModalityEmbedding(nn.Module):
    """Tokens of one modality -> ``(batch, n_tokens, hidden_size)``.

    * continuous: the raw value is normalised with the statistics stored in its config entry
      (``"zscore"``: ``(x - mean) / std`` of the training split; ``"circular"``: ``(cos x, sin x)``,
      radians; ``"none"``: as is), then ``Linear -> GELU -> Linear``. No LayerNorm over the value:
      the original's LayerNorm over a size-1 feature mapped every value to one constant (GUIDE
      trap 1); here different values give different embeddings.
    * categorical: ``nn.Embedding(len(classes), hidden_size)`` of the class index.

    Each token adds a sinusoidal temporal embedding of its time in seconds relative to the current
    window's start (negative before it) and a learned modality vector.
    """

    def __init__(self, config: NeuroformerConfig, modality: dict):
        super().__init__()
        self.modality = modality
        h = config.hidden_size
        self.kind = modality["kind"]
        if self.kind == "categorical":
            if not modality.get("classes"):
                raise ValueError(
                    f"config.modalities ({modality['name']!r}).classes: not fitted; the embedding needs the training "
                    "classes (hf_neuroformer.modalities.fit_modalities, or train(), fills them in)"
                )
            self.class_embeddings = nn.Embedding(len(modality["classes"]), h)
        else:
            n_in = modality["num_features"] * (2 if modality["normalization"] == "circular" else 1)
            self.value_mlp = nn.Sequential(nn.Linear(n_in, h), nn.GELU(), nn.Linear(h, h))
        self.temporal_embedding = NeuroformerTemporalEmbedding(config)
        self.modality_vector = nn.Parameter(torch.zeros(h))

    def value_features(self, values: torch.Tensor) -> torch.Tensor:
        """``(..., num_features)`` raw values -> the normalised float32 features the MLP reads:
        ``(..., num_features)``, or ``(..., 2 * num_features)`` ``(cos, sin)`` for ``"circular"``
        (values in radians).

        Raises:
            ValueError: ``"zscore"`` without fitted ``mean`` / ``std``.
        """
        m = self.modality
        x = values.float()
        if m["normalization"] == "zscore":
            if m["mean"] is None or m["std"] is None:
                raise ValueError(
                    f"config.modalities ({m['name']!r}).mean/std: not fitted; hf_neuroformer.modalities.fit_modalities "
                    "(or train()) writes the training-split statistics"
                )
            mean = torch.tensor(m["mean"], dtype=x.dtype, device=x.device)
            std = torch.tensor(m["std"], dtype=x.dtype, device=x.device)
            x = (x - mean) / std
        elif m["normalization"] == "circular":
            x = torch.cat([torch.cos(x), torch.sin(x)], -1)
        return x

    def forward(self, inputs: dict) -> torch.Tensor:
        """Embed one modality's tokens.

        Args:
            inputs: ``{"times": (batch, n_tokens) float seconds from the current window's start,
                "ids": (batch, n_tokens) int64 class indices}`` (categorical) or ``"values":
                (batch, n_tokens, num_features)`` float raw values (continuous; radians for
                ``"circular"``); ``"mask"`` is read by :meth:`embed`, not here.

        Returns:
            ``(batch, n_tokens, hidden_size)`` float tensor.

        Raises:
            ValueError: inputs that are not a dict; ``ids`` missing or outside ``[0, len(classes))``;
                ``values`` missing or not ``(batch, n_tokens, num_features)``; ``times`` missing, or
                ``times`` / ``mask`` not ``(batch, n_tokens)`` of the ids or values; as
                :meth:`value_features`.
        """
        name = self.modality["name"]
        inputs = _modality_inputs_of(name, inputs)
        if self.kind == "categorical":
            ids = inputs.get("ids")
            if ids is None:
                raise ValueError(f"modality_inputs[{name!r}]: expected 'ids' (batch, n_tokens) class indices")
            n_cls = self.class_embeddings.num_embeddings
            if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= n_cls):
                raise ValueError(f"modality_inputs[{name!r}]['ids']: expected class indices in [0, {n_cls}), got "
                                 f"values in [{int(ids.min())}, {int(ids.max())}]")
            _check_token_axes(name, inputs, ids.shape[:2], "'ids'")
            x = self.class_embeddings(ids)
        else:
            values = inputs.get("values")
            n_f = self.modality["num_features"]
            if values is None or values.dim() != 3 or values.shape[-1] != n_f:
                raise ValueError(f"modality_inputs[{name!r}]['values']: expected (batch, n_tokens, {n_f}) float values, "
                                 f"got {None if values is None else tuple(values.shape)}")
            _check_token_axes(name, inputs, values.shape[:2], "'values'")
            feats = self.value_features(values).to(self.value_mlp[0].weight.dtype)
            x = self.value_mlp(feats)
        return x + self.temporal_embedding(inputs["times"]) + self.modality_vector

    def embed(self, inputs: dict) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(tokens (batch, n, hidden), mask (batch, n) bool)``: :meth:`forward` and the real-token
        mask of ``inputs`` (all True when it has none).

        Raises:
            ValueError: as :meth:`forward` (which checks the mask's shape too).
        """
        emb = self(inputs)
        mask = inputs.get("mask")
        mask = torch.ones(emb.shape[:2], dtype=torch.bool, device=emb.device) if mask is None else mask.bool()
        return emb, mask


class NeuroformerVideoEmbedding(nn.Module):
    """Frames of one video modality -> patch tokens ``(batch, n_patches, hidden_size)``.

    Each window's clip ``(num_frames, H, W)`` is normalised with the training split's pixel mean
    / std (padding frames become 0, the mean grey), cut into non-overlapping
    ``patch_size = (pt, ph, pw)`` patches by a Conv3d (kernel = stride = patch, as a ViT patch
    embedding; the paper's Sec. 3.1 "3D convolution" over the frames) and each patch token gets
    the 3D positional encoding: the sinusoidal temporal embedding of its frames' onset in seconds
    relative to the current window's start (mean over the patch's real frames) plus a learned
    embedding of its row and of its column in the patch grid (the original code computed a 3D
    encoding and never added it, GUIDE trap 2), and a learned modality vector. Then
    ``num_layers`` bidirectional self-attention layers over the clip's real patches and a
    LayerNorm.

    Tokens are in ``(time, row, column)`` order: token ``k`` is grid cell
    ``np.unravel_index(k, grid)`` with ``grid = (num_frames // pt, H // ph, W // pw)``.
    """

    def __init__(self, config: NeuroformerConfig, modality: dict):
        super().__init__()
        self.modality = modality
        h = config.hidden_size
        pt, ph, pw = modality["patch_size"]
        fh, fw = modality["frame_shape"]
        self.grid = (modality["num_frames"] // pt, fh // ph, fw // pw)
        self.patch_embedding = nn.Conv3d(1, h, kernel_size=(pt, ph, pw), stride=(pt, ph, pw))
        self.row_embeddings = nn.Embedding(self.grid[1], h)
        self.column_embeddings = nn.Embedding(self.grid[2], h)
        self.temporal_embedding = NeuroformerTemporalEmbedding(config)
        self.modality_vector = nn.Parameter(torch.zeros(h))
        self.layers = nn.ModuleList([NeuroformerEncoderLayer(config, i) for i in range(modality["num_layers"])])
        self.norm = nn.LayerNorm(h, eps=config.layer_norm_eps) if modality["num_layers"] else nn.Identity()

    def embed(self, inputs: dict) -> Tuple[torch.Tensor, torch.Tensor]:
        """Embed one batch of clips.

        Args:
            inputs: ``{"frames": (batch, num_frames, H, W) float raw grey levels, "times":
                (batch, num_frames) float onsets in s relative to the current window's start,
                "mask": (batch, num_frames) bool real frames}`` (:class:`~hf_neuroformer.windows.NeuroformerCollator`).

        Returns:
            ``(tokens (batch, n_patches, hidden), mask (batch, n_patches) bool)``; a patch is real
            when any of its frames is.

        Raises:
            ValueError: inputs that are not a dict; frames of another shape, or ``times`` / ``mask``
                not ``(batch, num_frames)`` of the frames; ``"zscore"`` without fitted statistics.
        """
        m = self.modality
        frames = _modality_inputs_of(m["name"], inputs).get("frames")
        n, (fh, fw) = m["num_frames"], m["frame_shape"]
        if frames is None or frames.dim() != 4 or tuple(frames.shape[1:]) != (n, fh, fw):
            raise ValueError(f"modality_inputs[{m['name']!r}]['frames']: expected (batch, {n}, {fh}, {fw}) frames "
                             f"(num_frames, frame_shape of the config), got {None if frames is None else tuple(frames.shape)}")
        b = frames.shape[0]
        _check_token_axes(m["name"], inputs, (b, n), "'frames'", required=())
        mask = inputs.get("mask")
        mask = torch.ones(b, n, dtype=torch.bool, device=frames.device) if mask is None else mask.bool()
        times = inputs.get("times")
        times = torch.zeros(b, n, device=frames.device) if times is None else times
        x = frames.float()
        if m["normalization"] == "zscore":
            if m["mean"] is None or m["std"] is None:
                raise ValueError(f"config.modalities ({m['name']!r}).mean/std: not fitted; hf_neuroformer.modalities."
                                 "fit_modalities (or train()) writes the training split's pixel statistics")
            x = (x - m["mean"][0]) / m["std"][0]
        x = x * mask[:, :, None, None]
        w = self.patch_embedding.weight
        z = self.patch_embedding(x[:, None].to(w.dtype))  # (b, hidden, T', H', W')
        gt, gh, gw = self.grid
        z = z.permute(0, 2, 3, 4, 1)  # (b, T', H', W', hidden)
        pt = n // gt
        fm = mask.view(b, gt, pt).to(z.dtype)
        t_patch = (times.view(b, gt, pt).to(z.dtype) * fm).sum(-1) / fm.sum(-1).clamp(min=1.0)
        dev = z.device
        pos = (self.temporal_embedding(t_patch)[:, :, None, None, :]
               + self.row_embeddings(torch.arange(gh, device=dev))[None, None, :, None, :]
               + self.column_embeddings(torch.arange(gw, device=dev))[None, None, None, :, :])
        z = (z + pos.to(z.dtype) + self.modality_vector.to(z.dtype)).reshape(b, gt * gh * gw, -1)
        tok_mask = (fm.sum(-1) > 0)[:, :, None, None].expand(b, gt, gh, gw).reshape(b, -1)
        if len(self.layers):
            # a clip without any frame attends over its (padding) patches instead of nothing; its
            # tokens stay masked in the stage, so they never reach a spike
            keys = tok_mask | ~tok_mask.any(1, keepdim=True)
            allowed = keys[:, None, None, :].expand(-1, 1, keys.shape[1], -1)
            for layer in self.layers:
                z, _ = layer(z, allowed)
        return self.norm(z), tok_mask

    def forward(self, inputs: dict) -> torch.Tensor:
        return self.embed(inputs)[0]


def _modality_embedding(config: NeuroformerConfig, modality: dict) -> nn.Module:
    if modality["kind"] == "video":
        return NeuroformerVideoEmbedding(config, modality)
    return NeuroformerModalityEmbedding(config, modality)


class NeuroformerModalityLayer(GradientCheckpointingLayer):
    """One layer of a modality stage: the current-window tokens cross-attend to the modality
    tokens (pre-LayerNorm on the queries, residual), then an MLP (pre-LayerNorm, residual)."""

    def __init__(self, config: NeuroformerConfig, layer_idx: int):
        super().__init__()
        self.ln_cross = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.cross_attn = NeuroformerAttention(config, layer_idx)
        self.ln_mlp = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = NeuroformerMLP(config)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, x, kv, allowed, output_attentions=False):
        c, w = self.cross_attn(self.ln_cross(x), allowed, kv=kv, output_attentions=output_attentions)
        x = x + self.dropout(c)
        x = x + self.mlp(self.ln_mlp(x))
        return x, w


class NeuroformerModalityStage(nn.Module):
    """A decoder stage for the modalities of one ``block``: their tokens (each modality embedded
    by its :class:`NeuroformerModalityEmbedding`, concatenated in config order) after one learned
    null token, so a window without any modality token still has something to attend to; then
    ``num_modality_layers`` :class:`NeuroformerModalityLayer`."""

    def __init__(self, config: NeuroformerConfig, block: int, names):
        super().__init__()
        self.block, self.names = block, list(names)
        self.null_token = nn.Parameter(torch.zeros(config.hidden_size))
        self.layers = nn.ModuleList([NeuroformerModalityLayer(config, i) for i in range(config.num_modality_layers)])

    def forward(self, x, kv, allowed, output_attentions=False):
        """``x`` ``(batch, seq_len, hidden_size)`` current-window tokens cross-attend to ``kv``
        ``(batch, 1 + n_tokens, hidden_size)`` (null token first) where ``allowed`` (bool,
        broadcastable to ``(batch, 1, seq_len, 1 + n_tokens)``) is True.

        Returns:
            ``(x, weights)``: updated ``(batch, seq_len, hidden_size)`` tokens and one attention
            weight tensor per layer (None unless ``output_attentions``).
        """
        weights = []
        for layer in self.layers:
            x, w = layer(x, kv, allowed, output_attentions=output_attentions)
            weights.append(w)
        return x, weights


@dataclass
class NeuroformerModelOutput(ModelOutput):
    """Output of :class:`NeuroformerModel`.

    Attributes:
        last_hidden_state: ``(batch, seq_len, hidden_size)`` current-window states.
        past_hidden_state: ``(batch, past_len, hidden_size)`` past-window encoding.
        hidden_states: ``num_hidden_layers + 1`` tensors ``(batch, seq_len, hidden_size)``, if
            requested: the input embeddings (after the modality stages), then each decoder
            layer's output, the last one after the final LayerNorm, so ``hidden_states[-1]`` is
            ``last_hidden_state`` (transformers' convention; it was the un-normalised output of
            the last layer).
        attentions: decoder self-attention weights ``(batch, heads, seq_len, seq_len)`` per layer.
        cross_attentions: ``(batch, heads, seq_len, past_len)`` per layer.
        past_attentions: past-encoder self-attention weights ``(batch, heads, past_len, past_len)``
            per past-encoder layer.
        modality_attentions: ``(batch, heads, seq_len, 1 + n_modality_tokens)`` per modality
            stage layer (stages in block order), when ``output_attentions`` and the model has
            modalities.
        cache: the decoder KV cache (self-attention keys/values of every token so far, and the
            cross-attention keys/values of the past window) when ``use_cache=True``.
    """

    last_hidden_state: Optional[torch.FloatTensor] = None
    past_hidden_state: Optional[torch.FloatTensor] = None
    cache: Optional[EncoderDecoderCache] = None
    hidden_states: Optional[Tuple[torch.FloatTensor, ...]] = None
    attentions: Optional[Tuple[torch.FloatTensor, ...]] = None
    cross_attentions: Optional[Tuple[torch.FloatTensor, ...]] = None
    past_attentions: Optional[Tuple[torch.FloatTensor, ...]] = None
    modality_attentions: Optional[Tuple[torch.FloatTensor, ...]] = None


@dataclass
class NeuroformerPreTrainingOutput(ModelOutput):
    """Output of :class:`NeuroformerForPreTraining`.

    Attributes:
        loss: scalar, ``id_loss + dt_loss_weight * dt_loss`` when labels are given (the term
            whose labels were not given left out).
        id_loss: mean cross-entropy (nats) of the next unit id over labelled positions; None
            without ``labels``.
        dt_loss: mean cross-entropy (nats) of the next dt bin over labelled positions; None
            without ``dt_labels`` (``labels`` alone train and score the unit ids only).
        logits: ``(batch, seq_len, vocab_size)`` next-unit-id logits at each position.
        dt_logits: ``(batch, seq_len, num_dt_bins)`` next-dt logits at each position. With
            ``config.dt_conditioned_on_unit`` (the default), position ``i``'s are conditioned on
            the next spike's unit, ``input_ids[:, i + 1]`` (teacher forcing), and the last
            position's on "no unit" (pad), a condition never trained: to sample the dt of a new
            spike, pick its unit from ``logits[:, -1]`` and call
            ``model.dt_logits_given_unit(h, unit_id)`` with ``h`` the last position of
            ``model.neuroformer(...).last_hidden_state``, as
            :func:`hf_neuroformer.generation.generate_spikes` does.
        past_hidden_state, cache, hidden_states, attentions, cross_attentions, past_attentions: as
            :class:`NeuroformerModelOutput` (``cache`` when ``use_cache=True``; the others when
            requested with ``output_hidden_states`` / ``output_attentions``).
        contrastive_loss: scalar symmetric InfoNCE (nats, mean over the contrastive modalities
            with at least two windows of the batch holding a token of theirs: the other windows of
            the batch are a window's negatives; under several processes the batch is that of all
            of them, gathered, unless ``config.contrastive_gather_across_processes`` is False, see
            :class:`NeuroformerContrastiveHead`) when
            ``config.contrastive_loss_weight > 0`` and it
            was computed (training mode, or ``output_contrastive_loss=True``); ``loss`` then
            includes ``contrastive_loss_weight * contrastive_loss``. 0 (a zero term that keeps
            every projection in the graph) when no modality has two such windows, e.g. a batch of
            one window: nothing to contrast, not a perfect alignment. None otherwise.
        modality_attentions: with ``output_attentions=True`` and modalities, the cross-attention
            weights of every modality stage layer (see :class:`NeuroformerModelOutput`).
    """

    loss: Optional[torch.FloatTensor] = None
    id_loss: Optional[torch.FloatTensor] = None
    dt_loss: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None
    dt_logits: Optional[torch.FloatTensor] = None
    past_hidden_state: Optional[torch.FloatTensor] = None
    cache: Optional[EncoderDecoderCache] = None
    hidden_states: Optional[Tuple[torch.FloatTensor, ...]] = None
    attentions: Optional[Tuple[torch.FloatTensor, ...]] = None
    cross_attentions: Optional[Tuple[torch.FloatTensor, ...]] = None
    past_attentions: Optional[Tuple[torch.FloatTensor, ...]] = None
    contrastive_loss: Optional[torch.FloatTensor] = None
    modality_attentions: Optional[Tuple[torch.FloatTensor, ...]] = None


def _check_paired_rows(a: torch.Tensor, b: torch.Tensor) -> None:
    """Refuse ``a`` and ``b`` unless both are ``(n, d)`` with the same ``n`` and ``d``: rows of
    different counts failed inside torch ("Target 4 is out of bounds", a CUDA device-side assert
    on a GPU, or a broadcast error) and 1-D rows with "Dimension out of range", naming neither."""
    if a.ndim != 2 or b.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"a, b: expected paired rows, two (n, d) embeddings of the same shape (row i of each from "
                         f"window i), got shapes {tuple(a.shape)} and {tuple(b.shape)}")


def info_nce(a: torch.Tensor, b: torch.Tensor, logit_scale) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP, Radford et al. 2021; Neuroformer paper Sec. 3.2) of paired rows.

    Args:
        a, b: ``(n, d)`` float embeddings; row ``i`` of ``a`` and of ``b`` come from the same window.
            Both are L2-normalised here.
        logit_scale: scalar (float or 0-d tensor), ``1 / temperature``.

    Returns:
        0-d tensor, nats: ``(CE(a -> b) + CE(b -> a)) / 2`` with the matching row as the class.
        About ``log(n)`` for unrelated embeddings, near 0 for aligned ones at a low temperature.
        Identical rows (windows with identical modality inputs, e.g. the same grating orientation
        at the same offset in their trials) are not de-duplicated: each is the other's negative,
        so the cross-entropy of ``k`` identical rows of ``b`` is at least ``log(k)`` on average over them (in both directions)
        (aligned rows then get no gradient from them, and nothing is NaN); the loss of a batch with
        such windows cannot reach 0 and does not mean failed alignment
        (:func:`retrieval_top1` counts them as hits through ``same``).

    Raises:
        ValueError: ``a`` and ``b`` not two 2-D arrays of the same shape (unpaired rows).
    """
    _check_paired_rows(a, b)
    a = F.normalize(a.float(), dim=-1)
    b = F.normalize(b.float(), dim=-1)
    logits = (a @ b.T) * logit_scale
    target = torch.arange(a.shape[0], device=a.device)
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2


def retrieval_top1(a: torch.Tensor, b: torch.Tensor, same: Optional[torch.Tensor] = None) -> Tuple[float, float]:
    """Top-1 retrieval accuracy of paired rows by cosine similarity.

    Args:
        a, b: ``(n, d)`` embeddings, row ``i`` of each from the same window.
        same: optional ``(n, n)`` bool, ``same[i, j]`` when windows ``i`` and ``j`` are
            indistinguishable on the ``b`` side (identical modality inputs, e.g. two windows of
            one grating orientation at the same offset in their trials): retrieving ``j`` for
            ``i`` is then a hit too. None: only the own pair is.

    Returns:
        ``(a -> b, b -> a)``: the fraction of rows of ``a`` whose most similar row of ``b`` is its
        own pair (or one ``same`` as it), and the reverse. Chance is ``1 / n`` without ``same``,
        the mean of ``same.sum(1) / n`` with it. Ties go to the lowest index. ``(nan, nan)`` when
        ``a`` or ``b`` holds a NaN or infinite value (a diverged model's embeddings: their
        similarities are NaN, whose argmax is no retrieval).

    Raises:
        ValueError: ``a`` and ``b`` not two 2-D arrays of the same shape (unpaired rows), or
            ``same`` not ``(n, n)``.
    """
    _check_paired_rows(a, b)
    n = a.shape[0]
    if same is None:
        same = torch.eye(n, dtype=torch.bool, device=a.device)
    elif tuple(same.shape) != (n, n):
        raise ValueError(f"same: expected ({n}, {n}) bool, one row and column per paired row, got {tuple(same.shape)}")
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        # argmax over NaN similarities picked the first NaN: a diverged model scored about chance, as if it had
        # learnt nothing, and evaluate_retrieval / ablate reported it as such
        return float("nan"), float("nan")
    a = F.normalize(a.float(), dim=-1)
    b = F.normalize(b.float(), dim=-1)
    sim = a @ b.T
    own = torch.arange(n, device=a.device)
    same = same.bool().to(a.device)
    return (float(same[own, sim.argmax(1)].float().mean()), float(same[sim.argmax(0), own].float().mean()))


def windows_with_tokens(inputs: dict) -> torch.Tensor:
    """``(batch,)`` bool: the windows that hold at least one real token of a modality, from its
    inputs (as :class:`~hf_neuroformer.windows.NeuroformerCollator` makes them): a ``mask`` row with
    a True; without a ``mask`` every window, when the inputs have any token (their second axis,
    tokens or frames, is not empty). The one rule of which windows a modality's pooled embedding
    is valid for (:meth:`NeuroformerModel.get_modality_embeddings`) and which the contrastive loss
    contrasts (:meth:`NeuroformerContrastiveHead.contrasted_windows`). Empty for inputs without a tensor."""
    mask = inputs.get("mask")
    if mask is not None:
        return mask.bool().any(1)
    t = next((t for t in inputs.values() if torch.is_tensor(t)), None)
    if t is None:
        return torch.zeros(0, dtype=torch.bool)
    return torch.full((t.shape[0],), t.dim() > 1 and t.shape[1] > 0, dtype=torch.bool, device=t.device)


def contrastive_world_size() -> int:
    """Processes whose batches the contrastive loss gathers: ``torch.distributed``'s world size
    when a default process group is initialised (torchrun, ``accelerate launch``), else 1."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


class ContrastiveGatherUnderJoinError(ValueError):
    """The contrastive loss was asked to gather across processes
    (``config.contrastive_gather_across_processes=True``) in the forward of a DDP model whose
    ``join()`` is enabled (DDP's uneven-inputs support, Accelerate's ``join_uneven_inputs``): a
    process that has run out of batches would not take part in the gather and leave the others
    waiting in it until the process group times out."""


def _refuse_under_ddp_join() -> None:
    """Raise :class:`ContrastiveGatherUnderJoinError` when a ``DistributedDataParallel`` whose
    ``join()`` is enabled calls this forward (found on the call stack: its ``forward`` frame; a DDP
    compiled as a whole is not seen). DDP keeps the join setting after the ``with`` block, and its
    forward still takes part in the join's bookkeeping then, so the refusal holds there too. Every
    process of such a model reaches this check in the same forward (before the first gather), so
    all refuse together."""
    ddp_forward = torch.nn.parallel.DistributedDataParallel.forward.__code__
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is ddp_forward:
            join = getattr(frame.f_locals.get("self"), "_join_config", None)
            if join is not None and join.enable:
                raise ContrastiveGatherUnderJoinError(
                    "NeuroformerConfig.contrastive_gather_across_processes: True gathers every process's contrastive "
                    "embeddings in the forward (a collective every process must call equally often), but this "
                    "DistributedDataParallel has join() enabled (uneven inputs, e.g. Accelerate's join_uneven_inputs), "
                    "which does not stand in for that gather: a process out of batches would leave the others waiting "
                    "until the process group times out. Set contrastive_gather_across_processes=False (each process "
                    "contrasts its own micro-batch's windows) to use join(), or give every process the same number of "
                    "batches without join()")
            return
        frame = frame.f_back


# eagerly under torch.compile too: dynamo turned this all_gather into functional collectives that were
# never waited on ("there are still 2 unwaited collective calls" at every compiled run's exit); the
# counts go to the host (.tolist()) anyway, a graph break in any case
@torch.compiler.disable
def _rows_per_process(counts: list, device) -> torch.Tensor:
    """``(world, len(counts))`` int64: every process's ``counts`` (its valid windows per modality),
    in rank order (one ``all_gather`` over the default process group; every process must call it).

    Raises:
        ContrastiveGatherUnderJoinError: called from the forward of a DDP model with ``join()``
            enabled (:func:`_refuse_under_ddp_join`), before any collective.
    """
    _refuse_under_ddp_join()
    mine = torch.tensor(counts, dtype=torch.int64, device=device)
    every = [torch.empty_like(mine) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(every, mine)
    return torch.stack(every)


class _AllGatherWithGradient(torch.autograd.Function):
    """``x (rows, d)`` -> ``(world, rows, d)``: every process's ``x`` in rank order
    (``torch.distributed.all_gather``, default process group; every process passes the same shape).
    Backward: each process's loss gives a gradient for every process's rows; they are summed over
    the processes (``all_reduce``, on every backend) and each process keeps its own rows' sum, the
    gradient of the sum of every process's loss with respect to its ``x`` (what
    ``torch.distributed.nn.functional.all_gather``, deprecated in torch 2.13, gave)."""

    @staticmethod
    def forward(ctx, x):
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(torch.distributed.get_world_size())]
        torch.distributed.all_gather(parts, x)
        return torch.stack(parts)

    @staticmethod
    def backward(ctx, grad):
        # a copy: autograd may hand the same gradient tensor to another consumer, so it is not reduced in place
        grad = grad.clone(memory_format=torch.contiguous_format)
        torch.distributed.all_reduce(grad)  # sum over processes
        return grad[torch.distributed.get_rank()]


@torch.compiler.disable  # run eagerly under torch.compile, which refuses this all_gather
def _gather_rows(x: torch.Tensor, sizes: list) -> torch.Tensor:
    """The rows of ``x (sizes[rank], d)`` of every process, concatenated in rank order
    (``(sum(sizes), d)``). ``all_gather`` needs one shape on every process, so each pads its rows
    to ``max(sizes)`` with zeros and the padding is cut off again. Gradients flow back to the
    rows of every process (:class:`_AllGatherWithGradient`): for each process's rows, the sum of
    the gradients that every process's loss gives them."""
    padded = F.pad(x, (0, 0, 0, max(sizes) - x.shape[0]))
    parts = _AllGatherWithGradient.apply(padded)
    return torch.cat([part[:k] for part, k in zip(parts, sizes)])


class NeuroformerContrastiveHead(nn.Module):
    """Projections and temperature of the contrastive alignment (built only when
    ``config.contrastive_loss_weight > 0``).

    For each contrastive modality ``m`` (``config.contrastive_modality_names()``): a linear
    projection of the pooled neural embedding (:meth:`NeuroformerModel.get_neural_embeddings`)
    and a separate linear projection of the modality's pooled embedding
    (:meth:`NeuroformerModel.get_modality_embeddings`), both to
    ``contrastive_projection_size``; the loss is :func:`info_nce` over the windows of the batch
    that have at least one token of ``m``, averaged over the modalities.

    Under several processes (``torch.distributed`` initialised with a world size above 1: torchrun,
    ``accelerate launch``, DDP) the batch is that of every process together, as CLIP gathers it:
    the projected embeddings of every process's windows are gathered (rank order; processes may
    hold different numbers of windows), so a window's negatives are the windows of every process,
    every process gets the same loss, that of one process with the whole batch, and the gathered
    rows pass their gradients back to the process that holds them (summed over the processes'
    losses: DDP's mean over processes is then the gradient of the one-batch loss). The forward is
    then a collective: every process must call it, as many times and in the same order. DDP's
    ``join()`` for uneven inputs (Accelerate's ``join_uneven_inputs``) shadows DDP's own
    collectives only, not this gather: a process that has run out of batches would leave the
    others waiting in it until the process group times out, so the forward of a DDP model with
    ``join()`` enabled raises :class:`ContrastiveGatherUnderJoinError` (when DDP's forward is on the
    call stack, i.e. not compiled as a whole) before its first gather.
    ``config.contrastive_gather_across_processes=False`` turns the gather off: each process
    contrasts the windows of its own batch (as on one process), no collective, ``join()`` works.

    The gather uses the default process group (``torch.distributed``'s ``WORLD``): no sub-group
    can be chosen, since :func:`~hf_neuroformer.training.train` weighs the term by the counts it
    reduces over every process; with model parallelism in sub-groups, turn the gather off.
    """

    def __init__(self, config: NeuroformerConfig):
        super().__init__()
        h = config.hidden_size
        p = config.contrastive_projection_size or h
        self.names = config.contrastive_modality_names()
        self.neural_projections = nn.ModuleDict({n: nn.Linear(h, p) for n in self.names})
        self.modality_projections = nn.ModuleDict({n: nn.Linear(h, p) for n in self.names})
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / config.contrastive_temperature)),
                                        requires_grad=config.contrastive_learnable_temperature)
        #: gather the processes' embeddings (``config.contrastive_gather_across_processes``)
        self.gather_across_processes = config.contrastive_gather_across_processes

    #: Range of ``logit_scale`` (the log of ``1 / temperature``): the config's temperatures, 0.01 to 100.
    LOG_SCALE_RANGE = (math.log(1.0 / CONTRASTIVE_MAX_TEMPERATURE), math.log(CONTRASTIVE_MAX_LOGIT_SCALE))

    def logit_scale_value(self) -> torch.Tensor:
        """0-d ``1 / temperature`` the loss uses: ``exp(logit_scale)``, kept within the config's
        range, from ``1 / CONTRASTIVE_MAX_TEMPERATURE`` (0.01) to ``CONTRASTIVE_MAX_LOGIT_SCALE``
        (100, CLIP's cap). The bounds are taken on ``logit_scale`` itself, so a scale at one still
        gets its gradient: ``exp(log(1 / 0.01))`` is 100.0000076 in float32, above 100, and a
        learnable temperature that starts at the allowed 0.01 got no gradient and never moved.
        Without the floor a learned temperature could drift past the 100 the config refuses
        (the loss's gradient falls as 1 / temperature)."""
        return self.logit_scale.clamp(*self.LOG_SCALE_RANGE).exp()

    @torch.no_grad()
    def cap_logit_scale_(self) -> None:
        """Put a learned ``logit_scale`` outside :attr:`LOG_SCALE_RANGE` back on its bound (in
        place; CLIP's practice for the cap, run by :func:`~hf_neuroformer.training.train` after
        every optimizer step). Outside the range the loss passes it no gradient, so a scale that an
        update had pushed there stayed there for the rest of the run, whatever the loss asked for
        later."""
        self.logit_scale.clamp_(*self.LOG_SCALE_RANGE)

    def contrasted_windows(self, modality_inputs: dict) -> list:
        """The windows of a batch of these modality inputs (as
        :class:`~hf_neuroformer.windows.NeuroformerCollator` makes them) that hold a token of each
        contrastive modality (:func:`windows_with_tokens`, the rule of the pooled embeddings'
        ``valid`` that :meth:`forward` counts), in the order of ``names``: what :meth:`forward`
        contrasts on this process; a modality has a term when at least two windows hold one, over
        all processes under several (training counts a micro-batch's term by it)."""
        return [int(windows_with_tokens((modality_inputs or {}).get(name) or {}).sum()) for name in self.names]

    def forward(self, neural: torch.Tensor, modalities: dict) -> torch.Tensor:
        """``neural (batch, hidden)`` and ``{name: (pooled (batch, hidden), valid (batch,) bool)}``
        -> 0-d loss (mean over the modalities with at least two valid windows; 0 if none). Under
        several processes, with ``gather_across_processes``, the windows of all of them (see the
        class docstring): every process then returns the same loss, and a modality counts the valid
        windows of all processes; without, those of this process.

        Raises:
            ContrastiveGatherUnderJoinError: gathering under several processes in the forward of a
                DDP model with ``join()`` enabled (it would hang).
        """
        scale = self.logit_scale_value()
        world = contrastive_world_size() if self.gather_across_processes else 1
        counts = [int(modalities[name][1].sum()) for name in self.names]
        # before, each process contrasted its own windows only: 2 processes with half a batch each
        # had half the negatives, and another loss and gradient than 1 process with the whole batch
        sizes = _rows_per_process(counts, neural.device).T.tolist() if world > 1 else [[k] for k in counts]
        losses = []
        for name, rows in zip(self.names, sizes):
            pooled, valid = modalities[name]
            if sum(rows) < 2:
                continue
            a = self.neural_projections[name](neural[valid])
            b = self.modality_projections[name](pooled[valid])
            if world > 1:
                a, b = _gather_rows(torch.cat([a, b], 1), rows).split(a.shape[1], dim=1)
            losses.append(info_nce(a, b, scale))
        # every projection joins the graph (with a zero term) even when its modality was skipped, so
        # that DDP, which expects a gradient for every parameter on every rank, does not stall
        tie = sum(p.sum() for p in self.parameters()) * 0.0
        if not losses:
            return neural.sum() * 0.0 + tie
        return torch.stack(losses).mean() + tie


class NeuroformerPreTrainedModel(PreTrainedModel):
    """Base class of the Neuroformer models: ties them to :class:`NeuroformerConfig`, weight
    initialisation, ``save_pretrained`` / ``from_pretrained`` and the sdpa / eager attention
    choice (transformers' ``PreTrainedModel``)."""

    config_class = NeuroformerConfig
    config: NeuroformerConfig
    base_model_prefix = "neuroformer"
    main_input_name = "input_ids"
    _supports_sdpa = True
    _supports_attention_backend = True
    supports_gradient_checkpointing = True  # activation_checkpointing_enable(): both layer types
    _no_split_modules = ["NeuroformerDecoderLayer", "NeuroformerEncoderLayer"]
    # Trainer must divide the loss by gradient-accumulation steps itself (GUIDE sec. 6).
    accepts_loss_kwargs = False

    def save_pretrained(self, save_directory, *args, **kwargs):
        """``PreTrainedModel.save_pretrained``, after checking that the config still describes the
        weights: a ``config.vocab_size`` set by hand (in place of ``resize_token_embeddings``) or a
        ``current_window`` / ``dt_resolution`` changed after the model was built wrote a checkpoint
        that ``from_pretrained`` then refused with transformers' size-mismatch report.

        Raises:
            ValueError: the unit embedding's rows differ from ``config.vocab_size``, or the dt head's
                classes from ``config.num_dt_bins``, or a config field breaks its rule
                (``config.validate()``); nothing is written.

        A save into ``save_directory`` killed after its commit (``train`` / ``finetune``: its journal
        is there) is completed first, so the files written here are the ones a later
        ``from_pretrained`` reads.

        A model whose ``config.auto_map`` names its class (loaded from a pushed repository, whose
        ``auto_map`` the config keeps) is saved with its code files (``modeling_neuroformer.py``, the
        modules it imports, and every module the ``auto_map`` names: ``tokenization_neuroformer.py``
        of its ``AutoProcessor`` entry also when no tokenizer is saved beside it;
        :func:`~hf_neuroformer.configuration_neuroformer.carried_remote_code`), so the folder loads
        with ``trust_remote_code=True`` as the repository did (so also a model loaded that way without
        the package; a module that remote-code copy lacks is taken from the local folder it was loaded
        from while that folder holds the code loaded, and an entry whose module is in neither is left out,
        with a warning). A
        model without next-spike heads (a :class:`NeuroformerModel`, or a decoder with
        ``decoding_generative_loss_weight == 0``) drops from that
        ``auto_map`` the Auto classes :data:`~hf_neuroformer.configuration_neuroformer.DECODER_AUTO_MAP`
        leaves out (``AutoModelForPreTraining`` / ``AutoModelForCausalLM``, which would load it with
        random heads); a model with them whose ``auto_map`` lacks them (a decoder pulled without heads and
        fine-tuned with a generative loss) gets them back
        (:func:`~hf_neuroformer.configuration_neuroformer.auto_map_for_heads`), as a push does.

        Warns:
            UserWarning: ``push_to_hub=True`` without the classes registered for remote code nor an
                ``auto_map`` naming the class, as :meth:`push_to_hub` warns (the repository gets the
                weights and ``config.json`` only).
        """
        self._check_config_describes_weights("; the checkpoint would not load, so nothing was written")
        self.config.validate()  # a field set after construction: refused before the folder is made (the config's message)
        # a save into the folder killed after its commit is completed first: left pending, the next
        # from_pretrained completed it over these files, and loaded that older model instead
        finish_interrupted_save_of(save_directory)
        if kwargs.get("push_to_hub"):
            self._warn_no_remote_code("save_pretrained(push_to_hub=True)")
        carried = getattr(self.config, "auto_map", None)
        if isinstance(carried, dict):
            # a decoder without next-spike heads fine-tuned from a pushed model, or a NeuroformerModel (never any):
            # the carried auto_map mapped AutoModelForPreTraining / AutoModelForCausalLM to the pretraining class,
            # which loads it with random heads; written without them. One pulled without heads and fine-tuned with
            # them gets them back (the config in memory keeps its own)
            self.config.auto_map = auto_map_for_heads(carried, getattr(self, "id_head", None) is not None)
        try:
            # a model loaded from a pushed repository keeps its auto_map: its code files are written too
            with carried_remote_code(self, getattr(self.config, "auto_map", None), save_directory):
                return super().save_pretrained(save_directory, *args, **kwargs)
        finally:
            if isinstance(carried, dict):
                self.config.auto_map = carried

    def _warn_no_remote_code(self, method: str) -> None:
        """Warn that transformers' ``method`` uploads no remote code when the class has no auto
        class registered (``register_for_auto_class``; :func:`hf_neuroformer.hub.remote_code_registered`)."""
        # a model that carries an auto_map naming its class (loaded from a pushed repository) is saved with its code
        if getattr(type(self), "_auto_class", None) is None and \
                carried_auto_class(self, getattr(self.config, "auto_map", None)) is None:
            warnings.warn(
                f"{type(self).__name__}.{method} uploads the weights and config.json without remote code "
                "(no auto_map, no model code, no tokenizer or model card): the repository loads only where "
                "hf_neuroformer is installed. To share a model directory as the README describes, use "
                "hf_neuroformer.push_to_hub(model_dir, repo_id) or 'neuroformer push'",
                UserWarning, stacklevel=3,
            )

    def _check_config_describes_weights(self, consequence: str = "") -> None:
        """Refuse a config changed after the model was built (``consequence`` ends the message):
        a ``config.vocab_size`` set by hand in place of ``resize_token_embeddings`` (the unit
        embedding keeps its rows), or a ``current_window`` / ``dt_resolution`` whose
        ``num_dt_bins`` is not the dt head's number of classes. Forward and ``save_pretrained``
        call it.

        Raises:
            ValueError: naming the config value and the weights' size.
        """
        cfg, rows = self.config, self.get_input_embeddings().num_embeddings
        if rows != cfg.vocab_size:
            # ids up to the new size passed the id check and nn.Embedding failed with "IndexError: index
            # out of range in self"; the checkpoint failed to load with transformers' size-mismatch report
            raise ValueError(
                f"model.config.vocab_size = {cfg.vocab_size}, but the unit embedding has {rows} rows: the config was "
                f"changed without growing the model; use model.resize_token_embeddings({cfg.vocab_size}) (or "
                f"model.resize_unit_embeddings), which sets config.vocab_size and adds the rows{consequence}")
        dt_head = getattr(self, "dt_head", None)
        if dt_head is not None and dt_head.out_features != cfg.num_dt_bins:
            # config.current_window = 0.2 on a 0.1-s model: the 10-class dt head then spoke of the first
            # half of each window only, and generate_spikes put every spike there without a word
            raise ValueError(
                f"model.config.num_dt_bins = {cfg.num_dt_bins} (current_window {cfg.current_window} s, "
                f"dt_resolution {cfg.dt_resolution} s), but the dt head has {dt_head.out_features} classes: the "
                "window settings were changed after the model was built; the weights hold for the settings they "
                f"were trained with (build a new model, or restore those settings){consequence}")

    def _wanted_outputs(self, output_attentions: Optional[bool], output_hidden_states: Optional[bool]):
        """``(output_attentions, output_hidden_states)`` as bools: the arguments, or where None
        ``config.output_attentions`` / ``config.output_hidden_states`` (transformers' rule; they
        were read as False, so ``from_pretrained(path, output_attentions=True)`` switched attention
        to eager and still returned no attention weights)."""
        if output_attentions is None:
            output_attentions = getattr(self.config, "output_attentions", False)
        if output_hidden_states is None:
            output_hidden_states = getattr(self.config, "output_hidden_states", False)
        return bool(output_attentions), bool(output_hidden_states)

    def _output(self, output: ModelOutput, return_dict: Optional[bool]):
        """``output``, or ``output.to_tuple()`` (its fields that are not None, in order) when
        ``return_dict`` is False, or None with ``config.return_dict`` False (transformers' rule):
        the output was returned as a dict whatever ``return_dict`` said, and unpacking it
        (``loss, logits = model(..., return_dict=False)[:2]`` worked, ``loss, logits, *_ = ...``
        gave the key names ``'loss'``, ``'logits'``)."""
        if return_dict is None:
            return_dict = getattr(self.config, "return_dict", True)
        return output if return_dict is not False else output.to_tuple()

    def resize_unit_embeddings(self, new_vocab_size: int) -> None:
        """Grow the unit vocabulary (the unit embedding and, where the model has them, the id head
        and the dt head's unit embedding) to ``new_vocab_size`` tokens.

        Existing rows are kept; new rows are initialised like fresh weights. Used when
        ``tokenizer.add_units`` added the units of a new session.

        The current size is the unit embedding's row count (as transformers' resize reads it), so a
        ``config.vocab_size`` set by hand beforehand does not hide the rows still missing.

        Raises:
            ValueError: ``new_vocab_size`` below the unit embedding's current row count, or not a
                whole number (a numpy integer is taken as a Python ``int``: it was stored as
                ``config.vocab_size`` and ``save_pretrained`` then failed on ``config.json``).
        """
        new_vocab_size = checked_int("new_vocab_size", new_vocab_size, "a whole number of tokens",
                                     owner="resize_unit_embeddings")
        old = self.get_input_embeddings().num_embeddings
        if new_vocab_size < old:
            raise ValueError(f"new_vocab_size: expected >= current vocab_size {old}, got {new_vocab_size}")
        std = self.config.initializer_range
        emb = self.get_input_embeddings()
        new_emb = nn.Embedding(new_vocab_size, emb.embedding_dim, padding_idx=emb.padding_idx).to(emb.weight)
        with torch.no_grad():
            new_emb.weight.normal_(0, std)
            new_emb.weight[:old] = emb.weight
        self.set_input_embeddings(new_emb)
        if getattr(self, "id_head", None) is not None:
            new_head = nn.Linear(self.config.hidden_size, new_vocab_size).to(self.id_head.weight)
            with torch.no_grad():
                new_head.weight.normal_(0, std)
                new_head.bias.zero_()
                new_head.weight[:old] = self.id_head.weight
                new_head.bias[:old] = self.id_head.bias
            self.id_head = new_head
        if getattr(self, "dt_unit_embeddings", None) is not None:
            dt_emb = self.dt_unit_embeddings
            new_dt_emb = nn.Embedding(new_vocab_size, dt_emb.embedding_dim, padding_idx=dt_emb.padding_idx).to(dt_emb.weight)
            with torch.no_grad():
                new_dt_emb.weight.normal_(0, std)
                new_dt_emb.weight[:old] = dt_emb.weight
            self.dt_unit_embeddings = new_dt_emb
        self.config.vocab_size = new_vocab_size

    def resize_token_embeddings(self, new_num_tokens: Optional[int] = None, pad_to_multiple_of: Optional[int] = None,
                                mean_resizing: bool = True) -> nn.Embedding:
        """The transformers API for :meth:`resize_unit_embeddings`: grows the unit embedding, the
        id head and the dt head's unit embedding together (transformers' generic resize knows
        only the input and output embeddings, and looked for an ``lm_head``). The same in
        ``NeuroformerModel`` and ``NeuroformerForBehaviorDecoding`` (with its generative heads),
        which had transformers' generic resize: it rounded up with ``pad_to_multiple_of`` and left
        the decoder's id head at the old size.

        Args:
            new_num_tokens: the new vocabulary size (e.g. ``len(tokenizer)`` after
                ``tokenizer.add_units``); ``None`` keeps it.
            pad_to_multiple_of: accepted when the size already is a multiple of it; rounding up
                is refused (see Raises).
            mean_resizing: accepted for the transformers signature; new rows are always
                initialised like fresh weights (normal, ``config.initializer_range``).

        Returns:
            the unit embedding (``nn.Embedding`` of ``(vocab_size, hidden_size)``).

        Raises:
            ValueError: a size that is not a whole number (``8.7`` was truncated to 8), a size
                below the current ``vocab_size`` (units cannot be removed), a
                ``pad_to_multiple_of`` that is not a positive integer, or one that would round the
                size up: the unit vocabulary must equal ``len(tokenizer)``. The padded model was
                refused by the processor, ``generate_spikes`` and ``window_log_likelihoods`` as
                "not the model's tokenizer", and its unused rows took probability in the unit-id
                softmax (another loss than the unpadded model's on the same windows).
        """
        n = self.config.vocab_size if new_num_tokens is None else checked_int(
            "new_num_tokens", new_num_tokens, "a whole number of tokens", owner="resize_token_embeddings")
        if pad_to_multiple_of is not None:
            if not isinstance(pad_to_multiple_of, int) or pad_to_multiple_of < 1:
                raise ValueError(f"pad_to_multiple_of: expected a positive integer, got {pad_to_multiple_of!r}")
            padded = -(-n // pad_to_multiple_of) * pad_to_multiple_of
            if padded != n:
                raise ValueError(
                    f"pad_to_multiple_of: rounding the unit vocabulary up from {n} to {padded} rows is not supported: "
                    "the model's vocab_size must equal len(tokenizer) (the processor, generate_spikes and "
                    "window_log_likelihoods check it, and unused rows would take probability in the unit-id "
                    "softmax); call resize_token_embeddings(len(tokenizer)) without pad_to_multiple_of"
                )
        rows = self.get_input_embeddings().num_embeddings  # not config.vocab_size, which a user may have set
        if n < rows:
            raise ValueError(f"new_num_tokens: expected >= current vocab_size {rows} (units cannot "
                             f"be removed), got {n}")
        if n != rows or n != self.config.vocab_size:
            self.resize_unit_embeddings(n)
        return self.get_input_embeddings()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """``PreTrainedModel.from_pretrained``, after completing an interrupted save into a local
        folder (:func:`~hf_neuroformer.configuration_neuroformer.finish_interrupted_save_of`), so
        the weights and ``config.json`` read are those of one model, never a mix of two runs. With
        ``subfolder=``, the save completed is the one into that subfolder (the folder read).

        ``AutoModel*.from_pretrained(path, subfolder=...)`` hands this a config that transformers'
        ``AutoConfig`` read before any Neuroformer class ran: when this completes a save into the
        subfolder, that config is the replaced ``config.json``'s, so it is read again from the new
        one, with the overrides given to the Auto class
        (:func:`~hf_neuroformer.configuration_neuroformer.config_after_completed_save`); without a
        subfolder ``AutoConfig`` already completed the save (``NeuroformerConfig.from_dict``)."""
        subfolder = kwargs.get("subfolder") or ""
        config = kwargs.get("config")
        read_before = None
        # not only when kwargs holds _from_auto: transformers 5.23's Auto classes do not pass it on
        if subfolder and isinstance(config, NeuroformerConfig):
            read_before = config_read_before_save_of(pretrained_model_name_or_path, subfolder)
        if finish_interrupted_save_of(pretrained_model_name_or_path, subfolder) and read_before is not None:
            hub = {k: kwargs[k] for k in ("cache_dir", "force_download", "local_files_only", "token", "revision")
                   if k in kwargs}
            kwargs["config"] = config_after_completed_save(config, read_before, pretrained_model_name_or_path,
                                                           subfolder, **hub)
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    def push_to_hub(self, *args, **kwargs):
        """transformers' ``push_to_hub``, with a warning when the classes are not registered for
        remote code: the repository then gets the weights and ``config.json`` only (no
        ``auto_map``, no model code, no tokenizer, no run records or card), so
        ``from_pretrained(repo, trust_remote_code=True)`` fails where ``hf_neuroformer`` is not
        installed ("model type `neuroformer` ... not recognize"). ``hf_neuroformer.push_to_hub(
        model_dir, repo_id)`` / ``neuroformer push`` push the whole model directory.

        Warns:
            UserWarning: the class has no auto class registered (``register_for_auto_class``) and
                ``config.auto_map`` does not name it.
        """
        self._warn_no_remote_code("push_to_hub")
        return super().push_to_hub(*args, **kwargs)


def _physical_memory_bytes() -> Optional[int]:
    """This machine's physical memory, bytes; None where the OS does not say (Windows).

    The twin of ``stimuli._memory_bytes``, on purpose: this file is shipped as Hub remote code
    with only the configuration and ``binning``, so it cannot import the package's other modules."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def _weight_element_counts(config: NeuroformerConfig, generative_heads: bool) -> dict:
    """Element counts of the config-sized weight matrices a model allocates, keyed by the setting
    that sizes them: a lower bound of its parameters (biases, LayerNorms, the temporal and
    modality embeddings are left out). :class:`NeuroformerModel`: the unit and position
    embeddings and the layers (past: self-attention + MLP; current: self- and cross-attention +
    MLP); ``generative_heads`` adds the id head (and the dt embedding of the unit when
    ``dt_conditioned_on_unit``) and the dt head."""
    h, inter = int(config.hidden_size), int(config.intermediate_size)
    attention, mlp = 4 * h * h, 2 * h * inter
    vocab_tensors = 1 + (1 + bool(config.dt_conditioned_on_unit) if generative_heads else 0)
    parts = {
        f"vocab_size={config.vocab_size}": vocab_tensors * int(config.vocab_size) * h,
        f"max_window_length={config.max_window_length}": int(config.max_window_length) * h,
        f"hidden_size={h}, intermediate_size={inter}":
            int(config.num_past_layers) * (attention + mlp) + int(config.num_hidden_layers) * (2 * attention + mlp),
    }
    if generative_heads:
        parts[f"num_dt_bins={config.num_dt_bins} (current_window={config.current_window:g} / "
              f"dt_resolution={config.dt_resolution:g})"] = int(config.num_dt_bins) * h
    return parts


def check_model_fits_in_memory(config: NeuroformerConfig, generative_heads: bool = False) -> None:
    """Refuse a config whose model cannot be built on this machine: the weights of its largest
    config-sized tensors alone (unit embeddings: ``vocab_size x hidden_size``; position
    embeddings: ``max_window_length x hidden_size``; the layers: ``hidden_size`` and
    ``intermediate_size``; with ``generative_heads``, the id head and the dt head: ``num_dt_bins
    x hidden_size``, ``num_dt_bins = current_window / dt_resolution``), in the dtype they are made
    in (``torch.get_default_dtype()``, which ``from_pretrained(dtype=...)`` sets), exceed its
    physical memory. An absurd size (``max_window_length`` 1e10, a 1e6-s window of 1-ms bins)
    failed deep inside torch ("DefaultCPUAllocator: can't allocate memory: you tried to allocate
    640000000000 bytes"), naming no setting. Nothing is checked unless the weights are made in
    host memory: ``from_pretrained`` builds the model on the meta device and then loads the
    weights where ``device_map`` says (a GPU's memory can exceed the host's),
    ``with torch.device("meta")`` allocates nothing, Accelerate's ``init_empty_weights()``
    (which replaces ``nn.Module.register_parameter``) moves each weight to the meta device as it
    is made, and DeepSpeed ZeRO-3 spreads them over the processes' GPUs.

    Raises:
        ValueError: naming the field whose tensors are the largest, its value and the sizes.
    """
    from transformers.integrations import is_deepspeed_zero3_enabled

    if (torch.get_default_device().type != "cpu" or is_deepspeed_zero3_enabled()
            or not getattr(nn.Module.register_parameter, "__module__", "").startswith("torch.")):
        return
    memory = _physical_memory_bytes()
    if not memory:
        return
    dtype = torch.get_default_dtype()
    parts = _weight_element_counts(config, generative_heads)
    size = torch.empty((), dtype=dtype, device="cpu").element_size()
    need = size * sum(parts.values())
    if need > memory:
        field, n = max(parts.items(), key=lambda kv: kv[1])
        dtype_name = str(dtype).removeprefix("torch.")
        raise ValueError(f"NeuroformerConfig: the model's {dtype_name} weights alone need at least {need / 2**30:.3g} GiB, "
                         f"more than this machine's {memory / 2**30:.3g} GiB of memory; the largest are those of {field} "
                         f"({size * n / 2**30:.3g} GiB): expected sizes that fit")


class NeuroformerModel(NeuroformerPreTrainedModel):
    """Past-window encoder + current-window decoder (no heads). See the module docstring.

    Loaded from the checkpoint of a model with heads (``AutoModel.from_pretrained`` of a pushed
    ``NeuroformerForPreTraining`` or ``NeuroformerForBehaviorDecoding``, the auto_map's
    ``AutoModel``), it takes the backbone's weights and leaves the heads out without reporting
    them as unexpected keys (the next-spike ``id_head`` / ``dt_head`` / ``dt_unit_embeddings``,
    the ``contrastive`` projections, the ``decoding_heads``), as the decoder skips the next-spike
    heads; any other key of the checkpoint is still reported.

    Raises:
        ValueError: a config whose weights cannot fit in this machine's memory
            (:func:`check_model_fits_in_memory`), before any tensor is allocated.
    """

    # the heads of the classes built on this backbone: AutoModel (this class) leaves them out by design; before, its
    # load report listed every head of a pushed model as UNEXPECTED
    _keys_to_ignore_on_load_unexpected = [r"^id_head\.", r"^dt_head\.", r"^dt_unit_embeddings\.", r"^contrastive\.",
                                          r"^decoding_heads\."]

    def __init__(self, config: NeuroformerConfig):
        check_model_fits_in_memory(config)
        super().__init__(config)
        h = config.hidden_size
        self.unit_embeddings = nn.Embedding(config.vocab_size, h, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_window_length, h)
        self.temporal_embedding = NeuroformerTemporalEmbedding(config)
        self.embed_dropout = nn.Dropout(config.hidden_dropout)
        self.past_layers = nn.ModuleList([NeuroformerEncoderLayer(config, i) for i in range(config.num_past_layers)])
        self.past_norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.layers = nn.ModuleList([NeuroformerDecoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        if config.modalities:
            self.modality_embeddings = nn.ModuleDict(
                {m["name"]: _modality_embedding(config, m) for m in config.modalities}
            )
            self.modality_stages = nn.ModuleList(
                [NeuroformerModalityStage(config, b, names) for b, names in config.modality_blocks()]
            )
        else:
            self.modality_embeddings = self.modality_stages = None
        self.post_init()

    def encode_modalities(self, modality_inputs: Optional[dict], batch_size: Optional[int] = None):
        """Embed the modality tokens of each stage.

        Args:
            modality_inputs: modality name -> ``{"times": (batch, n) float s relative to the
                current window's start, "values": (batch, n, num_features) float (continuous) or
                "ids": (batch, n) int64 class indices (categorical) or "frames": (batch,
                num_frames, H, W) float grey levels (video), "mask": (batch, n) bool}``
                (:class:`~hf_neuroformer.windows.NeuroformerCollator` builds it). ``times``,
                ``values`` and ``frames`` must be finite everywhere, padding (``mask`` False)
                included: they are not checked here (a check would wait for the GPU on every
                step), and a NaN or infinite entry makes its window's outputs (logits, loss) NaN
                without an error. Batches of the collator over windows of a
                :class:`~hf_neuroformer.recording.SpikeRecording` are (the recording refuses
                non-finite frames, and NaN behaviour samples are no token); check a batch built by
                hand, e.g. ``torch.isfinite(t).all()`` for each of its tensors.
            batch_size: the number of windows (of ``input_ids``) every modality must hold; None:
                the first modality's.

        Returns:
            One ``(kv (batch, 1 + n_tokens, hidden), allowed (batch, 1, 1, 1 + n_tokens) bool)``
            per stage, in block order (the null token first, always allowed); ``[]`` without
            modalities.

        Raises:
            ValueError: a modality of the config missing from ``modality_inputs`` (or given to a
                model without it), inputs of the wrong shape, or a modality holding another number of
                windows than ``batch_size`` (or than the first modality).
        """
        mods = self.config.modalities
        if not mods:
            if modality_inputs:
                raise ValueError(
                    f"modality_inputs: this model was trained without modalities, got {sorted(modality_inputs)}"
                )
            return []
        modality_inputs = modality_inputs or {}
        names = [m["name"] for m in mods]
        missing = [n for n in names if n not in modality_inputs]
        if missing:
            raise ValueError(
                f"modality_inputs: missing {missing}; this model was trained with the modalities {names} "
                "(build the windows with the model's config so the collator adds them)"
            )
        extra = sorted(set(modality_inputs) - set(names))
        if extra:
            raise ValueError(f"modality_inputs: {extra} are not modalities of this model ({names})")
        states = []
        # windows of another count failed in a view or a cat ("shape '[8, 11, 2, 16]' is invalid for input
        # of size 1408"), naming no modality
        whose = "one per window of input_ids" if batch_size is not None else f"as modality_inputs[{names[0]!r}]"
        for stage in self.modality_stages:
            parts, masks = [], []
            for name in stage.names:
                emb, mask = self.modality_embeddings[name].embed(modality_inputs[name])
                if batch_size is None:
                    batch_size = emb.shape[0]
                elif emb.shape[0] != batch_size:
                    raise ValueError(f"modality_inputs[{name!r}]: holds {emb.shape[0]} windows, expected {batch_size} "
                                     f"({whose})")
                parts.append(emb)
                masks.append(mask)
            b = parts[0].shape[0]
            null = stage.null_token.to(parts[0].dtype).expand(b, 1, -1)
            kv = torch.cat([null] + parts, 1)
            allowed = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=kv.device)] + masks, 1)
            states.append((kv, allowed[:, None, None, :]))
        return states

    def fuse_modalities(self, x: torch.Tensor, modality_states, output_attentions: bool = False):
        """Run the modality stages on embedded current-window tokens ``x (batch, seq_len, hidden)``.

        Each token attends only to the modality tokens (no mixing between current-window tokens),
        so the stages give the same result token by token, as KV-cached generation feeds them.

        Returns:
            ``(x, weights)``: the updated tokens and, if requested, the cross-attention weights
            ``(batch, heads, seq_len, 1 + n_tokens)`` per stage layer.
        """
        weights = []
        for stage, (kv, allowed) in zip(self.modality_stages or [], modality_states):
            x, w = stage(x, kv, allowed, output_attentions=output_attentions)
            weights.extend(w)
        return x, weights

    def get_neural_embeddings(
        self,
        input_ids: torch.LongTensor,
        dt_ids: torch.LongTensor,
        attention_mask: Optional[torch.Tensor] = None,
        past_input_ids: Optional[torch.LongTensor] = None,
        past_dt_ids: Optional[torch.LongTensor] = None,
        past_attention_mask: Optional[torch.Tensor] = None,
        past_hidden_state: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Pooled neural embedding of each window, from its spikes only.

        The current-window tokens go through the decoder (causal self-attention, cross-attention
        to the past-window encoding) WITHOUT the modality stages, and the final states are
        averaged over the real current-window tokens (BOS, spikes, EOS; padding excluded). The
        modality inputs never enter, so aligning this embedding with a modality's
        (contrastive loss, retrieval) cannot be solved by copying the modality through.

        Args: as :meth:`forward` (``input_ids`` / ``dt_ids`` / ``attention_mask``
            ``(batch, seq_len)``; the past as tokens ``(batch, past_len)`` or as
            ``past_hidden_state (batch, past_len, hidden)``).

        Returns:
            ``(batch, hidden_size)`` float tensor.

        Raises:
            ValueError: ids outside the vocabulary / dt range, a left-padded ``attention_mask``
                (padding goes on the right, as in :meth:`forward`), or no past given.
        """
        cfg = self.config
        b, t = self._check_window_shapes(input_ids, dt_ids, past_input_ids, past_dt_ids, past_attention_mask,
                                         past_hidden_state, attention_mask=attention_mask)
        if t > cfg.max_window_length:
            raise ValueError(f"input_ids: expected at most max_window_length={cfg.max_window_length} tokens, got {t}")
        self._check_ids("input_ids", input_ids, cfg.vocab_size)
        self._check_ids("dt_ids", dt_ids, cfg.num_dt_bins)
        am = (input_ids.ne(cfg.pad_token_id) if attention_mask is None else attention_mask).bool()
        _check_right_padded(am)
        if past_hidden_state is None:
            if past_input_ids is None or past_dt_ids is None:
                raise ValueError("past_input_ids and past_dt_ids: expected the past-window tokens (BOS at least)")
            if past_attention_mask is None:
                past_attention_mask = past_input_ids.ne(cfg.pad_token_id)
            past_hidden_state, _ = self.encode_past(past_input_ids, past_dt_ids, past_attention_mask)
        elif past_attention_mask is None:
            past_attention_mask = torch.ones(past_hidden_state.shape[:2], dtype=torch.bool, device=input_ids.device)
        pos = torch.arange(t, device=input_ids.device)
        x = self.embed_current(input_ids, dt_ids, pos)
        causal = pos[None, :] <= pos[:, None]
        self_allowed = ((causal[None] & am[:, None, :]) | torch.eye(t, dtype=torch.bool, device=x.device)[None])[:, None]
        pm = past_attention_mask.bool()
        cross_allowed = pm[:, None, None, :].expand(-1, 1, t, -1)
        h = self.decode(x, self_allowed, past_hidden_state, cross_allowed)[0]
        w = am.to(h.dtype)[..., None]
        return (h * w).sum(1) / w.sum(1).clamp(min=1.0)

    def get_modality_embeddings(self, modality_inputs: dict, names=None) -> dict:
        """Pooled embedding of each modality in each window.

        Args:
            modality_inputs: as :meth:`encode_modalities`.
            names: modality names (default: every modality of the config).

        Returns:
            ``{name: (pooled (batch, hidden_size) float, valid (batch,) bool)}``: the mean of the
            modality's token embeddings (:class:`NeuroformerModalityEmbedding`) over its real
            tokens; ``valid`` is False (and ``pooled`` 0) for a window without any token.

        Raises:
            ValueError: a name that is not a modality of the config or missing from the inputs.
        """
        known = [m["name"] for m in self.config.modalities]
        names = known if names is None else list(names)
        out = {}
        for name in names:
            if name not in known or name not in (modality_inputs or {}):
                raise ValueError(f"modality_inputs[{name!r}]: expected the inputs of a modality of this model ({known})")
            emb, mask = self.modality_embeddings[name].embed(modality_inputs[name])
            w = mask.to(emb.dtype)[..., None]
            # (a video's patch mask holds a True where its frame mask does: the frame mask's rule)
            out[name] = ((emb * w).sum(1) / w.sum(1).clamp(min=1.0), windows_with_tokens(modality_inputs[name]))
        return out

    def get_input_embeddings(self):
        """The unit-token embedding, ``nn.Embedding(vocab_size, hidden_size)``."""
        return self.unit_embeddings

    def set_input_embeddings(self, value):
        """Replace the unit-token embedding (an ``nn.Embedding(n, hidden_size)``)."""
        self.unit_embeddings = value

    def _check_ids(self, name: str, ids: torch.Tensor, high: int) -> None:
        if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
            # a float input_ids failed inside nn.Embedding ("Expected tensor for argument #1 'indices'
            # ..."), and float dt ids were cast to bins without a word
            raise ValueError(f"{name}: expected integer ids (torch.int64), got dtype {ids.dtype}; convert with "
                             ".long() after checking the values are whole numbers")
        if "input_ids" in name and ids.dtype not in (torch.int64, torch.int32):
            # the unit ids index nn.Embedding, which takes int64 / int32 only: int16 or uint8 ids failed
            # inside it ("Expected tensor for argument #1 'indices' to have one of ...: Long, Int")
            raise ValueError(f"{name}: expected integer ids (torch.int64 or int32), got dtype {ids.dtype}; convert "
                             "with .long()")
        if "input_ids" in name:
            self._check_config_describes_weights()  # a vocab_size set by hand: before the ids are held to it
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= high):
            # unit ids past vocab_size come from a tokenizer grown with add_units: a trained model has no embedding
            # for those units, so growing it is only half of the way (the new rows are untrained)
            raise ValueError(
                f"{name}: expected ids in [0, {high}), got values in [{int(ids.min())}, {int(ids.max())}]"
                + (f" (config.vocab_size = {high}, but the tokenizer gave unit ids up to {int(ids.max())}: it holds units "
                   "added with tokenizer.add_units); a trained model reads only the units it was trained on: tokenize "
                   "only those (recording.select_units) with the tokenizer saved with the model, or grow the model "
                   "with model.resize_unit_embeddings(len(tokenizer)) and train it on the new units"
                   if "input_ids" in name and int(ids.max()) >= high else "")
            )

    @staticmethod
    def _check_shape(name: str, tensor: Optional[torch.Tensor], shape, what: str) -> None:
        """Refuse ``tensor`` (None passes) unless its shape is ``shape``: the dt bins and masks are
        added to / combined with the ids by broadcasting, so a ``(1, T)`` or ``(B, 1)`` one ran
        without an error and gave every window the first window's bins (or every token its first)."""
        if tensor is not None and tuple(tensor.shape) != tuple(shape):
            raise ValueError(f"{name}: expected shape {tuple(shape)} ({what}), got {tuple(tensor.shape)}")

    def _check_window_shapes(self, input_ids, dt_ids, past_input_ids, past_dt_ids, past_attention_mask,
                             past_hidden_state, attention_mask=None) -> Tuple[int, int]:
        """``(batch, seq_len)`` of ``input_ids``, after checking that it is 2-D, that ``dt_ids``
        (and ``attention_mask``, when given) has its shape and that the past-window inputs hold
        one past per window (see :meth:`forward`, which checks its attention mask itself: its
        length counts the cached tokens too)."""
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids: expected (batch, seq_len) token ids, got shape {tuple(input_ids.shape)}")
        self._check_shape("dt_ids", dt_ids, input_ids.shape, "the shape of input_ids")
        self._check_shape("attention_mask", attention_mask, input_ids.shape, "the shape of input_ids")
        batch = input_ids.shape[0]
        if past_hidden_state is not None:
            if past_hidden_state.dim() != 3 or past_hidden_state.shape[0] != batch:
                raise ValueError(f"past_hidden_state: expected ({batch}, past_len, {self.config.hidden_size}) (one "
                                 f"past encoding per window of input_ids), got {tuple(past_hidden_state.shape)}")
            self._check_shape("past_attention_mask", past_attention_mask, past_hidden_state.shape[:2],
                              "one flag per token of past_hidden_state")
        elif past_input_ids is not None and (past_input_ids.dim() != 2 or past_input_ids.shape[0] != batch):
            raise ValueError(f"past_input_ids: expected ({batch}, past_len) (one past window per window of "
                             f"input_ids), got {tuple(past_input_ids.shape)}")
        return tuple(input_ids.shape)

    def current_times(self, dt_ids: torch.Tensor) -> torch.Tensor:
        """dt bin ids of the current window -> seconds from the window start (centre of the
        bin's part inside the window, as ``NeuroformerTokenizer.id_to_dt``).

        ``dt_ids``: int tensor (any shape); returns float32 seconds of its shape. Ids are not
        range-checked here (:meth:`forward` checks them)."""
        lo = dt_ids.float() * self.config.dt_resolution
        return (lo + torch.clamp(lo + self.config.dt_resolution, max=self.config.current_window)) / 2

    def past_times(self, past_dt_ids: torch.Tensor) -> torch.Tensor:
        """Past bin ids -> seconds relative to the current window start (negative): the centre of
        the bin's part inside the past window. The tokenizer's past bins start at the past
        window's start, so the last one is partial when ``dt_resolution`` does not divide
        ``past_window``; its plain centre fell after the current window's start. With
        ``past_window == 0`` (BOS only) the BOS keeps ``+dt_resolution / 2``.

        ``past_dt_ids``: int tensor (any shape); returns float32 seconds of its shape."""
        res, pw = self.config.dt_resolution, self.config.past_window
        t = (past_dt_ids.float() + 0.5) * res - pw
        last = self.config.num_past_dt_bins - 1
        if n_full_bins(pw, res) < n_bins_covering(pw, res):  # a partial last bin: [last * res, pw)
            t = torch.where(past_dt_ids == last, torch.full_like(t, (last * res - pw) / 2), t)
        return t

    def embed_current(self, input_ids: torch.LongTensor, dt_ids: torch.LongTensor, positions: torch.LongTensor):
        """Input embedding of current-window tokens: unit + position + temporal (dt in seconds).

        Args:
            input_ids / dt_ids: ``(batch, seq_len)`` int64.
            positions: ``(seq_len,)`` int64 token positions in the window (offset by the cache).

        Returns:
            ``(batch, seq_len, hidden_size)``.
        """
        x = (
            self.unit_embeddings(input_ids)
            + self.position_embeddings(positions)[None]
            + self.temporal_embedding(self.current_times(dt_ids))
        )
        return self.embed_dropout(x)

    def decode(self, x, self_mask, past_hidden_state, cross_mask, cache=None, output_attentions=False):
        """Run the decoder layers and the final LayerNorm.

        Args:
            x: ``(batch, seq_len, hidden)`` embedded current-window tokens (:meth:`embed_current`).
            self_mask: ``(batch, 1, seq_len, cache_len + seq_len)`` bool allowed-mask or additive
                float mask for the causal self-attention.
            past_hidden_state: ``(batch, past_len, hidden)`` from :meth:`encode_past`.
            cross_mask: ``(batch, 1, seq_len or 1, past_len)`` mask for the cross-attention.
            cache: optional :class:`~transformers.EncoderDecoderCache`, updated in place.

        Returns:
            ``(hidden (batch, seq_len, hidden), hidden states, self-attention weights,
            cross-attention weights)`` (weights are None unless ``output_attentions``). The
            hidden states are ``num_hidden_layers + 1`` tensors like ``hidden``: the input
            ``x``, then each layer's output, the last one after the final LayerNorm (so it is
            ``hidden``, transformers' convention for ``hidden_states[-1]``).
        """
        hiddens, attns, cross = [x], [], []
        for layer in self.layers:
            x, w_s, w_c = layer(x, self_mask, past_hidden_state, cross_mask, output_attentions=output_attentions,
                                cache=cache)
            hiddens.append(x)
            attns.append(w_s)
            cross.append(w_c)
        x = self.norm(x)
        hiddens[-1] = x
        return x, hiddens, attns, cross

    def encode_past(
        self,
        past_input_ids: torch.LongTensor,
        past_dt_ids: torch.LongTensor,
        past_attention_mask: Optional[torch.Tensor] = None,
        output_attentions: bool = False,
    ):
        """Encode the past window.

        Args:
            past_input_ids: ``(batch, past_len)`` int64, BOS then past spikes' unit tokens.
            past_dt_ids: ``(batch, past_len)`` int64 past time bins.
            past_attention_mask: ``(batch, past_len)`` 1 for real tokens, 0 for padding.

        Returns:
            ``(past_hidden_state (batch, past_len, hidden), attentions tuple or None)``.

        Raises:
            ValueError: ``past_input_ids`` outside ``[0, vocab_size)`` or ``past_dt_ids`` outside
                ``[0, max(num_past_dt_bins, 1))``, naming the field and the range found.
        """
        if past_input_ids.dim() != 2:
            raise ValueError(f"past_input_ids: expected (batch, past_len) token ids, got shape {tuple(past_input_ids.shape)}")
        self._check_shape("past_dt_ids", past_dt_ids, past_input_ids.shape, "the shape of past_input_ids")
        self._check_shape("past_attention_mask", past_attention_mask, past_input_ids.shape, "the shape of past_input_ids")
        self._check_ids("past_input_ids", past_input_ids, self.config.vocab_size)
        # the tokenizer's past bins: [0, ceil(past_window / dt_resolution)), at least bin 0 (BOS)
        self._check_ids("past_dt_ids", past_dt_ids, max(self.config.num_past_dt_bins, 1))
        if past_attention_mask is None:
            past_attention_mask = past_input_ids.ne(self.config.pad_token_id)
        pm = past_attention_mask.bool()
        x = self.unit_embeddings(past_input_ids) + self.temporal_embedding(self.past_times(past_dt_ids))
        x = self.embed_dropout(x)
        allowed = pm[:, None, None, :].expand(-1, 1, pm.shape[1], -1)
        attns = []
        for layer in self.past_layers:
            x, w = layer(x, allowed, output_attentions=output_attentions)
            attns.append(w)
        return self.past_norm(x), (tuple(attns) if output_attentions else None)

    def forward(
        self,
        input_ids: torch.LongTensor,
        dt_ids: torch.LongTensor,
        attention_mask: Optional[torch.Tensor] = None,
        past_input_ids: Optional[torch.LongTensor] = None,
        past_dt_ids: Optional[torch.LongTensor] = None,
        past_attention_mask: Optional[torch.Tensor] = None,
        past_hidden_state: Optional[torch.Tensor] = None,
        cache: Optional[EncoderDecoderCache] = None,
        use_cache: bool = False,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        past_key_values: Optional[EncoderDecoderCache] = None,
        modality_inputs: Optional[dict] = None,
    ) -> NeuroformerModelOutput:
        """Run the network.

        Args:
            input_ids: ``(batch, seq_len)`` int64 current-window tokens (BOS, unit ids, EOS, pad).
            dt_ids: ``(batch, seq_len)`` int64 dt bins of those tokens (bin width
                ``config.dt_resolution`` s).
            attention_mask: ``(batch, seq_len)`` 1 for real tokens, 0 for padding, padding on the
                right only (positions are absolute; left padding is refused). None: the tokens
                that are not ``pad_token_id``.
            past_input_ids / past_dt_ids / past_attention_mask: ``(batch, past_len)`` past-window
                tokens (BOS first); needed unless ``past_hidden_state`` is given. The past encoder
                has no positions, so its padding may sit on either side.
            past_hidden_state: ``(batch, past_len, hidden)`` output of :meth:`encode_past`, to
                reuse the past encoding across generation steps. Pass the ``past_attention_mask``
                of padded past windows with it: without one every past token counts as real, and
                the padding's states would be attended to.
            cache: an :class:`~transformers.EncoderDecoderCache` holding the keys/values of the
                tokens already seen (transformers' cache convention; ``past_key_values`` is
                accepted as the older name). ``input_ids`` / ``dt_ids`` are then only the new
                tokens, and ``attention_mask``, if given, covers cached + new tokens
                ``(batch, cache_len + seq_len)`` (None: every cached token is real).
            use_cache: return the cache in ``output.cache`` (a new one is made when ``cache`` is
                None), so the next call feeds only the next token.
            output_attentions: return attention weights (switches attention to eager); None:
                ``config.output_attentions`` (likewise ``output_hidden_states``).
            modality_inputs: the modality tokens of each window (see :meth:`encode_modalities`;
                finite, unchecked: a NaN makes its window's logits NaN); required when
                ``config.modalities`` is not empty. The stages
                (:meth:`fuse_modalities`) run on the embedded current-window tokens before the
                decoder layers; their attention weights are in ``modality_attentions``.

        Returns:
            :class:`NeuroformerModelOutput`: ``last_hidden_state`` ``(batch, seq_len, hidden_size)``
            and ``past_hidden_state`` ``(batch, past_len, hidden_size)``, float32 for a
            float32 model run without autocast, ``cache`` with
            ``use_cache=True``, and the attentions / hidden states asked for.

        Raises:
            ValueError: if ids are not integer tensors (float, bool; unit ids int64 or int32) or fall outside the
                vocabulary / dt range, the window grows past
                ``max_window_length``, ``dt_ids`` or a mask differs in shape from its ids (or
                the past from the batch of ``input_ids``), ``attention_mask`` is not right-padded,
                the past is missing, or the modality
                inputs do not match ``config.modalities``; each names the field.
        """
        cfg = self.config
        output_attentions, output_hidden_states = self._wanted_outputs(output_attentions, output_hidden_states)
        if cache is None:
            cache = past_key_values
        if cache is None and use_cache:
            cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        offset = cache.get_seq_length() if cache is not None else 0
        b, t = self._check_window_shapes(input_ids, dt_ids, past_input_ids, past_dt_ids, past_attention_mask,
                                         past_hidden_state)
        if offset + t > cfg.max_window_length:
            raise ValueError(
                f"input_ids: expected at most max_window_length={cfg.max_window_length} tokens in a window, got "
                f"{offset + t}" + (f" ({offset} cached + {t} new)" if offset else "")
            )
        self._check_ids("input_ids", input_ids, cfg.vocab_size)
        self._check_ids("dt_ids", dt_ids, cfg.num_dt_bins)
        new_real = input_ids.ne(cfg.pad_token_id)
        if attention_mask is None:
            attention_mask = new_real
            if offset:
                attention_mask = torch.cat(
                    [torch.ones(b, offset, dtype=torch.bool, device=input_ids.device), new_real], 1
                )
        elif tuple(attention_mask.shape) != (b, offset + t):
            raise ValueError(
                f"attention_mask: expected ({b}, {offset + t}) covering {offset} cached + {t} new tokens, "
                f"got {tuple(attention_mask.shape)}"
            )
        past_attns = None
        if past_hidden_state is None:
            if past_input_ids is None or past_dt_ids is None:
                raise ValueError("past_input_ids and past_dt_ids: expected the past-window tokens (BOS at least)")
            if past_attention_mask is None:
                past_attention_mask = past_input_ids.ne(cfg.pad_token_id)
            past_hidden_state, past_attns = self.encode_past(
                past_input_ids, past_dt_ids, past_attention_mask, output_attentions
            )
        elif past_attention_mask is None:
            past_attention_mask = torch.ones(past_hidden_state.shape[:2], dtype=torch.bool, device=input_ids.device)

        pos = torch.arange(offset, offset + t, device=input_ids.device)
        x = self.embed_current(input_ids, dt_ids, pos)
        modality_attns = None
        if cfg.modalities or modality_inputs:
            x, modality_attns = self.fuse_modalities(x, self.encode_modalities(modality_inputs, b), output_attentions)
        am = attention_mask.bool()
        _check_right_padded(am, offset)
        key_pos = torch.arange(offset + t, device=x.device)
        causal = key_pos[None, :] <= pos[:, None]  # (t, offset + t)
        itself = key_pos[None, :] == pos[:, None]
        # a query may see itself even when padded, so no row is fully masked
        self_allowed = ((causal[None] & am[:, None, :]) | itself[None])[:, None]
        pm = past_attention_mask.bool()
        cross_allowed = pm[:, None, None, :].expand(-1, 1, t, -1)

        x, hiddens, attns, cross = self.decode(
            x, self_allowed, past_hidden_state, cross_allowed, cache=cache, output_attentions=output_attentions
        )
        return self._output(NeuroformerModelOutput(
            last_hidden_state=x,
            past_hidden_state=past_hidden_state,
            cache=cache if (use_cache or cache is not None) else None,
            hidden_states=tuple(hiddens) if output_hidden_states else None,
            attentions=tuple(attns) if output_attentions else None,
            cross_attentions=tuple(cross) if output_attentions else None,
            past_attentions=past_attns,
            modality_attentions=tuple(modality_attns) if (output_attentions and modality_attns) else None,
        ), return_dict)


def backbone_for_heads(config: NeuroformerConfig) -> NeuroformerModel:
    """A :class:`NeuroformerModel` to hold inside a model with heads (``self.neuroformer``), without
    the head patterns of ``NeuroformerModel._keys_to_ignore_on_load_unexpected``: transformers'
    ``post_init`` gathers its children's patterns into the outer model, where a head of another
    class in the checkpoint (a decoder's ``decoding_heads`` loaded as
    ``NeuroformerForPreTraining``) must still be reported as unexpected."""
    backbone = NeuroformerModel(config)
    backbone._keys_to_ignore_on_load_unexpected = set()  # post_init made the class's list a set on the instance
    return backbone


#: The modules of :class:`NeuroformerForPreTraining` that predict the next spike (unit id, then dt);
#: a checkpoint without them loads them newly initialised.
NEXT_SPIKE_HEAD_MODULES = ("id_head", "dt_head", "dt_unit_embeddings")


class NextSpikeHeadsNotLoadedWarning(UserWarning):
    """:meth:`NeuroformerForPreTraining.from_pretrained` of a checkpoint that lacks the next-spike
    heads (:data:`NEXT_SPIKE_HEAD_MODULES`), or holds them in another shape: they are initialised at
    random, so what the model generates or scores is noise. The message names the weights and what
    to load instead (a fine-tuned decoder's pretrained model, as its ``metrics.json`` says)."""


def _finetuned_from(path, subfolder: str = "") -> Optional[str]:
    """The pretrained model a fine-tuned decoder folder started from, as the ``metrics.json`` of
    ``neuroformer finetune`` records it (``init`` ``"pretrained"``, ``model_dir``), following
    decoders fine-tuned further from other decoders (``init`` ``"decoder"``) to the first; None
    when ``path`` is no local folder, or the record is missing, unreadable or names no pretrained
    model."""
    seen, folder = set(), os.path.join(str(path), subfolder or "")
    while os.path.isdir(folder) and folder not in seen:
        seen.add(folder)
        try:
            with open(os.path.join(folder, "metrics.json"), encoding="utf-8") as f:
                record = json.load(f)
        except (OSError, ValueError):
            return None
        source = record.get("model_dir") if isinstance(record, dict) else None
        if not isinstance(source, str) or not source:
            return None
        if record.get("init") == "pretrained":
            return source
        if record.get("init") != "decoder":
            return None
        folder = source
    return None


def _next_spike_heads_advice(config, path, subfolder: str = "") -> str:
    """What to load in place of ``path`` as a :class:`NeuroformerForPreTraining`, from its
    ``config``: a fine-tuned decoder's pretrained model, or for a backbone the classes that use it
    as it is."""
    is_decoder = bool(getattr(config, "decoding_targets", None)) or \
        "NeuroformerForBehaviorDecoding" in (getattr(config, "architectures", None) or [])
    if not is_decoder:
        return ("it holds no pretraining heads (a NeuroformerModel backbone?): load it with "
                "AutoModel / NeuroformerModel for embeddings, or pretrain the heads "
                "('neuroformer train')")
    source = _finetuned_from(path, subfolder)
    where = (f"{source!r}, as its metrics.json records" if source else
             "the folder written by 'neuroformer train' (its model card or metrics.json names it)")
    weight = getattr(config, "decoding_generative_loss_weight", 0) or 0
    kept = "" if weight > 0 else ", so its next-spike heads were not kept"
    return (f"it is a fine-tuned behaviour decoder (NeuroformerForBehaviorDecoding, "
            f"decoding_generative_loss_weight = {weight:g}{kept}): to generate or score spikes "
            f"load the pretrained model it was fine-tuned from, {where}; to decode behaviour load "
            "it with AutoModelForSequenceClassification / NeuroformerForBehaviorDecoding")


class NeuroformerForPreTraining(NeuroformerPreTrainedModel):
    """Neuroformer with the next-unit-id head and the next-dt head (generative pretraining;
    Antoniades et al. 2024, arXiv 2311.00136, Sec. 3.3, see the module docstring).

    The loss follows the causal-LM convention: ``labels`` and ``dt_labels`` are aligned with
    ``input_ids`` and shifted inside the model (position ``i`` predicts token ``i + 1``);
    ``-100`` marks positions without a target.
    """

    def __init__(self, config: NeuroformerConfig):
        check_model_fits_in_memory(config, generative_heads=True)
        super().__init__(config)
        self.neuroformer = backbone_for_heads(config)
        self.id_head = nn.Linear(config.hidden_size, config.vocab_size)
        self.dt_head = nn.Linear(config.hidden_size, config.num_dt_bins)
        self.dt_unit_embeddings = (
            nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
            if config.dt_conditioned_on_unit
            else None
        )
        # contrastive alignment: no module (and no parameter) unless its weight is > 0
        self.contrastive = NeuroformerContrastiveHead(config) if config.contrastive_modality_names() else None
        self.post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """``PreTrainedModel.from_pretrained`` (see
        :meth:`NeuroformerPreTrainedModel.from_pretrained`), with a warning when the checkpoint
        does not hold the next-spike heads (:data:`NEXT_SPIKE_HEAD_MODULES`): transformers then
        initialises them at random and only logs its load report, so spikes generated from a
        fine-tuned decoder folder (``decoding_generative_loss_weight`` 0) were noise without a
        word. A decoder fine-tuned with ``decoding_generative_loss_weight > 0`` kept the heads, and
        they load.

        Returns:
            the model, or ``(model, loading_info)`` with ``output_loading_info=True``.

        Warns:
            NextSpikeHeadsNotLoadedWarning: naming the missing (or mismatched) head weights and
                what to load instead: for a fine-tuned decoder, the pretrained model it was
                fine-tuned from (the ``model_dir`` of its ``metrics.json`` when the folder has
                one), or ``AutoModelForSequenceClassification`` to decode behaviour.
        """
        want_info = kwargs.get("output_loading_info", False)
        model, info = super().from_pretrained(pretrained_model_name_or_path, *args,
                                              **{**kwargs, "output_loading_info": True})
        mismatched = [k[0] if isinstance(k, (tuple, list)) else k
                      for k in info.get("mismatched_keys", ())]
        heads = sorted(k for k in [*info.get("missing_keys", ()), *mismatched]
                       if k.split(".")[0] in NEXT_SPIKE_HEAD_MODULES)
        if heads:
            path = pretrained_model_name_or_path
            advice = _next_spike_heads_advice(model.config, path, kwargs.get("subfolder", ""))
            warnings.warn(
                f"NeuroformerForPreTraining.from_pretrained({str(path)!r}): the checkpoint holds "
                f"no weights (or weights of another shape) for the next-spike heads "
                f"({', '.join(heads)}), so they were initialised at random and the spikes it "
                f"generates or scores are noise; {advice}",
                NextSpikeHeadsNotLoadedWarning, stacklevel=2)
        return (model, info) if want_info else model

    def get_neural_embeddings(self, *args, projected: Optional[str] = None, **kwargs) -> torch.Tensor:
        """Pooled neural embedding of each window (see :meth:`NeuroformerModel.get_neural_embeddings`).

        Args:
            projected: a contrastive modality name: return the embedding after that modality's
                neural projection, ``(batch, contrastive_projection_size)``; None: the pooled
                decoder states, ``(batch, hidden_size)``.

        Raises:
            ValueError: ``projected`` given to a model without that contrastive projection.
        """
        h = self.neuroformer.get_neural_embeddings(*args, **kwargs)
        if projected is None:
            return h
        if self.contrastive is None or projected not in self.contrastive.names:
            have = [] if self.contrastive is None else self.contrastive.names
            raise ValueError(f"projected: {projected!r} has no contrastive projection in this model (has {have}; "
                             "contrastive_loss_weight > 0 builds them)")
        return self.contrastive.neural_projections[projected](h)

    def get_output_embeddings(self):
        """The unit-id head, ``nn.Linear(hidden_size, vocab_size)`` (next-spike unit logits)."""
        return self.id_head

    def dt_logits_given_unit(self, hidden: torch.Tensor, next_ids: torch.LongTensor) -> torch.Tensor:
        """dt-bin logits of the next spike given its unit.

        Args:
            hidden: ``(..., hidden_size)`` decoder states (after the final LayerNorm).
            next_ids: ``(...)`` int64 unit token of the next spike at each state (pad: none
                known). Ignored when ``config.dt_conditioned_on_unit`` is False.

        Returns:
            ``(..., num_dt_bins)`` logits.
        """
        if self.dt_unit_embeddings is not None:
            hidden = hidden + self.dt_unit_embeddings(next_ids)
        return self.dt_head(hidden)

    def forward(
        self,
        input_ids: torch.LongTensor,
        dt_ids: torch.LongTensor,
        attention_mask: Optional[torch.Tensor] = None,
        past_input_ids: Optional[torch.LongTensor] = None,
        past_dt_ids: Optional[torch.LongTensor] = None,
        past_attention_mask: Optional[torch.Tensor] = None,
        past_hidden_state: Optional[torch.Tensor] = None,
        labels: Optional[torch.LongTensor] = None,
        dt_labels: Optional[torch.LongTensor] = None,
        cache: Optional[EncoderDecoderCache] = None,
        use_cache: bool = False,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        past_key_values: Optional[EncoderDecoderCache] = None,
        modality_inputs: Optional[dict] = None,
        output_contrastive_loss: Optional[bool] = None,
    ) -> NeuroformerPreTrainingOutput:
        """Next-spike prediction.

        Args: as :meth:`NeuroformerModel.forward`, plus
            labels: ``(batch, seq_len)`` int64 unit-id targets aligned with ``input_ids``
                (``-100`` = ignore), usually ``input_ids`` with padding set to ``-100``.
            dt_labels: ``(batch, seq_len)`` int64 dt-bin targets aligned with ``input_ids``
                (``-100`` at BOS, EOS and padding).
            modality_inputs: see :meth:`NeuroformerModel.encode_modalities` (required when the
                config has modalities).
            output_contrastive_loss: compute ``contrastive_loss`` (needs
                ``config.contrastive_loss_weight > 0``; one more decoder pass without the
                modality stages). Default: in training mode only, and never with a cache.

        Returns:
            :class:`NeuroformerPreTrainingOutput`; ``loss`` when either label is given.

        Raises:
            ValueError: as :meth:`NeuroformerModel.forward`, and ``labels`` / ``dt_labels`` that
                are not integer tensors, of another shape than ``input_ids`` or with a target outside ``[0, vocab_size)`` /
                ``[0, num_dt_bins)`` other than -100 (int32 labels are taken as int64); a
                ``config.current_window`` / ``dt_resolution`` changed after the model was built
                (its dt head has another number of classes than ``config.num_dt_bins``).
        """
        self._check_config_describes_weights()
        out = self.neuroformer(
            input_ids=input_ids,
            dt_ids=dt_ids,
            attention_mask=attention_mask,
            past_input_ids=past_input_ids,
            past_dt_ids=past_dt_ids,
            past_attention_mask=past_attention_mask,
            past_hidden_state=past_hidden_state,
            cache=cache if cache is not None else past_key_values,
            use_cache=use_cache,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            modality_inputs=modality_inputs,
            return_dict=True,
        )
        h = out.last_hidden_state
        logits = self.id_head(h)
        # position i predicts token i + 1: its dt is conditioned on that token's unit, known here
        # for every position but the last (teacher forcing); the last one gets "no unit" (pad)
        pad = torch.full_like(input_ids[:, :1], self.config.pad_token_id)
        dt_logits = self.dt_logits_given_unit(h, torch.cat([input_ids[:, 1:], pad], 1))
        loss = id_loss = dt_loss = None
        if labels is not None or dt_labels is not None:
            # a loss whose labels were not given is None, not 0: labels=input_ids alone (the causal-LM
            # idiom) reported dt_loss = 0.0, a perfect dt prediction that was never measured
            id_loss = _shifted_ce(logits, labels, "labels") if labels is not None else None
            dt_loss = _shifted_ce(dt_logits, dt_labels, "dt_labels") if dt_labels is not None else None
            if id_loss is None:
                loss = self.config.dt_loss_weight * dt_loss
            elif dt_loss is None:
                loss = id_loss
            else:
                loss = id_loss + self.config.dt_loss_weight * dt_loss
        contrastive_loss = None
        if output_contrastive_loss is None:
            output_contrastive_loss = self.training and cache is None and past_key_values is None and not use_cache
        if self.contrastive is not None and output_contrastive_loss:
            if past_attention_mask is None and past_input_ids is not None:
                past_attention_mask = past_input_ids.ne(self.config.pad_token_id)
            neural = self.neuroformer.get_neural_embeddings(
                input_ids, dt_ids, attention_mask, past_hidden_state=out.past_hidden_state,
                past_attention_mask=past_attention_mask)
            pooled = self.neuroformer.get_modality_embeddings(modality_inputs, self.contrastive.names)
            contrastive_loss = self.contrastive(neural, pooled)
            if loss is not None:
                loss = loss + self.config.contrastive_loss_weight * contrastive_loss
        return self._output(NeuroformerPreTrainingOutput(
            loss=loss,
            id_loss=id_loss,
            dt_loss=dt_loss,
            logits=logits,
            dt_logits=dt_logits,
            past_hidden_state=out.past_hidden_state,
            cache=out.cache,
            hidden_states=out.hidden_states,
            attentions=out.attentions,
            cross_attentions=out.cross_attentions,
            past_attentions=out.past_attentions,
            contrastive_loss=contrastive_loss,
            modality_attentions=out.modality_attentions,
        ), return_dict)

    def generate(self, *args, **kwargs):
        """Refused: transformers' token loop samples only ``logits`` and would drop ``dt``.

        Use :func:`hf_neuroformer.generation.generate_spikes` (or ``model.generate_spikes``),
        which samples the unit id and dt jointly.

        Raises:
            NotImplementedError: always.
        """
        raise NotImplementedError(
            "NeuroformerForPreTraining.generate: the generic token loop cannot sample unit id and dt "
            "jointly; use model.generate_spikes(...) / hf_neuroformer.generate_spikes(...)"
        )

    def generate_spikes(self, *args, **kwargs):
        """Sample spike trains window by window; see :func:`hf_neuroformer.generation.generate_spikes`.

        Raises:
            ImportError: when this file was loaded as Hub remote code (``trust_remote_code``)
                and the ``hf_neuroformer`` package is not installed.
        """
        return _generation_module().generate_spikes(self, *args, **kwargs)


@dataclass
class NeuroformerDecodingOutput(ModelOutput):
    """Output of :class:`NeuroformerForBehaviorDecoding`.

    Only tensors with a leading batch dimension (besides ``loss``), so that ``Trainer`` can
    gather them over evaluation batches.

    Attributes:
        loss: scalar training loss when ``labels`` are given (see
            :meth:`NeuroformerForBehaviorDecoding.forward`).
        predictions: ``(batch, n_targets)`` float32 prediction per target in the target's own
            units: the value (regression, de-standardised), the class index (classification,
            an index into the target's ``classes``), the angle in radians in ``(-pi, pi]``
            (circular).
        logits: ``(batch, sum of head widths)`` raw head outputs, concatenated in target order
            (regression 1: standardised value, or with ``"loss": "hl_gauss"`` ``num_bins`` bin
            logits; classification ``num_classes``: class logits;
            circular 2: ``(cos, sin)``).
        pooled: ``(batch, pooled_size)`` the pooled features the heads read, when
            ``output_hidden_states``.
        hidden_states, attentions, cross_attentions: as :class:`NeuroformerModelOutput`.
        loss_terms: ``(batch, 6)`` float32, in evaluation mode (``model.eval()``) with ``labels``:
            each window's share of the sums the loss is made of (:data:`DECODING_LOSS_TERMS`), so
            that the loss of any set of windows, evaluated in batches or by several processes, is
            :meth:`NeuroformerForBehaviorDecoding.loss_from_terms` of their rows summed, the loss
            of those windows as one batch (``Trainer`` averages its batches' losses instead).
    """

    loss: Optional[torch.FloatTensor] = None
    predictions: Optional[torch.FloatTensor] = None
    logits: Optional[torch.FloatTensor] = None
    pooled: Optional[torch.FloatTensor] = None
    hidden_states: Optional[Tuple[torch.FloatTensor, ...]] = None
    attentions: Optional[Tuple[torch.FloatTensor, ...]] = None
    cross_attentions: Optional[Tuple[torch.FloatTensor, ...]] = None
    loss_terms: Optional[torch.FloatTensor] = None


#: The columns of :attr:`NeuroformerDecodingOutput.loss_terms`, per window: ``n_targets *
#: sum_k weight_k * loss_k`` over its labelled targets, its number of labels (finite entries), then
#: for the auxiliary next-spike term the summed unit-id cross-entropy (nats) of its next-spike
#: targets and their number, and the same for the dt cross-entropy (0 without the auxiliary term).
DECODING_LOSS_TERMS = ("target_loss_sum", "n_labels", "id_nll_sum", "n_id_targets", "dt_nll_sum", "n_dt_targets")

_DECODING_KINDS = {"regression": 1, "circular": 2}


def _head_width(target: dict) -> int:
    if target["kind"] == "classification":
        return int(target["num_classes"])
    if target.get("loss") == "hl_gauss":
        return int(target["num_bins"])
    return _DECODING_KINDS[target["kind"]]


def hl_gauss_bin_edges(target: dict, device=None) -> torch.Tensor:
    """``(num_bins + 1,)`` float32 edges of an HL-Gauss regression target's equal bins over its
    ``bin_range`` (standardised units: ``(value - mean) / std``)."""
    lo, hi = (float(v) for v in target["bin_range"])
    return torch.linspace(lo, hi, int(target["num_bins"]) + 1, dtype=torch.float32, device=device)


def hl_gauss_target_distribution(z: torch.Tensor, edges: torch.Tensor, sigma: float) -> torch.Tensor:
    """HL-Gauss target of each value: the mass of N(z, sigma^2) in each bin, normalised by its mass
    between the outer edges (Imani & White, ICML 2018, the histogram loss with a Gaussian target;
    as Farebrother et al., ICML 2024, arXiv 2403.03950, Sec. 3.1), computed with the normal CDF
    (``torch.special.ndtr``).

    Args:
        z: ``(n,)`` float standardised targets; a value outside ``[edges[0], edges[-1]]`` is
            clipped to the nearest outer edge first (not counted here: the bins of a fine-tuned
            target hold every training value with a margin, :func:`hf_neuroformer.decoding.target_dicts`,
            so only validation / test values can be clipped, and their predictions and R² do not
            use this distribution; a continued decoder keeps its saved bins, and the training
            values beyond them are counted in a warning,
            :func:`hf_neuroformer.finetuning.hl_gauss_clipped_notes`).
        edges: ``(num_bins + 1,)`` increasing bin edges (:func:`hl_gauss_bin_edges`).
        sigma: the Gaussian's standard deviation, in the units of ``z`` (> 0).

    Returns:
        ``(n, num_bins)`` float32, each row >= 0 and summing to 1.
    """
    z = z.float().clamp(float(edges[0]), float(edges[-1]))
    cdf = torch.special.ndtr((edges.float()[None, :] - z[:, None]) / sigma)
    return (cdf[:, 1:] - cdf[:, :-1]) / (cdf[:, -1:] - cdf[:, :1])


class NeuroformerDecodingHead(nn.Module):
    """pooled -> Linear -> GELU -> dropout -> Linear (or one Linear when ``hidden == 0``)."""

    def __init__(self, in_size: int, hidden: int, out_size: int, dropout: float):
        super().__init__()
        if hidden:
            self.net = nn.Sequential(nn.Linear(in_size, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, out_size))
        else:
            self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_size, out_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class NeuroformerAttentionPool(nn.Module):
    """Attentive read-out for ``decoding_pool="attention"``: one learned query attends over the
    real tokens of the current window's final decoder states and the past-window encoding.

    Each state gets a learned stream embedding (0 = current window, 1 = past window) and a
    LayerNorm; the query, keys and values are linear maps of ``hidden_size``, split into
    ``num_attention_heads`` heads; padding is masked out (``-inf`` before the softmax), so the
    pooled vector never reads a padding position. A row with no real token in either window
    (never built by the tokenizer: both windows start with BOS) gets zero weights everywhere,
    so its pooled vector is ``o_proj``'s bias (as the mean pool gives zeros) instead of NaN,
    which would make the whole batch's loss and gradients NaN. Built from ``nn.Linear`` /
    ``nn.Embedding`` / ``nn.LayerNorm`` only, so that ``from_pretrained`` initialises it with the
    model's ``initializer_range`` when a pretraining checkpoint does not have it.

    A single learned query per window, as attention pooling by a learned seed vector (Set
    Transformer's PMA, Lee et al., ICML 2019); POYO (Azabou et al., NeurIPS 2023, arXiv
    2310.16046) reads its outputs with learned queries too, one per output timestamp, which
    cross-attend to its PerceiverIO latent tokens rather than to the spike tokens themselves.

    Input: ``current (batch, L, hidden)`` with ``current_mask (batch, L)`` and ``past (batch, P,
    hidden)`` with ``past_mask (batch, P)`` (bool or 0/1 of any dtype; True/1 = real token).
    Output: ``(batch, hidden)`` in the dtype of the projections (float32, or the autocast
    dtype); with ``return_weights`` also the attention ``(batch, heads, L + P)`` (zero on
    padding; each row sums to 1, or to 0 for a row without real tokens).
    """

    def __init__(self, config: NeuroformerConfig):
        super().__init__()
        h = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.query = nn.Embedding(1, h)
        self.stream_embeddings = nn.Embedding(2, h)
        self.norm = nn.LayerNorm(h, eps=config.layer_norm_eps)
        self.q_proj = nn.Linear(h, h)
        self.k_proj = nn.Linear(h, h)
        self.v_proj = nn.Linear(h, h)
        self.o_proj = nn.Linear(h, h)
        self.dropout = nn.Dropout(config.attention_dropout)

    def forward(self, current, current_mask, past, past_mask, return_weights: bool = False):
        b, h = current.shape[0], current.shape[-1]
        nh = self.num_heads
        kv = torch.cat([current + self.stream_embeddings.weight[0], past + self.stream_embeddings.weight[1]], 1)
        kv = self.norm(kv)
        mask = torch.cat([current_mask.bool(), past_mask.bool()], 1)  # (b, L + P)
        q = self.q_proj(self.query.weight).view(1, nh, 1, h // nh)  # (1, heads, 1, d)
        k = self.k_proj(kv).view(b, -1, nh, h // nh).transpose(1, 2)  # (b, heads, L+P, d)
        v = self.v_proj(kv).view(b, -1, nh, h // nh).transpose(1, 2)
        scores = (q * k).sum(-1) / math.sqrt(h // nh)  # (b, heads, L+P)
        empty = ~mask.any(1)  # (b,) no real token at all: zero weights, not a softmax over nothing (NaN)
        scores = scores.masked_fill(~(mask | empty[:, None])[:, None, :], float("-inf"))
        weights = torch.softmax(scores.float(), -1).masked_fill(empty[:, None, None], 0.0).to(v.dtype)
        pooled = (self.dropout(weights)[..., None] * v).sum(2).reshape(b, h)
        pooled = self.o_proj(pooled)
        return (pooled, weights) if return_weights else pooled


class NeuroformerForBehaviorDecoding(NeuroformerPreTrainedModel):
    """Neuroformer backbone + one decoding head per behavioural target (paper Sec. 3.4,
    "downstream decoding": the pretrained network is fine-tuned to predict behaviour).

    1. The backbone (:class:`NeuroformerModel`, attribute ``neuroformer`` as in
       :class:`NeuroformerForPreTraining`, so ``from_pretrained`` of a pretraining checkpoint
       loads it and initialises only the new heads) encodes the past window and decodes the
       current window.
    2. Pooling over real tokens only (``config.decoding_pool``): the mean of the final decoder
       states over the current window's real tokens (``attention_mask``: BOS, spikes, EOS; never
       padding), concatenated (``"current+past"``, default) with the mean of the past-window
       encoding over its real tokens (``past_attention_mask``). A window without spikes still
       pools its BOS/EOS states, which read the past window through cross-attention, and the
       past mean. ``"attention"``: a learned query attends over the real tokens of both
       instead (:class:`NeuroformerAttentionPool`).
    3. One head per entry of ``config.decoding_targets``: regression (MSE on the value
       standardised with the TRAIN mean/std stored in the target; with ``"loss": "hl_gauss"``
       cross-entropy of ``num_bins`` logits against :func:`hl_gauss_target_distribution` of the
       standardised value, prediction the expected bin centre under their softmax), classification
       (cross-entropy, each window weighted by its class's entry of the target's
       ``class_weights`` when set: by default scikit-learn's ``"balanced"`` weights of the
       training windows, as the classification baselines use), circular (predicts ``(cos, sin)``; loss ``||(c, s) - (cos a, sin a)||^2 / 2``
       against the unit vector of the angle; prediction ``atan2(s, c)``).
    4. Optionally (``config.decoding_generative_loss_weight > 0``) the next-spike loss of
       :class:`NeuroformerForPreTraining` as an auxiliary term, with the pretraining heads
       (``id_head``, ``dt_head``, ``dt_unit_embeddings``) loaded from the checkpoint when it has
       them. With weight 0 those heads are not built and their checkpoint weights are skipped
       silently.

    Loss under gradient accumulation: ``accepts_loss_kwargs = True``; ``Trainer`` passes
    ``num_items_in_batch``, the number of label entries (finite ``labels``, i.e. windows x
    targets less the missing ones, counted by :class:`hf_neuroformer.finetuning.DecodingTrainer`)
    over all micro-batches of the optimisation step, and the loss of a micro-batch is
    its SUM of per-window losses divided by that count, so the accumulated gradient equals the
    gradient of one large batch.
    """

    accepts_loss_kwargs = True

    def __init__(self, config: NeuroformerConfig):
        super().__init__(config)
        if not config.decoding_targets:
            # e.g. AutoModelForSequenceClassification.from_pretrained(<pretraining checkpoint>, num_labels=3):
            # num_labels is not read, and forward would refuse only later
            warnings.warn("NeuroformerForBehaviorDecoding: config.decoding_targets is empty, so the model has no "
                          "decoding head (num_labels is not used); pass decoding_targets=[{'name': ..., 'kind': ...}] "
                          "or fine-tune with hf_neuroformer.finetuning.finetune / neuroformer finetune", UserWarning,
                          stacklevel=2)
        check_model_fits_in_memory(config, generative_heads=config.decoding_generative_loss_weight > 0)
        self.neuroformer = backbone_for_heads(config)
        h = config.hidden_size
        pooled = 2 * h if config.decoding_pool == "current+past" else h
        self.attention_pool = NeuroformerAttentionPool(config) if config.decoding_pool == "attention" else None
        hidden = h if config.decoding_head_hidden_size is None else config.decoding_head_hidden_size
        self.decoding_heads = nn.ModuleList(
            [NeuroformerDecodingHead(pooled, hidden, _head_width(t), config.hidden_dropout) for t in config.decoding_targets]
        )
        if config.decoding_generative_loss_weight > 0:
            self.id_head = nn.Linear(h, config.vocab_size)
            self.dt_head = nn.Linear(h, config.num_dt_bins)
            self.dt_unit_embeddings = (
                nn.Embedding(config.vocab_size, h, padding_idx=config.pad_token_id) if config.dt_conditioned_on_unit else None
            )
        else:
            self.id_head = self.dt_head = self.dt_unit_embeddings = None
            # the pretraining heads of a checkpoint are not used: skip them without a warning
            self._keys_to_ignore_on_load_unexpected = [r"^id_head\.", r"^dt_head\.", r"^dt_unit_embeddings\."]
        self.post_init()

    @property
    def decoding_targets(self) -> list:
        """``config.decoding_targets``: one spec dict per decoded quantity, in ``labels``' column
        order (see :class:`NeuroformerConfig`)."""
        return self.config.decoding_targets

    def pool(self, out, attention_mask: torch.Tensor, past_attention_mask: torch.Tensor) -> torch.Tensor:
        """``(batch, pooled_size)``: masked means, or the attentive read-out (see the class docstring, step 2)."""
        if past_attention_mask is None:  # the backbone read every past position as real
            past_attention_mask = torch.ones(out.past_hidden_state.shape[:2], dtype=torch.bool,
                                             device=out.past_hidden_state.device)
        if self.config.decoding_pool == "attention":
            return self.attention_pool(out.last_hidden_state, attention_mask, out.past_hidden_state, past_attention_mask)
        am = attention_mask.to(out.last_hidden_state.dtype).unsqueeze(-1)
        cur = (out.last_hidden_state * am).sum(1) / am.sum(1).clamp(min=1.0)
        if self.config.decoding_pool == "current":
            return cur
        pm = past_attention_mask.to(out.past_hidden_state.dtype).unsqueeze(-1)
        past = (out.past_hidden_state * pm).sum(1) / pm.sum(1).clamp(min=1.0)
        return torch.cat([cur, past], -1)

    def forward(
        self,
        input_ids: torch.LongTensor,
        dt_ids: torch.LongTensor,
        attention_mask: Optional[torch.Tensor] = None,
        past_input_ids: Optional[torch.LongTensor] = None,
        past_dt_ids: Optional[torch.LongTensor] = None,
        past_attention_mask: Optional[torch.Tensor] = None,
        labels: Optional[torch.Tensor] = None,
        token_labels: Optional[torch.LongTensor] = None,
        dt_labels: Optional[torch.LongTensor] = None,
        num_items_in_batch: Optional[torch.Tensor] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
        modality_inputs: Optional[dict] = None,
        num_id_targets_in_batch: Optional[torch.Tensor] = None,
        num_dt_targets_in_batch: Optional[torch.Tensor] = None,
    ) -> NeuroformerDecodingOutput:
        """Decode the behaviour of each window.

        Args: the window tensors as :meth:`NeuroformerModel.forward`, plus
            labels: ``(batch, n_targets)`` float targets in target order: the raw value
                (regression; standardised inside), the class index (classification, as a float)
                or the angle in radians (circular); NaN = no label (left out of the loss); an
                infinite value is refused. The loss is ``n_targets * sum(weight * per-label
                loss) / num_items_in_batch``: a mean over the present labels of all targets, so a
                target missing from some windows weighs less in a step, in proportion to its labels
                (and the sum is exact under gradient accumulation).
            token_labels / dt_labels: ``(batch, seq_len)`` next-spike labels as
                ``NeuroformerForPreTraining``'s ``labels`` / ``dt_labels``, for the auxiliary
                generative loss (used only when ``config.decoding_generative_loss_weight > 0``).
            num_items_in_batch: finite label entries of the whole optimisation step
                (``DecodingTrainer`` counts them over its micro-batches; a plain ``Trainer``
                counts ``labels != -100``, which includes NaN); default: those of this batch.
            num_id_targets_in_batch / num_dt_targets_in_batch: the next-spike targets
                (``token_labels[:, 1:]`` / ``dt_labels[:, 1:]`` other than -100) of the whole
                optimisation step, over its micro-batches and processes (``DecodingTrainer``
                counts them); with them the auxiliary term is the step's exact per-token mean.

        Returns:
            :class:`NeuroformerDecodingOutput`. ``loss = n_targets * sum_k w_k * sum_b l_kb /
            num_items_in_batch`` (+ the auxiliary term); without missing labels and without
            accumulation this is ``sum_k w_k * mean_b l_kb``. The auxiliary term is
            ``w_gen * (sum of the id cross-entropies / num_id_targets_in_batch + dt_loss_weight
            * sum of the dt cross-entropies / num_dt_targets_in_batch)``, so that the micro-batches
            of a step add up to the per-token mean of the whole step, as one batch gives; without
            the counts it is this batch's per-token mean, times its share of the step's label
            entries when ``num_items_in_batch`` is given (a ``Trainer`` that does not count the
            tokens; exact only when micro-batches hold equal token counts), times 1 in a plain
            call or evaluation (the batch is the whole step). A batch without any behaviour label
            (``labels`` None or all NaN) with ``token_labels`` / ``dt_labels`` gets the auxiliary
            term alone, in training and evaluation mode alike: what a training step on it
            optimises (evaluation returned 0.0 for all-NaN labels, and None without ``labels``,
            while ``loss_terms`` held the term). ``loss`` is None only when nothing is scored: no
            ``labels`` and no auxiliary term (weight 0, or neither ``token_labels`` nor
            ``dt_labels``). ``loss_terms`` (evaluation mode only) holds a row per window whenever
            ``loss`` is computed, with zero label columns for a batch without ``labels``.

        Raises:
            ValueError: no decoding target in the config, ``labels`` of the wrong shape, an
                infinite label, or a class index outside ``[0, num_classes)``.
        """
        cfg = self.config
        output_attentions, output_hidden_states = self._wanted_outputs(output_attentions, output_hidden_states)
        targets = cfg.decoding_targets
        if not targets:
            raise ValueError(
                "config.decoding_targets: expected at least one target; load with "
                "NeuroformerForBehaviorDecoding.from_pretrained(path, decoding_targets=[...]) "
                "(hf_neuroformer.decoding builds them from the training split)"
            )
        if attention_mask is None:
            attention_mask = input_ids.ne(cfg.pad_token_id)
        if past_attention_mask is None and past_input_ids is not None:
            past_attention_mask = past_input_ids.ne(cfg.pad_token_id)
        out = self.neuroformer(
            input_ids=input_ids,
            dt_ids=dt_ids,
            attention_mask=attention_mask,
            past_input_ids=past_input_ids,
            past_dt_ids=past_dt_ids,
            past_attention_mask=past_attention_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            modality_inputs=modality_inputs,
            return_dict=True,
        )
        pooled = self.pool(out, attention_mask, past_attention_mask)
        raw = [head(pooled).float() for head in self.decoding_heads]
        preds = []
        for t, r in zip(targets, raw):
            if t["kind"] == "regression" and t.get("loss") == "hl_gauss":  # the expected bin centre
                edges = hl_gauss_bin_edges(t, r.device)
                # a product and a sum, not a matmul: autocast ran the matmul in bfloat16, and the expected
                # centre kept 3 significant digits (90.0 for 90.04 cm)
                z_hat = (torch.softmax(r, -1) * ((edges[1:] + edges[:-1]) / 2)).sum(-1)
                preds.append(z_hat * float(t.get("std", 1.0)) + float(t.get("mean", 0.0)))
            elif t["kind"] == "regression":
                preds.append(r[:, 0] * float(t.get("std", 1.0)) + float(t.get("mean", 0.0)))
            elif t["kind"] == "classification":
                preds.append(r.argmax(-1).float())
            else:
                preds.append(torch.atan2(r[:, 1], r[:, 0]))
        predictions = torch.stack(preds, -1)

        loss = loss_terms = None
        if labels is not None:
            labels = labels.to(raw[0].device).float()
            if labels.dim() == 1 and len(targets) == 1:
                labels = labels[:, None]
            if labels.shape != predictions.shape:
                raise ValueError(
                    f"labels: expected (batch, n_targets) = {tuple(predictions.shape)} for targets "
                    f"{[t['name'] for t in targets]}, got {tuple(labels.shape)}"
                )
            if bool(torch.isinf(labels).any()):  # it was left out of the loss as if missing, without a word
                row, k = (int(v) for v in torch.isinf(labels).nonzero()[0])
                raise ValueError(f"labels[:, {k}] ({targets[k]['name']!r}): expected finite values, or NaN for no label, "
                                 f"got {labels[row, k].item()} in row {row}")
            n_local = torch.isfinite(labels).sum()  # NaN = no label: neither in the sum nor in the count
            denom = num_items_in_batch if num_items_in_batch is not None else n_local
            denom = torch.as_tensor(denom, dtype=torch.float32, device=labels.device).clamp(min=1.0)
            total = raw[0].sum() * 0.0
            # per window, for loss_terms (evaluation): n_targets * sum_k w_k * l_k and the labels counted
            window_sum = labels.new_zeros(labels.shape[0])
            for k, (t, r) in enumerate(zip(targets, raw)):
                y = labels[:, k]
                ok = torch.isfinite(y)
                if not bool(ok.any()):
                    continue
                y, r = y[ok], r[ok]
                if t["kind"] == "regression" and t.get("loss") == "hl_gauss":
                    z = (y - float(t.get("mean", 0.0))) / float(t.get("std", 1.0))
                    edges = hl_gauss_bin_edges(t, r.device)
                    sigma = float(t["hl_gauss_sigma_ratio"]) * float(edges[1] - edges[0])
                    per = F.cross_entropy(r, hl_gauss_target_distribution(z, edges, sigma), reduction="none")
                elif t["kind"] == "regression":
                    z = (y - float(t.get("mean", 0.0))) / float(t.get("std", 1.0))
                    per = (r[:, 0] - z) ** 2
                elif t["kind"] == "classification":
                    c = y.long()
                    n_cls = int(t["num_classes"])
                    if bool(((c < 0) | (c >= n_cls) | (c.float() != y)).any()):
                        bad = y[(c < 0) | (c >= n_cls) | (c.float() != y)][0].item()
                        raise ValueError(
                            f"labels[:, {k}] ({t['name']!r}): expected class indices in [0, {n_cls}), got {bad}"
                        )
                    cw = t.get("class_weights")
                    cw = None if cw is None else torch.as_tensor(cw, dtype=r.dtype, device=r.device)
                    per = F.cross_entropy(r, c, weight=cw, reduction="none")
                else:
                    unit = torch.stack([torch.cos(y), torch.sin(y)], -1)
                    per = 0.5 * ((r - unit) ** 2).sum(-1)
                total = total + float(t.get("weight", 1.0)) * per.sum()
                if not self.training:
                    window_sum = window_sum.index_add(0, ok.nonzero()[:, 0],
                                                      (float(t.get("weight", 1.0)) * len(targets) * per).detach().float())
            loss = total * len(targets) / denom
            if not self.training:
                loss_terms = labels.new_zeros(labels.shape[0], len(DECODING_LOSS_TERMS))
                loss_terms[:, 0] = window_sum
                loss_terms[:, 1] = torch.isfinite(labels).sum(1)
        w_gen = cfg.decoding_generative_loss_weight
        if w_gen > 0 and (token_labels is not None or dt_labels is not None):
            # also without a behaviour label (labels None or all NaN): the auxiliary term is then the whole loss,
            # as a training step optimises it; before, eval gave 0.0 (or None) while loss_terms held the term
            if loss is None:  # no behaviour label given
                loss = raw[0].sum() * 0.0
                n_local = torch.zeros((), device=loss.device)
                denom = torch.as_tensor(1.0 if num_items_in_batch is None else num_items_in_batch, dtype=torch.float32,
                                        device=loss.device).clamp(min=1.0)
            if loss_terms is None and not self.training:
                loss_terms = raw[0].new_zeros(input_ids.shape[0], len(DECODING_LOSS_TERMS))
            h = out.last_hidden_state
            zero = h.sum() * 0.0
            # the step's token counts (DecodingTrainer): sums over them, exact under accumulation
            exact = ((token_labels is None or num_id_targets_in_batch is not None)
                     and (dt_labels is None or num_dt_targets_in_batch is not None))

            def term(logits, y, name, count):
                if y is None:
                    return zero
                if not exact:
                    return _shifted_ce(logits, y, name)
                n = torch.as_tensor(count, dtype=torch.float32, device=logits.device).clamp(min=1.0)
                return _shifted_ce(logits, y, name, reduction="sum") / n

            id_logits = self.id_head(h)
            id_loss = term(id_logits, token_labels, "token_labels", num_id_targets_in_batch)
            nxt = torch.cat([input_ids[:, 1:], torch.full_like(input_ids[:, :1], cfg.pad_token_id)], 1)
            hd = h + self.dt_unit_embeddings(nxt) if self.dt_unit_embeddings is not None else h
            dt_logits = self.dt_head(hd)
            dt_loss = term(dt_logits, dt_labels, "dt_labels", num_dt_targets_in_batch)
            # a plain call or evaluation (no step count): this batch is the whole step, share 1, also when it
            # holds no behaviour label (n_local / denom was 0 / 1 there and the term vanished)
            share = 1.0 if exact or num_items_in_batch is None else n_local.float() / denom
            loss = loss + w_gen * (id_loss + cfg.dt_loss_weight * dt_loss) * share
            if not self.training:  # each window's summed cross-entropies and next-spike targets
                for col, logits, y in ((2, id_logits, token_labels), (4, dt_logits, dt_labels)):
                    if y is not None:
                        sums, counts = _window_shifted_ce(logits, y)
                        loss_terms[:, col], loss_terms[:, col + 1] = sums, counts
        return self._output(NeuroformerDecodingOutput(
            loss=loss,
            predictions=predictions,
            logits=torch.cat(raw, -1),
            pooled=pooled if output_hidden_states else None,
            hidden_states=out.hidden_states,
            attentions=out.attentions,
            cross_attentions=out.cross_attentions,
            loss_terms=loss_terms,
        ), return_dict)

    def loss_from_terms(self, loss_terms) -> float:
        """The loss of the windows whose :attr:`NeuroformerDecodingOutput.loss_terms` rows are
        ``loss_terms`` (``(n_windows, 6)``, a tensor or array; rows of several batches or processes
        stacked): the loss :meth:`forward` gives for all of them as one batch in evaluation mode,
        ``sum(target_loss_sum) / sum(n_labels)`` plus, with ``decoding_generative_loss_weight``
        ``w > 0``, ``w * (sum(id_nll_sum) / sum(n_id_targets) + dt_loss_weight * sum(dt_nll_sum) /
        sum(n_dt_targets))`` (each count at least 1, as :meth:`forward` clamps it). Python float, nats.

        Raises:
            ValueError: ``loss_terms`` is not 2-D with one column per :data:`DECODING_LOSS_TERMS`.
        """
        t = torch.as_tensor(loss_terms, dtype=torch.float64)
        if t.dim() != 2 or t.shape[1] != len(DECODING_LOSS_TERMS):
            raise ValueError(f"loss_terms: expected (n_windows, {len(DECODING_LOSS_TERMS)}) rows of "
                             f"NeuroformerDecodingOutput.loss_terms, got shape {tuple(t.shape)}")
        s = t.sum(0)
        loss = s[0] / s[1].clamp(min=1.0)
        w_gen = float(self.config.decoding_generative_loss_weight)
        if w_gen > 0:
            loss = loss + w_gen * (s[2] / s[3].clamp(min=1.0) + float(self.config.dt_loss_weight) * s[4] / s[5].clamp(min=1.0))
        return float(loss)


def _window_shifted_ce(logits: torch.Tensor, labels: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per window (row): the summed cross-entropy (nats) of ``logits[:, :-1]`` against ``labels[:, 1:]``
    and the number of those targets, -100 ignored (:func:`_shifted_ce`'s terms, which has checked the
    labels); two ``(batch,)`` float32 tensors."""
    y = labels[:, 1:].long()
    ce = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), y.clamp(min=0), reduction="none")
    real = y.ne(-100)
    return (ce * real).sum(1).detach(), real.sum(1).float()


def _generation_module():
    """``hf_neuroformer.generation``, imported at call time by name.

    This file must import only ``configuration_neuroformer`` relatively: transformers copies a
    model's relative imports (and checks their dependencies) when it is pushed as remote code,
    and the sampler needs the whole package (recordings, windows, tqdm). So the sampler is found
    beside this file when it is the package's own copy, else in an installed ``hf_neuroformer``.
    """
    import importlib

    if __package__ and not __package__.startswith("transformers_modules"):
        return importlib.import_module(__package__ + ".generation")
    try:
        return importlib.import_module("hf_neuroformer.generation")
    except ImportError as e:
        raise ImportError(
            "model.generate_spikes needs the hf_neuroformer package (this model was loaded as Hub remote code); "
            "install hf_neuroformer (the version the model card names), or use the model's forward pass directly"
        ) from e


def _shifted_ce(logits: torch.Tensor, labels: torch.Tensor, name: str = "labels", reduction: str = "mean") -> torch.Tensor:
    """Mean (or, ``reduction="sum"``, summed) cross-entropy of ``logits[:, :-1]`` against
    ``labels[:, 1:]`` (nats), ignoring -100; 0 when no target is left.

    Raises:
        ValueError: naming ``name``, for labels that are not integers, of another shape than
            ``logits.shape[:2]`` (the input ids) or a target outside ``[0, n_classes)`` other than -100.
    """
    n = logits.shape[-1]
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        # float labels were cut to ids by .long() below (3.7 -> 3) without a word
        raise ValueError(f"{name}: expected integer ids (torch.int64, -100 for no target), got dtype {labels.dtype}")
    if tuple(labels.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"{name}: expected shape {tuple(logits.shape[:2])} (aligned with input_ids), got "
                         f"{tuple(labels.shape)}")
    bad = labels.ne(-100) & (labels.lt(0) | labels.ge(n))
    if bool(bad.any()):
        raise ValueError(f"{name}: expected -100 (no target) or ids in [0, {n}), got {int(labels[bad][0])} at "
                         f"{tuple(int(i) for i in bad.nonzero()[0])}")
    lg = logits[:, :-1].reshape(-1, n).float()
    tg = labels[:, 1:].reshape(-1).long()  # int32 labels too (cross_entropy takes only int64 targets)
    if not bool((tg != -100).any()):
        return lg.sum() * 0.0
    return F.cross_entropy(lg, tg, ignore_index=-100, reduction=reduction)


__all__ = [
    "NeuroformerPreTrainedModel",
    "NeuroformerModel",
    "NeuroformerForPreTraining",
    "NEXT_SPIKE_HEAD_MODULES",
    "NextSpikeHeadsNotLoadedWarning",
    "NeuroformerModelOutput",
    "NeuroformerPreTrainingOutput",
    "NeuroformerForBehaviorDecoding",
    "NeuroformerDecodingOutput",
    "DECODING_LOSS_TERMS",
    "hl_gauss_bin_edges",
    "hl_gauss_target_distribution",
    "NeuroformerModalityEmbedding",
    "NeuroformerModalityStage",
    "NeuroformerContrastiveHead",
    "info_nce",
    "retrieval_top1",
    "NeuroformerModalityLayer",
    "windows_with_tokens",
    "ContrastiveGatherUnderJoinError",
    "check_model_fits_in_memory",
    "NeuroformerAttentionPool",
]
