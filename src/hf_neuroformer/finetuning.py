"""Fine-tune a Neuroformer to decode behaviour with the Hugging Face ``Trainer``.

:func:`finetune` loads a pretraining checkpoint (``neuroformer train`` output) as a
:class:`~hf_neuroformer.modeling_neuroformer.NeuroformerForBehaviorDecoding` (backbone loaded,
decoding heads new), or builds the same architecture with random weights (``from_scratch``,
or no checkpoint at all), and trains it on the windows of
:func:`~hf_neuroformer.decoding.build_decoding_datasets`:

* the checkpoint is selected on the validation split (``load_best_model_at_end``) by the metric
  the benchmark reports (``select_on="auto"``: with one target its :data:`SELECTION_METRICS`
  entry, i.e. balanced accuracy for classification, R² for regression, mean angular error for
  circular targets; with several targets the validation loss); the test split is scored once,
  at the end (GUIDE trap 7);
* classification targets use a class-weighted cross-entropy by default
  (``DecodingTarget.class_weight="balanced"``: scikit-learn's weights from the training windows
  used, like the classification baselines), stored in ``config.decoding_targets``;
* few-shot: only the first contiguous block of ``fraction`` of the training windows is used
  (:func:`~hf_neuroformer.decoding.fraction_of_train`); regression targets are standardised
  with the statistics of those windows;
* several targets: a window without one target's value (NaN) is kept for the others and left
  out of that target's loss, statistics and metrics only (``<target>/n`` counts the windows it is
  scored on); :func:`finetune` warns with each target's count (``n_masked_nan`` in
  ``decoding_report.json``);
* gradient accumulation: the model takes ``num_items_in_batch`` (``accepts_loss_kwargs``), so
  ``Trainer`` does not divide the loss by the accumulation steps and the accumulated update
  equals that of one large batch.

Split plan: the checkpoint's ``splits.json`` when it has one, clipped to the recording (a trial
plan by the trials' times, so an epoch of the recording keeps its trials' splits; so
windows that pretraining held out as validation / test stay held out); else, or when the clipped
plan leaves a split without windows, :func:`~hf_neuroformer.windows.plan_splits` of the
recording (which split was used is written to ``metrics.json``). Recorded time before the clipped
plan's first or after its last segment is in no split (neither fitted nor scored): a warning gives
its length.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import json
import math
import numbers
import shutil
import warnings
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch
from transformers import Trainer, TrainerCallback
from transformers.trainer_utils import EvalLoopOutput

from .argument_checks import FINETUNE_CONFIG_KEYS, check_anchor_decay, check_ema_decay, check_finetune_settings, check_model_kind, \
    check_spike_dropout, check_training_seed, is_main_rank, \
    config_settings, override_keys as _override_keys
from .binning import BIN_EDGE_SECONDS
from .configuration_neuroformer import NeuroformerConfig, checked_bool, is_finite_number, is_real_number, is_whole_number
from .decoding import (
    DecodingCollator,
    DecodingTarget,
    DecodingTargetError,
    build_decoding_datasets,
    check_targets_sampled,
    expand_columns,
    fraction_of_train,
    prediction_table,
    target_dicts,
    target_label,
    training_values,
)
from .generation import (check_model_dir, check_recording_units, check_weight_shapes, quiet_loading,
                         refuse_missing_weights, units_absent, weights_not_loaded)
from .jsonio import json_safe
from .metrics.bootstrap import resolve_block_s
from .metrics.decoding import decoding_metrics
from .modalities import is_event_modality, truncated_modality_tokens, truncated_tokens_text, windows_without_values
from .modeling_neuroformer import NeuroformerForBehaviorDecoding
from .tokenization_neuroformer import NeuroformerTokenizer, check_tokenizer_matches_config
from .plotting import plot_decoding
from .progress import transformers_progress_bars
from .recording import check_is_recording, count_noun, first_few, inside_one_interval
from .run_record import checked_model_dir_noting_unfinished_run, write_unfinished_run
from .training import (check_checkpoint_folder, check_output_dir, draw_figure, end_with_launcher,
                       output_dir_lock, remove_checkpoint_folder, save_atomically)
from .windows import (SPLITS, NeuroformerCollator, SplitPlan, collated_batches, column_values, keeps_training_mode, plan_splits, recorded_stretches,
                      resolve_past_clip_starts, split_spikes_digest, tiling_windows, WINDOW_GRID, window_reach, window_starts_array,
                      window_starts_for_split)

CHECKPOINT_DIR = "checkpoints"
#: Files of an earlier 'neuroformer train' run that :func:`finetune` removes from an overwritten
#: output directory (its figures are removed by :func:`~hf_neuroformer.training.save_atomically`),
#: so none of another run stays beside the decoder.
STALE_RUN_FILES = ("training_config.json",)
#: :data:`FINETUNE_CONFIG_KEYS` that shape a decoder's heads: a fine-tuned decoder continues only with its own values
HEAD_SHAPE_KEYS = ("decoding_pool", "decoding_head_hidden_size")


def apply_config_overrides(config: NeuroformerConfig, overrides) -> Dict[str, object]:
    """Set fine-tuning settings on ``config`` (in place) after checking all of them.

    Args:
        config: the decoder's :class:`NeuroformerConfig` (changed only when every setting passes).
        overrides: ``{key: value}`` (a mapping, or None for none) with keys among
            :data:`FINETUNE_CONFIG_KEYS`: ``hidden_dropout`` / ``attention_dropout`` (a
            probability in [0, 1)), ``decoding_pool`` (``"current"`` or ``"current+past"``),
            ``decoding_head_hidden_size`` (an integer >= 0 or None), ``window_stride`` (s, > 0,
            a Python float or float64, or None: the step of the TRAINING windows only; validation and test windows tile
            their split whatever it is).

    Returns:
        The settings as a plain dict (a numpy integer / float given as a value becomes a Python
        ``int`` / ``float``, as the constructor stores it, so the config and ``metrics.json``
        serialise).

    Raises:
        ValueError: ``overrides`` is not a mapping, a key is outside :data:`FINETUNE_CONFIG_KEYS`,
            or a value the config refuses (the message names the field and the expectation).
    """
    overrides = _override_keys(overrides)
    trial = copy.deepcopy(config)
    for k, v in overrides.items():
        setattr(trial, k, v)
    # a bad value fails here, naming the field, and leaves ``config`` as it was; the values as given, so that
    # _check refuses a float32 length in seconds (window_stride np.float32(0.05) is 0.05000000074505806 s)
    trial._check()
    # the checked values, as the config stores them (a head width of 64.0 from --set is the int 64), a numpy
    # number as Python's
    overrides = {k: _plain_number(getattr(trial, k)) for k in overrides}
    for k, v in overrides.items():
        setattr(config, k, v)
    return overrides


def _plain_number(value):
    """A numpy integer / float scalar as a Python ``int`` / ``float``; a bool or anything else unchanged
    (left to :meth:`NeuroformerConfig._check`)."""
    if not is_real_number(value):
        return value
    return int(value) if isinstance(value, numbers.Integral) else float(value)


#: per target kind: the validation metric that selects the checkpoint with ``select_on="auto"``
#: (one target), and whether greater is better; the primary metric of the decoding benchmark.
SELECTION_METRICS = {
    "classification": ("balanced_accuracy", True),
    "regression": ("r2", True),
    "circular": ("mean_angular_error_deg", False),
}


def selection_metric(targets: Sequence[dict], select_on: Optional[str] = "auto"):
    """``(metric_for_best_model, greater_is_better, description)`` for ``Trainer``.

    Args:
        targets: ``config.decoding_targets`` entries (name, kind).
        select_on: ``"auto"`` (one target: its :data:`SELECTION_METRICS` metric; several: the
            loss), ``"loss"``, or ``"<target name>/<metric>"`` (a key of
            :func:`make_compute_metrics`; greater is better except for ``*angular_error*``).

    Raises:
        ValueError: an unknown ``select_on``.
    """
    if select_on in (None, "loss") or (select_on == "auto" and len(targets) != 1):
        return "loss", False, "lowest validation loss"
    if select_on == "auto":
        t = targets[0]
        metric, greater = SELECTION_METRICS[t["kind"]]
        select_on = f"{target_label(t['name'], t.get('column'))}/{metric}"
    else:
        name, _, metric = str(select_on).rpartition("/")
        kinds = {target_label(t["name"], t.get("column")): t["kind"] for t in targets}
        known = {"regression": ("r2", "pearson_r"), "classification": ("accuracy", "balanced_accuracy"),
                 "circular": ("mean_angular_error_deg", "median_angular_error_deg", "mean_angular_error_rad",
                              "median_angular_error_rad")}
        if name not in kinds or metric not in known[kinds[name]]:
            choices = [f"{n}/{m}" for n, k in kinds.items() for m in known[k]]
            raise ValueError(
                f"select_on: expected 'auto', 'loss' or '<target>/<metric>' with a target of {list(kinds)} and "
                f"its metric (one of {', '.join(choices)}), got {select_on!r}"
            )
        greater = "angular_error" not in metric
    return select_on, greater, f"{'highest' if greater else 'lowest'} validation {select_on}"


def gathered_outputs(value) -> np.ndarray:
    """``Trainer.predict`` / ``evaluate`` predictions or ``label_ids`` as one float64 array with a
    row per window: the first entry of a tuple (the predictions among the model's outputs; the
    ``labels`` array among the gathered label-like arguments), and with
    ``TrainingArguments(eval_do_concat_batches=False)``, where they come as a list with one such
    entry per batch, those entries concatenated in order (numpy failed on the list with
    "inhomogeneous shape", and taking its first entry kept only the first batch)."""
    def first(output):
        return output[0] if isinstance(output, tuple) else output

    if isinstance(value, list):
        return np.concatenate([np.asarray(first(b), dtype=np.float64) for b in value]) if value else np.zeros((0,))
    return np.asarray(first(value), dtype=np.float64)


def make_compute_metrics(targets: Sequence[dict]) -> Callable:
    """``compute_metrics`` for ``Trainer``: :func:`~hf_neuroformer.metrics.decoding.decoding_metrics`
    per target on ``predictions`` (the model's first output) against ``label_ids``; keys
    ``"<target name>/<metric>"`` (r2, pearson_r; accuracy, balanced_accuracy; angular errors).

    ``label_ids`` is the ``labels`` array ``(n_windows, n_targets)``, or a tuple whose first entry
    it is: a plain ``Trainer`` without ``TrainingArguments(label_names=["labels"])`` gathers every
    forward argument named like a label, ``(labels, token_labels, dt_labels)`` in that order (the
    tuple failed in numpy with "inhomogeneous shape", naming nothing). With
    ``TrainingArguments(eval_do_concat_batches=False)`` both come as a list with one entry per
    batch (an array, or such a tuple); the batches are concatenated in order.

    Each target is scored on the windows where its label is finite (NaN: a window kept for
    another target without a value of this one); ``<target>/n`` counts them, and a target with
    none gets only ``<target>/n`` = 0. A target whose predictions hold NaN or inf (a diverged
    model) gets NaN for every metric but ``n`` (``Trainer`` never keeps such a checkpoint), and
    its label is listed in the function's ``nonfinite_targets`` attribute until the next call.

    Raises:
        ValueError: ``label_ids`` (its first entry, for a tuple) is not ``(n_windows, n_targets)``
            with one row per prediction and one column per target.
    """
    n_targets = len(targets)
    gathered = gathered_outputs

    def compute_metrics(eval_pred) -> Dict[str, float]:
        compute_metrics.nonfinite_targets = []
        preds = gathered(eval_pred.predictions)
        labels = gathered(eval_pred.label_ids)
        if labels.ndim == 1:
            labels = labels[:, None]
        if labels.shape != (len(preds), n_targets):
            raise ValueError(
                f"label_ids: expected the decoding targets, shape ({len(preds)}, {n_targets}) (windows, targets), "
                f"got {labels.shape}; give Trainer TrainingArguments(label_names=['labels'])")
        out = {}
        for k, t in enumerate(targets):
            y = labels[:, k]
            ok = np.isfinite(y)
            pred = preds[ok, k]
            y = y[ok]
            label = target_label(t["name"], t.get("column"))
            if not len(y):  # no window of this split has a value of it (kept for the other targets)
                out[f"{label}/n"] = 0.0
                continue
            if not np.all(np.isfinite(pred)):
                # a diverged model (NaN weights or overflow): its metrics are undefined, so Trainer never
                # keeps this checkpoint; decoding_metrics refused the NaN predictions ("y_pred: expected
                # finite values ... drop or mask them") and the whole run stopped at its first evaluation
                for key in decoding_metrics(y, np.zeros_like(pred), t["kind"]):
                    out[f"{label}/{key}"] = float(len(y)) if key == "n" else float("nan")
                compute_metrics.nonfinite_targets.append(label)
                continue
            if t["kind"] == "classification":
                y, pred = y.astype(np.int64), pred.astype(np.int64)
            for key, v in decoding_metrics(y, pred, t["kind"]).items():
                out[f"{label}/{key}"] = float(v)
        return out

    compute_metrics.nonfinite_targets = []  # the targets with NaN / inf predictions in the last call
    return compute_metrics


def decoding_intervals(predictions, label_ids, targets: Sequence[dict], window_starts, plan: SplitPlan,
                       split: str = "test", ci_block_s: Optional[float] = None,
                       ci_block_s_option: str = "ci_block_s=",
                       window_span_s: Optional[float] = None) -> Dict[str, object]:
    """95 % block-bootstrap intervals of a split's decoding metrics, as ``metrics.json`` keys.

    Args:
        predictions, label_ids: ``Trainer.predict``'s outputs on the split's dataset, read as
            :func:`make_compute_metrics` reads them (:func:`gathered_outputs`: the first entry of
            a tuple, a list of batches concatenated; ``(n_windows, n_targets)``); windows whose
            target is NaN are left out, as there.
        targets: the decoder's ``config.decoding_targets`` dicts.
        window_starts: ``(n_windows,)`` float64 start (s) of each window, in the same order.
        plan: the :class:`~hf_neuroformer.windows.SplitPlan`; its ``split`` segments define the
            blocks (whole trials, or ``ci_block_s`` s of a time split:
            :func:`~hf_neuroformer.metrics.bootstrap.window_blocks`).
        ci_block_s: the time split's block length, s (None: 10 s, not asked for; a length given
            on a trial split, 10 included, is warned to have no effect).
        ci_block_s_option: how a null interval's reason names the block length to shorten
            (``"ci_block_s="``; ``neuroformer finetune`` passes ``"--ci-block-s"``).

    Returns:
        ``{split}/<target>/<metric>_ci95`` (``[low, high]`` in the metric's unit, or None with
        ``..._ci95_reason``) for every metric of
        :func:`~hf_neuroformer.metrics.decoding.decoding_metrics_ci`; per target
        ``{split}/<target>/ci95_n_blocks`` (the blocks its windows fill: windows whose target is
        NaN are left out, so targets may differ); and once ``{split}/ci95_blocks``,
        ``{split}/ci95_method`` and ``{split}/ci95_block_s`` (``ci_block_s``; None in a trial split).

    Raises:
        BootstrapInputError: ``ci_block_s`` not a finite number > 0.
    """
    from .metrics.bootstrap import (ci_description, ci_entries, count_blocks, few_blocks_hint, warn_block_s_unused,
                                    window_blocks)
    from .metrics.decoding import decoding_metrics_ci

    ci_block_s, asked = resolve_block_s(ci_block_s)
    warn_block_s_unused(plan.mode, ci_block_s, ci_block_s_option, window_span_s, asked=asked)
    preds, labels = gathered_outputs(predictions), gathered_outputs(label_ids)
    preds, labels = preds.reshape(len(preds), -1), labels.reshape(len(labels), -1)
    starts = np.asarray(window_starts, dtype=np.float64).reshape(-1)
    segments = plan.segments[split]
    blocks, definition = window_blocks(starts, segments, plan.mode, ci_block_s)
    out: Dict[str, object] = {}
    for k, t in enumerate(targets):
        label = target_label(t["name"], t.get("column"))
        ok = np.isfinite(labels[:, k])
        y, pred = labels[ok, k], preds[ok, k]
        if t["kind"] == "classification":
            y, pred = y.astype(np.int64), pred.astype(np.int64)
        # the blocks of this target's windows, renumbered 0 .. n - 1
        _, b = np.unique(blocks[ok], return_inverse=True)
        b = b.reshape(-1)
        out[f"{split}/{label}/ci95_n_blocks"] = count_blocks(b)
        if not ok.any():
            continue
        hint = few_blocks_hint(starts[ok], segments, plan.mode, ci_block_s, ci_block_s_option)
        for key, r in decoding_metrics_ci(y, pred, t["kind"], b, hint=hint).items():
            out.update(ci_entries(f"{split}/{label}/{key}", r))
    out.update(ci_description(f"{split}/", None, definition, block_s=ci_block_s if plan.mode == "time" else None))
    return out


class DecodingTrainer(Trainer):
    """``Trainer`` whose ``num_items_in_batch`` counts finite label entries, and whose model calls
    ask for the output dict without attention weights or hidden states, whatever the config says.

    ``Trainer`` counts ``labels != -100``; here a missing label is NaN (and -100 is an ordinary
    regression value), so it is handed a proxy that is -100 exactly where a label is NaN, and the
    rest of its counting (across processes included) is unchanged. :func:`build_trainer` makes one.
    """

    def _get_num_items_in_batch(self, batch_samples, device):
        proxy = [
            {**b, "labels": torch.where(torch.isfinite(b["labels"]), 0, -100)}
            if isinstance(b, Mapping) and torch.is_tensor(b.get("labels")) else b
            for b in batch_samples
        ]
        n = super()._get_num_items_in_batch(proxy, device)
        # kept with the very object Trainer hands on to compute_loss, so that only that step's calls use them
        self._aux_counts = None if n is None else (n, self._next_spike_counts(batch_samples, device))
        return n

    def _next_spike_counts(self, batch_samples, device) -> Optional[Dict[str, torch.Tensor]]:
        """The step's next-spike targets for the auxiliary loss, counted as ``Trainer`` counts
        ``num_items_in_batch`` (over the micro-batches, summed over the processes when
        ``average_tokens_across_devices``): ``{"num_id_targets_in_batch": ...,
        "num_dt_targets_in_batch": ...}`` for the labels the batches hold, or None (no auxiliary
        labels, or DataParallel over several GPUs in one process, where the model keeps its
        per-batch approximation)."""
        if self.args.n_gpu > 1:
            return None
        counts = {}
        # named without "label": Trainer takes every forward argument whose name holds it for a label column
        for key, name in (("token_labels", "num_id_targets_in_batch"), ("dt_labels", "num_dt_targets_in_batch")):
            if not all(isinstance(b, Mapping) and torch.is_tensor(b.get(key)) for b in batch_samples):
                continue
            c = sum(b[key][:, 1:].ne(-100).sum() for b in batch_samples).to(device)
            if self.args.average_tokens_across_devices and self.args.world_size > 1:
                c = self.accelerator.gather(c).sum()
            counts[name] = c
        return counts or None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None, **kwargs):
        """``Trainer.compute_loss``; in a training step (``num_items_in_batch`` given) the model
        also gets the step's next-spike target counts (:meth:`_next_spike_counts`), so that the
        auxiliary loss (``decoding_generative_loss_weight``) sums to the step's per-token mean
        under gradient accumulation too; before, each micro-batch's own mean was weighted by its
        share of the windows, which is not the same when micro-batches hold different numbers of
        spikes. The counts go only with the ``num_items_in_batch`` object they were counted with:
        a direct call (user code, another batch) keeps the model's per-batch approximation rather
        than the last training step's counts."""
        stored = getattr(self, "_aux_counts", None)
        counts = stored[1] if stored is not None and num_items_in_batch is not None and stored[0] is num_items_in_batch \
            else None
        aux = getattr(getattr(self.model, "config", None), "decoding_generative_loss_weight", 0) or 0
        if (num_items_in_batch is not None and counts and aux > 0 and isinstance(inputs, Mapping)
                and self._model_takes_counts(counts)):
            inputs = {**inputs, **counts}
        return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                    num_items_in_batch=num_items_in_batch, **kwargs)

    def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None,
                        metric_key_prefix: str = "eval"):
        """``Trainer.evaluation_loop``, whose ``<prefix>_loss`` is the loss of all the windows
        scored as one batch (:meth:`~hf_neuroformer.NeuroformerForBehaviorDecoding.loss_from_terms`
        of the gathered per-window ``loss_terms``), and whose predictions leave ``loss_terms`` out.

        ``Trainer`` averaged each batch's loss weighted by the batch size it was given, so the
        loss depended on how the windows fell into batches (a batch's mean over its labels and
        next-spike tokens, weighted by its windows), and with several processes the last batch of
        a process that ran out of windows was filled with windows from the start of the split,
        whose losses entered that batch's mean (the predictions, gathered per window, drop them): the
        validation loss of 37 windows in batches of 8 was 2.5435 in one process and 2.6153 in two.
        Now it is the same for any batching and number of processes, also when only the loss is
        wanted (``prediction_loss_only``; the predictions are then None, as in ``Trainer``). A decoder without
        ``loss_from_terms`` (older remote code) keeps ``Trainer``'s figure, and so does a loss
        that is not finite (``Trainer`` leaves out the batches whose loss is NaN or inf).

        The ``loss_terms`` travel beside what the user's functions see: ``preprocess_logits_for_metrics``
        gets each batch's outputs without them (``(predictions, logits)``, or the one entry left
        after ``ignore_keys``, as ``Trainer`` hands them over for a model without ``loss_terms``), and
        ``compute_metrics`` and the returned predictions hold what it returned (both saw the terms as
        one more entry before); a loss-only evaluation calls neither, as ``Trainer`` does. The
        trainer's own ``preprocess_logits_for_metrics`` / ``compute_metrics`` are put back after
        the loop."""
        model = self.accelerator.unwrap_model(self.model)
        if not hasattr(model, "loss_from_terms"):
            return super().evaluation_loop(dataloader, description, prediction_loss_only=prediction_loss_only,
                                           ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        loss_only = prediction_loss_only if prediction_loss_only is not None else self.args.prediction_loss_only
        user_preprocess, user_metrics = self.preprocess_logits_for_metrics, self.compute_metrics
        self._terms_split_off = False
        # loss only: the batches' logits are the 1-tuple (loss_terms,), which no user function is given
        self.preprocess_logits_for_metrics = None if loss_only else functools.partial(self._split_off_terms,
                                                                                      user_preprocess)
        if user_metrics is not None:
            self.compute_metrics = functools.partial(self._metrics_without_terms, user_metrics)
        try:
            out = super().evaluation_loop(dataloader, description, prediction_loss_only=prediction_loss_only,
                                          ignore_keys=ignore_keys, metric_key_prefix=metric_key_prefix)
        finally:
            self.preprocess_logits_for_metrics, self.compute_metrics = user_preprocess, user_metrics
        preds = out.predictions  # per window set, or a list of per-batch entries (eval_do_concat_batches off)
        if preds is None or not (loss_only or self._terms_split_off):
            return out
        batches = preds if isinstance(preds, list) else [preds]
        if not all(isinstance(b, tuple) and len(b) == (1 if loss_only else 2) for b in batches):
            return out
        metrics = dict(out.metrics)
        key = f"{metric_key_prefix}_loss"
        if key in metrics:
            loss = model.loss_from_terms(np.concatenate([np.asarray(b[-1], dtype=np.float64) for b in batches]))
            if math.isfinite(loss):
                metrics[key] = loss
        return EvalLoopOutput(predictions=None if loss_only else self._without_terms(preds), label_ids=out.label_ids,
                              metrics=metrics, num_samples=out.num_samples)

    def _split_off_terms(self, user_preprocess, logits, labels):
        """The ``preprocess_logits_for_metrics`` of :meth:`evaluation_loop`: a batch's logits with
        ``loss_terms`` (last) become ``(what the user's function returns for the rest, loss_terms)``."""
        if not getattr(self, "_batch_has_terms", False):
            return logits if user_preprocess is None else user_preprocess(logits, labels)
        self._terms_split_off = True
        rest = logits[:-1]
        rest = rest[0] if len(rest) == 1 else rest  # as Trainer.prediction_step unpacks a single output
        return (rest if user_preprocess is None else user_preprocess(rest, labels), logits[-1])

    def _without_terms(self, predictions):
        """``predictions`` gathered from :meth:`_split_off_terms`' pairs (one pair, or a list of one
        per batch), the ``loss_terms`` left out; anything else unchanged."""
        if not getattr(self, "_terms_split_off", False):
            return predictions
        if isinstance(predictions, list):
            return [b[0] for b in predictions]
        return predictions[0]

    def _metrics_without_terms(self, user_metrics, eval_pred, **kwargs):
        """The user's ``compute_metrics`` on ``eval_pred`` with the ``loss_terms`` left out of its
        predictions (``kwargs``: ``compute_result`` with ``batch_eval_metrics``)."""
        from transformers import EvalPrediction

        eval_pred = EvalPrediction(predictions=self._without_terms(eval_pred.predictions), label_ids=eval_pred.label_ids,
                                   inputs=eval_pred.inputs, losses=eval_pred.losses)
        return user_metrics(eval_pred, **kwargs)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """``Trainer.prediction_step``; when only the loss is wanted (``prediction_loss_only``:
        ``TrainingArguments(prediction_loss_only=True)``, or ``evaluate()`` of a trainer without
        ``compute_metrics``), it still hands back the decoder's ``loss_terms``, as a 1-tuple in place
        of the predictions and no labels, for :meth:`evaluation_loop`'s one-batch loss (without
        them that loss was ``Trainer``'s batch-weighted mean again: 23 windows gave 3.8290 in
        batches of 3 and 3.8063 in batches of 7, against 3.8212 as one batch). Whether the batch's
        outputs end with ``loss_terms`` is kept for :meth:`evaluation_loop` (``_batch_has_terms``).
        A batch without ``labels`` gives predictions only, as before: the decoder's auxiliary loss
        and its ``loss_terms`` (which it computes from ``token_labels`` alone) are left out, as
        ``Trainer`` reads no loss from a batch without labels."""
        self._batch_has_terms = False
        if not hasattr(self.accelerator.unwrap_model(model), "loss_from_terms"):
            return super().prediction_step(model, inputs, prediction_loss_only, ignore_keys=ignore_keys)
        if ignore_keys is None:
            ignore_keys = list(getattr(getattr(self.model, "config", None), "keys_to_ignore_at_inference", []) or [])
        labelled = isinstance(inputs, Mapping) and inputs.get("labels") is not None
        if not labelled:
            return super().prediction_step(model, inputs, prediction_loss_only,
                                           ignore_keys=[*ignore_keys, "loss", "loss_terms"])
        loss, logits, labels = super().prediction_step(model, inputs, False, ignore_keys=ignore_keys)
        self._batch_has_terms = (loss is not None and "loss_terms" not in ignore_keys and isinstance(logits, tuple)
                                 and len(logits) >= 2)
        if not prediction_loss_only:
            return loss, logits, labels
        if not self._batch_has_terms:  # no loss_terms: Trainer's loss alone
            return (loss, None, None)
        return (loss, (logits[-1],), None)

    def _model_takes_counts(self, counts) -> bool:
        """Whether the model's forward takes the count arguments ``counts`` names (or ``**kwargs``).
        A decoder pushed before they existed runs its own remote code
        (``AutoModelForSequenceClassification.from_pretrained(repo, trust_remote_code=True)``),
        whose forward has no such arguments: every training step failed with a TypeError; it
        keeps its per-batch approximation instead."""
        import inspect

        try:
            params = inspect.signature(self.model.forward).parameters
        except (TypeError, ValueError):
            return False
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return True
        return all(name in params for name in counts)

    def _prepare_inputs(self, inputs):
        """``Trainer._prepare_inputs``, asking the model for its output dict without attention
        weights or hidden states: ``Trainer`` calls ``model(**inputs)``, so a checkpoint saved with
        ``output_attentions=True`` (e.g. after ``from_pretrained(path, output_attentions=True)``
        for an attention figure) trained with eager attention and gathered every batch's weights
        in evaluation, where windows of other lengths failed ("Sizes of tensors must match"); with
        ``return_dict=False`` ``keys_to_ignore_at_inference`` did not apply."""
        inputs = super()._prepare_inputs(inputs)
        if isinstance(inputs, Mapping):
            inputs = {**inputs, "return_dict": True, "output_attentions": False, "output_hidden_states": False}
        return inputs

    #: optimisation steps during which only the decoder's new modules train (see :func:`build_trainer`)
    freeze_backbone_steps: int = 0
    #: the :class:`SpikeDropout` wrapper of the training batches' collator, or None (see :func:`build_trainer`)
    spike_dropout: Optional["SpikeDropout"] = None

    def get_train_dataloader(self):
        """``Trainer.get_train_dataloader``, collating with :attr:`spike_dropout` when set: only the
        training batches are thinned (every evaluation and prediction dataloader keeps
        ``data_collator``), and the batches are thinned before ``Trainer`` counts their labels."""
        if self.spike_dropout is None:
            return super().get_train_dataloader()
        plain, self.data_collator = self.data_collator, self.spike_dropout
        try:
            return super().get_train_dataloader()
        finally:
            self.data_collator = plain

    def create_optimizer(self, model=None):
        """``Trainer.create_optimizer``; with ``freeze_backbone_steps`` each of its parameter groups
        is split in two, the decoder's new modules (:data:`NEW_MODULE_PREFIXES`) and the rest (the
        pretrained backbone and its next-spike heads), the latter marked for :meth:`create_scheduler`.

        Raises:
            ValueError: no trainable parameter is one of the new modules (all would be frozen)."""
        fresh = self.optimizer is None
        optimizer = super().create_optimizer(model)
        if not (fresh and self.freeze_backbone_steps):
            return optimizer
        opt_model = self.model if model is None else model
        new_ids = {id(p) for n, p in opt_model.named_parameters() if is_new_module_parameter(n)}
        groups = []
        for group in optimizer.param_groups:
            settings = {k: v for k, v in group.items() if k != "params"}
            for frozen in (False, True):
                params = [p for p in group["params"] if (id(p) in new_ids) != frozen]
                if params:
                    groups.append({**settings, "params": params, "frozen_until_step": self.freeze_backbone_steps if frozen else 0})
        if all(g["frozen_until_step"] for g in groups):  # frozen heads, or names a wrapper prefixed
            raise ValueError(
                f"freeze_backbone_steps={self.freeze_backbone_steps}: no parameter the optimizer trains belongs to the "
                f"decoder's new modules (names starting {' / '.join(NEW_MODULE_PREFIXES)}, requires_grad True), so "
                "nothing would train in the frozen steps; pass freeze_backbone_steps=0 or leave the heads trainable")
        optimizer.param_groups = []  # nothing has been stepped yet: no state to carry over
        for group in groups:
            optimizer.add_param_group(group)
        return optimizer

    def _frozen_groups(self) -> list:
        """The optimizer's parameter groups still frozen at this optimisation step (none once the
        schedule's step reaches ``freeze_backbone_steps``). The step is the schedule's own
        (``lr_scheduler.last_epoch``), the clock that holds the backbone's rate at 0: it equals
        ``global_step`` unless the schedule restarted (a resume from a checkpoint saved without
        its scheduler, ``save_only_model=True``) or a step was skipped (fp16 overflow), where
        counting ``global_step`` kept the gradients of a backbone whose rate was still 0, so they
        entered clipping and AdamW's moment estimates."""
        if not self.freeze_backbone_steps or self.optimizer is None:
            return []
        scheduler = self.lr_scheduler
        step = scheduler.last_epoch if isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR) else self.state.global_step
        return [g for g in self.optimizer.param_groups if step < int(g.get("frozen_until_step", 0))]

    def training_step(self, model, inputs, *args, **kwargs):
        """``Trainer.training_step``; while the backbone is frozen its gradients are dropped after
        each backward pass (``grad = None``), so gradient clipping (``max_grad_norm``) and the logged
        ``grad_norm`` cover the parameters that train, and AdamW skips the frozen ones (no moment
        estimates gathered from steps they never took). Before, the frozen backbone's gradients
        entered the norm and scaled down the new heads' clipped step (most with the auxiliary
        next-spike loss, which reaches the backbone directly). The frozen groups' learning
        rate, used by the step to come, is kept for :meth:`log` (``backbone_learning_rate``)."""
        loss = super().training_step(model, inputs, *args, **kwargs)
        frozen = self._frozen_groups()
        for group in frozen:
            for p in group["params"]:
                p.grad = None
        if self.freeze_backbone_steps and self.optimizer is not None:
            groups = [g for g in self.optimizer.param_groups if int(g.get("frozen_until_step", 0))]
            if groups:
                self._backbone_lr = float(groups[0]["lr"])
        return loss

    def log(self, logs, *args, **kwargs):
        """``Trainer.log``; with ``freeze_backbone_steps`` a training log line also gives
        ``backbone_learning_rate``, the rate of the backbone's groups at the step logged (0 while
        frozen): ``learning_rate`` is that of the first group, the decoder's new modules."""
        if "learning_rate" in logs and getattr(self, "_backbone_lr", None) is not None:
            logs = {**logs, "backbone_learning_rate": self._backbone_lr}
        return super().log(logs, *args, **kwargs)

    def _load_optimizer_and_scheduler(self, checkpoint):
        """``Trainer``'s, with torch's "loaded state dict has a different number of parameter groups"
        explained: ``freeze_backbone_steps`` > 0 splits each group in two, so the optimizer state of
        a checkpoint saved with it fits only a trainer with it, and one saved without only without.
        A checkpoint saved with another ``freeze_backbone_steps`` > 0 brings its own value back into
        the groups' ``frozen_until_step``; this trainer's value (the one its schedule holds) is set
        again, and so is the backbone groups' learning rate for the step to come, from this
        trainer's schedule: the checkpoint's (0 while it was still frozen there) held the backbone
        for one more step after a resume with a smaller N, and was logged as its rate while frozen
        after one with a larger N."""
        try:
            super()._load_optimizer_and_scheduler(checkpoint)
            if self.freeze_backbone_steps and self.optimizer is not None:
                scheduler = self.lr_scheduler if isinstance(self.lr_scheduler, torch.optim.lr_scheduler.LambdaLR) else None
                for i, group in enumerate(self.optimizer.param_groups):
                    if int(group.get("frozen_until_step", 0)):
                        group["frozen_until_step"] = self.freeze_backbone_steps
                        if scheduler is not None and checkpoint is not None:
                            group["lr"] = scheduler.base_lrs[i] * scheduler.lr_lambdas[i](scheduler.last_epoch)
                if scheduler is not None:
                    scheduler._last_lr = [g["lr"] for g in self.optimizer.param_groups]
        except ValueError as err:
            if "different number of parameter groups" not in str(err):
                raise
            raise ValueError(
                f"resume_from_checkpoint: the optimizer state of {str(checkpoint)!r} does not fit this trainer's "
                f"{len(self.optimizer.param_groups)} parameter groups (freeze_backbone_steps={self.freeze_backbone_steps}): "
                "freeze_backbone_steps > 0 splits the backbone from the new modules, so a checkpoint saved with it "
                "resumes only with it (a value up to the checkpoint's step trains everything from there on), and one "
                "saved with freeze_backbone_steps=0 only with 0") from err

    def _weight_average(self) -> Optional["WeightAverage"]:
        return next((c for c in self.callback_handler.callbacks if isinstance(c, WeightAverage)), None)

    def _save_checkpoint(self, model, trial):
        """``Trainer._save_checkpoint``; with ``ema_decay`` the checkpoint's model holds the average,
        so the training weights and the average's state go beside it (:meth:`WeightAverage.save_state`)
        for a resume to continue from."""
        super()._save_checkpoint(model, trial)
        average = self._weight_average()
        if average is not None and self.args.should_save:
            from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

            folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
            average.save_state(folder, self.model)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        """``Trainer._load_from_checkpoint`` (a resume); with ``ema_decay`` the training weights
        and the average saved beside the checkpoint's averaged model are restored
        (:meth:`WeightAverage.load_state`): the resumed run trained on from the average before."""
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        average = self._weight_average()
        if average is not None:
            average.load_state(resume_from_checkpoint, self.model)

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """``Trainer.create_scheduler``; with ``freeze_backbone_steps`` the groups that
        :meth:`create_optimizer` marked get a learning rate of exactly 0 for the first that many
        steps (AdamW then leaves them unchanged: no update, no weight decay), then the schedule's
        rate at that step."""
        created = self.lr_scheduler is None
        scheduler = super().create_scheduler(num_training_steps, optimizer)
        if not (created and self.freeze_backbone_steps):
            return scheduler
        if not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):  # build_trainer refused the known ones
            raise ValueError(_ungated_schedule_message(self.freeze_backbone_steps, self.args.lr_scheduler_type,
                                                       type(scheduler).__name__))
        groups = scheduler.optimizer.param_groups
        for i, group in enumerate(groups):
            until = int(group.get("frozen_until_step", 0))
            if until:
                scheduler.lr_lambdas[i] = functools.partial(_after_step, until, scheduler.lr_lambdas[i])
                group["lr"] = scheduler.base_lrs[i] * scheduler.lr_lambdas[i](scheduler.last_epoch)
        scheduler._last_lr = [g["lr"] for g in groups]
        return scheduler


#: parameter-name prefixes of the modules a decoder adds to a pretrained checkpoint (its heads and
#: the attentive read-out); everything else is the pretrained backbone
NEW_MODULE_PREFIXES = ("decoding_heads.", "attention_pool.")


def is_new_module_parameter(name: str) -> bool:
    """Whether a parameter name (``model.named_parameters()``, possibly under a ``module.`` wrapper
    prefix) belongs to the decoder's new modules (:data:`NEW_MODULE_PREFIXES`)."""
    return name.removeprefix("module.").startswith(NEW_MODULE_PREFIXES)


def _after_step(until: int, schedule: Callable[[int], float], step: int) -> float:
    """The learning-rate factor of a frozen group: 0 before ``until``, then ``schedule(step)``."""
    return 0.0 if step < until else schedule(step)


def _ungated_schedule_message(freeze_backbone_steps, lr_scheduler_type, got: str) -> str:
    name = getattr(lr_scheduler_type, "value", lr_scheduler_type)  # TrainingArguments holds a SchedulerType
    return (f"freeze_backbone_steps={freeze_backbone_steps}: holds the backbone's learning rate at 0 through "
            f"a LambdaLR schedule (lr_scheduler_type 'linear', 'cosine', 'constant', ...), but lr_scheduler_type="
            f"{name!r} gives a {got}; pass freeze_backbone_steps=0 or another lr_scheduler_type")


def check_freeze_schedule(freeze_backbone_steps, lr_scheduler_type="linear", lr_scheduler_kwargs=None) -> None:
    """Refuse ``freeze_backbone_steps`` > 0 with a learning-rate schedule it cannot gate (one that is
    not a ``LambdaLR``: ``reduce_lr_on_plateau``, ``greedy``), before any data is read or any
    folder written (:class:`DecodingTrainer` would otherwise find out when training starts). The
    schedule is built on a throwaway one-parameter optimiser to see its type; a name or keyword
    arguments that transformers refuses are left to ``TrainingArguments`` / ``Trainer`` to report.

    Raises:
        ValueError: naming ``freeze_backbone_steps``, the ``lr_scheduler_type`` and the schedule's class.
    """
    if not freeze_backbone_steps:
        return
    from transformers import get_scheduler

    name = getattr(lr_scheduler_type, "value", lr_scheduler_type)
    try:
        probe = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        schedule = get_scheduler(name, optimizer=probe, num_warmup_steps=0, num_training_steps=2,
                                 scheduler_specific_kwargs=dict(lr_scheduler_kwargs)
                                 if isinstance(lr_scheduler_kwargs, Mapping) else {})
    except Exception:  # not ours to judge: TrainingArguments and Trainer name what is wrong
        return
    if not isinstance(schedule, torch.optim.lr_scheduler.LambdaLR):
        raise ValueError(_ungated_schedule_message(freeze_backbone_steps, name, type(schedule).__name__))


def check_training_args(training_args: Dict[str, object]) -> None:
    """Refuse keyword arguments of :func:`finetune` that are neither its own nor a
    ``transformers.TrainingArguments`` field (which ``**training_args`` passes on).

    A misspelt argument (``max_stpes=1``) reached ``TrainingArguments`` only after the recording's
    windows were built, as its bare "unexpected keyword argument" message, which names neither
    ``finetune`` nor the spelling meant.

    Raises:
        TypeError: naming each unknown keyword and the closest argument of either kind, if any.
    """
    import dataclasses
    import difflib
    import inspect

    from transformers import TrainingArguments

    fields = {f.name for f in dataclasses.fields(TrainingArguments) if f.init}
    unknown = [k for k in training_args if k not in fields]
    if not unknown:
        return
    own = [n for n, p in inspect.signature(finetune).parameters.items() if p.kind is p.KEYWORD_ONLY]
    said = []
    for key in unknown:
        close = difflib.get_close_matches(key, own + sorted(fields), n=1)
        said.append(repr(key) + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise TypeError(f"finetune() got {'an unexpected keyword argument' if len(said) == 1 else 'unexpected keyword arguments'} "
                    f"{', '.join(said)}: neither one of finetune's own arguments nor a transformers.TrainingArguments "
                    "field (the two kinds it takes); nothing was read or written")


def build_trainer(model, train_dataset, eval_dataset, output_dir, *, collator=None, freeze_backbone_steps: int = 0,
                  ema_decay: Optional[float] = None, spike_dropout: float = 0.0, anchor_decay: Optional[float] = None,
                  **training_args):
    """A ``transformers.Trainer`` for a :class:`NeuroformerForBehaviorDecoding`.

    ``TrainingArguments`` get ``remove_unused_columns=False`` (the collator reads the token
    lists and ``target_<name>`` columns), ``label_names=["labels"]`` (only the decoding targets
    go to ``compute_metrics``), ``report_to=[]``, plus ``training_args``.

    Without ``collator``: a :class:`~hf_neuroformer.decoding.DecodingCollator` of the model's
    ``config.decoding_targets`` and ``config.modalities`` that also holds the rows to the model's
    ``config.vocab_size`` (``model_vocab_size``): a window tokenized with a tokenizer grown with
    ``add_units`` after the model was made is refused (``ValueError`` naming the window, the column,
    the id and the vocab_size) before the model sees it.

    ``freeze_backbone_steps`` (default 0): for the first that many optimisation steps only the
    decoder's new modules (its heads and the attentive read-out, :data:`NEW_MODULE_PREFIXES`)
    train; the pretrained backbone (and its next-spike heads) gets a learning rate of 0, then the
    schedule's rate from that step on. This is linear probing then fine-tuning (LP-FT; Kumar et al.,
    "Fine-Tuning can Distort Pretrained Features and Underperform Out-of-Distribution", ICLR 2022,
    arXiv 2202.10054) within one run and one schedule. Equal to ``max_steps``: the backbone never
    changes (a probe of the pretrained features). The backward pass still runs through the
    backbone (several processes reduce its gradients as before), but while it is frozen
    :meth:`DecodingTrainer.training_step` drops them, so gradient clipping and the logged
    ``grad_norm`` cover only the new modules, and AdamW's moment estimates for the backbone start
    at step ``freeze_backbone_steps`` (with N=3 of 4 steps its step count is 1, the heads' 4).

    ``ema_decay`` (default None: off): evaluations and checkpoints see an exponential moving
    average of the weights over the steps, with this decay per step (:class:`WeightAverage`);
    after training the model holds averaged weights.

    ``spike_dropout`` (default 0: off): the probability with which each spike token of the current
    and past windows of a TRAINING batch is dropped, drawn anew for every batch (:class:`SpikeDropout`,
    seeded with ``seed`` and the process index, wrapping the collator on the training dataloader
    only); evaluation and prediction batches are never thinned. The trainer keeps the wrapper as
    ``trainer.spike_dropout`` (None when off).

    ``anchor_decay`` (default None: off): after every optimiser step each pretrained parameter (all
    but the new modules) is pulled towards its value in ``model`` as given here,
    ``w <- w - lr_t * anchor_decay * (w - w0)`` (:class:`PretrainedAnchor`, decoupled L2-SP); the
    trainer keeps the callback as ``trainer.anchor`` (None when off).

    Raises:
        ValueError: ``freeze_backbone_steps`` not a whole number >= 0, or > 0 with an
            ``lr_scheduler_type`` whose schedule cannot be gated (:func:`check_freeze_schedule`);
            ``ema_decay`` neither None nor in (0, 1); ``spike_dropout`` outside [0, 1);
            ``anchor_decay`` neither None nor a number > 0, or ``learning_rate * anchor_decay`` >= 1
            (:func:`~hf_neuroformer.argument_checks.check_anchor_decay`).
    """
    from transformers import TrainingArguments

    cfg = model.config
    targets = cfg.decoding_targets
    if collator is None:
        columns = [f"target_{target_label(t['name'], t.get('column'))}" for t in targets]
        # the model's vocab_size: a window holding a unit id the model has no embedding for (tokenized with a
        # tokenizer grown with add_units after the model was made) is refused naming the window and the id
        collator = DecodingCollator(columns, cfg.pad_token_id, cfg.bos_token_id,
                                    cfg.eos_token_id, modalities=cfg.modalities, model_vocab_size=cfg.vocab_size)
    defaults = dict(remove_unused_columns=False, label_names=["labels"], report_to=[], use_cpu=not _has_gpu(),
                    save_only_model=True, dataloader_num_workers=0, disable_tqdm=True)
    if not is_whole_number(freeze_backbone_steps) or freeze_backbone_steps < 0:  # int(2.5) trained as 2
        raise ValueError(f"freeze_backbone_steps: expected a whole number >= 0 (0: off), got {freeze_backbone_steps!r}")
    check_ema_decay(ema_decay)
    check_spike_dropout(spike_dropout)
    check_anchor_decay(anchor_decay)
    args = TrainingArguments(output_dir=str(output_dir), **{**defaults, **training_args})
    check_freeze_schedule(freeze_backbone_steps, args.lr_scheduler_type, args.lr_scheduler_kwargs)
    trainer = DecodingTrainer(model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset,
                              data_collator=collator, compute_metrics=make_compute_metrics(targets))
    trainer.freeze_backbone_steps = int(freeze_backbone_steps)
    check_anchor_decay(anchor_decay, learning_rate=args.learning_rate)
    # before WeightAverage: the average reads the pulled weights at the step's end
    trainer.anchor = PretrainedAnchor(model, anchor_decay) if anchor_decay is not None else None
    if trainer.anchor is not None:
        trainer.add_callback(trainer.anchor)
    if spike_dropout:
        trainer.spike_dropout = SpikeDropout(collator, spike_dropout, seed=[args.seed, args.process_index])
    if ema_decay is not None:
        trainer.add_callback(WeightAverage(ema_decay))
    return trainer


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def _plan_within(plan: SplitPlan, recording, config) -> Optional[SplitPlan]:
    """``plan`` clipped to the recording's support (time mode); in trial mode, each of the
    recording's trials in the split of the plan's trial at the same start and stop (an epoch of
    the recording the plan was made on holds some of its trials, indexed from 0). None when that
    leaves a split with a non-zero fraction without windows (trials), or the recording holds a
    trial that is none of the plan's."""
    if plan.mode == "trials":
        trials = (np.zeros((0, 2)) if recording.trials is None
                  else np.asarray(recording.trials, dtype=np.float64).reshape(-1, 2))
        index, found = {}, np.zeros(len(trials), dtype=bool)
        for s, seg in plan.segments.items():  # by times: an --epoch of the recording renumbers its trials
            seg = np.asarray(seg, dtype=np.float64).reshape(-1, 2)
            hit = np.all(np.abs(trials[:, None, :] - seg[None, :, :]) <= 1e-9, axis=2).any(axis=1)
            index[s], found = np.flatnonzero(hit), found | hit
        if not found.all() or any(config.split_fractions[i] > 0 and not len(index.get(s, ()))
                                  for i, s in enumerate(SPLITS)):
            return None
        return SplitPlan("trials", {s: trials[ix] for s, ix in index.items()}, index)
    # touching intervals as one stretch, as plan_splits takes them: a segment across their shared edge was cut
    # there, and the training windows whose past reaches over it were lost (3 of 541 in the test)
    sup = recorded_stretches(recording.support)
    segs = {}
    for split, seg in plan.segments.items():
        rows = []
        for a, b in seg:
            for lo, hi in sup:
                x, y = max(a, lo), min(b, hi)
                if y > x:
                    rows.append([x, y])
        segs[split] = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
    out = SplitPlan("time", segs, dict(plan.trial_index))
    for i, split in enumerate(SPLITS):
        if config.split_fractions[i] > 0 and len(window_starts_for_split(out, split, config)[0]) == 0:
            return None
    return out


def _warn_time_outside_plan(plan: SplitPlan, recording, config, model_dir) -> None:
    """Warn when the recording holds room for windows before the first or after the last segment of
    a checkpoint's (time-mode) ``plan``: that time lies in no split, so its windows are neither
    fitted nor scored (e.g. the whole wake epoch given to a model pretrained on a part of it). Only
    the stretches of recorded time (:func:`~hf_neuroformer.windows.recorded_stretches`) whose part
    outside the plan holds a window with its past count (short ripples hold none)."""
    rows = [np.asarray(seg, dtype=np.float64).reshape(-1, 2) for seg in plan.segments.values()]
    rows = np.concatenate(rows) if rows else np.zeros((0, 2))
    if not len(rows):
        return
    first, last = float(rows[:, 0].min()), float(rows[:, 1].max())
    sup = recorded_stretches(recording.support)
    need = window_reach(config) + float(config.past_window)  # room for a window and its past
    # per stretch: the time outside the plan counts only where one stretch holds a window with its past (summed
    # over all stretches, many short ripples warned of room for windows that none of them has)
    before = np.clip(np.minimum(sup[:, 1], first) - sup[:, 0], 0, None)
    after = np.clip(sup[:, 1] - np.maximum(sup[:, 0], last), 0, None)
    before = float(before[before >= need - BIN_EDGE_SECONDS].sum())
    after = float(after[after >= need - BIN_EDGE_SECONDS].sum())
    if before + after > 0:
        warnings.warn(f"model_dir: the split plan of {str(model_dir)!r} (splits.json) spans {first:.3f}-{last:.3f} s, "
                      f"and {before + after:.1f} s of this recording lie outside it ({before:.1f} s before, {after:.1f} s "
                      f"after, in stretches of recorded time that each hold a window with its past, {need:g} s), in "
                      "no split: their windows are neither fitted nor scored (n_train_windows counts the "
                      "others); fine-tune on the recording (and epoch) the model was pretrained on, or give plan= (a "
                      "SplitPlan over the whole recording) to use them", UserWarning, stacklevel=3)


def check_targets(targets) -> list:
    """``targets`` as a list after checking that it is a list (or tuple) of
    :class:`~hf_neuroformer.decoding.DecodingTarget`.

    Raises:
        TypeError: a single target, a name (str) or anything else that is not a sequence of
            ``DecodingTarget`` (the message shows how to build one).
        DecodingTargetError: an empty list (as :func:`~hf_neuroformer.decoding.build_decoding_datasets`
            says it; checked here, before ``select_on``, which would blame itself for it).
        ValueError: every target's ``weight`` is 0 (nothing would be trained).
    """
    example = "e.g. [DecodingTarget('ry', 'circular'), DecodingTarget('x', 'regression')]"
    if not isinstance(targets, (list, tuple)):
        raise TypeError(f"targets: expected a list of DecodingTarget(name, kind), {example}, got "
                        f"{type(targets).__name__} {targets!r}")
    bad = [t for t in targets if not isinstance(t, DecodingTarget)]
    if bad:
        raise TypeError(f"targets: expected a list of DecodingTarget(name, kind), {example}; got "
                        f"{type(bad[0]).__name__} {bad[0]!r} in it (hf_neuroformer.decoding.infer_kind(recording, "
                        "name) gives a behaviour series' default kind)")
    if not targets:
        raise DecodingTargetError("targets: expected at least one DecodingTarget")
    if all(t.weight == 0 for t in targets):
        raise ValueError(f"targets: every weight is 0 ({ {t.label: t.weight for t in targets} }); the loss would be 0 "
                         "and the heads would stay as initialised; give at least one target a weight > 0")
    return list(targets)


def _check_same_classes(before: Sequence[dict], tdicts: Sequence[dict], model_dir) -> None:
    """Refuse to continue fine-tuning a decoder (``before``: its ``config.decoding_targets``) whose
    classification heads were trained on other class labels than those of this recording's
    training split (``tdicts``): its head output ``i`` means ``before[j]["classes"][i]``, so
    loading it for other classes silently relabels them (classes [0, 1, 2] read as [1, 2, 3]),
    and another number of classes failed inside transformers with a size-mismatch RuntimeError.

    Raises:
        ValueError: names the target, the decoder's classes and this training split's.
    """
    for old, new in zip(before or [], tdicts):
        if new["kind"] != "classification":
            continue
        now = [_scalar_label(c) for c in new["classes"]]
        if old.get("classes") is None:  # a config without its class labels: only the head's width can be compared
            had = f"{old.get('num_classes')} classes (labels not recorded)"
            differ = old.get("num_classes") != len(now)
        else:
            had = [_scalar_label(c) for c in old["classes"]]
            differ = had != now
            had = f"the classes {had}"
        if differ:
            raise ValueError(
                f"model_dir: {str(model_dir)!r} is a decoder whose head for {target_label(new['name'], new.get('column'))!r} "
                f"was trained on {had}, but this recording's training windows hold the classes {now}; its "
                "head outputs would be read as other classes. Fine-tune the pretrained model it came from (neuroformer "
                "train output), or pass --from-scratch (from_scratch=True)")


def _check_same_regression_loss(before: Sequence[dict], targets: Sequence[DecodingTarget], model_dir) -> None:
    """Continuing a fine-tuned decoder (``before``: its ``config.decoding_targets``, in the order of
    ``targets``): a regression head is one output with MSE and ``num_bins`` outputs with HL-Gauss, so
    another loss or bin count than the saved one's would need another head; the loading then refused
    the decoder as if its config.json and weights were of different models, which they were not.
    Another ``hl_gauss_sigma_ratio`` reshapes nothing and is taken.

    Raises:
        ValueError: naming ``model_dir``, the target and the saved and asked loss (and bins)."""
    def said(loss, bins):
        return f"loss={loss!r}" + (f", num_bins={bins}" if loss == "hl_gauss" else "")

    for old, t in zip(before or [], targets):
        if t.kind != "regression" or old.get("kind") != "regression":
            continue
        had, now = (old.get("loss", "mse"), old.get("num_bins")), (t.loss, t.num_bins)
        if had != now:
            raise ValueError(
                # named by --regression-loss on the command line ("targets:" named no flag of the command)
                f"targets (CLI: --regression-loss): {str(model_dir)!r} is a fine-tuned decoder whose head for "
                f"{t.label!r} was trained with "
                f"{said(*had)}; {said(*now)} would need another head, so its trained one could not be loaded. "
                "Fine-tune the pretrained model it came from (neuroformer train output) with this loss, or pass "
                "--from-scratch (from_scratch=True)")


def _keep_saved_standardisation(before: Sequence[dict], tdicts: Sequence[dict]) -> List[int]:
    """Continue fine-tuning a decoder (``before``: its ``config.decoding_targets``) with the
    regression statistics it was trained with: its head predicts ``(value - mean) / std`` of those,
    so the new data's ``mean`` / ``std`` (another fraction, epoch or recording) silently shifted
    and rescaled every prediction of the saved decoder, before a step was taken. ``tdicts`` (this
    run's entries, in the same order) is changed in place; a decoder saved without them keeps
    this run's. An HL-Gauss head (``"loss": "hl_gauss"`` in both, the same ``num_bins``) keeps its
    saved ``bin_range`` too: its logits are over those bins. Returns the positions in ``tdicts`` of
    the entries given the saved statistics."""
    kept = []
    for i, (old, new) in enumerate(zip(before or [], tdicts)):
        if new["kind"] == "regression" and old.get("mean") is not None and old.get("std") is not None:
            new["mean"], new["std"] = float(old["mean"]), float(old["std"])
            kept.append(i)
            if (old.get("loss") == new.get("loss") == "hl_gauss" and old.get("num_bins") == new.get("num_bins")
                    and old.get("bin_range") is not None):
                new["bin_range"] = [float(v) for v in old["bin_range"]]
    return kept


def saved_metric(model_dir, key: str):
    """``key`` of ``model_dir/metrics.json`` (what ``neuroformer finetune`` wrote); None when the
    directory has no such file or key, or the file is not a JSON object (a decoder from the Hub,
    one fine-tuned before the key existed)."""
    try:
        return json.loads((Path(model_dir) / "metrics.json").read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def saved_train_windows_used(model_dir) -> Optional[tuple]:
    """``(first, last)`` start (s) of the training windows a decoder was fitted on
    (``train_windows_used_s`` of ``model_dir/metrics.json``); None where it is missing or not two
    ordered finite numbers (a decoder from the Hub, one fine-tuned before the key existed)."""
    value = saved_metric(model_dir, "train_windows_used_s")
    if (isinstance(value, list) and len(value) == 2 and all(
            is_finite_number(v) for v in value) and value[0] <= value[1]):
        return float(value[0]), float(value[1])
    return None


def _train_windows_used(train_ds, full_train_ds, decoder_dir=None) -> list:
    """``[first, last]`` start (s) of the training windows fitted (``metrics.json``'s
    ``train_windows_used_s``): those of ``train_ds`` (a few-shot block of ``full_train_ds``), and,
    continuing the decoder in ``decoder_dir``, those it was fitted on before (its
    :func:`saved_train_windows_used`; all of ``full_train_ds`` where it does not say): a decoder
    fitted on every training window and continued with ``fraction`` 0.3 had 70 % of them labelled
    ``"train_unused"`` by ``neuroformer decode``, never fitted, though the decoder was fitted on them."""
    starts = column_values(train_ds, "window_start")
    first, last = float(starts.min()), float(starts.max())
    if decoder_dir is not None:
        earlier = saved_train_windows_used(decoder_dir)
        if earlier is None:
            full = column_values(full_train_ds, "window_start")
            earlier = float(full.min()), float(full.max())
        first, last = min(first, earlier[0]), max(last, earlier[1])
    return [first, last]


def _scalar_label(value):
    """A class label as a plain Python number (``1.0`` and ``np.int64(1)`` compare as ``1``); a bool
    stays a bool (a bool trial column's classes; ``True == 1``, so they compare as the same class)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    v = float(value)
    return int(v) if v.is_integer() else v


def target_notes(targets: Sequence[DecodingTarget], report: dict, train_ds, fraction: float,
                 saved_std: Optional[Dict[str, float]] = None, validation=None,
                 selected_on_loss: bool = False, selection: Optional[str] = None) -> Dict[str, str]:
    """``{target name: note}`` for the targets that the training windows used (``train_ds``, e.g. a
    few-shot block) give nothing to learn from: a regression target with one value (its sd,
    0, is replaced by 1 for standardising; a continued decoder's saved sd, ``saved_std``
    {target name: sd}, is used instead and named) or a classification target with one class of the
    train split's. Fine-tuning goes on (the head learns a constant, as the baselines fit a
    constant prediction); :func:`finetune` warns with each note and writes them to
    ``metrics.json`` (``target_notes``). A circular target gets one when its training angles
    are all one angle (resultant length 1, each within 1e-12 rad of the first, ``-pi`` and ``pi``
    the same angle): the head can only learn that angle. Angles that barely move (resultant
    length near 1 but spread) get none, as a regression target with a small sd gets none.

    A classification target whose training windows used lack some of the train split's classes
    gets a note too (the one-class note says it as well). Weighted ``"balanced"``, those classes'
    weight is 0 (:func:`~hf_neuroformer.decoding.balanced_class_weights`), so the validation and
    test losses leave out their windows, as the baselines' early stopping leaves out classes never
    fitted (a class never trained on would steer the choice to the checkpoint whose untrained
    logit for it training has pushed down least). Unweighted (``class_weight`` None), the losses
    count their windows, whose loss only grows as training goes on. ``validation`` (the
    validation split's dataset) gives how many of its windows with a value are those classes';
    ``selection`` (``metric_for_best_model``: ``"loss"`` or ``"<target>/<metric>"``; or
    ``selected_on_loss``) what chose the checkpoint: the note says the validation loss chose it
    without them (balanced) or with them (unweighted), and that this target's accuracy or
    balanced accuracy chose it scoring them too (their recall is what their untrained logit
    still gives, so it can favour a less-trained checkpoint).

    Raises:
        DecodingTargetError: a target with no value in any of ``train_ds``'s windows (named, with
            ``fraction``; :func:`~hf_neuroformer.decoding.training_values`). :func:`finetune` refuses
            it before, in :func:`~hf_neuroformer.decoding.target_dicts`."""
    notes = {}
    n = len(train_ds)
    on_loss = selected_on_loss or selection == "loss"
    for t in targets:
        v = training_values(train_ds, t, fraction)  # the windows with a value of this target (NaN: kept for another)
        used = f"{count_noun(n, 'training window')} used" if v.size == n else f"{v.size} of the {n} training windows used with a value"
        head = f"target {t.label!r}: the {used} (fraction {fraction:g}) {'holds' if v.size == 1 else 'hold'}"
        if t.kind == "circular":
            if v.size and float(np.max(np.abs(np.angle(np.exp(1j * (v - v[0])))))) <= 1e-12:
                r = float(np.hypot(np.mean(np.cos(v)), np.mean(np.sin(v))))
                notes[t.label] = (f"{head} one angle ({float(v[0]):.4f} rad, resultant length {r:.6g}), so the head can "
                                  "only learn that angle; use a larger fraction")
        elif t.kind == "regression" and float(np.std(v)) <= 1e-12:
            how = (f"standardised with the continued decoder's saved sd {saved_std[t.label]:g}"
                   if saved_std and t.label in saved_std else "standardised with sd 1")
            notes[t.label] = (f"{head} one value ({float(v[0]):g}), so it is {how} and the head can only "
                             "learn a constant; use a larger fraction")
        elif t.kind == "classification":
            classes = report["targets"][t.label]["classes"]
            present = np.unique(v).astype(np.int64)
            absent = [c for i, c in enumerate(classes) if i not in present]
            said = None  # what is said of the absent classes' windows in the losses and the selection
            if absent:
                where = ""
                if validation is not None:
                    y = column_values(validation, t.column_name)
                    y = y[np.isfinite(y)]
                    where = f" ({int((~np.isin(y, present)).sum())} of the {y.size} validation windows)"
                of_them = "" if present.size > 1 else f" of the other classes {absent}"
                if t.class_weight == "balanced":
                    said = (f"{'their balanced class weight' if of_them == '' else 'the balanced class weight' + of_them} "
                            f"is 0, so the validation and test losses leave out their windows{where}, as the baselines' "
                            "early stopping leaves out classes never fitted"
                            + ("; the checkpoint is chosen on the validation loss without them" if on_loss else ""))
                else:  # unweighted: a never-trained class's loss only grows as training pushes its logit down
                    said = (f"unweighted (class_weight None), the validation and test losses count "
                            f"{'their windows' if of_them == '' else 'the windows' + of_them}{where}, whose loss only "
                            "grows as training pushes down the logits of classes never trained on (the baselines' "
                            "early stopping leaves out classes never fitted)"
                            + ("; the checkpoint is chosen on the validation loss with them, which favours "
                               "less-trained checkpoints" if on_loss else ""))
                if selection is not None and selection.startswith(f"{t.label}/"):
                    # accuracy / balanced accuracy: their windows are right only where the untrained logit still wins
                    said += (f"; the checkpoint is chosen on the validation {selection.rpartition('/')[2]}, which "
                             "scores their windows too: their recall is what their untrained logits still give, so "
                             "it can favour a less-trained checkpoint"
                             + (" (a choice on the loss, select_on='loss' / --select-on loss, leaves them out)"
                                if t.class_weight == "balanced" else ""))
            if present.size < 2:
                notes[t.label] = (f"{head} one class ({classes[int(v[0])]}) of the train split's {classes}, so the "
                                  "head can only learn that class" + (f"; {said}" if said else "")
                                  + "; use a larger fraction")
            elif said:
                notes[t.label] = (f"{head} no window of "
                                  f"{'class' if len(absent) == 1 else 'classes'} {absent} of the train split's {classes}: {said}; "
                                  "use a larger fraction")
    return notes


def check_output_not_model(output_dir, model_dir, label: Callable[[str], str] = lambda name: name) -> None:
    """Refuse an ``output_dir`` that is ``model_dir`` itself (after resolving links and ``..``):
    the decoder would be written over the checkpoint it is fine-tuned from, ``overwrite`` or not.

    Args:
        label: names the two in the message (``neuroformer finetune``: ``--output-dir``, ``--model``).

    Raises:
        ValueError: naming both and what to do.
    """
    if model_dir is not None and Path(output_dir).resolve() == Path(model_dir).resolve():
        raise ValueError(
            f"{label('output_dir')}: {str(output_dir)!r} is {label('model_dir')}, the model being fine-tuned; the decoder "
            f"would replace its weights, config, metrics and splits.json; choose another {label('output_dir')}"
        )


def check_finetune_output_dir(output_dir, overwrite: bool = False) -> Path:
    """:func:`~hf_neuroformer.training.check_output_dir`, and refuse an ``output_dir/checkpoints``
    folder whose content fine-tuning would delete: ``Trainer`` writes its checkpoints there and
    fine-tuning removes the folder when it ends, so the resumable checkpoints of an interrupted
    ``neuroformer train`` into the same folder (no model written yet) were deleted without a word.
    The ``checkpoint-*`` folders an interrupted fine-tuning left are its own and are replaced.

    Raises:
        FileExistsError: naming the folder and what it holds: ``train``'s checkpoints (unless
            ``overwrite``), or anything that is no checkpoint
            (:func:`~hf_neuroformer.training.check_checkpoint_folder`, with or without ``overwrite``).
    """
    out = check_output_dir(output_dir, overwrite)
    check_checkpoint_folder(out, "fine-tuning deletes the folder when it ends")
    ckpt = out / CHECKPOINT_DIR
    # train's resumable checkpoints (Trainer's checkpoint-* of an interrupted finetune are its own, not resumable)
    held = sorted(p.name for p in ckpt.glob("*step-*")) if ckpt.is_dir() else []
    if held and not overwrite:
        raise FileExistsError(
            f"output_dir: {str(ckpt)!r} holds checkpoints of an earlier run ({', '.join(held[:3])}"
            f"{' ...' if len(held) > 3 else ''}), which fine-tuning would delete; choose another directory, or pass "
            "--overwrite (overwrite=True) to replace them")
    return out


#: :func:`hl_gauss_crowded_notes`: the share of the training values counted ("most of the values").
HL_GAUSS_CROWDED_VALUE_SHARE = 0.9
#: :func:`hl_gauss_crowded_notes`: the share of an HL-Gauss head's bins (of the distinct training values, when
#: fewer) below which holding :data:`HL_GAUSS_CROWDED_VALUE_SHARE` of the values is crowded.
HL_GAUSS_CROWDED_BIN_SHARE = 0.1


def hl_gauss_crowded_notes(targets: Sequence[DecodingTarget], tdicts: Sequence[dict], train_ds,
                           fraction: Optional[float] = None) -> Dict[str, str]:
    """Warnings for HL-Gauss regression targets whose bins crowd most training values into a few bins.

    :func:`~hf_neuroformer.decoding.target_dicts` spans a head's ``num_bins`` equal bins over the
    standardised training values' raw min and max
    (:func:`~hf_neuroformer.argument_checks.hl_gauss_bin_range`), so one far outlier stretches the
    bins and nearly all other values share one or two of them: the head then cannot tell those
    values apart (its prediction is the expected bin centre). Counted here over the training windows
    used (``train_ds``, the values beyond saved bins counted in the outer bins, as
    :func:`~hf_neuroformer.modeling_neuroformer.hl_gauss_target_distribution` clips them): the fewest
    bins holding :data:`HL_GAUSS_CROWDED_VALUE_SHARE` (90 %) of the values; a note when that is fewer
    than :data:`HL_GAUSS_CROWDED_BIN_SHARE` (10 %) of ``num_bins`` (of the number of distinct values,
    when fewer: a handful of values, or one value, is not crowded; a normal spread of 1000 values
    puts 90 % of them in about half of 64 bins). The bins themselves are not changed (runs already made with them
    must reload the same). :func:`finetune` warns with each note and writes it to ``metrics.json``
    (``target_notes``).

    Args:
        targets: the decoding targets; ``tdicts`` their :func:`~hf_neuroformer.decoding.target_dicts`
            entries (``mean``, ``std`` and ``bin_range`` in standardised units, the target's ``unit``).
        train_ds: the training windows used; ``fraction``: the few-shot share, named in errors.

    Returns:
        target label -> the warning: how many of the ``num_bins`` bins hold 90 % of the training
        values, the bins' span and width and the values' extremes (min, max, 5th and 95th
        percentiles) in the target's units. ``{}`` when no HL-Gauss target is crowded.

    Raises:
        DecodingTargetError: a target without a value in ``train_ds``
            (:func:`~hf_neuroformer.decoding.training_values`).
    """
    from .decoding import training_values

    notes = {}
    for t, d in zip(targets, tdicts):
        if d.get("loss") != "hl_gauss" or d.get("bin_range") is None:
            continue
        v = training_values(train_ds, t, fraction)
        mean, std, k = float(d["mean"]), float(d["std"]), int(d["num_bins"])
        lo, hi = (mean + std * float(e) for e in d["bin_range"])
        counts, _ = np.histogram(np.clip(v, lo, hi), bins=k, range=(lo, hi))
        need = math.ceil(HL_GAUSS_CROWDED_VALUE_SHARE * v.size)
        used = int(np.searchsorted(np.cumsum(np.sort(counts)[::-1]), need)) + 1  # the fewest bins holding `need`
        fill = min(k, int(np.unique(v).size))  # the most bins the values could hold (a few values: few bins)
        if used >= HL_GAUSS_CROWDED_BIN_SHARE * fill:
            continue
        unit = f" {d['unit']}" if d.get("unit") else ""
        p5, p95 = (float(x) for x in np.percentile(v, [5, 95]))
        notes[t.label] = (
            f"target {t.label!r}: {HL_GAUSS_CROWDED_VALUE_SHARE:.0%} of the {v.size} training values used lie in "
            f"{used} of its {k} HL-Gauss bins (fewer than {HL_GAUSS_CROWDED_BIN_SHARE:.0%} of them): the bins "
            f"[{lo:g}, {hi:g}]{unit}, each {(hi - lo) / k:g}{unit} wide, span the training values' extremes "
            f"(min {float(v.min()):g}, max {float(v.max()):g}{unit}; 5th-95th percentile {p5:g} .. {p95:g}{unit}), "
            "so the head can hardly tell most values apart; the bins are kept. Check the extreme values (an "
            "outlier or a tracking error), or decode the target with loss 'mse'")
    return notes


def hl_gauss_clipped_notes(targets: Sequence[DecodingTarget], tdicts: Sequence[dict], kept: Sequence[int], train_ds,
                           fraction: Optional[float] = None) -> Dict[str, str]:
    """Warnings for a continued HL-Gauss decoder whose training windows hold values beyond its saved
    bins: :func:`~hf_neuroformer.modeling_neuroformer.hl_gauss_target_distribution`
    clips each such value to the outer edge, so the head is trained towards the edge and cannot
    predict beyond it. :func:`~hf_neuroformer.decoding.target_dicts` places the bins of a new head
    over every training value (only validation / test values can lie outside those); the saved
    bins are kept, since the loaded logits are over them, so the values they miss are counted here.
    :func:`finetune` warns with each note and writes it to ``metrics.json`` (``target_notes``).

    Args:
        targets: the decoding targets; ``tdicts`` their :func:`~hf_neuroformer.decoding.target_dicts`
            entries (``mean``, ``std`` and ``bin_range`` in standardised units, the target's ``unit``).
        kept: the positions in ``tdicts`` that hold the saved decoder's ``mean`` / ``std`` /
            ``bin_range`` (those whose saved head was loaded); only these are checked.
        train_ds: the training windows used; ``fraction``: the few-shot share, named in errors.

    Returns:
        target label -> the warning: how many of the training windows used lie below / above the
        bins, the bins and the values' range in the target's units. ``{}`` when none does.

    Raises:
        DecodingTargetError: a target of ``kept`` without a value in ``train_ds``
            (:func:`~hf_neuroformer.decoding.training_values`).
    """
    from .decoding import training_values

    notes = {}
    for i in kept:
        t, d = targets[i], tdicts[i]
        if d.get("loss") != "hl_gauss" or d.get("bin_range") is None:
            continue
        v = training_values(train_ds, t, fraction)
        mean, std = float(d["mean"]), float(d["std"])
        lo, hi = (mean + std * float(e) for e in d["bin_range"])
        below, above = int((v < lo).sum()), int((v > hi).sum())
        if below or above:
            unit = f" {d['unit']}" if d.get("unit") else ""
            notes[t.label] = (
                f"target {t.label!r}: {below + above} of the {v.size} training windows used hold values outside the "
                f"continued decoder's saved HL-Gauss bins [{lo:g}, {hi:g}]{unit} ({below} below, {above} above; the "
                f"values span [{float(v.min()):g}, {float(v.max()):g}]{unit}): their targets are clipped to the outer "
                "bins and the head cannot predict beyond them. To place the bins over this data, fine-tune the "
                "pretrained model it came from (neuroformer train output) or pass --from-scratch (from_scratch=True)")
    return notes


def finetune(
    model_dir,
    recording,
    targets: Sequence[DecodingTarget],
    *,
    output_dir,
    fraction: float = 1.0,
    seed: int = 0,
    max_steps: int = 500,
    from_scratch: bool = False,
    config: Optional[NeuroformerConfig] = None,
    plan: Optional[SplitPlan] = None,
    window_mask: Optional[Callable] = None,
    batch_size: int = 32,
    gradient_accumulation_steps: int = 1,
    learning_rate: float = 5e-4,
    weight_decay: float = 0.01,
    warmup_steps: int = 0,
    eval_steps: Optional[int] = None,
    generative_loss_weight: float = 0.0,
    freeze_backbone_steps: int = 0,
    ema_decay: Optional[float] = None,
    spike_dropout: float = 0.0,
    anchor_decay: Optional[float] = None,
    config_overrides: Optional[Dict[str, object]] = None,
    select_on: Optional[str] = "auto",
    overwrite: bool = False,
    keep_checkpoints: bool = False,
    progress: bool = False,
    log_evaluations: bool = False,
    step_bar: bool = False,
    ci_block_s: Optional[float] = None,
    ci_block_s_option: str = "ci_block_s=",
    learning_rate_option: str = "learning_rate",
    write_figures: bool = True,
    **training_args,
) -> Dict[str, object]:
    """Fine-tune (or train from scratch) a behaviour decoder and score it once on the test split.

    Args:
        model_dir: a pretraining checkpoint directory (``neuroformer train`` output: config,
            weights, tokenizer, optionally ``splits.json``), or None to train from scratch with
            ``config``.
        recording: the :class:`~hf_neuroformer.recording.SpikeRecording` holding the spikes and
            the targets (its units must be in the checkpoint's tokenizer).
        targets: :class:`~hf_neuroformer.decoding.DecodingTarget` list (several = multitask,
            losses summed with each target's ``weight``). A target without ``column`` on a 2-D
            behaviour series ``(n_samples, c)`` is decoded column by column, as ``c`` targets
            ``<name>[0]`` .. ``<name>[c-1]`` (:func:`~hf_neuroformer.decoding.expand_columns`,
            as ``neuroformer finetune --target position`` does; the given 2-D target is not
            changed); so a decoder fine-tuned for ``position`` is refined with the same list.
        output_dir: receives ``config.json`` (with ``decoding_targets``), ``model.safetensors``,
            the tokenizer, ``metrics.json``, ``decoding_report.json``, ``splits.json``,
            ``training_log.json`` (Trainer's ``log_history``: every ``eval_steps`` steps an entry
            with ``loss``, the mean of the step losses of that logging interval (the steps since
            the entry before, not a running mean), ``grad_norm`` and ``learning_rate``, and one with
            the validation pass's ``eval_*`` figures; after training one with ``train_loss``, the
            mean of every step loss of the run since step 0 (those after the last logged interval
            included), with ``train_runtime``; last, the kept checkpoint's ``validation_*``
            figures; the test figures are in ``metrics.json`` only) and, when the test
            split has windows, ``test_decoding.png``
            (decoded vs recorded behaviour on them, :func:`~hf_neuroformer.plotting.plot_decoding`;
            not with ``write_figures=False``).
        fraction: share of the training windows used, as the first contiguous block in time
            (few-shot protocol), in ``(0, 1]``.
        seed: seed of the head (and, from scratch, backbone) initialisation, shuffling and dropout,
            in ``[0, 2**32 - 1]`` (``set_seed`` seeds numpy's legacy generator).
        max_steps: optimisation steps.
        from_scratch: with ``model_dir``: its architecture, tokenizer and split plan, but random
            weights (the few-shot comparison); a decoder's ``model_dir`` serves any targets then.
            Without it, a decoder's ``model_dir`` is fine-tuned further: the same targets, and its
            regression targets keep the ``mean`` / ``std`` it was trained with (its head's scale).
        config: architecture and windows when ``model_dir`` is None (default
            :class:`NeuroformerConfig`); ignored otherwise.
        plan: split plan; default as in the module docstring.
        window_mask: see :func:`~hf_neuroformer.decoding.build_decoding_datasets`.
        batch_size: windows per optimisation step (= per-device batch x accumulation steps).
        gradient_accumulation_steps: micro-batches per step (must divide ``batch_size``).
        learning_rate, weight_decay, warmup_steps: AdamW with a linear warm-up over ``warmup_steps``
            (fewer than ``max_steps``), then a linear decay.
        eval_steps: validation (and checkpoint) every this many steps; default
            ``max(1, max_steps // 10)``.
        generative_loss_weight: ``config.decoding_generative_loss_weight`` (auxiliary
            next-spike loss; default 0 = off).
        freeze_backbone_steps: for the first that many steps only the decoder's new modules (heads,
            attentive read-out) train and the backbone stays as loaded; then everything trains
            (linear probing then fine-tuning, see :func:`build_trainer`); ``max_steps`` = the
            backbone never trains. Default 0 (everything trains from step 0). From scratch the
            frozen backbone is the random one. Recorded in ``metrics.json``.
        ema_decay: None (default, off) or a decay in (0, 1): every validation, and so the checkpoint
            selection, the saved decoder and its test metrics, uses an exponential moving average
            of the weights over the optimisation steps (bias-corrected, :class:`WeightAverage`;
            0.99 averages over about the last 100 steps) instead of the step's own weights.
            Recorded in ``metrics.json`` -> ``training`` -> ``ema_decay`` (absent when off).
        spike_dropout: 0 (default, off) or a probability in (0, 1): each spike token of the current and
            past windows of every training batch is dropped independently with it, drawn anew each
            step (:class:`SpikeDropout`; augmentation of the training windows only: validation, test
            and the baselines see the windows whole). Recorded in ``metrics.json`` -> ``training`` ->
            ``spike_dropout`` with ``spike_dropout_tokens`` (spike tokens the training batches held and
            how many were dropped; absent when off).
        anchor_decay: None (default, off) or a number > 0 with ``learning_rate * anchor_decay < 1``:
            after every optimiser step each parameter of the pretrained model (not the new heads and
            read-out) is pulled towards its pretrained value, ``w <- w - lr_t * anchor_decay * (w - w0)``
            (:class:`PretrainedAnchor`; L2-SP, Li et al. ICML 2018, in AdamW's decoupled form); from
            scratch ``w0`` is the random initialisation. Recorded in ``metrics.json`` -> ``training`` ->
            ``anchor_decay`` (absent when off).
        config_overrides: fine-tuning settings of the decoder's config that leave the backbone's
            weights loadable, ``{key: value}`` with keys among :data:`FINETUNE_CONFIG_KEYS`
            (dropout rates, ``decoding_pool``, ``decoding_head_hidden_size``, ``window_stride``:
            the step of the training windows only), checked by :func:`apply_config_overrides`
            before anything is read or written; default none.
        select_on: the validation metric that selects the checkpoint (see
            :func:`selection_metric`): ``"auto"`` (default; one target: balanced accuracy /
            R² / mean angular error by kind; several targets: the loss), ``"loss"``, or
            ``"<target>/<metric>"`` (a column's label: ``position[1]/r2``); checked once the
            targets are known, before any window is tokenized or the model is read.
        overwrite: replace a model already in ``output_dir``. That model is left whole and untouched
            until the new decoder is saved over it in one transaction
            (:func:`~hf_neuroformer.training.save_atomically`), so a run that stops before then keeps
            it. When training starts, the run writes the record
            :data:`~hf_neuroformer.run_record.UNFINISHED_FINETUNE` into ``output_dir``
            (:func:`~hf_neuroformer.run_record.write_unfinished_run`: its start, pid and host, the model files already
            there, the ``checkpoint-*`` folders already in ``output_dir/checkpoints``); the save of the
            decoder removes it in the same transaction. A run stopped by an exception (Ctrl-C
            included) removes its checkpoints and the record, leaving the folder as it was (the record
            stays with ``keep_checkpoints``, naming the kept checkpoints as that run's); a run killed
            outright (SIGKILL, power cut) leaves both, and :func:`load_decoder` (every command that
            reads the decoder) then warns that the decoder loaded is the earlier one and names the
            checkpoints that belong to the unfinished run. The next fine-tuning into the folder
            replaces the record. The main process holds the lock
            of ``output_dir`` for the run, as ``train`` does
            (:func:`~hf_neuroformer.training.output_dir_lock`): another run into it raises
            :class:`~hf_neuroformer.training.OutputDirLockedError` before anything is read. The
            lock is taken first, before any setting is checked: it creates ``output_dir`` (and the
            folders above it) if missing and writes its lock file there; both are removed again
            when a check fails. "Before anything is read or written" below means: after the lock
            only.
        keep_checkpoints: keep ``output_dir/checkpoints`` (Trainer's) after training.
        progress: Trainer's progress bars (and transformers' per-checkpoint save bars).
        log_evaluations: print one line per evaluation (step, train loss: the mean step loss of
            the logging interval ending there, Trainer's ``loss``; validation loss, the
            selection metric), as ``neuroformer train`` does; ``neuroformer finetune`` sets it.
        step_bar: a bar over the optimisation steps, as ``neuroformer train`` shows, and one over
            the batches of each evaluation (the package's bars: redrawn at most every 30 s into a
            log file; ``TQDM_DISABLE=1`` turns them off), the evaluation lines written above them;
            ``neuroformer finetune`` sets it. Not with ``progress``, whose Trainer bars count the
            same steps and batches.
        ci_block_s: length (s) of the blocks of consecutive test windows that the 95 %
            block-bootstrap intervals of the test metrics resample in a time split (None: the
            default, 10 s; a trial split's blocks are its trials, and a length given there, 10
            included, is warned to have no effect); recorded as ``test/ci95_block_s``. With fewer than
            5 blocks an interval is null and its reason names a shorter length that gives 5
            (:func:`decoding_intervals`).
        ci_block_s_option: how that reason names the setting (``"ci_block_s="``, the default;
            ``neuroformer finetune`` passes ``"--ci-block-s"``).
        learning_rate_option: how the error of a diverged run, and the warnings of a validation loss
            NaN at every evaluation or of NaN test predictions, name the learning rate to lower
            (``"learning_rate"``, the default; ``neuroformer finetune`` passes ``"--learning-rate"``).
        write_figures: draw and write ``test_decoding.png`` (default), as ``train(write_figures=...)``.
            False writes none (and, as always, removes one an earlier run left in ``output_dir``):
            drawing and saving it with matplotlib took about a tenth of a short CPU run (a profile of
            a 4-step fine-tune of a tiny decoder), wasted in sweeps and tests that read only the metrics.
            The metrics, the test predictions table and every other file are the same either way.
        **training_args: more ``transformers.TrainingArguments`` fields.

    Returns:
        The dict written to ``metrics.json``: ``test/<target>/<metric>`` and
        ``validation/<target>/<metric>`` (decoding metrics of the selected checkpoint; the
        validation ones are those of the evaluation that selected it, not scored again after
        training where that gives the same floats, see ``_ValidationScores``),
        ``test/loss``, ``validation/loss``, ``best_step``, ``total_steps``, ``init``
        (``"pretrained"`` or ``"scratch"``), ``checkpoint_selection``, ``model_dir``, ``fraction``, ``seed``,
        ``n_train_windows`` (fitted) and ``n_train_windows_full`` (before ``fraction``),
        ``split_plan_source``, ``targets``, ``config_overrides``, ``target_notes`` (:func:`target_notes`: targets without spread in
            the training windows used, or classification targets lacking classes there, whose windows
            the losses leave out (balanced) or count (unweighted) and a choice on the target's metric
            scores; HL-Gauss targets whose training values crowd into a few bins,
            :func:`hl_gauss_crowded_notes`, or lie beyond a continued decoder's saved bins,
            :func:`hl_gauss_clipped_notes`; also warned about), ``load_report`` (missing / unexpected keys of the checkpoint
        load), ``decoding_report`` (window counts and drops per split, target statistics), ``recording``
        (the ``repr`` of ``recording``, as ``train`` records it: session, units, spikes, time domain in s,
        epochs, trials, behaviour series; shown on the model card).

    Raises:
        FileExistsError: ``output_dir`` holds a model, or a ``checkpoints`` folder that is not empty
            (an interrupted ``train`` run's resumable checkpoints), and ``overwrite`` is False.
        ValueError: ``output_dir`` is ``model_dir`` (overwrite or not: the input checkpoint is kept).
        FileNotFoundError: ``model_dir`` is not a folder holding config.json, model.safetensors (not
            needed with ``from_scratch``), vocab.json and tokenizer_config.json.
        TypeError: ``targets`` is not a list (or tuple) of ``DecodingTarget``, or ``recording`` is not a
            :class:`~hf_neuroformer.recording.SpikeRecording` (a path: the message says to read it with
            :func:`hf_neuroformer.io.load_recording`; before anything but the lock is written).
        ValueError: ``model_dir`` is a decoder fine-tuned for other targets than ``targets``, or for the
            same ones in another order (its heads are read in its order; the message gives that order).
        ValueError: ``recording`` has units that ``model_dir``'s vocabulary lacks (names them and
            the model's session), or every target's ``weight`` is 0.
        ValueError: ``model_dir``'s tokenizer does not match its ``config.json``
            (:func:`~hf_neuroformer.tokenization_neuroformer.check_tokenizer_matches_config`): a
            tokenizer saved there after ``add_units`` (its new units have no embedding in the model),
            a smaller vocabulary or other window settings; naming ``model_dir`` and both sizes,
            before anything is tokenized.
        ValueError: ``model_dir`` is a fine-tuned decoder and ``config_overrides`` changes a setting that
            shapes its heads (:data:`HEAD_SHAPE_KEYS`), or a regression target's ``loss`` / ``num_bins``
            differs from its saved head's, so they could not be loaded.
        ValueError: ``model_dir`` is a fine-tuned decoder whose classification head was trained on
            other class labels than this recording's training windows hold (its outputs would be
            read as other classes).
        DecodingTargetError: a target whose behaviour series has no sample in ``recording`` (an epoch
            it was not recorded in; :func:`~hf_neuroformer.decoding.check_targets_sampled`, before
            anything but the lock is written).
        DecodingTargetError: a target missing from the recording (lists the available ones),
            a column out of range, two targets reading one column (``position`` and
            ``position[0]``), ... (a class label of validation / test that train lacks is no error:
            its windows are left out of the target's metrics, counted as ``n_unseen_class`` in
            ``decoding_report.json`` and warned about)
        ValueError: ``select_on`` naming no target or a metric its kind lacks (before anything
            is read or written).
        ValueError: ``from_scratch``, ``overwrite``, ``keep_checkpoints``, ``progress``, ``log_evaluations``,
            ``step_bar`` or ``write_figures`` not a ``bool`` (the text ``"False"`` is truthy; before anything is read or written).
        ValueError: bad ``fraction``, ``max_steps``, ``eval_steps``, ``batch_size``,
            ``gradient_accumulation_steps``, ``learning_rate``, ``weight_decay``, ``warmup_steps``,
            ``freeze_backbone_steps``, ``ema_decay``, ``spike_dropout``, ``seed`` (in ``[0, 2**32 - 1]``), ``anchor_decay`` (also with ``learning_rate``) or ``generative_loss_weight``, ``ci_block_s`` (all checked before anything but the lock is written),
            ``batch_size`` not a multiple of ``gradient_accumulation_steps``, ``config_overrides`` not a mapping, a key of it outside
            :data:`FINETUNE_CONFIG_KEYS` (or a value the config refuses), or no validation windows (for a
            target: none with a value of it).
        ValueError: ``freeze_backbone_steps`` > 0 with an ``lr_scheduler_type`` (``training_args``) whose
            schedule cannot be gated (:func:`check_freeze_schedule`; before anything but the lock is written).
        TypeError: a keyword argument that is neither ``finetune``'s own nor a
            ``transformers.TrainingArguments`` field (:func:`check_training_args`; before anything is read).
        ValueError: the run diverged: the kept decoder predicts NaN / inf on the validation windows or
            holds non-finite weights, and no evaluation found a finite checkpoint (names
            ``learning_rate``; nothing is written).
    """
    from transformers import set_seed

    with output_dir_lock(output_dir, "finetune"):
        # every setting is checked first, before anything is read or written; only the output-dir
        # lock above is taken before them (its lock file, and output_dir if it was missing, are
        # removed again when a check fails); a flag given as text ("False") was truthy
        for name, flag in (("from_scratch", from_scratch), ("overwrite", overwrite), ("keep_checkpoints", keep_checkpoints),
                           ("progress", progress), ("log_evaluations", log_evaluations), ("step_bar", step_bar),
                           ("write_figures", write_figures)):
            checked_bool(name, flag, owner="finetune", keyword=True)
        check_finetune_settings(max_steps=max_steps, batch_size=batch_size, gradient_accumulation_steps=gradient_accumulation_steps,
                                eval_steps=eval_steps, warmup_steps=warmup_steps, learning_rate=learning_rate,
                                weight_decay=weight_decay, generative_loss_weight=generative_loss_weight, fraction=fraction,
                                freeze_backbone_steps=freeze_backbone_steps)
        check_ema_decay(ema_decay)
        check_spike_dropout(spike_dropout)
        # set_seed (numpy's legacy generator) refused 2**32 or -1 only once the model and windows were read, unnamed
        check_training_seed(seed)
        check_anchor_decay(anchor_decay, learning_rate=learning_rate)
        check_freeze_schedule(freeze_backbone_steps, training_args.get("lr_scheduler_type", "linear"),
                              training_args.get("lr_scheduler_kwargs"))
        check_training_args(training_args)
        ci_block_s, block_s_asked = resolve_block_s(ci_block_s)
        # a path given as the recording failed as "'str' object has no attribute 'behaviour'" from expand_columns
        check_is_recording(recording)
        targets = check_targets(targets)
        # a 2-D series without a column: one target per column (position[0], position[1]), as the
        # command decodes it; every later step (the decoder's targets, the datasets, select_on) sees these
        targets = expand_columns(recording, targets)
        # a select_on naming no target (or a metric its kind lacks) fails now, not after tokenizing and loading
        selection_metric([{"name": t.name, "kind": t.kind, "column": t.column} for t in targets], select_on)
        # a series without samples in this recording (head direction in the sleep epoch) failed only after every window
        # was tokenized, as "no training window left" with the whole split report: refused here, as the command does
        check_targets_sampled(recording, targets)
        if model_dir is not None:  # an empty or missing folder read as a default config and an empty vocabulary
            check_model_dir(model_dir, "model_dir", weights=not from_scratch)
        check_output_not_model(output_dir, model_dir)
        from .io.output_folder import missing_folders

        created = missing_folders(output_dir)  # made by this run (a/b/c and a/b, a): removed again if it stops before saving
        out = check_finetune_output_dir(output_dir, overwrite)
        # what the checkpoints folder held before this run: a run that stops before it ends removes only the
        # checkpoints it wrote (it deleted the whole folder, train's resumable step-N checkpoints with it)
        ckpt_before = ({p.name for p in (out / CHECKPOINT_DIR).iterdir()} if (out / CHECKPOINT_DIR).is_dir()
                       else None)
        config_overrides = _override_keys(config_overrides)  # the values are checked once the config is read
        plan_source = "given"
        if model_dir is not None:
            model_dir = Path(model_dir)
            cfg = NeuroformerConfig.from_pretrained(model_dir)
            before = [(target_label(t["name"], t.get("column")), t["kind"]) for t in (cfg.decoding_targets or [])]
            wanted = [(t.label, t.kind) for t in targets]
            if before and before != wanted and not from_scratch:
                # its heads are shaped for other targets: loading them fails deep inside transformers (from
                # scratch nothing is loaded: its architecture, tokenizer and splits serve any targets)
                if sorted(before) == sorted(wanted):
                    # head i is the i-th target's: the same targets in another order were told to "give the same
                    # targets", which they were
                    raise ValueError(
                        f"model_dir: {str(model_dir)!r} is a decoder fine-tuned for {before}, in that order, and its "
                        f"heads are read in that order; the same targets were given in another order ({wanted}); give "
                        f"them in the decoder's order to continue fine-tuning it (--target "
                        f"{','.join(label for label, _ in before)} --kind {','.join(kind for _, kind in before)})")
                raise ValueError(
                    f"model_dir: {str(model_dir)!r} is a decoder fine-tuned for {before}, not for {wanted}; fine-tune the "
                    "pretrained model it came from (neuroformer train output) for new targets, give the same targets "
                    "to continue fine-tuning this one, or pass --from-scratch (from_scratch=True) for random weights"
                )
            tokenizer = NeuroformerTokenizer.from_pretrained(model_dir)
            # a tokenizer saved there after add_units (or another one): its new units' ids have no embedding in the
            # model, refused only at the first training step by the model's forward, after tokenizing and loading
            # (and a smaller vocabulary, whose ids name other units, trained without a word); as generation,
            # decode_windows and the likelihood refuse it, before anything is tokenized
            try:
                check_tokenizer_matches_config(tokenizer, cfg)
            except ValueError as e:
                raise ValueError(f"model_dir: {str(model_dir)!r}: its tokenizer does not match its config.json: {e}") from e
            # units the vocabulary lacks: named here, not as "call tokenizer.add_units" from the tokenizer
            check_recording_units(tokenizer, recording, flag="recording")
            if plan is None and (model_dir / "splits.json").is_file():
                plan = _plan_within(SplitPlan.read(model_dir / "splits.json"), recording, cfg)
                plan_source = "checkpoint splits.json"
                if plan is not None and plan.mode == "time":
                    _warn_time_outside_plan(plan, recording, cfg, model_dir)
                if plan is None:
                    warnings.warn(f"model_dir: the split plan of {str(model_dir)!r} leaves a split of this recording "
                                  "without windows; planning splits on this recording instead. If the model was "
                                  "pretrained on this recording, its new validation and test windows may hold spikes it "
                                  "was trained on, so their scores are not held out from pretraining (metrics.json: "
                                  "split_plan_source); fine-tune on the recording (and epoch) it was pretrained on, or "
                                  "give plan= (a SplitPlan whose splits each hold windows), to "
                                  "keep them apart", UserWarning, stacklevel=2)
        else:
            cfg = copy.deepcopy(config) if config is not None else NeuroformerConfig()
            tokenizer = NeuroformerTokenizer.from_config(cfg)
            tokenizer.add_units(recording)
            cfg.vocab_size = len(tokenizer)
            from_scratch = True
        # a decoder's heads (and read-out) are shaped by these: loading it with others failed in transformers
        heads_shaped_by = {k: getattr(cfg, k) for k in HEAD_SHAPE_KEYS} if cfg.decoding_targets and not from_scratch else {}
        # a bad value fails here, naming the field, before any tokenizing or writing
        config_overrides = apply_config_overrides(cfg, config_overrides)
        def width(k, v):  # decoding_head_hidden_size None means hidden_size
            return cfg.hidden_size if k == "decoding_head_hidden_size" and v is None else v

        changed = {k: (v, config_overrides[k]) for k, v in heads_shaped_by.items()
                   if k in config_overrides and width(k, config_overrides[k]) != width(k, v)}
        if changed:
            raise ValueError(
                f"config_overrides: {str(model_dir)!r} is a fine-tuned decoder whose heads were built for "
                + ", ".join(f"{k}={old!r}" for k, (old, _) in changed.items()) + "; "
                + ", ".join(f"{k}={new!r}" for k, (_, new) in changed.items())
                + " would need other heads, so its trained ones could not be loaded. Fine-tune the pretrained model it "
                  "came from (neuroformer train output) with this setting, or pass --from-scratch (from_scratch=True)")
        if heads_shaped_by:  # a fine-tuned decoder continued: its regression heads' widths follow their loss
            _check_same_regression_loss(cfg.decoding_targets, targets, model_dir)
        if plan is None:
            plan = plan_splits(recording, cfg, stacklevel=3)
            plan_source = "planned on this recording"
        # a modality no training window holds a value of: the config (and split plan) are the model's here, so the
        # advice of train (another split_seed, a config without the modality) cannot be followed
        remedy = None if model_dir is None else (
            f"the model {str(model_dir)!r} reads it, and the config is the model's (split plan: {plan_source}): fine-tune "
            "on a recording (or --epoch) where it was recorded during the training split, or a model trained without it")
        # the warnings of the split plan and windows point at finetune's caller (stacklevel 3)
        dsd, report = build_decoding_datasets(recording, tokenizer, cfg, plan, targets, window_mask=window_mask,
                                              modality_remedy=remedy, stacklevel=3)
        train_ds = fraction_of_train(dsd["train"], fraction)
        for split in SPLITS:  # as train() does: a model that never sees part of each window should say so
            r = report[split]
            if r["n_truncated_spikes"]:
                warnings.warn(
                    f"{split}: {r['n_truncated_spikes']} of {r['n_spikes']} current-window spikes truncated (windows longer "
                    f"than max_window_length={cfg.max_window_length} tokens); counted in "
                    "decoding_report.json", UserWarning, stacklevel=2)
            for name, k in r.get("n_truncated_modality_tokens", {}).items():
                if k:  # dropped without a word: train prints them, and so does this now
                    mod = cfg.modality(name)
                    warnings.warn(f"{split}: modality {name!r}: {k} {truncated_tokens_text(mod)} left out of the windows (the earliest); "
                                  "counted in decoding_report.json", UserWarning, stacklevel=2)
        # a classification target whose every validation label is one train lacks (a label per trial, such as a
        # trial number, is no class): the reason the split is empty for it, said before the report
        unseen = report["validation"].get("n_unseen_class", {})
        why = "".join(f"; {t.label}: its {unseen[t.label]} validation windows all hold classes the train split lacks (a "
                      "label unique to each trial or block, such as a trial number, is no class: decode it as kind "
                      "'regression', or merge labels)" for t in targets
                      if unseen.get(t.label) and report["validation"]["n_windows_target"][t.label] == 0)
        if len(dsd["validation"]) == 0:
            raise ValueError(f"validation split: no window left; the checkpoint is chosen on validation{why} "
                             f"(report: {report['validation']})")
        # several targets: one may have no value in any validation window kept for the others; its
        # validation metrics (the checkpoint's choice included) would be undefined
        unscored = [t.label for t in targets if report["validation"]["n_windows_target"][t.label] == 0]
        if unscored:
            raise ValueError(f"validation split: no window with a value of "
                             f"{'target' if len(unscored) == 1 else 'targets'} {unscored} (of the "
                             f"{len(dsd['validation'])} kept for the others); the checkpoint is chosen on validation: "
                             f"decode {'it' if len(unscored) == 1 else 'them'} on a recording or split plan that has "
                             f"validation values{why} (report: {report['validation']})")
        for split in SPLITS:  # counted per target: each target is trained and scored on its own windows
            for label, k in report[split]["n_masked_nan"].items():
                if k:
                    # of the masked windows (those of its unseen class without another target's value were dropped)
                    unseen = report[split]["n_masked_unseen_class"].get(label, 0)
                    warnings.warn(f"{split}: target {label!r} has no value in {k} of the {report[split]['n_windows']} "
                                  "windows kept for the other targets"
                                  + (f" ({unseen} of them: a class the train split lacks)" if unseen else "")
                                  + ": masked out of its loss and metrics (counted in "
                                    "decoding_report.json, n_masked_nan)",
                                  UserWarning, stacklevel=2)
        tdicts = target_dicts(targets, report, train_ds)
        saved_std = {}
        continued = bool(not from_scratch and cfg.decoding_targets)  # a decoder fine-tuned further, its heads loaded
        if not from_scratch:
            _check_same_classes(cfg.decoding_targets, tdicts, model_dir)
            kept = _keep_saved_standardisation(cfg.decoding_targets, tdicts)
            saved_std = {targets[i].label: tdicts[i]["std"] for i in kept}
        best_metric, greater, selection = selection_metric(tdicts, select_on)
        notes = target_notes(targets, report, train_ds, fraction, saved_std, dsd["validation"], selection=best_metric)
        if not from_scratch:  # a continued HL-Gauss head keeps its saved bins: training values beyond them are clipped
            for label, note in hl_gauss_clipped_notes(targets, tdicts, kept, train_ds, fraction).items():
                notes[label] = f"{notes[label]}; {note}" if label in notes else note
        # bins spanned over an outlier: most values share a few bins
        for label, note in hl_gauss_crowded_notes(targets, tdicts, train_ds, fraction).items():
            notes[label] = f"{notes[label]}; {note}" if label in notes else note
        for note in notes.values():
            warnings.warn(note, UserWarning, stacklevel=2)
        # output settings back to transformers' defaults: a checkpoint saved with output_attentions=True (after
        # from_pretrained(path, output_attentions=True) for an attention figure) reloads with sdpa, and Trainer's
        # save_pretrained of the decoder refused that pair ("output_attentions ... not supported ... sdpa")
        if cfg.output_attentions or cfg.output_hidden_states or cfg.return_dict is False:
            warnings.warn("the decoder's config resets output_attentions / output_hidden_states to False and return_dict "
                          f"to True (were {cfg.output_attentions} / {cfg.output_hidden_states} / {cfg.return_dict}); pass "
                          "them to from_pretrained when loading the decoder",
                          UserWarning, stacklevel=2)
        overrides = dict(config_overrides, decoding_targets=tdicts,
                         decoding_generative_loss_weight=float(generative_loss_weight),
                         output_attentions=False, output_hidden_states=False, return_dict=True)
        end_with_launcher()  # as train: a worker of a launcher killed outright trained on
        set_seed(seed)
        load_report = None
        if from_scratch:
            mcfg = copy.deepcopy(cfg)
            for k, v in overrides.items():
                setattr(mcfg, k, v)
            mcfg._check()
            model = NeuroformerForBehaviorDecoding(mcfg)
        else:
            # the report is kept in metrics.json and warned about below when not clean; float32 whatever the
            # file's dtype (transformers 5 loads a bf16 / fp16 file as such, and Trainer then updated half-precision
            # weights without float32 master weights: mixed precision is training.mixed_precision's)
            with quiet_loading(), transformers_progress_bars(progress):
                model, info = NeuroformerForBehaviorDecoding.from_pretrained(model_dir, output_loading_info=True,
                                                                             ignore_mismatched_sizes=True,
                                                                             dtype=torch.float32, **overrides)
            check_weight_shapes(info, "model_dir (CLI: --model)", model_dir)
            load_report = {k: sorted(v) for k, v in info.items()}
            # the decoder's own new modules (heads, and the attentive read-out when decoding_pool="attention")
            new = [k for k in load_report["missing_keys"] if not k.startswith(("decoding_heads.", "attention_pool."))]
            if new or load_report["unexpected_keys"] or load_report["mismatched_keys"]:
                warnings.warn(f"model_dir: loading {str(model_dir)!r} as a decoder was not clean: "
                              f"{load_report}", UserWarning, stacklevel=2)

        eval_steps = int(eval_steps or max(1, max_steps // 10))
        ckpt = out / CHECKPOINT_DIR
        trainer = build_trainer(
            model, train_ds, dsd["validation"], ckpt,
            per_device_train_batch_size=batch_size // gradient_accumulation_steps,
            per_device_eval_batch_size=max(batch_size, 64),
            gradient_accumulation_steps=gradient_accumulation_steps,
            learning_rate=learning_rate, weight_decay=weight_decay, warmup_steps=warmup_steps,
            max_steps=int(max_steps), eval_strategy="steps", eval_steps=eval_steps, save_strategy="steps",
            save_steps=eval_steps, logging_steps=eval_steps, load_best_model_at_end=True,
            metric_for_best_model=best_metric, greater_is_better=greater, save_total_limit=2, seed=seed, data_seed=seed,
            optim="adamw_torch", disable_tqdm=not progress, freeze_backbone_steps=freeze_backbone_steps,
            ema_decay=ema_decay, spike_dropout=spike_dropout, anchor_decay=anchor_decay, **training_args,
        )
        if not progress:  # with tqdm off, Trainer prints every log dict instead
            from transformers.trainer_callback import PrinterCallback

            trainer.remove_callback(PrinterCallback)
        bar = _StepBar() if step_bar and not progress else None
        if bar is not None:
            trainer.add_callback(bar)
        if log_evaluations:
            trainer.add_callback(_EvaluationLines(best_metric, write=bar.write if bar is not None else None))
        scores = _ValidationScores(trainer.compute_metrics)  # each evaluation's figures, for the kept step's below
        trainer.add_callback(scores)
        # Trainer creates output_dir/checkpoints at its first evaluation: a run stopped before it ends (Ctrl-C,
        # an error, a refused divergence) left those full copies of the model, and the folder itself, behind
        record = None
        try:
            # a run killed from here on leaves its checkpoints beside the model saved there before it (kept whole
            # until save_atomically replaces it): this record says so, and which checkpoints are the run's
            if is_main_rank():  # the rank that holds the output folder's lock
                record = write_unfinished_run(out, "finetune", model_dir=None if model_dir is None else str(Path(model_dir).resolve()))
            with transformers_progress_bars(progress):  # a "Writing model shards" bar at every checkpoint said nothing about training
                trainer.train()
            best_step = _step_of(trainer.state.best_model_checkpoint) or trainer.state.global_step
            val = scores.kept(trainer)
            if val is None:
                val = trainer.evaluate(dsd["validation"], metric_key_prefix="validation")
            _check_not_diverged(trainer, out, learning_rate, eval_steps, learning_rate_option)  # checkpoints: removed below
            if trainer.state.best_model_checkpoint is None:
                # every evaluation's metric was NaN, which no value beats: Trainer kept the last step, and
                # checkpoint_selection said "highest validation x/r2" for a choice that was never made
                steps = [h["step"] for h in trainer.state.log_history if f"eval_{best_metric}" in h]
                selection = f"last step (validation {best_metric} never defined)"
                _warn_no_checkpoint_chosen(best_metric, steps, learning_rate_option)
            test_out = trainer.predict(dsd["test"], metric_key_prefix="test") if len(dsd["test"]) else None
            if test_out is not None:
                _warn_nonfinite_test(trainer.compute_metrics, learning_rate_option)
            test = test_out.metrics if test_out is not None else {}
            metrics: Dict[str, object] = {}
            for prefix, m in (("validation", val), ("test", test)):
                for k, v in m.items():
                    if k.startswith(prefix + "_") and not k.endswith(("_runtime", "_per_second")):
                        metrics[f"{prefix}/{k[len(prefix) + 1:]}"] = float(v)
            if test_out is not None:  # one array each, also when eval_do_concat_batches=False gave a list of batches
                test_preds, test_labels = gathered_outputs(test_out.predictions), gathered_outputs(test_out.label_ids)
                test_starts = column_values(dsd["test"], "window_start")  # for the intervals, the table and the figure
                metrics.update(decoding_intervals(test_preds, test_labels, tdicts, test_starts, plan,
                                                  ci_block_s=ci_block_s if block_s_asked else None,
                                                  ci_block_s_option=ci_block_s_option,
                                                  window_span_s=cfg.current_window + cfg.past_window))
            metrics.update(
                best_step=int(best_step), total_steps=int(trainer.state.global_step), checkpoint_selection=selection,
                init="scratch" if from_scratch else "decoder" if continued else "pretrained", model_dir=None if model_dir is None else str(Path(model_dir).resolve()),
                fraction=float(fraction), seed=int(seed), n_train_windows=len(train_ds), target_notes=notes,
                # the first and last start of the training windows fitted (a few-shot block; continuing a decoder,
                # those it was fitted on before too): decode labels the others
                train_windows_used_s=_train_windows_used(train_ds, dsd["train"], model_dir if continued else None),
                freeze_backbone_steps=int(freeze_backbone_steps),
                # the optimisation settings, for the model card and for whoever reruns it (Trainer's own values)
                training=finetune_training_settings(trainer.args, generative_loss_weight, freeze_backbone_steps, trainer.state,
                                                    ema_decay=ema_decay, spike_dropout=trainer.spike_dropout,
                                                    anchor_decay=anchor_decay),
                n_train_windows_full=len(dsd["train"]), split_plan_source=plan_source, targets=tdicts,
                config_overrides=config_overrides, load_report=load_report, decoding_report={k: v for k, v in report.items() if k != "split_plan"},
                # the spikes this decoder was fine-tuned and scored on, for the commands that read it with a recording
                split_spikes=split_spikes_digest(recording, plan),
                # the recording's summary as train records it (session, units, spikes, time domain, epochs): the
                # decoder's model card could not say what it was trained on
                recording=repr(recording),
            )
            log = list(trainer.state.log_history)
            figure, tables = None, {}
            if test_out is not None:
                preds = test_preds
                recorded = np.array(test_labels, dtype=np.float64).reshape(len(preds), -1)
                for j, d in enumerate(tdicts):  # class indices -> the class labels themselves (NaN: no label)
                    if d["kind"] == "classification":
                        ok = np.isfinite(recorded[:, j])
                        recorded[ok, j] = np.asarray(d["classes"], dtype=np.float64)[recorded[ok, j].astype(np.int64)]
                tables["test_predictions.csv"] = prediction_table(
                    test_starts, cfg.current_window, preds, tdicts,
                    recorded=recorded).to_csv(index=False)
                # the y axis in the behaviour's unit (e.g. px): config.decoding_targets does not keep it
                shown = [dict(d, unit=getattr(getattr(recording, "behaviour", {}).get(d["name"]), "unit", "")) for d in tdicts]
                if write_figures:
                    figure = draw_figure("test_decoding.png", plot_decoding, test_starts,
                                         test_labels, preds, shown, metrics=metrics, stacklevel=3)
            # as train() saves: everything into a temporary folder beside the output, then moved into place
            # file by file, so a crash while saving over an earlier run leaves no mix of its files and these;
            # an earlier run's figures that this one does not draw are removed (the loss curves and
            # test-generation figure of a 'neuroformer train' directory written over with --overwrite)
            with transformers_progress_bars(progress):
                save_atomically(out, trainer.model, tokenizer, {
                    "metrics.json": metrics, "decoding_report.json": report, "splits.json": plan.to_dict(),
                    "training_log.json": log}, overwrite=overwrite, figures={"test_decoding.png": figure},
                    tables=tables)
            # and its training settings, which 'neuroformer push' would otherwise show on the decoder's card
            for name in STALE_RUN_FILES:
                if (out / name).is_file():
                    (out / name).unlink()
            if not keep_checkpoints:
                remove_checkpoint_folder(ckpt, ignore_errors=True)  # through a link too: Trainer's folders were left there
            return metrics
        except BaseException:
            _remove_unfinished(ckpt, created, keep_checkpoints, ckpt_before, record)
            raise


def _remove_unfinished(ckpt: Path, created: Sequence[Path], keep_checkpoints: bool,
                       ckpt_before: Optional[set] = None, record: Optional[Path] = None) -> None:
    """After a fine-tuning run that stopped before it ended (interrupted, failed or refused):
    remove Trainer's checkpoints (``ckpt``, unless ``keep_checkpoints``; they are not resumable by
    :func:`finetune`, which replaces them on its next run) and the folders this run created
    (``created``: :func:`~hf_neuroformer.io.output_folder.missing_folders` of the output folder,
    deepest first) that are left empty, so no half output stays behind: an ``output_dir`` of
    ``a/b/c`` in a new ``a`` left ``a/b`` behind. A model already in ``out`` is kept,
    and so is what ``ckpt`` held before the run (``ckpt_before``, entry names; None: no such
    folder) other than Trainer's ``checkpoint-*``: ``train``'s resumable checkpoints there were
    deleted with the folder though no new model replaced them.

    ``record``: the run's :data:`~hf_neuroformer.run_record.UNFINISHED_FINETUNE`
    (:func:`~hf_neuroformer.run_record.write_unfinished_run`; None: not written yet), removed with its checkpoints; kept
    with them (``keep_checkpoints``), it tells them from the model in the folder."""
    if not keep_checkpoints:
        if ckpt_before is None:
            remove_checkpoint_folder(ckpt, ignore_errors=True)
        elif ckpt.is_dir():
            for p in ckpt.iterdir():
                if p.name not in ckpt_before or fnmatch.fnmatchcase(p.name, "checkpoint-*"):
                    if p.is_dir() and not p.is_symlink():
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        p.unlink(missing_ok=True)
        if record is not None:  # the folder holds what it held before the run: nothing left to tell apart
            record.unlink(missing_ok=True)
    from .io.output_folder import remove_empty_folders

    remove_empty_folders(created)


def _warn_no_checkpoint_chosen(best_metric: str, steps: list, option: str = "learning_rate") -> None:
    """Warn that the validation ``best_metric`` was NaN at every evaluation (``steps``), so Trainer
    chose no checkpoint and the last one is kept. ``option`` names the learning rate to lower when
    the metric is the loss (``"--learning-rate"`` for the command line)."""
    warnings.warn(
        f"select_on: the validation {best_metric} was undefined (NaN) at every evaluation (steps {steps}), so no "
        "checkpoint was chosen and the last one is kept (e.g. R² or Pearson r of a target constant over the "
        "validation windows); " + ("select on the loss (select_on='loss', --select-on loss) or another metric"
                                    if best_metric != "loss" else f"fine-tune again with a lower {option}"),
        UserWarning, stacklevel=3)


def _warn_nonfinite_test(compute_metrics, option: str = "learning_rate") -> None:
    """Warn when the last call of ``compute_metrics`` (:func:`make_compute_metrics`; the test
    pass) met NaN or inf predictions: the decoder was finite on the validation windows
    (:func:`_check_not_diverged` refused it otherwise), and those targets' test metrics are NaN
    (null in ``metrics.json``). Before, such a pass stopped the run ("y_pred: expected finite
    values"); with undefined metrics it would have been silent. ``option`` names the learning rate
    to lower (``"--learning-rate"`` for the command line)."""
    targets = list(getattr(compute_metrics, "nonfinite_targets", None) or [])
    if targets:
        warnings.warn(
            f"test: the decoder predicts NaN or inf for {targets} on the test windows (it was finite on the validation "
            "windows), so their test metrics are undefined (NaN; null in metrics.json); an overflow, e.g. under fp16 "
            f"mixed precision: fine-tune again without it or with a lower {option}", UserWarning, stacklevel=3)


def _check_not_diverged(trainer, out: Path, learning_rate: float, eval_steps: int,
                        option: str = "learning_rate") -> None:
    """Refuse the decoder ``trainer`` holds after training and its final validation pass (the
    validation-selected one) when it predicts NaN or inf there (``compute_metrics``'
    ``nonfinite_targets``) or its weights hold NaN or inf: the run diverged, every evaluation
    found it so, and no checkpoint was kept, so the last, diverged one would be scored and saved
    (its NaN predictions failed in the metrics, "y_pred: expected finite values ... drop or mask
    them", naming no setting; a classifier's argmax of NaN scores was scored as one constant
    class). Trainer's checkpoints are removed by :func:`finetune` (:func:`_remove_unfinished`).

    Raises:
        ValueError: naming ``learning_rate`` (``--learning-rate``) and its value, the targets
            predicted as NaN and the first non-finite weight tensor; nothing is written. ``option``
            names the setting in the message's body (``"--learning-rate"`` for the command line)."""
    from .analysis._batches import nonfinite_weights

    bad, total = nonfinite_weights(trainer.model)
    targets = list(getattr(trainer.compute_metrics, "nonfinite_targets", None) or [])
    if not (bad or targets):
        return
    what = ([f"it predicts NaN or inf for {targets} on the validation windows"] if targets else []) + (
        [f"{len(bad)} of {total} weight tensors hold NaN or infinite values (first: {bad[0]})"] if bad else [])
    raise ValueError(
        f"learning_rate (--learning-rate): fine-tuning diverged at {option}={learning_rate:g}: {'; '.join(what)}, "
        f"and no evaluation (every {eval_steps} steps) found a finite checkpoint to keep; nothing was written to "
        f"{str(out)!r}: fine-tune again with a lower {option}")


def _spike_dropout_counts(args, spike_dropout: "SpikeDropout") -> Dict[str, object]:
    """``{"spikes", "dropped"}`` spike tokens the training batches held and lost to ``spike_dropout``;
    ``None`` for both, with a ``"note"``, when dataloader worker processes thinned the batches
    (``args.dataloader_num_workers > 0``): their counts stay in those processes."""
    if int(getattr(args, "dataloader_num_workers", 0) or 0) > 0:
        return {"spikes": None, "dropped": None,
                "note": f"not counted: {int(args.dataloader_num_workers)} dataloader worker processes thinned the "
                        "training batches and their counts stay in those processes"}
    return {"spikes": spike_dropout.n_spike_tokens, "dropped": spike_dropout.n_dropped}


def finetune_training_settings(args, generative_loss_weight: float = 0.0, freeze_backbone_steps: int = 0,
                               state=None, ema_decay: Optional[float] = None,
                               spike_dropout: Optional[SpikeDropout] = None,
                               anchor_decay: Optional[float] = None) -> Dict[str, object]:
    """The optimisation settings of a fine-tuning run, read from its ``TrainingArguments``
    (``metrics.json`` -> ``training``; shown on the decoder's model card): optimizer (and AdamW's
    betas and epsilon), learning rate and schedule (with ``lr_scheduler_kwargs``), warmup, weight
    decay, gradient clipping, batch (windows per optimisation step over all processes, and how it
    is split), steps, evaluation interval, seeds (``seed``; ``data_seed``, the order of the
    training windows, ``None`` = ``seed``), and the fine-tuning settings of this package
    (``ema_decay`` only when the weights were averaged; ``anchor_decay`` only when the pretrained
    weights were pulled towards (:class:`PretrainedAnchor`); ``spike_dropout`` and ``spike_dropout_tokens``,
    ``{"spikes": ..., "dropped": ...}`` counted in this process, only with the :class:`SpikeDropout`
    the training batches went through; with ``dataloader_num_workers > 0`` the worker processes
    thinned the batches and their counts never reach this one, so the two counts are ``None`` and a
    ``"note"`` says why, rather than a count of 0).

    ``state``: the trainer's ``TrainerState`` after training. Its ``train_batch_size`` is the
    batch that trained: with ``auto_find_batch_size`` Trainer shrinks it (to 90 %, accelerate's
    ``find_executable_batch_size``) after an out-of-memory error and leaves
    ``args.per_device_train_batch_size`` as asked, which the record would otherwise give."""
    def plain(v):  # an enum's value, a numpy number as Python's (warmup_steps=np.int64(2) passes finetune's
        return json_safe(getattr(v, "value", v))  # check and TrainingArguments keeps it: json.dumps failed)

    per_device = args.per_device_train_batch_size
    if state is not None and getattr(state, "train_batch_size", None):
        per_device = state.train_batch_size // max(1, args.n_gpu)  # DataParallel: Trainer's batch spans the GPUs
    per_step = per_device * args.gradient_accumulation_steps * args.world_size
    return {
        "optimizer": plain(args.optim), "learning_rate": float(args.learning_rate),
        "lr_scheduler_type": plain(args.lr_scheduler_type),
        # the schedule's own settings (cosine_with_restarts' num_cycles, polynomial's power ...) and AdamW's
        "lr_scheduler_kwargs": json_safe(dict(args.lr_scheduler_kwargs or {})),
        "adam_beta1": float(args.adam_beta1), "adam_beta2": float(args.adam_beta2), "adam_epsilon": float(args.adam_epsilon),
        "warmup_steps": plain(args.warmup_steps),
        "weight_decay": float(args.weight_decay), "max_grad_norm": float(args.max_grad_norm),
        "batch_size": int(per_step), "per_device_train_batch_size": int(per_device),
        "auto_find_batch_size": bool(args.auto_find_batch_size),
        "gradient_accumulation_steps": int(args.gradient_accumulation_steps), "world_size": int(args.world_size),
        "max_steps": int(args.max_steps), "eval_steps": plain(args.eval_steps), "seed": int(args.seed),
        "data_seed": plain(args.data_seed),
        "generative_loss_weight": float(generative_loss_weight), "freeze_backbone_steps": int(freeze_backbone_steps),
        **({"ema_decay": float(ema_decay)} if ema_decay is not None else {}),
        **({"anchor_decay": float(anchor_decay)} if anchor_decay is not None else {}),
        **({"spike_dropout": spike_dropout.p, "spike_dropout_tokens": _spike_dropout_counts(args, spike_dropout)}
           if spike_dropout is not None else {}),
    }


def load_decoder(model_dir, flag: str = "model_dir"):
    """Load ``(decoder, tokenizer, split_plan)`` from a directory written by ``neuroformer finetune``
    (the decoder in float32, whatever the dtype of its weights file).

    Every weight of :class:`~hf_neuroformer.NeuroformerForBehaviorDecoding` must come from the
    file (transformers would initialise a missing one at random and only log it).

    Warns:
        UserWarning: the directory holds the record of a fine-tuning (or a ``train`` run) into it
            that has not saved its model (:func:`~hf_neuroformer.run_record.unfinished_run_note`: still running, or killed): the decoder
            loaded is the one saved before that run, and the message names that run's checkpoints.

    Raises:
        FileNotFoundError: the directory, its model files or ``splits.json`` missing (with that
            record's sentence when it is there: a first fine-tuning into the folder killed).
        ValueError: ``model.safetensors`` damaged; a directory that is not a fine-tuned decoder
            (no ``decoding_targets`` in its config: a pretrained model, which ``neuroformer
            finetune`` turns into one); weights missing from the file, or of other shapes there than
            ``config.json``'s model (:func:`~hf_neuroformer.generation.check_weight_shapes`).
    """
    from .generation import _read_model_config, is_decoder_config

    # not train's writer: a pretrained model is refused below
    d = checked_model_dir_noting_unfinished_run(model_dir, flag, written_by="'neuroformer finetune'")
    config = _read_model_config(d, flag)
    if not is_decoder_config(config):
        raise ValueError(f"{flag}: {str(d)!r} is not a fine-tuned decoder (its config.json has no decoding_targets); "
                         "fine-tune it first: neuroformer finetune --model DIR --data PATH --target NAME")
    plan_file = d / "splits.json"
    if not plan_file.is_file():
        # a decoder saved from the README's own Trainer loop (trainer.save_model) has none: say how to give it one
        raise FileNotFoundError(f"{flag}: {str(plan_file)!r} is missing; it records the windows the decoder was "
                                "fine-tuned and tested on ('neuroformer finetune' writes it); a decoder saved from a "
                                "Trainer loop of your own needs the split plan it was fine-tuned with written there: "
                                "json.dump(report['split_plan'], open(<dir>/splits.json, 'w')) with the report of "
                                "build_decoding_datasets (or a copy of the pretrained model's splits.json when that "
                                "was the plan)")
    with quiet_loading():  # the loading report is judged below instead of printed
        model, info = NeuroformerForBehaviorDecoding.from_pretrained(d, config=config, output_loading_info=True,
                                                                     ignore_mismatched_sizes=True, dtype=torch.float32)
    check_weight_shapes(info, flag, d)
    refuse_missing_weights(weights_not_loaded(info), f"{flag}: {str(d / 'model.safetensors')!r}", "decoder's",
                           "a directory written by 'neuroformer finetune'")
    tokenizer = NeuroformerTokenizer.from_pretrained(d)
    return model, tokenizer, SplitPlan.read(plan_file)


def windows_tiling(recording, config: NeuroformerConfig, mode: str = "time", *, use: str = "decoded",
                   stacklevel: int = 2):
    """``(starts, clip_starts)``: non-overlapping windows (stride ``current_window``) that tile a
    whole recording as training tiles a split: in time mode each stretch of
    ``recording.support`` (intervals that touch taken as one, :func:`~hf_neuroformer.windows.recorded_stretches`; after :meth:`~hf_neuroformer.SpikeRecording.select_epoch`, the
    epoch's), each window with its whole past window inside the interval; in trial mode
    ``recording.trials``, each window's past clipped at its trial's start, and where trials overlap
    in time (or a trial is listed twice) one window per stretch, as
    :func:`~hf_neuroformer.windows.tiling_windows` tiles a split (the earliest-starting trial's; a
    ``UserWarning`` names the recording's trials that overlap, counts the windows left out and says
    the rest are ``use``-d; ``stacklevel`` as for ``warnings.warn`` called here).

    Raises:
        TypeError: ``recording`` is not a :class:`~hf_neuroformer.recording.SpikeRecording` (a path:
            the message says to read it with :func:`hf_neuroformer.io.load_recording`).
        ValueError: ``mode`` is neither ``"time"`` nor ``"trials"`` (a decoder's ``plan.mode``); trial
            mode on a recording without trials.
    """
    check_is_recording(recording)  # a path failed as "'str' object has no attribute 'support'"
    if mode not in ("time", "trials"):  # "trial" tiled the recorded time, as "time" does, without a word
        raise ValueError(f"mode: expected 'time' or 'trials' (the decoder's split plan mode, plan.mode), got {mode!r}")
    if mode == "trials":
        if recording.trials is None or len(recording.trials) == 0:
            raise ValueError("the decoder was fine-tuned on trials (splits.json mode 'trials'), but this recording "
                             "has no trials to tile")
        segments = np.asarray(recording.trials, dtype=np.float64)
    else:
        # touching intervals as one stretch (a generated recording's support is its tiled windows, none of which
        # holds a window with its past)
        segments = recorded_stretches(recording.support)
    plan = SplitPlan(mode, {"all": segments}, {"all": np.arange(len(segments)) if mode == "trials" else
                                                      np.zeros(0, dtype=np.int64)})
    return tiling_windows(plan, "all", config, use=use, stacklevel=stacklevel, subject="the recording's trials")


def split_of_windows(plan: SplitPlan, starts, config: NeuroformerConfig, clip_starts=None,
                     train_used_s=None) -> np.ndarray:
    """``(n_windows,)`` the split of ``plan`` (``"train"``, ``"validation"``, ``"test"``) whose
    segment holds each window whole, ``""`` for a window in no split or across two (its past
    window included in time mode, as :func:`~hf_neuroformer.windows.window_starts_for_split`
    requires). Meaningful for windows of the recording the plan was made on: a decoder's metrics
    hold only for its ``"test"`` windows, the others it was fitted or selected on.

    ``train_used_s``: ``(first, last)`` start (s) of the training windows the decoder was fitted
    on (``metrics.json``'s ``train_windows_used_s``; a few-shot ``fraction`` keeps the first
    block of them): a training window starting outside it is ``"train_unused"`` (the decoder never
    fitted it, but it lies beside windows it did), not ``"train"``.

    In trial mode a window belongs to its own trial: with ``clip_starts`` (``(n_windows,)`` s, the
    trial start each window's past is clipped to, :func:`windows_tiling`), the split of the trial
    that starts there (within 1 ns) and holds the window; without, the split of any trial holding
    the window, ``""`` when trials of two splits hold it (overlapping trials: the window of a test
    trial inside the end of a train trial was labelled train, the first split tried)."""
    starts = window_starts_array(starts)
    out = np.full(len(starts), "", dtype=object)
    if plan.mode == "trials":
        hi = starts + float(config.current_window)
        clips = None if clip_starts is None else window_starts_array(clip_starts, "clip_starts", clip_starts=True)
        if clips is not None and clips.shape != starts.shape:
            raise ValueError(f"clip_starts: expected one trial start per window ({starts.size}), got shape "
                             f"{clips.shape}")
        held = {}
        for split, seg in plan.segments.items():
            seg = np.asarray(seg, dtype=np.float64).reshape(-1, 2)
            h = np.zeros(len(starts), dtype=bool)
            for a, b in seg:  # a trial holds [start, start + current_window) whole
                own = (starts >= a - WINDOW_GRID) & (hi <= b + WINDOW_GRID)
                if clips is not None:
                    own &= np.isnan(clips) | (np.abs(clips - a) <= WINDOW_GRID)
                h |= own
            held[split] = h
        n_held = np.sum(list(held.values()), axis=0) if held else np.zeros(len(starts), dtype=int)
        for split, h in held.items():
            out[h & (n_held == 1)] = split
        return _mark_unused_train(out, starts, train_used_s)
    past, reach = float(config.past_window), window_reach(config)
    for split, seg in plan.segments.items():
        seg = np.asarray(seg, dtype=np.float64).reshape(-1, 2)
        seg = seg[np.argsort(seg[:, 0], kind="stable")]
        if not len(seg):
            continue
        inside = inside_one_interval(starts - past, starts + reach, seg)
        out[inside & (out == "")] = split
    return _mark_unused_train(out, starts, train_used_s)


def _mark_unused_train(split: np.ndarray, starts: np.ndarray, train_used_s) -> np.ndarray:
    """``split`` with its ``"train"`` windows starting outside ``train_used_s`` (``(first, last)``
    start, s; None: all used) relabelled ``"train_unused"`` (:func:`split_of_windows`)."""
    if train_used_s is not None:
        first, last = (float(v) for v in train_used_s)
        split[(split == "train") & ((starts < first - WINDOW_GRID) | (starts > last + WINDOW_GRID))] = "train_unused"
    return split


def check_decoder_model(model, flag: str = "model") -> None:
    """Refuse a model without the behaviour-decoding heads where windows are decoded
    (:func:`decode_windows`): the backbone ``AutoModel.from_pretrained`` gives failed at the end of
    the first batch with "'NeuroformerModelOutput' object has no attribute 'predictions'", and a
    model directory's path with "'str' object has no attribute 'config'".

    Args:
        model: the object passed as the model; any class named ``NeuroformerForBehaviorDecoding``
            along its MRO passes (a model loaded as Hub remote code is another class object).
        flag: the argument named in the message.

    Raises:
        TypeError: ``model`` is not a ``NeuroformerForBehaviorDecoding``; the message names its type
            and says to load the decoder with :func:`load_decoder`.

    The check is :func:`~hf_neuroformer.argument_checks.check_model_kind`'s, with this kind's hints.
    """
    check_model_kind(
        model, ("NeuroformerForBehaviorDecoding",), flag,
        expected="a NeuroformerForBehaviorDecoding (a fine-tuned behaviour decoder)",
        hints={"NeuroformerModel": "it has no behaviour heads", "NeuroformerForPreTraining": "it has no behaviour heads"})


@keeps_training_mode
@torch.no_grad()
def decode_windows(model, tokenizer, recording, window_starts, *, past_clip_starts=None, batch_size: int = 64,
                   recorded: bool = True, plan: Optional[SplitPlan] = None, progress: bool = False,
                   warn_absent_units: bool = True, train_used_s=None, check_modalities: bool = True):
    """Decode the behaviour of each window with a fine-tuned decoder.

    Args:
        model: a :class:`~hf_neuroformer.NeuroformerForBehaviorDecoding` (:func:`load_decoder`).
        tokenizer: its tokenizer (the recording's units must be in its vocabulary).
        recording: the recording whose windows are decoded (another epoch of the training
            recording, e.g. sleep for a decoder fine-tuned on wake, or a recording of the same units).
        window_starts: ``(n_windows,)`` current-window starts, s (:func:`windows_tiling`, or
            :func:`~hf_neuroformer.windows.window_starts_for_split` for one of the decoder's splits).
        past_clip_starts: ``None`` (no clip; default), ``(n_windows,)`` seconds (the past window starts no
            earlier than this; NaN: no clip), ``"trials"`` (each window's trial start, as a trial-mode model
            read its past) or ``"auto"`` (the start of the recorded stretch holding the window, where its past
            window reaches before it: a stretch's first windows are decoded with a partial, possibly empty,
            past, and no window is refused for a past in unrecorded time), resolved and checked as every
            reader of windows does (:func:`~hf_neuroformer.windows.resolve_past_clip_starts`).
        batch_size: windows per forward pass, an integer >= 1.
        recorded: also read each target's recorded value per window where the recording has the
            target (:func:`~hf_neuroformer.decoding.target_values`, as fine-tuning read its labels).
        plan: the decoder's split plan (:func:`load_decoder`): adds a ``split`` column
            (:func:`split_of_windows`), for windows of the recording it was fine-tuned on.
        train_used_s: with ``plan``, ``(first, last)`` start (s) of the training windows the
            decoder was fitted on (``metrics.json``'s ``train_windows_used_s``): the training
            windows outside it (beyond a few-shot ``fraction``) are labelled ``"train_unused"``.
        progress: a progress bar over the batches.
        warn_absent_units: warn when the recording lacks some of the decoder's units of its
            session (``neuroformer decode`` has warned already, through ``check_recording_units``).
        check_modalities: check once that ``recording`` holds the decoder's input modalities as it
            reads them (:meth:`~hf_neuroformer.NeuroformerProcessor.check_recording`: frames on
            another pixel scale than the training frames are warned of); False where the caller has
            checked (``neuroformer decode``).

    Returns:
        ``(table, info)``: ``table`` the :func:`~hf_neuroformer.decoding.prediction_table` of the
        windows in time order (recorded columns only for targets the recording has), plus
        ``n_spikes`` and ``n_truncated`` (spikes the token budget cut) per window and, with
        ``plan``, ``split``; ``info`` a dict
        with ``recorded_targets`` (labels), ``missing_targets`` (label -> why no recorded value:
        the target is not in the recording, or its values do not fit the decoder's kind) and
        ``n_truncated_windows``, ``absent_units`` (:func:`hf_neuroformer.generation.units_absent`) and
        ``windows_without_input`` (input modality name -> windows with no value of it; event
        modalities, whose windows without an event are normal, left out) and, with
        modalities, ``n_truncated_modality_tokens`` (modality name -> tokens, video: frames,
        beyond ``max_tokens`` / ``num_frames`` left out, the earliest).

    Warns:
        UserWarning: the recording lacks some of the decoder's units of its session (a subset of
            the units, e.g. re-sorted or exported without some): they are read as silent. A regression
            target's series with another ``unit`` than the one the decoder was fine-tuned on. Windows
            with no value of an input modality (e.g. head direction during sleep), other than an event
            stream (source ``events:...``), which most windows may lack.

    Raises:
        TypeError: a ``model`` other than a ``NeuroformerForBehaviorDecoding`` (the backbone
            ``AutoModel`` loads, a pretrained model, a path: :func:`check_decoder_model`), a
            ``tokenizer`` other than a ``NeuroformerTokenizer`` (a processor: pass
            ``processor.tokenizer``), a ``recording`` other than a ``SpikeRecording`` (a path).
        ValueError: bad window starts or clips (the processor's checks; ``past_clip_starts="trials"`` for a
            recording without trials, another string), a window whose past window (from its
            clip on) starts before the recorded time holding it (read as silence; refused as generate_spikes
            does), a recording whose units
            the tokenizer lacks, a ``batch_size`` that is not an integer >= 1.
        DecodingTargetError: a target whose table column would collide with another column
            (:func:`~hf_neuroformer.decoding.check_table_columns`: a target named ``split``).
    """
    from .decoding import check_table_columns, target_label, target_values
    from .processing_neuroformer import NeuroformerProcessor
    from .progress import progress_bar

    # a backbone failed at out.predictions after the first batch, a path or a processor at an
    # attribute, naming no argument
    check_decoder_model(model)
    check_is_recording(recording)
    check_tokenizer_matches_config(tokenizer, model.config)
    if not is_whole_number(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    cfg = model.config
    targets = list(cfg.decoding_targets or [])
    check_table_columns(targets)  # a decoder of a target named 'split' or 'n_spikes': refused before any work
    processor = NeuroformerProcessor.from_config(tokenizer, cfg)
    starts = window_starts_array(window_starts)
    # "trials" / "auto" / seconds, resolved and checked as generate_spikes and window_log_likelihoods do (warnings at
    # the caller's line, past the torch.no_grad and keeps_training_mode wrappers)
    clips = resolve_past_clip_starts(recording, starts, past_clip_starts, past_window=cfg.past_window,
                                     current_window=cfg.current_window, stacklevel=4)
    # the recording's modality check too (5, as tokenize counts: it, us and the two wrappers; its default named
    # torch's _contextlib.py)
    cols = processor.tokenize(recording, starts, clips, check_modalities=check_modalities, refuse_unrecorded_past=True,
                              stacklevel=5)
    absent = units_absent(tokenizer, recording)
    # the warnings below use stacklevel 4: the caller's line, past the torch.no_grad and
    # keeps_training_mode wrappers (3 named windows.py's keeps_training_mode wrapper)
    if absent and warn_absent_units:  # the command has warned already (check_recording_units)
        shown = first_few(absent, count_rest=False)
        warnings.warn(f"recording: {len(absent)} of the decoder's units of this session are not in it ({shown}); "
                      "they are read as silent in every window, so the decoded values are not those of the "
                      "recording the decoder was fine-tuned on: pass a recording with all of its units",
                      UserWarning, stacklevel=4)
    # tokens (video: frames) beyond max_tokens / num_frames left out, the earliest, as fine-tuning counted them
    mod_trunc = {m["name"]: truncated_modality_tokens(cols, m) for m in cfg.modalities or []}
    no_input = {}  # input modalities with no value in a window: the decoder sees no input there
    for mod in cfg.modalities or []:
        # an event stream (events:...) is not counted: windows between its sparse onsets are the normal case
        if mod.get("role", "input") == "input" and not is_event_modality(mod) and (
                k := windows_without_values(cols, mod)):
            no_input[mod["name"]] = k
    if no_input:
        warnings.warn("recording: " + "; ".join(
            f"{k} of {len(starts)} windows have no value of the decoder's input modality {name!r} (source "
            f"{cfg.modality(name).get('source')!r})" for name, k in no_input.items())
            + ": the decoder is given no input there (as in an epoch without tracking); their decoded values rest "
              "on the spikes alone", UserWarning, stacklevel=4)
    model.eval()  # the caller's mode comes back on exit (keeps_training_mode)
    device = next(model.parameters()).device
    n = len(starts)
    preds = np.zeros((n, len(targets)))
    for idx, batch in progress_bar(collated_batches(cols, processor.collator, batch_size, device), desc="decoding windows",
                                   unit="batch", total=math.ceil(n / batch_size), disable=not progress):
        mod_in = batch.pop("modality_inputs", None)
        out = model(input_ids=batch["input_ids"], dt_ids=batch["dt_ids"], attention_mask=batch["attention_mask"],
                    past_input_ids=batch["past_input_ids"], past_dt_ids=batch["past_dt_ids"],
                    past_attention_mask=batch["past_attention_mask"], modality_inputs=mod_in, return_dict=True,
                    output_attentions=False, output_hidden_states=False)
        preds[idx.start:idx.stop] = out.predictions.double().cpu().numpy()
    rec_values, have, missing = None, [], {}
    if recorded:
        rec_values = np.full((n, len(targets)), np.nan)
        for j, t in enumerate(targets):
            target = DecodingTarget(t["name"], t["kind"], column=t.get("column"))
            series = (getattr(recording, "behaviour", None) or {}).get(t["name"])
            here = str(getattr(series, "unit", "") or "").strip()
            if t["kind"] == "regression" and t.get("unit") and here and here.lower() != str(t["unit"]).strip().lower():
                # position in m scored against a decoder of position in cm: an R² of -1e4, and no word of why
                # (circular targets: a series in degrees is refused by target_values)
                warnings.warn(f"recording: {target.label!r} is in {here!r}, but the decoder was fine-tuned on it in "
                              f"{t['unit']!r}: its decoded values are in {t['unit']!r}, and compared with recorded "
                              f"values in {here!r} (if these are different units, convert the series first)",
                              UserWarning, stacklevel=4)
            try:
                # (stacklevel 5: the caller's line, past this function and its two wrappers)
                rec_values[:, j] = target_values(recording, target, starts, cfg.current_window,
                                                 stacklevel=5)
                have.append(target.label)
            except DecodingTargetError as err:  # not in this recording, or not readable as the decoder's kind
                missing[target.label] = str(err)
    else:
        missing = {target_label(t["name"], t.get("column")): "recorded=False" for t in targets}
    table = prediction_table(starts, cfg.current_window, preds, targets, recorded=rec_values)
    if rec_values is not None:  # no recorded column (rather than an empty one) for a target the recording lacks
        table = table.drop(columns=[c for label in missing for c in (label, f"{label}_error_rad") if c in table.columns])
    order = np.argsort(starts, kind="stable")
    table["n_spikes"] = np.asarray(cols["n_spikes"], dtype=np.int64)[order]
    table["n_truncated"] = np.asarray(cols["n_truncated"], dtype=np.int64)[order]
    if plan is not None:
        table["split"] = split_of_windows(plan, starts[order], cfg, None if clips is None else clips[order],
                                          train_used_s=train_used_s)
    info = {"recorded_targets": have, "missing_targets": missing, "absent_units": absent,
            "windows_without_input": no_input,
            "n_truncated_windows": int((np.asarray(cols["n_truncated"]) > 0).sum()),
            **({"n_truncated_modality_tokens": mod_trunc} if mod_trunc else {})}
    return table, info


#: File beside a checkpoint's model of a run with ``ema_decay``: the training weights and the average.
WEIGHT_AVERAGE_FILE = "weight_average.safetensors"


class WeightAverage(TrainerCallback):
    """An exponential moving average of the weights over the optimisation steps (Polyak
    averaging; Polyak & Juditsky 1992, SIAM J. Control Optim. 30(4); the EMA form as in Izmailov
    et al., "Averaging Weights Leads to Wider Optima", arXiv 1803.05407), which evaluations and
    checkpoints see instead of the last step's weights: it smooths the step-to-step noise of
    fine-tuning on few windows. :func:`build_trainer` adds it for ``ema_decay``.

    After optimisation step ``t`` (``t`` = 1, 2, ...) of the run, every floating-point parameter's
    average is ``avg_t = avg_{t-1} + w_t (theta_t - avg_{t-1})`` with ``w_t = (1 - d) / (1 - d**t)``:
    the bias-corrected EMA ``sum_i d**(t-i) theta_i / sum_i d**(t-i)`` of the weights after steps
    1..t, so the weights before training (a random head) are not part of it (``avg_1 = theta_1``),
    and a parameter that does not move (a frozen backbone) keeps its value exactly. Before each
    evaluation and checkpoint (the steps, or epoch ends, where Trainer evaluates or saves), the model's parameters
    are set to their averages in place (the optimizer keeps its tensors and moments); the
    training weights are put back at the start of the next step, so the optimisation itself is
    unchanged. At the end of training the model holds averaged weights: those of the checkpoint
    Trainer loaded as the best (itself saved averaged), or else the last step's average.
    A checkpoint of :class:`DecodingTrainer` also holds the training weights and the average's state
    (:data:`WEIGHT_AVERAGE_FILE`), so a run resumed from it trains on from the training weights and
    goes on with the same average, as if never stopped (before, it trained on from the averaged
    weights its model file holds, and started the average again). A checkpoint without that
    file (saved without ``ema_decay``) starts the average afresh at the resumed step. The average is
    kept in float32 (or wider) whatever the weights' dtype, so that bfloat16 weights are averaged too."""

    def __init__(self, decay: float):
        check_ema_decay(decay)
        self.decay = float(decay)
        self.steps = 0
        self.average = None
        self.raw = None  # the training weights while the averaged ones are in the model
        self._resumed = None  # (steps, average) read by load_state, for on_train_begin

    @staticmethod
    def _params(model):
        return [(n, p) for n, p in model.named_parameters() if p.is_floating_point()]

    def save_state(self, folder, model) -> None:
        """Write the training weights (``model``'s, or those set aside while it holds the average),
        the average and its step count to ``folder`` / :data:`WEIGHT_AVERAGE_FILE`."""
        from safetensors.torch import save_file

        if self.average is None:
            return
        training = self.raw if self.raw is not None else {n: p.detach() for n, p in self._params(model)}
        tensors = {**{f"average.{n}": a.contiguous() for n, a in self.average.items()},
                   **{f"training.{n}": w.contiguous() for n, w in training.items()}}
        save_file(tensors, str(Path(folder) / WEIGHT_AVERAGE_FILE), metadata={"steps": str(self.steps)})

    def load_state(self, folder, model) -> None:
        """Read :meth:`save_state`'s file from ``folder`` if there is one: the training weights into
        ``model``, the average and its step count for the resumed run."""
        from safetensors import safe_open

        path = Path(folder) / WEIGHT_AVERAGE_FILE
        if not path.is_file():
            return
        with safe_open(str(path), framework="pt") as f:  # one read: the step count and the tensors
            steps = int(f.metadata()["steps"])
            saved = {k: f.get_tensor(k) for k in f.keys()}
        params = dict(self._params(model))
        missing = [n for n in params if f"training.{n}" not in saved or f"average.{n}" not in saved]
        if missing:
            raise ValueError(f"resume_from_checkpoint: {str(path)!r} holds no saved weights for {len(missing)} of this "
                             f"model's parameters ({missing[:3]}); was it saved by another model?")
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(saved[f"training.{n}"])
        self._resumed = (steps, {n: saved[f"average.{n}"].to(p.device) for n, p in params.items()})

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.steps, self.raw = 0, None
        # float32 at least: a bfloat16 average took no step of weight 0.01 smaller than its spacing (2**-7
        # near 1), so it stopped following the weights
        self.average = {n: p.detach().clone().to(torch.promote_types(p.dtype, torch.float32))
                        for n, p in self._params(model)}
        if self._resumed is not None:
            self.steps, self.average = self._resumed
            self._resumed = None

    def on_step_begin(self, args, state, control, model=None, **kwargs):
        self._restore(model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.steps += 1
        weight = (1.0 - self.decay) / (1.0 - self.decay ** self.steps)
        with torch.no_grad():
            for n, p in self._params(model):
                self.average[n].lerp_(p.detach().to(self.average[n].dtype), weight)
        self._average_for_evaluation(control, model)

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        # an epoch strategy evaluates / saves after this (Trainer's last _maybe_log_save_evaluate of the epoch)
        self._average_for_evaluation(control, model)

    def _average_for_evaluation(self, control, model) -> None:
        """The averages into the model when Trainer evaluates or saves next (the training weights set aside)."""
        if self.raw is None and self.steps and (control.should_evaluate or control.should_save):
            with torch.no_grad():
                self.raw = {n: p.detach().clone() for n, p in self._params(model)}
                for n, p in self._params(model):
                    p.copy_(self.average[n])

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if state.best_model_checkpoint is None and self.steps:  # else the model holds the best (averaged) checkpoint
            with torch.no_grad():
                for n, p in self._params(model):
                    p.copy_(self.average[n])
        self.raw = None

    def _restore(self, model) -> None:
        if self.raw is not None:
            with torch.no_grad():
                for n, p in self._params(model):
                    p.copy_(self.raw[n])
            self.raw = None


class PretrainedAnchor(TrainerCallback):
    """Decay towards the pretrained weights (L2-SP in decoupled form): after every optimiser step each
    parameter of the pretrained model (every trainable floating-point parameter but the decoder's new
    modules, :data:`NEW_MODULE_PREFIXES`) moves towards its value when the trainer was built,
    ``w <- w - lr_t * decay * (w - w0)``, ``lr_t`` the rate its optimiser group used at that step (0 for a
    group held frozen). The new heads and read-out, which have no pretrained value, are not pulled.

    Source: the L2-SP penalty ``(alpha / 2) ||w - w0||^2`` towards the starting point (Li, Grandvalet &
    Davoine, "Explicit Inductive Bias for Transfer Learning with Convolutional Networks", ICML 2018,
    arXiv 1802.01483), applied to the weights directly as AdamW applies weight decay (Loshchilov &
    Hutter, "Decoupled Weight Decay Regularization", ICLR 2019, arXiv 1711.05101), so that Adam's
    per-weight scaling does not rescale the pull. AdamW's own ``weight_decay`` (towards 0) is unchanged.

    ``decay`` (> 0, per unit of learning rate): with the rates summing to ``S`` over the run,
    ``decay = 1 / S`` lets a move away from the pretrained weights that the gradient does not keep
    making decay by a factor e over the run; since an Adam update moves a weight by about ``lr_t`` at
    most, no weight settles further than about ``1 / decay`` from its pretrained value. The anchor
    ``w0`` is taken when the callback is made (:func:`build_trainer`: the weights the trainer starts
    from, before any checkpoint is resumed), kept in float32 (or wider) on the parameter's device.
    It acts at ``on_optimizer_step``, after the optimiser's update and before the schedule steps, so
    callbacks acting at the step's end (:class:`WeightAverage`) see the pulled weights.

    Raises:
        ValueError: ``decay`` not a finite number > 0 (:func:`check_anchor_decay`); no trainable
            parameter outside the new modules (nothing to anchor)."""

    def __init__(self, model, decay: float):
        check_anchor_decay(decay)
        self.decay = float(decay)
        self.anchors = [(p, p.detach().clone().to(torch.promote_types(p.dtype, torch.float32)))
                        for n, p in model.named_parameters()
                        if p.requires_grad and p.is_floating_point() and not is_new_module_parameter(n)]
        if not self.anchors:
            raise ValueError(f"anchor_decay={decay!r}: the model has no trainable parameter outside the decoder's new "
                             f"modules ({' / '.join(NEW_MODULE_PREFIXES)}), so there is nothing to pull towards "
                             "pretrained weights; pass anchor_decay=None")

    def on_optimizer_step(self, args, state, control, model=None, optimizer=None, **kwargs):
        rates = {id(p): float(g["lr"]) for g in optimizer.param_groups for p in g["params"]}
        with torch.no_grad():
            for p, w0 in self.anchors:
                share = rates.get(id(p), 0.0) * self.decay
                if share:
                    if w0.device != p.device:  # the trainer moved the model after the anchor was taken
                        w0.data = w0.data.to(p.device)
                    p.sub_((share * (p.to(w0.dtype) - w0)).to(p.dtype))


class SpikeDropout:
    """Spike-train augmentation of the TRAINING batches: a collator that drops each spike token of
    a window's current and past spike trains independently with probability ``p``, then hands the
    thinned windows to the collator it wraps (so ``attention_mask``, padding, the next-spike labels
    and their counts are those of the thinned windows). Every call draws anew, so a window seen
    twice is thinned twice differently. :func:`build_trainer` puts it only on the training
    dataloader (``spike_dropout``): validation, test and prediction windows are never thinned.

    A regulariser in the family of unit dropout (POYO, Azabou et al., NeurIPS 2023; in its code,
    torch_brain's ``UnitDropout`` transform keeps a random subset of the units of each training
    sample) and of hiding spike inputs during training (Neural Data Transformers, Ye & Pandarinath
    2021; coordinated dropout, Keshtkaran & Pandarinath 2019); here each spike, not each unit, is
    dropped (binomial thinning of every spike train by ``1 - p``).

    Per window: BOS and EOS stay; the tokens kept keep their ``dt_ids`` (the bin of the spike's
    time in its window, so unchanged by the others' removal); EOS takes the last kept token's bin
    (BOS's 0 when none is left), as :meth:`~hf_neuroformer.NeuroformerTokenizer.encode_window` gives
    it; a window without EOS (truncated) stays without. Other columns (targets, modality tokens,
    ``n_spikes``) are unchanged. ``n_spike_tokens`` / ``n_dropped`` count the spike tokens seen and
    dropped in this process (not those of dataloader worker processes).

    Random numbers: a ``numpy`` generator of its own, seeded with ``seed`` (``build_trainer``:
    ``[TrainingArguments.seed, process_index]``), so the global random streams (shuffling, model
    dropout) are those of a run without it; in a dataloader worker, seeded with ``seed`` and the
    worker's seed. A run resumed from a checkpoint draws its masks afresh from ``seed``.

    Raises:
        ValueError: ``p`` outside [0, 1) (:func:`~hf_neuroformer.argument_checks.check_spike_dropout`);
            ``collator`` not a :class:`~hf_neuroformer.windows.NeuroformerCollator` (whose BOS / EOS ids
            tell the spike tokens apart).
    """

    def __init__(self, collator, p: float, seed=0):
        check_spike_dropout(p)
        if not isinstance(collator, NeuroformerCollator):
            raise ValueError(f"spike_dropout: the collator must be a NeuroformerCollator (DecodingCollator, "
                             f"processor.collator), whose BOS / EOS ids tell the spike tokens apart; got "
                             f"{type(collator).__name__}")
        self.collator, self.p = collator, float(p)
        self.seed = list(np.atleast_1d(np.asarray(seed, dtype=np.int64)).tolist())
        self.bos, self.eos = int(collator.bos), int(collator.eos)
        self.n_spike_tokens = self.n_dropped = 0
        self._rng, self._worker = None, None

    def _generator(self) -> np.random.Generator:
        info = torch.utils.data.get_worker_info()
        worker = None if info is None else (info.id, info.seed)
        if self._rng is None or worker != self._worker:
            self._rng = np.random.default_rng(self.seed + ([] if info is None else [info.seed]))
            self._worker = worker
        return self._rng

    def _thin(self, ids, dts, rng):
        ids, dts = np.asarray(ids, dtype=np.int64), np.asarray(dts, dtype=np.int64)
        spike = (ids != self.bos) & (ids != self.eos)
        drop = spike & (rng.random(len(ids)) < self.p)
        self.n_spike_tokens += int(spike.sum())
        self.n_dropped += int(drop.sum())
        ids, dts = ids[~drop], dts[~drop]
        if len(ids) >= 2 and ids[-1] == self.eos:  # EOS at the last kept token's bin
            dts[-1] = dts[-2]
        return ids.tolist(), dts.tolist()

    def thin(self, example: dict, rng: Optional[np.random.Generator] = None) -> dict:
        """``example`` (a window row) with its current and past spike tokens thinned."""
        rng = self._generator() if rng is None else rng
        ids, dts = self._thin(example["input_ids"], example["dt_ids"], rng)
        pids, pdts = self._thin(example["past_input_ids"], example["past_dt_ids"], rng)
        return {**example, "input_ids": ids, "dt_ids": dts, "past_input_ids": pids, "past_dt_ids": pdts}

    def __call__(self, examples):
        if not self.p:
            return self.collator(examples)
        rng = self._generator()
        return self.collator([self.thin(e, rng) for e in examples])


class _StepBar(TrainerCallback):
    """The package's progress bars (:func:`~hf_neuroformer.progress.progress_bar`) over Trainer's
    optimisation steps and over the batches of each evaluation, on the main process: ``neuroformer
    finetune`` showed none, so a run of a few minutes printed nothing between its evaluation lines;
    then a bar over the steps, but none while an evaluation ran (the step bar stood still for as
    long as the evaluation took). The evaluation's bar (``evaluating``, not left on a terminal)
    also counts the validation and test passes after training."""

    def __init__(self):
        self.bar = None
        self.eval_bar = None

    def on_train_begin(self, args, state, control, **kwargs):
        from .progress import progress_bar

        if state.is_world_process_zero:
            self.bar = progress_bar(total=state.max_steps, initial=state.global_step, desc="fine-tuning", unit="step")

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        if not state.is_world_process_zero:
            return
        if self.eval_bar is None:
            from .progress import progress_bar

            try:
                total = len(eval_dataloader)
            except TypeError:  # none, or an iterable without a length
                total = None
            self.eval_bar = progress_bar(total=total, desc="evaluating", unit="batch", leave=False)
        self.eval_bar.update(1)

    def on_evaluate(self, args, state, control, **kwargs):
        if self.eval_bar is not None:
            self.eval_bar.close()
            self.eval_bar = None

    on_predict = on_evaluate

    def write(self, line: str) -> None:
        """``line`` to standard output, above the bar while it is drawn."""
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)


class _EvaluationLines(TrainerCallback):
    """Prints ``step N: train loss X  val loss Y  val <metric> Z`` at every evaluation, as
    ``neuroformer train`` prints its steps (through ``write``, e.g. :meth:`_StepBar.write`; default
    ``print``). ``X`` is Trainer's latest logged ``loss``: the mean of the step losses of the logging
    interval (``logging_steps``) ending at that step, not ``neuroformer train``'s exponential running
    mean nor Trainer's ``train_loss`` (the mean since step 0, logged after training)."""

    def __init__(self, metric: str, write: Optional[Callable[[str], None]] = None):
        self.metric = metric
        self.write = write or functools.partial(print, flush=True)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        metrics = metrics or {}
        if "eval_loss" not in metrics:  # the final validation / test passes have other prefixes
            return
        train = [h for h in state.log_history if "loss" in h]
        # the Trainer logs the training loss every logging_steps: at an evaluation between two logs
        # (the last step, when max_steps is not a multiple of it) the latest is an earlier step's, said so
        at = "" if not train or train[-1].get("step") == state.global_step else f" (step {train[-1].get('step')})"
        key = f"eval_{self.metric}"
        self.write(f"step {state.global_step}: "
                   + (f"train loss {train[-1]['loss']:.4f}{at}  " if train else "")
                   + f"val loss {metrics['eval_loss']:.4f}"
                   + (f"  val {self.metric} {metrics[key]:.4f}" if key in metrics and self.metric != "loss" else ""))


class _ValidationScores(TrainerCallback):
    """Keeps the figures of each of Trainer's validation passes during training, so that
    :func:`finetune` takes the kept checkpoint's from its own pass instead of scoring the whole
    validation split again after training (about an eighth of a 4-step fine-tune's time, for the
    same floats).

    With ``load_best_model_at_end`` Trainer loads, after training, the checkpoint whose evaluation
    chose it: the weights it scored (with ``ema_decay`` the average, in the model at that
    evaluation and in the checkpoint alike; ``anchor_decay`` and ``spike_dropout`` act only in
    training steps), on the same validation dataset, batches, ``compute_metrics`` and precision
    as the evaluation after training. :meth:`kept` gives those figures only where that holds
    exactly; elsewhere :func:`finetune` scores again."""

    def __init__(self, compute_metrics):
        self.compute_metrics = compute_metrics
        self.passes: Dict[int, list] = {}  # step -> [(eval_ metrics, nonfinite_targets)] of its evaluations

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if metrics and "eval_loss" in metrics:  # the validation passes during training (eval_ prefix)
            self.passes.setdefault(state.global_step, []).append(
                (dict(metrics), list(getattr(self.compute_metrics, "nonfinite_targets", None) or [])))

    def kept(self, trainer) -> Optional[Dict[str, float]]:
        """The kept checkpoint's validation figures as ``trainer.evaluate(metric_key_prefix=
        "validation")`` gives them (``validation_*`` keys, ``epoch``), logged into
        ``trainer.state.log_history`` as that call logs them, with ``compute_metrics``'
        ``nonfinite_targets`` set to that pass's; None (score again) when no checkpoint was loaded
        as the best (every metric NaN: the last step's weights), the run has several processes
        (each evaluation's figures are gathered across them; not checked here), its checkpoint's
        step was not evaluated in this call of ``train`` exactly once (a resumed run's),
        ``load_best_model_at_end`` is off, ``skip_memory_metrics`` is (the evaluation after
        training adds its own memory figures), with ``fp16_full_eval`` / ``bf16_full_eval``
        (Trainer casts the model only for an evaluation outside training), a schedule-free optimizer
        (its ``eval()`` sets the weights it evaluates), DeepSpeed or FSDP."""
        state, args = trainer.state, trainer.args
        step = _step_of(state.best_model_checkpoint)
        if (not args.load_best_model_at_end or step is None or args.world_size != 1 or not args.skip_memory_metrics
                # after training, Trainer casts the model to half precision first / a schedule-free optimizer's
                # eval() moves the weights (Accelerate's wrapper has an eval() of its own: the optimizer inside it):
                # the evaluation after training scored other weights than the pass did
                or args.fp16_full_eval or args.bf16_full_eval or callable(getattr(getattr(trainer.optimizer, "optimizer", trainer.optimizer), "eval", None))
                or trainer.is_deepspeed_enabled or trainer.is_fsdp_enabled
                or len(self.passes.get(step, ())) != 1):
            return None
        metrics, nonfinite = self.passes[step][0]
        val = {"validation_" + k[len("eval_"):]: v for k, v in metrics.items() if k.startswith("eval_")}
        if self.compute_metrics is not None:  # what _check_not_diverged reads
            self.compute_metrics.nonfinite_targets = nonfinite
        trainer.log(val)  # the log entry of the evaluation it stands for (training_log.json); adds epoch
        return val


def _step_of(path) -> Optional[int]:
    if not path:
        return None
    try:
        return int(str(path).rstrip("/").rsplit("-", 1)[-1])
    except ValueError:
        return None


__all__ = ["finetune", "decode_windows", "load_decoder", "split_of_windows", "windows_tiling", "check_targets", "check_output_not_model", "check_finetune_settings", "apply_config_overrides", "config_settings",
           "FINETUNE_CONFIG_KEYS", "build_trainer", "decoding_intervals", "gathered_outputs", "make_compute_metrics",
           "selection_metric", "SELECTION_METRICS", "CHECKPOINT_DIR", "check_finetune_output_dir", "SpikeDropout",
           # the notes finetune warns with and writes to metrics.json (target_notes)
           "target_notes", "hl_gauss_crowded_notes", "hl_gauss_clipped_notes", "HL_GAUSS_CROWDED_VALUE_SHARE",
           "HL_GAUSS_CROWDED_BIN_SHARE",
           # the trainer build_trainer makes, its callbacks and what they read and write
           "DecodingTrainer", "WeightAverage", "PretrainedAnchor", "WEIGHT_AVERAGE_FILE", "NEW_MODULE_PREFIXES",
           "HEAD_SHAPE_KEYS", "check_freeze_schedule", "check_training_args",
           "saved_train_windows_used", "check_decoder_model"]
