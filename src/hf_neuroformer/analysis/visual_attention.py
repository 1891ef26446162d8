"""Attention of spike tokens over the visual scene: the modality-stage cross-attention from the
current-window tokens of a video-conditioned Neuroformer to the frame-patch tokens of its video
modality, mapped back to the pixels of the frames.

The paper (Antoniades et al. 2024, arXiv 2311.00136, Sec. 4 and Fig. 1: "the attention map over
a visual scene from the point of view of a mouse, conditioned on its brain") shows such maps as
pictures; here they are arrays with a stated normalisation, and a figure.

Which attention
---------------
The video's patch tokens enter the network in a modality stage
(:class:`~hf_neuroformer.modeling_neuroformer.NeuroformerModalityStage`), which runs on the
embedded current-window tokens BEFORE the decoder layers: each current-window token ``q``
cross-attends to ``[null token] + the stage's modality tokens`` (the video's patches in
``(time, row, column)`` order, after any modality listed before it in the same block), with no
mixing between current-window tokens. The query of position ``q`` is therefore computed from
token ``q`` alone (its unit id, dt bin and position). So a unit's queries here are the positions
whose **input** token is that unit's spike (``input_ids[q]`` is the unit's token): "where in the
scene does the model look when it reads a spike of this unit". (The decoder then carries what
position ``q`` took from the scene to the prediction of token ``q + 1`` and, through causal
self-attention, to later positions; that path is not part of these maps.) BOS, EOS and padding
queries are never used. The whole population = every spike token of the window.

Normalisation (what the maps sum to)
------------------------------------
For each query, the head-mean attention weights on the video's REAL patch tokens (patches with at
least one real frame; masked patches get no attention) are rescaled to sum to 1: the null token
and other modalities are left out, and their share is reported separately as
``video_share`` (the fraction of the query's attention that went to the video at all). Each
patch's weight is spread evenly over its ``ph x pw`` pixels and over its real frames (``pt``
frames per patch; padded frames get nothing). A query's map ``(num_frames, H, W)`` therefore
**sums to 1 over all pixels of all frames of the window** (not per frame: the sum over one
frame's pixels is the share of attention on that frame). A selection's map is the mean of its
queries' maps (every selected spike token weighs the same, pooled over the windows), so it sums
to 1 as well. Uniform attention over ``n`` real pixels is ``1 / n`` everywhere; the figure shows
the map times ``n`` ("x uniform").

Two readouts
------------
* ``raw``: the last layer of the modality stage that holds the video, mean over heads.
* ``rollout``: attention rollout (Abnar & Zuidema 2020, ACL) through that stage's layers. Each
  stage layer adds its cross-attention output to the query's residual stream
  (``x <- x + CrossAttn(LN(x), kv)``, then a token-wise MLP, which mixes nothing). With the rollout
  vector ``r`` of a query over ``[its own token, null, modality tokens]``, ``r_0 = e_own`` and each
  layer ``l`` gives ``r_l = 0.5 * r_{l-1} + 0.5 * [0, A_l]`` (the residual counted as half; the
  modality tokens are the same keys in every layer, so their own rollout is the identity). So
  ``r_L = 0.5^L e_own + sum_l 0.5^(L-l+1) A_l``; its video part is renormalised over the real
  patches as above, which amounts to the layer-weighted mean ``sum_l 2^l A_l / sum_l 2^l`` of the
  per-layer maps. With a single stage layer (``num_modality_layers = 1``) the rollout equals the
  raw map exactly; ``video_share`` of the rollout is the video's share of ``r_L``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from ..configuration_neuroformer import is_whole_number
from ..jsonio import json_safe
from ..recording import SpikeRecording, check_is_recording, count_noun
from ..tokenization_neuroformer import check_tokenizer_matches_config
from ..windows import check_windows_apart, resolve_past_clip_starts, window_starts_array
from ._batches import (attention_batches, check_attention_model, check_finite_weights,
                       check_pass_settings, check_split_has_windows, check_unit_indices,
                       model_unit_lookup)

READOUTS = ("raw", "rollout")
READOUT_DEFINITIONS = {
    "raw": "last modality-stage layer's cross-attention (mean over heads) from each selected spike token (query = "
           "position whose INPUT token is the unit's spike) to the video's real patch tokens, renormalised to sum to "
           "1 over the real patches (null token and other modalities left out)",
    "rollout": "attention rollout through the video's modality-stage layers: r_0 = own token, r_l = 0.5 r_(l-1) + "
               "0.5 A_l (residual as half); video part renormalised over real patches = sum_l 2^l A_l / sum_l 2^l; "
               "equals raw when the stage has one layer",
}
NORMALISATION = ("each selected query's map (num_frames, H, W) sums to 1 over all pixels of all real frames of the "
                 "window (a patch's weight is spread evenly over its ph x pw pixels and its real frames); the "
                 "selection's map is the mean over its queries (pooled over windows) and sums to 1 as well")


def video_modality(config, name: Optional[str] = None) -> dict:
    """The video modality entry of ``config.modalities`` (the only one, or the one called ``name``).

    Raises:
        ValueError: the model has no video modality, ``name`` is not one of its video
            modalities, or it has several and ``name`` is None.
    """
    mods = list(config.modalities or [])
    videos = [m for m in mods if m.get("kind") == "video"]
    if not videos:
        raise ValueError(
            "model: config.modalities has no video modality (kind 'video'; its modalities are "
            f"{[(m['name'], m.get('kind')) for m in mods]}); a visual attention map needs a model trained with video "
            "frames as input (e.g. configs/allen_video.yaml)")
    if name is None:
        if len(videos) > 1:
            raise ValueError(f"modality: the model has several video modalities {[m['name'] for m in videos]}; "
                             "name one")
        return videos[0]
    for m in videos:
        if m["name"] == name:
            return m
    raise ValueError(f"modality: {name!r} is not a video modality of this model ({[m['name'] for m in videos]})")


def _stage_layout(model, video: dict, modality_inputs: dict):
    """``(layer indices into modality_attentions, first kv column of the video, n video tokens)``."""
    base = model.base_model
    cfg = model.config
    n_layers = cfg.num_modality_layers
    by_name = {m["name"]: m for m in cfg.modalities}
    for s, stage in enumerate(base.modality_stages):
        if video["name"] not in stage.names:
            continue
        col = 1  # the null token
        for name in stage.names:
            if name == video["name"]:
                break
            m = by_name[name]
            if m["kind"] == "video":
                col += int(np.prod(base.modality_embeddings[name].grid))
            else:
                col += int(modality_inputs[name]["mask"].shape[1])
        n_tok = int(np.prod(base.modality_embeddings[video["name"]].grid))
        return list(range(s * n_layers, (s + 1) * n_layers)), col, n_tok
    raise ValueError(f"modality: {video['name']!r} is in no modality stage of the model")  # pragma: no cover


def _patch_to_pixels(w: torch.Tensor, grid, patch, frame_mask: torch.Tensor) -> torch.Tensor:
    """Spread patch weights ``(..., n_patches)`` (``n_patches = prod(grid)``) over pixels:
    ``(..., num_frames, H, W)``, each patch's weight divided evenly over its ``ph x pw`` pixels and
    its real frames. ``frame_mask``: ``(..., num_frames)`` bool, broadcast against ``w``'s leading
    dimensions."""
    gt, gh, gw = grid
    pt, ph, pw = patch
    lead = w.shape[:-1]
    x = w.reshape(*lead, gt, 1, gh, 1, gw, 1).expand(*lead, gt, pt, gh, ph, gw, pw)
    x = x.reshape(*lead, gt * pt, gh * ph, gw * pw)
    fm = frame_mask.to(w.dtype)
    n_real = fm.reshape(*fm.shape[:-1], gt, pt).sum(-1, keepdim=True).expand(*fm.shape[:-1], gt, pt)
    n_real = n_real.reshape(*fm.shape[:-1], gt * pt)
    per_frame = torch.where(fm > 0, 1.0 / n_real.clamp(min=1.0), torch.zeros_like(fm))
    return x * per_frame[..., :, None, None] / (ph * pw)


@torch.no_grad()
def visual_attention_maps(
    model,
    tokenizer,
    recording: SpikeRecording,
    window_starts: Sequence[float],
    *,
    past_clip_starts: str | Sequence[float] | None = None,
    units: Optional[Sequence[int]] = None,
    modality: Optional[str] = None,
    batch_size: int = 64,
    device=None,
    progress: bool = False,
) -> Dict[str, object]:
    """Per-window pixel-space attention maps of the selected spike tokens over a video modality.

    See the module docstring for which queries count (position whose input token is a selected
    unit's spike), the normalisation (a map sums to 1 over all pixels of all frames of its
    window) and the two readouts.

    Args:
        model: a video-conditioned :class:`~hf_neuroformer.NeuroformerForPreTraining` (or
            ``NeuroformerModel``).
        tokenizer: its tokenizer (knows ``recording``'s units).
        recording: the spikes and the stimulus frames (the recording the model was trained on).
        window_starts: ``(n_windows,)`` current-window starts, s, at least ``current_window`` apart
            (any order).
        past_clip_starts: ``None`` (no clip; default), ``(n_windows,)`` seconds (the past window starts no
            earlier than this; NaN: no clip), ``"trials"`` (each window's trial start, as a trial-mode model
            read its past) or ``"auto"`` (the start of the recorded stretch holding the window, where its past
            window reaches before it: a stretch's first windows are read with a partial, possibly empty,
            past, and no window is refused for a past in unrecorded time), resolved and checked as every
            reader of windows does (:func:`~hf_neuroformer.windows.resolve_past_clip_starts`).
        units: unit indices into ``recording`` (``0 .. n_units - 1``) whose spike tokens are the
            queries; ``None``: every unit (the population).
        modality: name of the video modality (default: the model's only one).
        batch_size: windows per forward pass.
        device: torch device (default: the model's).
        progress: a bar over the windows (``attention over windows``, standard error; off with
            ``TQDM_DISABLE=1``).

    Returns:
        dict with, for ``r`` in ``("raw", "rollout")``: ``maps_<r>`` ``(n_windows, num_frames, H,
        W)`` float64, each window's mean over its selected queries (all zeros for a window with
        none), and ``video_share_<r>`` ``(n_windows,)`` mean share of the queries' attention on the
        video's real patches (NaN without queries); ``n_queries`` ``(n_windows,)`` int64;
        ``frames`` ``(n_windows, num_frames, H, W)`` float32 raw grey levels as the model saw
        them (padding frames 0) and ``frame_mask`` ``(n_windows, num_frames)`` bool;
        ``frame_times`` ``(n_windows, num_frames)`` s relative to the window start;
        ``window_starts``; ``units`` (list, or None); ``modality`` (name); ``grid``,
        ``patch_size``, ``n_stage_layers``.

    Raises:
        TypeError: a ``model`` other than those above (a path, a behaviour decoder), a ``tokenizer``
            other than a ``NeuroformerTokenizer`` (a processor) or a ``recording`` other than a
            ``SpikeRecording`` (a path):
            :func:`~hf_neuroformer.analysis._batches.check_attention_model`,
            :func:`~hf_neuroformer.recording.check_is_recording`,
            :func:`~hf_neuroformer.tokenization_neuroformer.check_tokenizer_matches_config`.
        ValueError: the model has no video modality; a unit index outside ``recording``;
            ``window_starts`` that are not 1-D (refused, not flattened); no windows; windows that overlap
            or repeat (starts less than ``current_window`` apart: the pooled maps would count the shared
            spikes once per window; refused as :func:`~hf_neuroformer.generation.generate_spikes` refuses
            them, :func:`~hf_neuroformer.windows.check_windows_apart`); ``past_clip_starts``
            that are not float64 real numbers (text, booleans, float32), not one per window, or after
            their window's start, ``"trials"`` for a recording without trials, or another string (named
            ``past_clip_starts``); ``batch_size``
            not an integer >= 1; a recording with a unit the model was not trained on
            (``UnknownUnitError``) or a tokenizer that is not the model's (see
            :func:`~hf_neuroformer.analysis._batches.model_unit_lookup`).
    """
    # a model's or a recording's path, a decoder or a processor failed later with an AttributeError
    # naming no argument
    check_attention_model(model)
    video = video_modality(model.config, modality)  # the model's kind first, then what it reads
    check_is_recording(recording)
    check_tokenizer_matches_config(tokenizer, model.config)  # a processor: pass processor.tokenizer
    starts = window_starts_array(window_starts)
    # refused as generate_spikes refuses them: a duplicate start ([10.0, 10.0]) counted every query of the window
    # twice, and overlapping windows the spikes of the shared time once per window, without a word
    check_windows_apart(starts, model.config.current_window)
    n = recording.n_units
    if units is not None:
        units = check_unit_indices(units)
        bad = [u for u in units if not 0 <= u < n]
        if not units or bad:
            raise ValueError(f"units: expected unit indices in 0..{n - 1} of the recording, got {bad or units}")
    # checked as generate_spikes checks them: np.asarray(..., dtype=float64) took the text "0.9", True (1.0 s) and
    # float32 clips (700.05 -> 700.0499877929688 s) without a word, where the other consumers refuse them
    # "trials" / "auto" / seconds, resolved as generate_spikes and window_log_likelihoods resolve them (warnings at the
    # caller's line, past torch.no_grad's wrapper)
    clips = resolve_past_clip_starts(recording, starts, past_clip_starts, past_window=model.config.past_window,
                                     current_window=model.config.current_window, stacklevel=3)
    if device is None:
        device = next(model.parameters()).device
    lut = torch.as_tensor(model_unit_lookup(tokenizer, recording, model.config), device=device)
    selected = torch.zeros(n + 1, dtype=torch.bool, device=device)  # last slot: "not a unit"
    selected[:n] = True if units is None else False
    if units is not None:
        selected[torch.as_tensor(units, device=device)] = True
    base = model.base_model
    grid = tuple(base.modality_embeddings[video["name"]].grid)
    patch = tuple(video["patch_size"])
    nf_, (fh, fw) = video["num_frames"], tuple(video["frame_shape"])
    W = len(starts)
    maps = {r: np.zeros((W, nf_, fh, fw)) for r in READOUTS}
    share = {r: np.full(W, np.nan) for r in READOUTS}
    n_queries = np.zeros(W, dtype=np.int64)
    frames = np.zeros((W, nf_, fh, fw), dtype=np.float32)
    frame_mask = np.zeros((W, nf_), dtype=bool)
    frame_times = np.zeros((W, nf_))
    n_stage_layers = model.config.num_modality_layers
    for idx, batch, out in attention_batches(model, tokenizer, recording, starts, clips, batch_size, device,
                                             progress=progress):
        vin = batch["modality_inputs"][video["name"]]
        layers, col, n_tok = _stage_layout(model, video, batch["modality_inputs"])
        att = [out.modality_attentions[i].double().mean(1) for i in layers]  # (B, T, 1 + n_kv) per layer
        if att[0].shape[-1] < col + n_tok:
            raise ValueError(f"model: the modality stage has {att[0].shape[-1]} keys, expected at least "
                             f"{col + n_tok}")  # pragma: no cover - a model / config mismatch
        fmask = vin["mask"].bool()
        B = fmask.shape[0]
        tok_real = fmask.view(B, grid[0], -1).any(-1)[:, :, None, None].expand(B, *grid).reshape(B, -1)
        ids = batch["input_ids"]
        am = batch["attention_mask"].bool()
        unit = lut[ids].masked_fill(~am, -1)
        q_sel = selected[torch.where(unit >= 0, unit, torch.full_like(unit, n))]  # (B, T)
        L = len(att)
        weights = {"raw": att[-1], "rollout": sum(0.5 ** (L - j) * a for j, a in enumerate(att))}
        for r, w in weights.items():
            # w: share of each query's state from each key (rollout: own-token share 0.5^L left out)
            vid = w[..., col:col + n_tok] * tok_real[:, None, :]
            total = w.sum(-1) + (0.5 ** L if r == "rollout" else 0.0)  # rows of the rollout sum to 1 with e_own
            vmass = vid.sum(-1)  # (B, T)
            norm = vid / torch.where(vmass > 0, vmass, torch.ones_like(vmass))[..., None]
            qs = q_sel & (vmass > 0)
            k = qs.sum(1)  # (B,)
            per_win = (norm * qs[..., None]).sum(1) / k.clamp(min=1)[:, None]  # (B, n_tok)
            pix = _patch_to_pixels(per_win, grid, patch, fmask)
            maps[r][list(idx)] = pix.cpu().numpy()
            sh = ((vmass / total) * qs).sum(1) / k.clamp(min=1)
            share[r][list(idx)] = np.where(k.cpu().numpy() > 0, sh.cpu().numpy(), np.nan)
            n_queries[list(idx)] = k.cpu().numpy()  # the same for both readouts (softmax weights are > 0)
        frames[list(idx)] = vin["frames"].float().cpu().numpy() * fmask[:, :, None, None].cpu().numpy()
        frame_mask[list(idx)] = fmask.cpu().numpy()
        frame_times[list(idx)] = vin["times"].double().cpu().numpy()
    result: Dict[str, object] = {f"maps_{r}": maps[r] for r in READOUTS}
    result.update({f"video_share_{r}": share[r] for r in READOUTS})
    result.update(n_queries=n_queries, frames=frames, frame_mask=frame_mask, frame_times=frame_times,
                  window_starts=starts, units=units, modality=video["name"], grid=grid, patch_size=patch,
                  n_stage_layers=n_stage_layers)
    return result


def pool_windows(maps: np.ndarray, n_queries: np.ndarray) -> np.ndarray:
    """Mean over windows weighted by their query counts (= the mean over all selected spike
    tokens): ``(n_windows, num_frames, H, W) -> (num_frames, H, W)``; sums to 1 like each map.
    ``n_queries``: ``(n_windows,)`` the windows' query counts (weights).

    Raises:
        ValueError: no window has a selected query.
    """
    nq = np.asarray(n_queries, dtype=np.float64)
    if nq.sum() <= 0:
        raise ValueError("units: the selected units have no spike token in the chosen windows; choose other units "
                         "or more windows")
    return np.tensordot(nq, maps, axes=(0, 0)) / nq.sum()


def uniform_map(frame_mask: np.ndarray, n_queries: np.ndarray, frame_shape) -> np.ndarray:
    """The pooled map of attention spread evenly over each query's real pixels: the reference of
    the figures' "x uniform" scale.

    Each window's uniform map is ``1 / (n_real_frames * H * W)`` on its real frames (0 on padding
    slots); they are pooled like :func:`pool_windows` pools the maps. Where windows differ in
    which frame slots are real, this is not flat: a slot that is real in 18 of 30 windows holds
    0.6 of what a slot real in all of them holds, so dividing a pooled map by one flat
    ``1 / (n_slots * H * W)`` drew an evenly attending model as ignoring that slot.

    Args:
        frame_mask: ``(n_windows, num_frames)`` bool real frames.
        n_queries: ``(n_windows,)`` the windows' query counts (weights).
        frame_shape: ``(H, W)`` pixels.

    Returns:
        ``(num_frames, H, W)`` float64, sums to 1.

    Raises:
        ValueError: no window has a selected query.
    """
    fm = np.asarray(frame_mask, dtype=bool)
    h, w = (int(v) for v in frame_shape)
    per = fm / np.maximum(fm.sum(1, keepdims=True), 1) / (h * w)  # (n_windows, num_frames) per pixel
    pooled = pool_windows(per, n_queries)
    return np.broadcast_to(pooled[:, None, None], (fm.shape[1], h, w)).copy()


def _patch_attention_and_luminance(map_: np.ndarray, frames: np.ndarray, frame_mask: np.ndarray, patch):
    """``(attention, grey level)``, two ``(n_real_patches,)`` float64 arrays: per patch with a real
    frame, the map summed over its pixels and the mean grey level over its pixels in its real frames."""
    pt, ph, pw = patch
    F, H, Wd = map_.shape
    a = np.asarray(map_, dtype=np.float64).reshape(F // pt, pt, H // ph, ph, Wd // pw, pw).sum((1, 3, 5))
    fm = np.asarray(frame_mask, dtype=bool)
    n_real = fm.reshape(F // pt, pt).sum(1)  # real frames per time patch
    lum = (np.asarray(frames, dtype=np.float64) * fm[:, None, None]).reshape(
        F // pt, pt, H // ph, ph, Wd // pw, pw).sum((1, 3, 5)) / (np.maximum(n_real, 1)[:, None, None] * ph * pw)
    real = n_real > 0
    return a[real].ravel(), lum[real].ravel()


def patch_luminance_correlation(map_: np.ndarray, frames: np.ndarray, frame_mask: np.ndarray, patch) -> float:
    """Pearson correlation, over the real patches of one window, between the attention on a patch
    (the map summed over the patch's pixels) and the patch's mean grey level: positive when the
    attention sits on the bright stripes of a grating, negative on the dark ones, near 0 when it
    ignores them. A patch's grey level is the mean over its pixels in its REAL frames (a padding
    frame of a ``pt > 1`` patch does not count).

    NaN (:func:`patch_luminance_correlation_reason` says why) over fewer than
    :data:`~hf_neuroformer.metrics.fidelity.MIN_CORR_POINTS` (3) real patches, where an r is
    +1 or -1 whatever the values, or when the attention or the grey level is the same on every
    patch but for float rounding (a spread within
    :data:`~hf_neuroformer.metrics.fidelity.CONSTANT_RTOL` of the largest magnitude: an even map
    whose patch sums differ in the last bits, as ``0.1 + 0.2`` and ``0.3`` do, gave an r of the
    rounding noise), as the fidelity metrics' correlations (:mod:`hf_neuroformer.metrics.fidelity`) are.

    Args:
        map_: ``(num_frames, H, W)`` float attention map of the window.
        frames: ``(num_frames, H, W)`` float grey levels of its frames.
        frame_mask: ``(num_frames,)`` bool, True for real frames.
        patch: ``(pt, ph, pw)`` patch size (frames, pixels, pixels), dividing the map's shape.

    Returns:
        the correlation, a float in [-1, 1], or NaN.
    """
    from ..metrics.fidelity import _pearson

    return _pearson(*_patch_attention_and_luminance(map_, frames, frame_mask, patch))


def patch_luminance_correlation_reason(map_: np.ndarray, frames: np.ndarray, frame_mask: np.ndarray,
                                       patch) -> Optional[str]:
    """Why :func:`patch_luminance_correlation` of the same arguments is NaN (fewer than 3 real
    patches; the attention, or the grey level, the same on every patch), in the words of the
    fidelity metrics' reasons; None when it is a number."""
    from ..metrics.fidelity import MIN_CORR_POINTS, _nearly_constant, _pearson

    a, lum = _patch_attention_and_luminance(map_, frames, frame_mask, patch)
    if np.isfinite(_pearson(a, lum)):
        return None
    if a.size < MIN_CORR_POINTS:
        return f"fewer than {MIN_CORR_POINTS} patches with a real frame ({a.size})"
    for what, v in (("attention", a), ("grey level", lum)):
        if _nearly_constant(v):
            return f"every patch has the same {what} ({float(v[0]):.6g})"
    return "the attention and grey levels vary too little across patches for a correlation"


# ------------------------------------------------------------------------------------- figure
def draw_overlay(ax, frame: np.ndarray, map_: np.ndarray, vmin: float, vmax: float):
    """Draw one map over one frame on ``ax``: the map in colour (``inferno``, ``vmin..vmax``),
    the frame on top as white lines where its grey level crosses its mean (the edges between
    bright and dark regions, e.g. a grating's stripes) with the bright side dotted. ``frame`` and
    ``map_`` are ``(H, W)`` float arrays (grey levels; attention). Returns the map's image (for a
    colour bar)."""
    import matplotlib

    im = ax.imshow(map_, cmap="inferno", vmin=vmin, vmax=vmax, interpolation="nearest")
    f = np.asarray(frame, dtype=np.float64)
    mid = float(f.mean())
    if f.max() > mid + 1e-6:
        with matplotlib.rc_context({"hatch.color": "white", "hatch.linewidth": 0.5}):
            ax.contourf(f, levels=[mid, f.max() + 1.0], colors="none", hatches=["...."])
            ax.contour(f, levels=[mid], colors="white", linewidths=0.6)
    else:
        ax.text(0.5, 0.92, "blank frame", ha="center", va="top", color="white", fontsize=6, transform=ax.transAxes)
    return im


def visual_attention_figure(maps: Dict[str, np.ndarray], frames: np.ndarray, frame_mask: np.ndarray,
                            frame_times=None, title: str = "", path=None, row_labels=None, column_notes=None,
                            uniform: Optional[np.ndarray] = None, field_of_view=None, overwrite: bool = False):
    """Overlay pixel maps on frames: one column per frame of the window, one row per ``maps``
    entry (readout), the map drawn as multiples of uniform attention over the real pixels, the
    frame as white edge lines with its bright side dotted (:func:`draw_overlay`).

    Args:
        maps: readout name -> ``(num_frames, H, W)`` map summing to 1 (module docstring).
        frames: ``(num_frames, H, W)`` the background frames (grey).
        frame_mask: ``(num_frames,)`` bool real frames (a padding frame's panel says so).
        frame_times: optional ``(num_frames,)`` onsets, s relative to the window start (without
            them, the first and last columns are titled oldest and latest: slots are in time order).
        title: the figure title (state the selection and the readouts there).
        path: write the PNG atomically there when given; a file already there is refused
            (``FileExistsError``) unless ``overwrite`` (see :func:`~hf_neuroformer.plotting.check_figure_path`).
        overwrite: replace a file already at ``path`` (default False).
        row_labels: optional labels per row (default: the readout names).
        column_notes: optional text per frame, added to the column titles.
        uniform: optional ``(num_frames, H, W)`` map of uniform attention that the maps are
            divided by; default ``1 / (n real frames * H * W)`` on the real frames (one window).
            Maps pooled over windows whose real frames differ need :func:`uniform_map`.
        field_of_view: optional ``(height, width)`` of a frame in degrees of visual angle (e.g.
            :attr:`~hf_neuroformer.recording.Stimulus.field_of_view`, see
            :func:`~hf_neuroformer.stimuli.stimulus_field_of_view`). The panels' axes are in pixels (ticks on the outer panels); with it the
            axis labels also give the degrees a frame covers, without it the title says the field of
            view is not recorded.

    Returns:
        the :class:`matplotlib.figure.Figure`.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..plotting import save_figure

    import textwrap

    names = list(maps)
    F, H, W = frames.shape
    if field_of_view is None:  # pixels only: said so, not left for a reader to guess the degrees
        title = (title + "\n" if title else "") + "axes in pixels; the frames' field of view in degrees is not recorded"
        xlab, ylab = "x (px)", "y (px)"
    else:
        fh, fw = (float(v) for v in field_of_view)
        xlab, ylab = f"x (px; {W} px = {fw:g} deg)", f"y (px; {H} px = {fh:g} deg)"
    lines = [w for part in title.split("\n") for w in textwrap.wrap(part, 40 * F + 20)] if title else []
    fig = Figure(figsize=(2.3 * F + 1.2, 2.3 * len(names) + 0.3 + 0.16 * len(lines)))
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(names), F, squeeze=False)
    top = 1 - (0.35 + 0.16 * len(lines)) / fig.get_figheight()
    # room for the outer panels' pixel numbers and axis labels
    fig.subplots_adjust(left=0.75 / fig.get_figwidth(), right=0.84, bottom=0.5 / fig.get_figheight(), top=top,
                        wspace=0.05, hspace=0.08)
    if uniform is None:
        n_real_px = max(1, int(frame_mask.sum()) * frames.shape[1] * frames.shape[2])
        rel = {k: np.asarray(m) * n_real_px for k, m in maps.items()}
    else:
        u = np.asarray(uniform, dtype=np.float64)
        rel = {k: np.divide(np.asarray(m, dtype=np.float64), u, out=np.zeros(u.shape), where=u > 0)
               for k, m in maps.items()}
    # one colour range for all panels: the smallest to the largest value on a real frame
    vals = np.concatenate([m[np.asarray(frame_mask, bool)].ravel() for m in rel.values()]) if frame_mask.any() else np.zeros(1)
    vmin, vmax = float(vals.min()), float(vals.max())
    vmax = vmax if vmax > vmin else vmin + 1.0
    im = None
    for r, name in enumerate(names):
        for f in range(F):
            ax = axes[r, f]
            # pixel ticks (first and last pixel) on every panel, numbered on the outer ones only
            ax.set_xticks([0, W - 1])
            ax.set_yticks([0, H - 1])
            ax.tick_params(labelsize=6, length=2, labelbottom=r == len(names) - 1, labelleft=f == 0)
            if r == len(names) - 1:
                ax.set_xlabel(xlab, fontsize=7)
            if f == 0:  # also over a padding panel: the rows of a window whose first frame is padding had no label
                ax.set_ylabel(f"{(row_labels or names)[r]}\n{ylab}", fontsize=8)
            if not frame_mask[f]:
                ax.set_xlim(-0.5, W - 0.5)  # the pixel axes of an image: row 0 at the top
                ax.set_ylim(H - 0.5, -0.5)
                ax.text(0.5, 0.5, "no frame\n(padding)", ha="center", va="center", transform=ax.transAxes, fontsize=8)
                continue
            im = draw_overlay(ax, frames[f], rel[name][f], vmin, vmax)
            if r == 0:
                if frame_times is not None:
                    t = f"frame {f} ({1000 * frame_times[f]:+.0f} ms)"
                else:  # pooled windows have no common onset: at least the slots' order (oldest first)
                    t = f"frame {f}" + (" (oldest)" if f == 0 and F > 1 else " (latest)" if f == F - 1 and F > 1 else "")
                t += f"\n{column_notes[f]}" if column_notes is not None else ""
                ax.set_title(t, fontsize=8)
    if im is not None:
        cb = fig.colorbar(im, cax=fig.add_axes([0.87, 0.08, 0.02, top - 0.12]))
        cb.set_label("attention (x uniform over the real pixels)", fontsize=8)
    if lines:
        fig.suptitle("\n".join(lines), fontsize=7, x=0.02, ha="left")
    if path is not None:
        save_figure(fig, path, overwrite=overwrite)
    return fig


# ------------------------------------------------------------------------------------- pipeline
def _sidecar_paths(png: Path) -> Dict[str, Path]:
    stem = png.with_suffix("")
    return {
        "raw": Path(f"{stem}_raw.npy"),
        "rollout": Path(f"{stem}_rollout.npy"),
        "frames": Path(f"{stem}_frames.npy"),
        "per_window_raw": Path(f"{stem}_per_window_raw.npy"),
        "per_window_rollout": Path(f"{stem}_per_window_rollout.npy"),
        "json": Path(f"{stem}.json"),
    }


def check_training_frames(recording: SpikeRecording, video: dict, plan, model_dir=None,
                          flag: str = "--data") -> Dict[str, object]:
    """Compare ``recording``'s frames with the model's record of the frames it was trained on.

    The spike check (:func:`hf_neuroformer.generation.check_recording_units`) cannot see frames:
    gratings rendered again with other assumed values (``render-gratings --contrast 0.2``) over
    the same spikes passed as "same spikes", and the maps described the model's response to
    frames it never saw. Two records are compared: the pixel mean / std of the training split's
    frames that ``train`` stored in the video modality (``normalization: zscore``), recomputed
    here the same way on ``recording`` (relative tolerance 1e-6), and the stimulus description
    of the model's ``metrics.json`` (``stimulus_description``, e.g. the assumed grating values)
    against ``recording.stimulus.description``. A ``UserWarning`` naming ``flag`` says what
    differs (a warning, as for spikes: probing a model with other frames is allowed); the
    returned dict is for the output file.

    Args:
        recording: the recording the maps are computed on.
        video: the model's video modality entry (``config.modalities[i]``, with its fitted
            ``mean`` / ``std`` for ``zscore``).
        plan: the model's :class:`~hf_neuroformer.windows.SplitPlan` (its training segments).
        model_dir: the model directory (its ``metrics.json``), or None.

    Returns:
        ``{"status": "same frames" | "other frames" | "not recorded", "differs": [str, ...],
        "compared": [str, ...], "stimulus_description": {"recording": str | None, "model": str | None}}``.
    """
    import copy
    import warnings

    from ..modalities import _fit_video, modality_track

    compared, differs = [], []
    if video.get("normalization") == "zscore" and video.get("mean") is not None and video.get("std") is not None:
        mod = copy.deepcopy(video)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "constant frames": train said so already
            _fit_video(modality_track(recording, mod, 0), plan.segments["train"], mod, 0)
        compared.append("training-split pixel mean / std")
        old = np.asarray([*video["mean"], *video["std"]], dtype=np.float64)
        new = np.asarray([*mod["mean"], *mod["std"]], dtype=np.float64)
        if not np.allclose(new, old, rtol=1e-6, atol=1e-9):
            differs.append(f"training-split pixel mean / std {new[0]:.6g} / {new[1]:.6g}, the model's "
                           f"{old[0]:.6g} / {old[1]:.6g}")
    trained_desc = None
    if model_dir is not None and (Path(model_dir) / "metrics.json").is_file():
        try:
            trained_desc = json.loads((Path(model_dir) / "metrics.json").read_text()).get("stimulus_description")
        except (ValueError, OSError):
            trained_desc = None
    desc = getattr(recording.stimulus, "description", None) if recording.stimulus is not None else None
    if trained_desc:
        compared.append("stimulus description")
        if desc != trained_desc:
            differs.append("the stimulus description (both in model_training_frames_check of the output JSON)")
    status = "other frames" if differs else ("same frames" if compared else "not recorded")
    if differs:
        warnings.warn(f"{flag}: the frames of {video['name']!r} are not the ones the model was trained on: "
                      + "; ".join(differs) + "; the attention maps describe the model's response to other frames "
                      "(pass the recording it was trained on)", stacklevel=2)
    return {"status": status, "differs": differs, "compared": compared,
            "stimulus_description": {"recording": desc, "model": trained_desc}}


def run_attention_map(
    model_dir,
    data_path,
    output,
    *,
    units: Optional[Sequence[int]] = None,
    window_index: Optional[int] = None,
    split: str = "test",
    max_windows: Optional[int] = None,
    modality: Optional[str] = None,
    batch_size: int = 64,
    device: str = "cpu",
    overwrite: bool = False,
    progress: bool = True,
    learning_rate_option: str = "learning_rate",
) -> Dict[str, object]:
    """``neuroformer attention-map``: the visual attention map of a trained video-conditioned
    model on the non-overlapping windows of one split, written as a figure and arrays. The windows
    tile the split as training scores it (:func:`~hf_neuroformer.windows.tiling_windows`): where trials
    overlap in time (or a trial is listed twice), one window per stretch of time, with a warning.

    Writes ``output`` (PNG: rows raw / rollout, one column per frame of the window) and beside it
    ``<stem>_raw.npy`` and ``<stem>_rollout.npy`` ``(num_frames, H, W)`` float64 (the maps shown),
    ``<stem>_frames.npy`` (the background frames: the window's own with ``window_index``, else
    the mean over the windows), ``<stem>_per_window_{raw,rollout}.npy`` ``(n_windows, num_frames,
    H, W)`` float32 and ``<stem>.json`` (selection, readout definitions, normalisation, shapes,
    counts, ``field_of_view_deg``: ``[height, width]`` degrees of the frames, from
    ``stimulus.field_of_view`` or, in an older file, its description; ``None`` where neither states it). Each file is written to a temporary name and renamed; the PNG comes last.

    Args:
        model_dir: directory written by ``neuroformer train`` (its ``splits.json`` says which
            windows belong to ``split``); a fine-tuned decoder is refused, with or without
            next-spike heads (see :func:`~hf_neuroformer.generation.load_pretrained`'s ``reads``).
        data_path: the recording with frames the model was trained on (e.g. written by
            ``neuroformer render-gratings``).
        units: unit indices into the recording; ``None``: the population.
        window_index: one window (index into the split's windows, in time order); ``None``: the
            mean over the windows.
        split: ``"train"``, ``"validation"``, ``"test"`` or ``"all"``.
        max_windows: the first this many windows of the split (``None``: all).
        modality, batch_size, device: see :func:`visual_attention_maps`.
        overwrite: replace existing output files.
        progress: a bar over the windows of the attention pass (standard error; ``TQDM_DISABLE=1``
            turns it off too).
        learning_rate_option: how the refusal of a diverged model names the rate to lower (the
            command line passes ``neuroformer train``'s ``training.learning_rate`` field).

    Returns:
        the report written to the JSON file; its ``model_training_frames_check``
        (:func:`check_training_frames`) says whether the frames are the ones the model was
        trained on (a ``UserWarning`` when they are not); ``mean_patch_luminance_correlation_raw``
        is the mean of :func:`patch_luminance_correlation` over the windows with spike tokens whose
        r is defined (``n_windows_patch_luminance_correlation_undefined`` counts the others), None
        with ``mean_patch_luminance_correlation_raw_reason`` saying why when none is.

    Raises:
        FileExistsError: an output file exists, without ``overwrite``.
        ValueError: an output path (the figure, or a file beside it) is a directory, or ``output`` ends
            in a slash (a folder name).
        FileNotFoundError: ``data_path`` does not exist (named as ``--data``).
        ValueError: ``data_path`` is no recording the readers take (a ``neuroformer prepare``
            folder, an unsupported format, a damaged file), named as ``--data``.
        ValueError: no video modality; a recording without frames; bad units, split, window index
            (not an integer >= 0: before any work; past the split's windows: after reading them);
            a split without windows (naming ``--split``); chosen windows none of which has a frame
            on screen (naming ``--data``; a window without one, of a video shorter than the
            recording, has no query and is counted in ``n_windows_without_frames``); chosen windows
            with a frame on screen that hold no spike token of ``units`` (naming ``units``) or, for
            the population, of any unit (naming ``window_index``, else ``split``); a model whose
            weights are not finite (a diverged run).
    """
    from ..generation import check_recording_units, load_pretrained
    from ..modalities import check_recording_modalities
    from ..io import check_input_exists, load_recording, read_error
    from ..stimuli import stimulus_field_of_view
    from ..windows import SPLITS, check_split_in_recording, tiling_windows

    from ..io.output_folder import check_file_name

    check_file_name(output, "--output")  # as a Path, "x.png/" lost its slash and x.png was written
    png = Path(output)
    if png.suffix.lower() != ".png":
        raise ValueError(f"--output: expected a .png path, got {str(png)!r}")
    side = _sidecar_paths(png)
    targets = [png, *side.values()]
    # a folder there passed (it exists; --overwrite allows that) and failed at the write, after all the work
    folders = [str(p) for p in targets if p.is_dir()]
    if folders:
        raise ValueError(f"--output: {folders[0]!r} is a directory, where this command writes "
                         f"{'the figure' if folders[0] == str(png) else 'a file beside the figure'}; expected "
                         "another file name")
    existing = [str(p) for p in targets if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"--output: {existing} exist; pass --overwrite to replace them")
    from ..io.output_folder import check_writable_parent

    check_writable_parent(png, "--output")
    if split not in (*SPLITS, "all"):
        raise ValueError(f"split: expected one of {[*SPLITS, 'all']}, got {split!r}")
    check_pass_settings(batch_size=batch_size, max_windows=max_windows, device=device)
    units = check_unit_indices(units)  # before any work: 3.7 is no unit index
    # 2.5 failed slicing the windows after the model and data were read; True ran as window 1
    if window_index is not None and (not is_whole_number(window_index) or window_index < 0):
        raise ValueError(f"window_index: expected an integer >= 0 (an index into the split's windows) or None, got "
                         f"{window_index!r}")
    if window_index is not None:  # np.int64 (from np.argmax) failed json.dumps of the report, after the pass
        window_index = int(window_index)
    check_input_exists(data_path, "--data")  # the reader's "recording not found: x" named no flag
    model, tokenizer, plan = load_pretrained(
        model_dir, reads="the attention map is the attention of the pretrained model ("
                         "learned predicting the next spike)")
    video = video_modality(model.config, modality)  # fail before reading the data
    check_finite_weights(model, model_dir, learning_rate_option=learning_rate_option)  # a diverged model's maps were NaN
    model.to(device)
    try:
        rec = load_recording(data_path)
    except (ValueError, KeyError, OSError) as err:  # "unsupported recording folder x: ..." named no flag
        raise read_error(err, "--data", data_path) from None
    # not the API advice; this command has no --epoch to advise
    spikes_check = check_recording_units(tokenizer, rec, model_dir=model_dir, flag="--data", epoch=False)
    if rec.stimulus is None or rec.stimulus.frames is None:  # the config's message named neither --data nor a fix
        raise ValueError(f"--data: {str(data_path)!r} holds no stimulus frames, which the model's video modality "
                         f"{video['name']!r} reads (source {video['source']!r}); pass the recording with frames the "
                         "model was trained on (e.g. the file 'neuroformer render-gratings' wrote)")
    # frames of another size (render-gratings --height 24 for a 16 x 16 model), a missing behaviour input
    check_recording_modalities(model.config, rec, flag="--data", epoch=False)
    frames_check = check_training_frames(rec, video, plan, model_dir=model_dir, flag="--data")
    starts, clips = [], []
    splits = list(SPLITS) if split == "all" else [split]
    for s in splits:
        check_split_in_recording(plan, s, rec, flag="--data", epoch=False)  # no --epoch here
        # one window per stretch of overlapping (or duplicate) trials, as train scores the split (warned)
        a, c = tiling_windows(plan, s, model.config, use="read for the attention maps")
        starts.append(a)
        clips.append(c)
    starts, clips = np.concatenate(starts), np.concatenate(clips)
    # "window_starts: expected at least one window start (s), got none" in the pass, naming no flag
    check_split_has_windows(starts.size, split, sum(len(plan.segments[s]) for s in splits),
                            model.config.split_fractions)
    order = np.argsort(starts, kind="stable")
    starts, clips = starts[order], clips[order]
    n_available = int(starts.size)
    if max_windows is not None:
        starts, clips = starts[:max_windows], clips[:max_windows]
    if window_index is not None:
        if not 0 <= window_index < starts.size:
            raise ValueError(f"window_index: expected 0..{starts.size - 1} (the {split} windows"
                             f"{' after --max-windows' if max_windows else ''}), got {window_index}")
        starts, clips = starts[window_index:window_index + 1], clips[window_index:window_index + 1]
    res = visual_attention_maps(model, tokenizer, rec, starts,
                                past_clip_starts=clips if plan.mode == "trials" else None, units=units,
                                modality=video["name"], batch_size=batch_size, device=device, progress=progress)
    fm = res["frame_mask"]
    # a window without a frame on screen (a video shorter than the recording) has no query on the video:
    # it was left out of the mean without a count, and windows that all lacked frames were refused as
    # "the selected units have no spike token in the chosen windows", though they held spikes
    n_no_frame = int((~fm.any(1)).sum())
    if n_no_frame == starts.size:
        w0, w1 = video["window"]
        ft = rec.stimulus.frame_times
        which = "the chosen window holds no" if starts.size == 1 else f"none of the {starts.size} chosen windows holds a"
        raise ValueError(f"--data: {which} frame of {video['name']!r} on screen in its modality window [{w0:g}, "
                         f"{w1:g}) s from its start (the frames' onsets run from {ft[0]:g} to {ft[-1]:g} s), so no "
                         "spike token attended to the video; choose windows the video covers (--window-index, "
                         "--split, --max-windows), or pass the recording with the frames the model was trained on")
    if res["n_queries"].sum() == 0:
        # pool_windows' "units: the selected units have no spike token ...; choose other units or more windows"
        # blamed --units when none was given (the population) and advised more windows for one --window-index
        n_framed = starts.size - n_no_frame
        where = (f"window {window_index} of the {split} split" if window_index is not None else
                 f"the {count_noun(n_framed, f'{split} window')} with a frame on screen")
        other = "another --window-index" if window_index is not None else "more windows (--max-windows, --split)"
        if units is not None:
            raise ValueError(f"units: {list(units)} have no spike token in {where}; choose other --units or {other}")
        raise ValueError(f"{'window_index' if window_index is not None else 'split'}: no unit has a spike token in "
                         f"{where}, so no query attends to the video; choose {other}")
    pooled = {r: pool_windows(res[f"maps_{r}"], res["n_queries"]) for r in READOUTS}
    if window_index is not None:
        background, bg_mask, bg_times = res["frames"][0], fm[0], res["frame_times"][0]
        bg_desc = "the window's own frames"
        notes = uniform = None
    else:
        # mean over windows of each frame slot, over the windows where that slot holds a real frame
        cnt = fm.sum(0)
        background = (res["frames"].sum(0) / np.maximum(cnt, 1)[:, None, None]).astype(np.float32)
        bg_mask, bg_times = cnt > 0, None
        bg_desc = "mean of the windows' frames per frame slot"
        # a slot that is padding in some windows gets nothing from them: say how often it is real
        notes = [f"a real frame in {int(c)}/{starts.size} windows" for c in cnt]
        # the figure's "x uniform": the pooled uniform map of these windows (not flat where slots are padding)
        uniform = uniform_map(fm, res["n_queries"], background.shape[1:])
    sel = "population (every unit)" if units is None else f"units {list(units)}"
    win = (f"window {window_index} of the {split} split (start {starts[0]:.3f} s)" if window_index is not None
           else f"mean over {starts.size} {split} windows ({int(res['n_queries'].sum())} spike tokens)")
    title = (f"Visual attention of {sel}, {win}; query = position whose input token is the unit's spike\n"
             f"raw = last stage layer, mean over heads; rollout = prod over "
             f"{count_noun(res['n_stage_layers'], 'stage layer')} of "
             f"(0.5 own + 0.5 A)" + (" = raw (one layer)" if res["n_stage_layers"] == 1 else "")
             + f"; map sums to 1 over all pixels of the window; background: {bg_desc}")
    share = {r: float(np.nansum(res[f"video_share_{r}"] * res["n_queries"]) / max(1, res["n_queries"].sum()))
             for r in READOUTS}
    with_queries = [i for i in range(starts.size) if res["n_queries"][i] > 0]
    corr = [patch_luminance_correlation(res["maps_raw"][i], res["frames"][i], fm[i], res["patch_size"])
            for i in with_queries]
    # the mean leaves out the windows whose r is undefined: counted, and when none is defined, why
    n_undefined = int((~np.isfinite(corr)).sum()) if corr else 0
    corr_reason = None
    if not np.isfinite(corr).any():
        corr_reason = ("no window has a spike token of the selection" if not with_queries else
                       f"undefined in every one of the {len(with_queries)} windows with spike tokens (window "
                       f"{with_queries[0]}: " + patch_luminance_correlation_reason(
                           res["maps_raw"][with_queries[0]], res["frames"][with_queries[0]], fm[with_queries[0]],
                           res["patch_size"]) + ")")
    # degrees of visual angle: the stimulus' field_of_view (render-gratings sets it), else what an older file's
    # frames description states
    fov = stimulus_field_of_view(rec.stimulus)
    report = {
        "model": str(Path(model_dir).resolve()),
        "data": str(Path(data_path).resolve()),
        "model_training_spikes_check": spikes_check,
        "model_training_frames_check": frames_check,
        "modality": res["modality"],
        "selection": {"units": None if units is None else list(units), "population": units is None,
                      "query": "position whose input token is a selected unit's spike (BOS/EOS/padding never)"},
        "split": split,
        "window_index": window_index,
        "window_starts_s": starts.tolist(),
        "n_windows": int(starts.size),
        "n_windows_available": n_available,
        "n_windows_with_queries": int((res["n_queries"] > 0).sum()),
        "n_windows_without_frames": n_no_frame,
        "n_queries": int(res["n_queries"].sum()),
        "readouts": READOUT_DEFINITIONS,
        "n_stage_layers": res["n_stage_layers"],
        "normalisation": NORMALISATION,
        "mean_video_share": share,
        "mean_patch_luminance_correlation_raw": float(np.nanmean(corr)) if np.isfinite(corr).any() else None,
        "mean_patch_luminance_correlation_raw_reason": corr_reason,
        "n_windows_patch_luminance_correlation_undefined": n_undefined,
        "background": bg_desc,
        "grid": list(res["grid"]),
        "patch_size": list(res["patch_size"]),
        "field_of_view_deg": None if fov is None else list(fov),
        "shapes": {"raw": list(pooled["raw"].shape), "rollout": list(pooled["rollout"].shape),
                   "frames": list(background.shape), "per_window": list(res["maps_raw"].shape)},
        "files": {k: p.name for k, p in side.items()} | {"figure": png.name},
    }
    png.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"raw": pooled["raw"], "rollout": pooled["rollout"], "frames": background,
              "per_window_raw": res["maps_raw"].astype(np.float32),
              "per_window_rollout": res["maps_rollout"].astype(np.float32)}
    tmp = []
    try:
        for k, arr in arrays.items():
            t = side[k].with_name(f".{side[k].name}.{os.getpid()}.tmp")
            tmp.append(t)
            with open(t, "wb") as fh:
                np.save(fh, arr)
            os.replace(t, side[k])
        t = side["json"].with_name(f".{side['json'].name}.{os.getpid()}.tmp")
        tmp.append(t)
        t.write_text(json.dumps(json_safe(report), indent=1))  # numpy scalars as plain numbers
        os.replace(t, side["json"])
        visual_attention_figure(pooled, background, bg_mask, bg_times, title=title, path=png, column_notes=notes,
                                uniform=uniform, field_of_view=fov, overwrite=True)  # run_attention_map decides whether png may be replaced
    finally:
        for t in tmp:
            if t.exists():
                t.unlink()
    return report


__all__ = [
    "READOUTS",
    "READOUT_DEFINITIONS",
    "NORMALISATION",
    "video_modality",
    "visual_attention_maps",
    "pool_windows",
    "uniform_map",
    "patch_luminance_correlation",
    "patch_luminance_correlation_reason",
    "draw_overlay",
    "visual_attention_figure",
    "run_attention_map",
    "check_training_frames",
]
