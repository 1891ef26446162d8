"""Contrastive alignment of spikes and modalities: held-out retrieval and window latents.

The loss itself lives with the network (:class:`~hf_neuroformer.modeling_neuroformer.NeuroformerContrastiveHead`,
:func:`~hf_neuroformer.modeling_neuroformer.info_nce`; Neuroformer paper, arXiv 2311.00136,
Sec. 3.2, CLIP-style symmetric InfoNCE). Here: scoring it on held-out windows
(:func:`evaluate_retrieval`) and collecting the pooled neural embedding of every window of a
split (:func:`window_latents`, behind ``neuroformer embed``).
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import torch

from .binning import on_time_grid, window_ends
from .configuration_neuroformer import is_finite_number, is_whole_number
from .decoding import DecodingTargetError, parse_target_label
from .metrics.decoding import unit_is_degrees, warn_if_not_radians
from .modeling_neuroformer import retrieval_top1
from .recording import WINDOW_GRID, as_real_numbers
from .windows import batch_to_device, keeps_training_mode, trial_at

__all__ = ["evaluate_retrieval", "latent_width", "window_latents", "window_values"]


def _batches(dataset, collator, order, batch_size):
    for i in range(0, len(order), batch_size):
        idx = [int(j) for j in order[i: i + batch_size]]
        rows = dataset.select(idx)
        cols = rows[:]
        yield collator([dict(zip(cols, vals)) for vals in zip(*cols.values())])


def _same_inputs(inputs: dict, rows: torch.Tensor) -> torch.Tensor:
    """``(k, k)`` bool: windows ``rows`` of one modality's collated ``inputs`` whose tensors (class
    ids or values or frames, mask, and times on the 1 ns window grid: offsets of -0.02 s computed
    two ways differ by 1e-16 s) are all equal, so no embedding of the modality can tell them apart
    (the diagonal is True, NaN values too)."""
    def key(name, t):
        t = t[rows].reshape(int(rows.sum()), -1).double()
        return torch.round(t / WINDOW_GRID) if name == "times" else t

    flat = torch.cat([key(name, t) for name, t in sorted(inputs.items()) if torch.is_tensor(t)], 1)
    group = torch.unique(flat, dim=0, return_inverse=True)[1]
    return (group[:, None] == group[None, :]) | torch.eye(len(group), dtype=torch.bool, device=group.device)


def _neural_inputs(b):
    return {k: b[k] for k in ("input_ids", "dt_ids", "attention_mask", "past_input_ids", "past_dt_ids",
                              "past_attention_mask")}


@keeps_training_mode
@torch.no_grad()
def evaluate_retrieval(model, dataset, collator, batch_size: int = 32, seed: int = 0,
                       device=None) -> Dict[str, Dict[str, float]]:
    """Top-1 retrieval between the projected neural and modality embeddings of held-out windows.

    The windows of ``dataset`` (a ``datasets.Dataset`` of one split, e.g. test) are put in a
    seeded random order and cut into groups of ``batch_size``; inside each group every window's
    neural embedding retrieves the most similar modality embedding (cosine) and the reverse. A
    hit is the window's own pair, or a window of the group whose modality inputs are identical
    to its own (a categorical modality: the same class at the same times), which no model can
    tell apart from it. Windows without a token of the modality are left out (counted), and so
    is a window whose group holds no other window with a token (nothing to retrieve among;
    counted apart).

    Args:
        model: a :class:`~hf_neuroformer.NeuroformerForPreTraining` with contrastive projections
            (``contrastive_loss_weight > 0``).
        batch_size: candidates per query (chance is about ``1 / batch_size`` when the modality
            inputs of the windows all differ); the last group may be smaller, and chance is
            computed from the actual groups.

    Returns:
        ``{modality: {"neural_to_modality_top1", "modality_to_neural_top1", "chance",
        "n_windows", "n_windows_without_tokens", "n_windows_alone_in_group", "group_size"}}``;
        ``group_size`` is the size of the first (largest) group, ``min(batch_size, len(dataset))``;
        ``chance`` is the mean over the queries of the fraction of their group that counts as a
        hit (``1 / group`` when all modality inputs differ, as for a continuous behaviour). Only
        the own pair counted before: windows of one grating orientation at the same offset in
        their trials share one modality embedding and ties went to the lowest index, so a
        perfect model scored about the number of distinct inputs over the group size (9 / 32 in
        a group of the Allen test windows) against a chance of 1 / 32.

    Raises:
        ValueError: a model without contrastive projections, or ``batch_size`` not an integer >= 2.
    """
    head = getattr(model, "contrastive", None)
    if head is None:
        raise ValueError("model: no contrastive projections (contrastive_loss_weight is 0); nothing to retrieve with")
    # 2.5 failed inside range() ("'float' object cannot be interpreted as an integer"), naming no argument
    if not is_whole_number(batch_size) or batch_size < 2:
        raise ValueError(f"batch_size: expected an integer >= 2 candidates per group, got {batch_size!r}")
    batch_size = int(batch_size)
    device = device or next(model.parameters()).device
    model.eval()
    order = np.random.default_rng(seed).permutation(len(dataset))
    # hits n->m, hits m->n, sum of 1/group, n, n without tokens, n alone in their group
    acc = {n: [0.0, 0.0, 0.0, 0, 0, 0] for n in head.names}
    for b in _batches(dataset, collator, order, batch_size):
        b = batch_to_device(b, device)
        h = model.neuroformer.get_neural_embeddings(**_neural_inputs(b))
        pooled = model.neuroformer.get_modality_embeddings(b["modality_inputs"], head.names)
        for name in head.names:
            emb, valid = pooled[name]
            k = int(valid.sum())
            acc[name][4] += int((~valid).sum())
            if k < 2:  # one window with tokens: it has tokens, but no other candidate to retrieve among
                acc[name][5] += k
                continue
            a = head.neural_projections[name](h[valid])
            m = head.modality_projections[name](emb[valid])
            same = _same_inputs(b["modality_inputs"][name], valid)
            nm, mn = retrieval_top1(a, m, same)
            acc[name][0] += nm * k
            acc[name][1] += mn * k
            acc[name][2] += float(same.sum()) / k  # query i at chance (its candidates the same as its own) / k
            acc[name][3] += k
    out = {}
    for name, (nm, mn, ch, n, miss, alone) in acc.items():
        out[name] = {
            "neural_to_modality_top1": nm / n if n else float("nan"),
            "modality_to_neural_top1": mn / n if n else float("nan"),
            "chance": ch / n if n else float("nan"),
            "n_windows": n,
            "n_windows_without_tokens": miss,
            "n_windows_alone_in_group": alone,
            # batch_size itself said groups of 32 over a test split of 20 windows (training's default; ablate
            # printed "groups of 32 test windows"), and 1e9 for batch_size=10**9
            "group_size": min(batch_size, len(dataset)),
        }
    return out


@keeps_training_mode
@torch.no_grad()
def window_latents(model, dataset, collator, batch_size: int = 128, projected: Optional[str] = None,
                   device=None, progress: bool = False, desc: str = "embedding windows") -> np.ndarray:
    """Pooled neural embedding of every window of ``dataset``, in order.

    Args:
        model: a :class:`~hf_neuroformer.NeuroformerForPreTraining`.
        projected: a contrastive modality name to return the projected embedding (see
            :meth:`~hf_neuroformer.NeuroformerForPreTraining.get_neural_embeddings`), else None.
        progress: show a bar over the windows (``desc`` names it; off with ``TQDM_DISABLE``).

    Returns:
        ``(n_windows, dim)`` float32 array: ``dim`` is ``hidden_size``, or the projection's width
        (``contrastive_projection_size``) with ``projected``, also for an empty ``dataset``.

    Raises:
        ValueError: ``projected`` names no contrastive projection of the model, or ``batch_size`` is
            not an integer >= 1 (before any pass).
    """
    from .analysis._batches import check_pass_settings
    from .progress import progress_bar

    # 0 failed inside range() ("arg 3 must not be zero") and 2.5 with a TypeError, naming no argument
    check_pass_settings(batch_size=batch_size)
    batch_size = int(batch_size)

    dim = latent_width(model, projected)  # an empty dataset gave (0, hidden_size) and took any name
    device = device or next(model.parameters()).device
    model.eval()
    parts = []
    with progress_bar(total=len(dataset), desc=desc, unit="win", disable=not progress) as bar:
        for b in _batches(dataset, collator, np.arange(len(dataset)), batch_size):
            b = batch_to_device(b, device)
            parts.append(model.get_neural_embeddings(**_neural_inputs(b), projected=projected).float().cpu().numpy())
            bar.update(len(parts[-1]))
    if not parts:
        return np.zeros((0, dim), dtype=np.float32)
    return np.concatenate(parts).astype(np.float32)


def latent_width(model, projected: Optional[str] = None, flag: str = "projected") -> int:
    """Width of :func:`window_latents`' rows: ``hidden_size``, or the width of the contrastive
    projection ``projected``.

    Raises:
        ValueError: opening with ``flag``: ``projected`` names no contrastive projection of the model.
    """
    if projected is None:
        return model.config.hidden_size
    head = getattr(model, "contrastive", None)
    if head is None or projected not in head.names:
        raise ValueError(f"{flag}: {projected!r} has no contrastive projection in this model (has "
                         f"{[] if head is None else head.names}; contrastive_loss_weight > 0 builds them)")
    return head.neural_projections[projected].out_features


def window_values(recording, variable: str, starts, window: float):
    """Value of a behaviour variable or trial column for each window (for colouring latents).

    Args:
        recording: a :class:`~hf_neuroformer.SpikeRecording`.
        variable: a behaviour key (its samples in ``[start, start + window)`` are averaged; a
            series in radians (``unit`` "rad" / "radian(s)") with the circular mean, in ``[0, 2 pi)``,
            and one in degrees (``unit`` "deg" / "degree(s)" / "°") with the circular mean in
            ``[0, 360)``: a linear mean put a window of 359 and 1 deg at 180 deg; a radian series
            with values beyond two turns (4 pi), degrees by mistake?, is warned of),
            ``"NAME[k]"`` for column ``k`` of a 2-D series (as ``neuroformer finetune`` labels it; a
            series named so itself is that series), or ``"trial:<column>"`` (the column of the trial that
            contains the window's start).
        starts: ``(n,)`` window starts, s.
        window: window length, s.

    Returns:
        ``(values (n,) float64, NaN where undefined, circular: bool, unit: str)``; ``circular`` is
        True for radians and degrees (the period is ``2 pi`` or 360 by ``unit``, see
        :func:`~hf_neuroformer.metrics.decoding.unit_is_degrees`).

    Raises:
        ValueError: naming the variable and listing what the recording has; a 2-D series without a
            column (``NAME[k]``), or a column it does not have; a trial column that is not numeric
            (text labels have no colour scale); ``starts`` that are not a 1-D array of finite seconds,
            or a ``window`` that is not a positive finite number of seconds (0 or a negative length
            gave every window NaN, "undefined", without a word).
    """
    if not (is_finite_number(window) and window > 0):
        raise ValueError(f"window: expected a positive finite number of seconds, got {window!r}")
    starts = as_real_numbers(starts, "starts", "window starts in seconds", "pass the window starts as float64 seconds",
                             error=ValueError).astype(np.float64)
    if starts.ndim != 1 or not np.isfinite(starts).all():
        raise ValueError(f"starts: expected a 1-D array of finite window starts (s), got shape {starts.shape}"
                         + ("" if starts.ndim != 1 else f" with {int((~np.isfinite(starts)).sum())} non-finite"))
    if not recording.behaviour and recording.trials is None:  # e.g. the built-in simulated recording
        raise ValueError(f"--color-by: {variable!r}: this recording has no behaviour series and no trials, so no "
                         "variable can colour its windows; embed a model trained on a recording that has them "
                         "(--data, e.g. A2929 with --color-by ry, or Allen gratings with --color-by "
                         "trial:orientation_deg)")
    if variable.startswith("trial:"):
        col = variable.split(":", 1)[1]
        info = getattr(recording, "trial_info", None) or {}
        if recording.trials is None or col not in info:
            raise ValueError(f"--color-by: {variable!r} is not a trial column of the recording "
                             f"(trial columns: {sorted(info)})")
        # a text column (clip names, 'hard' / 'soft') failed with numpy's "could not convert string to float"
        vals = as_real_numbers(info[col], f"--color-by: trial column {col!r}", "numbers (a colour needs numbers)",
                               f"pass a numeric trial column (trial columns: {sorted(info)}) or a behaviour variable",
                               error=ValueError)
        k = trial_at(recording.trials, starts)
        return np.where(k >= 0, vals[np.clip(k, 0, None)], np.nan), False, ""
    try:  # NAME[k]: column k of a 2-D series, as neuroformer finetune labels it
        name, column = parse_target_label(variable, recording)
    except DecodingTargetError:
        name, column = None, None
    if name not in recording.behaviour:
        raise ValueError(f"--color-by: {variable!r} is not a behaviour variable of the recording (behaviour: "
                         f"{sorted(recording.behaviour)}; trial columns as trial:<column>; a column of a 2-D "
                         "series as NAME[k])")
    series = recording.behaviour[name]
    t = series.timestamps
    n_cols = series.values.shape[1] if series.values.ndim == 2 else 1
    if column is None and n_cols > 1:
        raise ValueError(f"--color-by: {variable!r} has {n_cols} columns; pick one as '{variable}[k]', k in "
                         f"[0, {n_cols}) (e.g. --color-by '{variable}[1]')")
    if column is not None and column >= n_cols:
        raise ValueError(f"--color-by: {variable!r}: column {column} " + (
            f"outside [0, {n_cols})" if n_cols > 1 else f"given for a 1-D series ({name!r} has one column, 0)"))
    v = series.values if series.values.ndim == 1 else series.values[:, column or 0]
    degrees = unit_is_degrees(series.unit)
    circular = degrees or series.unit.strip().lower() in ("rad", "radian", "radians")
    to_rad = np.pi / 180.0 if degrees else 1.0
    if circular and not degrees:
        warn_if_not_radians(v, f"--color-by: behaviour[{name!r}]", series.unit)
    # the tokenizer's window edges (1 ns grid): a sample on the edge of two tiled windows is in the later one only
    lo = np.searchsorted(t, on_time_grid(starts), side="left")
    hi = np.searchsorted(t, window_ends(starts, window), side="left")
    out = np.full(len(starts), np.nan)
    for i, (a, b) in enumerate(zip(lo, hi)):
        seg = v[a:b]
        seg = seg[np.isfinite(seg)]
        if len(seg):
            if circular:
                ang = np.arctan2(np.sin(seg * to_rad).mean(), np.cos(seg * to_rad).mean())
                out[i] = np.mod(ang / to_rad, 360.0 if degrees else 2 * np.pi)
            else:
                out[i] = seg.mean()
    return out, circular, series.unit
